//! An in-memory chunk store for tests.

use crate::{ChunkError, ChunkInfo, ChunkStore, Part, PutOutcome, Result, Shard};
use cairn_core::ChunkId;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::SystemTime;

/// A stored part's bytes and when it was last stored or touched.
type Entry = (Vec<u8>, SystemTime);

/// Copies and shards in a hash map; same contract as the file-system store, no durability.
#[derive(Default)]
pub struct MemChunkStore {
    parts: Mutex<HashMap<(ChunkId, Part), Entry>>,
}

impl MemChunkStore {
    fn put_part(&self, id: &ChunkId, part: Part, data: &[u8]) -> PutOutcome {
        let mut map = self.parts.lock().expect("mem store lock");
        let now = SystemTime::now();
        match map.get_mut(&(*id, part)) {
            Some(entry) => {
                entry.1 = now;
                PutOutcome::Existed
            }
            None => {
                map.insert((*id, part), (data.to_vec(), now));
                PutOutcome::Stored
            }
        }
    }

    fn get_part(&self, id: &ChunkId, part: Part) -> Result<Vec<u8>> {
        let map = self.parts.lock().expect("mem store lock");
        map.get(&(*id, part)).map(|(d, _)| d.clone()).ok_or(ChunkError::NotFound(*id))
    }
}

impl ChunkStore for MemChunkStore {
    fn put_hashed(&self, id: &ChunkId, data: &[u8]) -> Result<PutOutcome> {
        Ok(self.put_part(id, Part::Copy, data))
    }

    fn get(&self, id: &ChunkId) -> Result<Vec<u8>> {
        self.get_part(id, Part::Copy)
    }

    fn get_for_transfer(&self, id: &ChunkId) -> Result<Vec<u8>> {
        self.get(id)
    }

    fn put_shard(&self, id: &ChunkId, shard: Shard, data: &[u8]) -> Result<PutOutcome> {
        Ok(self.put_part(id, Part::Shard(shard), data))
    }

    fn get_shard(&self, id: &ChunkId, shard: Shard) -> Result<Vec<u8>> {
        self.get_part(id, Part::Shard(shard))
    }

    fn contains(&self, id: &ChunkId, part: Part) -> Result<bool> {
        Ok(self.parts.lock().expect("mem store lock").contains_key(&(*id, part)))
    }

    fn delete(&self, id: &ChunkId, part: Part) -> Result<()> {
        self.parts.lock().expect("mem store lock").remove(&(*id, part));
        Ok(())
    }

    fn quarantine(&self, id: &ChunkId, part: Part) -> Result<()> {
        self.delete(id, part)
    }

    fn touch(&self, id: &ChunkId) -> Result<bool> {
        let mut map = self.parts.lock().expect("mem store lock");
        let now = SystemTime::now();
        let mut found = false;
        for ((c, _), entry) in map.iter_mut() {
            if c == id {
                entry.1 = now;
                found = true;
            }
        }
        Ok(found)
    }

    fn delete_if_untouched_since(&self, id: &ChunkId, part: Part, cutoff: SystemTime) -> Result<bool> {
        let mut map = self.parts.lock().expect("mem store lock");
        if map.get(&(*id, part)).is_some_and(|e| e.1 < cutoff) {
            map.remove(&(*id, part));
            return Ok(true);
        }
        Ok(false)
    }

    fn used_bytes(&self) -> u64 {
        self.parts.lock().expect("mem store lock").values().map(|(d, _)| d.len() as u64).sum()
    }

    fn list(&self) -> Result<Vec<ChunkInfo>> {
        let map = self.parts.lock().expect("mem store lock");
        Ok(map.iter().map(|((id, part), (_, t))| ChunkInfo { id: *id, part: *part, touched: *t }).collect())
    }
}
