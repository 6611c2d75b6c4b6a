//! Applying commands: every check first, then the writes, so a refused command changes nothing.
//!
//! This module holds the dispatch and the helpers every command shares (allocating inodes,
//! linking names, keeping parents' counts and chunk references right); the commands
//! themselves live in `namespace` (names), `data` (file contents and attributes) and
//! `holders` (the durability ledger).

use crate::tables::{
    fail, get_chunk, get_worker, inherited, linked_inode, ChunkRecord, CHUNKS, COUNTERS, DIRENTS, HANDLES, HOLDINGS,
    HOLD_COUNTS, INODES, NODES, ORPHANS, UNREFERENCED, WORKERS, WORKER_NAMES, XATTRS,
};
use crate::{MetaError, Result};
use cairn_core::codec::encode;
use cairn_core::lock::Guard;
use cairn_core::wire::{
    state_of, ApplyResult, Change, ClientCommand, ClusterCommand, Command, Content, Inode, InodeKind, NewAttrs, Reply,
    BATCH_MAX,
};
use cairn_core::{ApiError, ChunkId, ErrorCode, Policy};
use redb::{ReadableTable, Table, WriteTransaction};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// A command's answer before it becomes a reply: a value, or the error the caller gets.
pub(crate) type Answer<T> = std::result::Result<T, ApiError>;

/// Unwraps an answer inside a command, returning the refusal as the command's result.
macro_rules! check {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        }
    };
}
pub(crate) use check;

/// The open tables of one write transaction.
pub(crate) struct Tx<'t> {
    pub(crate) inodes: Table<'t, u64, &'static [u8]>,
    pub(crate) dirents: Table<'t, (u64, &'static str), u64>,
    pub(crate) xattrs: Table<'t, (u64, &'static str), &'static [u8]>,
    pub(crate) chunks: Table<'t, &'static [u8], &'static [u8]>,
    pub(crate) holdings: Table<'t, (u64, &'static [u8]), ()>,
    pub(crate) hold_counts: Table<'t, (u8, u8, &'static [u8]), ()>,
    pub(crate) unreferenced: Table<'t, (i64, &'static [u8]), ()>,
    pub(crate) handles: Table<'t, (u64, u64), i64>,
    pub(crate) orphans: Table<'t, u64, ()>,
    pub(crate) counters: Table<'t, &'static str, u64>,
    pub(crate) versioning: Table<'t, u64, u32>,
    pub(crate) history: Table<'t, (u64, u64), &'static [u8]>,
    pub(crate) graves: Table<'t, (u64, &'static str), u64>,
    pub(crate) now: i64,
    /// What the commands changed, for the change feed.
    pub(crate) changes: Vec<Change>,
}

/// Applies one command at time `now` inside `txn`. The outer `Result` is a storage failure
/// (the batch must be aborted); the inner one is the command's answer, which is part of the
/// replicated state.
pub fn apply(txn: &WriteTransaction, now: i64, cmd: &Command) -> Result<ApplyResult> {
    apply_all(txn, now, std::slice::from_ref(cmd)).map(|mut r| r.pop().expect("one answer per command"))
}

/// Applies commands in order at time `now` inside `txn`, opening the tables once for all of
/// them; each is still all or nothing on its own. One answer per command. A batch refused
/// part-way is [`MetaError::Undo`]: see [`apply_all_except`].
pub fn apply_all(txn: &WriteTransaction, now: i64, cmds: &[Command]) -> Result<Vec<ApplyResult>> {
    apply_all_except(txn, now, cmds, &BTreeMap::new(), &mut Vec::new())
}

/// [`apply_all`], with the commands at the positions in `answered` not applied but answered
/// as given: how an entry is applied again, in a fresh transaction, after a
/// [`MetaError::Undo`] (the batch then answers `Reply::BatchFailed`, having changed nothing).
/// What the commands changed is appended to `changes` (meaningful only if the transaction
/// commits).
pub fn apply_all_except(
    txn: &WriteTransaction,
    now: i64,
    cmds: &[Command],
    answered: &BTreeMap<usize, ApplyResult>,
    changes: &mut Vec<Change>,
) -> Result<Vec<ApplyResult>> {
    let mut tx = Tx {
        inodes: txn.open_table(INODES)?,
        dirents: txn.open_table(DIRENTS)?,
        xattrs: txn.open_table(XATTRS)?,
        chunks: txn.open_table(CHUNKS)?,
        holdings: txn.open_table(HOLDINGS)?,
        hold_counts: txn.open_table(HOLD_COUNTS)?,
        unreferenced: txn.open_table(UNREFERENCED)?,
        handles: txn.open_table(HANDLES)?,
        orphans: txn.open_table(ORPHANS)?,
        counters: txn.open_table(COUNTERS)?,
        versioning: txn.open_table(crate::history::VERSIONING)?,
        history: txn.open_table(crate::history::HISTORY)?,
        graves: txn.open_table(crate::history::GRAVES)?,
        now,
        changes: Vec::new(),
    };
    let mut out = Vec::with_capacity(cmds.len());
    for (pos, cmd) in cmds.iter().enumerate() {
        out.push(match answered.get(&pos) {
            Some(answer) => answer.clone(),
            None => tx.one(txn, cmd).map_err(|e| match e {
                MetaError::Undo { index, error, .. } => MetaError::Undo { command: pos, index, error },
                e => e,
            })?,
        });
    }
    changes.append(&mut tx.changes);
    Ok(out)
}

/// Applies commands at time `now` in a write transaction of `db` and commits it; a batch
/// refused part-way is undone by applying the others again without it. For callers that own
/// no transaction (tools, tests).
pub fn apply_committed(db: &redb::Database, now: i64, cmds: &[Command]) -> Result<Vec<ApplyResult>> {
    let mut answered = BTreeMap::new();
    loop {
        let txn = db.begin_write()?;
        match apply_all_except(&txn, now, cmds, &answered, &mut Vec::new()) {
            Ok(out) => {
                txn.commit()?;
                return Ok(out);
            }
            Err(MetaError::Undo { command, index, error }) => {
                answered.insert(command, Ok(Reply::BatchFailed { index, error }));
                txn.abort()?;
            }
            Err(e) => return Err(e),
        }
    }
}

impl Tx<'_> {
    fn one(&mut self, txn: &WriteTransaction, cmd: &Command) -> Result<ApplyResult> {
        match cmd {
            Command::Client(c) => self.client(txn, c),
            Command::Cluster(c) => self.cluster(txn, c),
        }
    }

    /// A client command: a batch, lock commands, or a (guarded) command checked against
    /// the locks.
    fn client(&mut self, txn: &WriteTransaction, cmd: &ClientCommand) -> Result<ApplyResult> {
        let (guard, cmd) = match cmd {
            ClientCommand::Batch { ops } => return self.batch(txn, ops),
            ClientCommand::Lock { id, owner, mode, items, ttl } => {
                return self.lock(txn, *id, owner, *mode, items, *ttl)
            }
            ClientCommand::RenewLock { id, owner, ttl } => return self.renew_lock(txn, *id, owner.as_deref(), *ttl),
            ClientCommand::Unlock { id, owner } => return self.unlock(txn, *id, owner.as_deref()),
            ClientCommand::Guarded { guard, cmd } => (Cow::Borrowed(guard), cmd.as_ref()),
            cmd => (Cow::Owned(Guard::default()), cmd),
        };
        if matches!(
            cmd,
            ClientCommand::Guarded { .. }
                | ClientCommand::Batch { .. }
                | ClientCommand::Lock { .. }
                | ClientCommand::RenewLock { .. }
                | ClientCommand::Unlock { .. }
        ) {
            return Ok(fail(ErrorCode::InvalidArgument, "a guard wraps one plain command"));
        }
        check!(self.enforce(txn, &guard, cmd)?);
        self.plain(cmd)
    }

    fn plain(&mut self, cmd: &ClientCommand) -> Result<ApplyResult> {
        let tx = self;
        match cmd {
            ClientCommand::Mkdir { at, parents, attrs } => tx.mkdir(at, *parents, *attrs),
            ClientCommand::Commit { at, base_version, content, size, parents, attrs } => {
                tx.commit(at, *base_version, content, *size, *parents, *attrs)
            }
            ClientCommand::Write { at, base_version, offset, data } => tx.write(at, *base_version, *offset, data),
            ClientCommand::Concat { at, sources } => tx.concat(at, sources),
            ClientCommand::Symlink { at, target } => tx.symlink(at, target),
            ClientCommand::Link { from, to } => tx.link_name(from, to),
            ClientCommand::Remove { at, recursive } => tx.remove(at, *recursive),
            ClientCommand::Rename { from, to } => tx.rename(from, to),
            ClientCommand::SetAttr { at, attrs } => tx.set_attr(at, attrs),
            ClientCommand::SetXattr { at, name, value, mode } => tx.set_xattr(at, name, value, *mode),
            ClientCommand::RemoveXattr { at, name } => tx.remove_xattr(at, name),
            ClientCommand::Open { at, handle, lease } => tx.open(at, *handle, *lease),
            ClientCommand::Renew { handles, lease } => tx.renew(handles, *lease),
            ClientCommand::Close { handles, expired_only } => tx.close(handles, *expired_only),
            ClientCommand::SetDirPolicy { at, policy, chunk_size } => tx.set_dir_policy(at, *policy, *chunk_size),
            ClientCommand::SetDirVersions { at, versions } => tx.set_dir_versions(at, *versions),
            ClientCommand::Restore { at, version } => tx.restore(at, *version),
            ClientCommand::DropVersion { at, version } => tx.drop_version(at, *version),
            ClientCommand::Guarded { .. }
            | ClientCommand::Batch { .. }
            | ClientCommand::Lock { .. }
            | ClientCommand::RenewLock { .. }
            | ClientCommand::Unlock { .. } => unreachable!("taken apart by Tx::client"),
        }
    }

    /// Applies a batch's operations in order; the first refusal ends it. Refused first, it
    /// changed nothing; refused later, the caller must undo the transaction
    /// ([`MetaError::Undo`]).
    fn batch(&mut self, txn: &WriteTransaction, ops: &[ClientCommand]) -> Result<ApplyResult> {
        if ops.is_empty() || ops.len() > BATCH_MAX {
            return Ok(fail(ErrorCode::InvalidArgument, format!("a batch holds 1 to {BATCH_MAX} operations")));
        }
        if let Some(i) = ops.iter().position(|op| matches!(op, ClientCommand::Batch { .. })) {
            return Ok(fail(ErrorCode::InvalidArgument, format!("operation {i} is a batch: batches do not nest")));
        }
        let mut replies = Vec::with_capacity(ops.len());
        for (i, op) in ops.iter().enumerate() {
            match self.client(txn, op)? {
                Ok(reply) => replies.push(reply),
                Err(error) if i == 0 => return Ok(Ok(Reply::BatchFailed { index: 0, error })),
                Err(error) => return Err(MetaError::Undo { command: 0, index: i as u32, error }),
            }
        }
        Ok(Ok(Reply::Batch(replies)))
    }

    fn cluster(&mut self, txn: &WriteTransaction, cmd: &ClusterCommand) -> Result<ApplyResult> {
        let tx = self;
        match cmd {
            ClusterCommand::ForgetChunks { ids, before } => tx.forget_chunks(ids, *before),
            ClusterCommand::ChunkHolders { changes } => tx.chunk_holders(changes),
            ClusterCommand::ForgetNode { node } => tx.forget_node(*node),
            ClusterCommand::Archive { ino, version, policy } => tx.archive(*ino, *version, *policy),
            ClusterCommand::SetNodeState { node, state } => {
                txn.open_table(NODES)?.insert(*node, encode(state).as_slice())?;
                Ok(Ok(Reply::Done))
            }
            ClusterCommand::SetWorker { name, paused, rate } => {
                if !WORKER_NAMES.contains(&name.as_str()) {
                    let known = WORKER_NAMES.join(", ");
                    let msg =
                        format!("no worker named {:?} (known: {known})", name.chars().take(64).collect::<String>());
                    return Ok(crate::tables::fail(ErrorCode::InvalidArgument, msg));
                }
                let mut t = txn.open_table(WORKERS)?;
                let mut w = get_worker(&t, name)?;
                w.paused = paused.unwrap_or(w.paused);
                w.rate = rate.unwrap_or(w.rate);
                t.insert(name.as_str(), encode(&w).as_slice())?;
                Ok(Ok(Reply::Done))
            }
            ClusterCommand::PutKey { key } => crate::keys::put_key(txn, key),
            ClusterCommand::DeleteKey { name } => crate::keys::delete_key(txn, name),
        }
    }
}

impl Tx<'_> {
    pub(crate) fn put_inode(&mut self, inode: &Inode) -> Result<()> {
        let bytes = encode(inode);
        self.inodes.insert(inode.ino, bytes.as_slice())?;
        self.changed(inode.ino, None, state_of(&bytes));
        Ok(())
    }

    /// Notes for the change feed that inode `ino` (with `name`: its entry `name`) became
    /// `state` (see [`Change::state`]).
    pub(crate) fn changed(&mut self, ino: u64, name: Option<&str>, state: u64) {
        self.changes.push(Change { ino, name: name.map(str::to_string), state });
    }

    /// Reads an inode known to exist.
    pub(crate) fn inode(&self, ino: u64) -> Result<Inode> {
        linked_inode(&self.inodes, ino)
    }

    fn alloc_ino(&mut self) -> Result<u64> {
        let ino = self.counters.get("next_ino")?.map(|v| v.value()).expect("next_ino set by init");
        self.counters.insert("next_ino", ino + 1)?;
        Ok(ino)
    }

    /// Records that directory `parent` gained (`delta` = 1) or lost (-1) an entry, `subdir`
    /// if the entry is a directory (whose `..` counts as a link of the parent).
    pub(crate) fn touch_parent(&mut self, parent: u64, delta: i64, subdir: bool) -> Result<()> {
        let mut dir = self.inode(parent)?;
        dir.size = dir.size.saturating_add_signed(delta);
        if subdir {
            dir.nlink = dir.nlink.saturating_add_signed(delta as i32);
        }
        dir.mtime = self.now;
        dir.ctime = self.now;
        dir.version += 1;
        self.put_inode(&dir)
    }

    /// A new inode (not yet stored) of `kind` in directory `parent`.
    pub(crate) fn new_inode(
        &mut self,
        kind: InodeKind,
        attrs: NewAttrs,
        parent: &Inode,
        content: Content,
        size: u64,
    ) -> Result<Inode> {
        let (policy, chunk_size) = match kind {
            InodeKind::File => {
                let (p, cs) = inherited(&self.inodes, parent)?;
                (Some(p), Some(attrs.chunk_size.unwrap_or(cs)))
            }
            _ => (None, None),
        };
        Ok(Inode {
            ino: self.alloc_ino()?,
            kind,
            mode: attrs.mode & 0o7777,
            uid: attrs.uid,
            gid: attrs.gid,
            size,
            atime: self.now,
            mtime: self.now,
            ctime: self.now,
            nlink: if kind == InodeKind::Dir { 2 } else { 1 },
            parent: if kind == InodeKind::Dir { parent.ino } else { 0 },
            version: 1,
            policy,
            chunk_size,
            content,
        })
    }

    /// Stores `inode` and names it `name` in directory `parent`.
    pub(crate) fn link(&mut self, parent: u64, name: &str, inode: &Inode) -> Result<()> {
        self.put_inode(inode)?;
        self.dirents.insert((parent, name), inode.ino)?;
        self.changed(parent, Some(name), inode.ino);
        self.touch_parent(parent, 1, inode.kind == InodeKind::Dir)
    }

    /// Moves chunk references from `old` content to `new`: only chunks whose count changes
    /// are rewritten, and chunks gaining references are raised to `policy`.
    pub(crate) fn swap_refs(&mut self, old: &Content, new: &Content, policy: Option<Policy>) -> Result<()> {
        let mut delta: BTreeMap<ChunkId, i64> = BTreeMap::new();
        for (content, d) in [(old, -1), (new, 1)] {
            if let Content::Extents(extents) = content {
                for id in cairn_core::extent::chunks(extents) {
                    *delta.entry(id).or_default() += d;
                }
            }
        }
        for (id, d) in delta.into_iter().filter(|(_, d)| *d != 0) {
            let before = get_chunk(&self.chunks, &id)?;
            let mut rec = before.clone().unwrap_or_else(|| ChunkRecord::new(self.now));
            rec.refs = rec.refs.saturating_add_signed(d);
            rec.zero_since = if rec.refs == 0 { Some(self.now) } else { None };
            if d > 0 {
                let p = policy.unwrap_or_default();
                rec.policy = Some(rec.policy.map_or(p, |have| have.stronger(p)));
            }
            self.put_chunk(&id, before.as_ref(), Some(&rec))?;
        }
        Ok(())
    }

    /// Replaces chunk record `before` by `after` (`None`: absent), keeping the `hold_counts`
    /// and `unreferenced` indexes, the referenced-chunk counters (`chunks`, `chunk_bytes`)
    /// and the per-policy usage counters equal to the records.
    pub(crate) fn put_chunk(
        &mut self,
        id: &ChunkId,
        before: Option<&ChunkRecord>,
        after: Option<&ChunkRecord>,
    ) -> Result<()> {
        let key = |r: Option<&ChunkRecord>| r.and_then(ChunkRecord::count_key);
        let (old, new) = (key(before), key(after));
        if old != new {
            if let Some((h, w)) = old {
                self.hold_counts.remove((h, w, id.0.as_slice()))?;
            }
            if let Some((h, w)) = new {
                self.hold_counts.insert((h, w, id.0.as_slice()), ())?;
            }
        }
        let zero = |r: Option<&ChunkRecord>| r.and_then(ChunkRecord::zero_key);
        let (old_zero, new_zero) = (zero(before), zero(after));
        if old_zero != new_zero {
            if let Some(t) = old_zero {
                self.unreferenced.remove((t, id.0.as_slice()))?;
            }
            if let Some(t) = new_zero {
                self.unreferenced.insert((t, id.0.as_slice()), ())?;
            }
        }
        let bytes = |r: Option<&ChunkRecord>| r.filter(|r| r.refs > 0).map_or(0, |r| r.len as i64);
        let (dc, db) = (new.is_some() as i64 - old.is_some() as i64, bytes(after) - bytes(before));
        for (name, d) in [("chunks", dc), ("chunk_bytes", db)] {
            if d != 0 {
                let v = self.counters.get(name)?.map_or(0, |v| v.value());
                self.counters.insert(name, v.saturating_add_signed(d))?;
            }
        }
        for (name, d) in crate::usage::delta(before, after) {
            crate::usage::bump(&mut self.counters, &name, d)?;
        }
        match after {
            Some(rec) => drop(self.chunks.insert(id.0.as_slice(), encode(rec).as_slice())?),
            None => drop(self.chunks.remove(id.0.as_slice())?),
        }
        Ok(())
    }

    /// Deletes an inode that has lost its last name: its chunk references, its extended
    /// attributes, and the record itself.
    pub(crate) fn free_inode(&mut self, inode: &Inode) -> Result<()> {
        self.swap_refs(&inode.content, &Content::None, None)?;
        let names: Vec<String> = self
            .xattrs
            .range((inode.ino, "")..(inode.ino + 1, ""))?
            .map(|r| r.map(|(k, _)| k.value().1.to_string()))
            .collect::<std::result::Result<_, _>>()?;
        for n in names {
            self.xattrs.remove((inode.ino, n.as_str()))?;
        }
        self.versioning.remove(inode.ino)?;
        self.inodes.remove(inode.ino)?;
        self.changed(inode.ino, None, 0);
        Ok(())
    }
}
