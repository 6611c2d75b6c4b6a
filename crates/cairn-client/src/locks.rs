//! Cluster locks from the client: take them (all paths or none, optionally waiting), hold
//! them with a guard that renews them in the background, release them on drop.
//!
//! A [`LockGuard`]'s [`Guard`](cairn_core::lock::Guard) is what writes present to pass the
//! lock (its id) and to prove they are not stale (its fencing token).

use crate::r#async::parse;
use crate::{AsyncClient, Backend, ClientError, Result};
use cairn_core::lock::{check_request, parse_lock_id, ttl_ns, ByteRange, Guard, LockItem, LockMode};
use cairn_core::wire::{ClientCommand, Reply};
use cairn_core::ErrorCode;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;
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

impl AsyncClient {
    /// Takes a lock on every path or on none; fails with `locked` if others hold them
    /// beyond `opts.wait` (retrying meanwhile). Sent as a metadata command, straight to the
    /// leader like every write; the node records the caller's key as its owner. Must be
    /// called inside a Tokio runtime, where the guard renews the lock.
    pub async fn lock(&self, paths: &[&str], opts: &LockOptions) -> Result<LockGuard> {
        let ttl = ttl_ns(opts.ttl.as_secs().max(1))?;
        let items = paths.iter().map(|p| Ok(LockItem::path(parse(p)?, opts.range))).collect::<Result<Vec<_>>>()?;
        check_request(&items, "", ttl)?;
        let deadline = Instant::now() + opts.wait;
        let mut pause = Duration::from_millis(20);
        let info = loop {
            let cmd = ClientCommand::Lock {
                id: rand::random(),
                owner: String::new(),
                mode: opts.mode,
                items: items.clone(),
                ttl,
            };
            match self.backend().write(cmd).await {
                Ok(Reply::Lock(info)) => break info,
                Ok(other) => return Err(ClientError::Protocol(format!("expected a lock, got {other:?}"))),
                Err(e) if e.code() == ErrorCode::Locked && Instant::now() + pause < deadline => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(500));
                }
                Err(e) => return Err(e),
            }
        };
        let id = info.id_hex();
        let lost = Arc::new(AtomicBool::new(false));
        let (stop, stopped) = oneshot::channel();
        let ttl = Duration::from_nanos(ttl as u64);
        tokio::spawn(keep(self.clone(), id.clone(), ttl, lost.clone(), stopped));
        let runtime = tokio::runtime::Handle::current();
        Ok(LockGuard { client: self.clone(), id, fence: info.fence, lost, stop: Some(stop), runtime, released: false })
    }

    /// Extends lock `id` (16 hex digits) by `ttl` from now.
    pub async fn renew_lock(&self, id: &str, ttl: Duration) -> Result<()> {
        let cmd = ClientCommand::RenewLock { id: parse_lock_id(id)?, owner: None, ttl: ttl_ns(ttl.as_secs().max(1))? };
        self.backend().write(cmd).await.map(drop)
    }

    /// Releases lock `id` (16 hex digits).
    pub async fn release_lock(&self, id: &str) -> Result<()> {
        self.backend().write(ClientCommand::Unlock { id: parse_lock_id(id)?, owner: None }).await.map(drop)
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
