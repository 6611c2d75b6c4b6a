//! Chunk placement: weighted rendezvous hashing over the nodes that are up, spreading copies
//! over distinct zones where there are enough.
//!
//! Every node gets a score per chunk, `weight / -ln(u)` with `u` a uniform hash of (chunk,
//! node): the highest scores win. This is the weighted form of highest-random-weight hashing:
//! a node's share of chunks is proportional to its weight, and adding or removing a node only
//! moves the chunks that node wins or held. Copies go first to the best node of each zone not
//! used yet, then to the best remaining nodes.

use crate::ChunkId;

/// A node that may hold chunks.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// Node id.
    pub id: u64,
    /// Failure domain (LiteDFS's clique).
    pub zone: String,
    /// Relative share of chunks it should get (e.g. free bytes); <= 0 means none.
    pub weight: f64,
}

/// The rendezvous score of `node` for `chunk` with `weight`.
fn score(chunk: &ChunkId, node: u64, weight: f64) -> f64 {
    let mut h = blake3::Hasher::new();
    h.update(&chunk.0);
    h.update(&node.to_le_bytes());
    let x = u64::from_le_bytes(h.finalize().as_bytes()[..8].try_into().expect("8 bytes"));
    // Uniform in (0, 1), never 0 or 1.
    let u = (x as f64 + 0.5) / 18_446_744_073_709_551_616.0;
    weight / -u.ln()
}

/// The ids of up to `n` distinct nodes to hold `chunk`, best first. Candidate ids are
/// expected to be distinct.
pub fn place(chunk: &ChunkId, candidates: &[Candidate], n: usize) -> Vec<u64> {
    let mut ranked: Vec<(f64, &Candidate)> =
        candidates.iter().filter(|c| c.weight > 0.0).map(|c| (score(chunk, c.id, c.weight), c)).collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.id.cmp(&b.1.id)));
    let mut chosen: Vec<&Candidate> = Vec::with_capacity(n);
    for (_, c) in &ranked {
        if chosen.len() < n && !chosen.iter().any(|p| p.zone == c.zone || p.id == c.id) {
            chosen.push(c);
        }
    }
    for (_, c) in &ranked {
        if chosen.len() < n && !chosen.iter().any(|p| p.id == c.id) {
            chosen.push(c);
        }
    }
    chosen.into_iter().map(|c| c.id).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn nodes() -> impl Strategy<Value = Vec<Candidate>> {
        prop::collection::btree_map(0u64..40, (0u8..4, 0u32..10), 0..12).prop_map(|m| {
            m.into_iter().map(|(id, (z, w))| Candidate { id, zone: format!("z{z}"), weight: w as f64 }).collect()
        })
    }

    proptest! {
        #[test]
        fn distinct_nodes_and_as_many_zones_as_possible(key in any::<[u8; 32]>(), cands in nodes(), n in 0usize..6) {
            let chunk = ChunkId(key);
            let got = place(&chunk, &cands, n);
            let eligible: BTreeSet<u64> = cands.iter().filter(|c| c.weight > 0.0).map(|c| c.id).collect();
            prop_assert_eq!(got.len(), n.min(eligible.len()));
            prop_assert_eq!(got.iter().collect::<BTreeSet<_>>().len(), got.len(), "distinct");
            prop_assert!(got.iter().all(|id| eligible.contains(id)));
            let zone_of = |id: &u64| cands.iter().find(|c| c.id == *id && c.weight > 0.0).map(|c| c.zone.clone());
            let zones: BTreeSet<_> = got.iter().filter_map(zone_of).collect();
            let all_zones: BTreeSet<_> = cands.iter().filter(|c| c.weight > 0.0).map(|c| c.zone.clone()).collect();
            prop_assert!(zones.len() >= n.min(all_zones.len()).min(got.len()), "zones {zones:?} of {all_zones:?}");
        }

        #[test]
        fn removing_an_unchosen_node_changes_nothing(key in any::<[u8; 32]>(), cands in nodes(), n in 1usize..4) {
            let chunk = ChunkId(key);
            let got = place(&chunk, &cands, n);
            for drop in cands.iter().filter(|c| !got.contains(&c.id)) {
                let rest: Vec<Candidate> = cands.iter().filter(|c| c.id != drop.id).cloned().collect();
                prop_assert_eq!(place(&chunk, &rest, n), got.clone());
            }
        }
    }

    #[test]
    fn shares_follow_weights() {
        let cands = vec![
            Candidate { id: 1, zone: "a".into(), weight: 1.0 },
            Candidate { id: 2, zone: "a".into(), weight: 3.0 },
        ];
        let heavy = (0..8000u32).filter(|i| place(&ChunkId::of(&i.to_le_bytes()), &cands, 1) == vec![2]).count();
        let share = heavy as f64 / 8000.0;
        assert!((0.72..0.78).contains(&share), "heavy node got {share}");
    }
}
