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
pub mod datapath;
mod file;
mod http;
pub mod json;

pub use file::{Client, File, OpenOptions};
pub use http::HttpBackend;
pub use r#async::AsyncClient;

use bytes::Bytes;
use cairn_core::wire::{Command, Query, QueryReply, Reply};
use cairn_core::{ApiError, ChunkId, ErrorCode};
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

/// Result alias of this crate.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// What the data path needs from a cluster.
pub trait Backend: Send + Sync + 'static {
    /// Stores a chunk durably (on every replica the policy asks for) before returning.
    fn put_chunk(&self, id: ChunkId, data: Bytes) -> impl Future<Output = Result<()>> + Send;
    /// Fetches a chunk; the bytes returned are verified against `id`.
    fn get_chunk(&self, id: ChunkId) -> impl Future<Output = Result<Bytes>> + Send;
    /// Applies a metadata command through consensus.
    fn write(&self, cmd: Command) -> impl Future<Output = Result<Reply>> + Send;
    /// Answers a metadata query (linearizable).
    fn query(&self, q: Query) -> impl Future<Output = Result<QueryReply>> + Send;
}
