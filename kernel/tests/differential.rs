//! Kernel-differential property test: random valid programs from `bpflab-testgen` must leave
//! the same 64-bit r0 in the real kernel (verifier + JIT, read back through an array map) and
//! in bpflab's interpreter.
//!
//! Two runs: a fixed seed and a fresh random one (printed on failure). Environment:
//! `BPFLAB_DIFF_CASES=N` sets the cases per run (default 2000); `BPFLAB_DIFF_SEED=S` (decimal
//! or 0x-hex) replaces the random seed, to reproduce a failure.

use std::cell::RefCell;
use std::hash::BuildHasher;
use std::time::Instant;

use bpflab_kernel::{KernelError, KernelMap, KernelProgram, probe};
use bpflab_testgen::{GenProgram, listing, program};
use bpflab_vm::{Interpreter, ProgType, Program};
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};

/// Cases per run unless `BPFLAB_DIFF_CASES` says otherwise.
const DEFAULT_CASES: u32 = 2000;
/// The seed of the fixed run.
const FIXED_SEED: u64 = 0x6270_666c_6162_0001;
/// Written to the result map before each case, so a program that stored nothing shows.
const SENTINEL: u64 = 0x5eed_5eed_5eed_5eed;
/// Rejections printed in full (program and log tail).
const SHOWN_REJECTIONS: usize = 5;
/// Lines of each shown rejection's verifier log.
const LOG_LINES: usize = 8;
/// The packet each kernel test run gets (socket filters need at least an Ethernet header).
const PACKET: [u8; 64] = [0x5a; 64];

#[derive(Default)]
struct Stats {
    cases: u64,
    accepted: u64,
    rejected: u64,
    /// Set once a case failed: proptest is shrinking, later runs are not counted.
    shrinking: bool,
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    let parsed = match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    Some(parsed.unwrap_or_else(|e| panic!("{name}={v}: {e}")))
}

fn cases() -> u32 {
    env_u64("BPFLAB_DIFF_CASES").map_or(DEFAULT_CASES, |n| n as u32)
}

fn last_lines(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.trim_end().lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Runs one program in both engines; `Err` on any disagreement.
fn check_case(
    p: &GenProgram,
    map: &KernelMap,
    stats: &RefCell<Stats>,
) -> Result<(), TestCaseError> {
    // The failing program itself is printed with the final report (after shrinking).
    let fail = |what: String| TestCaseError::fail(what);
    let counting = !stats.borrow().shrinking;
    if counting {
        stats.borrow_mut().cases += 1;
    }
    map.set_u64(0, SENTINEL).map_err(|e| fail(format!("resetting the map: {e}")))?;
    let kernel_insns = p.for_kernel(map.fd());
    let prog = match KernelProgram::load(ProgType::SocketFilter, &kernel_insns, "GPL") {
        Ok(prog) => prog,
        Err(KernelError::Rejected { log }) => {
            if counting {
                let mut s = stats.borrow_mut();
                s.rejected += 1;
                if s.rejected as usize <= SHOWN_REJECTIONS {
                    println!(
                        "kernel-differential: verifier rejected a generated program (the \
                         generator should avoid this):\n{}--- verifier log (last lines) ---\n{}\n",
                        listing(&kernel_insns),
                        last_lines(&log, LOG_LINES)
                    );
                }
            }
            return Ok(());
        }
        Err(e) => return Err(fail(format!("loading into the kernel: {e}"))),
    };
    let run = prog.test_run(&PACKET, None, 1).map_err(|e| fail(format!("kernel test run: {e}")))?;
    if run.retval != 0 {
        return Err(fail(format!("kernel epilogue returned {} instead of 0", run.retval)));
    }
    let kernel_r0 = match map.get_u64(0) {
        Ok(Some(v)) => v,
        other => return Err(fail(format!("reading r0 from the map: {other:?}"))),
    };
    let mut prepared = Interpreter::default()
        .prepare(&Program::raw("gen", p.for_interpreter()))
        .map_err(|e| fail(format!("interpreter refused the program: {e}")))?;
    let mut data = vec![0u8; 64];
    let (interp_r0, _) =
        prepared.run_raw(&mut data).map_err(|e| fail(format!("interpreter faulted: {e}")))?;
    if interp_r0 != kernel_r0 {
        return Err(fail(format!(
            "r0 differs: kernel {kernel_r0:#018x}, interpreter {interp_r0:#018x} (xor {:#018x})",
            kernel_r0 ^ interp_r0
        )));
    }
    if counting {
        stats.borrow_mut().accepted += 1;
    }
    Ok(())
}

/// Runs `cases` generated programs from `seed` through both engines.
fn differential(label: &str, seed: u64, reproduce: &str) {
    if let Err(e) = probe() {
        println!("SKIP: bpf(2) unavailable: {e}");
        return;
    }
    let cases = cases();
    let map = KernelMap::array(8, 1).expect("creating the result map");
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 2000,
        max_shrink_time: 120_000,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes));
    let stats = RefCell::new(Stats::default());
    let start = Instant::now();
    let result = runner.run(&program(), |p| {
        let r = check_case(&p, &map, &stats);
        if r.is_err() {
            stats.borrow_mut().shrinking = true;
        }
        r
    });
    let s = stats.borrow();
    println!(
        "kernel-differential ({label}): {} cases, {} accepted and compared, {} rejected, \
         seed {seed} \
         ({:.1} s)",
        s.cases,
        s.accepted,
        s.rejected,
        start.elapsed().as_secs_f64()
    );
    match result {
        Ok(()) => {}
        Err(TestError::Fail(reason, minimal)) => panic!(
            "kernel-differential ({label}) mismatch with seed {seed} (reproduce: {reproduce}):\n\
             {reason}\nminimal failing program:\n{minimal:?}"
        ),
        Err(TestError::Abort(reason)) => {
            panic!("kernel-differential ({label}) aborted, seed {seed}: {reason}")
        }
    }
    let compared = s.accepted + s.rejected;
    assert!(
        s.accepted * 10 >= compared * 9,
        "only {} of {compared} generated programs were accepted by the verifier (< 90%): the \
         generator makes invalid programs (seed {seed})",
        s.accepted
    );
}

#[test]
fn kernel_differential_fixed_seed() {
    differential(
        "fixed seed",
        FIXED_SEED,
        "cargo test -p bpflab-kernel --test differential fixed_seed",
    );
}

#[test]
fn kernel_differential_random_seed() {
    let seed = env_u64("BPFLAB_DIFF_SEED").unwrap_or_else(|| {
        std::collections::hash_map::RandomState::new().hash_one(std::time::SystemTime::now())
    });
    let reproduce = format!(
        "BPFLAB_DIFF_SEED={seed} cargo test -p bpflab-kernel --test differential random_seed"
    );
    differential("random seed", seed, &reproduce);
}
