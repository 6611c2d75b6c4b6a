//! The FUSE operations: each one a metadata command or query by inode (or by name in a
//! directory given by inode), run on the client's runtime; errors become errnos.

use crate::attr::{attr, Inos, TTL};
use crate::chunks::{default_memory, Chunks};
use crate::dir::Listing;
use crate::handles::Handles;
use crate::meta_cache::MetaCache;
use crate::posix_locks::{mode_of, PosixLocks};
use crate::requests::err;
use crate::xattr::xattr_reply;
use crate::{FuseError, MountOptions};
use cairn_client::{AsyncClient, Backend, ClientError};
use cairn_core::wire::{ClientCommand, Content, Inode, InodeKind, SetAttrs, Target};
use cairn_core::ErrorCode;
use fuser::{
    Errno, FileHandle, Filesystem, FopenFlags, Generation, INodeNo, LockOwner, OpenFlags, RenameFlags, ReplyAttr,
    ReplyCreate, ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs,
    ReplyWrite, ReplyXattr, Request, TimeOrNow, WriteFlags,
};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

/// How long a pin (the cairn handle keeping a file removed while open alive) lives without
/// renewal: the mount renews its pins with its locks; a mount that died lets them run out.
pub(crate) const HANDLE_LEASE: i64 = 600 * 1_000_000_000;

/// An operation's result: a value or an errno.
pub(crate) type Res<T> = Result<T, Errno>;

/// The mounted cluster.
pub struct CairnFs {
    pub(crate) client: AsyncClient,
    pub(crate) rt: tokio::runtime::Handle,
    pub(crate) inos: Inos,
    pub(crate) read_only: bool,
    pub(crate) handles: Arc<Handles>,
    chunks: Arc<Chunks>,
    pub(crate) dirs: Mutex<HashMap<u64, Arc<Mutex<Listing>>>>,
    next_dir: AtomicU64,
    locks: Arc<PosixLocks>,
    renewer: tokio::task::JoinHandle<()>,
    /// Inodes, entries and attributes, trusted while the change feed vouches for them.
    pub(crate) cache: Arc<MetaCache>,
    /// The follower of the change feed.
    follower: tokio::task::JoinHandle<()>,
    /// Where to tell the kernel what changed (set once the session exists).
    pub(crate) kernel: Arc<OnceLock<fuser::Notifier>>,
}

impl Drop for CairnFs {
    fn drop(&mut self) {
        self.renewer.abort();
        self.follower.abort();
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
        let handles = Arc::new(Handles::default());
        let pinned = handles.clone();
        let renewer = rt.spawn(async move {
            loop {
                tokio::time::sleep(PosixLocks::renew_every()).await;
                held.renew(&c).await;
                let pins = pinned.pins();
                if !pins.is_empty() {
                    if let Err(e) = c.backend().write(ClientCommand::Renew { handles: pins, lease: HANDLE_LEASE }).await
                    {
                        tracing::warn!("renewing the handles of files removed while open failed: {e:?}");
                    }
                }
            }
        });
        let inos = Inos { top: top.ino };
        let (cache, kernel) = (Arc::new(MetaCache::default()), Arc::new(OnceLock::new()));
        let follower = rt.spawn(crate::feed::follow(client.backend().clone(), cache.clone(), kernel.clone(), inos));
        Ok(CairnFs {
            locks,
            renewer,
            cache,
            follower,
            kernel,
            client,
            rt,
            inos,
            read_only: opts.read_only,
            handles,
            chunks: Arc::new(Chunks::new(opts.memory.unwrap_or_else(default_memory))),
            dirs: Mutex::default(),
            next_dir: AtomicU64::new(1),
        })
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
        use fuser::InitFlags as F;
        for wanted in [
            F::FUSE_POSIX_LOCKS | F::FUSE_FLOCK_LOCKS,
            // Listings carry the inodes: `ls -l` needs no lookup per entry.
            F::FUSE_DO_READDIRPLUS | F::FUSE_READDIRPLUS_AUTO,
            F::FUSE_PARALLEL_DIROPS,
        ] {
            if let Err(missing) = config.add_capabilities(wanted) {
                tracing::info!("the kernel lacks {missing:?}; the mount does without");
            }
        }
        Ok(())
    }

    fn destroy(&mut self) {
        // Handles the kernel never released (a forced unmount): their writes are committed
        // and the handles closed, so nothing waits for their leases.
        let (open, pins) = self.handles.drain();
        for h in open {
            if let Err(e) = self.commit_inode(&h.file) {
                tracing::warn!(ino = h.ino, "writes of a file open at unmount are lost: {e:?}");
            }
        }
        if !pins.is_empty() {
            let _ = self.run(self.client.backend().write(ClientCommand::Close { handles: pins, expired_only: false }));
        }
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
        let r = self.child(parent, name).and_then(|t| self.look_up(t));
        self.entry(reply, r);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let r = self.cached_stat(self.inos.cairn(ino)).map(|i| self.with_buffered(i));
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
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let attrs = SetAttrs { mode, uid, gid, atime: atime.map(ns), mtime: mtime.map(ns), size };
        match self.set_attr(ino, attrs) {
            Ok(i) => reply.attr(&TTL, &attr(self.inos, &self.with_buffered(i))),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.cached_stat(self.inos.cairn(ino)) {
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
            let victim = self.stat(at.clone())?;
            if victim.kind == InodeKind::Dir {
                return Err(Errno::EISDIR);
            }
            if victim.nlink <= 1 {
                self.pin_if_open(victim.ino)?;
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
            let (from, to) = (self.child(parent, name)?, self.child(newparent, newname)?);
            if flags.contains(RenameFlags::RENAME_EXCHANGE) {
                return self.exchange(from, to);
            }
            match self.stat(to.clone()) {
                Ok(_) if flags.contains(RenameFlags::RENAME_NOREPLACE) => return Err(Errno::EEXIST),
                // A file replaced stays readable where it is open here.
                Ok(old) if old.kind == InodeKind::File && old.nlink <= 1 => self.pin_if_open(old.ino)?,
                _ => {}
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
        let r = self.open_file(self.inos.cairn(ino), writable).and_then(|(fh, inode, keep)| {
            if writable && flags.0 & libc::O_TRUNC != 0 && inode.size > 0 {
                self.set_attr(ino, SetAttrs { size: Some(0), ..SetAttrs::default() })?;
            }
            Ok((fh, keep))
        });
        match r {
            Ok((fh, keep)) => reply.opened(fh, keep),
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
            self.cache.no_xattrs_yet(inode.ino);
            Ok(self.register(inode, true))
        });
        match r {
            Ok((fh, inode, keep)) => reply.created(&TTL, &attr(self.inos, &inode), Generation(0), fh, keep),
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
        let r = self.handle(fh).and_then(|h| {
            let (b, chunks) = (self.client.backend().clone(), self.chunks.clone());
            self.commit_inode(&h.file)?;
            self.run(async move {
                let (inode, sequential) = {
                    let mut f = h.file.lock().await;
                    let sequential = f.read_end == offset;
                    f.read_end = offset + u64::from(size);
                    (f.inode.clone(), sequential)
                };
                chunks.read(&b, &inode, offset, u64::from(size), sequential).await
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
        let r = self.handle(fh).and_then(|h| {
            if !h.writable {
                return Err(Errno::EBADF);
            }
            let b = self.client.backend().clone();
            self.run(async move {
                let mut f = h.file.lock().await;
                if !f.buffer(offset, data) {
                    self.cache.forget(f.ino, None);
                    f.commit(&b).await?;
                    f.buffer(offset, data);
                }
                if f.full() {
                    // Committed while the writer fills the next buffer.
                    self.cache.forget(f.ino, None);
                    f.commit_in_background(&b).await?;
                }
                Ok(())
            })?;
            Ok(data.len() as u32)
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
        let closed = self.close(fh);
        match closed {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn opendir(&self, _req: &Request, _ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let fh = self.next_dir.fetch_add(1, Ordering::Relaxed);
        self.dirs.lock().expect("dirs lock").insert(fh, Arc::default());
        reply.opened(FileHandle(fh), FopenFlags::empty());
    }

    fn readdir(&self, _req: &Request, ino: INodeNo, fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        let r = self.listing(fh).and_then(|l| {
            let mut l = l.lock().expect("listing lock");
            self.list(ino, &mut l, offset, |ino, next, kind, name, _| reply.add(ino, next, kind, name))
        });
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn readdirplus(&self, _req: &Request, ino: INodeNo, fh: FileHandle, offset: u64, mut reply: ReplyDirectoryPlus) {
        let r = self.listing(fh).and_then(|l| {
            let mut l = l.lock().expect("listing lock");
            // "." and ".." carry the directory's attributes (the kernel takes none from them).
            let dir = if offset < 2 { Some(self.stat(Target::Ino(self.inos.cairn(ino)))?) } else { None };
            self.list(ino, &mut l, offset, |ino, next, _, name, inode| {
                let Some(inode) = inode.or(dir.as_ref()) else { return true };
                reply.add(ino, next, name, &TTL, &attr(self.inos, inode), Generation(0))
            })
        });
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
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
        match self.set_xattr(ino, name, value, flags) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        xattr_reply(reply, size, self.get_xattr(ino, name));
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        xattr_reply(reply, size, self.list_xattrs(ino));
    }

    fn removexattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.remove_xattr(ino, name) {
            Ok(()) => reply.ok(),
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

    /// No file here is a terminal or a device: every ioctl (programs probe `TCGETS` on each
    /// file they open) is `ENOTTY`, quietly.
    fn ioctl(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: fuser::IoctlFlags,
        _cmd: u32,
        _in_data: &[u8],
        _out_size: u32,
        reply: fuser::ReplyIoctl,
    ) {
        reply.error(Errno::ENOTTY);
    }
}
