//! Scalars of GF(2^8) with the polynomial 0x11D: log and exp tables built at compile time,
//! and the per-scalar tables the buffer kernels use (a full product row, two nibble tables,
//! an 8x8 bit matrix for GFNI).

/// The field polynomial x^8 + x^4 + x^3 + x^2 + 1; 2 generates the multiplicative group.
pub const POLY: u16 = 0x11D;

/// `EXP[i]` = 2^i for i in 0..510 (doubled so that `EXP[log a + log b]` needs no modulo).
const EXP: [u8; 510] = {
    let mut t = [0u8; 510];
    let mut x: u16 = 1;
    let mut i = 0;
    while i < 510 {
        t[i] = x as u8;
        x <<= 1;
        if x & 0x100 != 0 {
            x ^= POLY;
        }
        i += 1;
    }
    t
};

/// `LOG[a]` = i with 2^i = a, for a != 0 (`LOG[0]` is unused).
const LOG: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 255 {
        t[EXP[i] as usize] = i as u8;
        i += 1;
    }
    t
};

/// The whole multiplication table: `MUL[a][b]` = a * b (64 KiB, for the portable kernel).
pub(crate) static MUL: [[u8; 256]; 256] = {
    let mut t = [[0u8; 256]; 256];
    let mut a = 1;
    while a < 256 {
        let mut b = 1;
        while b < 256 {
            t[a][b] = EXP[LOG[a] as usize + LOG[b] as usize];
            b += 1;
        }
        a += 1;
    }
    t
};

/// a * b.
pub fn mul(a: u8, b: u8) -> u8 {
    MUL[a as usize][b as usize]
}

/// 2^i, the generator raised to `i` (any `i`: the group has order 255).
pub fn exp(i: usize) -> u8 {
    EXP[i % 255]
}

/// The inverse of `a`; `None` for zero.
pub fn inv(a: u8) -> Option<u8> {
    (a != 0).then(|| EXP[255 - LOG[a as usize] as usize])
}

/// a / b; `None` when b is zero.
pub fn div(a: u8, b: u8) -> Option<u8> {
    inv(b).map(|ib| mul(a, ib))
}

/// The products of `c` with every low nibble and with every high nibble: c * x is
/// `lo[x & 15] ^ hi[x >> 4]`, the split the shuffle kernels look up 16 or 32 bytes at once.
pub(crate) fn nibbles(c: u8) -> ([u8; 16], [u8; 16]) {
    let mut lo = [0u8; 16];
    let mut hi = [0u8; 16];
    for n in 0..16u8 {
        lo[n as usize] = mul(c, n);
        hi[n as usize] = mul(c, n << 4);
    }
    (lo, hi)
}

/// Multiplication by `c` as the 8x8 bit matrix of the GFNI affine instruction: byte 7 - i of
/// the result holds the input bits that make output bit i.
pub(crate) fn bit_matrix(c: u8) -> u64 {
    let mut m = 0u64;
    for out in 0..8 {
        let mut row = 0u8;
        for bit in 0..8 {
            if mul(c, 1 << bit) >> out & 1 == 1 {
                row |= 1 << bit;
            }
        }
        m |= (row as u64) << (8 * (7 - out));
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Carry-less multiply and reduce, bit by bit: the oracle for the tables.
    fn slow(mut a: u8, mut b: u8) -> u8 {
        let mut p = 0u8;
        while b != 0 {
            if b & 1 == 1 {
                p ^= a;
            }
            let carry = a & 0x80 != 0;
            a <<= 1;
            if carry {
                a ^= (POLY & 0xFF) as u8;
            }
            b >>= 1;
        }
        p
    }

    #[test]
    fn tables_match_the_bitwise_product_for_every_pair() {
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                assert_eq!(mul(a, b), slow(a, b), "{a} * {b}");
            }
        }
    }

    #[test]
    fn every_nonzero_scalar_has_an_inverse() {
        assert_eq!(inv(0), None);
        for a in 1..=255u8 {
            assert_eq!(mul(a, inv(a).unwrap()), 1, "{a}");
            assert_eq!(div(a, a), Some(1));
        }
    }

    #[test]
    fn nibble_tables_rebuild_the_product() {
        for c in 0..=255u8 {
            let (lo, hi) = nibbles(c);
            for x in 0..=255u8 {
                assert_eq!(lo[(x & 15) as usize] ^ hi[(x >> 4) as usize], mul(c, x));
            }
        }
    }

    #[test]
    fn two_generates_the_group() {
        let mut seen = [false; 256];
        for i in 0..255 {
            assert!(!seen[exp(i) as usize]);
            seen[exp(i) as usize] = true;
        }
        assert!(!seen[0]);
    }
}
