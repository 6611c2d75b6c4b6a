//! Extended attributes: stored with the inode in the cluster's metadata, under any name
//! (`user.`, `trusted.`, `security.`: the kernel already checked who may touch which).

use crate::fs::{CairnFs, Res};
use cairn_core::wire::{ClientCommand, Query, QueryReply, Target, XattrMode};
use fuser::{Errno, INodeNo, ReplyXattr};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

fn name_of(name: &OsStr) -> Res<String> {
    std::str::from_utf8(name.as_bytes()).map(str::to_string).map_err(|_| Errno::EINVAL)
}

impl CairnFs {
    /// setxattr(2) with its `XATTR_CREATE` / `XATTR_REPLACE` flags.
    pub(crate) fn set_xattr(&self, ino: INodeNo, name: &OsStr, value: &[u8], flags: i32) -> Res<()> {
        let mode = match flags {
            libc::XATTR_CREATE => XattrMode::Create,
            libc::XATTR_REPLACE => XattrMode::Replace,
            _ => XattrMode::Any,
        };
        let cmd = ClientCommand::SetXattr { at: self.at(ino), name: name_of(name)?, value: value.to_vec(), mode };
        match self.write(cmd) {
            Ok(_) => Ok(()),
            Err(e) if e == Errno::ENOENT && mode == XattrMode::Replace => Err(Errno::ENODATA),
            Err(e) => Err(e),
        }
    }

    /// The value of attribute `name` (from the cache when it vouches for it: the kernel asks
    /// for `security.capability` before every write).
    pub(crate) fn get_xattr(&self, ino: INodeNo, name: &OsStr) -> Res<Vec<u8>> {
        let (ino, name) = (self.inos.cairn(ino), name_of(name)?);
        if let Some(v) = self.cache.xattr(ino, &name) {
            return v.ok_or(Errno::ENODATA);
        }
        let ticket = self.cache.ticket();
        let r = match self.query(Query::GetXattr { at: Target::Ino(ino), name: name.clone() }) {
            Ok(QueryReply::Xattr(v)) => Ok(v),
            Ok(_) => Err(Errno::EIO),
            Err(e) if e == Errno::ENOENT => Err(Errno::ENODATA),
            Err(e) => Err(e),
        };
        match &r {
            Ok(v) => self.cache.put_xattr(ticket, ino, &name, Some(v.clone())),
            Err(e) if *e == Errno::ENODATA => self.cache.put_xattr(ticket, ino, &name, None),
            Err(_) => {}
        }
        r
    }

    /// The names of the attributes, each ended by a NUL, as listxattr(2) returns them.
    pub(crate) fn list_xattrs(&self, ino: INodeNo) -> Res<Vec<u8>> {
        match self.query(Query::ListXattrs(self.at(ino)))? {
            QueryReply::Names(names) => Ok(names.iter().flat_map(|n| n.bytes().chain([0])).collect()),
            _ => Err(Errno::EIO),
        }
    }

    /// Removes attribute `name`.
    pub(crate) fn remove_xattr(&self, ino: INodeNo, name: &OsStr) -> Res<()> {
        match self.write(ClientCommand::RemoveXattr { at: self.at(ino), name: name_of(name)? }) {
            Ok(_) => Ok(()),
            Err(e) if e == Errno::ENOENT => Err(Errno::ENODATA),
            Err(e) => Err(e),
        }
    }

    fn at(&self, ino: INodeNo) -> Target {
        Target::Ino(self.inos.cairn(ino))
    }
}

/// Answers an xattr request: the size asked for with `size` 0, else the bytes if they fit.
pub(crate) fn xattr_reply(reply: ReplyXattr, size: u32, r: Res<Vec<u8>>) {
    match r {
        Ok(v) if size == 0 => reply.size(v.len() as u32),
        Ok(v) if v.len() > size as usize => reply.error(Errno::ERANGE),
        Ok(v) => reply.data(&v),
        Err(e) => reply.error(e),
    }
}
