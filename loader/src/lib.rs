//! bpflab's object loader: turns a clang-built eBPF ELF object (`clang -O2 -g -target bpf`)
//! into a [`bpflab_vm::Collection`] of linked, relocated programs and their maps, the way
//! libbpf opens and prepares an object:
//!
//! - programs by libbpf's section names ([`secdef::SECTION_DEFS`]), several per section;
//!   programs in sections libbpf does not know load without a type until the user sets one
//!   ([`LoadOptions::prog_types`], [`Object::set_prog_type`]), and do not run before
//!   ([`Object::check_runnable`]);
//! - subprograms from `.text` appended to each program that calls them;
//! - BTF-defined maps (`.maps`), legacy `SEC("maps")` definitions and global-data maps, with
//!   the sizes user space gives maps the object leaves at 0 ([`LoadOptions::map_sizes`]);
//! - map and global-data references as `map_idx` / `map_idx_value` LD_IMM64s;
//! - `__kconfig` externs in a read-only `.kconfig` map filled from the kernel configuration
//!   ([`LoadOptions::kconfig`]), `__ksym` variables by BTF id or kallsyms address, weak
//!   externs the kernel lacks as 0;
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
mod externs;
mod link;
mod maps;
mod reloc;
pub mod secdef;

use std::collections::BTreeMap;
use std::path::PathBuf;

use bpflab_btf::{Btf, BtfExt};
use bpflab_vm::isa::{DecodeError, RawInsn, decode_program};
use bpflab_vm::{Collection, ProgType, Program};

pub use crate::btfext::{FuncTable, LineTable, SourceLine};
pub use crate::core::{CoreInfo, POISON_HELPER};
pub use crate::error::{LoadError, SectionRef};
pub use crate::externs::{
    KconfigError, KconfigExtern, KconfigType, kernel_version_of_release, parse_kconfig,
    read_kconfig_file, system_kconfig,
};
pub use crate::maps::{
    BPF_F_MMAPABLE, BPF_F_RDONLY_PROG, MapInfo, MapInitValue, internal_map_name, ringbuf_size,
    size_may_be_zero,
};
pub use crate::reloc::{
    KsymValue, POISON_KFUNC_CALL, R_BPF_64_32, R_BPF_64_64, R_BPF_64_ABS32, R_BPF_64_ABS64,
    RelocationInfo, RelocationKind,
};
pub use crate::secdef::{
    BPF_F_SLEEPABLE, BPF_F_XDP_HAS_FRAGS, ProgTypeChoice, UnknownProgType, parse_prog_type,
    prog_type_name,
};

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
    /// Program types set by the user, by program name (libbpf's `bpf_program__set_type`):
    /// what programs in sections libbpf does not know need before they can run, or a
    /// different type for any program. See [`secdef::parse_prog_type`].
    pub prog_types: BTreeMap<String, ProgTypeChoice>,
    /// Map sizes set by user space, by map name (libbpf's `bpf_map__set_max_entries`): what
    /// maps with `max_entries` 0 in the object need.
    pub map_sizes: BTreeMap<String, u32>,
    /// Check only what libbpf checks when it opens an object (`bpf_object__open`), not what
    /// loading it needs: a map that needs a size may have none (`max_entries` 0), and a strong
    /// kconfig extern may have no value (it reads 0). `bpflab inspect` and `disasm` load so, to
    /// show the object as it is; engines then refuse to create such a map.
    pub open_only: bool,
    /// The kernel configuration `__kconfig` externs read (`CONFIG_HZ` → `250`, `CONFIG_BPF`
    /// → `y`, as a `.config` spells the values; see [`parse_kconfig`]). A `LINUX_*` entry
    /// overrides libbpf's own value for that extern. When empty, `CONFIG_*` externs read the
    /// running system's configuration as libbpf does ([`system_kconfig`]).
    pub kconfig: BTreeMap<String, String>,
    /// The `LINUX_KERNEL_VERSION` kconfig externs read (`KERNEL_VERSION(a,b,c)`); the running
    /// kernel's when `None`, as libbpf does.
    pub kernel_version: Option<u32>,
}

impl Default for LoadOptions {
    fn default() -> LoadOptions {
        LoadOptions {
            object_name: "obj".into(),
            target_btf: TargetBtf::Running,
            text_programs: false,
            prog_types: BTreeMap::new(),
            map_sizes: BTreeMap::new(),
            open_only: false,
            kconfig: BTreeMap::new(),
            kernel_version: None,
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
    /// The `__kconfig` externs, in their `.kconfig` map's layout, with the values they got.
    pub kconfig: Vec<KconfigExtern>,
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
    /// Whether the program has a type: its section name is one libbpf knows, or the user set
    /// one ([`LoadOptions::prog_types`], [`Object::set_prog_type`]). Programs without one
    /// have [`ProgType::Unspec`] and must not run (see [`Object::check_runnable`]).
    pub type_known: bool,
    /// Whether libbpf loads the program by default: not for `SEC("?...")` sections, whose
    /// `?` [`Program::section`] drops as libbpf does.
    pub autoload: bool,
}

/// Loads an eBPF ELF object.
pub fn load(bytes: &[u8], opts: &LoadOptions) -> Result<Object, LoadError> {
    let elf = elf::parse(bytes)?;
    let license = read_license(&elf)?;
    let kernel_version = read_version(&elf)?;

    // Like libbpf, everything after opening (maps, CO-RE, func/line info) sees the BTF with
    // its DATASECs and externs fixed up.
    let mut externs = externs::Externs::default();
    let (btf_bytes, btf) = match elf.section_by_name(".BTF") {
        Some(s) => {
            let raw = Btf::parse(s.data)
                .map_err(|error| LoadError::Btf { section: ".BTF".into(), error })?;
            externs = externs::collect(&elf, Some(&raw))?;
            let bytes = btffix::for_kernel(s.data, &raw, &elf, &externs)?;
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
    let kconfig_map = if externs.kconfig.is_empty() {
        None
    } else {
        let data = externs::kconfig_data(
            &mut externs,
            &opts.kconfig,
            opts.kernel_version,
            opts.open_only,
        )?;
        Some(maps::kconfig_map(&mut maps, &opts.object_name, data, externs.kconfig_datasec)?)
    };
    maps::set_sizes(&mut maps, &opts.map_sizes)?;
    if !opts.open_only {
        maps::check_sizes(&maps)?;
    }
    let mut code = code::collect(&elf)?;
    let target = core::LazyTarget::new(&opts.target_btf);
    let core_relocations = match (&btf, &ext) {
        (Some(b), Some(e)) => core::apply(&mut code, b, e, &target)?,
        _ => Vec::new(),
    };
    let kfunc = |name: &str| target.kfunc_id(name);
    let ksym = |k: &externs::KsymExtern| resolve_ksym(&target, k);
    let extern_refs =
        reloc::ExternRefs { externs: &externs, kconfig_map, ksym: &ksym, kfunc: &kfunc };
    let (targets, relocations) = reloc::apply(&elf, &mut code, &mut maps, &extern_refs)?;

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
                section: secdef::libbpf_section_name(&cs.name).to_owned(),
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
                type_known: !std::ptr::eq(kind.def, &secdef::UNKNOWN_DEF),
                autoload: secdef::autoload(&cs.name),
            });
        }
    }

    let mut object = Object {
        collection: Collection { maps: maps.specs, programs, btf: btf_bytes, kfuncs },
        license,
        kernel_version,
        btf,
        programs: infos,
        maps: maps.infos,
        relocations,
        core_relocations,
        kconfig: externs.kconfig,
    };
    for (name, choice) in &opts.prog_types {
        object.set_prog_type(name, choice)?;
    }
    Ok(object)
}

impl Object {
    /// Sets program `name`'s type (libbpf's `bpf_program__set_type`; a choice parsed from a
    /// section name also sets the expected attach type, target and load flags that section
    /// implies). As in libbpf, which forgets the section's definition, the load flags the old
    /// section implied are dropped; its expected attach type and target are replaced too (libbpf
    /// keeps the expected attach type until `bpf_program__set_expected_attach_type`).
    pub fn set_prog_type(&mut self, name: &str, choice: &ProgTypeChoice) -> Result<(), LoadError> {
        let index = self.program_index(name)?;
        let program = &mut self.collection.programs[index];
        program.prog_type = choice.prog_type;
        program.expected_attach_type = choice.expected_attach_type;
        program.attach_to = choice.attach_to.clone();
        program.flags = choice.flags;
        self.programs[index].type_known = true;
        Ok(())
    }

    /// The index of program `name` in the collection, or an error listing the programs.
    pub fn program_index(&self, name: &str) -> Result<usize, LoadError> {
        self.collection.programs.iter().position(|p| p.name == name).ok_or_else(|| {
            LoadError::UnknownProgram {
                name: name.to_owned(),
                programs: self.collection.programs.iter().map(|p| p.name.clone()).collect(),
            }
        })
    }

    /// Whether program `index` may run: a program in a section libbpf does not know has no
    /// type until one is set, and running it is an error (libbpf refuses to load it with
    /// "missing BPF prog type"), not raw mode.
    pub fn check_runnable(&self, index: usize) -> Result<(), LoadError> {
        match (self.programs.get(index), self.collection.programs.get(index)) {
            (Some(info), Some(_)) if info.type_known => Ok(()),
            (Some(info), Some(p)) => Err(LoadError::UntypedProgram {
                name: p.name.clone(),
                section: info.section.clone(),
            }),
            _ => Err(LoadError::UnknownProgram {
                name: format!("#{index}"),
                programs: self.collection.programs.iter().map(|p| p.name.clone()).collect(),
            }),
        }
    }
}

/// Resolves a `__ksym` extern like libbpf's `bpf_object__resolve_externs`: a typed variable or
/// a function (an address taken, `bpf_ksym_exists`) by BTF id in the target BTF; a typeless
/// variable by address in the running kernel's `/proc/kallsyms`; a weak one the target lacks
/// is [`KsymValue::Missing`].
fn resolve_ksym(
    target: &core::LazyTarget<'_>,
    k: &externs::KsymExtern,
) -> Result<KsymValue, String> {
    let found = if k.is_func || k.type_id != 0 {
        target.find(&k.name, externs::target_kind(k)).map(KsymValue::BtfId)
    } else if target.is_running() {
        externs::kallsyms_address(&k.name)
            .filter(|&a| a != 0)
            .map(KsymValue::Address)
            .ok_or_else(|| "not in /proc/kallsyms (or its addresses are hidden)".to_owned())
    } else {
        Err("typeless ksyms resolve through the running kernel's /proc/kallsyms only".to_owned())
    };
    match found {
        Ok(v) => Ok(v),
        Err(_) if k.weak => Ok(KsymValue::Missing),
        Err(e) => Err(e),
    }
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
