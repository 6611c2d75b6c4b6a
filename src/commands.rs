//! The client subcommands: thin adapters over `cairn_client::AsyncClient`.

use crate::Cmd;
use anyhow::{bail, Context, Result};
use cairn_client::json::inode_json;
use cairn_client::{AsyncClient, ClientError, Credentials};
use cairn_core::wire::{DirEntry, Inode, InodeKind, Target, LIST_DEFAULT};
use cairn_core::{FsPath, Policy};
use clap::Subcommand;
use futures::{StreamExt, TryStreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

/// Files at least this big get a progress bar (when stderr is a terminal).
const PROGRESS_MIN: u64 = 4 << 20;

/// A command-line usage mistake (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// `cairn fsck` found files below policy (exit code 6).
#[derive(Debug, thiserror::Error)]
#[error("{0} files have chunks below policy")]
pub struct BelowPolicy(pub usize);

/// `cairn node ...`.
#[derive(Subcommand)]
pub enum NodeCmd {
    /// Move every chunk off a node; it keeps serving reads until removed.
    Drain {
        /// Node id (see `cairn status`).
        id: String,
    },
    /// Undo a drain: the node takes chunks again.
    Activate {
        /// Node id.
        id: String,
    },
    /// Remove a node from the cluster; refused while chunks would drop below policy.
    Remove {
        /// Node id.
        id: String,
        /// Remove even if chunks drop below policy.
        #[arg(long)]
        force: bool,
    },
}

/// `cairn worker ...`.
#[derive(Subcommand)]
pub enum WorkerCmd {
    /// Show every worker on the node talked to.
    List,
    /// Pause a worker on every node.
    Pause {
        /// repair, scrub, rebalance or gc.
        name: String,
    },
    /// Resume a paused worker.
    Resume {
        /// repair, scrub, rebalance or gc.
        name: String,
    },
    /// Limit a worker's bandwidth, e.g. `cairn worker throttle repair 50MiB` (per second;
    /// `0` restores the default).
    Throttle {
        /// repair, scrub, rebalance or gc.
        name: String,
        /// Bytes per second, e.g. 50MiB.
        #[arg(value_parser = crate::bench::parse_size)]
        rate: u64,
    },
}

/// `cairn policy ...`.
#[derive(Subcommand)]
pub enum PolicyCmd {
    /// Set a directory's policy, e.g. `cairn policy set /data replicas:2 --chunk-size 1MiB`.
    Set {
        /// Directory.
        path: String,
        /// Policy: replicas:N.
        policy: String,
        /// Chunk size for files created below, e.g. 1MiB (64KiB..=64MiB).
        #[arg(long, value_parser = crate::bench::parse_size)]
        chunk_size: Option<u64>,
    },
    /// Show the policy new files at a path get.
    Get {
        /// Directory.
        path: String,
    },
}

/// How the CLI reaches its node: the URL, the access key it presents, the CA it trusts.
pub struct Connection {
    /// The node's URL.
    pub url: String,
    /// `--key`/`CAIRN_KEY`, else the admin key in `<data>/admin.json` when readable.
    pub key: Option<Credentials>,
    /// `--ca`/`CAIRN_CA`, else `<data>/ca.crt` when readable (PEM).
    pub ca_pem: Option<Vec<u8>>,
}

impl Connection {
    /// A client for this connection.
    pub fn client(&self) -> Result<AsyncClient> {
        Ok(AsyncClient::connect_opts(&self.url, self.key.clone(), self.ca_pem.as_deref())?)
    }
}

/// Works out the [`Connection`]: `data` is `--data`/`CAIRN_DATA`, default `./cairn-data`.
pub fn connection(url: &str, key: Option<&str>, ca: Option<&Path>, data: Option<&Path>) -> Result<Connection> {
    let data = data.unwrap_or(Path::new("./cairn-data"));
    let key = match key {
        Some(k) => Some(k.parse().map_err(|e: ClientError| UsageError(format!("--key: {e}")))?),
        None => admin_key_in(data),
    };
    let ca_pem = match ca {
        Some(f) => Some(std::fs::read(f).with_context(|| format!("reading --ca {}", f.display()))?),
        None => std::fs::read(data.join("ca.crt")).ok(),
    };
    Ok(Connection { url: url.to_string(), key, ca_pem })
}

/// The admin key a node wrote to `<dir>/admin.json`, if it is there and readable.
pub fn admin_key_in(dir: &Path) -> Option<Credentials> {
    let bytes = std::fs::read(dir.join("admin.json")).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let (id, secret) = (v["access_key_id"].as_str()?, v["secret_access_key"].as_str()?);
    Some(Credentials { id: id.to_string(), secret: secret.to_string() })
}

/// Runs a client subcommand over `conn`.
pub async fn run(conn: Connection, json: bool, no_short_circuit: bool, cmd: Cmd) -> Result<()> {
    let mut c = conn.client()?;
    if no_short_circuit {
        c = c.without_short_circuit();
    }
    if matches!(&cmd, Cmd::Get { cache: true, .. } | Cmd::Cat { cache: true, .. }) {
        let dir = cairn_client::cache::ChunkCache::default_dir();
        let cache = cairn_client::cache::ChunkCache::open(&dir, cairn_client::cache::DEFAULT_CACHE_BYTES)
            .with_context(|| format!("opening the chunk cache in {}", dir.display()))?;
        c = c.with_cache(std::sync::Arc::new(cache));
    }
    match cmd {
        Cmd::Put { local, remote, recursive } => put(&c, &local, &remote, recursive, json).await,
        Cmd::Get { remote, local, recursive, version, .. } => get(&c, &remote, &local, recursive, version).await,
        Cmd::Log { path } => crate::history::log(&c, &path, json).await,
        Cmd::Restore { path, version } => show(&c.restore(&path, version).await?, &path, json),
        Cmd::Cat { path, .. } => cat(&c, &path, None).await,
        Cmd::Ls { path, long } => ls(&c, &path, long, json).await,
        Cmd::Stat { path } => stat(&c, &path, json).await,
        Cmd::Mkdir { path, parents } => show(&c.mkdir(&path, parents).await?, &path, json),
        Cmd::Rm { path, recursive } => Ok(c.remove(&path, recursive).await?),
        Cmd::Mv { from, to } => show(&c.rename(&from, &to).await?, &to, json),
        Cmd::Status { secret: true } => {
            let v = c.join_token().await?;
            println!("{v}");
            Ok(())
        }
        Cmd::Status { secret: false } => status(&c, json).await,
        Cmd::Fsck { path } => fsck(&c, &path, json).await,
        Cmd::Archive { path, ec, no_pipeline } => {
            let v = c.archive(&path, &ec, !no_pipeline).await?;
            if json {
                println!("{v}");
            } else {
                println!(
                    "archived {} files ({} chunks, {} bytes, {} shards) in {:.2} s, {}",
                    v["files"],
                    v["chunks"],
                    v["bytes"],
                    v["shards"],
                    v["seconds"].as_f64().unwrap_or(0.0),
                    if v["pipelined"] == true { "pipelined on the copy holders" } else { "centralised" }
                );
                for s in v["skipped"].as_array().into_iter().flatten() {
                    println!("skipped (changed meanwhile, run again): {}", s.as_str().unwrap_or(""));
                }
            }
            Ok(())
        }
        Cmd::Node { cmd } => {
            let v = match cmd {
                NodeCmd::Drain { id } => c.node_op(&id, "drain", false).await?,
                NodeCmd::Activate { id } => c.node_op(&id, "activate", false).await?,
                NodeCmd::Remove { id, force } => c.node_op(&id, "remove", force).await?,
            };
            message(&v, json)
        }
        Cmd::Worker { cmd: WorkerCmd::List } => workers(&c, json).await,
        Cmd::Key { cmd } => crate::keys::run(&c, cmd, json).await,
        Cmd::Bucket { cmd } => crate::bucket::run(&c, cmd).await,
        Cmd::Code { cmd } => crate::code::run(&c, cmd, json).await,
        Cmd::Worker { cmd } => {
            let v = match cmd {
                WorkerCmd::Pause { name } => c.worker_op(&name, "pause", None).await?,
                WorkerCmd::Resume { name } => c.worker_op(&name, "resume", None).await?,
                WorkerCmd::Throttle { name, rate } => c.worker_op(&name, "throttle", Some(rate)).await?,
                WorkerCmd::List => unreachable!("handled above"),
            };
            message(&v, json)
        }
        Cmd::Policy { cmd: PolicyCmd::Set { path, policy, chunk_size: None } } if policy.starts_with("versions:") => {
            let n = policy["versions:".len()..]
                .parse::<u32>()
                .map_err(|_| UsageError(format!("{policy:?}: versions:N takes a number")))?;
            show(&c.set_versions(&path, n).await?, &path, json)
        }
        Cmd::Policy { cmd: PolicyCmd::Set { path, policy, chunk_size: None } } if policy.starts_with("archive:") => {
            let rule = cairn_core::policy::ArchiveRule::parse(&policy).map_err(|e| ClientError::Api(e.into()))?;
            let text = rule.to_string();
            let mode = cairn_core::wire::XattrMode::Any;
            show(&c.set_xattr(&path, cairn_core::policy::ARCHIVE_XATTR, text.as_bytes(), mode).await?, &path, json)
        }
        Cmd::Policy { cmd: PolicyCmd::Set { path, policy, chunk_size } } => {
            let p = Policy::parse(&policy).map_err(|e| ClientError::Api(e.into()))?;
            let cs = chunk_size
                .map(|n| u32::try_from(n).map_err(|_| UsageError(format!("chunk size {n} is too large"))))
                .transpose()?;
            show(&c.set_policy(&path, p, cs).await?, &path, json)
        }
        Cmd::Policy { cmd: PolicyCmd::Get { path } } => {
            let inode = c.stat(&path).await?;
            let policy = inode.policy.map(|p| p.to_string()).unwrap_or_else(|| "inherited".into());
            let chunk = inode.chunk_size.map(|c| c.to_string()).unwrap_or_else(|| "inherited".into());
            let archive = match c.get_xattr(&path, cairn_core::policy::ARCHIVE_XATTR).await {
                Ok(v) => Some(String::from_utf8_lossy(&v).into_owned()),
                Err(e) if e.code() == cairn_core::ErrorCode::NotFound => None,
                Err(e) => return Err(e.into()),
            };
            if json {
                let v = serde_json::json!({ "path": path, "policy": policy, "chunk_size": chunk, "archive": archive });
                println!("{v}");
            } else {
                let archive = archive.map(|a| format!(", {a}")).unwrap_or_default();
                println!("{path}: {policy}, chunk size {chunk}{archive}");
            }
            Ok(())
        }
        Cmd::Attr(cmd) => crate::attrs::run(&c, json, cmd).await,
        Cmd::Lock(args) => crate::locks::lock(&c, args).await,
        Cmd::Mount(args) => crate::mount::mount(c, args).await,
        Cmd::Locks { path } => crate::locks::list(&c, path.as_deref(), json).await,
        Cmd::Up(_) | Cmd::Bench(_) | Cmd::Umount { .. } => unreachable!("dispatched in main"),
    }
}

fn fs_path(p: &str) -> Result<FsPath> {
    Ok(FsPath::parse(p).map_err(|e| ClientError::Api(e.into()))?)
}

/// Prints an inode in the chosen format (quiet in human mode: the command succeeded).
pub fn show(inode: &Inode, path: &str, json: bool) -> Result<()> {
    if json {
        println!("{}", inode_json(&fs_path(path)?, inode));
    }
    Ok(())
}

fn progress(len: u64, what: &str) -> ProgressBar {
    if len < PROGRESS_MIN {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

/// Joins a cairn directory path and a name.
fn join(dir: &str, name: &str) -> String {
    format!("{}/{}", dir.trim_end_matches('/'), name)
}

async fn put(c: &AsyncClient, local: &str, remote: &str, recursive: bool, json: bool) -> Result<()> {
    if local == "-" {
        let inode = c.put_reader(remote, tokio::io::stdin(), |_| {}).await?;
        return show(&inode, remote, json);
    }
    let meta = tokio::fs::metadata(local).await.with_context(|| format!("reading {local}"))?;
    let name = Path::new(local).file_name().and_then(|n| n.to_str()).unwrap_or("file");
    // Like cp: a destination that ends in '/' or is an existing directory receives the source.
    let into_dir = remote.ends_with('/') || matches!(c.stat(remote).await, Ok(i) if i.kind == InodeKind::Dir);
    let dest = if into_dir { join(remote, name) } else { remote.to_string() };
    if meta.is_dir() {
        if !recursive {
            bail!(UsageError(format!("{local} is a directory (use -r)")));
        }
        return put_tree(c, Path::new(local), &dest).await;
    }
    let inode = put_file(c, Path::new(local), &dest, meta.len()).await?;
    show(&inode, &dest, json)
}

async fn put_file(c: &AsyncClient, local: &Path, remote: &str, len: u64) -> Result<Inode> {
    let file = tokio::fs::File::open(local).await.with_context(|| format!("opening {}", local.display()))?;
    let bar = progress(len, remote);
    let inode = c.put_reader(remote, file, |n| bar.set_position(n)).await;
    bar.finish_and_clear();
    Ok(inode?)
}

async fn put_tree(c: &AsyncClient, local: &Path, remote: &str) -> Result<()> {
    let mut stack = vec![(local.to_path_buf(), remote.to_string())];
    while let Some((dir, rdir)) = stack.pop() {
        c.mkdir(&rdir, true).await?;
        let mut rd = tokio::fs::read_dir(&dir).await.with_context(|| format!("reading {}", dir.display()))?;
        while let Some(e) = rd.next_entry().await? {
            let name = e.file_name().into_string().map_err(|n| UsageError(format!("{n:?} is not UTF-8")))?;
            let ft = e.file_type().await?;
            if ft.is_dir() {
                stack.push((e.path(), join(&rdir, &name)));
            } else if ft.is_file() {
                put_file(c, &e.path(), &join(&rdir, &name), e.metadata().await?.len()).await?;
            }
        }
    }
    Ok(())
}

async fn get(c: &AsyncClient, remote: &str, local: &str, recursive: bool, version: Option<u64>) -> Result<()> {
    let name = fs_path(remote)?.name().unwrap_or("root").to_string();
    let local_path = PathBuf::from(local);
    let dest = if local.ends_with('/') || local_path.is_dir() { local_path.join(&name) } else { local_path };
    if local == "-" {
        return cat(c, remote, version).await;
    }
    if version.is_some() {
        // An earlier version (of a file that may be deleted now).
        return get_file(c, remote, version, &dest).await;
    }
    let inode = c.stat(remote).await?;
    if inode.kind == InodeKind::Dir {
        if !recursive {
            bail!(UsageError(format!("{remote} is a directory (use -r)")));
        }
        return get_tree(c, remote, &dest).await;
    }
    get_file(c, remote, None, &dest).await
}

/// Downloads to a temp file beside `dest`, then renames: no half-written destination.
async fn get_file(c: &AsyncClient, remote: &str, version: Option<u64>, dest: &Path) -> Result<()> {
    let (inode, mut stream) = c.read_version(remote, version, 0, u64::MAX).await?;
    let tmp =
        dest.with_file_name(format!(".{}.cairn-part", dest.file_name().and_then(|n| n.to_str()).unwrap_or("download")));
    let bar = progress(inode.size, remote);
    let result = async {
        let mut f = tokio::fs::File::create(&tmp).await.with_context(|| format!("creating {}", tmp.display()))?;
        let mut done = 0;
        while let Some(piece) = stream.next().await {
            let piece = piece?;
            f.write_all(&piece).await?;
            done += piece.len() as u64;
            bar.set_position(done);
        }
        f.sync_all().await?;
        tokio::fs::rename(&tmp, dest).await.with_context(|| format!("writing {}", dest.display()))
    }
    .await;
    bar.finish_and_clear();
    if result.is_err() {
        let _ = tokio::fs::remove_file(&tmp).await;
    }
    result
}

async fn get_tree(c: &AsyncClient, remote: &str, local: &Path) -> Result<()> {
    let mut stack = vec![(remote.to_string(), local.to_path_buf())];
    while let Some((rdir, ldir)) = stack.pop() {
        tokio::fs::create_dir_all(&ldir).await.with_context(|| format!("creating {}", ldir.display()))?;
        let mut entries = std::pin::pin!(c.entries(Target::Path(fs_path(&rdir)?), LIST_DEFAULT));
        while let Some(e) = entries.try_next().await? {
            let (r, l) = (join(&rdir, &e.name), ldir.join(&e.name));
            match e.inode.kind {
                InodeKind::Dir => stack.push((r, l)),
                InodeKind::File => get_file(c, &r, None, &l).await?,
                InodeKind::Symlink => {}
            }
        }
    }
    Ok(())
}

async fn cat(c: &AsyncClient, path: &str, version: Option<u64>) -> Result<()> {
    let (_, mut stream) = c.read_version(path, version, 0, u64::MAX).await?;
    let mut out = tokio::io::stdout();
    while let Some(piece) = stream.next().await {
        out.write_all(&piece?).await?;
    }
    out.flush().await?;
    Ok(())
}

fn long_line(name: &str, i: &Inode) -> String {
    let kind = match i.kind {
        InodeKind::File => '-',
        InodeKind::Dir => 'd',
        InodeKind::Symlink => 'l',
    };
    let mtime = humantime::format_rfc3339_seconds(cairn_client::json::time(i.mtime));
    format!("{kind}{:04o} {:>12} {mtime} {name}", i.mode, i.size)
}

async fn ls(c: &AsyncClient, path: &str, long: bool, json: bool) -> Result<()> {
    let base = fs_path(path)?;
    let inode = c.stat(path).await?;
    let print = |e: &DirEntry, first: bool| -> Result<()> {
        if json {
            let p = if inode.kind == InodeKind::Dir {
                base.join(&e.name).map_err(|e| ClientError::Api(e.into()))?
            } else {
                base.clone()
            };
            println!("{}{}", if first { "" } else { "," }, inode_json(&p, &e.inode));
            return Ok(());
        }
        let shown = if e.inode.kind == InodeKind::Dir { format!("{}/", e.name) } else { e.name.clone() };
        match long {
            true => println!("{}", long_line(&shown, &e.inode)),
            false => println!("{shown}"),
        }
        Ok(())
    };
    // A JSON array printed as pages arrive: memory stays one page whatever the directory.
    if json {
        println!("[");
    }
    if inode.kind != InodeKind::Dir {
        print(&DirEntry { name: base.name().unwrap_or("/").to_string(), inode: inode.clone() }, true)?;
    } else {
        let mut entries = std::pin::pin!(c.entries(Target::Ino(inode.ino), LIST_DEFAULT));
        let mut first = true;
        while let Some(e) = entries.try_next().await? {
            print(&e, first)?;
            first = false;
        }
    }
    if json {
        println!("]");
    }
    Ok(())
}

async fn stat(c: &AsyncClient, path: &str, json: bool) -> Result<()> {
    let inode = c.stat(path).await?;
    let v = inode_json(&fs_path(path)?, &inode);
    if json {
        println!("{v}");
        return Ok(());
    }
    if let Some(obj) = v.as_object() {
        for (k, val) in obj {
            let shown = val.as_str().map(str::to_string).unwrap_or_else(|| val.to_string());
            println!("{k:>10}: {shown}");
        }
    }
    Ok(())
}

async fn status(c: &AsyncClient, json: bool) -> Result<()> {
    let mut v = c.cluster().await?;
    let mounts = crate::mount::local_mounts();
    if json {
        v["mounts"] = serde_json::json!(mounts);
        println!("{v}");
        return Ok(());
    }
    let healthy = v["healthy"].as_bool().unwrap_or(false);
    println!("cluster {}  {}", v["cluster_id"].as_str().unwrap_or("?"), if healthy { "healthy" } else { "UNHEALTHY" });
    println!(
        "raft: leader {}  term {}  last log {}  applied {}",
        v["raft"]["leader"].as_str().unwrap_or("none"),
        v["raft"]["term"],
        v["raft"]["last_log_index"],
        v["raft"]["last_applied"]
    );
    println!(
        "{:<20} {:<8} {:<9} {:<6} {:<10} {:>10} {:>10} {:>8} {:>9}  url",
        "node", "state", "admin", "voter", "zone", "capacity", "free", "chunks", "log"
    );
    let gib = |x: &serde_json::Value| {
        x.as_u64().map(|b| format!("{:.1}G", b as f64 / (1u64 << 30) as f64)).unwrap_or_else(|| "?".into())
    };
    for n in v["nodes"].as_array().into_iter().flatten() {
        println!(
            "{:<20} {:<8} {:<9} {:<6} {:<10} {:>10} {:>10} {:>8} {:>9}  {}",
            n["id"].as_str().unwrap_or("?"),
            n["state"].as_str().unwrap_or("?"),
            n["admin_state"].as_str().unwrap_or("?"),
            n["voter"].as_bool().unwrap_or(false),
            n["zone"].as_str().unwrap_or("?"),
            gib(&n["capacity"]),
            gib(&n["free"]),
            n["chunks"],
            n["log_index"].as_u64().map(|i| i.to_string()).unwrap_or_else(|| "-".into()),
            n["url"].as_str().unwrap_or("?")
        );
    }
    let ch = &v["chunks"];
    println!(
        "chunks: {} healthy, {} under-replicated, {} unavailable, {} bytes at risk",
        ch["healthy"], ch["under_replicated"], ch["unavailable"], ch["bytes_at_risk"]
    );
    for p in v["policies"].as_array().into_iter().flatten() {
        let (stored, raw) = (p["stored"].as_u64().unwrap_or(0), p["raw"].as_u64().unwrap_or(0));
        let ratio = if stored == 0 { 0.0 } else { raw as f64 / stored as f64 };
        println!(
            "policy {}: {stored} bytes stored, {raw} bytes raw ({ratio:.2}x)",
            p["policy"].as_str().unwrap_or("?")
        );
    }
    print_workers(&v);
    for m in mounts {
        println!("mount {m} (on this machine)");
    }
    Ok(())
}

fn print_workers(v: &serde_json::Value) {
    for w in v["workers"].as_array().into_iter().flatten() {
        let rate = match w["rate"].as_u64() {
            Some(0) | None => String::new(),
            Some(r) => format!("  limit {:.1} MiB/s", r as f64 / (1 << 20) as f64),
        };
        println!(
            "worker {:<9} {:<7} passes {:<6} items {:<8} bytes {:<12}{rate}  last: {}",
            w["name"].as_str().unwrap_or("?"),
            if w["paused"].as_bool().unwrap_or(false) { "paused" } else { "running" },
            w["passes"],
            w["items"],
            w["bytes"],
            w["last_result"].as_str().unwrap_or("")
        );
    }
}

async fn workers(c: &AsyncClient, json: bool) -> Result<()> {
    let v = c.cluster().await?;
    if json {
        println!("{}", v["workers"]);
    } else {
        print_workers(&v);
    }
    Ok(())
}

fn message(v: &serde_json::Value, json: bool) -> Result<()> {
    if json {
        println!("{v}");
    } else {
        println!("{}", v["message"].as_str().unwrap_or_default());
    }
    Ok(())
}

async fn fsck(c: &AsyncClient, path: &str, json: bool) -> Result<()> {
    let v = c.fsck(path).await?;
    let files = v["files"].as_array().cloned().unwrap_or_default();
    if json {
        println!("{v}");
    } else {
        for f in &files {
            println!(
                "{}: {} of {} chunks below policy ({} unavailable); worst {}/{} copies",
                f["path"].as_str().unwrap_or("?"),
                f["under_replicated"].as_u64().unwrap_or(0) + f["unavailable"].as_u64().unwrap_or(0),
                f["chunks"],
                f["unavailable"],
                f["worst"][0],
                f["worst"][1]
            );
        }
        println!(
            "{}: {} files, {} chunks checked; {}",
            v["path"].as_str().unwrap_or(path),
            v["files_checked"],
            v["chunks_checked"],
            if files.is_empty() { "all at policy".to_string() } else { format!("{} files below policy", files.len()) }
        );
    }
    if files.is_empty() {
        Ok(())
    } else {
        Err(BelowPolicy(files.len()).into())
    }
}
