//! The ELF layer: header checks, sections with bounds-checked data, symbols and REL
//! relocation tables, read with goblin.

use goblin::elf::{Elf, header, section_header as sh, sym};

use crate::error::{LoadError, SectionRef};

/// `e_machine` of eBPF objects.
pub(crate) const EM_BPF: u16 = 247;

/// One section header with its bytes.
#[derive(Debug)]
pub(crate) struct Section<'a> {
    /// Index in the section header table.
    pub(crate) index: usize,
    /// Name from the section header string table.
    pub(crate) name: String,
    /// `sh_type`.
    pub(crate) sh_type: u32,
    /// `sh_flags`.
    pub(crate) flags: u64,
    /// `sh_size` (for NOBITS sections, the size of the zeroes).
    pub(crate) size: u64,
    /// `sh_info` (for REL sections, the section the relocations apply to).
    pub(crate) info: u32,
    /// The section's bytes (empty for NOBITS).
    pub(crate) data: &'a [u8],
}

impl Section<'_> {
    /// The section as errors name it.
    pub(crate) fn as_ref(&self) -> SectionRef {
        SectionRef { index: self.index, name: self.name.clone() }
    }

    /// Whether the section holds code (PROGBITS with SHF_EXECINSTR).
    pub(crate) fn is_code(&self) -> bool {
        self.sh_type == sh::SHT_PROGBITS && self.flags & u64::from(sh::SHF_EXECINSTR) != 0
    }
}

/// One symbol table entry.
#[derive(Clone, Debug)]
pub(crate) struct Symbol {
    /// Index in the symbol table.
    pub(crate) index: usize,
    /// Name from the string table (empty if none).
    pub(crate) name: String,
    /// `st_shndx`.
    pub(crate) shndx: usize,
    /// `st_value`: the byte offset within the section, for relocatable objects.
    pub(crate) value: u64,
    /// `st_size`.
    pub(crate) size: u64,
    /// `ELF64_ST_TYPE`.
    pub(crate) kind: u8,
    /// `ELF64_ST_BIND`.
    pub(crate) bind: u8,
    /// `ELF64_ST_VISIBILITY` (`STV_*`, the low two bits of `st_other`).
    pub(crate) visibility: u8,
}

impl Symbol {
    /// A function symbol.
    pub(crate) fn is_func(&self) -> bool {
        self.kind == sym::STT_FUNC
    }

    /// A section symbol (the addend is then in the instruction).
    pub(crate) fn is_section(&self) -> bool {
        self.kind == sym::STT_SECTION
    }

    /// Local binding (`static`).
    pub(crate) fn is_local(&self) -> bool {
        self.bind == sym::STB_LOCAL
    }

    /// Undefined (an extern).
    pub(crate) fn is_undefined(&self) -> bool {
        self.shndx == sh::SHN_UNDEF as usize
    }

    /// Global or weak binding.
    pub(crate) fn is_global_or_weak(&self) -> bool {
        self.bind == sym::STB_GLOBAL || self.bind == sym::STB_WEAK
    }

    /// `STV_HIDDEN` or `STV_INTERNAL` visibility: not visible outside the object, which
    /// libbpf treats like `static` (`__hidden`).
    pub(crate) fn is_hidden(&self) -> bool {
        self.visibility == sym::STV_HIDDEN || self.visibility == sym::STV_INTERNAL
    }
}

/// One REL entry.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rel {
    /// `r_offset`: byte offset in the target section.
    pub(crate) offset: u64,
    /// Symbol index.
    pub(crate) sym: usize,
    /// Relocation type (`R_BPF_*`).
    pub(crate) r_type: u32,
}

/// A relocation table and the section it applies to.
#[derive(Debug)]
pub(crate) struct RelSection {
    /// Index of the section the relocations patch.
    pub(crate) target: usize,
    /// The entries.
    pub(crate) rels: Vec<Rel>,
}

/// The parts of an ELF object the loader reads.
#[derive(Debug)]
pub(crate) struct ElfObject<'a> {
    /// Every section, by index.
    pub(crate) sections: Vec<Section<'a>>,
    /// Every symbol, by index.
    pub(crate) symbols: Vec<Symbol>,
    /// Every REL section.
    pub(crate) relocations: Vec<RelSection>,
}

impl<'a> ElfObject<'a> {
    /// The section named `name`, if any.
    pub(crate) fn section_by_name(&self, name: &str) -> Option<&Section<'a>> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// The section at `index` as errors name it (a placeholder when out of range).
    pub(crate) fn section_ref(&self, index: usize) -> SectionRef {
        self.sections
            .get(index)
            .map(Section::as_ref)
            .unwrap_or(SectionRef { index, name: String::new() })
    }
}

/// Checks the identification bytes goblin would accept but the loader does not.
fn check_ident(bytes: &[u8]) -> Result<(), LoadError> {
    if bytes.len() < header::SIZEOF_IDENT || &bytes[..4] != header::ELFMAG {
        return Err(LoadError::Elf("missing ELF magic or truncated identification".into()));
    }
    let class = bytes[header::EI_CLASS];
    if class != header::ELFCLASS64 {
        return Err(LoadError::NotElf64 { class });
    }
    match bytes[header::EI_DATA] {
        header::ELFDATA2LSB => Ok(()),
        header::ELFDATA2MSB => Err(LoadError::BigEndian),
        other => Err(LoadError::Elf(format!("unknown data encoding {other}"))),
    }
}

/// Parses and checks an eBPF object's ELF structure.
pub(crate) fn parse(bytes: &[u8]) -> Result<ElfObject<'_>, LoadError> {
    check_ident(bytes)?;
    let elf = Elf::parse(bytes).map_err(|e| LoadError::Elf(e.to_string()))?;
    if elf.header.e_machine != EM_BPF {
        return Err(LoadError::NotBpf { machine: elf.header.e_machine });
    }
    if elf.header.e_type != header::ET_REL {
        return Err(LoadError::NotRelocatable { e_type: elf.header.e_type });
    }

    let mut sections = Vec::with_capacity(elf.section_headers.len());
    for (index, shdr) in elf.section_headers.iter().enumerate() {
        let name = elf.shdr_strtab.get_at(shdr.sh_name).unwrap_or_default().to_owned();
        let data: &[u8] = if shdr.sh_type == sh::SHT_NOBITS || shdr.sh_type == sh::SHT_NULL {
            &[]
        } else {
            let range = usize::try_from(shdr.sh_offset).ok().and_then(|start| {
                let len = usize::try_from(shdr.sh_size).ok()?;
                start.checked_add(len).map(|end| start..end)
            });
            match range.and_then(|r| bytes.get(r)) {
                Some(d) => d,
                None => {
                    return Err(LoadError::SectionOutOfRange {
                        section: SectionRef { index, name },
                        offset: shdr.sh_offset,
                        size: shdr.sh_size,
                        file_len: bytes.len(),
                    });
                }
            }
        };
        sections.push(Section {
            index,
            name,
            sh_type: shdr.sh_type,
            flags: shdr.sh_flags,
            size: shdr.sh_size,
            info: shdr.sh_info,
            data,
        });
    }

    let symbols = elf
        .syms
        .iter()
        .enumerate()
        .map(|(index, s)| Symbol {
            index,
            name: elf.strtab.get_at(s.st_name).unwrap_or_default().to_owned(),
            shndx: s.st_shndx,
            value: s.st_value,
            size: s.st_size,
            kind: s.st_type(),
            bind: s.st_bind(),
            visibility: s.st_visibility(),
        })
        .collect();

    let mut relocations = Vec::new();
    for (rel_index, table) in &elf.shdr_relocs {
        let Some(rel_section) = sections.get(*rel_index) else { continue };
        if rel_section.sh_type == sh::SHT_RELA {
            return Err(LoadError::BadRelocation {
                section: rel_section.as_ref(),
                offset: 0,
                reason: "RELA relocation sections are not used by eBPF objects".into(),
            });
        }
        let target = rel_section.info as usize;
        if target >= sections.len() {
            return Err(LoadError::BadSectionIndex {
                section: rel_section.as_ref(),
                target,
                count: sections.len(),
            });
        }
        let rels = table
            .iter()
            .map(|r| Rel { offset: r.r_offset, sym: r.r_sym, r_type: r.r_type })
            .collect();
        relocations.push(RelSection { target, rels });
    }

    Ok(ElfObject { sections, symbols, relocations })
}
