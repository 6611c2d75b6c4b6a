//! Bad input of every kind gets a clear error, changes nothing, and never crashes the node.

mod common;
use cairn_node::transport::PeerRequest;
use common::{code_of, http, peer_code, peer_http, peer_send, TestNode};
use reqwest::StatusCode;
use serde_json::Value;

/// The namespace as a sorted list of every path, to prove nothing changed.
fn tree(node: &TestNode) -> Vec<String> {
    let c = http();
    let mut out = Vec::new();
    let mut stack = vec!["/".to_string()];
    while let Some(dir) = stack.pop() {
        let v: Value = c.get(format!("{}/v1/fs{}", node.url, dir)).send().unwrap().json().unwrap();
        for e in v["entries"].as_array().unwrap() {
            let p = e["path"].as_str().unwrap().to_string();
            if e["type"] == "dir" {
                stack.push(p.clone());
            }
            out.push(format!("{p} {} {}", e["size"], e["version"]));
        }
    }
    out.sort();
    out
}

#[test]
fn bad_names_and_paths_are_refused_without_effect() {
    let node = TestNode::start(&[]);
    let c = http();
    c.put(format!("{}/v1/fs/dir/file", node.url)).body("x").send().unwrap();
    let before = tree(&node);
    let long = "n".repeat(256);
    for (path, why) in [
        ("/dir/a%2Fb", "encoded slash in a name"),
        ("/dir/a%00b", "NUL"),
        (&format!("/dir/{long}") as &str, "name over 255 bytes"),
        ("/dir/%FF%FE", "not UTF-8"),
    ] {
        let r = c.put(format!("{}/v1/fs{path}", node.url)).body("y").send().unwrap();
        assert_eq!(code_of(r), (StatusCode::BAD_REQUEST, "invalid_argument".into()), "{why}");
    }
    // Literal dot segments must be sent raw (HTTP clients normalise them away).
    for raw in ["/v1/fs/dir/../escape", "/v1/fs/./x", "/v1/fs/dir/%2E%2E/escape"] {
        let req = format!("PUT {raw} HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nConnection: close\r\n\r\nz");
        assert_eq!(node.raw(req.as_bytes()), 400, "{raw}");
    }
    // A path through a file.
    let r = c.put(format!("{}/v1/fs/dir/file/below", node.url)).body("y").send().unwrap();
    assert_eq!(code_of(r), (StatusCode::BAD_REQUEST, "not_a_directory".into()));
    let r = c.post(format!("{}/v1/fs/dir/file/sub?op=mkdir&parents=true", node.url)).send().unwrap();
    assert_eq!(code_of(r), (StatusCode::BAD_REQUEST, "not_a_directory".into()));
    // Writing over a directory.
    let r = c.put(format!("{}/v1/fs/dir", node.url)).body("y").send().unwrap();
    assert_eq!(code_of(r), (StatusCode::BAD_REQUEST, "is_a_directory".into()));
    assert_eq!(tree(&node), before);
}

#[test]
fn impossible_namespace_operations_are_refused_without_effect() {
    let node = TestNode::start(&[]);
    let c = http();
    let fs = |p: &str| format!("{}/v1/fs{p}", node.url);
    c.put(fs("/a/b/c/file")).body("x").send().unwrap();
    c.put(fs("/other")).body("o").send().unwrap();
    let before = tree(&node);
    let cases = [
        (c.post(fs("/a?op=rename&to=/a/b/inside")), StatusCode::BAD_REQUEST, "invalid_argument"),
        (c.post(fs("/a/b?op=rename&to=/other")), StatusCode::BAD_REQUEST, "not_a_directory"),
        (c.post(fs("/other?op=rename&to=/a")), StatusCode::BAD_REQUEST, "is_a_directory"),
        (c.post(fs("/nope?op=rename&to=/x")), StatusCode::NOT_FOUND, "not_found"),
        (c.post(fs("/a?op=rename&to=/missing/parent/x")), StatusCode::NOT_FOUND, "not_found"),
        (c.post(fs("/a?op=rename")), StatusCode::BAD_REQUEST, "invalid_argument"),
        (c.post(fs("/a?op=mkdir")), StatusCode::CONFLICT, "exists"),
        (c.post(fs("/?op=rename&to=/x")), StatusCode::BAD_REQUEST, "invalid_argument"),
        (c.delete(fs("/a")), StatusCode::CONFLICT, "not_empty"),
        (c.delete(fs("/")), StatusCode::BAD_REQUEST, "invalid_argument"),
        (c.delete(fs("/missing")), StatusCode::NOT_FOUND, "not_found"),
        (c.post(fs("/a?op=explode")), StatusCode::BAD_REQUEST, "invalid_argument"),
        (c.post(fs("/a")), StatusCode::BAD_REQUEST, "invalid_argument"),
        (c.delete(fs("/a?recursive=perhaps")), StatusCode::BAD_REQUEST, "invalid_argument"),
        (c.get(fs("/a?colour=blue")), StatusCode::BAD_REQUEST, "invalid_argument"),
        (c.get(fs("/a?op=teleport")), StatusCode::BAD_REQUEST, "invalid_argument"),
        (c.post(fs("/a?op=policy&policy=replicas:99")), StatusCode::BAD_REQUEST, "invalid_argument"),
        (c.post(fs("/other?op=policy&policy=replicas:2")), StatusCode::BAD_REQUEST, "not_a_directory"),
    ];
    for (i, (req, status, code)) in cases.into_iter().enumerate() {
        assert_eq!(code_of(req.send().unwrap()), (status, code.to_string()), "case {i}");
    }
    assert_eq!(tree(&node), before);
}

#[test]
fn malformed_internal_requests_and_garbage_bytes() {
    let node = TestNode::start(&[]);
    let c = http();
    let before = tree(&node);
    let u = |p: &str| format!("{}{p}", node.url);
    let peer = peer_http(&node);
    let pu = |p: &str| format!("{}{p}", node.peer_url);
    // A chunk whose bytes do not match its id, a bad id, garbage commands and queries.
    let id = "a".repeat(64);
    assert_eq!(code_of(c.put(u(&format!("/v1/chunks/{id}"))).body("not it").send().unwrap()).1, "invalid_argument");
    assert_eq!(code_of(c.put(u("/v1/chunks/xyz")).body("x").send().unwrap()).1, "invalid_argument");
    assert_eq!(code_of(c.get(u(&format!("/v1/chunks/{id}"))).send().unwrap()).1, "not_found");
    for (c, u, ep) in
        [(&c, &u as &dyn Fn(&str) -> String, "/v1/meta/write"), (&c, &u, "/v1/meta/query"), (&peer, &pu, "/v1/peer")]
    {
        for body in [&b""[..], b"\x01garbage", b"\x09wrong version", b"\x00\x00\x00\x09\x02short", b"\xff\xff\xff\xff"]
        {
            let (status, code) = code_of(c.post(u(ep)).body(body.to_vec()).send().unwrap());
            assert_eq!((status, code.as_str()), (StatusCode::BAD_REQUEST, "invalid_argument"), "{ep} {body:?}");
        }
    }
    // Self-healing messages between nodes: sources and chain links must be other members
    // (security.rs has more).
    let chunk = blake3::hash(b"real").to_hex().to_string();
    let cid = cairn_core::ChunkId::from_hex(&id).unwrap();
    let real = cairn_core::ChunkId::from_hex(&chunk).unwrap();
    for (req, payload, want) in [
        (PeerRequest::CopyChunk { id: cid, from: vec![] }, &b""[..], "not_found"),
        (PeerRequest::CopyChunk { id: cid, from: vec![4242] }, b"", "invalid_argument"),
        (PeerRequest::PutChunk { id: cid, chain: vec![4242], data: Default::default() }, b"not it", "invalid_argument"),
        (PeerRequest::PutChunk { id: cid, chain: vec![], data: Default::default() }, b"not it", "invalid_argument"),
        (PeerRequest::GetChunk { id: cid }, b"", "not_found"),
        (PeerRequest::RemoveNode { id: 4242, force: false }, b"", "not_found"),
    ] {
        assert_eq!(peer_code(peer_send(&peer, &node, &req, payload)), want, "{req:?}");
    }
    // Bytes beside a message that has no place for them are refused.
    let (status, code) = code_of(peer_send(&peer, &node, &PeerRequest::Info, b"extra"));
    assert_eq!((status, code.as_str()), (StatusCode::BAD_REQUEST, "invalid_argument"));
    for (req, want) in [
        // The peer routes are not on the client door at all.
        (c.put(u(&format!("/v1/chunks/{chunk}?chain="))).body("real"), "invalid_argument"),
        (c.post(u(&format!("/v1/chunks/{id}/copy"))).body(r#"{"from": []}"#), "not_found"),
        (c.post(u("/v1/peer")).body("x"), "not_found"),
        (c.post(u("/v1/raft/vote")).body("x"), "not_found"),
        (c.post(u("/v1/raft/append")).body("x"), "not_found"),
        (c.post(u("/v1/meta/propose")).body("x"), "not_found"),
        (c.delete(u(&format!("/v1/chunks/{chunk}"))), "invalid_argument"),
        (c.put(u(&format!("/v1/chunks/{chunk}?local=true"))).body("real"), "invalid_argument"),
        (c.get(u("/v1/fsck?path=../up")), "invalid_argument"),
        (c.get(u("/v1/fsck?path=/missing")), "not_found"),
        (c.get(u("/v1/fsck?colour=blue")), "invalid_argument"),
        (c.post(u("/v1/nodes/abc?op=drain")), "invalid_argument"),
        (c.post(u("/v1/nodes/7?op=drain")), "not_found"),
        (c.post(u("/v1/nodes/7?op=explode")), "invalid_argument"),
        (c.post(u("/v1/workers/repair?op=throttle")), "invalid_argument"),
        (c.post(u("/v1/workers/repair?op=throttle&rate=-5")), "invalid_argument"),
        (c.post(u("/v1/workers/nonsense?op=pause")), "invalid_argument"),
    ] {
        let (status, code) = code_of(req.send().unwrap());
        assert_eq!(code, want, "{status}");
    }
    let me = c.get(u("/v1/cluster")).send().unwrap().json::<Value>().unwrap()["node_id"].as_str().unwrap().to_string();
    let (_, code) = code_of(c.post(u(&format!("/v1/nodes/{me}?op=remove"))).send().unwrap());
    assert_eq!(code, "invalid_argument", "the last node cannot be removed");
    // A chain naming a non-member is refused whole; the last link (empty chain) stores.
    let put = |chain: Vec<u64>| PeerRequest::PutChunk { id: real, chain, data: Default::default() };
    let files = node.chunk_files();
    assert_eq!(peer_code(peer_send(&peer, &node, &put(vec![4242]), b"real")), "invalid_argument");
    assert_eq!(node.chunk_files(), files);
    assert_eq!(peer_code(peer_send(&peer, &node, &put(vec![]), b"real")), "ok");
    assert_eq!(node.chunk_files(), files + 1);
    // Raw garbage and broken HTTP on the socket.
    for junk in [
        &b"\x00\x01\x02\xff\xfe garbage\r\n\r\n"[..],
        b"GET /v1/fs/ HTTP/9.9\r\n\r\n",
        b"PUT /v1/fs/x HTTP/1.1\r\nContent-Length: 99999\r\n\r\nshort",
    ] {
        let _ = node.raw(junk);
    }
    // A body shorter than its Content-Length leaves no file behind.
    let status = node
        .raw(b"PUT /v1/fs/partial HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nConnection: close\r\n\r\nonly-some");
    assert_ne!(status, 201);
    assert_eq!(c.get(u("/v1/fs/partial")).send().unwrap().status(), StatusCode::NOT_FOUND);
    // Still alive, and nothing changed.
    let v: Value = c.get(u("/v1/cluster")).send().unwrap().json().unwrap();
    assert_eq!(v["healthy"], true);
    assert_eq!(tree(&node), before);
}

#[test]
fn disk_full_is_a_clear_error_and_changes_nothing() {
    // A tiny tmpfs as the data disk. Mounting needs root (CI runs as root); without it the
    // same refusal is tested through --capacity (security.rs, which every user runs).
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: mounting a tmpfs needs root; security.rs tests a full node via --capacity");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("small");
    std::fs::create_dir(&mnt).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=24m", "tmpfs"])
        .arg(&mnt)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(mounted, "mounting a tmpfs needs root; run the tests as root (CI does)");
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _guard = Unmount(mnt.clone());
    let mut node = TestNode::start_in(&mnt.join("data"), &[]);
    let c = http();
    c.put(format!("{}/v1/fs/keep", node.url)).body("kept").send().unwrap();
    let before = tree(&node);
    let r = c.put(format!("{}/v1/fs/too-big", node.url)).body(common::data(9, 40 << 20)).send().unwrap();
    assert_eq!(code_of(r), (StatusCode::INSUFFICIENT_STORAGE, "no_space".into()));
    assert_eq!(tree(&node), before);
    assert_eq!(c.get(format!("{}/v1/fs/keep", node.url)).send().unwrap().text().unwrap(), "kept");
    // Small writes still work once the failed upload's temp files are gone.
    let r = c.put(format!("{}/v1/fs/small", node.url)).body("fits").send().unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    node.kill();
}
