//! Whole-state snapshots, streamed: every table written row by row to a writer, and read back
//! row by row, so neither side ever holds a snapshot in memory.
//!
//! Format (see `docs/formats.md`): the magic `CAIRNSNP`, a u16 LE format version, then frames
//! `[table tag u8][length u32 LE][codec-encoded row]`, then an end frame (tag 0, length 32)
//! holding the BLAKE3 of every byte before it. [`validate`] reads a snapshot through and
//! checks every frame, row and the hash before [`import`] is allowed to replace anything.
//! Snapshots are built from a read transaction (redb's MVCC gives a consistent view while
//! writes go on) and installed by replacing every table's content in one write transaction.

use crate::history::{OldVersion, GRAVES, HISTORY, VERSIONING};
use crate::keys::{KEYS, KEY_NAMES};
use crate::locks::{StoredLock, LOCKS, LOCK_EXPIRY, LOCK_INOS, LOCK_PATHS};
use crate::tables::{
    ChunkRecord, CHUNKS, COUNTERS, DIRENTS, HANDLES, HOLDINGS, HOLD_COUNTS, INODES, NODES, ORPHANS, UNREFERENCED,
    WORKERS, XATTRS,
};
use crate::{MetaError, Result};
use cairn_core::access::AccessKey;
use cairn_core::codec::{decode, encode};
use cairn_core::wire::{Inode, NodeState, WorkerSettings};
use redb::{ReadTransaction, ReadableTable, WriteTransaction};
use std::io::{Read, Write};

const MAGIC: &[u8; 8] = b"CAIRNSNP";
/// Snapshot format version.
const VERSION: u16 = 1;
/// Largest frame accepted: an inode with its extents, or a chunk record, is far smaller.
const FRAME_MAX: u32 = 16 << 20;

/// The table a frame belongs to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
enum Tag {
    End = 0,
    Inode = 1,
    Dirent = 2,
    Xattr = 3,
    Handle = 4,
    Orphan = 5,
    Chunk = 6,
    Node = 7,
    Worker = 8,
    Counter = 9,
    Key = 10,
    Lock = 11,
    Versioning = 12,
    History = 13,
    Grave = 14,
}

impl Tag {
    fn of(b: u8) -> Option<Tag> {
        use Tag::*;
        [End, Inode, Dirent, Xattr, Handle, Orphan, Chunk, Node, Worker, Counter, Key, Lock, Versioning, History, Grave]
            .into_iter()
            .find(|t| *t as u8 == b)
    }
}

fn bad(why: impl Into<String>) -> MetaError {
    MetaError::Snapshot(why.into())
}

/// A writer that hashes what passes through.
struct Hashing<W> {
    inner: W,
    hash: blake3::Hasher,
}

impl<W: Write> Hashing<W> {
    fn frame(&mut self, tag: Tag, row: &[u8]) -> Result<()> {
        let len = u32::try_from(row.len()).ok().filter(|n| *n <= FRAME_MAX).ok_or_else(|| bad("row too large"))?;
        let mut head = [0u8; 5];
        head[0] = tag as u8;
        head[1..].copy_from_slice(&len.to_le_bytes());
        for part in [&head[..], row] {
            self.hash.update(part);
            self.inner.write_all(part).map_err(|e| bad(format!("writing: {e}")))?;
        }
        Ok(())
    }
}

/// Writes the whole state machine to `out`.
pub fn export(txn: &ReadTransaction, out: impl Write) -> Result<()> {
    let mut w = Hashing { inner: out, hash: blake3::Hasher::new() };
    let mut header = MAGIC.to_vec();
    header.extend_from_slice(&VERSION.to_le_bytes());
    w.hash.update(&header);
    w.inner.write_all(&header).map_err(|e| bad(format!("writing: {e}")))?;
    for r in txn.open_table(INODES)?.iter()? {
        let (k, v) = r?;
        w.frame(Tag::Inode, &encode(&(k.value(), v.value())))?;
    }
    for r in txn.open_table(DIRENTS)?.iter()? {
        let (k, v) = r?;
        let (p, n) = k.value();
        w.frame(Tag::Dirent, &encode(&(p, n, v.value())))?;
    }
    for r in txn.open_table(XATTRS)?.iter()? {
        let (k, v) = r?;
        let (i, n) = k.value();
        w.frame(Tag::Xattr, &encode(&(i, n, v.value())))?;
    }
    for r in txn.open_table(HANDLES)?.iter()? {
        let (k, v) = r?;
        let (i, h) = k.value();
        w.frame(Tag::Handle, &encode(&(i, h, v.value())))?;
    }
    for r in txn.open_table(ORPHANS)?.iter()? {
        w.frame(Tag::Orphan, &encode(&r?.0.value()))?;
    }
    for r in txn.open_table(CHUNKS)?.iter()? {
        let (k, v) = r?;
        w.frame(Tag::Chunk, &encode(&(k.value(), v.value())))?;
    }
    for r in txn.open_table(NODES)?.iter()? {
        let (k, v) = r?;
        w.frame(Tag::Node, &encode(&(k.value(), v.value())))?;
    }
    for r in txn.open_table(WORKERS)?.iter()? {
        let (k, v) = r?;
        w.frame(Tag::Worker, &encode(&(k.value(), v.value())))?;
    }
    for r in txn.open_table(COUNTERS)?.iter()? {
        let (k, v) = r?;
        w.frame(Tag::Counter, &encode(&(k.value(), v.value())))?;
    }
    for r in txn.open_table(KEYS)?.iter()? {
        let (k, v) = r?;
        w.frame(Tag::Key, &encode(&(k.value(), v.value())))?;
    }
    for r in txn.open_table(LOCKS)?.iter()? {
        let (k, v) = r?;
        w.frame(Tag::Lock, &encode(&(k.value(), v.value())))?;
    }
    for r in txn.open_table(VERSIONING)?.iter()? {
        let (k, v) = r?;
        w.frame(Tag::Versioning, &encode(&(k.value(), v.value())))?;
    }
    for r in txn.open_table(HISTORY)?.iter()? {
        let (k, v) = r?;
        let (ino, version) = k.value();
        w.frame(Tag::History, &encode(&(ino, version, v.value())))?;
    }
    for r in txn.open_table(GRAVES)?.iter()? {
        let (k, v) = r?;
        let (dir, name) = k.value();
        w.frame(Tag::Grave, &encode(&(dir, name, v.value())))?;
    }
    let digest = *w.hash.finalize().as_bytes();
    let mut end = [0u8; 5];
    end[1..].copy_from_slice(&32u32.to_le_bytes());
    w.inner.write_all(&end).and_then(|_| w.inner.write_all(&digest)).map_err(|e| bad(format!("writing: {e}")))?;
    w.inner.flush().map_err(|e| bad(format!("writing: {e}")))
}

/// Reads frames from a snapshot, checking the header, each frame's bounds and the final hash.
struct Frames<R> {
    inner: R,
    hash: blake3::Hasher,
    done: bool,
}

impl<R: Read> Frames<R> {
    fn open(mut inner: R) -> Result<Self> {
        let mut header = [0u8; 10];
        inner.read_exact(&mut header).map_err(|_| bad("too short for a snapshot header"))?;
        if &header[..8] != MAGIC {
            return Err(bad("not a cairn snapshot (bad magic)"));
        }
        let version = u16::from_le_bytes([header[8], header[9]]);
        if version != VERSION {
            return Err(bad(format!("snapshot format {version}, expected {VERSION}")));
        }
        let mut hash = blake3::Hasher::new();
        hash.update(&header);
        Ok(Frames { inner, hash, done: false })
    }

    /// The next row, or `None` after a valid end frame.
    fn next(&mut self, buf: &mut Vec<u8>) -> Result<Option<Tag>> {
        if self.done {
            return Ok(None);
        }
        let mut head = [0u8; 5];
        self.inner.read_exact(&mut head).map_err(|_| bad("truncated: no end frame"))?;
        let tag = Tag::of(head[0]).ok_or_else(|| bad(format!("unknown frame tag {}", head[0])))?;
        let len = u32::from_le_bytes(head[1..].try_into().expect("4 bytes"));
        if len > FRAME_MAX || (tag == Tag::End && len != 32) {
            return Err(bad(format!("frame of {len} bytes out of bounds")));
        }
        buf.resize(len as usize, 0);
        self.inner.read_exact(buf).map_err(|_| bad("truncated frame"))?;
        if tag == Tag::End {
            if self.hash.finalize().as_bytes() != buf.as_slice() {
                return Err(bad("checksum mismatch"));
            }
            self.done = true;
            return Ok(None);
        }
        self.hash.update(&head);
        self.hash.update(buf);
        Ok(Some(tag))
    }
}

/// One decoded row.
enum Row {
    Inode(u64, Vec<u8>),
    Dirent(u64, String, u64),
    Xattr(u64, String, Vec<u8>),
    Handle(u64, u64, i64),
    Orphan(u64),
    Chunk(Vec<u8>, Vec<u8>),
    Node(u64, Vec<u8>),
    Worker(String, Vec<u8>),
    Counter(String, u64),
    Key(String, Vec<u8>, AccessKey),
    Lock(u64, Vec<u8>, StoredLock),
    Versioning(u64, u32),
    History(u64, u64, Vec<u8>),
    Grave(u64, String, u64),
}

/// Decodes a row of table `tag`, checking the records inside it too.
fn row(tag: Tag, b: &[u8]) -> Result<Row> {
    Ok(match tag {
        Tag::Inode => {
            let (ino, v): (u64, Vec<u8>) = decode(b, "snapshot inode")?;
            let inode: Inode = decode(&v, "snapshot inode")?;
            if inode.ino != ino {
                return Err(bad(format!("inode row {ino} holds inode {}", inode.ino)));
            }
            Row::Inode(ino, v)
        }
        Tag::Dirent => {
            let (p, n, c): (u64, String, u64) = decode(b, "snapshot dirent")?;
            cairn_core::validate_name(&n).map_err(|e| bad(e.to_string()))?;
            Row::Dirent(p, n, c)
        }
        Tag::Xattr => {
            let (i, n, v): (u64, String, Vec<u8>) = decode(b, "snapshot xattr")?;
            Row::Xattr(i, n, v)
        }
        Tag::Handle => {
            let (i, h, t) = decode(b, "snapshot handle")?;
            Row::Handle(i, h, t)
        }
        Tag::Orphan => Row::Orphan(decode(b, "snapshot orphan")?),
        Tag::Chunk => {
            let (k, v): (Vec<u8>, Vec<u8>) = decode(b, "snapshot chunk")?;
            if k.len() != 32 {
                return Err(bad("chunk key is not 32 bytes"));
            }
            let _: ChunkRecord = decode(&v, "snapshot chunk record")?;
            Row::Chunk(k, v)
        }
        Tag::Node => {
            let (k, v): (u64, Vec<u8>) = decode(b, "snapshot node")?;
            let _: NodeState = decode(&v, "snapshot node state")?;
            Row::Node(k, v)
        }
        Tag::Worker => {
            let (k, v): (String, Vec<u8>) = decode(b, "snapshot worker")?;
            let _: WorkerSettings = decode(&v, "snapshot worker settings")?;
            Row::Worker(k, v)
        }
        Tag::Counter => {
            let (k, v) = decode(b, "snapshot counter")?;
            Row::Counter(k, v)
        }
        Tag::Key => {
            let (k, v): (String, Vec<u8>) = decode(b, "snapshot key")?;
            let key: AccessKey = decode(&v, "snapshot access key")?;
            key.validate().map_err(|e| bad(e.message))?;
            if key.id != k {
                return Err(bad("key row under another id"));
            }
            Row::Key(k, v, key)
        }
        Tag::Lock => {
            let (k, v): (u64, Vec<u8>) = decode(b, "snapshot lock")?;
            let lock: StoredLock = decode(&v, "snapshot lock record")?;
            if lock.info.id != k || lock.inos.len() != lock.info.items.len() {
                return Err(bad("lock row under another id, or inodes not one per item"));
            }
            Row::Lock(k, v, lock)
        }
        Tag::Versioning => {
            let (k, v) = decode(b, "snapshot versioning")?;
            Row::Versioning(k, v)
        }
        Tag::History => {
            let (ino, version, v): (u64, u64, Vec<u8>) = decode(b, "snapshot version")?;
            let _: OldVersion = decode(&v, "snapshot version record")?;
            Row::History(ino, version, v)
        }
        Tag::Grave => {
            let (dir, name, ino): (u64, String, u64) = decode(b, "snapshot grave")?;
            cairn_core::validate_name(&name).map_err(|e| bad(e.to_string()))?;
            Row::Grave(dir, name, ino)
        }
        Tag::End => unreachable!("end frames are handled by the reader"),
    })
}

/// Reads a snapshot through without changing anything: every frame, every record in it and
/// the checksum must be good, and the root directory and the format counter present.
pub fn validate(input: impl Read) -> Result<()> {
    let mut frames = Frames::open(input)?;
    let mut buf = Vec::new();
    let (mut root, mut format) = (false, false);
    while let Some(tag) = frames.next(&mut buf)? {
        match row(tag, &buf)? {
            Row::Inode(crate::ROOT_INO, _) => root = true,
            Row::Counter(k, v) if k == "format" => format = v == crate::META_FORMAT,
            _ => {}
        }
    }
    if !root || !format {
        return Err(bad("no root directory or no matching format counter"));
    }
    Ok(())
}

/// Replaces the whole state machine with a snapshot made by [`export`]; call [`validate`]
/// on the same bytes first (a failure here aborts the caller's transaction all the same).
pub fn import(txn: &WriteTransaction, input: impl Read) -> Result<()> {
    let mut inodes = txn.open_table(INODES)?;
    let mut dirents = txn.open_table(DIRENTS)?;
    let mut xattrs = txn.open_table(XATTRS)?;
    let mut handles = txn.open_table(HANDLES)?;
    let mut orphans = txn.open_table(ORPHANS)?;
    let mut chunks = txn.open_table(CHUNKS)?;
    let mut holdings = txn.open_table(HOLDINGS)?;
    let mut hold_counts = txn.open_table(HOLD_COUNTS)?;
    let mut unreferenced = txn.open_table(UNREFERENCED)?;
    let mut nodes = txn.open_table(NODES)?;
    let mut workers = txn.open_table(WORKERS)?;
    let mut counters = txn.open_table(COUNTERS)?;
    let mut keys = txn.open_table(KEYS)?;
    let mut key_names = txn.open_table(KEY_NAMES)?;
    let mut locks = txn.open_table(LOCKS)?;
    let mut lock_paths = txn.open_table(LOCK_PATHS)?;
    let mut lock_inos = txn.open_table(LOCK_INOS)?;
    let mut lock_expiry = txn.open_table(LOCK_EXPIRY)?;
    let mut versioning = txn.open_table(VERSIONING)?;
    let mut history = txn.open_table(HISTORY)?;
    let mut graves = txn.open_table(GRAVES)?;
    versioning.retain(|_, _| false)?;
    history.retain(|_, _| false)?;
    graves.retain(|_, _| false)?;
    locks.retain(|_, _| false)?;
    lock_paths.retain(|_, _| false)?;
    lock_inos.retain(|_, _| false)?;
    lock_expiry.retain(|_, _| false)?;
    keys.retain(|_, _| false)?;
    key_names.retain(|_, _| false)?;
    inodes.retain(|_, _| false)?;
    dirents.retain(|_, _| false)?;
    xattrs.retain(|_, _| false)?;
    handles.retain(|_, _| false)?;
    orphans.retain(|_, _| false)?;
    chunks.retain(|_, _| false)?;
    holdings.retain(|_, _| false)?;
    hold_counts.retain(|_, _| false)?;
    unreferenced.retain(|_, _| false)?;
    nodes.retain(|_, _| false)?;
    workers.retain(|_, _| false)?;
    counters.retain(|_, _| false)?;
    let mut frames = Frames::open(input)?;
    let mut buf = Vec::new();
    while let Some(tag) = frames.next(&mut buf)? {
        match row(tag, &buf)? {
            Row::Inode(k, v) => drop(inodes.insert(k, v.as_slice())?),
            Row::Dirent(p, n, c) => drop(dirents.insert((p, n.as_str()), c)?),
            Row::Xattr(i, n, v) => drop(xattrs.insert((i, n.as_str()), v.as_slice())?),
            Row::Handle(i, h, t) => drop(handles.insert((i, h), t)?),
            Row::Orphan(i) => drop(orphans.insert(i, ())?),
            Row::Chunk(k, v) => {
                // The per-node index is rebuilt from the records rather than trusted.
                let rec: ChunkRecord = decode(&v, "chunk record")?;
                // So are the holder counts; the counters come with the snapshot.
                for node in rec.nodes() {
                    holdings.insert((node, k.as_slice()), ())?;
                }
                if let Some((h, w)) = rec.count_key() {
                    hold_counts.insert((h, w, k.as_slice()), ())?;
                }
                if let Some(t) = rec.zero_key() {
                    unreferenced.insert((t, k.as_slice()), ())?;
                }
                chunks.insert(k.as_slice(), v.as_slice())?;
            }
            Row::Node(k, v) => drop(nodes.insert(k, v.as_slice())?),
            Row::Worker(k, v) => drop(workers.insert(k.as_str(), v.as_slice())?),
            Row::Counter(k, v) => drop(counters.insert(k.as_str(), v)?),
            Row::Key(k, v, key) => {
                key_names.insert(key.name.as_str(), k.as_str())?;
                keys.insert(k.as_str(), v.as_slice())?;
            }
            Row::Lock(k, v, lock) => {
                // The indexes are rebuilt from the record rather than trusted.
                for path in lock.info.items.iter().filter_map(cairn_core::lock::LockItem::on_path) {
                    lock_paths.insert((path.to_string().as_str(), k), ())?;
                }
                for ino in lock.inos.iter().flatten() {
                    lock_inos.insert((*ino, k), ())?;
                }
                lock_expiry.insert((lock.info.expires, k), ())?;
                locks.insert(k, v.as_slice())?;
            }
            Row::Versioning(k, v) => drop(versioning.insert(k, v)?),
            Row::History(ino, version, v) => drop(history.insert((ino, version), v.as_slice())?),
            Row::Grave(dir, name, ino) => drop(graves.insert((dir, name.as_str()), ino)?),
        }
    }
    drop(counters);
    drop(chunks);
    crate::usage::count_once(txn)
}
