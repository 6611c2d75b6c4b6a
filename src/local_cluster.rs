//! `cairn up --nodes N`: a whole local cluster in one command, for trying redundancy.
//!
//! Node K keeps its data in `<data>/node-K` and listens on the base port + K (its peers reach
//! it on that port + 100, S3 clients on the S3 base port, 9000 by default, + K). Node 0 starts
//! (or resumes) the cluster; the others join it with its secret at their first start, and
//! find it by themselves afterwards. Ctrl-C (or SIGTERM) stops them all.

use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Environment variables of the parent that must not reach the children (flags decide).
const PRIVATE_ENV: [&str; 9] = [
    "CAIRN_DATA",
    "CAIRN_LISTEN",
    "CAIRN_PEER_LISTEN",
    "CAIRN_S3_LISTEN",
    "CAIRN_ADVERTISE",
    "CAIRN_JOIN",
    "CAIRN_SECRET",
    "CAIRN_CONFIG",
    "CAIRN_NODES",
];

/// Starts one child node and waits for the URL it listens on. A `--secret S` among `extra`
/// reaches the child as `CAIRN_SECRET`, not on its command line (where `ps` shows it).
pub(crate) fn start_child(data: &Path, listen: &SocketAddr, extra: &[String]) -> Result<(Child, String)> {
    let mut cmd = Command::new(std::env::current_exe().context("locating the cairn binary")?);
    cmd.arg("up").arg("--data").arg(data).arg("--listen").arg(listen.to_string());
    for var in PRIVATE_ENV {
        cmd.env_remove(var);
    }
    let mut args = extra.iter();
    while let Some(a) = args.next() {
        match (a.as_str(), args.clone().next()) {
            ("--secret", Some(secret)) => {
                cmd.env("CAIRN_SECRET", secret);
                args.next();
            }
            _ => {
                cmd.arg(a);
            }
        }
    }
    if std::env::var_os("CAIRN_LOG").is_none() {
        cmd.env("CAIRN_LOG", "warn");
    }
    let mut child = cmd.stdout(Stdio::piped()).spawn().context("starting a node")?;
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("cairn: listening on ") {
                let _ = tx.send(url.to_string());
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(url) => Ok((child, url)),
        Err(_) => {
            let _ = child.kill();
            let status = child.wait().ok();
            bail!("node in {} did not start ({status:?}); see the messages above", data.display())
        }
    }
}

/// The cluster's join token (its secret and CA fingerprint), as node `url` shows it on its
/// own machine.
pub(crate) async fn secret(url: &str) -> Result<String> {
    let ask = async { reqwest::get(format!("{url}/v1/cluster/secret")).await?.error_for_status()?.json().await };
    let v: serde_json::Value = ask.await.with_context(|| format!("asking {url} for the cluster secret"))?;
    Ok(v["token"].as_str().context("the node shows no join token")?.to_string())
}

/// `url` with the admin key of the node whose data dir is `dir` written into it
/// (`http://ID:SECRET@host:port`), for this process's own requests; never handed to a child.
pub(crate) fn keyed(url: &str, dir: &Path) -> Result<String> {
    let key = crate::commands::admin_key_in(dir).with_context(|| format!("no admin key in {}", dir.display()))?;
    let mut u = reqwest::Url::parse(url).with_context(|| format!("node URL {url:?}"))?;
    let ok = u.set_username(&key.id).is_ok() && u.set_password(Some(&key.secret)).is_ok();
    anyhow::ensure!(ok, "node URL {url:?} cannot carry credentials");
    Ok(u.as_str().trim_end_matches('/').to_string())
}

/// Sends SIGTERM to a child and waits for it.
pub(crate) fn stop_child(child: &mut Child) {
    // SAFETY: kill(2) on our own child's pid; no memory is touched.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let _ = child.wait();
}

/// Stops every child on drop (SIGTERM), so an error leaves no node behind.
pub(crate) struct Children(pub Vec<Option<Child>>);

impl Drop for Children {
    fn drop(&mut self) {
        self.0.iter_mut().flatten().for_each(stop_child);
    }
}

/// A cluster of node processes in a temporary directory, for benchmarks: stopped and removed
/// when dropped.
pub(crate) struct Throwaway {
    /// The node processes (stopped first on drop).
    pub children: Children,
    /// One client per node, presenting the admin key.
    pub clients: Vec<cairn_client::AsyncClient>,
    /// Node K's data is in `node-K` here.
    pub dir: tempfile::TempDir,
}

/// Starts `n` nodes on free ports in a new directory under `scratch` (named `prefix...`),
/// the others joining the first, and waits until every node answers metadata queries.
pub(crate) async fn throwaway(scratch: &Path, prefix: &str, n: usize) -> Result<Throwaway> {
    let dir = tempfile::Builder::new().prefix(prefix).tempdir_in(scratch)?;
    let any_port: SocketAddr = "127.0.0.1:0".parse().expect("literal address");
    let mut children = Children(Vec::new());
    let mut urls: Vec<String> = Vec::new();
    for k in 0..n {
        let extra = match k {
            0 => Vec::new(),
            _ => {
                let keyed = keyed(&urls[0], &dir.path().join("node-0"))?;
                let secret = secret(&keyed).await?;
                vec!["--join".to_string(), urls[0].clone(), "--secret".into(), secret]
            }
        };
        let (child, url) = start_child(&dir.path().join(format!("node-{k}")), &any_port, &extra)?;
        children.0.push(Some(child));
        urls.push(url);
    }
    let key = crate::commands::admin_key_in(&dir.path().join("node-0")).context("node 0 wrote no admin key")?;
    let clients: Vec<cairn_client::AsyncClient> =
        urls.iter().map(|u| cairn_client::AsyncClient::connect_with(u, key.clone())).collect::<Result<_, _>>()?;
    for c in &clients {
        let t = std::time::Instant::now();
        while c.stat("/").await.is_err() {
            anyhow::ensure!(t.elapsed() < Duration::from_secs(60), "a node did not come up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(Throwaway { children, clients, dir })
}

/// Runs `n` nodes under `data` from port `listen.port()` up (S3 from `s3.port()` up; none
/// when `None`), until a signal.
pub async fn run(data: &Path, listen: &str, zone: &str, n: usize, s3: Option<SocketAddr>) -> Result<()> {
    let base: SocketAddr = listen.parse().with_context(|| format!("--listen {listen:?} is not IP:PORT"))?;
    let s3_fits = s3.is_none_or(|a| a.port() as usize + n <= 65536);
    if n == 0 || n > 64 || base.port() as usize + n > 65536 || !s3_fits {
        bail!(crate::commands::UsageError(format!("--nodes {n} does not fit above port {}", base.port())));
    }
    let mut children: Vec<Child> = Vec::new();
    let mut urls: Vec<String> = Vec::new();
    let started = async {
        for k in 0..n {
            let dir = data.join(format!("node-{k}"));
            let addr = SocketAddr::new(base.ip(), base.port() + k as u16);
            let mut extra = vec!["--zone".to_string(), zone.to_string(), "--s3-listen".into()];
            extra.push(match s3 {
                Some(a) if a.port() == 0 => a.to_string(),
                Some(a) => SocketAddr::new(a.ip(), a.port().saturating_add(k as u16)).to_string(),
                None => "off".into(),
            });
            if k > 0 && !dir.join("node.json").exists() {
                let token = secret(&keyed(&urls[0], &data.join("node-0"))?).await?;
                extra.extend(["--join".into(), urls[0].clone(), "--secret".into(), token]);
            }
            let (child, url) = start_child(&dir, &addr, &extra)?;
            children.push(child);
            urls.push(url);
        }
        Ok::<(), anyhow::Error>(())
    }
    .await;
    if let Err(e) = started {
        children.iter_mut().for_each(stop_child);
        return Err(e);
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "cairn: cluster of {n} nodes ready")?;
    for (k, url) in urls.iter().enumerate() {
        let s3 = match s3 {
            Some(a) if a.port() != 0 => format!("   S3 on http://{}:{}", a.ip(), a.port() + k as u16),
            _ => String::new(),
        };
        writeln!(out, "  node {k}: {url}{s3}   data in {}", data.join(format!("node-{k}")).display())?;
    }
    writeln!(out, "try:   cairn --node {} status     (Ctrl-C stops every node)", urls[0])?;
    out.flush()?;
    drop(out);
    crate::up::shutdown_signal().await;
    eprintln!("cairn: stopping {n} nodes");
    children.iter_mut().for_each(stop_child);
    Ok(())
}
