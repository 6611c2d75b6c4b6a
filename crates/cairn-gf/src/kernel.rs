//! The buffer operations and the choice of kernel that runs them.
//!
//! One operation underlies all others: the dot product `outputs = C x inputs` (or
//! `outputs ^= C x inputs`) of an m x k coefficient matrix with k input buffers, made in one
//! pass over the inputs so each input byte is loaded once for all m outputs. MULT, MULADD
//! and RS encoding are its cases; IADD (xor) and in-place scaling have their own loops.

use std::sync::OnceLock;

use crate::{portable, Error, Matrix, Result};

/// A kernel family. All give identical bytes; they differ only in speed and in what the
/// CPU must support.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// Table lookups in plain Rust: runs anywhere.
    Portable,
    /// 16-byte nibble-table shuffles (x86-64 with SSSE3).
    Ssse3,
    /// 32-byte nibble-table shuffles (x86-64 with AVX2).
    Avx2,
    /// 64-byte affine transforms (x86-64 with AVX-512BW and GFNI).
    Gfni,
}

impl Backend {
    /// Every backend, slowest first.
    pub const ALL: [Backend; 4] = [Backend::Portable, Backend::Ssse3, Backend::Avx2, Backend::Gfni];

    /// The fastest backend this CPU runs, detected once.
    pub fn best() -> Backend {
        static BEST: OnceLock<Backend> = OnceLock::new();
        *BEST.get_or_init(|| Backend::ALL.into_iter().rev().find(|b| b.available()).unwrap_or(Backend::Portable))
    }

    /// Whether this CPU can run the backend.
    pub fn available(self) -> bool {
        match self {
            Backend::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Backend::Ssse3 => std::arch::is_x86_feature_detected!("ssse3"),
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "x86_64")]
            Backend::Gfni => {
                std::arch::is_x86_feature_detected!("avx512bw") && std::arch::is_x86_feature_detected!("gfni")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The backend's short name, as benchmarks print it.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Portable => "portable",
            Backend::Ssse3 => "ssse3",
            Backend::Avx2 => "avx2",
            Backend::Gfni => "avx512-gfni",
        }
    }

    /// This backend if the CPU runs it, else the best one it does run.
    fn usable(self) -> Backend {
        if self.available() {
            self
        } else {
            Backend::best()
        }
    }

    /// IADD: `dst ^= src`.
    pub fn iadd(self, dst: &mut [u8], src: &[u8]) -> Result<()> {
        same_len(dst.len(), src.len())?;
        // A plain loop: the compiler turns it into wide xors on every target.
        for (d, s) in dst.iter_mut().zip(src) {
            *d ^= s;
        }
        Ok(())
    }

    /// MULT: `dst = src * c`.
    pub fn mult(self, dst: &mut [u8], src: &[u8], c: u8) -> Result<()> {
        self.dot(&Matrix::from_row(&[c]), &[src], &mut [dst], false)
    }

    /// MULADD: `dst ^= src * c`.
    pub fn muladd(self, dst: &mut [u8], src: &[u8], c: u8) -> Result<()> {
        self.dot(&Matrix::from_row(&[c]), &[src], &mut [dst], true)
    }

    /// Scales `buf` by `c` in place.
    pub fn scale(self, buf: &mut [u8], c: u8) {
        match self.usable() {
            #[cfg(target_arch = "x86_64")]
            b @ (Backend::Ssse3 | Backend::Avx2 | Backend::Gfni) => crate::x86::scale(b, buf, c),
            _ => portable::scale(buf, c),
        }
    }

    /// The dot product of the m x k matrix `coeffs` with the k `inputs` into the m
    /// `outputs`: output r becomes (or, with `accumulate`, is xored with)
    /// sum over j of `coeffs[r][j] * inputs[j]`. All buffers have one length.
    pub fn dot(self, coeffs: &Matrix, inputs: &[&[u8]], outputs: &mut [&mut [u8]], accumulate: bool) -> Result<()> {
        if inputs.len() != coeffs.cols() {
            return Err(Error::Shape { what: "one input per matrix column" });
        }
        if outputs.len() != coeffs.rows() {
            return Err(Error::Shape { what: "one output per matrix row" });
        }
        let Some(len) = outputs.first().map(|o| o.len()) else { return Ok(()) };
        for n in inputs.iter().map(|i| i.len()).chain(outputs.iter().map(|o| o.len())) {
            same_len(len, n)?;
        }
        let job = Dot { coeffs, inputs, accumulate };
        match self.usable() {
            #[cfg(target_arch = "x86_64")]
            b @ (Backend::Ssse3 | Backend::Avx2 | Backend::Gfni) => crate::x86::dot(b, &job, outputs),
            _ => portable::dot(&job, outputs, 0),
        }
        Ok(())
    }
}

/// A checked dot product, handed to a kernel.
pub(crate) struct Dot<'a> {
    /// m x k coefficients.
    pub coeffs: &'a Matrix,
    /// k buffers of the outputs' length.
    pub inputs: &'a [&'a [u8]],
    /// Xor into the outputs rather than overwrite them.
    pub accumulate: bool,
}

fn same_len(expected: usize, found: usize) -> Result<()> {
    if expected == found {
        Ok(())
    } else {
        Err(Error::Length { expected, found })
    }
}
