//! The portable kernel: one 256-byte product row per coefficient, looked up byte by byte.
//! It runs anywhere, finishes the tails the SIMD kernels leave, and is the reference the
//! others are tested against.

use crate::field::MUL;
use crate::kernel::Dot;

/// The dot product over bytes `start..` of every buffer.
pub(crate) fn dot(job: &Dot, outputs: &mut [&mut [u8]], start: usize) {
    for (r, out) in outputs.iter_mut().enumerate() {
        let out = &mut out[start..];
        if !job.accumulate {
            out.fill(0);
        }
        for (j, input) in job.inputs.iter().enumerate() {
            let row = &MUL[job.coeffs.get(r, j) as usize];
            for (o, x) in out.iter_mut().zip(&input[start..]) {
                *o ^= row[*x as usize];
            }
        }
    }
}

/// Scales `buf` by `c` in place.
pub(crate) fn scale(buf: &mut [u8], c: u8) {
    let row = &MUL[c as usize];
    for x in buf {
        *x = row[*x as usize];
    }
}
