//! Chunks on many nodes: placing a new chunk's copies (down a chain, or fanned out),
//! fetching a chunk this node lacks, and having other nodes copy, refresh or delete theirs.

use super::ChunkService;
use crate::transport::{PeerReply, PeerRequest};
use crate::unavailable;
use crate::Replication;
use bytes::Bytes;
use cairn_core::wire::{HolderChange, Part};
use cairn_core::{ApiError, ChunkId, ErrorCode};
use cairn_meta::ChunkRecord;

impl ChunkService {
    /// The nodes this replica's ledger credits with a copy of `id`.
    fn holders_here(&self, id: ChunkId) -> Vec<u64> {
        self.record_here(id).map(|r| r.nodes().collect()).unwrap_or_default()
    }

    /// Chunk `id`'s ledger record as this replica has it.
    pub(crate) fn record_here(&self, id: ChunkId) -> Option<ChunkRecord> {
        use redb::ReadableDatabase;
        let txn = self.meta.db.begin_read().ok()?;
        cairn_meta::chunk_record(&txn, &id).ok()?
    }

    /// Chunk `id`'s ledger record: this replica's, or, if it has none with holders (a chunk
    /// stored a moment ago through another node), the one read after a read barrier.
    pub(crate) async fn record(&self, id: ChunkId) -> Option<ChunkRecord> {
        match self.record_here(id) {
            Some(r) if !r.holders.is_empty() => Some(r),
            _ => {
                self.meta.read_barrier().await.ok()?;
                self.record_here(id)
            }
        }
    }

    /// Fetches a chunk this node does not hold from the other members, verified: from a
    /// copy if any node holds one, else from its shards.
    pub(crate) async fn fetch_elsewhere(&self, id: ChunkId) -> Result<Bytes, ApiError> {
        let rec = self.record(id).await;
        let copies = rec.as_ref().is_none_or(|r| r.holders.iter().any(|h| h.part == Part::Copy));
        if copies {
            match self.fetch_from_peers(id).await {
                Err(e) if e.code == ErrorCode::NotFound && rec.is_some() => {}
                done => return done,
            }
        }
        match rec {
            Some(rec) => self.read_striped(id, &rec).await,
            None => self.fetch_from_peers(id).await,
        }
    }

    /// Fetches a chunk this node does not hold from the other members' copies, verified.
    pub(crate) async fn fetch_from_peers(&self, id: ChunkId) -> Result<bytes::Bytes, ApiError> {
        // The holders the ledger knows (as of this replica) first, up ones before the others;
        // then every other member, in case the ledger is behind.
        let holders = self.holders_here(id);
        let mut members: Vec<(bool, bool, u64)> = self
            .meta
            .members()
            .into_iter()
            .filter(|(nid, _)| *nid != self.id)
            .map(|(nid, _)| (!holders.contains(&nid), !self.peers.usable(nid), nid))
            .collect();
        members.sort();
        for (_, _, nid) in members {
            if let Ok(data) = self.fetch_chunk_from(nid, id).await {
                return Ok(data);
            }
        }
        Err(ApiError::new(ErrorCode::NotFound, format!("chunk {id} is on no reachable node")))
    }
}

impl ChunkService {
    /// Stores a chunk on the nodes placement picks among those up: all the copies `policy` asks for
    /// (clipped to the cluster's size), or at least a majority when too few can be reached.
    /// A target that fails is replaced by the next node in placement order. The client
    /// uploads once; this node fans the copies out. Before acknowledging, the nodes that
    /// stored a verified copy are recorded in the durability ledger; a chunk stored on fewer
    /// than the policy's copies thereby shows as under-replicated until repair adds the rest.
    /// `hashed_here`: see [`Node::put_chunk_local`] (peers always verify what they receive).
    pub async fn put_chunk(
        &self,
        id: ChunkId,
        data: bytes::Bytes,
        policy: cairn_core::Policy,
        hashed_here: bool,
    ) -> Result<(), ApiError> {
        if let Some(km) = policy.ec() {
            return self.put_chunk_striped(id, data, km, hashed_here).await;
        }
        let wanted = policy.copies().clamp(1, self.meta.members().len().max(1));
        let candidates = self.candidates(None);
        if candidates.is_empty() {
            return Err(self.nowhere(id));
        }
        let mut ranked = cairn_core::placement::place(&id, &candidates, candidates.len()).into_iter();
        let (mut stored, mut last_error) = (Vec::new(), None);
        loop {
            let round: Vec<u64> = ranked.by_ref().take(wanted - stored.len()).collect();
            if round.is_empty() {
                break;
            }
            let results = match self.config.replication {
                Replication::Fanout => self.fan_out(id, &data, &round, hashed_here).await,
                Replication::Chain => self.chain(id, &data, &round, hashed_here).await,
            };
            for (t, r) in round.iter().zip(results) {
                match r {
                    Ok(()) => stored.push(*t),
                    // Bad bytes are refused by every node alike: no point trying others.
                    Err(e) if e.code == ErrorCode::InvalidArgument => return Err(e),
                    Err(e) => last_error = Some(e),
                }
            }
            if stored.len() == wanted {
                break;
            }
        }
        if stored.len() < wanted && stored.len() <= wanted / 2 {
            return Err(last_error.filter(|e| e.code == ErrorCode::NoSpace).unwrap_or_else(|| {
                unavailable(format!(
                    "chunk {id} reached {} of {wanted} nodes; fewer than a majority are up",
                    stored.len()
                ))
            }));
        }
        if stored.len() < wanted {
            tracing::warn!(chunk = %id, stored = stored.len(), wanted, "chunk stored under-replicated");
        }
        let len = data.len() as u32;
        self.report(
            stored.into_iter().map(|node| HolderChange { part: Part::Copy, id, node, len, held: true }).collect(),
        )
        .await
    }

    /// Sends a copy to each of `targets` in parallel; one result per target.
    async fn fan_out(
        &self,
        id: ChunkId,
        data: &bytes::Bytes,
        targets: &[u64],
        hashed_here: bool,
    ) -> Vec<Result<(), ApiError>> {
        let puts = targets.iter().map(|t| {
            let data = data.clone();
            async move {
                if *t == self.id {
                    return self.put_chunk_local(id, data, hashed_here).await;
                }
                self.store_chunk_at(*t, id, data, Vec::new()).await.map(drop)
            }
        });
        futures::future::join_all(puts).await
    }

    /// Sends the chunk down a chain through `targets` in order (each stores its copy while
    /// passing the chunk on); one result per target.
    async fn chain(
        &self,
        id: ChunkId,
        data: &bytes::Bytes,
        targets: &[u64],
        hashed_here: bool,
    ) -> Vec<Result<(), ApiError>> {
        let Some((first, rest)) = targets.split_first() else { return Vec::new() };
        let stored = if *first == self.id {
            self.put_chunk_chained(id, data.clone(), rest, hashed_here).await
        } else {
            self.store_chunk_at(*first, id, data.clone(), rest.to_vec()).await
        };
        let stored = match stored {
            Ok(stored) => stored,
            Err(e) if e.code == ErrorCode::InvalidArgument => return targets.iter().map(|_| Err(e.clone())).collect(),
            Err(_) => Vec::new(),
        };
        // A broken link cuts off the nodes behind it: send those their copies directly.
        let missed: Vec<u64> = targets.iter().filter(|t| !stored.contains(t)).copied().collect();
        let mut retried = self.fan_out(id, data, &missed, hashed_here).await.into_iter();
        targets
            .iter()
            .map(|t| if stored.contains(t) { Ok(()) } else { retried.next().expect("one per missed") })
            .collect()
    }

    /// One link of a chain: stores the chunk here and, at the same time, passes it to
    /// `next[0]` with the rest of the chain. Returns the nodes that stored it, this one first.
    pub async fn put_chunk_chained(
        &self,
        id: ChunkId,
        data: bytes::Bytes,
        next: &[u64],
        hashed_here: bool,
    ) -> Result<Vec<u64>, ApiError> {
        // Bad bytes stop here, before they cost the rest of the chain anything.
        if !hashed_here && ChunkId::of(&data) != id {
            return Err(ApiError::new(ErrorCode::InvalidArgument, format!("chunk {id}: data does not match its id")));
        }
        let onward = async {
            match next.split_first() {
                Some((first, rest)) => {
                    self.store_chunk_at(*first, id, data.clone(), rest.to_vec()).await.unwrap_or_else(|e| {
                        tracing::warn!(chunk = %id, "chain broke after this node: {e}");
                        Vec::new()
                    })
                }
                None => Vec::new(),
            }
        };
        let (here, mut stored) = tokio::join!(self.put_chunk_local(id, data.clone(), true), onward);
        match here {
            Ok(()) => stored.insert(0, self.id),
            // Bad bytes are refused alike everywhere; other failures leave the rest standing.
            Err(e) if e.code == ErrorCode::InvalidArgument || stored.is_empty() => return Err(e),
            Err(e) => tracing::warn!(chunk = %id, "storing this link's copy failed: {e}"),
        }
        Ok(stored)
    }

    /// Refreshes a chunk's age wherever it is held (the intent step of a commit); true if at
    /// least one holder has it.
    pub(crate) async fn touch_chunk(&self, id: ChunkId) -> bool {
        let members = self.meta.members();
        let touches = members.iter().map(|(nid, _)| self.has_copy(*nid, id));
        futures::future::join_all(touches).await.into_iter().any(|present| present)
    }

    /// True if node `target` holds chunk `id`; refreshes its age there.
    pub(crate) async fn has_copy(&self, target: u64, id: ChunkId) -> bool {
        if target == self.id {
            return self.touch_chunk_local(id).await.unwrap_or(false);
        }
        self.touch_chunk_at(target, id).await.unwrap_or(false)
    }

    /// Has node `target` fetch chunk `id` from the first good one of `sources` and store it
    /// verified; returns its length.
    pub(crate) async fn copy_to(&self, target: u64, id: ChunkId, sources: &[u64]) -> Result<u32, ApiError> {
        if target == self.id {
            return self.copy_chunk_from(id, sources).await;
        }
        self.copy_chunk_at(target, id, sources.to_vec()).await
    }

    /// Has node `target` delete its copy of chunk `id` and report it gone.
    pub(crate) async fn delete_copy(&self, target: u64, id: ChunkId) -> Result<(), ApiError> {
        self.delete_part(target, id, Part::Copy).await
    }

    /// Has node `target` delete its `part` of chunk `id` and report it gone.
    pub(crate) async fn delete_part(&self, target: u64, id: ChunkId, part: Part) -> Result<(), ApiError> {
        if target == self.id {
            return self.delete_part_local(id, part).await;
        }
        self.delete_part_at(target, id, part).await
    }
}

impl ChunkService {
    /// Fetches a chunk from node `to`'s own store, verified against its id.
    pub(crate) async fn fetch_chunk_from(&self, to: u64, id: ChunkId) -> Result<Bytes, ApiError> {
        match self.ask(to, PeerRequest::GetChunk { id }).await? {
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
        match self.ask(to, PeerRequest::PutChunk { id, chain, data }).await? {
            PeerReply::Stored(nodes) => Ok(nodes),
            r => Err(r.unexpected()),
        }
    }

    /// Refreshes chunk `id`'s age on node `to`; whether it is there.
    pub(crate) async fn touch_chunk_at(&self, to: u64, id: ChunkId) -> Result<bool, ApiError> {
        match self.ask(to, PeerRequest::TouchChunk { id }).await? {
            PeerReply::Present(p) => Ok(p),
            r => Err(r.unexpected()),
        }
    }

    /// Has node `to` copy chunk `id` from the first good one of `from`; its length.
    pub(crate) async fn copy_chunk_at(&self, to: u64, id: ChunkId, from: Vec<u64>) -> Result<u32, ApiError> {
        match self.ask(to, PeerRequest::CopyChunk { id, from }).await? {
            PeerReply::Copied(len) => Ok(len),
            r => Err(r.unexpected()),
        }
    }

    /// Has node `to` delete its `part` of chunk `id` and report it gone.
    pub(crate) async fn delete_part_at(&self, to: u64, id: ChunkId, part: Part) -> Result<(), ApiError> {
        match self.ask(to, PeerRequest::DeleteChunk { id, part }).await? {
            PeerReply::Done => Ok(()),
            r => Err(r.unexpected()),
        }
    }
}
