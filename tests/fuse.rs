//! `cairn mount` with real mounts: ordinary programs' file operations through the kernel
//! (std::fs, libc for xattrs and statfs, git when installed), errnos, open files that lose
//! their name, paged directories, what REST sees, read-only mounts and `cairn umount`.
//! Skipped, saying why, where this machine cannot mount FUSE (no /dev/fuse).

mod common;
use common::mount::{cstr, mounted, Mount};
use common::{data, http, wait_for, TestNode};
use std::ffi::CString;
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

#[test]
fn programs_use_the_mount_as_a_posix_directory() {
    let node = TestNode::start(&[]);
    let Some(m) = Mount::new(&node, &[]) else { return };
    let c = http();
    // Files small and large, read back whole.
    std::fs::create_dir_all(m.path("docs/deep")).unwrap();
    std::fs::write(m.path("docs/hello.txt"), b"hello, cairn").unwrap();
    assert_eq!(std::fs::read(m.path("docs/hello.txt")).unwrap(), b"hello, cairn");
    let big = data(21, 9 << 20 | 123);
    std::fs::write(m.path("docs/deep/big.bin"), &big).unwrap();
    assert!(std::fs::read(m.path("docs/deep/big.bin")).unwrap() == big);
    assert_eq!(std::fs::metadata(m.path("docs/deep/big.bin")).unwrap().len(), big.len() as u64);
    // What the mount wrote, REST reads, and the other way round.
    let over_rest = c.get(format!("{}/v1/fs/docs/deep/big.bin", node.url)).send().unwrap().bytes().unwrap();
    assert!(over_rest.as_ref() == big.as_slice());
    c.put(format!("{}/v1/fs/docs/from-rest", node.url)).body("via REST").send().unwrap();
    assert_eq!(std::fs::read_to_string(m.path("docs/from-rest")).unwrap(), "via REST");
    // In-place writes, appends, truncation, fsync.
    let mut f = std::fs::OpenOptions::new().read(true).write(true).open(m.path("docs/deep/big.bin")).unwrap();
    f.seek(SeekFrom::Start(5 << 20)).unwrap();
    f.write_all(b"PATCHED").unwrap();
    f.sync_all().unwrap();
    drop(f);
    let mut expect = big.clone();
    expect[5 << 20..(5 << 20) + 7].copy_from_slice(b"PATCHED");
    assert!(std::fs::read(m.path("docs/deep/big.bin")).unwrap() == expect);
    let mut a = std::fs::OpenOptions::new().append(true).open(m.path("docs/hello.txt")).unwrap();
    a.write_all(b"!").unwrap();
    drop(a);
    assert_eq!(std::fs::read(m.path("docs/hello.txt")).unwrap(), b"hello, cairn!");
    std::fs::OpenOptions::new().write(true).open(m.path("docs/hello.txt")).unwrap().set_len(5).unwrap();
    assert_eq!(std::fs::read(m.path("docs/hello.txt")).unwrap(), b"hello");
    // Attributes, links.
    std::fs::set_permissions(m.path("docs/hello.txt"), std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(std::fs::metadata(m.path("docs/hello.txt")).unwrap().permissions().mode() & 0o777, 0o600);
    std::os::unix::fs::symlink("hello.txt", m.path("docs/link")).unwrap();
    assert_eq!(std::fs::read_link(m.path("docs/link")).unwrap(), Path::new("hello.txt"));
    assert_eq!(std::fs::read(m.path("docs/link")).unwrap(), b"hello");
    std::fs::hard_link(m.path("docs/hello.txt"), m.path("docs/second")).unwrap();
    assert_eq!(std::fs::metadata(m.path("docs/hello.txt")).unwrap().nlink(), 2);
    // Renames keep the file; an open file survives losing its name.
    std::fs::rename(m.path("docs/deep"), m.path("moved")).unwrap();
    let mut open = std::fs::File::open(m.path("moved/big.bin")).unwrap();
    std::fs::remove_file(m.path("moved/big.bin")).unwrap();
    let mut still = Vec::new();
    open.read_to_end(&mut still).unwrap();
    assert!(still == expect, "readable through the open file after unlink");
    drop(open);
    // Errnos.
    let err = |r: std::io::Result<()>| r.unwrap_err();
    assert_eq!(err(std::fs::remove_dir(m.path("docs"))).kind(), ErrorKind::DirectoryNotEmpty);
    assert_eq!(err(std::fs::create_dir(m.path("docs"))).kind(), ErrorKind::AlreadyExists);
    assert_eq!(std::fs::read(m.path("nope")).unwrap_err().kind(), ErrorKind::NotFound);
    let long = "x".repeat(256);
    assert_eq!(err(std::fs::write(m.path(&long), b"")).raw_os_error(), Some(libc::ENAMETOOLONG));
    assert_eq!(err(std::fs::remove_dir(m.path("docs/hello.txt"))).raw_os_error(), Some(libc::ENOTDIR));
    assert_eq!(err(std::fs::remove_file(m.path("docs"))).raw_os_error(), Some(libc::EISDIR));
    // Extended attributes and statfs through libc.
    let p = cstr(&m.path("docs/hello.txt"));
    let (name, value) = (CString::new("user.lang").unwrap(), b"en");
    // SAFETY: valid C strings and a buffer of the given length.
    let set = unsafe { libc::setxattr(p.as_ptr(), name.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
    assert_eq!(set, 0, "{}", std::io::Error::last_os_error());
    let mut buf = [0u8; 16];
    // SAFETY: as above, `buf` is writable for its length.
    let got = unsafe { libc::getxattr(p.as_ptr(), name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    assert_eq!(&buf[..got as usize], b"en");
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid path and a zeroed out-struct.
    assert_eq!(unsafe { libc::statvfs(cstr(&m.dir).as_ptr(), &mut st) }, 0);
    assert!(st.f_blocks > 0 && st.f_bavail <= st.f_blocks, "statfs reports the cluster's space");
    // A directory of more entries than one listing page.
    std::fs::create_dir(m.path("many")).unwrap();
    for i in 0..1500 {
        std::fs::write(m.path(&format!("many/f{i:04}")), b"").unwrap();
    }
    assert_eq!(std::fs::read_dir(m.path("many")).unwrap().count(), 1500);
    std::fs::remove_dir_all(m.path("many")).unwrap();
    assert!(!m.path("many").exists());
    m.umount(&node);
}

#[test]
fn programs_work_on_the_mount_and_a_read_only_mount_refuses_changes() {
    let node = TestNode::start(&[]);
    let Some(m) = Mount::new(&node, &[]) else { return };
    if Command::new("git").arg("--version").output().is_ok() {
        let repo = m.path("repo");
        std::fs::create_dir(&repo).unwrap();
        let git = |args: &[&str]| {
            let out = Command::new("git")
                .args(["-c", "user.name=t", "-c", "user.email=t@e", "-c", "init.defaultBranch=main"])
                .args(args)
                .current_dir(&repo)
                .output()
                .unwrap();
            assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8(out.stdout).unwrap()
        };
        git(&["init", "-q"]);
        std::fs::write(repo.join("README"), "a repository on cairn\n").unwrap();
        git(&["add", "README"]);
        git(&["commit", "-q", "-m", "first"]);
        assert!(git(&["log", "--oneline"]).contains("first"));
        assert_eq!(git(&["status", "--porcelain"]), "");
    } else {
        eprintln!("git is not installed: its part of this test is skipped");
    }
    // cp -a of a source tree, and tar of it back out.
    let tree = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/cairn-fuse");
    let run = |cmd: &mut Command| {
        let out = cmd.output().unwrap();
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{cmd:?}: {stdout} {stderr}");
        out.stdout
    };
    run(Command::new("cp").arg("-a").arg(&tree).arg(m.path("copy")));
    run(Command::new("diff").arg("-r").arg(&tree).arg(m.path("copy")));
    let tarball = m.path("copy.tar");
    run(Command::new("tar").arg("cf").arg(&tarball).arg("-C").arg(m.path("copy")).arg("."));
    std::fs::create_dir(m.path("untar")).unwrap();
    run(Command::new("tar").arg("xf").arg(&tarball).arg("-C").arg(m.path("untar")));
    run(Command::new("diff").arg("-r").arg(&tree).arg(m.path("untar")));
    // sqlite3 with several processes writing at once, in rollback-journal and in WAL mode
    // (the WAL index is a shared memory map of a file on the mount; the locks are the
    // cluster's).
    if Command::new("sqlite3").arg("--version").output().is_ok() {
        for mode in ["delete", "wal"] {
            let db = m.path(&format!("{mode}.db"));
            run(Command::new("sqlite3").arg(&db).arg(format!("pragma journal_mode={mode}; create table t(x)")));
            let writers: Vec<_> = (0..4)
                .map(|i| {
                    let script = format!(
                        "for j in 1 2 3 4 5 6 7 8; do sqlite3 -cmd '.timeout 30000' '{}' \
                         'insert into t values({i})' || exit 1; done",
                        db.display()
                    );
                    Command::new("sh").arg("-c").arg(script).spawn().unwrap()
                })
                .collect();
            for mut w in writers {
                assert!(w.wait().unwrap().success(), "a {mode} writer failed");
            }
            let check = run(Command::new("sqlite3").arg(&db).arg("select count(*) from t; pragma integrity_check"));
            assert_eq!(check, b"32\nok\n", "{mode}: every insert is there and the database is whole");
        }
    } else {
        eprintln!("sqlite3 is not installed: its part of this test is skipped");
    }
    // make of a small C project, and a Python virtual environment, when the tools are here.
    let have = |tool: &str| Command::new(tool).arg("--version").output().is_ok_and(|o| o.status.success());
    if have("make") && have("cc") {
        let proj = m.path("cproj");
        std::fs::create_dir(&proj).unwrap();
        std::fs::write(proj.join("main.c"), "int main(void) { return 0; }\n").unwrap();
        std::fs::write(proj.join("Makefile"), "prog: main.c\n\tcc -o prog main.c\n").unwrap();
        run(Command::new("make").arg("-s").current_dir(&proj));
        run(&mut Command::new(proj.join("prog")));
    } else {
        eprintln!("make or cc is not installed: that part of this test is skipped");
    }
    if have("python3") {
        run(Command::new("python3").arg("-m").arg("venv").arg("--without-pip").arg(m.path("venv")));
        run(Command::new(m.path("venv/bin/python")).arg("-c").arg("import sys; assert sys.prefix != sys.base_prefix"));
    } else {
        eprintln!("python3 is not installed: that part of this test is skipped");
    }
    std::fs::write(m.path("kept"), b"kept").unwrap();
    m.umount(&node);
    let Some(ro) = Mount::new(&node, &["--read-only"]) else { return };
    assert_eq!(std::fs::read(ro.path("kept")).unwrap(), b"kept");
    let refused = std::fs::write(ro.path("new"), b"x").unwrap_err();
    assert_eq!(refused.raw_os_error(), Some(libc::EROFS));
    ro.umount(&node);
}

/// `fcntl(F_SETLK)` / `F_GETLK` on `path`: 0 or the errno.
fn setlk(f: &std::fs::File, typ: i32, cmd: i32) -> i32 {
    use std::os::fd::AsRawFd;
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = typ as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    // SAFETY: a valid descriptor and a zero-initialised flock.
    let r = unsafe { libc::fcntl(f.as_raw_fd(), cmd, &mut fl) };
    if r == 0 {
        if cmd == libc::F_GETLK {
            return fl.l_type as i32;
        }
        return 0;
    }
    std::io::Error::last_os_error().raw_os_error().unwrap_or(-1)
}

#[test]
fn record_locks_are_seen_across_mounts_and_end_with_a_dead_mount() {
    let node = TestNode::start(&[]);
    let Some(mut a) = Mount::new(&node, &[]) else { return };
    let Some(b) = Mount::new(&node, &[]) else { return };
    std::fs::write(a.path("shared.db"), b"data").unwrap();
    let fa = std::fs::OpenOptions::new().read(true).write(true).open(a.path("shared.db")).unwrap();
    let fb = std::fs::OpenOptions::new().read(true).write(true).open(b.path("shared.db")).unwrap();
    assert_eq!(setlk(&fa, libc::F_WRLCK, libc::F_SETLK), 0);
    assert_eq!(setlk(&fb, libc::F_WRLCK, libc::F_SETLK), libc::EAGAIN, "the other mount sees the lock");
    assert_eq!(setlk(&fb, libc::F_RDLCK, libc::F_GETLK), libc::F_WRLCK);
    // The lock is in the cluster's lock table, where REST shows it.
    let v: serde_json::Value = http().get(format!("{}/v1/locks", node.url)).send().unwrap().json().unwrap();
    assert_eq!(v["locks"].as_array().unwrap().len(), 1, "{v}");
    // Closing the file releases the process's locks.
    drop(fa);
    assert_eq!(setlk(&fb, libc::F_WRLCK, libc::F_SETLK), 0);
    assert_eq!(setlk(&fb, libc::F_UNLCK, libc::F_SETLK), 0);
    // Shared locks share.
    let fa = std::fs::File::open(a.path("shared.db")).unwrap();
    assert_eq!(setlk(&fa, libc::F_RDLCK, libc::F_SETLK), 0);
    assert_eq!(setlk(&fb, libc::F_RDLCK, libc::F_SETLK), 0);
    assert_eq!(setlk(&fb, libc::F_UNLCK, libc::F_SETLK), 0);
    // A mount that dies keeps its locks only until their lease runs out.
    assert_eq!(setlk(&fa, libc::F_WRLCK, libc::F_SETLK), libc::EBADF, "read-only descriptors take no write locks");
    drop(fa);
    let fa = std::fs::OpenOptions::new().write(true).open(a.path("shared.db")).unwrap();
    assert_eq!(setlk(&fa, libc::F_WRLCK, libc::F_SETLK), 0);
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    std::mem::forget(fa);
    assert_eq!(setlk(&fb, libc::F_WRLCK, libc::F_SETLK), libc::EAGAIN);
    wait_for("the dead mount's lock to expire", Duration::from_secs(60), || {
        setlk(&fb, libc::F_WRLCK, libc::F_SETLK) == 0
    });
    drop(fb);
    b.umount(&node);
}

#[test]
fn a_daemon_mount_returns_once_mounted_and_shows_in_status() {
    let node = TestNode::start(&[]);
    if !Path::new("/dev/fuse").exists() {
        eprintln!("skipped: this machine has no /dev/fuse, so nothing can be mounted");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mnt");
    std::fs::create_dir(&dir).unwrap();
    node.ok(&["mount", "--daemon", dir.to_str().unwrap()]);
    assert!(mounted(&dir), "mounted when the command returned");
    std::fs::write(dir.join("f"), b"via daemon").unwrap();
    let status = node.ok(&["status"]);
    assert!(status.contains(&format!("mount {}", dir.display())), "{status}");
    node.ok(&["umount", dir.to_str().unwrap()]);
    assert!(!mounted(&dir));
    assert_eq!(http().get(format!("{}/v1/fs/f", node.url)).send().unwrap().text().unwrap(), "via daemon");
}

#[test]
fn the_mount_carries_on_through_another_node_when_its_node_dies() {
    let mut nodes = common::start_cluster_with(3, &[]);
    let leader = common::leader_index(&nodes);
    let via = (leader + 1) % 3;
    let Some(m) = Mount::new(&nodes[via], &[]) else { return };
    let src = tempfile::tempdir().unwrap();
    for i in 0..40 {
        std::fs::write(src.path().join(format!("f{i:02}")), data(i, 1 << 20 | i as usize)).unwrap();
    }
    let mut cp = Command::new("cp").arg("-a").arg(src.path()).arg(m.path("copy")).spawn().unwrap();
    wait_for("the copy to start", Duration::from_secs(20), || m.path("copy/f03").exists());
    nodes[via].kill();
    assert!(cp.wait().unwrap().success(), "cp -a finished through the other nodes");
    let diff = Command::new("diff").arg("-r").arg(src.path()).arg(m.path("copy")).output().unwrap();
    assert!(diff.status.success(), "{}", String::from_utf8_lossy(&diff.stdout));
    let alive = &nodes[leader];
    let listed: serde_json::Value =
        http().get(format!("{}/v1/fs/copy?limit=100", alive.url)).send().unwrap().json().unwrap();
    assert_eq!(listed["entries"].as_array().unwrap().len(), 40);
    drop(m);
}

/// The errno of renameat2(2) of `from` to `to` with `flags` (both relative to the working
/// directory, or absolute).
fn renameat2(from: &CString, to: &CString, flags: libc::c_uint) -> i32 {
    // SAFETY: both are valid NUL-terminated paths that outlive the call.
    errno_of(unsafe { libc::renameat2(libc::AT_FDCWD, from.as_ptr(), libc::AT_FDCWD, to.as_ptr(), flags) })
}

/// The errno of a libc call's failure (`0` if it succeeded).
fn errno_of(ret: libc::c_int) -> i32 {
    if ret >= 0 {
        return 0;
    }
    std::io::Error::last_os_error().raw_os_error().unwrap_or(-1)
}

#[test]
fn every_refusal_has_its_posix_errno() {
    let node = TestNode::start(&[]);
    let Some(m) = Mount::new(&node, &[]) else { return };
    std::fs::create_dir_all(m.path("d/sub")).unwrap();
    std::fs::write(m.path("d/sub/f"), b"x").unwrap();
    std::fs::write(m.path("file"), b"data").unwrap();
    std::fs::create_dir(m.path("empty")).unwrap();
    std::fs::set_permissions(m.path("file"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let c = |p: &str| cstr(&m.path(p));
    let name = |s: &str| CString::new(s).unwrap();
    // SAFETY (every call below): valid NUL-terminated paths and names, buffers of the sizes given.
    let cases: Vec<(&str, i32, i32)> = vec![
        ("open a missing file", errno_of(unsafe { libc::open(c("nope").as_ptr(), libc::O_RDONLY) }), libc::ENOENT),
        ("mkdir over a directory", errno_of(unsafe { libc::mkdir(c("d").as_ptr(), 0o755) }), libc::EEXIST),
        (
            "O_CREAT|O_EXCL over a file",
            errno_of(unsafe { libc::open(c("file").as_ptr(), libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY, 0o644) }),
            libc::EEXIST,
        ),
        ("rmdir a non-empty directory", errno_of(unsafe { libc::rmdir(c("d").as_ptr()) }), libc::ENOTEMPTY),
        ("rmdir a file", errno_of(unsafe { libc::rmdir(c("file").as_ptr()) }), libc::ENOTDIR),
        ("unlink a directory", errno_of(unsafe { libc::unlink(c("empty").as_ptr()) }), libc::EISDIR),
        (
            "open a directory for writing",
            errno_of(unsafe { libc::open(c("d").as_ptr(), libc::O_WRONLY) }),
            libc::EISDIR,
        ),
        ("a file as a directory", errno_of(unsafe { libc::open(c("file/x").as_ptr(), libc::O_RDONLY) }), libc::ENOTDIR),
        ("a 256-byte name", errno_of(unsafe { libc::mkdir(c(&"n".repeat(256)).as_ptr(), 0o755) }), libc::ENAMETOOLONG),
        (
            "rename into its own subtree",
            errno_of(unsafe { libc::rename(c("d").as_ptr(), c("d/sub/in").as_ptr()) }),
            libc::EINVAL,
        ),
        (
            "rename a file over a directory",
            errno_of(unsafe { libc::rename(c("file").as_ptr(), c("empty").as_ptr()) }),
            libc::EISDIR,
        ),
        (
            "rename a directory over a file",
            errno_of(unsafe { libc::rename(c("empty").as_ptr(), c("file").as_ptr()) }),
            libc::ENOTDIR,
        ),
        (
            "rename a directory over a non-empty one",
            errno_of(unsafe { libc::rename(c("empty").as_ptr(), c("d").as_ptr()) }),
            libc::ENOTEMPTY,
        ),
        ("RENAME_NOREPLACE over a file", renameat2(&c("d/sub/f"), &c("file"), libc::RENAME_NOREPLACE), libc::EEXIST),
        (
            "RENAME_EXCHANGE with a missing name",
            renameat2(&c("file"), &c("nothing"), libc::RENAME_EXCHANGE),
            libc::ENOENT,
        ),
        (
            "RENAME_EXCHANGE moving a directory below itself",
            renameat2(&c("d"), &c("d/sub/f"), libc::RENAME_EXCHANGE),
            libc::EINVAL,
        ),
        (
            "readlink of a file",
            {
                let mut buf = [0u8; 16];
                errno_of(
                    unsafe { libc::readlink(c("file").as_ptr(), buf.as_mut_ptr().cast(), buf.len()) } as libc::c_int
                )
            },
            libc::EINVAL,
        ),
        (
            "a hard link to a directory",
            errno_of(unsafe { libc::link(c("empty").as_ptr(), c("dl").as_ptr()) }),
            libc::EPERM,
        ),
        (
            "getxattr of a missing name",
            {
                let mut buf = [0u8; 16];
                errno_of(unsafe {
                    libc::getxattr(c("file").as_ptr(), name("user.none").as_ptr(), buf.as_mut_ptr().cast(), buf.len())
                } as libc::c_int)
            },
            libc::ENODATA,
        ),
        (
            "removexattr of a missing name",
            errno_of(unsafe { libc::removexattr(c("file").as_ptr(), name("user.none").as_ptr()) }),
            libc::ENODATA,
        ),
        (
            "XATTR_CREATE over an existing one",
            {
                let v = b"1";
                unsafe { libc::setxattr(c("file").as_ptr(), name("user.k").as_ptr(), v.as_ptr().cast(), 1, 0) };
                errno_of(unsafe {
                    libc::setxattr(
                        c("file").as_ptr(),
                        name("user.k").as_ptr(),
                        v.as_ptr().cast(),
                        1,
                        libc::XATTR_CREATE,
                    )
                })
            },
            libc::EEXIST,
        ),
        (
            "XATTR_REPLACE of a missing one",
            {
                let v = b"1";
                errno_of(unsafe {
                    libc::setxattr(
                        c("file").as_ptr(),
                        name("user.z").as_ptr(),
                        v.as_ptr().cast(),
                        1,
                        libc::XATTR_REPLACE,
                    )
                })
            },
            libc::ENODATA,
        ),
        ("truncate a directory", errno_of(unsafe { libc::truncate(c("d").as_ptr(), 0) }), libc::EISDIR),
        (
            "ioctl TCGETS on a file (isatty)",
            {
                let fd = unsafe { libc::open(c("file").as_ptr(), libc::O_RDONLY) };
                let mut t = std::mem::MaybeUninit::<libc::termios>::uninit();
                let r = errno_of(unsafe { libc::ioctl(fd, libc::TCGETS, t.as_mut_ptr()) });
                unsafe { libc::close(fd) };
                r
            },
            libc::ENOTTY,
        ),
        (
            "fallocate",
            {
                let fd = unsafe { libc::open(c("file").as_ptr(), libc::O_RDWR) };
                let r = errno_of(unsafe { libc::fallocate(fd, 0, 0, 4096) });
                unsafe { libc::close(fd) };
                r
            },
            libc::EOPNOTSUPP,
        ),
    ];
    let wrong: Vec<String> = cases
        .iter()
        .filter(|(_, got, want)| got != want)
        .map(|(what, got, want)| format!("{what}: got errno {got}, want {want}"))
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
    // RENAME_EXCHANGE swaps two names atomically: files, and a file with a directory in
    // another directory; nothing of the swap is left behind.
    assert_eq!(renameat2(&c("file"), &c("d/sub/f"), libc::RENAME_EXCHANGE), 0);
    assert_eq!(
        (std::fs::read(m.path("file")).unwrap(), std::fs::read(m.path("d/sub/f")).unwrap()),
        (b"x".to_vec(), b"data".to_vec())
    );
    assert_eq!(renameat2(&c("file"), &c("d/sub"), libc::RENAME_EXCHANGE), 0);
    assert!(m.path("file/f").is_file() && m.path("d/sub").is_file());
    let names = |p: &str| std::fs::read_dir(m.path(p)).unwrap().map(|e| e.unwrap().file_name()).collect::<Vec<_>>();
    assert_eq!(names("d"), ["sub"]);
    assert_eq!(names("").len(), 3, "{:?}", names(""));
    m.umount(&node);
}

/// `--allow-other` lets other users in, with the kernel checking each access against the
/// files' owners and modes; a mount without it refuses other users outright.
#[test]
fn allow_other_lets_other_users_in_under_permission_checks() {
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } != 0 {
        eprintln!("skipped: acting as a second user (setpriv) takes root");
        return;
    }
    let chmod = |p: &Path, mode: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    let node = TestNode::start(&[]);
    let Some(open) = Mount::new(&node, &["--allow-other"]) else { return };
    let Some(closed) = Mount::new(&node, &[]) else { return };
    for m in [&open, &closed] {
        chmod(m.dir.parent().unwrap(), 0o755);
    }
    std::fs::write(open.path("public"), b"for all").unwrap();
    std::fs::write(open.path("secret"), b"root only").unwrap();
    chmod(&open.path("secret"), 0o600);
    std::fs::create_dir(open.path("private")).unwrap();
    std::fs::write(open.path("private/f"), b"x").unwrap();
    chmod(&open.path("private"), 0o700);
    let nobody = |cmd: &str, path: &Path| {
        let out = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", cmd])
            .arg(path)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.success(), out.stdout, err)
    };
    let denied = |cmd: &str, path: &Path| {
        let (ok, _, err) = nobody(cmd, path);
        !ok && err.contains("Permission denied")
    };
    let (ok, out, err) = nobody("cat", &open.path("public"));
    assert!(ok && out == b"for all", "{err}");
    assert!(denied("cat", &open.path("secret")), "mode 0600 of another owner");
    assert!(denied("ls", &open.path("private")), "a directory of mode 0700 of another owner");
    assert!(denied("touch", &open.path("new")), "the root directory is not theirs to write");
    chmod(&open.path("secret"), 0o644);
    assert_eq!(nobody("cat", &open.path("secret")).1, b"root only", "readable once its mode says so");
    assert!(denied("cat", &closed.path("public")), "a mount without --allow-other refuses other users");
    open.umount(&node);
    closed.umount(&node);
}
