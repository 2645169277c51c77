//! `.BTF` / `.BTF.ext` of the committed clang-built fixtures, checked against bpftool, the
//! ELF symbol table (via goblin) and the C source.

mod common;

use bpflab_btf::{BtfError, BtfExt, BtfKind, BtfType, CoreReloKind};
use common::{
    assert_matches_bpftool, bpftool_raw, elf_section, elf_symbols, fixture, load_obj, put_u32,
};

#[test]
fn fixture_btf_renders_like_bpftool() {
    for obj in ["core.bpf.o", "target.bpf.o"] {
        let (btf, _) = load_obj(obj);
        let text = bpftool_raw(fixture(obj).to_str().unwrap());
        let n = assert_matches_bpftool(&btf, &text);
        assert!(n > 20, "{obj}: {n} types");
    }
}

#[test]
fn target_datasecs() {
    let (btf, ext) = load_obj("target.bpf.o");
    let (_, bss) = btf.datasec(".bss").expect(".bss datasec");
    let names: Vec<&str> = bss.vars.iter().map(|v| btf.type_name(v.type_id).unwrap()).collect();
    assert_eq!(
        names,
        [
            "g_skb",
            "g_task",
            "g_list",
            "g_pid_type",
            "g_pcc",
            "g_amb1",
            "g_amb2",
            "g_same_a",
            "g_same_b"
        ]
    );
    let (_, data) = btf.datasec(".data").expect(".data datasec");
    assert_eq!(data.vars.len(), 1);
    assert_eq!(data.vars[0].size, 4);
    assert!(btf.datasec(".maps").is_none());
    // No code, so no func/line info and no relocations.
    assert!(ext.func_info.is_empty() && ext.core_relos.is_empty());
}

#[test]
fn func_info_matches_elf_symbols() {
    let (btf, ext) = load_obj("core.bpf.o");
    let funcs: Vec<_> = elf_symbols(&fixture("core.bpf.o")).into_iter().filter(|s| s.3).collect();
    assert_eq!(funcs.len(), 6, "{funcs:?}");
    let total: usize = ext.func_info.iter().map(|s| s.records.len()).sum();
    assert_eq!(total, funcs.len());
    for (name, section, value, _) in &funcs {
        let recs = ext.func_info_for(section);
        let rec = recs
            .iter()
            .find(|r| u64::from(r.insn_off) == *value)
            .unwrap_or_else(|| panic!("no func_info for {name} at {section}+{value}"));
        assert!(matches!(btf.type_by_id(rec.type_id).unwrap(), BtfType::Func { .. }));
        assert_eq!(btf.type_name(rec.type_id).unwrap(), name);
    }
    assert_eq!(ext.func_info_for("kprobe/bpflab_skb")[0].insn_off, 0);
    let skb = ext.func_info_for("kprobe/bpflab_skb")[0].type_id;
    assert_eq!(btf.type_name(skb).unwrap(), "skb_prog");
    assert_eq!(
        btf.find_by_name("read_task", BtfKind::Func),
        Some(ext.func_info_for(".text")[0].type_id)
    );
}

#[test]
fn line_info_matches_source() {
    let (_, ext) = load_obj("core.bpf.o");
    let source = std::fs::read_to_string(fixture("core.bpf.c")).unwrap();
    let lines: Vec<&str> = source.lines().collect();
    let mut checked = 0;
    for sec in &ext.line_info {
        let size = elf_section(&fixture("core.bpf.o"), &sec.section).expect("code section").len();
        let mut prev = None;
        for li in &sec.records {
            assert!(li.file_name.ends_with("core.bpf.c"), "{}", li.file_name);
            assert!((li.insn_off as usize) < size && li.insn_off % 8 == 0);
            assert!(prev.is_none_or(|p| p <= li.insn_off), "sorted by insn_off");
            prev = Some(li.insn_off);
            let line = lines[li.line as usize - 1];
            assert_eq!(li.line_text, line, "line {} of {}", li.line, sec.section);
            assert!(li.col as usize <= line.len() + 1);
            checked += 1;
        }
    }
    assert!(checked > 30, "{checked} line_info records");
    let skb = ext.line_info_for("kprobe/bpflab_skb");
    assert!(skb.iter().any(|l| l.line_text.contains("BPF_CORE_READ(skb, len)") && l.col > 1));
    assert_eq!(skb[0].insn_off, 0);
    let want = lines.iter().position(|l| l.contains("int skb_prog(struct sk_buff *skb)")).unwrap();
    assert!(skb.iter().any(|l| l.line as usize == want + 1), "function line recorded");
}

#[test]
fn core_relo_records() {
    let (btf, ext) = load_obj("core.bpf.o");
    let counts: Vec<(&str, usize)> =
        ext.core_relos.iter().map(|s| (s.section.as_str(), s.records.len())).collect();
    // Same counts as libbpf reports ("found N CO-RE relocations").
    assert_eq!(
        counts,
        [
            (".text", 10),
            ("kprobe/bpflab_skb", 25),
            ("kprobe/bpflab_types", 8),
            ("kprobe/bpflab_enums", 6),
            ("kprobe/bpflab_flavors", 2),
        ]
    );
    let types = ext.core_relos_for("kprobe/bpflab_types");
    let kinds: Vec<CoreReloKind> = types.iter().map(|r| r.kind).collect();
    use CoreReloKind::*;
    assert_eq!(
        kinds,
        [
            TypeExists,
            TypeExists,
            TypeSize,
            TypeIdTarget,
            TypeIdLocal,
            TypeMatches,
            TypeMatches,
            TypeSize
        ]
    );
    assert!(types.iter().all(|r| r.access_str == "0"));
    let names: Vec<&str> = types.iter().map(|r| btf.type_name(r.type_id).unwrap()).collect();
    assert_eq!(
        names,
        [
            "task_struct",
            "bpflab_no_such_type",
            "task_struct",
            "task_struct",
            "task_struct",
            "list_head",
            "list_head___bad",
            "sk_buff",
        ]
    );
    // task->comm[2]: member 2 of the local task_struct, element 2.
    let text = ext.core_relos_for(".text");
    assert_eq!(text[2].access_str, "0:2:2");
    assert_eq!(text[2].kind, FieldByteOffset);
    assert_eq!(text[5].access_str, "1:0", "&task[1].pid");
    let enums = ext.core_relos_for("kprobe/bpflab_enums");
    assert_eq!(enums[1].kind, EnumvalValue);
    assert_eq!(btf.type_name(enums[1].type_id).unwrap(), "pid_type");
    assert_eq!(enums[1].access_str, "3", "PIDTYPE_SID is enumerator #3");
    // Every relocation points at an instruction inside its section.
    for sec in &ext.core_relos {
        let size = elf_section(&fixture("core.bpf.o"), &sec.section).unwrap().len();
        assert!(sec.records.iter().all(|r| (r.insn_off as usize) < size && r.insn_off % 8 == 0));
    }
}

/// Encodes one `.BTF.ext` info sub-section: rec_size, then blocks of records.
fn info(rec_size: u32, blocks: &[(u32, Vec<Vec<u32>>)]) -> Vec<u8> {
    let mut out = rec_size.to_le_bytes().to_vec();
    for (name, recs) in blocks {
        out.extend_from_slice(&name.to_le_bytes());
        out.extend_from_slice(&(recs.len() as u32).to_le_bytes());
        for r in recs {
            let mut bytes: Vec<u8> = r.iter().flat_map(|w| w.to_le_bytes()).collect();
            bytes.resize(rec_size as usize, 0xAA);
            out.extend_from_slice(&bytes);
        }
    }
    out
}

/// A `.BTF.ext` blob with a 32-byte header.
fn ext_blob(func: &[u8], line: &[u8], core: &[u8]) -> Vec<u8> {
    let mut out = vec![0x9f, 0xeb, 1, 0];
    let mut off = 0u32;
    let mut hdr = vec![32u32];
    for s in [func, line, core] {
        hdr.extend([off, s.len() as u32]);
        off += s.len() as u32;
    }
    for w in hdr {
        out.extend_from_slice(&w.to_le_bytes());
    }
    out.extend_from_slice(func);
    out.extend_from_slice(line);
    out.extend_from_slice(core);
    out
}

#[test]
fn ext_honours_record_size() {
    let (btf, _) = load_obj("core.bpf.o");
    let name =
        btf.type_by_id(btf.find_by_name("read_task", BtfKind::Func).unwrap()).unwrap().name_off();
    let access = {
        // Offset of the string "0" (some relocation's access string) in the string table.
        (0..btf.strings_len()).find(|&o| btf.string_at(o).ok() == Some("0")).unwrap()
    };
    let task = btf.find_by_name("task_struct", BtfKind::Struct).unwrap();
    for extra in [0u32, 4, 12] {
        let blob = ext_blob(
            &info(8 + extra, &[(name, vec![vec![0, 7], vec![16, 8]])]),
            &info(16 + extra, &[(name, vec![vec![8, name, name, (12 << 10) | 5]])]),
            &info(16 + extra, &[(name, vec![vec![24, task, access, 8]])]),
        );
        let ext = BtfExt::parse(&blob, &btf).unwrap();
        assert_eq!(ext.func_info[0].section, "read_task");
        assert_eq!(ext.func_info[0].records.len(), 2);
        assert_eq!(
            (ext.func_info[0].records[1].insn_off, ext.func_info[0].records[1].type_id),
            (16, 8)
        );
        let li = &ext.line_info[0].records[0];
        assert_eq!((li.insn_off, li.line, li.col), (8, 12, 5));
        assert_eq!(li.file_name, "read_task");
        let cr = &ext.core_relos[0].records[0];
        assert_eq!(
            (cr.insn_off, cr.type_id, cr.access_str.as_str(), cr.kind),
            (24, task, "0", CoreReloKind::TypeExists)
        );
    }
    // Records smaller than the known layout are rejected.
    let blob = ext_blob(&info(4, &[(name, vec![vec![0]])]), &[], &[]);
    assert!(matches!(
        BtfExt::parse(&blob, &btf),
        Err(BtfError::BadRecordSize { section: "func_info", rec_size: 4, min: 8, .. })
    ));
    let blob = ext_blob(&[], &[], &info(18, &[(name, vec![vec![0, task, access, 8]])]));
    assert!(matches!(
        BtfExt::parse(&blob, &btf),
        Err(BtfError::BadRecordSize { rec_size: 18, .. })
    ));
    // Unknown relocation kind, bad string offsets, empty blocks, lying record counts.
    let blob = ext_blob(&[], &[], &info(16, &[(name, vec![vec![0, task, access, 13]])]));
    assert!(matches!(
        BtfExt::parse(&blob, &btf),
        Err(BtfError::UnknownCoreReloKind { kind: 13, .. })
    ));
    let blob = ext_blob(&[], &[], &info(16, &[(name, vec![vec![0, task, 0x00ff_0000, 8]])]));
    assert!(matches!(BtfExt::parse(&blob, &btf), Err(BtfError::StringOffset { .. })));
    let blob = ext_blob(&info(8, &[(name, vec![])]), &[], &[]);
    assert!(matches!(
        BtfExt::parse(&blob, &btf),
        Err(BtfError::EmptyBlock { section: "func_info", .. })
    ));
    let mut blob = ext_blob(&info(8, &[(name, vec![vec![0, 7]])]), &[], &[]);
    put_u32(&mut blob, 32 + 8, 0x4000_0000); // num_info
    assert!(matches!(
        BtfExt::parse(&blob, &btf),
        Err(BtfError::Truncated { section: "func_info", .. })
    ));
}

#[test]
fn ext_header_errors() {
    let (btf, _) = load_obj("core.bpf.o");
    let good = elf_section(&fixture("core.bpf.o"), ".BTF.ext").unwrap();
    assert!(BtfExt::parse(&good, &btf).is_ok());
    assert!(matches!(BtfExt::parse(&good[..10], &btf), Err(BtfError::Truncated { .. })));
    assert!(matches!(BtfExt::parse(&[], &btf), Err(BtfError::Truncated { .. })));
    let mut be = good.clone();
    be.swap(0, 1);
    assert!(matches!(
        BtfExt::parse(&be, &btf),
        Err(BtfError::BigEndian { section: "BTF.ext header" })
    ));
    let mut bad = good.clone();
    put_u32(&mut bad, 4, 16);
    assert!(matches!(BtfExt::parse(&bad, &btf), Err(BtfError::BadHeaderLen { hdr_len: 16, .. })));
    let mut bad = good.clone();
    put_u32(&mut bad, 12, u32::MAX); // func_info_len
    assert!(matches!(
        BtfExt::parse(&bad, &btf),
        Err(BtfError::SectionOutOfRange { section: "func_info", .. })
    ));
    let mut bad = good.clone();
    put_u32(&mut bad, 8, 2); // func_info_off
    assert!(matches!(
        BtfExt::parse(&bad, &btf),
        Err(BtfError::Misaligned { section: "func_info", off: 2 })
    ));
    // A header without the core_relo part (hdr_len 24) parses with no relocations.
    let mut old = good.clone();
    put_u32(&mut old, 4, 24);
    let func_off = u32::from_le_bytes(old[8..12].try_into().unwrap());
    put_u32(&mut old, 8, func_off + 8);
    let line_off = u32::from_le_bytes(old[16..20].try_into().unwrap());
    put_u32(&mut old, 16, line_off + 8);
    let ext = BtfExt::parse(&old, &btf).unwrap();
    assert!(ext.core_relos.is_empty());
    assert_eq!(ext.func_info, BtfExt::parse(&good, &btf).unwrap().func_info);
}
