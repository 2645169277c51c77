//! Code sections: which executable sections hold programs, and the functions (programs and
//! subprograms) their symbols delimit.

use std::collections::HashMap;

use bpflab_vm::isa::RawInsn;

use crate::elf::{ElfObject, Section};
use crate::error::LoadError;
use crate::secdef::{self, SectionKind};

/// Name of the section holding subprograms (static and global non-entry functions).
pub(crate) const TEXT: &str = ".text";

/// One function: an entry-point program or a subprogram.
#[derive(Clone, Debug)]
pub(crate) struct Func {
    /// The symbol's name.
    pub(crate) name: String,
    /// The symbol's index.
    pub(crate) symbol: usize,
    /// First slot within the section.
    pub(crate) start: usize,
    /// Number of slots.
    pub(crate) len: usize,
}

/// An executable section, its slots and its functions.
#[derive(Debug)]
pub(crate) struct CodeSection {
    /// Section index.
    pub(crate) index: usize,
    /// Section name.
    pub(crate) name: String,
    /// What the name means (`None` for `.text`).
    pub(crate) kind: Option<SectionKind>,
    /// The section's instruction slots (patched in place by CO-RE and data relocations).
    pub(crate) slots: Vec<RawInsn>,
    /// Its functions, by start slot.
    pub(crate) funcs: Vec<Func>,
}

impl CodeSection {
    /// The function starting at `slot`, if any.
    pub(crate) fn func_at(&self, slot: usize) -> Option<usize> {
        self.funcs.binary_search_by_key(&slot, |f| f.start).ok()
    }

    /// The function containing `slot`, if any.
    pub(crate) fn func_containing(&self, slot: usize) -> Option<usize> {
        let i = self.funcs.partition_point(|f| f.start <= slot).checked_sub(1)?;
        let f = &self.funcs[i];
        (slot < f.start + f.len).then_some(i)
    }
}

/// All code sections, by section index.
#[derive(Debug, Default)]
pub(crate) struct Code {
    /// The sections, in section index order.
    pub(crate) sections: Vec<CodeSection>,
    /// Position in `sections` of each section index.
    pub(crate) by_index: HashMap<usize, usize>,
}

impl Code {
    /// The code section with this ELF section index.
    pub(crate) fn get(&self, index: usize) -> Option<&CodeSection> {
        self.by_index.get(&index).map(|&i| &self.sections[i])
    }

    /// The code section with this ELF section index, mutably.
    pub(crate) fn get_mut(&mut self, index: usize) -> Option<&mut CodeSection> {
        self.by_index.get(&index).map(|&i| &mut self.sections[i])
    }
}

/// Finds every code section and its functions.
pub(crate) fn collect(elf: &ElfObject<'_>) -> Result<Code, LoadError> {
    let mut code = Code::default();
    for section in &elf.sections {
        if !section.is_code() || section.size == 0 {
            continue;
        }
        // A section name libbpf does not know still holds programs: their type stays unknown
        // (BPF_PROG_TYPE_UNSPEC) until the user sets one, as with `bpf_program__set_type`.
        let kind = if section.name == TEXT {
            None
        } else {
            Some(secdef::classify(&section.name).unwrap_or(SectionKind {
                def: &secdef::UNKNOWN_DEF,
                prog_type: bpflab_vm::ProgType::Unspec,
                expected_attach_type: None,
                attach_to: None,
            }))
        };
        let slots = RawInsn::parse_all(section.data).map_err(|error| LoadError::Decode {
            section: section.as_ref(),
            offset: (section.data.len() / RawInsn::SIZE * RawInsn::SIZE) as u64,
            error,
        })?;
        let funcs = functions(elf, section, kind.is_some())?;
        code.by_index.insert(section.index, code.sections.len());
        code.sections.push(CodeSection {
            index: section.index,
            name: section.name.clone(),
            kind,
            slots,
            funcs,
        });
    }
    Ok(code)
}

/// The function symbols of one code section, checked and sorted.
fn functions(
    elf: &ElfObject<'_>,
    section: &Section<'_>,
    is_program_section: bool,
) -> Result<Vec<Func>, LoadError> {
    let mut funcs = Vec::new();
    for sym in elf.symbols.iter().filter(|s| s.is_func() && s.shndx == section.index) {
        let bad = |reason: &str| LoadError::BadSymbol {
            section: section.as_ref(),
            symbol: sym.index,
            name: sym.name.clone(),
            value: sym.value,
            size: sym.size,
            reason: reason.into(),
        };
        if !sym.value.is_multiple_of(8) || !sym.size.is_multiple_of(8) {
            return Err(bad("function offset and size must be multiples of 8"));
        }
        if sym.size == 0 {
            return Err(bad("function has size 0"));
        }
        if sym.value.checked_add(sym.size).is_none_or(|end| end > section.size) {
            return Err(bad("function extends past the end of its section"));
        }
        if is_program_section && sym.is_local() {
            return Err(LoadError::StaticProgram {
                name: sym.name.clone(),
                section: section.as_ref(),
            });
        }
        funcs.push(Func {
            name: sym.name.clone(),
            symbol: sym.index,
            start: (sym.value / 8) as usize,
            len: (sym.size / 8) as usize,
        });
    }
    funcs.sort_by_key(|f| f.start);
    for pair in funcs.windows(2) {
        if pair[0].start + pair[0].len > pair[1].start {
            return Err(LoadError::BadSymbol {
                section: section.as_ref(),
                symbol: pair[1].symbol,
                name: pair[1].name.clone(),
                value: pair[1].start as u64 * 8,
                size: pair[1].len as u64 * 8,
                reason: format!("overlaps function '{}'", pair[0].name),
            });
        }
    }
    Ok(funcs)
}
