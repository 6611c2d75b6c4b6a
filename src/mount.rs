//! `cairn mount MOUNTPOINT` (the cluster as a POSIX directory, until Ctrl-C or `cairn
//! umount`) and `cairn umount MOUNTPOINT`.

use anyhow::{bail, Context, Result};
use cairn_client::AsyncClient;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Flags of `cairn mount`.
#[derive(clap::Args)]
pub struct MountArgs {
    /// Where to mount (an existing, empty directory).
    mountpoint: PathBuf,
    /// Mount this directory of the cluster instead of its root.
    #[arg(long)]
    path: Option<String>,
    /// Mount read-only.
    #[arg(long)]
    read_only: bool,
    /// Let other users in (needs `user_allow_other` in /etc/fuse.conf when not root); the
    /// kernel checks permissions.
    #[arg(long)]
    allow_other: bool,
    /// Return once mounted, serving in the background (until `cairn umount`); its log
    /// goes to MOUNTPOINT's parent as `.cairn-mount-NAME.log`.
    #[arg(long)]
    daemon: bool,
    /// Memory for chunks read (verified whole chunks, shared by the open files), e.g.
    /// `1GiB` [default: a sixteenth of the machine's memory, 256 MiB to 1 GiB].
    #[arg(long, value_parser = crate::bench::parse_size)]
    cache_mem: Option<u64>,
}

/// Starts this same command again without `--daemon`, detached, and returns once its mount
/// is up (or with its error).
fn daemonize(mountpoint: &Path) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let point = std::fs::canonicalize(mountpoint).with_context(|| format!("{}", mountpoint.display()))?;
    let name = point.file_name().map_or("root".into(), |n| n.to_string_lossy().into_owned());
    let log_path = point.with_file_name(format!(".cairn-mount-{name}.log"));
    let log = std::fs::File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--daemon").collect();
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .args(&args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .process_group(0)
        .spawn()
        .context("starting the mount in the background")?;
    let point_text = point.to_string_lossy().into_owned();
    for _ in 0..300 {
        if local_mounts().contains(&point_text) {
            eprintln!("cairn: mounted at {point_text} in the background (log: {})", log_path.display());
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            bail!("the mount ended ({status}): {}", log.trim());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("the mount did not come up within 30 s (log: {})", log_path.display())
}

/// Runs `cairn mount`: mounts, then serves until a signal or an unmount from outside.
pub async fn mount(c: AsyncClient, args: MountArgs) -> Result<()> {
    if args.daemon {
        let point = args.mountpoint.clone();
        return tokio::task::spawn_blocking(move || daemonize(&point)).await?;
    }
    let opts = cairn_fuse::MountOptions {
        path: args.path,
        read_only: args.read_only,
        allow_other: args.allow_other,
        memory: args.cache_mem,
    };
    let mp = args.mountpoint.clone();
    let rt = tokio::runtime::Handle::current();
    let session = tokio::task::spawn_blocking(move || cairn_fuse::mount(c, rt, &mp, &opts))
        .await?
        .with_context(|| format!("mounting cairn at {}", args.mountpoint.display()))?;
    eprintln!("cairn: mounted at {} (Ctrl-C or `cairn umount` unmounts)", args.mountpoint.display());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {
                if session.guard.is_finished() {
                    // Unmounted from outside (`cairn umount`, `fusermount3 -u`). Dropping
                    // the session would unmount the path again, and with it a newer mount
                    // made there meanwhile: the process ends without.
                    std::mem::forget(session);
                    eprintln!("cairn: unmounted");
                    return Ok(());
                }
            }
        }
    }
    tokio::task::spawn_blocking(move || session.umount_and_join()).await?.context("unmounting")?;
    eprintln!("cairn: unmounted");
    Ok(())
}

/// The cairn mounts on this machine (their mount points), from `/proc/mounts`.
pub fn local_mounts() -> Vec<String> {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (source, point, kind) = (f.next()?, f.next()?, f.next()?);
            (source == "cairn" && kind.starts_with("fuse")).then(|| point.replace("\\040", " "))
        })
        .collect()
}

/// Runs `cairn umount`: as root with umount(2), else with `fusermount3 -u`.
pub fn umount(mountpoint: &Path) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(mountpoint.as_os_str().as_bytes()).context("mount point")?;
    // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
    if unsafe { libc::umount(c.as_ptr()) } == 0 {
        return Ok(());
    }
    let direct = std::io::Error::last_os_error();
    match std::process::Command::new("fusermount3").arg("-u").arg(mountpoint).status() {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => bail!("fusermount3 -u {} failed ({s}); umount(2): {direct}", mountpoint.display()),
        Err(e) => bail!("cannot unmount {}: umount(2): {direct}; fusermount3: {e}", mountpoint.display()),
    }
}
