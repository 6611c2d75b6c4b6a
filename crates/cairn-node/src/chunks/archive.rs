//! Turning a replicated chunk into shards (archival), two ways.
//!
//! *Pipelined* (the default): the work goes to the nodes that already hold copies. Each
//! shard is assigned to one copy holder (the shard's own target if it holds a copy, else
//! the holders in turn), which reads its verified copy, computes just its assigned shards
//! (a data shard is a slice, a parity shard a dot product) and stores each on its target:
//! every shard crosses the network once, from a node that had the bytes, and no node
//! receives more than the shards it keeps.
//! *Centralised* (`--no-pipeline`, the baseline): this node fetches the whole chunk, encodes
//! all missing shards and uploads them, so every byte passes through it.
//! Either way the shards are recorded in the ledger once stored; the switch of the file is
//! the `Archive` metadata command, and the copies are released by repair after it.

use super::ChunkService;
use crate::transport::{PeerReply, PeerRequest};
use crate::{internal, unavailable};
use cairn_core::wire::{HolderChange, Part, Shard};
use cairn_core::{ApiError, ChunkId, ErrorCode};
use cairn_meta::ChunkRecord;
use std::collections::BTreeMap;

/// Most shard jobs one `EncodeShards` message may carry.
pub const MAX_JOBS: usize = 48;

impl ChunkService {
    /// Stores the shards `missing` (index, target node) of chunk `id` as code `code`, by the
    /// copy holders (`pipelined`) or on this node (a shard whose target fails goes to one of
    /// `spare`); records them in the ledger. Returns the shards stored.
    pub(crate) async fn archive_chunk(
        &self,
        id: ChunkId,
        rec: &ChunkRecord,
        code: Shard,
        missing: &[(u8, u64)],
        spare: &[u64],
        pipelined: bool,
    ) -> Result<usize, ApiError> {
        let holders: Vec<u64> = rec
            .holders
            .iter()
            .filter(|h| h.part == Part::Copy && (h.node == self.id || self.peers.usable(h.node)))
            .map(|h| h.node)
            .collect();
        let mut changes = Vec::new();
        let mut left: Vec<(u8, u64)> = missing.to_vec();
        if pipelined && !holders.is_empty() {
            // Each shard to a holder: its own target if that holds a copy, else in turn.
            let mut jobs: BTreeMap<u64, Vec<(u8, u64)>> = BTreeMap::new();
            for (n, (index, target)) in missing.iter().enumerate() {
                let by = if holders.contains(target) { *target } else { holders[n % holders.len()] };
                jobs.entry(by).or_default().push((*index, *target));
            }
            let asks =
                jobs.into_iter().map(|(by, jobs)| async move { (self.encode_at(by, id, code, &jobs).await, jobs) });
            left.clear();
            for (result, jobs) in futures::future::join_all(asks).await {
                match result {
                    Ok(done) => {
                        left.extend(jobs.iter().filter(|j| !done.contains(j)));
                        changes.extend(done);
                    }
                    Err(e) => {
                        tracing::warn!(chunk = %id, "encoding shards on a copy holder failed: {e}");
                        left.extend(jobs);
                    }
                }
            }
        }
        let mut stored: Vec<HolderChange> = changes
            .into_iter()
            .map(|(i, node)| HolderChange {
                part: Part::Shard(Shard { index: i, ..code }),
                id,
                node,
                len: rec.len,
                held: true,
            })
            .collect();
        if !left.is_empty() {
            // Centralised: here, from a verified copy (or from shards already made).
            stored.extend(self.rebuild_shards(id, rec, code, &left).await?);
        }
        // A shard no target took goes to another node placement offered (once).
        let failed: Vec<u8> = missing
            .iter()
            .filter(|(i, _)| !stored.iter().any(|c| c.part == Part::Shard(Shard { index: *i, ..code })))
            .map(|(i, _)| *i)
            .collect();
        let bad: Vec<u64> = missing.iter().filter(|(i, _)| failed.contains(i)).map(|(_, n)| *n).collect();
        let others: Vec<u64> = spare.iter().copied().filter(|n| !bad.contains(n)).collect();
        if !failed.is_empty() && !others.is_empty() {
            let retry: Vec<(u8, u64)> =
                failed.iter().enumerate().map(|(j, i)| (*i, others[j % others.len()])).collect();
            stored.extend(self.rebuild_shards(id, rec, code, &retry).await?);
        }
        let n = stored.len();
        self.report(stored).await?;
        if n < missing.len() {
            return Err(unavailable(format!("chunk {id}: {n} of {} shards could be stored", missing.len())));
        }
        Ok(n)
    }

    /// Has node `by` (maybe this one) encode shards of chunk `id` from its copy and store
    /// each on its target; the jobs done.
    async fn encode_at(
        &self,
        by: u64,
        id: ChunkId,
        code: Shard,
        jobs: &[(u8, u64)],
    ) -> Result<Vec<(u8, u64)>, ApiError> {
        if by == self.id {
            return self.encode_here(id, code, jobs).await;
        }
        let (k, m) = (code.k, code.m);
        match self.ask(by, PeerRequest::EncodeShards { id, k, m, jobs: jobs.to_vec() }).await? {
            PeerReply::Encoded(done) => Ok(done),
            r => Err(r.unexpected()),
        }
    }

    /// Encodes shards `jobs` (index, target) of chunk `id` from this node's own copy
    /// (BLAKE3-verified) and stores each on its target; the jobs done.
    pub async fn encode_here(&self, id: ChunkId, code: Shard, jobs: &[(u8, u64)]) -> Result<Vec<(u8, u64)>, ApiError> {
        if jobs.len() > MAX_JOBS || jobs.iter().any(|(i, _)| !Shard { index: *i, ..code }.is_valid()) {
            return Err(ApiError::new(ErrorCode::InvalidArgument, format!("bad shard jobs for {code} of chunk {id}")));
        }
        let store = self.store.clone();
        let data = tokio::task::spawn_blocking(move || store.get(&id))
            .await
            .map_err(internal)?
            .map_err(|e| ApiError::new(e.code(), e.to_string()))?;
        let len = data.len() as u32;
        let (k, m) = (code.k as usize, code.m as usize);
        let shards = tokio::task::spawn_blocking(move || super::ec::encode(&data, k, m)).await.map_err(internal)??;
        let puts = jobs.iter().map(|(i, target)| {
            let data = shards[*i as usize].clone();
            async move {
                let shard = Shard { index: *i, ..code };
                match self.put_shard_at(*target, id, shard, len, data).await {
                    Ok(()) => Some((*i, *target)),
                    Err(e) => {
                        tracing::warn!(chunk = %id, %shard, target, "storing an archived shard failed: {e}");
                        None
                    }
                }
            }
        });
        Ok(futures::future::join_all(puts).await.into_iter().flatten().collect())
    }
}
