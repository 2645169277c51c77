//! One collection on every engine: the interpreter and the kernel must agree on return codes,
//! output packets and map contents.

use bpflab_kernel::{KernelEngine, probe};
use bpflab_vm::asm::assemble;
use bpflab_vm::spec::DataSection;
use bpflab_vm::{
    Collection, Engine, Interpreter, Loaded, MapSpec, MapType, ProgType, Program, RunInput,
};

fn packet() -> Vec<u8> {
    let mut p = vec![0u8; 64];
    p[12] = 0x08;
    p[23] = 6;
    p
}

/// A counter program: counts packets per IP protocol in a hash map and in a per-CPU array,
/// keeps a running byte total in .bss-like global data, returns XDP_PASS.
fn collection() -> Collection {
    let src = "
        r6 = r1
        r2 = *(u32 *)(r6 + 0)
        r3 = *(u32 *)(r6 + 4)
        r4 = r2
        r4 += 24
        if r4 > r3 goto out
        r7 = *(u8 *)(r2 + 23)
        *(u32 *)(r10 - 4) = r7
        r1 = map[idx:0] ll
        r2 = r10
        r2 += -4
        call bpf_map_lookup_elem
        if r0 == 0 goto insert
        r1 = 1
        lock *(u64 *)(r0 + 0) += r1
        goto percpu
    insert:
        *(u64 *)(r10 - 16) = 1
        r1 = map[idx:0] ll
        r2 = r10
        r2 += -4
        r3 = r10
        r3 += -16
        r4 = 1
        call bpf_map_update_elem
    percpu:
        *(u32 *)(r10 - 4) = 0
        r1 = map[idx:1] ll
        r2 = r10
        r2 += -4
        call bpf_map_lookup_elem
        if r0 == 0 goto out
        r1 = *(u64 *)(r0 + 0)
        r1 += 1
        *(u64 *)(r0 + 0) = r1
        r1 = map[idx:2][0]+8 ll
        r2 = *(u32 *)(r6 + 4)
        r3 = *(u32 *)(r6 + 0)
        r2 -= r3
        r3 = *(u64 *)(r1 + 0)
        r3 += r2
        *(u64 *)(r1 + 0) = r3
    out:
        r0 = 2
        exit";
    let insns = assemble(src).expect("assemble");
    let mut globals = MapSpec::new("prog.bss", MapType::Array, 4, 16, 1);
    globals.data = Some((DataSection::Bss, vec![0; 16]));
    Collection {
        maps: vec![
            MapSpec::new("by_proto", MapType::Hash, 4, 8, 16),
            MapSpec::new("total", MapType::PercpuArray, 4, 8, 1),
            globals,
        ],
        programs: vec![Program::raw("count", insns).with_type(ProgType::Xdp)],
        ..Collection::default()
    }
}

fn dump(loaded: &mut dyn Loaded, map: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut keys = loaded.map_keys(map).expect("keys");
    keys.sort();
    keys.into_iter()
        .map(|k| {
            let v = loaded.map_lookup(map, &k).expect("lookup").expect("present");
            (k, v)
        })
        .collect()
}

#[test]
fn interpreter_and_kernel_agree_on_returns_packets_and_maps() {
    if let Err(e) = probe() {
        println!("SKIP: the kernel cannot load BPF programs here: {e}");
        return;
    }
    let c = collection();
    let ncpus = bpflab_kernel::possible_cpus().expect("possible cpus");
    let interp = Interpreter::new(
        bpflab_vm::Config { ncpus, ..Default::default() },
        bpflab_vm::standard_helpers(),
    );
    let engines: Vec<(&str, Box<dyn Loaded>)> = vec![
        ("interp", interp.load(&c).expect("interp load")),
        ("kernel", KernelEngine.load(&c).expect("kernel load")),
    ];
    let mut results = Vec::new();
    for (name, mut loaded) in engines {
        let mut outs = Vec::new();
        for (i, proto) in [6u8, 17, 6, 6, 1].into_iter().enumerate() {
            let mut p = packet();
            p[23] = proto;
            p.truncate(40 + i);
            let out = loaded.run(0, &RunInput::data(p)).expect("run");
            outs.push((out.r0, out.data));
        }
        let maps: Vec<_> = (0..3).map(|m| dump(loaded.as_mut(), m)).collect();
        results.push((name, outs, maps));
    }
    let (_, i_outs, i_maps) = &results[0];
    let (_, k_outs, k_maps) = &results[1];
    assert_eq!(i_outs, k_outs, "return codes and output packets");
    assert_eq!(i_maps[0], k_maps[0], "hash map by_proto");
    assert_eq!(i_maps[0].len(), 3);
    // The per-CPU array: the run happened on one CPU, the others stay zero, on both engines.
    let total: u64 =
        i_maps[1][0].1.chunks(8).map(|c| u64::from_le_bytes(c.try_into().unwrap())).sum();
    assert_eq!(total, 5);
    let k_total: u64 =
        k_maps[1][0].1.chunks(8).map(|c| u64::from_le_bytes(c.try_into().unwrap())).sum();
    assert_eq!(k_total, 5);
    assert_eq!(i_maps[2], k_maps[2], "global data");
    assert_eq!(
        u64::from_le_bytes(i_maps[2][0].1[8..16].try_into().unwrap()),
        40 + 41 + 42 + 43 + 44
    );
}
