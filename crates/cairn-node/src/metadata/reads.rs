//! Linearizable reads on any node, in batches.
//!
//! A read must see every write acknowledged before it was asked. On the leader that takes
//! confirming leadership with a majority; on a follower, the leader's read index and waiting
//! until the local replica has applied it. Such a round costs a network round trip, so one
//! round serves every read queued when it starts: it started after they asked, so it covers
//! every write acknowledged before them. Queries in the batch are then answered together from
//! one read transaction on the blocking pool.
//!
//! A leader whose round succeeded holds a read lease for [`READ_LEASE`] from the round's
//! start: a majority acknowledged a heartbeat sent after that instant, and openraft's voters
//! refuse every other candidate for the leader lease (`election_timeout_max`, 2 s) after a
//! heartbeat. So no other leader can exist, and no write can be acknowledged that this
//! replica has not applied (a leader acknowledges a write once applied), until well after
//! the lease ends; meanwhile the leader answers reads, and followers' read-index questions,
//! from its replica without a round. The margin (1.5 s) covers clock drift between nodes.

use super::writes::{LEADER_WAIT, RETRY_PAUSE};
use super::Metadata;
use crate::transport::{PeerReply, PeerRequest};
use crate::unavailable;
use cairn_core::wire::{Query, QueryReply};
use cairn_core::{ApiError, ErrorCode};
use openraft::error::{CheckIsLeaderError, RaftError};
use std::sync::Weak;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// How long after a successful round's start the leader reads without a round (a quarter
/// of openraft's leader lease; see the module docs).
const READ_LEASE: Duration = Duration::from_millis(500);

/// Read-index rounds kept in flight by one node.
const ROUNDS_IN_FLIGHT: usize = 2;
/// Most queries answered from one read transaction (the rest wait for the next round).
const MAX_QUERIES: usize = 512;

/// Where a query's answer goes.
type Answer = oneshot::Sender<Result<QueryReply, ApiError>>;

/// A caller waiting for the next read-index round.
pub(crate) enum Waiter {
    /// Wants only the barrier (then reads by itself).
    Barrier(oneshot::Sender<Result<(), ApiError>>),
    /// Wants a metadata query answered right after the barrier.
    Query(Box<Query>, Answer),
}

impl Metadata {
    /// Waits until this node's replica reflects every write acknowledged before the call.
    pub(crate) async fn read_barrier(&self) -> Result<(), ApiError> {
        let (tx, rx) = oneshot::channel();
        self.enqueue_read(Waiter::Barrier(tx)).await?;
        rx.await.map_err(|_| unavailable("node is shutting down"))?
    }

    /// Answers a metadata query linearizably, on any node.
    pub async fn query(&self, q: Query) -> Result<QueryReply, ApiError> {
        let (tx, rx) = oneshot::channel();
        self.enqueue_read(Waiter::Query(Box::new(q), tx)).await?;
        rx.await.map_err(|_| unavailable("node is shutting down"))?
    }

    async fn enqueue_read(&self, w: Waiter) -> Result<(), ApiError> {
        self.barriers.send(w).await.map_err(|_| unavailable("node is shutting down"))
    }

    /// One read-index round: on the leader, confirming leadership; on a follower, the
    /// leader's read index, then waiting until it is applied locally.
    async fn read_barrier_round(&self) -> Result<(), ApiError> {
        if self.leased() {
            return Ok(());
        }
        let deadline = Instant::now() + LEADER_WAIT;
        loop {
            // Openraft's clock (tokio's), so the lease runs on the clock its voters use.
            let began = tokio::time::Instant::now();
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(checked) = tokio::time::timeout(left, self.raft.ensure_linearizable()).await else {
                return Err(unavailable("read timed out: no majority of voters reachable"));
            };
            let leader = match checked {
                Ok(_) => {
                    self.lease_from(began);
                    return Ok(());
                }
                Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => f.leader_id,
                Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(_))) => None,
                Err(e) => return Err(unavailable(format!("linearizable read failed: {e}"))),
            };
            if let Some(leader) = leader.filter(|l| *l != self.id) {
                if let Ok(PeerReply::ReadIndex(index)) = self.ask(leader, PeerRequest::ReadIndex, None).await {
                    let left = deadline.saturating_duration_since(Instant::now());
                    return self
                        .raft
                        .wait(Some(left))
                        .applied_index_at_least(index, "read index applied")
                        .await
                        .map(drop)
                        .map_err(|e| unavailable(format!("replica did not catch up: {e}")));
                }
            }
            if Instant::now() >= deadline {
                return Err(unavailable("no metadata leader reachable (is a majority of voters up?)"));
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }

    /// True while this node is the leader and holds a read lease.
    fn leased(&self) -> bool {
        let until = *self.read_lease.lock().expect("read lease lock");
        if until.is_none_or(|t| tokio::time::Instant::now() >= t) {
            return false;
        }
        let m = self.raft.metrics();
        let m = m.borrow();
        m.state == openraft::ServerState::Leader && m.current_leader == Some(self.id)
    }

    /// Records a round that began at `began` and succeeded on this node as leader.
    fn lease_from(&self, began: tokio::time::Instant) {
        let mut lease = self.read_lease.lock().expect("read lease lock");
        let until = began + READ_LEASE;
        if lease.is_none_or(|t| t < until) {
            *lease = Some(until);
        }
    }

    /// The leader's read index, for followers' reads.
    pub(crate) async fn read_index(&self) -> Result<Option<u64>, ApiError> {
        if self.leased() {
            // Everything acknowledged is applied here, so the index applied covers it (the
            // state machine's own record: openraft's metrics may trail its acknowledgements).
            return Ok(Some(self.feed.last()));
        }
        let began = tokio::time::Instant::now();
        match tokio::time::timeout(LEADER_WAIT, self.raft.ensure_linearizable()).await {
            Ok(Ok(id)) => {
                self.lease_from(began);
                Ok(id.map(|l| l.index))
            }
            Ok(Err(e)) => Err(unavailable(format!("not the leader: {e}"))),
            Err(_) => Err(unavailable("read index timed out: no majority of voters reachable")),
        }
    }

    /// Answers `queries` from one read transaction of this replica.
    async fn answer(&self, queries: Vec<(Box<Query>, Answer)>) {
        let (qs, txs): (Vec<_>, Vec<_>) = queries.into_iter().unzip();
        let n = qs.len();
        let answers = self
            .read_local(move |txn| {
                let one = |q: &Query| {
                    cairn_meta::query(txn, q, crate::now_ns())
                        .unwrap_or_else(|e| Err(ApiError::new(ErrorCode::Internal, e.to_string())))
                };
                Ok(qs.iter().map(|q| one(q)).collect::<Vec<_>>())
            })
            .await
            .unwrap_or_else(|e| vec![Err(e); n]);
        for (tx, answer) in txs.into_iter().zip(answers) {
            let _ = tx.send(answer);
        }
    }
}

/// Serves the read queue: every waiter queued when a round starts is answered by that round;
/// waiters arriving meanwhile go to the next one.
pub(crate) async fn run_read_rounds(meta: Weak<Metadata>, rx: mpsc::Receiver<Waiter>) {
    crate::serve_batches(meta, rx, MAX_QUERIES, ROUNDS_IN_FLIGHT, |meta, batch: Vec<Waiter>| async move {
        let round = meta.read_barrier_round().await;
        let mut queries = Vec::new();
        for w in batch {
            match (w, &round) {
                (Waiter::Barrier(tx), _) => drop(tx.send(round.clone())),
                (Waiter::Query(q, tx), Ok(())) => queries.push((q, tx)),
                (Waiter::Query(_, tx), Err(e)) => drop(tx.send(Err(e.clone()))),
            }
        }
        if !queries.is_empty() {
            meta.answer(queries).await;
        }
    })
    .await
}
