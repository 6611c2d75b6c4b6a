//! `cairn bench --fuse`: fio and a small-file run through a mount of a 3-node `replicas:3`
//! cluster started in the scratch directory, each beside the same run on a local directory
//! of the same disk, in one run.
//!
//! Runs: a sequential 1 MiB write of SIZE with end_fsync, a cold sequential 1 MiB read of it
//! (page cache dropped, and the mount made afresh so it remembers no chunk), 4 KiB random
//! reads at queue depth 1 for 20 s, then FILES files of 4 KiB created, stat'ed, read and
//! deleted one at a time.

use anyhow::{bail, ensure, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// A figure of one run on both sides.
struct Row {
    what: &'static str,
    local: f64,
    mount: f64,
    target: &'static str,
}

/// Runs fio with `args` on `file`, returning its JSON report's first job.
fn fio(file: &Path, args: &[&str]) -> Result<serde_json::Value> {
    let out = Command::new("fio")
        .args(["--name=bench", "--ioengine=psync", "--output-format=json"])
        .arg(format!("--filename={}", file.display()))
        .args(args)
        .output()
        .context("running fio (Debian's fio package)")?;
    ensure!(out.status.success(), "fio {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).context("fio's JSON report")?;
    Ok(v["jobs"][0].clone())
}

fn mib_s(job: &serde_json::Value, dir: &str) -> f64 {
    job[dir]["bw_bytes"].as_f64().unwrap_or(0.0) / crate::bench::MIB
}

/// Drops the page cache if this process may (root); says so once if not.
fn drop_caches(warned: &mut bool) {
    if let Err(e) = crate::bench::drop_caches() {
        if !*warned {
            eprintln!("note: {e:#}: the cold reads may be warm");
            *warned = true;
        }
    }
}

/// Creates, stats, reads and deletes `files` files of 4 KiB in `dir`, one at a time:
/// operations per second of each phase.
fn small_files(dir: &Path, files: usize) -> Result<[f64; 4]> {
    std::fs::create_dir_all(dir)?;
    let data = vec![0x5a; 4096];
    let name = |i: usize| dir.join(format!("f{i:05}"));
    let mut rates = [0.0; 4];
    for (k, rate) in rates.iter_mut().enumerate() {
        let t = Instant::now();
        for i in 0..files {
            match k {
                0 => std::fs::write(name(i), &data)?,
                1 => ensure!(std::fs::metadata(name(i))?.len() == 4096, "a file lost its size"),
                2 => ensure!(std::fs::read(name(i))? == data, "a file read back wrong"),
                _ => std::fs::remove_file(name(i))?,
            }
        }
        *rate = files as f64 / t.elapsed().as_secs_f64();
    }
    Ok(rates)
}

/// The runs on one directory; `fresh` makes the directory's caches cold between writing and
/// reading (the mount: unmount and mount again).
fn runs(dir: &Path, size: u64, files: usize, fresh: &mut dyn FnMut() -> Result<()>) -> Result<Vec<f64>> {
    let file = dir.join("fio.dat");
    let size = format!("--size={size}");
    let write = fio(&file, &["--rw=write", "--bs=1m", &size, "--end_fsync=1"])?;
    fresh()?;
    let read = fio(&file, &["--rw=read", "--bs=1m", &size])?;
    let rand = fio(&file, &["--rw=randread", "--bs=4k", "--iodepth=1", &size, "--time_based", "--runtime=20"])?;
    std::fs::remove_file(&file)?;
    let [c, s, r, d] = small_files(&dir.join("small"), files)?;
    Ok(vec![mib_s(&write, "write"), mib_s(&read, "read"), rand["read"]["iops"].as_f64().unwrap_or(0.0), c, s, r, d])
}

/// Mounts `/bench` of the cluster `c` talks to at `at`.
fn mount(c: &cairn_client::AsyncClient, at: &Path) -> Result<cairn_fuse::BackgroundSession> {
    let opts = cairn_fuse::MountOptions { path: Some("/bench".into()), ..Default::default() };
    Ok(cairn_fuse::mount(c.clone(), tokio::runtime::Handle::current(), at, &opts)?)
}

/// Runs the benchmark.
pub async fn run(scratch: &Path, size: u64, files: usize) -> Result<()> {
    if Command::new("fio").arg("--version").output().is_err() {
        bail!("cairn bench --fuse needs fio (Debian's fio package)");
    }
    let cluster = crate::local_cluster::throwaway(scratch, ".cairn-bench-fuse-", 3).await?;
    let c = cluster.clients[0].clone();
    c.mkdir("/bench", true).await?;
    c.set_policy("/bench", cairn_core::Policy::Replicas(3), None).await?;
    let local: PathBuf = cluster.dir.path().join("local");
    let point: PathBuf = cluster.dir.path().join("mnt");
    std::fs::create_dir_all(&local)?;
    std::fs::create_dir_all(&point)?;
    println!(
        "cairn bench --fuse: {} sequential, 4 KiB random reads for 20 s, {files} files of 4 KiB; \
         a 3-node replicas:3 cluster's mount beside a local directory, both in {}",
        crate::bench::human(size),
        cluster.dir.path().display()
    );
    let rt = tokio::runtime::Handle::current();
    let figures = tokio::task::spawn_blocking(move || -> Result<(Vec<f64>, Vec<f64>)> {
        let _rt = rt.enter();
        let mut warned = false;
        let local_figures = runs(&local, size, files, &mut || {
            drop_caches(&mut warned);
            Ok(())
        })?;
        let mut session = Some(mount(&c, &point)?);
        let mount_figures = runs(&point, size, files, &mut || {
            if let Some(s) = session.take() {
                s.umount_and_join()?;
            }
            drop_caches(&mut warned);
            session = Some(mount(&c, &point)?);
            Ok(())
        })?;
        if let Some(s) = session.take() {
            s.umount_and_join()?;
        }
        Ok((local_figures, mount_figures))
    })
    .await??;
    let (l, m) = figures;
    let rows = [
        Row { what: "seq write 1 MiB, MiB/s", local: l[0], mount: m[0], target: ">= 0.28x local" },
        Row { what: "cold seq read 1 MiB, MiB/s", local: l[1], mount: m[1], target: ">= 0.5x local" },
        Row { what: "rand read 4 KiB QD1, IOPS", local: l[2], mount: m[2], target: ">= 0.5x local" },
        Row { what: "creates/s", local: l[3], mount: m[3], target: ">= 0.35x local" },
        Row { what: "stats/s", local: l[4], mount: m[4], target: ">= 13,800 (2x MooseFS)" },
        Row { what: "reads/s", local: l[5], mount: m[5], target: ">= 2,160 (2x MooseFS)" },
        Row { what: "deletes/s", local: l[6], mount: m[6], target: ">= 8,800 (2x MooseFS)" },
    ];
    println!("{:<28} {:>12} {:>12} {:>8}  target", "run", "local", "cairn mount", "ratio");
    for r in rows {
        let ratio = if r.local > 0.0 { r.mount / r.local } else { 0.0 };
        println!("{:<28} {:>12.0} {:>12.0} {:>7.2}x  {}", r.what, r.local, r.mount, ratio, r.target);
    }
    Ok(())
}
