//! The Rust client library against a real node: `Client`, and `File` as a drop-in for
//! `std::fs::File` (Read, Write, Seek, read_at, write_at, set_len).

mod common;
use cairn_client::{Client, OpenOptions};
use cairn_core::ErrorCode;
use common::{data, TestNode};
use std::io::{Read, Seek, SeekFrom, Write};

#[test]
fn files_behave_like_std_files() {
    let node = TestNode::start(&[]);
    let client = Client::connect(&node.url).unwrap();
    client.mkdir("/lib/sub", true).unwrap();

    // Sequential write of a multi-chunk file, then read it back through Read.
    let body = data(1, 9 << 20 | 5);
    let mut f = client.create("/lib/big").unwrap();
    for piece in body.chunks(1 << 20) {
        f.write_all(piece).unwrap();
    }
    f.close().unwrap();
    let mut back = Vec::new();
    client.open("/lib/big").unwrap().read_to_end(&mut back).unwrap();
    assert_eq!(back, body);
    assert_eq!(client.metadata("/lib/big").unwrap().size, body.len() as u64);

    // Positional writes across a chunk boundary rewrite only what they touch.
    let mut expected = body.clone();
    let mut f = OpenOptions::new().read(true).write(true).open(&client, "/lib/big").unwrap();
    let patch = data(2, 10_000);
    let at = (4 << 20) - 3000;
    f.write_at(&patch, at).unwrap();
    expected[at as usize..at as usize + patch.len()].copy_from_slice(&patch);
    let mut buf = vec![0u8; 12_000];
    assert_eq!(f.read_at(&mut buf, at - 1000).unwrap(), 12_000);
    assert_eq!(buf, expected[(at - 1000) as usize..(at + 11_000) as usize], "a handle sees its own writes");
    f.seek(SeekFrom::End(-4)).unwrap();
    let mut tail = [0u8; 8];
    assert_eq!(f.read(&mut tail).unwrap(), 4);
    assert_eq!(&tail[..4], &expected[expected.len() - 4..]);
    f.sync_all().unwrap();
    drop(f);
    assert_eq!(node.cli(&["cat", "/lib/big"]).stdout, expected);

    // Truncate, extend with zeros, append.
    let mut f = OpenOptions::new().write(true).open(&client, "/lib/big").unwrap();
    f.set_len(100).unwrap();
    f.set_len(200).unwrap();
    f.close().unwrap();
    let mut got = Vec::new();
    client.open("/lib/big").unwrap().read_to_end(&mut got).unwrap();
    assert_eq!(&got[..100], &expected[..100]);
    assert_eq!(&got[100..], &[0u8; 100][..]);
    let mut f = OpenOptions::new().append(true).open(&client, "/lib/big").unwrap();
    f.write_all(&data(3, 6 << 20)).unwrap();
    f.close().unwrap();
    let meta = client.metadata("/lib/big").unwrap();
    assert_eq!(meta.size, 200 + (6 << 20));
    assert_eq!(meta.extents().len(), 2, "a small file grows into chunks");

    // Sparse write past the end of a new file.
    let mut f = OpenOptions::new().write(true).create_new(true).open(&client, "/lib/sparse").unwrap();
    f.write_at(b"end", 5 << 20).unwrap();
    f.close().unwrap();
    let mut got = Vec::new();
    client.open("/lib/sparse").unwrap().read_to_end(&mut got).unwrap();
    assert_eq!(got.len(), (5 << 20) + 3);
    assert!(got[..5 << 20].iter().all(|&b| b == 0));
    assert_eq!(&got[5 << 20..], b"end");
    let err = OpenOptions::new().write(true).create_new(true).open(&client, "/lib/sparse").err().unwrap();
    assert_eq!(err.code(), ErrorCode::Exists);

    // Namespace operations.
    client.rename("/lib/sparse", "/lib/sub/moved").unwrap();
    let names: Vec<String> = client.read_dir("/lib/sub").unwrap().map(|e| e.unwrap().name).collect();
    assert_eq!(names, ["moved"]);
    client.remove("/lib/sub/moved").unwrap();
    assert_eq!(client.open("/lib/sub/moved").err().unwrap().code(), ErrorCode::NotFound);
    assert_eq!(client.remove("/lib").unwrap_err().code(), ErrorCode::NotEmpty);
    client.remove_all("/lib").unwrap();
    assert!(client.read_dir("/").unwrap().next().is_none());
}

#[test]
fn concurrent_writers_conflict_instead_of_losing_updates() {
    let node = TestNode::start(&[]);
    let client = Client::connect(&node.url).unwrap();
    let mut f = client.create("/shared").unwrap();
    f.write_all(b"v1").unwrap();
    f.close().unwrap();
    // By default a writer holds the path's lock: a second writer is refused at open.
    let held = OpenOptions::new().write(true).open(&client, "/shared").unwrap();
    let refused = OpenOptions::new().write(true).open(&client, "/shared").err().unwrap();
    assert_eq!(refused.code(), ErrorCode::Locked, "{refused}");
    drop(held);
    // Without locks, concurrent writers meet at commit: the second one conflicts.
    let mut a = OpenOptions::new().write(true).lock(false).open(&client, "/shared").unwrap();
    let mut b = OpenOptions::new().write(true).lock(false).open(&client, "/shared").unwrap();
    a.write_all(b"A!").unwrap();
    a.close().unwrap();
    b.write_all(b"B!").unwrap();
    assert_eq!(b.sync_all().unwrap_err().code(), ErrorCode::Conflict);
    drop(b);
    let mut s = String::new();
    client.open("/shared").unwrap().read_to_string(&mut s).unwrap();
    assert_eq!(s, "A!");
    let io: std::io::Error = client.open("/missing").err().unwrap().into();
    assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
}

/// Chunk reads the node served over HTTP so far.
fn served(node: &TestNode) -> u64 {
    let v: serde_json::Value = common::http().get(format!("{}/v1/node", node.url)).send().unwrap().json().unwrap();
    v["chunks_served"].as_u64().unwrap()
}

#[test]
fn a_client_beside_its_node_reads_chunk_files_directly_and_verifies_them() {
    let node = TestNode::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let (src, back) = (dir.path().join("src"), dir.path().join("back"));
    std::fs::write(&src, data(3, 9 << 20)).unwrap();
    node.ok(&["put", src.to_str().unwrap(), "/direct"]);
    let before = served(&node);
    node.ok(&["get", "/direct", back.to_str().unwrap()]);
    assert_eq!(std::fs::read(&back).unwrap(), data(3, 9 << 20));
    assert_eq!(served(&node), before, "every chunk was read from the node's files, not over HTTP");

    // A corrupt file is never passed on: the client falls back to the node, which finds it
    // corrupt too, quarantines it and, with no other copy, refuses.
    let chunks = node.data.join("chunks");
    let victim = std::fs::read_dir(&chunks)
        .unwrap()
        .map(|d| d.unwrap())
        .filter(|d| d.file_name().len() == 2)
        .flat_map(|d| std::fs::read_dir(d.path()).unwrap().map(|e| e.unwrap().path()))
        .next()
        .unwrap();
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[64 + 7] ^= 0x40;
    std::fs::write(&victim, bytes).unwrap();
    let out = node.cli(&["cat", "/direct"]);
    assert!(!out.status.success());
    assert_ne!(out.stdout.len(), 9 << 20);
    assert!(!victim.exists(), "the corrupt file was moved to quarantine");
    assert_eq!(std::fs::read_dir(chunks.join("quarantine")).unwrap().count(), 1);
}
