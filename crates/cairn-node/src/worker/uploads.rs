//! The S3 upload sweeper: multipart uploads begun longer ago than `s3_upload_expiry` (a day
//! by default) and never completed or aborted are removed with their parts, whose chunks
//! then go to the garbage collector. Only the leader sweeps (one sweeper per cluster).

use super::{PassReport, Worker};
use crate::local::LocalBackend;
use crate::Node;
use futures::future::BoxFuture;
use std::sync::Arc;

/// Sweeps abandoned multipart uploads.
pub struct UploadsWorker {
    node: Arc<Node>,
}

impl UploadsWorker {
    /// A sweeper for `node`'s cluster.
    pub fn new(node: Arc<Node>) -> Self {
        UploadsWorker { node }
    }

    async fn run(&self) -> Result<PassReport, String> {
        if !self.node.meta.is_leader() {
            return Ok(PassReport::note("not the leader"));
        }
        let backend = LocalBackend::new(self.node.clone());
        let removed =
            cairn_s3::sweep(&backend, self.node.config.s3_upload_expiry).await.map_err(|e| format!("{e:?}"))?;
        Ok(PassReport { summary: format!("{removed} abandoned uploads removed"), items: removed as u64, bytes: 0 })
    }
}

impl Worker for UploadsWorker {
    fn name(&self) -> &'static str {
        "s3-uploads"
    }

    fn pass(&self) -> BoxFuture<'_, Result<PassReport, String>> {
        Box::pin(self.run())
    }
}
