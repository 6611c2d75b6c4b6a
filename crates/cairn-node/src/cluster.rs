//! Many nodes, one metadata: joining a cluster, forwarding writes to the Raft leader, and
//! fetching chunks that live on other nodes (linearizable reads are in `reads`).
//!
//! Every node accepts every request. A metadata write that reaches a follower is forwarded,
//! in the batch it was proposed in, to the leader (a [`PeerRequest::Propose`] message).
//!
//! [`PeerRequest::Propose`]: crate::transport::PeerRequest::Propose

use crate::now_ns;
use crate::raft::Member;
use crate::transport::CallError;
use crate::{Node, Replication};
use cairn_client::HttpBackend;
use cairn_core::wire::{ApplyResult, Command, HolderChange, Part, Request};
use cairn_core::{ApiError, ChunkId, ErrorCode};
use openraft::error::{CheckIsLeaderError, ClientWriteError, ForwardToLeader, RaftError};
use openraft::ChangeMembers;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// How long a write or read keeps trying to reach a leader before it reports `unavailable`.
pub(crate) const LEADER_WAIT: Duration = Duration::from_secs(10);
/// Pause between attempts while no leader is known.
pub(crate) const RETRY_PAUSE: Duration = Duration::from_millis(100);
/// Longest a joining node keeps asking while the cluster is busy or has no leader.
const JOIN_WAIT: Duration = Duration::from_secs(60);
/// Longest the leader spends admitting one node (catching it up, a snapshot included).
const ADMIT_TIMEOUT: Duration = Duration::from_secs(300);
/// Most metadata voters; further nodes stay learners.
const MAX_VOTERS: usize = 5;

/// `POST /v1/cluster/join` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JoinRequest {
    /// The joining node's id.
    pub node_id: u64,
    /// The URL clients reach it at.
    pub url: String,
    /// The URL its peers reach it at.
    pub peer_url: String,
    /// The cluster secret.
    pub secret: String,
    /// The joining node's zone.
    #[serde(default)]
    pub zone: Option<String>,
    /// The node lost its disk and rejoins under its old id with empty state.
    #[serde(default)]
    pub recover: bool,
}

/// `POST /v1/cluster/join` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JoinReply {
    /// The cluster's id, which the joining node adopts.
    pub cluster_id: String,
}

/// Posts `body` as JSON to `path` on `peer` and decodes the answer, retrying while the
/// cluster is unreachable or busy (another membership change in progress, no leader yet),
/// backing off, up to [`JOIN_WAIT`]: how a new node joins and fetches the cluster CA.
pub(crate) async fn post_until_up<B: Serialize, T: serde::de::DeserializeOwned>(
    peer: &HttpBackend,
    path: &str,
    body: &B,
) -> Result<T, ApiError> {
    let deadline = Instant::now() + JOIN_WAIT;
    let mut pause = RETRY_PAUSE;
    loop {
        match peer.send(peer.http().post(format!("{}{path}", peer.url())).json(body)).await {
            Ok(resp) => return resp.json().await.map_err(|e| unavailable(format!("bad answer from {path}: {e}"))),
            Err(e) if e.code() == ErrorCode::Unavailable && Instant::now() < deadline => {
                tracing::info!("{} {path}: {e}; retrying in {pause:?}", peer.url());
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

pub(crate) fn unavailable(msg: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::Unavailable, msg)
}

/// The leader, when a Raft call says "not me" and knows who is.
pub(crate) fn leader_of(f: &ForwardToLeader<u64, Member>) -> Option<u64> {
    f.leader_id
}

impl Node {
    /// An HTTP connection to a node's client door (how a new node asks to join).
    pub(crate) fn client_door(&self, url: &str) -> Result<HttpBackend, ApiError> {
        HttpBackend::with_client(url, self.http.clone()).map_err(ApiError::from)
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
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => leader_of(&f),
                Err(e) => return Err(unavailable(format!("metadata write failed: {e}"))),
            };
            if let Some(leader) = leader.filter(|l| *l != self.id) {
                match self.propose_at(leader, cmds.clone()).await {
                    Ok(answers) => return Ok(answers),
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

    /// Adds a node to the cluster (`POST /v1/cluster/join`), on the leader wherever it is.
    pub(crate) async fn handle_join(&self, req: JoinRequest) -> Result<JoinReply, ApiError> {
        self.check_secret(&req.secret)?;
        self.client_door(&req.url)?;
        self.net.check_addr(&req.peer_url)?;
        let deadline = Instant::now() + LEADER_WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let checked = tokio::time::timeout(left, self.raft.ensure_linearizable()).await;
            match checked.unwrap_or(Err(RaftError::Fatal(openraft::error::Fatal::Stopped))) {
                Ok(_) => return self.admit(req).await,
                Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => {
                    if let Some(leader) = leader_of(&f).filter(|l| *l != self.id) {
                        return self.join_at(leader, req).await;
                    }
                }
                Err(_) => {}
            }
            if Instant::now() >= deadline {
                return Err(unavailable("no metadata leader to admit the node"));
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }

    /// On the leader: admits a node, one membership change at a time (concurrent joiners
    /// queue on [`Node::membership_lock`]), within [`ADMIT_TIMEOUT`]. A node added as a
    /// learner that cannot finish joining is removed again, so the leader does not replicate
    /// to it forever.
    async fn admit(&self, req: JoinRequest) -> Result<JoinReply, ApiError> {
        let _one_at_a_time = self.membership_lock.lock().await;
        let id = req.node_id;
        let was_member = self.raft.metrics().borrow().membership_config.membership().get_node(&id).is_some();
        let outcome = match tokio::time::timeout(ADMIT_TIMEOUT, self.admit_locked(req)).await {
            Ok(r) => r,
            Err(_) => Err(unavailable(format!("node {id} did not catch up within {ADMIT_TIMEOUT:?}"))),
        };
        if outcome.is_err() && !was_member {
            let m = self.raft.metrics().borrow().membership_config.membership().clone();
            if m.get_node(&id).is_some() && !m.voter_ids().any(|v| v == id) {
                let gone: ChangeMembers<u64, Member> = ChangeMembers::RemoveNodes(BTreeSet::from([id]));
                if let Err(e) = tokio::time::timeout(LEADER_WAIT, self.raft.change_membership(gone, false)).await {
                    tracing::warn!(node = id, "removing a learner that failed to join timed out: {e}");
                }
            }
        }
        outcome
    }

    /// [`Node::admit`]'s changes: make the node a learner (catching it up), then a voter while
    /// there are fewer than five; a known node that moved gets its new address.
    async fn admit_locked(&self, req: JoinRequest) -> Result<JoinReply, ApiError> {
        let err =
            |e: RaftError<u64, ClientWriteError<u64, Member>>| unavailable(format!("membership change failed: {e}"));
        let node = Member { url: req.url.clone(), peer: req.peer_url.clone() };
        let mut membership = self.raft.metrics().borrow().membership_config.membership().clone();
        if req.recover && membership.get_node(&req.node_id).is_some() {
            // Its Raft log and vote went with its disk. It leaves the membership and comes
            // back as a new learner: it must not vote before it has caught up, and the leader
            // must not mistake its empty log for a log that went backwards.
            let gone = BTreeSet::from([req.node_id]);
            let change: ChangeMembers<u64, Member> = match membership.voter_ids().any(|v| v == req.node_id) {
                true => ChangeMembers::RemoveVoters(gone),
                false => ChangeMembers::RemoveNodes(gone),
            };
            self.raft.change_membership(change, false).await.map_err(err)?;
            membership = self.raft.metrics().borrow().membership_config.membership().clone();
        }
        match membership.get_node(&req.node_id) {
            Some(known) if *known == node => {}
            Some(_) => {
                let change: ChangeMembers<u64, Member> = ChangeMembers::SetNodes(BTreeMap::from([(req.node_id, node)]));
                self.raft.change_membership(change, true).await.map_err(err)?;
            }
            None => {
                self.raft.add_learner(req.node_id, node, true).await.map_err(err)?;
            }
        }
        let voters: BTreeSet<u64> = self.raft.metrics().borrow().membership_config.membership().voter_ids().collect();
        if !voters.contains(&req.node_id) {
            if voters.len() < MAX_VOTERS {
                let change: ChangeMembers<u64, Member> = ChangeMembers::AddVoterIds(BTreeSet::from([req.node_id]));
                self.raft.change_membership(change, true).await.map_err(err)?;
            } else if let Some(out) = self.voter_to_swap(&voters, req.zone.as_deref()) {
                // Spread voters over zones: the newcomer's zone has none, another has several.
                let mut new_voters = voters.clone();
                new_voters.remove(&out);
                new_voters.insert(req.node_id);
                self.raft.change_membership(ChangeMembers::ReplaceAllVoters(new_voters), true).await.map_err(err)?;
            }
        }
        Ok(JoinReply { cluster_id: self.cluster_id() })
    }

    /// A voter to demote in favour of a node from `zone`, if `zone` has no voter and some
    /// other zone has more than one (never the leader itself).
    fn voter_to_swap(&self, voters: &BTreeSet<u64>, zone: Option<&str>) -> Option<u64> {
        let zone = zone?;
        let zone_of = |id: u64| {
            if id == self.id {
                Some(self.config.zone.clone())
            } else {
                self.peers.get(id).1.map(|i| i.zone)
            }
        };
        let mut by_zone: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for v in voters {
            by_zone.entry(zone_of(*v)?).or_default().push(*v);
        }
        if by_zone.contains_key(zone) {
            return None;
        }
        let (_, crowded) = by_zone.into_iter().max_by_key(|(_, ids)| ids.len())?;
        if crowded.len() < 2 {
            return None;
        }
        crowded.into_iter().rev().find(|id| *id != self.id)
    }

    /// Asks the cluster at `url` (a member's client door) to admit this node.
    pub(crate) async fn join(&self, url: &str, secret: &str) -> Result<JoinReply, ApiError> {
        let peer = self.client_door(url)?;
        post_until_up(&peer, "/v1/cluster/join", &self.join_request(secret)).await
    }

    /// What this node presents to be admitted.
    pub(crate) fn join_request(&self, secret: &str) -> JoinRequest {
        JoinRequest {
            node_id: self.id,
            url: self.url.clone(),
            peer_url: self.peer_url.clone(),
            secret: secret.to_string(),
            zone: Some(self.config.zone.clone()),
            recover: self.config.recover.is_some(),
        }
    }

    /// The nodes this replica's ledger credits with a copy of `id`.
    fn holders_here(&self, id: ChunkId) -> Vec<u64> {
        use redb::ReadableDatabase;
        let read = || -> Option<Vec<u64>> {
            let txn = self.db.begin_read().ok()?;
            Some(cairn_meta::chunk_record(&txn, &id).ok()??.nodes().collect())
        };
        read().unwrap_or_default()
    }

    /// Fetches a chunk this node does not hold from the other members, verified.
    pub(crate) async fn fetch_from_peers(&self, id: ChunkId) -> Result<bytes::Bytes, ApiError> {
        // The holders the ledger knows (as of this replica) first, up ones before the others;
        // then every other member, in case the ledger is behind.
        let holders = self.holders_here(id);
        let mut members: Vec<(bool, bool, u64)> = self
            .members()
            .into_iter()
            .filter(|(nid, _)| *nid != self.id)
            .map(|(nid, _)| (!holders.contains(&nid), !self.peers.usable(nid), nid))
            .collect();
        members.sort();
        for (_, _, nid) in members {
            if let Ok(data) = self.fetch_chunk_from(nid, id).await {
                return Ok(data);
            }
        }
        Err(ApiError::new(ErrorCode::NotFound, format!("chunk {id} is on no reachable node")))
    }
}

impl Node {
    /// Stores a chunk on the nodes placement picks among those up: all the copies `policy` asks for
    /// (clipped to the cluster's size), or at least a majority when too few can be reached.
    /// A target that fails is replaced by the next node in placement order. The client
    /// uploads once; this node fans the copies out. Before acknowledging, the nodes that
    /// stored a verified copy are recorded in the durability ledger; a chunk stored on fewer
    /// than the policy's copies thereby shows as under-replicated until repair adds the rest.
    /// `hashed_here`: see [`Node::put_chunk_local`] (peers always verify what they receive).
    pub async fn put_chunk(
        &self,
        id: ChunkId,
        data: bytes::Bytes,
        policy: cairn_core::Policy,
        hashed_here: bool,
    ) -> Result<(), ApiError> {
        let wanted = policy.copies().clamp(1, self.members().len().max(1));
        let candidates = self.candidates(None);
        if candidates.is_empty() && self.any_node_full() {
            return Err(ApiError::new(ErrorCode::NoSpace, format!("chunk {id}: every node that is up is full")));
        }
        let mut ranked = cairn_core::placement::place(&id, &candidates, candidates.len()).into_iter();
        let (mut stored, mut last_error) = (Vec::new(), None);
        loop {
            let round: Vec<u64> = ranked.by_ref().take(wanted - stored.len()).collect();
            if round.is_empty() {
                break;
            }
            let results = match self.config.replication {
                Replication::Fanout => self.fan_out(id, &data, &round, hashed_here).await,
                Replication::Chain => self.chain(id, &data, &round, hashed_here).await,
            };
            for (t, r) in round.iter().zip(results) {
                match r {
                    Ok(()) => stored.push(*t),
                    // Bad bytes are refused by every node alike: no point trying others.
                    Err(e) if e.code == ErrorCode::InvalidArgument => return Err(e),
                    Err(e) => last_error = Some(e),
                }
            }
            if stored.len() == wanted {
                break;
            }
        }
        if stored.len() < wanted && stored.len() <= wanted / 2 {
            return Err(last_error.filter(|e| e.code == ErrorCode::NoSpace).unwrap_or_else(|| {
                unavailable(format!(
                    "chunk {id} reached {} of {wanted} nodes; fewer than a majority are up",
                    stored.len()
                ))
            }));
        }
        if stored.len() < wanted {
            tracing::warn!(chunk = %id, stored = stored.len(), wanted, "chunk stored under-replicated");
        }
        let len = data.len() as u32;
        self.report(
            stored.into_iter().map(|node| HolderChange { part: Part::Copy, id, node, len, held: true }).collect(),
        )
        .await
    }

    /// Sends a copy to each of `targets` in parallel; one result per target.
    async fn fan_out(
        &self,
        id: ChunkId,
        data: &bytes::Bytes,
        targets: &[u64],
        hashed_here: bool,
    ) -> Vec<Result<(), ApiError>> {
        let puts = targets.iter().map(|t| {
            let data = data.clone();
            async move {
                if *t == self.id {
                    return self.put_chunk_local(id, data, hashed_here).await;
                }
                self.store_chunk_at(*t, id, data, Vec::new()).await.map(drop)
            }
        });
        futures::future::join_all(puts).await
    }

    /// Sends the chunk down a chain through `targets` in order (each stores its copy while
    /// passing the chunk on); one result per target.
    async fn chain(
        &self,
        id: ChunkId,
        data: &bytes::Bytes,
        targets: &[u64],
        hashed_here: bool,
    ) -> Vec<Result<(), ApiError>> {
        let Some((first, rest)) = targets.split_first() else { return Vec::new() };
        let stored = if *first == self.id {
            self.put_chunk_chained(id, data.clone(), rest, hashed_here).await
        } else {
            self.store_chunk_at(*first, id, data.clone(), rest.to_vec()).await
        };
        let stored = match stored {
            Ok(stored) => stored,
            Err(e) if e.code == ErrorCode::InvalidArgument => return targets.iter().map(|_| Err(e.clone())).collect(),
            Err(_) => Vec::new(),
        };
        // A broken link cuts off the nodes behind it: send those their copies directly.
        let missed: Vec<u64> = targets.iter().filter(|t| !stored.contains(t)).copied().collect();
        let mut retried = self.fan_out(id, data, &missed, hashed_here).await.into_iter();
        targets
            .iter()
            .map(|t| if stored.contains(t) { Ok(()) } else { retried.next().expect("one per missed") })
            .collect()
    }

    /// One link of a chain: stores the chunk here and, at the same time, passes it to
    /// `next[0]` with the rest of the chain. Returns the nodes that stored it, this one first.
    pub async fn put_chunk_chained(
        &self,
        id: ChunkId,
        data: bytes::Bytes,
        next: &[u64],
        hashed_here: bool,
    ) -> Result<Vec<u64>, ApiError> {
        // Bad bytes stop here, before they cost the rest of the chain anything.
        if !hashed_here && ChunkId::of(&data) != id {
            return Err(ApiError::new(ErrorCode::InvalidArgument, format!("chunk {id}: data does not match its id")));
        }
        let onward = async {
            match next.split_first() {
                Some((first, rest)) => {
                    self.store_chunk_at(*first, id, data.clone(), rest.to_vec()).await.unwrap_or_else(|e| {
                        tracing::warn!(chunk = %id, "chain broke after this node: {e}");
                        Vec::new()
                    })
                }
                None => Vec::new(),
            }
        };
        let (here, mut stored) = tokio::join!(self.put_chunk_local(id, data.clone(), true), onward);
        match here {
            Ok(()) => stored.insert(0, self.id),
            // Bad bytes are refused alike everywhere; other failures leave the rest standing.
            Err(e) if e.code == ErrorCode::InvalidArgument || stored.is_empty() => return Err(e),
            Err(e) => tracing::warn!(chunk = %id, "storing this link's copy failed: {e}"),
        }
        Ok(stored)
    }

    /// Refreshes a chunk's age wherever it is held (the intent step of a commit); true if at
    /// least one holder has it.
    pub(crate) async fn touch_chunk(&self, id: ChunkId) -> bool {
        let members = self.members();
        let touches = members.iter().map(|(nid, _)| self.has_copy(*nid, id));
        futures::future::join_all(touches).await.into_iter().any(|present| present)
    }

    /// True if node `target` holds chunk `id`; refreshes its age there.
    pub(crate) async fn has_copy(&self, target: u64, id: ChunkId) -> bool {
        if target == self.id {
            return self.touch_chunk_local(id).await.unwrap_or(false);
        }
        self.touch_chunk_at(target, id).await.unwrap_or(false)
    }

    /// Has node `target` fetch chunk `id` from the first good one of `sources` and store it
    /// verified; returns its length.
    pub(crate) async fn copy_to(&self, target: u64, id: ChunkId, sources: &[u64]) -> Result<u32, ApiError> {
        if target == self.id {
            return self.copy_chunk_from(id, sources).await;
        }
        self.copy_chunk_at(target, id, sources.to_vec()).await
    }

    /// Has node `target` delete its copy of chunk `id` and report it gone.
    pub(crate) async fn delete_copy(&self, target: u64, id: ChunkId) -> Result<(), ApiError> {
        if target == self.id {
            return self.delete_chunk_local(id).await;
        }
        self.delete_chunk_at(target, id).await
    }
}
