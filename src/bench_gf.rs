//! `cairn bench --gf`: the coding engine's speed on one core, on every kernel this CPU runs,
//! beside memcpy of the same bytes measured in the same run (the machine's own limit) and,
//! in a build with the `isal` feature, beside ISA-L's `ec_encode_data` on the same buffers.

use anyhow::Result;
use cairn_gf::{Backend, ReedSolomon};
use std::time::{Duration, Instant};

/// Bytes per shard (per buffer of the single-buffer operations).
const SHARD: usize = 1 << 20;
/// Each figure runs at least this long.
const SPAN: Duration = Duration::from_millis(300);
const GIB: f64 = (1u64 << 30) as f64;
/// The codes measured: (data, parity).
const CODES: [(usize, usize); 3] = [(6, 3), (10, 4), (11, 5)];

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

/// Encode, decode with 2 data shards lost and with M lost, GiB/s of data per second.
fn code_figures(b: Backend, k: usize, m: usize) -> Result<[f64; 3]> {
    let rs = ReedSolomon::new(k, m)?.with_backend(b);
    let data = buffers(k);
    let mut parity = vec![vec![0u8; SHARD]; m];
    let ins: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
    let encode = speed(k * SHARD, || {
        let mut outs: Vec<&mut [u8]> = parity.iter_mut().map(Vec::as_mut_slice).collect();
        rs.encode(&ins, &mut outs).expect("shaped buffers");
    });
    let mut decode = [0.0; 2];
    for (slot, lost) in decode.iter_mut().zip([2, m]) {
        // Data shards 0..lost are gone; the next K shards (data, then parity) rebuild them.
        let present: Vec<usize> = (lost..lost + k).collect();
        let inputs: Vec<&[u8]> = data.iter().chain(&parity).skip(lost).take(k).map(Vec::as_slice).collect();
        let wanted: Vec<usize> = (0..lost).collect();
        let mut rebuilt = vec![vec![0u8; SHARD]; lost];
        *slot = speed(k * SHARD, || {
            let mut outs: Vec<&mut [u8]> = rebuilt.iter_mut().map(Vec::as_mut_slice).collect();
            rs.rebuild(&present, &inputs, &wanted, &mut outs).expect("enough shards");
        });
    }
    Ok([encode, decode[0], decode[1]])
}

/// Runs `cairn bench --gf`.
pub fn run() -> Result<()> {
    let src = buffers(1).remove(0);
    let mut dst = vec![0u8; SHARD];
    let memcpy = speed(SHARD, || {
        dst.copy_from_slice(std::hint::black_box(&src));
        std::hint::black_box(&dst);
    });
    println!("cairn bench --gf: one core, {} KiB shards; best kernel here: {}", SHARD >> 10, Backend::best().name());
    println!("memcpy (the limit): {memcpy:.1} GiB/s");
    println!("GiB/s of buffer (IADD, MULT, MULADD) or of data shards (encode, decode) per second\n");
    print!("{:<12} {:>6} {:>6} {:>7}", "kernel", "IADD", "MULT", "MULADD");
    for (k, m) in CODES {
        print!("  {:>22}", format!("RS({k},{m}) enc/dec2/dec{m}"));
    }
    println!();
    for b in Backend::ALL.into_iter().filter(|b| b.available()) {
        let iadd = speed(SHARD, || b.iadd(&mut dst, &src).expect("equal buffers"));
        let mult = speed(SHARD, || b.mult(&mut dst, &src, 0x8e).expect("equal buffers"));
        let muladd = speed(SHARD, || b.muladd(&mut dst, &src, 0x8e).expect("equal buffers"));
        print!("{:<12} {iadd:>6.1} {mult:>6.1} {muladd:>7.1}", b.name());
        for (k, m) in CODES {
            let [e, d2, dm] = code_figures(b, k, m)?;
            print!("  {:>22}", format!("{e:.1} / {d2:.1} / {dm:.1}"));
        }
        println!();
    }
    isal_row()?;
    Ok(())
}

/// ISA-L's encode of the same codes, in a build with the `isal` feature.
#[cfg(feature = "isal")]
fn isal_row() -> Result<()> {
    print!("{:<12} {:>6} {:>6} {:>7}", "ISA-L", "", "", "");
    for (k, m) in CODES {
        let mut code = cairn_gf::isal::IsalCode::new(k, m)?;
        let data = buffers(k);
        let mut parity = vec![vec![0u8; SHARD]; m];
        let ins: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
        let e = speed(k * SHARD, || {
            let mut outs: Vec<&mut [u8]> = parity.iter_mut().map(Vec::as_mut_slice).collect();
            code.encode(&ins, &mut outs).expect("shaped buffers");
        });
        print!("  {:>22}", format!("{e:.1} (encode)"));
    }
    println!();
    Ok(())
}

/// Without the `isal` feature there is no ISA-L to compare with.
#[cfg(not(feature = "isal"))]
fn isal_row() -> Result<()> {
    println!("(ISA-L: build with `--features isal` and libisal-dev installed to compare)");
    Ok(())
}
