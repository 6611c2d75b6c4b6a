//! Stripe layout: split and join are inverse, and a range read's pieces hold exactly the
//! range's bytes, from one shard or two, degraded or not.

use cairn_gf::{Error, ReedSolomon, Stripe};
use proptest::prelude::*;

proptest! {
    #[test]
    fn split_then_join_is_the_chunk(chunk in proptest::collection::vec(any::<u8>(), 0..2000), k in 1usize..17) {
        let s = Stripe::new(chunk.len() as u64, k).unwrap();
        let shards = s.split(&chunk).unwrap();
        prop_assert_eq!(shards.len(), k);
        prop_assert!(shards.iter().all(|x| x.len() as u64 == s.shard));
        let refs: Vec<&[u8]> = shards.iter().map(Vec::as_slice).collect();
        prop_assert_eq!(s.join(&refs).unwrap(), chunk);
    }

    #[test]
    fn a_range_is_read_from_the_pieces_that_hold_it(
        chunk in proptest::collection::vec(any::<u8>(), 1..3000),
        k in 1usize..12,
        a in any::<u16>(),
        b in any::<u16>(),
    ) {
        let s = Stripe::new(chunk.len() as u64, k).unwrap();
        let shards = s.split(&chunk).unwrap();
        let (start, end) = ((a.min(b) as u64) % (chunk.len() as u64 + 1), (a.max(b) as u64) % (chunk.len() as u64 + 1));
        let (start, end) = (start.min(end), start.max(end));
        let pieces = s.pieces(start, end);
        let mut got = Vec::new();
        for p in &pieces {
            prop_assert!(p.from < p.to && p.to <= s.shard);
            got.extend_from_slice(&shards[p.shard][p.from as usize..p.to as usize]);
        }
        prop_assert_eq!(&got[..], &chunk[start as usize..end as usize]);
        // A range no longer than a shard touches at most two.
        if end - start <= s.shard {
            prop_assert!(pieces.len() <= 2);
        }
    }
}

#[test]
fn a_degraded_small_read_decodes_only_its_range() {
    let chunk: Vec<u8> = (0..100_000u32).map(|i| (i * 13 + i / 77) as u8).collect();
    let (k, m) = (4, 2);
    let s = Stripe::new(chunk.len() as u64, k).unwrap();
    let rs = ReedSolomon::new(k, m).unwrap();
    let data = s.split(&chunk).unwrap();
    let mut parity = vec![vec![0u8; s.shard as usize]; m];
    let ins: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
    rs.encode(&ins, &mut parity.iter_mut().map(Vec::as_mut_slice).collect::<Vec<_>>()).unwrap();
    let all: Vec<&Vec<u8>> = data.iter().chain(&parity).collect();
    // 4 KiB inside shard 1, which is lost: the same 4 KiB of shards 0, 2, 3 and 4 rebuild it.
    let (start, end) = (s.shard + 1000, s.shard + 1000 + 4096);
    let pieces = s.pieces(start, end);
    assert_eq!(pieces.len(), 1);
    let p = pieces[0];
    assert_eq!(p.shard, 1);
    let present = [0, 2, 3, 4];
    let inputs: Vec<&[u8]> = present.iter().map(|&i| &all[i][p.from as usize..p.to as usize]).collect();
    let mut out = vec![0u8; 4096];
    rs.rebuild(&present, &inputs, &[1], &mut [&mut out]).unwrap();
    assert_eq!(&out[..], &chunk[start as usize..end as usize]);
}

#[test]
fn bad_shapes_are_refused() {
    assert!(matches!(Stripe::new(10, 0), Err(Error::Code { .. })));
    let s = Stripe::new(10, 3).unwrap();
    assert_eq!(s.shard, 4);
    assert!(matches!(s.split(&[0u8; 9]), Err(Error::Length { .. })));
    assert!(matches!(s.join(&[&[0u8; 4], &[0u8; 4]]), Err(Error::Shape { .. })));
    assert!(s.pieces(5, 5).is_empty());
    assert_eq!(Stripe::new(0, 4).unwrap().split(&[]).unwrap(), vec![vec![0u8]; 4]);
}
