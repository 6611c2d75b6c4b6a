//! `cairn bench --metadata`: metadata operations at scale, like mdtest.
//!
//! Starts a node process (then a 3-node cluster) in the scratch directory and runs, with 32
//! concurrent clients spread over the nodes: create N empty files in 100 directories, stat
//! each, list every directory in pages, rename each file, delete each file. Prints the rate of
//! each phase, the metadata bytes per file on disk (data dirs minus chunks, after the
//! creates) and the nodes' resident memory: idle after the creates (the largest node) and the
//! peak of the whole run.

use anyhow::{Context, Result};
use bytes::Bytes;
use cairn_core::wire::{Target, LIST_DEFAULT};
use cairn_core::FsPath;
use futures::{stream, StreamExt, TryStreamExt};
use std::path::Path;
use std::time::{Duration, Instant};

/// Directories the files are spread over.
const DIRS: usize = 100;

/// Bytes of every file under `dir`, skipping `chunks/` (the metadata a node keeps on disk).
fn metadata_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() && e.file_name() != "chunks" => metadata_bytes(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

/// A process's resident set and its peak, in bytes (`/proc/PID/status`).
fn rss(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map_or(0, |kib| kib << 10)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Runs `op` for every index in `0..files` with `concurrency` in flight; returns operations
/// per second.
pub(crate) async fn phase<F, Fut>(files: usize, concurrency: usize, op: F) -> Result<f64>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let t = Instant::now();
    stream::iter(0..files).map(op).buffer_unordered(concurrency).try_collect::<Vec<()>>().await?;
    Ok(files as f64 / t.elapsed().as_secs_f64())
}

/// Runs the benchmark: one node, then three.
pub async fn run(scratch: &Path, files: usize, concurrency: usize) -> Result<()> {
    println!("cairn bench --metadata: {files} empty files in {DIRS} directories, {concurrency} concurrent clients");
    println!(
        "{:<8} {:>10} {:>10} {:>12} {:>10} {:>10} {:>12} {:>10} {:>10}",
        "nodes", "create/s", "stat/s", "list ent/s", "rename/s", "delete/s", "disk B/file", "idle RSS", "peak RSS"
    );
    for nodes in [1, 3] {
        run_cluster(scratch, files, concurrency, nodes).await?;
    }
    Ok(())
}

async fn run_cluster(scratch: &Path, files: usize, concurrency: usize, nodes: usize) -> Result<()> {
    let cluster = crate::local_cluster::throwaway(scratch, ".cairn-bench-meta-", nodes).await?;
    let (dir, clients) = (&cluster.dir, &cluster.clients);
    let c = |i: usize| &clients[i % clients.len()];
    let base = format!("/.bench-meta-{:08x}", rand::random::<u32>());
    for d in 0..DIRS {
        clients[0].mkdir(&format!("{base}/d{d}"), true).await?;
    }
    let path = |i: usize| format!("{base}/d{}/f{i}", i % DIRS);
    let moved = |i: usize| format!("{base}/d{}/g{i}", i % DIRS);
    let create = phase(files, concurrency, |i| async move {
        c(i).put_bytes(&path(i), Bytes::new()).await?;
        Ok(())
    })
    .await?;
    // Idle: let background work settle and freed memory go back (see up::TRIM_EVERY), then
    // read memory and disk.
    tokio::time::sleep(crate::up::TRIM_EVERY + Duration::from_secs(2)).await;
    let pids: Vec<u32> = cluster.children.0.iter().flatten().map(|c| c.id()).collect();
    let idle = pids.iter().map(|p| rss(*p).0).max().unwrap_or(0);
    let disk: u64 =
        (0..nodes).map(|k| metadata_bytes(&dir.path().join(format!("node-{k}")))).sum::<u64>() / nodes as u64;
    let stat = phase(files, concurrency, |i| async move {
        c(i).stat(&path(i)).await?;
        Ok(())
    })
    .await?;
    let t = Instant::now();
    let base = base.as_str();
    let listed: usize = stream::iter(0..DIRS)
        .map(|d| async move {
            let at = Target::Path(FsPath::parse(&format!("{base}/d{d}")).context("bench path")?);
            let n = c(d).entries(at, LIST_DEFAULT).try_fold(0usize, |n, _| async move { Ok(n + 1) }).await?;
            Ok::<_, anyhow::Error>(n)
        })
        .buffer_unordered(concurrency.min(DIRS))
        .try_fold(0, |acc, n| async move { Ok(acc + n) })
        .await?;
    anyhow::ensure!(listed == files, "listed {listed} entries, created {files}");
    let list = listed as f64 / t.elapsed().as_secs_f64();
    let rename = phase(files, concurrency, |i| async move {
        c(i).rename(&path(i), &moved(i)).await?;
        Ok(())
    })
    .await?;
    let delete = phase(files, concurrency, |i| async move {
        c(i).remove(&moved(i), false).await?;
        Ok(())
    })
    .await?;
    let peak = pids.iter().map(|p| rss(*p).1).max().unwrap_or(0);
    println!(
        "{:<8} {:>10.0} {:>10.0} {:>12.0} {:>10.0} {:>10.0} {:>12.0} {:>9}M {:>9}M",
        nodes,
        create,
        stat,
        list,
        rename,
        delete,
        disk as f64 / files as f64,
        idle >> 20,
        peak >> 20
    );
    drop(cluster);
    Ok(())
}
