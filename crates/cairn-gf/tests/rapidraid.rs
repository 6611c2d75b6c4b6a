//! RapidRAID: any 11 of the 16 coded blocks of the default code decode (checked one set at a
//! time), ClusterDFS's own layout cannot be made to, and the archival plan computes the
//! generator's blocks.

use std::collections::BTreeMap;

use cairn_gf::{run, Backend, Error, Io, Matrix, RapidRaid};

#[test]
fn every_11_of_the_16_coded_blocks_decode() {
    let code = RapidRaid::rapid_16_11();
    assert_eq!((code.coded(), code.data()), (16, 11));
    assert_eq!(code.singular_subsets().unwrap(), 0);
}

#[test]
fn each_block_sits_on_two_nodes_of_the_default_code() {
    let code = RapidRaid::rapid_16_11();
    for j in 0..11 {
        assert_eq!((0..16).filter(|&i| code.held(i).contains(&j)).count(), 2, "block {j}");
    }
}

/// ClusterDFS's layout: block j on nodes j and j + n - k.
fn clusterdfs_layout(n: usize, k: usize) -> Vec<Vec<usize>> {
    (0..n).map(|i| (0..k).filter(|&j| j == i || j + (n - k) == i).collect()).collect()
}

#[test]
fn the_clusterdfs_layout_has_dependent_blocks_whatever_the_weights() {
    let held = clusterdfs_layout(16, 11);
    let mut x = 7u64;
    for _ in 0..5 {
        let mut weight = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 255 + 1) as u8
        };
        let psi: Vec<Vec<u8>> = held.iter().map(|h| h.iter().map(|_| weight()).collect()).collect();
        let xi: Vec<Vec<u8>> = held.iter().map(|h| h.iter().map(|_| weight()).collect()).collect();
        let code = RapidRaid::from_parts(11, held.clone(), psi, xi).unwrap();
        // c_0..c_7 span exactly o_0..o_7; c_11 and c_12 differ only there.
        assert_eq!(code.decode_matrix(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 11, 12]), Err(Error::Singular));
        assert!(code.singular_subsets().unwrap() > 0);
    }
}

#[test]
fn malformed_codes_are_refused() {
    let good = RapidRaid::rapid_16_11();
    let parts = |held: Vec<Vec<usize>>| {
        let psi = held.iter().map(|h| vec![1u8; h.len()]).collect();
        let xi = held.iter().map(|h| vec![1u8; h.len()]).collect();
        RapidRaid::from_parts(11, held, psi, xi)
    };
    let held: Vec<Vec<usize>> = (0..16).map(|i| good.held(i).to_vec()).collect();
    assert!(parts(held.clone()).is_ok());
    let mut once = held.clone();
    once[0] = vec![0];
    assert!(matches!(parts(once), Err(Error::Shape { .. })), "block 3 on one node only");
    let mut big = held;
    big[15] = vec![11];
    assert!(matches!(parts(big), Err(Error::Shape { .. })));
    let zero = RapidRaid::from_parts(1, vec![vec![0], vec![0]], vec![vec![0], vec![1]], vec![vec![1], vec![1]]);
    assert!(matches!(zero, Err(Error::Shape { .. })));
}

/// Blocks by (node, chunk id) in memory.
#[derive(Default)]
struct Mem(BTreeMap<(String, String), Vec<u8>>);

impl Io for Mem {
    fn read(&mut self, node: &str, chunk: &str, offset: u64, buf: &mut [u8]) -> cairn_gf::Result<()> {
        let data = self.0.get(&(node.into(), chunk.into())).ok_or(Error::Io("missing".into()))?;
        buf.copy_from_slice(&data[offset as usize..offset as usize + buf.len()]);
        Ok(())
    }
    fn store(&mut self, node: &str, data: Vec<u8>) -> cairn_gf::Result<String> {
        let id = format!("coded-{node}");
        self.0.insert((node.into(), id.clone()), data);
        Ok(id)
    }
}

#[test]
fn the_archival_plan_stores_the_generators_blocks_and_any_11_restore_the_data() {
    let code = RapidRaid::rapid_16_11();
    let len = 5000;
    let data: Vec<Vec<u8>> = (0..11).map(|j| (0..len).map(|b| (b * 31 + j * 17 + b / 9) as u8).collect()).collect();
    let nodes: Vec<String> = (0..16).map(|i| format!("n{i}")).collect();
    let blocks: Vec<String> = (0..11).map(|j| format!("o{j}")).collect();
    let mut mem = Mem::default();
    for (i, node) in nodes.iter().enumerate() {
        for &j in code.held(i) {
            mem.0.insert((node.clone(), blocks[j].clone()), data[j].clone());
        }
    }
    let plan = code.plan(&nodes, &blocks, 1024).unwrap();
    let sizes = |node: &str, id: &str| mem.0.get(&(node.to_string(), id.to_string())).map(|d| d.len() as u64);
    let checked = plan.check(sizes).unwrap();
    let out = run(&plan, &checked, Backend::best(), &mut mem).unwrap();
    assert_eq!(out.written.len(), 16);
    let coded: Vec<Vec<u8>> = nodes.iter().map(|n| mem.0[&(n.clone(), format!("coded-{n}"))].clone()).collect();
    let g = code.generator();
    let ins: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
    for (i, c) in coded.iter().enumerate() {
        let mut want = vec![0u8; len];
        Backend::best().dot(&Matrix::from_row(g.row(i)), &ins, &mut [&mut want], false).unwrap();
        assert_eq!(c, &want, "coded block {i}");
    }
    for present in [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
        [5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
        [0, 2, 4, 6, 8, 10, 11, 12, 13, 14, 15],
    ] {
        let d = code.decode_matrix(&present).unwrap();
        let ins: Vec<&[u8]> = present.iter().map(|&i| coded[i].as_slice()).collect();
        let mut back = vec![vec![0u8; len]; 11];
        let mut outs: Vec<&mut [u8]> = back.iter_mut().map(Vec::as_mut_slice).collect();
        Backend::best().dot(&d, &ins, &mut outs, false).unwrap();
        assert_eq!(back, data, "from {present:?}");
    }
}
