//! The blocking client: namespace operations, files ([`crate::File`], [`crate::OpenOptions`])
//! and locks, run on the client's own small runtime.

use crate::cache::ChunkCache;
use crate::r#async::target;
use crate::{AsyncClient, File, LockGuard, LockOptions, OpenOptions, ReadDir, Result};
use cairn_core::wire::Inode;
use std::sync::Arc;

/// A blocking connection to a cairn cluster.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: AsyncClient,
    rt: Arc<tokio::runtime::Runtime>,
}

impl Client {
    /// Connects to the node at `url`, e.g. `http://127.0.0.1:7070`.
    pub fn connect(url: &str) -> Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        Ok(Client { inner: AsyncClient::connect(url)?, rt: Arc::new(rt) })
    }

    /// Connects to the node at `url`, presenting access key `key` with every request.
    pub fn connect_with(url: &str, key: crate::Credentials) -> Result<Self> {
        Self::connect_opts(url, Some(key), None)
    }

    /// Connects to the node at `url`, presenting `key` if given and, for `https://`,
    /// trusting only the CA certificates in `ca_pem` (the cluster CA, `<data>/ca.crt`).
    pub fn connect_opts(url: &str, key: Option<crate::Credentials>, ca_pem: Option<&[u8]>) -> Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        Ok(Client { inner: AsyncClient::connect_opts(url, key, ca_pem)?, rt: Arc::new(rt) })
    }

    pub(crate) fn block<T>(&self, f: impl std::future::Future<Output = T>) -> T {
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

    /// A directory's entries, fetched a page at a time as the iterator advances.
    pub fn read_dir(&self, path: &str) -> Result<ReadDir> {
        let at = target(path)?;
        ReadDir::new(self.clone(), at)
    }

    /// The inode at `path`.
    pub fn metadata(&self, path: &str) -> Result<Inode> {
        self.block(self.inner.stat(path))
    }

    /// The same client with every chunk read served from, and kept in, `cache` first.
    pub fn with_cache(self, cache: Arc<ChunkCache>) -> Self {
        Client { inner: self.inner.with_cache(cache), ..self }
    }

    /// Takes a cluster lock on every path or on none (see [`AsyncClient::lock`]); the guard
    /// renews it in the background and releases it when dropped.
    pub fn lock(&self, paths: &[&str], opts: &LockOptions) -> Result<LockGuard> {
        self.block(self.inner.lock(paths, opts))
    }

    /// The async client this one wraps.
    pub fn as_async(&self) -> &AsyncClient {
        &self.inner
    }
}
