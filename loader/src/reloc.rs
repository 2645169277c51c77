//! ELF relocations (`.rel<section>`): map and global-data references are patched into the
//! code sections' LD_IMM64 instructions; calls and function addresses are recorded for the
//! linker; `.rel.maps` fills prog-array and map-of-maps initial values.
//!
//! Relocations of every other section are ignored, like libbpf ignores them: the
//! `R_BPF_64_ABS64` / `R_BPF_64_ABS32` entries clang emits for `.BTF`, `.BTF.ext` and the
//! DWARF sections only matter to debuggers and static linkers, and data sections of an
//! unlinked object hold no pointers a loader could resolve.

use std::collections::HashMap;

use bpflab_vm::isa::{PseudoSrc, RawInsn};
use goblin::elf::section_header as sh;

use crate::code::Code;
use crate::elf::{ElfObject, Rel, RelSection, Symbol};
use crate::error::LoadError;
use crate::externs::{Externs, KsymExtern};
use crate::maps::{BTF_MAPS, LEGACY_MAPS, MapInitValue, Maps};

/// `R_BPF_64_64`: a 64-bit immediate load (LD_IMM64).
pub const R_BPF_64_64: u32 = 1;
/// `R_BPF_64_ABS64`: a 64-bit absolute address in data (`.maps` values, debug info).
pub const R_BPF_64_ABS64: u32 = 2;
/// `R_BPF_64_ABS32`: a 32-bit absolute address in data (debug info).
pub const R_BPF_64_ABS32: u32 = 3;
/// `R_BPF_64_32`: a call's 32-bit immediate.
pub const R_BPF_64_32: u32 = 10;

/// Opcode of LD_IMM64 (`BPF_LD | BPF_IMM | BPF_DW`).
pub(crate) const OP_LD_IMM64: u8 = 0x18;
/// Opcode of CALL (`BPF_JMP | BPF_CALL`).
pub(crate) const OP_CALL: u8 = 0x85;

/// What one relocation did, for `bpflab inspect`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelocationInfo {
    /// The section the relocation applies to.
    pub section: String,
    /// Byte offset within that section.
    pub offset: u64,
    /// The symbol's name (the section's name for section symbols).
    pub symbol: String,
    /// The ELF relocation type (`R_BPF_*`).
    pub r_type: u32,
    /// What it resolved to.
    pub kind: RelocationKind,
}

/// What a relocation resolved to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RelocationKind {
    /// LD_IMM64 of a map: `map_idx`.
    Map {
        /// Index into the collection's maps.
        map: usize,
    },
    /// LD_IMM64 of an address in global data: `map_idx_value`.
    MapValue {
        /// Index into the collection's maps.
        map: usize,
        /// Byte offset within the map's value.
        offset: u32,
    },
    /// A bpf-to-bpf call.
    Call {
        /// The called function.
        target: String,
    },
    /// LD_IMM64 of a function's address (a callback, `BPF_PSEUDO_FUNC`).
    FuncAddr {
        /// The function.
        target: String,
    },
    /// A call to a kernel function, resolved to its BTF id in the target BTF.
    Kfunc {
        /// The BTF id.
        btf_id: u32,
    },
    /// A `__ksym` extern: a kernel variable (or a kfunc's address) by BTF id, a typeless
    /// symbol's address, or a weak extern the kernel lacks.
    Ksym {
        /// What it resolved to.
        value: KsymValue,
    },
    /// An initial value of a prog array or map of maps (in `.maps`).
    MapInit {
        /// Index into the collection's maps.
        map: usize,
        /// The array slot.
        slot: u32,
    },
}

/// What a `__ksym` extern resolved to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KsymValue {
    /// Its BTF id in the target BTF: the LD_IMM64 becomes `BPF_PSEUDO_BTF_ID` (typed ksyms).
    BtfId(u32),
    /// Its address (typeless ksyms, from `/proc/kallsyms`): a plain 64-bit immediate.
    Address(u64),
    /// A weak extern the target lacks: the LD_IMM64 loads 0 and a call becomes libbpf's
    /// poisoned `call` ([`POISON_KFUNC_CALL`] + index), which faults only if it runs.
    Missing,
}

/// libbpf's `POISON_CALL_KFUNC_BASE`: the helper id a call to a missing weak kfunc gets (plus
/// the extern's index).
pub const POISON_KFUNC_CALL: i32 = 2002000000;

/// How the relocations resolve externs: the object's externs, the `.kconfig` map, and a
/// resolver for `__ksym` variables.
pub(crate) struct ExternRefs<'r> {
    /// The object's externs.
    pub(crate) externs: &'r Externs,
    /// Index of the `.kconfig` map, when the object has kconfig externs.
    pub(crate) kconfig_map: Option<usize>,
    /// Resolves a `__ksym` extern (an `Err` names why a strong one cannot be).
    pub(crate) ksym: &'r dyn Fn(&KsymExtern) -> Result<KsymValue, String>,
    /// Resolves kfunc calls by name.
    pub(crate) kfunc: &'r KfuncResolver<'r>,
}

/// Where a call or function address in a code section points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Target {
    /// ELF section index of the callee.
    pub section: usize,
    /// First slot of the callee.
    pub slot: usize,
}

/// Resolved call and function-address relocations, by (section index, slot).
pub(crate) type CallTargets = HashMap<(usize, usize), Target>;

/// Resolves kfunc names to BTF ids (the target BTF), when there is one.
pub(crate) type KfuncResolver<'r> = dyn Fn(&str) -> Result<u32, String> + 'r;

/// Applies every relocation that targets a code section or `.maps`.
pub(crate) fn apply(
    elf: &ElfObject<'_>,
    code: &mut Code,
    maps: &mut Maps,
    externs: &ExternRefs<'_>,
) -> Result<(CallTargets, Vec<RelocationInfo>), LoadError> {
    let mut targets = CallTargets::new();
    let mut infos = Vec::new();
    for table in &elf.relocations {
        if code.get(table.target).is_some() {
            for rel in &table.rels {
                let info = code_reloc(elf, code, maps, table, rel, externs, &mut targets)?;
                infos.push(info);
            }
        } else if elf.sections.get(table.target).is_some_and(|s| s.name == BTF_MAPS) {
            for rel in &table.rels {
                infos.push(maps_reloc(elf, code, maps, table, rel)?);
            }
        }
        // Relocations of other sections (.BTF, .BTF.ext, DWARF) only matter to debuggers
        // and linkers: libbpf ignores them too.
    }
    Ok((targets, infos))
}

fn symbol<'e>(
    elf: &'e ElfObject<'_>,
    table: &RelSection,
    rel: &Rel,
) -> Result<&'e Symbol, LoadError> {
    elf.symbols.get(rel.sym).ok_or_else(|| LoadError::SymbolOutOfRange {
        section: elf.section_ref(table.target),
        offset: rel.offset,
        symbol: rel.sym,
        count: elf.symbols.len(),
    })
}

fn symbol_name(elf: &ElfObject<'_>, sym: &Symbol) -> String {
    if sym.is_section() {
        elf.sections.get(sym.shndx).map(|s| s.name.clone()).unwrap_or_default()
    } else {
        sym.name.clone()
    }
}

/// One relocation in a code section.
fn code_reloc(
    elf: &ElfObject<'_>,
    code: &mut Code,
    maps: &Maps,
    table: &RelSection,
    rel: &Rel,
    externs: &ExternRefs<'_>,
    targets: &mut CallTargets,
) -> Result<RelocationInfo, LoadError> {
    let bad = |reason: String| LoadError::BadRelocation {
        section: elf.section_ref(table.target),
        offset: rel.offset,
        reason,
    };
    let sym = symbol(elf, table, rel)?;
    let name = symbol_name(elf, sym);
    let section = code.get(table.target).ok_or_else(|| bad("not a code section".into()))?;
    if !rel.offset.is_multiple_of(8) {
        return Err(bad("offset is not a multiple of 8".into()));
    }
    let slot = usize::try_from(rel.offset / 8).unwrap_or(usize::MAX);
    let Some(&insn) = section.slots.get(slot) else {
        return Err(bad(format!(
            "offset is outside the section ({} bytes)",
            section.slots.len() * 8
        )));
    };
    if section.func_containing(slot).is_none() {
        return Err(bad("offset is not inside any function".into()));
    }
    let nslots = section.slots.len();
    let section_name = section.name.clone();
    let info = |kind| RelocationInfo {
        section: section_name.clone(),
        offset: rel.offset,
        symbol: name.clone(),
        r_type: rel.r_type,
        kind,
    };

    if insn.code == OP_CALL {
        if sym.is_undefined() {
            // clang emits `call -1` (src = BPF_PSEUDO_CALL) against the extern; like libbpf's
            // RELO_EXTERN_CALL it becomes a kfunc call by BTF id.
            if insn.src != 1 && insn.src != 2 {
                return Err(bad(format!("call to extern '{name}' is a helper call")));
            }
            let btf_id = match (externs.kfunc)(&name) {
                Ok(id) => id,
                // libbpf's poison_kfunc_call: a weak kfunc the kernel lacks may be called only
                // on a path `bpf_ksym_exists()` rules out.
                Err(_) if sym.bind == goblin::elf::sym::STB_WEAK => {
                    let index = externs.externs.ksyms.keys().position(|k| *k == name);
                    let s = code.get_mut(table.target).ok_or_else(|| bad("no code".into()))?;
                    s.slots[slot].src = 0;
                    s.slots[slot].off = 0;
                    s.slots[slot].imm = POISON_KFUNC_CALL.saturating_add(index.unwrap_or(0) as i32);
                    return Ok(info(RelocationKind::Ksym { value: KsymValue::Missing }));
                }
                Err(reason) => {
                    return Err(LoadError::UnresolvedExtern {
                        section: elf.section_ref(table.target),
                        offset: rel.offset,
                        name: name.clone(),
                        reason,
                    });
                }
            };
            let s = code.get_mut(table.target).ok_or_else(|| bad("no code".into()))?;
            s.slots[slot].src = 2;
            s.slots[slot].imm = btf_id as i32;
            s.slots[slot].off = 0;
            return Ok(info(RelocationKind::Kfunc { btf_id }));
        }
        if insn.src != 1 {
            return Err(bad(format!("call relocation against '{name}' on a non-local call")));
        }
        let callee = code.get(sym.shndx).ok_or_else(|| {
            bad(format!("call relocation against '{name}' outside a code section"))
        })?;
        if !sym.value.is_multiple_of(8) {
            return Err(bad(format!("call target '{name}' is at a misaligned offset")));
        }
        let target = (sym.value / 8) as i64 + i64::from(insn.imm) + 1;
        let target_slot =
            usize::try_from(target).ok().filter(|&t| callee.func_at(t).is_some()).ok_or_else(
                || bad(format!("call target slot {target} in '{}' is not a function", callee.name)),
            )?;
        let fname = callee.funcs[callee.func_at(target_slot).unwrap_or(0)].name.clone();
        targets.insert((table.target, slot), Target { section: sym.shndx, slot: target_slot });
        return Ok(info(RelocationKind::Call { target: fname }));
    }

    if insn.code != OP_LD_IMM64 {
        return Err(bad(format!(
            "relocation against '{name}' on opcode {:#04x}, not a LD_IMM64 or call",
            insn.code
        )));
    }
    if slot + 1 >= nslots {
        return Err(bad("LD_IMM64 is missing its second slot".into()));
    }
    if sym.is_undefined() {
        return extern_ld64(elf, code, table, rel, slot, externs, &name).map(info);
    }
    if sym.shndx >= sh::SHN_LORESERVE as usize {
        return Err(bad(format!("'{name}' is in special section {:#x}", sym.shndx)));
    }

    // The address of a function: a callback for bpf_loop and friends.
    if let Some(callee) = code.get(sym.shndx) {
        if !(sym.is_section() || sym.is_func()) {
            return Err(bad(format!(
                "'{name}' in '{}' is not a function or section symbol",
                callee.name
            )));
        }
        let byte = sym.value as i64 + i64::from(insn.imm);
        let target_slot = usize::try_from(byte / 8)
            .ok()
            .filter(|&t| byte % 8 == 0 && callee.func_at(t).is_some())
            .ok_or_else(|| {
                bad(format!("function address {byte:#x} in '{}' is not a function", callee.name))
            })?;
        let fname = callee.funcs[callee.func_at(target_slot).unwrap_or(0)].name.clone();
        targets.insert((table.target, slot), Target { section: sym.shndx, slot: target_slot });
        return Ok(info(RelocationKind::FuncAddr { target: fname }));
    }

    let in_maps_section =
        elf.sections.get(sym.shndx).is_some_and(|s| s.name == BTF_MAPS || s.name == LEGACY_MAPS);
    let s = code.get_mut(table.target).ok_or_else(|| bad("no code".into()))?;
    if in_maps_section {
        let &map = maps.by_symbol.get(&(sym.shndx, sym.value)).ok_or_else(|| {
            bad(format!("no map is defined at '{name}' (offset {:#x})", sym.value))
        })?;
        s.slots[slot].src = PseudoSrc::MapIdx.code();
        s.slots[slot].imm = map as i32;
        return Ok(info(RelocationKind::Map { map }));
    }
    if let Some(&map) = maps.by_section.get(&sym.shndx) {
        let offset = s.slots[slot].imm.wrapping_add(sym.value as i32);
        s.slots[slot].src = PseudoSrc::MapIdxValue.code();
        s.slots[slot].imm = map as i32;
        s.slots[slot + 1].imm = offset;
        return Ok(info(RelocationKind::MapValue { map, offset: offset as u32 }));
    }
    let sym_section = elf.sections.get(sym.shndx).map(|s| s.name.as_str()).unwrap_or("");
    Err(bad(format!(
        "'{name}' is in section '{sym_section}', which holds no map, global data or code"
    )))
}

/// A LD_IMM64 of an extern (libbpf's `RELO_EXTERN_LD64`): a kconfig extern becomes a
/// `map_idx_value` into the `.kconfig` map at the extern's offset; a ksym a BTF id
/// (`BPF_PSEUDO_BTF_ID`) or an address.
fn extern_ld64(
    elf: &ElfObject<'_>,
    code: &mut Code,
    table: &RelSection,
    rel: &Rel,
    slot: usize,
    externs: &ExternRefs<'_>,
    name: &str,
) -> Result<RelocationKind, LoadError> {
    let fail = |reason: String| LoadError::UnresolvedExtern {
        section: elf.section_ref(table.target),
        offset: rel.offset,
        name: name.to_owned(),
        reason,
    };
    let s = code.get_mut(table.target).ok_or_else(|| fail("not a code section".into()))?;
    if let Some(k) = externs.externs.kconfig(name) {
        let map = externs.kconfig_map.ok_or_else(|| fail("no .kconfig map".into()))?;
        s.slots[slot].src = PseudoSrc::MapIdxValue.code();
        s.slots[slot].imm = map as i32;
        s.slots[slot + 1].imm = k.offset as i32;
        return Ok(RelocationKind::MapValue { map, offset: k.offset });
    }
    let Some(k) = externs.externs.ksyms.get(name) else {
        return Err(fail("no BTF describes it as a __kconfig or __ksym extern".into()));
    };
    let value = (externs.ksym)(k).map_err(fail)?;
    let (src, lo, hi) = match value {
        KsymValue::BtfId(id) => (PseudoSrc::BtfId.code(), id as i32, 0),
        KsymValue::Address(a) => (PseudoSrc::Imm.code(), a as u32 as i32, (a >> 32) as u32 as i32),
        KsymValue::Missing => (PseudoSrc::Imm.code(), 0, 0),
    };
    s.slots[slot].src = src;
    s.slots[slot].imm = lo;
    s.slots[slot + 1].imm = hi;
    Ok(RelocationKind::Ksym { value })
}

/// One relocation in `.maps`: an initial value of a prog array or a map of maps (libbpf's
/// `bpf_object__collect_map_relos`).
fn maps_reloc(
    elf: &ElfObject<'_>,
    code: &Code,
    maps: &mut Maps,
    table: &RelSection,
    rel: &Rel,
) -> Result<RelocationInfo, LoadError> {
    let bad = |reason: String| LoadError::BadRelocation {
        section: elf.section_ref(table.target),
        offset: rel.offset,
        reason,
    };
    let sym = symbol(elf, table, rel)?;
    let name = symbol_name(elf, sym);
    if rel.r_type != R_BPF_64_ABS64 {
        return Err(bad(format!(
            "relocation type {} in .maps (expected R_BPF_64_ABS64)",
            rel.r_type
        )));
    }
    let range = maps
        .btf_ranges
        .iter()
        .find(|r| r.offset <= rel.offset && rel.offset.saturating_add(8) <= r.offset + r.size)
        .copied()
        .ok_or_else(|| bad("no map definition at this offset".into()))?;
    let values = range.values_offset.ok_or_else(|| bad("map has no 'values' member".into()))?;
    let moff = (rel.offset - range.offset)
        .checked_sub(values)
        .filter(|m| m.is_multiple_of(8))
        .ok_or_else(|| bad("offset is not a slot of the 'values' array".into()))?;
    let slot = u32::try_from(moff / 8).map_err(|_| bad("slot index too large".into()))?;
    let map_type = maps.specs[range.map].map_type;
    let is_program = map_type == bpflab_vm::MapType::ProgArray;
    let target = if is_program {
        let section = code.get(sym.shndx).filter(|s| s.kind.is_some());
        let func = section.and_then(|s| {
            let slot = usize::try_from(sym.value / 8).ok()?;
            (sym.value.is_multiple_of(8)).then(|| s.func_at(slot)).flatten().map(|i| &s.funcs[i])
        });
        func.map(|f| f.name.clone())
            .ok_or_else(|| bad(format!("'{name}' isn't an entry-point program")))?
    } else {
        if elf.sections.get(sym.shndx).is_none_or(|s| s.name != BTF_MAPS) {
            return Err(bad(format!("'{name}' isn't a BTF-defined map")));
        }
        let &m = maps
            .by_symbol
            .get(&(sym.shndx, sym.value))
            .ok_or_else(|| bad(format!("no map named '{name}'")))?;
        maps.specs[m].name.clone()
    };
    maps.infos[range.map].initial_values.push(MapInitValue { slot, target, is_program });
    Ok(RelocationInfo {
        section: BTF_MAPS.into(),
        offset: rel.offset,
        symbol: name,
        r_type: rel.r_type,
        kind: RelocationKind::MapInit { map: range.map, slot },
    })
}

/// Whether `insn` is a bpf-to-bpf call (`call` with `src = BPF_PSEUDO_CALL`).
pub(crate) fn is_local_call(insn: RawInsn) -> bool {
    insn.code == OP_CALL && insn.src == 1
}
