//! The asking side: one typed call per message, addressed by node id and resolved through
//! the membership, so a node only ever talks to members (the metadata's own messages —
//! proposals, read indexes, joins and removals — are sent by `metadata`).

use super::{CallError, PeerReply, PeerRequest};
use crate::cluster::{JoinReply, JoinRequest};
use crate::peers::NodeInfo;
use crate::Node;
use bytes::Bytes;
use cairn_core::{ApiError, ChunkId, ErrorCode};
use std::time::Duration;

impl Node {
    /// Sends `req` to member `to` and waits for the answer, at most `timeout` (default: the
    /// message's own).
    pub(crate) async fn ask(
        &self,
        to: u64,
        req: PeerRequest,
        timeout: Option<Duration>,
    ) -> Result<PeerReply, CallError> {
        self.meta.ask(to, req, timeout).await
    }

    /// Fetches a chunk from node `to`'s own store, verified against its id.
    pub(crate) async fn fetch_chunk_from(&self, to: u64, id: ChunkId) -> Result<Bytes, ApiError> {
        match self.ask(to, PeerRequest::GetChunk { id }, None).await? {
            PeerReply::Chunk { data } if ChunkId::of(&data) == id => Ok(data),
            PeerReply::Chunk { .. } => Err(ApiError::new(ErrorCode::Corrupt, format!("chunk {id} arrived corrupt"))),
            r => Err(r.unexpected()),
        }
    }

    /// Has node `to` store a chunk and pass it on down `chain`; the nodes that stored it.
    pub(crate) async fn store_chunk_at(
        &self,
        to: u64,
        id: ChunkId,
        data: Bytes,
        chain: Vec<u64>,
    ) -> Result<Vec<u64>, ApiError> {
        match self.ask(to, PeerRequest::PutChunk { id, chain, data }, None).await? {
            PeerReply::Stored(nodes) => Ok(nodes),
            r => Err(r.unexpected()),
        }
    }

    /// Refreshes chunk `id`'s age on node `to`; whether it is there.
    pub(crate) async fn touch_chunk_at(&self, to: u64, id: ChunkId) -> Result<bool, ApiError> {
        match self.ask(to, PeerRequest::TouchChunk { id }, None).await? {
            PeerReply::Present(p) => Ok(p),
            r => Err(r.unexpected()),
        }
    }

    /// Has node `to` copy chunk `id` from the first good one of `from`; its length.
    pub(crate) async fn copy_chunk_at(&self, to: u64, id: ChunkId, from: Vec<u64>) -> Result<u32, ApiError> {
        match self.ask(to, PeerRequest::CopyChunk { id, from }, None).await? {
            PeerReply::Copied(len) => Ok(len),
            r => Err(r.unexpected()),
        }
    }

    /// Has node `to` delete its copy of chunk `id` and report it gone.
    pub(crate) async fn delete_chunk_at(&self, to: u64, id: ChunkId) -> Result<(), ApiError> {
        match self.ask(to, PeerRequest::DeleteChunk { id }, None).await? {
            PeerReply::Done => Ok(()),
            r => Err(r.unexpected()),
        }
    }

    /// Node `to`'s report on itself, within `timeout`.
    pub(crate) async fn info_of(&self, to: u64, timeout: Duration) -> Result<NodeInfo, ApiError> {
        match self.ask(to, PeerRequest::Info, Some(timeout)).await? {
            PeerReply::Info(info) if info.id == to => Ok(info),
            PeerReply::Info(info) => {
                Err(ApiError::new(ErrorCode::Internal, format!("node {to} reports itself as node {}", info.id)))
            }
            r => Err(r.unexpected()),
        }
    }

    /// Has node `to` (the leader) admit a node.
    pub(crate) async fn join_at(&self, to: u64, req: JoinRequest) -> Result<JoinReply, ApiError> {
        match self.ask(to, PeerRequest::Join(req), None).await? {
            PeerReply::Joined(reply) => Ok(reply),
            r => Err(r.unexpected()),
        }
    }
}
