//! Commands on names: mkdir, symlink, hard links, remove, rename, directory policies.
//!
//! A name is a [`Target::Path`] (resolved from the root, missing ancestors optionally
//! created) or a [`Target::Child`] (a name in a directory given by inode number). Files keep
//! an `nlink` count of their names; an inode is freed with its last name.

use crate::apply::{check, Answer, Tx};
use crate::tables::{fail, get_dir, lookup, refuse, resolve, walk, Walk, ROOT_INO};
use crate::Result;
use cairn_core::wire::{ApplyResult, Content, Inode, InodeKind, NewAttrs, Reply, Target};
use cairn_core::{ErrorCode, Policy, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE};
use redb::ReadableTable;

/// Most names one file may have (as ext4's `EMLINK`).
pub const LINK_MAX: u32 = 65_000;

/// Where a name goes: its directory (the deepest existing one, if ancestors are missing),
/// the missing ancestors' names, the name itself and what it names now.
pub(crate) struct Slot {
    /// The directory the name is in, or the deepest existing ancestor.
    pub parent: Inode,
    /// Names of missing directories between `parent` and the name (paths only).
    pub missing: Vec<String>,
    /// The name.
    pub name: String,
    /// The inode it names now, if any.
    pub existing: Option<Inode>,
}

impl Tx<'_> {
    /// Resolves where the name `at` goes. The root has no name and inode numbers are not
    /// names: both are refused.
    pub(crate) fn slot(&self, at: &Target) -> Result<Answer<Slot>> {
        match at {
            Target::Path(path) => {
                let Some(name) = path.name() else {
                    return Ok(refuse(ErrorCode::InvalidArgument, "the root directory has no name"));
                };
                let parent_path = path.parent().expect("not root");
                let (mut chain, missing) = match check!(walk(&self.inodes, &self.dirents, &parent_path)?) {
                    Walk::Found(chain) => (chain, Vec::new()),
                    Walk::Missing { existing } => {
                        let missing = parent_path.components()[existing.len() - 1..].to_vec();
                        (existing, missing)
                    }
                };
                let parent = chain.pop().expect("non-empty");
                if parent.kind != InodeKind::Dir {
                    return Ok(refuse(ErrorCode::NotADirectory, format!("{parent_path} is not a directory")));
                }
                let existing = match missing.is_empty() {
                    true => lookup(&self.dirents, parent.ino, name)?.map(|i| self.inode(i)).transpose()?,
                    false => None,
                };
                Ok(Ok(Slot { parent, missing, name: name.to_string(), existing }))
            }
            Target::Child { parent, name } => {
                if let Err(e) = cairn_core::validate_name(name) {
                    return Ok(Err(e.into()));
                }
                let parent = check!(get_dir(&self.inodes, *parent)?);
                let existing = lookup(&self.dirents, parent.ino, name)?.map(|i| self.inode(i)).transpose()?;
                Ok(Ok(Slot { parent, missing: Vec::new(), name: name.clone(), existing }))
            }
            Target::Ino(ino) => Ok(refuse(
                ErrorCode::InvalidArgument,
                format!("inode {ino} is not a name: give a path or a directory and a name"),
            )),
        }
    }

    /// Creates the slot's missing ancestors; returns the directory the name goes in.
    pub(crate) fn make_parent(&mut self, slot: &Slot, attrs: NewAttrs) -> Result<Inode> {
        let mut dir = slot.parent.clone();
        for name in &slot.missing {
            let child = self.new_inode(InodeKind::Dir, attrs, &dir, Content::None, 0)?;
            self.link(dir.ino, name, &child)?;
            dir = child;
        }
        Ok(dir)
    }

    pub(crate) fn mkdir(&mut self, at: &Target, parents: bool, attrs: NewAttrs) -> Result<ApplyResult> {
        if matches!(at, Target::Path(p) if p.is_root()) {
            return Ok(match parents {
                true => Ok(Reply::Inode(self.inode(ROOT_INO)?)),
                false => fail(ErrorCode::Exists, "/ already exists"),
            });
        }
        let slot = check!(self.slot(at)?);
        if let Some(inode) = slot.existing {
            return Ok(match (inode.kind, parents) {
                (InodeKind::Dir, true) => Ok(Reply::Inode(inode)),
                _ => fail(ErrorCode::Exists, format!("{at} already exists")),
            });
        }
        if !slot.missing.is_empty() && !parents {
            return Ok(fail(ErrorCode::NotFound, format!("parent of {at} does not exist")));
        }
        let parent = self.make_parent(&slot, attrs)?;
        let dir = self.new_inode(InodeKind::Dir, attrs, &parent, Content::None, 0)?;
        self.link(parent.ino, &slot.name, &dir)?;
        Ok(Ok(Reply::Inode(dir)))
    }

    pub(crate) fn symlink(&mut self, at: &Target, target: &str) -> Result<ApplyResult> {
        if target.is_empty() || target.len() > cairn_core::path::PATH_MAX || target.contains('\0') {
            return Ok(fail(ErrorCode::InvalidArgument, "symlink target must be 1..4096 bytes without NUL"));
        }
        let slot = check!(self.slot(at)?);
        if !slot.missing.is_empty() {
            return Ok(fail(ErrorCode::NotFound, format!("parent of {at} does not exist")));
        }
        if slot.existing.is_some() {
            return Ok(fail(ErrorCode::Exists, format!("{at} already exists")));
        }
        let attrs = NewAttrs { mode: 0o777, ..NewAttrs::file() };
        let content = Content::Symlink(target.to_string());
        let inode = self.new_inode(InodeKind::Symlink, attrs, &slot.parent, content, target.len() as u64)?;
        self.link(slot.parent.ino, &slot.name, &inode)?;
        Ok(Ok(Reply::Inode(inode)))
    }

    /// `link(2)`: gives the file or symlink `from` the new name `to`.
    pub(crate) fn link_name(&mut self, from: &Target, to: &Target) -> Result<ApplyResult> {
        let mut inode = check!(resolve(&self.inodes, &self.dirents, from)?);
        if inode.nlink == 0 {
            return Ok(fail(ErrorCode::NotFound, format!("{from} has no name left to link to")));
        }
        if inode.kind == InodeKind::Dir {
            return Ok(fail(ErrorCode::IsADirectory, format!("{from} is a directory: directories cannot be linked")));
        }
        if inode.nlink >= LINK_MAX {
            return Ok(fail(ErrorCode::InvalidArgument, format!("{from} already has {LINK_MAX} names")));
        }
        let slot = check!(self.slot(to)?);
        if !slot.missing.is_empty() {
            return Ok(fail(ErrorCode::NotFound, format!("parent of {to} does not exist")));
        }
        if slot.existing.is_some() {
            return Ok(fail(ErrorCode::Exists, format!("{to} already exists")));
        }
        // Names belong to directories: a new one changes the inode's ctime, not its version
        // (an open handle's commit against that version still goes through).
        inode.nlink += 1;
        inode.ctime = self.now;
        self.link(slot.parent.ino, &slot.name, &inode)?;
        Ok(Ok(Reply::Inode(inode)))
    }

    /// Removes the name `name` of `inode` from directory `parent`: a directory's whole tree
    /// goes with it; a file's inode goes with its last name.
    pub(crate) fn drop_name(&mut self, parent: u64, name: &str, inode: &Inode) -> Result<()> {
        if inode.kind == InodeKind::Dir {
            let children: Vec<(String, u64)> = self
                .dirents
                .range((inode.ino, "")..(inode.ino + 1, ""))?
                .map(|r| r.map(|(k, v)| (k.value().1.to_string(), v.value())))
                .collect::<std::result::Result<_, _>>()?;
            for (child_name, child) in children {
                // Read afresh: a file linked twice below this tree changes as each name goes.
                let child = self.inode(child)?;
                self.drop_name(inode.ino, &child_name, &child)?;
            }
        }
        self.dirents.remove((parent, name))?;
        self.changed(parent, Some(name), 0);
        self.touch_parent(parent, -1, inode.kind == InodeKind::Dir)?;
        let mut inode = self.inode(inode.ino)?;
        inode.nlink = inode.nlink.saturating_sub(1);
        if inode.kind == InodeKind::Dir {
            return self.free_inode(&inode);
        }
        inode.ctime = self.now;
        if inode.nlink > 0 {
            return self.put_inode(&inode);
        }
        self.bury(parent, name, &inode)?;
        if self.has_handles(inode.ino)? {
            // Unlinked while open: it lives on, nameless, until its last handle closes.
            self.orphans.insert(inode.ino, ())?;
            return self.put_inode(&inode);
        }
        self.free_inode(&inode)
    }

    pub(crate) fn remove(&mut self, at: &Target, recursive: bool) -> Result<ApplyResult> {
        if matches!(at, Target::Path(p) if p.is_root()) {
            return Ok(fail(ErrorCode::InvalidArgument, "the root directory cannot be removed"));
        }
        let slot = check!(self.slot(at)?);
        let Some(inode) = slot.existing else {
            return Ok(fail(ErrorCode::NotFound, format!("{at} does not exist")));
        };
        if inode.kind == InodeKind::Dir && inode.size > 0 && !recursive {
            return Ok(fail(ErrorCode::NotEmpty, format!("{at} is not empty")));
        }
        self.drop_name(slot.parent.ino, &slot.name, &inode)?;
        Ok(Ok(Reply::Done))
    }

    /// True if directory `dir` is `ancestor` or lies below it (following parent links).
    fn is_below(&self, mut dir: u64, ancestor: u64) -> Result<bool> {
        loop {
            if dir == ancestor {
                return Ok(true);
            }
            if dir == ROOT_INO {
                return Ok(false);
            }
            dir = self.inode(dir)?.parent;
        }
    }

    pub(crate) fn rename(&mut self, from: &Target, to: &Target) -> Result<ApplyResult> {
        let root = |t: &Target| matches!(t, Target::Path(p) if p.is_root());
        if root(from) || root(to) {
            return Ok(fail(ErrorCode::InvalidArgument, "the root directory cannot be renamed or replaced"));
        }
        let src = check!(self.slot(from)?);
        let Some(moved) = src.existing.clone() else {
            return Ok(fail(ErrorCode::NotFound, format!("{from} does not exist")));
        };
        let dst = check!(self.slot(to)?);
        if !dst.missing.is_empty() {
            return Ok(fail(ErrorCode::NotFound, format!("parent of {to} does not exist")));
        }
        let is_dir = moved.kind == InodeKind::Dir;
        if (src.parent.ino, src.name.as_str()) == (dst.parent.ino, dst.name.as_str()) {
            return Ok(Ok(Reply::Inode(moved)));
        }
        if is_dir && self.is_below(dst.parent.ino, moved.ino)? {
            return Ok(fail(ErrorCode::InvalidArgument, format!("cannot move {from} into its own subtree {to}")));
        }
        if let Some(old) = &dst.existing {
            if old.ino == moved.ino {
                // Two names of one file: POSIX says rename does nothing.
                return Ok(Ok(Reply::Inode(moved)));
            }
            match (is_dir, old.kind == InodeKind::Dir) {
                (true, false) => return Ok(fail(ErrorCode::NotADirectory, format!("{to} is not a directory"))),
                (false, true) => return Ok(fail(ErrorCode::IsADirectory, format!("{to} is a directory"))),
                (true, true) if old.size > 0 => return Ok(fail(ErrorCode::NotEmpty, format!("{to} is not empty"))),
                _ => {}
            }
        }
        // All checks passed: replace the destination, then move the entry.
        if let Some(old) = &dst.existing {
            self.drop_name(dst.parent.ino, &dst.name, old)?;
        }
        self.dirents.remove((src.parent.ino, src.name.as_str()))?;
        self.dirents.insert((dst.parent.ino, dst.name.as_str()), moved.ino)?;
        self.changed(src.parent.ino, Some(&src.name), 0);
        self.changed(dst.parent.ino, Some(&dst.name), moved.ino);
        if src.parent.ino == dst.parent.ino {
            self.touch_parent(dst.parent.ino, 0, false)?;
        } else {
            self.touch_parent(src.parent.ino, -1, is_dir)?;
            self.touch_parent(dst.parent.ino, 1, is_dir)?;
        }
        let mut moved = self.inode(moved.ino)?;
        if is_dir {
            moved.parent = dst.parent.ino;
        }
        moved.ctime = self.now;
        self.put_inode(&moved)?;
        Ok(Ok(Reply::Inode(moved)))
    }

    pub(crate) fn set_dir_policy(
        &mut self,
        at: &Target,
        policy: Option<Policy>,
        chunk_size: Option<u32>,
    ) -> Result<ApplyResult> {
        if let Some(cs) = chunk_size {
            if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&cs) {
                let msg = format!("chunk size {cs} outside {MIN_CHUNK_SIZE}..={MAX_CHUNK_SIZE}");
                return Ok(fail(ErrorCode::InvalidArgument, msg));
            }
        }
        if let Some(p) = policy.filter(|p| !p.is_valid()) {
            return Ok(fail(ErrorCode::InvalidArgument, format!("{p} is not a policy cairn keeps")));
        }
        let mut inode = check!(resolve(&self.inodes, &self.dirents, at)?);
        if inode.kind != InodeKind::Dir {
            return Ok(fail(ErrorCode::NotADirectory, format!("{at} is not a directory")));
        }
        inode.policy = policy.or(inode.policy);
        inode.chunk_size = chunk_size.or(inode.chunk_size);
        inode.ctime = self.now;
        inode.version += 1;
        self.put_inode(&inode)?;
        Ok(Ok(Reply::Inode(inode)))
    }
}
