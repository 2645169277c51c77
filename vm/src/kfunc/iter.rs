//! Open-coded numeric iterators (`bpf_iter_num_*`, what libbpf's `bpf_for()` and
//! `bpf_repeat()` expand to): an 8-byte `struct bpf_iter_num` on the stack holding the
//! current value and the end, as the kernel's `struct bpf_iter_num_kern` does.

use super::{E2BIG, EINVAL};
use crate::helpers::{HelperCtx, HelperError};

/// The kernel's `BPF_MAX_LOOPS`: the most iterations one iterator may run.
const BPF_MAX_LOOPS: i64 = 8 * 1024 * 1024;

fn read(ctx: &HelperCtx<'_>, addr: u64) -> Result<(i32, i32), HelperError> {
    let b = ctx.arg_bytes(1, addr, 8)?;
    let cur = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let end = i32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    Ok((cur, end))
}

fn write(ctx: &mut HelperCtx<'_>, addr: u64, cur: i32, end: i32) -> Result<(), HelperError> {
    let out = ctx
        .world
        .mem
        .slice_mut(addr, 8)
        .map_err(|error| HelperError::BadMemoryArg { arg: 1, error })?;
    out[..4].copy_from_slice(&cur.to_le_bytes());
    out[4..].copy_from_slice(&end.to_le_bytes());
    Ok(())
}

/// `int bpf_iter_num_new(struct bpf_iter_num *it, int start, int end)`.
pub(crate) fn num_new(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let (start, end) = (a[1] as i32, a[2] as i32);
    if start > end {
        write(ctx, a[0], 0, 0)?;
        return Ok(EINVAL);
    }
    if i64::from(end) - i64::from(start) > BPF_MAX_LOOPS {
        write(ctx, a[0], 0, 0)?;
        return Ok(E2BIG);
    }
    // The first `next` moves to `start`.
    write(ctx, a[0], start.wrapping_sub(1), end)?;
    Ok(0)
}

/// `int *bpf_iter_num_next(struct bpf_iter_num *it)`: a pointer to the current value (inside
/// the iterator), or NULL once the range is done.
pub(crate) fn num_next(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let (cur, end) = read(ctx, a[0])?;
    if i64::from(cur) + 1 >= i64::from(end) {
        write(ctx, a[0], 0, 0)?;
        return Ok(0);
    }
    write(ctx, a[0], cur + 1, end)?;
    Ok(a[0])
}

/// `void bpf_iter_num_destroy(struct bpf_iter_num *it)`.
pub(crate) fn num_destroy(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    write(ctx, a[0], 0, 0)?;
    Ok(0)
}
