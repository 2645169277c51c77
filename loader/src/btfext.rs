//! `.BTF.ext` line and function info, rebased from section byte offsets onto the slots of
//! each linked program (subprograms included): as text for display, and as the kernel's
//! `bpf_func_info` / `bpf_line_info` records `BPF_PROG_LOAD` takes (libbpf's
//! `adjust_prog_btf_ext_info`).

use std::collections::HashMap;

use bpflab_btf::{Btf, BtfExt};
use bpflab_vm::engine::KernelLineInfo;

use crate::code::Code;
use crate::link::Placement;

/// One source line, as `.BTF.ext` line info gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceLine {
    /// The source file.
    pub file: String,
    /// Line number (1-based).
    pub line: u32,
    /// Column (1-based, 0 when unknown).
    pub col: u32,
    /// The line's text.
    pub text: String,
}

/// Source lines by slot of a linked program.
pub type LineTable = Vec<(usize, SourceLine)>;
/// Function names by first slot in a linked program.
pub type FuncTable = Vec<(usize, String)>;

/// Line and function info of one linked program, for display and for the kernel.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ProgramBtfInfo {
    /// Source lines by slot.
    pub(crate) lines: LineTable,
    /// Function names by first slot.
    pub(crate) funcs: FuncTable,
    /// `bpf_func_info` records: (slot, FUNC type id), by slot.
    pub(crate) kernel_funcs: Vec<(u32, u32)>,
    /// `bpf_line_info` records, by slot.
    pub(crate) kernel_lines: Vec<KernelLineInfo>,
}

/// The string offsets (file name, line text) of each `.BTF.ext` line record, per ELF section
/// name and in record order: what [`BtfExt`] resolves to text, kept for the kernel's records.
pub(crate) type LineStrings = HashMap<String, Vec<(u32, u32)>>;

fn le32(data: &[u8], at: usize) -> Option<u32> {
    let b = data.get(at..)?.get(..4)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Reads the string offsets of the line records of `.BTF.ext` (`data`, already parsed against
/// `btf` by [`BtfExt::parse`]). Where the first block of a section cannot be read, that section
/// is left out (its programs get no kernel line info).
pub(crate) fn line_strings(data: &[u8], btf: &Btf) -> LineStrings {
    let mut out = LineStrings::new();
    let (Some(hdr_len), Some(off), Some(len)) = (le32(data, 4), le32(data, 16), le32(data, 20))
    else {
        return out;
    };
    let start = hdr_len as usize + off as usize;
    let end = start + len as usize;
    if len < 4 || end > data.len() {
        return out;
    }
    let Some(rec_size) = le32(data, start).map(|r| r as usize).filter(|&r| r >= 16) else {
        return out;
    };
    let mut pos = start + 4;
    while pos + 8 <= end {
        let (Some(name_off), Some(num)) = (le32(data, pos), le32(data, pos + 4)) else { break };
        let total = 8 + num as usize * rec_size;
        if num == 0 || total > end - pos {
            break;
        }
        let records = (0..num as usize)
            .map(|i| {
                let at = pos + 8 + i * rec_size;
                (le32(data, at + 4).unwrap_or(0), le32(data, at + 8).unwrap_or(0))
            })
            .collect();
        if let Ok(name) = btf.string_at(name_off) {
            out.entry(name.to_owned()).or_insert(records);
        }
        pos += total;
    }
    out
}

/// Line info and function info for one linked program.
pub(crate) fn program_info(
    code: &Code,
    btf: &Btf,
    ext: &BtfExt,
    strings: &LineStrings,
    placements: &[Placement],
) -> ProgramBtfInfo {
    let mut lines = Vec::new();
    let mut funcs = Vec::new();
    for p in placements {
        let Some(cs) = code.get(p.section) else { continue };
        let Some(f) = cs.funcs.get(p.func) else { continue };
        let rebase = |insn_off: u32| {
            let slot = (insn_off / 8) as usize;
            (insn_off.is_multiple_of(8) && slot >= f.start && slot < f.start + f.len)
                .then(|| p.base + slot - f.start)
        };
        let raw = strings.get(&cs.name);
        for (i, rec) in ext.line_info_for(&cs.name).iter().enumerate() {
            if let Some(slot) = rebase(rec.insn_off) {
                let line = SourceLine {
                    file: rec.file_name.clone(),
                    line: rec.line,
                    col: rec.col,
                    text: rec.line_text.clone(),
                };
                let kernel =
                    raw.and_then(|r| r.get(i)).map(|&(file_name_off, line_off)| KernelLineInfo {
                        slot: slot as u32,
                        file_name_off,
                        line_off,
                        line_col: (rec.line << 10) | rec.col,
                    });
                lines.push((slot, line, kernel));
            }
        }
        for rec in ext.func_info_for(&cs.name) {
            if let Some(slot) = rebase(rec.insn_off) {
                let name = btf.type_name(rec.type_id).unwrap_or_default().to_owned();
                funcs.push((slot, name, rec.type_id));
            }
        }
    }
    lines.sort_by_key(|(slot, ..)| *slot);
    funcs.sort_by_key(|(slot, ..)| *slot);
    ProgramBtfInfo {
        kernel_funcs: funcs.iter().map(|&(slot, _, id)| (slot as u32, id)).collect(),
        kernel_lines: lines.iter().filter_map(|(.., k)| *k).collect(),
        lines: lines.into_iter().map(|(slot, line, _)| (slot, line)).collect(),
        funcs: funcs.into_iter().map(|(slot, name, _)| (slot, name)).collect(),
    }
}
