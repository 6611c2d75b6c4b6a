//! Background workers: one [`Worker`] trait, run on a schedule, with visible status.
//!
//! Each worker does its job in passes; a [`WorkerHandle`] runs passes every interval until the
//! node stops and records what the last pass did, for `cairn status` and `GET /v1/cluster`.

pub mod gc;

use futures::future::BoxFuture;
use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::sync::watch;

/// A background job that works in passes.
pub trait Worker: Send + Sync + 'static {
    /// Short name, e.g. `gc`.
    fn name(&self) -> &'static str;
    /// Runs one pass, returning a one-line summary of what it did.
    fn pass(&self) -> BoxFuture<'_, Result<String, String>>;
}

/// What a worker has done so far.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerStatus {
    /// The worker's name.
    pub name: &'static str,
    /// Passes completed.
    pub passes: u64,
    /// Passes that failed.
    pub errors: u64,
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
            passes: 0,
            errors: 0,
            last_pass: None,
            last_result: "not run yet".into(),
        }));
        let shared = status.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
                let result = worker.pass().await;
                let mut s = shared.lock().expect("worker status lock");
                s.passes += 1;
                s.last_pass = Some(humantime::format_rfc3339_seconds(SystemTime::now()).to_string());
                match result {
                    Ok(summary) => s.last_result = summary,
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
