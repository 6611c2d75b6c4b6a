//! Content-addressed chunk ids (the BLAKE3 hash of a chunk's bytes) and the parts of a chunk
//! that nodes keep: whole copies, or shards of an erasure-coded stripe.

use crate::error::Error;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The id of a chunk: the BLAKE3 hash of its content. Equal content, equal id.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ChunkId(pub [u8; 32]);

impl ChunkId {
    /// The id of `data`.
    pub fn of(data: &[u8]) -> Self {
        ChunkId(*blake3::hash(data).as_bytes())
    }

    /// The 64-digit lowercase hex form.
    pub fn to_hex(&self) -> String {
        blake3::Hash::from_bytes(self.0).to_hex().to_string()
    }

    /// Parses the 64-digit hex form.
    pub fn from_hex(s: &str) -> Result<Self, Error> {
        blake3::Hash::from_hex(s)
            .map(|h| ChunkId(*h.as_bytes()))
            .map_err(|_| Error::InvalidChunkId(s.chars().take(80).collect()))
    }
}

impl fmt::Display for ChunkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ChunkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChunkId({})", &self.to_hex()[..16])
    }
}

/// Which part of a chunk's redundancy a holder keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub enum Part {
    /// A full copy (replication).
    #[default]
    Copy,
    /// One shard of an erasure-coded stripe.
    Shard(Shard),
}

/// Shard `index` of a chunk cut into `k` data and `m` parity shards (`ec:K+M`): data shards
/// are `0..k`, parity shards `k..k + m`. The shape travels with every shard, so a chunk kept
/// at one code reads right even after its files' policy changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Shard {
    /// Its place in the stripe.
    pub index: u8,
    /// Data shards of the stripe.
    pub k: u8,
    /// Parity shards of the stripe.
    pub m: u8,
}

impl Shard {
    /// True if the shape is one a policy may ask for and `index` lies in it.
    pub fn is_valid(&self) -> bool {
        (1..=crate::policy::MAX_DATA_SHARDS).contains(&self.k)
            && (1..=crate::policy::MAX_PARITY_SHARDS).contains(&self.m)
            && self.index < self.k + self.m
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "shard {} of ec:{}+{}", self.index, self.k, self.m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn hex_roundtrip(data in prop::collection::vec(any::<u8>(), 0..512)) {
            let id = ChunkId::of(&data);
            prop_assert_eq!(ChunkId::from_hex(&id.to_hex()).unwrap(), id);
        }
    }

    #[test]
    fn refuses_bad_hex() {
        assert!(ChunkId::from_hex("abc").is_err());
        assert!(ChunkId::from_hex(&"g".repeat(64)).is_err());
    }
}
