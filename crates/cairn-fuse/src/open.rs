//! One open file of the mount: its cairn handle, its writes buffered until the next flush,
//! and reads served from the inode it last saw, through the last chunk fetched.

use bytes::Bytes;
use cairn_client::{edit, Backend, ClientError, HttpBackend};
use cairn_core::wire::{Content, Inode, Target};
use cairn_core::ChunkId;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Buffered bytes past which a write commits what it has first.
pub(crate) const BUFFER_MAX: usize = 64 << 20;

/// An open file.
pub(crate) struct OpenFile {
    /// cairn's inode number.
    pub ino: u64,
    /// The cairn handle keeping the inode alive while it is open.
    pub handle: u64,
    /// Opened for writing.
    pub writable: bool,
    /// The inode as of the open or the last commit: what reads see.
    pub inode: Inode,
    /// Writes not yet committed: non-overlapping runs of bytes by offset.
    runs: BTreeMap<u64, Vec<u8>>,
    buffered: usize,
    /// The last chunk fetched.
    chunk: Option<(ChunkId, Bytes)>,
}

impl OpenFile {
    /// A file opened on `inode` under cairn handle `handle`.
    pub fn new(inode: Inode, handle: u64, writable: bool) -> Self {
        OpenFile { ino: inode.ino, handle, writable, inode, runs: BTreeMap::new(), buffered: 0, chunk: None }
    }

    /// True if writes wait to be committed.
    pub fn dirty(&self) -> bool {
        !self.runs.is_empty()
    }

    /// The size including buffered writes.
    pub fn size(&self) -> u64 {
        let end = self.runs.iter().next_back().map_or(0, |(off, run)| off + run.len() as u64);
        self.inode.size.max(end)
    }

    /// Buffers a write; false if it overlaps buffered bytes it does not continue (commit
    /// first, then buffer it).
    pub fn buffer(&mut self, offset: u64, data: &[u8]) -> bool {
        let end = offset + data.len() as u64;
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
    /// untouched ones kept), and takes the inode they produced.
    pub async fn commit(&mut self, b: &Arc<HttpBackend>) -> Result<(), ClientError> {
        let runs = std::mem::take(&mut self.runs);
        self.buffered = 0;
        for (offset, run) in runs {
            let body = edit::body_of(Bytes::from(run));
            self.inode = edit::write_at(b, &Target::Ino(self.ino), Some(offset), body).await?;
        }
        Ok(())
    }

    /// Bytes `offset..offset + len` as of the last commit (short at the end of the file).
    pub async fn read(&mut self, b: &HttpBackend, offset: u64, len: u64) -> Result<Vec<u8>, ClientError> {
        let end = offset.saturating_add(len).min(self.inode.size);
        if offset >= end {
            return Ok(Vec::new());
        }
        match &self.inode.content {
            Content::Inline(d) => {
                let (a, z) = (offset as usize, (end as usize).min(d.len()));
                let mut out = d.get(a..z).unwrap_or_default().to_vec();
                out.resize((end - offset) as usize, 0);
                return Ok(out);
            }
            Content::Extents(_) => {}
            _ => return Ok(vec![0; (end - offset) as usize]),
        }
        let pieces = cairn_core::extent::slice(self.inode.extents(), offset, end);
        let mut out = Vec::with_capacity((end - offset) as usize);
        for e in pieces {
            let Some(id) = e.chunk else {
                out.resize(out.len() + e.len as usize, 0);
                continue;
            };
            let data = match &self.chunk {
                Some((have, data)) if *have == id => data.clone(),
                _ => {
                    let data = b.get_chunk(id).await?.into_contiguous();
                    self.chunk = Some((id, data.clone()));
                    data
                }
            };
            let (a, z) = (e.offset as usize, e.offset as usize + e.len as usize);
            let piece = data.get(a..z).ok_or_else(|| {
                ClientError::api(cairn_core::ErrorCode::Corrupt, format!("chunk {id} is shorter than its extent"))
            })?;
            out.extend_from_slice(piece);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_core::wire::InodeKind;

    fn file() -> OpenFile {
        let inode = Inode {
            ino: 5,
            kind: InodeKind::File,
            mode: 0o644,
            uid: 0,
            gid: 0,
            size: 10,
            atime: 0,
            mtime: 0,
            ctime: 0,
            nlink: 1,
            parent: 0,
            version: 1,
            policy: None,
            chunk_size: None,
            content: Content::Inline(b"0123456789".to_vec()),
        };
        OpenFile::new(inode, 1, true)
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
