//! The verifier log in the running (6.18) kernel's format.
//!
//! What the kernel prints, and so what this log prints:
//! - every processed instruction as `N: (code) <insn>` in the syntax of the kernel's
//!   `print_bpf_insn` (`call bpf_map_lookup_elem#1`, `if r1 > 0x5 goto pc+3`,
//!   `*(u32 *)(r10 -4) = r1`);
//! - after it, the registers and stack slots the instruction touched ("scratched"), on the
//!   same line after `;` aligned as the kernel aligns it, or on a line of their own starting
//!   `N:` when something was printed in between; the whole frame after a path starts.
//!   Registers in `print_reg_state`'s form (`P` precision, ids, `ref_obj_id`, `map=,ks=,vs=`,
//!   `off=`, `r=`, `sz=`, `imm=`, scalar ranges, `frameN:`, `fp-8=mmmm????`, spilled
//!   registers, `dynptr_<type>(...)`, `iter_<name>(...)`, `refs=`); the slots a helper or
//!   kfunc call wrote are those it changed (the kernel marks the slots it writes) plus its
//!   dynptr and iterator arguments;
//! - before the first instruction, what the kernel's check of the main function's BTF
//!   signature says (`Global function f() doesn't return scalar. Only those are supported.`,
//!   `arg#0 reference type('UNKNOWN ') size cannot be determined: -22`);
//! - source lines `; <text> @ <file>:<line>` from BTF line info before the first instruction
//!   of each line (a line repeated by the next record is not printed again);
//! - `N: safe` for pruned paths; `caller:`/`callee:` and `returning from callee:`/`to caller
//!   at N:` around bpf-to-bpf calls;
//! - at level 1 only the current path: when a path ends, the log goes back to where its
//!   branch was queued, and an accepted program's log is empty before the statistics (the
//!   kernel's `pop_log`); at level 2 every path, with `func#N @S` lines, the `Live regs
//!   before insn:` table (with the loop number of instructions in loops) and `from X to Y:`
//!   lines with the whole state where a path starts;
//! - the error (after an infinite loop, `cur state:` and `old state:`), then `verification time N usec` and `stack depth A+B` with the stats bit
//!   ([`STATS`], the kernel's `BPF_LOG_STATS`), then `processed N insns (limit 1000000)
//!   max_states_per_insn M total_states T peak_states P mark_read 0`.
//!
//! Documented differences from the kernel's text:
//! - map loads: the kernel prints the map's kernel address (`r1 = 0xffff888101b6e000`) or
//!   `0x0` unprivileged; bpflab has no map addresses and prints `r1 = map[NAME]` (and
//!   `map[NAME]+OFF` for a global variable's address), `map[fd:N]` for raw descriptors;
//! - bpflab tracks no precision chains, so level 2 has no `mark_precise:` lines and no `P`
//!   marks on scalars, and a state the kernel prints on its own line after such lines is on
//!   the instruction's line; nor the 6.18 stack-liveness and loop lines at level 2 (`(0)
//!   frame 0 insn 3 +live -8`, `SCC enter (1)`);
//! - `old state:` after an infinite loop: bpflab's stored states have their dead registers
//!   cleared when stored, the kernel's only once explored, so it may show fewer registers;
//! - beyond the kernel, after an error: `at FILE:LINE: <text>` (the error's C source line)
//!   and `path: FILE:LINE (taken) -> FILE:LINE (not taken) ...`, the last [`PATH_SHOWN`]
//!   branch decisions of the path that led there (conditional jumps where both sides were
//!   explored; repeats folded as `xN`; `insn N` without line info); `bpflab: unsupported: <feature>` ends the
//!   log of a program bpflab cannot decide; at level 0 the log is these lines and the
//!   statistics.
//!
//! Cost: at level 0 nothing is formatted; the only work per instruction is one push per
//! forked branch for the path. The log is bounded by [`LOG_CAP`]: past it the oldest lines
//! are dropped (the kernel's rotating log also keeps the tail).

use std::fmt::Write as _;

use bpflab_vm::isa::{Insn, RawInsn};
use bpflab_vm::{Collection, Program};

use crate::cfg::Cfg;
use crate::error::{SourceLine, Verdict};
use crate::report::Stats;
use crate::state::{ByteKind, FP, Frame, NREGS, PtrKind, Reg, RegType, SLOT, State};

/// `log_level` bit: the kernel's level 1 (instructions, states, the failing path).
pub(crate) const LEVEL1: u8 = 1;
/// `log_level` bit: the kernel's level 2 (every path, `from X to Y` states).
pub(crate) const LEVEL2: u8 = 2;
/// `log_level` bit: `BPF_LOG_STATS` (`verification time` and `stack depth` lines).
pub(crate) const STATS: u8 = 4;
/// The most bytes of log kept; older lines are dropped beyond it.
pub(crate) const LOG_CAP: usize = 16 << 20;
/// Branch decisions printed on the `path:` line after an error.
pub(crate) const PATH_SHOWN: usize = 12;

/// A position in the log and the path, taken when a branch is queued and restored when the
/// branch is explored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Mark {
    pos: usize,
    hist: usize,
}

/// One line-info record, resolved.
struct LineRec {
    slot: usize,
    file_off: u32,
    src: SourceLine,
}

/// A map as the kernel names it in register states.
struct MapName {
    name: String,
    key_size: u32,
    value_size: u32,
}

/// The log being written and what it needs to name things.
pub(crate) struct Log {
    /// The configured level: [`LEVEL1`], [`LEVEL2`] and [`STATS`] bits, as the kernel's.
    pub level: u8,
    /// The text kept (at most about [`LOG_CAP`] bytes: the tail).
    pub text: String,
    /// Absolute position of `text[0]` (bytes dropped before it).
    start: usize,
    /// The most bytes kept ([`LOG_CAP`]).
    cap: usize,
    lines: Vec<LineRec>,
    prev_linfo: Option<usize>,
    maps: Vec<MapName>,
    kfuncs: Vec<(i32, String)>,
    /// Per slot: a conditional jump.
    cond_jump: Vec<bool>,
    scratch_regs: u16,
    scratch_stack: u64,
    prev_log_pos: usize,
    prev_insn_print_pos: usize,
    /// A path just started (`from`, `to`): the kernel's `do_print_state`.
    from: Option<(usize, usize)>,
    /// The frame returning at a subprogram's exit, to print after the return.
    callee: Option<Frame>,
    /// Branch decisions along the current path: (branch slot, taken).
    history: Vec<(u32, bool)>,
    /// A branch was queued by the instruction being processed.
    forked: bool,
    /// The current frame's stack before a helper or kfunc call, to find the slots it wrote.
    pre_call_stack: Vec<crate::state::StackSlot>,
    /// What the kernel says about the main function's BTF signature before the walk.
    func_note: Option<String>,
    /// Lines the kernel prints after the error (`cur state:` / `old state:` of a loop).
    after_error: String,
    /// Subprograms listed before a CFG error (for `stack depth`).
    cfg_error_subprogs: usize,
}

impl Log {
    /// A log at `level` for `prog`, with line info resolved through the collection's BTF.
    pub(crate) fn new(level: u8, coll: &Collection, prog: &Program) -> Log {
        let mut lines = Vec::new();
        if let Some(btf) = coll.btf.as_deref().and_then(btf_strings)
            && !prog.line_info.is_empty()
        {
            for li in &prog.line_info {
                let file = btf.get(li.file_name_off).unwrap_or_default();
                let text = btf.get(li.line_off).unwrap_or_default();
                let file = file.rsplit('/').next().unwrap_or(&file).to_string();
                lines.push(LineRec {
                    slot: li.slot as usize,
                    file_off: li.file_name_off,
                    src: SourceLine {
                        file,
                        line: li.line_col >> 10,
                        text: text.trim_start().to_string(),
                    },
                });
            }
            lines.sort_by_key(|l| l.slot);
        }
        let maps = coll
            .maps
            .iter()
            .map(|m| MapName {
                name: kernel_obj_name(&m.name),
                key_size: m.key_size,
                value_size: m.value_size,
            })
            // Inner map templates (`inner_map_meta`, which has no name) after the maps.
            .chain(crate::check::inner_templates(coll).map(|m| MapName {
                name: String::new(),
                key_size: m.key_size,
                value_size: m.value_size,
            }))
            .collect();
        let kfuncs = coll.kfuncs.iter().map(|k| (k.btf_id as i32, k.name.clone())).collect();
        let func_note =
            if level & (LEVEL1 | LEVEL2) != 0 { main_func_note(coll, prog) } else { None };
        let mut cond_jump = vec![false; prog.slot_count()];
        let mut slot = 0;
        for ins in &prog.insns {
            if matches!(ins, Insn::Jump { .. }) {
                cond_jump[slot] = true;
            }
            slot += ins.slots();
        }
        Log {
            level,
            text: String::new(),
            start: 0,
            cap: LOG_CAP,
            lines,
            prev_linfo: None,
            maps,
            kfuncs,
            cond_jump,
            // The entry state is printed in full before the first instruction.
            scratch_regs: u16::MAX,
            scratch_stack: u64::MAX,
            prev_log_pos: 0,
            prev_insn_print_pos: 0,
            from: None,
            callee: None,
            history: Vec::new(),
            forked: false,
            pre_call_stack: Vec::new(),
            func_note,
            after_error: String::new(),
            cfg_error_subprogs: 0,
        }
    }

    fn on(&self) -> bool {
        self.level & (LEVEL1 | LEVEL2) != 0
    }

    fn level2(&self) -> bool {
        self.level & LEVEL2 != 0
    }

    /// The absolute position of the log's end.
    fn end(&self) -> usize {
        self.start + self.text.len()
    }

    /// Goes back to absolute position `pos` (the kernel's `bpf_vlog_reset`).
    fn reset(&mut self, pos: usize) {
        if pos < self.start {
            self.text.clear();
            self.start = pos;
            return;
        }
        let mut at = (pos - self.start).min(self.text.len());
        while !self.text.is_char_boundary(at) {
            at -= 1;
        }
        self.text.truncate(at);
    }

    /// Drops the oldest lines once the text passes [`LOG_CAP`].
    fn bound(&mut self) {
        if self.text.len() <= self.cap {
            return;
        }
        let cut = self.text.len() - self.cap / 2;
        let at = self.text[cut..].find('\n').map_or(self.text.len(), |i| cut + i + 1);
        self.text.drain(..at);
        self.start += at;
    }

    /// The line-info record covering `slot`.
    fn linfo(&self, slot: usize) -> Option<usize> {
        self.lines.partition_point(|l| l.slot <= slot).checked_sub(1)
    }

    /// The source line covering `slot`.
    pub(crate) fn source_line(&self, slot: usize) -> Option<SourceLine> {
        self.linfo(slot).map(|i| self.lines[i].src.clone())
    }

    /// What the kernel prints before the walk: at level 2 `func#N @START` per subprogram and
    /// the `Live regs before insn:` table of the static liveness; then what its check of the
    /// main function's BTF signature says (`Global function f() doesn't return scalar. ...`).
    pub(crate) fn header(&mut self, cfg: &Cfg, prog: &Program) {
        if self.level2() {
            self.liveness_table(cfg, prog);
        }
        if self.on()
            && let Some(note) = &self.func_note
        {
            self.text.push_str(note);
            self.text.push('\n');
        }
    }

    fn liveness_table(&mut self, cfg: &Cfg, prog: &Program) {
        for (i, s) in cfg.subprogs.iter().enumerate() {
            let _ = writeln!(self.text, "func#{i} @{}", s.start);
        }
        self.text.push_str("Live regs before insn:\n");
        let scc = scc_ids(prog, &cfg.force_checkpoint, &self.kfuncs);
        let mut slot = 0;
        for ins in &prog.insns {
            let live = cfg.live_in.get(slot).copied().unwrap_or(0);
            let regs: String = (0..FP)
                .map(|r| if live & (1 << r) != 0 { char::from(b'0' + r as u8) } else { '.' })
                .collect();
            match scc.get(slot).copied().unwrap_or(0) {
                0 => self.text.push_str("    "),
                id => {
                    let _ = write!(self.text, "{id:>3} ");
                }
            }
            let _ = write!(self.text, "{slot:>3}: {regs} ");
            self.write_insn(ins);
            self.text.push('\n');
            slot += ins.slots();
        }
        self.bound();
    }

    /// Takes the position a branch queued now goes back to (the kernel's `push_stack`).
    pub(crate) fn mark(&mut self) -> Mark {
        self.forked = true;
        Mark { pos: self.end(), hist: self.history.len() }
    }

    /// Starts exploring a queued branch from `prev` to `insn`: the log and the path go back
    /// to `mark` (the log only at level 1) and the next instruction shows the whole state.
    pub(crate) fn resume(&mut self, mark: Mark, prev: usize, insn: usize) {
        self.history.truncate(mark.hist);
        if self.cond_jump.get(prev).copied().unwrap_or(false) {
            self.history.push((prev as u32, insn != prev + 1));
        }
        if !self.on() {
            return;
        }
        self.scratch_regs = u16::MAX;
        self.scratch_stack = u64::MAX;
        if !self.level2() {
            self.reset(mark.pos);
        }
        self.from = Some((prev, insn));
    }

    /// Logs a path pruned at `insn`.
    pub(crate) fn pruned(&mut self, insn: usize) {
        if !self.on() {
            return;
        }
        match self.from {
            Some((prev, _)) => {
                let _ = writeln!(self.text, "\nfrom {prev} to {insn}: safe");
            }
            None => {
                let _ = writeln!(self.text, "{insn}: safe");
            }
        }
        self.scratch_regs = u16::MAX;
        self.scratch_stack = u64::MAX;
    }

    /// Logs the start of instruction `insn` about to be processed in state `st`: the state
    /// the previous one left (its scratched registers), the source line, the instruction.
    pub(crate) fn before_insn(&mut self, insn: usize, ins: &Insn, st: &State) {
        if !self.on() {
            return;
        }
        let f = st.cur();
        if self.level2()
            && let Some((prev, to)) = self.from.take()
        {
            let _ = write!(self.text, "\nfrom {prev} to {to}:");
            self.write_state(f, st, true);
        }
        if self.scratch_regs != 0 || self.scratch_stack != 0 {
            if self.prev_log_pos != 0 && self.prev_log_pos == self.end() {
                self.reset(self.prev_log_pos - 1);
                let width = vlog_alignment(self.prev_insn_print_pos);
                let _ = write!(self.text, "{:width$};", ' ');
            } else {
                let _ = write!(self.text, "{insn}:");
            }
            self.write_state(f, st, false);
        }
        if let Some(i) = self.linfo(insn)
            && self.prev_linfo != Some(i)
        {
            let same = self.prev_linfo.is_some_and(|p| {
                self.lines[p].file_off == self.lines[i].file_off
                    && self.lines[p].src.line == self.lines[i].src.line
            });
            if !same {
                let l = &self.lines[i].src;
                let _ = writeln!(self.text, "; {} @ {}:{}", l.text, l.file, l.line);
                self.prev_linfo = Some(i);
            }
        }
        let pos = self.end();
        let _ = write!(self.text, "{insn}: ");
        self.write_insn(ins);
        self.text.push('\n');
        self.prev_insn_print_pos = self.end() - pos;
        self.prev_log_pos = self.end();
        self.bound();
        self.scratch_before(ins, st);
        if matches!(ins, Insn::Exit) && st.frames.len() > 1 {
            self.callee = Some(st.cur().clone());
        }
        if matches!(ins, Insn::Call { kind, .. } if *kind != bpflab_vm::isa::CallKind::Local) {
            self.pre_call_stack.clear();
            self.pre_call_stack.extend_from_slice(&st.cur().stack);
            // Dynptr and iterator arguments on the stack: the kernel marks their slots read.
            let f = st.cur();
            for r in 1..=5 {
                let reg = st.reg(r);
                let Some(v) = reg.var.const_value() else { continue };
                if reg.kind() != Some(PtrKind::Stack) || reg.frameno != f.frameno {
                    continue;
                }
                let off = i64::from(reg.off) + v as i64;
                if !(-512..0).contains(&off) {
                    continue;
                }
                let first = Frame::slot_of(off).0;
                let Some(slot) = f.stack.get(first) else { continue };
                let span = match slot.bytes[0] {
                    ByteKind::Dynptr => 2,
                    ByteKind::Iter => 1,
                    _ => continue,
                };
                for k in 0..span {
                    if let Some(sl) = first.checked_sub(k).filter(|&x| x < 64) {
                        self.scratch_stack |= 1 << sl;
                    }
                }
            }
        }
    }

    /// What an instruction touches, from the state before it: its registers and the stack
    /// slots it addresses.
    fn scratch_before(&mut self, ins: &Insn, st: &State) {
        let mut regs = 0u16;
        let mut mem: Option<(usize, i16, usize)> = None;
        match *ins {
            Insn::Alu { dst, src, .. } => {
                regs |= 1 << dst.idx();
                if let bpflab_vm::isa::Operand::Reg(s) = src {
                    regs |= 1 << s.idx();
                }
            }
            Insn::Neg { dst, .. } | Insn::Endian { dst, .. } | Insn::LdImm64 { dst, .. } => {
                regs |= 1 << dst.idx();
            }
            Insn::AddrSpaceCast { dst, src, .. } => regs |= 1 << dst.idx() | 1 << src.idx(),
            Insn::LdAbs { .. } => regs |= 0x7f,
            Insn::LdInd { src, .. } => regs |= 0x7f | 1 << src.idx(),
            Insn::Load { size, dst, src, off, .. } => {
                regs |= 1 << dst.idx() | 1 << src.idx();
                mem = Some((src.idx(), off, size.bytes()));
            }
            Insn::Store { size, dst, off, src } => {
                regs |= 1 << dst.idx();
                if let bpflab_vm::isa::Operand::Reg(s) = src {
                    regs |= 1 << s.idx();
                }
                mem = Some((dst.idx(), off, size.bytes()));
            }
            Insn::Atomic { size, op, dst, src, off } => {
                regs |= 1 << dst.idx() | 1 << src.idx();
                if op == bpflab_vm::isa::AtomicOp::Cmpxchg {
                    regs |= 1;
                }
                mem = Some((dst.idx(), off, size.bytes()));
            }
            Insn::Jump { dst, src, .. } => {
                regs |= 1 << dst.idx();
                if let bpflab_vm::isa::Operand::Reg(s) = src {
                    regs |= 1 << s.idx();
                }
            }
            Insn::Call { kind, .. } => {
                if kind != bpflab_vm::isa::CallKind::Local {
                    regs |= 0x3f;
                }
            }
            Insn::Ja { .. } | Insn::JaLong { .. } | Insn::Exit => {}
        }
        self.scratch_regs |= regs;
        if let Some((base, off, size)) = mem {
            let r = st.reg(base);
            if r.kind() == Some(PtrKind::Stack) {
                let lo = i64::from(r.off) + i64::from(off) + r.var.smin;
                let hi = i64::from(r.off) + i64::from(off) + r.var.smax.saturating_add(size as i64);
                if (-512..=0).contains(&lo) && (-512..=0).contains(&hi) && lo < hi {
                    let first = Frame::slot_of(hi - 1).0;
                    let last = Frame::slot_of(lo).0;
                    for s in first..=last.min(63) {
                        self.scratch_stack |= 1 << s;
                    }
                }
            }
        }
    }

    /// Logs what instruction `insn` did, in state `st` after it; `next` is where the path
    /// goes (`None`: it ended).
    pub(crate) fn after_insn(&mut self, insn: usize, ins: &Insn, st: &State, next: Option<usize>) {
        let forked = std::mem::take(&mut self.forked);
        if forked
            && let Some(n) = next
            && self.cond_jump.get(insn).copied().unwrap_or(false)
        {
            self.history.push((insn as u32, n != insn + 1));
        }
        if !self.on() {
            return;
        }
        match *ins {
            Insn::Call { kind: bpflab_vm::isa::CallKind::Local, .. } if st.frames.len() > 1 => {
                let n = st.frames.len();
                self.text.push_str("caller:\n");
                self.write_state(&st.frames[n - 2], st, true);
                self.text.push_str("callee:\n");
                self.write_state(&st.frames[n - 1], st, true);
                self.scratch_regs = u16::MAX;
                self.scratch_stack = u64::MAX;
            }
            Insn::Call { .. } if forked => {
                // A call that queued a callback's frame: the kernel marks the whole state.
                self.scratch_regs = u16::MAX;
                self.scratch_stack = u64::MAX;
            }
            Insn::Call { .. } => {
                // Stack slots a helper wrote (memory arguments).
                for (i, slot) in st.cur().stack.iter().enumerate().take(64) {
                    if self.pre_call_stack.get(i) != Some(slot) {
                        self.scratch_stack |= 1 << i;
                    }
                }
            }
            Insn::Exit => {
                if let (Some(callee), Some(to)) = (self.callee.take(), next) {
                    self.text.push_str("returning from callee:\n");
                    self.write_state(&callee, st, true);
                    let _ = writeln!(self.text, "to caller at {to}:");
                    self.write_state(st.cur(), st, true);
                    self.from = Some((insn, to));
                }
            }
            _ => {}
        }
    }

    /// Notes the two states of an infinite loop, which the kernel prints after the error.
    pub(crate) fn loop_states(&mut self, cur: &State, old: &State) {
        if !self.on() {
            return;
        }
        let text = std::mem::take(&mut self.text);
        self.text.push_str("cur state:");
        self.write_state(cur.cur(), cur, true);
        self.text.push_str("old state:");
        self.write_state(old.cur(), old, true);
        self.after_error = std::mem::replace(&mut self.text, text);
    }

    /// Level 2's `func#N @START` lines for a program refused before the walk by a check the
    /// kernel makes after listing its subprograms (jumps, the last instruction, the CFG).
    pub(crate) fn cfg_error_header(&mut self, prog: &Program, message: &str) {
        const AFTER_LISTING: &[&str] = &[
            "jump out of range",
            "last insn is not an exit or jmp",
            "unreachable insn",
            "back-edge",
            "jump into the middle of ldimm64",
            "infinite loop detected",
        ];
        if !AFTER_LISTING.iter().any(|m| message.starts_with(m)) {
            return;
        }
        let mut starts = vec![0usize];
        let mut slot = 0usize;
        for ins in &prog.insns {
            let target = match *ins {
                Insn::Call { kind: bpflab_vm::isa::CallKind::Local, imm, .. } => Some(imm),
                Insn::LdImm64 { src: bpflab_vm::isa::PseudoSrc::Func, imm, .. } => Some(imm),
                _ => None,
            };
            if let Some(t) =
                target.and_then(|imm| usize::try_from(slot as i64 + 1 + i64::from(imm)).ok())
            {
                starts.push(t);
            }
            slot += ins.slots();
        }
        starts.sort_unstable();
        starts.dedup();
        self.cfg_error_subprogs = starts.len();
        if !self.level2() {
            return;
        }
        for (i, s) in starts.iter().enumerate() {
            let _ = writeln!(self.text, "func#{i} @{s}");
        }
    }

    /// Ends the log: the error (with bpflab's source line and path), the statistics.
    pub(crate) fn finish(
        &mut self,
        verdict: &Verdict,
        stats: &Stats,
        limit: u64,
        stack_depth: &[u32],
    ) {
        match verdict {
            Verdict::Accepted => {
                if self.on() && !self.level2() {
                    self.reset(0);
                }
            }
            Verdict::Rejected(e) => {
                let _ = writeln!(self.text, "{}", e.message);
                let after = std::mem::take(&mut self.after_error);
                self.text.push_str(&after);
                if let Some(l) = &e.line {
                    let _ = writeln!(self.text, "at {}:{}: {}", l.file, l.line, l.text);
                }
                if let Some(p) = self.path_line() {
                    let _ = writeln!(self.text, "{p}");
                }
            }
            Verdict::Unsupported(u) => {
                let _ = writeln!(self.text, "bpflab: unsupported: {}", u.feature);
            }
        }
        if self.level & STATS != 0 {
            let _ = writeln!(self.text, "verification time {} usec", stats.verification_usec);
            let depth: Vec<String> = stack_depth.iter().map(u32::to_string).collect();
            let depth = if depth.is_empty() {
                vec!["0"; self.cfg_error_subprogs.max(1)].join("+")
            } else {
                depth.join("+")
            };
            let _ = writeln!(self.text, "stack depth {depth}");
        }
        let _ = writeln!(self.text, "{}", stats.line(limit));
        self.bound();
    }

    /// `path: a (taken) -> b (not taken) ...`: the last branch decisions of the current path,
    /// repeats folded (`xN`), as source lines where line info has them.
    pub(crate) fn path_line(&self) -> Option<String> {
        if self.history.is_empty() {
            return None;
        }
        let mut groups: Vec<(String, usize)> = Vec::new();
        for &(slot, taken) in &self.history {
            let at = match self.linfo(slot as usize) {
                Some(i) => format!("{}:{}", self.lines[i].src.file, self.lines[i].src.line),
                None => format!("insn {slot}"),
            };
            let step = format!("{at} ({})", if taken { "taken" } else { "not taken" });
            match groups.last_mut() {
                Some((s, n)) if *s == step => *n += 1,
                _ => groups.push((step, 1)),
            }
        }
        let skip = groups.len().saturating_sub(PATH_SHOWN);
        let mut out = String::from("path: ");
        if skip > 0 {
            out.push_str("... -> ");
        }
        for (i, (s, n)) in groups[skip..].iter().enumerate() {
            if i > 0 {
                out.push_str(" -> ");
            }
            out.push_str(s);
            if *n > 1 {
                let _ = write!(out, " x{n}");
            }
        }
        Some(out)
    }

    /// The kernel's `print_verifier_state` of frame `f` (of state `st`): every register and
    /// stack slot (`all`) or the scratched ones, then clears the scratch marks (not `all`).
    fn write_state(&mut self, f: &Frame, st: &State, all: bool) {
        let mut s = std::mem::take(&mut self.text);
        if f.frameno > 0 {
            let _ = write!(s, " frame{}:", f.frameno);
        }
        for (i, r) in f.regs.iter().enumerate().take(NREGS) {
            if r.ty == RegType::NotInit || (!all && self.scratch_regs & (1 << i) == 0) {
                continue;
            }
            let _ = write!(s, " R{i}=");
            self.write_reg_in(&mut s, r, f.frameno, st);
        }
        let mut i = 0;
        while i < f.stack.len() {
            let slot = &f.stack[i];
            if !all && (i >= 64 || self.scratch_stack & (1 << i) == 0) {
                i += 1;
                continue;
            }
            // The kernel lists a slot's bytes highest address first.
            let mut kinds = [ByteKind::Invalid; SLOT];
            for (k, b) in kinds.iter_mut().zip(slot.bytes.iter().rev()) {
                *k = *b;
            }
            if kinds.iter().all(|&k| k == ByteKind::Invalid) {
                i += 1;
                continue;
            }
            let fp = |i: usize| -((i as i64 + 1) * SLOT as i64);
            match kinds[SLOT - 1] {
                ByteKind::Spill => {
                    let _ = write!(s, " fp{}=", fp(i));
                    kinds
                        .iter()
                        .take_while(|&&k| k != ByteKind::Spill)
                        .for_each(|k| s.push(k.ch()));
                    self.write_reg_in(&mut s, &slot.spilled, f.frameno, st);
                }
                ByteKind::Dynptr => {
                    // The kernel prints a dynptr once, at its second (first-slot) half.
                    i += 1;
                    let d = f.stack.get(i).map_or(slot.dynptr, |x| x.dynptr);
                    let _ = write!(s, " fp{}=dynptr_{}(", fp(i), d.ty.name());
                    let mut sep = "";
                    if d.id != 0 {
                        let _ = write!(s, "id={}", d.id);
                        sep = ",";
                    }
                    if d.ref_obj_id != 0 {
                        let _ = write!(s, "{sep}ref_id={}", d.ref_obj_id);
                        sep = ",";
                    }
                    if d.id != 0 {
                        let _ = write!(s, "{sep}dynptr_id={}", d.id);
                    }
                    s.push(')');
                }
                ByteKind::Iter => {
                    if slot.spilled.ref_obj_id != 0 {
                        let state = match slot.iter.phase {
                            crate::state::IterPhase::Active => "active",
                            crate::state::IterPhase::Drained => "drained",
                        };
                        let _ = write!(
                            s,
                            " fp{}=iter_{}(ref_id={},state={state},depth={})",
                            fp(i),
                            iter_type_name(slot.spilled.btf_id),
                            slot.spilled.ref_obj_id,
                            slot.iter.depth
                        );
                    }
                }
                _ => {
                    let _ = write!(s, " fp{}=", fp(i));
                    kinds.iter().for_each(|k| s.push(k.ch()));
                }
            }
            i += 1;
        }
        let mut refs = st.refs.iter().filter(|r| r.id != 0);
        if let Some(first) = refs.next() {
            let _ = write!(s, " refs={}", first.id);
            for r in refs {
                let _ = write!(s, ",{}", r.id);
            }
        }
        if f.callback_of.is_some() {
            s.push_str(" cb");
        }
        s.push('\n');
        self.text = s;
        if !all {
            self.scratch_regs = 0;
            self.scratch_stack = 0;
        }
    }

    /// A register as the kernel's `print_reg_state` prints it, with map names.
    #[allow(dead_code)]
    pub(crate) fn fmt_reg(&self, r: &Reg, frameno: u8) -> String {
        let mut s = String::new();
        self.write_reg(&mut s, r, frameno);
        s
    }

    /// A register of state `st`: ring buffer records (memory holding a ring buffer
    /// reference) show as `ringbuf_mem`.
    fn write_reg_in(&self, s: &mut String, r: &Reg, frameno: u8, st: &State) {
        if r.kind() == Some(PtrKind::Mem)
            && r.ref_obj_id != 0
            && st
                .refs
                .iter()
                .any(|x| x.id == r.ref_obj_id && x.kind == crate::state::RefKind::Ringbuf)
        {
            let name = r.type_name();
            let (pre, rest) =
                name.strip_prefix("rdonly_").map_or(("", name.as_str()), |x| ("rdonly_", x));
            let _ = write!(s, "{pre}ringbuf_{rest}");
            let mut tail = String::new();
            self.write_reg(&mut tail, r, frameno);
            s.push_str(&tail[r.type_name().len()..]);
            return;
        }
        self.write_reg(s, r, frameno);
    }

    fn write_reg(&self, s: &mut String, r: &Reg, frameno: u8) {
        write_reg(s, r, frameno, |m| {
            self.maps.get(m as usize).map(|m| (m.name.as_str(), m.key_size, m.value_size))
        });
    }

    /// An instruction as the kernel's `print_bpf_insn` prints it: `(code) text`.
    fn write_insn(&mut self, ins: &Insn) {
        let (a, b) = ins.encode();
        let mut s = std::mem::take(&mut self.text);
        write_raw_insn(&mut s, a, b, &|raw: RawInsn| self.imm64_name(raw, b), &|id| {
            self.kfuncs.iter().find(|k| k.0 == id).map(|k| k.1.clone())
        });
        self.text = s;
    }

    /// The right-hand side of an LD_IMM64 (see the module docs for map loads).
    fn imm64_name(&self, a: RawInsn, b: Option<RawInsn>) -> String {
        let hi = b.map_or(0, |b| b.imm);
        let imm = (u64::from(hi as u32) << 32) | u64::from(a.imm as u32);
        let name = |i: i32| {
            self.maps.get(i as usize).map_or_else(|| format!("idx:{i}"), |m| m.name.clone())
        };
        let plus = |off: i32| if off == 0 { String::new() } else { format!("{off:+}") };
        match a.src {
            1 => format!("map[fd:{}]", a.imm),
            2 => format!("map[fd:{}]{}", a.imm, plus(hi)),
            5 => format!("map[{}]", name(a.imm)),
            6 => format!("map[{}]{}", name(a.imm), plus(hi)),
            _ => format!("{imm:#x}"),
        }
    }
}

/// The line the kernel's `btf_prepare_func_args` logs for the main function, if any: its
/// return type must be a scalar and its pointer arguments the context or sized memory (global
/// functions only; static ones are refused silently). Functions with `arg:` tags are not
/// modelled (no line), nor unnamed arguments (the running kernel prints nothing for them).
fn main_func_note(coll: &Collection, prog: &Program) -> Option<String> {
    use bpflab_btf::{BtfKind, BtfType};
    let &(_, type_id) = prog.func_info.first()?;
    let btf = bpflab_btf::Btf::parse(coll.btf.as_deref()?).ok()?;
    let BtfType::Func { name_off, type_id: proto, linkage } = btf.type_by_id(type_id).ok()? else {
        return None;
    };
    let name = btf.string_at(*name_off).ok()?;
    let global = *linkage == bpflab_btf::linkage::GLOBAL;
    let BtfType::FuncProto { ret_type, params } = btf.type_by_id(*proto).ok()? else { return None };
    let kind_str = |k: BtfKind| if k == BtfKind::Void { "UNKNOWN" } else { k.as_str() };
    let is_scalar =
        |t: &BtfType| matches!(t.kind(), BtfKind::Int | BtfKind::Enum | BtfKind::Enum64);
    if params.len() > 5 {
        return global.then(|| {
            format!("Global function {name}() with {} > 5 args. Buggy compiler.", params.len())
        });
    }
    let (_, ret) = btf.resolve_mods(*ret_type).ok()?;
    if !is_scalar(ret) {
        return global.then(|| {
            format!("Global function {name}() doesn't return scalar. Only those are supported.")
        });
    }
    let tagged = btf.types().any(|(_, t)| {
        matches!(t, BtfType::DeclTag { name_off: n, type_id: f, component_idx }
            if *f == type_id && *component_idx >= 0
                && btf.string_at(*n).is_ok_and(|s| s.starts_with("arg:")))
    });
    if tagged {
        return None;
    }
    for (i, p) in params.iter().enumerate() {
        let (_, t) = btf.resolve_mods(p.type_id).ok()?;
        match t {
            BtfType::Ptr { type_id: pointee } => {
                let (_, target) = btf.resolve_mods(*pointee).ok()?;
                if matches!(target, BtfType::Struct(_)) || !global {
                    // The context, or memory of the struct's size; static: no line.
                    if !global {
                        return None;
                    }
                    continue;
                }
                // The running kernel says nothing of unnamed (naked functions') arguments.
                if p.name_off == 0 {
                    return None;
                }
                if btf.size_of(*pointee).is_err() {
                    let tname = btf.string_at(target.name_off()).unwrap_or("");
                    return Some(format!(
                        "arg#{i} reference type('{} {tname}') size cannot be determined: -22",
                        kind_str(target.kind())
                    ));
                }
            }
            t if is_scalar(t) => {}
            t => {
                return global.then(|| {
                    format!("Arg#{i} type {} in {name}() is not supported yet.", kind_str(t.kind()))
                });
            }
        }
    }
    None
}

/// Per slot, the loop (non-trivial strongly connected component of the instruction graph)
/// it belongs to, numbered from 1 in the order Tarjan's algorithm completes them when it
/// starts from each unvisited instruction in order and takes the fall-through successor
/// before the jump target; 0 outside loops. Calls that call a callback (`looping[slot]`) loop
/// on themselves, as the kernel verifies them (not iterators' `next`, whose loop is in the
/// code). The kernel's level-2 liveness table shows it.
fn scc_ids(prog: &Program, looping: &[bool], kfuncs: &[(i32, String)]) -> Vec<u32> {
    let n = prog.slot_count();
    let mut succ: Vec<[Option<usize>; 2]> = vec![[None, None]; n];
    let mut is_start = vec![false; n];
    let mut slot = 0usize;
    for ins in &prog.insns {
        let at = |off: i64| usize::try_from(slot as i64 + 1 + off).ok().filter(|&t| t < n);
        let next = Some(slot + ins.slots()).filter(|&t| t < n);
        succ[slot] = match *ins {
            Insn::Exit => [None, None],
            Insn::Ja { off } => [at(i64::from(off)), None],
            Insn::JaLong { imm } => [at(i64::from(imm)), None],
            Insn::Jump { off, .. } => [next, at(i64::from(off))],
            Insn::Call { kind, imm, .. }
                if looping.get(slot).copied().unwrap_or(false)
                    && match kind {
                        bpflab_vm::isa::CallKind::Helper => true,
                        bpflab_vm::isa::CallKind::Kfunc => kfuncs
                            .iter()
                            .find(|k| k.0 == imm)
                            .is_some_and(|k| !k.1.starts_with("bpf_iter_")),
                        bpflab_vm::isa::CallKind::Local => false,
                    } =>
            {
                [next, Some(slot)]
            }
            _ => [next, None],
        };
        is_start[slot] = true;
        slot += ins.slots();
    }
    const UNSEEN: u32 = u32::MAX;
    let mut index = vec![UNSEEN; n];
    let mut low = vec![0u32; n];
    let mut on_stack = vec![false; n];
    let mut stack: Vec<usize> = Vec::new();
    let mut ids = vec![0u32; n];
    let (mut counter, mut next_id) = (0u32, 1u32);
    let mut dfs: Vec<(usize, usize)> = Vec::new();
    for root in 0..n {
        if !is_start[root] || index[root] != UNSEEN {
            continue;
        }
        index[root] = counter;
        low[root] = counter;
        counter += 1;
        stack.push(root);
        on_stack[root] = true;
        dfs.push((root, 0));
        while let Some(&mut (v, ref mut k)) = dfs.last_mut() {
            if *k < 2 {
                let w = succ[v][*k];
                *k += 1;
                if let Some(w) = w {
                    if index[w] == UNSEEN {
                        index[w] = counter;
                        low[w] = counter;
                        counter += 1;
                        stack.push(w);
                        on_stack[w] = true;
                        dfs.push((w, 0));
                    } else if on_stack[w] {
                        low[v] = low[v].min(index[w]);
                    }
                }
                continue;
            }
            dfs.pop();
            if let Some(&(p, _)) = dfs.last() {
                low[p] = low[p].min(low[v]);
            }
            if low[v] == index[v] {
                let at = stack.iter().rposition(|&x| x == v).unwrap_or(0);
                let members = stack.split_off(at);
                let looping = members.len() > 1 || succ[v].contains(&Some(v));
                for &m in &members {
                    on_stack[m] = false;
                    if looping {
                        ids[m] = next_id;
                    }
                }
                if looping {
                    next_id += 1;
                }
            }
        }
    }
    ids
}

/// A register as the kernel's `print_reg_state` prints it (`scalar(umax=255,var_off=(0x0;
/// 0xff))`, `fp-8`, `pkt(off=14,r=14)`, `map_value(map=counts,ks=4,vs=8)`); map pointers
/// show no map name here (the log's own printing names them).
#[allow(dead_code)]
pub(crate) fn fmt_reg(r: &Reg, frameno: u8) -> String {
    let mut s = String::new();
    write_reg(&mut s, r, frameno, |_| None);
    s
}

/// The name of type `btf_id` in the running kernel's BTF (read once, when a log first needs
/// it).
fn vmlinux_type_name(btf_id: u32) -> Option<String> {
    static VMLINUX: std::sync::OnceLock<Option<bpflab_btf::Btf>> = std::sync::OnceLock::new();
    if btf_id == 0 {
        return None;
    }
    let b = VMLINUX.get_or_init(|| bpflab_btf::Btf::from_vmlinux().ok()).as_ref()?;
    let t = b.type_by_id(btf_id).ok()?;
    b.string_at(t.name_off()).ok().map(str::to_string)
}

/// An iterator's type as the kernel names it in states: its struct's name in the running
/// kernel's BTF without `bpf_iter_` (`num`), `<invalid>` when unknown.
fn iter_type_name(btf_id: u32) -> String {
    match vmlinux_type_name(btf_id) {
        Some(n) => n.strip_prefix("bpf_iter_").unwrap_or(&n).to_string(),
        None => "<invalid>".into(),
    }
}

/// The kernel's `verbose_snum`: decimal within the s16 range, else hex of the bits.
fn snum(s: &mut String, v: i64) {
    if (i64::from(i16::MIN)..=i64::from(i16::MAX)).contains(&v) {
        let _ = write!(s, "{v}");
    } else {
        let _ = write!(s, "{:#x}", v as u64);
    }
}

/// The kernel's `verbose_unum`: decimal up to 65535, else hex.
fn unum(s: &mut String, v: u64) {
    if v <= u64::from(u16::MAX) {
        let _ = write!(s, "{v}");
    } else {
        let _ = write!(s, "{v:#x}");
    }
}

/// A packet range as the kernel stores it: bpflab's markers mapped to the kernel's
/// `AT_PKT_END` (-1) and `BEYOND_PKT_END` (-2).
fn kernel_range(range: i32) -> i32 {
    match range {
        crate::check::AT_PKT_END => -1,
        crate::check::BEYOND_PKT_END => -2,
        r => r,
    }
}

fn write_reg<'m>(
    s: &mut String,
    r: &Reg,
    frameno: u8,
    map: impl Fn(u32) -> Option<(&'m str, u32, u32)>,
) {
    let kind = match r.ty {
        RegType::NotInit => {
            s.push('?');
            return;
        }
        RegType::Scalar => None,
        RegType::Ptr(k) => Some(k),
    };
    if kind.is_none() {
        if r.precise {
            s.push('P');
        }
        if let Some(v) = r.var.const_value() {
            snum(s, v as i64);
            return;
        }
    }
    if kind == Some(PtrKind::BtfId) {
        // `ptr_` + `or_null_` (the kernel's postfix for BTF pointers) + the type's name.
        if r.rdonly {
            s.push_str("rdonly_");
        }
        s.push_str("ptr_");
        if r.maybe_null {
            s.push_str("or_null_");
        }
        s.push_str(&vmlinux_type_name(r.btf_id).unwrap_or_default());
    } else {
        s.push_str(&r.type_name());
    }
    if kind == Some(PtrKind::Stack) {
        if r.frameno != frameno {
            let _ = write!(s, "[{}]", r.frameno);
        }
        if let Some(v) = r.var.const_value() {
            snum(s, (v as i64).wrapping_add(i64::from(r.off)));
            return;
        }
    }
    s.push('(');
    let mut sep = "";
    let mut item = |s: &mut String| {
        s.push_str(sep);
        sep = ",";
    };
    if r.id != 0 {
        item(s);
        let _ = write!(s, "id={}", r.id);
    }
    if r.ref_obj_id != 0 {
        item(s);
        let _ = write!(s, "ref_obj_id={}", r.ref_obj_id);
    }
    if matches!(kind, Some(PtrKind::MapPtr | PtrKind::MapKey | PtrKind::MapValue))
        && let Some((name, ks, vs)) = map(r.map)
    {
        if !name.is_empty() {
            item(s);
            let _ = write!(s, "map={name}");
        }
        item(s);
        let _ = write!(s, "ks={ks},vs={vs}");
    }
    if let Some(k) = kind {
        if r.off != 0 {
            item(s);
            s.push_str("off=");
            snum(s, i64::from(r.off));
        }
        if k.is_pkt() {
            item(s);
            s.push_str("r=");
            unum(s, i64::from(kernel_range(r.range)) as u64);
        }
        if k == PtrKind::Mem {
            item(s);
            s.push_str("sz=");
            unum(s, u64::from(r.mem_size));
        }
    }
    match r.var.const_value() {
        Some(v) => {
            if v != 0 {
                item(s);
                s.push_str("imm=");
                snum(s, v as i64);
            }
        }
        None => {
            let ranges = r.var.fmt_kernel();
            if !ranges.is_empty() {
                item(s);
                s.push_str(&ranges);
            }
        }
    }
    s.push(')');
}

/// The kernel's alignment of the state after an instruction printed in `pos` bytes
/// (`vlog_alignment`): the `;` lands on a multiple of 8 from column 40 on.
fn vlog_alignment(pos: usize) -> usize {
    let target = (pos + 4).max(40).div_ceil(8) * 8;
    target - pos - 1
}

const SIZES: [&str; 4] = ["u32", "u16", "u8", "u64"];
const SSIZES: [&str; 4] = ["s32", "s16", "s8", "s64"];

fn alu_str(op: u8) -> &'static str {
    match op >> 4 {
        0x0 => "+=",
        0x1 => "-=",
        0x2 => "*=",
        0x3 => "/=",
        0x4 => "|=",
        0x5 => "&=",
        0x6 => "<<=",
        0x7 => ">>=",
        0x8 => "neg",
        0x9 => "%=",
        0xa => "^=",
        0xb => "=",
        0xc => "s>>=",
        0xd => "endian",
        _ => "",
    }
}

fn jmp_str(op: u8) -> &'static str {
    match op >> 4 {
        0x0 => "jmp",
        0x1 => "==",
        0x2 => ">",
        0x3 => ">=",
        0x4 => "&",
        0x5 => "!=",
        0x6 => "s>",
        0x7 => "s>=",
        0x8 => "call",
        0x9 => "exit",
        0xa => "<",
        0xb => "<=",
        0xc => "s<",
        0xd => "s<=",
        _ => "",
    }
}

/// One instruction in the syntax of the kernel's `print_bpf_insn` (kernel/bpf/disasm.c),
/// written from its encoding: `(code) text`.
fn write_raw_insn(
    s: &mut String,
    a: RawInsn,
    b: Option<RawInsn>,
    imm64: &dyn Fn(RawInsn) -> String,
    kfunc: &dyn Fn(i32) -> Option<String>,
) {
    let _ = b;
    let code = a.code;
    let class = code & 7;
    let op = code & 0xf0;
    let x = code & 8 != 0;
    let size = usize::from((code >> 3) & 3);
    let mode = code & 0xe0;
    let (d, sr, off, imm) = (a.dst, a.src, a.off, a.imm);
    let _ = write!(s, "({code:02x}) ");
    let mut w = |args: std::fmt::Arguments<'_>| {
        let _ = s.write_fmt(args);
    };
    match class {
        4 | 7 => {
            let r = if class == 4 { 'w' } else { 'r' };
            if op == 0xd0 {
                if class == 7 {
                    w(format_args!("r{d} = bswap{imm} r{d}"));
                } else {
                    w(format_args!("r{d} = {}{imm} r{d}", if x { "be" } else { "le" }));
                }
            } else if op == 0x80 {
                w(format_args!("{r}{d} = -{r}{d}"));
            } else if code == 0xbf && off == 1 {
                w(format_args!(
                    "r{d} = addr_space_cast(r{sr}, {}, {})",
                    (imm as u32) >> 16,
                    imm as u16
                ));
            } else if code == 0xbf && off == -1 {
                w(format_args!("r{d} = &(void __percpu *)(r{sr})"));
            } else {
                let sign = (op == 0x30 || op == 0x90) && off == 1;
                let opstr = match (sign, op) {
                    (true, 0x30) => "s/=",
                    (true, _) => "s%=",
                    _ => alu_str(op),
                };
                if x {
                    let movsx = match (op, off) {
                        (0xb0, 8) => "(s8)",
                        (0xb0, 16) => "(s16)",
                        (0xb0, 32) => "(s32)",
                        _ => "",
                    };
                    w(format_args!("{r}{d} {opstr} {movsx}{r}{sr}"));
                } else {
                    w(format_args!("{r}{d} {opstr} {imm}"));
                }
            }
        }
        3 => {
            let sz = SIZES[size];
            let dw = if size == 3 { "64" } else { "" };
            if mode == 0x60 {
                w(format_args!("*({sz} *)(r{d} {off:+}) = r{sr}"));
            } else if mode == 0xc0 {
                let fetch = imm & 1 != 0;
                let aop = imm & !1;
                match (aop, fetch) {
                    (0x00 | 0x40 | 0x50 | 0xa0, false) => {
                        w(format_args!("lock *({sz} *)(r{d} {off:+}) {} r{sr}", alu_str(aop as u8)))
                    }
                    (0x00 | 0x40 | 0x50 | 0xa0, true) => {
                        let name = match aop {
                            0x00 => "add",
                            0x40 => "or",
                            0x50 => "and",
                            _ => "xor",
                        };
                        w(format_args!(
                            "r{sr} = atomic{dw}_fetch_{name}(({sz} *)(r{d} {off:+}), r{sr})"
                        ))
                    }
                    (0xf0, true) => w(format_args!(
                        "r0 = atomic{dw}_cmpxchg(({sz} *)(r{d} {off:+}), r0, r{sr})"
                    )),
                    (0xe0, true) => {
                        w(format_args!("r{sr} = atomic{dw}_xchg(({sz} *)(r{d} {off:+}), r{sr})"))
                    }
                    (0x100, false) => {
                        w(format_args!("r{d} = load_acquire(({sz} *)(r{sr} {off:+}))"))
                    }
                    (0x110, false) => {
                        w(format_args!("store_release(({sz} *)(r{d} {off:+}), r{sr})"))
                    }
                    _ => w(format_args!("BUG_{code:02x}")),
                }
            } else {
                w(format_args!("BUG_{code:02x}"));
            }
        }
        2 => {
            if mode == 0x60 {
                w(format_args!("*({} *)(r{d} {off:+}) = {imm}", SIZES[size]));
            } else if mode == 0xc0 {
                w(format_args!("nospec"));
            } else {
                w(format_args!("BUG_st_{code:02x}"));
            }
        }
        1 => {
            let sz = match mode {
                0x60 => SIZES[size],
                0x80 => SSIZES[size],
                _ => {
                    w(format_args!("BUG_ldx_{code:02x}"));
                    return;
                }
            };
            w(format_args!("r{d} = *({sz} *)(r{sr} {off:+})"));
        }
        0 => match mode {
            0x20 => w(format_args!("r0 = *({} *)skb[{imm}]", SIZES[size])),
            0x40 => w(format_args!("r0 = *({} *)skb[r{sr} + {imm}]", SIZES[size])),
            0x00 if size == 3 => w(format_args!("r{d} = {}", imm64(a))),
            _ => w(format_args!("BUG_ld_{code:02x}")),
        },
        _ => {
            // JMP (5) and JMP32 (6).
            let r = if class == 6 { 'w' } else { 'r' };
            if op == 0x80 {
                if sr == 1 {
                    w(format_args!("call pc{imm:+}"));
                } else {
                    let name = if sr == 0 {
                        usize::try_from(imm)
                            .ok()
                            .and_then(|i| bpflab_vm::helper_names::KERNEL_HELPER_NAMES.get(i))
                            .map_or_else(|| "unknown".to_string(), |n| (*n).to_string())
                    } else if sr == 2 {
                        kfunc(imm).unwrap_or_else(|| "kernel-function".into())
                    } else {
                        "unknown".into()
                    };
                    w(format_args!("call {name}#{imm}"));
                }
            } else if code == 0x05 {
                w(format_args!("goto pc{off:+}"));
            } else if code == 0xe5 && sr == 0 {
                w(format_args!("may_goto pc{off:+}"));
            } else if code == 0x06 {
                w(format_args!("gotol pc{imm:+}"));
            } else if code == 0x95 {
                w(format_args!("exit"));
            } else if x {
                w(format_args!("if {r}{d} {} {r}{sr} goto pc{off:+}", jmp_str(op)));
            } else {
                w(format_args!("if {r}{d} {} {:#x} goto pc{off:+}", jmp_str(op), imm as u32));
            }
        }
    }
}

/// A name as the kernel keeps it for a map or program: 15 bytes, characters other than
/// letters, digits and `.` as `_` (what bpflab's kernel loader passes).
fn kernel_obj_name(name: &str) -> String {
    name.bytes()
        .take(15)
        .map(|b| if b.is_ascii_alphanumeric() || b == b'.' { char::from(b) } else { '_' })
        .collect()
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
fn btf_strings(btf: &[u8]) -> Option<Strings> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn insn(src: &str) -> String {
        let ins = bpflab_vm::asm::assemble(src).expect("assembles");
        let (a, b) = ins[0].encode();
        let mut s = String::new();
        write_raw_insn(&mut s, a, b, &|a| format!("{:#x}", a.imm), &|_| None);
        s
    }

    #[test]
    fn instructions_in_the_kernels_syntax() {
        assert_eq!(insn("r0 = 0"), "(b7) r0 = 0");
        assert_eq!(insn("w1 += w2"), "(0c) w1 += w2");
        assert_eq!(insn("r1 s/= r2"), "(3f) r1 s/= r2");
        assert_eq!(insn("r1 = (s8)r2"), "(bf) r1 = (s8)r2");
        assert_eq!(insn("r1 = -r1"), "(87) r1 = -r1");
        assert_eq!(insn("r1 = be16 r1"), "(dc) r1 = be16 r1");
        assert_eq!(insn("r1 = bswap32 r1"), "(d7) r1 = bswap32 r1");
        assert_eq!(insn("r2 = *(u32 *)(r1 + 4)"), "(61) r2 = *(u32 *)(r1 +4)");
        assert_eq!(insn("r2 = *(s16 *)(r1 - 2)"), "(89) r2 = *(s16 *)(r1 -2)");
        assert_eq!(insn("*(u64 *)(r10 - 8) = r1"), "(7b) *(u64 *)(r10 -8) = r1");
        assert_eq!(insn("*(u32 *)(r10 - 4) = 0"), "(62) *(u32 *)(r10 -4) = 0");
        assert_eq!(insn("lock *(u64 *)(r0 + 0) += r1"), "(db) lock *(u64 *)(r0 +0) += r1");
        assert_eq!(
            insn("r1 = atomic64_fetch_add((u64 *)(r0 + 0), r1)"),
            "(db) r1 = atomic64_fetch_add((u64 *)(r0 +0), r1)"
        );
        assert_eq!(insn("if r1 > 5 goto +3"), "(25) if r1 > 0x5 goto pc+3");
        assert_eq!(insn("if w1 s< -1 goto -2"), "(c6) if w1 s< 0xffffffff goto pc-2");
        assert_eq!(insn("if r1 != r2 goto +1"), "(5d) if r1 != r2 goto pc+1");
        assert_eq!(insn("goto +7"), "(05) goto pc+7");
        assert_eq!(insn("call 1"), "(85) call bpf_map_lookup_elem#1");
        assert_eq!(insn("call pc+2"), "(85) call pc+2");
        assert_eq!(insn("exit"), "(95) exit");
        assert_eq!(insn("r0 = *(u8 *)skb[12]"), "(30) r0 = *(u8 *)skb[12]");
    }

    #[test]
    fn registers_as_print_reg_state() {
        let mut r = Reg::ptr(PtrKind::Packet);
        r.off = 14;
        r.range = crate::check::BEYOND_PKT_END;
        assert_eq!(fmt_reg(&r, 0), "pkt(off=14,r=0xfffffffffffffffe)");
        r.range = 14;
        assert_eq!(fmt_reg(&r, 0), "pkt(off=14,r=14)");
        assert_eq!(fmt_reg(&Reg::ptr(PtrKind::Ctx), 0), "ctx()");
        let fp = Reg { off: -4, ..Reg::ptr(PtrKind::Stack) };
        assert_eq!(fmt_reg(&fp, 0), "fp-4");
        assert_eq!(fmt_reg(&fp, 1), "fp[0]-4");
        assert_eq!(fmt_reg(&Reg::konst(0x10000), 0), "0x10000");
        assert_eq!(fmt_reg(&Reg::konst(u64::MAX), 0), "-1");
        assert_eq!(fmt_reg(&Reg::unknown(), 0), "scalar()");
        let p = Reg { precise: true, ..Reg::konst(3) };
        assert_eq!(fmt_reg(&p, 0), "P3");
        let m = Reg { id: 1, maybe_null: true, ..Reg::ptr(PtrKind::MapValue) };
        assert_eq!(fmt_reg(&m, 0), "map_value_or_null(id=1)");
    }

    #[test]
    fn the_log_keeps_its_tail_within_the_cap() {
        let prog = Program::raw("t", bpflab_vm::asm::assemble("r0 = 0\nexit").expect("asm"));
        let mut log = Log::new(LEVEL1, &Collection::default(), &prog);
        log.cap = 1000;
        let mark = log.mark();
        for i in 0..500 {
            let _ = writeln!(log.text, "line {i}");
            log.bound();
            assert!(log.text.len() <= 1000);
        }
        assert!(log.text.ends_with("line 499\n"));
        assert!(log.text.starts_with("line "), "whole lines are dropped");
        assert_eq!(log.end(), (0..500).map(|i| format!("line {i}\n").len()).sum::<usize>());
        // Going back to a position already dropped empties the log, as the kernel's reset.
        log.resume(mark, 0, 1);
        assert!(log.text.is_empty());
        assert_eq!(log.end(), 0);
    }

    #[test]
    fn btf_pointers_are_named_from_the_running_kernel() {
        let Ok(btf) = bpflab_btf::Btf::from_vmlinux() else { return };
        let id = btf
            .types()
            .find(|(_, t)| {
                matches!(t, bpflab_btf::BtfType::Struct(_))
                    && btf.string_at(t.name_off()).is_ok_and(|n| n == "task_struct")
            })
            .map(|(id, _)| id)
            .expect("task_struct in vmlinux BTF");
        let mut r = Reg { btf_id: id, ..Reg::ptr(PtrKind::BtfId) };
        assert_eq!(fmt_reg(&r, 0), "ptr_task_struct()");
        r.maybe_null = true;
        r.id = 2;
        assert_eq!(fmt_reg(&r, 0), "ptr_or_null_task_struct(id=2)");
    }

    #[test]
    fn alignment_matches_the_kernel() {
        // "0: (b7) r0 = 0\n" is 15 bytes: the ';' goes to column 38.
        assert_eq!(vlog_alignment(15), 24);
        assert_eq!(vlog_alignment(38), 9);
    }
}
