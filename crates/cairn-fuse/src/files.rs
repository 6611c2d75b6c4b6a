//! Files on the mount: opening (a kernel handle on the shared open inode, keeping the page
//! cache while the file is unchanged), committing buffered writes, pinning files removed
//! while open, and the size the kernel must see while writes wait.

use crate::fs::{CairnFs, Res, HANDLE_LEASE};
use crate::open::{Handle, OpenInode};
use cairn_client::{datapath, Backend};
use cairn_core::wire::{ClientCommand, Inode, InodeKind, Target};
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

    /// Opens inode `ino` (close-to-open: as the cluster has it now, or as the look-up that
    /// led here just saw it). Opens take no cairn handle (two Raft writes per open saved):
    /// the mount pins an inode itself before it removes the last name of a file open here.
    /// The flags say whether the kernel may keep the page cache.
    pub(crate) fn open_file(&self, ino: u64, writable: bool) -> Res<(FileHandle, Inode, FopenFlags)> {
        let inode = match self.handles.just_seen(ino) {
            Some(inode) => inode,
            None => self.stat(Target::Ino(ino))?,
        };
        if inode.kind != InodeKind::File {
            return Err(if inode.kind == InodeKind::Dir { Errno::EISDIR } else { Errno::EINVAL });
        }
        Ok(self.register(inode, writable))
    }

    /// Registers a kernel handle on `inode`, just created or looked up.
    pub(crate) fn register(&self, inode: Inode, writable: bool) -> (FileHandle, Inode, FopenFlags) {
        let opened = self.handles.add(inode.clone(), writable);
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
        let ticket = self.cache.ticket();
        let done = self.run(async {
            let mut f = file.lock().await;
            if !f.dirty() {
                return Ok(None);
            }
            let from = f.inode.version;
            let committed = f.commit(&b).await;
            if committed.is_err() {
                // Perhaps partly done: what the cache holds of the file may be out of date.
                self.cache.forget(f.ino, None);
            }
            let alone = committed?;
            Ok(Some((from, alone, f.inode.clone())))
        })?;
        if let Some((from, alone, inode)) = done {
            self.handles.committed(inode.ino, from, inode.version, alone);
            self.cache.put_inode(ticket, &inode);
        }
        Ok(())
    }

    /// Commits what the inode of kernel handle `fh` buffered.
    pub(crate) fn commit(&self, fh: FileHandle) -> Res<()> {
        self.commit_inode(&self.handle(fh)?.file)
    }

    /// Before this mount removes the last name of `ino` (or replaces it): if the file is
    /// open here, takes a cairn handle on it so the open files keep it.
    pub(crate) fn pin_if_open(&self, ino: u64) -> Res<()> {
        if !self.handles.wants_pin(ino) {
            return Ok(());
        }
        let handle = rand::random::<u64>();
        let open = ClientCommand::Open { at: Target::Ino(ino), handle, lease: HANDLE_LEASE };
        self.run(datapath::write_inode(self.client.backend().as_ref(), open))?;
        if !self.handles.pin(ino, handle) {
            self.close_pins(vec![(ino, handle)]);
        }
        Ok(())
    }

    /// Closes cairn handles `pins` in the background (nothing waits for them).
    pub(crate) fn close_pins(&self, pins: Vec<(u64, u64)>) {
        let b = self.client.backend().clone();
        self.rt.spawn(async move {
            if let Err(e) = b.write(ClientCommand::Close { handles: pins, expired_only: false }).await {
                tracing::warn!("closing handles failed (their leases will run out): {e:?}");
            }
        });
    }

    /// Closes a handle the kernel released: commits its inode's writes, and with the last
    /// handle on the inode closes its pin.
    pub(crate) fn close(&self, fh: FileHandle) -> Res<()> {
        let committed = self.commit(fh);
        if let Some((h, Some(pin))) = self.handles.remove(u64::from(fh)) {
            self.close_pins(vec![(h.ino, pin)]);
        }
        committed
    }
}
