//! bpflab's JIT (trusted and checked modes) side by side with bpflab's interpreter, rbpf 0.4's JIT and the
//! kernel's JIT, in the same run, on: the 1,000-iteration ALU loop, the 64-byte packet parse,
//! one helper call, and an array-map lookup and increment; plus compile time.
//!
//! - bpflab (JIT and interpreter): one iteration is one full raw-mode run, including copying
//!   the input into the VM, as in `benches/interp.rs`.
//! - rbpf: `EbpfVmRaw::jit_compile` once, then `execute_program_jit` on a copy of the input.
//!   rbpf has no maps, so it sits out the map benchmark; its helper is a registered `fn`.
//! - kernel: `BPF_PROG_TEST_RUN` of an XDP version of the program with `repeat = iters`; the
//!   time is the `duration` the kernel reports (average per repetition, whole ns, including
//!   its ~22-24 ns per-iteration harness), never wall time over `repeat` (the syscall costs
//!   tens of ms). Skipped where bpf(2) is unavailable.
//! - compile: Cranelift compilation of a program (cache off), reported per 100 instruction
//!   slots, for the ALU loop, the packet parse and a ~1,000-slot generated program, in both
//!   modes and at both optimization levels (`speed`, the default, and `fast`); rbpf's
//!   `jit_compile` alongside.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use bpflab_benches::{alu_loop, alu_loop_expected, packet_64, packet_parse, packet_parse_expected};
use bpflab_jit::{JitConfig, JitEngine, JitInstance, Mode, OptLevel};
use bpflab_kernel::{KernelMap, KernelProgram};
use bpflab_vm::asm::assemble;
use bpflab_vm::isa::{Insn, MemSize, Reg, encode_bytes};
use bpflab_vm::spec::{MapSpec, MapType};
use bpflab_vm::{Collection, Interpreter, ProgType, Program, interp::Instance};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use proptest::strategy::{Strategy, ValueTree};

/// Helper id of `bpf_get_prandom_u32`.
const PRANDOM: u32 = 7;

/// A benchmark program: raw-mode code for bpflab and rbpf, an XDP version for the kernel.
struct Bench {
    name: &'static str,
    raw: Vec<Insn>,
    maps: Vec<MapSpec>,
    input: Vec<u8>,
    expected: Option<u64>,
    /// For rbpf (None: rbpf cannot run it).
    rbpf: bool,
    /// The kernel's version, given the fd of a 1-entry u64 array map.
    kernel: Option<fn(i32) -> Vec<Insn>>,
}

fn collection(insns: Vec<Insn>, maps: Vec<MapSpec>) -> Collection {
    Collection { maps, programs: vec![Program::raw("bench", insns)], ..Collection::default() }
}

fn jit(mode: Mode) -> JitEngine {
    JitEngine::new(JitConfig { mode, ..JitConfig::default() }, bpflab_vm::standard_helpers())
        .expect("cranelift supports this host")
}

/// The raw program's XDP form: r1 becomes the packet pointer (the ALU loop ignores it).
fn alu_kernel(_map: i32) -> Vec<Insn> {
    alu_loop()
}

/// packet_parse with `data`/`data_end` from `struct xdp_md` instead of `r1`/`r1 + 64`: the
/// same 39 instructions run.
fn parse_kernel(_map: i32) -> Vec<Insn> {
    let mut p = packet_parse();
    p[0] = Insn::Load { size: MemSize::W, signed: false, dst: Reg::R2, src: Reg::R1, off: 4 };
    p[1] = Insn::Load { size: MemSize::W, signed: false, dst: Reg::R1, src: Reg::R1, off: 0 };
    p
}

fn helper_src() -> &'static str {
    "call bpf_get_prandom_u32\nr0 &= 1\nexit"
}

fn helper_kernel(_map: i32) -> Vec<Insn> {
    assemble(helper_src()).expect("assembles")
}

/// `key = 0; v = lookup(map, &key); if v: *v += 1 (atomically); return v != 0`.
fn map_src(map: &str) -> String {
    format!(
        "*(u32 *)(r10 - 4) = 0
        r1 = {map} ll
        r2 = r10
        r2 += -4
        call bpf_map_lookup_elem
        if r0 == 0 goto out
        r1 = 1
        lock *(u64 *)(r0 + 0) += r1
        r0 = 1
    out:
        exit"
    )
}

fn map_kernel(fd: i32) -> Vec<Insn> {
    assemble(&map_src(&format!("map[fd:{fd}]"))).expect("assembles")
}

fn benches() -> Vec<Bench> {
    let pkt = packet_64();
    vec![
        Bench {
            name: "alu_loop",
            raw: alu_loop(),
            maps: vec![],
            input: vec![],
            expected: Some(alu_loop_expected()),
            rbpf: true,
            kernel: Some(alu_kernel),
        },
        Bench {
            name: "packet_parse",
            raw: packet_parse(),
            maps: vec![],
            expected: Some(packet_parse_expected(&pkt)),
            input: pkt,
            rbpf: true,
            kernel: Some(parse_kernel),
        },
        Bench {
            name: "helper_call",
            raw: assemble(helper_src()).expect("assembles"),
            maps: vec![],
            input: vec![],
            expected: None,
            rbpf: true,
            kernel: Some(helper_kernel),
        },
        Bench {
            name: "map_lookup_increment",
            raw: assemble(&map_src("map[idx:0]")).expect("assembles"),
            maps: vec![MapSpec::new("counter", MapType::Array, 4, 8, 1)],
            input: vec![],
            expected: Some(1),
            rbpf: false,
            kernel: Some(map_kernel),
        },
    ]
}

/// A trivial helper for rbpf in the place of `bpf_get_prandom_u32`.
fn rbpf_prandom(_: u64, _: u64, _: u64, _: u64, _: u64) -> u64 {
    0x5eed
}

fn run_jit(inst: &mut JitInstance, data: &mut Vec<u8>, input: &[u8]) -> u64 {
    data.clear();
    data.extend_from_slice(input);
    inst.run_raw(0, data).expect("the JIT runs the benchmark").0
}

fn run_interp(inst: &mut Instance, data: &mut Vec<u8>, input: &[u8]) -> u64 {
    data.clear();
    data.extend_from_slice(input);
    inst.run_raw(0, data).expect("the interpreter runs the benchmark").0
}

fn engines(c: &mut Criterion) {
    let kernel_ok = bpflab_kernel::probe().is_ok();
    for bench in benches() {
        let col = collection(bench.raw.clone(), bench.maps.clone());
        let mut jit_inst = jit(Mode::Trusted).instantiate(&col).expect("compiles");
        let mut checked_inst = jit(Mode::Checked).instantiate(&col).expect("compiles");
        let mut interp =
            Interpreter::default().instantiate(&col).expect("the interpreter loads it");
        let mut data = Vec::with_capacity(bench.input.len());
        let input = bench.input.clone();
        let got = run_jit(&mut jit_inst, &mut data, &input);
        let want = run_interp(&mut interp, &mut data, &input);
        assert_eq!(got, want, "{}: JIT and interpreter disagree", bench.name);
        let got = run_jit(&mut checked_inst, &mut data, &input);
        assert_eq!(got, want, "{}: checked JIT and interpreter disagree", bench.name);
        if let Some(e) = bench.expected {
            assert_eq!(got, e, "{}: wrong r0", bench.name);
        }

        let mut group = c.benchmark_group(bench.name);
        group.bench_function("bpflab_jit", |b| {
            b.iter(|| black_box(run_jit(&mut jit_inst, black_box(&mut data), &input)));
        });
        group.bench_function("bpflab_jit_checked", |b| {
            b.iter(|| black_box(run_jit(&mut checked_inst, black_box(&mut data), &input)));
        });
        group.bench_function("bpflab_interp", |b| {
            b.iter(|| black_box(run_interp(&mut interp, black_box(&mut data), &input)));
        });
        if bench.rbpf {
            let code = encode_bytes(&bench.raw);
            let mut vm = rbpf::EbpfVmRaw::new(Some(&code)).expect("rbpf takes the program");
            vm.register_helper(PRANDOM, rbpf_prandom).expect("helper");
            vm.jit_compile().expect("rbpf compiles it");
            let mut mem = input.clone();
            // SAFETY: rbpf's JIT code runs on `mem`, a buffer of the program's input size;
            // these programs only read their input within bounds (checked by the
            // interpreter above on the same input).
            #[allow(unsafe_code)]
            let got = unsafe { vm.execute_program_jit(&mut mem) }.expect("rbpf runs it");
            if let Some(e) = bench.expected {
                assert_eq!(got, e, "{}: rbpf's JIT returns a wrong r0", bench.name);
            }
            group.bench_function("rbpf_jit", |b| {
                b.iter(|| {
                    mem.copy_from_slice(&input);
                    // SAFETY: as above.
                    #[allow(unsafe_code)]
                    let r = unsafe { vm.execute_program_jit(black_box(&mut mem)) };
                    black_box(r.expect("rbpf runs it"))
                });
            });
        }
        if let (true, Some(kernel)) = (kernel_ok, bench.kernel) {
            let map = KernelMap::array(8, 1).expect("kernel map");
            let prog = KernelProgram::load(ProgType::Xdp, &kernel(map.fd()), "GPL")
                .unwrap_or_else(|e| panic!("{}: the kernel refuses it: {e}", bench.name));
            let pkt = packet_64();
            let run = prog.test_run(&pkt, None, 1).expect("test run");
            if let Some(e) = bench.expected {
                assert_eq!(u64::from(run.retval), e & 0xffff_ffff, "{}: kernel r0", bench.name);
            }
            group.bench_function("kernel_jit", |b| {
                b.iter_custom(|iters| {
                    let repeat = iters.clamp(1, u64::from(u32::MAX)) as u32;
                    let run = prog.test_run(&pkt, None, repeat).expect("test run");
                    Duration::from_nanos(u64::from(run.duration_ns) * iters)
                });
            });
        }
        group.finish();
    }
}

/// A deterministic generated program of about `slots` slots (several testgen bodies).
fn generated(slots: usize) -> Vec<Insn> {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut body = Vec::new();
    while body.iter().map(Insn::slots).sum::<usize>() < slots {
        let p = bpflab_testgen::program().new_tree(&mut runner).expect("generates").current();
        body.extend(p.body);
    }
    body.push(Insn::Exit);
    body
}

fn compile(c: &mut Criterion) {
    let programs = [
        ("alu_loop", alu_loop()),
        ("packet_parse", packet_parse()),
        ("generated", generated(1000)),
    ];
    let mut group = c.benchmark_group("compile_per_100_slots");
    for (name, insns) in programs {
        let slots: usize = insns.iter().map(Insn::slots).sum();
        let per = |d: Duration| d.mul_f64(100.0 / slots as f64);
        for (mode, opt) in [
            (Mode::Trusted, OptLevel::Speed),
            (Mode::Checked, OptLevel::Speed),
            (Mode::Trusted, OptLevel::Fast),
            (Mode::Checked, OptLevel::Fast),
        ] {
            let engine = JitEngine::new(
                JitConfig { mode, opt, cache: false, ..JitConfig::default() },
                bpflab_vm::standard_helpers(),
            )
            .expect("cranelift");
            let col = collection(insns.clone(), vec![]);
            let id = BenchmarkId::new(
                format!("bpflab_jit_{mode:?}_{opt:?}").to_lowercase(),
                format!("{name}_{slots}"),
            );
            group.bench_function(id, |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let inst = engine.instantiate(&col).expect("compiles");
                        total += inst.compile_stats().time;
                    }
                    per(total)
                });
            });
        }
        let code = encode_bytes(&insns);
        if rbpf::EbpfVmRaw::new(Some(&code)).is_ok() && name != "generated" {
            group.bench_function(BenchmarkId::new("rbpf_jit", format!("{name}_{slots}")), |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let mut vm = rbpf::EbpfVmRaw::new(Some(&code)).expect("rbpf");
                        let t = std::time::Instant::now();
                        vm.jit_compile().expect("rbpf compiles");
                        total += t.elapsed();
                        black_box(&vm);
                    }
                    per(total)
                });
            });
        }
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(50)
}

criterion_group! {
    name = benches_jit;
    config = config();
    targets = engines, compile
}
criterion_main!(benches_jit);
