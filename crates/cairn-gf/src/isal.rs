//! ISA-L, linked when the `isal` feature is on (Debian `libisal-dev`): the reference the
//! tests hold cairn's generator and parity to, and the baseline `cairn bench --gf` prints.

use crate::{Error, Result};

#[link(name = "isal")]
extern "C" {
    fn gf_gen_cauchy1_matrix(a: *mut u8, m: i32, k: i32);
    fn ec_init_tables(k: i32, rows: i32, a: *mut u8, gftbls: *mut u8);
    fn ec_encode_data(len: i32, k: i32, rows: i32, gftbls: *mut u8, data: *mut *mut u8, coding: *mut *mut u8);
}

/// ISA-L's Cauchy generator for `data` + `parity` shards: (data + parity) x data, row-major.
pub fn cauchy_matrix(data: usize, parity: usize) -> Vec<u8> {
    let rows = data + parity;
    let mut a = vec![0u8; rows * data];
    // SAFETY: `a` holds rows x data bytes, as the function writes.
    unsafe { gf_gen_cauchy1_matrix(a.as_mut_ptr(), rows as i32, data as i32) };
    a
}

/// ISA-L's encoder for one code, its tables built once.
pub struct IsalCode {
    data: usize,
    parity: usize,
    tables: Vec<u8>,
}

impl IsalCode {
    /// The encoder of the Cauchy code with `data` + `parity` shards (at most 255 in all).
    pub fn new(data: usize, parity: usize) -> Result<IsalCode> {
        if data == 0 || parity == 0 || data + parity > 255 {
            return Err(Error::Code { data, parity });
        }
        let mut a = cauchy_matrix(data, parity);
        let mut tables = vec![0u8; 32 * data * parity];
        // SAFETY: the parity rows start at data x data; `tables` holds 32 x data x parity bytes.
        unsafe { ec_init_tables(data as i32, parity as i32, a.as_mut_ptr().add(data * data), tables.as_mut_ptr()) };
        Ok(IsalCode { data, parity, tables })
    }

    /// The parity shards of `data` (all buffers of one length).
    pub fn encode(&mut self, data: &[&[u8]], parity: &mut [&mut [u8]]) -> Result<()> {
        if data.len() != self.data || parity.len() != self.parity {
            return Err(Error::Shape { what: "K data and M parity buffers" });
        }
        let len = data[0].len();
        if let Some(n) = data.iter().map(|d| d.len()).chain(parity.iter().map(|p| p.len())).find(|&n| n != len) {
            return Err(Error::Length { expected: len, found: n });
        }
        let len = i32::try_from(len).map_err(|_| Error::Length { expected: i32::MAX as usize, found: len })?;
        let mut ins: Vec<*mut u8> = data.iter().map(|d| d.as_ptr() as *mut u8).collect();
        let mut outs: Vec<*mut u8> = parity.iter_mut().map(|p| p.as_mut_ptr()).collect();
        // SAFETY: every pointer covers `len` bytes; ISA-L only reads the data buffers.
        unsafe {
            ec_encode_data(
                len,
                self.data as i32,
                self.parity as i32,
                self.tables.as_mut_ptr(),
                ins.as_mut_ptr(),
                outs.as_mut_ptr(),
            )
        };
        Ok(())
    }
}
