//! A bucket's keys in S3's order (UTF-8 bytes), from its directory tree.
//!
//! A directory `d` holds the keys `d/...`, which sort after names like `d-x` or `d.txt`
//! (`-` and `.` come before `/`), so a directory's entries, listed in name order, are not in
//! key order: each level keeps the items it has read but may not yet hand out ([`Level`]'s
//! `pending`, ordered by key), and hands one out only once the next entry's name is past it.
//! A listing can start after any key ([`Walker::seek`]) without reading what comes before.
//! For version listings a walk also yields deleted keys that keep a history (the graves of
//! each directory, read page by page beside its entries).

use crate::names::OBJECT_FILE;
use cairn_client::{Backend, ClientError, Result};
use cairn_core::wire::{DirEntry, Inode, InodeKind, Query, QueryReply, Target};
use std::collections::{BTreeMap, VecDeque};

/// Entries asked for per directory page.
const PAGE: u32 = 1000;

/// One thing in a bucket, in key order.
#[derive(Debug, Clone)]
pub enum Item {
    /// An object.
    Object {
        /// Its key.
        key: String,
        /// Its file (a directory's inode for an empty directory's folder key).
        inode: Inode,
    },
    /// A deleted key whose history is kept (walks with graves only).
    Deleted {
        /// Its key.
        key: String,
        /// The directory holding its grave.
        dir: u64,
        /// Its name there.
        name: String,
    },
    /// A directory: every key below it starts with `prefix` (which ends in `/`). The caller
    /// rolls it up into a common prefix, or [`Walker::enter`]s it.
    Dir {
        /// The key prefix of everything in it.
        prefix: String,
        /// The directory.
        inode: Inode,
    },
}

impl Item {
    /// The key (for a directory, its prefix).
    pub fn key(&self) -> &str {
        match self {
            Item::Object { key, .. } | Item::Deleted { key, .. } => key,
            Item::Dir { prefix, .. } => prefix,
        }
    }
}

/// One directory being read.
struct Level {
    ino: u64,
    /// The key prefix of its entries (`""` at the bucket, `"a/"` in directory `a`).
    prefix: String,
    /// Read the next page after this name.
    after: Option<String>,
    /// The page's entries not yet looked at.
    page: VecDeque<DirEntry>,
    /// No pages left.
    done: bool,
    /// Items read but not yet handed out, by key relative to `prefix` (a grave's with a NUL
    /// after it: it sorts as a file, apart from a directory's object of the same name).
    pending: BTreeMap<String, Item>,
    /// Read graves after this name.
    graves_after: Option<String>,
    /// The graves page's names not yet looked at.
    graves: VecDeque<String>,
    /// No grave pages left (always, for walks without graves).
    graves_done: bool,
}

/// Walks a bucket's keys in order.
pub struct Walker<'a, B> {
    backend: &'a B,
    /// Yield deleted keys too.
    with_graves: bool,
    stack: Vec<Level>,
    /// The last directory handed out, which [`Walker::enter`] descends into.
    last_dir: Option<(String, u64)>,
}

fn unexpected(what: &str, got: QueryReply) -> ClientError {
    ClientError::Protocol(format!("expected {what}, got {got:?}"))
}

impl<'a, B: Backend> Walker<'a, B> {
    /// A walk of the bucket whose directory is `root`, from its first key (with deleted
    /// keys if `with_graves`).
    pub fn new(backend: &'a B, root: u64, with_graves: bool) -> Self {
        let level = Level::new(root, String::new(), None, with_graves);
        Walker { backend, with_graves, stack: vec![level], last_dir: None }
    }

    /// A walk of the bucket whose directory is `root`, from the first key after `start` (or
    /// equal to it, with `inclusive`).
    pub async fn seek(backend: &'a B, root: u64, start: &str, inclusive: bool, with_graves: bool) -> Result<Self> {
        let mut w = Walker { backend, with_graves, stack: Vec::new(), last_dir: None };
        let (mut ino, mut prefix, mut rest) = (root, String::new(), start.to_string());
        loop {
            let (segment, below) = match rest.split_once('/') {
                Some((s, b)) => (s.to_string(), Some(b.to_string())),
                None => (rest.clone(), None),
            };
            let mut level =
                Level::new(ino, prefix.clone(), (!segment.is_empty()).then(|| segment.clone()), with_graves);
            // Shorter names whose directories sort after `start` although the names come first.
            for (i, c) in segment.char_indices() {
                if i > 0 && (c as u32) < u32::from(b'/') {
                    if let Some(inode) = w.child(ino, &segment[..i]).await? {
                        if inode.kind == InodeKind::Dir {
                            level.push_dir(&segment[..i], inode);
                        }
                    }
                }
            }
            let found = if segment.is_empty() { None } else { w.child(ino, &segment).await? };
            let mut descend = None;
            match found {
                Some(inode) if inode.kind == InodeKind::File && below.is_none() && inclusive => {
                    level.push(Item::Object { key: format!("{prefix}{segment}"), inode }, segment.clone());
                }
                Some(inode) if inode.kind == InodeKind::Dir => match &below {
                    Some(_) => descend = Some(inode),
                    None => {
                        if inclusive {
                            if let Some(obj) = w.child(inode.ino, OBJECT_FILE).await? {
                                level.push(
                                    Item::Object { key: format!("{prefix}{segment}"), inode: obj },
                                    segment.clone(),
                                );
                            }
                        }
                        level.push_dir(&segment, inode);
                    }
                },
                _ => {}
            }
            w.stack.push(level);
            match (descend, below) {
                (Some(dir), Some(below)) => {
                    ino = dir.ino;
                    prefix = format!("{prefix}{segment}/");
                    if below.is_empty() && inclusive && dir.size == 0 && !w.keeps_graves(dir.ino).await? {
                        // `start` is this empty directory's folder key.
                        let key = prefix.clone();
                        w.stack
                            .last_mut()
                            .expect("pushed")
                            .push(Item::Object { key, inode: dir }, format!("{segment}/"));
                        return Ok(w);
                    }
                    rest = below;
                }
                _ => return Ok(w),
            }
        }
    }

    /// The entry `name` of directory `dir`, if any.
    async fn child(&self, dir: u64, name: &str) -> Result<Option<Inode>> {
        let at = Target::Child { parent: dir, name: name.to_string() };
        match self.backend.query(Query::Stat(at)).await {
            Ok(QueryReply::Inode(i)) => Ok(Some(i)),
            Ok(other) => Err(unexpected("an inode", other)),
            Err(e) if crate::errors::is_not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// True if directory `dir` holds graves.
    async fn keeps_graves(&self, dir: u64) -> Result<bool> {
        match self.backend.query(Query::Graves { at: Target::Ino(dir), after: None, limit: 1 }).await? {
            QueryReply::Names(names) => Ok(!names.is_empty()),
            other => Err(unexpected("names", other)),
        }
    }

    /// Descends into the directory [`Walker::next`] handed out last: its keys come next.
    pub fn enter(&mut self) {
        if let Some((prefix, ino)) = self.last_dir.take() {
            self.stack.push(Level::new(ino, prefix, None, self.with_graves));
        }
    }

    /// The next item, or `None` past the bucket's last key.
    pub async fn next(&mut self) -> Result<Option<Item>> {
        self.last_dir = None;
        loop {
            let Some(level) = self.stack.last_mut() else { return Ok(None) };
            if level.page.is_empty() && !level.done {
                let q = Query::List { at: Target::Ino(level.ino), after: level.after.clone(), limit: PAGE };
                match self.backend.query(q).await? {
                    QueryReply::Entries { entries, next } => {
                        level.done = next.is_none();
                        level.after = next;
                        level.page = entries.into();
                    }
                    other => return Err(unexpected("entries", other)),
                }
                continue;
            }
            if level.graves.is_empty() && !level.graves_done {
                let q = Query::Graves { at: Target::Ino(level.ino), after: level.graves_after.clone(), limit: PAGE };
                match self.backend.query(q).await? {
                    QueryReply::Names(names) => {
                        level.graves_done = names.len() < PAGE as usize;
                        level.graves_after = names.last().cloned();
                        level.graves = names.into();
                    }
                    other => return Err(unexpected("names", other)),
                }
                continue;
            }
            let first_pending = level.pending.keys().next().cloned();
            if let Some(grave) = level.graves.front() {
                let before_entry = level.page.front().is_none_or(|e| e.name > *grave);
                if before_entry && first_pending.as_ref().is_none_or(|p| p >= grave) {
                    let name = level.graves.pop_front().expect("front exists");
                    let item =
                        Item::Deleted { key: format!("{}{name}", level.prefix), dir: level.ino, name: name.clone() };
                    level.push(item, format!("{name}\0"));
                    continue;
                }
            }
            let first_pending = level.pending.keys().next().cloned();
            let next_name = level.page.front().map(|e| e.name.clone());
            let take_entry = match (&next_name, &first_pending) {
                (Some(name), Some(pending)) => pending >= name,
                (Some(_), None) => true,
                (None, _) => false,
            };
            if take_entry {
                let entry = level.page.pop_front().expect("front exists");
                let prefix = level.prefix.clone();
                match entry.inode.kind {
                    InodeKind::File if entry.name != OBJECT_FILE => {
                        let key = format!("{prefix}{}", entry.name);
                        level.push(Item::Object { key, inode: entry.inode }, entry.name);
                    }
                    InodeKind::Dir => {
                        let inner =
                            if entry.inode.size > 0 { self.child(entry.inode.ino, OBJECT_FILE).await? } else { None };
                        let level = self.stack.last_mut().expect("still there");
                        if let Some(obj) = inner {
                            level.push(
                                Item::Object { key: format!("{prefix}{}", entry.name), inode: obj },
                                entry.name.clone(),
                            );
                        }
                        level.push_dir(&entry.name, entry.inode);
                    }
                    _ => {}
                }
                continue;
            }
            match first_pending {
                Some(first) => {
                    let item = level.pending.remove(&first).expect("first exists");
                    if let Item::Dir { prefix, inode } = &item {
                        let (prefix, inode) = (prefix.clone(), inode.clone());
                        if inode.size == 0 {
                            // An empty directory is its folder key, unless it keeps the
                            // history of deleted keys (a versioned bucket's): then it is
                            // entered in walks with graves, and skipped in the others.
                            match (self.keeps_graves(inode.ino).await?, self.with_graves) {
                                (false, _) => return Ok(Some(Item::Object { key: prefix, inode })),
                                (true, false) => continue,
                                (true, true) => {}
                            }
                        }
                        self.last_dir = Some((prefix, inode.ino));
                    }
                    return Ok(Some(item));
                }
                None => {
                    self.stack.pop();
                }
            }
        }
    }
}

impl Level {
    fn new(ino: u64, prefix: String, after: Option<String>, with_graves: bool) -> Self {
        let graves_after = after.clone();
        Level {
            ino,
            prefix,
            after,
            page: VecDeque::new(),
            done: false,
            pending: BTreeMap::new(),
            graves_after,
            graves: VecDeque::new(),
            graves_done: !with_graves,
        }
    }

    fn push(&mut self, item: Item, sort: String) {
        self.pending.insert(sort, item);
    }

    fn push_dir(&mut self, name: &str, inode: Inode) {
        let prefix = format!("{}{name}/", self.prefix);
        self.pending.insert(format!("{name}/"), Item::Dir { prefix, inode });
    }
}
