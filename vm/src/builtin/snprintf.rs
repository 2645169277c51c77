//! `bpf_snprintf`: the kernel's BPF printf (see [`super::bprintf`]) into a buffer.

use super::bprintf::{self, FmtError};
use crate::helpers::{Allowed, ArgType, Helper, HelperCtx, HelperError, HelperProto, RetType};

/// The helpers of this family.
pub(super) const HELPERS: &[Helper] = &[Helper { proto: SNPRINTF, func: snprintf }];

const SNPRINTF: HelperProto = HelperProto {
    id: 165,
    name: "bpf_snprintf",
    ret: RetType::Integer,
    args: &[
        ArgType::PtrToMemOrNull,
        ArgType::ConstSizeOrZero,
        ArgType::PtrToConstStr,
        ArgType::PtrToMemOrNull,
        ArgType::ConstSizeOrZero,
    ],
    gpl_only: true,
    prog_types: Allowed::All,
};

/// `MAX_BPRINTF_VARARGS`.
const MAX_ARGS: u64 = 12;
/// Longest format string bpflab reads (the verifier bounds it by the map value).
const MAX_FMT: u64 = 1 << 16;

/// `long bpf_snprintf(char *str, u32 str_size, const char *fmt, u64 *data, u32 data_len)`:
/// formats into `str` (NUL-terminated, truncated to `str_size`); returns the length the whole
/// output needs, NUL included. A format the verifier would refuse faults.
fn snprintf(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let (str_addr, str_size, fmt_addr, data, data_len) =
        (a[0], u64::from(a[1] as u32), a[2], a[3], u64::from(a[4] as u32));
    if data_len % 8 != 0 {
        return Err(HelperError::BadArg { arg: 5, reason: "data_len must be a multiple of 8" });
    }
    let mut fmt = Vec::new();
    loop {
        let at = fmt_addr.wrapping_add(fmt.len() as u64);
        let b = ctx
            .world
            .mem
            .slice(at, 1)
            .map_err(|error| HelperError::BadMemoryArg { arg: 3, error })?[0];
        if b == 0 {
            break;
        }
        fmt.push(b);
        if fmt.len() as u64 >= MAX_FMT {
            return Err(HelperError::BadArg { arg: 3, reason: "format string is not terminated" });
        }
    }
    if data_len > MAX_ARGS * 8 || (data_len != 0 && data == 0) {
        return Ok(-22i64 as u64);
    }
    let raw = ctx.arg_bytes(4, data, data_len)?;
    let args: Vec<u64> = raw
        .chunks_exact(8)
        .map(|w| u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]))
        .collect();
    let cap = str_size.saturating_sub(1) as usize;
    let out = match bprintf::format(&ctx.world.mem, &fmt, &args, cap) {
        Ok(out) => out,
        Err(FmtError::Invalid(reason)) => return Err(HelperError::BadArg { arg: 3, reason }),
        Err(e @ FmtError::NoSpace) => return Ok(e.errno() as u64),
    };
    if str_size > 0 {
        let dst = ctx
            .world
            .mem
            .slice_mut(str_addr, str_size as usize)
            .map_err(|error| HelperError::BadMemoryArg { arg: 1, error })?;
        dst[..out.text.len()].copy_from_slice(&out.text);
        dst[out.text.len()] = 0;
    }
    Ok(out.len as u64 + 1)
}
