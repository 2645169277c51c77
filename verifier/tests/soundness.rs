//! Soundness: whenever bpflab's verifier accepts a generated program (testgen's
//! `verifier_gen`, valid and deliberately broken, and the scalar programs of the JIT
//! differential tests), running it in the checked interpreter on random inputs never faults:
//! packets of random lengths, random array and hash contents, random `bpf_get_prandom_u32`
//! results, with and without a socket for `bpf_sk_lookup_tcp` to find. A fault is any
//! memory error (out of bounds, unmapped, read-only, refused context access), a helper
//! refusing its arguments, a run that does not end within the budget, or a socket reference
//! still held after the run. A failure prints the program, the verifier's log and the fault.
//!
//! The interpreter zero-fills the stack, so an uninitialised stack read cannot show as a fault
//! here; those are covered by `random.rs` against the kernel. Ring buffer records left
//! reserved are not visible through the world's API either.
//!
//! `BPFLAB_SOUNDNESS_CASES` sets the number of programs (default 5000), `BPFLAB_SOUNDNESS_SEED`
//! the seed.

use bpflab_testgen::verifier_gen::{VerifierProgram, run_checked, verifier_program};
use bpflab_verifier::{Config, Verdict, verify};
use bpflab_vm::helpers::HelperRegistry;
use bpflab_vm::{Collection, ProgType, Program};
use proptest::prelude::Rng;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config as RunnerConfig, RngAlgorithm, TestRng, TestRunner};

fn runner(seed: u64) -> TestRunner {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    TestRunner::new_with_rng(
        RunnerConfig::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &bytes),
    )
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Random inputs per accepted program.
const RUNS: usize = 6;

#[test]
fn accepted_generated_programs_never_fault_in_the_checked_interpreter() {
    let n = env_number("BPFLAB_SOUNDNESS_CASES", 5000);
    let seed = env_number("BPFLAB_SOUNDNESS_SEED", 0x50a1_0009);
    let helpers = HelperRegistry::standard();
    let quiet = Config { log_level: 0, ..Config::default() };
    let mut run = runner(seed);
    let generator = verifier_program();
    let scalar = bpflab_testgen::program();
    let (mut accepted, mut rejected, mut unsupported, mut runs) = (0u64, 0u64, 0u64, 0usize);
    let mut failures = Vec::new();
    let started = std::time::Instant::now();
    for i in 0..n {
        let (coll, text): (Collection, String) = if i % 10 == 9 {
            let p = scalar.new_tree(&mut run).expect("generator").current();
            let mut prog =
                Program::raw("gen", p.for_interpreter()).with_type(ProgType::SocketFilter);
            prog.license = "GPL".into();
            (Collection::single(prog), p.to_string())
        } else {
            let p: VerifierProgram = generator.new_tree(&mut run).expect("generator").current();
            (p.collection(), p.to_string())
        };
        let report = verify(&coll, 0, &helpers, &quiet);
        match report.verdict {
            Verdict::Accepted => accepted += 1,
            Verdict::Rejected(_) => {
                rejected += 1;
                continue;
            }
            Verdict::Unsupported(_) => {
                unsupported += 1;
                continue;
            }
        }
        match run_checked(&coll, run.rng().next_u64(), RUNS) {
            Ok(n) => runs += n,
            Err(what) => {
                let full = verify(&coll, 0, &helpers, &Config::default());
                failures.push(format!(
                    "case {i}: bpflab accepts it, the checked interpreter faults: {what}\n\
                     --- program\n{text}--- verifier log\n{}",
                    full.log
                ));
            }
        }
    }
    println!(
        "verifier-soundness: {n} programs (seed {seed:#x}) in {:.1}s: accepted {accepted}, rejected \
         {rejected}, unsupported {unsupported}; {runs} runs of accepted programs, {} faulted",
        started.elapsed().as_secs_f64(),
        failures.len()
    );
    assert!(accepted >= n / 10, "only {accepted} of {n} programs accepted: the test shows little");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A program of `asm` with the generated programs' maps, as a tc program.
fn tc(asm: &str) -> Collection {
    let insns = bpflab_vm::asm::assemble(asm).expect("assembles");
    let mut p = Program::raw("broken", insns).with_type(ProgType::SchedCls);
    p.license = "GPL".into();
    Collection { maps: bpflab_testgen::verifier_gen::maps(), ..Collection::single(p) }
}

#[test]
fn the_checked_runs_see_null_dereferences_and_leaked_sockets() {
    // No null check: the hash lacks key 9 in some runs, the load then faults.
    let null = tc("*(u32 *)(r10 -4) = 9\nr2 = r10\nr2 += -4\nr1 = map[idx:1]\n\
                   call bpf_map_lookup_elem\nr0 = *(u32 *)(r0 +0)\nr0 = 0\nexit");
    let err = run_checked(&null, 1, 6).expect_err("a NULL dereference faults");
    assert!(err.contains("fault"), "{err}");
    // A socket found and never released: with the listener (half the seeds) a reference is
    // still held after the run.
    let leak = tc("r6 = r1\n*(u32 *)(r10 -48) = 0x0100000a\n*(u32 *)(r10 -44) = 0x0100007f\n\
                   *(u16 *)(r10 -40) = 0x3930\n*(u16 *)(r10 -38) = 0x5000\nr2 = r10\nr2 += -48\n\
                   r3 = 12\nr4 = -1\nr5 = 0\nr1 = r6\ncall bpf_sk_lookup_tcp\nr0 = 0\nexit");
    let errs: Vec<String> = (0..8).filter_map(|s| run_checked(&leak, s, 2).err()).collect();
    assert!(!errs.is_empty(), "no seed found the leaked socket");
    assert!(errs.iter().all(|e| e.contains("socket references held")), "{errs:?}");
    // Released, it is clean for every seed.
    let released = tc("r6 = r1\n*(u32 *)(r10 -48) = 0x0100000a\n*(u32 *)(r10 -44) = 0x0100007f\n\
                   *(u16 *)(r10 -40) = 0x3930\n*(u16 *)(r10 -38) = 0x5000\nr2 = r10\nr2 += -48\n\
                   r3 = 12\nr4 = -1\nr5 = 0\nr1 = r6\ncall bpf_sk_lookup_tcp\nif r0 == 0 goto +2\n\
                   r1 = r0\ncall bpf_sk_release\nr0 = 0\nexit");
    for s in 0..8 {
        assert_eq!(run_checked(&released, s, 2), Ok(2), "seed {s}");
    }
}
