//! The CLI against a real node: every subcommand, human and JSON output, exit codes.

mod common;
use common::{data, TestNode};

#[test]
fn put_get_cat_roundtrip_small_large_and_empty() {
    let node = TestNode::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    for (name, len) in [("empty", 0usize), ("small", 100), ("edge", 16 << 10), ("big", 9 << 20 | 12345)] {
        let src = dir.path().join(name);
        let bytes = data(len as u64, len);
        std::fs::write(&src, &bytes).unwrap();
        node.ok(&["put", src.to_str().unwrap(), &format!("/d/{name}")]);
        let back = dir.path().join(format!("{name}.back"));
        node.ok(&["get", &format!("/d/{name}"), back.to_str().unwrap()]);
        assert_eq!(std::fs::read(&back).unwrap(), bytes, "{name} via get");
        let out = node.cli(&["cat", &format!("/d/{name}")]);
        assert!(out.status.success());
        assert_eq!(out.stdout, bytes, "{name} via cat");
    }
    let ls = node.ok(&["ls", "/d"]);
    assert_eq!(ls.lines().collect::<Vec<_>>(), vec!["big", "edge", "empty", "small"]);
    let long = node.ok(&["ls", "-l", "/d"]);
    assert!(long
        .lines()
        .any(|l| l.starts_with("-0644") && l.contains(&(9u64 << 20 | 12345).to_string()) && l.ends_with(" big")));
    let stat: serde_json::Value = serde_json::from_str(&node.ok(&["--json", "stat", "/d/big"])).unwrap();
    assert_eq!(stat["size"], 9 << 20 | 12345);
    assert_eq!(stat["chunks"], 3);
    assert_eq!(stat["type"], "file");
}

#[test]
fn put_into_directory_stdin_stdout_and_trees() {
    let node = TestNode::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    node.ok(&["mkdir", "/into"]);
    let f = dir.path().join("file.txt");
    std::fs::write(&f, b"hello").unwrap();
    node.ok(&["put", f.to_str().unwrap(), "/into"]);
    assert_eq!(node.ok(&["cat", "/into/file.txt"]), "hello");

    let mut child = std::process::Command::new(common::bin())
        .args(["--node", &node.url, "put", "-", "/stdin.bin"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&data(7, 70_000)).unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(node.cli(&["get", "/stdin.bin", "-"]).stdout, data(7, 70_000));

    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("a/b")).unwrap();
    std::fs::write(tree.join("top"), b"1").unwrap();
    std::fs::write(tree.join("a/b/deep"), data(3, 300_000)).unwrap();
    node.ok(&["put", "-r", tree.to_str().unwrap(), "/t"]);
    assert_eq!(node.cli(&["cat", "/t/a/b/deep"]).stdout, data(3, 300_000));
    let back = dir.path().join("back");
    node.ok(&["get", "-r", "/t", back.to_str().unwrap()]);
    assert_eq!(std::fs::read(back.join("a/b/deep")).unwrap(), data(3, 300_000));
    assert_eq!(std::fs::read(back.join("top")).unwrap(), b"1");
}

#[test]
fn namespace_commands_and_exit_codes() {
    let node = TestNode::start(&[]);
    node.ok(&["mkdir", "-p", "/x/y/z"]);
    node.ok(&["mkdir", "-p", "/x/y/z"]);
    assert_eq!(node.cli(&["mkdir", "/x/y/z"]).status.code(), Some(5), "exists");
    assert_eq!(node.cli(&["mkdir", "/no/such/parent"]).status.code(), Some(3), "missing parent");
    node.ok(&["mv", "/x/y", "/x/w"]);
    assert_eq!(node.ok(&["ls", "/x"]), "w/\n");
    assert_eq!(node.cli(&["rm", "/x"]).status.code(), Some(5), "not empty");
    assert_eq!(node.cli(&["mv", "/x", "/x/w/inside"]).status.code(), Some(2), "into own subtree");
    node.ok(&["rm", "-r", "/x"]);
    assert_eq!(node.cli(&["stat", "/x"]).status.code(), Some(3));
    assert_eq!(node.cli(&["cat", "/nope"]).status.code(), Some(3));
    assert_eq!(node.cli(&["cat", "relative"]).status.code(), Some(2), "invalid path");
    assert_eq!(node.cli(&["frobnicate"]).status.code(), Some(2), "usage");
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(node.cli(&["put", dir.path().to_str().unwrap(), "/d"]).status.code(), Some(2), "dir without -r");
    let out = std::process::Command::new(common::bin()).args(["--node", "http://127.0.0.1:1", "ls"]).output().unwrap();
    assert_eq!(out.status.code(), Some(4), "unavailable");
    assert!(String::from_utf8_lossy(&out.stderr).contains("unavailable"));
}

#[test]
fn status_and_policy() {
    let node = TestNode::start(&[]);
    let s: serde_json::Value = serde_json::from_str(&node.ok(&["--json", "status"])).unwrap();
    assert_eq!(s["healthy"], true);
    assert_eq!(s["nodes"].as_array().unwrap().len(), 1);
    assert_eq!(s["nodes"][0]["voter"], true);
    assert_eq!(s["raft"]["leader"], s["node_id"]);
    let human = node.ok(&["status"]);
    assert!(human.contains("healthy") && human.contains(&node.plain_url));
    node.ok(&["mkdir", "/p"]);
    node.ok(&["policy", "set", "/p", "replicas:2"]);
    assert_eq!(node.ok(&["policy", "get", "/p"]), "/p: replicas:2, chunk size inherited\n");
    node.ok(&["policy", "set", "/p", "replicas:1", "--chunk-size", "64KiB"]);
    assert_eq!(node.ok(&["policy", "get", "/p"]), "/p: replicas:1, chunk size 65536\n");
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("f");
    std::fs::write(&f, data(5, 200_000)).unwrap();
    node.ok(&["put", f.to_str().unwrap(), "/p/f"]);
    let stat: serde_json::Value = serde_json::from_str(&node.ok(&["--json", "stat", "/p/f"])).unwrap();
    assert_eq!((stat["chunk_size"].as_u64(), stat["chunks"].as_u64()), (Some(65536), Some(4)), "inherited chunk size");
    assert_eq!(node.cli(&["policy", "set", "/p", "replicas:1", "--chunk-size", "1KiB"]).status.code(), Some(2));
    assert_eq!(node.cli(&["policy", "set", "/p", "replicas:0"]).status.code(), Some(2));
}
