//! The rebalance worker: moves chunk copies and shards from the fullest to the emptiest
//! nodes.
//!
//! It runs on the metadata leader only. A pass compares every up, active node's fill
//! (used / capacity) with the cluster's mean fill; while the fullest node is more than
//! `rebalance_band` percentage points above the mean or the emptiest that far below, it moves
//! one copy of a healthy chunk from the fullest to the emptiest node that does not hold it,
//! never filling the receiver past `fill_limit` or past the band above the mean (chunks are
//! coarse: a move that overshoots would be undone by the next pass), and never putting two
//! copies in one zone that were in two before. A move is copy (verified by the receiver) -> ledger records the new
//! holder -> the old holder deletes its copy and reports it gone: readers find the chunk
//! throughout, and it never has fewer verified copies than before. A shard of an
//! erasure-coded chunk moves the same way, to a node holding no part of that chunk. The
//! same worker deletes
//! surplus copies (more than the target on nodes that are up), keeping the ones placement
//! ranks first.

use super::{PassReport, Throttle, Worker};
use crate::chunks::fill_percent;
use crate::ledger::View;
use crate::peers::PeerState;
use crate::Node;
use cairn_core::placement::{place, Candidate};
use cairn_core::wire::{HolderChange, NodeState, Part, Shard, WorkerSettings};
use cairn_core::ChunkId;
use cairn_meta::ChunkRecord;
use futures::future::BoxFuture;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// How long a node may take to say how full it is.
const ASK_TIMEOUT: Duration = Duration::from_secs(2);
/// Bytes per second moved unless throttled otherwise.
pub const DEFAULT_RATE: u64 = 256 << 20;

/// Evens out the nodes' fill (leader only).
pub struct RebalanceWorker {
    node: Arc<Node>,
}

/// A node's space as the pass sees it (updated as it moves chunks).
#[derive(Debug, Clone)]
struct Space {
    id: u64,
    zone: String,
    used: u64,
    capacity: u64,
}

impl Space {
    fn fill(&self) -> f64 {
        fill_percent(self.used, self.capacity)
    }
}

impl RebalanceWorker {
    /// A rebalance worker for `node`.
    pub fn new(node: Arc<Node>) -> Self {
        RebalanceWorker { node }
    }

    /// Up, active members and their space, asked afresh (the liveness poll's figures may
    /// predate the last pass's moves).
    async fn spaces(&self) -> Vec<Space> {
        let states = self.node.node_states();
        let asks = self.node.members().into_iter().filter(|(id, _)| {
            states.get(id).is_none_or(|s| *s == NodeState::Active)
                && (*id == self.node.id || self.node.peers.get(*id).0 == PeerState::Up)
        });
        let infos = futures::future::join_all(asks.map(|(id, _)| async move {
            if id == self.node.id {
                return Some(self.node.info());
            }
            self.node.info_of(id, ASK_TIMEOUT).await.ok()
        }))
        .await;
        infos
            .into_iter()
            .flatten()
            .map(|i| Space { id: i.id, zone: i.zone, used: i.used, capacity: i.capacity })
            .collect()
    }

    async fn run(&self) -> Result<PassReport, String> {
        if !self.node.meta.is_leader() {
            return Ok(PassReport::note("idle: runs on the metadata leader"));
        }
        let mut spaces = self.spaces().await;
        if spaces.len() < 2 {
            return Ok(PassReport::note("nothing to balance"));
        }
        let (view, ledger) = self.node.ledger().await.map_err(|e| e.to_string())?;
        let zone_of: BTreeMap<u64, String> = spaces.iter().map(|s| (s.id, s.zone.clone())).collect();
        let trimmed = self.trim(&view, &ledger.chunks, &zone_of).await;
        // The chunks of the node moves come from, read through the per-node index.
        let mut on_src: Option<(u64, Vec<(ChunkId, ChunkRecord)>)> = None;
        let (band, limit) = (self.node.config.rebalance_band, self.node.config.fill_limit);
        let rate = match self.settings().rate {
            0 => DEFAULT_RATE,
            r => r,
        };
        let mut throttle = Throttle::new(rate);
        let mut moved_ids: HashSet<ChunkId> = HashSet::new();
        let (mut moves, mut bytes) = (0u64, 0u64);
        loop {
            if self.settings().paused {
                break;
            }
            let total_used: u64 = spaces.iter().map(|s| s.used).sum();
            let total_cap: u64 = spaces.iter().map(|s| s.capacity).sum();
            let mean = fill_percent(total_used, total_cap);
            spaces.sort_by(|a, b| a.fill().total_cmp(&b.fill()));
            let (dst, src) = (spaces[0].clone(), spaces[spaces.len() - 1].clone());
            if src.fill() - mean <= band && mean - dst.fill() <= band {
                break;
            }
            // A healthy chunk on `src`, not on `dst`, whose zone spread survives the move.
            if on_src.as_ref().map(|(id, _)| *id) != Some(src.id) {
                on_src = Some((src.id, self.node.chunks_on(src.id).await.map_err(|e| e.to_string())?));
            }
            let candidates = on_src.as_ref().map(|(_, c)| c.as_slice()).unwrap_or_default();
            let pick = candidates.iter().find(|(id, rec)| {
                !moved_ids.contains(id)
                    && rec.refs > 0
                    && (replicated(rec) || shard_on(rec, src.id).is_some())
                    && rec.holds(src.id)
                    && !rec.holds(dst.id)
                    && view.assess(rec).healthy()
                    && (dst.zone == src.zone || !rec.nodes().any(|h| zone_of.get(&h).is_some_and(|z| *z == dst.zone)))
            });
            let Some((id, rec)) = pick else { break };
            let shard = shard_on(rec, src.id);
            let len = match shard {
                Some(s) => (rec.len as u64).div_ceil(s.k as u64).max(1),
                None => rec.len as u64,
            };
            let dst_after = fill_percent(dst.used + len, dst.capacity);
            // Never past the hard limit, and never overshooting the band on the other side
            // (the next pass would move the chunk straight back).
            if dst_after > limit || dst_after > mean + band {
                break;
            }
            moved_ids.insert(*id);
            throttle.take(len).await;
            let moved = match shard {
                Some(s) => self.node.chunks.move_shard(*id, rec.len, s, src.id, dst.id).await,
                None => self.move_copy(*id, &src, &dst).await,
            };
            if let Err(e) = moved {
                tracing::warn!(chunk = %id, from = src.id, to = dst.id, "rebalance move failed: {e}");
                continue;
            }
            for s in spaces.iter_mut() {
                if s.id == src.id {
                    s.used = s.used.saturating_sub(len);
                } else if s.id == dst.id {
                    s.used += len;
                }
            }
            moves += 1;
            bytes += len;
        }
        let summary = format!("moved {moves} copies or shards ({bytes} bytes), deleted {trimmed} surplus copies");
        Ok(PassReport { summary, items: moves + trimmed, bytes })
    }

    /// True if each of `nodes` has a file for chunk `id`.
    async fn all_present(&self, id: ChunkId, nodes: &[u64]) -> bool {
        for n in nodes {
            if !self.node.chunks.has_copy(*n, id).await {
                return false;
            }
        }
        true
    }

    /// Deletes copies beyond a chunk's target (a node came back after its copies had been
    /// replaced). Of the holders that are up and active, the ones placement ranks first stay,
    /// so zones stay spread; nothing is deleted while fewer than target + 1 holders are up.
    /// Runs in this worker, between moves, so it never races a move of the same chunk.
    async fn trim(&self, view: &View, ledger: &[(ChunkId, ChunkRecord)], zone_of: &BTreeMap<u64, String>) -> u64 {
        let mut trimmed = 0;
        for (id, rec) in ledger {
            if self.settings().paused {
                break;
            }
            if !replicated(rec) {
                continue;
            }
            let target = view.assess(rec).target;
            let up: Vec<Candidate> = rec
                .nodes()
                .filter(|h| {
                    view.members.get(h).is_some_and(|m| m.state == NodeState::Active && m.peer == PeerState::Up)
                })
                .map(|h| Candidate { id: h, zone: zone_of.get(&h).cloned().unwrap_or_default(), weight: 1.0 })
                .collect();
            if up.len() <= target {
                continue;
            }
            let keep = place(id, &up, target);
            // Only if every kept copy is really there (a lost file the ledger still credits
            // would otherwise leave the chunk short).
            if !self.all_present(*id, &keep).await {
                continue;
            }
            for h in up.iter().map(|c| c.id).filter(|h| !keep.contains(h)) {
                match self.node.chunks.delete_copy(h, *id).await {
                    Ok(()) => trimmed += 1,
                    Err(e) => tracing::warn!(chunk = %id, node = h, "deleting a surplus copy failed: {e}"),
                }
            }
        }
        trimmed
    }

    /// Copy to `dst`, record it, then delete from `src`.
    async fn move_copy(&self, id: ChunkId, src: &Space, dst: &Space) -> Result<(), cairn_core::ApiError> {
        let len = self.node.chunks.copy_to(dst.id, id, &[src.id]).await?;
        self.node
            .chunks
            .report(vec![HolderChange { part: cairn_core::wire::Part::Copy, id, node: dst.id, len, held: true }])
            .await?;
        self.node.chunks.delete_copy(src.id, id).await
    }
}

/// True if the chunk is kept as copies only (trims are of copies; surplus shards are
/// released by repair).
fn replicated(rec: &ChunkRecord) -> bool {
    rec.policy.and_then(cairn_core::Policy::ec).is_none() && rec.holders.iter().all(|h| h.part == Part::Copy)
}

/// The shard of its policy's code that `node` holds of an erasure-coded chunk, if any.
fn shard_on(rec: &ChunkRecord, node: u64) -> Option<Shard> {
    rec.holders.iter().filter(|h| h.node == node && rec.shard_of_policy(h.part).is_some()).find_map(|h| match h.part {
        Part::Shard(s) => Some(s),
        Part::Copy => None,
    })
}

impl Worker for RebalanceWorker {
    fn name(&self) -> &'static str {
        "rebalance"
    }

    fn pass(&self) -> BoxFuture<'_, Result<PassReport, String>> {
        Box::pin(self.run())
    }

    fn settings(&self) -> WorkerSettings {
        self.node.worker_settings(self.name())
    }
}
