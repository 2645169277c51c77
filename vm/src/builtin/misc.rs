//! Time, random numbers and the CPU id, from the simulated environment.

use crate::engine::ProgType;
use crate::helpers::{Allowed, ArgType, Helper, HelperCtx, HelperError, HelperProto, RetType};

/// The helpers of this family.
pub(super) const HELPERS: &[Helper] = &[
    Helper { proto: KTIME_GET_NS, func: ktime_get_ns },
    Helper { proto: GET_PRANDOM_U32, func: get_prandom_u32 },
    Helper { proto: GET_SMP_PROCESSOR_ID, func: get_smp_processor_id },
    Helper { proto: GET_NUMA_NODE_ID, func: get_numa_node_id },
    Helper { proto: KTIME_GET_BOOT_NS, func: ktime_get_boot_ns },
    Helper { proto: KTIME_GET_COARSE_NS, func: ktime_get_ns },
    Helper { proto: STRNCMP, func: strncmp },
    Helper { proto: STRTOL, func: strtol },
    Helper { proto: STRTOUL, func: strtoul },
];

const fn proto(id: u32, name: &'static str, gpl_only: bool, prog_types: Allowed) -> HelperProto {
    HelperProto { id, name, ret: RetType::Integer, args: &[], gpl_only, prog_types }
}

use ProgType::{
    CgroupSkb, CgroupSock, CgroupSockAddr, CgroupSysctl, FlowDissector, LwtIn, LwtOut,
    LwtSeg6local, LwtXmit, SchedAct, SchedCls, SkLookup, SkMsg, SkReuseport, SkSkb, SockOps,
    SocketFilter, StructOps, Xdp,
};

/// Program types with `bpf_ktime_get_coarse_ns`: the networking ones (`bpf_sk_base_func_proto`,
/// `sock_filter_func_proto`), cgroup sysctl and tcp congestion-control struct_ops; not the
/// tracing ones, cgroup device/sockopt, syscall or netfilter programs (not in
/// `bpf_base_func_proto`; checked against Linux 6.18).
const COARSE_TYPES: &[ProgType] = &[
    SocketFilter,
    SchedCls,
    SchedAct,
    Xdp,
    CgroupSkb,
    CgroupSock,
    LwtIn,
    LwtOut,
    LwtXmit,
    SockOps,
    SkSkb,
    SkMsg,
    CgroupSockAddr,
    LwtSeg6local,
    SkReuseport,
    FlowDissector,
    CgroupSysctl,
    StructOps,
    SkLookup,
];

const KTIME_GET_NS: HelperProto = proto(5, "bpf_ktime_get_ns", false, Allowed::All);
const GET_PRANDOM_U32: HelperProto = proto(7, "bpf_get_prandom_u32", false, Allowed::All);
const GET_SMP_PROCESSOR_ID: HelperProto = proto(8, "bpf_get_smp_processor_id", false, Allowed::All);
const GET_NUMA_NODE_ID: HelperProto = proto(42, "bpf_get_numa_node_id", false, Allowed::All);
const KTIME_GET_BOOT_NS: HelperProto = proto(125, "bpf_ktime_get_boot_ns", false, Allowed::All);
const KTIME_GET_COARSE_NS: HelperProto =
    proto(160, "bpf_ktime_get_coarse_ns", false, Allowed::Only(COARSE_TYPES));

/// In `bpf_base_func_proto` for every program type.
const STRNCMP: HelperProto = HelperProto {
    id: 182,
    name: "bpf_strncmp",
    ret: RetType::Integer,
    args: &[ArgType::PtrToMem, ArgType::ConstSize, ArgType::PtrToConstStr],
    gpl_only: false,
    prog_types: Allowed::All,
};

/// `long bpf_strncmp(const char *s1, u32 s1_sz, const char *s2)`: the kernel's `strncmp(s1,
/// s2, s1_sz)`, which returns -1, 0 or 1 (the first differing bytes compared unsigned). `s2`
/// is a NUL-terminated constant string (the verifier wants it in a read-only map value).
fn strncmp(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let n = u64::from(a[1] as u32);
    if n == 0 {
        return Err(HelperError::BadArg { arg: 2, reason: "size must be greater than 0" });
    }
    let s1 = ctx.arg_bytes(1, a[0], n)?;
    for (i, &c1) in s1.iter().enumerate() {
        let at = a[2].wrapping_add(i as u64);
        let c2 = ctx
            .world
            .mem
            .slice(at, 1)
            .map_err(|error| HelperError::BadMemoryArg { arg: 3, error })?[0];
        if c1 != c2 {
            return Ok(if c1 < c2 { u64::MAX } else { 1 });
        }
        if c1 == 0 {
            break;
        }
    }
    Ok(0)
}

const STRTOX_ARGS: &[ArgType] =
    &[ArgType::PtrToMem, ArgType::ConstSize, ArgType::Anything, ArgType::PtrToLong];
/// In `bpf_base_func_proto` for every program type.
const STRTOL: HelperProto = HelperProto {
    id: 105,
    name: "bpf_strtol",
    ret: RetType::Integer,
    args: STRTOX_ARGS,
    gpl_only: false,
    prog_types: Allowed::All,
};
const STRTOUL: HelperProto = HelperProto { id: 106, name: "bpf_strtoul", ..STRTOL };

const EINVAL: i64 = -22;
const ERANGE: i64 = -34;
/// `BPF_STRTOX_BASE_MASK`.
const STRTOX_BASE_MASK: u64 = 0x1f;

/// The kernel's `isspace()` (its ctype table also counts Latin-1's no-break space).
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | 0xa0)
}

/// The digit value of `c` in bases up to 16.
fn digit(c: u8) -> Option<u64> {
    match c {
        b'0'..=b'9' => Some(u64::from(c - b'0')),
        b'a'..=b'f' => Some(u64::from(c - b'a' + 10)),
        b'A'..=b'F' => Some(u64::from(c - b'A' + 10)),
        _ => None,
    }
}

/// Parses an unsigned integer at the start of `buf` as the `bpf_strto*` helpers do: leading
/// white space, an optional `-`, then digits of `base` (0: C rules, `0x` hexadecimal, `0`
/// octal, else decimal; a `0x` prefix is allowed in base 16) from at most 63 bytes. Returns
/// the value, whether it was negative, and the bytes consumed, or the errno.
fn parse_unsigned(buf: &[u8], flags: u64) -> Result<(u64, bool, i64), i64> {
    let mut base = flags & STRTOX_BASE_MASK;
    if !matches!(base, 0 | 8 | 10 | 16) || flags & !STRTOX_BASE_MASK != 0 {
        return Err(EINVAL);
    }
    let mut at = buf.iter().take_while(|&&c| is_space(c)).count();
    let negative = buf.get(at) == Some(&b'-');
    if negative {
        at += 1;
    }
    if at == buf.len() {
        return Err(EINVAL);
    }
    // The digits are read from a NUL-terminated copy of at most 63 bytes.
    let rest = &buf[at..buf.len().min(at + 63)];
    let text: Vec<u8> = rest.iter().copied().take_while(|&c| c != 0).collect();
    let lower = |i: usize| text.get(i).map(u8::to_ascii_lowercase);
    let mut i = 0;
    if base == 0 {
        base = if text.first() == Some(&b'0') {
            if lower(1) == Some(b'x') && text.get(2).and_then(|&c| digit(c)).is_some() {
                16
            } else {
                8
            }
        } else {
            10
        };
    }
    if base == 16 && text.first() == Some(&b'0') && lower(1) == Some(b'x') {
        i = 2;
    }
    let (mut value, mut digits, mut overflow) = (0u64, 0, false);
    while let Some(d) = text.get(i).and_then(|&c| digit(c)).filter(|&d| d < base) {
        match value.checked_mul(base).and_then(|v| v.checked_add(d)) {
            Some(v) => value = v,
            None => {
                overflow = true;
                value = value.wrapping_mul(base).wrapping_add(d);
            }
        }
        digits += 1;
        i += 1;
    }
    if overflow {
        return Err(ERANGE);
    }
    if digits == 0 {
        return Err(EINVAL);
    }
    Ok((value, negative, (at + i) as i64))
}

/// Reads the `bpf_strto*` string argument and zeroes the result (as the kernel does first).
fn strtox_args(ctx: &mut HelperCtx<'_>, a: &[u64; 5]) -> Result<Vec<u8>, HelperError> {
    let len = a[1] as u32;
    if len == 0 {
        return Err(HelperError::BadArg { arg: 2, reason: "size must be greater than 0" });
    }
    let buf = ctx.arg_bytes(1, a[0], u64::from(len))?;
    write_result(ctx, a[3], 0)?;
    Ok(buf)
}

fn write_result(ctx: &mut HelperCtx<'_>, addr: u64, v: u64) -> Result<(), HelperError> {
    ctx.world
        .mem
        .slice_mut(addr, 8)
        .map_err(|error| HelperError::BadMemoryArg { arg: 4, error })?
        .copy_from_slice(&v.to_le_bytes());
    Ok(())
}

/// `long bpf_strtol(const char *buf, size_t buf_len, u64 flags, long *res)`: the bytes
/// consumed, with the value in `*res` (0 on error); `-EINVAL` for a bad base or no digits,
/// `-ERANGE` when the value does not fit a `long`.
fn strtol(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let buf = strtox_args(ctx, &a)?;
    let (value, negative, consumed) = match parse_unsigned(&buf, a[2]) {
        Ok(v) => v,
        Err(e) => return Ok(e as u64),
    };
    let signed = if negative { value.wrapping_neg() as i64 } else { value as i64 };
    if (negative && signed > 0) || (!negative && signed < 0) {
        return Ok(ERANGE as u64);
    }
    write_result(ctx, a[3], signed as u64)?;
    Ok(consumed as u64)
}

/// `long bpf_strtoul(const char *buf, size_t buf_len, u64 flags, unsigned long *res)`: as
/// [`strtol`] for an unsigned value; a `-` sign is `-EINVAL`.
fn strtoul(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let buf = strtox_args(ctx, &a)?;
    let (value, negative, consumed) = match parse_unsigned(&buf, a[2]) {
        Ok(v) => v,
        Err(e) => return Ok(e as u64),
    };
    if negative {
        return Ok(EINVAL as u64);
    }
    write_result(ctx, a[3], value)?;
    Ok(consumed as u64)
}

fn ktime_get_ns(ctx: &mut HelperCtx<'_>, _: [u64; 5]) -> Result<u64, HelperError> {
    Ok(ctx.world.env.read_clock())
}

fn ktime_get_boot_ns(ctx: &mut HelperCtx<'_>, _: [u64; 5]) -> Result<u64, HelperError> {
    Ok(ctx.world.env.read_clock().wrapping_add(ctx.world.env.boot_offset_ns))
}

fn get_prandom_u32(ctx: &mut HelperCtx<'_>, _: [u64; 5]) -> Result<u64, HelperError> {
    Ok(u64::from(ctx.world.env.next_u32()))
}

/// `bpf_get_numa_node_id()`: the simulated machine has one NUMA node, 0.
fn get_numa_node_id(_: &mut HelperCtx<'_>, _: [u64; 5]) -> Result<u64, HelperError> {
    Ok(0)
}

fn get_smp_processor_id(ctx: &mut HelperCtx<'_>, _: [u64; 5]) -> Result<u64, HelperError> {
    Ok(u64::from(ctx.world.env.cpu))
}
