//! Huge maps cost memory for the elements touched only, and the per-run map diff
//! (`World::begin_changes` / `World::take_changes`) reports exactly the elements that changed.

use bpflab_vm::asm::assemble;
use bpflab_vm::interp::Instance;
use bpflab_vm::maps::{BPF_ANY, MapError};
use bpflab_vm::spec::{DataSection, MapSpec, MapType};
use bpflab_vm::world::{MapChange, World};
use bpflab_vm::{Collection, Config, Interpreter, Program, standard_helpers};

/// katran's `ch_rings`: MAX_VIPS * RING_SIZE entries.
const CH_RINGS: u32 = 512 * 65_537;
/// katran's `server_id_map`: MAX_QUIC_REALS entries.
const QUIC_REALS: u32 = 0x00ff_fffe;

fn k(i: u32) -> Vec<u8> {
    i.to_le_bytes().to_vec()
}

fn v(x: u64) -> Vec<u8> {
    x.to_le_bytes().to_vec()
}

/// A per-CPU value of `ncpus` u64 slots.
fn pcpu(slots: &[u64]) -> Vec<u8> {
    slots.iter().flat_map(|s| s.to_le_bytes()).collect()
}

/// Program side: the address `lookup` hands out for `key` of map `idx` on `cpu`.
fn lookup_addr(w: &mut World, idx: usize, key: &[u8], cpu: u32) -> Option<u64> {
    let (map, mem) = w.map_mut(idx).expect("map");
    map.lookup(mem, key, cpu).expect("lookup")
}

fn change(map: usize, key: Vec<u8>, old: Option<Vec<u8>>, new: Option<Vec<u8>>) -> MapChange {
    MapChange { map, key, old, new }
}

#[test]
fn katran_sized_arrays_cost_only_the_elements_touched() {
    let specs = [
        MapSpec::new("ch_rings", MapType::Array, 4, 4, CH_RINGS),
        MapSpec::new("server_id_map", MapType::Array, 4, 4, QUIC_REALS),
        MapSpec::new("stats", MapType::PercpuArray, 4, 16, 65_536),
    ];
    let mut w = World::new(&specs, 64).expect("katran's maps are created");
    let regions_before = w.mem.next_id().index();
    // Any index below max_entries is present and reads as zeros; max_entries is not.
    assert_eq!(w.lookup(0, &k(CH_RINGS - 1)).unwrap(), Some(vec![0; 4]));
    assert_eq!(w.lookup(0, &k(CH_RINGS)).unwrap(), None);
    assert_eq!(w.lookup(2, &k(65_535)).unwrap(), Some(vec![0; 16 * 64]));
    assert!(lookup_addr(&mut w, 1, &k(QUIC_REALS), 0).is_none());
    assert_eq!(w.update(1, &k(QUIC_REALS), &[1, 0, 0, 0], BPF_ANY), Err(MapError::Full));
    // Reads create nothing; a program's lookup and an update create one region each.
    assert_eq!(w.mem.next_id().index(), regions_before);
    let addr = lookup_addr(&mut w, 1, &k(QUIC_REALS - 1), 0).expect("last index");
    w.mem.store(addr, 4, 0xabcd).unwrap();
    w.update(0, &k(CH_RINGS - 1), &[7, 0, 0, 0], BPF_ANY).unwrap();
    assert_eq!(w.mem.next_id().index(), regions_before + 2);
    assert_eq!(w.lookup(1, &k(QUIC_REALS - 1)).unwrap(), Some(vec![0xcd, 0xab, 0, 0]));
    assert_eq!(w.lookup(0, &k(CH_RINGS - 1)).unwrap(), Some(vec![7, 0, 0, 0]));
    // The same pointer every time.
    assert_eq!(lookup_addr(&mut w, 1, &k(QUIC_REALS - 1), 0), Some(addr));
}

#[test]
fn the_largest_array_the_kernel_describes_is_created() {
    let w = World::new(&[MapSpec::new("max", MapType::Array, 4, 8, u32::MAX)], 1).unwrap();
    assert_eq!(w.lookup(0, &k(u32::MAX - 1)).unwrap(), Some(vec![0; 8]));
    assert_eq!(w.lookup(0, &k(u32::MAX)).unwrap(), None);
}

#[test]
fn per_cpu_array_values_past_32_kib_are_e2big() {
    let spec = MapSpec::new("big", MapType::PercpuArray, 4, (32 << 10) + 1, 4);
    let e = World::new(&[spec], 2).unwrap_err();
    assert_eq!(e.error, MapError::TooBig("per-CPU array values are at most 32 KiB"));
    assert_eq!(e.error.errno(), -7);
    assert!(e.to_string().contains("\"big\""), "{e}");
    // 32 KiB exactly is fine, and plain arrays have no such limit.
    World::new(&[MapSpec::new("ok", MapType::PercpuArray, 4, 32 << 10, 4)], 2).unwrap();
    World::new(&[MapSpec::new("ok", MapType::Array, 4, 64 << 10, 4)], 2).unwrap();
}

#[test]
fn hash_maps_do_not_preallocate() {
    let spec = MapSpec::new("lru", MapType::LruHash, 16, 64, 16_000_000);
    let mut w = World::new(&[spec], 4).unwrap();
    let before = w.mem.next_id().index();
    w.update(0, &[1; 16], &[2; 64], BPF_ANY).unwrap();
    assert_eq!(w.mem.next_id().index(), before + 1);
    assert_eq!(w.keys(0).unwrap(), vec![vec![1; 16]]);
}

#[test]
fn the_diff_reports_exactly_the_touched_per_cpu_entries() {
    const NCPUS: u32 = 4;
    let specs = [
        MapSpec::new("stats", MapType::PercpuArray, 4, 8, 65_536),
        MapSpec::new("other", MapType::Array, 4, 8, 65_536),
    ];
    let mut w = World::new(&specs, NCPUS).unwrap();
    w.update(0, &k(10), &pcpu(&[1, 2, 3, 4]), BPF_ANY).unwrap();
    w.update(0, &k(65_535), &pcpu(&[5, 5, 5, 5]), BPF_ANY).unwrap();
    w.begin_changes();
    // Written through a program's pointer on CPU 2.
    let addr = lookup_addr(&mut w, 0, &k(10), 2).unwrap();
    w.mem.store(addr, 8, 30).unwrap();
    // Written by the update helper on CPU 1, on an element never touched before.
    {
        let (map, mem) = w.map_mut(0).unwrap();
        map.update(mem, &k(40_000), &v(9), BPF_ANY, 1).unwrap();
    }
    // Looked up but not written, and written back to the value it had: not changes.
    lookup_addr(&mut w, 0, &k(20), 3).unwrap();
    let addr = lookup_addr(&mut w, 0, &k(65_535), 0).unwrap();
    w.mem.store(addr, 8, 6).unwrap();
    w.mem.store(addr, 8, 5).unwrap();
    lookup_addr(&mut w, 1, &k(7), 0).unwrap();
    // User side, on the other map.
    w.update(1, &k(3), &v(0x77), BPF_ANY).unwrap();
    let changes = w.take_changes();
    assert_eq!(
        changes,
        vec![
            change(0, k(10), Some(pcpu(&[1, 2, 3, 4])), Some(pcpu(&[1, 2, 30, 4]))),
            change(0, k(40_000), Some(pcpu(&[0; 4])), Some(pcpu(&[0, 9, 0, 0]))),
            change(1, k(3), Some(v(0)), Some(v(0x77))),
        ]
    );
    // The window is closed: nothing more is recorded until the next one.
    w.update(1, &k(4), &v(1), BPF_ANY).unwrap();
    assert_eq!(w.take_changes(), vec![]);
    w.begin_changes();
    assert_eq!(w.take_changes(), vec![]);
}

#[test]
fn the_diff_reports_hash_creations_updates_deletions_and_lru_evictions() {
    let specs = [
        MapSpec::new("h", MapType::Hash, 4, 8, 1 << 20),
        MapSpec::new("lru", MapType::LruHash, 4, 8, 2),
    ];
    let mut w = World::new(&specs, 1).unwrap();
    for i in 0..4 {
        w.update(0, &k(i), &v(u64::from(i)), BPF_ANY).unwrap();
    }
    w.update(1, &k(1), &v(1), BPF_ANY).unwrap();
    w.update(1, &k(2), &v(2), BPF_ANY).unwrap();
    w.begin_changes();
    let addr = lookup_addr(&mut w, 0, &k(1), 0).unwrap();
    w.mem.store(addr, 8, 100).unwrap();
    lookup_addr(&mut w, 0, &k(2), 0).unwrap();
    w.delete(0, &k(3)).unwrap();
    w.update(0, &k(9), &v(9), BPF_ANY).unwrap();
    // Deleted and created again with the same value: no change.
    w.delete(0, &k(0)).unwrap();
    w.update(0, &k(0), &v(0), BPF_ANY).unwrap();
    // A third element evicts the least recently used one (key 1).
    w.update(1, &k(3), &v(3), BPF_ANY).unwrap();
    assert_eq!(
        w.take_changes(),
        vec![
            change(0, k(1), Some(v(1)), Some(v(100))),
            change(0, k(3), Some(v(3)), None),
            change(0, k(9), None, Some(v(9))),
            change(1, k(1), Some(v(1)), None),
            change(1, k(3), None, Some(v(3))),
        ]
    );
}

#[test]
fn maps_that_record_nothing_are_compared_in_full_when_touched() {
    // LPM tries keep no journal: the world copies one the first time it is touched.
    let mut lpm = MapSpec::new("trie", MapType::LpmTrie, 8, 8, 16);
    lpm.flags = 1; // BPF_F_NO_PREALLOC
    let mut w = World::new(&[lpm], 1).unwrap();
    let key = |len: u32, ip: [u8; 4]| [len.to_le_bytes().as_slice(), &ip].concat();
    w.update(0, &key(8, [10, 0, 0, 0]), &v(1), BPF_ANY).unwrap();
    w.begin_changes();
    w.update(0, &key(16, [10, 1, 0, 0]), &v(2), BPF_ANY).unwrap();
    w.update(0, &key(8, [10, 0, 0, 0]), &v(3), BPF_ANY).unwrap();
    assert_eq!(
        w.take_changes(),
        vec![
            change(0, key(8, [10, 0, 0, 0]), Some(v(1)), Some(v(3))),
            change(0, key(16, [10, 1, 0, 0]), None, Some(v(2))),
        ]
    );
}

fn instance(maps: Vec<MapSpec>, src: &str, ncpus: u32) -> Instance {
    let insns = assemble(src).unwrap_or_else(|e| panic!("{e}"));
    let collection =
        Collection { maps, programs: vec![Program::raw("p", insns)], ..Collection::default() };
    let config = Config { ncpus, ..Config::default() };
    Interpreter::new(config, standard_helpers()).instantiate(&collection).expect("instantiate")
}

#[test]
fn a_programs_writes_to_global_data_and_huge_arrays_are_in_the_diff() {
    // Global data is reached by direct value access (its address resolved at load time);
    // the per-CPU array through a lookup. Runs twice: the second run's window sees only its
    // own changes.
    let mut bss = MapSpec::new("obj.bss", MapType::Array, 4, 8, 1);
    bss.data = Some((DataSection::Bss, vec![0; 8]));
    let src = "
        r6 = map[idx:0][0]+0 ll
        r1 = *(u64 *)(r6 + 0)
        r1 += 1
        *(u64 *)(r6 + 0) = r1
        *(u32 *)(r10 - 4) = 33554943
        r1 = map[idx:1] ll
        r2 = r10
        r2 += -4
        call bpf_map_lookup_elem
        if r0 == 0 goto out
        r1 = 3
        lock *(u64 *)(r0 + 0) += r1
    out:
        r0 = 0
        exit";
    let stats = MapSpec::new("stats", MapType::PercpuArray, 4, 8, CH_RINGS);
    let mut inst = instance(vec![bss, stats], src, 2);
    inst.world.begin_changes();
    inst.run_raw(0, &mut Vec::new()).unwrap();
    assert_eq!(
        inst.world.take_changes(),
        vec![
            change(0, k(0), Some(v(0)), Some(v(1))),
            change(1, k(CH_RINGS - 1), Some(pcpu(&[0, 0])), Some(pcpu(&[3, 0]))),
        ]
    );
    inst.world.begin_changes();
    inst.run_raw(0, &mut Vec::new()).unwrap();
    assert_eq!(
        inst.world.take_changes(),
        vec![
            change(0, k(0), Some(v(1)), Some(v(2))),
            change(1, k(CH_RINGS - 1), Some(pcpu(&[3, 0])), Some(pcpu(&[6, 0]))),
        ]
    );
}

#[test]
fn saved_state_of_a_huge_array_lists_the_touched_elements_and_imports_back() {
    use bpflab_vm::maps::json;
    let specs = [
        MapSpec::new("ch_rings", MapType::Array, 4, 4, CH_RINGS),
        MapSpec::new("small", MapType::Array, 4, 4, 3),
    ];
    let mut w = World::new(&specs, 1).unwrap();
    w.update(0, &k(5), &[5, 0, 0, 0], BPF_ANY).unwrap();
    w.update(0, &k(CH_RINGS - 1), &[9, 0, 0, 0], BPF_ANY).unwrap();
    let doc = json::export(&w);
    assert_eq!(
        doc["maps"]["ch_rings"]["entries"],
        serde_json::json!([
            {"key": "05 00 00 00", "value": "05 00 00 00"},
            {"key": "ff 01 00 02", "value": "09 00 00 00"},
        ])
    );
    // Arrays of up to 65,536 elements still list every element.
    assert_eq!(doc["maps"]["small"]["entries"].as_array().map(Vec::len), Some(3));
    let mut fresh = World::new(&specs, 1).unwrap();
    json::import(&mut fresh, &doc).expect("imports back");
    assert_eq!(fresh.lookup(0, &k(CH_RINGS - 1)).unwrap(), Some(vec![9, 0, 0, 0]));
    assert_eq!(fresh.lookup(0, &k(5)).unwrap(), Some(vec![5, 0, 0, 0]));
    assert_eq!(fresh.lookup(0, &k(6)).unwrap(), Some(vec![0; 4]));
}
