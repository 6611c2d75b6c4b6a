//! `cairn archive PATH --ec K+M`: converts the replicated files at or below a path to an
//! erasure code, file by file.
//!
//! For each file, one `Archive` metadata command switches it to the code (refused if it
//! changed since it was looked at); then every chunk lacking shards of the code gets them
//! (see `chunks/archive.rs`: pipelined on the copy holders, or centralised here), each
//! recorded in the ledger once stored and verified. The copies stay until the chunk has all
//! its shards, and only then does repair release them as surplus; an archive that stops
//! part way is finished by repair (which encodes the missing shards from a copy) or by
//! running it again. Reads go on throughout, from copies or shards.

use crate::Node;
use cairn_core::placement::place;
use cairn_core::wire::{ClusterCommand, Inode, InodeKind, Part, Query, QueryReply, Shard, Target};
use cairn_core::{ApiError, ChunkId, ErrorCode, FsPath, Policy};
use cairn_meta::ChunkRecord;
use serde::Serialize;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

/// What an archive did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ArchiveReport {
    /// Files switched to the code.
    pub files: u64,
    /// Files left as they were (changed since they were looked at): run again.
    pub skipped: Vec<String>,
    /// Chunks that got shards.
    pub chunks: u64,
    /// Shards stored.
    pub shards: u64,
    /// Bytes of the chunks encoded.
    pub bytes: u64,
    /// Whether the copy holders encoded (pipelined) or this node did (centralised).
    pub pipelined: bool,
    /// Wall time in seconds.
    pub seconds: f64,
}

impl Node {
    /// Switches one file (as `inode` shows it; `name` for the report) to `policy` and gives
    /// its chunks their shards, adding to `report`.
    pub(crate) async fn archive_file(
        &self,
        inode: &Inode,
        name: &str,
        policy: Policy,
        pipelined: bool,
        report: &mut ArchiveReport,
    ) -> Result<(), ApiError> {
        let Some((k, m)) = policy.ec() else {
            return Err(ApiError::new(ErrorCode::InvalidArgument, format!("{policy} is not an erasure code (ec:K+M)")));
        };
        let code = Shard { index: 0, k: k as u8, m: m as u8 };
        let cmd = ClusterCommand::Archive { ino: inode.ino, version: inode.version, policy };
        match self.write(cmd).await {
            Ok(_) => report.files += 1,
            Err(e) if e.code == ErrorCode::Conflict => {
                report.skipped.push(format!("{name}: {}", e.message));
                return Ok(());
            }
            Err(e) => return Err(e),
        }
        let mut ids: Vec<_> = inode.chunk_ids().collect();
        ids.sort();
        ids.dedup();
        for id in ids {
            let Some(rec) = self.chunks.record(id).await else {
                return Err(ApiError::new(ErrorCode::Internal, format!("chunk {id} of {name} has no record")));
            };
            let (added, bytes) = self.archive_one(id, &rec, code, pipelined).await?;
            if added > 0 {
                report.shards += added;
                report.chunks += 1;
                report.bytes += bytes;
            }
        }
        Ok(())
    }

    /// Gives chunk `id` the shards of `code` it lacks; (shards stored, chunk bytes).
    async fn archive_one(
        &self,
        id: ChunkId,
        rec: &ChunkRecord,
        code: Shard,
        pipelined: bool,
    ) -> Result<(u64, u64), ApiError> {
        let total = code.k + code.m;
        let have: BTreeSet<u8> = rec
            .holders
            .iter()
            .filter_map(|h| match h.part {
                Part::Shard(s) if s.k == code.k && s.m == code.m => Some(s.index),
                _ => None,
            })
            .collect();
        let missing: Vec<u8> = (0..total).filter(|i| !have.contains(i)).collect();
        if missing.is_empty() {
            return Ok((0, 0));
        }
        // Nodes with no shard of the chunk first, in placement order.
        let candidates = self.chunks.candidates(Some(self.config.fill_limit));
        let ranked = place(&id, &candidates, candidates.len());
        if ranked.is_empty() {
            return Err(crate::unavailable("no node is up to take shards"));
        }
        let holding: BTreeSet<u64> =
            rec.holders.iter().filter(|h| matches!(h.part, Part::Shard(_))).map(|h| h.node).collect();
        let (fresh, used): (Vec<u64>, Vec<u64>) = ranked.into_iter().partition(|n| !holding.contains(n));
        let order: Vec<u64> = fresh.into_iter().chain(used).collect();
        let targets: Vec<(u8, u64)> = missing.iter().enumerate().map(|(j, i)| (*i, order[j % order.len()])).collect();
        let added = self.chunks.archive_chunk(id, rec, code, &targets, &order, pipelined).await?;
        Ok((added as u64, rec.len as u64))
    }

    /// Archives the files at or below `path` to `policy` (an `ec:K+M`), see the module doc.
    pub async fn archive(
        self: &Arc<Self>,
        path: FsPath,
        policy: Policy,
        pipelined: bool,
    ) -> Result<ArchiveReport, ApiError> {
        if policy.ec().is_none() {
            return Err(ApiError::new(ErrorCode::InvalidArgument, format!("{policy} is not an erasure code (ec:K+M)")));
        }
        let started = Instant::now();
        self.meta.read_barrier().await?;
        let below = path.clone();
        let files = self.meta.read_local(move |txn| cairn_meta::files_below(txn, &below)).await??;
        let mut report = ArchiveReport { pipelined, ..ArchiveReport::default() };
        for (p, _) in files {
            match self.meta.query(Query::Stat(Target::Path(p.clone()))).await? {
                QueryReply::Inode(i) if i.kind == InodeKind::File => {
                    self.archive_file(&i, &p.to_string(), policy, pipelined, &mut report).await?
                }
                _ => continue,
            }
        }
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }
}
