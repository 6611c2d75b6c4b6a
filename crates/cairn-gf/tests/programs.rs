//! Coding plans: pipelines of programs compute what the Reed-Solomon encoder computes, by push
//! and by pull, and bad plans are refused before anything runs.

use std::collections::BTreeMap;

use cairn_gf::{run, Backend, Error, Io, Plan, Program, ReedSolomon, Source, Step};

/// Chunks held in memory, by (node, id); stored results get ids `w0`, `w1`, ...
#[derive(Default)]
struct Mem {
    chunks: BTreeMap<(String, String), Vec<u8>>,
    reads: usize,
}

impl Io for Mem {
    fn read(&mut self, node: &str, chunk: &str, offset: u64, buf: &mut [u8]) -> cairn_gf::Result<()> {
        self.reads += 1;
        let data = self.chunks.get(&(node.to_string(), chunk.to_string())).ok_or(Error::Io("no chunk".into()))?;
        buf.copy_from_slice(&data[offset as usize..offset as usize + buf.len()]);
        Ok(())
    }
    fn store(&mut self, node: &str, data: Vec<u8>) -> cairn_gf::Result<String> {
        let id = format!("w{}", self.chunks.len());
        self.chunks.insert((node.to_string(), id.clone()), data);
        Ok(id)
    }
}

impl Mem {
    fn size(&self) -> impl FnMut(&str, &str) -> Option<u64> + '_ {
        |node, id| self.chunks.get(&(node.to_string(), id.to_string())).map(|d| d.len() as u64)
    }
}

fn load(buf: &str, from: Source) -> Step {
    Step::Load { buf: buf.into(), from }
}
fn muladd(dst: &str, src: &str, c: u8) -> Step {
    Step::Muladd { dst: dst.into(), src: src.into(), c }
}
fn send(buf: &str, to: &str, input: &str) -> Step {
    Step::Send { buf: buf.into(), to: to.into(), input: input.into() }
}
fn plan(buffer: usize, programs: Vec<(&str, &str, Vec<Step>)>) -> Plan {
    let programs = programs
        .into_iter()
        .map(|(name, node, steps)| (name.to_string(), Program { node: node.into(), steps }))
        .collect();
    Plan { v: 1, buffer, programs }
}

/// Four nodes hold one data block each; RS 4+2 parity, computed down a chain (each node adds
/// its block's share to both partial parities and pushes them on), written on two more nodes.
fn chain_push(rs: &ReedSolomon) -> Plan {
    let g = rs.generator();
    let mut programs = Vec::new();
    for i in 0..4 {
        let mut steps = vec![load("d", Source::Chunk(format!("d{i}")))];
        for r in 0..2 {
            let p = format!("p{r}");
            if i == 0 {
                steps.push(Step::Zero { buf: p.clone() });
            } else {
                steps.push(load(&p, Source::Input(p.clone())));
            }
            steps.push(muladd(&p, "d", g.get(4 + r, i)));
            let next = if i < 3 { format!("n{}", i + 1) } else { format!("q{r}") };
            steps.push(send(&p, &next, &p));
        }
        programs.push((format!("n{i}"), format!("node{i}"), steps));
    }
    for r in 0..2 {
        let p = format!("p{r}");
        programs.push((
            format!("q{r}"),
            format!("node{}", 4 + r),
            vec![load(&p, Source::Input(p.clone())), Step::Write { buf: p }],
        ));
    }
    let named: Vec<(&str, &str, Vec<Step>)> =
        programs.iter().map(|(n, node, s)| (n.as_str(), node.as_str(), s.clone())).collect();
    plan(1000, named)
}

fn data_on_nodes(len: usize) -> (Mem, Vec<Vec<u8>>) {
    let mut mem = Mem::default();
    let data: Vec<Vec<u8>> = (0..4).map(|i| (0..len).map(|b| (b * 13 + i * 101 + b / 7) as u8).collect()).collect();
    for (i, d) in data.iter().enumerate() {
        mem.chunks.insert((format!("node{i}"), format!("d{i}")), d.clone());
    }
    (mem, data)
}

fn parity(rs: &ReedSolomon, data: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut parity = vec![vec![0u8; data[0].len()]; rs.parity_shards()];
    let ins: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
    let mut outs: Vec<&mut [u8]> = parity.iter_mut().map(Vec::as_mut_slice).collect();
    rs.encode(&ins, &mut outs).unwrap();
    parity
}

#[test]
fn a_pushed_chain_computes_reed_solomon_parity_on_every_backend() {
    let rs = ReedSolomon::new(4, 2).unwrap();
    let (mut mem, data) = data_on_nodes(4567);
    let want = parity(&rs, &data);
    let p = chain_push(&rs);
    // The plan survives JSON both ways, as `cairn code run` reads it.
    let p = Plan::from_json(&serde_json::to_vec(&p).unwrap()).unwrap();
    let checked = p.check(mem.size()).unwrap();
    assert_eq!(checked.length, 4567);
    assert_eq!(&checked.order[..4], ["n0", "n1", "n2", "n3"]);
    for b in Backend::ALL.into_iter().filter(|b| b.available()) {
        let out = run(&p, &checked, b, &mut mem).unwrap();
        assert_eq!(out.written.len(), 2);
        for (r, w) in out.written.iter().enumerate() {
            assert_eq!(w.node, format!("node{}", 4 + r));
            assert_eq!(mem.chunks[&(w.node.clone(), w.chunk.clone())], want[r], "parity {r} on {}", b.name());
        }
    }
    // Each node read its block once per 1,000-byte buffer: five positions, four nodes.
    assert_eq!(mem.reads % 20, 0);
}

#[test]
fn a_pulled_chain_computes_one_parity_and_returns_it() {
    let rs = ReedSolomon::new(4, 2).unwrap();
    let (mut mem, data) = data_on_nodes(3000);
    let want = parity(&rs, &data);
    let g = rs.generator();
    let mut programs = Vec::new();
    for i in 0..4 {
        let mut steps = vec![load("d", Source::Chunk(format!("d{i}")))];
        if i == 0 {
            steps.push(Step::Mult { dst: "x".into(), src: "d".into(), c: g.get(5, 0) });
        } else {
            steps.push(load("x", Source::Program(format!("n{}", i - 1))));
            steps.push(muladd("x", "d", g.get(5, i)));
        }
        steps.push(Step::Output { buf: "x".into() });
        programs.push((format!("n{i}"), format!("node{i}"), steps));
    }
    let named: Vec<(&str, &str, Vec<Step>)> =
        programs.iter().map(|(n, node, s)| (n.as_str(), node.as_str(), s.clone())).collect();
    let p = plan(512, named);
    let checked = p.check(mem.size()).unwrap();
    assert_eq!(checked.results, ["n3"]);
    let out = run(&p, &checked, Backend::best(), &mut mem).unwrap();
    assert_eq!(out.results["n3"], want[1]);
    assert!(out.written.is_empty());
}

fn refused(p: &Plan, mem: &Mem, words: &str) {
    let sizes = |node: &str, id: &str| mem.chunks.get(&(node.to_string(), id.to_string())).map(|d| d.len() as u64);
    match p.check(sizes) {
        Err(Error::Program(why)) => assert!(why.contains(words), "{why:?} should say {words:?}"),
        other => panic!("expected a refusal saying {words:?}, got {other:?}"),
    }
}

#[test]
fn bad_plans_are_refused_before_anything_runs() {
    let (mem, _) = data_on_nodes(100);
    let chunk = |i: usize| Source::Chunk(format!("d{i}"));
    refused(&plan(100, vec![("a", "node0", vec![muladd("x", "y", 3)])]), &mem, "used before");
    refused(
        &plan(100, vec![("a", "node0", vec![load("x", chunk(0)), Step::Iadd { dst: "x".into(), src: "x".into() }])]),
        &mem,
        "itself",
    );
    refused(&plan(100, vec![("a", "node0", vec![load("x", chunk(3))])]), &mem, "no chunk d3 on node node0");
    let mut short = mem.chunks.clone();
    short.insert(("node1".into(), "d1".into()), vec![0; 99]);
    let short = Mem { chunks: short, reads: 0 };
    refused(
        &plan(100, vec![("a", "node0", vec![load("x", chunk(0))]), ("b", "node1", vec![load("y", chunk(1))])]),
        &short,
        "other inputs",
    );
    let cycle = plan(
        100,
        vec![
            ("a", "node0", vec![load("d", chunk(0)), load("x", Source::Input("i".into())), send("d", "b", "i")]),
            ("b", "node1", vec![load("d", chunk(1)), load("x", Source::Input("i".into())), send("d", "a", "i")]),
        ],
    );
    refused(&cycle, &mem, "cycle through a, b");
    refused(
        &plan(100, vec![("a", "node0", vec![load("x", Source::Input("i".into()))])]),
        &mem,
        "nothing sends input i",
    );
    refused(&plan(100, vec![("a", "node0", vec![load("x", Source::Program("b".into()))])]), &mem, "no program b");
    refused(
        &plan(
            100,
            vec![
                ("a", "node0", vec![load("x", chunk(0))]),
                ("b", "node1", vec![load("y", Source::Program("a".into()))]),
            ],
        ),
        &mem,
        "has no output",
    );
    let twice = plan(
        100,
        vec![
            ("a", "node0", vec![load("x", chunk(0)), Step::Output { buf: "x".into() }]),
            ("b", "node1", vec![load("y", Source::Program("a".into()))]),
            ("c", "node2", vec![load("y", Source::Program("a".into()))]),
        ],
    );
    refused(&twice, &mem, "pulled by both");
    refused(&plan(8 << 20, vec![("a", "node0", vec![load("x", chunk(0))])]), &mem, "buffer of");
    refused(&plan(100, vec![("a b", "node0", vec![load("x", chunk(0))])]), &mem, "bad program name");
    refused(&plan(100, vec![("a", "node0", vec![Step::Zero { buf: "x".into() }])]), &mem, "nothing to code");
    let mut old = plan(100, vec![("a", "node0", vec![load("x", chunk(0))])]);
    old.v = 2;
    refused(&old, &mem, "plan version 2");
    let many: Vec<Step> = (0..33).map(|i| Step::Zero { buf: format!("b{i}") }).collect();
    refused(&plan(100, vec![("a", "node0", many)]), &mem, "more than 32 buffers");
}

#[test]
fn plan_json_with_unknown_fields_or_ops_is_not_a_plan() {
    let ok = r#"{"v":1,"buffer":64,"programs":{"a":{"node":"n","steps":[{"op":"load","buf":"x","from":{"chunk":"c"}},{"op":"mult","dst":"x","src":"x","c":3},{"op":"write","buf":"x"}]}}}"#;
    assert!(Plan::from_json(ok.as_bytes()).is_ok());
    for bad in [
        ok.replace(r#""op":"mult""#, r#""op":"divide""#),
        ok.replace(r#""buffer":64"#, r#""buffer":64,"extra":1"#),
        ok.replace(r#""c":3"#, r#""c":300"#),
        ok.replace(r#"{"chunk":"c"}"#, r#"{"disk":"c"}"#),
        "[]".to_string(),
    ] {
        assert!(matches!(Plan::from_json(bad.as_bytes()), Err(Error::Program(_))), "{bad}");
    }
}
