//! The client's chunk cache (the DFS report's `'c'` mode): chunks kept in a local
//! directory, bounded in size, least recently used first out, surviving restarts.
//!
//! Chunks are named by their content's hash, so a cached chunk is never stale: a file that
//! changed names other chunks. Every cached chunk is verified against its id when read (a
//! damaged file is dropped and fetched again). Beside the chunks, the cache remembers the
//! inode each cached file had (`files/`), so [`crate::File::from_cache`] can tell whether
//! the cluster's file is still that version.

use crate::{Backend, Frames, Result};
use bytes::Bytes;
use cairn_core::codec::{decode, encode};
use cairn_core::wire::{ClientCommand, Inode, Query, QueryReply, Reply};
use cairn_core::{ChunkId, Policy};
use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// Default bound of a cache's chunk bytes (1 GiB).
pub const DEFAULT_CACHE_BYTES: u64 = 1 << 30;

/// A directory of cached chunks.
pub struct ChunkCache {
    dir: PathBuf,
    max: u64,
    state: Mutex<State>,
}

/// What is cached: each chunk's size and when it was last used (a tick), and the total.
#[derive(Default)]
struct State {
    entries: HashMap<ChunkId, (u64, u64)>,
    total: u64,
    tick: u64,
}

impl std::fmt::Debug for ChunkCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChunkCache({}, {} bytes max)", self.dir.display(), self.max)
    }
}

impl ChunkCache {
    /// The default cache directory: `$CAIRN_CACHE_DIR`, else `$XDG_CACHE_HOME/cairn`, else
    /// `~/.cache/cairn`.
    pub fn default_dir() -> PathBuf {
        if let Some(d) = std::env::var_os("CAIRN_CACHE_DIR") {
            return d.into();
        }
        if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
            return PathBuf::from(d).join("cairn");
        }
        match std::env::var_os("HOME") {
            Some(h) => PathBuf::from(h).join(".cache").join("cairn"),
            None => std::env::temp_dir().join("cairn-cache"),
        }
    }

    /// Opens (creating it, mode 0700) the cache in `dir`, holding at most `max_bytes` of
    /// chunks; what an earlier process cached there is found again, oldest use first out.
    pub fn open(dir: &Path, max_bytes: u64) -> std::io::Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir.join("files"))?;
        let mut found = Vec::new();
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            let name = e.file_name();
            let Some(id) = name.to_str().and_then(|n| ChunkId::from_hex(n).ok()) else { continue };
            let meta = e.metadata()?;
            found.push((meta.modified().unwrap_or(SystemTime::UNIX_EPOCH), id, meta.len()));
        }
        found.sort();
        let mut state = State::default();
        for (_, id, len) in found {
            state.tick += 1;
            state.entries.insert(id, (len, state.tick));
            state.total += len;
        }
        let cache = ChunkCache { dir: dir.to_path_buf(), max: max_bytes, state: Mutex::new(state) };
        cache.evict();
        Ok(cache)
    }

    fn path(&self, id: &ChunkId) -> PathBuf {
        self.dir.join(id.to_hex())
    }

    /// Bytes of chunks cached now.
    pub fn bytes(&self) -> u64 {
        self.state.lock().expect("cache lock").total
    }

    /// A cached chunk, verified against its id (a damaged one is dropped).
    pub fn get(&self, id: &ChunkId) -> Option<Bytes> {
        if !self.state.lock().expect("cache lock").entries.contains_key(id) {
            return None;
        }
        let data = std::fs::read(self.path(id)).ok().filter(|d| ChunkId::of(d) == *id);
        let mut st = self.state.lock().expect("cache lock");
        match data {
            Some(d) => {
                st.tick += 1;
                let tick = st.tick;
                if let Some(e) = st.entries.get_mut(id) {
                    e.1 = tick;
                }
                // The file's time carries the order over a restart.
                let _ = std::fs::File::options()
                    .write(true)
                    .open(self.path(id))
                    .and_then(|f| f.set_modified(SystemTime::now()));
                Some(Bytes::from(d))
            }
            None => {
                if let Some((len, _)) = st.entries.remove(id) {
                    st.total -= len;
                }
                drop(st);
                let _ = std::fs::remove_file(self.path(id));
                None
            }
        }
    }

    /// Keeps a chunk (written to a temp name, then renamed: never half there), evicting the
    /// least recently used beyond the bound. Best effort: a full disk only means no caching.
    pub fn put(&self, id: &ChunkId, data: &[u8]) {
        if data.len() as u64 > self.max || self.state.lock().expect("cache lock").entries.contains_key(id) {
            return;
        }
        let tmp = self.dir.join(format!(".{}.{:x}.part", id.to_hex(), rand::random::<u64>()));
        if std::fs::write(&tmp, data).and_then(|_| std::fs::rename(&tmp, self.path(id))).is_err() {
            let _ = std::fs::remove_file(&tmp);
            return;
        }
        {
            let mut st = self.state.lock().expect("cache lock");
            st.tick += 1;
            let tick = st.tick;
            st.entries.insert(*id, (data.len() as u64, tick));
            st.total += data.len() as u64;
        }
        self.evict();
    }

    /// Drops least recently used chunks until the cache fits its bound.
    fn evict(&self) {
        let mut st = self.state.lock().expect("cache lock");
        while st.total > self.max {
            let Some((&id, &(len, _))) = st.entries.iter().min_by_key(|(_, (_, tick))| *tick) else { break };
            st.entries.remove(&id);
            st.total -= len;
            let _ = std::fs::remove_file(self.path(&id));
        }
    }

    fn file_record(&self, path: &str) -> PathBuf {
        self.dir.join("files").join(ChunkId::of(path.as_bytes()).to_hex())
    }

    /// Remembers that the cached file at `path` is `inode`.
    pub fn remember(&self, path: &str, inode: &Inode) {
        let tmp = self.dir.join("files").join(format!(".{:x}.part", rand::random::<u64>()));
        let record = encode(&(path.to_string(), inode.clone()));
        if std::fs::write(&tmp, record).and_then(|_| std::fs::rename(&tmp, self.file_record(path))).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }

    /// The inode the cached file at `path` had, if it was cached.
    pub fn recall(&self, path: &str) -> Option<Inode> {
        let bytes = std::fs::read(self.file_record(path)).ok()?;
        let (p, inode): (String, Inode) = decode(&bytes, "cached file record").ok()?;
        (p == path).then_some(inode)
    }
}

/// A backend whose chunk reads go through a [`ChunkCache`] first.
pub struct Cached<B> {
    inner: Arc<B>,
    cache: Arc<ChunkCache>,
}

impl<B> Cached<B> {
    /// Chunk reads through `inner` are served from, and kept in, `cache`.
    pub fn new(inner: Arc<B>, cache: Arc<ChunkCache>) -> Self {
        Cached { inner, cache }
    }
}

impl<B: Backend> Backend for Cached<B> {
    fn put_chunk(&self, id: ChunkId, data: Bytes, policy: Policy) -> impl Future<Output = Result<()>> + Send {
        self.inner.put_chunk(id, data, policy)
    }

    async fn get_chunk(&self, id: ChunkId) -> Result<Frames> {
        let cache = self.cache.clone();
        if let Ok(Some(hit)) = tokio::task::spawn_blocking(move || cache.get(&id)).await {
            return Ok(Frames::from(hit));
        }
        let frames = self.inner.get_chunk(id).await?;
        let (cache, data) = (self.cache.clone(), frames.clone().into_contiguous());
        let _ = tokio::task::spawn_blocking(move || cache.put(&id, &data)).await;
        Ok(frames)
    }

    async fn get_chunk_range(&self, id: ChunkId, from: usize, to: usize) -> Result<Vec<Bytes>> {
        let cache = self.cache.clone();
        if let Ok(Some(hit)) = tokio::task::spawn_blocking(move || cache.get(&id)).await {
            return Frames::from(hit).checked_slice(id, from, to);
        }
        self.inner.get_chunk_range(id, from, to).await
    }

    fn write(&self, cmd: ClientCommand) -> impl Future<Output = Result<Reply>> + Send {
        self.inner.write(cmd)
    }

    fn query(&self, q: Query) -> impl Future<Output = Result<QueryReply>> + Send {
        self.inner.query(q)
    }
}
