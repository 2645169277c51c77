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
