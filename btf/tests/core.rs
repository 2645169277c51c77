//! CO-RE resolution of the fixture's relocations against the running kernel (checked with
//! bpftool's BTF dump and, where the kernel allows, libbpf's own relocation log) and against
//! the target fixture (another layout, checked with bpftool's dump of that object).

mod common;

use std::collections::HashMap;
use std::process::Command;

use CoreReloKind::*;
use bpflab_btf::core::{POISON_IMM, patch_insn, resolve};
use bpflab_btf::{Btf, BtfExt, BtfKind, CoreError, CoreRelo, CoreReloKind, CoreResult};
use common::{
    RawType, bpftool_raw, elf_section, fixture, load_obj, parse_raw, raw_by_name, raw_field,
    vmlinux, vmlinux_raw,
};

/// All relocations of the core fixture as (section, index, relo).
fn all_relos(ext: &BtfExt) -> Vec<(String, usize, CoreRelo)> {
    ext.core_relos
        .iter()
        .flat_map(|s| s.records.iter().enumerate().map(|(i, r)| (s.section.clone(), i, r.clone())))
        .collect()
}

/// Resolves every relocation matching kind/root type/access (at least one must) and returns
/// the common result.
fn res(
    local: &Btf,
    ext: &BtfExt,
    target: &Btf,
    kind: CoreReloKind,
    root: &str,
    access: &str,
) -> CoreResult {
    let mut out: Option<CoreResult> = None;
    for (_, _, r) in all_relos(ext) {
        if r.kind == kind && local.type_name(r.type_id).unwrap() == root && r.access_str == access {
            let got = resolve(local, target, &r).unwrap_or_else(|e| panic!("{root} {access}: {e}"));
            if let Some(prev) = &out {
                assert_eq!(prev.target_value, got.target_value);
                assert_eq!(prev.poison, got.poison);
            }
            out = Some(got);
        }
    }
    out.unwrap_or_else(|| panic!("no {kind} relocation on {root} {access}"))
}

fn val(r: CoreResult) -> u64 {
    assert!(!r.poison, "unexpected poison: {r:?}");
    r.target_value
}

/// Byte offset of a (possibly nested anonymous) field per bpftool.
fn raw_off(raw: &[RawType], strukt: &str, field: &str) -> u64 {
    let id = raw_by_name(raw, "STRUCT", strukt).id;
    raw_field(raw, id, field).unwrap_or_else(|| panic!("{strukt}.{field}")).0 / 8
}

#[test]
fn fields_against_vmlinux() {
    let (local, ext) = load_obj("core.bpf.o");
    let k = vmlinux();
    let raw = parse_raw(vmlinux_raw());
    let r = |kind, root, access| res(&local, &ext, k, kind, root, access);

    let task_size = raw_by_name(&raw, "STRUCT", "task_struct").field("size").unwrap();
    let pid = raw_off(&raw, "task_struct", "pid");
    let comm = raw_off(&raw, "task_struct", "comm");
    assert_eq!(val(r(FieldByteOffset, "task_struct", "0:0")), pid);
    assert_eq!(r(FieldByteOffset, "task_struct", "0:0").local_value, 0);
    assert_eq!(val(r(FieldByteOffset, "task_struct", "0:1")), raw_off(&raw, "task_struct", "tgid"));
    assert_eq!(val(r(FieldByteOffset, "task_struct", "0:2:2")), comm + 2);
    assert_eq!(r(FieldByteOffset, "task_struct", "0:2:2").local_value, 8 + 2);
    assert_eq!(
        val(r(FieldByteOffset, "task_struct", "0:3")),
        raw_off(&raw, "task_struct", "real_parent")
    );
    assert_eq!(val(r(FieldByteOffset, "task_struct", "1:0")), task_size + pid);
    assert_eq!(val(r(FieldByteSize, "task_struct", "0:2")), 16);
    assert_eq!(val(r(FieldExists, "task_struct", "0:4")), 1);
    // `state` became `__state` in 5.14: the flavour has no match on this kernel.
    let old_exists = r(FieldExists, "task_struct___old", "0:0");
    assert_eq!((old_exists.local_value, old_exists.target_value, old_exists.poison), (1, 0, false));
    let old_off = r(FieldByteOffset, "task_struct___old", "0:0");
    assert!(old_off.poison);
    assert_eq!(old_off.target_type_id, None);

    // sk_buff: tstamp, csum_offset and dev sit inside anonymous unions/structs in the kernel.
    // Local member indices: tstamp 0, csum_offset 1, cloned..pp_recycle 2..8, data_len 9,
    // len 10, dev 11.
    assert_eq!(val(r(FieldByteOffset, "sk_buff", "0:10")), raw_off(&raw, "sk_buff", "len"));
    assert_eq!(val(r(FieldByteOffset, "sk_buff", "0:9")), raw_off(&raw, "sk_buff", "data_len"));
    assert_eq!(val(r(FieldByteOffset, "sk_buff", "0:0")), raw_off(&raw, "sk_buff", "tstamp"));
    assert_eq!(val(r(FieldByteOffset, "sk_buff", "0:1")), raw_off(&raw, "sk_buff", "csum_offset"));
    assert_eq!(val(r(FieldByteOffset, "sk_buff", "0:11")), raw_off(&raw, "sk_buff", "dev"));
    assert_eq!(val(r(FieldByteSize, "sk_buff", "0:0")), 8, "tstamp is a 64-bit ktime_t");
    let len = r(FieldByteOffset, "sk_buff", "0:10");
    assert_eq!((len.local_size, len.target_size, len.fail_memsz_adjust), (4, 4, false));

    // Bitfields: smallest covering load, and the shifts to extract the value from a u64.
    let skb_id = raw_by_name(&raw, "STRUCT", "sk_buff").id;
    for (access, field) in [("0:4", "fclone"), ("0:8", "pp_recycle"), ("0:5", "peeked")] {
        let (bit_off, bit_sz) = raw_field(&raw, skb_id, field).unwrap();
        assert!(bit_sz > 0, "{field} is a bitfield in the kernel");
        // The kernel's bitfields are __u8 and do not straddle bytes.
        let byte_off = bit_off / 8;
        assert_eq!(val(r(FieldByteOffset, "sk_buff", access)), byte_off, "{field}");
        assert_eq!(val(r(FieldByteSize, "sk_buff", access)), 1, "{field}");
        assert_eq!(
            val(r(FieldLshiftU64, "sk_buff", access)),
            64 - (bit_off + bit_sz - byte_off * 8)
        );
        assert_eq!(val(r(FieldRshiftU64, "sk_buff", access)), 64 - bit_sz, "{field}");
        assert_eq!(val(r(FieldSigned, "sk_buff", access)), 0, "{field}");
        assert!(!r(FieldLshiftU64, "sk_buff", access).validate, "bitfield shifts aren't validated");
    }
}

#[test]
fn types_and_enums_against_vmlinux() {
    let (local, ext) = load_obj("core.bpf.o");
    let k = vmlinux();
    let raw = parse_raw(vmlinux_raw());
    let r = |kind, root, access| res(&local, &ext, k, kind, root, access);
    let task = raw_by_name(&raw, "STRUCT", "task_struct");

    assert_eq!(val(r(TypeExists, "task_struct", "0")), 1);
    assert_eq!(val(r(TypeExists, "bpflab_no_such_type", "0")), 0);
    assert_eq!(val(r(TypeSize, "task_struct", "0")), task.field("size").unwrap());
    assert_eq!(r(TypeSize, "task_struct", "0").local_value, 40);
    let tid = r(TypeIdTarget, "task_struct", "0");
    assert_eq!(tid.target_value, u64::from(task.id));
    assert!(!tid.validate);
    let local_task = local.find_by_name("task_struct", BtfKind::Struct).unwrap();
    let lid = r(TypeIdLocal, "task_struct", "0");
    assert_eq!((lid.local_value, lid.target_value), (u64::from(local_task), u64::from(local_task)));
    assert_eq!(val(r(TypeMatches, "list_head", "0")), 1);
    assert_eq!(val(r(TypeMatches, "list_head___bad", "0")), 0);
    assert_eq!(
        val(r(TypeSize, "sk_buff", "0")),
        raw_by_name(&raw, "STRUCT", "sk_buff").field("size").unwrap()
    );

    let pid_type = raw_by_name(&raw, "ENUM", "pid_type");
    let sid = pid_type.lines.iter().find(|l| l.contains("'PIDTYPE_SID'")).unwrap();
    assert_eq!(val(r(EnumvalExists, "pid_type", "1")), 1);
    let v = r(EnumvalValue, "pid_type", "3");
    assert_eq!((v.local_value, v.target_value), (30, common::find_key(sid, "val").unwrap()));
    assert_eq!(val(r(EnumvalExists, "pid_type___gone", "0")), 0);
    assert!(r(EnumvalValue, "pid_type___gone", "0").poison);
    let user = r(EnumvalValue, "perf_callchain_context", "2");
    assert_eq!(user.local_value, 0xffff_ffff_ffff_fe00);
    assert_eq!(user.target_value, (-512i64) as u64, "enum64 in the kernel");
    assert_eq!(val(r(EnumvalExists, "perf_callchain_context", "1")), 1);

    // Flavour-only structs of the target fixture don't exist in the kernel.
    assert!(r(FieldByteOffset, "bpflab_amb", "0:0").poison);
    assert!(r(FieldByteOffset, "bpflab_same", "0:0").poison);
}

#[test]
fn against_target_fixture_layout() {
    let (local, ext) = load_obj("core.bpf.o");
    let (target, _) = load_obj("target.bpf.o");
    let raw = parse_raw(&bpftool_raw(fixture("target.bpf.o").to_str().unwrap()));
    let r = |kind, root, access| res(&local, &ext, &target, kind, root, access);

    // The numbers in target.bpf.c's comments, confirmed by bpftool's dump of the object.
    assert_eq!(val(r(FieldByteOffset, "task_struct", "0:0")), 20);
    assert_eq!(raw_off(&raw, "task_struct", "pid"), 20);
    assert_eq!(val(r(FieldByteOffset, "task_struct", "0:1")), 16);
    assert_eq!(val(r(FieldByteOffset, "task_struct", "0:2:2")), 2);
    assert_eq!(val(r(FieldByteOffset, "task_struct", "0:3")), 24);
    assert_eq!(val(r(FieldByteOffset, "task_struct", "1:0")), 32 + 20);
    assert_eq!(val(r(FieldByteSize, "task_struct", "0:2")), 8);
    assert_eq!(val(r(FieldExists, "task_struct", "0:4")), 0, "no __state here");
    assert!(r(FieldByteOffset, "task_struct___old", "0:0").target_value == 8);
    assert_eq!(val(r(FieldExists, "task_struct___old", "0:0")), 1);

    assert_eq!(val(r(FieldByteOffset, "sk_buff", "0:10")), 56);
    assert_eq!(raw_off(&raw, "sk_buff", "len"), 56);
    let len = r(FieldByteOffset, "sk_buff", "0:10");
    assert_eq!((len.local_size, len.target_size, len.fail_memsz_adjust), (4, 8, false));
    assert!(r(FieldByteOffset, "sk_buff", "0:9").poison, "no data_len in the target");
    assert_eq!(val(r(FieldByteOffset, "sk_buff", "0:0")), 8, "tstamp in an anonymous union");
    assert_eq!(raw_off(&raw, "sk_buff", "tstamp"), 8);
    assert_eq!(val(r(FieldByteOffset, "sk_buff", "0:11")), 8, "dev in anon struct in anon union");
    assert_eq!(val(r(FieldByteOffset, "sk_buff", "0:1")), 50);
    assert_eq!(val(r(FieldByteSize, "sk_buff", "0:0")), 8);
    // Bitfields in a u32 container at bits 416..: fclone 421+3, pp_recycle 424+1, peeked
    // (signed int) 425+3.
    let skb_id = raw_by_name(&raw, "STRUCT", "sk_buff").id;
    assert_eq!(raw_field(&raw, skb_id, "fclone"), Some((421, 3)));
    assert_eq!(raw_field(&raw, skb_id, "peeked"), Some((425, 3)));
    for (access, lshift, rshift, signed) in
        [("0:4", 56, 61, 0), ("0:8", 55, 63, 0), ("0:5", 52, 61, 1)]
    {
        assert_eq!(val(r(FieldByteOffset, "sk_buff", access)), 52, "{access}");
        assert_eq!(val(r(FieldByteSize, "sk_buff", access)), 4, "{access}");
        assert_eq!(val(r(FieldLshiftU64, "sk_buff", access)), lshift, "{access}");
        assert_eq!(val(r(FieldRshiftU64, "sk_buff", access)), rshift, "{access}");
        assert_eq!(val(r(FieldSigned, "sk_buff", access)), signed, "{access}");
    }

    assert_eq!(val(r(TypeExists, "task_struct", "0")), 1);
    assert_eq!(val(r(TypeSize, "task_struct", "0")), 32);
    assert_eq!(
        val(r(TypeIdTarget, "task_struct", "0")),
        u64::from(raw_by_name(&raw, "STRUCT", "task_struct").id)
    );
    assert_eq!(val(r(TypeMatches, "list_head", "0")), 1);
    assert_eq!(val(r(TypeMatches, "list_head___bad", "0")), 0);
    assert_eq!(val(r(TypeSize, "sk_buff", "0")), 64);
    assert_eq!(val(r(TypeExists, "bpflab_no_such_type", "0")), 0);

    assert_eq!(val(r(EnumvalExists, "pid_type", "1")), 0, "no PIDTYPE_TGID");
    assert_eq!(val(r(EnumvalValue, "pid_type", "3")), 7);
    // A signed 32-bit enum in the target is sign-extended, as libbpf does.
    assert_eq!(val(r(EnumvalValue, "perf_callchain_context", "2")), 0xffff_ffff_ffff_fe00);
    assert_eq!(val(r(EnumvalExists, "perf_callchain_context", "1")), 1);

    // Two flavours that agree are fine; two that disagree are an error.
    let same = r(FieldByteOffset, "bpflab_same", "0:0");
    assert_eq!(same.target_value, 0);
    assert_eq!(same.target_type_id, Some(raw_by_name(&raw, "STRUCT", "bpflab_same___a").id));
    let amb = all_relos(&ext)
        .into_iter()
        .find(|(_, _, r)| local.type_name(r.type_id).unwrap() == "bpflab_amb")
        .unwrap()
        .2;
    match resolve(&local, &target, &amb) {
        Err(CoreError::Ambiguous { what: "field offset", first: 0, other: 64, .. }) => {}
        other => panic!("expected ambiguity, got {other:?}"),
    }
}

/// Patches every relocated instruction of the core fixture; with `validate` this checks our
/// local values against what clang put in the instructions. Returns (section, index) ->
/// patched value or None if poisoned.
fn patch_all(local: &Btf, ext: &BtfExt, target: &Btf) -> HashMap<(String, usize), Option<u64>> {
    let mut out = HashMap::new();
    for sec in &ext.core_relos {
        let mut code = elf_section(&fixture("core.bpf.o"), &sec.section).unwrap();
        for (i, relo) in sec.records.iter().enumerate() {
            let Ok(res) = resolve(local, target, relo) else { continue };
            patch_insn(&mut code, relo, &res)
                .unwrap_or_else(|e| panic!("{} #{i}: {e} ({res:?})", sec.section));
            let at = relo.insn_off as usize;
            let insn = &code[at..at + 8];
            let imm = i32::from_le_bytes(insn[4..8].try_into().unwrap());
            let patched = if insn[0] == 0x85 && imm == POISON_IMM {
                assert!(res.poison || res.fail_memsz_adjust);
                None
            } else if insn[0] == 0x18 {
                let hi = i32::from_le_bytes(code[at + 12..at + 16].try_into().unwrap());
                Some(u64::from(imm as u32) | (u64::from(hi as u32) << 32))
            } else if matches!(insn[0] & 7, 1..=3) {
                Some(i16::from_le_bytes([insn[2], insn[3]]) as u64)
            } else {
                Some(imm as u32 as u64)
            };
            if let Some(v) = patched {
                assert_eq!(v & 0xffff_ffff, res.target_value & 0xffff_ffff, "{} #{i}", sec.section);
            }
            out.insert((sec.section.clone(), i), patched);
        }
    }
    out
}

#[test]
fn patching_validates_local_values() {
    let (local, ext) = load_obj("core.bpf.o");
    let (target, _) = load_obj("target.bpf.o");
    let n = patch_all(&local, &ext, vmlinux()).len();
    assert_eq!(n, 51);
    // Against the target fixture the ambiguous relocation is the only one left out.
    assert_eq!(patch_all(&local, &ext, &target).len(), 50);
}

/// libbpf's debug log of relocating the fixture against the kernel, parsed into
/// (section, index) -> (local type id, spec text, patched value or None if poisoned).
/// (section, relocation index) -> (local type id, libbpf's spec text, patched value).
type LibbpfLog = HashMap<(String, usize), (u32, String, Option<u64>)>;

fn libbpf_relocations() -> Option<LibbpfLog> {
    let pin = format!("/sys/fs/bpf/bpflab_btf_test_{}", std::process::id());
    let out = Command::new("bpftool")
        .args(["-d", "prog", "loadall", fixture("core.bpf.o").to_str().unwrap(), &pin])
        .output()
        .ok()?;
    // skb_prog reads ctx fields directly, which a kprobe may not: the load is expected to
    // fail after relocation. Clean up in case a kernel ever accepts it.
    let _ = Command::new("rm").args(["-rf", &pin]).status();
    let log = String::from_utf8_lossy(&out.stderr);
    let mut sec_of_prog: HashMap<String, String> = HashMap::new();
    let mut cur_sec = None;
    let mut map = LibbpfLog::new();
    for line in log.lines() {
        let line = line.trim_start_matches("libbpf: ");
        if let Some(rest) = line.strip_prefix("sec '") {
            if let Some((sec, tail)) = rest.split_once("': found ")
                && tail.ends_with("CO-RE relocations")
            {
                cur_sec = Some(sec.to_owned());
            }
            continue;
        }
        let Some(rest) = line.strip_prefix("prog '") else { continue };
        let Some((prog, rest)) = rest.split_once("': relo #") else { continue };
        let Some((idx, what)) = rest.split_once(": ") else { continue };
        let Ok(idx) = idx.parse::<usize>() else { continue };
        let sec =
            sec_of_prog.entry(prog.to_owned()).or_insert_with(|| cur_sec.clone().unwrap()).clone();
        let key = (sec, idx);
        if what.starts_with('<') {
            // "<byte_off> [2] struct task_struct.pid (0:0 @ offset 0)": the local spec.
            let id = what.split_once('[').unwrap().1.split_once(']').unwrap().0.parse().unwrap();
            map.entry(key).or_insert((id, what.to_owned(), None));
        } else if what.starts_with("patched") {
            let v = what.rsplit(' ').next().unwrap().parse().unwrap();
            map.get_mut(&key).unwrap().2 = Some(v);
        }
    }
    (!map.is_empty()).then_some(map)
}

#[test]
fn matches_libbpf_on_the_running_kernel() {
    let Some(libbpf) = libbpf_relocations() else {
        eprintln!("SKIP: bpftool/libbpf could not relocate the fixture here (no bpf() access?)");
        return;
    };
    let (local, ext) = load_obj("core.bpf.o");
    let k = vmlinux();
    let relos = all_relos(&ext);
    assert_eq!(libbpf.len(), relos.len(), "libbpf saw as many relocations");
    for (sec, i, relo) in relos {
        let (lid, spec, patched) = &libbpf[&(sec.clone(), i)];
        assert_eq!(*lid, relo.type_id, "{sec} #{i}: {spec}");
        assert!(spec.starts_with(&format!("<{}>", relo.kind)), "{sec} #{i}: {spec}");
        if relo.kind.is_field_based() {
            assert!(spec.contains(&format!("({} @", relo.access_str)), "{sec} #{i}: {spec}");
        }
        let ours = resolve(&local, k, &relo).unwrap();
        match patched {
            None => assert!(ours.poison, "{sec} #{i}: libbpf poisoned {spec}"),
            Some(v) => {
                assert!(!ours.poison, "{sec} #{i}: {spec}");
                assert_eq!(ours.target_value, *v, "{sec} #{i}: {spec}");
            }
        }
    }
}

#[test]
fn bad_relocations_are_errors() {
    let (local, _) = load_obj("core.bpf.o");
    let k = vmlinux();
    let task = local.find_by_name("task_struct", BtfKind::Struct).unwrap();
    let relo = |kind, access: &str| CoreRelo {
        insn_off: 8,
        type_id: task,
        access_str: access.into(),
        kind,
    };
    for access in ["", ":0", "0::1", "0:", "x", "0:-1", "0: 1", "+0", "0:99999999999"] {
        assert!(
            matches!(
                resolve(&local, k, &relo(FieldByteOffset, access)),
                Err(CoreError::InvalidSpec { insn_off: 8, .. })
            ),
            "{access:?}"
        );
    }
    assert!(matches!(
        resolve(&local, k, &relo(FieldByteOffset, "0:5")),
        Err(CoreError::AccessOutOfRange { index: 5, .. })
    ));
    assert!(matches!(
        resolve(&local, k, &relo(FieldByteOffset, "0:2:16")),
        Err(CoreError::AccessOutOfRange { index: 16, .. })
    ));
    assert!(matches!(
        resolve(&local, k, &relo(FieldByteOffset, "0:0:0")),
        Err(CoreError::UnexpectedKind { kind: BtfKind::Int, .. })
    ));
    let long = vec!["0"; 65].join(":");
    assert!(matches!(
        resolve(&local, k, &relo(FieldByteOffset, &long)),
        Err(CoreError::SpecTooLong { .. })
    ));
    assert!(matches!(
        resolve(&local, k, &relo(TypeSize, "0:1")),
        Err(CoreError::InvalidSpec { .. })
    ));
    assert!(matches!(
        resolve(&local, k, &relo(EnumvalValue, "0")),
        Err(CoreError::InvalidSpec { .. })
    ));
    assert!(matches!(
        resolve(&local, k, &relo(FieldSigned, "0:2:1")),
        Err(CoreError::ArrayAccess { kind: FieldSigned, .. })
    ));
    let bad_root = CoreRelo { type_id: local.len(), ..relo(FieldByteOffset, "0:0") };
    assert!(matches!(resolve(&local, k, &bad_root), Err(CoreError::Btf { .. })));
    // Anonymous root types have no candidates to search for.
    let anon = local.types().find(|(_, t)| t.kind() == BtfKind::Ptr).map(|(id, _)| id).unwrap();
    assert!(matches!(
        resolve(&local, k, &CoreRelo { type_id: anon, ..relo(TypeSize, "0") }),
        Err(CoreError::AnonymousType { .. })
    ));
}

#[test]
fn self_containing_anonymous_struct_terminates() {
    // struct loop { struct <anon> { <anon: itself> } ; } in the target, and a local
    // `struct loop { int x; }`: the anonymous-member search must give up, not overflow.
    let mut lb = common::BtfBuilder::new();
    lb.int("int", 4, true); // [1]
    let (n_loop, n_x) = (lb.str("loop"), lb.str("x"));
    lb.ty(n_loop, 4, 1, false, 4, &[n_x, 1, 0]); // [2] struct loop { int x; }
    let local = Btf::parse(&lb.build()).unwrap();

    let mut tb = common::BtfBuilder::new();
    let n_loop = tb.str("loop");
    tb.ty(n_loop, 4, 2, false, 8, &[0, 2, 0, 0, 2, 0]); // [1] struct loop { anon [2]; anon [2] }
    tb.ty(0, 4, 2, false, 8, &[0, 2, 0, 0, 1, 0]); // [2] anon { anon [2]; anon [1] }
    let target = Btf::parse(&tb.build()).unwrap();

    let relo =
        CoreRelo { insn_off: 0, type_id: 2, access_str: "0:0".into(), kind: FieldByteOffset };
    match resolve(&local, &target, &relo) {
        Err(CoreError::SpecTooLong { .. } | CoreError::Budget { .. }) => {}
        other => panic!("expected a bounded failure, got {other:?}"),
    }
}
