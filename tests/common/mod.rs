//! Shared harness of the black-box tests: real `cairn` processes on free ports in temp dirs.
#![allow(dead_code)]

pub mod mount;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_cairn")
}

/// A running `cairn up` process.
pub struct TestNode {
    child: Option<Child>,
    /// The node's URL (its client door), with the cluster's admin key written into it
    /// (`http://ID:SECRET@127.0.0.1:PORT`), so that every request made with it presents the
    /// key. `plain_url` has none.
    pub url: String,
    /// The client door's URL without credentials.
    pub plain_url: String,
    /// The admin key `ID:SECRET` (from the node's admin.json, or the URL it joined through).
    pub key: Option<String>,
    /// Its peer door's URL.
    pub peer_url: String,
    /// Its S3 door's URL (a free port; empty with `--s3-listen off`).
    pub s3_url: String,
    /// Its data directory.
    pub data: PathBuf,
    /// Extra flags it was started with (kept for restarts).
    args: Vec<String>,
    _dir: Option<tempfile::TempDir>,
}

impl TestNode {
    /// Starts a node in a fresh temp dir.
    pub fn start(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut n = Self::start_in(&dir.path().join("data"), extra);
        n._dir = Some(dir);
        n
    }

    /// Starts a node on `data` (created if needed), on a free port.
    pub fn start_in(data: &Path, extra: &[&str]) -> Self {
        let args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let (child, plain_url, peer_url, s3_url) = spawn(data, &args, "127.0.0.1:0");
        let joined_with = args.iter().position(|a| a == "--join").and_then(|i| args.get(i + 1));
        let key = admin_key(data).or_else(|| joined_with.and_then(|u| key_of(u)));
        let url = with_key(&plain_url, key.as_deref());
        let data = data.to_path_buf();
        TestNode { child: Some(child), url, plain_url, key, peer_url, s3_url, data, args, _dir: None }
    }

    /// SIGKILLs the node.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// SIGTERMs the node and waits for a clean exit; returns its exit status success.
    pub fn stop(&mut self) -> bool {
        let Some(mut c) = self.child.take() else { return true };
        Command::new("kill").args(["-TERM", &c.id().to_string()]).status().unwrap();
        c.wait().unwrap().success()
    }

    /// Starts the node again on the same data dir (new port).
    pub fn restart(&mut self) {
        self.kill();
        let (child, url, peer_url, s3_url) = spawn(&self.data, &self.args, "127.0.0.1:0");
        self.child = Some(child);
        self.key = admin_key(&self.data).or(self.key.take());
        self.url = with_key(&url, self.key.as_deref());
        (self.plain_url, self.peer_url, self.s3_url) = (url, peer_url, s3_url);
    }

    /// Starts the node again on the same data dir and the same port, without its first-start
    /// flags (it must find its cluster by itself).
    pub fn restart_same_port(&mut self) {
        self.kill();
        let mut kept = Vec::new();
        let mut args = self.args.iter();
        while let Some(a) = args.next() {
            if a == "--join" || a == "--secret" {
                args.next();
            } else {
                kept.push(a.clone());
            }
        }
        self.args = kept;
        let mut args = self.args.clone();
        args.extend(["--peer-listen".to_string(), self.peer_url.trim_start_matches("https://").to_string()]);
        let (child, url, peer_url, s3_url) = spawn(&self.data, &args, &self.addr());
        self.child = Some(child);
        self.url = with_key(&url, self.key.as_deref());
        (self.plain_url, self.peer_url, self.s3_url) = (url, peer_url, s3_url);
    }

    /// Process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Runs the CLI against this node.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(bin()).arg("--node").arg(&self.url).arg("--data").arg(&self.data).args(args).output().unwrap()
    }

    /// Runs the CLI and asserts success, returning stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(out.status.success(), "cairn {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    /// `host:port` of the node.
    pub fn addr(&self) -> String {
        self.plain_url.trim_start_matches("http://").to_string()
    }

    /// Sends raw bytes on a fresh connection and returns the status code of the answer
    /// (0 if none came).
    pub fn raw(&self, request: &[u8]) -> u16 {
        let mut s = TcpStream::connect(self.addr()).unwrap();
        // No half-close: hyper may drop a half-closed connection before answering. Requests
        // that never complete (junk, short bodies) end with the read timeout instead.
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        // The node's key goes in right after the request line (junk without one goes as is).
        let request = match (&self.key, request.windows(2).position(|w| w == b"\r\n")) {
            (Some(key), Some(end)) if request.starts_with(b"GET ") || request.starts_with(b"PUT ") => {
                use base64::Engine;
                let auth =
                    format!("\r\nAuthorization: Basic {}", base64::engine::general_purpose::STANDARD.encode(key));
                [&request[..end], auth.as_bytes(), &request[end..]].concat()
            }
            _ => request.to_vec(),
        };
        s.write_all(&request).unwrap();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        let text = String::from_utf8_lossy(&buf);
        text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
    }

    /// The number of chunk files in the node's store (not counting temp or quarantined files).
    /// Bytes of chunk data in this node's chunk files (each file less its 64-byte header).
    pub fn chunk_bytes_on_disk(&self) -> u64 {
        let mut n = 0;
        for d in std::fs::read_dir(self.data.join("chunks")).unwrap() {
            let d = d.unwrap();
            if d.file_name().len() == 2 {
                for f in std::fs::read_dir(d.path()).unwrap() {
                    n += f.unwrap().metadata().unwrap().len().saturating_sub(64);
                }
            }
        }
        n
    }

    /// Waits until the space the node reports (`stored` in `/v1/node`) equals its chunk
    /// files, and fails if it never does.
    pub fn assert_space_matches_disk(&self) {
        let reported = || -> u64 {
            let v: serde_json::Value = http().get(format!("{}/v1/node", self.url)).send().unwrap().json().unwrap();
            v["stored"].as_u64().unwrap()
        };
        let mut last = (0, 0);
        let settled = (0..100).any(|_| {
            last = (reported(), self.chunk_bytes_on_disk());
            let same = last.0 == last.1;
            if !same {
                std::thread::sleep(Duration::from_millis(100));
            }
            same
        });
        assert!(settled, "node reports {} bytes stored, its chunk files hold {}", last.0, last.1);
    }

    pub fn chunk_files(&self) -> usize {
        let mut n = 0;
        for d in std::fs::read_dir(self.data.join("chunks")).unwrap() {
            let d = d.unwrap();
            if d.file_name().len() == 2 {
                n += std::fs::read_dir(d.path()).unwrap().count();
            }
        }
        n
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts `cairn up` (S3 on a free port unless `extra` says otherwise): the child, and the
/// URLs of its client, peer and S3 doors.
fn spawn(data: &Path, extra: &[String], listen: &str) -> (Child, String, String, String) {
    std::fs::create_dir_all(data).unwrap();
    let s3 = if extra.iter().any(|a| a == "--s3-listen") { &[][..] } else { &["--s3-listen", "127.0.0.1:0"][..] };
    let log = std::fs::OpenOptions::new().create(true).append(true).open(data.with_extension("log")).unwrap();
    let mut child = Command::new(bin())
        .args(["up", "--listen", listen, "--data"])
        .arg(data)
        .args(s3)
        .args(extra)
        .env("CAIRN_LOG", "info,openraft=warn")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut url, mut peer, mut s3) = (String::new(), String::new(), String::new());
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if let Some(u) = line.strip_prefix("cairn: listening on ") {
                url = u.to_string();
            }
            if let Some(p) = line.strip_prefix("cairn: peers reach it on ") {
                peer = p.to_string();
            }
            if let Some(u) = line.strip_prefix("cairn: S3 on ") {
                s3 = u.to_string();
            }
            if line.starts_with("cairn: node ") {
                let _ = tx.send((std::mem::take(&mut url), std::mem::take(&mut peer), std::mem::take(&mut s3)));
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(180)) {
        Ok((url, peer_url, s3_url)) => (child, url, peer_url, s3_url),
        Err(_) => {
            let _ = child.kill();
            let log = std::fs::read_to_string(data.with_extension("log")).unwrap_or_default();
            panic!("node did not start; log:\n{log}");
        }
    }
}

/// The admin key `ID:SECRET` a founding node wrote to `<data>/admin.json`.
pub fn admin_key(data: &Path) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(data.join("admin.json")).ok()?).ok()?;
    Some(format!("{}:{}", v["access_key_id"].as_str()?, v["secret_access_key"].as_str()?))
}

/// The `ID:SECRET` written into a URL, if any.
pub fn key_of(url: &str) -> Option<String> {
    let u = reqwest::Url::parse(url).ok()?;
    (!u.username().is_empty()).then(|| format!("{}:{}", u.username(), u.password().unwrap_or("")))
}

/// `url` with `key` (`ID:SECRET`) written into it.
pub fn with_key(url: &str, key: Option<&str>) -> String {
    match key.and_then(|k| k.split_once(':')) {
        Some((id, secret)) => url.replacen("://", &format!("://{id}:{secret}@"), 1),
        None => url.to_string(),
    }
}

/// A client for a node's peer door that presents the certificate of the node whose data dir
/// is `data` (an insider: a member of the cluster, or a node that was one).
pub fn peer_http_as(data: &Path) -> reqwest::blocking::Client {
    use cairn_client::tls;
    tls::install_provider();
    let read = |name: &str| std::fs::read(data.join(name)).unwrap();
    let cas = tls::certs_from_pem(&read("ca.crt")).unwrap();
    let identity = (tls::certs_from_pem(&read("node.crt")).unwrap(), tls::key_from_pem(&read("node.key")).unwrap());
    let config = tls::client_config(&cas, Some(identity), true).unwrap();
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).use_preconfigured_tls(config).build().unwrap()
}

/// A client for a node's peer door, as another member of its cluster would call it.
pub fn peer_http(node: &TestNode) -> reqwest::blocking::Client {
    peer_http_as(&node.data)
}

/// Sends one framed peer message (with `payload` beside it) to `node`'s peer door.
pub fn peer_send(
    c: &reqwest::blocking::Client,
    node: &TestNode,
    req: &cairn_node::transport::PeerRequest,
    payload: &[u8],
) -> reqwest::blocking::Response {
    let body = cairn_node::transport::http::frame(req, payload);
    c.post(format!("{}{}", node.peer_url, cairn_node::transport::http::PEER_ROUTE)).body(body).send().unwrap()
}

/// The code of a peer message's answer: "ok", or the error's code (HTTP 200 either way).
pub fn peer_code(r: reqwest::blocking::Response) -> String {
    use cairn_node::transport::PeerReply;
    assert_eq!(r.status(), reqwest::StatusCode::OK, "the door itself refused the message");
    let body = r.bytes().unwrap();
    let (answer, _): (Result<PeerReply, cairn_core::ApiError>, _) =
        cairn_node::transport::http::unframe(body, "reply").unwrap();
    match answer {
        Ok(_) => "ok".into(),
        Err(e) => e.code.as_str().into(),
    }
}

/// A base port with `n` consecutive ports free right now, and the `n` peer ports 100 above
/// them (for `cairn up --nodes`).
pub fn free_port_block(n: u16) -> u16 {
    for _ in 0..200 {
        let base = 20_000 + (rand_u16() % 40_000);
        let ports = (0..n).map(|k| base + k).chain((0..n).map(|k| base + 100 + k));
        let held: Vec<_> = ports.map_while(|p| std::net::TcpListener::bind(("127.0.0.1", p)).ok()).collect();
        if held.len() == 2 * n as usize {
            return base;
        }
    }
    panic!("no block of {n} free ports");
}

fn rand_u16() -> u16 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    (nanos ^ std::process::id().rotate_left(16)) as u16
}

/// Waits until `cond` holds, polling; panics with `what` after `timeout`.
pub fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Deterministic pseudo-random bytes for a seed.
pub fn data(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A blocking HTTP client for the REST API.
pub fn http() -> reqwest::blocking::Client {
    cairn_client::tls::install_provider();
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(120)).build().unwrap()
}

/// The status and error code (`""` if none) of a REST answer.
pub fn code_of(r: reqwest::blocking::Response) -> (reqwest::StatusCode, String) {
    let status = r.status();
    let v: serde_json::Value = r.json().unwrap_or(serde_json::Value::Null);
    (status, v["error"]["code"].as_str().unwrap_or("").to_string())
}

/// A node's view of the cluster (`GET /v1/cluster`).
pub fn cluster(node: &TestNode) -> serde_json::Value {
    http().get(format!("{}/v1/cluster", node.url)).send().unwrap().json().unwrap()
}

/// How many voters `node` sees.
pub fn voters(node: &TestNode) -> usize {
    cluster(node)["nodes"].as_array().unwrap().iter().filter(|n| n["voter"] == true).count()
}

/// Waits until `node` sees `n` members, every one up.
pub fn all_up(node: &TestNode, n: usize) {
    wait_for("every node to be seen up", Duration::from_secs(30), || {
        let v = cluster(node);
        let nodes = v["nodes"].as_array().unwrap();
        nodes.len() == n && nodes.iter().all(|x| x["state"] == "up")
    });
}

/// Starts a first node and `n - 1` nodes that join it, all with `extra` flags; returns once
/// the voters are in and every node sees every other up.
pub fn start_cluster_with(n: usize, extra: &[&str]) -> Vec<TestNode> {
    let first = TestNode::start(extra);
    let secret = first.ok(&["status", "--secret"]).trim().to_string();
    let mut nodes = vec![first];
    for _ in 1..n {
        let mut args = vec!["--join", nodes[0].url.as_str(), "--secret", secret.as_str()];
        args.extend_from_slice(extra);
        let node = TestNode::start(&args);
        nodes.push(node);
    }
    wait_for("all nodes to be voters", Duration::from_secs(30), || voters(&nodes[0]) == n.min(5));
    for node in &nodes {
        all_up(node, n);
    }
    nodes
}

/// The index of the node that is the metadata leader, as `nodes[0]` sees it.
pub fn leader_index(nodes: &[TestNode]) -> usize {
    let leader = cluster(&nodes[0])["raft"]["leader"].as_str().unwrap_or("").to_string();
    nodes.iter().position(|n| cluster(n)["node_id"] == leader.as_str()).unwrap_or(0)
}
