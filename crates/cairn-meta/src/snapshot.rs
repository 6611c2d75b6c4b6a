//! Whole-state snapshots: every table dumped into one versioned, encoded blob.
//!
//! Snapshots are built from a read transaction (redb's MVCC gives a consistent view while
//! writes go on) and installed by replacing every table's content in one write transaction.

use crate::tables::{
    ChunkRecord, CHUNKS, COUNTERS, DIRENTS, HANDLES, HOLDINGS, INODES, NODES, ORPHANS, WORKERS, XATTRS,
};
use crate::Result;
use cairn_core::codec::{decode, encode};
use redb::{ReadTransaction, ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Dump {
    inodes: Vec<(u64, Vec<u8>)>,
    dirents: Vec<(u64, String, u64)>,
    xattrs: Vec<(u64, String, Vec<u8>)>,
    handles: Vec<(u64, u64, i64)>,
    orphans: Vec<u64>,
    chunks: Vec<(Vec<u8>, Vec<u8>)>,
    nodes: Vec<(u64, Vec<u8>)>,
    workers: Vec<(String, Vec<u8>)>,
    counters: Vec<(String, u64)>,
}

/// Serializes the whole state machine.
pub fn export(txn: &ReadTransaction) -> Result<Vec<u8>> {
    let mut d = Dump {
        inodes: vec![],
        dirents: vec![],
        xattrs: vec![],
        handles: vec![],
        orphans: vec![],
        chunks: vec![],
        nodes: vec![],
        workers: vec![],
        counters: vec![],
    };
    for r in txn.open_table(INODES)?.iter()? {
        let (k, v) = r?;
        d.inodes.push((k.value(), v.value().to_vec()));
    }
    for r in txn.open_table(DIRENTS)?.iter()? {
        let (k, v) = r?;
        let (p, n) = k.value();
        d.dirents.push((p, n.to_string(), v.value()));
    }
    for r in txn.open_table(XATTRS)?.iter()? {
        let (k, v) = r?;
        let (i, n) = k.value();
        d.xattrs.push((i, n.to_string(), v.value().to_vec()));
    }
    for r in txn.open_table(HANDLES)?.iter()? {
        let (k, v) = r?;
        let (i, h) = k.value();
        d.handles.push((i, h, v.value()));
    }
    for r in txn.open_table(ORPHANS)?.iter()? {
        d.orphans.push(r?.0.value());
    }
    for r in txn.open_table(CHUNKS)?.iter()? {
        let (k, v) = r?;
        d.chunks.push((k.value().to_vec(), v.value().to_vec()));
    }
    for r in txn.open_table(NODES)?.iter()? {
        let (k, v) = r?;
        d.nodes.push((k.value(), v.value().to_vec()));
    }
    for r in txn.open_table(WORKERS)?.iter()? {
        let (k, v) = r?;
        d.workers.push((k.value().to_string(), v.value().to_vec()));
    }
    for r in txn.open_table(COUNTERS)?.iter()? {
        let (k, v) = r?;
        d.counters.push((k.value().to_string(), v.value()));
    }
    Ok(encode(&d))
}

/// Replaces the whole state machine with a snapshot made by [`export`].
pub fn import(txn: &WriteTransaction, bytes: &[u8]) -> Result<()> {
    let d: Dump = decode(bytes, "metadata snapshot")?;
    let mut inodes = txn.open_table(INODES)?;
    inodes.retain(|_, _| false)?;
    for (k, v) in &d.inodes {
        inodes.insert(*k, v.as_slice())?;
    }
    let mut dirents = txn.open_table(DIRENTS)?;
    dirents.retain(|_, _| false)?;
    for (p, n, c) in &d.dirents {
        dirents.insert((*p, n.as_str()), *c)?;
    }
    let mut xattrs = txn.open_table(XATTRS)?;
    xattrs.retain(|_, _| false)?;
    for (i, n, v) in &d.xattrs {
        xattrs.insert((*i, n.as_str()), v.as_slice())?;
    }
    let mut handles = txn.open_table(HANDLES)?;
    handles.retain(|_, _| false)?;
    for (i, h, until) in &d.handles {
        handles.insert((*i, *h), *until)?;
    }
    let mut orphans = txn.open_table(ORPHANS)?;
    orphans.retain(|_, _| false)?;
    for i in &d.orphans {
        orphans.insert(*i, ())?;
    }
    // The per-node index is rebuilt from the records rather than trusted from the sender.
    let mut chunks = txn.open_table(CHUNKS)?;
    let mut holdings = txn.open_table(HOLDINGS)?;
    chunks.retain(|_, _| false)?;
    holdings.retain(|_, _| false)?;
    for (k, v) in &d.chunks {
        let rec: ChunkRecord = decode(v, "chunk record")?;
        for node in rec.nodes() {
            holdings.insert((node, k.as_slice()), ())?;
        }
        chunks.insert(k.as_slice(), v.as_slice())?;
    }
    let mut nodes = txn.open_table(NODES)?;
    nodes.retain(|_, _| false)?;
    for (k, v) in &d.nodes {
        nodes.insert(*k, v.as_slice())?;
    }
    let mut workers = txn.open_table(WORKERS)?;
    workers.retain(|_, _| false)?;
    for (k, v) in &d.workers {
        workers.insert(k.as_str(), v.as_slice())?;
    }
    let mut counters = txn.open_table(COUNTERS)?;
    counters.retain(|_, _| false)?;
    for (k, v) in &d.counters {
        counters.insert(k.as_str(), *v)?;
    }
    Ok(())
}
