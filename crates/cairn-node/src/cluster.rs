//! Many nodes, one namespace: joining a cluster, writes that check the chunks they reference,
//! and chunks placed on, copied between and fetched from the other nodes (the metadata's
//! own workings — Raft, forwarding to the leader, reads — are in `metadata`).

use crate::{Node, Replication};
use cairn_client::HttpBackend;
use cairn_core::wire::{ClientCommand, Command, Content, HolderChange, Part, Reply};
use cairn_core::{ApiError, ChunkId, ErrorCode};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// Pause before a joining node's first retry (doubling up to 2 s).
const RETRY_PAUSE: Duration = Duration::from_millis(100);
/// Longest a joining node keeps asking while the cluster is busy or has no leader.
const JOIN_WAIT: Duration = Duration::from_secs(60);
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

impl Node {
    /// Applies a metadata command through Raft.
    ///
    /// A commit first refreshes the age of every chunk it references (the intent step): a
    /// chunk the garbage collector already deleted makes the commit fail with `conflict`
    /// instead of committing a dangling reference.
    pub async fn write(&self, cmd: impl Into<Command>) -> Result<Reply, ApiError> {
        let cmd = cmd.into();
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
        self.meta.submit(cmd).await
    }

    /// An HTTP connection to a node's client door (how a new node asks to join).
    pub(crate) fn client_door(&self, url: &str) -> Result<HttpBackend, ApiError> {
        HttpBackend::with_client(url, self.http.clone()).map_err(ApiError::from)
    }

    /// Adds a node that presents the cluster secret (`POST /v1/cluster/join`, or a `Join`
    /// message), on the leader wherever it is.
    pub(crate) async fn handle_join(&self, req: JoinRequest) -> Result<JoinReply, ApiError> {
        self.check_secret(&req.secret)?;
        self.client_door(&req.url)?;
        self.net.check_addr(&req.peer_url)?;
        let zone_of = |id: u64| match id == self.id {
            true => Some(self.config.zone.clone()),
            false => self.peers.get(id).1.map(|i| i.zone),
        };
        self.meta.admit(req, &zone_of).await.map(|()| JoinReply { cluster_id: self.cluster_id() })
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
            let txn = self.meta.db.begin_read().ok()?;
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
