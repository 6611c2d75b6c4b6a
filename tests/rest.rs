//! The REST API over raw HTTP: files, ranges, listings, namespace operations, errors.

mod common;
use common::{data, http, TestNode};
use reqwest::StatusCode;
use serde_json::Value;

fn error_code(resp: reqwest::blocking::Response) -> String {
    let v: Value = resp.json().unwrap();
    v["error"]["code"].as_str().unwrap().to_string()
}

#[test]
fn put_get_head_and_ranges() {
    let node = TestNode::start(&[]);
    let c = http();
    let url = format!("{}/v1/fs/docs/deep/file.bin", node.url);
    let body = data(1, 5 << 20 | 77);
    let r = c.put(&url).body(body.clone()).send().unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let stat: Value = r.json().unwrap();
    assert_eq!(stat["size"], body.len());
    assert_eq!(stat["path"], "/docs/deep/file.bin");

    let r = c.get(&url).send().unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(r.bytes().unwrap().as_ref(), body.as_slice());

    let r = c.head(&url).send().unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-length"], body.len().to_string().as_str());
    assert_eq!(r.headers()["x-cairn-type"], "file");
    assert_eq!(r.headers()["etag"].to_str().unwrap(), etag);
    assert!(r.headers().contains_key("last-modified"));

    // A range that crosses the 4 MiB chunk boundary, a suffix range and an open-ended range.
    let cases = [
        ("bytes=4194300-4194310", 4194300usize, 4194311usize),
        ("bytes=-10", body.len() - 10, body.len()),
        ("bytes=5242800-", 5242800, body.len()),
    ];
    for (range, from, to) in cases {
        let r = c.get(&url).header("range", range).send().unwrap();
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        let cr = r.headers()["content-range"].to_str().unwrap().to_string();
        assert_eq!(cr, format!("bytes {}-{}/{}", from, to - 1, body.len()));
        assert_eq!(r.bytes().unwrap().as_ref(), &body[from..to], "{range}");
    }
    for bad in ["bytes=99999999-", "bytes=10-5", "bytes=x-y", "bytes=-0"] {
        let r = c.get(&url).header("range", bad).send().unwrap();
        assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE, "{bad}");
        assert_eq!(r.headers()["content-range"], format!("bytes */{}", body.len()).as_str());
        assert_eq!(error_code(r), "range_not_satisfiable");
    }

    // Replacing is atomic and changes the ETag.
    let r = c.put(&url).body("small now").send().unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = c.get(&url).send().unwrap();
    assert_ne!(r.headers()["etag"].to_str().unwrap(), etag);
    assert_eq!(r.text().unwrap(), "small now");
}

#[test]
fn directories_stat_delete_mkdir_rename() {
    let node = TestNode::start(&[]);
    let c = http();
    let fs = |p: &str| format!("{}/v1/fs{p}", node.url);
    assert_eq!(c.post(fs("/a/b?op=mkdir&parents=true")).send().unwrap().status(), StatusCode::CREATED);
    c.put(fs("/a/b/one")).body("1").send().unwrap();
    c.put(fs("/a/two")).body("22").send().unwrap();

    let list: Value = c.get(fs("/a")).send().unwrap().json().unwrap();
    let names: Vec<&str> = list["entries"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["b", "two"]);
    let root: Value = c.get(fs("/")).send().unwrap().json().unwrap();
    assert_eq!(root["entries"][0]["type"], "dir");

    let stat: Value = c.get(fs("/a/two?op=stat")).send().unwrap().json().unwrap();
    assert_eq!(stat["size"], 2);
    assert_eq!(stat["type"], "file");
    let head = c.head(fs("/a")).send().unwrap();
    assert_eq!(head.headers()["x-cairn-type"], "dir");

    // Rename a directory atomically; the old path is gone, the new one holds the tree.
    let r = c.post(fs("/a?op=rename&to=/z")).send().unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(c.get(fs("/z/b/one")).send().unwrap().text().unwrap(), "1");
    assert_eq!(c.get(fs("/a")).send().unwrap().status(), StatusCode::NOT_FOUND);

    // Per-file chunk size, and symlinks.
    let r = c.put(fs("/z/small-chunks?chunk_size=65536")).body(data(2, 300_000)).send().unwrap();
    let stat: Value = r.json().unwrap();
    assert_eq!((stat["chunk_size"].as_u64(), stat["chunks"].as_u64()), (Some(65536), Some(5)));
    assert_eq!(c.get(fs("/z/small-chunks")).send().unwrap().bytes().unwrap().as_ref(), data(2, 300_000).as_slice());
    assert_eq!(
        c.put(fs("/z/bad?chunk_size=10")).body(data(2, 30_000)).send().unwrap().status(),
        StatusCode::BAD_REQUEST
    );
    let r = c.post(fs("/z/link?op=symlink&target=/z/two")).send().unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let link: Value = c.get(fs("/z/link?op=stat")).send().unwrap().json().unwrap();
    assert_eq!((link["type"].as_str(), link["target"].as_str()), (Some("symlink"), Some("/z/two")));
    c.delete(fs("/z/link")).send().unwrap();
    c.delete(fs("/z/small-chunks")).send().unwrap();

    let r = c.delete(fs("/z"));
    let r = r.send().unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(error_code(r), "not_empty");
    assert_eq!(c.delete(fs("/z/two")).send().unwrap().status(), StatusCode::NO_CONTENT);
    assert_eq!(c.delete(fs("/z?recursive=true")).send().unwrap().status(), StatusCode::NO_CONTENT);
    let root: Value = c.get(fs("/")).send().unwrap().json().unwrap();
    assert_eq!(root["entries"].as_array().unwrap().len(), 0);
}

#[test]
fn cluster_openapi_and_errors_are_json() {
    let node = TestNode::start(&[]);
    let c = http();
    let v: Value = c.get(format!("{}/v1/cluster", node.url)).send().unwrap().json().unwrap();
    assert_eq!(v["healthy"], true);
    assert_eq!(v["nodes"][0]["url"], node.plain_url.as_str());
    assert!(v["raft"]["term"].as_u64().unwrap() >= 1);
    assert!(v["raft"]["last_log_index"].as_u64().is_some());

    let spec: Value = c.get(format!("{}/v1/openapi.json", node.url)).send().unwrap().json().unwrap();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    for p in ["/v1/fs/{path}", "/v1/cluster"] {
        assert!(spec["paths"][p].is_object(), "{p} documented");
    }

    let r = c.get(format!("{}/v1/fs/missing", node.url)).send().unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let v: Value = r.json().unwrap();
    assert_eq!(v["error"]["code"], "not_found");
    assert!(v["error"]["message"].as_str().unwrap().contains("/missing"));
    assert_eq!(c.get(format!("{}/nowhere", node.url)).send().unwrap().status(), StatusCode::NOT_FOUND);
    let r = c.patch(format!("{}/v1/fs/x", node.url)).send().unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

/// Peak resident memory of a process, from /proc.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn large_bodies_stream_with_bounded_memory() {
    let node = TestNode::start(&[]);
    let c = http();
    let url = format!("{}/v1/fs/huge", node.url);
    const TOTAL: u64 = 512 << 20;
    // A streamed (chunked) request body generated on the fly: never held whole anywhere.
    struct Gen(u64);
    impl std::io::Read for Gen {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = (buf.len() as u64).min(TOTAL - self.0) as usize;
            for (i, b) in buf[..n].iter_mut().enumerate() {
                *b = ((self.0 + i as u64) % 251) as u8;
            }
            self.0 += n as u64;
            Ok(n)
        }
    }
    let r = c.put(&url).body(reqwest::blocking::Body::new(Gen(0))).send().unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let mut resp = c.get(&url).send().unwrap();
    let mut pos = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        use std::io::Read;
        let n = resp.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        assert!(buf[..n].iter().enumerate().all(|(i, &b)| b == ((pos + i as u64) % 251) as u8), "byte at {pos}");
        pos += n as u64;
    }
    assert_eq!(pos, TOTAL);
    let peak = peak_rss_kib(node.pid());
    eprintln!("node peak RSS {peak} KiB");
    assert!(peak < 200 * 1024, "node peak RSS {peak} KiB for a 512 MiB round trip");
}
