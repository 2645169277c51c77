//! `bpf_fib_lookup`: a route and neighbour lookup in the simulated network namespace
//! ([`crate::kobj::fib`]), with the XDP and tc entry points' differences
//! (`bpf_xdp_fib_lookup` always checks the MTU; `bpf_skb_fib_lookup` only with `tot_len`,
//! otherwise it checks the packet against the egress device and reports its MTU).

use crate::engine::ProgType;
use crate::helpers::{Allowed, ArgType, Helper, HelperCtx, HelperError, HelperProto, RetType};
use crate::kobj::fib::{
    AF_INET, AF_INET6, BPF_FIB_LKUP_RET_FRAG_NEEDED, BPF_FIB_LKUP_RET_SUCCESS, BPF_FIB_LOOKUP_ALL,
    FIB_PARAMS_SIZE, FibParams,
};
use crate::memory::RegionKind;

/// The helpers of this family.
pub(super) const HELPERS: &[Helper] = &[Helper { proto: FIB_LOOKUP, func: fib_lookup }];

const FIB_LOOKUP: HelperProto = HelperProto {
    id: 69,
    name: "bpf_fib_lookup",
    ret: RetType::Integer,
    args: &[ArgType::PtrToCtx, ArgType::PtrToMem, ArgType::ConstSize, ArgType::Anything],
    gpl_only: true,
    // freplace (`Ext`) programs replacing one of these may call it too.
    prog_types: Allowed::Only(&[
        ProgType::SchedCls,
        ProgType::SchedAct,
        ProgType::Xdp,
        ProgType::Ext,
    ]),
};

const EINVAL: i64 = -22;
const EAFNOSUPPORT: i64 = -97;
/// `VLAN_HLEN`, allowed on top of the MTU by `is_skb_forwardable`.
const VLAN_HLEN: u32 = 4;

/// `long bpf_fib_lookup(void *ctx, struct bpf_fib_lookup *params, int plen, u32 flags)`.
fn fib_lookup(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    // bpf_xdp_fib_lookup for XDP, bpf_skb_fib_lookup for the others.
    let xdp = ctx.prog_type == ProgType::Xdp;
    if !matches!(ctx.world.mem.resolve(a[0]), Some((_, RegionKind::Context, 0))) {
        return Err(HelperError::BadArg { arg: 1, reason: "not the context pointer" });
    }
    let plen = a[2] as u32 as i32;
    if plen <= 0 {
        return Err(HelperError::BadArg { arg: 3, reason: "size must be > 0" });
    }
    let buf = ctx
        .world
        .mem
        .slice_mut(a[1], plen as usize)
        .map_err(|error| HelperError::BadMemoryArg { arg: 2, error })?;
    if (plen as usize) < FIB_PARAMS_SIZE {
        return Ok(EINVAL as u64);
    }
    let flags = a[3] as u32;
    if flags & !BPF_FIB_LOOKUP_ALL != 0 {
        return Ok(EINVAL as u64);
    }
    let mut p = FibParams([0; FIB_PARAMS_SIZE]);
    p.0.copy_from_slice(&buf[..FIB_PARAMS_SIZE]);
    let check_mtu = xdp || p.tot_len() != 0;
    let mut rc = match p.family() {
        AF_INET | AF_INET6 => ctx.world.kernel.fib.lookup(&mut p, flags, check_mtu),
        _ => EAFNOSUPPORT,
    };
    if rc == BPF_FIB_LKUP_RET_SUCCESS && !check_mtu {
        // is_skb_forwardable() against the egress device, then report its MTU.
        let skb_len = ctx
            .world
            .mem
            .context()
            .and_then(|c| c.packet_out(&ctx.world.mem))
            .map_or(0, |p| p.len());
        if let Some(dev) = ctx.world.kernel.fib.device(p.ifindex()) {
            let max = u64::from(dev.mtu) + u64::from(dev.hard_header_len) + u64::from(VLAN_HLEN);
            if !dev.up || skb_len as u64 > max {
                rc = BPF_FIB_LKUP_RET_FRAG_NEEDED;
            }
            p.set_mtu_result(dev.mtu);
        }
    }
    let out = ctx
        .world
        .mem
        .slice_mut(a[1], FIB_PARAMS_SIZE)
        .map_err(|error| HelperError::BadMemoryArg { arg: 2, error })?;
    out.copy_from_slice(&p.0);
    Ok(rc as u64)
}
