//! Tracing and process helpers: the `bpf_probe_read*` family against the simulated kernel's
//! address space ([`crate::kobj`]), the current task's ids and name, and the trampoline and
//! kprobe helpers that read the tracing contexts ([`crate::ctx::tracing`]).
//!
//! Return values follow kernel/trace/bpf_trace.c and mm/maccess.c on x86_64: a kernel read
//! of a user or non-canonical address is -ERANGE, an unmapped address -EFAULT, and on any
//! failure the whole destination is zeroed. Which program types may call each helper (the
//! prototypes' `prog_types`) was observed on Linux 6.18 by loading every combination (types it
//! cannot load follow the kernel's `*_func_proto` switches); freplace (`Ext`) programs may call
//! the ones with a program-type list too. The attach-type refinements (trampolines, tp_btf)
//! are checked here.

use crate::ctx::tracing::{ArgsCtx, ArgsKind, PtRegsCtx, TracepointCtx, ctx_bytes};
use crate::engine::ProgType;
use crate::helpers::{Allowed, ArgType, Helper, HelperCtx, HelperError, HelperProto, RetType};
use crate::kobj::{AddrClass, KobjError, TASK_COMM_LEN, View};
use crate::memory::{MemError, Memory, RegionKind};

/// The helpers of this family.
pub(super) const HELPERS: &[Helper] = &[
    Helper { proto: PROBE_READ, func: probe_read },
    Helper { proto: PROBE_READ_STR, func: probe_read_str },
    Helper { proto: PROBE_READ_USER, func: probe_read_user },
    Helper { proto: PROBE_READ_KERNEL, func: probe_read_kernel },
    Helper { proto: PROBE_READ_USER_STR, func: probe_read_user_str },
    Helper { proto: PROBE_READ_KERNEL_STR, func: probe_read_kernel_str },
    Helper { proto: GET_CURRENT_PID_TGID, func: get_current_pid_tgid },
    Helper { proto: GET_CURRENT_UID_GID, func: get_current_uid_gid },
    Helper { proto: GET_CURRENT_COMM, func: get_current_comm },
    Helper { proto: GET_CURRENT_TASK, func: get_current_task },
    Helper { proto: GET_CURRENT_TASK_BTF, func: get_current_task_btf },
    Helper { proto: GET_FUNC_IP, func: get_func_ip },
    Helper { proto: GET_ATTACH_COOKIE, func: get_attach_cookie },
    Helper { proto: GET_FUNC_ARG, func: get_func_arg },
    Helper { proto: GET_FUNC_RET, func: get_func_ret },
    Helper { proto: GET_FUNC_ARG_CNT, func: get_func_arg_cnt },
];

const fn proto(
    id: u32,
    name: &'static str,
    ret: RetType,
    args: &'static [ArgType],
    gpl_only: bool,
    prog_types: Allowed,
) -> HelperProto {
    HelperProto { id, name, ret, args, gpl_only, prog_types }
}

use ProgType::{
    Ext, Kprobe, Lsm, PerfEvent, RawTracepoint, RawTracepointWritable, Syscall, Tracepoint, Tracing,
};

/// Program types whose helpers come from `bpf_tracing_func_proto` (the legacy probe_read).
const TRACING_TYPES: Allowed = Allowed::Only(&[
    Kprobe,
    Tracepoint,
    PerfEvent,
    RawTracepoint,
    RawTracepointWritable,
    Tracing,
    Lsm,
    Syscall,
    Ext,
]);
/// `bpf_get_func_ip`: kprobes, and `Tracing` programs with a trampoline (checked at the call).
const FUNC_IP_TYPES: Allowed = Allowed::Only(&[Kprobe, Tracing, Ext]);
/// `bpf_get_attach_cookie`: `Tracing` and `Lsm` programs only with a trampoline or for tp_btf
/// (checked at the call).
const COOKIE_TYPES: Allowed = Allowed::Only(&[
    Kprobe,
    Tracepoint,
    PerfEvent,
    RawTracepoint,
    RawTracepointWritable,
    Tracing,
    Lsm,
    Ext,
]);
/// The `bpf_get_func_arg*` helpers: programs with a trampoline (checked at the call).
const TRAMPOLINE_TYPES: Allowed = Allowed::Only(&[Tracing, Lsm, Ext]);

const READ_ARGS: &[ArgType] =
    &[ArgType::PtrToUninitMem, ArgType::ConstSizeOrZero, ArgType::Anything];
const PROBE_READ: HelperProto =
    proto(4, "bpf_probe_read", RetType::Integer, READ_ARGS, true, TRACING_TYPES);
const PROBE_READ_STR: HelperProto =
    proto(45, "bpf_probe_read_str", RetType::Integer, READ_ARGS, true, TRACING_TYPES);
// The helpers below from here to GET_CURRENT_TASK_BTF are in `bpf_base_func_proto`.
const PROBE_READ_USER: HelperProto =
    proto(112, "bpf_probe_read_user", RetType::Integer, READ_ARGS, true, Allowed::All);
const PROBE_READ_KERNEL: HelperProto =
    proto(113, "bpf_probe_read_kernel", RetType::Integer, READ_ARGS, true, Allowed::All);
const PROBE_READ_USER_STR: HelperProto =
    proto(114, "bpf_probe_read_user_str", RetType::Integer, READ_ARGS, true, Allowed::All);
const PROBE_READ_KERNEL_STR: HelperProto =
    proto(115, "bpf_probe_read_kernel_str", RetType::Integer, READ_ARGS, true, Allowed::All);
const GET_CURRENT_PID_TGID: HelperProto =
    proto(14, "bpf_get_current_pid_tgid", RetType::Integer, &[], false, Allowed::All);
const GET_CURRENT_UID_GID: HelperProto =
    proto(15, "bpf_get_current_uid_gid", RetType::Integer, &[], false, Allowed::All);
const GET_CURRENT_COMM: HelperProto = proto(
    16,
    "bpf_get_current_comm",
    RetType::Integer,
    &[ArgType::PtrToUninitMem, ArgType::ConstSize],
    false,
    Allowed::All,
);
const GET_CURRENT_TASK: HelperProto =
    proto(35, "bpf_get_current_task", RetType::Integer, &[], true, Allowed::All);
const GET_CURRENT_TASK_BTF: HelperProto =
    proto(158, "bpf_get_current_task_btf", RetType::PtrToBtfId, &[], true, Allowed::All);
const GET_FUNC_IP: HelperProto =
    proto(173, "bpf_get_func_ip", RetType::Integer, &[ArgType::PtrToCtx], true, FUNC_IP_TYPES);
const GET_ATTACH_COOKIE: HelperProto = proto(
    174,
    "bpf_get_attach_cookie",
    RetType::Integer,
    &[ArgType::PtrToCtx],
    false,
    COOKIE_TYPES,
);
const GET_FUNC_ARG: HelperProto = proto(
    183,
    "bpf_get_func_arg",
    RetType::Integer,
    &[ArgType::PtrToCtx, ArgType::Anything, ArgType::PtrToLong],
    false,
    TRAMPOLINE_TYPES,
);
const GET_FUNC_RET: HelperProto = proto(
    184,
    "bpf_get_func_ret",
    RetType::Integer,
    &[ArgType::PtrToCtx, ArgType::PtrToLong],
    false,
    TRAMPOLINE_TYPES,
);
const GET_FUNC_ARG_CNT: HelperProto = proto(
    185,
    "bpf_get_func_arg_cnt",
    RetType::Integer,
    &[ArgType::PtrToCtx],
    false,
    TRAMPOLINE_TYPES,
);

const EFAULT: i64 = 14;
const EINVAL: i64 = 22;
const ERANGE: i64 = 34;
const EOPNOTSUPP: i64 = 95;

fn neg(errno: i64) -> u64 {
    (-errno) as u64
}

/// Refuses the call when the program's attach type does not give it the helper (`ok` false):
/// the refinement of the prototype's program types the kernel makes by attach type.
fn allow_attach(ctx: &HelperCtx<'_>, ok: bool) -> Result<(), HelperError> {
    if ok { Ok(()) } else { Err(HelperError::NotAllowed { prog_type: ctx.prog_type }) }
}

/// Checks that argument `arg` is the context pointer.
fn ctx_arg(ctx: &HelperCtx<'_>, arg: u8, addr: u64) -> Result<(), HelperError> {
    match ctx.world.mem.resolve(addr) {
        Some((_, RegionKind::Context, 0)) => Ok(()),
        _ => Err(HelperError::BadArg { arg, reason: "not the context pointer" }),
    }
}

/// The running program's argument array, if it has one.
fn args_ctx<'c>(ctx: &'c HelperCtx<'_>) -> Option<&'c ArgsCtx> {
    ctx.world.mem.context()?.as_any().downcast_ref::<ArgsCtx>()
}

/// Checks the destination of `len` bytes at `addr` (argument 1) is writable.
fn check_dst(mem: &mut Memory, addr: u64, len: usize) -> Result<(), HelperError> {
    mem.slice_mut(addr, len)
        .map(|_| ())
        .map_err(|error| HelperError::BadMemoryArg { arg: 1, error })
}

/// Writes `bytes` at `addr` (already checked writable).
fn write_dst(mem: &mut Memory, addr: u64, off: usize, bytes: &[u8]) -> Result<(), HelperError> {
    let dst = mem
        .slice_mut(addr.wrapping_add(off as u64), bytes.len())
        .map_err(|error| HelperError::BadMemoryArg { arg: 1, error })?;
    dst.copy_from_slice(bytes);
    Ok(())
}

/// The bytes of kernel memory at `addr`, at most `max` of them (fewer where the mapping
/// ends); `None` when `addr` is unmapped.
fn kernel_bytes(mem: &Memory, addr: u64, max: usize) -> Option<Vec<u8>> {
    let (id, kind, off) = mem.resolve(addr)?;
    let off = usize::try_from(off).ok()?;
    let take = |data: &[u8]| data.get(off..).map(|d| d[..d.len().min(max)].to_vec());
    if kind == RegionKind::Context { take(&ctx_bytes(mem)?) } else { take(mem.bytes(id)) }
}

/// Which address space a read goes through.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Space {
    Kernel,
    User,
}

/// The bytes a read of `len` bytes at `addr` through `space` would copy, or the errno.
fn read(ctx: &HelperCtx<'_>, space: Space, addr: u64, len: usize) -> Result<Vec<u8>, i64> {
    let mem = &ctx.world.mem;
    let class = ctx.world.kernel.classify(mem, addr);
    match space {
        // copy_from_kernel_nofault(): user and non-canonical addresses are refused first.
        Space::Kernel if class != AddrClass::Kernel => Err(ERANGE),
        Space::Kernel => match len {
            0 => Ok(Vec::new()),
            _ => kernel_bytes(mem, addr, len).filter(|b| b.len() == len).ok_or(EFAULT),
        },
        // copy_from_user_nofault(): access_ok(), then the copy.
        Space::User if class != AddrClass::User => Err(EFAULT),
        Space::User if len == 0 => Ok(Vec::new()),
        Space::User if !ctx.world.kernel.is_user_region(mem, addr) => Err(EFAULT),
        Space::User => kernel_bytes(mem, addr, len).filter(|b| b.len() == len).ok_or(EFAULT),
    }
}

/// `bpf_probe_read_{kernel,user}` and the legacy `bpf_probe_read`: copy or zero the buffer.
fn probe_read_common(
    ctx: &mut HelperCtx<'_>,
    a: [u64; 5],
    space: Space,
) -> Result<u64, HelperError> {
    let len = a[1] as u32 as usize;
    check_dst(&mut ctx.world.mem, a[0], len)?;
    let (bytes, ret) = match read(ctx, space, a[2], len) {
        Ok(bytes) => (bytes, 0),
        Err(errno) => (vec![0; len], neg(errno)),
    };
    write_dst(&mut ctx.world.mem, a[0], 0, &bytes)?;
    Ok(ret)
}

/// The legacy helpers' choice (`bpf_probe_read_compat`): user path below `TASK_SIZE`.
fn compat_space(ctx: &HelperCtx<'_>, addr: u64) -> Space {
    match ctx.world.kernel.classify(&ctx.world.mem, addr) {
        AddrClass::User => Space::User,
        AddrClass::Kernel | AddrClass::NonCanonical | AddrClass::Vsyscall => Space::Kernel,
    }
}

/// `strncpy_from_kernel_nofault()`: byte by byte up to the NUL or `count` bytes.
fn kernel_str(
    ctx: &mut HelperCtx<'_>,
    dst: u64,
    count: usize,
    src: u64,
) -> Result<i64, HelperError> {
    let mem = &ctx.world.mem;
    if ctx.world.kernel.classify(mem, src) != AddrClass::Kernel {
        return Ok(-ERANGE);
    }
    let avail = kernel_bytes(mem, src, count).unwrap_or_default();
    let n = match avail.iter().position(|&b| b == 0) {
        Some(z) => z + 1,
        None if avail.len() >= count => count,
        None => return Ok(-EFAULT),
    };
    let mut out = avail[..n].to_vec();
    out[n - 1] = 0;
    write_dst(&mut ctx.world.mem, dst, 0, &out)?;
    Ok(n as i64)
}

/// `strncpy_from_user_nofault()`: 8-byte words while they fit (the bytes after the NUL in
/// its word are written as zeros), then bytes; returns the length with the NUL, or `count`.
fn user_str(ctx: &mut HelperCtx<'_>, dst: u64, count: usize, src: u64) -> Result<i64, HelperError> {
    let mem = &ctx.world.mem;
    if ctx.world.kernel.classify(mem, src) != AddrClass::User
        || !ctx.world.kernel.is_user_region(mem, src)
    {
        return Ok(-EFAULT);
    }
    let avail = kernel_bytes(mem, src, count).unwrap_or_default();
    let mut out = Vec::with_capacity(count);
    let mut res = 0;
    let mut found = None;
    while count - res >= 8 && res + 8 <= avail.len() {
        let word = &avail[res..res + 8];
        if let Some(z) = word.iter().position(|&b| b == 0) {
            out.extend_from_slice(&word[..z]);
            out.resize(res + 8, 0);
            found = Some(res + z);
            break;
        }
        out.extend_from_slice(word);
        res += 8;
    }
    if found.is_none() {
        while res < count {
            let Some(&c) = avail.get(res) else { return Ok(-EFAULT) };
            out.push(c);
            if c == 0 {
                found = Some(res);
                break;
            }
            res += 1;
        }
    }
    let ret = match found {
        Some(len) => len + 1,
        None => {
            // The string filled `count` bytes: the last one becomes the NUL.
            out[count - 1] = 0;
            count
        }
    };
    write_dst(&mut ctx.world.mem, dst, 0, &out)?;
    Ok(ret as i64)
}

/// The `_str` helpers: `size` 0 reads nothing and returns 0; errors zero the buffer.
fn probe_read_str_common(
    ctx: &mut HelperCtx<'_>,
    a: [u64; 5],
    space: Space,
) -> Result<u64, HelperError> {
    let count = a[1] as u32 as usize;
    check_dst(&mut ctx.world.mem, a[0], count)?;
    if count == 0 {
        return Ok(0);
    }
    let ret = match space {
        Space::Kernel => kernel_str(ctx, a[0], count, a[2])?,
        Space::User => user_str(ctx, a[0], count, a[2])?,
    };
    if ret < 0 {
        write_dst(&mut ctx.world.mem, a[0], 0, &vec![0; count])?;
    }
    Ok(ret as u64)
}

fn probe_read(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let space = compat_space(ctx, a[2]);
    probe_read_common(ctx, a, space)
}

fn probe_read_str(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let space = compat_space(ctx, a[2]);
    probe_read_str_common(ctx, a, space)
}

fn probe_read_user(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    probe_read_common(ctx, a, Space::User)
}

fn probe_read_kernel(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    probe_read_common(ctx, a, Space::Kernel)
}

fn probe_read_user_str(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    probe_read_str_common(ctx, a, Space::User)
}

fn probe_read_kernel_str(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    probe_read_str_common(ctx, a, Space::Kernel)
}

fn get_current_pid_tgid(ctx: &mut HelperCtx<'_>, _: [u64; 5]) -> Result<u64, HelperError> {
    Ok(ctx.world.kernel.current().pid_tgid())
}

fn get_current_uid_gid(ctx: &mut HelperCtx<'_>, _: [u64; 5]) -> Result<u64, HelperError> {
    Ok(ctx.world.kernel.current().uid_gid())
}

/// `strscpy_pad(buf, current->comm, size)`: at most `size - 1` bytes, NUL-padded.
fn get_current_comm(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let size = a[1] as u32 as usize;
    if size == 0 {
        return Err(HelperError::BadArg { arg: 2, reason: "size must be > 0" });
    }
    check_dst(&mut ctx.world.mem, a[0], size)?;
    let comm = ctx.world.kernel.current().comm_str();
    let n = comm.len().min(size - 1).min(TASK_COMM_LEN - 1);
    let mut out = vec![0u8; size];
    out[..n].copy_from_slice(&comm[..n]);
    write_dst(&mut ctx.world.mem, a[0], 0, &out)?;
    Ok(0)
}

fn task_in(ctx: &mut HelperCtx<'_>, view: View) -> Result<u64, HelperError> {
    let world = &mut *ctx.world;
    world.kernel.current_task(&mut world.mem, view).map_err(|e| match e {
        KobjError::Memory(error) => HelperError::BadMemoryArg { arg: 0, error },
        _ => HelperError::BadMemoryArg { arg: 0, error: MemError::TooManyRegions },
    })
}

fn get_current_task(ctx: &mut HelperCtx<'_>, _: [u64; 5]) -> Result<u64, HelperError> {
    task_in(ctx, View::Probe)
}

fn get_current_task_btf(ctx: &mut HelperCtx<'_>, _: [u64; 5]) -> Result<u64, HelperError> {
    task_in(ctx, View::Btf)
}

/// `bpf_get_func_ip`: kprobes (the probed address) and fentry/fexit/fmod_ret programs.
fn get_func_ip(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let context = ctx.world.mem.context().map(|c| c.as_any());
    let kprobe = context.and_then(|c| c.downcast_ref::<PtRegsCtx>());
    let args = args_ctx(ctx);
    let ok = ctx.prog_type != Tracing || args.is_some_and(|c| c.kind.has_trampoline());
    allow_attach(ctx, ok)?;
    ctx_arg(ctx, 1, a[0])?;
    Ok(kprobe.map(|k| k.func_ip).or_else(|| args.map(|c| c.func_ip)).unwrap_or(0))
}

/// `bpf_get_attach_cookie`: the cookie of the run's [`TraceInput`](crate::ctx::tracing::TraceInput).
fn get_attach_cookie(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let args = args_ctx(ctx);
    let ok = !matches!(ctx.prog_type, Tracing | Lsm)
        || args.is_some_and(|c| c.kind.has_trampoline() || c.kind == ArgsKind::TpBtf);
    allow_attach(ctx, ok)?;
    ctx_arg(ctx, 1, a[0])?;
    let Some(c) = ctx.world.mem.context().map(|c| c.as_any()) else { return Ok(0) };
    Ok(c.downcast_ref::<PtRegsCtx>()
        .map(|k| k.cookie)
        .or_else(|| c.downcast_ref::<TracepointCtx>().map(|t| t.cookie))
        .or_else(|| c.downcast_ref::<ArgsCtx>().map(|t| t.cookie))
        .unwrap_or(0))
}

/// The trampoline's argument array, for the `bpf_get_func_arg*` helpers.
fn trampoline(ctx: &HelperCtx<'_>, a0: u64) -> Result<ArgsCtx, HelperError> {
    let args = args_ctx(ctx).filter(|c| c.kind.has_trampoline()).cloned();
    allow_attach(ctx, !matches!(ctx.prog_type, Tracing | Lsm) || args.is_some())?;
    ctx_arg(ctx, 1, a0)?;
    args.ok_or(HelperError::BadArg { arg: 1, reason: "not a trampoline context" })
}

/// Checks the `u64 *value` argument `arg` at `addr`.
fn check_long(ctx: &mut HelperCtx<'_>, arg: u8, addr: u64) -> Result<(), HelperError> {
    ctx.world
        .mem
        .slice_mut(addr, 8)
        .map(|_| ())
        .map_err(|error| HelperError::BadMemoryArg { arg, error })
}

fn store_long(ctx: &mut HelperCtx<'_>, arg: u8, addr: u64, v: u64) -> Result<(), HelperError> {
    let out = ctx
        .world
        .mem
        .slice_mut(addr, 8)
        .map_err(|error| HelperError::BadMemoryArg { arg, error })?;
    out.copy_from_slice(&v.to_le_bytes());
    Ok(())
}

/// `bpf_get_func_arg(ctx, n, &value)`: 0, or -EINVAL (value untouched) when `n` (as u32) is
/// not below the argument count.
fn get_func_arg(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let args = trampoline(ctx, a[0])?;
    check_long(ctx, 3, a[2])?;
    match args.arg(a[1] as u32 as usize) {
        Some(v) => {
            store_long(ctx, 3, a[2], v)?;
            Ok(0)
        }
        None => Ok(neg(EINVAL)),
    }
}

/// `bpf_get_func_ret(ctx, &value)`: the return value for fexit, fmod_ret and lsm; fentry
/// programs get -EOPNOTSUPP (the verifier inlines that), value untouched.
fn get_func_ret(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let args = trampoline(ctx, a[0])?;
    check_long(ctx, 2, a[1])?;
    if !args.kind.has_ret() {
        return Ok(neg(EOPNOTSUPP));
    }
    store_long(ctx, 2, a[1], args.ret())?;
    Ok(0)
}

fn get_func_arg_cnt(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    Ok(trampoline(ctx, a[0])?.nr_args as u64)
}
