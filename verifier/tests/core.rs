//! The path walk on assembled programs without memory accesses or calls: ALU, branches,
//! loops, pruning and limits, each case compared with the running kernel's verdict and error
//! class, and with bpflab's own expected message.

use bpflab_kernel::verdict::{VerdictOptions, kernel_verdict};
use bpflab_verifier::{Config, ErrorKind, Verdict, verify};
use bpflab_vm::asm::assemble;
use bpflab_vm::helpers::HelperRegistry;
use bpflab_vm::{Collection, ProgType, Program};

/// One case: the program, and bpflab's expected outcome (`None` = accepted, else the
/// expected message).
struct Case {
    name: &'static str,
    asm: &'static str,
    expect: Option<&'static str>,
}

const CASES: &[Case] = &[
    Case { name: "ret0", asm: "r0 = 0\nexit", expect: None },
    Case { name: "uninit_r0", asm: "exit", expect: Some("R0 !read_ok") },
    Case { name: "uninit_r2", asm: "r0 = r2\nexit", expect: Some("R2 !read_ok") },
    Case {
        name: "write_fp",
        asm: "r10 = 0\nr0 = 0\nexit",
        expect: Some("frame pointer is read only"),
    },
    // A privileged program may negate a pointer: the result is a number, not dereferenced.
    Case { name: "neg_pointer", asm: "r1 = -r1\nr0 = r1\nr0 &= 1\nexit", expect: None },
    Case {
        name: "neg_pointer_then_load",
        asm: "r1 = -r1\nr0 = *(u8 *)(r1 + 0)\nexit",
        expect: Some("R1 invalid mem access 'scalar'"),
    },
    Case { name: "div_zero_k", asm: "r0 = 1\nr0 /= 0\nexit", expect: Some("div by zero") },
    Case { name: "bad_shift", asm: "r0 = 1\nr0 <<= 64\nexit", expect: Some("invalid shift 64") },
    Case {
        name: "branch_both_init",
        asm: "r0 = 0\nr1 = r1\nif r0 > 3 goto +1\nr0 = 1\nexit",
        expect: None,
    },
    Case {
        name: "branch_one_uninit",
        asm: "r2 = 0\nr3 = 5\nif r3 > 3 goto +1\nr0 = 1\nexit",
        expect: Some("R0 !read_ok"),
    },
    Case {
        name: "bounded_loop",
        asm: "r0 = 0\nr1 = 0\nl: r1 += 1\nr0 += 2\nif r1 < 10 goto l\nr0 = 0\nexit",
        expect: None,
    },
    Case {
        name: "infinite_loop",
        asm: "r0 = 0\nl: r0 = 0\nif r0 == 0 goto l\nexit",
        expect: Some("infinite loop detected at insn 1"),
    },
    Case {
        name: "ptr_add_ptr",
        asm: "r2 = r10\nr2 += r10\nr0 = 0\nexit",
        expect: Some("R2 pointer += pointer prohibited"),
    },
    Case {
        name: "ctx_null_check_known",
        asm: "r0 = 0\nif r1 != 0 goto +1\nr0 = r5\nexit",
        expect: Some("R5 !read_ok"),
    },
];

fn program(case: &Case) -> Collection {
    let insns = assemble(case.asm).unwrap_or_else(|e| panic!("{}: {e}", case.name));
    let mut p = Program::raw(case.name, insns);
    p.prog_type = ProgType::SocketFilter;
    p.license = "GPL".into();
    Collection::single(p)
}

#[test]
fn core_cases_match_the_kernel_and_the_expected_message() {
    let helpers = HelperRegistry::standard();
    let config = Config::default();
    let mut failures = Vec::new();
    for case in CASES {
        let coll = program(case);
        let report = verify(&coll, 0, &helpers, &config);
        let got: Option<(ErrorKind, String)> = match &report.verdict {
            Verdict::Accepted => None,
            Verdict::Rejected(e) => Some((e.kind, e.message.clone())),
            Verdict::Unsupported(u) => {
                failures.push(format!("{}: unsupported: {}", case.name, u.feature));
                continue;
            }
        };
        if got.as_ref().map(|g| g.1.as_str()) != case.expect {
            failures.push(format!("{}: bpflab {:?}, expected {:?}", case.name, got, case.expect));
        }
        match kernel_verdict(&coll, 0, &VerdictOptions::default()) {
            Ok(k) => {
                let kclass = k.error_line.as_deref().map(ErrorKind::classify);
                let bclass = got.as_ref().map(|g| g.0);
                if k.accepted != got.is_none() || (!k.accepted && kclass != bclass) {
                    failures.push(format!(
                        "{}: kernel {} {:?} ({:?}), bpflab {:?}",
                        case.name, k.accepted, k.error_line, kclass, got
                    ));
                }
            }
            Err(e) => println!("SKIP: {}: kernel load failed: {e}", case.name),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
