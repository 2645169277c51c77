//! XDP helpers: moving the packet's head, tail and metadata boundaries within the frame, with
//! the kernel's limits (`bpf_xdp_adjust_head/_tail/_meta` in net/core/filter.c).

use crate::ctx::XdpCtx;
use crate::ctx::xdp::{XDP_FRAG_SIZE, XDP_FRAME_STRUCT};
use crate::engine::ProgType;
use crate::helpers::{Allowed, ArgType, Helper, HelperCtx, HelperError, HelperProto, RetType};

/// The helpers of this family.
pub(super) const HELPERS: &[Helper] = &[
    Helper { proto: XDP_ADJUST_HEAD, func: xdp_adjust_head },
    Helper { proto: XDP_ADJUST_META, func: xdp_adjust_meta },
    Helper { proto: XDP_ADJUST_TAIL, func: xdp_adjust_tail },
    Helper { proto: XDP_GET_BUFF_LEN, func: xdp_get_buff_len },
];

const ARGS: &[ArgType] = &[ArgType::PtrToCtx, ArgType::Anything];
/// `xdp_func_proto` only.
const XDP: Allowed = Allowed::Only(&[ProgType::Xdp]);
const XDP_ADJUST_HEAD: HelperProto = HelperProto {
    id: 44,
    name: "bpf_xdp_adjust_head",
    ret: RetType::Integer,
    args: ARGS,
    gpl_only: false,
    prog_types: XDP,
};
const XDP_ADJUST_META: HelperProto = HelperProto {
    id: 54,
    name: "bpf_xdp_adjust_meta",
    ret: RetType::Integer,
    args: ARGS,
    gpl_only: false,
    prog_types: XDP,
};
const XDP_ADJUST_TAIL: HelperProto = HelperProto {
    id: 65,
    name: "bpf_xdp_adjust_tail",
    ret: RetType::Integer,
    args: ARGS,
    gpl_only: false,
    prog_types: XDP,
};

const XDP_GET_BUFF_LEN: HelperProto = HelperProto {
    id: 188,
    name: "bpf_xdp_get_buff_len",
    ret: RetType::Integer,
    args: &[ArgType::PtrToCtx],
    gpl_only: false,
    // XDP programs; tracing_prog_func_proto has a variant taking a `struct xdp_buff` pointer
    // (not simulated: bpflab reads the XDP context).
    prog_types: Allowed::Only(&[
        ProgType::Xdp,
        ProgType::Tracing,
        ProgType::Lsm,
        ProgType::Syscall,
    ]),
};

const EINVAL: u64 = -22i64 as u64;
const EACCES: u64 = -13i64 as u64;
const ETH_HLEN: i64 = 14;

/// The running program's XDP context (a copy; write it back with [`put`]).
fn xdp(ctx: &HelperCtx<'_>) -> Result<XdpCtx, HelperError> {
    ctx.world
        .mem
        .context()
        .and_then(|c| c.as_any().downcast_ref::<XdpCtx>())
        .cloned()
        .ok_or(HelperError::BadArg { arg: 1, reason: "not an XDP context" })
}

fn put(ctx: &mut HelperCtx<'_>, x: XdpCtx) {
    ctx.world.mem.set_lo(x.frame, x.meta);
    if let Some(c) =
        ctx.world.mem.context_mut().and_then(|c| c.as_any_mut().downcast_mut::<XdpCtx>())
    {
        *c = x;
    }
}

fn xdp_adjust_head(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let mut x = xdp(ctx)?;
    let delta = i64::from(a[1] as i32);
    let metalen = (x.data - x.meta) as i64;
    let data = x.data as i64 + delta;
    let data_end = x.data_end(&ctx.world.mem) as i64;
    if data < XDP_FRAME_STRUCT as i64 + metalen || data > data_end - ETH_HLEN {
        return Ok(EINVAL);
    }
    if metalen > 0 {
        let frame = ctx.world.mem.contents_mut(x.frame);
        let new_meta = (x.meta as i64 + delta) as usize;
        frame.copy_within(x.meta..x.data, new_meta);
    }
    x.meta = (x.meta as i64 + delta) as usize;
    x.data = data as usize;
    put(ctx, x);
    Ok(0)
}

fn xdp_adjust_meta(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let mut x = xdp(ctx)?;
    let meta = x.meta as i64 + i64::from(a[1] as i32);
    if meta < XDP_FRAME_STRUCT as i64 || meta > x.data as i64 {
        return Ok(EINVAL);
    }
    let metalen = x.data as i64 - meta;
    if metalen > 32 || metalen % 4 != 0 {
        return Ok(EACCES);
    }
    x.meta = meta as usize;
    put(ctx, x);
    Ok(0)
}

/// `bpf_xdp_adjust_tail(ctx, delta)`: moves the end of the packet. A linear buffer's
/// `data_end` moves within the frame; a buffer with fragments grows or shrinks its last
/// fragments instead (`bpf_xdp_frags_increase_tail` / `_shrink_tail`).
fn xdp_adjust_tail(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let x = xdp(ctx)?;
    let offset = i64::from(a[1] as i32);
    if x.has_frags() {
        return Ok(if offset < 0 {
            frags_shrink_tail(ctx, x, -offset)
        } else {
            frags_increase_tail(ctx, &x, offset as usize)
        });
    }
    let end = x.data_end(&ctx.world.mem) as i64 + offset;
    if end > x.max_data_end() as i64 || end < x.data as i64 + ETH_HLEN {
        return Ok(EINVAL);
    }
    // Growing clears the new bytes, as the kernel does.
    ctx.world.mem.bytes_mut(x.frame).resize(end as usize, 0);
    Ok(0)
}

/// Grows the last fragment by `offset` zeroed bytes, within its page.
fn frags_increase_tail(ctx: &mut HelperCtx<'_>, x: &XdpCtx, offset: usize) -> u64 {
    let Some(&last) = x.frags.last() else { return EINVAL };
    let size = ctx.world.mem.bytes(last).len();
    if offset > XDP_FRAG_SIZE - size {
        return EINVAL;
    }
    ctx.world.mem.bytes_mut(last).resize(size + offset, 0);
    0
}

/// Takes `offset` bytes off the end: from the last fragments first, releasing the ones it
/// empties (their regions become inaccessible); what is left once none remain comes off the
/// linear part. `-EINVAL` when that would leave less than an Ethernet header.
fn frags_shrink_tail(ctx: &mut HelperCtx<'_>, mut x: XdpCtx, mut offset: i64) -> u64 {
    if offset > x.buff_len(&ctx.world.mem) as i64 - ETH_HLEN {
        return EINVAL;
    }
    while offset > 0 {
        let Some(&last) = x.frags.last() else { break };
        let size = ctx.world.mem.bytes(last).len() as i64;
        let shrink = offset.min(size);
        offset -= shrink;
        if shrink == size {
            // Released: emptied now, freed with the run's other regions.
            ctx.world.mem.bytes_mut(last).clear();
            x.frags.pop();
        } else {
            ctx.world.mem.bytes_mut(last).truncate((size - shrink) as usize);
            break;
        }
    }
    if x.frags.is_empty() && offset > 0 {
        let end = x.data_end(&ctx.world.mem) - offset as usize;
        ctx.world.mem.bytes_mut(x.frame).truncate(end);
    }
    put(ctx, x);
    0
}

/// `u64 bpf_xdp_get_buff_len(struct xdp_md *ctx)`: the packet's length from `data`,
/// fragments included.
fn xdp_get_buff_len(ctx: &mut HelperCtx<'_>, _: [u64; 5]) -> Result<u64, HelperError> {
    let x = xdp(ctx)?;
    Ok(x.buff_len(&ctx.world.mem) as u64)
}
