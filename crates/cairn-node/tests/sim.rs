//! Whole clusters in one process, their nodes talking over the simulated network
//! (`transport::mem`): Raft, chunk replication and repair under partitions and message loss.
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
    _dir: tempfile::TempDir,
}

impl Sim {
    /// Starts `n` nodes: the first founds the cluster, the others join it.
    async fn start(n: usize) -> Sim {
        let seed = MemNet::seed_from_env();
        println!("simulated network seed: {seed} (replay with CAIRN_SIM_SEED={seed})");
        let net = MemNet::new(seed);
        let dir = tempfile::tempdir().unwrap();
        let config = |k: usize| NodeConfig {
            data: dir.path().join(format!("n{k}")),
            listen: "127.0.0.1:0".into(),
            repair_delay: Duration::from_secs(2),
            repair_interval: Duration::from_millis(500),
            ..NodeConfig::default()
        };
        let first = Node::start_on(config(0), PeerNet::Memory(net.clone())).await.unwrap();
        let admin = first.admin_key.clone().expect("a new cluster's admin key");
        let key = Credentials { id: admin.access_key_id, secret: admin.secret_access_key };
        let token = first.node.join_token();
        let url = first.node.url.clone();
        let mut nodes = vec![Some(first)];
        for k in 1..n {
            let c = NodeConfig { join: Some(url.clone()), secret: Some(token.clone()), ..config(k) };
            nodes.push(Some(Node::start_on(c, PeerNet::Memory(net.clone())).await.unwrap()));
        }
        let sim = Sim { net, nodes, key, _dir: dir };
        sim.wait("every node to see all members", Duration::from_secs(30), || async {
            sim.live().all(|n| n.members().len() == sim.nodes.len())
        })
        .await;
        sim
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
        self.node(k).raft().metrics().borrow().current_leader
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

/// Bytes of a test file.
fn content(i: usize, len: usize) -> Bytes {
    Bytes::from((0..len).map(|b| (b as u64 * 31 + i as u64 * 7) as u8).collect::<Vec<u8>>())
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
    let term = sim.node(old).raft().metrics().borrow().current_term;
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
    sim.net.heal();
    sim.wait("every replica to apply the same log", Duration::from_secs(30), || async {
        let applied: Vec<_> = sim.live().map(|n| n.raft().metrics().borrow().last_applied).collect();
        applied.windows(2).all(|w| w[0] == w[1])
    })
    .await;
    assert!(sim.node(old).raft().metrics().borrow().current_term > term, "the old leader learned the new term");
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
        let files = node.chunks().list().unwrap().len();
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
    let copies = || sim.live().map(|n| n.chunks().list().unwrap().len()).sum::<usize>();
    sim.wait("repair to bring every chunk back to policy", Duration::from_secs(90), || async {
        copies() == 12 * 3 && c.fsck("/").await.is_ok_and(|r| r["at_policy"] == true)
    })
    .await;
    sim.net.set_loss(0.0);
    for i in 0..6 {
        assert_eq!(c.get_bytes(&format!("/r/{i}")).await.unwrap(), content(i, 5 << 20).to_vec());
    }
    for node in sim.live() {
        assert_eq!(node.chunks().list().unwrap().len(), 12, "node {} holds a copy of every chunk", node.id);
    }
}
