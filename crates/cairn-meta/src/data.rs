//! Commands on a file's content and attributes: whole commits, in-place writes and appends,
//! concatenation, SetAttr (with truncation) and extended attributes.
//!
//! Content changes are splices of extent lists (`cairn_core::extent`): no chunk is read or
//! written here, the client stored new chunks before sending the command. A file's chunk
//! references move with [`Tx::swap_refs`], so counts stay exact whatever the splice.

use crate::apply::{check, Tx};
use crate::tables::{fail, inherited, resolve};
use crate::Result;
use cairn_core::extent::{self, Extent};
use cairn_core::wire::{
    ApplyResult, Content, Inode, InodeKind, NewAttrs, Reply, SetAttrs, Target, XattrMode, XATTRS_PER_INODE,
    XATTR_NAME_MAX, XATTR_VALUE_MAX,
};
use cairn_core::{ApiError, ErrorCode, INLINE_MAX, MAX_CHUNK_SIZE, MAX_EXTENTS, MIN_CHUNK_SIZE};
use redb::ReadableTable;

/// Most sources one concatenation may name.
pub const CONCAT_MAX: usize = 10_000;

/// Checks an extent list from a client: bounded, each piece inside a chunk of legal size.
fn check_extents(extents: &[Extent]) -> std::result::Result<u64, String> {
    if extents.len() > MAX_EXTENTS {
        return Err(format!("more than {MAX_EXTENTS} extents"));
    }
    let mut total = 0u64;
    for e in extents {
        let fits = match e.chunk {
            Some(_) => e.offset as u64 + e.len <= MAX_CHUNK_SIZE as u64,
            None => e.offset == 0,
        };
        if e.len == 0 || !fits {
            return Err("an extent is empty or reaches past the largest chunk size".into());
        }
        total = total.checked_add(e.len).ok_or("extents add up to more than 2^64 bytes")?;
    }
    Ok(total)
}

/// Checks a file content description against its claimed size.
fn check_content(content: &Content, size: u64) -> std::result::Result<(), String> {
    match content {
        Content::None if size == 0 => Ok(()),
        Content::None => Err("empty content with a non-zero size".into()),
        Content::Inline(data) if data.len() as u64 != size => Err("inline length differs from size".into()),
        Content::Inline(_) if size > INLINE_MAX => Err(format!("inline data over {INLINE_MAX} bytes")),
        Content::Inline(_) => Ok(()),
        Content::Extents(e) if check_extents(e)? != size => Err("extent lengths do not add up to the size".into()),
        Content::Extents(_) => Ok(()),
        Content::Symlink(_) => Err("a file cannot have symlink content".into()),
    }
}

/// Extents as stored: normal, and an empty list as no content.
fn extents_content(extents: &[Extent]) -> Content {
    let e = extent::normalize(extents);
    if e.is_empty() {
        Content::None
    } else {
        Content::Extents(e)
    }
}

/// The answer when a write's form does not fit the file's layout (it changed meanwhile).
fn layout_changed(at: &Target) -> ApplyResult {
    fail(ErrorCode::Conflict, format!("the layout of {at} changed (inline vs chunks); read it again and retry"))
}

/// Refuses anything but a regular file.
fn require_file(inode: &Inode, at: &Target) -> std::result::Result<(), ApiError> {
    match inode.kind {
        InodeKind::File => Ok(()),
        InodeKind::Dir => Err(ApiError::new(ErrorCode::IsADirectory, format!("{at} is a directory"))),
        InodeKind::Symlink => Err(ApiError::new(ErrorCode::InvalidArgument, format!("{at} is a symlink"))),
    }
}

/// Checks an optimistic-concurrency base version against the inode found (if any).
fn check_base(current: Option<&Inode>, base: Option<u64>, at: &Target) -> std::result::Result<(), ApiError> {
    let err = |code, msg: String| Err(ApiError::new(code, msg));
    match (current, base) {
        (Some(_), Some(0)) => err(ErrorCode::Exists, format!("{at} already exists")),
        (Some(i), Some(v)) if i.version != v => {
            err(ErrorCode::Conflict, format!("{at} changed: version {} is not {v}", i.version))
        }
        (None, Some(v)) if v != 0 => err(ErrorCode::NotFound, format!("{at} does not exist")),
        _ => Ok(()),
    }
}

impl Tx<'_> {
    /// Replaces `inode`'s content (moving chunk references) and stamps the change; the
    /// content it replaces is kept as a version if `at`'s directory keeps versions.
    pub(crate) fn set_content(&mut self, inode: &mut Inode, content: Content, size: u64, at: &Target) -> Result<()> {
        self.keep_version(inode, at)?;
        self.swap_refs(&inode.content, &content, inode.policy)?;
        inode.content = content;
        inode.size = size;
        inode.mtime = self.now;
        inode.ctime = self.now;
        inode.version += 1;
        self.put_inode(inode)
    }

    /// Creates a file named by `slot` with `content` (its ancestors too, if missing); at a
    /// name that keeps a deleted file's history, the file takes that inode and carries on.
    pub(crate) fn create_file(
        &mut self,
        slot: &crate::namespace::Slot,
        attrs: NewAttrs,
        content: Content,
        size: u64,
    ) -> Result<Inode> {
        let parent = self.make_parent(slot, NewAttrs::dir())?;
        let mut inode = self.new_inode(InodeKind::File, attrs, &parent, content, size)?;
        if let Some((ino, version)) = self.unbury(parent.ino, &slot.name)? {
            (inode.ino, inode.version) = (ino, version);
        }
        self.swap_refs(&Content::None, &inode.content, inode.policy)?;
        self.link(parent.ino, &slot.name, &inode)?;
        Ok(inode)
    }

    pub(crate) fn commit(
        &mut self,
        at: &Target,
        base_version: Option<u64>,
        content: &Content,
        size: u64,
        parents: bool,
        attrs: NewAttrs,
    ) -> Result<ApplyResult> {
        if matches!(at, Target::Path(p) if p.is_root()) {
            return Ok(fail(ErrorCode::IsADirectory, "/ is a directory"));
        }
        if let Err(why) = check_content(content, size) {
            return Ok(fail(ErrorCode::InvalidArgument, why));
        }
        if let Some(cs) = attrs.chunk_size.filter(|cs| !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(cs)) {
            return Ok(fail(
                ErrorCode::InvalidArgument,
                format!("chunk size {cs} outside {MIN_CHUNK_SIZE}..={MAX_CHUNK_SIZE}"),
            ));
        }
        let content = match content {
            Content::Extents(e) => extents_content(e),
            other => other.clone(),
        };
        let (slot, current) = match at {
            Target::Ino(_) => (None, Some(check!(resolve(&self.inodes, &self.dirents, at)?))),
            _ => {
                let slot = check!(self.slot(at)?);
                let current = slot.existing.clone();
                (Some(slot), current)
            }
        };
        if slot.as_ref().is_some_and(|s| !s.missing.is_empty()) && !parents {
            return Ok(fail(ErrorCode::NotFound, format!("parent of {at} does not exist")));
        }
        if current.as_ref().is_some_and(|i| i.kind == InodeKind::Dir) {
            return Ok(fail(ErrorCode::IsADirectory, format!("{at} is a directory")));
        }
        check!(check_base(current.as_ref(), base_version, at));
        let inode = match (current, slot) {
            (Some(mut inode), slot) => {
                if inode.kind == InodeKind::Symlink {
                    // A symlink overwritten by a file becomes that file, with the policy of
                    // the directory it is in.
                    let parent = slot.map(|s| s.parent);
                    let (policy, cs) = match parent {
                        Some(p) => inherited(&self.inodes, &p)?,
                        None => (Default::default(), cairn_core::DEFAULT_CHUNK_SIZE),
                    };
                    inode.kind = InodeKind::File;
                    inode.content = Content::None;
                    (inode.policy, inode.chunk_size) = (Some(policy), Some(cs));
                }
                inode.chunk_size = attrs.chunk_size.or(inode.chunk_size);
                self.set_content(&mut inode, content, size, at)?;
                inode
            }
            (None, Some(slot)) => self.create_file(&slot, attrs, content, size)?,
            (None, None) => unreachable!("an inode target resolved or was refused"),
        };
        Ok(Ok(Reply::Inode(inode)))
    }

    pub(crate) fn write(
        &mut self,
        at: &Target,
        base_version: Option<u64>,
        offset: Option<u64>,
        data: &Content,
    ) -> Result<ApplyResult> {
        let mut inode = check!(resolve(&self.inodes, &self.dirents, at)?);
        check!(require_file(&inode, at));
        check!(check_base(Some(&inode), base_version, at));
        let at_byte = offset.unwrap_or(inode.size);
        let len = match data {
            Content::Inline(b) => b.len() as u64,
            Content::Extents(e) => match check_extents(e) {
                Ok(n) => n,
                Err(why) => return Ok(fail(ErrorCode::InvalidArgument, why)),
            },
            _ => return Ok(fail(ErrorCode::InvalidArgument, "a write carries inline bytes or extents")),
        };
        let Some(end) = at_byte.checked_add(len) else {
            return Ok(fail(ErrorCode::InvalidArgument, "write reaches past 2^64 bytes"));
        };
        if len == 0 {
            return Ok(Ok(Reply::Inode(inode)));
        }
        let size = inode.size.max(end);
        let new = match (&inode.content, data) {
            (Content::None | Content::Inline(_), Content::Inline(bytes)) if size <= INLINE_MAX => {
                let mut buf = match &inode.content {
                    Content::Inline(b) => b.clone(),
                    _ => Vec::new(),
                };
                buf.resize(size as usize, 0);
                buf[at_byte as usize..end as usize].copy_from_slice(bytes);
                Content::Inline(buf)
            }
            (Content::None, Content::Extents(new)) => extents_content(&extent::splice(&[], at_byte, new)),
            (Content::Inline(b), Content::Extents(new)) if b.is_empty() => {
                extents_content(&extent::splice(&[], at_byte, new))
            }
            (Content::Extents(old), Content::Extents(new)) => extents_content(&extent::splice(old, at_byte, new)),
            _ => return Ok(layout_changed(at)),
        };
        if matches!(&new, Content::Extents(e) if e.len() > MAX_EXTENTS) {
            return Ok(fail(ErrorCode::InvalidArgument, format!("{at} would have more than {MAX_EXTENTS} extents")));
        }
        self.set_content(&mut inode, new, size, at)?;
        Ok(Ok(Reply::Inode(inode)))
    }

    pub(crate) fn concat(&mut self, at: &Target, sources: &[Target]) -> Result<ApplyResult> {
        if sources.is_empty() || sources.len() > CONCAT_MAX {
            return Ok(fail(ErrorCode::InvalidArgument, format!("concat takes 1..={CONCAT_MAX} sources")));
        }
        let mut slots = Vec::with_capacity(sources.len());
        let mut extents = Vec::new();
        for s in sources {
            let slot = check!(self.slot(s)?);
            let Some(inode) = &slot.existing else {
                return Ok(fail(ErrorCode::NotFound, format!("{s} does not exist")));
            };
            check!(require_file(inode, s));
            if slots.iter().any(|(_, i): &(crate::namespace::Slot, u64)| *i == inode.ino) {
                return Ok(fail(ErrorCode::InvalidArgument, format!("{s} is named twice")));
            }
            match &inode.content {
                Content::None => {}
                Content::Inline(b) if b.is_empty() => {}
                Content::Extents(e) => extents.extend_from_slice(e),
                _ => return Ok(layout_changed(s)),
            }
            if extents.len() > MAX_EXTENTS {
                return Ok(fail(ErrorCode::InvalidArgument, format!("more than {MAX_EXTENTS} extents")));
            }
            let ino = inode.ino;
            slots.push((slot, ino));
        }
        let dst = check!(self.slot(at)?);
        if !dst.missing.is_empty() {
            return Ok(fail(ErrorCode::NotFound, format!("parent of {at} does not exist")));
        }
        if let Some(old) = &dst.existing {
            check!(require_file(old, at));
            if slots.iter().any(|(_, i)| *i == old.ino) {
                return Ok(fail(ErrorCode::InvalidArgument, format!("{at} cannot be one of its own sources")));
            }
        }
        let size = extent::total(&extents);
        let content = extents_content(&extents);
        // The new file takes its references before the sources drop theirs.
        let inode = match dst.existing.clone() {
            Some(mut inode) => {
                self.set_content(&mut inode, content, size, at)?;
                inode
            }
            None => self.create_file(&dst, NewAttrs::file(), content, size)?,
        };
        for (slot, ino) in &slots {
            let source = self.inode(*ino)?;
            self.drop_name(slot.parent.ino, &slot.name, &source)?;
        }
        Ok(Ok(Reply::Inode(self.inode(inode.ino)?)))
    }

    pub(crate) fn set_attr(&mut self, at: &Target, attrs: &SetAttrs) -> Result<ApplyResult> {
        let mut inode = check!(resolve(&self.inodes, &self.dirents, at)?);
        if *attrs == SetAttrs::default() {
            return Ok(Ok(Reply::Inode(inode)));
        }
        if let Some(size) = attrs.size {
            check!(require_file(&inode, at));
            if size != inode.size {
                let content = match &inode.content {
                    Content::Inline(b) if size <= INLINE_MAX => {
                        let mut b = b.clone();
                        b.resize(size as usize, 0);
                        if b.is_empty() {
                            Content::None
                        } else {
                            Content::Inline(b)
                        }
                    }
                    Content::Inline(_) => return Ok(layout_changed(at)),
                    _ => extents_content(&extent::truncate(inode.extents(), size)),
                };
                self.set_content(&mut inode, content, size, at)?;
            }
        }
        inode.mode = attrs.mode.map_or(inode.mode, |m| m & 0o7777);
        inode.uid = attrs.uid.unwrap_or(inode.uid);
        inode.gid = attrs.gid.unwrap_or(inode.gid);
        inode.atime = attrs.atime.unwrap_or(inode.atime);
        inode.mtime = attrs.mtime.unwrap_or(inode.mtime);
        inode.ctime = self.now;
        inode.version += 1;
        self.put_inode(&inode)?;
        Ok(Ok(Reply::Inode(inode)))
    }

    pub(crate) fn set_xattr(&mut self, at: &Target, name: &str, value: &[u8], mode: XattrMode) -> Result<ApplyResult> {
        check!(check_xattr_name(name));
        if value.len() > XATTR_VALUE_MAX {
            return Ok(fail(ErrorCode::InvalidArgument, format!("xattr values are at most {XATTR_VALUE_MAX} bytes")));
        }
        let mut inode = check!(resolve(&self.inodes, &self.dirents, at)?);
        let exists = self.xattrs.get((inode.ino, name))?.is_some();
        match (mode, exists) {
            (XattrMode::Create, true) => return Ok(fail(ErrorCode::Exists, format!("{at} has xattr {name:?}"))),
            (XattrMode::Replace, false) => return Ok(fail(ErrorCode::NotFound, format!("{at} has no xattr {name:?}"))),
            _ => {}
        }
        if !exists && self.xattrs.range((inode.ino, "")..(inode.ino + 1, ""))?.count() >= XATTRS_PER_INODE {
            return Ok(fail(ErrorCode::NoSpace, format!("{at} already has {XATTRS_PER_INODE} xattrs")));
        }
        self.xattrs.insert((inode.ino, name), value)?;
        inode.ctime = self.now;
        inode.version += 1;
        self.put_inode(&inode)?;
        Ok(Ok(Reply::Inode(inode)))
    }

    pub(crate) fn remove_xattr(&mut self, at: &Target, name: &str) -> Result<ApplyResult> {
        check!(check_xattr_name(name));
        let mut inode = check!(resolve(&self.inodes, &self.dirents, at)?);
        if self.xattrs.remove((inode.ino, name))?.is_none() {
            return Ok(fail(ErrorCode::NotFound, format!("{at} has no xattr {name:?}")));
        }
        inode.ctime = self.now;
        inode.version += 1;
        self.put_inode(&inode)?;
        Ok(Ok(Reply::Inode(inode)))
    }
}

/// Checks an extended attribute name: 1..=255 bytes, no NUL.
pub(crate) fn check_xattr_name(name: &str) -> std::result::Result<(), ApiError> {
    if name.is_empty() || name.len() > XATTR_NAME_MAX || name.contains('\0') {
        return Err(ApiError::new(ErrorCode::InvalidArgument, "xattr names are 1..=255 bytes without NUL"));
    }
    Ok(())
}
