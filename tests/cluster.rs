//! Several real nodes in one cluster: joining with the secret, writes and reads through any
//! node, leader loss, and a restarted node finding its cluster by itself.

mod common;
use common::{all_up, cluster, data, http, start_cluster_with, voters, wait_for, TestNode};
use serde_json::Value;
use std::time::Duration;

/// Starts a first node and `n - 1` nodes that join it.
fn start_cluster(n: usize) -> Vec<TestNode> {
    start_cluster_with(n, &[])
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

#[test]
fn chunks_are_replicated_by_policy() {
    let nodes = start_cluster(3);
    let c = http();
    let counts = |nodes: &[TestNode]| nodes.iter().map(TestNode::chunk_files).collect::<Vec<_>>();
    // Default policy replicas:3 on three nodes: every chunk on every node, uploaded once.
    c.put(format!("{}/v1/fs/three", nodes[0].url)).body(data(3, 9 << 20)).send().unwrap();
    assert_eq!(counts(&nodes), vec![3, 3, 3]);
    // replicas:2 below /two: each chunk on exactly two nodes.
    nodes[1].ok(&["mkdir", "/two"]);
    nodes[1].ok(&["policy", "set", "/two", "replicas:2"]);
    c.put(format!("{}/v1/fs/two/f", nodes[2].url)).body(data(4, 9 << 20)).send().unwrap();
    let total: usize = counts(&nodes).iter().sum();
    assert_eq!(total, 9 + 6);
    let status: Value = cluster(&nodes[0]);
    for n in status["nodes"].as_array().unwrap() {
        assert!(n["capacity"].as_u64().unwrap() > 0 && n["zone"] == "default", "{n}");
    }
}

#[test]
fn zones_spread_copies_and_reads_survive_losing_all_but_one_copy() {
    // Five nodes in three zones; replicas:3 puts one copy in each zone.
    let first = TestNode::start(&["--zone", "z0"]);
    let secret = first.ok(&["status", "--secret"]).trim().to_string();
    let mut nodes = vec![first];
    for i in 1..5 {
        let (join, zone) = (nodes[0].url.clone(), format!("z{}", i % 3));
        nodes.push(TestNode::start(&["--join", &join, "--secret", &secret, "--zone", &zone]));
    }
    wait_for("five voters", Duration::from_secs(30), || voters(&nodes[0]) == 5);
    all_up(&nodes[0], 5);
    let c = http();
    let body = data(5, 13 << 20);
    assert!(c.put(format!("{}/v1/fs/spread", nodes[0].url)).body(body.clone()).send().unwrap().status().is_success());
    let per_zone =
        |z: usize| nodes.iter().enumerate().filter(|(i, _)| i % 3 == z).map(|(_, n)| n.chunk_files()).sum::<usize>();
    assert_eq!((per_zone(0), per_zone(1), per_zone(2)), (4, 4, 4), "one copy of each of 4 chunks per zone");
    // Kill two nodes (a minority of voters); every chunk keeps at least one copy.
    nodes[1].kill();
    nodes[2].kill();
    for reader in [0, 3, 4] {
        let got = c.get(format!("{}/v1/fs/spread", nodes[reader].url)).send().unwrap().bytes().unwrap();
        assert_eq!(got.as_ref(), body.as_slice(), "read through node {reader}");
    }
}

#[test]
fn acknowledged_writes_survive_repeated_minority_crashes_under_load() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    let mut nodes = start_cluster(5);
    let urls: Vec<String> = nodes.iter().map(|n| n.url.clone()).collect();
    let size = |seed: u64| if seed.is_multiple_of(2) { 1000 } else { (5 << 20) + 17 };
    let acked: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();
    let count = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    // Three writers put new files through every node in turn, whatever is up or down.
    let writers: Vec<_> = (0..3u64)
        .map(|t| {
            let (urls, acked, count, stop) = (urls.clone(), acked.clone(), count.clone(), stop.clone());
            std::thread::spawn(move || {
                let c = http();
                let mut k = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    let (path, seed) = (format!("/load/w{t}/f{k}"), t * 1_000_000 + k);
                    let url = &urls[(k as usize + t as usize) % urls.len()];
                    let ok = c
                        .put(format!("{url}/v1/fs{path}"))
                        .body(data(seed, size(seed)))
                        .send()
                        .map(|r| r.status().is_success())
                        .unwrap_or(false);
                    if ok {
                        acked.lock().unwrap().push((path, seed));
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                    k += 1;
                }
            })
        })
        .collect();
    for round in 0..3 {
        let before = count.load(Ordering::SeqCst);
        wait_for("writes before the crash", Duration::from_secs(60), || count.load(Ordering::SeqCst) >= before + 4);
        // SIGKILL two of five nodes, the leader among them.
        let leader = cluster(&nodes[(round + 2) % 5])["raft"]["leader"].as_str().unwrap_or("").to_string();
        let li = nodes.iter().position(|n| cluster(n)["node_id"] == leader.as_str()).unwrap_or(0);
        let other = (li + 1 + round) % 5;
        nodes[li].kill();
        nodes[other].kill();
        let during = count.load(Ordering::SeqCst);
        wait_for("writes with a minority down", Duration::from_secs(60), || count.load(Ordering::SeqCst) >= during + 4);
        nodes[li].restart_same_port();
        nodes[other].restart_same_port();
        for n in &nodes {
            all_up(n, 5);
        }
    }
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.join().unwrap();
    }
    let c = http();
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 24, "only {} writes acknowledged", acked.len());
    for n in &nodes {
        for (path, seed) in &acked {
            let got = c.get(format!("{}/v1/fs{path}", n.url)).send().unwrap().bytes().unwrap();
            assert_eq!(got.as_ref(), data(*seed, size(*seed)).as_slice(), "{path} via {}", n.url);
        }
    }
    // Every file that is visible at all is whole, acknowledged or not.
    for t in 0..3u64 {
        let v: Value = c.get(format!("{}/v1/fs/load/w{t}", nodes[0].url)).send().unwrap().json().unwrap();
        for e in v["entries"].as_array().unwrap() {
            let k: u64 = e["name"].as_str().unwrap()[1..].parse().unwrap();
            let seed = t * 1_000_000 + k;
            let got = c.get(format!("{}/v1/fs/load/w{t}/f{k}", nodes[0].url)).send().unwrap().bytes().unwrap();
            assert_eq!(got.as_ref(), data(seed, size(seed)).as_slice(), "/load/w{t}/f{k} is half-visible");
        }
    }
}

#[test]
fn losing_the_majority_makes_writes_fail_with_unavailable() {
    let mut nodes = start_cluster(3);
    let c = http();
    c.put(format!("{}/v1/fs/before", nodes[0].url)).body("b").send().unwrap();
    nodes[1].kill();
    nodes[2].kill();
    let r = c.put(format!("{}/v1/fs/during", nodes[0].url)).body("d").send().unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    let v: Value = r.json().unwrap();
    assert_eq!(v["error"]["code"], "unavailable");
    assert_eq!(nodes[0].cli(&["ls", "/"]).status.code(), Some(4), "reads are refused too, never stale");
    nodes[1].restart_same_port();
    wait_for("writes to work again", Duration::from_secs(30), || {
        c.put(format!("{}/v1/fs/after", nodes[0].url))
            .body("a")
            .send()
            .map(|r| r.status().is_success())
            .unwrap_or(false)
    });
    // An `unavailable` write has an unknown outcome (it may commit once the majority is back);
    // whatever it is, the namespace is consistent on every node.
    let listing = nodes[0].ok(&["ls", "/"]);
    assert!(listing == "after\nbefore\n" || listing == "after\nbefore\nduring\n", "{listing}");
}

#[test]
fn a_local_cluster_in_one_command() {
    let dir = tempfile::tempdir().unwrap();
    let base = common::free_port_block(3);
    let mut parent = std::process::Command::new(common::bin())
        .args(["up", "--nodes", "3", "--listen", &format!("127.0.0.1:{base}"), "--s3-listen", "127.0.0.1:0", "--data"])
        .arg(dir.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(parent.stdout.take().unwrap()));
    assert!(lines.next().unwrap().unwrap().contains("cluster of 3 nodes ready"));
    let urls: Vec<String> =
        (0..3).map(|_| lines.next().unwrap().unwrap().split_whitespace().nth(2).unwrap().to_string()).collect();
    assert_eq!(urls[2], format!("http://127.0.0.1:{}", base + 2));
    let key = common::admin_key(&dir.path().join("node-0"));
    let urls: Vec<String> = urls.iter().map(|u| common::with_key(u, key.as_deref())).collect();
    let c = http();
    let v: Value = c.get(format!("{}/v1/cluster", urls[0])).send().unwrap().json().unwrap();
    assert_eq!(v["nodes"].as_array().unwrap().iter().filter(|n| n["voter"] == true).count(), 3);
    // The joiners got the secret through their environment: no command line shows it.
    let secret = c.get(format!("{}/v1/cluster/secret", urls[0])).send().unwrap().json::<Value>().unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_string();
    for proc in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = std::fs::read(proc.path().join("cmdline")).unwrap_or_default();
        assert!(!String::from_utf8_lossy(&cmdline).contains(&secret), "{:?} shows the secret", proc.path());
    }
    c.put(format!("{}/v1/fs/x", urls[2])).body("from node 2").send().unwrap();
    assert_eq!(c.get(format!("{}/v1/fs/x", urls[0])).send().unwrap().text().unwrap(), "from node 2");
    std::process::Command::new("kill").args(["-TERM", &parent.id().to_string()]).status().unwrap();
    assert!(parent.wait().unwrap().success());
    for url in &urls {
        assert!(c.get(format!("{url}/v1/cluster")).send().is_err(), "{url} stopped with the parent");
    }
}

#[test]
fn beyond_five_nodes_new_ones_are_learners_and_voters_spread_over_zones() {
    let first = TestNode::start(&["--zone", "a"]);
    let secret = first.ok(&["status", "--secret"]).trim().to_string();
    let mut nodes = vec![first];
    for zone in ["a", "a", "a", "a", "a"] {
        let join = nodes[0].url.clone();
        nodes.push(TestNode::start(&["--join", &join, "--secret", &secret, "--zone", zone]));
    }
    wait_for("five voters and a learner", Duration::from_secs(30), || {
        let v = cluster(&nodes[0]);
        let all = v["nodes"].as_array().unwrap();
        all.len() == 6 && all.iter().filter(|n| n["voter"] == true).count() == 5
    });
    all_up(&nodes[0], 6);
    // A node from a new zone takes a voter seat from the crowded zone.
    let join = nodes[0].url.clone();
    nodes.push(TestNode::start(&["--join", &join, "--secret", &secret, "--zone", "b"]));
    wait_for("the zone-b node to become a voter", Duration::from_secs(30), || {
        let v = cluster(&nodes[0]);
        let all = v["nodes"].as_array().unwrap();
        all.len() == 7
            && all.iter().filter(|n| n["voter"] == true).count() == 5
            && all.iter().any(|n| n["voter"] == true && n["url"] == nodes[6].plain_url.as_str())
    });
    assert!(nodes[3].ok(&["mkdir", "-p", "/still/writable"]).is_empty());
}

#[test]
fn writes_with_a_copy_missing_are_acknowledged_and_recorded_under_replicated() {
    let mut nodes = start_cluster(3);
    let c = http();
    assert_eq!(cluster(&nodes[0])["chunks"]["under_replicated"], 0);
    nodes[2].kill();
    // Right after the kill the others still count node 2 as up: its copy fails, two of three
    // copies (a majority) are stored, and the write is acknowledged.
    let r = c.put(format!("{}/v1/fs/two-of-three", nodes[0].url)).body(data(6, 5 << 20)).send().unwrap();
    assert!(r.status().is_success(), "{}", r.text().unwrap());
    wait_for("the under-replicated chunks to be recorded", Duration::from_secs(10), || {
        cluster(&nodes[1])["chunks"]["under_replicated"].as_u64().unwrap_or(0) >= 1
    });
    assert!(nodes[1].ok(&["status"]).contains("under-replicated"));
    let got = c.get(format!("{}/v1/fs/two-of-three", nodes[1].url)).send().unwrap().bytes().unwrap();
    assert_eq!(got.as_ref(), data(6, 5 << 20).as_slice());
}

#[test]
fn large_files_are_read_from_every_node_at_once() {
    let nodes = start_cluster(3);
    let body = data(7, 40 << 20);
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("big");
    std::fs::write(&src, &body).unwrap();
    nodes[0].ok(&["put", src.to_str().unwrap(), "/big"]);
    let served = |n: &TestNode| -> u64 {
        let v: Value = http().get(format!("{}/v1/node", n.url)).send().unwrap().json().unwrap();
        v["chunks_served"].as_u64().unwrap()
    };
    let before: Vec<u64> = nodes.iter().map(served).collect();
    let back = dir.path().join("back");
    // Over HTTP: on one machine the client would otherwise read node 0's files directly.
    nodes[0].ok(&["--no-short-circuit", "get", "/big", back.to_str().unwrap()]);
    assert_eq!(std::fs::read(&back).unwrap(), body);
    let helped = nodes.iter().zip(&before).filter(|(n, b)| served(n) > **b).count();
    assert!(helped >= 2, "the 10 chunks were served by {helped} node(s)");
}

#[test]
fn fan_out_replication_stores_every_copy_and_survives_a_dead_target() {
    let first = TestNode::start(&["--replication", "fanout"]);
    let secret = first.ok(&["status", "--secret"]).trim().to_string();
    let join = first.url.clone();
    let mut nodes = vec![first];
    for _ in 0..2 {
        nodes.push(TestNode::start(&["--replication", "fanout", "--join", &join, "--secret", &secret]));
    }
    for n in &nodes {
        all_up(n, 3);
    }
    let c = http();
    let body = data(9, 9 << 20);
    assert!(c.put(format!("{}/v1/fs/copied", nodes[1].url)).body(body.clone()).send().unwrap().status().is_success());
    assert!(nodes.iter().all(|n| n.chunk_files() == 3), "every node holds all three chunks");
    assert_eq!(nodes[0].cli(&["fsck"]).status.code(), Some(0));
    // A target that is down: the copies that got through (a majority) are acknowledged, and
    // the ledger knows the chunk is short of one.
    nodes[2].kill();
    let more = data(10, 5 << 20);
    let r = c.put(format!("{}/v1/fs/copied-2", nodes[0].url)).body(more.clone()).send().unwrap();
    assert!(r.status().is_success(), "{}", r.text().unwrap());
    for n in &nodes[..2] {
        assert_eq!(
            c.get(format!("{}/v1/fs/copied-2", n.url)).send().unwrap().bytes().unwrap().as_ref(),
            more.as_slice()
        );
        assert_eq!(c.get(format!("{}/v1/fs/copied", n.url)).send().unwrap().bytes().unwrap().as_ref(), body.as_slice());
    }
    wait_for("the short chunks to show", Duration::from_secs(30), || {
        cluster(&nodes[0])["chunks"]["under_replicated"].as_u64().unwrap_or(0) >= 2
    });
}

#[test]
fn nodes_joining_at_the_same_moment_all_get_in() {
    let first = TestNode::start(&[]);
    let secret = first.ok(&["status", "--secret"]).trim().to_string();
    let url = first.url.clone();
    // Three joiners started at once: membership changes queue on the leader instead of
    // failing with "already undergoing a configuration change".
    let joiners: Vec<std::thread::JoinHandle<TestNode>> = (0..3)
        .map(|_| {
            let (url, secret) = (url.clone(), secret.clone());
            std::thread::spawn(move || TestNode::start(&["--join", &url, "--secret", &secret]))
        })
        .collect();
    let mut nodes = vec![first];
    nodes.extend(joiners.into_iter().map(|j| j.join().unwrap()));
    wait_for("all four nodes to be voters", Duration::from_secs(60), || voters(&nodes[0]) == 4);
    for node in &nodes {
        all_up(node, 4);
    }
}

#[test]
fn a_client_sends_metadata_writes_to_the_leader_and_falls_back_when_it_is_gone() {
    let mut nodes = start_cluster(3);
    let leader_id = cluster(&nodes[0])["raft"]["leader"].as_str().unwrap().to_string();
    let li = nodes.iter().position(|n| cluster(n)["node_id"] == leader_id.as_str()).unwrap();
    let fi = (li + 1) % 3;
    let client = cairn_client::Client::connect(&nodes[fi].url).unwrap();
    client.mkdir("/routed/a", true).unwrap();
    // The answer named the leader: with the client's own node gone, writes still get in.
    nodes[fi].kill();
    client.mkdir("/routed/b", false).unwrap();
    // With the leader gone, they go through the client's node again, which forwards them to
    // the newly elected leader.
    nodes[fi].restart_same_port();
    all_up(&nodes[li], 3);
    nodes[li].kill();
    // Once the others have a new leader (by then the client's idle connection to the dead
    // one has seen its end, as it does within moments on a machine that is not overloaded).
    wait_for("a new leader", Duration::from_secs(30), || {
        cluster(&nodes[fi])["raft"]["leader"].as_str().is_some_and(|l| l != leader_id)
    });
    client.mkdir("/routed/c", false).unwrap();
    let third = 3 - li - fi;
    let v: Value = http().get(format!("{}/v1/fs/routed", nodes[third].url)).send().unwrap().json().unwrap();
    let names: Vec<&str> = v["entries"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["a", "b", "c"]);
}
