//! Low-level decoding of the `.BTF` header, type section and string section.

use crate::error::BtfError;
use crate::types::{
    Array, BtfKind, BtfType, Composite, Datasec, Enum, EnumValue, Int, Member, Param, VarSecInfo,
};

/// BTF magic number (`BTF_MAGIC`).
pub const BTF_MAGIC: u16 = 0xeb9f;
/// Size of `struct btf_header`.
pub(crate) const BTF_HEADER_LEN: usize = 24;
/// Largest string offset the kernel accepts (`BTF_MAX_NAME_OFFSET`).
const BTF_MAX_NAME_OFFSET: u64 = 0x00ff_ffff;

/// Reads a little-endian u32 at `off`, naming `section` if the data is too short.
pub(crate) fn read_u32(data: &[u8], off: usize, section: &'static str) -> Result<u32, BtfError> {
    match data.get(off..).and_then(|rest| rest.get(..4)) {
        Some(b) => Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        None => Err(BtfError::Truncated {
            section,
            offset: off,
            need: 4,
            have: data.len().saturating_sub(off),
        }),
    }
}

/// Checks the magic and version shared by `.BTF` and `.BTF.ext` headers.
pub(crate) fn check_magic(data: &[u8], section: &'static str, min: usize) -> Result<(), BtfError> {
    if data.len() < 4 {
        return Err(BtfError::Truncated { section, offset: 0, need: min, have: data.len() });
    }
    let magic = u16::from_le_bytes([data[0], data[1]]);
    if magic != BTF_MAGIC {
        if magic == BTF_MAGIC.swap_bytes() {
            return Err(BtfError::BigEndian { section });
        }
        return Err(BtfError::BadMagic { section, magic });
    }
    if data[2] != 1 {
        return Err(BtfError::UnsupportedVersion { section, version: data[2] });
    }
    if data.len() < min {
        return Err(BtfError::Truncated { section, offset: 0, need: min, have: data.len() });
    }
    Ok(())
}

/// Checks that `[hdr_len + off, hdr_len + off + len)` lies inside `data`; returns the
/// absolute start offset.
pub(crate) fn section_range(
    data: &[u8],
    hdr_len: usize,
    off: u32,
    len: u32,
    section: &'static str,
) -> Result<usize, BtfError> {
    let avail = data.len().saturating_sub(hdr_len);
    if u64::from(off) + u64::from(len) > avail as u64 {
        return Err(BtfError::SectionOutOfRange { section, off, len, avail });
    }
    Ok(hdr_len + off as usize)
}

/// The decoded `.BTF` header: absolute byte ranges of the type and string sections.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Header {
    pub(crate) type_start: usize,
    pub(crate) type_len: usize,
    pub(crate) str_start: usize,
    pub(crate) str_len: usize,
}

/// Parses and validates the `.BTF` header.
pub(crate) fn parse_header(data: &[u8]) -> Result<Header, BtfError> {
    const SEC: &str = "BTF header";
    check_magic(data, SEC, BTF_HEADER_LEN)?;
    let hdr_len = read_u32(data, 4, SEC)?;
    if (hdr_len as usize) < BTF_HEADER_LEN || hdr_len as usize > data.len() {
        return Err(BtfError::BadHeaderLen {
            section: "BTF",
            hdr_len,
            min: BTF_HEADER_LEN as u32,
            data_len: data.len(),
        });
    }
    let hdr_len = hdr_len as usize;
    let type_off = read_u32(data, 8, SEC)?;
    let type_len = read_u32(data, 12, SEC)?;
    let str_off = read_u32(data, 16, SEC)?;
    let str_len = read_u32(data, 20, SEC)?;
    let type_start = section_range(data, hdr_len, type_off, type_len, "BTF type section")?;
    let str_start = section_range(data, hdr_len, str_off, str_len, "BTF string section")?;
    if type_off % 4 != 0 {
        return Err(BtfError::Misaligned { section: "BTF type section", off: type_off });
    }
    if u64::from(type_off) + u64::from(type_len) > u64::from(str_off) {
        return Err(BtfError::SectionLayout { type_off, type_len, str_off });
    }
    Ok(Header { type_start, type_len: type_len as usize, str_start, str_len: str_len as usize })
}

/// Validates a string section; `split` relaxes the rules for split BTF (may be empty, need
/// not start with the empty string).
pub(crate) fn check_strings(strings: &[u8], offset: usize, split: bool) -> Result<(), BtfError> {
    let bad = |reason| Err(BtfError::BadStringSection { offset, reason });
    if strings.is_empty() {
        return if split { Ok(()) } else { bad("empty (must hold at least the empty string)") };
    }
    if strings.len() as u64 - 1 > BTF_MAX_NAME_OFFSET {
        return bad("longer than BTF_MAX_NAME_OFFSET");
    }
    if !split && strings[0] != 0 {
        return bad("does not start with the empty string");
    }
    if strings[strings.len() - 1] != 0 {
        return bad("last string is not NUL-terminated");
    }
    Ok(())
}

/// Cursor over the type section.
struct TypeReader<'a> {
    data: &'a [u8],
    /// Absolute end of the type section.
    end: usize,
}

impl TypeReader<'_> {
    fn u32(&self, off: usize) -> u32 {
        // Callers bound-check the whole record before reading it.
        let b = &self.data[off..off + 4];
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }
}

/// Bytes of kind-specific data following a `struct btf_type`.
fn extra_len(kind: BtfKind, vlen: u64) -> u64 {
    match kind {
        BtfKind::Int | BtfKind::Var | BtfKind::DeclTag => 4,
        BtfKind::Array => 12,
        BtfKind::Struct | BtfKind::Union | BtfKind::Datasec | BtfKind::Enum64 => 12 * vlen,
        BtfKind::Enum | BtfKind::FuncProto => 8 * vlen,
        _ => 0,
    }
}

/// Decodes the type section `data[start..start + len]`; the first type gets id `first_id`.
pub(crate) fn parse_types(
    data: &[u8],
    start: usize,
    len: usize,
    first_id: u32,
) -> Result<Vec<BtfType>, BtfError> {
    let r = TypeReader { data, end: start + len };
    let mut types = Vec::new();
    let mut pos = start;
    let mut id = first_id;
    while pos < r.end {
        let have = r.end - pos;
        if have < 12 {
            return Err(BtfError::Truncated {
                section: "BTF type section",
                offset: pos,
                need: 12,
                have,
            });
        }
        let name_off = r.u32(pos);
        let info = r.u32(pos + 4);
        let size_or_type = r.u32(pos + 8);
        let raw_kind = (info >> 24) & 0x1f;
        let vlen = info & 0xffff;
        let kflag = info >> 31 != 0;
        let kind = match BtfKind::from_raw(raw_kind) {
            Some(BtfKind::Void) => {
                return Err(BtfError::BadType {
                    type_id: id,
                    offset: pos,
                    reason: "kind UNKN is only valid for type id 0",
                });
            }
            Some(k) => k,
            None => return Err(BtfError::UnknownKind { type_id: id, offset: pos, kind: raw_kind }),
        };
        let need = 12 + extra_len(kind, u64::from(vlen));
        if need > have as u64 {
            return Err(BtfError::TypeTruncated { type_id: id, kind, offset: pos, need, have });
        }
        let body = pos + 12;
        let n = vlen as usize;
        let ty = match kind {
            BtfKind::Void => BtfType::Void, // rejected above
            BtfKind::Int => {
                let word = r.u32(body);
                BtfType::Int(Int {
                    name_off,
                    size: size_or_type,
                    encoding: ((word >> 24) & 0x0f) as u8,
                    offset: ((word >> 16) & 0xff) as u8,
                    bits: (word & 0xff) as u8,
                })
            }
            BtfKind::Ptr => BtfType::Ptr { type_id: size_or_type },
            BtfKind::Array => BtfType::Array(Array {
                elem_type: r.u32(body),
                index_type: r.u32(body + 4),
                nelems: r.u32(body + 8),
            }),
            BtfKind::Struct | BtfKind::Union => {
                // `need` was checked against the bytes left, so `n` records fit.
                let mut members = Vec::with_capacity(n);
                for i in 0..n {
                    let m = body + 12 * i;
                    let off = r.u32(m + 8);
                    let (bit_offset, bitfield_size) =
                        if kflag { (off & 0x00ff_ffff, off >> 24) } else { (off, 0) };
                    members.push(Member {
                        name_off: r.u32(m),
                        type_id: r.u32(m + 4),
                        bit_offset,
                        bitfield_size,
                    });
                }
                let c = Composite { name_off, size: size_or_type, members };
                if kind == BtfKind::Struct { BtfType::Struct(c) } else { BtfType::Union(c) }
            }
            BtfKind::Enum => {
                let mut values = Vec::with_capacity(n);
                for i in 0..n {
                    let e = body + 8 * i;
                    let raw = r.u32(e + 4);
                    let value = if kflag { i64::from(raw as i32) } else { i64::from(raw) };
                    values.push(EnumValue { name_off: r.u32(e), value });
                }
                BtfType::Enum(Enum { name_off, size: size_or_type, signed: kflag, values })
            }
            BtfKind::Enum64 => {
                let mut values = Vec::with_capacity(n);
                for i in 0..n {
                    let e = body + 12 * i;
                    let lo = u64::from(r.u32(e + 4));
                    let hi = u64::from(r.u32(e + 8));
                    values.push(EnumValue { name_off: r.u32(e), value: ((hi << 32) | lo) as i64 });
                }
                BtfType::Enum64(Enum { name_off, size: size_or_type, signed: kflag, values })
            }
            BtfKind::Fwd => BtfType::Fwd { name_off, is_union: kflag },
            BtfKind::Typedef => BtfType::Typedef { name_off, type_id: size_or_type },
            BtfKind::Volatile => BtfType::Volatile { type_id: size_or_type },
            BtfKind::Const => BtfType::Const { type_id: size_or_type },
            BtfKind::Restrict => BtfType::Restrict { type_id: size_or_type },
            BtfKind::Func => BtfType::Func { name_off, type_id: size_or_type, linkage: vlen },
            BtfKind::FuncProto => {
                let mut params = Vec::with_capacity(n);
                for i in 0..n {
                    let p = body + 8 * i;
                    params.push(Param { name_off: r.u32(p), type_id: r.u32(p + 4) });
                }
                BtfType::FuncProto { ret_type: size_or_type, params }
            }
            BtfKind::Var => BtfType::Var { name_off, type_id: size_or_type, linkage: r.u32(body) },
            BtfKind::Datasec => {
                let mut vars = Vec::with_capacity(n);
                for i in 0..n {
                    let v = body + 12 * i;
                    vars.push(VarSecInfo {
                        type_id: r.u32(v),
                        offset: r.u32(v + 4),
                        size: r.u32(v + 8),
                    });
                }
                BtfType::Datasec(Datasec { name_off, size: size_or_type, vars })
            }
            BtfKind::Float => BtfType::Float { name_off, size: size_or_type },
            BtfKind::DeclTag => BtfType::DeclTag {
                name_off,
                type_id: size_or_type,
                component_idx: r.u32(body) as i32,
            },
            BtfKind::TypeTag => BtfType::TypeTag { name_off, type_id: size_or_type },
        };
        types.push(ty);
        pos += need as usize;
        id = id.checked_add(1).ok_or(BtfError::BadType {
            type_id: id,
            offset: pos,
            reason: "too many types",
        })?;
    }
    Ok(types)
}
