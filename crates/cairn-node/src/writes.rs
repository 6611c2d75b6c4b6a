//! Metadata writes through Raft: admission, then group commit.
//!
//! A command is admitted only if every node could decode it from the log (round-tripped
//! through the codec, at most [`MAX_COMMAND_BYTES`]) and, for a commit, if the chunks it
//! references are still stored. Admitted commands queue; while earlier entries are being
//! made durable, new ones gather and go out together in the next entry, sharing one log
//! fsync. Each command's answer goes back to its own caller.

use crate::Node;
use cairn_core::wire::{ClientCommand, Command, Content, Reply};
use cairn_core::{ApiError, ChunkId, ErrorCode};
use std::sync::Weak;
use tokio::sync::{mpsc, oneshot};

/// Most commands proposed in one Raft entry.
pub(crate) const MAX_BATCH: usize = 512;
/// Raft entries proposed concurrently by one node.
const MAX_IN_FLIGHT: usize = 2;

/// Largest encoded command admitted to the Raft log (a file of [`cairn_core::MAX_EXTENTS`]
/// extents fits; inline data and xattr values are far smaller).
const MAX_COMMAND_BYTES: usize = 4 << 20;

/// A metadata command waiting to be proposed, and where its answer goes.
pub(crate) struct Proposal {
    cmd: Command,
    tx: oneshot::Sender<Result<Reply, ApiError>>,
}

/// Refuses a command that every node could not decode from the log: it must survive its own
/// encoding and stay within [`MAX_COMMAND_BYTES`]. A command built in this process (a REST
/// request) has not been through a decoder yet; one that arrived encoded has, and passes.
fn admissible(cmd: &Command) -> Result<(), ApiError> {
    let bytes = cairn_core::codec::encode(cmd);
    if bytes.len() > MAX_COMMAND_BYTES {
        let msg = format!("metadata command of {} bytes (at most {MAX_COMMAND_BYTES})", bytes.len());
        return Err(ApiError::new(ErrorCode::InvalidArgument, msg));
    }
    cairn_core::codec::decode::<Command>(&bytes, "command")
        .map(drop)
        .map_err(|e| ApiError::new(ErrorCode::InvalidArgument, format!("metadata command refused: {e}")))
}

/// Proposes queued commands to Raft in batches of up to [`MAX_BATCH`], [`MAX_IN_FLIGHT`]
/// entries at a time.
pub(crate) async fn run_proposer(node: Weak<Node>, rx: mpsc::Receiver<Proposal>) {
    crate::serve_batches(node, rx, MAX_BATCH, MAX_IN_FLIGHT, |node, batch: Vec<Proposal>| async move {
        let (cmds, txs): (Vec<Command>, Vec<_>) = batch.into_iter().map(|p| (p.cmd, p.tx)).unzip();
        let n = cmds.len();
        let answers = match node.propose(cmds).await {
            Ok(answers) => answers,
            Err(e) => vec![Err(e); n],
        };
        for (tx, answer) in txs.into_iter().zip(answers) {
            let _ = tx.send(answer);
        }
    })
    .await
}

impl Node {
    /// Applies a metadata command through Raft.
    ///
    /// A commit first refreshes the age of every chunk it references (the intent step): a
    /// chunk the garbage collector already deleted makes the commit fail with `conflict`
    /// instead of committing a dangling reference.
    pub async fn write(&self, cmd: impl Into<Command>) -> Result<Reply, ApiError> {
        let cmd = cmd.into();
        admissible(&cmd)?;
        let referenced = match &cmd {
            Command::Client(ClientCommand::Commit { content: Content::Extents(e), .. })
            | Command::Client(ClientCommand::Write { data: Content::Extents(e), .. }) => Some(e),
            _ => None,
        };
        if let Some(extents) = referenced {
            let ids: std::collections::BTreeSet<ChunkId> = cairn_core::extent::chunks(extents).collect();
            let touched = futures::future::join_all(ids.iter().map(|id| self.touch_chunk(*id))).await;
            if let Some((id, _)) = ids.iter().zip(touched).find(|(_, present)| !present) {
                return Err(ApiError::new(
                    ErrorCode::Conflict,
                    format!("chunk {id} is not stored (collected?); retry the write"),
                ));
            }
        }
        let (tx, rx) = oneshot::channel();
        self.proposals
            .send(Proposal { cmd, tx })
            .await
            .map_err(|_| ApiError::new(ErrorCode::Unavailable, "node is shutting down"))?;
        rx.await.map_err(|_| ApiError::new(ErrorCode::Unavailable, "node is shutting down"))?
    }
}
