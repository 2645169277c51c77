//! [`Btf`]: a parsed `.BTF` blob (types and strings) and the queries on it.

use std::sync::Arc;

use crate::error::BtfError;
use crate::parse::{check_strings, parse_header, parse_types};
use crate::types::{BtfKind, BtfType, Datasec};

/// Longest chain of references followed when resolving a type (libbpf's `MAX_RESOLVE_DEPTH`).
pub const MAX_RESOLVE_DEPTH: u32 = 32;

/// Where the kernel exposes its own BTF.
pub const VMLINUX_BTF_PATH: &str = "/sys/kernel/btf/vmlinux";

/// Parsed BTF: type id 0 is `void`, then one [`BtfType`] per type, plus the string section.
///
/// Split BTF (kernel modules) keeps its base: ids and string offsets below the split's own
/// start resolve in the base. Cloning is cheap (the tables are shared).
#[derive(Debug, Clone)]
pub struct Btf {
    /// Own types; for base BTF index 0 is `Void`.
    types: Arc<[BtfType]>,
    /// Own string section.
    strings: Arc<[u8]>,
    /// Base BTF of split BTF.
    base: Option<Box<Btf>>,
    /// Id of `types[0]`: 0 for base BTF, `base.len()` for split BTF.
    start_id: u32,
    /// String offset of `strings[0]`: 0 for base BTF, the base's total string bytes for split.
    start_str: u32,
}

impl Btf {
    /// Parses little-endian `.BTF` data (a big-endian header gives [`BtfError::BigEndian`]).
    pub fn parse(data: &[u8]) -> Result<Btf, BtfError> {
        Self::parse_inner(data, None)
    }

    /// Parses split BTF (e.g. `/sys/kernel/btf/<module>`) on top of `base`.
    pub fn parse_split(data: &[u8], base: &Btf) -> Result<Btf, BtfError> {
        Self::parse_inner(data, Some(base))
    }

    /// Reads and parses the running kernel's BTF from `/sys/kernel/btf/vmlinux`.
    pub fn from_vmlinux() -> Result<Btf, BtfError> {
        Self::from_file(VMLINUX_BTF_PATH)
    }

    /// Reads and parses a raw BTF file.
    pub fn from_file(path: impl AsRef<std::path::Path>) -> Result<Btf, BtfError> {
        let path = path.as_ref();
        let data = std::fs::read(path)
            .map_err(|source| BtfError::Io { path: path.display().to_string(), source })?;
        Self::parse(&data)
    }

    fn parse_inner(data: &[u8], base: Option<&Btf>) -> Result<Btf, BtfError> {
        let hdr = parse_header(data)?;
        let strings = &data[hdr.str_start..hdr.str_start + hdr.str_len];
        check_strings(strings, hdr.str_start, base.is_some())?;
        let (start_id, start_str) = match base {
            Some(b) => {
                if u64::from(b.strings_len()) + strings.len() as u64 > u64::from(u32::MAX) {
                    return Err(BtfError::BadSplit { reason: "string offsets overflow u32" });
                }
                (b.len(), b.strings_len())
            }
            None => (0, 0),
        };
        let first_id = if base.is_some() { start_id } else { 1 };
        let parsed = parse_types(data, hdr.type_start, hdr.type_len, first_id)?;
        let mut types = Vec::with_capacity(parsed.len() + 1);
        if base.is_none() {
            types.push(BtfType::Void);
        }
        types.extend(parsed);
        if u64::from(start_id) + types.len() as u64 > u64::from(u32::MAX) {
            return Err(BtfError::BadSplit { reason: "type ids overflow u32" });
        }
        let btf = Btf {
            types: types.into(),
            strings: strings.into(),
            base: base.map(|b| Box::new(b.clone())),
            start_id,
            start_str,
        };
        btf.validate()?;
        Ok(btf)
    }

    /// Checks every own type's string offsets and referenced type ids.
    fn validate(&self) -> Result<(), BtfError> {
        let count = self.len();
        for (i, ty) in self.types.iter().enumerate() {
            let type_id = self.start_id + i as u32;
            self.check_name(ty.name_off())?;
            match ty {
                BtfType::Struct(c) | BtfType::Union(c) => {
                    for m in &c.members {
                        self.check_name(m.name_off)?;
                    }
                }
                BtfType::Enum(e) | BtfType::Enum64(e) => {
                    for v in &e.values {
                        self.check_name(v.name_off)?;
                    }
                }
                BtfType::FuncProto { params, .. } => {
                    for p in params {
                        self.check_name(p.name_off)?;
                    }
                }
                _ => {}
            }
            for target in ty.referenced_ids() {
                if target >= count {
                    return Err(BtfError::DanglingTypeId { type_id, target, count });
                }
            }
        }
        Ok(())
    }

    fn check_name(&self, off: u32) -> Result<(), BtfError> {
        self.string_bytes_at(off).map(|_| ())
    }

    /// Number of type ids, including `void` (id 0) and, for split BTF, the base's ids.
    pub fn len(&self) -> u32 {
        self.start_id + self.types.len() as u32
    }

    /// Whether there are no types besides `void`.
    pub fn is_empty(&self) -> bool {
        self.len() <= 1
    }

    /// The base BTF, for split BTF.
    pub fn base(&self) -> Option<&Btf> {
        self.base.as_deref()
    }

    /// Total bytes of string section(s), including the base's for split BTF.
    pub fn strings_len(&self) -> u32 {
        self.start_str + self.strings.len() as u32
    }

    /// The type with id `id` (0 is `void`).
    pub fn type_by_id(&self, id: u32) -> Result<&BtfType, BtfError> {
        if let Some(base) = self.base.as_ref().filter(|_| id < self.start_id) {
            return base.type_by_id(id);
        }
        id.checked_sub(self.start_id)
            .and_then(|rel| self.types.get(rel as usize))
            .ok_or(BtfError::TypeNotFound { type_id: id, count: self.len() })
    }

    /// All types with their ids, from 0 (or the base's 0 for split BTF) upwards.
    pub fn types(&self) -> impl Iterator<Item = (u32, &BtfType)> + '_ {
        let base: Box<dyn Iterator<Item = (u32, &BtfType)> + '_> = match &self.base {
            Some(b) => Box::new(b.types()),
            None => Box::new(std::iter::empty()),
        };
        base.chain(self.types.iter().enumerate().map(|(i, t)| (self.start_id + i as u32, t)))
    }

    /// The NUL-terminated string at `offset`, without the NUL, as bytes.
    pub fn string_bytes_at(&self, offset: u32) -> Result<&[u8], BtfError> {
        if let Some(base) = self.base.as_ref().filter(|_| offset < self.start_str) {
            return base.string_bytes_at(offset);
        }
        let rest = offset
            .checked_sub(self.start_str)
            .and_then(|rel| self.strings.get(rel as usize..))
            .filter(|rest| !rest.is_empty())
            .ok_or(BtfError::StringOffset { offset, len: self.strings_len() })?;
        // The section ends with a NUL (checked at parse time), so one is always found.
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        Ok(&rest[..end])
    }

    /// The string at `offset` in the string section.
    pub fn string_at(&self, offset: u32) -> Result<&str, BtfError> {
        std::str::from_utf8(self.string_bytes_at(offset)?).map_err(|_| BtfError::NotUtf8 { offset })
    }

    /// Name of type `id`; `""` for anonymous types and kinds without a name.
    pub fn type_name(&self, id: u32) -> Result<&str, BtfError> {
        self.string_at(self.type_by_id(id)?.name_off())
    }

    /// Follows const/volatile/restrict/typedef/type_tag from `id`; returns the first other id.
    pub fn skip_mods_and_typedefs(&self, id: u32) -> Result<u32, BtfError> {
        let mut seen = [0u32; MAX_RESOLVE_DEPTH as usize];
        let mut cur = id;
        for depth in 0..MAX_RESOLVE_DEPTH as usize {
            let ty = self.type_by_id(cur)?;
            if !ty.is_mod_or_typedef() {
                return Ok(cur);
            }
            if seen[..depth].contains(&cur) {
                return Err(BtfError::Cycle { type_id: id });
            }
            seen[depth] = cur;
            cur = ty.ref_type_id().unwrap_or(0);
        }
        Err(self.deep_or_cycle(id, cur, &seen))
    }

    /// Like [`Btf::skip_mods_and_typedefs`], returning the type too.
    pub fn resolve_mods(&self, id: u32) -> Result<(u32, &BtfType), BtfError> {
        let id = self.skip_mods_and_typedefs(id)?;
        Ok((id, self.type_by_id(id)?))
    }

    fn deep_or_cycle(&self, start: u32, last: u32, seen: &[u32]) -> BtfError {
        if seen.contains(&last) {
            BtfError::Cycle { type_id: start }
        } else {
            BtfError::TooDeep { type_id: start, depth: MAX_RESOLVE_DEPTH }
        }
    }

    /// Size in bytes of type `id`, resolved through modifiers, typedefs, vars and tags;
    /// arrays are element size times count (nested arrays multiply), pointers are 8.
    pub fn size_of(&self, id: u32) -> Result<u32, BtfError> {
        let mut seen = [0u32; MAX_RESOLVE_DEPTH as usize];
        let mut nelems: u32 = 1;
        let mut cur = id;
        let overflow = || BtfError::SizeOverflow { type_id: id };
        for depth in 0..MAX_RESOLVE_DEPTH as usize {
            let ty = self.type_by_id(cur)?;
            let next = match ty {
                BtfType::Ptr { .. } => return nelems.checked_mul(8).ok_or_else(overflow),
                BtfType::Array(a) => {
                    nelems = nelems.checked_mul(a.nelems).ok_or_else(overflow)?;
                    a.elem_type
                }
                BtfType::Typedef { type_id, .. }
                | BtfType::Volatile { type_id }
                | BtfType::Const { type_id }
                | BtfType::Restrict { type_id }
                | BtfType::Var { type_id, .. }
                | BtfType::DeclTag { type_id, .. }
                | BtfType::TypeTag { type_id, .. } => *type_id,
                other => match other.own_size() {
                    Some(size) => return nelems.checked_mul(size).ok_or_else(overflow),
                    None => return Err(BtfError::NoSize { type_id: cur, kind: other.kind() }),
                },
            };
            if seen[..depth].contains(&cur) {
                return Err(BtfError::Cycle { type_id: id });
            }
            seen[depth] = cur;
            cur = next;
        }
        Err(self.deep_or_cycle(id, cur, &seen))
    }

    /// The first type id with this exact name and kind.
    pub fn find_by_name(&self, name: &str, kind: BtfKind) -> Option<u32> {
        self.types()
            .find(|(_, t)| {
                t.kind() == kind && self.string_bytes_at(t.name_off()).ok() == Some(name.as_bytes())
            })
            .map(|(id, _)| id)
    }

    /// The data section named `name` (e.g. `.maps`, `.data`) and its type id.
    pub fn datasec(&self, name: &str) -> Option<(u32, &Datasec)> {
        self.types().find_map(|(id, t)| match t {
            BtfType::Datasec(d)
                if self.string_bytes_at(d.name_off).ok() == Some(name.as_bytes()) =>
            {
                Some((id, d))
            }
            _ => None,
        })
    }

    /// Name of member `idx` of struct/union `id` (`""` if anonymous).
    pub fn member_name(&self, id: u32, idx: usize) -> Result<&str, BtfError> {
        let ty = self.type_by_id(id)?;
        let off = ty
            .as_composite()
            .and_then(|c| c.members.get(idx))
            .map(|m| m.name_off)
            .ok_or(BtfError::MemberNotFound { type_id: id, index: idx })?;
        self.string_at(off)
    }
}
