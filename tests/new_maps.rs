//! Map kinds beyond the classic ones: task local storage, user ring buffers and arenas, on
//! the interpreter and the JIT. programs/tests/new_maps.bpf.o is also compared with the
//! kernel by tests/fixtures_vs_kernel.rs.

use std::path::Path;

use bpflab_jit::JitEngine;
use bpflab_kernel::KernelEngine;
use bpflab_loader::{LoadOptions, Object};
use bpflab_vm::asm::assemble;
use bpflab_vm::helpers::HelperError;
use bpflab_vm::kobj::Task;
use bpflab_vm::maps::{MapError, UserRingBuf};
use bpflab_vm::spec::KfuncRef;
use bpflab_vm::world::World;
use bpflab_vm::{
    Collection, Engine, EngineError, Interpreter, MapSpec, MapType, ProgType, Program, RunInput,
    VmErrorKind,
};

fn load(name: &str) -> Option<Object> {
    if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        println!("SKIP: {name}: kernel lacks /sys/kernel/btf/vmlinux (kfunc and task BTF ids)");
        return None;
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("programs/tests").join(name);
    let bytes = std::fs::read(&path).expect("fixture");
    Some(bpflab_loader::load(&bytes, &LoadOptions::for_path(&path)).expect("loads"))
}

fn syscall_input() -> RunInput {
    let mut input = RunInput::default();
    input.ctx = Some(vec![0; 8]);
    input
}

/// `store_res` of new_maps.bpf.o.
fn store_res(world: &World, c: &Collection) -> Vec<i64> {
    let bss = c.map_index("new_maps.bss").expect("bss");
    let v = world.lookup(bss, &0u32.to_le_bytes()).expect("lookup").expect("value");
    v.chunks(8).map(|b| i64::from_le_bytes(b.try_into().unwrap())).collect()
}

/// Pushes user ring buffer records (first u32 of each: 5, then a discarded one, then 7).
fn produce(world: &mut World, c: &Collection) {
    let idx = c.map_index("user_rb").expect("user_rb");
    let (map, mem) = world.map_mut(idx).expect("map");
    map.push(mem, &5u32.to_le_bytes(), 0).expect("push");
    let rb = map.as_any_mut().downcast_mut::<UserRingBuf>().expect("a user ring buffer");
    rb.push_discarded(12).expect("discard");
    map.push(mem, &[7, 0, 0, 0, 0xff, 0xff], 0).expect("push");
}

#[test]
fn task_storage_and_user_ringbuf_on_interpreter_and_jit() {
    let Some(obj) = load("new_maps.bpf.o") else { return };
    let c = &obj.collection;
    let task = c.programs.iter().position(|p| p.name == "task_store_prog").unwrap();
    let urb = c.programs.iter().position(|p| p.name == "user_rb_prog").unwrap();
    let store = c.map_index("task_store").unwrap();
    let pid = 4242u32;

    // Interpreter.
    let mut inst = Interpreter::default().instantiate(c).expect("instantiate");
    inst.world.kernel.set_current(Task::new(pid)).expect("task");
    assert_eq!(inst.run(task, &syscall_input()).expect("run").r0, 0);
    assert_eq!(store_res(&inst.world, c)[..8], [1, 1, 0, -2, 1, 41, 1, 1]);
    // User side: the current task's storage is named by its pid.
    let v = inst.world.lookup(store, &pid.to_le_bytes()).expect("lookup");
    assert_eq!(v, Some(41i64.to_le_bytes().to_vec()));
    // Local storage has no get_next_key, as in the kernel.
    let unsupported = MapError::NotSupported { map_type: "task_storage" };
    assert_eq!(inst.world.keys(store), Err(unsupported));
    // An empty ring drains nothing; records then drain in order, discarded ones skipped.
    assert_eq!(inst.run(urb, &syscall_input()).expect("run").r0, 0);
    assert_eq!(store_res(&inst.world, c)[8..11], [0, 0, -22]);
    produce(&mut inst.world, c);
    inst.run(urb, &syscall_input()).expect("run");
    assert_eq!(store_res(&inst.world, c)[8..11], [2, 12, -22]);

    // JIT: the same.
    let mut jit = JitEngine::default().instantiate(c).expect("jit");
    jit.world_mut().kernel.set_current(Task::new(pid)).expect("task");
    assert_eq!(jit.run(task, &syscall_input()).expect("run").r0, 0);
    assert_eq!(store_res(jit.world(), c)[..8], [1, 1, 0, -2, 1, 41, 1, 1]);
    produce(jit.world_mut(), c);
    jit.run(urb, &syscall_input()).expect("run");
    assert_eq!(store_res(jit.world(), c)[8..11], [2, 12, -22]);
}

#[test]
fn user_ringbuf_refuses_records_without_room() {
    let spec = MapSpec::new("u", MapType::UserRingbuf, 0, 0, 4096);
    let mut world = World::new(&[spec], 1).expect("world");
    let (map, mem) = world.map_mut(0).unwrap();
    map.push(mem, &[0; 4000], 0).expect("fits");
    assert_eq!(map.push(mem, &[0; 100], 0), Err(MapError::NoSpace));
    // The syscall's element operations are not supported, as in the kernel.
    assert_eq!(world.lookup(0, &[]), Err(MapError::NotSupported { map_type: "user_ringbuf" }));
}

#[test]
fn storage_maps_follow_the_kernels_creation_rules() {
    for t in [MapType::TaskStorage, MapType::SkStorage, MapType::InodeStorage, MapType::CgrpStorage]
    {
        let mut spec = MapSpec::new("s", t, 4, 8, 0);
        spec.flags = 1; // BPF_F_NO_PREALLOC
        assert!(
            World::new(std::slice::from_ref(&spec), 1).is_err(),
            "{t:?} without BTF types must be refused"
        );
        spec.btf_key_type_id = Some(1);
        spec.btf_value_type_id = Some(2);
        assert!(World::new(std::slice::from_ref(&spec), 1).is_ok(), "{t:?}");
        spec.max_entries = 10;
        assert!(World::new(std::slice::from_ref(&spec), 1).is_err(), "{t:?} with max_entries");
    }
}

#[test]
fn arena_loads_and_its_kfuncs_fault_naming_the_feature() {
    let Some(obj) = load("arena.bpf.o") else { return };
    let c = &obj.collection;
    let arena = c.map_index("arena").expect("arena map");
    assert_eq!(c.maps[arena].map_type, MapType::Arena);
    assert_eq!((c.maps[arena].max_entries, c.maps[arena].flags), (4, 1 << 10));
    // __ulong(map_extra, 1 << 44) is parsed (libbpf's enum form).
    assert_eq!(obj.maps[arena].map_extra, 1 << 44);
    let names: Vec<&str> = c.kfuncs.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(names, ["bpf_arena_alloc_pages", "bpf_arena_free_pages"]);
    // Both engines create the arena; the alloc kfunc is where running stops.
    let src = "r1 = 0\nr2 = 0\nr3 = 1\nr4 = -1\nr5 = 0\ncall kfunc 3\nexit";
    let raw = Collection {
        maps: c.maps.clone(),
        programs: vec![Program::raw("t", assemble(src).unwrap()).with_type(ProgType::Xdp)],
        kfuncs: vec![KfuncRef { btf_id: 3, name: "bpf_arena_alloc_pages".into() }],
        ..Collection::default()
    };
    let engines: Vec<Box<dyn Engine>> =
        vec![Box::new(Interpreter::default()), Box::new(JitEngine::default())];
    for engine in engines {
        engine.load(c).expect("the arena object instantiates");
        let mut l = engine.load(&raw).expect("load");
        match l.run(0, &RunInput::data(vec![0; 64])) {
            Err(EngineError::Fault(e)) => {
                assert_eq!(
                    *e.kind(),
                    VmErrorKind::KfuncFailed {
                        name: "bpf_arena_alloc_pages",
                        error: HelperError::Unsupported { what: "arena address space" },
                    }
                );
                assert_eq!(
                    e.kind().to_string(),
                    "kfunc bpf_arena_alloc_pages: unsupported: arena address space"
                );
            }
            other => panic!("{}: {other:?}", engine.name()),
        }
    }
    // The fixture's own program (with the addr_space_cast clang emitted) stops at the same
    // kfunc.
    let prog = c.programs.iter().position(|p| p.name == "arena_alloc").unwrap();
    let has_cast = c.programs[prog]
        .insns
        .iter()
        .any(|i| matches!(i, bpflab_vm::isa::Insn::AddrSpaceCast { dst_as: 0, src_as: 1, .. }));
    assert!(has_cast, "arena_alloc converts an arena pointer");
    let engines: Vec<Box<dyn Engine>> =
        vec![Box::new(Interpreter::default()), Box::new(JitEngine::default())];
    for engine in engines {
        let mut l = engine.load(c).expect("load");
        let out = l.run(prog, &RunInput::default());
        assert!(
            matches!(&out, Err(EngineError::Fault(e)) if matches!(e.kind(),
                VmErrorKind::KfuncFailed { name: "bpf_arena_alloc_pages", .. })),
            "{}: {out:?}",
            engine.name()
        );
    }
    // The kernel side, where it can: this one refuses arena maps (EPERM).
    match KernelEngine.load(c) {
        Ok(_) => println!("kernel: arena.bpf.o loads"),
        Err(e) => println!("SKIP: arena.bpf.o in the kernel: kernel lacks arena maps here ({e})"),
    }
}

#[test]
fn sk_storage_is_keyed_by_the_owner_pointer_and_refused_in_xdp() {
    // r6 and r7 stand for two owners (any non-NULL pointer the program holds).
    let src = "
        r6 = r10
        r6 += -8
        r7 = r10
        r7 += -16
        r1 = map[idx:0] ll
        r2 = r6
        r3 = 0
        r4 = 1
        call bpf_sk_storage_get
        if r0 == 0 goto fail
        *(u64 *)(r0 + 0) = 5
        r8 = r0
        r1 = map[idx:0] ll
        r2 = r6
        r3 = 0
        r4 = 0
        call bpf_sk_storage_get
        if r0 != r8 goto fail
        r1 = map[idx:0] ll
        r2 = r7
        r3 = 0
        r4 = 0
        call bpf_sk_storage_get
        if r0 != 0 goto fail
        r1 = map[idx:0] ll
        r2 = r6
        call bpf_sk_storage_delete
        r9 = r0
        r1 = map[idx:0] ll
        r2 = r6
        call bpf_sk_storage_delete
        r0 <<= 8
        r0 |= r9
        exit
    fail:
        r0 = 99
        exit";
    let mut spec = MapSpec::new("sk_store", MapType::SkStorage, 4, 8, 0);
    spec.flags = 1;
    spec.btf_key_type_id = Some(1);
    spec.btf_value_type_id = Some(2);
    let insns = assemble(src).unwrap_or_else(|e| panic!("{e}"));
    let engines: Vec<Box<dyn Engine>> =
        vec![Box::new(Interpreter::default()), Box::new(JitEngine::default())];
    for engine in engines {
        for (prog_type, ok) in [(ProgType::SchedCls, true), (ProgType::Xdp, false)] {
            let c = Collection {
                maps: vec![spec.clone()],
                programs: vec![Program::raw("t", insns.clone()).with_type(prog_type)],
                ..Collection::default()
            };
            let mut l = engine.load(&c).expect("load");
            let out = l.run(0, &RunInput::data(vec![0; 64]));
            if ok {
                // delete: 0, then -ENOENT (0xfe in the low byte after the shift).
                assert_eq!(out.expect("run").r0, (-2i64 as u64) << 8, "{}", engine.name());
            } else {
                assert!(
                    matches!(&out, Err(EngineError::Fault(e)) if matches!(e.kind(),
                        VmErrorKind::Helper { name: "bpf_sk_storage_get", error: HelperError::NotAllowed { .. } })),
                    "{}: XDP programs may not call bpf_sk_storage_get: {out:?}",
                    engine.name()
                );
            }
        }
    }
}
