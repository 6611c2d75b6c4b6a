//! Bytes kept per redundancy policy: what files hold (`stored`: each referenced chunk's
//! length once) and what that costs on the disks (`raw`: a copy's length per copy held, a
//! shard's per shard held), the storage efficiency users pay for. Kept as the counters
//! `usage/<policy>/stored` and `usage/<policy>/raw` by every change of a chunk record, so
//! status and metrics read a handful of counters, not the ledger.

use crate::tables::{ChunkRecord, CHUNKS, COUNTERS};
use crate::Result;
use cairn_core::codec::decode;
use cairn_core::wire::Part;
use redb::{ReadTransaction, ReadableTable, Table};
use serde::Serialize;
use std::collections::BTreeMap;

/// The counter saying the usage counters were counted (from the records, once).
const COUNTED: &str = "usage/counted";

/// Bytes kept under one policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyUsage {
    /// The policy (`replicas:3`, `ec:4+2`).
    pub policy: String,
    /// Bytes of the referenced chunks kept at it.
    pub stored: u64,
    /// Bytes their copies and shards take on the nodes' disks.
    pub raw: u64,
}

/// A referenced record's (policy, stored, raw) bytes.
fn usage(rec: &ChunkRecord) -> Option<(String, u64, u64)> {
    let policy = rec.policy.filter(|_| rec.refs > 0)?;
    let len = rec.len as u64;
    let raw = rec
        .holders
        .iter()
        .map(|h| match h.part {
            Part::Copy => len,
            Part::Shard(s) => len.div_ceil(s.k.max(1) as u64).max(1),
        })
        .sum();
    Some((policy.to_string(), len, raw))
}

/// The counter changes of replacing record `before` by `after`.
pub(crate) fn delta(before: Option<&ChunkRecord>, after: Option<&ChunkRecord>) -> Vec<(String, i64)> {
    let mut out: BTreeMap<String, i64> = BTreeMap::new();
    for (rec, sign) in [(before, -1i64), (after, 1)] {
        if let Some((policy, stored, raw)) = rec.and_then(usage) {
            *out.entry(format!("usage/{policy}/stored")).or_default() += sign * stored as i64;
            *out.entry(format!("usage/{policy}/raw")).or_default() += sign * raw as i64;
        }
    }
    out.into_iter().filter(|(_, d)| *d != 0).collect()
}

/// Adds `d` to counter `key` (removed at zero).
pub(crate) fn bump(counters: &mut Table<&str, u64>, key: &str, d: i64) -> Result<()> {
    let v = counters.get(key)?.map_or(0, |v| v.value()).saturating_add_signed(d);
    match v {
        0 => drop(counters.remove(key)?),
        v => drop(counters.insert(key, v)?),
    }
    Ok(())
}

/// Counts the usage counters from the chunk records if this database has not yet (one
/// written before they existed, or a snapshot from such a node).
pub(crate) fn count_once(txn: &redb::WriteTransaction) -> Result<()> {
    let mut counters = txn.open_table(COUNTERS)?;
    if counters.get(COUNTED)?.is_some() {
        return Ok(());
    }
    let stale: Vec<String> = counters
        .range("usage/".."usage0")?
        .map(|r| r.map(|(k, _)| k.value().to_string()))
        .collect::<std::result::Result<_, _>>()?;
    for k in stale {
        counters.remove(k.as_str())?;
    }
    let chunks = txn.open_table(CHUNKS)?;
    for r in chunks.iter()? {
        let rec: ChunkRecord = decode(r?.1.value(), "chunk record")?;
        for (k, d) in delta(None, Some(&rec)) {
            bump(&mut counters, &k, d)?;
        }
    }
    counters.insert(COUNTED, 1)?;
    Ok(())
}

/// Bytes kept per policy, by policy name.
pub fn policy_usage(txn: &ReadTransaction) -> Result<Vec<PolicyUsage>> {
    let mut by: BTreeMap<String, PolicyUsage> = BTreeMap::new();
    for r in txn.open_table(COUNTERS)?.range("usage/".."usage0")? {
        let (k, v) = r?;
        let Some((policy, kind)) = k.value().strip_prefix("usage/").and_then(|rest| rest.rsplit_once('/')) else {
            continue;
        };
        let u = by.entry(policy.to_string()).or_insert_with(|| PolicyUsage {
            policy: policy.to_string(),
            stored: 0,
            raw: 0,
        });
        match kind {
            "stored" => u.stored = v.value(),
            "raw" => u.raw = v.value(),
            _ => {}
        }
    }
    Ok(by.into_values().collect())
}
