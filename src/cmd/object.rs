//! `bpflab inspect OBJ` and `bpflab disasm OBJ`: what an object file holds, and its programs
//! as assembly with their source lines.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bpflab::input::read_file;
use bpflab_loader::{KsymValue, LoadOptions, Object, RelocationKind, parse_prog_type};
use bpflab_vm::asm::disassemble_line;
use bpflab_vm::isa::Insn;
use bpflab_vm::profile::KernelProfile;
use clap::Args;
use serde_json::{Value, json};

use super::{CmdResult, emit};

/// What user space sets on an object before loading it (libbpf's `bpf_program__set_type`,
/// `bpf_map__set_max_entries`, the kernel configuration kconfig externs read); shared by every
/// command that loads an object.
#[derive(Args, Debug, Default, Clone)]
pub(crate) struct LoadArgs {
    /// The program type of the program run (`--prog`), or else of every program whose section
    /// name libbpf does not know; `NAME=TYPE` sets program NAME's (repeatable). TYPE is a
    /// kernel type name as libbpf prints it (`xdp`, `sched_cls`, `socket_filter`, `kprobe`,
    /// ...) or a libbpf section name (`tc`, `classifier`, `tc/ingress`, `kprobe/FUNC`, ...).
    #[arg(long, value_name = "[NAME=]TYPE")]
    pub(crate) prog_type: Vec<String>,
    /// The size (max_entries) of a map user space sizes (max_entries 0 in the object);
    /// repeatable.
    #[arg(long, value_name = "NAME=N")]
    pub(crate) map_size: Vec<String>,
    /// The kernel configuration `__kconfig` externs read (`.config` format, or gzip like
    /// /proc/config.gz). Default: /boot/config-$(uname -r), else /proc/config.gz, as libbpf.
    #[arg(long, value_name = "FILE")]
    pub(crate) kconfig: Option<PathBuf>,
    /// The kernel to simulate: `bpflab` (the kernel bpflab models, the default), `running`
    /// (this machine's kernel, probed), or a profile FILE written by `bpflab kernel features
    /// --json` on another machine. Decides which helpers each program type may call, and the
    /// kernel version and configuration `__kconfig` externs read.
    #[arg(long, value_name = "bpflab|running|FILE")]
    pub(crate) kernel_profile: Option<String>,
}

/// Parses `--map-size NAME=N` (N decimal or 0x hex).
fn map_size(text: &str) -> Result<(String, u32), String> {
    let bad = || format!("--map-size {text:?}: expected NAME=N (N a number of entries)");
    let (name, n) = text.rsplit_once('=').ok_or_else(bad)?;
    let n = n.trim();
    let size = match n.strip_prefix("0x").or_else(|| n.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => n.parse(),
    };
    match (name.trim(), size) {
        ("", _) | (_, Err(_)) => Err(bad()),
        (name, Ok(size)) => Ok((name.to_owned(), size)),
    }
}

impl LoadArgs {
    /// The loader options these arguments give for the object at `path`.
    pub(crate) fn options(&self, path: &Path) -> Result<LoadOptions, Box<dyn std::error::Error>> {
        let mut opts = LoadOptions::for_path(path);
        for text in &self.map_size {
            let (name, size) = map_size(text)?;
            opts.map_sizes.insert(name, size);
        }
        if let Some(profile) = self.chosen_profile()? {
            opts.kernel_version = Some(profile.version_code);
            if !profile.kconfig.is_empty() {
                opts.kconfig = profile.kconfig;
            }
        }
        if let Some(file) = &self.kconfig {
            opts.kconfig = bpflab_loader::read_kconfig_file(file)?;
        }
        Ok(opts)
    }

    /// The profile `--kernel-profile` names, if given.
    fn chosen_profile(&self) -> Result<Option<KernelProfile>, Box<dyn std::error::Error>> {
        Ok(self.kernel_profile.as_deref().map(bpflab::profile::choose).transpose()?)
    }

    /// The kernel profile the simulator follows (`--kernel-profile`, or bpflab's own).
    pub(crate) fn profile(&self) -> Result<KernelProfile, Box<dyn std::error::Error>> {
        Ok(self.chosen_profile()?.unwrap_or_else(|| {
            KernelProfile::bpflab(&bpflab_vm::helpers::HelperRegistry::standard())
        }))
    }

    /// Applies `--prog-type`: `NAME=TYPE` to program NAME; `TYPE` to program `prog`, or
    /// without one to every program whose type is unknown (to the only program when all are
    /// typed).
    fn apply_prog_type(
        &self,
        obj: &mut Object,
        prog: Option<&str>,
    ) -> Result<(), Box<dyn std::error::Error>> {
        for text in &self.prog_type {
            if let Some((name, ty)) = text.split_once('=') {
                obj.set_prog_type(name.trim(), &parse_prog_type(ty)?)?;
                continue;
            }
            let choice = parse_prog_type(text)?;
            let names: Vec<String> = match prog {
                Some(name) => vec![name.to_owned()],
                None => {
                    let untyped: Vec<String> = obj
                        .programs
                        .iter()
                        .filter(|p| !p.type_known)
                        .map(|p| p.name.clone())
                        .collect();
                    match (untyped.is_empty(), obj.programs.len()) {
                        (false, _) => untyped,
                        (true, 1) => vec![obj.programs[0].name.clone()],
                        (true, _) => {
                            return Err(format!(
                                "--prog-type {text}: every program has a type already; choose \
                                 the one to change with --prog NAME or --prog-type NAME={text}"
                            )
                            .into());
                        }
                    }
                }
            };
            for name in names {
                obj.set_prog_type(&name, &choice)?;
            }
        }
        Ok(())
    }
}

/// Loads an object file, naming it after the file as libbpf does, with what the user set:
/// map sizes, the kernel configuration, and the type of program `prog` (see [`LoadArgs`]).
pub(crate) fn load_object(
    path: &Path,
    args: &LoadArgs,
    prog: Option<&str>,
) -> Result<Object, Box<dyn std::error::Error>> {
    load_with(path, args, prog, false)
}

/// [`load_object`], optionally as libbpf opens an object (`inspect`, `disasm`: maps that need a
/// size may have none, strong kconfig externs may have no value).
fn load_with(
    path: &Path,
    args: &LoadArgs,
    prog: Option<&str>,
    open_only: bool,
) -> Result<Object, Box<dyn std::error::Error>> {
    let bytes = read_file(path)?;
    let mut opts = args.options(path)?;
    opts.open_only = open_only;
    let with_path = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let mut obj = bpflab_loader::load(&bytes, &opts).map_err(|e| with_path(&e))?;
    args.apply_prog_type(&mut obj, prog).map_err(|e| with_path(&e))?;
    Ok(obj)
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
        RelocationKind::Ksym { .. } => "ksym",
    }
}

/// A program's type as `inspect` and `disasm` show it: libbpf's name (`xdp`, `sched_cls`),
/// or `unknown` for a program in a section libbpf does not know that has no type set.
fn type_label(prog_type: bpflab_vm::ProgType, known: bool) -> &'static str {
    if known { bpflab_loader::prog_type_name(prog_type) } else { "unknown" }
}

/// The kconfig externs as JSON: name, offset, size and value (`null`: unset, zero).
fn kconfig_json(obj: &Object) -> Vec<Value> {
    obj.kconfig
        .iter()
        .map(|k| json!({ "name": k.name, "offset": k.offset, "size": k.size, "weak": k.weak, "value": k.value }))
        .collect()
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
                "type": type_label(p.prog_type, info.type_known),
                "type_known": info.type_known,
                "autoload": info.autoload,
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
        "kconfig": kconfig_json(obj),
        "ksyms": obj.relocations.iter().filter_map(|r| match r.kind {
            RelocationKind::Ksym { value } => Some(json!({ "name": r.symbol, "value": ksym_text(value) })),
            _ => None,
        }).collect::<Vec<_>>(),
        "btf": obj.btf.as_ref().map(|b| json!({ "types": b.len() })),
        "kfuncs": obj.collection.kfuncs.iter().map(|k| json!({
            "name": k.name,
            "btf_id": k.btf_id,
            "implemented": bpflab_vm::kfunc::find(&k.name).is_some(),
        })).collect::<Vec<_>>(),
    })
}

/// A kfunc as `inspect` lists it: `name (btf id N)`, marked when bpflab does not implement it.
fn kfunc_text(k: &bpflab_vm::spec::KfuncRef) -> String {
    let missing = if bpflab_vm::kfunc::find(&k.name).is_some() { "" } else { ", not implemented" };
    format!("{} (btf id {}{missing})", k.name, k.btf_id)
}

/// What a ksym resolved to, as text.
fn ksym_text(value: KsymValue) -> String {
    match value {
        KsymValue::BtfId(id) => format!("btf id {id}"),
        KsymValue::Address(a) => format!("address {a:#x}"),
        KsymValue::Missing => "missing (weak)".to_owned(),
    }
}

/// Prints what an object holds.
pub(crate) fn inspect(path: &Path, json: bool, args: &LoadArgs) -> CmdResult {
    let obj = load_with(path, args, None, true)?;
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
            type_label(p.prog_type, info.type_known),
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
    if !obj.kconfig.is_empty() {
        out += "\nkconfig externs:\n";
        for k in &obj.kconfig {
            let value = k.value.as_deref().unwrap_or("(unset: 0)");
            out +=
                &format!("  {:<32} offset {:>3} size {:>3}  {value}\n", k.name, k.offset, k.size);
        }
    }
    let untyped: Vec<&str> =
        obj.programs.iter().filter(|p| !p.type_known).map(|p| p.name.as_str()).collect();
    if !untyped.is_empty() {
        out += &format!(
            "\nprograms of unknown type (sections libbpf does not know): {}; run them with --prog-type TYPE\n",
            untyped.join(", ")
        );
    }
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &obj.relocations {
        *kinds.entry(reloc_kind(&r.kind)).or_default() += 1;
    }
    let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
    out += &format!("\nrelocations: {} ({})\n", obj.relocations.len(), kinds.join(", "));
    if !obj.collection.kfuncs.is_empty() {
        let kfuncs: Vec<String> = obj.collection.kfuncs.iter().map(kfunc_text).collect();
        out += &format!("kfuncs: {}\n", kfuncs.join(", "));
    }
    let mut ksyms: Vec<String> = Vec::new();
    for r in &obj.relocations {
        if let RelocationKind::Ksym { value } = r.kind {
            let text = format!("{} ({})", r.symbol, ksym_text(value));
            if !ksyms.contains(&text) {
                ksyms.push(text);
            }
        }
    }
    if !ksyms.is_empty() {
        out += &format!("ksyms: {}\n", ksyms.join(", "));
    }
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
pub(crate) fn disasm_object(
    path: &Path,
    prog: Option<&str>,
    json: bool,
    args: &LoadArgs,
) -> CmdResult {
    let obj = load_with(path, args, prog, true)?;
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
        text += &format!(
            "{} ({}, {}):\n",
            p.name,
            info.section,
            type_label(p.prog_type, info.type_known)
        );
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
        if name.is_empty() {
            format!(
                "the object has {} programs; choose one with --prog NAME: {}",
                names.len(),
                names.join(", ")
            )
            .into()
        } else {
            format!("no program named {name:?}; the object has: {}", names.join(", ")).into()
        }
    })
}

/// Prints the native code the JIT generates for an object's programs (or raw bytecode), like
/// `bpftool prog dump jited`.
pub(crate) fn disasm_jited(path: &Path, prog: Option<&str>, args: &LoadArgs) -> CmdResult {
    let (collection, selected) = if is_elf(path) {
        let obj = load_object(path, args, prog)?;
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
