//! Coding plans (`POST /v1/code/run`, `cairn code run PLAN.json`): each program runs on its
//! own node, buffer by buffer, and the streams between programs travel over the peer door —
//! pushed (`PlanPush`: the sender's SEND goes into the receiver's input) or pulled
//! (`PlanPull`: a LOAD asks the producer's node for its output) — so buffer i moves down a
//! chain while buffer i+1 is read.
//!
//! The node that receives a plan coordinates it: it checks the plan against its replica of
//! the durability ledger before any byte moves (each program's node must hold every chunk the
//! program loads, all of one length; besides the plan's own rules), gives it a run id, sends
//! `PlanRun` to every node with programs (each checks the plan again and runs its part), pulls
//! the result streams no program pulls, and answers with what the WRITE steps stored. When a
//! part fails, every other part is aborted. Chunks a plan writes belong to no file: the
//! garbage collector removes them after its grace period unless a commit names them.

pub(crate) mod runs;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use cairn_core::{ApiError, ChunkId, ErrorCode};
use cairn_gf::{Backend, Checked, Emit, Machine, Plan, Source, Step};
use serde_json::{json, Value};

use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};

use crate::node::Node;
use crate::transport::{PeerReply, PeerRequest};

/// The largest plan a node accepts, in bytes of JSON.
pub const MAX_PLAN_BYTES: usize = 1 << 20;
/// How long a node's part of a plan may take.
pub(crate) const RUN_TIMEOUT: Duration = Duration::from_secs(600);
/// The most bytes of chunks one node loads for a plan, and the most bytes of buffers its
/// programs there hold (both in memory while it runs).
const MAX_LOADED: u64 = 512 << 20;
/// The most bytes of result streams one plan may return.
const MAX_RESULTS: u64 = 64 << 20;

fn invalid(why: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidArgument, why.into())
}

fn gf_error(e: cairn_gf::Error) -> ApiError {
    match e {
        cairn_gf::Error::Program(why) => invalid(why),
        other => ApiError::new(ErrorCode::Internal, other.to_string()),
    }
}

/// The node id a program of a checked plan runs on.
fn node_of(plan: &Plan, program: &str) -> Result<u64, ApiError> {
    let p = plan.programs.get(program).ok_or_else(|| invalid(format!("no program {program}")))?;
    p.node.parse().map_err(|_| invalid(format!("{program}: {:?} is not a node id", p.node)))
}

/// What one part of a run gave the coordinator.
enum Part {
    /// A node's programs finished: what their WRITE steps stored there.
    Written(u64, Vec<(String, ChunkId, u64)>),
    /// A result stream, pulled whole.
    Result(String, Vec<u8>),
}

/// A chunk a plan loads: node and id as the plan writes them, and parsed (`None` when either
/// does not parse: then no node holds it).
struct Wanted {
    node: String,
    chunk: String,
    at: Option<(u64, ChunkId)>,
}

/// The chunks a plan loads, each once.
fn loads(plan: &Plan) -> Vec<Wanted> {
    let mut pairs: Vec<(String, String)> = plan
        .programs
        .values()
        .flat_map(|p| {
            p.steps.iter().filter_map(|s| match s {
                Step::Load { from: Source::Chunk(id), .. } => Some((p.node.clone(), id.clone())),
                _ => None,
            })
        })
        .collect();
    pairs.sort();
    pairs.dedup();
    pairs
        .into_iter()
        .map(|(node, chunk)| {
            let at = node.parse::<u64>().ok().zip(ChunkId::from_hex(&chunk).ok());
            Wanted { node, chunk, at }
        })
        .collect()
}

impl Node {
    /// Checks a plan against this node's replica of the ledger and the membership. With
    /// `only`, holders are checked for that node's chunks only (a part of a run checks its
    /// own; the coordinator already checked the others, which may change while it runs).
    async fn check_plan(&self, plan: &Plan, only: Option<u64>) -> Result<Checked, ApiError> {
        let wanted = loads(plan);
        let ids: Vec<Option<(u64, ChunkId)>> = wanted.iter().map(|w| w.at).collect();
        let sizes: Vec<Option<u64>> = self
            .meta
            .read_local(move |txn| {
                let mut out = Vec::new();
                for item in ids {
                    let size = match item {
                        Some((node, id)) => cairn_meta::chunk_record(txn, &id)?
                            .filter(|r| only.is_some_and(|me| me != node) || r.holders.iter().any(|h| h.node == node))
                            .map(|r| u64::from(r.len)),
                        None => None,
                    };
                    out.push(size);
                }
                Ok(out)
            })
            .await?;
        let known: BTreeMap<(&str, &str), u64> = wanted
            .iter()
            .zip(&sizes)
            .filter_map(|(w, size)| size.map(|s| ((w.node.as_str(), w.chunk.as_str()), s)))
            .collect();
        let checked = plan.check(|node, chunk| known.get(&(node, chunk)).copied()).map_err(gf_error)?;
        let members: BTreeSet<u64> = self.members().into_iter().map(|(id, _)| id).collect();
        let mut per_node: BTreeMap<u64, u64> = BTreeMap::new();
        for name in plan.programs.keys() {
            let at = node_of(plan, name)?;
            if !members.contains(&at) {
                return Err(invalid(format!("{name}: node {at} is not a member of this cluster")));
            }
        }
        for w in &wanted {
            if let Some((node, _)) = w.at {
                *per_node.entry(node).or_default() += checked.length;
            }
        }
        if per_node.values().any(|&n| n > MAX_LOADED) {
            return Err(invalid(format!("the plan loads more than {} MiB of chunks on one node", MAX_LOADED >> 20)));
        }
        let mut buffers: BTreeMap<&str, u64> = BTreeMap::new();
        for p in plan.programs.values() {
            *buffers.entry(p.node.as_str()).or_default() += (p.buffers() * plan.buffer) as u64;
        }
        if let Some((node, _)) = buffers.iter().find(|(_, &n)| n > MAX_LOADED) {
            return Err(invalid(format!("the plan's buffers need more than {} MiB on node {node}", MAX_LOADED >> 20)));
        }
        if checked.results.len() as u64 * checked.length > MAX_RESULTS {
            return Err(invalid(format!(
                "the plan returns more than {} MiB: WRITE its streams instead",
                MAX_RESULTS >> 20
            )));
        }
        Ok(checked)
    }

    /// Coordinates a coding plan (see the module docs); answers with the chunks written and
    /// the result streams.
    pub async fn run_plan(&self, plan: Plan) -> Result<Value, ApiError> {
        let checked = self.check_plan(&plan, None).await?;
        let run: u64 = rand::random();
        let text = serde_json::to_vec(&plan).map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
        let nodes: BTreeSet<u64> = plan.programs.keys().map(|p| node_of(&plan, p)).collect::<Result<_, _>>()?;
        let mut pending: FuturesUnordered<BoxFuture<'_, Result<Part, ApiError>>> = FuturesUnordered::new();
        for &at in &nodes {
            let text = text.clone();
            pending.push(
                async move {
                    let written = if at == self.id {
                        self.run_programs_here(run, &text).await?
                    } else {
                        match self.meta.ask(at, PeerRequest::PlanRun { run, plan: text }, None).await? {
                            PeerReply::PlanDone(written) => written,
                            r => return Err(r.unexpected()),
                        }
                    };
                    Ok(Part::Written(at, written))
                }
                .boxed(),
            );
        }
        for name in &checked.results {
            let (plan, length) = (&plan, checked.length);
            pending.push(
                async move {
                    let at = node_of(plan, name)?;
                    let mut out = Vec::new();
                    let mut position = 0;
                    while (out.len() as u64) < length {
                        out.extend_from_slice(&self.pull_output(run, at, name, position).await?);
                        position += 1;
                    }
                    Ok(Part::Result(name.clone(), out))
                }
                .boxed(),
            );
        }
        // The first real error ends the run everywhere; an abort's echo waits for its cause.
        let (mut written, mut results, mut echo) = (Vec::new(), Vec::new(), None);
        while let Some(done) = pending.next().await {
            match done {
                Ok(Part::Written(at, w)) => written.extend(w.into_iter().map(|(p, id, len)| (p, id, len, at))),
                Ok(Part::Result(name, data)) => results.push((name, data)),
                Err(e) if runs::is_abort(&e) => echo = echo.or(Some(e)),
                Err(e) => {
                    self.abort_run(run, &nodes).await;
                    return Err(e);
                }
            }
        }
        if let Some(e) = echo {
            self.abort_run(run, &nodes).await;
            return Err(e);
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        let results: serde_json::Map<String, Value> = results
            .into_iter()
            .map(|(name, data)| {
                let v =
                    json!({ "length": data.len(), "blake3": ChunkId::of(&data).to_hex(), "base64": b64.encode(&data) });
                (name, v)
            })
            .collect();
        written.sort_by_key(|w| checked.order.iter().position(|p| *p == w.0));
        let written: Vec<Value> = written
            .into_iter()
            .map(|(program, id, length, at)| {
                json!({ "program": program, "node": at.to_string(), "chunk": id.to_hex(), "length": length })
            })
            .collect();
        Ok(json!({ "backend": Backend::best().name(), "run": run.to_string(), "written": written, "results": results }))
    }

    /// Tells every node of a failed run to stop its part.
    async fn abort_run(&self, run: u64, nodes: &BTreeSet<u64>) {
        self.code_runs.abort(run);
        let asks = nodes
            .iter()
            .filter(|&&at| at != self.id)
            .map(|&at| self.meta.ask(at, PeerRequest::PlanAbort { run }, Some(Duration::from_secs(5))));
        futures::future::join_all(asks).await;
    }

    /// Output buffer `position` of `program`, which runs on node `at`.
    async fn pull_output(&self, run: u64, at: u64, program: &str, position: u64) -> Result<Bytes, ApiError> {
        if at == self.id {
            return self.code_runs.pull(run, program, position).await;
        }
        let req = PeerRequest::PlanPull { run, program: program.to_string(), position };
        match self.meta.ask(at, req, Some(runs::STREAM_TIMEOUT + Duration::from_secs(5))).await? {
            PeerReply::Chunk { data } => Ok(data),
            r => Err(r.unexpected()),
        }
    }

    /// Runs this node's programs of run `run` (`PlanRun`): checks the plan here too, then
    /// runs them side by side; what their WRITE steps stored.
    pub(crate) async fn run_programs_here(
        &self,
        run: u64,
        text: &[u8],
    ) -> Result<Vec<(String, ChunkId, u64)>, ApiError> {
        if text.len() > MAX_PLAN_BYTES {
            return Err(invalid("the plan is too large"));
        }
        let plan = Plan::from_json(text).map_err(gf_error)?;
        let checked = self.check_plan(&plan, Some(self.id)).await?;
        let mine: Vec<&String> =
            plan.programs.iter().filter(|(_, p)| p.node == self.id.to_string()).map(|(n, _)| n).collect();
        let done =
            futures::future::try_join_all(mine.into_iter().map(|name| self.run_program(run, &plan, &checked, name)))
                .await;
        match done {
            Ok(written) => {
                self.code_runs.finish(run);
                Ok(written.into_iter().flatten().collect())
            }
            Err(e) => {
                self.code_runs.abort(run);
                Err(e)
            }
        }
    }

    /// Runs one program of a checked plan on this node, position by position.
    async fn run_program(
        &self,
        run: u64,
        plan: &Plan,
        checked: &Checked,
        name: &str,
    ) -> Result<Vec<(String, ChunkId, u64)>, ApiError> {
        let program = &plan.programs[name];
        let mut machine = Machine::new(name, program);
        let sources = machine.loads();
        let mut chunks: BTreeMap<&str, Bytes> = BTreeMap::new();
        for from in &sources {
            if let Source::Chunk(hex) = from {
                let id = ChunkId::from_hex(hex).map_err(|_| invalid(format!("{name}: bad chunk id {hex}")))?;
                let data = self.chunks.get_chunk_for_transfer(id, true).await?;
                if ChunkId::of(&data) != id {
                    return Err(ApiError::new(ErrorCode::Corrupt, format!("chunk {id} is corrupt here")));
                }
                chunks.insert(hex, data);
            }
        }
        let backend = Backend::best();
        let (mut offset, mut position) = (0u64, 0u64);
        while offset < checked.length {
            let len = (checked.length - offset).min(plan.buffer as u64) as usize;
            let mut loads = Vec::with_capacity(sources.len());
            for from in &sources {
                let data = match from {
                    Source::Chunk(hex) => chunks[hex.as_str()].slice(offset as usize..offset as usize + len),
                    Source::Input(input) => self.code_runs.take_input(run, name, input, position).await?,
                    Source::Program(src) => self.pull_output(run, node_of(plan, src)?, src, position).await?,
                };
                loads.push(data.to_vec());
            }
            let mut emitted: Vec<(Option<(String, String)>, Bytes)> = Vec::new();
            machine
                .position(backend, len, loads, &mut |e| {
                    match e {
                        Emit::Send { to, input, data } => {
                            emitted.push((Some((to.to_string(), input.to_string())), Bytes::copy_from_slice(data)))
                        }
                        Emit::Output { data } => emitted.push((None, Bytes::copy_from_slice(data))),
                    }
                    Ok(())
                })
                .map_err(gf_error)?;
            for (to, data) in emitted {
                match to {
                    None => self.code_runs.put_output(run, name, position, data).await?,
                    Some((to, input)) => self.push_input(run, node_of(plan, &to)?, to, input, position, data).await?,
                }
            }
            offset += len as u64;
            position += 1;
        }
        if program.steps.iter().any(|s| matches!(s, Step::Output { .. })) {
            self.code_runs.drained(run, name).await?;
        }
        let mut written = Vec::new();
        for data in machine.finish() {
            let id = ChunkId::of(&data);
            let len = data.len() as u64;
            self.chunks.put_chunk_local(id, Bytes::from(data), true).await?;
            written.push((name.to_string(), id, len));
        }
        Ok(written)
    }

    /// Pushes a buffer into input `input` of program `to`, which runs on node `at`.
    async fn push_input(
        &self,
        run: u64,
        at: u64,
        to: String,
        input: String,
        position: u64,
        data: Bytes,
    ) -> Result<(), ApiError> {
        if at == self.id {
            return self.code_runs.push(run, &to, &input, position, data).await;
        }
        let req = PeerRequest::PlanPush { run, program: to, input, position, data };
        match self.meta.ask(at, req, Some(runs::STREAM_TIMEOUT + Duration::from_secs(5))).await? {
            PeerReply::Done => Ok(()),
            r => Err(r.unexpected()),
        }
    }
}
