//! Why an object could not be loaded: every variant names where (section, offset, symbol).

use bpflab_vm::isa::DecodeError;

/// A section, as errors name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SectionRef {
    /// The section's index in the section header table.
    pub index: usize,
    /// The section's name (empty when it has none or it could not be read).
    pub name: String,
}

impl std::fmt::Display for SectionRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "section #{} '{}'", self.index, self.name)
    }
}

/// Why [`crate::load`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The bytes are not a well-formed ELF file.
    #[error("malformed ELF: {0}")]
    Elf(String),
    /// The ELF file is not 64-bit.
    #[error("unsupported ELF class {class} (only ELF64 eBPF objects are supported)")]
    NotElf64 {
        /// `e_ident[EI_CLASS]`.
        class: u8,
    },
    /// The object is big-endian (`clang -target bpfeb`).
    #[error("unsupported big-endian eBPF object (only little-endian `-target bpf`/`bpfel`)")]
    BigEndian,
    /// `e_machine` is not EM_BPF (247).
    #[error("not an eBPF object: e_machine = {machine} (EM_BPF is 247)")]
    NotBpf {
        /// The header's machine field.
        machine: u16,
    },
    /// The file is not a relocatable object (`e_type` is not ET_REL).
    #[error("unsupported ELF type {e_type}: eBPF objects are relocatable (ET_REL = 1)")]
    NotRelocatable {
        /// The header's type field.
        e_type: u16,
    },
    /// A section's bytes lie outside the file, or a section index points nowhere.
    #[error("{section}: bytes {offset:#x}+{size:#x} are outside the {file_len}-byte file")]
    SectionOutOfRange {
        /// The section.
        section: SectionRef,
        /// Its file offset.
        offset: u64,
        /// Its size.
        size: u64,
        /// The file's length.
        file_len: usize,
    },
    /// A section header names a section index that does not exist.
    #[error("{section}: refers to section #{target}, but there are only {count} sections")]
    BadSectionIndex {
        /// The section whose header holds the index.
        section: SectionRef,
        /// The index it names.
        target: usize,
        /// How many sections there are.
        count: usize,
    },
    /// A relocation names a symbol index past the end of the symbol table.
    #[error(
        "{section}: relocation at offset {offset:#x} names symbol #{symbol}, but the symbol table has {count}"
    )]
    SymbolOutOfRange {
        /// The section the relocation applies to.
        section: SectionRef,
        /// The relocation's byte offset in that section.
        offset: u64,
        /// The symbol index.
        symbol: usize,
        /// Number of symbols.
        count: usize,
    },
    /// A symbol does not fit its section, or is misaligned.
    #[error("{section}: symbol #{symbol} '{name}' at {value:#x}+{size:#x}: {reason}")]
    BadSymbol {
        /// The section the symbol is in.
        section: SectionRef,
        /// The symbol index.
        symbol: usize,
        /// The symbol's name.
        name: String,
        /// `st_value`.
        value: u64,
        /// `st_size`.
        size: u64,
        /// What is wrong.
        reason: String,
    },
    /// A relocation that cannot be applied.
    #[error("{section}: bad relocation at offset {offset:#x}: {reason}")]
    BadRelocation {
        /// The section the relocation applies to.
        section: SectionRef,
        /// The byte offset in that section.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A `static` function in a program section (libbpf refuses these too).
    #[error("{section}: program '{name}' is static; programs must be global functions")]
    StaticProgram {
        /// The function's name.
        name: String,
        /// The section.
        section: SectionRef,
    },
    /// A map definition that cannot be understood.
    #[error("map '{name}': {reason}")]
    BadMapDefinition {
        /// The map's name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The `license` section is not a NUL-terminated string.
    #[error("license section is not a NUL-terminated UTF-8 string")]
    BadLicense,
    /// The `version` section is not four bytes.
    #[error("version section has {size} bytes, expected 4")]
    BadVersion {
        /// Its size.
        size: u64,
    },
    /// The `.BTF` or `.BTF.ext` section is malformed, or a BTF query failed.
    #[error("BTF in {section}: {error}")]
    Btf {
        /// Where the BTF came from (`.BTF`, `.BTF.ext`, a file name ...).
        section: String,
        /// The BTF error.
        error: bpflab_btf::BtfError,
    },
    /// The object's BTF cannot be fixed up for the kernel the way libbpf does it (a DATASEC
    /// without its ELF section, a global variable without its symbol ...).
    #[error("BTF fix-up: {what}: {reason}")]
    BtfFixup {
        /// The type or section concerned (`DATASEC '.data'`, ...).
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// The target BTF (for CO-RE) could not be read.
    #[error("target BTF {path}: {error}")]
    TargetBtf {
        /// Where it was read from.
        path: String,
        /// What went wrong.
        error: String,
    },
    /// A CO-RE relocation that could not be resolved or applied.
    #[error("program '{program}': CO-RE relocation at instruction {insn}: {error}")]
    Core {
        /// The function (program or subprogram) holding the instruction.
        program: String,
        /// The instruction's slot index within the function's section.
        insn: usize,
        /// What went wrong.
        error: String,
    },
    /// The object has CO-RE relocations but [`crate::TargetBtf::None`] was asked for.
    #[error("the object has {count} CO-RE relocations but no target BTF was given")]
    CoreWithoutTarget {
        /// How many CO-RE relocations it has.
        count: usize,
    },
    /// An instruction that does not decode.
    #[error("{section}: byte offset {offset:#x}: {error}")]
    Decode {
        /// The section.
        section: SectionRef,
        /// The byte offset of the bad instruction within the section.
        offset: u64,
        /// The decoder's error.
        error: DecodeError,
    },
    /// A reference to an external symbol (kfunc, ksym, kconfig) the loader cannot resolve.
    #[error("{section}: offset {offset:#x}: unresolved extern '{name}': {reason}")]
    UnresolvedExtern {
        /// The section holding the reference.
        section: SectionRef,
        /// Byte offset of the instruction.
        offset: u64,
        /// The extern's name.
        name: String,
        /// Why it could not be resolved.
        reason: String,
    },
    /// A kernel configuration file that cannot be read or parsed.
    #[error("kernel configuration {path}: {reason}")]
    Kconfig {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// An extern (`__kconfig`, `__ksym`) that cannot be described or given a value.
    #[error("extern '{name}': {reason}")]
    BadExtern {
        /// The extern's name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A map whose size user space sets (`max_entries` 0 in the object, as kernel samples
    /// leave it) was not given one, and the kernel needs one.
    #[error(
        "map '{name}' ({map_type}) has max_entries 0: user space sizes it before loading; give its size with --map-size {name}=N (LoadOptions::map_sizes, libbpf's bpf_map__set_max_entries)"
    )]
    MapNeedsSize {
        /// The map's name.
        name: String,
        /// Its type's name.
        map_type: &'static str,
    },
    /// A map size was given for a map the object does not have.
    #[error("no map named '{name}' to size; the object's maps are: {}", maps.join(", "))]
    UnknownMap {
        /// The name given.
        name: String,
        /// The maps there are.
        maps: Vec<String>,
    },
    /// A program type was given for a program the object does not have.
    #[error("no program named '{name}'; the object's programs are: {}", programs.join(", "))]
    UnknownProgram {
        /// The name given.
        name: String,
        /// The programs there are.
        programs: Vec<String>,
    },
    /// A program in a section libbpf does not know was asked to run before it got a type.
    #[error(
        "program '{name}' in section '{section}' has no program type libbpf knows; pass --prog-type TYPE (LoadOptions::prog_types, libbpf's bpf_program__set_type)"
    )]
    UntypedProgram {
        /// The program's name.
        name: String,
        /// Its ELF section.
        section: String,
    },
    /// The object asks for more memory than the loader accepts (a linked program past the
    /// kernel's 1M-instruction limit, huge global data ...).
    #[error("{what} exceeds the limit of {limit}")]
    TooLarge {
        /// What is too large.
        what: String,
        /// The limit.
        limit: u64,
    },
    /// Two functions (or maps) claim the same name or place.
    #[error("duplicate {what} '{name}'")]
    Duplicate {
        /// What is duplicated (`program`, `map`).
        what: &'static str,
        /// The name.
        name: String,
    },
}
