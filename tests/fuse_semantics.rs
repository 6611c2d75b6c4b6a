//! The mount's consistency: close-to-open between two mounts, writes seen at once by the
//! processes of one mount, shared memory maps, changes made elsewhere reaching the mount's
//! caches, and programs that lean on them (rsync, git clone and gc, fio's verifying writes).

mod common;
use common::mount::{cstr, Mount};
use common::{data, http, wait_for, TestNode};
use std::io::{Read, Seek, SeekFrom, Write};
use std::process::Command;
use std::time::Duration;

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{cmd:?}: {stdout} {stderr}");
    out.stdout
}

fn have(tool: &str) -> bool {
    Command::new(tool).arg("--version").output().is_ok_and(|o| o.status.success())
}

#[test]
fn a_file_closed_on_one_mount_is_seen_whole_by_an_open_on_another() {
    let node = TestNode::start(&[]);
    let Some(a) = Mount::new(&node, &[]) else { return };
    let Some(b) = Mount::new(&node, &[]) else { return };
    let first = data(1, 9 << 20);
    std::fs::write(a.path("f"), &first).unwrap();
    assert_eq!(std::fs::read(b.path("f")).unwrap(), first, "b reads what a closed");
    // b has the file in its page cache now; a rewrites it in place, same size.
    for round in 2..5u64 {
        let mut f = std::fs::OpenOptions::new().write(true).open(a.path("f")).unwrap();
        let next = data(round, 9 << 20);
        f.write_all(&next).unwrap();
        // Not closed yet: another mount's open sees the file as it was committed.
        drop(f);
        assert_eq!(std::fs::read(b.path("f")).unwrap(), next, "round {round}: b's next open sees a's close");
    }
    // A change in the middle, through b this time, seen by a.
    let mut f = std::fs::OpenOptions::new().write(true).open(b.path("f")).unwrap();
    f.seek(SeekFrom::Start(5 << 20)).unwrap();
    f.write_all(b"patched by b").unwrap();
    drop(f);
    let mut seen = vec![0; 12];
    let mut f = std::fs::File::open(a.path("f")).unwrap();
    f.seek(SeekFrom::Start(5 << 20)).unwrap();
    f.read_exact(&mut seen).unwrap();
    assert_eq!(seen, b"patched by b");
    drop(f);
    a.umount(&node);
    b.umount(&node);
}

/// Attribute `name` of `path`, if set.
fn xattr(path: &std::path::Path, name: &str) -> Option<Vec<u8>> {
    let (p, n) = (cstr(path), std::ffi::CString::new(name).unwrap());
    let mut buf = vec![0u8; 256];
    // SAFETY: valid C strings and a buffer of the length given.
    let got = unsafe { libc::getxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (got >= 0).then(|| buf[..got as usize].to_vec())
}

/// The mount caches names (absent ones too), attributes and extended attributes for as long
/// as the cluster's change feed vouches for them: every change made elsewhere must reach it.
/// (A cache that missed one would serve the old answer for as long as the mount lives, since
/// the stat loops below keep asking.)
#[test]
fn changes_made_elsewhere_reach_the_mounts_caches() {
    let node = TestNode::start(&[]);
    let Some(a) = Mount::new(&node, &[]) else { return };
    let Some(b) = Mount::new(&node, &[]) else { return };
    let rest = |p: &str| format!("{}/v1/fs/{p}", node.url);
    let put = |p: &str, body: &'static str| {
        assert!(http().put(rest(p)).body(body).send().unwrap().status().is_success());
    };
    std::fs::write(a.path("f"), b"one").unwrap();
    let len = || std::fs::metadata(a.path("f")).map(|m| m.len()).ok();
    assert_eq!(len(), Some(3));
    assert!(!a.path("later").exists(), "cached as absent from here on");
    assert_eq!(xattr(&a.path("f"), "user.tag"), None);
    let long = Duration::from_secs(20);

    put("f", "longer now");
    wait_for("the new size through the mount", long, || len() == Some(10));
    assert_eq!(std::fs::read(a.path("f")).unwrap(), b"longer now");
    put("later", "x");
    wait_for("a name created through REST", long, || a.path("later").exists());
    let (p, n, v) = (cstr(&b.path("f")), std::ffi::CString::new("user.tag").unwrap(), b"set on b");
    // SAFETY: valid C strings and a value of the length given.
    assert_eq!(unsafe { libc::setxattr(p.as_ptr(), n.as_ptr(), v.as_ptr().cast(), v.len(), 0) }, 0);
    wait_for("an attribute set on another mount", long, || xattr(&a.path("f"), "user.tag").as_deref() == Some(v));
    std::fs::rename(b.path("later"), b.path("moved")).unwrap();
    wait_for("a rename on another mount", long, || !a.path("later").exists() && a.path("moved").exists());
    assert!(http().delete(rest("f")).send().unwrap().status().is_success());
    wait_for("a removal through REST", long, || len().is_none());
    a.umount(&node);
    b.umount(&node);
}

/// A file larger than the write buffer (64 MiB) is committed a buffer at a time in the
/// background while the writer goes on; an overwrite of bytes being committed, a read in the
/// middle and the close all wait for it, and the file ends up exactly as written.
#[test]
fn large_writes_commit_in_the_background_and_end_whole() {
    let node = TestNode::start(&[]);
    let Some(m) = Mount::new(&node, &[]) else { return };
    const MIB: usize = 1 << 20;
    let mut want = data(7, 150 * MIB);
    let mut f =
        std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(m.path("big")).unwrap();
    for piece in want[..70 * MIB].chunks(MIB) {
        f.write_all(piece).unwrap();
    }
    // The first 64 MiB are being committed: overwrite some of them, and read some back.
    f.seek(SeekFrom::Start(MIB as u64)).unwrap();
    f.write_all(b"overwritten while committing").unwrap();
    want[MIB..MIB + 28].copy_from_slice(b"overwritten while committing");
    let mut back = vec![0; 28];
    f.seek(SeekFrom::Start(MIB as u64)).unwrap();
    f.read_exact(&mut back).unwrap();
    assert_eq!(back, b"overwritten while committing");
    f.seek(SeekFrom::Start(70 * MIB as u64)).unwrap();
    for piece in want[70 * MIB..].chunks(MIB) {
        f.write_all(piece).unwrap();
    }
    f.sync_all().unwrap();
    drop(f);
    assert!(std::fs::read(m.path("big")).unwrap() == want, "read back through the mount");
    let got = http().get(format!("{}/v1/fs/big", node.url)).send().unwrap().bytes().unwrap();
    assert!(got.len() == want.len() && got[..] == want[..], "read back over REST");
    m.umount(&node);
}

#[test]
fn processes_of_one_mount_see_each_others_writes_and_maps_at_once() {
    let node = TestNode::start(&[]);
    let Some(m) = Mount::new(&node, &[]) else { return };
    // One process writes without closing; another reads at once, as on a local disk.
    let mut w = std::fs::File::create(m.path("live")).unwrap();
    w.write_all(b"written, not yet closed").unwrap();
    if have("cat") {
        assert_eq!(run(Command::new("cat").arg(m.path("live"))), b"written, not yet closed");
    }
    assert_eq!(std::fs::metadata(m.path("live")).unwrap().len(), 23);
    drop(w);
    // Two shared maps of one file (two descriptors), written through one, read through the
    // other and by read(2), then committed by msync and close.
    const LEN: usize = 256 << 10;
    let f1 =
        std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(m.path("map")).unwrap();
    f1.set_len(LEN as u64).unwrap();
    let f2 = std::fs::OpenOptions::new().read(true).write(true).open(m.path("map")).unwrap();
    let map = |f: &std::fs::File| {
        use std::os::fd::AsRawFd;
        // SAFETY: a fresh shared mapping of LEN bytes of an open file, unmapped below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                LEN,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                f.as_raw_fd(),
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED, "mmap: {}", std::io::Error::last_os_error());
        p.cast::<u8>()
    };
    let (p1, p2) = (map(&f1), map(&f2));
    let pattern = data(7, LEN);
    // SAFETY: both maps are LEN bytes long and live until the munmap below.
    unsafe {
        std::ptr::copy_nonoverlapping(pattern.as_ptr(), p1, LEN);
        assert_eq!(std::slice::from_raw_parts(p2, LEN), &pattern[..], "the other map sees the writes");
        assert_eq!(libc::msync(p1.cast(), LEN, libc::MS_SYNC), 0);
        libc::munmap(p1.cast(), LEN);
        libc::munmap(p2.cast(), LEN);
    }
    let mut read = Vec::new();
    std::fs::File::open(m.path("map")).unwrap().read_to_end(&mut read).unwrap();
    assert!(read == pattern, "read(2) sees what the map wrote");
    drop((f1, f2));
    let got = http().get(format!("{}/v1/fs/map", node.url)).send().unwrap().bytes().unwrap();
    assert!(got[..] == pattern[..], "committed on close: REST reads the mapped writes");
    m.umount(&node);
}

#[test]
fn rsync_git_and_fio_work_on_the_mount() {
    let node = TestNode::start(&[]);
    let Some(m) = Mount::new(&node, &[]) else { return };
    let tree = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/cairn-core");
    if have("rsync") {
        let into = format!("{}/", m.path("synced").display());
        run(Command::new("rsync").arg("-a").arg(format!("{}/", tree.display())).arg(&into));
        run(Command::new("diff").arg("-r").arg(&tree).arg(m.path("synced")));
        // A second run finds nothing to send; a changed file is sent again.
        let again = run(Command::new("rsync").arg("-ai").arg(format!("{}/", tree.display())).arg(&into));
        assert!(again.is_empty(), "nothing changed: {}", String::from_utf8_lossy(&again));
    } else {
        eprintln!("rsync is not installed: its part of this test is skipped");
    }
    if have("git") {
        let git = |dir: &std::path::Path, args: &[&str]| {
            run(Command::new("git")
                .args(["-c", "user.name=t", "-c", "user.email=t@e", "-c", "init.defaultBranch=main"])
                .args(args)
                .current_dir(dir))
        };
        let origin = tempfile::tempdir().unwrap();
        git(origin.path(), &["init", "-q"]);
        for i in 0..20 {
            std::fs::write(origin.path().join(format!("f{i}.txt")), format!("file {i}\n").repeat(200)).unwrap();
            git(origin.path(), &["add", "."]);
            git(origin.path(), &["commit", "-q", "-m", &format!("commit {i}")]);
        }
        git(m.dir.as_path(), &["clone", "-q", origin.path().to_str().unwrap(), "clone"]);
        let clone = m.path("clone");
        assert_eq!(git(&clone, &["status", "--porcelain"]), b"");
        git(&clone, &["gc", "-q", "--aggressive"]);
        git(&clone, &["fsck", "--no-progress"]);
        let log = git(&clone, &["log", "--oneline"]);
        assert_eq!(log.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count(), 20);
    } else {
        eprintln!("git is not installed: its part of this test is skipped");
    }
    if have("fio") {
        // Random writes of 4 KiB blocks with a checksum each, then every block verified.
        run(Command::new("fio")
            .args(["--name=verify", "--rw=randwrite", "--bs=4k", "--size=16m", "--verify=crc32c"])
            .args(["--do_verify=1", "--ioengine=psync", "--end_fsync=1"])
            .arg(format!("--directory={}", m.dir.display())));
    } else {
        eprintln!("fio is not installed: its part of this test is skipped");
    }
    m.umount(&node);
}
