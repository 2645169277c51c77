//! The scalar domain against concrete execution and against the kernel.
//!
//! Soundness: for random abstract scalars that each contain a random concrete value, every
//! transfer function's result contains the concrete result computed by bpflab's interpreter
//! (one real instruction run per case), every decided branch is decided right, and each side
//! of a refined branch keeps the values that go that way.
//!
//! Fidelity: the exact text Linux 6.18's verifier log printed for small programs (recorded
//! with `BPF_PROG_LOAD` at log level 2) is replayed through the same operations here.

use std::cell::RefCell;
use std::collections::HashMap;

use bpflab_verifier::bounds::{Scalar, branch_taken, refine, refine_same};
use bpflab_verifier::tnum::Tnum;
use bpflab_vm::isa::{AluOp, ByteOrder, Insn, JmpCond, MemSize, Operand, Reg, Width};
use bpflab_vm::{Interpreter, Program};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------
// Concrete semantics: the interpreter itself.

thread_local! {
    static PREPARED: RefCell<HashMap<String, bpflab_vm::interp::Prepared>> =
        RefCell::new(HashMap::new());
}

/// Runs `insn` (operating on r2, with r3 as the source) in the interpreter with r2 = `a`,
/// r3 = `b` and returns r2 after it.
fn run_insn(insn: Insn, a: u64, b: u64) -> u64 {
    let load = |dst, off| Insn::Load { size: MemSize::Dw, signed: false, dst, src: Reg::R1, off };
    let key = format!("{insn:?}");
    PREPARED.with(|cache| {
        let mut cache = cache.borrow_mut();
        let prepared = cache.entry(key).or_insert_with(|| {
            let insns = vec![
                load(Reg::R2, 0),
                load(Reg::R3, 8),
                insn,
                Insn::Alu {
                    width: Width::W64,
                    op: AluOp::Mov,
                    dst: Reg::R0,
                    src: Operand::Reg(Reg::R2),
                },
                Insn::Exit,
            ];
            Interpreter::default().prepare(&Program::raw("t", insns)).expect("prepare")
        });
        let mut data = [a.to_le_bytes(), b.to_le_bytes()].concat();
        prepared.run_raw(&mut data).expect("run").0
    })
}

fn width(is64: bool) -> Width {
    if is64 { Width::W64 } else { Width::W32 }
}

/// `a op b` as the interpreter computes it.
fn concrete_alu(op: AluOp, a: u64, b: u64, is64: bool) -> u64 {
    run_insn(Insn::Alu { width: width(is64), op, dst: Reg::R2, src: Operand::Reg(Reg::R3) }, a, b)
}

/// Loads of `bytes` from memory holding `a` (`signed`: LDSX).
fn concrete_load(a: u64, bytes: u8, signed: bool) -> u64 {
    let size = match bytes {
        1 => MemSize::B,
        2 => MemSize::H,
        4 => MemSize::W,
        _ => MemSize::Dw,
    };
    // There is no 8-byte LDSX: a full-width load is the same either way.
    let signed = signed && bytes < 8;
    run_insn(Insn::Load { size, signed, dst: Reg::R2, src: Reg::R1, off: 0 }, a, 0)
}

/// Whether `a cond b` holds (`is32`: on the low halves), as the interpreter's jump decides.
fn concrete_cond(cond: JmpCond, a: u64, b: u64, is32: bool) -> bool {
    let w = if is32 { Width::W32 } else { Width::W64 };
    // `r0 = 1; if r2 cond r3 goto +1; r0 = 0; exit`: r0 stays 1 iff the jump is taken.
    let jump = Insn::Jump { width: w, cond, dst: Reg::R2, src: Operand::Reg(Reg::R3), off: 1 };
    PREPARED.with(|cache| {
        let mut cache = cache.borrow_mut();
        let prepared = cache.entry(format!("{jump:?}")).or_insert_with(|| {
            let load =
                |dst, off| Insn::Load { size: MemSize::Dw, signed: false, dst, src: Reg::R1, off };
            let insns = vec![
                load(Reg::R2, 0),
                load(Reg::R3, 8),
                Insn::Alu { width: Width::W64, op: AluOp::Mov, dst: Reg::R0, src: Operand::Imm(1) },
                jump,
                Insn::Alu { width: Width::W64, op: AluOp::Mov, dst: Reg::R0, src: Operand::Imm(0) },
                Insn::Exit,
            ];
            Interpreter::default().prepare(&Program::raw("t", insns)).expect("prepare")
        });
        let mut data = [a.to_le_bytes(), b.to_le_bytes()].concat();
        prepared.run_raw(&mut data).expect("run").0 == 1
    })
}

// ---------------------------------------------------------------------------------------
// Strategies: a concrete value and an abstract scalar around it.

fn arb_value() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        0u64..=300,
        (u64::MAX - 300)..=u64::MAX,
        0x7fff_ffff_ffff_ff00u64..=0x8000_0000_0000_00ff,
        0x7fff_ff00u64..=0x8000_00ff,
        0xffff_ff00u64..=0x1_0000_00ff,
        0xffff_ffff_7fff_ff00u64..=0xffff_ffff_8000_00ff,
        any::<u32>().prop_map(u64::from),
        any::<i32>().prop_map(|v| v as i64 as u64),
        any::<i8>().prop_map(|v| v as i64 as u64),
        (0u32..64).prop_map(|k| 1u64 << k),
    ]
}

/// Slack below or above a bound: none (the bound sits at its extreme), a little, or a lot.
fn arb_slack() -> impl Strategy<Value = Option<u64>> {
    prop_oneof![
        3 => Just(None),
        3 => (0u64..=16).prop_map(Some),
        2 => (0u64..=70_000).prop_map(Some),
        1 => any::<u64>().prop_map(Some),
    ]
}

fn arb_mask() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(u64::MAX),
        (0u32..=64).prop_map(|k| if k == 64 { u64::MAX } else { (1u64 << k) - 1 }),
        (0u32..=64).prop_map(|k| if k == 64 { 0 } else { !((1u64 << k) - 1) }),
        any::<u64>(),
        any::<u64>().prop_map(|m| m & 0xff),
        any::<u64>().prop_map(|m| m & 0xffff_ffff_0000_0000),
    ]
}

/// An abstract scalar built around `v`: a tnum holding it and eight bounds each holding it,
/// synced.
fn around(v: u64) -> impl Strategy<Value = Scalar> {
    (arb_mask(), proptest::collection::vec(arb_slack(), 8)).prop_map(move |(mask, s)| {
        let sv = v as i64;
        let (v32, s32) = (v as u32, v as i32);
        let mut a = Scalar::unknown();
        a.var_off = Tnum::new(v, mask);
        if let Some(d) = s[0] {
            a.umin = v.saturating_sub(d);
        }
        if let Some(d) = s[1] {
            a.umax = v.saturating_add(d);
        }
        if let Some(d) = s[2] {
            a.smin = sv.saturating_sub(d.min(i64::MAX as u64) as i64);
        }
        if let Some(d) = s[3] {
            a.smax = sv.saturating_add(d.min(i64::MAX as u64) as i64);
        }
        if let Some(d) = s[4] {
            a.u32_min = v32.saturating_sub(d.min(u64::from(u32::MAX)) as u32);
        }
        if let Some(d) = s[5] {
            a.u32_max = v32.saturating_add(d.min(u64::from(u32::MAX)) as u32);
        }
        if let Some(d) = s[6] {
            a.s32_min = s32.saturating_sub(d.min(i32::MAX as u64) as i32);
        }
        if let Some(d) = s[7] {
            a.s32_max = s32.saturating_add(d.min(i32::MAX as u64) as i32);
        }
        a.sync();
        a
    })
}

/// A concrete value with an abstract scalar containing it.
fn arb_pair() -> impl Strategy<Value = (Scalar, u64)> {
    arb_value().prop_flat_map(|v| (around(v), Just(v)))
}

const TRACKED_OPS: [AluOp; 17] = [
    AluOp::Add,
    AluOp::Sub,
    AluOp::Mul,
    AluOp::Div,
    AluOp::Sdiv,
    AluOp::Or,
    AluOp::And,
    AluOp::Lsh,
    AluOp::Rsh,
    AluOp::Mod,
    AluOp::Smod,
    AluOp::Xor,
    AluOp::Mov,
    AluOp::Movsx8,
    AluOp::Movsx16,
    AluOp::Movsx32,
    AluOp::Arsh,
];

fn arb_op() -> impl Strategy<Value = AluOp> {
    proptest::sample::select(TRACKED_OPS.to_vec())
}

/// A pair after zero or one random operation with another pair: the shapes real programs
/// produce (wrapped ranges, shifted tnums, sign-extended values).
fn arb_derived() -> impl Strategy<Value = (Scalar, u64)> {
    prop_oneof![
        2 => arb_pair(),
        1 => (arb_pair(), arb_pair(), arb_op(), any::<bool>()).prop_map(
            |((mut a, x), (b, y), op, is64)| {
                let is64 = is64 || op == AluOp::Movsx32;
                a.alu(op, &b, is64);
                (a, concrete_alu(op, x, y, is64))
            }
        ),
    ]
}

fn arb_cond() -> impl Strategy<Value = JmpCond> {
    proptest::sample::select(JmpCond::ALL.to_vec())
}

fn check(s: &Scalar, v: u64, what: &str) -> Result<(), TestCaseError> {
    prop_assert!(s.contains(v), "{what}: {s:?} ({}) lacks {v:#x}", s.fmt_kernel());
    prop_assert!(!s.bounds_violation(), "{what}: {s:?} violates invariants");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn around_holds_its_value((a, v) in arb_pair()) {
        check(&a, v, "sync")?;
    }

    #[test]
    fn sync_is_sound_and_stable((a, v) in arb_derived()) {
        let mut b = a;
        b.sync();
        check(&b, v, "sync")?;
        // Syncing cannot lose a value nor widen a bound.
        prop_assert!(b.is_subset_of(&a), "{a:?} -> {b:?}");
    }

    #[test]
    fn alu_is_sound((a, x) in arb_derived(), (b, y) in arb_derived(), op in arb_op(),
                    is64 in any::<bool>()) {
        prop_assume!(op != AluOp::Movsx32 || is64);
        let mut r = a;
        r.alu(op, &b, is64);
        let c = concrete_alu(op, x, y, is64);
        check(&r, c, &format!("{:?} {op:?} {:?} is64={is64}: {x:#x} {y:#x}", a, b))?;
    }

    #[test]
    fn alu_with_constant_source_is_sound((a, x) in arb_derived(), imm in any::<i32>(),
                                         shift in 0u64..64, op in arb_op(), is64 in any::<bool>()) {
        prop_assume!(op != AluOp::Movsx32 || is64);
        // Immediates are sign-extended; shift amounts are in range as the kernel demands.
        let y = if matches!(op, AluOp::Lsh | AluOp::Rsh | AluOp::Arsh) {
            if is64 { shift } else { shift & 31 }
        } else {
            imm as i64 as u64
        };
        let b = Scalar::konst(y);
        let mut r = a;
        r.alu(op, &b, is64);
        check(&r, concrete_alu(op, x, y, is64), &format!("{a:?} {op:?} {y:#x} is64={is64}"))?;
    }

    #[test]
    fn pointer_offsets_are_sound((a, x) in arb_derived(), (b, y) in arb_derived()) {
        let mut r = a;
        r.ptr_add(&b);
        check(&r, x.wrapping_add(y), &format!("ptr {a:?} + {b:?}"))?;
        let mut r = a;
        r.ptr_sub(&b);
        check(&r, x.wrapping_sub(y), &format!("ptr {a:?} - {b:?}"))?;
    }

    #[test]
    fn neg_is_sound((a, x) in arb_derived(), is64 in any::<bool>()) {
        let mut r = a;
        r.neg(is64);
        let c = run_insn(Insn::Neg { width: width(is64), dst: Reg::R2 }, x, 0);
        check(&r, c, &format!("neg {a:?} is64={is64}"))?;
    }

    #[test]
    fn endian_is_sound((a, x) in arb_derived(), kind in 0u8..3, bits_i in 0usize..3) {
        let bits = [16u8, 32, 64][bits_i];
        let order = [ByteOrder::Le, ByteOrder::Be, ByteOrder::Swap][kind as usize];
        let mut r = a;
        r.endian(order != ByteOrder::Le, bits);
        let c = run_insn(Insn::Endian { order, bits, dst: Reg::R2 }, x, 0);
        check(&r, c, &format!("{order:?}{bits} {a:?}"))?;
    }

    #[test]
    fn coerce_is_sound((a, x) in arb_derived(), bytes_i in 0usize..4, signed in any::<bool>()) {
        let bytes = [1u8, 2, 4, 8][bytes_i];
        let mut r = a;
        if signed {
            r.coerce_to_size_sx(bytes);
        } else {
            r.coerce_to_size(bytes);
        }
        check(&r, concrete_load(x, bytes, signed), &format!("coerce {bytes} sx={signed} {a:?}"))?;
    }

    #[test]
    fn branches_are_sound((a, x) in arb_derived(), (b, y) in arb_derived(), cond in arb_cond(),
                          is32 in any::<bool>(), same_const in any::<bool>()) {
        // Comparisons against a constant are the common case: make some.
        let (b, y) = if same_const { (Scalar::konst(y), y) } else { (b, y) };
        let truth = concrete_cond(cond, x, y, is32);
        if let Some(decided) = branch_taken(cond, &a, &b, is32) {
            prop_assert_eq!(decided, truth, "{:?} {:?} {:?} is32={}: {:#x} {:#x}", a, cond, b, is32, x, y);
        }
        let (mut ra, mut rb) = (a, b);
        refine(cond, &mut ra, &mut rb, truth, is32);
        let what = format!("{a:?} {cond:?} {b:?} is32={is32} taken={truth}: {x:#x} {y:#x}");
        check(&ra, x, &what)?;
        check(&rb, y, &what)?;
        // The register against itself.
        let same = concrete_cond(cond, x, x, is32);
        if let Some(decided) = branch_taken(cond, &a, &a, is32) {
            prop_assert_eq!(decided, same, "{:?} {:?} itself is32={}: {:#x}", a, cond, is32, x);
        }
        let mut rs = a;
        refine_same(cond, &mut rs, same, is32);
        check(&rs, x, &format!("{a:?} {cond:?} itself is32={is32} taken={same}: {x:#x}"))?;
    }

    #[test]
    fn subset_is_sound((a, v) in arb_derived(), (b, _w) in arb_derived()) {
        prop_assert!(a.is_subset_of(&a));
        prop_assert!(a.is_subset_of(&Scalar::unknown()));
        if a.is_subset_of(&b) {
            prop_assert!(b.contains(v));
        }
        prop_assert!(a.var_off.is_subset_of(a.var_off.union(b.var_off)));
        prop_assert!(b.var_off.is_subset_of(a.var_off.union(b.var_off)));
    }

    #[test]
    fn tnum_ops_are_sound(x in arb_value(), y in arb_value(), mx in arb_mask(), my in arb_mask(),
                          n in 0u8..64) {
        let (a, b) = (Tnum::new(x, mx), Tnum::new(y, my));
        prop_assert!(a.add(b).contains(x.wrapping_add(y)));
        prop_assert!(a.sub(b).contains(x.wrapping_sub(y)));
        prop_assert!(a.mul(b).contains(x.wrapping_mul(y)));
        prop_assert!(a.and(b).contains(x & y));
        prop_assert!(a.or(b).contains(x | y));
        prop_assert!(a.xor(b).contains(x ^ y));
        prop_assert!(a.neg().contains(x.wrapping_neg()));
        prop_assert!(a.lshift(n).contains(x << n));
        prop_assert!(a.rshift(n).contains(x >> n));
        prop_assert!(a.arshift(n, 64).contains(((x as i64) >> n) as u64));
        prop_assert!(a.arshift(n & 31, 32).contains(u64::from(((x as i32) >> (n & 31)) as u32)));
        prop_assert!(a.bswap(16).contains(u64::from((x as u16).swap_bytes())));
        prop_assert!(a.bswap(32).contains(u64::from((x as u32).swap_bytes())));
        prop_assert!(a.bswap(64).contains(x.swap_bytes()));
        prop_assert!(a.union(b).contains(x) && a.union(b).contains(y));
        prop_assert!(a.cast(2).contains(x & 0xffff));
        prop_assert!(Tnum::range(x.min(y), x.max(y)).contains(x));
        prop_assert!(Tnum::range(x.min(y), x.max(y)).contains(y));
        if a.contains(y) {
            prop_assert!(a.intersect(Tnum::konst(y)) == Tnum::konst(y));
            prop_assert!(a.overlaps(b.or(Tnum::konst(0))) || !b.contains(y));
        }
    }
}

// ---------------------------------------------------------------------------------------
// Precision: outcomes the kernel is known to produce.

/// The unknown value a helper such as `bpf_ktime_get_ns` returns.
fn unknown() -> Scalar {
    Scalar::unknown()
}

fn alu(mut a: Scalar, op: AluOp, b: Scalar, is64: bool) -> Scalar {
    a.alu(op, &b, is64);
    a
}

fn k(v: i64) -> Scalar {
    Scalar::konst(v as u64)
}

#[test]
fn and_mask_bounds_and_tnum() {
    let r = alu(unknown(), AluOp::And, k(0xff), true);
    assert_eq!((r.umin, r.umax, r.smin, r.smax), (0, 255, 0, 255));
    assert_eq!(r.var_off, Tnum { value: 0, mask: 0xff });
    assert_eq!(r.fmt_kernel(), "smin=smin32=0,smax=umax=smax32=umax32=255,var_off=(0x0; 0xff)");
    assert_eq!(
        r.fmt_reg(),
        "scalar(smin=smin32=0,smax=umax=smax32=umax32=255,var_off=(0x0; 0xff))"
    );
}

#[test]
fn add_of_ranges() {
    let a = Scalar::urange(0, 10);
    let r = alu(a, AluOp::Add, k(5), true);
    assert_eq!((r.umin, r.umax, r.smin, r.smax), (5, 15, 5, 15));
    let r = alu(a, AluOp::Add, Scalar::urange(5, 5), true);
    assert_eq!((r.umin, r.umax), (5, 15));
    assert!(Scalar::urange(5, 5).is_const());
}

#[test]
fn add32_wraps_to_unknown_low_half() {
    // w = [0xffffff00, 0xffffffff] + 0x100 wraps for some values and not others.
    let a = alu(Scalar::urange(0xffff_ff00, 0xffff_ffff), AluOp::Add, k(0x80), false);
    assert_eq!((a.u32_min, a.u32_max), (0, u32::MAX));
    assert_eq!((a.umin, a.umax), (0, 0xffff_ffff));
    // All values wrapping keep the range: [0xffffff00, 0xffffffff] + 0x100 = [0, 0xff].
    let b = alu(Scalar::urange(0xffff_ff00, 0xffff_ffff), AluOp::Add, k(0x100), false);
    assert_eq!((b.umin, b.umax), (0, 0xff));
    assert_eq!(b.var_off, Tnum { value: 0, mask: 0xff });
}

#[test]
fn branch_refines_the_fall_through() {
    let r = alu(unknown(), AluOp::And, k(0xff), true);
    let (mut a, mut b) = (r, k(10));
    assert_eq!(branch_taken(JmpCond::Gt, &a, &b, false), None);
    refine(JmpCond::Gt, &mut a, &mut b, false, false);
    assert_eq!(a.fmt_kernel(), "smin=smin32=0,smax=umax=smax32=umax32=10,var_off=(0x0; 0xf)");
    let a1 = alu(a, AluOp::Add, k(1), true);
    assert_eq!(
        a1.fmt_kernel(),
        "smin=umin=smin32=umin32=1,smax=umax=smax32=umax32=11,var_off=(0x0; 0xf)"
    );
    let (mut t, mut tb) = (r, k(10));
    refine(JmpCond::Gt, &mut t, &mut tb, true, false);
    assert_eq!((t.umin, t.umax), (11, 255));
    assert_eq!(branch_taken(JmpCond::Gt, &a, &k(10), false), Some(false));
    assert_eq!(branch_taken(JmpCond::Le, &a, &k(10), false), Some(true));
    assert_eq!(branch_taken(JmpCond::Eq, &a, &k(11), false), Some(false));
    assert_eq!(branch_taken(JmpCond::Set, &a, &k(0x100), false), Some(false));
    assert_eq!(branch_taken(JmpCond::Set, &k(3), &k(1), true), Some(true));
}

/// `if r > r` as the 6.18 kernel refines it: both operands live in one register.
#[test]
fn comparing_a_register_with_itself() {
    let r = alu(unknown(), AluOp::And, k(0xff), true);
    assert_eq!(branch_taken(JmpCond::Gt, &r, &r, false), None);
    let mut t = r;
    refine_same(JmpCond::Gt, &mut t, true, false);
    assert_eq!((t.umin, t.umax), (1, 254));
    let mut f = r;
    refine_same(JmpCond::Gt, &mut f, false, false);
    assert_eq!(f, r);
    let mut f = r;
    refine_same(JmpCond::Ge, &mut f, false, false);
    assert_eq!((f.umin, f.umax), (1, 254));
    let mut e = r;
    refine_same(JmpCond::Eq, &mut e, true, false);
    assert_eq!(e, r);
}

#[test]
fn jset_refines_with_single_bits_only() {
    let (mut a, mut b) = (unknown(), k(4));
    refine(JmpCond::Set, &mut a, &mut b, true, false);
    assert_eq!(a.var_off, Tnum { value: 4, mask: !4 });
    let (mut a, mut b) = (unknown(), k(6));
    refine(JmpCond::Set, &mut a, &mut b, true, false);
    assert!(a.var_off.is_unknown());
    let (mut a, mut b) = (unknown(), k(6));
    refine(JmpCond::Set, &mut a, &mut b, false, false);
    assert_eq!(a.var_off, Tnum { value: 0, mask: !6 });
}

/// Text the 6.18 kernel printed after each instruction (`bpf_ktime_get_ns` gives the
/// unknown start).
#[test]
fn kernel_text_for_common_operations() {
    let r = alu(unknown(), AluOp::And, k(0xff), true);
    let mut n = r;
    n.neg(true);
    assert_eq!(n.fmt_kernel(), "smin=smin32=-255,smax=smax32=0");
    n.neg(false);
    assert_eq!(n.fmt_kernel(), "smin=smin32=0,smax=umax=smax32=umax32=255,var_off=(0x0; 0xff)");

    let mut e = r;
    e.endian(false, 16);
    assert_eq!(e, r);
    e.endian(true, 16);
    assert_eq!(
        e.fmt_kernel(),
        "smin=smin32=0,smax=umax=smax32=umax32=0xff00,var_off=(0x0; 0xff00)"
    );
    let mut le = unknown();
    le.endian(false, 32);
    assert_eq!(le.fmt_kernel(), "smin=0,smax=umax=0xffffffff,var_off=(0x0; 0xffffffff)");
    le.endian(false, 64);
    assert_eq!(le.fmt_kernel(), "smin=0,smax=umax=0xffffffff,var_off=(0x0; 0xffffffff)");
    le.endian(true, 64);
    assert_eq!(
        le.fmt_kernel(),
        "smax=0x7fffffff00000000,umax=0xffffffff00000000,smin32=0,smax32=umax32=0,\
         var_off=(0x0; 0xffffffff00000000)"
    );
    let mut u = unknown();
    u.endian(true, 64);
    assert_eq!(u.fmt_kernel(), "");

    let p = alu(alu(unknown(), AluOp::And, k(0xf0), true), AluOp::Or, k(0x10001), true);
    assert_eq!(
        p.fmt_kernel(),
        "smin=umin=smin32=umin32=0x10001,smax=umax=smax32=umax32=0x100f1,var_off=(0x10001; 0xf0)"
    );
    let mut be = p;
    be.endian(true, 32);
    assert_eq!(
        be.fmt_kernel(),
        "smin=umin=umin32=0x1000100,smax=umax=umax32=0xf1000100,smin32=0x81000100,\
         smax32=0x71000100,var_off=(0x1000100; 0xf0000000)"
    );
    let mut sw = p;
    sw.endian(true, 16);
    assert_eq!(
        sw.fmt_kernel(),
        "smin=umin=smin32=umin32=256,smax=umax=smax32=umax32=0xf100,var_off=(0x100; 0xf000)"
    );
    let odd = alu(unknown(), AluOp::Or, k(1), true);
    assert_eq!(
        odd.fmt_kernel(),
        "smin=0x8000000000000001,umin=umin32=1,smin32=0x80000001,var_off=(0x1; 0xfffffffffffffffe)"
    );
    let mut sw = odd;
    sw.endian(true, 32);
    assert_eq!(
        sw.fmt_kernel(),
        "smin=umin=umin32=0x1000000,smax=umax=0xffffffff,smin32=0x81000000,\
         var_off=(0x1000000; 0xfeffffff)"
    );
}

#[test]
fn kernel_text_for_division_and_multiplication() {
    let r = alu(unknown(), AluOp::And, k(0xff), true);
    assert!(alu(r, AluOp::Div, k(3), true).is_unknown());
    assert!(alu(k(10), AluOp::Div, k(3), true).is_unknown());
    assert!(alu(unknown(), AluOp::Mod, k(7), false).is_unknown());
    assert!(alu(r, AluOp::Sdiv, k(2), true).is_unknown());

    let s = alu(alu(unknown(), AluOp::And, k(15), true), AluOp::Sub, k(8), true);
    assert_eq!(s.fmt_kernel(), "smin=smin32=-8,smax=smax32=7");
    assert_eq!(alu(s, AluOp::Mul, k(3), true).fmt_kernel(), "smin=smin32=-24,smax=smax32=21");
    let w = alu(alu(unknown(), AluOp::And, k(15), true), AluOp::Sub, k(8), false);
    assert_eq!(
        w.fmt_kernel(),
        "smin=0,smax=umax=0xffffffff,smin32=-8,smax32=7,var_off=(0x0; 0xffffffff)"
    );
    assert_eq!(
        alu(w, AluOp::Mul, k(-3), false).fmt_kernel(),
        "smin=0,smax=umax=0xffffffff,smin32=-21,smax32=24,var_off=(0x0; 0xffffffff)"
    );
}

#[test]
fn kernel_text_when_every_sum_wraps() {
    let a = alu(alu(unknown(), AluOp::And, k(7), true), AluOp::Add, k(3), true);
    assert_eq!(
        a.fmt_kernel(),
        "smin=umin=smin32=umin32=3,smax=umax=smax32=umax32=10,var_off=(0x0; 0xf)"
    );
    let big = Scalar::konst(1 << 63);
    let once = alu(a, AluOp::Add, big, true);
    assert_eq!(
        once.fmt_kernel(),
        "smin=0x8000000000000003,smax=0x800000000000000a,umin=0x8000000000000003,\
         umax=0x800000000000000a,smin32=umin32=3,smax32=umax32=10,\
         var_off=(0x8000000000000000; 0xf)"
    );
    assert_eq!(alu(once, AluOp::Add, big, true).fmt_kernel(), a.fmt_kernel());
    let down = alu(a, AluOp::Sub, big, true);
    assert_eq!(down.fmt_kernel(), once.fmt_kernel());
    assert_eq!(alu(down, AluOp::Sub, big, true).fmt_kernel(), a.fmt_kernel());
}

/// A packet pointer moved by variable offsets, as the kernel printed it (`r2 = pkt;
/// r2 += r6; r2 -= r7` with r6 in [-16, -1] and r7 in [0, 7]).
#[test]
fn pointer_offsets_as_the_kernel_prints_them() {
    let r6 = alu(alu(unknown(), AluOp::And, k(15), true), AluOp::Sub, k(16), true);
    let r7 = alu(unknown(), AluOp::And, k(7), true);
    let mut off = Scalar::konst(0);
    off.ptr_add(&r6);
    off.ptr_sub(&r7);
    assert_eq!(
        off.fmt_kernel(),
        "smin=smin32=-23,smax=smax32=-1,umin=0xffffffffffffffe9,umin32=0xffffffe9,\
         var_off=(0xffffffffffffffe0; 0x1f)"
    );
    let mut off = Scalar::konst(0);
    off.ptr_add(&r6);
    off.ptr_add(&alu(alu(unknown(), AluOp::And, k(3), true), AluOp::Add, k(16), true));
    assert_eq!(off.fmt_kernel(), "smin=smin32=0,smax=umax=smax32=umax32=18,var_off=(0x0; 0x1f)");
}

/// A register linked to another with a constant delta (`r7 = r0; r7 += 3`) takes the other's
/// refined state plus the delta: the 6.18 kernel printed this after `if r0 > 10` fell
/// through.
#[test]
fn linked_register_with_a_delta() {
    let (mut r0, mut ten) = (unknown(), k(10));
    refine(JmpCond::Gt, &mut r0, &mut ten, false, false);
    let r7 = alu(r0, AluOp::Add, k(3), true);
    assert_eq!(
        r7.fmt_reg(),
        "scalar(smin=umin=smin32=umin32=3,smax=umax=smax32=umax32=13,var_off=(0x0; 0xf))"
    );
}

/// Sign extension as the 6.18 kernel printed it (it works from the s32 bounds).
#[test]
fn kernel_text_for_sign_extension() {
    // w1 &= -16; w1 |= 268; r2 = (s32)r1
    let w = alu(alu(unknown(), AluOp::And, k(-16), false), AluOp::Or, k(268), false);
    assert_eq!(
        w.fmt_kernel(),
        "smin=umin=umin32=268,smax=umax=umax32=0xfffffffc,smin32=0x8000010c,smax32=0x7ffffffc,\
         var_off=(0x10c; 0xfffffef0)"
    );
    let mut m = unknown();
    m.movsx(&w, 32, true);
    assert_eq!(
        m.fmt_kernel(),
        "smin=0xffffffff8000010c,smax=smax32=0x7ffffffc,umin=umin32=268,\
         umax=0xfffffffffffffffc,smin32=0x8000010c,umax32=0xfffffffc"
    );
    m.movsx(&w, 8, true);
    assert_eq!(m.fmt_kernel(), "smin=smin32=-128,smax=smax32=127");
    // w1 &= 14; w1 -= 8: [-8, 6] fits in s8, so (s8) keeps it; the 32-bit form does not.
    let v = alu(alu(unknown(), AluOp::And, k(14), false), AluOp::Sub, k(8), false);
    m.movsx(&v, 8, true);
    assert_eq!(
        m.fmt_kernel(),
        "smin=smin32=-8,smax=smax32=6,umax=0xfffffffffffffffe,umax32=0xfffffffe"
    );
    m.movsx(&v, 8, false);
    assert_eq!(
        m.fmt_kernel(),
        "smin=0,smax=umax=0xffffffff,smin32=-128,smax32=127,var_off=(0x0; 0xffffffff)"
    );
}

/// A tnum and an unsigned range that share one value make a constant (6.18): [8, 16] with
/// only bit 4 unknown can only be 16.
#[test]
fn single_shared_value_is_a_constant() {
    let mut s = Scalar::from_tnum(Tnum { value: 0, mask: 0x10 });
    let mut eight = k(8);
    refine(JmpCond::Ge, &mut s, &mut eight, true, false);
    assert_eq!(s.const_value(), Some(16));
    assert!(!s.bounds_violation());
}

#[test]
fn constants_print_as_values() {
    assert_eq!(k(0).fmt_kernel(), "0");
    assert_eq!(k(-1).fmt_kernel(), "-1");
    assert_eq!(k(32767).fmt_kernel(), "32767");
    assert_eq!(k(32768).fmt_kernel(), "0x8000");
    assert_eq!(k(1 << 63).fmt_kernel(), "0x8000000000000000");
    assert_eq!(unknown().fmt_reg(), "scalar()");
    assert_eq!(k(5).fmt_reg(), "5");
}

#[test]
fn shifts_by_too_much_or_unknown_amounts_are_unknown() {
    let r = alu(unknown(), AluOp::And, k(0xff), true);
    assert!(alu(r, AluOp::Lsh, k(64), true).is_unknown());
    assert!(alu(r, AluOp::Lsh, k(32), false).is_unknown());
    assert!(alu(r, AluOp::Rsh, Scalar::urange(0, 3), true).is_unknown());
    let l = alu(r, AluOp::Lsh, k(8), true);
    assert_eq!((l.umin, l.umax), (0, 0xff00));
    assert_eq!(l.var_off, Tnum { value: 0, mask: 0xff00 });
    let s = alu(alu(r, AluOp::Lsh, k(56), true), AluOp::Arsh, k(56), true);
    assert_eq!((s.smin, s.smax), (-128, 127));
}

#[test]
fn movsx_and_coerce() {
    let r = alu(unknown(), AluOp::And, k(0xff), true);
    let mut m = Scalar::unknown();
    m.movsx(&r, 8, true);
    assert_eq!((m.smin, m.smax), (-128, 127));
    m.movsx(&k(0x80), 8, true);
    assert_eq!(m.const_value(), Some((-128i64) as u64));
    m.movsx(&k(0x80), 8, false);
    assert_eq!(m.const_value(), Some(0xffff_ff80));
    let mut c = unknown();
    c.coerce_to_size(1);
    assert_eq!((c.umin, c.umax, c.var_off), (0, 255, Tnum::range(0, 255)));
    let mut c = Scalar::urange(0x1_0000_0010, 0x1_0000_0020);
    c.coerce_to_size(4);
    assert_eq!((c.umin, c.umax), (0x10, 0x20));
}

/// Sizes the instruction set does not have leave the value alone instead of panicking.
#[test]
fn odd_sizes_do_not_panic() {
    let r = alu(unknown(), AluOp::And, k(0x1ff), true);
    let mut m = Scalar::unknown();
    m.movsx(&r, 32, false);
    assert_eq!(m, alu(Scalar::unknown(), AluOp::Mov, r, false));
    let mut c = r;
    c.coerce_to_size_sx(0);
    assert_eq!(c, r);
    c.coerce_to_size_sx(8);
    assert_eq!(c, r);
    c.coerce_to_size(8);
    assert_eq!(c, r);
}

#[test]
fn subset_for_pruning() {
    let wide = Scalar::urange(0, 100);
    let narrow = Scalar::urange(10, 20);
    assert!(narrow.is_subset_of(&wide));
    assert!(!wide.is_subset_of(&narrow));
    assert!(k(5).is_subset_of(&wide));
    assert!(!k(101).is_subset_of(&wide));
}

#[test]
fn fork_on_bitop_matches_the_kernels_condition() {
    let m = Scalar::srange(-1, 0);
    assert_eq!(m.fork_on_bitop(AluOp::And, &k(4)), Some(false));
    assert_eq!(m.fork_on_bitop(AluOp::Xor, &k(4)), None);
    assert_eq!(m.fork_on_bitop(AluOp::And, &unknown()), None);
    assert_eq!(Scalar::urange(0, 5).fork_on_bitop(AluOp::Or, &k(1)), None);
}

// ---------------------------------------------------------------------------------------
// Differential against the running kernel.
//
// Random straight-line programs over r6..r9 (each starting as a helper's unknown result,
// shaped by a mask, a constant or a shift) go through ALU instructions and conditional jumps
// whose taken side exits at once. The kernel verifies each at log level 2; the text it
// prints for each instruction's destination, for each jump's operands on the fall-through
// (on the jump's line) and on the taken side (the `from N to M:` line), and which sides it
// explored, must be what the scalar domain gives along the same path. Register ids and
// precision marks are stripped from the kernel's text; programs where a jump operand shares
// an id with another register (the kernel refines linked registers together, which is the
// verifier core's business, not the domain's) are left out.

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

const WORK: [u8; 4] = [6, 7, 8, 9];

fn reg(n: u8) -> Reg {
    Reg::new(n).expect("register")
}

fn imm(rng: &mut Rng) -> i32 {
    match rng.below(10) {
        0..=2 => rng.below(321) as i32 - 20,
        3 | 4 => rng.pick(&[
            0xff,
            0xffff,
            0x7fff_ffff,
            -1,
            i32::MIN,
            0x80,
            0x7f,
            0xf0,
            0x100,
            0x1000,
            8,
            16,
            31,
            32,
            63,
            -8,
            -256,
        ]),
        5 | 6 => rng.next() as i32,
        _ => (1i32 << rng.below(31)) * if rng.chance(50) { 1 } else { -1 },
    }
}

fn alu_insn(width: Width, op: AluOp, dst: u8, src: Operand) -> Insn {
    Insn::Alu { width, op, dst: reg(dst), src }
}

fn ld64(dst: u8, v: u64) -> Insn {
    Insn::LdImm64 {
        dst: reg(dst),
        src: bpflab_vm::isa::PseudoSrc::Imm,
        imm: v as u32 as i32,
        next_imm: (v >> 32) as u32 as i32,
    }
}

/// `if dst COND src goto +1; goto +2; r0 = 0; exit`: the taken side exits at once.
fn jump_block(rng: &mut Rng, out: &mut Vec<Insn>) {
    let width = if rng.chance(33) { Width::W32 } else { Width::W64 };
    let cond = rng.pick(JmpCond::ALL);
    let dst = rng.pick(&WORK);
    let src = if rng.chance(50) {
        Operand::Imm(imm(rng))
    } else if rng.chance(10) {
        Operand::Reg(reg(dst))
    } else {
        Operand::Reg(reg(rng.pick(&WORK.iter().copied().filter(|&r| r != dst).collect::<Vec<_>>())))
    };
    out.push(Insn::Jump { width, cond, dst: reg(dst), src, off: 1 });
    out.push(Insn::Ja { off: 2 });
    out.push(alu_insn(Width::W64, AluOp::Mov, 0, Operand::Imm(0)));
    out.push(Insn::Exit);
}

/// Values where the four kinds of bounds meet their edges (as the kernel's reg_bounds
/// selftest picks them).
const EDGES: [u64; 16] = [
    0,
    1,
    0x7f,
    0x80,
    0xff,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x1_0000_0000,
    0x1_0000_0001,
    0x7fff_ffff_ffff_ffff,
    0x8000_0000_0000_0000,
    0xffff_ffff_8000_0000,
    0xffff_ffff_ffff_fffe,
    u64::MAX,
    0xffff_ffff_0000_0000,
];

/// An edge value or one of its neighbours.
fn edge(rng: &mut Rng) -> u64 {
    let e = rng.pick(&EDGES);
    match rng.below(4) {
        0 => e.wrapping_sub(1),
        1 => e.wrapping_add(1),
        _ => e,
    }
}

/// Bounds `r` by two comparisons with edge values (signed or unsigned, 64 or 32 bits), each
/// exiting on the side outside: `r5 = lo; if r < r5 goto exit; r5 = hi; if r > r5 goto exit`.
fn bound_by_jumps(rng: &mut Rng, r: u8, out: &mut Vec<Insn>) {
    let width = if rng.chance(33) { Width::W32 } else { Width::W64 };
    let (lt, gt) =
        if rng.chance(50) { (JmpCond::Lt, JmpCond::Gt) } else { (JmpCond::Slt, JmpCond::Sgt) };
    let (mut lo, mut hi) = (edge(rng), edge(rng));
    let signed = lt == JmpCond::Slt;
    let less = |a: u64, b: u64| match (signed, width) {
        (false, Width::W64) => a < b,
        (true, Width::W64) => (a as i64) < (b as i64),
        (false, Width::W32) => (a as u32) < (b as u32),
        (true, Width::W32) => (a as i32) < (b as i32),
    };
    if less(hi, lo) {
        (lo, hi) = (hi, lo);
    }
    for (cond, v) in [(lt, lo), (gt, hi)] {
        out.push(ld64(5, v));
        out.push(Insn::Jump { width, cond, dst: reg(r), src: Operand::Reg(Reg::R5), off: 1 });
        out.push(Insn::Ja { off: 2 });
        out.push(alu_insn(Width::W64, AluOp::Mov, 0, Operand::Imm(0)));
        out.push(Insn::Exit);
    }
}

fn gen_program(rng: &mut Rng, max_ops: u64, jump_percent: u64) -> Vec<Insn> {
    let call = Insn::Call { kind: bpflab_vm::isa::CallKind::Helper, imm: 5, off: 0 };
    let mut out = Vec::new();
    for r in WORK {
        out.push(call);
        out.push(alu_insn(Width::W64, AluOp::Mov, r, Operand::Reg(Reg::R0)));
        let mask = rng.pick(&[0xff, 0xf, 0xffff, 0x7, 0x3f0, 0xfff0, 0x7fff_ffff, -1, -16, 0xff00]);
        if rng.chance(25) {
            bound_by_jumps(rng, r, &mut out);
            if rng.chance(30) {
                bound_by_jumps(rng, r, &mut out);
            }
            continue;
        }
        match rng.below(10) {
            0 | 1 => {}
            2..=4 => out.push(alu_insn(Width::W64, AluOp::And, r, Operand::Imm(mask))),
            5 => out.push(alu_insn(Width::W32, AluOp::And, r, Operand::Imm(mask))),
            6 => out.push(alu_insn(Width::W64, AluOp::Mov, r, Operand::Imm(imm(rng)))),
            7 => out.push(ld64(r, rng.next())),
            8 => out.push(alu_insn(
                Width::W64,
                AluOp::Rsh,
                r,
                Operand::Imm(1 + rng.below(63) as i32),
            )),
            _ => {
                out.push(alu_insn(Width::W64, AluOp::And, r, Operand::Imm(mask)));
                let op = rng.pick(&[AluOp::Add, AluOp::Sub]);
                out.push(alu_insn(Width::W64, op, r, Operand::Imm(imm(rng))));
            }
        }
    }
    for _ in 0..1 + rng.below(max_ops) {
        if rng.chance(jump_percent) {
            jump_block(rng, &mut out);
            continue;
        }
        let dst = rng.pick(&WORK);
        let mut width = if rng.chance(33) { Width::W32 } else { Width::W64 };
        if rng.chance(6) {
            // Spill a register and fill a narrower part of it back (coerce_reg_to_size, or
            // the _sx variant for a sign-extending load).
            let src = rng.pick(&WORK);
            out.push(Insn::Store {
                size: MemSize::Dw,
                dst: Reg::R10,
                off: -8,
                src: Operand::Reg(reg(src)),
            });
            let size = rng.pick(&[MemSize::B, MemSize::H, MemSize::W]);
            let signed = rng.chance(50);
            out.push(Insn::Load { size, signed, dst: reg(dst), src: Reg::R10, off: -8 });
            continue;
        }
        match rng.below(40) {
            0 => {
                out.push(Insn::Neg { width, dst: reg(dst) });
                continue;
            }
            1 => {
                let order = rng.pick(&[ByteOrder::Le, ByteOrder::Be, ByteOrder::Swap]);
                out.push(Insn::Endian { order, bits: rng.pick(&[16, 32, 64]), dst: reg(dst) });
                continue;
            }
            _ => {}
        }
        let op = rng.pick(&TRACKED_OPS);
        if op == AluOp::Movsx32 {
            width = Width::W64;
        }
        let by_reg = op.is_movsx() || (op == AluOp::Mov && rng.chance(70)) || rng.chance(40);
        let src = if by_reg {
            let mut s = rng.pick(&WORK);
            if op == AluOp::Mov && s == dst {
                s = if dst == 6 { 7 } else { 6 };
            }
            Operand::Reg(reg(s))
        } else {
            Operand::Imm(match op {
                AluOp::Lsh | AluOp::Rsh | AluOp::Arsh => {
                    rng.below(if width == Width::W64 { 64 } else { 32 }) as i32
                }
                AluOp::Div | AluOp::Mod | AluOp::Sdiv | AluOp::Smod => match imm(rng) {
                    0 => 7,
                    v => v,
                },
                _ => imm(rng),
            })
        };
        out.push(alu_insn(width, op, dst, src));
    }
    jump_block(rng, &mut out);
    out.push(alu_insn(Width::W64, AluOp::Mov, 0, Operand::Imm(0)));
    out.push(Insn::Exit);
    out
}

/// The slot each instruction starts at (LD_IMM64 takes two).
fn slots_of(insns: &[Insn]) -> Vec<usize> {
    let mut slots = Vec::with_capacity(insns.len());
    let mut slot = 0;
    for insn in insns {
        slots.push(slot);
        slot += if matches!(insn, Insn::LdImm64 { .. }) { 2 } else { 1 };
    }
    slots
}

fn operand(regs: &[Scalar; 11], src: Operand) -> Scalar {
    match src {
        Operand::Reg(r) => regs[r.idx()],
        Operand::Imm(v) => Scalar::konst(v as i64 as u64),
    }
}

/// Runs `insns` through the scalar domain along the path the kernel explores first (every
/// branch falls through unless it is always taken); returns the values keyed as
/// [`kernel_record`] keys the kernel's.
fn replay(insns: &[Insn]) -> HashMap<String, String> {
    let slots = slots_of(insns);
    let line_at = |slot: usize| slots.iter().position(|&s| s == slot).expect("jump target");
    let mut regs = [Scalar::unknown(); 11];
    let mut spilled = Scalar::unknown();
    let mut out = HashMap::new();
    let mut i = 0;
    while i < insns.len() {
        let this = slots[i];
        i += 1;
        match insns[i - 1] {
            Insn::Call { .. } => regs[0..=5].iter_mut().for_each(Scalar::mark_unknown),
            Insn::Exit => break,
            Insn::Store { src: Operand::Reg(r), .. } => spilled = regs[r.idx()],
            Insn::Load { size, signed, dst, .. } => {
                let bytes = match size {
                    MemSize::B => 1,
                    MemSize::H => 2,
                    MemSize::W => 4,
                    MemSize::Dw => 8,
                };
                let mut v = spilled;
                if signed {
                    v.coerce_to_size_sx(bytes);
                } else {
                    v.coerce_to_size(bytes);
                }
                regs[dst.idx()] = v;
                out.insert(format!("{this}:r{}", dst.num()), v.fmt_reg());
            }
            Insn::Ja { off } => i = line_at((this as i64 + 1 + i64::from(off)) as usize),
            Insn::LdImm64 { dst, imm, next_imm, .. } => {
                let v = u64::from(imm as u32) | (u64::from(next_imm as u32) << 32);
                regs[dst.idx()] = Scalar::konst(v);
                out.insert(format!("{this}:r{}", dst.num()), regs[dst.idx()].fmt_reg());
            }
            Insn::Endian { order, bits, dst } => {
                regs[dst.idx()].endian(order != ByteOrder::Le, bits);
                out.insert(format!("{this}:r{}", dst.num()), regs[dst.idx()].fmt_reg());
            }
            Insn::Neg { width, dst } => {
                regs[dst.idx()].neg(width == Width::W64);
                out.insert(format!("{this}:r{}", dst.num()), regs[dst.idx()].fmt_reg());
            }
            Insn::Alu { width, op, dst, src } => {
                let src = operand(&regs, src);
                let d = dst.idx();
                // The kernel explores the 0 case later; this path carries -1.
                match regs[d].fork_on_bitop(op, &src) {
                    Some(false) => regs[d] = Scalar::konst(u64::MAX),
                    Some(true) => regs[d].mark_known32(u32::MAX),
                    None => {}
                }
                regs[d].alu(op, &src, width == Width::W64);
                out.insert(format!("{this}:r{}", dst.num()), regs[d].fmt_reg());
            }
            Insn::Jump { width, cond, dst, src, off } => {
                let is32 = width == Width::W32;
                let d = dst.idx();
                let mut a = regs[d];
                let mut b = operand(&regs, src);
                let decided = branch_taken(cond, &a, &b, is32);
                out.insert(format!("fall{this}"), (decided != Some(true)).to_string());
                out.insert(format!("taken{this}"), (decided != Some(false)).to_string());
                let (mut ta, mut tb) = (a, b);
                if decided.is_none() {
                    if src == Operand::Reg(dst) {
                        refine_same(cond, &mut ta, true, is32);
                        refine_same(cond, &mut a, false, is32);
                        (tb, b) = (ta, a);
                    } else {
                        refine(cond, &mut ta, &mut tb, true, is32);
                        refine(cond, &mut a, &mut b, false, is32);
                    }
                }
                out.insert(format!("from{this}:r{}", dst.num()), ta.fmt_reg());
                out.insert(format!("{this}:r{}", dst.num()), a.fmt_reg());
                if let Operand::Reg(s) = src {
                    out.insert(format!("from{this}:r{}", s.num()), tb.fmt_reg());
                    out.insert(format!("{this}:r{}", s.num()), b.fmt_reg());
                }
                if decided == Some(true) {
                    // Only the taken side is explored.
                    regs[d] = ta;
                    if let Operand::Reg(s) = src {
                        regs[s.idx()] = tb;
                    }
                    i = line_at((this as i64 + 1 + i64::from(off)) as usize);
                    continue;
                }
                regs[d] = a;
                if let Operand::Reg(s) = src {
                    regs[s.idx()] = b;
                }
            }
            other => panic!("not generated: {other:?}"),
        }
    }
    out
}

/// The registers of a log line's state part (`R6=scalar(...) R7=5 ...`): number and text.
fn log_regs(part: &str) -> Vec<(u8, String)> {
    // Register entries start with `R<digits>=` or `R<digits>_w=` at the start or after a
    // space; values only hold spaces inside `var_off=(a; b)`.
    let b = part.as_bytes();
    let mut starts = Vec::new();
    for i in 0..b.len() {
        if i > 0 && b[i - 1] != b' ' {
            continue;
        }
        // Stack slots (`fp-8=...`) end the previous entry but are not registers.
        if part[i..].starts_with("fp-") {
            let digits = part[i + 3..].bytes().take_while(u8::is_ascii_digit).count();
            let tail = &part[i + 3 + digits..];
            if digits > 0 && (tail.starts_with('=') || tail.starts_with("_w=")) {
                starts.push((i, u8::MAX, i));
            }
            continue;
        }
        if b[i] == b'R' {
            let mut j = i + 1;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            if j > i + 1 && (part[j..].starts_with('=') || part[j..].starts_with("_w=")) {
                starts.push((
                    i,
                    part[i + 1..j].parse::<u8>().unwrap(),
                    part[j..].find('=').unwrap() + j + 1,
                ));
            }
        }
    }
    let mut out = Vec::new();
    for (k, &(_, n, val)) in starts.iter().enumerate() {
        if n == u8::MAX {
            continue;
        }
        let end = starts.get(k + 1).map(|s| s.0).unwrap_or(b.len());
        out.push((n, part[val..end].trim().to_string()));
    }
    out
}

/// A scalar's text without the register id (`id=3,`, `id=3+5`) and precision mark.
fn strip_ids(text: &str) -> String {
    let t = text.strip_prefix('P').unwrap_or(text);
    let Some(start) = t.find("id=") else { return t.to_string() };
    let rest = &t[start + 3..];
    let len = rest.find([',', ')']).unwrap_or(rest.len());
    let after = &rest[len..];
    let after = after.strip_prefix(',').unwrap_or(after);
    format!("{}{}", &t[..start], after)
}

/// The base id of a register's printed state, if any.
fn id_of(text: &str) -> Option<u32> {
    let start = text.find("id=")? + 3;
    let digits: String = text[start..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// What the kernel's level-2 log says about `insns` along its first path, keyed like
/// [`replay`]; `None` when a jump operand is linked to another register.
fn kernel_record(insns: &[Insn], log: &str) -> Option<HashMap<String, String>> {
    let slots = slots_of(insns);
    let mut jumps: HashMap<usize, Vec<u8>> = HashMap::new();
    for (k, insn) in insns.iter().enumerate() {
        if let Insn::Jump { dst, src, .. } = insn {
            let mut ops = vec![dst.num()];
            if let Operand::Reg(s) = src
                && s != dst
            {
                ops.push(s.num());
            }
            jumps.insert(slots[k], ops);
        }
    }
    let mut exp = HashMap::new();
    // Instructions of the first path, jumps whose taken side was popped for the first path,
    // and the earliest instruction where the kernel forked a state (maybe_fork_scalars):
    // states pushed by the forked path are not the first path's.
    let mut seen = std::collections::HashSet::new();
    let mut taken_from = std::collections::HashSet::new();
    let mut fork_at: Option<usize> = None;
    let mut ids: HashMap<u8, Option<u32>> = HashMap::new();
    let mut main = true;
    for line in log.lines() {
        if let Some(rest) = line.strip_prefix("from ") {
            main = false;
            let (from, regs) = rest.split_once(": ")?;
            let k: usize = from.split(' ').next()?.parse().ok()?;
            let Some(ops) = jumps.get(&k) else {
                fork_at = Some(fork_at.map_or(k, |f| f.min(k)));
                continue;
            };
            if fork_at.is_some_and(|f| k > f) {
                continue;
            }
            taken_from.insert(k);
            if regs.trim() == "safe" {
                continue;
            }
            for (n, text) in log_regs(regs) {
                if ops.contains(&n) {
                    exp.entry(format!("from{k}:r{n}")).or_insert_with(|| strip_ids(&text));
                }
            }
            continue;
        }
        // `N: (op) insn   ; R..=..`
        let Some((num, rest)) = line.split_once(": (") else { continue };
        let Ok(k) = num.parse::<usize>() else { continue };
        if !main {
            continue;
        }
        seen.insert(k);
        if rest.starts_with("95)") {
            main = false;
        }
        let Some((_, regs)) = rest.split_once("; ") else { continue };
        let regs = log_regs(regs);
        if let Some(ops) = jumps.get(&k) {
            for &op in ops {
                let id = ids.get(&op).copied().flatten();
                if id.is_some()
                    && WORK.iter().any(|&o| o != op && ids.get(&o).copied().flatten() == id)
                {
                    return None;
                }
            }
        }
        for (n, text) in &regs {
            ids.insert(*n, id_of(text));
        }
        let Some(idx) = slots.iter().position(|&s| s == k) else { continue };
        let wanted: Vec<u8> = match insns[idx] {
            Insn::Jump { .. } => jumps[&k].clone(),
            Insn::Alu { dst, .. }
            | Insn::Neg { dst, .. }
            | Insn::Endian { dst, .. }
            | Insn::LdImm64 { dst, .. }
            | Insn::Load { dst, .. } => vec![dst.num()],
            _ => vec![],
        };
        for (n, text) in regs {
            if wanted.contains(&n) {
                exp.entry(format!("{k}:r{n}")).or_insert_with(|| strip_ids(&text));
            }
        }
    }
    for &k in jumps.keys() {
        if seen.contains(&k) {
            exp.insert(format!("fall{k}"), seen.contains(&(k + 1)).to_string());
            let taken = seen.contains(&(k + 2)) || taken_from.contains(&k);
            exp.insert(format!("taken{k}"), taken.to_string());
        }
    }
    Some(exp)
}

fn kernel_log(insns: &[Insn]) -> Option<String> {
    use bpflab_kernel::verdict::{BPF_LOG_LEVEL2, VerdictOptions, kernel_verdict};
    let p = Program::raw("bounds", insns.to_vec()).with_type(bpflab_vm::ProgType::SocketFilter);
    let opts = VerdictOptions { log_level: BPF_LOG_LEVEL2, ..VerdictOptions::default() };
    let v = kernel_verdict(&bpflab_vm::Collection::single(p), 0, &opts).expect("kernel decides");
    assert!(v.accepted, "the kernel refused a generated program:\n{}", v.log);
    Some(v.log)
}

fn kernel_available() -> bool {
    match bpflab_kernel::probe() {
        Ok(()) => true,
        Err(e) => {
            eprintln!("kernel comparison skipped: {e}");
            false
        }
    }
}

/// Generates `count` programs from `seed`, has the kernel verify each, and returns the
/// number of values compared and the differences.
fn differential(
    seed: u64,
    count: usize,
    max_ops: u64,
    jump_percent: u64,
) -> (usize, usize, Vec<String>) {
    let mut rng = Rng(seed);
    let (mut compared, mut programs, mut bad) = (0, 0, Vec::new());
    for _ in 0..count {
        let insns = gen_program(&mut rng, max_ops, jump_percent);
        let log = kernel_log(&insns).expect("log");
        let Some(want) = kernel_record(&insns, &log) else { continue };
        programs += 1;
        let got = replay(&insns);
        let mut diffs = Vec::new();
        let mut keys: Vec<_> = want.keys().collect();
        keys.sort();
        for key in keys {
            compared += 1;
            let have = got.get(key).map(String::as_str).unwrap_or("<none>");
            if have != want[key] {
                diffs.push(format!("  {key}: kernel {}\n  {key}: bpflab {have}", want[key]));
            }
        }
        if !diffs.is_empty() {
            // `BPFLAB_BOUNDS_DUMP=<dir>` writes each differing program with the kernel's log
            // and every value replayed, for debugging.
            if let Ok(dir) = std::env::var("BPFLAB_BOUNDS_DUMP") {
                let n = bad.len();
                let mut keys: Vec<_> = got.iter().collect();
                keys.sort();
                let ours: Vec<String> = keys.iter().map(|(k, v)| format!("{k} = {v}")).collect();
                std::fs::write(
                    format!("{dir}/case{n}.txt"),
                    format!(
                        "{}\n{}\n---- kernel\n{log}\n---- ours\n{}",
                        bpflab_vm::asm::disassemble(&insns),
                        diffs.join("\n"),
                        ours.join("\n")
                    ),
                )
                .expect("write the dump");
            }
            bad.push(format!("{}\n{}", bpflab_vm::asm::disassemble(&insns), diffs.join("\n")));
        }
    }
    (programs, compared, bad)
}

fn assert_agrees(seed: u64, count: usize, max_ops: u64, jump_percent: u64) {
    if !kernel_available() {
        return;
    }
    let (programs, compared, bad) = differential(seed, count, max_ops, jump_percent);
    eprintln!("{programs} programs, {compared} values compared with the kernel");
    for b in bad.iter().take(10) {
        eprintln!("{b}\n");
    }
    assert!(bad.is_empty(), "{} of {programs} programs differ from the kernel", bad.len());
    // Most programs are kept (few have linked jump operands) and each gives many values.
    assert!(programs * 10 >= count * 8, "only {programs} of {count} programs compared");
    assert!(compared >= programs * 10, "only {compared} values compared");
}

#[test]
fn kernel_agrees_on_short_programs() {
    assert_agrees(0x5ca1_ab1e, 1500, 8, 25);
}

#[test]
fn kernel_agrees_on_long_programs_with_many_branches() {
    assert_agrees(0xb0a7_f00d, 600, 25, 50);
}

/// The inside of a pointer's text without its id, fixed offset and packet range: what the
/// kernel prints of the variable offset (`smin=...,var_off=(...)`, or `imm=N`).
fn pointer_var_text(text: &str) -> Option<String> {
    let inner = text.split_once('(')?.1.strip_suffix(')')?;
    let kept: Vec<&str> = inner
        .split(',')
        .filter(|f| !f.starts_with("id=") && !f.starts_with("off=") && !f.starts_with("r="))
        .collect();
    Some(kept.join(","))
}

/// Packet pointers moved by variable offsets (`ptr_add` / `ptr_sub`), printed by the kernel
/// on the copy `r3 = r2` after each step.
#[test]
fn kernel_agrees_on_pointer_offsets() {
    if !kernel_available() {
        return;
    }
    let mut rng = Rng(0x0ff5_e75e);
    let call = Insn::Call { kind: bpflab_vm::isa::CallKind::Helper, imm: 5, off: 0 };
    let (mut programs, mut compared, mut bad) = (0, 0, Vec::new());
    for _ in 0..300 {
        let mut insns = vec![alu_insn(Width::W64, AluOp::Mov, 9, Operand::Reg(Reg::R1))];
        let mut offs = [Scalar::unknown(); 3];
        // Offsets small enough for the kernel's pointer sanity limits (1 << 29).
        for (i, r) in [6u8, 7, 8].into_iter().enumerate() {
            insns.push(call);
            insns.push(alu_insn(Width::W64, AluOp::Mov, r, Operand::Reg(Reg::R0)));
            let mask = rng.pick(&[0xff, 0xf, 0xfff, 0x7, 0x3f0, 0xfff0, -16i32 & 0xffff]);
            let width = if rng.chance(30) { Width::W32 } else { Width::W64 };
            insns.push(alu_insn(width, AluOp::And, r, Operand::Imm(mask)));
            let mut s = Scalar::unknown();
            s.alu(AluOp::And, &Scalar::konst(mask as i64 as u64), width == Width::W64);
            if rng.chance(60) {
                let c = rng.below(70_000) as i32 - 35_000;
                let op = rng.pick(&[AluOp::Add, AluOp::Sub]);
                insns.push(alu_insn(Width::W64, op, r, Operand::Imm(c)));
                s.alu(op, &Scalar::konst(c as i64 as u64), true);
            }
            offs[i] = s;
        }
        // r2 = skb->data
        insns.push(Insn::Load {
            size: MemSize::W,
            signed: false,
            dst: Reg::R2,
            src: Reg::R9,
            off: 76,
        });
        let mut var = Scalar::konst(0);
        let mut want = Vec::new();
        for _ in 0..1 + rng.below(5) {
            let i = rng.below(3) as usize;
            let op = rng.pick(&[AluOp::Add, AluOp::Sub]);
            insns.push(alu_insn(Width::W64, op, 2, Operand::Reg(reg(6 + i as u8))));
            let slot = slots_of(&insns).last().copied().unwrap() + 1;
            insns.push(alu_insn(Width::W64, AluOp::Mov, 3, Operand::Reg(Reg::R2)));
            let off = offs[i];
            if off.const_value().is_none() {
                if op == AluOp::Add {
                    var.ptr_add(&off);
                } else {
                    var.ptr_sub(&off);
                }
            }
            let ours = match var.const_value() {
                Some(0) => String::new(),
                Some(v) => format!("imm={}", Scalar::konst(v)),
                None => var.fmt_kernel(),
            };
            want.push((slot, ours));
        }
        insns.push(alu_insn(Width::W64, AluOp::Mov, 0, Operand::Imm(0)));
        insns.push(Insn::Exit);
        let p = Program::raw("bounds_ptr", insns.clone()).with_type(bpflab_vm::ProgType::SchedCls);
        let opts = bpflab_kernel::verdict::VerdictOptions {
            log_level: bpflab_kernel::verdict::BPF_LOG_LEVEL2,
            ..Default::default()
        };
        let v = bpflab_kernel::verdict::kernel_verdict(&bpflab_vm::Collection::single(p), 0, &opts)
            .expect("kernel decides");
        if !v.accepted {
            // Offsets that add up beyond the kernel's limits are refused; not our business.
            continue;
        }
        programs += 1;
        for (slot, ours) in want {
            let prefix = format!("{slot}: (bf) r3 = r2");
            let line = v.log.lines().find(|l| l.starts_with(&prefix)).expect("the copy is logged");
            let state = line.split_once("; ").expect("state printed").1;
            let r3 = log_regs(state).into_iter().find(|(n, _)| *n == 3).expect("R3").1;
            let kernel = pointer_var_text(&r3).expect("pointer text");
            compared += 1;
            if kernel != ours {
                bad.push(format!(
                    "{}\n  {slot}: kernel {kernel}\n  {slot}: bpflab {ours}",
                    bpflab_vm::asm::disassemble(&insns)
                ));
                break;
            }
        }
    }
    eprintln!("{programs} programs, {compared} pointer offsets compared with the kernel");
    for b in bad.iter().take(5) {
        eprintln!("{b}\n");
    }
    assert!(bad.is_empty(), "{} of {programs} programs differ", bad.len());
    assert!(programs >= 200 && compared >= programs, "{programs} programs, {compared} values");
}
