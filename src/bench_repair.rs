//! `cairn bench --repair`: how fast a cluster re-protects the data of a node it lost.
//!
//! Starts four node processes in the scratch directory (replicas:3, repair delay 1 s), writes
//! `--size` bytes in 64 MiB files, SIGKILLs the node holding the most, and times until the
//! ledger shows the lost node down and every chunk at policy again on the survivors (each new
//! copy verified and fsync'd by the node that stored it; fsck agrees). Prints the repair rate beside this disk's raw
//! write+fsync speed on the same number of bytes, measured in the same run (every repaired
//! copy is read on one node and written and fsync'd on another, all on this disk).

use crate::bench::{human, rate, raw_disk, MIB};
use crate::local_cluster::{start_child, Children};
use anyhow::{bail, Context, Result};
use bytes::Bytes;
use cairn_client::AsyncClient;
use futures::{stream, StreamExt, TryStreamExt};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

/// Nodes in the benchmark cluster.
const NODES: usize = 4;
/// How long a node may be silent before repair starts, in the benchmark.
const REPAIR_DELAY: &str = "1s";
/// Longest the benchmark waits for re-protection.
const DEADLINE: Duration = Duration::from_secs(600);

async fn get_json(http: &reqwest::Client, url: &str) -> Result<Value> {
    Ok(http.get(url).send().await?.error_for_status()?.json().await?)
}

/// Runs the repair benchmark with `total` bytes of data.
pub async fn run(scratch: &Path, total: u64) -> Result<()> {
    let dir = tempfile::Builder::new().prefix(".cairn-bench-repair-").tempdir_in(scratch)?;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
    let flags = |extra: &[String]| -> Vec<String> {
        let mut f: Vec<String> = ["--repair-delay", REPAIR_DELAY, "--repair-interval", "200ms", "--capacity", "1TiB"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        f.extend_from_slice(extra);
        f
    };
    let any_port: SocketAddr = "127.0.0.1:0".parse().expect("literal address");
    let mut children = Children(Vec::new());
    let mut urls = Vec::new();
    let (child, url) = start_child(&dir.path().join("node-0"), &any_port, &flags(&[]))?;
    children.0.push(Some(child));
    urls.push(url);
    let node0 = dir.path().join("node-0");
    let secret = crate::local_cluster::secret(&crate::local_cluster::keyed(&urls[0], &node0)?).await?;
    for k in 1..NODES {
        let join = flags(&["--join".into(), urls[0].clone(), "--secret".into(), secret.clone()]);
        let (child, url) = start_child(&dir.path().join(format!("node-{k}")), &any_port, &join)?;
        children.0.push(Some(child));
        urls.push(url);
    }
    // This process's own requests carry the admin key; the children's --join URLs do not.
    let urls: Vec<String> = urls.iter().map(|u| crate::local_cluster::keyed(u, &node0)).collect::<Result<_>>()?;
    let c = AsyncClient::connect(&urls[0])?;
    let file = 64u64 << 20;
    let files = total.div_ceil(file) as usize;
    let base = Bytes::from((0..file).map(|_| rand::random::<u8>()).collect::<Vec<u8>>());
    println!("cairn bench --repair: {NODES} nodes, replicas:3, writing {} ...", human(files as u64 * file));
    stream::iter(0..files)
        .map(|i| {
            let data = crate::bench::file_data(&base, i);
            let c = &c;
            async move { c.put_bytes(&format!("/repair/f{i}"), data).await }
        })
        .buffer_unordered(4)
        .try_collect::<Vec<_>>()
        .await?;
    let used = |v: &Value| v["used"].as_u64().unwrap_or(0);
    let mut held = Vec::new();
    for u in &urls {
        held.push(used(&get_json(&http, &format!("{u}/v1/node")).await?));
    }
    let victim = (0..NODES).max_by_key(|k| held[*k]).expect("nodes");
    let lost = held[victim];
    let survivors: Vec<String> = (0..NODES).filter(|k| *k != victim).map(|k| urls[k].clone()).collect();
    let victim_id =
        get_json(&http, &format!("{}/v1/node", urls[victim])).await?["id"].as_u64().unwrap_or(0).to_string();
    let t = Instant::now();
    if let Some(mut child) = children.0[victim].take() {
        child.kill().context("killing the node")?;
        let _ = child.wait();
    }
    // Done when the ledger says so: the lost node is seen down (its copies no longer count),
    // no chunk is below policy or unreadable, and fsck finds every file at policy. (Counting
    // stored bytes against the total before the kill is no criterion: surplus copies trimmed
    // meanwhile make that total unreachable.) The repair rate is taken from the first new
    // copy, seen as the survivors' stored bytes growing, to the end.
    let before: u64 = (0..NODES).filter(|k| *k != victim).map(|k| held[k]).sum();
    // (stored bytes on the survivors, when they last grew): the repair's own span.
    let (mut stored, mut first_copy, mut last_copy) = (before, None, None);
    loop {
        let mut now = 0;
        for u in &survivors {
            now += used(&get_json(&http, &format!("{u}/v1/node")).await?);
        }
        if now > stored {
            first_copy.get_or_insert_with(Instant::now);
            last_copy = Some(Instant::now());
        }
        stored = stored.max(now);
        let s = get_json(&http, &format!("{}/v1/cluster", survivors[0])).await?;
        let down = s["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|n| n["id"].as_str() == Some(victim_id.as_str()) && n["state"] == "down");
        if down && s["chunks"]["under_replicated"] == 0 && s["chunks"]["unavailable"] == 0 {
            let v = get_json(&http, &format!("{}/v1/fsck", survivors[0])).await?;
            if v["at_policy"] == true && v["files_checked"].as_u64() == Some(files as u64) {
                break;
            }
        }
        if t.elapsed() > DEADLINE {
            bail!("not re-protected after {:?}", DEADLINE);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = t.elapsed();
    let copied = stored - before;
    let active = match (first_copy, last_copy) {
        (Some(a), Some(b)) if b > a => b - a,
        _ => took,
    };
    let scratch = scratch.to_path_buf();
    let raw = tokio::task::spawn_blocking(move || raw_disk(&scratch, lost, false)).await??;
    println!(
        "lost node {victim} holding {:.0} MiB: back at policy {:.1} s after the kill (its {REPAIR_DELAY} repair delay \
         and the 10 s before a silent node counts as down included)",
        lost as f64 / MIB,
        took.as_secs_f64()
    );
    println!(
        "repair copied {:.0} MiB at {:.1} MiB/s (first new copy to last)   raw disk write+fsync {:.1} MiB/s (same bytes, same run)",
        copied as f64 / MIB,
        rate(copied, active),
        rate(lost, raw.write)
    );
    drop(children);
    Ok(())
}
