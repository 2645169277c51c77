//! Cross-check with aya-obj 0.3: for every object both accept, the programs, their section
//! kinds, the maps and the linked, relocated instruction streams must agree (map references
//! compared by the map's name: aya puts fds in `imm`, the loader map indices).

mod common;

use std::collections::{HashMap, HashSet};

use aya_obj::ProgramSection as S;
use bpflab_loader::{BPF_F_MMAPABLE, Object, load};
use bpflab_vm::ProgType;
use bpflab_vm::isa::{PseudoSrc, encode_program};

/// The program type aya-obj assigns to a section kind.
fn aya_prog_type(s: &S) -> ProgType {
    match s {
        S::KRetProbe | S::KProbe | S::UProbe { .. } | S::URetProbe { .. } => ProgType::Kprobe,
        S::TracePoint => ProgType::Tracepoint,
        S::SocketFilter => ProgType::SocketFilter,
        S::Xdp { .. } => ProgType::Xdp,
        S::SkMsg => ProgType::SkMsg,
        S::SkSkbStream { .. } => ProgType::SkSkb,
        S::SockOps => ProgType::SockOps,
        S::SchedClassifier => ProgType::SchedCls,
        S::CgroupSkb { .. } => ProgType::CgroupSkb,
        S::CgroupSockAddr { .. } => ProgType::CgroupSockAddr,
        S::CgroupSysctl => ProgType::CgroupSysctl,
        S::CgroupSockopt { .. } => ProgType::CgroupSockopt,
        S::LircMode2 => ProgType::LircMode2,
        S::PerfEvent => ProgType::PerfEvent,
        S::RawTracePoint => ProgType::RawTracepoint,
        S::Lsm { .. } | S::LsmCgroup => ProgType::Lsm,
        S::BtfTracePoint | S::FEntry { .. } | S::FExit { .. } | S::Iter { .. } => ProgType::Tracing,
        S::FlowDissector => ProgType::FlowDissector,
        S::Extension => ProgType::Ext,
        S::SkLookup => ProgType::SkLookup,
        S::SkReuseport { .. } => ProgType::SkReuseport,
        S::CgroupSock { .. } => ProgType::CgroupSock,
        S::CgroupDevice => ProgType::CgroupDevice,
    }
}

/// The loader's map index for each aya map name (aya names global data by section).
fn map_index_by_aya_name(ours: &Object, aya_name: &str) -> Option<usize> {
    ours.maps.iter().position(|m| {
        m.name == aya_name
            || (m.section == aya_name && m.section.starts_with('.') && m.section != ".maps")
    })
}

/// Compares one object; returns false when aya-obj refuses it.
fn cross_check(path: &std::path::Path) -> bool {
    let bytes = std::fs::read(path).unwrap();
    let Ok(mut aya) = aya_obj::Object::parse(&bytes) else { return false };
    let name = path.display().to_string();
    let opts = common::load_options(path);
    let ours =
        load(&bytes, &opts).unwrap_or_else(|e| panic!("{name}: aya parses it, we fail: {e}"));
    // aya-obj 0.3 cannot link kfunc (extern __ksym) calls, and makes no `.kconfig` map for
    // kconfig externs.
    if !ours.kconfig.is_empty()
        || ours.relocations.iter().any(|r| {
            matches!(
                r.kind,
                bpflab_loader::RelocationKind::Kfunc { .. }
                    | bpflab_loader::RelocationKind::Ksym { .. }
            )
        })
    {
        return false;
    }

    // Programs: the same names and kinds.
    let aya_progs: HashSet<&String> = aya.programs.keys().collect();
    let our_progs: HashSet<&String> = ours.collection.programs.iter().map(|p| &p.name).collect();
    assert_eq!(aya_progs, our_progs, "{name}: program names");
    for p in &ours.collection.programs {
        let a = &aya.programs[&p.name];
        assert_eq!(aya_prog_type(&a.section), p.prog_type, "{name}: {} type", p.name);
        if let S::Xdp { frags, attach_type } = &a.section {
            let expected = match attach_type {
                aya_obj::programs::XdpAttachType::Interface => 37,
                aya_obj::programs::XdpAttachType::DevMap => 33,
                aya_obj::programs::XdpAttachType::CpuMap => 35,
            };
            assert_eq!(p.expected_attach_type, Some(expected), "{name}: {} attach", p.name);
            assert_eq!(*frags, p.section.starts_with("xdp.frags"), "{name}: {} frags", p.name);
        }
    }

    // Maps: the same set, with the same type, sizes and entries.
    assert_eq!(aya.maps.len(), ours.collection.maps.len(), "{name}: map count");
    let mut fd_names = HashMap::new();
    let mut aya_fds = Vec::new();
    for (aya_name, m) in &aya.maps {
        let idx = map_index_by_aya_name(&ours, aya_name)
            .unwrap_or_else(|| panic!("{name}: aya map {aya_name} missing"));
        let spec = &ours.collection.maps[idx];
        assert_eq!(m.map_type(), spec.map_type.id(), "{name}: {aya_name} type");
        assert_eq!(m.key_size(), spec.key_size, "{name}: {aya_name} key size");
        assert_eq!(m.value_size(), spec.value_size, "{name}: {aya_name} value size");
        assert_eq!(m.max_entries(), spec.max_entries, "{name}: {aya_name} max_entries");
        assert_eq!(m.map_flags(), spec.flags & !BPF_F_MMAPABLE, "{name}: {aya_name} flags");
        if !m.data().is_empty() {
            assert_eq!(
                Some(m.data()),
                spec.data.as_ref().map(|(_, d)| d.as_slice()),
                "{name}: {aya_name} data"
            );
        }
        match (m.inner(), &spec.inner) {
            (None, None) => {}
            (Some(ai), Some(oi)) => {
                assert_eq!(ai.map_type(), oi.map_type.id(), "{name}: {aya_name} inner type");
                assert_eq!(ai.key_size(), oi.key_size, "{name}: {aya_name} inner key");
                assert_eq!(ai.value_size(), oi.value_size, "{name}: {aya_name} inner value");
                assert_eq!(ai.max_entries(), oi.max_entries, "{name}: {aya_name} inner entries");
            }
            (a, o) => panic!("{name}: {aya_name} inner map: aya {:?} ours {:?}", a.is_some(), o),
        }
        let fd = 1000 + idx as i32;
        fd_names.insert(fd, spec.name.clone());
        aya_fds.push((aya_name.clone(), fd));
    }

    // Instructions: relocate both ways and compare slot by slot.
    if aya.has_btf_relocations() {
        let target = aya_obj::btf::Btf::from_sys_fs().expect("vmlinux BTF for aya");
        aya.relocate_btf(&target).unwrap_or_else(|e| panic!("{name}: aya CO-RE: {e}"));
    }
    let text: HashSet<usize> = aya.functions.keys().map(|(s, _)| *s).collect();
    let maps: Vec<(String, i32, aya_obj::Map)> =
        aya_fds.iter().map(|(n, fd)| (n.clone(), *fd, aya.maps[n].clone())).collect();
    aya.relocate_maps(maps.iter().map(|(n, fd, m)| (n.as_str(), *fd, m)), &text)
        .unwrap_or_else(|e| panic!("{name}: aya relocate_maps: {e}"));
    aya.relocate_calls(&text).unwrap_or_else(|e| panic!("{name}: aya relocate_calls: {e}"));

    for p in &ours.collection.programs {
        let key = aya.programs[&p.name].function_key();
        let theirs = &aya.functions[&key].instructions;
        let mine = encode_program(&p.insns);
        assert_eq!(mine.len(), theirs.len(), "{name}: {} slot count", p.name);
        let mut i = 0;
        while i < mine.len() {
            let (m, t) = (mine[i], theirs[i]);
            let at = format!("{name}: {} slot {i}", p.name);
            assert_eq!(m.code, t.code, "{at}: code");
            assert_eq!(m.dst, t.dst_reg(), "{at}: dst");
            assert_eq!(m.off, t.off, "{at}: off");
            let map_src = [PseudoSrc::MapIdx.code(), PseudoSrc::MapIdxValue.code()];
            if m.code == 0x18 && map_src.contains(&m.src) {
                let expected_src = if m.src == PseudoSrc::MapIdx.code() { 1 } else { 2 };
                assert_eq!(t.src_reg(), expected_src, "{at}: map reference kind");
                let our_map = &ours.collection.maps[m.imm as usize].name;
                assert_eq!(fd_names.get(&t.imm), Some(our_map), "{at}: map reference");
                assert_eq!(mine[i + 1].imm, theirs[i + 1].imm, "{at}: map value offset");
                i += 2;
                continue;
            }
            assert_eq!(m.src, t.src_reg(), "{at}: src");
            assert_eq!(m.imm, t.imm, "{at}: imm");
            i += 1;
        }
    }
    true
}

#[test]
fn agrees_with_aya_obj() {
    let mut checked = Vec::new();
    for path in common::cross_check_objects() {
        if path.file_name().is_some_and(|n| n == "core.bpf.o") && !common::have_vmlinux_btf() {
            continue;
        }
        if cross_check(&path) {
            checked.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    // These fixtures use only what aya-obj understands, so they must have been compared.
    for must in ["multi.bpf.o", "maps_aya.bpf.o", "aya_sections.bpf.o"] {
        assert!(checked.iter().any(|c| c == must), "{must} was not cross-checked: {checked:?}");
    }
    if common::have_vmlinux_btf() {
        assert!(checked.iter().any(|c| c == "core.bpf.o"), "core.bpf.o not cross-checked");
    }
}
