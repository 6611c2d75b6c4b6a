//! File history against a real node: `versions:N` on a directory, REST `?op=versions`,
//! `?version=V`, `?op=restore`, and the CLI's `log`, `get --version` and `restore`,
//! including a deleted file brought back.

mod common;
use common::{data, http, TestNode};
use reqwest::StatusCode;
use serde_json::Value;

#[test]
fn versions_are_listed_read_and_restored_over_rest_and_the_cli() {
    let node = TestNode::start(&[]);
    let c = http();
    let url = format!("{}/v1/fs/docs/f", node.url);
    c.post(format!("{}/v1/fs/docs?op=mkdir", node.url)).send().unwrap();
    node.ok(&["policy", "set", "/docs", "versions:3"]);
    // Small (inline) and large (chunked) contents alike.
    let contents = [b"first".to_vec(), b"second".to_vec(), data(7, 5 << 20), b"fourth".to_vec(), b"fifth".to_vec()];
    for body in &contents {
        assert_eq!(c.put(&url).body(body.clone()).send().unwrap().status(), StatusCode::CREATED);
    }
    let v: Value = c.get(format!("{url}?op=versions")).send().unwrap().json().unwrap();
    let list = v["versions"].as_array().unwrap();
    let numbers: Vec<u64> = list.iter().map(|x| x["version"].as_u64().unwrap()).collect();
    assert_eq!(numbers, vec![5, 4, 3, 2], "the current one and three kept: {v}");
    assert_eq!(list[0]["current"], true);
    assert_eq!(list[2]["size"], 5 << 20);
    let old = c.get(format!("{url}?version=3")).send().unwrap().bytes().unwrap();
    assert!(old.as_ref() == contents[2].as_slice(), "version 3 read back whole");
    let r = c.get(format!("{url}?version=1")).send().unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "trimmed");
    // Deleted: a deleted version, and the history stays reachable by name.
    assert_eq!(c.delete(&url).send().unwrap().status(), StatusCode::NO_CONTENT);
    assert_eq!(c.get(&url).send().unwrap().status(), StatusCode::NOT_FOUND);
    let v: Value = c.get(format!("{url}?op=versions")).send().unwrap().json().unwrap();
    assert_eq!(v["versions"][0]["deleted"], true, "{v}");
    let log = node.ok(&["log", "/docs/f"]);
    assert!(log.contains("deleted"), "{log}");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("v3");
    node.ok(&["get", "/docs/f", out.to_str().unwrap(), "--version", "3"]);
    assert!(std::fs::read(&out).unwrap() == contents[2]);
    let to_stdout = node.cli(&["get", "/docs/f", "-", "--version", "4"]);
    assert_eq!(to_stdout.stdout, b"fourth");
    // Undelete through the CLI, then restore an older one over REST.
    node.ok(&["restore", "/docs/f", "--version", "5"]);
    assert_eq!(c.get(&url).send().unwrap().text().unwrap(), "fifth");
    let r = c.post(format!("{url}?op=restore&version=4")).send().unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(c.get(&url).send().unwrap().text().unwrap(), "fourth");
    let v: Value = c.get(format!("{url}?op=versions")).send().unwrap().json().unwrap();
    assert_eq!(v["versions"][0]["version"], 8, "undelete and restore are commits: {v}");
    // Bad input.
    let r = c.post(format!("{url}?op=restore&version=999")).send().unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = c.post(format!("{}/v1/fs/docs?op=policy&policy=versions:x", node.url)).send().unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = c.get(format!("{}/v1/fs/docs/never?op=versions", node.url)).send().unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}
