//! File history from the client: list a file's versions, read one, restore one (a deleted
//! file too), and set how many versions a directory keeps.

use crate::r#async::target;
use crate::{datapath, AsyncClient, Backend, ClientError, Result};
use bytes::Bytes;
use cairn_core::wire::{ClientCommand, Inode, Query, QueryReply, VersionInfo};
use futures::{Stream, StreamExt};
use std::sync::Arc;

impl AsyncClient {
    /// A file's versions, newest first: its current content, then those kept (by name,
    /// also for a deleted file).
    pub async fn versions(&self, path: &str) -> Result<Vec<VersionInfo>> {
        match self.backend().query(Query::Versions(target(path)?)).await? {
            QueryReply::Versions(v) => Ok(v),
            other => Err(ClientError::Protocol(format!("expected versions, got {other:?}"))),
        }
    }

    /// Makes version `version` the file's content again (a new commit); a deleted file is
    /// created again at its name.
    pub async fn restore(&self, path: &str, version: u64) -> Result<Inode> {
        datapath::write_inode(self.backend().as_ref(), ClientCommand::Restore { at: target(path)?, version }).await
    }

    /// Makes every file below directory `path` keep its previous `versions` versions (0: off).
    pub async fn set_versions(&self, path: &str, versions: u32) -> Result<Inode> {
        datapath::write_inode(self.backend().as_ref(), ClientCommand::SetDirVersions { at: target(path)?, versions })
            .await
    }

    /// Streams bytes `start..end` of a file as it is now (`version` `None`) or of one of
    /// its versions.
    pub async fn read_version(
        &self,
        path: &str,
        version: Option<u64>,
        start: u64,
        end: u64,
    ) -> Result<(Inode, impl Stream<Item = Result<Bytes>> + Send + 'static)> {
        let at = target(path)?;
        let inode = match version {
            None => datapath::stat(self.backend().as_ref(), &at).await?,
            Some(version) => match self.backend().query(Query::Version { at: at.clone(), version }).await? {
                QueryReply::Inode(i) => i,
                other => return Err(ClientError::Protocol(format!("expected an inode, got {other:?}"))),
            },
        };
        datapath::require_file(&inode, &at)?;
        if inode.extents().len() > 1 {
            self.backend().spread_reads().await;
        }
        let s = match self.read_cache() {
            Some(cache) => {
                let cached = Arc::new(crate::cache::Cached::new(self.backend().clone(), cache));
                datapath::read_stream(cached, &inode, start, end).boxed()
            }
            None => datapath::read_stream(self.backend().clone(), &inode, start, end).boxed(),
        };
        Ok((inode, s))
    }
}
