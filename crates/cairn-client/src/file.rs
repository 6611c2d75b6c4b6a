//! The blocking API shaped like `std::fs`: [`OpenOptions`] and [`File`] (over a [`Client`]).
//!
//! A [`File`] opened for writing is copy-on-write: touched blocks (the file's chunk size,
//! aligned) are rebuilt in memory and stored as new chunks spliced into the file's extents,
//! untouched ones are kept by reference, and `flush`, `sync_all`, `close` or drop commit the
//! new extents as one new version (readers see the old file or the new one, never a mix).
//! A handle commits to its inode, not to a path: a file renamed while open keeps receiving
//! the handle's writes. A file opened without truncation commits against the version it
//! opened (optimistic concurrency: a concurrent change makes the commit fail with
//! `conflict`). Full dirty blocks are stored early, so memory stays bounded for large writes.
//!
//! Opening registers a handle on the inode (renewed while the `File` is used, closed on drop):
//! a file unlinked while open stays readable and writable through the handle, as POSIX has
//! it, and is freed when the last handle closes (or its lease, [`HANDLE_LEASE`], runs out).
//!
//! The blocking calls run on the client's own small runtime: do not call them from inside
//! an async task (use [`crate::AsyncClient`] there).

use crate::cache::ChunkCache;
use crate::datapath::{self, WriteOptions};
use crate::r#async::target;
use crate::{Backend, Client, ClientError, Guarded, LockGuard, LockOptions, Result};
use bytes::Bytes;
use cairn_core::extent::{self, Extent};
use cairn_core::wire::{ClientCommand, Content, Inode, InodeKind, Target};
use cairn_core::{ChunkId, ErrorCode, Policy, INLINE_MAX};
use std::collections::BTreeMap;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Dirty full chunks kept in memory before they are stored early.
const MAX_DIRTY_CHUNKS: usize = 4;

/// Options for opening a [`File`], as `std::fs::OpenOptions`.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    read: bool,
    write: bool,
    append: bool,
    truncate: bool,
    create: bool,
    create_new: bool,
    lock: Option<bool>,
    cache: bool,
    /// Opening only to compare with the cache's record (which is then left as it is).
    probe: bool,
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

    /// Hold an exclusive cluster lock on the path while the file is open (the default for
    /// write and append; `false` leaves concurrent writers to optimistic commits instead).
    pub fn lock(&mut self, v: bool) -> &mut Self {
        self.lock = Some(v);
        self
    }

    /// Keep the file's chunks in the client's chunk cache (see [`crate::cache`]): reads of
    /// cached chunks make no requests, and [`File::from_cache`] finds the file again.
    pub fn cache(&mut self, v: bool) -> &mut Self {
        self.cache = v;
        self
    }

    /// Opens `path` with these options.
    pub fn open(&self, client: &Client, path: &str) -> Result<File> {
        let writable = self.write || self.append;
        if !self.read && !writable {
            return Err(ClientError::api(ErrorCode::InvalidArgument, "open needs read, write or append"));
        }
        let fs_path = target(path)?;
        // Taken first, so nobody writes between the open and the lock.
        let mut lock = match self.lock.unwrap_or(writable) {
            true => Some(client.block(client.inner.lock(&[path], &LockOptions::default())).map_err(|e| {
                let why = format!("cannot open {path} for writing: the lock is not free ({e})");
                match e.code() {
                    ErrorCode::Locked => ClientError::api(ErrorCode::Locked, why),
                    _ => e,
                }
            })?),
            false => None,
        };
        let opened = self.open_locked(client, path, fs_path, &mut lock);
        if let (Err(_), Some(l)) = (&opened, lock.take()) {
            // Released before the error is returned, so the caller's next step finds it free.
            let _ = client.block(l.release());
        }
        opened
    }

    /// The rest of [`OpenOptions::open`], once the lock (if any) is held: it moves into the
    /// file, or stays in `lock` if opening fails.
    fn open_locked(&self, client: &Client, path: &str, fs_path: Target, lock: &mut Option<LockGuard>) -> Result<File> {
        let writable = self.write || self.append;
        let backend = client.inner.backend();
        // Resolving the path and opening a handle on what it names are one step, so the file
        // stays while this handle is open, whatever happens to its names.
        let handle = rand::random::<u64>();
        let existing = match client.block(open_handle(backend.as_ref(), &fs_path, handle)) {
            Ok(i) => Some(i),
            Err(e) if e.code() == ErrorCode::NotFound && writable && (self.create || self.create_new) => None,
            Err(e) => return Err(e),
        };
        let mut opened = existing.as_ref().map(|i| Handle { ino: i.ino, id: handle, renewed: Instant::now() });
        if let Some(i) = &existing {
            let refusal = match self.create_new {
                true => Err(ClientError::api(ErrorCode::Exists, format!("{path} already exists"))),
                false => datapath::require_file(i, &fs_path),
            };
            if let Err(e) = refusal {
                if let Some(h) = opened.take() {
                    client.block(close_handle(backend.as_ref(), &h));
                }
                return Err(e);
            }
        }
        // An existing file's plan is its own: the chunk size and policy it was created with.
        let plan = client.block(datapath::plan(backend.as_ref(), &fs_path))?;
        let mut f = File {
            client: client.clone(),
            target: existing.as_ref().map_or(fs_path, |i| Target::Ino(i.ino)),
            writable,
            append: self.append,
            base_version: existing.as_ref().map(|i| i.version).unwrap_or(0),
            size: existing.as_ref().map(|i| i.size).unwrap_or(0),
            chunk_size: plan.chunk_size as u64,
            policy: plan.policy,
            extents: existing.as_ref().map(|i| i.extents().to_vec()).unwrap_or_default(),
            inline: match existing.as_ref().map(|i| &i.content) {
                Some(Content::Inline(d)) => Some(d.clone()),
                _ => None,
            },
            dirty: BTreeMap::new(),
            cache: None,
            pos: 0,
            modified: existing.is_none(),
            last_writer_wins: self.truncate,
            handle: opened,
            lock: None,
            chunk_cache: if self.cache { Some(client.inner.chunk_cache()?) } else { None },
        };
        if let (Some(cache), Some(inode), false) = (&f.chunk_cache, &existing, self.probe) {
            cache.remember(path, inode);
        }
        // A writable handle keeps small content as dirty chunk 0, so it can grow into chunks.
        if writable {
            if let Some(d) = f.inline.take() {
                f.dirty.insert(0, d);
            }
        }
        if self.truncate && writable && f.size > 0 {
            f.set_len(0)?;
        }
        f.lock = lock.take();
        Ok(f)
    }
}

/// An open cairn file: `Read`, `Write`, `Seek`, plus positional `read_at`/`write_at`.
pub struct File {
    client: Client,
    /// Where commits go: the inode once the file exists, its path before.
    target: Target,
    writable: bool,
    append: bool,
    /// The version this handle's view is based on (0: the file did not exist).
    base_version: u64,
    size: u64,
    chunk_size: u64,
    /// Redundancy policy new chunks are stored with.
    policy: Policy,
    /// The extents this view is based on (committed, plus blocks stored early).
    extents: Vec<Extent>,
    /// The committed inline content, for read-only handles of small files (writable handles
    /// keep it as dirty chunk 0).
    inline: Option<Vec<u8>>,
    /// Chunks rewritten since the last commit, by index.
    dirty: BTreeMap<u64, Vec<u8>>,
    /// The last chunk fetched, to serve small sequential reads.
    cache: Option<(ChunkId, Bytes)>,
    pos: u64,
    modified: bool,
    /// Truncating opens replace whatever is there; others commit against `base_version`.
    last_writer_wins: bool,
    /// The handle registered on the inode (once it exists), renewed while in use.
    handle: Option<Handle>,
    /// The lock held on the path while the file is open for writing.
    lock: Option<LockGuard>,
    /// The chunk cache reads go through, if the file was opened with it.
    chunk_cache: Option<Arc<ChunkCache>>,
}

/// How long a handle lives without a renewal; a `File` renews it when half is gone.
pub const HANDLE_LEASE: Duration = Duration::from_secs(600);

/// An open handle on an inode.
struct Handle {
    ino: u64,
    id: u64,
    renewed: Instant,
}

/// Opens a handle on what `at` names; answers the inode.
async fn open_handle<B: Backend>(b: &B, at: &Target, handle: u64) -> Result<Inode> {
    let lease = HANDLE_LEASE.as_nanos() as i64;
    datapath::write_inode(b, ClientCommand::Open { at: at.clone(), handle, lease }).await
}

/// Closes a handle (best effort: an unreachable cluster lets the lease run out instead).
async fn close_handle<B: Backend>(b: &B, h: &Handle) {
    let cmd = ClientCommand::Close { handles: vec![(h.ino, h.id)], expired_only: false };
    if let Err(e) = b.write(cmd).await {
        tracing::warn!(ino = h.ino, "closing a file handle failed (its lease will run out): {e}");
    }
}

impl File {
    /// The file at `path` as the chunk cache knows it, opened for reading, if it is still
    /// the version the cluster has (else `None`: it changed, or was never cached). Reads of
    /// its cached chunks make no chunk requests.
    pub fn from_cache(client: &Client, path: &str) -> Result<Option<File>> {
        let Some(cached) = client.inner.chunk_cache()?.recall(path) else { return Ok(None) };
        let mut opts = OpenOptions::new();
        opts.read(true).cache(true).probe = true;
        match opts.open(client, path) {
            Ok(f) if f.target == Target::Ino(cached.ino) && f.base_version == cached.version => Ok(Some(f)),
            Ok(_) => Ok(None),
            Err(e) if e.code() == ErrorCode::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

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

    /// Renews the handle's lease once half of it is gone.
    fn keep_handle(&mut self) -> Result<()> {
        let Some(h) = &mut self.handle else { return Ok(()) };
        if h.renewed.elapsed() < HANDLE_LEASE / 2 {
            return Ok(());
        }
        let cmd = ClientCommand::Renew { handles: vec![(h.ino, h.id)], lease: HANDLE_LEASE.as_nanos() as i64 };
        let backend = self.client.inner.backend().clone();
        self.client.block(async move { backend.write(cmd).await })?;
        h.renewed = Instant::now();
        Ok(())
    }

    /// A chunk's bytes, verified, through the one-chunk cache.
    fn fetch(&mut self, id: ChunkId) -> Result<Bytes> {
        self.keep_handle()?;
        if let Some((cached, b)) = &self.cache {
            if *cached == id {
                return Ok(b.clone());
            }
        }
        if let Some(hit) = self.chunk_cache.as_ref().and_then(|c| c.get(&id)) {
            self.cache = Some((id, hit.clone()));
            return Ok(hit);
        }
        let backend = self.client.inner.backend().clone();
        let b = self.client.block(async move { backend.get_chunk(id).await })?.into_contiguous();
        if let Some(c) = &self.chunk_cache {
            c.put(&id, &b);
        }
        self.cache = Some((id, b.clone()));
        Ok(b)
    }

    /// The bytes block `idx` holds in this view (may be shorter than its logical length:
    /// the rest reads as zeros).
    fn chunk_bytes(&mut self, idx: u64) -> Result<Bytes> {
        if let Some(d) = self.dirty.get(&idx) {
            return Ok(Bytes::copy_from_slice(d));
        }
        if let Some(inline) = &self.inline {
            return Ok(if idx == 0 { Bytes::copy_from_slice(inline) } else { Bytes::new() });
        }
        let from = idx * self.chunk_size;
        let pieces = extent::slice(&self.extents, from, from + self.chunk_size);
        let mut out = Vec::new();
        for e in &pieces {
            let Some(id) = e.chunk else {
                out.resize(out.len() + e.len as usize, 0);
                continue;
            };
            let data = self.fetch(id)?;
            let (a, b) = (e.offset as usize, e.offset as usize + e.len as usize);
            if data.len() < b {
                let msg = format!("chunk {id} is {} bytes, an extent reaches {b}", data.len());
                return Err(ClientError::api(ErrorCode::Corrupt, msg));
            }
            if pieces.len() == 1 {
                return Ok(data.slice(a..b));
            }
            out.extend_from_slice(&data[a..b]);
        }
        Ok(Bytes::from(out))
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

    /// Stores dirty full blocks early once there are too many, to bound memory.
    fn store_full_dirty(&mut self) -> Result<()> {
        if self.dirty.len() <= MAX_DIRTY_CHUNKS {
            return Ok(());
        }
        let full: Vec<u64> =
            self.dirty.iter().filter(|(_, d)| d.len() as u64 == self.chunk_size).map(|(i, _)| *i).collect();
        for idx in full {
            let data = Bytes::from(self.dirty.remove(&idx).expect("listed"));
            let e = self.put(data)?;
            self.extents = extent::splice(&self.extents, idx * self.chunk_size, &[e]);
        }
        Ok(())
    }

    fn put(&self, data: Bytes) -> Result<Extent> {
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
            let cs = self.chunk_size;
            self.dirty.retain(|i, _| *i * cs < len);
            if let Some(d) = self.dirty.get_mut(&(len / cs)) {
                d.truncate((len % cs) as usize);
            }
            let have = extent::total(&self.extents);
            self.extents = extent::truncate(&self.extents, len.min(have));
            if let Some(inline) = &mut self.inline {
                inline.truncate(len as usize);
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
        self.keep_handle()?;
        let content = if self.size == 0 {
            Content::None
        } else if self.size <= INLINE_MAX {
            let mut data = vec![0u8; self.size as usize];
            self.read_at(&mut data, 0)?;
            Content::Inline(data)
        } else {
            let have = extent::total(&self.extents);
            let mut extents = extent::truncate(&self.extents, self.size.min(have));
            let dirty: Vec<u64> = self.dirty.keys().copied().collect();
            for idx in dirty {
                let want = self.logical_len(idx);
                let mut data = self.dirty.remove(&idx).expect("listed");
                data.resize(want, 0);
                let e = self.put(Bytes::from(data))?;
                extents = extent::splice(&extents, idx * self.chunk_size, &[e]);
            }
            Content::Extents(extent::truncate(&extents, self.size))
        };
        let opts = WriteOptions {
            parents: false,
            base_version: if self.last_writer_wins { None } else { Some(self.base_version) },
            ..WriteOptions::default()
        };
        let guard = self.lock.as_ref().map(LockGuard::guard).unwrap_or_default();
        let backend = Guarded::new(self.client.inner.backend().clone(), guard);
        let (at, size) = (self.target.clone(), self.size);
        let inode = self.client.block(async move { datapath::commit(&backend, &at, content, size, opts).await })?;
        debug_assert_eq!(inode.kind, InodeKind::File);
        if self.handle.is_none() {
            // The file was created by this commit: hold it open from now on.
            let (backend, id) = (self.client.inner.backend().clone(), rand::random::<u64>());
            let at = Target::Ino(inode.ino);
            self.client.block(async move { open_handle(backend.as_ref(), &at, id).await })?;
            self.handle = Some(Handle { ino: inode.ino, id, renewed: Instant::now() });
        }
        self.target = Target::Ino(inode.ino);
        self.base_version = inode.version;
        self.last_writer_wins = false;
        self.extents = inode.extents().to_vec();
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
            tracing::warn!(file = %self.target, "commit on drop failed: {e}");
        }
        if let Some(h) = self.handle.take() {
            let backend = self.client.inner.backend().clone();
            self.client.block(async move { close_handle(backend.as_ref(), &h).await });
        }
        if let Some(lock) = self.lock.take() {
            if let Err(e) = self.client.block(lock.release()) {
                tracing::warn!(file = %self.target, "releasing the file's lock failed (it will expire): {e}");
            }
        }
    }
}
