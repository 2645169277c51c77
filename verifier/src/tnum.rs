//! Tracked numbers ("tnums"): what is known about each bit of a 64-bit value, as the kernel's
//! verifier tracks it (`kernel/bpf/tnum.c`).
//!
//! A tnum is a pair (`value`, `mask`): a bit set in `mask` is unknown, a bit clear in `mask`
//! is known and equal to that bit of `value`. Bits of `value` under `mask` are always zero.
//! Every operation here over-approximates: the result contains every concrete result of the
//! operation applied to concrete members of the operands.

/// A partially known 64-bit value: bits in `mask` are unknown, the others equal `value`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tnum {
    /// The known bits (zero where `mask` is set).
    pub value: u64,
    /// The unknown bits.
    pub mask: u64,
}

impl Default for Tnum {
    fn default() -> Self {
        Tnum::UNKNOWN
    }
}

impl Tnum {
    /// Nothing known: every bit unknown.
    pub const UNKNOWN: Tnum = Tnum { value: 0, mask: u64::MAX };

    /// Builds a tnum from its parts, clearing value bits that lie under the mask.
    #[inline]
    pub const fn new(value: u64, mask: u64) -> Tnum {
        Tnum { value: value & !mask, mask }
    }

    /// The constant `v`.
    #[inline]
    pub const fn konst(v: u64) -> Tnum {
        Tnum { value: v, mask: 0 }
    }

    /// The smallest tnum holding every value of `min..=max` (the common high bits of the two
    /// bounds are known, everything from the highest differing bit down is unknown).
    #[inline]
    pub const fn range(min: u64, max: u64) -> Tnum {
        let chi = min ^ max;
        let bits = 64 - chi.leading_zeros();
        if bits > 63 {
            return Tnum::UNKNOWN;
        }
        let delta = (1u64 << bits) - 1;
        Tnum { value: min & !delta, mask: delta }
    }

    /// True when every bit is known.
    #[inline]
    pub const fn is_const(self) -> bool {
        self.mask == 0
    }

    /// True when no bit is known.
    #[inline]
    pub const fn is_unknown(self) -> bool {
        self.mask == u64::MAX
    }

    /// True when the value is known to be exactly `v`.
    #[inline]
    pub const fn equals_const(self, v: u64) -> bool {
        self.mask == 0 && self.value == v
    }

    /// Smallest unsigned member.
    #[inline]
    pub const fn umin(self) -> u64 {
        self.value
    }

    /// Largest unsigned member.
    #[inline]
    pub const fn umax(self) -> u64 {
        self.value | self.mask
    }

    /// Smallest signed member (sign bit set if it may be, other unknown bits clear).
    #[inline]
    pub const fn smin(self) -> i64 {
        (self.value | (self.mask & (1 << 63))) as i64
    }

    /// Largest signed member (sign bit clear if it may be, other unknown bits set).
    #[inline]
    pub const fn smax(self) -> i64 {
        (self.value | (self.mask & (i64::MAX as u64))) as i64
    }

    /// Shifts left by `n` (0..=63); known zeros come in.
    #[inline]
    pub const fn lshift(self, n: u8) -> Tnum {
        let n = (n & 63) as u32;
        Tnum { value: self.value << n, mask: self.mask << n }
    }

    /// Logical right shift by `n` (0..=63); known zeros come in.
    #[inline]
    pub const fn rshift(self, n: u8) -> Tnum {
        let n = (n & 63) as u32;
        Tnum { value: self.value >> n, mask: self.mask >> n }
    }

    /// Arithmetic right shift by `n` of a `bits`-wide (32 or 64) value; for 32 the result is
    /// the zero-extended 32-bit shift of the low half. The sign bit's knowledge is copied in.
    #[inline]
    pub const fn arshift(self, n: u8, bits: u8) -> Tnum {
        if bits == 32 {
            let n = (n & 31) as u32;
            Tnum {
                value: (((self.value as u32 as i32) >> n) as u32) as u64,
                mask: (((self.mask as u32 as i32) >> n) as u32) as u64,
            }
        } else {
            let n = (n & 63) as u32;
            Tnum {
                value: ((self.value as i64) >> n) as u64,
                mask: ((self.mask as i64) >> n) as u64,
            }
        }
    }

    /// Sum (modulo 2^64): a carry chain through an unknown bit makes the bits it reaches
    /// unknown.
    #[inline]
    pub const fn add(self, o: Tnum) -> Tnum {
        let sm = self.mask.wrapping_add(o.mask);
        let sv = self.value.wrapping_add(o.value);
        let sigma = sm.wrapping_add(sv);
        let chi = sigma ^ sv;
        let mu = chi | self.mask | o.mask;
        Tnum { value: sv & !mu, mask: mu }
    }

    /// Difference (modulo 2^64).
    #[inline]
    pub const fn sub(self, o: Tnum) -> Tnum {
        let dv = self.value.wrapping_sub(o.value);
        let alpha = dv.wrapping_add(self.mask);
        let beta = dv.wrapping_sub(o.mask);
        let chi = alpha ^ beta;
        let mu = chi | self.mask | o.mask;
        Tnum { value: dv & !mu, mask: mu }
    }

    /// Two's complement negation (`0 - self`).
    #[inline]
    pub const fn neg(self) -> Tnum {
        Tnum::konst(0).sub(self)
    }

    /// Bitwise and.
    #[inline]
    pub const fn and(self, o: Tnum) -> Tnum {
        let alpha = self.value | self.mask;
        let beta = o.value | o.mask;
        let v = self.value & o.value;
        Tnum { value: v, mask: alpha & beta & !v }
    }

    /// Bitwise or.
    #[inline]
    pub const fn or(self, o: Tnum) -> Tnum {
        let v = self.value | o.value;
        let mu = self.mask | o.mask;
        Tnum { value: v, mask: mu & !v }
    }

    /// Bitwise exclusive or.
    #[inline]
    pub const fn xor(self, o: Tnum) -> Tnum {
        let v = self.value ^ o.value;
        let mu = self.mask | o.mask;
        Tnum { value: v & !mu, mask: mu }
    }

    /// Product (modulo 2^64), by shift-and-add over the bits of `self`: a known 1 adds the
    /// shifted multiplicand, an unknown bit adds "either nothing or the multiplicand" (the
    /// union of both accumulators).
    #[inline]
    pub const fn mul(self, o: Tnum) -> Tnum {
        let mut a = self;
        let mut b = o;
        let mut acc = Tnum::konst(0);
        while a.value != 0 || a.mask != 0 {
            if a.value & 1 != 0 {
                acc = acc.add(b);
            } else if a.mask & 1 != 0 {
                acc = acc.union(acc.add(b));
            }
            a = a.rshift(1);
            b = b.lshift(1);
        }
        acc
    }

    /// True when some value belongs to both.
    #[inline]
    pub const fn overlaps(self, o: Tnum) -> bool {
        let mu = !self.mask & !o.mask;
        (self.value & mu) == (o.value & mu)
    }

    /// The values in both (a bit known in either is known; where they disagree, which
    /// only happens on an infeasible path, the result says 1, as the kernel's does).
    #[inline]
    pub const fn intersect(self, o: Tnum) -> Tnum {
        let v = self.value | o.value;
        let mu = self.mask & o.mask;
        Tnum { value: v & !mu, mask: mu }
    }

    /// The smallest tnum containing every member of both.
    #[inline]
    pub const fn union(self, o: Tnum) -> Tnum {
        let mu = self.mask | o.mask | (self.value ^ o.value);
        Tnum { value: self.value & o.value & !mu, mask: mu }
    }

    /// Reverses the order of the low `bits` / 8 bytes (16, 32 or 64), dropping the bytes above
    /// them (what `be16/32/64` and `bswap16/32/64` do on a little-endian machine).
    #[inline]
    pub const fn bswap(self, bits: u8) -> Tnum {
        match bits {
            16 => Tnum {
                value: (self.value as u16).swap_bytes() as u64,
                mask: (self.mask as u16).swap_bytes() as u64,
            },
            32 => Tnum {
                value: (self.value as u32).swap_bytes() as u64,
                mask: (self.mask as u32).swap_bytes() as u64,
            },
            _ => Tnum { value: self.value.swap_bytes(), mask: self.mask.swap_bytes() },
        }
    }

    /// Truncates to the low `size_bytes` bytes (1, 2, 4 or 8), zero-extending.
    #[inline]
    pub const fn cast(self, size_bytes: u8) -> Tnum {
        if size_bytes >= 8 {
            return self;
        }
        let m = (1u64 << (size_bytes as u32 * 8)) - 1;
        Tnum { value: self.value & m, mask: self.mask & m }
    }

    /// The low 32 bits, zero-extended.
    #[inline]
    pub const fn subreg(self) -> Tnum {
        self.cast(4)
    }

    /// The high 32 bits, with the low 32 bits known zero.
    #[inline]
    pub const fn clear_subreg(self) -> Tnum {
        self.rshift(32).lshift(32)
    }

    /// The high 32 bits of `self` with the low 32 bits of `sub`.
    #[inline]
    pub const fn with_subreg(self, sub: Tnum) -> Tnum {
        self.clear_subreg().or(sub.subreg())
    }

    /// The high 32 bits of `self` with the low 32 bits known to be `v`.
    #[inline]
    pub const fn const_subreg(self, v: u32) -> Tnum {
        self.with_subreg(Tnum::konst(v as u64))
    }

    /// True when the low 32 bits are all known.
    #[inline]
    pub const fn subreg_is_const(self) -> bool {
        self.mask as u32 == 0
    }

    /// True when `v` is a member.
    #[inline]
    pub const fn contains(self, v: u64) -> bool {
        (v & !self.mask) == self.value
    }

    /// The smallest member greater than `z`, or the largest member when none is (the
    /// kernel's `tnum_step`).
    #[inline]
    pub const fn step(self, z: u64) -> u64 {
        let tmax = self.umax();
        if z >= tmax {
            return tmax;
        }
        // The smallest member >= w: match w on the unknown bits, then fix the highest known
        // bit where that candidate and w differ.
        let w = z + 1;
        let c = self.value | (w & self.mask);
        let d = c ^ w;
        if d == 0 {
            return w;
        }
        let p = 63 - d.leading_zeros();
        let below_p = (1u64 << p) - 1;
        if c & (1 << p) != 0 {
            // A known 1 above w's 0: exceed w there, everything unknown below is 0.
            return (c & !below_p) | (self.value & below_p);
        }
        // A known 0 below w's 1: exceed w at the lowest unknown 0 of w above p.
        let above_p = if p == 63 { 0 } else { !((1u64 << (p + 1)) - 1) };
        let cand = self.mask & !w & above_p;
        if cand == 0 {
            return tmax;
        }
        let q = cand.trailing_zeros();
        let below_q = (1u64 << q) - 1;
        let above_q = if q == 63 { 0 } else { !((1u64 << (q + 1)) - 1) };
        (w & above_q) | (1 << q) | (self.value & below_q)
    }

    /// True when every member of `self` is a member of `outer` (the kernel's
    /// `tnum_in(outer, self)`).
    #[inline]
    pub const fn is_subset_of(self, outer: Tnum) -> bool {
        if self.mask & !outer.mask != 0 {
            return false;
        }
        (self.value & !outer.mask) == outer.value
    }

    /// True when every member is a multiple of `size` (a power of two; 0 counts as aligned).
    #[inline]
    pub const fn is_aligned(self, size: u64) -> bool {
        if size == 0 {
            return true;
        }
        (self.value | self.mask) & (size - 1) == 0
    }

    /// The kernel's `var_off` text: `(0x0; 0xff)`, `(0x0; 0x0)` style with `%#llx`
    /// (so zero prints as `0x0`, as Linux's printf does).
    pub fn fmt_kernel(self) -> String {
        format!("({}; {})", hex(self.value), hex(self.mask))
    }
}

/// The kernel's `%#llx` for a u64 (Linux prints zero as `0x0`).
pub(crate) fn hex(v: u64) -> String {
    format!("{v:#x}")
}

/// The kernel's `var_off` text, as [`Tnum::fmt_kernel`].
impl std::fmt::Display for Tnum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "({:#x}; {:#x})", self.value, self.mask)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every member of a tnum with at most `limit` unknown bits (all of them for small masks).
    fn members(t: Tnum) -> Vec<u64> {
        let bits: Vec<u32> = (0..64).filter(|b| t.mask >> b & 1 == 1).collect();
        assert!(bits.len() <= 10, "too many unknown bits to enumerate");
        (0..1u64 << bits.len())
            .map(|k| {
                let mut v = t.value;
                for (i, b) in bits.iter().enumerate() {
                    if k >> i & 1 == 1 {
                        v |= 1 << b;
                    }
                }
                v
            })
            .collect()
    }

    #[test]
    fn range_and_const() {
        assert_eq!(Tnum::range(0, 255), Tnum { value: 0, mask: 0xff });
        assert_eq!(Tnum::range(5, 5), Tnum::konst(5));
        assert_eq!(Tnum::range(0, u64::MAX), Tnum::UNKNOWN);
        assert_eq!(Tnum::range(16, 31), Tnum { value: 16, mask: 15 });
        assert_eq!(Tnum::range(4, 8), Tnum { value: 0, mask: 15 });
        assert!(Tnum::konst(7).is_const());
        assert!(Tnum::UNKNOWN.is_unknown());
    }

    #[test]
    fn arithmetic_examples() {
        let a = Tnum::range(0, 3);
        assert_eq!(a.add(Tnum::konst(4)), Tnum { value: 4, mask: 3 });
        assert_eq!(a.add(a), Tnum { value: 0, mask: 7 });
        assert_eq!(Tnum::konst(10).sub(Tnum::konst(3)), Tnum::konst(7));
        assert_eq!(Tnum::konst(6).mul(Tnum::konst(7)), Tnum::konst(42));
        assert_eq!(Tnum::konst(1).neg(), Tnum::konst(u64::MAX));
        assert_eq!(Tnum::UNKNOWN.and(Tnum::konst(0xff)), Tnum { value: 0, mask: 0xff });
        assert_eq!(Tnum::konst(0xf0).or(a), Tnum { value: 0xf0, mask: 3 });
        assert_eq!(Tnum::konst(0xf0).xor(Tnum::konst(0xff)), Tnum::konst(0x0f));
        assert_eq!(Tnum::konst(0x8000_0000).arshift(31, 32), Tnum::konst(0xffff_ffff));
        assert_eq!(Tnum::konst(1 << 63).arshift(63, 64), Tnum::konst(u64::MAX));
        assert_eq!(
            Tnum { value: 0x1_0000_0001, mask: 0xf0_0000_00f0 }.subreg(),
            Tnum { value: 1, mask: 0xf0 }
        );
        assert_eq!(Tnum::UNKNOWN.const_subreg(5), Tnum { value: 5, mask: 0xffff_ffff_0000_0000 });
        assert_eq!(Tnum { value: 0, mask: 0xff }.fmt_kernel(), "(0x0; 0xff)");
    }

    #[test]
    fn union_intersect_subset() {
        let u = Tnum::konst(4).union(Tnum::konst(6));
        assert_eq!(u, Tnum { value: 4, mask: 2 });
        assert!(Tnum::konst(4).is_subset_of(u));
        assert!(!u.is_subset_of(Tnum::konst(4)));
        assert!(u.is_subset_of(Tnum::UNKNOWN));
        assert_eq!(
            Tnum::range(0, 15).intersect(Tnum { value: 8, mask: !8 }),
            Tnum { value: 8, mask: 7 }
        );
        assert!(Tnum::range(0, 7).is_aligned(1));
        assert!(Tnum { value: 8, mask: 0xf0 }.is_aligned(8));
        assert!(!Tnum { value: 8, mask: 0xf4 }.is_aligned(8));
    }

    #[test]
    fn step_is_the_next_member() {
        for &(value, mask) in
            &[(0u64, 0x10u64), (0x10c, 0xfffe_fef0), (5, 0x8000_0000_0000_00a0), (0, 0)]
        {
            let t = Tnum::new(value, mask);
            for z in [0u64, 1, 4, 5, 8, 15, 16, 17, 0x10c, 0x200, 0xa5, 1 << 40, u64::MAX - 1] {
                let want = if mask.count_ones() <= 12 {
                    let bits: Vec<u32> = (0..64).filter(|b| mask >> b & 1 == 1).collect();
                    (0..1u64 << bits.len())
                        .map(|k| {
                            bits.iter()
                                .enumerate()
                                .fold(t.value, |v, (i, b)| v | ((k >> i & 1) << b))
                        })
                        .filter(|&v| v > z)
                        .min()
                        .unwrap_or(t.umax())
                } else {
                    continue;
                };
                assert_eq!(t.step(z), want, "{t} step {z:#x}");
            }
        }
    }

    /// Exhaustive soundness over small tnums (up to 3 unknown bits in the low 4 bits and a
    /// high bit, so carries, borrows and sign bits are all exercised).
    #[test]
    fn exhaustive_small_soundness() {
        let mut all = Vec::new();
        for mask in [0u64, 1, 2, 5, 0xc, 0x8000_0000_0000_0000, 0x8000_0000_8000_0001] {
            for value in [0u64, 1, 2, 3, 6, 0xf, 0x8000_0000_0000_0002, u64::MAX - 1] {
                all.push(Tnum::new(value, mask));
            }
        }
        for &a in &all {
            for &b in &all {
                let (ma, mb) = (members(a), members(b));
                let (add, sub, mul) = (a.add(b), a.sub(b), a.mul(b));
                let (and, or, xor, uni) = (a.and(b), a.or(b), a.xor(b), a.union(b));
                for &x in &ma {
                    assert!(uni.contains(x));
                    assert!(a.neg().contains(x.wrapping_neg()));
                    for &y in &mb {
                        assert!(uni.contains(y));
                        assert!(add.contains(x.wrapping_add(y)), "{a} + {b}");
                        assert!(sub.contains(x.wrapping_sub(y)), "{a} - {b}");
                        assert!(mul.contains(x.wrapping_mul(y)), "{a} * {b}");
                        assert!(and.contains(x & y));
                        assert!(or.contains(x | y));
                        assert!(xor.contains(x ^ y));
                        if x == y {
                            assert!(a.intersect(b).contains(x));
                        }
                    }
                }
            }
        }
    }
}
