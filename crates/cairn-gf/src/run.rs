//! Running programs. A [`Machine`] runs one program a buffer position at a time: it is handed
//! the buffers its LOAD steps take (in step order), runs every step, and hands out what its
//! SEND and OUTPUT steps produce; it collects its WRITE streams until the end. A node running
//! its part of a plan drives one machine per program and moves the buffers over the network;
//! [`run`] drives all of a plan's machines in one place.

use std::collections::BTreeMap;

use crate::program::{Checked, Plan, Program, Source, Step};
use crate::{Backend, Error, Result};

/// Where [`run`] reads chunk ranges and stores WRITE streams.
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

/// A buffer a step hands out.
#[derive(Debug, PartialEq, Eq)]
pub enum Emit<'a> {
    /// SEND: into input `input` of program `to`.
    Send {
        /// The receiving program.
        to: &'a str,
        /// Its input.
        input: &'a str,
        /// The buffer.
        data: &'a [u8],
    },
    /// OUTPUT: this program's output buffer at this position.
    Output {
        /// The buffer.
        data: &'a [u8],
    },
}

/// One program's buffers and the streams its WRITE steps collect.
pub struct Machine<'a> {
    name: &'a str,
    program: &'a Program,
    bufs: BTreeMap<&'a str, Vec<u8>>,
    /// Per step index of a WRITE: the bytes written so far.
    writes: BTreeMap<usize, Vec<u8>>,
}

impl<'a> Machine<'a> {
    /// A machine for program `name` of a checked plan.
    pub fn new(name: &'a str, program: &'a Program) -> Machine<'a> {
        Machine { name, program, bufs: BTreeMap::new(), writes: BTreeMap::new() }
    }

    /// The sources of the program's LOAD steps, in step order: what [`Machine::position`]
    /// must be handed at every position.
    pub fn loads(&self) -> Vec<&'a Source> {
        self.program
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::Load { from, .. } => Some(from),
                _ => None,
            })
            .collect()
    }

    /// Runs every step once on buffers of `len` bytes: `loads` are the LOAD steps' buffers
    /// (in the order of [`Machine::loads`]), `emit` takes each SEND and OUTPUT.
    pub fn position(
        &mut self,
        backend: Backend,
        len: usize,
        loads: Vec<Vec<u8>>,
        emit: &mut dyn FnMut(Emit) -> Result<()>,
    ) -> Result<()> {
        let mut loads = loads.into_iter();
        for (index, step) in self.program.steps.iter().enumerate() {
            match step {
                Step::Load { buf, .. } => {
                    let data = loads.next().ok_or_else(|| self.bad("fewer buffers than LOAD steps"))?;
                    if data.len() != len {
                        return Err(Error::Length { expected: len, found: data.len() });
                    }
                    self.bufs.insert(buf, data);
                }
                Step::Zero { buf } => {
                    let mut data = self.bufs.remove(buf.as_str()).unwrap_or_default();
                    data.clear();
                    data.resize(len, 0);
                    self.bufs.insert(buf, data);
                }
                Step::Iadd { dst, src } => {
                    let mut d = self.take(dst)?;
                    backend.iadd(&mut d, self.get(src)?)?;
                    self.bufs.insert(dst, d);
                }
                Step::Muladd { dst, src, c } => {
                    let mut d = self.take(dst)?;
                    backend.muladd(&mut d, self.get(src)?, *c)?;
                    self.bufs.insert(dst, d);
                }
                Step::Mult { dst, src, c } if dst == src => {
                    let mut d = self.take(dst)?;
                    backend.scale(&mut d, *c);
                    self.bufs.insert(dst, d);
                }
                Step::Mult { dst, src, c } => {
                    let mut d = self.bufs.remove(dst.as_str()).unwrap_or_default();
                    d.resize(len, 0);
                    backend.mult(&mut d, self.get(src)?, *c)?;
                    self.bufs.insert(dst, d);
                }
                Step::Write { buf } => {
                    let data =
                        self.bufs.get(buf.as_str()).ok_or_else(|| self.bad(&format!("buffer {buf} has no value")))?;
                    self.writes.entry(index).or_default().extend_from_slice(data);
                }
                Step::Send { buf, to, input } => emit(Emit::Send { to, input, data: self.get(buf)? })?,
                Step::Output { buf } => emit(Emit::Output { data: self.get(buf)? })?,
            }
        }
        if loads.next().is_some() {
            return Err(self.bad("more buffers than LOAD steps"));
        }
        Ok(())
    }

    /// The streams the WRITE steps collected, in step order.
    pub fn finish(self) -> Vec<Vec<u8>> {
        self.writes.into_values().collect()
    }

    fn bad(&self, what: &str) -> Error {
        Error::Program(format!("{}: {what}", self.name))
    }

    fn get(&self, buf: &str) -> Result<&[u8]> {
        self.bufs.get(buf).map(Vec::as_slice).ok_or_else(|| self.bad(&format!("buffer {buf} has no value")))
    }

    fn take(&mut self, buf: &str) -> Result<Vec<u8>> {
        self.bufs.remove(buf).ok_or_else(|| self.bad(&format!("buffer {buf} has no value")))
    }
}

/// Runs `plan` (already checked into `checked`) in one place, position by position in the
/// checked order (so each stream's buffer exists before its reader needs it, and no stream
/// holds more than one buffer), on `backend`, reading and storing through `io`.
pub fn run(plan: &Plan, checked: &Checked, backend: Backend, io: &mut impl Io) -> Result<Outcome> {
    let mut machines = Vec::new();
    for name in &checked.order {
        let program = plan.programs.get(name).ok_or_else(|| Error::Program(format!("no program {name}")))?;
        machines.push(Machine::new(name, program));
    }
    let mut outcome = Outcome::default();
    let mut offset = 0u64;
    while offset < checked.length {
        let len = (checked.length - offset).min(plan.buffer as u64) as usize;
        // Buffers between programs at this position: pushed by (program, input), and outputs.
        let mut pushed: BTreeMap<(String, String), Vec<u8>> = BTreeMap::new();
        let mut outputs: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        for m in &mut machines {
            let missing = |what: &str| Error::Program(format!("{}: {what} has no buffer at offset {offset}", m.name));
            let mut loads = Vec::new();
            for from in m.loads() {
                loads.push(match from {
                    Source::Chunk(id) => {
                        let mut data = vec![0u8; len];
                        io.read(&m.program.node, id, offset, &mut data)?;
                        data
                    }
                    Source::Program(src) => outputs.remove(src).ok_or_else(|| missing(src))?,
                    Source::Input(input) => {
                        pushed.remove(&(m.name.to_string(), input.clone())).ok_or_else(|| missing(input))?
                    }
                });
            }
            let name = m.name;
            m.position(backend, len, loads, &mut |e| {
                match e {
                    Emit::Send { to, input, data } => pushed.insert((to.to_string(), input.to_string()), data.to_vec()),
                    Emit::Output { data } => outputs.insert(name.to_string(), data.to_vec()),
                };
                Ok(())
            })?;
        }
        for (name, out) in outputs {
            if checked.results.contains(&name) {
                outcome.results.entry(name).or_default().extend_from_slice(&out);
            }
        }
        offset += len as u64;
    }
    for m in machines {
        let (name, node) = (m.name.to_string(), m.program.node.clone());
        for data in m.finish() {
            let length = data.len() as u64;
            let chunk = io.store(&node, data)?;
            outcome.written.push(Written { program: name.clone(), node: node.clone(), chunk, length });
        }
    }
    Ok(outcome)
}
