//! cairn's node daemon: one process per disk.
//!
//! A node owns a chunk store and a replica of the metadata (openraft over redb), serves the
//! REST API, the internal chunk/metadata/Raft endpoints, and runs background workers. Every
//! node runs the same code; a single node is a one-voter cluster.

#![warn(missing_docs)]

pub mod admin;
pub mod api;
pub mod archive;
pub mod chunks;
mod cluster;
pub mod code;
pub mod config;
mod identity;
pub mod keys;
pub mod ledger;
mod local;
pub mod metadata;
mod node;
pub mod peers;
pub mod pki;
pub mod raft;
mod s3door;
mod serve;
mod sigv4;
pub mod transport;
pub mod worker;

pub use cluster::{JoinReply, JoinRequest};
pub use config::{NodeConfig, Replication};
pub use local::LocalBackend;
pub use node::{Node, RunningNode};

use cairn_core::ErrorCode;

/// Errors of the node.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The data directory cannot be used.
    #[error("data directory {path}: {why}")]
    DataDir {
        /// The directory.
        path: String,
        /// What is wrong.
        why: String,
    },
    /// The listen address cannot be bound.
    #[error("cannot listen on {addr}: {why}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        why: String,
    },
    /// Raft failed to start or stopped.
    #[error("consensus error: {0}")]
    Raft(String),
    /// I/O failure.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl NodeError {
    /// The stable code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            NodeError::Config(_) => ErrorCode::InvalidArgument,
            NodeError::Listen { .. } | NodeError::Raft(_) => ErrorCode::Unavailable,
            NodeError::DataDir { .. } | NodeError::Io(_) => ErrorCode::Internal,
        }
    }
}

/// The error of a call that may succeed later (no leader, a node unreachable): `unavailable`.
pub(crate) fn unavailable(msg: impl Into<String>) -> cairn_core::ApiError {
    cairn_core::ApiError::new(ErrorCode::Unavailable, msg)
}

/// The error of a failure inside this node (a task that died, a database error).
pub(crate) fn internal(e: impl std::fmt::Display) -> cairn_core::ApiError {
    cairn_core::ApiError::new(ErrorCode::Internal, e.to_string())
}

/// Nanoseconds since the Unix epoch, now.
pub(crate) fn now_ns() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}

/// Serves a queue in batches: whenever one of `in_flight` slots is free, takes everything
/// queued (up to `max`, at least one) and runs `serve` on it in a task of its own. Ends when
/// the queue closes or its owner is gone. The metadata proposer and the read rounds run on it.
pub(crate) async fn serve_batches<S, T, F, Fut>(
    owner: std::sync::Weak<S>,
    mut rx: tokio::sync::mpsc::Receiver<T>,
    max: usize,
    in_flight: usize,
    serve: F,
) where
    T: Send + 'static,
    F: Fn(std::sync::Arc<S>, Vec<T>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(in_flight));
    while let Some(first) = rx.recv().await {
        let Ok(permit) = slots.clone().acquire_owned().await else { return };
        let Some(owner) = owner.upgrade() else { return };
        let mut batch = vec![first];
        while batch.len() < max {
            match rx.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        let served = serve(owner, batch);
        tokio::spawn(async move {
            served.await;
            drop(permit);
        });
    }
}
