//! `cairn code run`: coding plans over chunks that real nodes hold, checked before any byte
//! moves, with results equal to the Reed-Solomon encoder's.

mod common;

use cairn_gf::ReedSolomon;
use common::*;
use serde_json::{json, Value};
use std::time::Duration;

const LEN: usize = 100_000;

/// Four files of one chunk each on a 3-node cluster (every node holds every chunk once the
/// ledger has heard); their bytes and chunk ids.
fn four_chunks(nodes: &[TestNode]) -> (Vec<Vec<u8>>, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let mut blocks = Vec::new();
    let mut ids = Vec::new();
    for i in 0..4 {
        let bytes = data(40 + i, LEN);
        let local = dir.path().join(format!("f{i}"));
        std::fs::write(&local, &bytes).unwrap();
        nodes[0].ok(&["put", local.to_str().unwrap(), &format!("/coded/f{i}")]);
        ids.push(blake3::hash(&bytes).to_hex().to_string());
        blocks.push(bytes);
    }
    wait_for("the ledger to list every copy", Duration::from_secs(30), || nodes[0].cli(&["fsck"]).status.success());
    (blocks, ids)
}

fn node_ids(node: &TestNode) -> Vec<String> {
    cluster(node)["nodes"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap().to_string()).collect()
}

fn parity(blocks: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let rs = ReedSolomon::new(4, 2).unwrap();
    let mut parity = vec![vec![0u8; LEN]; 2];
    let ins: Vec<&[u8]> = blocks.iter().map(Vec::as_slice).collect();
    let mut outs: Vec<&mut [u8]> = parity.iter_mut().map(Vec::as_mut_slice).collect();
    rs.encode(&ins, &mut outs).unwrap();
    parity
}

/// RS 4+2 down a chain: program i loads block i where it lies, adds its share to the two
/// partial parities and pushes them on; two programs on other nodes write the parity.
fn push_plan(ids: &[String], nodes: &[String]) -> Value {
    let g = ReedSolomon::new(4, 2).unwrap().generator();
    let mut programs = serde_json::Map::new();
    for i in 0..4 {
        let mut steps = vec![json!({"op": "load", "buf": "d", "from": {"chunk": ids[i]}})];
        for r in 0..2 {
            let p = format!("p{r}");
            steps.push(if i == 0 {
                json!({"op": "zero", "buf": p})
            } else {
                json!({"op": "load", "buf": p, "from": {"input": p}})
            });
            steps.push(json!({"op": "muladd", "dst": p, "src": "d", "c": g.get(4 + r, i)}));
            let next = if i < 3 { format!("n{}", i + 1) } else { format!("q{r}") };
            steps.push(json!({"op": "send", "buf": p, "to": next, "input": p}));
        }
        programs.insert(format!("n{i}"), json!({"node": nodes[i % 3], "steps": steps}));
    }
    for r in 0..2 {
        let p = format!("p{r}");
        let steps = json!([{"op": "load", "buf": p, "from": {"input": p}}, {"op": "write", "buf": p}]);
        // q0 runs beside n3 (a push within one node), q1 elsewhere (over the peer door).
        programs.insert(format!("q{r}"), json!({"node": nodes[2 * r], "steps": steps}));
    }
    json!({"v": 1, "buffer": 16384, "programs": programs})
}

fn run_plan(node: &TestNode, plan: &Value, extra: &[&str]) -> std::process::Output {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), serde_json::to_vec(plan).unwrap()).unwrap();
    let mut args = vec!["code", "run", file.path().to_str().unwrap()];
    args.extend_from_slice(extra);
    node.cli(&args)
}

#[test]
fn a_pushed_chain_across_three_nodes_writes_reed_solomon_parity() {
    let nodes = start_cluster_with(3, &[]);
    let (blocks, ids) = four_chunks(&nodes);
    let members = node_ids(&nodes[0]);
    let out = run_plan(&nodes[1], &push_plan(&ids, &members), &["--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let want = parity(&blocks);
    let written = v["written"].as_array().unwrap();
    assert_eq!(written.len(), 2);
    for (r, w) in written.iter().enumerate() {
        assert_eq!(w["node"], members[2 * r].as_str());
        assert_eq!(w["length"], LEN);
        let chunk = w["chunk"].as_str().unwrap();
        assert_eq!(chunk, blake3::hash(&want[r]).to_hex().as_str(), "parity {r}");
        let got = http().get(format!("{}/v1/chunks/{chunk}", nodes[0].url)).send().unwrap();
        assert!(got.status().is_success());
        assert_eq!(got.bytes().unwrap().to_vec(), want[r]);
    }
}

#[test]
fn a_pulled_chain_returns_its_result_and_bad_plans_change_nothing() {
    let nodes = start_cluster_with(3, &[]);
    let (blocks, ids) = four_chunks(&nodes);
    let members = node_ids(&nodes[0]);
    let g = ReedSolomon::new(4, 2).unwrap().generator();
    let mut programs = serde_json::Map::new();
    for i in 0..4 {
        let mut steps = vec![json!({"op": "load", "buf": "d", "from": {"chunk": ids[i]}})];
        if i == 0 {
            steps.push(json!({"op": "mult", "dst": "x", "src": "d", "c": g.get(5, 0)}));
        } else {
            steps.push(json!({"op": "load", "buf": "x", "from": {"program": format!("n{}", i - 1)}}));
            steps.push(json!({"op": "muladd", "dst": "x", "src": "d", "c": g.get(5, i)}));
        }
        steps.push(json!({"op": "output", "buf": "x"}));
        programs.insert(format!("n{i}"), json!({"node": members[(i + 2) % 3], "steps": steps}));
    }
    let plan = json!({"v": 1, "buffer": 4096, "programs": programs});
    let dir = tempfile::tempdir().unwrap();
    let out = run_plan(&nodes[0], &plan, &["--out", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("result of n3: 100000 bytes"));
    assert_eq!(std::fs::read(dir.path().join("n3")).unwrap(), parity(&blocks)[1]);

    // A chunk the named node does not hold: refused (exit 2) before anything runs.
    let mut missing = plan.clone();
    missing["programs"]["n0"]["steps"][0]["from"]["chunk"] = json!(blake3::hash(b"nowhere").to_hex().to_string());
    let out = run_plan(&nodes[0], &missing, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no chunk"));
    // A cycle: n0 pulls from n3 too.
    let mut cycle = plan.clone();
    cycle["programs"]["n0"]["steps"] = json!([
        {"op": "load", "buf": "d", "from": {"chunk": ids[0]}},
        {"op": "load", "buf": "x", "from": {"program": "n3"}},
        {"op": "iadd", "dst": "x", "src": "d"},
        {"op": "output", "buf": "x"}
    ]);
    let out = run_plan(&nodes[0], &cycle, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cycle"), "{}", String::from_utf8_lossy(&out.stderr));
    // A program on a node that is not a member.
    let mut stranger = plan.clone();
    stranger["programs"]["n3"]["node"] = json!("12345");
    let out = run_plan(&nodes[0], &stranger, &[]);
    assert_eq!(out.status.code(), Some(2));
    // Not JSON of a plan at all.
    let out = run_plan(&nodes[0], &json!({"v": 1, "programs": []}), &[]);
    assert_eq!(out.status.code(), Some(2));
    // Only admin keys run plans.
    let reader = nodes[0].ok(&["key", "create", "reader", "--read", "--write"]).trim().to_string();
    let r = http()
        .post(format!("{}/v1/code/run", with_key(&nodes[0].plain_url, Some(&reader))))
        .body(serde_json::to_vec(&plan).unwrap())
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);
    // A copy that rots on disk after the ledger vouched for it: that node's part fails, the
    // run stops everywhere and the error says why.
    let n0_node = nodes.iter().find(|n| cluster(n)["node_id"] == members[2].as_str()).unwrap();
    let file = n0_node.data.join("chunks").join(&ids[0][..2]).join(&ids[0]);
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&file, bytes).unwrap();
    let out = run_plan(&nodes[0], &plan, &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("corrupt"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_rapidraid_chain_archives_eleven_blocks_into_sixteen_on_three_nodes() {
    let nodes = start_cluster_with(3, &[]);
    let dir = tempfile::tempdir().unwrap();
    let mut blocks = Vec::new();
    let mut ids = Vec::new();
    for j in 0..11 {
        let bytes = data(70 + j, LEN);
        let local = dir.path().join(format!("o{j}"));
        std::fs::write(&local, &bytes).unwrap();
        nodes[0].ok(&["put", local.to_str().unwrap(), &format!("/archive/o{j}")]);
        ids.push(blake3::hash(&bytes).to_hex().to_string());
        blocks.push(bytes);
    }
    wait_for("the ledger to list every copy", Duration::from_secs(30), || nodes[0].cli(&["fsck"]).status.success());
    let members = node_ids(&nodes[0]);
    // Sixteen chain positions over three nodes, each holding every block (replicas:3).
    let chain: Vec<String> = (0..16).map(|i| members[i % 3].clone()).collect();
    let code = cairn_gf::RapidRaid::rapid_16_11();
    let plan = serde_json::to_value(code.plan(&chain, &ids, 8192).unwrap()).unwrap();
    let out = run_plan(&nodes[2], &plan, &["--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let g = code.generator();
    let ins: Vec<&[u8]> = blocks.iter().map(Vec::as_slice).collect();
    let written = v["written"].as_array().unwrap();
    assert_eq!(written.len(), 16);
    for w in written {
        let i: usize = w["program"].as_str().unwrap()[1..].parse().unwrap();
        let mut want = vec![0u8; LEN];
        cairn_gf::Backend::best().dot(&cairn_gf::Matrix::from_row(g.row(i)), &ins, &mut [&mut want], false).unwrap();
        assert_eq!(w["chunk"], blake3::hash(&want).to_hex().as_str(), "coded block {i}");
        assert_eq!(w["node"], chain[i].as_str());
    }
    // The centralised baseline (one node gathers, codes and sends out) writes the same chunks.
    let holders: Vec<String> = (0..11).map(|j| members[j % 3].clone()).collect();
    let central = serde_json::to_value(code.central_plan(&chain, &holders, &ids, &members[1], 8192).unwrap()).unwrap();
    let out = run_plan(&nodes[0], &central, &["--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let c: Value = serde_json::from_slice(&out.stdout).unwrap();
    let chunks = |v: &Value| {
        let mut w: Vec<(String, String)> = v["written"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| (w["program"].as_str().unwrap().to_string(), w["chunk"].as_str().unwrap().to_string()))
            .collect();
        w.sort();
        w
    };
    assert_eq!(chunks(&c), chunks(&v));
}
