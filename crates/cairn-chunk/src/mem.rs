//! An in-memory chunk store for tests.

use crate::{ChunkError, ChunkInfo, ChunkStore, PutOutcome, Result};
use cairn_core::ChunkId;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::SystemTime;

/// Chunks in a hash map; same contract as the file-system store, no durability.
#[derive(Default)]
pub struct MemChunkStore {
    chunks: Mutex<HashMap<ChunkId, (Vec<u8>, SystemTime)>>,
}

impl ChunkStore for MemChunkStore {
    fn put_hashed(&self, id: &ChunkId, data: &[u8]) -> Result<PutOutcome> {
        let mut map = self.chunks.lock().expect("mem store lock");
        let now = SystemTime::now();
        match map.get_mut(id) {
            Some(entry) => {
                entry.1 = now;
                Ok(PutOutcome::Existed)
            }
            None => {
                map.insert(*id, (data.to_vec(), now));
                Ok(PutOutcome::Stored)
            }
        }
    }

    fn get(&self, id: &ChunkId) -> Result<Vec<u8>> {
        let map = self.chunks.lock().expect("mem store lock");
        map.get(id).map(|(d, _)| d.clone()).ok_or(ChunkError::NotFound(*id))
    }

    fn get_for_transfer(&self, id: &ChunkId) -> Result<Vec<u8>> {
        self.get(id)
    }

    fn contains(&self, id: &ChunkId) -> Result<bool> {
        Ok(self.chunks.lock().expect("mem store lock").contains_key(id))
    }

    fn delete(&self, id: &ChunkId) -> Result<()> {
        self.chunks.lock().expect("mem store lock").remove(id);
        Ok(())
    }

    fn quarantine(&self, id: &ChunkId) -> Result<()> {
        self.delete(id)
    }

    fn touch(&self, id: &ChunkId) -> Result<bool> {
        let mut map = self.chunks.lock().expect("mem store lock");
        Ok(map.get_mut(id).map(|e| e.1 = SystemTime::now()).is_some())
    }

    fn delete_if_untouched_since(&self, id: &ChunkId, cutoff: SystemTime) -> Result<bool> {
        let mut map = self.chunks.lock().expect("mem store lock");
        if map.get(id).is_some_and(|e| e.1 < cutoff) {
            map.remove(id);
            return Ok(true);
        }
        Ok(false)
    }

    fn used_bytes(&self) -> u64 {
        self.chunks.lock().expect("mem store lock").values().map(|(d, _)| d.len() as u64).sum()
    }

    fn list(&self) -> Result<Vec<ChunkInfo>> {
        let map = self.chunks.lock().expect("mem store lock");
        Ok(map.iter().map(|(id, (_, t))| ChunkInfo { id: *id, touched: *t }).collect())
    }
}
