//! A linearizability check of the lock service and conditional writes: five clients, each
//! with its own key, take and release a lock on one file and compare-and-swap its content
//! (reading it first) through a 3-node cluster while nodes are SIGKILLed and restarted. The
//! recorded history (call and return times, outcomes; an operation whose outcome is unknown
//! may have happened or not) must be explainable by one sequential order of a simple model:
//! a lock holder and a value. The checker is Wing & Gong's search with memoization.

mod common;
use common::{start_cluster_with, TestNode};
use reqwest::blocking::Client;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CLIENTS: usize = 5;
/// Events per client (one more may come with a last compare-and-swap): at most 125 in all.
const OPS_PER_CLIENT: usize = 24;
const FILE: &str = "/lin/file";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Op {
    Acquire,
    Release,
    Read,
    /// Write `new` if the content is still `expect` (If-Match with the ETag read with it);
    /// `presented`: the client sent its lock id along.
    Cas {
        expect: u64,
        new: u64,
        presented: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Out {
    Ok,
    Locked,
    NotFound,
    Failed,
    Value(u64),
    /// No answer that says whether it happened (a timeout, `unavailable`).
    Unknown,
}

#[derive(Clone, Debug)]
struct Event {
    client: usize,
    op: Op,
    call: u128,
    ret: u128,
    out: Out,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct State {
    holder: Option<usize>,
    value: u64,
}

/// The sequential model: what `op` by `client` answers in state `s`, and the next state.
fn step(s: State, client: usize, op: Op) -> (State, Out) {
    match op {
        Op::Acquire if s.holder.is_none() => (State { holder: Some(client), ..s }, Out::Ok),
        Op::Acquire => (s, Out::Locked),
        Op::Release if s.holder == Some(client) => (State { holder: None, ..s }, Out::Ok),
        Op::Release => (s, Out::NotFound),
        Op::Read => (s, Out::Value(s.value)),
        // The metadata checks preconditions before locks.
        Op::Cas { expect, .. } if s.value != expect => (s, Out::Failed),
        Op::Cas { presented, .. } if s.holder.is_some_and(|h| !(presented && h == client)) => (s, Out::Locked),
        Op::Cas { new, .. } => (State { value: new, ..s }, Out::Ok),
    }
}

/// True if some order of the events, respecting real time (an event that returned before
/// another was called comes first), gives every known outcome from `init`. Events with an
/// unknown outcome may be placed anywhere after their call, or left out.
fn linearizable(history: &[Event], init: State) -> bool {
    assert!(history.len() <= 128, "the search tracks events in a 128-bit set");
    let known: u128 = history.iter().enumerate().filter(|(_, e)| e.out != Out::Unknown).fold(0, |m, (i, _)| m | 1 << i);
    let mut seen: HashSet<(u128, State)> = HashSet::new();
    let mut stack = vec![(0u128, init)];
    while let Some((done, state)) = stack.pop() {
        if done & known == known {
            return true;
        }
        if !seen.insert((done, state)) {
            continue;
        }
        let pending = |i: usize| done & (1 << i) == 0;
        let first_return =
            (0..history.len()).filter(|&i| pending(i)).map(|i| history[i].ret).min().unwrap_or(u128::MAX);
        for (i, e) in history.iter().enumerate() {
            if !pending(i) || e.call > first_return {
                continue;
            }
            let (next, out) = step(state, e.client, e.op);
            if e.out == Out::Unknown || e.out == out {
                stack.push((done | 1 << i, next));
            }
        }
    }
    false
}

#[test]
fn the_checker_rejects_a_history_no_order_explains() {
    let ev = |client, op, call, ret, out| Event { client, op, call, ret, out };
    let init = State { holder: None, value: 0 };
    // Both acquire without overlap, and both succeed: impossible without a release.
    let bad = vec![ev(0, Op::Acquire, 0, 1, Out::Ok), ev(1, Op::Acquire, 2, 3, Out::Ok)];
    assert!(!linearizable(&bad, init));
    // Overlapping, one may still have released in between? No release at all: still bad.
    let overlapping = vec![ev(0, Op::Acquire, 0, 5, Out::Ok), ev(1, Op::Acquire, 1, 6, Out::Ok)];
    assert!(!linearizable(&overlapping, init));
    // A read that sees a value whose write had not yet been called.
    let early = vec![
        ev(0, Op::Read, 0, 1, Out::Value(7)),
        ev(1, Op::Cas { expect: 0, new: 7, presented: false }, 2, 3, Out::Ok),
    ];
    assert!(!linearizable(&early, init));
    // With the write's outcome unknown and overlapping the read, the read is explained.
    let unknown = vec![
        ev(1, Op::Cas { expect: 0, new: 7, presented: false }, 0, u128::MAX, Out::Unknown),
        ev(0, Op::Read, 1, 2, Out::Value(7)),
        ev(0, Op::Read, 3, 4, Out::Value(7)),
    ];
    assert!(linearizable(&unknown, init));
    let good = vec![
        ev(0, Op::Acquire, 0, 2, Out::Ok),
        ev(1, Op::Acquire, 1, 3, Out::Locked),
        ev(1, Op::Cas { expect: 0, new: 5, presented: false }, 4, 5, Out::Locked),
        ev(0, Op::Cas { expect: 0, new: 6, presented: true }, 4, 6, Out::Ok),
        ev(0, Op::Release, 7, 8, Out::Ok),
        ev(1, Op::Read, 9, 10, Out::Value(6)),
    ];
    assert!(linearizable(&good, init));
}

/// One client's view: its node URLs (with its key), its key's name, the lock id it holds.
struct Actor {
    id: usize,
    urls: Vec<String>,
    owner: String,
    held: Option<String>,
    http: Client,
    start: Instant,
    next_value: u64,
}

/// How a request ended: an HTTP answer, not delivered (nothing happened), or unknown.
enum Sent {
    Answer(StatusCode, Value, Option<String>),
    NotDelivered,
    Unknown,
}

impl Actor {
    fn now(&self) -> u128 {
        self.start.elapsed().as_nanos()
    }

    fn send(&self, attempt: usize, build: impl Fn(&Client, &str) -> reqwest::blocking::RequestBuilder) -> Sent {
        let url = &self.urls[(self.id + attempt) % self.urls.len()];
        match build(&self.http, url).send() {
            Ok(r) => {
                let status = r.status();
                let etag = r.headers().get("etag").and_then(|v| v.to_str().ok()).map(String::from);
                let text = r.text().unwrap_or_default();
                let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
                if status == StatusCode::SERVICE_UNAVAILABLE || status.is_server_error() {
                    return Sent::Unknown;
                }
                Sent::Answer(status, body, etag)
            }
            Err(e) if e.is_connect() => Sent::NotDelivered,
            Err(_) => Sent::Unknown,
        }
    }

    /// Learns from the lock listing whether this client holds the lock (after an unknown
    /// outcome): a read, not part of the history.
    fn resync(&mut self, attempt: usize) {
        for a in attempt..attempt + 6 {
            if let Sent::Answer(StatusCode::OK, v, _) = self.send(a, |c, u| c.get(format!("{u}/v1/locks?path={FILE}")))
            {
                let mine = v["locks"].as_array().into_iter().flatten().find(|l| l["owner"] == self.owner.as_str());
                self.held = mine.and_then(|l| l["lock_id"].as_str()).map(String::from);
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Runs one operation (a compare-and-swap is two: the read, then the write); returns
    /// its events, none if it never reached a node.
    fn act(&mut self, attempt: usize) -> Vec<Event> {
        let call = self.now();
        let done = |op, out, me: &Self| {
            let ret = if out == Out::Unknown { u128::MAX } else { me.now() };
            vec![Event { client: me.id, op, call, ret, out }]
        };
        let choice = rand::random::<u32>() % 4;
        match (choice, &self.held) {
            (0, None) | (1, None) => {
                let body = json!({ "paths": [FILE], "ttl": 600 });
                match self.send(attempt, |c, u| c.post(format!("{u}/v1/locks")).json(&body)) {
                    Sent::Answer(StatusCode::OK, v, _) => {
                        self.held = v["lock_id"].as_str().map(String::from);
                        done(Op::Acquire, Out::Ok, self)
                    }
                    Sent::Answer(StatusCode::CONFLICT, _, _) => done(Op::Acquire, Out::Locked, self),
                    Sent::Answer(s, v, _) => panic!("acquire answered {s}: {v}"),
                    Sent::NotDelivered => Vec::new(),
                    Sent::Unknown => {
                        let e = done(Op::Acquire, Out::Unknown, self);
                        self.resync(attempt + 1);
                        e
                    }
                }
            }
            (0, Some(id)) => {
                let id = id.clone();
                match self.send(attempt, |c, u| c.delete(format!("{u}/v1/locks/{id}"))) {
                    Sent::Answer(StatusCode::NO_CONTENT, _, _) => {
                        self.held = None;
                        done(Op::Release, Out::Ok, self)
                    }
                    Sent::Answer(StatusCode::NOT_FOUND, _, _) => {
                        self.held = None;
                        done(Op::Release, Out::NotFound, self)
                    }
                    Sent::Answer(s, v, _) => panic!("release answered {s}: {v}"),
                    Sent::NotDelivered => Vec::new(),
                    Sent::Unknown => {
                        let e = done(Op::Release, Out::Unknown, self);
                        self.resync(attempt + 1);
                        e
                    }
                }
            }
            _ => {
                // Read the content and its ETag, then swap it for a new value.
                let read = match self.send(attempt, |c, u| c.get(format!("{u}/v1/fs{FILE}"))) {
                    Sent::Answer(StatusCode::OK, v, etag) => {
                        let value = match &v {
                            Value::String(s) => s.parse::<u64>().expect("a number"),
                            Value::Number(n) => n.as_u64().expect("a number"),
                            other => panic!("read {other}"),
                        };
                        (value, etag.expect("an ETag"))
                    }
                    Sent::Answer(s, v, _) => panic!("read answered {s}: {v}"),
                    Sent::NotDelivered | Sent::Unknown => return Vec::new(),
                };
                let mut events = done(Op::Read, Out::Value(read.0), self);
                self.next_value += 1;
                let new = (self.id as u64 + 1) * 1_000_000 + self.next_value;
                let presented = self.held.clone();
                let op = Op::Cas { expect: read.0, new, presented: presented.is_some() };
                let call = self.now();
                let sent = self.send(attempt, |c, u| {
                    let mut r = c.put(format!("{u}/v1/fs{FILE}")).header("if-match", &read.1).body(new.to_string());
                    if let Some(id) = &presented {
                        r = r.header("x-cairn-lock", id);
                    }
                    r
                });
                let out = match sent {
                    Sent::Answer(StatusCode::CREATED, _, _) => Out::Ok,
                    Sent::Answer(StatusCode::PRECONDITION_FAILED, _, _) => Out::Failed,
                    Sent::Answer(StatusCode::LOCKED, _, _) => Out::Locked,
                    Sent::Answer(s, v, _) => panic!("write answered {s}: {v}"),
                    Sent::NotDelivered => return events,
                    Sent::Unknown => Out::Unknown,
                };
                let ret = if out == Out::Unknown { u128::MAX } else { self.now() };
                events.push(Event { client: self.id, op, call, ret, out });
                events
            }
        }
    }
}

#[test]
fn locks_and_conditional_writes_are_linearizable_while_nodes_die() {
    let mut nodes = start_cluster_with(3, &[]);
    let c = common::http();
    let put = c.put(format!("{}/v1/fs{FILE}", nodes[0].url)).body("0").send().unwrap();
    assert_eq!(put.status(), StatusCode::CREATED);
    let start = Instant::now();
    let mut actors = Vec::new();
    for id in 0..CLIENTS {
        let owner = format!("lin{id}");
        let key = nodes[0].ok(&["key", "create", &owner, "--read", "--write"]).trim().to_string();
        let urls = nodes.iter().map(|n: &TestNode| common::with_key(&n.plain_url, Some(&key))).collect();
        let http = Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
        actors.push(Actor { id, urls, owner, held: None, http, start, next_value: 0 });
    }
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = actors
        .into_iter()
        .map(|mut a| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut events = Vec::new();
                let mut attempt = 0;
                while events.len() < OPS_PER_CLIENT && !stop.load(Ordering::Relaxed) {
                    let done = a.act(attempt);
                    if done.is_empty() {
                        attempt += 1;
                    }
                    events.extend(done);
                    // Paced, so the run spans the kills below.
                    std::thread::sleep(Duration::from_millis(150 + rand::random::<u64>() % 200));
                }
                (events, attempt)
            })
        })
        .collect();
    // Kill a node and restart it, twice, while the clients run (the metadata leader first).
    let first = common::leader_index(&nodes);
    for victim in [first, (first + 1) % 3] {
        std::thread::sleep(Duration::from_millis(400));
        nodes[victim].kill();
        std::thread::sleep(Duration::from_millis(1200));
        nodes[victim].restart_same_port();
    }
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let (mut history, mut refused) = (Vec::new(), 0);
    for w in workers {
        let (events, attempts) = w.join().unwrap();
        history.extend(events);
        refused += attempts;
    }
    assert!(refused > 0, "no client ever found its node dead: the kills came too late");
    let answered = history.iter().filter(|e| e.out != Out::Unknown).count();
    assert!(answered >= 30, "too few answered operations to judge: {answered}");
    assert!(history.iter().any(|e| e.op == Op::Acquire && e.out == Out::Ok), "nobody ever took the lock");
    history.sort_by_key(|e| e.call);
    assert!(linearizable(&history, State { holder: None, value: 0 }), "not linearizable: {history:#?}");
}
