//! Structural checks of the generated programs, and runs in the interpreter.

use bpflab_vm::isa::{Insn, Operand, PseudoSrc, Reg};
use bpflab_vm::{Interpreter, Program};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::*;

/// Registers an instruction reads.
fn reads(insn: &Insn) -> Vec<Reg> {
    let op = |o: &Operand| match *o {
        Operand::Reg(r) => vec![r],
        Operand::Imm(_) => vec![],
    };
    match insn {
        Insn::Alu { op: AluOp::Mov, src, .. } => op(src),
        Insn::Alu { op: o, src, .. } if o.is_movsx() => op(src),
        Insn::Alu { dst, src, .. } | Insn::Jump { dst, src, .. } => {
            let mut v = op(src);
            v.push(*dst);
            v
        }
        Insn::Neg { dst, .. } | Insn::Endian { dst, .. } => vec![*dst],
        Insn::Load { src, .. } => vec![*src],
        Insn::Store { dst, src, .. } => {
            let mut v = op(src);
            v.push(*dst);
            v
        }
        Insn::Atomic { op: AtomicOp::Cmpxchg, dst, src, .. } => vec![*dst, *src, Reg::R0],
        Insn::Atomic { dst, src, .. } => vec![*dst, *src],
        _ => vec![],
    }
}

/// Whether an instruction writes `r`.
fn writes(insn: &Insn, r: Reg) -> bool {
    match *insn {
        Insn::Alu { dst, .. }
        | Insn::Neg { dst, .. }
        | Insn::Endian { dst, .. }
        | Insn::LdImm64 { dst, .. }
        | Insn::Load { dst, .. } => dst == r,
        Insn::Atomic { op: AtomicOp::Cmpxchg, .. } => r == Reg::R0,
        Insn::Atomic { op, src, .. } => op.fetches() && src == r,
        _ => false,
    }
}

/// Slot index of each instruction.
fn slot_starts(body: &[Insn]) -> Vec<usize> {
    body.iter()
        .scan(0usize, |next, insn| {
            let at = *next;
            *next += insn.slots();
            Some(at)
        })
        .collect()
}

/// Checks the promises of the crate documentation on one program.
fn check_well_formed(p: &GenProgram) -> Result<(), TestCaseError> {
    let slots = p.slot_count();
    prop_assert!((20..400).contains(&slots), "{} slots", slots);
    let starts = slot_starts(&p.body);
    for (i, insn) in p.body.iter().enumerate() {
        let pc = starts[i];
        prop_assert!(!matches!(insn, Insn::Exit | Insn::Call { .. }), "{:?}", insn);
        prop_assert!(!writes(insn, Reg::R10), "writes r10: {}", insn);
        let memory = matches!(insn, Insn::Load { .. } | Insn::Store { .. } | Insn::Atomic { .. });
        prop_assert!(memory || !reads(insn).contains(&Reg::R10), "reads r10: {}", insn);
        if let Insn::LdImm64 { src, .. } = insn {
            prop_assert_eq!(*src, PseudoSrc::Imm);
        }
        // The prologue initialises r0..r9 in its first ten instructions, reading nothing.
        if i < 10 {
            prop_assert!(writes(insn, Reg::new(i as u8).unwrap()), "prologue {}", insn);
            prop_assert!(reads(insn).is_empty(), "prologue {}", insn);
        }
        if let Some(off) = insn.branch_offset() {
            let target = pc as i64 + 1 + off;
            prop_assert!((0..=slots as i64).contains(&target), "{}: target {}", insn, target);
            let at_insn = target == slots as i64 || starts.contains(&(target as usize));
            prop_assert!(at_insn, "{}: target {} inside ld_imm64", insn, target);
            if off < 0 {
                // A loop's back edge `if rK != 0 goto loop` after `rK -= 1`; the loop starts
                // after `rK = trips` and its body does not write rK.
                let Insn::Jump { dst: k, .. } = *insn else { panic!("backward {insn}") };
                let first = starts.iter().position(|&at| at as i64 == target).unwrap();
                let head = p.body[first - 1];
                let is_head = matches!(
                    head,
                    Insn::Alu { op: AluOp::Mov, dst, src: Operand::Imm(1..=4), .. } if dst == k
                );
                prop_assert!(is_head, "loop head {} of {}", head, insn);
                for inner in &p.body[first..i - 1] {
                    prop_assert!(!writes(inner, k), "loop body writes its counter: {}", inner);
                }
            }
        }
        // The kernel-bug workarounds around fetching atomics (see `ops`).
        if let Insn::Atomic { size, op, off, .. } = *insn
            && op.fetches()
        {
            let slot = off.div_euclid(8) * 8;
            let before = &p.body[i.saturating_sub(2)..i];
            // A loop may have redirected the fetch's src (its counter) but not the xors'.
            let neutral = before.len() == 2
                && before[0] == before[1]
                && matches!(
                    before[0],
                    Insn::Atomic { size: MemSize::Dw, op: AtomicOp::Xor, off, .. } if off == slot
                );
            prop_assert!(neutral, "no xor pair before {}", insn);
            if size == MemSize::W && op == AtomicOp::Cmpxchg {
                let or0 = Insn::Alu {
                    width: Width::W64,
                    op: AluOp::Or,
                    dst: Reg::R0,
                    src: Operand::Imm(0),
                };
                prop_assert_eq!(p.body.get(i + 1), Some(&or0));
            }
        }
        if let Insn::Load { size, off, src: base, .. }
        | Insn::Store { size, off, dst: base, .. }
        | Insn::Atomic { size, off, dst: base, .. } = *insn
        {
            prop_assert_eq!(base, Reg::R10);
            let size = size.bytes() as i16;
            prop_assert!((-STACK_BYTES..0).contains(&off) && off % size == 0, "{}", insn);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 300,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn programs_are_well_formed(p in program()) {
        check_well_formed(&p)?;
    }

    #[test]
    fn programs_run_in_the_interpreter(p in program()) {
        let mut prepared = Interpreter::default()
            .prepare(&Program::raw("gen", p.for_interpreter()))
            .expect("prepare");
        let mut data = vec![0u8; 64];
        let result = prepared.run_raw(&mut data);
        prop_assert!(result.is_ok(), "{:?}\n{}", result, p);
    }
}

#[test]
fn kernel_epilogue_stores_r0() {
    let p = GenProgram { body: vec![Insn::ld_imm64(Reg::R0, 5)] };
    let k = p.for_kernel(7);
    assert_eq!(&k[..1], &p.body[..]);
    assert!(k.contains(&Insn::LdImm64 {
        dst: Reg::R1,
        src: PseudoSrc::MapFd,
        imm: 7,
        next_imm: 0
    }));
    assert_eq!(k.last(), Some(&Insn::Exit));
    assert_eq!(p.for_interpreter(), vec![Insn::ld_imm64(Reg::R0, 5), Insn::Exit]);
    let text = format!("{p:?}");
    assert!(text.contains("   0: r0 = 0x5 ll\n   2: exit"), "{text}");
}

#[test]
fn listing_shows_jump_targets() {
    let insns = [Insn::Ja { off: 1 }, Insn::ld_imm64(Reg::R1, 1), Insn::Exit];
    assert_eq!(listing(&insns), "   0: goto +1    ; -> 2\n   1: r1 = 0x1 ll\n   3: exit\n");
}

#[test]
fn protect_redirects_writes() {
    let k = [Reg::R3];
    let insn =
        Insn::Alu { width: Width::W64, op: AluOp::Add, dst: Reg::R3, src: Operand::Reg(Reg::R3) };
    assert_eq!(
        protect(insn, &k),
        Insn::Alu { width: Width::W64, op: AluOp::Add, dst: Reg::R4, src: Operand::Reg(Reg::R3) }
    );
    let xchg =
        Insn::Atomic { size: MemSize::W, op: AtomicOp::Xchg, dst: Reg::R10, src: Reg::R3, off: -4 };
    assert!(matches!(protect(xchg, &k), Insn::Atomic { src, .. } if src == Reg::R4));
    let add =
        Insn::Atomic { size: MemSize::W, op: AtomicOp::Add, dst: Reg::R10, src: Reg::R3, off: -4 };
    assert_eq!(protect(add, &k), add);
    assert_eq!(substitute(Reg::R9, &[Reg::R9, Reg::R0]), Reg::R1);
}

/// An instruction's form: opcode plus the fields that select the operation (ALU offset,
/// atomic / endian immediate); operands and offsets left out.
fn form(insn: &Insn) -> (u8, i16, i32) {
    let (raw, _) = insn.encode();
    match insn {
        Insn::Alu { .. } => (raw.code, raw.off, 0),
        Insn::Endian { .. } | Insn::Atomic { .. } => (raw.code, 0, raw.imm),
        _ => (raw.code, 0, 0),
    }
}

/// Every instruction form the generator is meant to produce.
fn expected_forms() -> std::collections::BTreeSet<(u8, i16, i32)> {
    let mut v = Vec::new();
    let srcs = [Operand::Imm(1), Operand::Reg(Reg::R1)];
    for width in [Width::W32, Width::W64] {
        for &op in ALU_OPS {
            for src in srcs {
                v.push(Insn::Alu { width, op, dst: Reg::R0, src });
            }
        }
        let sx: &[AluOp] = match width {
            Width::W32 => &[AluOp::Movsx8, AluOp::Movsx16],
            Width::W64 => &[AluOp::Movsx8, AluOp::Movsx16, AluOp::Movsx32],
        };
        for &op in sx {
            v.push(Insn::Alu { width, op, dst: Reg::R0, src: Operand::Reg(Reg::R1) });
        }
        v.push(Insn::Neg { width, dst: Reg::R0 });
        for &cond in JmpCond::ALL {
            for src in srcs {
                v.push(Insn::Jump { width, cond, dst: Reg::R0, src, off: 0 });
            }
        }
    }
    for order in [ByteOrder::Le, ByteOrder::Be, ByteOrder::Swap] {
        for bits in [16, 32, 64] {
            v.push(Insn::Endian { order, bits, dst: Reg::R0 });
        }
    }
    for size in [MemSize::B, MemSize::H, MemSize::W, MemSize::Dw] {
        for signed in [false, true] {
            if !(signed && size == MemSize::Dw) {
                v.push(Insn::Load { size, signed, dst: Reg::R0, src: Reg::R10, off: -8 });
            }
        }
        for src in srcs {
            v.push(Insn::Store { size, dst: Reg::R10, off: -8, src });
        }
    }
    for size in [MemSize::W, MemSize::Dw] {
        for &op in AtomicOp::ALL {
            v.push(Insn::Atomic { size, op, dst: Reg::R10, src: Reg::R1, off: -8 });
        }
    }
    v.extend([Insn::Ja { off: 0 }, Insn::JaLong { imm: 0 }, Insn::ld_imm64(Reg::R0, 0)]);
    v.iter().map(form).collect()
}

#[test]
fn every_instruction_form_is_generated() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let expected = expected_forms();
    let mut seen = std::collections::BTreeSet::new();
    let mut runner = TestRunner::deterministic();
    let strategy = program();
    for _ in 0..500 {
        let p = strategy.new_tree(&mut runner).unwrap().current();
        seen.extend(p.body.iter().map(form));
    }
    let missing: Vec<_> = expected.difference(&seen).collect();
    let extra: Vec<_> = seen.difference(&expected).collect();
    assert!(missing.is_empty(), "never generated (code, off, imm): {missing:x?}");
    assert!(extra.is_empty(), "unexpected forms (code, off, imm): {extra:x?}");
}
