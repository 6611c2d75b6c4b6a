//! Metadata records, commands and queries: what travels through Raft and between client and node.
//!
//! A [`Command`] is a metadata mutation; the state machine applies it deterministically, so
//! everything that is not a function of the log (the time, new ids) is carried inside the
//! [`Request`] that wraps it. Queries never change state.

use crate::chunk::ChunkId;
pub use crate::chunk::{Part, Shard};
use crate::error::ApiError;
use crate::extent::Extent;
use crate::lock::{Guard, LockInfo, LockItem, LockMode};
use crate::path::FsPath;
use crate::policy::Policy;
use serde::{Deserialize, Serialize};

mod feed;
mod query;
pub use feed::{state_of, Change, ChangeBatch, FEED_MAX};
pub use query::{DirEntry, Query, QueryReply, WritePlan, LIST_DEFAULT, LIST_MAX, QUERY_BATCH_MAX};

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

/// Where a file's bytes live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Content {
    /// No data: directories, and empty files.
    None,
    /// Small files: the bytes themselves (as one byte string: decoding them byte by byte
    /// made every lookup of a small file slow).
    Inline(#[serde(with = "serde_bytes")] Vec<u8>),
    /// Larger files: extents of chunks (and holes) covering `0..size` in order.
    Extents(Vec<Extent>),
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
    /// Permission bits (the low 12 bits of `st_mode`).
    pub mode: u32,
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// Size in bytes (files), or number of entries (directories).
    pub size: u64,
    /// Access time, nanoseconds since the Unix epoch (set on creation and by SetAttr only).
    pub atime: i64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime: i64,
    /// Status change time, nanoseconds since the Unix epoch.
    pub ctime: i64,
    /// Link count: names of a file; 2 + subdirectories of a directory.
    pub nlink: u32,
    /// Directories: the parent directory (the root names itself); others: 0.
    pub parent: u64,
    /// Bumped on every change of content or attributes (not of names: a rename or a new hard
    /// link changes only `ctime`); the ETag, and the base for optimistic commits.
    pub version: u64,
    /// Directories: the policy set here (inherited below when `None`); files: the policy its
    /// chunks are kept at, fixed when it was created.
    pub policy: Option<Policy>,
    /// Directories: the chunk size set here; files: the size new data is cut at.
    pub chunk_size: Option<u32>,
    /// The bytes, or where they are.
    pub content: Content,
}

impl Inode {
    /// The extents of this inode's data (empty unless [`Content::Extents`]).
    pub fn extents(&self) -> &[Extent] {
        match &self.content {
            Content::Extents(e) => e,
            _ => &[],
        }
    }

    /// The chunks this inode references, once per extent.
    pub fn chunk_ids(&self) -> impl Iterator<Item = ChunkId> + '_ {
        crate::extent::chunks(self.extents())
    }

    /// An entity tag that changes whenever the inode does.
    pub fn etag(&self) -> String {
        format!("\"{:x}-{:x}\"", self.ino, self.version)
    }
}

/// What a command or query acts on: a path resolved from the root, a name inside a directory
/// given by inode number, or an inode itself whatever its names (an open file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Target {
    /// A path from the root.
    Path(FsPath),
    /// The entry `name` in directory `parent`.
    Child {
        /// The directory's inode number.
        parent: u64,
        /// The entry's name (validated like a path component).
        name: String,
    },
    /// An inode by number. Commands that create or remove a name need one of the others.
    Ino(u64),
}

impl From<FsPath> for Target {
    fn from(p: FsPath) -> Self {
        Target::Path(p)
    }
}

impl From<&FsPath> for Target {
    fn from(p: &FsPath) -> Self {
        Target::Path(p.clone())
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Path(p) => write!(f, "{p}"),
            Target::Child { parent, name } => write!(f, "{name:?} in inode {parent}"),
            Target::Ino(ino) => write!(f, "inode {ino}"),
        }
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
    /// Files: the chunk size the data was cut at, if not the one inherited.
    pub chunk_size: Option<u32>,
}

impl NewAttrs {
    /// Default attributes for a new file.
    pub fn file() -> Self {
        NewAttrs { mode: 0o644, uid: 0, gid: 0, chunk_size: None }
    }
    /// Default attributes for a new directory.
    pub fn dir() -> Self {
        NewAttrs { mode: 0o755, uid: 0, gid: 0, chunk_size: None }
    }
}

/// Attribute changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetAttrs {
    /// New permission bits (only the low 12 bits are kept).
    pub mode: Option<u32>,
    /// New owner.
    pub uid: Option<u32>,
    /// New group.
    pub gid: Option<u32>,
    /// New access time (ns since the epoch).
    pub atime: Option<i64>,
    /// New modification time (ns since the epoch).
    pub mtime: Option<i64>,
    /// New size: cut, or extended with zeros (files only).
    pub size: Option<u64>,
}

/// When setting an extended attribute: whether it must exist already, or must not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum XattrMode {
    /// Create or replace.
    #[default]
    Any,
    /// Fail with `exists` if it is set (`XATTR_CREATE`).
    Create,
    /// Fail with `not_found` if it is not set (`XATTR_REPLACE`).
    Replace,
}

/// Longest extended attribute name, in bytes (as Linux).
pub const XATTR_NAME_MAX: usize = 255;
/// Largest extended attribute value, in bytes (as Linux).
pub const XATTR_VALUE_MAX: usize = 64 << 10;
/// Most extended attributes one inode may carry.
pub const XATTRS_PER_INODE: usize = 1024;

/// A metadata mutation in the Raft log. Each is applied atomically: all of it or none of it.
///
/// Clients can only ever send a [`ClientCommand`] (the client door decodes nothing else);
/// [`ClusterCommand`]s are proposed by nodes themselves, so a client write of a ledger or
/// membership command cannot even be expressed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// A namespace or file operation, as a client asked for it.
    Client(ClientCommand),
    /// The cluster's own bookkeeping.
    Cluster(ClusterCommand),
}

impl From<ClientCommand> for Command {
    fn from(c: ClientCommand) -> Self {
        Command::Client(c)
    }
}

impl From<ClusterCommand> for Command {
    fn from(c: ClusterCommand) -> Self {
        Command::Cluster(c)
    }
}

/// A namespace or file operation a client may ask for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientCommand {
    /// Create a directory (and, with `parents`, missing ancestors; an existing dir is then fine).
    Mkdir {
        /// The directory (a path or a name in a directory).
        at: Target,
        /// Create missing ancestors, and accept an existing directory.
        parents: bool,
        /// Attributes of created directories.
        attrs: NewAttrs,
    },
    /// Create a file, or atomically replace a file's whole content (the commit step of every
    /// whole-file write). With [`Target::Ino`] the file is the inode, whatever its names.
    Commit {
        /// The file.
        at: Target,
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
    /// Replace bytes `offset..offset + len(data)` of an existing file with `data` (inline
    /// bytes on an inline file that stays small, extents otherwise), extending it if needed.
    Write {
        /// The file.
        at: Target,
        /// If set, the file must currently have this version.
        base_version: Option<u64>,
        /// Where the data goes; `None` appends at the end as of this command (`O_APPEND`).
        offset: Option<u64>,
        /// The bytes: [`Content::Inline`] or [`Content::Extents`].
        data: Content,
    },
    /// Make `at` a file of the sources' extents in order, without copying a byte, and remove
    /// the sources, in one step.
    Concat {
        /// The file made (created, or replaced if it is a file).
        at: Target,
        /// The sources: files whose content is extents (or empty).
        sources: Vec<Target>,
    },
    /// Create a symbolic link.
    Symlink {
        /// The link.
        at: Target,
        /// Where it points (not interpreted).
        target: String,
    },
    /// Give a file or symlink one more name.
    Link {
        /// The existing inode.
        from: Target,
        /// The new name.
        to: Target,
    },
    /// Remove a name: a file's (its inode goes with its last name), a symlink, or an empty
    /// directory; `recursive` removes a whole tree.
    Remove {
        /// What to remove.
        at: Target,
        /// Remove non-empty directories with everything below.
        recursive: bool,
    },
    /// Atomically move `from` to `to`, replacing a file or empty directory there.
    Rename {
        /// Source.
        from: Target,
        /// Destination.
        to: Target,
    },
    /// Change attributes (mode, owner, times, size); ctime follows as POSIX says.
    SetAttr {
        /// The inode.
        at: Target,
        /// What changes.
        attrs: SetAttrs,
    },
    /// Set an extended attribute.
    SetXattr {
        /// The inode.
        at: Target,
        /// Its name (1..=255 bytes).
        name: String,
        /// Its value (at most 64 KiB).
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
        /// Create, replace, or either.
        mode: XattrMode,
    },
    /// Remove an extended attribute.
    RemoveXattr {
        /// The inode.
        at: Target,
        /// Its name.
        name: String,
    },
    /// Open a handle on an inode: while any handle is open, an inode that loses its last
    /// name stays (on the orphan list) and can be read and written by number; answers the
    /// inode.
    Open {
        /// The inode (a path is resolved once, here).
        at: Target,
        /// The handle's id, chosen by the client (random).
        handle: u64,
        /// How long the handle lives without a renewal (ns).
        lease: i64,
    },
    /// Extend handles' leases to `lease` from now (handles already gone are skipped).
    Renew {
        /// (inode, handle) pairs.
        handles: Vec<(u64, u64)>,
        /// The new lease (ns).
        lease: i64,
    },
    /// Close handles; an orphan whose last handle closes is freed. With `expired_only`, only
    /// handles whose lease has run out are closed (the reaper's form).
    Close {
        /// (inode, handle) pairs.
        handles: Vec<(u64, u64)>,
        /// Close only handles whose lease ended.
        expired_only: bool,
    },
    /// Set a directory's redundancy policy and/or chunk size.
    SetDirPolicy {
        /// The directory.
        at: Target,
        /// New policy, if changing.
        policy: Option<Policy>,
        /// New chunk size, if changing.
        chunk_size: Option<u32>,
    },
    /// Take a lock on every item, or on none (`locked` if one conflicts with a live lock);
    /// answers the lock.
    Lock {
        /// Its id, chosen at random by the node that took the request.
        id: u64,
        /// The access key asking.
        owner: String,
        /// Shared or exclusive.
        mode: LockMode,
        /// What it covers.
        items: Vec<LockItem>,
        /// Its lifetime (ns).
        ttl: i64,
    },
    /// Extend a live lock's lifetime to `ttl` from now; answers the lock.
    RenewLock {
        /// The lock.
        id: u64,
        /// The key asking: must be the lock's owner (`None`: an admin, anyone's lock).
        owner: Option<String>,
        /// The new lifetime (ns).
        ttl: i64,
    },
    /// Release a lock (an expired one too).
    Unlock {
        /// The lock.
        id: u64,
        /// The key asking: must be the lock's owner (`None`: an admin, anyone's lock).
        owner: Option<String>,
    },
    /// Operations applied all or none, in order, in one step (each may be guarded, or a lock
    /// command; not a batch). The first refusal undoes the others and answers
    /// [`Reply::BatchFailed`].
    Batch {
        /// The operations (1 to [`BATCH_MAX`]).
        ops: Vec<ClientCommand>,
    },
    /// A command with the locks, fencing token and preconditions its writer presents, all
    /// checked in the same step as the command.
    Guarded {
        /// What the writer presents.
        guard: Guard,
        /// The command (not itself guarded, nor a lock command).
        cmd: Box<ClientCommand>,
    },
    /// Keep the previous `versions` versions of every file below a directory (0: none;
    /// inherited like policies, at most [`VERSIONS_MAX`]).
    SetDirVersions {
        /// The directory.
        at: Target,
        /// How many earlier versions each file keeps.
        versions: u32,
    },
    /// Make version `version` of a file its content again, as a new commit (the content it
    /// replaces becomes a version in turn); a deleted file is created again at its name.
    Restore {
        /// The file (a name, for a deleted file).
        at: Target,
        /// The version to bring back.
        version: u64,
    },
    /// Forget kept version `version` of a file (never its current content) and its chunk
    /// references; a deleted file whose last kept version goes loses its grave.
    DropVersion {
        /// The file (a name, for a deleted file).
        at: Target,
        /// The version to forget.
        version: u64,
    },
}

/// Most earlier versions a directory may ask its files to keep.
pub const VERSIONS_MAX: u32 = 1000;

/// One version of a file, as its history lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionInfo {
    /// The version number (the inode's `version` when it was current).
    pub version: u64,
    /// Its size in bytes.
    pub size: u64,
    /// When it was written (ns since the epoch).
    pub mtime: i64,
    /// True for the mark a deletion leaves.
    pub deleted: bool,
    /// True for the file's current content.
    pub current: bool,
}

/// The cluster's own bookkeeping, proposed only by nodes: the durability ledger, node and
/// worker states, garbage collection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClusterCommand {
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
    /// Add an access key (its name must be new).
    PutKey {
        /// The key, its secret sealed.
        key: crate::access::AccessKey,
    },
    /// Remove the access key with this name.
    DeleteKey {
        /// The key's name.
        name: String,
    },
    /// Switch file `ino`, still at `version`, to erasure-coded `policy` in one step: the
    /// file's policy and its chunks' become `policy` (a chunk other files share keeps the
    /// stronger of the two). Shards missing then are made by the archiving node (or repair);
    /// the copies become surplus, released once the chunk has all its shards.
    Archive {
        /// The file.
        ino: u64,
        /// The version it had when the archive looked at it (`conflict` if it changed since).
        version: u64,
        /// The `ec:K+M` policy.
        policy: Policy,
    },
}

/// One fact for the durability ledger: `node` holds a verified `part` of chunk `id` of `len`
/// bytes (`held`), or no longer holds a usable one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HolderChange {
    /// The chunk.
    pub id: ChunkId,
    /// The node the fact is about.
    pub node: u64,
    /// Which copy or shard.
    pub part: Part,
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
    /// The lock taken or renewed.
    Lock(LockInfo),
    /// For [`ClientCommand::Batch`]: every operation's answer, in order.
    Batch(Vec<Reply>),
    /// For [`ClientCommand::Batch`]: operation `index` was refused, so nothing changed.
    BatchFailed {
        /// Which operation.
        index: u32,
        /// Why.
        error: ApiError,
    },
}

/// Most operations in one [`ClientCommand::Batch`].
pub const BATCH_MAX: usize = 1000;

/// The result of applying a command: state machine failures are answers, not crashes.
pub type ApplyResult = Result<Reply, ApiError>;
