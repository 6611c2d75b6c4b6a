//! Commands on the durability ledger: holders gained and lost, nodes forgotten, chunk records
//! dropped once unreferenced.
//!
//! Every change to a record's holders goes through [`Tx::set_holders`], which keeps the
//! per-node index (`holdings`: which chunks each node holds) equal to the records.

use crate::apply::Tx;
use crate::tables::{get_chunk, ChunkRecord, Holder};
use crate::Result;
use cairn_core::wire::{ApplyResult, HolderChange, Reply};
use cairn_core::ChunkId;
use redb::ReadableTable;

impl Tx<'_> {
    /// Replaces `rec`'s holders with `holders` (ascending), updating the per-node index, and
    /// stores the record.
    fn set_holders(&mut self, id: &ChunkId, rec: &mut ChunkRecord, holders: Vec<Holder>) -> Result<()> {
        for h in rec.holders.iter().filter(|h| !holders.iter().any(|n| n.node == h.node)) {
            self.holdings.remove((h.node, id.0.as_slice()))?;
        }
        for h in holders.iter().filter(|h| !rec.holds(h.node)) {
            self.holdings.insert((h.node, id.0.as_slice()), ())?;
        }
        rec.holders = holders;
        self.put_chunk(id, rec)
    }

    /// Records holders gained and lost. A chunk reported stored before any commit names it
    /// gets a record with no references, which the garbage collector forgets after the grace
    /// period if no commit follows.
    pub(crate) fn chunk_holders(&mut self, changes: &[HolderChange]) -> Result<ApplyResult> {
        let mut changed = 0;
        for c in changes {
            let mut rec = match (get_chunk(&self.chunks, &c.id)?, c.held) {
                (Some(rec), _) => rec,
                (None, true) => ChunkRecord::new(self.now),
                (None, false) => continue,
            };
            let holder = Holder { node: c.node, part: c.part };
            let mut holders = rec.holders.clone();
            match (holders.binary_search(&holder), c.held) {
                (Err(i), true) => holders.insert(i, holder),
                (Ok(i), false) => {
                    holders.remove(i);
                }
                _ => continue,
            }
            if c.held {
                rec.len = c.len;
            }
            self.set_holders(&c.id, &mut rec, holders)?;
            changed += 1;
        }
        Ok(Ok(Reply::Count(changed)))
    }

    /// Drops `node` from the holders of every chunk it holds (found through the index).
    pub(crate) fn forget_node(&mut self, node: u64) -> Result<ApplyResult> {
        let mut ids = Vec::new();
        for r in self.holdings.range((node, [0u8; 0].as_slice())..(node + 1, [0u8; 0].as_slice()))? {
            ids.push(crate::query::chunk_key(r?.0.value().1)?);
        }
        for id in &ids {
            if let Some(mut rec) = get_chunk(&self.chunks, id)? {
                let holders = rec.holders.iter().copied().filter(|h| h.node != node).collect();
                self.set_holders(id, &mut rec, holders)?;
            }
        }
        Ok(Ok(Reply::Count(ids.len() as u64)))
    }

    /// Forgets records unreferenced since at or before `before` (their index entries too).
    pub(crate) fn forget_chunks(&mut self, ids: &[ChunkId], before: i64) -> Result<ApplyResult> {
        let mut n = 0;
        for id in ids {
            if let Some(mut rec) = get_chunk(&self.chunks, id)? {
                if rec.refs == 0 && rec.zero_since.is_some_and(|t| t <= before) {
                    self.set_holders(id, &mut rec, Vec::new())?;
                    self.chunks.remove(id.0.as_slice())?;
                    n += 1;
                }
            }
        }
        Ok(Ok(Reply::Count(n)))
    }
}
