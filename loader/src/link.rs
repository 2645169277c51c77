//! Linking: each program gets the subprograms it calls appended after its own instructions
//! (transitively, once each, depth-first like libbpf's `bpf_object__reloc_code`), with call
//! and function-address immediates rewritten to `pc + 1 + imm = callee`.

use std::collections::HashMap;

use bpflab_vm::isa::{PseudoSrc, RawInsn};

use crate::code::Code;
use crate::error::LoadError;
use crate::reloc::{CallTargets, OP_LD_IMM64, Target, is_local_call};

/// Where one function landed in a linked program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Placement {
    /// ELF section index of the function.
    pub(crate) section: usize,
    /// Index into that code section's functions.
    pub(crate) func: usize,
    /// First slot in the linked program.
    pub(crate) base: usize,
}

/// One program with its subprograms appended.
#[derive(Debug)]
pub(crate) struct Linked {
    /// The instruction slots.
    pub(crate) slots: Vec<RawInsn>,
    /// The program first, then each appended subprogram in order.
    pub(crate) placements: Vec<Placement>,
}

/// A function being relocated: where it came from, where it is, and how far we got.
struct Frame {
    placement: Placement,
    start: usize,
    len: usize,
    next: usize,
}

/// Links the program `func` of code section `section`.
pub(crate) fn link(
    code: &Code,
    targets: &CallTargets,
    section: usize,
    func: usize,
) -> Result<Linked, LoadError> {
    let mut out = Linked { slots: Vec::new(), placements: Vec::new() };
    let mut placed: HashMap<(usize, usize), usize> = HashMap::new();
    let mut stack = vec![append(code, &mut out, &mut placed, section, func)?];

    while let Some(frame) = stack.last_mut() {
        let sec = frame.placement.section;
        let cs = code.get(sec).ok_or_else(|| internal(sec))?;
        let mut pushed = None;
        while frame.next < frame.len {
            let i = frame.next;
            let at = frame.start + i;
            let insn = cs.slots[at];
            frame.next += if insn.code == OP_LD_IMM64 { 2 } else { 1 };
            let target = match targets.get(&(sec, at)) {
                Some(t) => *t,
                None if is_local_call(insn) => {
                    // A call without a relocation is pc-relative within its own section.
                    let t = at as i64 + 1 + i64::from(insn.imm);
                    let slot = usize::try_from(t).ok().filter(|&s| cs.func_at(s).is_some());
                    let slot = slot.ok_or_else(|| LoadError::BadRelocation {
                        section: crate::error::SectionRef { index: sec, name: cs.name.clone() },
                        offset: at as u64 * 8,
                        reason: format!("pc-relative call to slot {t}, which starts no function"),
                    })?;
                    Target { section: sec, slot }
                }
                None => continue,
            };
            let callee_cs = code.get(target.section).ok_or_else(|| internal(target.section))?;
            let callee = callee_cs.func_at(target.slot).ok_or_else(|| internal(target.section))?;
            let here = frame.placement.base + i;
            let base = match placed.get(&(target.section, callee)) {
                Some(&base) => base,
                None => {
                    let f = append(code, &mut out, &mut placed, target.section, callee)?;
                    let base = f.placement.base;
                    pushed = Some(f);
                    base
                }
            };
            let imm = i32::try_from(base as i64 - here as i64 - 1).map_err(|_| {
                LoadError::BadRelocation {
                    section: crate::error::SectionRef { index: sec, name: cs.name.clone() },
                    offset: at as u64 * 8,
                    reason: "linked program too large for a 32-bit call offset".into(),
                }
            })?;
            out.slots[here].imm = imm;
            if insn.code == OP_LD_IMM64 {
                out.slots[here].src = PseudoSrc::Func.code();
            }
            if pushed.is_some() {
                break;
            }
        }
        match pushed {
            Some(f) => stack.push(f),
            None => {
                stack.pop();
            }
        }
    }
    Ok(out)
}

/// Appends function `func` of section `section` to the program.
fn append(
    code: &Code,
    out: &mut Linked,
    placed: &mut HashMap<(usize, usize), usize>,
    section: usize,
    func: usize,
) -> Result<Frame, LoadError> {
    let cs = code.get(section).ok_or_else(|| internal(section))?;
    let f = cs.funcs.get(func).ok_or_else(|| internal(section))?;
    let slots = cs.slots.get(f.start..f.start + f.len).ok_or_else(|| internal(section))?;
    let base = out.slots.len();
    if base + slots.len() > crate::MAX_PROGRAM_SLOTS {
        return Err(LoadError::TooLarge {
            what: format!("program linked with '{}' ({} slots)", f.name, base + slots.len()),
            limit: crate::MAX_PROGRAM_SLOTS as u64,
        });
    }
    out.slots.extend_from_slice(slots);
    let placement = Placement { section, func, base };
    out.placements.push(placement);
    placed.insert((section, func), base);
    Ok(Frame { placement, start: f.start, len: f.len, next: 0 })
}

/// An inconsistency between the code tables (a loader bug, reported instead of panicking).
fn internal(section: usize) -> LoadError {
    LoadError::BadRelocation {
        section: crate::error::SectionRef { index: section, name: String::new() },
        offset: 0,
        reason: "internal error: inconsistent code tables".into(),
    }
}
