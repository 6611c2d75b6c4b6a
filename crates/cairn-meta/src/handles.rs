//! Open handles and orphans: POSIX's "unlinked while open".
//!
//! A client that opens a file registers a handle (`Open`) with a lease it renews while the
//! handle is in use. A file whose last name goes while a handle is open is not freed: it
//! moves to the orphan list, keeps its data, and stays readable and writable by inode number.
//! Closing its last handle frees it. Handles of clients that died are closed by the reaper
//! (`Close { expired_only }`) once their lease has run out, so orphans never outlive a
//! restart of their clients by more than one lease.

use crate::apply::{check, Tx};
use crate::tables::{fail, resolve};
use crate::Result;
use cairn_core::wire::{ApplyResult, InodeKind, Reply, Target};
use cairn_core::ErrorCode;
use redb::ReadableTable;

/// Longest lease a handle may ask for (1 day, ns).
pub const MAX_LEASE: i64 = 86_400 * 1_000_000_000;
/// Most handles one `Renew` or `Close` may name.
pub const MAX_HANDLES_PER_COMMAND: usize = 10_000;

impl Tx<'_> {
    /// True if some handle is open on `ino`.
    pub(crate) fn has_handles(&self, ino: u64) -> Result<bool> {
        Ok(self.handles.range((ino, 0)..=(ino, u64::MAX))?.next().is_some())
    }

    pub(crate) fn open(&mut self, at: &Target, handle: u64, lease: i64) -> Result<ApplyResult> {
        if !(1..=MAX_LEASE).contains(&lease) {
            return Ok(fail(ErrorCode::InvalidArgument, "a handle's lease is 1 ns ..= 1 day"));
        }
        let inode = check!(resolve(&self.inodes, &self.dirents, at)?);
        if inode.kind == InodeKind::Dir {
            return Ok(fail(ErrorCode::IsADirectory, format!("{at} is a directory")));
        }
        self.handles.insert((inode.ino, handle), self.now.saturating_add(lease))?;
        Ok(Ok(Reply::Inode(inode)))
    }

    pub(crate) fn renew(&mut self, handles: &[(u64, u64)], lease: i64) -> Result<ApplyResult> {
        if !(1..=MAX_LEASE).contains(&lease) || handles.len() > MAX_HANDLES_PER_COMMAND {
            return Ok(fail(ErrorCode::InvalidArgument, "renew: lease 1 ns ..= 1 day, at most 10,000 handles"));
        }
        let mut n = 0;
        for &key in handles {
            if self.handles.get(key)?.is_some() {
                self.handles.insert(key, self.now.saturating_add(lease))?;
                n += 1;
            }
        }
        Ok(Ok(Reply::Count(n)))
    }

    pub(crate) fn close(&mut self, handles: &[(u64, u64)], expired_only: bool) -> Result<ApplyResult> {
        if handles.len() > MAX_HANDLES_PER_COMMAND {
            return Ok(fail(ErrorCode::InvalidArgument, "close: at most 10,000 handles"));
        }
        let mut n = 0;
        for &(ino, handle) in handles {
            let Some(until) = self.handles.get((ino, handle))?.map(|v| v.value()) else { continue };
            if expired_only && until > self.now {
                continue;
            }
            self.handles.remove((ino, handle))?;
            n += 1;
            if self.orphans.get(ino)?.is_some() && !self.has_handles(ino)? {
                self.orphans.remove(ino)?;
                let inode = self.inode(ino)?;
                self.free_inode(&inode)?;
            }
        }
        Ok(Ok(Reply::Count(n)))
    }
}
