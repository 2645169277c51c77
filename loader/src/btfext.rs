//! `.BTF.ext` line and function info, rebased from section byte offsets onto the slots of
//! each linked program (subprograms included).

use bpflab_btf::{Btf, BtfExt};

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

/// Line info and function info for one linked program.
pub(crate) fn program_info(
    code: &Code,
    btf: &Btf,
    ext: &BtfExt,
    placements: &[Placement],
) -> (LineTable, FuncTable) {
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
        for rec in ext.line_info_for(&cs.name) {
            if let Some(slot) = rebase(rec.insn_off) {
                let line = SourceLine {
                    file: rec.file_name.clone(),
                    line: rec.line,
                    col: rec.col,
                    text: rec.line_text.clone(),
                };
                lines.push((slot, line));
            }
        }
        for rec in ext.func_info_for(&cs.name) {
            if let Some(slot) = rebase(rec.insn_off) {
                let name = btf.type_name(rec.type_id).unwrap_or_default().to_owned();
                funcs.push((slot, name));
            }
        }
    }
    lines.sort_by_key(|(slot, _)| *slot);
    funcs.sort_by_key(|(slot, _)| *slot);
    (lines, funcs)
}
