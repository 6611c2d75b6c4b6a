//! `cairn bench --gf`: the coding engine's speed on one core, on every kernel this CPU runs,
//! beside memcpy of the same bytes measured in the same run (the machine's own limit).

use anyhow::Result;
use cairn_gf::{Backend, ReedSolomon};
use std::time::{Duration, Instant};

/// Bytes per shard (per buffer of the single-buffer operations).
const SHARD: usize = 1 << 20;
/// Each figure runs at least this long.
const SPAN: Duration = Duration::from_millis(300);
const GIB: f64 = (1u64 << 30) as f64;

/// GiB/s of `bytes` moved per call of `f`, repeated for at least [`SPAN`].
fn speed(bytes: usize, mut f: impl FnMut()) -> f64 {
    f();
    let start = Instant::now();
    let mut calls = 0u64;
    while start.elapsed() < SPAN {
        f();
        calls += 1;
    }
    (bytes as f64 * calls as f64) / GIB / start.elapsed().as_secs_f64()
}

fn buffers(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| (0..SHARD).map(|j| (j * 31 + i * 7 + j / 253) as u8).collect()).collect()
}

/// Runs `cairn bench --gf`.
pub fn run() -> Result<()> {
    let src = buffers(1).remove(0);
    let mut dst = vec![0u8; SHARD];
    let memcpy = speed(SHARD, || {
        dst.copy_from_slice(std::hint::black_box(&src));
        std::hint::black_box(&dst);
    });
    println!("cairn bench --gf: one core, {} KiB buffers; best kernel here: {}", SHARD >> 10, Backend::best().name());
    println!("memcpy (the limit): {memcpy:.1} GiB/s\n");
    println!(
        "{:<12} {:>7} {:>7} {:>7}  {:>14} {:>14} {:>14}",
        "kernel", "IADD", "MULT", "MULADD", "encode 4+2", "encode 6+3", "encode 10+4"
    );
    let codes = [(4, 2), (6, 3), (10, 4)];
    let mut decode_rows = Vec::new();
    for b in Backend::ALL.into_iter().filter(|b| b.available()) {
        let iadd = speed(SHARD, || b.iadd(&mut dst, &src).expect("equal buffers"));
        let mult = speed(SHARD, || b.mult(&mut dst, &src, 0x8e).expect("equal buffers"));
        let muladd = speed(SHARD, || b.muladd(&mut dst, &src, 0x8e).expect("equal buffers"));
        let mut enc = Vec::new();
        let mut dec = Vec::new();
        for (k, m) in codes {
            let rs = ReedSolomon::new(k, m)?.with_backend(b);
            let data = buffers(k);
            let mut parity = vec![vec![0u8; SHARD]; m];
            let ins: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
            enc.push(speed(k * SHARD, || {
                let mut outs: Vec<&mut [u8]> = parity.iter_mut().map(Vec::as_mut_slice).collect();
                rs.encode(&ins, &mut outs).expect("shaped buffers");
            }));
            // The worst case: M data shards lost, rebuilt from the rest and the parity.
            let present: Vec<usize> = (m..k + m).collect();
            let inputs: Vec<&[u8]> = data.iter().chain(&parity).skip(m).map(Vec::as_slice).collect();
            let lost: Vec<usize> = (0..m).collect();
            let mut rebuilt = vec![vec![0u8; SHARD]; m];
            dec.push(speed(k * SHARD, || {
                let mut outs: Vec<&mut [u8]> = rebuilt.iter_mut().map(Vec::as_mut_slice).collect();
                rs.rebuild(&present, &inputs, &lost, &mut outs).expect("enough shards");
            }));
        }
        println!(
            "{:<12} {iadd:>7.1} {mult:>7.1} {muladd:>7.1}  {:>14.1} {:>14.1} {:>14.1}",
            b.name(),
            enc[0],
            enc[1],
            enc[2]
        );
        decode_rows.push((b.name(), dec));
    }
    println!(
        "\n{:<12} {:>14} {:>14} {:>14}   (M data shards lost)",
        "kernel", "decode 4+2", "decode 6+3", "decode 10+4"
    );
    for (name, dec) in decode_rows {
        println!("{name:<12} {:>14.1} {:>14.1} {:>14.1}", dec[0], dec[1], dec[2]);
    }
    println!("\nGiB/s of data shards (encode, decode) or of buffer (IADD, MULT, MULADD) per second.");
    Ok(())
}
