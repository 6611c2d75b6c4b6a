//! The archive worker: applies directories' archive rules (`archive:ec:K+M after T`, kept in
//! the directory's extended attribute `user.cairn.archive`) on the metadata leader.
//!
//! Each pass finds the directories with a rule, and below each (not descending into a
//! directory with a rule of its own: the nearest rule wins) the files whose last
//! modification is older than T and that are not at the rule's code yet, and archives them
//! as `cairn archive` does (one `Archive` commit per file, shards made by the copy holders).
//! A rule that does not parse is skipped and named in the pass's summary.

use super::{PassReport, Worker};
use crate::archive::ArchiveReport;
use crate::{now_ns, Node};
use cairn_core::policy::{ArchiveRule, ARCHIVE_XATTR};
use cairn_core::wire::WorkerSettings;
use futures::future::BoxFuture;
use std::collections::BTreeSet;
use std::sync::Arc;

/// Archives files by their directories' rules (leader only).
pub struct ArchiveWorker {
    node: Arc<Node>,
}

impl ArchiveWorker {
    /// An archive worker for `node`.
    pub fn new(node: Arc<Node>) -> Self {
        ArchiveWorker { node }
    }

    async fn run(&self) -> Result<PassReport, String> {
        if !self.node.meta.is_leader() {
            return Ok(PassReport::note("idle: runs on the metadata leader"));
        }
        self.node.meta.read_barrier().await.map_err(|e| e.to_string())?;
        let rules = self
            .node
            .meta
            .read_local(|txn| cairn_meta::dirs_with_xattr(txn, ARCHIVE_XATTR))
            .await
            .map_err(|e| e.to_string())?;
        let dirs: BTreeSet<u64> = rules.iter().map(|(d, _)| *d).collect();
        let (mut report, mut bad) = (ArchiveReport { pipelined: true, ..ArchiveReport::default() }, Vec::new());
        for (dir, text) in rules {
            let Some(rule) = std::str::from_utf8(&text).ok().and_then(|t| ArchiveRule::parse(t).ok()) else {
                bad.push(dir);
                continue;
            };
            let skip: BTreeSet<u64> = dirs.iter().copied().filter(|d| *d != dir).collect();
            let files = self
                .node
                .meta
                .read_local(move |txn| cairn_meta::files_under(txn, dir, &skip))
                .await
                .map_err(|e| e.to_string())?;
            let cutoff = now_ns().saturating_sub(rule.after.as_nanos().min(i64::MAX as u128) as i64);
            for inode in files.iter().filter(|i| i.mtime <= cutoff && i.policy != Some(rule.policy)) {
                if self.settings().paused {
                    break;
                }
                let name = format!("inode {}", inode.ino);
                self.node
                    .archive_file(inode, &name, rule.policy, true, &mut report)
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
        let mut summary = format!(
            "archived {} files ({} chunks, {} shards){}",
            report.files,
            report.chunks,
            report.shards,
            if report.skipped.is_empty() {
                String::new()
            } else {
                format!(", {} changed meanwhile", report.skipped.len())
            }
        );
        if !bad.is_empty() {
            summary.push_str(&format!("; rules that do not parse on directories {bad:?}"));
        }
        Ok(PassReport { summary, items: report.files, bytes: report.bytes })
    }
}

impl Worker for ArchiveWorker {
    fn name(&self) -> &'static str {
        "archive"
    }

    fn pass(&self) -> BoxFuture<'_, Result<PassReport, String>> {
        Box::pin(self.run())
    }

    fn settings(&self) -> WorkerSettings {
        self.node.worker_settings(self.name())
    }
}
