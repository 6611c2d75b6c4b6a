//! The garbage collector: deletes chunks (copies and shards) no file references any more,
//! after a grace period.
//!
//! Why the grace period (`gc_grace`) makes this safe against concurrent writes: a writer stores
//! its chunks first (each put refreshes the chunk's age), then commits. Before proposing the
//! commit the node refreshes the age of every referenced chunk again, and fails the commit if
//! one is gone. The collector deletes a chunk only if the metadata (read linearizably) has no
//! reference to it, its reference count has been zero for longer than the grace period, and
//! the chunk file itself has not been touched within the grace period — checked and deleted
//! under the store's age lock. So a chunk is either touched before the check (kept) or deleted
//! before the touch (the commit fails and the writer retries); never committed and then lost.

use super::{PassReport, Worker};
use crate::{now_ns, Node};
use cairn_core::wire::{ClientCommand, ClusterCommand, HolderChange, Part, Reply, WorkerSettings};
use cairn_core::ChunkId;
use futures::future::BoxFuture;
use redb::ReadableDatabase;
use std::sync::Arc;
use std::time::SystemTime;

/// Collects unreferenced chunks on one node.
pub struct GcWorker {
    node: Arc<Node>,
}

impl GcWorker {
    /// A collector for `node`'s store.
    pub fn new(node: Arc<Node>) -> Self {
        GcWorker { node }
    }

    async fn run(&self) -> Result<PassReport, String> {
        let grace = self.node.config.gc_grace;
        let cutoff = SystemTime::now() - grace;
        let cutoff_ns = now_ns() - grace.as_nanos() as i64;
        // A linearizable read point: every commit acknowledged before now is visible below.
        self.node.meta.read_barrier().await.map_err(|e| e.to_string())?;
        let node = self.node.clone();
        let deleted = tokio::task::spawn_blocking(move || -> Result<Vec<(ChunkId, Part)>, String> {
            let store = node.chunks.store.clone();
            let old: Vec<_> =
                store.list().map_err(|e| e.to_string())?.into_iter().filter(|c| c.touched < cutoff).collect();
            let txn = node.meta.db.begin_read().map_err(|e| e.to_string())?;
            let mut deleted = Vec::new();
            for c in old {
                if node.worker_settings("gc").paused {
                    break;
                }
                let unreferenced = match cairn_meta::chunk_record(&txn, &c.id).map_err(|e| e.to_string())? {
                    None => true,
                    Some(r) => r.refs == 0 && r.zero_since.is_some_and(|t| t <= cutoff_ns),
                };
                if unreferenced && store.delete_if_untouched_since(&c.id, c.part, cutoff).map_err(|e| e.to_string())? {
                    deleted.push((c.id, c.part));
                }
            }
            Ok(deleted)
        })
        .await
        .map_err(|e| e.to_string())??;
        // The ledger learns the copies and shards are gone (records of unreferenced chunks, if any).
        let me = self.node.id;
        let lost = deleted
            .iter()
            .map(|(id, part)| HolderChange { part: *part, id: *id, node: me, len: 0, held: false })
            .collect();
        self.node.chunks.report(lost).await.map_err(|e| e.to_string())?;
        // Forget the metadata records of chunks unreferenced for longer than the grace period.
        let stale = self
            .node
            .meta
            .read_local(move |txn| cairn_meta::unreferenced_chunks(txn, cutoff_ns))
            .await
            .map_err(|e| e.to_string())?;
        let mut forgotten = 0;
        if !stale.is_empty() {
            let cmd = ClusterCommand::ForgetChunks { ids: stale, before: cutoff_ns };
            if let Reply::Count(n) = self.node.write(cmd).await.map_err(|e| e.to_string())? {
                forgotten = n;
            }
        }
        let reaped = self.reap_handles().await?;
        let summary = format!(
            "deleted {} chunk copies and shards, forgot {forgotten} records, closed {reaped} expired handles",
            deleted.len()
        );
        Ok(PassReport { summary, items: deleted.len() as u64, bytes: 0 })
    }
}

impl GcWorker {
    /// On the leader: closes handles whose lease ran out (their clients died or lost touch),
    /// freeing orphans nobody holds any more. The command re-checks each lease as of its own
    /// apply time, so a handle renewed meanwhile stays.
    async fn reap_handles(&self) -> Result<u64, String> {
        if !self.node.meta.is_leader() {
            return Ok(0);
        }
        let now = now_ns();
        let expired = self
            .node
            .meta
            .read_local(move |txn| cairn_meta::expired_handles(txn, now))
            .await
            .map_err(|e| e.to_string())?;
        let mut closed = 0;
        for batch in expired.chunks(cairn_meta::MAX_HANDLES_PER_COMMAND) {
            let cmd = ClientCommand::Close { handles: batch.to_vec(), expired_only: true };
            if let Reply::Count(n) = self.node.write(cmd).await.map_err(|e| e.to_string())? {
                closed += n;
            }
        }
        Ok(closed)
    }
}

impl Worker for GcWorker {
    fn name(&self) -> &'static str {
        "gc"
    }

    fn pass(&self) -> BoxFuture<'_, Result<PassReport, String>> {
        Box::pin(self.run())
    }

    fn settings(&self) -> WorkerSettings {
        self.node.worker_settings(self.name())
    }
}
