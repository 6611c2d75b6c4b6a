//! A new node that joins after the log was purged gets the metadata as a snapshot, streamed:
//! its memory while installing stays within a bound of its idle memory, and it serves every
//! file afterwards.

mod common;
use common::{data, http, wait_for, TestNode};
use serde_json::Value;
use std::time::Duration;

/// A process's resident set and its peak, in bytes.
fn rss(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap();
        line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() << 10
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[test]
fn a_large_snapshot_installs_on_a_new_node_within_the_memory_bound() {
    let first = TestNode::start(&["--snapshot-every", "200"]);
    // 2,500 small files of 16 KiB, kept inline: a ~40 MiB metadata snapshot (held whole in
    // memory, with its decoded copy, it would pass the bound).
    let files = 2500usize;
    let url = first.url.clone();
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let url = url.clone();
            std::thread::spawn(move || {
                let c = http();
                for i in (w..files).step_by(8) {
                    let r =
                        c.put(format!("{url}/v1/fs/d{}/f{i}", i % 20)).body(data(i as u64, 16 << 10)).send().unwrap();
                    assert!(r.status().is_success());
                }
            })
        })
        .collect();
    writers.into_iter().for_each(|w| w.join().unwrap());
    wait_for("a snapshot and a purged log", Duration::from_secs(30), || {
        let v: Value = http().get(format!("{url}/v1/cluster")).send().unwrap().json().unwrap();
        v["raft"]["purged"].as_u64().is_some_and(|p| p > 300)
    });
    let secret = first.ok(&["status", "--secret"]).trim().to_string();
    let second = TestNode::start(&["--join", &url, "--secret", &secret]);
    wait_for("the new node to catch up", Duration::from_secs(60), || {
        http().get(format!("{}/v1/fs/d9/f2489?op=stat", second.url)).send().is_ok_and(|r| r.status().is_success())
    });
    // Let it settle, then compare its peak with its idle memory.
    std::thread::sleep(Duration::from_secs(2));
    let (idle, peak) = rss(second.pid());
    eprintln!("new node: idle RSS {} MiB, peak {} MiB", idle >> 20, peak >> 20);
    assert!(
        peak <= idle + (50 << 20),
        "peak RSS {} MiB while installing, idle {} MiB: more than 50 MiB apart",
        peak >> 20,
        idle >> 20
    );
    let c = http();
    for i in [0usize, 1234, 2499] {
        let got = c.get(format!("{}/v1/fs/d{}/f{i}", second.url, i % 20)).send().unwrap().bytes().unwrap();
        assert!(got.as_ref() == data(i as u64, 16 << 10).as_slice(), "file {i} on the new node");
    }
}
