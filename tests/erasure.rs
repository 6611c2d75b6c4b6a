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

/// Shard files of `node` of code `code` (e.g. `2+1`).
fn shards_of(node: &TestNode, code: &str) -> usize {
    parts_on(node).1.iter().filter(|p| p.to_str().unwrap().ends_with(code)).count()
}

#[test]
fn replicated_files_are_archived_while_read_and_an_interrupted_archive_loses_nothing() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    let mut nodes = start_cluster_with(4, FAST);
    nodes[0].ok(&["mkdir", "/warm"]);
    let (a, b, c) = (data(21, 9 << 20), data(22, 5 << 20), data(23, 24 << 20));
    put(&nodes[0], "/warm/a", a.clone());
    put(&nodes[0], "/warm/b", b.clone());
    put(&nodes[0], "/warm/c", c.clone());
    assert_eq!(fsck(&nodes[0]), 0);

    // A reader keeps reading /warm/a while it is archived: every read is whole and right.
    let (stop, bad, reads) =
        (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
    let reader = {
        let (url, a, stop, bad, reads) = (nodes[2].url.clone(), a.clone(), stop.clone(), bad.clone(), reads.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let whole = http().get(format!("{url}/v1/fs/warm/a")).send().ok().filter(|r| r.status().is_success());
                if whole.and_then(|r| r.bytes().ok()).is_none_or(|b| b.as_ref() != a.as_slice()) {
                    bad.store(true, Ordering::Relaxed);
                }
                reads.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let out = nodes[1].ok(&["archive", "/warm/a", "--ec", "2+1"]);
    // (Repair may encode a chunk itself once the file is switched: the archive then skips it.)
    assert!(out.contains("archived 1 files (") && out.contains("pipelined"), "{out}");
    let v: serde_json::Value =
        serde_json::from_str(&nodes[1].ok(&["archive", "/warm/b", "--ec", "2+1", "--no-pipeline", "--json"])).unwrap();
    assert_eq!((v["files"].as_u64(), v["pipelined"].as_bool()), (Some(1), Some(false)), "{v}");
    assert!(v["chunks"].as_u64().unwrap() <= 2, "{v}");
    // The copies go once the shards are at policy: five chunks, three shards each.
    wait_for("the archived files' copies to be released", Duration::from_secs(60), || {
        nodes.iter().map(|n| shards_of(n, "2+1")).sum::<usize>() == 15
            && nodes.iter().map(|n| parts_on(n).0.len()).sum::<usize>() == 6 * 3
            && fsck(&nodes[0]) == 0
    });
    wait_for("a few reads during and after", Duration::from_secs(30), || reads.load(Ordering::Relaxed) >= 3);
    stop.store(true, Ordering::Relaxed);
    reader.join().unwrap();
    assert!(!bad.load(Ordering::Relaxed), "a read during the archive returned other bytes");
    assert_eq!((get(&nodes[3], "/warm/a"), get(&nodes[0], "/warm/b")), (a.clone(), b.clone()));
    let policies = cluster(&nodes[0])["policies"].clone();
    let ec = policies.as_array().unwrap().iter().find(|u| u["policy"] == "ec:2+1").cloned().unwrap();
    assert_eq!(ec["stored"].as_u64(), Some(14 << 20), "{policies}");

    // The node running an archive is killed part way: nothing is lost, and archiving again
    // (through another node) finishes the job.
    let mut child = std::process::Command::new(common::bin())
        .arg("--node")
        .arg(&nodes[3].url)
        .arg("--data")
        .arg(&nodes[3].data)
        .args(["archive", "/warm/c", "--ec", "2+1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the archive to store its first shards", Duration::from_secs(30), || {
        nodes.iter().map(|n| shards_of(n, "2+1")).sum::<usize>() > 15
    });
    nodes[3].kill();
    let _ = child.wait();
    assert_eq!(get(&nodes[0], "/warm/c"), c, "the file reads the same after the kill");
    let out = nodes[0].ok(&["archive", "/warm/c", "--ec", "2+1"]);
    assert!(out.contains("archived 1 files"), "{out}");
    assert_eq!(get(&nodes[1], "/warm/c"), c);
    wait_for("the last copies on live nodes to be released", Duration::from_secs(60), || {
        nodes[..3].iter().map(|n| parts_on(n).0.len()).sum::<usize>() == 0 && fsck(&nodes[0]) == 0
    });
    assert_eq!(get(&nodes[2], "/warm/c"), c);
}

#[test]
fn an_archive_rule_converts_the_files_older_than_its_age() {
    let node = TestNode::start(&["--archive-interval", "300ms", "--repair-interval", "300ms"]);
    node.ok(&["mkdir", "/logs"]);
    node.ok(&["mkdir", "/logs/keep"]);
    node.ok(&["policy", "set", "/logs", "archive:ec:2+1 after 2s"]);
    // The nearest rule wins: files below /logs/keep wait a day.
    node.ok(&["policy", "set", "/logs/keep", "archive:ec:2+1 after 1d"]);
    assert!(node.ok(&["policy", "get", "/logs"]).contains("archive:ec:2+1 after 2s"));
    for bad in ["archive:replicas:3 after 1d", "archive:ec:2+1", "archive:ec:2+1 after 3 weeks"] {
        assert!(!node.cli(&["policy", "set", "/logs", bad]).status.success(), "{bad} was accepted");
    }
    let (a, b) = (data(31, 300_000), data(32, 300_000));
    put(&node, "/logs/a", a.clone());
    put(&node, "/logs/keep/b", b.clone());
    assert!(!node.ok(&["policy", "get", "/logs/a"]).contains("ec:2+1"), "not archived while young");
    wait_for("the rule to archive /logs/a", Duration::from_secs(30), || {
        node.ok(&["policy", "get", "/logs/a"]).contains("ec:2+1") && parts_on(&node).0.len() == 1
    });
    assert_eq!(shards_of(&node, "2+1"), 3, "one chunk, three shards");
    assert!(!node.ok(&["policy", "get", "/logs/keep/b"]).contains("ec:2+1"), "a day has not passed for b");
    assert_eq!((get(&node, "/logs/a"), get(&node, "/logs/keep/b")), (a, b));
    assert_eq!(fsck(&node), 0);
}

#[test]
fn rebalance_moves_shards_to_a_new_node() {
    let fast = [FAST, &["--capacity", "64MiB"][..]].concat();
    let mut nodes = start_cluster_with(3, &fast);
    nodes[0].ok(&["mkdir", "/s"]);
    nodes[0].ok(&["policy", "set", "/s", "ec:2+1"]);
    let files: Vec<Vec<u8>> = (0..8).map(|i| data(40 + i, 4 << 20)).collect();
    for (i, body) in files.iter().enumerate() {
        put(&nodes[0], &format!("/s/f{i}"), body.clone());
    }
    let secret = nodes[0].ok(&["status", "--secret"]).trim().to_string();
    let join = [&["--join", nodes[0].url.as_str(), "--secret", secret.as_str()][..], &fast[..]].concat();
    nodes.push(TestNode::start(&join));
    wait_for("shards to move to the new node", Duration::from_secs(60), || shards_of(&nodes[3], "2+1") >= 3);
    // Moved, not copied: three shards per chunk (once no move is half done).
    wait_for("every chunk at policy with three shards", Duration::from_secs(30), || {
        fsck(&nodes[0]) == 0 && nodes.iter().map(|n| shards_of(n, "2+1")).sum::<usize>() == 24
    });
    for (i, body) in files.iter().enumerate() {
        assert_eq!(&get(&nodes[3], &format!("/s/f{i}")), body);
    }
    for n in &nodes {
        n.assert_space_matches_disk();
    }
}
