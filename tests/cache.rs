//! The client's chunk cache against a real node: a cached file's reads make no chunk
//! requests, the cache survives a restart of the client, a changed file is not served from
//! it, its size stays bounded, and the CLI's `get --cache` / `cat --cache` use it.

mod common;
use cairn_client::cache::ChunkCache;
use cairn_client::{Client, File, OpenOptions};
use common::{data, http, TestNode};
use std::io::{Read, Write};
use std::process::Command;
use std::sync::Arc;

fn cached_client(node: &TestNode, dir: &std::path::Path, max: u64) -> Client {
    Client::connect(&node.url).unwrap().with_cache(Arc::new(ChunkCache::open(dir, max).unwrap()))
}

fn fetches(c: &Client) -> u64 {
    c.as_async().backend().chunk_fetches()
}

#[test]
fn cached_files_are_read_without_chunk_requests_until_they_change() {
    let node = TestNode::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let body = data(4, 10 << 20);
    let client = cached_client(&node, dir.path(), 64 << 20);
    client.mkdir("/c", false).unwrap();
    let mut f = client.create("/c/big").unwrap();
    f.write_all(&body).unwrap();
    f.close().unwrap();
    assert!(File::from_cache(&client, "/c/big").unwrap().is_none(), "never cached");
    let mut back = Vec::new();
    OpenOptions::new().read(true).cache(true).open(&client, "/c/big").unwrap().read_to_end(&mut back).unwrap();
    assert!(back == body);
    let first = fetches(&client);
    assert_eq!(first, 3, "three chunks of 4 MiB fetched once");
    let mut again = Vec::new();
    File::from_cache(&client, "/c/big").unwrap().expect("still this version").read_to_end(&mut again).unwrap();
    assert!(again == body);
    assert_eq!(fetches(&client), first, "no chunk requests for cached chunks");
    // A new client on the same cache directory (a restart) finds it all again.
    let restarted = cached_client(&node, dir.path(), 64 << 20);
    let mut third = Vec::new();
    File::from_cache(&restarted, "/c/big").unwrap().expect("survives restarts").read_to_end(&mut third).unwrap();
    assert!(third == body);
    assert_eq!(fetches(&restarted), 0);
    // Changed in the cluster: not served from the cache.
    http().put(format!("{}/v1/fs/c/big", node.url)).body(data(5, 6 << 20)).send().unwrap();
    assert!(File::from_cache(&restarted, "/c/big").unwrap().is_none(), "a changed file is not the cached one");
    // Bounded: a small cache keeps the most recently used chunks only.
    let small = tempfile::tempdir().unwrap();
    let bounded = cached_client(&node, small.path(), 5 << 20);
    let mut all = Vec::new();
    OpenOptions::new().read(true).cache(true).open(&bounded, "/c/big").unwrap().read_to_end(&mut all).unwrap();
    let on_disk: u64 = std::fs::read_dir(small.path())
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum();
    assert!(on_disk <= 5 << 20, "{on_disk} bytes cached");
    // A damaged cached chunk is dropped and fetched again, never served.
    for e in std::fs::read_dir(small.path()).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            std::fs::write(&p, b"garbage").unwrap();
        }
    }
    let before = fetches(&bounded);
    let mut checked = Vec::new();
    File::from_cache(&bounded, "/c/big").unwrap().unwrap().read_to_end(&mut checked).unwrap();
    assert!(checked == all);
    assert!(fetches(&bounded) > before);
}

fn served(node: &TestNode) -> u64 {
    let v: serde_json::Value = http().get(format!("{}/v1/node", node.url)).send().unwrap().json().unwrap();
    v["chunks_served"].as_u64().unwrap()
}

#[test]
fn the_cli_reads_through_the_cache() {
    let node = TestNode::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let body = data(6, 9 << 20);
    http().put(format!("{}/v1/fs/f", node.url)).body(body.clone()).send().unwrap();
    let get = |to: &str| {
        let out = Command::new(common::bin())
            .env("CAIRN_CACHE_DIR", &cache)
            .args(["--node", &node.url, "--no-short-circuit", "get", "--cache", "/f"])
            .arg(dir.path().join(to))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    get("one");
    let after_first = served(&node);
    get("two");
    assert_eq!(served(&node), after_first, "the second download came from the cache");
    assert!(std::fs::read(dir.path().join("two")).unwrap() == body);
    let out = Command::new(common::bin())
        .env("CAIRN_CACHE_DIR", &cache)
        .args(["--node", &node.url, "--no-short-circuit", "cat", "--cache", "/f"])
        .output()
        .unwrap();
    assert!(out.stdout == body);
    assert_eq!(served(&node), after_first);
}
