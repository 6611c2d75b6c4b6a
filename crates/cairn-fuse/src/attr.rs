//! Inodes as the kernel sees them: attributes, file types, and the mapping between kernel
//! inode numbers and cairn's (the mounted directory is inode 1 to the kernel).

use cairn_client::json::time;
use cairn_core::wire::{Inode, InodeKind};
use fuser::{FileAttr, FileType, INodeNo};
use std::time::Duration;

/// How long the kernel may cache attributes and entries before asking again.
pub(crate) const TTL: Duration = Duration::from_secs(1);

/// Maps kernel inode numbers to cairn's and back: only the mounted directory differs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Inos {
    /// cairn's inode number of the mounted directory.
    pub top: u64,
}

impl Inos {
    /// cairn's number of kernel inode `ino`.
    pub fn cairn(self, ino: INodeNo) -> u64 {
        match u64::from(ino) {
            1 => self.top,
            n => n,
        }
    }

    /// The kernel's number of cairn inode `ino`.
    pub fn kernel(self, ino: u64) -> INodeNo {
        INodeNo(if ino == self.top { 1 } else { ino })
    }
}

/// The kernel's file type of an inode kind.
pub(crate) fn kind(k: InodeKind) -> FileType {
    match k {
        InodeKind::File => FileType::RegularFile,
        InodeKind::Dir => FileType::Directory,
        InodeKind::Symlink => FileType::Symlink,
    }
}

/// An inode's attributes for the kernel.
pub(crate) fn attr(inos: Inos, i: &Inode) -> FileAttr {
    let size = match &i.content {
        cairn_core::wire::Content::Symlink(t) => t.len() as u64,
        _ => i.size,
    };
    FileAttr {
        ino: inos.kernel(i.ino),
        size,
        blocks: size.div_ceil(512),
        atime: time(i.atime),
        mtime: time(i.mtime),
        ctime: time(i.ctime),
        crtime: time(i.ctime),
        kind: kind(i.kind),
        perm: (i.mode & 0o7777) as u16,
        nlink: i.nlink,
        uid: i.uid,
        gid: i.gid,
        rdev: 0,
        blksize: 1 << 20,
        flags: 0,
    }
}
