//! An in-process network for whole clusters in one test: messages go straight to the target
//! node's dispatcher, through faults a test sets — partitions, message loss, delay.
//!
//! Every fault decision (lose this request? lose its answer? how long to delay?) is drawn
//! from one random generator seeded by [`MemNet::new`]; tests print the seed, and
//! `CAIRN_SIM_SEED` replays it (the decisions come out the same; the threads' timing may not).
//! A lost message fails at once with `unavailable`, as a reset connection would; a lost
//! answer fails the same way after the target carried the message out, as a timeout would.

use super::{CallError, PeerReply, PeerRequest, Transport};
use crate::Node;
use cairn_core::{ApiError, ErrorCode};
use futures::future::BoxFuture;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// The faults in force.
struct Faults {
    rng: StdRng,
    /// Chance that a message, or its answer, is lost.
    loss: f64,
    /// Each message is delayed by a time drawn from this range.
    delay: (Duration, Duration),
    /// Directed links that carry nothing: (from, to).
    cut: BTreeSet<(u64, u64)>,
}

/// A simulated network between nodes of one process.
pub struct MemNet {
    seed: u64,
    nodes: Mutex<HashMap<u64, Weak<Node>>>,
    faults: Mutex<Faults>,
}

impl MemNet {
    /// A network without faults whose decisions follow `seed`.
    pub fn new(seed: u64) -> Arc<Self> {
        let faults = Faults {
            rng: StdRng::seed_from_u64(seed),
            loss: 0.0,
            delay: (Duration::ZERO, Duration::ZERO),
            cut: BTreeSet::new(),
        };
        Arc::new(MemNet { seed, nodes: Mutex::default(), faults: Mutex::new(faults) })
    }

    /// The seed: `CAIRN_SIM_SEED` if set, else a fresh random one.
    pub fn seed_from_env() -> u64 {
        std::env::var("CAIRN_SIM_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random)
    }

    /// The seed this network's decisions follow.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The address node `id` has on this network.
    pub fn addr(id: u64) -> String {
        format!("mem://node{id}")
    }

    /// Attaches a started node (messages to it are delivered from now on).
    pub(crate) fn register(&self, node: &Arc<Node>) {
        self.nodes.lock().expect("mem net nodes").insert(node.id, Arc::downgrade(node));
    }

    /// Node `me`'s side of the network.
    pub(crate) fn transport(self: &Arc<Self>, me: u64) -> Arc<dyn Transport> {
        Arc::new(MemTransport { net: self.clone(), me })
    }

    /// Cuts every link between a node of `a` and a node of `b`, both ways.
    pub fn partition(&self, a: &[u64], b: &[u64]) {
        let mut f = self.faults.lock().expect("mem net faults");
        for x in a {
            for y in b {
                f.cut.insert((*x, *y));
                f.cut.insert((*y, *x));
            }
        }
    }

    /// Cuts node `id` off from every other node.
    pub fn isolate(&self, id: u64) {
        let others: Vec<u64> = self.nodes.lock().expect("mem net nodes").keys().copied().filter(|n| *n != id).collect();
        self.partition(&[id], &others);
    }

    /// Restores every link.
    pub fn heal(&self) {
        self.faults.lock().expect("mem net faults").cut.clear();
    }

    /// Loses each message, and each answer, with chance `p` (0 to 1).
    pub fn set_loss(&self, p: f64) {
        self.faults.lock().expect("mem net faults").loss = p.clamp(0.0, 1.0);
    }

    /// Delays each message by a time drawn from `min..=max`.
    pub fn set_delay(&self, min: Duration, max: Duration) {
        self.faults.lock().expect("mem net faults").delay = (min, max.max(min));
    }

    /// Draws the fate of one message from `from` to `to`: (delivered, answer delivered, delay).
    fn fate(&self, from: u64, to: u64) -> (bool, bool, Duration) {
        let mut f = self.faults.lock().expect("mem net faults");
        let open = !f.cut.contains(&(from, to));
        let loss = f.loss;
        let sent = open && !f.rng.random_bool(loss);
        let answered = open && !f.rng.random_bool(loss);
        let (lo, hi) = f.delay;
        let delay = if hi > lo { f.rng.random_range(lo..=hi) } else { lo };
        (sent, answered, delay)
    }
}

/// One node's side of a [`MemNet`].
struct MemTransport {
    net: Arc<MemNet>,
    me: u64,
}

impl MemTransport {
    async fn deliver(&self, to: u64, req: PeerRequest) -> Result<PeerReply, CallError> {
        let name = req.name();
        let lost = || ApiError::new(ErrorCode::Unavailable, format!("{name} to node {to}: lost"));
        let (sent, answered, delay) = self.net.fate(self.me, to);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let target = self.net.nodes.lock().expect("mem net nodes").get(&to).and_then(Weak::upgrade);
        let (true, Some(target)) = (sent, target) else { return Err(CallError::NotDelivered(lost())) };
        if !target.meta.admits_peer(self.me) {
            let msg = format!("node {} is not a member of this cluster", self.me);
            return Err(CallError::Failed(ApiError::new(ErrorCode::PermissionDenied, msg)));
        }
        // The target carries the message out on its own, as a remote node would, even if the
        // asker stops waiting; the answer travels back over a link that may be cut meanwhile.
        let answer = tokio::spawn(async move { super::serve::handle(&target, req).await })
            .await
            .unwrap_or_else(|e| Err(ApiError::new(ErrorCode::Internal, format!("{name} handler failed: {e}"))));
        let back_open = !self.net.faults.lock().expect("mem net faults").cut.contains(&(to, self.me));
        match answered && back_open {
            true => answer.map_err(CallError::Failed),
            false => Err(CallError::Failed(lost())),
        }
    }
}

impl Transport for MemTransport {
    fn call(
        &self,
        to: u64,
        _addr: &str,
        req: PeerRequest,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<PeerReply, CallError>> {
        Box::pin(async move {
            let name = req.name();
            match tokio::time::timeout(timeout, self.deliver(to, req)).await {
                Ok(answer) => answer,
                Err(_) => Err(CallError::Failed(ApiError::new(
                    ErrorCode::Unavailable,
                    format!("{name} to node {to}: timed out"),
                ))),
            }
        })
    }

    fn check_addr(&self, addr: &str) -> Result<(), ApiError> {
        match addr.strip_prefix("mem://node").and_then(|n| n.parse::<u64>().ok()) {
            Some(_) => Ok(()),
            None => Err(ApiError::new(ErrorCode::InvalidArgument, "a simulated peer address is mem://nodeID")),
        }
    }
}
