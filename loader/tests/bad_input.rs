//! Malformed objects: every one gives a precise [`LoadError`], and no input panics.

mod common;

use bpflab_loader::{LoadError, LoadOptions, TargetBtf, load};
use goblin::elf::Elf;
use proptest::prelude::*;

fn opts() -> LoadOptions {
    LoadOptions { target_btf: TargetBtf::None, ..LoadOptions::default() }
}

/// Byte offset in the file of entry `n` of the REL section named `rel`.
fn rel_entry(bytes: &[u8], rel: &str, n: usize) -> usize {
    let elf = Elf::parse(bytes).unwrap();
    let sh = elf
        .section_headers
        .iter()
        .find(|s| elf.shdr_strtab.get_at(s.sh_name) == Some(rel))
        .unwrap_or_else(|| panic!("no section {rel}"));
    sh.sh_offset as usize + n * 16
}

fn put_u64(bytes: &mut [u8], at: usize, v: u64) {
    bytes[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

#[test]
fn relocation_offset_outside_its_section() {
    let mut bytes = common::bytes("multi.bpf.o");
    let at = rel_entry(&bytes, ".relxdp", 0);
    put_u64(&mut bytes, at, 0x10000);
    match load(&bytes, &opts()) {
        Err(LoadError::BadRelocation { section, offset, reason }) => {
            assert_eq!(section.name, "xdp");
            assert_eq!(offset, 0x10000);
            assert!(reason.contains("outside the section"), "{reason}");
        }
        other => panic!("expected BadRelocation, got {other:?}"),
    }
}

#[test]
fn relocation_misaligned_or_on_the_wrong_instruction() {
    let mut bytes = common::bytes("multi.bpf.o");
    let at = rel_entry(&bytes, ".relxdp", 0);
    put_u64(&mut bytes, at, 0x29);
    assert!(matches!(
        load(&bytes, &opts()),
        Err(LoadError::BadRelocation { offset: 0x29, ref reason, .. }) if reason.contains("multiple of 8")
    ));
    // Slot 0 of xdp is a load, not a LD_IMM64 or a call.
    put_u64(&mut bytes, at, 0);
    assert!(matches!(
        load(&bytes, &opts()),
        Err(LoadError::BadRelocation { offset: 0, ref reason, .. }) if reason.contains("opcode 0x61")
    ));
}

#[test]
fn relocation_symbol_index_out_of_range() {
    let mut bytes = common::bytes("multi.bpf.o");
    let at = rel_entry(&bytes, ".relxdp", 1);
    let r_type = u64::from(bpflab_loader::R_BPF_64_32);
    put_u64(&mut bytes, at + 8, (9999 << 32) | r_type);
    match load(&bytes, &opts()) {
        Err(LoadError::SymbolOutOfRange { section, offset, symbol, count }) => {
            assert_eq!(section.name, "xdp");
            assert_eq!(offset, 0x50);
            assert_eq!(symbol, 9999);
            assert_eq!(count, 21);
        }
        other => panic!("expected SymbolOutOfRange, got {other:?}"),
    }
}

#[test]
fn unknown_program_section_loads_untyped() {
    // libbpf opens the object and leaves the program's type unset (BPF_PROG_TYPE_UNSPEC).
    let mut obj = load(&common::bytes("unknown_section.bpf.o"), &opts()).expect("loads");
    assert_eq!(obj.collection.programs.len(), 1);
    let p = &obj.collection.programs[0];
    assert_eq!((p.name.as_str(), p.section.as_str()), ("bogus", "bpflab_bogus/thing"));
    assert_eq!(p.prog_type, bpflab_vm::ProgType::Unspec);
    assert!(!obj.programs[0].type_known);
    match obj.check_runnable(0) {
        Err(e @ LoadError::UntypedProgram { .. }) => assert_eq!(
            e.to_string(),
            "program 'bogus' in section 'bpflab_bogus/thing' has no program type libbpf knows; \
             pass --prog-type TYPE (LoadOptions::prog_types, libbpf's bpf_program__set_type)"
        ),
        other => panic!("expected UntypedProgram, got {other:?}"),
    }
    let choice = bpflab_loader::parse_prog_type("tc/ingress").unwrap();
    obj.set_prog_type("bogus", &choice).unwrap();
    assert!(obj.check_runnable(0).is_ok());
    let p = &obj.collection.programs[0];
    assert_eq!(p.prog_type, bpflab_vm::ProgType::SchedCls);
    assert_eq!(p.expected_attach_type, Some(bpflab_loader::secdef::attach::TCX_INGRESS));
    match obj.set_prog_type("nope", &choice) {
        Err(LoadError::UnknownProgram { name, programs }) => {
            assert_eq!((name.as_str(), programs), ("nope", vec!["bogus".to_owned()]));
        }
        other => panic!("expected UnknownProgram, got {other:?}"),
    }
    // The same through the options, before anything runs.
    let mut o = opts();
    o.prog_types.insert("bogus".into(), bpflab_loader::parse_prog_type("xdp").unwrap());
    let obj = load(&common::bytes("unknown_section.bpf.o"), &o).unwrap();
    assert_eq!(obj.collection.programs[0].prog_type, bpflab_vm::ProgType::Xdp);
    assert!(obj.programs[0].type_known);
    o.prog_types.insert("other".into(), bpflab_loader::parse_prog_type("xdp").unwrap());
    assert!(matches!(
        load(&common::bytes("unknown_section.bpf.o"), &o),
        Err(LoadError::UnknownProgram { .. })
    ));
}

#[test]
fn huge_kconfig_extern_is_refused_not_allocated() {
    match load(&common::bytes("kconfig_huge.bpf.o"), &opts()) {
        Err(LoadError::TooLarge { what, limit }) => {
            assert_eq!(
                what,
                "the .kconfig map (extern 'CONFIG_BPFLAB_HUGE' ends at byte 1073741824)"
            );
            assert_eq!(limit, 1 << 28);
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

#[test]
fn x86_64_object_is_not_bpf() {
    let mut bytes = common::bytes("multi.bpf.o");
    bytes[18..20].copy_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    assert!(matches!(load(&bytes, &opts()), Err(LoadError::NotBpf { machine: 62 })));
}

#[test]
fn big_endian_object_is_unsupported() {
    let err = load(&common::bytes("bigendian.bpfeb.o"), &opts()).unwrap_err();
    assert!(matches!(err, LoadError::BigEndian));
    assert!(err.to_string().contains("unsupported big-endian"));
}

#[test]
fn elf32_and_executables_are_refused() {
    let mut bytes = common::bytes("multi.bpf.o");
    bytes[4] = 1; // ELFCLASS32
    assert!(matches!(load(&bytes, &opts()), Err(LoadError::NotElf64 { class: 1 })));
    let mut bytes = common::bytes("multi.bpf.o");
    bytes[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    assert!(matches!(load(&bytes, &opts()), Err(LoadError::NotRelocatable { e_type: 2 })));
    assert!(matches!(load(b"not an elf", &opts()), Err(LoadError::Elf(_))));
    assert!(matches!(load(&[], &opts()), Err(LoadError::Elf(_))));
}

#[test]
fn core_relocations_need_a_target() {
    let err = load(&common::bytes("core.bpf.o"), &opts()).unwrap_err();
    assert!(matches!(err, LoadError::CoreWithoutTarget { count: 16 }), "{err:?}");
    let missing = LoadOptions {
        target_btf: TargetBtf::File("/nonexistent/vmlinux".into()),
        ..LoadOptions::default()
    };
    let err = load(&common::bytes("core.bpf.o"), &missing).unwrap_err();
    assert!(matches!(err, LoadError::TargetBtf { ref path, .. } if path == "/nonexistent/vmlinux"));
}

#[test]
fn every_truncation_is_an_error() {
    for name in ["multi.bpf.o", "maps.bpf.o"] {
        let bytes = common::bytes(name);
        for len in 0..bytes.len() {
            assert!(load(&bytes[..len], &opts()).is_err(), "{name} truncated to {len} loaded");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Random byte flips never panic (an error or a load are both fine).
    #[test]
    fn byte_flips_never_panic(
        which in 0usize..4,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let name = ["multi.bpf.o", "maps.bpf.o", "core.bpf.o", "sections.bpf.o"][which];
        let mut bytes = common::bytes(name);
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= value | 1;
        }
        let _ = load(&bytes, &opts());
        let _ = load(&bytes, &LoadOptions::default());
    }

    /// Arbitrary bytes behind a valid ELF header never panic either.
    #[test]
    fn arbitrary_tails_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let mut bytes = common::bytes("multi.bpf.o")[..64].to_vec();
        bytes.extend(tail);
        let _ = load(&bytes, &opts());
    }
}
