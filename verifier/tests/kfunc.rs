//! Kfunc calls (verifier/src/kfunc.rs): open-coded iterators (`bpf_iter_num_*`,
//! `bpf_iter_bits_*`), RCU read-side sections, disabled preemption and `bpf_throw`, on assembled programs
//! and on the kernel's selftests. Each case is compared with the running kernel: verdict,
//! error class (and bpflab's expected message), and for accepted iterator loops the number of
//! processed instructions.

use std::path::Path;

use bpflab_kernel::verdict::{VerdictOptions, kernel_verdict};
use bpflab_loader::LoadOptions;
use bpflab_verifier::{Config, ErrorKind, Verdict, verify};
use bpflab_vm::ProgType;
use bpflab_vm::helpers::HelperRegistry;

mod common {
    pub(crate) mod kfunc;
}
use common::kfunc::{Case, outcome, program};

use ProgType::{SchedCls, Xdp};

/// `bpf_iter_num_new(fp-8, 0, 10)`.
macro_rules! new10 {
    () => {
        "r1 = r10\nr1 += -8\nr2 = 0\nr3 = 10\ncall kfunc {bpf_iter_num_new}\n"
    };
}

/// `bpf_iter_num_destroy(fp-8)`.
macro_rules! destroy {
    () => {
        "r1 = r10\nr1 += -8\ncall kfunc {bpf_iter_num_destroy}\n"
    };
}

const CASES: &[Case] = &[
    Case {
        name: "sum_loop",
        ty: Xdp,
        asm: concat!(
            "r6 = 0\n",
            new10!(),
            "loop:\nr1 = r10\nr1 += -8\ncall kfunc {bpf_iter_num_next}\nif r0 == 0 goto done\n",
            "r1 = *(u32 *)(r0 + 0)\nr6 += r1\ngoto loop\ndone:\n",
            destroy!(),
            "r0 = 2\nexit"
        ),
        expect: None,
    },
    Case {
        name: "count_loop_returned",
        ty: SchedCls,
        asm: concat!(
            "r6 = 0\n",
            new10!(),
            "loop:\nr1 = r10\nr1 += -8\ncall kfunc {bpf_iter_num_next}\nif r0 == 0 goto done\n",
            "r6 += 1\ngoto loop\ndone:\n",
            destroy!(),
            "r0 = r6\nexit"
        ),
        expect: None,
    },
    Case {
        name: "break_after_3",
        ty: Xdp,
        asm: concat!(
            "r6 = 0\n",
            new10!(),
            "loop:\nr1 = r10\nr1 += -8\ncall kfunc {bpf_iter_num_next}\nif r0 == 0 goto done\n",
            "r6 += 1\nif r6 > 3 goto done\ngoto loop\ndone:\n",
            destroy!(),
            "r0 = 2\nexit"
        ),
        expect: None,
    },
    Case {
        name: "null_element_read",
        ty: Xdp,
        asm: concat!(
            new10!(),
            "r1 = r10\nr1 += -8\ncall kfunc {bpf_iter_num_next}\nr6 = *(u32 *)(r0 + 0)\n",
            destroy!(),
            "r0 = 2\nexit"
        ),
        expect: Some("R0 invalid mem access 'scalar'"),
    },
    Case {
        name: "element_is_read_only",
        ty: Xdp,
        asm: concat!(
            new10!(),
            "r1 = r10\nr1 += -8\ncall kfunc {bpf_iter_num_next}\nif r0 == 0 goto done\n",
            "*(u32 *)(r0 + 0) = 1\ndone:\n",
            destroy!(),
            "r0 = 2\nexit"
        ),
        expect: Some("R0 cannot write into rdonly_mem"),
    },
    Case {
        name: "next_without_new",
        ty: Xdp,
        asm: "r1 = r10\nr1 += -8\ncall kfunc {bpf_iter_num_next}\nr0 = 2\nexit",
        expect: Some("expected an initialized iter_num as arg #0"),
    },
    Case {
        name: "destroy_without_new",
        ty: Xdp,
        asm: concat!(destroy!(), "r0 = 2\nexit"),
        expect: Some("expected an initialized iter_num as arg #0"),
    },
    Case {
        name: "double_new",
        ty: Xdp,
        asm: concat!(new10!(), new10!(), destroy!(), "r0 = 2\nexit"),
        expect: Some("expected uninitialized iter_num as arg #0"),
    },
    Case {
        name: "double_destroy",
        ty: Xdp,
        asm: concat!(new10!(), destroy!(), destroy!(), "r0 = 2\nexit"),
        expect: Some("expected an initialized iter_num as arg #0"),
    },
    Case {
        name: "not_destroyed",
        ty: Xdp,
        asm: concat!(new10!(), "r0 = 2\nexit"),
        expect: Some("BPF_EXIT instruction in main prog would lead to reference leak"),
    },
    Case {
        name: "overwritten_then_destroyed",
        ty: Xdp,
        asm: concat!(new10!(), "*(u64 *)(r10 - 8) = 0\n", destroy!(), "r0 = 2\nexit"),
        expect: Some("expected an initialized iter_num as arg #0"),
    },
    Case {
        name: "iterator_slot_read",
        ty: Xdp,
        asm: concat!(new10!(), "r6 = *(u64 *)(r10 - 8)\n", destroy!(), "r0 = 2\nexit"),
        expect: Some("invalid read from stack off -8+0 size 8"),
    },
    Case {
        name: "iterator_not_on_stack",
        ty: Xdp,
        asm: "r2 = 0\nr3 = 10\ncall kfunc {bpf_iter_num_new}\nr0 = 2\nexit",
        expect: Some("arg#0 expected pointer to an iterator on stack"),
    },
    Case {
        name: "iterator_null",
        ty: Xdp,
        asm: "r1 = 0\nr2 = 0\nr3 = 10\ncall kfunc {bpf_iter_num_new}\nr0 = 2\nexit",
        expect: Some("Possibly NULL pointer passed to trusted arg0"),
    },
    Case {
        name: "iterator_misaligned",
        ty: Xdp,
        asm: "r1 = r10\nr1 += -12\nr2 = 0\nr3 = 10\ncall kfunc {bpf_iter_num_new}\nr0 = 2\nexit",
        expect: Some("expected uninitialized iter_num as arg #0"),
    },
    Case {
        name: "bound_not_scalar",
        ty: Xdp,
        asm: "r1 = r10\nr1 += -8\nr2 = 0\nr3 = r10\ncall kfunc {bpf_iter_num_new}\nr0 = 2\nexit",
        expect: Some("R3 is not a scalar"),
    },
    Case {
        name: "infinite_loop_inside",
        ty: Xdp,
        asm: concat!(
            new10!(),
            "loop:\nr1 = r10\nr1 += -8\ncall kfunc {bpf_iter_num_next}\nif r0 == 0 goto done\n",
            "r6 = 0\nspin:\nif r6 == 0 goto spin\ngoto loop\ndone:\n",
            destroy!(),
            "r0 = 2\nexit"
        ),
        expect: Some("infinite loop detected at insn 10"),
    },
    Case {
        name: "bits_loop",
        ty: Xdp,
        asm: concat!(
            "*(u64 *)(r10 - 32) = 5\nr6 = 0\n",
            "r1 = r10\nr1 += -24\nr2 = r10\nr2 += -32\nr3 = 1\ncall kfunc {bpf_iter_bits_new}\n",
            "loop:\nr1 = r10\nr1 += -24\ncall kfunc {bpf_iter_bits_next}\nif r0 == 0 goto done\n",
            "r1 = *(u32 *)(r0 + 0)\nr6 += r1\ngoto loop\ndone:\n",
            "r1 = r10\nr1 += -24\ncall kfunc {bpf_iter_bits_destroy}\nr0 = 2\nexit"
        ),
        expect: None,
    },
    Case {
        name: "bits_next_on_num_iterator",
        ty: Xdp,
        asm: concat!(
            new10!(),
            "r1 = r10\nr1 += -8\ncall kfunc {bpf_iter_bits_next}\n",
            destroy!(),
            "r0 = 2\nexit"
        ),
        expect: Some("expected an initialized iter_bits as arg #0"),
    },
    // RCU read-side sections and disabled preemption.
    Case {
        name: "rcu_balanced",
        ty: Xdp,
        asm: "call kfunc {bpf_rcu_read_lock}\ncall kfunc {bpf_rcu_read_unlock}\nr0 = 2\nexit",
        expect: None,
    },
    Case {
        name: "rcu_unmatched_unlock",
        ty: Xdp,
        asm: "call kfunc {bpf_rcu_read_unlock}\nr0 = 2\nexit",
        expect: Some("unmatched rcu read unlock (kernel function bpf_rcu_read_unlock)"),
    },
    Case {
        name: "rcu_missing_unlock",
        ty: Xdp,
        asm: "call kfunc {bpf_rcu_read_lock}\nr0 = 2\nexit",
        expect: Some(
            "BPF_EXIT instruction in main prog cannot be used inside bpf_rcu_read_lock-ed region",
        ),
    },
    Case {
        name: "rcu_nested",
        ty: Xdp,
        asm: "call kfunc {bpf_rcu_read_lock}\ncall kfunc {bpf_rcu_read_lock}\n\
              call kfunc {bpf_rcu_read_unlock}\ncall kfunc {bpf_rcu_read_unlock}\nr0 = 2\nexit",
        expect: Some("nested rcu read lock (kernel function bpf_rcu_read_lock)"),
    },
    Case {
        name: "preempt_nested_balanced",
        ty: Xdp,
        asm: "call kfunc {bpf_preempt_disable}\ncall kfunc {bpf_preempt_disable}\n\
              call kfunc {bpf_preempt_enable}\ncall kfunc {bpf_preempt_enable}\nr0 = 2\nexit",
        expect: None,
    },
    Case {
        name: "preempt_unmatched_enable",
        ty: Xdp,
        asm: "call kfunc {bpf_preempt_enable}\nr0 = 2\nexit",
        expect: Some("unmatched attempt to enable preemption (kernel function bpf_preempt_enable)"),
    },
    Case {
        name: "preempt_missing_enable",
        ty: Xdp,
        asm: "call kfunc {bpf_preempt_disable}\ncall kfunc {bpf_preempt_disable}\n\
              call kfunc {bpf_preempt_enable}\nr0 = 2\nexit",
        expect: Some(
            "BPF_EXIT instruction in main prog cannot be used inside bpf_preempt_disable-ed region",
        ),
    },
    // bpf_throw: the program exits through the exception.
    Case {
        name: "throw_conditionally",
        ty: SchedCls,
        asm: "call bpf_get_prandom_u32\nif r0 > 7 goto out\nr1 = 3\ncall kfunc {bpf_throw}\n\
              out:\nr0 = 0\nexit",
        expect: None,
    },
    Case {
        name: "throw_ends_the_path",
        ty: Xdp,
        asm: "r1 = 0\ncall kfunc {bpf_throw}\nr0 = *(u64 *)(r1 + 0)\nexit",
        expect: None,
    },
    Case {
        name: "throw_cookie_not_scalar",
        ty: Xdp,
        asm: "r1 = r10\ncall kfunc {bpf_throw}\nr0 = 2\nexit",
        expect: Some("R1 is not a scalar"),
    },
    Case {
        name: "throw_in_rcu_section",
        ty: Xdp,
        asm: "call kfunc {bpf_rcu_read_lock}\nr1 = 0\ncall kfunc {bpf_throw}\nr0 = 2\nexit",
        expect: Some("bpf_throw cannot be used inside bpf_rcu_read_lock-ed region"),
    },
    Case {
        name: "throw_with_preemption_disabled",
        ty: Xdp,
        asm: "call kfunc {bpf_preempt_disable}\nr1 = 0\ncall kfunc {bpf_throw}\nr0 = 2\nexit",
        expect: Some("bpf_throw cannot be used inside bpf_preempt_disable-ed region"),
    },
    Case {
        name: "throw_with_live_iterator",
        ty: Xdp,
        asm: concat!(new10!(), "r1 = 0\ncall kfunc {bpf_throw}\n", destroy!(), "r0 = 2\nexit"),
        expect: Some("bpf_throw would lead to reference leak"),
    },
    Case {
        name: "iterator_inside_rcu",
        ty: Xdp,
        asm: concat!(
            "call kfunc {bpf_rcu_read_lock}\n",
            new10!(),
            "loop:\nr1 = r10\nr1 += -8\ncall kfunc {bpf_iter_num_next}\nif r0 == 0 goto done\n",
            "goto loop\ndone:\n",
            destroy!(),
            "call kfunc {bpf_rcu_read_unlock}\nr0 = 2\nexit"
        ),
        expect: None,
    },
];

#[test]
fn kfunc_cases_match_the_kernel_and_the_expected_message() {
    let helpers = HelperRegistry::standard();
    let config = Config::default();
    let mut failures = Vec::new();
    let mut compared = 0;
    for case in CASES {
        let Some(coll) = program(case.name, case.ty, case.asm) else {
            eprintln!("SKIP: no vmlinux BTF with the kfuncs of {}", case.name);
            continue;
        };
        let report = verify(&coll, 0, &helpers, &config);
        let got = match outcome(&report) {
            Ok(g) => g,
            Err(f) => {
                failures.push(format!("{}: unsupported: {f}", case.name));
                continue;
            }
        };
        if got.as_ref().map(|g| g.1.as_str()) != case.expect {
            failures.push(format!("{}: bpflab {:?}, expected {:?}", case.name, got, case.expect));
        }
        if case.name == "not_destroyed" && !report.log.contains("Unreleased reference id=") {
            failures
                .push(format!("{}: no 'Unreleased reference' line in {}", case.name, report.log));
        }
        match kernel_verdict(&coll, 0, &VerdictOptions::default()) {
            Ok(k) => {
                compared += 1;
                let kclass = k.error_line.as_deref().map(ErrorKind::classify);
                let bclass = got.as_ref().map(|g| g.0);
                if k.accepted != got.is_none() || (!k.accepted && kclass != bclass) {
                    failures.push(format!(
                        "{}: kernel {} {:?} ({kclass:?}), bpflab {got:?}",
                        case.name, k.accepted, k.error_line
                    ));
                } else if !k.accepted && k.error_line.as_deref() != case.expect {
                    println!("{}: kernel says {:?}, bpflab {:?}", case.name, k.error_line, got);
                }
                // Iterator loops converge as the kernel's do: the same work, within a few
                // instructions.
                if let (true, Some(kp)) = (k.accepted, k.processed_insns) {
                    let ours = report.stats.processed_insns;
                    if ours.abs_diff(kp) > 4 + kp / 10 {
                        failures.push(format!(
                            "{}: processed {ours} insns, the kernel {kp}",
                            case.name
                        ));
                    }
                }
            }
            Err(e) => println!("SKIP: {}: kernel load failed: {e}", case.name),
        }
    }
    println!("{} cases, {compared} compared with the kernel", CASES.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn kfuncs_not_modelled_stay_unsupported_by_name() {
    let helpers = HelperRegistry::standard();
    for name in ["bpf_rbtree_first", "bpf_obj_drop_impl"] {
        let asm = format!("r1 = 0\ncall kfunc {{{name}}}\nr0 = 0\nexit");
        let Some(coll) = program(name, SchedCls, &asm) else {
            eprintln!("SKIP: no {name} in this kernel's BTF");
            continue;
        };
        let report = verify(&coll, 0, &helpers, &Config::default());
        match report.verdict {
            Verdict::Unsupported(u) => {
                assert_eq!(u.feature, format!("kfunc {name}"));
                assert_eq!(u.insn, Some(1));
            }
            v => panic!("{name}: {v:?}"),
        }
    }
}

/// Programs of the kernel's iterator and preemption selftests that bpflab decides as the
/// kernel does (verdict and error class; accepted ones within 15% of the kernel's processed
/// instructions).
const SELFTESTS_AGREE: &[(&str, &[&str])] = &[
    (
        "iters_state_safety",
        &[
            "create_and_destroy",
            "create_and_forget_to_destroy_fail",
            "destroy_without_creating_fail",
            "compromise_iter_w_direct_write_fail",
            "compromise_iter_w_direct_write_and_skip_destroy_fail",
            "compromise_iter_w_helper_write_fail",
            "leak_iter_from_subprog_fail",
            "valid_stack_reuse",
            "double_create_fail",
            "double_destroy_fail",
            "next_without_new_fail",
            "next_after_destroy_fail",
            "read_from_iter_slot_fail",
            "stacksafe_should_not_conflate_stack_spill_and_iter",
        ],
    ),
    (
        "iters_looping",
        &[
            "consume_first_item_only",
            "missing_null_check_fail",
            "wrong_sized_read_fail",
            "simplest_loop",
        ],
    ),
    (
        "iters",
        &[
            "iter_err_unsafe_c_loop",
            "iter_err_unsafe_asm_loop",
            "iter_err_too_permissive1",
            "delayed_read_mark",
            "triple_continue",
            "widen_spill",
            "iter_while_loop",
            "iter_for_loop",
            "iter_bpf_for_each_macro",
            "iter_bpf_for_macro",
            "iter_pragma_unroll_loop",
            "iter_manual_unroll_loop",
            "iter_multiple_sequential_loops",
            "iter_limit_cond_break_loop",
            "iter_search_loop",
            "iter_array_fill",
            "iter_nested_iters",
            "iter_nested_deeply_iters",
            "iter_subprog_iters",
            "iter_tricky_but_fine",
            "iter_stack_array_loop",
            "iter_pass_iter_ptr_to_subprog",
            "checkpoint_states_deletion",
            "iter_arr_with_actual_elem_count",
        ],
    ),
    (
        "verifier_bits_iter",
        &[
            "no_destroy",
            "next_uninit",
            "destroy_uninit",
            "null_pointer",
            "bits_copy",
            "bits_memalloc",
            "bit_index",
            "bits_too_big",
            "fewer_words",
            "zero_words",
            "huge_words",
            "max_words",
            "bad_words",
        ],
    ),
    (
        "exceptions_fail",
        &[
            "reject_with_lock",
            "reject_subprog_with_lock",
            "reject_with_rcu_read_lock",
            "reject_subprog_with_rcu_read_lock",
        ],
    ),
    (
        "exceptions_assert",
        &[
            "check_assert_eq_int_min",
            "check_assert_eq_int_max",
            "check_assert_eq_zero",
            "check_assert_eq_llong_min",
            "check_assert_eq_llong_max",
            "check_assert_lt_pos",
            "check_assert_lt_zero",
            "check_assert_lt_neg",
            "check_assert_le_pos",
            "check_assert_le_zero",
            "check_assert_le_neg",
            "check_assert_gt_pos",
            "check_assert_gt_zero",
            "check_assert_gt_neg",
            "check_assert_ge_pos",
            "check_assert_ge_zero",
            "check_assert_ge_neg",
            "check_assert_range_s64",
            "check_assert_range_u64",
            "check_assert_single_range_s64",
            "check_assert_single_range_u64",
            "check_assert_generic",
        ],
    ),
    (
        "preempt_lock",
        &[
            "preempt_lock_missing_1",
            "preempt_lock_missing_2",
            "preempt_lock_missing_3",
            "preempt_lock_missing_3_minus_2",
            "preempt_lock_missing_1_subprog",
            "preempt_lock_missing_2_subprog",
            "preempt_lock_missing_2_minus_1_subprog",
            "preempt_balance",
            "preempt_balance_subprog_test",
            "preempt_global_subprog_test",
        ],
    ),
];

#[test]
fn iterator_and_preemption_selftests_agree_with_the_kernel() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/selftests/obj");
    let helpers = HelperRegistry::standard();
    let config = Config::default();
    let mut failures = Vec::new();
    let mut agreed = 0;
    for (object, programs) in SELFTESTS_AGREE {
        let path = dir.join(format!("{object}.bpf.o"));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| {
            panic!("{} (built by verifier/corpus/selftests): {e}", path.display())
        });
        let obj = bpflab_loader::load(&bytes, &LoadOptions::for_path(&path)).expect("loads");
        let coll = &obj.collection;
        for name in *programs {
            let Some(idx) = coll.programs.iter().position(|p| p.name == *name) else {
                failures.push(format!("{object}: no program {name}"));
                continue;
            };
            let report = verify(coll, idx, &helpers, &config);
            let got = match outcome(&report) {
                Ok(g) => g,
                Err(f) => {
                    failures.push(format!("{object}/{name}: unsupported: {f}"));
                    continue;
                }
            };
            let k = match kernel_verdict(coll, idx, &VerdictOptions::default()) {
                Ok(k) => k,
                Err(e) => {
                    println!("SKIP: {object}/{name}: the kernel cannot load it: {e}");
                    continue;
                }
            };
            let kclass = k.error_line.as_deref().map(ErrorKind::classify);
            let bclass = got.as_ref().map(|g| g.0);
            // The same message is the same error, whatever class its raiser gave it.
            let same_line = k.error_line.as_deref() == got.as_ref().map(|g| g.1.as_str());
            if k.accepted != got.is_none() || (!k.accepted && kclass != bclass && !same_line) {
                failures.push(format!(
                    "{object}/{name}: kernel {} {:?}, bpflab {got:?}",
                    k.accepted, k.error_line
                ));
                continue;
            }
            if let (true, Some(kp)) = (k.accepted, k.processed_insns) {
                let ours = report.stats.processed_insns;
                if ours.abs_diff(kp) > 4 + kp * 15 / 100 {
                    failures
                        .push(format!("{object}/{name}: processed {ours} insns, the kernel {kp}"));
                    continue;
                }
            }
            agreed += 1;
        }
    }
    println!("{agreed} selftest programs agree with the kernel");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn tail_calls_inside_sections_are_refused_like_the_kernel() {
    let helpers = HelperRegistry::standard();
    let cases: &[(&str, &str, &str)] = &[
        (
            "tail_call_preempt_off",
            "call kfunc {bpf_preempt_disable}\nr1 = r6\nr2 = map[idx:0]\nr3 = 0\ncall bpf_tail_call\n\
             call kfunc {bpf_preempt_enable}\nr0 = 0\nexit",
            "tail_call cannot be used inside bpf_preempt_disable-ed region",
        ),
        (
            "tail_call_rcu",
            "call kfunc {bpf_rcu_read_lock}\nr1 = r6\nr2 = map[idx:0]\nr3 = 0\ncall bpf_tail_call\n\
             call kfunc {bpf_rcu_read_unlock}\nr0 = 0\nexit",
            "tail_call cannot be used inside bpf_rcu_read_lock-ed region",
        ),
        (
            "tail_call_iterator",
            concat!(
                new10!(),
                "r1 = r6\nr2 = map[idx:0]\nr3 = 0\ncall bpf_tail_call\n",
                destroy!(),
                "r0 = 0\nexit"
            ),
            "tail_call would lead to reference leak",
        ),
    ];
    for (name, asm, expect) in cases {
        let asm = format!("r6 = r1\n{asm}");
        let Some(mut coll) = program(name, SchedCls, &asm) else {
            eprintln!("SKIP: no vmlinux BTF");
            return;
        };
        coll.maps = vec![bpflab_vm::MapSpec::new("jmp", bpflab_vm::MapType::ProgArray, 4, 4, 4)];
        let report = verify(&coll, 0, &helpers, &Config::default());
        let got = outcome(&report).unwrap_or_else(|f| panic!("{name}: unsupported: {f}"));
        assert_eq!(got.as_ref().map(|g| g.1.as_str()), Some(*expect), "{name}");
        match kernel_verdict(&coll, 0, &VerdictOptions::default()) {
            Ok(k) => {
                assert!(!k.accepted, "{name}: the kernel accepts");
                assert_eq!(k.error_line.as_deref(), Some(*expect), "{name}: kernel");
            }
            Err(e) => println!("SKIP: {name}: kernel load failed: {e}"),
        }
    }
}
