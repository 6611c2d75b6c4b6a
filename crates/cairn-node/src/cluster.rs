//! Many nodes, one namespace: joining a cluster, and writes that check the chunks they
//! reference (the metadata's own workings — Raft, forwarding to the leader, reads — are in
//! `metadata`; chunks on many nodes in `chunks`).

use crate::{unavailable, Node};
use cairn_client::HttpBackend;
use cairn_core::wire::{ClientCommand, Command, Content, Reply};
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

/// The extent lists a command commits anew (in batches and guards too): their chunks must
/// still be stored when it applies.
fn new_extents<'c>(cmd: &'c ClientCommand, out: &mut Vec<&'c [cairn_core::Extent]>) {
    match cmd {
        ClientCommand::Commit { content: Content::Extents(e), .. }
        | ClientCommand::Write { data: Content::Extents(e), .. } => out.push(e),
        ClientCommand::Guarded { cmd, .. } => new_extents(cmd, out),
        ClientCommand::Batch { ops } => ops.iter().for_each(|op| new_extents(op, out)),
        _ => {}
    }
}

impl Node {
    /// Applies a metadata command through Raft.
    ///
    /// A commit first refreshes the age of every chunk it references (the intent step): a
    /// chunk the garbage collector already deleted makes the commit fail with `conflict`
    /// instead of committing a dangling reference.
    pub async fn write(&self, cmd: impl Into<Command>) -> Result<Reply, ApiError> {
        let cmd = cmd.into();
        let mut referenced = Vec::new();
        if let Command::Client(c) = &cmd {
            new_extents(c, &mut referenced);
        }
        if !referenced.is_empty() {
            let ids: std::collections::BTreeSet<ChunkId> =
                referenced.iter().flat_map(|e| cairn_core::extent::chunks(e)).collect();
            let touched = futures::future::join_all(ids.iter().map(|id| self.chunks.touch_chunk(*id))).await;
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
}
