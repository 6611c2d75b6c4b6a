//! How a chunk lies in the K data shards of an `ec:K+M` stripe: cut into K consecutive
//! pieces of one shard length (the last padded with zeros), so a byte range of the chunk is a
//! byte range of one shard, or of two where it crosses a boundary. A small read fetches only
//! those bytes; a degraded one fetches the same range of any K shards and decodes just it
//! (the code works byte by byte).

use crate::{Error, Result};

/// The shape of one chunk's stripe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stripe {
    /// The chunk's length in bytes.
    pub len: u64,
    /// Data shards.
    pub k: usize,
    /// Bytes per shard: `ceil(len / k)` (at least 1).
    pub shard: u64,
}

/// A part of a range read that lies in one data shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Piece {
    /// The data shard.
    pub shard: usize,
    /// Where the bytes start in the shard.
    pub from: u64,
    /// Where they end in the shard (exclusive).
    pub to: u64,
}

impl Stripe {
    /// The stripe of a chunk of `len` bytes over `k` data shards.
    pub fn new(len: u64, k: usize) -> Result<Stripe> {
        if k == 0 || k > 255 {
            return Err(Error::Code { data: k, parity: 0 });
        }
        Ok(Stripe { len, k, shard: len.div_ceil(k as u64).max(1) })
    }

    /// The K data shards of `chunk` (which must be `len` bytes long).
    pub fn split(&self, chunk: &[u8]) -> Result<Vec<Vec<u8>>> {
        if chunk.len() as u64 != self.len {
            return Err(Error::Length { expected: self.len as usize, found: chunk.len() });
        }
        let s = self.shard as usize;
        Ok((0..self.k)
            .map(|i| {
                let start = (i * s).min(chunk.len());
                let mut piece = chunk[start..((i + 1) * s).min(chunk.len())].to_vec();
                piece.resize(s, 0);
                piece
            })
            .collect())
    }

    /// The chunk back from its K data shards.
    pub fn join(&self, shards: &[&[u8]]) -> Result<Vec<u8>> {
        if shards.len() != self.k {
            return Err(Error::Shape { what: "K data shards" });
        }
        let mut out = Vec::with_capacity(self.len as usize);
        for s in shards {
            if s.len() as u64 != self.shard {
                return Err(Error::Length { expected: self.shard as usize, found: s.len() });
            }
            out.extend_from_slice(s);
        }
        out.truncate(self.len as usize);
        Ok(out)
    }

    /// The shard ranges that hold bytes `start..end` of the chunk, in order (none for an
    /// empty range; the range is clipped to the chunk).
    pub fn pieces(&self, start: u64, end: u64) -> Vec<Piece> {
        let end = end.min(self.len);
        let mut out = Vec::new();
        let mut at = start;
        while at < end {
            let shard = (at / self.shard) as usize;
            let from = at % self.shard;
            let to = (end - shard as u64 * self.shard).min(self.shard);
            out.push(Piece { shard, from, to });
            at = shard as u64 * self.shard + to;
        }
        out
    }
}
