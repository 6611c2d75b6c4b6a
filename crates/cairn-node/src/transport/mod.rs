//! Everything nodes say to each other, as typed messages over one [`Transport`].
//!
//! A node asks another by id: [`PeerRequest`] in, [`PeerReply`] (or an [`ApiError`]) out.
//! The receiving side answers every message with one dispatcher ([`serve::handle`]), whatever
//! carried it. Two transports carry them: [`http::HttpTransport`] (HTTP over mutual TLS, to the
//! peer door, Raft on connections of its own) and [`mem::MemNet`] (in-process, with message
//! loss, delay and partitions drawn from a seed, for tests of whole clusters under faults).
//! Node ids are resolved to addresses from the membership only: no message names a URL.

pub mod calls;
pub mod http;
pub mod link;
pub mod mem;
pub mod serve;

use crate::cluster::{JoinReply, JoinRequest};
use crate::peers::NodeInfo;
use crate::raft::TypeConfig;
use bytes::Bytes;
use cairn_core::wire::{ApplyResult, Command, Part, Shard};
use cairn_core::{ApiError, ChunkId, ErrorCode};
use futures::future::BoxFuture;
use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Longest a node may take to fetch and store, or delete, one chunk copy for another node.
const COPY_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest a forwarded write, read barrier or removal may take on the leader.
const LEADER_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest the leader may take to admit a node (catching it up, a snapshot included).
const JOIN_TIMEOUT: Duration = Duration::from_secs(320);
/// Longest a liveness poll waits.
const INFO_TIMEOUT: Duration = Duration::from_secs(1);

/// A message from one node to another.
#[derive(Debug, Serialize, Deserialize)]
pub enum PeerRequest {
    /// Raft: append entries (and heartbeats).
    Append(AppendEntriesRequest<TypeConfig>),
    /// Raft: request a vote.
    Vote(VoteRequest<u64>),
    /// Raft: one piece of a snapshot.
    Snapshot(InstallSnapshotRequest<TypeConfig>),
    /// The leader's read index, for a follower's linearizable read.
    ReadIndex,
    /// Propose a batch of commands as one Raft entry (a follower forwarding writes).
    Propose(Vec<Command>),
    /// Admit a node (a follower forwarding a join to the leader; a node that moved).
    Join(JoinRequest),
    /// Remove a node from the cluster (forwarded to the leader).
    RemoveNode {
        /// The node to remove.
        id: u64,
        /// Even if chunks drop below policy.
        force: bool,
    },
    /// What the node reports about itself (the liveness poll).
    Info,
    /// Store a chunk here (verified against its id) and pass it on down `chain` (member ids,
    /// maybe none); answered with the nodes that stored it.
    PutChunk {
        /// The chunk.
        id: ChunkId,
        /// Who stores it after this node, in order.
        chain: Vec<u64>,
        /// Its bytes (carried beside the message, not inside it).
        #[serde(skip)]
        data: Bytes,
    },
    /// A chunk from this node's own store (CRC-checked; the asker checks the BLAKE3).
    GetChunk {
        /// The chunk.
        id: ChunkId,
    },
    /// Refresh a chunk's age here; answered with whether it is here.
    TouchChunk {
        /// The chunk.
        id: ChunkId,
    },
    /// Fetch a chunk from the first good one of `from` (member ids) and store it verified.
    CopyChunk {
        /// The chunk.
        id: ChunkId,
        /// Nodes holding it, tried in order.
        from: Vec<u64>,
    },
    /// Delete this node's copy or shard of a chunk and report it gone.
    DeleteChunk {
        /// The chunk.
        id: ChunkId,
        /// Which part.
        part: Part,
    },
    /// Store a shard of chunk `id` here (CRC'd as it is written; the sender computed it from
    /// verified bytes); answered with `Stored([this node])`.
    PutShard {
        /// The chunk the shard belongs to.
        id: ChunkId,
        /// Which shard, of which code.
        shard: Shard,
        /// The chunk's length (the ledger's record of it).
        len: u32,
        /// The shard's bytes (carried beside the message, not inside it).
        #[serde(skip)]
        data: Bytes,
    },
    /// Encode shards of chunk `id` (code `k`+`m`) from this node's own copy and store each
    /// on its node (archival); answered with the (index, node) pairs stored.
    EncodeShards {
        /// The chunk.
        id: ChunkId,
        /// Data shards of the code.
        k: u8,
        /// Parity shards of the code.
        m: u8,
        /// (shard index, node to store it on), at most 48.
        jobs: Vec<(u8, u64)>,
    },
    /// Bytes `from..to` of a shard from this node's own store (the whole shard CRC-checked
    /// first).
    GetShard {
        /// The chunk the shard belongs to.
        id: ChunkId,
        /// Which shard.
        shard: Shard,
        /// First byte wanted.
        from: u32,
        /// End of the bytes wanted (exclusive).
        to: u32,
    },
    /// Run this node's programs of a coding plan (its JSON, checked again here) as run `run`;
    /// answered with what their WRITE steps stored, once they finish.
    PlanRun {
        /// The run, chosen by the node that coordinates it.
        run: u64,
        /// The plan's JSON.
        plan: Vec<u8>,
    },
    /// The buffer at `position` of input `input` of program `program` in run `run` (push).
    PlanPush {
        /// The run.
        run: u64,
        /// The receiving program.
        program: String,
        /// Its input.
        input: String,
        /// The buffer's position in the stream (0, 1, ...).
        position: u64,
        /// The buffer (carried beside the message, not inside it).
        #[serde(skip)]
        data: Bytes,
    },
    /// The output buffer at `position` of program `program` in run `run` (pull).
    PlanPull {
        /// The run.
        run: u64,
        /// The producing program.
        program: String,
        /// The buffer's position in the stream.
        position: u64,
    },
    /// Stop run `run` here (another part of it failed): its waiting programs fail at once.
    PlanAbort {
        /// The run.
        run: u64,
    },
}

/// A node's answer to a [`PeerRequest`] that it carried out (failures are [`ApiError`]s).
#[derive(Debug, Serialize, Deserialize)]
pub enum PeerReply {
    /// Raft's answer to [`PeerRequest::Append`].
    Append(Result<AppendEntriesResponse<u64>, RaftError<u64>>),
    /// Raft's answer to [`PeerRequest::Vote`].
    Vote(Result<VoteResponse<u64>, RaftError<u64>>),
    /// Raft's answer to [`PeerRequest::Snapshot`].
    Snapshot(Result<InstallSnapshotResponse<u64>, RaftError<u64, InstallSnapshotError>>),
    /// The leader's read index (none before anything was committed).
    ReadIndex(Option<u64>),
    /// One answer per proposed command.
    Applied(Vec<ApplyResult>),
    /// The node was admitted.
    Joined(JoinReply),
    /// A removal's outcome, for the operator.
    Removed(String),
    /// The node's report on itself.
    Info(NodeInfo),
    /// The nodes that stored a chunk, in chain order.
    Stored(Vec<u64>),
    /// A chunk's bytes.
    Chunk {
        /// The bytes (carried beside the message, not inside it).
        #[serde(skip)]
        data: Bytes,
    },
    /// Whether the chunk is here.
    Present(bool),
    /// The length of the chunk copied.
    Copied(u32),
    /// The shards an `EncodeShards` stored: (index, node).
    Encoded(Vec<(u8, u64)>),
    /// The chunks a node's programs of a coding plan stored: (program, chunk, length).
    PlanDone(Vec<(String, ChunkId, u64)>),
    /// Done.
    Done,
}

impl PeerRequest {
    /// True for consensus traffic, which never waits behind bulk data.
    pub fn is_consensus(&self) -> bool {
        matches!(
            self,
            PeerRequest::Append(_) | PeerRequest::Vote(_) | PeerRequest::Snapshot(_) | PeerRequest::ReadIndex
        )
    }

    /// How long the asker waits for an answer, unless it says otherwise.
    pub fn timeout(&self) -> Duration {
        match self {
            PeerRequest::Info => INFO_TIMEOUT,
            PeerRequest::Propose(_) | PeerRequest::ReadIndex | PeerRequest::RemoveNode { .. } => LEADER_TIMEOUT,
            PeerRequest::Join(_) => JOIN_TIMEOUT,
            PeerRequest::PlanRun { .. } => crate::code::RUN_TIMEOUT,
            _ => COPY_TIMEOUT,
        }
    }

    /// The message's name, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            PeerRequest::Append(_) => "append",
            PeerRequest::Vote(_) => "vote",
            PeerRequest::Snapshot(_) => "snapshot",
            PeerRequest::ReadIndex => "read-index",
            PeerRequest::Propose(_) => "propose",
            PeerRequest::Join(_) => "join",
            PeerRequest::RemoveNode { .. } => "remove-node",
            PeerRequest::Info => "info",
            PeerRequest::PutChunk { .. } => "put-chunk",
            PeerRequest::GetChunk { .. } => "get-chunk",
            PeerRequest::TouchChunk { .. } => "touch-chunk",
            PeerRequest::CopyChunk { .. } => "copy-chunk",
            PeerRequest::DeleteChunk { .. } => "delete-chunk",
            PeerRequest::PutShard { .. } => "put-shard",
            PeerRequest::GetShard { .. } => "get-shard",
            PeerRequest::EncodeShards { .. } => "encode-shards",
            PeerRequest::PlanRun { .. } => "plan-run",
            PeerRequest::PlanPush { .. } => "plan-push",
            PeerRequest::PlanPull { .. } => "plan-pull",
            PeerRequest::PlanAbort { .. } => "plan-abort",
        }
    }

    /// The bytes carried beside the message, if it has a place for them.
    pub fn payload_mut(&mut self) -> Option<&mut Bytes> {
        match self {
            PeerRequest::PutChunk { data, .. }
            | PeerRequest::PutShard { data, .. }
            | PeerRequest::PlanPush { data, .. } => Some(data),
            _ => None,
        }
    }
}

impl PeerReply {
    /// The bytes carried beside the message, if it has a place for them.
    pub fn payload_mut(&mut self) -> Option<&mut Bytes> {
        match self {
            PeerReply::Chunk { data } => Some(data),
            _ => None,
        }
    }

    /// The error for an answer that does not fit the question (a peer running other code).
    pub(crate) fn unexpected(self) -> ApiError {
        ApiError::new(ErrorCode::Internal, "a peer answered with a message that does not fit the question")
    }
}

/// Why a message got no answer.
#[derive(Debug, Clone)]
pub enum CallError {
    /// It never reached the node (no connection, or lost on the way there): it was not
    /// carried out, so sending it again is safe.
    NotDelivered(ApiError),
    /// The node refused or failed it, or it may have been carried out but its answer was lost
    /// or came too late (`unavailable`: the outcome is unknown).
    Failed(ApiError),
}

impl CallError {
    /// The error, whichever way the call failed.
    pub fn error(&self) -> &ApiError {
        match self {
            CallError::NotDelivered(e) | CallError::Failed(e) => e,
        }
    }
}

impl From<CallError> for ApiError {
    fn from(e: CallError) -> Self {
        match e {
            CallError::NotDelivered(e) | CallError::Failed(e) => e,
        }
    }
}

impl From<ApiError> for CallError {
    fn from(e: ApiError) -> Self {
        CallError::Failed(e)
    }
}

/// Carries messages to other nodes.
pub trait Transport: Send + Sync {
    /// Sends `req` to node `to`, reached at `addr` (its peer address from the membership),
    /// and waits at most `timeout` for the answer.
    fn call(
        &self,
        to: u64,
        addr: &str,
        req: PeerRequest,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<PeerReply, CallError>>;

    /// Checks a peer address a joining node announces (its form, not that it answers).
    fn check_addr(&self, addr: &str) -> Result<(), ApiError>;
}

/// How a node reaches its peers.
#[derive(Clone, Default)]
pub enum PeerNet {
    /// HTTP over mutual TLS, on the peer door (`--peer-listen`).
    #[default]
    Tls,
    /// In this process, through a simulated network (tests).
    Memory(std::sync::Arc<mem::MemNet>),
}
