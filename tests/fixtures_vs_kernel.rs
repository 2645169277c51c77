//! Every fixture program the kernel can test-run, run by bpflab's interpreter and by the kernel
//! on the same inputs: the verdict, the output packet, the context afterwards and every map's
//! contents must agree.

use std::path::{Path, PathBuf};

use bpflab::object::{MapDump, apply_initial_values, dump_maps};
use bpflab_kernel::features::features;
use bpflab_kernel::{KernelEngine, possible_cpus, probe};
use bpflab_loader::{LoadOptions, Object};
use bpflab_vm::profile::KernelProfile;
use bpflab_vm::{Config, Interpreter, Loaded, MapType, ProgType, RunInput, standard_helpers};

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("programs/tests")
}

/// The inputs a program of this type is run on: packets, or context files.
fn inputs(prog_type: ProgType, name: &str) -> Vec<(String, RunInput)> {
    let dir = fixtures_dir().join("packets");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("packets dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "bin"))
        .collect();
    files.sort();
    let read = |p: &PathBuf| std::fs::read(p).expect("read input");
    let stem = |p: &PathBuf| p.file_stem().unwrap().to_string_lossy().into_owned();
    match prog_type {
        ProgType::Xdp
        | ProgType::SchedCls
        | ProgType::SchedAct
        | ProgType::SocketFilter
        | ProgType::CgroupSkb => files
            .iter()
            .filter(|p| !stem(p).starts_with("ctx_"))
            .map(|p| (stem(p), RunInput::data(read(p))))
            .collect(),
        ProgType::RawTracepoint | ProgType::SkLookup | ProgType::Syscall => {
            let prefix = match prog_type {
                ProgType::RawTracepoint => "ctx_raw_tp",
                ProgType::SkLookup => "ctx_sk_lookup",
                _ => "ctx_syscall",
            };
            files
                .iter()
                .filter(|p| stem(p).starts_with(prefix))
                .map(|p| {
                    let mut input = RunInput::default();
                    input.ctx = Some(read(p));
                    (format!("{name}:{}", stem(p)), input)
                })
                .collect()
        }
        _ => Vec::new(),
    }
}

/// Per-CPU values hold one slot per CPU, and the kernel runs a test on whichever CPU it is on:
/// compare the slots as a sorted list, not by CPU.
fn normalise(map_type: MapType, dump: &MapDump, value_size: u32) -> MapDump {
    let percpu =
        matches!(map_type, MapType::PercpuArray | MapType::PercpuHash | MapType::LruPercpuHash);
    if !percpu {
        return dump.clone();
    }
    let stride = (value_size as usize).div_ceil(8) * 8;
    dump.iter()
        .map(|(k, v)| {
            let mut slots: Vec<&[u8]> = v.chunks(stride).collect();
            slots.sort();
            (k.clone(), slots.concat())
        })
        .collect()
}

/// Maps whose contents depend on time, randomness or the kernel's own state, by fixture.
const NONDETERMINISTIC_MAPS: &[(&str, &str, &str)] = &[
    ("helpers_misc.bpf.o", "*", "clock readings and random numbers"),
    ("maps_lru.bpf.o", "*", "the kernel's LRU is approximate (per-CPU lists): its victims differ"),
    // Listing 50 million array elements through bpf(2) takes minutes: tests/huge_maps.rs
    // compares the elements the runs touched instead.
    ("huge_maps.bpf.o", "*", "arrays of 33,554,944 and 16,777,214 entries"),
];

#[derive(Debug)]
struct Divergence {
    what: String,
}

/// Load options user space gives some fixtures, as libbpf users would: map sizes
/// (`bpf_map__set_max_entries`) and types of programs in sections libbpf does not know
/// (`bpf_program__set_type`).
fn fixture_options(path: &Path, features: &KernelProfile) -> LoadOptions {
    let mut opts = LoadOptions::for_path(path);
    opts.kconfig = features.kconfig.clone();
    opts.kernel_version = Some(features.version_code);
    let file = path.file_name().unwrap().to_string_lossy();
    if file == "user_sized_maps.bpf.o" {
        opts.map_sizes.insert("len_counts".into(), 64);
        opts.map_sizes.insert("slots".into(), 16);
    }
    opts
}

fn compare_object(
    path: &Path,
    features: &KernelProfile,
    divergences: &mut Vec<Divergence>,
) -> usize {
    let file = path.file_name().unwrap().to_string_lossy().into_owned();
    let bytes = std::fs::read(path).expect("read object");
    let obj: Object = match bpflab_loader::load(&bytes, &fixture_options(path, features)) {
        Ok(o) => o,
        Err(e) => {
            divergences.push(Divergence { what: format!("{file}: loader: {e}") });
            return 0;
        }
    };
    // Only the programs the kernel can test-run; maps stay as they are (indices unchanged).
    // A program this kernel lacks a feature for is left out with one SKIP line; so is one
    // that only loading needs (fentry, lsm) where it keeps the others from loading.
    let mut runnable = Vec::new();
    let mut left_out = Vec::new();
    for (i, p) in obj.collection.programs.iter().enumerate() {
        let tested = !inputs(p.prog_type, &p.name).is_empty();
        let missing = if tested {
            features.missing_for_test_run(&obj.collection, i)
        } else {
            features.missing_for_program(&obj.collection, i)
        };
        if p.prog_type == ProgType::Unspec {
            left_out.push(i);
        } else if !missing.is_empty() {
            let what: Vec<String> = missing.iter().map(ToString::to_string).collect();
            if tested {
                println!("SKIP: {file} {}: kernel lacks {}", p.name, what.join(", "));
            }
            left_out.push(i);
        } else if tested {
            runnable.push(i);
        }
    }
    if runnable.is_empty() {
        return 0;
    }
    let collection = obj.collection.clone();
    let mut kernel: Box<dyn Loaded> =
        match KernelEngine.load_collection_except(&collection, &left_out) {
            Ok(k) => Box::new(k),
            Err(e) => {
                divergences.push(Divergence {
                    what: format!("{file}: the kernel has its features but refused it: {e}"),
                });
                return 0;
            }
        };
    let ncpus = possible_cpus().expect("possible cpus");
    let interp = Interpreter::new(Config { ncpus, ..Config::default() }, standard_helpers());
    let mut inst = match interp.instantiate(&collection) {
        Ok(s) => s,
        Err(e) => {
            divergences.push(Divergence { what: format!("{file}: interpreter cannot load: {e}") });
            return 0;
        }
    };
    // The kernel runs tracing programs in the calling thread: simulate that thread.
    inst.world.kernel.set_current(bpflab_kernel::calling_thread_task()).expect("simulated task");
    // No perf event reader is attached on the kernel side: close the simulator's entries.
    for (m, spec) in collection.maps.iter().enumerate() {
        if spec.map_type == MapType::PerfEventArray {
            for cpu in 0..inst.world.ncpus {
                let _ = inst.world.delete(m, &cpu.to_le_bytes());
            }
        }
    }
    let mut sim: Box<dyn Loaded> = Box::new(inst);
    for loaded in [kernel.as_mut(), sim.as_mut()] {
        apply_initial_values(&obj, loaded).expect("initial values");
    }
    let mut cases = 0;
    for &p in &runnable {
        let prog = &collection.programs[p];
        for (label, input) in inputs(prog.prog_type, &prog.name) {
            cases += 1;
            let k = kernel.run(p, &input);
            let s = sim.run(p, &input);
            let at = format!("{file} {} on {label}", prog.name);
            match (k, s) {
                (Ok(k), Ok(s)) => {
                    if k.r0 as u32 != s.r0 as u32 {
                        divergences.push(Divergence {
                            what: format!("{at}: r0 kernel {:#x}, bpflab {:#x}", k.r0, s.r0),
                        });
                    }
                    if k.data != s.data {
                        divergences.push(Divergence {
                            what: format!(
                                "{at}: output packet differs\n  kernel {:02x?}\n  bpflab {:02x?}",
                                k.data, s.data
                            ),
                        });
                    }
                    if k.ctx.is_some() && k.ctx != s.ctx {
                        divergences.push(Divergence {
                            what: format!(
                                "{at}: ctx_out differs\n  kernel {:02x?}\n  bpflab {:02x?}",
                                k.ctx, s.ctx
                            ),
                        });
                    }
                }
                (Err(_), Err(_)) => {}
                (Ok(k), Err(e)) => divergences.push(Divergence {
                    what: format!("{at}: kernel returned {:#x}, bpflab failed: {e}", k.r0),
                }),
                (Err(e), Ok(s)) => divergences.push(Divergence {
                    what: format!("{at}: bpflab returned {:#x}, kernel failed: {e}", s.r0),
                }),
            }
        }
    }
    let skip_maps = NONDETERMINISTIC_MAPS.iter().any(|(f, _, _)| *f == file);
    if !skip_maps {
        let kd = dump_maps(&obj, kernel.as_mut());
        let sd = dump_maps(&obj, sim.as_mut());
        match (kd, sd) {
            (Ok(kd), Ok(sd)) => {
                for (i, spec) in collection.maps.iter().enumerate() {
                    // Maps whose user-side values are kernel objects (fds, ids) cannot compare.
                    if matches!(
                        spec.map_type,
                        MapType::ProgArray
                            | MapType::ArrayOfMaps
                            | MapType::HashOfMaps
                            | MapType::Sockmap
                            | MapType::Sockhash
                            | MapType::PerfEventArray
                            | MapType::Ringbuf
                            | MapType::Queue
                            | MapType::Stack
                    ) {
                        continue;
                    }
                    let (a, b) = (
                        normalise(spec.map_type, &kd[i], spec.value_size),
                        normalise(spec.map_type, &sd[i], spec.value_size),
                    );
                    if a != b {
                        divergences.push(Divergence {
                            what: format!(
                                "{file}: map {} differs\n  kernel {a:02x?}\n  bpflab {b:02x?}",
                                spec.name
                            ),
                        });
                    }
                }
            }
            (Err(e), _) | (_, Err(e)) => {
                divergences.push(Divergence { what: format!("{file}: dumping maps: {e}") })
            }
        }
    }
    cases
}

#[test]
fn every_test_runnable_fixture_agrees_with_the_kernel() {
    if let Err(e) = probe() {
        println!("SKIP: the kernel cannot load BPF programs here: {e}");
        return;
    }
    let features = features().expect("kernel features");
    let mut objects: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".bpf.o"))
        .collect();
    objects.sort();
    let mut divergences = Vec::new();
    let mut total = 0;
    for path in &objects {
        let n = compare_object(path, features, &mut divergences);
        println!("{}: {n} cases", path.file_name().unwrap().to_string_lossy());
        total += n;
    }
    println!(
        "fixtures-vs-kernel: {total} cases over {} objects, {} divergences",
        objects.len(),
        divergences.len()
    );
    for d in &divergences {
        println!("DIVERGENCE {}", d.what);
    }
    assert!(total > 100, "too few cases ran: {total}");
    assert!(divergences.is_empty(), "{} divergences (see above)", divergences.len());
}
