//! Every semantics case of the interpreter's own tests (`vm/tests/interp.rs`, `xdp.rs`,
//! `maps.rs`), run on the interpreter and the JIT and compared exactly (r0, memory, context,
//! trace, maps, fault pc and kind, instruction count). Cases the kernel verifier would accept
//! also run on the trusted JIT.

mod common;

use bpflab_jit::oracle::{Case, Oracle, RunResult, observe};
use bpflab_jit::{JitEngine, Mode};
use bpflab_vm::asm::assemble;
use bpflab_vm::interp::{Config, VmErrorKind};
use bpflab_vm::isa::{Insn, PseudoSrc, Reg};
use bpflab_vm::memory::MemError;
use bpflab_vm::spec::{DataSection, MapSpec, MapType};
use bpflab_vm::{Interpreter, ProgType, Program, RunInput, standard_helpers};
use common::{check, collection, oracle, raw};

/// Checks each `(source, verified)` in raw mode with an empty input.
fn table(cases: &[(&str, bool)]) {
    for &(src, verified) in cases {
        check(oracle(), &raw(src, &[]), verified);
    }
}

/// Checks `src` on 16 zero bytes of input; it must fault. The trusted JIT, which leaves
/// permission and alignment to the verifier, must still refuse out-of-bounds and unmapped
/// accesses with the interpreter's error (it never touches memory outside a region).
fn faults(src: &str) {
    let case = raw(src, &[0; 16]);
    let seen = check(oracle(), &case, false);
    let RunResult::Fault(want) = &seen.runs[0] else { panic!("{src}: {seen}") };
    let trusted = observe(oracle().trusted(), &case).expect("loads");
    if matches!(
        want.kind(),
        VmErrorKind::Memory(MemError::OutOfBounds { .. } | MemError::Unmapped { .. })
    ) {
        assert_eq!(trusted.runs[0], seen.runs[0], "{src}");
    }
}

#[test]
fn division_and_modulo_by_zero() {
    table(&[
        ("r0 = 7\nr1 = 0\nr0 /= r1\nexit", true),
        ("r0 = 7\nr1 = 0\nr0 %= r1\nexit", true),
        ("r0 = -1\nw1 = 0\nw0 /= w1\nexit", true),
        ("r0 = -1\nw1 = 0\nw0 %= w1\nexit", true),
        ("r0 = -7\nr1 = 0\nr0 s/= r1\nexit", true),
        ("r0 = -7\nr1 = 0\nr0 s%= r1\nexit", true),
        // By an immediate 0 (the verifier refuses these; the ISA defines them).
        ("r0 = 7\nr0 /= 0\nexit", false),
        ("r0 = 7\nr0 %= 0\nexit", false),
        ("w0 = 7\nw0 s/= 0\nexit", false),
        ("w0 = -7\nw0 s%= 0\nexit", false),
    ]);
}

#[test]
fn signed_division_overflow_and_truncation() {
    let min = "r0 = 0x8000000000000000 ll\n";
    let a = format!("{min}r0 s/= -1\nexit");
    let b = format!("{min}r0 s%= -1\nexit");
    let c = format!("{min}r1 = -1\nr0 s/= r1\nexit");
    let d = format!("{min}r1 = -1\nr0 s%= r1\nexit");
    table(&[
        (&a, true),
        (&b, true),
        (&c, true),
        (&d, true),
        ("w0 = -2147483648\nw0 s/= -1\nexit", true),
        ("w0 = -2147483648\nw1 = -1\nw0 s/= w1\nexit", true),
        ("w0 = -2147483648\nw1 = -1\nw0 s%= w1\nexit", true),
        ("r0 = -7\nr0 s/= 2\nexit", true),
        ("r0 = -7\nr0 s%= 2\nexit", true),
        ("r0 = 7\nr0 s%= -2\nexit", true),
        ("r0 = -1\nr0 /= -1\nexit", true),
        ("w0 = -1\nw0 /= -1\nexit", true),
        ("r0 = -1\nr1 = 3\nr0 /= r1\nexit", true),
        ("r0 = -1\nr1 = 3\nr0 %= r1\nexit", true),
    ]);
}

#[test]
fn shifts_are_masked_to_the_width() {
    table(&[
        ("r0 = 1\nr1 = 65\nr0 <<= r1\nexit", true),
        ("w0 = 1\nw1 = 33\nw0 <<= w1\nexit", true),
        ("r0 = -8\nr1 = 66\nr0 s>>= r1\nexit", true),
        ("w0 = -8\nw1 = 34\nw0 s>>= w1\nexit", true),
        ("r0 = -1\nr0 >>= 60\nexit", true),
        ("r0 = -1\nr1 = 0x100000004 ll\nw0 >>= w1\nexit", true),
        // Out-of-range immediate shifts (refused by the verifier, masked by the ISA).
        ("r0 = 3\nr0 <<= 65\nexit", false),
        ("w0 = -1\nw0 >>= 40\nexit", false),
        ("r0 = -1\nr0 s>>= -1\nexit", false),
    ]);
}

#[test]
fn alu32_zero_extends() {
    table(&[
        ("r0 = -1\nw0 += 1\nexit", true),
        ("r0 = -1\nw0 = w0\nexit", true),
        ("r0 = -1\nw0 = -w0\nexit", true),
        ("w0 = -1\nexit", true),
        ("r0 = -1\nexit", true),
        ("r0 = 0x100000000 ll\nw0 *= 3\nexit", true),
        ("r0 = -1\nw0 ^= 5\nexit", true),
        ("r0 = -1\nw0 &= -1\nexit", true),
    ]);
}

#[test]
fn sign_extending_moves() {
    table(&[
        ("r1 = 0x80\nr0 = (s8)r1\nexit", true),
        ("r1 = 0x8000\nr0 = (s16)r1\nexit", true),
        ("r1 = 0x80000000 ll\nr0 = (s32)r1\nexit", true),
        ("r1 = 0x80\nw0 = (s8)w1\nexit", true),
        ("r1 = 0x1ff\nw0 = (s16)w1\nexit", true),
        ("r1 = 0xffff8000 ll\nw0 = (s16)w1\nexit", true),
    ]);
}

#[test]
fn byte_swaps() {
    let v = "r0 = 0x1122334455667788 ll\n";
    let ops = ["be16", "be32", "be64", "le16", "le32", "le64", "bswap16", "bswap32", "bswap64"];
    let srcs: Vec<String> = ops.iter().map(|op| format!("{v}r0 = {op} r0\nexit")).collect();
    let cases: Vec<(&str, bool)> = srcs.iter().map(|s| (s.as_str(), true)).collect();
    table(&cases);
}

#[test]
fn jumps_signed_unsigned_and_32_bit() {
    let conds = [
        "if r1 > r2",
        "if r1 s> r2",
        "if r1 s< r2",
        "if r1 & r2",
        "if r1 != r2",
        "if r2 <= 1",
        "if r1 == -1",
        "if r1 >= r2",
        "if r1 s>= r2",
        "if r1 < r2",
        "if r1 s<= r2",
        "if w1 > w2",
        "if w1 s> w2",
        "if w1 == -1",
        "if w1 s<= 1",
        "if w1 & 2",
        "if r1 > -2",
        "if w1 < -2",
    ];
    let srcs: Vec<String> = conds
        .iter()
        .map(|c| format!("r0 = 0\nr1 = -1\nr2 = 1\n{c} goto +1\nexit\nr0 = 1\nexit"))
        .collect();
    let mut cases: Vec<(&str, bool)> = srcs.iter().map(|s| (s.as_str(), true)).collect();
    cases.extend([
        ("r0 = 0\nr1 = 0x100000001 ll\nif w1 == 1 goto +1\nexit\nr0 = 1\nexit", true),
        ("r0 = 0\nr1 = 0x100000001 ll\nif r1 == 1 goto +1\nexit\nr0 = 1\nexit", true),
        ("r0 = 0\nw1 = -1\nif w1 s< 0 goto +1\nexit\nr0 = 1\nexit", true),
        // 64-bit comparisons whose low halves agree but high halves do not (rbpf's bug).
        ("r0 = 0\nr1 = 0x100000000 ll\nr2 = 0\nif r1 > r2 goto +1\nexit\nr0 = 1\nexit", true),
        ("r0 = 0\nr1 = 0x1ffffffff ll\nr2 = -1\nif r1 s< r2 goto +1\nexit\nr0 = 1\nexit", true),
        ("r0 = 1\ngotol +1\nr0 = 2\nexit", true),
        ("r0 = 3\ngoto +0\nexit", true),
    ]);
    table(&cases);
}

#[test]
fn stack_and_ldsx() {
    table(&[
        ("r1 = -2\n*(u64 *)(r10 - 8) = r1\nr0 = *(u32 *)(r10 - 8)\nexit", true),
        ("*(u16 *)(r10 - 2) = 0x8001\nr0 = *(s16 *)(r10 - 2)\nexit", true),
        ("*(u8 *)(r10 - 1) = 0x80\nr0 = *(s8 *)(r10 - 1)\nexit", true),
        ("*(u32 *)(r10 - 4) = -1\nr0 = *(s32 *)(r10 - 4)\nexit", true),
        // The stack starts zeroed; through a copy of r10 too.
        ("r2 = r10\nr2 += -512\nr0 = *(u64 *)(r2 + 0)\nexit", false),
        ("r2 = r10\n*(u64 *)(r2 - 16) = 7\nr0 = *(u64 *)(r10 - 16)\nexit", true),
    ]);
}

#[test]
fn atomics() {
    let pre = "r1 = 10\n*(u64 *)(r10 - 8) = r1\nr2 = 5\n";
    let bodies = [
        "lock *(u64 *)(r10 - 8) += r2\nr0 = *(u64 *)(r10 - 8)\nexit",
        "r2 = atomic64_fetch_add((u64 *)(r10 - 8), r2)\nr0 = r2\nr0 <<= 8\nr3 = *(u64 *)(r10 - 8)\nr0 |= r3\nexit",
        "r2 = atomic64_xchg((u64 *)(r10 - 8), r2)\nr0 = r2\nexit",
        "r0 = 10\nr0 = atomic64_cmpxchg((u64 *)(r10 - 8), r0, r2)\nr0 <<= 8\nr3 = *(u64 *)(r10 - 8)\nr0 |= r3\nexit",
        "r0 = 11\nr0 = atomic64_cmpxchg((u64 *)(r10 - 8), r0, r2)\nr3 = *(u64 *)(r10 - 8)\nr0 <<= 8\nr0 |= r3\nexit",
        "lock *(u32 *)(r10 - 8) |= r2\nr0 = *(u64 *)(r10 - 8)\nexit",
        "lock *(u64 *)(r10 - 8) &= r2\nr0 = *(u64 *)(r10 - 8)\nexit",
        "lock *(u32 *)(r10 - 4) ^= r2\nr0 = *(u64 *)(r10 - 8)\nexit",
        "r2 = atomic_fetch_or((u32 *)(r10 - 8), r2)\nr0 = r2\nexit",
        "r2 = atomic_fetch_xor((u32 *)(r10 - 8), r2)\nr0 = *(u64 *)(r10 - 8)\nr0 += r2\nexit",
    ];
    let mut srcs: Vec<String> = bodies.iter().map(|b| format!("{pre}{b}")).collect();
    srcs.push("r1 = -1\n*(u64 *)(r10 - 8) = r1\nr2 = 1\nr2 = atomic_fetch_and((u32 *)(r10 - 8), r2)\nr0 = r2\nexit".into());
    srcs.push("r1 = 7\n*(u32 *)(r10 - 4) = r1\nr0 = 0x100000007 ll\nr2 = 9\nr0 = atomic_cmpxchg((u32 *)(r10 - 4), r0, r2)\nr0 <<= 8\nr3 = *(u32 *)(r10 - 4)\nr0 |= r3\nexit".into());
    // 32-bit fetch-add that carries out of the low half, and xchg of a wide value.
    srcs.push("r1 = 0xffffffff ll\n*(u64 *)(r10 - 8) = r1\nr2 = 1\nr2 = atomic_fetch_add((u32 *)(r10 - 8), r2)\nr0 = *(u64 *)(r10 - 8)\nr0 += r2\nexit".into());
    srcs.push(
        "r2 = 0x123456789 ll\nr2 = atomic_xchg((u32 *)(r10 - 8), r2)\nr0 = *(u64 *)(r10 - 8)\nexit"
            .into(),
    );
    let cases: Vec<(&str, bool)> = srcs.iter().map(|s| (s.as_str(), true)).collect();
    table(&cases);
    // Atomics on input memory (through the region table), aligned and misaligned.
    check(
        oracle(),
        &raw("r2 = 3\nlock *(u64 *)(r1 + 8) += r2\nr0 = *(u64 *)(r1 + 8)\nexit", &[1; 16]),
        true,
    );
    faults("r2 = 3\nlock *(u32 *)(r1 + 2) += r2\nexit");
    faults("r2 = 3\nr0 = 0\nr0 = atomic_cmpxchg((u32 *)(r10 - 6), r0, r2)\nexit");
}

#[test]
fn input_memory_is_r1_with_length_in_r2() {
    let src = "r0 = r2\nr3 = *(u8 *)(r1 + 4)\nr0 += r3\n*(u8 *)(r1 + 0) = 9\nexit";
    let seen = check(oracle(), &raw(src, &[1, 2, 3, 4, 5]), true);
    let RunResult::Ok(out) = &seen.runs[0] else { panic!("{seen}") };
    assert_eq!((out.r0, out.data.clone()), (10, vec![9, 2, 3, 4, 5]));
    check(oracle(), &raw("r0 = *(u64 *)(r1 + 1)\nexit", &[0, 1, 0, 0, 0, 0, 0, 0, 0]), true);
    let signed =
        "r0 = *(s32 *)(r1 + 1)\nr2 = *(s16 *)(r1 + 0)\nr0 += r2\n*(u16 *)(r1 + 3) = r0\nexit";
    check(oracle(), &raw(signed, &[0xf0, 0x81, 0x82, 0x83, 0x84, 0x85]), true);
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
        r1 = 55
        exit";
    let seen = check(oracle(), &raw(src, &[]), true);
    let RunResult::Ok(out) = &seen.runs[0] else { panic!("{seen}") };
    assert_eq!(out.r0, 6 + 6 + 7 + 6);
    // r1..r5 keep what the callee left in them.
    check(oracle(), &raw("r1 = 1\ncall f\nr0 = r1\nexit\nf:\nr1 = 42\nr0 = 0\nexit", &[]), true);
    // The callee reads the caller's r6..r9 and a pointer into the caller's stack.
    let src = "r6 = 5\nr2 = r10\n*(u64 *)(r10 - 8) = 9\ncall f\nexit\nf:\nr0 = *(u64 *)(r2 - 8)\nr0 += r6\nexit";
    check(oracle(), &raw(src, &[]), true);
}

#[test]
fn call_depth_is_limited_to_eight_frames() {
    faults("r0 = 0\ncall f\nexit\nf:\nr0 += 1\ncall f\nexit");
    let mut src = String::from("r0 = 0\ncall f1\nexit\n");
    for i in 1..=7 {
        let next = if i < 7 { format!("call f{}\n", i + 1) } else { String::new() };
        src.push_str(&format!("f{i}:\nr0 += 1\n*(u64 *)(r10 - 8) = r0\n{next}exit\n"));
    }
    check(oracle(), &raw(&src, &[]), true);
}

#[test]
fn faults_name_the_instruction() {
    faults("r0 = 0\nr0 = *(u64 *)(r10 + 0)\nexit");
    faults("r0 = 0\nr1 = r10\nr1 += -516\n*(u32 *)(r1 + 0) = 1\nexit");
    faults("r0 = *(u32 *)(r10 - 6)\nexit");
    faults("r1 = 0\nr0 = *(u8 *)(r1 + 0)\nexit");
    faults("r1 = 12345\n*(u64 *)(r1 + 0) = 1\nexit");
    faults("r0 = *(u32 *)(r1 + 14)\nexit");
    faults("r0 = *(u32 *)(r1 - 1)\nexit");
    faults("r1 += -4\nr0 = *(u32 *)(r1 + 0)\nexit");
    faults("r1 += -4\n*(u64 *)(r1 + 2) = 1\nexit");
    faults("r1 += 16\nr0 = *(u8 *)(r1 + 0)\nexit");
    faults("r1 += 0x7fffffff\nr0 = *(u8 *)(r1 + 1)\nexit");
    faults("r1 += -0x7fffffff\nr0 = *(u8 *)(r1 - 2)\nexit");
    faults("r1 = r10\nr1 += -516\nr2 = 1\nlock *(u32 *)(r1 + 0) += r2\nexit");
    faults("*(u64 *)(r10 - 520) = 1\nexit");
    faults("r2 = r10\nr2 += 8\n*(u8 *)(r2 - 1) = 1\nexit");
    faults("call 9999\nexit");
    faults("r0 = 0\ncall kfunc 77\nexit");
    faults("r0 = 1\nr0 += 1");
    faults("r0 = 1\nif r0 == 1 goto +1\nexit\nr0 += 1");
}

#[test]
fn instruction_budget_stops_infinite_loops() {
    let budgeted =
        Oracle::new(Config { insn_budget: 1000, ..Config::default() }, standard_helpers())
            .expect("cranelift");
    let seen = check(&budgeted, &raw("r0 = 0\nloop:\nr0 += 1\ngoto loop", &[]), false);
    assert!(seen.runs[0].budget_exhausted(), "{seen}");
}

#[test]
fn bad_jump_targets_are_refused_at_load() {
    let prog = |src: &str| Program::raw("t", assemble(src).unwrap());
    let jit = JitEngine::with_mode(Mode::Checked).unwrap();
    let mut programs =
        vec![prog("goto +5\nexit"), prog("goto +1\nr0 = 0x1 ll\nexit"), prog("call pc-2\nexit")];
    programs.push(Program::raw("t", vec![]));
    let map = Insn::LdImm64 { dst: Reg::R1, src: PseudoSrc::MapFd, imm: 3, next_imm: 0 };
    programs.push(Program::raw("t", vec![map, Insn::Exit]));
    for p in programs {
        let c = bpflab_vm::Collection { programs: vec![p], ..bpflab_vm::Collection::default() };
        let want = Interpreter::default().instantiate(&c).unwrap_err();
        let got = jit.instantiate(&c).unwrap_err();
        assert_eq!(got.to_string(), want.to_string());
    }
}

#[test]
fn legacy_packet_loads_read_network_order_and_exit_zero_out_of_bounds() {
    let mem = [0x12, 0x34, 0x56, 0x78, 0x9a];
    for src in [
        "r0 = *(u16 *)skb[1]\nexit",
        "r0 = *(u32 *)skb[0]\nexit",
        "r0 = *(u8 *)skb[4]\nexit",
        "r6 = 3\nr0 = *(u8 *)skb[r6 + 1]\nexit",
        "r6 = 0x100000001 ll\nr0 = *(u32 *)skb[r6 + 0]\nexit",
        "r0 = 7\nr0 = *(u32 *)skb[2]\nr0 = 9\nexit",
        "r0 = 7\nr0 = *(u16 *)skb[-1]\nr0 = 9\nexit",
        "r6 = -1\nr0 = *(u8 *)skb[r6 + 0]\nexit",
        "r6 = 4\nr0 = *(u8 *)skb[r6 + -4]\nexit",
    ] {
        check(oracle(), &raw(src, &mem), true);
    }
}

#[test]
fn helpers_clock_random_and_trace() {
    check(oracle(), &raw("call 5\nr6 = r0\ncall 5\nr0 -= r6\nexit", &[]), true);
    check(oracle(), &raw("call 7\nr6 = r0\ncall 7\nr0 ^= r6\nexit", &[]), true);
    let src = r#"
        r1 = 0x000a6425203d2078 ll
        *(u64 *)(r10 - 8) = r1
        r1 = r10
        r1 += -8
        r2 = 8
        r3 = -5
        call 6
        exit"#;
    let seen = check(oracle(), &raw(src, &[]), true);
    let RunResult::Ok(out) = &seen.runs[0] else { panic!("{seen}") };
    assert_eq!(out.trace, vec!["x = -5\n".to_string()]);
    faults(
        "r1 = 0x4141414141414141 ll\n*(u64 *)(r10 - 8) = r1\nr1 = r10\nr1 += -8\nr2 = 8\ncall 6\nexit",
    );
}

// ---- vm/tests/xdp.rs ----

fn xdp(src: &str, verified: bool) {
    let packet: Vec<u8> = (0u8..60).collect();
    let case = Case::single(collection(src, ProgType::Xdp, vec![]), RunInput::data(packet));
    check(oracle(), &case, verified);
}

#[test]
fn xdp_packets_and_context() {
    xdp("r2 = *(u32 *)(r1 + 4)\nr3 = *(u32 *)(r1 + 0)\nr0 = r2\nr0 -= r3\nexit", true);
    xdp("r2 = *(u32 *)(r1 + 0)\nr0 = *(u8 *)(r2 + 60)\nexit", false);
    xdp("r2 = *(u32 *)(r1 + 0)\n*(u8 *)(r2 + 0) = 0xff\nr0 = 2\nexit", true);
    xdp("*(u32 *)(r1 + 12) = 1\nr0 = 2\nexit", false);
    xdp("r0 = *(u64 *)(r1 + 0)\nexit", false);
    xdp("r0 = *(u32 *)(r1 + 20)\nexit", false);
    xdp("r0 = *(u32 *)(r1 + 12)\nr2 = *(u32 *)(r1 + 16)\nr0 += r2\nexit", true);
    // The packet's headroom (below data_meta) is not accessible.
    xdp("r2 = *(u32 *)(r1 + 8)\nr0 = *(u8 *)(r2 - 1)\nexit", false);
    let empty = Case::single(
        collection("r0 = 2\nexit", ProgType::Xdp, vec![]),
        RunInput::data(vec![0; 10]),
    );
    check(oracle(), &empty, true);
}

#[test]
fn xdp_adjust_helpers() {
    xdp(
        "r6 = r1\nr2 = 14\ncall bpf_xdp_adjust_head\nif r0 != 0 goto fail\nr2 = *(u32 *)(r6 + 0)\nr3 = *(u32 *)(r6 + 4)\nr4 = r2\nr4 += 1\nif r4 > r3 goto fail\nr0 = *(u8 *)(r2 + 0)\nexit\nfail:\nr0 = 99\nexit",
        true,
    );
    xdp("r2 = -4\ncall bpf_xdp_adjust_head\nexit", true);
    xdp("r2 = 47\ncall bpf_xdp_adjust_head\nexit", true);
    xdp("r2 = -217\ncall bpf_xdp_adjust_head\nexit", true);
    xdp("r2 = -216\ncall bpf_xdp_adjust_head\nexit", true);
    xdp("r2 = -10\ncall bpf_xdp_adjust_tail\nexit", true);
    xdp("r2 = 8\ncall bpf_xdp_adjust_tail\nexit", true);
    xdp("r2 = 4000\ncall bpf_xdp_adjust_tail\nexit", true);
    xdp(
        "r6 = r1\nr2 = -8\ncall bpf_xdp_adjust_meta\nif r0 != 0 goto out\nr2 = *(u32 *)(r6 + 8)\nr3 = *(u32 *)(r6 + 0)\nr0 = r3\nr0 -= r2\n*(u64 *)(r2 + 0) = 7\nout:\nexit",
        true,
    );
    xdp("r2 = -6\ncall bpf_xdp_adjust_meta\nexit", true);
    xdp("r2 = -36\ncall bpf_xdp_adjust_meta\nexit", true);
    // A packet pointer kept across adjust_tail: the region shrank under it.
    xdp(
        "r6 = r1\nr7 = *(u32 *)(r1 + 0)\nr2 = -40\ncall bpf_xdp_adjust_tail\nr0 = *(u8 *)(r7 + 30)\nexit",
        false,
    );
    // Growing the tail, then reading the new bytes.
    xdp(
        "r6 = r1\nr2 = 100\ncall bpf_xdp_adjust_tail\nr2 = *(u32 *)(r6 + 0)\nr0 = *(u8 *)(r2 + 150)\nexit",
        false,
    );
}

// ---- vm/tests/maps.rs ----

fn k(i: u32) -> Vec<u8> {
    i.to_le_bytes().to_vec()
}

fn v(x: u64) -> Vec<u8> {
    x.to_le_bytes().to_vec()
}

fn map_case(maps: Vec<MapSpec>, src: &str, runs: usize) -> Case {
    let mut case = Case::single(collection(src, ProgType::Unspec, maps), RunInput::data(vec![]));
    case.runs = vec![(0, RunInput::data(vec![])); runs];
    case
}

#[test]
fn maps_through_helpers_and_pointers() {
    let lookup_add = "
        *(u32 *)(r10 - 4) = 1
        r1 = map[idx:0] ll
        r2 = r10
        r2 += -4
        call bpf_map_lookup_elem
        if r0 != 0 goto found
        r0 = 99
        exit
    found:
        r1 = 5
        lock *(u64 *)(r0 + 0) += r1
        r0 = *(u64 *)(r0 + 0)
        exit";
    for t in [MapType::Array, MapType::Hash, MapType::PercpuArray, MapType::LruHash] {
        let mut case = map_case(vec![MapSpec::new("counters", t, 4, 8, 2)], lookup_add, 3);
        case.map_init = vec![(0, k(1), v(3))];
        check(oracle(), &case, true);
    }
    let update_twice = "
        *(u32 *)(r10 - 4) = 7
        *(u64 *)(r10 - 16) = 42
        r1 = map[idx:0] ll
        r2 = r10
        r2 += -4
        r3 = r10
        r3 += -16
        r4 = 1
        call bpf_map_update_elem
        r6 = r0
        r1 = map[idx:0] ll
        r2 = r10
        r2 += -4
        r3 = r10
        r3 += -16
        r4 = 1
        call bpf_map_update_elem
        r6 <<= 8
        r0 &= 0xff
        r0 |= r6
        exit";
    check(
        oracle(),
        &map_case(vec![MapSpec::new("h", MapType::Hash, 4, 8, 8)], update_twice, 2),
        true,
    );
    // Delete, then a lookup that misses.
    let delete = "
        *(u32 *)(r10 - 4) = 2
        r1 = map[idx:0] ll
        r2 = r10
        r2 += -4
        call bpf_map_delete_elem
        r6 = r0
        r1 = map[idx:0] ll
        r2 = r10
        r2 += -4
        call bpf_map_lookup_elem
        r0 += r6
        exit";
    let mut case = map_case(vec![MapSpec::new("h", MapType::Hash, 4, 8, 8)], delete, 2);
    case.map_init = vec![(0, k(2), v(5)), (0, k(3), v(6))];
    check(oracle(), &case, true);
}

#[test]
fn global_data_is_a_map_value_and_rodata_is_read_only() {
    let mut data = MapSpec::new("obj.data", MapType::Array, 4, 16, 1);
    data.data = Some((DataSection::Data, (1..=16).collect()));
    let mut ro = MapSpec::new("obj.rodata", MapType::Array, 4, 8, 1);
    ro.data = Some((DataSection::Rodata, vec![9; 8]));
    let src = "
        r1 = map[idx:0][0]+8 ll
        r0 = *(u8 *)(r1 + 0)
        *(u8 *)(r1 + 1) = 0xee
        r2 = map[idx:1][0]+0 ll
        r3 = *(u8 *)(r2 + 7)
        r0 += r3
        exit";
    check(oracle(), &map_case(vec![data, ro.clone()], src, 2), true);
    let write_ro = "r1 = map[idx:0][0]+0 ll\n*(u8 *)(r1 + 0) = 1\nr0 = 0\nexit";
    let seen = check(oracle(), &map_case(vec![ro.clone()], write_ro, 1), false);
    assert!(matches!(&seen.runs[0], RunResult::Fault(e) if e.pc() == 2), "{seen}");
    // An atomic on read-only data faults as well.
    let atomic_ro = "r1 = map[idx:0][0]+0 ll\nr2 = 1\nlock *(u64 *)(r1 + 0) += r2\nr0 = 0\nexit";
    check(oracle(), &map_case(vec![ro], atomic_ro, 1), false);
    // Map handles are not readable memory.
    check(
        oracle(),
        &map_case(
            vec![MapSpec::new("a", MapType::Array, 4, 8, 1)],
            "r1 = map[idx:0] ll\nr0 = *(u64 *)(r1 + 0)\nexit",
            1,
        ),
        false,
    );
}

#[test]
fn kfunc_and_unknown_helpers_match_fault_kinds() {
    let seen = check(oracle(), &raw("r0 = 0\ncall kfunc 77\nexit", &[]), false);
    assert!(
        matches!(&seen.runs[0], RunResult::Fault(e) if *e.kind() == VmErrorKind::Kfunc { btf_id: 77 })
    );
}

#[test]
fn budget_faults_leave_the_interpreters_memory() {
    // Straight-line code (compiled without checks, with a checked variant for runs entered
    // near the budget's end) and a loop (checked per segment), with visible stores between
    // pure instructions: every budget faults at the interpreter's instruction, with exactly
    // the interpreter's stores done.
    let straight = "r2 = 1\n*(u8 *)(r1 + 0) = 1\nr2 += 1\nr2 += 1\n*(u8 *)(r1 + 1) = 2\nr0 = *(u8 *)(r1 + 9)\n*(u8 *)(r1 + 2) = 3\nr3 = 0x1 ll\n*(u8 *)(r1 + 3) = 4\nr0 += r2\nexit";
    let looped = "r6 = 3\nloop:\n*(u8 *)(r1 + 0) = r6\nr7 = *(u8 *)(r1 + 0)\n*(u8 *)(r1 + 1) = r7\nr6 += -1\nif r6 != 0 goto loop\nr0 = *(u16 *)(r1 + 0)\nexit";
    let called = "r2 = 5\ncall f\n*(u8 *)(r1 + 4) = r0\nexit\nf:\n*(u8 *)(r1 + 3) = r2\nr0 = r2\nr0 += 1\nexit";
    for src in [straight, looped, called] {
        for budget in 0..24 {
            let o = Oracle::new(
                Config { insn_budget: budget, ..Config::default() },
                standard_helpers(),
            )
            .expect("cranelift");
            check(&o, &raw(src, &[0; 16]), true);
        }
    }
}
