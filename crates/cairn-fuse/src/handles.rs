//! The mount's open handles: each kernel file handle names a cairn handle on a shared
//! [`OpenInode`], and the table remembers which version of each inode the kernel's page
//! cache holds, so an open keeps that cache only while the file is unchanged.

use crate::open::{Handle, OpenInode};
use cairn_core::wire::Inode;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a look-up's answer serves the open that follows it.
const SEEN_FOR: Duration = Duration::from_millis(100);

/// Inodes whose cached version is remembered, at most (past it the memory starts over, and
/// the next opens of those files read afresh).
const CACHED_MAX: usize = 1 << 16;

type Shared = Arc<tokio::sync::Mutex<OpenInode>>;

#[derive(Default)]
struct Table {
    handles: HashMap<u64, Handle>,
    /// Each open inode and how many handles have it.
    inodes: HashMap<u64, (Shared, usize)>,
    /// The version of each inode whose bytes the kernel's page cache holds.
    cached: HashMap<u64, u64>,
    /// Cairn handles this mount took on inodes it removed while they were open here.
    pins: HashMap<u64, u64>,
    /// Inodes a look-up just returned, for the open that follows it (used once).
    seen: HashMap<u64, (Instant, Inode)>,
    next_fh: u64,
}

/// The open handles.
#[derive(Default)]
pub(crate) struct Handles {
    table: Mutex<Table>,
}

/// A handle just added: its number, itself, and whether the kernel may keep its cache.
pub(crate) struct Opened {
    /// The kernel's file handle.
    pub fh: u64,
    /// The handle.
    pub handle: Handle,
    /// The page cache holds this very version: keep it.
    pub keep_cache: bool,
    /// The inode was open already (its buffered writes included).
    pub shared: bool,
}

impl Handles {
    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().expect("handle table")
    }

    /// Adds a handle on `inode`, as the cluster has it now.
    pub fn add(&self, inode: Inode, writable: bool) -> Opened {
        let mut t = self.table();
        t.next_fh += 1;
        let fh = t.next_fh;
        let (ino, version) = (inode.ino, inode.version);
        let keep_cache = t.cached.get(&ino) == Some(&version);
        if t.cached.len() >= CACHED_MAX {
            t.cached.clear();
        }
        t.cached.insert(ino, version);
        let shared = t.inodes.contains_key(&ino);
        let slot = t.inodes.entry(ino).or_insert_with(|| (Arc::new(tokio::sync::Mutex::new(OpenInode::new(inode))), 0));
        slot.1 += 1;
        let handle = Handle { file: slot.0.clone(), ino, writable };
        t.handles.insert(fh, handle.clone());
        Opened { fh, handle, keep_cache, shared }
    }

    /// Remembers `inode`, just looked up, for an open that follows at once.
    pub fn seen(&self, inode: &Inode) {
        let mut t = self.table();
        if t.seen.len() >= 1024 {
            t.seen.retain(|_, (at, _)| at.elapsed() < SEEN_FOR);
        }
        t.seen.insert(inode.ino, (Instant::now(), inode.clone()));
    }

    /// Inode `ino` as a look-up returned it just now, if so (once).
    pub fn just_seen(&self, ino: u64) -> Option<Inode> {
        let (at, inode) = self.table().seen.remove(&ino)?;
        (at.elapsed() < SEEN_FOR).then_some(inode)
    }

    /// Forgets what a look-up said of `ino` (this mount just changed it).
    pub fn changed(&self, ino: u64) {
        self.table().seen.remove(&ino);
    }

    /// Handle `fh`.
    pub fn get(&self, fh: u64) -> Option<Handle> {
        self.table().handles.get(&fh).cloned()
    }

    /// Removes handle `fh`; with the last handle on its inode, also the inode's pin (then
    /// returned, to be closed).
    pub fn remove(&self, fh: u64) -> Option<(Handle, Option<u64>)> {
        let mut t = self.table();
        let handle = t.handles.remove(&fh)?;
        let mut pin = None;
        if let Some(slot) = t.inodes.get_mut(&handle.ino) {
            slot.1 -= 1;
            if slot.1 == 0 {
                t.inodes.remove(&handle.ino);
                pin = t.pins.remove(&handle.ino);
            }
        }
        Some((handle, pin))
    }

    /// True if `ino` is open here and not pinned yet.
    pub fn wants_pin(&self, ino: u64) -> bool {
        let t = self.table();
        t.inodes.contains_key(&ino) && !t.pins.contains_key(&ino)
    }

    /// Records cairn handle `handle`, taken on open inode `ino`; false (take it back) if the
    /// inode was closed meanwhile.
    pub fn pin(&self, ino: u64, handle: u64) -> bool {
        let mut t = self.table();
        if !t.inodes.contains_key(&ino) {
            return false;
        }
        t.pins.insert(ino, handle);
        true
    }

    /// Every pin, as (inode, cairn handle): renewed while held.
    pub fn pins(&self) -> Vec<(u64, u64)> {
        self.table().pins.iter().map(|(&i, &h)| (i, h)).collect()
    }

    /// Inode `ino` if open on this mount.
    pub fn open_inode(&self, ino: u64) -> Option<Shared> {
        self.table().inodes.get(&ino).map(|(f, _)| f.clone())
    }

    /// Records what a commit of this mount's writes to `ino` made of it: version `from`
    /// became `to`, and the page cache (which holds those writes) still matches if the mount
    /// was `alone` in changing it; otherwise the next open reads afresh.
    pub fn committed(&self, ino: u64, from: u64, to: u64, alone: bool) {
        let mut t = self.table();
        t.seen.remove(&ino);
        if alone && t.cached.get(&ino) == Some(&from) {
            t.cached.insert(ino, to);
        } else {
            t.cached.remove(&ino);
        }
    }

    /// Removes every handle (at unmount): returns them and the pins.
    pub fn drain(&self) -> (Vec<Handle>, Vec<(u64, u64)>) {
        let mut t = self.table();
        t.inodes.clear();
        let pins = t.pins.drain().collect();
        (t.handles.drain().map(|(_, h)| h).collect(), pins)
    }
}
