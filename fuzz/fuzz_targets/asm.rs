//! Arbitrary text into the assembler: an instruction list or a typed error, never a panic;
//! whatever assembles must print and assemble back to itself.
#![no_main]

use bpflab_vm::asm::{assemble, disassemble};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(insns) = assemble(&text) {
        let again = assemble(&disassemble(&insns)).expect("disassembly must assemble");
        assert_eq!(again, insns);
    }
});
