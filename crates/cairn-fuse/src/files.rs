//! Files on the mount: opening (a cairn handle and a kernel handle on the shared open
//! inode, keeping the page cache while the file is unchanged), committing buffered writes,
//! and the size the kernel must see while writes wait.

use crate::fs::{CairnFs, Res, HANDLE_LEASE};
use crate::open::{Handle, OpenInode};
use cairn_client::{datapath, Backend};
use cairn_core::wire::{ClientCommand, Inode, InodeKind, Reply, Target};
use fuser::{Errno, FileHandle, FopenFlags};

impl CairnFs {
    /// `i` with the size its writes on this mount not yet committed reach: the kernel
    /// keeps one size per inode, and a smaller one would cut off what other processes wrote
    /// (and map) already.
    pub(crate) fn with_buffered(&self, mut i: Inode) -> Inode {
        if let Some(f) = self.handles.open_inode(i.ino).filter(|_| i.kind == InodeKind::File) {
            i.size = i.size.max(self.rt.block_on(f.lock()).size());
        }
        i
    }

    pub(crate) fn handle(&self, fh: FileHandle) -> Res<Handle> {
        self.handles.get(u64::from(fh)).ok_or(Errno::EBADF)
    }

    /// Opens `at`: for writing under a new cairn handle (the file stays alive while open,
    /// whoever removes it), for reading by a look-up (the mount pins the inode itself before
    /// it removes a file open here); the flags say whether the kernel may keep the page cache.
    pub(crate) fn open_file(&self, at: Target, writable: bool) -> Res<(FileHandle, Inode, FopenFlags)> {
        let (inode, handle) = if writable {
            let handle = rand::random::<u64>();
            let open = ClientCommand::Open { at, handle, lease: HANDLE_LEASE };
            (self.run(datapath::write_inode(self.client.backend().as_ref(), open))?, Some(handle))
        } else {
            (self.stat(at)?, None)
        };
        if inode.kind != InodeKind::File {
            return Err(if inode.kind == InodeKind::Dir { Errno::EISDIR } else { Errno::EINVAL });
        }
        Ok(self.register(inode, handle, writable))
    }

    /// Creates a file at `at` by `create` (a commit of nothing) and opens it for writing, in
    /// one write to the cluster.
    pub(crate) fn create_file(&self, at: Target, create: ClientCommand) -> Res<(FileHandle, Inode, FopenFlags)> {
        let handle = rand::random::<u64>();
        let ops = vec![create, ClientCommand::Open { at, handle, lease: HANDLE_LEASE }];
        match self.write(ClientCommand::Batch { ops })? {
            Reply::Batch(mut replies) => match replies.pop() {
                Some(Reply::Inode(inode)) => Ok(self.register(inode, Some(handle), true)),
                _ => Err(Errno::EIO),
            },
            Reply::BatchFailed { error, .. } => Err(crate::errno(error.code)),
            _ => Err(Errno::EIO),
        }
    }

    /// Registers a kernel handle on `inode`, just opened under cairn handle `handle`.
    fn register(&self, inode: Inode, handle: Option<u64>, writable: bool) -> (FileHandle, Inode, FopenFlags) {
        let opened = self.handles.add(inode.clone(), handle, writable);
        if opened.shared {
            // Close-to-open: an open sees what was committed since, unless this mount's own
            // writes wait to be committed (they are the newer).
            let mut f = self.rt.block_on(opened.handle.file.lock());
            if !f.dirty() {
                f.refresh(inode.clone());
            }
        }
        let flags = if opened.keep_cache { FopenFlags::FOPEN_KEEP_CACHE } else { FopenFlags::empty() };
        (FileHandle(opened.fh), inode, flags)
    }

    /// Commits what open inode `file` buffered.
    pub(crate) fn commit_inode(&self, file: &tokio::sync::Mutex<OpenInode>) -> Res<()> {
        let b = self.client.backend().clone();
        let done = self.run(async {
            let mut f = file.lock().await;
            if !f.dirty() {
                return Ok(None);
            }
            let from = f.inode.version;
            let alone = f.commit(&b).await?;
            Ok(Some((f.ino, from, f.inode.version, alone)))
        })?;
        if let Some((ino, from, to, alone)) = done {
            self.handles.committed(ino, from, to, alone);
        }
        Ok(())
    }

    /// Commits what the inode of kernel handle `fh` buffered.
    pub(crate) fn commit(&self, fh: FileHandle) -> Res<()> {
        self.commit_inode(&self.handle(fh)?.file)
    }

    /// Before this mount removes the last name of `ino` (or replaces it): if the file is
    /// open here for reading only, takes a cairn handle on it so the open files keep it.
    pub(crate) fn pin_if_open(&self, ino: u64) -> Res<()> {
        let Some(f) = self.handles.open_inode(ino) else { return Ok(()) };
        let mut f = self.rt.block_on(f.lock());
        if f.pin.is_some() {
            return Ok(());
        }
        let handle = rand::random::<u64>();
        let open = ClientCommand::Open { at: Target::Ino(ino), handle, lease: HANDLE_LEASE };
        self.run(datapath::write_inode(self.client.backend().as_ref(), open))?;
        f.pin = Some(handle);
        Ok(())
    }

    /// Closes a handle the kernel released: commits its inode's writes and closes its
    /// cairn handle (and the inode's pin with the last handle on it).
    pub(crate) fn close(&self, fh: FileHandle) -> Res<()> {
        let committed = self.commit(fh);
        if let Some((h, last)) = self.handles.remove(u64::from(fh)) {
            let pin = last.and_then(|f| self.rt.block_on(f.lock()).pin);
            let handles: Vec<(u64, u64)> = h.handle.into_iter().chain(pin).map(|x| (h.ino, x)).collect();
            if !handles.is_empty() {
                let close = ClientCommand::Close { handles, expired_only: false };
                if let Err(e) = self.run(self.client.backend().write(close)) {
                    tracing::warn!(ino = h.ino, "closing a handle failed (its lease will run out): {e:?}");
                }
            }
        }
        committed
    }
}
