//! Arbitrary bytes as a program and its input memory: decoding, loading and running must
//! return a value or a typed error, never panic.
#![no_main]

use bpflab_vm::interp::Config;
use bpflab_vm::isa::decode_bytes;
use bpflab_vm::{Interpreter, Program, standard_helpers};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (mem, code) =
        data.split_at(data.first().map_or(0, |&n| usize::from(n % 64) + 1).min(data.len()));
    let Ok(insns) = decode_bytes(code) else { return };
    let config = Config { insn_budget: 10_000, ..Config::default() };
    let Ok(mut prepared) =
        Interpreter::new(config, standard_helpers()).prepare(&Program::raw("fuzz", insns))
    else {
        return;
    };
    let mut mem = mem.to_vec();
    let _ = prepared.run_raw(&mut mem);
});
