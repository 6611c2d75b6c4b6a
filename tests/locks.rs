//! The lock service and conditional writes against real nodes: REST, the CLI, the Rust
//! client's guard, races, expiry after a holder is SIGKILLed, stale fencing tokens, and
//! locks, batches and versions surviving the loss of the metadata leader.

mod common;
use common::{code_of, http, leader_index, start_cluster_with, wait_for, with_key, TestNode};
use reqwest::blocking::{Client, Response};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::Duration;

/// `url` with query `params`, encoded.
fn q(url: &str, params: &[(&str, &str)]) -> reqwest::Url {
    reqwest::Url::parse_with_params(url, params).unwrap()
}

fn take(c: &Client, node: &TestNode, body: Value) -> Response {
    c.post(format!("{}/v1/locks", node.url)).json(&body).send().unwrap()
}

fn held(c: &Client, node: &TestNode, body: Value) -> (String, u64) {
    let r = take(c, node, body);
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().unwrap();
    (v["lock_id"].as_str().unwrap().to_string(), v["fencing_token"].as_u64().unwrap())
}

fn put(c: &Client, node: &TestNode, path: &str, body: &str, headers: &[(&str, &str)]) -> Response {
    let mut req = c.put(format!("{}/v1/fs{path}", node.url)).body(body.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().unwrap()
}

fn locks_on(c: &Client, url: &str, path: &str) -> Vec<Value> {
    let v: Value = c.get(q(&format!("{url}/v1/locks"), &[("path", path)])).send().unwrap().json().unwrap();
    v["locks"].as_array().unwrap().clone()
}

#[test]
fn locks_are_all_or_none_enforced_on_writes_and_released() {
    let node = TestNode::start(&[]);
    let c = http();
    assert_eq!(put(&c, &node, "/a/f", "v1", &[]).status(), StatusCode::CREATED);
    let (id, token) = held(&c, &node, json!({ "paths": ["/a/f", "/b"], "mode": "exclusive", "ttl": 30 }));
    // Not granted: 409 locked, and the free path of the request was not taken either.
    let (status, code) = code_of(take(&c, &node, json!({ "paths": ["/c", "/b"] })));
    assert_eq!((status, code.as_str()), (StatusCode::CONFLICT, "locked"));
    assert_eq!(take(&c, &node, json!({ "paths": ["/c"], "mode": "shared" })).status(), StatusCode::OK);
    // Writes, deletes and renames by anyone not presenting the lock: 423.
    let url = |p: &str| format!("{}/v1/fs{p}", node.url);
    let refused = [
        put(&c, &node, "/a/f", "v2", &[]),
        put(&c, &node, "/b", "new", &[]),
        c.delete(url("/a/f")).send().unwrap(),
        c.delete(q(&url("/a"), &[("recursive", "true")])).send().unwrap(),
        c.post(q(&url("/a/f"), &[("op", "rename"), ("to", "/z")])).send().unwrap(),
        c.post(q(&url("/a/f"), &[("op", "append")])).body("x").send().unwrap(),
    ];
    for r in refused {
        assert_eq!(code_of(r), (StatusCode::LOCKED, "locked".to_string()));
    }
    assert_eq!(c.get(url("/a/f")).send().unwrap().text().unwrap(), "v1", "nothing changed");
    // The holder passes, with its token too; a token that is not the lock's is stale.
    assert_eq!(put(&c, &node, "/a/f", "v2", &[("x-cairn-lock", &id)]).status(), StatusCode::CREATED);
    let fence = token.to_string();
    let r = put(&c, &node, "/a/f", "v3", &[("x-cairn-lock", &id), ("x-cairn-fence", &fence)]);
    assert_eq!(r.status(), StatusCode::CREATED);
    let wrong = (token + 1000).to_string();
    let r = put(&c, &node, "/a/f", "v4", &[("x-cairn-lock", &id), ("x-cairn-fence", &wrong)]);
    assert_eq!(code_of(r), (StatusCode::CONFLICT, "conflict".to_string()));
    // Listings: the admin sees ids; a key that did not take the lock does not, nor may it
    // release it.
    let listed = locks_on(&c, &node.url, "/b");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["lock_id"], id.as_str());
    assert_eq!(listed[0]["mode"], "exclusive");
    let key = node.ok(&["key", "create", "writer", "--read", "--write"]).trim().to_string();
    let other = with_key(&node.plain_url, Some(&key));
    let seen = locks_on(&c, &other, "/b");
    assert!(seen[0].get("lock_id").is_none(), "ids are shown to owners and admins only: {seen:?}");
    let r = c.delete(format!("{other}/v1/locks/{id}")).send().unwrap();
    assert_eq!(code_of(r), (StatusCode::FORBIDDEN, "permission_denied".to_string()));
    // Renew with a new lifetime, release; then writes pass without it.
    let r = c.post(q(&format!("{}/v1/locks/{id}", node.url), &[("op", "renew"), ("ttl", "60")])).send().unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().unwrap()["ttl"], 60);
    assert_eq!(c.delete(format!("{}/v1/locks/{id}", node.url)).send().unwrap().status(), StatusCode::NO_CONTENT);
    assert_eq!(put(&c, &node, "/a/f", "v5", &[]).status(), StatusCode::CREATED);
    let r = c.delete(format!("{}/v1/locks/{id}", node.url)).send().unwrap();
    assert_eq!(code_of(r), (StatusCode::NOT_FOUND, "not_found".to_string()));
}

#[test]
fn bad_lock_requests_get_clear_errors_and_change_nothing() {
    let node = TestNode::start(&[]);
    let c = http();
    let many: Vec<String> = (0..10_000).map(|i| format!("/f{i}")).collect();
    let bad = [
        json!({ "paths": ["/x"], "ttl": 0 }),
        json!({ "paths": ["/x"], "ttl": 1_000_000_000u64 }),
        json!({ "paths": many }),
        json!({ "paths": [] }),
        json!({ "paths": ["/x", "/x"] }),
        json!({ "paths": ["/x"], "mode": "sideways" }),
        json!({ "paths": ["relative"] }),
        json!({ "paths": "/x" }),
        json!({ "paths": ["/x"], "wait": 100_000 }),
    ];
    for body in bad {
        let (status, code) = code_of(take(&c, &node, body.clone()));
        assert_eq!((status, code.as_str()), (StatusCode::BAD_REQUEST, "invalid_argument"), "{body}");
    }
    let r = c.post(format!("{}/v1/locks", node.url)).body("{not json").send().unwrap();
    assert_eq!(code_of(r).0, StatusCode::BAD_REQUEST);
    for id in ["nothex", "00000000000000000001", "ffffffffffffffff"] {
        let r = c.post(q(&format!("{}/v1/locks/{id}", node.url), &[("op", "renew")])).send().unwrap();
        let want = if id == "ffffffffffffffff" { StatusCode::NOT_FOUND } else { StatusCode::BAD_REQUEST };
        assert_eq!(code_of(r).0, want, "{id}");
    }
    let r = put(&c, &node, "/x", "data", &[("x-cairn-lock", "zz")]);
    assert_eq!(code_of(r).0, StatusCode::BAD_REQUEST);
    let v: Value = c.get(format!("{}/v1/locks", node.url)).send().unwrap().json().unwrap();
    assert_eq!(v["locks"], json!([]), "no lock was taken");
    // Through the raw metadata route, a lock command acts for the caller's key whatever
    // owner it names: a writer cannot release the admin's lock by claiming to be an admin.
    let (id, _) = held(&c, &node, json!({ "paths": ["/mine"] }));
    let key = node.ok(&["key", "create", "other", "--read", "--write"]).trim().to_string();
    let forged =
        cairn_core::wire::ClientCommand::Unlock { id: cairn_core::lock::parse_lock_id(&id).unwrap(), owner: None };
    let r = c
        .post(format!("{}/v1/meta/write", with_key(&node.plain_url, Some(&key))))
        .body(cairn_core::codec::encode(&forged))
        .send()
        .unwrap();
    let answer: Result<cairn_core::wire::Reply, cairn_core::ApiError> =
        cairn_core::codec::decode(&r.bytes().unwrap(), "answer").unwrap();
    assert_eq!(answer.unwrap_err().code, cairn_core::ErrorCode::PermissionDenied);
    assert_eq!(locks_on(&c, &node.url, "/mine").len(), 1, "the lock is still held");
}

#[test]
fn two_clients_racing_for_a_lock_exactly_one_wins() {
    let node = TestNode::start(&[]);
    let url = node.url.clone();
    for trial in 0..200 {
        let barrier = Arc::new(Barrier::new(2));
        let racers: Vec<_> = (0..2)
            .map(|_| {
                let (barrier, url) = (barrier.clone(), url.clone());
                std::thread::spawn(move || {
                    let c = http();
                    barrier.wait();
                    let body = json!({ "paths": [format!("/race/{trial}")], "ttl": 60 });
                    c.post(format!("{url}/v1/locks")).json(&body).send().unwrap().status()
                })
            })
            .collect();
        let mut got: Vec<StatusCode> = racers.into_iter().map(|t| t.join().unwrap()).collect();
        got.sort();
        assert_eq!(got, vec![StatusCode::OK, StatusCode::CONFLICT], "trial {trial}");
    }
}

#[test]
fn an_expired_lock_goes_to_the_next_requester_and_its_stale_token_is_refused() {
    let node = TestNode::start(&[]);
    let c = http();
    let (old, old_token) = held(&c, &node, json!({ "paths": ["/f"], "ttl": 1 }));
    // The second requester waits until the first lock's lifetime has passed.
    let (new, new_token) = held(&c, &node, json!({ "paths": ["/f"], "ttl": 60, "wait": 20 }));
    assert!(new_token > old_token, "fencing tokens increase: {old_token} then {new_token}");
    let stale = old_token.to_string();
    let r = put(&c, &node, "/f", "stale", &[("x-cairn-lock", &old), ("x-cairn-fence", &stale)]);
    assert_eq!(code_of(r), (StatusCode::LOCKED, "locked".to_string()));
    let r = put(&c, &node, "/f", "stale", &[("x-cairn-lock", &new), ("x-cairn-fence", &stale)]);
    assert_eq!(code_of(r), (StatusCode::CONFLICT, "conflict".to_string()), "an old token never writes");
    let r = c.post(q(&format!("{}/v1/locks/{old}", node.url), &[("op", "renew")])).send().unwrap();
    assert_eq!(code_of(r).0, StatusCode::NOT_FOUND, "the expired lock was swept by the new grant");
    let fresh = new_token.to_string();
    let r = put(&c, &node, "/f", "fresh", &[("x-cairn-lock", &new), ("x-cairn-fence", &fresh)]);
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[test]
fn conditional_writes_are_compare_and_swap() {
    let node = TestNode::start(&[]);
    let c = http();
    let url = format!("{}/v1/fs/cas", node.url);
    let r = put(&c, &node, "/cas", "one", &[("if-none-match", "*")]);
    assert_eq!(r.status(), StatusCode::CREATED);
    let etag1 = r.headers()["etag"].to_str().unwrap().to_string();
    let r = put(&c, &node, "/cas", "again", &[("if-none-match", "*")]);
    assert_eq!(code_of(r), (StatusCode::PRECONDITION_FAILED, "precondition_failed".to_string()));
    let r = put(&c, &node, "/cas", "two", &[("if-match", &etag1)]);
    assert_eq!(r.status(), StatusCode::CREATED);
    let etag2 = r.headers()["etag"].to_str().unwrap().to_string();
    assert_ne!(etag1, etag2, "every commit changes the ETag");
    assert_eq!(c.get(&url).send().unwrap().headers()["etag"].to_str().unwrap(), etag2);
    // A writer that read version 1 loses: its swap fails and the content stays.
    let r = put(&c, &node, "/cas", "lost update", &[("if-match", &etag1)]);
    assert_eq!(code_of(r).0, StatusCode::PRECONDITION_FAILED);
    assert_eq!(c.get(&url).send().unwrap().text().unwrap(), "two");
    let r = put(&c, &node, "/cas", "x", &[("if-unmodified-since", "Thu, 01 Jan 1970 00:00:00 GMT")]);
    assert_eq!(code_of(r).0, StatusCode::PRECONDITION_FAILED);
    let later = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(3600));
    let r = put(&c, &node, "/cas", "three", &[("if-unmodified-since", &later)]);
    assert_eq!(r.status(), StatusCode::CREATED);
    let etag3 = r.headers()["etag"].to_str().unwrap().to_string();
    // DELETE and rename honour If-Match too.
    let r = c.delete(&url).header("if-match", &etag2).send().unwrap();
    assert_eq!(code_of(r).0, StatusCode::PRECONDITION_FAILED);
    let r = c.post(q(&url, &[("op", "rename"), ("to", "/moved")])).header("if-match", &etag3).send().unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = c.delete(format!("{}/v1/fs/moved", node.url)).header("if-match", &etag3).send().unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = c.delete(format!("{}/v1/fs/moved", node.url)).header("if-match", "*").send().unwrap();
    assert_eq!(code_of(r).0, StatusCode::PRECONDITION_FAILED, "If-Match: * needs the file");
}

#[test]
fn cli_lock_runs_a_command_and_a_killed_holder_loses_its_lock_after_the_ttl() {
    let node = TestNode::start(&[]);
    let c = http();
    let out = node.cli(&["lock", "/job", "--", "sh", "-c", "echo $CAIRN_LOCK $CAIRN_FENCE; exit 3"]);
    assert_eq!(out.status.code(), Some(3), "cairn lock exits with its command's status");
    let printed = String::from_utf8(out.stdout).unwrap();
    assert_eq!(printed.split_whitespace().count(), 2, "{printed}");
    assert!(locks_on(&c, &node.url, "/job").is_empty(), "released after the command");
    // A holder that dies keeps its lock only until the lifetime runs out.
    let mut holder = Command::new(common::bin())
        .args(["--node", &node.url, "lock", "/job", "--ttl", "2s", "--", "sleep", "30"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the holder to take the lock", Duration::from_secs(20), || locks_on(&c, &node.url, "/job").len() == 1);
    let listed = node.ok(&["locks", "/job"]);
    assert!(listed.contains("exclusive") && listed.contains("/job"), "{listed}");
    let busy = node.cli(&["lock", "/job", "--", "true"]);
    assert_eq!(busy.status.code(), Some(5), "locked: {}", String::from_utf8_lossy(&busy.stderr));
    holder.kill().unwrap();
    holder.wait().unwrap();
    let next = node.cli(&["lock", "/job", "--wait", "20s", "--", "true"]);
    assert!(next.status.success(), "{}", String::from_utf8_lossy(&next.stderr));
}

#[test]
fn the_rust_client_renews_its_guard_and_locks_files_open_for_writing() {
    use cairn_client::{LockOptions, OpenOptions};
    use std::io::Write;
    let node = TestNode::start(&[]);
    let c = http();
    let client = cairn_client::Client::connect(&node.url).unwrap();
    let opts = LockOptions { ttl: Duration::from_secs(1), ..LockOptions::default() };
    let guard = client.lock(&["/g"], &opts).unwrap();
    // Three lifetimes later the guard has kept it alive.
    std::thread::sleep(Duration::from_secs(3));
    assert!(!guard.is_lost());
    assert_eq!(code_of(take(&c, &node, json!({ "paths": ["/g"] }))).1, "locked");
    drop(guard);
    wait_for("the dropped guard to release", Duration::from_secs(10), || locks_on(&c, &node.url, "/g").is_empty());
    // A file open for writing holds its path: others cannot write it until it is closed.
    let mut f = OpenOptions::new().write(true).create(true).open(&client, "/held").unwrap();
    f.write_all(b"mine").unwrap();
    assert_eq!(code_of(put(&c, &node, "/held", "theirs", &[])).0, StatusCode::LOCKED);
    f.close().unwrap();
    assert_eq!(c.get(format!("{}/v1/fs/held", node.url)).send().unwrap().text().unwrap(), "mine");
    assert_eq!(put(&c, &node, "/held", "theirs", &[]).status(), StatusCode::CREATED);
}

#[test]
fn locks_survive_the_loss_of_the_metadata_leader() {
    let mut nodes = start_cluster_with(3, &[]);
    let c = http();
    let (id, token) = held(&c, &nodes[0], json!({ "paths": ["/kept"], "ttl": 120 }));
    let ops = json!({ "ops": [{"op": "mkdir", "path": "/batch"}, {"op": "put", "path": "/batch/f", "data": "b2s="}] });
    assert_eq!(c.post(format!("{}/v1/batch", nodes[0].url)).json(&ops).send().unwrap().status(), StatusCode::OK);
    let r = c.post(format!("{}/v1/fs/batch?op=policy&policy=versions:2", nodes[0].url)).send().unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(put(&c, &nodes[0], "/batch/f", "v2", &[]).status(), StatusCode::CREATED);
    let li = leader_index(&nodes);
    nodes[li].kill();
    let alive = (0..3).find(|&i| i != li).unwrap();
    let survivor = &nodes[alive];
    let r = put(&c, survivor, "/kept", "no", &[]);
    assert_eq!(code_of(r).0, StatusCode::LOCKED, "the lock holds on the new leader");
    let r = take(&c, survivor, json!({ "paths": ["/kept"] }));
    assert_eq!(code_of(r).0, StatusCode::CONFLICT);
    let fence = token.to_string();
    let r = put(&c, survivor, "/kept", "yes", &[("x-cairn-lock", &id), ("x-cairn-fence", &fence)]);
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(c.delete(format!("{}/v1/locks/{id}", survivor.url)).send().unwrap().status(), StatusCode::NO_CONTENT);
    assert_eq!(c.get(format!("{}/v1/fs/batch/f", survivor.url)).send().unwrap().text().unwrap(), "v2");
    assert_eq!(c.get(format!("{}/v1/fs/batch/f?version=1", survivor.url)).send().unwrap().text().unwrap(), "ok");
}
