//! State comparison for pruning and loop detection (the kernel's `states_equal`,
//! `regsafe`, `stacksafe`, `states_maybe_looping`), with registers dead at the checkpoint
//! ignored (static liveness, as the 6.18 kernel computes it).
//!
//! Precision: the kernel compares a stored scalar's range only when the scalar is *precise*,
//! i.e. some later decision depended on its exact value (found by backtracking along the
//! path). bpflab computes a static superset instead ([`precision_in`]): a register is
//! precise at a slot when its value may flow, on some path, into a branch comparison, a
//! pointer offset, a constant helper argument or the return value. Imprecise scalars match
//! anything; spilled scalars are always compared. A superset never prunes a path the
//! kernel's precision would keep, so this is sound; it may keep paths the kernel prunes.

use crate::check::Verifier;
use crate::state::{ByteKind, Frame, NREGS, Reg, RegType, State, StackSlot};

/// Which registers are live, and which of those precise, at a checkpoint, per frame.
pub(crate) struct Liveness {
    /// Per frame (main first): bitmask of live registers r0..r10.
    pub regs: Vec<u16>,
    /// Per frame: bitmask of registers whose scalar value must be compared.
    pub precise: Vec<u16>,
}

impl Liveness {
    /// Liveness of `st`'s frames at slot `insn`: the current frame's registers live before
    /// `insn`, the callers' registers live after their call instructions.
    pub(crate) fn at(v: &Verifier<'_>, st: &State, insn: usize) -> Liveness {
        let n = st.frames.len();
        let mut regs = Vec::with_capacity(n);
        let mut precise = Vec::with_capacity(n);
        for i in 0..n {
            let at = if i + 1 == n { insn } else { st.frames[i + 1].callsite + 1 };
            let mut m = v.cfg.live_in.get(at).copied().unwrap_or(0x7ff);
            let mut p = v.precise_in.get(at).copied().unwrap_or(0x7ff);
            if i + 1 < n {
                // The call returns r0 and clobbers r1-r5: only r6-r9 (and r10) carry over.
                m &= !0x3f;
                p &= !0x3f;
            }
            regs.push(m | 1 << 10);
            precise.push(p);
        }
        Liveness { regs, precise }
    }

    fn live(&self, frame: usize, r: usize) -> bool {
        self.regs.get(frame).is_none_or(|m| m & (1 << r) != 0)
    }

    fn precise(&self, frame: usize, r: usize) -> bool {
        self.precise.get(frame).is_none_or(|m| m & (1 << r) != 0)
    }
}

/// Per slot, the registers whose value may decide something later (see the module docs):
/// a backward may-analysis over the program's control flow, iterated to a fixpoint.
pub(crate) fn precision_in(
    prog: &bpflab_vm::Program,
    cfg: &crate::cfg::Cfg,
    helpers: &bpflab_vm::helpers::HelperRegistry,
) -> Vec<u16> {
    use bpflab_vm::helpers::ArgType;
    use bpflab_vm::isa::{AluOp, CallKind, Insn, Operand};
    const ARGS: u16 = 0b11_1110;
    const CALLER_SAVED: u16 = 0b11_1111;
    let n = cfg.slots;
    let mut inn = vec![0u16; n];
    let bit = |r: bpflab_vm::isa::Reg| 1u16 << r.idx();
    let mut changed = true;
    while changed {
        changed = false;
        for slot in (0..n).rev() {
            let Some(&ins) = cfg.insn(prog, slot) else { continue };
            let next = slot + ins.slots();
            let at = |s: usize| inn.get(s).copied().unwrap_or(0);
            let target = |off: i64| at(crate::check::jump_target(slot, off));
            let v = match ins {
                Insn::Alu { op, dst, src, .. } => {
                    let out = at(next);
                    let s = match src {
                        Operand::Reg(r) => bit(r),
                        Operand::Imm(_) => 0,
                    };
                    if op == AluOp::Mov || op.is_movsx() {
                        let mut v = out & !bit(dst);
                        if out & bit(dst) != 0 {
                            v |= s;
                        }
                        v
                    } else {
                        // The source may be a pointer offset: always precise.
                        out | s
                    }
                }
                // A stored register may be filled back and decide something: precise.
                Insn::Store { src: Operand::Reg(r), .. } => at(next) | bit(r),
                Insn::Neg { .. } | Insn::Endian { .. } | Insn::Store { .. } => at(next),
                Insn::Atomic { src, .. } => at(next) & !bit(src) | bit(src),
                Insn::AddrSpaceCast { dst, src, .. } => at(next) & !bit(dst) | bit(src),
                Insn::LdImm64 { dst, .. } | Insn::Load { dst, .. } => at(next) & !bit(dst),
                Insn::LdAbs { .. } => at(next) & !CALLER_SAVED,
                Insn::LdInd { src, .. } => at(next) & !CALLER_SAVED | bit(src),
                Insn::Ja { off } => target(i64::from(off)),
                Insn::JaLong { imm } => target(i64::from(imm)),
                Insn::Jump { dst, src, off, .. } => {
                    let s = match src {
                        Operand::Reg(r) => bit(r),
                        Operand::Imm(_) => 0,
                    };
                    at(next) | target(i64::from(off)) | bit(dst) | s
                }
                Insn::Call { kind: CallKind::Helper, imm, .. } => {
                    let mut v = at(next) & !CALLER_SAVED;
                    match helpers.get(i64::from(imm)) {
                        Some(h) => {
                            for (i, a) in h.proto.args.iter().enumerate() {
                                if matches!(a, ArgType::ConstSize | ArgType::ConstSizeOrZero) {
                                    v |= 1 << (i + 1);
                                }
                            }
                            // The tail call index and loop counts decide paths too.
                            if matches!(imm, 12 | 181) {
                                v |= ARGS;
                            }
                        }
                        None => v |= ARGS,
                    }
                    v
                }
                Insn::Call { .. } => at(next) & !CALLER_SAVED | ARGS,
                Insn::Exit => 1,
            };
            if v != inn[slot] {
                inn[slot] = v;
                changed = true;
            }
        }
    }
    inn
}

/// Clears the registers dead at the checkpoint, so stored states do not keep values no later
/// instruction reads.
pub(crate) fn clean(st: &mut State, live: &Liveness) {
    for (i, f) in st.frames.iter_mut().enumerate() {
        for r in 0..NREGS {
            if !live.live(i, r) {
                f.regs[r] = Reg::NOT_INIT;
            }
        }
    }
}

/// A bijection between ids of the old and the current state.
#[derive(Default)]
struct IdMap {
    pairs: Vec<(u32, u32)>,
}

impl IdMap {
    fn check(&mut self, old: u32, cur: u32) -> bool {
        if old == 0 && cur == 0 {
            return true;
        }
        if old == 0 || cur == 0 {
            return false;
        }
        for &(o, c) in &self.pairs {
            if o == old {
                return c == cur;
            }
            if c == cur {
                return false;
            }
        }
        self.pairs.push((old, cur));
        true
    }

    fn check_scalar(&mut self, old: u32, cur: u32) -> bool {
        // An old scalar without links constrains nothing; a current one without an id is
        // linked to nothing, so it only matches an old id never seen before.
        if old == 0 {
            return true;
        }
        if cur == 0 {
            return !self.pairs.iter().any(|&(o, _)| o == old);
        }
        self.check(old, cur)
    }
}

/// How strictly states are compared.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// For pruning: old ranges must contain current ones; dead registers are ignored.
    Covers,
    /// For loop detection: equal.
    Exact,
}

/// Whether the complete stored state `old` covers `cur`: every path from `cur` behaves like
/// one already explored from `old`.
pub(crate) fn covers(old: &State, cur: &State, live: &Liveness) -> bool {
    states_equal(old, cur, live, Mode::Covers)
}

/// Whether `cur` repeats `old` exactly (in its live registers): a loop that makes no progress.
pub(crate) fn looping(old: &State, cur: &State, live: &Liveness) -> bool {
    states_equal(old, cur, live, Mode::Exact)
}

fn states_equal(old: &State, cur: &State, live: &Liveness, mode: Mode) -> bool {
    if old.frames.len() != cur.frames.len()
        || old.lock.is_some() != cur.lock.is_some()
        || old.rcu_lock != cur.rcu_lock
        || old.preempt_off != cur.preempt_off
        || old.refs.len() != cur.refs.len()
    {
        return false;
    }
    let mut ids = IdMap::default();
    if let (Some(a), Some(b)) = (&old.lock, &cur.lock)
        && (a.map != b.map || a.off != b.off || !ids.check(a.id, b.id))
    {
        return false;
    }
    for (a, b) in old.refs.iter().zip(&cur.refs) {
        if !ids.check(a.id, b.id) {
            return false;
        }
    }
    for (i, (fo, fc)) in old.frames.iter().zip(&cur.frames).enumerate() {
        if fo.callsite != fc.callsite || fo.callback_of != fc.callback_of {
            return false;
        }
        for r in 0..NREGS {
            if !live.live(i, r) {
                continue;
            }
            let (ro, rc) = (&fo.regs[r], &fc.regs[r]);
            if mode == Mode::Covers && ro.is_scalar() && rc.is_scalar() && !live.precise(i, r) {
                continue;
            }
            if !reg_safe(ro, rc, &mut ids, mode) {
                return false;
            }
        }
        if !stack_safe(fo, fc, &mut ids, mode) {
            return false;
        }
    }
    true
}

fn reg_safe(old: &Reg, cur: &Reg, ids: &mut IdMap, mode: Mode) -> bool {
    if mode == Mode::Exact {
        return old.ty == cur.ty
            && old.maybe_null == cur.maybe_null
            && old.off == cur.off
            && old.var == cur.var
            && old.range == cur.range
            && old.map == cur.map
            && old.mem_size == cur.mem_size
            && old.btf_id == cur.btf_id
            && old.frameno == cur.frameno
            && old.subprog == cur.subprog
            && old.rdonly == cur.rdonly
            && ids.check_scalar(old.id, cur.id)
            && ids.check_scalar(old.ref_obj_id, cur.ref_obj_id);
    }
    if old.ty == RegType::NotInit {
        return true;
    }
    if old.ty != cur.ty {
        return false;
    }
    match old.ty {
        RegType::NotInit => true,
        RegType::Scalar => ids.check_scalar(old.id, cur.id) && cur.var.is_subset_of(&old.var),
        RegType::Ptr(k) => {
            if old.maybe_null != cur.maybe_null
                || old.rdonly != cur.rdonly
                || old.off != cur.off
                || old.map != cur.map
                || old.mem_size != cur.mem_size
                || old.btf_id != cur.btf_id
                || old.frameno != cur.frameno
                || old.subprog != cur.subprog
            {
                return false;
            }
            if k.is_pkt() {
                if old.range < 0 || cur.range < 0 {
                    if old.range != cur.range {
                        return false;
                    }
                } else if old.range > cur.range {
                    return false;
                }
            }
            cur.var.is_subset_of(&old.var)
                && ids.check(old.id, cur.id)
                && ids.check(old.ref_obj_id, cur.ref_obj_id)
        }
    }
}

fn stack_safe(old: &Frame, cur: &Frame, ids: &mut IdMap, mode: Mode) -> bool {
    let n = old.stack.len().max(cur.stack.len());
    for i in 0..n {
        let so = old.stack.get(i).copied().unwrap_or(StackSlot::INVALID);
        let sc = cur.stack.get(i).copied().unwrap_or(StackSlot::INVALID);
        if mode == Mode::Exact {
            if so.bytes != sc.bytes {
                return false;
            }
            if so.has_spill() && !reg_safe(&so.spilled, &sc.spilled, ids, mode) {
                return false;
            }
            continue;
        }
        for b in 0..8 {
            let (o, c) = (so.bytes[b], sc.bytes[b]);
            match o {
                ByteKind::Invalid => {}
                ByteKind::Misc => {
                    if c == ByteKind::Invalid {
                        return false;
                    }
                    // A spilled scalar or a zero is "some value": covered by misc. A spilled
                    // pointer is not.
                    if c == ByteKind::Spill && !sc.spilled.is_scalar() {
                        return false;
                    }
                }
                ByteKind::Zero => {
                    if c != ByteKind::Zero
                        && !(c == ByteKind::Spill && sc.spilled.is_const(0) && sc.is_full_spill())
                    {
                        return false;
                    }
                }
                ByteKind::Spill => {
                    if c != ByteKind::Spill {
                        // A spilled scalar that covers everything matches misc/zero bytes.
                        if so.spilled.is_scalar() && so.spilled.var == crate::bounds::Scalar::unknown() && c != ByteKind::Invalid {
                            continue;
                        }
                        return false;
                    }
                }
            }
        }
        if so.has_spill() && sc.has_spill() && !reg_safe(&so.spilled, &sc.spilled, ids, mode) {
            return false;
        }
    }
    true
}
