//! Parsing the running kernel's BTF, checked against bpftool (an independent parser).

mod common;

use bpflab_btf::{Btf, BtfKind, BtfType};
use common::{assert_matches_bpftool, parse_raw, raw_by_name, raw_field, vmlinux, vmlinux_raw};

#[test]
fn type_count_matches_bpftool() {
    let btf = vmlinux();
    let bpftool_count = vmlinux_raw().lines().filter(|l| l.starts_with('[')).count();
    assert_eq!(btf.len() as usize, bpftool_count + 1, "len() counts void too");
    assert!(btf.len() > 10_000, "a kernel has tens of thousands of types");
    assert!(!btf.is_empty());
}

#[test]
fn every_type_renders_like_bpftool() {
    // Every type's kind, name, size, members (offsets, bitfields), enumerators, params,
    // linkage and datasec entries, compared line by line with bpftool's raw dump.
    let n = assert_matches_bpftool(vmlinux(), vmlinux_raw());
    assert_eq!(n as u32, vmlinux().len() - 1);
}

#[test]
fn kind_histogram_matches_bpftool() {
    let raw = parse_raw(vmlinux_raw());
    let mut want = std::collections::BTreeMap::new();
    for t in &raw {
        *want.entry(t.kind.clone()).or_insert(0u32) += 1;
    }
    let mut got = std::collections::BTreeMap::new();
    for (id, t) in vmlinux().types() {
        if id != 0 {
            *got.entry(t.kind().as_str().to_uppercase()).or_insert(0u32) += 1;
        }
    }
    assert_eq!(got, want);
    assert!(want["STRUCT"] > 1000 && want["FUNC"] > 1000);
}

#[test]
fn sk_buff_and_task_struct_facts() {
    let btf = vmlinux();
    let raw = parse_raw(vmlinux_raw());

    let task = btf.find_by_name("task_struct", BtfKind::Struct).expect("struct task_struct");
    let raw_task = raw_by_name(&raw, "STRUCT", "task_struct");
    assert_eq!(task, raw_task.id);
    assert_eq!(u64::from(btf.size_of(task).unwrap()), raw_task.field("size").unwrap());
    assert_eq!(btf.type_name(task).unwrap(), "task_struct");

    let skb = btf.find_by_name("sk_buff", BtfKind::Struct).expect("struct sk_buff");
    let raw_skb = raw_by_name(&raw, "STRUCT", "sk_buff");
    assert_eq!(skb, raw_skb.id);
    let BtfType::Struct(c) = btf.type_by_id(skb).unwrap() else { panic!("sk_buff is a struct") };
    for field in ["len", "data_len", "cloned", "fclone", "pp_recycle", "head", "data"] {
        let m = c
            .members
            .iter()
            .find(|m| btf.string_at(m.name_off).unwrap() == field)
            .unwrap_or_else(|| panic!("sk_buff.{field}"));
        let (bits, bitfield) = raw_field(&raw, skb, field).unwrap();
        assert_eq!(
            (u64::from(m.bit_offset), u64::from(m.bitfield_size)),
            (bits, bitfield),
            "{field}"
        );
    }
    // sk_buff.len: 4-byte unsigned int, byte-aligned.
    let len = c.members.iter().find(|m| btf.string_at(m.name_off).unwrap() == "len").unwrap();
    assert_eq!(len.bit_offset % 8, 0);
    assert_eq!(btf.size_of(len.type_id).unwrap(), 4);
    assert_eq!(
        btf.type_name(btf.skip_mods_and_typedefs(len.type_id).unwrap()).unwrap(),
        "unsigned int"
    );
}

#[test]
fn queries_on_vmlinux() {
    let btf = vmlinux();
    let raw = parse_raw(vmlinux_raw());
    // Pointers are 8 bytes; arrays multiply.
    let ptr = btf.types().find(|(_, t)| matches!(t, BtfType::Ptr { .. })).unwrap().0;
    assert_eq!(btf.size_of(ptr).unwrap(), 8);
    let (arr, a) = btf
        .types()
        .find_map(|(id, t)| match t {
            BtfType::Array(a) if a.nelems > 1 => Some((id, a.clone())),
            _ => None,
        })
        .unwrap();
    assert_eq!(btf.size_of(arr).unwrap(), a.nelems * btf.size_of(a.elem_type).unwrap());
    // Typedef chains resolve to the same id bpftool's dump leads to.
    let u32_id = btf.find_by_name("u32", BtfKind::Typedef).unwrap();
    let resolved = btf.skip_mods_and_typedefs(u32_id).unwrap();
    assert_eq!(resolved, common::resolve_raw(&raw, u32_id));
    assert_eq!(btf.type_name(resolved).unwrap(), "unsigned int");
    assert_eq!(btf.size_of(u32_id).unwrap(), 4);
    // Void has no size; functions neither.
    assert!(btf.size_of(0).is_err());
    let func = btf.find_by_name("schedule", BtfKind::Func).expect("func schedule");
    assert!(matches!(
        btf.size_of(func),
        Err(bpflab_btf::BtfError::NoSize { kind: BtfKind::Func, .. })
    ));
    // The kernel's per-CPU data section.
    let (id, ds) = btf.datasec(".data..percpu").expect("percpu datasec");
    let raw_ds = raw_by_name(&raw, "DATASEC", ".data..percpu");
    assert_eq!(id, raw_ds.id);
    assert_eq!(ds.vars.len() as u64, raw_ds.field("vlen").unwrap());
    // Enum64 values survive.
    let pcc = btf.find_by_name("perf_callchain_context", BtfKind::Enum64).unwrap();
    let e = btf.type_by_id(pcc).unwrap().as_enum().unwrap();
    let user = e.values.iter().find(|v| btf.string_at(v.name_off).unwrap() == "PERF_CONTEXT_USER");
    assert_eq!(user.unwrap().value as u64, (-512i64) as u64);
    // Out-of-range lookups are errors, not panics.
    assert!(btf.type_by_id(btf.len()).is_err());
    assert!(btf.string_at(btf.strings_len()).is_err());
    assert_eq!(btf.find_by_name("no_such_struct_bpflab", BtfKind::Struct), None);
}

#[test]
fn split_btf_on_top_of_vmlinux() {
    // A hand-made module BTF: a typedef of the kernel's `struct task_struct` and a new
    // struct using both a base type and the typedef.
    let base = vmlinux();
    let task = base.find_by_name("task_struct", BtfKind::Struct).unwrap();
    let int = base.find_by_name("int", BtfKind::Int).unwrap();
    let mut strings = Vec::new();
    let mut add = |s: &str| {
        let off = base.strings_len() + strings.len() as u32;
        strings.extend_from_slice(s.as_bytes());
        strings.push(0);
        off
    };
    let (n_td, n_mod, n_a, n_b) = (add("task_t"), add("bpflab_mod"), add("a"), add("b"));
    let first = base.len();
    let mut types = Vec::new();
    for w in [n_td, 8 << 24, task] {
        types.extend_from_slice(&u32::to_le_bytes(w));
    }
    for w in [n_mod, (4 << 24) | 2, 16, n_a, int, 0, n_b, first, 64] {
        types.extend_from_slice(&u32::to_le_bytes(w));
    }
    let mut blob = vec![0x9f, 0xeb, 1, 0];
    for w in [24, 0, types.len() as u32, types.len() as u32, strings.len() as u32] {
        blob.extend_from_slice(&w.to_le_bytes());
    }
    blob.extend_from_slice(&types);
    blob.extend_from_slice(&strings);

    let split = Btf::parse_split(&blob, base).expect("split BTF parses");
    assert_eq!(split.len(), base.len() + 2);
    assert_eq!(split.type_name(first).unwrap(), "task_t");
    assert_eq!(split.type_name(task).unwrap(), "task_struct");
    assert_eq!(split.skip_mods_and_typedefs(first).unwrap(), task);
    assert_eq!(split.size_of(first).unwrap(), base.size_of(task).unwrap());
    assert_eq!(split.find_by_name("bpflab_mod", BtfKind::Struct), Some(first + 1));
    assert_eq!(split.find_by_name("task_struct", BtfKind::Struct), Some(task));
    assert_eq!(split.size_of(first + 1).unwrap(), 16);
    // The same blob is not valid as base BTF (its strings do not start at offset 0).
    assert!(Btf::parse(&blob).is_err());
}
