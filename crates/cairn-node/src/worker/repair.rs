//! The repair worker: brings every chunk back to its policy.
//!
//! It runs on the metadata leader only (one node decides, so two nodes never race to make the
//! same copy; when the leader dies the next one takes over). Each pass reads the durability
//! ledger linearizably and picks the chunks with fewer *kept* copies than their target (see
//! [`crate::ledger`]): copies on nodes down for longer than `repair_delay`, on draining nodes,
//! or reported missing or corrupt do not count. Most endangered chunks go first. For each, the
//! nodes placement ranks highest among those up, active and below the fill limit, and not
//! already holding the chunk, fetch it from a readable holder and verify it as they store it;
//! only then is the new copy recorded in the ledger, so a chunk counts as healthy again only
//! once its new copy is verified. Transfers are paced by the worker's bandwidth setting.
//! An erasure-coded chunk gets its missing shards rebuilt on this node from K others (or
//! encoded from a copy, which converts a replicated chunk), each stored on a node that holds
//! no shard of it yet where there is one. Surplus parts (see [`crate::ledger`]: copies on
//! draining nodes, copies of a chunk now kept as shards and the reverse) are deleted once
//! their chunk is at policy without them, so a drain ends with the node holding nothing.

use super::{PassReport, Throttle, Worker};
use crate::ledger::{Standing, View};
use crate::Node;
use cairn_core::placement::{place, Candidate};
use cairn_core::wire::{HolderChange, Shard, WorkerSettings};
use cairn_core::ChunkId;
use cairn_meta::ChunkRecord;
use futures::future::BoxFuture;
use futures::StreamExt;
use std::collections::BTreeSet;
use std::sync::Arc;
use tokio::sync::Mutex;

/// Chunks repaired concurrently.
const PARALLEL: usize = 4;

/// Restores missing copies (leader only).
pub struct RepairWorker {
    node: Arc<Node>,
}

/// What one pass works with.
struct Plan {
    view: View,
    /// The members now (a holder that left is no source).
    members: BTreeSet<u64>,
    candidates: Vec<Candidate>,
    throttle: Mutex<Throttle>,
}

impl RepairWorker {
    /// A repair worker for `node`.
    pub fn new(node: Arc<Node>) -> Self {
        RepairWorker { node }
    }

    async fn run(&self) -> Result<PassReport, String> {
        if !self.node.meta.is_leader() {
            return Ok(PassReport::note("idle: runs on the metadata leader"));
        }
        let (view, ledger) = self.node.ledger().await.map_err(|e| e.to_string())?;
        let released = self.release_drained(&view, &ledger.chunks).await;
        let mut work: Vec<(Standing, ChunkId, ChunkRecord)> = ledger
            .chunks
            .into_iter()
            .map(|(id, rec)| (view.assess(&rec), id, rec))
            .filter(|(s, _, _)| s.kept < s.target)
            .collect();
        let lost = work.iter().filter(|(s, _, _)| s.unavailable()).count();
        work.retain(|(s, _, _)| !s.unavailable());
        if work.is_empty() {
            let summary = format!("nothing to repair; released {released} surplus parts; {lost} chunks cannot be read");
            return Ok(PassReport { summary, items: released, bytes: 0 });
        }
        // Most endangered first: fewest copies that count now, then fewest kept.
        work.sort_by_key(|(s, _, _)| (s.counted, s.kept));
        let plan = Plan {
            members: self.node.members().into_iter().map(|(id, _)| id).collect(),
            candidates: self.node.chunks.candidates(Some(self.node.config.fill_limit)),
            throttle: Mutex::new(Throttle::new(self.settings().rate)),
            view,
        };
        let total = work.len();
        let results: Vec<(u64, u64)> = futures::stream::iter(work)
            .map(|(s, id, rec)| self.repair(&plan, s, id, rec))
            .buffer_unordered(PARALLEL)
            .collect()
            .await;
        let copies: u64 = results.iter().map(|r| r.0).sum();
        let bytes: u64 = results.iter().map(|r| r.1).sum();
        let summary = format!(
            "{total} chunks below policy: made {copies} verified copies or shards ({bytes} bytes); released {released} surplus parts; {lost} chunks cannot be read"
        );
        Ok(PassReport { summary, items: copies + released, bytes })
    }

    /// Deletes the surplus parts of chunks at policy: copies and shards on draining nodes
    /// (draining moves data off a node, and it keeps serving reads meanwhile), and parts the
    /// policy does not use.
    async fn release_drained(&self, view: &View, ledger: &[(ChunkId, ChunkRecord)]) -> u64 {
        let mut released = 0;
        for (id, rec) in ledger {
            if self.settings().paused {
                break;
            }
            for h in view.surplus(rec) {
                match self.node.chunks.delete_part(h.node, *id, h.part).await {
                    Ok(()) => released += 1,
                    Err(e) => tracing::warn!(chunk = %id, node = h.node, "releasing a surplus part failed: {e}"),
                }
            }
        }
        released
    }

    /// Rebuilds the shards an erasure-coded chunk lacks; returns (shards made, bytes).
    async fn repair_shards(&self, plan: &Plan, id: ChunkId, rec: &ChunkRecord, (k, m): (usize, usize)) -> (u64, u64) {
        let code = Shard { index: 0, k: k as u8, m: m as u8 };
        let kept: BTreeSet<u8> = rec
            .holders
            .iter()
            .filter(|h| plan.view.copy_on(h.node).kept)
            .filter_map(|h| rec.shard_of_policy(h.part))
            .collect();
        let missing: Vec<u8> = (0..(k + m) as u8).filter(|i| !kept.contains(i)).collect();
        // Nodes with no shard of this chunk first, in placement order; then the others.
        let ranked = place(&id, &plan.candidates, plan.candidates.len());
        if ranked.is_empty() || missing.is_empty() {
            return (0, 0);
        }
        let (fresh, used): (Vec<u64>, Vec<u64>) = ranked.into_iter().partition(|n| !rec.holds(*n));
        let order: Vec<u64> = fresh.into_iter().chain(used).collect();
        let targets: Vec<(u8, u64)> = missing.iter().enumerate().map(|(j, i)| (*i, order[j % order.len()])).collect();
        let shard_len = rec.len.div_ceil(k as u32) as u64;
        plan.throttle.lock().await.take(shard_len * (k + targets.len()) as u64).await;
        match self.node.chunks.rebuild_shards(id, rec, code, &targets).await {
            Ok(added) => {
                let made = added.len() as u64;
                if let Err(e) = self.node.chunks.report(added).await {
                    tracing::warn!(chunk = %id, "could not record rebuilt shards: {e}");
                    return (0, 0);
                }
                (made, made * shard_len)
            }
            Err(e) => {
                tracing::warn!(chunk = %id, "rebuilding shards failed: {e}");
                (0, 0)
            }
        }
    }

    /// Adds the copies one chunk lacks; returns (copies made, bytes copied).
    async fn repair(&self, plan: &Plan, s: Standing, id: ChunkId, rec: ChunkRecord) -> (u64, u64) {
        if self.settings().paused {
            return (0, 0);
        }
        if let Some(km) = rec.policy.filter(|p| p.is_valid()).and_then(cairn_core::Policy::ec) {
            return self.repair_shards(plan, id, &rec, km).await;
        }
        // Sources: readable holders, those that count (active, up) first.
        let mut sources: Vec<(bool, u64)> = Vec::new();
        for h in rec.nodes() {
            if plan.view.copy_on(h).readable && plan.members.contains(&h) {
                sources.push((!plan.view.copy_on(h).counts, h));
            }
        }
        sources.sort();
        let sources: Vec<u64> = sources.into_iter().map(|(_, h)| h).collect();
        let need = s.target - s.kept;
        let mut added = Vec::new();
        for target in place(&id, &plan.candidates, plan.candidates.len()) {
            if added.len() == need {
                break;
            }
            if rec.holders.iter().any(|h| h.node == target && h.part == cairn_core::wire::Part::Copy) {
                continue;
            }
            plan.throttle.lock().await.take(rec.len as u64).await;
            match self.node.chunks.copy_to(target, id, &sources).await {
                Ok(len) => {
                    added.push(HolderChange { part: cairn_core::wire::Part::Copy, id, node: target, len, held: true })
                }
                Err(e) => tracing::warn!(chunk = %id, target, "repair copy failed: {e}"),
            }
        }
        let made = added.len() as u64;
        let bytes = added.iter().map(|c| c.len as u64).sum();
        if let Err(e) = self.node.chunks.report(added).await {
            tracing::warn!(chunk = %id, "could not record repaired copies: {e}");
            return (0, 0);
        }
        (made, bytes)
    }
}

impl Worker for RepairWorker {
    fn name(&self) -> &'static str {
        "repair"
    }

    fn pass(&self) -> BoxFuture<'_, Result<PassReport, String>> {
        Box::pin(self.run())
    }

    fn settings(&self) -> WorkerSettings {
        self.node.worker_settings(self.name())
    }
}
