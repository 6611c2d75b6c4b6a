//! The scrub worker: every node re-reads and re-hashes its own chunks on a schedule.
//!
//! A pass reads every local chunk at a bounded rate (the worker's bandwidth setting, default
//! [`DEFAULT_RATE`]) and checks its BLAKE3 (a shard of an erasure-coded chunk: its CRC32C,
//! since a shard's bytes hash to nothing the ledger knows). A corrupt file is moved to the store's quarantine
//! and the ledger told that this node no longer holds the chunk; repair then restores the copy
//! elsewhere. The pass ends by reconciling the ledger with the disk: chunks the ledger
//! credits to this node that are not here are reported missing, and referenced chunks that
//! are here, verified, but not credited are reported held. So the ledger follows verified
//! facts even after crashes, lost disks or lost reports.

use super::{PassReport, Throttle, Worker};
use crate::Node;
use cairn_chunk::ChunkError;
use cairn_core::wire::{HolderChange, Part, WorkerSettings};
use cairn_core::ChunkId;
use futures::future::BoxFuture;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Bytes per second a scrub reads unless throttled otherwise.
pub const DEFAULT_RATE: u64 = 64 << 20;

/// Verifies this node's chunks.
pub struct ScrubWorker {
    node: Arc<Node>,
}

impl ScrubWorker {
    /// A scrub worker for `node`.
    pub fn new(node: Arc<Node>) -> Self {
        ScrubWorker { node }
    }

    async fn run(&self) -> Result<PassReport, String> {
        let store = self.node.chunks.store.clone();
        let listed = {
            let store = store.clone();
            tokio::task::spawn_blocking(move || store.list()).await.map_err(|e| e.to_string())?
        }
        .map_err(|e| e.to_string())?;
        let rate = match self.settings().rate {
            0 => DEFAULT_RATE,
            r => r,
        };
        let mut throttle = Throttle::new(rate);
        let (mut good, mut corrupt, mut bytes) = (BTreeMap::new(), Vec::new(), 0u64);
        for c in &listed {
            if self.settings().paused {
                return Ok(PassReport::note("paused"));
            }
            let (store, id, part) = (store.clone(), c.id, c.part);
            let read = move || match part {
                Part::Copy => store.get(&id),
                Part::Shard(s) => store.get_shard(&id, s),
            };
            match tokio::task::spawn_blocking(read).await.map_err(|e| e.to_string())? {
                Ok(data) => {
                    bytes += data.len() as u64;
                    good.insert((c.id, c.part), data.len() as u32);
                    throttle.take(data.len() as u64).await;
                }
                Err(ChunkError::Corrupt { why, .. }) => {
                    // Quarantined and reported at once: repair need not wait for the pass.
                    self.node.chunks.quarantine(c.id, c.part, &why).await;
                    corrupt.push(c.id);
                }
                // Deleted meanwhile (GC, drain): nothing to check.
                Err(ChunkError::NotFound(_)) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        let changes = self.reconcile(&good).await?;
        let (found, missing) = (changes.iter().filter(|c| c.held).count(), changes.iter().filter(|c| !c.held).count());
        self.node.chunks.report(changes).await.map_err(|e| e.to_string())?;
        let summary = format!(
            "checked {} chunks ({bytes} bytes): {} corrupt (quarantined), {missing} missing, {found} newly credited",
            good.len() + corrupt.len(),
            corrupt.len()
        );
        Ok(PassReport { summary, items: (good.len() + corrupt.len()) as u64, bytes })
    }

    /// Compares the ledger's view of this node with the copies and shards verified here
    /// (`good`: their lengths).
    async fn reconcile(&self, good: &BTreeMap<(ChunkId, Part), u32>) -> Result<Vec<HolderChange>, String> {
        self.node.meta.read_barrier().await.map_err(|e| e.to_string())?;
        let me = self.node.id;
        // What the ledger credits here (through its per-node index), and the records of the
        // good parts found here: the cost is this disk's chunks, not the whole ledger.
        let credited: BTreeSet<(ChunkId, Part)> = self
            .node
            .chunks_on(me)
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter(|(_, r)| r.refs > 0)
            .flat_map(|(id, r)| r.holders.into_iter().filter(|h| h.node == me).map(move |h| (id, h.part)))
            .collect();
        let uncredited: Vec<((ChunkId, Part), u32)> =
            good.iter().filter(|(key, _)| !credited.contains(key)).map(|(key, len)| (*key, *len)).collect();
        let referenced = self
            .node
            .meta
            .read_local(move |txn| {
                let mut out = Vec::new();
                for ((id, part), len) in uncredited {
                    match cairn_meta::chunk_record(txn, &id)? {
                        // A shard's record carries the chunk's length; a copy is its own.
                        Some(r) if r.refs > 0 => out.push((id, part, if part == Part::Copy { len } else { r.len })),
                        _ => {}
                    }
                }
                Ok(out)
            })
            .await
            .map_err(|e| e.to_string())?;
        let mut changes: Vec<HolderChange> = referenced
            .into_iter()
            .map(|(id, part, len)| HolderChange { part, id, node: me, len, held: true })
            .collect();
        // Credited but not verified in this pass: missing, unless stored since the listing.
        let unverified: Vec<(ChunkId, Part)> = credited.into_iter().filter(|key| !good.contains_key(key)).collect();
        let store = self.node.chunks.store.clone();
        let missing = tokio::task::spawn_blocking(move || {
            unverified.into_iter().filter(|(id, part)| !store.contains(id, *part).unwrap_or(true)).collect::<Vec<_>>()
        })
        .await
        .map_err(|e| e.to_string())?;
        changes.extend(missing.into_iter().map(|(id, part)| HolderChange { part, id, node: me, len: 0, held: false }));
        Ok(changes)
    }
}

impl Worker for ScrubWorker {
    fn name(&self) -> &'static str {
        "scrub"
    }

    fn pass(&self) -> BoxFuture<'_, Result<PassReport, String>> {
        Box::pin(self.run())
    }

    fn settings(&self) -> WorkerSettings {
        self.node.worker_settings(self.name())
    }

    fn first_pass_waits(&self) -> bool {
        true
    }
}
