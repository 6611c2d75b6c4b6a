//! Garbage collection of unreferenced chunks, and state surviving clean restarts.

mod common;
use common::{data, http, wait_for, TestNode};
use serde_json::Value;
use std::time::Duration;

fn gc_passes(node: &TestNode) -> u64 {
    let v: Value = http().get(format!("{}/v1/cluster", node.url)).send().unwrap().json().unwrap();
    v["workers"].as_array().unwrap().iter().find(|w| w["name"] == "gc").unwrap()["passes"].as_u64().unwrap()
}

#[test]
fn deleted_and_orphaned_chunks_are_collected_after_the_grace_period() {
    let node = TestNode::start(&["--gc-grace", "1s", "--gc-interval", "200ms", "--capacity", "1GiB"]);
    let used = || -> u64 {
        let v: Value = http().get(format!("{}/v1/node", node.url)).send().unwrap().json().unwrap();
        v["used"].as_u64().unwrap()
    };
    let c = http();
    let fs = |p: &str| format!("{}/v1/fs{p}", node.url);
    c.put(fs("/keep")).body(data(1, 5 << 20)).send().unwrap();
    c.put(fs("/drop")).body(data(2, 9 << 20)).send().unwrap();
    assert_eq!(node.chunk_files(), 5);
    // Identical content is stored once.
    c.put(fs("/keep-copy")).body(data(1, 5 << 20)).send().unwrap();
    assert_eq!(node.chunk_files(), 5, "deduplicated");
    // An uploaded chunk that no commit ever references (a writer that died mid-write).
    let orphan = data(3, 70_000);
    let id = blake3::hash(&orphan).to_hex().to_string();
    assert!(c.put(format!("{}/v1/chunks/{id}", node.url)).body(orphan).send().unwrap().status().is_success());
    assert_eq!(node.chunk_files(), 6);
    // Replacing a file unreferences its old chunks too.
    c.put(fs("/keep2")).body(data(4, 5 << 20)).send().unwrap();
    c.put(fs("/keep2")).body(data(5, 5 << 20)).send().unwrap();
    c.delete(fs("/drop")).send().unwrap();

    assert_eq!(used(), ((5 + 9 + 5 + 5) << 20) + 70_000);
    wait_for("gc to delete unreferenced chunks", Duration::from_secs(30), || node.chunk_files() == 4);
    // The space comes back: /keep (and /keep-copy) and the new /keep2 remain.
    assert_eq!(used(), 10 << 20);
    // A few more passes change nothing: referenced chunks stay.
    let passes = gc_passes(&node);
    wait_for("three more gc passes", Duration::from_secs(30), || gc_passes(&node) >= passes + 3);
    assert_eq!(node.chunk_files(), 4);
    assert_eq!(c.get(fs("/keep")).send().unwrap().bytes().unwrap().as_ref(), data(1, 5 << 20).as_slice());
    // Deleting one of two files sharing chunks keeps the chunks for the other.
    c.delete(fs("/keep")).send().unwrap();
    let passes = gc_passes(&node);
    wait_for("three more gc passes", Duration::from_secs(30), || gc_passes(&node) >= passes + 3);
    assert_eq!(c.get(fs("/keep-copy")).send().unwrap().bytes().unwrap().as_ref(), data(1, 5 << 20).as_slice());
    assert_eq!(node.chunk_files(), 4);
    assert_eq!(c.get(fs("/keep2")).send().unwrap().bytes().unwrap().as_ref(), data(5, 5 << 20).as_slice());
    node.assert_space_matches_disk();
}

#[test]
fn state_and_identity_survive_clean_restarts() {
    let mut node = TestNode::start(&[]);
    let c = http();
    let before: Value = c.get(format!("{}/v1/cluster", node.url)).send().unwrap().json().unwrap();
    for i in 0..20 {
        c.put(format!("{}/v1/fs/d{}/f{i}", node.url, i % 3)).body(data(i, 1000 + i as usize * 5000)).send().unwrap();
    }
    assert!(node.stop(), "SIGTERM shuts down cleanly");
    node.restart();
    let after: Value = c.get(format!("{}/v1/cluster", node.url)).send().unwrap().json().unwrap();
    assert_eq!(after["cluster_id"], before["cluster_id"]);
    assert_eq!(after["node_id"], before["node_id"]);
    for i in 0..20u64 {
        let got = c.get(format!("{}/v1/fs/d{}/f{i}", node.url, i % 3)).send().unwrap().bytes().unwrap();
        assert_eq!(got.as_ref(), data(i, 1000 + i as usize * 5000).as_slice());
    }
    // Writes go on after the restart.
    assert!(c.put(format!("{}/v1/fs/after", node.url)).body("x").send().unwrap().status().is_success());
}

#[test]
fn snapshots_and_log_purges_survive_restarts() {
    let mut node = TestNode::start(&["--snapshot-every", "20"]);
    let c = http();
    let mut written = Vec::new();
    for round in 0..3u64 {
        for i in 0..40u64 {
            let (path, seed) = (format!("/s{round}/f{i}"), round * 100 + i);
            c.put(format!("{}/v1/fs{path}", node.url)).body(data(seed, 100 + i as usize * 700)).send().unwrap();
            written.push((path, seed, 100 + i as usize * 700));
        }
        c.delete(format!("{}/v1/fs/s{round}/f0", node.url)).send().unwrap();
        written.retain(|(p, _, _)| *p != format!("/s{round}/f0"));
        let v: Value = c.get(format!("{}/v1/cluster", node.url)).send().unwrap().json().unwrap();
        assert!(v["raft"]["snapshot"].as_u64().is_some(), "a snapshot was taken: {}", v["raft"]);
        assert!(v["raft"]["purged"].as_u64().is_some(), "old log entries were purged: {}", v["raft"]);
        if round == 1 {
            node.kill();
            node.restart();
        } else {
            assert!(node.stop());
            node.restart();
        }
        for (path, seed, len) in &written {
            let got = c.get(format!("{}/v1/fs{path}", node.url)).send().unwrap().bytes().unwrap();
            assert_eq!(got.as_ref(), data(*seed, *len).as_slice(), "{path} after restart {round}");
        }
        let gone = c.get(format!("{}/v1/fs/s{round}/f0", node.url)).send().unwrap();
        assert_eq!(gone.status(), reqwest::StatusCode::NOT_FOUND);
    }
}

#[test]
fn a_second_node_on_the_same_data_dir_is_refused() {
    let node = TestNode::start(&[]);
    let c = http();
    c.put(format!("{}/v1/fs/mine", node.url)).body(data(1, 6 << 20)).send().unwrap();
    let out = std::process::Command::new(common::bin())
        .args(["up", "--listen", "127.0.0.1:0", "--data"])
        .arg(&node.data)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already in use"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        c.get(format!("{}/v1/fs/mine", node.url)).send().unwrap().bytes().unwrap().as_ref(),
        data(1, 6 << 20).as_slice()
    );
}

#[test]
fn config_file_env_and_flags_combine() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("cairn.toml");
    std::fs::write(&cfg, format!("data = {:?}\ngc_grace = \"2h\"\n", dir.path().join("from-file").display())).unwrap();
    let node = TestNode::start(&["--config", cfg.to_str().unwrap()]);
    // --data (given by the harness) wins over the file's data; the file's gc_grace applies.
    assert!(node.data.join("node.json").exists());
    assert!(!dir.path().join("from-file").exists());
    let out = std::process::Command::new(common::bin())
        .args(["up", "--config", cfg.to_str().unwrap(), "--listen", "not-an-address"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not-an-address"));
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "colour = \"blue\"\n").unwrap();
    let out =
        std::process::Command::new(common::bin()).args(["up", "--config", bad.to_str().unwrap()]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("colour"));
    let out = std::process::Command::new(common::bin())
        .args(["up", "--data", dir.path().join("env").to_str().unwrap()])
        .env("CAIRN_LISTEN", "also-bad")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("also-bad"), "env var is read");
}
