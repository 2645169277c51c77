//! The verifier's scalar domain: a [`Tnum`] plus signed and unsigned bounds on the full 64-bit
//! value and on its low 32 bits, kept in step as the kernel keeps them (`reg_bounds_sync`),
//! with the kernel's transfer functions for ALU instructions and conditional jumps.
//!
//! Every transfer function is sound (the result holds every concrete result) and follows the
//! kernel's precision: where the kernel gives up (division, shifts by unknown amounts,
//! multiplication that may overflow) the result is unknown too, so that the bounds printed in
//! the log and the decisions taken from them are the kernel's.
//!
//! The model is Linux 6.18's, which differs from 6.12's source in places: NEG and byte swaps
//! are tracked, multiplication keeps signed bounds, a sum (difference) whose every case wraps
//! keeps its range, sign extension works from the s32 bounds, and a tnum sharing a single
//! value with the unsigned range makes the scalar that constant. `tests/bounds.rs` checks the
//! printed text of every operation against the running kernel on random programs.

use crate::tnum::Tnum;
use bpflab_vm::isa::{AluOp, JmpCond};

/// A scalar register's value: bit-level knowledge and four pairs of bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Scalar {
    /// Bit-level knowledge (the kernel's `var_off`).
    pub var_off: Tnum,
    /// Signed 64-bit minimum.
    pub smin: i64,
    /// Signed 64-bit maximum.
    pub smax: i64,
    /// Unsigned 64-bit minimum.
    pub umin: u64,
    /// Unsigned 64-bit maximum.
    pub umax: u64,
    /// Signed minimum of the low 32 bits.
    pub s32_min: i32,
    /// Signed maximum of the low 32 bits.
    pub s32_max: i32,
    /// Unsigned minimum of the low 32 bits.
    pub u32_min: u32,
    /// Unsigned maximum of the low 32 bits.
    pub u32_max: u32,
}

impl Default for Scalar {
    fn default() -> Self {
        Scalar::unknown()
    }
}

/// The comparison a conditional jump's outcome establishes, with the negation of JSET that
/// the instruction set lacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cond {
    Jmp(JmpCond),
    /// `a & b == 0` (the fall-through side of JSET).
    NotSet,
}

/// The condition of the other side of a branch: `a OP b` false is `a REV(OP) b` true.
const fn negate(c: JmpCond) -> Cond {
    Cond::Jmp(match c {
        JmpCond::Eq => JmpCond::Ne,
        JmpCond::Ne => JmpCond::Eq,
        JmpCond::Set => return Cond::NotSet,
        JmpCond::Ge => JmpCond::Lt,
        JmpCond::Gt => JmpCond::Le,
        JmpCond::Le => JmpCond::Gt,
        JmpCond::Lt => JmpCond::Ge,
        JmpCond::Sge => JmpCond::Slt,
        JmpCond::Sgt => JmpCond::Sle,
        JmpCond::Sle => JmpCond::Sgt,
        JmpCond::Slt => JmpCond::Sge,
    })
}

/// The condition `b OP' a` equivalent to `a OP b`.
pub const fn flip(c: JmpCond) -> JmpCond {
    match c {
        JmpCond::Ge => JmpCond::Le,
        JmpCond::Gt => JmpCond::Lt,
        JmpCond::Le => JmpCond::Ge,
        JmpCond::Lt => JmpCond::Gt,
        JmpCond::Sge => JmpCond::Sle,
        JmpCond::Sgt => JmpCond::Slt,
        JmpCond::Sle => JmpCond::Sge,
        JmpCond::Slt => JmpCond::Sgt,
        other => other,
    }
}

impl Scalar {
    /// Nothing known.
    #[inline]
    pub const fn unknown() -> Scalar {
        Scalar {
            var_off: Tnum::UNKNOWN,
            smin: i64::MIN,
            smax: i64::MAX,
            umin: 0,
            umax: u64::MAX,
            s32_min: i32::MIN,
            s32_max: i32::MAX,
            u32_min: 0,
            u32_max: u32::MAX,
        }
    }

    /// The constant `v` (the kernel's `__mark_reg_known`).
    #[inline]
    pub const fn konst(v: u64) -> Scalar {
        Scalar {
            var_off: Tnum::konst(v),
            smin: v as i64,
            smax: v as i64,
            umin: v,
            umax: v,
            s32_min: v as u32 as i32,
            s32_max: v as u32 as i32,
            u32_min: v as u32,
            u32_max: v as u32,
        }
    }

    /// The zero-extended 32-bit constant `v`.
    #[inline]
    pub const fn konst32(v: u32) -> Scalar {
        Scalar::konst(v as u64)
    }

    /// A scalar in `umin..=umax` (unsigned), synced.
    pub fn urange(umin: u64, umax: u64) -> Scalar {
        let mut s = Scalar::unknown();
        s.umin = umin;
        s.umax = umax;
        s.sync();
        s
    }

    /// A scalar in `smin..=smax` (signed), synced.
    pub fn srange(smin: i64, smax: i64) -> Scalar {
        let mut s = Scalar::unknown();
        s.smin = smin;
        s.smax = smax;
        s.sync();
        s
    }

    /// A scalar whose bits are known as `t` says, synced.
    pub fn from_tnum(t: Tnum) -> Scalar {
        let mut s = Scalar::unknown();
        s.var_off = t;
        s.sync();
        s
    }

    /// True when the whole 64-bit value is known.
    #[inline]
    pub const fn is_const(&self) -> bool {
        self.var_off.is_const()
    }

    /// The value, when it is known.
    #[inline]
    pub const fn const_value(&self) -> Option<u64> {
        if self.var_off.is_const() { Some(self.var_off.value) } else { None }
    }

    /// True when the low 32 bits are known.
    #[inline]
    pub const fn is_const32(&self) -> bool {
        self.var_off.subreg_is_const()
    }

    /// The low 32 bits, when they are known.
    #[inline]
    pub const fn const_value32(&self) -> Option<u32> {
        if self.var_off.subreg_is_const() { Some(self.var_off.value as u32) } else { None }
    }

    /// True when the value (`is32`: its low 32 bits) is known (the kernel's `is_reg_const`).
    #[inline]
    pub const fn is_const_width(&self, is32: bool) -> bool {
        if is32 { self.is_const32() } else { self.is_const() }
    }

    /// True when nothing at all is known (prints as `scalar()`).
    pub fn is_unknown(&self) -> bool {
        *self == Scalar::unknown()
    }

    /// Forgets everything (the kernel's `__mark_reg_unknown` for the value part).
    #[inline]
    pub fn mark_unknown(&mut self) {
        *self = Scalar::unknown();
    }

    /// Sets the low 32 bits to the constant `v`, keeping what is known of the high bits (the
    /// kernel's `__mark_reg32_known`; the 64-bit bounds are left for a later sync).
    #[inline]
    pub fn mark_known32(&mut self, v: u32) {
        self.var_off = self.var_off.const_subreg(v);
        self.s32_min = v as i32;
        self.s32_max = v as i32;
        self.u32_min = v;
        self.u32_max = v;
    }

    /// Forgets all bounds (not the tnum).
    #[inline]
    pub fn mark_unbounded(&mut self) {
        self.mark_unbounded64();
        self.mark_unbounded32();
    }

    #[inline]
    fn mark_unbounded64(&mut self) {
        self.smin = i64::MIN;
        self.smax = i64::MAX;
        self.umin = 0;
        self.umax = u64::MAX;
    }

    #[inline]
    fn mark_unbounded32(&mut self) {
        self.s32_min = i32::MIN;
        self.s32_max = i32::MAX;
        self.u32_min = 0;
        self.u32_max = u32::MAX;
    }

    /// Tightens the 32-bit bounds with what the tnum's low half says.
    #[inline]
    fn update_bounds32(&mut self) {
        let t = self.var_off.subreg();
        let (v, m) = (t.value as u32, t.mask as u32);
        self.s32_min = self.s32_min.max((v | (m & 0x8000_0000)) as i32);
        self.s32_max = self.s32_max.min((v | (m & 0x7fff_ffff)) as i32);
        self.u32_min = self.u32_min.max(v);
        self.u32_max = self.u32_max.min(v | m);
    }

    /// Tightens the 64-bit bounds with what the tnum says; when the tnum and the unsigned
    /// range share a single value, the scalar is that constant.
    #[inline]
    fn update_bounds64(&mut self) {
        let t = self.var_off;
        self.smin = self.smin.max(t.smin());
        self.smax = self.smax.min(t.smax());
        self.umin = self.umin.max(t.umin());
        self.umax = self.umax.min(t.umax());
        let next = t.step(self.umin);
        let umin_in = t.contains(self.umin);
        if umin_in {
            // The range and the tnum meet only at umin.
            if next > self.umax {
                *self = Scalar::konst(self.umin);
            }
        } else if next == t.umax() || (next <= self.umax && t.step(next) > self.umax) {
            // They meet only at the tnum's largest value, or only at one value inside.
            *self = Scalar::konst(next);
        }
    }

    #[inline]
    fn update_bounds(&mut self) {
        self.update_bounds32();
        self.update_bounds64();
    }

    /// Derives 32-bit bounds from the 64-bit ones and signed from unsigned within 32 bits.
    fn deduce32(&mut self) {
        // The high halves of the u64 (s64) bounds are equal: the low halves form a range.
        if self.umin >> 32 == self.umax >> 32 {
            self.u32_min = self.u32_min.max(self.umin as u32);
            self.u32_max = self.u32_max.min(self.umax as u32);
            if (self.umin as i32) <= (self.umax as i32) {
                self.s32_min = self.s32_min.max(self.umin as i32);
                self.s32_max = self.s32_max.min(self.umax as i32);
            }
        }
        if self.smin >> 32 == self.smax >> 32 {
            if (self.smin as u32) <= (self.smax as u32) {
                self.u32_min = self.u32_min.max(self.smin as u32);
                self.u32_max = self.u32_max.min(self.smax as u32);
            }
            if (self.smin as i32) <= (self.smax as i32) {
                self.s32_min = self.s32_min.max(self.smin as i32);
                self.s32_max = self.s32_max.min(self.smax as i32);
            }
        }
        // High halves are two consecutive numbers and the low halves go from negative to
        // non-negative: the low halves still form an s32 range.
        if ((self.umin >> 32) as u32).wrapping_add(1) == (self.umax >> 32) as u32
            && (self.umin as i32) < 0
            && (self.umax as i32) >= 0
        {
            self.s32_min = self.s32_min.max(self.umin as i32);
            self.s32_max = self.s32_max.min(self.umax as i32);
        }
        if ((self.smin >> 32) as u32).wrapping_add(1) == (self.smax >> 32) as u32
            && (self.smin as i32) < 0
            && (self.smax as i32) >= 0
        {
            self.s32_min = self.s32_min.max(self.smin as i32);
            self.s32_max = self.s32_max.min(self.smax as i32);
        }
        // The u32 range does not cross the s32 sign boundary.
        if (self.u32_min as i32) <= (self.u32_max as i32) {
            self.s32_min = self.s32_min.max(self.u32_min as i32);
            self.s32_max = self.s32_max.min(self.u32_max as i32);
        }
        if (self.s32_min as u32) <= (self.s32_max as u32) {
            self.u32_min = self.u32_min.max(self.s32_min as u32);
            self.u32_max = self.u32_max.min(self.s32_max as u32);
        } else if self.u32_max < self.s32_min as u32 {
            // The u32 range meets only the non-negative part of the s32 range.
            self.s32_min = self.u32_min as i32;
            self.u32_max = self.u32_max.min(self.s32_max as u32);
        } else if (self.s32_max as u32) < self.u32_min {
            // The u32 range meets only the negative part of the s32 range.
            self.s32_max = self.u32_max as i32;
            self.u32_min = self.u32_min.max(self.s32_min as u32);
        }
    }

    /// Derives signed 64-bit bounds from unsigned ones and back.
    fn deduce64(&mut self) {
        if (self.umin as i64) <= (self.umax as i64) {
            self.smin = self.smin.max(self.umin as i64);
            self.smax = self.smax.min(self.umax as i64);
        }
        if (self.smin as u64) <= (self.smax as u64) {
            self.umin = self.umin.max(self.smin as u64);
            self.umax = self.umax.min(self.smax as u64);
        } else if self.umax < self.smin as u64 {
            self.smin = self.umin as i64;
            self.umax = self.umax.min(self.smax as u64);
        } else if (self.smax as u64) < self.umin {
            self.smax = self.umax as i64;
            self.umin = self.umin.max(self.smin as u64);
        }
    }

    /// Tightens the 64-bit bounds with the 32-bit ones (substituting the low halves).
    fn deduce_mixed(&mut self) {
        const HI: u64 = !0xffff_ffffu64;
        let new_umin = (self.umin & HI) | u64::from(self.u32_min);
        let new_umax = (self.umax & HI) | u64::from(self.u32_max);
        self.umin = self.umin.max(new_umin);
        self.umax = self.umax.min(new_umax);
        let new_smin = ((self.smin as u64 & HI) | u64::from(self.u32_min)) as i64;
        let new_smax = ((self.smax as u64 & HI) | u64::from(self.u32_max)) as i64;
        self.smin = self.smin.max(new_smin);
        self.smax = self.smax.min(new_smax);

        if (self.s32_min as u32) <= (self.s32_max as u32) {
            let (lo, hi) = (u64::from(self.s32_min as u32), u64::from(self.s32_max as u32));
            self.umin = self.umin.max((self.umin & HI) | lo);
            self.umax = self.umax.min((self.umax & HI) | hi);
            self.smin = self.smin.max(((self.smin as u64 & HI) | lo) as i64);
            self.smax = self.smax.min(((self.smax as u64 & HI) | hi) as i64);
        }

        // A sign-extended 32-bit value whose low half is known non-negative: the high half
        // cannot be all ones.
        if self.s32_min >= 0 && self.smin >= i64::from(i32::MIN) && self.smax <= i64::from(i32::MAX)
        {
            self.smin = i64::from(self.s32_min);
            self.smax = i64::from(self.s32_max);
            self.umin = self.s32_min as u64;
            self.umax = self.s32_max as u64;
            self.var_off = self.var_off.intersect(Tnum::range(self.smin as u64, self.smax as u64));
        }
    }

    #[inline]
    fn deduce(&mut self) {
        self.deduce32();
        self.deduce64();
        self.deduce_mixed();
    }

    /// Learns tnum bits from the unsigned bounds.
    #[inline]
    fn bound_offset(&mut self) {
        let t64 = self.var_off.intersect(Tnum::range(self.umin, self.umax));
        let t32 =
            t64.subreg().intersect(Tnum::range(u64::from(self.u32_min), u64::from(self.u32_max)));
        self.var_off = t64.clear_subreg().or(t32);
    }

    /// Brings the tnum and the eight bounds in step (the kernel's `reg_bounds_sync`):
    /// bounds from the tnum, 32<->64-bit and signed<->unsigned deductions, tnum bits from
    /// the bounds, bounds from the tnum again. Like the kernel's, one call is not always a
    /// fixpoint: a second may narrow a bound further (it never loses a value).
    pub fn sync(&mut self) {
        self.update_bounds();
        self.deduce();
        self.deduce();
        self.deduce();
        self.bound_offset();
        self.update_bounds();
    }

    /// True when the bounds contradict each other or the tnum (the kernel's
    /// `reg_bounds_sanity_check` conditions); only an unreachable state can be like that.
    pub fn bounds_violation(&self) -> bool {
        if self.umin > self.umax
            || self.smin > self.smax
            || self.u32_min > self.u32_max
            || self.s32_min > self.s32_max
        {
            return true;
        }
        if let Some(v) = self.const_value()
            && (self.umin != v || self.umax != v || self.smin != v as i64 || self.smax != v as i64)
        {
            return true;
        }
        if let Some(v) = self.const_value32()
            && (self.u32_min != v
                || self.u32_max != v
                || self.s32_min != v as i32
                || self.s32_max != v as i32)
        {
            return true;
        }
        false
    }

    /// The kernel's answer to a violated invariant (outside its self-tests): forget the
    /// bounds, keep the tnum.
    fn sanitize(&mut self) {
        if self.bounds_violation() {
            self.mark_unbounded();
        }
    }

    /// Moves the 32-bit bounds into the 64-bit ones after a zero extension.
    fn assign_32_into_64(&mut self) {
        self.umin = u64::from(self.u32_min);
        self.umax = u64::from(self.u32_max);
        if self.s32_min >= 0 && self.s32_max >= 0 {
            self.smin = i64::from(self.s32_min);
            self.smax = i64::from(self.s32_max);
        } else {
            self.smin = 0;
            self.smax = i64::from(u32::MAX);
        }
    }

    /// Zero-extends the low 32 bits into the whole register (what every 32-bit ALU
    /// instruction does to its destination; the kernel's `zext_32_to_64`, without the sync
    /// that follows it).
    #[inline]
    pub fn zext32(&mut self) {
        self.var_off = self.var_off.subreg();
        self.assign_32_into_64();
    }

    /// Applies `self = self OP src` (`is64`: ALU64, else ALU32 with zero extension) as the
    /// kernel's `adjust_scalar_min_max_vals` (and, for moves, `check_alu_op`) does. For an
    /// immediate operand pass `Scalar::konst(imm as i64 as u64)` (the kernel sign-extends
    /// `imm` for both widths).
    ///
    /// Division and modulo (signed or not, even by constants) and shifts whose amount is not
    /// a constant below the width give a wholly unknown value, without the zero extension
    /// of a 32-bit operation (the kernel marks the register unknown and returns). Add, sub,
    /// mul, and, or, xor track both 64- and 32-bit bounds; shifts track what the kernel
    /// tracks; a 32-bit result is zero-extended; everything is synced after.
    ///
    /// For `And`/`Or` with a constant source the kernel first splits a destination in
    /// [-1, 0] into two states (see [`Scalar::fork_on_bitop`]); this function computes one
    /// state.
    pub fn alu(&mut self, op: AluOp, src: &Scalar, is64: bool) {
        match op {
            AluOp::Mov => {
                *self = *src;
                if !is64 {
                    self.zext32();
                    self.sync();
                }
                return;
            }
            AluOp::Movsx8 => return self.movsx(src, 8, is64),
            AluOp::Movsx16 => return self.movsx(src, 16, is64),
            AluOp::Movsx32 => return self.movsx(src, 32, is64),
            _ => {}
        }
        if !Self::computable(op, src, is64) {
            self.mark_unknown();
            return;
        }
        match op {
            AluOp::Add => {
                self.add32(src);
                self.add64(src);
                self.var_off = self.var_off.add(src.var_off);
            }
            AluOp::Sub => {
                self.sub32(src);
                self.sub64(src);
                self.var_off = self.var_off.sub(src.var_off);
            }
            AluOp::Mul => {
                self.var_off = self.var_off.mul(src.var_off);
                self.mul32(src);
                self.mul64(src);
            }
            AluOp::And => {
                self.var_off = self.var_off.and(src.var_off);
                self.and32(src);
                self.and64(src);
            }
            AluOp::Or => {
                self.var_off = self.var_off.or(src.var_off);
                self.or32(src);
                self.or64(src);
            }
            AluOp::Xor => {
                self.var_off = self.var_off.xor(src.var_off);
                self.xor32(src);
                self.xor64(src);
            }
            AluOp::Lsh => {
                if is64 {
                    self.lsh64(src)
                } else {
                    self.lsh32(src)
                }
            }
            AluOp::Rsh => {
                if is64 {
                    self.rsh64(src)
                } else {
                    self.rsh32(src)
                }
            }
            AluOp::Arsh => {
                if is64 {
                    self.arsh64(src)
                } else {
                    self.arsh32(src)
                }
            }
            _ => unreachable!("filtered by computable()"),
        }
        if !is64 {
            self.zext32();
        }
        self.sync();
    }

    /// The kernel's `is_safe_to_compute_dst_reg_range`: which operations it tracks bounds
    /// for (division and modulo never; shifts only by a constant below the width).
    fn computable(op: AluOp, src: &Scalar, is64: bool) -> bool {
        match op {
            AluOp::Add | AluOp::Sub | AluOp::Mul | AluOp::And | AluOp::Or | AluOp::Xor => true,
            AluOp::Lsh | AluOp::Rsh | AluOp::Arsh => {
                let src_const = if is64 {
                    src.var_off.is_const() && src.smin == src.smax && src.umin == src.umax
                } else {
                    src.var_off.subreg_is_const()
                        && src.s32_min == src.s32_max
                        && src.u32_min == src.u32_max
                };
                src_const && src.umax < if is64 { 64 } else { 32 }
            }
            _ => false,
        }
    }

    /// The kernel's `maybe_fork_scalars`: for `And`/`Or` with a constant source, a
    /// destination in [-1, 0] is split into the two constants. Returns `Some(is32)` when the
    /// kernel splits (`is32`: on the low 32 bits, `s32` in [-1, 0]); the caller then explores
    /// a state whose destination is 0 ([`Scalar::konst`] or, for 32, [`Scalar::mark_known32`]
    /// on a copy) from the same instruction, and continues with -1 in this one.
    pub fn fork_on_bitop(&self, op: AluOp, src: &Scalar) -> Option<bool> {
        if !matches!(op, AluOp::And | AluOp::Or) || !src.is_const() {
            return None;
        }
        if self.smin == -1 && self.smax == 0 {
            Some(false)
        } else if self.s32_min == -1 && self.s32_max == 0 {
            Some(true)
        } else {
            None
        }
    }

    fn add32(&mut self, src: &Scalar) {
        match (self.s32_min.checked_add(src.s32_min), self.s32_max.checked_add(src.s32_max)) {
            (Some(lo), Some(hi)) => (self.s32_min, self.s32_max) = (lo, hi),
            _ => (self.s32_min, self.s32_max) = (i32::MIN, i32::MAX),
        }
        let (lo, lo_ov) = self.u32_min.overflowing_add(src.u32_min);
        let (hi, hi_ov) = self.u32_max.overflowing_add(src.u32_max);
        // All sums wrapping or none wrapping keep the range; some wrapping loses it.
        if !lo_ov && hi_ov {
            (self.u32_min, self.u32_max) = (0, u32::MAX);
        } else {
            (self.u32_min, self.u32_max) = (lo, hi);
        }
    }

    fn add64(&mut self, src: &Scalar) {
        match (self.smin.checked_add(src.smin), self.smax.checked_add(src.smax)) {
            (Some(lo), Some(hi)) => (self.smin, self.smax) = (lo, hi),
            _ => (self.smin, self.smax) = (i64::MIN, i64::MAX),
        }
        let (lo, lo_ov) = self.umin.overflowing_add(src.umin);
        let (hi, hi_ov) = self.umax.overflowing_add(src.umax);
        if !lo_ov && hi_ov {
            (self.umin, self.umax) = (0, u64::MAX);
        } else {
            (self.umin, self.umax) = (lo, hi);
        }
    }

    fn sub32(&mut self, src: &Scalar) {
        match (self.s32_min.checked_sub(src.s32_max), self.s32_max.checked_sub(src.s32_min)) {
            (Some(lo), Some(hi)) => (self.s32_min, self.s32_max) = (lo, hi),
            _ => (self.s32_min, self.s32_max) = (i32::MIN, i32::MAX),
        }
        let (lo, lo_ov) = self.u32_min.overflowing_sub(src.u32_max);
        let (hi, hi_ov) = self.u32_max.overflowing_sub(src.u32_min);
        if lo_ov && !hi_ov {
            (self.u32_min, self.u32_max) = (0, u32::MAX);
        } else {
            (self.u32_min, self.u32_max) = (lo, hi);
        }
    }

    fn sub64(&mut self, src: &Scalar) {
        match (self.smin.checked_sub(src.smax), self.smax.checked_sub(src.smin)) {
            (Some(lo), Some(hi)) => (self.smin, self.smax) = (lo, hi),
            _ => (self.smin, self.smax) = (i64::MIN, i64::MAX),
        }
        let (lo, lo_ov) = self.umin.overflowing_sub(src.umax);
        let (hi, hi_ov) = self.umax.overflowing_sub(src.umin);
        if lo_ov && !hi_ov {
            (self.umin, self.umax) = (0, u64::MAX);
        } else {
            (self.umin, self.umax) = (lo, hi);
        }
    }

    fn mul32(&mut self, src: &Scalar) {
        match (self.u32_max.checked_mul(src.u32_max), self.u32_min.checked_mul(src.u32_min)) {
            (Some(hi), Some(lo)) => (self.u32_min, self.u32_max) = (lo, hi),
            _ => (self.u32_min, self.u32_max) = (0, u32::MAX),
        }
        let p = [
            self.s32_min.checked_mul(src.s32_min),
            self.s32_min.checked_mul(src.s32_max),
            self.s32_max.checked_mul(src.s32_min),
            self.s32_max.checked_mul(src.s32_max),
        ];
        if let [Some(a), Some(b), Some(c), Some(d)] = p {
            self.s32_min = a.min(b).min(c).min(d);
            self.s32_max = a.max(b).max(c).max(d);
        } else {
            (self.s32_min, self.s32_max) = (i32::MIN, i32::MAX);
        }
    }

    fn mul64(&mut self, src: &Scalar) {
        match (self.umax.checked_mul(src.umax), self.umin.checked_mul(src.umin)) {
            (Some(hi), Some(lo)) => (self.umin, self.umax) = (lo, hi),
            _ => (self.umin, self.umax) = (0, u64::MAX),
        }
        let p = [
            self.smin.checked_mul(src.smin),
            self.smin.checked_mul(src.smax),
            self.smax.checked_mul(src.smin),
            self.smax.checked_mul(src.smax),
        ];
        if let [Some(a), Some(b), Some(c), Some(d)] = p {
            self.smin = a.min(b).min(c).min(d);
            self.smax = a.max(b).max(c).max(d);
        } else {
            (self.smin, self.smax) = (i64::MIN, i64::MAX);
        }
    }

    /// Signed 32-bit bounds from the unsigned ones when they do not cross the sign bit.
    #[inline]
    fn s32_from_u32(&mut self) {
        if (self.u32_min as i32) <= (self.u32_max as i32) {
            self.s32_min = self.u32_min as i32;
            self.s32_max = self.u32_max as i32;
        } else {
            (self.s32_min, self.s32_max) = (i32::MIN, i32::MAX);
        }
    }

    /// Signed 64-bit bounds from the unsigned ones when they do not cross the sign bit.
    #[inline]
    fn s64_from_u64(&mut self) {
        if (self.umin as i64) <= (self.umax as i64) {
            self.smin = self.umin as i64;
            self.smax = self.umax as i64;
        } else {
            (self.smin, self.smax) = (i64::MIN, i64::MAX);
        }
    }

    // The bitwise operations run after the tnum was updated (self.var_off is the result's).

    fn and32(&mut self, src: &Scalar) {
        let t = self.var_off.subreg();
        if src.var_off.subreg_is_const() && t.is_const() {
            self.mark_known32(t.value as u32);
            return;
        }
        self.u32_min = t.value as u32;
        self.u32_max = self.u32_max.min(src.u32_max);
        self.s32_from_u32();
    }

    fn and64(&mut self, src: &Scalar) {
        if src.var_off.is_const() && self.var_off.is_const() {
            *self = Scalar::konst(self.var_off.value);
            return;
        }
        self.umin = self.var_off.value;
        self.umax = self.umax.min(src.umax);
        self.s64_from_u64();
        self.update_bounds();
    }

    fn or32(&mut self, src: &Scalar) {
        let t = self.var_off.subreg();
        if src.var_off.subreg_is_const() && t.is_const() {
            self.mark_known32(t.value as u32);
            return;
        }
        self.u32_min = self.u32_min.max(src.u32_min);
        self.u32_max = (t.value | t.mask) as u32;
        self.s32_from_u32();
    }

    fn or64(&mut self, src: &Scalar) {
        if src.var_off.is_const() && self.var_off.is_const() {
            *self = Scalar::konst(self.var_off.value);
            return;
        }
        self.umin = self.umin.max(src.umin);
        self.umax = self.var_off.umax();
        self.s64_from_u64();
        self.update_bounds();
    }

    fn xor32(&mut self, src: &Scalar) {
        let t = self.var_off.subreg();
        if src.var_off.subreg_is_const() && t.is_const() {
            self.mark_known32(t.value as u32);
            return;
        }
        self.u32_min = t.value as u32;
        self.u32_max = (t.value | t.mask) as u32;
        self.s32_from_u32();
    }

    fn xor64(&mut self, src: &Scalar) {
        if src.var_off.is_const() && self.var_off.is_const() {
            *self = Scalar::konst(self.var_off.value);
            return;
        }
        self.umin = self.var_off.value;
        self.umax = self.var_off.umax();
        self.s64_from_u64();
        self.update_bounds();
    }

    /// 32-bit bounds of a left shift by `lo..=hi` (the shift amount's bounds).
    fn lsh32_bounds(&mut self, lo: u64, hi: u64) {
        self.s32_min = i32::MIN;
        self.s32_max = i32::MAX;
        if hi > 31 || u64::from(self.u32_max) > 1u64 << (31 - hi) {
            self.u32_min = 0;
            self.u32_max = u32::MAX;
        } else {
            self.u32_min <<= lo;
            self.u32_max <<= hi;
        }
    }

    fn lsh32(&mut self, src: &Scalar) {
        let (lo, hi) = (u64::from(src.u32_min), u64::from(src.u32_max));
        let sub = self.var_off.subreg();
        self.lsh32_bounds(lo, hi);
        self.var_off = sub.lshift(lo as u8).subreg();
        self.mark_unbounded64();
        self.update_bounds32();
    }

    fn lsh64(&mut self, src: &Scalar) {
        let (lo, hi) = (src.umin, src.umax);
        // `<< 32` keeps the sign of the s32 bounds (the compilers' sign-extension idiom).
        if lo == 32 && hi == 32 {
            self.smax = i64::from(self.s32_max) << 32;
            self.smin = i64::from(self.s32_min) << 32;
        } else {
            self.smax = i64::MAX;
            self.smin = i64::MIN;
        }
        if self.umax > 1u64 << (63 - hi) {
            self.umin = 0;
            self.umax = u64::MAX;
        } else {
            self.umin <<= lo;
            self.umax <<= hi;
        }
        self.lsh32_bounds(lo, hi);
        self.var_off = self.var_off.lshift(lo as u8);
        self.update_bounds();
    }

    fn rsh32(&mut self, src: &Scalar) {
        let sub = self.var_off.subreg();
        let (lo, hi) = (src.u32_min, src.u32_max);
        self.s32_min = i32::MIN;
        self.s32_max = i32::MAX;
        self.var_off = sub.rshift(lo as u8);
        self.u32_min >>= hi;
        self.u32_max >>= lo;
        self.mark_unbounded64();
        self.update_bounds32();
    }

    fn rsh64(&mut self, src: &Scalar) {
        let (lo, hi) = (src.umin, src.umax);
        self.smin = i64::MIN;
        self.smax = i64::MAX;
        self.var_off = self.var_off.rshift(lo as u8);
        self.umin >>= hi;
        self.umax >>= lo;
        self.mark_unbounded32();
        self.update_bounds();
    }

    fn arsh32(&mut self, src: &Scalar) {
        let n = src.u32_min;
        self.s32_min >>= n;
        self.s32_max >>= n;
        self.var_off = self.var_off.subreg().arshift(n as u8, 32);
        self.u32_min = 0;
        self.u32_max = u32::MAX;
        self.mark_unbounded64();
        self.update_bounds32();
    }

    fn arsh64(&mut self, src: &Scalar) {
        let n = src.umin;
        self.smin >>= n;
        self.smax >>= n;
        self.var_off = self.var_off.arshift(n as u8, 64);
        self.umin = 0;
        self.umax = u64::MAX;
        self.mark_unbounded32();
        self.update_bounds();
    }

    /// The variable offset of `ptr += off` for a pointer whose offset this is (the kernel's
    /// `adjust_ptr_min_max_vals`, when `off` is not a constant folded into the fixed
    /// offset): pointers carry no 32-bit bounds, a 64-bit bound that may overflow is lost,
    /// the tnums add; synced after.
    pub fn ptr_add(&mut self, off: &Scalar) {
        self.mark_unbounded32();
        match (self.smin.checked_add(off.smin), self.smax.checked_add(off.smax)) {
            (Some(lo), Some(hi)) => (self.smin, self.smax) = (lo, hi),
            _ => (self.smin, self.smax) = (i64::MIN, i64::MAX),
        }
        match (self.umin.checked_add(off.umin), self.umax.checked_add(off.umax)) {
            (Some(lo), Some(hi)) => (self.umin, self.umax) = (lo, hi),
            _ => (self.umin, self.umax) = (0, u64::MAX),
        }
        self.var_off = self.var_off.add(off.var_off);
        self.sync();
    }

    /// The variable offset of `ptr -= off` (see [`Scalar::ptr_add`]); the unsigned bounds
    /// are lost when the smallest offset minus the largest subtrahend could wrap.
    pub fn ptr_sub(&mut self, off: &Scalar) {
        self.mark_unbounded32();
        match (self.smin.checked_sub(off.smax), self.smax.checked_sub(off.smin)) {
            (Some(lo), Some(hi)) => (self.smin, self.smax) = (lo, hi),
            _ => (self.smin, self.smax) = (i64::MIN, i64::MAX),
        }
        if self.umin < off.umax {
            (self.umin, self.umax) = (0, u64::MAX);
        } else {
            (self.umin, self.umax) = (self.umin - off.umax, self.umax - off.umin);
        }
        self.var_off = self.var_off.sub(off.var_off);
        self.sync();
    }

    /// `self = -self` (`is64`: ALU64, else the low 32 bits, zero-extended), computed as
    /// `0 - self` with the subtraction's bounds.
    pub fn neg(&mut self, is64: bool) {
        let old = *self;
        *self = Scalar::konst(0);
        self.sub32(&old);
        self.sub64(&old);
        self.var_off = old.var_off.neg();
        if !is64 {
            self.zext32();
        }
        self.sync();
    }

    /// Byte-order conversions on bpflab's little-endian machine, as the kernel tracks them:
    /// `to_be` (`be16/32/64`, and the unconditional `bswap16/32/64`) swaps the low `bits` / 8
    /// bytes of the tnum, forgets the bounds and truncates to `bits`; otherwise (`le16/32`)
    /// the value is truncated to `bits`, and `le64` changes nothing.
    pub fn endian(&mut self, to_be: bool, bits: u8) {
        if to_be {
            self.var_off = self.var_off.bswap(bits);
            self.mark_unbounded();
        } else if bits >= 64 {
            // `le64` changes no bit; the kernel still syncs the bounds.
            self.sync();
            return;
        }
        if bits < 64 {
            self.coerce_to_size(bits / 8);
        } else {
            self.sync();
        }
    }

    /// `self = (sN)src` for `from_bits` 8, 16 or 32 (`is64`: ALU64 `MOVSX`, else the 32-bit
    /// form, zero-extended).
    pub fn movsx(&mut self, src: &Scalar, from_bits: u8, is64: bool) {
        *self = *src;
        let bytes = from_bits / 8;
        if is64 {
            self.coerce_to_size_sx(bytes);
        } else {
            // Sign-extending 32 bits (or more) into 32 bits is a plain 32-bit move.
            if (1..4).contains(&bytes) {
                self.coerce_subreg_to_size_sx(bytes);
            }
            self.zext32();
            self.sync();
        }
    }

    /// Truncates to the low `bytes` bytes (1, 2, 4; 8 is a no-op), zero-extending, as a
    /// narrow load or a truncating move does (the kernel's `coerce_reg_to_size`).
    pub fn coerce_to_size(&mut self, bytes: u8) {
        if bytes >= 8 {
            return;
        }
        self.var_off = self.var_off.cast(bytes);
        let mask = (1u64 << (u32::from(bytes) * 8)) - 1;
        if self.umin & !mask == self.umax & !mask {
            self.umin &= mask;
            self.umax &= mask;
        } else {
            self.umin = 0;
            self.umax = mask;
        }
        self.smin = self.umin as i64;
        self.smax = self.umax as i64;
        if bytes < 4 {
            self.mark_unbounded32();
        }
        self.sync();
    }

    /// Sign-extends the low `bytes` bytes (1, 2, 4) into the register, as a sign-extending
    /// load (`LDSX`) or a 64-bit `MOVSX` does (the kernel's `coerce_reg_to_size_sx` as 6.18
    /// behaves):
    /// - when the s32 bounds lie within the narrow type's signed range (always, from 4 bytes)
    ///   the low 32 bits are unchanged and the signed 64-bit bounds are the s32 ones; the
    ///   unsigned 64-bit bounds and the tnum are re-derived;
    /// - otherwise, when the signed 64-bit bounds agree above the narrow type and their
    ///   sign-extended ends have the same sign, the result is that range;
    /// - otherwise it is the narrow type's whole signed range.
    pub fn coerce_to_size_sx(&mut self, bytes: u8) {
        if bytes == 0 || bytes >= 8 {
            return;
        }
        let nbits = u32::from(bytes) * 8;
        let shift = 64 - nbits;
        let sext = |v: u64| -> i64 { ((v << shift) as i64) >> shift };
        if let Some(v) = self.const_value() {
            *self = Scalar::konst(sext(v) as u64);
            return;
        }
        let (lo, hi) = match bytes {
            1 => (i64::from(i8::MIN), i64::from(i8::MAX)),
            2 => (i64::from(i16::MIN), i64::from(i16::MAX)),
            _ => (i64::from(i32::MIN), i64::from(i32::MAX)),
        };
        if i64::from(self.s32_min) >= lo && i64::from(self.s32_max) <= hi {
            self.smin = i64::from(self.s32_min);
            self.smax = i64::from(self.s32_max);
            self.umin = 0;
            self.umax = u64::MAX;
            self.var_off = Tnum::UNKNOWN;
            self.sync();
            return;
        }
        if (self.smax as u64) >> nbits == (self.smin as u64) >> nbits {
            let a = sext(self.smax as u64);
            let b = sext(self.smin as u64);
            let (lo, hi) = (a.min(b), a.max(b));
            if (lo >= 0) == (hi >= 0) {
                self.smin = lo;
                self.smax = hi;
                self.s32_min = lo as i32;
                self.s32_max = hi as i32;
                self.umin = lo as u64;
                self.umax = hi as u64;
                self.u32_min = lo as u32;
                self.u32_max = hi as u32;
                self.var_off = Tnum::range(lo as u64, hi as u64);
                return;
            }
        }
        self.smin = lo;
        self.smax = hi;
        self.s32_min = lo as i32;
        self.s32_max = hi as i32;
        self.umin = 0;
        self.umax = u64::MAX;
        self.u32_min = 0;
        self.u32_max = u32::MAX;
        self.var_off = Tnum::UNKNOWN;
    }

    /// Sign-extends the low `bytes` (1 or 2) bytes into the low 32 bits (the kernel's
    /// `coerce_subreg_to_size_sx`; the 64-bit part is left to the zero extension after it).
    fn coerce_subreg_to_size_sx(&mut self, bytes: u8) {
        let shift = 32 - u32::from(bytes) * 8;
        let sext = |v: u32| -> i32 { ((v << shift) as i32) >> shift };
        if let Some(v) = self.const_value() {
            let x = sext(v as u32);
            self.var_off = Tnum::konst(x as i64 as u64);
            self.s32_min = x;
            self.s32_max = x;
            self.u32_min = x as u32;
            self.u32_max = x as u32;
            return;
        }
        let nbits = u32::from(bytes) * 8;
        let top_max = (self.s32_max as u32) >> nbits;
        let top_min = (self.s32_min as u32) >> nbits;
        if top_max == top_min {
            let a = sext(self.s32_max as u32);
            let b = sext(self.s32_min as u32);
            let (lo, hi) = (a.min(b), a.max(b));
            if (lo >= 0) == (hi >= 0) {
                self.s32_min = lo;
                self.s32_max = hi;
                self.u32_min = lo as u32;
                self.u32_max = hi as u32;
                self.var_off = Tnum::range(lo as u32 as u64, hi as u32 as u64);
                return;
            }
        }
        let (lo, hi) = if bytes == 1 {
            (i32::from(i8::MIN), i32::from(i8::MAX))
        } else {
            (i32::from(i16::MIN), i32::from(i16::MAX))
        };
        self.s32_min = lo;
        self.s32_max = hi;
        self.u32_min = 0;
        self.u32_max = u32::MAX;
        self.var_off = Tnum::UNKNOWN.subreg();
    }

    /// True when `v` is a possible value: the tnum and all eight bounds admit it.
    pub fn contains(&self, v: u64) -> bool {
        let (v32, s) = (v as u32, v as i64);
        self.var_off.contains(v)
            && self.umin <= v
            && v <= self.umax
            && self.smin <= s
            && s <= self.smax
            && self.u32_min <= v32
            && v32 <= self.u32_max
            && self.s32_min <= v32 as i32
            && v32 as i32 <= self.s32_max
    }

    /// True when every bound of `self` lies within `outer`'s and its tnum within `outer`'s
    /// (the kernel's `range_within(outer, self) && tnum_in(outer, self)` for pruning).
    pub fn is_subset_of(&self, outer: &Scalar) -> bool {
        outer.umin <= self.umin
            && outer.umax >= self.umax
            && outer.smin <= self.smin
            && outer.smax >= self.smax
            && outer.u32_min <= self.u32_min
            && outer.u32_max >= self.u32_max
            && outer.s32_min <= self.s32_min
            && outer.s32_max >= self.s32_max
            && self.var_off.is_subset_of(outer.var_off)
    }

    /// The kernel's log text for a scalar: a constant prints as its value (decimal in
    /// [-32768, 32767], else hex); otherwise the inside of `scalar(...)`: the bounds that
    /// are not at their type's extreme, equal ones merged as `smax=umax=255`, in the order
    /// smin, smax, umin, umax, smin32, smax32, umin32, umax32, then `var_off=(v; m)` unless
    /// nothing is known of the bits. A fully unknown scalar gives the empty string.
    pub fn fmt_kernel(&self) -> String {
        let mut out = String::with_capacity(64);
        let _ = self.write_kernel(&mut out);
        out
    }

    /// Writes [`Scalar::fmt_kernel`]'s text to `out` (no allocation of its own).
    pub fn write_kernel(&self, out: &mut impl std::fmt::Write) -> std::fmt::Result {
        if let Some(v) = self.const_value() {
            return write_snum(out, v as i64);
        }
        let s32 = |x: i32| -> u64 {
            if is_snum_decimal(i64::from(x)) { i64::from(x) as u64 } else { u64::from(x as u32) }
        };
        let mut m: [(&str, u64, bool); 8] = [
            ("smin", self.smin as u64, self.smin == i64::MIN),
            ("smax", self.smax as u64, self.smax == i64::MAX),
            ("umin", self.umin, self.umin == 0),
            ("umax", self.umax, self.umax == u64::MAX),
            ("smin32", s32(self.s32_min), self.s32_min == i32::MIN),
            ("smax32", s32(self.s32_max), self.s32_max == i32::MAX),
            ("umin32", u64::from(self.u32_min), self.u32_min == 0),
            ("umax32", u64::from(self.u32_max), self.u32_max == u32::MAX),
        ];
        let mut sep = "";
        for i in 0..m.len() {
            let (name, val, omit) = m[i];
            if omit {
                continue;
            }
            // Equal bounds of the same sign print once, names joined: `smax=umax=255`.
            let signed = name.starts_with('s');
            let neg1 = signed && (val as i64) < 0;
            write!(out, "{sep}{name}=")?;
            sep = ",";
            for other in m.iter_mut().skip(i + 2).step_by(2) {
                let (n2, v2, o2) = *other;
                let neg2 = n2.starts_with('s') && (v2 as i64) < 0;
                if !o2 && v2 == val && neg1 == neg2 {
                    other.2 = true;
                    write!(out, "{n2}=")?;
                }
            }
            if signed {
                write_snum(out, val as i64)?;
            } else {
                write_unum(out, val)?;
            }
        }
        if !self.var_off.is_unknown() {
            write!(out, "{sep}var_off={}", self.var_off)?;
        }
        Ok(())
    }

    /// The whole register text as the kernel prints a scalar: the constant, or
    /// `scalar(...)` (without the precision mark `P`).
    pub fn fmt_reg(&self) -> String {
        if self.is_const() { self.fmt_kernel() } else { format!("scalar({})", self.fmt_kernel()) }
    }
}

/// The kernel's log text (see [`Scalar::fmt_kernel`]).
impl std::fmt::Display for Scalar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.write_kernel(f)
    }
}

/// The kernel prints signed values in [-32768, 32767] in decimal, others in hex.
const fn is_snum_decimal(v: i64) -> bool {
    v >= i16::MIN as i64 && v <= i16::MAX as i64
}

/// The kernel's `verbose_snum`.
fn write_snum(out: &mut impl std::fmt::Write, v: i64) -> std::fmt::Result {
    if is_snum_decimal(v) { write!(out, "{v}") } else { write!(out, "{:#x}", v as u64) }
}

/// The kernel's `verbose_unum`: decimal up to 65535, else hex.
fn write_unum(out: &mut impl std::fmt::Write, v: u64) -> std::fmt::Result {
    if v <= u64::from(u16::MAX) { write!(out, "{v}") } else { write!(out, "{v:#x}") }
}

/// The bounds and tnum a register shows when only its low 32 bits (`is32`) or all 64 bits
/// are compared.
#[derive(Clone, Copy)]
struct View {
    t: Tnum,
    umin: u64,
    umax: u64,
    smin: i64,
    smax: i64,
}

impl View {
    fn of(s: &Scalar, is32: bool) -> View {
        if is32 {
            View {
                t: s.var_off.subreg(),
                umin: u64::from(s.u32_min),
                umax: u64::from(s.u32_max),
                smin: i64::from(s.s32_min),
                smax: i64::from(s.s32_max),
            }
        } else {
            View { t: s.var_off, umin: s.umin, umax: s.umax, smin: s.smin, smax: s.smax }
        }
    }
}

/// Whether `a COND b` (`is32`: on the low 32 bits) always holds (`Some(true)`), never holds
/// (`Some(false)`) or depends on the values (`None`), from the bounds and tnums as the
/// kernel's `is_scalar_branch_taken` decides it.
pub fn branch_taken(cond: JmpCond, a: &Scalar, b: &Scalar, is32: bool) -> Option<bool> {
    let (x, y) = (View::of(a, is32), View::of(b, is32));
    match cond {
        JmpCond::Eq | JmpCond::Ne => {
            let eq = cond == JmpCond::Eq;
            if x.t.is_const() && y.t.is_const() {
                return Some((x.t.value == y.t.value) == eq);
            }
            let disjoint = !x.t.overlaps(y.t)
                || x.umin > y.umax
                || x.umax < y.umin
                || x.smin > y.smax
                || x.smax < y.smin
                || (!is32
                    && (a.u32_min > b.u32_max
                        || a.u32_max < b.u32_min
                        || a.s32_min > b.s32_max
                        || a.s32_max < b.s32_min));
            if disjoint { Some(!eq) } else { None }
        }
        JmpCond::Set => {
            let (x, y) = if b.is_const_width(is32) {
                (x, y)
            } else if a.is_const_width(is32) {
                (y, x)
            } else {
                return None;
            };
            if x.t.value & y.t.value != 0 {
                Some(true)
            } else if x.t.umax() & y.t.value == 0 {
                Some(false)
            } else {
                None
            }
        }
        JmpCond::Gt => decide(x.umin > y.umax, x.umax <= y.umin),
        JmpCond::Sgt => decide(x.smin > y.smax, x.smax <= y.smin),
        JmpCond::Lt => decide(x.umax < y.umin, x.umin >= y.umax),
        JmpCond::Slt => decide(x.smax < y.smin, x.smin >= y.smax),
        JmpCond::Ge => decide(x.umin >= y.umax, x.umax < y.umin),
        JmpCond::Sge => decide(x.smin >= y.smax, x.smax < y.smin),
        JmpCond::Le => decide(x.umax <= y.umin, x.umin > y.umax),
        JmpCond::Sle => decide(x.smax <= y.smin, x.smin > y.smax),
    }
}

#[inline]
const fn decide(always: bool, never: bool) -> Option<bool> {
    if always {
        Some(true)
    } else if never {
        Some(false)
    } else {
        None
    }
}

/// Narrows `a` and `b` to the values for which `a COND b` is `taken` (`false`: the
/// fall-through side, where the negated condition holds), as the kernel's `reg_set_min_max`
/// does for one side of a branch whose outcome [`branch_taken`] could not decide; both are
/// synced after. JSET learns bits only against a constant (the taken side only from a
/// single-bit constant). A side that cannot happen may leave contradictory bounds, which
/// are then forgotten (the tnum kept), as the kernel does outside its self-tests.
pub fn refine(cond: JmpCond, a: &mut Scalar, b: &mut Scalar, taken: bool, is32: bool) {
    let c = if taken { Cond::Jmp(cond) } else { negate(cond) };
    let mut regs = [*a, *b];
    refine_slots(c, &mut regs, 0, 1, is32);
    let [mut x, mut y] = regs;
    x.sync();
    y.sync();
    x.sanitize();
    y.sanitize();
    (*a, *b) = (x, y);
}

/// [`refine`] for a register compared with itself (`if r1 > r1`): the kernel refines both
/// operands in the one register, so each rule sees the other's update (e.g. `r > r` taken
/// narrows [0, 255] to [1, 254]), and syncs it twice.
pub fn refine_same(cond: JmpCond, a: &mut Scalar, taken: bool, is32: bool) {
    let c = if taken { Cond::Jmp(cond) } else { negate(cond) };
    let mut regs = [*a];
    refine_slots(c, &mut regs, 0, 0, is32);
    let [mut x] = regs;
    x.sync();
    x.sync();
    x.sanitize();
    *a = x;
}

/// The kernel's `regs_refine_cond_op` on `regs[i1] COND regs[i2]` (the two may be one).
fn refine_slots(c: Cond, regs: &mut [Scalar], i1: usize, i2: usize, is32: bool) {
    let konst = |r: &Scalar| r.is_const_width(is32);
    let val_of = |r: &Scalar| if is32 { r.var_off.subreg().value } else { r.var_off.value };
    let cond = match c {
        Cond::NotSet => {
            let (r1, r2) = if konst(&regs[i2]) {
                (i1, i2)
            } else if konst(&regs[i1]) {
                (i2, i1)
            } else {
                return;
            };
            let val = val_of(&regs[r2]);
            let r = &mut regs[r1];
            // Forget the bounds first: on a dead side the tnum may contradict them.
            r.mark_unbounded();
            if is32 {
                let t = r.var_off.subreg().and(Tnum::konst(!val));
                r.var_off = r.var_off.with_subreg(t);
            } else {
                r.var_off = r.var_off.and(Tnum::konst(!val));
            }
            return;
        }
        Cond::Jmp(j) => j,
    };
    // a > b is b < a: reuse the less-than rules with the operands swapped.
    let (r1, r2, cond) = match cond {
        JmpCond::Ge | JmpCond::Gt | JmpCond::Sge | JmpCond::Sgt => (i2, i1, flip(cond)),
        _ => (i1, i2, cond),
    };
    match cond {
        JmpCond::Eq => {
            if is32 {
                regs[r1].u32_min = regs[r1].u32_min.max(regs[r2].u32_min);
                regs[r1].u32_max = regs[r1].u32_max.min(regs[r2].u32_max);
                regs[r1].s32_min = regs[r1].s32_min.max(regs[r2].s32_min);
                regs[r1].s32_max = regs[r1].s32_max.min(regs[r2].s32_max);
                regs[r2].u32_min = regs[r1].u32_min;
                regs[r2].u32_max = regs[r1].u32_max;
                regs[r2].s32_min = regs[r1].s32_min;
                regs[r2].s32_max = regs[r1].s32_max;
                let t = regs[r1].var_off.subreg().intersect(regs[r2].var_off.subreg());
                regs[r1].var_off = regs[r1].var_off.with_subreg(t);
                regs[r2].var_off = regs[r2].var_off.with_subreg(t);
            } else {
                regs[r1].umin = regs[r1].umin.max(regs[r2].umin);
                regs[r1].umax = regs[r1].umax.min(regs[r2].umax);
                regs[r1].smin = regs[r1].smin.max(regs[r2].smin);
                regs[r1].smax = regs[r1].smax.min(regs[r2].smax);
                regs[r2].umin = regs[r1].umin;
                regs[r2].umax = regs[r1].umax;
                regs[r2].smin = regs[r1].smin;
                regs[r2].smax = regs[r1].smax;
                regs[r1].var_off = regs[r1].var_off.intersect(regs[r2].var_off);
                regs[r2].var_off = regs[r1].var_off;
            }
        }
        JmpCond::Ne => {
            let (r1, r2) = if konst(&regs[r2]) {
                (r1, r2)
            } else if konst(&regs[r1]) {
                (r2, r1)
            } else {
                return;
            };
            // A constant at an edge of the other's range moves that edge.
            let val = regs[r2].var_off.value;
            let r = &mut regs[r1];
            if is32 {
                let val = val as u32;
                if r.u32_min == val {
                    r.u32_min = r.u32_min.wrapping_add(1);
                }
                if r.u32_max == val {
                    r.u32_max = r.u32_max.wrapping_sub(1);
                }
                if r.s32_min == val as i32 {
                    r.s32_min = r.s32_min.wrapping_add(1);
                }
                if r.s32_max == val as i32 {
                    r.s32_max = r.s32_max.wrapping_sub(1);
                }
            } else {
                if r.umin == val {
                    r.umin = r.umin.wrapping_add(1);
                }
                if r.umax == val {
                    r.umax = r.umax.wrapping_sub(1);
                }
                if r.smin == val as i64 {
                    r.smin = r.smin.wrapping_add(1);
                }
                if r.smax == val as i64 {
                    r.smax = r.smax.wrapping_sub(1);
                }
            }
        }
        JmpCond::Set => {
            let (r1, r2) = if konst(&regs[r2]) {
                (r1, r2)
            } else if konst(&regs[r1]) {
                (r2, r1)
            } else {
                return;
            };
            let val = val_of(&regs[r2]);
            // Only a single tested bit tells which bit is set.
            if !val.is_power_of_two() {
                return;
            }
            let r = &mut regs[r1];
            if is32 {
                let t = r.var_off.subreg().or(Tnum::konst(val));
                r.var_off = r.var_off.with_subreg(t);
            } else {
                r.var_off = r.var_off.or(Tnum::konst(val));
            }
        }
        JmpCond::Le => {
            if is32 {
                regs[r1].u32_max = regs[r1].u32_max.min(regs[r2].u32_max);
                regs[r2].u32_min = regs[r1].u32_min.max(regs[r2].u32_min);
            } else {
                regs[r1].umax = regs[r1].umax.min(regs[r2].umax);
                regs[r2].umin = regs[r1].umin.max(regs[r2].umin);
            }
        }
        JmpCond::Lt => {
            if is32 {
                regs[r1].u32_max = regs[r1].u32_max.min(regs[r2].u32_max.wrapping_sub(1));
                regs[r2].u32_min = regs[r1].u32_min.wrapping_add(1).max(regs[r2].u32_min);
            } else {
                regs[r1].umax = regs[r1].umax.min(regs[r2].umax.wrapping_sub(1));
                regs[r2].umin = regs[r1].umin.wrapping_add(1).max(regs[r2].umin);
            }
        }
        JmpCond::Sle => {
            if is32 {
                regs[r1].s32_max = regs[r1].s32_max.min(regs[r2].s32_max);
                regs[r2].s32_min = regs[r1].s32_min.max(regs[r2].s32_min);
            } else {
                regs[r1].smax = regs[r1].smax.min(regs[r2].smax);
                regs[r2].smin = regs[r1].smin.max(regs[r2].smin);
            }
        }
        JmpCond::Slt => {
            if is32 {
                regs[r1].s32_max = regs[r1].s32_max.min(regs[r2].s32_max.wrapping_sub(1));
                regs[r2].s32_min = regs[r1].s32_min.wrapping_add(1).max(regs[r2].s32_min);
            } else {
                regs[r1].smax = regs[r1].smax.min(regs[r2].smax.wrapping_sub(1));
                regs[r2].smin = regs[r1].smin.wrapping_add(1).max(regs[r2].smin);
            }
        }
        JmpCond::Ge | JmpCond::Gt | JmpCond::Sge | JmpCond::Sgt => unreachable!("flipped"),
    }
}
