//! Cluster locks from the client: take them (all paths or none, optionally waiting), hold
//! them with a guard that renews them in the background, release them on drop.
//!
//! A [`LockGuard`]'s [`Guard`](cairn_core::lock::Guard) is what writes present to pass the
//! lock (its id) and to prove they are not stale (its fencing token).

use crate::{AsyncClient, ClientError, Result};
use cairn_core::lock::{parse_lock_id, ByteRange, Guard, LockMode};
use cairn_core::ErrorCode;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// How to take a lock.
#[derive(Debug, Clone, Copy)]
pub struct LockOptions {
    /// Shared or exclusive (the default).
    pub mode: LockMode,
    /// Lifetime without a renewal (whole seconds, 1 s to 1 day; default 30 s). The guard
    /// renews it every third of it.
    pub ttl: Duration,
    /// How long to wait for locks held by others (default: not at all).
    pub wait: Duration,
    /// Only these bytes of each path (as `fcntl`), instead of the whole.
    pub range: Option<ByteRange>,
}

impl Default for LockOptions {
    fn default() -> Self {
        LockOptions { mode: LockMode::Exclusive, ttl: Duration::from_secs(30), wait: Duration::ZERO, range: None }
    }
}

/// A held lock. It is renewed in the background while the guard lives and released when
/// the guard is dropped (or by [`LockGuard::release`], which reports errors). If renewing
/// fails for good (the lock expired meanwhile, say after a long network cut), the guard
/// says so ([`LockGuard::is_lost`]) and writes presenting it are refused.
pub struct LockGuard {
    client: AsyncClient,
    id: String,
    fence: u64,
    lost: Arc<AtomicBool>,
    stop: Option<oneshot::Sender<()>>,
    runtime: tokio::runtime::Handle,
    released: bool,
}

impl LockGuard {
    /// The lock's id (16 hex digits), as `X-Cairn-Lock` carries it.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The lock's fencing token: higher than every token granted before it.
    pub fn fencing_token(&self) -> u64 {
        self.fence
    }

    /// True once a renewal found the lock gone.
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
    }

    /// What a write presents to pass this lock.
    pub fn guard(&self) -> Guard {
        Guard { locks: parse_lock_id(&self.id).into_iter().collect(), fence: Some(self.fence), ..Guard::default() }
    }

    /// Releases the lock now.
    pub async fn release(mut self) -> Result<()> {
        self.released = true;
        self.stop.take();
        self.client.release_lock(&self.id).await
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        self.stop.take();
        if !self.released {
            let (client, id) = (self.client.clone(), self.id.clone());
            // Best effort: if the release cannot be sent, the lock expires after its ttl.
            self.runtime.spawn(async move {
                if let Err(e) = client.release_lock(&id).await {
                    tracing::warn!(lock = %id, "releasing a lock failed (it will expire): {e}");
                }
            });
        }
    }
}

/// Renews lock `id` every third of its ttl until told to stop or the lock is gone.
async fn keep(client: AsyncClient, id: String, ttl: Duration, lost: Arc<AtomicBool>, mut stop: oneshot::Receiver<()>) {
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(ttl / 3) => {}
        }
        match client.renew_lock(&id, ttl).await {
            Ok(()) => {}
            Err(e) if matches!(e.code(), ErrorCode::NotFound | ErrorCode::Conflict | ErrorCode::PermissionDenied) => {
                tracing::warn!(lock = %id, "lock lost: {e}");
                lost.store(true, Ordering::Relaxed);
                return;
            }
            // The node may be down or busy: try again at the next tick, while the lock lives.
            Err(e) => tracing::debug!(lock = %id, "renewing a lock failed, will retry: {e}"),
        }
    }
}

fn field<'v>(v: &'v Value, name: &str) -> Result<&'v Value> {
    v.get(name).ok_or_else(|| ClientError::Protocol(format!("no {name} in the lock answer")))
}

impl AsyncClient {
    /// Takes a lock on every path or on none (`POST /v1/locks`); fails with `locked` if
    /// others hold them beyond `opts.wait`. Must be called inside a Tokio runtime, where
    /// the guard renews the lock.
    pub async fn lock(&self, paths: &[&str], opts: &LockOptions) -> Result<LockGuard> {
        let ttl = opts.ttl.as_secs().max(1);
        let mut body = json!({ "paths": paths, "mode": opts.mode.as_str(), "ttl": ttl, "wait": opts.wait.as_secs() });
        if let Some(r) = opts.range {
            body["start"] = json!(r.start);
            body["length"] = json!(r.len);
        }
        let url = self.endpoint("/v1/locks", &[])?;
        let wait = opts.wait + Duration::from_secs(60);
        let v: Value = self.json_with(self.backend().http().post(url).json(&body), wait).await?;
        let id = field(&v, "lock_id")?.as_str().unwrap_or_default().to_string();
        parse_lock_id(&id).map_err(|e| ClientError::Protocol(e.message))?;
        let fence = field(&v, "fencing_token")?.as_u64().unwrap_or(0);
        let lost = Arc::new(AtomicBool::new(false));
        let (stop, stopped) = oneshot::channel();
        let ttl = Duration::from_secs(ttl);
        tokio::spawn(keep(self.clone(), id.clone(), ttl, lost.clone(), stopped));
        let runtime = tokio::runtime::Handle::current();
        Ok(LockGuard { client: self.clone(), id, fence, lost, stop: Some(stop), runtime, released: false })
    }

    /// Extends lock `id` by `ttl` from now (`POST /v1/locks/{id}?op=renew`).
    pub async fn renew_lock(&self, id: &str, ttl: Duration) -> Result<()> {
        let ttl = ttl.as_secs().max(1).to_string();
        let url = self.endpoint(&format!("/v1/locks/{}", lock_path(id)?), &[("op", "renew"), ("ttl", &ttl)])?;
        self.json_with(self.backend().http().post(url), Duration::from_secs(30)).await.map(drop)
    }

    /// Releases lock `id` (`DELETE /v1/locks/{id}`).
    pub async fn release_lock(&self, id: &str) -> Result<()> {
        let url = self.endpoint(&format!("/v1/locks/{}", lock_path(id)?), &[])?;
        let req = self.backend().http().delete(url).timeout(Duration::from_secs(30));
        self.backend().send(req).await.map(drop)
    }

    /// Every live lock (on `path` only, if given), as `GET /v1/locks` shows them.
    pub async fn locks(&self, path: Option<&str>) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut params = Vec::new();
            if let Some(p) = path {
                params.push(("path", p.to_string()));
            }
            if let Some(a) = &after {
                params.push(("after", a.clone()));
            }
            let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let url = self.endpoint("/v1/locks", &params)?;
            let page: Value = self.json_with(self.backend().http().get(url), Duration::from_secs(60)).await?;
            out.extend(page["locks"].as_array().cloned().unwrap_or_default());
            match page["next"].as_str() {
                Some(n) => after = Some(n.to_string()),
                None => return Ok(out),
            }
        }
    }
}

/// A lock id checked before it goes into a URL.
fn lock_path(id: &str) -> Result<&str> {
    parse_lock_id(id).map(|_| id).map_err(ClientError::Api)
}
