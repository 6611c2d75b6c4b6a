//! The receiving side: one dispatcher answers every [`PeerRequest`], whichever transport
//! delivered it (the sender was already admitted as a member by the transport).

use super::{PeerReply, PeerRequest};
use crate::Node;
use cairn_core::{ApiError, ErrorCode};
use std::collections::BTreeSet;
use std::sync::Arc;

/// Carries out one message from another node.
pub async fn handle(node: &Arc<Node>, req: PeerRequest) -> Result<PeerReply, ApiError> {
    Ok(match req {
        PeerRequest::Append(r) => PeerReply::Append(node.meta.append(r).await),
        PeerRequest::Vote(r) => PeerReply::Vote(node.meta.vote(r).await),
        PeerRequest::Snapshot(r) => PeerReply::Snapshot(node.meta.snapshot_piece(r).await?),
        PeerRequest::ReadIndex => PeerReply::ReadIndex(node.meta.read_index().await?),
        PeerRequest::Propose(cmds) => PeerReply::Applied(node.meta.propose(cmds).await?),
        PeerRequest::Join(j) => PeerReply::Joined(node.handle_join(j).await?),
        PeerRequest::RemoveNode { id, force } => PeerReply::Removed(node.remove_node(id, force).await?),
        PeerRequest::Info => PeerReply::Info(node.info()),
        PeerRequest::PutChunk { id, chain, data } => {
            check_members(node, &chain, "chain")?;
            PeerReply::Stored(node.chunks.put_chunk_chained(id, data, &chain, false).await?)
        }
        PeerRequest::GetChunk { id } => {
            let data = node.chunks.get_chunk_for_transfer(id, true).await?;
            node.chunks.served_one();
            PeerReply::Chunk { data }
        }
        PeerRequest::TouchChunk { id } => PeerReply::Present(node.chunks.touch_chunk_local(id).await?),
        PeerRequest::CopyChunk { id, from } => {
            check_members(node, &from, "copy source")?;
            PeerReply::Copied(node.chunks.copy_chunk_from(id, &from).await?)
        }
        PeerRequest::DeleteChunk { id, part } => {
            node.chunks.delete_part_local(id, part).await?;
            PeerReply::Done
        }
        PeerRequest::PutShard { id, shard, len, data } => {
            node.chunks.put_shard_local(id, shard, len, data).await?;
            PeerReply::Stored(vec![node.id])
        }
        PeerRequest::EncodeShards { id, k, m, jobs } => {
            let members: BTreeSet<u64> = node.members().into_iter().map(|(id, _)| id).collect();
            if let Some((_, stranger)) = jobs.iter().find(|(_, n)| !members.contains(n)) {
                let msg = format!("shard target node {stranger} is not a member of this cluster");
                return Err(ApiError::new(ErrorCode::InvalidArgument, msg));
            }
            let code = cairn_core::wire::Shard { index: 0, k, m };
            PeerReply::Encoded(node.chunks.encode_here(id, code, &jobs).await?)
        }
        PeerRequest::GetShard { id, shard, from, to } => {
            let data = node.chunks.get_shard_local(id, shard, from, to).await?;
            node.chunks.served_one();
            PeerReply::Chunk { data }
        }
        PeerRequest::PlanRun { run, plan } => PeerReply::PlanDone(node.run_programs_here(run, &plan).await?),
        PeerRequest::PlanPush { run, program, input, position, data } => {
            node.code_runs.push(run, &program, &input, position, data).await?;
            PeerReply::Done
        }
        PeerRequest::PlanPull { run, program, position } => {
            PeerReply::Chunk { data: node.code_runs.pull(run, &program, position).await? }
        }
        PeerRequest::PlanAbort { run } => {
            node.code_runs.abort(run);
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
