//! bpflab's verifier against the running kernel's on the largest programs there are: the
//! kernel selftests objects with the most processed instructions, the project's biggest
//! fixtures and corpus programs, and generated programs with loops and many branches.
//!
//! One iteration is one `bpflab_verifier::verify` at log level 0 (the kernel's figures are
//! taken with `BPF_LOG_STATS` only, no instruction log, for the same reason). Before timing,
//! each program is verified once by bpflab and loaded [`KERNEL_RUNS`] times into the kernel;
//! the bench prints one `verifier-bench:` line per program with both processed-instruction
//! counts, bpflab's fastest time of [`OWN_RUNS`] runs, the kernel's fastest "verification
//! time N usec" of [`KERNEL_RUNS`] loads (the fastest of several is what a shared, loaded
//! machine distorts least), the microseconds per processed instruction of each and their ratio. The
//! criterion groups time bpflab alone.
//!
//! The kernel columns need root and bpf(2); without them they read `-`.
//! `BPFLAB_VERIFIER_BENCH=SUBSTRING` keeps the programs whose name contains it.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bpflab_kernel::verdict::{VerdictOptions, kernel_verdict, prog_flags};
use bpflab_testgen::verifier_gen::verifier_program;
use bpflab_verifier::{Config, Flags, Verdict, verify};
use bpflab_vm::helpers::HelperRegistry;
use bpflab_vm::{Collection, ProgType, Program};
use criterion::{Criterion, criterion_group, criterion_main};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config as RunnerConfig, RngAlgorithm, TestRng, TestRunner};

/// Kernel loads per program (the fastest is reported).
const KERNEL_RUNS: usize = 7;
/// bpflab verifications per program for the printed table (the fastest is reported).
const OWN_RUNS: usize = 7;

/// The flags the selftests' runner adds to every load (`testing_prog_flags()`).
const TEST_LOADER_FLAGS: u32 = prog_flags::TEST_RND_HI32 | prog_flags::TEST_REG_INVARIANTS;

/// `(object, program)`: the programs with the most processed instructions both verifiers
/// accept in `target/verifier-agreement.json` (selftests, fixtures and corpus).
const OBJECTS: &[(&str, &str)] = &[
    ("verifier/corpus/selftests/obj/verifier_gotol.bpf.o", "gotol_large_imm"),
    ("verifier/corpus/selftests/obj/verifier_loops1.bpf.o", "jumps_out_rather_than_in"),
    ("verifier/corpus/selftests/obj/verifier_bounds.bpf.o", "crossing_64_bit_signed_boundary_2"),
    ("programs/corpus/xdp_ipv4_options.bpf.o", "xdp_ip_options"),
    ("programs/tests/maps_lru.bpf.o", "lru_fill"),
    ("programs/corpus/xdp_ipv6_exthdr.bpf.o", "xdp_ipv6_ext"),
    ("programs/tests/net_helpers.bpf.o", "tc_meta"),
    ("programs/corpus/xdp_tcp_opts_loop.bpf.o", "xdp_syn_options"),
    ("programs/corpus/xdp_lb_maglev.bpf.o", "balancer_ingress"),
    ("programs/corpus/xdp_nat44.bpf.o", "xdp_nat"),
];

/// One benchmarked program.
struct Bench {
    name: String,
    coll: Collection,
    index: usize,
    /// Extra `prog_flags` the kernel load gets (the selftests runner's).
    flags: u32,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn objects() -> Vec<Bench> {
    let mut out = Vec::new();
    for &(file, prog) in OBJECTS {
        let path = root().join(file);
        let Ok(bytes) = std::fs::read(&path) else {
            eprintln!("verifier-bench: SKIP {file}: not built");
            continue;
        };
        let obj = bpflab_loader::load(&bytes, &bpflab_loader::LoadOptions::for_path(&path))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let index = obj
            .collection
            .programs
            .iter()
            .position(|p| p.name == prog)
            .unwrap_or_else(|| panic!("{file}: no program {prog}"));
        let flags = if file.contains("selftests") { TEST_LOADER_FLAGS } else { 0 };
        let short = Path::new(file).file_name().map_or(file.into(), |n| n.to_string_lossy());
        out.push(Bench { name: format!("{short}/{prog}"), coll: obj.collection, index, flags });
    }
    out
}

/// `r7` = a random scalar, then `loops` bounded loops of `trips` trips, each body a chain of
/// `diamonds` branches on bits of the random scalar that add to `r8` on one side.
fn branchy_loops(loops: usize, trips: u32, diamonds: usize) -> Collection {
    let mut asm = String::from("call bpf_get_prandom_u32\nr7 = r0\nr8 = 0\n");
    for l in 0..loops {
        asm.push_str(&format!("r9 = {trips}\nloop{l}:\n"));
        for d in 0..diamonds {
            asm.push_str(&format!(
                "r1 = r7\nr1 &= {}\nif r1 == 0 goto skip{l}_{d}\nr8 += {}\nskip{l}_{d}:\n",
                1u64 << (d % 31),
                d + 1
            ));
        }
        asm.push_str(&format!("r7 ^= r8\nr9 -= 1\nif r9 != 0 goto loop{l}\n"));
    }
    asm.push_str("r0 = 0\nexit\n");
    let insns = bpflab_vm::asm::assemble(&asm).expect("branchy_loops assembles");
    let mut p = Program::raw("branchy_loops", insns).with_type(ProgType::SocketFilter);
    p.license = "GPL".into();
    Collection::single(p)
}

/// `n` branches on unknown context fields whose both sides stay different (a register takes
/// one of two constants per branch), so pruning merges little: the path count the kernel
/// walks grows with the state limit.
fn branch_chain(n: usize) -> Collection {
    let mut asm = String::from("r6 = r1\nr7 = *(u32 *)(r6 +0)\nr8 = 0\n");
    for i in 0..n {
        asm.push_str(&format!(
            "r1 = r7\nr1 >>= {}\nr1 &= 1\nif r1 == 0 goto a{i}\nr8 += {}\na{i}:\n",
            i % 32,
            i + 1
        ));
    }
    asm.push_str("r0 = r8\nr0 &= 1\nexit\n");
    let insns = bpflab_vm::asm::assemble(&asm).expect("branch_chain assembles");
    let mut p = Program::raw("branch_chain", insns).with_type(ProgType::SocketFilter);
    p.license = "GPL".into();
    Collection::single(p)
}

/// The accepted programs of `verifier_gen` (fixed seed, 400 tried) with the most processed
/// instructions in bpflab, `keep` of them.
fn generated(helpers: &HelperRegistry, keep: usize) -> Vec<Bench> {
    let mut bytes = [0u8; 32];
    bytes[0] = 9;
    let mut run = TestRunner::new_with_rng(
        RunnerConfig::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &bytes),
    );
    let generator = verifier_program();
    let quiet = Config { log_level: 0, ..Config::default() };
    let mut found: Vec<(u64, Collection)> = Vec::new();
    for _ in 0..400 {
        let p = generator.new_tree(&mut run).expect("generator").current();
        let coll = p.collection();
        let r = verify(&coll, 0, helpers, &quiet);
        if r.verdict == Verdict::Accepted {
            found.push((r.stats.processed_insns, coll));
        }
    }
    found.sort_by_key(|f| std::cmp::Reverse(f.0));
    found
        .into_iter()
        .take(keep)
        .enumerate()
        .map(|(i, (_, coll))| Bench { name: format!("verifier_gen#{i}"), coll, index: 0, flags: 0 })
        .collect()
}

fn fastest(v: Vec<u64>) -> u64 {
    v.into_iter().min().unwrap_or(0)
}

fn bench_verifier(c: &mut Criterion) {
    let helpers = match bpflab_kernel::features::features() {
        Ok(p) => HelperRegistry::standard().with_profile(p),
        Err(_) => HelperRegistry::standard(),
    };
    let mut benches = objects();
    benches.push(Bench {
        name: "branchy_loops(4x60x8)".into(),
        coll: branchy_loops(4, 60, 8),
        index: 0,
        flags: 0,
    });
    benches.push(Bench {
        name: "branch_chain(200)".into(),
        coll: branch_chain(200),
        index: 0,
        flags: 0,
    });
    benches.extend(generated(&helpers, 2));
    // BPFLAB_VERIFIER_BENCH=SUBSTRING keeps the programs whose name contains it (for profiling
    // one program: `valgrind --tool=callgrind BENCH_BINARY --bench --profile-time 2`).
    if let Ok(only) = std::env::var("BPFLAB_VERIFIER_BENCH") {
        benches.retain(|b| b.name.contains(&only));
    }

    println!(
        "verifier-bench: | program | processed insns bpflab / kernel | bpflab time | kernel time | \
         bpflab us/insn | kernel us/insn | bpflab / kernel |"
    );
    let mut group = c.benchmark_group("verify");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for b in &benches {
        let prog = &b.coll.programs[b.index];
        let config = Config {
            log_level: 0,
            flags: Flags::from_bits(prog.flags | b.flags),
            ..Config::default()
        };
        let report = verify(&b.coll, b.index, &helpers, &config);
        if report.verdict != Verdict::Accepted {
            println!("verifier-bench: {}: bpflab does not accept it: {:?}", b.name, report.verdict);
        }
        let ours: Vec<u64> = (0..OWN_RUNS)
            .map(|_| {
                let t = Instant::now();
                black_box(verify(&b.coll, b.index, &helpers, &config));
                t.elapsed().as_nanos() as u64
            })
            .collect();
        let ours_ns = fastest(ours);
        let opts = VerdictOptions { prog_flags: b.flags, clear_flags: 0, log_level: 0 };
        let kernel: Vec<_> =
            (0..KERNEL_RUNS).filter_map(|_| kernel_verdict(&b.coll, b.index, &opts).ok()).collect();
        let k_insns = kernel.first().and_then(|k| k.processed_insns);
        let k_usec = (!kernel.is_empty())
            .then(|| fastest(kernel.iter().filter_map(|k| k.verification_usec).collect()));
        let ours_per = ours_ns as f64 / 1000.0 / report.stats.processed_insns.max(1) as f64;
        let k_per = k_usec.zip(k_insns).map(|(u, n)| u as f64 / n.max(1) as f64);
        println!(
            "verifier-bench: | {} | {} / {} | {:.0} us | {} | {:.3} | {} | {} |",
            b.name,
            report.stats.processed_insns,
            k_insns.map_or("-".into(), |n| n.to_string()),
            ours_ns as f64 / 1000.0,
            k_usec.map_or("-".into(), |u| format!("{u} us")),
            ours_per,
            k_per.map_or("-".into(), |k| format!("{k:.3}")),
            k_per.map_or("-".into(), |k| format!("{:.2}", ours_per / k)),
        );
        group.bench_function(b.name.as_str(), |bench| {
            bench.iter(|| black_box(verify(black_box(&b.coll), b.index, &helpers, &config)));
        });
    }
    group.finish();
}

criterion_group!(benches, bench_verifier);
criterion_main!(benches);
