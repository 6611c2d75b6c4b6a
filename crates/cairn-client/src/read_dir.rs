//! The blocking directory iterator: a listing fetched a page at a time as it advances.

use crate::{Client, Result};
use cairn_core::wire::{DirEntry, Target, LIST_DEFAULT};

/// A directory's entries, fetched from the cluster a page at a time.
pub struct ReadDir {
    client: Client,
    at: Target,
    page: std::vec::IntoIter<DirEntry>,
    next: Option<String>,
    done: bool,
}

impl ReadDir {
    /// Starts listing `at`, fetching the first page.
    pub(crate) fn new(client: Client, at: Target) -> Result<Self> {
        let mut rd = ReadDir { client, at, page: Vec::new().into_iter(), next: None, done: false };
        rd.fetch()?;
        Ok(rd)
    }

    fn fetch(&mut self) -> Result<()> {
        let (entries, next) =
            self.client.block(self.client.as_async().list_page(&self.at, self.next.take(), LIST_DEFAULT))?;
        self.done = next.is_none();
        self.next = next;
        self.page = entries.into_iter();
        Ok(())
    }
}

impl Iterator for ReadDir {
    type Item = Result<DirEntry>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(e) = self.page.next() {
                return Some(Ok(e));
            }
            if self.done {
                return None;
            }
            if let Err(e) = self.fetch() {
                self.done = true;
                return Some(Err(e));
            }
        }
    }
}
