//! The coding runs a node takes part in: per run, the streams between programs (a few
//! buffers each, so a fast producer waits for a slow consumer), created by whichever side
//! touches them first, and a token that stops every waiting step when the run is aborted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cairn_core::{ApiError, ErrorCode};
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

/// How long one step waits for a buffer, or for room to put one, before the run fails.
pub(crate) const STREAM_TIMEOUT: Duration = Duration::from_secs(60);
/// Runs one node takes part in at once.
const MAX_RUNS: usize = 16;
/// Streams one run may have on a node.
const MAX_STREAMS: usize = 1024;
/// Buffers waiting in one stream.
const DEPTH: usize = 2;
/// A run nobody finished or aborted is forgotten after this long.
const STALE: Duration = Duration::from_secs(3600);

/// Which end of a program a stream is.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Kind {
    /// An input of a program (pushed into it).
    Input,
    /// A program's output (pulled from it).
    Output,
}

/// One stream: buffers in position order.
struct Stream {
    tx: mpsc::Sender<(u64, Bytes)>,
    rx: tokio::sync::Mutex<mpsc::Receiver<(u64, Bytes)>>,
    /// Woken whenever a buffer is taken.
    taken: Notify,
}

/// One run on this node.
struct Run {
    born: Instant,
    cancel: CancellationToken,
    streams: Mutex<HashMap<(Kind, String, String), Arc<Stream>>>,
}

/// The coding runs of this node.
#[derive(Default)]
pub(crate) struct CodeRuns {
    runs: Mutex<HashMap<u64, Arc<Run>>>,
}

/// What a step waiting in an aborted run fails with (the run's real error comes from the
/// part that failed first).
pub(crate) const ABORTED: &str = "the coding run was aborted";

fn failed(why: String) -> ApiError {
    ApiError::new(ErrorCode::Unavailable, why)
}

/// Whether an error is only the echo of an abort.
pub(crate) fn is_abort(e: &ApiError) -> bool {
    e.message == ABORTED
}

impl Run {
    fn stream(&self, kind: Kind, program: &str, input: &str) -> Result<Arc<Stream>, ApiError> {
        if program.len() > cairn_gf::MAX_NAME || input.len() > cairn_gf::MAX_NAME {
            return Err(ApiError::new(ErrorCode::InvalidArgument, "a stream name is too long"));
        }
        let mut streams = self.streams.lock().expect("streams lock");
        let key = (kind, program.to_string(), input.to_string());
        if let Some(s) = streams.get(&key) {
            return Ok(s.clone());
        }
        if streams.len() >= MAX_STREAMS {
            return Err(ApiError::new(ErrorCode::InvalidArgument, "too many streams in one coding run"));
        }
        let (tx, rx) = mpsc::channel(DEPTH);
        let s = Arc::new(Stream { tx, rx: tokio::sync::Mutex::new(rx), taken: Notify::new() });
        streams.insert(key, s.clone());
        Ok(s)
    }

    /// Puts a buffer into a stream, waiting for room.
    async fn put(&self, kind: Kind, program: &str, input: &str, position: u64, data: Bytes) -> Result<(), ApiError> {
        if data.len() > cairn_gf::MAX_BUFFER {
            return Err(ApiError::new(ErrorCode::InvalidArgument, "a coding buffer over the largest size"));
        }
        let s = self.stream(kind, program, input)?;
        tokio::select! {
            _ = self.cancel.cancelled() => Err(failed(ABORTED.into())),
            sent = tokio::time::timeout(STREAM_TIMEOUT, s.tx.send((position, data))) => match sent {
                Ok(Ok(())) => Ok(()),
                Ok(Err(_)) => Err(failed("the coding run ended".into())),
                Err(_) => Err(failed(format!("nobody took the buffers of {program} {input} for {STREAM_TIMEOUT:?}"))),
            },
        }
    }

    /// Takes the next buffer of a stream, which must be the one at `position`.
    async fn take(&self, kind: Kind, program: &str, input: &str, position: u64) -> Result<Bytes, ApiError> {
        let s = self.stream(kind, program, input)?;
        let mut rx = s.rx.lock().await;
        let got = tokio::select! {
            _ = self.cancel.cancelled() => return Err(failed(ABORTED.into())),
            got = tokio::time::timeout(STREAM_TIMEOUT, rx.recv()) => got,
        };
        match got {
            Ok(Some((at, data))) if at == position => {
                s.taken.notify_waiters();
                Ok(data)
            }
            Ok(Some((at, _))) => Err(failed(format!("{program} {input}: buffer {at} came where {position} was due"))),
            Ok(None) => Err(failed("the coding run ended".into())),
            Err(_) => Err(failed(format!("no buffer {position} of {program} {input} for {STREAM_TIMEOUT:?}"))),
        }
    }

    /// Waits until every buffer put into a stream has been taken.
    async fn drained(&self, kind: Kind, program: &str) -> Result<(), ApiError> {
        let s = self.stream(kind, program, "")?;
        let wait = async {
            loop {
                let taken = s.taken.notified();
                if s.tx.capacity() == DEPTH {
                    return;
                }
                taken.await;
            }
        };
        tokio::select! {
            _ = self.cancel.cancelled() => Err(failed(ABORTED.into())),
            done = tokio::time::timeout(STREAM_TIMEOUT, wait) => {
                done.map_err(|_| failed(format!("nobody took the last buffers of {program}")))
            }
        }
    }
}

impl CodeRuns {
    fn run(&self, id: u64) -> Result<Arc<Run>, ApiError> {
        let mut runs = self.runs.lock().expect("runs lock");
        runs.retain(|_, r| r.born.elapsed() < STALE);
        if let Some(r) = runs.get(&id) {
            return Ok(r.clone());
        }
        if runs.len() >= MAX_RUNS {
            return Err(failed(format!("this node takes part in {MAX_RUNS} coding runs already")));
        }
        let r = Arc::new(Run { born: Instant::now(), cancel: CancellationToken::new(), streams: Mutex::default() });
        runs.insert(id, r.clone());
        Ok(r)
    }

    /// A buffer pushed into input `input` of `program`.
    pub(crate) async fn push(
        &self,
        run: u64,
        program: &str,
        input: &str,
        position: u64,
        data: Bytes,
    ) -> Result<(), ApiError> {
        self.run(run)?.put(Kind::Input, program, input, position, data).await
    }

    /// The buffer at `position` of input `input` of `program`.
    pub(crate) async fn take_input(
        &self,
        run: u64,
        program: &str,
        input: &str,
        position: u64,
    ) -> Result<Bytes, ApiError> {
        self.run(run)?.take(Kind::Input, program, input, position).await
    }

    /// `program`'s output buffer at `position`, for its puller.
    pub(crate) async fn put_output(&self, run: u64, program: &str, position: u64, data: Bytes) -> Result<(), ApiError> {
        self.run(run)?.put(Kind::Output, program, "", position, data).await
    }

    /// Takes `program`'s output buffer at `position` (a pull).
    pub(crate) async fn pull(&self, run: u64, program: &str, position: u64) -> Result<Bytes, ApiError> {
        self.run(run)?.take(Kind::Output, program, "", position).await
    }

    /// Waits until `program`'s puller has taken every output buffer.
    pub(crate) async fn drained(&self, run: u64, program: &str) -> Result<(), ApiError> {
        self.run(run)?.drained(Kind::Output, program).await
    }

    /// Forgets a run whose programs here finished.
    pub(crate) fn finish(&self, run: u64) {
        self.runs.lock().expect("runs lock").remove(&run);
    }

    /// Stops a run: every step waiting in it fails at once.
    pub(crate) fn abort(&self, run: u64) {
        if let Some(r) = self.runs.lock().expect("runs lock").remove(&run) {
            r.cancel.cancel();
        }
    }
}
