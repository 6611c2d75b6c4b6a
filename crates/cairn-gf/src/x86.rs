//! The x86-64 kernels: one generic loop over vectors of 16, 32 or 64 bytes, compiled three
//! times with the CPU features of each backend enabled.
//!
//! SSSE3 and AVX2 multiply by splitting each byte into nibbles and looking both up in
//! 16-entry product tables with a byte shuffle; the GFNI backend applies multiplication by
//! the coefficient as an 8x8 bit matrix (`vgf2p8affineqb`), which works for any field
//! polynomial (the instruction's own multiply is fixed to AES's 0x11B, not ours).

use std::arch::x86_64::*;

use crate::field::{bit_matrix, nibbles};
use crate::kernel::{Backend, Dot};
use crate::portable;

/// Outputs accumulated in registers at once: each input vector is loaded once per group.
const GROUP: usize = 6;

/// One vector width and its multiply.
trait Lanes {
    /// Bytes per vector.
    const WIDTH: usize;
    /// A vector.
    type V: Copy;
    /// A coefficient, prepared for [`Lanes::mul`].
    type T: Copy;
    unsafe fn prepare(c: u8) -> Self::T;
    unsafe fn load(p: *const u8) -> Self::V;
    unsafe fn store(p: *mut u8, v: Self::V);
    unsafe fn zero() -> Self::V;
    unsafe fn xor(a: Self::V, b: Self::V) -> Self::V;
    unsafe fn mul(t: Self::T, v: Self::V) -> Self::V;
}

struct Ssse3;

impl Lanes for Ssse3 {
    const WIDTH: usize = 16;
    type V = __m128i;
    type T = (__m128i, __m128i);
    #[inline(always)]
    unsafe fn prepare(c: u8) -> Self::T {
        let (lo, hi) = nibbles(c);
        (_mm_loadu_si128(lo.as_ptr().cast()), _mm_loadu_si128(hi.as_ptr().cast()))
    }
    #[inline(always)]
    unsafe fn load(p: *const u8) -> Self::V {
        _mm_loadu_si128(p.cast())
    }
    #[inline(always)]
    unsafe fn store(p: *mut u8, v: Self::V) {
        _mm_storeu_si128(p.cast(), v)
    }
    #[inline(always)]
    unsafe fn zero() -> Self::V {
        _mm_setzero_si128()
    }
    #[inline(always)]
    unsafe fn xor(a: Self::V, b: Self::V) -> Self::V {
        _mm_xor_si128(a, b)
    }
    #[inline(always)]
    unsafe fn mul((lo, hi): Self::T, v: Self::V) -> Self::V {
        let mask = _mm_set1_epi8(0x0f);
        let low = _mm_and_si128(v, mask);
        let high = _mm_and_si128(_mm_srli_epi64::<4>(v), mask);
        _mm_xor_si128(_mm_shuffle_epi8(lo, low), _mm_shuffle_epi8(hi, high))
    }
}

struct Avx2;

impl Lanes for Avx2 {
    const WIDTH: usize = 32;
    type V = __m256i;
    type T = (__m256i, __m256i);
    #[inline(always)]
    unsafe fn prepare(c: u8) -> Self::T {
        let (lo, hi) = nibbles(c);
        let lo = _mm_loadu_si128(lo.as_ptr().cast());
        let hi = _mm_loadu_si128(hi.as_ptr().cast());
        (_mm256_broadcastsi128_si256(lo), _mm256_broadcastsi128_si256(hi))
    }
    #[inline(always)]
    unsafe fn load(p: *const u8) -> Self::V {
        _mm256_loadu_si256(p.cast())
    }
    #[inline(always)]
    unsafe fn store(p: *mut u8, v: Self::V) {
        _mm256_storeu_si256(p.cast(), v)
    }
    #[inline(always)]
    unsafe fn zero() -> Self::V {
        _mm256_setzero_si256()
    }
    #[inline(always)]
    unsafe fn xor(a: Self::V, b: Self::V) -> Self::V {
        _mm256_xor_si256(a, b)
    }
    #[inline(always)]
    unsafe fn mul((lo, hi): Self::T, v: Self::V) -> Self::V {
        let mask = _mm256_set1_epi8(0x0f);
        let low = _mm256_and_si256(v, mask);
        let high = _mm256_and_si256(_mm256_srli_epi64::<4>(v), mask);
        _mm256_xor_si256(_mm256_shuffle_epi8(lo, low), _mm256_shuffle_epi8(hi, high))
    }
}

struct Gfni;

impl Lanes for Gfni {
    const WIDTH: usize = 64;
    type V = __m512i;
    type T = __m512i;
    #[inline(always)]
    unsafe fn prepare(c: u8) -> Self::T {
        _mm512_set1_epi64(bit_matrix(c) as i64)
    }
    #[inline(always)]
    unsafe fn load(p: *const u8) -> Self::V {
        _mm512_loadu_si512(p.cast())
    }
    #[inline(always)]
    unsafe fn store(p: *mut u8, v: Self::V) {
        _mm512_storeu_si512(p.cast(), v)
    }
    #[inline(always)]
    unsafe fn zero() -> Self::V {
        _mm512_setzero_si512()
    }
    #[inline(always)]
    unsafe fn xor(a: Self::V, b: Self::V) -> Self::V {
        _mm512_xor_si512(a, b)
    }
    #[inline(always)]
    unsafe fn mul(t: Self::T, v: Self::V) -> Self::V {
        _mm512_gf2p8affine_epi64_epi8::<0>(v, t)
    }
}

/// The dot product on backend `b`, which the caller has checked the CPU runs.
pub(crate) fn dot(b: Backend, job: &Dot, outputs: &mut [&mut [u8]]) {
    // SAFETY: `Backend::usable` chose `b` only if the CPU has its features, and
    // `Backend::dot` checked that every buffer has the outputs' length.
    unsafe {
        match b {
            Backend::Ssse3 => dot_ssse3(job, outputs),
            Backend::Avx2 => dot_avx2(job, outputs),
            Backend::Gfni => dot_gfni(job, outputs),
            _ => portable::dot(job, outputs, 0),
        }
    }
}

/// Scales `buf` by `c` in place on backend `b`, which the caller has checked the CPU runs.
pub(crate) fn scale(b: Backend, buf: &mut [u8], c: u8) {
    // SAFETY: as for `dot`; one buffer, read and written in place.
    unsafe {
        match b {
            Backend::Ssse3 => scale_ssse3(buf, c),
            Backend::Avx2 => scale_avx2(buf, c),
            Backend::Gfni => scale_gfni(buf, c),
            _ => portable::scale(buf, c),
        }
    }
}

#[target_feature(enable = "ssse3")]
unsafe fn dot_ssse3(job: &Dot, outputs: &mut [&mut [u8]]) {
    dot_all::<Ssse3>(job, outputs)
}

#[target_feature(enable = "avx2")]
unsafe fn dot_avx2(job: &Dot, outputs: &mut [&mut [u8]]) {
    dot_all::<Avx2>(job, outputs)
}

#[target_feature(enable = "avx512f,avx512bw,gfni")]
unsafe fn dot_gfni(job: &Dot, outputs: &mut [&mut [u8]]) {
    dot_all::<Gfni>(job, outputs)
}

#[target_feature(enable = "ssse3")]
unsafe fn scale_ssse3(buf: &mut [u8], c: u8) {
    scale_all::<Ssse3>(buf, c)
}

#[target_feature(enable = "avx2")]
unsafe fn scale_avx2(buf: &mut [u8], c: u8) {
    scale_all::<Avx2>(buf, c)
}

#[target_feature(enable = "avx512f,avx512bw,gfni")]
unsafe fn scale_gfni(buf: &mut [u8], c: u8) {
    scale_all::<Gfni>(buf, c)
}

/// Whole vectors in groups of outputs, then the tail bytes by the portable kernel.
#[inline(always)]
unsafe fn dot_all<L: Lanes>(job: &Dot, outputs: &mut [&mut [u8]]) {
    let len = outputs[0].len();
    let body = len - len % L::WIDTH;
    let mut row = 0;
    for group in outputs.chunks_mut(GROUP) {
        match group.len() {
            1 => dot_group::<L, 1>(job, row, group, body),
            2 => dot_group::<L, 2>(job, row, group, body),
            3 => dot_group::<L, 3>(job, row, group, body),
            4 => dot_group::<L, 4>(job, row, group, body),
            5 => dot_group::<L, 5>(job, row, group, body),
            _ => dot_group::<L, 6>(job, row, group, body),
        }
        row += group.len();
    }
    portable::dot(job, outputs, body);
}

/// N outputs (rows `row..row + N` of the matrix) over bytes `..body`: per vector position,
/// each input is loaded once and multiplied into all N accumulators.
#[inline(always)]
unsafe fn dot_group<L: Lanes, const N: usize>(job: &Dot, row: usize, outs: &mut [&mut [u8]], body: usize) {
    let k = job.inputs.len();
    let mut tables = Vec::with_capacity(N * k);
    for r in 0..N {
        for j in 0..k {
            tables.push(L::prepare(job.coeffs.get(row + r, j)));
        }
    }
    let mut dst = [std::ptr::null_mut::<u8>(); N];
    for (d, o) in dst.iter_mut().zip(outs.iter_mut()) {
        *d = o.as_mut_ptr();
    }
    let mut p = 0;
    while p < body {
        let mut acc = [L::zero(); N];
        if job.accumulate {
            for r in 0..N {
                acc[r] = L::load(dst[r].add(p));
            }
        }
        for (j, input) in job.inputs.iter().enumerate() {
            let v = L::load(input.as_ptr().add(p));
            for r in 0..N {
                acc[r] = L::xor(acc[r], L::mul(tables[r * k + j], v));
            }
        }
        for r in 0..N {
            L::store(dst[r].add(p), acc[r]);
        }
        p += L::WIDTH;
    }
}

#[inline(always)]
unsafe fn scale_all<L: Lanes>(buf: &mut [u8], c: u8) {
    let body = buf.len() - buf.len() % L::WIDTH;
    let t = L::prepare(c);
    let p = buf.as_mut_ptr();
    let mut i = 0;
    while i < body {
        L::store(p.add(i), L::mul(t, L::load(p.add(i))));
        i += L::WIDTH;
    }
    portable::scale(&mut buf[body..], c);
}
