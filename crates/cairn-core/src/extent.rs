//! A file's data as a list of extents: pieces of chunks (or holes) laid end to end.
//!
//! An [`Extent`] names `len` bytes starting at `offset` inside a chunk, or `len` zero bytes
//! (a hole, `chunk: None`). A file's extents cover `0..size` in order without gaps, so every
//! byte of the file is found by walking them. Chunks may be partial and of any size, which is
//! what in-place writes, appends, concatenation (S3 multipart parts) and truncation need: each
//! is a [`splice`] of extent lists, no byte is copied.
//!
//! The functions here are pure and keep lists *normal*: no empty extent, no two neighbouring
//! holes, no two neighbouring pieces that continue each other inside one chunk.

use crate::ChunkId;
use serde::{Deserialize, Serialize};

/// `len` bytes of a file: from `offset` inside `chunk`, or zeros when `chunk` is `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extent {
    /// The chunk holding the bytes; `None` for a hole (reads as zeros).
    pub chunk: Option<ChunkId>,
    /// Where the bytes start inside the chunk (0 for holes).
    pub offset: u32,
    /// Length in bytes, never 0 in a normal list.
    pub len: u64,
}

impl Extent {
    /// The whole of a chunk of `len` bytes.
    pub fn whole(chunk: ChunkId, len: u32) -> Self {
        Extent { chunk: Some(chunk), offset: 0, len: len as u64 }
    }

    /// `len` zero bytes.
    pub fn hole(len: u64) -> Self {
        Extent { chunk: None, offset: 0, len }
    }

    /// Bytes `from..to` of this extent (relative to its start).
    fn cut(&self, from: u64, to: u64) -> Extent {
        Extent {
            chunk: self.chunk,
            offset: self.offset + if self.chunk.is_some() { from as u32 } else { 0 },
            len: to - from,
        }
    }

    /// True if `next` continues this extent (a hole after a hole, or the next bytes of the
    /// same chunk).
    fn joins(&self, next: &Extent) -> bool {
        match (self.chunk, next.chunk) {
            (None, None) => true,
            (Some(a), Some(b)) => a == b && self.offset as u64 + self.len == next.offset as u64,
            _ => false,
        }
    }
}

/// The total length of `extents`.
pub fn total(extents: &[Extent]) -> u64 {
    extents.iter().map(|e| e.len).sum()
}

/// Appends `e` to a normal list, keeping it normal.
fn push(out: &mut Vec<Extent>, e: Extent) {
    if e.len == 0 {
        return;
    }
    match out.last_mut() {
        Some(last) if last.joins(&e) => last.len += e.len,
        _ => out.push(e),
    }
}

/// Makes a list normal (see the module doc).
pub fn normalize(extents: &[Extent]) -> Vec<Extent> {
    let mut out = Vec::with_capacity(extents.len());
    for e in extents {
        push(&mut out, *e);
    }
    out
}

/// The extents covering bytes `from..to` of the file (clipped to its length).
pub fn slice(extents: &[Extent], from: u64, to: u64) -> Vec<Extent> {
    let mut out = Vec::new();
    let mut at = 0u64;
    for e in extents {
        let (start, end) = (at, at + e.len);
        at = end;
        if end <= from || start >= to {
            continue;
        }
        push(&mut out, e.cut(from.max(start) - start, to.min(end) - start));
    }
    out
}

/// The file of `extents` cut or extended with zeros to `size` bytes.
pub fn truncate(extents: &[Extent], size: u64) -> Vec<Extent> {
    let mut out = slice(extents, 0, size);
    let have = total(&out);
    push(&mut out, Extent::hole(size - have.min(size)));
    out
}

/// The file of `extents` with bytes `at..at + total(new)` replaced by `new`; a write past the
/// end leaves a hole between the old end and `at`.
pub fn splice(extents: &[Extent], at: u64, new: &[Extent]) -> Vec<Extent> {
    let size = total(extents);
    let end = at + total(new);
    let mut out = truncate(extents, at);
    for e in new {
        push(&mut out, *e);
    }
    for e in slice(extents, end, size) {
        push(&mut out, e);
    }
    out
}

/// Every chunk named, once per extent naming it (the file's references).
pub fn chunks(extents: &[Extent]) -> impl Iterator<Item = ChunkId> + '_ {
    extents.iter().filter_map(|e| e.chunk)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An oracle: a file as plain bytes, where chunk `k` holds bytes `k * 1000 + i`.
    fn bytes(extents: &[Extent]) -> Vec<u32> {
        let mut out = Vec::new();
        for e in extents {
            for i in 0..e.len {
                out.push(match e.chunk {
                    None => 0,
                    Some(c) => c.0[0] as u32 * 1000 + e.offset + i as u32 + 1,
                });
            }
        }
        out
    }

    fn chunk(k: u8) -> ChunkId {
        ChunkId([k; 32])
    }

    fn arb_extent() -> impl Strategy<Value = Extent> {
        (0u8..4, 0u32..20, 1u64..20, any::<bool>()).prop_map(|(k, offset, len, hole)| match hole {
            true => Extent::hole(len),
            false => Extent { chunk: Some(chunk(k + 1)), offset, len },
        })
    }

    fn is_normal(extents: &[Extent]) -> bool {
        extents.iter().all(|e| e.len > 0) && extents.windows(2).all(|w| !w[0].joins(&w[1]))
    }

    proptest! {
        #[test]
        fn splice_matches_bytes(file in prop::collection::vec(arb_extent(), 0..8),
                                new in prop::collection::vec(arb_extent(), 0..4),
                                at in 0u64..120) {
            let file = normalize(&file);
            let mut want = bytes(&file);
            let patch = bytes(&new);
            if want.len() < at as usize + patch.len() {
                want.resize(at as usize + patch.len(), 0);
            }
            want[at as usize..at as usize + patch.len()].copy_from_slice(&patch);
            let got = splice(&file, at, &new);
            prop_assert!(is_normal(&got));
            prop_assert_eq!(bytes(&got), want);
        }

        #[test]
        fn slice_and_truncate_match_bytes(file in prop::collection::vec(arb_extent(), 0..8),
                                          a in 0u64..150, b in 0u64..150) {
            let all = bytes(&file);
            let (from, to) = (a.min(b), a.max(b));
            let want: Vec<u32> = all.iter().copied().skip(from as usize).take((to - from) as usize).collect();
            let got = slice(&file, from, to);
            prop_assert!(is_normal(&got));
            prop_assert_eq!(bytes(&got), want);
            let mut want = all.clone();
            want.resize(a as usize, 0);
            let got = truncate(&file, a);
            prop_assert!(is_normal(&got));
            prop_assert_eq!(total(&got), a);
            prop_assert_eq!(bytes(&got), want);
        }
    }
}
