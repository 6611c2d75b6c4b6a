//! The coding engine's speed on one core, on every kernel this CPU runs, beside memcpy of
//! the same bytes measured in the same run (the machine's own limit) and, with the `isal`
//! feature, beside ISA-L's `ec_encode_data` on the same buffers. Printed by
//! `cargo bench -p cairn-gf` and `cairn bench --gf`.

use std::fmt::Write;
use std::time::{Duration, Instant};

use crate::{Backend, ReedSolomon, Result};

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

/// Encode, decode with 2 data shards lost and with M lost: GiB/s of data per second.
fn code_figures(b: Backend, k: usize, m: usize) -> Result<[f64; 3]> {
    let rs = ReedSolomon::new(k, m)?.with_backend(b);
    let data = buffers(k);
    let mut parity = vec![vec![0u8; SHARD]; m];
    let ins: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
    let mut failed = None;
    let encode = speed(k * SHARD, || {
        let mut outs: Vec<&mut [u8]> = parity.iter_mut().map(Vec::as_mut_slice).collect();
        failed = rs.encode(&ins, &mut outs).err().or(failed.take());
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
            failed = rs.rebuild(&present, &inputs, &wanted, &mut outs).err().or(failed.take());
        });
    }
    match failed {
        Some(e) => Err(e),
        None => Ok([encode, decode[0], decode[1]]),
    }
}

/// Measures everything and returns the table.
pub fn report() -> Result<String> {
    let mut t = String::new();
    let src = buffers(1).remove(0);
    let mut dst = vec![0u8; SHARD];
    let memcpy = speed(SHARD, || {
        dst.copy_from_slice(std::hint::black_box(&src));
        std::hint::black_box(&dst);
    });
    let _ = writeln!(t, "one core, {} KiB shards; best kernel here: {}", SHARD >> 10, Backend::best().name());
    let _ = writeln!(t, "memcpy (the limit): {memcpy:.1} GiB/s");
    let _ = writeln!(t, "GiB/s of buffer (IADD, MULT, MULADD) or of data shards (encode, decode) per second\n");
    let _ = write!(t, "{:<12} {:>6} {:>6} {:>7}", "kernel", "IADD", "MULT", "MULADD");
    for (k, m) in CODES {
        let _ = write!(t, "  {:>22}", format!("RS({k},{m}) enc/dec2/dec{m}"));
    }
    let _ = writeln!(t);
    for b in Backend::ALL.into_iter().filter(|b| b.available()) {
        let mut failed = None;
        let iadd = speed(SHARD, || failed = b.iadd(&mut dst, &src).err().or(failed.take()));
        let mult = speed(SHARD, || failed = b.mult(&mut dst, &src, 0x8e).err().or(failed.take()));
        let muladd = speed(SHARD, || failed = b.muladd(&mut dst, &src, 0x8e).err().or(failed.take()));
        if let Some(e) = failed {
            return Err(e);
        }
        let _ = write!(t, "{:<12} {iadd:>6.1} {mult:>6.1} {muladd:>7.1}", b.name());
        for (k, m) in CODES {
            let [e, d2, dm] = code_figures(b, k, m)?;
            let _ = write!(t, "  {:>22}", format!("{e:.1} / {d2:.1} / {dm:.1}"));
        }
        let _ = writeln!(t);
    }
    isal_row(&mut t)?;
    Ok(t)
}

/// ISA-L's encode of the same codes.
#[cfg(feature = "isal")]
fn isal_row(t: &mut String) -> Result<()> {
    let _ = write!(t, "{:<12} {:>6} {:>6} {:>7}", "ISA-L", "", "", "");
    for (k, m) in CODES {
        let mut code = crate::isal::IsalCode::new(k, m)?;
        let data = buffers(k);
        let mut parity = vec![vec![0u8; SHARD]; m];
        let ins: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
        let mut failed = None;
        let e = speed(k * SHARD, || {
            let mut outs: Vec<&mut [u8]> = parity.iter_mut().map(Vec::as_mut_slice).collect();
            failed = code.encode(&ins, &mut outs).err().or(failed.take());
        });
        if let Some(e) = failed {
            return Err(e);
        }
        let _ = write!(t, "  {:>22}", format!("{e:.1} (encode)"));
    }
    let _ = writeln!(t);
    Ok(())
}

/// Without the `isal` feature there is no ISA-L to compare with.
#[cfg(not(feature = "isal"))]
fn isal_row(t: &mut String) -> Result<()> {
    let _ = writeln!(t, "(ISA-L: build with `--features isal` and libisal-dev installed to compare)");
    Ok(())
}
