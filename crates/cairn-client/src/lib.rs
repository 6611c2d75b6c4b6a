//! cairn's one data path, and the client library built on it.
//!
//! [`Backend`] is the seam between the data path and a cluster: chunk puts and gets, metadata
//! writes and queries. [`HttpBackend`] reaches a node over HTTP; the node itself implements
//! the trait over its local store and Raft, so the REST API, the CLI and library users all run
//! the same [`datapath`] code: chunking, hashing, verified reads, the commit protocol.
//!
//! [`AsyncClient`] is the async API; [`Client`] and [`File`] are the blocking API shaped like
//! `std::fs`, so code can swap `std::fs::File` for a cairn file.

#![warn(missing_docs)]

mod r#async;
pub mod cache;
mod client;
pub mod datapath;
pub mod edit;
mod file;
mod guarded;
mod history;
mod http;
pub mod json;
mod locks;
mod read_dir;
pub mod tls;

pub use client::Client;
pub use file::{File, OpenOptions};
pub use guarded::Guarded;
pub use http::{Credentials, HttpBackend};
pub use locks::{LockGuard, LockOptions};
pub use r#async::{AsyncClient, Page};
pub use read_dir::ReadDir;

use bytes::Bytes;
use cairn_core::wire::{ClientCommand, Query, QueryReply, Reply};
use cairn_core::{ApiError, ChunkId, ErrorCode, Policy};
use std::future::Future;

/// Errors of the client and data path.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The cluster answered with an error.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The cluster could not be reached.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The cluster's answer made no sense.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// A local I/O error (reading a source, writing a destination).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl ClientError {
    /// The stable code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            ClientError::Api(e) => e.code,
            ClientError::Unavailable(_) => ErrorCode::Unavailable,
            ClientError::Protocol(_) | ClientError::Io(_) => ErrorCode::Internal,
        }
    }

    /// Shorthand for an API error.
    pub fn api(code: ErrorCode, msg: impl Into<String>) -> Self {
        ClientError::Api(ApiError::new(code, msg))
    }
}

impl From<ClientError> for ApiError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Api(a) => a,
            other => ApiError::new(other.code(), other.to_string()),
        }
    }
}

impl From<ClientError> for std::io::Error {
    fn from(e: ClientError) -> Self {
        use std::io::ErrorKind as K;
        let kind = match e.code() {
            ErrorCode::NotFound => K::NotFound,
            ErrorCode::Exists => K::AlreadyExists,
            ErrorCode::NotADirectory => K::NotADirectory,
            ErrorCode::IsADirectory => K::IsADirectory,
            ErrorCode::NotEmpty => K::DirectoryNotEmpty,
            ErrorCode::PermissionDenied => K::PermissionDenied,
            ErrorCode::NoSpace => K::StorageFull,
            ErrorCode::TooLarge => K::FileTooLarge,
            ErrorCode::InvalidArgument => K::InvalidInput,
            ErrorCode::Unavailable => K::ConnectionRefused,
            ErrorCode::Corrupt => K::InvalidData,
            _ => K::Other,
        };
        match e {
            ClientError::Io(io) => io,
            other => std::io::Error::new(kind, other),
        }
    }
}

/// A chunk's bytes as the buffers they arrived in (network frames), so reading a chunk never
/// copies it just to make it contiguous.
#[derive(Debug, Clone, Default)]
pub struct Frames(pub Vec<Bytes>);

impl Frames {
    /// Total length in bytes.
    pub fn len(&self) -> usize {
        self.0.iter().map(Bytes::len).sum()
    }

    /// True if there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(Bytes::is_empty)
    }

    /// Bytes `from..to` as views into the frames (no copy).
    pub fn slice(&self, from: usize, to: usize) -> Vec<Bytes> {
        let mut out = Vec::new();
        let mut at = 0;
        for f in &self.0 {
            let (start, end) = (at, at + f.len());
            at = end;
            if end <= from || start >= to {
                continue;
            }
            out.push(f.slice(from.max(start) - start..to.min(end) - start));
        }
        out
    }

    /// Bytes `from..to` of chunk `id`'s frames, or an error if the chunk is shorter.
    pub fn checked_slice(&self, id: ChunkId, from: usize, to: usize) -> Result<Vec<Bytes>> {
        if self.len() < to {
            let msg = format!("chunk {id} is {} bytes, an extent reaches {to}", self.len());
            return Err(ClientError::api(ErrorCode::Corrupt, msg));
        }
        Ok(self.slice(from, to))
    }

    /// The bytes as one buffer (copies only if there is more than one frame).
    pub fn into_contiguous(self) -> Bytes {
        match <[Bytes; 1]>::try_from(self.0) {
            Ok([one]) => one,
            Err(frames) => frames.concat().into(),
        }
    }
}

impl From<Bytes> for Frames {
    fn from(b: Bytes) -> Self {
        Frames(vec![b])
    }
}

/// Result alias of this crate.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// What the data path needs from a cluster.
pub trait Backend: Send + Sync + 'static {
    /// Stores a chunk durably on the nodes placement picks for `policy` (all of them, or a
    /// majority when some are down) before returning.
    fn put_chunk(&self, id: ChunkId, data: Bytes, policy: Policy) -> impl Future<Output = Result<()>> + Send;
    /// Fetches a chunk; the bytes returned are verified against `id`.
    fn get_chunk(&self, id: ChunkId) -> impl Future<Output = Result<Frames>> + Send;
    /// Fetches bytes `from..to` of a chunk (a small read of a large chunk: only those bytes
    /// travel, and of an erasure-coded chunk only the shards that hold them are read). The
    /// node checked the copy's or shards' checksums; the chunk's BLAKE3 covers whole chunks
    /// only. By default the whole chunk, verified, sliced.
    fn get_chunk_range(&self, id: ChunkId, from: usize, to: usize) -> impl Future<Output = Result<Vec<Bytes>>> + Send {
        async move { self.get_chunk(id).await?.checked_slice(id, from, to) }
    }
    /// Applies a metadata command through consensus.
    fn write(&self, cmd: ClientCommand) -> impl Future<Output = Result<Reply>> + Send;
    /// Answers a metadata query (linearizable).
    fn query(&self, q: Query) -> impl Future<Output = Result<QueryReply>> + Send;
}
