//! How the mount asks the cluster: commands and queries on the client's runtime, errors as
//! errnos, and the upkeep of the metadata cache around them (answers kept, what this mount
//! changes dropped or replaced by what the write answered).

use crate::attr::{attr, TTL};
use crate::dir::Listing;
use crate::errno;
use crate::fs::{CairnFs, Res};
use cairn_client::{Backend, ClientError};
use cairn_core::wire::{ClientCommand, Inode, NewAttrs, Query, QueryReply, Reply, SetAttrs, Target};
use fuser::{Errno, FileHandle, Generation, INodeNo, ReplyEntry, Request};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::sync::{Arc, Mutex};

/// The errno of a client error.
pub(crate) fn err(e: ClientError) -> Errno {
    errno(e.code())
}

impl CairnFs {
    /// Runs a client call on the client's runtime, its error as an errno.
    pub(crate) fn run<T>(&self, f: impl std::future::Future<Output = Result<T, ClientError>>) -> Res<T> {
        self.rt.block_on(f).map_err(err)
    }

    /// Sends a metadata command (refused on a read-only mount) and keeps the cache right.
    pub(crate) fn write(&self, cmd: ClientCommand) -> Res<Reply> {
        if self.read_only {
            return Err(Errno::EROFS);
        }
        let ticket = self.cache.ticket();
        let targets = touched(&cmd);
        // An inode answered to an attribute change says nothing of the attributes.
        let keep = !matches!(cmd, ClientCommand::SetXattr { .. } | ClientCommand::RemoveXattr { .. });
        let r = self.run(self.client.backend().write(cmd));
        // What this mount changed leaves its cache whatever the outcome (a write that timed
        // out may have happened), except what the write answered with, which is kept.
        match (&r, targets.as_slice()) {
            (Ok(Reply::Inode(i)), [Target::Ino(_)]) if keep => self.cache.put_inode(ticket, i),
            (Ok(Reply::Inode(i)), [Target::Child { parent, name }]) if keep => {
                if let Some(Some(old)) =
                    self.cache.entry(*parent, name).filter(|o| o.as_ref().map(|o| o.ino) != Some(i.ino))
                {
                    self.cache.forget(old.ino, None);
                }
                self.cache.forget(*parent, None);
                self.cache.put_entry(ticket, *parent, name, Some(i));
            }
            _ => targets.iter().for_each(|t| self.forget(t)),
        }
        r
    }

    /// Drops from the cache what a change at `t` touches: the inode, or the entry and its
    /// directory's attributes (and the inode the entry named).
    pub(crate) fn forget(&self, t: &Target) {
        match t {
            Target::Ino(ino) => self.cache.forget(*ino, None),
            Target::Child { parent, name } => {
                if let Some(Some(old)) = self.cache.entry(*parent, name) {
                    self.cache.forget(old.ino, None);
                }
                self.cache.forget(*parent, Some(name));
                self.cache.forget(*parent, None);
            }
            Target::Path(_) => {}
        }
    }

    /// [`CairnFs::write`] of a command that answers an inode.
    pub(crate) fn write_inode(&self, cmd: ClientCommand) -> Res<Inode> {
        match self.write(cmd)? {
            Reply::Inode(i) => Ok(i),
            _ => Err(Errno::EIO),
        }
    }

    /// Asks a metadata query (linearizable; never cached).
    pub(crate) fn query(&self, q: Query) -> Res<QueryReply> {
        self.run(self.client.backend().query(q))
    }

    /// The inode at `at`, as the cluster has it now.
    pub(crate) fn stat(&self, at: Target) -> Res<Inode> {
        match self.query(Query::Stat(at))? {
            QueryReply::Inode(i) => Ok(i),
            _ => Err(Errno::EIO),
        }
    }

    /// Inode `ino` from the cache, or from the cluster (then cached).
    pub(crate) fn cached_stat(&self, ino: u64) -> Res<Inode> {
        if let Some(i) = self.cache.inode(ino) {
            return Ok(i);
        }
        let ticket = self.cache.ticket();
        let i = self.stat(Target::Ino(ino))?;
        self.cache.put_inode(ticket, &i);
        Ok(i)
    }

    /// The inode named `at` (a child target), from the cache or the cluster (then cached,
    /// absent names too; an answer from the cluster is also what an open right after uses).
    pub(crate) fn look_up(&self, at: Target) -> Res<Inode> {
        let Target::Child { parent, name } = &at else { return self.stat(at) };
        match self.cache.entry(*parent, name) {
            Some(Some(i)) => return Ok(i),
            Some(None) => return Err(Errno::ENOENT),
            None => {}
        }
        let ticket = self.cache.ticket();
        let (parent, name) = (*parent, name.clone());
        match self.stat(at) {
            Ok(i) => {
                self.cache.put_entry(ticket, parent, &name, Some(&i));
                self.handles.seen(&i);
                Ok(i)
            }
            Err(e) if e == Errno::ENOENT => {
                self.cache.put_entry(ticket, parent, &name, None);
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// The name `name` in kernel directory `parent`, checked like any cairn name.
    pub(crate) fn child(&self, parent: INodeNo, name: &OsStr) -> Res<Target> {
        let name = std::str::from_utf8(name.as_bytes()).map_err(|_| Errno::EINVAL)?;
        if name.len() > cairn_core::path::NAME_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        cairn_core::validate_name(name).map_err(|_| Errno::EINVAL)?;
        Ok(Target::Child { parent: self.inos.cairn(parent), name: name.to_string() })
    }

    /// The attributes of a new inode made by `req`'s caller.
    pub(crate) fn new_attrs(req: &Request, mode: u32, umask: u32) -> NewAttrs {
        NewAttrs { mode: mode & !umask & 0o7777, uid: req.uid(), gid: req.gid(), chunk_size: None }
    }

    /// Answers a look-up-like request with an inode or an errno.
    pub(crate) fn entry(&self, reply: ReplyEntry, r: Res<Inode>) {
        match r {
            Ok(i) => reply.entry(&TTL, &attr(self.inos, &self.with_buffered(i)), Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    /// Swaps the inodes two names name (`RENAME_EXCHANGE`), atomically: one batch of three
    /// renames through a temporary name no one else uses, applied whole or not at all (so
    /// both names must exist, and a directory cannot move below itself).
    pub(crate) fn exchange(&self, a: Target, b: Target) -> Res<Reply> {
        let Target::Child { parent, .. } = &a else { return Err(Errno::EINVAL) };
        let tmp = Target::Child { parent: *parent, name: format!(".cairn-exchange-{:032x}", rand::random::<u128>()) };
        let rename = |from: &Target, to: &Target| ClientCommand::Rename { from: from.clone(), to: to.clone() };
        let ops = vec![rename(&a, &tmp), rename(&b, &a), rename(&tmp, &b)];
        match self.write(ClientCommand::Batch { ops })? {
            Reply::BatchFailed { error, .. } => Err(errno(error.code)),
            r => Ok(r),
        }
    }

    /// The listing of directory handle `fh`.
    pub(crate) fn listing(&self, fh: FileHandle) -> Res<Arc<Mutex<Listing>>> {
        self.dirs.lock().expect("dirs lock").get(&u64::from(fh)).cloned().ok_or(Errno::EBADF)
    }

    /// Changes attributes (after committing buffered writes, so a truncate sees them).
    pub(crate) fn set_attr(&self, ino: INodeNo, attrs: SetAttrs) -> Res<Inode> {
        let ino = self.inos.cairn(ino);
        // Buffered writes go first, so a truncate or a size read after them sees them.
        if let Some(f) = self.handles.open_inode(ino) {
            self.commit_inode(&f)?;
        }
        let inode = self.write_inode(ClientCommand::SetAttr { at: Target::Ino(ino), attrs })?;
        self.handles.changed(ino);
        if let Some(f) = self.handles.open_inode(ino) {
            self.rt.block_on(f.lock()).refresh(inode.clone());
        }
        Ok(inode)
    }
}

/// The targets a command changes (the commands this mount sends; others change no inode).
fn touched(cmd: &ClientCommand) -> Vec<Target> {
    use ClientCommand as C;
    match cmd {
        C::Batch { ops } => ops.iter().flat_map(touched).collect(),
        C::Commit { at, .. }
        | C::SetAttr { at, .. }
        | C::Mkdir { at, .. }
        | C::Remove { at, .. }
        | C::Symlink { at, .. }
        | C::SetXattr { at, .. }
        | C::RemoveXattr { at, .. } => vec![at.clone()],
        C::Rename { from, to } | C::Link { from, to } => vec![from.clone(), to.clone()],
        _ => Vec::new(),
    }
}
