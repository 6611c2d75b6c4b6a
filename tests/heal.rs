//! Self-healing with real node processes: a node lost for good, corrupt copies, draining and
//! removing a node, pausing workers; `cairn fsck` must agree with what is on the disks.

mod common;
use common::{cluster, data, http, start_cluster_with, wait_for, TestNode};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Fast workers for tests.
const FAST: &[&str] = &["--repair-delay", "2s", "--repair-interval", "500ms", "--scrub-interval", "1s"];

/// Starts `n` nodes with the fast worker settings, all up and seen by each other.
fn start_cluster(n: usize) -> Vec<TestNode> {
    start_cluster_with(n, FAST)
}

fn node_id(node: &TestNode) -> String {
    cluster(node)["node_id"].as_str().unwrap().to_string()
}

/// `cairn fsck` exit code (0: all at policy, 6: some below).
fn fsck(node: &TestNode) -> i32 {
    node.cli(&["fsck"]).status.code().unwrap()
}

fn put(node: &TestNode, path: &str, body: Vec<u8>) {
    let r = http().put(format!("{}/v1/fs{path}", node.url)).body(body).send().unwrap();
    assert!(r.status().is_success(), "{}", r.text().unwrap());
}

fn get(node: &TestNode, path: &str) -> Vec<u8> {
    let r = http().get(format!("{}/v1/fs{path}", node.url)).send().unwrap();
    assert!(r.status().is_success(), "GET {path}: {}", r.status());
    r.bytes().unwrap().to_vec()
}

fn chunk_paths(node: &TestNode) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for d in std::fs::read_dir(node.data.join("chunks")).unwrap() {
        let d = d.unwrap();
        if d.file_name().len() == 2 {
            out.extend(std::fs::read_dir(d.path()).unwrap().map(|e| e.unwrap().path()));
        }
    }
    out.sort();
    out
}

fn quarantined(node: &TestNode) -> usize {
    std::fs::read_dir(node.data.join("chunks").join("quarantine")).unwrap().count()
}

fn flip_a_byte(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[64 + 1000] ^= 0xff;
    std::fs::write(path, bytes).unwrap();
}

fn worker(node: &TestNode, name: &str) -> Value {
    cluster(node)["workers"].as_array().unwrap().iter().find(|w| w["name"] == name).unwrap().clone()
}

#[test]
fn a_node_lost_for_good_is_re_protected_without_help() {
    let mut nodes = start_cluster(4);
    let files: Vec<(String, Vec<u8>)> = (0..4).map(|i| (format!("/f{i}"), data(100 + i, 5 << 20))).collect();
    for (p, body) in &files {
        put(&nodes[0], p, body.clone());
    }
    assert_eq!(fsck(&nodes[0]), 0, "every chunk is at policy right after the writes");
    // fsck read through node 0 linearizably, so its replica (which status reads) is current.
    let summary = cluster(&nodes[0])["chunks"].clone();
    assert_eq!((summary["total"].as_u64(), summary["healthy"].as_u64()), (Some(8), Some(8)), "{summary}");

    // Paused, repair leaves the lost copies alone: fsck reports them.
    nodes[0].ok(&["worker", "pause", "repair"]);
    for n in &nodes {
        wait_for("repair to show paused", Duration::from_secs(10), || worker(n, "repair")["paused"] == true);
    }
    let lost = node_id(&nodes[3]);
    nodes[3].kill();
    wait_for("fsck to report the lost copies", Duration::from_secs(30), || fsck(&nodes[1]) == 6);
    let out = nodes[1].cli(&["fsck"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("below policy"), "{}", String::from_utf8_lossy(&out.stdout));
    let v = cluster(&nodes[1]);
    assert!(v["chunks"]["under_replicated"].as_u64().unwrap() > 0, "{}", v["chunks"]);
    assert!(v["chunks"]["bytes_at_risk"].as_u64().unwrap() > 0);
    let metrics = http().get(format!("{}/metrics", nodes[1].url)).send().unwrap().text().unwrap();
    assert!(metrics.contains("cairn_chunks{state=\"under_replicated\"}"), "{metrics}");

    // Resumed, repair copies every chunk to the three nodes left; nobody had to say which.
    nodes[2].ok(&["worker", "resume", "repair"]);
    wait_for("fsck to be clean again", Duration::from_secs(60), || fsck(&nodes[1]) == 0);
    let v = cluster(&nodes[1]);
    assert_eq!((v["chunks"]["healthy"].as_u64(), v["chunks"]["bytes_at_risk"].as_u64()), (Some(8), Some(0)));
    for n in &nodes[..3] {
        assert_eq!(chunk_paths(n).len(), 8, "each survivor holds a copy of every chunk");
    }
    assert!(cluster(&nodes[0])["nodes"].as_array().unwrap().iter().any(|n| n["id"] == lost.as_str()));
    for (p, body) in &files {
        assert_eq!(&get(&nodes[1], p), body);
    }
    // The lost node comes back with its old copies: the surplus is deleted again, leaving
    // three verified copies of each chunk.
    nodes[3].restart();
    wait_for("the surplus copies to go", Duration::from_secs(60), || {
        nodes.iter().map(|n| chunk_paths(n).len()).sum::<usize>() == 24 && fsck(&nodes[1]) == 0
    });
    for (p, body) in &files {
        assert_eq!(&get(&nodes[3], p), body);
    }
    // After repair copies and surplus trims, the space each node reports is its chunk files.
    for n in &nodes {
        n.assert_space_matches_disk();
    }
}

#[test]
fn corrupt_copies_on_two_nodes_are_quarantined_and_repaired() {
    let nodes = start_cluster(3);
    let body = data(7, 6 << 20);
    put(&nodes[0], "/f", body.clone());
    assert_eq!(fsck(&nodes[0]), 0);
    // Bit rot: the first chunk on node 1, the second on node 2.
    let (c1, c2) = (chunk_paths(&nodes[1]), chunk_paths(&nodes[2]));
    assert_eq!((c1.len(), c2.len()), (2, 2));
    flip_a_byte(&c1[0]);
    flip_a_byte(&c2[1]);
    wait_for("scrub to quarantine both copies", Duration::from_secs(30), || {
        quarantined(&nodes[1]) == 1 && quarantined(&nodes[2]) == 1
    });
    wait_for("repair to restore both copies", Duration::from_secs(60), || {
        fsck(&nodes[0]) == 0 && chunk_paths(&nodes[1]).len() == 2 && chunk_paths(&nodes[2]).len() == 2
    });
    // The restored files are good copies: every node reads the file from its own disk.
    for n in &nodes {
        for p in chunk_paths(n) {
            let bytes = std::fs::read(&p).unwrap();
            let name = p.file_name().unwrap().to_str().unwrap().to_string();
            assert_eq!(blake3::hash(&bytes[64..]).to_hex().to_string(), name, "{}", p.display());
        }
        assert_eq!(get(n, "/f"), body);
    }
    let scrub = worker(&nodes[1], "scrub");
    assert!(scrub["items"].as_u64().unwrap() >= 2, "{scrub}");
}

#[test]
fn a_drained_node_is_emptied_under_read_load_and_removed() {
    // Six nodes: five voters and a learner; the drained node is a voter.
    let nodes = start_cluster(6);
    let voters = |n: &TestNode| cluster(n)["nodes"].as_array().unwrap().iter().filter(|x| x["voter"] == true).count();
    wait_for("five voters", Duration::from_secs(30), || voters(&nodes[0]) == 5);
    let files: Vec<(String, Vec<u8>)> = (0..3).map(|i| (format!("/d/f{i}"), data(200 + i, 5 << 20))).collect();
    for (p, body) in &files {
        put(&nodes[0], p, body.clone());
    }
    // The drained node: a voter that holds some of the chunks (placement is random per run).
    let is_voter =
        |n: &TestNode| cluster(n)["nodes"].as_array().unwrap().iter().any(|x| x["this"] == true && x["voter"] == true);
    let v = (2..6)
        .find(|&i| is_voter(&nodes[i]) && !chunk_paths(&nodes[i]).is_empty())
        .expect("a voter besides nodes 0 and 1 holds chunks");
    let victim = node_id(&nodes[v]);
    // Removing it now would leave chunks below policy: refused, nothing changes.
    let out = nodes[0].cli(&["node", "remove", &victim]);
    assert_eq!(out.status.code(), Some(5), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("below policy"));

    // Readers through the draining node itself must never see an error.
    let stop = Arc::new(AtomicBool::new(false));
    let (reads, errors) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let reader = {
        let (stop, reads, errors) = (stop.clone(), reads.clone(), errors.clone());
        let (url, files) = (nodes[v].url.clone(), files.clone());
        std::thread::spawn(move || {
            let c = http();
            while !stop.load(Ordering::Relaxed) {
                for (p, body) in &files {
                    match c.get(format!("{url}/v1/fs{p}")).send().and_then(|r| r.error_for_status()?.bytes()) {
                        Ok(b) if b.as_ref() == body.as_slice() => reads.fetch_add(1, Ordering::Relaxed),
                        _ => errors.fetch_add(1, Ordering::Relaxed),
                    };
                }
            }
        })
    };
    nodes[1].ok(&["node", "drain", &victim]);
    let state = |n: &TestNode| -> String {
        let v = cluster(n);
        let me = v["nodes"].as_array().unwrap().iter().find(|x| x["id"] == victim.as_str()).unwrap().clone();
        me["admin_state"].as_str().unwrap().to_string()
    };
    wait_for("every node to see the drain", Duration::from_secs(10), || state(&nodes[2]) == "draining");
    wait_for("the drain to finish", Duration::from_secs(60), || {
        let copies: usize = nodes.iter().map(|n| chunk_paths(n).len()).sum();
        fsck(&nodes[0]) == 0 && copies == 18 && chunk_paths(&nodes[v]).is_empty()
    });
    wait_for("status to show the drained node empty", Duration::from_secs(10), || {
        let v = cluster(&nodes[0]);
        v["nodes"].as_array().unwrap().iter().any(|x| x["id"] == victim.as_str() && x["chunks"] == 0)
    });
    assert!(nodes[0].ok(&["status"]).contains("draining"));
    wait_for("some reads during the drain", Duration::from_secs(30), || reads.load(Ordering::Relaxed) >= 6);
    stop.store(true, Ordering::Relaxed);
    reader.join().unwrap();
    assert_eq!(errors.load(Ordering::Relaxed), 0, "reads failed during the drain");

    let out = nodes[0].ok(&["node", "remove", &victim]);
    assert!(out.contains("removed"), "{out}");
    wait_for("the node to leave the membership", Duration::from_secs(30), || {
        cluster(&nodes[1])["nodes"].as_array().unwrap().len() == 5
    });
    assert_eq!(voters(&nodes[1]), 5, "the learner took the removed voter's seat");
    assert_eq!(fsck(&nodes[1]), 0);
    let remaining: Vec<usize> = (1..6).filter(|k| *k != v).collect();
    for (p, body) in &files {
        assert_eq!(&get(&nodes[remaining[1]], p), body);
    }
    // Throttling shows on every node; bad operator input is refused without changing anything.
    nodes[0].ok(&["worker", "throttle", "scrub", "1MiB"]);
    wait_for("the scrub limit everywhere", Duration::from_secs(30), || {
        remaining.iter().all(|k| worker(&nodes[*k], "scrub")["rate"] == 1 << 20)
    });
    assert_eq!(nodes[0].cli(&["node", "drain", "12345"]).status.code(), Some(3));
    assert_eq!(nodes[0].cli(&["worker", "pause", "nonsense"]).status.code(), Some(2));
}

/// Each node's fill in percent, as it reports it.
fn fills(nodes: &[TestNode]) -> Vec<f64> {
    nodes
        .iter()
        .map(|n| {
            let v: Value = http().get(format!("{}/v1/node", n.url)).send().unwrap().json().unwrap();
            v["used"].as_f64().unwrap() * 100.0 / v["capacity"].as_f64().unwrap()
        })
        .collect()
}

#[test]
fn new_empty_nodes_fill_until_every_node_is_within_the_band() {
    let cap = ["--capacity", "200MiB"];
    let mut nodes = Vec::new();
    let first = TestNode::start(&[FAST, &cap[..]].concat());
    let secret = first.ok(&["status", "--secret"]).trim().to_string();
    let join = first.url.clone();
    nodes.push(first);
    let joiner = |nodes: &mut Vec<TestNode>| {
        let args = [&["--join", join.as_str(), "--secret", secret.as_str()][..], FAST, &cap[..]].concat();
        nodes.push(TestNode::start(&args));
    };
    joiner(&mut nodes);
    joiner(&mut nodes);
    wait_for("three nodes up", Duration::from_secs(30), || {
        cluster(&nodes[0])["nodes"].as_array().unwrap().iter().filter(|n| n["state"] == "up").count() == 3
    });
    let files: Vec<(String, Vec<u8>)> = (0..15).map(|i| (format!("/r/f{i}"), data(300 + i, 4 << 20))).collect();
    for (p, body) in &files {
        put(&nodes[0], p, body.clone());
    }
    assert!(nodes.iter().all(|n| chunk_paths(n).len() == 15));
    // A reader through the first node keeps reading while copies move.
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicUsize::new(0));
    let reader = {
        let (stop, errors, url, files) = (stop.clone(), errors.clone(), nodes[0].url.clone(), files.clone());
        std::thread::spawn(move || {
            let c = http();
            while !stop.load(Ordering::Relaxed) {
                for (p, body) in &files {
                    let got = c.get(format!("{url}/v1/fs{p}")).send().and_then(|r| r.error_for_status()?.bytes());
                    if !got.is_ok_and(|b| b.as_ref() == body.as_slice()) {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
    };
    joiner(&mut nodes);
    joiner(&mut nodes);
    // Converged: every fill within 5 points of the mean, three copies of each chunk, all at
    // policy (a move in flight briefly has a fourth copy).
    wait_for("fill to converge within 5 points of the mean", Duration::from_secs(90), || {
        let f = fills(&nodes);
        let mean = f.iter().sum::<f64>() / f.len() as f64;
        let copies: usize = nodes.iter().map(|n| chunk_paths(n).len()).sum();
        f.iter().all(|x| (x - mean).abs() <= 5.0) && copies == 45 && fsck(&nodes[0]) == 0
    });
    stop.store(true, Ordering::Relaxed);
    reader.join().unwrap();
    assert_eq!(errors.load(Ordering::Relaxed), 0, "reads failed while copies moved");
    let on_disk: Vec<usize> = nodes.iter().map(|n| chunk_paths(n).len()).collect();
    assert!(on_disk[3] >= 7 && on_disk[4] >= 7, "{on_disk:?}");
    for (p, body) in &files {
        assert_eq!(&get(&nodes[4], p), body);
    }
    // After the moves (copy, record, delete), the space each node reports is its chunk files.
    for n in &nodes {
        n.assert_space_matches_disk();
    }
}

#[test]
fn a_node_whose_disk_was_replaced_gets_its_chunks_back() {
    let mut nodes = start_cluster(4);
    let files: Vec<(String, Vec<u8>)> = (0..6).map(|i| (format!("/g/f{i}"), data(400 + i, 4 << 20))).collect();
    for (p, body) in &files {
        put(&nodes[0], p, body.clone());
    }
    let names = |n: &TestNode| -> Vec<String> {
        chunk_paths(n).iter().map(|p| p.file_name().unwrap().to_string_lossy().to_string()).collect()
    };
    let before = names(&nodes[3]);
    assert!(!before.is_empty());
    let id = node_id(&nodes[3]);
    let secret = nodes[0].ok(&["status", "--secret"]).trim().to_string();
    // Repair waits while the disk is swapped, so the refill is the recovery's doing.
    nodes[0].ok(&["worker", "pause", "repair"]);
    nodes[3].kill();
    let fresh = tempfile::tempdir().unwrap();
    let args =
        [&["--recover", id.as_str(), "--join", nodes[0].url.as_str(), "--secret", secret.as_str()][..], FAST].concat();
    let recovered = TestNode::start_in(&fresh.path().join("data"), &args);
    assert_eq!(node_id(&recovered), id, "it came back under its old id");
    wait_for("the ledger to forget the lost copies", Duration::from_secs(30), || fsck(&nodes[0]) == 6);
    nodes[0].ok(&["worker", "resume", "repair"]);
    wait_for("the refill", Duration::from_secs(60), || fsck(&nodes[0]) == 0);
    assert_eq!(names(&recovered), before, "placement gives it back exactly the chunks it had");
    assert_eq!(cluster(&nodes[1])["nodes"].as_array().unwrap().len(), 4);
    for (p, body) in &files {
        assert_eq!(&get(&recovered, p), body);
    }
}

#[test]
fn rebalance_never_fills_a_node_past_the_limit() {
    let big = ["--capacity", "40MiB"];
    let first = TestNode::start(&[FAST, &big[..]].concat());
    let (secret, url) = (first.ok(&["status", "--secret"]).trim().to_string(), first.url.clone());
    let join = [&["--join", url.as_str(), "--secret", secret.as_str()][..], FAST].concat();
    let mut nodes = vec![first];
    nodes.push(TestNode::start(&[&join[..], &big[..]].concat()));
    let up = |n: &TestNode, k: usize| {
        cluster(n)["nodes"].as_array().unwrap().iter().filter(|x| x["state"] == "up").count() == k
    };
    wait_for("two nodes up", Duration::from_secs(30), || up(&nodes[0], 2));
    nodes[0].ok(&["policy", "set", "/", "replicas:1"]);
    // 76 MiB in 80 MiB (not all 80: copies the workers make meanwhile hold room too, and
    // a store never passes its capacity), so the mean fill with an empty 4 MiB node is
    // about 90 %: the band asks for a chunk on it, but one chunk would fill it to 100 %.
    for i in 0..19 {
        put(&nodes[0], &format!("/l/f{i}"), data(500 + i, 4 << 20));
    }
    nodes.push(TestNode::start(&[&join[..], &["--capacity", "4MiB"][..]].concat()));
    let leader = cluster(&nodes[0])["raft"]["leader"].as_str().unwrap().to_string();
    let on_leader = nodes.iter().find(|n| node_id(n) == leader).unwrap();
    wait_for("the leader to see three nodes up", Duration::from_secs(30), || up(on_leader, 3));
    let passes = worker(on_leader, "rebalance")["passes"].as_u64().unwrap();
    wait_for("three more rebalance passes", Duration::from_secs(30), || {
        worker(on_leader, "rebalance")["passes"].as_u64().unwrap() >= passes + 3
    });
    assert_eq!(chunk_paths(&nodes[2]).len(), 0, "the small node is not filled past the limit");
    assert_eq!(fsck(&nodes[0]), 0);
}

#[test]
fn the_leader_itself_can_be_removed() {
    let nodes = start_cluster(3);
    let body = data(600, 5 << 20);
    put(&nodes[0], "/kept", body.clone());
    let leader = cluster(&nodes[0])["raft"]["leader"].as_str().unwrap().to_string();
    let other = nodes.iter().find(|n| node_id(n) != leader).unwrap();
    // Two active nodes remain: replicas:3 is clipped to two copies, which they hold.
    let out = other.ok(&["node", "remove", &leader]);
    assert!(out.contains("removed"), "{out}");
    wait_for("a new leader and two members", Duration::from_secs(30), || {
        let v = cluster(other);
        v["nodes"].as_array().unwrap().len() == 2 && v["raft"]["leader"].as_str().is_some_and(|l| l != leader)
    });
    assert_eq!(fsck(other), 0);
    assert_eq!(get(other, "/kept"), body);
    put(other, "/after", data(601, 1 << 20));
}
