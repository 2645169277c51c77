//! What the loader prepares for loading into the kernel: the object's BTF with its DATASECs
//! fixed up as libbpf's `btf_fixup_datasec` does (sizes from the ELF section headers, global
//! variables' offsets from their symbols, checked here against what goblin reads and, for
//! globals.bpf.o, against `llvm-readelf-19 -sS`), `.ksyms` externs and hidden symbols rewritten
//! like libbpf; and each program's load flags and kernel func/line info records, which must fit
//! the linked program's layout exactly as the verifier checks it.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bpflab_btf::{Btf, BtfKind, BtfType, linkage};
use bpflab_loader::{
    BPF_F_MMAPABLE, BPF_F_SLEEPABLE, BPF_F_XDP_HAS_FRAGS, LoadOptions, Object, TargetBtf, load,
};
use bpflab_vm::Program;
use bpflab_vm::isa::{CallKind, Insn, PseudoSrc};
use goblin::elf::{Elf, sym};

fn programs_tests(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../programs/tests").join(name)
}

fn load_path(path: &Path) -> Object {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    // CO-RE needs the running kernel's BTF; without it, objects with CO-RE are skipped.
    let target = if common::have_vmlinux_btf() { TargetBtf::Running } else { TargetBtf::None };
    let opts = LoadOptions { target_btf: target, ..common::load_options(path) };
    load(&bytes, &opts).unwrap_or_else(|e| panic!("load {}: {e}", path.display()))
}

/// The objects to check, with those needing the kernel's BTF (CO-RE, kfuncs) left out when
/// there is no vmlinux BTF.
fn objects() -> Vec<PathBuf> {
    common::cross_check_objects()
        .into_iter()
        .filter(|p| {
            common::have_vmlinux_btf()
                || !(p.ends_with("core.bpf.o")
                    || p.ends_with("kfunc.bpf.o")
                    || p.ends_with("ksyms.bpf.o"))
        })
        .collect()
}

/// One DATASEC: its size and its entries as (VAR name, offset, size, VAR linkage).
type Sec = (u32, Vec<(String, u32, u32, u32)>);

fn datasecs(btf: &Btf) -> BTreeMap<String, Sec> {
    let mut out = BTreeMap::new();
    for (_, t) in btf.types() {
        let BtfType::Datasec(d) = t else { continue };
        let entries = d
            .vars
            .iter()
            .map(|v| {
                let (name, l) = match btf.type_by_id(v.type_id).unwrap() {
                    BtfType::Var { name_off, linkage, .. } => (*name_off, *linkage),
                    BtfType::Func { name_off, linkage, .. } => (*name_off, *linkage),
                    other => panic!("DATASEC entry of kind {}", other.kind()),
                };
                (btf.string_at(name).unwrap().to_owned(), v.offset, v.size, l)
            })
            .collect();
        out.insert(btf.string_at(d.name_off).unwrap().to_owned(), (d.size, entries));
    }
    out
}

/// The BTF `Collection::btf` holds, parsed; it must be the same as `Object::btf`.
fn kernel_btf(obj: &Object) -> Btf {
    let btf = Btf::parse(obj.collection.btf.as_deref().expect("collection BTF")).unwrap();
    let own: Vec<_> = obj.btf.as_ref().unwrap().types().map(|(_, t)| t.clone()).collect();
    assert_eq!(btf.types().map(|(_, t)| t.clone()).collect::<Vec<_>>(), own);
    btf
}

fn entry(name: &str, offset: u32, size: u32, l: u32) -> (String, u32, u32, u32) {
    (name.to_owned(), offset, size, l)
}

#[test]
fn globals_datasecs_match_readelf() {
    // `llvm-readelf-19 -sS programs/tests/globals.bpf.o`: section sizes .data 0x18,
    // .rodata 0x10, .data.custom 0x8, .bss 0x14, .maps 0x20, license 0x4, and the OBJECT
    // symbols' values. clang leaves every DATASEC size and every global's offset 0 (what
    // `bpftool btf dump file` shows for the object); the static data_static keeps clang's 16.
    let obj = load_path(&programs_tests("globals.bpf.o"));
    let raw = datasecs(obj.btf.as_ref().unwrap());
    let (g, s) = (linkage::GLOBAL, linkage::STATIC);
    let expect: BTreeMap<String, Sec> = [
        (
            ".bss",
            (
                0x14,
                vec![entry("bss_a", 0, 4, g), entry("bss_b", 8, 8, g), entry("bss_c", 0x10, 4, g)],
            ),
        ),
        (
            ".data",
            (
                0x18,
                vec![
                    entry("data_a", 0, 4, g),
                    entry("data_b", 4, 4, g),
                    entry("data_c", 8, 8, g),
                    entry("data_static", 0x10, 8, s),
                ],
            ),
        ),
        (".data.custom", (8, vec![entry("custom_a", 0, 4, g), entry("custom_b", 4, 4, g)])),
        (".maps", (0x20, vec![entry("strs", 0, 32, g)])),
        (
            ".rodata",
            (0x10, vec![entry("ro_a", 0, 4, g), entry("ro_b", 4, 4, g), entry("ro_c", 8, 8, g)]),
        ),
        ("license", (4, vec![entry("LICENSE", 0, 4, g)])),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(raw, expect);
    assert_eq!(datasecs(&kernel_btf(&obj)), expect);
}

/// What goblin says about an object: section sizes, OBJECT symbols, and the raw `.BTF`.
struct ElfFacts {
    sections: BTreeMap<String, u64>,
    /// Global or weak OBJECT symbols: name -> (value, hidden), the first of each name.
    objects: BTreeMap<String, (u64, bool)>,
    raw_btf: Btf,
}

fn elf_facts(path: &Path) -> ElfFacts {
    let bytes = std::fs::read(path).unwrap();
    let elf = Elf::parse(&bytes).unwrap();
    let mut sections = BTreeMap::new();
    let mut raw_btf = None;
    for sh in &elf.section_headers {
        let name = elf.shdr_strtab.get_at(sh.sh_name).unwrap_or_default().to_owned();
        if name == ".BTF" {
            let data = &bytes[sh.sh_offset as usize..(sh.sh_offset + sh.sh_size) as usize];
            raw_btf = Some(Btf::parse(data).unwrap());
        }
        sections.entry(name).or_insert(sh.sh_size);
    }
    let mut objects = BTreeMap::new();
    for s in elf.syms.iter() {
        let global = matches!(s.st_bind(), sym::STB_GLOBAL | sym::STB_WEAK);
        if s.st_type() == sym::STT_OBJECT && global {
            let name = elf.strtab.get_at(s.st_name).unwrap_or_default().to_owned();
            let hidden = matches!(s.st_visibility(), sym::STV_HIDDEN | sym::STV_INTERNAL);
            objects.entry(name).or_insert((s.st_value, hidden));
        }
    }
    ElfFacts { sections, objects, raw_btf: raw_btf.expect(".BTF") }
}

#[test]
fn every_datasec_is_sized_and_placed_from_the_elf() {
    for path in objects() {
        let at = path.display();
        let obj = load_path(&path);
        let facts = elf_facts(&path);
        let btf = kernel_btf(&obj);
        let raw = datasecs(&facts.raw_btf);
        for (name, (size, entries)) in datasecs(&btf) {
            let (raw_size, raw_entries) = &raw[&name];
            if name == ".ksyms" || name == ".kconfig" {
                continue;
            }
            let expect_size =
                if *raw_size == 0 { facts.sections[&name] } else { u64::from(*raw_size) };
            assert_eq!(u64::from(size), expect_size, "{at}: DATASEC {name} size");
            assert!(
                entries.is_sorted_by_key(|e| e.1),
                "{at}: DATASEC {name} not sorted: {entries:?}"
            );
            assert_eq!(entries.len(), raw_entries.len(), "{at}: {name}");
            for (var, offset, vsize, l) in &entries {
                let (_, raw_off, raw_vsize, raw_l) =
                    raw_entries.iter().find(|e| &e.0 == var).expect("same variables");
                assert_eq!(vsize, raw_vsize, "{at}: {name}.{var} size");
                if *raw_l == linkage::STATIC {
                    assert_eq!((offset, *l), (raw_off, linkage::STATIC), "{at}: static {var}");
                    continue;
                }
                let (value, hidden) = facts.objects[var];
                assert_eq!(u64::from(*offset), value, "{at}: {name}.{var} offset");
                let want = if hidden { linkage::STATIC } else { *raw_l };
                assert_eq!(*l, want, "{at}: {name}.{var} linkage (hidden: {hidden})");
            }
        }
    }
}

/// Only DATASECs, VAR and FUNC linkage, and (for `.ksyms`) extern variables' types and
/// parameter names change; every type keeps its id. `.ksyms` with extern functions adds one VAR at the end.
#[test]
fn fixup_keeps_every_other_type() {
    for path in objects() {
        let at = path.display();
        let obj = load_path(&path);
        let raw = elf_facts(&path).raw_btf;
        let fixed = kernel_btf(&obj);
        let added = fixed.len() - raw.len();
        assert!(added <= 1, "{at}: {added} types added");
        for ((id, a), (_, b)) in raw.types().zip(fixed.types()) {
            let same = match (a, b) {
                (BtfType::Datasec(x), BtfType::Datasec(y)) => x.name_off == y.name_off,
                // `.ksyms` extern variables become `int`s (bpf_object__collect_externs).
                (
                    BtfType::Var { name_off: n1, type_id: t1, linkage: l1 },
                    BtfType::Var { name_off: n2, type_id: t2, .. },
                ) => n1 == n2 && (t1 == t2 || added == 1 || *l1 == linkage::EXTERN),
                (
                    BtfType::Func { name_off: n1, type_id: t1, .. },
                    BtfType::Func { name_off: n2, type_id: t2, .. },
                ) => n1 == n2 && t1 == t2,
                (BtfType::FuncProto { params: p1, .. }, BtfType::FuncProto { params: p2, .. })
                    if added == 1 =>
                {
                    p1.iter().zip(p2).all(|(x, y)| x.type_id == y.type_id)
                }
                _ => a == b,
            };
            assert!(same, "{at}: type [{id}] changed: {a:?} -> {b:?}");
        }
    }
}

#[test]
fn ksyms_externs_become_allocated_like_libbpf() {
    if !common::have_vmlinux_btf() {
        println!("SKIP: kfunc ids need /sys/kernel/btf/vmlinux");
        return;
    }
    // libbpf's bpf_object__collect_externs: every .ksyms entry becomes a 4-byte slot; extern
    // functions turn global and point the DATASEC at an added `dummy_ksym` VAR of `int`, whose
    // name also fills the prototypes' unnamed parameters.
    let obj = common::load_fixture("kfunc.bpf.o");
    let btf = kernel_btf(&obj);
    let dummy = btf.find_by_name("dummy_ksym", BtfKind::Var).expect("dummy_ksym VAR");
    assert_eq!(dummy, btf.len() - 1, "added last");
    let BtfType::Var { type_id, linkage: l, .. } = btf.type_by_id(dummy).unwrap() else {
        unreachable!()
    };
    assert_eq!((btf.type_name(*type_id).unwrap(), *l), ("int", linkage::GLOBAL));
    let (size, entries) = &datasecs(&btf)[".ksyms"];
    assert_eq!(*size, 8);
    let g = linkage::GLOBAL;
    assert_eq!(entries, &[entry("dummy_ksym", 0, 4, g), entry("dummy_ksym", 4, 4, g)]);
    for name in ["bpf_task_acquire", "bpf_task_release"] {
        let id = btf.find_by_name(name, BtfKind::Func).unwrap();
        let BtfType::Func { type_id: proto, linkage: l, .. } = btf.type_by_id(id).unwrap() else {
            unreachable!()
        };
        assert_eq!(*l, linkage::GLOBAL, "{name}");
        let BtfType::FuncProto { params, .. } = btf.type_by_id(*proto).unwrap() else {
            unreachable!()
        };
        for p in params {
            assert_eq!(btf.string_at(p.name_off).unwrap(), "dummy_ksym", "{name}");
        }
    }
}

#[test]
fn hidden_symbols_become_static_like_libbpf() {
    let obj = common::load_fixture("hidden.bpf.o");
    let btf = kernel_btf(&obj);
    let linkage_of = |name: &str, kind| match btf.type_by_id(btf.find_by_name(name, kind).unwrap())
    {
        Ok(BtfType::Var { linkage, .. } | BtfType::Func { linkage, .. }) => *linkage,
        other => panic!("{name}: {other:?}"),
    };
    assert_eq!(linkage_of("hidden_counter", BtfKind::Var), linkage::STATIC);
    assert_eq!(linkage_of("hidden_total", BtfKind::Var), linkage::STATIC);
    assert_eq!(linkage_of("visible_count", BtfKind::Var), linkage::GLOBAL);
    // mark_btf_static: the hidden .text subprogram, not the program.
    assert_eq!(linkage_of("first_byte", BtfKind::Func), linkage::STATIC);
    assert_eq!(linkage_of("hidden_xdp", BtfKind::Func), linkage::GLOBAL);
    // libbpf's map_is_mmapable sees the fixed-up linkage: only .data.vis is mmapable.
    let flags: BTreeMap<&str, u32> =
        obj.collection.maps.iter().map(|m| (m.name.as_str(), m.flags & BPF_F_MMAPABLE)).collect();
    assert_eq!(
        flags,
        [("hidden.data", 0), ("hidden.bss", 0), (".data.vis", BPF_F_MMAPABLE)]
            .into_iter()
            .collect()
    );
}

/// Slot of each instruction.
fn slots(p: &Program) -> Vec<usize> {
    let mut at = 0;
    p.insns
        .iter()
        .map(|i| {
            let s = at;
            at += i.slots();
            s
        })
        .collect()
}

#[test]
fn func_and_line_info_fit_the_linked_programs() {
    let mut programs = 0;
    for path in objects() {
        let at = path.display();
        let obj = load_path(&path);
        let btf = kernel_btf(&obj);
        for (p, info) in obj.collection.programs.iter().zip(&obj.programs) {
            programs += 1;
            let at = format!("{at} {}", p.name);
            // func_info: one record per function, at its first slot, naming its FUNC.
            let starts: Vec<usize> = info.func_info.iter().map(|(s, _)| *s).collect();
            let got: Vec<usize> = p.func_info.iter().map(|(s, _)| *s as usize).collect();
            assert_eq!(got, starts, "{at}: func_info slots");
            assert_eq!(starts.first(), Some(&0), "{at}: first func_info is the program");
            assert!(starts.windows(2).all(|w| w[0] < w[1]), "{at}: func_info order");
            for ((_, type_id), (_, name)) in p.func_info.iter().zip(&info.func_info) {
                let ty = btf.type_by_id(*type_id).unwrap();
                assert_eq!(ty.kind(), BtfKind::Func, "{at}: [{type_id}]");
                assert_eq!(btf.type_name(*type_id).unwrap(), name, "{at}");
            }
            // The verifier's subprogram layout: every call or callback target starts a function,
            // and every function but the program is one.
            let insn_slots = slots(p);
            let mut targets: Vec<usize> = p
                .insns
                .iter()
                .zip(&insn_slots)
                .filter_map(|(i, &s)| match *i {
                    Insn::Call { kind: CallKind::Local, imm, .. }
                    | Insn::LdImm64 { src: PseudoSrc::Func, imm, .. } => {
                        Some((s as i64 + 1 + i64::from(imm)) as usize)
                    }
                    _ => None,
                })
                .collect();
            targets.push(0);
            targets.sort_unstable();
            targets.dedup();
            assert_eq!(targets, starts, "{at}: subprogram starts");
            // line_info: the display table's records, in the kernel's form.
            assert_eq!(p.line_info.len(), info.line_info.len(), "{at}: line_info count");
            for (k, (slot, line)) in p.line_info.iter().zip(&info.line_info) {
                assert_eq!(k.slot as usize, *slot, "{at}");
                assert_eq!(btf.string_at(k.file_name_off).unwrap(), line.file, "{at}");
                assert_eq!(btf.string_at(k.line_off).unwrap(), line.text, "{at}");
                assert_eq!((k.line_col >> 10, k.line_col & 0x3ff), (line.line, line.col), "{at}");
                assert!(insn_slots.binary_search(slot).is_ok(), "{at}: line at slot {slot}");
            }
            assert!(p.line_info.windows(2).all(|w| w[0].slot < w[1].slot), "{at}: line order");
            if !p.line_info.is_empty() {
                for s in &starts {
                    let has = p.line_info.iter().any(|l| l.slot as usize == *s);
                    assert!(has, "{at}: no line_info for the function at slot {s}");
                }
            }
        }
    }
    assert!(programs > 100, "only {programs} programs checked");
}

#[test]
fn load_flags_follow_the_section() {
    let calls = load_path(&programs_tests("calls.bpf.o"));
    let flags: Vec<_> =
        calls.collection.programs.iter().map(|p| (p.name.as_str(), p.flags)).collect();
    assert_eq!(flags, [("calls_xdp", 0), ("calls_tc", 0), ("calls_syscall", BPF_F_SLEEPABLE)]);
    let xdp = load_path(&programs_tests("xdp.bpf.o"));
    for p in &xdp.collection.programs {
        let want = if p.section == "xdp.frags" { BPF_F_XDP_HAS_FRAGS } else { 0 };
        assert_eq!(p.flags, want, "{}", p.name);
    }
    let sections = common::load_no_target("sections.bpf.o");
    for p in &sections.collection.programs {
        let def = bpflab_loader::secdef::classify(&p.section).unwrap().def;
        assert_eq!(p.flags, def.prog_flags(), "{}", p.section);
    }
}

/// Replaces the last occurrence of `from` (the ELF string table comes after `.BTF` and the
/// DWARF strings in clang's objects) with `to`, of the same length.
fn rename_last(bytes: &mut [u8], from: &[u8], to: &[u8]) {
    assert_eq!(from.len(), to.len());
    let at = bytes.windows(from.len()).rposition(|w| w == from).expect("string in the object");
    bytes[at..at + to.len()].copy_from_slice(to);
}

#[test]
fn fixup_failures_are_load_errors() {
    // Like libbpf's btf_fixup_datasec: a DATASEC needs its ELF section, and a global variable
    // its ELF symbol.
    let original = std::fs::read(programs_tests("globals.bpf.o")).unwrap();
    let opts =
        LoadOptions { target_btf: TargetBtf::None, ..LoadOptions::for_path("globals.bpf.o") };
    let mut bytes = original.clone();
    rename_last(&mut bytes, b".data.custom\0", b".data.cust0m\0");
    match load(&bytes, &opts) {
        Err(bpflab_loader::LoadError::BtfFixup { what, reason }) => {
            assert_eq!(what, "DATASEC '.data.custom'");
            assert!(reason.contains("no ELF section"), "{reason}");
        }
        other => panic!("expected a BTF fix-up error, got {other:?}"),
    }
    let mut bytes = original;
    rename_last(&mut bytes, b"\0custom_b\0", b"\0custom_c\0");
    match load(&bytes, &opts) {
        Err(bpflab_loader::LoadError::BtfFixup { what, reason }) => {
            assert_eq!(what, "DATASEC '.data.custom'");
            assert_eq!(reason, "no ELF symbol for VAR 'custom_b'");
        }
        other => panic!("expected a BTF fix-up error, got {other:?}"),
    }
}
