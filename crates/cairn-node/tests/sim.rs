//! Whole clusters in one process, their nodes talking over the simulated network
//! (`transport::mem`): Raft, chunk replication, repair and rebalance under partitions and
//! message loss; and one cluster over the real transport (mutual TLS on 127.0.0.1) under a
//! saturating write load.
//!
//! Each test prints its seed; `CAIRN_SIM_SEED=N cargo test -p cairn-node --test sim` replays
//! the same fault decisions. Clients reach the nodes over real HTTP on 127.0.0.1.

use bytes::Bytes;
use cairn_client::{AsyncClient, ClientError, Credentials};
use cairn_core::ErrorCode;
use cairn_node::transport::mem::MemNet;
use cairn_node::transport::PeerNet;
use cairn_node::{Node, NodeConfig, RunningNode};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A cluster of in-process nodes on one simulated network.
struct Sim {
    net: Arc<MemNet>,
    nodes: Vec<Option<RunningNode>>,
    key: Credentials,
    /// Node `k`'s configuration.
    config: Box<dyn Fn(usize) -> NodeConfig + Send + Sync>,
    _dir: tempfile::TempDir,
}

impl Sim {
    /// Starts `n` nodes on the simulated network: the first founds the cluster, the others
    /// join it.
    async fn start(n: usize) -> Sim {
        Self::start_on(n, true, |_| {}).await
    }

    /// Starts `n` nodes, on the simulated network or (`simulated` false) over mutual TLS on
    /// 127.0.0.1; `tune` adjusts each node's configuration.
    async fn start_on(n: usize, simulated: bool, tune: impl Fn(&mut NodeConfig) + Send + Sync + 'static) -> Sim {
        let seed = MemNet::seed_from_env();
        println!("simulated network seed: {seed} (replay with CAIRN_SIM_SEED={seed})");
        let net = MemNet::new(seed);
        let peers = || if simulated { PeerNet::Memory(net.clone()) } else { PeerNet::Tls };
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let config = move |k: usize| {
            let mut c = NodeConfig {
                data: root.join(format!("n{k}")),
                listen: "127.0.0.1:0".into(),
                peer_listen: Some("127.0.0.1:0".into()),
                s3_listen: Some("off".into()),
                repair_delay: Duration::from_secs(2),
                repair_interval: Duration::from_millis(500),
                ..NodeConfig::default()
            };
            tune(&mut c);
            c
        };
        let first = Node::start_on(config(0), peers()).await.unwrap();
        let admin = first.admin_key.clone().expect("a new cluster's admin key");
        let key = Credentials { id: admin.access_key_id, secret: admin.secret_access_key };
        let token = first.node.join_token();
        let url = first.node.url.clone();
        let config = move |k: usize| NodeConfig { join: Some(url.clone()), secret: Some(token.clone()), ..config(k) };
        let mut nodes = vec![Some(first)];
        for k in 1..n {
            nodes.push(Some(Node::start_on(config(k), peers()).await.unwrap()));
        }
        let mut sim = Sim { net, nodes, key, config: Box::new(config), _dir: dir };
        sim.settle().await;
        sim
    }

    /// Starts one more node on the simulated network, joining the cluster.
    async fn add(&mut self) {
        let config = (self.config)(self.nodes.len());
        self.nodes.push(Some(Node::start_on(config, PeerNet::Memory(self.net.clone())).await.unwrap()));
        self.settle().await;
    }

    /// Waits until every node sees every member.
    async fn settle(&mut self) {
        let n = self.nodes.len();
        self.wait("every node to see all members", Duration::from_secs(30), || async {
            self.live().all(|node| node.members().len() == n)
        })
        .await;
    }

    fn live(&self) -> impl Iterator<Item = &Arc<Node>> {
        self.nodes.iter().flatten().map(|r| &r.node)
    }

    fn node(&self, k: usize) -> &Arc<Node> {
        &self.nodes[k].as_ref().expect("node is running").node
    }

    /// A client of node `k` (reads go through the node, not to chunk files).
    fn client(&self, k: usize) -> AsyncClient {
        AsyncClient::connect_with(&self.node(k).url, self.key.clone()).unwrap().without_short_circuit()
    }

    /// The index of the node that leads now, as node `k` sees it.
    fn leader_seen_by(&self, k: usize) -> Option<u64> {
        self.node(k).meta().metrics().current_leader
    }

    fn index_of(&self, id: u64) -> usize {
        self.nodes.iter().position(|r| r.as_ref().is_some_and(|r| r.node.id == id)).expect("a node of this cluster")
    }

    /// Stops node `k` for good (as if its machine died).
    async fn kill(&mut self, k: usize) {
        let running = self.nodes[k].take().expect("node is running");
        running.shutdown().await.unwrap();
    }

    async fn wait<F, Fut>(&self, what: &str, limit: Duration, mut done: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        let start = Instant::now();
        while !done().await {
            assert!(start.elapsed() < limit, "timed out waiting for {what} (seed {})", self.net.seed());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Bytes of test file `i`: no two 8-byte words alike, within a file or across files, so no
/// chunk of one is a chunk of another.
fn content(i: usize, len: usize) -> Bytes {
    let words = (0..len.div_ceil(8) as u64).map(|k| ((i as u64) << 40 | k).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut bytes: Vec<u8> = words.flat_map(u64::to_le_bytes).collect();
    bytes.truncate(len);
    Bytes::from(bytes)
}

/// Writes until one attempt succeeds: under message loss a write may fail `unavailable` (its
/// outcome unknown); writing the whole file again is safe.
async fn put_retrying(c: &AsyncClient, path: &str, data: Bytes) -> usize {
    let mut failures = 0;
    loop {
        match c.put_bytes(path, data.clone()).await {
            Ok(_) => return failures,
            Err(e) if is_unavailable(&e) && failures < 20 => {
                println!("{path}: {e}; writing it again");
                failures += 1
            }
            Err(e) => panic!("writing {path}: {e}"),
        }
    }
}

fn is_unavailable(e: &ClientError) -> bool {
    e.code() == ErrorCode::Unavailable
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cut_off_leader_is_replaced_and_the_log_converges_after_healing() {
    let sim = Sim::start(3).await;
    let c0 = sim.client(0);
    c0.put_bytes("/before", content(0, 1000)).await.unwrap();
    let leader = sim.leader_seen_by(0).expect("a leader");
    let old = sim.index_of(leader);
    let term = sim.node(old).meta().metrics().current_term;
    sim.net.isolate(leader);
    let (a, b) = match old {
        0 => (1, 2),
        1 => (0, 2),
        _ => (0, 1),
    };
    sim.wait("the majority to elect another leader", Duration::from_secs(20), || async {
        sim.leader_seen_by(a).is_some_and(|l| l != leader) && sim.leader_seen_by(a) == sim.leader_seen_by(b)
    })
    .await;
    // The majority takes writes; the cut-off old leader cannot commit any.
    let ca = sim.client(a);
    for i in 0..10 {
        ca.put_bytes(&format!("/during/{i}"), content(i, 5000)).await.unwrap();
    }
    let refused = sim.client(old).put_bytes("/split-brain", content(9, 10)).await;
    assert!(refused.as_ref().is_err_and(is_unavailable), "{refused:?}");
    // Nor does it answer reads from its stale replica (its read lease ended long ago).
    let stale = sim.client(old).stat("/during/0").await;
    assert!(stale.as_ref().is_err_and(is_unavailable), "a cut-off leader read its stale replica: {stale:?}");
    sim.net.heal();
    sim.wait("every replica to apply the same log", Duration::from_secs(30), || async {
        let applied: Vec<_> = sim.live().map(|n| n.meta().metrics().last_applied).collect();
        applied.windows(2).all(|w| w[0] == w[1])
    })
    .await;
    assert!(sim.node(old).meta().metrics().current_term > term, "the old leader learned the new term");
    for k in 0..3 {
        let c = sim.client(k);
        assert_eq!(c.get_bytes("/before").await.unwrap(), content(0, 1000).to_vec());
        for i in 0..10 {
            assert_eq!(c.get_bytes(&format!("/during/{i}")).await.unwrap(), content(i, 5000).to_vec(), "node {k}");
        }
        let gone = c.stat("/split-brain").await;
        assert!(gone.is_err(), "a write the old leader could not commit must not appear: {gone:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn files_written_under_message_loss_are_whole_and_fully_replicated() {
    let sim = Sim::start(3).await;
    sim.net.set_loss(0.15);
    sim.net.set_delay(Duration::ZERO, Duration::from_millis(3));
    let mut failures = 0;
    // Small files (inline in the metadata) and multi-chunk ones, through every node.
    for i in 0..24 {
        let len = if i % 4 == 0 { (9 << 20) / 2 } else { 3000 };
        failures += put_retrying(&sim.client(i % 3), &format!("/lossy/{i}"), content(i, len)).await;
    }
    println!("{failures} writes failed under loss and were retried");
    sim.net.set_loss(0.0);
    sim.net.set_delay(Duration::ZERO, Duration::ZERO);
    // Chunks that reached fewer nodes than their policy are repaired; then each is on all 3.
    let c = sim.client(1);
    sim.wait("every chunk to be at policy", Duration::from_secs(60), || async {
        c.fsck("/").await.is_ok_and(|r| r["at_policy"] == true)
    })
    .await;
    for k in 0..3 {
        let c = sim.client(k);
        for i in 0..24 {
            let len = if i % 4 == 0 { (9 << 20) / 2 } else { 3000 };
            assert_eq!(c.get_bytes(&format!("/lossy/{i}")).await.unwrap(), content(i, len).to_vec(), "node {k}");
        }
    }
    for node in sim.live() {
        let files = node.chunk_store().list().unwrap().len();
        assert_eq!(files, 6 * 2, "node {} holds a copy of every chunk", node.id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn repair_restores_copies_of_a_dead_node_over_a_lossy_network() {
    let mut sim = Sim::start(4).await;
    let c = sim.client(0);
    for i in 0..6 {
        c.put_bytes(&format!("/r/{i}"), content(i, 5 << 20)).await.unwrap();
    }
    sim.wait("every chunk to be at policy", Duration::from_secs(30), || async {
        c.fsck("/").await.is_ok_and(|r| r["at_policy"] == true)
    })
    .await;
    // A node other than the one clients use dies; the network drops some messages.
    let victim = 3;
    sim.kill(victim).await;
    sim.net.set_loss(0.05);
    let c = sim.client(0);
    // Each of the 12 chunks gets its 3 copies back, on the 3 nodes left.
    let copies = || sim.live().map(|n| n.chunk_store().list().unwrap().len()).sum::<usize>();
    sim.wait("repair to bring every chunk back to policy", Duration::from_secs(90), || async {
        copies() == 12 * 3 && c.fsck("/").await.is_ok_and(|r| r["at_policy"] == true)
    })
    .await;
    sim.net.set_loss(0.0);
    for i in 0..6 {
        assert_eq!(c.get_bytes(&format!("/r/{i}")).await.unwrap(), content(i, 5 << 20).to_vec());
    }
    for node in sim.live() {
        assert_eq!(node.chunk_store().list().unwrap().len(), 12, "node {} holds a copy of every chunk", node.id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_saturating_write_load_causes_no_election_and_no_refusal() {
    // Three nodes over the real transport; 8 writers upload 16 MiB files through all three
    // at once. Consensus has connections of its own, so heartbeats keep their deadlines: no
    // node's term moves (not even a failed election), and no upload is refused.
    let sim = Sim::start_on(3, false, |_| {}).await;
    let terms = || sim.live().map(|n| n.meta().metrics().current_term).collect::<Vec<u64>>();
    let leader = sim.leader_seen_by(0);
    let before = terms();
    let refused = std::sync::atomic::AtomicUsize::new(0);
    let writers = (0..8).map(|w| {
        let (c, refused) = (sim.client(w % 3), &refused);
        async move {
            for f in 0..2 {
                let i = w * 2 + f;
                if let Err(e) = c.put_bytes(&format!("/load/{i}"), content(i, 16 << 20)).await {
                    assert!(is_unavailable(&e), "upload {i}: {e}");
                    println!("upload {i} refused: {e}");
                    refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
    });
    futures::future::join_all(writers).await;
    assert_eq!(terms(), before, "an election happened under load");
    assert_eq!(sim.leader_seen_by(0), leader);
    assert_eq!(refused.into_inner(), 0, "uploads were refused under load");
    let c = sim.client(1);
    for i in [0, 7, 15] {
        assert_eq!(c.get_bytes(&format!("/load/{i}")).await.unwrap(), content(i, 16 << 20).to_vec());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rebalance_fills_a_new_node_over_a_lossy_network_without_losing_a_copy() {
    let mut sim = Sim::start_on(3, true, |c| c.capacity = Some(256 << 20)).await;
    let c = sim.client(0);
    for i in 0..12 {
        c.put_bytes(&format!("/b/{i}"), content(i, 8 << 20)).await.unwrap();
    }
    // 24 chunks on each of 3 nodes (37 % full); a fourth, empty node joins, and the network
    // loses messages while rebalance moves copies to it.
    sim.add().await;
    sim.net.set_loss(0.05);
    let newcomer = sim.node(3).clone();
    sim.wait("rebalance to move copies to the new node", Duration::from_secs(120), || async {
        newcomer.chunk_store().list().unwrap().len() >= 12
    })
    .await;
    sim.net.set_loss(0.0);
    // Moves copy first and delete after: every chunk keeps its 3 copies throughout.
    sim.wait("every chunk to be at policy", Duration::from_secs(60), || async {
        c.fsck("/").await.is_ok_and(|r| r["at_policy"] == true)
    })
    .await;
    let total: usize = sim.live().map(|n| n.chunk_store().list().unwrap().len()).sum();
    assert!(total >= 24 * 3, "{total} copies of 24 chunks");
    for i in 0..12 {
        assert_eq!(c.get_bytes(&format!("/b/{i}")).await.unwrap(), content(i, 8 << 20).to_vec());
    }
}
