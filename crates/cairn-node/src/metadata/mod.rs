//! The metadata handle: the node's replica of the metadata and its way to change it — the
//! only user of openraft.
//!
//! [`Metadata`] proposes commands (`writes`: admission, group commit, forwarding to the
//! leader), answers queries linearizably (`reads`), changes the membership (`membership`)
//! and receives Raft's messages from the other nodes. It reaches the other nodes through the
//! peer [`Transport`], addressing them by id; the rest of the node sees the membership as
//! ids and peer addresses and never touches Raft.

mod membership;
mod reads;
mod writes;

pub(crate) use writes::MAX_BATCH;

use crate::raft::log::LogStore;
use crate::raft::network::Network;
use crate::raft::sm::StateMachine;
use crate::raft::{Member, Raft, TypeConfig};
use crate::transport::{CallError, PeerReply, PeerRequest, Transport};
use crate::{internal, NodeError};
use cairn_core::wire::{NodeState, WorkerSettings};
use cairn_core::{ApiError, ErrorCode};
use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use redb::{Database, ReadableDatabase};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// The metrics openraft keeps (term, leader, log and membership), for status pages.
pub type RaftMetrics = openraft::RaftMetrics<u64, Member>;

/// How far a snapshot being received has come.
struct SnapshotReceipt {
    /// The snapshot's id.
    id: String,
    /// Offset of the last piece written (it may be sent again).
    last: u64,
    /// Offset the next piece must start at.
    next: u64,
}

/// This node's replica of the metadata, and the means to change it.
pub struct Metadata {
    /// This node's id.
    pub id: u64,
    /// This node's peer address (what the membership says of it may be older).
    peer_url: String,
    raft: Raft,
    pub(crate) db: Arc<Database>,
    net: Arc<dyn Transport>,
    proposals: mpsc::Sender<writes::Proposal>,
    barriers: mpsc::Sender<reads::Waiter>,
    /// Held by every membership change this node makes as leader: Raft takes one change at a
    /// time, so concurrent joins and removals queue here instead of failing.
    membership_lock: tokio::sync::Mutex<()>,
    /// The snapshot being received, if any.
    snapshot_rx: Mutex<Option<SnapshotReceipt>>,
    /// Where this node keeps its data (snapshot pieces must fit its free space).
    data: PathBuf,
    /// Until when this node, as leader, answers reads without a round (see `reads`).
    read_lease: Mutex<Option<tokio::time::Instant>>,
    /// The state machine's change feed (`GET /v1/changes`), whose last index is what it has
    /// applied (recorded before openraft hears of the apply, so before any write it covers is
    /// acknowledged).
    feed: Arc<crate::raft::feed::ChangeFeed>,
}

/// What [`Metadata::open`] needs.
pub(crate) struct Opening {
    /// This node's id.
    pub id: u64,
    /// The cluster's id (Raft's cluster name).
    pub cluster_id: String,
    /// This node's peer address.
    pub peer_url: String,
    /// Entries between snapshots.
    pub snapshot_every: u64,
    /// The node's data directory.
    pub data: PathBuf,
}

impl Metadata {
    /// Opens the replica in `db` (log and state machine) and starts Raft and the proposer
    /// and read-round tasks.
    pub(crate) async fn open(
        o: Opening,
        db: Arc<Database>,
        log: LogStore,
        sm: StateMachine,
        net: Arc<dyn Transport>,
    ) -> Result<Arc<Metadata>, NodeError> {
        let raft_config = openraft::Config {
            cluster_name: o.cluster_id,
            // openraft times each AppendEntries out after one heartbeat interval: it must cover
            // a loaded 2-core machine appending (and fsyncing) a full batch.
            heartbeat_interval: 250,
            election_timeout_min: 1000,
            election_timeout_max: 2000,
            // Entries are batches of up to MAX_BATCH commands (small files inline): a few per
            // request keep each AppendEntries far below the internal body limit.
            max_payload_entries: 8,
            // Snapshots go in 1 MiB chunks; the last one also installs the whole snapshot
            // (validate, then import) before it is answered.
            snapshot_max_chunk_size: 1 << 20,
            install_snapshot_timeout: 120_000,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(o.snapshot_every),
            max_in_snapshot_log_to_keep: o.snapshot_every.min(1000) / 2,
            ..Default::default()
        };
        let raft_config = Arc::new(raft_config.validate().map_err(|e| NodeError::Raft(e.to_string()))?);
        let feed = sm.feed().clone();
        let raft = Raft::new(o.id, raft_config, Network::new(net.clone()), log, sm)
            .await
            .map_err(|e| NodeError::Raft(e.to_string()))?;
        let (proposals, queue) = mpsc::channel(4 * MAX_BATCH);
        let (barriers, barrier_queue) = mpsc::channel(4 * MAX_BATCH);
        let meta = Arc::new(Metadata {
            id: o.id,
            peer_url: o.peer_url,
            raft,
            db,
            net,
            proposals,
            barriers,
            membership_lock: tokio::sync::Mutex::new(()),
            snapshot_rx: Mutex::new(None),
            data: o.data,
            read_lease: Mutex::new(None),
            feed,
        });
        tokio::spawn(writes::run_proposer(Arc::downgrade(&meta), queue));
        tokio::spawn(reads::run_read_rounds(Arc::downgrade(&meta), barrier_queue));
        Ok(meta)
    }

    /// True if this replica already belongs to a cluster (has a log or a membership).
    pub(crate) async fn is_initialized(&self) -> Result<bool, NodeError> {
        self.raft.is_initialized().await.map_err(|e| NodeError::Raft(e.to_string()))
    }

    /// Founds a one-node cluster of this node, reached at `url` and `peer`.
    pub(crate) async fn found(&self, url: &str, peer: &str) -> Result<(), NodeError> {
        let members = BTreeMap::from([(self.id, Member { url: url.into(), peer: peer.into() })]);
        self.raft.initialize(members).await.map_err(|e| NodeError::Raft(e.to_string()))
    }

    /// Waits up to `limit` until a leader is known.
    pub(crate) async fn wait_for_leader(&self, limit: Duration) -> Result<(), NodeError> {
        self.raft
            .wait(Some(limit))
            .metrics(|m| m.current_leader.is_some(), "a leader is elected")
            .await
            .map(drop)
            .map_err(|e| NodeError::Raft(format!("no leader elected: {e}")))
    }

    /// Stops Raft.
    pub(crate) async fn shutdown(&self) -> Result<(), NodeError> {
        self.raft.shutdown().await.map_err(|e| NodeError::Raft(e.to_string()))
    }

    /// Raft's metrics now.
    pub fn metrics(&self) -> RaftMetrics {
        self.raft.metrics().borrow().clone()
    }

    /// Every member of the cluster: (id, peer address), this node with its current one.
    pub fn members(&self) -> Vec<(u64, String)> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        let nodes = m.membership_config.membership().nodes();
        nodes.map(|(id, n)| (*id, if *id == self.id { self.peer_url.clone() } else { n.peer.clone() })).collect()
    }

    /// Member `id` as the membership records it.
    pub fn member(&self, id: u64) -> Option<Member> {
        self.raft.metrics().borrow().membership_config.membership().get_node(&id).cloned()
    }

    /// True if node `id` may send this node peer messages: it is a member, or this node has
    /// no membership yet (being admitted, it hears from the leader first). Reads the
    /// membership in place: this runs for every Raft message.
    pub(crate) fn admits_peer(&self, id: u64) -> bool {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        let membership = m.membership_config.membership();
        membership.get_node(&id).is_some() || membership.nodes().next().is_none()
    }

    /// The peer address of member `id`.
    pub(crate) fn addr_of(&self, id: u64) -> Result<String, ApiError> {
        self.member(id).map(|m| m.peer).ok_or_else(|| {
            ApiError::new(ErrorCode::Unavailable, format!("node {id} is not a member of this cluster (any more)"))
        })
    }

    /// Sends `req` to member `to` and waits for the answer, at most `timeout` (default: the
    /// message's own).
    pub(crate) async fn ask(
        &self,
        to: u64,
        req: PeerRequest,
        timeout: Option<Duration>,
    ) -> Result<PeerReply, CallError> {
        let addr = self.addr_of(to).map_err(CallError::NotDelivered)?;
        let timeout = timeout.unwrap_or_else(|| req.timeout());
        self.net.call(to, &addr, req, timeout).await
    }

    /// What the state machine changed lately, by log index.
    pub(crate) fn feed(&self) -> &crate::raft::feed::ChangeFeed {
        &self.feed
    }

    /// The metadata leader's id, if one is known.
    pub fn leader(&self) -> Option<u64> {
        self.raft.metrics().borrow().current_leader
    }

    /// The metadata leader's client URL, if one is known.
    pub fn leader_url(&self) -> Option<String> {
        self.member(self.leader()?).map(|m| m.url)
    }

    /// True if this node is the metadata leader now.
    pub fn is_leader(&self) -> bool {
        self.leader() == Some(self.id)
    }

    /// Runs `f` over a read transaction of this replica as it is (no read barrier), on the
    /// blocking pool: redb reads do I/O.
    pub(crate) async fn read_local<T: Send + 'static>(
        &self,
        f: impl FnOnce(&redb::ReadTransaction) -> Result<T, cairn_meta::MetaError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db.begin_read().map_err(internal)?).map_err(internal))
            .await
            .map_err(internal)?
    }

    /// Administrative states of `ids`, as of this replica (active unless set otherwise).
    pub fn node_states(&self, ids: impl Iterator<Item = u64>) -> BTreeMap<u64, NodeState> {
        let read = || -> Result<BTreeMap<u64, NodeState>, String> {
            let txn = self.db.begin_read().map_err(|e| e.to_string())?;
            ids.map(|id| Ok((id, cairn_meta::node_state(&txn, id).map_err(|e| e.to_string())?))).collect()
        };
        read().unwrap_or_else(|e| {
            tracing::warn!("reading node states: {e}");
            BTreeMap::new()
        })
    }

    /// A worker's settings as of this replica (`cairn worker ...` changes them through Raft).
    pub fn worker_settings(&self, name: &str) -> WorkerSettings {
        let read = || -> Result<WorkerSettings, String> {
            let txn = self.db.begin_read().map_err(|e| e.to_string())?;
            cairn_meta::worker_settings(&txn, name).map_err(|e| e.to_string())
        };
        read().unwrap_or_else(|e| {
            tracing::warn!(worker = name, "reading worker settings: {e}");
            WorkerSettings::default()
        })
    }

    /// Raft: entries (or a heartbeat) from the leader.
    pub(crate) async fn append(
        &self,
        req: AppendEntriesRequest<TypeConfig>,
    ) -> Result<AppendEntriesResponse<u64>, RaftError<u64>> {
        self.raft.append_entries(req).await
    }

    /// Raft: a candidate asks for this node's vote.
    pub(crate) async fn vote(&self, req: VoteRequest<u64>) -> Result<VoteResponse<u64>, RaftError<u64>> {
        self.raft.vote(req).await
    }

    /// Raft: one piece of a snapshot. Pieces must come in order (offset 0 starts a snapshot,
    /// each next one starts where the last ended; the last may be sent again when its answer
    /// was lost) and the whole must fit in this node's free disk space; anything else is
    /// refused before it is written.
    pub(crate) async fn snapshot_piece(
        &self,
        req: InstallSnapshotRequest<TypeConfig>,
    ) -> Result<Result<InstallSnapshotResponse<u64>, RaftError<u64, InstallSnapshotError>>, ApiError> {
        let bad_piece = |why: &str| ApiError::new(ErrorCode::InvalidArgument, format!("snapshot piece refused: {why}"));
        let id = req.meta.snapshot_id.clone();
        let end = req.offset.checked_add(req.data.len() as u64).ok_or_else(|| bad_piece("offset overflows"))?;
        if req.offset != 0 {
            let rx = self.snapshot_rx.lock().expect("snapshot lock");
            let in_order = rx.as_ref().is_some_and(|r| r.id == id && (req.offset == r.next || req.offset == r.last));
            if !in_order {
                return Err(bad_piece(&format!("piece at offset {} is out of order", req.offset)));
            }
        }
        if end > free_space(&self.data) {
            return Err(ApiError::new(ErrorCode::NoSpace, format!("a snapshot of {end} bytes does not fit")));
        }
        let (start, done) = (req.offset, req.done);
        let answer = self.raft.install_snapshot(req).await;
        *self.snapshot_rx.lock().expect("snapshot lock") =
            (answer.is_ok() && !done).then_some(SnapshotReceipt { id, last: start, next: end });
        Ok(answer)
    }
}

fn free_space(dir: &Path) -> u64 {
    crate::peers::disk_space(dir).map(|(_, free)| free).unwrap_or(u64::MAX)
}
