//! Map semantics through the user-side API and through programs calling the map helpers.

use bpflab_vm::asm::assemble;
use bpflab_vm::interp::Instance;
use bpflab_vm::maps::{BPF_ANY, BPF_EXIST, BPF_NOEXIST, MapError};
use bpflab_vm::spec::{DataSection, MapSpec, MapType};
use bpflab_vm::world::World;
use bpflab_vm::{Collection, Config, Interpreter, Program, standard_helpers};

fn k(i: u32) -> Vec<u8> {
    i.to_le_bytes().to_vec()
}

fn v(x: u64) -> Vec<u8> {
    x.to_le_bytes().to_vec()
}

fn instance(maps: Vec<MapSpec>, src: &str, ncpus: u32) -> Instance {
    let insns = assemble(src).unwrap_or_else(|e| panic!("{e}"));
    let collection =
        Collection { maps, programs: vec![Program::raw("p", insns)], ..Collection::default() };
    let config = Config { ncpus, ..Config::default() };
    Interpreter::new(config, standard_helpers()).instantiate(&collection).expect("instantiate")
}

#[test]
fn array_semantics() {
    let mut w = World::new(&[MapSpec::new("a", MapType::Array, 4, 8, 4)], 1).unwrap();
    assert_eq!(w.lookup(0, &k(2)).unwrap(), Some(vec![0; 8]));
    assert_eq!(w.lookup(0, &k(4)).unwrap(), None);
    w.update(0, &k(1), &v(7), BPF_ANY).unwrap();
    w.update(0, &k(1), &v(8), BPF_EXIST).unwrap();
    assert_eq!(w.update(0, &k(1), &v(9), BPF_NOEXIST), Err(MapError::Exists));
    assert_eq!(w.update(0, &k(4), &v(9), BPF_ANY), Err(MapError::Full));
    assert_eq!(w.update(0, &k(1), &v(9), 8), Err(MapError::Invalid("unknown flags")));
    assert!(matches!(w.delete(0, &k(1)), Err(MapError::Invalid(_))));
    assert_eq!(w.lookup(0, &k(1)).unwrap(), Some(v(8)));
    assert_eq!(w.keys(0).unwrap(), vec![k(0), k(1), k(2), k(3)]);
    assert_eq!(
        w.update(0, &[1, 2], &v(1), BPF_ANY),
        Err(MapError::Size { what: "key", expected: 4, got: 2 })
    );
}

#[test]
fn percpu_array_user_values_are_padded_per_cpu() {
    let mut w = World::new(&[MapSpec::new("p", MapType::PercpuArray, 4, 4, 2)], 3).unwrap();
    assert_eq!(w.lookup(0, &k(0)).unwrap(), Some(vec![0; 24]));
    let mut all = Vec::new();
    for cpu in 0..3u32 {
        all.extend(cpu.to_le_bytes());
        all.extend([0; 4]);
    }
    w.update(0, &k(1), &all, BPF_ANY).unwrap();
    assert_eq!(w.lookup(0, &k(1)).unwrap(), Some(all));
}

#[test]
fn hash_semantics_and_iteration() {
    let mut w = World::new(&[MapSpec::new("h", MapType::Hash, 4, 8, 3)], 1).unwrap();
    assert_eq!(w.update(0, &k(1), &v(1), BPF_EXIST), Err(MapError::NotFound));
    for i in [3, 1, 2] {
        w.update(0, &k(i), &v(u64::from(i)), BPF_NOEXIST).unwrap();
    }
    assert_eq!(w.update(0, &k(3), &v(0), BPF_NOEXIST), Err(MapError::Exists));
    assert_eq!(w.update(0, &k(9), &v(0), BPF_ANY), Err(MapError::Full));
    // Updating an existing key is allowed when full.
    w.update(0, &k(2), &v(20), BPF_ANY).unwrap();
    let mut keys = w.keys(0).unwrap();
    keys.sort();
    assert_eq!(keys, vec![k(1), k(2), k(3)]);
    assert_eq!(w.delete(0, &k(7)), Err(MapError::NotFound));
    w.delete(0, &k(1)).unwrap();
    assert_eq!(w.entries(0).unwrap().len(), 2);
    assert_eq!(w.lookup(0, &k(2)).unwrap(), Some(v(20)));
    assert_eq!(MapError::Full.errno(), -7);
    assert_eq!(MapError::Exists.errno(), -17);
    assert_eq!(MapError::NotFound.errno(), -2);
}

#[test]
fn lru_hash_evicts_the_least_recently_used() {
    let mut w = World::new(&[MapSpec::new("l", MapType::LruHash, 4, 8, 2)], 1).unwrap();
    w.update(0, &k(1), &v(1), BPF_ANY).unwrap();
    w.update(0, &k(2), &v(2), BPF_ANY).unwrap();
    // Touch key 1 from a program so key 2 becomes the oldest.
    let (map, mem) = w.map_mut(0).unwrap();
    assert!(map.lookup(mem, &k(1), 0).unwrap().is_some());
    w.update(0, &k(3), &v(3), BPF_ANY).unwrap();
    let mut keys = w.keys(0).unwrap();
    keys.sort();
    assert_eq!(keys, vec![k(1), k(3)]);
}

#[test]
fn programs_update_maps_in_place_through_lookup_pointers() {
    // key = 1; v = lookup(map, &key); if (!v) return 99; *v += 5; return *v
    let src = "
        *(u32 *)(r10 - 4) = 1
        r1 = map[idx:0] ll
        r2 = r10
        r2 += -4
        call bpf_map_lookup_elem
        if r0 != 0 goto found
        r0 = 99
        exit
    found:
        r1 = 5
        lock *(u64 *)(r0 + 0) += r1
        r0 = *(u64 *)(r0 + 0)
        exit";
    let mut inst = instance(vec![MapSpec::new("counters", MapType::Array, 4, 8, 2)], src, 1);
    assert_eq!(inst.run_raw(0, &mut Vec::new()).unwrap().0, 5);
    assert_eq!(inst.run_raw(0, &mut Vec::new()).unwrap().0, 10);
    assert_eq!(inst.world.lookup(0, &k(1)).unwrap(), Some(v(10)));
}

#[test]
fn update_helper_returns_errno() {
    // update(map, &key, &val, BPF_NOEXIST) twice: 0 then -EEXIST; returns (first << 8) | second.
    let src = "
        *(u32 *)(r10 - 4) = 7
        *(u64 *)(r10 - 16) = 42
        r1 = map[idx:0] ll
        r2 = r10
        r2 += -4
        r3 = r10
        r3 += -16
        r4 = 1
        call bpf_map_update_elem
        r6 = r0
        r1 = map[idx:0] ll
        r2 = r10
        r2 += -4
        r3 = r10
        r3 += -16
        r4 = 1
        call bpf_map_update_elem
        r6 <<= 8
        r0 &= 0xff
        r0 |= r6
        exit";
    let mut inst = instance(vec![MapSpec::new("h", MapType::Hash, 4, 8, 8)], src, 1);
    let (r0, _) = inst.run_raw(0, &mut Vec::new()).unwrap();
    assert_eq!(r0, (-17i64 as u64) & 0xff);
    assert_eq!(inst.world.lookup(0, &k(7)).unwrap(), Some(v(42)));
}

#[test]
fn global_data_is_a_map_value_and_rodata_is_read_only() {
    let mut data = MapSpec::new("obj.data", MapType::Array, 4, 16, 1);
    data.data = Some((DataSection::Data, (1..=16).collect()));
    let mut ro = MapSpec::new("obj.rodata", MapType::Array, 4, 8, 1);
    ro.data = Some((DataSection::Rodata, vec![9; 8]));
    let src = "
        r1 = map[idx:0][0]+8 ll
        r0 = *(u8 *)(r1 + 0)
        *(u8 *)(r1 + 1) = 0xee
        r2 = map[idx:1][0]+0 ll
        r3 = *(u8 *)(r2 + 7)
        r0 += r3
        exit";
    let mut inst = instance(vec![data, ro], src, 1);
    assert_eq!(inst.run_raw(0, &mut Vec::new()).unwrap().0, 9 + 9);
    let after = inst.world.lookup(0, &k(0)).unwrap().unwrap();
    assert_eq!(after[9], 0xee);
    let mut ro = MapSpec::new("obj.rodata", MapType::Array, 4, 8, 1);
    ro.data = Some((DataSection::Rodata, vec![0; 8]));
    let mut inst =
        instance(vec![ro], "r1 = map[idx:0][0]+0 ll\n*(u8 *)(r1 + 0) = 1\nr0 = 0\nexit", 1);
    let e = inst.run_raw(0, &mut Vec::new()).unwrap_err();
    assert_eq!(e.pc(), 2);
    assert!(e.to_string().contains("read-only map value"), "{e}");
}
