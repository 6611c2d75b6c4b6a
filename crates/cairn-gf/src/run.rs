//! Running a checked plan: every program, buffer position by buffer position, in the order
//! [`Plan::check`] gave, so each stream's buffer i exists before its reader needs it and no
//! stream ever holds more than one buffer.
//!
//! The whole plan runs in one place, over an [`Io`] that reads chunk ranges and stores
//! results on whichever node each program names.

use std::collections::BTreeMap;

use crate::program::{Checked, Plan, Source, Step};
use crate::{Backend, Error, Result};

/// Where a plan's chunks are read and its WRITE results stored.
pub trait Io {
    /// Fills `buf` from `offset` of chunk `chunk` on node `node`.
    fn read(&mut self, node: &str, chunk: &str, offset: u64, buf: &mut [u8]) -> Result<()>;
    /// Stores `data`, the whole stream of one WRITE step, as a chunk on `node`; returns its id.
    fn store(&mut self, node: &str, data: Vec<u8>) -> Result<String>;
}

/// A chunk a WRITE step stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    /// The program whose step wrote it.
    pub program: String,
    /// The node it is stored on.
    pub node: String,
    /// The chunk's id, as [`Io::store`] gave it.
    pub chunk: String,
    /// Its length in bytes.
    pub length: u64,
}

/// What a plan produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Every WRITE, in program order then step order.
    pub written: Vec<Written>,
    /// The output streams no program pulled, by program.
    pub results: BTreeMap<String, Vec<u8>>,
}

/// One program's buffers and the streams its WRITE steps collect.
struct Machine {
    bufs: BTreeMap<String, Vec<u8>>,
    /// Per step index of a WRITE: the bytes written so far.
    writes: BTreeMap<usize, Vec<u8>>,
}

/// Where in the streams a position is, and the kernel that runs it.
#[derive(Clone, Copy)]
struct At {
    backend: Backend,
    offset: u64,
    len: usize,
}

/// Buffers between programs at the current position.
#[derive(Default)]
struct Streams {
    /// Pushed: (receiving program, input) -> buffer.
    pushed: BTreeMap<(String, String), Vec<u8>>,
    /// Pulled: producing program -> its output buffer.
    outputs: BTreeMap<String, Vec<u8>>,
}

/// Runs `plan` (already checked into `checked`) on `backend`, reading and storing through `io`.
pub fn run(plan: &Plan, checked: &Checked, backend: Backend, io: &mut impl Io) -> Result<Outcome> {
    let mut machines: BTreeMap<&str, Machine> = checked
        .order
        .iter()
        .map(|name| (name.as_str(), Machine { bufs: BTreeMap::new(), writes: BTreeMap::new() }))
        .collect();
    let mut outcome = Outcome::default();
    let mut offset = 0u64;
    while offset < checked.length {
        let len = (checked.length - offset).min(plan.buffer as u64) as usize;
        let mut streams = Streams::default();
        for name in &checked.order {
            let program = plan.programs.get(name).ok_or_else(|| Error::Program(format!("no program {name}")))?;
            let machine = machines.get_mut(name.as_str()).expect("a machine per program");
            let at = At { backend, offset, len };
            machine.position(name, program, at, io, &mut streams)?;
        }
        for (name, out) in streams.outputs {
            if checked.results.contains(&name) {
                outcome.results.entry(name).or_default().extend_from_slice(&out);
            }
        }
        offset += len as u64;
    }
    for name in &checked.order {
        let program = &plan.programs[name];
        let machine = machines.remove(name.as_str()).expect("a machine per program");
        for (_, data) in machine.writes {
            let length = data.len() as u64;
            let chunk = io.store(&program.node, data)?;
            outcome.written.push(Written { program: name.clone(), node: program.node.clone(), chunk, length });
        }
    }
    Ok(outcome)
}

impl Machine {
    /// Runs every step of `program` once, on the `len` bytes at `offset` of the streams.
    fn position(
        &mut self,
        name: &str,
        program: &crate::Program,
        at: At,
        io: &mut impl Io,
        streams: &mut Streams,
    ) -> Result<()> {
        let At { backend, offset, len } = at;
        let missing = |what: &str| Error::Program(format!("{name}: {what} has no buffer at offset {offset}"));
        for (index, step) in program.steps.iter().enumerate() {
            match step {
                Step::Load { buf, from } => {
                    let data = match from {
                        Source::Chunk(id) => {
                            let mut data = self.bufs.remove(buf).unwrap_or_default();
                            data.resize(len, 0);
                            io.read(&program.node, id, offset, &mut data)?;
                            data
                        }
                        Source::Program(src) => streams.outputs.remove(src).ok_or_else(|| missing(src))?,
                        Source::Input(input) => {
                            streams.pushed.remove(&(name.to_string(), input.clone())).ok_or_else(|| missing(input))?
                        }
                    };
                    if data.len() != len {
                        return Err(Error::Length { expected: len, found: data.len() });
                    }
                    self.bufs.insert(buf.clone(), data);
                }
                Step::Zero { buf } => {
                    let mut data = self.bufs.remove(buf).unwrap_or_default();
                    data.clear();
                    data.resize(len, 0);
                    self.bufs.insert(buf.clone(), data);
                }
                Step::Iadd { dst, src } => {
                    let mut d = self.take(dst)?;
                    backend.iadd(&mut d, self.get(src)?)?;
                    self.bufs.insert(dst.clone(), d);
                }
                Step::Muladd { dst, src, c } => {
                    let mut d = self.take(dst)?;
                    backend.muladd(&mut d, self.get(src)?, *c)?;
                    self.bufs.insert(dst.clone(), d);
                }
                Step::Mult { dst, src, c } if dst == src => {
                    let d = self.bufs.get_mut(dst).ok_or_else(|| missing(dst))?;
                    backend.scale(d, *c);
                }
                Step::Mult { dst, src, c } => {
                    let mut d = self.bufs.remove(dst).unwrap_or_default();
                    d.resize(len, 0);
                    backend.mult(&mut d, self.get(src)?, *c)?;
                    self.bufs.insert(dst.clone(), d);
                }
                Step::Write { buf } => {
                    let data = self.get(buf)?.to_vec();
                    self.writes.entry(index).or_default().extend_from_slice(&data);
                }
                Step::Send { buf, to, input } => {
                    let data = self.get(buf)?.to_vec();
                    streams.pushed.insert((to.clone(), input.clone()), data);
                }
                Step::Output { buf } => {
                    let data = self.get(buf)?.to_vec();
                    streams.outputs.insert(name.to_string(), data);
                }
            }
        }
        Ok(())
    }

    fn get(&self, buf: &str) -> Result<&[u8]> {
        self.bufs.get(buf).map(Vec::as_slice).ok_or_else(|| Error::Program(format!("buffer {buf} has no value")))
    }

    fn take(&mut self, buf: &str) -> Result<Vec<u8>> {
        self.bufs.remove(buf).ok_or_else(|| Error::Program(format!("buffer {buf} has no value")))
    }
}
