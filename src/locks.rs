//! `cairn lock PATH... -- COMMAND` (run a command while holding cluster locks) and
//! `cairn locks [PATH]` (who holds what).

use anyhow::Result;
use cairn_client::{AsyncClient, LockOptions};
use cairn_core::lock::{ByteRange, LockMode};
use std::time::Duration;

/// `cairn lock`.
#[derive(clap::Args)]
pub struct LockArgs {
    /// Paths to lock: all of them, or none.
    #[arg(required = true, num_args = 1..)]
    paths: Vec<String>,
    /// Take a shared lock (readers) instead of an exclusive one.
    #[arg(long)]
    shared: bool,
    /// Lifetime without a renewal (renewed every third of it while COMMAND runs).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    ttl: Duration,
    /// Wait this long for locks held by others (default: fail at once).
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    wait: Duration,
    /// Lock only bytes START.. of each path (with --length), as fcntl does.
    #[arg(long)]
    start: Option<u64>,
    /// Length of the byte range (0: to the end).
    #[arg(long, requires = "start")]
    length: Option<u64>,
    /// The command to run while the locks are held; it finds the lock id in CAIRN_LOCK and
    /// the fencing token in CAIRN_FENCE.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

/// The exit status of the command `cairn lock` ran: `cairn` exits with it.
#[derive(Debug, thiserror::Error)]
#[error("the command exited with status {0}")]
pub struct Exited(pub u8);

/// Runs `cairn lock`.
pub async fn lock(c: &AsyncClient, args: LockArgs) -> Result<()> {
    let opts = LockOptions {
        mode: if args.shared { LockMode::Shared } else { LockMode::Exclusive },
        ttl: args.ttl,
        wait: args.wait,
        range: args.start.map(|start| ByteRange { start, len: args.length.unwrap_or(0) }),
    };
    let paths: Vec<&str> = args.paths.iter().map(String::as_str).collect();
    let guard = c.lock(&paths, &opts).await?;
    let (program, rest) = args.command.split_first().expect("clap requires a command");
    let status = tokio::process::Command::new(program)
        .args(rest)
        .env("CAIRN_LOCK", guard.id())
        .env("CAIRN_FENCE", guard.fencing_token().to_string())
        .status()
        .await;
    let lost = guard.is_lost();
    guard.release().await?;
    let status = status.map_err(|e| anyhow::anyhow!("cannot run {program}: {e}"))?;
    if lost {
        anyhow::bail!("the lock was lost while the command ran (a renewal found it expired)");
    }
    use std::os::unix::process::ExitStatusExt;
    let code = status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    match code {
        0 => Ok(()),
        c => Err(Exited(c.clamp(1, 255) as u8).into()),
    }
}

/// Runs `cairn locks [PATH]`.
pub async fn list(c: &AsyncClient, path: Option<&str>, json: bool) -> Result<()> {
    let locks = c.locks(path).await?;
    if json {
        println!("{}", serde_json::json!({ "locks": locks }));
        return Ok(());
    }
    for l in &locks {
        let paths: Vec<String> = l["paths"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                let path = p["path"].as_str().unwrap_or_default();
                match p.get("start") {
                    Some(s) => format!("{path}[{s}+{}]", p["length"]),
                    None => path.to_string(),
                }
            })
            .collect();
        println!(
            "{:<16} {:<9} {:<16} {:>8} {}  {}",
            l["lock_id"].as_str().unwrap_or("-"),
            l["mode"].as_str().unwrap_or_default(),
            l["owner"].as_str().unwrap_or_default(),
            l["fencing_token"],
            l["expires"].as_str().unwrap_or_default(),
            paths.join(" ")
        );
    }
    Ok(())
}
