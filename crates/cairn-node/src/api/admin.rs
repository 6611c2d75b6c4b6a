//! Operator endpoints: `GET /v1/fsck`, `POST /v1/nodes/{id}`, `POST /v1/workers/{name}` and
//! the Prometheus `GET /metrics`.

use super::{query_params, AppState, HttpError};
use crate::admin::FsckReport;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use cairn_core::wire::{ClusterCommand, NodeState};
use cairn_core::{ApiError, ErrorCode, FsPath};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Deserialize;
use serde_json::{json, Value};

fn invalid(msg: impl Into<String>) -> HttpError {
    HttpError(ApiError::new(ErrorCode::InvalidArgument, msg))
}

/// Query of `GET /v1/fsck`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FsckParams {
    /// Subtree to check (default `/`).
    path: Option<String>,
}

/// `GET /v1/fsck?path=/dir`: files with chunks below policy, from the durability ledger.
pub async fn fsck(
    State(st): State<AppState>,
    q: Result<Query<FsckParams>, QueryRejection>,
) -> Result<Json<FsckReport>, HttpError> {
    let path = FsPath::parse(query_params(q)?.path.as_deref().unwrap_or("/"))?;
    Ok(Json(st.node.fsck(path).await?))
}

/// Query of `POST /v1/nodes/{id}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeOpParams {
    /// `drain`, `activate` or `remove`.
    op: Option<String>,
    /// `remove` even if chunks drop below policy.
    force: Option<bool>,
}

/// `POST /v1/nodes/{id}?op=drain|activate|remove[&force=true]`.
pub async fn node_op(
    State(st): State<AppState>,
    Path(id): Path<String>,
    q: Result<Query<NodeOpParams>, QueryRejection>,
) -> Result<Json<Value>, HttpError> {
    let p = query_params(q)?;
    let id: u64 = id.parse().map_err(|_| invalid(format!("node id {id:?} is not a number")))?;
    let message = match p.op.as_deref() {
        Some("drain") => {
            st.node.set_node_state(id, NodeState::Draining).await?;
            format!("node {id} is draining: its chunks are being copied to other nodes")
        }
        Some("activate") => {
            st.node.set_node_state(id, NodeState::Active).await?;
            format!("node {id} is active")
        }
        Some("remove") => st.node.remove_node(id, p.force.unwrap_or(false)).await?,
        other => return Err(invalid(format!("op must be drain, activate or remove, not {other:?}"))),
    };
    Ok(Json(json!({ "message": message })))
}

/// Query of `POST /v1/workers/{name}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerOpParams {
    /// `pause`, `resume` or `throttle`.
    op: Option<String>,
    /// For `throttle`: bytes per second, 0 for the worker's default.
    rate: Option<u64>,
}

/// `POST /v1/workers/{name}?op=pause|resume|throttle&rate=BYTES_PER_SEC`: applies on every node.
pub async fn worker_op(
    State(st): State<AppState>,
    Path(name): Path<String>,
    q: Result<Query<WorkerOpParams>, QueryRejection>,
) -> Result<Json<Value>, HttpError> {
    let p = query_params(q)?;
    let (paused, rate) = match (p.op.as_deref(), p.rate) {
        (Some("pause"), None) => (Some(true), None),
        (Some("resume"), None) => (Some(false), None),
        (Some("throttle"), Some(r)) => (None, Some(r)),
        (Some("throttle"), None) => return Err(invalid("throttle needs rate=BYTES_PER_SEC (0: default)")),
        (op, _) => return Err(invalid(format!("op must be pause, resume or throttle&rate=N, not {op:?}"))),
    };
    st.node.write(ClusterCommand::SetWorker { name: name.clone(), paused, rate }).await?;
    Ok(Json(json!({ "message": format!("worker {name} updated on every node") })))
}

/// `GET /metrics`: Prometheus text format. Chunk health comes from this node's replica of the
/// durability ledger (it answers even without a majority), worker and space figures from
/// this node.
pub async fn metrics(State(st): State<AppState>) -> Result<Response, HttpError> {
    let node = &st.node;
    let summary = node.ledger_summary().await?;
    let mut reg = Registry::with_prefix("cairn");
    let chunks = Family::<Vec<(String, String)>, Gauge>::default();
    for (state, n) in [
        ("healthy", summary.healthy),
        ("under_replicated", summary.under_replicated),
        ("unavailable", summary.unavailable),
    ] {
        chunks.get_or_create(&vec![("state".into(), state.into())]).set(n as i64);
    }
    reg.register("chunks", "Referenced chunks by durability state", chunks);
    let at_risk = Gauge::<i64>::default();
    at_risk.set(summary.bytes_at_risk as i64);
    reg.register("bytes_at_risk", "Bytes of chunks below policy or unreadable", at_risk);
    let usage = Family::<Vec<(String, String)>, Gauge>::default();
    for u in node.meta.read_local(cairn_meta::policy_usage).await? {
        for (kind, v) in [("stored", u.stored), ("raw", u.raw)] {
            usage.get_or_create(&vec![("policy".into(), u.policy.clone()), ("kind".into(), kind.into())]).set(v as i64);
        }
    }
    reg.register(
        "policy_bytes",
        "Bytes kept per redundancy policy: stored (what files hold) and raw (on the disks)",
        usage,
    );
    let info = node.info();
    let space = Family::<Vec<(String, String)>, Gauge>::default();
    for (kind, v) in [("capacity", info.capacity), ("used", info.used), ("free", info.free)] {
        space.get_or_create(&vec![("kind".into(), kind.into())]).set(v as i64);
    }
    reg.register("node_bytes", "This node's space", space);
    let leader = Gauge::<i64>::default();
    leader.set(node.meta.is_leader() as i64);
    reg.register("is_leader", "1 if this node is the metadata leader", leader);
    let passes = Family::<Vec<(String, String)>, Counter>::default();
    let items = Family::<Vec<(String, String)>, Counter>::default();
    let bytes = Family::<Vec<(String, String)>, Counter>::default();
    let errors = Family::<Vec<(String, String)>, Counter>::default();
    let paused = Family::<Vec<(String, String)>, Gauge>::default();
    for w in node.worker_status() {
        let l = vec![("worker".to_string(), w.name.to_string())];
        passes.get_or_create(&l).inc_by(w.passes);
        items.get_or_create(&l).inc_by(w.items);
        bytes.get_or_create(&l).inc_by(w.bytes);
        errors.get_or_create(&l).inc_by(w.errors);
        paused.get_or_create(&l).set(w.paused as i64);
    }
    reg.register("worker_passes", "Passes a worker completed", passes);
    reg.register("worker_items", "Items a worker handled", items);
    reg.register("worker_bytes", "Bytes a worker moved or read", bytes);
    reg.register("worker_errors", "Passes that failed", errors);
    reg.register("worker_paused", "1 if the worker is paused", paused);
    let mut out = String::new();
    encode(&mut out, &reg).map_err(|e| HttpError(ApiError::new(ErrorCode::Internal, e.to_string())))?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], out).into_response())
}

/// Body of `POST /v1/archive`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveRequest {
    /// The file or directory to archive (everything below it).
    path: String,
    /// The code: `ec:K+M` (or `K+M`).
    ec: String,
    /// Encode on the copy holders (default) or on this node only (`false`, the baseline).
    #[serde(default = "yes")]
    pipeline: bool,
}

fn yes() -> bool {
    true
}

/// `POST /v1/archive` (admin): convert the replicated files at or below `path` to the
/// erasure code `ec`; answers with what it did.
pub async fn archive(State(st): State<AppState>, Json(req): Json<ArchiveRequest>) -> Result<Json<Value>, HttpError> {
    let path: cairn_core::FsPath = req.path.parse()?;
    let text = if req.ec.starts_with("ec:") { req.ec.clone() } else { format!("ec:{}", req.ec) };
    let policy = cairn_core::Policy::parse(&text)?;
    let report = st.node.archive(path, policy, req.pipeline).await?;
    Ok(Json(serde_json::to_value(report).map_err(|e| invalid(e.to_string()))?))
}

/// `POST /v1/code/run`: check a coding plan (JSON, see docs/formats.md) and run it; answers
/// with the chunks its WRITE steps stored and its result streams.
pub async fn code_run(State(st): State<AppState>, body: axum::body::Bytes) -> Result<Json<Value>, HttpError> {
    let plan = cairn_gf::Plan::from_json(&body).map_err(|e| invalid(e.to_string()))?;
    Ok(Json(st.node.run_plan(plan).await?))
}
