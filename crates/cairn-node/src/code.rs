//! Coding plans run by hand (`POST /v1/code/run`, `cairn code run PLAN.json`).
//!
//! The node checks a plan against its replica of the durability ledger before any byte
//! moves: each program's node must hold every chunk the program loads, and those chunks must
//! be of one length (besides the plan's own rules: buffers defined before use, every stream
//! with one writer and one reader, no cycles). Then it fetches the chunks from their nodes
//! (each verified against its BLAKE3 id), runs the plan on the best GF(2^8) kernel and stores
//! what each WRITE produced on the node its program names.
//!
//! The plan runs on the node that received it, its streams as buffers in that node's
//! memory; running each program on its own node and streaming between them over the peer
//! door is the next step (issue 13). Chunks a plan writes are not part of any file: the
//! garbage collector removes them after its grace period unless a commit names them.

use std::collections::BTreeMap;

use base64::Engine;
use bytes::Bytes;
use cairn_core::{ApiError, ChunkId, ErrorCode};
use cairn_gf::{Backend, Plan, Source, Step};
use serde_json::{json, Value};

use crate::node::Node;

/// The largest plan a node accepts, in bytes of JSON.
pub const MAX_PLAN_BYTES: usize = 1 << 20;
/// The most chunk bytes one plan may load (they are held in memory while it runs).
const MAX_FETCH: u64 = 512 << 20;
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

/// A chunk a plan loads: the node and id as the plan writes them, and parsed (`None` when
/// either does not parse: then no node holds it).
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

/// Chunks by (node, id) text, and the results each WRITE made.
struct Memory {
    chunks: BTreeMap<(String, String), Bytes>,
    stored: Vec<(String, ChunkId, Vec<u8>)>,
}

impl cairn_gf::Io for Memory {
    fn read(&mut self, node: &str, chunk: &str, offset: u64, buf: &mut [u8]) -> cairn_gf::Result<()> {
        let data = self
            .chunks
            .get(&(node.to_string(), chunk.to_string()))
            .ok_or_else(|| cairn_gf::Error::Io(format!("chunk {chunk} of node {node} was not fetched")))?;
        let start = usize::try_from(offset).map_err(|_| cairn_gf::Error::Io("offset out of range".into()))?;
        let part = data
            .get(start..start + buf.len())
            .ok_or_else(|| cairn_gf::Error::Io(format!("chunk {chunk} is shorter than the plan")))?;
        buf.copy_from_slice(part);
        Ok(())
    }

    fn store(&mut self, node: &str, data: Vec<u8>) -> cairn_gf::Result<String> {
        let id = ChunkId::of(&data);
        self.stored.push((node.to_string(), id, data));
        Ok(id.to_hex())
    }
}

impl Node {
    /// The length of each chunk in this node's replica of the ledger, if the node named
    /// beside it holds it.
    async fn held_sizes(&self, wanted: Vec<Option<(u64, ChunkId)>>) -> Result<Vec<Option<u64>>, ApiError> {
        self.meta
            .read_local(move |txn| {
                let mut out = Vec::new();
                for item in wanted {
                    let size = match item {
                        Some((node, id)) => cairn_meta::chunk_record(txn, &id)?
                            .filter(|r| r.holders.iter().any(|h| h.node == node))
                            .map(|r| u64::from(r.len)),
                        None => None,
                    };
                    out.push(size);
                }
                Ok(out)
            })
            .await
    }

    /// Checks and runs a coding plan (see the module docs); answers with the chunks written
    /// and the result streams.
    pub async fn run_plan(&self, plan: Plan) -> Result<Value, ApiError> {
        let ids = loads(&plan);
        let sizes = self.held_sizes(ids.iter().map(|w| w.at).collect()).await?;
        let known: BTreeMap<(&str, &str), u64> = ids
            .iter()
            .zip(&sizes)
            .filter_map(|(w, size)| size.map(|s| ((w.node.as_str(), w.chunk.as_str()), s)))
            .collect();
        let checked = plan.check(|node, chunk| known.get(&(node, chunk)).copied()).map_err(gf_error)?;
        if ids.len() as u64 * checked.length > MAX_FETCH {
            return Err(invalid(format!("the plan loads more than {} MiB of chunks", MAX_FETCH >> 20)));
        }
        if checked.results.len() as u64 * checked.length > MAX_RESULTS {
            return Err(invalid(format!(
                "the plan returns more than {} MiB: WRITE its streams instead",
                MAX_RESULTS >> 20
            )));
        }
        let fetches = ids.iter().map(|Wanted { node, chunk, at }| async move {
            let (from, id) = at.ok_or_else(|| invalid(format!("no chunk {chunk} on node {node}")))?;
            let data = if from == self.id {
                let data = self.chunks.get_chunk_for_transfer(id, true).await?;
                if ChunkId::of(&data) != id {
                    return Err(ApiError::new(ErrorCode::Corrupt, format!("chunk {id} is corrupt here")));
                }
                data
            } else {
                self.chunks.fetch_chunk_from(from, id).await?
            };
            Ok::<_, ApiError>(((node.clone(), chunk.clone()), data))
        });
        let chunks = futures::future::try_join_all(fetches).await?.into_iter().collect();
        let (outcome, stored) = tokio::task::spawn_blocking(move || {
            let mut io = Memory { chunks, stored: Vec::new() };
            cairn_gf::run(&plan, &checked, Backend::best(), &mut io).map(|o| (o, io.stored))
        })
        .await
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?
        .map_err(gf_error)?;
        for (node, id, data) in stored {
            let to: u64 = node.parse().map_err(|_| invalid(format!("bad node id {node:?}")))?;
            if to == self.id {
                self.chunks.put_chunk_local(id, Bytes::from(data), true).await?;
            } else {
                self.chunks.store_chunk_at(to, id, Bytes::from(data), Vec::new()).await?;
            }
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        let results: serde_json::Map<String, Value> = outcome
            .results
            .iter()
            .map(|(name, data)| {
                let v =
                    json!({ "length": data.len(), "blake3": ChunkId::of(data).to_hex(), "base64": b64.encode(data) });
                (name.clone(), v)
            })
            .collect();
        let written: Vec<Value> = outcome
            .written
            .iter()
            .map(|w| json!({ "program": w.program, "node": w.node, "chunk": w.chunk, "length": w.length }))
            .collect();
        Ok(json!({ "backend": Backend::best().name(), "written": written, "results": results }))
    }
}
