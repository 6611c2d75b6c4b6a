//! `cairn bench`: write then read N files of size S with concurrency C against a node, and
//! measure this disk's raw write+fsync and read speed on the same number of bytes in the same
//! run, so the figures can be judged against the machine's own limit.

use anyhow::{ensure, Context, Result};
use bytes::Bytes;
use cairn_client::{AsyncClient, Credentials};
use cairn_node::{Node, NodeConfig};
use clap::Args;
use futures::{stream, StreamExt, TryStreamExt};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub(crate) const MIB: f64 = (1 << 20) as f64;

/// Flags of `cairn bench`.
#[derive(Args)]
pub struct BenchArgs {
    /// Number of files (with --size; or with --metadata, default 100,000). Without both,
    /// runs the two standard scenarios: 1 GiB in 64 MiB files, and 10,000 files of 4 KiB.
    #[arg(long)]
    files: Option<usize>,
    /// File size, e.g. 4KiB, 64MiB (with --files).
    #[arg(long, requires = "files", value_parser = parse_size)]
    size: Option<u64>,
    /// Concurrent transfers [default: 4 for files >= 1 MiB, else 32].
    #[arg(long)]
    concurrency: Option<usize>,
    /// With --embedded: the node serves its clients over TLS (a certificate from its CA).
    #[arg(long, requires = "embedded")]
    tls: bool,
    /// Start a temporary node in the scratch directory instead of using --node.
    #[arg(long)]
    embedded: bool,
    /// Directory on the disk to measure (raw speed, embedded node data) [default: .].
    #[arg(long, default_value = ".")]
    scratch: PathBuf,
    /// Drop the kernel's page cache before each read phase (cairn's and the raw disk's), so
    /// reads come from the disk. Needs root; affects the whole machine's cache.
    #[arg(long)]
    cold: bool,
    /// Instead: time how fast a 4-node cluster (started in the scratch directory) re-protects
    /// the data of a node it loses, after writing this much, e.g. 1GiB.
    #[arg(long, value_parser = parse_size, conflicts_with_all = ["files", "embedded", "cold"])]
    repair: Option<u64>,
    /// Instead: metadata operations like mdtest (create, stat, paged list, rename, delete of
    /// --files empty files in 100 directories, concurrency 32) on a node and on a 3-node
    /// cluster started in the scratch directory; prints ops/s, bytes per file on disk and RSS.
    #[arg(long, conflicts_with_all = ["size", "embedded", "cold", "repair"])]
    metadata: bool,
    /// Instead: lock acquire+release pairs per second at concurrency 1 and 32 (--files
    /// pairs, default 4,000), and 1 KiB plain, create-only and compare-and-swap PUTs, on a
    /// node and on a 3-node cluster started in the scratch directory.
    #[arg(long, conflicts_with_all = ["size", "embedded", "cold", "repair", "metadata"])]
    locks: bool,
    /// Instead: fio (sequential 1 MiB write of this much with end_fsync [default 1GiB], cold
    /// sequential read, 4 KiB random reads at QD1) and --files (default 10,000) files of 4 KiB
    /// created, stat'ed, read and deleted, through the mount of a 3-node replicas:3 cluster
    /// started in the scratch directory, beside the same on a local directory there.
    #[arg(long, value_parser = parse_size, num_args = 0..=1, default_missing_value = "1GiB",
          conflicts_with_all = ["size", "embedded", "cold", "repair", "metadata", "locks"])]
    fuse: Option<u64>,
    /// Instead: S3 beside REST on a 3-node replicas:3 cluster started in the scratch directory:
    /// PUT and GET of 64 objects of 16 MiB, and PUT, GET, HEAD, LIST and DELETE of --files
    /// (default 5,000) objects of 4 KiB, at concurrency 8 and 32.
    #[arg(long, conflicts_with_all = ["size", "embedded", "cold", "repair", "metadata", "locks", "fuse"])]
    s3: bool,
    /// Instead: the coding engine on one core: IADD, MULT, MULADD and Reed-Solomon encode and
    /// decode (ec:4+2, 6+3, 10+4) of 1 MiB shards on every kernel this CPU runs, beside memcpy.
    #[arg(long, conflicts_with_all = ["size", "embedded", "cold", "repair", "metadata", "locks", "fuse", "s3"])]
    gf: bool,
    /// Instead: archive this much (e.g. 256MiB) of replicated files to ec:4+2 on a 4-node
    /// cluster started in the scratch directory, pipelined on the copy holders and then
    /// centralised on one node, every node's link paced to --peer-rate.
    #[arg(long, value_parser = parse_size,
          conflicts_with_all = ["size", "embedded", "cold", "repair", "metadata", "locks", "fuse", "s3", "gf"])]
    archive: Option<u64>,
    /// With --archive: each node's outgoing link speed in bytes per second.
    #[arg(long, value_parser = parse_size, default_value = "32MiB", requires = "archive")]
    peer_rate: u64,
}

/// Empties the page cache (after writing dirty pages back), so the next reads hit the disk.
pub(crate) fn drop_caches() -> Result<()> {
    std::process::Command::new("sync").status().context("running sync")?;
    std::fs::write("/proc/sys/vm/drop_caches", "1").context("dropping the page cache (--cold needs root)")
}

/// Parses sizes like `4096`, `4KiB`, `64MiB`, `1GiB`, `2TiB` (powers of two).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("bad size {s:?}"))?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return Err(format!("bad size unit in {s:?}")),
    };
    n.checked_mul(mult).ok_or_else(|| format!("size {s:?} too large"))
}

struct Scenario {
    name: String,
    files: usize,
    size: u64,
    concurrency: usize,
}

pub(crate) struct Figures {
    pub write: Duration,
    pub read: Duration,
}

pub(crate) fn rate(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / MIB / d.as_secs_f64().max(1e-9)
}

/// The bytes of file `i`: one random buffer, with `i` stamped into every 64 KiB so no two
/// files (or chunks) deduplicate.
pub(crate) fn file_data(base: &Bytes, i: usize) -> Bytes {
    let mut v = base.to_vec();
    for block in v.chunks_mut(64 << 10) {
        let n = block.len().min(8);
        block[..n].copy_from_slice(&(i as u64).to_le_bytes()[..n]);
    }
    Bytes::from(v)
}

async fn run_scenario(c: &AsyncClient, s: &Scenario, dir: &str, cold: bool) -> Result<Figures> {
    let base = Bytes::from((0..s.size).map(|_| rand::random::<u8>()).collect::<Vec<u8>>());
    c.mkdir(dir, true).await?;
    let t = Instant::now();
    stream::iter(0..s.files)
        .map(|i| {
            let data = file_data(&base, i);
            async move { c.put_bytes(&format!("{dir}/f{i}"), data).await }
        })
        .buffer_unordered(s.concurrency)
        .try_collect::<Vec<_>>()
        .await?;
    let write = t.elapsed();
    if cold {
        drop_caches()?;
    }
    let t = Instant::now();
    // Stream each file through (as `cairn cat > /dev/null` would): every chunk is verified
    // by the client; the bench checks lengths and each file's stamp.
    stream::iter(0..s.files)
        .map(|i| async move {
            let (_, mut body) = c.read_stream(&format!("{dir}/f{i}"), 0, u64::MAX).await?;
            let (mut len, mut stamp) = (0u64, None);
            while let Some(piece) = body.next().await {
                let piece = piece?;
                if stamp.is_none() && piece.len() >= 8 {
                    stamp = Some(u64::from_le_bytes(piece[..8].try_into().expect("8 bytes")));
                }
                len += piece.len() as u64;
            }
            ensure!(stamp.is_none_or(|st| st == i as u64), "file {i} read back with another file's content");
            ensure!(len == s.size, "file {i} read back with {len} bytes, not {}", s.size);
            Ok(())
        })
        .buffer_unordered(s.concurrency)
        .try_collect::<Vec<()>>()
        .await?;
    let read = t.elapsed();
    c.remove(dir, true).await?;
    Ok(Figures { write, read })
}

/// Raw disk: write `total` bytes to a temp file with fsync every 64 MiB and at the end, then
/// read them back.
pub(crate) fn raw_disk(scratch: &std::path::Path, total: u64, cold: bool) -> Result<Figures> {
    let piece = vec![0x5au8; 4 << 20];
    let path = scratch.join(format!(".cairn-bench-raw-{}", rand::random::<u32>()));
    let t = Instant::now();
    {
        let mut f = std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let mut done = 0u64;
        while done < total {
            let n = (total - done).min(piece.len() as u64) as usize;
            f.write_all(&piece[..n])?;
            done += n as u64;
            if done.is_multiple_of(64 << 20) {
                f.sync_data()?;
            }
        }
        f.sync_all()?;
    }
    let write = t.elapsed();
    if cold {
        drop_caches()?;
    }
    let t = Instant::now();
    let mut buf = vec![0u8; 4 << 20];
    let mut f = std::fs::File::open(&path)?;
    while f.read(&mut buf)? > 0 {}
    let read = t.elapsed();
    std::fs::remove_file(&path)?;
    Ok(Figures { write, read })
}

/// Runs `cairn bench`.
pub async fn run(conn: crate::commands::Connection, no_short_circuit: bool, args: BenchArgs) -> Result<()> {
    if let Some(total) = args.repair {
        return crate::bench_repair::run(&args.scratch, total).await;
    }
    if args.metadata {
        let files = args.files.unwrap_or(100_000);
        return crate::bench_meta::run(&args.scratch, files, args.concurrency.unwrap_or(32)).await;
    }
    if let Some(size) = args.fuse {
        return crate::bench_fuse::run(&args.scratch, size, args.files.unwrap_or(10_000)).await;
    }
    if args.s3 {
        return crate::bench_s3::run(&args.scratch, args.files.unwrap_or(5000)).await;
    }
    if args.gf {
        return crate::bench_gf::run();
    }
    if let Some(total) = args.archive {
        return crate::bench_archive::run(&args.scratch, total, args.peer_rate).await;
    }
    if args.locks {
        return crate::bench_locks::run(&args.scratch, args.files.unwrap_or(4000)).await;
    }
    ensure!(args.files.is_none() || args.size.is_some(), "--files needs --size (or --metadata)");
    let scenarios = match (args.files, args.size) {
        (Some(files), Some(size)) => vec![Scenario {
            name: format!("{files} x {}", human(size)),
            files,
            size,
            concurrency: args.concurrency.unwrap_or(if size >= 1 << 20 { 4 } else { 32 }),
        }],
        _ => vec![
            Scenario {
                name: "1 GiB in 64 MiB files".into(),
                files: 16,
                size: 64 << 20,
                concurrency: args.concurrency.unwrap_or(4),
            },
            Scenario {
                name: "10,000 files of 4 KiB".into(),
                files: 10_000,
                size: 4 << 10,
                concurrency: args.concurrency.unwrap_or(32),
            },
        ],
    };
    let mut embedded = None;
    let mut _data_dir = None;
    let (mut key, mut ca_pem) = (conn.key.clone(), conn.ca_pem.clone());
    let url = if args.embedded {
        let dir = tempfile::Builder::new().prefix(".cairn-bench-node-").tempdir_in(&args.scratch)?;
        let data = dir.path().to_path_buf();
        let config = NodeConfig { data, listen: "127.0.0.1:0".into(), tls: args.tls, ..NodeConfig::default() };
        let running = Node::start(config).await?;
        let url = running.node.url.clone();
        key = running
            .admin_key
            .as_ref()
            .map(|k| Credentials { id: k.access_key_id.clone(), secret: k.secret_access_key.clone() });
        ca_pem = std::fs::read(dir.path().join("ca.crt")).ok();
        embedded = Some(running);
        _data_dir = Some(dir);
        url
    } else {
        conn.url.clone()
    };
    let mut c = AsyncClient::connect_opts(&url, key, ca_pem.as_deref())?;
    if no_short_circuit {
        c = c.without_short_circuit();
    }
    println!(
        "cairn bench against {url}{}{}, reads {}",
        if args.embedded { " (embedded node)" } else { "" },
        if no_short_circuit { " (chunks over HTTP only)" } else { "" },
        if args.cold { "cold (page cache dropped first)" } else { "warm (page cache)" }
    );
    println!(
        "{:<24} {:>10} {:>10} {:>11} {:>11} {:>11} {:>11}",
        "scenario", "write MiB/s", "write op/s", "read MiB/s", "read op/s", "raw wr MiB/s", "raw rd MiB/s"
    );
    let run_id = rand::random::<u32>();
    for s in &scenarios {
        let total = s.files as u64 * s.size;
        let f = run_scenario(&c, s, &format!("/.bench-{run_id:08x}"), args.cold).await?;
        let (scratch, cold) = (args.scratch.clone(), args.cold);
        let raw = tokio::task::spawn_blocking(move || raw_disk(&scratch, total, cold)).await??;
        println!(
            "{:<24} {:>10.1} {:>10.0} {:>11.1} {:>11.0} {:>11.1} {:>11.1}",
            s.name,
            rate(total, f.write),
            s.files as f64 / f.write.as_secs_f64(),
            rate(total, f.read),
            s.files as f64 / f.read.as_secs_f64(),
            rate(total, raw.write),
            rate(total, raw.read),
        );
        println!(
            "{:<24} write {:.0}% of raw write+fsync, read {:.0}% of raw read (concurrency {})",
            "",
            100.0 * raw.write.as_secs_f64() / f.write.as_secs_f64(),
            100.0 * raw.read.as_secs_f64() / f.read.as_secs_f64(),
            s.concurrency
        );
    }
    if let Some(running) = embedded {
        running.shutdown().await?;
    }
    Ok(())
}

pub(crate) fn human(n: u64) -> String {
    match n {
        n if n >= 1 << 30 && n % (1 << 30) == 0 => format!("{} GiB", n >> 30),
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{} KiB", n >> 10),
        n => format!("{n} B"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes() {
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("4KiB").unwrap(), 4096);
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert!(parse_size("4 parsecs").is_err());
        assert!(parse_size("").is_err());
    }
}
