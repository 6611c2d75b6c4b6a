//! `cairn bench --gf`: the coding engine on one core, beside memcpy (and ISA-L in a build
//! with the `isal` feature); the table comes from `cairn_gf::bench`.

use anyhow::Result;

/// Runs `cairn bench --gf`.
pub fn run() -> Result<()> {
    println!("cairn bench --gf: {}", cairn_gf::bench::report()?);
    Ok(())
}
