//! Fuzz target of the chunk file format: a chunk file of any bytes (a damaged or hostile
//! disk) is refused as corrupt, never read as data that is not the chunk, and never panics
//! or allocates what its header claims (see `cairn_core::fuzzing`).

use crate::{ChunkError, ChunkStore, FsChunkStore};
use cairn_core::ChunkId;
use proptest::prelude::*;

/// Writes `bytes` as the file of chunk `id` and reads it back both ways.
fn chunk_file(store: &FsChunkStore, id: &ChunkId, bytes: &[u8]) {
    std::fs::write(store.path_of(id), bytes).unwrap();
    for got in [store.get(id), store.get_for_transfer(id)] {
        match got {
            Ok(data) => assert_eq!(&ChunkId::of(&data), id, "a chunk read back is the chunk"),
            Err(ChunkError::Corrupt { .. }) => {}
            Err(e) => panic!("a bad chunk file must read as corrupt, not {e}"),
        }
    }
}

/// A store holding one good chunk: its dir, the store, the chunk's id and file bytes.
type Fixture = (tempfile::TempDir, FsChunkStore, ChunkId, Vec<u8>);

fn store() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = FsChunkStore::open(dir.path()).unwrap();
    let data = b"a chunk of the fuzzing store".to_vec();
    let id = ChunkId::of(&data);
    store.put(&id, &data).unwrap();
    let good = std::fs::read(store.path_of(&id)).unwrap();
    (dir, store, id, good)
}

/// One fixture per fuzz target, made once (each case only rewrites the chunk's file).
static RANDOM: std::sync::LazyLock<Fixture> = std::sync::LazyLock::new(store);
static MUTATED: std::sync::LazyLock<Fixture> = std::sync::LazyLock::new(store);

#[test]
fn fuzz_seeds_chunk_file() {
    let (_dir, store, id, good) = store();
    chunk_file(&store, &id, &good);
    for seed in cairn_core::fuzzing::corpus("chunk") {
        chunk_file(&store, &id, &seed);
    }
}

proptest! {
    #[test]
    fn fuzz_chunk_file(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let (_, store, id, _) = &*RANDOM;
        chunk_file(store, id, &bytes);
    }

    #[test]
    fn fuzz_chunk_file_mutated(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6), cut in any::<prop::sample::Index>()) {
        let (_, store, id, good) = &*MUTATED;
        let mut bytes = good.clone();
        for (at, v) in flips {
            let i = at.index(bytes.len());
            bytes[i] = v;
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        chunk_file(store, id, &bytes);
    }
}
