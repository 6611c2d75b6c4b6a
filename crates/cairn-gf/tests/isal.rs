//! With the `isal` feature: ISA-L builds the same generator and computes the same parity
//! (run by the README's test command when libisal-dev is installed).
#![cfg(feature = "isal")]

use cairn_gf::isal::{cauchy_matrix, IsalCode};
use cairn_gf::ReedSolomon;

#[test]
fn isal_has_the_same_generator_and_parity() {
    for (k, m) in [(4, 2), (6, 3), (10, 4), (11, 5), (20, 8)] {
        let rs = ReedSolomon::new(k, m).unwrap();
        let g = rs.generator();
        let a = cauchy_matrix(k, m);
        for r in 0..k + m {
            assert_eq!(g.row(r), &a[r * k..(r + 1) * k], "ec:{k}+{m} row {r}");
        }
        let data: Vec<Vec<u8>> = (0..k).map(|j| (0..4099).map(|b| (b * 7 + j * 29 + b / 13) as u8).collect()).collect();
        let ins: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
        let mut ours = vec![vec![0u8; 4099]; m];
        let mut theirs = vec![vec![0u8; 4099]; m];
        rs.encode(&ins, &mut ours.iter_mut().map(Vec::as_mut_slice).collect::<Vec<_>>()).unwrap();
        IsalCode::new(k, m)
            .unwrap()
            .encode(&ins, &mut theirs.iter_mut().map(Vec::as_mut_slice).collect::<Vec<_>>())
            .unwrap();
        assert_eq!(ours, theirs, "ec:{k}+{m}");
    }
}
