//! Several real nodes in one cluster: joining with the secret, writes and reads through any
//! node, leader loss, and a restarted node finding its cluster by itself.

mod common;
use common::{data, http, wait_for, TestNode};
use serde_json::Value;
use std::time::Duration;

fn cluster(node: &TestNode) -> Value {
    http().get(format!("{}/v1/cluster", node.url)).send().unwrap().json().unwrap()
}

fn voters(node: &TestNode) -> usize {
    cluster(node)["nodes"].as_array().unwrap().iter().filter(|n| n["voter"] == true).count()
}

/// Starts a first node and `n - 1` nodes that join it.
fn start_cluster(n: usize) -> Vec<TestNode> {
    let first = TestNode::start(&[]);
    let secret = first.ok(&["status", "--secret"]).trim().to_string();
    let mut nodes = vec![first];
    for _ in 1..n {
        let join = nodes[0].url.clone();
        nodes.push(TestNode::start(&["--join", &join, "--secret", &secret]));
    }
    wait_for("all nodes to be voters", Duration::from_secs(30), || voters(&nodes[0]) == n);
    nodes
}

#[test]
fn any_node_serves_the_same_files() {
    let nodes = start_cluster(3);
    let c = http();
    let big = data(1, 9 << 20);
    assert!(c.put(format!("{}/v1/fs/a/big", nodes[1].url)).body(big.clone()).send().unwrap().status().is_success());
    assert!(c.put(format!("{}/v1/fs/a/small", nodes[2].url)).body("small").send().unwrap().status().is_success());
    nodes[0].ok(&["mkdir", "-p", "/b/c"]);
    for n in &nodes {
        assert_eq!(c.get(format!("{}/v1/fs/a/big", n.url)).send().unwrap().bytes().unwrap().as_ref(), big.as_slice());
        assert_eq!(n.ok(&["cat", "/a/small"]), "small");
        assert_eq!(n.ok(&["ls", "/"]), "a/\nb/\n");
    }
    let ids: Vec<Value> = nodes.iter().map(|n| cluster(n)["cluster_id"].clone()).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "one cluster id: {ids:?}");
}

#[test]
fn a_wrong_secret_is_refused() {
    let first = TestNode::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(common::bin())
        .args(["up", "--listen", "127.0.0.1:0", "--join", &first.url, "--secret", "not-the-secret", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("wrong cluster secret"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(cluster(&first)["nodes"].as_array().unwrap().len(), 1);
    let out = std::process::Command::new(common::bin())
        .args(["up", "--listen", "127.0.0.1:0", "--join", &first.url, "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("secret"), "joining without a secret is refused");
}

#[test]
fn losing_the_leader_keeps_the_cluster_writable_and_the_node_rejoins() {
    let mut nodes = start_cluster(3);
    let c = http();
    let leader_id = cluster(&nodes[0])["raft"]["leader"].as_str().unwrap().to_string();
    let li = nodes.iter().position(|n| cluster(n)["node_id"] == leader_id.as_str()).unwrap();
    nodes[li].kill();
    let alive: Vec<usize> = (0..3).filter(|&i| i != li).collect();
    // Writes through a survivor succeed once a new leader is elected (the node waits for it).
    let r = c.put(format!("{}/v1/fs/after", nodes[alive[0]].url)).body(data(2, 5 << 20)).send().unwrap();
    assert!(r.status().is_success(), "{}", r.text().unwrap());
    let got = c.get(format!("{}/v1/fs/after", nodes[alive[1]].url)).send().unwrap().bytes().unwrap();
    assert_eq!(got.as_ref(), data(2, 5 << 20).as_slice());
    // The old leader comes back on its address without --join and catches up.
    nodes[li].restart_same_port();
    let back = &nodes[li];
    wait_for("the restarted node to serve the new file", Duration::from_secs(30), || {
        c.get(format!("{}/v1/fs/after", back.url)).send().map(|r| r.status().is_success()).unwrap_or(false)
    });
    assert_eq!(
        c.get(format!("{}/v1/fs/after", back.url)).send().unwrap().bytes().unwrap().as_ref(),
        data(2, 5 << 20).as_slice()
    );
    assert_eq!(voters(back), 3);
}
