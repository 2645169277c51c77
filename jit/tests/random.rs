//! Random valid programs from `bpflab-testgen` on the interpreter, the checked JIT and the
//! trusted JIT (the generator only makes programs the kernel verifier accepts), compared
//! exactly: r0, memory, instruction count. 2,000 programs from a fixed seed and 2,000 from a
//! fresh seed (printed, and on failure too), then the same programs under small budgets and
//! with fast code generation. Each run checks a fixed number of cases (see
//! `common::run_cases`); `BPFLAB_JIT_CASES=N` checks N cases per run instead, and
//! `BPFLAB_JIT_SEED=S` replaces the fresh seed to reproduce a failure.

mod common;

use std::hash::BuildHasher;

use bpflab_jit::OptLevel;
use bpflab_jit::oracle::{Case, Oracle};
use bpflab_testgen::{GenProgram, listing, program};
use bpflab_vm::interp::Config;
use bpflab_vm::{Collection, Program, RunInput, standard_helpers};

const FIXED_SEED: u64 = 0x6a69_745f_6469_6666;

/// Cases of each of the two main runs (fixed seed, fresh seed).
const CASES: u32 = 2000;
/// Cases per budget of `random_programs_under_small_budgets`.
const BUDGET_CASES: u32 = 200;
/// Cases of `random_programs_match_with_fast_codegen`.
const FAST_CASES: u32 = 500;

fn case_of(p: &GenProgram) -> Case {
    let c = Collection {
        programs: vec![Program::raw("gen", p.for_interpreter())],
        ..Collection::default()
    };
    Case::single(c, RunInput::data(vec![0x5a; 64]))
}

/// Checks `cases` programs from `seed` and asserts that all of them were checked.
fn run(label: &str, seed: u64, oracle: &Oracle, cases: u32) -> u32 {
    let checked = common::run_cases(
        label,
        seed,
        program(),
        cases,
        |p| listing(&p.for_interpreter()),
        |p| oracle.check(&case_of(p), true).map(|_| ()).map_err(|e| e.to_string()),
    );
    assert_eq!(checked, common::expected_cases(cases), "{label}: cases checked");
    checked
}

#[test]
fn random_programs_match_the_interpreter() {
    let oracle = common::oracle();
    let seed = std::env::var("BPFLAB_JIT_SEED")
        .ok()
        .and_then(|v| {
            v.trim().strip_prefix("0x").map_or(v.parse().ok(), |h| u64::from_str_radix(h, 16).ok())
        })
        .unwrap_or_else(|| std::collections::hash_map::RandomState::new().hash_one(0u8));
    let a = run("jit-differential (fixed seed)", FIXED_SEED, oracle, CASES);
    let b = run("jit-differential (random seed)", seed, oracle, CASES);
    assert_eq!(a + b, 2 * common::expected_cases(CASES), "programs checked in all");
}

/// The same programs under small budgets: the JIT counts per segment, so this checks that it
/// faults at the interpreter's instruction with the interpreter's memory.
#[test]
fn random_programs_under_small_budgets() {
    for budget in [0, 1, 7, 40, 150] {
        let oracle =
            Oracle::new(Config { insn_budget: budget, ..Config::default() }, standard_helpers())
                .expect("cranelift");
        let label = format!("jit-differential (budget {budget})");
        run(&label, FIXED_SEED ^ budget, &oracle, BUDGET_CASES);
    }
}

/// The same programs compiled with `OptLevel::Fast` (no optimizer, single-pass register
/// allocation).
#[test]
fn random_programs_match_with_fast_codegen() {
    let oracle =
        Oracle::with_opt(Config::default(), standard_helpers(), OptLevel::Fast).expect("cranelift");
    run("jit-differential (fast codegen)", FIXED_SEED ^ 0xfa57, &oracle, FAST_CASES);
}
