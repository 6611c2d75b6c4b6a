//! A `cairn mount` of a test node's cluster in a temp dir, for the FUSE tests.

use super::{bin, wait_for, TestNode};
use std::ffi::CString;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A `cairn mount` process and its mount point (unmounted and stopped on drop).
pub struct Mount {
    pub child: Child,
    pub dir: PathBuf,
    _tmp: tempfile::TempDir,
}

pub fn mounted(dir: &Path) -> bool {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    mounts.lines().any(|l| l.split_whitespace().nth(1) == Some(dir.to_str().unwrap()))
}

impl Mount {
    /// Mounts `node`'s cluster, or returns `None` (saying why) where FUSE is unavailable.
    pub fn new(node: &TestNode, extra: &[&str]) -> Option<Mount> {
        if !Path::new("/dev/fuse").exists() {
            eprintln!("skipped: this machine has no /dev/fuse, so nothing can be mounted");
            return None;
        }
        // SAFETY: getuid has no preconditions.
        let root = unsafe { libc::getuid() } == 0;
        if !root && Command::new("fusermount3").arg("--version").output().is_err() {
            eprintln!("skipped: not root and no fusermount3 (Debian's fuse3), so nothing can be mounted");
            return None;
        }
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("mnt");
        std::fs::create_dir(&dir).unwrap();
        let child = Command::new(bin())
            .args(["--node", &node.url, "--data"])
            .arg(&node.data)
            .arg("mount")
            .arg(&dir)
            .args(extra)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut m = Mount { child, dir, _tmp: tmp };
        wait_for("the mount to appear", Duration::from_secs(20), || {
            if let Ok(Some(status)) = m.child.try_wait() {
                let mut err = String::new();
                m.child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
                panic!("cairn mount exited with {status}: {err}");
            }
            mounted(&m.dir)
        });
        Some(m)
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.join(p)
    }

    pub fn umount(mut self, node: &TestNode) {
        node.ok(&["umount", self.dir.to_str().unwrap()]);
        let status = self.child.wait().unwrap();
        assert!(status.success(), "cairn mount ended with {status}");
        assert!(!mounted(&self.dir));
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if mounted(&self.dir) {
            let _ = Command::new(bin()).arg("umount").arg(&self.dir).status();
        }
        if mounted(&self.dir) {
            // A killed mount with files still open on it: detach it, so no test leaves a
            // dead mount behind.
            let _ = Command::new("fusermount3").arg("-uz").arg(&self.dir).status();
            // SAFETY: a valid NUL-terminated path; umount2 has no other preconditions.
            unsafe { libc::umount2(cstr(&self.dir).as_ptr(), libc::MNT_DETACH) };
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}
