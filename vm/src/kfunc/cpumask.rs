//! `struct bpf_cpumask` kfuncs (kernel/bpf/cpumask.c): reference-counted CPU masks programs
//! create, change and test. A mask is a kernel-object region of the world: one bit per
//! simulated CPU (`nr_cpu_ids` = the world's CPU count) in 64-bit words, then the reference
//! count; a `struct cpumask *` argument is the same address. Every operation covers the first
//! `nr_cpu_ids` bits, as the kernel's do.

use crate::engine::ProgType;
use crate::helpers::{Allowed, HelperCtx, HelperError};
use crate::memory::{Perm, RegionKind};

/// Program types with the cpumask kfunc set.
pub(crate) const CPUMASK_SET: Allowed =
    Allowed::Only(&[ProgType::Tracing, ProgType::StructOps, ProgType::Syscall]);

/// Bytes of the bit words of a mask over `ncpus` CPUs.
fn words_len(ncpus: u32) -> usize {
    (ncpus as usize).div_ceil(64) * 8
}

/// The mask at `addr` (argument `arg`): its bits, checked to be a mask bpf_cpumask_create
/// made.
fn load(ctx: &HelperCtx<'_>, arg: u8, addr: u64) -> Result<Vec<bool>, HelperError> {
    let n = ctx.world.ncpus;
    let bad = HelperError::BadArg { arg, reason: "not a struct bpf_cpumask" };
    match ctx.world.mem.resolve(addr) {
        Some((id, RegionKind::Kernel, 0)) if ctx.world.mem.bytes(id).len() == words_len(n) + 4 => {
            let b = ctx.world.mem.bytes(id);
            Ok((0..n as usize).map(|i| b[i / 8] & (1 << (i % 8)) != 0).collect())
        }
        _ => Err(bad),
    }
}

fn store(ctx: &mut HelperCtx<'_>, arg: u8, addr: u64, bits: &[bool]) -> Result<(), HelperError> {
    load(ctx, arg, addr)?;
    let Some((id, _, _)) = ctx.world.mem.resolve(addr) else {
        return Err(HelperError::BadArg { arg, reason: "not a struct bpf_cpumask" });
    };
    let b = ctx.world.mem.contents_mut(id);
    for (i, &on) in bits.iter().enumerate() {
        if on {
            b[i / 8] |= 1 << (i % 8);
        } else {
            b[i / 8] &= !(1 << (i % 8));
        }
    }
    Ok(())
}

/// The reference count's offset in a mask region.
fn usage_off(ctx: &HelperCtx<'_>) -> usize {
    words_len(ctx.world.ncpus)
}

fn usage(ctx: &mut HelperCtx<'_>, addr: u64, delta: i32) -> Result<u32, HelperError> {
    load(ctx, 1, addr)?;
    let off = usage_off(ctx);
    let Some((id, _, _)) = ctx.world.mem.resolve(addr) else { return Ok(0) };
    let b = ctx.world.mem.contents_mut(id);
    let old = u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]]);
    let new = old.saturating_add_signed(delta);
    b[off..off + 4].copy_from_slice(&new.to_le_bytes());
    Ok(new)
}

/// `struct bpf_cpumask *bpf_cpumask_create(void)`: an empty mask with one reference.
pub(crate) fn create(ctx: &mut HelperCtx<'_>, _: [u64; 5]) -> Result<u64, HelperError> {
    let len = words_len(ctx.world.ncpus);
    let mut data = vec![0u8; len + 4];
    data[len..].copy_from_slice(&1u32.to_le_bytes());
    match ctx.world.mem.alloc(RegionKind::Kernel, data, Perm::ReadOnly) {
        Ok(id) => Ok(id.base()),
        // The kernel's allocation failure: NULL.
        Err(_) => Ok(0),
    }
}

/// `struct bpf_cpumask *bpf_cpumask_acquire(struct bpf_cpumask *cpumask)`.
pub(crate) fn acquire(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    usage(ctx, a[0], 1)?;
    Ok(a[0])
}

/// `void bpf_cpumask_release(struct bpf_cpumask *cpumask)`: frees it with its last reference.
pub(crate) fn release(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    if usage(ctx, a[0], -1)? == 0
        && let Some((id, _, _)) = ctx.world.mem.resolve(a[0])
    {
        ctx.world.mem.free(id);
    }
    Ok(0)
}

fn cpu_arg(ctx: &HelperCtx<'_>, v: u64) -> Option<usize> {
    let cpu = v as u32;
    (cpu < ctx.world.ncpus).then_some(cpu as usize)
}

/// `u32 bpf_cpumask_first(const struct cpumask *cpumask)` (`nr_cpu_ids` when empty).
pub(crate) fn first(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let bits = load(ctx, 1, a[0])?;
    Ok(bits.iter().position(|&b| b).unwrap_or(bits.len()) as u64)
}

/// `u32 bpf_cpumask_first_zero(const struct cpumask *cpumask)`.
pub(crate) fn first_zero(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let bits = load(ctx, 1, a[0])?;
    Ok(bits.iter().position(|&b| !b).unwrap_or(bits.len()) as u64)
}

/// `void bpf_cpumask_set_cpu(u32 cpu, struct bpf_cpumask *cpumask)` (no-op past the CPUs).
pub(crate) fn set_cpu(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let mut bits = load(ctx, 2, a[1])?;
    if let Some(cpu) = cpu_arg(ctx, a[0]) {
        bits[cpu] = true;
        store(ctx, 2, a[1], &bits)?;
    }
    Ok(0)
}

/// `void bpf_cpumask_clear_cpu(u32 cpu, struct bpf_cpumask *cpumask)`.
pub(crate) fn clear_cpu(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let mut bits = load(ctx, 2, a[1])?;
    if let Some(cpu) = cpu_arg(ctx, a[0]) {
        bits[cpu] = false;
        store(ctx, 2, a[1], &bits)?;
    }
    Ok(0)
}

/// `bool bpf_cpumask_test_cpu(u32 cpu, const struct cpumask *cpumask)`.
pub(crate) fn test_cpu(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let bits = load(ctx, 2, a[1])?;
    Ok(cpu_arg(ctx, a[0]).is_some_and(|c| bits[c]).into())
}

/// `bool bpf_cpumask_test_and_set_cpu(u32 cpu, struct bpf_cpumask *cpumask)`.
pub(crate) fn test_and_set_cpu(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let mut bits = load(ctx, 2, a[1])?;
    let Some(cpu) = cpu_arg(ctx, a[0]) else { return Ok(0) };
    let was = bits[cpu];
    bits[cpu] = true;
    store(ctx, 2, a[1], &bits)?;
    Ok(was.into())
}

/// `bool bpf_cpumask_test_and_clear_cpu(u32 cpu, struct bpf_cpumask *cpumask)`.
pub(crate) fn test_and_clear_cpu(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let mut bits = load(ctx, 2, a[1])?;
    let Some(cpu) = cpu_arg(ctx, a[0]) else { return Ok(0) };
    let was = bits[cpu];
    bits[cpu] = false;
    store(ctx, 2, a[1], &bits)?;
    Ok(was.into())
}

/// `void bpf_cpumask_setall(struct bpf_cpumask *cpumask)`.
pub(crate) fn setall(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let bits = load(ctx, 1, a[0])?;
    store(ctx, 1, a[0], &vec![true; bits.len()])?;
    Ok(0)
}

/// `void bpf_cpumask_clear(struct bpf_cpumask *cpumask)`.
pub(crate) fn clear(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let bits = load(ctx, 1, a[0])?;
    store(ctx, 1, a[0], &vec![false; bits.len()])?;
    Ok(0)
}

/// `dst = f(src1, src2)` bit by bit; returns whether `dst` has a bit set.
fn combine(
    ctx: &mut HelperCtx<'_>,
    a: [u64; 5],
    f: impl Fn(bool, bool) -> bool,
) -> Result<bool, HelperError> {
    let (x, y) = (load(ctx, 2, a[1])?, load(ctx, 3, a[2])?);
    let out: Vec<bool> = x.iter().zip(&y).map(|(&p, &q)| f(p, q)).collect();
    store(ctx, 1, a[0], &out)?;
    Ok(out.contains(&true))
}

/// `bool bpf_cpumask_and(struct bpf_cpumask *dst, const struct cpumask *src1, src2)`.
pub(crate) fn and(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    Ok(combine(ctx, a, |p, q| p && q)?.into())
}

/// `void bpf_cpumask_or(struct bpf_cpumask *dst, const struct cpumask *src1, src2)`.
pub(crate) fn or(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    combine(ctx, a, |p, q| p || q)?;
    Ok(0)
}

/// `void bpf_cpumask_xor(struct bpf_cpumask *dst, const struct cpumask *src1, src2)`.
pub(crate) fn xor(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    combine(ctx, a, |p, q| p != q)?;
    Ok(0)
}

/// `bool bpf_cpumask_equal(const struct cpumask *src1, const struct cpumask *src2)`.
pub(crate) fn equal(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    Ok((load(ctx, 1, a[0])? == load(ctx, 2, a[1])?).into())
}

/// `bool bpf_cpumask_intersects(const struct cpumask *src1, const struct cpumask *src2)`.
pub(crate) fn intersects(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let (x, y) = (load(ctx, 1, a[0])?, load(ctx, 2, a[1])?);
    Ok(x.iter().zip(&y).any(|(&p, &q)| p && q).into())
}

/// `bool bpf_cpumask_subset(const struct cpumask *src1, const struct cpumask *src2)`.
pub(crate) fn subset(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let (x, y) = (load(ctx, 1, a[0])?, load(ctx, 2, a[1])?);
    Ok(x.iter().zip(&y).all(|(&p, &q)| !p || q).into())
}

/// `bool bpf_cpumask_empty(const struct cpumask *cpumask)`.
pub(crate) fn empty(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    Ok((!load(ctx, 1, a[0])?.contains(&true)).into())
}

/// `bool bpf_cpumask_full(const struct cpumask *cpumask)`.
pub(crate) fn full(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    Ok((!load(ctx, 1, a[0])?.contains(&false)).into())
}

/// `void bpf_cpumask_copy(struct bpf_cpumask *dst, const struct cpumask *src)`.
pub(crate) fn copy(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let src = load(ctx, 2, a[1])?;
    store(ctx, 1, a[0], &src)?;
    Ok(0)
}

/// `u32 bpf_cpumask_weight(const struct cpumask *cpumask)`.
pub(crate) fn weight(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    Ok(load(ctx, 1, a[0])?.iter().filter(|&&b| b).count() as u64)
}
