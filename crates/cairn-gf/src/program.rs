//! Coding programs as data: a [`Plan`] names programs, each run by one node over a stream of
//! fixed-size buffers, joined by streams that one program pulls from another (LOAD from a
//! program) or that one program pushes into another (SEND into an input).
//!
//! A plan is JSON (format version 1, in docs/formats.md) so people can write their own;
//! [`Plan::check`] refuses a bad one (unknown buffers, streams with no end or two, cycles,
//! missing chunks, inputs of different sizes) before any byte moves, and returns the order
//! to run the programs in.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The plan format version this code reads.
pub const PLAN_VERSION: u32 = 1;
/// The largest buffer a plan may use (bytes).
pub const MAX_BUFFER: usize = 4 << 20;
/// The longest stream a plan may code: the largest chunk (bytes).
pub const MAX_LENGTH: u64 = 64 << 20;
/// Programs in a plan, steps in a program, buffers a program names.
pub const MAX_PROGRAMS: usize = 64;
/// Steps in one program.
pub const MAX_STEPS: usize = 256;
/// Distinct buffers one program names (its memory is this many buffers).
pub const MAX_BUFFERS: usize = 32;
/// Longest name of a program, buffer or input.
pub const MAX_NAME: usize = 64;

/// A set of programs and the streams between them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Format version: [`PLAN_VERSION`].
    pub v: u32,
    /// Bytes per buffer: every step works on this many bytes at a time (the last buffer of a
    /// stream may be shorter).
    pub buffer: usize,
    /// The programs, by name.
    pub programs: BTreeMap<String, Program>,
}

/// The steps one node runs, in order, for every buffer of the stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Program {
    /// The node that runs it (its id, as `cairn status` shows it).
    pub node: String,
    /// The steps.
    pub steps: Vec<Step>,
}

/// One operation on buffers. Every step runs once per buffer position of the stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
pub enum Step {
    /// `buf` = the next buffer of a source.
    Load {
        /// The buffer loaded.
        buf: String,
        /// Where it comes from.
        from: Source,
    },
    /// `buf` = zeros.
    Zero {
        /// The buffer cleared.
        buf: String,
    },
    /// IADD: `dst ^= src`.
    Iadd {
        /// Added to.
        dst: String,
        /// Added.
        src: String,
    },
    /// MULT: `dst = src * c` (`dst` may be `src`).
    Mult {
        /// The product.
        dst: String,
        /// The multiplied buffer.
        src: String,
        /// The scalar.
        c: u8,
    },
    /// MULADD: `dst ^= src * c`.
    Muladd {
        /// Added to.
        dst: String,
        /// Multiplied, then added.
        src: String,
        /// The scalar.
        c: u8,
    },
    /// WRITE: `buf`'s stream is stored as a chunk on this program's node.
    Write {
        /// The buffer whose every position is written.
        buf: String,
    },
    /// SEND: push `buf` into input `input` of program `to`.
    Send {
        /// The buffer sent.
        buf: String,
        /// The receiving program.
        to: String,
        /// The receiving program's input name.
        input: String,
    },
    /// OUTPUT: `buf` is this program's output stream, pulled by another program's LOAD or
    /// returned to whoever runs the plan.
    Output {
        /// The buffer streamed out.
        buf: String,
    },
}

impl Program {
    /// How many distinct buffers the program names (its memory is this many buffers).
    pub fn buffers(&self) -> usize {
        let mut names = BTreeSet::new();
        for step in &self.steps {
            match step {
                Step::Load { buf, .. } | Step::Zero { buf } => names.insert(buf.as_str()),
                Step::Mult { dst, .. } => names.insert(dst.as_str()),
                _ => false,
            };
        }
        names.len()
    }
}

/// Where a LOAD takes its buffers from.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Source {
    /// A chunk on this program's node, by id (hex).
    Chunk(String),
    /// The output of another program (pull).
    Program(String),
    /// A stream another program SENDs here (push), by input name.
    Input(String),
}

/// What [`Plan::check`] learned: the order to run the programs in and the stream length.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checked {
    /// Program names, each after every program it takes a stream from (ties by name).
    pub order: Vec<String>,
    /// Bytes in every stream of the plan.
    pub length: u64,
    /// Programs whose output no other program pulls: their streams go to the caller.
    pub results: Vec<String>,
}

fn bad(why: impl Into<String>) -> Error {
    Error::Program(why.into())
}

fn name_ok(kind: &str, name: &str) -> Result<()> {
    let fine = !name.is_empty()
        && name.len() <= MAX_NAME
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
    if fine {
        Ok(())
    } else {
        Err(bad(format!("bad {kind} name {name:?}: 1-{MAX_NAME} of A-Z a-z 0-9 _ - .")))
    }
}

impl Plan {
    /// Parses a plan from JSON.
    pub fn from_json(text: &[u8]) -> Result<Plan> {
        serde_json::from_slice(text).map_err(|e| bad(format!("not a plan: {e}")))
    }

    /// Checks the whole plan. `size(node, chunk)` gives the length of a chunk on a node, or
    /// `None` when the node does not hold it.
    pub fn check(&self, mut size: impl FnMut(&str, &str) -> Option<u64>) -> Result<Checked> {
        if self.v != PLAN_VERSION {
            return Err(bad(format!("plan version {} (this node reads {PLAN_VERSION})", self.v)));
        }
        if self.buffer == 0 || self.buffer > MAX_BUFFER {
            return Err(bad(format!("buffer of {} bytes (1 to {MAX_BUFFER})", self.buffer)));
        }
        if self.programs.is_empty() || self.programs.len() > MAX_PROGRAMS {
            return Err(bad(format!("{} programs (1 to {MAX_PROGRAMS})", self.programs.len())));
        }
        let mut length = None;
        let mut pulled: BTreeMap<&str, &str> = BTreeMap::new();
        let mut sends: BTreeMap<(&str, &str), &str> = BTreeMap::new();
        let mut edges: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for (name, p) in &self.programs {
            name_ok("program", name)?;
            self.check_program(name, p)?;
            for step in &p.steps {
                match step {
                    Step::Load { from: Source::Chunk(id), .. } => {
                        let n = size(&p.node, id)
                            .ok_or_else(|| bad(format!("{name}: no chunk {id} on node {}", p.node)))?;
                        if *length.get_or_insert(n) != n {
                            return Err(bad(format!(
                                "{name}: chunk {id} has {n} bytes, other inputs {}",
                                length.unwrap_or(0)
                            )));
                        }
                    }
                    Step::Load { from: Source::Program(src), .. } => {
                        let producer =
                            self.programs.get(src).ok_or_else(|| bad(format!("{name}: no program {src}")))?;
                        if !producer.steps.iter().any(|s| matches!(s, Step::Output { .. })) {
                            return Err(bad(format!("{name}: program {src} has no output")));
                        }
                        if let Some(other) = pulled.insert(src, name) {
                            return Err(bad(format!("the output of {src} is pulled by both {other} and {name}")));
                        }
                        edges.entry(src).or_default().insert(name);
                    }
                    Step::Send { to, input, .. } => {
                        let target = self.programs.get(to).ok_or_else(|| bad(format!("{name}: no program {to}")))?;
                        let loads = target
                            .steps
                            .iter()
                            .any(|s| matches!(s, Step::Load { from: Source::Input(i), .. } if i == input));
                        if !loads {
                            return Err(bad(format!("{name}: program {to} loads no input {input}")));
                        }
                        if let Some(other) = sends.insert((to, input), name) {
                            return Err(bad(format!("input {input} of {to} is sent by both {other} and {name}")));
                        }
                        edges.entry(name).or_default().insert(to);
                    }
                    _ => {}
                }
            }
        }
        for (name, p) in &self.programs {
            for step in &p.steps {
                if let Step::Load { from: Source::Input(input), .. } = step {
                    if !sends.contains_key(&(name.as_str(), input.as_str())) {
                        return Err(bad(format!("{name}: nothing sends input {input}")));
                    }
                }
            }
        }
        let length = length.ok_or_else(|| bad("no program loads a chunk: nothing to code"))?;
        let order = self.order(&edges)?;
        let results = self
            .programs
            .iter()
            .filter(|(name, p)| {
                !pulled.contains_key(name.as_str()) && p.steps.iter().any(|s| matches!(s, Step::Output { .. }))
            })
            .map(|(name, _)| name.clone())
            .collect();
        Ok(Checked { order, length, results })
    }

    /// One program on its own: limits, names, buffers defined before use.
    fn check_program(&self, name: &str, p: &Program) -> Result<()> {
        if p.steps.is_empty() || p.steps.len() > MAX_STEPS {
            return Err(bad(format!("{name}: {} steps (1 to {MAX_STEPS})", p.steps.len())));
        }
        if p.node.is_empty() || p.node.len() > MAX_NAME {
            return Err(bad(format!("{name}: bad node id {:?}", p.node)));
        }
        let mut defined: BTreeSet<&str> = BTreeSet::new();
        let mut inputs: BTreeSet<&str> = BTreeSet::new();
        let mut outputs = 0;
        let use_of = |defined: &BTreeSet<&str>, buf: &str| {
            if defined.contains(buf) {
                Ok(())
            } else {
                Err(bad(format!("{name}: buffer {buf:?} is used before any LOAD or ZERO gives it a value")))
            }
        };
        for step in &p.steps {
            match step {
                Step::Load { buf, from } => {
                    if let Source::Input(i) = from {
                        name_ok("input", i)?;
                        if !inputs.insert(i) {
                            return Err(bad(format!("{name}: input {i} is loaded twice")));
                        }
                    }
                    if let Source::Program(src) = from {
                        if src == name {
                            return Err(bad(format!("{name}: a program cannot load its own output")));
                        }
                    }
                    name_ok("buffer", buf)?;
                    defined.insert(buf);
                }
                Step::Zero { buf } => {
                    name_ok("buffer", buf)?;
                    defined.insert(buf);
                }
                Step::Iadd { dst, src } | Step::Muladd { dst, src, .. } => {
                    use_of(&defined, src)?;
                    use_of(&defined, dst)?;
                    if dst == src {
                        return Err(bad(format!("{name}: {dst} added to itself (use MULT)")));
                    }
                }
                Step::Mult { dst, src, .. } => {
                    use_of(&defined, src)?;
                    name_ok("buffer", dst)?;
                    defined.insert(dst);
                }
                Step::Write { buf } | Step::Send { buf, .. } => use_of(&defined, buf)?,
                Step::Output { buf } => {
                    use_of(&defined, buf)?;
                    outputs += 1;
                }
            }
            if defined.len() > MAX_BUFFERS {
                return Err(bad(format!("{name}: more than {MAX_BUFFERS} buffers")));
            }
        }
        if outputs > 1 {
            return Err(bad(format!("{name}: {outputs} OUTPUT steps (at most one)")));
        }
        Ok(())
    }

    /// A topological order of the programs along their streams, or the cycle's members.
    fn order(&self, edges: &BTreeMap<&str, BTreeSet<&str>>) -> Result<Vec<String>> {
        let mut incoming: BTreeMap<&str, usize> = self.programs.keys().map(|n| (n.as_str(), 0)).collect();
        for to in edges.values().flatten() {
            *incoming.get_mut(to).expect("edges join programs of the plan") += 1;
        }
        let mut ready: BTreeSet<&str> = incoming.iter().filter(|(_, n)| **n == 0).map(|(p, _)| *p).collect();
        let mut order = Vec::new();
        while let Some(p) = ready.pop_first() {
            order.push(p.to_string());
            for to in edges.get(p).into_iter().flatten() {
                let n = incoming.get_mut(to).expect("edges join programs of the plan");
                *n -= 1;
                if *n == 0 {
                    ready.insert(to);
                }
            }
        }
        if order.len() < self.programs.len() {
            let cycle: Vec<&str> = incoming.iter().filter(|(_, n)| **n > 0).map(|(p, _)| *p).collect();
            return Err(bad(format!("the streams form a cycle through {}", cycle.join(", "))));
        }
        Ok(order)
    }
}
