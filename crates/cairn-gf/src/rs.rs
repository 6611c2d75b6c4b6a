//! The systematic Reed-Solomon code `ec:K+M`: K data shards kept as they are, M parity
//! shards from a Cauchy matrix, any K of the K+M shards enough to rebuild the rest.
//!
//! The generator is fixed (and written down in docs/formats.md) so that any GF(2^8) library
//! reproduces the parity: rows 0..K are the identity; parity row i (i in 0..M) has the
//! element 1 / ((K + i) xor j) in column j. Every square submatrix of a Cauchy matrix is
//! invertible, hence every K rows of the generator are, for K + M <= 256. This is ISA-L's
//! `gf_gen_cauchy1_matrix`.

use crate::field::inv;
use crate::{Backend, Error, Matrix, Result};

/// A Reed-Solomon code with fixed shard counts.
#[derive(Clone, Debug)]
pub struct ReedSolomon {
    data: usize,
    parity: usize,
    /// The M x K parity rows of the generator.
    parity_rows: Matrix,
    backend: Backend,
}

impl ReedSolomon {
    /// The code with `data` data and `parity` parity shards, on the fastest backend.
    pub fn new(data: usize, parity: usize) -> Result<ReedSolomon> {
        if data == 0 || parity == 0 || data + parity > 256 {
            return Err(Error::Code { data, parity });
        }
        let mut parity_rows = Matrix::zero(parity, data);
        for i in 0..parity {
            for j in 0..data {
                let x = ((data + i) ^ j) as u8;
                parity_rows.set(i, j, inv(x).ok_or(Error::Code { data, parity })?);
            }
        }
        Ok(ReedSolomon { data, parity, parity_rows, backend: Backend::best() })
    }

    /// The same code computed on `backend` (the best available if this CPU lacks it).
    pub fn with_backend(mut self, backend: Backend) -> ReedSolomon {
        self.backend = backend;
        self
    }

    /// K, the data shards.
    pub fn data_shards(&self) -> usize {
        self.data
    }

    /// M, the parity shards.
    pub fn parity_shards(&self) -> usize {
        self.parity
    }

    /// K + M.
    pub fn total_shards(&self) -> usize {
        self.data + self.parity
    }

    /// The whole (K + M) x K generator: shard i = row i x data.
    pub fn generator(&self) -> Matrix {
        let mut g = Matrix::zero(self.total_shards(), self.data);
        for r in 0..self.total_shards() {
            for c in 0..self.data {
                let v = if r < self.data { u8::from(r == c) } else { self.parity_rows.get(r - self.data, c) };
                g.set(r, c, v);
            }
        }
        g
    }

    /// Computes the M parity shards of the K data shards (all of one length).
    pub fn encode(&self, data: &[&[u8]], parity: &mut [&mut [u8]]) -> Result<()> {
        self.backend.dot(&self.parity_rows, data, parity, false)
    }

    /// Whether the parity shards (after the data shards in `shards`) match the data.
    pub fn verify(&self, shards: &[&[u8]]) -> Result<bool> {
        if shards.len() != self.total_shards() {
            return Err(Error::Shape { what: "K + M shards" });
        }
        let len = shards[0].len();
        let mut fresh = vec![vec![0u8; len]; self.parity];
        let mut outs: Vec<&mut [u8]> = fresh.iter_mut().map(Vec::as_mut_slice).collect();
        self.encode(&shards[..self.data], &mut outs)?;
        Ok(fresh.iter().zip(&shards[self.data..]).all(|(a, b)| a.as_slice() == *b))
    }

    /// The K x K matrix that turns the shards numbered `present` (K distinct indexes) back
    /// into the data shards.
    pub fn decode_matrix(&self, present: &[usize]) -> Result<Matrix> {
        if present.len() != self.data {
            return Err(Error::TooFewShards { present: present.len(), needed: self.data });
        }
        self.generator().select_rows(present)?.invert()
    }

    /// Computes the shards numbered `wanted` into `outs` from the K shards numbered `present`
    /// (`inputs`, in that order), in one pass over the inputs: shard s is generator row s x
    /// data, and data is the decode matrix x the present shards.
    pub fn rebuild(&self, present: &[usize], inputs: &[&[u8]], wanted: &[usize], outs: &mut [&mut [u8]]) -> Result<()> {
        if inputs.len() != present.len() {
            return Err(Error::Shape { what: "one input per present shard" });
        }
        let coeffs = self.generator().select_rows(wanted)?.mul(&self.decode_matrix(present)?)?;
        self.backend.dot(&coeffs, inputs, outs, false)
    }

    /// Fills every `None` in `shards` (K + M slots, data then parity) from any K present
    /// shards, in one pass over them. Shards already present are left untouched.
    pub fn reconstruct(&self, shards: &mut [Option<Vec<u8>>]) -> Result<()> {
        if shards.len() != self.total_shards() {
            return Err(Error::Shape { what: "K + M shard slots" });
        }
        let present: Vec<usize> = (0..shards.len()).filter(|&i| shards[i].is_some()).take(self.data).collect();
        if present.len() < self.data {
            return Err(Error::TooFewShards { present: present.len(), needed: self.data });
        }
        let missing: Vec<usize> = (0..shards.len()).filter(|&i| shards[i].is_none()).collect();
        if missing.is_empty() {
            return Ok(());
        }
        let len = shards[present[0]].as_ref().map_or(0, Vec::len);
        let mut rebuilt = vec![vec![0u8; len]; missing.len()];
        {
            let inputs: Vec<&[u8]> = present.iter().filter_map(|&i| shards[i].as_deref()).collect();
            let mut outs: Vec<&mut [u8]> = rebuilt.iter_mut().map(Vec::as_mut_slice).collect();
            self.rebuild(&present, &inputs, &missing, &mut outs)?;
        }
        for (slot, shard) in missing.into_iter().zip(rebuilt) {
            shards[slot] = Some(shard);
        }
        Ok(())
    }
}
