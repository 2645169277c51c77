//! `bpflab inspect OBJ` and `bpflab disasm OBJ`: what an object file holds, and its programs
//! as assembly with their source lines.

use std::collections::BTreeMap;
use std::path::Path;

use bpflab::input::read_file;
use bpflab_loader::{LoadOptions, Object, RelocationKind};
use bpflab_vm::asm::disassemble_line;
use bpflab_vm::isa::Insn;
use serde_json::{Value, json};

use super::{CmdResult, emit};

/// Loads an object file, naming it after the file as libbpf does.
pub(crate) fn load_object(path: &Path) -> Result<Object, Box<dyn std::error::Error>> {
    let bytes = read_file(path)?;
    bpflab_loader::load(&bytes, &LoadOptions::for_path(path))
        .map_err(|e| format!("{}: {e}", path.display()).into())
}

/// True when the file starts with the ELF magic.
pub(crate) fn is_elf(path: &Path) -> bool {
    std::fs::File::open(path)
        .and_then(|mut f| {
            let mut magic = [0u8; 4];
            std::io::Read::read_exact(&mut f, &mut magic).map(|()| magic == *b"\x7fELF")
        })
        .unwrap_or(false)
}

fn reloc_kind(kind: &RelocationKind) -> &'static str {
    match kind {
        RelocationKind::Map { .. } => "map",
        RelocationKind::MapValue { .. } => "map_value",
        RelocationKind::Call { .. } => "call",
        RelocationKind::FuncAddr { .. } => "func_addr",
        RelocationKind::Kfunc { .. } => "kfunc",
        RelocationKind::MapInit { .. } => "map_init",
    }
}

/// The object as JSON: programs, maps, globals, relocations, BTF summary.
fn object_json(path: &Path, obj: &Object) -> Value {
    let programs: Vec<Value> = obj
        .collection
        .programs
        .iter()
        .zip(&obj.programs)
        .map(|(p, info)| {
            json!({
                "name": p.name,
                "section": info.section,
                "type": format!("{:?}", p.prog_type),
                "type_id": p.prog_type.id(),
                "expected_attach_type": p.expected_attach_type,
                "attach_to": p.attach_to,
                "insns": info.insn_count,
                "linked_insns": p.slot_count(),
                "subprograms": info.subprograms,
                "line_info": info.line_info.len(),
            })
        })
        .collect();
    let maps: Vec<Value> = obj
        .collection
        .maps
        .iter()
        .zip(&obj.maps)
        .map(|(m, info)| {
            json!({
                "name": m.name,
                "type": m.map_type.name(),
                "key_size": m.key_size,
                "value_size": m.value_size,
                "max_entries": m.max_entries,
                "flags": m.flags,
                "section": info.section,
                "global_data": m.data.as_ref().map(|(s, _)| format!("{s:?}").to_lowercase()),
                "inner": m.inner.as_ref().map(|i| i.map_type.name()),
            })
        })
        .collect();
    let relocations: Vec<Value> = obj
        .relocations
        .iter()
        .map(|r| {
            json!({ "section": r.section, "offset": r.offset, "symbol": r.symbol, "kind": reloc_kind(&r.kind) })
        })
        .collect();
    let core: Vec<Value> = obj
        .core_relocations
        .iter()
        .map(|c| {
            json!({
                "function": c.function, "offset": c.offset, "kind": c.kind, "access": c.access,
                "local": c.local_value, "target": c.target_value, "poisoned": c.poisoned,
            })
        })
        .collect();
    json!({
        "object": path.display().to_string(),
        "license": obj.license,
        "kernel_version": obj.kernel_version,
        "programs": programs,
        "maps": maps,
        "relocations": relocations,
        "core_relocations": core,
        "btf": obj.btf.as_ref().map(|b| json!({ "types": b.len() })),
    })
}

/// Prints what an object holds.
pub(crate) fn inspect(path: &Path, json: bool) -> CmdResult {
    let obj = load_object(path)?;
    if json {
        return Ok(emit(&(serde_json::to_string_pretty(&object_json(path, &obj))? + "\n"))?);
    }
    let mut out = format!("{}: license {:?}", path.display(), obj.license);
    if let Some(v) = obj.kernel_version {
        out += &format!(", version {v:#x}");
    }
    out += "\n\nprograms:\n";
    out += &format!(
        "  {:<24} {:<28} {:<16} {:>6} {:>6}  subprograms\n",
        "name", "section", "type", "insns", "linked"
    );
    for (p, info) in obj.collection.programs.iter().zip(&obj.programs) {
        out += &format!(
            "  {:<24} {:<28} {:<16} {:>6} {:>6}  {}\n",
            p.name,
            info.section,
            format!("{:?}", p.prog_type),
            info.insn_count,
            p.slot_count(),
            info.subprograms.join(", ")
        );
    }
    out += "\nmaps:\n";
    out += &format!(
        "  {:<24} {:<18} {:>5} {:>7} {:>11} {:>6}  section\n",
        "name", "type", "key", "value", "max_entries", "flags"
    );
    for (m, info) in obj.collection.maps.iter().zip(&obj.maps) {
        out += &format!(
            "  {:<24} {:<18} {:>5} {:>7} {:>11} {:>#6x}  {}\n",
            m.name,
            m.map_type.name(),
            m.key_size,
            m.value_size,
            m.max_entries,
            m.flags,
            info.section
        );
    }
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &obj.relocations {
        *kinds.entry(reloc_kind(&r.kind)).or_default() += 1;
    }
    let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
    out += &format!("\nrelocations: {} ({})\n", obj.relocations.len(), kinds.join(", "));
    let poisoned = obj.core_relocations.iter().filter(|c| c.poisoned).count();
    out += &format!("CO-RE relocations: {} ({poisoned} poisoned)\n", obj.core_relocations.len());
    match &obj.btf {
        Some(btf) => {
            let lines: usize = obj.programs.iter().map(|p| p.line_info.len()).sum();
            out += &format!("BTF: {} types; line info for {lines} instructions\n", btf.len());
        }
        None => out += "BTF: none\n",
    }
    Ok(emit(&out)?)
}

/// Prints the programs of an object (or one of them) with source lines interleaved.
pub(crate) fn disasm_object(path: &Path, prog: Option<&str>, json: bool) -> CmdResult {
    let obj = load_object(path)?;
    let selected: Vec<usize> = match prog {
        Some(name) => vec![program_index(&obj, name)?],
        None => (0..obj.collection.programs.len()).collect(),
    };
    let mut text = String::new();
    let mut docs = Vec::new();
    for i in selected {
        let p = &obj.collection.programs[i];
        let info = &obj.programs[i];
        let lines: BTreeMap<usize, _> = info.line_info.iter().map(|(s, l)| (*s, l)).collect();
        let funcs: BTreeMap<usize, &String> = info.func_info.iter().map(|(s, f)| (*s, f)).collect();
        let mut rows = Vec::new();
        text += &format!("{} ({}, {:?}):\n", p.name, info.section, p.prog_type);
        let mut slot = 0;
        let mut last_line = None;
        for insn in &p.insns {
            if let Some(f) = funcs.get(&slot).filter(|_| slot > 0) {
                text += &format!("{f}:\n");
            }
            let src = lines.get(&slot).copied();
            if let Some(l) = src
                && last_line != Some((&l.file, l.line))
            {
                text += &format!("; {} [{}:{}]\n", l.text.trim(), short_file(&l.file), l.line);
                last_line = Some((&l.file, l.line));
            }
            text += &disassemble_line(slot, insn);
            rows.push(json!({
                "slot": slot,
                "text": insn.to_string(),
                "source": src.map(|l| json!({ "file": l.file, "line": l.line, "col": l.col, "text": l.text.trim() })),
            }));
            slot += Insn::slots(insn);
        }
        text.push('\n');
        docs.push(json!({ "name": p.name, "section": info.section, "insns": rows }));
    }
    if json { Ok(emit(&(serde_json::to_string_pretty(&docs)? + "\n"))?) } else { Ok(emit(&text)?) }
}

/// The last path component of a source file name.
fn short_file(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The index of the program named `name`, or an error listing the programs there are.
pub(crate) fn program_index(obj: &Object, name: &str) -> Result<usize, Box<dyn std::error::Error>> {
    obj.collection.programs.iter().position(|p| p.name == name).ok_or_else(|| {
        let names: Vec<&str> = obj.collection.programs.iter().map(|p| p.name.as_str()).collect();
        format!("no program named {name:?}; the object has: {}", names.join(", ")).into()
    })
}

/// Prints the native code the JIT generates for an object's programs (or raw bytecode), like
/// `bpftool prog dump jited`.
pub(crate) fn disasm_jited(path: &Path, prog: Option<&str>) -> CmdResult {
    let (collection, selected) = if is_elf(path) {
        let obj = load_object(path)?;
        let selected: Vec<usize> = match prog {
            Some(name) => vec![program_index(&obj, name)?],
            None => (0..obj.collection.programs.len()).collect(),
        };
        (obj.collection, selected)
    } else {
        let insns = bpflab::input::read_bytecode(path)?;
        (bpflab_vm::Collection::single(bpflab_vm::Program::raw("raw", insns)), vec![0])
    };
    let engine = bpflab_jit::JitEngine::with_mode(bpflab_jit::Mode::Checked)?;
    let inst = engine.instantiate(&collection)?;
    let mut text = String::new();
    for i in selected {
        text += &format!("{}:\n{}\n", collection.programs[i].name, inst.disassemble(i)?);
    }
    Ok(emit(&text)?)
}
