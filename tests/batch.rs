//! `POST /v1/batch` against a real node: all or none, per-item preconditions, locks inside a
//! batch, chunks uploaded first and committed by a batch, clear errors for bad batches.

mod common;
use common::{code_of, http, TestNode};
use reqwest::StatusCode;
use serde_json::{json, Value};

fn batch(c: &reqwest::blocking::Client, node: &TestNode, ops: Value) -> reqwest::blocking::Response {
    c.post(format!("{}/v1/batch", node.url)).json(&json!({ "ops": ops })).send().unwrap()
}

fn status(c: &reqwest::blocking::Client, node: &TestNode, path: &str) -> StatusCode {
    c.get(format!("{}/v1/fs{path}?op=stat", node.url)).send().unwrap().status()
}

#[test]
fn a_batch_applies_all_or_none() {
    let node = TestNode::start(&[]);
    let c = http();
    c.put(format!("{}/v1/fs/x", node.url)).body("x").send().unwrap();
    let etag = c.get(format!("{}/v1/fs/x", node.url)).send().unwrap().headers()["etag"].to_str().unwrap().to_string();
    let r = batch(
        &c,
        &node,
        json!([
            {"op": "mkdir", "path": "/a"},
            {"op": "put", "path": "/a/hello", "data": "aGVsbG8="},
            {"op": "rename", "path": "/x", "to": "/y", "if_match": etag},
            {"op": "setattr", "path": "/y", "mode": "0600"},
        ]),
    );
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().unwrap();
    assert_eq!(v["results"][1]["size"], 5);
    assert_eq!(v["results"][3]["mode"], "0600");
    assert_eq!(c.get(format!("{}/v1/fs/a/hello", node.url)).send().unwrap().text().unwrap(), "hello");
    // A stale ETag on the last item: the whole batch fails with its index, nothing changes.
    let r = batch(
        &c,
        &node,
        json!([
            {"op": "mkdir", "path": "/b"},
            {"op": "delete", "path": "/a", "recursive": true},
            {"op": "rename", "path": "/y", "to": "/z", "if_match": etag},
        ]),
    );
    assert_eq!(r.status(), StatusCode::PRECONDITION_FAILED);
    let v: Value = r.json().unwrap();
    assert_eq!((v["index"].as_u64(), v["error"]["code"].as_str()), (Some(2), Some("precondition_failed")));
    assert_eq!(status(&c, &node, "/b"), StatusCode::NOT_FOUND);
    assert_eq!(status(&c, &node, "/a/hello"), StatusCode::OK);
    assert_eq!(status(&c, &node, "/y"), StatusCode::OK);
    // Create-only items.
    let r = batch(&c, &node, json!([{"op": "put", "path": "/y", "data": "", "if_none_match": "*"}]));
    assert_eq!(code_of(r), (StatusCode::PRECONDITION_FAILED, "precondition_failed".into()));
}

#[test]
fn a_batch_commits_uploaded_chunks_and_works_under_its_own_lock() {
    let node = TestNode::start(&[]);
    let c = http();
    let part = vec![7u8; 100_000];
    let id = blake3::hash(&part).to_hex().to_string();
    let r = c.put(format!("{}/v1/chunks/{id}", node.url)).body(part.clone()).send().unwrap();
    assert!(r.status().is_success());
    let r = batch(
        &c,
        &node,
        json!([
            {"op": "lock", "paths": ["/job"], "ttl": 30},
            {"op": "put", "path": "/job/out", "chunks": [{"id": id, "len": 100_000}, {"id": id, "len": 100_000}]},
        ]),
    );
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().unwrap();
    let lock = v["results"][0]["lock_id"].as_str().unwrap().to_string();
    assert_eq!(v["results"][1]["size"], 200_000);
    let back = c.get(format!("{}/v1/fs/job/out", node.url)).send().unwrap().bytes().unwrap();
    assert_eq!(back.len(), 200_000);
    assert!(back.iter().all(|b| *b == 7));
    // Others are locked out of /job; the holder writes and releases in one batch.
    let r = batch(&c, &node, json!([{"op": "delete", "path": "/job", "recursive": true}]));
    assert_eq!(code_of(r).1, "locked");
    let r = batch(
        &c,
        &node,
        json!([
            {"op": "put", "path": "/job", "data": "ZG9uZQ==", "lock_id": lock},
            {"op": "unlock", "lock_id": lock},
        ]),
    );
    assert_eq!(code_of(r).1, "is_a_directory", "a put onto a directory fails, and so does the unlock");
    let r = batch(
        &c,
        &node,
        json!([
            {"op": "delete", "path": "/job", "recursive": true, "lock_id": lock},
            {"op": "unlock", "lock_id": lock},
        ]),
    );
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = c.get(format!("{}/v1/locks", node.url)).send().unwrap().json().unwrap();
    assert_eq!(v["locks"], json!([]));
    // A chunk that is not stored cannot be committed.
    let missing = "ab".repeat(32);
    let r = batch(&c, &node, json!([{"op": "put", "path": "/m", "chunks": [{"id": missing, "len": 5}]}]));
    assert_eq!(code_of(r).1, "conflict");
}

#[test]
fn bad_batches_get_clear_errors() {
    let node = TestNode::start(&[]);
    let c = http();
    let many: Vec<Value> = (0..1001).map(|i| json!({"op": "mkdir", "path": format!("/d{i}")})).collect();
    for ops in [
        json!([]),
        Value::Array(many),
        json!([{"op": "explode", "path": "/a"}]),
        json!([{"op": "mkdir"}]),
        json!([{"op": "put", "path": "/a", "data": "not base64!"}]),
        json!([{"op": "put", "path": "/a"}]),
        json!([{"op": "mkdir", "path": "/a", "colour": "red"}]),
        json!([{"op": "unlock", "lock_id": "xyz"}]),
    ] {
        let (status, code) = code_of(batch(&c, &node, ops.clone()));
        assert_eq!((status, code.as_str()), (StatusCode::BAD_REQUEST, "invalid_argument"), "{ops}");
    }
    let r = c.post(format!("{}/v1/batch", node.url)).body("[").send().unwrap();
    assert_eq!(code_of(r).0, StatusCode::BAD_REQUEST);
    assert_eq!(status(&c, &node, "/a"), StatusCode::NOT_FOUND);
}
