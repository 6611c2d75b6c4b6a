//! Metadata records, commands and queries: what travels through Raft and between client and node.
//!
//! A [`Command`] is a metadata mutation; the state machine applies it deterministically, so
//! everything that is not a function of the log (the time, new ids) is carried inside the
//! [`Request`] that wraps it. Queries never change state.

use crate::chunk::ChunkId;
use crate::error::ApiError;
use crate::path::FsPath;
use crate::policy::Policy;
use serde::{Deserialize, Serialize};

/// What an inode is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum InodeKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
}

impl InodeKind {
    /// Lowercase name used in JSON and CLI output.
    pub fn as_str(self) -> &'static str {
        match self {
            InodeKind::File => "file",
            InodeKind::Dir => "dir",
            InodeKind::Symlink => "symlink",
        }
    }
}

/// One chunk of a file: its id and length in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRef {
    /// BLAKE3 of the chunk's bytes.
    pub id: ChunkId,
    /// Length in bytes (the last chunk of a file may be short).
    pub len: u32,
}

/// Where a file's bytes live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Content {
    /// No data: directories, symlinks, and empty files.
    None,
    /// Small files: the bytes themselves.
    Inline(Vec<u8>),
    /// Larger files: fixed-size chunks (all but the last are `chunk_size` long).
    Chunks {
        /// Chunk size this version was cut with.
        chunk_size: u32,
        /// The chunks, in file order.
        chunks: Vec<ChunkRef>,
    },
    /// A symlink's target.
    Symlink(String),
}

/// An inode: a file, directory or symlink and its attributes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inode {
    /// Inode number, unique for the life of the cluster.
    pub ino: u64,
    /// File, directory or symlink.
    pub kind: InodeKind,
    /// Permission bits.
    pub mode: u32,
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// Size in bytes (files), or number of entries (directories).
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime: i64,
    /// Status change time, nanoseconds since the Unix epoch.
    pub ctime: i64,
    /// Link count.
    pub nlink: u32,
    /// Bumped on every change of content or attributes; the base for optimistic commits.
    pub version: u64,
    /// Directories: redundancy policy set here (inherited below when `None`).
    pub policy: Option<Policy>,
    /// Directories: chunk size set here; files: ignored (see [`Content::Chunks`]).
    pub chunk_size: Option<u32>,
    /// The bytes, or where they are.
    pub content: Content,
}

impl Inode {
    /// The chunks this inode references (empty unless [`Content::Chunks`]).
    pub fn chunks(&self) -> &[ChunkRef] {
        match &self.content {
            Content::Chunks { chunks, .. } => chunks,
            _ => &[],
        }
    }

    /// An entity tag that changes whenever the inode does.
    pub fn etag(&self) -> String {
        format!("\"{:x}-{:x}\"", self.ino, self.version)
    }
}

/// Attributes of a new file or directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAttrs {
    /// Permission bits.
    pub mode: u32,
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
}

impl NewAttrs {
    /// Default attributes for a new file.
    pub fn file() -> Self {
        NewAttrs { mode: 0o644, uid: 0, gid: 0 }
    }
    /// Default attributes for a new directory.
    pub fn dir() -> Self {
        NewAttrs { mode: 0o755, uid: 0, gid: 0 }
    }
}

/// A metadata mutation. Each is applied atomically: all of it or none of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Create a directory (and, with `parents`, missing ancestors; an existing dir is then fine).
    Mkdir {
        /// The directory.
        path: FsPath,
        /// Create missing ancestors, and accept an existing directory.
        parents: bool,
        /// Attributes of created directories.
        attrs: NewAttrs,
    },
    /// Create or atomically replace a file's content (the commit step of every write).
    Commit {
        /// The file.
        path: FsPath,
        /// If set, the file must currently have this version (0: must not exist).
        base_version: Option<u64>,
        /// The new content; its chunks must already be durable on their nodes.
        content: Content,
        /// The new size in bytes.
        size: u64,
        /// Create missing parent directories.
        parents: bool,
        /// Attributes if the file is created.
        attrs: NewAttrs,
    },
    /// Create a symbolic link.
    Symlink {
        /// The link.
        path: FsPath,
        /// Where it points (not interpreted).
        target: String,
    },
    /// Remove a file, symlink or empty directory; `recursive` removes a whole tree.
    Remove {
        /// What to remove.
        path: FsPath,
        /// Remove non-empty directories with everything below.
        recursive: bool,
    },
    /// Atomically move `from` to `to`, replacing a file or empty directory there.
    Rename {
        /// Source.
        from: FsPath,
        /// Destination.
        to: FsPath,
    },
    /// Set a directory's redundancy policy and/or chunk size.
    SetDirPolicy {
        /// The directory.
        path: FsPath,
        /// New policy, if changing.
        policy: Option<Policy>,
        /// New chunk size, if changing.
        chunk_size: Option<u32>,
    },
    /// Verified facts about where chunk copies are (the durability ledger): a node that
    /// stored and verified a copy, or found one missing or corrupt, says so here.
    ChunkHolders {
        /// The changes, applied in order.
        changes: Vec<HolderChange>,
    },
    /// Drop a node from every chunk's holders (its disk was replaced, or it left for good).
    ForgetNode {
        /// The node.
        node: u64,
    },
    /// Set a node's administrative state (drain it, or retire it once removed).
    SetNodeState {
        /// The node.
        node: u64,
        /// Its new state.
        state: NodeState,
    },
    /// Pause, resume or throttle a background worker on every node.
    SetWorker {
        /// The worker's name (`repair`, `scrub`, `rebalance`, `gc`).
        name: String,
        /// Pause (true) or resume (false); unchanged if `None`.
        paused: Option<bool>,
        /// Bandwidth limit in bytes per second (0: unlimited); unchanged if `None`.
        rate: Option<u64>,
    },
    /// Forget chunk records whose reference count has been zero since before `before`
    /// (the garbage collector deletes their bytes afterwards).
    ForgetChunks {
        /// The candidates.
        ids: Vec<ChunkId>,
        /// Only forget chunks unreferenced since before this time (ns since epoch).
        before: i64,
    },
}

/// One fact for the durability ledger: `node` holds a verified copy of chunk `id` of `len`
/// bytes (`held`), or no longer holds a usable one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HolderChange {
    /// The chunk.
    pub id: ChunkId,
    /// The node the fact is about.
    pub node: u64,
    /// The chunk's length in bytes.
    pub len: u32,
    /// True: the node holds a verified copy; false: it has none (missing or corrupt).
    pub held: bool,
}

/// A node's administrative state, kept in the metadata (liveness is not: it is observed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeState {
    /// Takes new chunks and counts towards every chunk's policy.
    #[default]
    Active,
    /// Being emptied: still serves reads, takes no new chunks, its copies do not count.
    Draining,
    /// Removed from the cluster.
    Retired,
}

impl NodeState {
    /// Lowercase name used in JSON and CLI output.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Active => "active",
            NodeState::Draining => "draining",
            NodeState::Retired => "retired",
        }
    }
}

/// A background worker's settings, kept in the metadata so they hold cluster-wide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WorkerSettings {
    /// The worker skips its passes.
    pub paused: bool,
    /// Bandwidth limit in bytes per second; 0 means the worker's default.
    pub rate: u64,
}

/// One Raft log entry's payload: a batch of commands plus the proposer's clock reading, so
/// that applying it is a pure function of the log. Concurrent writes share one entry (and one
/// log fsync); each command is still applied atomically on its own, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Wall-clock time at the proposer, nanoseconds since the Unix epoch.
    pub now: i64,
    /// The mutations, applied in order.
    pub cmds: Vec<Command>,
}

/// What a command returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// Nothing to say.
    Done,
    /// The inode created or changed.
    Inode(Inode),
    /// How many records changed.
    Count(u64),
}

/// The result of applying a command: state machine failures are answers, not crashes.
pub type ApplyResult = Result<Reply, ApiError>;

/// A read-only question to the metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Query {
    /// The inode at a path.
    Stat(FsPath),
    /// A directory's entries with their inodes.
    List(FsPath),
    /// How to write a new file at this path: chunk size and policy inherited from above.
    WritePlan(FsPath),
}

/// A directory entry with its inode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirEntry {
    /// The entry's name.
    pub name: String,
    /// Its inode.
    pub inode: Inode,
}

/// Chunking parameters for a new file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WritePlan {
    /// Chunk size to cut with.
    pub chunk_size: u32,
    /// Redundancy policy.
    pub policy: Policy,
}

/// The answer to a [`Query`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueryReply {
    /// For [`Query::Stat`].
    Inode(Inode),
    /// For [`Query::List`].
    Entries(Vec<DirEntry>),
    /// For [`Query::WritePlan`].
    Plan(WritePlan),
}
