//! Locks with lifetimes and the guards a write may carry: the lock service's vocabulary.
//!
//! A lock covers one or more paths (all granted atomically, or none), shared or exclusive,
//! optionally only a byte range of each. It lives `ttl` from its grant or last renewal, as
//! judged by the clock reading carried in the Raft entry (the leader's), so clients' clocks
//! never matter; a lock whose lifetime passed may be taken by anyone. Every grant gets a
//! fencing token from one cluster-wide counter, so tokens increase strictly per path.
//!
//! Whole-path exclusive locks are mandatory: writes, deletes and renames of such a path by
//! anyone not presenting the lock's id fail with `locked`. Shared and byte-range locks are
//! advisory (they conflict only with other lock requests), as POSIX record locks are.
//!
//! A [`Guard`] rides along with a client command: the locks the writer presents, its fencing
//! token, and preconditions on the target's ETag and modification time, all checked in the
//! same apply that performs the write.

use crate::path::FsPath;
use crate::wire::{ClientCommand, Target};
use crate::{ApiError, ErrorCode};
use serde::{Deserialize, Serialize};

/// Most paths one lock may cover.
pub const MAX_LOCK_PATHS: usize = 256;
/// Shortest lock lifetime, in seconds.
pub const MIN_TTL_SECS: u64 = 1;
/// Longest lock lifetime, in seconds (a holder renews long before).
pub const MAX_TTL_SECS: u64 = 86_400;
/// Longest owner name recorded with a lock.
pub const MAX_OWNER: usize = 64;
/// Most locks presented with one write.
pub const MAX_PRESENTED: usize = 16;
/// Most ETags in one `If-Match`.
pub const MAX_ETAGS: usize = 16;

/// Shared (readers) or exclusive (one writer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LockMode {
    /// Compatible with other shared locks.
    Shared,
    /// Compatible with nothing.
    Exclusive,
}

impl LockMode {
    /// Lowercase name used in JSON and CLI output.
    pub fn as_str(self) -> &'static str {
        match self {
            LockMode::Shared => "shared",
            LockMode::Exclusive => "exclusive",
        }
    }
}

/// Bytes `start..start + len` of a file; `len` 0 means to the end of the file, as `fcntl`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// Length; 0: to the end (of any size).
    pub len: u64,
}

impl ByteRange {
    fn end(self) -> u64 {
        if self.len == 0 {
            u64::MAX
        } else {
            self.start.saturating_add(self.len)
        }
    }

    /// True if the two ranges share a byte.
    pub fn overlaps(self, other: ByteRange) -> bool {
        self.start < other.end() && other.start < self.end()
    }
}

/// What a lock item names: a path (it need not exist: a lock may guard a name about to be
/// created), or an inode whatever its names (the form a mount's `flock`/`fcntl` locks take).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LockOn {
    /// A path from the root.
    Path(FsPath),
    /// An inode by number.
    Ino(u64),
}

impl std::fmt::Display for LockOn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockOn::Path(p) => write!(f, "{p}"),
            LockOn::Ino(i) => write!(f, "inode {i}"),
        }
    }
}

/// One thing a lock covers: a path or an inode, whole or a byte range of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockItem {
    /// What it names.
    pub on: LockOn,
    /// Only these bytes of it (`None`: the whole).
    pub range: Option<ByteRange>,
}

impl LockItem {
    /// An item naming `path`.
    pub fn path(path: FsPath, range: Option<ByteRange>) -> Self {
        LockItem { on: LockOn::Path(path), range }
    }

    /// The path it names, if it names one.
    pub fn on_path(&self) -> Option<&FsPath> {
        match &self.on {
            LockOn::Path(p) => Some(p),
            LockOn::Ino(_) => None,
        }
    }

    /// True if locks of `mode_a` on `self` and `mode_b` on `other` (the same object) exclude
    /// each other.
    pub fn conflicts(&self, mode_a: LockMode, other: &LockItem, mode_b: LockMode) -> bool {
        let both_shared = mode_a == LockMode::Shared && mode_b == LockMode::Shared;
        let overlap = match (self.range, other.range) {
            (Some(a), Some(b)) => a.overlaps(b),
            _ => true,
        };
        !both_shared && overlap
    }
}

/// A granted lock, as the metadata keeps it and listings show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    /// Its id: presenting it lets writes through its exclusive paths.
    pub id: u64,
    /// The access key that took it.
    pub owner: String,
    /// Shared or exclusive.
    pub mode: LockMode,
    /// What it covers.
    pub items: Vec<LockItem>,
    /// Its fencing token (from one counter: strictly increasing over all grants).
    pub fence: u64,
    /// Its lifetime, as asked (ns).
    pub ttl: i64,
    /// When it ends unless renewed (ns since the epoch, by the leader's clock).
    pub expires: i64,
}

impl LockInfo {
    /// True while its lifetime has not passed at `now`.
    pub fn live(&self, now: i64) -> bool {
        self.expires > now
    }

    /// The id as clients see it: 16 hex digits.
    pub fn id_hex(&self) -> String {
        lock_id_hex(self.id)
    }
}

/// A lock id as clients see it: 16 hex digits.
pub fn lock_id_hex(id: u64) -> String {
    format!("{id:016x}")
}

/// Parses a lock id from its 16 hex digits.
pub fn parse_lock_id(s: &str) -> Result<u64, ApiError> {
    let bad = || ApiError::new(ErrorCode::InvalidArgument, format!("{:?} is not a lock id", clip(s)));
    if s.len() != 16 {
        return Err(bad());
    }
    u64::from_str_radix(s, 16).map_err(|_| bad())
}

fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}

/// A lock lifetime in seconds, checked and converted to nanoseconds.
pub fn ttl_ns(secs: u64) -> Result<i64, ApiError> {
    if !(MIN_TTL_SECS..=MAX_TTL_SECS).contains(&secs) {
        let msg = format!("ttl must be {MIN_TTL_SECS} to {MAX_TTL_SECS} seconds, not {secs}");
        return Err(ApiError::new(ErrorCode::InvalidArgument, msg));
    }
    Ok(secs as i64 * 1_000_000_000)
}

/// What a lock request asks for, checked before it is proposed.
pub fn check_request(items: &[LockItem], owner: &str, ttl: i64) -> Result<(), ApiError> {
    let bad = |m: String| Err(ApiError::new(ErrorCode::InvalidArgument, m));
    if items.is_empty() {
        return bad("a lock needs at least one path".into());
    }
    if items.len() > MAX_LOCK_PATHS {
        return bad(format!("a lock covers at most {MAX_LOCK_PATHS} paths, not {}", items.len()));
    }
    if owner.len() > MAX_OWNER {
        return bad(format!("lock owner longer than {MAX_OWNER} bytes"));
    }
    if !(MIN_TTL_SECS as i64 * 1_000_000_000..=MAX_TTL_SECS as i64 * 1_000_000_000).contains(&ttl) {
        return bad(format!("ttl must be {MIN_TTL_SECS} to {MAX_TTL_SECS} seconds"));
    }
    for (i, a) in items.iter().enumerate() {
        if items[..i].iter().any(|b| b.on == a.on) {
            return bad(format!("{} is named twice in one lock", a.on));
        }
    }
    Ok(())
}

/// A precondition on a write's target, checked atomically with the write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Precondition {
    /// `If-Match: *`: the target exists.
    Exists,
    /// `If-Match: "e1", "e2"`: the target exists and its ETag is one of these.
    EtagIn(Vec<String>),
    /// `If-None-Match: *`: the target does not exist (create only).
    Absent,
    /// `If-None-Match: "e1"`: the target is absent or its ETag is none of these.
    EtagNotIn(Vec<String>),
    /// `If-Unmodified-Since`: the target exists and was last modified at or before this time
    /// (seconds since the epoch, the resolution of HTTP dates).
    UnmodifiedSince(i64),
    /// The lock with this id is live (a batch item's "lock held").
    LockHeld(u64),
}

/// What a write carries besides its command: the locks it presents, its fencing token, and
/// preconditions on its (first) target.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Guard {
    /// Ids of locks the writer holds: their exclusive paths let this write through.
    pub locks: Vec<u64>,
    /// The writer's fencing token: the write is refused unless a live lock with this token
    /// covers its target (a writer whose lock expired, or was taken over, is stale).
    pub fence: Option<u64>,
    /// Preconditions on the target, all of which must hold.
    pub preconditions: Vec<Precondition>,
}

impl Guard {
    /// True if the guard asks for nothing.
    pub fn is_empty(&self) -> bool {
        self.locks.is_empty() && self.fence.is_none() && self.preconditions.is_empty()
    }

    /// `cmd` as it is sent with this guard: wrapped, unless the guard asks for nothing.
    pub fn wrap(&self, cmd: ClientCommand) -> ClientCommand {
        if self.is_empty() {
            return cmd;
        }
        ClientCommand::Guarded { guard: self.clone(), cmd: Box::new(cmd) }
    }

    /// Checks the guard's sizes.
    pub fn check(&self) -> Result<(), ApiError> {
        let bad = |m: String| Err(ApiError::new(ErrorCode::InvalidArgument, m));
        if self.locks.len() > MAX_PRESENTED {
            return bad(format!("at most {MAX_PRESENTED} locks may be presented with one write"));
        }
        if self.preconditions.len() > 4 {
            return bad("at most 4 preconditions on one write".into());
        }
        for p in &self.preconditions {
            if let Precondition::EtagIn(tags) | Precondition::EtagNotIn(tags) = p {
                if tags.is_empty() || tags.len() > MAX_ETAGS || tags.iter().any(|t| t.len() > 128) {
                    return bad(format!("an ETag list holds 1 to {MAX_ETAGS} tags of at most 128 bytes"));
                }
            }
        }
        Ok(())
    }
}

impl ClientCommand {
    /// The targets this command changes, each with whether everything below it changes too
    /// (a recursive remove, a rename of a directory). Locks are enforced on all of them;
    /// preconditions and the fencing token apply to the first.
    pub fn written(&self) -> Vec<(&Target, bool)> {
        use ClientCommand as C;
        match self {
            C::Mkdir { at, .. }
            | C::Commit { at, .. }
            | C::Write { at, .. }
            | C::Symlink { at, .. }
            | C::SetAttr { at, .. }
            | C::SetXattr { at, .. }
            | C::RemoveXattr { at, .. }
            | C::SetDirPolicy { at, .. }
            | C::SetDirVersions { at, .. }
            | C::Restore { at, .. }
            | C::DropVersion { at, .. } => vec![(at, false)],
            C::Concat { at, sources } => {
                std::iter::once((at, false)).chain(sources.iter().map(|s| (s, false))).collect()
            }
            C::Link { from, to } => vec![(to, false), (from, false)],
            C::Remove { at, recursive } => vec![(at, *recursive)],
            C::Rename { from, to } => vec![(from, true), (to, true)],
            C::Guarded { cmd, .. } => cmd.written(),
            C::Batch { ops } => ops.iter().flat_map(ClientCommand::written).collect(),
            C::Open { .. }
            | C::Renew { .. }
            | C::Close { .. }
            | C::Lock { .. }
            | C::RenewLock { .. }
            | C::Unlock { .. } => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(path: &str, range: Option<(u64, u64)>) -> LockItem {
        LockItem::path(path.parse().unwrap(), range.map(|(start, len)| ByteRange { start, len }))
    }

    #[test]
    fn conflicts_follow_modes_and_ranges() {
        use LockMode::*;
        let whole = item("/a", None);
        let head = item("/a", Some((0, 10)));
        let tail = item("/a", Some((10, 0)));
        assert!(!whole.conflicts(Shared, &whole, Shared));
        assert!(whole.conflicts(Shared, &whole, Exclusive));
        assert!(whole.conflicts(Exclusive, &head, Shared));
        assert!(!head.conflicts(Exclusive, &tail, Exclusive), "0..10 and 10.. do not overlap");
        assert!(item("/a", Some((5, 10))).conflicts(Exclusive, &tail, Shared));
        assert!(item("/a", Some((u64::MAX - 1, 0))).conflicts(Exclusive, &tail, Exclusive));
    }

    #[test]
    fn requests_are_bounded() {
        let ok = vec![item("/a", None), item("/b", None)];
        assert!(check_request(&ok, "k", ttl_ns(30).unwrap()).is_ok());
        assert!(check_request(&[], "k", ttl_ns(30).unwrap()).is_err());
        assert!(check_request(&[item("/a", None), item("/a", Some((0, 1)))], "k", ttl_ns(1).unwrap()).is_err());
        let many: Vec<_> = (0..=MAX_LOCK_PATHS).map(|i| item(&format!("/f{i}"), None)).collect();
        assert!(check_request(&many, "k", ttl_ns(30).unwrap()).is_err());
        assert!(ttl_ns(0).is_err() && ttl_ns(MAX_TTL_SECS + 1).is_err() && ttl_ns(1).is_ok());
        assert!(check_request(&ok, "k", 0).is_err());
        assert_eq!(parse_lock_id(&lock_id_hex(0xdead_beef)).unwrap(), 0xdead_beef);
        assert!(parse_lock_id("xyz").is_err() && parse_lock_id("00000000000000zz").is_err());
    }
}
