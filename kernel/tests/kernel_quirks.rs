//! Known places where the running kernel departs from the eBPF specification (RFC 9669). Each
//! test asserts the specified result in the interpreter and prints whether the kernel still
//! has the quirk (`KERNEL QUIRK present: ...` / `absent`). Such tests never fail because of the
//! kernel, so a kernel fix gets noticed. The generators in `bpflab-testgen` steer clear of
//! these quirks.

use bpflab_kernel::{KernelMap, KernelProgram, probe};
use bpflab_testgen::{GenProgram, listing};
use bpflab_vm::isa::{AluOp, AtomicOp, Insn, JmpCond, MemSize, Operand, Reg, Width};
use bpflab_vm::{Interpreter, ProgType, Program};

/// Runs `body` in the kernel (full r0 through a map) and in the interpreter.
fn both(body: Vec<Insn>) -> Option<(u64, u64)> {
    if let Err(e) = probe() {
        println!("SKIP: bpf(2) unavailable: {e}");
        return None;
    }
    let p = GenProgram { body };
    let map = KernelMap::array(8, 1).expect("map");
    let prog = KernelProgram::load(ProgType::SocketFilter, &p.for_kernel(map.fd()), "GPL")
        .expect("the verifier accepts the quirk's program");
    prog.test_run(&[0; 64], None, 1).expect("test run");
    let kernel = map.get_u64(0).expect("lookup").expect("element 0");
    let mut prepared =
        Interpreter::default().prepare(&Program::raw("quirk", p.for_interpreter())).unwrap();
    let (interp, _) = prepared.run_raw(&mut vec![0; 64]).expect("interpreter run");
    Some((kernel, interp))
}

/// A 32-bit cmpxchg must zero-extend the old value into r0 (RFC 9669). On a successful
/// compare, x86's `lock cmpxchg` leaves rax alone, so the verifier has to add `w0 = w0`. It
/// does so only when it sees a 64-bit read of r0 on the cmpxchg's path. When that path is
/// pruned at a later join (here the epilogue, which reads r0), the read goes unseen and the
/// zero-extension is left out (seen on 6.18).
#[test]
fn cmpxchg32_zero_extension_after_pruned_join() {
    let st =
        |off, imm| Insn::Store { size: MemSize::Dw, dst: Reg::R10, off, src: Operand::Imm(imm) };
    let ld = |dst, off| Insn::Load { size: MemSize::Dw, signed: false, dst, src: Reg::R10, off };
    let body = vec![
        Insn::Alu { width: Width::W64, op: AluOp::Mov, dst: Reg::R1, src: Operand::Imm(0) },
        st(-8, -1),
        st(-16, 5),
        // The atomic makes the slot opaque, so the verifier does not know r0 below.
        Insn::Atomic {
            size: MemSize::Dw,
            op: AtomicOp::Add,
            dst: Reg::R10,
            src: Reg::R1,
            off: -16,
        },
        ld(Reg::R0, -16),
        Insn::Jump {
            width: Width::W64,
            cond: JmpCond::Ne,
            dst: Reg::R0,
            src: Operand::Imm(1),
            off: 1,
        },
        Insn::Ja { off: 2 },
        ld(Reg::R0, -8),
        // Succeeds (low halves equal): r0 = old value, zero-extended = 0x00000000ffffffff.
        Insn::Atomic {
            size: MemSize::W,
            op: AtomicOp::Cmpxchg,
            dst: Reg::R10,
            src: Reg::R0,
            off: -8,
        },
    ];
    let shown = listing(&body);
    let Some((kernel, interp)) = both(body) else { return };
    assert_eq!(interp, 0x0000_0000_ffff_ffff, "interpreter, program:\n{shown}");
    if kernel == interp {
        println!("KERNEL QUIRK absent: cmpxchg32 zero-extension after a pruned join");
    } else {
        println!(
            "KERNEL QUIRK present: cmpxchg32 left r0 = {kernel:#018x} (spec: {interp:#018x}) \
             when the verifier pruned its path; program:\n{shown}"
        );
    }
}

/// A register loaded by an atomic fetch from a stack slot that holds a spilled constant gets
/// that constant. But precision backtracking treats the atomic like a plain store, so it does
/// not mark the slot precise. At a join, a path on which the slot was overwritten is then
/// pruned as equivalent to one on which it was not. The code only that path reaches is never
/// verified, and gets removed as dead (seen on 6.18). Here the kernel drops `w0 += w0`.
#[test]
fn atomic_fetch_from_spilled_constant_prunes_live_path() {
    let st =
        |off, imm| Insn::Store { size: MemSize::Dw, dst: Reg::R10, off, src: Operand::Imm(imm) };
    let w32 = |op, dst, src| Insn::Alu { width: Width::W32, op, dst, src };
    let body = vec![
        Insn::Alu { width: Width::W64, op: AluOp::Mov, dst: Reg::R1, src: Operand::Imm(0) },
        Insn::Alu { width: Width::W64, op: AluOp::Mov, dst: Reg::R0, src: Operand::Imm(0) },
        // fp-8 holds the spilled constant -1.
        st(-8, -1),
        // r4 = 0, but opaque to the verifier (loaded from a slot an atomic op touched).
        st(-16, 0),
        Insn::Atomic {
            size: MemSize::Dw,
            op: AtomicOp::Add,
            dst: Reg::R10,
            src: Reg::R1,
            off: -16,
        },
        Insn::Load { size: MemSize::Dw, signed: false, dst: Reg::R4, src: Reg::R10, off: -16 },
        // Taken at run time: fp-8 becomes 0xffffffff0001ffff.
        Insn::Jump {
            width: Width::W64,
            cond: JmpCond::Ne,
            dst: Reg::R4,
            src: Operand::Imm(1),
            off: 1,
        },
        Insn::Ja { off: 1 },
        Insn::Store { size: MemSize::H, dst: Reg::R10, off: -6, src: Operand::Imm(1) },
        // Join. r0 = 0xffffffff0001ffff; the verifier believes -1 on the pruned path too.
        Insn::Atomic {
            size: MemSize::Dw,
            op: AtomicOp::FetchAdd,
            dst: Reg::R10,
            src: Reg::R0,
            off: -8,
        },
        Insn::Alu { width: Width::W64, op: AluOp::Mov, dst: Reg::R1, src: Operand::Reg(Reg::R0) },
        w32(AluOp::Add, Reg::R1, Operand::Imm(1)),
        // 0x1ffff > 0x20000 is false: falls through (with -1 it would always jump).
        Insn::Jump {
            width: Width::W32,
            cond: JmpCond::Gt,
            dst: Reg::R0,
            src: Operand::Reg(Reg::R1),
            off: 1,
        },
        w32(AluOp::Add, Reg::R0, Operand::Reg(Reg::R0)),
    ];
    let shown = listing(&body);
    let Some((kernel, interp)) = both(body) else { return };
    assert_eq!(interp, 0x0003_fffe, "interpreter, program:\n{shown}");
    if kernel == interp {
        println!("KERNEL QUIRK absent: atomic fetch from a spilled constant and pruning");
    } else {
        println!(
            "KERNEL QUIRK present: atomic fetch from a spilled constant; kernel r0 = \
             {kernel:#018x} (spec: {interp:#018x}), the verifier removed live code; program:\n\
             {shown}"
        );
    }
}
