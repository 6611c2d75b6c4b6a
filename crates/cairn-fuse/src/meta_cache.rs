//! The mount's metadata cache: inodes, directory entries (also absent ones) and extended
//! attributes as the cluster last answered, kept only while the change feed vouches that
//! they did not change since.
//!
//! Every change the feed reports says what the inode or entry became ([`Change::state`]); a
//! record already in that state stays, any other is dropped, and the change is remembered
//! with a sequence number. An answer is kept only if nothing it depends on changed after the
//! question was asked (its [`Ticket`]) or the last change left it in the answer's state; so
//! the answers to this mount's own writes stay cached when the feed echoes them. The cache is
//! trusted only while the feed answered within [`FRESH`]: a mount cut off from its node falls
//! back to asking the cluster, so nothing is served more than about [`FRESH`] out of date.
//! Opens never use it (close-to-open asks the cluster).
//!
//! [`Change::state`]: cairn_core::wire::Change::state

use cairn_core::wire::{ChangeBatch, Content, Inode};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long after the feed's last answer the cache is trusted.
pub(crate) const FRESH: Duration = Duration::from_secs(1);
/// Most records of each kind kept (past it, that kind is emptied and refills).
const MAX_RECORDS: usize = 200_000;
/// The state of a record this mount changed without knowing what it became.
const UNKNOWN: u64 = u64::MAX;

/// When a question was asked: its answer is kept only if nothing it names changed since.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket {
    epoch: u64,
    seq: u64,
}

/// An inode (`None`) or a directory's entry (`Some(name)`).
type Key = (u64, Option<String>);

/// Inodes, entries and attributes, with what vouches for them.
#[derive(Default)]
pub(crate) struct MetaCache {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The cache is trusted until then (the feed's last answer plus [`FRESH`]).
    live_until: Option<Instant>,
    /// Bumped when everything is dropped: older tickets are void.
    epoch: u64,
    /// Bumped on every change.
    seq: u64,
    /// The last change of each inode and entry: its `seq` and the state it left.
    changed: HashMap<Key, (u64, u64)>,
    /// Inodes (without their data) and their states.
    inodes: HashMap<u64, (Inode, u64)>,
    /// Directory and name to the inode named (0: no such entry).
    entries: HashMap<(u64, String), u64>,
    /// Inode to what is known of its extended attributes.
    xattrs: HashMap<u64, Xattrs>,
}

/// What is known of one inode's extended attributes.
#[derive(Default)]
struct Xattrs {
    /// Every attribute is in `values` (a name missing there is absent).
    whole: bool,
    /// Names to values (`None`: no such attribute).
    values: HashMap<String, Option<Vec<u8>>>,
}

impl State {
    fn live(&self) -> bool {
        self.live_until.is_some_and(|t| Instant::now() < t)
    }

    /// True if an answer asked with `t` that left `key` in `state` may be kept.
    fn current(&self, t: Ticket, key: &Key, state: u64) -> bool {
        t.epoch == self.epoch && self.changed.get(key).is_none_or(|&(seq, last)| seq <= t.seq || last == state)
    }

    fn clear(&mut self) {
        self.epoch += 1;
        self.changed.clear();
        self.inodes.clear();
        self.entries.clear();
        self.xattrs.clear();
    }

    /// Records that `key` became `state`, dropping what it was if that differs; true if a
    /// record was dropped.
    fn change(&mut self, key: Key, state: u64) -> bool {
        self.seq += 1;
        if self.changed.len() >= MAX_RECORDS {
            self.clear();
        }
        let dropped = match &key {
            (ino, None) => match self.inodes.get(ino) {
                Some((_, s)) if *s == state => false,
                Some(_) => {
                    self.inodes.remove(ino);
                    self.xattrs.remove(ino);
                    true
                }
                None => self.xattrs.remove(ino).is_some(),
            },
            (dir, Some(name)) => {
                let k = (*dir, name.clone());
                match self.entries.get(&k) {
                    Some(s) if *s == state => false,
                    Some(_) => self.entries.remove(&k).is_some(),
                    None => false,
                }
            }
        };
        self.changed.insert(key, (self.seq, state));
        dropped
    }
}

/// An inode as kept: its data left out (only the attributes and a symlink's target serve).
fn slim(i: &Inode) -> Inode {
    let content = match &i.content {
        Content::Symlink(t) => Content::Symlink(t.clone()),
        _ => Content::None,
    };
    Inode { content, ..i.clone() }
}

impl MetaCache {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("meta cache lock")
    }

    /// A ticket for a question (or a write) about to be sent.
    pub fn ticket(&self) -> Ticket {
        let s = self.state();
        Ticket { epoch: s.epoch, seq: s.seq }
    }

    /// Applies a feed answer: drops what changed (everything on a reset) and trusts the
    /// rest for [`FRESH`] more. Returns the inodes whose change dropped a record or that this
    /// mount could not check (the kernel should forget their attributes too).
    pub fn apply(&self, batch: &ChangeBatch) -> Vec<u64> {
        let mut s = self.state();
        if batch.reset {
            s.clear();
        }
        let mut stale = Vec::new();
        for c in &batch.changes {
            let key = (c.ino, c.name.clone());
            let known = match &key {
                (ino, None) => s.inodes.get(ino).map(|(_, st)| *st),
                (dir, Some(name)) => s.entries.get(&(*dir, name.clone())).copied(),
            };
            s.change(key, c.state);
            if c.name.is_none() && known != Some(c.state) {
                stale.push(c.ino);
            }
        }
        s.live_until = Some(Instant::now() + FRESH);
        stale
    }

    /// Stops trusting the cache (the feed failed).
    pub fn distrust(&self) {
        self.state().live_until = None;
    }

    /// Drops what this mount just changed without learning what it became: inode `ino`,
    /// or with `name` its entry `name`.
    pub fn forget(&self, ino: u64, name: Option<&str>) {
        self.state().change((ino, name.map(str::to_string)), UNKNOWN);
    }

    /// Inode `ino`, if cached and trusted.
    pub fn inode(&self, ino: u64) -> Option<Inode> {
        let s = self.state();
        s.live().then(|| s.inodes.get(&ino).map(|(i, _)| i.clone())).flatten()
    }

    /// The entry `name` of directory `parent`, if cached and trusted: the inode, or `None`
    /// for no such entry.
    pub fn entry(&self, parent: u64, name: &str) -> Option<Option<Inode>> {
        let s = self.state();
        if !s.live() {
            return None;
        }
        match *s.entries.get(&(parent, name.to_string()))? {
            0 => Some(None),
            ino => s.inodes.get(&ino).map(|(i, _)| Some(i.clone())),
        }
    }

    /// Extended attribute `name` of `ino`, if cached and trusted (`None` inside: absent).
    pub fn xattr(&self, ino: u64, name: &str) -> Option<Option<Vec<u8>>> {
        let s = self.state();
        let known = s.live().then(|| s.xattrs.get(&ino)).flatten()?;
        match known.values.get(name) {
            Some(v) => Some(v.clone()),
            None => known.whole.then_some(None),
        }
    }

    /// Keeps `inode` as answered to a question or write sent with ticket `t`; if it may be
    /// out of date, drops what is held of it instead.
    pub fn put_inode(&self, t: Ticket, inode: &Inode) {
        let state = inode.state();
        let mut s = self.state();
        if s.current(t, &(inode.ino, None), state) {
            if s.inodes.len() >= MAX_RECORDS {
                s.inodes.clear();
            }
            if s.inodes.insert(inode.ino, (slim(inode), state)).is_some_and(|(_, old)| old != state) {
                // Attributes change their inode: what was held of them may be out of date.
                s.xattrs.remove(&inode.ino);
            }
        } else {
            s.inodes.remove(&inode.ino);
            s.xattrs.remove(&inode.ino);
        }
    }

    /// Keeps the entry `name` of `parent` (`None`: absent) as answered with ticket `t`.
    pub fn put_entry(&self, t: Ticket, parent: u64, name: &str, found: Option<&Inode>) {
        if let Some(i) = found {
            self.put_inode(t, i);
        }
        let target = found.map_or(0, |i| i.ino);
        let mut s = self.state();
        if s.current(t, &(parent, Some(name.to_string())), target) {
            if s.entries.len() >= MAX_RECORDS {
                s.entries.clear();
            }
            s.entries.insert((parent, name.to_string()), target);
        } else {
            s.entries.remove(&(parent, name.to_string()));
        }
    }

    /// Keeps attribute `name` of `ino` (`None`: absent) as answered with ticket `t`: only
    /// while the inode did not change since (an attribute change changes its inode).
    pub fn put_xattr(&self, t: Ticket, ino: u64, name: &str, value: Option<Vec<u8>>) {
        let mut s = self.state();
        let unchanged = t.epoch == s.epoch && s.changed.get(&(ino, None)).is_none_or(|&(seq, _)| seq <= t.seq);
        if unchanged {
            if s.xattrs.len() >= MAX_RECORDS {
                s.xattrs.clear();
            }
            s.xattrs.entry(ino).or_default().values.insert(name.to_string(), value);
        }
    }

    /// Records that inode `ino`, if held at version 1 (never changed since it was made), has
    /// no extended attributes at all (the kernel asks for `security.capability` before each
    /// write to a file).
    pub fn no_xattrs_yet(&self, ino: u64) {
        let mut s = self.state();
        if s.inodes.get(&ino).is_some_and(|(i, _)| i.version == 1) {
            s.xattrs.insert(ino, Xattrs { whole: true, values: HashMap::new() });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_core::wire::Change;

    fn inode(ino: u64) -> Inode {
        crate::open::inline_file(ino, b"data")
    }

    fn live() -> MetaCache {
        let c = MetaCache::default();
        c.apply(&ChangeBatch::default());
        c
    }

    #[test]
    fn serves_only_while_the_feed_vouches() {
        let c = MetaCache::default();
        c.put_entry(c.ticket(), 1, "a", Some(&inode(5)));
        assert!(c.entry(1, "a").is_none(), "no feed answer yet");
        c.apply(&ChangeBatch::default());
        let got = c.entry(1, "a").unwrap().unwrap();
        assert_eq!((got.ino, got.size, got.content), (5, 4, Content::None), "kept without its data");
        c.distrust();
        assert!(c.inode(5).is_none());
    }

    fn change(ino: u64, name: Option<&str>, state: u64) -> ChangeBatch {
        ChangeBatch { index: 2, reset: false, changes: vec![Change { ino, name: name.map(str::to_string), state }] }
    }

    #[test]
    fn a_change_drops_what_it_names_and_voids_older_answers() {
        let c = live();
        let t = c.ticket();
        c.put_entry(t, 1, "a", Some(&inode(5)));
        c.put_entry(t, 1, "gone", None);
        assert_eq!(c.entry(1, "gone"), Some(None), "absent entries are kept too");
        assert!(c.apply(&change(1, Some("a"), 6)).is_empty(), "names are not the kernel's to forget");
        assert!(c.entry(1, "a").is_none());
        assert_eq!(c.entry(1, "gone"), Some(None), "other entries stay");
        c.put_entry(t, 1, "a", Some(&inode(5)));
        assert!(c.entry(1, "a").is_none(), "asked before the change, and not what it left: not kept");
        c.forget(5, None);
        c.put_inode(t, &inode(5));
        assert!(c.inode(5).is_none());
        c.put_inode(c.ticket(), &inode(5));
        assert!(c.inode(5).is_some());
        c.apply(&ChangeBatch { index: 3, reset: true, changes: vec![] });
        assert!(c.inode(5).is_none(), "a reset drops everything");
    }

    #[test]
    fn a_change_to_the_state_held_keeps_it() {
        let c = live();
        let t = c.ticket();
        let mine = inode(5);
        c.put_entry(t, 1, "a", Some(&mine));
        assert!(c.apply(&change(5, None, mine.state())).is_empty(), "the echo of this mount's own write");
        c.apply(&change(1, Some("a"), 5));
        assert_eq!(c.entry(1, "a").unwrap().unwrap().ino, 5);
        // An answer arriving after the change it matches is kept too.
        let t = c.ticket();
        let mut newer = inode(5);
        newer.version = 2;
        c.apply(&change(5, None, newer.state()));
        c.put_inode(t, &mine);
        assert!(c.inode(5).is_none(), "older than the last change");
        c.put_inode(t, &newer);
        assert_eq!(c.inode(5).unwrap().version, 2);
    }

    #[test]
    fn attributes_go_with_their_inode() {
        let c = live();
        c.no_xattrs_yet(7);
        assert_eq!(c.xattr(7, "security.capability"), None, "not held: nothing known");
        c.put_inode(c.ticket(), &inode(7));
        c.no_xattrs_yet(7);
        assert_eq!(c.xattr(7, "security.capability"), Some(None), "a new file has none");
        c.apply(&change(7, None, 99));
        assert_eq!(c.xattr(7, "security.capability"), None);
        c.put_xattr(c.ticket(), 5, "security.capability", None);
        assert_eq!(c.xattr(5, "security.capability"), Some(None));
        c.forget(5, None);
        assert_eq!(c.xattr(5, "security.capability"), None);
    }
}
