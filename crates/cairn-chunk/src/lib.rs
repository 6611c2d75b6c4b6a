//! cairn's chunk store: immutable, content-addressed chunks on a node's disk.
//!
//! [`ChunkStore`] is the seam; [`FsChunkStore`] keeps one file per chunk (see `docs/formats.md`
//! for its header) and [`MemChunkStore`] keeps chunks in memory for tests. Both pass the same
//! conformance suite. Invariants: a chunk is stored under the BLAKE3 hash of its bytes, a
//! stored chunk is never half-visible, and every read is verified against its hash.
//!
//! Besides whole copies a store keeps *shards* of erasure-coded chunks, each under its
//! chunk's id and its index in the stripe ([`Part::Shard`]). A shard's bytes do not hash to
//! anything the store knows, so a shard is checked by the CRC32C its file carries; the node
//! that joins the shards checks the whole chunk's BLAKE3.

#![warn(missing_docs)]

mod fs;
#[cfg(test)]
mod fuzz;
mod mem;

pub use fs::{FsChunkReader, FsChunkStore};
pub use mem::MemChunkStore;

pub use cairn_core::wire::{Part, Shard};
use cairn_core::{ChunkId, ErrorCode};
use std::time::SystemTime;

/// Errors of the chunk store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChunkError {
    /// No chunk with this id here.
    #[error("chunk {0} not found")]
    NotFound(ChunkId),
    /// The bytes offered do not hash to the id they were offered under.
    #[error("chunk bytes do not hash to {0}")]
    HashMismatch(ChunkId),
    /// A stored chunk failed verification.
    #[error("chunk {id} is corrupt: {why}")]
    Corrupt {
        /// The chunk.
        id: ChunkId,
        /// What was wrong.
        why: String,
    },
    /// The disk is full.
    #[error("no space left on the chunk store's disk")]
    NoSpace,
    /// Any other I/O failure.
    #[error("chunk store I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl ChunkError {
    /// The stable code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            ChunkError::NotFound(_) => ErrorCode::NotFound,
            ChunkError::HashMismatch(_) => ErrorCode::InvalidArgument,
            ChunkError::Corrupt { .. } => ErrorCode::Corrupt,
            ChunkError::NoSpace => ErrorCode::NoSpace,
            ChunkError::Io(_) => ErrorCode::Internal,
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = ChunkError> = std::result::Result<T, E>;

/// What `put` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// The chunk was written.
    Stored,
    /// An identical chunk was already there (deduplicated); its age was refreshed.
    Existed,
}

/// One stored chunk copy or shard, as listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkInfo {
    /// Its chunk's id.
    pub id: ChunkId,
    /// A whole copy, or which shard.
    pub part: Part,
    /// When it was last stored or deduplicated against (the GC's age clock).
    pub touched: SystemTime,
}

/// A node's store of immutable chunks. Blocking: call from a blocking thread.
pub trait ChunkStore: Send + Sync + 'static {
    /// Stores `data` under `id` durably before returning. Refuses data that does not hash to
    /// `id`. Storing an existing chunk refreshes its age so a concurrent GC keeps it.
    fn put(&self, id: &ChunkId, data: &[u8]) -> Result<PutOutcome> {
        if !verify(id, data) {
            return Err(ChunkError::HashMismatch(*id));
        }
        self.put_hashed(id, data)
    }
    /// Like [`ChunkStore::put`] for bytes whose `id` the caller computed from these very
    /// bytes in this process: skips hashing them a second time.
    fn put_hashed(&self, id: &ChunkId, data: &[u8]) -> Result<PutOutcome>;
    /// Reads a chunk, verified against its id (BLAKE3 of the content).
    fn get(&self, id: &ChunkId) -> Result<Vec<u8>>;
    /// Reads a chunk checking only its stored length and CRC32C (bit rot on this disk, at
    /// memory speed), for transfers whose receiver verifies the BLAKE3 content hash end to end.
    fn get_for_transfer(&self, id: &ChunkId) -> Result<Vec<u8>>;
    /// Stores a shard of chunk `id` durably before returning, with a CRC32C of `data` (the
    /// caller computed the shard from verified bytes). Storing an existing shard refreshes its
    /// age.
    fn put_shard(&self, id: &ChunkId, shard: Shard, data: &[u8]) -> Result<PutOutcome>;
    /// Reads a shard of chunk `id`, checked against its stored length and CRC32C.
    fn get_shard(&self, id: &ChunkId, shard: Shard) -> Result<Vec<u8>>;
    /// True if this part of the chunk is stored here (not verified).
    fn contains(&self, id: &ChunkId, part: Part) -> Result<bool>;
    /// Deletes a part of a chunk; deleting a missing one is not an error.
    fn delete(&self, id: &ChunkId, part: Part) -> Result<()>;
    /// Moves a part that failed verification out of the store: no longer served or listed,
    /// kept aside (where the store can) for inspection. A missing part is not an error.
    fn quarantine(&self, id: &ChunkId, part: Part) -> Result<()>;
    /// Refreshes the age of every part of a chunk held here (the intent step of a commit);
    /// false if none is here. Serialised with [`ChunkStore::delete_if_untouched_since`], so a
    /// chunk touched before a commit cannot be collected under it.
    fn touch(&self, id: &ChunkId) -> Result<bool>;
    /// Deletes a part only if it has not been stored or touched since `cutoff`; true if deleted.
    fn delete_if_untouched_since(&self, id: &ChunkId, part: Part, cutoff: SystemTime) -> Result<bool>;
    /// Every copy and shard stored here.
    fn list(&self) -> Result<Vec<ChunkInfo>>;
    /// Bytes of chunk data (copies and shards) stored here.
    fn used_bytes(&self) -> u64;
}

/// Checks that `data` hashes to `id`.
fn verify(id: &ChunkId, data: &[u8]) -> bool {
    ChunkId::of(data) == *id
}

#[cfg(test)]
mod conformance {
    //! The one suite every [`ChunkStore`] implementation must pass.
    use super::*;

    pub fn run(store: &dyn ChunkStore) {
        let data = b"hello chunk".to_vec();
        let id = ChunkId::of(&data);
        let copy = Part::Copy;
        assert!(!store.contains(&id, copy).unwrap());
        assert!(matches!(store.get(&id), Err(ChunkError::NotFound(_))));
        assert_eq!(store.put(&id, &data).unwrap(), PutOutcome::Stored);
        assert_eq!(store.put(&id, &data).unwrap(), PutOutcome::Existed);
        assert!(store.contains(&id, copy).unwrap());
        assert_eq!(store.get(&id).unwrap(), data);
        assert_eq!(store.get_for_transfer(&id).unwrap(), data);

        let wrong = ChunkId::of(b"other");
        assert!(matches!(store.put(&wrong, &data), Err(ChunkError::HashMismatch(_))));
        assert!(!store.contains(&wrong, copy).unwrap());

        let empty = ChunkId::of(&[]);
        store.put(&empty, &[]).unwrap();
        assert_eq!(store.get(&empty).unwrap(), Vec::<u8>::new());

        assert_eq!(store.used_bytes(), data.len() as u64);
        let mut listed: Vec<ChunkId> = store.list().unwrap().into_iter().map(|c| c.id).collect();
        assert!(store.list().unwrap().iter().all(|c| c.part == copy));
        listed.sort();
        let mut want = vec![id, empty];
        want.sort();
        assert_eq!(listed, want);

        assert!(store.touch(&id).unwrap());
        assert!(!store.touch(&wrong).unwrap());
        let past = SystemTime::now() - std::time::Duration::from_secs(3600);
        assert!(!store.delete_if_untouched_since(&id, copy, past).unwrap());
        assert!(store.contains(&id, copy).unwrap());
        let future = SystemTime::now() + std::time::Duration::from_secs(3600);
        assert!(store.delete_if_untouched_since(&empty, copy, future).unwrap());
        assert!(!store.contains(&empty, copy).unwrap());
        store.put(&empty, &[]).unwrap();
        let bad = ChunkId::of(b"bad");
        store.put(&bad, b"bad").unwrap();
        store.quarantine(&bad, copy).unwrap();
        store.quarantine(&bad, copy).unwrap();
        assert!(!store.contains(&bad, copy).unwrap());
        assert!(matches!(store.get(&bad), Err(ChunkError::NotFound(_))));
        store.delete(&id, copy).unwrap();
        store.delete(&id, copy).unwrap();
        assert!(!store.contains(&id, copy).unwrap());
        assert_eq!(store.used_bytes(), 0);
        assert_eq!(store.list().unwrap().len(), 1);
        store.delete(&empty, copy).unwrap();
        shards(store);
    }

    /// Shards live beside copies under their chunk's id, each part on its own.
    fn shards(store: &dyn ChunkStore) {
        let id = ChunkId::of(b"a chunk cut into shards");
        let (s0, s2) = (b"shard zero".to_vec(), b"shard two!".to_vec());
        let shard = |index| Shard { index, k: 2, m: 1 };
        assert!(matches!(store.get_shard(&id, shard(0)), Err(ChunkError::NotFound(_))));
        assert!(!store.touch(&id).unwrap());
        assert_eq!(store.put_shard(&id, shard(0), &s0).unwrap(), PutOutcome::Stored);
        assert_eq!(store.put_shard(&id, shard(0), &s0).unwrap(), PutOutcome::Existed);
        store.put_shard(&id, shard(2), &s2).unwrap();
        assert_eq!(store.get_shard(&id, shard(0)).unwrap(), s0);
        assert_eq!(store.get_shard(&id, shard(2)).unwrap(), s2);
        assert!(matches!(store.get_shard(&id, shard(1)), Err(ChunkError::NotFound(_))));
        assert!(matches!(store.get(&id), Err(ChunkError::NotFound(_))), "a shard is no copy");
        assert!(store.contains(&id, Part::Shard(shard(2))).unwrap() && !store.contains(&id, Part::Copy).unwrap());
        assert_eq!(store.used_bytes(), 20);
        let mut parts: Vec<Part> = store.list().unwrap().into_iter().filter(|c| c.id == id).map(|c| c.part).collect();
        parts.sort();
        assert_eq!(parts, vec![Part::Shard(shard(0)), Part::Shard(shard(2))]);
        assert!(store.touch(&id).unwrap());
        let past = SystemTime::now() - std::time::Duration::from_secs(3600);
        assert!(!store.delete_if_untouched_since(&id, Part::Shard(shard(0)), past).unwrap());
        let future = SystemTime::now() + std::time::Duration::from_secs(3600);
        assert!(store.delete_if_untouched_since(&id, Part::Shard(shard(0)), future).unwrap());
        assert!(!store.contains(&id, Part::Shard(shard(0))).unwrap());
        store.quarantine(&id, Part::Shard(shard(2))).unwrap();
        assert!(matches!(store.get_shard(&id, shard(2)), Err(ChunkError::NotFound(_))));
        assert!(!store.touch(&id).unwrap());
        store.put_shard(&id, shard(1), &s0).unwrap();
        store.delete(&id, Part::Shard(shard(1))).unwrap();
        assert_eq!(store.used_bytes(), 0);
        assert!(store.list().unwrap().is_empty());
    }

    #[test]
    fn mem_store_conforms() {
        run(&MemChunkStore::default());
    }

    #[test]
    fn fs_store_conforms() {
        let dir = tempfile::tempdir().unwrap();
        run(&FsChunkStore::open(dir.path()).unwrap());
    }
}
