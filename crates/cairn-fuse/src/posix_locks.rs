//! `fcntl` record locks and `flock` locks held in the cluster's lock table, so mounts on
//! different machines see each other's locks (and REST users theirs).
//!
//! Each range a lock owner (a process's open file, as the kernel names it) holds on an inode
//! is one cluster lock on that inode. POSIX semantics are kept here: an owner's own locks
//! never conflict with each other, and a new lock or an unlock over part of an owner's range
//! splits it; the unlocks, the remainders and the new lock go to the cluster as one batch,
//! all or none. Held locks live a lease ([`LEASE_SECS`]) renewed in the background, so the
//! locks of a mount that dies end with their lease.

use cairn_client::{AsyncClient, Backend, ClientError};
use cairn_core::lock::{ttl_ns, ByteRange, LockItem, LockMode, LockOn};
use cairn_core::wire::{ClientCommand, Query, QueryReply, Reply};
use cairn_core::ErrorCode;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Lifetime of a mount's locks without renewal.
pub(crate) const LEASE_SECS: u64 = 30;

/// Offsets from here on mean "to the end of the file" (the kernel's `OFFSET_MAX`).
const TO_END: u64 = i64::MAX as u64;

/// One range an owner holds: a cluster lock.
#[derive(Debug, Clone, Copy)]
struct Held {
    id: u64,
    start: u64,
    /// Last byte, inclusive (`TO_END`: to the end).
    end: u64,
    mode: LockMode,
}

fn range(start: u64, end: u64) -> Option<ByteRange> {
    Some(ByteRange { start, len: if end >= TO_END { 0 } else { end - start + 1 } })
}

/// The mode of an `fcntl` lock type (`None`: `F_UNLCK`).
pub(crate) fn mode_of(typ: i32) -> Option<LockMode> {
    match typ {
        libc::F_RDLCK => Some(LockMode::Shared),
        libc::F_WRLCK => Some(LockMode::Exclusive),
        _ => None,
    }
}

/// The locks this mount holds, by (cairn inode, lock owner).
#[derive(Default)]
pub(crate) struct PosixLocks {
    held: Mutex<HashMap<(u64, u64), Vec<Held>>>,
}

impl PosixLocks {
    /// Locks (`mode` `Some`) or unlocks bytes `start..=end` of `ino` for `owner`, replacing
    /// what the owner held there; `locked` if another owner's lock conflicts.
    pub async fn set(
        &self,
        c: &AsyncClient,
        ino: u64,
        owner: u64,
        start: u64,
        end: u64,
        mode: Option<LockMode>,
    ) -> Result<(), ClientError> {
        let mine = self.held.lock().expect("held lock").get(&(ino, owner)).cloned().unwrap_or_default();
        let (hit, kept): (Vec<Held>, Vec<Held>) = mine.into_iter().partition(|h| h.start <= end && start <= h.end);
        if hit.is_empty() && mode.is_none() {
            return Ok(());
        }
        let ttl = ttl_ns(LEASE_SECS)?;
        let lock = |s: u64, e: u64, m: LockMode| ClientCommand::Lock {
            id: rand::random(),
            owner: String::new(),
            mode: m,
            items: vec![LockItem { on: LockOn::Ino(ino), range: range(s, e) }],
            ttl,
        };
        let mut ops: Vec<ClientCommand> = hit.iter().map(|h| ClientCommand::Unlock { id: h.id, owner: None }).collect();
        let mut pieces = Vec::new();
        for h in &hit {
            if h.start < start {
                pieces.push((h.start, start - 1, h.mode));
            }
            if h.end > end {
                pieces.push((end + 1, h.end, h.mode));
            }
        }
        if let Some(m) = mode {
            pieces.push((start, end, m));
        }
        ops.extend(pieces.iter().map(|&(s, e, m)| lock(s, e, m)));
        let replies = match c.backend().write(ClientCommand::Batch { ops }).await? {
            Reply::Batch(r) => r,
            Reply::BatchFailed { error, .. } => return Err(ClientError::Api(error)),
            other => return Err(ClientError::Protocol(format!("expected a batch answer, got {other:?}"))),
        };
        let mut now = kept;
        for (reply, &(s, e, m)) in replies[hit.len()..].iter().zip(&pieces) {
            if let Reply::Lock(info) = reply {
                now.push(Held { id: info.id, start: s, end: e, mode: m });
            }
        }
        let mut held = self.held.lock().expect("held lock");
        if now.is_empty() {
            held.remove(&(ino, owner));
        } else {
            held.insert((ino, owner), now);
        }
        Ok(())
    }

    /// A lock of another owner (of this mount or any other) that a lock of `mode` on
    /// `start..=end` of `ino` would meet: its range and type, if there is one.
    pub async fn conflict(
        &self,
        c: &AsyncClient,
        ino: u64,
        owner: u64,
        start: u64,
        end: u64,
        mode: LockMode,
    ) -> Result<Option<(u64, u64, i32)>, ClientError> {
        let mine: Vec<u64> = self
            .held
            .lock()
            .expect("held lock")
            .get(&(ino, owner))
            .map_or_else(Vec::new, |v| v.iter().map(|h| h.id).collect());
        let q = Query::Locks { path: None, ino: Some(ino), after: None, limit: cairn_core::wire::LIST_MAX };
        let locks = match c.backend().query(q).await? {
            QueryReply::Locks { locks, .. } => locks,
            other => return Err(ClientError::Protocol(format!("expected locks, got {other:?}"))),
        };
        let want = LockItem { on: LockOn::Ino(ino), range: range(start, end) };
        for l in locks.iter().filter(|l| !mine.contains(&l.id)) {
            for item in &l.items {
                if item.conflicts(l.mode, &want, mode) {
                    let (s, e) = match item.range {
                        Some(r) if r.len > 0 => (r.start, r.start + r.len - 1),
                        Some(r) => (r.start, TO_END),
                        None => (0, TO_END),
                    };
                    let typ = if l.mode == LockMode::Exclusive { libc::F_WRLCK } else { libc::F_RDLCK };
                    return Ok(Some((s, e, typ)));
                }
            }
        }
        Ok(None)
    }

    /// Releases every lock `owner` holds on `ino` (a close releases a process's locks).
    pub async fn release_owner(&self, c: &AsyncClient, ino: u64, owner: u64) -> Result<(), ClientError> {
        if !self.held.lock().expect("held lock").contains_key(&(ino, owner)) {
            return Ok(());
        }
        self.set(c, ino, owner, 0, TO_END, None).await
    }

    /// Releases every lock this mount holds (at unmount).
    pub async fn release_all(&self, c: &AsyncClient) {
        let keys: Vec<(u64, u64)> = self.held.lock().expect("held lock").keys().copied().collect();
        for (ino, owner) in keys {
            if let Err(e) = self.release_owner(c, ino, owner).await {
                tracing::warn!(ino, "releasing a lock at unmount failed (its lease will run out): {e}");
            }
        }
    }

    /// Renews every held lock; a lock found gone is forgotten (its lease ran out).
    pub async fn renew(&self, c: &AsyncClient) {
        let all: Vec<(u64, u64, u64)> = self
            .held
            .lock()
            .expect("held lock")
            .iter()
            .flat_map(|(&(ino, owner), v)| v.iter().map(move |h| (ino, owner, h.id)))
            .collect();
        let Ok(ttl) = ttl_ns(LEASE_SECS) else { return };
        for (ino, owner, id) in all {
            match c.backend().write(ClientCommand::RenewLock { id, owner: None, ttl }).await {
                Err(e) if matches!(e.code(), ErrorCode::NotFound | ErrorCode::Conflict) => {
                    tracing::warn!(ino, "a lock of this mount was lost (its lease ran out): {e}");
                    if let Some(v) = self.held.lock().expect("held lock").get_mut(&(ino, owner)) {
                        v.retain(|h| h.id != id);
                    }
                }
                Err(e) => tracing::debug!(ino, "renewing a lock failed, will retry: {e}"),
                Ok(_) => {}
            }
        }
    }

    /// How often held locks are renewed.
    pub fn renew_every() -> Duration {
        Duration::from_secs(LEASE_SECS / 3)
    }
}
