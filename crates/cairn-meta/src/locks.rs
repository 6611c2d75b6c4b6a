//! The lock table: granting, renewing and releasing locks, and enforcing them (with fencing
//! tokens and preconditions) on every client command, in the same apply as the command.
//!
//! A lock is one record in `locks`, indexed three ways: by path (`lock_paths`, which also
//! finds the locks below a directory, since paths sort by their text), by the inode each
//! path named when the lock was granted (`lock_inos`, so writes to an open file by inode
//! number are held too), and by expiry (`lock_expiry`). Expired locks are ignored by every
//! check and swept a few at a time by later grants, so the table does not grow with locks
//! that were never released.

use crate::apply::{check, Tx};
use crate::tables::{fail, refuse, resolve, walk, Walk};
use crate::Result;
use cairn_core::codec::{decode, encode};
use cairn_core::lock::{check_request, Guard, LockInfo, LockItem, LockMode, LockOn, Precondition};
use cairn_core::wire::{ApplyResult, ClientCommand, Inode, Reply, Target};
use cairn_core::{ApiError, ErrorCode, FsPath};
use redb::{ReadTransaction, ReadableTable, Table, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

/// lock id -> encoded [`StoredLock`].
pub(crate) const LOCKS: TableDefinition<u64, &[u8]> = TableDefinition::new("locks");
/// (path, lock id): the locks naming each path.
pub(crate) const LOCK_PATHS: TableDefinition<(&str, u64), ()> = TableDefinition::new("lock_paths");
/// (inode, lock id): the inodes the locked paths named when the locks were granted.
pub(crate) const LOCK_INOS: TableDefinition<(u64, u64), ()> = TableDefinition::new("lock_inos");
/// (expires, lock id): locks by the end of their lifetime.
pub(crate) const LOCK_EXPIRY: TableDefinition<(i64, u64), ()> = TableDefinition::new("lock_expiry");

/// Expired locks swept by each grant.
const SWEEP: usize = 8;

/// A lock as stored: what clients see, and the inode each item's path named at the grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredLock {
    pub(crate) info: LockInfo,
    /// One per item: the inode its path named when the lock was granted.
    pub(crate) inos: Vec<Option<u64>>,
}

/// The lock tables of one write transaction.
struct LockTables<'t> {
    locks: Table<'t, u64, &'static [u8]>,
    paths: Table<'t, (&'static str, u64), ()>,
    inos: Table<'t, (u64, u64), ()>,
    expiry: Table<'t, (i64, u64), ()>,
}

impl<'t> LockTables<'t> {
    fn open(txn: &'t WriteTransaction) -> Result<Self> {
        Ok(LockTables {
            locks: txn.open_table(LOCKS)?,
            paths: txn.open_table(LOCK_PATHS)?,
            inos: txn.open_table(LOCK_INOS)?,
            expiry: txn.open_table(LOCK_EXPIRY)?,
        })
    }

    fn get(&self, id: u64) -> Result<Option<StoredLock>> {
        match self.locks.get(id)? {
            Some(v) => Ok(Some(decode(v.value(), "lock")?)),
            None => Ok(None),
        }
    }

    fn put(&mut self, lock: &StoredLock) -> Result<()> {
        let id = lock.info.id;
        for path in lock.info.items.iter().filter_map(LockItem::on_path) {
            self.paths.insert((path.to_string().as_str(), id), ())?;
        }
        for ino in lock.inos.iter().flatten() {
            self.inos.insert((*ino, id), ())?;
        }
        self.expiry.insert((lock.info.expires, id), ())?;
        self.locks.insert(id, encode(lock).as_slice())?;
        Ok(())
    }

    fn remove(&mut self, lock: &StoredLock) -> Result<()> {
        let id = lock.info.id;
        for path in lock.info.items.iter().filter_map(LockItem::on_path) {
            self.paths.remove((path.to_string().as_str(), id))?;
        }
        for ino in lock.inos.iter().flatten() {
            self.inos.remove((*ino, id))?;
        }
        self.expiry.remove((lock.info.expires, id))?;
        self.locks.remove(id)?;
        Ok(())
    }

    /// Ids of the locks naming `path` (and, with `below`, any path under it).
    fn ids_on_path(&self, path: &FsPath, below: bool, out: &mut Vec<u64>) -> Result<()> {
        let text = path.to_string();
        for r in self.paths.range((text.as_str(), 0)..=(text.as_str(), u64::MAX))? {
            out.push(r?.0.value().1);
        }
        if below {
            // Every path under `text` starts with `text/`; `0` is the byte after `/`.
            let (from, to) = if path.is_root() {
                ("/".to_string(), "0".to_string())
            } else {
                (format!("{text}/"), format!("{text}0"))
            };
            for r in self.paths.range((from.as_str(), 0)..(to.as_str(), 0))? {
                out.push(r?.0.value().1);
            }
        }
        Ok(())
    }

    /// Ids of the locks whose paths named inode `ino` when granted.
    fn ids_on_ino(&self, ino: u64, out: &mut Vec<u64>) -> Result<()> {
        for r in self.inos.range((ino, 0)..=(ino, u64::MAX))? {
            out.push(r?.0.value().1);
        }
        Ok(())
    }
}

/// The inode an item names: its own, or the one its path names now.
fn item_ino(tx: &Tx<'_>, item: &LockItem) -> Result<Option<u64>> {
    match &item.on {
        LockOn::Ino(i) => Ok(Some(*i)),
        LockOn::Path(p) => ino_at(tx, p),
    }
}

/// The inode a path names now, if it names one.
fn ino_at(tx: &Tx<'_>, path: &FsPath) -> Result<Option<u64>> {
    Ok(match walk(&tx.inodes, &tx.dirents, path)? {
        Ok(Walk::Found(chain)) => chain.last().map(|i| i.ino),
        _ => None,
    })
}

fn counter(tx: &Tx<'_>, name: &str) -> Result<u64> {
    Ok(tx.counters.get(name)?.map_or(0, |v| v.value()))
}

fn add_locks(tx: &mut Tx<'_>, delta: i64) -> Result<()> {
    let n = counter(tx, "locks")?.saturating_add_signed(delta);
    tx.counters.insert("locks", n)?;
    Ok(())
}

fn describe(l: &LockInfo) -> String {
    format!("{} lock of key {:?} (fencing token {}) until {} ns", l.mode.as_str(), l.owner, l.fence, l.expires)
}

impl Tx<'_> {
    pub(crate) fn lock(
        &mut self,
        txn: &WriteTransaction,
        id: u64,
        owner: &str,
        mode: LockMode,
        items: &[LockItem],
        ttl: i64,
    ) -> Result<ApplyResult> {
        check!(check_request(items, owner, ttl));
        let mut t = LockTables::open(txn)?;
        if t.get(id)?.is_some() {
            return Ok(fail(ErrorCode::Exists, "a lock with this id exists (ids are random: retry)"));
        }
        let inos = items.iter().map(|i| item_ino(self, i)).collect::<Result<Vec<_>>>()?;
        let mut expired = Vec::new();
        for (item, ino) in items.iter().zip(&inos) {
            let mut ids = Vec::new();
            if let Some(p) = item.on_path() {
                t.ids_on_path(p, false, &mut ids)?;
            }
            if let Some(ino) = ino {
                t.ids_on_ino(*ino, &mut ids)?;
            }
            ids.sort_unstable();
            ids.dedup();
            for other in ids {
                let Some(held) = t.get(other)? else { continue };
                if !held.info.live(self.now) {
                    expired.push(held);
                    continue;
                }
                // The same object: the same path, or the same inode (named, or resolved).
                let same = |h: &LockItem, h_ino: &Option<u64>| h.on == item.on || (ino.is_some() && h_ino == ino);
                let clash = held
                    .info
                    .items
                    .iter()
                    .zip(&held.inos)
                    .any(|(h, h_ino)| same(h, h_ino) && h.conflicts(held.info.mode, item, mode));
                if clash {
                    return Ok(fail(ErrorCode::Locked, format!("{} is held: {}", item.on, describe(&held.info))));
                }
            }
        }
        // Sweep the expired locks met on the way, and a few of the oldest others.
        let mut sweep: Vec<u64> = Vec::new();
        for r in t.expiry.range(..(self.now, u64::MAX))?.take(SWEEP) {
            sweep.push(r?.0.value().1);
        }
        for old in sweep {
            if let Some(l) = t.get(old)? {
                expired.push(l);
            }
        }
        expired.sort_by_key(|l| l.info.id);
        expired.dedup_by_key(|l| l.info.id);
        for l in &expired {
            t.remove(l)?;
        }
        let fence = counter(self, "next_fence")?.max(1);
        self.counters.insert("next_fence", fence + 1)?;
        let info = LockInfo {
            id,
            owner: owner.to_string(),
            mode,
            items: items.to_vec(),
            fence,
            ttl,
            expires: self.now.saturating_add(ttl),
        };
        t.put(&StoredLock { info: info.clone(), inos })?;
        add_locks(self, 1 - expired.len() as i64)?;
        Ok(Ok(Reply::Lock(info)))
    }

    /// The lock `id` if `owner` may change it, or the answer saying why not.
    fn owned(t: &LockTables<'_>, id: u64, owner: Option<&str>) -> Result<std::result::Result<StoredLock, ApiError>> {
        let Some(l) = t.get(id)? else {
            return Ok(refuse(ErrorCode::NotFound, format!("no lock {}", cairn_core::lock::lock_id_hex(id))));
        };
        if owner.is_some_and(|o| o != l.info.owner) {
            return Ok(refuse(ErrorCode::PermissionDenied, "the lock belongs to another access key"));
        }
        Ok(Ok(l))
    }

    pub(crate) fn renew_lock(
        &mut self,
        txn: &WriteTransaction,
        id: u64,
        owner: Option<&str>,
        ttl: i64,
    ) -> Result<ApplyResult> {
        let mut t = LockTables::open(txn)?;
        let mut l = check!(Self::owned(&t, id, owner)?);
        check!(check_request(&l.info.items, &l.info.owner, ttl));
        if !l.info.live(self.now) {
            let msg = format!("lock {} expired; take a new one", l.info.id_hex());
            return Ok(fail(ErrorCode::Conflict, msg));
        }
        t.expiry.remove((l.info.expires, id))?;
        l.info.ttl = ttl;
        l.info.expires = self.now.saturating_add(ttl);
        t.put(&l)?;
        Ok(Ok(Reply::Lock(l.info)))
    }

    pub(crate) fn unlock(&mut self, txn: &WriteTransaction, id: u64, owner: Option<&str>) -> Result<ApplyResult> {
        let mut t = LockTables::open(txn)?;
        let l = check!(Self::owned(&t, id, owner)?);
        t.remove(&l)?;
        add_locks(self, -1)?;
        Ok(Ok(Reply::Done))
    }

    /// Checks a client command against the lock table and its guard: no target may be under
    /// a live whole-path exclusive lock the writer does not present; the fencing token, if
    /// given, must be a live lock's on the first target; the preconditions must hold there.
    pub(crate) fn enforce(&self, txn: &WriteTransaction, guard: &Guard, cmd: &ClientCommand) -> Result<ApplyResult> {
        check!(guard.check());
        let written = cmd.written();
        let Some((first, _)) = written.first() else { return Ok(Ok(Reply::Done)) };
        let held = guard.preconditions.iter().filter_map(|p| match p {
            Precondition::LockHeld(id) => Some(*id),
            _ => None,
        });
        for id in held {
            let live =
                counter(self, "locks")? > 0 && LockTables::open(txn)?.get(id)?.is_some_and(|l| l.info.live(self.now));
            if !live {
                let msg = format!(
                    "lock {} is not held (released, or its lifetime passed)",
                    cairn_core::lock::lock_id_hex(id)
                );
                return Ok(fail(ErrorCode::PreconditionFailed, msg));
            }
        }
        if !guard.preconditions.is_empty() {
            let found = match resolve(&self.inodes, &self.dirents, first)? {
                Ok(inode) => Some(inode),
                Err(e) if e.code == ErrorCode::NotFound => None,
                Err(e) => return Ok(Err(e)),
            };
            for p in &guard.preconditions {
                check!(precondition(p, found.as_ref(), first));
            }
        }
        if counter(self, "locks")? == 0 {
            return Ok(match guard.fence {
                Some(f) => fail(ErrorCode::Conflict, format!("fencing token {f} is stale: its lock is gone")),
                None => Ok(Reply::Done),
            });
        }
        let t = LockTables::open(txn)?;
        for (i, (target, below)) in written.iter().enumerate() {
            let path = match target {
                Target::Path(p) => Some(p),
                _ => None,
            };
            let ino = match (path, target) {
                (Some(p), _) => ino_at(self, p)?,
                (None, t) => resolve(&self.inodes, &self.dirents, t)?.ok().map(|i| i.ino),
            };
            let mut ids = Vec::new();
            if let Some(p) = path {
                t.ids_on_path(p, *below, &mut ids)?;
            }
            if let Some(ino) = ino {
                t.ids_on_ino(ino, &mut ids)?;
            }
            ids.sort_unstable();
            ids.dedup();
            let mut fenced = false;
            for id in ids {
                let Some(l) = t.get(id)? else { continue };
                if !l.info.live(self.now) {
                    continue;
                }
                fenced |= guard.fence == Some(l.info.fence);
                // Mandatory: whole-path exclusive locks only (inode and range locks are advisory).
                let whole = l.info.items.iter().any(|it| it.range.is_none() && it.on_path().is_some());
                if l.info.mode == LockMode::Exclusive && whole && !guard.locks.contains(&id) {
                    let msg = format!("{target} is locked: {}; present its lock id to write", describe(&l.info));
                    return Ok(fail(ErrorCode::Locked, msg));
                }
            }
            if i == 0 && guard.fence.is_some() && !fenced {
                let msg = format!(
                    "fencing token {} is stale: no live lock with it covers {target}",
                    guard.fence.unwrap_or(0)
                );
                return Ok(fail(ErrorCode::Conflict, msg));
            }
        }
        Ok(Ok(Reply::Done))
    }
}

/// Checks one precondition against the target's inode (`None`: absent).
fn precondition(p: &Precondition, found: Option<&Inode>, at: &Target) -> std::result::Result<(), ApiError> {
    let etag = found.map(Inode::etag);
    let holds = match p {
        Precondition::Exists => found.is_some(),
        Precondition::Absent => found.is_none(),
        Precondition::EtagIn(tags) => etag.as_ref().is_some_and(|e| tags.iter().any(|t| weak_eq(t, e))),
        Precondition::EtagNotIn(tags) => etag.as_ref().is_none_or(|e| !tags.iter().any(|t| weak_eq(t, e))),
        Precondition::UnmodifiedSince(secs) => found.is_some_and(|i| i.mtime.div_euclid(1_000_000_000) <= *secs),
        Precondition::LockHeld(_) => true,
    };
    if holds {
        return Ok(());
    }
    let now = match etag {
        Some(e) => format!("its ETag is {e}"),
        None => "it does not exist".to_string(),
    };
    Err(ApiError::new(ErrorCode::PreconditionFailed, format!("precondition {p:?} failed on {at}: {now}")))
}

/// ETags compared ignoring a weak `W/` prefix.
fn weak_eq(a: &str, b: &str) -> bool {
    a.trim_start_matches("W/") == b.trim_start_matches("W/")
}

/// One page of live locks at `now`: those naming `path`, or inode `ino`, or all, in id
/// order after `after`.
pub fn locks(
    txn: &ReadTransaction,
    path: Option<&FsPath>,
    ino: Option<u64>,
    after: Option<u64>,
    limit: u32,
    now: i64,
) -> Result<(Vec<LockInfo>, Option<u64>)> {
    let limit = limit.clamp(1, cairn_core::wire::LIST_MAX) as usize;
    let start = match after {
        Some(u64::MAX) => return Ok((Vec::new(), None)),
        Some(a) => a + 1,
        None => 0,
    };
    let table = txn.open_table(LOCKS)?;
    let ids: Box<dyn Iterator<Item = Result<u64>>> = match (path, ino) {
        (None, Some(ino)) => {
            let rows = txn.open_table(LOCK_INOS)?;
            let ids: Vec<Result<u64>> =
                rows.range((ino, start)..=(ino, u64::MAX))?.map(|r| Ok(r?.0.value().1)).collect();
            Box::new(ids.into_iter())
        }
        (Some(p), _) => {
            let text = p.to_string();
            let rows = txn.open_table(LOCK_PATHS)?;
            let ids: Vec<Result<u64>> =
                rows.range((text.as_str(), start)..=(text.as_str(), u64::MAX))?.map(|r| Ok(r?.0.value().1)).collect();
            Box::new(ids.into_iter())
        }
        (None, None) => Box::new(table.range(start..)?.map(|r| Ok(r?.0.value()))),
    };
    let mut out = Vec::new();
    let mut next = None;
    for id in ids {
        let id = id?;
        let Some(v) = table.get(id)? else { continue };
        let l: StoredLock = decode(v.value(), "lock")?;
        if !l.info.live(now) {
            continue;
        }
        if out.len() == limit {
            next = out.last().map(|l: &LockInfo| l.id);
            break;
        }
        out.push(l.info);
    }
    Ok((out, next))
}

/// Creates the lock tables (part of `init`).
pub(crate) fn init(txn: &WriteTransaction) -> Result<()> {
    txn.open_table(LOCKS)?;
    txn.open_table(LOCK_PATHS)?;
    txn.open_table(LOCK_INOS)?;
    txn.open_table(LOCK_EXPIRY)?;
    Ok(())
}
