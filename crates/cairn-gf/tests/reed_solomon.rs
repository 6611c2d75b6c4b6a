//! The Reed-Solomon code: any K of K+M shards rebuild the rest, on every backend, and the
//! generator is the one docs/formats.md writes down.

use cairn_gf::{inv, Backend, Error, Matrix, ReedSolomon};
use proptest::prelude::*;

fn shards(rs: &ReedSolomon, len: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut x = seed | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x as u8
    };
    let data: Vec<Vec<u8>> = (0..rs.data_shards()).map(|_| (0..len).map(|_| next()).collect()).collect();
    let mut parity = vec![vec![0u8; len]; rs.parity_shards()];
    let ins: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
    let mut outs: Vec<&mut [u8]> = parity.iter_mut().map(Vec::as_mut_slice).collect();
    rs.encode(&ins, &mut outs).unwrap();
    data.into_iter().chain(parity).collect()
}

/// Every subset of `n` items with `k` members, as bit masks.
fn subsets(n: usize, k: usize) -> impl Iterator<Item = u32> {
    (0u32..1 << n).filter(move |m| m.count_ones() as usize == k)
}

#[test]
fn every_k_subset_of_small_codes_rebuilds_all_shards() {
    for (k, m) in [(2, 1), (4, 2), (6, 3), (8, 4)] {
        let rs = ReedSolomon::new(k, m).unwrap();
        let whole = shards(&rs, 200, (k * 31 + m) as u64);
        for keep in subsets(k + m, k) {
            let mut slots: Vec<Option<Vec<u8>>> =
                whole.iter().enumerate().map(|(i, s)| (keep >> i & 1 == 1).then(|| s.clone())).collect();
            rs.reconstruct(&mut slots).unwrap();
            let back: Vec<Vec<u8>> = slots.into_iter().map(Option::unwrap).collect();
            assert_eq!(back, whole, "ec:{k}+{m} keeping {keep:b}");
        }
    }
}

#[test]
fn every_k_rows_of_the_10_plus_4_generator_invert() {
    let rs = ReedSolomon::new(10, 4).unwrap();
    for keep in subsets(14, 10) {
        let rows: Vec<usize> = (0..14).filter(|i| keep >> i & 1 == 1).collect();
        let d = rs.decode_matrix(&rows).unwrap();
        let g = rs.generator().select_rows(&rows).unwrap();
        assert_eq!(g.mul(&d).unwrap(), Matrix::identity(10));
    }
}

proptest! {
    #[test]
    fn large_codes_rebuild_from_random_survivors(
        k in 1usize..20, m in 1usize..8, len in 0usize..300, seed in any::<u64>(), order in any::<u64>(),
    ) {
        for b in Backend::ALL.into_iter().filter(|b| b.available()) {
            let rs = ReedSolomon::new(k, m).unwrap().with_backend(b);
            let whole = shards(&rs, len, seed);
            let lose: Vec<usize> = (0..k + m).filter(|i| (order >> (i % 64)) & 1 == 1).take(m).collect();
            let mut slots: Vec<Option<Vec<u8>>> = whole.iter().cloned().map(Some).collect();
            for &i in &lose {
                slots[i] = None;
            }
            rs.reconstruct(&mut slots).unwrap();
            prop_assert_eq!(slots.into_iter().map(Option::unwrap).collect::<Vec<_>>(), whole);
        }
    }
}

#[test]
fn the_generator_is_the_documented_cauchy_matrix() {
    let rs = ReedSolomon::new(4, 2).unwrap();
    let g = rs.generator();
    for r in 0..6 {
        for c in 0..4 {
            let want = if r < 4 { u8::from(r == c) } else { inv((r ^ c) as u8).unwrap() };
            assert_eq!(g.get(r, c), want);
        }
    }
    // Pinned values, so the fixed generator cannot drift unnoticed: 1/4, 1/5, 1/6, 1/7.
    assert_eq!(g.row(4), &[0x47, 0xa7, 0x7a, 0xba]);
}

#[test]
fn corrupt_parity_fails_verification() {
    let rs = ReedSolomon::new(4, 2).unwrap();
    let mut whole = shards(&rs, 64, 9);
    let refs: Vec<&[u8]> = whole.iter().map(Vec::as_slice).collect();
    assert!(rs.verify(&refs).unwrap());
    whole[5][3] ^= 1;
    let refs: Vec<&[u8]> = whole.iter().map(Vec::as_slice).collect();
    assert!(!rs.verify(&refs).unwrap());
}

#[test]
fn impossible_codes_and_too_few_shards_are_refused() {
    assert_eq!(ReedSolomon::new(0, 2).unwrap_err(), Error::Code { data: 0, parity: 2 });
    assert_eq!(ReedSolomon::new(250, 7).unwrap_err(), Error::Code { data: 250, parity: 7 });
    assert!(ReedSolomon::new(250, 6).is_ok());
    let rs = ReedSolomon::new(4, 2).unwrap();
    let mut slots: Vec<Option<Vec<u8>>> = vec![Some(vec![0; 8]), None, None, None, Some(vec![0; 8]), Some(vec![0; 8])];
    assert_eq!(rs.reconstruct(&mut slots), Err(Error::TooFewShards { present: 3, needed: 4 }));
    let mut uneven: Vec<Option<Vec<u8>>> =
        vec![Some(vec![0; 8]), Some(vec![0; 9]), Some(vec![0; 8]), Some(vec![0; 8]), None, None];
    assert!(matches!(rs.reconstruct(&mut uneven), Err(Error::Length { .. })));
}

#[test]
fn inverting_a_singular_matrix_is_an_error() {
    let m = Matrix::from_rows(&[vec![1, 2], vec![1, 2]]).unwrap();
    assert_eq!(m.invert(), Err(Error::Singular));
}
