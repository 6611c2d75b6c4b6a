//! The node's own [`Backend`]: the data path run inside the node over its local chunk store
//! and its Raft replica. The REST handlers use it, so they share the client's data path.

use crate::Node;
use bytes::Bytes;
use cairn_client::{Backend, ClientError, Frames, Result};
use cairn_core::wire::{ClientCommand, Query, QueryReply, Reply};
use cairn_core::{ChunkId, Policy};
use std::sync::Arc;

/// A backend over this node's store and metadata.
#[derive(Clone)]
pub struct LocalBackend {
    node: Arc<Node>,
}

impl LocalBackend {
    /// A backend for `node`.
    pub fn new(node: Arc<Node>) -> Self {
        LocalBackend { node }
    }
}

impl Backend for LocalBackend {
    async fn put_chunk(&self, id: ChunkId, data: Bytes, policy: Policy) -> Result<()> {
        // The data path hashed these bytes in this process to get `id`.
        self.node.chunks.put_chunk(id, data, policy, true).await.map_err(ClientError::Api)
    }

    async fn get_chunk(&self, id: ChunkId) -> Result<Frames> {
        self.node.chunks.get_chunk(id).await.map(Frames::from).map_err(ClientError::Api)
    }

    async fn get_chunk_range(&self, id: ChunkId, from: usize, to: usize) -> Result<Vec<Bytes>> {
        let data = self.node.chunks.read_range(id, from as u64, to as u64).await.map_err(ClientError::Api)?;
        if data.len() != to - from {
            let msg = format!("chunk {id} is shorter than an extent says ({} of {} bytes)", data.len(), to - from);
            return Err(ClientError::api(cairn_core::ErrorCode::Corrupt, msg));
        }
        Ok(vec![data])
    }

    async fn write(&self, cmd: ClientCommand) -> Result<Reply> {
        self.node.write(cmd).await.map_err(ClientError::Api)
    }

    async fn query(&self, q: Query) -> Result<QueryReply> {
        self.node.meta.query(q).await.map_err(ClientError::Api)
    }
}
