//! Malformed BTF and BTF.ext: every case is a typed error naming where, never a panic, a
//! huge allocation, or unbounded recursion. Plus a proptest over random and mutated blobs.

mod common;

use bpflab_btf::core::resolve;
use bpflab_btf::{Btf, BtfError, BtfExt, BtfKind};
use common::{BtfBuilder, elf_section, fixture, load_obj, put_u32};
use proptest::prelude::*;

fn sample() -> BtfBuilder {
    let mut b = BtfBuilder::new();
    b.int("int", 4, true); // [1]
    let (s, a, c) = (b.str("s"), b.str("a"), b.str("b"));
    b.ty(s, 4, 2, false, 8, &[a, 1, 0, c, 1, 32]); // [2] struct s { int a; int b; }
    b
}

#[test]
fn sample_parses() {
    let btf = Btf::parse(&sample().build()).unwrap();
    assert_eq!(btf.len(), 3);
    assert_eq!(btf.size_of(2).unwrap(), 8);
    assert_eq!(btf.find_by_name("s", BtfKind::Struct), Some(2));
    assert_eq!(btf.member_name(2, 1).unwrap(), "b");
    assert!(matches!(
        btf.member_name(2, 2),
        Err(BtfError::MemberNotFound { type_id: 2, index: 2 })
    ));
}

#[test]
fn header_errors() {
    let good = sample().build();
    for len in [0, 1, 3, 4, 23] {
        assert!(matches!(Btf::parse(&good[..len]), Err(BtfError::Truncated { .. })), "len {len}");
    }
    let mut be = good.clone();
    be.swap(0, 1);
    assert!(matches!(Btf::parse(&be), Err(BtfError::BigEndian { .. })));
    let mut bad = good.clone();
    bad[0] = 0;
    assert!(matches!(Btf::parse(&bad), Err(BtfError::BadMagic { magic: 0xeb00, .. })));
    let mut bad = good.clone();
    bad[2] = 2;
    assert!(matches!(Btf::parse(&bad), Err(BtfError::UnsupportedVersion { version: 2, .. })));
    for hdr_len in [0, 23, good.len() as u32 + 1, u32::MAX] {
        let mut bad = good.clone();
        put_u32(&mut bad, 4, hdr_len);
        assert!(
            matches!(Btf::parse(&bad), Err(BtfError::BadHeaderLen { .. })),
            "hdr_len {hdr_len}"
        );
    }
    // type_off/type_len/str_off/str_len out of range, with u32 overflow attempts.
    for (field, value, section) in [
        (8, 4096, "BTF type section"),
        (12, u32::MAX, "BTF type section"),
        (8, u32::MAX - 3, "BTF type section"),
        (16, u32::MAX, "BTF string section"),
        (20, 10_000, "BTF string section"),
    ] {
        let mut bad = good.clone();
        put_u32(&mut bad, field, value);
        match Btf::parse(&bad) {
            Err(BtfError::SectionOutOfRange { section: s, .. }) => assert_eq!(s, section),
            other => panic!("field {field} = {value}: {other:?}"),
        }
    }
    let mut bad = good.clone();
    put_u32(&mut bad, 8, 2);
    put_u32(&mut bad, 12, 0);
    assert!(matches!(Btf::parse(&bad), Err(BtfError::Misaligned { off: 2, .. })));
    // Types overlapping the strings.
    let mut bad = good.clone();
    put_u32(&mut bad, 16, 4);
    put_u32(&mut bad, 20, 4);
    assert!(matches!(Btf::parse(&bad), Err(BtfError::SectionLayout { .. })));
    // A longer header (future fields) is accepted when the offsets say so.
    let mut long = good[..24].to_vec();
    put_u32(&mut long, 4, 32);
    long.extend_from_slice(&[0; 8]);
    long.extend_from_slice(&good[24..]);
    assert_eq!(Btf::parse(&long).unwrap().len(), 3);
}

#[test]
fn string_section_errors() {
    let mut b = sample();
    b.strings.pop(); // last string not NUL-terminated
    assert!(matches!(
        Btf::parse(&b.build()),
        Err(BtfError::BadStringSection { reason: "last string is not NUL-terminated", .. })
    ));
    let mut b = sample();
    b.strings[0] = b'x';
    assert!(matches!(Btf::parse(&b.build()), Err(BtfError::BadStringSection { .. })));
    let mut b = sample();
    b.strings.clear();
    assert!(matches!(Btf::parse(&b.build()), Err(BtfError::BadStringSection { .. })));
    // A name offset past the strings.
    let mut b = BtfBuilder::new();
    b.ty(1000, 1, 0, false, 4, &[32]);
    assert!(matches!(Btf::parse(&b.build()), Err(BtfError::StringOffset { offset: 1000, .. })));
    // A member name offset past the strings.
    let mut b = sample();
    let s = b.str("t");
    b.ty(s, 4, 1, false, 4, &[0x7fff_ffff, 1, 0]);
    assert!(matches!(
        Btf::parse(&b.build()),
        Err(BtfError::StringOffset { offset: 0x7fff_ffff, .. })
    ));
    // Non-UTF-8 names parse but are reported when asked for.
    let mut b = BtfBuilder::new();
    let n = b.strings.len() as u32;
    b.strings.extend_from_slice(&[0xff, 0xfe, 0]);
    b.ty(n, 1, 0, false, 4, &[32]);
    let btf = Btf::parse(&b.build()).unwrap();
    assert!(matches!(btf.type_name(1), Err(BtfError::NotUtf8 { offset }) if offset == n));
    assert_eq!(btf.string_bytes_at(n).unwrap(), &[0xff, 0xfe]);
}

#[test]
fn type_section_errors() {
    // vlen claims more members than there are bytes: no allocation, a typed error.
    let mut b = sample();
    let s = b.str("big");
    b.ty(s, 4, 0xffff, false, 4, &[0, 1, 0]);
    match Btf::parse(&b.build()) {
        Err(BtfError::TypeTruncated { type_id: 3, kind: BtfKind::Struct, need, have, .. }) => {
            assert_eq!(need, 12 + 12 * 0xffff);
            assert_eq!(have, 24);
        }
        other => panic!("{other:?}"),
    }
    // Same for enums, enum64, func protos, datasecs.
    for (kind, k) in [
        (6, BtfKind::Enum),
        (19, BtfKind::Enum64),
        (13, BtfKind::FuncProto),
        (15, BtfKind::Datasec),
    ] {
        let mut b = sample();
        b.ty(0, kind, 100, false, 4, &[]);
        assert!(
            matches!(Btf::parse(&b.build()), Err(BtfError::TypeTruncated { type_id: 3, kind: kk, .. }) if kk == k),
            "{k}"
        );
    }
    // A type header cut short.
    let mut b = sample();
    b.types.extend_from_slice(&[1, 2, 3, 4]);
    assert!(matches!(Btf::parse(&b.build()), Err(BtfError::Truncated { need: 12, have: 4, .. })));
    // Unknown kind, kind 0 after id 0.
    let mut b = sample();
    b.ty(0, 25, 0, false, 0, &[]);
    assert!(matches!(
        Btf::parse(&b.build()),
        Err(BtfError::UnknownKind { type_id: 3, kind: 25, .. })
    ));
    let mut b = sample();
    b.ty(0, 0, 0, false, 0, &[]);
    assert!(matches!(Btf::parse(&b.build()), Err(BtfError::BadType { type_id: 3, .. })));
    // References to missing types.
    let mut b = sample();
    b.ty(0, 2, 0, false, 99, &[]);
    assert!(matches!(
        Btf::parse(&b.build()),
        Err(BtfError::DanglingTypeId { type_id: 3, target: 99, count: 4 })
    ));
    let mut b = sample();
    let a = b.str("arr");
    b.ty(a, 3, 0, false, 0, &[1, 50, 4]);
    assert!(matches!(Btf::parse(&b.build()), Err(BtfError::DanglingTypeId { target: 50, .. })));
    // Lookups past the end.
    let btf = Btf::parse(&sample().build()).unwrap();
    assert!(matches!(btf.type_by_id(3), Err(BtfError::TypeNotFound { type_id: 3, count: 3 })));
    assert!(matches!(btf.type_by_id(u32::MAX), Err(BtfError::TypeNotFound { .. })));
    assert!(matches!(btf.string_at(u32::MAX), Err(BtfError::StringOffset { .. })));
    assert!(matches!(btf.size_of(0), Err(BtfError::NoSize { type_id: 0, kind: BtfKind::Void })));
}

#[test]
fn reference_cycles_and_depth() {
    // typedef A -> typedef B -> A.
    let mut b = BtfBuilder::new();
    b.typedef("A", 2); // [1]
    b.typedef("B", 1); // [2]
    // const -> volatile -> ptr? no: const [3] -> volatile [4] -> const [3]
    b.ty(0, 10, 0, false, 4, &[]); // [3] const -> [4]
    b.ty(0, 9, 0, false, 3, &[]); // [4] volatile -> [3]
    // array [5] of array [6] of array [5]: a cycle through arrays
    b.ty(0, 3, 0, false, 0, &[6, 0, 2]); // [5]
    b.ty(0, 3, 0, false, 0, &[5, 0, 2]); // [6]
    // A ptr to the typedef cycle is still 8 bytes, as in C.
    b.ty(0, 2, 0, false, 1, &[]); // [7]
    let btf = Btf::parse(&b.build()).expect("cycles are legal to parse, illegal to resolve");
    for id in [1, 2, 3, 4] {
        assert!(
            matches!(btf.skip_mods_and_typedefs(id), Err(BtfError::Cycle { type_id }) if type_id == id)
        );
        assert!(matches!(btf.size_of(id), Err(BtfError::Cycle { .. })), "{id}");
    }
    assert!(matches!(btf.size_of(5), Err(BtfError::Cycle { .. } | BtfError::SizeOverflow { .. })));
    assert_eq!(btf.size_of(7).unwrap(), 8);

    // A 40-long chain of typedefs: not a cycle, but deeper than MAX_RESOLVE_DEPTH.
    let mut b = BtfBuilder::new();
    b.int("int", 4, true); // [1]
    for i in 0..40 {
        b.typedef(&format!("t{i}"), i + 1); // [i + 2] -> [i + 1]
    }
    let btf = Btf::parse(&b.build()).unwrap();
    assert_eq!(btf.size_of(20).unwrap(), 4);
    assert!(matches!(
        btf.skip_mods_and_typedefs(41),
        Err(BtfError::TooDeep { type_id: 41, depth: 32 })
    ));
    assert!(matches!(btf.size_of(41), Err(BtfError::TooDeep { .. })));

    // Array sizes that overflow u32.
    let mut b = BtfBuilder::new();
    b.int("int", 4, true); // [1]
    b.ty(0, 3, 0, false, 0, &[1, 1, 0x4000_0000]); // [2] int[1 << 30]
    let btf = Btf::parse(&b.build()).unwrap();
    assert!(matches!(btf.size_of(2), Err(BtfError::SizeOverflow { type_id: 2 })));
}

#[test]
fn split_errors() {
    let base = Btf::parse(&sample().build()).unwrap();
    // Split BTF may have an empty string section and refer to base strings and types.
    let mut b = BtfBuilder { types: Vec::new(), strings: Vec::new() };
    b.ty(1, 2, 0, false, 2, &[]); // ptr to base struct s (name_off ignored for ptr)
    b.ty(0, 8, 0, false, 3, &[]); // typedef named "int" -> [3]
    let split = Btf::parse_split(&b.build(), &base).unwrap();
    assert_eq!(split.len(), 5);
    assert_eq!(split.size_of(4).unwrap(), 8);
    assert_eq!(split.type_name(2).unwrap(), "s");
    // A reference past the split's own types.
    let mut b = BtfBuilder { types: Vec::new(), strings: Vec::new() };
    b.ty(0, 2, 0, false, 9, &[]);
    assert!(matches!(
        Btf::parse_split(&b.build(), &base),
        Err(BtfError::DanglingTypeId { type_id: 3, .. })
    ));
}

fn mutate(mut data: Vec<u8>, edits: &[(usize, u8)], cut: Option<usize>) -> Vec<u8> {
    if data.is_empty() {
        return data;
    }
    for &(pos, byte) in edits {
        let i = pos % data.len();
        data[i] = byte;
    }
    if let Some(cut) = cut {
        data.truncate(data.len().saturating_sub(cut));
    }
    data
}

/// Exercises every query on a parsed blob; none may panic.
fn exercise(btf: &Btf) {
    for id in 0..btf.len().min(2000) {
        let _ = btf.type_name(id);
        let _ = btf.size_of(id);
        let _ = btf.skip_mods_and_typedefs(id);
    }
    let _ = btf.find_by_name("task_struct", BtfKind::Struct);
    let _ = btf.datasec(".bss");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512), magic in any::<bool>()) {
        let mut data = data;
        if magic && data.len() >= 4 {
            data[..4].copy_from_slice(&[0x9f, 0xeb, 1, 0]);
        }
        if let Ok(btf) = Btf::parse(&data) {
            exercise(&btf);
        }
        let base = Btf::parse(&sample().build()).unwrap();
        let _ = BtfExt::parse(&data, &base);
        let _ = Btf::parse_split(&data, &base);
    }

    #[test]
    fn mutated_fixture_never_panics(
        btf_edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
        ext_edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
        btf_cut in proptest::option::of(0usize..64),
        ext_cut in proptest::option::of(0usize..64),
    ) {
        let path = fixture("core.bpf.o");
        let btf_data = mutate(elf_section(&path, ".BTF").unwrap(), &btf_edits, btf_cut);
        let ext_data = mutate(elf_section(&path, ".BTF.ext").unwrap(), &ext_edits, ext_cut);
        let (good_btf, good_ext) = load_obj("core.bpf.o");
        let (target, _) = load_obj("target.bpf.o");
        if let Ok(btf) = Btf::parse(&btf_data) {
            exercise(&btf);
            if let Ok(ext) = BtfExt::parse(&ext_data, &btf) {
                for sec in &ext.core_relos {
                    for relo in &sec.records {
                        let _ = resolve(&btf, &target, relo);
                        let _ = resolve(&target, &btf, relo);
                    }
                }
            }
            // The good relocations against a mutated target, and mutated local BTF.
            for sec in &good_ext.core_relos {
                for relo in &sec.records {
                    let _ = resolve(&good_btf, &btf, relo);
                    let _ = resolve(&btf, &good_btf, relo);
                }
            }
        }
        let _ = BtfExt::parse(&ext_data, &good_btf);
    }
}
