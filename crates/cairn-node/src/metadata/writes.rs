//! Metadata writes through Raft: admission, group commit, and forwarding to the leader.
//!
//! A command is admitted only if every node could decode it from the log (round-tripped
//! through the codec, at most [`MAX_COMMAND_BYTES`]). Admitted commands queue; while earlier
//! entries are being made durable, new ones gather and go out together in the next entry,
//! sharing one log fsync. Each command's answer goes back to its own caller. A follower
//! forwards its batches to the leader (a `Propose` message).

use super::Metadata;
use crate::now_ns;
use crate::transport::{CallError, PeerReply, PeerRequest};
use crate::unavailable;
use cairn_core::wire::{ApplyResult, Command, Reply, Request};
use cairn_core::{ApiError, ErrorCode};
use openraft::error::{ClientWriteError, RaftError};
use std::sync::Weak;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// How long a write or read keeps trying to reach a leader before it reports `unavailable`.
pub(crate) const LEADER_WAIT: Duration = Duration::from_secs(10);
/// Pause between attempts while no leader is known.
pub(crate) const RETRY_PAUSE: Duration = Duration::from_millis(100);

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
pub(crate) async fn run_proposer(meta: Weak<Metadata>, rx: mpsc::Receiver<Proposal>) {
    crate::serve_batches(meta, rx, MAX_BATCH, MAX_IN_FLIGHT, |meta, batch: Vec<Proposal>| async move {
        let (cmds, txs): (Vec<Command>, Vec<_>) = batch.into_iter().map(|p| (p.cmd, p.tx)).unzip();
        let n = cmds.len();
        let answers = match meta.propose(cmds).await {
            Ok(answers) => answers,
            Err(e) => vec![Err(e); n],
        };
        for (tx, answer) in txs.into_iter().zip(answers) {
            let _ = tx.send(answer);
        }
    })
    .await
}

impl Metadata {
    /// Applies a metadata command through Raft, batched with others (the caller checked
    /// anything beyond the command itself, such as the chunks a commit references).
    pub(crate) async fn submit(&self, cmd: Command) -> Result<Reply, ApiError> {
        admissible(&cmd)?;
        let (tx, rx) = oneshot::channel();
        self.proposals.send(Proposal { cmd, tx }).await.map_err(|_| unavailable("node is shutting down"))?;
        rx.await.map_err(|_| unavailable("node is shutting down"))?
    }

    /// Proposes a batch of commands as one Raft entry, on the leader wherever it is; waits for
    /// a leader while there is none. Returns one answer per command.
    pub(crate) async fn propose(&self, cmds: Vec<Command>) -> Result<Vec<ApplyResult>, ApiError> {
        let deadline = Instant::now() + LEADER_WAIT;
        let n = cmds.len();
        loop {
            let req = Request { now: now_ns(), cmds: cmds.clone() };
            let left = deadline.saturating_duration_since(Instant::now());
            // A leader cut off from its majority never commits: give up at the deadline. The
            // outcome is then unknown (the entry may still commit once the majority is back),
            // which is what `unavailable` means.
            let Ok(written) = tokio::time::timeout(left, self.raft.client_write(req)).await else {
                return Err(unavailable("metadata write timed out: no majority of voters reachable"));
            };
            let leader = match written {
                Ok(resp) if resp.data.len() == n => return Ok(resp.data),
                Ok(resp) => {
                    return Err(ApiError::new(
                        ErrorCode::Internal,
                        format!("{} answers for {n} commands", resp.data.len()),
                    ))
                }
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => f.leader_id,
                Err(e) => return Err(unavailable(format!("metadata write failed: {e}"))),
            };
            if let Some(leader) = leader.filter(|l| *l != self.id) {
                match self.ask(leader, PeerRequest::Propose(cmds.clone()), None).await {
                    Ok(PeerReply::Applied(answers)) => return Ok(answers),
                    Ok(r) => return Err(r.unexpected()),
                    // Never delivered: safe to try again (the leader may have moved).
                    Err(CallError::NotDelivered(_)) => {}
                    // Perhaps carried out: sending it again could apply it twice.
                    Err(CallError::Failed(e)) => return Err(e),
                }
            }
            if Instant::now() >= deadline {
                return Err(unavailable("no metadata leader reachable (is a majority of voters up?)"));
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }
}
