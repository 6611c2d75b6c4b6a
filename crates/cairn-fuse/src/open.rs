//! Open files of the mount. Every handle on one inode shares one [`OpenInode`]: the inode as
//! last seen and the writes not yet committed. So processes on one mount see each other's
//! writes at once, as on a local disk, and a read never finds a file shorter than the kernel
//! knows it (a short read would cut the kernel's size and fault the pages mapped past it).
//! Other mounts see the writes once they are committed: on flush, fsync and close. A full
//! buffer is committed in the background while the writer fills the next one (at most one
//! such commit per inode; anything that reads or commits waits for it first).

use bytes::Bytes;
use cairn_client::{datapath, edit, ClientError, HttpBackend};
use cairn_core::wire::{ClientCommand, Content};
use cairn_core::wire::{Inode, Target};
use cairn_core::ErrorCode;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Buffered bytes past which a write commits what it has first.
pub(crate) const BUFFER_MAX: usize = 64 << 20;

/// An inode open on this mount.
pub(crate) struct OpenInode {
    /// cairn's inode number.
    pub ino: u64,
    /// The inode as of the last open or commit: what reads see.
    pub inode: Arc<Inode>,
    /// Where the last read ended: a read starting there is sequential.
    pub read_end: u64,
    /// Writes not yet committed: non-overlapping runs of bytes by offset.
    runs: BTreeMap<u64, Vec<u8>>,
    buffered: usize,
    /// The commit of a full buffer running in the background, if any.
    pending: Option<Pending>,
}

/// A background commit: its task, and the runs it commits (which writes may not overlap
/// until it is done: were it to fail, they come back into the buffer).
struct Pending {
    task: tokio::task::JoinHandle<Committed>,
    runs: Arc<BTreeMap<u64, Bytes>>,
}

/// How a batch of runs went: the inode the last committed run produced, whether each
/// moved the version by exactly one, and on failure the error with the runs not committed.
struct Committed {
    inode: Option<Inode>,
    alone: bool,
    failed: Option<(ClientError, BTreeMap<u64, Bytes>)>,
}

/// One open handle of the kernel's, on a shared open inode.
#[derive(Clone)]
pub(crate) struct Handle {
    /// The open inode.
    pub file: Arc<tokio::sync::Mutex<OpenInode>>,
    /// cairn's inode number.
    pub ino: u64,
    /// Opened for writing.
    pub writable: bool,
}

impl OpenInode {
    /// `inode`, just opened.
    pub fn new(inode: Inode) -> Self {
        OpenInode {
            ino: inode.ino,
            inode: Arc::new(inode),
            read_end: 0,
            runs: BTreeMap::new(),
            buffered: 0,
            pending: None,
        }
    }

    /// True if writes wait to be committed.
    pub fn dirty(&self) -> bool {
        !self.runs.is_empty() || self.pending.is_some()
    }

    /// The size including buffered writes (and those being committed).
    pub fn size(&self) -> u64 {
        let end = self.runs.iter().next_back().map_or(0, |(off, run)| off + run.len() as u64);
        let pending = self.pending.as_ref().and_then(|p| p.runs.iter().next_back());
        let pending_end = pending.map_or(0, |(off, run)| off + run.len() as u64);
        self.inode.size.max(end).max(pending_end)
    }

    /// Buffers a write; false if it overlaps buffered bytes it does not continue (commit
    /// first, then buffer it).
    pub fn buffer(&mut self, offset: u64, data: &[u8]) -> bool {
        let end = offset + data.len() as u64;
        if let Some(p) = &self.pending {
            let before = p.runs.range(..end).next_back();
            if before.is_some_and(|(at, run)| at + run.len() as u64 > offset) {
                return false;
            }
        }
        if let Some((&at, run)) = self.runs.range_mut(..=offset).next_back() {
            let run_end = at + run.len() as u64;
            if run_end == offset && self.runs.range(offset + 1..end).next().is_none() {
                let run = self.runs.get_mut(&at).expect("found");
                run.extend_from_slice(data);
                self.buffered += data.len();
                return true;
            }
            if run_end > offset {
                return false;
            }
        }
        if self.runs.range(offset..end).next().is_some() {
            return false;
        }
        self.runs.insert(offset, data.to_vec());
        self.buffered += data.len();
        true
    }

    /// True once the buffer should be committed before taking more.
    pub fn full(&self) -> bool {
        self.buffered >= BUFFER_MAX
    }

    /// Commits the buffered writes, each run as one in-place write (new chunks spliced in,
    /// untouched ones kept), and takes the inode they produced, after the background commit
    /// if one runs. True if nobody else changed the file meanwhile (each write moved the
    /// version by exactly one). A run that fails stays buffered, with those after it.
    pub async fn commit(&mut self, b: &Arc<HttpBackend>) -> Result<bool, ClientError> {
        let alone = self.settle().await?;
        let runs = self.take_runs();
        let done = commit_runs(b.clone(), self.inode.clone(), runs).await;
        Ok(self.take(done)? && alone)
    }

    /// Starts committing the (full) buffer in the background, once the previous background
    /// commit is done; writes go on into an empty buffer meanwhile.
    pub async fn commit_in_background(&mut self, b: &Arc<HttpBackend>) -> Result<(), ClientError> {
        self.settle().await?;
        let runs = Arc::new(self.take_runs());
        let task = tokio::spawn(commit_runs(b.clone(), self.inode.clone(), (*runs).clone()));
        self.pending = Some(Pending { task, runs });
        Ok(())
    }

    fn take_runs(&mut self) -> BTreeMap<u64, Bytes> {
        self.buffered = 0;
        std::mem::take(&mut self.runs).into_iter().map(|(at, run)| (at, Bytes::from(run))).collect()
    }

    /// Waits for the background commit, if any, and takes its outcome.
    async fn settle(&mut self) -> Result<bool, ClientError> {
        let Some(p) = self.pending.take() else { return Ok(true) };
        let done = match p.task.await {
            Ok(done) => done,
            Err(e) => {
                let err = ClientError::Protocol(format!("background commit failed: {e}"));
                Committed { inode: None, alone: false, failed: Some((err, Arc::unwrap_or_clone(p.runs))) }
            }
        };
        self.take(done)
    }

    /// Takes a batch's outcome: the inode it produced; on failure its runs back into the
    /// buffer (kept for the next flush to try again) and the error.
    fn take(&mut self, done: Committed) -> Result<bool, ClientError> {
        if let Some(inode) = done.inode {
            if inode.version > self.inode.version {
                self.inode = Arc::new(inode);
            }
        }
        let Some((e, runs)) = done.failed else { return Ok(done.alone) };
        for (at, run) in runs {
            self.buffered += run.len();
            self.runs.insert(at, run.to_vec());
        }
        Err(e)
    }

    /// Takes `inode` as what reads see (after a change of attributes, or a fresh open) if it
    /// is newer than what they see: an answer that raced with a commit may be older.
    pub fn refresh(&mut self, inode: Inode) {
        if inode.version > self.inode.version {
            self.inode = Arc::new(inode);
        }
    }
}

/// Commits `runs` in offset order onto the inode as `seen` here when they were taken.
async fn commit_runs(b: Arc<HttpBackend>, seen: Arc<Inode>, mut runs: BTreeMap<u64, Bytes>) -> Committed {
    let (ino, mut version, mut inline) = (seen.ino, seen.version, edit::holds_bytes_inline(&seen));
    let mut done = Committed { inode: None, alone: true, failed: None };
    while let Some((offset, data)) = runs.pop_first() {
        match write_run(&b, ino, inline, offset, data.clone()).await {
            Ok(inode) => {
                done.alone &= inode.version == version + 1;
                version = inode.version;
                inline = edit::holds_bytes_inline(&inode);
                done.inode = Some(inode);
            }
            Err(e) => {
                runs.insert(offset, data);
                done.failed = Some((e, runs));
                return done;
            }
        }
    }
    done
}

/// Writes one run: a small file's bytes straight into its inode (one command, where the
/// inode as last seen here is small and still `inline`), anything else by an in-place write
/// (which looks the inode up first).
async fn write_run(
    b: &Arc<HttpBackend>,
    ino: u64,
    inline: bool,
    offset: u64,
    data: Bytes,
) -> Result<Inode, ClientError> {
    let at = Target::Ino(ino);
    if inline && offset.saturating_add(data.len() as u64) <= cairn_core::INLINE_MAX {
        let cmd = ClientCommand::Write {
            at: at.clone(),
            base_version: None,
            offset: Some(offset),
            data: Content::Inline(data.to_vec()),
        };
        match datapath::write_inode(b.as_ref(), cmd).await {
            // The file grew chunks meanwhile: the in-place write below handles it.
            Err(e) if e.code() == ErrorCode::Conflict => {}
            other => return other,
        }
    }
    edit::write_at(b, &at, Some(offset), edit::body_of(data)).await
}

/// A file of inode `ino` holding `data` inline, for tests.
#[cfg(test)]
pub(crate) fn inline_file(ino: u64, data: &[u8]) -> Inode {
    Inode {
        ino,
        kind: cairn_core::wire::InodeKind::File,
        mode: 0o644,
        uid: 0,
        gid: 0,
        size: data.len() as u64,
        atime: 0,
        mtime: 0,
        ctime: 0,
        nlink: 1,
        parent: 0,
        version: 1,
        policy: None,
        chunk_size: None,
        content: Content::Inline(data.to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> OpenInode {
        OpenInode::new(inline_file(5, b"0123456789"))
    }

    #[test]
    fn sequential_writes_join_and_overlaps_ask_for_a_commit() {
        let mut f = file();
        assert!(f.buffer(10, b"ab") && f.buffer(12, b"cd"));
        assert_eq!(f.runs.len(), 1, "continuing writes join one run");
        assert_eq!(f.size(), 14);
        assert!(f.buffer(20, b"x"));
        assert!(!f.buffer(11, b"zz"), "an overwrite of buffered bytes needs a commit first");
        assert!(!f.buffer(19, b"zz"), "so does one reaching into a later run");
        assert!(f.buffer(0, b"q"));
        assert_eq!(f.runs.len(), 3);
        assert_eq!(f.size(), 21);
    }
}
