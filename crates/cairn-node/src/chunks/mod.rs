//! The chunk service: this node's chunk store, and chunks placed on, copied between and
//! fetched from the cluster's nodes.
//!
//! [`ChunkService`] stores and reads chunks here (verified, fsync'd), reports what this node
//! holds to the durability ledger through the metadata, places new chunks on the nodes that
//! are up (`replication`: down a chain, or fanned out) and keeps room (`space`). It reaches
//! the other nodes through the metadata's membership and the peer transport.

mod archive;
mod ec;
mod replication;
mod space;

pub use space::MAX_FILE_SIZE;

use crate::metadata::Metadata;
use crate::peers::{disk_space, NodeInfo, Peers};
use crate::transport::{CallError, PeerReply, PeerRequest};
use crate::{internal, NodeConfig};
use bytes::Bytes;
use cairn_chunk::{ChunkError, ChunkStore};
use cairn_core::placement::Candidate;
use cairn_core::wire::{ClusterCommand, HolderChange, NodeState, Part, Shard};
use cairn_core::{ApiError, ChunkId, ErrorCode};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// `used` as a percentage of `capacity`.
pub(crate) fn fill_percent(used: u64, capacity: u64) -> f64 {
    if capacity == 0 {
        return 100.0;
    }
    used as f64 * 100.0 / capacity as f64
}

fn chunk_err(e: ChunkError) -> ApiError {
    ApiError::new(e.code(), e.to_string())
}

/// This node's chunks, and its part in placing and copying the cluster's.
pub struct ChunkService {
    /// This node's id.
    id: u64,
    /// This node's client URL (what it reports about itself).
    url: String,
    /// The node's configuration (zone, capacity, data directory, replication).
    config: NodeConfig,
    /// The chunk files.
    pub(crate) store: Arc<dyn ChunkStore>,
    meta: Arc<Metadata>,
    /// What this node knows of the others.
    pub(crate) peers: Arc<Peers>,
    /// Chunk reads served to clients and peers.
    served: AtomicU64,
    /// Bytes of chunk writes admitted but not yet stored (see `check_room`).
    reserved: Arc<AtomicU64>,
    /// This node's outgoing data link (`peer_rate`).
    pub(crate) link: crate::transport::link::Link,
}

impl ChunkService {
    /// The chunk service of node `id` (client URL `url`) over `store`.
    pub(crate) fn new(
        id: u64,
        url: String,
        config: NodeConfig,
        store: Arc<dyn ChunkStore>,
        meta: Arc<Metadata>,
        peers: Arc<Peers>,
    ) -> Self {
        let (served, reserved) = (AtomicU64::new(0), Arc::new(AtomicU64::new(0)));
        let link = crate::transport::link::Link::new(config.peer_rate);
        ChunkService { id, url, config, store, meta, peers, served, reserved, link }
    }

    /// Counts one chunk read served.
    pub(crate) fn served_one(&self) {
        self.served.fetch_add(1, Ordering::Relaxed);
    }

    /// Sends `req` to member `to` (its data paced by this node's link) and waits for the
    /// answer (the message's own timeout).
    async fn ask(&self, to: u64, mut req: PeerRequest) -> Result<PeerReply, CallError> {
        self.link.send(req.payload_mut().map_or(0, |p| p.len())).await;
        self.meta.ask(to, req, None).await
    }

    /// What this node reports about itself: zone and space.
    pub fn info(&self) -> NodeInfo {
        let (total, avail) = disk_space(&self.config.data).unwrap_or((0, 0));
        let (capacity, used, free) = match self.config.capacity {
            Some(cap) => {
                let used = self.store.used_bytes();
                (cap, used, cap.saturating_sub(used).min(avail))
            }
            None => (total, total.saturating_sub(avail), avail.saturating_sub(space::METADATA_RESERVE)),
        };
        let chunks_served = self.served.load(Ordering::Relaxed);
        NodeInfo {
            id: self.id,
            url: self.url.clone(),
            zone: self.config.zone.clone(),
            capacity,
            used,
            free,
            chunks_served,
            stored: self.store.used_bytes(),
        }
    }

    /// The nodes chunks may be placed on now: active members that are up (this one
    /// included), weighted by free space. With `fill_limit` (percent), nodes filled past it
    /// are left out (repair and rebalance never fill a node to the brim).
    pub fn candidates(&self, fill_limit: Option<f64>) -> Vec<Candidate> {
        let members = self.meta.members();
        let states = self.meta.node_states(members.iter().map(|(id, _)| *id));
        let mut out = Vec::new();
        for (id, _) in members {
            if states.get(&id).is_some_and(|s| *s != NodeState::Active) {
                continue;
            }
            let info = if id == self.id {
                Some(self.info())
            } else if self.peers.usable(id) {
                self.peers.get(id).1
            } else {
                continue;
            };
            // Until a peer has reported, assume it is like this node.
            let (zone, free, fill) = match info {
                Some(i) => (i.zone, i.free, fill_percent(i.used, i.capacity)),
                None => (self.config.zone.clone(), 1 << 30, 0.0),
            };
            // A node with no room left takes nothing (it would only refuse the chunk).
            if free == 0 || fill_limit.is_some_and(|limit| fill >= limit) {
                continue;
            }
            out.push(Candidate { id, zone, weight: free.max(1) as f64 });
        }
        out
    }

    /// Stores a chunk in this node's own store, fsync'd before returning. Its bytes are
    /// verified against `id` unless `hashed_here` (this process computed `id` from them).
    pub async fn put_chunk_local(&self, id: ChunkId, data: Bytes, hashed_here: bool) -> Result<(), ApiError> {
        let _room = self.check_room(id, Part::Copy, data.len() as u64).await?;
        let store = self.store.clone();
        let put = move || if hashed_here { store.put_hashed(&id, &data) } else { store.put(&id, &data) };
        tokio::task::spawn_blocking(put).await.map_err(internal)?.map(drop).map_err(chunk_err)
    }

    /// Stores a shard of chunk `id` (of `len` bytes) in this node's own store, fsync'd before
    /// returning. Its length is checked against the stripe's.
    pub async fn put_shard_local(&self, id: ChunkId, shard: Shard, len: u32, data: Bytes) -> Result<(), ApiError> {
        let stripe = ec::stripe(shard, len)?;
        if data.len() as u64 != stripe.shard {
            let msg = format!("{shard} of chunk {id} is {} bytes, not {}", data.len(), stripe.shard);
            return Err(ApiError::new(ErrorCode::InvalidArgument, msg));
        }
        let _room = self.check_room(id, Part::Shard(shard), data.len() as u64).await?;
        let store = self.store.clone();
        let put = move || store.put_shard(&id, shard, &data);
        tokio::task::spawn_blocking(put).await.map_err(internal)?.map(drop).map_err(chunk_err)
    }

    /// Bytes `from..to` of a shard in this node's own store (the whole shard CRC-checked; a
    /// corrupt one is quarantined and reported lost).
    pub async fn get_shard_local(&self, id: ChunkId, shard: Shard, from: u32, to: u32) -> Result<Bytes, ApiError> {
        let store = self.store.clone();
        let read = tokio::task::spawn_blocking(move || store.get_shard(&id, shard)).await.map_err(internal)?;
        let data = match read {
            Ok(data) => Bytes::from(data),
            Err(ChunkError::Corrupt { why, .. }) => {
                self.quarantine(id, Part::Shard(shard), &why).await;
                return Err(ApiError::new(ErrorCode::Corrupt, format!("{shard} of chunk {id} is corrupt: {why}")));
            }
            Err(e) => return Err(chunk_err(e)),
        };
        if from > to || to as usize > data.len() {
            let msg = format!("bytes {from}..{to} are not in {shard} of chunk {id} ({} bytes)", data.len());
            return Err(ApiError::new(ErrorCode::InvalidArgument, msg));
        }
        Ok(data.slice(from as usize..to as usize))
    }

    /// Refreshes a chunk's age in this node's own store; false if it is not here.
    pub async fn touch_chunk_local(&self, id: ChunkId) -> Result<bool, ApiError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.touch(&id)).await.map_err(internal)?.map_err(chunk_err)
    }

    /// Reads a chunk, verified against its BLAKE3 id: from the local store, else from
    /// another node.
    pub async fn get_chunk(&self, id: ChunkId) -> Result<Bytes, ApiError> {
        self.read_chunk(id, false, false).await
    }

    /// Reads a chunk for sending to a reader that verifies the BLAKE3 itself: the local store
    /// checks the chunk's CRC32C only. Falls back to other nodes unless `local_only`.
    pub async fn get_chunk_for_transfer(&self, id: ChunkId, local_only: bool) -> Result<Bytes, ApiError> {
        self.read_chunk(id, true, local_only).await
    }

    async fn read_chunk(&self, id: ChunkId, for_transfer: bool, local_only: bool) -> Result<Bytes, ApiError> {
        let store = self.store.clone();
        let local =
            tokio::task::spawn_blocking(
                move || {
                    if for_transfer {
                        store.get_for_transfer(&id)
                    } else {
                        store.get(&id)
                    }
                },
            )
            .await
            .map_err(internal)?;
        if let Err(ChunkError::Corrupt { why, .. }) = &local {
            self.quarantine(id, Part::Copy, why).await;
        }
        match local {
            Ok(data) => Ok(Bytes::from(data)),
            // A missing or corrupt local copy falls over to the other holders, or the shards.
            Err(ChunkError::NotFound(_) | ChunkError::Corrupt { .. }) if !local_only => self.fetch_elsewhere(id).await,
            Err(e) => Err(chunk_err(e)),
        }
    }

    /// Records facts for the durability ledger through Raft.
    pub(crate) async fn report(&self, changes: Vec<HolderChange>) -> Result<(), ApiError> {
        if changes.is_empty() {
            return Ok(());
        }
        self.meta.submit(ClusterCommand::ChunkHolders { changes }.into()).await.map(drop)
    }

    /// Stores a verified copy of chunk `id` here, fetched from the first of `sources` (node
    /// ids) that has a good one. Returns its length.
    pub async fn copy_chunk_from(&self, id: ChunkId, sources: &[u64]) -> Result<u32, ApiError> {
        let mut last = ApiError::new(ErrorCode::NotFound, format!("chunk {id}: no source given"));
        for source in sources {
            match self.fetch_chunk_from(*source, id).await {
                Ok(data) => {
                    let len = data.len() as u32;
                    // Verified again as it is stored: the copy counts only once it is checked.
                    self.put_chunk_local(id, data, false).await?;
                    return Ok(len);
                }
                Err(e) => last = e,
            }
        }
        // No copy to be had: a chunk kept as shards is decoded (and verified) instead.
        if let Some(rec) = self.record(id).await.filter(|r| ec::shards_held(r).is_some()) {
            let data = self.read_striped(id, &rec).await?;
            let len = data.len() as u32;
            self.put_chunk_local(id, data, true).await?;
            return Ok(len);
        }
        Err(last)
    }

    /// Deletes this node's copy or shard of a chunk, then tells the ledger it is gone.
    pub async fn delete_part_local(&self, id: ChunkId, part: Part) -> Result<(), ApiError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.delete(&id, part)).await.map_err(internal)?.map_err(chunk_err)?;
        self.report(vec![HolderChange { part, id, node: self.id, len: 0, held: false }]).await
    }

    /// Takes a chunk or shard file that failed verification out of service and tells the
    /// ledger this node no longer holds a good one.
    pub(crate) async fn quarantine(&self, id: ChunkId, part: Part, why: &str) {
        tracing::warn!(chunk = %id, ?part, "quarantining a corrupt part: {why}");
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || store.quarantine(&id, part)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(chunk = %id, "quarantine failed: {e}"),
            Err(e) => tracing::warn!(chunk = %id, "quarantine failed: {e}"),
        }
        let lost = HolderChange { part, id, node: self.id, len: 0, held: false };
        if let Err(e) = self.report(vec![lost]).await {
            tracing::warn!(chunk = %id, "could not report the corrupt copy: {e}");
        }
    }
}
