//! Dynptrs: creation by `bpf_dynptr_from_mem` and `bpf_ringbuf_reserve_dynptr`, use by
//! `bpf_dynptr_read/write/data`, release by the ring buffer submit/discard helpers, and the
//! stack rules around them (partial overwrites destroy a local dynptr and its slices, a
//! referenced one cannot be overwritten, helpers may not write into one, its bytes cannot
//! be read). Assembled cases are compared with the running kernel's verdict and error class
//! and with bpflab's expected message; the kernel's own selftests (dynptr_fail.c) are
//! compared program by program.

use std::path::Path;

use bpflab_kernel::verdict::{VerdictOptions, kernel_verdict};
use bpflab_loader::LoadOptions;
use bpflab_verifier::{Config, ErrorKind, Verdict, verify};
use bpflab_vm::asm::assemble;
use bpflab_vm::helpers::HelperRegistry;
use bpflab_vm::{Collection, MapSpec, MapType, ProgType, Program};

/// One assembled case and bpflab's expected outcome (`None`: accepted, else the message).
struct Case {
    name: &'static str,
    asm: &'static str,
    expect: Option<&'static str>,
}

const fn case(name: &'static str, asm: &'static str, expect: Option<&'static str>) -> Case {
    Case { name, asm, expect }
}

/// `r6` = a map value of 16 bytes (map `idx:0`, array), or exit 0 when the lookup fails.
macro_rules! value {
    () => {
        "*(u32 *)(r10 - 4) = 0\nr2 = r10\nr2 += -4\nr1 = map[idx:0]\ncall bpf_map_lookup_elem\n\
         if r0 != 0 goto +2\nr0 = 0\nexit\nr6 = r0\n"
    };
}

/// A local dynptr at fp-24 over the 16 bytes of the map value in r6.
macro_rules! local {
    () => {
        "r1 = r6\nr2 = 16\nr3 = 0\nr4 = r10\nr4 += -24\ncall bpf_dynptr_from_mem\n"
    };
}

/// A ring buffer dynptr of 8 bytes at fp-16 (map `idx:1`).
macro_rules! rb {
    () => {
        "r1 = map[idx:1]\nr2 = 8\nr3 = 0\nr4 = r10\nr4 += -16\ncall bpf_ringbuf_reserve_dynptr\n"
    };
}

/// Discards the ring buffer dynptr at fp-16.
macro_rules! discard {
    () => {
        "r1 = r10\nr1 += -16\nr2 = 0\ncall bpf_ringbuf_discard_dynptr\n"
    };
}

const CASES: &[Case] = &[
    // Local dynptrs.
    case(
        "local_read",
        concat!(
            value!(),
            local!(),
            "r1 = r10\nr1 += -32\nr2 = 8\nr3 = r10\nr3 += -24\nr4 = 0\nr5 = 0\n\
             call bpf_dynptr_read\nr0 = 0\nexit"
        ),
        None,
    ),
    case(
        "local_write",
        concat!(
            value!(),
            local!(),
            "*(u64 *)(r10 - 32) = 0\nr1 = r10\nr1 += -24\nr2 = 0\nr3 = r10\nr3 += -32\n\
             r4 = 8\nr5 = 0\ncall bpf_dynptr_write\nr0 = 0\nexit"
        ),
        None,
    ),
    case(
        "from_mem_of_stack",
        "*(u64 *)(r10 - 8) = 0\nr1 = r10\nr1 += -8\nr2 = 8\nr3 = 0\nr4 = r10\nr4 += -24\n\
         call bpf_dynptr_from_mem\nr0 = 0\nexit",
        Some("Unsupported reg type fp for bpf_dynptr_from_mem data"),
    ),
    case(
        "uninit_dynptr_read",
        "r1 = r10\nr1 += -32\nr2 = 8\nr3 = r10\nr3 += -16\nr4 = 0\nr5 = 0\n\
         call bpf_dynptr_read\nr0 = 0\nexit",
        Some("Expected an initialized dynptr as arg #2"),
    ),
    case(
        "dynptr_misaligned",
        concat!(
            value!(),
            "r1 = r6\nr2 = 16\nr3 = 0\nr4 = r10\nr4 += -20\ncall bpf_dynptr_from_mem\nr0 = 0\nexit"
        ),
        Some("Dynptr has to be an uninitialized dynptr"),
    ),
    case(
        "dynptr_at_fp_minus_8",
        concat!(
            value!(),
            "r1 = r6\nr2 = 16\nr3 = 0\nr4 = r10\nr4 += -8\ncall bpf_dynptr_from_mem\nr0 = 0\nexit"
        ),
        Some("Dynptr has to be an uninitialized dynptr"),
    ),
    case(
        "dynptr_not_stack",
        concat!(
            value!(),
            "r1 = r6\nr2 = 16\nr3 = 0\nr4 = r6\ncall bpf_dynptr_from_mem\nr0 = 0\nexit"
        ),
        Some("R4 type=map_value expected=fp, dynptr_ptr"),
    ),
    case(
        "second_slot_passed",
        concat!(
            value!(),
            local!(),
            "r1 = r10\nr1 += -32\nr2 = 8\nr3 = r10\nr3 += -16\nr4 = 0\nr5 = 0\n\
             call bpf_dynptr_read\nr0 = 0\nexit"
        ),
        Some("Expected an initialized dynptr as arg #2"),
    ),
    case(
        "read_dynptr_bytes",
        concat!(value!(), local!(), "r0 = *(u32 *)(r10 - 24)\nr0 = 0\nexit"),
        Some("invalid read from stack off -24+0 size 4"),
    ),
    case(
        "partial_overwrite_destroys",
        concat!(
            value!(),
            local!(),
            "*(u32 *)(r10 - 16) = 0\nr1 = r10\nr1 += -32\nr2 = 8\nr3 = r10\nr3 += -24\n\
             r4 = 0\nr5 = 0\ncall bpf_dynptr_read\nr0 = 0\nexit"
        ),
        Some("Expected an initialized dynptr as arg #2"),
    ),
    case("reinit_local_ok", concat!(value!(), local!(), local!(), "r0 = 0\nexit"), None),
    case(
        "helper_writes_into_dynptr",
        concat!(
            value!(),
            local!(),
            "r1 = r10\nr1 += -24\nr2 = 8\nr3 = r10\nr3 += -24\nr4 = 0\nr5 = 0\n\
             call bpf_dynptr_read\nr0 = 0\nexit"
        ),
        Some("potential write to dynptr at off=-24 disallowed"),
    ),
    // Slices.
    case(
        "data_checked",
        concat!(
            value!(),
            local!(),
            "r1 = r10\nr1 += -24\nr2 = 0\nr3 = 8\ncall bpf_dynptr_data\n\
             if r0 == 0 goto +1\nr0 = *(u64 *)(r0 + 0)\nr0 = 0\nexit"
        ),
        None,
    ),
    case(
        "data_unchecked",
        concat!(
            value!(),
            local!(),
            "r1 = r10\nr1 += -24\nr2 = 0\nr3 = 8\ncall bpf_dynptr_data\n\
             r0 = *(u64 *)(r0 + 0)\nr0 = 0\nexit"
        ),
        Some("R0 invalid mem access 'mem_or_null'"),
    ),
    case(
        "data_past_size",
        concat!(
            value!(),
            local!(),
            "r1 = r10\nr1 += -24\nr2 = 0\nr3 = 8\ncall bpf_dynptr_data\n\
             if r0 == 0 goto +1\nr0 = *(u64 *)(r0 + 4)\nr0 = 0\nexit"
        ),
        Some("R0 min value is outside of the allowed memory range"),
    ),
    case(
        "data_variable_size",
        concat!(
            value!(),
            local!(),
            "call bpf_get_prandom_u32\nr3 = r0\nr3 &= 7\nr1 = r10\nr1 += -24\nr2 = 0\n\
             call bpf_dynptr_data\nr0 = 0\nexit"
        ),
        Some("R3 is not a known constant'"),
    ),
    case(
        "slice_after_overwrite",
        concat!(
            value!(),
            local!(),
            "r1 = r10\nr1 += -24\nr2 = 0\nr3 = 8\ncall bpf_dynptr_data\n\
             if r0 == 0 goto +3\n*(u64 *)(r10 - 24) = 0\nr0 = *(u64 *)(r0 + 0)\nr0 = 0\nexit"
        ),
        Some("R0 invalid mem access 'scalar'"),
    ),
    // Ring buffer dynptrs.
    case("ringbuf_discarded", concat!(rb!(), discard!(), "r0 = 0\nexit"), None),
    case(
        "ringbuf_submitted",
        concat!(rb!(), "r1 = r10\nr1 += -16\nr2 = 0\ncall bpf_ringbuf_submit_dynptr\nr0 = 0\nexit"),
        None,
    ),
    case(
        "ringbuf_leak",
        concat!(rb!(), "r0 = 0\nexit"),
        Some("BPF_EXIT instruction in main prog would lead to reference leak"),
    ),
    case(
        "ringbuf_release_twice",
        concat!(rb!(), discard!(), discard!(), "r0 = 0\nexit"),
        Some("arg 1 is an unacquired reference"),
    ),
    case(
        "ringbuf_release_local",
        concat!(
            value!(),
            local!(),
            "r1 = r10\nr1 += -24\nr2 = 0\ncall bpf_ringbuf_discard_dynptr\nr0 = 0\nexit"
        ),
        Some("arg 1 is an unacquired reference"),
    ),
    case(
        "ringbuf_overwrite",
        concat!(rb!(), "*(u64 *)(r10 - 8) = 0\n", discard!(), "r0 = 0\nexit"),
        Some("cannot overwrite referenced dynptr"),
    ),
    case(
        "ringbuf_reinit",
        concat!(rb!(), rb!(), discard!(), "r0 = 0\nexit"),
        Some("cannot overwrite referenced dynptr"),
    ),
    case(
        "ringbuf_slice_after_discard",
        concat!(
            rb!(),
            "r1 = r10\nr1 += -16\nr2 = 0\nr3 = 8\ncall bpf_dynptr_data\nr6 = r0\n",
            discard!(),
            "if r6 == 0 goto +1\nr0 = *(u64 *)(r6 + 0)\nr0 = 0\nexit"
        ),
        Some("R6 invalid mem access 'scalar'"),
    ),
    case(
        "ringbuf_slice_to_ringbuf_submit",
        concat!(
            rb!(),
            "r1 = r10\nr1 += -16\nr2 = 0\nr3 = 8\ncall bpf_dynptr_data\n\
             if r0 == 0 goto +3\nr1 = r0\nr2 = 0\ncall bpf_ringbuf_submit\n",
            discard!(),
            "r0 = 0\nexit"
        ),
        Some("R1 type=mem expected=ringbuf_mem"),
    ),
];

/// Maps: 0 array (key 4, value 16), 1 ring buffer.
fn program(case: &Case) -> Collection {
    let insns = assemble(case.asm).unwrap_or_else(|e| panic!("{}: {e}", case.name));
    let mut p = Program::raw(case.name, insns);
    p.prog_type = ProgType::SocketFilter;
    p.license = "GPL".into();
    let mut c = Collection::single(p);
    c.maps = vec![
        MapSpec::new("array", MapType::Array, 4, 16, 4),
        MapSpec::new("rb", MapType::Ringbuf, 0, 0, 4096),
    ];
    c
}

/// bpflab's outcome: `None` accepted, else the error's class and message; unsupported is
/// an error of the test.
fn outcome(report: &bpflab_verifier::Report) -> Result<Option<(ErrorKind, String)>, String> {
    match &report.verdict {
        Verdict::Accepted => Ok(None),
        Verdict::Rejected(e) => Ok(Some((e.kind, e.message.clone()))),
        Verdict::Unsupported(u) => Err(u.feature.clone()),
    }
}

#[test]
fn dynptr_cases_match_the_kernel_and_the_expected_message() {
    let helpers = HelperRegistry::standard();
    let config = Config::default();
    let mut failures = Vec::new();
    let mut compared = 0;
    for case in CASES {
        let coll = program(case);
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
        match kernel_verdict(&coll, 0, &VerdictOptions::default()) {
            Ok(k) => {
                compared += 1;
                let kclass = k.error_line.as_deref().map(ErrorKind::classify);
                let bclass = got.as_ref().map(|g| g.0);
                if k.accepted != got.is_none() || (!k.accepted && kclass != bclass) {
                    failures.push(format!(
                        "{}: kernel {} {:?} ({:?}), bpflab {:?}",
                        case.name, k.accepted, k.error_line, kclass, got
                    ));
                } else if !k.accepted && k.error_line.as_deref() != case.expect {
                    println!("{}: kernel says {:?}, bpflab {:?}", case.name, k.error_line, got);
                }
            }
            Err(e) => println!("SKIP: {}: kernel load failed: {e}", case.name),
        }
    }
    println!("{} cases, {compared} compared with the kernel", CASES.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(compared, CASES.len(), "every case is compared with the kernel");
}

/// Programs of the kernel's dynptr selftests that bpflab decides as the kernel does (the
/// rest need `bpf_this_cpu_ptr` or traced functions' arguments, which stay unsupported).
const SELFTESTS_AGREE: &[&str] = &[
    "ringbuf_missing_release1",
    "ringbuf_missing_release2",
    "ringbuf_release_uninit_dynptr",
    "use_after_invalid",
    "ringbuf_invalid_api",
    "add_dynptr_to_map1",
    "add_dynptr_to_map2",
    "data_slice_out_of_bounds_ringbuf",
    "data_slice_out_of_bounds_map_value",
    "ringbuf_missing_release_callback",
    "release_twice_callback",
    "global",
    "data_slice_use_after_release1",
    "data_slice_use_after_release2",
    "data_slice_missing_null_check1",
    "data_slice_missing_null_check2",
    "invalid_helper1",
    "invalid_helper2",
    "invalid_write1",
    "invalid_write2",
    "invalid_write3",
    "invalid_write4",
    "invalid_read1",
    "invalid_read2",
    "invalid_read3",
    "invalid_read4",
    "invalid_offset",
    "release_twice",
    "dynptr_from_mem_invalid_api",
    "dynptr_overwrite_unref",
    "dynptr_invalidate_slice_reinit",
    "dynptr_invalidate_slice_failure",
    "dynptr_invalidate_slice_success",
    "dynptr_overwrite_ref",
    "dynptr_read_into_slot",
    "uninit_write_into_slot",
    "invalid_data_slices",
    "dynptr_pruning_overwrite",
    "dynptr_pruning_stacksafe",
    "dynptr_pruning_type_confusion",
    "dynptr_var_off_overwrite",
    "dynptr_partial_slot_invalidate",
    "skb_invalid_ctx",
    "xdp_invalid_ctx",
    "dynptr_adjust_invalid",
    "dynptr_is_null_invalid",
    "dynptr_is_rdonly_invalid",
    "dynptr_size_invalid",
    "clone_invalid1",
    "clone_invalidate1",
    "clone_invalidate2",
    "clone_invalidate3",
    "clone_invalidate4",
    "clone_invalidate5",
    "clone_invalidate6",
    "data_slice_out_of_bounds_skb",
    "skb_invalid_slice_write",
    "skb_invalid_data_slice1",
    "skb_invalid_data_slice2",
    "skb_invalid_data_slice3",
    "skb_invalid_data_slice4",
    "dynptr_slice_var_len1",
    "dynptr_slice_var_len2",
    "clone_skb_packet_data",
    "xdp_invalid_data_slice1",
    "xdp_invalid_data_slice2",
    "clone_invalid2",
    "clone_xdp_packet_data",
    "invalid_slice_rdwr_rdonly",
    "test_dynptr_skb_small_buff",
    "test_dynptr_reg_type",
];

#[test]
fn dynptr_selftests_agree_with_the_kernel() {
    selftests_agree("dynptr_fail.bpf.o", SELFTESTS_AGREE);
}

/// A global function taking a dynptr, verified on its own with a `dynptr_ptr` argument.
#[test]
fn global_function_dynptr_argument_agrees_with_the_kernel() {
    selftests_agree("verifier_global_subprogs.bpf.o", &["arg_tag_dynptr"]);
}

/// Verifies every program of selftest object `file` with bpflab and the kernel: no program
/// bpflab decides may differ from the kernel (verdict and error class), and every program
/// of `expected` must be decided the kernel's way.
fn selftests_agree(file: &str, expected: &[&str]) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/selftests/obj").join(file);
    let bytes = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{file} is built (verifier/corpus/selftests): {e}"));
    let obj = bpflab_loader::load(&bytes, &LoadOptions::for_path(&path)).expect("loads");
    let coll = &obj.collection;
    let helpers = HelperRegistry::standard();
    let config = Config::default();
    let (mut agree, mut unsupported, mut failures) = (Vec::new(), 0, Vec::new());
    for (idx, prog) in coll.programs.iter().enumerate() {
        let report = verify(coll, idx, &helpers, &config);
        let got = match outcome(&report) {
            Ok(g) => g,
            Err(f) => {
                unsupported += 1;
                println!("{}: unsupported: {f}", prog.name);
                continue;
            }
        };
        let Ok(k) = kernel_verdict(coll, idx, &VerdictOptions::default()) else {
            println!("SKIP: {}: the kernel cannot load it", prog.name);
            continue;
        };
        if !k.accepted && k.error_line.is_none() {
            // Refused before its verifier said anything (an attach target this kernel lacks).
            println!("SKIP: {}: the kernel refuses it before verifying", prog.name);
            continue;
        }
        let kclass = k.error_line.as_deref().map(ErrorKind::classify);
        if k.accepted != got.is_none() || (!k.accepted && kclass != got.as_ref().map(|g| g.0)) {
            failures.push(format!("{}: kernel {:?}, bpflab {:?}", prog.name, k.error_line, got));
        } else {
            println!("{}: agree: {:?}", prog.name, k.error_line);
            agree.push(prog.name.as_str());
        }
    }
    println!("{} agree, {unsupported} unsupported, {} differ", agree.len(), failures.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let missing: Vec<_> = expected.iter().filter(|n| !agree.contains(n)).collect();
    assert!(missing.is_empty(), "no longer agree: {missing:?}");
}

/// The programs of `fixtures/dynptr_slices.bpf.c` and bpflab's expected outcome (`None`:
/// accepted, else the message); each is also compared with the kernel.
const FIXTURE: &[(&str, Option<&str>)] = &[
    ("skb_data", None),
    // bpf_dynptr_data slices are plain memory: a packet-moving helper leaves them valid.
    ("skb_data_after_pull", None),
    // bpf_dynptr_slice slices of an skb are packet data: invalidated by bpf_skb_pull_data.
    ("skb_slice_after_pull", Some("R8 invalid mem access 'scalar'")),
    ("local_slice_after_pull", None),
    ("xdp_data", None),
    ("skb_slice_rdwr", Some("bpf_dynptr_slice_rdwr() is not allowed")),
    ("skb_dynptr_in_xdp", Some("calling kernel function bpf_dynptr_from_skb is not allowed")),
    // The clone shares its parent's reference: discarding the parent invalidates it.
    ("ringbuf_clone_discarded", Some("arg 1 is an unacquired reference")),
    ("global_dynptr", None),
    ("global_dynptr_uninit", Some("Caller passes invalid args into func#1 ('global_size')")),
    // bpf_user_ringbuf_drain callbacks get a dynptr_ptr: readable, not theirs to release or
    // re-create.
    ("urb_read", None),
    ("urb_discard", Some("cannot release unowned const bpf_dynptr")),
    ("urb_reinit", Some("Dynptr has to be an uninitialized dynptr")),
];

#[test]
fn dynptr_fixture_matches_the_kernel_and_the_expected_message() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dynptr_slices.bpf.o");
    let bytes = std::fs::read(&path).expect("the committed fixture object");
    let obj = bpflab_loader::load(&bytes, &LoadOptions::for_path(&path)).expect("loads");
    let coll = &obj.collection;
    let helpers = HelperRegistry::standard();
    let config = Config::default();
    let mut failures = Vec::new();
    let mut names: Vec<&str> = coll.programs.iter().map(|p| p.name.as_str()).collect();
    names.sort_unstable();
    let mut want: Vec<&str> = FIXTURE.iter().map(|f| f.0).collect();
    want.sort_unstable();
    assert_eq!(names, want, "the fixture's programs");
    for &(name, expect) in FIXTURE {
        let idx = coll.programs.iter().position(|p| p.name == name).expect("listed above");
        let report = verify(coll, idx, &helpers, &config);
        let got = match outcome(&report) {
            Ok(g) => g,
            Err(f) => {
                failures.push(format!("{name}: unsupported: {f}"));
                continue;
            }
        };
        if got.as_ref().map(|g| g.1.as_str()) != expect {
            failures.push(format!("{name}: bpflab {got:?}, expected {expect:?}"));
        }
        let k = kernel_verdict(coll, idx, &VerdictOptions::default()).expect("the kernel loads it");
        if k.accepted != got.is_none() || (!k.accepted && k.error_line.as_deref() != expect) {
            failures
                .push(format!("{name}: kernel {} {:?}, bpflab {got:?}", k.accepted, k.error_line));
        }
        if k.accepted && k.processed_insns != Some(report.stats.processed_insns) {
            failures.push(format!(
                "{name}: {} insns processed, the kernel {:?}",
                report.stats.processed_insns, k.processed_insns
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
