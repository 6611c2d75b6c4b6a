//! Content-addressed chunk ids: the BLAKE3 hash of a chunk's bytes.

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
