//! SIGKILL during concurrent writes: after a restart every acknowledged file is intact and no
//! file is half-visible.

mod common;
use common::{data, http, wait_for, TestNode};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the writers did to one path: every version attempted, and the last acknowledged one.
#[derive(Default, Clone)]
struct History {
    attempted: Vec<u64>,
    acked: Option<u64>,
}

fn size_for(seed: u64) -> usize {
    match seed % 3 {
        0 => 1000,             // inline
        1 => 100 << 10,        // one chunk
        _ => (5 << 20) + 4321, // two chunks
    }
}

#[test]
fn acknowledged_writes_survive_sigkill_and_nothing_is_half_visible() {
    let mut node = TestNode::start(&[]);
    let history: Arc<Mutex<BTreeMap<String, History>>> = Arc::default();
    let mut next_seed = 1u64;
    for round in 0..3 {
        let acks = Arc::new(AtomicUsize::new(0));
        let writers: Vec<_> = (0..4)
            .map(|t| {
                let (url, history, acks) = (node.url.clone(), history.clone(), acks.clone());
                let base = next_seed + t * 1_000_000;
                std::thread::spawn(move || {
                    let c = http();
                    for i in 0..10_000u64 {
                        // Mostly new files, sometimes overwriting one written before.
                        let slot = if i % 4 == 3 { i - 2 } else { i };
                        let path = format!("/r{round}/w{t}/f{slot}");
                        let seed = base + i;
                        history.lock().unwrap().entry(path.clone()).or_default().attempted.push(seed);
                        let ok = c
                            .put(format!("{url}/v1/fs{path}"))
                            .body(data(seed, size_for(seed)))
                            .send()
                            .map(|r| r.status().is_success())
                            .unwrap_or(false);
                        if !ok {
                            return;
                        }
                        history.lock().unwrap().get_mut(&path).unwrap().acked = Some(seed);
                        acks.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        next_seed += 10_000_000;
        wait_for("some acknowledged writes", Duration::from_secs(120), || acks.load(Ordering::SeqCst) >= 24);
        node.kill();
        for w in writers {
            w.join().unwrap();
        }
        node.restart();
        verify(&node, &history.lock().unwrap());
    }
}

fn verify(node: &TestNode, history: &BTreeMap<String, History>) {
    let c = http();
    let mut acked = 0;
    for (path, h) in history {
        let r = c.get(format!("{}/v1/fs{path}", node.url)).send().unwrap();
        if r.status() == reqwest::StatusCode::NOT_FOUND {
            assert!(h.acked.is_none(), "{path}: acknowledged write lost");
            continue;
        }
        assert!(r.status().is_success(), "{path}: {}", r.status());
        let body = r.bytes().unwrap();
        // The content must be exactly one whole version: the acknowledged one, or one attempted
        // after it (in flight at the kill), never a mix or a prefix.
        let after_ack = match h.acked {
            Some(a) => {
                acked += 1;
                h.attempted.iter().skip_while(|&&s| s != a).copied().collect::<Vec<_>>()
            }
            None => h.attempted.clone(),
        };
        let matches =
            after_ack.iter().any(|&s| body.len() == size_for(s) && body.as_ref() == data(s, size_for(s)).as_slice());
        assert!(matches, "{path}: content is not a whole acknowledged-or-later version ({} bytes)", body.len());
    }
    assert!(acked >= 16, "only {acked} acknowledged files checked");
}
