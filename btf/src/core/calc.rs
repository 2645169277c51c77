//! Value computation for matched specs (`bpf_core_calc_field_relo`,
//! `bpf_core_calc_type_relo`, `bpf_core_calc_enumval_relo`, `bpf_core_calc_relo`).

use super::spec::Spec;
use super::{CoreError, Ctx};
use crate::ext::CoreReloKind;
use crate::types::{BtfType, Int};

/// One side's computed value, or a request to poison the instruction.
enum Calc {
    Val {
        val: u64,
        /// Memory access size of the field (0 if not relevant).
        size: u32,
        /// Resolved field type id (0 if not relevant).
        type_id: u32,
        /// Whether the instruction's current value must match (local side only).
        validate: bool,
    },
    Poison,
}

fn val(val: u64, validate: bool) -> Calc {
    Calc::Val { val, size: 0, type_id: 0, validate }
}

/// Local and target values of one relocation against one candidate (or none).
#[derive(Debug, Clone)]
pub(crate) struct RelRes {
    pub(crate) orig_val: u64,
    pub(crate) new_val: u64,
    pub(crate) poison: bool,
    pub(crate) validate: bool,
    pub(crate) fail_memsz_adjust: bool,
    pub(crate) orig_sz: u32,
    pub(crate) new_sz: u32,
}

fn calc_field(
    kind: CoreReloKind,
    spec: Option<&Spec<'_>>,
    ctx: Ctx<'_>,
) -> Result<Calc, CoreError> {
    if kind == CoreReloKind::FieldExists {
        return Ok(val(u64::from(spec.is_some()), true));
    }
    let Some(spec) = spec else { return Ok(Calc::Poison) };
    let btf = spec.btf;
    let Some(acc) = spec.acc.last() else { return Err(ctx.invalid("empty field spec")) };

    if acc.name.is_none() {
        // a[n] (or the root itself): only offset and size make sense.
        if !matches!(kind, CoreReloKind::FieldByteOffset | CoreReloKind::FieldByteSize) {
            return Err(CoreError::ArrayAccess { insn_off: ctx.insn_off(), kind });
        }
        let size = btf.size_of(acc.type_id).map_err(ctx.btf())?;
        return Ok(if kind == CoreReloKind::FieldByteOffset {
            Calc::Val { val: spec.bit_offset / 8, size, type_id: acc.type_id, validate: true }
        } else {
            val(u64::from(size), true)
        });
    }

    let member = btf
        .type_by_id(acc.type_id)
        .map_err(ctx.btf())?
        .as_composite()
        .and_then(|c| c.members.get(acc.idx as usize))
        .ok_or_else(|| ctx.invalid("named accessor is not a struct/union member"))?;
    let (field_type_id, mt) = btf.resolve_mods(member.type_id).map_err(ctx.btf())?;
    let bit_off = spec.bit_offset;
    let mut bit_sz = u64::from(member.bitfield_size);
    let bitfield = bit_sz > 0;
    let overflow = || CoreError::Overflow { insn_off: ctx.insn_off() };
    let mut end_bits = bit_off.checked_add(bit_sz).ok_or_else(overflow)?;
    let (byte_off, byte_sz) = if bitfield {
        let mut byte_sz = u64::from(mt.own_size().unwrap_or(0));
        if byte_sz == 0 {
            return Err(ctx.invalid("bitfield of a sizeless type"));
        }
        let mut byte_off = bit_off / 8 / byte_sz * byte_sz;
        // Smallest load (up to 8 bytes) that covers the whole bitfield.
        while end_bits - byte_off * 8 > byte_sz * 8 {
            if byte_sz >= 8 {
                return Err(CoreError::BitfieldTooWide {
                    insn_off: ctx.insn_off(),
                    type_id: acc.type_id,
                });
            }
            byte_sz *= 2;
            byte_off = bit_off / 8 / byte_sz * byte_sz;
        }
        (byte_off, byte_sz)
    } else {
        let byte_sz = u64::from(btf.size_of(field_type_id).map_err(ctx.btf())?);
        bit_sz = byte_sz * 8;
        end_bits = bit_off.checked_add(bit_sz).ok_or_else(overflow)?;
        (bit_off / 8, byte_sz)
    };
    // Bitfield offsets and sizes are ambiguous (the compiler may pick another load), so only
    // signedness and right shifts are validated for them.
    let validate = !bitfield;
    Ok(match kind {
        CoreReloKind::FieldByteOffset if bitfield => val(byte_off, validate),
        CoreReloKind::FieldByteOffset => {
            Calc::Val { val: byte_off, size: byte_sz as u32, type_id: field_type_id, validate }
        }
        CoreReloKind::FieldByteSize => val(byte_sz, validate),
        CoreReloKind::FieldSigned => {
            let signed = match mt {
                BtfType::Enum(e) | BtfType::Enum64(e) => e.signed,
                BtfType::Int(i) => i.is_signed(),
                _ => false,
            };
            val(u64::from(signed), true)
        }
        // Little-endian: bits above the field shifted out of a u64.
        CoreReloKind::FieldLshiftU64 => val(64u64.wrapping_sub(end_bits - byte_off * 8), validate),
        CoreReloKind::FieldRshiftU64 => val(64u64.wrapping_sub(bit_sz), true),
        _ => return Err(ctx.invalid("not a field relocation")),
    })
}

fn calc_type(kind: CoreReloKind, spec: Option<&Spec<'_>>, ctx: Ctx<'_>) -> Result<Calc, CoreError> {
    let Some(spec) = spec else { return Ok(val(0, true)) };
    Ok(match kind {
        // Type ids may change during linking: never validated.
        CoreReloKind::TypeIdTarget => val(u64::from(spec.root_type_id), false),
        CoreReloKind::TypeExists | CoreReloKind::TypeMatches => val(1, true),
        CoreReloKind::TypeSize => {
            val(u64::from(spec.btf.size_of(spec.root_type_id).map_err(ctx.btf())?), true)
        }
        _ => return Err(ctx.invalid("not a type relocation")),
    })
}

fn calc_enumval(
    kind: CoreReloKind,
    spec: Option<&Spec<'_>>,
    ctx: Ctx<'_>,
) -> Result<Calc, CoreError> {
    match kind {
        CoreReloKind::EnumvalExists => Ok(val(u64::from(spec.is_some()), true)),
        CoreReloKind::EnumvalValue => {
            let Some(spec) = spec else { return Ok(Calc::Poison) };
            let Some(acc) = spec.acc.first() else { return Err(ctx.invalid("empty enum spec")) };
            let ty = spec.btf.type_by_id(acc.type_id).map_err(ctx.btf())?;
            let v = ty
                .as_enum()
                .and_then(|e| e.values.get(acc.idx as usize))
                .ok_or_else(|| ctx.invalid("enumerator accessor out of range"))?;
            Ok(val(
                match ty {
                    // libbpf reads the 32-bit value as s32 and widens it: sign-extended.
                    BtfType::Enum(_) => v.value as i32 as i64 as u64,
                    _ => v.value as u64,
                },
                true,
            ))
        }
        _ => Err(ctx.invalid("not an enumerator relocation")),
    }
}

fn is_unsigned_int(t: &BtfType) -> bool {
    // libbpf compares the whole encoding with BTF_INT_SIGNED, so `signed char` counts too.
    matches!(t, BtfType::Int(i) if i.encoding != Int::SIGNED)
}

/// Computes local and target values for `kind`; `targ` is `None` when no candidate matched.
pub(crate) fn calc_relo(
    kind: CoreReloKind,
    local: &Spec<'_>,
    targ: Option<&Spec<'_>>,
    ctx: Ctx<'_>,
) -> Result<RelRes, CoreError> {
    let calc: fn(CoreReloKind, Option<&Spec<'_>>, Ctx<'_>) -> Result<Calc, CoreError> =
        if kind.is_field_based() {
            calc_field
        } else if kind.is_type_based() {
            calc_type
        } else {
            calc_enumval
        };
    let mut res = RelRes {
        orig_val: 0,
        new_val: 0,
        poison: false,
        validate: true,
        fail_memsz_adjust: false,
        orig_sz: 0,
        new_sz: 0,
    };
    let Calc::Val { val: orig, size: orig_sz, type_id: orig_tid, validate } =
        calc(kind, Some(local), ctx)?
    else {
        return Err(ctx.invalid("local spec cannot be computed"));
    };
    res.orig_val = orig;
    res.orig_sz = orig_sz;
    res.validate = validate;
    match calc(kind, targ, ctx)? {
        Calc::Poison => res.poison = true,
        Calc::Val { val: new, size: new_sz, type_id: new_tid, .. } => {
            res.new_val = new;
            res.new_sz = new_sz;
            if kind.is_field_based() && orig_sz != new_sz {
                // Resizing a load/store is only safe for pointers and unsigned integers.
                let ot = local.btf.type_by_id(orig_tid).map_err(ctx.btf())?;
                let nt = targ
                    .map(|t| t.btf.type_by_id(new_tid))
                    .transpose()
                    .map_err(ctx.btf())?
                    .unwrap_or(&BtfType::Void);
                let ptrs = matches!(ot, BtfType::Ptr { .. }) && matches!(nt, BtfType::Ptr { .. });
                res.fail_memsz_adjust = !(ptrs || (is_unsigned_int(ot) && is_unsigned_int(nt)));
            }
        }
    }
    Ok(res)
}
