//! Metadata v2 against a real node: attributes, hard links, xattrs, in-place writes, appends,
//! concatenation and paged listings over REST and the CLI; files open in the Rust client
//! follow their inode through renames; a data dir of the previous format is refused.

mod common;
use common::{data, http, TestNode};
use reqwest::StatusCode;
use serde_json::Value;
use std::io::{Read, Write};

fn error_code(resp: reqwest::blocking::Response) -> String {
    let v: Value = resp.json().unwrap();
    v["error"]["code"].as_str().unwrap().to_string()
}

fn stat(node: &TestNode, path: &str) -> Value {
    http().get(format!("{}/v1/fs{path}?op=stat", node.url)).send().unwrap().json().unwrap()
}

#[test]
fn setattr_truncate_link_and_xattrs_over_rest() {
    let node = TestNode::start(&[]);
    let c = http();
    let f = format!("{}/v1/fs/a/f", node.url);
    assert_eq!(c.put(&f).body("hello world").send().unwrap().status(), StatusCode::CREATED);
    let before = stat(&node, "/a/f");
    assert_eq!((before["nlink"].as_u64(), before["mode"].as_str()), (Some(1), Some("0644")));

    let r = c.post(format!("{f}?op=setattr&mode=0600&uid=1000&gid=100&atime=1000000&mtime=2000000")).send().unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let s = stat(&node, "/a/f");
    assert_eq!((s["mode"].as_str(), s["uid"].as_u64(), s["gid"].as_u64()), (Some("0600"), Some(1000), Some(100)));
    assert_eq!(
        (s["atime_ns"].as_i64(), s["mtime_ns"].as_i64()),
        (Some(1_000_000_000_000_000), Some(2_000_000_000_000_000))
    );
    assert!(s["ctime_ns"].as_i64() > before["ctime_ns"].as_i64(), "ctime follows every change");
    assert_eq!(error_code(c.post(format!("{f}?op=setattr&mode=99999")).send().unwrap()), "invalid_argument");
    assert_eq!(error_code(c.post(format!("{f}?op=setattr")).send().unwrap()), "invalid_argument");

    // Truncate down, then up past the inline limit: the new bytes read as zeros.
    c.post(format!("{f}?op=truncate&size=5")).send().unwrap().error_for_status().unwrap();
    assert_eq!(c.get(&f).send().unwrap().bytes().unwrap().as_ref(), b"hello");
    c.post(format!("{f}?op=truncate&size=100000")).send().unwrap().error_for_status().unwrap();
    let body = c.get(&f).send().unwrap().bytes().unwrap();
    assert_eq!(body.len(), 100_000);
    assert_eq!(&body[..5], b"hello");
    assert!(body[5..].iter().all(|b| *b == 0));

    // A hard link: both names show nlink 2; the data lives while either name does.
    let r = c.post(format!("{f}?op=link&to=/b/g")).send().unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "the link's parent must exist");
    c.post(format!("{}/v1/fs/b?op=mkdir", node.url)).send().unwrap().error_for_status().unwrap();
    let r = c.post(format!("{f}?op=link&to=/b/g")).send().unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(stat(&node, "/a/f")["nlink"], 2);
    assert_eq!(stat(&node, "/b/g")["ino"], stat(&node, "/a/f")["ino"]);
    assert_eq!(error_code(c.post(format!("{}/v1/fs/b?op=link&to=/c", node.url)).send().unwrap()), "is_a_directory");
    assert_eq!(error_code(c.post(format!("{f}?op=link&to=/b/g")).send().unwrap()), "exists");
    c.delete(&f).send().unwrap().error_for_status().unwrap();
    let g = format!("{}/v1/fs/b/g", node.url);
    assert_eq!(stat(&node, "/b/g")["nlink"], 1);
    assert_eq!(c.get(&g).send().unwrap().bytes().unwrap().len(), 100_000);

    // Extended attributes: set, get, list, replace rules, remove, limits.
    let x = |name: &str| format!("{g}?op=xattr&name={name}");
    assert_eq!(c.put(x("user.origin")).body("camera 7").send().unwrap().status(), StatusCode::NO_CONTENT);
    c.put(x("user.empty")).body("").send().unwrap().error_for_status().unwrap();
    assert_eq!(c.get(x("user.origin")).send().unwrap().bytes().unwrap().as_ref(), b"camera 7");
    let names: Value = c.get(format!("{g}?op=xattrs")).send().unwrap().json().unwrap();
    assert_eq!(names["xattrs"], serde_json::json!(["user.empty", "user.origin"]));
    assert_eq!(error_code(c.put(format!("{}&flag=create", x("user.origin"))).body("x").send().unwrap()), "exists");
    assert_eq!(error_code(c.put(format!("{}&flag=replace", x("user.nope"))).body("x").send().unwrap()), "not_found");
    assert_eq!(error_code(c.put(x(&"n".repeat(256))).body("x").send().unwrap()), "invalid_argument");
    assert_eq!(error_code(c.put(x("user.big")).body(vec![1u8; (64 << 10) + 1]).send().unwrap()), "invalid_argument");
    c.put(x("user.max")).body(vec![1u8; 64 << 10]).send().unwrap().error_for_status().unwrap();
    assert_eq!(c.delete(x("user.origin")).send().unwrap().status(), StatusCode::NO_CONTENT);
    assert_eq!(error_code(c.get(x("user.origin")).send().unwrap()), "not_found");
    assert_eq!(error_code(c.delete(x("user.origin")).send().unwrap()), "not_found");
}

#[test]
fn offset_writes_appends_and_concat_over_rest() {
    let node = TestNode::start(&[]);
    let c = http();
    let f = format!("{}/v1/fs/w/f", node.url);
    let mut want = data(1, 9 << 20 | 123);
    c.put(&f).body(want.clone()).send().unwrap().error_for_status().unwrap();
    // A write across a chunk boundary and one past the end (leaving a hole).
    for (off, len, seed) in [(4u64 << 20, 1000usize, 2u64), ((9 << 20) + 1000, 5000, 3)] {
        let patch = data(seed, len);
        let r = c.put(format!("{f}?offset={off}")).body(patch.clone()).send().unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        want.resize(want.len().max(off as usize + len), 0);
        want[off as usize..off as usize + len].copy_from_slice(&patch);
    }
    let extra = data(4, 70_000);
    c.post(format!("{f}?op=append")).body(extra.clone()).send().unwrap().error_for_status().unwrap();
    want.extend_from_slice(&extra);
    assert!(c.get(&f).send().unwrap().bytes().unwrap().as_ref() == want.as_slice());
    let r = c.put(format!("{}/v1/fs/w/missing?offset=0", node.url)).body("x").send().unwrap();
    assert_eq!(error_code(r), "not_found", "offset writes need an existing file");

    // Concatenation: parts of any size, one of them small enough to be inline.
    let parts = [data(5, 5 << 20 | 7), data(6, 300), data(7, 1 << 20)];
    for (i, p) in parts.iter().enumerate() {
        c.put(format!("{}/v1/fs/up/part{i}", node.url)).body(p.clone()).send().unwrap().error_for_status().unwrap();
    }
    let chunk_files = node.chunk_files();
    let r =
        c.post(format!("{}/v1/fs/w/joined?op=concat&sources=/up/part0,/up/part1,/up/part2", node.url)).send().unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let joined = c.get(format!("{}/v1/fs/w/joined", node.url)).send().unwrap().bytes().unwrap();
    assert!(joined.as_ref() == parts.concat().as_slice());
    assert!(node.chunk_files() <= chunk_files + 1, "concat copies no data (the inline part becomes one chunk)");
    let listing: Value = c.get(format!("{}/v1/fs/up", node.url)).send().unwrap().json().unwrap();
    assert_eq!(listing["entries"].as_array().unwrap().len(), 0, "the sources are gone");
    let r = c.post(format!("{}/v1/fs/w/j2?op=concat&sources=/w/f,/w/f", node.url)).send().unwrap();
    assert_eq!(error_code(r), "invalid_argument");
    let r = c.post(format!("{}/v1/fs/w/f?op=concat&sources=/w/f", node.url)).send().unwrap();
    assert_eq!(error_code(r), "invalid_argument");
}

#[test]
fn paged_listings_walk_every_entry_once_under_mutation() {
    let node = TestNode::start(&[]);
    let c = http();
    let stable: Vec<String> = (0..450).map(|i| format!("s{i:04}")).collect();
    for name in &stable {
        c.put(format!("{}/v1/fs/big/{name}", node.url)).body("x").send().unwrap().error_for_status().unwrap();
    }
    let r = c.get(format!("{}/v1/fs/big?limit=0", node.url)).send().unwrap();
    assert_eq!(error_code(r), "invalid_argument");
    let r = c.get(format!("{}/v1/fs/big?after=zz", node.url)).send().unwrap();
    assert_eq!(error_code(r), "invalid_argument", "cursors are checked");
    // Walk in pages of 40 while another client creates and deletes other entries.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churn = {
        let (url, stop) = (node.url.clone(), stop.clone());
        std::thread::spawn(move || {
            let c = http();
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && i < 2000 {
                let p = format!("{url}/v1/fs/big/t{:04}", i % 300);
                let _ = if i % 2 == 0 { c.put(&p).body("y").send() } else { c.delete(&p).send() };
                i += 1;
            }
        })
    };
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let url = match &after {
            Some(a) => format!("{}/v1/fs/big?limit=40&after={a}", node.url),
            None => format!("{}/v1/fs/big?limit=40", node.url),
        };
        let v: Value = c.get(url).send().unwrap().json().unwrap();
        let entries = v["entries"].as_array().unwrap();
        assert!(entries.len() <= 40);
        seen.extend(entries.iter().map(|e| e["name"].as_str().unwrap().to_string()));
        pages += 1;
        match v["next"].as_str() {
            Some(n) => after = Some(n.to_string()),
            None => break,
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    churn.join().unwrap();
    assert!(pages >= 12, "{pages} pages");
    let mut sorted = seen.clone();
    sorted.dedup();
    assert_eq!(sorted.len(), seen.len(), "no entry listed twice");
    let listed: std::collections::BTreeSet<&String> = seen.iter().collect();
    assert!(stable.iter().all(|s| listed.contains(s)), "every entry that existed throughout is listed");
    // Default page size 1000, and the CLI and Rust client follow pages.
    let v: Value = c.get(format!("{}/v1/fs/big", node.url)).send().unwrap().json().unwrap();
    assert!(v["entries"].as_array().unwrap().len() >= 450);
    let ls = node.ok(&["ls", "/big"]);
    assert!(stable.iter().all(|s| ls.lines().any(|l| l == s)));
    let client = cairn_client::Client::connect(&node.url).unwrap();
    let names: Vec<String> = client.read_dir("/big").unwrap().map(|e| e.unwrap().name).collect();
    assert!(stable.iter().all(|s| names.contains(s)));
}

#[test]
fn cli_attribute_commands() {
    let node = TestNode::start(&[]);
    let out = node.cli(&["touch", "/missing-dir/x"]);
    assert_eq!(out.status.code(), Some(3), "touch does not create parents");
    node.ok(&["mkdir", "-p", "/t"]);
    node.ok(&["touch", "/t/new"]);
    node.ok(&["touch", "--time", "1700000000", "/t/new"]);
    let s: Value = serde_json::from_str(&node.ok(&["--json", "stat", "/t/new"])).unwrap();
    assert_eq!((s["size"].as_u64(), s["mtime_ns"].as_i64()), (Some(0), Some(1_700_000_000_000_000_000)));
    node.ok(&["chmod", "751", "/t/new"]);
    node.ok(&["chown", "42:7", "/t/new"]);
    let s: Value = serde_json::from_str(&node.ok(&["--json", "stat", "/t/new"])).unwrap();
    assert_eq!((s["mode"].as_str(), s["uid"].as_u64(), s["gid"].as_u64()), (Some("0751"), Some(42), Some(7)));
    assert_eq!(node.cli(&["chmod", "9z", "/t/new"]).status.code(), Some(2));
    node.ok(&["truncate", "-s", "1MiB", "/t/new"]);
    assert_eq!(node.cli(&["cat", "/t/new"]).stdout, vec![0u8; 1 << 20]);
    node.ok(&["ln", "/t/new", "/t/other"]);
    node.ok(&["ln", "-s", "/t/new", "/t/sym"]);
    let s: Value = serde_json::from_str(&node.ok(&["--json", "stat", "/t/other"])).unwrap();
    assert_eq!(s["nlink"], 2);
    let s: Value = serde_json::from_str(&node.ok(&["--json", "stat", "/t/sym"])).unwrap();
    assert_eq!((s["type"].as_str(), s["target"].as_str()), (Some("symlink"), Some("/t/new")));
    node.ok(&["xattr", "set", "/t/new", "user.k", "v1"]);
    assert_eq!(node.ok(&["xattr", "get", "/t/other", "user.k"]), "v1\n");
    assert_eq!(node.ok(&["xattr", "ls", "/t/new"]), "user.k\n");
    node.ok(&["xattr", "rm", "/t/new", "user.k"]);
    assert_eq!(node.cli(&["xattr", "get", "/t/new", "user.k"]).status.code(), Some(3));
}

#[test]
fn open_files_follow_their_inode_through_renames() {
    let node = TestNode::start(&[]);
    let client = cairn_client::Client::connect(&node.url).unwrap();
    let big = data(9, 6 << 20);
    client.mkdir("/x", false).unwrap();
    let mut f = client.create("/x/file").unwrap();
    f.write_all(&big).unwrap();
    f.close().unwrap();
    // Unlocked: this client renames the file under its own open handle.
    let mut f = cairn_client::OpenOptions::new().read(true).write(true).lock(false).open(&client, "/x/file").unwrap();
    client.rename("/x/file", "/x/renamed").unwrap();
    f.write_at(b"patched", 100).unwrap();
    f.close().unwrap();
    let mut back = Vec::new();
    client.open("/x/renamed").unwrap().read_to_end(&mut back).unwrap();
    assert_eq!(&back[100..107], b"patched", "the write landed in the renamed file");
    assert_eq!(back.len(), big.len());
    assert!(client.metadata("/x/file").is_err(), "nothing appeared at the old path");
}

#[test]
fn a_data_dir_of_the_previous_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("node.json"),
        r#"{"format": 1, "node_id": 7, "cluster_id": "00000000000000000000000000000001", "secret": "s"}"#,
    )
    .unwrap();
    let out = std::process::Command::new(common::bin())
        .args(["up", "--data", dir.path().to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("format 1") && err.contains("empty data dir"), "{err}");
}

#[test]
fn a_file_unlinked_while_open_lives_until_its_last_handle_closes() {
    let node = TestNode::start(&[]);
    let client = cairn_client::Client::connect(&node.url).unwrap();
    let total = || -> u64 {
        let v: Value = http().get(format!("{}/v1/cluster", node.url)).send().unwrap().json().unwrap();
        v["chunks"]["total"].as_u64().unwrap()
    };
    let body = data(11, 5 << 20);
    client.mkdir("/o", false).unwrap();
    let mut w = client.create("/o/f").unwrap();
    w.write_all(&body).unwrap();
    w.close().unwrap();
    let mut f = cairn_client::OpenOptions::new().read(true).write(true).lock(false).open(&client, "/o/f").unwrap();
    let mut reader = client.open("/o/f").unwrap();
    client.remove("/o/f").unwrap();
    assert!(client.metadata("/o/f").is_err(), "the name is gone");
    assert_eq!(total(), 2, "the data is still referenced");
    // Readable and writable through the open handles.
    let mut back = Vec::new();
    reader.read_to_end(&mut back).unwrap();
    assert!(back == body);
    f.write_at(b"still here", 0).unwrap();
    f.flush().unwrap();
    let mut head = [0u8; 10];
    f.read_at(&mut head, 0).unwrap();
    assert_eq!(&head, b"still here");
    drop(reader);
    assert!(total() > 0, "one handle is still open");
    f.close().unwrap();
    wait_for_total_zero(&total);
}

/// Waits until no chunk is referenced any more.
fn wait_for_total_zero(total: &dyn Fn() -> u64) {
    common::wait_for("the orphan to be freed", std::time::Duration::from_secs(10), || total() == 0);
}

/// The change feed names what each write changed, in order, and what it left: the inode's
/// state and, for an entry, the inode it names (0 once removed).
#[test]
fn the_change_feed_reports_what_each_write_changed() {
    let node = TestNode::start(&[]);
    let feed = |after: u64, wait: u64| -> Value {
        let url = format!("{}/v1/changes?after={after}&wait_ms={wait}", node.url);
        http().get(url).send().unwrap().json().unwrap()
    };
    let start = feed(0, 0)["index"].as_u64().unwrap();
    // A question about the future waits, then answers with nothing new.
    let idle = feed(start, 50);
    assert_eq!((idle["index"].as_u64(), idle["changes"].as_array().map(Vec::len)), (Some(start), Some(0)));
    // A waiting question is answered by the next write.
    let waiter = {
        let url = format!("{}/v1/changes?after={start}&wait_ms=20000", node.url);
        std::thread::spawn(move || http().get(url).send().unwrap().json::<Value>().unwrap())
    };
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(http().put(format!("{}/v1/fs/d/f", node.url)).body("x").send().unwrap().status().is_success());
    let woke = waiter.join().unwrap();
    assert!(woke["index"].as_u64().unwrap() > start);
    let ino = stat(&node, "/d/f")["ino"].as_u64().unwrap();
    let all = feed(start, 0);
    let changes = all["changes"].as_array().unwrap();
    let named = |n: &str| changes.iter().rfind(|c| c["name"] == n).cloned();
    assert_eq!(named("f").unwrap()["state"].as_u64(), Some(ino), "the entry names the new inode");
    assert!(changes.iter().any(|c| c["ino"].as_u64() == Some(ino) && c["name"].is_null()));
    let after_put = all["index"].as_u64().unwrap();
    assert!(http().delete(format!("{}/v1/fs/d/f", node.url)).send().unwrap().status().is_success());
    let gone = feed(after_put, 5000);
    let changes = gone["changes"].as_array().unwrap();
    assert!(changes.iter().any(|c| c["name"] == "f" && c["state"] == 0), "{gone}");
    assert!(changes.iter().any(|c| c["ino"].as_u64() == Some(ino) && c["state"] == 0), "freed: {gone}");
    assert!(!gone["reset"].as_bool().unwrap());
}
