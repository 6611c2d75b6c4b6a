//! Files on the mount: opening (a cairn handle and a kernel handle on the shared open
//! inode, keeping the page cache while the file is unchanged), committing buffered writes,
//! and the size the kernel must see while writes wait.

use crate::fs::{CairnFs, Res, HANDLE_LEASE};
use crate::open::{Handle, OpenInode};
use cairn_client::datapath;
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

    /// Registers a cairn handle on `at` and a kernel handle for it; the flags say whether
    /// the kernel may keep the file's page cache.
    pub(crate) fn open_file(&self, at: Target, writable: bool) -> Res<(FileHandle, Inode, FopenFlags)> {
        let handle = rand::random::<u64>();
        let inode = self.run(datapath::write_inode(
            self.client.backend().as_ref(),
            ClientCommand::Open { at, handle, lease: HANDLE_LEASE },
        ))?;
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
        Ok((FileHandle(opened.fh), inode, flags))
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
}
