//! bpflab's interpreter against rbpf 0.4's interpreter on the same bytecode and input.
//!
//! One iteration is one full program run, including putting the input into the VM (a copy of
//! the packet for both: bpflab's `run_raw` takes a `Vec` it maps as the input region, rbpf's
//! `execute_program` a mutable slice). Preparing, verifying and lowering happen outside the
//! timed loop. Both engines are checked to return the expected r0 before timing.

use std::hint::black_box;
use std::time::Duration;

use bpflab_benches::{alu_loop, alu_loop_expected, packet_64, packet_parse, packet_parse_expected};
use bpflab_vm::isa::{Insn, encode_bytes};
use bpflab_vm::{Interpreter, Program};
use criterion::{Criterion, criterion_group, criterion_main};

/// Benchmarks `insns` on `input` in both interpreters, in a group named `name`.
fn compare(c: &mut Criterion, name: &str, insns: Vec<Insn>, input: &[u8], expected: u64) {
    let code = encode_bytes(&insns);

    let mut prepared = Interpreter::default()
        .prepare(&Program::raw(name, insns))
        .unwrap_or_else(|e| panic!("{name}: bpflab cannot prepare: {e}"));
    let mut data: Vec<u8> = Vec::with_capacity(input.len());
    let mut bpflab_run = |data: &mut Vec<u8>| {
        data.clear();
        data.extend_from_slice(input);
        prepared.run_raw(data).map(|(r0, _)| r0)
    };

    let rbpf_vm = rbpf::EbpfVmRaw::new(Some(&code))
        .unwrap_or_else(|e| panic!("{name}: rbpf rejects the program: {e}"));
    let mut mem = vec![0u8; input.len()];
    let rbpf_run = |mem: &mut Vec<u8>| {
        mem.copy_from_slice(input);
        rbpf_vm.execute_program(mem)
    };

    let got = bpflab_run(&mut data).unwrap_or_else(|e| panic!("{name}: bpflab faults: {e}"));
    assert_eq!(got, expected, "{name}: bpflab returns a wrong r0");
    let got = rbpf_run(&mut mem).unwrap_or_else(|e| panic!("{name}: rbpf faults: {e}"));
    assert_eq!(got, expected, "{name}: rbpf returns a wrong r0");

    let mut group = c.benchmark_group(name);
    group.bench_function("bpflab_interp", |b| {
        b.iter(|| black_box(bpflab_run(black_box(&mut data)).unwrap()));
    });
    group.bench_function("rbpf_interp", |b| {
        b.iter(|| black_box(rbpf_run(black_box(&mut mem)).unwrap()));
    });
    group.finish();
}

fn alu(c: &mut Criterion) {
    compare(c, "alu_loop", alu_loop(), &[], alu_loop_expected());
}

fn packet(c: &mut Criterion) {
    let pkt = packet_64();
    compare(c, "packet_parse", packet_parse(), &pkt, packet_parse_expected(&pkt));
}

fn config() -> Criterion {
    Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(50)
}

criterion_group! {
    name = benches;
    config = config();
    targets = alu, packet
}
criterion_main!(benches);
