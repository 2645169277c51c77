//! Type compatibility checks of libbpf's CO-RE: `bpf_core_fields_are_compat`,
//! `__bpf_core_types_are_compat` and `__bpf_core_types_match`. All loops and recursions are
//! bounded by depth (32, as libbpf) and by the relocation's step budget.

use super::{CoreError, Ctx, essential_name, kind_core_compat};
use crate::btf::{Btf, MAX_RESOLVE_DEPTH};
use crate::error::BtfError;
use crate::types::{BtfType, Enum};

fn too_deep(ctx: Ctx<'_>, type_id: u32) -> CoreError {
    CoreError::Btf {
        insn_off: ctx.insn_off(),
        source: BtfError::TooDeep { type_id, depth: MAX_RESOLVE_DEPTH },
    }
}

/// Whether two (possibly flavoured) names are the same, or either is anonymous.
fn names_compat_or_anon(a: &str, b: &str) -> bool {
    let (a, b) = (essential_name(a), essential_name(b));
    a.is_empty() || b.is_empty() || a == b
}

/// Field-type compatibility for field relocations: composites always match, ints ignore
/// size and sign, enums/fwds need equal essential names (or one anonymous), arrays recurse
/// on their element types.
pub(crate) fn fields_are_compat(
    local: &Btf,
    local_id: u32,
    targ: &Btf,
    targ_id: u32,
    ctx: Ctx<'_>,
) -> Result<bool, CoreError> {
    let (mut lid, mut tid) = (local_id, targ_id);
    for _ in 0..MAX_RESOLVE_DEPTH {
        ctx.tick()?;
        let (_, lt) = local.resolve_mods(lid).map_err(ctx.btf())?;
        let (_, tt) = targ.resolve_mods(tid).map_err(ctx.btf())?;
        if lt.is_composite() && tt.is_composite() {
            return Ok(true);
        }
        if !kind_core_compat(lt, tt) {
            return Ok(false);
        }
        return Ok(match (lt, tt) {
            (BtfType::Ptr { .. }, _) | (BtfType::Float { .. }, _) => true,
            (BtfType::Fwd { .. } | BtfType::Enum(_) | BtfType::Enum64(_), _) => {
                let ln = local.string_at(lt.name_off()).map_err(ctx.btf())?;
                let tn = targ.string_at(tt.name_off()).map_err(ctx.btf())?;
                names_compat_or_anon(ln, tn)
            }
            (BtfType::Int(li), BtfType::Int(ti)) => li.offset == 0 && ti.offset == 0,
            (BtfType::Array(la), BtfType::Array(ta)) => {
                lid = la.elem_type;
                tid = ta.elem_type;
                continue;
            }
            _ => false,
        });
    }
    Err(too_deep(ctx, local_id))
}

/// Type compatibility for type-based relocations (libbpf's `__bpf_core_types_are_compat`):
/// kinds must agree; composites, enums and fwds match by name (already checked by the
/// candidate search); pointers, arrays and prototypes recurse.
pub(crate) fn types_are_compat(
    local: &Btf,
    local_id: u32,
    targ: &Btf,
    targ_id: u32,
    level: u32,
    ctx: Ctx<'_>,
) -> Result<bool, CoreError> {
    let lt = local.type_by_id(local_id).map_err(ctx.btf())?;
    let tt = targ.type_by_id(targ_id).map_err(ctx.btf())?;
    if !kind_core_compat(lt, tt) {
        return Ok(false);
    }
    let (mut lid, mut tid) = (local_id, targ_id);
    for _ in 0..MAX_RESOLVE_DEPTH {
        ctx.tick()?;
        let (_, lt) = local.resolve_mods(lid).map_err(ctx.btf())?;
        let (_, tt) = targ.resolve_mods(tid).map_err(ctx.btf())?;
        if !kind_core_compat(lt, tt) {
            return Ok(false);
        }
        match (lt, tt) {
            (
                BtfType::Void
                | BtfType::Struct(_)
                | BtfType::Union(_)
                | BtfType::Enum(_)
                | BtfType::Enum64(_)
                | BtfType::Fwd { .. },
                _,
            ) => return Ok(true),
            (BtfType::Int(li), BtfType::Int(ti)) => return Ok(li.offset == 0 && ti.offset == 0),
            (BtfType::Ptr { type_id: l }, BtfType::Ptr { type_id: t }) => {
                (lid, tid) = (*l, *t);
            }
            (BtfType::Array(la), BtfType::Array(ta)) => {
                (lid, tid) = (la.elem_type, ta.elem_type);
            }
            (
                BtfType::FuncProto { ret_type: lr, params: lp },
                BtfType::FuncProto { ret_type: tr, params: tp },
            ) => {
                if lp.len() != tp.len() {
                    return Ok(false);
                }
                for (l, t) in lp.iter().zip(tp) {
                    if level == 0 {
                        return Err(too_deep(ctx, local_id));
                    }
                    let l = local.skip_mods_and_typedefs(l.type_id).map_err(ctx.btf())?;
                    let t = targ.skip_mods_and_typedefs(t.type_id).map_err(ctx.btf())?;
                    if !types_are_compat(local, l, targ, t, level - 1, ctx)? {
                        return Ok(false);
                    }
                }
                lid = local.skip_mods_and_typedefs(*lr).map_err(ctx.btf())?;
                tid = targ.skip_mods_and_typedefs(*tr).map_err(ctx.btf())?;
            }
            _ => return Ok(false),
        }
    }
    Err(too_deep(ctx, local_id))
}

/// libbpf's `bpf_core_names_match`: an anonymous target matches only an anonymous local;
/// otherwise essential names must be equal.
fn names_match(local: &Btf, lo: u32, targ: &Btf, to: u32, ctx: Ctx<'_>) -> Result<bool, CoreError> {
    let ln = local.string_at(lo).map_err(ctx.btf())?;
    let tn = targ.string_at(to).map_err(ctx.btf())?;
    if tn.is_empty() {
        return Ok(ln.is_empty());
    }
    Ok(essential_name(ln) == essential_name(tn))
}

fn enums_match(
    local: &Btf,
    le: &Enum,
    targ: &Btf,
    te: &Enum,
    ctx: Ctx<'_>,
) -> Result<bool, CoreError> {
    if le.size != te.size || le.values.len() > te.values.len() {
        return Ok(false);
    }
    for lv in &le.values {
        let mut matched = false;
        for tv in &te.values {
            ctx.tick()?;
            if names_match(local, lv.name_off, targ, tv.name_off, ctx)? {
                matched = true;
                break;
            }
        }
        if !matched {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Type "matching" for `TYPE_MATCHES` (libbpf's `__bpf_core_types_match`): same kinds
/// (struct/union behind a pointer may match a fwd), ints of equal size and sign, enums whose
/// local enumerators all exist in the target, composites whose local members all exist
/// (recursively matching unless behind a pointer), arrays of equal length, prototypes.
#[allow(clippy::too_many_arguments)]
pub(crate) fn types_match(
    local: &Btf,
    local_id: u32,
    targ: &Btf,
    targ_id: u32,
    behind_ptr: bool,
    level: u32,
    ctx: Ctx<'_>,
) -> Result<bool, CoreError> {
    if level == 0 {
        return Err(too_deep(ctx, local_id));
    }
    let (mut lid, mut tid, mut behind_ptr) = (local_id, targ_id, behind_ptr);
    for _ in 0..MAX_RESOLVE_DEPTH {
        ctx.tick()?;
        let (_, lt) = local.resolve_mods(lid).map_err(ctx.btf())?;
        let (_, tt) = targ.resolve_mods(tid).map_err(ctx.btf())?;
        if !names_match(local, lt.name_off(), targ, tt.name_off(), ctx)? {
            return Ok(false);
        }
        match lt {
            BtfType::Void => return Ok(matches!(tt, BtfType::Void)),
            BtfType::Fwd { is_union: lf, .. } => {
                return Ok(match tt {
                    BtfType::Fwd { is_union: tf, .. } => lf == tf,
                    BtfType::Struct(_) if behind_ptr => !lf,
                    BtfType::Union(_) if behind_ptr => *lf,
                    _ => false,
                });
            }
            BtfType::Enum(le) | BtfType::Enum64(le) => {
                return match tt.as_enum() {
                    Some(te) => enums_match(local, le, targ, te, ctx),
                    None => Ok(false),
                };
            }
            BtfType::Struct(lc) | BtfType::Union(lc) => {
                let local_union = matches!(lt, BtfType::Union(_));
                if behind_ptr {
                    return Ok(match tt {
                        _ if tt.kind() == lt.kind() => true,
                        BtfType::Fwd { is_union, .. } => *is_union == local_union,
                        _ => false,
                    });
                }
                if tt.kind() != lt.kind() {
                    return Ok(false);
                }
                let Some(tc) = tt.as_composite() else { return Ok(false) };
                if lc.members.len() > tc.members.len() {
                    return Ok(false);
                }
                for lm in &lc.members {
                    let mut matched = false;
                    for tm in &tc.members {
                        ctx.tick()?;
                        if !names_match(local, lm.name_off, targ, tm.name_off, ctx)? {
                            continue;
                        }
                        if types_match(
                            local,
                            lm.type_id,
                            targ,
                            tm.type_id,
                            behind_ptr,
                            level - 1,
                            ctx,
                        )? {
                            matched = true;
                            break;
                        }
                    }
                    if !matched {
                        return Ok(false);
                    }
                }
                return Ok(true);
            }
            BtfType::Int(li) => {
                return Ok(match tt {
                    BtfType::Int(ti) => li.size == ti.size && li.is_signed() == ti.is_signed(),
                    _ => false,
                });
            }
            BtfType::Ptr { type_id } => {
                let BtfType::Ptr { type_id: t } = tt else { return Ok(false) };
                behind_ptr = true;
                (lid, tid) = (*type_id, *t);
            }
            BtfType::Array(la) => {
                let BtfType::Array(ta) = tt else { return Ok(false) };
                if la.nelems != ta.nelems {
                    return Ok(false);
                }
                (lid, tid) = (la.elem_type, ta.elem_type);
            }
            BtfType::FuncProto { ret_type, params } => {
                let BtfType::FuncProto { ret_type: tr, params: tp } = tt else {
                    return Ok(false);
                };
                if params.len() != tp.len() {
                    return Ok(false);
                }
                for (l, t) in params.iter().zip(tp) {
                    if !types_match(local, l.type_id, targ, t.type_id, behind_ptr, level - 1, ctx)?
                    {
                        return Ok(false);
                    }
                }
                (lid, tid) = (*ret_type, *tr);
            }
            _ => return Ok(false),
        }
    }
    Err(too_deep(ctx, local_id))
}
