//! `cairn bench --archive`: archival of replicated files to `ec:4+2`, pipelined on the copy
//! holders against the centralised baseline (`--no-pipeline`), on links of one speed.
//!
//! Starts four node processes in the scratch directory, each sending to the others at most
//! `--peer-rate` (default 32 MiB/s: the node's own link pacing, so the disk is not the
//! bottleneck), writes `--archive` bytes twice in 16 MiB files at `replicas:3` (two trees),
//! archives one tree pipelined and the other centralised through the same node, and prints
//! both times beside the time the bytes the centralised node must send need at the link
//! speed (the baseline's bound). The target is pipelined <= 0.5x centralised.

use crate::bench::{human, MIB};
use crate::local_cluster::{start_child, Children};
use anyhow::{bail, Result};
use bytes::Bytes;
use cairn_client::AsyncClient;
use futures::{stream, StreamExt, TryStreamExt};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// Nodes in the benchmark cluster.
const NODES: usize = 4;
/// Each file's size.
const FILE: u64 = 16 << 20;

/// Runs the archive benchmark with `total` bytes per tree and links of `rate` bytes/s.
pub async fn run(scratch: &Path, total: u64, rate: u64) -> Result<()> {
    let dir = tempfile::Builder::new().prefix(".cairn-bench-archive-").tempdir_in(scratch)?;
    let flags = |extra: &[String]| -> Vec<String> {
        let mut f: Vec<String> =
            ["--capacity", "1TiB", "--peer-rate"].iter().map(|s| s.to_string()).chain([rate.to_string()]).collect();
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
    let c = AsyncClient::connect(&crate::local_cluster::keyed(&urls[0], &node0)?)?;
    let files = total.div_ceil(FILE) as usize;
    println!(
        "cairn bench --archive: {NODES} nodes, links of {}/s each, {} in {files} files of {} per run, replicas:3 -> ec:4+2",
        human(rate),
        human(files as u64 * FILE),
        human(FILE)
    );
    let base = Bytes::from((0..FILE).map(|_| rand::random::<u8>()).collect::<Vec<u8>>());
    for tree in ["pipelined", "central"] {
        stream::iter(0..files)
            .map(|i| {
                let data = crate::bench::file_data(&base, i + if tree == "central" { files } else { 0 });
                let c = &c;
                async move { c.put_bytes(&format!("/{tree}/f{i}"), data).await }
            })
            .buffer_unordered(2)
            .try_collect::<Vec<_>>()
            .await?;
    }
    let mut seconds = Vec::new();
    for (tree, pipeline) in [("pipelined", true), ("central", false)] {
        let v = c.archive(&format!("/{tree}"), "4+2", pipeline).await?;
        if v["files"].as_u64() != Some(files as u64) {
            bail!("archive of /{tree} did not switch every file: {v}");
        }
        seconds.push(v["seconds"].as_f64().unwrap_or(0.0));
    }
    // The centralised node sends at least the shards it does not keep itself: 5 of 6 per
    // chunk, each a quarter chunk, i.e. 1.25x the data, through its one link.
    let bound = files as f64 * FILE as f64 * 1.25 / rate as f64;
    println!(
        "archive pipelined {:.1} s ({:.0} MiB/s)   centralised {:.1} s ({:.0} MiB/s)   ratio {:.2}x (target <= 0.5x)   \
         centralised link bound {:.1} s",
        seconds[0],
        files as f64 * FILE as f64 / MIB / seconds[0].max(1e-9),
        seconds[1],
        files as f64 * FILE as f64 / MIB / seconds[1].max(1e-9),
        seconds[0] / seconds[1].max(1e-9),
        bound
    );
    drop(children);
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok(())
}
