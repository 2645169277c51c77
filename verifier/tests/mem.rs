//! Memory access rules of bpflab's verifier (verifier/src/mem.rs), each on a small assembled
//! program compared with the running kernel's verifier: the verdict, and for rejections the
//! kernel's exact error line (bpflab's message must be the same text). Unprivileged cases
//! cannot be loaded here (the kernel refuses unprivileged BPF), so they check bpflab's text
//! against the kernel source's wording only.

use bpflab_kernel::verdict::{VerdictOptions, kernel_verdict};
use bpflab_verifier::{Config, ErrorKind, Flags, Verdict, verify};
use bpflab_vm::helpers::HelperRegistry;
use bpflab_vm::spec::DataSection;
use bpflab_vm::{Collection, MapSpec, MapType, ProgType, Program};

/// `BPF_F_RDONLY_PROG`.
const RDONLY_PROG: u32 = 1 << 7;
/// `BPF_F_STRICT_ALIGNMENT`.
const STRICT: u32 = 1;

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
    btf: Option<Vec<u8>>,
    flags: u32,
    expect: Expect,
}

fn case(name: &'static str, prog_type: ProgType, asm: &'static str, expect: Expect) -> Case {
    Case { name, prog_type, asm, maps: Vec::new(), btf: None, flags: 0, expect }
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

    fn collection(&self) -> Collection {
        let insns = bpflab_vm::asm::assemble(self.asm)
            .unwrap_or_else(|e| panic!("{}: assembly: {e}", self.name));
        let mut p = Program::raw(self.name, insns).with_type(self.prog_type);
        p.flags = self.flags;
        Collection { maps: self.maps.clone(), btf: self.btf.clone(), ..Collection::single(p) }
    }
}

/// An array map of one `value_size`-byte value.
fn array(value_size: u32) -> MapSpec {
    MapSpec::new("arr", MapType::Array, 4, value_size, 1)
}

/// A frozen read-only array (`.rodata`) holding `bytes`.
fn rodata(bytes: &[u8]) -> MapSpec {
    let mut m = MapSpec::new("ro", MapType::Array, 4, bytes.len() as u32, 1);
    m.flags = RDONLY_PROG;
    m.data = Some((DataSection::Rodata, bytes.to_vec()));
    m
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

/// bpflab's verdict for `c` as a privileged (or not) load.
fn ours(c: &Case, privileged: bool) -> Verdict {
    let coll = c.collection();
    let config = Config { privileged, flags: Flags::from_bits(c.flags), ..Config::default() };
    verify(&coll, 0, &HelperRegistry::standard(), &config).verdict
}

/// Checks every case against the expectation, with bpflab and (when it can load) the kernel.
fn run(cases: &[Case]) {
    let kernel = kernel_available();
    let mut failures = Vec::new();
    for c in cases {
        let got = ours(c, true);
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
        let k = kernel_verdict(&c.collection(), 0, &opts).expect("the kernel decides");
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

/// Checks bpflab's unprivileged verdicts (the kernel's wording, from its source).
fn run_unpriv(cases: &[Case]) {
    let mut failures = Vec::new();
    for c in cases {
        let got = ours(c, false);
        match (&c.expect, &got) {
            (Expect::Accept, Verdict::Accepted) => {}
            (Expect::Reject(m), Verdict::Rejected(e)) if e.message == *m => {}
            _ => failures.push(format!("{}: bpflab {got:?}, expected {:?}", c.name, c.expect)),
        }
    }
    assert!(failures.is_empty(), "{} cases differ:\n{}", failures.len(), failures.join("\n"));
}

use Expect::{Accept, Reject};
use ProgType::{CgroupSkb, SchedCls, SocketFilter, Xdp};

#[test]
fn stack_bounds_and_alignment() {
    run(&[
        case(
            "stack_write_read",
            SocketFilter,
            "r1 = 1\n*(u64 *)(r10 -8) = r1\nr0 = *(u64 *)(r10 -8)\nexit",
            Accept,
        ),
        case(
            "stack_write_past_512",
            SocketFilter,
            "*(u64 *)(r10 -520) = 0\nr0 = 0\nexit",
            Reject("invalid write to stack R10 off=-520 size=8"),
        ),
        case(
            "stack_write_at_fp",
            SocketFilter,
            "*(u64 *)(r10 +0) = 0\nr0 = 0\nexit",
            Reject("invalid write to stack R10 off=0 size=8"),
        ),
        case(
            "stack_read_straddles_fp",
            SocketFilter,
            "*(u32 *)(r10 -4) = 0\nr0 = *(u64 *)(r10 -4)\nexit",
            Reject("misaligned stack access off 0+0+-4 size 8"),
        ),
        case(
            "stack_misaligned_write",
            SocketFilter,
            "*(u32 *)(r10 -6) = 0\nr0 = 0\nexit",
            Reject("misaligned stack access off 0+0+-6 size 4"),
        ),
        case(
            "stack_via_offset_pointer",
            SocketFilter,
            "r2 = r10\nr2 += -16\n*(u64 *)(r2 +8) = 0\nr0 = *(u64 *)(r10 -8)\nexit",
            Accept,
        ),
        case(
            "stack_offset_pointer_out",
            SocketFilter,
            "r2 = r10\nr2 += -8\n*(u64 *)(r2 +8) = 0\nr0 = 0\nexit",
            Reject("invalid write to stack R2 off=0 size=8"),
        ),
        case(
            "stack_variable_offset_write_read",
            SocketFilter,
            "*(u64 *)(r10 -16) = 0\n*(u64 *)(r10 -8) = 0\nr2 = *(u32 *)(r1 +0)\nr2 &= 8\n\
             r3 = r10\nr3 += -16\nr3 += r2\n*(u64 *)(r3 +0) = 1\nr0 = *(u64 *)(r3 +0)\nexit",
            Accept,
        ),
        case(
            "stack_variable_offset_unbounded",
            SocketFilter,
            "r2 = *(u32 *)(r1 +0)\nr3 = r10\nr3 += -16\nr3 += r2\n*(u8 *)(r3 +0) = 1\nr0 = 0\nexit",
            Reject("invalid unbounded variable-offset write to stack R3"),
        ),
        case(
            "stack_variable_offset_past_fp",
            SocketFilter,
            "r2 = *(u32 *)(r1 +0)\nr2 &= 0xff\nr3 = r10\nr3 += -16\nr3 += r2\n*(u8 *)(r3 +0) = 1\n\
             r0 = 0\nexit",
            Reject("invalid variable-offset write to stack R3 var_off=(0x0; 0xff) off=-16 size=1"),
        ),
    ]);
}

#[test]
fn uninitialised_stack_reads() {
    // Privileged loads (CAP_PERFMON) may read uninitialised stack: env->allow_uninit_stack.
    run(&[
        case("uninit_read_priv", SocketFilter, "r0 = *(u64 *)(r10 -8)\nr0 = 0\nexit", Accept),
        case(
            "uninit_partial_read_priv",
            SocketFilter,
            "*(u32 *)(r10 -8) = 0\nr0 = *(u64 *)(r10 -8)\nexit",
            Accept,
        ),
    ]);
    run_unpriv(&[
        case(
            "uninit_read_unpriv_unallocated",
            SocketFilter,
            "r0 = *(u64 *)(r10 -8)\nr0 = 0\nexit",
            Reject("invalid read from stack R10 off=-8 size=8"),
        ),
        case(
            "uninit_read_unpriv",
            SocketFilter,
            "*(u64 *)(r10 -16) = 0\nr0 = *(u64 *)(r10 -8)\nr0 = 0\nexit",
            Reject("invalid read from stack off -8+0 size 8"),
        ),
        case(
            "uninit_partial_read_unpriv",
            SocketFilter,
            "*(u32 *)(r10 -8) = 0\nr0 = *(u64 *)(r10 -8)\nexit",
            Reject("invalid read from stack off -8+4 size 8"),
        ),
        case(
            "init_read_unpriv",
            SocketFilter,
            "*(u32 *)(r10 -8) = 0\n*(u32 *)(r10 -4) = 0\nr0 = *(u64 *)(r10 -8)\nexit",
            Accept,
        ),
    ]);
}

#[test]
fn spills_and_fills() {
    run(&[
        case(
            "spill_fill_ctx_then_use",
            SocketFilter,
            "*(u64 *)(r10 -8) = r1\nr2 = *(u64 *)(r10 -8)\nr0 = *(u32 *)(r2 +0)\nexit",
            Accept,
        ),
        case(
            "narrow_fill_of_pointer",
            SocketFilter,
            "*(u64 *)(r10 -8) = r1\nr2 = *(u32 *)(r10 -8)\nr0 = 0\nexit",
            Reject("invalid size of register fill"),
        ),
        case(
            "narrow_spill_of_pointer",
            SocketFilter,
            "*(u32 *)(r10 -8) = r1\nr0 = 0\nexit",
            Reject("invalid size of register spill"),
        ),
        case(
            "spilled_pointer_overwritten_is_scalar",
            SocketFilter,
            "*(u64 *)(r10 -8) = r1\n*(u32 *)(r10 -8) = 0\nr2 = *(u64 *)(r10 -8)\n\
             r0 = *(u32 *)(r2 +0)\nexit",
            Reject("R2 invalid mem access 'scalar'"),
        ),
        case(
            "const_spill_fill_as_index",
            SocketFilter,
            "*(u64 *)(r10 -8) = 4\nr2 = *(u64 *)(r10 -8)\nr3 = map[idx:0][0]+0 ll\nr3 += r2\n\
             r0 = *(u32 *)(r3 +0)\nexit",
            Accept,
        )
        .maps(vec![array(8)]),
        case(
            "const_spill_fill_index_out",
            SocketFilter,
            "*(u64 *)(r10 -8) = 8\nr2 = *(u64 *)(r10 -8)\nr3 = map[idx:0][0]+0 ll\nr3 += r2\n\
             r0 = *(u32 *)(r3 +0)\nexit",
            Reject("R3 min value is outside of the allowed memory range"),
        )
        .maps(vec![array(8)]),
        case(
            "narrow_const_spill_fill",
            SocketFilter,
            "r1 = 4\n*(u32 *)(r10 -8) = r1\nr2 = *(u32 *)(r10 -8)\nr3 = map[idx:0][0]+0 ll\n\
             r3 += r2\nr0 = *(u32 *)(r3 +0)\nexit",
            Accept,
        )
        .maps(vec![array(8)]),
        case(
            "fill_of_unknown_scalar_keeps_bounds",
            SocketFilter,
            "r2 = *(u32 *)(r1 +0)\nr2 &= 3\n*(u64 *)(r10 -8) = r2\nr4 = *(u64 *)(r10 -8)\n\
             r3 = map[idx:0][0]+0 ll\nr3 += r4\nr0 = *(u32 *)(r3 +0)\nexit",
            Accept,
        )
        .maps(vec![array(8)]),
        // A 4-byte zero at fp-8 is a spilled constant; the store at fp-4 scrubs that spill to
        // misc bytes, so the 8-byte fill is an unknown scalar.
        case(
            "narrow_zero_spills_then_fill_is_unknown",
            SocketFilter,
            "*(u32 *)(r10 -8) = 0\n*(u32 *)(r10 -4) = 0\nr2 = *(u64 *)(r10 -8)\n\
             r3 = map[idx:0][0]+0 ll\nr3 += r2\nr0 = *(u64 *)(r3 +0)\nexit",
            Reject("math between map_value pointer and register with unbounded min value is not allowed"),
        )
        .maps(vec![array(8)]),
    ]);
    run_unpriv(&[case(
        "corrupt_spilled_pointer_unpriv",
        SocketFilter,
        "*(u64 *)(r10 -8) = r1\n*(u32 *)(r10 -8) = 0\nr0 = 0\nexit",
        Reject("attempt to corrupt spilled pointer on stack"),
    )]);
}

#[test]
fn map_values() {
    run(&[
        case(
            "map_value_const_ok",
            SocketFilter,
            "r1 = map[idx:0][0]+0 ll\nr0 = *(u64 *)(r1 +0)\nexit",
            Accept,
        )
        .maps(vec![array(8)]),
        case(
            "map_value_const_past_end",
            SocketFilter,
            "r1 = map[idx:0][0]+0 ll\nr0 = *(u32 *)(r1 +6)\nexit",
            Reject("R1 min value is outside of the allowed memory range"),
        )
        .maps(vec![array(8)]),
        case(
            "map_value_negative_off",
            SocketFilter,
            "r1 = map[idx:0][0]+0 ll\nr0 = *(u8 *)(r1 -1)\nexit",
            Reject("R1 min value is outside of the allowed memory range"),
        )
        .maps(vec![array(8)]),
        case(
            "map_value_var_bounded",
            SocketFilter,
            "r2 = *(u32 *)(r1 +0)\nr2 &= 3\nr3 = map[idx:0][0]+0 ll\nr3 += r2\nr0 = *(u32 *)(r3 +0)\nexit",
            Accept,
        )
        .maps(vec![array(8)]),
        case(
            "map_value_var_max_out",
            SocketFilter,
            "r2 = *(u32 *)(r1 +0)\nr2 &= 7\nr3 = map[idx:0][0]+0 ll\nr3 += r2\nr0 = *(u32 *)(r3 +0)\nexit",
            Reject("R3 max value is outside of the allowed memory range"),
        )
        .maps(vec![array(8)]),
        case(
            "map_value_var_unbounded",
            SocketFilter,
            "r2 = *(u32 *)(r1 +0)\nr3 = map[idx:0][0]+0 ll\nr3 += r2\nr0 = *(u8 *)(r3 +0)\nexit",
            Reject("R3 unbounded memory access, make sure to bounds check any such access"),
        )
        .maps(vec![array(8)]),
        case(
            "map_value_var_negative",
            SocketFilter,
            "r2 = *(u32 *)(r1 +0)\nr2 &= 3\nr2 -= 2\nr3 = map[idx:0][0]+0 ll\nr3 += r2\n\
             r0 = *(u8 *)(r3 +0)\nexit",
            Reject("R3 min value is negative, either use unsigned index or do a if (index >=0) check."),
        )
        .maps(vec![array(8)]),
        case(
            "map_value_write_ok",
            SocketFilter,
            "r1 = map[idx:0][0]+0 ll\n*(u32 *)(r1 +4) = 7\nr0 = 0\nexit",
            Accept,
        )
        .maps(vec![array(8)]),
        case(
            "rodata_write_forbidden",
            SocketFilter,
            "r1 = map[idx:0][0]+0 ll\n*(u32 *)(r1 +0) = 7\nr0 = 0\nexit",
            Reject("write into map forbidden, value_size=8 off=0 size=4"),
        )
        .maps(vec![rodata(&[1, 0, 0, 0, 2, 0, 0, 0])]),
        // A frozen read-only value is known: 4 at offset 4 makes the index in bounds, and the
        // verifier follows the constant (the other branch is dead).
        case(
            "rodata_read_is_constant",
            SocketFilter,
            "r1 = map[idx:0][0]+0 ll\nr2 = *(u32 *)(r1 +4)\nif r2 == 4 goto +1\n\
             r0 = *(u64 *)(r10 -600)\nr0 = 0\nexit",
            Accept,
        )
        .maps(vec![rodata(&[1, 0, 0, 0, 4, 0, 0, 0])]),
        case(
            "map_value_leak_priv_ok",
            SocketFilter,
            "r2 = map[idx:0][0]+0 ll\n*(u64 *)(r2 +0) = r1\nr0 = 0\nexit",
            Accept,
        )
        .maps(vec![array(8)]),
    ]);
    run_unpriv(&[case(
        "map_value_leak_unpriv",
        SocketFilter,
        "r2 = map[idx:0][0]+0 ll\n*(u64 *)(r2 +0) = r1\nr0 = 0\nexit",
        Reject("R1 leaks addr into map"),
    )
    .maps(vec![array(8)])]);
}

#[test]
fn packets() {
    run(&[
        case(
            "packet_checked",
            SchedCls,
            "r2 = *(u32 *)(r1 +76)\nr3 = *(u32 *)(r1 +80)\nr0 = r2\nr0 += 8\n\
             if r0 > r3 goto +2\nr0 = *(u8 *)(r2 +7)\n*(u8 *)(r2 +0) = 1\nr0 = 0\nexit",
            Accept,
        ),
        case(
            "packet_unchecked",
            SchedCls,
            "r2 = *(u32 *)(r1 +76)\nr0 = *(u8 *)(r2 +0)\nr0 = 0\nexit",
            Reject("R2 offset is outside of the packet"),
        ),
        case(
            "packet_past_check",
            SchedCls,
            "r2 = *(u32 *)(r1 +76)\nr3 = *(u32 *)(r1 +80)\nr0 = r2\nr0 += 8\n\
             if r0 > r3 goto +1\nr0 = *(u32 *)(r2 +6)\nr0 = 0\nexit",
            Reject("R2 offset is outside of the packet"),
        ),
        case(
            "packet_write_cgroup_skb",
            CgroupSkb,
            "r2 = *(u32 *)(r1 +76)\nr3 = *(u32 *)(r1 +80)\nr0 = r2\nr0 += 8\n\
             if r0 > r3 goto +1\n*(u8 *)(r2 +0) = 1\nr0 = 1\nexit",
            Reject("cannot write into packet"),
        ),
        case(
            "xdp_packet_checked",
            Xdp,
            "r2 = *(u32 *)(r1 +0)\nr3 = *(u32 *)(r1 +4)\nr0 = r2\nr0 += 14\n\
             if r0 > r3 goto +1\nr0 = *(u16 *)(r2 +12)\nr0 = 2\nexit",
            Accept,
        ),
        case(
            "packet_misaligned_strict",
            SchedCls,
            "r2 = *(u32 *)(r1 +76)\nr3 = *(u32 *)(r1 +80)\nr0 = r2\nr0 += 8\n\
             if r0 > r3 goto +1\nr0 = *(u32 *)(r2 +1)\nr0 = 0\nexit",
            Reject("misaligned packet access off 2+0+0+1 size 4"),
        )
        .flags(STRICT),
        case(
            "packet_ip_aligned_strict",
            SchedCls,
            "r2 = *(u32 *)(r1 +76)\nr3 = *(u32 *)(r1 +80)\nr0 = r2\nr0 += 8\n\
             if r0 > r3 goto +1\nr0 = *(u32 *)(r2 +2)\nr0 = 0\nexit",
            Accept,
        )
        .flags(STRICT),
        case(
            "packet_end_deref",
            SchedCls,
            "r3 = *(u32 *)(r1 +80)\nr0 = *(u8 *)(r3 +0)\nexit",
            Reject("R3 invalid mem access 'pkt_end'"),
        ),
    ]);
}

#[test]
fn context() {
    run(&[
        case("ctx_read_len", SocketFilter, "r0 = *(u32 *)(r1 +0)\nexit", Accept),
        case(
            "ctx_write_len",
            SocketFilter,
            "*(u32 *)(r1 +0) = 1\nr0 = 0\nexit",
            Reject("invalid bpf_context access off=0 size=4"),
        ),
        case("ctx_write_mark_tc", SchedCls, "r2 = 7\n*(u32 *)(r1 +8) = r2\nr0 = 0\nexit", Accept),
        case(
            "ctx_read_misaligned",
            SocketFilter,
            "r0 = *(u32 *)(r1 +1)\nexit",
            Reject("invalid bpf_context access off=1 size=4"),
        ),
        case(
            "ctx_read_past_end",
            SocketFilter,
            "r0 = *(u32 *)(r1 +4096)\nexit",
            Reject("invalid bpf_context access off=4096 size=4"),
        ),
        case(
            "ctx_modified_pointer",
            SocketFilter,
            "r1 += 4\nr0 = *(u32 *)(r1 +0)\nexit",
            Reject("dereference of modified ctx ptr R1 off=4 disallowed"),
        ),
        case(
            "ctx_data_in_socket_filter",
            SocketFilter,
            "r0 = *(u32 *)(r1 +76)\nexit",
            Reject("invalid bpf_context access off=76 size=4"),
        ),
    ]);
    run_unpriv(&[case(
        "ctx_pointer_store_unpriv",
        SocketFilter,
        "*(u32 *)(r1 +48) = r1\nr0 = 0\nexit",
        Reject("R1 leaks addr into ctx"),
    )]);
}

#[test]
fn atomics() {
    run(&[
        case(
            "atomic_add_stack",
            SocketFilter,
            "*(u64 *)(r10 -8) = 0\nr1 = 1\nlock *(u64 *)(r10 -8) += r1\nr0 = *(u64 *)(r10 -8)\nexit",
            Accept,
        ),
        case(
            "atomic_fetch_add_map",
            SocketFilter,
            "r2 = map[idx:0][0]+0 ll\nr1 = 1\nr1 = atomic64_fetch_add((u64 *)(r2 +0), r1)\n\
             r0 = r1\nexit",
            Accept,
        )
        .maps(vec![array(8)]),
        case(
            "atomic_cmpxchg_map",
            SocketFilter,
            "r2 = map[idx:0][0]+0 ll\nr0 = 0\nr1 = 1\nr0 = atomic_cmpxchg((u32 *)(r2 +4), r0, r1)\n\
             exit",
            Accept,
        )
        .maps(vec![array(8)]),
        case(
            "atomic_into_ctx",
            SchedCls,
            "r2 = 1\nlock *(u32 *)(r1 +8) += r2\nr0 = 0\nexit",
            Reject("BPF_ATOMIC stores into R1 ctx is not allowed"),
        ),
        case(
            "atomic_misaligned_map",
            SocketFilter,
            "r2 = map[idx:0][0]+0 ll\nr1 = 1\nlock *(u32 *)(r2 +2) += r1\nr0 = 0\nexit",
            Reject("misaligned value access off 0+0+2 size 4"),
        )
        .maps(vec![array(8)]),
        case(
            "atomic_uninit_stack_priv",
            SocketFilter,
            "r1 = 1\nlock *(u64 *)(r10 -8) += r1\nr0 = 0\nexit",
            Accept,
        ),
        case(
            "atomic_on_spilled_pointer",
            SocketFilter,
            "*(u64 *)(r10 -8) = r1\nr1 = 1\nlock *(u64 *)(r10 -8) += r1\nr0 = 0\nexit",
            Accept,
        ),
        case(
            "atomic_rodata",
            SocketFilter,
            "r2 = map[idx:0][0]+0 ll\nr1 = 1\nlock *(u32 *)(r2 +0) += r1\nr0 = 0\nexit",
            Reject("write into map forbidden, value_size=8 off=0 size=4"),
        )
        .maps(vec![rodata(&[0; 8])]),
    ]);
    run_unpriv(&[
        case(
            "atomic_leaks_spilled_pointer_unpriv",
            SocketFilter,
            "*(u64 *)(r10 -8) = r1\nr1 = 1\nlock *(u64 *)(r10 -8) += r1\nr0 = 0\nexit",
            Reject("leaking pointer from stack off -8"),
        ),
        case(
            "atomic_pointer_operand_unpriv",
            SocketFilter,
            "*(u64 *)(r10 -8) = 0\nlock *(u64 *)(r10 -8) += r1\nr0 = 0\nexit",
            Reject("R1 leaks addr into mem"),
        ),
    ]);
}

#[test]
fn ld_abs() {
    run(&[
        case(
            "ld_abs_ok",
            SocketFilter,
            "r6 = r1\nr0 = *(u8 *)skb[0]\nr0 = *(u16 *)skb[r0 + 2]\nexit",
            Accept,
        ),
        case(
            "ld_abs_clobbers_r1",
            SocketFilter,
            "r6 = r1\nr0 = *(u8 *)skb[0]\nr0 = r1\nexit",
            Reject("R1 !read_ok"),
        ),
        case(
            "ld_abs_r6_not_ctx",
            SocketFilter,
            "r6 = 0\nr0 = *(u8 *)skb[0]\nexit",
            Reject("at the time of BPF_LD_ABS|IND R6 != pointer to skb"),
        ),
        case(
            "ld_abs_xdp",
            Xdp,
            "r6 = r1\nr0 = *(u8 *)skb[0]\nexit",
            Reject("BPF_LD_[ABS|IND] instructions not allowed for this program type"),
        ),
    ]);
}

/// A hash map with 8-byte keys and values.
fn hash8() -> MapSpec {
    MapSpec::new("h", MapType::Hash, 8, 8, 4)
}

/// A 4 KiB ring buffer.
fn ringbuf() -> MapSpec {
    MapSpec::new("rb", MapType::Ringbuf, 0, 0, 4096)
}

#[test]
fn ringbuf_records() {
    let reserve = |body: &'static str| -> &'static str {
        Box::leak(
            format!(
                "r1 = map[idx:0] ll\nr2 = 16\nr3 = 0\ncall bpf_ringbuf_reserve\n\
                 if r0 == 0 goto +5\n{body}\nr1 = r0\nr2 = 0\ncall bpf_ringbuf_submit\nr0 = 0\nexit"
            )
            .into_boxed_str(),
        )
    };
    run(&[
        case("ringbuf_in_bounds", SocketFilter, reserve("*(u64 *)(r0 +8) = 1"), Accept)
            .maps(vec![ringbuf()]),
        case(
            "ringbuf_past_end",
            SocketFilter,
            reserve("*(u64 *)(r0 +12) = 1"),
            Reject("R0 min value is outside of the allowed memory range"),
        )
        .maps(vec![ringbuf()]),
        case(
            "ringbuf_read_before_start",
            SocketFilter,
            reserve("r4 = *(u8 *)(r0 -1)"),
            Reject("R0 min value is outside of the allowed memory range"),
        )
        .maps(vec![ringbuf()]),
        case(
            "ringbuf_unchecked",
            SocketFilter,
            "r1 = map[idx:0] ll\nr2 = 16\nr3 = 0\ncall bpf_ringbuf_reserve\n*(u64 *)(r0 +0) = 1\n\
             r0 = 0\nexit",
            Reject("R0 invalid mem access 'ringbuf_mem_or_null'"),
        )
        .maps(vec![ringbuf()]),
    ]);
}

#[test]
fn helper_memory_arguments() {
    use ProgType::Kprobe;
    run(&[
        case(
            "helper_key_uninit_priv",
            SocketFilter,
            "r1 = map[idx:0] ll\nr2 = r10\nr2 += -8\ncall bpf_map_lookup_elem\nr0 = 0\nexit",
            Accept,
        )
        .maps(vec![hash8()]),
        case(
            "helper_key_past_fp",
            SocketFilter,
            "r1 = map[idx:0] ll\nr2 = r10\nr2 += -4\ncall bpf_map_lookup_elem\nr0 = 0\nexit",
            Reject("invalid read from stack R2 off=-4 size=8"),
        )
        .maps(vec![hash8()]),
        case(
            "helper_key_past_512",
            SocketFilter,
            "r1 = map[idx:0] ll\nr2 = r10\nr2 += -520\ncall bpf_map_lookup_elem\nr0 = 0\nexit",
            Reject("invalid read from stack R2 off=-520 size=8"),
        )
        .maps(vec![hash8()]),
        case(
            "probe_read_var_size_ok",
            Kprobe,
            "call bpf_get_prandom_u32\nr2 = r0\nr2 &= 15\nr1 = r10\nr1 += -16\nr3 = 0\n\
             call bpf_probe_read_kernel\nr0 = 0\nexit",
            Accept,
        ),
        case(
            "probe_read_var_size_too_big",
            Kprobe,
            "call bpf_get_prandom_u32\nr2 = r0\nr2 &= 31\nr1 = r10\nr1 += -16\nr3 = 0\n\
             call bpf_probe_read_kernel\nr0 = 0\nexit",
            Reject("invalid write to stack R1 off=-16 size=31"),
        ),
        case(
            "probe_read_unbounded_size",
            Kprobe,
            "call bpf_get_prandom_u32\nw2 = w0\nr1 = r10\nr1 += -16\nr3 = 0\n\
             call bpf_probe_read_kernel\nr0 = 0\nexit",
            Reject("R2 unbounded memory access, use 'var &= const' or 'if (var < const)'"),
        ),
        case(
            "probe_read_negative_size",
            Kprobe,
            "call bpf_get_prandom_u32\nr2 = r0\nr2 &= 15\nr2 -= 1\nr1 = r10\nr1 += -16\nr3 = 0\n\
             call bpf_probe_read_kernel\nr0 = 0\nexit",
            Reject("R2 min value is negative, either use unsigned or 'var &= const'"),
        ),
        case(
            "zero_sized_buffer",
            Kprobe,
            "r1 = r10\nr1 += -16\nr2 = 0\ncall bpf_get_current_comm\nr0 = 0\nexit",
            Reject("R2 invalid zero-sized read: u64=[0,0]"),
        ),
        case(
            "helper_write_past_map_value",
            Kprobe,
            "r1 = map[idx:0][0]+0 ll\nr2 = 16\nr3 = 0\ncall bpf_probe_read_kernel\nr0 = 0\nexit",
            Reject("R1 min value is outside of the allowed memory range"),
        )
        .maps(vec![array(8)]),
        case(
            "helper_write_rodata",
            Kprobe,
            "r1 = map[idx:0][0]+0 ll\nr2 = 4\nr3 = 0\ncall bpf_probe_read_kernel\nr0 = 0\nexit",
            Reject("write into map forbidden, value_size=8 off=0 size=4"),
        )
        .maps(vec![rodata(&[0; 8])]),
        case(
            "helper_reads_rodata",
            SocketFilter,
            "r1 = map[idx:1] ll\nr2 = map[idx:0][0]+0 ll\ncall bpf_map_lookup_elem\nr0 = 0\nexit",
            Accept,
        )
        .maps(vec![rodata(&[0; 8]), hash8()]),
        case(
            "helper_fills_stack_then_read",
            Kprobe,
            "r1 = r10\nr1 += -16\nr2 = 16\nr3 = 0\ncall bpf_probe_read_kernel\n\
             r0 = *(u64 *)(r10 -16)\nexit",
            Accept,
        ),
    ]);
    // Unprivileged: the kernel refuses unprivileged kprobes, so socket filters with a map.
    run_unpriv(&[
        case(
            "helper_key_uninit_unpriv",
            SocketFilter,
            "*(u32 *)(r10 -8) = 0\nr1 = map[idx:0] ll\nr2 = r10\nr2 += -8\n\
             call bpf_map_lookup_elem\nr0 = 0\nexit",
            Reject("invalid indirect read from stack R2 off -8+4 size 8"),
        )
        .maps(vec![hash8()]),
        case(
            "helper_key_unallocated_unpriv",
            SocketFilter,
            "r1 = map[idx:0] ll\nr2 = r10\nr2 += -8\ncall bpf_map_lookup_elem\nr0 = 0\nexit",
            Reject("invalid read from stack R2 off=-8 size=8"),
        )
        .maps(vec![hash8()]),
    ]);
}

/// The byte offset of `member` in the running kernel's `struct name` (vmlinux BTF).
fn vmlinux_offset(name: &str, member: &str) -> u32 {
    let btf = bpflab_btf::Btf::from_vmlinux().expect("vmlinux BTF");
    let id = btf.find_by_name(name, bpflab_btf::BtfKind::Struct).expect("struct");
    let Ok(bpflab_btf::BtfType::Struct(c)) = btf.type_by_id(id) else { panic!("{name}") };
    let i = (0..c.members.len())
        .find(|&i| btf.member_name(id, i).ok() == Some(member))
        .expect("member");
    c.members[i].bit_offset / 8
}

#[test]
fn kernel_structs() {
    // A map pointer reads as the map type's kernel struct (struct bpf_array for arrays,
    // whose first member is struct bpf_map); pointers in it load as BTF pointers to kernel
    // structs, which may be read but not written.
    let ops = vmlinux_offset("bpf_map", "ops");
    let max_entries = vmlinux_offset("bpf_map", "max_entries");
    let asm = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    run(&[
        case(
            "map_ptr_read_max_entries",
            SocketFilter,
            asm(format!("r1 = map[idx:0] ll\nr0 = *(u32 *)(r1 +{max_entries})\nexit")),
            Accept,
        )
        .maps(vec![array(8)]),
        case(
            "map_ptr_negative",
            SocketFilter,
            "r1 = map[idx:0] ll\nr0 = *(u64 *)(r1 -8)\nr0 = 0\nexit",
            Reject("R1 is bpf_array invalid negative access: off=-8"),
        )
        .maps(vec![array(8)]),
        case(
            "map_ptr_write",
            SocketFilter,
            asm(format!("r1 = map[idx:0] ll\n*(u32 *)(r1 +{max_entries}) = 0\nr0 = 0\nexit")),
            Reject("only read from bpf_array is supported"),
        )
        .maps(vec![array(8)]),
        case(
            "map_ptr_narrow_pointer_read",
            SocketFilter,
            asm(format!("r1 = map[idx:0] ll\nr0 = *(u32 *)(r1 +{ops})\nr0 = 0\nexit")),
            Reject(asm(format!(
                "cannot access ptr member ops with moff {ops} in struct bpf_map with off {ops} size 4"
            ))),
        )
        .maps(vec![array(8)]),
        case(
            "btf_ptr_deref",
            SocketFilter,
            asm(format!(
                "r1 = map[idx:0] ll\nr2 = *(u64 *)(r1 +{ops})\nr0 = *(u64 *)(r2 +0)\nr0 = 0\nexit"
            )),
            Accept,
        )
        .maps(vec![array(8)]),
        case(
            "btf_ptr_negative",
            SocketFilter,
            asm(format!(
                "r1 = map[idx:0] ll\nr2 = *(u64 *)(r1 +{ops})\nr0 = *(u64 *)(r2 -8)\nr0 = 0\nexit"
            )),
            Reject("R2 is ptr_bpf_map_ops invalid negative access: off=-8"),
        )
        .maps(vec![array(8)]),
        case(
            "btf_ptr_write",
            SocketFilter,
            asm(format!(
                "r1 = map[idx:0] ll\nr2 = *(u64 *)(r1 +{ops})\n*(u64 *)(r2 +0) = 0\nr0 = 0\nexit"
            )),
            Reject("only read is supported"),
        )
        .maps(vec![array(8)]),
    ]);
}

#[test]
fn sockets_and_flow_keys() {
    use ProgType::FlowDissector;
    run(&[
        case(
            "skb_sk_unchecked",
            CgroupSkb,
            "r2 = *(u64 *)(r1 +168)\nr0 = *(u32 *)(r2 +4)\nr0 = 1\nexit",
            Reject("R2 invalid mem access 'sock_common_or_null'"),
        ),
        case(
            "skb_sk_family",
            CgroupSkb,
            "r2 = *(u64 *)(r1 +168)\nif r2 == 0 goto +1\nr0 = *(u32 *)(r2 +4)\nr0 = 1\nexit",
            Accept,
        ),
        case(
            "skb_sk_narrow_dst_port",
            CgroupSkb,
            "r2 = *(u64 *)(r1 +168)\nif r2 == 0 goto +1\nr0 = *(u16 *)(r2 +48)\nr0 = 1\nexit",
            Accept,
        ),
        case(
            "skb_sk_common_type_refused",
            CgroupSkb,
            "r2 = *(u64 *)(r1 +168)\nif r2 == 0 goto +1\nr0 = *(u32 *)(r2 +8)\nr0 = 1\nexit",
            Reject("R2 invalid sock_common access off=8 size=4"),
        ),
        case(
            "skb_sk_write_refused",
            CgroupSkb,
            "r2 = *(u64 *)(r1 +168)\nif r2 == 0 goto +1\n*(u32 *)(r2 +16) = 1\nr0 = 1\nexit",
            Reject("R2 cannot write into sock_common"),
        ),
        case(
            "skb_sk_padding_refused",
            CgroupSkb,
            "r2 = *(u64 *)(r1 +168)\nif r2 == 0 goto +1\nr0 = *(u16 *)(r2 +50)\nr0 = 1\nexit",
            Reject("R2 invalid sock_common access off=50 size=2"),
        ),
        case(
            "flow_keys_read",
            FlowDissector,
            "r2 = *(u64 *)(r1 +144)\nr0 = *(u16 *)(r2 +0)\nr0 = 0\nexit",
            Accept,
        ),
        case(
            "flow_keys_past_end",
            FlowDissector,
            "r2 = *(u64 *)(r1 +144)\nr0 = *(u8 *)(r2 +56)\nr0 = 0\nexit",
            Reject("invalid access to flow keys off=56 size=1"),
        ),
        case(
            "flow_keys_write",
            FlowDissector,
            "r2 = *(u64 *)(r1 +144)\n*(u16 *)(r2 +12) = 8\nr0 = 0\nexit",
            Accept,
        ),
    ]);
}

#[test]
fn narrow_spills_and_fills() {
    // Each program uses the filled value as an index into an 8-byte map value, so the verdict
    // shows what the verifier knows about it.
    let idx = |fill: &str| -> &'static str {
        Box::leak(
            format!("{fill}\nr3 = map[idx:0][0]+0 ll\nr3 += r0\nr0 = *(u8 *)(r3 +0)\nr0 = 0\nexit")
                .into_boxed_str(),
        )
    };
    run(&[
        case(
            "st4_const_fill8_unknown",
            SocketFilter,
            idx("*(u32 *)(r10 -8) = 5\nr0 = *(u64 *)(r10 -8)"),
            Reject("math between map_value pointer and register with unbounded min value is not allowed"),
        )
        .maps(vec![array(8)]),
        case(
            "st8_zero_fill_upper_half",
            SocketFilter,
            idx("*(u64 *)(r10 -8) = 0\nr0 = *(u32 *)(r10 -4)"),
            Accept,
        )
        .maps(vec![array(8)]),
        case(
            "st8_const_fill_upper_half_unknown",
            SocketFilter,
            idx("*(u64 *)(r10 -8) = 3\nr0 = *(u32 *)(r10 -4)"),
            Reject("R3 unbounded memory access, make sure to bounds check any such access"),
        )
        .maps(vec![array(8)]),
        case(
            "st8_const_fill_u16",
            SocketFilter,
            idx("*(u64 *)(r10 -8) = 3\nr0 = *(u16 *)(r10 -8)"),
            Accept,
        )
        .maps(vec![array(8)]),
        case(
            "u8_spill_of_wide_value_truncates",
            SocketFilter,
            idx("r1 = 300\n*(u8 *)(r10 -8) = r1\nr0 = *(u8 *)(r10 -8)"),
            Reject("R3 min value is outside of the allowed memory range"),
        )
        .maps(vec![array(8)]),
        case(
            "u32_spill_fill_keeps_bounds",
            SocketFilter,
            idx("r1 = *(u32 *)(r1 +0)\nr1 &= 7\n*(u32 *)(r10 -8) = r1\nr0 = *(u32 *)(r10 -8)"),
            Accept,
        )
        .maps(vec![array(8)]),
        case(
            "u32_spill_fill_u64_unknown",
            SocketFilter,
            idx("r1 = *(u32 *)(r1 +0)\nr1 &= 7\n*(u32 *)(r10 -8) = r1\nr0 = *(u64 *)(r10 -8)"),
            Reject("math between map_value pointer and register with unbounded min value is not allowed"),
        )
        .maps(vec![array(8)]),
        case(
            "var_offset_zero_write_keeps_zero",
            SocketFilter,
            idx("r1 = *(u32 *)(r1 +0)\nr1 &= 8\n*(u64 *)(r10 -8) = 0\n*(u64 *)(r10 -16) = 0\n\
                 r2 = r10\nr2 += -16\nr2 += r1\nr4 = 0\n*(u64 *)(r2 +0) = r4\n\
                 r0 = *(u64 *)(r10 -8)"),
            Accept,
        )
        .maps(vec![array(8)]),
    ]);
}

#[test]
fn packet_variable_offsets_and_metadata() {
    run(&[
        case(
            "packet_var_offset_checked",
            SchedCls,
            "r2 = *(u32 *)(r1 +76)\nr3 = *(u32 *)(r1 +80)\nr4 = *(u32 *)(r1 +0)\nr4 &= 15\n\
             r2 += r4\nr0 = r2\nr0 += 8\nif r0 > r3 goto +1\nr0 = *(u64 *)(r2 +0)\nr0 = 0\nexit",
            Accept,
        ),
        case(
            "packet_var_offset_past_range",
            SchedCls,
            "r2 = *(u32 *)(r1 +76)\nr3 = *(u32 *)(r1 +80)\nr4 = *(u32 *)(r1 +0)\nr4 &= 15\n\
             r2 += r4\nr0 = r2\nr0 += 8\nif r0 > r3 goto +1\nr0 = *(u64 *)(r2 +4)\nr0 = 0\nexit",
            Reject("R2 offset is outside of the packet"),
        ),
        case(
            "packet_negative_variable_offset",
            SchedCls,
            "r2 = *(u32 *)(r1 +76)\nr3 = *(u32 *)(r1 +80)\nr4 = *(u32 *)(r1 +0)\nr4 &= 15\n\
             r4 -= 8\nr2 += r4\nr0 = r2\nr0 += 8\nif r0 > r3 goto +1\nr0 = *(u8 *)(r2 +0)\n\
             r0 = 0\nexit",
            Reject(
                "R2 min value is negative, either use unsigned index or do a if (index >=0) check.",
            ),
        ),
        case(
            "xdp_meta_checked",
            Xdp,
            "r2 = *(u32 *)(r1 +8)\nr3 = *(u32 *)(r1 +0)\nr0 = r2\nr0 += 4\n\
             if r0 > r3 goto +1\nr0 = *(u32 *)(r2 +0)\nr0 = 2\nexit",
            Accept,
        ),
        case(
            "xdp_meta_unchecked",
            Xdp,
            "r2 = *(u32 *)(r1 +8)\nr0 = *(u32 *)(r2 +0)\nr0 = 2\nexit",
            Reject("R2 offset is outside of the packet"),
        ),
        case(
            "packet_pointer_store_priv",
            SchedCls,
            "r2 = *(u32 *)(r1 +76)\nr3 = *(u32 *)(r1 +80)\nr0 = r2\nr0 += 8\n\
             if r0 > r3 goto +1\n*(u64 *)(r2 +0) = r1\nr0 = 0\nexit",
            Accept,
        ),
    ]);
    run_unpriv(&[case(
        "packet_pointer_store_unpriv",
        SocketFilter,
        "r2 = map[idx:0][0]+0 ll\n*(u64 *)(r2 +0) = r10\nr0 = 0\nexit",
        Reject("R10 leaks addr into map"),
    )
    .maps(vec![array(8)])]);
}

/// `programs/tests/helpers_misc.bpf.o`'s maps and BTF (its `locked` array holds a
/// `struct bpf_spin_lock` at offset 0, a `u32` counter at 4 and a `u64` total at 8), with
/// the assembled programs of `cases` as the only program.
fn with_lock_map(name: &'static str, asm: &'static str, expect: Expect) -> Case {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../programs/tests/helpers_misc.bpf.o");
    let bytes = std::fs::read(path).expect("fixture object");
    let obj = bpflab_loader::load(&bytes, &bpflab_loader::LoadOptions::for_path(path))
        .expect("the fixture loads");
    let maps = obj.collection.maps.clone();
    let locked = maps.iter().position(|m| m.name == "locked").expect("locked map");
    let asm = Box::leak(asm.replace("LOCKED", &locked.to_string()).into_boxed_str());
    Case { btf: obj.collection.btf.clone(), ..case(name, SchedCls, asm, expect).maps(maps) }
}

#[test]
fn map_value_special_fields() {
    run(&[
        with_lock_map(
            "spin_lock_read_directly",
            "r1 = map[idx:LOCKED][0]+0 ll\nr0 = *(u32 *)(r1 +0)\nr0 = 0\nexit",
            Reject("bpf_spin_lock cannot be accessed directly by load/store"),
        ),
        with_lock_map(
            "spin_lock_overlapping_write",
            "r1 = map[idx:LOCKED][0]+0 ll\n*(u64 *)(r1 +0) = 0\nr0 = 0\nexit",
            Reject("bpf_spin_lock cannot be accessed directly by load/store"),
        ),
        with_lock_map(
            "field_next_to_lock",
            "r1 = map[idx:LOCKED][0]+0 ll\nr0 = *(u32 *)(r1 +4)\n*(u64 *)(r1 +8) = 1\nr0 = 0\nexit",
            Accept,
        ),
        with_lock_map(
            "helper_reads_over_lock",
            "*(u32 *)(r10 -4) = 0\nr1 = map[idx:LOCKED] ll\nr2 = r10\nr2 += -4\n\
             r3 = map[idx:LOCKED][0]+0 ll\nr4 = 0\ncall bpf_map_update_elem\nr0 = 0\nexit",
            Reject("bpf_spin_lock cannot be accessed directly by load/store"),
        ),
    ]);
}
