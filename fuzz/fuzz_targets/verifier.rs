//! The verifier on arbitrary input: the first byte chooses between a generated program
//! (testgen's `verifier_gen`, driven by a seed from the next 32 bytes) and the remaining
//! bytes decoded as instructions of a socket filter, XDP or tc program with the generated
//! programs' maps. Verification must never panic and must stay within its limits (processed
//! instructions, states per instruction); a program it accepts must run in the checked
//! interpreter on inputs derived from the bytes without a fault.
#![no_main]

use bpflab_testgen::verifier_gen::{self, PROG_TYPES, run_checked, verifier_program};
use bpflab_verifier::{Config, Verdict, verify};
use bpflab_vm::helpers::HelperRegistry;
use bpflab_vm::isa::decode_bytes;
use bpflab_vm::{Collection, Program};
use libfuzzer_sys::fuzz_target;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config as RunnerConfig, RngAlgorithm, TestRng, TestRunner};

/// Lower than the kernel's limit, so that slow inputs stay quick; the bound is still checked.
const MAX_PROCESSED: u64 = 200_000;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let coll = if mode % 2 == 0 {
        let mut seed = [0u8; 32];
        let n = rest.len().min(32);
        seed[..n].copy_from_slice(&rest[..n]);
        let mut runner = TestRunner::new_with_rng(
            RunnerConfig::default(),
            TestRng::from_seed(RngAlgorithm::ChaCha, &seed),
        );
        let Ok(tree) = verifier_program().new_tree(&mut runner) else { return };
        tree.current().collection()
    } else {
        let Ok(insns) = decode_bytes(rest) else { return };
        let prog_type = PROG_TYPES[usize::from(mode / 2) % PROG_TYPES.len()];
        let mut p = Program::raw("fuzz", insns).with_type(prog_type);
        p.license = "GPL".into();
        Collection { maps: verifier_gen::maps(), ..Collection::single(p) }
    };
    let config = Config { log_level: 0, max_processed_insns: MAX_PROCESSED, ..Config::default() };
    let report = verify(&coll, 0, &HelperRegistry::standard(), &config);
    // The kernel stops at limit + 1 ("Processed 1000001 insn").
    assert!(
        report.stats.processed_insns <= MAX_PROCESSED + 1,
        "processed {} instructions, limit {MAX_PROCESSED}",
        report.stats.processed_insns
    );
    assert!(
        report.stats.max_states_per_insn <= 2 * config.max_states_per_insn as u64,
        "{} states at one instruction",
        report.stats.max_states_per_insn
    );
    if report.verdict == Verdict::Accepted {
        let seed = data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        if let Err(what) = run_checked(&coll, seed, 3) {
            let listing = bpflab_vm::asm::disassemble(&coll.programs[0].insns);
            panic!("accepted, then faulted: {what}\n{listing}");
        }
    }
});
