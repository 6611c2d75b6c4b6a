//! Table definitions and the small typed accessors every command and query shares.

use crate::Result;
use cairn_core::codec::{decode, encode};
use cairn_core::wire::{ApplyResult, Content, Inode, InodeKind, NodeState, Part, Target, WorkerSettings};
use cairn_core::{ApiError, ChunkId, ErrorCode, FsPath, Policy, DEFAULT_CHUNK_SIZE};
use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

/// Inode number of the root directory.
pub const ROOT_INO: u64 = 1;

/// The metadata format this code reads and writes (kept in `counters` as `format`).
pub const META_FORMAT: u64 = 2;

/// ino -> encoded [`Inode`].
pub(crate) const INODES: TableDefinition<u64, &[u8]> = TableDefinition::new("inodes");
/// (parent ino, name) -> child ino.
pub(crate) const DIRENTS: TableDefinition<(u64, &str), u64> = TableDefinition::new("dirents");
/// (ino, name) -> value: extended attributes.
pub(crate) const XATTRS: TableDefinition<(u64, &str), &[u8]> = TableDefinition::new("xattrs");
/// (ino, handle) -> lease end (ns since the epoch): open handles.
pub(crate) const HANDLES: TableDefinition<(u64, u64), i64> = TableDefinition::new("handles");
/// ino -> (): inodes without a name, kept alive by open handles.
pub(crate) const ORPHANS: TableDefinition<u64, ()> = TableDefinition::new("orphans");
/// chunk id (32 bytes) -> encoded [`ChunkRecord`].
pub(crate) const CHUNKS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("chunks");
/// (node id, chunk id): the chunks each node holds a part of (an index of `chunks`).
pub(crate) const HOLDINGS: TableDefinition<(u64, &[u8]), ()> = TableDefinition::new("holdings");
/// (holders, wanted parts, chunk id) of every referenced chunk: finds the chunks below or
/// above their policy without reading the others.
pub(crate) const HOLD_COUNTS: TableDefinition<(u8, u8, &[u8]), ()> = TableDefinition::new("hold_counts");
/// (unreferenced since, chunk id) of every chunk record no file references: what the
/// garbage collector may forget, oldest first.
pub(crate) const UNREFERENCED: TableDefinition<(i64, &[u8]), ()> = TableDefinition::new("unreferenced");
/// node id -> encoded [`NodeState`] (nodes never set are active).
pub(crate) const NODES: TableDefinition<u64, &[u8]> = TableDefinition::new("nodes");
/// worker name -> encoded [`WorkerSettings`] (workers never set run unthrottled).
pub(crate) const WORKERS: TableDefinition<&str, &[u8]> = TableDefinition::new("workers");
/// Counters and settings of the state machine (`next_ino`, `format`).
pub(crate) const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");

/// A node keeping one part of a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Holder {
    /// The node.
    pub node: u64,
    /// What it keeps: a copy, or one shard.
    pub part: Part,
}

/// What the metadata knows about one chunk: its references and its entry in the durability
/// ledger (which nodes hold a verified copy or shard).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRecord {
    /// How many file extents name this chunk.
    pub refs: u64,
    /// When `refs` last dropped to zero (ns since epoch), if it is zero (also set when a
    /// chunk is first reported stored, before any commit names it).
    pub zero_since: Option<i64>,
    /// Length in bytes, as reported by its holders.
    pub len: u32,
    /// The policy it is kept at: the strongest of the files that committed it (`None` until
    /// a commit names it).
    pub policy: Option<Policy>,
    /// Holders that reported a verified part and have not reported losing it, ascending.
    pub holders: Vec<Holder>,
}

impl ChunkRecord {
    /// A record for a chunk nothing references yet, as of `now`.
    pub(crate) fn new(now: i64) -> Self {
        ChunkRecord { refs: 0, zero_since: Some(now), len: 0, policy: None, holders: Vec::new() }
    }

    /// True if `node` holds some part of the chunk.
    pub fn holds(&self, node: u64) -> bool {
        self.holders.iter().any(|h| h.node == node)
    }

    /// The nodes holding some part, ascending.
    pub fn nodes(&self) -> impl Iterator<Item = u64> + '_ {
        self.holders.iter().map(|h| h.node)
    }

    /// Parts wanted on a large enough cluster (1 for a chunk no commit named yet).
    pub fn want(&self) -> usize {
        self.policy.map_or(1, Policy::copies)
    }

    /// Its key in the `unreferenced` index, if nothing references it.
    pub(crate) fn zero_key(&self) -> Option<i64> {
        (self.refs == 0).then_some(self.zero_since.unwrap_or(i64::MIN))
    }

    /// The distinct parts that count towards its policy: copies on distinct nodes for
    /// `replicas:N`, distinct shard indexes of the policy's own shape for `ec:K+M`.
    pub fn useful(&self) -> usize {
        match self.policy.and_then(Policy::ec) {
            None => self.holders.iter().filter(|h| h.part == Part::Copy).count(),
            Some(_) => {
                let mut indexes: Vec<u8> = self.holders.iter().filter_map(|h| self.shard_of_policy(h.part)).collect();
                indexes.sort_unstable();
                indexes.dedup();
                indexes.len()
            }
        }
    }

    /// The index of `part` if it is a shard of the shape the policy asks for.
    pub fn shard_of_policy(&self, part: Part) -> Option<u8> {
        match (part, self.policy) {
            (Part::Shard(s), Some(Policy::Ec { k, m })) if s.k == k && s.m == m => Some(s.index),
            _ => None,
        }
    }

    /// Its key in the `hold_counts` index, if it is referenced: (useful parts, wanted). A
    /// record with parts its policy does not use (copies of an erasure-coded chunk, shards
    /// of a replicated one, two holders of one shard) is keyed as wanting none, so the ledger
    /// always lists it as above policy: such parts are to be released once it is at policy.
    pub(crate) fn count_key(&self) -> Option<(u8, u8)> {
        let useful = self.useful();
        let want = if useful > 0 && useful < self.holders.len() { 0 } else { self.want().min(255) as u8 };
        (self.refs > 0).then(|| (useful.min(255) as u8, want))
    }
}

/// The workers whose settings may be changed.
pub const WORKER_NAMES: [&str; 5] = ["repair", "scrub", "rebalance", "gc", "archive"];

/// Creates the tables and the root directory if they do not exist yet. Deterministic.
/// Refuses a database written in another metadata format.
pub fn init(txn: &WriteTransaction) -> Result<()> {
    let mut inodes = txn.open_table(INODES)?;
    txn.open_table(DIRENTS)?;
    txn.open_table(XATTRS)?;
    txn.open_table(HANDLES)?;
    txn.open_table(ORPHANS)?;
    txn.open_table(CHUNKS)?;
    txn.open_table(HOLDINGS)?;
    txn.open_table(HOLD_COUNTS)?;
    txn.open_table(UNREFERENCED)?;
    txn.open_table(NODES)?;
    txn.open_table(WORKERS)?;
    txn.open_table(crate::keys::KEYS)?;
    txn.open_table(crate::keys::KEY_NAMES)?;
    crate::locks::init(txn)?;
    txn.open_table(crate::history::VERSIONING)?;
    txn.open_table(crate::history::HISTORY)?;
    txn.open_table(crate::history::GRAVES)?;
    let mut counters = txn.open_table(COUNTERS)?;
    let format = counters.get("format")?.map(|v| v.value());
    let has_root = inodes.get(ROOT_INO)?.is_some();
    match (format, has_root) {
        (Some(META_FORMAT), true) => {}
        (None, false) => {
            let root = Inode {
                ino: ROOT_INO,
                kind: InodeKind::Dir,
                mode: 0o755,
                uid: 0,
                gid: 0,
                size: 0,
                atime: 0,
                mtime: 0,
                ctime: 0,
                nlink: 2,
                parent: ROOT_INO,
                version: 1,
                policy: None,
                chunk_size: None,
                content: Content::None,
            };
            inodes.insert(ROOT_INO, encode(&root).as_slice())?;
            counters.insert("next_ino", ROOT_INO + 1)?;
            counters.insert("format", META_FORMAT)?;
        }
        (found, _) => return Err(crate::MetaError::Format { found: found.unwrap_or(1), want: META_FORMAT }),
    }
    drop((inodes, counters));
    crate::usage::count_once(txn)
}

/// The `counters` key of the number of chunks node `n` holds a part of.
pub(crate) fn held_key(n: u64) -> String {
    format!("held/{n}")
}

/// Shorthand for a command failure.
pub(crate) fn fail(code: ErrorCode, msg: impl Into<String>) -> ApplyResult {
    Err(ApiError::new(code, msg))
}

/// Shorthand for a failure answer of any type.
pub(crate) fn refuse<T>(code: ErrorCode, msg: impl Into<String>) -> std::result::Result<T, ApiError> {
    Err(ApiError::new(code, msg))
}

/// Reads one inode.
pub(crate) fn get_inode(t: &impl ReadableTable<u64, &'static [u8]>, ino: u64) -> Result<Option<Inode>> {
    match t.get(ino)? {
        Some(v) => Ok(Some(decode(v.value(), "inode")?)),
        None => Ok(None),
    }
}

/// Reads an inode a directory entry or parent link points at (a dangling one is corruption).
pub(crate) fn linked_inode(t: &impl ReadableTable<u64, &'static [u8]>, ino: u64) -> Result<Inode> {
    get_inode(t, ino)?.ok_or(crate::MetaError::Dangling(ino))
}

/// Looks a name up in a directory.
pub(crate) fn lookup(t: &impl ReadableTable<(u64, &'static str), u64>, dir: u64, name: &str) -> Result<Option<u64>> {
    Ok(t.get((dir, name))?.map(|v| v.value()))
}

/// The outcome of walking a path.
pub(crate) enum Walk {
    /// Every component exists; the inodes from root to target.
    Found(Vec<Inode>),
    /// Components up to `existing.len()` exist (all directories); the next one is missing.
    Missing { existing: Vec<Inode> },
}

/// Walks `path` from the root. A non-directory in the middle of the path is an error.
pub(crate) fn walk(
    inodes: &impl ReadableTable<u64, &'static [u8]>,
    dirents: &impl ReadableTable<(u64, &'static str), u64>,
    path: &FsPath,
) -> Result<Result<Walk, ApiError>> {
    let mut chain = vec![linked_inode(inodes, ROOT_INO)?];
    for name in path.components() {
        let dir = chain.last().expect("chain starts with root");
        if dir.kind != InodeKind::Dir {
            return Ok(refuse(ErrorCode::NotADirectory, format!("a component of {path} is not a directory")));
        }
        match lookup(dirents, dir.ino, name)? {
            Some(ino) => chain.push(linked_inode(inodes, ino)?),
            None => return Ok(Ok(Walk::Missing { existing: chain })),
        }
    }
    Ok(Ok(Walk::Found(chain)))
}

/// A directory by inode number, or the answer saying why it is not one.
pub(crate) fn get_dir(inodes: &impl ReadableTable<u64, &'static [u8]>, ino: u64) -> Result<Result<Inode, ApiError>> {
    Ok(match get_inode(inodes, ino)? {
        None => refuse(ErrorCode::NotFound, format!("directory inode {ino} does not exist")),
        Some(d) if d.kind != InodeKind::Dir => {
            refuse(ErrorCode::NotADirectory, format!("inode {ino} is not a directory"))
        }
        Some(d) => Ok(d),
    })
}

/// Resolves a target to its inode, or a not-found / not-a-directory answer.
pub(crate) fn resolve(
    inodes: &impl ReadableTable<u64, &'static [u8]>,
    dirents: &impl ReadableTable<(u64, &'static str), u64>,
    at: &Target,
) -> Result<Result<Inode, ApiError>> {
    let missing = || refuse(ErrorCode::NotFound, format!("{at} does not exist"));
    Ok(match at {
        Target::Path(path) => match walk(inodes, dirents, path)? {
            Ok(Walk::Found(mut chain)) => Ok(chain.pop().expect("non-empty chain")),
            Ok(Walk::Missing { .. }) => missing(),
            Err(e) => Err(e),
        },
        Target::Child { parent, name } => {
            if let Err(e) = cairn_core::validate_name(name) {
                return Ok(Err(e.into()));
            }
            if let Err(e) = get_dir(inodes, *parent)? {
                return Ok(Err(e));
            }
            match lookup(dirents, *parent, name)? {
                Some(ino) => Ok(linked_inode(inodes, ino)?),
                None => missing(),
            }
        }
        Target::Ino(ino) => match get_inode(inodes, *ino)? {
            Some(i) => Ok(i),
            None => missing(),
        },
    })
}

/// The policy and chunk size a new file in directory `dir` inherits: the nearest ancestor's
/// settings (following parent links up to the root), else the defaults.
pub(crate) fn inherited(inodes: &impl ReadableTable<u64, &'static [u8]>, dir: &Inode) -> Result<(Policy, u32)> {
    let (mut policy, mut chunk_size) = (dir.policy, dir.chunk_size);
    let mut at = dir.clone();
    while (policy.is_none() || chunk_size.is_none()) && at.ino != ROOT_INO {
        at = linked_inode(inodes, at.parent)?;
        policy = policy.or(at.policy);
        chunk_size = chunk_size.or(at.chunk_size);
    }
    Ok((policy.unwrap_or_default(), chunk_size.unwrap_or(DEFAULT_CHUNK_SIZE)))
}

/// Reads a chunk record.
pub(crate) fn get_chunk(
    t: &impl ReadableTable<&'static [u8], &'static [u8]>,
    id: &ChunkId,
) -> Result<Option<ChunkRecord>> {
    match t.get(id.0.as_slice())? {
        Some(v) => Ok(Some(decode(v.value(), "chunk record")?)),
        None => Ok(None),
    }
}

/// Reads a node's administrative state.
pub(crate) fn get_node_state(t: &impl ReadableTable<u64, &'static [u8]>, id: u64) -> Result<NodeState> {
    match t.get(id)? {
        Some(v) => Ok(decode(v.value(), "node state")?),
        None => Ok(NodeState::Active),
    }
}

/// Reads a worker's settings.
pub(crate) fn get_worker(t: &impl ReadableTable<&'static str, &'static [u8]>, name: &str) -> Result<WorkerSettings> {
    match t.get(name)? {
        Some(v) => Ok(decode(v.value(), "worker settings")?),
        None => Ok(WorkerSettings::default()),
    }
}
