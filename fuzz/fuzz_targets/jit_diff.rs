//! Arbitrary bytes as a program and its input memory, run on the interpreter and on the
//! checked JIT: both must agree on everything (r0, memory, fault pc and kind, instruction
//! count). The trusted JIT is not run: it is only for programs the kernel verifier accepts.
#![no_main]

use std::sync::OnceLock;

use bpflab_jit::oracle::{Case, Oracle, OracleError};
use bpflab_vm::interp::Config;
use bpflab_vm::isa::decode_bytes;
use bpflab_vm::{Collection, Program, RunInput, standard_helpers};
use libfuzzer_sys::fuzz_target;

fn oracle() -> &'static Oracle {
    static ORACLE: OnceLock<Oracle> = OnceLock::new();
    ORACLE.get_or_init(|| {
        let config = Config { insn_budget: 10_000, ..Config::default() };
        Oracle::new(config, standard_helpers()).expect("cranelift supports this host")
    })
}

fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(0, |&n| usize::from(n % 64) + 1).min(data.len());
    let (mem, code) = data.split_at(split);
    let Ok(insns) = decode_bytes(code) else { return };
    let collection =
        Collection { programs: vec![Program::raw("fuzz", insns)], ..Collection::default() };
    let case = Case::single(collection, RunInput::data(mem.to_vec()));
    match oracle().check(&case, false) {
        Ok(_) | Err(OracleError::Refused(_)) => {}
        Err(e) => panic!("{e}"),
    }
});
