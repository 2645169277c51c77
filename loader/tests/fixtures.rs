//! What the loader makes of each C fixture, asserted exactly.

mod common;

use bpflab_btf::{Btf, BtfKind, BtfType};
use bpflab_loader::{
    BPF_F_MMAPABLE, BPF_F_RDONLY_PROG, MapInitValue, POISON_HELPER, RelocationKind, secdef,
};
use bpflab_vm::isa::{CallKind, Insn, PseudoSrc};
use bpflab_vm::spec::{DataSection, Pinning};
use bpflab_vm::{MapType, ProgType, Program};

/// Slot index of each instruction.
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

/// The slots that local calls and function addresses land on.
fn call_targets(p: &Program) -> Vec<usize> {
    p.insns
        .iter()
        .zip(slots(p))
        .filter_map(|(i, at)| match *i {
            Insn::Call { kind: CallKind::Local, imm, .. }
            | Insn::LdImm64 { src: PseudoSrc::Func, imm, .. } => {
                Some((at as i64 + 1 + i64::from(imm)) as usize)
            }
            _ => None,
        })
        .collect()
}

#[test]
fn multi_links_subprograms_and_callbacks() {
    let obj = common::load_fixture("multi.bpf.o");
    assert_eq!(obj.license, "GPL");
    assert_eq!(obj.kernel_version, None);
    assert!(obj.collection.maps.is_empty());
    let names: Vec<_> = obj.collection.programs.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["prog_one", "prog_two", "sock_prog"]);

    let one = &obj.collection.programs[0];
    assert_eq!(
        (one.prog_type, one.expected_attach_type, one.attach_to.as_deref()),
        (ProgType::Xdp, Some(37), None)
    );
    assert_eq!(one.section, "xdp");
    assert_eq!(one.license, "GPL");
    let info = &obj.programs[0];
    assert_eq!((info.section_offset, info.insn_count), (0, 13));
    assert_eq!(info.subprograms, ["loop_cb", "add_twice"]);
    assert_eq!(
        info.func_info,
        [(0, "prog_one".to_owned()), (13, "loop_cb".to_owned()), (18, "add_twice".to_owned())]
    );
    assert_eq!(one.slot_count(), 22);
    // The callback address and the call land on the appended subprograms' first slots.
    assert_eq!(
        one.insns[5],
        Insn::LdImm64 { dst: bpflab_vm::isa::Reg::R2, src: PseudoSrc::Func, imm: 7, next_imm: 0 }
    );
    assert_eq!(call_targets(one), [13, 18]);
    assert!(
        info.line_info
            .iter()
            .any(|(slot, l)| *slot == 0 && l.file.ends_with("multi.bpf.c") && l.line > 0)
    );
    assert!(info.line_info.iter().any(|(slot, l)| *slot >= 13 && l.text.contains("*acc += index")));

    let two = &obj.programs[1];
    assert_eq!((two.section_offset, two.insn_count), (0x68, 8));
    assert_eq!(two.subprograms, ["global_helper", "add_twice"]);
    // prog_two → global_helper (slot 8) → add_twice (slot 11, a pc-relative call in .text).
    assert_eq!(call_targets(&obj.collection.programs[1]), [8, 11]);

    let sock = &obj.collection.programs[2];
    assert_eq!((sock.prog_type, sock.expected_attach_type), (ProgType::SocketFilter, None));
    assert_eq!(obj.programs[2].subprograms, ["add_twice"]);
    assert_eq!(call_targets(sock), [3]);

    let kinds: Vec<_> =
        obj.relocations.iter().map(|r| (r.section.as_str(), r.offset, r.kind.clone())).collect();
    assert_eq!(
        kinds,
        [
            ("xdp", 0x28, RelocationKind::FuncAddr { target: "loop_cb".into() }),
            ("xdp", 0x50, RelocationKind::Call { target: "add_twice".into() }),
            ("xdp", 0x70, RelocationKind::Call { target: "global_helper".into() }),
            ("socket", 0x8, RelocationKind::Call { target: "add_twice".into() }),
        ]
    );
}

#[test]
fn maps_btf_legacy_and_global_data() {
    let obj = common::load_fixture("maps.bpf.o");
    assert_eq!(obj.license, "Dual MIT/GPL");
    assert_eq!(obj.kernel_version, Some(0x060c00));
    let maps = &obj.collection.maps;
    let summary: Vec<_> = maps
        .iter()
        .map(|m| (m.name.as_str(), m.map_type, m.key_size, m.value_size, m.max_entries, m.flags))
        .collect();
    assert_eq!(
        summary,
        [
            ("jumps", MapType::ProgArray, 4, 4, 4, 0),
            ("hash_map", MapType::Hash, 8, 8, 128, 1),
            ("outer", MapType::ArrayOfMaps, 4, 4, 2, 0),
            ("events", MapType::Ringbuf, 0, 0, 4096, 0),
            ("percpu", MapType::PercpuArray, 4, 24, 4, 0),
            ("pinned_lru", MapType::LruHash, 4, 8, 16, 0),
            ("legacy_counts", MapType::Array, 4, 8, 32, 0),
            ("maps.data", MapType::Array, 4, 12, 1, BPF_F_MMAPABLE),
            ("maps.rodata", MapType::Array, 4, 16, 1, BPF_F_MMAPABLE | BPF_F_RDONLY_PROG),
            ("maps.bss", MapType::Array, 4, 24, 1, BPF_F_MMAPABLE),
        ]
    );
    assert_eq!(maps[5].pinning, Pinning::ByName);
    assert_eq!(maps[1].pinning, Pinning::None);

    // BTF ids of key and value: struct key_t and __u64.
    let btf = obj.btf.as_ref().unwrap();
    let key = maps[1].btf_key_type_id.unwrap();
    assert_eq!(btf.type_name(key).unwrap(), "key_t");
    assert_eq!(btf.size_of(maps[1].btf_value_type_id.unwrap()).unwrap(), 8);
    assert_eq!(maps[4].btf_key_type_id, None);
    let (data_sec, _) = btf.datasec(".data").unwrap();
    assert_eq!(maps[7].btf_value_type_id, Some(data_sec));

    let inner = maps[2].inner.as_deref().unwrap();
    assert_eq!(
        (inner.name.as_str(), inner.map_type, inner.key_size, inner.value_size, inner.max_entries),
        ("outer.inner", MapType::Array, 4, 4, 8)
    );
    assert_eq!(
        obj.maps[0].initial_values,
        [MapInitValue { slot: 1, target: "tail".into(), is_program: true }]
    );

    let mut data = 7u64.to_le_bytes().to_vec();
    data.extend(9u32.to_le_bytes());
    assert_eq!(maps[7].data, Some((DataSection::Data, data)));
    let mut rodata = 3u32.to_le_bytes().to_vec();
    rodata.extend([0; 4]);
    rodata.extend(0x1122334455667788u64.to_le_bytes());
    assert_eq!(maps[8].data, Some((DataSection::Rodata, rodata)));
    assert_eq!(maps[9].data, Some((DataSection::Bss, vec![0; 24])));
    assert_eq!((obj.maps[8].section.as_str(), obj.maps[6].section.as_str()), (".rodata", "maps"));

    // Every map reference of use_maps, by name, and global data offsets.
    let p = obj.collection.program("use_maps").unwrap();
    let refs: Vec<_> = p
        .insns
        .iter()
        .filter_map(|i| match *i {
            Insn::LdImm64 { src: PseudoSrc::MapIdx, imm, next_imm, .. } => {
                Some((maps[imm as usize].name.as_str(), None, next_imm))
            }
            Insn::LdImm64 { src: PseudoSrc::MapIdxValue, imm, next_imm, .. } => {
                Some((maps[imm as usize].name.as_str(), Some(next_imm), 0))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        refs,
        [
            ("hash_map", None, 0),
            ("maps.rodata", Some(8), 0),
            ("legacy_counts", None, 0),
            ("outer", None, 0),
            ("maps.rodata", Some(0), 0),
            ("maps.bss", Some(0), 0),
            ("maps.data", Some(8), 0),
            ("maps.bss", Some(16), 0),
            ("maps.data", Some(0), 0),
            ("events", None, 0),
            ("percpu", None, 0),
            ("pinned_lru", None, 0),
            ("jumps", None, 0),
        ]
    );
    let init: Vec<_> = obj.relocations.iter().filter(|r| r.section == ".maps").collect();
    assert_eq!(init.len(), 1);
    assert_eq!(
        (init[0].offset, &init[0].kind),
        (0x20, &RelocationKind::MapInit { map: 0, slot: 1 })
    );
}

#[test]
fn object_name_prefixes_data_maps() {
    let bytes = common::bytes("maps.bpf.o");
    let opts = bpflab_loader::LoadOptions {
        object_name: "a_long_object_name".into(),
        ..Default::default()
    };
    let obj = bpflab_loader::load(&bytes, &opts).unwrap();
    let names: Vec<_> = obj.collection.maps[7..].iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["a_long_o.data", "a_long_o.rodata", "a_long_o.bss"]);
    let default = bpflab_loader::load(&bytes, &Default::default()).unwrap();
    assert_eq!(default.collection.maps[7].name, "obj.data");
}

/// The byte offset of `member` in vmlinux's `strct`.
fn vmlinux_offset(btf: &Btf, strct: &str, member: &str) -> u64 {
    let id = btf.find_by_name(strct, BtfKind::Struct).unwrap();
    let BtfType::Struct(s) = btf.type_by_id(id).unwrap() else { panic!() };
    let m = s.members.iter().find(|m| btf.string_at(m.name_off).unwrap() == member).unwrap();
    u64::from(m.bit_offset / 8)
}

#[test]
fn core_relocations_against_vmlinux() {
    if !common::have_vmlinux_btf() {
        eprintln!("no /sys/kernel/btf/vmlinux; skipping");
        return;
    }
    let vmlinux = Btf::from_vmlinux().unwrap();
    let pid = vmlinux_offset(&vmlinux, "task_struct", "pid");
    let tgid = vmlinux_offset(&vmlinux, "task_struct", "tgid");
    let parent = vmlinux_offset(&vmlinux, "task_struct", "real_parent");
    let len = vmlinux_offset(&vmlinux, "sk_buff", "len");

    let obj = common::load_fixture("core.bpf.o");
    let core: Vec<_> = obj
        .core_relocations
        .iter()
        .map(|c| {
            (
                c.function.as_str(),
                c.offset,
                c.kind.as_str(),
                c.access.as_str(),
                c.target_value,
                c.poisoned,
            )
        })
        .collect();
    assert_eq!(core.len(), 16);
    assert_eq!(core[0], ("core_kprobe", 16, "byte_off", "0:0", pid, false));
    assert_eq!(core[1], ("core_kprobe", 72, "byte_off", "0:2", parent, false));
    assert_eq!(core[2], ("core_kprobe", 136, "byte_off", "0:1", tgid, false));
    assert_eq!(core[3], ("core_kprobe", 192, "field_exists", "0:3", 0, false));
    assert_eq!(core[4], ("core_kprobe", 216, "byte_sz", "0:2", 8, false));
    assert!(core[6].5, "missing field poisoned: {:?}", core[6]);
    assert_eq!(core[15].2, "signed");
    assert!(core.contains(&("core_bitfield", 144, "byte_off", "0:0", len, false)));

    // Patched instructions: `r1 = <pid offset>` and the existence check now 0.
    let kp = obj.collection.program("core_kprobe").unwrap();
    assert!(
        matches!(kp.insns[2], Insn::Alu { src: bpflab_vm::isa::Operand::Imm(v), .. } if v as u64 == pid)
    );
    assert!(matches!(kp.insns[24], Insn::Alu { src: bpflab_vm::isa::Operand::Imm(0), .. }));
    // core_direct: the pid load's offset, and the missing field poisoned into a bad call.
    let direct = obj.collection.program("core_direct").unwrap();
    assert!(matches!(direct.insns[1], Insn::Load { off, .. } if off as u64 == pid));
    assert_eq!(direct.insns[3], Insn::Call { kind: CallKind::Helper, imm: POISON_HELPER, off: 0 });
    assert_eq!(POISON_HELPER, 195896080);
}

#[test]
fn kfunc_calls_resolve_to_vmlinux_btf_ids() {
    if !common::have_vmlinux_btf() {
        return;
    }
    let vmlinux = Btf::from_vmlinux().unwrap();
    let acquire = vmlinux.find_by_name("bpf_task_acquire", BtfKind::Func).unwrap();
    let obj = common::load_fixture("kfunc.bpf.o");
    let p = &obj.collection.programs[0];
    assert_eq!(p.insns[1], Insn::Call { kind: CallKind::Kfunc, imm: acquire as i32, off: 0 });
    let none = bpflab_loader::LoadOptions {
        target_btf: bpflab_loader::TargetBtf::None,
        ..Default::default()
    };
    assert!(matches!(
        bpflab_loader::load(&common::bytes("kfunc.bpf.o"), &none),
        Err(bpflab_loader::LoadError::UnresolvedExtern { ref name, .. }) if name == "bpf_task_acquire"
    ));
}

/// The address `/proc/kallsyms` gives a symbol (0 when hidden from this user).
fn kallsyms(name: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/kallsyms").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(2) == Some(&name)).then(|| u64::from_str_radix(f[0], 16).ok()).flatten()
    })
}

#[test]
fn ksyms_resolve_by_btf_id_address_or_absence() {
    let Some(put) = kallsyms("bpf_prog_put").filter(|&a| a != 0) else {
        println!("SKIP: ksyms: kernel lacks visible /proc/kallsyms addresses (not root?)");
        return;
    };
    if !common::have_vmlinux_btf() {
        println!("SKIP: ksyms: kernel lacks BTF (/sys/kernel/btf/vmlinux)");
        return;
    }
    let vmlinux = Btf::from_vmlinux().unwrap();
    let active = vmlinux.find_by_name("bpf_prog_active", BtfKind::Var).unwrap();
    let obj = common::load_fixture("ksyms.bpf.o");
    let ksyms: Vec<(&str, bpflab_loader::KsymValue)> = obj
        .relocations
        .iter()
        .filter_map(|r| match r.kind {
            RelocationKind::Ksym { value } => Some((r.symbol.as_str(), value)),
            _ => None,
        })
        .collect();
    use bpflab_loader::KsymValue::{Address, BtfId, Missing};
    assert_eq!(
        ksyms,
        [
            ("bpf_prog_active", BtfId(active)),
            ("bpflab_no_such_var", Missing),
            ("bpf_prog_put", Address(put)),
        ]
    );
    let p = &obj.collection.programs[0];
    let lds: Vec<Insn> =
        p.insns.iter().filter(|i| matches!(i, Insn::LdImm64 { .. })).copied().collect();
    let (lo, hi) = (put as u32 as i32, (put >> 32) as u32 as i32);
    assert!(
        lds.iter().any(|i| matches!(i,
        Insn::LdImm64 { src: PseudoSrc::BtfId, imm, next_imm: 0, .. } if *imm == active as i32)),
        "{lds:?}"
    );
    assert!(
        lds.iter().any(|i| matches!(i,
        Insn::LdImm64 { src: PseudoSrc::Imm, imm, next_imm, .. } if *imm == lo && *next_imm == hi)),
        "{lds:?}"
    );
    assert!(
        lds.iter()
            .any(|i| matches!(i, Insn::LdImm64 { src: PseudoSrc::Imm, imm: 0, next_imm: 0, .. })),
        "{lds:?}"
    );
    // Without a target BTF, the typed ksym cannot resolve (the weak one still can).
    let none = bpflab_loader::LoadOptions {
        target_btf: bpflab_loader::TargetBtf::None,
        ..Default::default()
    };
    match bpflab_loader::load(&common::bytes("ksyms.bpf.o"), &none) {
        Err(bpflab_loader::LoadError::UnresolvedExtern { name, reason, .. }) => {
            assert_eq!(
                (name.as_str(), reason.as_str()),
                ("bpf_prog_active", "no target BTF was given")
            );
        }
        other => panic!("expected UnresolvedExtern, got {other:?}"),
    }
}

#[test]
fn every_libbpf_section_name() {
    let obj = common::load_no_target("sections.bpf.o");
    assert_eq!(obj.collection.programs.len(), 143);
    // Every table entry is exercised by the fixture.
    for def in secdef::SECTION_DEFS {
        assert!(
            obj.collection.programs.iter().any(|p| p.section == def.pattern),
            "no program in {}",
            def.pattern
        );
    }
    let expect = [
        ("socket", ProgType::SocketFilter, None, None),
        ("sk_reuseport/migrate", ProgType::SkReuseport, Some(40), None),
        ("kprobe/do_nanosleep", ProgType::Kprobe, None, Some("do_nanosleep")),
        ("uretprobe.s//bin/sh:main", ProgType::Kprobe, None, Some("/bin/sh:main")),
        ("kprobe.multi/do_nanosleep", ProgType::Kprobe, Some(42), Some("do_nanosleep")),
        ("uprobe.multi.s", ProgType::Kprobe, Some(48), None),
        ("ksyscall/target_fn", ProgType::Kprobe, None, Some("target_fn")),
        ("usdt", ProgType::Kprobe, None, None),
        ("tc/ingress", ProgType::SchedCls, Some(46), None),
        ("tcx/egress", ProgType::SchedCls, Some(47), None),
        ("tc", ProgType::SchedCls, None, None),
        ("classifier", ProgType::SchedCls, None, None),
        ("action", ProgType::SchedAct, None, None),
        ("netkit/peer", ProgType::SchedCls, Some(55), None),
        (
            "tp/syscalls/sys_enter_openat",
            ProgType::Tracepoint,
            None,
            Some("syscalls/sys_enter_openat"),
        ),
        ("raw_tp.w/target_fn", ProgType::RawTracepointWritable, None, Some("target_fn")),
        ("tp_btf/target_fn", ProgType::Tracing, Some(23), Some("target_fn")),
        ("fmod_ret.s/target_fn", ProgType::Tracing, Some(26), Some("target_fn")),
        ("freplace/target_fn", ProgType::Ext, None, Some("target_fn")),
        ("lsm_cgroup/target_fn", ProgType::Lsm, Some(43), Some("target_fn")),
        ("iter.s/target_fn", ProgType::Tracing, Some(28), Some("target_fn")),
        ("syscall", ProgType::Syscall, None, None),
        ("xdp.frags/cpumap", ProgType::Xdp, Some(35), None),
        ("xdp", ProgType::Xdp, Some(37), None),
        ("lwt_seg6local", ProgType::LwtSeg6local, None, None),
        ("sockops", ProgType::SockOps, Some(3), None),
        ("sk_skb/verdict", ProgType::SkSkb, Some(38), None),
        ("sk_skb", ProgType::SkSkb, None, None),
        ("flow_dissector", ProgType::FlowDissector, Some(17), None),
        ("cgroup_skb/ingress", ProgType::CgroupSkb, Some(0), None),
        ("cgroup/skb", ProgType::CgroupSkb, None, None),
        ("cgroup/sock", ProgType::CgroupSock, Some(2), None),
        ("cgroup/connect_unix", ProgType::CgroupSockAddr, Some(49), None),
        ("cgroup/getsockname_unix", ProgType::CgroupSockAddr, Some(53), None),
        ("cgroup/recvmsg6", ProgType::CgroupSockAddr, Some(20), None),
        ("cgroup/setsockopt", ProgType::CgroupSockopt, Some(22), None),
        ("cgroup/dev", ProgType::CgroupDevice, Some(6), None),
        ("struct_ops.s/target_fn", ProgType::StructOps, None, Some("target_fn")),
        ("sk_lookup", ProgType::SkLookup, Some(36), None),
        ("netfilter", ProgType::Netfilter, Some(45), None),
    ];
    for (section, prog_type, attach, to) in expect {
        let p = obj
            .collection
            .programs
            .iter()
            .find(|p| p.section == section)
            .unwrap_or_else(|| panic!("no program in {section}"));
        assert_eq!(
            (p.prog_type, p.expected_attach_type, p.attach_to.as_deref()),
            (prog_type, attach, to),
            "{section}"
        );
    }
}

#[test]
fn string_literals_and_custom_data_sections() {
    let obj = common::load_fixture("strings.bpf.o");
    let maps: Vec<_> = obj
        .collection
        .maps
        .iter()
        .map(|m| (m.name.as_str(), m.value_size, m.flags, m.data.as_ref().map(|d| d.0)))
        .collect();
    assert_eq!(
        maps,
        [
            (".data.custom", 4, BPF_F_MMAPABLE, Some(DataSection::Data)),
            (".rodata.limits", 4, BPF_F_MMAPABLE | BPF_F_RDONLY_PROG, Some(DataSection::Rodata)),
            (".rodata.str1.1", 10, BPF_F_RDONLY_PROG, Some(DataSection::Rodata)),
        ]
    );
    assert_eq!(obj.collection.maps[2].data.as_ref().unwrap().1, b"hello %d\n\0");
    let p = &obj.collection.programs[0];
    assert!(matches!(
        p.insns[2],
        Insn::LdImm64 { src: PseudoSrc::MapIdxValue, imm: 2, next_imm: 0, .. }
    ));
}

#[test]
fn map_sizes_set_max_entries_like_libbpf() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../programs/tests/events.bpf.o");
    let bytes = std::fs::read(&path).unwrap();
    let mut opts = bpflab_loader::LoadOptions::for_path(&path);
    let as_is = bpflab_loader::load(&bytes, &opts).unwrap();
    let max = |o: &bpflab_loader::Object, name: &str| {
        o.collection.maps[o.collection.map_index(name).unwrap()].max_entries
    };
    assert_eq!((max(&as_is, "rb"), max(&as_is, "perf_events")), (4096, 0));
    // Ring buffers round up to a power-of-two number of pages; other maps take the size.
    opts.map_sizes.insert("rb".into(), 5000);
    opts.map_sizes.insert("perf_events".into(), 3);
    let sized = bpflab_loader::load(&bytes, &opts).unwrap();
    assert_eq!((max(&sized, "rb"), max(&sized, "perf_events")), (8192, 3));
    opts.map_sizes.insert("rb".into(), 0);
    match bpflab_loader::load(&bytes, &opts) {
        Err(bpflab_loader::LoadError::MapNeedsSize { name, map_type }) => {
            assert_eq!((name.as_str(), map_type), ("rb", "ringbuf"));
        }
        other => panic!("expected MapNeedsSize, got {other:?}"),
    }
    opts.open_only = true;
    assert_eq!(max(&bpflab_loader::load(&bytes, &opts).unwrap(), "rb"), 0);
}

#[test]
fn question_mark_sections_type_like_libbpf_with_autoload_off() {
    let obj = common::load_no_target("autoload.bpf.o");
    let got: Vec<(&str, &str, ProgType, Option<u32>)> = obj
        .collection
        .programs
        .iter()
        .map(|p| (p.name.as_str(), p.section.as_str(), p.prog_type, p.expected_attach_type))
        .collect();
    assert_eq!(
        got,
        [
            ("off_by_default", "xdp", ProgType::Xdp, Some(secdef::attach::XDP)),
            ("tc_off", "tc/ingress", ProgType::SchedCls, Some(secdef::attach::TCX_INGRESS)),
            ("on", "xdp", ProgType::Xdp, Some(secdef::attach::XDP)),
        ]
    );
    let info: Vec<(&str, bool, bool)> =
        obj.programs.iter().map(|p| (p.section.as_str(), p.autoload, p.type_known)).collect();
    assert_eq!(info, [("?xdp", false, true), ("?tc/ingress", false, true), ("xdp", true, true)]);
}

/// Ring buffer sizes in an object are rounded up to a power-of-two number of pages, as
/// libbpf does when it reads map definitions: the kernel refuses `max_entries 2` (EINVAL),
/// libbpf creates a one-page ring buffer (the kernel selftest `user_ringbuf_fail` relies on
/// it).
#[test]
fn ring_buffer_sizes_round_up_to_pages_like_libbpf() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../verifier/corpus/selftests/obj/user_ringbuf_fail.bpf.o"
    );
    let bytes = std::fs::read(path).unwrap();
    let obj = bpflab_loader::load(&bytes, &Default::default()).unwrap();
    let size = |name: &str| {
        obj.collection.maps.iter().find(|m| m.name == name).map(|m| (m.map_type, m.max_entries))
    };
    assert_eq!(size("ringbuf"), Some((MapType::Ringbuf, 4096)));
    assert_eq!(size("user_ringbuf"), Some((MapType::UserRingbuf, 4096)));
}
