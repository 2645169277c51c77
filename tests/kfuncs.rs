//! kfuncs: the loader records each kfunc call's name, both engines (interpreter and JIT) run
//! them by name with the kernel's semantics, and faults name the kfunc. The fixture
//! programs/tests/kfuncs.bpf.o is also compared with the kernel by tests/fixtures_vs_kernel.rs.

use std::path::Path;

use bpflab_jit::JitEngine;
use bpflab_loader::{LoadOptions, Object};
use bpflab_vm::asm::assemble;
use bpflab_vm::helpers::HelperError;
use bpflab_vm::spec::KfuncRef;
use bpflab_vm::{
    Collection, Engine, EngineError, Interpreter, Loaded, ProgType, Program, RunInput, VmErrorKind,
};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("programs/tests").join(name))
        .expect("fixture")
}

/// The kfuncs fixture, or None (with a SKIP line) when there is no kernel BTF to resolve
/// kfunc ids against.
fn kfuncs_object() -> Option<Object> {
    if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        println!("SKIP: kfuncs.bpf.o: kernel lacks /sys/kernel/btf/vmlinux (kfunc BTF ids)");
        return None;
    }
    let opts = LoadOptions::for_path("kfuncs.bpf.o");
    Some(bpflab_loader::load(&fixture("kfuncs.bpf.o"), &opts).expect("kfuncs.bpf.o loads"))
}

fn engines() -> Vec<Box<dyn Engine>> {
    vec![Box::new(Interpreter::default()), Box::new(JitEngine::default())]
}

/// The s64 results a program wrote at byte `off` of `kfuncs.bss`.
fn results(loaded: &mut dyn Loaded, c: &Collection, off: usize, n: usize) -> Vec<i64> {
    let bss = c.map_index("kfuncs.bss").expect("bss map");
    let v = loaded.map_lookup(bss, &0u32.to_le_bytes()).expect("lookup").expect("value");
    v[off..off + 8 * n].chunks(8).map(|b| i64::from_le_bytes(b.try_into().unwrap())).collect()
}

fn packet(name: &str) -> Vec<u8> {
    fixture(&format!("packets/{name}"))
}

#[test]
fn loader_records_kfunc_names_and_ids() {
    let Some(obj) = kfuncs_object() else { return };
    let names: Vec<&str> = obj.collection.kfuncs.iter().map(|k| k.name.as_str()).collect();
    for want in
        ["bpf_dynptr_from_xdp", "bpf_dynptr_slice", "bpf_iter_num_next", "bpf_task_from_pid"]
    {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    // One entry per kfunc, with the id every call instruction of it carries.
    assert_eq!(names.len(), 29, "{names:?}");
    for k in &obj.collection.kfuncs {
        assert!(k.btf_id > 0);
        let calls = obj
            .collection
            .programs
            .iter()
            .flat_map(|p| p.insns.iter())
            .filter(|i| {
                matches!(i, bpflab_vm::isa::Insn::Call { kind: bpflab_vm::isa::CallKind::Kfunc, imm, .. }
                    if *imm == k.btf_id as i32)
            })
            .count();
        assert!(calls > 0, "{} (btf id {}) is never called", k.name, k.btf_id);
    }
}

#[test]
fn xdp_dynptr_results_on_both_engines() {
    let Some(obj) = kfuncs_object() else { return };
    let c = &obj.collection;
    let prog = c.programs.iter().position(|p| p.name == "xdp_dynptr").unwrap();
    let pkt = packet("ipv4_udp.bin");
    for engine in engines() {
        let mut l = engine.load(c).expect("load");
        let out = l.run(prog, &RunInput::data(pkt.clone())).expect("run");
        assert_eq!(out.r0, 2, "{}: XDP_PASS", engine.name());
        let r = results(l.as_mut(), c, 0, 23);
        let len = pkt.len() as i64;
        assert_eq!(r[0], 0, "from_xdp");
        assert_eq!(r[1], len, "size");
        assert_eq!(r[2], 0x0008, "h_proto as loaded (network order 08 00)");
        assert_eq!(r[3], 1, "slice past the end is NULL");
        assert_eq!((r[4], r[5]), (0, i64::from(u32::from_le_bytes([8, 0, 0x45, 0]))));
        assert_eq!((r[6], r[7]), (0, -22), "write, write with flags");
        assert_eq!((r[8], r[9]), (-22, 1), "from_xdp flags 1 gives a NULL dynptr");
        assert_eq!((r[10], r[11]), (0, len - 14), "adjust to the payload");
        assert_eq!(r[12], 0x45, "first byte after Ethernet");
        assert_eq!((r[13], r[14], r[15], r[16]), (0, 0x1122_3344, 1, -22), "local dynptr");
        assert_eq!((r[17], r[18]), (0, len), "clone leaves the original");
        assert_eq!(r[19], 0, "XDP dynptrs are writable");
        assert_eq!((r[20], r[21], r[22]), (-22, -34, -7), "adjust/read errors");
        // The source MAC was rewritten and the first byte inverted.
        assert_eq!(&out.data[6..12], &[2, 0, 0, 0, 0, 1]);
        assert_eq!(out.data[0], pkt[0] ^ 0xff);
        assert_eq!(&out.data[12..], &pkt[12..]);
    }
}

#[test]
fn iterators_tc_socket_and_task_kfuncs_on_both_engines() {
    let Some(obj) = kfuncs_object() else { return };
    let c = &obj.collection;
    let idx = |n: &str| c.programs.iter().position(|p| p.name == n).unwrap();
    let pkt = packet("ipv4_tcp_syn.bin");
    for engine in engines() {
        let mut l = engine.load(c).expect("load");
        let name = engine.name();
        assert_eq!(l.run(idx("xdp_iter"), &RunInput::data(pkt.clone())).expect("run").r0, 2);
        let first20: i64 = pkt[..20].iter().map(|&b| i64::from(b)).sum();
        assert_eq!(results(l.as_mut(), c, 0xd0, 7), [45, 5, -22, 1, -7, -3, first20], "{name}");

        let out = l.run(idx("tc_dynptr"), &RunInput::data(pkt.clone())).expect("run");
        assert_eq!(out.r0, 0);
        let r = results(l.as_mut(), c, 0x110, 7);
        assert_eq!(r, [0, pkt.len() as i64, 0x0008, 0, i64::from(pkt[22]), 0, -22], "{name}");
        assert_eq!(out.data[22], pkt[22] - 1, "{name}: TTL decremented");
        assert_eq!(out.data[11], 0, "{name}: source MAC byte cleared");

        let out = l.run(idx("sf_dynptr"), &RunInput::data(pkt.clone())).expect("run");
        // A socket filter's skb starts after the Ethernet header (eth_type_trans pulled it).
        let l3 = pkt.len() as i64 - 14;
        assert_eq!(out.r0, l3 as u64);
        let r = results(l.as_mut(), c, 0x150, 5);
        assert_eq!(r, [0, 1, 1, -22, l3], "{name}: read-only skb dynptr");

        let mut input = RunInput::default();
        input.ctx = Some(vec![0; 8]);
        assert_eq!(l.run(idx("sys_task"), &input).expect("run").r0, 0);
        assert_eq!(results(l.as_mut(), c, 0x190, 3), [1, 1, 1], "{name}: task lookups");
    }
}

#[test]
fn cpumask_kfuncs_cover_the_simulated_cpus() {
    let Some(obj) = kfuncs_object() else { return };
    let c = &obj.collection;
    let prog = c.programs.iter().position(|p| p.name == "sys_cpumask").unwrap();
    let mut input = RunInput::default();
    input.ctx = Some(vec![0; 8]);
    // One CPU (the default): CPU 1 is past nr_cpu_ids, so the first zero is nr_cpu_ids.
    for engine in engines() {
        let mut l = engine.load(c).expect("load");
        assert_eq!(l.run(prog, &input).expect("run").r0, 0);
        let r = results(l.as_mut(), c, 0x1f0, 12);
        assert_eq!(r, [1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 10], "{}", engine.name());
    }
    // Two CPUs, as the kernel here has.
    let two = Interpreter::new(
        bpflab_vm::Config { ncpus: 2, ..bpflab_vm::Config::default() },
        bpflab_vm::standard_helpers(),
    );
    let mut l = two.load(c).expect("load");
    assert_eq!(l.run(prog, &input).expect("run").r0, 0);
    assert_eq!(results(l.as_mut(), c, 0x1f0, 12), [1, 0, 0, 1, 1, 1, 1, 1, 2, 1, 1, 10]);
}

#[test]
fn ringbuf_dynptrs_on_both_engines() {
    let Some(obj) = kfuncs_object() else { return };
    let c = &obj.collection;
    let prog = c.programs.iter().position(|p| p.name == "xdp_rb_dynptr").unwrap();
    for engine in engines() {
        let mut l = engine.load(c).expect("load");
        assert_eq!(l.run(prog, &RunInput::data(packet("ipv4_udp.bin"))).expect("run").r0, 2);
        let r = results(l.as_mut(), c, 0x1b0, 8);
        assert_eq!(r, [0, 0, 0x1122_3344, 16, 1, -22, -22, 24], "{}", engine.name());
    }
    // The submitted record holds what was written through the dynptr.
    let mut inst = Interpreter::default().instantiate(c).expect("instantiate");
    inst.run(prog, &RunInput::data(packet("ipv4_udp.bin"))).expect("run");
    let rb = c.map_index("rb").expect("rb");
    let ring = inst.world.map(rb).unwrap().as_any().downcast_ref::<bpflab_vm::maps::RingBuf>();
    let mut want = 0x1122_3344_5566_7788u64.to_le_bytes().to_vec();
    want.extend([0; 8]);
    assert_eq!(ring.expect("a ringbuf").pending(), vec![&want[..]]);
}

/// A collection of one program (`src`) that names its kfunc ids.
fn with_kfuncs(src: &str, prog_type: ProgType, kfuncs: &[(u32, &str)]) -> Collection {
    let insns = assemble(src).unwrap_or_else(|e| panic!("{e}\n{src}"));
    Collection {
        programs: vec![Program::raw("t", insns).with_type(prog_type)],
        kfuncs: kfuncs.iter().map(|&(btf_id, n)| KfuncRef { btf_id, name: n.into() }).collect(),
        ..Collection::default()
    }
}

fn fault(engine: &dyn Engine, c: &Collection, input: RunInput) -> VmErrorKind {
    let mut l = engine.load(c).expect("load");
    match l.run(0, &input) {
        Err(EngineError::Fault(e)) => e.kind().clone(),
        other => panic!("{}: expected a fault, got {other:?}", engine.name()),
    }
}

#[test]
fn unknown_kfunc_faults_with_its_name() {
    let c = with_kfuncs("r1 = 0\ncall kfunc 5\nexit", ProgType::Xdp, &[(5, "bpf_cgroup_from_id")]);
    for engine in engines() {
        let kind = fault(engine.as_ref(), &c, RunInput::data(vec![0; 64]));
        assert_eq!(
            kind,
            VmErrorKind::UnknownKfunc { name: "bpf_cgroup_from_id".into(), btf_id: 5 }
        );
        assert_eq!(kind.to_string(), "kfunc bpf_cgroup_from_id (btf id 5) is not implemented");
    }
    // A raw program's id with no name: the old fault, naming the id.
    let c = with_kfuncs("call kfunc 6\nexit", ProgType::Xdp, &[(5, "bpf_cgroup_from_id")]);
    for engine in engines() {
        let kind = fault(engine.as_ref(), &c, RunInput::data(vec![0; 64]));
        assert_eq!(kind, VmErrorKind::Kfunc { btf_id: 6 });
    }
}

#[test]
fn kfuncs_outside_their_program_types_are_refused() {
    // bpf_dynptr_from_xdp is in the XDP kfunc set only.
    let src = "r2 = 0\nr3 = r10\nr3 += -16\ncall kfunc 9\nexit";
    let c = with_kfuncs(src, ProgType::SchedCls, &[(9, "bpf_dynptr_from_xdp")]);
    for engine in engines() {
        let kind = fault(engine.as_ref(), &c, RunInput::data(vec![0; 64]));
        assert!(
            matches!(&kind, VmErrorKind::KfuncFailed { name: "bpf_dynptr_from_xdp", error }
                if error.to_string() == "not allowed in SchedCls programs"),
            "{}: {kind:?}",
            engine.name()
        );
    }
}

#[test]
fn kfuncs_need_a_gpl_compatible_license() {
    let mut c = with_kfuncs("call kfunc 4\nexit", ProgType::Xdp, &[(4, "bpf_rcu_read_lock")]);
    for engine in engines() {
        let mut l = engine.load(&c).expect("load");
        assert_eq!(l.run(0, &RunInput::data(vec![0; 64])).expect("GPL runs").r0, 0);
    }
    c.programs[0].license = "Proprietary".into();
    for engine in engines() {
        let kind = fault(engine.as_ref(), &c, RunInput::data(vec![0; 64]));
        assert_eq!(
            kind,
            VmErrorKind::KfuncFailed { name: "bpf_rcu_read_lock", error: HelperError::GplOnly },
            "{}",
            engine.name()
        );
    }
}

#[test]
fn slice_rdwr_writes_the_packet_in_tc_and_is_null_in_socket_filters() {
    // Linux 6.18 refuses bpf_dynptr_slice_rdwr ("bpf_dynptr_slice_rdwr() is not allowed"), so
    // this is checked against the kernel's semantics as documented, not a kernel run.
    println!("SKIP: kernel comparison of bpf_dynptr_slice_rdwr: kernel lacks it (refused)");
    let src = "
        r6 = r1
        r2 = 0
        r3 = r10
        r3 += -16
        call kfunc 1
        r1 = r10
        r1 += -16
        r2 = 2
        r3 = r10
        r3 += -24
        r4 = 4
        call kfunc 2
        if r0 == 0 goto null
        *(u32 *)(r0 + 0) = 0x11223344
        r0 = 1
        exit
    null:
        r0 = 7
        exit";
    let names = [(1, "bpf_dynptr_from_skb"), (2, "bpf_dynptr_slice_rdwr")];
    let pkt: Vec<u8> = (0..60u8).collect();
    for engine in engines() {
        let c = with_kfuncs(src, ProgType::SchedCls, &names);
        let mut l = engine.load(&c).expect("load");
        let out = l.run(0, &RunInput::data(pkt.clone())).expect("run");
        assert_eq!(out.r0, 1, "{}", engine.name());
        assert_eq!(&out.data[2..6], &[0x44, 0x33, 0x22, 0x11]);
        assert_eq!(&out.data[6..], &pkt[6..]);

        let c = with_kfuncs(src, ProgType::SocketFilter, &names);
        let mut l = engine.load(&c).expect("load");
        let out = l.run(0, &RunInput::data(pkt.clone())).expect("run");
        assert_eq!(out.r0, 7, "{}: read-only dynptr gives NULL", engine.name());
    }
}

#[test]
fn inspect_lists_kfunc_names() {
    if kfuncs_object().is_none() {
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("programs/tests");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_bpflab"))
            .args(args)
            .output()
            .expect("bpflab runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("utf-8")
    };
    let arena = dir.join("arena.bpf.o");
    let text = run(&["inspect", arena.to_str().unwrap()]);
    let line = text.lines().find(|l| l.starts_with("kfuncs: ")).expect("a kfuncs line");
    assert!(line.starts_with("kfuncs: bpf_arena_alloc_pages (btf id "), "{line}");
    assert!(line.contains(", bpf_arena_free_pages (btf id "), "{line}");
    let json = run(&["inspect", "--json", dir.join("kfuncs.bpf.o").to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    let kfuncs = v["kfuncs"].as_array().expect("kfuncs array");
    assert_eq!(kfuncs.len(), 29);
    let slice = kfuncs.iter().find(|k| k["name"] == "bpf_dynptr_slice").expect("slice");
    assert_eq!(slice["implemented"], true);
    assert!(slice["btf_id"].as_u64().is_some_and(|id| id > 0));
}
