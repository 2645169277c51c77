//! Kfuncs that acquire and release kernel objects (verifier/src/kfunc.rs): task and cgroup
//! references (`bpf_task_from_pid`, `bpf_task_acquire`, `bpf_cgroup_from_id`, ... and their
//! `*_release`), cpumasks (`bpf_cpumask_create`/`acquire`/`release` and the mask
//! operations), on assembled programs, the fixtures and the kernel's selftests. Each case is
//! compared with the running kernel: verdict and error class, and bpflab's exact message.

use std::path::Path;

use bpflab_kernel::verdict::{VerdictOptions, kernel_verdict};
use bpflab_loader::LoadOptions;
use bpflab_verifier::{Config, ErrorKind, verify};
use bpflab_vm::ProgType;
use bpflab_vm::helpers::HelperRegistry;

mod common {
    pub(crate) mod kfunc;
}
use common::kfunc::{Case, outcome, program};

use ProgType::{Kprobe, SchedCls, Tracepoint, Xdp};

/// `r0 = bpf_task_from_pid(1)`, ref in r6, NULL path exits 0.
macro_rules! task {
    () => {
        "r1 = 1\ncall kfunc {bpf_task_from_pid}\nif r0 != 0 goto got\nr0 = 0\nexit\ngot:\nr6 = r0\n"
    };
}

/// `r0 = bpf_cpumask_create()`, ref in r6, NULL path exits 0.
macro_rules! mask {
    () => {
        "call kfunc {bpf_cpumask_create}\nif r0 != 0 goto got\nr0 = 0\nexit\ngot:\nr6 = r0\n"
    };
}

const CASES: &[Case] = &[
    Case {
        name: "task_from_pid_release",
        ty: SchedCls,
        asm: concat!(task!(), "r1 = r6\ncall kfunc {bpf_task_release}\nr0 = 0\nexit"),
        expect: None,
    },
    Case {
        name: "task_from_pid_leak",
        ty: SchedCls,
        asm: concat!(task!(), "r0 = 0\nexit"),
        expect: Some("BPF_EXIT instruction in main prog would lead to reference leak"),
    },
    Case {
        name: "task_release_unchecked",
        ty: Xdp,
        asm: "r1 = 1\ncall kfunc {bpf_task_from_pid}\nr1 = r0\ncall kfunc {bpf_task_release}\nr0 = 0\nexit",
        expect: Some("Possibly NULL pointer passed to trusted arg0"),
    },
    Case {
        name: "task_use_after_release",
        ty: SchedCls,
        asm: concat!(
            task!(),
            "r1 = r6\ncall kfunc {bpf_task_release}\nr0 = *(u32 *)(r6 + 0)\nr0 = 0\nexit"
        ),
        expect: Some("R6 invalid mem access 'scalar'"),
    },
    Case {
        name: "task_field_load",
        ty: SchedCls,
        asm: concat!(
            task!(),
            "r7 = *(u32 *)(r6 + 0)\nr1 = r6\ncall kfunc {bpf_task_release}\nr0 = 0\nexit"
        ),
        expect: None,
    },
    Case {
        // A referenced pointer is trusted, so never NULL: the second check's NULL branch is
        // dead (reg_not_null), else it would leak the reference.
        name: "task_checked_twice",
        ty: SchedCls,
        asm: concat!(
            task!(),
            "if r6 == 0 goto out2\nr1 = r6\ncall kfunc {bpf_task_release}\nr0 = 0\nexit\n",
            "out2:\nr0 = 0\nexit"
        ),
        expect: None,
    },
    Case {
        name: "task_acquire_twice_release_both",
        ty: SchedCls,
        asm: concat!(
            task!(),
            "r1 = r6\ncall kfunc {bpf_task_acquire}\nif r0 == 0 goto skip\n",
            "r1 = r0\ncall kfunc {bpf_task_release}\nskip:\n",
            "r1 = r6\ncall kfunc {bpf_task_release}\nr0 = 0\nexit"
        ),
        expect: None,
    },
    Case {
        name: "task_acquire_leaks_second",
        ty: SchedCls,
        asm: concat!(
            task!(),
            "r1 = r6\ncall kfunc {bpf_task_acquire}\n",
            "r1 = r6\ncall kfunc {bpf_task_release}\nr0 = 0\nexit"
        ),
        expect: Some("BPF_EXIT instruction in main prog would lead to reference leak"),
    },
    Case {
        name: "task_acquire_null",
        ty: SchedCls,
        asm: "r1 = 0\ncall kfunc {bpf_task_acquire}\nr0 = 0\nexit",
        expect: Some("Possibly NULL pointer passed to trusted arg0"),
    },
    Case {
        name: "cgroup_to_task_release",
        ty: SchedCls,
        asm: concat!(
            "r1 = 1\ncall kfunc {bpf_cgroup_from_id}\nif r0 != 0 goto got\nr0 = 0\nexit\ngot:\n",
            "r1 = r0\ncall kfunc {bpf_task_release}\nr0 = 0\nexit"
        ),
        expect: Some(
            "kernel function bpf_task_release args#0 expected pointer to STRUCT task_struct but R1 has a pointer to STRUCT cgroup",
        ),
    },
    Case {
        name: "cgroup_from_id_release",
        ty: SchedCls,
        asm: concat!(
            "r1 = 1\ncall kfunc {bpf_cgroup_from_id}\nif r0 == 0 goto out\n",
            "r1 = r0\ncall kfunc {bpf_cgroup_acquire}\nif r0 == 0 goto skip\n",
            "r1 = r0\ncall kfunc {bpf_cgroup_release}\nskip:\nr0 = 0\nexit\nout:\nr0 = 0\nexit"
        ),
        expect: Some("BPF_EXIT instruction in main prog would lead to reference leak"),
    },
    Case {
        name: "cgroup_ancestor",
        ty: SchedCls,
        asm: concat!(
            "r1 = 1\ncall kfunc {bpf_cgroup_from_id}\nif r0 != 0 goto got\nr0 = 0\nexit\ngot:\n",
            "r6 = r0\nr1 = r6\nr2 = 0\ncall kfunc {bpf_cgroup_ancestor}\nif r0 == 0 goto skip\n",
            "r1 = r0\ncall kfunc {bpf_cgroup_release}\nskip:\n",
            "r1 = r6\ncall kfunc {bpf_cgroup_release}\nr0 = 0\nexit"
        ),
        expect: None,
    },
    Case {
        name: "task_under_cgroup",
        ty: SchedCls,
        asm: concat!(
            task!(),
            "r1 = 1\ncall kfunc {bpf_cgroup_from_id}\nif r0 == 0 goto out\nr7 = r0\n",
            "r1 = r6\nr2 = r7\ncall kfunc {bpf_task_under_cgroup}\nr8 = r0\n",
            "r1 = r7\ncall kfunc {bpf_cgroup_release}\nout:\n",
            "r1 = r6\ncall kfunc {bpf_task_release}\nr0 = 0\nexit"
        ),
        expect: None,
    },
    Case {
        name: "task_under_null_cgroup",
        ty: SchedCls,
        asm: concat!(
            task!(),
            "r1 = r6\nr2 = 0\ncall kfunc {bpf_task_under_cgroup}\n",
            "r1 = r6\ncall kfunc {bpf_task_release}\nr0 = 0\nexit"
        ),
        expect: Some("Possibly NULL pointer passed to trusted arg1"),
    },
    Case {
        name: "task_get_cgroup1_leak",
        ty: SchedCls,
        asm: concat!(
            task!(),
            "r1 = r6\nr2 = 1\ncall kfunc {bpf_task_get_cgroup1}\n",
            "r1 = r6\ncall kfunc {bpf_task_release}\nr0 = 0\nexit"
        ),
        expect: Some("BPF_EXIT instruction in main prog would lead to reference leak"),
    },
    Case {
        name: "task_release_off",
        ty: SchedCls,
        asm: concat!(task!(), "r1 = r6\nr1 += 8\ncall kfunc {bpf_task_release}\nr0 = 0\nexit"),
        expect: Some(
            "R1 must have zero offset when passed to release func or trusted arg to kfunc",
        ),
    },
    Case {
        name: "task_from_pid_kprobe",
        ty: Kprobe,
        asm: concat!(task!(), "r1 = r6\ncall kfunc {bpf_task_release}\nr0 = 0\nexit"),
        expect: Some("calling kernel function bpf_task_from_pid is not allowed"),
    },
    Case {
        name: "cpumask_in_xdp",
        ty: Xdp,
        asm: concat!(mask!(), "r1 = r6\ncall kfunc {bpf_cpumask_release}\nr0 = 0\nexit"),
        expect: Some("calling kernel function bpf_cpumask_create is not allowed"),
    },
    Case {
        name: "cpumask_ops",
        ty: Tracepoint,
        asm: concat!(
            mask!(),
            "r1 = 0\nr2 = r6\ncall kfunc {bpf_cpumask_set_cpu}\n",
            "r1 = 0\nr2 = r6\ncall kfunc {bpf_cpumask_test_cpu}\nr7 = r0\n",
            "r1 = r6\ncall kfunc {bpf_cpumask_weight}\nr7 += r0\n",
            "r1 = r6\ncall kfunc {bpf_cpumask_acquire}\nr8 = r0\n",
            "r1 = r6\ncall kfunc {bpf_cpumask_release}\n",
            "r1 = r8\nr2 = r8\nr3 = r8\ncall kfunc {bpf_cpumask_and}\n",
            "r1 = r8\ncall kfunc {bpf_cpumask_release}\nr0 = 0\nexit"
        ),
        expect: None,
    },
    Case {
        name: "cpumask_test_unchecked",
        ty: Tracepoint,
        asm: concat!(
            "call kfunc {bpf_cpumask_create}\nr6 = r0\nr1 = 0\nr2 = r6\n",
            "call kfunc {bpf_cpumask_test_cpu}\nr0 = 0\nexit"
        ),
        expect: Some("Possibly NULL pointer passed to trusted arg1"),
    },
    Case {
        name: "cpumask_acquire_unchecked",
        ty: Tracepoint,
        asm: concat!(
            "call kfunc {bpf_cpumask_create}\nr6 = r0\nr1 = r6\n",
            "call kfunc {bpf_cpumask_acquire}\nr0 = 0\nexit"
        ),
        expect: Some("Possibly NULL pointer passed to trusted arg0"),
    },
    Case {
        name: "current_task_release",
        ty: Tracepoint,
        asm: "call 158\nr1 = r0\ncall kfunc {bpf_task_release}\nr0 = 0\nexit",
        expect: Some("release kernel function bpf_task_release expects refcounted PTR_TO_BTF_ID"),
    },
    Case {
        name: "current_task_acquire",
        ty: Tracepoint,
        asm: concat!(
            "call 158\nr1 = r0\ncall kfunc {bpf_task_acquire}\nif r0 == 0 goto out\n",
            "r1 = r0\ncall kfunc {bpf_task_release}\nout:\nr0 = 0\nexit"
        ),
        expect: None,
    },
];

#[test]
fn reference_kfunc_cases_match_the_kernel() {
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
                let k = kernel_verdict(&coll, 0, &VerdictOptions::default());
                let k = k.map(|k| (k.accepted, k.error_line));
                failures.push(format!("{}: unsupported: {f} (kernel {k:?})", case.name));
                continue;
            }
        };
        if got.as_ref().map(|g| g.1.as_str()) != case.expect {
            failures.push(format!("{}: bpflab {:?}, expected {:?}", case.name, got, case.expect));
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
                    failures.push(format!(
                        "{}: kernel says {:?}, bpflab {:?}",
                        case.name, k.error_line, got
                    ));
                }
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

/// Fixture and selftest programs calling reference kfuncs: (object path from the repository
/// root, programs).
const OBJECTS: &[(&str, &[&str])] = &[
    ("programs/tests/kfuncs.bpf.o", &["sys_cpumask", "sys_task"]),
    ("programs/corpus/syscall_kfuncs.bpf.o", &["task_and_mask"]),
    (
        "verifier/corpus/selftests/obj/verifier_kfunc_prog_types.bpf.o",
        &[
            "task_kfunc_raw_tp",
            "cgrp_kfunc_raw_tp",
            "cpumask_kfunc_raw_tp",
            "task_kfunc_syscall",
            "cgrp_kfunc_syscall",
            "cpumask_kfunc_syscall",
            "task_kfunc_tracepoint",
            "cgrp_kfunc_tracepoint",
            "cpumask_kfunc_tracepoint",
            "task_kfunc_perf_event",
            "cgrp_kfunc_perf_event",
            "cpumask_kfunc_perf_event",
        ],
    ),
    // bpf_sk_release of the BTF tcp_sock bpf_skc_to_tcp_sock gives (ARG_PTR_TO_BTF_ID_SOCK_COMMON).
    ("verifier/corpus/selftests/obj/verifier_ref_tracking.bpf.o", &["sk_release_btf_tcp_sock"]),
    (
        "verifier/corpus/selftests/obj/task_kfunc_failure.bpf.o",
        &["task_kfunc_acquire_unsafe_kretprobe", "task_kfunc_acquire_unsafe_kretprobe_rcu"],
    ),
    (
        "verifier/corpus/selftests/obj/cgrp_kfunc_failure.bpf.o",
        &["cgrp_kfunc_acquire_unsafe_kretprobe"],
    ),
];

#[test]
fn reference_kfunc_objects_agree_with_the_kernel() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let helpers = HelperRegistry::standard();
    let config = Config::default();
    let mut failures = Vec::new();
    let (mut agreed, mut accepted) = (0, 0);
    for (object, programs) in OBJECTS {
        let path = root.join(object);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
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
            if k.accepted != got.is_none()
                || (!k.accepted
                    && (kclass != bclass
                        || k.error_line.as_deref() != got.as_ref().map(|g| g.1.as_str())))
            {
                failures.push(format!(
                    "{object}/{name}: kernel {} {:?}, bpflab {got:?}",
                    k.accepted, k.error_line
                ));
                continue;
            }
            if let (true, Some(kp)) = (k.accepted, k.processed_insns) {
                accepted += 1;
                let ours = report.stats.processed_insns;
                println!("{name}: processed {ours} insns, the kernel {kp}");
                if ours.abs_diff(kp) > 4 + kp / 10 {
                    failures
                        .push(format!("{object}/{name}: processed {ours} insns, the kernel {kp}"));
                    continue;
                }
            }
            agreed += 1;
        }
    }
    println!("{agreed} programs agree with the kernel ({accepted} accepted by both)");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(agreed >= 19, "only {agreed} programs compared");
}
