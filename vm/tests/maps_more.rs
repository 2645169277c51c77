//! Semantics of the map types beyond array and hash, through the user-side API, with the
//! errnos the kernel (6.18) returns for the same operations. Iteration is checked against a
//! model with random insert/delete sequences.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bpflab_vm::maps::{
    self, BPF_ANY, BPF_EXIST, BPF_NOEXIST, BloomFilter, Map, MapError, OfMaps, PerfEventArray,
    QueueStack, RingBuf,
};
use bpflab_vm::memory::Memory;
use bpflab_vm::spec::{MapSpec, MapType};
use bpflab_vm::world::World;
use proptest::prelude::*;

const NO_PREALLOC: u32 = 1;
const INNER_MAP: u32 = 1 << 12;

fn k(i: u32) -> Vec<u8> {
    i.to_le_bytes().to_vec()
}

fn spec(t: MapType, key: u32, value: u32, max: u32) -> MapSpec {
    MapSpec::new("m", t, key, value, max)
}

fn with_flags(mut s: MapSpec, flags: u32) -> MapSpec {
    s.flags = flags;
    s
}

fn world(specs: &[MapSpec]) -> World {
    World::new(specs, 2).unwrap_or_else(|e| panic!("{e}"))
}

fn create_err(s: MapSpec) -> i64 {
    World::new(&[s], 2).map(|_| 0).unwrap_or_else(|e| e.error.errno())
}

fn errno<T>(r: Result<T, MapError>) -> i64 {
    r.map(|_| 0).unwrap_or_else(|e| e.errno())
}

/// An LPM key of `plen` bits over IPv4 `addr`.
fn lpm(plen: u32, addr: [u8; 4]) -> Vec<u8> {
    let mut key = plen.to_le_bytes().to_vec();
    key.extend_from_slice(&addr);
    key
}

#[test]
fn queue_and_stack() {
    assert_eq!(create_err(spec(MapType::Queue, 4, 4, 2)), -22);
    assert_eq!(create_err(spec(MapType::Queue, 0, 0, 2)), -22);
    assert_eq!(create_err(spec(MapType::Queue, 0, 4, 0)), -22);
    assert_eq!(create_err(with_flags(spec(MapType::Queue, 0, 4, 2), NO_PREALLOC)), -22);
    let mut w = world(&[spec(MapType::Queue, 0, 4, 2), spec(MapType::Stack, 0, 4, 3)]);
    // The syscall: lookup peeks, update pushes, delete and get_next_key are -EINVAL.
    assert_eq!(w.lookup(0, &[]).unwrap(), None);
    w.update(0, &[], &k(7), BPF_ANY).unwrap();
    assert_eq!(errno(w.update(0, &[], &k(7), BPF_NOEXIST)), -22);
    assert_eq!(errno(w.update(0, &[], &k(7), 8)), -22);
    w.update(0, &[], &k(8), BPF_ANY).unwrap();
    assert_eq!(errno(w.update(0, &[], &k(9), BPF_ANY)), -7);
    w.update(0, &[], &k(9), BPF_EXIST).unwrap();
    assert_eq!(errno(w.update(0, &k(0), &k(9), BPF_ANY)), -22);
    assert_eq!(errno(w.delete(0, &[])), -22);
    assert_eq!(errno(w.keys(0)), -22);
    assert_eq!(w.lookup(0, &[]).unwrap(), Some(k(8)));
    let (q, mem) = w.map_mut(0).unwrap();
    assert_eq!(q.pop(mem).unwrap(), k(8));
    assert_eq!(q.pop(mem).unwrap(), k(9));
    assert_eq!(q.pop(mem), Err(MapError::NotFound));
    assert_eq!(q.peek(mem, &[]), Err(MapError::NotFound));
    // A full stack pushed with BPF_EXIST drops its oldest (bottom) value.
    for i in 1..=3 {
        w.update(1, &[], &k(i), BPF_ANY).unwrap();
    }
    w.update(1, &[], &k(4), BPF_EXIST).unwrap();
    let (s, mem) = w.map_mut(1).unwrap();
    let popped: Vec<_> = std::iter::from_fn(|| s.pop(mem).ok()).collect();
    assert_eq!(popped, vec![k(4), k(3), k(2)]);
}

#[test]
fn lpm_trie_semantics() {
    assert_eq!(create_err(spec(MapType::LpmTrie, 8, 4, 4)), -22);
    let ok =
        |key, value| create_err(with_flags(spec(MapType::LpmTrie, key, value, 4), NO_PREALLOC));
    assert_eq!((ok(4, 4), ok(5, 4), ok(260, 4), ok(261, 4), ok(8, 0)), (-22, 0, 0, -22, -22));
    let mut w = world(&[with_flags(spec(MapType::LpmTrie, 8, 4, 2), NO_PREALLOC)]);
    w.update(0, &lpm(8, [10, 0, 0, 0]), &k(8), BPF_ANY).unwrap();
    w.update(0, &lpm(16, [10, 1, 0, 0]), &k(16), BPF_ANY).unwrap();
    assert_eq!(errno(w.update(0, &lpm(24, [10, 1, 0, 0]), &k(24), BPF_ANY)), -28);
    assert_eq!(errno(w.update(0, &lpm(33, [10, 1, 0, 0]), &k(0), BPF_ANY)), -22);
    assert_eq!(errno(w.update(0, &lpm(24, [10, 1, 0, 0]), &k(0), BPF_EXIST)), -2);
    assert_eq!(errno(w.update(0, &lpm(16, [10, 1, 0, 0]), &k(0), BPF_NOEXIST)), -17);
    assert_eq!(errno(w.update(0, &lpm(16, [10, 1, 0, 0]), &k(0), 3)), -22);
    // Replacing an existing prefix is fine when full.
    w.update(0, &lpm(16, [10, 1, 0, 0]), &k(160), BPF_EXIST).unwrap();
    assert_eq!(errno(w.delete(0, &lpm(33, [10, 1, 0, 0]))), -22);
    assert_eq!(errno(w.delete(0, &lpm(12, [10, 1, 0, 0]))), -2);
    // Lookups find the longest prefix no longer than the key's.
    assert_eq!(w.lookup(0, &lpm(32, [10, 1, 2, 3])).unwrap(), Some(k(160)));
    assert_eq!(w.lookup(0, &lpm(32, [10, 2, 2, 3])).unwrap(), Some(k(8)));
    assert_eq!(w.lookup(0, &lpm(15, [10, 1, 2, 3])).unwrap(), Some(k(8)));
    assert_eq!(w.lookup(0, &lpm(8, [10, 1, 0, 0])).unwrap(), Some(k(8)));
    assert_eq!(w.lookup(0, &lpm(7, [10, 1, 0, 0])).unwrap(), None);
    assert_eq!(w.lookup(0, &lpm(33, [10, 1, 0, 0])).unwrap(), None);
    assert_eq!(w.lookup(0, &lpm(32, [11, 1, 0, 0])).unwrap(), None);
    // An invalid key starts the iteration over; more specific prefixes come first.
    let (m, mem) = w.map_mut(0).unwrap();
    assert_eq!(m.next_key(mem, Some(&lpm(40, [0; 4]))).unwrap(), Some(lpm(16, [10, 1, 0, 0])));
    w.delete(0, &lpm(8, [10, 0, 0, 0])).unwrap();
    assert_eq!(w.lookup(0, &lpm(32, [10, 2, 2, 3])).unwrap(), None);
    assert_eq!(w.keys(0).unwrap(), vec![lpm(16, [10, 1, 0, 0])]);
}

#[test]
fn lpm_trie_iterates_in_the_kernels_post_order() {
    // The example of kernel/bpf/lpm_trie.c: get_next_key returns 192.168.0.0/24,
    // 192.168.1.0/24, 192.168.128.0/24, 192.168.0.0/16.
    let mut w = world(&[with_flags(spec(MapType::LpmTrie, 8, 4, 16), NO_PREALLOC)]);
    for (plen, addr) in [(16, [192, 168, 0, 0]), (24, [192, 168, 0, 0]), (24, [192, 168, 1, 0])] {
        w.update(0, &lpm(plen, addr), &k(plen), BPF_ANY).unwrap();
    }
    w.update(0, &lpm(24, [192, 168, 128, 0]), &k(1), BPF_ANY).unwrap();
    let keys = w.keys(0).unwrap();
    assert_eq!(
        keys,
        vec![
            lpm(24, [192, 168, 0, 0]),
            lpm(24, [192, 168, 1, 0]),
            lpm(24, [192, 168, 128, 0]),
            lpm(16, [192, 168, 0, 0]),
        ]
    );
    assert_eq!(w.lookup(0, &lpm(32, [192, 168, 1, 77])).unwrap(), Some(k(24)));
    assert_eq!(w.lookup(0, &lpm(32, [192, 168, 2, 77])).unwrap(), Some(k(16)));
}

#[test]
fn ringbuf_creation_and_syscalls() {
    assert_eq!(create_err(spec(MapType::Ringbuf, 0, 0, 4096)), 0);
    assert_eq!(create_err(spec(MapType::Ringbuf, 0, 0, 3 * 4096)), -22);
    assert_eq!(create_err(spec(MapType::Ringbuf, 4, 0, 4096)), -22);
    assert_eq!(create_err(spec(MapType::Ringbuf, 0, 0, 2048)), -22);
    let mut w = world(&[spec(MapType::Ringbuf, 0, 0, 4096)]);
    assert_eq!(errno(w.lookup(0, &[])), -524);
    assert_eq!(errno(w.lookup(0, &k(0))), -22);
    assert_eq!(errno(w.update(0, &[], &[], BPF_ANY)), -524);
    assert_eq!(errno(w.delete(0, &[])), -524);
    assert_eq!(errno(w.keys(0)), -524);
}

#[test]
fn ringbuf_positions_and_space() {
    let mut w = world(&[spec(MapType::Ringbuf, 0, 0, 4096)]);
    let (m, mem) = w.map_mut(0).unwrap();
    let rb = m.as_any_mut().downcast_mut::<RingBuf>().unwrap();
    assert!(rb.output(&[1, 2, 3], 0));
    assert_eq!((rb.producer_pos(), rb.consumer_pos(), rb.avail_data()), (16, 0, 16));
    // A record longer than the ring never fits; one that would need the last 8 bytes does not.
    assert_eq!(rb.reserve(mem, 4096).unwrap(), None);
    let a = rb.reserve(mem, 4096 - 16 - 8 - 8).unwrap().unwrap();
    assert_eq!(rb.producer_pos(), 4088);
    assert_eq!(rb.reserve(mem, 0).unwrap(), None);
    // The busy record stops the consumer after the first one.
    assert_eq!(rb.drain(), vec![vec![1, 2, 3]]);
    assert_eq!(rb.consumer_pos(), 16);
    let b = rb.reserve(mem, 0).unwrap().unwrap();
    assert_eq!(rb.producer_pos(), 4096);
    assert_eq!(rb.reserve(mem, 8).unwrap(), None);
    let (region, _, _) = mem.resolve(a).unwrap();
    assert!(rb.commit(mem, region, 0, true));
    assert!(!rb.commit(mem, region, 0, false));
    let (region, _, _) = mem.resolve(b).unwrap();
    assert!(rb.commit(mem, region, 0, false));
    assert_eq!(rb.pending(), vec![&[] as &[u8]]);
    assert_eq!(rb.drain(), vec![Vec::<u8>::new()]);
    assert_eq!((rb.consumer_pos(), rb.producer_pos()), (4096, 4096));
    // Positions keep growing across the wrap.
    assert!(rb.output(&[9; 20], 0));
    assert_eq!(rb.producer_pos(), 4096 + 32);
    assert_eq!(rb.drain(), vec![vec![9; 20]]);
}

#[test]
fn perf_event_array_entries() {
    assert_eq!(create_err(spec(MapType::PerfEventArray, 4, 8, 4)), -22);
    // max_entries 0 is one entry per CPU (libbpf's rule; the kernel itself refuses 0).
    let w = world(&[spec(MapType::PerfEventArray, 4, 4, 0)]);
    assert_eq!(w.map(0).unwrap().spec().max_entries, 2);
    let mut w = world(&[spec(MapType::PerfEventArray, 4, 4, 4)]);
    assert_eq!(errno(w.lookup(0, &k(0))), -524);
    assert_eq!(errno(w.delete(0, &k(9))), -7);
    assert_eq!(errno(w.delete(0, &k(3))), -2);
    w.delete(0, &k(1)).unwrap();
    assert_eq!(errno(w.update(0, &k(9), &k(0), BPF_ANY)), -7);
    assert_eq!(errno(w.update(0, &k(0), &k(0), BPF_NOEXIST)), -22);
    w.update(0, &k(3), &k(1), BPF_ANY).unwrap();
    assert_eq!(w.keys(0).unwrap(), vec![k(0), k(1), k(2), k(3)]);
    let (m, _) = w.map_mut(0).unwrap();
    let pe = m.as_any_mut().downcast_mut::<PerfEventArray>().unwrap();
    assert_eq!(pe.events().collect::<Vec<_>>(), vec![(0, 0), (3, 1)]);
    assert_eq!(pe.output(maps::BPF_F_CURRENT_CPU, 1, vec![1]), Err(-2));
    assert_eq!(pe.output(3, 0, vec![1]), Err(-95));
    assert_eq!(pe.output(4, 1, vec![1]), Err(-7));
    assert_eq!(pe.output(3, 1, vec![1]), Ok(()));
    assert_eq!(pe.take_records(3), vec![vec![1]]);
}

#[test]
fn prog_array_entries() {
    assert_eq!(create_err(spec(MapType::ProgArray, 4, 8, 4)), -22);
    let mut w = world(&[spec(MapType::ProgArray, 4, 4, 4)]);
    assert_eq!(w.lookup(0, &k(0)).unwrap(), None);
    assert_eq!(errno(w.delete(0, &k(0))), -2);
    assert_eq!(errno(w.delete(0, &k(5))), -7);
    assert_eq!(errno(w.update(0, &k(0), &k(1), BPF_NOEXIST)), -22);
    assert_eq!(errno(w.update(0, &k(5), &k(1), BPF_ANY)), -7);
    w.update(0, &k(2), &k(1), BPF_ANY).unwrap();
    assert_eq!(w.entries(0).unwrap(), vec![(k(2), k(1))]);
    assert_eq!(w.keys(0).unwrap().len(), 4);
}

#[test]
fn devmaps() {
    assert_eq!(create_err(spec(MapType::Devmap, 4, 8, 4)), 0);
    assert_eq!(create_err(spec(MapType::Devmap, 4, 12, 4)), -22);
    let mut w = world(&[spec(MapType::Devmap, 4, 4, 4), spec(MapType::DevmapHash, 4, 4, 2)]);
    w.update(0, &k(0), &k(1), BPF_ANY).unwrap();
    assert_eq!(errno(w.update(0, &k(0), &k(1), BPF_NOEXIST)), -17);
    assert_eq!(errno(w.update(0, &k(2), &k(1), BPF_NOEXIST)), -17);
    w.update(0, &k(1), &k(1), BPF_EXIST).unwrap();
    w.update(0, &k(1), &k(0), BPF_ANY).unwrap(); // ifindex 0 empties the slot
    assert_eq!(errno(w.update(0, &k(7), &k(1), BPF_ANY)), -7);
    assert_eq!(errno(w.update(0, &k(0), &k(1), 4)), -22);
    w.delete(0, &k(3)).unwrap();
    assert_eq!(errno(w.delete(0, &k(9))), -22);
    assert_eq!(w.lookup(0, &k(3)).unwrap(), None);
    assert_eq!(w.lookup(0, &k(0)).unwrap(), Some(k(1)));
    let (m, mem) = w.map_mut(0).unwrap();
    assert_eq!(m.next_key(mem, Some(&k(9))).unwrap(), Some(k(0)));
    assert_eq!(m.next_key(mem, Some(&k(3))).unwrap(), None);
    // Program lookups see the value read-only.
    let addr = m.lookup(mem, &k(0), 0).unwrap().unwrap();
    assert!(mem.store(addr, 4, 5).is_err());
    let mut w8 = world(&[spec(MapType::Devmap, 4, 8, 4)]);
    let val = |ifindex: u32, fd: i32| [ifindex.to_le_bytes(), fd.to_le_bytes()].concat();
    w8.update(0, &k(0), &val(1, 0), BPF_ANY).unwrap();
    assert_eq!(errno(w8.update(0, &k(0), &val(0, 5), BPF_ANY)), -22);
    // devmap_hash
    w.update(1, &k(5), &k(1), BPF_ANY).unwrap();
    w.update(1, &k(6), &k(1), BPF_EXIST).unwrap();
    assert_eq!(errno(w.update(1, &k(5), &k(1), BPF_NOEXIST)), -17);
    assert_eq!(errno(w.update(1, &k(8), &k(0), BPF_ANY)), -22);
    assert_eq!(errno(w.update(1, &k(9), &k(1), BPF_ANY)), -7);
    assert_eq!(errno(w.delete(1, &k(77))), -2);
    assert_eq!(w.lookup(1, &k(77)).unwrap(), None);
    let (m, mem) = w.map_mut(1).unwrap();
    assert_eq!(m.next_key(mem, Some(&k(77))).unwrap(), Some(k(5)));
    assert_eq!(w.keys(1).unwrap(), vec![k(5), k(6)]);
}

#[test]
fn cpumap_and_xskmap() {
    assert_eq!(create_err(spec(MapType::Cpumap, 4, 4, 256)), 0);
    assert_eq!(create_err(spec(MapType::Cpumap, 4, 4, 512)), -7);
    assert_eq!(create_err(spec(MapType::Cpumap, 4, 12, 4)), -22);
    let mut w = world(&[spec(MapType::Cpumap, 4, 4, 4), spec(MapType::Xskmap, 4, 4, 4)]);
    w.update(0, &k(0), &k(128), BPF_ANY).unwrap();
    assert_eq!(errno(w.update(0, &k(0), &k(128), BPF_NOEXIST)), -17);
    assert_eq!(errno(w.update(0, &k(0), &k(16385), BPF_ANY)), -75);
    w.update(0, &k(0), &k(16384), BPF_ANY).unwrap();
    assert_eq!(errno(w.update(0, &k(3), &k(10), BPF_ANY)), -19); // only 2 CPUs
    assert_eq!(errno(w.update(0, &k(7), &k(10), BPF_ANY)), -7);
    assert_eq!(errno(w.update(0, &k(0), &k(10), 3)), -22);
    w.update(0, &k(1), &k(0), BPF_ANY).unwrap();
    w.delete(0, &k(2)).unwrap();
    assert_eq!(errno(w.delete(0, &k(9))), -22);
    assert_eq!(w.lookup(0, &k(0)).unwrap(), Some(k(16384)));
    assert_eq!(w.lookup(0, &k(1)).unwrap(), None);
    // xskmap: opaque socket ids.
    w.update(1, &k(0), &k(42), BPF_ANY).unwrap();
    assert_eq!(errno(w.update(1, &k(0), &k(43), BPF_NOEXIST)), -17);
    w.update(1, &k(0), &k(42), BPF_NOEXIST).unwrap(); // the same socket again
    assert_eq!(errno(w.update(1, &k(1), &k(43), BPF_EXIST)), -2);
    assert_eq!(errno(w.update(1, &k(9), &k(43), BPF_ANY)), -7);
    assert_eq!(errno(w.lookup(1, &k(0))), -95);
    w.delete(1, &k(0)).unwrap();
    w.delete(1, &k(0)).unwrap();
    assert_eq!(errno(w.delete(1, &k(9))), -22);
}

#[test]
fn maps_of_maps() {
    let inner = spec(MapType::Array, 4, 8, 4);
    let mut outer = spec(MapType::ArrayOfMaps, 4, 4, 4);
    assert_eq!(create_err(outer.clone()), -22);
    outer.inner = Some(Box::new(inner.clone()));
    outer.name = "outer".into();
    let mut vs8 = outer.clone();
    vs8.value_size = 8;
    assert_eq!(create_err(vs8), -22);
    let mut of_progs = outer.clone();
    of_progs.inner = Some(Box::new(spec(MapType::ProgArray, 4, 4, 2)));
    assert_eq!(create_err(of_progs), -524);
    let mut hom = spec(MapType::HashOfMaps, 4, 4, 4);
    hom.inner = Some(Box::new(spec(MapType::Hash, 4, 8, 4)));
    let specs = [
        outer,
        hom,
        MapSpec::new("a4", MapType::Array, 4, 8, 4),
        MapSpec::new("a5", MapType::Array, 4, 8, 5),
        MapSpec::new("h4", MapType::Hash, 4, 8, 4),
        MapSpec::new("h9", MapType::Hash, 4, 8, 9),
    ];
    let mut w = world(&specs);
    assert_eq!(errno(maps::set_inner_map(&mut w, 0, &k(0), 3, BPF_ANY)), -22); // max_entries
    assert_eq!(errno(maps::set_inner_map(&mut w, 0, &k(0), 4, BPF_ANY)), -22); // type
    maps::set_inner_map(&mut w, 0, &k(0), 2, BPF_ANY).unwrap();
    assert_eq!(errno(maps::set_inner_map(&mut w, 0, &k(0), 2, BPF_NOEXIST)), -22);
    assert_eq!(errno(maps::set_inner_map(&mut w, 0, &k(9), 2, BPF_ANY)), -7);
    assert_eq!(w.lookup(0, &k(0)).unwrap(), Some(k(2)));
    // The plain user-side update takes a map index; it cannot check the template.
    assert_eq!(errno(w.update(0, &k(1), &k(99), BPF_ANY)), -22);
    w.update(0, &k(1), &k(2), BPF_ANY).unwrap();
    assert_eq!(errno(w.update(0, &k(1), &k(2), BPF_EXIST)), -22);
    assert_eq!(w.lookup(0, &k(1)).unwrap(), Some(k(2)));
    let handle = w.map_handle(2);
    let (m, mem) = w.map_mut(0).unwrap();
    assert_eq!(m.lookup(mem, &k(1), 0).unwrap(), handle);
    w.delete(0, &k(1)).unwrap();
    // A program's lookup gives the inner map's handle.
    let handle = w.map_handle(2).unwrap();
    let (m, mem) = w.map_mut(0).unwrap();
    assert_eq!(m.lookup(mem, &k(0), 0).unwrap(), Some(handle));
    assert_eq!(m.lookup(mem, &k(1), 0).unwrap(), None);
    w.delete(0, &k(0)).unwrap();
    assert_eq!(errno(w.delete(0, &k(0))), -2);
    // Hash of maps: max_entries need not match; htab flags apply.
    maps::set_inner_map(&mut w, 1, &k(0), 5, BPF_ANY).unwrap();
    assert_eq!(errno(maps::set_inner_map(&mut w, 1, &k(0), 4, BPF_NOEXIST)), -17);
    assert_eq!(errno(maps::set_inner_map(&mut w, 1, &k(1), 4, BPF_EXIST)), -2);
    assert_eq!(errno(maps::set_inner_map(&mut w, 1, &k(1), 2, BPF_ANY)), -22);
    let of = w.map(1).unwrap().as_any().downcast_ref::<OfMaps>().unwrap();
    assert_eq!(of.inner(&k(0)), Some(5));
    // BPF_F_INNER_MAP lifts the max_entries check, and must be on both maps.
    let mut outer2 = spec(MapType::ArrayOfMaps, 4, 4, 4);
    outer2.inner = Some(Box::new(with_flags(spec(MapType::Array, 4, 8, 4), INNER_MAP)));
    let mut w2 = world(&[
        outer2,
        MapSpec::new("plain", MapType::Array, 4, 8, 5),
        with_flags(MapSpec::new("flagged", MapType::Array, 4, 8, 9), INNER_MAP),
    ]);
    assert_eq!(errno(maps::set_inner_map(&mut w2, 0, &k(0), 1, BPF_ANY)), -22);
    maps::set_inner_map(&mut w2, 0, &k(0), 2, BPF_ANY).unwrap();
}

#[test]
fn bloom_filter() {
    assert_eq!(create_err(spec(MapType::BloomFilter, 4, 4, 100)), -22);
    let mut w = world(&[spec(MapType::BloomFilter, 0, 4, 100)]);
    w.update(0, &[], &k(5), BPF_ANY).unwrap();
    assert_eq!(errno(w.update(0, &[], &k(5), BPF_EXIST)), -22);
    assert_eq!(errno(w.delete(0, &[])), -95);
    assert_eq!(errno(w.keys(0)), -95);
    let (m, mem) = w.map_mut(0).unwrap();
    assert_eq!(m.peek(mem, &k(5)).unwrap(), k(5));
    assert_eq!(m.peek(mem, &k(6)), Err(MapError::NotFound));
    assert_eq!(m.pop(mem), Err(MapError::NotSupp));
    let b = m.as_any().downcast_ref::<BloomFilter>().unwrap();
    // 100 entries * 5 hashes * 7/5 = 700 bits, rounded up to 1024.
    assert_eq!(b.bit_count(), 1024);
    assert!(b.set_bits().count() <= 5);
}

/// Creating every implemented map type with a huge max_entries allocates nothing up front.
#[test]
fn huge_maps_are_lazy() {
    let big = u32::MAX;
    let mut lpm_spec = spec(MapType::LpmTrie, 8, 4, big);
    lpm_spec.flags = NO_PREALLOC;
    let mut of = spec(MapType::HashOfMaps, 4, 4, big);
    of.inner = Some(Box::new(spec(MapType::Hash, 4, 4, 1)));
    let specs = [
        lpm_spec,
        spec(MapType::Queue, 0, 1 << 10, 1 << 20),
        spec(MapType::Ringbuf, 0, 0, 1 << 31),
        spec(MapType::PerfEventArray, 4, 4, big),
        spec(MapType::ProgArray, 4, 4, big),
        spec(MapType::Devmap, 4, 4, big),
        spec(MapType::DevmapHash, 4, 4, 1 << 31),
        spec(MapType::Xskmap, 4, 4, big),
        of,
        spec(MapType::BloomFilter, 0, 4, big),
    ];
    for s in specs {
        let t = s.map_type;
        World::new(&[s], 2).unwrap_or_else(|e| panic!("{t:?}: {e}"));
    }
    // A queue the kernel could not allocate either.
    assert_eq!(create_err(spec(MapType::Queue, 0, 1 << 16, big)), -12);
}

#[derive(Clone, Debug)]
enum Op {
    Insert(u8, u8),
    Delete(u8),
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![
            (any::<u8>(), any::<u8>()).prop_map(|(k, v)| Op::Insert(k, v)),
            any::<u8>().prop_map(Op::Delete),
        ],
        0..200,
    )
}

/// Every key exactly once, and exactly the model's keys.
fn check_keys(w: &World, model: &BTreeSet<Vec<u8>>) {
    let keys = w.keys(0).unwrap();
    let set: BTreeSet<_> = keys.iter().cloned().collect();
    assert_eq!(set.len(), keys.len(), "a key was visited twice: {keys:?}");
    assert_eq!(&set, model);
}

fn config() -> ProptestConfig {
    ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn hash_against_model(ops in ops()) {
        let mut w = world(&[spec(MapType::Hash, 4, 4, 32)]);
        let mut model = BTreeMap::new();
        for op in ops {
            match op {
                Op::Insert(key, v) => {
                    let key = k(u32::from(key % 64));
                    let r = w.update(0, &key, &k(u32::from(v)), BPF_ANY);
                    if model.len() >= 32 && !model.contains_key(&key) {
                        prop_assert_eq!(r, Err(MapError::Full));
                    } else {
                        prop_assert_eq!(r, Ok(()));
                        model.insert(key, k(u32::from(v)));
                    }
                }
                Op::Delete(key) => {
                    let key = k(u32::from(key % 64));
                    let r = w.delete(0, &key);
                    prop_assert_eq!(r.is_ok(), model.remove(&key).is_some());
                }
            }
        }
        check_keys(&w, &model.keys().cloned().collect());
        prop_assert_eq!(w.entries(0).unwrap(), model.into_iter().collect::<Vec<_>>());
    }

    #[test]
    fn lru_hash_keeps_the_most_recent(ops in ops()) {
        let mut w = world(&[spec(MapType::LruHash, 4, 4, 8)]);
        // Model: keys in order of last update.
        let mut model: VecDeque<Vec<u8>> = VecDeque::new();
        for op in ops {
            match op {
                Op::Insert(key, v) => {
                    let key = k(u32::from(key % 32));
                    w.update(0, &key, &k(u32::from(v)), BPF_ANY).unwrap();
                    model.retain(|x| x != &key);
                    model.push_back(key);
                    if model.len() > 8 {
                        model.pop_front();
                    }
                }
                Op::Delete(key) => {
                    let key = k(u32::from(key % 32));
                    let had = model.contains(&key);
                    model.retain(|x| x != &key);
                    prop_assert_eq!(w.delete(0, &key).is_ok(), had);
                }
            }
        }
        check_keys(&w, &model.into_iter().collect());
    }

    #[test]
    fn lpm_trie_against_model(ops in ops()) {
        let mut w = world(&[with_flags(spec(MapType::LpmTrie, 6, 4, 40), NO_PREALLOC)]);
        // Keys: prefix length 0..=16 over two bytes; the model stores canonical prefixes.
        let key_of = |x: u8| {
            let plen = u32::from(x % 17);
            let data = u16::from(x).wrapping_mul(40503).to_be_bytes();
            let mask = if plen == 0 { 0 } else { u16::MAX << (16 - plen) };
            let data = (u16::from_be_bytes(data) & mask).to_be_bytes();
            let mut key = plen.to_le_bytes().to_vec();
            key.extend_from_slice(&data);
            key
        };
        let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        for op in ops {
            match op {
                Op::Insert(x, v) => {
                    let key = key_of(x);
                    let r = w.update(0, &key, &k(u32::from(v)), BPF_ANY);
                    if model.len() >= 40 && !model.contains_key(&key) {
                        prop_assert_eq!(r, Err(MapError::NoSpace));
                    } else {
                        prop_assert_eq!(r, Ok(()));
                        model.insert(key, k(u32::from(v)));
                    }
                }
                Op::Delete(x) => {
                    let key = key_of(x);
                    prop_assert_eq!(w.delete(0, &key).is_ok(), model.remove(&key).is_some());
                }
            }
        }
        check_keys(&w, &model.keys().cloned().collect());
        // Longest-prefix lookups of every /16 address agree with the model.
        for addr in (0..=u16::MAX).step_by(251) {
            let mut key = 16u32.to_le_bytes().to_vec();
            key.extend_from_slice(&addr.to_be_bytes());
            let best = model
                .iter()
                .filter(|(mk, _)| {
                    let plen = u32::from_le_bytes([mk[0], mk[1], mk[2], mk[3]]);
                    let mask = if plen == 0 { 0 } else { u16::MAX << (16 - plen) };
                    u16::from_be_bytes([mk[4], mk[5]]) == addr & mask
                })
                .max_by_key(|(mk, _)| mk[0])
                .map(|(_, v)| v.clone());
            prop_assert_eq!(w.lookup(0, &key).unwrap(), best);
        }
    }

    #[test]
    fn queue_and_stack_against_model(ops in ops(), stack in any::<bool>()) {
        let t = if stack { MapType::Stack } else { MapType::Queue };
        let mut m = QueueStack::new(&spec(t, 0, 1, 8)).unwrap();
        let mut mem = Memory::new();
        let mut model: VecDeque<u8> = VecDeque::new();
        for op in ops {
            match op {
                Op::Insert(v, flags) => {
                    let exist = flags & 1 != 0;
                    let r = m.push(&mut mem, &[v], if exist { BPF_EXIST } else { BPF_ANY });
                    if model.len() == 8 && !exist {
                        prop_assert_eq!(r, Err(MapError::Full));
                        continue;
                    }
                    prop_assert_eq!(r, Ok(()));
                    if model.len() == 8 {
                        model.pop_front();
                    }
                    model.push_back(v);
                }
                Op::Delete(_) => {
                    let want = if stack { model.pop_back() } else { model.pop_front() };
                    prop_assert_eq!(m.pop(&mut mem).ok(), want.map(|v| vec![v]));
                }
            }
            let front = if stack { model.back() } else { model.front() };
            prop_assert_eq!(m.peek(&mem, &[]).ok(), front.map(|&v| vec![v]));
        }
        prop_assert_eq!(m.values().map(|v| v[0]).collect::<Vec<_>>(), Vec::from(model));
    }
}

/// The same pushes and probes as a C program run against Linux 6.18 (bloom filters created
/// with `BPF_F_ZERO_SEED`): the false positives are the kernel's, for the `jhash2` path
/// (value sizes that are multiples of 4) and the `jhash` path.
#[test]
fn bloom_filter_false_positives_match_the_kernel() {
    let kernel: [(u32, u32, &[u32]); 2] = [
        (
            4,
            100,
            &[
                1122, 1265, 1312, 1548, 1591, 1730, 1761, 1863, 1974, 2200, 2327, 2382, 2400, 2438,
                2653, 2680, 2693, 2848, 3038, 3230, 3508, 3711, 3854, 3858, 3975, 4237, 4409, 4471,
                4582, 4599, 4678, 4712, 4792, 4990, 5069, 5174, 5223, 5230, 5318, 5356, 5364, 5383,
                5512, 5687, 5694, 5979,
            ],
        ),
        (
            5,
            50,
            &[
                1074, 1165, 1318, 1334, 1361, 1407, 1551, 1558, 1595, 2056, 2281, 2470, 2622, 2624,
                2842, 3062, 3301, 3316, 3617, 3675, 3737, 3749, 3774, 3802, 3841, 4099, 4137, 4302,
                4352, 4356, 4502, 4517, 4701, 4709, 4712, 4834, 4894, 5054, 5150, 5158, 5385, 5579,
                5590, 5815, 5858,
            ],
        ),
    ];
    for (vs, max, positives) in kernel {
        let value = |i: u32, salt: u8| -> Vec<u8> {
            (0..vs).map(|b| ((i * 7 + b * 13) as u8 ^ (i >> 3) as u8) ^ salt).collect()
        };
        let s = with_flags(spec(MapType::BloomFilter, 0, vs, max), 1 << 6);
        let mut w = world(&[s]);
        for i in 0..max {
            w.update(0, &[], &value(i, 0), BPF_ANY).unwrap();
        }
        let b = w.map(0).unwrap().as_any().downcast_ref::<BloomFilter>().unwrap();
        let got: Vec<u32> =
            (1000..6000).filter(|&i| b.contains(&value(i, (i >> 8) as u8))).collect();
        assert_eq!(got, positives, "value_size {vs}");
    }
}
