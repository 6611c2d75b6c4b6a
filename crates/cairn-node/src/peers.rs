//! What a node knows of the others: their reported zone and space, and whether they answer.
//!
//! Every node asks every member for its report (`Info`) once a second (the liveness worker). A
//! node that answered within [`UP_WITHIN`] is up, within [`SUSPECT_WITHIN`] suspect, else
//! down. Placement uses nodes that are up (or not polled yet); this node always counts
//! itself as up.

use crate::worker::{PassReport, Worker};
use crate::Node;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, Weak};
use std::time::{Duration, Instant};

/// A node answered this recently: up.
pub const UP_WITHIN: Duration = Duration::from_secs(3);
/// A node answered this recently: suspect (older: down).
pub const SUSPECT_WITHIN: Duration = Duration::from_secs(10);

/// What a node reports about itself (`GET /v1/node`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Node id.
    pub id: u64,
    /// Its URL.
    pub url: String,
    /// Its zone (failure domain).
    pub zone: String,
    /// Bytes it may hold.
    pub capacity: u64,
    /// Bytes in use.
    pub used: u64,
    /// Bytes still free for chunks.
    pub free: u64,
    /// Chunk reads served to clients and peers since the node started.
    #[serde(default)]
    pub chunks_served: u64,
    /// Bytes of chunk data in its store, as the store accounts them (`used` when it has a
    /// `--capacity`).
    #[serde(default)]
    pub stored: u64,
}

/// A node's liveness as seen from here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PeerState {
    /// Answered recently.
    Up,
    /// Missed a few heartbeats.
    Suspect,
    /// Silent for long.
    Down,
}

#[derive(Debug, Clone)]
struct Seen {
    info: NodeInfo,
    at: Instant,
}

/// The last answer of every peer.
pub struct Peers {
    seen: Mutex<HashMap<u64, Seen>>,
    since: Instant,
    /// The state last logged for each peer, and when the last summary of absent peers was.
    logged: Mutex<(HashMap<u64, PeerState>, Option<Instant>)>,
}

impl Default for Peers {
    fn default() -> Self {
        Peers { seen: Mutex::new(HashMap::new()), since: Instant::now(), logged: Mutex::default() }
    }
}

/// How often peers that stay down are mentioned again in the log.
const DOWN_SUMMARY_EVERY: Duration = Duration::from_secs(300);

impl Peers {
    /// Records an answer from a peer.
    pub fn record(&self, info: NodeInfo) {
        self.seen.lock().expect("peers lock").insert(info.id, Seen { info, at: Instant::now() });
    }

    /// True if placement may use peer `id`: it is up, or has not been polled yet (a node
    /// that just started or joined has not heard from everyone).
    pub fn usable(&self, id: u64) -> bool {
        match self.seen.lock().expect("peers lock").get(&id) {
            Some(s) => s.at.elapsed() <= UP_WITHIN,
            None => true,
        }
    }

    /// How long peer `id` has been silent: since its last answer, or since this node started
    /// polling if it never answered (a fresh node does not declare everyone long dead).
    pub fn silent_for(&self, id: u64) -> Duration {
        match self.seen.lock().expect("peers lock").get(&id) {
            Some(s) => s.at.elapsed(),
            None => self.since.elapsed(),
        }
    }

    /// Logs each peer's changes of state once (not every failed poll), and a summary of the
    /// peers still down every [`DOWN_SUMMARY_EVERY`].
    fn log_changes(&self, members: &[(u64, String)]) {
        let mut logged = self.logged.lock().expect("peers log lock");
        let mut down = Vec::new();
        for (id, url) in members {
            let state = self.get(*id).0;
            if state == PeerState::Down {
                down.push(url.as_str());
            }
            let before = logged.0.insert(*id, state);
            match (before, state) {
                (Some(b), s) if b == s => {}
                (None, PeerState::Up) => {}
                (_, PeerState::Up) => tracing::info!(peer = id, url = %url, "peer is up again"),
                (_, PeerState::Suspect) => tracing::warn!(peer = id, url = %url, "peer stopped answering"),
                (_, PeerState::Down) => tracing::warn!(peer = id, url = %url, "peer is down"),
            }
        }
        logged.0.retain(|id, _| members.iter().any(|(m, _)| m == id));
        if down.is_empty() {
            logged.1 = None;
        } else if logged.1.is_none_or(|t| t.elapsed() >= DOWN_SUMMARY_EVERY) {
            if logged.1.is_some() {
                tracing::warn!("{} peers still down: {}", down.len(), down.join(", "));
            }
            logged.1 = Some(Instant::now());
        }
    }

    /// The state and last report of peer `id`.
    pub fn get(&self, id: u64) -> (PeerState, Option<NodeInfo>) {
        match self.seen.lock().expect("peers lock").get(&id) {
            Some(s) if s.at.elapsed() <= UP_WITHIN => (PeerState::Up, Some(s.info.clone())),
            Some(s) if s.at.elapsed() <= SUSPECT_WITHIN => (PeerState::Suspect, Some(s.info.clone())),
            Some(s) => (PeerState::Down, Some(s.info.clone())),
            None if self.since.elapsed() <= SUSPECT_WITHIN => (PeerState::Suspect, None),
            None => (PeerState::Down, None),
        }
    }
}

/// Total and available bytes of the file system holding `path`.
pub fn disk_space(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a properly sized out-parameter.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    if rc != 0 {
        return None;
    }
    let frsize = st.f_frsize as u64;
    Some((st.f_blocks as u64 * frsize, st.f_bavail as u64 * frsize))
}

/// Asks every member for its report and records who answers.
pub struct LivenessWorker {
    node: Weak<Node>,
}

impl LivenessWorker {
    /// A liveness worker for `node`.
    pub fn new(node: Weak<Node>) -> Self {
        LivenessWorker { node }
    }

    async fn run(&self) -> Result<String, String> {
        let Some(node) = self.node.upgrade() else { return Ok("node stopped".into()) };
        let members = node.members();
        let polls = members.iter().filter(|(id, _)| *id != node.id).map(|(id, _)| {
            let node = &node;
            async move { node.info_of(*id, Duration::from_secs(1)).await.ok() }
        });
        for info in futures::future::join_all(polls).await.into_iter().flatten() {
            node.peers.record(info);
        }
        let others: Vec<(u64, String)> = members.iter().filter(|(id, _)| *id != node.id).cloned().collect();
        node.peers.log_changes(&others);
        let mut counts = [0usize; 3];
        for (id, _) in members.iter().filter(|(id, _)| *id != node.id) {
            counts[node.peers.get(*id).0 as usize] += 1;
        }
        Ok(format!("{} peers up, {} suspect, {} down", counts[0], counts[1], counts[2]))
    }
}

impl Worker for LivenessWorker {
    fn name(&self) -> &'static str {
        "liveness"
    }

    fn pass(&self) -> BoxFuture<'_, Result<PassReport, String>> {
        Box::pin(async { self.run().await.map(PassReport::note) })
    }
}
