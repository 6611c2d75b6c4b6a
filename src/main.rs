//! `cairn`: the one binary. Starts nodes (`cairn up`) and talks to a cluster (everything else).
//!
//! Exit codes: 0 success, 1 other failure, 2 usage error or invalid argument, 3 not found,
//! 4 cluster unavailable, 5 already exists / not empty / conflict / locked / precondition
//! failed, 6 `fsck` found chunks below policy; `cairn lock` exits with its command's status.

mod attrs;
mod bench;
mod bench_archive;
mod bench_fuse;
mod bench_gf;
mod bench_locks;
mod bench_meta;
mod bench_repair;
mod bench_s3;
mod bucket;
mod code;
mod commands;
mod history;
mod keys;
mod local_cluster;
mod locks;
mod mount;
mod up;

use cairn_client::ClientError;
use cairn_core::ErrorCode;
use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// cairn: a distributed file system.
#[derive(Parser)]
#[command(name = "cairn", version, about, after_help = EXIT_CODES)]
struct Cli {
    /// Node to talk to.
    #[arg(long, global = true, env = "CAIRN_NODE", default_value = "http://127.0.0.1:7070")]
    node: String,
    /// Access key to present, ID:SECRET [default: the admin key in DATA/admin.json, when
    /// readable].
    #[arg(long, global = true, env = "CAIRN_KEY", hide_env_values = true)]
    key: Option<String>,
    /// CA certificate (PEM) to trust for an https:// node [default: DATA/ca.crt when
    /// readable, else the system's roots].
    #[arg(long, global = true, env = "CAIRN_CA", value_name = "FILE")]
    ca: Option<std::path::PathBuf>,
    /// Data directory: where `cairn up` keeps its data, and where other commands look for
    /// admin.json [default: ./cairn-data].
    #[arg(long, global = true, env = "CAIRN_DATA")]
    data: Option<std::path::PathBuf>,
    /// Print machine-readable JSON instead of human output.
    #[arg(long, global = true)]
    json: bool,
    /// Read every chunk over HTTP, even from a node on this machine (whose chunk files are
    /// otherwise read directly, verified).
    #[arg(long, global = true, env = "CAIRN_NO_SHORT_CIRCUIT")]
    no_short_circuit: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

const EXIT_CODES: &str = "Exit codes: 0 ok, 1 failure, 2 usage or invalid argument, 3 not found, \
4 unavailable, 5 exists / not empty / conflict / locked, 6 fsck: chunks below policy, 7 no valid access key or \
not allowed.";

#[derive(Subcommand)]
enum Cmd {
    /// Start a node (no flags: ./cairn-data, 127.0.0.1:7070).
    Up(Box<up::UpArgs>),
    /// Upload a local file (or `-` for stdin; a directory with -r).
    Put {
        /// Local source.
        local: String,
        /// Destination path in cairn.
        remote: String,
        /// Upload a directory tree.
        #[arg(short, long)]
        recursive: bool,
    },
    /// Download a file (to `-` for stdout; a directory with -r).
    Get {
        /// Source path in cairn.
        remote: String,
        /// Local destination: a file, a directory to put it in, or `-` for stdout.
        #[arg(default_value = ".")]
        local: String,
        /// Download a directory tree.
        #[arg(short, long)]
        recursive: bool,
        /// Download this version of the file (see `cairn log`), deleted files too.
        #[arg(long)]
        version: Option<u64>,
        /// Keep the chunks in the local chunk cache and read them from there when cached
        /// ($CAIRN_CACHE_DIR, else ~/.cache/cairn; 1 GiB, least recently used out).
        #[arg(long)]
        cache: bool,
    },
    /// Print a file to stdout.
    Cat {
        /// File in cairn.
        path: String,
        /// Read through the local chunk cache (see `get --cache`).
        #[arg(long)]
        cache: bool,
    },
    /// List a directory.
    Ls {
        /// Directory (default /).
        #[arg(default_value = "/")]
        path: String,
        /// Long format: type, mode, size, mtime.
        #[arg(short = 'l')]
        long: bool,
    },
    /// Show a file's or directory's attributes.
    Stat {
        /// Path in cairn.
        path: String,
    },
    /// Create a directory.
    Mkdir {
        /// Directory to create.
        path: String,
        /// Create missing parents; an existing directory is fine.
        #[arg(short, long)]
        parents: bool,
    },
    /// Remove a file or an empty directory (a tree with -r).
    Rm {
        /// Path to remove.
        path: String,
        /// Remove a directory and everything below it.
        #[arg(short, long)]
        recursive: bool,
    },
    /// Rename or move atomically.
    Mv {
        /// Source.
        from: String,
        /// Destination.
        to: String,
    },
    /// Show the cluster's nodes and health.
    Status {
        /// Print the join token new nodes join with: the cluster secret and its CA's
        /// fingerprint (works on the node's own machine).
        #[arg(long)]
        secret: bool,
    },
    /// Redundancy policies of directories.
    Policy {
        #[command(subcommand)]
        cmd: commands::PolicyCmd,
    },
    /// Measure write and read throughput against a node, beside this disk's raw speed.
    Bench(bench::BenchArgs),
    /// Convert the replicated files at or below PATH to an erasure code: shards made where
    /// the copies are, one commit per file, copies released once the shards are in place.
    Archive {
        /// File or directory in cairn.
        path: String,
        /// The code, `K+M` (e.g. 4+2, 10+4).
        #[arg(long)]
        ec: String,
        /// Encode on the node this command talks to alone (the centralised baseline).
        #[arg(long)]
        no_pipeline: bool,
    },
    /// List files with chunks below their policy; exit code 6 if there are any.
    Fsck {
        /// Subtree to check (default /).
        #[arg(default_value = "/")]
        path: String,
    },
    /// Drain, re-activate or remove nodes.
    Node {
        #[command(subcommand)]
        cmd: commands::NodeCmd,
    },
    /// Pause, resume or throttle background workers (repair, scrub, rebalance, gc, archive) cluster-wide.
    Worker {
        #[command(subcommand)]
        cmd: commands::WorkerCmd,
    },
    /// Make, list and remove access keys (admin keys only).
    Key {
        #[command(subcommand)]
        cmd: keys::KeyCmd,
    },
    /// Coding programs: run a plan of LOAD/IADD/MULT/MULADD/WRITE/SEND/OUTPUT steps over
    /// chunks on the nodes (admin keys only; the format is in docs/formats.md).
    Code {
        #[command(subcommand)]
        cmd: code::CodeCmd,
    },
    /// S3 bucket settings: public-read or private.
    Bucket {
        #[command(subcommand)]
        cmd: bucket::BucketCmd,
    },
    /// List a file's versions, newest first (also of a deleted file; see `policy set DIR
    /// versions:N`).
    Log {
        /// File in cairn.
        path: String,
    },
    /// Make an earlier version of a file current again (undeletes a deleted file).
    Restore {
        /// File in cairn.
        path: String,
        /// The version to bring back (see `cairn log`).
        #[arg(long)]
        version: u64,
    },
    /// Mount the cluster (or a directory of it) as a POSIX directory, until Ctrl-C or
    /// `cairn umount`.
    Mount(mount::MountArgs),
    /// Unmount a `cairn mount`.
    Umount {
        /// The mount point.
        mountpoint: std::path::PathBuf,
    },
    /// Run COMMAND while holding cluster locks on PATHs (all or none); exits with its status.
    Lock(locks::LockArgs),
    /// List live locks (on PATH, or all); ids are shown to their owners and admins only.
    Locks {
        /// Only locks naming this path.
        path: Option<String>,
    },
    #[command(flatten)]
    Attr(attrs::AttrCmd),
}

/// Maps an error to the documented exit code.
fn exit_code(e: &anyhow::Error) -> u8 {
    let code = e.chain().find_map(|c| c.downcast_ref::<ClientError>().map(ClientError::code));
    match code {
        Some(ErrorCode::InvalidArgument) => 2,
        Some(ErrorCode::NotFound) => 3,
        Some(ErrorCode::Unavailable) => 4,
        Some(
            ErrorCode::Exists
            | ErrorCode::NotEmpty
            | ErrorCode::Conflict
            | ErrorCode::Locked
            | ErrorCode::PreconditionFailed,
        ) => 5,
        Some(ErrorCode::Unauthenticated | ErrorCode::PermissionDenied) => 7,
        _ if e.chain().any(|c| c.downcast_ref::<commands::UsageError>().is_some()) => 2,
        _ if e.chain().any(|c| c.downcast_ref::<commands::BelowPolicy>().is_some()) => 6,
        _ => 1,
    }
}

/// Keeps chunk-sized buffers (4 MiB; 32 MiB is glibc's ceiling here) in the malloc heap instead of fresh `mmap`s: without
/// this every chunk costs a map, ~1000 page faults and an unmap, about a tenth of the CPU of
/// a large read or write.
fn tune_malloc() {
    // SAFETY: mallopt only adjusts glibc allocator parameters; it is called before the runtime
    // starts any other thread.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
        // Few arenas: each one keeps up to the trim threshold of freed memory.
        libc::mallopt(libc::M_ARENA_MAX, 4);
    }
}

fn main() -> ExitCode {
    tune_malloc();
    cairn_client::tls::install_provider();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cairn: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(run())
}

async fn run() -> ExitCode {
    let cli = Cli::parse();
    // openraft logs every failed replication RPC (several a second for a dead peer); cairn
    // logs each peer's changes of state once instead (see `peers`).
    let default_log = match cli.cmd {
        Cmd::Up(_) => "info,openraft=warn,openraft::replication=off,openraft::engine::handler::replication_handler=off",
        // fuser warns when it tries to unmount what `cairn umount` already did.
        _ => "warn,fuser::mnt=error",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("CAIRN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_log));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let result = match cli.cmd {
        Cmd::Up(args) => up::run(cli.data, *args).await,
        Cmd::Umount { mountpoint } => mount::umount(&mountpoint),
        cmd => match commands::connection(&cli.node, cli.key.as_deref(), cli.ca.as_deref(), cli.data.as_deref()) {
            Ok(conn) => match cmd {
                Cmd::Bench(args) => bench::run(conn, cli.no_short_circuit, args).await,
                cmd => commands::run(conn, cli.json, cli.no_short_circuit, cmd).await,
            },
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<locks::Exited>().is_some() => {
            ExitCode::from(e.downcast_ref::<locks::Exited>().map_or(1, |x| x.0))
        }
        Err(e) => {
            eprintln!("cairn: {e:#}");
            ExitCode::from(exit_code(&e))
        }
    }
}
