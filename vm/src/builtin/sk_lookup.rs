//! `bpf_sk_assign` for `sk_lookup` programs (`bpf_sk_lookup_assign` in net/core/filter.c):
//! selects the socket the lookup returns.

use crate::ctx::sk_lookup::SkLookupCtx;
use crate::engine::ProgType;
use crate::helpers::{Allowed, ArgType, Helper, HelperCtx, HelperError, HelperProto, RetType};
use crate::sock::{SockView, TcpState};

/// The helpers of this family.
pub(super) const HELPERS: &[Helper] = &[Helper { proto: SK_ASSIGN, func: sk_assign }];

const SK_ASSIGN: HelperProto = HelperProto {
    id: 124,
    name: "bpf_sk_assign",
    ret: RetType::Integer,
    args: &[ArgType::PtrToCtx, ArgType::PtrToSocket, ArgType::Anything],
    gpl_only: false,
    // sk_lookup programs select the socket of a lookup; tc programs assign an skb's socket
    // (the tc variant, `bpf_sk_assign` of net/core/filter.c).
    prog_types: Allowed::Only(&[ProgType::SkLookup, ProgType::SchedCls, ProgType::SchedAct]),
};

/// `BPF_SK_LOOKUP_F_REPLACE`: replace an earlier selection.
const BPF_SK_LOOKUP_F_REPLACE: u64 = 1;
/// `BPF_SK_LOOKUP_F_NO_REUSEPORT`: skip the reuseport group's own selection.
const BPF_SK_LOOKUP_F_NO_REUSEPORT: u64 = 2;

const EINVAL: i64 = -22;
const EEXIST: i64 = -17;
const EPROTOTYPE: i64 = -91;
const ESOCKTNOSUPPORT: i64 = -94;
const EAFNOSUPPORT: i64 = -97;
const AF_INET: u16 = 2;
/// `IPPROTO_TCP` and `IPPROTO_UDP`.
const TCP: u32 = 6;
const UDP: u32 = 17;

/// `EOPNOTSUPP`.
const EOPNOTSUPP: i64 = -95;

/// The tc variant, `long bpf_sk_assign(struct __sk_buff *skb, struct bpf_sock *sk, u64 flags)`:
/// only at tc ingress, which a test run's skb is not (it runs the program as on egress), so a
/// valid call returns `-EOPNOTSUPP`; flags `-EINVAL`.
fn tc_sk_assign(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    if SockView::at(&ctx.world.mem, a[1]).is_none() {
        return Err(HelperError::BadArg { arg: 2, reason: "not a socket pointer" });
    }
    Ok(if a[2] != 0 { EINVAL } else { EOPNOTSUPP } as u64)
}

/// `long bpf_sk_assign(struct bpf_sk_lookup *ctx, struct bpf_sock *sk, u64 flags)`.
/// (The tc flavour of helper 124, assigning a socket to an skb, is not simulated.)
fn sk_assign(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let errno = |e: i64| Ok(e as u64);
    if ctx.prog_type != ProgType::SkLookup {
        return tc_sk_assign(ctx, a);
    }
    let flags = a[2];
    if flags & !(BPF_SK_LOOKUP_F_REPLACE | BPF_SK_LOOKUP_F_NO_REUSEPORT) != 0 {
        return errno(EINVAL);
    }
    let sk = match a[1] {
        0 => None,
        addr => Some(
            SockView::at(&ctx.world.mem, addr)
                .ok_or(HelperError::BadArg { arg: 2, reason: "not a socket pointer" })?,
        ),
    };
    let lookup = ctx
        .world
        .mem
        .context()
        .and_then(|c| c.as_any().downcast_ref::<SkLookupCtx>())
        .ok_or(HelperError::BadArg { arg: 1, reason: "not an sk_lookup context" })?;
    let (family, protocol, selected) = (lookup.family(), lookup.protocol(), lookup.selected);
    if let Some(sk) = &sk {
        let tcp = sk.is_tcp();
        if tcp && sk.state() != TcpState::Listen as u32 {
            return errno(ESOCKTNOSUPPORT);
        }
        if !tcp && sk.state() != TcpState::Close as u32 {
            return errno(ESOCKTNOSUPPORT);
        }
        if (if tcp { TCP } else { UDP }) != protocol {
            return errno(EPROTOTYPE);
        }
        if u32::from(sk.family()) != family && sk.family() == AF_INET {
            return errno(EAFNOSUPPORT);
        }
    }
    if selected.is_some() && flags & BPF_SK_LOOKUP_F_REPLACE == 0 {
        return errno(EEXIST);
    }
    if let Some(c) =
        ctx.world.mem.context_mut().and_then(|c| c.as_any_mut().downcast_mut::<SkLookupCtx>())
    {
        c.selected = sk.map(|s| s.id);
        c.no_reuseport = flags & BPF_SK_LOOKUP_F_NO_REUSEPORT != 0;
    }
    Ok(0)
}
