//! Map-typed helper results: map-in-map lookups (the inner map's `map_ptr` once NULL-checked,
//! then used as a helper's map argument), XDP socket map lookups (`xdp_sock`) and device map
//! lookups (read-only values), on small assembled programs and the map-in-map fixtures, each
//! compared with the running kernel's verifier (verdict, error line, processed instructions).

use std::path::Path;

use bpflab_kernel::verdict::{VerdictOptions, kernel_verdict};
use bpflab_loader::LoadOptions;
use bpflab_verifier::{Config, ErrorKind, Verdict, verify};
use bpflab_vm::helpers::HelperRegistry;
use bpflab_vm::{Collection, MapSpec, MapType, ProgType, Program};

/// What a case expects.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// Loaded.
    Accept,
    /// Refused with this exact last log line.
    Reject(&'static str),
}

/// One assembled program, its maps and what both verifiers should say.
struct Case {
    name: &'static str,
    prog_type: ProgType,
    asm: &'static str,
    maps: Vec<MapSpec>,
    expect: Expect,
}

impl Case {
    fn collection(&self) -> Collection {
        let insns = bpflab_vm::asm::assemble(self.asm)
            .unwrap_or_else(|e| panic!("{}: assembly: {e}", self.name));
        let p = Program::raw(self.name, insns).with_type(self.prog_type);
        Collection { maps: self.maps.clone(), ..Collection::single(p) }
    }
}

/// An outer map of `map_type` (u32 keys, 2 entries) whose inner template is a one-entry map of
/// `inner_type` with u32 keys and `inner_vs`-byte values.
fn outer(map_type: MapType, inner_type: MapType, inner_vs: u32) -> MapSpec {
    let inner = MapSpec::new("inner", inner_type, 4, inner_vs, 1);
    MapSpec { inner: Some(Box::new(inner)), ..MapSpec::new("outer", map_type, 4, 4, 2) }
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

/// Whether bpflab's processed-instruction count is close to the kernel's (within 15% or 10).
fn close(ours: u64, kernel: u64) -> bool {
    ours.abs_diff(kernel) <= (kernel * 15 / 100).max(10)
}

/// Checks every case against the expectation, with bpflab and (when it can load) the kernel.
fn run(cases: &[Case]) {
    let kernel = kernel_available();
    let helpers = HelperRegistry::standard();
    let mut failures = Vec::new();
    for c in cases {
        let coll = c.collection();
        let report = verify(&coll, 0, &helpers, &Config::default());
        match (&c.expect, &report.verdict) {
            (Expect::Accept, Verdict::Accepted) => {}
            (Expect::Reject(m), Verdict::Rejected(e)) if e.message == *m => {
                assert_eq!(e.kind, ErrorKind::classify(m), "{}: class", c.name);
            }
            (_, got) => {
                failures.push(format!("{}: bpflab {got:?}, expected {:?}", c.name, c.expect))
            }
        }
        if !kernel {
            continue;
        }
        let k = kernel_verdict(&coll, 0, &VerdictOptions::default()).expect("the kernel decides");
        match c.expect {
            Expect::Accept if k.accepted => {}
            Expect::Reject(m) if !k.accepted && k.error_line.as_deref() == Some(m) => {}
            _ => failures.push(format!(
                "{}: kernel accepted={} error {:?}, expected {:?}\n{}",
                c.name, k.accepted, k.error_line, c.expect, k.log
            )),
        }
        if let Some(kp) = k.processed_insns
            && !close(report.stats.processed_insns, kp)
        {
            failures.push(format!(
                "{}: processed {} insns, the kernel {kp}",
                c.name, report.stats.processed_insns
            ));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases differ:\n{}", failures.len(), cases.len(), {
        failures.join("\n")
    });
}

#[test]
fn map_in_map_lookups_agree_with_the_kernel() {
    let aom = || vec![outer(MapType::ArrayOfMaps, MapType::Array, 8)];
    let hom = || vec![outer(MapType::HashOfMaps, MapType::Array, 8)];
    let cases = vec![
        // The inner map is a map argument: lookup, read the inner value.
        Case {
            name: "aom_inner_lookup",
            prog_type: ProgType::SocketFilter,
            asm: concat!(
                "r1 = 0\n*(u32 *)(r10 -4) = r1\nr2 = r10\nr2 += -4\nr1 = map[idx:0] ll\ncall 1\n",
                "if r0 == 0 goto +6\nr1 = r0\nr2 = r10\nr2 += -4\ncall 1\n",
                "if r0 == 0 goto +1\nr0 = *(u64 *)(r0 +0)\nr0 = 0\nexit"
            ),
            maps: aom(),
            expect: Expect::Accept,
        },
        Case {
            name: "hom_inner_lookup",
            prog_type: ProgType::SocketFilter,
            asm: concat!(
                "r1 = 0\n*(u32 *)(r10 -4) = r1\nr2 = r10\nr2 += -4\nr1 = map[idx:0] ll\ncall 1\n",
                "if r0 == 0 goto +6\nr1 = r0\nr2 = r10\nr2 += -4\ncall 1\n",
                "if r0 == 0 goto +1\nr0 = *(u64 *)(r0 +0)\nr0 = 0\nexit"
            ),
            maps: hom(),
            expect: Expect::Accept,
        },
        // The inner value's size is the template's.
        Case {
            name: "aom_inner_value_oob",
            prog_type: ProgType::SocketFilter,
            asm: concat!(
                "r1 = 0\n*(u32 *)(r10 -4) = r1\nr2 = r10\nr2 += -4\nr1 = map[idx:0] ll\ncall 1\n",
                "if r0 == 0 goto +6\nr1 = r0\nr2 = r10\nr2 += -4\ncall 1\n",
                "if r0 == 0 goto +1\nr0 = *(u64 *)(r0 +8)\nr0 = 0\nexit"
            ),
            maps: aom(),
            expect: Expect::Reject("R0 min value is outside of the allowed memory range"),
        },
        // Updating the inner map: key and value sized by the template.
        Case {
            name: "aom_inner_update",
            prog_type: ProgType::SocketFilter,
            asm: concat!(
                "r1 = 0\n*(u32 *)(r10 -4) = r1\n*(u64 *)(r10 -16) = r1\n",
                "r2 = r10\nr2 += -4\nr1 = map[idx:0] ll\ncall 1\n",
                "if r0 == 0 goto +7\nr1 = r0\nr2 = r10\nr2 += -4\nr3 = r10\nr3 += -16\n",
                "r4 = 0\ncall 2\nr0 = 0\nexit"
            ),
            maps: aom(),
            expect: Expect::Accept,
        },
        // A value too small for the inner map's 16-byte values.
        Case {
            name: "aom_inner_update_short_value",
            prog_type: ProgType::SocketFilter,
            asm: concat!(
                "r1 = 0\n*(u32 *)(r10 -4) = r1\n*(u64 *)(r10 -8) = r1\n",
                "r2 = r10\nr2 += -4\nr1 = map[idx:0] ll\ncall 1\n",
                "if r0 == 0 goto +7\nr1 = r0\nr2 = r10\nr2 += -4\nr3 = r10\nr3 += -8\n",
                "r4 = 0\ncall 2\nr0 = 0\nexit"
            ),
            maps: vec![outer(MapType::ArrayOfMaps, MapType::Hash, 16)],
            expect: Expect::Reject("invalid read from stack R3 off=-8 size=16"),
        },
        // Before the NULL check the result is the inner map or NULL (6.18 types it at the
        // call).
        Case {
            name: "aom_unchecked_as_map",
            prog_type: ProgType::SocketFilter,
            asm: concat!(
                "r1 = 0\n*(u32 *)(r10 -4) = r1\nr2 = r10\nr2 += -4\nr1 = map[idx:0] ll\ncall 1\n",
                "r1 = r0\nr2 = r10\nr2 += -4\ncall 1\nr0 = 0\nexit"
            ),
            maps: aom(),
            expect: Expect::Reject("R1 type=map_ptr_or_null expected=map_ptr"),
        },
        Case {
            name: "aom_unchecked_read",
            prog_type: ProgType::SocketFilter,
            asm: concat!(
                "r1 = 0\n*(u32 *)(r10 -4) = r1\nr2 = r10\nr2 += -4\nr1 = map[idx:0] ll\ncall 1\n",
                "r0 = *(u32 *)(r0 +0)\nr0 = 0\nexit"
            ),
            maps: aom(),
            expect: Expect::Reject("R0 invalid mem access 'map_ptr_or_null'"),
        },
        // After the NULL check it is a map pointer, not memory to write.
        Case {
            name: "aom_map_ptr_write",
            prog_type: ProgType::SocketFilter,
            asm: concat!(
                "r1 = 0\n*(u32 *)(r10 -4) = r1\nr2 = r10\nr2 += -4\nr1 = map[idx:0] ll\ncall 1\n",
                "r1 = 7\nif r0 == 0 goto +1\n*(u32 *)(r0 +0) = r1\nr0 = 0\nexit"
            ),
            maps: aom(),
            expect: Expect::Reject("only read from bpf_array is supported"),
        },
        // A constant key below the template's max_entries: the inner array's value is never
        // NULL, unless the template is BPF_F_INNER_MAP (inner arrays of any size).
        Case {
            name: "aom_inner_const_key_not_null",
            prog_type: ProgType::SocketFilter,
            asm: concat!(
                "r1 = 0\n*(u32 *)(r10 -4) = r1\nr2 = r10\nr2 += -4\nr1 = map[idx:0] ll\ncall 1\n",
                "if r0 == 0 goto +5\nr1 = r0\nr2 = r10\nr2 += -4\ncall 1\n",
                "r0 = *(u64 *)(r0 +0)\nr0 = 0\nexit"
            ),
            maps: aom(),
            expect: Expect::Accept,
        },
        Case {
            name: "aom_inner_map_flag_const_key",
            prog_type: ProgType::SocketFilter,
            asm: concat!(
                "r1 = 0\n*(u32 *)(r10 -4) = r1\nr2 = r10\nr2 += -4\nr1 = map[idx:0] ll\ncall 1\n",
                "if r0 == 0 goto +5\nr1 = r0\nr2 = r10\nr2 += -4\ncall 1\n",
                "r0 = *(u64 *)(r0 +0)\nr0 = 0\nexit"
            ),
            maps: {
                let mut m = outer(MapType::ArrayOfMaps, MapType::Array, 8);
                if let Some(i) = m.inner.as_mut() {
                    i.flags |= 1 << 12;
                }
                vec![m]
            },
            expect: Expect::Reject("R0 invalid mem access 'map_value_or_null'"),
        },
        // No direct value address into a map-in-map (its values are maps).
        Case {
            name: "aom_direct_value",
            prog_type: ProgType::SocketFilter,
            asm: "r1 = map[idx:0][0]+0 ll\nr0 = 0\nexit",
            maps: aom(),
            expect: Expect::Reject("no direct value access support for this map type"),
        },
        Case {
            name: "devmap_direct_value",
            prog_type: ProgType::Xdp,
            asm: "r1 = map[idx:0][0]+0 ll\nr0 = 2\nexit",
            maps: vec![MapSpec::new("dev", MapType::Devmap, 4, 4, 4)],
            expect: Expect::Reject("no direct value access support for this map type"),
        },
    ];
    run(&cases);
}

#[test]
fn device_and_socket_map_lookups_agree_with_the_kernel() {
    let devmap = |t| vec![MapSpec::new("dev", t, 4, 4, 4)];
    let cases = vec![
        Case {
            name: "devmap_read",
            prog_type: ProgType::Xdp,
            asm: concat!(
                "r1 = 0\n*(u32 *)(r10 -4) = r1\nr2 = r10\nr2 += -4\nr1 = map[idx:0] ll\ncall 1\n",
                "if r0 == 0 goto +1\nr0 = *(u32 *)(r0 +0)\nr0 = 2\nexit"
            ),
            maps: devmap(MapType::Devmap),
            expect: Expect::Accept,
        },
        Case {
            name: "devmap_write",
            prog_type: ProgType::Xdp,
            asm: concat!(
                "r1 = 0\n*(u32 *)(r10 -4) = r1\nr2 = r10\nr2 += -4\nr1 = map[idx:0] ll\ncall 1\n",
                "r1 = 7\nif r0 == 0 goto +1\n*(u32 *)(r0 +0) = r1\nr0 = 2\nexit"
            ),
            maps: devmap(MapType::Devmap),
            expect: Expect::Reject("write into map forbidden, value_size=4 off=0 size=4"),
        },
        Case {
            name: "devmap_hash_write",
            prog_type: ProgType::Xdp,
            asm: concat!(
                "r1 = 0\n*(u32 *)(r10 -4) = r1\nr2 = r10\nr2 += -4\nr1 = map[idx:0] ll\ncall 1\n",
                "r1 = 7\nif r0 == 0 goto +1\n*(u32 *)(r0 +0) = r1\nr0 = 2\nexit"
            ),
            maps: devmap(MapType::DevmapHash),
            expect: Expect::Reject("write into map forbidden, value_size=4 off=0 size=4"),
        },
        Case {
            name: "xskmap_queue_id",
            prog_type: ProgType::Xdp,
            asm: concat!(
                "r1 = 0\n*(u32 *)(r10 -4) = r1\nr2 = r10\nr2 += -4\nr1 = map[idx:0] ll\ncall 1\n",
                "if r0 == 0 goto +1\nr0 = *(u32 *)(r0 +0)\nr0 = 2\nexit"
            ),
            maps: vec![MapSpec::new("xsks", MapType::Xskmap, 4, 4, 4)],
            expect: Expect::Accept,
        },
        Case {
            name: "xskmap_unchecked",
            prog_type: ProgType::Xdp,
            asm: concat!(
                "r1 = 0\n*(u32 *)(r10 -4) = r1\nr2 = r10\nr2 += -4\nr1 = map[idx:0] ll\ncall 1\n",
                "r0 = *(u32 *)(r0 +0)\nr0 = 2\nexit"
            ),
            maps: vec![MapSpec::new("xsks", MapType::Xskmap, 4, 4, 4)],
            expect: Expect::Reject("R0 invalid mem access 'xdp_sock_or_null'"),
        },
        Case {
            name: "xskmap_past_queue_id",
            prog_type: ProgType::Xdp,
            asm: concat!(
                "r1 = 0\n*(u32 *)(r10 -4) = r1\nr2 = r10\nr2 += -4\nr1 = map[idx:0] ll\ncall 1\n",
                "if r0 == 0 goto +1\nr0 = *(u32 *)(r0 +4)\nr0 = 2\nexit"
            ),
            maps: vec![MapSpec::new("xsks", MapType::Xskmap, 4, 4, 4)],
            expect: Expect::Reject("R0 invalid xdp_sock access off=4 size=4"),
        },
    ];
    run(&cases);
}

/// Verifies every program of a fixture object with bpflab and the kernel: the same verdict
/// and processed-instruction counts close to the kernel's.
fn fixture_agrees(rel: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let obj = bpflab_loader::load(&bytes, &LoadOptions::for_path(&path)).expect("loads");
    let coll = &obj.collection;
    let helpers = HelperRegistry::standard();
    let kernel = kernel_available();
    for (idx, prog) in coll.programs.iter().enumerate() {
        let report = verify(coll, idx, &helpers, &Config::default());
        assert_eq!(report.verdict, Verdict::Accepted, "{rel} {}", prog.name);
        if !kernel {
            continue;
        }
        let k = kernel_verdict(coll, idx, &VerdictOptions::default()).expect("the kernel decides");
        assert!(k.accepted, "{rel} {}: the kernel refuses: {}", prog.name, k.log);
        let kp = k.processed_insns.expect("the kernel's stats line");
        let ours = report.stats.processed_insns;
        println!("{rel} {}: processed {ours} insns, the kernel {kp}", prog.name);
        assert!(close(ours, kp), "{rel} {}: processed {ours}, the kernel {kp}", prog.name);
    }
}

#[test]
fn map_in_map_fixture_agrees_with_the_kernel() {
    fixture_agrees("programs/tests/map_in_map.bpf.o");
}

#[test]
fn xdp_map_in_map_corpus_program_agrees_with_the_kernel() {
    fixture_agrees("programs/corpus/xdp_map_in_map.bpf.o");
}

/// `s` for the program's lifetime (cases built from the running kernel's BTF ids).
fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

#[test]
fn ksym_btf_id_loads_agree_with_the_kernel() {
    let Ok(btf) = bpflab_btf::Btf::from_vmlinux() else {
        println!("SKIP: no kernel BTF");
        return;
    };
    let task = btf.find_by_name("task_struct", bpflab_btf::BtfKind::Struct).expect("task_struct");
    let bad = 0x7fff_fff0_i32;
    let func = btf.find_by_name("schedule", bpflab_btf::BtfKind::Func).expect("schedule");
    let load = |id: i64| leak(format!("r1 = btf_id {id} ll\nr0 = 0\nexit"));
    let cases = vec![
        // A struct's id is neither a variable nor a function.
        Case {
            name: "ksym_struct_id",
            prog_type: ProgType::SocketFilter,
            asm: load(i64::from(task)),
            maps: Vec::new(),
            expect: Expect::Reject(leak(format!(
                "pseudo btf_id {task} in ldimm64 isn't KIND_VAR or KIND_FUNC"
            ))),
        },
        // A function's address: read-only memory of size 0 (kept, compared, not read).
        Case {
            name: "ksym_func_address",
            prog_type: ProgType::SocketFilter,
            asm: leak(format!("r1 = btf_id {func} ll\nr0 = 0\nif r1 == 0 goto +1\nr0 = 1\nexit")),
            maps: Vec::new(),
            expect: Expect::Accept,
        },
        Case {
            name: "ksym_func_read",
            prog_type: ProgType::SocketFilter,
            asm: leak(format!("r1 = btf_id {func} ll\nr0 = *(u8 *)(r1 +0)\nexit")),
            maps: Vec::new(),
            expect: Expect::Reject("R1 min value is outside of the allowed memory range"),
        },
        Case {
            name: "ksym_func_write",
            prog_type: ProgType::SocketFilter,
            asm: leak(format!("r1 = btf_id {func} ll\nr0 = 0\n*(u8 *)(r1 +0) = r0\nexit")),
            maps: Vec::new(),
            expect: Expect::Reject("R1 cannot write into rdonly_mem"),
        },
        Case {
            name: "ksym_invalid_id",
            prog_type: ProgType::SocketFilter,
            asm: load(i64::from(bad)),
            maps: Vec::new(),
            expect: Expect::Reject(leak(format!("ldimm64 insn specifies invalid btf_id {bad}."))),
        },
    ];
    run(&cases);
}

/// The typed ksym fixture: where this kernel cannot resolve the symbol (no data symbols in
/// kallsyms) both refuse with the same line; where it can, bpflab has no verdict (typed
/// ksym pointers are not modelled), never a different one.
#[test]
fn ksym_fixture_agrees_with_the_kernel_or_is_unsupported() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../programs/corpus/ksym_vars.bpf.o");
    let bytes = std::fs::read(&path).expect("ksym_vars.bpf.o is built");
    let obj = bpflab_loader::load(&bytes, &LoadOptions::for_path(&path)).expect("loads");
    let coll = &obj.collection;
    let report = verify(coll, 0, &HelperRegistry::standard(), &Config::default());
    if !kernel_available() {
        return;
    }
    let k = kernel_verdict(coll, 0, &VerdictOptions::default()).expect("the kernel decides");
    match (&report.verdict, k.accepted) {
        (Verdict::Rejected(e), false) => {
            assert_eq!(Some(e.message.as_str()), k.error_line.as_deref());
            assert!(e.message.starts_with("ldimm64 failed to find the address"), "{e:?}");
        }
        (Verdict::Unsupported(_), true) => {}
        (got, accepted) => panic!("bpflab {got:?}, the kernel accepted={accepted}: {}", k.log),
    }
}
