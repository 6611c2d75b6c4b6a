//! cairn's metadata state machine: commands in, deterministic apply, queries out.
//!
//! The namespace (inodes, directory entries), chunk reference counts with the durability
//! ledger (which nodes hold a verified copy of each chunk), per-directory policies, node
//! states and worker settings live in redb tables (see `docs/formats.md`). [`apply`] executes one
//! command inside a caller-owned write transaction; it is a pure function of the current
//! tables, the command and the clock reading carried in the log entry, so every replica that applies the
//! same log reaches the same state. It knows nothing of Raft or HTTP.
//!
//! Invariants kept by every command:
//! * every inode but the root is named by exactly one directory entry, and its parent is a dir;
//! * a directory's `size` is its number of entries and its `nlink` is 2 + its subdirectories;
//! * a chunk's reference count equals the number of times file chunk lists name it;
//! * a chunk's holders are exactly the nodes whose latest report about it said "held";
//! * a command that fails changes nothing (all checks run before the first write).

#![warn(missing_docs)]

mod apply;
mod data;
mod handles;
mod history;
mod holders;
mod keys;
mod locks;
mod namespace;
mod query;
mod snapshot;
mod tables;
mod usage;

pub use apply::{apply, apply_all, apply_all_except, apply_committed};
pub use data::CONCAT_MAX;
pub use handles::{MAX_HANDLES_PER_COMMAND, MAX_LEASE};
pub use keys::{access_key, access_keys};
pub use locks::locks;
pub use namespace::LINK_MAX;
pub use query::{
    chunk_record, chunk_totals, chunks_above, chunks_below, chunks_of_node, dirs_with_xattr, expired_handles,
    files_below, files_under, held_counts, ledger, node_state, orphans, query, unreferenced_chunks, worker_settings,
    FileChunks,
};
pub use snapshot::{export, import, validate};
pub use tables::{init, ChunkRecord, Holder, META_FORMAT, ROOT_INO, WORKER_NAMES};
pub use usage::{policy_usage, PolicyUsage};

use cairn_core::ErrorCode;

/// Errors of the metadata store itself (not of the commands it applies, which are answers).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetaError {
    /// The database failed.
    #[error("metadata storage error: {0}")]
    Storage(#[from] redb::Error),
    /// A stored record could not be decoded.
    #[error("metadata record unreadable: {0}")]
    Decode(#[from] cairn_core::Error),
    /// The database was written in another metadata format.
    #[error(
        "metadata written in format {found}, this cairn reads format {want}; pre-release formats have no \
         upgrade path: start this node on an empty data dir"
    )]
    Format {
        /// The format found.
        found: u64,
        /// The format this code reads.
        want: u64,
    },
    /// A directory entry or parent link names an inode that does not exist.
    #[error("metadata inconsistent: inode {0} is linked but missing")]
    Dangling(u64),
    /// A snapshot offered for install is malformed.
    #[error("metadata snapshot invalid: {0}")]
    Snapshot(String),
    /// Command `command` of the entry is a batch whose operation `index` was refused after
    /// earlier operations had written: the caller must abort the transaction and apply the
    /// entry again with that command answered by [`cairn_core::wire::Reply::BatchFailed`]
    /// (see [`apply_all_except`]).
    #[error("batch (command {command}) refused at operation {index}: {error}")]
    Undo {
        /// The command's position in the entry.
        command: usize,
        /// The refused operation's position in the batch.
        index: u32,
        /// Why it was refused.
        error: cairn_core::ApiError,
    },
}

impl MetaError {
    /// The stable code of this error.
    pub fn code(&self) -> ErrorCode {
        ErrorCode::Internal
    }
}

macro_rules! storage_from {
    ($($t:ty),*) => {$(
        impl From<$t> for MetaError {
            fn from(e: $t) -> Self {
                MetaError::Storage(e.into())
            }
        }
    )*};
}
storage_from!(redb::TableError, redb::StorageError, redb::CommitError, redb::TransactionError);

/// Result alias of this crate.
pub type Result<T, E = MetaError> = std::result::Result<T, E>;
