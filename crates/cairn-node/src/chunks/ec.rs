//! Erasure-coded chunks (`ec:K+M`): a chunk cut into K data shards and M Reed-Solomon parity
//! shards (the layout of `cairn_gf::Stripe`, the code of `cairn_gf::ReedSolomon`, both in
//! `docs/formats.md`), each on its own node where there are K + M of them.
//!
//! A write encodes on the node the client uploaded to and sends each shard to its node; it
//! is acknowledged once enough shards are stored that one more loss cannot lose it (all of
//! them for `ec:K+1`, else K + 1 and half the other parity shards); repair adds the rest. A read gathers the data shards (a range
//! only the bytes of the shards that cover it); when some are missing it gathers the same
//! bytes of any K shards and decodes just them. Whatever is joined into a whole chunk is
//! checked against the chunk's BLAKE3 before anyone sees it. Repair rebuilds the shards that
//! are missing from K others (or encodes them from a copy), on one node.

use super::ChunkService;
use crate::internal;
use bytes::Bytes;
use cairn_core::wire::{HolderChange, Part, Shard};
use cairn_core::{ApiError, ChunkId, ErrorCode};
use cairn_gf::{ReedSolomon, Stripe};
use cairn_meta::ChunkRecord;
use futures::stream::{FuturesUnordered, StreamExt};
use std::collections::BTreeMap;

use crate::transport::{PeerReply, PeerRequest};

fn gf_err(e: cairn_gf::Error) -> ApiError {
    ApiError::new(ErrorCode::Internal, format!("erasure code: {e}"))
}

/// The stripe of a chunk of `len` bytes kept as `shard`'s code; refuses a shape no policy
/// may ask for.
pub(crate) fn stripe(shard: Shard, len: u32) -> Result<Stripe, ApiError> {
    if !shard.is_valid() {
        return Err(ApiError::new(ErrorCode::InvalidArgument, format!("{shard} is not a valid shard")));
    }
    Stripe::new(len as u64, shard.k as usize).map_err(gf_err)
}

/// Shards a striped write must store before it is acknowledged: all of them for `ec:K+1`
/// (one loss must not lose the chunk), else K + 1 of K + M.
fn write_quorum(k: usize, m: usize) -> usize {
    if m == 1 {
        k + 1
    } else {
        k + 1 + (m - 1) / 2
    }
}

/// The holders of one code's shards in a record: index -> nodes.
type Holders = BTreeMap<u8, Vec<u64>>;

/// The code a record's shards are of (the policy's own if it has shards of it, else the one
/// with most distinct shards held) and who holds which shard.
pub(crate) fn shards_held(rec: &ChunkRecord) -> Option<(Shard, Holders)> {
    let mut codes: BTreeMap<(u8, u8), Holders> = BTreeMap::new();
    for h in &rec.holders {
        if let Part::Shard(s) = h.part {
            codes.entry((s.k, s.m)).or_default().entry(s.index).or_default().push(h.node);
        }
    }
    let policy = rec.policy.and_then(cairn_core::Policy::ec);
    let ((k, m), holders) =
        codes.into_iter().max_by_key(|((k, m), held)| (policy == Some((*k as usize, *m as usize)), held.len()))?;
    Some((Shard { index: 0, k, m }, holders))
}

impl ChunkService {
    /// Stores chunk `id` as `k` data and `m` parity shards on the nodes placement picks (see
    /// the module doc), and records them in the ledger.
    pub(crate) async fn put_chunk_striped(
        &self,
        id: ChunkId,
        data: Bytes,
        (k, m): (usize, usize),
        hashed_here: bool,
    ) -> Result<(), ApiError> {
        let len = u32::try_from(data.len()).map_err(|_| ApiError::new(ErrorCode::TooLarge, "chunk too large"))?;
        let shards = tokio::task::spawn_blocking(move || -> Result<Vec<Bytes>, ApiError> {
            if !hashed_here && ChunkId::of(&data) != id {
                return Err(ApiError::new(
                    ErrorCode::InvalidArgument,
                    format!("chunk {id}: data does not match its id"),
                ));
            }
            encode(&data, k, m)
        })
        .await
        .map_err(internal)??;
        let candidates = self.candidates(None);
        if candidates.is_empty() {
            return Err(self.nowhere(id));
        }
        let ranked = cairn_core::placement::place(&id, &candidates, candidates.len());
        if ranked.is_empty() {
            return Err(crate::unavailable(format!("chunk {id}: no node is up to take its shards")));
        }
        let code = |index: usize| Shard { index: index as u8, k: k as u8, m: m as u8 };
        // Shard i to the i-th node placement ranks (round the list again on a small cluster).
        let mut pending: Vec<(usize, u64)> = (0..k + m).map(|i| (i, ranked[i % ranked.len()])).collect();
        let mut spare = ranked.iter().skip(k + m).copied();
        let (mut stored, mut last_error): (Vec<(usize, u64)>, Option<ApiError>) = (Vec::new(), None);
        for _round in 0..3 {
            let puts = pending.iter().map(|(i, node)| self.put_shard_at(*node, id, code(*i), len, shards[*i].clone()));
            let results = futures::future::join_all(puts).await;
            let mut failed = Vec::new();
            for ((i, node), r) in pending.iter().zip(results) {
                match r {
                    Ok(()) => stored.push((*i, *node)),
                    Err(e) => {
                        tracing::warn!(chunk = %id, shard = i, node, "storing a shard failed: {e}");
                        last_error = Some(e);
                        failed.push(*i);
                    }
                }
            }
            if failed.is_empty() {
                break;
            }
            // A shard that failed goes to a node not used yet, else to one that took one.
            let used: Vec<u64> = stored.iter().map(|(_, n)| *n).collect();
            pending = failed
                .into_iter()
                .enumerate()
                .filter_map(|(j, i)| {
                    spare.next().or_else(|| (!used.is_empty()).then(|| used[j % used.len()])).map(|n| (i, n))
                })
                .collect();
            if pending.is_empty() {
                break;
            }
        }
        if stored.len() < write_quorum(k, m) {
            return Err(last_error.filter(|e| e.code == ErrorCode::NoSpace).unwrap_or_else(|| {
                crate::unavailable(format!(
                    "chunk {id}: stored {} of {} shards, {} needed",
                    stored.len(),
                    k + m,
                    write_quorum(k, m)
                ))
            }));
        }
        let changes =
            stored.into_iter().map(|(i, node)| HolderChange { part: Part::Shard(code(i)), id, node, len, held: true });
        self.report(changes.collect()).await
    }

    /// Has node `to` (maybe this one) store a shard.
    pub(super) async fn put_shard_at(
        &self,
        to: u64,
        id: ChunkId,
        shard: Shard,
        len: u32,
        data: Bytes,
    ) -> Result<(), ApiError> {
        if to == self.id {
            return self.put_shard_local(id, shard, len, data).await;
        }
        match self.ask(to, PeerRequest::PutShard { id, shard, len, data }).await? {
            PeerReply::Stored(_) => Ok(()),
            r => Err(r.unexpected()),
        }
    }

    /// Bytes `from..to` of a shard on node `at` (maybe this one), of exactly that length.
    async fn get_shard_from(&self, at: u64, id: ChunkId, shard: Shard, from: u32, to: u32) -> Result<Bytes, ApiError> {
        let data = if at == self.id {
            self.get_shard_local(id, shard, from, to).await?
        } else {
            match self.ask(at, PeerRequest::GetShard { id, shard, from, to }).await? {
                PeerReply::Chunk { data } => data,
                r => return Err(r.unexpected()),
            }
        };
        if data.len() != (to - from) as usize {
            let msg = format!("node {at} sent {} bytes of {shard} of chunk {id}, not {}", data.len(), to - from);
            return Err(ApiError::new(ErrorCode::Corrupt, msg));
        }
        Ok(data)
    }

    /// Bytes `from..to` of `want` distinct shards of code `code` (those in `first` tried
    /// first, then the others in index order), each from the first of its holders that
    /// answers (this node, then those up): the shards' indexes and bytes, in that order.
    async fn gather(
        &self,
        id: ChunkId,
        code: Shard,
        holders: &Holders,
        (from, to): (u32, u32),
        first: &[u8],
        want: usize,
    ) -> Result<Vec<(usize, Bytes)>, ApiError> {
        let mut order: Vec<u8> = first.iter().copied().filter(|i| holders.contains_key(i)).collect();
        order.extend(holders.keys().copied().filter(|i| !first.contains(i)));
        let mut order = order.into_iter();
        let sources = |i: u8| -> Vec<u64> {
            let mut nodes = holders.get(&i).cloned().unwrap_or_default();
            nodes.sort_by_key(|n| (*n != self.id, !self.peers.usable(*n)));
            nodes
        };
        let fetch = |i: u8, nodes: Vec<u64>| async move {
            let shard = Shard { index: i, ..code };
            let mut last = ApiError::new(ErrorCode::NotFound, format!("{shard} of chunk {id}: no holder"));
            for n in nodes {
                match self.get_shard_from(n, id, shard, from, to).await {
                    Ok(data) => return Ok((i as usize, data)),
                    Err(e) => last = e,
                }
            }
            Err(last)
        };
        let mut running = FuturesUnordered::new();
        for i in order.by_ref().take(want) {
            running.push(fetch(i, sources(i)));
        }
        let (mut got, mut last) = (Vec::with_capacity(want), None);
        while let Some(r) = running.next().await {
            match r {
                Ok(piece) => got.push(piece),
                Err(e) => {
                    last = Some(e);
                    if let Some(i) = order.next() {
                        running.push(fetch(i, sources(i)));
                    }
                }
            }
            if got.len() == want {
                got.sort_by_key(|(i, _)| *i);
                return Ok(got);
            }
        }
        let why = last.map(|e| e.message).unwrap_or_default();
        Err(crate::unavailable(format!(
            "chunk {id}: {} of the {} shards it needs can be read ({why})",
            got.len(),
            want
        )))
    }

    /// Reads a whole chunk kept as shards, verified against its BLAKE3.
    pub(crate) async fn read_striped(&self, id: ChunkId, rec: &ChunkRecord) -> Result<Bytes, ApiError> {
        let Some((code, holders)) = shards_held(rec) else {
            return Err(ApiError::new(ErrorCode::NotFound, format!("chunk {id} is on no reachable node")));
        };
        let stripe = stripe(code, rec.len)?;
        let (k, m) = (code.k as usize, code.m as usize);
        let data: Vec<u8> = (0..code.k).collect();
        let got = self.gather(id, code, &holders, (0, stripe.shard as u32), &data, k).await?;
        tokio::task::spawn_blocking(move || -> Result<Bytes, ApiError> {
            let shards = decode(k, m, &got, &(0..k).collect::<Vec<_>>())?;
            let refs: Vec<&[u8]> = shards.iter().map(|s| s.as_ref()).collect();
            let chunk = stripe.join(&refs).map_err(gf_err)?;
            if ChunkId::of(&chunk) != id {
                return Err(ApiError::new(ErrorCode::Corrupt, format!("chunk {id}: its shards decode to other bytes")));
            }
            Ok(Bytes::from(chunk))
        })
        .await
        .map_err(internal)?
    }

    /// Bytes `from..to` of a chunk (clipped to its end): from a copy here or elsewhere, or
    /// from only the parts of the data shards that hold them, decoded from the same bytes
    /// of other shards where a data shard cannot be read.
    pub async fn read_range(&self, id: ChunkId, from: u64, to: u64) -> Result<Bytes, ApiError> {
        let rec = match self.store.contains(&id, Part::Copy) {
            Ok(true) => None,
            _ => self.record(id).await.filter(|r| !r.holders.iter().any(|h| h.part == Part::Copy)),
        };
        let Some((code, holders)) = rec.as_ref().and_then(shards_held) else {
            let whole = self.get_chunk_for_transfer(id, false).await?;
            let end = (to as usize).min(whole.len());
            return Ok(whole.slice((from as usize).min(end)..end));
        };
        let len = rec.map_or(0, |r| r.len);
        let stripe = stripe(code, len)?;
        let mut out = Vec::with_capacity(to.min(len as u64).saturating_sub(from) as usize);
        for piece in stripe.pieces(from, to) {
            let (a, b) = (piece.from as u32, piece.to as u32);
            let index = piece.shard as u8;
            let got = self.gather(id, code, &holders, (a, b), &[index], 1).await?;
            let bytes = if got[0].0 == piece.shard {
                got.into_iter().next().map(|(_, d)| d).unwrap_or_default()
            } else {
                // Its own shard cannot be read: decode the range from K others.
                let (k, m) = (code.k as usize, code.m as usize);
                let firsts: Vec<u8> = (0..code.k).filter(|i| *i != index).collect();
                let others = self.gather(id, code, &holders, (a, b), &firsts, k).await?;
                let want = piece.shard;
                let mut rebuilt =
                    tokio::task::spawn_blocking(move || decode(k, m, &others, &[want])).await.map_err(internal)??;
                rebuilt.pop().unwrap_or_default()
            };
            out.extend_from_slice(&bytes);
        }
        Ok(Bytes::from(out))
    }

    /// Moves `shard` of chunk `id` (of `len` bytes) from node `from` to node `to`: copied
    /// (its CRC checked where it is read and written), recorded, then deleted from `from`.
    pub(crate) async fn move_shard(
        &self,
        id: ChunkId,
        len: u32,
        shard: Shard,
        from: u64,
        to: u64,
    ) -> Result<(), ApiError> {
        let size = stripe(shard, len)?.shard as u32;
        let data = self.get_shard_from(from, id, shard, 0, size).await?;
        self.put_shard_at(to, id, shard, len, data).await?;
        self.report(vec![HolderChange { part: Part::Shard(shard), id, node: to, len, held: true }]).await?;
        self.delete_part(from, id, Part::Shard(shard)).await
    }

    /// Rebuilds the shards `missing` (index and the node to store it on) of chunk `id`, kept
    /// as code `code`: decoded on this node from K other shards, or encoded afresh from a
    /// copy where too few shards can be read; each is stored on its node. Returns the
    /// holder changes for the ledger (the shards stored).
    pub(crate) async fn rebuild_shards(
        &self,
        id: ChunkId,
        rec: &ChunkRecord,
        code: Shard,
        missing: &[(u8, u64)],
    ) -> Result<Vec<HolderChange>, ApiError> {
        let (k, m) = (code.k as usize, code.m as usize);
        let stripe = stripe(code, rec.len)?;
        let wanted: Vec<usize> = missing.iter().map(|(i, _)| *i as usize).collect();
        let holders = shards_held(rec).filter(|(c, _)| c.k == code.k && c.m == code.m).map(|(_, h)| h);
        let from_shards = match &holders {
            Some(h) => {
                let present: Vec<u8> = h.keys().copied().collect();
                self.gather(id, code, h, (0, stripe.shard as u32), &present, k).await.ok()
            }
            None => None,
        };
        let wanted2 = wanted.clone();
        let rebuilt: Vec<Bytes> = match from_shards {
            Some(got) => {
                tokio::task::spawn_blocking(move || decode(k, m, &got, &wanted2)).await.map_err(internal)??
            }
            None => {
                // Too few shards: encode from the chunk itself (a copy, verified).
                let whole = self.get_chunk(id).await?;
                tokio::task::spawn_blocking(move || -> Result<Vec<Bytes>, ApiError> {
                    let all = encode(&whole, k, m)?;
                    Ok(wanted2.iter().map(|i| all[*i].clone()).collect())
                })
                .await
                .map_err(internal)??
            }
        };
        let puts = missing.iter().zip(rebuilt).map(|((i, node), data)| async move {
            let shard = Shard { index: *i, ..code };
            self.put_shard_at(*node, id, shard, rec.len, data).await.map(|()| HolderChange {
                part: Part::Shard(shard),
                id,
                node: *node,
                len: rec.len,
                held: true,
            })
        });
        let mut changes = Vec::new();
        for r in futures::future::join_all(puts).await {
            match r {
                Ok(c) => changes.push(c),
                Err(e) => tracing::warn!(chunk = %id, "storing a rebuilt shard failed: {e}"),
            }
        }
        Ok(changes)
    }
}

/// The K + M shards of `chunk`: its K data shards, then the parity.
pub(super) fn encode(chunk: &[u8], k: usize, m: usize) -> Result<Vec<Bytes>, ApiError> {
    let stripe = Stripe::new(chunk.len() as u64, k).map_err(gf_err)?;
    let rs = ReedSolomon::new(k, m).map_err(gf_err)?;
    let data = stripe.split(chunk).map_err(gf_err)?;
    let mut parity = vec![vec![0u8; stripe.shard as usize]; m];
    {
        let inputs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
        let mut outs: Vec<&mut [u8]> = parity.iter_mut().map(Vec::as_mut_slice).collect();
        rs.encode(&inputs, &mut outs).map_err(gf_err)?;
    }
    Ok(data.into_iter().chain(parity).map(Bytes::from).collect())
}

/// The shards `wanted` from K present ones (index and bytes, all of one length): present
/// ones are passed through, the others rebuilt.
fn decode(k: usize, m: usize, present: &[(usize, Bytes)], wanted: &[usize]) -> Result<Vec<Bytes>, ApiError> {
    if wanted.iter().all(|w| present.iter().any(|(i, _)| i == w)) {
        return Ok(wanted
            .iter()
            .filter_map(|w| present.iter().find(|(i, _)| i == w).map(|(_, d)| d.clone()))
            .collect());
    }
    let rs = ReedSolomon::new(k, m).map_err(gf_err)?;
    let len = present.first().map_or(0, |(_, d)| d.len());
    let indexes: Vec<usize> = present.iter().map(|(i, _)| *i).collect();
    let inputs: Vec<&[u8]> = present.iter().map(|(_, d)| d.as_ref()).collect();
    let mut outs = vec![vec![0u8; len]; wanted.len()];
    {
        let mut refs: Vec<&mut [u8]> = outs.iter_mut().map(Vec::as_mut_slice).collect();
        rs.rebuild(&indexes, &inputs, wanted, &mut refs).map_err(gf_err)?;
    }
    Ok(outs.into_iter().map(Bytes::from).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_k_shards_decode_the_data_shards() {
        let chunk: Vec<u8> = (0..10_001u32).map(|i| (i * 7 + 3) as u8).collect();
        let (k, m) = (4, 2);
        let shards = encode(&chunk, k, m).unwrap();
        let stripe = Stripe::new(chunk.len() as u64, k).unwrap();
        for a in 0..k + m {
            for b in a + 1..k + m {
                let present: Vec<(usize, Bytes)> =
                    (0..k + m).filter(|i| *i != a && *i != b).map(|i| (i, shards[i].clone())).collect();
                let data = decode(k, m, &present, &[0, 1, 2, 3]).unwrap();
                let refs: Vec<&[u8]> = data.iter().map(|d| d.as_ref()).collect();
                assert_eq!(stripe.join(&refs).unwrap(), chunk, "lost {a} and {b}");
            }
        }
        assert_eq!((write_quorum(2, 1), write_quorum(4, 2), write_quorum(10, 4)), (3, 5, 12));
    }
}
