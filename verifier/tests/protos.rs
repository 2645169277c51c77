//! Calls to kernel helpers the simulator does not implement, checked against their prototypes
//! (bpflab_vm's prototype-only table, `HelperRegistry::proto`): program-type availability, the
//! GPL flag, helpers that may sleep, the arguments and the result, each on a small assembled
//! program compared with the running kernel's verifier (the verdict, and for rejections the
//! kernel's exact last log line).

use bpflab_kernel::verdict::{VerdictOptions, kernel_verdict};
use bpflab_verifier::{Config, ErrorKind, Flags, Verdict, verify};
use bpflab_vm::helpers::HelperRegistry;
use bpflab_vm::{Collection, MapSpec, MapType, ProgType, Program};

/// `BPF_F_SLEEPABLE`.
const SLEEPABLE: u32 = 1 << 4;

/// What a case expects.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// Loaded.
    Accept,
    /// Refused with this exact last log line.
    Reject(&'static str),
}

/// One program and what both verifiers should say.
struct Case {
    name: &'static str,
    prog_type: ProgType,
    asm: &'static str,
    maps: Vec<MapSpec>,
    flags: u32,
    license: &'static str,
    attach: Option<u32>,
    expect: Expect,
}

fn case(name: &'static str, prog_type: ProgType, asm: &'static str, expect: Expect) -> Case {
    Case { name, prog_type, asm, maps: Vec::new(), flags: 0, license: "GPL", attach: None, expect }
}

impl Case {
    fn maps(mut self, maps: Vec<MapSpec>) -> Case {
        self.maps = maps;
        self
    }

    fn flags(mut self, flags: u32) -> Case {
        self.flags = flags;
        self
    }

    fn attach(mut self, attach: u32) -> Case {
        self.attach = Some(attach);
        self
    }

    fn license(mut self, license: &'static str) -> Case {
        self.license = license;
        self
    }

    fn collection(&self) -> Collection {
        let insns = bpflab_vm::asm::assemble(self.asm)
            .unwrap_or_else(|e| panic!("{}: assembly: {e}", self.name));
        let mut p = Program::raw(self.name, insns).with_type(self.prog_type);
        p.flags = self.flags;
        p.license = self.license.to_string();
        p.expected_attach_type = self.attach;
        Collection { maps: self.maps.clone(), ..Collection::single(p) }
    }
}

/// A cgroup storage map (`u64` cgroup inode keys) of `value_size`-byte values.
fn cgroup_storage(map_type: MapType, value_size: u32) -> MapSpec {
    MapSpec::new("cs", map_type, 8, value_size, 0)
}

fn kernel_available() -> bool {
    match bpflab_kernel::probe() {
        Ok(()) => true,
        Err(e) => {
            println!("SKIP: bpf(2) unavailable: {e}");
            false
        }
    }
}

/// Checks every case against the expectation, with bpflab and (when it can load) the kernel.
fn run(cases: &[Case]) {
    let kernel = kernel_available();
    let helpers = HelperRegistry::standard();
    let mut failures = Vec::new();
    for c in cases {
        let coll = c.collection();
        let config = Config { flags: Flags::from_bits(c.flags), ..Config::default() };
        let got = verify(&coll, 0, &helpers, &config).verdict;
        match (&c.expect, &got) {
            (Expect::Accept, Verdict::Accepted) => {}
            (Expect::Reject(m), Verdict::Rejected(e)) if e.message == *m => {
                assert_eq!(e.kind, ErrorKind::classify(m), "{}: class", c.name);
            }
            _ => failures.push(format!("{}: bpflab {got:?}, expected {:?}", c.name, c.expect)),
        }
        if !kernel {
            continue;
        }
        let opts = VerdictOptions { prog_flags: c.flags, ..VerdictOptions::default() };
        let k = kernel_verdict(&coll, 0, &opts).expect("the kernel decides");
        match c.expect {
            Expect::Accept if k.accepted => {}
            Expect::Reject(m) if !k.accepted && k.error_line.as_deref() == Some(m) => {}
            _ => failures.push(format!(
                "{}: kernel accepted={} error {:?}, expected {:?}\n{}",
                c.name, k.accepted, k.error_line, c.expect, k.log
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

use Expect::{Accept, Reject};
use ProgType::{CgroupSkb, CgroupSockAddr, Kprobe, SocketFilter, Syscall, Xdp};

#[test]
fn program_types_and_licenses_of_prototype_only_helpers() {
    run(&[
        case(
            "local_storage_in_xdp",
            Xdp,
            "r1 = map[idx:0] ll\nr2 = 0\ncall 81\nr0 = 2\nexit",
            Reject("program of this type cannot use helper bpf_get_local_storage#81"),
        )
        .maps(vec![cgroup_storage(MapType::CgroupStorage, 8)]),
        case(
            "get_stack_in_socket_filter",
            SocketFilter,
            "r2 = r10\nr2 += -64\nr3 = 64\nr4 = 0\ncall 67\nr0 = 0\nexit",
            Reject("program of this type cannot use helper bpf_get_stack#67"),
        ),
        case(
            "get_stack_not_gpl",
            Kprobe,
            "r2 = r10\nr2 += -64\nr3 = 64\nr4 = 0\ncall 67\nr0 = 0\nexit",
            Reject("cannot call GPL-restricted function from non-GPL compatible program"),
        )
        .license("Proprietary"),
        case("cgroup_id_everywhere", Xdp, "call 80\nr0 = 2\nexit", Accept),
        case("ktime_tai_everywhere", SocketFilter, "call 208\nr0 = 0\nexit", Accept),
    ]);
}

#[test]
fn arguments_and_results_of_prototype_only_helpers() {
    run(&[
        // bpf_get_stack into 64 stack bytes the helper writes (not initialized first).
        case(
            "get_stack_uninit_buffer",
            Kprobe,
            "r2 = r10\nr2 += -64\nr3 = 64\nr4 = 0\ncall 67\nr0 = *(u64 *)(r10 -64)\nr0 = 0\nexit",
            Accept,
        ),
        case(
            "get_stack_buffer_too_big",
            Kprobe,
            "r2 = r10\nr2 += -64\nr3 = 72\nr4 = 0\ncall 67\nr0 = 0\nexit",
            Reject("invalid write to stack R2 off=-64 size=72"),
        ),
        // bpf_get_local_storage never returns NULL: its value is read without a check.
        case(
            "local_storage_deref",
            CgroupSkb,
            "r1 = map[idx:0] ll\nr2 = 0\ncall 81\nr0 = *(u64 *)(r0 +0)\nr0 &= 1\nexit",
            Accept,
        )
        .maps(vec![cgroup_storage(MapType::CgroupStorage, 8)]),
        case(
            "local_storage_past_value",
            CgroupSkb,
            "r1 = map[idx:0] ll\nr2 = 0\ncall 81\nr0 = *(u64 *)(r0 +8)\nr0 &= 1\nexit",
            Reject("R0 min value is outside of the allowed memory range"),
        )
        .maps(vec![cgroup_storage(MapType::CgroupStorage, 8)]),
        case(
            "local_storage_flags",
            CgroupSkb,
            "r1 = map[idx:0] ll\nr2 = 1\ncall 81\nr0 = 1\nexit",
            Reject("get_local_storage() doesn't support non-zero flags"),
        )
        .maps(vec![cgroup_storage(MapType::PercpuCgroupStorage, 8)]),
        case(
            "local_storage_wrong_map",
            CgroupSkb,
            "r1 = map[idx:0] ll\nr2 = 0\ncall 81\nr0 = 1\nexit",
            Reject("cannot pass map_type 1 into func bpf_get_local_storage#81"),
        )
        .maps(vec![MapSpec::new("h", MapType::Hash, 4, 8, 1)]),
    ]);
}

#[test]
fn attach_types_narrow_prototype_only_helpers() {
    use bpflab_vm::ctx::layout::attach as a;
    /// `bpf_bind(ctx, &sockaddr_in on the stack, 16)`.
    const BIND: &str = "r6 = r1\n*(u64 *)(r10 -16) = 0\n*(u64 *)(r10 -8) = 0\nr2 = r10\n\
                        r2 += -16\nr3 = 16\ncall 64\nr0 = 1\nexit";
    run(&[
        case("bind_in_connect4", CgroupSockAddr, BIND, Accept).attach(a::CGROUP_INET4_CONNECT),
        case(
            "bind_in_bind4",
            CgroupSockAddr,
            BIND,
            Reject("program of this type cannot use helper bpf_bind#64"),
        )
        .attach(a::CGROUP_INET4_BIND),
        case("set_retval_in_connect4", CgroupSockAddr, "r1 = 0\ncall 187\nr0 = 1\nexit", Accept)
            .attach(a::CGROUP_INET4_CONNECT),
        case(
            "set_retval_in_recvmsg4",
            CgroupSockAddr,
            "r1 = 0\ncall 187\nr0 = 1\nexit",
            Reject("program of this type cannot use helper bpf_set_retval#187"),
        )
        .attach(a::CGROUP_UDP4_RECVMSG),
    ]);
}

#[test]
fn helpers_that_may_sleep() {
    run(&[
        case(
            "copy_from_user_in_xdp",
            Xdp,
            "r1 = r10\nr1 += -8\nr2 = 8\nr3 = 0\ncall 148\nr0 = 2\nexit",
            Reject("helper call might sleep in a non-sleepable prog"),
        ),
        case(
            "copy_from_user_sleepable_syscall",
            Syscall,
            "r1 = r10\nr1 += -8\nr2 = 8\nr3 = 0\ncall 148\nr0 = 0\nexit",
            Accept,
        )
        .flags(SLEEPABLE),
        case("sys_close_sleepable_syscall", Syscall, "r1 = 0\ncall 168\nr0 = 0\nexit", Accept)
            .flags(SLEEPABLE),
    ]);
}

#[test]
fn unmodelled_argument_types_stay_unsupported() {
    // bpf_get_task_stack's task (ARG_PTR_TO_BTF_ID): a scalar is refused as the kernel does.
    run(&[case(
        "task_stack_of_a_scalar",
        Kprobe,
        "call 35\nr1 = r0\nr2 = r10\nr2 += -64\nr3 = 64\nr4 = 0\ncall 141\nr0 = 0\nexit",
        Reject("R1 type=scalar expected=ptr_, trusted_ptr_, rcu_ptr_"),
    )]);
    // A trusted task pointer, which the kernel takes: bpflab does not know the struct the
    // prototype names, so it does not guess.
    let c = case(
        "task_stack_of_current",
        Kprobe,
        "call 158\nr1 = r0\nr2 = r10\nr2 += -64\nr3 = 64\nr4 = 0\ncall 141\nr0 = 0\nexit",
        Accept,
    );
    let report = verify(&c.collection(), 0, &HelperRegistry::standard(), &Config::default());
    match report.verdict {
        Verdict::Unsupported(u) => {
            assert!(u.feature.contains("kernel pointer argument"), "{u:?}");
            assert_eq!(u.insn, Some(6));
        }
        other => panic!("bpf_get_task_stack of a trusted task: {other:?}"),
    }
    if kernel_available() {
        let k = kernel_verdict(&c.collection(), 0, &VerdictOptions::default()).expect("kernel");
        assert!(k.accepted, "{}", k.log);
    }
    // bpf_kptr_xchg's destination (ARG_KPTR_XCHG_DEST): unsupported by name.
    let c = case(
        "kptr_xchg",
        SocketFilter,
        "r1 = r10\nr1 += -8\nr2 = 0\ncall 194\nr0 = 0\nexit",
        Accept,
    );
    match verify(&c.collection(), 0, &HelperRegistry::standard(), &Config::default()).verdict {
        Verdict::Unsupported(u) => assert!(u.feature.contains("bpf_kptr_xchg"), "{u:?}"),
        other => panic!("bpf_kptr_xchg: {other:?}"),
    }
}
