//! `bpf_trace_printk` and `bpf_trace_vprintk`: the kernel's printf subset (see
//! [`super::bprintf`]), output captured in the environment.

use super::bprintf;
use crate::helpers::{Allowed, ArgType, Helper, HelperCtx, HelperError, HelperProto, RetType};

/// The helpers of this family.
pub(super) const HELPERS: &[Helper] = &[
    Helper { proto: TRACE_PRINTK, func: trace_printk },
    Helper { proto: TRACE_VPRINTK, func: trace_vprintk },
];

const TRACE_VPRINTK: HelperProto = HelperProto {
    id: 177,
    name: "bpf_trace_vprintk",
    ret: RetType::Integer,
    args: &[
        ArgType::PtrToMem,
        ArgType::ConstSize,
        ArgType::PtrToMemOrNull,
        ArgType::ConstSizeOrZero,
    ],
    gpl_only: true,
    prog_types: Allowed::All,
};

/// Most arguments `bpf_trace_vprintk` takes (`MAX_TRACE_PRINTK_VARARGS`).
const MAX_VARARGS: u64 = 12;

const TRACE_PRINTK: HelperProto = HelperProto {
    id: 6,
    name: "bpf_trace_printk",
    ret: RetType::Integer,
    // The kernel's prototype types the format only: r3..r5 are the unchecked values.
    args: &[ArgType::PtrToMem, ArgType::ConstSize],
    gpl_only: true,
    prog_types: Allowed::All,
};

/// The kernel's output buffer (`MAX_BPRINTF_BUF`): longer lines are cut to 1023 bytes.
const MAX_LINE: usize = 1024;

/// `long bpf_trace_printk(const char *fmt, u32 fmt_size, ...)`: formats up to three arguments,
/// records the line and returns the formatted length (`-EINVAL`/`-ENOSPC` for a format the
/// kernel refuses).
fn trace_printk(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    if a[1] == 0 {
        return Err(HelperError::BadArg { arg: 2, reason: "format size must be > 0" });
    }
    let fmt = ctx.arg_str(1, a[0], a[1])?;
    print(ctx, &fmt, &a[2..5])
}

/// `long bpf_trace_vprintk(const char *fmt, u32 fmt_size, const void *data, u32 data_len)`:
/// like `bpf_trace_printk` with the arguments in an array of u64 (at most 12).
fn trace_vprintk(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    if a[1] == 0 {
        return Err(HelperError::BadArg { arg: 2, reason: "format size must be > 0" });
    }
    if !a[3].is_multiple_of(8) || a[3] > 8 * MAX_VARARGS || (a[2] == 0 && a[3] != 0) {
        return Ok(-22i64 as u64);
    }
    let fmt = ctx.arg_str(1, a[0], a[1])?;
    let data = ctx.arg_bytes(3, a[2], a[3])?;
    let args: Vec<u64> = data
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .collect();
    print(ctx, &fmt, &args)
}

/// Formats and records one trace line; returns its length or the kernel's errno.
fn print(ctx: &mut HelperCtx<'_>, fmt: &[u8], args: &[u64]) -> Result<u64, HelperError> {
    match bprintf::format(&ctx.world.mem, fmt, args, MAX_LINE - 1) {
        Ok(out) => {
            ctx.world.env.trace.push(String::from_utf8_lossy(&out.text).into_owned());
            Ok(out.len as u64)
        }
        Err(e) => Ok(e.errno() as u64),
    }
}
