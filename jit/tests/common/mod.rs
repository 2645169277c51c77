//! Shared helpers of the JIT's tests: an oracle per configuration and case builders.
#![allow(dead_code, reason = "each test file uses a different part")]

use std::sync::OnceLock;

use bpflab_jit::oracle::{Case, Observed, Oracle};
use bpflab_vm::asm::assemble;
use bpflab_vm::spec::MapSpec;
use bpflab_vm::{Collection, ProgType, Program, RunInput};

/// The oracle with the default limits and the standard helpers, built once.
pub(crate) fn oracle() -> &'static Oracle {
    static ORACLE: OnceLock<Oracle> = OnceLock::new();
    ORACLE.get_or_init(|| Oracle::standard().expect("cranelift supports this host"))
}

/// A collection of one program assembled from `src`, of type `prog_type`, with `maps`.
pub(crate) fn collection(src: &str, prog_type: ProgType, maps: Vec<MapSpec>) -> Collection {
    let insns = assemble(src).unwrap_or_else(|e| panic!("{e}\n{src}"));
    Collection {
        maps,
        programs: vec![Program::raw("t", insns).with_type(prog_type)],
        ..Collection::default()
    }
}

/// A raw-mode case: `src` runs once on a copy of `mem`.
pub(crate) fn raw(src: &str, mem: &[u8]) -> Case {
    Case::single(collection(src, ProgType::Unspec, vec![]), RunInput::data(mem.to_vec()))
}

/// Checks `case` with the oracle (trusted mode too when `verified`); panics with the
/// divergence. Returns what the interpreter showed.
pub(crate) fn check(oracle: &Oracle, case: &Case, verified: bool) -> Observed {
    match oracle.check(case, verified) {
        Ok(o) => o,
        Err(e) => {
            let listing: Vec<String> = case
                .collection
                .programs
                .iter()
                .map(|p| bpflab_testgen::listing(&p.insns))
                .collect();
            panic!("{e}\n{}", listing.join("\n---\n"));
        }
    }
}

/// Cases to check, unless `BPFLAB_JIT_CASES` says otherwise.
pub(crate) fn forced_cases() -> Option<u32> {
    std::env::var("BPFLAB_JIT_CASES").ok().and_then(|v| v.trim().parse().ok())
}

/// Checks exactly `cases` cases of `strategy` (deterministic from `seed`), or the count
/// `BPFLAB_JIT_CASES=N` sets. The workspace compiles Cranelift and the other dependencies
/// optimized even in debug builds (`[profile.dev.package."*"]` in the root `Cargo.toml`), so a
/// case takes milliseconds and the count is fixed rather than time-boxed. Panics on the first
/// failure (after shrinking) with `show` of the minimal case. Returns the number of cases
/// checked, which callers assert.
pub(crate) fn run_cases<S: proptest::strategy::Strategy>(
    label: &str,
    seed: u64,
    strategy: S,
    cases: u32,
    show: impl Fn(&S::Value) -> String,
    check: impl Fn(&S::Value) -> Result<(), String>,
) -> u32 {
    use proptest::test_runner::{
        Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner,
    };
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let config = Config {
        cases: forced_cases().unwrap_or(cases),
        failure_persistence: None,
        max_shrink_iters: 500,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes));
    let start = std::time::Instant::now();
    let done = std::cell::Cell::new(0u32);
    let failed = std::cell::Cell::new(false);
    let result = runner.run(&strategy, |v| {
        let r = check(&v);
        if r.is_err() {
            failed.set(true);
        } else if !failed.get() {
            done.set(done.get() + 1);
        }
        r.map_err(TestCaseError::fail)
    });
    match result {
        Ok(()) => {}
        Err(TestError::Fail(why, v)) => {
            panic!("{label} (seed {seed:#x}): {why}\n{}", show(&v))
        }
        Err(e) => panic!("{label} (seed {seed:#x}): {e}"),
    }
    println!(
        "{label}: {} cases checked in {:.1} s (seed {seed:#x})",
        done.get(),
        start.elapsed().as_secs_f64()
    );
    done.get()
}

/// The number of cases [`run_cases`] checks when asked for `cases`.
pub(crate) fn expected_cases(cases: u32) -> u32 {
    forced_cases().unwrap_or(cases)
}
