//! What user space sets on an object before loading it, against the kernel: the types of
//! programs in sections libbpf does not know (`bpf_program__set_type`), the sizes of maps the
//! object leaves at 0 (`bpf_map__set_max_entries`), and the kernel configuration `__kconfig`
//! externs read. Each fixture runs on the interpreter and, where `bpf(2)` works, on the kernel
//! with the same options; verdicts, output packets and maps must agree, and the values are
//! checked against what the C source computes.

use std::path::{Path, PathBuf};

use bpflab::object::{MapDump, apply_initial_values, dump_maps};
use bpflab_kernel::{KernelEngine, possible_cpus, probe};
use bpflab_loader::{LoadError, LoadOptions, Object, load, parse_kconfig, parse_prog_type};
use bpflab_vm::{Config, Engine, Interpreter, Loaded, ProgType, RunInput, standard_helpers};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("programs/tests").join(name)
}

fn packet(name: &str) -> Vec<u8> {
    let path = fixture("packets").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn load_with(name: &str, set: impl FnOnce(&mut LoadOptions)) -> Result<Object, LoadError> {
    let path = fixture(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut opts = LoadOptions::for_path(&path);
    set(&mut opts);
    load(&bytes, &opts)
}

/// The interpreter and, when the kernel can load the collection, the kernel.
fn engines(obj: &Object, case: &str) -> (Box<dyn Loaded>, Option<Box<dyn Loaded>>) {
    let ncpus = possible_cpus().unwrap_or(1);
    let interp = Interpreter::new(Config { ncpus, ..Config::default() }, standard_helpers());
    let mut sim: Box<dyn Loaded> = Box::new(interp.instantiate(&obj.collection).expect("interp"));
    apply_initial_values(obj, sim.as_mut()).expect("initial values");
    let kernel = match probe() {
        Err(e) => {
            println!("SKIP: {case}: kernel lacks bpf(2) program loading ({e})");
            None
        }
        Ok(()) => match KernelEngine.load(&obj.collection) {
            Ok(mut k) => {
                apply_initial_values(obj, k.as_mut()).expect("kernel initial values");
                Some(k)
            }
            Err(e) => {
                println!("SKIP: {case}: kernel lacks support for this object ({e})");
                None
            }
        },
    };
    (sim, kernel)
}

/// Runs program `prog` on `input` on both engines; returns bpflab's r0 and output packet after
/// checking the kernel's (when there is one) are the same.
fn run_both(
    sim: &mut dyn Loaded,
    kernel: Option<&mut Box<dyn Loaded>>,
    prog: usize,
    input: &RunInput,
    case: &str,
) -> (u32, Vec<u8>) {
    let s = sim.run(prog, input).unwrap_or_else(|e| panic!("{case}: bpflab: {e}"));
    if let Some(k) = kernel {
        let k = k.run(prog, input).unwrap_or_else(|e| panic!("{case}: kernel: {e}"));
        assert_eq!(k.r0 as u32, s.r0 as u32, "{case}: r0 kernel vs bpflab");
        assert_eq!(k.data, s.data, "{case}: output packet kernel vs bpflab");
    }
    (s.r0 as u32, s.data)
}

fn maps_of(obj: &Object, loaded: &mut dyn Loaded, name: &str) -> MapDump {
    let i = obj.collection.map_index(name).unwrap_or_else(|| panic!("no map {name}"));
    dump_maps(obj, loaded).expect("dump")[i].clone()
}

fn u64_entry(key: u32, value: u64) -> (Vec<u8>, Vec<u8>) {
    (key.to_le_bytes().to_vec(), value.to_le_bytes().to_vec())
}

#[test]
fn programs_in_unknown_sections_run_once_typed_and_agree_with_the_kernel() {
    // As the object says: three untyped programs and a typed one.
    let obj = load_with("unknown_sections.bpf.o", |_| {}).expect("loads untyped");
    let known: Vec<(&str, bool)> =
        obj.programs.iter().map(|p| (p.name.as_str(), p.type_known)).collect();
    assert_eq!(
        known,
        [("xdp_pass_v4", false), ("cls_by_len", false), ("sock_trim", false), ("xdp_known", true)]
    );
    for (i, p) in obj.collection.programs.iter().enumerate().take(3) {
        assert_eq!(p.prog_type, ProgType::Unspec);
        let err = obj.check_runnable(i).unwrap_err().to_string();
        assert!(err.contains("has no program type libbpf knows; pass --prog-type TYPE"), "{err}");
    }

    let obj = load_with("unknown_sections.bpf.o", |o| {
        for (prog, ty) in
            [("xdp_pass_v4", "xdp"), ("cls_by_len", "classifier"), ("sock_trim", "socket")]
        {
            o.prog_types.insert(prog.into(), parse_prog_type(ty).expect("type"));
        }
    })
    .expect("loads typed");
    let types: Vec<ProgType> = obj.collection.programs.iter().map(|p| p.prog_type).collect();
    assert_eq!(types, [ProgType::Xdp, ProgType::SchedCls, ProgType::SocketFilter, ProgType::Xdp]);
    for i in 0..4 {
        obj.check_runnable(i).expect("runnable");
    }
    let (mut sim, mut kernel) = engines(&obj, "unknown_sections.bpf.o");
    let mut long = packet("ipv4_tcp_syn.bin");
    long.resize(114, 0);
    let inputs = [
        ("ipv4_tcp_syn", packet("ipv4_tcp_syn.bin")),
        ("ipv6_tcp_syn", packet("ipv6_tcp_syn.bin")),
        ("arp_request", packet("arp_request.bin")),
        ("ipv4 padded to 114 bytes", long),
    ];
    // XDP_PASS = 2 / XDP_DROP = 1; TC_ACT_OK = 0 / TC_ACT_SHOT = 2 past 100 bytes; the
    // socket filter keeps min(len, 64) bytes of what follows the Ethernet header.
    let expected: [[u32; 4]; 3] = [[2, 1, 1, 2], [0, 0, 0, 2], [40, 60, 28, 64]];
    for (prog, want) in expected.iter().enumerate() {
        for ((label, data), &want) in inputs.iter().zip(want) {
            let case = format!("{} on {label}", obj.collection.programs[prog].name);
            let (r0, _) =
                run_both(sim.as_mut(), kernel.as_mut(), prog, &RunInput::data(data.clone()), &case);
            assert_eq!(r0, want, "{case}");
        }
    }
}

#[test]
fn user_sized_maps_need_sizes_and_behave_like_the_kernel_with_them() {
    match load_with("user_sized_maps.bpf.o", |_| {}) {
        Err(e @ LoadError::MapNeedsSize { .. }) => assert_eq!(
            e.to_string(),
            "map 'len_counts' (hash) has max_entries 0: user space sizes it before loading; give \
             its size with --map-size len_counts=N (LoadOptions::map_sizes, libbpf's \
             bpf_map__set_max_entries)"
        ),
        other => panic!("expected MapNeedsSize, got {other:?}"),
    }
    match load_with("user_sized_maps.bpf.o", |o| {
        o.map_sizes.insert("len_count".into(), 4);
    }) {
        Err(LoadError::UnknownMap { name, maps }) => {
            assert_eq!(name, "len_count");
            assert_eq!(maps, ["len_counts", "slots", "events"]);
        }
        other => panic!("expected UnknownMap, got {other:?}"),
    }
    let frame = packet("ipv4_tcp_syn.bin");
    let len = frame.len() as u64;
    // Three slots: the lookup of slot 3 fails and the program drops; four: it passes.
    for (slots, verdict) in [(3u32, 1u32), (4, 2)] {
        let obj = load_with("user_sized_maps.bpf.o", |o| {
            o.map_sizes.insert("len_counts".into(), 16);
            o.map_sizes.insert("slots".into(), slots);
        })
        .expect("loads sized");
        let maxes: Vec<u32> = obj.collection.maps.iter().map(|m| m.max_entries).collect();
        // The perf event array stays 0: engines give it one entry per possible CPU.
        assert_eq!(maxes, [16, slots, 0]);
        let case = format!("user_sized_maps.bpf.o with slots={slots}");
        let (mut sim, mut kernel) = engines(&obj, &case);
        let input = RunInput::data(frame.clone());
        let (r0, _) = run_both(sim.as_mut(), kernel.as_mut(), 0, &input, &case);
        assert_eq!(r0, verdict, "{case}");
        let want_slots: MapDump = (0..slots).map(|k| u64_entry(k, len)).collect();
        assert_eq!(maps_of(&obj, sim.as_mut(), "slots"), want_slots, "{case}");
        assert_eq!(maps_of(&obj, sim.as_mut(), "len_counts"), [u64_entry(len as u32, 1)]);
        if let Some(k) = kernel.as_mut() {
            for map in ["slots", "len_counts"] {
                assert_eq!(
                    maps_of(&obj, k.as_mut(), map),
                    maps_of(&obj, sim.as_mut(), map),
                    "{case}: map {map} kernel vs bpflab"
                );
            }
        }
    }
}

#[test]
fn kconfig_externs_read_the_given_configuration_like_the_kernel() {
    let config = "CONFIG_HZ=1000\nCONFIG_BPF_SYSCALL=y\nCONFIG_BPF_JIT=y\nCONFIG_BPFLAB_MODULE=m\n\
                  CONFIG_DEFAULT_HOSTNAME=\"bpflab-host\"\nCONFIG_NR_CPUS=64\n\
                  # CONFIG_BPFLAB_ABSENT is not set\n";
    let obj = load_with("externs.bpf.o", |o| {
        o.kconfig = parse_kconfig(config).expect("config");
        o.kernel_version = Some(0x060c05);
    })
    .expect("loads");
    // libbpf's layout: alignment descending, then size, then name.
    let layout: Vec<(&str, u32, u32)> =
        obj.kconfig.iter().map(|k| (k.name.as_str(), k.offset, k.size)).collect();
    assert_eq!(
        layout,
        [
            ("CONFIG_NR_CPUS", 0, 8),
            ("CONFIG_BPFLAB_MODULE", 8, 4),
            ("CONFIG_BPF_JIT", 12, 4),
            ("CONFIG_HZ", 16, 4),
            ("LINUX_KERNEL_VERSION", 20, 4),
            ("CONFIG_BPFLAB_ABSENT", 24, 1),
            ("CONFIG_BPF_SYSCALL", 25, 1),
            ("LINUX_HAS_BPF_COOKIE", 26, 1),
            ("CONFIG_DEFAULT_HOSTNAME", 27, 8),
        ]
    );
    let kconfig = obj.collection.map_index("externs.kconfig").expect("the .kconfig map");
    let spec = &obj.collection.maps[kconfig];
    assert_eq!((spec.value_size, spec.max_entries), (35, 1));
    assert_eq!(spec.flags, bpflab_loader::BPF_F_RDONLY_PROG | bpflab_loader::BPF_F_MMAPABLE);

    let (mut sim, mut kernel) = engines(&obj, "externs.bpf.o");
    let input = RunInput::data(packet("ipv4_tcp_syn.bin"));
    let (r0, _) = run_both(sim.as_mut(), kernel.as_mut(), 0, &input, "externs.bpf.o read_kconfig");
    assert_eq!(r0, 1, "CONFIG_HZ is not 250: XDP_DROP");
    // A char[8] keeps 7 bytes of "bpflab-host" and the NUL, as libbpf truncates it.
    let hostname = u64::from_le_bytes(*b"bpflab-\0");
    // LINUX_HAS_BPF_COOKIE is bit 1; the absent bool, weak ksym and weak kfunc read 0.
    let want: MapDump = [0x060c05, 1000, 1, 1, 2, hostname, 64, 0b0010]
        .into_iter()
        .enumerate()
        .map(|(k, v)| u64_entry(k as u32, v))
        .collect();
    assert_eq!(maps_of(&obj, sim.as_mut(), "seen"), want);
    if let Some(k) = kernel.as_mut() {
        assert_eq!(maps_of(&obj, k.as_mut(), "seen"), want, "kernel");
    }
}

#[test]
fn typed_and_typeless_ksyms_load_into_the_kernel() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("loader/tests/fixtures/ksyms.bpf.o");
    let bytes = std::fs::read(&path).expect("read ksyms.bpf.o");
    let obj = match load(&bytes, &LoadOptions::for_path(&path)) {
        Ok(obj) => obj,
        Err(e) => {
            println!("SKIP: ksyms.bpf.o: kernel lacks BTF or visible kallsyms ({e})");
            return;
        }
    };
    // The simulator models no kernel variables: a BPF_PSEUDO_BTF_ID load is refused when the
    // collection is prepared, naming the instruction.
    let interp = Interpreter::new(Config::default(), standard_helpers());
    let err = interp.instantiate(&obj.collection).map(|_| ()).unwrap_err().to_string();
    assert!(err.contains("ld_imm64 with unresolved BtfId source"), "{err}");
    if let Err(e) = probe() {
        println!("SKIP: ksyms.bpf.o: kernel lacks bpf(2) program loading ({e})");
        return;
    }
    let mut kernel = match KernelEngine.load(&obj.collection) {
        Ok(k) => k,
        // Typed ksym variables are found through kallsyms, which lists data symbols only with
        // CONFIG_KALLSYMS_ALL: libbpf's load fails the same way there.
        Err(e) if e.to_string().contains("failed to find the address for kernel symbol") => {
            println!("SKIP: ksyms.bpf.o: kernel lacks CONFIG_KALLSYMS_ALL (typed __ksym data)");
            return;
        }
        Err(e) => panic!("the kernel refuses ksyms.bpf.o: {e}"),
    };
    let out = kernel.run(0, &RunInput::data(packet("ipv4_tcp_syn.bin"))).expect("kernel run");
    // bpf_prog_active is 0 outside tracing; the typeless address is not 0; the weak one is.
    assert_eq!(out.r0, 2);
}
