//! The async client: whole-file and namespace operations against one node.

use crate::cache::ChunkCache;
use crate::datapath::{self, WriteOptions};
use crate::edit;
use crate::{Backend, ClientError, HttpBackend, Result};
use bytes::Bytes;
use cairn_core::wire::{ClientCommand, DirEntry, Inode, NewAttrs, Query, QueryReply, SetAttrs, Target, XattrMode};
use cairn_core::{ErrorCode, FsPath, Policy};
use futures::stream::{self, Stream, StreamExt, TryStreamExt};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Deadline of an operator request (status, fsck of a large tree, node and worker changes).
const OPERATOR_DEADLINE: std::time::Duration = std::time::Duration::from_secs(300);

/// Size of the pieces read from a local source while uploading.
const READ_PIECE: usize = 1 << 20;

/// An async connection to a cairn cluster through one node.
#[derive(Clone)]
pub struct AsyncClient {
    backend: Arc<HttpBackend>,
    /// The chunk cache, once set ([`AsyncClient::with_cache`]: every read goes through it)
    /// or opened for files that ask for it.
    cache: Arc<std::sync::OnceLock<Arc<ChunkCache>>>,
    /// Reads go through the cache.
    cached_reads: bool,
}

/// Parses a user-supplied path.
pub(crate) fn parse(path: &str) -> Result<FsPath> {
    FsPath::parse(path).map_err(|e| ClientError::Api(e.into()))
}

/// Parses a user-supplied path into a target.
pub(crate) fn target(path: &str) -> Result<Target> {
    parse(path).map(Target::Path)
}

/// One page of a directory listing: the entries and the cursor of the next page.
pub type Page = (Vec<DirEntry>, Option<String>);

impl AsyncClient {
    /// Connects to the node at `url` (no request is made until the first operation).
    pub fn connect(url: &str) -> Result<Self> {
        Ok(Self::over(HttpBackend::new(url)?))
    }

    /// Connects to the node at `url`, presenting access key `key` with every request.
    pub fn connect_with(url: &str, key: crate::Credentials) -> Result<Self> {
        Self::connect_opts(url, Some(key), None)
    }

    /// Connects to the node at `url`, presenting `key` if given and, for `https://`,
    /// trusting only the CA certificates in `ca_pem` (the cluster CA, `<data>/ca.crt`).
    pub fn connect_opts(url: &str, key: Option<crate::Credentials>, ca_pem: Option<&[u8]>) -> Result<Self> {
        let backend = HttpBackend::with_ca(url, ca_pem)?;
        let backend = match key {
            Some(key) => backend.with_credentials(key),
            None => backend,
        };
        Ok(Self::over(backend))
    }

    fn over(backend: HttpBackend) -> Self {
        AsyncClient { backend: Arc::new(backend), cache: Arc::default(), cached_reads: false }
    }

    /// The same client with every chunk read served from, and kept in, `cache` first.
    pub fn with_cache(self, cache: Arc<ChunkCache>) -> Self {
        let cell = std::sync::OnceLock::new();
        let _ = cell.set(cache);
        AsyncClient { cache: Arc::new(cell), cached_reads: true, ..self }
    }

    /// The chunk cache: the one set with [`AsyncClient::with_cache`], or else the default
    /// one ([`ChunkCache::default_dir`], [`crate::cache::DEFAULT_CACHE_BYTES`]), opened now.
    pub fn chunk_cache(&self) -> Result<Arc<ChunkCache>> {
        if let Some(c) = self.cache.get() {
            return Ok(c.clone());
        }
        let opened = Arc::new(ChunkCache::open(&ChunkCache::default_dir(), crate::cache::DEFAULT_CACHE_BYTES)?);
        let _ = self.cache.set(opened);
        Ok(self.cache.get().expect("just set").clone())
    }

    /// The cache reads go through, if they do.
    pub(crate) fn read_cache(&self) -> Option<Arc<ChunkCache>> {
        self.cached_reads.then(|| self.cache.get().cloned()).flatten()
    }

    /// The same client with every chunk read going over HTTP, even from a node on this
    /// machine (see [`HttpBackend::new`]).
    pub fn without_short_circuit(self) -> Self {
        AsyncClient { backend: Arc::new(self.backend.as_ref().clone().without_short_circuit()), ..self }
    }

    /// The backend, for the data path.
    pub fn backend(&self) -> &Arc<HttpBackend> {
        &self.backend
    }

    /// The inode at `path`.
    pub async fn stat(&self, path: &str) -> Result<Inode> {
        datapath::stat(self.backend.as_ref(), &target(path)?).await
    }

    /// One page of a directory's entries in name order: up to `limit` entries after the name
    /// `after` (`None`: from the start), and the cursor of the next page (`None` at the end).
    pub async fn list_page(&self, at: &Target, after: Option<String>, limit: u32) -> Result<Page> {
        match self.backend.query(Query::List { at: at.clone(), after, limit }).await? {
            QueryReply::Entries { entries, next } => Ok((entries, next)),
            other => Err(ClientError::Protocol(format!("expected entries, got {other:?}"))),
        }
    }

    /// A directory's entries in name order, fetched a page of `page` entries at a time as
    /// the stream is read (memory stays one page whatever the directory's size).
    pub fn entries(&self, at: Target, page: u32) -> impl Stream<Item = Result<DirEntry>> + '_ {
        // State: the cursor to continue after, or `None` once the last page was fetched.
        stream::try_unfold(Some(None), move |cursor: Option<Option<String>>| {
            let at = at.clone();
            async move {
                let Some(after) = cursor else { return Ok::<_, ClientError>(None) };
                let (entries, next) = self.list_page(&at, after, page).await?;
                Ok(Some((stream::iter(entries.into_iter().map(Ok::<_, ClientError>)), next.map(Some))))
            }
        })
        .try_flatten()
    }

    /// All of a directory's entries (prefer [`AsyncClient::entries`] for directories that may
    /// be large).
    pub async fn list(&self, path: &str) -> Result<Vec<DirEntry>> {
        self.entries(target(path)?, cairn_core::wire::LIST_MAX).try_collect().await
    }

    async fn write_inode(&self, cmd: ClientCommand) -> Result<Inode> {
        datapath::write_inode(self.backend.as_ref(), cmd).await
    }

    /// Creates a directory (`parents`: and missing ancestors, accepting an existing one).
    pub async fn mkdir(&self, path: &str, parents: bool) -> Result<Inode> {
        self.write_inode(ClientCommand::Mkdir { at: target(path)?, parents, attrs: NewAttrs::dir() }).await
    }

    /// Removes a file or empty directory, or with `recursive` a whole tree.
    pub async fn remove(&self, path: &str, recursive: bool) -> Result<()> {
        self.backend.write(ClientCommand::Remove { at: target(path)?, recursive }).await.map(drop)
    }

    /// Atomically renames `from` to `to`.
    pub async fn rename(&self, from: &str, to: &str) -> Result<Inode> {
        self.write_inode(ClientCommand::Rename { from: target(from)?, to: target(to)? }).await
    }

    /// Gives the file `from` a second name `to` (a hard link).
    pub async fn link(&self, from: &str, to: &str) -> Result<Inode> {
        self.write_inode(ClientCommand::Link { from: target(from)?, to: target(to)? }).await
    }

    /// Creates a symbolic link at `path` pointing to `to`.
    pub async fn symlink(&self, path: &str, to: &str) -> Result<Inode> {
        self.write_inode(ClientCommand::Symlink { at: target(path)?, target: to.to_string() }).await
    }

    /// Changes mode, owner, times or size (a size cuts the file or extends it with zeros).
    pub async fn set_attr(&self, path: &str, attrs: SetAttrs) -> Result<Inode> {
        edit::set_attr(self.backend.as_ref(), &target(path)?, attrs).await
    }

    /// Sets an extended attribute.
    pub async fn set_xattr(&self, path: &str, name: &str, value: &[u8], mode: XattrMode) -> Result<Inode> {
        let cmd = ClientCommand::SetXattr { at: target(path)?, name: name.to_string(), value: value.to_vec(), mode };
        self.write_inode(cmd).await
    }

    /// An extended attribute's value.
    pub async fn get_xattr(&self, path: &str, name: &str) -> Result<Vec<u8>> {
        match self.backend.query(Query::GetXattr { at: target(path)?, name: name.to_string() }).await? {
            QueryReply::Xattr(v) => Ok(v),
            other => Err(ClientError::Protocol(format!("expected a value, got {other:?}"))),
        }
    }

    /// The names of a file's extended attributes.
    pub async fn list_xattrs(&self, path: &str) -> Result<Vec<String>> {
        match self.backend.query(Query::ListXattrs(target(path)?)).await? {
            QueryReply::Names(v) => Ok(v),
            other => Err(ClientError::Protocol(format!("expected names, got {other:?}"))),
        }
    }

    /// Removes an extended attribute.
    pub async fn remove_xattr(&self, path: &str, name: &str) -> Result<Inode> {
        self.write_inode(ClientCommand::RemoveXattr { at: target(path)?, name: name.to_string() }).await
    }

    /// Writes `data` into the existing file at `offset` (`None`: appends), extending it if
    /// needed; the rest of the file is untouched.
    pub async fn write_at(&self, path: &str, offset: Option<u64>, data: Bytes) -> Result<Inode> {
        edit::write_at(&self.backend, &target(path)?, offset, edit::body_of(data)).await
    }

    /// Cuts the file to `size` bytes or extends it with zeros.
    pub async fn truncate(&self, path: &str, size: u64) -> Result<Inode> {
        edit::truncate(self.backend.as_ref(), &target(path)?, size).await
    }

    /// Makes `path` the concatenation of `sources` in order, removing them; no byte is copied.
    pub async fn concat(&self, path: &str, sources: &[&str]) -> Result<Inode> {
        let sources = sources.iter().map(|s| target(s)).collect::<Result<Vec<_>>>()?;
        edit::concat(self.backend.as_ref(), &target(path)?, &sources).await
    }

    /// Sets a directory's redundancy policy and, optionally, the chunk size of files created
    /// below it.
    pub async fn set_policy(&self, path: &str, policy: Policy, chunk_size: Option<u32>) -> Result<Inode> {
        self.write_inode(ClientCommand::SetDirPolicy { at: target(path)?, policy: Some(policy), chunk_size }).await
    }

    /// Writes a whole file from an async reader, replacing any file there atomically.
    /// `progress` is called with the number of bytes read so far.
    pub async fn put_reader<R>(&self, path: &str, reader: R, progress: impl Fn(u64) + Send + Sync) -> Result<Inode>
    where
        R: AsyncRead + Send + Unpin,
    {
        let path = target(path)?;
        let mut total = 0u64;
        let body = stream::unfold(reader, |mut r| async move {
            let mut buf = vec![0u8; READ_PIECE];
            match r.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(Bytes::from(buf)), r))
                }
                Err(e) => Some((Err(e), r)),
            }
        })
        .inspect(|piece| {
            if let Ok(b) = piece {
                total += b.len() as u64;
                progress(total);
            }
        });
        datapath::write_stream(&self.backend, &path, body, WriteOptions::default()).await
    }

    /// Writes a whole file from memory.
    pub async fn put_bytes(&self, path: &str, data: Bytes) -> Result<Inode> {
        let body = stream::iter([Ok::<_, std::io::Error>(data)]);
        datapath::write_stream(&self.backend, &target(path)?, body, WriteOptions::default()).await
    }

    /// Opens a file for streaming: its inode and a stream of its bytes `start..end`.
    pub async fn read_stream(
        &self,
        path: &str,
        start: u64,
        end: u64,
    ) -> Result<(Inode, impl Stream<Item = Result<Bytes>> + Send + 'static)> {
        self.read_version(path, None, start, end).await
    }

    /// Reads a whole file into memory.
    pub async fn get_bytes(&self, path: &str) -> Result<Vec<u8>> {
        let (inode, mut s) = self.read_stream(path, 0, u64::MAX).await?;
        let mut out = Vec::with_capacity(inode.size as usize);
        while let Some(piece) = s.next().await {
            out.extend_from_slice(&piece?);
        }
        Ok(out)
    }

    /// Applies `ops` all or none, in order, in one step (see `ClientCommand::Batch`: each
    /// may be guarded by preconditions or locks, or take or release a lock); every
    /// operation's answer, or the first refusal as an error naming its operation.
    pub async fn batch(&self, ops: Vec<ClientCommand>) -> Result<Vec<cairn_core::wire::Reply>> {
        datapath::batch(self.backend.as_ref(), ops).await
    }

    /// The cluster's join token: its secret and its CA's fingerprint, what a new node joins
    /// with (only served to clients on the node's own machine).
    pub async fn join_token(&self) -> Result<String> {
        let req =
            self.backend.http().get(format!("{}/v1/cluster/secret", self.backend.url())).timeout(OPERATOR_DEADLINE);
        let v: serde_json::Value =
            self.backend.send(req).await?.json().await.map_err(|e| ClientError::Protocol(e.to_string()))?;
        v["token"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| ClientError::Protocol("no join token in the answer".into()))
    }

    /// The node's view of the cluster, as served at `GET /v1/cluster`.
    pub async fn cluster(&self) -> Result<serde_json::Value> {
        let req = self.backend.http().get(format!("{}/v1/cluster", self.backend.url())).timeout(OPERATOR_DEADLINE);
        let resp = self.backend.send(req).await?;
        resp.json().await.map_err(|e| ClientError::Protocol(e.to_string()))
    }

    /// Files below `path` with chunks under their policy (`GET /v1/fsck`).
    pub async fn fsck(&self, path: &str) -> Result<serde_json::Value> {
        let path = parse(path)?.to_string();
        let url = self.endpoint("/v1/fsck", &[("path", &path)])?;
        self.json(self.backend.http().get(url)).await
    }

    /// Drains, re-activates or removes a node (`op`: `drain`, `activate`, `remove`).
    pub async fn node_op(&self, id: &str, op: &str, force: bool) -> Result<serde_json::Value> {
        let url = self.endpoint(&format!("/v1/nodes/{id}"), &[("op", op), ("force", &force.to_string())])?;
        self.json(self.backend.http().post(url)).await
    }

    /// Pauses, resumes or throttles a worker on every node (`op`: `pause`, `resume`,
    /// `throttle` with `rate` in bytes per second).
    pub async fn worker_op(&self, name: &str, op: &str, rate: Option<u64>) -> Result<serde_json::Value> {
        let rate = rate.map(|r| r.to_string());
        let mut params = vec![("op", op)];
        if let Some(r) = &rate {
            params.push(("rate", r));
        }
        let url = self.endpoint(&format!("/v1/workers/{name}"), &params)?;
        self.json(self.backend.http().post(url)).await
    }

    /// Checks and runs a coding plan (`POST /v1/code/run`, admin keys only): `plan` is its
    /// JSON; the answer lists the chunks written and the result streams (base64).
    pub async fn run_plan(&self, plan: Vec<u8>) -> Result<serde_json::Value> {
        let url = self.endpoint("/v1/code/run", &[])?;
        let req = self.backend.http().post(url).header(reqwest::header::CONTENT_TYPE, "application/json").body(plan);
        self.json(req).await
    }

    /// Converts the replicated files at or below `path` to the erasure code `ec` (`K+M`)
    /// (`POST /v1/archive`, admin keys only), by the copy holders or, without `pipeline`,
    /// by the node alone; the answer says what was done.
    pub async fn archive(&self, path: &str, ec: &str, pipeline: bool) -> Result<serde_json::Value> {
        let url = self.endpoint("/v1/archive", &[])?;
        let body = serde_json::json!({ "path": path, "ec": ec, "pipeline": pipeline });
        self.json(self.backend.http().post(url).json(&body)).await
    }

    /// Makes an access key (`POST /v1/keys`, admin keys only): `spec` is
    /// `{"name", "read", "write", "admin", "prefixes"}`; the answer carries the secret, shown
    /// this once.
    pub async fn create_key(&self, spec: &serde_json::Value) -> Result<serde_json::Value> {
        let url = self.endpoint("/v1/keys", &[])?;
        self.json(self.backend.http().post(url).json(spec)).await
    }

    /// Every access key's name, id and rights (`GET /v1/keys`).
    pub async fn keys(&self) -> Result<serde_json::Value> {
        self.json(self.backend.http().get(self.endpoint("/v1/keys", &[])?)).await
    }

    /// Removes an access key (`DELETE /v1/keys/{name}`).
    pub async fn delete_key(&self, name: &str) -> Result<()> {
        let mut url = self.endpoint("/v1/keys", &[])?;
        url.path_segments_mut().map_err(|_| ClientError::Protocol("node URL cannot take a path".into()))?.push(name);
        self.backend.send(self.backend.http().delete(url).timeout(OPERATOR_DEADLINE)).await.map(drop)
    }

    /// The URL of `endpoint` on this client's node, with query `params`.
    pub(crate) fn endpoint(&self, endpoint: &str, params: &[(&str, &str)]) -> Result<reqwest::Url> {
        reqwest::Url::parse_with_params(&format!("{}{endpoint}", self.backend.url()), params)
            .map_err(|e| ClientError::api(ErrorCode::InvalidArgument, format!("bad request: {e}")))
    }

    async fn json(&self, req: reqwest::RequestBuilder) -> Result<serde_json::Value> {
        self.json_with(req, OPERATOR_DEADLINE).await
    }

    /// Sends `req` with a deadline and reads its JSON answer.
    pub(crate) async fn json_with(
        &self,
        req: reqwest::RequestBuilder,
        deadline: std::time::Duration,
    ) -> Result<serde_json::Value> {
        self.backend.send(req.timeout(deadline)).await?.json().await.map_err(|e| ClientError::Protocol(e.to_string()))
    }
}
