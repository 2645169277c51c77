//! Interpreter semantics, one behaviour per test: values the ISA (and the kernel) defines,
//! and the typed fault, with its instruction index, for everything it refuses.

use bpflab_vm::asm::assemble;
use bpflab_vm::interp::{Config, LoadError, VmErrorKind};
use bpflab_vm::isa::{Insn, PseudoSrc, Reg};
use bpflab_vm::memory::{Access, MemError, RegionKind};
use bpflab_vm::{Interpreter, Program, standard_helpers};

/// Runs `src` with `mem` as input; returns r0.
fn run_mem(src: &str, mem: &mut Vec<u8>) -> Result<u64, bpflab_vm::VmError> {
    let insns = assemble(src).unwrap_or_else(|e| panic!("{e}\n{src}"));
    let mut p = Interpreter::default().prepare(&Program::raw("t", insns)).expect("prepare");
    p.run_raw(mem).map(|(r0, _)| r0)
}

fn run(src: &str) -> u64 {
    run_mem(src, &mut Vec::new()).unwrap_or_else(|e| panic!("{e}\n{src}"))
}

fn fault(src: &str) -> (usize, VmErrorKind) {
    let e = run_mem(src, &mut vec![0; 16]).expect_err("program should fault");
    (e.pc(), e.kind().clone())
}

#[test]
fn division_and_modulo_by_zero() {
    assert_eq!(run("r0 = 7\nr1 = 0\nr0 /= r1\nexit"), 0);
    assert_eq!(run("r0 = 7\nr1 = 0\nr0 %= r1\nexit"), 7);
    assert_eq!(run("r0 = -1\nw1 = 0\nw0 /= w1\nexit"), 0);
    // 32-bit modulo by zero keeps the low half and zero-extends.
    assert_eq!(run("r0 = -1\nw1 = 0\nw0 %= w1\nexit"), 0xffff_ffff);
    assert_eq!(run("r0 = -7\nr1 = 0\nr0 s/= r1\nexit"), 0);
    assert_eq!(run("r0 = -7\nr1 = 0\nr0 s%= r1\nexit"), -7i64 as u64);
}

#[test]
fn signed_division_overflow_and_truncation() {
    let min = "r0 = 0x8000000000000000 ll\n";
    assert_eq!(run(&format!("{min}r0 s/= -1\nexit")), i64::MIN as u64);
    assert_eq!(run(&format!("{min}r0 s%= -1\nexit")), 0);
    assert_eq!(run("w0 = -2147483648\nw0 s/= -1\nexit"), 0x8000_0000);
    assert_eq!(run("r0 = -7\nr0 s/= 2\nexit"), -3i64 as u64);
    assert_eq!(run("r0 = -7\nr0 s%= 2\nexit"), -1i64 as u64);
    assert_eq!(run("r0 = 7\nr0 s%= -2\nexit"), 1);
    // Unsigned division with an immediate uses the sign-extended immediate.
    assert_eq!(run("r0 = -1\nr0 /= -1\nexit"), 1);
    assert_eq!(run("w0 = -1\nw0 /= -1\nexit"), 1);
}

#[test]
fn shifts_are_masked_to_the_width() {
    assert_eq!(run("r0 = 1\nr1 = 65\nr0 <<= r1\nexit"), 2);
    assert_eq!(run("w0 = 1\nw1 = 33\nw0 <<= w1\nexit"), 2);
    assert_eq!(run("r0 = -8\nr1 = 66\nr0 s>>= r1\nexit"), -2i64 as u64);
    assert_eq!(run("w0 = -8\nw1 = 34\nw0 s>>= w1\nexit"), 0xffff_fffe);
    assert_eq!(run("r0 = -1\nr0 >>= 60\nexit"), 0xf);
}

#[test]
fn alu32_zero_extends() {
    assert_eq!(run("r0 = -1\nw0 += 1\nexit"), 0);
    assert_eq!(run("r0 = -1\nw0 = w0\nexit"), 0xffff_ffff);
    assert_eq!(run("r0 = -1\nw0 = -w0\nexit"), 1);
    assert_eq!(run("w0 = -1\nexit"), 0xffff_ffff);
    assert_eq!(run("r0 = -1\nexit"), u64::MAX);
    assert_eq!(run("r0 = 0x100000000 ll\nw0 *= 3\nexit"), 0);
}

#[test]
fn sign_extending_moves() {
    assert_eq!(run("r1 = 0x80\nr0 = (s8)r1\nexit"), -128i64 as u64);
    assert_eq!(run("r1 = 0x8000\nr0 = (s16)r1\nexit"), -32768i64 as u64);
    assert_eq!(run("r1 = 0x80000000 ll\nr0 = (s32)r1\nexit"), 0xffff_ffff_8000_0000);
    assert_eq!(run("r1 = 0x80\nw0 = (s8)w1\nexit"), 0xffff_ff80);
    assert_eq!(run("r1 = 0x1ff\nw0 = (s16)w1\nexit"), 0x1ff);
}

#[test]
fn byte_swaps() {
    let v = "r0 = 0x1122334455667788 ll\n";
    assert_eq!(run(&format!("{v}r0 = be16 r0\nexit")), 0x8877);
    assert_eq!(run(&format!("{v}r0 = be32 r0\nexit")), 0x8877_6655);
    assert_eq!(run(&format!("{v}r0 = be64 r0\nexit")), 0x8877_6655_4433_2211);
    assert_eq!(run(&format!("{v}r0 = le16 r0\nexit")), 0x7788);
    assert_eq!(run(&format!("{v}r0 = le32 r0\nexit")), 0x5566_7788);
    assert_eq!(run(&format!("{v}r0 = le64 r0\nexit")), 0x1122_3344_5566_7788);
    assert_eq!(run(&format!("{v}r0 = bswap16 r0\nexit")), 0x8877);
    assert_eq!(run(&format!("{v}r0 = bswap64 r0\nexit")), 0x8877_6655_4433_2211);
}

#[test]
fn jumps_signed_unsigned_and_32_bit() {
    let t =
        |cond: &str| run(&format!("r0 = 0\nr1 = -1\nr2 = 1\n{cond} goto +1\nexit\nr0 = 1\nexit"));
    assert_eq!(t("if r1 > r2"), 1);
    assert_eq!(t("if r1 s> r2"), 0);
    assert_eq!(t("if r1 s< r2"), 1);
    assert_eq!(t("if r1 & r2"), 1);
    assert_eq!(t("if r1 != r2"), 1);
    assert_eq!(t("if r2 <= 1"), 1);
    assert_eq!(t("if r1 == -1"), 1);
    // JMP32 compares the low halves only.
    assert_eq!(run("r0 = 0\nr1 = 0x100000001 ll\nif w1 == 1 goto +1\nexit\nr0 = 1\nexit"), 1);
    assert_eq!(run("r0 = 0\nr1 = 0x100000001 ll\nif r1 == 1 goto +1\nexit\nr0 = 1\nexit"), 0);
    assert_eq!(run("r0 = 0\nw1 = -1\nif w1 s< 0 goto +1\nexit\nr0 = 1\nexit"), 1);
    // gotol
    assert_eq!(run("r0 = 1\ngotol +1\nr0 = 2\nexit"), 1);
}

#[test]
fn stack_and_ldsx() {
    let src = "r1 = -2\n*(u64 *)(r10 - 8) = r1\nr0 = *(u32 *)(r10 - 8)\nexit";
    assert_eq!(run(src), 0xffff_fffe);
    let src = "*(u16 *)(r10 - 2) = 0x8001\nr0 = *(s16 *)(r10 - 2)\nexit";
    assert_eq!(run(src), 0xffff_ffff_ffff_8001);
    let src = "*(u8 *)(r10 - 1) = 0x80\nr0 = *(s8 *)(r10 - 1)\nexit";
    assert_eq!(run(src), -128i64 as u64);
    let src = "*(u32 *)(r10 - 4) = -1\nr0 = *(s32 *)(r10 - 4)\nexit";
    assert_eq!(run(src), u64::MAX);
}

#[test]
fn atomics() {
    let pre = "r1 = 10\n*(u64 *)(r10 - 8) = r1\nr2 = 5\n";
    assert_eq!(
        run(&format!("{pre}lock *(u64 *)(r10 - 8) += r2\nr0 = *(u64 *)(r10 - 8)\nexit")),
        15
    );
    let f = "r2 = atomic64_fetch_add((u64 *)(r10 - 8), r2)\nr0 = r2\nr0 <<= 8\nr3 = *(u64 *)(r10 - 8)\nr0 |= r3\nexit";
    assert_eq!(run(&format!("{pre}{f}")), (10 << 8) | 15);
    assert_eq!(run(&format!("{pre}r2 = atomic64_xchg((u64 *)(r10 - 8), r2)\nr0 = r2\nexit")), 10);
    let cmp = "r0 = 10\nr0 = atomic64_cmpxchg((u64 *)(r10 - 8), r0, r2)\nr0 <<= 8\nr3 = *(u64 *)(r10 - 8)\nr0 |= r3\nexit";
    assert_eq!(run(&format!("{pre}{cmp}")), (10 << 8) | 5);
    let miss = "r0 = 11\nr0 = atomic64_cmpxchg((u64 *)(r10 - 8), r0, r2)\nr3 = *(u64 *)(r10 - 8)\nr0 <<= 8\nr0 |= r3\nexit";
    assert_eq!(run(&format!("{pre}{miss}")), (10 << 8) | 10);
    // 32-bit fetch zero-extends the old value into the source register.
    let w = "r1 = -1\n*(u64 *)(r10 - 8) = r1\nr2 = 1\nr2 = atomic_fetch_and((u32 *)(r10 - 8), r2)\nr0 = r2\nexit";
    assert_eq!(run(w), 0xffff_ffff);
    // 32-bit cmpxchg compares the low half of r0.
    let w = "r1 = 7\n*(u32 *)(r10 - 4) = r1\nr0 = 0x100000007 ll\nr2 = 9\nr0 = atomic_cmpxchg((u32 *)(r10 - 4), r0, r2)\nr0 <<= 8\nr3 = *(u32 *)(r10 - 4)\nr0 |= r3\nexit";
    assert_eq!(run(w), (7 << 8) | 9);
}

#[test]
fn input_memory_is_r1_with_length_in_r2() {
    let mut mem = vec![1, 2, 3, 4, 5];
    let src = "r0 = r2\nr3 = *(u8 *)(r1 + 4)\nr0 += r3\n*(u8 *)(r1 + 0) = 9\nexit";
    assert_eq!(run_mem(src, &mut mem).unwrap(), 10);
    assert_eq!(mem, vec![9, 2, 3, 4, 5]);
    // Unaligned access to input memory is allowed (x86 has efficient unaligned access).
    let mut mem = vec![0, 1, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(run_mem("r0 = *(u64 *)(r1 + 1)\nexit", &mut mem).unwrap(), 1);
}

#[test]
fn bpf_to_bpf_calls_preserve_callee_saved_registers() {
    let src = "
        r6 = 6
        r7 = 7
        *(u64 *)(r10 - 8) = r6
        r1 = 3
        call double
        r0 += r6
        r0 += r7
        r1 = *(u64 *)(r10 - 8)
        r0 += r1
        exit
    double:
        r6 = 100
        r7 = 100
        *(u64 *)(r10 - 8) = r6
        r0 = r1
        r0 *= 2
        exit";
    assert_eq!(run(src), 6 + 6 + 7 + 6);
}

#[test]
fn call_depth_is_limited_to_eight_frames() {
    // Recursion: each level calls itself; the eighth call is refused.
    let src = "r0 = 0\ncall f\nexit\nf:\nr0 += 1\ncall f\nexit";
    assert_eq!(fault(src), (4, VmErrorKind::CallDepth { max: 8 }));
    // Seven nested calls (eight frames) are allowed.
    let mut src = String::from("r0 = 0\ncall f1\nexit\n");
    for i in 1..=7 {
        let next = if i < 7 { format!("call f{}\n", i + 1) } else { String::new() };
        src.push_str(&format!("f{i}:\nr0 += 1\n{next}exit\n"));
    }
    assert_eq!(run(&src), 7);
}

#[test]
fn out_of_bounds_stack_access_names_the_instruction() {
    let (pc, kind) = fault("r0 = 0\nr0 = *(u64 *)(r10 + 0)\nexit");
    assert_eq!(pc, 1);
    assert_eq!(
        kind,
        VmErrorKind::Memory(MemError::OutOfBounds {
            access: Access::Read,
            kind: RegionKind::Stack(0),
            off: 512,
            len: 8,
            size: 512
        })
    );
    let (pc, kind) = fault("r0 = 0\nr1 = r10\nr1 += -516\n*(u32 *)(r1 + 0) = 1\nexit");
    assert_eq!(pc, 3);
    assert_eq!(
        kind,
        VmErrorKind::Memory(MemError::OutOfBounds {
            access: Access::Write,
            kind: RegionKind::Stack(0),
            off: -4,
            len: 4,
            size: 512
        })
    );
}

#[test]
fn misaligned_stack_access_faults() {
    let (pc, kind) = fault("r0 = *(u32 *)(r10 - 6)\nexit");
    assert_eq!(pc, 0);
    assert!(matches!(kind, VmErrorKind::Memory(MemError::Misaligned { off: 506, len: 4, .. })));
}

#[test]
fn null_and_scalar_pointers_fault() {
    let (pc, kind) = fault("r1 = 0\nr0 = *(u8 *)(r1 + 0)\nexit");
    assert_eq!(pc, 1);
    assert_eq!(
        kind,
        VmErrorKind::Memory(MemError::Unmapped { access: Access::Read, addr: 0, len: 1 })
    );
    let (pc, _) = fault("r1 = 12345\n*(u64 *)(r1 + 0) = 1\nexit");
    assert_eq!(pc, 1);
    // Reading past the input memory's end.
    let (pc, kind) = fault("r0 = *(u32 *)(r1 + 14)\nexit");
    assert_eq!(pc, 0);
    assert!(matches!(
        kind,
        VmErrorKind::Memory(MemError::OutOfBounds { kind: RegionKind::Input, .. })
    ));
}

#[test]
fn instruction_budget_stops_infinite_loops() {
    let insns = assemble("r0 = 0\nloop:\nr0 += 1\ngoto loop").unwrap();
    let config = Config { insn_budget: 1000, ..Config::default() };
    let mut p =
        Interpreter::new(config, standard_helpers()).prepare(&Program::raw("t", insns)).unwrap();
    let e = p.run_raw(&mut Vec::new()).unwrap_err();
    assert_eq!(*e.kind(), VmErrorKind::BudgetExhausted { budget: 1000 });
    assert!(e.pc() == 1 || e.pc() == 2, "pc {}", e.pc());
}

#[test]
fn unknown_helper_and_kfunc_are_refused() {
    assert_eq!(fault("call 9999\nexit"), (0, VmErrorKind::UnknownHelper { id: 9999 }));
    assert_eq!(fault("r0 = 0\ncall kfunc 77\nexit"), (1, VmErrorKind::Kfunc { btf_id: 77 }));
}

#[test]
fn falling_off_the_end_faults() {
    assert_eq!(fault("r0 = 1\nr0 += 1"), (2, VmErrorKind::FellOffEnd));
}

#[test]
fn bad_jump_targets_are_refused_at_load() {
    let prog = |src: &str| Program::raw("t", assemble(src).unwrap());
    let err = Interpreter::default().prepare(&prog("goto +5\nexit")).unwrap_err();
    assert_eq!(err, LoadError::BadTarget { pc: 0, target: 6, why: "out of range" });
    let err = Interpreter::default().prepare(&prog("goto +1\nr0 = 0x1 ll\nexit")).unwrap_err();
    assert_eq!(err, LoadError::BadTarget { pc: 0, target: 2, why: "the middle of ld_imm64" });
    let err = Interpreter::default().prepare(&prog("call pc-2\nexit")).unwrap_err();
    assert_eq!(err, LoadError::BadTarget { pc: 0, target: -1, why: "out of range" });
    assert_eq!(
        Interpreter::default().prepare(&Program::raw("t", vec![])).unwrap_err(),
        LoadError::Empty
    );
    let map = Insn::LdImm64 { dst: Reg::R1, src: PseudoSrc::MapFd, imm: 3, next_imm: 0 };
    let err =
        Interpreter::default().prepare(&Program::raw("t", vec![map, Insn::Exit])).unwrap_err();
    assert_eq!(err, LoadError::Unresolved { pc: 0, src: PseudoSrc::MapFd, imm: 3 });
}

#[test]
fn legacy_packet_loads_read_network_order_and_exit_zero_out_of_bounds() {
    let mut mem = vec![0x12, 0x34, 0x56, 0x78, 0x9a];
    assert_eq!(run_mem("r0 = *(u16 *)skb[1]\nexit", &mut mem).unwrap(), 0x3456);
    assert_eq!(run_mem("r0 = *(u32 *)skb[0]\nexit", &mut mem).unwrap(), 0x1234_5678);
    assert_eq!(run_mem("r6 = 3\nr0 = *(u8 *)skb[r6 + 1]\nexit", &mut mem).unwrap(), 0x9a);
    // Out of bounds: the program ends with r0 = 0 instead of faulting, as in the kernel.
    assert_eq!(run_mem("r0 = 7\nr0 = *(u32 *)skb[2]\nr0 = 9\nexit", &mut mem).unwrap(), 0);
}

#[test]
fn helpers_clock_random_and_trace() {
    // Two clock reads are monotonic and one tick apart.
    assert_eq!(run("call 5\nr6 = r0\ncall 5\nr0 -= r6\nexit"), 100);
    assert!(run("call 7\nexit") <= u64::from(u32::MAX));
    let src = r#"
        r1 = 0x000a6425203d2078 ll
        *(u64 *)(r10 - 8) = r1
        r1 = r10
        r1 += -8
        r2 = 8
        r3 = -5
        call 6
        exit"#;
    let insns = assemble(src).unwrap();
    let mut p = Interpreter::default().prepare(&Program::raw("t", insns)).unwrap();
    let (r0, _) = p.run_raw(&mut Vec::new()).unwrap();
    assert_eq!(p.world().env.trace, vec!["x = -5\n".to_string()]);
    assert_eq!(r0, 7);
    // A format string that is not NUL-terminated within its size is refused.
    let (pc, kind) = fault(
        "r1 = 0x4141414141414141 ll\n*(u64 *)(r10 - 8) = r1\nr1 = r10\nr1 += -8\nr2 = 8\ncall 6\nexit",
    );
    assert_eq!(pc, 6);
    assert!(matches!(kind, VmErrorKind::Helper { name: "bpf_trace_printk", .. }));
}

#[test]
fn vm_error_stays_small() {
    assert_eq!(std::mem::size_of::<bpflab_vm::VmError>(), std::mem::size_of::<usize>());
    assert!(std::mem::size_of::<Result<u64, bpflab_vm::VmError>>() <= 16);
}
