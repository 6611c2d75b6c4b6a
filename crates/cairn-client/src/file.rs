//! The blocking API shaped like `std::fs`: [`Client`], [`OpenOptions`] and [`File`].
//!
//! A [`File`] opened for writing is copy-on-write: touched chunks are rebuilt in memory and
//! stored as new chunks, untouched ones are kept by reference, and `flush`, `sync_all`,
//! `close` or drop commit the new chunk list as one new version (readers see the old file or
//! the new one, never a mix). A file opened without truncation commits against the version
//! it opened (optimistic concurrency: a concurrent change makes the commit fail with
//! `conflict`). Full dirty chunks are stored early, so memory stays bounded for large writes.
//!
//! The blocking calls run on the client's own small runtime: do not call them from inside
//! an async task (use [`crate::AsyncClient`] there).

use crate::datapath::{self, WriteOptions};
use crate::r#async::parse;
use crate::{AsyncClient, Backend, ClientError, Result};
use bytes::Bytes;
use cairn_core::wire::{ChunkRef, Content, DirEntry, Inode, InodeKind};
use cairn_core::{ErrorCode, FsPath, Policy, INLINE_MAX};
use std::collections::BTreeMap;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::sync::Arc;

/// Dirty full chunks kept in memory before they are stored early.
const MAX_DIRTY_CHUNKS: usize = 4;

/// A blocking connection to a cairn cluster.
#[derive(Clone)]
pub struct Client {
    inner: AsyncClient,
    rt: Arc<tokio::runtime::Runtime>,
}

impl Client {
    /// Connects to the node at `url`, e.g. `http://127.0.0.1:7070`.
    pub fn connect(url: &str) -> Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        Ok(Client { inner: AsyncClient::connect(url)?, rt: Arc::new(rt) })
    }

    fn block<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        self.rt.block_on(f)
    }

    /// Opens a file for reading.
    pub fn open(&self, path: &str) -> Result<File> {
        OpenOptions::new().read(true).open(self, path)
    }

    /// Creates a file for writing, truncating any existing one (like `std::fs::File::create`).
    pub fn create(&self, path: &str) -> Result<File> {
        OpenOptions::new().write(true).create(true).truncate(true).open(self, path)
    }

    /// Removes a file or an empty directory.
    pub fn remove(&self, path: &str) -> Result<()> {
        self.block(self.inner.remove(path, false))
    }

    /// Removes a directory and everything below it.
    pub fn remove_all(&self, path: &str) -> Result<()> {
        self.block(self.inner.remove(path, true))
    }

    /// Atomically renames `from` to `to`.
    pub fn rename(&self, from: &str, to: &str) -> Result<()> {
        self.block(self.inner.rename(from, to)).map(drop)
    }

    /// Creates a directory; with `parents`, also missing ancestors (and accepts an existing one).
    pub fn mkdir(&self, path: &str, parents: bool) -> Result<()> {
        self.block(self.inner.mkdir(path, parents)).map(drop)
    }

    /// A directory's entries.
    pub fn read_dir(&self, path: &str) -> Result<Vec<DirEntry>> {
        self.block(self.inner.list(path))
    }

    /// The inode at `path`.
    pub fn metadata(&self, path: &str) -> Result<Inode> {
        self.block(self.inner.stat(path))
    }

    /// The async client this one wraps.
    pub fn as_async(&self) -> &AsyncClient {
        &self.inner
    }
}

/// Options for opening a [`File`], as `std::fs::OpenOptions`.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    read: bool,
    write: bool,
    append: bool,
    truncate: bool,
    create: bool,
    create_new: bool,
}

impl OpenOptions {
    /// All options off.
    pub fn new() -> Self {
        Self::default()
    }
    /// Allow reading.
    pub fn read(&mut self, v: bool) -> &mut Self {
        self.read = v;
        self
    }
    /// Allow writing.
    pub fn write(&mut self, v: bool) -> &mut Self {
        self.write = v;
        self
    }
    /// Writes go to the end of the file.
    pub fn append(&mut self, v: bool) -> &mut Self {
        self.append = v;
        self
    }
    /// Truncate an existing file to zero length.
    pub fn truncate(&mut self, v: bool) -> &mut Self {
        self.truncate = v;
        self
    }
    /// Create the file if missing.
    pub fn create(&mut self, v: bool) -> &mut Self {
        self.create = v;
        self
    }
    /// Create the file, failing if it exists.
    pub fn create_new(&mut self, v: bool) -> &mut Self {
        self.create_new = v;
        self
    }

    /// Opens `path` with these options.
    pub fn open(&self, client: &Client, path: &str) -> Result<File> {
        let writable = self.write || self.append;
        if !self.read && !writable {
            return Err(ClientError::api(ErrorCode::InvalidArgument, "open needs read, write or append"));
        }
        let fs_path = parse(path)?;
        let backend = client.inner.backend();
        let existing = match client.block(datapath::stat(backend.as_ref(), &fs_path)) {
            Ok(i) => Some(i),
            Err(e) if e.code() == ErrorCode::NotFound && writable && (self.create || self.create_new) => None,
            Err(e) => return Err(e),
        };
        if let Some(i) = &existing {
            if self.create_new {
                return Err(ClientError::api(ErrorCode::Exists, format!("{path} already exists")));
            }
            datapath::require_file(i, &fs_path)?;
        }
        let plan = client.block(datapath::plan(backend.as_ref(), &fs_path))?;
        let plan_cs = match &existing {
            Some(Inode { content: Content::Chunks { chunk_size, .. }, .. }) => *chunk_size,
            _ => plan.chunk_size,
        };
        let mut f = File {
            client: client.clone(),
            path: fs_path,
            writable,
            append: self.append,
            base_version: existing.as_ref().map(|i| i.version).unwrap_or(0),
            size: existing.as_ref().map(|i| i.size).unwrap_or(0),
            chunk_size: plan_cs as u64,
            policy: plan.policy,
            chunks: existing.as_ref().map(|i| i.chunks().to_vec()).unwrap_or_default(),
            inline: match existing.as_ref().map(|i| &i.content) {
                Some(Content::Inline(d)) => Some(d.clone()),
                _ => None,
            },
            dirty: BTreeMap::new(),
            cache: None,
            pos: 0,
            modified: existing.is_none(),
            last_writer_wins: self.truncate,
        };
        // A writable handle keeps small content as dirty chunk 0, so it can grow into chunks.
        if writable {
            if let Some(d) = f.inline.take() {
                f.dirty.insert(0, d);
            }
        }
        if self.truncate && writable && f.size > 0 {
            f.set_len(0)?;
        }
        Ok(f)
    }
}

/// An open cairn file: `Read`, `Write`, `Seek`, plus positional `read_at`/`write_at`.
pub struct File {
    client: Client,
    path: FsPath,
    writable: bool,
    append: bool,
    /// The version this handle's view is based on (0: the file did not exist).
    base_version: u64,
    size: u64,
    chunk_size: u64,
    /// Redundancy policy new chunks are stored with.
    policy: Policy,
    /// The committed chunk list this view is based on.
    chunks: Vec<ChunkRef>,
    /// The committed inline content, for read-only handles of small files (writable handles
    /// keep it as dirty chunk 0).
    inline: Option<Vec<u8>>,
    /// Chunks rewritten since the last commit, by index.
    dirty: BTreeMap<u64, Vec<u8>>,
    /// The last chunk read, to serve small sequential reads.
    cache: Option<(u64, Bytes)>,
    pos: u64,
    modified: bool,
    /// Truncating opens replace whatever is there; others commit against `base_version`.
    last_writer_wins: bool,
}

impl File {
    /// The file's current size, including uncommitted writes.
    pub fn len(&self) -> u64 {
        self.size
    }

    /// True if the file is empty.
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// Length of chunk `idx` given the current size.
    fn logical_len(&self, idx: u64) -> usize {
        self.size.saturating_sub(idx * self.chunk_size).min(self.chunk_size) as usize
    }

    /// The bytes chunk `idx` holds in this view (may be shorter than its logical length:
    /// the rest reads as zeros).
    fn chunk_bytes(&mut self, idx: u64) -> Result<Bytes> {
        if let Some(d) = self.dirty.get(&idx) {
            return Ok(Bytes::copy_from_slice(d));
        }
        if let Some(inline) = &self.inline {
            return Ok(if idx == 0 { Bytes::copy_from_slice(inline) } else { Bytes::new() });
        }
        let Some(r) = self.chunks.get(idx as usize).copied() else { return Ok(Bytes::new()) };
        if let Some((i, b)) = &self.cache {
            if *i == idx {
                return Ok(b.clone());
            }
        }
        let backend = self.client.inner.backend().clone();
        let b = self.client.block(async move { backend.get_chunk(r.id).await })?.into_contiguous();
        self.cache = Some((idx, b.clone()));
        Ok(b)
    }

    /// Reads at `offset` without moving the cursor, like `FileExt::read_at`; fills `buf`
    /// unless the end of the file comes first.
    pub fn read_at(&mut self, buf: &mut [u8], offset: u64) -> Result<usize> {
        let mut done = 0;
        while done < buf.len() && offset + (done as u64) < self.size {
            let at = offset + done as u64;
            let idx = at / self.chunk_size;
            let within = (at % self.chunk_size) as usize;
            let n = (buf.len() - done).min(self.logical_len(idx) - within);
            let data = self.chunk_bytes(idx)?;
            for (k, out) in buf[done..done + n].iter_mut().enumerate() {
                *out = data.get(within + k).copied().unwrap_or(0);
            }
            done += n;
        }
        Ok(done)
    }

    /// Writes at `offset` without moving the cursor, like `FileExt::write_at`. The bytes are
    /// visible to this handle at once and to others after the next commit.
    pub fn write_at(&mut self, buf: &[u8], offset: u64) -> Result<usize> {
        if !self.writable {
            return Err(ClientError::api(ErrorCode::PermissionDenied, "file not opened for writing"));
        }
        let mut done = 0;
        while done < buf.len() {
            let at = offset + done as u64;
            let idx = at / self.chunk_size;
            let within = (at % self.chunk_size) as usize;
            let n = (buf.len() - done).min(self.chunk_size as usize - within);
            if !self.dirty.contains_key(&idx) {
                let current = self.chunk_bytes(idx)?.to_vec();
                self.dirty.insert(idx, current);
            }
            let d = self.dirty.get_mut(&idx).expect("just inserted");
            if d.len() < within + n {
                d.resize(within + n, 0);
            }
            d[within..within + n].copy_from_slice(&buf[done..done + n]);
            done += n;
            self.size = self.size.max(at + n as u64);
        }
        self.modified = true;
        self.cache = None;
        self.store_full_dirty()?;
        Ok(done)
    }

    /// Stores dirty full chunks early once there are too many, to bound memory.
    fn store_full_dirty(&mut self) -> Result<()> {
        if self.dirty.len() <= MAX_DIRTY_CHUNKS {
            return Ok(());
        }
        let full: Vec<u64> =
            self.dirty.iter().filter(|(_, d)| d.len() as u64 == self.chunk_size).map(|(i, _)| *i).collect();
        for idx in full {
            if (idx as usize) > self.chunks.len() {
                continue; // keep holes simple: only extend the list contiguously
            }
            let data = Bytes::from(self.dirty.remove(&idx).expect("listed"));
            let r = self.put(data)?;
            if (idx as usize) == self.chunks.len() {
                self.chunks.push(r);
            } else {
                self.chunks[idx as usize] = r;
            }
        }
        Ok(())
    }

    fn put(&self, data: Bytes) -> Result<ChunkRef> {
        let backend = self.client.inner.backend().clone();
        let policy = self.policy;
        self.client.block(async move { datapath::put_chunk(backend.as_ref(), data, policy).await })
    }

    /// Truncates or extends (with zeros) the file to `len` bytes.
    pub fn set_len(&mut self, len: u64) -> Result<()> {
        if !self.writable {
            return Err(ClientError::api(ErrorCode::PermissionDenied, "file not opened for writing"));
        }
        if len < self.size {
            let keep = len.div_ceil(self.chunk_size);
            self.dirty.retain(|i, _| *i < keep);
            self.chunks.truncate(keep as usize);
            if let Some(inline) = &mut self.inline {
                inline.truncate(len as usize);
            }
            if !len.is_multiple_of(self.chunk_size) {
                let idx = keep - 1;
                let mut d = self.chunk_bytes(idx)?.to_vec();
                d.truncate((len % self.chunk_size) as usize);
                self.dirty.insert(idx, d);
            }
        }
        self.size = len;
        self.modified = true;
        self.cache = None;
        Ok(())
    }

    /// Commits all writes as one new version of the file.
    pub fn sync_all(&mut self) -> Result<()> {
        if !self.modified || !self.writable {
            return Ok(());
        }
        let n = self.size.div_ceil(self.chunk_size);
        let content = if self.size == 0 {
            Content::None
        } else if self.size <= INLINE_MAX {
            let mut data = self.chunk_bytes(0)?.to_vec();
            data.resize(self.size as usize, 0);
            Content::Inline(data)
        } else {
            let mut refs = Vec::with_capacity(n as usize);
            for idx in 0..n {
                let want = self.logical_len(idx);
                let unchanged = !self.dirty.contains_key(&idx)
                    && self.chunks.get(idx as usize).is_some_and(|c| c.len as usize == want);
                if unchanged {
                    refs.push(self.chunks[idx as usize]);
                    continue;
                }
                let mut data = self.chunk_bytes(idx)?.to_vec();
                data.resize(want, 0);
                refs.push(self.put(Bytes::from(data))?);
            }
            Content::Chunks { chunk_size: self.chunk_size as u32, chunks: refs }
        };
        let opts = WriteOptions {
            parents: false,
            base_version: if self.last_writer_wins { None } else { Some(self.base_version) },
            ..WriteOptions::default()
        };
        let backend = self.client.inner.backend().clone();
        let (path, size) = (self.path.clone(), self.size);
        let inode =
            self.client.block(async move { datapath::commit(backend.as_ref(), &path, content, size, opts).await })?;
        debug_assert_eq!(inode.kind, InodeKind::File);
        self.base_version = inode.version;
        self.last_writer_wins = false;
        self.chunks = inode.chunks().to_vec();
        self.dirty.clear();
        if let Content::Inline(d) = inode.content {
            self.dirty.insert(0, d);
        }
        self.modified = false;
        Ok(())
    }

    /// Commits and closes, reporting any commit error (dropping commits but cannot report).
    pub fn close(mut self) -> Result<()> {
        self.sync_all()
    }
}

impl Read for File {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Write for File {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.append {
            self.pos = self.size;
        }
        let n = self.write_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(self.sync_all()?)
    }
}

impl Seek for File {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.size.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match target {
            Some(p) => {
                self.pos = p;
                Ok(p)
            }
            None => Err(io::Error::new(io::ErrorKind::InvalidInput, "seek before the start of the file")),
        }
    }
}

impl Drop for File {
    fn drop(&mut self) {
        if let Err(e) = self.sync_all() {
            tracing::warn!(path = %self.path, "commit on drop failed: {e}");
        }
    }
}
