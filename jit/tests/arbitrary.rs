//! Arbitrary programs no verifier would accept: pointer arithmetic with random offsets off
//! the input, the stack and map values, accesses of every width with random alignment, bad
//! pointers, helper calls with random arguments, forward and backward jumps, local calls.
//! The checked JIT must match the interpreter exactly (faults included); the trusted JIT,
//! which only checks what host memory safety needs, must run them without touching memory
//! outside the world's regions (a bug would crash this test or show under a sanitizer) and
//! must agree with the interpreter on every run that completes in both.

mod common;

use bpflab_jit::oracle::{Case, RunResult, observe};
use bpflab_vm::isa::{AluOp, AtomicOp, CallKind, Insn, JmpCond, MemSize, Operand, Reg, Width};
use bpflab_vm::spec::{MapSpec, MapType};
use bpflab_vm::{Collection, Program, RunInput};
use proptest::prelude::*;

/// Programs checked.
const CASES: u32 = 2000;

fn reg() -> impl Strategy<Value = Reg> {
    (0u8..=10).prop_map(|n| Reg::new(n).expect("register"))
}

fn size() -> impl Strategy<Value = MemSize> {
    proptest::sample::select(&[MemSize::B, MemSize::H, MemSize::W, MemSize::Dw][..])
}

fn off() -> impl Strategy<Value = i16> {
    prop_oneof![-20i16..20, -530i16..-480, any::<i16>()]
}

fn insn() -> impl Strategy<Value = Insn> {
    let alu = (
        proptest::sample::select(&[AluOp::Add, AluOp::Sub, AluOp::Mov, AluOp::And][..]),
        reg(),
        prop_oneof![
            reg().prop_map(Operand::Reg),
            prop_oneof![-600i32..600, any::<i32>()].prop_map(Operand::Imm)
        ],
    )
        .prop_map(|(op, dst, src)| Insn::Alu { width: Width::W64, op, dst, src });
    let load =
        (size(), any::<bool>(), reg(), reg(), off()).prop_map(|(size, signed, dst, src, off)| {
            Insn::Load { size, signed: signed && size != MemSize::Dw, dst, src, off }
        });
    let store = (
        size(),
        reg(),
        off(),
        prop_oneof![reg().prop_map(Operand::Reg), any::<i32>().prop_map(Operand::Imm)],
    )
        .prop_map(|(size, dst, off, src)| Insn::Store { size, dst, off, src });
    let atomic = (
        prop_oneof![Just(MemSize::W), Just(MemSize::Dw)],
        proptest::sample::select(AtomicOp::ALL),
        reg(),
        reg(),
        off(),
    )
        .prop_map(|(size, op, dst, src, off)| Insn::Atomic { size, op, dst, src, off });
    let jump = (proptest::sample::select(JmpCond::ALL), reg(), reg(), -3i16..6).prop_map(
        |(cond, dst, src, off)| Insn::Jump {
            width: Width::W64,
            cond,
            dst,
            src: Operand::Reg(src),
            off,
        },
    );
    let helper = proptest::sample::select(&[1i32, 2, 3, 5, 6, 7, 44, 181][..])
        .prop_map(|imm| Insn::Call { kind: CallKind::Helper, imm, off: 0 });
    let map_value = (reg(), 0i32..16).prop_map(|(dst, next)| Insn::LdImm64 {
        dst,
        src: bpflab_vm::isa::PseudoSrc::MapIdxValue,
        imm: 0,
        next_imm: next,
    });
    prop_oneof![
        4 => alu,
        4 => load,
        3 => store,
        1 => atomic,
        2 => jump,
        1 => helper,
        1 => map_value,
        1 => Just(Insn::Exit),
        1 => (0i32..4).prop_map(|imm| Insn::Call { kind: CallKind::Local, imm, off: 0 }),
    ]
}

/// Programs of 2..40 instructions; jump and call targets out of range are fixed up to the
/// last instruction (`exit`).
fn program() -> impl Strategy<Value = Vec<Insn>> {
    prop::collection::vec(insn(), 1..40).prop_map(|mut insns| {
        insns.push(Insn::Exit);
        let mut at = Vec::new();
        let mut pc = 0i64;
        for i in &insns {
            at.push(pc);
            pc += i.slots() as i64;
        }
        let n = insns.len();
        let last = at[n - 1];
        for k in 0..n {
            let here = at[k];
            let fix = |off: i64| -> i64 {
                let t = here + 1 + off;
                if t < 0 || t > last || !at.contains(&t) { last - here - 1 } else { off }
            };
            match &mut insns[k] {
                Insn::Jump { off, .. } => *off = fix(i64::from(*off)) as i16,
                Insn::Call { kind: CallKind::Local, imm, .. } => *imm = fix(i64::from(*imm)) as i32,
                _ => {}
            }
        }
        insns
    })
}

#[test]
fn arbitrary_programs_checked_exact_trusted_safe() {
    let oracle = common::oracle();
    let stats = std::cell::Cell::new((0u32, 0u32));
    let checked = common::run_cases(
        "arbitrary programs",
        0xa5a5,
        program(),
        CASES,
        |insns| bpflab_testgen::listing(insns),
        |insns| {
            let collection = Collection {
                maps: vec![MapSpec::new("m", MapType::Array, 4, 16, 2)],
                programs: vec![Program::raw("arb", insns.clone())],
                ..Collection::default()
            };
            let case = Case::single(collection, RunInput::data(vec![0x11; 32]));
            let seen = oracle.check(&case, false).map_err(|e| e.to_string())?;
            let trusted = observe(oracle.trusted(), &case).map_err(|e| e.to_string())?;
            let (ok, faulted) = stats.get();
            match (&seen.runs[0], &trusted.runs[0]) {
                (RunResult::Ok(a), RunResult::Ok(b)) => {
                    stats.set((ok + 1, faulted));
                    if (a.r0, &a.data) != (b.r0, &b.data) {
                        return Err(format!("trusted: r0 {:#x} vs {:#x}, or memory", a.r0, b.r0));
                    }
                }
                _ => stats.set((ok, faulted + 1)),
            }
            Ok(())
        },
    );
    assert_eq!(checked, common::expected_cases(CASES));
    let (ok, faulted) = stats.get();
    println!("arbitrary programs: {ok} completed, {faulted} faulted");
    assert_eq!(ok + faulted, checked);
    assert!(ok > 0 && faulted > 0);
}
