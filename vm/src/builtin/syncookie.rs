//! The raw SYN cookie helpers of XDP and tc programs (`bpf_tcp_raw_gen_syncookie_ipv4/6`,
//! `bpf_tcp_raw_check_syncookie_ipv4/6`): a cookie for a SYN's headers, and its check on the
//! ACK that echoes it.
//!
//! A cookie carries the SYN's MSS as an index into a table of common MSS values, a minute
//! counter (`jiffies / (60 * HZ)`; a cookie is valid for 2 minutes) and a keyed hash of the
//! 4-tuple. The kernel keys its hash with a random per-boot secret, so cookie values cannot be
//! reproduced; bpflab keys its own hash with a fixed secret. What can be compared is the
//! MSS a generated cookie announces, the errors, and that a cookie checks on the ACK
//! answering it and fails on others.

use crate::engine::ProgType;
use crate::helpers::{Allowed, ArgType, Helper, HelperCtx, HelperError, HelperProto, RetType};

/// The helpers of this family.
pub(super) const HELPERS: &[Helper] = &[
    Helper { proto: GEN_IPV4, func: gen_ipv4 },
    Helper { proto: GEN_IPV6, func: gen_ipv6 },
    Helper { proto: CHECK_IPV4, func: check_ipv4 },
    Helper { proto: CHECK_IPV6, func: check_ipv6 },
];

use ArgType::{ConstSizeOrZero, PtrToMem};

/// `tc_cls_act_func_proto` and `xdp_func_proto`.
const TC_XDP: Allowed = Allowed::Only(&[ProgType::SchedCls, ProgType::SchedAct, ProgType::Xdp]);

const fn proto(id: u32, name: &'static str, args: &'static [ArgType]) -> HelperProto {
    // GPL-only: the kernel's cookie functions are GPL exports.
    HelperProto { id, name, ret: RetType::Integer, args, gpl_only: true, prog_types: TC_XDP }
}

const GEN_ARGS: &[ArgType] = &[PtrToMem, PtrToMem, ConstSizeOrZero];
const GEN_IPV4: HelperProto = proto(204, "bpf_tcp_raw_gen_syncookie_ipv4", GEN_ARGS);
const GEN_IPV6: HelperProto = proto(205, "bpf_tcp_raw_gen_syncookie_ipv6", GEN_ARGS);
const CHECK_IPV4: HelperProto =
    proto(206, "bpf_tcp_raw_check_syncookie_ipv4", &[PtrToMem, PtrToMem]);
const CHECK_IPV6: HelperProto =
    proto(207, "bpf_tcp_raw_check_syncookie_ipv6", &[PtrToMem, PtrToMem]);

const EINVAL: u64 = -22i64 as u64;
const EACCES: u64 = -13i64 as u64;

/// The MSS values IPv4 cookies can announce (ascending).
const MSS_V4: [u16; 4] = [536, 1300, 1440, 1460];
/// The MSS values IPv6 cookies can announce: 1280, 1480, 1500 and 9000-byte MTUs less 60
/// bytes of headers.
const MSS_V6: [u16; 4] = [1220, 1420, 1440, 8940];
/// The MSS a SYN without the option gets: `TCP_MSS_DEFAULT` and `IPV6_MIN_MTU` - 60.
const DEFAULT_MSS_V4: u16 = 536;
const DEFAULT_MSS_V6: u16 = 1220;
/// Bits of the cookie below the minute counter.
const COUNT_SHIFT: u32 = 24;
const LOW_MASK: u32 = (1 << COUNT_SHIFT) - 1;
/// Minutes a cookie stays valid.
const MAX_AGE: u32 = 2;
/// bpflab's fixed cookie key (the kernel's is random per boot).
const SECRET: [u64; 2] = [0x6270_666c_6162_2d73, 0x796e_636f_6f6b_6965];

/// The addresses and ports a cookie is bound to (IPv4 addresses in the first 4 bytes).
struct Tuple {
    saddr: [u8; 16],
    daddr: [u8; 16],
    ports: u32,
}

impl Tuple {
    /// Keyed hash of the tuple with `count`, for key `which` (0 or 1): an FNV-1a walk mixed
    /// with a 64-bit finalizer.
    fn hash(&self, count: u32, which: usize) -> u32 {
        let mut h = 0xcbf2_9ce4_8422_2325u64 ^ SECRET[which];
        let (ports, count) = (self.ports.to_le_bytes(), count.to_le_bytes());
        let bytes = self.saddr.iter().chain(&self.daddr).chain(&ports).chain(&count);
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        (h ^ SECRET[which ^ 1]) as u32
    }
}

/// The minute counter: `jiffies_64 / (60 * HZ)` of the simulated clock (HZ = 250, counted
/// from `INITIAL_JIFFIES` as the kernel's jiffies are).
fn minutes(ctx: &HelperCtx<'_>) -> u32 {
    const INITIAL_JIFFIES: u64 = (-300i32 * 250) as u32 as u64;
    let jiffies = INITIAL_JIFFIES.wrapping_add(ctx.world.env.now_ns / 4_000_000);
    (jiffies / (60 * 250)) as u32
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The tuple of IP header `ip` (IPv4 or IPv6) and TCP header `th`.
fn tuple(ip: &[u8], th: &[u8], v6: bool) -> Tuple {
    let (mut saddr, mut daddr) = ([0u8; 16], [0u8; 16]);
    if v6 {
        saddr.copy_from_slice(&ip[8..24]);
        daddr.copy_from_slice(&ip[24..40]);
    } else {
        saddr[..4].copy_from_slice(&ip[12..16]);
        daddr[..4].copy_from_slice(&ip[16..20]);
    }
    Tuple { saddr, daddr, ports: be32(th, 0) }
}

/// The MSS option of TCP header `th` (its options up to `len` bytes), 0 when absent or 0.
fn mss_option(th: &[u8], len: usize) -> u16 {
    let mut at = 20;
    let end = len.min(th.len());
    let mut mss = 0;
    while at < end {
        match th[at] {
            0 => break,
            1 => at += 1,
            kind => {
                let Some(&size) = th.get(at + 1).filter(|_| at + 2 <= end) else { break };
                let size = usize::from(size);
                if size < 2 || at + size > end {
                    break;
                }
                if kind == 2 && size == 4 {
                    let v = u16::from_be_bytes([th[at + 2], th[at + 3]]);
                    if v != 0 {
                        mss = v;
                    }
                }
                at += size;
            }
        }
    }
    mss
}

/// `bpf_tcp_raw_gen_syncookie_*(iph, th, th_len)`: `-EINVAL` unless `th_len` is the TCP
/// header's length (at least 20), else the cookie in the low 32 bits and the MSS it
/// announces (the SYN's MSS option, or the default, rounded down to the table) above.
fn generate(ctx: &mut HelperCtx<'_>, a: [u64; 5], v6: bool) -> Result<u64, HelperError> {
    let ip = ctx.arg_bytes(1, a[0], if v6 { 40 } else { 20 })?;
    let th_len = a[2] as u32 as usize;
    let th = ctx.arg_bytes(2, a[1], th_len as u64)?;
    if th_len < 20 || th_len != usize::from(th[12] >> 4) * 4 {
        return Ok(EINVAL);
    }
    let (table, default) = if v6 { (&MSS_V6, DEFAULT_MSS_V6) } else { (&MSS_V4, DEFAULT_MSS_V4) };
    let wanted = match mss_option(&th, th_len) {
        0 => default,
        m => m,
    };
    let index = table.iter().rposition(|&m| wanted >= m).unwrap_or(0);
    let t = tuple(&ip, &th, v6);
    let count = minutes(ctx);
    let seq = be32(&th, 4);
    let cookie = t
        .hash(0, 0)
        .wrapping_add(seq)
        .wrapping_add(count << COUNT_SHIFT)
        .wrapping_add(t.hash(count, 1).wrapping_add(index as u32) & LOW_MASK);
    Ok(u64::from(cookie) | (u64::from(table[index]) << 32))
}

/// `bpf_tcp_raw_check_syncookie_*(iph, th)`: 0 when the ACK's acknowledgment number is one
/// past a cookie bpflab generated for its tuple and sequence number less than 2 minutes ago,
/// `-EACCES` otherwise.
fn check(ctx: &mut HelperCtx<'_>, a: [u64; 5], v6: bool) -> Result<u64, HelperError> {
    let ip = ctx.arg_bytes(1, a[0], if v6 { 40 } else { 20 })?;
    let th = ctx.arg_bytes(2, a[1], 20)?;
    let t = tuple(&ip, &th, v6);
    let cookie = be32(&th, 8).wrapping_sub(1);
    let seq = be32(&th, 4).wrapping_sub(1);
    let now = minutes(ctx);
    let rest = cookie.wrapping_sub(t.hash(0, 0).wrapping_add(seq));
    let age = now.wrapping_sub(rest >> COUNT_SHIFT) & (u32::MAX >> COUNT_SHIFT);
    if age >= MAX_AGE {
        return Ok(EACCES);
    }
    let index = rest.wrapping_sub(t.hash(now.wrapping_sub(age), 1)) & LOW_MASK;
    Ok(if (index as usize) < MSS_V4.len() { 0 } else { EACCES })
}

fn gen_ipv4(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    generate(ctx, a, false)
}

fn gen_ipv6(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    generate(ctx, a, true)
}

fn check_ipv4(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    check(ctx, a, false)
}

fn check_ipv6(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    check(ctx, a, true)
}
