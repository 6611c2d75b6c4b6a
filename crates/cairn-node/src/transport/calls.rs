//! The asking side: one typed call per message, addressed by node id and resolved through
//! the membership, so a node only ever talks to members (the metadata's own messages —
//! proposals, read indexes, joins and removals — are sent by `metadata`).

use super::{PeerReply, PeerRequest};
use crate::cluster::{JoinReply, JoinRequest};
use crate::peers::NodeInfo;
use crate::Node;
use cairn_core::{ApiError, ErrorCode};
use std::time::Duration;

impl Node {
    /// Node `to`'s report on itself, within `timeout`.
    pub(crate) async fn info_of(&self, to: u64, timeout: Duration) -> Result<NodeInfo, ApiError> {
        match self.meta.ask(to, PeerRequest::Info, Some(timeout)).await? {
            PeerReply::Info(info) if info.id == to => Ok(info),
            PeerReply::Info(info) => {
                Err(ApiError::new(ErrorCode::Internal, format!("node {to} reports itself as node {}", info.id)))
            }
            r => Err(r.unexpected()),
        }
    }

    /// Has node `to` (the leader) admit a node.
    pub(crate) async fn join_at(&self, to: u64, req: JoinRequest) -> Result<JoinReply, ApiError> {
        match self.meta.ask(to, PeerRequest::Join(req), None).await? {
            PeerReply::Joined(reply) => Ok(reply),
            r => Err(r.unexpected()),
        }
    }
}
