//! Background workers: one [`Worker`] trait, run on a schedule, with visible status.
//!
//! Each worker does its job in passes; a [`WorkerHandle`] runs passes every interval until the
//! node stops and records what the passes did, for `cairn status`, `GET /v1/cluster` and
//! `/metrics`. Workers that move bytes (repair, scrub, rebalance, gc, archive) read their settings from
//! the metadata, so `cairn worker pause|resume|throttle` holds on every node and survives
//! restarts; a paused worker skips its passes and stops a running one between items.

pub mod archive;
pub mod gc;
pub mod rebalance;
pub mod repair;
pub mod scrub;
pub mod uploads;

use cairn_core::wire::WorkerSettings;
use futures::future::BoxFuture;
use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::watch;

/// What one pass did.
#[derive(Debug, Clone, Default)]
pub struct PassReport {
    /// One line for humans.
    pub summary: String,
    /// Items handled (chunks copied, checked, moved or deleted).
    pub items: u64,
    /// Bytes moved or read.
    pub bytes: u64,
}

impl PassReport {
    /// A report with only a summary.
    pub fn note(summary: impl Into<String>) -> Self {
        PassReport { summary: summary.into(), ..Default::default() }
    }
}

/// A background job that works in passes.
pub trait Worker: Send + Sync + 'static {
    /// Short name, e.g. `gc`.
    fn name(&self) -> &'static str;
    /// Runs one pass.
    fn pass(&self) -> BoxFuture<'_, Result<PassReport, String>>;
    /// The worker's current settings (workers that cannot be paused keep the default).
    fn settings(&self) -> WorkerSettings {
        WorkerSettings::default()
    }
    /// True if the first pass waits one interval (a node restart should not start a full
    /// scrub of its disk); otherwise it runs at once.
    fn first_pass_waits(&self) -> bool {
        false
    }
}

/// What a worker has done so far.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerStatus {
    /// The worker's name.
    pub name: &'static str,
    /// Paused by `cairn worker pause`.
    pub paused: bool,
    /// Bandwidth limit in bytes per second set by `cairn worker throttle` (0: default).
    pub rate: u64,
    /// Passes completed.
    pub passes: u64,
    /// Passes that failed.
    pub errors: u64,
    /// Items handled over all passes.
    pub items: u64,
    /// Bytes handled over all passes.
    pub bytes: u64,
    /// When the last pass ended (RFC 3339).
    pub last_pass: Option<String>,
    /// The last pass's summary or error.
    pub last_result: String,
}

/// A running worker.
pub struct WorkerHandle {
    status: Arc<Mutex<WorkerStatus>>,
}

impl WorkerHandle {
    /// Runs `worker` every `interval` until `stop` turns true.
    pub fn spawn(worker: Arc<dyn Worker>, interval: Duration, mut stop: watch::Receiver<bool>) -> Self {
        let status = Arc::new(Mutex::new(WorkerStatus {
            name: worker.name(),
            paused: false,
            rate: 0,
            passes: 0,
            errors: 0,
            items: 0,
            bytes: 0,
            last_pass: None,
            last_result: "not run yet".into(),
        }));
        let shared = status.clone();
        tokio::spawn(async move {
            let first = match worker.first_pass_waits() {
                true => tokio::time::Instant::now() + interval,
                false => tokio::time::Instant::now(),
            };
            let mut tick = tokio::time::interval_at(first, interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
                let settings = worker.settings();
                {
                    let mut s = shared.lock().expect("worker status lock");
                    s.paused = settings.paused;
                    s.rate = settings.rate;
                    if settings.paused {
                        s.last_result = "paused".into();
                        continue;
                    }
                }
                let result = tokio::select! {
                    r = worker.pass() => r,
                    _ = stop.wait_for(|s| *s) => return,
                };
                let mut s = shared.lock().expect("worker status lock");
                s.passes += 1;
                s.last_pass = Some(humantime::format_rfc3339_seconds(SystemTime::now()).to_string());
                match result {
                    Ok(report) => {
                        s.items += report.items;
                        s.bytes += report.bytes;
                        s.last_result = report.summary;
                    }
                    Err(e) => {
                        s.errors += 1;
                        tracing::warn!(worker = s.name, "pass failed: {e}");
                        s.last_result = format!("error: {e}");
                    }
                }
            }
        });
        WorkerHandle { status }
    }

    /// A copy of the current status.
    pub fn status(&self) -> WorkerStatus {
        self.status.lock().expect("worker status lock").clone()
    }
}

/// Paces a worker to a bandwidth limit: after `take(n)` the caller has used no more than
/// `rate` bytes per second since the throttle was made (0: unlimited).
pub struct Throttle {
    rate: u64,
    start: Instant,
    bytes: u64,
}

impl Throttle {
    /// A throttle at `rate` bytes per second.
    pub fn new(rate: u64) -> Self {
        Throttle { rate, start: Instant::now(), bytes: 0 }
    }

    /// Accounts for `n` more bytes, sleeping until they fit the rate.
    pub async fn take(&mut self, n: u64) {
        self.bytes += n;
        if self.rate == 0 {
            return;
        }
        let due = self.start + Duration::from_secs_f64(self.bytes as f64 / self.rate as f64);
        tokio::time::sleep_until(due.into()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn throttle_paces_to_its_rate_and_zero_means_unlimited() {
        let start = Instant::now();
        let mut t = Throttle::new(1 << 20);
        t.take(256 << 10).await;
        t.take(256 << 10).await;
        assert!(start.elapsed() >= Duration::from_millis(500), "512 KiB at 1 MiB/s takes half a second");
        let start = Instant::now();
        let mut free = Throttle::new(0);
        free.take(1 << 40).await;
        assert!(start.elapsed() < Duration::from_secs(1));
    }
}
