//! The mount's memory of chunks: verified chunks kept in a size-bounded LRU shared by every
//! open file, fetched once however many reads wait for them, and fetched ahead of sequential
//! readers several chunks at a time (from as many nodes), so a cold read streams.

use bytes::Bytes;
use cairn_client::{Backend, ClientError, HttpBackend};
use cairn_core::extent::slice;
use cairn_core::wire::{Content, Inode};
use cairn_core::ChunkId;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;

/// How far past a sequential read the mount fetches, in bytes.
const READ_AHEAD: u64 = 16 << 20;

/// The default memory for chunks: a sixteenth of the machine's memory, between 256 MiB and
/// 1 GiB.
pub fn default_memory() -> u64 {
    let total = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        let line = m.lines().find(|l| l.starts_with("MemTotal:"))?;
        line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kib| kib << 10)
    });
    (total.unwrap_or(0) / 16).clamp(256 << 20, 1 << 30)
}

type Cell = Arc<OnceCell<Bytes>>;

/// One remembered chunk: its cell (empty while fetched), when it was last used, and the
/// bytes it counts against the limit once fetched.
struct Entry {
    cell: Cell,
    used: u64,
    charged: u64,
}

#[derive(Default)]
struct Lru {
    entries: HashMap<ChunkId, Entry>,
    by_use: BTreeMap<u64, ChunkId>,
    clock: u64,
    bytes: u64,
}

/// Chunks in memory, at most `limit` bytes of them.
pub(crate) struct Chunks {
    lru: Mutex<Lru>,
    limit: u64,
}

impl Chunks {
    /// An empty memory of at most `limit` bytes (0: remember nothing past the reads that
    /// wait for a chunk).
    pub fn new(limit: u64) -> Self {
        Chunks { lru: Mutex::default(), limit }
    }

    /// The cell of chunk `id`, made if new (then `true`), marked as just used.
    fn cell(&self, id: ChunkId) -> (Cell, bool) {
        let mut lru = self.lru.lock().expect("chunk lru");
        lru.clock += 1;
        let now = lru.clock;
        if let Some(e) = lru.entries.get_mut(&id) {
            let before = std::mem::replace(&mut e.used, now);
            let cell = e.cell.clone();
            lru.by_use.remove(&before);
            lru.by_use.insert(now, id);
            return (cell, false);
        }
        let cell = Cell::default();
        lru.entries.insert(id, Entry { cell: cell.clone(), used: now, charged: 0 });
        lru.by_use.insert(now, id);
        (cell, true)
    }

    /// Counts fetched chunk `id` against the limit and forgets the least recently used
    /// chunks until the memory fits again.
    fn charge(&self, id: ChunkId, len: u64) {
        let mut lru = self.lru.lock().expect("chunk lru");
        let Some(e) = lru.entries.get_mut(&id) else { return };
        if e.charged == 0 {
            e.charged = len;
            lru.bytes += len;
        }
        while lru.bytes > self.limit {
            let Some((_, oldest)) = lru.by_use.pop_first() else { break };
            if let Some(e) = lru.entries.remove(&oldest) {
                lru.bytes -= e.charged;
            }
        }
    }

    /// Chunk `id`, from memory or fetched (and verified) by `b`.
    async fn get(self: &Arc<Self>, b: &HttpBackend, id: ChunkId) -> Result<Bytes, ClientError> {
        let (cell, _) = self.cell(id);
        self.fill(b, id, &cell).await
    }

    async fn fill(&self, b: &HttpBackend, id: ChunkId, cell: &Cell) -> Result<Bytes, ClientError> {
        let data = cell.get_or_try_init(|| async { Ok::<_, ClientError>(b.get_chunk(id).await?.into_contiguous()) });
        let data = data.await?.clone();
        self.charge(id, data.len() as u64);
        Ok(data)
    }

    /// Starts fetching the chunks of `inode` in `from..from + READ_AHEAD` that are neither
    /// in memory nor on their way.
    fn read_ahead(self: &Arc<Self>, b: &Arc<HttpBackend>, inode: &Inode, from: u64) {
        let to = from.saturating_add(READ_AHEAD).min(inode.size);
        if from >= to {
            return;
        }
        for e in slice(inode.extents(), from, to) {
            let Some(id) = e.chunk else { continue };
            let (cell, fresh) = self.cell(id);
            if fresh {
                let (me, b) = (self.clone(), b.clone());
                tokio::spawn(async move {
                    // A failure here is met again, and reported, by the read that needs it.
                    let _ = me.fill(&b, id, &cell).await;
                });
            }
        }
    }

    /// Bytes `offset..offset + len` of `inode` (short at the end of the file); a
    /// `sequential` read also starts fetching what comes next.
    pub async fn read(
        self: &Arc<Self>,
        b: &Arc<HttpBackend>,
        inode: &Inode,
        offset: u64,
        len: u64,
        sequential: bool,
    ) -> Result<Vec<u8>, ClientError> {
        let end = offset.saturating_add(len).min(inode.size);
        if offset >= end {
            return Ok(Vec::new());
        }
        match &inode.content {
            Content::Inline(d) => {
                let (a, z) = (offset as usize, (end as usize).min(d.len()));
                let mut out = d.get(a..z).unwrap_or_default().to_vec();
                out.resize((end - offset) as usize, 0);
                return Ok(out);
            }
            Content::Extents(_) => {}
            _ => return Ok(vec![0; (end - offset) as usize]),
        }
        if sequential {
            self.read_ahead(b, inode, end);
        }
        let pieces = slice(inode.extents(), offset, end);
        let fetches = pieces.iter().map(|e| async move {
            match e.chunk {
                Some(id) => self.get(b, id).await.map(Some),
                None => Ok(None),
            }
        });
        let chunks = futures::future::try_join_all(fetches).await?;
        let mut out = Vec::with_capacity((end - offset) as usize);
        for (e, data) in pieces.iter().zip(chunks) {
            let Some(data) = data else {
                out.resize(out.len() + e.len as usize, 0);
                continue;
            };
            let (a, z) = (e.offset as usize, e.offset as usize + e.len as usize);
            let piece = data.get(a..z).ok_or_else(|| {
                ClientError::api(cairn_core::ErrorCode::Corrupt, "a chunk is shorter than its extent")
            })?;
            out.extend_from_slice(piece);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> ChunkId {
        ChunkId([n; 32])
    }

    #[test]
    fn the_least_recently_used_chunks_go_first() {
        let c = Chunks::new(10);
        for n in 1..=3 {
            let (_, fresh) = c.cell(id(n));
            assert!(fresh);
            c.charge(id(n), 4);
        }
        // 12 bytes > 10: chunk 1, the oldest, is gone; 2 and 3 stay.
        let (_, fresh) = c.cell(id(2));
        assert!(!fresh, "chunk 2 is remembered");
        let (_, fresh) = c.cell(id(1));
        assert!(fresh, "chunk 1 was forgotten");
        c.charge(id(1), 4);
        // Chunk 3 is now the least recently used.
        assert!(c.cell(id(3)).1);
        assert_eq!(c.lru.lock().unwrap().bytes, 4 + 4);
    }
}
