//! Commands on the durability ledger: holders gained and lost, nodes forgotten, chunk records
//! dropped once unreferenced.
//!
//! Every change to a record's holders goes through [`Tx::set_holders`], which keeps the
//! per-node index (`holdings`: which chunks each node holds) equal to the records.

use crate::apply::Tx;
use crate::tables::{fail, get_chunk, get_inode, ChunkRecord, Holder};
use crate::Result;
use cairn_core::wire::{ApplyResult, Content, HolderChange, InodeKind, Reply};
use cairn_core::{ChunkId, ErrorCode, Policy};
use redb::ReadableTable;

impl Tx<'_> {
    /// Replaces `rec`'s holders with `holders` (ascending), updating the per-node index, and
    /// stores the record.
    /// `before` is the record as stored (`None` for a new one); per-node counters
    /// (`held/<node>`) follow the index.
    fn set_holders(
        &mut self,
        id: &ChunkId,
        before: Option<&ChunkRecord>,
        rec: &mut ChunkRecord,
        holders: Vec<Holder>,
    ) -> Result<()> {
        // By node, once each: one node may hold several parts (shards on a small cluster).
        let mut gone: Vec<u64> = rec.nodes().filter(|n| !holders.iter().any(|h| h.node == *n)).collect();
        let mut new: Vec<u64> = holders.iter().map(|h| h.node).filter(|n| !rec.holds(*n)).collect();
        gone.sort_unstable();
        gone.dedup();
        new.sort_unstable();
        new.dedup();
        for n in &gone {
            self.holdings.remove((*n, id.0.as_slice()))?;
            self.count_held(*n, -1)?;
        }
        for n in &new {
            self.holdings.insert((*n, id.0.as_slice()), ())?;
            self.count_held(*n, 1)?;
        }
        rec.holders = holders;
        self.put_chunk(id, before, Some(rec))
    }

    /// Adds `d` to the number of chunks node `n` holds.
    fn count_held(&mut self, n: u64, d: i64) -> Result<()> {
        let key = crate::tables::held_key(n);
        let v = self.counters.get(key.as_str())?.map_or(0, |v| v.value()).saturating_add_signed(d);
        match v {
            0 => drop(self.counters.remove(key.as_str())?),
            v => drop(self.counters.insert(key.as_str(), v)?),
        }
        Ok(())
    }

    /// Records holders gained and lost. A chunk reported stored before any commit names it
    /// gets a record with no references, which the garbage collector forgets after the grace
    /// period if no commit follows.
    pub(crate) fn chunk_holders(&mut self, changes: &[HolderChange]) -> Result<ApplyResult> {
        let mut changed = 0;
        for c in changes {
            let before = get_chunk(&self.chunks, &c.id)?;
            let mut rec = match (&before, c.held) {
                (Some(rec), _) => rec.clone(),
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
            self.set_holders(&c.id, before.as_ref(), &mut rec, holders)?;
            changed += 1;
        }
        Ok(Ok(Reply::Count(changed)))
    }

    /// Switches file `ino` at `version` to erasure-coded `policy` (see
    /// `ClusterCommand::Archive`).
    pub(crate) fn archive(&mut self, ino: u64, version: u64, policy: Policy) -> Result<ApplyResult> {
        if policy.ec().is_none() || !policy.is_valid() {
            return Ok(fail(ErrorCode::InvalidArgument, format!("{policy} is not an erasure code cairn keeps")));
        }
        let mut inode = match get_inode(&self.inodes, ino)? {
            Some(i) if i.kind == InodeKind::File => i,
            Some(_) => return Ok(fail(ErrorCode::InvalidArgument, format!("inode {ino} is not a file"))),
            None => return Ok(fail(ErrorCode::NotFound, format!("inode {ino} does not exist"))),
        };
        if inode.version != version {
            let msg = format!("inode {ino} changed (version {} now, {version} archived)", inode.version);
            return Ok(fail(ErrorCode::Conflict, msg));
        }
        let mut ids: Vec<ChunkId> = match &inode.content {
            Content::Extents(e) => cairn_core::extent::chunks(e).collect(),
            _ => Vec::new(),
        };
        ids.sort();
        ids.dedup();
        for id in ids {
            let Some(before) = get_chunk(&self.chunks, &id)? else { continue };
            let mut rec = before.clone();
            rec.policy = Some(if rec.refs <= 1 { policy } else { rec.policy.map_or(policy, |p| p.stronger(policy)) });
            self.put_chunk(&id, Some(&before), Some(&rec))?;
        }
        inode.policy = Some(policy);
        inode.ctime = self.now;
        self.put_inode(&inode)?;
        Ok(Ok(Reply::Inode(inode)))
    }

    /// Drops `node` from the holders of every chunk it holds (found through the index).
    pub(crate) fn forget_node(&mut self, node: u64) -> Result<ApplyResult> {
        let mut ids = Vec::new();
        for r in self.holdings.range((node, [0u8; 0].as_slice())..(node + 1, [0u8; 0].as_slice()))? {
            ids.push(crate::query::chunk_key(r?.0.value().1)?);
        }
        for id in &ids {
            if let Some(before) = get_chunk(&self.chunks, id)? {
                let mut rec = before.clone();
                let holders = rec.holders.iter().copied().filter(|h| h.node != node).collect();
                self.set_holders(id, Some(&before), &mut rec, holders)?;
            }
        }
        Ok(Ok(Reply::Count(ids.len() as u64)))
    }

    /// Forgets records unreferenced since at or before `before` (their index entries too).
    pub(crate) fn forget_chunks(&mut self, ids: &[ChunkId], before: i64) -> Result<ApplyResult> {
        let mut n = 0;
        for id in ids {
            if let Some(stored) = get_chunk(&self.chunks, id)? {
                if stored.refs == 0 && stored.zero_since.is_some_and(|t| t <= before) {
                    let mut rec = stored.clone();
                    self.set_holders(id, Some(&stored), &mut rec, Vec::new())?;
                    self.put_chunk(id, Some(&rec), None)?;
                    n += 1;
                }
            }
        }
        Ok(Ok(Reply::Count(n)))
    }
}
