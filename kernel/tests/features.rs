//! The kernel feature probe against the running kernel: facts every kernel with BPF shares,
//! the probe's JSON round trip, and how a profile restricts it. Prints one `SKIP:` line when
//! bpf(2) is unavailable.

use bpflab_kernel::features::{features, probe_features};
use bpflab_kernel::{KernelEngine, probe};
use bpflab_vm::helpers::HelperRegistry;
use bpflab_vm::isa::{AluOp, CallKind, Insn, Operand, Reg, Width};
use bpflab_vm::profile::{KernelProfile, Missing};
use bpflab_vm::{Collection, MapType, ProgType, Program};

fn kernel_available() -> bool {
    match probe() {
        Ok(()) => true,
        Err(e) => {
            println!("SKIP: bpf(2) unavailable: {e}");
            false
        }
    }
}

/// Helper ids used below.
const MAP_LOOKUP_ELEM: u32 = 1;
const XDP_ADJUST_HEAD: u32 = 44;
const XDP_ADJUST_META: u32 = 54;

#[test]
fn the_probe_runs_once_per_process_and_finds_what_every_bpf_kernel_has() {
    if !kernel_available() {
        return;
    }
    let cached = features().expect("probe");
    assert!(std::ptr::eq(cached, features().expect("probe")), "probed once, then cached");
    assert_eq!(cached.source, "running");
    // The facts below hold on every kernel with BPF; a fresh probe, since `features()` may be
    // restricted by BPFLAB_KERNEL_FEATURES.
    let f = &probe_features().expect("probe");
    assert!(f.version_code >= bpflab_vm::profile::kernel_version_code(4, 18, 0), "{f:?}");
    for t in [ProgType::SocketFilter, ProgType::SchedCls, ProgType::Xdp] {
        assert!(f.prog_type_available(t), "{t:?}");
        assert!(f.test_run_available(t), "test run of {t:?}");
        assert!(f.helper_available(t, MAP_LOOKUP_ELEM), "map_lookup_elem in {t:?}");
    }
    // The kernel has no test run for these types (they have no test_run op).
    for t in [ProgType::Kprobe, ProgType::SockOps, ProgType::SkMsg] {
        assert!(!f.test_run_available(t), "test run of {t:?}");
    }
    assert!(f.helper_available(ProgType::Xdp, XDP_ADJUST_HEAD));
    assert!(!f.helper_available(ProgType::SocketFilter, XDP_ADJUST_HEAD));
    for t in [MapType::Hash, MapType::Array, MapType::PercpuArray, MapType::LpmTrie] {
        assert!(f.map_type_available(t), "{t:?}");
    }
    assert!(f.helpers.len() >= 20, "helpers probed for {} types", f.helpers.len());
}

#[test]
fn the_probe_survives_its_json() {
    if !kernel_available() {
        return;
    }
    let f = probe_features().expect("probe");
    let back = KernelProfile::from_json(&f.to_json(), "running").expect("parses");
    assert_eq!(back, f);
}

/// A program calling `bpf_xdp_adjust_meta`: its type and helper as `missing_for_program`
/// sees them.
fn meta_program() -> Collection {
    let r2 = Insn::Alu { width: Width::W64, op: AluOp::Mov, dst: Reg::R2, src: Operand::Imm(0) };
    let call = Insn::Call { kind: CallKind::Helper, imm: XDP_ADJUST_META as i32, off: 0 };
    let mut c = Collection::default();
    c.programs.push(Program::raw("meta", vec![r2, call, Insn::Exit]).with_type(ProgType::Xdp));
    c
}

#[test]
fn a_restricting_profile_removes_what_it_lacks() {
    if !kernel_available() {
        return;
    }
    let f = features().expect("probe");
    let mut limit = KernelProfile::bpflab(&HelperRegistry::standard());
    limit.helpers.get_mut(&ProgType::Xdp).expect("xdp").remove(&XDP_ADJUST_META);
    limit.attach.kprobe = false;
    let poorer = f.restricted_by(&limit);
    assert!(!poorer.helper_available(ProgType::Xdp, XDP_ADJUST_META));
    assert!(!poorer.attach.kprobe);
    assert_eq!(
        poorer.helper_available(ProgType::Xdp, XDP_ADJUST_HEAD),
        f.helper_available(ProgType::Xdp, XDP_ADJUST_HEAD)
    );
    let c = meta_program();
    assert_eq!(
        poorer.missing_for_program(&c, 0),
        [Missing::Helper { prog_type: ProgType::Xdp, id: XDP_ADJUST_META }]
    );
    assert_eq!(
        poorer.missing_for_program(&c, 0)[0].to_string(),
        "helper bpf_xdp_adjust_meta#54 in xdp programs"
    );
    // The probe's verdict is the kernel's: where it says the helper is there, the program
    // loads; where it says it is not, the kernel refuses it. (A fresh probe: `features()`
    // may be restricted by BPFLAB_KERNEL_FEATURES.)
    let real = probe_features().expect("probe");
    let loads = KernelEngine.load_collection(&c);
    assert_eq!(loads.is_ok(), real.helper_available(ProgType::Xdp, XDP_ADJUST_META), "{loads:?}");
}

#[test]
fn a_program_left_out_at_load_reports_it_when_run() {
    if !kernel_available() {
        return;
    }
    let mut c = meta_program();
    c.programs.push(
        Program::raw(
            "zero",
            vec![
                Insn::Alu { width: Width::W64, op: AluOp::Mov, dst: Reg::R0, src: Operand::Imm(2) },
                Insn::Exit,
            ],
        )
        .with_type(ProgType::Xdp),
    );
    let k = KernelEngine.load_collection_except(&c, &[0]).expect("the other program loads");
    assert!(k.program(0).is_none());
    assert!(k.program(1).is_some());
    let mut k: Box<dyn bpflab_vm::Loaded> = Box::new(k);
    let err = k.run(0, &bpflab_vm::RunInput::data(vec![0u8; 64])).unwrap_err();
    assert!(err.to_string().contains("left out at load"), "{err}");
    let out = k.run(1, &bpflab_vm::RunInput::data(vec![0u8; 64])).expect("runs");
    assert_eq!(out.r0, 2);
}

/// Maps without keys (queue, stack, bloom filter) take a null key through bpf(2): pushes,
/// peeks and bloom-filter membership from user space work on the kernel engine as in bpflab.
#[test]
fn keyless_maps_take_user_space_updates() {
    if !kernel_available() {
        return;
    }
    let f = features().expect("probe");
    for t in [MapType::Queue, MapType::BloomFilter] {
        if !f.map_type_available(t) {
            println!("SKIP: keyless map updates: kernel lacks map type {}", t.name());
            return;
        }
    }
    let queue = bpflab_kernel::KernelMap::create(MapType::Queue, 0, 8, 4).expect("queue");
    queue.update(&[], &7u64.to_ne_bytes()).expect("push");
    queue.update(&[], &9u64.to_ne_bytes()).expect("push");
    assert_eq!(queue.lookup(&[]).expect("peek"), Some(7u64.to_ne_bytes().to_vec()));
    let mut world =
        bpflab_vm::world::World::new(&[bpflab_vm::MapSpec::new("q", MapType::Queue, 0, 8, 4)], 1)
            .expect("world");
    world.update(0, &[], &7u64.to_ne_bytes(), 0).expect("push");
    world.update(0, &[], &9u64.to_ne_bytes(), 0).expect("push");
    assert_eq!(world.lookup(0, &[]).expect("peek"), Some(7u64.to_ne_bytes().to_vec()));
    let bloom = bpflab_kernel::KernelMap::create(MapType::BloomFilter, 0, 4, 16).expect("bloom");
    bloom.update(&[], &5u32.to_ne_bytes()).expect("add");
}
