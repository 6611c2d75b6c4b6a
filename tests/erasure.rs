//! Erasure-coded files (`ec:K+M`) with real node processes: kept as shards on distinct
//! nodes, read whole and by range, read with M nodes SIGKILLed, a corrupt shard found by
//! scrub and rebuilt, lost shards rebuilt by repair; `cairn fsck` agrees with the disks.

mod common;
use common::{cluster, data, http, start_cluster_with, wait_for, TestNode};
use std::path::PathBuf;
use std::time::Duration;

/// Fast workers for tests.
const FAST: &[&str] = &["--repair-delay", "2s", "--repair-interval", "500ms", "--scrub-interval", "1s"];

fn put(node: &TestNode, path: &str, body: Vec<u8>) {
    let r = http().put(format!("{}/v1/fs{path}", node.url)).body(body).send().unwrap();
    assert!(r.status().is_success(), "{}", r.text().unwrap());
}

fn get(node: &TestNode, path: &str) -> Vec<u8> {
    let r = http().get(format!("{}/v1/fs{path}", node.url)).send().unwrap();
    assert!(r.status().is_success(), "GET {path}: {}", r.status());
    r.bytes().unwrap().to_vec()
}

fn get_range(node: &TestNode, path: &str, from: usize, to: usize) -> Vec<u8> {
    let r = http()
        .get(format!("{}/v1/fs{path}", node.url))
        .header("range", format!("bytes={from}-{}", to - 1))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 206, "range GET of {path}");
    r.bytes().unwrap().to_vec()
}

/// The chunk store's files of `node`: (copies, shards).
fn parts_on(node: &TestNode) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let (mut copies, mut shards) = (Vec::new(), Vec::new());
    for d in std::fs::read_dir(node.data.join("chunks")).unwrap() {
        let d = d.unwrap();
        if d.file_name().len() != 2 {
            continue;
        }
        for f in std::fs::read_dir(d.path()).unwrap() {
            let path = f.unwrap().path();
            if path.file_name().unwrap().to_str().unwrap().contains(".s") {
                shards.push(path);
            } else {
                copies.push(path);
            }
        }
    }
    (copies, shards)
}

fn fsck(node: &TestNode) -> i32 {
    node.cli(&["fsck"]).status.code().unwrap()
}

#[test]
fn an_ec_file_lives_as_shards_and_reads_back_through_losses() {
    let mut nodes = start_cluster_with(5, FAST);
    nodes[0].ok(&["mkdir", "/cold"]);
    nodes[0].ok(&["policy", "set", "/cold", "ec:3+2"]);
    assert!(nodes[0].ok(&["policy", "get", "/cold"]).contains("ec:3+2"));
    // Two chunks: one whole 4 MiB chunk and a 1 MiB + 7 byte tail.
    let body = data(13, (5 << 20) + 7);
    put(&nodes[0], "/cold/f", body.clone());

    // Five shards per chunk, one per node, and no whole copy anywhere.
    let mut shards = 0;
    for n in &nodes {
        let (copies, s) = parts_on(n);
        assert!(copies.is_empty(), "node {} holds whole copies: {copies:?}", n.url);
        assert_eq!(s.len(), 2, "node {} holds one shard of each chunk: {s:?}", n.url);
        shards += s.len();
    }
    assert_eq!(shards, 10);
    assert_eq!(fsck(&nodes[0]), 0, "every chunk has all its shards");

    // Mixed policies: status and metrics show what each keeps and what it costs on disk.
    let hot = data(14, 1 << 20);
    put(&nodes[0], "/hot", hot.clone());
    assert_eq!(fsck(&nodes[0]), 0);
    let shard = |len: u64| len.div_ceil(3);
    let ec_raw = 5 * (shard(4 << 20) + shard((1 << 20) + 7));
    let policies = cluster(&nodes[0])["policies"].clone();
    let of = |p: &str| policies.as_array().unwrap().iter().find(|u| u["policy"] == p).cloned().unwrap();
    assert_eq!(
        (of("ec:3+2")["stored"].as_u64(), of("ec:3+2")["raw"].as_u64()),
        (Some(body.len() as u64), Some(ec_raw))
    );
    assert_eq!((of("replicas:3")["stored"].as_u64(), of("replicas:3")["raw"].as_u64()), (Some(1 << 20), Some(3 << 20)));
    assert!(nodes[0]
        .ok(&["status"])
        .contains(&format!("policy ec:3+2: {} bytes stored, {ec_raw} bytes raw (1.67x)", body.len())));
    let metrics = http().get(format!("{}/metrics", nodes[0].url)).send().unwrap().text().unwrap();
    let line = format!("cairn_policy_bytes{{policy=\"ec:3+2\",kind=\"raw\"}} {ec_raw}");
    assert!(metrics.contains(&line), "{line} not in {metrics}");
    for n in &nodes {
        assert_eq!(get(n, "/cold/f"), body, "read through {}", n.url);
    }
    // Range reads: inside one data shard, across two, across the chunk boundary, the tail.
    for (a, b) in [(10, 4106), (1_398_000, 1_398_200), ((4 << 20) - 100, (4 << 20) + 100), (body.len() - 5, body.len())]
    {
        assert_eq!(get_range(&nodes[1], "/cold/f", a, b), &body[a..b], "bytes {a}..{b}");
    }

    // A shard rots on disk: scrub quarantines it, repair rebuilds it, the bytes never change.
    let (_, on1) = parts_on(&nodes[1]);
    let mut raw = std::fs::read(&on1[0]).unwrap();
    raw[64 + 100] ^= 0xff;
    std::fs::write(&on1[0], raw).unwrap();
    let quarantine = nodes[1].data.join("chunks").join("quarantine");
    wait_for("scrub to quarantine the rotten shard", Duration::from_secs(30), || {
        std::fs::read_dir(&quarantine).unwrap().count() == 1
    });
    wait_for("repair to rebuild the shard", Duration::from_secs(30), || fsck(&nodes[0]) == 0);
    assert_eq!(get(&nodes[2], "/cold/f"), body);

    // Two nodes (M) killed: every byte still reads, whole and by range.
    nodes[3].kill();
    nodes[4].kill();
    for n in &nodes[..3] {
        assert_eq!(get(n, "/cold/f"), body, "degraded read through {}", n.url);
    }
    assert_eq!(get_range(&nodes[0], "/cold/f", 3_000_000, 3_004_096), &body[3_000_000..3_004_096]);

    // Down past the repair delay: their shards are rebuilt on the three nodes left.
    // (Repair replaces shards silent past the delay, before their nodes count as down.)
    wait_for("repair to rebuild the lost shards on the nodes that are up", Duration::from_secs(60), || {
        nodes[..3].iter().map(|n| parts_on(n).1.len()).sum::<usize>() == 10 && fsck(&nodes[0]) == 0
    });
    assert_eq!(get(&nodes[1], "/cold/f"), body);
}

#[test]
fn bad_policies_and_shard_messages_are_refused() {
    let node = TestNode::start(FAST);
    for bad in ["ec:0+2", "ec:4+0", "ec:33+1", "ec:4+17", "ec:4", "ec:a+b"] {
        let out = node.cli(&["policy", "set", "/", bad]);
        assert!(!out.status.success(), "{bad} was accepted");
    }
    // A single node keeps every shard itself and still reads the file.
    node.ok(&["mkdir", "/one"]);
    node.ok(&["policy", "set", "/one", "ec:2+1"]);
    let body = data(5, 300_000);
    put(&node, "/one/f", body.clone());
    assert_eq!(parts_on(&node).1.len(), 3);
    assert_eq!(get(&node, "/one/f"), body);
    assert_eq!(get_range(&node, "/one/f", 149_990, 150_010), &body[149_990..150_010]);
    // A range past a chunk's end, or reversed, is refused on the chunk route.
    let id = {
        let (_, shards) = parts_on(&node);
        shards[0].file_name().unwrap().to_str().unwrap().split('.').next().unwrap().to_string()
    };
    for bad in ["bytes=10-5", "bytes=0-99999999999", "bytes=x-1", "items=0-1"] {
        let r = http().get(format!("{}/v1/chunks/{id}", node.url)).header("range", bad).send().unwrap();
        assert_eq!(r.status().as_u16(), 400, "{bad}");
    }
}
