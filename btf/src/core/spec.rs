//! Access specs: parsing a relocation's access string against the local BTF
//! (`bpf_core_parse_spec`) and matching it against a target candidate
//! (`bpf_core_spec_match`, `bpf_core_match_member`).

use super::compat::{fields_are_compat, types_are_compat, types_match};
use super::{CoreError, Ctx, SPEC_MAX_LEN, essential_name};
use crate::btf::Btf;
use crate::ext::{CoreRelo, CoreReloKind};
use crate::types::{Array, BtfType};

/// One high-level access step: a named field, an array index, or an enumerator.
#[derive(Debug, Clone)]
pub(crate) struct Accessor<'a> {
    /// The struct/union (named field), element type (array) or enum the step is in.
    pub(crate) type_id: u32,
    /// Member, element or enumerator index.
    pub(crate) idx: u32,
    /// Field or enumerator name; `None` for array indices.
    pub(crate) name: Option<&'a str>,
}

/// A parsed or matched access spec.
#[derive(Debug, Clone)]
pub(crate) struct Spec<'a> {
    pub(crate) btf: &'a Btf,
    /// The root type (as given, not resolved through typedefs).
    pub(crate) root_type_id: u32,
    /// Low-level spec: every index, including anonymous members.
    pub(crate) raw: Vec<u32>,
    /// High-level spec: named fields, array indices, enumerators.
    pub(crate) acc: Vec<Accessor<'a>>,
    /// Bit offset of the accessed field from the root.
    pub(crate) bit_offset: u64,
}

impl<'a> Spec<'a> {
    fn new(btf: &'a Btf, root_type_id: u32) -> Self {
        Spec { btf, root_type_id, raw: Vec::new(), acc: Vec::new(), bit_offset: 0 }
    }

    fn add_bits(&mut self, bits: u64, ctx: Ctx<'_>) -> Result<(), CoreError> {
        self.bit_offset = self
            .bit_offset
            .checked_add(bits)
            .ok_or(CoreError::Overflow { insn_off: ctx.insn_off() })?;
        Ok(())
    }
}

/// `idx * size * 8`, checked.
fn elem_bits(idx: u32, size: u32, ctx: Ctx<'_>) -> Result<u64, CoreError> {
    u64::from(idx)
        .checked_mul(u64::from(size))
        .and_then(|b| b.checked_mul(8))
        .ok_or(CoreError::Overflow { insn_off: ctx.insn_off() })
}

/// Whether `arr` is a flexible array: zero-sized and the last member of the struct named by
/// the previous accessor.
fn is_flex_arr(btf: &Btf, prev: Option<&Accessor<'_>>, arr: &Array) -> bool {
    let Some(prev) = prev else { return false };
    if prev.name.is_none() || arr.nelems > 0 {
        return false;
    }
    btf.type_by_id(prev.type_id).is_ok_and(|t| t.vlen() > 0 && prev.idx as usize == t.vlen() - 1)
}

/// Parses `"0:1:2"` into indices: decimal numbers separated by single colons.
fn parse_access(s: &str, ctx: Ctx<'_>) -> Result<Vec<u32>, CoreError> {
    let mut raw = Vec::new();
    for part in s.split(':') {
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ctx.invalid("expected decimal indices separated by ':'"));
        }
        if raw.len() == SPEC_MAX_LEN {
            return Err(CoreError::SpecTooLong { insn_off: ctx.insn_off(), max: SPEC_MAX_LEN });
        }
        raw.push(part.parse::<u32>().map_err(|_| ctx.invalid("index does not fit in u32"))?);
    }
    Ok(raw)
}

/// Turns `relo` into a spec against the local BTF, computing the local bit offset.
pub(crate) fn parse_spec<'a>(
    btf: &'a Btf,
    relo: &CoreRelo,
    ctx: Ctx<'_>,
) -> Result<Spec<'a>, CoreError> {
    let s = relo.access_str.as_str();
    if s.is_empty() {
        return Err(ctx.invalid("empty access string"));
    }
    let mut spec = Spec::new(btf, relo.type_id);
    if relo.kind.is_type_based() {
        if s != "0" {
            return Err(ctx.invalid("type-based relocations take access string \"0\""));
        }
        return Ok(spec);
    }
    spec.raw = parse_access(s, ctx)?;

    let (mut id, root) = btf.resolve_mods(relo.type_id).map_err(ctx.btf())?;
    let first = spec.raw[0];
    spec.acc.push(Accessor { type_id: id, idx: first, name: None });

    if relo.kind.is_enumval_based() {
        let e = root.as_enum().ok_or_else(|| ctx.invalid("enumerator relocation on a non-enum"))?;
        if spec.raw.len() > 1 {
            return Err(ctx.invalid("enumerator relocation with more than one index"));
        }
        let v = e.values.get(first as usize).ok_or(CoreError::AccessOutOfRange {
            insn_off: ctx.insn_off(),
            type_id: id,
            index: first,
        })?;
        spec.acc[0].name = Some(btf.string_at(v.name_off).map_err(ctx.btf())?);
        return Ok(spec);
    }

    let size = btf.size_of(id).map_err(ctx.btf())?;
    spec.bit_offset = elem_bits(first, size, ctx)?;
    for step in 1..spec.raw.len() {
        let (rid, t) = btf.resolve_mods(id).map_err(ctx.btf())?;
        let idx = spec.raw[step];
        match t {
            BtfType::Struct(c) | BtfType::Union(c) => {
                let m = c.members.get(idx as usize).ok_or(CoreError::AccessOutOfRange {
                    insn_off: ctx.insn_off(),
                    type_id: rid,
                    index: idx,
                })?;
                spec.add_bits(u64::from(m.bit_offset), ctx)?;
                if m.name_off != 0 {
                    let name = btf.string_at(m.name_off).map_err(ctx.btf())?;
                    if name.is_empty() {
                        return Err(ctx.invalid("member with empty name"));
                    }
                    spec.acc.push(Accessor { type_id: rid, idx, name: Some(name) });
                }
                id = m.type_id;
            }
            BtfType::Array(a) => {
                let elem = btf.skip_mods_and_typedefs(a.elem_type).map_err(ctx.btf())?;
                if !is_flex_arr(btf, spec.acc.last(), a) && idx >= a.nelems {
                    return Err(CoreError::AccessOutOfRange {
                        insn_off: ctx.insn_off(),
                        type_id: rid,
                        index: idx,
                    });
                }
                spec.acc.push(Accessor { type_id: elem, idx, name: None });
                let size = btf.size_of(elem).map_err(ctx.btf())?;
                spec.add_bits(elem_bits(idx, size, ctx)?, ctx)?;
                id = elem;
            }
            other => {
                return Err(CoreError::UnexpectedKind {
                    insn_off: ctx.insn_off(),
                    type_id: rid,
                    kind: other.kind(),
                    step,
                });
            }
        }
    }
    Ok(spec)
}

/// Finds the target member matching the named local accessor inside `targ_id`, descending
/// into anonymous struct/union members. Extends `spec` (raw indices, bit offset, one
/// accessor) and returns the member's type id, or `None` if there is no compatible match.
fn match_member<'a>(
    local: &Btf,
    local_acc: &Accessor<'_>,
    targ: &'a Btf,
    targ_id: u32,
    spec: &mut Spec<'a>,
    ctx: Ctx<'_>,
) -> Result<Option<u32>, CoreError> {
    ctx.tick()?;
    let (targ_id, targ_t) = targ.resolve_mods(targ_id).map_err(ctx.btf())?;
    let Some(targ_c) = targ_t.as_composite() else { return Ok(None) };
    let local_member = local
        .type_by_id(local_acc.type_id)
        .map_err(ctx.btf())?
        .as_composite()
        .and_then(|c| c.members.get(local_acc.idx as usize))
        .ok_or_else(|| ctx.invalid("named accessor is not a struct/union member"))?;
    let local_name = local_acc.name.unwrap_or("");

    for (i, m) in targ_c.members.iter().enumerate() {
        if spec.raw.len() == SPEC_MAX_LEN {
            return Err(CoreError::SpecTooLong { insn_off: ctx.insn_off(), max: SPEC_MAX_LEN });
        }
        let saved_bits = spec.bit_offset;
        spec.add_bits(u64::from(m.bit_offset), ctx)?;
        spec.raw.push(i as u32);
        let targ_name = targ.string_at(m.name_off).map_err(ctx.btf())?;
        if targ_name.is_empty() {
            // Embedded anonymous struct/union: look inside.
            if let Some(next) = match_member(local, local_acc, targ, m.type_id, spec, ctx)? {
                return Ok(Some(next));
            }
        } else if targ_name == local_name {
            if !fields_are_compat(local, local_member.type_id, targ, m.type_id, ctx)? {
                return Ok(None);
            }
            spec.acc.push(Accessor { type_id: targ_id, idx: i as u32, name: Some(targ_name) });
            return Ok(Some(m.type_id));
        }
        spec.bit_offset = saved_bits;
        spec.raw.pop();
    }
    Ok(None)
}

/// Matches a local spec against target candidate `targ_id`; `None` if it does not match.
pub(crate) fn spec_match<'a>(
    local: &Spec<'_>,
    targ: &'a Btf,
    targ_id: u32,
    ctx: Ctx<'_>,
) -> Result<Option<Spec<'a>>, CoreError> {
    let kind = ctx.relo.kind;
    let mut spec = Spec::new(targ, targ_id);

    if kind.is_type_based() {
        let ok = if kind == CoreReloKind::TypeMatches {
            types_match(local.btf, local.root_type_id, targ, targ_id, false, 32, ctx)?
        } else {
            types_are_compat(local.btf, local.root_type_id, targ, targ_id, 32, ctx)?
        };
        return Ok(ok.then_some(spec));
    }

    if kind.is_enumval_based() {
        let (tid, t) = targ.resolve_mods(targ_id).map_err(ctx.btf())?;
        let Some(e) = t.as_enum() else { return Ok(None) };
        let local_name = essential_name(local.acc.first().and_then(|a| a.name).unwrap_or(""));
        for (i, v) in e.values.iter().enumerate() {
            let name = targ.string_at(v.name_off).map_err(ctx.btf())?;
            if essential_name(name) == local_name {
                spec.acc.push(Accessor { type_id: tid, idx: i as u32, name: Some(name) });
                spec.raw.push(i as u32);
                return Ok(Some(spec));
            }
        }
        return Ok(None);
    }

    let mut targ_id = targ_id;
    for (i, lacc) in local.acc.iter().enumerate() {
        let (tid, t) = targ.resolve_mods(targ_id).map_err(ctx.btf())?;
        targ_id = tid;
        if lacc.name.is_some() {
            match match_member(local.btf, lacc, targ, targ_id, &mut spec, ctx)? {
                Some(next) => targ_id = next,
                None => return Ok(None),
            }
            continue;
        }
        // Array index (for i == 0, the root itself is the "element").
        if i > 0 {
            let BtfType::Array(a) = t else { return Ok(None) };
            if !is_flex_arr(targ, spec.acc.last(), a) && lacc.idx >= a.nelems {
                return Ok(None);
            }
            targ_id = targ.skip_mods_and_typedefs(a.elem_type).map_err(ctx.btf())?;
        }
        if spec.raw.len() == SPEC_MAX_LEN {
            return Err(CoreError::SpecTooLong { insn_off: ctx.insn_off(), max: SPEC_MAX_LEN });
        }
        spec.acc.push(Accessor { type_id: targ_id, idx: lacc.idx, name: None });
        spec.raw.push(lacc.idx);
        let size = targ.size_of(targ_id).map_err(ctx.btf())?;
        spec.add_bits(elem_bits(lacc.idx, size, ctx)?, ctx)?;
    }
    Ok(Some(spec))
}
