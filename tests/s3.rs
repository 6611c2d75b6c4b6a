//! The S3 door with real clients: boto3 through every operation, the AWS CLI's everyday
//! commands, and one set of bytes seen the same through S3, REST, the CLI and a mount.

mod common;

use common::mount::Mount;
use common::{data, http, TestNode};
use std::path::Path;
use std::process::{Command, Output};

/// True if `python3 -c CODE` runs; says why a test is skipped otherwise.
fn python_has(module: &str) -> bool {
    let ok =
        Command::new("python3").args(["-c", &format!("import {module}")]).output().is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipped: python3 cannot import {module} (scripts/test installs it)");
    }
    ok
}

fn has_aws_cli() -> bool {
    let ok = Command::new("aws").arg("--version").output().is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipped: no aws command (scripts/test installs awscli)");
    }
    ok
}

/// Runs the AWS CLI against `node`'s S3 door with its admin key.
fn aws(node: &TestNode, args: &[&str]) -> Output {
    let (id, secret) = node.key.as_deref().unwrap().split_once(':').unwrap();
    let quiet: &[&str] = match args {
        ["s3", "cp" | "sync" | "mv", ..] => &["--no-progress", "--only-show-errors"],
        ["s3", "rm", ..] => &["--only-show-errors"],
        _ => &[],
    };
    Command::new("aws")
        .args(["--endpoint-url", &node.s3_url])
        .args(args)
        .args(quiet)
        .env("AWS_ACCESS_KEY_ID", id)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .unwrap()
}

fn aws_ok(node: &TestNode, args: &[&str]) -> String {
    let out = aws(node, args);
    assert!(out.status.success(), "aws {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The bytes at `path` through REST.
fn rest_get(node: &TestNode, path: &str) -> Vec<u8> {
    let r = http().get(format!("{}/v1/fs{path}", node.url)).send().unwrap();
    assert!(r.status().is_success(), "GET {path}: {}", r.status());
    r.bytes().unwrap().to_vec()
}

#[test]
fn boto3_drives_every_operation() {
    if !python_has("boto3") || !python_has("awscrt") {
        return;
    }
    let node = TestNode::start(&[]);
    let reader = node.ok(&["key", "create", "reader", "--read"]).trim().to_string();
    let scoped = node.ok(&["key", "create", "scoped", "--read", "--write", "--prefix", "/alpha"]).trim().to_string();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/s3/boto3_ops.py");
    let out = Command::new("python3")
        .arg(&script)
        .env("S3_URL", &node.s3_url)
        .env("ADMIN", node.key.as_deref().unwrap())
        .env("READER", &reader)
        .env("SCOPED", &scoped)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "boto3 checks failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_aws_cli_copies_syncs_lists_and_removes() {
    if !has_aws_cli() {
        return;
    }
    let node = TestNode::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.bin");
    let bytes = data(7, 21 << 20);
    std::fs::write(&big, &bytes).unwrap();
    let tree = dir.path().join("tree");
    for (p, body) in [("a.txt", "a"), ("sub/b.txt", "b"), ("sub/deeper/c.txt", "c"), ("d e.txt", "space")] {
        let f = tree.join(p);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, body).unwrap();
    }

    aws_ok(&node, &["s3", "mb", "s3://cli"]);
    assert!(aws_ok(&node, &["s3", "ls"]).contains(" cli\n"));
    // 21 MiB: the CLI uploads it in 8 MiB parts.
    aws_ok(&node, &["s3", "cp", big.to_str().unwrap(), "s3://cli/big.bin"]);
    assert_eq!(rest_get(&node, "/cli/big.bin"), bytes, "the multipart object through REST");
    let head = aws_ok(&node, &["s3api", "head-object", "--bucket", "cli", "--key", "big.bin"]);
    assert!(head.contains("-3\\\""), "a three-part ETag: {head}");
    let back = dir.path().join("back.bin");
    aws_ok(&node, &["s3", "cp", "s3://cli/big.bin", back.to_str().unwrap()]);
    assert_eq!(std::fs::read(&back).unwrap(), bytes);

    aws_ok(&node, &["s3", "sync", tree.to_str().unwrap(), "s3://cli/tree"]);
    let listed = aws_ok(&node, &["s3", "ls", "--recursive", "s3://cli/tree/"]);
    assert_eq!(listed.lines().count(), 4, "{listed}");
    for key in ["tree/a.txt", "tree/d e.txt", "tree/sub/b.txt", "tree/sub/deeper/c.txt"] {
        assert!(listed.contains(key), "{key} in {listed}");
    }
    let top = aws_ok(&node, &["s3", "ls", "s3://cli/tree/"]);
    assert!(top.contains("PRE sub/") && top.contains("a.txt") && !top.contains("b.txt"), "{top}");
    // A second sync has nothing to do.
    assert_eq!(aws_ok(&node, &["s3", "sync", tree.to_str().unwrap(), "s3://cli/tree"]).trim(), "");
    assert_eq!(rest_get(&node, "/cli/tree/sub/deeper/c.txt"), b"c");

    aws_ok(&node, &["s3", "rm", "--recursive", "s3://cli/tree"]);
    // (`aws s3 ls` exits 1 when it lists nothing.)
    assert_eq!(String::from_utf8_lossy(&aws(&node, &["s3", "ls", "--recursive", "s3://cli/tree/"]).stdout).trim(), "");
    // The directories the keys made are gone with them.
    let r = http().get(format!("{}/v1/fs/cli/tree", node.url)).send().unwrap();
    assert_eq!(r.status(), 404);
    let missing = aws(&node, &["s3api", "get-object", "--bucket", "cli", "--key", "nope", "/dev/null"]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("NoSuchKey"));
    let no_bucket = aws(&node, &["s3", "ls", "s3://nope"]);
    assert!(String::from_utf8_lossy(&no_bucket.stderr).contains("NoSuchBucket"));
    aws_ok(&node, &["s3", "rb", "--force", "s3://cli"]);
}

#[test]
fn s3_rest_the_cli_and_a_mount_see_the_same_bytes() {
    if !has_aws_cli() {
        return;
    }
    let node = TestNode::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f.bin");
    let bytes = data(11, 3 << 20);
    std::fs::write(&file, &bytes).unwrap();
    aws_ok(&node, &["s3", "mb", "s3://same"]);
    aws_ok(&node, &["s3", "cp", file.to_str().unwrap(), "s3://same/dir/via-s3.bin"]);
    // S3 -> REST and the CLI.
    assert_eq!(rest_get(&node, "/same/dir/via-s3.bin"), bytes);
    let out = node.cli(&["cat", "/same/dir/via-s3.bin"]);
    assert!(out.status.success());
    assert_eq!(out.stdout, bytes);
    // REST -> S3.
    let r = http().put(format!("{}/v1/fs/same/dir/via-rest.txt", node.url)).body("written over REST").send().unwrap();
    assert!(r.status().is_success());
    let got = dir.path().join("got.txt");
    aws_ok(&node, &["s3", "cp", "s3://same/dir/via-rest.txt", got.to_str().unwrap()]);
    assert_eq!(std::fs::read(&got).unwrap(), b"written over REST");
    // S3 <-> a mount.
    let Some(m) = Mount::new(&node, &[]) else { return };
    assert_eq!(std::fs::read(m.path("same/dir/via-s3.bin")).unwrap(), bytes);
    std::fs::write(m.path("same/dir/via-mount.txt"), b"written in a mount").unwrap();
    aws_ok(&node, &["s3", "cp", "s3://same/dir/via-mount.txt", got.to_str().unwrap()]);
    assert_eq!(std::fs::read(&got).unwrap(), b"written in a mount");
    // A file changed outside S3 gets an ETag of its new content, not its old MD5.
    let before = aws_ok(&node, &["s3api", "head-object", "--bucket", "same", "--key", "dir/via-s3.bin"]);
    std::fs::write(m.path("same/dir/via-s3.bin"), b"changed").unwrap();
    let after = aws_ok(&node, &["s3api", "head-object", "--bucket", "same", "--key", "dir/via-s3.bin"]);
    let etag = |s: &str| s.lines().find(|l| l.contains("\"ETag\"")).unwrap_or_default().to_string();
    assert_ne!(etag(&before), etag(&after));
    assert!(after.contains("\"ContentLength\": 7"), "{after}");
}

#[test]
fn a_public_bucket_is_read_without_a_signature_and_written_with_one_only() {
    let node = TestNode::start(&[]);
    let r = http().put(format!("{}/v1/fs/pub/dir/a.txt", node.url)).body("public bytes").send().unwrap();
    assert!(r.status().is_success());
    let anon = |method: reqwest::Method, path: &str| {
        http().request(method, format!("{}{path}", node.s3_url)).send().unwrap().status().as_u16()
    };
    assert_eq!(anon(reqwest::Method::GET, "/pub/dir/a.txt"), 403, "private by default");
    assert!(node.ok(&["bucket", "public", "pub"]).contains("public-read"));
    let r = http().get(format!("{}/pub/dir/a.txt", node.s3_url)).send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().unwrap(), "public bytes");
    assert_eq!(anon(reqwest::Method::HEAD, "/pub/dir/a.txt"), 200);
    let listing = http().get(format!("{}/pub?list-type=2", node.s3_url)).send().unwrap().text().unwrap();
    assert!(listing.contains("<Key>dir/a.txt</Key>"), "{listing}");
    assert_eq!(anon(reqwest::Method::PUT, "/pub/dir/b.txt"), 403, "writes still need a signature");
    assert_eq!(anon(reqwest::Method::DELETE, "/pub/dir/a.txt"), 403);
    assert_eq!(anon(reqwest::Method::GET, "/"), 403, "listing buckets needs a key");
    node.ok(&["bucket", "private", "pub"]);
    assert_eq!(anon(reqwest::Method::GET, "/pub/dir/a.txt"), 403);
    assert!(!node.cli(&["bucket", "public", "no-such-bucket"]).status.success());
}

#[test]
fn abandoned_multipart_uploads_are_swept_after_their_expiry() {
    if !has_aws_cli() {
        return;
    }
    let node = TestNode::start(&["--s3-upload-expiry", "2s"]);
    aws_ok(&node, &["s3", "mb", "s3://sweep"]);
    let created = aws_ok(
        &node,
        &[
            "s3api",
            "create-multipart-upload",
            "--bucket",
            "sweep",
            "--key",
            "k",
            "--output",
            "text",
            "--query",
            "UploadId",
        ],
    );
    let id = created.trim().to_string();
    let dir = tempfile::tempdir().unwrap();
    let part = dir.path().join("part");
    std::fs::write(&part, data(3, 1 << 20)).unwrap();
    aws_ok(
        &node,
        &[
            "s3api",
            "upload-part",
            "--bucket",
            "sweep",
            "--key",
            "k",
            "--upload-id",
            &id,
            "--part-number",
            "1",
            "--body",
            part.to_str().unwrap(),
        ],
    );
    let uploads = || aws_ok(&node, &["s3api", "list-multipart-uploads", "--bucket", "sweep", "--output", "json"]);
    assert!(uploads().contains(&id));
    common::wait_for("the upload to be swept", std::time::Duration::from_secs(30), || !uploads().contains(&id));
    let r = http().get(format!("{}/v1/fs/.cairn-s3/uploads/sweep/{id}", node.url)).send().unwrap();
    assert_eq!(r.status(), 404, "the parts went with it");
    let gone = aws(&node, &["s3api", "list-parts", "--bucket", "sweep", "--key", "k", "--upload-id", &id]);
    assert!(String::from_utf8_lossy(&gone.stderr).contains("NoSuchUpload"));
}
