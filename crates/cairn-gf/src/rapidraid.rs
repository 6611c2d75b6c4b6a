//! RapidRAID (n, k) codes: pipelined archival of k twice-replicated blocks into n coded ones.
//!
//! Node i of a chain holds some data blocks L_i. It receives the partial sum x_{i-1}
//! (x_{-1} = 0), stores the coded block c_i = x_{i-1} + sum over L_i of xi_ij o_j and
//! forwards x_i = x_{i-1} + sum over L_i of psi_ij o_j. Every node works at once on its own
//! blocks, and none receives more than one block's worth per coded block.
//!
//! Which blocks each node holds decides whether any k coded blocks can decode. The layout of
//! ClusterDFS (block j on nodes j and j + n - k) cannot, whatever the coefficients: for
//! (16, 11) the rows c_0..c_7 span exactly o_0..o_7, and c_11, c_12 differ only in o_6, o_7,
//! so any 11 blocks holding those ten are dependent. [`RapidRaid::rapid_16_11`] uses a layout
//! without such a trap, and coefficients (found by a seeded search) with which every one of
//! the 4,368 sets of 11 coded blocks decodes, checked exhaustively by the tests and written
//! down in docs/formats.md.

use crate::field::{inv, mul};
use crate::program::{Plan, Program, Source, Step};
use crate::{Error, Matrix, Result};

/// The largest number of k-subsets [`RapidRaid::singular_subsets`] will look at.
pub const MAX_SUBSETS: u64 = 1_000_000;

/// A RapidRAID code: the blocks each node of the chain holds and its two coefficient lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RapidRaid {
    k: usize,
    /// `held[i]`: the data blocks node i holds, ascending.
    held: Vec<Vec<usize>>,
    /// `psi[i][t]`: the weight of `held[i][t]` in the partial sum node i forwards.
    psi: Vec<Vec<u8>>,
    /// `xi[i][t]`: the weight of `held[i][t]` in the block node i stores.
    xi: Vec<Vec<u8>>,
}

/// The default (16, 11) code: which blocks each node holds.
const HELD_16_11: [&[usize]; 16] = [
    &[0, 3],
    &[1, 6],
    &[2, 10],
    &[3],
    &[4],
    &[5],
    &[6],
    &[7],
    &[0, 8],
    &[9],
    &[5, 10],
    &[1, 7],
    &[4, 9],
    &[2],
    &[8],
    &[],
];
/// Its forwarding weights.
const PSI_16_11: [&[u8]; 16] = [
    &[132, 95],
    &[56, 80],
    &[180, 129],
    &[187],
    &[120],
    &[139],
    &[114],
    &[221],
    &[9, 148],
    &[246],
    &[72, 67],
    &[45, 40],
    &[193, 49],
    &[192],
    &[207],
    &[],
];
/// Its storing weights.
const XI_16_11: [&[u8]; 16] = [
    &[237, 226],
    &[79, 185],
    &[190, 167],
    &[251],
    &[241],
    &[82],
    &[166],
    &[98],
    &[189, 140],
    &[31],
    &[212, 81],
    &[3, 160],
    &[161, 48],
    &[117],
    &[120],
    &[],
];

impl RapidRaid {
    /// The default (16, 11) code, as ClusterDFS used (with a layout any 11 blocks decode).
    pub fn rapid_16_11() -> RapidRaid {
        let owned = |rows: &[&[usize]]| rows.iter().map(|r| r.to_vec()).collect();
        let bytes = |rows: &[&[u8]]| rows.iter().map(|r| r.to_vec()).collect();
        RapidRaid { k: 11, held: owned(&HELD_16_11), psi: bytes(&PSI_16_11), xi: bytes(&XI_16_11) }
    }

    /// A code from its parts: `held[i]` the blocks node i holds (each of the k blocks on two
    /// distinct nodes), and each node's weights, one per block it holds, none zero.
    pub fn from_parts(k: usize, held: Vec<Vec<usize>>, psi: Vec<Vec<u8>>, xi: Vec<Vec<u8>>) -> Result<RapidRaid> {
        let n = held.len();
        let refuse = |what: &'static str| Err(Error::Shape { what });
        if k == 0 || n <= k || psi.len() != n || xi.len() != n {
            return refuse("k < n nodes, with weights for each");
        }
        let mut copies = vec![0usize; k];
        for i in 0..n {
            if psi[i].len() != held[i].len() || xi[i].len() != held[i].len() {
                return refuse("one weight per block a node holds");
            }
            if psi[i].contains(&0) || xi[i].contains(&0) {
                return refuse("nonzero weights");
            }
            for (t, &j) in held[i].iter().enumerate() {
                if j >= k || held[i][..t].contains(&j) {
                    return refuse("blocks below k, once per node");
                }
                copies[j] += 1;
            }
        }
        if copies.iter().any(|&c| c != 2) {
            return refuse("every block on two nodes");
        }
        Ok(RapidRaid { k, held, psi, xi })
    }

    /// n, the coded blocks (and nodes in the chain).
    pub fn coded(&self) -> usize {
        self.held.len()
    }

    /// k, the data blocks.
    pub fn data(&self) -> usize {
        self.k
    }

    /// The data blocks node i holds.
    pub fn held(&self, i: usize) -> &[usize] {
        &self.held[i]
    }

    /// The weights of node i's blocks in the partial sum it forwards.
    pub fn psi(&self, i: usize) -> &[u8] {
        &self.psi[i]
    }

    /// The weights of node i's blocks in the coded block it stores.
    pub fn xi(&self, i: usize) -> &[u8] {
        &self.xi[i]
    }

    /// The n x k generator: coded block i = row i x data blocks.
    pub fn generator(&self) -> Matrix {
        let mut g = Matrix::zero(self.coded(), self.k);
        let mut x = vec![0u8; self.k];
        for i in 0..self.coded() {
            let mut c = x.clone();
            for (t, &j) in self.held[i].iter().enumerate() {
                c[j] ^= self.xi[i][t];
                x[j] ^= self.psi[i][t];
            }
            for (j, v) in c.into_iter().enumerate() {
                g.set(i, j, v);
            }
        }
        g
    }

    /// The k x k matrix that turns the coded blocks numbered `present` back into the data.
    pub fn decode_matrix(&self, present: &[usize]) -> Result<Matrix> {
        if present.len() != self.k {
            return Err(Error::TooFewShards { present: present.len(), needed: self.k });
        }
        self.generator().select_rows(present)?.invert()
    }

    /// How many sets of k coded blocks do not decode (0: any k blocks restore the data),
    /// checked one by one; [`Error::Code`] when there are more than [`MAX_SUBSETS`].
    pub fn singular_subsets(&self) -> Result<usize> {
        let (n, k) = (self.coded(), self.k);
        let count = (0..k as u64).fold(1u64, |acc, i| acc.saturating_mul(n as u64 - i) / (i + 1));
        if count > MAX_SUBSETS {
            return Err(Error::Code { data: k, parity: n - k });
        }
        let g = self.generator();
        let mut pick: Vec<usize> = (0..k).collect();
        let mut bad = 0;
        loop {
            if !full_rank(&g, &pick) {
                bad += 1;
            }
            if !next_subset(&mut pick, n) {
                return Ok(bad);
            }
        }
    }

    /// The archival plan: program `c<i>` on `nodes[i]` loads the blocks that node holds
    /// (`blocks[j]` is the chunk id of data block j), adds their share to the partial sum it
    /// receives from `c<i-1>`, writes its coded block and sends the sum on.
    pub fn plan(&self, nodes: &[String], blocks: &[String], buffer: usize) -> Result<Plan> {
        if nodes.len() != self.coded() || blocks.len() != self.k {
            return Err(Error::Shape { what: "a node per coded block and a chunk per data block" });
        }
        let mut programs = std::collections::BTreeMap::new();
        for (i, node) in nodes.iter().enumerate() {
            let mut steps = Vec::new();
            let (x, c) = ("x".to_string(), "c".to_string());
            if i == 0 {
                steps.push(Step::Zero { buf: x.clone() });
            } else {
                steps.push(Step::Load { buf: x.clone(), from: Source::Input(x.clone()) });
            }
            steps.push(Step::Mult { dst: c.clone(), src: x.clone(), c: 1 });
            for (t, &j) in self.held[i].iter().enumerate() {
                let o = format!("o{j}");
                steps.push(Step::Load { buf: o.clone(), from: Source::Chunk(blocks[j].clone()) });
                steps.push(Step::Muladd { dst: c.clone(), src: o.clone(), c: self.xi[i][t] });
                steps.push(Step::Muladd { dst: x.clone(), src: o, c: self.psi[i][t] });
            }
            steps.push(Step::Write { buf: c });
            if i + 1 < nodes.len() {
                steps.push(Step::Send { buf: x.clone(), to: format!("c{}", i + 1), input: x });
            }
            programs.insert(format!("c{i}"), Program { node: node.clone(), steps });
        }
        Ok(Plan { v: crate::PLAN_VERSION, buffer, programs })
    }

    /// The centralised baseline of [`RapidRaid::plan`]: program `h<j>` on `holders[j]` streams
    /// data block j out, program `gather` on `central` pulls all k, computes every coded block
    /// from the generator and pushes block i to program `c<i>` on `nodes[i]`, which writes it.
    /// The same coded blocks, with one node receiving all the data and sending all the output.
    pub fn central_plan(
        &self,
        nodes: &[String],
        holders: &[String],
        blocks: &[String],
        central: &str,
        buffer: usize,
    ) -> Result<Plan> {
        if nodes.len() != self.coded() || holders.len() != self.k || blocks.len() != self.k {
            return Err(Error::Shape { what: "a node per coded block, a holder and a chunk per data block" });
        }
        let g = self.generator();
        let mut programs = std::collections::BTreeMap::new();
        let mut gather = Vec::new();
        for j in 0..self.k {
            let o = format!("o{j}");
            let steps = vec![
                Step::Load { buf: o.clone(), from: Source::Chunk(blocks[j].clone()) },
                Step::Output { buf: o.clone() },
            ];
            programs.insert(format!("h{j}"), Program { node: holders[j].clone(), steps });
            gather.push(Step::Load { buf: o, from: Source::Program(format!("h{j}")) });
        }
        for (i, node) in nodes.iter().enumerate() {
            let c = format!("c{i}");
            gather.push(Step::Zero { buf: c.clone() });
            for j in (0..self.k).filter(|&j| g.get(i, j) != 0) {
                gather.push(Step::Muladd { dst: c.clone(), src: format!("o{j}"), c: g.get(i, j) });
            }
            gather.push(Step::Send { buf: c.clone(), to: c.clone(), input: c.clone() });
            let steps =
                vec![Step::Load { buf: c.clone(), from: Source::Input(c.clone()) }, Step::Write { buf: c.clone() }];
            programs.insert(c, Program { node: node.clone(), steps });
        }
        programs.insert("gather".to_string(), Program { node: central.to_string(), steps: gather });
        Ok(Plan { v: crate::PLAN_VERSION, buffer, programs })
    }
}

/// The next k-subset of 0..n in lexicographic order; false after the last.
fn next_subset(pick: &mut [usize], n: usize) -> bool {
    let k = pick.len();
    let Some(i) = (0..k).rev().find(|&i| pick[i] < n - k + i) else { return false };
    pick[i] += 1;
    for j in i + 1..k {
        pick[j] = pick[j - 1] + 1;
    }
    true
}

/// Whether the rows `rows` of `g` (as many as its columns) are independent.
fn full_rank(g: &Matrix, rows: &[usize]) -> bool {
    let k = g.cols();
    let mut m: Vec<u8> = rows.iter().flat_map(|&r| g.row(r).iter().copied()).collect();
    for col in 0..k {
        let Some(p) = (col..k).find(|&r| m[r * k + col] != 0) else { return false };
        if p != col {
            for c in 0..k {
                m.swap(p * k + c, col * k + c);
            }
        }
        let pivot = inv(m[col * k + col]).expect("a nonzero pivot");
        for r in col + 1..k {
            let f = mul(m[r * k + col], pivot);
            if f != 0 {
                for c in col..k {
                    m[r * k + c] ^= mul(f, m[col * k + c]);
                }
            }
        }
    }
    true
}
