//! The object's `.BTF` as the kernel takes it (`BPF_BTF_LOAD`), fixed up the way libbpf does it
//! between opening an object and loading it:
//!
//! - `.ksyms` externs become allocated variables (`bpf_object__collect_externs`): extern
//!   functions are made global and their DATASEC entries point at an added `dummy_ksym` VAR
//!   (`add_dummy_ksym_var`), extern variables become `int`s, and every entry is 4 bytes;
//! - every other DATASEC gets its size from its ELF section and, when clang left that size 0,
//!   its global variables' offsets from their ELF symbols; global variables with hidden
//!   visibility become static; every DATASEC's variables are sorted by offset
//!   (`btf_fixup_datasec`);
//! - global `.text` functions with hidden visibility get static FUNC linkage, so the verifier
//!   checks them in their callers' context (`mark_btf_static`, applied in
//!   `bpf_object__sanitize_and_load_btf`).
//!
//! The records are patched in a copy of the section, so every type keeps its id and every
//! string its offset: the `.BTF.ext` records, map BTF ids and CO-RE type ids stay valid. Only
//! `.ksyms` with extern functions grows the BTF, by one VAR at the end (and its name at the end
//! of the strings). `bpf_object__sanitize_btf` has nothing to do for Linux 6.18: it only rewrites
//! kinds (DATASEC, FLOAT, DECL_TAG, TYPE_TAG, ENUM64, global FUNC ...) older kernels lack.

use bpflab_btf::{Btf, BtfType, linkage};
use goblin::elf::sym::STT_OBJECT;

use crate::code::TEXT;
use crate::elf::ElfObject;
use crate::error::LoadError;
use crate::externs::Externs;

/// libbpf's `KSYMS_SEC`.
const KSYMS: &str = ".ksyms";
/// libbpf's `KCONFIG_SEC`.
const KCONFIG: &str = ".kconfig";
/// The VAR libbpf adds for extern functions in `.ksyms`.
const DUMMY_KSYM: &str = "dummy_ksym";
/// `BTF_KIND_VAR` and `BTF_KIND_FUNC`, as in a record's info word.
const KIND_VAR: u32 = 14;
const KIND_FUNC: u32 = 12;
/// Size of `struct btf_type`.
const TYPE_HEADER: usize = 12;
/// Size of `struct btf_var_secinfo`.
const VAR_SECINFO: usize = 12;
/// Size of `struct btf_param`.
const PARAM: usize = 8;

fn fixup_err(what: impl Into<String>, reason: impl Into<String>) -> LoadError {
    LoadError::BtfFixup { what: what.into(), reason: reason.into() }
}

/// The BTF blob being fixed up: its header, type records and strings, and where each type's
/// record starts.
struct Blob {
    header: Vec<u8>,
    types: Vec<u8>,
    strings: Vec<u8>,
    /// Start of each type's record in `types`, by type id (index 0, `void`, is unused).
    records: Vec<usize>,
}

fn le32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..)?.get(..4)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Bytes of kind-specific data after a type's `struct btf_type`.
fn extra_len(ty: &BtfType) -> usize {
    match ty {
        BtfType::Int(_) | BtfType::Var { .. } | BtfType::DeclTag { .. } => 4,
        BtfType::Array(_) => 12,
        BtfType::Struct(_) | BtfType::Union(_) | BtfType::Datasec(_) | BtfType::Enum64(_) => {
            12 * ty.vlen()
        }
        BtfType::Enum(_) | BtfType::FuncProto { .. } => 8 * ty.vlen(),
        _ => 0,
    }
}

impl Blob {
    /// Splits `data` (which `btf` was parsed from) into header, types and strings.
    fn new(data: &[u8], btf: &Btf) -> Result<Blob, LoadError> {
        let bad = |reason: &str| fixup_err("BTF header", reason);
        let field = |at| le32(data, at).ok_or_else(|| bad("truncated"));
        let hdr_len = field(4)? as usize;
        let range = |off: u32, len: u32| {
            let start = hdr_len.checked_add(off as usize)?;
            data.get(start..start.checked_add(len as usize)?)
        };
        let types = range(field(8)?, field(12)?).ok_or_else(|| bad("type section out of range"))?;
        let strings =
            range(field(16)?, field(20)?).ok_or_else(|| bad("string section out of range"))?;
        let header = data.get(..hdr_len).ok_or_else(|| bad("truncated"))?.to_vec();
        let mut records = vec![0; btf.len() as usize];
        let mut at = 0;
        for (id, ty) in btf.types().skip(1) {
            records[id as usize] = at;
            at += TYPE_HEADER + extra_len(ty);
        }
        if at != types.len() {
            return Err(bad("type records do not fill the type section"));
        }
        Ok(Blob { header, types: types.to_vec(), strings: strings.to_vec(), records })
    }

    /// The u32 at byte `off` of type `id`'s record.
    fn get(&self, id: u32, off: usize) -> u32 {
        self.records
            .get(id as usize)
            .and_then(|&start| le32(&self.types, start + off))
            .unwrap_or_default()
    }

    /// Sets the u32 at byte `off` of type `id`'s record (ignored if out of range, which the
    /// record table built from the parsed BTF rules out).
    fn set(&mut self, id: u32, off: usize, value: u32) {
        let Some(&start) = self.records.get(id as usize) else { return };
        if let Some(b) = self.types.get_mut(start + off..start + off + 4) {
            b.copy_from_slice(&value.to_le_bytes());
        }
    }

    /// Appends `name` to the string section; returns its offset.
    fn add_string(&mut self, name: &str) -> u32 {
        let off = self.strings.len() as u32;
        self.strings.extend_from_slice(name.as_bytes());
        self.strings.push(0);
        off
    }

    /// Appends a VAR type (libbpf's `btf__add_var`); returns its id and name offset.
    fn add_var(&mut self, name: &str, var_linkage: u32, type_id: u32) -> (u32, u32) {
        let name_off = self.add_string(name);
        let id = self.records.len() as u32;
        self.records.push(self.types.len());
        for word in [name_off, KIND_VAR << 24, type_id, var_linkage] {
            self.types.extend_from_slice(&word.to_le_bytes());
        }
        (id, name_off)
    }

    /// The BTF blob: the original header with the section offsets of the new layout (types,
    /// then strings, right after the header).
    fn into_bytes(self) -> Vec<u8> {
        let mut header = self.header;
        let type_len = self.types.len() as u32;
        let fields = [0, type_len, type_len, self.strings.len() as u32];
        for (i, v) in fields.into_iter().enumerate() {
            if let Some(b) = header.get_mut(8 + 4 * i..12 + 4 * i) {
                b.copy_from_slice(&v.to_le_bytes());
            }
        }
        let mut out = header;
        out.extend_from_slice(&self.types);
        out.extend_from_slice(&self.strings);
        out
    }
}

/// The object's `.BTF` (`data`, parsed as `btf`) fixed up for `BPF_BTF_LOAD` as libbpf does.
pub(crate) fn for_kernel(
    data: &[u8],
    btf: &Btf,
    elf: &ElfObject<'_>,
    externs: &Externs,
) -> Result<Vec<u8>, LoadError> {
    let mut blob = Blob::new(data, btf)?;
    ksyms(&mut blob, btf)?;
    kconfig(&mut blob, btf, externs)?;
    for (id, ty) in btf.types() {
        if let BtfType::Datasec(d) = ty {
            let name = btf.string_at(d.name_off).map_err(|e| {
                fixup_err(format!("DATASEC [{id}]"), format!("no name in the string section: {e}"))
            })?;
            fixup_datasec(&mut blob, btf, elf, id, name)?;
        }
    }
    hidden_subprograms(&mut blob, btf, elf);
    Ok(blob.into_bytes())
}

/// The first 32-bit INT (libbpf's `find_int_btf_id`), 0 if there is none.
fn int_type(btf: &Btf) -> u32 {
    btf.types().find(|(_, t)| matches!(t, BtfType::Int(i) if i.bits == 32)).map_or(0, |(id, _)| id)
}

/// The `.ksyms` part of `bpf_object__collect_externs`.
fn ksyms(blob: &mut Blob, btf: &Btf) -> Result<(), LoadError> {
    let Some((sec_id, sec)) = btf.datasec(KSYMS) else { return Ok(()) };
    let is_func = |type_id| matches!(btf.type_by_id(type_id), Ok(BtfType::Func { .. }));
    let int_id = int_type(btf);
    let dummy = sec
        .vars
        .iter()
        .any(|v| is_func(v.type_id))
        .then(|| blob.add_var(DUMMY_KSYM, linkage::GLOBAL, int_id));
    let mut off = 0u32;
    for (i, vsi) in sec.vars.iter().enumerate() {
        let what = || format!("DATASEC '{KSYMS}' entry #{i}");
        match btf.type_by_id(vsi.type_id) {
            Ok(BtfType::Func { type_id: proto, .. }) => {
                let (dummy_id, dummy_name) = dummy.unwrap_or_default();
                // Unnamed parameters get the dummy's name: the kernel wants named parameters
                // in global functions.
                if let Ok(BtfType::FuncProto { params, .. }) = btf.type_by_id(*proto) {
                    for (j, p) in params.iter().enumerate() {
                        if p.type_id != 0 && p.name_off == 0 {
                            blob.set(*proto, TYPE_HEADER + PARAM * j, dummy_name);
                        }
                    }
                }
                blob.set(sec_id, TYPE_HEADER + VAR_SECINFO * i, dummy_id);
                let info = blob.get(vsi.type_id, 4);
                blob.set(vsi.type_id, 4, (info & !0xffff) | linkage::GLOBAL);
            }
            Ok(BtfType::Var { .. }) => {
                blob.set(vsi.type_id, TYPE_HEADER, linkage::GLOBAL);
                blob.set(vsi.type_id, 8, int_id);
            }
            _ => return Err(fixup_err(what(), "neither a FUNC nor a VAR")),
        }
        blob.set(sec_id, TYPE_HEADER + VAR_SECINFO * i + 4, off);
        blob.set(sec_id, TYPE_HEADER + VAR_SECINFO * i + 8, 4);
        off += 4;
    }
    blob.set(sec_id, 8, off);
    Ok(())
}

/// The `.kconfig` part of `bpf_object__collect_externs`: the DATASEC takes the size of the
/// `.kconfig` map, each VAR its offset there and global (allocated) linkage.
fn kconfig(blob: &mut Blob, btf: &Btf, externs: &Externs) -> Result<(), LoadError> {
    let Some((sec_id, sec)) = btf.datasec(KCONFIG) else { return Ok(()) };
    for (i, vsi) in sec.vars.iter().enumerate() {
        let ext = externs.kconfig.iter().find(|k| k.var_id == vsi.type_id).ok_or_else(|| {
            let name = btf.type_name(vsi.type_id).unwrap_or_default();
            fixup_err(
                format!("DATASEC '{KCONFIG}' entry #{i}"),
                format!("no extern symbol for VAR '{name}'"),
            )
        })?;
        blob.set(vsi.type_id, TYPE_HEADER, linkage::GLOBAL);
        blob.set(sec_id, TYPE_HEADER + VAR_SECINFO * i + 4, ext.offset);
        blob.set(sec_id, TYPE_HEADER + VAR_SECINFO * i + 8, ext.size);
    }
    blob.set(sec_id, 8, externs.kconfig_size);
    Ok(())
}

/// libbpf's `btf_fixup_datasec` for DATASEC `id` named `name`.
fn fixup_datasec(
    blob: &mut Blob,
    btf: &Btf,
    elf: &ElfObject<'_>,
    id: u32,
    name: &str,
) -> Result<(), LoadError> {
    let what = || format!("DATASEC '{name}'");
    let Ok(BtfType::Datasec(sec)) = btf.type_by_id(id) else { return Ok(()) };
    let vars = sec.vars.len();
    // Extern-backing sections were laid out by the extern pass: only sort them.
    if name != KSYMS && name != KCONFIG {
        let fixup_offsets = blob.get(id, 8) == 0;
        if fixup_offsets {
            let size = elf.section_by_name(name).map_or(0, |s| s.size);
            if size == 0 {
                return Err(fixup_err(what(), "no ELF section of that name with a non-zero size"));
            }
            let size = u32::try_from(size)
                .map_err(|_| fixup_err(what(), format!("section size {size} exceeds u32")))?;
            blob.set(id, 8, size);
        }
        for (i, vsi) in sec.vars.iter().enumerate() {
            let Ok(BtfType::Var { name_off, linkage: l, .. }) = btf.type_by_id(vsi.type_id) else {
                return Err(fixup_err(what(), format!("entry #{i} is not a VAR")));
            };
            if *l == linkage::STATIC || *l == linkage::EXTERN {
                continue;
            }
            let var = btf
                .string_at(*name_off)
                .map_err(|e| fixup_err(what(), format!("no name for entry #{i}: {e}")))?;
            let sym = elf
                .symbols
                .iter()
                .find(|s| s.kind == STT_OBJECT && s.is_global_or_weak() && s.name == var)
                .ok_or_else(|| fixup_err(what(), format!("no ELF symbol for VAR '{var}'")))?;
            if fixup_offsets {
                let offset = u32::try_from(sym.value).map_err(|_| {
                    fixup_err(what(), format!("VAR '{var}' at offset {:#x}", sym.value))
                })?;
                blob.set(id, TYPE_HEADER + VAR_SECINFO * i + 4, offset);
            }
            if sym.is_hidden() {
                blob.set(vsi.type_id, TYPE_HEADER, linkage::STATIC);
            }
        }
    }
    // Sort the entries by offset (libbpf's qsort with compare_vsi_off).
    let start = TYPE_HEADER;
    let mut entries: Vec<[u32; 3]> = (0..vars)
        .map(|i| {
            let at = start + VAR_SECINFO * i;
            [blob.get(id, at), blob.get(id, at + 4), blob.get(id, at + 8)]
        })
        .collect();
    entries.sort_by_key(|e| e[1]);
    for (i, e) in entries.iter().enumerate() {
        for (k, v) in e.iter().enumerate() {
            blob.set(id, start + VAR_SECINFO * i + 4 * k, *v);
        }
    }
    Ok(())
}

/// `mark_btf_static`: global or weak `.text` functions with hidden visibility get static
/// FUNC linkage (the first global FUNC of that name, as libbpf picks it).
fn hidden_subprograms(blob: &mut Blob, btf: &Btf, elf: &ElfObject<'_>) {
    let Some(text) = elf.section_by_name(TEXT) else { return };
    let hidden = elf
        .symbols
        .iter()
        .filter(|s| s.is_func() && s.shndx == text.index && s.is_global_or_weak() && s.is_hidden());
    for sym in hidden {
        let func = btf.types().find(|(_, t)| {
            matches!(t, BtfType::Func { name_off, linkage: l, .. }
                if *l == linkage::GLOBAL && btf.string_at(*name_off).ok() == Some(sym.name.as_str()))
        });
        if let Some((id, _)) = func {
            blob.set(id, 4, (KIND_FUNC << 24) | linkage::STATIC);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
    }

    /// The fixed-up BTF of a fixture: (raw `.BTF`, fixed bytes).
    fn fixed(bytes: &[u8]) -> (Btf, Btf) {
        let elf = crate::elf::parse(bytes).unwrap();
        let data = elf.section_by_name(".BTF").unwrap().data;
        let raw = Btf::parse(data).unwrap();
        let externs = crate::externs::collect(&elf, Some(&raw)).unwrap();
        let out = for_kernel(data, &raw, &elf, &externs).unwrap();
        (raw, Btf::parse(&out).unwrap())
    }

    /// (size, [(var, offset)]) of a DATASEC.
    fn datasec(btf: &Btf, name: &str) -> (u32, Vec<(String, u32)>) {
        let (_, d) = btf.datasec(name).unwrap();
        let vars = d.vars.iter().map(|v| (btf.type_name(v.type_id).unwrap().to_owned(), v.offset));
        (d.size, vars.collect())
    }

    #[test]
    fn blob_round_trips_unchanged() {
        for name in ["maps.bpf.o", "multi.bpf.o", "kfunc.bpf.o", "strings.bpf.o"] {
            let bytes = fixture(name);
            let elf = crate::elf::parse(&bytes).unwrap();
            let data = elf.section_by_name(".BTF").unwrap().data;
            let btf = Btf::parse(data).unwrap();
            assert_eq!(Blob::new(data, &btf).unwrap().into_bytes(), data, "{name}");
        }
    }

    #[test]
    fn datasecs_sized_and_placed_like_readelf_says() {
        // `llvm-readelf-19 -sS tests/fixtures/maps.bpf.o`: sizes .maps 0xc0, maps 0x14,
        // .data 0xc, .rodata 0x10, .bss 0x18, license 0xd, version 0x4; OBJECT symbol values
        // below. clang's own DATASECs have size 0 and every offset 0.
        let (raw, btf) = fixed(&fixture("maps.bpf.o"));
        assert_eq!(
            datasec(&raw, ".bss"),
            (0, vec![("zeroed_tail".into(), 0), ("zeroed".into(), 0)])
        );
        let s =
            |v: &[(&str, u32)]| v.iter().map(|(n, o)| ((*n).to_owned(), *o)).collect::<Vec<_>>();
        assert_eq!(datasec(&btf, ".bss"), (0x18, s(&[("zeroed_tail", 0), ("zeroed", 0x10)])));
        assert_eq!(datasec(&btf, ".data"), (0xc, s(&[("counter", 0), ("second_counter", 8)])));
        assert_eq!(datasec(&btf, ".rodata"), (0x10, s(&[("cfg_a", 0), ("cfg_b", 8)])));
        assert_eq!(datasec(&btf, "maps"), (0x14, s(&[("legacy_counts", 0)])));
        assert_eq!(datasec(&btf, "license"), (0xd, s(&[("LICENSE", 0)])));
        assert_eq!(datasec(&btf, "version"), (4, s(&[("_version", 0)])));
        let maps = [
            ("jumps", 0),
            ("hash_map", 0x28),
            ("outer", 0x50),
            ("events", 0x68),
            ("percpu", 0x78),
            ("pinned_lru", 0x98),
        ];
        assert_eq!(datasec(&btf, ".maps"), (0xc0, s(&maps)));
    }
}
