//! Cross-check with `llvm-objdump-19 -d -r --no-show-raw-insn`: per function symbol the
//! instruction and slot counts, and per code section the relocations (offset, type and
//! symbol), must match what the loader found.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use bpflab_loader::{Object, TargetBtf, load};

/// One function as objdump prints it.
#[derive(Debug, Default)]
struct DumpFunc {
    /// Instruction lines.
    insns: usize,
    /// Slots (LD_IMM64 counts two).
    slots: usize,
}

/// What objdump says about an object.
#[derive(Debug, Default)]
struct Dump {
    /// (section, function) → counts.
    funcs: BTreeMap<(String, String), DumpFunc>,
    /// (section, byte offset, relocation type, symbol).
    relocs: BTreeSet<(String, u64, String, String)>,
}

fn objdump(path: &std::path::Path) -> Option<Dump> {
    let out = Command::new("llvm-objdump-19")
        .args(["-d", "-r", "--no-show-raw-insn"])
        .arg(path)
        .output()
        .ok()?;
    assert!(out.status.success(), "objdump failed on {}", path.display());
    let text = String::from_utf8(out.stdout).unwrap();
    let mut dump = Dump::default();
    let mut section = String::new();
    let mut func: Option<String> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("Disassembly of section ") {
            section = rest.trim_end_matches(':').to_owned();
            func = None;
        } else if let Some(name) = line.strip_suffix(">:").and_then(|l| l.split_once(" <")) {
            func = Some(name.1.to_owned());
            dump.funcs.entry((section.clone(), name.1.to_owned())).or_default();
        } else if line.starts_with('\t') && line.contains("R_BPF_") {
            let mut parts = line.split_whitespace();
            let offset = parts.next().unwrap().trim_end_matches(':');
            let r_type = parts.next().unwrap().to_owned();
            let symbol = parts.next().unwrap_or("").to_owned();
            let offset = u64::from_str_radix(offset, 16).unwrap();
            dump.relocs.insert((section.clone(), offset, r_type, symbol));
        } else if let (Some(f), Some((idx, insn))) = (&func, line.split_once(":\t"))
            && idx.trim().parse::<usize>().is_ok()
        {
            let entry = dump.funcs.get_mut(&(section.clone(), f.clone())).unwrap();
            entry.insns += 1;
            entry.slots += if insn.trim_end().ends_with(" ll") { 2 } else { 1 };
        }
    }
    Some(dump)
}

fn r_type_name(t: u32) -> &'static str {
    match t {
        bpflab_loader::R_BPF_64_64 => "R_BPF_64_64",
        bpflab_loader::R_BPF_64_32 => "R_BPF_64_32",
        bpflab_loader::R_BPF_64_ABS64 => "R_BPF_64_ABS64",
        bpflab_loader::R_BPF_64_ABS32 => "R_BPF_64_ABS32",
        _ => "other",
    }
}

fn check(path: &std::path::Path, obj: &Object, dump: &Dump) {
    let name = path.display();
    for (p, info) in obj.collection.programs.iter().zip(&obj.programs) {
        let f = dump
            .funcs
            .get(&(info.section.clone(), info.name.clone()))
            .unwrap_or_else(|| panic!("{name}: objdump has no {}/{}", info.section, info.name));
        assert_eq!(f.slots, info.insn_count, "{name}: {} slots", info.name);
        // The program's own instructions come first in the linked program.
        let mut slots = 0;
        let own = p.insns.iter().take_while(|i| {
            let inside = slots < info.insn_count;
            slots += i.slots();
            inside
        });
        assert_eq!(own.count(), f.insns, "{name}: {} instructions", info.name);
        // Each appended subprogram keeps objdump's slot count (from the func_info starts).
        let total = p.slot_count();
        for (k, (start, fname)) in info.func_info.iter().enumerate() {
            let end = info.func_info.get(k + 1).map_or(total, |n| n.0);
            let sub = dump.funcs.iter().find(|((_, n), _)| n == fname);
            if let Some((_, sub)) = sub {
                assert_eq!(end - start, sub.slots, "{name}: {} in {}: slots", fname, info.name);
            }
        }
    }
    // Relocations of code sections: exactly objdump's.
    let code_sections: BTreeSet<&String> = dump.funcs.keys().map(|(s, _)| s).collect();
    let ours: BTreeSet<(String, u64, String, String)> = obj
        .relocations
        .iter()
        .filter(|r| code_sections.contains(&r.section))
        .map(|r| (r.section.clone(), r.offset, r_type_name(r.r_type).to_owned(), r.symbol.clone()))
        .collect();
    let theirs: BTreeSet<_> =
        dump.relocs.iter().filter(|r| code_sections.contains(&r.0)).cloned().collect();
    assert_eq!(ours, theirs, "{name}: relocations");
}

#[test]
fn agrees_with_llvm_objdump() {
    let mut checked = 0;
    for path in common::cross_check_objects() {
        let Some(dump) = objdump(&path) else {
            eprintln!("llvm-objdump-19 not available; skipping");
            return;
        };
        let target = if common::have_vmlinux_btf() { TargetBtf::Running } else { TargetBtf::None };
        let opts = bpflab_loader::LoadOptions { target_btf: target, ..common::load_options(&path) };
        let Ok(obj) = load(&std::fs::read(&path).unwrap(), &opts) else {
            assert!(!common::have_vmlinux_btf(), "{}: load failed", path.display());
            continue;
        };
        if path.ends_with("multi.bpf.o") {
            // The parser itself: what `llvm-objdump` prints for the fixture.
            let f = &dump.funcs[&("xdp".to_owned(), "prog_one".to_owned())];
            assert_eq!((f.insns, f.slots), (12, 13));
            assert_eq!(dump.funcs[&(".text".to_owned(), "loop_cb".to_owned())].slots, 5);
            assert_eq!(dump.relocs.len(), 4);
            assert!(dump.relocs.contains(&(
                "xdp".into(),
                0x70,
                "R_BPF_64_32".into(),
                "global_helper".into()
            )));
        }
        check(&path, &obj, &dump);
        checked += 1;
    }
    assert!(checked >= 6, "only {checked} objects were checked");
}
