//! The FUSE operations: each one a metadata command or query by inode (or by name in a
//! directory given by inode), run on the client's runtime; errors become errnos.

use crate::attr::{attr, kind, Inos, TTL};
use crate::open::OpenFile;
use crate::posix_locks::{mode_of, PosixLocks};
use crate::{errno, FuseError, MountOptions};
use cairn_client::{datapath, AsyncClient, Backend, ClientError};
use cairn_core::wire::{
    ClientCommand, Content, Inode, InodeKind, NewAttrs, Query, QueryReply, Reply, SetAttrs, Target, XattrMode,
    LIST_DEFAULT,
};
use cairn_core::ErrorCode;
use fuser::{
    Errno, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner, OpenFlags, RenameFlags,
    ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite,
    ReplyXattr, Request, TimeOrNow, WriteFlags,
};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// How long an open handle lives without renewal (the mount renews on use; a mount that
/// died lets its handles run out).
const HANDLE_LEASE: i64 = 600 * 1_000_000_000;

type Res<T> = Result<T, Errno>;

fn err(e: ClientError) -> Errno {
    errno(e.code())
}

/// A directory listing being read: the entries so far and where the next page starts.
struct Listing {
    entries: Vec<(u64, FileType, Vec<u8>)>,
    next: Option<String>,
    done: bool,
}

/// The mounted cluster.
pub struct CairnFs {
    client: AsyncClient,
    rt: tokio::runtime::Handle,
    inos: Inos,
    read_only: bool,
    files: Mutex<HashMap<u64, Arc<tokio::sync::Mutex<OpenFile>>>>,
    dirs: Mutex<HashMap<u64, Arc<Mutex<Listing>>>>,
    next_fh: AtomicU64,
    locks: Arc<PosixLocks>,
    renewer: tokio::task::JoinHandle<()>,
}

impl Drop for CairnFs {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

impl CairnFs {
    /// A file system over `client` (mounting `opts.path`, default the root), running its
    /// requests on `rt`.
    pub fn new(client: AsyncClient, rt: tokio::runtime::Handle, opts: &MountOptions) -> Result<Self, FuseError> {
        let top = rt.block_on(client.stat(opts.path.as_deref().unwrap_or("/")))?;
        // Learn the cluster's other nodes now, to carry on through them if this one dies.
        rt.block_on(client.backend().spread_reads());
        if top.kind != InodeKind::Dir {
            return Err(ClientError::api(ErrorCode::NotADirectory, "only a directory can be mounted").into());
        }
        let locks = Arc::new(PosixLocks::default());
        let (held, c) = (locks.clone(), client.clone());
        let renewer = rt.spawn(async move {
            loop {
                tokio::time::sleep(PosixLocks::renew_every()).await;
                held.renew(&c).await;
            }
        });
        Ok(CairnFs {
            locks,
            renewer,
            client,
            rt,
            inos: Inos { top: top.ino },
            read_only: opts.read_only,
            files: Mutex::default(),
            dirs: Mutex::default(),
            next_fh: AtomicU64::new(1),
        })
    }

    fn run<T>(&self, f: impl std::future::Future<Output = Result<T, ClientError>>) -> Res<T> {
        self.rt.block_on(f).map_err(err)
    }

    fn write(&self, cmd: ClientCommand) -> Res<Reply> {
        if self.read_only {
            return Err(Errno::EROFS);
        }
        self.run(self.client.backend().write(cmd))
    }

    fn write_inode(&self, cmd: ClientCommand) -> Res<Inode> {
        match self.write(cmd)? {
            Reply::Inode(i) => Ok(i),
            _ => Err(Errno::EIO),
        }
    }

    fn query(&self, q: Query) -> Res<QueryReply> {
        self.run(self.client.backend().query(q))
    }

    fn stat(&self, at: Target) -> Res<Inode> {
        match self.query(Query::Stat(at))? {
            QueryReply::Inode(i) => Ok(i),
            _ => Err(Errno::EIO),
        }
    }

    /// The name `name` in kernel directory `parent`, checked like any cairn name.
    fn child(&self, parent: INodeNo, name: &OsStr) -> Res<Target> {
        let name = std::str::from_utf8(name.as_bytes()).map_err(|_| Errno::EINVAL)?;
        if name.len() > cairn_core::path::NAME_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        cairn_core::validate_name(name).map_err(|_| Errno::EINVAL)?;
        Ok(Target::Child { parent: self.inos.cairn(parent), name: name.to_string() })
    }

    fn new_attrs(req: &Request, mode: u32, umask: u32) -> NewAttrs {
        NewAttrs { mode: mode & !umask & 0o7777, uid: req.uid(), gid: req.gid(), chunk_size: None }
    }

    fn entry(&self, reply: ReplyEntry, r: Res<Inode>) {
        match r {
            Ok(i) => reply.entry(&TTL, &attr(self.inos, &self.with_buffered(i)), Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    /// `i` with the size its open files on this mount reach with writes not yet committed:
    /// the kernel keeps one size per inode, and a smaller one would cut off what other
    /// processes wrote (and map) already.
    fn with_buffered(&self, mut i: Inode) -> Inode {
        if i.kind != InodeKind::File {
            return i;
        }
        let open: Vec<_> = self.files.lock().expect("files lock").values().cloned().collect();
        for f in open {
            let f = self.rt.block_on(f.lock());
            if f.ino == i.ino {
                i.size = i.size.max(f.size());
            }
        }
        i
    }

    fn file(&self, fh: FileHandle) -> Res<Arc<tokio::sync::Mutex<OpenFile>>> {
        self.files.lock().expect("files lock").get(&u64::from(fh)).cloned().ok_or(Errno::EBADF)
    }

    /// Registers a cairn handle on `ino` and an open file for it.
    fn open_file(&self, at: Target, writable: bool) -> Res<(FileHandle, Inode)> {
        let handle = rand::random::<u64>();
        let inode = self.run(datapath::write_inode(
            self.client.backend().as_ref(),
            ClientCommand::Open { at, handle, lease: HANDLE_LEASE },
        ))?;
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        let open = OpenFile::new(inode.clone(), handle, writable);
        self.files.lock().expect("files lock").insert(fh, Arc::new(tokio::sync::Mutex::new(open)));
        Ok((FileHandle(fh), inode))
    }

    /// Commits what an open file buffered.
    fn commit(&self, fh: FileHandle) -> Res<()> {
        let f = self.file(fh)?;
        let b = self.client.backend().clone();
        self.run(async move {
            let mut f = f.lock().await;
            if f.dirty() {
                f.commit(&b).await?;
            }
            Ok(())
        })
    }

    fn set_attr(&self, ino: INodeNo, attrs: SetAttrs, fh: Option<FileHandle>) -> Res<Inode> {
        if let Some(fh) = fh {
            self.commit(fh)?;
        }
        let inode = self.write_inode(ClientCommand::SetAttr { at: Target::Ino(self.inos.cairn(ino)), attrs })?;
        if let Some(f) = fh.and_then(|fh| self.file(fh).ok()) {
            self.rt.block_on(f.lock()).inode = inode.clone();
        }
        Ok(inode)
    }
}

fn ns(t: TimeOrNow) -> i64 {
    let at = match t {
        TimeOrNow::SpecificTime(t) => t,
        TimeOrNow::Now => SystemTime::now(),
    };
    at.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64)
}

impl Filesystem for CairnFs {
    fn init(&mut self, _req: &Request, config: &mut fuser::KernelConfig) -> std::io::Result<()> {
        // Record locks and flock() come to the mount (and so to the cluster's lock table).
        let _ = config.add_capabilities(fuser::InitFlags::FUSE_POSIX_LOCKS | fuser::InitFlags::FUSE_FLOCK_LOCKS);
        Ok(())
    }

    fn destroy(&mut self) {
        let (locks, client) = (self.locks.clone(), self.client.clone());
        self.rt.block_on(async move { locks.release_all(&client).await });
    }

    fn getlk(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        lock_owner: LockOwner,
        start: u64,
        end: u64,
        typ: i32,
        _pid: u32,
        reply: fuser::ReplyLock,
    ) {
        let Some(mode) = mode_of(typ) else { return reply.locked(start, end, libc::F_UNLCK, 0) };
        let ino = self.inos.cairn(ino);
        match self.run(self.locks.conflict(&self.client, ino, lock_owner.0, start, end, mode)) {
            Ok(Some((s, e, t))) => reply.locked(s, e, t, 0),
            Ok(None) => reply.locked(start, end, libc::F_UNLCK, 0),
            Err(e) => reply.error(e),
        }
    }

    fn setlk(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        lock_owner: LockOwner,
        start: u64,
        end: u64,
        typ: i32,
        _pid: u32,
        sleep: bool,
        reply: ReplyEmpty,
    ) {
        let (ino, mode) = (self.inos.cairn(ino), mode_of(typ));
        let mut pause = std::time::Duration::from_millis(20);
        loop {
            match self.run(self.locks.set(&self.client, ino, lock_owner.0, start, end, mode)) {
                Ok(()) => return reply.ok(),
                // F_SETLKW waits (the kernel interrupts it on a signal); F_SETLK does not.
                Err(e) if e == Errno::EAGAIN && sleep => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(std::time::Duration::from_millis(500));
                }
                Err(e) => return reply.error(e),
            }
        }
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let r = self.child(parent, name).and_then(|t| self.stat(t));
        self.entry(reply, r);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let r = self.stat(Target::Ino(self.inos.cairn(ino))).map(|i| self.with_buffered(i));
        match r {
            Ok(i) => reply.attr(&TTL, &attr(self.inos, &i)),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let attrs = SetAttrs { mode, uid, gid, atime: atime.map(ns), mtime: mtime.map(ns), size };
        match self.set_attr(ino, attrs, fh) {
            Ok(i) => reply.attr(&TTL, &attr(self.inos, &self.with_buffered(i))),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.stat(Target::Ino(self.inos.cairn(ino))) {
            Ok(Inode { content: Content::Symlink(t), .. }) => reply.data(t.as_bytes()),
            Ok(_) => reply.error(Errno::EINVAL),
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(&self, req: &Request, parent: INodeNo, name: &OsStr, mode: u32, umask: u32, reply: ReplyEntry) {
        let r = self.child(parent, name).and_then(|at| {
            self.write_inode(ClientCommand::Mkdir { at, parents: false, attrs: Self::new_attrs(req, mode, umask) })
        });
        self.entry(reply, r);
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let r = self.child(parent, name).and_then(|at| {
            if self.stat(at.clone())?.kind == InodeKind::Dir {
                return Err(Errno::EISDIR);
            }
            self.write(ClientCommand::Remove { at, recursive: false })
        });
        match r {
            Ok(_) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let r = self.child(parent, name).and_then(|at| {
            if self.stat(at.clone())?.kind != InodeKind::Dir {
                return Err(Errno::ENOTDIR);
            }
            self.write(ClientCommand::Remove { at, recursive: false })
        });
        match r {
            Ok(_) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn symlink(&self, _req: &Request, parent: INodeNo, link_name: &OsStr, target: &Path, reply: ReplyEntry) {
        let r = self.child(parent, link_name).and_then(|at| {
            let target = target.to_str().ok_or(Errno::EINVAL)?.to_string();
            if target.len() > cairn_core::path::PATH_MAX {
                return Err(Errno::ENAMETOOLONG);
            }
            self.write_inode(ClientCommand::Symlink { at, target })
        });
        self.entry(reply, r);
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let r = (|| {
            if flags.contains(RenameFlags::RENAME_EXCHANGE) {
                return Err(Errno::EINVAL);
            }
            let (from, to) = (self.child(parent, name)?, self.child(newparent, newname)?);
            if flags.contains(RenameFlags::RENAME_NOREPLACE) && self.stat(to.clone()).is_ok() {
                return Err(Errno::EEXIST);
            }
            self.write(ClientCommand::Rename { from, to })
        })();
        match r {
            Ok(_) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn link(&self, _req: &Request, ino: INodeNo, newparent: INodeNo, newname: &OsStr, reply: ReplyEntry) {
        let r = self
            .child(newparent, newname)
            .and_then(|to| self.write_inode(ClientCommand::Link { from: Target::Ino(self.inos.cairn(ino)), to }));
        self.entry(reply, r);
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let writable = flags.0 & libc::O_ACCMODE != libc::O_RDONLY;
        if writable && self.read_only {
            return reply.error(Errno::EROFS);
        }
        let r = self.open_file(Target::Ino(self.inos.cairn(ino)), writable).and_then(|(fh, inode)| {
            if writable && flags.0 & libc::O_TRUNC != 0 && inode.size > 0 {
                self.set_attr(ino, SetAttrs { size: Some(0), ..SetAttrs::default() }, Some(fh))?;
            }
            Ok(fh)
        });
        match r {
            Ok(fh) => reply.opened(fh, FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let r = self.child(parent, name).and_then(|at| {
            let exclusive = flags & libc::O_EXCL != 0;
            let cmd = ClientCommand::Commit {
                at,
                base_version: exclusive.then_some(0),
                content: Content::None,
                size: 0,
                parents: false,
                attrs: Self::new_attrs(req, mode, umask),
            };
            let inode = self.write_inode(cmd)?;
            self.open_file(Target::Ino(inode.ino), true)
        });
        match r {
            Ok((fh, inode)) => reply.created(&TTL, &attr(self.inos, &inode), Generation(0), fh, FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let r = self.file(fh).and_then(|f| {
            let b = self.client.backend().clone();
            self.run(async move {
                let mut f = f.lock().await;
                if f.dirty() {
                    f.commit(&b).await?;
                }
                f.read(&b, offset, size as u64).await
            })
        });
        match r {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let r = self.file(fh).and_then(|f| {
            let b = self.client.backend().clone();
            self.run(async move {
                let mut f = f.lock().await;
                if !f.writable {
                    return Err(ClientError::api(ErrorCode::PermissionDenied, "not open for writing"));
                }
                if !f.buffer(offset, data) {
                    f.commit(&b).await?;
                    f.buffer(offset, data);
                }
                if f.full() {
                    f.commit(&b).await?;
                }
                Ok(data.len() as u32)
            })
        });
        match r {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(e),
        }
    }

    fn flush(&self, _req: &Request, ino: INodeNo, fh: FileHandle, lock_owner: LockOwner, reply: ReplyEmpty) {
        // A close releases the closing process's record locks on the file, as POSIX has it.
        let ino = self.inos.cairn(ino);
        if let Err(e) = self.run(self.locks.release_owner(&self.client, ino, lock_owner.0)) {
            tracing::warn!(ino, "releasing record locks on close failed (their lease will run out): {e:?}");
        }
        match self.commit(fh) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn fsync(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        // A commit returns once the chunks are fsync'd on their nodes and the metadata is in
        // the Raft log of a majority: durable.
        match self.commit(fh) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let committed = self.commit(fh);
        let open = self.files.lock().expect("files lock").remove(&u64::from(fh));
        if let Some(f) = open {
            let (ino, handle) = {
                let f = self.rt.block_on(f.lock());
                (f.ino, f.handle)
            };
            let close = ClientCommand::Close { handles: vec![(ino, handle)], expired_only: false };
            if let Err(e) = self.run(self.client.backend().write(close)) {
                tracing::warn!(ino, "closing a handle failed (its lease will run out): {e:?}");
            }
        }
        match committed {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn opendir(&self, _req: &Request, _ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        let listing = Listing { entries: Vec::new(), next: None, done: false };
        self.dirs.lock().expect("dirs lock").insert(fh, Arc::new(Mutex::new(listing)));
        reply.opened(FileHandle(fh), FopenFlags::empty());
    }

    fn readdir(&self, _req: &Request, ino: INodeNo, fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        let Some(listing) = self.dirs.lock().expect("dirs lock").get(&u64::from(fh)).cloned() else {
            return reply.error(Errno::EBADF);
        };
        let mut l = listing.lock().expect("listing lock");
        // Offsets: 1 is ".", 2 is "..", 3 + i the i-th entry.
        let dir = self.inos.cairn(ino);
        let mut at = offset;
        loop {
            let entry = match at {
                0 => Some((dir, FileType::Directory, b".".to_vec())),
                1 => Some((dir, FileType::Directory, b"..".to_vec())),
                n => {
                    let i = (n - 2) as usize;
                    while i >= l.entries.len() && !l.done {
                        let q = Query::List { at: Target::Ino(dir), after: l.next.take(), limit: LIST_DEFAULT };
                        match self.query(q) {
                            Ok(QueryReply::Entries { entries, next }) => {
                                l.done = next.is_none();
                                l.next = next;
                                let shown =
                                    entries.into_iter().map(|e| (e.inode.ino, kind(e.inode.kind), e.name.into_bytes()));
                                l.entries.extend(shown);
                            }
                            Ok(_) => return reply.error(Errno::EIO),
                            Err(e) => return reply.error(e),
                        }
                    }
                    l.entries.get(i).cloned()
                }
            };
            let Some((child, kind, name)) = entry else { break };
            if reply.add(self.inos.kernel(child), at + 1, kind, OsStr::from_bytes(&name)) {
                break;
            }
            at += 1;
        }
        reply.ok();
    }

    fn releasedir(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, _flags: OpenFlags, reply: ReplyEmpty) {
        self.dirs.lock().expect("dirs lock").remove(&u64::from(fh));
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        const BLOCK: u64 = 4096;
        let (total, free) = match self.rt.block_on(self.client.cluster()) {
            Ok(v) => {
                let nodes = v["nodes"].as_array().cloned().unwrap_or_default();
                let sum = |k: &str| nodes.iter().filter_map(|n| n[k].as_u64()).sum::<u64>();
                (sum("capacity"), sum("free"))
            }
            Err(e) => return reply.error(err(e)),
        };
        let name_max = cairn_core::path::NAME_MAX as u32;
        reply.statfs(total / BLOCK, free / BLOCK, free / BLOCK, 0, u64::MAX >> 1, BLOCK as u32, name_max, BLOCK as u32);
    }

    fn setxattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        let mode = match flags {
            libc::XATTR_CREATE => XattrMode::Create,
            libc::XATTR_REPLACE => XattrMode::Replace,
            _ => XattrMode::Any,
        };
        let r = std::str::from_utf8(name.as_bytes()).map_err(|_| Errno::EINVAL).and_then(|name| {
            let at = Target::Ino(self.inos.cairn(ino));
            self.write(ClientCommand::SetXattr { at, name: name.to_string(), value: value.to_vec(), mode })
        });
        match r {
            Ok(_) => reply.ok(),
            Err(e) if e == Errno::ENOENT && mode == XattrMode::Replace => reply.error(Errno::ENODATA),
            Err(e) => reply.error(e),
        }
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let r = std::str::from_utf8(name.as_bytes()).map_err(|_| Errno::EINVAL).and_then(|name| {
            let q = Query::GetXattr { at: Target::Ino(self.inos.cairn(ino)), name: name.to_string() };
            match self.query(q) {
                Ok(QueryReply::Xattr(v)) => Ok(v),
                Ok(_) => Err(Errno::EIO),
                Err(e) if e == Errno::ENOENT => Err(Errno::ENODATA),
                Err(e) => Err(e),
            }
        });
        xattr_reply(reply, size, r);
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        let r = match self.query(Query::ListXattrs(Target::Ino(self.inos.cairn(ino)))) {
            Ok(QueryReply::Names(names)) => Ok(names.iter().flat_map(|n| n.bytes().chain([0])).collect()),
            Ok(_) => Err(Errno::EIO),
            Err(e) => Err(e),
        };
        xattr_reply(reply, size, r);
    }

    fn removexattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let r = std::str::from_utf8(name.as_bytes()).map_err(|_| Errno::EINVAL).and_then(|name| {
            self.write(ClientCommand::RemoveXattr { at: Target::Ino(self.inos.cairn(ino)), name: name.to_string() })
        });
        match r {
            Ok(_) => reply.ok(),
            Err(e) if e == Errno::ENOENT => reply.error(Errno::ENODATA),
            Err(e) => reply.error(e),
        }
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _offset: u64,
        _length: u64,
        _mode: i32,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::EOPNOTSUPP);
    }
}

/// Answers an xattr request: the size asked for with `size` 0, else the bytes if they fit.
fn xattr_reply(reply: ReplyXattr, size: u32, r: Res<Vec<u8>>) {
    match r {
        Ok(v) if size == 0 => reply.size(v.len() as u32),
        Ok(v) if v.len() > size as usize => reply.error(Errno::ERANGE),
        Ok(v) => reply.data(&v),
        Err(e) => reply.error(e),
    }
}
