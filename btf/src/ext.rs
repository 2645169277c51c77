//! [`BtfExt`]: the `.BTF.ext` section (func_info, line_info and CO-RE relocations), with
//! every string resolved through the `.BTF` string table.

use crate::btf::Btf;
use crate::error::BtfError;
use crate::parse::{check_magic, read_u32, section_range};

/// Smallest `.BTF.ext` header: magic..line_info_len.
const EXT_HEADER_MIN: usize = 24;
/// Header size that also carries core_relo_off/len.
const EXT_HEADER_CORE: usize = 32;

/// The records of one kind that belong to one ELF section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionRecords<T> {
    /// ELF section name (e.g. `.text`, `kprobe/foo`), from the `.BTF` string table.
    pub section: String,
    /// The records, in file order.
    pub records: Vec<T>,
}

/// A `bpf_func_info` record: which BTF `Func` starts at an instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FuncInfo {
    /// Byte offset of the instruction in its ELF section (as in the ELF, not an index).
    pub insn_off: u32,
    /// Type id of the `Func`.
    pub type_id: u32,
}

/// A `bpf_line_info` record, strings resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineInfo {
    /// Byte offset of the instruction in its ELF section.
    pub insn_off: u32,
    /// Source file name (invalid UTF-8 replaced with U+FFFD).
    pub file_name: String,
    /// The source line's text (invalid UTF-8 replaced with U+FFFD).
    pub line_text: String,
    /// 1-based line number (`line_col >> 10`).
    pub line: u32,
    /// Column (`line_col & 0x3ff`).
    pub col: u32,
}

/// CO-RE relocation kinds (`enum bpf_core_relo_kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CoreReloKind {
    /// Field byte offset.
    FieldByteOffset = 0,
    /// Field byte size.
    FieldByteSize = 1,
    /// Field existence in target.
    FieldExists = 2,
    /// Field signedness (0 unsigned, 1 signed).
    FieldSigned = 3,
    /// Bitfield-specific left bitshift.
    FieldLshiftU64 = 4,
    /// Bitfield-specific right bitshift.
    FieldRshiftU64 = 5,
    /// Type id in local BTF.
    TypeIdLocal = 6,
    /// Type id in target BTF.
    TypeIdTarget = 7,
    /// Type existence in target.
    TypeExists = 8,
    /// Type size in bytes.
    TypeSize = 9,
    /// Enumerator existence in target.
    EnumvalExists = 10,
    /// Enumerator integer value.
    EnumvalValue = 11,
    /// Type "matches" in target.
    TypeMatches = 12,
}

impl CoreReloKind {
    /// The kind for a raw value, if known.
    pub fn from_raw(kind: u32) -> Option<CoreReloKind> {
        use CoreReloKind::*;
        Some(match kind {
            0 => FieldByteOffset,
            1 => FieldByteSize,
            2 => FieldExists,
            3 => FieldSigned,
            4 => FieldLshiftU64,
            5 => FieldRshiftU64,
            6 => TypeIdLocal,
            7 => TypeIdTarget,
            8 => TypeExists,
            9 => TypeSize,
            10 => EnumvalExists,
            11 => EnumvalValue,
            12 => TypeMatches,
            _ => return None,
        })
    }

    /// The name libbpf prints for this kind (`byte_off`, `field_exists`, ...).
    pub fn as_str(self) -> &'static str {
        use CoreReloKind::*;
        match self {
            FieldByteOffset => "byte_off",
            FieldByteSize => "byte_sz",
            FieldExists => "field_exists",
            FieldSigned => "signed",
            FieldLshiftU64 => "lshift_u64",
            FieldRshiftU64 => "rshift_u64",
            TypeIdLocal => "local_type_id",
            TypeIdTarget => "target_type_id",
            TypeExists => "type_exists",
            TypeSize => "type_size",
            EnumvalExists => "enumval_exists",
            EnumvalValue => "enumval_value",
            TypeMatches => "type_matches",
        }
    }

    /// Whether this is a field-based kind (byte offset/size, exists, signed, shifts).
    pub fn is_field_based(self) -> bool {
        (self as u32) <= 5
    }

    /// Whether this is a type-based kind (type ids, exists, size, matches).
    pub fn is_type_based(self) -> bool {
        matches!(
            self,
            CoreReloKind::TypeIdLocal
                | CoreReloKind::TypeIdTarget
                | CoreReloKind::TypeExists
                | CoreReloKind::TypeSize
                | CoreReloKind::TypeMatches
        )
    }

    /// Whether this is an enumerator-based kind.
    pub fn is_enumval_based(self) -> bool {
        matches!(self, CoreReloKind::EnumvalExists | CoreReloKind::EnumvalValue)
    }
}

impl std::fmt::Display for CoreReloKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `bpf_core_relo` record, access string resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreRelo {
    /// Byte offset of the instruction in its ELF section.
    pub insn_off: u32,
    /// Root type id in the local (program's) BTF.
    pub type_id: u32,
    /// Access string, e.g. `"0:1:2"`.
    pub access_str: String,
    /// What to compute.
    pub kind: CoreReloKind,
}

/// Parsed `.BTF.ext`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BtfExt {
    /// func_info records per ELF section.
    pub func_info: Vec<SectionRecords<FuncInfo>>,
    /// line_info records per ELF section.
    pub line_info: Vec<SectionRecords<LineInfo>>,
    /// CO-RE relocations per ELF section (empty if the header has no core_relo part).
    pub core_relos: Vec<SectionRecords<CoreRelo>>,
}

/// One raw info sub-section: where its records are and how big each one is.
struct InfoSection<'a> {
    data: &'a [u8],
    name: &'static str,
    /// Absolute start of the sub-section (its `rec_size` word).
    start: usize,
    len: usize,
    min_rec: u32,
}

impl BtfExt {
    /// Parses little-endian `.BTF.ext` data; strings are looked up in `btf` (the object's
    /// `.BTF`). Honours each sub-section's `rec_size`: larger records have their extra bytes
    /// skipped, smaller ones are an error.
    pub fn parse(data: &[u8], btf: &Btf) -> Result<BtfExt, BtfError> {
        const SEC: &str = "BTF.ext header";
        check_magic(data, SEC, EXT_HEADER_MIN)?;
        let hdr_len = read_u32(data, 4, SEC)?;
        if (hdr_len as usize) < EXT_HEADER_MIN || hdr_len as usize > data.len() {
            return Err(BtfError::BadHeaderLen {
                section: "BTF.ext",
                hdr_len,
                min: EXT_HEADER_MIN as u32,
                data_len: data.len(),
            });
        }
        let hdr_len = hdr_len as usize;
        let sub = |name, off_at: usize, min_rec| -> Result<InfoSection<'_>, BtfError> {
            let off = read_u32(data, off_at, SEC)?;
            let len = read_u32(data, off_at + 4, SEC)?;
            let start = section_range(data, hdr_len, off, len, name)?;
            if len != 0 && off % 4 != 0 {
                return Err(BtfError::Misaligned { section: name, off });
            }
            Ok(InfoSection { data, name, start, len: len as usize, min_rec })
        };
        let func = sub("func_info", 8, 8)?;
        let line = sub("line_info", 16, 16)?;
        let mut ext = BtfExt {
            func_info: func.parse(btf, |d, at| {
                Ok(FuncInfo { insn_off: u32_at(d, at), type_id: u32_at(d, at + 4) })
            })?,
            line_info: line.parse(btf, |d, at| {
                let line_col = u32_at(d, at + 12);
                Ok(LineInfo {
                    insn_off: u32_at(d, at),
                    file_name: lossy(btf, u32_at(d, at + 4))?,
                    line_text: lossy(btf, u32_at(d, at + 8))?,
                    line: line_col >> 10,
                    col: line_col & 0x3ff,
                })
            })?,
            core_relos: Vec::new(),
        };
        if hdr_len >= EXT_HEADER_CORE {
            let core = sub("core_relo", 24, 16)?;
            ext.core_relos = core.parse(btf, |d, at| {
                let raw_kind = u32_at(d, at + 12);
                let kind = CoreReloKind::from_raw(raw_kind)
                    .ok_or(BtfError::UnknownCoreReloKind { offset: at, kind: raw_kind })?;
                Ok(CoreRelo {
                    insn_off: u32_at(d, at),
                    type_id: u32_at(d, at + 4),
                    access_str: btf.string_at(u32_at(d, at + 8))?.to_owned(),
                    kind,
                })
            })?;
        }
        Ok(ext)
    }

    /// The func_info records of ELF section `section`.
    pub fn func_info_for(&self, section: &str) -> &[FuncInfo] {
        find_section(&self.func_info, section)
    }

    /// The line_info records of ELF section `section`.
    pub fn line_info_for(&self, section: &str) -> &[LineInfo] {
        find_section(&self.line_info, section)
    }

    /// The CO-RE relocations of ELF section `section`.
    pub fn core_relos_for(&self, section: &str) -> &[CoreRelo] {
        find_section(&self.core_relos, section)
    }
}

fn find_section<'a, T>(list: &'a [SectionRecords<T>], section: &str) -> &'a [T] {
    list.iter().find(|s| s.section == section).map(|s| s.records.as_slice()).unwrap_or(&[])
}

/// Reads a u32 the caller has already bound-checked.
fn u32_at(d: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([d[at], d[at + 1], d[at + 2], d[at + 3]])
}

fn lossy(btf: &Btf, off: u32) -> Result<String, BtfError> {
    Ok(String::from_utf8_lossy(btf.string_bytes_at(off)?).into_owned())
}

impl InfoSection<'_> {
    /// Walks `rec_size`, then blocks of `{sec_name_off, num_info, records...}`; `rec` decodes
    /// one record at an absolute offset, `min_rec` bytes of which are in range.
    fn parse<T>(
        &self,
        btf: &Btf,
        rec: impl Fn(&[u8], usize) -> Result<T, BtfError>,
    ) -> Result<Vec<SectionRecords<T>>, BtfError> {
        let mut out = Vec::new();
        if self.len == 0 {
            return Ok(out);
        }
        let end = self.start + self.len;
        if self.len < 4 {
            return Err(BtfError::Truncated {
                section: self.name,
                offset: self.start,
                need: 4,
                have: self.len,
            });
        }
        let rec_size = u32_at(self.data, self.start);
        if rec_size < self.min_rec || !rec_size.is_multiple_of(4) {
            return Err(BtfError::BadRecordSize {
                section: self.name,
                offset: self.start,
                rec_size,
                min: self.min_rec,
            });
        }
        let mut pos = self.start + 4;
        while pos < end {
            let left = end - pos;
            if left < 8 {
                return Err(BtfError::Truncated {
                    section: self.name,
                    offset: pos,
                    need: 8,
                    have: left,
                });
            }
            let sec_name_off = u32_at(self.data, pos);
            let num = u32_at(self.data, pos + 4);
            if num == 0 {
                return Err(BtfError::EmptyBlock { section: self.name, offset: pos });
            }
            let total = 8 + u64::from(num) * u64::from(rec_size);
            if total > left as u64 {
                return Err(BtfError::Truncated {
                    section: self.name,
                    offset: pos,
                    need: usize::try_from(total).unwrap_or(usize::MAX),
                    have: left,
                });
            }
            let section = btf.string_at(sec_name_off)?.to_owned();
            // `total` fits in the data, so `num` records can be allocated.
            let mut records = Vec::with_capacity(num as usize);
            for i in 0..num as usize {
                records.push(rec(self.data, pos + 8 + i * rec_size as usize)?);
            }
            out.push(SectionRecords { section, records });
            pos += total as usize;
        }
        Ok(out)
    }
}
