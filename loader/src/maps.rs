//! Maps: BTF-defined maps in `.maps`, legacy `struct bpf_map_def` maps in `maps`, and the
//! global-data maps libbpf makes of `.data*`, `.rodata*` and `.bss*`.

use std::collections::HashMap;

use bpflab_btf::{Btf, BtfType, Composite, linkage};
use bpflab_vm::spec::{DataSection, MapSpec, MapType, Pinning};
use goblin::elf::section_header as sh;

use crate::elf::{ElfObject, Section};
use crate::error::LoadError;

/// `BPF_F_RDONLY_PROG`: programs may only read the map (set on `.rodata` maps).
pub const BPF_F_RDONLY_PROG: u32 = 1 << 7;
/// `BPF_F_MMAPABLE`: user space may mmap the map (global data with non-static variables).
pub const BPF_F_MMAPABLE: u32 = 1 << 10;
/// The kernel's limit on object names, including the NUL (`BPF_OBJ_NAME_LEN`).
const BPF_OBJ_NAME_LEN: usize = 16;
/// The largest global-data section accepted (far above what the kernel can create).
pub(crate) const MAX_DATA_SIZE: u64 = 1 << 28;
/// Name of the BTF-defined maps section.
pub(crate) const BTF_MAPS: &str = ".maps";
/// Name of the legacy maps section.
pub(crate) const LEGACY_MAPS: &str = "maps";

/// Where a map came from, beyond what [`MapSpec`] says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapInfo {
    /// The map's name (same as its [`MapSpec::name`]).
    pub name: String,
    /// The ELF section defining it (`.maps`, `maps`, `.data`, `.rodata.str1.1`, ...).
    pub section: String,
    /// The definition's byte offset within that section.
    pub section_offset: u64,
    /// `numa_node` from a BTF definition (0 when absent).
    pub numa_node: u32,
    /// `map_extra` from a BTF definition (0 when absent).
    pub map_extra: u64,
    /// Initial entries from a `values` array (prog arrays and maps of maps).
    pub initial_values: Vec<MapInitValue>,
}

/// One initial entry of a prog array or map-of-maps (`.values = { [i] = &x }`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapInitValue {
    /// The array slot (key).
    pub slot: u32,
    /// The program or map the slot holds, by name.
    pub target: String,
    /// Whether `target` is a program (prog arrays) or a map (maps of maps).
    pub is_program: bool,
}

/// The maps of an object and how relocations find them.
#[derive(Debug, Default)]
pub(crate) struct Maps {
    /// Map specs in collection order.
    pub(crate) specs: Vec<MapSpec>,
    /// Extra information, same order.
    pub(crate) infos: Vec<MapInfo>,
    /// BTF-defined and legacy maps by (section index, offset of the definition).
    pub(crate) by_symbol: HashMap<(usize, u64), usize>,
    /// Global data maps by section index.
    pub(crate) by_section: HashMap<usize, usize>,
    /// For each BTF map: its `.maps` VAR's range and the byte offset of a `values` member.
    pub(crate) btf_ranges: Vec<BtfMapRange>,
}

/// Where one BTF map's definition lies in `.maps`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BtfMapRange {
    /// Index into [`Maps::specs`].
    pub(crate) map: usize,
    /// Start of the definition in `.maps`.
    pub(crate) offset: u64,
    /// Size of the definition.
    pub(crate) size: u64,
    /// Offset of the `values` member within the definition, if it has one.
    pub(crate) values_offset: Option<u64>,
}

impl Maps {
    /// Adds a map; its name must be new. Ring buffer sizes are rounded up to a power-of-two
    /// number of pages, as libbpf does for every map it reads (`fill_map_from_def`, and for
    /// legacy definitions), so `max_entries 2` creates a one-page ring buffer.
    pub(crate) fn push(&mut self, mut spec: MapSpec, info: MapInfo) -> Result<usize, LoadError> {
        if self.specs.iter().any(|m| m.name == spec.name) {
            return Err(LoadError::Duplicate { what: "map", name: spec.name });
        }
        if matches!(spec.map_type, MapType::Ringbuf | MapType::UserRingbuf) {
            spec.max_entries = ringbuf_size(spec.max_entries);
        }
        self.specs.push(spec);
        self.infos.push(info);
        Ok(self.specs.len() - 1)
    }
}

fn bad(name: &str, reason: impl Into<String>) -> LoadError {
    LoadError::BadMapDefinition { name: name.to_owned(), reason: reason.into() }
}

fn map_type(name: &str, id: u32) -> Result<MapType, LoadError> {
    MapType::from_id(id).ok_or_else(|| bad(name, format!("unknown map type {id}")))
}

/// Collects every map, in libbpf's order: `.maps`, legacy `maps`, then global data sections.
pub(crate) fn collect(
    elf: &ElfObject<'_>,
    btf: Option<&Btf>,
    object_name: &str,
) -> Result<Maps, LoadError> {
    let mut maps = Maps::default();
    if let Some(section) = elf.section_by_name(BTF_MAPS) {
        let btf = btf.ok_or_else(|| bad(BTF_MAPS, "the object has a .maps section but no BTF"))?;
        btf_maps(&mut maps, elf, section, btf)?;
    }
    if let Some(section) = elf.section_by_name(LEGACY_MAPS) {
        legacy_maps(&mut maps, elf, section)?;
    }
    for section in &elf.sections {
        if let Some(kind) = data_kind(section) {
            data_map(&mut maps, section, kind, btf, object_name)?;
        }
    }
    Ok(maps)
}

/// Which kind of global data a section holds, if any (libbpf's `bpf_object__elf_collect`).
pub(crate) fn data_kind(section: &Section<'_>) -> Option<DataSection> {
    let is = |base: &str| {
        section.name == base
            || section.name.strip_prefix(base).is_some_and(|rest| rest.starts_with('.'))
    };
    if section.size == 0 {
        return None;
    }
    if section.sh_type == sh::SHT_PROGBITS && !section.is_code() {
        if is(".data") {
            return Some(DataSection::Data);
        }
        if is(".rodata") {
            return Some(DataSection::Rodata);
        }
    }
    if section.sh_type == sh::SHT_NOBITS && is(".bss") {
        return Some(DataSection::Bss);
    }
    None
}

/// libbpf's `internal_map_name`: the object name's first characters, then the section name,
/// within the kernel's 15-character limit; custom `.data.x` style sections drop the prefix.
pub fn internal_map_name(object_name: &str, section: &str) -> String {
    let max = BPF_OBJ_NAME_LEN - 1;
    let sfx_len = section.len().max(7).min(max);
    let pfx_len = if section.get(1..).is_some_and(|rest| rest.contains('.')) {
        0
    } else {
        (BPF_OBJ_NAME_LEN - sfx_len - 1).min(object_name.len())
    };
    let name: String = object_name
        .chars()
        .take(pfx_len)
        .chain(section.chars().take(sfx_len))
        .take(max)
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '.' { c } else { '_' })
        .collect();
    name
}

fn data_map(
    maps: &mut Maps,
    section: &Section<'_>,
    kind: DataSection,
    btf: Option<&Btf>,
    object_name: &str,
) -> Result<(), LoadError> {
    let name = internal_map_name(object_name, &section.name);
    if section.size > MAX_DATA_SIZE {
        return Err(LoadError::TooLarge {
            what: format!("global data section '{}' ({} bytes)", section.name, section.size),
            limit: MAX_DATA_SIZE,
        });
    }
    let size = section.size as u32;
    let bytes = match kind {
        DataSection::Bss => vec![0; size as usize],
        _ => section.data.to_vec(),
    };
    let mut spec = MapSpec::new(name.clone(), MapType::Array, 4, size, 1);
    let datasec = btf.and_then(|b| b.datasec(&section.name).map(|(id, d)| (b, id, d)));
    if let Some((btf, id, datasec)) = datasec {
        spec.btf_value_type_id = Some(id);
        // libbpf's map_is_mmapable: some variable is visible to user space (not static).
        let mmapable = datasec.vars.iter().any(|v| {
            matches!(btf.type_by_id(v.type_id), Ok(BtfType::Var { linkage: l, .. }) if *l != linkage::STATIC)
        });
        if mmapable {
            spec.flags |= BPF_F_MMAPABLE;
        }
    }
    if kind == DataSection::Rodata {
        spec.flags |= BPF_F_RDONLY_PROG;
    }
    spec.data = Some((kind, bytes));
    let info = MapInfo {
        name,
        section: section.name.clone(),
        section_offset: 0,
        numa_node: 0,
        map_extra: 0,
        initial_values: Vec::new(),
    };
    let idx = maps.push(spec, info)?;
    maps.by_section.insert(section.index, idx);
    Ok(())
}

/// Legacy `struct bpf_map_def { type, key_size, value_size, max_entries, map_flags }`, one per
/// symbol; fields past `map_flags` (iproute2's `id`, `pinning` ...) are ignored.
fn legacy_maps(
    maps: &mut Maps,
    elf: &ElfObject<'_>,
    section: &Section<'_>,
) -> Result<(), LoadError> {
    let mut syms: Vec<_> = elf
        .symbols
        .iter()
        .filter(|s| s.shndx == section.index && !s.is_section() && !s.name.is_empty())
        .collect();
    syms.sort_by_key(|s| s.value);
    let fallback_size = if syms.is_empty() { 0 } else { section.size / syms.len() as u64 };
    for sym in syms {
        let size = if sym.size == 0 { fallback_size } else { sym.size };
        let def = usize::try_from(sym.value)
            .ok()
            .zip(usize::try_from(size).ok())
            .and_then(|(start, len)| section.data.get(start..start.checked_add(len)?))
            .ok_or_else(|| {
                bad(
                    &sym.name,
                    format!("definition at {:#x}+{size:#x} is outside 'maps'", sym.value),
                )
            })?;
        if def.len() < 16 {
            return Err(bad(
                &sym.name,
                format!("definition has {} bytes, need at least 16", def.len()),
            ));
        }
        let field = |i: usize| {
            def.get(i * 4..i * 4 + 4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .unwrap_or(0)
        };
        let mut spec = MapSpec::new(
            sym.name.clone(),
            map_type(&sym.name, field(0))?,
            field(1),
            field(2),
            field(3),
        );
        spec.flags = field(4);
        let info = MapInfo {
            name: sym.name.clone(),
            section: section.name.clone(),
            section_offset: sym.value,
            numa_node: 0,
            map_extra: 0,
            initial_values: Vec::new(),
        };
        let idx = maps.push(spec, info)?;
        maps.by_symbol.insert((section.index, sym.value), idx);
    }
    Ok(())
}

/// A parsed BTF map definition struct.
#[derive(Default)]
struct BtfMapDef {
    map_type: Option<u32>,
    key_size: Option<u32>,
    value_size: Option<u32>,
    max_entries: u32,
    flags: u32,
    numa_node: u32,
    map_extra: u64,
    pinning: Pinning,
    key_type: Option<u32>,
    value_type: Option<u32>,
    inner: Option<Box<MapSpec>>,
    values_offset: Option<u64>,
}

fn btf_err(error: bpflab_btf::BtfError) -> LoadError {
    LoadError::Btf { section: ".BTF".into(), error }
}

/// `__uint(name, N)`: a pointer to an array of N elements; or `__ulong(name, N)`: an enum
/// with the single value N (libbpf's `get_map_field_int`: a value that fits in 32 bits).
fn uint_field(btf: &Btf, map: &str, field: &str, type_id: u32) -> Result<u32, LoadError> {
    let v = long_field(btf, map, field, type_id)?;
    u32::try_from(v).map_err(|_| bad(map, format!("attr '{field}': value {v} is too large")))
}

/// libbpf's `get_map_field_long`: `__uint(name, N)` (pointer to an array of N elements) or
/// `__ulong(name, N)` (an enum or enum64 whose one enumerator is N, as arena maps'
/// `map_extra` is written).
fn long_field(btf: &Btf, map: &str, field: &str, type_id: u32) -> Result<u64, LoadError> {
    let (_, ty) = btf.resolve_mods(type_id).map_err(btf_err)?;
    let target = match ty {
        BtfType::Ptr { type_id: target } => *target,
        BtfType::Enum(e) | BtfType::Enum64(e) => {
            return match e.values.as_slice() {
                [one] => Ok(one.value as u64),
                v => Err(bad(map, format!("attr '{field}': enum has {} values, not 1", v.len()))),
            };
        }
        _ => {
            let kind = ty.kind();
            return Err(bad(map, format!("attr '{field}': expected PTR or ENUM, got {kind}")));
        }
    };
    match btf.type_by_id(target).map_err(btf_err)? {
        BtfType::Array(a) => Ok(u64::from(a.nelems)),
        other => Err(bad(map, format!("attr '{field}': expected ARRAY, got {}", other.kind()))),
    }
}

/// `__type(name, T)`: a pointer to T; returns T's id and size.
fn type_field(btf: &Btf, map: &str, field: &str, type_id: u32) -> Result<(u32, u32), LoadError> {
    let (_, ty) = btf.resolve_mods(type_id).map_err(btf_err)?;
    let BtfType::Ptr { type_id: target } = ty else {
        return Err(bad(map, format!("'{field}': expected PTR, got {}", ty.kind())));
    };
    let size = btf
        .size_of(*target)
        .map_err(|e| bad(map, format!("can't determine '{field}' size: {e}")))?;
    Ok((*target, size))
}

fn set_size(map: &str, what: &str, slot: &mut Option<u32>, size: u32) -> Result<(), LoadError> {
    match *slot {
        Some(old) if old != size => {
            Err(bad(map, format!("conflicting {what} size {old} != {size}")))
        }
        _ => {
            *slot = Some(size);
            Ok(())
        }
    }
}

/// libbpf's `parse_btf_map_def`.
fn parse_def(
    btf: &Btf,
    name: &str,
    def: &Composite,
    is_inner: bool,
) -> Result<BtfMapDef, LoadError> {
    let mut out = BtfMapDef::default();
    let count = def.members.len();
    for (i, m) in def.members.iter().enumerate() {
        let field = btf.string_at(m.name_off).map_err(btf_err)?;
        match field {
            "type" => out.map_type = Some(uint_field(btf, name, field, m.type_id)?),
            "max_entries" => out.max_entries = uint_field(btf, name, field, m.type_id)?,
            "map_flags" => out.flags = uint_field(btf, name, field, m.type_id)?,
            "numa_node" => out.numa_node = uint_field(btf, name, field, m.type_id)?,
            "map_extra" => out.map_extra = long_field(btf, name, field, m.type_id)?,
            "key_size" => {
                let v = uint_field(btf, name, field, m.type_id)?;
                set_size(name, "key", &mut out.key_size, v)?;
            }
            "value_size" => {
                let v = uint_field(btf, name, field, m.type_id)?;
                set_size(name, "value", &mut out.value_size, v)?;
            }
            "key" => {
                let (id, size) = type_field(btf, name, field, m.type_id)?;
                set_size(name, "key", &mut out.key_size, size)?;
                out.key_type = Some(id);
            }
            "value" => {
                let (id, size) = type_field(btf, name, field, m.type_id)?;
                set_size(name, "value", &mut out.value_size, size)?;
                out.value_type = Some(id);
            }
            "pinning" => {
                if is_inner {
                    return Err(bad(name, "inner def can't be pinned"));
                }
                out.pinning = match uint_field(btf, name, field, m.type_id)? {
                    0 => Pinning::None,
                    1 => Pinning::ByName,
                    v => return Err(bad(name, format!("invalid pinning value {v}"))),
                };
            }
            "values" => {
                out.values_offset = Some(u64::from(m.bit_offset / 8));
                values_field(btf, name, &mut out, m.type_id, is_inner, i + 1 == count)?;
            }
            // libbpf (non-strict) ignores unknown fields.
            _ => {}
        }
    }
    Ok(out)
}

/// The `values` member: `__array(values, struct inner)` or `__array(values, int (void *))`.
fn values_field(
    btf: &Btf,
    name: &str,
    out: &mut BtfMapDef,
    type_id: u32,
    is_inner: bool,
    is_last: bool,
) -> Result<(), LoadError> {
    if is_inner {
        return Err(bad(name, "multi-level inner maps not supported"));
    }
    if !is_last {
        return Err(bad(name, "'values' member should be last"));
    }
    let kind = out.map_type.and_then(MapType::from_id);
    let is_map_in_map = matches!(kind, Some(MapType::ArrayOfMaps | MapType::HashOfMaps));
    let is_prog_array = kind == Some(MapType::ProgArray);
    if !is_map_in_map && !is_prog_array {
        return Err(bad(name, "should be map-in-map or prog-array to have 'values'"));
    }
    set_size(name, "value", &mut out.value_size, 4)?;
    let arr = match btf.type_by_id(type_id).map_err(btf_err)? {
        BtfType::Array(a) if a.nelems == 0 => a.clone(),
        _ => return Err(bad(name, format!("values type [{type_id}] is not a zero-sized array"))),
    };
    let (_, elem) = btf.resolve_mods(arr.elem_type).map_err(btf_err)?;
    let BtfType::Ptr { type_id: pointee } = elem else {
        return Err(bad(name, "values must be an array of pointers"));
    };
    let (_, target) = btf.resolve_mods(*pointee).map_err(btf_err)?;
    if is_prog_array {
        if !matches!(target, BtfType::FuncProto { .. }) {
            return Err(bad(name, "prog-array values must point to function prototypes"));
        }
        return Ok(());
    }
    let BtfType::Struct(inner_def) = target else {
        return Err(bad(name, "map-in-map inner type must be a struct"));
    };
    let inner_name = format!("{name}.inner");
    let inner = parse_def(btf, &inner_name, inner_def, true)?;
    out.inner = Some(Box::new(to_spec(&inner_name, inner)?));
    Ok(())
}

fn to_spec(name: &str, def: BtfMapDef) -> Result<MapSpec, LoadError> {
    let id = def.map_type.ok_or_else(|| bad(name, "missing map type"))?;
    let mut spec = MapSpec::new(
        name,
        map_type(name, id)?,
        def.key_size.unwrap_or(0),
        def.value_size.unwrap_or(0),
        def.max_entries,
    );
    spec.flags = def.flags;
    spec.pinning = def.pinning;
    spec.inner = def.inner;
    spec.btf_key_type_id = def.key_type;
    spec.btf_value_type_id = def.value_type;
    Ok(spec)
}

/// BTF-defined maps: one VAR per map in the `.maps` DATASEC.
fn btf_maps(
    maps: &mut Maps,
    elf: &ElfObject<'_>,
    section: &Section<'_>,
    btf: &Btf,
) -> Result<(), LoadError> {
    let Some((_, datasec)) = btf.datasec(BTF_MAPS) else {
        return Err(bad(BTF_MAPS, "no DATASEC '.maps' in BTF"));
    };
    // clang leaves the DATASEC's offsets zero: like libbpf's btf_fixup_datasec, take each
    // variable's offset from its ELF symbol, and define the maps in offset order.
    let mut vars = Vec::with_capacity(datasec.vars.len());
    for vsi in &datasec.vars {
        let BtfType::Var { name_off, type_id, linkage: l } =
            btf.type_by_id(vsi.type_id).map_err(btf_err)?
        else {
            return Err(bad(BTF_MAPS, format!("DATASEC entry [{}] is not a VAR", vsi.type_id)));
        };
        let name = btf.string_at(*name_off).map_err(btf_err)?.to_owned();
        let sym = elf
            .symbols
            .iter()
            .find(|s| s.shndx == section.index && !s.is_section() && s.name == name)
            .ok_or_else(|| bad(&name, "no ELF symbol for this .maps variable"))?;
        vars.push((sym.value, name, *type_id, *l, vsi.size));
    }
    vars.sort_by_key(|v| v.0);
    for (offset, name, type_id, l, var_size) in vars {
        let type_id = &type_id;
        let l = &l;
        if *l != linkage::STATIC && *l != linkage::GLOBAL {
            return Err(bad(&name, format!("unsupported map linkage {l}")));
        }
        let (_, def_ty) = btf.resolve_mods(*type_id).map_err(btf_err)?;
        let BtfType::Struct(def) = def_ty else {
            return Err(bad(&name, format!("unexpected def kind {}", def_ty.kind())));
        };
        if def.size > var_size {
            return Err(bad(&name, format!("invalid def size {} > {var_size}", def.size)));
        }
        if offset.saturating_add(var_size.into()) > section.size {
            return Err(bad(&name, "definition lies outside the .maps section"));
        }
        let parsed = parse_def(btf, &name, def, false)?;
        let numa_node = parsed.numa_node;
        let map_extra = parsed.map_extra;
        let values_offset = parsed.values_offset;
        let spec = to_spec(&name, parsed)?;
        let info = MapInfo {
            name: name.clone(),
            section: section.name.clone(),
            section_offset: offset,
            numa_node,
            map_extra,
            initial_values: Vec::new(),
        };
        let idx = maps.push(spec, info)?;
        maps.by_symbol.insert((section.index, offset), idx);
        maps.btf_ranges.push(BtfMapRange {
            map: idx,
            offset,
            size: var_size.into(),
            values_offset,
        });
    }
    Ok(())
}

/// The internal `.kconfig` map libbpf makes for kconfig externs
/// (`bpf_object__init_kconfig_map`): an array of one read-only entry, frozen after its values
/// are written, described by the `.kconfig` DATASEC.
pub(crate) fn kconfig_map(
    maps: &mut Maps,
    object_name: &str,
    data: Vec<u8>,
    datasec: Option<u32>,
) -> Result<usize, LoadError> {
    let name = internal_map_name(object_name, crate::externs::KCONFIG_SEC);
    let size = data.len() as u32;
    let mut spec = MapSpec::new(name.clone(), MapType::Array, 4, size, 1);
    spec.flags = BPF_F_RDONLY_PROG;
    if datasec.is_some() {
        // Every variable of the DATASEC is global (libbpf's map_is_mmapable).
        spec.flags |= BPF_F_MMAPABLE;
    }
    spec.btf_value_type_id = datasec;
    spec.data = Some((DataSection::Rodata, data));
    let info = MapInfo {
        name,
        section: crate::externs::KCONFIG_SEC.into(),
        section_offset: 0,
        numa_node: 0,
        map_extra: 0,
        initial_values: Vec::new(),
    };
    maps.push(spec, info)
}

/// The kernel's page size, which ring buffer sizes are multiples of.
const PAGE_SIZE: u32 = 4096;

/// libbpf's `adjust_ringbuf_sz`: the smallest power-of-two multiple of the page size that is
/// at least `size` (0 stays 0, so the kernel's error shows).
pub fn ringbuf_size(size: u32) -> u32 {
    if size == 0 {
        return 0;
    }
    if size.is_multiple_of(PAGE_SIZE) && (size / PAGE_SIZE).is_power_of_two() {
        return size;
    }
    let mut mul: u32 = 1;
    while let Some(total) = mul.checked_mul(PAGE_SIZE) {
        if total > size {
            return total;
        }
        mul = match mul.checked_mul(2) {
            Some(m) => m,
            None => break,
        };
    }
    size
}

/// Applies the user's map sizes (libbpf's `bpf_map__set_max_entries`, which also rounds ring
/// buffer sizes up to a power-of-two number of pages).
pub(crate) fn set_sizes(
    maps: &mut Maps,
    sizes: &std::collections::BTreeMap<String, u32>,
) -> Result<(), LoadError> {
    for (name, &size) in sizes {
        let Some(spec) = maps.specs.iter_mut().find(|m| &m.name == name) else {
            return Err(LoadError::UnknownMap {
                name: name.clone(),
                maps: maps.specs.iter().map(|m| m.name.clone()).collect(),
            });
        };
        spec.max_entries = match spec.map_type {
            MapType::Ringbuf | MapType::UserRingbuf => ringbuf_size(size),
            _ => size,
        };
    }
    Ok(())
}

/// Whether the kernel creates a map of this type with `max_entries` 0: local and cgroup
/// storage must have 0, and libbpf sizes perf event arrays to the possible CPUs (engines do
/// it when they create one).
pub fn size_may_be_zero(map_type: MapType) -> bool {
    matches!(
        map_type,
        MapType::PerfEventArray
            | MapType::CgroupStorage
            | MapType::PercpuCgroupStorage
            | MapType::SkStorage
            | MapType::InodeStorage
            | MapType::TaskStorage
            | MapType::CgrpStorage
    )
}

/// The first map still sized 0 whose type needs a size, as a [`LoadError::MapNeedsSize`].
pub(crate) fn check_sizes(maps: &Maps) -> Result<(), LoadError> {
    match maps.specs.iter().find(|m| m.max_entries == 0 && !size_may_be_zero(m.map_type)) {
        Some(m) => {
            Err(LoadError::MapNeedsSize { name: m.name.clone(), map_type: m.map_type.name() })
        }
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::internal_map_name;

    #[test]
    fn ringbuf_sizes_like_libbpf() {
        use super::ringbuf_size;
        assert_eq!(ringbuf_size(0), 0);
        assert_eq!(ringbuf_size(4096), 4096);
        assert_eq!(ringbuf_size(16384), 16384);
        assert_eq!(ringbuf_size(1), 4096);
        assert_eq!(ringbuf_size(4097), 8192);
        assert_eq!(ringbuf_size(12288), 16384);
    }

    #[test]
    fn names_like_libbpf() {
        assert_eq!(internal_map_name("obj", ".data"), "obj.data");
        assert_eq!(internal_map_name("my_object_name", ".rodata"), "my_objec.rodata");
        assert_eq!(internal_map_name("my_object_name", ".bss"), "my_objec.bss");
        assert_eq!(internal_map_name("obj", ".rodata.str1.1"), ".rodata.str1.1");
        assert_eq!(internal_map_name("obj", ".rodata.abracadabra"), ".rodata.abracad");
        assert_eq!(internal_map_name("a-b", ".data"), "a_b.data");
    }
}
