//! Membership changes, on the leader: admitting nodes (as learners, then voters spread over
//! zones) and removing them. Raft takes one change at a time; this node's changes queue on
//! its membership lock.

use super::writes::{LEADER_WAIT, RETRY_PAUSE};
use super::Metadata;
use crate::cluster::JoinRequest;
use crate::raft::Member;
use crate::transport::{PeerReply, PeerRequest};
use crate::unavailable;
use cairn_core::ApiError;
use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use openraft::{ChangeMembers, Membership};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// Longest the leader spends admitting one node (catching it up, a snapshot included).
const ADMIT_TIMEOUT: Duration = Duration::from_secs(300);
/// Most metadata voters; further nodes stay learners.
const MAX_VOTERS: usize = 5;

/// The zone of a node, as far as this node knows.
pub(crate) type ZoneOf<'a> = dyn Fn(u64) -> Option<String> + Send + Sync + 'a;

impl Metadata {
    /// The membership as of this replica.
    fn membership(&self) -> Membership<u64, Member> {
        self.raft.metrics().borrow().membership_config.membership().clone()
    }

    /// Admits a node to the cluster, on the leader wherever it is (a `Join` message to it
    /// from a follower).
    pub(crate) async fn admit(&self, req: JoinRequest, zone_of: &ZoneOf<'_>) -> Result<(), ApiError> {
        let deadline = Instant::now() + LEADER_WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let checked = tokio::time::timeout(left, self.raft.ensure_linearizable()).await;
            match checked.unwrap_or(Err(RaftError::Fatal(openraft::error::Fatal::Stopped))) {
                Ok(_) => return self.admit_here(req, zone_of).await,
                Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => {
                    if let Some(leader) = f.leader_id.filter(|l| *l != self.id) {
                        return match self.ask(leader, PeerRequest::Join(req), None).await? {
                            PeerReply::Joined(_) => Ok(()),
                            r => Err(r.unexpected()),
                        };
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
    /// queue on the membership lock), within [`ADMIT_TIMEOUT`]. A node added as a
    /// learner that cannot finish joining is removed again, so the leader does not replicate
    /// to it forever.
    async fn admit_here(&self, req: JoinRequest, zone_of: &ZoneOf<'_>) -> Result<(), ApiError> {
        let _one_at_a_time = self.membership_lock.lock().await;
        let id = req.node_id;
        let was_member = self.member(id).is_some();
        let outcome = match tokio::time::timeout(ADMIT_TIMEOUT, self.admit_locked(req, zone_of)).await {
            Ok(r) => r,
            Err(_) => Err(unavailable(format!("node {id} did not catch up within {ADMIT_TIMEOUT:?}"))),
        };
        if outcome.is_err() && !was_member {
            let m = self.membership();
            if m.get_node(&id).is_some() && !m.voter_ids().any(|v| v == id) {
                let gone: ChangeMembers<u64, Member> = ChangeMembers::RemoveNodes(BTreeSet::from([id]));
                if let Err(e) = tokio::time::timeout(LEADER_WAIT, self.raft.change_membership(gone, false)).await {
                    tracing::warn!(node = id, "removing a learner that failed to join timed out: {e}");
                }
            }
        }
        outcome
    }

    /// [`Metadata::admit_here`]'s changes: make the node a learner (catching it up), then a
    /// voter while there are fewer than five; a known node that moved gets its new address.
    async fn admit_locked(&self, req: JoinRequest, zone_of: &ZoneOf<'_>) -> Result<(), ApiError> {
        let err =
            |e: RaftError<u64, ClientWriteError<u64, Member>>| unavailable(format!("membership change failed: {e}"));
        let node = Member { url: req.url.clone(), peer: req.peer_url.clone() };
        let mut membership = self.membership();
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
            membership = self.membership();
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
        let voters: BTreeSet<u64> = self.membership().voter_ids().collect();
        if !voters.contains(&req.node_id) {
            if voters.len() < MAX_VOTERS {
                let change: ChangeMembers<u64, Member> = ChangeMembers::AddVoterIds(BTreeSet::from([req.node_id]));
                self.raft.change_membership(change, true).await.map_err(err)?;
            } else if let Some(out) = self.voter_to_swap(&voters, req.zone.as_deref(), zone_of) {
                // Spread voters over zones: the newcomer's zone has none, another has several.
                let mut new_voters = voters.clone();
                new_voters.remove(&out);
                new_voters.insert(req.node_id);
                self.raft.change_membership(ChangeMembers::ReplaceAllVoters(new_voters), true).await.map_err(err)?;
            }
        }
        Ok(())
    }

    /// A voter to demote in favour of a node from `zone`, if `zone` has no voter and some
    /// other zone has more than one (never the leader itself).
    fn voter_to_swap(&self, voters: &BTreeSet<u64>, zone: Option<&str>, zone_of: &ZoneOf<'_>) -> Option<u64> {
        let zone = zone?;
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

    /// On the leader: takes node `id` out of the membership (a voter is replaced by a
    /// learner when there is one).
    pub(crate) async fn remove_member(&self, id: u64) -> Result<(), ApiError> {
        let err =
            |e: RaftError<u64, ClientWriteError<u64, Member>>| unavailable(format!("membership change failed: {e}"));
        let _one_at_a_time = self.membership_lock.lock().await;
        let m = self.membership();
        let voters: BTreeSet<u64> = m.voter_ids().collect();
        if voters.contains(&id) {
            let learner = m.learner_ids().find(|l| *l != id);
            if let Some(l) = learner {
                let change = ChangeMembers::AddVoterIds(BTreeSet::from([l]));
                self.raft.change_membership(change, true).await.map_err(err)?;
            }
            self.raft.change_membership(ChangeMembers::RemoveVoters(BTreeSet::from([id])), false).await.map_err(err)?;
        } else {
            self.raft.change_membership(ChangeMembers::RemoveNodes(BTreeSet::from([id])), false).await.map_err(err)?;
        }
        Ok(())
    }

    /// Has the leader remove node `id`; its message for the operator.
    pub(crate) async fn remove_on_leader(&self, id: u64, force: bool) -> Result<String, ApiError> {
        let leader = self.leader().ok_or_else(|| unavailable("no metadata leader"))?;
        match self.ask(leader, PeerRequest::RemoveNode { id, force }, None).await? {
            PeerReply::Removed(message) => Ok(message),
            r => Err(r.unexpected()),
        }
    }
}
