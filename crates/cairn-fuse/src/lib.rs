//! cairn as an ordinary POSIX directory: a FUSE file system (on `fuser`) that is a thin
//! adapter over `cairn-client` and the inode-addressed metadata.
//!
//! Kernel inode numbers are cairn's (the mounted directory is inode 1 to the kernel), so
//! every operation names its object by inode and paths are never rebuilt. Open files hold a
//! cairn handle (a file unlinked or renamed while open stays usable, as POSIX has it); writes
//! are buffered per open file and committed on flush, fsync and close (close-to-open
//! consistency); reads fetch whole chunks, verified, into memory shared by the open files,
//! fetching ahead of sequential readers; the kernel keeps its page cache of a file across
//! opens while the file is unchanged.

#![warn(missing_docs)]

mod attr;
mod chunks;
mod dir;
mod feed;
mod files;
mod fs;
mod handles;
mod meta_cache;
mod open;
mod posix_locks;
mod requests;
mod xattr;

use cairn_client::AsyncClient;
use cairn_core::ErrorCode;
use std::path::Path;

pub use fs::CairnFs;
/// A mount served on background threads (unmounted when dropped or by `umount_and_join`).
pub use fuser::BackgroundSession;

/// Errors of mounting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FuseError {
    /// The cluster refused or could not answer.
    #[error(transparent)]
    Client(#[from] cairn_client::ClientError),
    /// Mounting or serving failed.
    #[error("mount failed: {0}")]
    Mount(#[from] std::io::Error),
}

/// How to mount.
#[derive(Debug, Clone, Default)]
pub struct MountOptions {
    /// Mount this directory of the cluster instead of its root.
    pub path: Option<String>,
    /// Refuse every change (`EROFS`).
    pub read_only: bool,
    /// Let other users than the mounting one in (the kernel still checks permissions).
    pub allow_other: bool,
    /// Memory for chunks read, in bytes (default: a sixteenth of the machine's, 256 MiB to
    /// 1 GiB).
    pub memory: Option<u64>,
}

/// Mounts the cluster `client` talks to at `mountpoint`, serving it on background threads
/// until the returned session is dropped or unmounted.
pub fn mount(
    client: AsyncClient,
    runtime: tokio::runtime::Handle,
    mountpoint: &Path,
    opts: &MountOptions,
) -> Result<fuser::BackgroundSession, FuseError> {
    let fs = CairnFs::new(client, runtime, opts)?;
    let mut config = fuser::Config::default();
    config.mount_options.push(fuser::MountOption::FSName("cairn".into()));
    config.mount_options.push(fuser::MountOption::Subtype("cairn".into()));
    config.mount_options.push(fuser::MountOption::DefaultPermissions);
    if opts.read_only {
        config.mount_options.push(fuser::MountOption::RO);
    }
    if opts.allow_other {
        config.acl = fuser::SessionACL::All;
    }
    config.n_threads = Some(4);
    let kernel = fs.kernel.clone();
    let session = fuser::Session::new(fs, mountpoint, &config)?;
    let _ = kernel.set(session.notifier());
    Ok(session.spawn()?)
}

/// The errno a cairn error stands for.
pub fn errno(code: ErrorCode) -> fuser::Errno {
    use fuser::Errno as E;
    match code {
        ErrorCode::NotFound => E::ENOENT,
        ErrorCode::Exists => E::EEXIST,
        ErrorCode::NotADirectory => E::ENOTDIR,
        ErrorCode::IsADirectory => E::EISDIR,
        ErrorCode::NotEmpty => E::ENOTEMPTY,
        ErrorCode::Locked => E::EAGAIN,
        ErrorCode::PermissionDenied | ErrorCode::Unauthenticated => E::EACCES,
        ErrorCode::NoSpace => E::ENOSPC,
        ErrorCode::InvalidArgument | ErrorCode::RangeNotSatisfiable => E::EINVAL,
        ErrorCode::TooLarge => E::EFBIG,
        ErrorCode::PreconditionFailed | ErrorCode::Conflict => E::ESTALE,
        _ => E::EIO,
    }
}
