//! Directory listings: read a page at a time from the cluster as the kernel asks for more,
//! holding only the page being read, so a directory of millions of entries lists in bounded
//! memory. Offsets: 1 is ".", 2 is "..", 3 + i the i-th entry.

use crate::attr::kind;
use crate::fs::{CairnFs, Res};
use cairn_core::wire::{Inode, Query, QueryReply, Target, LIST_DEFAULT};
use fuser::{Errno, FileType, INodeNo};
use std::collections::VecDeque;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

/// One entry of a listing.
pub(crate) struct Entry {
    /// The name.
    pub name: Vec<u8>,
    /// The inode it names, as listed.
    pub inode: Inode,
}

/// A directory listing being read: a window of entries and where the next page starts.
#[derive(Default)]
pub(crate) struct Listing {
    /// The index of the window's first entry.
    base: usize,
    window: VecDeque<Entry>,
    next: Option<String>,
    done: bool,
}

impl Listing {
    /// The `i`-th entry of directory `dir`, fetching pages (and forgetting those read) as
    /// needed; `None` past the end.
    fn entry(&mut self, fs: &CairnFs, dir: u64, i: usize) -> Res<Option<&Entry>> {
        if i < self.base {
            // A rewind: list again from the start.
            *self = Listing::default();
        }
        while self.base < i && !self.window.is_empty() {
            self.window.pop_front();
            self.base += 1;
        }
        while i >= self.base + self.window.len() && !self.done {
            let q = Query::List { at: Target::Ino(dir), after: self.next.take(), limit: LIST_DEFAULT };
            match fs.query(q)? {
                QueryReply::Entries { entries, next } => {
                    self.done = next.is_none();
                    self.next = next;
                    if self.window.is_empty() {
                        // Entries skipped over by a seek are never held.
                        let skip = (i - self.base).min(entries.len());
                        self.base += skip;
                        let kept = entries.into_iter().skip(skip);
                        self.window.extend(kept.map(|e| Entry { name: e.name.into_bytes(), inode: e.inode }));
                    } else {
                        self.window
                            .extend(entries.into_iter().map(|e| Entry { name: e.name.into_bytes(), inode: e.inode }));
                    }
                }
                _ => return Err(Errno::EIO),
            }
        }
        Ok(self.window.get(i - self.base))
    }
}

impl CairnFs {
    /// Fills a readdir(plus) reply for kernel directory `ino` from `offset`: `add` takes
    /// each entry's inode number, next offset, type, name and (but for "." and "..") inode,
    /// and returns true once the reply is full.
    pub(crate) fn list(
        &self,
        ino: INodeNo,
        listing: &mut Listing,
        offset: u64,
        mut add: impl FnMut(INodeNo, u64, FileType, &OsStr, Option<&Inode>) -> bool,
    ) -> Res<()> {
        let dir = self.inos.cairn(ino);
        let mut at = offset;
        loop {
            let full = match at {
                0 => add(ino, 1, FileType::Directory, OsStr::new("."), None),
                1 => add(ino, 2, FileType::Directory, OsStr::new(".."), None),
                n => match listing.entry(self, dir, (n - 2) as usize)? {
                    Some(e) => {
                        let inode = self.with_buffered(e.inode.clone());
                        add(
                            self.inos.kernel(inode.ino),
                            n + 1,
                            kind(inode.kind),
                            OsStr::from_bytes(&e.name),
                            Some(&inode),
                        )
                    }
                    None => return Ok(()),
                },
            };
            if full {
                return Ok(());
            }
            at += 1;
        }
    }
}
