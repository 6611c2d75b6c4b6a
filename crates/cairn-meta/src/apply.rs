//! Applying commands: every check first, then the writes, so a refused command changes nothing.

use crate::tables::{
    fail, get_chunk, get_inode, get_worker, lookup, walk, ChunkRecord, Walk, CHUNKS, COUNTERS, DIRENTS, INODES, NODES,
    WORKERS, WORKER_NAMES,
};
use crate::Result;
use cairn_core::codec::encode;
use cairn_core::wire::{ApplyResult, Command, Content, HolderChange, Inode, InodeKind, NewAttrs, Reply};
use cairn_core::{ApiError, ChunkId, ErrorCode, FsPath, INLINE_MAX, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE};
use redb::{ReadableTable, Table, WriteTransaction};

/// A command's answer before it becomes a reply: a value, or the error the caller gets.
type Answer<T> = std::result::Result<T, ApiError>;
/// The existing directories from the root down, and the names of missing ancestors below them.
type ParentChain = (Vec<Inode>, Vec<String>);

/// The open tables of one write transaction.
struct Tx<'t> {
    inodes: Table<'t, u64, &'static [u8]>,
    dirents: Table<'t, (u64, &'static str), u64>,
    chunks: Table<'t, &'static [u8], &'static [u8]>,
    counters: Table<'t, &'static str, u64>,
    now: i64,
}

/// Applies one command at time `now` inside `txn`. The outer `Result` is a storage failure
/// (the batch must be aborted); the inner one is the command's answer, which is part of the
/// replicated state.
pub fn apply(txn: &WriteTransaction, now: i64, cmd: &Command) -> Result<ApplyResult> {
    let mut tx = Tx {
        inodes: txn.open_table(INODES)?,
        dirents: txn.open_table(DIRENTS)?,
        chunks: txn.open_table(CHUNKS)?,
        counters: txn.open_table(COUNTERS)?,
        now,
    };
    match cmd {
        Command::Mkdir { path, parents, attrs } => tx.mkdir(path, *parents, *attrs),
        Command::Commit { path, base_version, content, size, parents, attrs } => {
            tx.commit(path, *base_version, content, *size, *parents, *attrs)
        }
        Command::Symlink { path, target } => tx.symlink(path, target),
        Command::Remove { path, recursive } => tx.remove(path, *recursive),
        Command::Rename { from, to } => tx.rename(from, to),
        Command::SetDirPolicy { path, policy, chunk_size } => tx.set_dir_policy(path, *policy, *chunk_size),
        Command::ForgetChunks { ids, before } => tx.forget_chunks(ids, *before),
        Command::ChunkHolders { changes } => tx.chunk_holders(changes),
        Command::ForgetNode { node } => tx.forget_node(*node),
        Command::SetNodeState { node, state } => {
            txn.open_table(NODES)?.insert(*node, encode(state).as_slice())?;
            Ok(Ok(Reply::Done))
        }
        Command::SetWorker { name, paused, rate } => {
            if !WORKER_NAMES.contains(&name.as_str()) {
                let known = WORKER_NAMES.join(", ");
                return Ok(fail(ErrorCode::InvalidArgument, format!("no worker named {name:?} (known: {known})")));
            }
            let mut t = txn.open_table(WORKERS)?;
            let mut w = get_worker(&t, name)?;
            w.paused = paused.unwrap_or(w.paused);
            w.rate = rate.unwrap_or(w.rate);
            t.insert(name.as_str(), encode(&w).as_slice())?;
            Ok(Ok(Reply::Done))
        }
    }
}

/// Checks a file content description against its claimed size.
fn check_content(content: &Content, size: u64) -> std::result::Result<(), String> {
    match content {
        Content::None if size == 0 => Ok(()),
        Content::None => Err("empty content with a non-zero size".into()),
        Content::Inline(data) if data.len() as u64 != size => Err("inline length differs from size".into()),
        Content::Inline(_) if size > INLINE_MAX => Err(format!("inline data over {INLINE_MAX} bytes")),
        Content::Inline(_) => Ok(()),
        Content::Chunks { chunk_size, chunks } => {
            if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(chunk_size) {
                return Err(format!("chunk size {chunk_size} outside {MIN_CHUNK_SIZE}..={MAX_CHUNK_SIZE}"));
            }
            let (last, full) = chunks.split_last().ok_or("chunked content without chunks")?;
            if full.iter().any(|c| c.len != *chunk_size) || last.len == 0 || last.len > *chunk_size {
                return Err("chunk lengths do not match the chunk size".into());
            }
            if chunks.iter().map(|c| c.len as u64).sum::<u64>() != size {
                return Err("chunk lengths do not add up to the size".into());
            }
            Ok(())
        }
        Content::Symlink(_) => Err("a file cannot have symlink content".into()),
    }
}

impl Tx<'_> {
    fn put_inode(&mut self, inode: &Inode) -> Result<()> {
        self.inodes.insert(inode.ino, encode(inode).as_slice())?;
        Ok(())
    }

    fn alloc_ino(&mut self) -> Result<u64> {
        let ino = self.counters.get("next_ino")?.map(|v| v.value()).expect("next_ino set by init");
        self.counters.insert("next_ino", ino + 1)?;
        Ok(ino)
    }

    /// Records that `parent` gained (`delta` = 1) or lost (-1) an entry, `subdir` if a directory.
    fn touch_parent(&mut self, parent: &mut Inode, delta: i64, subdir: bool) -> Result<()> {
        parent.size = parent.size.saturating_add_signed(delta);
        if subdir {
            parent.nlink = (parent.nlink as i64 + delta) as u32;
        }
        parent.mtime = self.now;
        parent.ctime = self.now;
        parent.version += 1;
        self.put_inode(parent)
    }

    fn new_inode(&mut self, kind: InodeKind, attrs: NewAttrs, content: Content, size: u64) -> Result<Inode> {
        Ok(Inode {
            ino: self.alloc_ino()?,
            kind,
            mode: attrs.mode,
            uid: attrs.uid,
            gid: attrs.gid,
            size,
            mtime: self.now,
            ctime: self.now,
            nlink: if kind == InodeKind::Dir { 2 } else { 1 },
            version: 1,
            policy: None,
            chunk_size: None,
            content,
        })
    }

    /// Links a new inode into `parent` under `name`.
    fn link(&mut self, parent: &mut Inode, name: &str, inode: &Inode) -> Result<()> {
        self.put_inode(inode)?;
        self.dirents.insert((parent.ino, name), inode.ino)?;
        self.touch_parent(parent, 1, inode.kind == InodeKind::Dir)
    }

    /// Adds `delta` references to each chunk of `content`; a commit also raises each chunk's
    /// wanted copies to `want`.
    fn add_refs(&mut self, content: &Content, delta: i64, want: u8) -> Result<()> {
        if let Content::Chunks { chunks, .. } = content {
            for c in chunks {
                let mut rec = get_chunk(&self.chunks, &c.id)?.unwrap_or_else(|| ChunkRecord::new(self.now));
                rec.refs = rec.refs.saturating_add_signed(delta);
                rec.zero_since = if rec.refs == 0 { Some(self.now) } else { None };
                rec.len = c.len;
                rec.want = rec.want.max(want);
                self.put_chunk(&c.id, &rec)?;
            }
        }
        Ok(())
    }

    fn put_chunk(&mut self, id: &ChunkId, rec: &ChunkRecord) -> Result<()> {
        self.chunks.insert(id.0.as_slice(), encode(rec).as_slice())?;
        Ok(())
    }

    /// Records holders gained and lost. A chunk reported stored before any commit names it
    /// gets a record with no references, which the garbage collector forgets after the grace
    /// period if no commit follows.
    fn chunk_holders(&mut self, changes: &[HolderChange]) -> Result<ApplyResult> {
        let mut changed = 0;
        for c in changes {
            let existing = get_chunk(&self.chunks, &c.id)?;
            let mut rec = match (existing, c.held) {
                (Some(rec), _) => rec,
                (None, true) => ChunkRecord::new(self.now),
                (None, false) => continue,
            };
            let at = rec.holders.binary_search(&c.node);
            match (at, c.held) {
                (Err(i), true) => rec.holders.insert(i, c.node),
                (Ok(i), false) => {
                    rec.holders.remove(i);
                }
                _ => continue,
            }
            if c.held {
                rec.len = c.len;
            }
            self.put_chunk(&c.id, &rec)?;
            changed += 1;
        }
        Ok(Ok(Reply::Count(changed)))
    }

    /// Drops `node` from every chunk's holders.
    fn forget_node(&mut self, node: u64) -> Result<ApplyResult> {
        let mut touched = Vec::new();
        for r in self.chunks.iter()? {
            let (k, v) = r?;
            let mut rec: ChunkRecord = cairn_core::codec::decode(v.value(), "chunk record")?;
            if let Ok(i) = rec.holders.binary_search(&node) {
                rec.holders.remove(i);
                touched.push((k.value().to_vec(), rec));
            }
        }
        for (k, rec) in &touched {
            self.chunks.insert(k.as_slice(), encode(rec).as_slice())?;
        }
        Ok(Ok(Reply::Count(touched.len() as u64)))
    }

    /// Ensures the directories of `existing` + `missing` names exist, creating the missing ones.
    fn create_dirs(&mut self, mut existing: Vec<Inode>, missing: &[String], attrs: NewAttrs) -> Result<Inode> {
        let mut dir = existing.pop().expect("at least the root");
        for name in missing {
            let child = self.new_inode(InodeKind::Dir, attrs, Content::None, 0)?;
            self.link(&mut dir, name, &child)?;
            dir = child;
        }
        Ok(dir)
    }

    /// Finds the parent directory of `path`, or says which ancestors are missing.
    /// Returns (existing chain, missing ancestor names) with an error if the walk is impossible.
    fn parent_chain(&self, path: &FsPath) -> Result<Answer<ParentChain>> {
        let parent = path.parent().expect("caller checked for root");
        Ok(match walk(&self.inodes, &self.dirents, &parent)? {
            Err(e) => Err(e),
            Ok(Walk::Found(chain)) => {
                if chain.last().expect("non-empty").kind != InodeKind::Dir {
                    Err(ApiError::new(ErrorCode::NotADirectory, format!("{parent} is not a directory")))
                } else {
                    Ok((chain, Vec::new()))
                }
            }
            Ok(Walk::Missing { existing }) => {
                let missing = parent.components()[existing.len() - 1..].to_vec();
                Ok((existing, missing))
            }
        })
    }

    fn mkdir(&mut self, path: &FsPath, parents: bool, attrs: NewAttrs) -> Result<ApplyResult> {
        let existing = match walk(&self.inodes, &self.dirents, path)? {
            Err(e) => return Ok(Err(e)),
            Ok(Walk::Found(mut chain)) => {
                let inode = chain.pop().expect("non-empty");
                return Ok(match (inode.kind, parents) {
                    (InodeKind::Dir, true) => Ok(Reply::Inode(inode)),
                    _ => fail(ErrorCode::Exists, format!("{path} already exists")),
                });
            }
            Ok(Walk::Missing { existing }) => existing,
        };
        let missing = &path.components()[existing.len() - 1..];
        if missing.len() > 1 && !parents {
            return Ok(fail(ErrorCode::NotFound, format!("parent of {path} does not exist")));
        }
        Ok(Ok(Reply::Inode(self.create_dirs(existing, missing, attrs)?)))
    }

    fn commit(
        &mut self,
        path: &FsPath,
        base_version: Option<u64>,
        content: &Content,
        size: u64,
        parents: bool,
        attrs: NewAttrs,
    ) -> Result<ApplyResult> {
        if path.is_root() {
            return Ok(fail(ErrorCode::IsADirectory, "/ is a directory"));
        }
        if let Err(why) = check_content(content, size) {
            return Ok(fail(ErrorCode::InvalidArgument, why));
        }
        let (chain, missing) = match self.parent_chain(path)? {
            Ok(x) => x,
            Err(e) => return Ok(Err(e)),
        };
        if !missing.is_empty() && !parents {
            return Ok(fail(ErrorCode::NotFound, format!("parent of {path} does not exist")));
        }
        let name = path.name().expect("not root");
        let parent_ino = chain.last().expect("non-empty").ino;
        let current = match missing.is_empty() {
            true => match lookup(&self.dirents, parent_ino, name)? {
                Some(ino) => Some(get_inode(&self.inodes, ino)?.expect("dirent points at an inode")),
                None => None,
            },
            false => None,
        };
        match (&current, base_version) {
            (Some(i), _) if i.kind == InodeKind::Dir => {
                return Ok(fail(ErrorCode::IsADirectory, format!("{path} is a directory")))
            }
            (Some(_), Some(0)) => return Ok(fail(ErrorCode::Exists, format!("{path} already exists"))),
            (Some(i), Some(v)) if i.version != v => {
                return Ok(fail(ErrorCode::Conflict, format!("{path} changed: version {} is not {v}", i.version)))
            }
            (None, Some(v)) if v != 0 => return Ok(fail(ErrorCode::NotFound, format!("{path} does not exist"))),
            _ => {}
        }
        // The chunks must be kept at the file's policy: the nearest ancestor's, else the default.
        let want = chain.iter().rev().find_map(|i| i.policy).unwrap_or_default().copies() as u8;
        self.add_refs(content, 1, want)?;
        let inode = match current {
            Some(mut inode) => {
                self.add_refs(&inode.content, -1, 0)?;
                inode.kind = InodeKind::File;
                inode.content = content.clone();
                inode.size = size;
                inode.mtime = self.now;
                inode.ctime = self.now;
                inode.version += 1;
                self.put_inode(&inode)?;
                inode
            }
            None => {
                let mut parent = self.create_dirs(chain, &missing, NewAttrs::dir())?;
                let inode = self.new_inode(InodeKind::File, attrs, content.clone(), size)?;
                self.link(&mut parent, name, &inode)?;
                inode
            }
        };
        Ok(Ok(Reply::Inode(inode)))
    }

    fn symlink(&mut self, path: &FsPath, target: &str) -> Result<ApplyResult> {
        if path.is_root() {
            return Ok(fail(ErrorCode::Exists, "/ already exists"));
        }
        if target.is_empty() || target.len() > cairn_core::path::PATH_MAX || target.contains('\0') {
            return Ok(fail(ErrorCode::InvalidArgument, "symlink target must be 1..4096 bytes without NUL"));
        }
        let (chain, missing) = match self.parent_chain(path)? {
            Ok(x) => x,
            Err(e) => return Ok(Err(e)),
        };
        if !missing.is_empty() {
            return Ok(fail(ErrorCode::NotFound, format!("parent of {path} does not exist")));
        }
        let mut parent = chain.last().expect("non-empty").clone();
        let name = path.name().expect("not root");
        if lookup(&self.dirents, parent.ino, name)?.is_some() {
            return Ok(fail(ErrorCode::Exists, format!("{path} already exists")));
        }
        let content = Content::Symlink(target.to_string());
        let inode =
            self.new_inode(InodeKind::Symlink, NewAttrs { mode: 0o777, uid: 0, gid: 0 }, content, target.len() as u64)?;
        self.link(&mut parent, name, &inode)?;
        Ok(Ok(Reply::Inode(inode)))
    }

    /// Every inode of the tree rooted at `top`, parents before children, with their names.
    fn subtree(&self, top: &Inode) -> Result<Vec<Inode>> {
        let mut out = vec![top.clone()];
        let mut i = 0;
        while i < out.len() {
            if out[i].kind == InodeKind::Dir {
                let ino = out[i].ino;
                let children: Vec<u64> = self
                    .dirents
                    .range((ino, "")..(ino + 1, ""))?
                    .map(|r| r.map(|(_, v)| v.value()))
                    .collect::<std::result::Result<_, _>>()?;
                for c in children {
                    out.push(get_inode(&self.inodes, c)?.expect("dirent points at an inode"));
                }
            }
            i += 1;
        }
        Ok(out)
    }

    /// Deletes `inode` (and, for a directory, its whole tree) and unlinks it from `parent`.
    fn unlink_tree(&mut self, parent: &mut Inode, name: &str, inode: &Inode) -> Result<()> {
        for victim in self.subtree(inode)? {
            self.add_refs(&victim.content, -1, 0)?;
            if victim.kind == InodeKind::Dir {
                let names: Vec<String> = self
                    .dirents
                    .range((victim.ino, "")..(victim.ino + 1, ""))?
                    .map(|r| r.map(|(k, _)| k.value().1.to_string()))
                    .collect::<std::result::Result<_, _>>()?;
                for n in names {
                    self.dirents.remove((victim.ino, n.as_str()))?;
                }
            }
            self.inodes.remove(victim.ino)?;
        }
        self.dirents.remove((parent.ino, name))?;
        self.touch_parent(parent, -1, inode.kind == InodeKind::Dir)
    }

    /// Resolves `path` to (parent, inode), both existing.
    fn resolve_with_parent(&self, path: &FsPath) -> Result<Answer<(Inode, Inode)>> {
        Ok(match walk(&self.inodes, &self.dirents, path)? {
            Err(e) => Err(e),
            Ok(Walk::Missing { .. }) => Err(ApiError::new(ErrorCode::NotFound, format!("{path} does not exist"))),
            Ok(Walk::Found(mut chain)) => {
                let inode = chain.pop().expect("non-empty");
                let parent = chain.pop().expect("not root");
                Ok((parent, inode))
            }
        })
    }

    fn remove(&mut self, path: &FsPath, recursive: bool) -> Result<ApplyResult> {
        if path.is_root() {
            return Ok(fail(ErrorCode::InvalidArgument, "the root directory cannot be removed"));
        }
        let (mut parent, inode) = match self.resolve_with_parent(path)? {
            Ok(x) => x,
            Err(e) => return Ok(Err(e)),
        };
        if inode.kind == InodeKind::Dir && inode.size > 0 && !recursive {
            return Ok(fail(ErrorCode::NotEmpty, format!("{path} is not empty")));
        }
        self.unlink_tree(&mut parent, path.name().expect("not root"), &inode)?;
        Ok(Ok(Reply::Done))
    }

    fn rename(&mut self, from: &FsPath, to: &FsPath) -> Result<ApplyResult> {
        if from.is_root() || to.is_root() {
            return Ok(fail(ErrorCode::InvalidArgument, "the root directory cannot be renamed or replaced"));
        }
        let (mut src_parent, src) = match self.resolve_with_parent(from)? {
            Ok(x) => x,
            Err(e) => return Ok(Err(e)),
        };
        if from == to {
            return Ok(Ok(Reply::Inode(src)));
        }
        if to.starts_with(from) {
            return Ok(fail(ErrorCode::InvalidArgument, format!("cannot move {from} into its own subtree {to}")));
        }
        let (chain, missing) = match self.parent_chain(to)? {
            Ok(x) => x,
            Err(e) => return Ok(Err(e)),
        };
        if !missing.is_empty() {
            return Ok(fail(ErrorCode::NotFound, format!("parent of {to} does not exist")));
        }
        let to_name = to.name().expect("not root");
        let mut dst_parent = chain.last().expect("non-empty").clone();
        let existing = match lookup(&self.dirents, dst_parent.ino, to_name)? {
            Some(ino) => Some(get_inode(&self.inodes, ino)?.expect("dirent points at an inode")),
            None => None,
        };
        if let Some(dst) = &existing {
            let answer = match (src.kind == InodeKind::Dir, dst.kind == InodeKind::Dir) {
                (true, false) => Some(fail(ErrorCode::NotADirectory, format!("{to} is not a directory"))),
                (false, true) => Some(fail(ErrorCode::IsADirectory, format!("{to} is a directory"))),
                (true, true) if dst.size > 0 => Some(fail(ErrorCode::NotEmpty, format!("{to} is not empty"))),
                _ => None,
            };
            if let Some(answer) = answer {
                return Ok(answer);
            }
        }
        // All checks passed: replace the destination, then move the entry.
        if let Some(dst) = existing {
            self.unlink_tree(&mut dst_parent, to_name, &dst)?;
        }
        let is_dir = src.kind == InodeKind::Dir;
        let from_name = from.name().expect("not root");
        self.dirents.remove((src_parent.ino, from_name))?;
        if src_parent.ino == dst_parent.ino {
            // Same directory: one inode, net zero entries.
            self.dirents.insert((dst_parent.ino, to_name), src.ino)?;
            self.touch_parent(&mut dst_parent, 0, false)?;
        } else {
            self.touch_parent(&mut src_parent, -1, is_dir)?;
            // The destination parent may be a descendant of the source parent whose inode
            // we just rewrote; re-read it so no update is lost.
            let mut dst_parent = get_inode(&self.inodes, dst_parent.ino)?.expect("destination parent exists");
            self.dirents.insert((dst_parent.ino, to_name), src.ino)?;
            self.touch_parent(&mut dst_parent, 1, is_dir)?;
        }
        let mut moved = src;
        moved.ctime = self.now;
        moved.version += 1;
        self.put_inode(&moved)?;
        Ok(Ok(Reply::Inode(moved)))
    }

    fn set_dir_policy(
        &mut self,
        path: &FsPath,
        policy: Option<cairn_core::Policy>,
        chunk_size: Option<u32>,
    ) -> Result<ApplyResult> {
        if let Some(cs) = chunk_size {
            if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&cs) {
                return Ok(fail(
                    ErrorCode::InvalidArgument,
                    format!("chunk size {cs} outside {MIN_CHUNK_SIZE}..={MAX_CHUNK_SIZE}"),
                ));
            }
        }
        let mut inode = match crate::tables::resolve(&self.inodes, &self.dirents, path)? {
            Ok(i) => i,
            Err(e) => return Ok(Err(e)),
        };
        if inode.kind != InodeKind::Dir {
            return Ok(fail(ErrorCode::NotADirectory, format!("{path} is not a directory")));
        }
        if policy.is_some() {
            inode.policy = policy;
        }
        if chunk_size.is_some() {
            inode.chunk_size = chunk_size;
        }
        inode.ctime = self.now;
        inode.version += 1;
        self.put_inode(&inode)?;
        Ok(Ok(Reply::Inode(inode)))
    }

    fn forget_chunks(&mut self, ids: &[ChunkId], before: i64) -> Result<ApplyResult> {
        let mut n = 0;
        for id in ids {
            if let Some(rec) = get_chunk(&self.chunks, id)? {
                if rec.refs == 0 && rec.zero_since.is_some_and(|t| t <= before) {
                    self.chunks.remove(id.0.as_slice())?;
                    n += 1;
                }
            }
        }
        Ok(Ok(Reply::Count(n)))
    }
}
