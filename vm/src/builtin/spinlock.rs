//! `bpf_spin_lock` / `bpf_spin_unlock` for a single simulated CPU: the lock word (a `u32` in a
//! map value) is 1 while held. Locking a held lock or unlocking a free one faults, as the
//! verifier rejects programs that could do either. (The verifier's other rules, such as
//! unlocking before exit and no helper calls while locked, are not checked.)

use crate::helpers::{Allowed, ArgType, Helper, HelperCtx, HelperError, HelperProto, RetType};
use crate::memory::RegionKind;

/// The helpers of this family.
pub(super) const HELPERS: &[Helper] = &[
    Helper { proto: SPIN_LOCK, func: spin_lock },
    Helper { proto: SPIN_UNLOCK, func: spin_unlock },
];

const SPIN_LOCK: HelperProto = HelperProto {
    id: 93,
    name: "bpf_spin_lock",
    ret: RetType::Void,
    args: &[ArgType::PtrToSpinLock],
    gpl_only: false,
    prog_types: Allowed::All,
};

const SPIN_UNLOCK: HelperProto = HelperProto {
    id: 94,
    name: "bpf_spin_unlock",
    ret: RetType::Void,
    args: &[ArgType::PtrToSpinLock],
    gpl_only: false,
    prog_types: Allowed::All,
};

/// Sets the lock word at `addr` from `from` to `to`, or faults with `reason`.
fn swap(
    ctx: &mut HelperCtx<'_>,
    addr: u64,
    from: u64,
    to: u64,
    reason: &'static str,
) -> Result<u64, HelperError> {
    match ctx.world.mem.resolve(addr) {
        Some((_, RegionKind::MapValue, _)) => {}
        _ => return Err(HelperError::BadArg { arg: 1, reason: "not a spin lock in a map value" }),
    }
    let mem = &mut ctx.world.mem;
    let old = mem
        .atomic(addr, 4, |v| if v == from { to } else { v })
        .map_err(|error| HelperError::BadMemoryArg { arg: 1, error })?;
    if old != from {
        return Err(HelperError::BadArg { arg: 1, reason });
    }
    Ok(0)
}

/// `long bpf_spin_lock(struct bpf_spin_lock *lock)`.
fn spin_lock(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    swap(ctx, a[0], 0, 1, "the lock is already held (the verifier refuses nested bpf_spin_lock)")
}

/// `long bpf_spin_unlock(struct bpf_spin_lock *lock)`.
fn spin_unlock(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    swap(ctx, a[0], 1, 0, "the lock is not held (the verifier refuses an unmatched unlock)")
}
