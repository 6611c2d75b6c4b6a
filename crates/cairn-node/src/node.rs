//! Starting, serving and stopping a node: the composition of its metadata handle
//! (`metadata`), chunk service (`chunks`) and peer transport (`transport`), behind its two
//! doors (`api`), with its background workers.

use crate::chunks::ChunkService;
use crate::identity::Identity;
use crate::metadata::{Metadata, Opening};
use crate::peers::{LivenessWorker, NodeInfo, Peers};
use crate::raft::log::LogStore;
use crate::raft::sm::StateMachine;
use crate::transport::http::HttpTransport;
use crate::transport::mem::MemNet;
use crate::transport::{PeerNet, Transport};
use crate::worker::uploads::UploadsWorker;
use crate::worker::{
    archive::ArchiveWorker, gc::GcWorker, rebalance::RebalanceWorker, repair::RepairWorker, scrub::ScrubWorker,
    WorkerHandle,
};
use crate::{NodeConfig, NodeError};
use cairn_chunk::{ChunkStore, FsChunkStore};
use cairn_core::wire::{ClusterCommand, NodeState, WorkerSettings};
use cairn_core::{ApiError, ErrorCode};
use redb::Database;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::net::TcpListener;

/// How often every node polls every other member.
const LIVENESS_INTERVAL: Duration = Duration::from_secs(1);
/// How long start-up waits for this node's Raft to elect a leader.
const LEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// A running node's shared state.
pub struct Node {
    /// This node's id.
    pub id: u64,
    /// Its identity on disk (cluster id and secret may change when it joins a cluster).
    identity: std::sync::Mutex<Identity>,
    /// The URL clients reach this node at.
    pub url: String,
    /// The URL the other nodes reach this node at (its peer door).
    pub peer_url: String,
    /// The URL S3 clients reach it at (`None`: S3 is off).
    pub s3_url: Option<String>,
    /// The configuration it runs with.
    pub config: NodeConfig,
    /// When it started.
    pub started: SystemTime,
    /// Its replica of the metadata (the only user of Raft).
    pub(crate) meta: Arc<Metadata>,
    /// Its chunks, and its part in placing and copying the cluster's.
    pub(crate) chunks: Arc<ChunkService>,
    pub(crate) workers: std::sync::Mutex<Vec<WorkerHandle>>,
    /// The HTTP client for a new node's first words with a cluster (joining).
    pub(crate) http: reqwest::Client,
    /// How this node reaches the others.
    pub(crate) net: Arc<dyn crate::transport::Transport>,
    /// What this node knows of the others.
    pub(crate) peers: Arc<Peers>,
    /// The cluster CA and this node's certificate (the peer door's mutual TLS).
    pub(crate) pki: crate::pki::Pki,
    /// Access keys recently looked up (see `keys`).
    pub(crate) key_cache: crate::keys::KeyCache,
    /// The coding runs this node takes part in (see `code`).
    pub(crate) code_runs: crate::code::runs::CodeRuns,
}

/// The metadata database's page cache. The namespace lives on disk in redb, and the node's
/// memory must not grow with it (redb's default cache is 1 GiB): pages beyond this come from
/// the kernel's page cache.
const META_CACHE: usize = 32 << 20;

/// A started node: its state, and the means to stop it.
pub struct RunningNode {
    /// The node.
    pub node: Arc<Node>,
    /// The cluster's first admin key, made by this start (a cluster's first), to be shown
    /// once; it is also in `<data>/admin.json`.
    pub admin_key: Option<crate::keys::KeyPair>,
    server: tokio::task::JoinHandle<()>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl Node {
    /// Starts a node: opens (or initialises) its data directory, binds its address, starts
    /// Raft and the HTTP server, and waits until the metadata has a leader.
    pub async fn start(config: NodeConfig) -> Result<RunningNode, NodeError> {
        Self::start_on(config, PeerNet::Tls).await
    }

    /// [`Node::start`], reaching the other nodes through `net`.
    pub async fn start_on(config: NodeConfig, net: PeerNet) -> Result<RunningNode, NodeError> {
        config.validate()?;
        cairn_client::tls::install_provider();
        let data: PathBuf = config.data.clone();
        let dir_err = |why: String| NodeError::DataDir { path: data.display().to_string(), why };
        std::fs::create_dir_all(&data).map_err(|e| dir_err(e.to_string()))?;
        // The data dir holds the cluster secret and every chunk: its owner's alone.
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| dir_err(e.to_string()))?;
        }
        // The database is opened first: it locks the directory against a second node, before
        // anything (like clearing the chunk store's temp files) touches it.
        let db =
            Database::builder().set_cache_size(META_CACHE).create(data.join("meta.redb")).map_err(|e| match e {
                redb::DatabaseError::DatabaseAlreadyOpen => dir_err("already in use by another cairn node".into()),
                e => dir_err(format!("metadata database: {e}")),
            })?;
        let db = Arc::new(db);
        let mut identity = Identity::load_or_create(&data, config.recover)?;
        let chunks = FsChunkStore::open(&data.join("chunks")).map_err(|e| dir_err(e.to_string()))?;
        let log = LogStore::open(db.clone()).map_err(|e| dir_err(e.to_string()))?;
        let sm = StateMachine::open(db.clone(), &data.join("snapshots")).map_err(|e| dir_err(e.to_string()))?;

        let listener = TcpListener::bind(&config.listen)
            .await
            .map_err(|e| NodeError::Listen { addr: config.listen.clone(), why: e.to_string() })?;
        let client_addr = listener.local_addr()?;
        let client_host = crate::config::url_host(client_addr.ip(), config.advertise.as_deref());
        // TLS for clients when asked, or when the door is open beyond this machine.
        let client_tls = config.tls || config.tls_cert.is_some() || !client_addr.ip().is_loopback();
        let scheme = if client_tls { "https" } else { "http" };
        let url = format!("{scheme}://{client_host}:{}", client_addr.port());
        let (peer_listener, peer_url) = match &net {
            PeerNet::Tls => {
                let peer_addr = config.peer_addr()?;
                let peer_listener = TcpListener::bind(peer_addr)
                    .await
                    .map_err(|e| NodeError::Listen { addr: peer_addr.to_string(), why: e.to_string() })?;
                let peer_addr = peer_listener.local_addr()?;
                let host = crate::config::url_host(peer_addr.ip(), config.advertise.as_deref());
                (Some(peer_listener), format!("https://{host}:{}", peer_addr.port()))
            }
            PeerNet::Memory(_) => (None, MemNet::addr(identity.node_id)),
        };
        let s3_listener = match config.s3_addr()? {
            Some(addr) => Some(TcpListener::bind(addr).await.map_err(|e| NodeError::Listen {
                addr: format!("{addr} (S3; set --s3-listen ADDR, or off)"),
                why: e.to_string(),
            })?),
            None => None,
        };
        let s3_url = match &s3_listener {
            Some(l) => {
                let addr = l.local_addr()?;
                Some(format!(
                    "{scheme}://{}:{}",
                    crate::config::url_host(addr.ip(), config.advertise.as_deref()),
                    addr.port()
                ))
            }
            None => None,
        };
        let pki = crate::pki::Pki::obtain(&config, &identity).await?;
        let client_tls = match client_tls {
            true => {
                let files = config.tls_cert.as_deref().zip(config.tls_key.as_deref());
                Some(pki.client_door_config(&client_host, files)?)
            }
            false => None,
        };

        // Two pools: bulk traffic (chunks, forwarded writes) on HTTP/1.1 connections of its
        // own, several per peer; Raft on one HTTP/2 connection per peer that no chunk ever
        // queues on, so heartbeats keep their deadlines under a full write load.
        let mut bulk_tls = pki.client_config()?;
        bulk_tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let client = |tls: rustls::ClientConfig| {
            reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(2))
                .use_preconfigured_tls(tls)
                .build()
                .map_err(|e| NodeError::Raft(e.to_string()))
        };
        let http = client(bulk_tls)?;
        let transport: Arc<dyn Transport> = match &net {
            PeerNet::Tls => Arc::new(HttpTransport::new(http.clone(), client(pki.client_config()?)?)),
            PeerNet::Memory(mem) => mem.transport(identity.node_id),
        };
        let opening = Opening {
            id: identity.node_id,
            cluster_id: identity.cluster_id.clone(),
            peer_url: peer_url.clone(),
            snapshot_every: config.snapshot_every,
            data: data.clone(),
        };
        let meta = Metadata::open(opening, db, log, sm, transport.clone()).await?;
        let initialized = meta.is_initialized().await?;
        let join = config.join.clone();
        if !initialized && identity.member && config.recover.is_none() && !config.force_new_cluster {
            return Err(dir_err(
                "node.json is here but the metadata (meta.redb) is missing or empty: refusing to start. \
                 Restore meta.redb, or start with --recover ID --join URL to get this node back from \
                 its cluster, or with --force-new-cluster to found a new cluster here (its chunks then \
                 count as garbage)"
                    .into(),
            ));
        }
        if !initialized && join.is_none() {
            meta.found(&url, &peer_url).await?;
        }
        if (initialized || join.is_none()) && !identity.member {
            identity.member = true;
            identity.save(&data)?;
        }

        let peers = Arc::new(Peers::default());
        let chunks = Arc::new(ChunkService::new(
            identity.node_id,
            url.clone(),
            config.clone(),
            Arc::new(chunks),
            meta.clone(),
            peers.clone(),
        ));
        let node = Arc::new(Node {
            id: identity.node_id,
            identity: std::sync::Mutex::new(identity),
            url,
            peer_url,
            s3_url,
            config,
            started: SystemTime::now(),
            meta,
            chunks,
            workers: std::sync::Mutex::new(Vec::new()),
            http,
            net: transport,
            peers,
            pki,
            key_cache: Default::default(),
            code_runs: Default::default(),
        });

        let (stop, stopped) = tokio::sync::watch::channel(false);
        let (app, peer_app) = crate::api::routers(node.clone());
        let peer_stopped = stopped.clone();
        let peer_tls = node.pki.server_config()?;
        let (s3_app, s3_stopped, s3_tls) = (crate::s3door::router(node.clone()), stopped.clone(), client_tls.clone());
        let server = tokio::spawn(async move {
            let peer_door = async move {
                if let Some(l) = peer_listener {
                    crate::serve::serve(l, peer_app, peer_stopped, Some(peer_tls)).await
                }
            };
            let s3_door = async move {
                if let Some(l) = s3_listener {
                    crate::serve::serve(l, s3_app, s3_stopped, s3_tls).await
                }
            };
            tokio::join!(crate::serve::serve(listener, app, stopped, client_tls), peer_door, s3_door);
        });
        if let PeerNet::Memory(mem) = &net {
            mem.register(&node);
        }

        node.join_or_rejoin(join, initialized).await?;
        node.meta.wait_for_leader(LEADER_TIMEOUT).await?;

        let c = &node.config;
        let handles = [
            WorkerHandle::spawn(
                Arc::new(LivenessWorker::new(Arc::downgrade(&node))),
                LIVENESS_INTERVAL,
                stop.subscribe(),
            ),
            WorkerHandle::spawn(Arc::new(GcWorker::new(node.clone())), c.gc_interval, stop.subscribe()),
            WorkerHandle::spawn(Arc::new(RepairWorker::new(node.clone())), c.repair_interval, stop.subscribe()),
            WorkerHandle::spawn(Arc::new(ScrubWorker::new(node.clone())), c.scrub_interval, stop.subscribe()),
            WorkerHandle::spawn(Arc::new(RebalanceWorker::new(node.clone())), c.repair_interval, stop.subscribe()),
            WorkerHandle::spawn(Arc::new(ArchiveWorker::new(node.clone())), c.archive_interval, stop.subscribe()),
            WorkerHandle::spawn(
                Arc::new(UploadsWorker::new(node.clone())),
                (c.s3_upload_expiry / 4).clamp(Duration::from_secs(1), Duration::from_secs(3600)),
                stop.subscribe(),
            ),
        ];
        node.workers.lock().expect("workers lock").extend(handles);
        let admin_key = node
            .first_admin_key()
            .await
            .map_err(|e| NodeError::Raft(format!("making the cluster's first admin key: {e}")))?;
        Ok(RunningNode { node, admin_key, server, stop })
    }

    /// Joins the cluster at `join` (first start), or, when restarted at a new address, tells
    /// the cluster where this node is now.
    async fn join_or_rejoin(&self, join: Option<String>, initialized: bool) -> Result<(), NodeError> {
        let refused = |e: ApiError| NodeError::Raft(format!("joining the cluster failed: {e}"));
        if !initialized {
            let Some(url) = join else { return Ok(()) };
            let secret = crate::pki::parse_token(self.config.secret.as_deref().unwrap_or_default()).0;
            let reply = self.join(&url, &secret).await.map_err(refused)?;
            {
                let mut identity = self.identity.lock().expect("identity lock");
                identity.cluster_id = reply.cluster_id;
                identity.secret = secret;
                identity.member = true;
                identity.save(&self.config.data)?;
            }
            if self.config.recover.is_some() {
                // The copies the ledger credits to this id went with the old disk; repair
                // brings back the ones placement assigns here.
                self.write(ClusterCommand::ForgetNode { node: self.id }).await.map_err(refused)?;
            }
            return Ok(());
        }
        let moved = self.meta.member(self.id).is_some_and(|n| n.url != self.url || n.peer != self.peer_url);
        if moved {
            let req = self.join_request(&self.secret());
            for (id, _) in self.meta.members().into_iter().filter(|(id, _)| *id != self.id) {
                if self.join_at(id, req.clone()).await.is_ok() {
                    return Ok(());
                }
            }
            tracing::warn!("restarted at {} but could not tell the cluster", self.url);
        }
        Ok(())
    }

    /// Every member of the cluster: (id, peer URL), this node with its current one.
    pub fn members(&self) -> Vec<(u64, String)> {
        self.meta.members()
    }

    /// Administrative states of the members (active unless set otherwise).
    pub fn node_states(&self) -> BTreeMap<u64, NodeState> {
        self.meta.node_states(self.members().into_iter().map(|(id, _)| id))
    }

    /// The cluster's id.
    pub fn cluster_id(&self) -> String {
        self.identity.lock().expect("identity lock").cluster_id.clone()
    }

    /// The cluster secret a joining node must present.
    pub fn secret(&self) -> String {
        self.identity.lock().expect("identity lock").secret.clone()
    }

    /// The join token: the secret and the cluster CA's fingerprint (what `--secret` takes).
    pub fn join_token(&self) -> String {
        crate::pki::token(&self.secret(), &self.pki.fingerprint())
    }

    /// Checks a cluster secret (or join token) a joining node presents, in constant time.
    pub(crate) fn check_secret(&self, presented: &str) -> Result<(), ApiError> {
        use subtle::ConstantTimeEq;
        let secret = crate::pki::parse_token(presented).0;
        if !bool::from(secret.as_bytes().ct_eq(self.secret().as_bytes())) {
            return Err(ApiError::new(ErrorCode::PermissionDenied, "wrong cluster secret"));
        }
        Ok(())
    }

    /// A worker's settings as of this replica (`cairn worker ...` changes them through Raft).
    pub fn worker_settings(&self, name: &str) -> WorkerSettings {
        self.meta.worker_settings(name)
    }

    /// This node's replica of the metadata.
    pub fn meta(&self) -> &Arc<Metadata> {
        &self.meta
    }

    /// The local chunk store.
    pub fn chunk_store(&self) -> &Arc<dyn ChunkStore> {
        &self.chunks.store
    }

    /// What this node reports about itself: zone and space.
    pub fn info(&self) -> NodeInfo {
        self.chunks.info()
    }

    /// Status of the background workers.
    pub fn worker_status(&self) -> Vec<crate::worker::WorkerStatus> {
        self.workers.lock().expect("workers lock").iter().map(|w| w.status()).collect()
    }
}

impl RunningNode {
    /// Stops the node cleanly: stop accepting requests, finish in-flight ones, stop workers
    /// and Raft.
    pub async fn shutdown(self) -> Result<(), NodeError> {
        let _ = self.stop.send(true);
        self.server.await.map_err(|e| NodeError::Raft(e.to_string()))?;
        self.node.meta.shutdown().await
    }
}
