//! Support for the fuzz targets: the seed inputs kept in the repository.
//!
//! Every crate's fuzz targets are proptest properties named `fuzz_*` that first replay the
//! seeds in `fuzz/corpus/<target>/` and then try random inputs: a few hundred in the normal
//! test run, as many as fit in ten minutes under `scripts/fuzz` (which raises
//! `PROPTEST_CASES`). A failing input found there is saved as a new seed.

use std::path::PathBuf;

/// The seed inputs of fuzz target `target` (none if its directory is missing).
pub fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus").join(target);
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect();
    files.sort();
    files.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

#[cfg(test)]
mod fuzz {
    use super::corpus;
    use crate::codec::{decode, encode};
    use crate::wire::{ClientCommand, Command, Query, Request};
    use crate::{FsPath, Policy};
    use proptest::prelude::*;

    /// Decoding hostile bytes never panics, and whatever decodes encodes back to an equal
    /// value: nothing that decodes can fail to decode again after a trip through the log.
    fn codec(bytes: &[u8]) {
        fn round<T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(b: &[u8]) {
            if let Ok(v) = decode::<T>(b, "fuzz") {
                assert_eq!(decode::<T>(&encode(&v), "fuzz").unwrap(), v);
            }
        }
        round::<ClientCommand>(bytes);
        round::<Command>(bytes);
        round::<Query>(bytes);
        round::<Request>(bytes);
    }

    /// Parsing any text as a path never panics; an accepted path is within PATH_MAX and
    /// prints back as itself.
    fn path(bytes: &[u8]) {
        if let Ok(p) = FsPath::parse_bytes(bytes) {
            let text = p.to_string();
            assert!(text.len() <= 4096, "{} bytes", text.len());
            assert_eq!(FsPath::parse(&text).unwrap(), p);
        }
        if let Ok(s) = std::str::from_utf8(bytes) {
            let _ = Policy::parse(s);
        }
    }

    /// Writes the codec seeds (run by hand: `cargo test -p cairn-core write_codec_seeds --
    /// --ignored`).
    #[test]
    #[ignore]
    fn write_codec_seeds() {
        use crate::wire::{ClusterCommand, Target};
        let p = |s: &str| Target::Path(s.parse().unwrap());
        let seeds: Vec<(&str, Vec<u8>)> = vec![
            (
                "mkdir",
                encode(&ClientCommand::Mkdir { at: p("/a/b"), parents: true, attrs: crate::wire::NewAttrs::dir() }),
            ),
            (
                "rename",
                encode(&ClientCommand::Rename { from: p("/a"), to: Target::Child { parent: 1, name: "z".into() } }),
            ),
            ("remove", encode(&ClientCommand::Remove { at: Target::Ino(7), recursive: true })),
            ("cluster", encode(&Command::Cluster(ClusterCommand::ForgetNode { node: 3 }))),
            ("query-list", encode(&Query::List { at: p("/"), after: Some("m".into()), limit: 100 })),
            ("query-stat", encode(&Query::Stat(p("/a/b")))),
        ];
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/codec");
        for (name, bytes) in seeds {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }

    #[test]
    fn fuzz_seeds_codec_and_path() {
        corpus("codec").iter().for_each(|b| codec(b));
        corpus("path").iter().for_each(|b| path(b));
    }

    proptest! {
        #[test]
        fn fuzz_codec(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            codec(&bytes);
        }

        #[test]
        fn fuzz_codec_mutated_seeds(pick in any::<prop::sample::Index>(), flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
            let seeds = corpus("codec");
            if !seeds.is_empty() {
                let mut b = seeds[pick.index(seeds.len())].clone();
                if !b.is_empty() {
                    for (at, v) in flips {
                        let i = at.index(b.len());
                        b[i] = v;
                    }
                }
                codec(&b);
            }
        }

        #[test]
        fn fuzz_path(bytes in proptest::collection::vec(any::<u8>(), 0..5000)) {
            path(&bytes);
        }

        #[test]
        fn fuzz_path_text(s in "(/[a-z.%\\x00]{0,300}){0,20}") {
            path(s.as_bytes());
        }
    }
}
