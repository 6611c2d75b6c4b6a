//! The file-system chunk store: one file per chunk under `<root>/<first byte hex>/<id hex>`.
//!
//! Write protocol (each step is needed for crash safety):
//! 1. write header + bytes to `<root>/tmp/<random>` — a crash here leaves only a temp file,
//!    removed at the next open;
//! 2. `fsync` the temp file — the bytes are on disk before any name points at them;
//! 3. `rename` it to its final name — atomic, so readers see the whole chunk or nothing;
//! 4. `fsync` the directory — the new name itself survives a power cut.
//!
//! Every file starts with a 64-byte header (magic, version, length, BLAKE3 hash, CRC32C of the
//! data) so scrub can verify a chunk file on its own. Local reads check the BLAKE3; reads for
//! transfer check the CRC32C (the receiver checks the BLAKE3), as HDFS clients verify
//! checksums end to end. Files that fail verification are moved to `<root>/quarantine/`.

use crate::{ChunkError, ChunkInfo, ChunkStore, PutOutcome, Result};
use cairn_core::ChunkId;
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
    /// Orders "touch" against "delete if old": see [`ChunkStore::touch`].
    age_lock: Mutex<()>,
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

fn header(id: &ChunkId, data: &[u8]) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(MAGIC);
    h[8..10].copy_from_slice(&VERSION.to_le_bytes());
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
        let store = FsChunkStore { root: root.to_path_buf(), age_lock: Mutex::new(()), used: AtomicU64::new(0) };
        let mut used = 0;
        for c in store.list()? {
            used += fs::metadata(store.path_of(&c.id))?.len().saturating_sub(HEADER_LEN as u64);
        }
        store.used.store(used, Ordering::Relaxed);
        Ok(store)
    }

    pub(crate) fn path_of(&self, id: &ChunkId) -> PathBuf {
        chunk_path(&self.root, id)
    }
}

/// Where chunk `id` lives under a store's `root`.
fn chunk_path(root: &Path, id: &ChunkId) -> PathBuf {
    let hex = id.to_hex();
    root.join(&hex[..2]).join(hex)
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
        read_file(id, &chunk_path(&self.root, id), Check::Hash)
    }
}

/// Reads and checks a chunk file's header and body.
fn read_file(id: &ChunkId, path: &Path, check: Check) -> Result<Vec<u8>> {
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
        let path = self.path_of(id);
        // Dedup: refresh the age so a GC racing with this write keeps the chunk.
        if self.touch(id)? {
            return Ok(PutOutcome::Existed);
        }
        let tmp = self.root.join("tmp").join(format!("{}.{:016x}", id.to_hex(), rand::random::<u64>()));
        let written = (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(&header(id, data))?;
            f.write_all(data)?;
            f.sync_all()
        })();
        // Under the age lock, so two writers of the same chunk (a chain write racing a
        // repair copy) count its bytes once: the second finds the first's file and drops its
        // own. Deletions take the same lock.
        let result = written.and_then(|()| {
            let _guard = self.age_lock.lock().expect("age lock");
            if path.exists() {
                fs::remove_file(&tmp)?;
                return Ok(PutOutcome::Existed);
            }
            fs::rename(&tmp, &path)?;
            fsync_dir(path.parent().expect("chunk path has a parent"))?;
            self.used.fetch_add(data.len() as u64, Ordering::Relaxed);
            Ok(PutOutcome::Stored)
        });
        result.map_err(|e| {
            let _ = fs::remove_file(&tmp);
            io_err(e)
        })
    }

    fn get(&self, id: &ChunkId) -> Result<Vec<u8>> {
        read_file(id, &self.path_of(id), Check::Hash)
    }

    fn get_for_transfer(&self, id: &ChunkId) -> Result<Vec<u8>> {
        read_file(id, &self.path_of(id), Check::Crc)
    }

    fn contains(&self, id: &ChunkId) -> Result<bool> {
        Ok(self.path_of(id).exists())
    }

    fn delete(&self, id: &ChunkId) -> Result<()> {
        let _guard = self.age_lock.lock().expect("age lock");
        let path = self.path_of(id);
        let size = fs::metadata(&path).map(|m| m.len().saturating_sub(HEADER_LEN as u64)).unwrap_or(0);
        match fs::remove_file(&path) {
            Ok(()) => {
                self.used.fetch_sub(size, Ordering::Relaxed);
                Ok(fsync_dir(path.parent().expect("chunk path has a parent"))?)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(e)),
        }
    }

    fn quarantine(&self, id: &ChunkId) -> Result<()> {
        let _guard = self.age_lock.lock().expect("age lock");
        let path = self.path_of(id);
        let size = match fs::metadata(&path) {
            Ok(m) => m.len().saturating_sub(HEADER_LEN as u64),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_err(e)),
        };
        let stamp = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let aside = self.root.join(QUARANTINE).join(format!("{}-{stamp}", id.to_hex()));
        match fs::rename(&path, aside) {
            Ok(()) => {
                self.used.fetch_sub(size, Ordering::Relaxed);
                Ok(fsync_dir(path.parent().expect("chunk path has a parent"))?)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(e)),
        }
    }

    fn touch(&self, id: &ChunkId) -> Result<bool> {
        let _guard = self.age_lock.lock().expect("age lock");
        match OpenOptions::new().append(true).open(self.path_of(id)) {
            Ok(f) => {
                f.set_modified(SystemTime::now()).map_err(io_err)?;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err(e)),
        }
    }

    fn delete_if_untouched_since(&self, id: &ChunkId, cutoff: SystemTime) -> Result<bool> {
        let _guard = self.age_lock.lock().expect("age lock");
        let path = self.path_of(id);
        match fs::metadata(&path) {
            Ok(m) if m.modified()? < cutoff => {
                fs::remove_file(&path)?;
                self.used.fetch_sub(m.len().saturating_sub(HEADER_LEN as u64), Ordering::Relaxed);
                fsync_dir(path.parent().expect("chunk path has a parent"))?;
                Ok(true)
            }
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
                let Some(name) = entry.file_name().to_str().map(str::to_string) else { continue };
                let Ok(id) = ChunkId::from_hex(&name) else { continue };
                let touched = entry.metadata()?.modified()?;
                out.push(ChunkInfo { id, touched });
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
