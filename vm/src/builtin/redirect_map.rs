//! `bpf_redirect_map`: XDP redirects through a devmap, devmap_hash, cpumap or xskmap. The
//! chosen target is recorded in [`Env::redirect`](crate::env::Env::redirect).

use super::maps::map_arg;
use crate::engine::ProgType;
use crate::env::{Redirect, RedirectTarget};
use crate::helpers::{Allowed, ArgType, Helper, HelperCtx, HelperError, HelperProto, RetType};
use crate::maps::{CpuMap, DevMap, XskMap};

/// The helpers of this family.
pub(super) const HELPERS: &[Helper] = &[Helper { proto: REDIRECT_MAP, func: redirect_map }];

const REDIRECT_MAP: HelperProto = HelperProto {
    id: 51,
    name: "bpf_redirect_map",
    ret: RetType::Integer,
    args: &[ArgType::ConstMapPtr, ArgType::Anything, ArgType::Anything],
    gpl_only: false,
    prog_types: Allowed::Only(&[ProgType::Xdp]),
};

/// `XDP_ABORTED | XDP_DROP | XDP_PASS | XDP_TX`: the fallback action in the flags' low bits.
const ACTION_MASK: u64 = 3;
/// `BPF_F_BROADCAST`.
const BROADCAST: u64 = 1 << 3;
/// `BPF_F_EXCLUDE_INGRESS`.
const EXCLUDE_INGRESS: u64 = 1 << 4;
/// `XDP_REDIRECT`.
const XDP_REDIRECT: u64 = 4;

/// `long bpf_redirect_map(struct bpf_map *map, u64 key, u64 flags)`
/// (`__bpf_xdp_redirect_map`): `XDP_REDIRECT` when `key` has a target (or with
/// `BPF_F_BROADCAST`, which devmaps take with `BPF_F_EXCLUDE_INGRESS`), else the fallback
/// action `flags & 3`; `XDP_ABORTED` for unknown flags.
fn redirect_map(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let idx = map_arg(ctx, 1, a[0])?;
    let (key, flags) = (a[1], a[2]);
    let map = ctx.world.map(idx).map(|m| m.as_any());
    let mem = &ctx.world.mem;
    // The map's lookup takes a u32 key.
    let k = key as u32;
    let (flag_mask, target) = if let Some(d) = map.and_then(|m| m.downcast_ref::<DevMap>()) {
        (BROADCAST | EXCLUDE_INGRESS, d.ifindex(mem, k).map(RedirectTarget::Ifindex))
    } else if let Some(c) = map.and_then(|m| m.downcast_ref::<CpuMap>()) {
        (0, c.has_cpu(k).then_some(RedirectTarget::Cpu(k)))
    } else if let Some(x) = map.and_then(|m| m.downcast_ref::<XskMap>()) {
        (0, x.socket(k).map(RedirectTarget::Xsk))
    } else {
        return Err(HelperError::BadArg { arg: 1, reason: "not a devmap, cpumap or xskmap" });
    };
    if flags & !(ACTION_MASK | flag_mask) != 0 {
        return Ok(0);
    }
    let broadcast = flags & BROADCAST != 0;
    let target = match (target, broadcast) {
        (_, true) => RedirectTarget::Broadcast,
        (Some(t), false) => t,
        (None, false) => {
            // A failed lookup clears the redirect state: the last call wins.
            ctx.world.env.redirect = None;
            return Ok(flags & ACTION_MASK);
        }
    };
    ctx.world.env.redirect = Some(Redirect {
        helper: "bpf_redirect_map",
        map: Some(idx),
        key: k.to_le_bytes().to_vec(),
        flags: if broadcast { flags } else { 0 },
        target,
    });
    Ok(XDP_REDIRECT)
}
