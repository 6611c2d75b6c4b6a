//! Operator actions on the cluster: `fsck`, draining and removing nodes, worker settings.
//!
//! Every change goes through Raft (node states and worker settings are metadata); removing a
//! node also changes the Raft membership, which only the leader can do, so the request is
//! forwarded there.

use crate::ledger::{Standing, View};
use crate::Node;
use cairn_core::wire::{ClusterCommand, NodeState};
use cairn_core::{ApiError, ErrorCode, FsPath};
use cairn_meta::ChunkRecord;
use serde::Serialize;
use std::sync::Arc;

/// One file with chunks below policy.
#[derive(Debug, Clone, Serialize)]
pub struct FsckFile {
    /// The file.
    pub path: String,
    /// Its chunks.
    pub chunks: usize,
    /// Chunks readable but below policy.
    pub under_replicated: usize,
    /// Chunks with no readable copy.
    pub unavailable: usize,
    /// Fewest copies that count of any of its chunks, and that chunk's target.
    pub worst: (usize, usize),
}

/// What `cairn fsck PATH` reports.
#[derive(Debug, Clone, Serialize)]
pub struct FsckReport {
    /// The subtree checked.
    pub path: String,
    /// Every chunk of every file below `path` is at policy.
    pub at_policy: bool,
    /// Chunked files checked.
    pub files_checked: usize,
    /// Chunks checked (a chunk shared by files counts once per file).
    pub chunks_checked: usize,
    /// The files with a chunk below policy, in path order.
    pub files: Vec<FsckFile>,
}

fn invalid(msg: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidArgument, msg)
}

impl Node {
    /// Checks every chunked file at or below `path` against the durability ledger.
    pub async fn fsck(self: &Arc<Self>, path: FsPath) -> Result<FsckReport, ApiError> {
        self.meta.read_barrier().await?;
        let node = self.clone();
        let shown = path.to_string();
        let (view, files) = self
            .meta
            .read_local(move |txn| {
                let view = View::of(&node, txn)?;
                // Each file's chunk records, looked up one by one: the walk costs what the tree
                // below `path` holds, not what the whole ledger does.
                let below = match cairn_meta::files_below(txn, &path)? {
                    Ok(below) => below,
                    Err(e) => return Ok(Err(e)),
                };
                let mut files = Vec::new();
                for (p, ids) in below {
                    let recs = ids.iter().map(|id| cairn_meta::chunk_record(txn, id)).collect::<Result<Vec<_>, _>>()?;
                    files.push((p, recs));
                }
                Ok(Ok((view, files)))
            })
            .await??;
        let mut report =
            FsckReport { path: shown, at_policy: true, files_checked: files.len(), chunks_checked: 0, files: vec![] };
        for (p, recs) in files {
            report.chunks_checked += recs.len();
            if let Some(f) = check_file(&view, &p, &recs) {
                report.at_policy = false;
                report.files.push(f);
            }
        }
        Ok(report)
    }

    /// Sets a member's administrative state (`drain`: its chunks are copied elsewhere, it
    /// takes no new ones; `active`: back to normal).
    pub async fn set_node_state(&self, id: u64, state: NodeState) -> Result<(), ApiError> {
        if !self.members().iter().any(|(m, _)| *m == id) {
            return Err(ApiError::new(ErrorCode::NotFound, format!("node {id} is not a member")));
        }
        if state == NodeState::Retired {
            return Err(invalid("nodes are retired by removing them"));
        }
        self.write(ClusterCommand::SetNodeState { node: id, state }).await.map(drop)
    }

    /// Chunks held by node `id` that would be below policy without it.
    pub async fn at_risk_without(self: &Arc<Self>, id: u64) -> Result<usize, ApiError> {
        let (mut view, _) = self.ledger().await?;
        let held = self.chunks_on(id).await?;
        if let Some(m) = view.members.get_mut(&id) {
            m.state = NodeState::Retired;
        }
        Ok(held.iter().filter(|(_, rec)| rec.refs > 0 && !view.assess(rec).healthy()).count())
    }

    /// Removes node `id` from the cluster: refused while a chunk would drop below policy
    /// without it, unless `force`. Its copies stop counting at once (the ledger forgets
    /// them), it leaves the Raft membership, and a learner is promoted if voters are missing.
    pub async fn remove_node(self: &Arc<Self>, id: u64, force: bool) -> Result<String, ApiError> {
        if !self.members().iter().any(|(m, _)| *m == id) {
            return Err(ApiError::new(ErrorCode::NotFound, format!("node {id} is not a member")));
        }
        if self.members().len() == 1 {
            return Err(invalid("the last node of a cluster cannot be removed"));
        }
        let at_risk = self.at_risk_without(id).await?;
        if at_risk > 0 && !force {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                format!("{at_risk} chunks would drop below policy without node {id}: drain it first, or force"),
            ));
        }
        if !self.meta.is_leader() {
            return self.meta.remove_on_leader(id, force).await;
        }
        self.write(ClusterCommand::SetNodeState { node: id, state: NodeState::Retired }).await?;
        self.write(ClusterCommand::ForgetNode { node: id }).await?;
        self.meta.remove_member(id).await?;
        let warning = if at_risk > 0 { format!("; {at_risk} chunks are now below policy") } else { String::new() };
        Ok(format!("node {id} removed{warning}"))
    }
}

/// How one file stands, if any of its chunks is below policy.
fn check_file(view: &View, path: &FsPath, chunks: &[Option<ChunkRecord>]) -> Option<FsckFile> {
    let mut f =
        FsckFile { path: path.to_string(), chunks: chunks.len(), under_replicated: 0, unavailable: 0, worst: (0, 0) };
    let mut worst: Option<Standing> = None;
    for c in chunks {
        // A referenced chunk always has a ledger record; treat a missing one as no copies.
        let s = match c {
            Some(rec) => view.assess(rec),
            None => Standing { target: 1, counted: 0, readable: 0, kept: 0, needed: 1 },
        };
        if s.healthy() {
            continue;
        }
        if s.unavailable() {
            f.unavailable += 1;
        } else {
            f.under_replicated += 1;
        }
        if worst.is_none_or(|w| s.counted < w.counted) {
            worst = Some(s);
        }
    }
    let w = worst?;
    f.worst = (w.counted, w.target);
    Some(f)
}
