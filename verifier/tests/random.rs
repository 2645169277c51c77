//! Random programs, valid and deliberately broken (testgen's `verifier_gen`, plus the
//! scalar-only programs of the JIT differential tests), judged by the running kernel and by
//! bpflab. bpflab must never accept a program the kernel rejects for a safety reason (every
//! class but `too_complex`): such a case fails the test with the program and both logs as a
//! reproducer. The agreement rate (verdict, and error class for rejections) and every other
//! disagreement are printed, not asserted.
//!
//! `BPFLAB_RANDOM_CASES` sets the number of programs (default 10,000), `BPFLAB_RANDOM_SEED` the
//! seed (default fixed, so CI runs are reproducible).

use std::collections::BTreeMap;

use bpflab_kernel::verdict::{KernelVerdict, VerdictOptions, kernel_verdict};
use bpflab_testgen::verifier_gen::{VerifierProgram, verifier_program};
use std::time::{Duration, Instant};

use bpflab_verifier::{Config, ErrorKind, Verdict, verify};
use bpflab_vm::helpers::HelperRegistry;
use bpflab_vm::{Collection, ProgType, Program};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config as RunnerConfig, RngAlgorithm, TestRng, TestRunner};

/// A test runner whose random stream comes from `seed`.
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

/// One generated case: the collection, its text, and the defects the generator meant.
struct Case {
    coll: Collection,
    text: String,
    defects: String,
}

fn cases(n: u64, seed: u64) -> Vec<Case> {
    let mut run = runner(seed);
    let generator = verifier_program();
    let scalar = bpflab_testgen::program();
    (0..n)
        .map(|i| {
            if i % 10 == 9 {
                // One in ten: the JIT differential tests' scalar programs (all valid).
                let p = scalar.new_tree(&mut run).expect("generator").current();
                let insns = p.for_interpreter();
                let mut prog = Program::raw("gen", insns).with_type(ProgType::SocketFilter);
                prog.license = "GPL".into();
                Case {
                    coll: Collection::single(prog),
                    text: p.to_string(),
                    defects: "scalar".into(),
                }
            } else {
                let p: VerifierProgram = generator.new_tree(&mut run).expect("generator").current();
                let defects = p.defects().iter().map(|d| d.name()).collect::<Vec<_>>().join(",");
                Case {
                    coll: p.collection(),
                    text: p.to_string(),
                    defects: if defects.is_empty() { "valid".into() } else { defects },
                }
            }
        })
        .collect()
}

/// How one case came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    BothAccept,
    BothRejectSameClass,
    BothRejectOtherClass,
    BpflabAcceptsKernelRejects,
    BpflabRejectsKernelAccepts,
    Unsupported,
}

#[test]
fn random_programs_bpflab_never_accepts_what_the_kernel_rejects() {
    let n = env_number("BPFLAB_RANDOM_CASES", 10_000);
    let seed = env_number("BPFLAB_RANDOM_SEED", 0x5eed_0009);
    let helpers = HelperRegistry::standard();
    let quiet = Config { log_level: 0, ..Config::default() };
    let quiet_kernel = VerdictOptions { log_level: 0, ..VerdictOptions::default() };
    let mut outcomes: BTreeMap<Outcome, u64> = BTreeMap::new();
    // Per intended defect (`valid` and `scalar` for programs without one): (programs that
    // have it, of them the kernel rejects). Uninitialised stack reads are allowed to
    // privileged programs (the kernel's allow_uninit_stack), so the kernel accepts those.
    let mut per_defect: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut unsupported: BTreeMap<String, u64> = BTreeMap::new();
    let mut kernel_skips = 0u64;
    let mut unsound = Vec::new();
    let mut printed = 0;
    let started = Instant::now();
    let (mut bpflab_time, mut kernel_time) = (Duration::ZERO, Duration::ZERO);
    for (i, case) in cases(n, seed).into_iter().enumerate() {
        let t = Instant::now();
        let report = verify(&case.coll, 0, &helpers, &quiet);
        bpflab_time += t.elapsed();
        let t = Instant::now();
        // Statistics and errors only: at level 1 the kernel logs every instruction it walks
        // (megabytes for a loop that runs to the limit).
        let kernel = kernel_verdict(&case.coll, 0, &quiet_kernel);
        kernel_time += t.elapsed();
        let k: KernelVerdict = match kernel {
            Ok(k) => k,
            Err(e) => {
                kernel_skips += 1;
                println!("SKIP case {i}: the kernel could not decide: {e}");
                continue;
            }
        };
        let mut names: Vec<&str> = case.defects.split(',').collect();
        names.sort_unstable();
        names.dedup();
        for d in names {
            let entry = per_defect.entry(d.to_string()).or_default();
            entry.0 += 1;
            entry.1 += u64::from(!k.accepted);
        }
        let kclass = k.error_line.as_deref().map(ErrorKind::classify);
        let outcome = match (&report.verdict, k.accepted) {
            (Verdict::Unsupported(u), _) => {
                *unsupported.entry(u.feature.clone()).or_default() += 1;
                Outcome::Unsupported
            }
            (Verdict::Accepted, true) => Outcome::BothAccept,
            (Verdict::Accepted, false) => Outcome::BpflabAcceptsKernelRejects,
            (Verdict::Rejected(_), true) => Outcome::BpflabRejectsKernelAccepts,
            (Verdict::Rejected(e), false) if Some(e.kind) == kclass => Outcome::BothRejectSameClass,
            (Verdict::Rejected(_), false) => Outcome::BothRejectOtherClass,
        };
        *outcomes.entry(outcome).or_default() += 1;
        let bpflab_said = match &report.verdict {
            Verdict::Accepted => "accepted".to_string(),
            Verdict::Rejected(e) => format!("rejected [{}] {}", e.kind.name(), e.message),
            Verdict::Unsupported(u) => format!("unsupported: {}", u.feature),
        };
        let kernel_said = match (&k.error_line, kclass) {
            (None, _) if k.accepted => "accepted".to_string(),
            (line, class) => {
                format!(
                    "rejected [{}] {}",
                    class.map_or("?", ErrorKind::name),
                    line.as_deref().unwrap_or("(no log)")
                )
            }
        };
        match outcome {
            Outcome::BpflabAcceptsKernelRejects if kclass != Some(ErrorKind::TooComplex) => {
                let full = verify(&case.coll, 0, &helpers, &Config::default());
                let klog = kernel_verdict(&case.coll, 0, &VerdictOptions::default())
                    .map_or_else(|e| e.to_string(), |k| k.log);
                unsound.push(format!(
                    "case {i} ({}): bpflab accepts, the kernel rejects: {kernel_said}\n\
                     --- program\n{}--- bpflab log\n{}--- kernel log\n{}",
                    case.defects, case.text, full.log, klog
                ));
            }
            Outcome::BpflabRejectsKernelAccepts
            | Outcome::BothRejectOtherClass
            | Outcome::BpflabAcceptsKernelRejects
                if printed < 40 =>
            {
                printed += 1;
                println!(
                    "DISAGREE case {i} ({}): {outcome:?}\n  bpflab: {bpflab_said}\n  kernel: {kernel_said}\n{}",
                    case.defects, case.text
                );
            }
            _ => {}
        }
    }
    let decided: u64 =
        outcomes.iter().filter(|(o, _)| **o != Outcome::Unsupported).map(|(_, c)| c).sum();
    let verdict_agree = outcomes.get(&Outcome::BothAccept).copied().unwrap_or(0)
        + outcomes.get(&Outcome::BothRejectSameClass).copied().unwrap_or(0)
        + outcomes.get(&Outcome::BothRejectOtherClass).copied().unwrap_or(0);
    let class_agree = outcomes.get(&Outcome::BothAccept).copied().unwrap_or(0)
        + outcomes.get(&Outcome::BothRejectSameClass).copied().unwrap_or(0);
    let pct = |a: u64| if decided == 0 { 0.0 } else { 100.0 * a as f64 / decided as f64 };
    println!(
        "verifier-random: {n} programs (seed {seed:#x}) in {:.1}s; kernel could not decide {kernel_skips}; \
         bpflab decided {decided}: verdict agreement {verdict_agree} ({:.1}%), verdict and class {class_agree} ({:.1}%)",
        started.elapsed().as_secs_f64(),
        pct(verdict_agree),
        pct(class_agree)
    );
    println!(
        "verifier-random:   time in bpflab's verifier {:.1}s, in the kernel's loads {:.1}s",
        bpflab_time.as_secs_f64(),
        kernel_time.as_secs_f64()
    );
    for (o, c) in &outcomes {
        println!("verifier-random:   {o:?}: {c}");
    }
    for (d, (c, r)) in &per_defect {
        println!("verifier-random:   generated with {d}: {c} (kernel rejects {r})");
    }
    for (f, c) in &unsupported {
        println!("verifier-random:   unsupported {f}: {c}");
    }
    assert!(decided > 0, "no program was decided by both");
    assert!(
        unsound.is_empty(),
        "{} programs bpflab accepts and the kernel rejects for a safety reason:\n{}",
        unsound.len(),
        unsound.join("\n")
    );
}

/// Found by the random programs: after `if r7 < r9` (both registers), the fall-through
/// refines r7 to a constant through r9's value; r7 is then added to r10, which needs it
/// precise, and so r9 must be precise too (the kernel's backtracking marks both operands of a
/// register comparison). Without it the second loop exit (r9 = 0, r7 unknown) was pruned
/// against the first (r9 = -1) and accepted.
#[test]
fn both_operands_of_a_register_comparison_become_precise() {
    let asm = "r6 = r1\ncall bpf_get_prandom_u32\nr7 = r0\nr8 = -1770856096\nr9 = r7\nr9 &= 6\n\
               l1:\nw7 /= w8\nr9 -= 1\nif r9 s> 0 goto l1\nif r7 < r9 goto l2\nr2 = r10\n\
               r2 += r7\n*(u8 *)(r2 -8) = r7\nl2:\nr0 = 3\nexit";
    let insns = bpflab_vm::asm::assemble(asm).expect("assembles");
    let mut p = Program::raw("precise_x", insns).with_type(ProgType::Xdp);
    p.license = "GPL".into();
    let coll = Collection::single(p);
    let report = verify(&coll, 0, &HelperRegistry::standard(), &Config::default());
    let Verdict::Rejected(e) = &report.verdict else {
        panic!("bpflab: {:?}\n{}", report.verdict, report.log)
    };
    assert_eq!(
        e.message,
        "math between fp pointer and register with unbounded min value is not allowed"
    );
    assert_eq!(e.insn, Some(11));
    match kernel_verdict(&coll, 0, &VerdictOptions::default()) {
        Ok(k) => {
            assert!(!k.accepted);
            assert_eq!(k.error_line.as_deref(), Some(e.message.as_str()));
        }
        Err(err) => println!("SKIP: the kernel could not decide: {err}"),
    }
}
