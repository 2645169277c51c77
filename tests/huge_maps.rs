//! programs/tests/huge_maps.bpf.o: katran's balancer_ingress map shapes (arrays of
//! 33,554,944 and 16,777,214 entries, a 65,536-entry per-CPU array). The object loads and runs
//! on the interpreter and the JIT (which agree with each other, and with the element the
//! program's hash addresses), the interpreter agrees with the kernel on every packet and on
//! every map element it touched plus the first and last of each map (listing 50 million
//! kernel elements is out of reach), and `bpflab run --json` reports exactly the changes.

use std::path::{Path, PathBuf};
use std::process::Command;

use bpflab::machine::Machine;
use bpflab_kernel::{KernelEngine, possible_cpus, probe};
use bpflab_loader::{LoadOptions, Object};
use bpflab_vm::world::MapChange;
use bpflab_vm::{Config, Engine, Loaded, MapType, RunInput};
use serde_json::{Value, json};

const CH_RINGS: u32 = 512 * 65_537;
const QUIC_REALS: u32 = 0x00ff_fffe;
const STATS: u32 = 65_536;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("programs/tests")
}

fn object() -> Object {
    let path = fixtures().join("huge_maps.bpf.o");
    let bytes = std::fs::read(&path).expect("read huge_maps.bpf.o");
    bpflab_loader::load(&bytes, &LoadOptions::for_path(&path)).expect("huge_maps.bpf.o loads")
}

/// Every frame of programs/tests/packets (not the context blobs), by name. Runts shorter
/// than an Ethernet header are left out: the kernel's XDP test run refuses them (-EINVAL), and
/// bpflab too.
fn packets() -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(fixtures().join("packets"))
        .expect("packets dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "bin"))
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with("ctx_"))
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.len() >= 14))
        .map(|p| {
            (p.file_stem().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap())
        })
        .collect();
    out.sort();
    out
}

/// What the program computes for an IPv4 frame: the ch_rings index, the real and the vip.
fn expected_slot(frame: &[u8]) -> (u32, u32, u32) {
    let word = |at: usize| u32::from_le_bytes(frame[at..at + 4].try_into().unwrap());
    let mut hash = word(26).wrapping_mul(2_654_435_761) ^ word(30);
    hash ^= hash >> 15;
    let vip = hash % 512;
    let key = vip * 65_537 + (hash >> 9) % 65_537;
    (key, (hash & 0xfff) + 1, vip)
}

fn is_ipv4(frame: &[u8]) -> bool {
    frame.len() >= 34 && frame[12..14] == [0x08, 0x00]
}

fn prog(obj: &Object) -> usize {
    obj.collection.programs.iter().position(|p| p.name == "balancer_ingress").expect("program")
}

fn map(obj: &Object, name: &str) -> usize {
    obj.collection.maps.iter().position(|m| m.name == name).expect("map")
}

/// Per-CPU values in CPU order; the kernel runs a test on whichever CPU it is on, so the
/// slots are compared as a sorted list.
fn normalise(map_type: MapType, value: Option<Vec<u8>>, value_size: u32) -> Option<Vec<u8>> {
    if map_type != MapType::PercpuArray {
        return value;
    }
    let stride = (value_size as usize).div_ceil(8) * 8;
    value.map(|v| {
        let mut slots: Vec<&[u8]> = v.chunks(stride).collect();
        slots.sort();
        slots.concat()
    })
}

/// Runs every packet on the interpreter or the JIT in one change window.
/// Each run's r0 and output packet.
type Outcomes = Vec<(u64, Vec<u8>)>;

fn run_sim(obj: &Object, ncpus: u32, jit: bool) -> (Machine, Outcomes, Vec<MapChange>) {
    let config = Config { ncpus, ..Config::default() };
    let mut machine = Machine::load(&obj.collection, config, jit).expect("huge maps load");
    machine.world_mut().begin_changes();
    let mut outs = Vec::new();
    for (name, frame) in packets() {
        let out = machine
            .run(prog(obj), &RunInput::data(frame))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        outs.push((out.r0, out.data));
    }
    let changes = machine.world_mut().take_changes();
    (machine, outs, changes)
}

#[test]
fn huge_maps_run_on_the_interpreter_and_the_jit_touching_only_what_they_write() {
    let obj = object();
    let ncpus = 2;
    let (mut interp, outs, changes) = run_sim(&obj, ncpus, false);
    let (mut jit, jit_outs, jit_changes) = run_sim(&obj, ncpus, true);
    assert_eq!(outs, jit_outs, "interpreter and JIT verdicts and packets");
    assert_eq!(changes, jit_changes, "interpreter and JIT map changes");
    let (ch, srv, stats) = (map(&obj, "ch_rings"), map(&obj, "server_id_map"), map(&obj, "stats"));
    let sizes: Vec<u32> =
        [ch, srv, stats].iter().map(|&m| obj.collection.maps[m].max_entries).collect();
    assert_eq!(sizes, [CH_RINGS, QUIC_REALS, STATS], "katran's map sizes");
    let packets = packets();
    let mut v4 = 0;
    for ((name, frame), (r0, data)) in packets.iter().zip(&outs) {
        assert_eq!(data, frame, "{name}: the packet is not rewritten");
        let want = if is_ipv4(frame) { 3 } else { 2 };
        assert_eq!(*r0, want, "{name}: XDP_TX for IPv4, XDP_PASS otherwise");
        if is_ipv4(frame) {
            v4 += 1;
            let (key, real, _) = expected_slot(frame);
            let world = interp.world_mut();
            assert_eq!(
                world.lookup(ch, &key.to_le_bytes()).unwrap(),
                Some(real.to_le_bytes().to_vec())
            );
        }
    }
    assert!(v4 >= 2, "the packets include IPv4 frames ({v4})");
    // Every change is to one of the elements the packets address, and each of those shows.
    for c in &changes {
        let name = &obj.collection.maps[c.map].name;
        let idx = u32::from_le_bytes(c.key[..4].try_into().unwrap());
        assert!(c.old.is_some() && c.new.is_some(), "array elements never disappear: {c:?}");
        match name.as_str() {
            "ch_rings" => assert_eq!(c.old, Some(vec![0; 4]), "{c:?}"),
            "server_id_map" | "stats" => {}
            n => assert!(n.ends_with(".bss") && idx == 0, "{c:?}"),
        }
    }
    let last = changes.iter().find(|c| c.map == srv && c.key == (QUIC_REALS - 1).to_le_bytes());
    assert!(last.is_some(), "server_id_map's last index was written: {changes:?}");
    let other = changes.iter().find(|c| c.map == stats && c.key == (STATS - 1).to_le_bytes());
    let non_ip = packets.iter().filter(|(_, f)| !is_ipv4(f)).count() as u64;
    let slot = other.and_then(|c| c.new.clone()).expect("stats[65535] counts non-IPv4 frames");
    assert_eq!(u64::from_le_bytes(slot[..8].try_into().unwrap()), non_ip);
    // Memory: a region per element touched (and per CPU), not per entry.
    for m in [&mut interp, &mut jit] {
        let regions = m.world_mut().mem.next_id().index();
        assert!(regions < 200, "{regions} regions for {} elements touched", changes.len());
    }
}

#[test]
fn huge_maps_agree_with_the_kernel_on_every_element_touched() {
    if let Err(e) = probe() {
        println!("SKIP: huge_maps: kernel lacks BPF program loading: {e}");
        return;
    }
    let obj = object();
    let ncpus = possible_cpus().expect("possible cpus");
    let mut kernel: Box<dyn Loaded> = match KernelEngine.load(&obj.collection) {
        Ok(k) => k,
        Err(e) => {
            println!("SKIP: huge_maps: kernel lacks room for 33,554,944-entry arrays: {e}");
            return;
        }
    };
    let (mut sim, outs, changes) = run_sim(&obj, ncpus, false);
    for ((name, frame), (r0, data)) in packets().into_iter().zip(&outs) {
        let k = kernel.run(prog(&obj), &RunInput::data(frame)).expect("kernel test run");
        assert_eq!(k.r0 as u32, *r0 as u32, "{name}: r0");
        assert_eq!(&k.data, data, "{name}: packet");
    }
    // The elements either side may have written: those the simulator touched, and the
    // first and last of each map.
    let mut checked = 0;
    for (m, spec) in obj.collection.maps.iter().enumerate() {
        let mut keys: Vec<u32> = vec![0, spec.max_entries - 1];
        keys.extend(
            changes
                .iter()
                .filter(|c| c.map == m)
                .map(|c| u32::from_le_bytes(c.key[..4].try_into().unwrap())),
        );
        for key in keys {
            let key = key.to_le_bytes();
            let want = kernel.map_lookup(m, &key).expect("kernel lookup");
            let got = sim.loaded().map_lookup(m, &key).expect("bpflab lookup");
            assert_eq!(
                normalise(spec.map_type, got, spec.value_size),
                normalise(spec.map_type, want, spec.value_size),
                "map {} key {key:02x?}",
                spec.name
            );
            checked += 1;
        }
    }
    println!("huge_maps: {} runs and {checked} map elements agree with the kernel", outs.len());
    assert!(checked >= 8 + changes.len());
}

#[test]
fn run_json_reports_exactly_the_elements_one_packet_changed() {
    let frame = std::fs::read(fixtures().join("packets/ipv4_udp.bin")).unwrap();
    let (key, real, vip) = expected_slot(&frame);
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(" ");
    let out = Command::new(env!("CARGO_BIN_EXE_bpflab"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["run", "programs/tests/huge_maps.bpf.o", "--prog", "balancer_ingress"])
        .args(["--packet", &hex(&frame), "--cpus", "2", "--json"])
        .output()
        .expect("spawn bpflab");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(doc["runs"][0]["r0"], 3);
    let bss =
        object().collection.maps.iter().find(|m| m.name.ends_with(".bss")).unwrap().name.clone();
    let mut stats_new = vec![0u8; 32];
    stats_new[..8].copy_from_slice(&1u64.to_le_bytes());
    stats_new[8..16].copy_from_slice(&(frame.len() as u64).to_le_bytes());
    let le = |x: u32| x.to_le_bytes().to_vec();
    let expected = json!([
        {"map": "ch_rings", "key": hex(&le(key)), "value": hex(&le(real)), "was": "00 00 00 00"},
        {"map": "server_id_map", "key": hex(&le(real)), "value": "01 00 00 00", "was": "00 00 00 00"},
        {"map": "server_id_map", "key": hex(&le(QUIC_REALS - 1)), "value": hex(&le(real)), "was": "00 00 00 00"},
        {"map": "stats", "key": hex(&le(vip)), "value": hex(&stats_new), "was": hex(&[0; 32])},
        {"map": bss, "key": "00 00 00 00", "value": hex(&1u64.to_le_bytes()), "was": hex(&[0; 8])},
    ]);
    assert_eq!(doc["map_changes"], expected);
}
