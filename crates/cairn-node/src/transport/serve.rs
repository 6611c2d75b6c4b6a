//! The receiving side: one dispatcher answers every [`PeerRequest`], whichever transport
//! delivered it (the sender was already admitted as a member by the transport).

use super::{PeerReply, PeerRequest};
use crate::raft::TypeConfig;
use crate::Node;
use cairn_core::{ApiError, ErrorCode};
use openraft::raft::InstallSnapshotRequest;
use std::collections::BTreeSet;
use std::sync::Arc;

/// How far a snapshot being received has come.
#[derive(Default)]
pub(crate) struct SnapshotReceipt {
    /// The snapshot's id.
    id: String,
    /// Offset of the last piece written (it may be sent again).
    last: u64,
    /// Offset the next piece must start at.
    next: u64,
}

/// Carries out one message from another node.
pub async fn handle(node: &Arc<Node>, req: PeerRequest) -> Result<PeerReply, ApiError> {
    Ok(match req {
        PeerRequest::Append(r) => PeerReply::Append(node.raft.append_entries(r).await),
        PeerRequest::Vote(r) => PeerReply::Vote(node.raft.vote(r).await),
        PeerRequest::Snapshot(r) => snapshot_piece(node, r).await?,
        PeerRequest::ReadIndex => PeerReply::ReadIndex(node.read_index().await?),
        PeerRequest::Propose(cmds) => PeerReply::Applied(node.propose(cmds).await?),
        PeerRequest::Join(j) => PeerReply::Joined(node.handle_join(j).await?),
        PeerRequest::RemoveNode { id, force } => PeerReply::Removed(node.remove_node(id, force).await?),
        PeerRequest::Info => PeerReply::Info(node.info()),
        PeerRequest::PutChunk { id, chain, data } => {
            check_members(node, &chain, "chain")?;
            PeerReply::Stored(node.put_chunk_chained(id, data, &chain, false).await?)
        }
        PeerRequest::GetChunk { id } => {
            let data = node.get_chunk_for_transfer(id, true).await?;
            node.chunks_served.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            PeerReply::Chunk { data }
        }
        PeerRequest::TouchChunk { id } => PeerReply::Present(node.touch_chunk_local(id).await?),
        PeerRequest::CopyChunk { id, from } => {
            check_members(node, &from, "copy source")?;
            PeerReply::Copied(node.copy_chunk_from(id, &from).await?)
        }
        PeerRequest::DeleteChunk { id } => {
            node.delete_chunk_local(id).await?;
            PeerReply::Done
        }
    })
}

/// Checks the nodes a message names (a chain to pass a chunk down, sources to copy one
/// from): each another member of this cluster, named once, and no more than there are.
fn check_members(node: &Node, ids: &[u64], what: &str) -> Result<(), ApiError> {
    let members: BTreeSet<u64> = node.members().into_iter().map(|(id, _)| id).collect();
    let mut seen = BTreeSet::new();
    for id in ids {
        if *id == node.id || !members.contains(id) || !seen.insert(*id) {
            let msg = format!("{what}: node {id} is not another member of this cluster, or is named twice");
            return Err(ApiError::new(ErrorCode::InvalidArgument, msg));
        }
    }
    Ok(())
}

/// One piece of a snapshot. Pieces must come in order (offset 0 starts a snapshot, each next
/// one starts where the last ended; the last may be sent again when its answer was lost) and
/// the whole must fit in this node's free disk space; anything else is refused before it is
/// written.
async fn snapshot_piece(node: &Node, req: InstallSnapshotRequest<TypeConfig>) -> Result<PeerReply, ApiError> {
    let id = req.meta.snapshot_id.clone();
    let end = req.offset.checked_add(req.data.len() as u64).ok_or_else(|| bad_piece("offset overflows"))?;
    if req.offset != 0 {
        let rx = node.snapshot_rx.lock().expect("snapshot lock");
        let in_order = rx.as_ref().is_some_and(|r| r.id == id && (req.offset == r.next || req.offset == r.last));
        if !in_order {
            return Err(bad_piece(&format!("piece at offset {} is out of order", req.offset)));
        }
    }
    let room = crate::peers::disk_space(&node.config.data).map(|(_, free)| free).unwrap_or(u64::MAX);
    if end > room {
        return Err(ApiError::new(ErrorCode::NoSpace, format!("a snapshot of {end} bytes does not fit")));
    }
    let (start, done) = (req.offset, req.done);
    let answer = node.raft.install_snapshot(req).await;
    *node.snapshot_rx.lock().expect("snapshot lock") =
        (answer.is_ok() && !done).then_some(SnapshotReceipt { id, last: start, next: end });
    Ok(PeerReply::Snapshot(answer))
}

fn bad_piece(why: &str) -> ApiError {
    ApiError::new(ErrorCode::InvalidArgument, format!("snapshot piece refused: {why}"))
}
