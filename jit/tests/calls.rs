//! Calls across compiled functions: bpf-to-bpf calls, tail calls through prog arrays (33 at
//! most), callbacks of `bpf_loop` and `bpf_for_each_map_elem` (nested, in frames, sharing the
//! budget), callback addresses no function starts at, and faults inside callbacks.

mod common;

use bpflab_jit::oracle::{Case, Oracle, RunResult};
use bpflab_jit::{JitEngine, Mode};
use bpflab_vm::asm::assemble;
use bpflab_vm::interp::Config;
use bpflab_vm::spec::{MapSpec, MapType};
use bpflab_vm::{Collection, Program, RunInput, standard_helpers};
use common::{check, oracle, raw};

fn k(i: u32) -> Vec<u8> {
    i.to_le_bytes().to_vec()
}

fn program(name: &str, src: &str) -> Program {
    Program::raw(name, assemble(src).unwrap_or_else(|e| panic!("{name}: {e}\n{src}")))
}

fn case(maps: Vec<MapSpec>, programs: Vec<Program>, runs: &[usize]) -> Case {
    let collection = Collection { maps, programs, ..Collection::default() };
    let runs = runs.iter().map(|&p| (p, RunInput::data(vec![0; 16]))).collect();
    Case { collection, map_init: Vec::new(), runs }
}

fn ok(seen: &bpflab_jit::oracle::Observed, run: usize) -> u64 {
    match &seen.runs[run] {
        RunResult::Ok(o) => o.r0,
        other => panic!("run {run}: {other:?}"),
    }
}

const COUNT_AND_TAIL: &str = "
        r6 = r1
        *(u32 *)(r10 - 4) = 0
        r1 = map[idx:1] ll
        r2 = r10
        r2 += -4
        call bpf_map_lookup_elem
        if r0 == 0 goto out
        r1 = 1
        lock *(u64 *)(r0 + 0) += r1
        r1 = r6
        r2 = map[idx:0] ll
        r3 = 2
        call bpf_tail_call
    out:
        r0 = 7
        exit";

#[test]
fn tail_calls_chain_and_stop_after_33() {
    let p0 = "r6 = 5\nr2 = map[idx:0] ll\nr3 = 1\ncall bpf_tail_call\nr0 = 99\nexit";
    // The target sees the caller's registers (r6) and stack.
    let p1 = "r0 = r6\nr0 += 11\nr1 = *(u64 *)(r10 - 8)\nr0 += r1\nexit";
    let maps = vec![
        MapSpec::new("progs", MapType::ProgArray, 4, 4, 4),
        MapSpec::new("counts", MapType::Array, 4, 8, 1),
    ];
    let programs = vec![program("p0", p0), program("p1", p1), program("p2", COUNT_AND_TAIL)];
    // Empty slot: falls through.
    let seen = check(oracle(), &case(maps.clone(), programs.clone(), &[0]), true);
    assert_eq!(ok(&seen, 0), 99);
    let mut c = case(maps, programs, &[0, 2, 2]);
    c.map_init = vec![(0, k(1), k(1)), (0, k(2), k(2))];
    let seen = check(oracle(), &c, true);
    assert_eq!(ok(&seen, 0), 16);
    // Each run of p2: the first run plus 33 tail calls.
    assert_eq!(seen.maps[1], Some(vec![(k(0), (2 * 34u64).to_le_bytes().to_vec())]));
}

#[test]
fn tail_call_from_a_subprogram_returns_to_its_caller() {
    // main calls f; f tail-calls p1, whose exit returns to main with p1's r0.
    let main = "
        r6 = 100
        call f
        r0 += r6
        exit
    f:
        r6 = 1
        r2 = map[idx:0] ll
        r3 = 1
        call bpf_tail_call
        r0 = 50
        exit";
    let p1 = "r0 = 3\nr0 += r6\nexit";
    let maps = vec![MapSpec::new("progs", MapType::ProgArray, 4, 4, 2)];
    let mut c = case(maps, vec![program("main", main), program("p1", p1)], &[0]);
    c.map_init = vec![(0, k(1), k(1))];
    let seen = check(oracle(), &c, true);
    assert_eq!(ok(&seen, 0), 104);
}

#[test]
fn tail_call_into_a_program_with_subprograms() {
    let p0 = "r2 = map[idx:0] ll\nr3 = 1\ncall bpf_tail_call\nr0 = 99\nexit";
    let p1 = "r1 = 20\ncall g\nr0 += 1\nexit\ng:\nr0 = r1\nr0 *= 2\nexit";
    let maps = vec![MapSpec::new("progs", MapType::ProgArray, 4, 4, 2)];
    let mut c = case(maps, vec![program("p0", p0), program("p1", p1)], &[0, 1]);
    c.map_init = vec![(0, k(1), k(1))];
    let seen = check(oracle(), &c, true);
    assert_eq!((ok(&seen, 0), ok(&seen, 1)), (41, 41));
}

#[test]
fn bpf_loop_callbacks() {
    let src = "
        *(u64 *)(r10 - 8) = 0
        r1 = 10
        r2 = func cb ll
        r3 = r10
        r3 += -8
        r4 = 0
        call bpf_loop
        r0 <<= 16
        r1 = *(u64 *)(r10 - 8)
        r0 |= r1
        exit
    cb:
        r3 = *(u64 *)(r2 + 0)
        r3 += r1
        *(u64 *)(r2 + 0) = r3
        r0 = 0
        if r1 == 5 goto stop
        exit
    stop:
        r0 = 1
        exit";
    let seen = check(oracle(), &raw(src, &[]), true);
    assert_eq!(ok(&seen, 0), 6 << 16 | 15);
    // Flags and counts the helper refuses.
    for (nr, flags) in [(1u64, 1u64), (1 << 24, 0), (0, 0)] {
        let src = format!(
            "r1 = {nr} ll\nr2 = func cb ll\nr3 = 0\nr4 = {flags}\ncall bpf_loop\nexit\ncb:\nr0 = 0\nexit"
        );
        check(oracle(), &raw(&src, &[]), true);
    }
}

#[test]
fn nested_callbacks_use_frames() {
    // Each callback calls bpf_loop again until depth 7 (8 frames); one more faults.
    let nest = |levels: u32| {
        format!(
            "
        r1 = 1
        r2 = func cb ll
        r3 = 0
        r4 = 0
        r6 = 0
        call bpf_loop
        exit
    cb:
        r6 = *(u64 *)(r10 - 8)
        r6 = r2
        r6 += 1
        if r6 >= {levels} goto leaf
        r1 = 1
        r2 = func cb ll
        r3 = r6
        r4 = 0
        *(u64 *)(r10 - 8) = r6
        call bpf_loop
        r0 = 0
        exit
    leaf:
        r0 = 0
        exit"
        )
    };
    check(oracle(), &raw(&nest(7), &[]), true);
    let seen = check(oracle(), &raw(&nest(8), &[]), false);
    assert!(matches!(seen.runs[0], RunResult::Fault(_)), "{seen}");
    // A callback from inside a bpf-to-bpf call is one frame deeper.
    let src = "call f\nexit\nf:\nr1 = 3\nr2 = func cb ll\nr3 = 0\nr4 = 0\ncall bpf_loop\nexit\ncb:\nr0 = r10\nr0 >>= 32\nexit";
    check(oracle(), &raw(src, &[]), true);
}

#[test]
fn for_each_map_elem_callbacks() {
    let src = "
        r1 = map[idx:0] ll
        r2 = func cb ll
        r3 = r10
        r3 += -8
        *(u64 *)(r10 - 8) = 0
        r4 = 0
        call bpf_for_each_map_elem
        r1 = *(u64 *)(r10 - 8)
        r0 <<= 32
        r0 |= r1
        exit
    cb:
        r5 = *(u64 *)(r3 + 0)
        r6 = *(u64 *)(r4 + 0)
        r5 += r6
        *(u64 *)(r4 + 0) = r5
        r6 = *(u32 *)(r2 + 0)
        r6 *= 10
        *(u64 *)(r3 + 0) = r6
        r0 = 0
        exit";
    let mut c =
        case(vec![MapSpec::new("a", MapType::Array, 4, 8, 5)], vec![program("p", src)], &[0, 0]);
    c.map_init = (0..5).map(|i| (0, k(i), (u64::from(i) * 3).to_le_bytes().to_vec())).collect();
    check(oracle(), &c, true);
    let mut c =
        case(vec![MapSpec::new("h", MapType::Hash, 4, 8, 8)], vec![program("p", src)], &[0]);
    c.map_init = (0..5).map(|i| (0, k(i * 7), (u64::from(i) + 1).to_le_bytes().to_vec())).collect();
    check(oracle(), &c, true);
}

#[test]
fn faults_inside_callbacks_are_the_helpers_faults() {
    // A bad access in the callback; the error names the callback's instruction.
    let src = "r1 = 4\nr2 = func cb ll\nr3 = 0\nr4 = 0\ncall bpf_loop\nexit\ncb:\nr0 = *(u64 *)(r2 + 0)\nexit";
    let seen = check(oracle(), &raw(src, &[]), false);
    assert!(matches!(seen.runs[0], RunResult::Fault(_)));
    // A kfunc in the callback.
    let src =
        "r1 = 4\nr2 = func cb ll\nr3 = 0\nr4 = 0\ncall bpf_loop\nexit\ncb:\ncall kfunc 9\nexit";
    check(oracle(), &raw(src, &[]), false);
    // LD_ABS out of bounds in a callback ends the callback (r0 = 0), not the program.
    let src = "r1 = 4\nr2 = func cb ll\nr3 = 0\nr4 = 0\ncall bpf_loop\nr0 += 1000\nexit\ncb:\nr0 = *(u32 *)skb[100]\nr0 = 1\nexit";
    let seen = check(oracle(), &raw(src, &[1; 16]), false);
    assert_eq!(ok(&seen, 0), 1004);
}

#[test]
fn callback_addresses_no_function_starts_at() {
    // The callback address is computed: `func cb` plus one instruction, which the JIT only
    // learns at run time and compiles then.
    let src = "
        r1 = 3
        r2 = func cb ll
        r2 += 1
        r3 = 0
        r4 = 0
        call bpf_loop
        exit
    cb:
        r0 = 1
        r0 = 0
        exit";
    check(oracle(), &raw(src, &[]), false);
    // The same program run twice in one instance reuses the compiled entry.
    let insns = assemble(src).unwrap();
    let c = Collection { programs: vec![Program::raw("p", insns)], ..Collection::default() };
    let jit = JitEngine::with_mode(Mode::Checked).unwrap();
    let mut inst = jit.instantiate(&c).unwrap();
    for _ in 0..2 {
        assert_eq!(inst.run_raw(0, &mut vec![]).unwrap().0, 3);
    }
    // Into the middle of LD_IMM64, or a data address: the interpreter's BadCallback.
    let mid = "r1 = 1\nr2 = func cb ll\nr2 += -1\nr3 = 0\nr4 = 0\ncall bpf_loop\nexit\nr5 = 0x1 ll\ncb:\nr0 = 0\nexit";
    check(oracle(), &raw(mid, &[]), false);
    let data = "r1 = 1\nr2 = r10\nr3 = 0\nr4 = 0\ncall bpf_loop\nexit";
    check(oracle(), &raw(data, &[]), false);
}

#[test]
fn callbacks_share_the_budget() {
    let src = "
        *(u64 *)(r10 - 8) = 0
        r1 = 1000
        r2 = func cb ll
        r3 = r10
        r3 += -8
        r4 = 0
        call bpf_loop
        exit
    cb:
        r3 = *(u64 *)(r2 + 0)
        r3 += 1
        *(u64 *)(r2 + 0) = r3
        r0 = 0
        exit";
    for budget in [5, 9, 10, 11, 50, 333, 5000, 6000, 7000] {
        let o =
            Oracle::new(Config { insn_budget: budget, ..Config::default() }, standard_helpers())
                .unwrap();
        check(&o, &raw(src, &[]), false);
    }
}

#[test]
fn recursion_and_calls_in_loops() {
    // Fibonacci by recursion: 7 levels fit.
    let fib = "
        r1 = 6
        call fib
        exit
    fib:
        if r1 > 1 goto rec
        r0 = r1
        exit
    rec:
        r6 = r1
        r1 += -1
        call fib
        r7 = r0
        r1 = r6
        r1 += -2
        call fib
        r0 += r7
        exit";
    let seen = check(oracle(), &raw(fib, &[]), false);
    assert_eq!(ok(&seen, 0), 8);
    let looped = "r6 = 0\nr7 = 10\nloop:\nr1 = r7\ncall sq\nr6 += r0\nr7 += -1\nif r7 != 0 goto loop\nr0 = r6\nexit\nsq:\nr0 = r1\nr0 *= r1\nexit";
    let seen = check(oracle(), &raw(looped, &[]), true);
    assert_eq!(ok(&seen, 0), 385);
}
