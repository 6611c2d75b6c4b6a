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
}

/// Runs `cairn mount`: mounts, then serves until a signal or an unmount from outside.
pub async fn mount(c: AsyncClient, args: MountArgs) -> Result<()> {
    let opts = cairn_fuse::MountOptions { path: args.path, read_only: args.read_only, allow_other: args.allow_other };
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
                    // Unmounted from outside (`cairn umount`, `fusermount3 -u`).
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
