//! Small dense matrices over GF(2^8): the coefficients of dot products, the generator of a
//! code, and the inverses that decode it.

use crate::field::{inv, mul};
use crate::{Error, Result};

/// A rows x cols matrix of field elements, row-major.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Matrix {
    rows: usize,
    cols: usize,
    data: Vec<u8>,
}

impl Matrix {
    /// The all-zero matrix.
    pub fn zero(rows: usize, cols: usize) -> Matrix {
        Matrix { rows, cols, data: vec![0; rows * cols] }
    }

    /// The n x n identity.
    pub fn identity(n: usize) -> Matrix {
        let mut m = Matrix::zero(n, n);
        for i in 0..n {
            m.set(i, i, 1);
        }
        m
    }

    /// A 1 x n matrix.
    pub fn from_row(row: &[u8]) -> Matrix {
        Matrix { rows: 1, cols: row.len(), data: row.to_vec() }
    }

    /// A matrix from rows of one length.
    pub fn from_rows(rows: &[Vec<u8>]) -> Result<Matrix> {
        let cols = rows.first().map_or(0, Vec::len);
        if rows.iter().any(|r| r.len() != cols) {
            return Err(Error::Shape { what: "rows of one length" });
        }
        Ok(Matrix { rows: rows.len(), cols, data: rows.concat() })
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The element at (r, c). Panics outside the matrix, like slice indexing.
    pub fn get(&self, r: usize, c: usize) -> u8 {
        assert!(r < self.rows && c < self.cols, "({r}, {c}) outside a {}x{} matrix", self.rows, self.cols);
        self.data[r * self.cols + c]
    }

    /// Sets the element at (r, c). Panics outside the matrix.
    pub fn set(&mut self, r: usize, c: usize, v: u8) {
        assert!(r < self.rows && c < self.cols, "({r}, {c}) outside a {}x{} matrix", self.rows, self.cols);
        self.data[r * self.cols + c] = v;
    }

    /// Row r.
    pub fn row(&self, r: usize) -> &[u8] {
        &self.data[r * self.cols..(r + 1) * self.cols]
    }

    /// The matrix product self x other.
    pub fn mul(&self, other: &Matrix) -> Result<Matrix> {
        if self.cols != other.rows {
            return Err(Error::Shape { what: "left columns equal right rows" });
        }
        let mut out = Matrix::zero(self.rows, other.cols);
        for r in 0..self.rows {
            for c in 0..other.cols {
                let v = (0..self.cols).fold(0, |acc, i| acc ^ mul(self.get(r, i), other.get(i, c)));
                out.set(r, c, v);
            }
        }
        Ok(out)
    }

    /// The matrix made of the given rows, in that order.
    pub fn select_rows(&self, rows: &[usize]) -> Result<Matrix> {
        if rows.iter().any(|&r| r >= self.rows) {
            return Err(Error::Shape { what: "row index inside the matrix" });
        }
        let data = rows.iter().flat_map(|&r| self.row(r).iter().copied()).collect();
        Ok(Matrix { rows: rows.len(), cols: self.cols, data })
    }

    /// The inverse, by Gauss-Jordan elimination; [`Error::Singular`] when there is none.
    pub fn invert(&self) -> Result<Matrix> {
        if self.rows != self.cols {
            return Err(Error::Shape { what: "a square matrix to invert" });
        }
        let n = self.rows;
        let mut a = self.clone();
        let mut out = Matrix::identity(n);
        for col in 0..n {
            let pivot = (col..n).find(|&r| a.get(r, col) != 0).ok_or(Error::Singular)?;
            a.swap_rows(col, pivot);
            out.swap_rows(col, pivot);
            let scale = inv(a.get(col, col)).ok_or(Error::Singular)?;
            a.scale_row(col, scale);
            out.scale_row(col, scale);
            for r in (0..n).filter(|&r| r != col) {
                let f = a.get(r, col);
                if f != 0 {
                    a.add_row(r, col, f);
                    out.add_row(r, col, f);
                }
            }
        }
        Ok(out)
    }

    fn swap_rows(&mut self, a: usize, b: usize) {
        if a != b {
            for c in 0..self.cols {
                self.data.swap(a * self.cols + c, b * self.cols + c);
            }
        }
    }

    fn scale_row(&mut self, r: usize, f: u8) {
        for c in 0..self.cols {
            self.set(r, c, mul(self.get(r, c), f));
        }
    }

    /// row[dst] += f * row[src].
    fn add_row(&mut self, dst: usize, src: usize, f: u8) {
        for c in 0..self.cols {
            let v = self.get(dst, c) ^ mul(f, self.get(src, c));
            self.set(dst, c, v);
        }
    }
}
