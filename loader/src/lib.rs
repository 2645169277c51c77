//! bpflab's object loader: turns a clang-built eBPF ELF object (`clang -O2 -g -target bpf`)
//! into a [`bpflab_vm::Collection`] of linked, relocated programs and their maps, the way
//! libbpf opens and prepares an object:
//!
//! - programs by libbpf's section names ([`secdef::SECTION_DEFS`]), several per section;
//! - subprograms from `.text` appended to each program that calls them;
//! - BTF-defined maps (`.maps`), legacy `SEC("maps")` definitions and global-data maps;
//! - map and global-data references as `map_idx` / `map_idx_value` LD_IMM64s;
//! - `.BTF.ext` line and function info, and CO-RE relocations against a target BTF;
//! - the object's BTF fixed up for `BPF_BTF_LOAD` (DATASEC sizes and offsets, `.ksyms`
//!   externs, hidden symbols) with each program's kernel func/line info records and load
//!   flags, so engines can load the collection into the kernel as libbpf would.
//!
//! [`load`] never panics: any malformed input gives a [`LoadError`] naming the section,
//! offset or symbol.
#![forbid(unsafe_code)]

mod btfext;
mod btffix;
mod code;
mod core;
mod elf;
mod error;
mod link;
mod maps;
mod reloc;
pub mod secdef;

use std::path::PathBuf;

use bpflab_btf::{Btf, BtfExt};
use bpflab_vm::isa::{DecodeError, RawInsn, decode_program};
use bpflab_vm::{Collection, ProgType, Program};

pub use crate::btfext::{FuncTable, LineTable, SourceLine};
pub use crate::core::{CoreInfo, POISON_HELPER};
pub use crate::error::{LoadError, SectionRef};
pub use crate::maps::{
    BPF_F_MMAPABLE, BPF_F_RDONLY_PROG, MapInfo, MapInitValue, internal_map_name,
};
pub use crate::reloc::{
    R_BPF_64_32, R_BPF_64_64, R_BPF_64_ABS32, R_BPF_64_ABS64, RelocationInfo, RelocationKind,
};
pub use crate::secdef::{BPF_F_SLEEPABLE, BPF_F_XDP_HAS_FRAGS};

/// The most instruction slots one linked program may have (the kernel's `BPF_COMPLEXITY_LIMIT_INSNS`).
pub const MAX_PROGRAM_SLOTS: usize = 1_000_000;
/// The most instruction slots all linked programs of an object may have together.
pub const MAX_TOTAL_SLOTS: usize = 16 * MAX_PROGRAM_SLOTS;

/// Where CO-RE relocations (and kfunc calls) are resolved.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum TargetBtf {
    /// The running kernel's BTF (`/sys/kernel/btf/vmlinux`), read only if needed.
    #[default]
    Running,
    /// A BTF file (raw BTF, like `/sys/kernel/btf/vmlinux`).
    File(PathBuf),
    /// No target: objects with CO-RE relocations or kfunc calls are refused.
    None,
}

/// How to load an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadOptions {
    /// The object's name, used as the prefix of global-data map names (`obj.data`); libbpf
    /// takes the file name up to its first dot.
    pub object_name: String,
    /// The BTF CO-RE relocations are resolved against.
    pub target_btf: TargetBtf,
    /// Treat the global functions of `.text` as programs too (type [`ProgType::Unspec`], raw
    /// mode), as tools that register `.text` as a program section do (bpf_conformance's ELF
    /// mode). libbpf's default, and bpflab's, is that `.text` holds subprograms only.
    pub text_programs: bool,
}

impl Default for LoadOptions {
    fn default() -> LoadOptions {
        LoadOptions {
            object_name: "obj".into(),
            target_btf: TargetBtf::Running,
            text_programs: false,
        }
    }
}

impl LoadOptions {
    /// Options naming the object after a file path like libbpf does (`dir/foo.bpf.o` → `foo`).
    pub fn for_path(path: impl AsRef<std::path::Path>) -> LoadOptions {
        let file = path.as_ref().file_name().and_then(|n| n.to_str()).unwrap_or("obj");
        let name = file.split('.').next().filter(|n| !n.is_empty()).unwrap_or("obj");
        LoadOptions { object_name: name.to_owned(), ..LoadOptions::default() }
    }
}

/// A loaded object: the collection engines run, plus what the ELF said about it.
#[derive(Debug)]
pub struct Object {
    /// The linked programs and their maps.
    pub collection: Collection,
    /// The `license` section's string (empty if there is none, as in libbpf).
    pub license: String,
    /// The `version` section's value, if there is one.
    pub kernel_version: Option<u32>,
    /// The object's `.BTF`, if it has one, as fixed up for the kernel (the bytes are
    /// [`Collection::btf`]); type ids and string offsets are those of the section.
    pub btf: Option<Btf>,
    /// Per-program details, in the order of `collection.programs`.
    pub programs: Vec<ProgramInfo>,
    /// Per-map details, in the order of `collection.maps`.
    pub maps: Vec<MapInfo>,
    /// Every ELF relocation the loader applied.
    pub relocations: Vec<RelocationInfo>,
    /// Every CO-RE relocation the loader applied.
    pub core_relocations: Vec<CoreInfo>,
}

/// Where a program came from and how it was linked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramInfo {
    /// The function symbol's name.
    pub name: String,
    /// The ELF section.
    pub section: String,
    /// Byte offset of the program within its section.
    pub section_offset: u64,
    /// Slots of the program itself (without appended subprograms).
    pub insn_count: usize,
    /// The appended subprograms, in the order they were appended.
    pub subprograms: Vec<String>,
    /// Source lines by slot of the linked program.
    pub line_info: LineTable,
    /// Function starts by slot of the linked program (the program's, then subprograms').
    pub func_info: FuncTable,
}

/// Loads an eBPF ELF object.
pub fn load(bytes: &[u8], opts: &LoadOptions) -> Result<Object, LoadError> {
    let elf = elf::parse(bytes)?;
    let license = read_license(&elf)?;
    let kernel_version = read_version(&elf)?;

    // Like libbpf, everything after opening (maps, CO-RE, func/line info) sees the BTF with
    // its DATASECs and externs fixed up.
    let (btf_bytes, btf) = match elf.section_by_name(".BTF") {
        Some(s) => {
            let raw = Btf::parse(s.data)
                .map_err(|error| LoadError::Btf { section: ".BTF".into(), error })?;
            let bytes = btffix::for_kernel(s.data, &raw, &elf)?;
            let fixed = Btf::parse(&bytes).map_err(|error| LoadError::Btf {
                section: ".BTF (fixed up for the kernel)".into(),
                error,
            })?;
            (Some(bytes), Some(fixed))
        }
        None => (None, None),
    };
    let (ext, line_strings) = match (elf.section_by_name(".BTF.ext"), &btf) {
        (Some(s), Some(b)) => {
            let ext = BtfExt::parse(s.data, b)
                .map_err(|error| LoadError::Btf { section: ".BTF.ext".into(), error })?;
            (Some(ext), btfext::line_strings(s.data, b))
        }
        _ => (None, btfext::LineStrings::default()),
    };

    let mut maps = maps::collect(&elf, btf.as_ref(), &opts.object_name)?;
    let mut code = code::collect(&elf)?;
    let target = core::LazyTarget::new(&opts.target_btf);
    let core_relocations = match (&btf, &ext) {
        (Some(b), Some(e)) => core::apply(&mut code, b, e, &target)?,
        _ => Vec::new(),
    };
    let kfunc = |name: &str| target.kfunc_id(name);
    let (targets, relocations) = reloc::apply(&elf, &mut code, &mut maps, &kfunc)?;

    // Each kfunc's name, which engines look kfuncs up by (the calls carry only BTF ids).
    let mut kfuncs: Vec<bpflab_vm::spec::KfuncRef> = Vec::new();
    for r in &relocations {
        if let RelocationKind::Kfunc { btf_id } = r.kind
            && !kfuncs.iter().any(|k| k.btf_id == btf_id)
        {
            kfuncs.push(bpflab_vm::spec::KfuncRef { btf_id, name: r.symbol.clone() });
        }
    }

    // Each kfunc's name, which engines look kfuncs up by (the calls carry only BTF ids).
    let mut kfuncs: Vec<bpflab_vm::spec::KfuncRef> = Vec::new();
    for r in &relocations {
        if let RelocationKind::Kfunc { btf_id } = r.kind
            && !kfuncs.iter().any(|k| k.btf_id == btf_id)
        {
            kfuncs.push(bpflab_vm::spec::KfuncRef { btf_id, name: r.symbol.clone() });
        }
    }

    let mut programs = Vec::new();
    let mut infos = Vec::new();
    let mut total_slots = 0usize;
    let text_kind = secdef::SectionKind {
        def: &secdef::TEXT_DEF,
        prog_type: ProgType::Unspec,
        expected_attach_type: None,
        attach_to: None,
    };
    for cs in &code.sections {
        let kind = match &cs.kind {
            Some(kind) => kind,
            None if opts.text_programs => &text_kind,
            None => continue,
        };
        for (fi, f) in cs.funcs.iter().enumerate() {
            let linked = link::link(&code, &targets, cs.index, fi)?;
            total_slots += linked.slots.len();
            if total_slots > MAX_TOTAL_SLOTS {
                return Err(LoadError::TooLarge {
                    what: "the linked programs' instructions".into(),
                    limit: MAX_TOTAL_SLOTS as u64,
                });
            }
            let insns = decode_program(&linked.slots)
                .map_err(|e| decode_error(&code, &linked.placements, e))?;
            let btf_info = match (&btf, &ext) {
                (Some(b), Some(e)) => {
                    btfext::program_info(&code, b, e, &line_strings, &linked.placements)
                }
                _ => btfext::ProgramBtfInfo::default(),
            };
            let subprograms = linked.placements[1..]
                .iter()
                .filter_map(|p| code.get(p.section)?.funcs.get(p.func).map(|f| f.name.clone()))
                .collect();
            if programs.iter().any(|p: &Program| p.name == f.name) {
                return Err(LoadError::Duplicate { what: "program", name: f.name.clone() });
            }
            programs.push(Program {
                name: f.name.clone(),
                prog_type: kind.prog_type,
                insns,
                license: license.clone(),
                section: cs.name.clone(),
                expected_attach_type: kind.expected_attach_type,
                attach_to: kind.attach_to.clone(),
                flags: kind.def.prog_flags(),
                func_info: btf_info.kernel_funcs,
                line_info: btf_info.kernel_lines,
            });
            infos.push(ProgramInfo {
                name: f.name.clone(),
                section: cs.name.clone(),
                section_offset: f.start as u64 * 8,
                insn_count: f.len,
                subprograms,
                line_info: btf_info.lines,
                func_info: btf_info.funcs,
            });
        }
    }

    Ok(Object {
        collection: Collection { maps: maps.specs, programs, btf: btf_bytes, kfuncs },
        license,
        kernel_version,
        btf,
        programs: infos,
        maps: maps.infos,
        relocations,
        core_relocations,
    })
}

/// Names the section and byte offset of a slot of a linked program.
fn decode_error(
    code: &code::Code,
    placements: &[link::Placement],
    error: DecodeError,
) -> LoadError {
    let placement = placements.iter().rev().find(|p| p.base <= error.index);
    let (section, offset) = match placement.and_then(|p| Some((p, code.get(p.section)?))) {
        Some((p, cs)) => {
            let start = cs.funcs.get(p.func).map_or(0, |f| f.start);
            let slot = start + (error.index - p.base);
            (SectionRef { index: cs.index, name: cs.name.clone() }, (slot * RawInsn::SIZE) as u64)
        }
        None => (SectionRef { index: 0, name: String::new() }, 0),
    };
    LoadError::Decode { section, offset, error }
}

/// The `license` section: a NUL-terminated string.
fn read_license(elf: &elf::ElfObject<'_>) -> Result<String, LoadError> {
    let Some(s) = elf.section_by_name("license") else { return Ok(String::new()) };
    let end = s.data.iter().position(|&b| b == 0).ok_or(LoadError::BadLicense)?;
    std::str::from_utf8(&s.data[..end]).map(str::to_owned).map_err(|_| LoadError::BadLicense)
}

/// The `version` section: a little-endian u32.
fn read_version(elf: &elf::ElfObject<'_>) -> Result<Option<u32>, LoadError> {
    let Some(s) = elf.section_by_name("version") else { return Ok(None) };
    match *s.data {
        [a, b, c, d] => Ok(Some(u32::from_le_bytes([a, b, c, d]))),
        _ => Err(LoadError::BadVersion { size: s.size }),
    }
}
