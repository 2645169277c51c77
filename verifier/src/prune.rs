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
use crate::state::{ByteKind, Frame, NREGS, Reg, RegType, StackSlot, State};

/// Which registers are live, and which of those precise, at a checkpoint, per frame.
pub(crate) struct Liveness {
    /// Frames described (frames beyond [`MAX_FRAMES`] count as all live and precise).
    n: usize,
    /// Per frame (main first): bitmask of live registers r0..r10.
    regs: [u16; MAX_FRAMES],
    /// Per frame: bitmask of registers whose scalar value must be compared.
    precise: [u16; MAX_FRAMES],
    /// Per frame: bitmask of stack slots whose spilled scalars must be compared.
    precise_slots: [u64; MAX_FRAMES],
}

/// Frames a [`Liveness`] describes without allocating (the kernel allows 8).
const MAX_FRAMES: usize = 16;

impl Liveness {
    /// Liveness of `st`'s frames at slot `insn`: the current frame's registers live before
    /// `insn`, the callers' registers live after their call instructions.
    pub(crate) fn at(v: &Verifier<'_>, st: &State, insn: usize) -> Liveness {
        let n = st.frames.len();
        let mut l = Liveness {
            n: n.min(MAX_FRAMES),
            regs: [0x7ff; MAX_FRAMES],
            precise: [0x7ff; MAX_FRAMES],
            precise_slots: [u64::MAX; MAX_FRAMES],
        };
        for i in 0..l.n {
            let at = if i + 1 == n { insn } else { st.frames[i + 1].callsite + 1 };
            let mut m = v.cfg.live_in.get(at).copied().unwrap_or(0x7ff);
            let p = v.precise_in.get(at).copied().unwrap_or(Prec { regs: 0x7ff, slots: u64::MAX });
            let mut pr = p.regs;
            if i + 1 < n {
                // The call returns r0 and clobbers r1-r5: only r6-r9 (and r10) carry over.
                m &= !0x3f;
                pr &= !0x3f;
            }
            l.regs[i] = m | 1 << 10;
            l.precise[i] = pr;
            // A caller's stack may be read by its callees through pointers: all compared.
            l.precise_slots[i] = if i + 1 == n { p.slots } else { u64::MAX };
        }
        l
    }

    fn live(&self, frame: usize, r: usize) -> bool {
        self.regs[..self.n].get(frame).is_none_or(|m| m & (1 << r) != 0)
    }

    fn precise(&self, frame: usize, r: usize) -> bool {
        self.precise[..self.n].get(frame).is_none_or(|m| m & (1 << r) != 0)
    }

    /// The stack slots of frame `frame` whose spilled scalars must be compared.
    fn precise_slots(&self, frame: usize) -> u64 {
        self.precise_slots[..self.n].get(frame).copied().unwrap_or(u64::MAX)
    }
}

/// What must be compared exactly at a slot: registers, and the current frame's stack slots
/// (bit `i` = slot `i`, bytes `-(i+1)*8 .. -i*8`) whose spilled scalars may be filled back
/// and decide something.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Prec {
    /// Registers r0..r10.
    pub regs: u16,
    /// Stack slots 0..64.
    pub slots: u64,
}

/// What the walk has learned about conditional jumps so far, for [`precision_in`].
#[derive(Clone, Debug, Default)]
pub(crate) struct JumpHints {
    /// Per slot: a scalar comparison there was decided by known values.
    pub decided: Vec<bool>,
    /// Per slot: the registers and stack slots of the current frame that shared an id with
    /// an operand of the comparison there (its refinement reaches them).
    pub linked: Vec<(u16, u64)>,
}

/// The stack slots bytes `off .. off + size` from the frame pointer touch.
fn fp_slots(off: i16, size: usize) -> u64 {
    let lo = i64::from(off);
    let hi = lo + size as i64 - 1;
    if lo < -512 || hi >= 0 {
        return u64::MAX;
    }
    let first = ((-hi - 1) / 8) as u32;
    let last = ((-lo - 1) / 8) as u32;
    (first..=last.min(63)).fold(0, |m, i| m | 1 << i)
}

/// Per slot, the registers and stack slots whose value may decide something later (see the
/// module docs): a backward may-analysis over the program's control flow, iterated to a
/// fixpoint. Stack slots are followed through spills and fills at fixed offsets from r10;
/// memory reached any other way is assumed to be any stack slot.
///
/// A conditional jump makes its operands precise only where `hints` says a scalar comparison
/// there was decided by known values on some path so far (the kernel marks precision exactly
/// then), or where the comparison refines registers linked to an operand by id that are
/// precise afterwards; `None` treats every jump as decided.
pub(crate) fn precision_in(
    prog: &bpflab_vm::Program,
    cfg: &crate::cfg::Cfg,
    helpers: &bpflab_vm::helpers::HelperRegistry,
    hints: Option<&JumpHints>,
) -> Vec<Prec> {
    use bpflab_vm::helpers::ArgType;
    use bpflab_vm::isa::{AluOp, CallKind, Insn, Operand, Reg as R};
    const ARGS: u16 = 0b11_1110;
    const CALLER_SAVED: u16 = 0b11_1111;
    let n = cfg.slots;
    let ptrs = maybe_pointers(prog, cfg, helpers);
    // The main program's r0 matters at exit only where the program type checks it; a
    // subprogram's goes back to its caller.
    let main_end = cfg.subprogs.get(1).map_or(n, |s| s.start);
    let main_r0 =
        u16::from(crate::call::return_value_checked(prog.prog_type, prog.expected_attach_type));
    let mut inn = vec![Prec::default(); n];
    let bit = |r: R| 1u16 << r.idx();
    let mut changed = true;
    while changed {
        changed = false;
        for slot in (0..n).rev() {
            let Some(&ins) = cfg.insn(prog, slot) else { continue };
            let next = slot + ins.slots();
            let at = |s: usize| inn.get(s).copied().unwrap_or_default();
            let out = at(next);
            let target = |off: i64| at(crate::check::jump_target(slot, off));
            let regs = |r: u16| Prec { regs: r, slots: out.slots };
            let v = match ins {
                Insn::Alu { op, dst, src, .. } => {
                    let s = match src {
                        Operand::Reg(r) => bit(r),
                        Operand::Imm(_) => 0,
                    };
                    if op == AluOp::Mov || op.is_movsx() {
                        let mut v = out.regs & !bit(dst);
                        if out.regs & bit(dst) != 0 {
                            v |= s;
                        }
                        regs(v)
                    } else {
                        // Pointer arithmetic needs the scalar operand's exact bounds; scalar
                        // arithmetic passes precision from the result to both operands.
                        let p = ptrs[slot];
                        let mut v = out.regs;
                        if p & bit(dst) != 0 || out.regs & bit(dst) != 0 {
                            v |= s;
                        }
                        if s & p != 0 {
                            v |= bit(dst);
                        }
                        regs(v)
                    }
                }
                Insn::Store { size, dst, off, src } => {
                    let mut v = out;
                    if dst == R::R10 {
                        let sl = fp_slots(off, size.bytes());
                        if let Operand::Reg(r) = src
                            && out.slots & sl != 0
                        {
                            v.regs |= bit(r);
                        }
                        if size.bytes() == 8 && off % 8 == 0 {
                            v.slots &= !sl;
                        }
                    } else if let Operand::Reg(r) = src
                        && out.slots != 0
                    {
                        // It may be a store to the stack through another pointer.
                        v.regs |= bit(r);
                    }
                    v
                }
                Insn::Load { dst, src, off, size, .. } => {
                    let mut v = Prec { regs: out.regs & !bit(dst), slots: out.slots };
                    if out.regs & bit(dst) != 0 {
                        v.slots |=
                            if src == R::R10 { fp_slots(off, size.bytes()) } else { u64::MAX };
                    }
                    v
                }
                Insn::Neg { .. } | Insn::Endian { .. } => out,
                Insn::Atomic { src, .. } => Prec { regs: out.regs | bit(src), slots: u64::MAX },
                Insn::AddrSpaceCast { dst, src, .. } => regs(out.regs & !bit(dst) | bit(src)),
                Insn::LdImm64 { dst, .. } => regs(out.regs & !bit(dst)),
                Insn::LdAbs { .. } => regs(out.regs & !CALLER_SAVED),
                Insn::LdInd { src, .. } => regs(out.regs & !CALLER_SAVED | bit(src)),
                Insn::Ja { off } => target(i64::from(off)),
                Insn::JaLong { imm } => target(i64::from(imm)),
                Insn::Jump { dst, src, off, .. } => {
                    let s = match src {
                        Operand::Reg(r) => bit(r),
                        Operand::Imm(_) => 0,
                    };
                    let t = target(i64::from(off));
                    let after = Prec { regs: out.regs | t.regs, slots: out.slots | t.slots };
                    let needed = hints.is_none_or(|h| {
                        h.decided.get(slot).copied().unwrap_or(true)
                            || h.linked.get(slot).is_some_and(|&(r, sl)| {
                                after.regs & r != 0 || after.slots & sl != 0
                            })
                    });
                    // `dst <cond> src`: when either register is precise after the jump, the
                    // kernel's backtracking makes both precise (backtrack_insn, BPF_X).
                    let x_form = s != 0 && after.regs & (bit(dst) | s) != 0;
                    let ops = if needed || x_form { bit(dst) | s } else { 0 };
                    Prec { regs: out.regs | t.regs | ops, slots: out.slots | t.slots }
                }
                Insn::Call { kind: CallKind::Helper, imm, .. } => {
                    let mut v = regs(out.regs & !CALLER_SAVED);
                    match helpers.proto(i64::from(imm)) {
                        Some(h) => {
                            for (i, a) in h.args.iter().enumerate() {
                                if matches!(a, ArgType::ConstSize | ArgType::ConstSizeOrZero) {
                                    v.regs |= 1 << (i + 1);
                                }
                                if matches!(a, ArgType::PtrToFunc) {
                                    // A callback may read this frame's stack.
                                    v.slots = u64::MAX;
                                }
                            }
                            // The tail call index and loop counts decide paths too.
                            if matches!(imm, 12 | 181) {
                                v.regs |= ARGS;
                            }
                        }
                        None => v.regs |= ARGS,
                    }
                    v
                }
                // Kfuncs taking kernel objects and scalars: no argument decides anything.
                Insn::Call { kind: CallKind::Kfunc, imm, .. } if crate::kfunc::plain(imm) => {
                    regs(out.regs & !CALLER_SAVED)
                }
                // The callee may read this frame's stack through its arguments.
                Insn::Call { .. } => {
                    Prec { regs: out.regs & !CALLER_SAVED | ARGS, slots: u64::MAX }
                }
                Insn::Exit => Prec { regs: if slot < main_end { main_r0 } else { 1 }, slots: 0 },
            };
            if v != inn[slot] {
                inn[slot] = v;
                changed = true;
            }
        }
    }
    inn
}

/// Per slot, the registers that may hold a pointer before the instruction on some path: a
/// forward may-analysis (loads and calls that can return pointers count as pointers).
fn maybe_pointers(
    prog: &bpflab_vm::Program,
    cfg: &crate::cfg::Cfg,
    helpers: &bpflab_vm::helpers::HelperRegistry,
) -> Vec<u16> {
    use bpflab_vm::helpers::RetType;
    use bpflab_vm::isa::{AluOp, CallKind, Insn, Operand, PseudoSrc, Reg as R};
    const FP_BIT: u16 = 1 << 10;
    /// Per slot: registers that may hold a pointer, registers that may hold the unmodified
    /// context pointer, registers that may hold a modified one, and stack slots (of the
    /// current frame) that may hold a pointer.
    #[derive(Clone, Copy, Default, PartialEq, Eq)]
    struct F {
        ptr: u16,
        ctx: u16,
        ctx_mod: u16,
        slots: u64,
    }
    impl F {
        fn join(self, o: F) -> F {
            F {
                ptr: self.ptr | o.ptr,
                ctx: self.ctx | o.ctx,
                ctx_mod: self.ctx_mod | o.ctx_mod,
                slots: self.slots | o.slots,
            }
        }
    }
    let layout = bpflab_vm::ctx::layout::layout(prog.prog_type);
    // Whether a load of `size` bytes at `off` of the unmodified context may give a pointer.
    let ctx_field_ptr = |off: i16, size: usize| -> bool {
        let Some(l) = layout else { return true };
        let Ok(off) = u32::try_from(off) else { return true };
        match l.field_at(off) {
            Some(f) => !f.yields.is_scalar() || size == 8 && f.len >= 8 && off % 8 != 0,
            None => true,
        }
    };
    let n = cfg.slots;
    let mut at = vec![F::default(); n];
    let mut reached = vec![false; n];
    let bit = |r: R| 1u16 << r.idx();
    let mut work: Vec<(usize, F)> = Vec::new();
    for (i, sp) in cfg.subprogs.iter().enumerate() {
        // r1-r5 may be pointers at any function's entry; r1 is the context at the main one.
        let f = if i == 0 {
            F { ptr: 0b10 | FP_BIT, ctx: 0b10, ctx_mod: 0, slots: 0 }
        } else {
            F { ptr: 0b11_1110 | FP_BIT, ctx: 0, ctx_mod: 0b11_1110, slots: 0 }
        };
        work.push((sp.start, f));
    }
    while let Some((slot, m)) = work.pop() {
        if slot >= n {
            continue;
        }
        let old = at[slot];
        if reached[slot] && old.join(m) == old {
            continue;
        }
        reached[slot] = true;
        at[slot] = old.join(m);
        let f = at[slot];
        let Some(&ins) = cfg.insn(prog, slot) else { continue };
        let next = slot + ins.slots();
        let target = |off: i64| crate::check::jump_target(slot, off);
        let set = |m: u16, r: R, p: bool| if p { m | bit(r) } else { m & !bit(r) };
        let clear = |f: F, r: R| F {
            ptr: f.ptr & !bit(r),
            ctx: f.ctx & !bit(r),
            ctx_mod: f.ctx_mod & !bit(r),
            slots: f.slots,
        };
        match ins {
            Insn::Alu { op, dst, src, .. } => {
                let out = match (op, src) {
                    (AluOp::Mov, Operand::Reg(r)) => F {
                        ptr: set(f.ptr, dst, f.ptr & bit(r) != 0),
                        ctx: set(f.ctx, dst, f.ctx & bit(r) != 0),
                        ctx_mod: set(f.ctx_mod, dst, f.ctx_mod & bit(r) != 0),
                        slots: f.slots,
                    },
                    (AluOp::Mov, Operand::Imm(_)) => clear(f, dst),
                    _ if op.is_movsx() => clear(f, dst),
                    _ => {
                        let sp = match src {
                            Operand::Reg(r) => f.ptr & bit(r) != 0,
                            Operand::Imm(_) => false,
                        };
                        let sc = match src {
                            Operand::Reg(r) => (f.ctx | f.ctx_mod) & bit(r) != 0,
                            Operand::Imm(_) => false,
                        };
                        let dc = (f.ctx | f.ctx_mod) & bit(dst) != 0;
                        F {
                            ptr: set(f.ptr, dst, f.ptr & bit(dst) != 0 || sp),
                            ctx: f.ctx & !bit(dst),
                            ctx_mod: set(f.ctx_mod, dst, dc || sc),
                            slots: f.slots,
                        }
                    }
                };
                work.push((next, out));
            }
            Insn::LdImm64 { dst, src, .. } => {
                let mut o = clear(f, dst);
                o.ptr = set(o.ptr, dst, src != PseudoSrc::Imm);
                work.push((next, o));
            }
            Insn::Load { dst, src, off, size, .. } => {
                let p = if src == R::R10 {
                    size.bytes() == 8 && fp_slots(off, 8) & f.slots != 0
                } else if f.ctx_mod & bit(src) != 0 {
                    size.bytes() >= 4
                } else if f.ctx & bit(src) != 0 {
                    // Context fields such as `data` are pointers loaded as u32.
                    ctx_field_ptr(off, size.bytes())
                        || (f.ptr & !f.ctx & bit(src) != 0 && size.bytes() == 8)
                } else {
                    // Fields of kernel objects may be pointers; map values and packets hold
                    // only numbers.
                    size.bytes() == 8
                };
                let mut o = clear(f, dst);
                o.ptr = set(o.ptr, dst, p);
                // A filled pointer may be the context.
                if src == R::R10 && p {
                    o.ctx_mod |= bit(dst);
                }
                work.push((next, o));
            }
            Insn::Store { dst, off, size, src } => {
                let mut o = f;
                if dst == R::R10 {
                    let sl = fp_slots(off, size.bytes());
                    match src {
                        Operand::Reg(r) if f.ptr & bit(r) != 0 => o.slots |= sl,
                        _ if size.bytes() == 8 && off % 8 == 0 => o.slots &= !sl,
                        _ => {}
                    }
                } else if let Operand::Reg(r) = src
                    && f.ptr & bit(r) != 0
                {
                    // A pointer stored through another pointer may land on this stack.
                    o.slots = u64::MAX;
                }
                work.push((next, o));
            }
            Insn::Atomic { src, .. } => {
                let mut o = clear(f, src);
                o.ptr |= bit(src);
                o.ctx_mod |= bit(src);
                o.slots = u64::MAX;
                work.push((next, o));
            }
            Insn::LdAbs { .. } | Insn::LdInd { .. } => {
                work.push((
                    next,
                    F {
                        ptr: f.ptr & !0b11_1111,
                        ctx: f.ctx & !0b11_1111,
                        ctx_mod: f.ctx_mod & !0b11_1111,
                        slots: f.slots,
                    },
                ));
            }
            Insn::Ja { off } => work.push((target(i64::from(off)), f)),
            Insn::JaLong { imm } => work.push((target(i64::from(imm)), f)),
            Insn::Jump { off, .. } => {
                work.push((next, f));
                work.push((target(i64::from(off)), f));
            }
            Insn::Call { kind, imm, .. } => {
                let r0 = match kind {
                    CallKind::Helper => helpers
                        .proto(i64::from(imm))
                        .is_none_or(|h| !matches!(h.ret, RetType::Integer | RetType::Void)),
                    CallKind::Kfunc => !crate::kfunc::returns_scalar(imm),
                    _ => true,
                };
                let keeps_stack =
                    kind == CallKind::Helper || kind == CallKind::Kfunc && crate::kfunc::plain(imm);
                let slots = if keeps_stack { f.slots } else { u64::MAX };
                let o = F {
                    ptr: (f.ptr & !0b11_1111) | u16::from(r0),
                    ctx: f.ctx & !0b11_1111,
                    ctx_mod: (f.ctx_mod & !0b11_1111) | u16::from(r0 && kind != CallKind::Helper),
                    slots,
                };
                work.push((next, o));
            }
            Insn::Exit => {}
            _ => work.push((next, f)),
        }
    }
    at.into_iter().map(|f| f.ptr).collect()
}

/// A bijection between ids of the old and the current state.
#[derive(Default)]
struct IdMap {
    pairs: Vec<(u32, u32)>,
    /// Fresh ids given to scalars without one, counting down from the top of the id space.
    tmp: u32,
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
        // A scalar without an id is linked to nothing: it gets a fresh id of its own, so it
        // matches only an id not linked to anything else (the kernel's check_scalar_ids).
        let mut fresh = || {
            self.tmp = self.tmp.wrapping_sub(1);
            self.tmp
        };
        let old = if old == 0 { fresh() } else { old };
        let cur = if cur == 0 { fresh() } else { cur };
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
    /// For iterator loop convergence (`RANGE_WITHIN`): like `Covers`, but imprecise scalars
    /// are compared too and stack slot kinds must be equal.
    RangeWithin,
}

/// Whether the complete stored state `old` covers `cur`: every path from `cur` behaves like
/// one already explored from `old`.
pub(crate) fn covers(old: &State, cur: &State, live: &Liveness) -> bool {
    states_equal(old, cur, live, Mode::Covers)
}

/// Whether `old` covers `cur` range-wise, precise or not (`RANGE_WITHIN`): an iterator
/// loop's iteration that converged on an earlier one (kfunc.rs).
pub(crate) fn range_within(old: &State, cur: &State, live: &Liveness) -> bool {
    states_equal(old, cur, live, Mode::RangeWithin)
}

/// Whether `cur` repeats `old` exactly (every register): a loop that makes no progress.
pub(crate) fn looping(old: &State, cur: &State, live: &Liveness) -> bool {
    states_equal(old, cur, live, Mode::Exact)
}

fn states_equal(old: &State, cur: &State, live: &Liveness, mode: Mode) -> bool {
    thread_local! {
        /// The id map's storage, reused across comparisons (the kernel's `idmap_scratch`).
        static SCRATCH: std::cell::RefCell<Vec<(u32, u32)>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    SCRATCH.with(|scratch| {
        let mut pairs = scratch.take();
        pairs.clear();
        let mut ids = IdMap { pairs, tmp: 0 };
        let equal = states_equal_with(old, cur, live, mode, &mut ids);
        scratch.replace(ids.pairs);
        equal
    })
}

fn states_equal_with(
    old: &State,
    cur: &State,
    live: &Liveness,
    mode: Mode,
    ids: &mut IdMap,
) -> bool {
    if old.frames.len() != cur.frames.len()
        || old.lock.is_some() != cur.lock.is_some()
        || old.rcu_lock != cur.rcu_lock
        || old.preempt_off != cur.preempt_off
        || old.refs.len() != cur.refs.len()
    {
        return false;
    }
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
            if mode != Mode::Exact && !live.live(i, r) {
                continue;
            }
            let (ro, rc) = (&fo.regs[r], &fc.regs[r]);
            if mode == Mode::Covers && ro.is_scalar() && rc.is_scalar() && !live.precise(i, r) {
                continue;
            }
            if !reg_safe(ro, rc, ids, mode) {
                return false;
            }
        }
        let slots = live.precise_slots(i);
        if !stack_safe(fo, fc, ids, mode, slots) {
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
            && old.trusted == cur.trusted
            && ids.check_scalar(old.id, cur.id)
            && ids.check_scalar(old.ref_obj_id, cur.ref_obj_id);
    }
    if old.ty == RegType::NotInit {
        return mode == Mode::Covers || cur.ty == RegType::NotInit;
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
                || old.trusted != cur.trusted
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

fn stack_safe(old: &Frame, cur: &Frame, ids: &mut IdMap, mode: Mode, precise: u64) -> bool {
    let n = old.stack.len().max(cur.stack.len());
    for i in 0..n {
        let so = old.stack.get(i).copied().unwrap_or(StackSlot::INVALID);
        let sc = cur.stack.get(i).copied().unwrap_or(StackSlot::INVALID);
        if mode == Mode::Exact {
            if so.bytes != sc.bytes {
                return false;
            }
            if so.bytes[0] == ByteKind::Dynptr
                && !crate::dynptr::slot_safe(&so, &sc, |o, c| ids.check(o, c))
            {
                return false;
            }
            if so.bytes[0] == ByteKind::Iter
                && !crate::kfunc::iter_slot_safe(&so, &sc, |o, c| ids.check(o, c))
            {
                return false;
            }
            if so.has_spill() && !reg_safe(&so.spilled, &sc.spilled, ids, mode) {
                return false;
            }
            continue;
        }
        if mode == Mode::RangeWithin && so.bytes != sc.bytes {
            return false;
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
                ByteKind::Dynptr => {
                    if !crate::dynptr::slot_safe(&so, &sc, |o, c| ids.check(o, c)) {
                        return false;
                    }
                }
                ByteKind::Iter => {
                    if !crate::kfunc::iter_slot_safe(&so, &sc, |o, c| ids.check(o, c)) {
                        return false;
                    }
                }
                ByteKind::Spill => {
                    if c != ByteKind::Spill {
                        // A spilled scalar that covers everything matches misc/zero bytes.
                        if so.spilled.is_scalar()
                            && so.spilled.var == crate::bounds::Scalar::unknown()
                            && c != ByteKind::Invalid
                        {
                            continue;
                        }
                        return false;
                    }
                }
            }
        }
        if so.has_spill() && sc.has_spill() {
            let imprecise = mode == Mode::Covers && i < 64 && precise & (1 << i) == 0;
            if imprecise && so.spilled.is_scalar() && sc.spilled.is_scalar() {
                continue;
            }
            if !reg_safe(&so.spilled, &sc.spilled, ids, mode) {
                return false;
            }
        }
    }
    true
}
