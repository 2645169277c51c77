//! Loading clang-built objects into the kernel the way libbpf does: the object's BTF with
//! `BPF_BTF_LOAD`, maps typed by it, programs with their load flags and BTF func/line info.
//! Every `programs/tests` object whose program types this kernel accepts must load; the
//! tests also show what each piece is needed for. Each test prints one `SKIP:` line when
//! bpf(2) is unavailable.

use std::path::{Path, PathBuf};

use bpflab_kernel::features::features;
use bpflab_kernel::{KernelBtf, KernelEngine, KernelError, KernelMap, possible_cpus, probe};
use bpflab_loader::{LoadOptions, Object};
use bpflab_vm::ProgType;
use bpflab_vm::isa::{AluOp, Insn, Operand, Reg, Width};
use bpflab_vm::profile::{KernelProfile, Missing};
use bpflab_vm::{Collection, MapType};

/// True if the kernel can be used; otherwise prints the one `SKIP:` line.
fn kernel_available() -> bool {
    match probe() {
        Ok(()) => true,
        Err(e) => {
            println!("SKIP: bpf(2) unavailable: {e}");
            false
        }
    }
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../programs/tests")
}

/// The sizes user space gives maps a fixture leaves unsized (`bpf_map__set_max_entries`).
const MAP_SIZES: &[(&str, &str, u32)] =
    &[("user_sized_maps.bpf.o", "len_counts", 64), ("user_sized_maps.bpf.o", "slots", 16)];

/// Loads an object as libbpf would for this kernel: `__kconfig` externs read its configuration.
fn load_object(path: &Path) -> Object {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let mut opts = LoadOptions::for_path(path);
    let file = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    for (fixture, name, size) in MAP_SIZES {
        if *fixture == file {
            opts.map_sizes.insert(name.to_string(), *size);
        }
    }
    if let Ok(f) = features() {
        opts.kconfig = f.kconfig.clone();
        opts.kernel_version = Some(f.version_code);
    }
    bpflab_loader::load(&bytes, &opts).unwrap_or_else(|e| panic!("load {}: {e}", path.display()))
}

fn fixture(name: &str) -> Object {
    load_object(&fixtures().join(name))
}

/// Left out: libbpf >= 1.0 refuses legacy `SEC("maps")` definitions when opening the object.
const LEGACY: &str = "legacy_maps.bpf.o";

/// What loading every fixture on a kernel with `features` did.
#[derive(Debug, Default)]
struct FixtureLoads {
    /// Objects that loaded (with the programs the kernel has features for).
    loaded: Vec<String>,
    /// One `SKIP:` line per program left out: the object, the program, what the kernel lacks.
    skipped: Vec<String>,
}

/// Loads every fixture object into the kernel, leaving out the programs `features` says the
/// kernel cannot load (and printing one `SKIP:` line for each); every other program must load.
fn load_every_fixture(features: &KernelProfile) -> FixtureLoads {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .expect("programs/tests")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".bpf.o"))
        .collect();
    paths.sort();
    let mut out = FixtureLoads::default();
    for path in &paths {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        if file == LEGACY {
            continue;
        }
        let obj = load_object(path);
        assert!(obj.collection.btf.is_some(), "{file}: no BTF");
        let maps_missing: Vec<String> = features
            .missing_for_load(&obj.collection)
            .into_iter()
            .filter(|m| matches!(m, Missing::MapType(_)))
            .map(|m| m.to_string())
            .collect();
        if !maps_missing.is_empty() {
            let line = format!("SKIP: {file}: kernel lacks {}", maps_missing.join(", "));
            println!("{line}");
            out.skipped.push(line);
            continue;
        }
        let mut skip = Vec::new();
        for (i, p) in obj.collection.programs.iter().enumerate() {
            if p.prog_type == ProgType::Unspec {
                // A section libbpf does not know: libbpf loads it only once the user sets its
                // type (bpf_program__set_type); nothing the kernel lacks.
                println!("{file} {}: no program type (section {:?}); left out", p.name, p.section);
                skip.push(i);
                continue;
            }
            let missing = features.missing_for_program(&obj.collection, i);
            if !missing.is_empty() {
                let what: Vec<String> = missing.iter().map(ToString::to_string).collect();
                let line = format!("SKIP: {file} {}: kernel lacks {}", p.name, what.join(", "));
                println!("{line}");
                out.skipped.push(line);
                skip.push(i);
            }
        }
        if skip.len() == obj.collection.programs.len() {
            continue;
        }
        match KernelEngine.load_collection_except(&obj.collection, &skip) {
            Ok(k) => {
                assert!(k.btf().is_some(), "{file}: BTF not kept");
                assert_eq!(k.program_count(), obj.collection.programs.len(), "{file}");
                for i in 0..obj.collection.programs.len() {
                    assert_eq!(k.program(i).is_some(), !skip.contains(&i), "{file} program {i}");
                }
                assert_eq!(k.maps().len(), obj.collection.maps.len(), "{file}");
                out.loaded.push(file);
            }
            Err(e) => panic!("{file}: not loadable, though the kernel has its features: {e}"),
        }
    }
    out
}

#[test]
fn every_fixture_object_loads_with_its_btf() {
    if !kernel_available() {
        return;
    }
    let features = features().expect("probed");
    let loads = load_every_fixture(features);
    println!("loaded: {:?}", loads.loaded);
    // These need BTF to load at all; each loads unless the kernel lacks one of its features
    // (and then it has a SKIP line).
    for needed in ["callbacks.bpf.o", "helpers_misc.bpf.o", "calls.bpf.o", "events.bpf.o"] {
        let skipped = loads.skipped.iter().any(|l| l.starts_with(&format!("SKIP: {needed}")));
        assert!(skipped || loads.loaded.iter().any(|f| f == needed), "{needed} did not load");
    }
}

/// On a kernel that refuses `bpf_xdp_adjust_meta` in XDP programs (as one 6.18 machine does),
/// only the program calling it is left out, with one `SKIP:` line; the rest of `xdp.bpf.o`
/// and every other object still load. The kernel here is made to look like that one.
#[test]
fn a_kernel_without_xdp_adjust_meta_skips_only_that_program() {
    if !kernel_available() {
        return;
    }
    let mut poorer = features().expect("probed").clone();
    let xdp = poorer.helpers.entry(ProgType::Xdp).or_default();
    if !xdp.remove(&54) {
        println!(
            "SKIP: simulated missing helper: kernel lacks helper bpf_xdp_adjust_meta#54 already"
        );
    }
    let loads = load_every_fixture(&poorer);
    let meta: Vec<&String> = loads.skipped.iter().filter(|l| l.contains("xdp.bpf.o")).collect();
    assert_eq!(
        meta,
        ["SKIP: xdp.bpf.o xdp_meta: kernel lacks helper bpf_xdp_adjust_meta#54 in xdp programs"],
        "{:?}",
        loads.skipped
    );
    assert!(loads.loaded.iter().any(|f| f == "xdp.bpf.o"), "the other XDP programs load");
    let full = load_every_fixture(features().expect("probed"));
    assert_eq!(loads.loaded, full.loaded, "every object that loads on the full kernel loads");
}

/// callbacks.bpf.o: bpf_loop and bpf_for_each_map_elem callbacks need BTF func_info.
#[test]
fn callbacks_need_func_info() {
    if !kernel_available() {
        return;
    }
    let obj = fixture("callbacks.bpf.o");
    let mut bare = obj.collection.clone();
    bare.btf = None;
    match KernelEngine.load_collection(&bare) {
        Err(KernelError::Rejected { log }) => {
            assert!(log.contains("missing btf func_info"), "{log}");
        }
        other => panic!("expected a verifier rejection, got {other:?}"),
    }
    KernelEngine.load_collection(&obj.collection).expect("with BTF");
}

/// helpers_misc.bpf.o: a program may only take the bpf_spin_lock in a map value BTF describes.
#[test]
fn spin_lock_map_needs_btf() {
    if !kernel_available() {
        return;
    }
    let obj = fixture("helpers_misc.bpf.o");
    let locked = obj.collection.map_index("locked").unwrap();
    assert!(obj.collection.maps[locked].btf_value_type_id.is_some());
    let mut untyped = obj.collection.clone();
    for m in &mut untyped.maps {
        (m.btf_key_type_id, m.btf_value_type_id) = (None, None);
    }
    match KernelEngine.load_collection(&untyped) {
        Err(KernelError::Rejected { log }) => {
            assert!(log.contains("has to have BTF in order to use bpf_spin_lock"), "{log}");
        }
        other => panic!("expected a verifier rejection, got {other:?}"),
    }
    KernelEngine.load_collection(&obj.collection).expect("with BTF");
    // The map alone is created with its BTF too.
    let btf = KernelBtf::load(obj.collection.btf.as_deref().unwrap()).expect("BTF");
    KernelMap::from_spec_with_btf(&obj.collection.maps[locked], None, Some(&btf)).expect("map");
}

/// calls.bpf.o: syscall programs must be loaded sleepable (BPF_F_SLEEPABLE from the section).
#[test]
fn syscall_programs_need_the_sleepable_flag() {
    if !kernel_available() {
        return;
    }
    let obj = fixture("calls.bpf.o");
    let mut flagless = obj.collection.clone();
    for p in &mut flagless.programs {
        p.flags = 0;
    }
    match KernelEngine.load_collection(&flagless) {
        Err(KernelError::Rejected { log }) => {
            assert!(log.contains("Syscall programs can only be sleepable"), "{log}");
        }
        other => panic!("expected a verifier rejection, got {other:?}"),
    }
    KernelEngine.load_collection(&obj.collection).expect("with flags");
}

/// events.bpf.o: a perf event array without max_entries gets one slot per possible CPU (the
/// kernel refuses max_entries 0); the ring buffer keeps its size.
#[test]
fn perf_event_array_is_sized_to_the_cpus() {
    if !kernel_available() {
        return;
    }
    let obj = fixture("events.bpf.o");
    let perf = obj.collection.map_index("perf_events").unwrap();
    let rb = obj.collection.map_index("rb").unwrap();
    assert_eq!(obj.collection.maps[perf].max_entries, 0);
    let k = KernelEngine.load_collection(&obj.collection).expect("load");
    assert_eq!(k.maps()[perf].map_type(), MapType::PerfEventArray);
    assert_eq!(k.maps()[perf].max_entries(), possible_cpus().unwrap());
    assert_eq!(k.maps()[rb].max_entries(), 4096);
}

/// A global subprogram is verified on its own, so it may not take packet pointers; libbpf
/// makes hidden ones static in the BTF (loader fixture hidden.bpf.c).
#[test]
fn hidden_subprogram_is_verified_in_its_callers_context() {
    if !kernel_available() {
        return;
    }
    let obj = load_object(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../loader/tests/fixtures/hidden.bpf.o"),
    );
    KernelEngine.load_collection(&obj.collection).expect("load");
}

/// With line info, the verifier log quotes the source.
#[test]
fn verifier_log_quotes_source_lines() {
    if !kernel_available() {
        return;
    }
    let obj = fixture("calls.bpf.o");
    let mut collection: Collection = obj.collection.clone();
    collection.programs.retain(|p| p.name == "calls_xdp");
    let p = &mut collection.programs[0];
    assert_eq!(p.insns[0].slots(), 1);
    // r0 = r9: r9 is not initialised at the entry.
    p.insns[0] =
        Insn::Alu { width: Width::W64, op: AluOp::Mov, dst: Reg::R0, src: Operand::Reg(Reg::R9) };
    match KernelEngine.load_collection(&collection) {
        Err(KernelError::Rejected { log }) => {
            assert!(log.contains("R9 !read_ok"), "{log}");
            assert!(log.contains("calls.bpf.c:"), "no source line in the log:\n{log}");
        }
        other => panic!("expected a verifier rejection, got {other:?}"),
    }
}

/// A minimal BTF blob: the header, `types`, and the string section `"\0x\0"`.
fn blob(types: &[u32]) -> Vec<u8> {
    let strings = b"\0x\0";
    let type_len = (types.len() * 4) as u32;
    let mut out = Vec::new();
    for word in [0xeb9f_u16.to_le_bytes(), [1, 0]] {
        out.extend(word);
    }
    for word in [24, 0, type_len, type_len, strings.len() as u32] {
        out.extend(u32::to_le_bytes(word));
    }
    for t in types {
        out.extend(t.to_le_bytes());
    }
    out.extend(strings);
    out
}

/// A BTF the kernel refuses comes back as a typed error carrying the BTF checker's log, from
/// `KernelBtf::load` and from loading a collection.
#[test]
fn btf_rejection_is_typed_with_the_log() {
    if !kernel_available() {
        return;
    }
    // A 4-byte INT named "x" of 128 bits: the kernel checks nr_bits against the size.
    let int = |bits: u32| blob(&[1, 1 << 24, 4, bits]);
    KernelBtf::load(&int(32)).expect("a valid INT loads");
    match KernelBtf::load(&int(0x80)) {
        Err(KernelError::BtfRejected { log }) => {
            assert!(log.contains("[1] INT x"), "{log}");
            assert!(!log.trim().is_empty());
        }
        other => panic!("expected BtfRejected, got {other:?}"),
    }
    // An object's BTF as clang leaves it (DATASEC size 0, as in this DATASEC "x" of one VAR)
    // is what libbpf's fix-up exists for.
    let var_and_datasec =
        blob(&[1, 14 << 24, 2, 1, 1, 1 << 24, 4, 32, 1, (15 << 24) | 1, 0, 1, 0, 4]);
    let mut collection = fixture("globals.bpf.o").collection;
    collection.btf = Some(var_and_datasec);
    match KernelEngine.load_collection(&collection) {
        Err(KernelError::BtfRejected { log }) => assert!(log.contains("DATASEC"), "{log}"),
        other => panic!("expected BtfRejected, got {other:?}"),
    }
}
