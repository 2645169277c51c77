//! The verifier log in the kernel's format: instructions with register state (level 1 and 2),
//! `from X to Y` lines at popped branches, source lines from BTF line info, the error and the
//! stats line.

use std::fmt::Write as _;

use bpflab_vm::isa::Insn;
use bpflab_vm::{Collection, Program};

use crate::error::SourceLine;
use crate::state::{Reg, RegType, State};

/// The log being written and the source lines it quotes.
pub(crate) struct Log {
    /// The configured level (0, 1, 2).
    pub level: u8,
    /// The text so far.
    pub text: String,
    /// Source lines by slot where a line-info record starts, sorted by slot.
    lines: Vec<(usize, SourceLine)>,
    /// The slot of the last source line printed.
    last_line: Option<usize>,
}

impl Log {
    /// A log at `level` for `prog`, with line info resolved through the collection's BTF.
    pub(crate) fn new(level: u8, coll: &Collection, prog: &Program) -> Log {
        let mut lines = Vec::new();
        if let Some(btf) = coll.btf.as_deref().and_then(|b| bpflab_btf_strings(b))
            && !prog.line_info.is_empty()
        {
            for li in &prog.line_info {
                let file = btf.get(li.file_name_off).unwrap_or_default();
                let text = btf.get(li.line_off).unwrap_or_default();
                let file = file.rsplit('/').next().unwrap_or(&file).to_string();
                lines.push((
                    li.slot as usize,
                    SourceLine { file, line: li.line_col >> 10, text: text.trim_start().to_string() },
                ));
            }
            lines.sort_by_key(|l| l.0);
        }
        Log { level, text: String::new(), lines, last_line: None }
    }

    /// The source line covering `slot`.
    pub(crate) fn source_line(&self, slot: usize) -> Option<SourceLine> {
        let i = self.lines.partition_point(|(s, _)| *s <= slot);
        i.checked_sub(1).map(|i| self.lines[i].1.clone())
    }

    /// Logs a path pruned at `insn`.
    pub(crate) fn pruned(&mut self, insn: usize, level: u8) {
        if level >= 1 {
            let _ = writeln!(self.text, "{insn}: safe");
        }
    }

    /// Logs an instruction processed, with the registers it wrote (level 1) or the whole
    /// state (level 2).
    pub(crate) fn after_insn(&mut self, insn: usize, ins: &Insn, st: &State) {
        if self.level == 0 {
            return;
        }
        self.source(insn);
        let _ = write!(self.text, "{insn}: ({:02x}) {ins}", ins.encode().0.code);
        if self.level >= 2 {
            self.text.push_str(" ;");
            self.text.push_str(&fmt_frame_regs(st));
        }
        self.text.push('\n');
    }

    /// Logs the start of a queued branch.
    pub(crate) fn from_to(&mut self, from: usize, to: usize, st: &State) {
        if self.level == 0 {
            return;
        }
        let _ = writeln!(self.text, "from {from} to {to}:{}", fmt_frame_regs(st));
    }

    fn source(&mut self, insn: usize) {
        let i = self.lines.partition_point(|(s, _)| *s <= insn);
        if i == 0 || self.lines[i - 1].0 != insn || self.last_line == Some(insn) {
            return;
        }
        let l = &self.lines[i - 1].1;
        let _ = writeln!(self.text, "; {} @ {}:{}", l.text, l.file, l.line);
        self.last_line = Some(insn);
    }
}

/// The registers of the current frame in the kernel's ` R1=ctx() R10=fp0` form.
pub(crate) fn fmt_frame_regs(st: &State) -> String {
    let mut s = String::new();
    let f = st.cur();
    if f.frameno > 0 {
        let _ = write!(s, " frame{}:", f.frameno);
    }
    for (i, r) in f.regs.iter().enumerate() {
        if r.ty == RegType::NotInit {
            continue;
        }
        let _ = write!(s, " R{i}={}", fmt_reg(r, f.frameno));
    }
    s
}

/// One register in the kernel's log form (`scalar(umax=255,var_off=(0x0; 0xff))`, `fp-8`,
/// `map_value(map=counts,ks=4,vs=8)`, `pkt(off=14,r=14)`).
pub(crate) fn fmt_reg(r: &Reg, frameno: u8) -> String {
    match r.ty {
        RegType::NotInit => "?".into(),
        RegType::Scalar => {
            let p = if r.precise { "P" } else { "" };
            match r.var.const_value() {
                Some(v) => format!("{p}{}", v as i64),
                None => {
                    let mut s = format!("{p}scalar(");
                    if r.id != 0 {
                        let _ = write!(s, "id={},", r.id);
                    }
                    s.push_str(&r.var.fmt_kernel());
                    s.push(')');
                    s
                }
            }
        }
        RegType::Ptr(k) => {
            let mut s = r.type_name();
            if k == crate::state::PtrKind::Stack {
                if r.frameno != frameno {
                    let _ = write!(s, "[{}]", r.frameno);
                }
                if let Some(v) = r.var.const_value() {
                    let _ = write!(s, "{}", (v as i64).wrapping_add(i64::from(r.off)));
                    return s;
                }
            }
            let mut parts: Vec<String> = Vec::new();
            if r.id != 0 {
                parts.push(format!("id={}", r.id));
            }
            if r.ref_obj_id != 0 {
                parts.push(format!("ref_obj_id={}", r.ref_obj_id));
            }
            if r.off != 0 {
                parts.push(format!("off={}", r.off));
            }
            if k.is_pkt() {
                parts.push(format!("r={}", r.range));
            }
            if k == crate::state::PtrKind::Mem {
                parts.push(format!("sz={}", r.mem_size));
            }
            if r.var.const_value().is_none() {
                parts.push(r.var.fmt_kernel());
            }
            let _ = write!(s, "({})", parts.join(","));
            s
        }
    }
}

/// A BTF string table reader over the object's raw BTF bytes.
struct Strings {
    data: Vec<u8>,
}

impl Strings {
    fn get(&self, off: u32) -> Option<String> {
        let rest = self.data.get(off as usize..)?;
        let end = rest.iter().position(|&b| b == 0)?;
        Some(String::from_utf8_lossy(&rest[..end]).into_owned())
    }
}

/// The string section of raw BTF bytes (header: magic, version, flags, hdr_len, type_off,
/// type_len, str_off, str_len).
fn bpflab_btf_strings(btf: &[u8]) -> Option<Strings> {
    let u32_at = |o: usize| btf.get(o..o + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    if btf.get(0..2)? != [0x9f, 0xeb] {
        return None;
    }
    let hdr_len = u32_at(4)? as usize;
    let str_off = u32_at(16)? as usize;
    let str_len = u32_at(20)? as usize;
    let start = hdr_len.checked_add(str_off)?;
    let data = btf.get(start..start.checked_add(str_len)?)?.to_vec();
    Some(Strings { data })
}
