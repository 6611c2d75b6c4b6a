//! Every kernel against the byte-by-byte oracle: dot products of every shape, with and
//! without accumulation, over lengths that leave every kind of tail.

use cairn_gf::{mul, Backend, Error, Matrix};
use proptest::prelude::*;

/// outputs[r] (^)= sum_j coeffs[r][j] * inputs[j], one byte at a time.
fn oracle(coeffs: &Matrix, inputs: &[Vec<u8>], outputs: &mut [Vec<u8>], accumulate: bool) {
    for (r, out) in outputs.iter_mut().enumerate() {
        for (i, o) in out.iter_mut().enumerate() {
            let sum = inputs.iter().enumerate().fold(0, |acc, (j, x)| acc ^ mul(coeffs.get(r, j), x[i]));
            *o = if accumulate { *o ^ sum } else { sum };
        }
    }
}

fn backends() -> Vec<Backend> {
    Backend::ALL.into_iter().filter(|b| b.available()).collect()
}

fn case() -> impl Strategy<Value = (Matrix, Vec<Vec<u8>>, Vec<Vec<u8>>, bool)> {
    (1usize..7, 1usize..13, 0usize..400).prop_flat_map(|(m, k, len)| {
        (
            proptest::collection::vec(any::<u8>(), m * k),
            proptest::collection::vec(proptest::collection::vec(any::<u8>(), len), k),
            proptest::collection::vec(proptest::collection::vec(any::<u8>(), len), m),
            any::<bool>(),
        )
            .prop_map(move |(c, inputs, outputs, acc)| {
                let rows: Vec<Vec<u8>> = c.chunks(k).map(<[u8]>::to_vec).collect();
                (Matrix::from_rows(&rows).unwrap(), inputs, outputs, acc)
            })
    })
}

proptest! {
    #[test]
    fn every_backend_computes_the_oracles_dot_product((coeffs, inputs, outputs, acc) in case()) {
        let mut want = outputs.clone();
        oracle(&coeffs, &inputs, &mut want, acc);
        for b in backends() {
            let mut got = outputs.clone();
            let ins: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
            let mut outs: Vec<&mut [u8]> = got.iter_mut().map(Vec::as_mut_slice).collect();
            b.dot(&coeffs, &ins, &mut outs, acc).unwrap();
            prop_assert_eq!(&got, &want, "backend {}", b.name());
        }
    }

    #[test]
    fn single_buffer_operations_agree_with_the_oracle(
        src in proptest::collection::vec(any::<u8>(), 0..300),
        c in any::<u8>(),
        seed in any::<u8>(),
    ) {
        let dst0: Vec<u8> = src.iter().map(|x| x.wrapping_mul(seed) ^ seed).collect();
        for b in backends() {
            let mut d = dst0.clone();
            b.mult(&mut d, &src, c).unwrap();
            prop_assert!(d.iter().zip(&src).all(|(d, s)| *d == mul(*s, c)), "MULT on {}", b.name());
            let mut d = dst0.clone();
            b.muladd(&mut d, &src, c).unwrap();
            prop_assert!(d.iter().zip(&src).zip(&dst0).all(|((d, s), o)| *d == o ^ mul(*s, c)), "MULADD on {}", b.name());
            let mut d = dst0.clone();
            b.iadd(&mut d, &src).unwrap();
            prop_assert!(d.iter().zip(&src).zip(&dst0).all(|((d, s), o)| *d == o ^ s), "IADD on {}", b.name());
            let mut d = src.clone();
            b.scale(&mut d, c);
            prop_assert!(d.iter().zip(&src).all(|(d, s)| *d == mul(*s, c)), "scale on {}", b.name());
        }
    }
}

#[test]
fn every_scalar_multiplies_a_full_vector_alike_on_every_backend() {
    let src: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    for c in 0..=255u8 {
        let want: Vec<u8> = src.iter().map(|x| mul(*x, c)).collect();
        for b in backends() {
            let mut d = vec![0u8; src.len()];
            b.mult(&mut d, &src, c).unwrap();
            assert_eq!(d, want, "{} x {c}", b.name());
        }
    }
}

#[test]
fn mismatched_buffers_are_refused_before_anything_is_written() {
    let b = Backend::best();
    let mut dst = vec![7u8; 10];
    assert_eq!(b.muladd(&mut dst, &[1u8; 11], 3), Err(Error::Length { expected: 10, found: 11 }));
    assert_eq!(dst, vec![7u8; 10]);
    assert_eq!(b.iadd(&mut dst, &[1u8; 9]), Err(Error::Length { expected: 10, found: 9 }));
    let m = Matrix::identity(2);
    let mut one = vec![0u8; 10];
    assert!(matches!(b.dot(&m, &[&[0u8; 10]], &mut [&mut one], false), Err(Error::Shape { .. })));
}

#[test]
fn the_best_backend_is_available_and_unavailable_ones_fall_back() {
    assert!(Backend::best().available());
    for b in Backend::ALL {
        let mut d = vec![0u8; 100];
        b.mult(&mut d, &[3u8; 100], 2).unwrap();
        assert_eq!(d, vec![6u8; 100]);
    }
}
