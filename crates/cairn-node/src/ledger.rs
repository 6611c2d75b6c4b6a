//! The durability ledger read against what is known of the nodes: which chunks are at
//! policy, which are degraded, which cannot be read at all.
//!
//! The ledger (in the metadata) lists, per chunk, the nodes that reported a verified copy and
//! have not reported losing it. Whether such a copy counts also depends on its node:
//! * it is **readable** if the node is a member, not retired, and not down;
//! * it **counts** towards the policy if, besides, the node is active (a draining node's
//!   copies are still read, but must be replaced);
//! * it is **kept** by repair (not replaced yet) if the node is an active member that has
//!   been silent for less than the repair delay.
//!
//! A chunk's target is its wanted copies clipped to the number of active members. Nothing
//! is assumed: a copy counts only if its node said it verified it and is heard from now.
//!
//! An erasure-coded chunk (`ec:K+M`) is judged by its distinct shards of the policy's code:
//! its target is K + M (shards double up on clusters of fewer nodes), it is readable while K
//! distinct shards are, and parts the policy does not use (copies, shards of another code,
//! a second holder of one shard) are *surplus*: released once the chunk is at policy.

use crate::peers::PeerState;
use crate::Node;
use cairn_core::wire::{NodeState, Part};
use cairn_core::ChunkId;
use cairn_core::{ApiError, Policy};
use cairn_meta::ChunkRecord;
use redb::ReadTransaction;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// What is known of one member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// Its administrative state (metadata).
    pub state: NodeState,
    /// Its liveness (observed).
    pub peer: PeerState,
    /// How long it has been silent.
    pub silent_for: Duration,
}

/// The members as seen from one node at one moment.
#[derive(Debug, Clone)]
pub struct View {
    /// Every member by id.
    pub members: HashMap<u64, Member>,
    /// Down longer than this, a node's copies are replaced.
    pub repair_delay: Duration,
}

/// How one chunk stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// Copies the policy asks for, clipped to the active members.
    pub target: usize,
    /// Copies that count towards it now.
    pub counted: usize,
    /// Copies that can be read now.
    pub readable: usize,
    /// Copies repair does not replace (yet).
    pub kept: usize,
    /// Parts that must be readable to read the chunk (1 copy, or K shards).
    pub needed: usize,
}

impl Standing {
    /// At policy.
    pub fn healthy(&self) -> bool {
        self.counted >= self.target
    }

    /// Too few parts can be read to read the chunk.
    pub fn unavailable(&self) -> bool {
        self.readable < self.needed
    }
}

/// How one copy stands (see the module doc).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyState {
    /// It can be read now.
    pub readable: bool,
    /// It counts towards the policy.
    pub counts: bool,
    /// Repair does not replace it (yet).
    pub kept: bool,
}

/// Counts over the whole ledger.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Chunks referenced by files.
    pub total: u64,
    /// At policy.
    pub healthy: u64,
    /// Readable but below policy.
    pub under_replicated: u64,
    /// No readable copy.
    pub unavailable: u64,
    /// Bytes of the chunks below policy or unavailable.
    pub bytes_at_risk: u64,
}

/// The part of the ledger that may need work, read through the indexes `apply` keeps, so it
/// costs what is at risk rather than what is stored: every chunk with fewer holders than its
/// target or more, and every chunk with a part on a node whose copies do not fully count
/// (not active, not up, silent, or not a member). Every other referenced chunk is healthy:
/// all its holders count, and there are at least as many as its target.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    /// Referenced chunks and their bytes.
    pub total: (u64, u64),
    /// The chunks that may be below or above policy, each once.
    pub chunks: Vec<(ChunkId, ChunkRecord)>,
    /// Chunks held per node.
    pub held: BTreeMap<u64, u64>,
}

impl Ledger {
    /// Reads the ledger's part that `view` may find wanting.
    pub fn read(txn: &ReadTransaction, view: &View) -> Result<Ledger, cairn_meta::MetaError> {
        let active = view.active().max(1);
        let held = cairn_meta::held_counts(txn)?;
        let mut chunks: BTreeMap<ChunkId, ChunkRecord> = BTreeMap::new();
        chunks.extend(cairn_meta::chunks_below(txn, active)?);
        chunks.extend(cairn_meta::chunks_above(txn, active)?);
        for node in held.keys() {
            let c = view.copy_on(*node);
            if !(c.readable && c.counts && c.kept) {
                chunks.extend(cairn_meta::chunks_of_node(txn, *node)?.into_iter().filter(|(_, r)| r.refs > 0));
            }
        }
        Ok(Ledger { total: cairn_meta::chunk_totals(txn)?, chunks: chunks.into_iter().collect(), held })
    }
}

impl View {
    /// The view of `node` now: membership from Raft, states from the metadata in `txn`,
    /// liveness from its own polls.
    pub fn of(node: &Node, txn: &ReadTransaction) -> Result<View, cairn_meta::MetaError> {
        let mut members = HashMap::new();
        for (id, _) in node.members() {
            let state = cairn_meta::node_state(txn, id)?;
            let (peer, silent_for) = if id == node.id {
                (PeerState::Up, Duration::ZERO)
            } else {
                (node.peers.get(id).0, node.peers.silent_for(id))
            };
            members.insert(id, Member { state, peer, silent_for });
        }
        Ok(View { members, repair_delay: node.config.repair_delay })
    }

    /// Active members: how many distinct nodes a chunk can be kept on.
    pub fn active(&self) -> usize {
        self.members.values().filter(|m| m.state == NodeState::Active).count()
    }

    /// How the chunk with ledger record `rec` stands.
    pub fn assess(&self, rec: &ChunkRecord) -> Standing {
        let copies: Vec<CopyState> =
            rec.holders.iter().filter(|h| h.part == Part::Copy).map(|h| self.copy_on(h.node)).collect();
        let readable_copy = copies.iter().any(|c| c.readable);
        let Some((k, m)) = rec.policy.and_then(Policy::ec) else {
            let target = rec.want().max(1).min(self.active().max(1));
            let mut s = Standing { target, counted: 0, readable: 0, kept: 0, needed: 1 };
            for c in &copies {
                s.readable += c.readable as usize;
                s.counted += c.counts as usize;
                s.kept += c.kept as usize;
            }
            // Shards that still decode keep the chunk readable (it is being re-replicated).
            if s.readable == 0 && self.shards_decode(rec) {
                s.readable = 1;
            }
            return s;
        };
        let distinct = |pick: fn(&CopyState) -> bool| {
            let mut idx: Vec<u8> = rec
                .holders
                .iter()
                .filter(|h| pick(&self.copy_on(h.node)))
                .filter_map(|h| rec.shard_of_policy(h.part))
                .collect();
            idx.sort_unstable();
            idx.dedup();
            idx.len()
        };
        let mut s = Standing {
            target: k + m,
            counted: distinct(|c| c.counts),
            readable: distinct(|c| c.readable),
            kept: distinct(|c| c.kept),
            needed: k,
        };
        // A readable copy reads the chunk whole (it is being converted to shards).
        if readable_copy {
            s.readable = s.readable.max(k);
        }
        s
    }

    /// True if the readable shards of some one code in `rec` can rebuild the chunk.
    fn shards_decode(&self, rec: &ChunkRecord) -> bool {
        let mut by_code: BTreeMap<(u8, u8), Vec<u8>> = BTreeMap::new();
        for h in &rec.holders {
            if let Part::Shard(sh) = h.part {
                if self.copy_on(h.node).readable {
                    by_code.entry((sh.k, sh.m)).or_default().push(sh.index);
                }
            }
        }
        by_code.into_iter().any(|((k, _), mut idx)| {
            idx.sort_unstable();
            idx.dedup();
            idx.len() >= k as usize
        })
    }

    /// The parts of a chunk at policy that may be deleted (see the module doc): on a member
    /// that can still be reached, either not used by the policy, on a node whose parts do
    /// not count (draining), or a second counting holder of one shard. None unless the chunk
    /// is at policy without them.
    pub fn surplus(&self, rec: &ChunkRecord) -> Vec<cairn_meta::Holder> {
        if !self.assess(rec).healthy() {
            return Vec::new();
        }
        let ec = rec.policy.and_then(Policy::ec).is_some();
        let mut seen = std::collections::BTreeSet::new();
        let mut out = Vec::new();
        for h in rec.holders.iter().filter(|h| self.members.contains_key(&h.node) && self.copy_on(h.node).readable) {
            let counts = self.copy_on(h.node).counts;
            let surplus = match rec.shard_of_policy(h.part) {
                // One counting holder per shard is enough: a second one is surplus.
                Some(i) if ec => !counts || !seen.insert(i),
                _ if ec => true,
                _ => h.part != Part::Copy || !counts,
            };
            if surplus {
                out.push(*h);
            }
        }
        out
    }

    /// How a copy on node `id` stands.
    pub fn copy_on(&self, id: u64) -> CopyState {
        let Some(m) = self.members.get(&id) else { return CopyState::default() };
        let readable = m.state != NodeState::Retired && m.peer != PeerState::Down;
        let active = m.state == NodeState::Active;
        CopyState { readable, counts: readable && active, kept: active && m.silent_for < self.repair_delay }
    }

    /// Counts over the ledger: the chunks `ledger` lists are judged one by one, all others
    /// are healthy (see [`Ledger`]).
    pub fn summarize(&self, ledger: &Ledger) -> Summary {
        let mut sum = Summary { total: ledger.total.0, ..Summary::default() };
        for (_, rec) in &ledger.chunks {
            let s = self.assess(rec);
            if s.healthy() {
                continue;
            }
            sum.bytes_at_risk += rec.len as u64;
            if s.unavailable() {
                sum.unavailable += 1;
            } else {
                sum.under_replicated += 1;
            }
        }
        sum.healthy = sum.total.saturating_sub(sum.unavailable + sum.under_replicated);
        sum
    }
}

impl Node {
    /// The part of the durability ledger that may need work, and the view of the members to
    /// judge it by, read linearizably (see [`Ledger`]).
    pub async fn ledger(self: &Arc<Self>) -> Result<(View, Ledger), ApiError> {
        self.meta.read_barrier().await?;
        self.ledger_here().await
    }

    /// Like [`Node::ledger`], from this replica as it is (no round to the leader): for status
    /// and metrics, which must answer even when no majority is reachable.
    pub async fn ledger_here(self: &Arc<Self>) -> Result<(View, Ledger), ApiError> {
        let node = self.clone();
        self.meta
            .read_local(move |txn| {
                let view = View::of(&node, txn)?;
                let ledger = Ledger::read(txn, &view)?;
                Ok((view, ledger))
            })
            .await
    }

    /// The chunks node `id` holds a part of, by this replica's ledger (through its index).
    pub async fn chunks_on(&self, id: u64) -> Result<Vec<(ChunkId, ChunkRecord)>, ApiError> {
        self.meta.read_local(move |txn| cairn_meta::chunks_of_node(txn, id)).await
    }

    /// Chunk health counts as status and `/metrics` show them (this replica).
    pub async fn ledger_summary(self: &Arc<Self>) -> Result<Summary, ApiError> {
        let (view, ledger) = self.ledger_here().await?;
        Ok(view.summarize(&ledger))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(state: NodeState, peer: PeerState, silent: u64) -> Member {
        Member { state, peer, silent_for: Duration::from_secs(silent) }
    }

    fn rec(want: u8, holders: &[u64]) -> ChunkRecord {
        let holders =
            holders.iter().map(|&node| cairn_meta::Holder { node, part: cairn_core::wire::Part::Copy }).collect();
        ChunkRecord { refs: 1, zero_since: None, len: 10, policy: Some(cairn_core::Policy::Replicas(want)), holders }
    }

    #[test]
    fn copies_count_only_on_live_active_members() {
        let view = View {
            members: HashMap::from([
                (1, member(NodeState::Active, PeerState::Up, 0)),
                (2, member(NodeState::Active, PeerState::Down, 30)),
                (3, member(NodeState::Draining, PeerState::Up, 0)),
                (4, member(NodeState::Active, PeerState::Down, 900)),
                (5, member(NodeState::Active, PeerState::Suspect, 5)),
            ]),
            repair_delay: Duration::from_secs(60),
        };
        // Four active members: replicas:5 is clipped to 4.
        assert_eq!(view.assess(&rec(5, &[1])).target, 4);
        let s = view.assess(&rec(3, &[1, 2, 3, 4, 5, 9]));
        assert_eq!(s, Standing { target: 3, counted: 2, readable: 3, kept: 3, needed: 1 });
        assert!(!s.healthy() && !s.unavailable());
        assert!(view.assess(&rec(2, &[1, 5])).healthy());
        assert!(view.assess(&rec(2, &[2, 4])).unavailable());
        // Five referenced chunks, three listed as possibly at risk: the others are healthy.
        let listed = [rec(2, &[1, 5]), rec(2, &[1]), rec(1, &[4])];
        let ledger = Ledger {
            total: (5, 50),
            chunks: listed.into_iter().enumerate().map(|(i, r)| (ChunkId([i as u8; 32]), r)).collect(),
            held: BTreeMap::new(),
        };
        let sum = view.summarize(&ledger);
        assert_eq!(sum, Summary { total: 5, healthy: 3, under_replicated: 1, unavailable: 1, bytes_at_risk: 20 });
    }
}
