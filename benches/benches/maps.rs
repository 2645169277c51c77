//! Huge maps and the per-run map diff, on `programs/tests/huge_maps.bpf.o` (katran's
//! balancer_ingress map shapes: arrays of 33,554,944 and 16,777,214 entries, a 65,536-entry
//! per-CPU array and `.bss`), on the interpreter:
//!
//! - `huge_maps/load_and_run`: what `bpflab run OBJ --packet HEX` does before printing: parse
//!   the ELF (bytes already read), create the maps and lower the program, run one IPv4 packet.
//!   Target: under 100 ms (it was an `ENOMEM` refusal before sparse arrays).
//! - `map_diff/run_with_diff`: one run with its map diff, as `bpflab run --json` takes it
//!   (`World::begin_changes`, the run, `World::take_changes`) on a loaded instance; the run
//!   touches five elements, among them one of the 65,536-entry per-CPU array.
//! - `map_diff/run_only`: the same run without the diff, for the diff's share.
#![allow(missing_docs)]

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bpflab_loader::{LoadOptions, load};
use bpflab_vm::interp::Instance;
use bpflab_vm::{Config, Interpreter, RunInput, standard_helpers};
use criterion::{Criterion, criterion_group, criterion_main};

/// Simulated CPUs (per-CPU values hold one slot each).
const NCPUS: u32 = 2;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../programs/tests/huge_maps.bpf.o")
}

fn packet() -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../programs/tests/packets/ipv4_udp.bin");
    std::fs::read(path).expect("packet")
}

/// Loads the object and instantiates it; returns the instance and the program's index.
fn instantiate(bytes: &[u8]) -> (Instance, usize) {
    let obj = load(bytes, &LoadOptions::for_path(fixture())).expect("huge_maps.bpf.o loads");
    let prog = obj
        .collection
        .programs
        .iter()
        .position(|p| p.name == "balancer_ingress")
        .expect("balancer_ingress");
    let interp = Interpreter::new(Config { ncpus: NCPUS, ..Config::default() }, standard_helpers());
    (interp.instantiate(&obj.collection).expect("maps created"), prog)
}

fn bench(c: &mut Criterion) {
    let bytes = std::fs::read(fixture()).expect("huge_maps.bpf.o");
    let input = RunInput::data(packet());
    {
        let (mut inst, prog) = instantiate(&bytes);
        inst.world.begin_changes();
        assert_eq!(inst.run(prog, &input).expect("run").r0, 3, "XDP_TX");
        assert_eq!(inst.world.take_changes().len(), 5, "five elements change");
    }

    let mut g = c.benchmark_group("huge_maps");
    g.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3)).sample_size(20);
    g.bench_function("load_and_run", |b| {
        b.iter(|| {
            let (mut inst, prog) = instantiate(black_box(&bytes));
            black_box(inst.run(prog, &input).expect("run").r0)
        })
    });
    g.finish();

    let mut g = c.benchmark_group("map_diff");
    g.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3)).sample_size(50);
    let (mut inst, prog) = instantiate(&bytes);
    g.bench_function("run_with_diff", |b| {
        b.iter(|| {
            inst.world.begin_changes();
            let r0 = inst.run(prog, &input).expect("run").r0;
            black_box((r0, inst.world.take_changes()))
        })
    });
    g.bench_function("run_only", |b| b.iter(|| black_box(inst.run(prog, &input).expect("run").r0)));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
