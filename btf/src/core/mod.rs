//! CO-RE (compile once, run everywhere) relocation resolution, following libbpf's
//! `relo_core.c`: parse the local access spec, find target candidates by essential name,
//! match the spec against each, compute local and target values, and refuse ambiguity.

mod calc;
mod compat;
mod patch;
mod spec;

use crate::btf::Btf;
use crate::error::BtfError;
use crate::ext::{CoreRelo, CoreReloKind};
use crate::types::BtfType;

pub use patch::{POISON_IMM, patch_insn};

/// Which instruction field a loader patches with [`CoreResult::target_value`].
///
/// This is a hint from the relocation kind alone: field byte offsets are usually the `off`
/// of a load/store, everything else an immediate. Clang may put a byte-offset relocation on
/// an ALU instruction (`r1 += off`) too, so a loader must decide from the instruction's class;
/// [`patch_insn`] does exactly that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchSite {
    /// The 32-bit immediate (or both halves of an `ld_imm64`).
    Imm,
    /// The 16-bit load/store offset.
    Off,
}

/// The outcome of resolving one CO-RE relocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreResult {
    /// The value computed against the local (program) BTF: what the compiler put in the insn.
    pub local_value: u64,
    /// The value computed against the target BTF: what the insn must hold after patching.
    pub target_value: u64,
    /// No matching target: the instruction must be poisoned (libbpf turns it into a call to
    /// an invalid helper, which only fails verification if it is reachable).
    pub poison: bool,
    /// Which instruction field the value usually goes to (see [`PatchSite`]).
    pub patch: PatchSite,
    /// Whether the instruction's current value must equal `local_value` before patching
    /// (false for bitfields and type ids, as in libbpf).
    pub validate: bool,
    /// Memory access size in bytes for the local field (0 if not a sized field access).
    pub local_size: u32,
    /// Memory access size in bytes for the target field (0 if not a sized field access).
    pub target_size: u32,
    /// The sizes differ and the load/store cannot simply be resized (not a pointer or an
    /// unsigned integer): a load/store instruction must be poisoned instead.
    pub fail_memsz_adjust: bool,
    /// Root type id of the target candidate that matched, if any.
    pub target_type_id: Option<u32>,
}

/// Why a CO-RE relocation could not be resolved or applied.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CoreError {
    /// A BTF lookup failed while resolving.
    #[error("CO-RE relo at insn_off {insn_off}: {source}")]
    Btf {
        /// Byte offset of the relocated instruction.
        insn_off: u32,
        /// The BTF error.
        #[source]
        source: BtfError,
    },
    /// The access string is malformed or does not fit the root type.
    #[error(
        "CO-RE relo at insn_off {insn_off}: bad access string {access_str:?} on type [{type_id}]: {reason}"
    )]
    InvalidSpec {
        /// Byte offset of the relocated instruction.
        insn_off: u32,
        /// Local root type id.
        type_id: u32,
        /// The access string.
        access_str: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// An access index is past the members of a struct/union or the end of an array.
    #[error(
        "CO-RE relo at insn_off {insn_off}: access index {index} out of range for type [{type_id}]"
    )]
    AccessOutOfRange {
        /// Byte offset of the relocated instruction.
        insn_off: u32,
        /// The struct/union/enum/array type indexed.
        type_id: u32,
        /// The index.
        index: u32,
    },
    /// The access string steps into a type that is neither struct, union nor array.
    #[error(
        "CO-RE relo at insn_off {insn_off}: access step {step} reaches type [{type_id}] of unexpected kind {kind}"
    )]
    UnexpectedKind {
        /// Byte offset of the relocated instruction.
        insn_off: u32,
        /// The type reached.
        type_id: u32,
        /// Its kind.
        kind: crate::types::BtfKind,
        /// Index of the access step.
        step: usize,
    },
    /// The access path is longer than libbpf's 64 levels (or the search got too deep).
    #[error("CO-RE relo at insn_off {insn_off}: access spec deeper than {max} levels")]
    SpecTooLong {
        /// Byte offset of the relocated instruction.
        insn_off: u32,
        /// The limit.
        max: usize,
    },
    /// Candidate search needs a named local type.
    #[error("CO-RE relo at insn_off {insn_off}: {kind} relocation on anonymous type [{type_id}]")]
    AnonymousType {
        /// Byte offset of the relocated instruction.
        insn_off: u32,
        /// Local root type id.
        type_id: u32,
        /// The relocation kind.
        kind: CoreReloKind,
    },
    /// Several target candidates matched and disagree.
    #[error(
        "CO-RE relo at insn_off {insn_off}: {what} ambiguity between target candidates [{first_id}] and [{other_id}]: {first} != {other}"
    )]
    Ambiguous {
        /// Byte offset of the relocated instruction.
        insn_off: u32,
        /// `field offset` (bits) or `relocation value`.
        what: &'static str,
        /// The first matching candidate.
        first_id: u32,
        /// The disagreeing candidate.
        other_id: u32,
        /// The first candidate's value.
        first: u64,
        /// The disagreeing candidate's value.
        other: u64,
    },
    /// A bitfield that cannot be read with one load of at most 8 bytes.
    #[error(
        "CO-RE relo at insn_off {insn_off}: bitfield in type [{type_id}] can't be read with a 64-bit load"
    )]
    BitfieldTooWide {
        /// Byte offset of the relocated instruction.
        insn_off: u32,
        /// The struct/union holding the bitfield.
        type_id: u32,
    },
    /// The relocation kind cannot apply to an array element access.
    #[error(
        "CO-RE relo at insn_off {insn_off}: {kind} relocation can't be applied to an array access"
    )]
    ArrayAccess {
        /// Byte offset of the relocated instruction.
        insn_off: u32,
        /// The relocation kind.
        kind: CoreReloKind,
    },
    /// An offset computation overflowed.
    #[error("CO-RE relo at insn_off {insn_off}: offset overflow")]
    Overflow {
        /// Byte offset of the relocated instruction.
        insn_off: u32,
    },
    /// Matching types needed too many steps (malformed or adversarial BTF).
    #[error("CO-RE relo at insn_off {insn_off}: type comparison exceeded its step budget or depth")]
    Budget {
        /// Byte offset of the relocated instruction.
        insn_off: u32,
    },
    /// The instruction cannot be patched as the relocation requires.
    #[error("CO-RE patch at insn_off {insn_off}: {reason}")]
    Patch {
        /// Byte offset of the instruction.
        insn_off: u32,
        /// What is wrong.
        reason: String,
    },
}

/// libbpf's `BPF_CORE_SPEC_MAX_LEN`.
pub(crate) const SPEC_MAX_LEN: usize = 64;

/// Context for errors: which relocation is being resolved.
#[derive(Clone, Copy)]
pub(crate) struct Ctx<'r> {
    pub(crate) relo: &'r CoreRelo,
    /// Remaining steps for recursive type comparisons.
    pub(crate) budget: &'r std::cell::Cell<u32>,
}

impl Ctx<'_> {
    pub(crate) fn insn_off(&self) -> u32 {
        self.relo.insn_off
    }

    pub(crate) fn btf(&self) -> impl Fn(BtfError) -> CoreError + '_ {
        move |source| CoreError::Btf { insn_off: self.relo.insn_off, source }
    }

    pub(crate) fn invalid(&self, reason: &'static str) -> CoreError {
        CoreError::InvalidSpec {
            insn_off: self.relo.insn_off,
            type_id: self.relo.type_id,
            access_str: self.relo.access_str.clone(),
            reason,
        }
    }

    /// Spends one step of the comparison budget.
    pub(crate) fn tick(&self) -> Result<(), CoreError> {
        match self.budget.get().checked_sub(1) {
            Some(left) => {
                self.budget.set(left);
                Ok(())
            }
            None => Err(CoreError::Budget { insn_off: self.relo.insn_off }),
        }
    }
}

/// Steps allowed for recursive comparisons per relocation (generous for real BTF, bounded
/// for adversarial BTF whose anonymous-member or prototype fan-out would be exponential).
const STEP_BUDGET: u32 = 1 << 20;

/// Length of `name` without a `___flavor` suffix (libbpf's `bpf_core_essential_name_len`):
/// the last `X___Y` with `X` and `Y` not underscores cuts after `X`.
pub fn essential_name_len(name: &str) -> usize {
    let b = name.as_bytes();
    let n = b.len();
    if n >= 5 {
        for i in (0..=n - 5).rev() {
            if b[i] != b'_' && &b[i + 1..i + 4] == b"___" && b[i + 4] != b'_' {
                return i + 1;
            }
        }
    }
    n
}

/// `name` without its `___flavor` suffix.
pub fn essential_name(name: &str) -> &str {
    &name[..essential_name_len(name)]
}

/// Whether two types are of CO-RE-compatible kinds (same kind, or enum vs enum64).
pub(crate) fn kind_core_compat(a: &BtfType, b: &BtfType) -> bool {
    a.kind() == b.kind() || (a.is_any_enum() && b.is_any_enum())
}

/// Target type ids that are candidates for local type `local_id`: same (core-compatible)
/// kind and same essential name, in id order.
pub fn find_candidates(local: &Btf, local_id: u32, target: &Btf) -> Result<Vec<u32>, BtfError> {
    let local_t = local.type_by_id(local_id)?;
    let local_name = essential_name(local.string_at(local_t.name_off())?);
    if local_name.is_empty() {
        return Ok(Vec::new());
    }
    Ok(target
        .types()
        .filter(|(_, t)| kind_core_compat(t, local_t))
        .filter(|(_, t)| {
            target
                .string_at(t.name_off())
                .is_ok_and(|n| !n.is_empty() && essential_name(n) == local_name)
        })
        .map(|(id, _)| id)
        .collect())
}

/// Resolves CO-RE relocation `relo` of a program with BTF `local` against `target` (usually
/// the kernel's BTF), as libbpf's `bpf_core_calc_relo_insn` does.
///
/// No candidate: `*_EXISTS` and type-based kinds give 0, the others set `poison`.
/// Candidates that resolve to different values give [`CoreError::Ambiguous`].
pub fn resolve(local: &Btf, target: &Btf, relo: &CoreRelo) -> Result<CoreResult, CoreError> {
    let budget = std::cell::Cell::new(STEP_BUDGET);
    let ctx = Ctx { relo, budget: &budget };
    let local_type = local.type_by_id(relo.type_id).map_err(ctx.btf())?;
    let local_name = local.string_at(local_type.name_off()).map_err(ctx.btf())?;
    let local_spec = spec::parse_spec(local, relo, ctx)?;
    let patch =
        if relo.kind == CoreReloKind::FieldByteOffset { PatchSite::Off } else { PatchSite::Imm };

    if relo.kind == CoreReloKind::TypeIdLocal {
        return Ok(CoreResult {
            local_value: u64::from(relo.type_id),
            target_value: u64::from(relo.type_id),
            poison: false,
            patch,
            validate: false,
            local_size: 0,
            target_size: 0,
            fail_memsz_adjust: false,
            target_type_id: None,
        });
    }
    if local_name.is_empty() {
        return Err(CoreError::AnonymousType {
            insn_off: relo.insn_off,
            type_id: relo.type_id,
            kind: relo.kind,
        });
    }

    let cands = find_candidates(local, relo.type_id, target).map_err(ctx.btf())?;
    let mut best: Option<(calc::RelRes, spec::Spec<'_>)> = None;
    for cand in cands {
        let Some(cand_spec) = spec::spec_match(&local_spec, target, cand, ctx)? else {
            continue;
        };
        let res = calc::calc_relo(relo.kind, &local_spec, Some(&cand_spec), ctx)?;
        match &best {
            None => best = Some((res, cand_spec)),
            Some((first, first_spec)) => {
                let ambiguous = |what, a, b| CoreError::Ambiguous {
                    insn_off: relo.insn_off,
                    what,
                    first_id: first_spec.root_type_id,
                    other_id: cand_spec.root_type_id,
                    first: a,
                    other: b,
                };
                if cand_spec.bit_offset != first_spec.bit_offset {
                    return Err(ambiguous(
                        "field offset",
                        first_spec.bit_offset,
                        cand_spec.bit_offset,
                    ));
                }
                if res.poison != first.poison || res.new_val != first.new_val {
                    return Err(ambiguous("relocation value", first.new_val, res.new_val));
                }
            }
        }
    }
    let (res, target_type_id) = match best {
        Some((res, spec)) => (res, Some(spec.root_type_id)),
        None => (calc::calc_relo(relo.kind, &local_spec, None, ctx)?, None),
    };
    Ok(CoreResult {
        local_value: res.orig_val,
        target_value: res.new_val,
        poison: res.poison,
        patch,
        validate: res.validate,
        local_size: res.orig_sz,
        target_size: res.new_sz,
        fail_memsz_adjust: res.fail_memsz_adjust,
        target_type_id,
    })
}

#[cfg(test)]
mod tests {
    use super::essential_name;

    #[test]
    fn flavor_suffixes() {
        assert_eq!(essential_name("task_struct___old"), "task_struct");
        assert_eq!(essential_name("task_struct"), "task_struct");
        assert_eq!(essential_name("a___b___c"), "a___b");
        assert_eq!(essential_name("list_head___bad"), "list_head");
        // X___Y needs non-underscores on both sides.
        assert_eq!(essential_name("___x"), "___x");
        assert_eq!(essential_name("a____b"), "a____b");
        assert_eq!(essential_name("a___"), "a___");
        assert_eq!(essential_name("x___2"), "x");
        assert_eq!(essential_name(""), "");
    }
}
