//! `bpflab disasm` and `bpflab asm`.

use std::path::Path;

use bpflab::input::{read_asm, read_bytecode, to_hex};
use bpflab_vm::isa::{Insn, encode_bytes};
use serde_json::json;

use super::{CmdResult, emit};

/// Slot index of every instruction (LD_IMM64 takes two).
fn with_slots(insns: &[Insn]) -> impl Iterator<Item = (usize, &Insn)> {
    insns.iter().scan(0usize, |slot, insn| {
        let at = *slot;
        *slot += insn.slots();
        Some((at, insn))
    })
}

/// Prints an object's programs, or a bytecode file, as assembly.
pub(crate) fn disasm(
    file: &Path,
    prog: Option<&str>,
    json: bool,
    jited: bool,
    load: &super::LoadArgs,
) -> CmdResult {
    if jited {
        return super::object::disasm_jited(file, prog, load);
    }
    if super::object::is_elf(file) {
        return super::object::disasm_object(file, prog, json, load);
    }
    if prog.is_some() {
        return Err(format!(
            "{}: --prog needs an object file; this is raw bytecode",
            file.display()
        )
        .into());
    }
    let insns = read_bytecode(file)?;
    if json {
        let rows: Vec<_> = with_slots(&insns)
            .map(|(slot, insn)| {
                json!({ "slot": slot, "bytes": to_hex(&encode_bytes(&[*insn])), "text": insn.to_string() })
            })
            .collect();
        emit(&(serde_json::to_string_pretty(&rows)? + "\n"))?;
    } else {
        emit(&bpflab_vm::asm::disassemble(&insns))?;
    }
    Ok(())
}

/// Assembles a text file into bytecode.
pub(crate) fn asm(file: &Path, output: Option<&Path>, json: bool) -> CmdResult {
    let insns = read_asm(file)?;
    let bytes = encode_bytes(&insns);
    if let Some(out) = output {
        std::fs::write(out, &bytes).map_err(|e| format!("{}: {e}", out.display()))?;
    }
    if json {
        let doc = json!({ "slots": bytes.len() / 8, "bytecode": to_hex(&bytes) });
        emit(&(serde_json::to_string_pretty(&doc)? + "\n"))?;
    } else if output.is_none() {
        let lines: String = bytes.chunks(8).map(|c| to_hex(c) + "\n").collect();
        emit(&lines)?;
    }
    Ok(())
}
