//! Arbitrary bytes as an ELF object: the loader returns a collection or a typed error, never
//! panics; whatever loads must also be accepted by the interpreter or refused with a typed
//! error, and run without panicking.
#![no_main]

use bpflab_loader::{LoadOptions, TargetBtf};
use bpflab_vm::engine::RunInput;
use bpflab_vm::interp::Config;
use bpflab_vm::{Interpreter, standard_helpers};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let opts = LoadOptions { target_btf: TargetBtf::None, ..LoadOptions::default() };
    let Ok(obj) = bpflab_loader::load(data, &opts) else { return };
    let config = Config { insn_budget: 10_000, ..Config::default() };
    let Ok(mut inst) = Interpreter::new(config, standard_helpers()).instantiate(&obj.collection)
    else {
        return;
    };
    for prog in 0..inst.program_count() {
        let _ = inst.run(prog, &RunInput::data(vec![0u8; 64]));
    }
});
