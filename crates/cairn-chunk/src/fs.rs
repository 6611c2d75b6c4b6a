//! The file-system chunk store: one file per chunk under `<root>/<first byte hex>/<id hex>`,
//! and one per shard of an erasure-coded chunk under `<root>/<first byte hex>/<id hex>.s<index>-<k>+<m>`.
//!
//! Write protocol (each step is needed for crash safety):
//! 1. write header + bytes to `<root>/tmp/<random>` — a crash here leaves only a temp file,
//!    removed at the next open;
//! 2. `fsync` the temp file — the bytes are on disk before any name points at them;
//! 3. `rename` it to its final name — atomic, so readers see the whole chunk or nothing;
//! 4. `fsync` the directory — the new name itself survives a power cut.
//!
//! Every file starts with a 64-byte header (magic, version, part, length, chunk id, CRC32C of
//! the data) so scrub can verify a chunk file on its own. Local reads check the BLAKE3; reads for
//! transfer check the CRC32C (the receiver checks the BLAKE3), as HDFS clients verify
//! checksums end to end. Files that fail verification are moved to `<root>/quarantine/`.

use crate::{ChunkError, ChunkInfo, ChunkStore, Part, PutOutcome, Result, Shard};
use cairn_core::ChunkId;
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::SystemTime;

/// Magic bytes at the start of every chunk file.
const MAGIC: &[u8; 8] = b"CAIRNCHK";
/// Chunk file format version.
const VERSION: u16 = 1;
/// Header length in bytes.
const HEADER_LEN: usize = 64;
/// Directory under the root where chunk files that failed verification are moved.
const QUARANTINE: &str = "quarantine";
/// Reads are hashed in slices of this size, while each slice is still in cache.
const READ_SLICE: usize = 256 << 10;

/// Chunks as files in a directory tree.
pub struct FsChunkStore {
    root: PathBuf,
    /// Orders "touch" against "delete if old" (see [`ChunkStore::touch`]), and guards the
    /// index of the shards held per chunk, so a touch finds a chunk's shards without looking
    /// for each possible one on disk.
    age_lock: Mutex<HashMap<ChunkId, Vec<Shard>>>,
    /// Bytes of chunk data stored (counted at open, kept up to date).
    used: AtomicU64,
}

fn io_err(e: io::Error) -> ChunkError {
    if e.kind() == io::ErrorKind::StorageFull || e.raw_os_error() == Some(28) {
        ChunkError::NoSpace
    } else {
        ChunkError::Io(e)
    }
}

fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The header bytes 10..14 of a part: kind (0 copy, 1 shard), shard index, k, m.
fn part_bytes(part: Part) -> [u8; 4] {
    match part {
        Part::Copy => [0; 4],
        Part::Shard(s) => [1, s.index, s.k, s.m],
    }
}

fn header(id: &ChunkId, part: Part, data: &[u8]) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(MAGIC);
    h[8..10].copy_from_slice(&VERSION.to_le_bytes());
    h[10..14].copy_from_slice(&part_bytes(part));
    h[16..24].copy_from_slice(&(data.len() as u64).to_le_bytes());
    h[24..56].copy_from_slice(&id.0);
    h[56..60].copy_from_slice(&crc32c::crc32c(data).to_le_bytes());
    h
}

/// How thoroughly a read checks the bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Check {
    /// BLAKE3 of the content against the id.
    Hash,
    /// CRC32C of the content against the header.
    Crc,
}

impl FsChunkStore {
    /// Opens (creating if needed) a store rooted at `root`, removing temp files left by a crash.
    pub fn open(root: &Path) -> Result<Self> {
        let tmp = root.join("tmp");
        if tmp.exists() {
            fs::remove_dir_all(&tmp)?;
        }
        fs::create_dir_all(&tmp)?;
        fs::create_dir_all(root.join(QUARANTINE))?;
        for b in 0..=255u8 {
            fs::create_dir_all(root.join(format!("{b:02x}")))?;
        }
        fsync_dir(root)?;
        let store =
            FsChunkStore { root: root.to_path_buf(), age_lock: Mutex::new(HashMap::new()), used: AtomicU64::new(0) };
        let (mut used, mut shards) = (0, HashMap::new());
        for c in store.list()? {
            used += fs::metadata(store.part_path(&c.id, c.part))?.len().saturating_sub(HEADER_LEN as u64);
            if let Part::Shard(s) = c.part {
                shards.entry(c.id).or_insert_with(Vec::new).push(s);
            }
        }
        store.used.store(used, Ordering::Relaxed);
        *store.age_lock.lock().expect("age lock") = shards;
        Ok(store)
    }

    pub(crate) fn path_of(&self, id: &ChunkId) -> PathBuf {
        part_path(&self.root, id, Part::Copy)
    }

    fn part_path(&self, id: &ChunkId, part: Part) -> PathBuf {
        part_path(&self.root, id, part)
    }

    /// Stores one part durably (see the module doc for the steps).
    fn put_part(&self, id: &ChunkId, part: Part, data: &[u8]) -> Result<PutOutcome> {
        let path = self.part_path(id, part);
        // Dedup: refresh the age so a GC racing with this write keeps the part.
        if self.touch_path(&path)? {
            return Ok(PutOutcome::Existed);
        }
        let tmp = self.root.join("tmp").join(format!("{}.{:016x}", id.to_hex(), rand::random::<u64>()));
        let written = (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(&header(id, part, data))?;
            f.write_all(data)?;
            f.sync_all()
        })();
        // Under the age lock, so two writers of the same part (a chain write racing a
        // repair copy) count its bytes once: the second finds the first's file and drops its
        // own. Deletions take the same lock.
        let result = written.and_then(|()| {
            let mut shards = self.age_lock.lock().expect("age lock");
            if path.exists() {
                fs::remove_file(&tmp)?;
                return Ok(PutOutcome::Existed);
            }
            fs::rename(&tmp, &path)?;
            fsync_dir(path.parent().expect("chunk path has a parent"))?;
            self.used.fetch_add(data.len() as u64, Ordering::Relaxed);
            if let Part::Shard(s) = part {
                shards.entry(*id).or_default().push(s);
            }
            Ok(PutOutcome::Stored)
        });
        result.map_err(|e| {
            let _ = fs::remove_file(&tmp);
            io_err(e)
        })
    }

    /// Refreshes one file's age; false if it is not there.
    fn touch_path(&self, path: &Path) -> Result<bool> {
        let _guard = self.age_lock.lock().expect("age lock");
        touch_file(path)
    }

    /// Removes one part's file (under the age lock, held by the caller as `shards`) and
    /// accounts for it; `aside`: move it there instead (quarantine). False if it was not there.
    fn remove_part(
        &self,
        shards: &mut HashMap<ChunkId, Vec<Shard>>,
        id: &ChunkId,
        part: Part,
        aside: Option<PathBuf>,
    ) -> Result<bool> {
        let path = self.part_path(id, part);
        let size = match fs::metadata(&path) {
            Ok(m) => m.len().saturating_sub(HEADER_LEN as u64),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(io_err(e)),
        };
        let removed = match aside {
            Some(to) => fs::rename(&path, to),
            None => fs::remove_file(&path),
        };
        match removed {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(io_err(e)),
        }
        self.used.fetch_sub(size, Ordering::Relaxed);
        if let Part::Shard(s) = part {
            if let Some(held) = shards.get_mut(id) {
                held.retain(|h| *h != s);
                if held.is_empty() {
                    shards.remove(id);
                }
            }
        }
        fsync_dir(path.parent().expect("chunk path has a parent"))?;
        Ok(true)
    }
}

/// Refreshes a file's modification time; false if it is not there.
fn touch_file(path: &Path) -> Result<bool> {
    match OpenOptions::new().append(true).open(path) {
        Ok(f) => {
            f.set_modified(SystemTime::now()).map_err(io_err)?;
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_err(e)),
    }
}

/// Where a part of chunk `id` lives under a store's `root`.
fn part_path(root: &Path, id: &ChunkId, part: Part) -> PathBuf {
    let hex = id.to_hex();
    let dir = root.join(&hex[..2]);
    match part {
        Part::Copy => dir.join(hex),
        Part::Shard(s) => dir.join(format!("{hex}.{}", shard_suffix(s))),
    }
}

/// A shard file's name after its chunk's id: `s<index>-<k>+<m>`.
fn shard_suffix(s: Shard) -> String {
    format!("s{}-{}+{}", s.index, s.k, s.m)
}

/// The chunk and part a file name under a store's fan-out directory names, if any.
fn parse_name(name: &str) -> Option<(ChunkId, Part)> {
    match name.split_once('.') {
        None => Some((ChunkId::from_hex(name).ok()?, Part::Copy)),
        Some((hex, suffix)) => {
            let (index, km) = suffix.strip_prefix('s')?.split_once('-')?;
            let (k, m) = km.split_once('+')?;
            let s = Shard { index: index.parse().ok()?, k: k.parse().ok()?, m: m.parse().ok()? };
            // Only the canonical spelling of a valid shard: anything else is not ours.
            (s.is_valid() && shard_suffix(s) == suffix).then_some(())?;
            Some((ChunkId::from_hex(hex).ok()?, Part::Shard(s)))
        }
    }
}

/// Reads chunks from a store another process (the local node) owns, for short-circuit local
/// reads by a client on the same machine, as HDFS clients read block files next to their
/// DataNode. It never writes; every chunk is verified against its BLAKE3 id.
#[derive(Debug, Clone)]
pub struct FsChunkReader {
    root: PathBuf,
}

impl FsChunkReader {
    /// A reader of the store at `root` (the node's `<data>/chunks`).
    pub fn new(root: &Path) -> Self {
        FsChunkReader { root: root.to_path_buf() }
    }

    /// Reads a chunk, verified; `NotFound` if this store does not hold it.
    pub fn get(&self, id: &ChunkId) -> Result<Vec<u8>> {
        read_file(id, Part::Copy, &part_path(&self.root, id, Part::Copy), Check::Hash)
    }
}

/// Reads and checks a chunk file's header and body.
fn read_file(id: &ChunkId, part: Part, path: &Path, check: Check) -> Result<Vec<u8>> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(ChunkError::NotFound(*id)),
        Err(e) => return Err(io_err(e)),
    };
    let corrupt = |why: &str| ChunkError::Corrupt { id: *id, why: why.to_string() };
    let mut h = [0u8; HEADER_LEN];
    f.read_exact(&mut h).map_err(|_| corrupt("short header"))?;
    if &h[..8] != MAGIC {
        return Err(corrupt("bad magic"));
    }
    let version = u16::from_le_bytes([h[8], h[9]]);
    if version != VERSION {
        return Err(corrupt(&format!("unknown chunk format version {version}")));
    }
    if h[24..56] != id.0 {
        return Err(corrupt("header names another chunk"));
    }
    if h[10..14] != part_bytes(part) {
        return Err(corrupt("header names another part"));
    }
    let len = u64::from_le_bytes(h[16..24].try_into().expect("8 bytes"));
    let actual = f.metadata().map_err(io_err)?.len().saturating_sub(HEADER_LEN as u64);
    if actual != len {
        return Err(corrupt("length differs from header"));
    }
    // Read in slices (into uninitialised capacity: no zeroing pass) and check each while it
    // is still in cache: one pass over the bytes.
    // Ask the kernel for the whole chunk at once: the slices below then find their pages
    // already in flight instead of waiting for readahead to ramp up slice by slice.
    advise_willneed(&f, HEADER_LEN as u64 + len);
    let mut data = Vec::with_capacity(len as usize);
    let mut hasher = blake3::Hasher::new();
    let mut crc = 0u32;
    while (data.len() as u64) < len {
        let start = data.len();
        let want = (len - start as u64).min(READ_SLICE as u64);
        let got = (&mut f).take(want).read_to_end(&mut data).map_err(io_err)?;
        if got as u64 != want {
            return Err(corrupt("shorter than its header says"));
        }
        let slice = &data[start..];
        match check {
            Check::Hash => {
                hasher.update(slice);
            }
            Check::Crc => crc = crc32c::crc32c_append(crc, slice),
        }
    }
    let ok = match check {
        Check::Hash => hasher.finalize().as_bytes() == &id.0,
        Check::Crc => crc.to_le_bytes() == h[56..60],
    };
    if !ok {
        return Err(corrupt("content does not match its checksum"));
    }
    Ok(data)
}

impl ChunkStore for FsChunkStore {
    fn put_hashed(&self, id: &ChunkId, data: &[u8]) -> Result<PutOutcome> {
        self.put_part(id, Part::Copy, data)
    }

    fn get(&self, id: &ChunkId) -> Result<Vec<u8>> {
        read_file(id, Part::Copy, &self.path_of(id), Check::Hash)
    }

    fn get_for_transfer(&self, id: &ChunkId) -> Result<Vec<u8>> {
        read_file(id, Part::Copy, &self.path_of(id), Check::Crc)
    }

    fn put_shard(&self, id: &ChunkId, shard: Shard, data: &[u8]) -> Result<PutOutcome> {
        if !shard.is_valid() {
            let msg = format!("{shard} is not a valid shard");
            return Err(ChunkError::Io(io::Error::new(io::ErrorKind::InvalidInput, msg)));
        }
        self.put_part(id, Part::Shard(shard), data)
    }

    fn get_shard(&self, id: &ChunkId, shard: Shard) -> Result<Vec<u8>> {
        let part = Part::Shard(shard);
        read_file(id, part, &self.part_path(id, part), Check::Crc)
    }

    fn contains(&self, id: &ChunkId, part: Part) -> Result<bool> {
        Ok(self.part_path(id, part).exists())
    }

    fn delete(&self, id: &ChunkId, part: Part) -> Result<()> {
        let mut shards = self.age_lock.lock().expect("age lock");
        self.remove_part(&mut shards, id, part, None).map(drop)
    }

    fn quarantine(&self, id: &ChunkId, part: Part) -> Result<()> {
        let mut shards = self.age_lock.lock().expect("age lock");
        let stamp = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let name = match part {
            Part::Copy => format!("{}-{stamp}", id.to_hex()),
            Part::Shard(s) => format!("{}.{}-{stamp}", id.to_hex(), shard_suffix(s)),
        };
        self.remove_part(&mut shards, id, part, Some(self.root.join(QUARANTINE).join(name))).map(drop)
    }

    fn touch(&self, id: &ChunkId) -> Result<bool> {
        let shards = self.age_lock.lock().expect("age lock");
        let mut found = touch_file(&self.path_of(id))?;
        for s in shards.get(id).into_iter().flatten() {
            found |= touch_file(&self.part_path(id, Part::Shard(*s)))?;
        }
        Ok(found)
    }

    fn delete_if_untouched_since(&self, id: &ChunkId, part: Part, cutoff: SystemTime) -> Result<bool> {
        let mut shards = self.age_lock.lock().expect("age lock");
        match fs::metadata(self.part_path(id, part)) {
            Ok(m) if m.modified()? < cutoff => self.remove_part(&mut shards, id, part, None),
            Ok(_) => Ok(false),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err(e)),
        }
    }

    fn used_bytes(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    fn list(&self) -> Result<Vec<ChunkInfo>> {
        let mut out = Vec::new();
        for b in 0..=255u8 {
            for entry in fs::read_dir(self.root.join(format!("{b:02x}")))? {
                let entry = entry?;
                let Some((id, part)) = entry.file_name().to_str().and_then(parse_name) else { continue };
                let touched = entry.metadata()?.modified()?;
                out.push(ChunkInfo { id, part, touched });
            }
        }
        Ok(out)
    }
}

/// Hints that `len` bytes of `f` will be read soon (a hint only: failures are ignored).
fn advise_willneed(f: &File, len: u64) {
    use std::os::fd::AsRawFd;
    // SAFETY: plain syscall on a descriptor `f` keeps open for the duration of the call.
    unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, len as libc::off_t, libc::POSIX_FADV_WILLNEED) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_flipped_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsChunkStore::open(dir.path()).unwrap();
        let data = vec![7u8; 1000];
        let id = ChunkId::of(&data);
        store.put(&id, &data).unwrap();
        let path = store.path_of(&id);
        let mut raw = fs::read(&path).unwrap();
        raw[HEADER_LEN + 10] ^= 0xff;
        fs::write(&path, &raw).unwrap();
        assert!(matches!(store.get(&id), Err(ChunkError::Corrupt { .. })));
        assert!(matches!(store.get_for_transfer(&id), Err(ChunkError::Corrupt { .. })));
        raw.truncate(HEADER_LEN + 5);
        fs::write(&path, &raw).unwrap();
        assert!(matches!(store.get(&id), Err(ChunkError::Corrupt { .. })));
    }

    #[test]
    fn a_reader_beside_the_store_verifies_what_it_reads() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsChunkStore::open(dir.path()).unwrap();
        let reader = FsChunkReader::new(dir.path());
        let id = ChunkId::of(b"shared");
        assert!(matches!(reader.get(&id), Err(ChunkError::NotFound(_))));
        store.put(&id, b"shared").unwrap();
        assert_eq!(reader.get(&id).unwrap(), b"shared");
        let path = store.path_of(&id);
        let mut raw = fs::read(&path).unwrap();
        raw[HEADER_LEN] ^= 1;
        fs::write(&path, &raw).unwrap();
        assert!(matches!(reader.get(&id), Err(ChunkError::Corrupt { .. })));
    }

    #[test]
    fn shard_files_are_checked_and_found_again_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsChunkStore::open(dir.path()).unwrap();
        let id = ChunkId::of(b"striped");
        let (s1, s2) = (Shard { index: 1, k: 2, m: 1 }, Shard { index: 2, k: 2, m: 1 });
        store.put_shard(&id, s1, b"one").unwrap();
        store.put_shard(&id, s2, b"two").unwrap();
        assert!(store.put_shard(&id, Shard { index: 3, k: 2, m: 1 }, b"x").is_err(), "index past k + m");
        drop(store);
        let store = FsChunkStore::open(dir.path()).unwrap();
        assert_eq!(store.used_bytes(), 6);
        let past = SystemTime::now() - std::time::Duration::from_secs(60);
        for p in [s1, s2] {
            filetime_set(&store.part_path(&id, Part::Shard(p)), past);
        }
        assert!(store.touch(&id).unwrap(), "the reopened store knows the chunk's shards");
        assert!(!store.delete_if_untouched_since(&id, Part::Shard(s2), past).unwrap());
        // A shard file under another shard's name, and a flipped byte, are both caught.
        let (p1, p2) = (store.part_path(&id, Part::Shard(s1)), store.part_path(&id, Part::Shard(s2)));
        fs::copy(&p1, &p2).unwrap();
        assert!(matches!(store.get_shard(&id, s2), Err(ChunkError::Corrupt { .. })));
        let mut raw = fs::read(&p1).unwrap();
        raw[HEADER_LEN] ^= 1;
        fs::write(&p1, &raw).unwrap();
        assert!(matches!(store.get_shard(&id, s1), Err(ChunkError::Corrupt { .. })));
        assert_eq!(parse_name(&format!("{}.s01-2+1", id.to_hex())), None, "only canonical names");
    }

    fn filetime_set(path: &Path, t: SystemTime) {
        OpenOptions::new().append(true).open(path).unwrap().set_modified(t).unwrap();
    }

    #[test]
    fn reopen_clears_temp_files_and_keeps_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsChunkStore::open(dir.path()).unwrap();
        let id = ChunkId::of(b"x");
        store.put(&id, b"x").unwrap();
        fs::write(dir.path().join("tmp").join("leftover"), b"half").unwrap();
        drop(store);
        let store = FsChunkStore::open(dir.path()).unwrap();
        assert!(!dir.path().join("tmp").join("leftover").exists());
        assert_eq!(store.get(&id).unwrap(), b"x");
    }
}
