//! `cargo bench -p cairn-gf`: the same table as `cairn bench --gf`. Cargo passes `--bench`
//! when benchmarking; `cargo test --all-targets` runs this file without it, and then it does
//! nothing (the figures mean nothing in a debug build).

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    match cairn_gf::bench::report() {
        Ok(table) => println!("{table}"),
        Err(e) => {
            eprintln!("cairn-gf bench: {e}");
            std::process::exit(1);
        }
    }
}
