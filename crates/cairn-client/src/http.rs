//! [`Backend`] over HTTP: the internal binary endpoints of a cairn node.
//!
//! Chunks travel as raw bodies; metadata commands and queries as [`cairn_core::codec`] bodies;
//! errors come back as the JSON error body every endpoint uses.

use crate::{Backend, ClientError, Frames, Result};
use bytes::Bytes;
use cairn_chunk::FsChunkReader;
use cairn_core::codec::{decode, encode};
use cairn_core::wire::{ApplyResult, ClientCommand, Query, QueryReply, Reply};
use cairn_core::{ApiError, ChunkId, ErrorCode, Policy};
use serde::Deserialize;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// A connection to one cairn node.
#[derive(Clone)]
pub struct HttpBackend {
    /// The node requests go to; moves to another node of the cluster when it cannot be
    /// reached (see [`HttpBackend::fail_over`]).
    base: Arc<RwLock<String>>,
    http: reqwest::Client,
    /// Nodes chunk reads are spread over (the swarm); starts as just `base`.
    readers: Arc<RwLock<Vec<String>>>,
    /// Set once the cluster's nodes have been looked up for spreading reads.
    discovered: Arc<tokio::sync::OnceCell<()>>,
    /// Read chunks straight from the node's files when it runs on this machine.
    short_circuit: bool,
    /// The node's chunk files, once looked up (`None`: not on this machine, or not allowed).
    local: Arc<tokio::sync::OnceCell<Option<FsChunkReader>>>,
    /// Where metadata writes go.
    leader: Arc<RwLock<LeaderHint>>,
    /// The access key every request presents (HTTP Basic), if any.
    key: Option<Arc<Credentials>>,
    /// Chunks fetched from the cluster (from the node's files or over HTTP).
    fetched: Arc<std::sync::atomic::AtomicU64>,
}

/// An access key: its id and secret (`cairn key create` makes them).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The key's public id.
    pub id: String,
    /// Its secret.
    pub secret: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, <secret>)", self.id)
    }
}

impl std::str::FromStr for Credentials {
    type Err = ClientError;
    /// Parses `ID:SECRET`.
    fn from_str(s: &str) -> Result<Self> {
        match s.split_once(':') {
            Some((id, secret)) if !id.is_empty() && !secret.is_empty() => {
                Ok(Credentials { id: id.to_string(), secret: secret.to_string() })
            }
            _ => Err(ClientError::api(ErrorCode::InvalidArgument, "an access key is ID:SECRET")),
        }
    }
}

/// Header of a node's `/v1/meta/write` answer that names the metadata leader.
const LEADER_HEADER: &str = "x-cairn-leader";

/// The metadata leader as the last write's answer named it: writes go there, where they are
/// proposed at once instead of being forwarded by another node. A leader this client could
/// not connect to is not used again for [`SHUN`] (the node it talks to forwards meanwhile).
#[derive(Default)]
struct LeaderHint {
    url: Option<String>,
    shunned: Option<(String, std::time::Instant)>,
}

/// How long a leader URL this client could not connect to stays unused.
const SHUN: Duration = Duration::from_secs(60);

impl LeaderHint {
    fn adopt(&mut self, url: &str) {
        let url = url.trim_end_matches('/');
        if self.shunned.as_ref().is_some_and(|(u, at)| u == url && at.elapsed() < SHUN) {
            return;
        }
        if self.url.as_deref() != Some(url) {
            self.url = Some(url.to_string());
        }
    }

    fn shun(&mut self, url: &str) {
        self.url = None;
        self.shunned = Some((url.to_string(), std::time::Instant::now()));
    }
}

/// The JSON error body: `{"error":{"code":..., "message":...}}`.
#[derive(Deserialize)]
struct ErrorBody {
    error: ApiError,
}

/// Deadline of a metadata request (a write waits for a Raft commit; a read for a read index).
const META_DEADLINE: Duration = Duration::from_secs(60);
/// Deadline of one chunk transfer (up to 64 MiB, replicated before the answer).
const CHUNK_DEADLINE: Duration = Duration::from_secs(300);

impl HttpBackend {
    /// A backend for the node at `url` (e.g. `http://127.0.0.1:7070`). If that node runs on
    /// this machine, chunk reads go straight to its chunk files (short-circuit reads, still
    /// verified against their hashes), falling back to HTTP for anything not there.
    pub fn new(url: &str) -> Result<Self> {
        Self::with_ca(url, None)
    }

    /// Like [`HttpBackend::new`], trusting only the CA certificates in `ca_pem` (PEM; the
    /// cluster CA, `<data>/ca.crt`) for `https://` URLs instead of the system's roots.
    pub fn with_ca(url: &str, ca_pem: Option<&[u8]>) -> Result<Self> {
        crate::tls::install_provider();
        let mut builder = reqwest::Client::builder().connect_timeout(Duration::from_secs(5)).pool_max_idle_per_host(64);
        if let Some(pem) = ca_pem {
            let cas = crate::tls::certs_from_pem(pem)?;
            builder = builder.use_preconfigured_tls(crate::tls::client_config(&cas, None, false)?);
        }
        let http = builder.build().map_err(|e| ClientError::Protocol(e.to_string()))?;
        Ok(HttpBackend { short_circuit: true, ..Self::with_client(url, http)? })
    }

    /// The same backend with every chunk read going over HTTP.
    pub fn without_short_circuit(self) -> Self {
        HttpBackend { short_circuit: false, local: Arc::default(), ..self }
    }

    /// A backend for the node at `url` sharing an existing HTTP client (and its connection
    /// pool), as nodes do when talking to each other.
    /// Credentials written into the URL (`http://ID:SECRET@host:port`) are taken out of it
    /// and presented with every request, to whichever node it goes.
    pub fn with_client(url: &str, http: reqwest::Client) -> Result<Self> {
        let mut base = url.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            let msg = format!("node URL {url:?} must start with http://");
            return Err(ClientError::api(ErrorCode::InvalidArgument, msg));
        }
        let mut key = None;
        if let Ok(mut parsed) = reqwest::Url::parse(&base) {
            if !parsed.username().is_empty() {
                let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
                let id = decode(parsed.username());
                let secret = decode(parsed.password().unwrap_or(""));
                key = Some(Arc::new(Credentials { id, secret }));
                let _ = parsed.set_username("");
                let _ = parsed.set_password(None);
                base = parsed.as_str().trim_end_matches('/').to_string();
            }
        }
        let readers = Arc::new(RwLock::new(vec![base.clone()]));
        Ok(HttpBackend {
            base: Arc::new(RwLock::new(base)),
            http,
            readers,
            discovered: Arc::default(),
            short_circuit: false,
            local: Arc::default(),
            leader: Arc::default(),
            key,
            fetched: Arc::default(),
        })
    }

    /// How many chunks this backend (and its clones) fetched from the cluster so far.
    pub fn chunk_fetches(&self) -> u64 {
        self.fetched.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The same backend presenting `key` with every request.
    pub fn with_credentials(self, key: Credentials) -> Self {
        HttpBackend { key: Some(Arc::new(key)), ..self }
    }

    /// Adds this backend's credentials to a request.
    fn authorize(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.key {
            Some(k) => req.basic_auth(&k.id, Some(&k.secret)),
            None => req,
        }
    }

    /// The base URL of the node requests go to now.
    pub fn url(&self) -> String {
        self.base.read().expect("base lock").clone()
    }

    /// After `dead` could not be reached: moves to the next node of the cluster this
    /// backend knows (from [`HttpBackend::spread_reads`]); false if there is none.
    fn fail_over(&self, dead: &str) -> bool {
        let readers = self.readers.read().expect("readers lock").clone();
        let start = readers.iter().position(|r| r == dead).map_or(0, |p| p + 1);
        let next = (0..readers.len()).map(|i| &readers[(start + i) % readers.len()]).find(|r| *r != dead);
        let Some(next) = next else { return false };
        let mut base = self.base.write().expect("base lock");
        if *base == dead {
            tracing::warn!("{dead} cannot be reached; carrying on through {next}");
            *base = next.clone();
        }
        true
    }

    /// Runs a request against the current node, and against the others in turn while the
    /// ones tried cannot be reached (a request cut off in flight is sent again: every
    /// request the data path makes is safe to repeat).
    async fn on_any<T, F, Fut>(&self, f: F) -> Result<T>
    where
        F: Fn(String) -> Fut,
        Fut: std::future::Future<Output = reqwest::Result<T>>,
    {
        let tries = self.readers.read().expect("readers lock").len().max(1);
        let mut last = None;
        for _ in 0..tries {
            let base = self.url();
            match f(base.clone()).await {
                Ok(v) => return Ok(v),
                Err(e) => {
                    let err = transport(&base, e);
                    if !self.fail_over(&base) {
                        return Err(err);
                    }
                    last = Some(err);
                }
            }
        }
        Err(last.unwrap_or_else(|| ClientError::Unavailable("no node reachable".into())))
    }

    /// The shared HTTP client.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Sends a request and turns transport failures and error statuses into [`ClientError`]s.
    pub async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        let resp = self.authorize(req).send().await.map_err(|e| transport(&self.url(), e))?;
        self.check(resp).await
    }

    /// The metadata changes after log index `after` (`GET /v1/changes`), waiting up to `wait`
    /// for one: the change feed that tells caches what to drop.
    pub async fn changes(&self, after: u64, wait: Duration) -> Result<cairn_core::wire::ChangeBatch> {
        let ms = wait.as_millis() as u64;
        let resp = self
            .on_any(|base| {
                let url = format!("{base}/v1/changes?after={after}&wait_ms={ms}");
                self.authorize(self.http.get(url).timeout(wait + META_DEADLINE)).send()
            })
            .await?;
        let bytes = self.check(resp).await?.bytes().await.map_err(|e| transport(&self.url(), e))?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Protocol(format!("change feed answer: {e}")))
    }

    async fn post_meta(&self, base: &str, path: &str, body: Vec<u8>) -> reqwest::Result<reqwest::Response> {
        self.authorize(self.http.post(format!("{base}{path}")).timeout(META_DEADLINE).body(body)).send().await
    }

    async fn post_meta_owned(&self, base: String, path: &str, body: Vec<u8>) -> reqwest::Result<reqwest::Response> {
        self.post_meta(&base, path, body).await
    }

    /// Posts a metadata command or query to the leader when known (a write is proposed there
    /// at once, a read answered under its read lease, with no hop through another node),
    /// else to any node.
    async fn to_leader(&self, path: &str, body: Vec<u8>) -> Result<reqwest::Response> {
        let leader = self.leader.read().expect("leader lock").url.clone();
        match leader {
            Some(url) => match self.post_meta(&url, path, body.clone()).await {
                // Never sent: the node this client talks to forwards it instead.
                Err(e) if e.is_connect() => {
                    self.leader.write().expect("leader lock").shun(&url);
                    self.on_any(|base| self.post_meta_owned(base, path, body.clone())).await
                }
                Err(e) => Err(transport(&url, e)),
                Ok(r) => Ok(r),
            },
            None => self.on_any(|base| self.post_meta_owned(base, path, body.clone())).await,
        }
    }

    /// Turns an error status into a [`ClientError`].
    async fn check(&self, resp: reqwest::Response) -> Result<reqwest::Response> {
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| transport(&self.url(), e))?;
        match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(b) => Err(ClientError::Api(b.error)),
            Err(_) => Err(ClientError::Protocol(format!("HTTP {status}: {}", String::from_utf8_lossy(&body)))),
        }
    }
}

/// Maps a reqwest failure: anything that never reached a node is "unavailable".
fn transport(base: &str, e: reqwest::Error) -> ClientError {
    if e.is_connect() || e.is_timeout() || e.is_request() {
        ClientError::Unavailable(format!("cannot reach {base}: {e}"))
    } else {
        ClientError::Protocol(e.to_string())
    }
}

impl Backend for HttpBackend {
    async fn put_chunk(&self, id: ChunkId, data: Bytes, policy: Policy) -> Result<()> {
        let resp = self
            .on_any(|base| {
                let url = format!("{base}/v1/chunks/{}?policy={policy}", id.to_hex());
                self.authorize(self.http.put(url).timeout(CHUNK_DEADLINE).body(data.clone())).send()
            })
            .await?;
        self.check(resp).await.map(drop)
    }

    async fn get_chunk(&self, id: ChunkId) -> Result<Frames> {
        self.fetched.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Some(reader) = self.local_reader().await {
            // Any failure here (not on this node, corrupt, unreadable) goes over HTTP, where
            // the node falls over to other copies and quarantines a bad one.
            if let Ok(Ok(data)) = tokio::task::spawn_blocking(move || reader.get(&id)).await {
                return Ok(Frames(vec![Bytes::from(data)]));
            }
        }
        // Spread chunk reads over the cluster's nodes (each serves its copy or fetches one);
        // any failure falls back to the node this client talks to.
        let reader = {
            let readers = self.readers.read().expect("readers lock");
            readers[usize::from(id.0[0]) % readers.len()].clone()
        };
        if reader != self.url() {
            if let Ok(frames) = self.with_base(&reader).fetch_chunk(id).await {
                return Ok(frames);
            }
        }
        self.fetch_chunk(id).await
    }

    async fn get_chunk_range(&self, id: ChunkId, from: usize, to: usize) -> Result<Vec<Bytes>> {
        if let Some(reader) = self.local_reader().await {
            if let Ok(Ok(data)) = tokio::task::spawn_blocking(move || reader.get(&id)).await {
                return Frames::from(Bytes::from(data)).checked_slice(id, from, to);
            }
        }
        if from == to {
            return Ok(Vec::new());
        }
        let range = format!("bytes={from}-{}", to - 1);
        let resp = self
            .on_any(|base| {
                let req = self.http.get(format!("{base}/v1/chunks/{}", id.to_hex())).timeout(CHUNK_DEADLINE);
                self.authorize(req.header(reqwest::header::RANGE, range.as_str())).send()
            })
            .await?;
        let resp = self.check(resp).await?;
        let partial = resp.status() == reqwest::StatusCode::PARTIAL_CONTENT;
        let body = resp.bytes().await.map_err(|e| transport(&self.url(), e))?;
        match (partial, body.len()) {
            (true, n) if n == to - from => Ok(vec![body]),
            // A node that sent the whole chunk: check it as one.
            (false, _) if ChunkId::of(&body) == id => Frames::from(body).checked_slice(id, from, to),
            _ => Err(ClientError::api(ErrorCode::Corrupt, format!("chunk {id}: bytes {from}..{to} arrived wrong"))),
        }
    }

    async fn write(&self, cmd: ClientCommand) -> Result<Reply> {
        let resp = self.to_leader("/v1/meta/write", encode(&cmd)).await;
        let resp = self.check(resp?).await?;
        let named = resp.headers().get(LEADER_HEADER).and_then(|v| v.to_str().ok()).filter(|u| u.starts_with("http"));
        if let Some(url) = named {
            if self.leader.read().expect("leader lock").url.as_deref() != Some(url) {
                self.leader.write().expect("leader lock").adopt(url);
            }
        }
        let bytes = resp.bytes().await.map_err(|e| transport(&self.url(), e))?;
        let r: ApplyResult = decode(&bytes, "write reply").map_err(|e| ClientError::Protocol(e.to_string()))?;
        Ok(r?)
    }

    async fn query(&self, q: Query) -> Result<QueryReply> {
        let resp = self.check(self.to_leader("/v1/meta/query", encode(&q)).await?).await?;
        let bytes = resp.bytes().await.map_err(|e| transport(&self.url(), e))?;
        let r: std::result::Result<QueryReply, ApiError> =
            decode(&bytes, "query reply").map_err(|e| ClientError::Protocol(e.to_string()))?;
        Ok(r?)
    }
}

impl HttpBackend {
    /// The same connection pool aimed at another node.
    fn with_base(&self, url: &str) -> HttpBackend {
        HttpBackend { base: Arc::new(RwLock::new(url.to_string())), ..self.clone() }
    }

    /// The node's chunk files if it runs on this machine and short-circuit reads are on
    /// (looked up once per client).
    async fn local_reader(&self) -> Option<FsChunkReader> {
        if !self.short_circuit {
            return None;
        }
        self.local
            .get_or_init(|| async {
                let url = reqwest::Url::parse(&self.url()).ok()?;
                let host = url.host_str()?;
                let ip = host.trim_matches(['[', ']']).parse::<std::net::IpAddr>();
                if !(host == "localhost" || ip.is_ok_and(|ip| ip.is_loopback())) {
                    return None;
                }
                let req = self.http.get(format!("{}/v1/node/chunk-dir", self.url())).timeout(META_DEADLINE);
                let resp = self.send(req).await.ok()?;
                let v: serde_json::Value = resp.json().await.ok()?;
                let dir = std::path::PathBuf::from(v["dir"].as_str()?);
                dir.is_dir().then(|| FsChunkReader::new(&dir))
            })
            .await
            .clone()
    }

    /// Looks up the cluster's nodes (once per client) so that chunk reads of large files are
    /// spread over every node that is up. Failing to look them up is not an error: reads
    /// then all go to this client's node.
    pub async fn spread_reads(&self) {
        self.discovered
            .get_or_init(|| async {
                let req = self.http.get(format!("{}/v1/cluster", self.url())).timeout(META_DEADLINE);
                let Ok(resp) = self.send(req).await else { return };
                let Ok(v) = resp.json::<serde_json::Value>().await else { return };
                let up: Vec<String> = v["nodes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|n| n["state"] == "up")
                    .filter_map(|n| n["url"].as_str().map(str::to_string))
                    .collect();
                if !up.is_empty() {
                    *self.readers.write().expect("readers lock") = up;
                }
            })
            .await;
    }

    async fn fetch_chunk(&self, id: ChunkId) -> Result<Frames> {
        let resp = self
            .on_any(|base| {
                let req = self.http.get(format!("{base}/v1/chunks/{}", id.to_hex())).timeout(CHUNK_DEADLINE);
                self.authorize(req).send()
            })
            .await?;
        let mut resp = self.check(resp).await?;
        // Hash each frame as it arrives, while it is still in cache (no second pass), and keep
        // the frames as they are (no reassembly copy).
        let mut hasher = blake3::Hasher::new();
        let (mut frames, mut len) = (Vec::new(), 0usize);
        while let Some(frame) = resp.chunk().await.map_err(|e| transport(&self.url(), e))? {
            len += frame.len();
            if len > cairn_core::MAX_CHUNK_SIZE as usize {
                return Err(ClientError::Protocol(format!("chunk {id} is larger than any chunk may be")));
            }
            hasher.update(&frame);
            frames.push(frame);
        }
        if ChunkId(*hasher.finalize().as_bytes()) != id {
            return Err(ClientError::api(ErrorCode::Corrupt, format!("chunk {id} arrived corrupt")));
        }
        Ok(Frames(frames))
    }
}
