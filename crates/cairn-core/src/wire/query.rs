//! Queries: the read-only questions a client asks the metadata, and their answers.

use super::{Inode, Target, VersionInfo};
use crate::lock::LockInfo;
use crate::path::FsPath;
use crate::policy::Policy;
use crate::ApiError;
use serde::{Deserialize, Serialize};

/// A read-only question to the metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Query {
    /// The inode at a target.
    Stat(Target),
    /// One page of a directory's entries with their inodes, in name order.
    List {
        /// The directory.
        at: Target,
        /// Start after this name (a page's `next`); `None` starts at the beginning.
        after: Option<String>,
        /// Most entries to return (clipped to [`LIST_MAX`]).
        limit: u32,
    },
    /// How to write a new file at this target: chunk size and policy inherited from above
    /// (for an existing file, its own).
    WritePlan(Target),
    /// One extended attribute's value.
    GetXattr {
        /// The inode.
        at: Target,
        /// The attribute's name.
        name: String,
    },
    /// The names of an inode's extended attributes.
    ListXattrs(Target),
    /// A file's versions, newest first: its current content, then the ones kept (also for
    /// a deleted file, by its name).
    Versions(Target),
    /// One version of a file, as an inode whose content is that version's.
    Version {
        /// The file (a name, for a deleted file).
        at: Target,
        /// The version.
        version: u64,
    },
    /// Live locks: those on one path (every lock naming it), on one inode (every lock
    /// naming it, or a path that named it when the lock was taken), or all, in id order.
    Locks {
        /// Only locks naming this path.
        path: Option<FsPath>,
        /// Only locks on this inode (when `path` is `None`).
        ino: Option<u64>,
        /// Start after this lock id (a page's `next`).
        after: Option<u64>,
        /// Most locks to return (clipped to [`LIST_MAX`]).
        limit: u32,
    },
    /// The names in a directory that keep the history of a deleted file (graves), in name
    /// order.
    Graves {
        /// The directory.
        at: Target,
        /// Start after this name.
        after: Option<String>,
        /// Most names to return (clipped to [`LIST_MAX`]).
        limit: u32,
    },
    /// Several queries answered from one read of the metadata, in order (at most
    /// [`QUERY_BATCH_MAX`], none of them a batch): each answer or refusal on its own.
    Batch(Vec<Query>),
}

/// Most queries in one [`Query::Batch`].
pub const QUERY_BATCH_MAX: usize = 16;

/// Default number of entries in a listing page.
pub const LIST_DEFAULT: u32 = 1000;
/// Most entries in one listing page.
pub const LIST_MAX: u32 = 10_000;

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
    /// For [`Query::List`]: the page, and the name to continue after (`None` at the end).
    Entries {
        /// The entries, in name order.
        entries: Vec<DirEntry>,
        /// Pass as `after` for the next page; `None` when this page is the last.
        next: Option<String>,
    },
    /// For [`Query::WritePlan`].
    Plan(WritePlan),
    /// For [`Query::GetXattr`].
    Xattr(#[serde(with = "serde_bytes")] Vec<u8>),
    /// For [`Query::ListXattrs`].
    Names(Vec<String>),
    /// For [`Query::Versions`].
    Versions(Vec<VersionInfo>),
    /// For [`Query::Locks`]: the page, and the id to continue after (`None` at the end).
    Locks {
        /// The live locks, in id order.
        locks: Vec<LockInfo>,
        /// Pass as `after` for the next page.
        next: Option<u64>,
    },
    /// For [`Query::Batch`]: each query's answer or refusal, in order.
    Batch(Vec<Result<QueryReply, ApiError>>),
}
