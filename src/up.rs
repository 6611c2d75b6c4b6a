//! `cairn up`: merge the configuration (defaults < TOML file < env < flags) and run a node
//! until SIGINT or SIGTERM.

use anyhow::Context;
use cairn_node::{Node, NodeConfig};
use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

/// Flags of `cairn up`.
#[derive(Args)]
pub struct UpArgs {
    /// Address to listen on [default: 127.0.0.1:7070]; port 0 picks a free one.
    #[arg(long, env = "CAIRN_LISTEN")]
    listen: Option<String>,
    /// Address other nodes reach this one at (Raft, chunk transfer) [default: the client
    /// address with port + 100; a free port when the client port is 0].
    #[arg(long, env = "CAIRN_PEER_LISTEN")]
    peer_listen: Option<String>,
    /// Address to serve S3 on, or `off` [default: port 9000 on the --listen IP; a free port
    /// when the client port is 0; with --nodes N, node K on this port + K].
    #[arg(long, env = "CAIRN_S3_LISTEN", value_name = "ADDR")]
    s3_listen: Option<String>,
    /// Remove S3 multipart uploads not completed within this, e.g. 1h [default: 24h].
    #[arg(long, env = "CAIRN_S3_UPLOAD_EXPIRY", value_parser = humantime::parse_duration)]
    s3_upload_expiry: Option<Duration>,
    /// Host name or IP to announce in this node's URLs [default: the listen address; listening
    /// on 0.0.0.0, the address the default route leaves from].
    #[arg(long, env = "CAIRN_ADVERTISE")]
    advertise: Option<String>,
    /// TOML configuration file (see cairn.example.toml).
    #[arg(long, env = "CAIRN_CONFIG")]
    config: Option<PathBuf>,
    /// Grace period before unreferenced chunks are deleted, e.g. 1h [default: 1h].
    #[arg(long, env = "CAIRN_GC_GRACE", value_parser = humantime::parse_duration)]
    gc_grace: Option<Duration>,
    /// How often the garbage collector runs, e.g. 1m [default: 1m].
    #[arg(long, env = "CAIRN_GC_INTERVAL", value_parser = humantime::parse_duration)]
    gc_interval: Option<Duration>,
    /// Snapshot the metadata every this many Raft log entries [default: 5000].
    #[arg(long, env = "CAIRN_SNAPSHOT_EVERY")]
    snapshot_every: Option<u64>,
    /// This node's zone (failure domain) [default: default].
    #[arg(long, env = "CAIRN_ZONE")]
    zone: Option<String>,
    /// Bytes this node may hold, e.g. 100GiB [default: its disk's size].
    #[arg(long, env = "CAIRN_CAPACITY", value_parser = crate::bench::parse_size)]
    capacity: Option<u64>,
    /// How often the archive worker applies directories' archive rules [default: 10m].
    #[arg(long, env = "CAIRN_ARCHIVE_INTERVAL", value_parser = humantime::parse_duration)]
    archive_interval: Option<Duration>,
    /// Bytes per second this node sends to other nodes as data, e.g. 50MiB [default: unlimited].
    #[arg(long, env = "CAIRN_PEER_RATE", value_parser = crate::bench::parse_size)]
    peer_rate: Option<u64>,
    /// Start a local cluster of this many nodes (node K in <data>/node-K on the base port + K).
    #[arg(long, env = "CAIRN_NODES")]
    nodes: Option<usize>,
    /// Join the cluster of this member (any node's URL) at first start.
    #[arg(long, env = "CAIRN_JOIN")]
    join: Option<String>,
    /// The cluster secret (`cairn status --secret` on a member shows it).
    #[arg(long, env = "CAIRN_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// Read the cluster secret from this file (first line), keeping it out of `ps`.
    #[arg(long, value_name = "FILE", conflicts_with = "secret")]
    secret_file: Option<std::path::PathBuf>,
    /// How long a node may be down before its chunks are copied elsewhere, e.g. 10m [default: 10m].
    #[arg(long, env = "CAIRN_REPAIR_DELAY", value_parser = humantime::parse_duration)]
    repair_delay: Option<Duration>,
    /// How often repair and rebalance look for work, e.g. 5s [default: 5s].
    #[arg(long, env = "CAIRN_REPAIR_INTERVAL", value_parser = humantime::parse_duration)]
    repair_interval: Option<Duration>,
    /// How often every local chunk is re-read and re-hashed, e.g. 24h [default: 24h].
    #[arg(long, env = "CAIRN_SCRUB_INTERVAL", value_parser = humantime::parse_duration)]
    scrub_interval: Option<Duration>,
    /// TLS certificate chain (PEM) for the client port, with --tls-key [default: none; a node
    /// listening beyond loopback serves TLS with a certificate from its cluster's CA].
    #[arg(long, env = "CAIRN_TLS_CERT", value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// Key (PEM) of --tls-cert.
    #[arg(long, env = "CAIRN_TLS_KEY", value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve clients over TLS even on loopback (a certificate from the cluster CA).
    #[arg(long, env = "CAIRN_TLS")]
    tls: bool,
    /// Cut off an upload whose body stops flowing for this long, e.g. 60s [default: 60s].
    #[arg(long, env = "CAIRN_BODY_TIMEOUT", value_parser = humantime::parse_duration)]
    body_timeout: Option<Duration>,
    /// How copies reach their nodes: chain (node to node) or fanout (this node sends each)
    /// [default: chain].
    #[arg(long, env = "CAIRN_REPLICATION")]
    replication: Option<cairn_node::Replication>,
    /// Rejoin as node ID after its disk was replaced (empty data dir; needs --join): the
    /// node gets the chunks placement assigns to it back from the others.
    #[arg(long, env = "CAIRN_RECOVER", value_name = "ID")]
    recover: Option<u64>,
    /// Found a new cluster in a data dir whose metadata is missing or empty (a node refuses
    /// to start there otherwise; its old chunks become garbage).
    #[arg(long)]
    force_new_cluster: bool,
}

/// Reads a TOML config file into a [`NodeConfig`].
pub fn load_config_file(path: &std::path::Path) -> anyhow::Result<NodeConfig> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading config {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing config {}", path.display()))
}

/// The merged configuration.
fn config(data: Option<PathBuf>, args: UpArgs) -> anyhow::Result<NodeConfig> {
    let mut c = match &args.config {
        Some(path) => load_config_file(path)?,
        None => NodeConfig::default(),
    };
    if let Some(d) = data {
        c.data = d;
    }
    if let Some(l) = args.listen {
        c.listen = l;
    }
    if args.advertise.is_some() {
        c.advertise = args.advertise;
    }
    if args.peer_listen.is_some() {
        c.peer_listen = args.peer_listen;
    }
    if args.s3_listen.is_some() {
        c.s3_listen = args.s3_listen;
    }
    if let Some(e) = args.s3_upload_expiry {
        c.s3_upload_expiry = e;
    }
    if let Some(g) = args.gc_grace {
        c.gc_grace = g;
    }
    if let Some(i) = args.gc_interval {
        c.gc_interval = i;
    }
    if let Some(n) = args.snapshot_every {
        c.snapshot_every = n;
    }
    if args.join.is_some() {
        c.join = args.join;
    }
    if let Some(z) = args.zone {
        c.zone = z;
    }
    if args.capacity.is_some() {
        c.capacity = args.capacity;
    }
    if let Some(i) = args.archive_interval {
        c.archive_interval = i;
    }
    if let Some(r) = args.peer_rate {
        c.peer_rate = r;
    }
    if args.secret.is_some() {
        c.secret = args.secret;
    }
    if let Some(f) = &args.secret_file {
        let text = std::fs::read_to_string(f).with_context(|| format!("reading the secret file {}", f.display()))?;
        let secret = text.lines().next().unwrap_or("").trim();
        anyhow::ensure!(!secret.is_empty(), "the secret file {} is empty", f.display());
        c.secret = Some(secret.to_string());
    }
    if let Some(d) = args.repair_delay {
        c.repair_delay = d;
    }
    if let Some(i) = args.repair_interval {
        c.repair_interval = i;
    }
    if let Some(i) = args.scrub_interval {
        c.scrub_interval = i;
    }
    if args.tls_cert.is_some() {
        (c.tls_cert, c.tls_key) = (args.tls_cert, args.tls_key);
    }
    c.tls |= args.tls;
    if let Some(t) = args.body_timeout {
        c.body_timeout = t;
    }
    if let Some(r) = args.replication {
        c.replication = r;
    }
    if args.recover.is_some() {
        c.recover = args.recover;
    }
    c.force_new_cluster |= args.force_new_cluster;
    c.validate()?;
    Ok(c)
}

/// Waits for SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Runs `cairn up`.
pub async fn run(data: Option<PathBuf>, args: UpArgs) -> anyhow::Result<()> {
    let nodes = args.nodes;
    let config = config(data, args)?;
    if let Some(n) = nodes {
        return crate::local_cluster::run(&config.data, &config.listen, &config.zone, n, config.s3_addr()?).await;
    }
    let data = config.data.clone();
    let running = Node::start(config).await?;
    let node = running.node.clone();
    let mut out = std::io::stdout().lock();
    writeln!(out, "cairn: listening on {}", node.url)?;
    writeln!(out, "cairn: peers reach it on {}", node.peer_url)?;
    if let Some(s3) = &node.s3_url {
        writeln!(out, "cairn: S3 on {s3}")?;
    }
    if node.url.starts_with("https://") && node.config.tls_cert.is_none() {
        let ca = data.join("ca.crt");
        writeln!(out, "cairn: clients use TLS with a certificate from the cluster CA: curl --cacert {}", ca.display())?;
    }
    writeln!(out, "cairn: node {} of cluster {}, data in {}", node.id, node.cluster_id(), data.display())?;
    if let Some(key) = &running.admin_key {
        let file = data.join("admin.json");
        writeln!(out, "cairn: the cluster's admin key, shown once (also in {}):", file.display())?;
        writeln!(out, "       CAIRN_KEY={}:{}", key.access_key_id, key.secret_access_key)?;
    }
    writeln!(out, "try:   echo hello > hello.txt && cairn put hello.txt /hello.txt && cairn cat /hello.txt")?;
    writeln!(out, "       curl -u \"$CAIRN_KEY\" {}/v1/fs/        (Ctrl-C stops the node)", node.url)?;
    out.flush()?;
    drop(out);
    return_idle_memory()?;
    shutdown_signal().await;
    eprintln!("cairn: shutting down");
    running.shutdown().await?;
    Ok(())
}

/// How often a node hands freed heap memory back to the OS.
pub const TRIM_EVERY: Duration = Duration::from_secs(5);

/// Hands freed heap memory back to the OS every [`TRIM_EVERY`]. glibc keeps up to its trim
/// threshold (64 MiB, see `tune_malloc`) free in each arena, so without this a node's idle
/// memory would follow its last burst (a big listing, a snapshot, a million creates) rather
/// than what it holds.
fn return_idle_memory() -> std::io::Result<()> {
    std::thread::Builder::new().name("cairn-trim".into()).spawn(|| loop {
        std::thread::sleep(TRIM_EVERY);
        // SAFETY: malloc_trim only releases free memory of glibc's heap to the OS.
        unsafe { libc::malloc_trim(0) };
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses_to_the_defaults() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("cairn.example.toml");
        let c = load_config_file(&path).unwrap();
        assert_eq!(c, NodeConfig::default());
        c.validate().unwrap();
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        assert!(toml::from_str::<NodeConfig>("colour = \"blue\"").is_err());
        assert!(toml::from_str::<NodeConfig>("gc_grace = \"soon\"").is_err());
        let c: NodeConfig = toml::from_str("listen = \"nowhere\"").unwrap();
        assert!(c.validate().is_err());
    }
}
