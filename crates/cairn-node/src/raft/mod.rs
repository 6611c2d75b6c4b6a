//! The openraft glue: type configuration, the redb-backed log store and state machine, and
//! the HTTP network. Openraft types stay inside this module and the node's RPC handlers.
//!
//! The Raft log and the metadata state machine share one redb database (`meta.redb`). Log
//! appends commit with `Durability::Immediate` (an fsync: an entry is durable before openraft
//! counts it); state machine applies commit with `Durability::None` and become durable with the
//! next log append or snapshot. After a crash the state machine is therefore at or behind the
//! log, never ahead, and openraft re-applies the missing entries from the log. Logs are only
//! purged after a snapshot, and building a snapshot commits durably, so no entry is purged
//! before its effect is on disk.

// openraft's trait signatures fix its (large) storage error type; boxing it is not an option.
#![allow(clippy::result_large_err)]

pub mod feed;
pub mod log;
pub mod network;
mod records;
pub mod sm;

use cairn_core::wire::{ApplyResult, Request};
use openraft::TokioRuntime;
use serde::{Deserialize, Serialize};

openraft::declare_raft_types!(
    /// cairn's Raft type configuration.
    pub TypeConfig:
        D = Request,
        R = Vec<ApplyResult>,
        NodeId = u64,
        Node = Member,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = tokio::fs::File,
        AsyncRuntime = TokioRuntime,
);

/// A member as the membership records it: where clients reach it and where its peers do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Its client URL (REST; what status shows and clients are sent to).
    pub url: String,
    /// Its peer URL (Raft, chunk transfer between nodes).
    pub peer: String,
}

impl std::fmt::Display for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (peers: {})", self.url, self.peer)
    }
}

/// The Raft handle cairn runs.
pub type Raft = openraft::Raft<TypeConfig>;
/// openraft's storage error for our node id.
pub type StorageError = openraft::StorageError<u64>;

/// Table of Raft-owned records in the shared database.
pub(crate) const RAFT_LOG: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("raft_log");
/// Vote, committed id, purge point, applied id, membership and the current snapshot.
pub(crate) const RAFT_STATE: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("raft_state");

/// Wraps any error as an openraft storage error.
pub(crate) fn sto_err(
    subject: openraft::ErrorSubject<u64>,
    verb: openraft::ErrorVerb,
    e: impl std::fmt::Display,
) -> StorageError {
    let io = std::io::Error::other(e.to_string());
    openraft::StorageIOError::new(subject, verb, &io).into()
}
