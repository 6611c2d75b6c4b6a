//! `cairn bench --locks`: the lock service and conditional writes, on a node and on a
//! 3-node cluster started in the scratch directory.
//!
//! Lock phase: acquire then release a lock (each pair on its own path, so no request waits
//! for another) at concurrency 1 and 32, spread over the nodes. Write phase: 1 KiB files
//! created plainly, then created with `If-None-Match: *`, then replaced with `If-Match`
//! (each a compare-and-swap), at concurrency 32: what the conditions cost beside plain writes.

use crate::bench_meta::phase;
use anyhow::Result;
use bytes::Bytes;
use cairn_client::{datapath, AsyncClient, Guarded, LockOptions};
use cairn_core::lock::{Guard, Precondition};
use cairn_core::wire::{Content, Target};
use cairn_core::FsPath;
use std::path::Path;
use std::sync::Arc;

/// Writes `data` at `path` through `c`, presenting `guard`.
async fn put(c: &AsyncClient, path: &str, data: &Bytes, guard: Guard) -> Result<String> {
    let at = Target::Path(FsPath::parse(path)?);
    let b = Guarded::new(c.backend().clone(), guard);
    let content = Content::Inline(data.to_vec());
    let inode = datapath::commit(&b, &at, content, data.len() as u64, Default::default()).await?;
    Ok(inode.etag())
}

/// Runs the benchmark: one node, then three.
pub async fn run(scratch: &Path, pairs: usize) -> Result<()> {
    println!("cairn bench --locks: {pairs} lock acquire+release pairs per run; 1 KiB writes at concurrency 32");
    println!(
        "{:<6} {:>12} {:>12} {:>12} {:>14} {:>12}",
        "nodes", "pairs/s c=1", "pairs/s c=32", "plain PUT/s", "create-only/s", "CAS PUT/s"
    );
    for nodes in [1, 3] {
        let cluster = crate::local_cluster::throwaway(scratch, ".cairn-bench-locks-", nodes).await?;
        let clients = &cluster.clients;
        let c = |i: usize| &clients[i % clients.len()];
        let base = format!("/.bench-locks-{:08x}", rand::random::<u32>());
        c(0).mkdir(&base, true).await?;
        let base = base.as_str();
        let mut pair_rates = Vec::new();
        for (concurrency, n) in [(1, (pairs / 8).max(1)), (32, pairs)] {
            let r = phase(n, concurrency, |i| async move {
                let path = format!("{base}/l{concurrency}-{i}");
                let guard = c(i).lock(&[path.as_str()], &LockOptions::default()).await?;
                guard.release().await?;
                Ok(())
            })
            .await?;
            pair_rates.push(r);
        }
        let files = pairs;
        let data = Bytes::from(vec![7u8; 1024]);
        let data = &data;
        let plain =
            phase(
                files,
                32,
                |i| async move { put(c(i), &format!("{base}/p{i}"), data, Guard::default()).await.map(drop) },
            )
            .await?;
        let etags: Vec<std::sync::Mutex<String>> = (0..files).map(|_| Default::default()).collect();
        let etags = Arc::new(etags);
        let create_only = phase(files, 32, |i| {
            let etags = etags.clone();
            async move {
                let absent = Guard { preconditions: vec![Precondition::Absent], ..Guard::default() };
                let tag = put(c(i), &format!("{base}/c{i}"), data, absent).await?;
                *etags[i].lock().expect("etag lock") = tag;
                Ok(())
            }
        })
        .await?;
        let cas = phase(files, 32, |i| {
            let etags = etags.clone();
            async move {
                let tag = etags[i].lock().expect("etag lock").clone();
                let matches = Guard { preconditions: vec![Precondition::EtagIn(vec![tag])], ..Guard::default() };
                put(c(i), &format!("{base}/c{i}"), data, matches).await.map(drop)
            }
        })
        .await?;
        println!(
            "{:<6} {:>12.0} {:>12.0} {:>12.0} {:>14.0} {:>12.0}",
            nodes, pair_rates[0], pair_rates[1], plain, create_only, cas
        );
    }
    Ok(())
}
