//! The async client: whole-file and namespace operations against one node.

use crate::datapath::{self, WriteOptions};
use crate::{Backend, ClientError, HttpBackend, Result};
use bytes::Bytes;
use cairn_core::wire::{Command, DirEntry, Inode, NewAttrs, Query, QueryReply, Reply};
use cairn_core::{ErrorCode, FsPath, Policy};
use futures::stream::{self, Stream, StreamExt};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Size of the pieces read from a local source while uploading.
const READ_PIECE: usize = 1 << 20;

/// An async connection to a cairn cluster through one node.
#[derive(Clone)]
pub struct AsyncClient {
    backend: Arc<HttpBackend>,
}

/// Parses a user-supplied path.
pub(crate) fn parse(path: &str) -> Result<FsPath> {
    FsPath::parse(path).map_err(|e| ClientError::Api(e.into()))
}

impl AsyncClient {
    /// Connects to the node at `url` (no request is made until the first operation).
    pub fn connect(url: &str) -> Result<Self> {
        Ok(AsyncClient { backend: Arc::new(HttpBackend::new(url)?) })
    }

    /// The same client with every chunk read going over HTTP, even from a node on this
    /// machine (see [`HttpBackend::new`]).
    pub fn without_short_circuit(self) -> Self {
        AsyncClient { backend: Arc::new(self.backend.as_ref().clone().without_short_circuit()) }
    }

    /// The backend, for the data path.
    pub fn backend(&self) -> &Arc<HttpBackend> {
        &self.backend
    }

    /// The inode at `path`.
    pub async fn stat(&self, path: &str) -> Result<Inode> {
        datapath::stat(self.backend.as_ref(), &parse(path)?).await
    }

    /// A directory's entries.
    pub async fn list(&self, path: &str) -> Result<Vec<DirEntry>> {
        match self.backend.query(Query::List(parse(path)?)).await? {
            QueryReply::Entries(e) => Ok(e),
            other => Err(ClientError::Protocol(format!("expected entries, got {other:?}"))),
        }
    }

    async fn write_inode(&self, cmd: Command) -> Result<Inode> {
        match self.backend.write(cmd).await? {
            Reply::Inode(i) => Ok(i),
            other => Err(ClientError::Protocol(format!("expected an inode, got {other:?}"))),
        }
    }

    /// Creates a directory (`parents`: and missing ancestors, accepting an existing one).
    pub async fn mkdir(&self, path: &str, parents: bool) -> Result<Inode> {
        self.write_inode(Command::Mkdir { path: parse(path)?, parents, attrs: NewAttrs::dir() }).await
    }

    /// Removes a file or empty directory, or with `recursive` a whole tree.
    pub async fn remove(&self, path: &str, recursive: bool) -> Result<()> {
        self.backend.write(Command::Remove { path: parse(path)?, recursive }).await.map(drop)
    }

    /// Atomically renames `from` to `to`.
    pub async fn rename(&self, from: &str, to: &str) -> Result<Inode> {
        self.write_inode(Command::Rename { from: parse(from)?, to: parse(to)? }).await
    }

    /// Sets a directory's redundancy policy and, optionally, the chunk size of files created
    /// below it.
    pub async fn set_policy(&self, path: &str, policy: Policy, chunk_size: Option<u32>) -> Result<Inode> {
        self.write_inode(Command::SetDirPolicy { path: parse(path)?, policy: Some(policy), chunk_size }).await
    }

    /// Writes a whole file from an async reader, replacing any file there atomically.
    /// `progress` is called with the number of bytes read so far.
    pub async fn put_reader<R>(&self, path: &str, reader: R, progress: impl Fn(u64) + Send + Sync) -> Result<Inode>
    where
        R: AsyncRead + Send + Unpin,
    {
        let path = parse(path)?;
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
        datapath::write_stream(&self.backend, &parse(path)?, body, WriteOptions::default()).await
    }

    /// Opens a file for streaming: its inode and a stream of its bytes `start..end`.
    pub async fn read_stream(
        &self,
        path: &str,
        start: u64,
        end: u64,
    ) -> Result<(Inode, impl Stream<Item = Result<Bytes>> + Send + 'static)> {
        let fs_path = parse(path)?;
        let inode = datapath::stat(self.backend.as_ref(), &fs_path).await?;
        datapath::require_file(&inode, &fs_path)?;
        if inode.chunks().len() > 1 {
            self.backend.spread_reads().await;
        }
        let s = datapath::read_stream(self.backend.clone(), &inode, start, end);
        Ok((inode, s))
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

    /// The cluster secret (only served to clients on the node's own machine).
    pub async fn cluster_secret(&self) -> Result<String> {
        let req = self.backend.http().get(format!("{}/v1/cluster/secret", self.backend.url()));
        let v: serde_json::Value =
            self.backend.send(req).await?.json().await.map_err(|e| ClientError::Protocol(e.to_string()))?;
        v["secret"].as_str().map(str::to_string).ok_or_else(|| ClientError::Protocol("no secret in the answer".into()))
    }

    /// The node's view of the cluster, as served at `GET /v1/cluster`.
    pub async fn cluster(&self) -> Result<serde_json::Value> {
        let req = self.backend.http().get(format!("{}/v1/cluster", self.backend.url()));
        let resp = self.backend.send(req).await?;
        resp.json().await.map_err(|e| ClientError::Protocol(e.to_string()))
    }

    /// Files below `path` with chunks under their policy (`GET /v1/fsck`).
    pub async fn fsck(&self, path: &str) -> Result<serde_json::Value> {
        let path = parse(path)?.to_string();
        let url = self.url("/v1/fsck", &[("path", &path)])?;
        self.json(self.backend.http().get(url)).await
    }

    /// Drains, re-activates or removes a node (`op`: `drain`, `activate`, `remove`).
    pub async fn node_op(&self, id: &str, op: &str, force: bool) -> Result<serde_json::Value> {
        let url = self.url(&format!("/v1/nodes/{id}"), &[("op", op), ("force", &force.to_string())])?;
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
        let url = self.url(&format!("/v1/workers/{name}"), &params)?;
        self.json(self.backend.http().post(url)).await
    }

    fn url(&self, endpoint: &str, params: &[(&str, &str)]) -> Result<reqwest::Url> {
        reqwest::Url::parse_with_params(&format!("{}{endpoint}", self.backend.url()), params)
            .map_err(|e| ClientError::api(ErrorCode::InvalidArgument, format!("bad request: {e}")))
    }

    async fn json(&self, req: reqwest::RequestBuilder) -> Result<serde_json::Value> {
        self.backend.send(req).await?.json().await.map_err(|e| ClientError::Protocol(e.to_string()))
    }
}
