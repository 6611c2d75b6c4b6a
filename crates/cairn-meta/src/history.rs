//! File history: with `versions:N` set on a directory (inherited below, like policies), each
//! change of a file's content keeps the content it replaces as a version, up to N of them,
//! and a deleted file leaves a deleted version and a grave at its name instead of vanishing.
//!
//! Versions live in `history`, keyed by inode and version number; each holds its own
//! references to its chunks, so the garbage collector and the ledger keep what any version
//! needs. A grave (`graves`) maps a name to the deleted inode whose history it keeps; a file
//! created at that name again takes the same inode number, so its history carries on. A
//! file's depth is the setting of its directory when it is changed by name; changes by
//! inode number alone (open handles) use the depth recorded at its last change by name
//! (`versioning` holds both: a directory's setting, and a file's recorded depth).

use crate::apply::{check, Tx};
use crate::tables::{fail, get_inode, refuse, resolve, walk, Walk, ROOT_INO};
use crate::Result;
use cairn_core::codec::{decode, encode};
use cairn_core::wire::{ApplyResult, Content, Inode, InodeKind, NewAttrs, Reply, Target, VersionInfo, VERSIONS_MAX};
use cairn_core::{ApiError, ErrorCode};
use redb::{ReadTransaction, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};

/// ino -> u32: a directory's `versions` setting, or the depth a file was last changed at.
pub(crate) const VERSIONING: TableDefinition<u64, u32> = TableDefinition::new("versioning");
/// (ino, version) -> encoded [`OldVersion`]: the versions kept of each file.
pub(crate) const HISTORY: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("history");
/// (directory ino, name) -> ino: the deleted file whose history a name keeps.
pub(crate) const GRAVES: TableDefinition<(u64, &str), u64> = TableDefinition::new("graves");

/// One kept version of a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct OldVersion {
    pub(crate) size: u64,
    pub(crate) mtime: i64,
    /// The mark a deletion leaves (no content).
    pub(crate) deleted: bool,
    pub(crate) content: Content,
}

fn no_version(at: &Target, version: u64) -> ApiError {
    ApiError::new(ErrorCode::NotFound, format!("{at} has no version {version}"))
}

impl Tx<'_> {
    /// The `versions` setting in force in directory `dir`: the nearest one up the tree.
    fn depth_in(&self, dir: &Inode) -> Result<u32> {
        let mut at = dir.clone();
        loop {
            if let Some(v) = self.versioning.get(at.ino)? {
                return Ok(v.value());
            }
            if at.ino == ROOT_INO {
                return Ok(0);
            }
            at = self.inode(at.parent)?;
        }
    }

    /// The directory a name target is in (`None` for inode numbers).
    fn dir_of(&self, at: &Target) -> Result<Option<Inode>> {
        Ok(match at {
            Target::Path(p) => match p.parent().map(|pp| walk(&self.inodes, &self.dirents, &pp)).transpose()? {
                Some(Ok(Walk::Found(mut chain))) => chain.pop(),
                _ => None,
            },
            Target::Child { parent, .. } => get_inode(&self.inodes, *parent)?,
            Target::Ino(_) => None,
        })
    }

    /// How many versions a change of file `ino`, named by `at`, keeps; recorded for later
    /// changes by inode number.
    fn depth_of(&mut self, ino: u64, at: &Target) -> Result<u32> {
        if self.versioning.is_empty()? {
            return Ok(0);
        }
        let Some(dir) = self.dir_of(at)? else {
            return Ok(self.versioning.get(ino)?.map_or(0, |v| v.value()));
        };
        let depth = self.depth_in(&dir)?;
        match depth {
            0 => drop(self.versioning.remove(ino)?),
            d => drop(self.versioning.insert(ino, d)?),
        }
        Ok(depth)
    }

    /// Keeps `inode`'s current content as a version before a change through `at` replaces
    /// it (if its directory keeps versions).
    pub(crate) fn keep_version(&mut self, inode: &Inode, at: &Target) -> Result<()> {
        if inode.kind != InodeKind::File {
            return Ok(());
        }
        let depth = self.depth_of(inode.ino, at)?;
        if depth > 0 {
            let old =
                OldVersion { size: inode.size, mtime: inode.mtime, deleted: false, content: inode.content.clone() };
            self.put_version(inode, inode.version, &old, depth)?;
        }
        Ok(())
    }

    /// Stores version `v` of `file` (taking references to its chunks, at its policy), then
    /// drops the oldest beyond `depth`.
    fn put_version(&mut self, file: &Inode, v: u64, old: &OldVersion, depth: u32) -> Result<()> {
        let ino = file.ino;
        self.swap_refs(&Content::None, &old.content, file.policy)?;
        let prev = self.history.insert((ino, v), encode(old).as_slice())?.map(|p| p.value().to_vec());
        if let Some(prev) = prev {
            let prev: OldVersion = decode(&prev, "version")?;
            self.swap_refs(&prev.content, &Content::None, None)?;
        }
        self.trim(ino, depth as usize)
    }

    /// Keeps at most `keep` versions of `ino`, dropping the oldest (and their references).
    fn trim(&mut self, ino: u64, keep: usize) -> Result<()> {
        let all: Vec<u64> = self
            .history
            .range((ino, 0)..=(ino, u64::MAX))?
            .map(|r| r.map(|(k, _)| k.value().1))
            .collect::<std::result::Result<_, _>>()?;
        for v in &all[..all.len().saturating_sub(keep)] {
            let old = self.history.remove((ino, *v))?.map(|o| o.value().to_vec());
            if let Some(old) = old {
                let old: OldVersion = decode(&old, "version")?;
                self.swap_refs(&old.content, &Content::None, None)?;
            }
        }
        Ok(())
    }

    /// A file's last name `name` in directory `dir` goes: with versions kept there, its
    /// content becomes a version followed by a deleted one, and the name a grave; otherwise
    /// its history goes too.
    pub(crate) fn bury(&mut self, dir: u64, name: &str, inode: &Inode) -> Result<()> {
        if self.versioning.is_empty()? && self.graves.is_empty()? {
            return Ok(());
        }
        let depth = self.depth_in(&self.inode(dir)?)?;
        self.versioning.remove(inode.ino)?;
        if depth == 0 {
            return self.trim(inode.ino, 0);
        }
        let old = OldVersion { size: inode.size, mtime: inode.mtime, deleted: false, content: inode.content.clone() };
        self.put_version(inode, inode.version, &old, depth)?;
        let mark = OldVersion { size: 0, mtime: self.now, deleted: true, content: Content::None };
        // The mark does not count: even with one version kept, a deleted file can come back.
        self.put_version(inode, inode.version + 1, &mark, depth + 1)?;
        let prev = self.graves.insert((dir, name), inode.ino)?.map(|v| v.value());
        if let Some(prev) = prev {
            if prev != inode.ino {
                self.trim(prev, 0)?;
            }
        }
        Ok(())
    }

    /// If `name` in `dir` is a grave: the inode number a file created there takes, and the
    /// version it starts at (its history carries on); the grave is closed.
    pub(crate) fn unbury(&mut self, dir: u64, name: &str) -> Result<Option<(u64, u64)>> {
        if self.graves.is_empty()? {
            return Ok(None);
        }
        let Some(ino) = self.graves.remove((dir, name))?.map(|v| v.value()) else { return Ok(None) };
        let last = self.history.range((ino, 0)..=(ino, u64::MAX))?.next_back().transpose()?.map(|(k, _)| k.value().1);
        Ok(Some((ino, last.unwrap_or(0) + 1)))
    }

    pub(crate) fn set_dir_versions(&mut self, at: &Target, versions: u32) -> Result<ApplyResult> {
        if versions > VERSIONS_MAX {
            return Ok(fail(ErrorCode::InvalidArgument, format!("versions is at most {VERSIONS_MAX}")));
        }
        let mut inode = check!(resolve(&self.inodes, &self.dirents, at)?);
        if inode.kind != InodeKind::Dir {
            return Ok(fail(ErrorCode::NotADirectory, format!("{at} is not a directory")));
        }
        // The root's 0 is the default: no row needed.
        if versions == 0 && inode.ino == ROOT_INO {
            self.versioning.remove(inode.ino)?;
        } else {
            self.versioning.insert(inode.ino, versions)?;
        }
        inode.ctime = self.now;
        inode.version += 1;
        self.put_inode(&inode)?;
        Ok(Ok(Reply::Inode(inode)))
    }

    pub(crate) fn restore(&mut self, at: &Target, version: u64) -> Result<ApplyResult> {
        let current = match resolve(&self.inodes, &self.dirents, at)? {
            Ok(i) => Some(i),
            Err(e) if e.code == ErrorCode::NotFound => None,
            Err(e) => return Ok(Err(e)),
        };
        if let Some(mut inode) = current {
            if inode.kind != InodeKind::File {
                return Ok(fail(ErrorCode::IsADirectory, format!("{at} is not a file")));
            }
            if inode.version == version {
                return Ok(Ok(Reply::Inode(inode)));
            }
            let old = check!(self.kept(inode.ino, version, at)?);
            self.set_content(&mut inode, old.content, old.size, at)?;
            return Ok(Ok(Reply::Inode(inode)));
        }
        let slot = check!(self.slot(at)?);
        if !slot.missing.is_empty() {
            return Ok(fail(ErrorCode::NotFound, format!("parent of {at} does not exist")));
        }
        let Some(ino) = self.graves.get((slot.parent.ino, slot.name.as_str()))?.map(|v| v.value()) else {
            return Ok(fail(ErrorCode::NotFound, format!("{at} does not exist and has no history")));
        };
        let old = check!(self.kept(ino, version, at)?);
        let inode = self.create_file(&slot, NewAttrs::file(), old.content, old.size)?;
        Ok(Ok(Reply::Inode(inode)))
    }

    pub(crate) fn drop_version(&mut self, at: &Target, version: u64) -> Result<ApplyResult> {
        let (ino, grave) = match resolve(&self.inodes, &self.dirents, at)? {
            Ok(i) if i.kind != InodeKind::File => {
                return Ok(fail(ErrorCode::IsADirectory, format!("{at} is not a file")))
            }
            Ok(i) if i.version == version => {
                let msg = format!("version {version} is {at}'s current content: delete the file, or restore another");
                return Ok(fail(ErrorCode::InvalidArgument, msg));
            }
            Ok(i) => (i.ino, None),
            Err(e) if e.code != ErrorCode::NotFound => return Ok(Err(e)),
            Err(e) => {
                let slot = check!(self.slot(at)?);
                let key = (slot.parent.ino, slot.name.clone());
                match self.graves.get((key.0, key.1.as_str()))?.map(|v| v.value()) {
                    Some(ino) => (ino, Some(key)),
                    None => return Ok(Err(e)),
                }
            }
        };
        let Some(old) = self.history.remove((ino, version))?.map(|o| o.value().to_vec()) else {
            return Ok(Err(no_version(at, version)));
        };
        let old: OldVersion = decode(&old, "version")?;
        self.swap_refs(&old.content, &Content::None, None)?;
        if let Some((dir, name)) = grave {
            if self.history.range((ino, 0)..=(ino, u64::MAX))?.next().is_none() {
                self.graves.remove((dir, name.as_str()))?;
            }
        }
        Ok(Ok(Reply::Done))
    }

    /// Kept version `version` of `ino`, if it holds content.
    fn kept(&self, ino: u64, version: u64, at: &Target) -> Result<std::result::Result<OldVersion, ApiError>> {
        let Some(old) = self.history.get((ino, version))? else { return Ok(Err(no_version(at, version))) };
        let old: OldVersion = decode(old.value(), "version")?;
        if old.deleted {
            return Ok(refuse(ErrorCode::InvalidArgument, format!("version {version} of {at} is its deletion")));
        }
        Ok(Ok(old))
    }
}

/// The inode a target names now, or the inode its grave keeps (`None`: neither).
fn file_or_grave(txn: &ReadTransaction, at: &Target) -> Result<std::result::Result<(u64, Option<Inode>), ApiError>> {
    let inodes = txn.open_table(crate::tables::INODES)?;
    let dirents = txn.open_table(crate::tables::DIRENTS)?;
    match resolve(&inodes, &dirents, at)? {
        Ok(i) if i.kind == InodeKind::File => return Ok(Ok((i.ino, Some(i)))),
        Ok(_) => return Ok(refuse(ErrorCode::IsADirectory, format!("{at} is not a file"))),
        Err(e) if e.code != ErrorCode::NotFound => return Ok(Err(e)),
        Err(_) => {}
    }
    let (dir, name) = match at {
        Target::Path(p) => match (p.parent(), p.name()) {
            (Some(pp), Some(name)) => match walk(&inodes, &dirents, &pp)? {
                Ok(Walk::Found(chain)) => (chain.last().map_or(ROOT_INO, |i| i.ino), name.to_string()),
                _ => return Ok(refuse(ErrorCode::NotFound, format!("{at} does not exist"))),
            },
            _ => return Ok(refuse(ErrorCode::NotFound, format!("{at} does not exist"))),
        },
        Target::Child { parent, name } => (*parent, name.clone()),
        Target::Ino(_) => return Ok(refuse(ErrorCode::NotFound, format!("{at} does not exist"))),
    };
    match txn.open_table(GRAVES)?.get((dir, name.as_str()))? {
        Some(ino) => Ok(Ok((ino.value(), None))),
        None => Ok(refuse(ErrorCode::NotFound, format!("{at} does not exist and has no history"))),
    }
}

/// Up to `limit` names of directory `dir` that are graves, after `after`, in name order.
pub(crate) fn graves(txn: &ReadTransaction, dir: u64, after: Option<&str>, limit: u32) -> Result<Vec<String>> {
    let limit = limit.clamp(1, cairn_core::wire::LIST_MAX) as usize;
    let mut out = Vec::new();
    for r in txn.open_table(GRAVES)?.range((dir, after.unwrap_or(""))..(dir + 1, ""))? {
        let (k, _) = r?;
        let name = k.value().1;
        if Some(name) == after {
            continue;
        }
        if out.len() == limit {
            break;
        }
        out.push(name.to_string());
    }
    Ok(out)
}

/// A file's versions, newest first (its current content, then the kept ones).
pub(crate) fn versions(txn: &ReadTransaction, at: &Target) -> Result<std::result::Result<Vec<VersionInfo>, ApiError>> {
    let (ino, current) = match file_or_grave(txn, at)? {
        Ok(found) => found,
        Err(e) => return Ok(Err(e)),
    };
    let mut out = Vec::new();
    if let Some(i) = &current {
        out.push(VersionInfo { version: i.version, size: i.size, mtime: i.mtime, deleted: false, current: true });
    }
    for r in txn.open_table(HISTORY)?.range((ino, 0)..=(ino, u64::MAX))?.rev() {
        let (k, v) = r?;
        let old: OldVersion = decode(v.value(), "version")?;
        let version = k.value().1;
        out.push(VersionInfo { version, size: old.size, mtime: old.mtime, deleted: old.deleted, current: false });
    }
    Ok(Ok(out))
}

/// Version `version` of a file as an inode carrying that version's content.
pub(crate) fn version(
    txn: &ReadTransaction,
    at: &Target,
    version: u64,
) -> Result<std::result::Result<Inode, ApiError>> {
    let (ino, current) = match file_or_grave(txn, at)? {
        Ok(found) => found,
        Err(e) => return Ok(Err(e)),
    };
    if let Some(i) = current.as_ref().filter(|i| i.version == version) {
        return Ok(Ok(i.clone()));
    }
    let Some(v) = txn.open_table(HISTORY)?.get((ino, version))? else { return Ok(Err(no_version(at, version))) };
    let old: OldVersion = decode(v.value(), "version")?;
    if old.deleted {
        return Ok(refuse(ErrorCode::NotFound, format!("version {version} of {at} is its deletion")));
    }
    let mut inode = current.unwrap_or(Inode {
        ino,
        kind: InodeKind::File,
        mode: 0o644,
        uid: 0,
        gid: 0,
        size: 0,
        atime: old.mtime,
        mtime: old.mtime,
        ctime: old.mtime,
        nlink: 0,
        parent: 0,
        version,
        policy: None,
        chunk_size: None,
        content: Content::None,
    });
    (inode.size, inode.mtime, inode.version, inode.content) = (old.size, old.mtime, version, old.content);
    Ok(Ok(inode))
}
