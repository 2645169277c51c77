//! The real-world corpus (programs/corpus: objects written the way public eBPF projects write
//! them) run three ways on crafted frames: bpflab's interpreter, its JIT (checked mode) and the
//! running kernel (`BPF_PROG_TEST_RUN`). Every case the kernel ran must give the same r0, the
//! same output packet and, after a program's cases, the same contents in the maps it writes.
//!
//! Where bpflab cannot yet load or run a case, the failure is counted as a "bpflab error" of a
//! class (unknown section, map size, huge map, extern, kfunc, helper, map kind, multi-buffer,
//! ...). The test fails on every divergence and every bpflab error on a case the kernel ran,
//! except for the `(object, program, frame)` patterns listed in [`EXPECTED_GAPS`]; it also fails
//! when a listed gap starts agreeing with the kernel, so the table shrinks as features land.
//! Cases the kernel cannot run here are printed as `SKIP: <case>: kernel lacks <feature>` and
//! compared between interpreter and JIT only (bpflab errors there are counted as unverified).
//!
//! `cargo test -p bpflab --test corpus -- --nocapture` prints every SKIP, GAP and FAIL line and
//! the `corpus:` summary; the objects and what each covers are listed in
//! programs/corpus/README.md.

#[path = "corpus/frames.rs"]
mod frames;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bpflab::object::apply_initial_values;
use bpflab_jit::{JitConfig, JitEngine, Mode};
use bpflab_kernel::features::features;
use bpflab_kernel::{KernelEngine, possible_cpus, probe};
use bpflab_loader::secdef::parse_prog_type;
use bpflab_loader::{LoadOptions, Object};
use bpflab_vm::{
    Collection, Config, Engine, EngineError, Interpreter, Loaded, MapType, ProgType, RunInput,
    RunOutcome, standard_helpers,
};

/// `(object, program, frame, class, why)`, `"*"` matching any: cases bpflab cannot match yet.
/// A gap naming a frame runs after the program's maps were compared (its runs may change them);
/// the test fails when every case of a gap agrees everywhere (remove its line then).
const EXPECTED_GAPS: &[Gap] = &[Gap {
    object: "syscall_loader.bpf.o",
    program: "lskel_load",
    frame: "*",
    class: "helper",
    why: "bpf_sys_bpf / bpf_sys_close (light-skeleton loaders) are not implemented",
}];

/// One entry of [`EXPECTED_GAPS`].
struct Gap {
    object: &'static str,
    program: &'static str,
    frame: &'static str,
    class: &'static str,
    why: &'static str,
}

impl Gap {
    fn matches(&self, object: &str, program: &str, frame: &str) -> bool {
        let m = |pat: &str, v: &str| match pat.strip_suffix('*') {
            Some(prefix) => v.starts_with(prefix),
            None => pat == v,
        };
        m(self.object, object) && m(self.program, program) && m(self.frame, frame)
    }
}

/// The gap a case falls under, by index in [`EXPECTED_GAPS`].
fn gap_of(object: &str, program: &str, frame: &str) -> Option<usize> {
    EXPECTED_GAPS.iter().position(|g| g.matches(object, program, frame))
}

/// `(object, map, why)`: maps whose contents legitimately differ between engines.
const NONDETERMINISTIC_MAPS: &[(&str, &str, &str)] = &[];

/// `(object, program, type)`: programs in sections libbpf does not know, typed by the user as
/// `bpf_program__set_type` would (bpflab: `--prog-type`, `LoadOptions::prog_types`).
const PROG_TYPES: &[(&str, &str, &str)] = &[
    ("unknown_sections.bpf.o", "xdp_drop_udp", "xdp"),
    ("unknown_sections.bpf.o", "xdp_pass_all", "xdp"),
    ("unknown_sections.bpf.o", "cls_tcp_only", "tc"),
    ("unknown_sections.bpf.o", "sock_len", "socket_filter"),
];

/// `(object, map, max_entries)`: maps the object leaves for user space to size, sized as
/// `bpf_map__set_max_entries` would (bpflab: `--map-size`, `LoadOptions::map_sizes`).
const MAP_SIZES: &[(&str, &str, u32)] = &[
    ("user_sized_maps.bpf.o", "conn_count", 1024),
    ("user_sized_maps.bpf.o", "port_count", 512),
    ("user_sized_maps.bpf.o", "events", 4096),
];

/// `(object, map, key, value)`: what user space writes into the maps before the first run
/// (blocklists, backends, configuration), little-endian host values as `bpf(2)` takes them.
fn setup(object: &str, collection: &Collection) -> Vec<(&'static str, Vec<u8>, Vec<u8>)> {
    // A map-of-maps value: the inner map's index, as every engine's map interface takes it.
    let map_ref = |name: &str| {
        let idx = collection.maps.iter().position(|m| m.name == name);
        (idx.expect("setup names an inner map the object has") as u32).to_le_bytes().to_vec()
    };
    let u16le = |v: u16| v.to_le_bytes().to_vec();
    let be = |a: [u8; 4]| a.to_vec();
    let u32le = |v: u32| v.to_le_bytes().to_vec();
    let u64le = |v: u64| v.to_le_bytes().to_vec();
    let cat = |parts: &[&[u8]]| parts.concat();
    match object {
        "xdp_fw_blocklist.bpf.o" => vec![
            ("blocklist_v4", be(frames::BLOCKED4), u64le(0)),
            ("blocklist_prefix", cat(&[&u32le(24), &frames::BLOCKNET4]), u32le(1)),
            ("blocklist_v6", frames::BLOCKED6.to_vec(), u64le(0)),
        ],
        // vip (192.0.2.1:80/tcp -> VIP 0, :53/udp -> VIP 1); backend 0 is 10.0.0.2.
        "xdp_lb_maglev.bpf.o" => vec![
            ("vip_map", cat(&[&frames::VIP4, &80u16.to_be_bytes(), &[6, 0]]), u64le(0)),
            ("vip_map", cat(&[&frames::VIP4, &53u16.to_be_bytes(), &[17, 0]]), u64le(1)),
            ("backends", u32le(0), cat(&[&[10, 0, 0, 2], &[2, 0, 0, 0, 0, 0x99], &[0, 0]])),
        ],
        "katran_like.bpf.o" => vec![
            ("vip_map", cat(&[&frames::VIP4, &80u16.to_be_bytes(), &[6, 0]]), u64le(0)),
            ("vip_map", cat(&[&frames::VIP4, &443u16.to_be_bytes(), &[6, 0]]), u64le(1 << 32)),
            ("ch_rings", u32le(65537), u32le(7)),
            ("reals", u32le(0), cat(&[&[10, 0, 0, 2], &u32le(0)])),
            ("reals", u32le(7), cat(&[&[10, 0, 0, 3], &u32le(0)])),
        ],
        "xdp_nat44.bpf.o" => vec![
            ("nat_in", be(frames::VIP4), be([10, 0, 0, 2])),
            ("nat_out", be([10, 0, 0, 2]), be(frames::VIP4)),
        ],
        "xdp_redirect_devmap.bpf.o" => vec![("egress_for", be(frames::VIP4), u32le(1))],
        "xdp_arp_guard.bpf.o" => vec![
            ("arp_bindings", be(frames::BLOCKED4), cat(&[&[2, 0, 0, 0, 0, 0x66], &[0, 0]])),
            ("arp_bindings", be(frames::CLIENT4), cat(&[&[2, 0, 0, 0, 0, 2], &[0, 0]])),
        ],
        "tc_dscp_classifier.bpf.o" => {
            vec![("dscp_to_class", u32le(46), u32le(5)), ("dscp_to_class", u32le(8), u32le(0xff))]
        }
        "tc_nat_csum.bpf.o" => vec![
            (
                "services",
                cat(&[&frames::VIP4, &80u16.to_be_bytes(), &6u16.to_le_bytes()]),
                cat(&[&[10, 0, 0, 2], &8080u16.to_be_bytes(), &[0, 0]]),
            ),
            (
                "services",
                cat(&[&frames::VIP4, &53u16.to_be_bytes(), &17u16.to_le_bytes()]),
                cat(&[&[10, 0, 0, 3], &5353u16.to_be_bytes(), &[0, 0]]),
            ),
        ],
        "tc_redirect_ifindex.bpf.o" => vec![("fwd_ifindex", be(frames::VIP4), u32le(1))],
        "tc_l2_push.bpf.o" | "lwt_policy.bpf.o" | "tc_tunnel_key.bpf.o" => Vec::new(),
        "katran_v6_encap.bpf.o" => {
            let real = [0x20, 1, 0x0d, 0xb8, 0xbe, 0xef, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
            vec![
                ("vip6_map", cat(&[&frames::VIP6, &80u16.to_be_bytes(), &[6, 0]]), u32le(0)),
                ("reals6", u32le(0), real.to_vec()),
            ]
        }
        "xdp_vlan_translate.bpf.o" => vec![
            ("outer_map", u16le(10), u16le(110)),
            ("outer_map", u16le(20), u16le(120)),
            ("outer_map", u16le(100), u16le(200)),
            ("inner_map", u16le(30), u16le(130)),
        ],
        "sk_lookup_dispatch.bpf.o" => {
            let binding = |proto: u32, port: u32| cat(&[&u32le(proto), &u32le(port)]);
            vec![("bindings", binding(6, 80), u32le(0)), ("bindings", binding(17, 53), u32le(1))]
        }
        "cgroup_skb_fw.bpf.o" => vec![
            ("deny_dst", cat(&[&u32le(32), &frames::VIP4]), vec![1]),
            ("deny_dst", cat(&[&u32le(8), &[8, 0, 0, 0]]), vec![1]),
        ],
        "xdp_map_in_map.bpf.o" => vec![
            ("tenant0_ports", u16le(80), u32le(1)),
            ("tenant1_ports", u16le(53), u32le(3)),
            ("per_dst", be(frames::VIP4), map_ref("vip_counter")),
        ],
        "xdp_lpm6_bloom.bpf.o" => {
            vec![("prefix6_deny", cat(&[&u32le(48), &frames::BLOCKED6]), u64le(0))]
        }
        "xdp_map_iterate.bpf.o" => {
            vec![("quotas", u32le(80), u64le(3)), ("quotas", u32le(53), u64le(1))]
        }
        _ => Vec::new(),
    }
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("programs/corpus")
}

/// The inputs a program of this type runs on.
fn inputs(prog_type: ProgType) -> Vec<(String, RunInput)> {
    match prog_type {
        ProgType::Xdp
        | ProgType::SchedCls
        | ProgType::SchedAct
        | ProgType::SocketFilter
        | ProgType::CgroupSkb
        | ProgType::LwtIn
        | ProgType::LwtOut
        | ProgType::LwtXmit
        | ProgType::FlowDissector => frames::all()
            .into_iter()
            .map(|(name, bytes)| (name.to_string(), RunInput::data(bytes)))
            .collect(),
        // Raw tracepoint arguments (sys_enter: regs pointer, syscall id): read, openat, execve.
        ProgType::RawTracepoint => [0u64, 257, 59, 59]
            .iter()
            .map(|id| {
                let mut input = RunInput::default();
                let mut ctx = 0u64.to_le_bytes().to_vec();
                ctx.extend_from_slice(&id.to_le_bytes());
                input.ctx = Some(ctx);
                (format!("sys_enter_{id}"), input)
            })
            .collect(),
        ProgType::SkLookup => frames::sk_lookups()
            .into_iter()
            .map(|(name, ctx)| {
                let mut input = RunInput::default();
                input.ctx = Some(ctx);
                (name.to_string(), input)
            })
            .collect(),
        ProgType::Syscall => {
            let mut input = RunInput::default();
            input.ctx = Some(vec![7, 0, 0, 0, 0, 0, 0, 0, 42, 0, 0, 0, 0, 0, 0, 0]);
            vec![("ctx16".to_string(), input)]
        }
        _ => Vec::new(),
    }
}

/// The class of a bpflab failure, from its message.
fn classify(message: &str) -> &'static str {
    let m = message.to_ascii_lowercase();
    if m.contains("exceeds the maximum") {
        "multi-buffer"
    } else if m.contains("off = 1 is reserved") || m.contains("arena") {
        "arena"
    } else if m.contains("btfid source") || m.contains("ksym") {
        "extern"
    } else if m.contains("sk pointer") || m.contains("storage") || m.contains("user_ringbuf") {
        "map-kind"
    } else if m.contains("prog-type") || m.contains("program type") || m.contains("section") {
        "unknown-section"
    } else if m.contains("map-size") || m.contains("max_entries 0") || m.contains("max_entries = 0")
    {
        "map-size"
    } else if m.contains("out of memory") || m.contains("enomem") || m.contains("too large") {
        "huge-map"
    } else if m.contains("kconfig") || m.contains("ksym") || m.contains("extern") {
        "extern"
    } else if m.contains("kfunc") {
        "kfunc"
    } else if m.contains("helper") {
        "helper"
    } else if m.contains("arena")
        || m.contains("storage")
        || m.contains("ringbuf")
        || m.contains("map type")
    {
        "map-kind"
    } else {
        "other"
    }
}

/// Per-CPU values hold one slot per CPU and the kernel runs a test on whichever CPU it is on:
/// compare the slots as a sorted list.
fn normalise(map_type: MapType, value: &[u8], value_size: u32) -> Vec<u8> {
    if !matches!(map_type, MapType::PercpuArray | MapType::PercpuHash | MapType::LruPercpuHash) {
        return value.to_vec();
    }
    let stride = (value_size as usize).div_ceil(8) * 8;
    let mut slots: Vec<&[u8]> = value.chunks(stride).collect();
    slots.sort();
    slots.concat()
}

/// Arrays larger than this are compared on their first [`SAMPLED`] indices only (listing a
/// 33-million-entry array through `bpf(2)` would take minutes).
const FULL_DUMP_LIMIT: u32 = 4096;
const SAMPLED: u32 = 256;

/// A map's `(key, value)` entries, sorted by key.
type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// The comparable maps' contents: map name to sorted `(key, value)` entries.
fn dump(
    collection: &Collection,
    loaded: &mut dyn Loaded,
    object: &str,
) -> Result<BTreeMap<String, Entries>, EngineError> {
    let mut out = BTreeMap::new();
    for (i, spec) in collection.maps.iter().enumerate() {
        let comparable =
            !matches!(
                spec.map_type,
                MapType::ProgArray
                    | MapType::ArrayOfMaps
                    | MapType::HashOfMaps
                    | MapType::Sockmap
                    | MapType::Sockhash
                    | MapType::PerfEventArray
                    | MapType::Ringbuf
                    | MapType::UserRingbuf
                    | MapType::Queue
                    | MapType::Stack
                    | MapType::Xskmap
                    | MapType::Devmap
                    | MapType::DevmapHash
                    | MapType::Cpumap
                    | MapType::SkStorage
                    | MapType::TaskStorage
                    | MapType::InodeStorage
                    | MapType::CgrpStorage
                    | MapType::Arena
                    | MapType::BloomFilter
            ) && !NONDETERMINISTIC_MAPS.iter().any(|(o, m, _)| *o == object && *m == spec.name);
        if !comparable {
            continue;
        }
        let arrayish = matches!(spec.map_type, MapType::Array | MapType::PercpuArray);
        let mut keys = if arrayish && spec.max_entries > FULL_DUMP_LIMIT {
            (0..SAMPLED).map(|k| k.to_le_bytes().to_vec()).collect()
        } else {
            loaded.map_keys(i)?
        };
        keys.sort();
        let mut entries = Vec::with_capacity(keys.len());
        for key in keys {
            if let Some(value) = loaded.map_lookup(i, &key)? {
                entries.push((key, normalise(spec.map_type, &value, spec.value_size)));
            }
        }
        out.insert(spec.name.clone(), entries);
    }
    Ok(out)
}

/// A failure of one case (or of a program's maps), with the gap it falls under.
struct Failure {
    /// `None` for a divergence, else the class of bpflab's error.
    class: Option<&'static str>,
    what: String,
    gap: Option<usize>,
}

/// What happened to one `(object, program)` over its cases.
#[derive(Default)]
struct Tally {
    cases: usize,
    kernel_compared: usize,
    equal: usize,
    skipped: usize,
    /// bpflab errors on cases the kernel could not run (counted, not failures).
    unverified_errors: Vec<(&'static str, String)>,
    failures: Vec<Failure>,
    /// Per gap: cases it covered.
    gap_cases: BTreeMap<usize, usize>,
}

impl Tally {
    fn error(&mut self, what: String, gap: Option<usize>) {
        self.failures.push(Failure { class: Some(classify(&what)), what, gap });
    }

    fn diverged(&mut self, what: String, gap: Option<usize>) {
        self.failures.push(Failure { class: None, what, gap });
    }
}

/// The three engines for one program's cases.
struct Engines {
    interp: Box<dyn Loaded>,
    jit: Box<dyn Loaded>,
    kernel: Option<Box<dyn Loaded>>,
}

/// How a user loads `file`: the program types and map sizes the tables give it.
fn load_options(path: &Path, file: &str) -> LoadOptions {
    let mut opts = LoadOptions::for_path(path);
    for (_, prog, ty) in PROG_TYPES.iter().filter(|(o, _, _)| *o == file) {
        let choice = parse_prog_type(ty).expect("PROG_TYPES names a known type");
        opts.prog_types.insert(prog.to_string(), choice);
    }
    for (_, map, n) in MAP_SIZES.iter().filter(|(o, _, _)| *o == file) {
        opts.map_sizes.insert(map.to_string(), *n);
    }
    opts
}

/// Runs every case of every program of one object, tallying by program.
fn run_object(path: &Path, ncpus: u32, kernel_ok: bool, jit: &JitEngine) -> Vec<(String, Tally)> {
    let file = path.file_name().unwrap().to_string_lossy().into_owned();
    let bytes = std::fs::read(path).expect("read object");
    let obj: Object = match bpflab_loader::load(&bytes, &load_options(path, &file)) {
        Ok(o) => o,
        Err(e) => {
            let mut tally = Tally::default();
            let gap = gap_of(&file, "*", "*");
            *tally.gap_cases.entry(gap.unwrap_or(usize::MAX)).or_default() += 1;
            tally.error(format!("{file}: loader: {e}"), gap);
            return vec![("*".into(), tally)];
        }
    };
    let collection = obj.collection.clone();
    // The kernel loads the whole object, or, where it refuses one of its programs, each program
    // with its siblings replaced by copies of it (indices unchanged; all engines get the same).
    let whole_in_kernel = kernel_ok && KernelEngine.load(&collection).is_ok();
    let mut results = Vec::new();
    for (p, prog) in collection.programs.iter().enumerate() {
        let cases = inputs(prog.prog_type);
        let mut tally = Tally::default();
        if cases.is_empty() {
            println!(
                "{file}/{}: type {:?} is not test-runnable; not run",
                prog.name, prog.prog_type
            );
            continue;
        }
        let unit = if whole_in_kernel || !kernel_ok {
            collection.clone()
        } else {
            let mut c = collection.clone();
            for q in 0..c.programs.len() {
                if q != p {
                    c.programs[q] = c.programs[p].clone();
                    c.programs[q].name = format!("{}_copy{q}", c.programs[p].name);
                }
            }
            c
        };
        let mut skip_reason = (!kernel_ok).then(|| "bpf(2) here".to_string());
        // A refusal counts as the kernel lacking something only where its probe says what,
        // or for a kernel configuration the probe cannot see (KERNEL_CONFIG_REFUSALS); any
        // other refusal of an object bpflab loads is a difference.
        let mut unexplained_refusal = None;
        let kernel = if kernel_ok {
            match KernelEngine.load(&unit) {
                Ok(k) => Some(k),
                Err(e) => {
                    let reason = kernel_reason(&e.to_string());
                    let missing = features().map(|f| f.missing_for_load(&unit)).unwrap_or_default();
                    let config = KERNEL_CONFIG_REFUSALS
                        .iter()
                        .find(|(needle, _)| e.to_string().contains(needle))
                        .map(|(_, what)| *what);
                    skip_reason = Some(match (missing.is_empty(), config) {
                        (false, _) => {
                            let what: Vec<String> =
                                missing.iter().map(ToString::to_string).collect();
                            format!("{} ({reason})", what.join(", "))
                        }
                        (true, Some(what)) => format!("{what} ({reason})"),
                        (true, None) => {
                            unexplained_refusal = Some(reason.clone());
                            format!("nothing its probe names, yet refused {} ({reason})", prog.name)
                        }
                    });
                    None
                }
            }
        } else {
            None
        };
        if let Some(reason) = unexplained_refusal {
            tally.diverged(
                format!(
                    "{file}/{}: the kernel refused an object bpflab loads, and its probe \
                     names nothing it lacks: {reason}",
                    prog.name
                ),
                gap_of(&file, &prog.name, "*"),
            );
        }
        let kernel_loaded = kernel.is_some();
        let mut engines = match instantiate(&unit, ncpus, jit, kernel, &obj, &file) {
            Ok(e) => e,
            Err(msg) if !kernel_loaded => {
                let msg = format!("{file}/{}: {msg}", prog.name);
                for (label, _) in &cases {
                    let why = skip_reason.as_deref().unwrap_or("");
                    println!("SKIP: {file}/{}/{label}: kernel lacks {why}", prog.name);
                }
                tally.cases = cases.len();
                tally.skipped = cases.len();
                tally.unverified_errors.push((classify(&msg), msg));
                results.push((prog.name.clone(), tally));
                continue;
            }
            Err(msg) => {
                let gap = gap_of(&file, &prog.name, "*");
                tally.cases = cases.len();
                *tally.gap_cases.entry(gap.unwrap_or(usize::MAX)).or_default() += cases.len();
                tally.error(format!("{file}/{}: {msg}", prog.name), gap);
                results.push((prog.name.clone(), tally));
                continue;
            }
        };
        // Cases under a frame-specific gap run after the maps were compared.
        let (gapped, plain): (Vec<_>, Vec<_>) = cases.iter().partition(|(label, _)| {
            gap_of(&file, &prog.name, label).is_some_and(|g| EXPECTED_GAPS[g].frame != "*")
        });
        for (label, input) in &plain {
            let gap = gap_of(&file, &prog.name, label);
            let at = format!("{file}/{}/{label}", prog.name);
            run_case(&mut engines, p, input, &at, gap, skip_reason.as_deref(), &mut tally);
        }
        let map_gap = gap_of(&file, &prog.name, "maps");
        compare_maps(&unit, &mut engines, &file, &prog.name, map_gap, &mut tally);
        for (label, input) in &gapped {
            let gap = gap_of(&file, &prog.name, label);
            let at = format!("{file}/{}/{label}", prog.name);
            run_case(&mut engines, p, input, &at, gap, skip_reason.as_deref(), &mut tally);
        }
        results.push((prog.name.clone(), tally));
    }
    results
}

/// Kernel refusals that come from the kernel's configuration, which the feature probe does
/// not see: (text of the refusal, what the kernel lacks).
const KERNEL_CONFIG_REFUSALS: &[(&str, &str)] = &[(
    "failed to find the address for kernel symbol",
    "CONFIG_KALLSYMS_ALL (the address of a typed __ksym variable)",
)];

/// Why the kernel refused to load something: the verifier's last words where it spoke.
fn kernel_reason(message: &str) -> String {
    let lines: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("processed ") && !l.starts_with("verification"))
        .collect();
    lines.last().map_or(String::new(), |l| l.chars().take(160).collect())
}

fn first_line(s: &str) -> String {
    let line = s.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    line.chars().take(160).collect()
}

/// The interpreter and the JIT over `unit` (plus the kernel's instance), with the object's
/// initial values and the user-space setup applied to each.
fn instantiate(
    unit: &Collection,
    ncpus: u32,
    jit: &JitEngine,
    kernel: Option<Box<dyn Loaded>>,
    obj: &Object,
    file: &str,
) -> Result<Engines, String> {
    let interp = Interpreter::new(Config { ncpus, ..Config::default() }, standard_helpers());
    let mut inst = interp.instantiate(unit).map_err(|e| format!("interpreter: {e}"))?;
    let mut jinst = jit.instantiate(unit).map_err(|e| format!("jit: {e}"))?;
    inst.world
        .kernel
        .set_current(bpflab_kernel::calling_thread_task())
        .map_err(|e| format!("task: {e}"))?;
    jinst
        .world_mut()
        .kernel
        .set_current(bpflab_kernel::calling_thread_task())
        .map_err(|e| format!("task: {e}"))?;
    // No perf event reader is attached on the kernel side: close the simulators' entries.
    for (m, spec) in unit.maps.iter().enumerate() {
        if spec.map_type == MapType::PerfEventArray {
            for cpu in 0..ncpus {
                let _ = inst.world.delete(m, &cpu.to_le_bytes());
                let _ = jinst.world_mut().delete(m, &cpu.to_le_bytes());
            }
        }
    }
    let mut engines = Engines { interp: Box::new(inst), jit: Box::new(jinst), kernel };
    let mut all: Vec<(&str, &mut Box<dyn Loaded>)> =
        vec![("interpreter", &mut engines.interp), ("jit", &mut engines.jit)];
    if let Some(k) = engines.kernel.as_mut() {
        all.push(("kernel", k));
    }
    for (name, loaded) in all {
        apply_initial_values(obj, loaded.as_mut())
            .map_err(|e| format!("{name}: initial values: {e}"))?;
        for (map, key, value) in setup(file, unit) {
            let idx = unit
                .maps
                .iter()
                .position(|m| m.name == map)
                .ok_or_else(|| format!("setup names map {map}, which the object lacks"))?;
            loaded
                .map_update(idx, &key, &value, 0)
                .map_err(|e| format!("{name}: setup of {map}: {e}"))?;
        }
    }
    Ok(engines)
}

/// How two outcomes differ, if they do (`full_r0`: all 64 bits, else the kernel's 32-bit
/// test-run retval).
fn outcome_diff(a: &RunOutcome, b: &RunOutcome, full_r0: bool) -> Option<String> {
    let r0_differs = if full_r0 { a.r0 != b.r0 } else { a.r0 as u32 != b.r0 as u32 };
    if r0_differs {
        return Some(format!("r0 {:#x} vs {:#x}", a.r0, b.r0));
    }
    if a.data != b.data {
        let at = a.data.iter().zip(&b.data).position(|(x, y)| x != y);
        return Some(format!(
            "output packet differs (lengths {} vs {}, first difference at {at:?})",
            a.data.len(),
            b.data.len()
        ));
    }
    if a.ctx.is_some() && b.ctx.is_some() && a.ctx != b.ctx {
        return Some(format!("ctx_out differs\n    {:02x?}\n    {:02x?}", a.ctx, b.ctx));
    }
    None
}

/// Runs one case on every engine and tallies it; `skip` says why the kernel cannot run it.
fn run_case(
    engines: &mut Engines,
    p: usize,
    input: &RunInput,
    at: &str,
    gap: Option<usize>,
    skip: Option<&str>,
    tally: &mut Tally,
) {
    tally.cases += 1;
    *tally.gap_cases.entry(gap.unwrap_or(usize::MAX)).or_default() += 1;
    let interp = engines.interp.run(p, input);
    let jit = engines.jit.run(p, input);
    let kernel = engines.kernel.as_mut().map(|k| k.run(p, input));
    // The interpreter and the JIT agree on everything, faults included.
    // (A disagreement is recorded, and the kernel still says which engine is right.)
    match (&interp, &jit) {
        (Ok(i), Ok(j)) => {
            if let Some(d) = outcome_diff(i, j, true) {
                tally.diverged(format!("{at}: interpreter vs jit: {d}"), gap);
            }
        }
        (Err(i), Err(j)) => {
            if i.to_string() != j.to_string() {
                tally.diverged(format!("{at}: interpreter fault {i}, jit fault {j}"), gap);
            }
        }
        (Ok(_), Err(e)) => tally.error(format!("{at}: jit: {e}"), gap),
        (Err(e), Ok(_)) => tally.diverged(format!("{at}: interpreter failed ({e}), jit ran"), gap),
    }
    if let (Some(Ok(k)), Ok(j)) = (&kernel, &jit)
        && let Some(d) = outcome_diff(k, j, false)
    {
        tally.diverged(format!("{at}: kernel vs jit: {d}"), gap);
    }
    match kernel {
        None => {
            println!("SKIP: {at}: kernel lacks {}", skip.unwrap_or("bpf(2) here"));
            tally.skipped += 1;
            if let Err(e) = interp.as_ref().map_err(ToString::to_string)
                && !e.contains("shorter than the minimum")
            {
                let msg = format!("{at}: {e}");
                tally.unverified_errors.push((classify(&msg), msg));
            }
        }
        Some(Err(ke)) => match interp {
            // Both refuse the input.
            Err(_) => {
                tally.kernel_compared += 1;
                tally.equal += 1;
            }
            Ok(_) => {
                println!(
                    "SKIP: {at}: kernel lacks a test run of this program on this input ({})",
                    first_line(&ke.to_string())
                );
                tally.skipped += 1;
            }
        },
        Some(Ok(k)) => {
            tally.kernel_compared += 1;
            match interp {
                Ok(i) => match outcome_diff(&k, &i, false) {
                    None => tally.equal += 1,
                    Some(d) => tally.diverged(format!("{at}: kernel vs bpflab: {d}"), gap),
                },
                Err(e) => tally
                    .error(format!("{at}: kernel returned {:#x}, bpflab failed: {e}", k.r0), gap),
            }
        }
    }
}

/// Entries of one map that differ, for the report (at most a few).
fn map_diff(a: &[(Vec<u8>, Vec<u8>)], b: &[(Vec<u8>, Vec<u8>)]) -> String {
    let mut out = Vec::new();
    let bm: BTreeMap<&Vec<u8>, &Vec<u8>> = b.iter().map(|(k, v)| (k, v)).collect();
    let am: BTreeMap<&Vec<u8>, &Vec<u8>> = a.iter().map(|(k, v)| (k, v)).collect();
    for (k, v) in &am {
        if bm.get(k) != Some(v) {
            out.push(format!("key {k:02x?}: kernel {v:02x?}, bpflab {:02x?}", bm.get(k)));
        }
    }
    for (k, v) in &bm {
        if !am.contains_key(k) {
            out.push(format!("key {k:02x?}: kernel none, bpflab {v:02x?}"));
        }
    }
    let n = out.len();
    out.truncate(4);
    format!("{n} entries differ: {}", out.join("; "))
}

fn compare_maps(
    unit: &Collection,
    engines: &mut Engines,
    file: &str,
    prog: &str,
    gap: Option<usize>,
    tally: &mut Tally,
) {
    let at = format!("{file}/{prog}");
    let i = dump(unit, engines.interp.as_mut(), file);
    let j = dump(unit, engines.jit.as_mut(), file);
    let (i, j) = match (i, j) {
        (Ok(i), Ok(j)) => (i, j),
        (Err(e), _) | (_, Err(e)) => return tally.error(format!("{at}: dumping maps: {e}"), gap),
    };
    if i != j {
        tally.diverged(format!("{at}: maps differ between interpreter and jit"), gap);
    }
    if let Some(k) = engines.kernel.as_mut() {
        match dump(unit, k.as_mut(), file) {
            Ok(k) => {
                for (name, kv) in &k {
                    let empty = Vec::new();
                    let iv = i.get(name).unwrap_or(&empty);
                    if iv != kv {
                        let d = map_diff(kv, iv);
                        tally.diverged(format!("{at}: map {name} differs: {d}"), gap);
                    }
                }
            }
            Err(e) => println!("SKIP: {at}: kernel lacks map dumping here ({e})"),
        }
    }
}

#[test]
fn corpus_agrees_with_the_kernel() {
    let kernel_ok = match probe() {
        Ok(()) => true,
        Err(e) => {
            println!("SKIP: corpus (all cases): kernel lacks bpf(2) here: {e}");
            false
        }
    };
    let ncpus = if kernel_ok { possible_cpus().expect("possible cpus") } else { 2 };
    let jit = JitEngine::new(
        JitConfig {
            vm: Config { ncpus, ..Config::default() },
            ..JitConfig::with_mode(Mode::Checked)
        },
        standard_helpers(),
    )
    .expect("jit");
    let mut objects: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("corpus dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".bpf.o"))
        .collect();
    objects.sort();

    let mut programs = 0;
    let (mut cases, mut compared, mut equal, mut skipped) = (0, 0, 0, 0);
    let mut error_classes: BTreeMap<&str, usize> = BTreeMap::new();
    let mut divergences = 0;
    let mut unverified: BTreeMap<&str, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    // Per gap: (cases covered, failures seen).
    let mut gap_seen: BTreeMap<usize, (usize, usize)> = BTreeMap::new();
    for path in &objects {
        for (_, t) in run_object(path, ncpus, kernel_ok, &jit) {
            programs += 1;
            cases += t.cases;
            compared += t.kernel_compared;
            equal += t.equal;
            skipped += t.skipped;
            for (class, e) in &t.unverified_errors {
                *unverified.entry(class).or_default() += 1;
                println!("UNVERIFIED ({class}): {e}");
            }
            for (g, n) in &t.gap_cases {
                if *g != usize::MAX {
                    gap_seen.entry(*g).or_default().0 += n;
                }
            }
            for f in &t.failures {
                match f.class {
                    Some(class) => *error_classes.entry(class).or_default() += 1,
                    None => divergences += 1,
                }
                let kind =
                    f.class.map_or("divergence".to_string(), |c| format!("bpflab error, {c}"));
                match f.gap {
                    Some(g) => {
                        gap_seen.entry(g).or_default().1 += 1;
                        println!("GAP ({kind}): {}", f.what);
                    }
                    None => failures.push(format!("({kind}) {}", f.what)),
                }
            }
        }
    }
    if kernel_ok {
        for (g, gap) in EXPECTED_GAPS.iter().enumerate() {
            let at = format!("{}/{}/{}", gap.object, gap.program, gap.frame);
            match gap_seen.get(&g) {
                None | Some((0, _)) => {
                    failures.push(format!("listed gap {at} matches no case of the corpus"))
                }
                Some((_, 0)) => failures.push(format!(
                    "listed gap {at} ({}: {}) now agrees with the kernel: remove it from EXPECTED_GAPS",
                    gap.class, gap.why
                )),
                Some(_) => {}
            }
        }
    }
    let errors: usize = error_classes.values().sum();
    let list = |m: &BTreeMap<&str, usize>| {
        if m.is_empty() {
            "none".to_string()
        } else {
            m.iter().map(|(c, n)| format!("{c} {n}")).collect::<Vec<_>>().join(", ")
        }
    };
    println!(
        "corpus: {} objects, {programs} programs, {cases} cases, {compared} kernel-compared, \
         {equal} equal, {skipped} skipped, {errors} bpflab errors ({}), {divergences} \
         divergences, {} unverified bpflab errors ({}), {} expected gaps",
        objects.len(),
        list(&error_classes),
        unverified.values().sum::<usize>(),
        list(&unverified),
        EXPECTED_GAPS.len()
    );
    for f in &failures {
        println!("FAIL: {f}");
    }
    assert!(objects.len() >= 40, "the corpus has {} objects, expected at least 40", objects.len());
    if kernel_ok {
        assert!(compared > 500, "too few cases compared with the kernel: {compared}");
    }
    assert!(failures.is_empty(), "{} corpus failures (see FAIL lines above)", failures.len());
}

/// Runs `program` of `file` on the named frames, one after the other on one fresh instance (with
/// the object's setup), on the interpreter and the JIT; returns the interpreter's outcomes after
/// checking the JIT's are the same.
fn simulate(file: &str, program: &str, frame_names: &[&str]) -> Vec<RunOutcome> {
    let path = corpus_dir().join(file);
    let bytes = std::fs::read(&path).expect("read object");
    let obj = bpflab_loader::load(&bytes, &load_options(&path, file)).expect("object loads");
    let p = obj.collection.programs.iter().position(|q| q.name == program).expect("program");
    let jit = JitEngine::new(
        JitConfig {
            vm: Config { ncpus: 2, ..Config::default() },
            ..JitConfig::with_mode(Mode::Checked)
        },
        standard_helpers(),
    )
    .expect("jit");
    let mut engines =
        instantiate(&obj.collection, 2, &jit, None, &obj, file).expect("engines instantiate");
    let all = frames::all();
    frame_names
        .iter()
        .map(|name| {
            let bytes = &all.iter().find(|(n, _)| n == name).expect("frame exists").1;
            let input = RunInput::data(bytes.clone());
            let i = engines.interp.run(p, &input).expect("interpreter runs");
            let j = engines.jit.run(p, &input).expect("jit runs");
            assert_eq!(outcome_diff(&i, &j, true), None, "{file}/{program}/{name}: jit differs");
            i
        })
        .collect()
}

/// Verdicts and rewritten packets the corpus programs must produce, worked out from their
/// source (independent of the kernel, so they hold where `bpf(2)` is unavailable too).
#[test]
fn corpus_programs_give_the_answers_their_sources_imply() {
    const XDP_PASS: u64 = 2;
    const XDP_TX: u64 = 3;
    let r0 = |file: &str, prog: &str, names: &[&str]| -> Vec<u64> {
        simulate(file, prog, names).iter().map(|o| o.r0).collect()
    };

    // Verdicts as numbers: XDP_DROP 1, XDP_PASS 2, XDP_TX 3.
    // Blocklists: exact IPv4, an IPv4 /24 from the LPM trie, exact IPv6; others pass.
    let fw = ["v4_tcp_syn_blocked", "v4_tcp_syn_blocknet", "v6_tcp_blocked", "v4_tcp_syn_vip80"];
    assert_eq!(r0("xdp_fw_blocklist.bpf.o", "xdp_firewall", &fw), [1, 1, 1, 2]);
    // Source routes are dropped, record route passes, TTL 1 is dropped.
    let opts = ["v4_opt_lsrr", "v4_opt_record_route", "v4_ttl1_tcp"];
    assert_eq!(r0("xdp_ipv4_options.bpf.o", "xdp_ip_options", &opts), [1, 2, 1]);
    // Non-first fragments are dropped; a first UDP fragment to port 53 passes.
    let frags = ["v4_frag_later", "v4_frag_first", "v4_tcp_syn_vip80"];
    assert_eq!(r0("xdp_frag_guard.bpf.o", "xdp_frag_filter", &frags), [1, 2, 2]);
    // The third SYN from one source passes the threshold of 2.
    let syns = ["v4_tcp_syn_vip80", "v4_tcp_syn_vip443", "v4_tcp_syn_other", "v4_udp_ntp_reflect"];
    assert_eq!(r0("xdp_ddos_syn.bpf.o", "xdp_ddos", &syns), [2, 2, 1, 1]);

    // GRE decapsulation removes the outer IPv4 and GRE headers (24 bytes); keyed GRE is left.
    let out = simulate("xdp_tunnel_decap.bpf.o", "xdp_decap", &["v4_gre_tcp", "v4_gre_keyed"]);
    let gre = frames::all().into_iter().find(|(n, _)| *n == "v4_gre_tcp").unwrap().1;
    assert_eq!((out[0].r0, out[0].data.len()), (XDP_PASS, gre.len() - 24));
    assert_eq!(&out[0].data[14..], &gre[14 + 24..], "the inner IPv4 packet follows Ethernet");
    assert_eq!(out[1].r0, XDP_PASS);

    // The echo responder answers with a valid echo reply to the sender.
    let out = simulate("xdp_icmp_echo.bpf.o", "xdp_icmp_echo_func", &["v4_icmp_echo_vip"]);
    assert_eq!(out[0].r0, XDP_TX);
    let reply = &out[0].data;
    assert_eq!(
        (reply[34], &reply[26..30], &reply[30..34]),
        (0, &frames::VIP4[..], &frames::CLIENT4[..])
    );
    assert!(frames::ipv4_checksums_ok(reply, 14), "echo reply checksums verify");

    // tc DNAT: 192.0.2.1:80 -> 10.0.0.2:8080 with both checksums still valid.
    let out = simulate("tc_nat_csum.bpf.o", "tc_dnat", &["v4_tcp_syn_vip80"]);
    let pkt = &out[0].data;
    assert_eq!((&pkt[30..34], u16::from_be_bytes([pkt[36], pkt[37]])), (&[10, 0, 0, 2][..], 8080));
    assert!(frames::ipv4_checksums_ok(pkt, 14), "DNATed checksums verify");

    // katran-like: VIP traffic is IPIP-encapsulated towards a real, with a valid outer header.
    let out = simulate("katran_like.bpf.o", "balancer_ingress", &["v4_tcp_syn_vip80"]);
    let pkt = &out[0].data;
    assert_eq!((out[0].r0, pkt.len(), pkt[14 + 9]), (XDP_TX, 54 + 20, 4));
    assert!(frames::ipv4_checksums_ok(pkt, 14), "outer IPv4 header checksum verifies");
    assert_eq!(&pkt[14 + 16..14 + 20], &[10, 0, 0, 2], "real 0 for the first ring slot");

    // katran's IPv6 path: IPv6-in-IPv6 (next header 41) towards the real, 40 bytes longer.
    let out = simulate("katran_v6_encap.bpf.o", "balancer_ingress_v6", &["v6_tcp_syn_vip80"]);
    let pkt = &out[0].data;
    assert_eq!((out[0].r0, pkt.len(), pkt[14 + 6]), (XDP_TX, 74 + 40, 41));
    assert_eq!(&pkt[14 + 24..14 + 28], &[0x20, 1, 0x0d, 0xb8], "outer destination is the real");

    // VXLAN encapsulation: outer IPv4/UDP(4789)/VXLAN(VNI 42) + the original frame, 50 bytes
    // longer, with a valid outer IPv4 checksum and UDP checksum 0.
    let out = simulate("tc_vxlan_encap.bpf.o", "tc_vxlan_push", &["v4_tcp_syn_vip80"]);
    let pkt = &out[0].data;
    assert_eq!((out[0].r0, pkt.len(), pkt[14 + 9]), (0, 54 + 50, 17));
    assert_eq!(u16::from_be_bytes([pkt[36], pkt[37]]), 4789);
    assert_eq!(&pkt[42..50], &[8, 0, 0, 0, 0, 0, 42, 0], "VXLAN header with VNI 42");
    assert_eq!(&pkt[50..], &frames::all()[0].1[..], "the original frame follows");
    assert!(frames::ipv4_checksums_ok(pkt, 14), "outer checksums verify");

    // VLAN translation keeps the priority bits and maps 10 -> 110, QinQ 20/30 -> 120/130.
    let out = simulate(
        "xdp_vlan_translate.bpf.o",
        "xdp_vlan_xlate",
        &["vlan_v4_tcp_vip80", "qinq_v4_udp"],
    );
    assert_eq!((out[0].r0, &out[0].data[14..16]), (XDP_TX, &110u16.to_be_bytes()[..]));
    assert_eq!(
        (&out[1].data[14..16], &out[1].data[18..20]),
        (&120u16.to_be_bytes()[..], &130u16.to_be_bytes()[..])
    );
}
