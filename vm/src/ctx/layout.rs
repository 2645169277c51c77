//! One static description per program type of the structure its context pointer (r1 at entry)
//! points to: where each field lies, which loads and stores of it the kernel's
//! `*_is_valid_access()` accepts (sizes, narrow loads, attach types, privilege), and what a
//! load of it yields as the verifier types the destination register (a scalar, a packet
//! pointer, a socket, ...).
//!
//! Both consumers decide from these tables, so they cannot drift apart: the interpreter's
//! contexts ([`super`]) refuse an access before they compute its value, and the verifier
//! types a context load (or rejects it with the kernel's `invalid bpf_context access
//! off=%d size=%d`). The rules were read from net/core/filter.c, kernel/bpf/cgroup.c,
//! kernel/trace/bpf_trace.c, kernel/bpf/btf.c and kernel/bpf/syscall.c (Linux 6.12) and are
//! checked access by access against the running kernel (kernel/tests/ctx_layout_vs_kernel.rs).
//!
//! How an access of `size` bytes at `off` is decided ([`CtxLayout::check`]):
//! 1. `off` must lie within the structure, `size` be 1, 2, 4 or 8 and `off` a multiple of it
//!    (every `is_valid_access` checks `off % size`);
//! 2. the field holding `off` must be accessible this way ([`CtxField::read`] or
//!    [`CtxField::write`]) for the program's expected attach type and privilege ([`When`]);
//! 3. the size must be one the field's [`Rule`] allows, at the field's first byte unless the
//!    rule allows narrow accesses anywhere in it; an access not at the first byte must end
//!    within the field (an access at the first byte may be wider than a 2-byte field where
//!    the kernel keeps 4-byte loads for compatibility: `bpf_sock.dst_port`,
//!    `bpf_sk_lookup.remote_port`);
//! 4. a sign-extending load (`BPF_MEMSX`) may only load a scalar.

use std::fmt;

use super::Target;
use crate::engine::ProgType;

/// The kernel's `enum bpf_attach_type` ids the context rules depend on.
pub mod attach {
    /// `BPF_CGROUP_INET_INGRESS`.
    pub const CGROUP_INET_INGRESS: u32 = 0;
    /// `BPF_CGROUP_INET_EGRESS`.
    pub const CGROUP_INET_EGRESS: u32 = 1;
    /// `BPF_CGROUP_INET_SOCK_CREATE`.
    pub const CGROUP_INET_SOCK_CREATE: u32 = 2;
    /// `BPF_CGROUP_INET4_BIND`.
    pub const CGROUP_INET4_BIND: u32 = 8;
    /// `BPF_CGROUP_INET6_BIND`.
    pub const CGROUP_INET6_BIND: u32 = 9;
    /// `BPF_CGROUP_INET4_CONNECT`.
    pub const CGROUP_INET4_CONNECT: u32 = 10;
    /// `BPF_CGROUP_INET6_CONNECT`.
    pub const CGROUP_INET6_CONNECT: u32 = 11;
    /// `BPF_CGROUP_INET4_POST_BIND`.
    pub const CGROUP_INET4_POST_BIND: u32 = 12;
    /// `BPF_CGROUP_INET6_POST_BIND`.
    pub const CGROUP_INET6_POST_BIND: u32 = 13;
    /// `BPF_CGROUP_UDP4_SENDMSG`.
    pub const CGROUP_UDP4_SENDMSG: u32 = 14;
    /// `BPF_CGROUP_UDP6_SENDMSG`.
    pub const CGROUP_UDP6_SENDMSG: u32 = 15;
    /// `BPF_CGROUP_UDP4_RECVMSG`.
    pub const CGROUP_UDP4_RECVMSG: u32 = 19;
    /// `BPF_CGROUP_UDP6_RECVMSG`.
    pub const CGROUP_UDP6_RECVMSG: u32 = 20;
    /// `BPF_CGROUP_GETSOCKOPT`.
    pub const CGROUP_GETSOCKOPT: u32 = 21;
    /// `BPF_CGROUP_SETSOCKOPT`.
    pub const CGROUP_SETSOCKOPT: u32 = 22;
    /// `BPF_TRACE_RAW_TP`.
    pub const TRACE_RAW_TP: u32 = 23;
    /// `BPF_TRACE_FENTRY`.
    pub const TRACE_FENTRY: u32 = 24;
    /// `BPF_TRACE_FEXIT`.
    pub const TRACE_FEXIT: u32 = 25;
    /// `BPF_MODIFY_RETURN`.
    pub const MODIFY_RETURN: u32 = 26;
    /// `BPF_LSM_MAC`.
    pub const LSM_MAC: u32 = 27;
    /// `BPF_CGROUP_INET4_GETPEERNAME`.
    pub const CGROUP_INET4_GETPEERNAME: u32 = 29;
    /// `BPF_CGROUP_INET6_GETPEERNAME`.
    pub const CGROUP_INET6_GETPEERNAME: u32 = 30;
    /// `BPF_CGROUP_INET4_GETSOCKNAME`.
    pub const CGROUP_INET4_GETSOCKNAME: u32 = 31;
    /// `BPF_CGROUP_INET6_GETSOCKNAME`.
    pub const CGROUP_INET6_GETSOCKNAME: u32 = 32;
    /// `BPF_XDP_DEVMAP`.
    pub const XDP_DEVMAP: u32 = 33;
    /// `BPF_CGROUP_INET_SOCK_RELEASE`.
    pub const CGROUP_INET_SOCK_RELEASE: u32 = 34;
    /// `BPF_XDP_CPUMAP`.
    pub const XDP_CPUMAP: u32 = 35;
    /// `BPF_SK_LOOKUP`.
    pub const SK_LOOKUP: u32 = 36;
    /// `BPF_SK_REUSEPORT_SELECT`.
    pub const SK_REUSEPORT_SELECT: u32 = 39;
    /// `BPF_SK_REUSEPORT_SELECT_OR_MIGRATE`.
    pub const SK_REUSEPORT_SELECT_OR_MIGRATE: u32 = 40;
    /// `BPF_NETFILTER`.
    pub const NETFILTER: u32 = 45;
    /// `BPF_CGROUP_UNIX_CONNECT`.
    pub const CGROUP_UNIX_CONNECT: u32 = 49;
    /// `BPF_CGROUP_UNIX_SENDMSG`.
    pub const CGROUP_UNIX_SENDMSG: u32 = 50;
    /// `BPF_CGROUP_UNIX_RECVMSG`.
    pub const CGROUP_UNIX_RECVMSG: u32 = 51;
    /// `BPF_CGROUP_UNIX_GETPEERNAME`.
    pub const CGROUP_UNIX_GETPEERNAME: u32 = 52;
    /// `BPF_CGROUP_UNIX_GETSOCKNAME`.
    pub const CGROUP_UNIX_GETSOCKNAME: u32 = 53;
}

use attach as a;

/// What a context load yields, as the verifier types the destination register.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Yields {
    /// `SCALAR_VALUE`: an unknown number (zero-extended from the load's size).
    Scalar,
    /// `PTR_TO_PACKET`: the first byte of the packet (or of a sockopt's `optval`).
    Packet,
    /// `PTR_TO_PACKET_META`: the start of the metadata in front of the packet.
    PacketMeta,
    /// `PTR_TO_PACKET_END`: one past the last directly accessible byte.
    PacketEnd,
    /// `PTR_TO_SOCKET`: a full socket, never NULL.
    Socket,
    /// `PTR_TO_SOCKET_OR_NULL`.
    SocketOrNull,
    /// `PTR_TO_SOCK_COMMON_OR_NULL`.
    SockCommonOrNull,
    /// `PTR_TO_FLOW_KEYS`: the flow dissector's `struct bpf_flow_keys`.
    FlowKeys,
    /// `PTR_TO_TP_BUFFER`: the writable tracepoint buffer of a `raw_tp.w` program.
    TpBuffer,
    /// A traced function's argument or return value (fentry/fexit/fmod_ret/tp_btf/lsm): a
    /// scalar or a `PTR_TO_BTF_ID`, as the attach target's BTF says (`btf_ctx_access`);
    /// pointers must be loaded as 8 bytes.
    TracedArg,
    /// `PTR_TO_BTF_ID` of the named kernel struct (netfilter's `skb` and `state`).
    BtfId(&'static str),
}

impl Yields {
    /// Whether the load yields a scalar.
    pub fn is_scalar(self) -> bool {
        self == Yields::Scalar
    }
}

/// Access sizes as a bit set: the bit of value `n` stands for an `n`-byte access.
pub type Sizes = u8;

/// 1-byte accesses.
pub const U8: Sizes = 1;
/// 2-byte accesses.
pub const U16: Sizes = 2;
/// 4-byte accesses.
pub const U32: Sizes = 4;
/// 8-byte accesses.
pub const U64: Sizes = 8;
/// Any size up to 4 bytes (the kernel's `bpf_ctx_narrow_access_ok` on a `u32` field).
pub const NARROW32: Sizes = U8 | U16 | U32;
/// Any size.
pub const ANY: Sizes = U8 | U16 | U32 | U64;

/// A condition an access depends on besides its offset and size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum When {
    /// No condition.
    Always,
    /// The program's expected attach type is one of these.
    Attach(&'static [u32]),
    /// The program was loaded with `CAP_BPF` (`bpf_token_capable(.., CAP_BPF)`).
    CapBpf,
}

/// How a field may be read or written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rule {
    /// The access sizes allowed.
    pub sizes: Sizes,
    /// Accesses may start anywhere in the field (aligned to their size); otherwise only at
    /// its first byte.
    pub anywhere: bool,
    /// The condition for the access.
    pub when: When,
}

impl Rule {
    /// Accesses of `sizes` at the field's first byte only.
    pub const fn at_start(sizes: Sizes) -> Rule {
        Rule { sizes, anywhere: false, when: When::Always }
    }

    /// Accesses of `sizes` anywhere in the field, aligned to their size.
    pub const fn anywhere(sizes: Sizes) -> Rule {
        Rule { sizes, anywhere: true, when: When::Always }
    }

    /// The same rule, only under `when`.
    pub const fn when(self, when: When) -> Rule {
        Rule { when, ..self }
    }
}

/// One field (or run of like fields) of a context structure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CtxField {
    /// The field's name in the uapi header (`data`, `cb`, `remote_ip6`, ...).
    pub name: &'static str,
    /// Offset of its first byte.
    pub off: u32,
    /// Its length in bytes (a whole array for `cb[5]`, `remote_ip6[4]`, `args[]`, ...).
    pub len: u32,
    /// How it may be read; `None`: not at all for this program type.
    pub read: Option<Rule>,
    /// How it may be written; `None`: not at all for this program type.
    pub write: Option<Rule>,
    /// What a load of it yields.
    pub yields: Yields,
    /// The rule in words: why an access to this field is refused (bpflab's explanation;
    /// the kernel's message is [`CtxDenied`]'s display).
    pub note: &'static str,
}

impl CtxField {
    /// Whether `off` falls within the field.
    pub fn contains(&self, off: u32) -> bool {
        off >= self.off && off - self.off < self.len
    }
}

/// The context structure of a program type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CtxLayout {
    /// The structure's name (`__sk_buff`, `xdp_md`, ...).
    pub name: &'static str,
    /// Accesses must start below this offset (the structure's size; `U16_MAX` for syscall
    /// programs, `PERF_MAX_TRACE_SIZE` for tracepoints).
    pub size: u32,
    /// Why an access past [`CtxLayout::size`] is refused.
    pub past_end: &'static str,
    /// The fields, in offset order, not overlapping; offsets in no field are padding.
    pub fields: &'static [CtxField],
    /// Why a store to a readable field that is not writable is refused.
    pub read_only: &'static str,
}

/// How a context is accessed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AccessKind {
    /// A load (`BPF_LDX | BPF_MEM`).
    Read,
    /// A sign-extending load (`BPF_LDX | BPF_MEMSX`).
    ReadSx,
    /// A store (`BPF_STX | BPF_MEM`).
    Write,
}

/// Why an access was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Why {
    /// The offset is negative or past the structure.
    OutOfRange,
    /// The size is not 1, 2, 4 or 8, or the offset not a multiple of it.
    Misaligned,
    /// The offset is in padding between fields.
    Padding,
    /// The field is not accessible this way for this program type.
    Unavailable,
    /// The field is readable but not writable.
    ReadOnly,
    /// The field needs another expected attach type.
    AttachType,
    /// The field needs `CAP_BPF`.
    Privilege,
    /// The size or position within the field is not allowed.
    Size,
    /// A sign-extending load of a pointer.
    SignExtend,
}

/// A refused context access: displays as the kernel's verifier message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[error("invalid bpf_context access off={off} size={size}")]
pub struct CtxDenied {
    /// The offset accessed.
    pub off: i64,
    /// The access size.
    pub size: u32,
    /// The kind of refusal.
    pub why: Why,
    /// The field accessed, if the offset is in one.
    pub field: Option<&'static CtxField>,
    /// bpflab's explanation.
    pub reason: &'static str,
}

impl CtxLayout {
    /// The field holding byte `off`.
    pub fn field_at(&self, off: u32) -> Option<&'static CtxField> {
        self.fields.iter().find(|f| f.contains(off))
    }

    /// The kernel's `is_valid_access` for this structure: the field an access of `size`
    /// bytes at `off` reaches, or why it is refused. `attach` is the program's expected
    /// attach type (as normalized by [`normalize_attach`]), `cap_bpf` whether it was loaded
    /// with `CAP_BPF`.
    pub fn check(
        &self,
        attach: u32,
        cap_bpf: bool,
        off: i64,
        size: u32,
        kind: AccessKind,
    ) -> Result<&'static CtxField, CtxDenied> {
        let deny = |why, field: Option<&'static CtxField>, reason| {
            Err(CtxDenied { off, size, why, field, reason })
        };
        let Ok(uoff) = u32::try_from(off) else {
            return deny(Why::OutOfRange, None, "negative context offset");
        };
        if uoff >= self.size {
            return deny(Why::OutOfRange, None, self.past_end);
        }
        if !matches!(size, 1 | 2 | 4 | 8) || !uoff.is_multiple_of(size) {
            return deny(Why::Misaligned, None, "misaligned context access");
        }
        let Some(field) = self.field_at(uoff) else {
            return deny(Why::Padding, None, "padding of the context structure");
        };
        let rule = match kind {
            AccessKind::Read | AccessKind::ReadSx => field.read,
            AccessKind::Write => field.write,
        };
        let Some(rule) = rule else {
            if kind == AccessKind::Write && field.read.is_some() {
                return deny(Why::ReadOnly, Some(field), self.read_only);
            }
            return deny(Why::Unavailable, Some(field), field.note);
        };
        match rule.when {
            When::Always => {}
            When::Attach(types) if types.contains(&attach) => {}
            When::Attach(_) => return deny(Why::AttachType, Some(field), field.note),
            When::CapBpf if cap_bpf => {}
            When::CapBpf => return deny(Why::Privilege, Some(field), field.note),
        }
        let at_start = uoff == field.off;
        let fits = u64::from(uoff) + u64::from(size) <= u64::from(field.off) + u64::from(field.len);
        if rule.sizes & size as u8 == 0 || !(at_start || rule.anywhere && fits) {
            return deny(Why::Size, Some(field), field.note);
        }
        if kind == AccessKind::ReadSx && !field.yields.is_scalar() {
            return deny(Why::SignExtend, Some(field), field.note);
        }
        Ok(field)
    }
}

/// The expected attach type the kernel uses for a program loaded with `attach` (it fills in
/// `BPF_CGROUP_INET_SOCK_CREATE` for cgroup_sock and `BPF_SK_REUSEPORT_SELECT` for
/// sk_reuseport programs loaded without one; 0 otherwise).
pub fn normalize_attach(prog_type: ProgType, attach: Option<u32>) -> u32 {
    match (prog_type, attach) {
        (ProgType::CgroupSock, None | Some(0)) => a::CGROUP_INET_SOCK_CREATE,
        (ProgType::SkReuseport, None | Some(0)) => a::SK_REUSEPORT_SELECT,
        (_, attach) => attach.unwrap_or(0),
    }
}

/// The context structure of `prog_type`; `None` for types without a fixed one (unspec,
/// struct_ops and freplace programs, whose context is their target's).
pub fn layout(prog_type: ProgType) -> Option<&'static CtxLayout> {
    Some(match prog_type {
        ProgType::SocketFilter => &SOCKET_FILTER,
        ProgType::SchedCls | ProgType::SchedAct => &TC,
        ProgType::CgroupSkb => &CGROUP_SKB,
        ProgType::LwtIn | ProgType::LwtOut | ProgType::LwtXmit | ProgType::LwtSeg6local => &LWT,
        ProgType::SkSkb => &SK_SKB,
        ProgType::FlowDissector => &FLOW_DISSECTOR,
        ProgType::Xdp => &XDP,
        ProgType::SockOps => &SOCK_OPS,
        ProgType::SkMsg => &SK_MSG,
        ProgType::SkLookup => &SK_LOOKUP,
        ProgType::SkReuseport => &SK_REUSEPORT,
        ProgType::CgroupSock => &CGROUP_SOCK,
        ProgType::CgroupSockAddr => &SOCK_ADDR,
        ProgType::CgroupSysctl => &SYSCTL,
        ProgType::CgroupSockopt => &SOCKOPT,
        ProgType::CgroupDevice => &CGROUP_DEVICE,
        ProgType::Kprobe => &KPROBE,
        ProgType::Tracepoint => &TRACEPOINT,
        ProgType::PerfEvent => &PERF_EVENT,
        ProgType::RawTracepoint => &RAW_TP,
        ProgType::RawTracepointWritable => &RAW_TP_WRITABLE,
        ProgType::Tracing | ProgType::Lsm => &TRACING,
        ProgType::Syscall => &SYSCALL,
        ProgType::Netfilter => &NETFILTER,
        ProgType::LircMode2 => &LIRC_MODE2,
        ProgType::Unspec | ProgType::StructOps | ProgType::Ext => return None,
    })
}

/// The kernel's `is_valid_access` for `target`'s context, as a program loaded with
/// `CAP_BPF` (bpflab's runs) sees it: the field reached, or why the access is refused.
/// Program types without a context description refuse every access.
pub fn check_access(
    target: Target,
    off: i64,
    size: u32,
    kind: AccessKind,
) -> Result<&'static CtxField, CtxDenied> {
    check_access_as(target, true, off, size, kind)
}

/// [`check_access`] for a program loaded with or without `CAP_BPF`.
pub fn check_access_as(
    target: Target,
    cap_bpf: bool,
    off: i64,
    size: u32,
    kind: AccessKind,
) -> Result<&'static CtxField, CtxDenied> {
    let Some(l) = layout(target.prog_type) else {
        return Err(CtxDenied {
            off,
            size,
            why: Why::Unavailable,
            field: None,
            reason: "the program type has no context description",
        });
    };
    l.check(normalize_attach(target.prog_type, target.attach), cap_bpf, off, size, kind)
}

impl fmt::Display for Yields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Yields::Scalar => "scalar",
            Yields::Packet => "pkt",
            Yields::PacketMeta => "pkt_meta",
            Yields::PacketEnd => "pkt_end",
            Yields::Socket => "sock",
            Yields::SocketOrNull => "sock_or_null",
            Yields::SockCommonOrNull => "sock_common_or_null",
            Yields::FlowKeys => "flow_keys",
            Yields::TpBuffer => "tp_buffer",
            Yields::TracedArg => "traced argument",
            Yields::BtfId(name) => name,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Table builders

const fn field(
    name: &'static str,
    off: u32,
    len: u32,
    read: Option<Rule>,
    write: Option<Rule>,
    yields: Yields,
    note: &'static str,
) -> CtxField {
    CtxField { name, off, len, read, write, yields, note }
}

/// A read-only scalar field.
const fn ro(name: &'static str, off: u32, len: u32, read: Rule, note: &'static str) -> CtxField {
    field(name, off, len, Some(read), None, Yields::Scalar, note)
}

/// A read-only pointer field.
const fn ptr(name: &'static str, off: u32, len: u32, read: Rule, yields: Yields) -> CtxField {
    field(name, off, len, Some(read), None, yields, "pointer fields are read whole")
}

/// A field the program type may not access at all.
const fn none(name: &'static str, off: u32, len: u32, note: &'static str) -> CtxField {
    field(name, off, len, None, None, Yields::Scalar, note)
}

// ---------------------------------------------------------------------------------------------
// struct __sk_buff (bpf_skb_is_valid_access and each type's own rules)

/// `sizeof(struct __sk_buff)`.
pub const SK_BUFF_SIZE: u32 = 192;

/// The program types with an `__sk_buff` context, by the rules they follow.
#[derive(Clone, Copy, PartialEq, Eq)]
#[allow(clippy::enum_variant_names)]
enum Skb {
    SocketFilter,
    Tc,
    CgroupSkb,
    Lwt,
    SkSkb,
}

const SKB_FIELDS: usize = 34;
const SKB_NARROW: &str = "fields are read as u32 or narrower, written as u32";

/// A default `__sk_buff` field: narrow loads, u32 stores where the type allows them.
const fn skb_plain(name: &'static str, off: u32, writable: bool) -> CtxField {
    let write = if writable { Some(Rule::at_start(U32)) } else { None };
    field(name, off, 4, Some(Rule::anywhere(NARROW32)), write, Yields::Scalar, SKB_NARROW)
}

/// A default field, or one the type may not access.
const fn skb_plain_if(
    name: &'static str,
    off: u32,
    available: bool,
    writable: bool,
    absent: &'static str,
) -> CtxField {
    if available { skb_plain(name, off, writable) } else { none(name, off, 4, absent) }
}

/// A packet pointer: u32 loads only, never sign-extended.
const fn skb_pkt(
    name: &'static str,
    off: u32,
    yields: Yields,
    available: Option<When>,
    absent: &'static str,
) -> CtxField {
    match available {
        Some(when) => field(
            name,
            off,
            4,
            Some(Rule::at_start(U32).when(when)),
            None,
            yields,
            "packet pointers are read as u32",
        ),
        None => none(name, off, 4, absent),
    }
}

/// An address of the skb's socket: u32 loads only.
const fn skb_addr(
    name: &'static str,
    off: u32,
    len: u32,
    sock: bool,
    absent: &'static str,
) -> CtxField {
    if sock {
        ro(name, off, len, Rule::anywhere(U32), "addresses are read as u32")
    } else {
        none(name, off, len, absent)
    }
}

const fn skb_fields(t: Skb) -> [CtxField; SKB_FIELDS] {
    use Skb::*;
    let tc = matches!(t, Tc);
    let absent = match t {
        SocketFilter => "field not available to socket filters",
        Tc => "field not available to tc programs",
        CgroupSkb => "field not available to cgroup_skb programs",
        Lwt => "field not available to lwt programs",
        SkSkb => "field not available to sk_skb programs",
    };
    // family .. local_port: readable by cgroup_skb and sk_skb programs only.
    let sock = matches!(t, CgroupSkb | SkSkb);
    let sock_absent = if tc { "socket fields are not available to tc programs" } else { absent };
    let data = match t {
        SocketFilter => None,
        CgroupSkb => Some(When::CapBpf),
        _ => Some(When::Always),
    };
    let tstamp = match t {
        Tc => field(
            "tstamp",
            152,
            8,
            Some(Rule::at_start(U64)),
            Some(Rule::at_start(U64)),
            Yields::Scalar,
            "tstamp is accessed as u64",
        ),
        CgroupSkb => field(
            "tstamp",
            152,
            8,
            Some(Rule::at_start(U64)),
            Some(Rule::at_start(U64).when(When::CapBpf)),
            Yields::Scalar,
            "tstamp is accessed as u64 (written with CAP_BPF)",
        ),
        _ => none("tstamp", 152, 8, absent),
    };
    [
        skb_plain("len", 0, false),
        skb_plain("pkt_type", 4, false),
        if matches!(t, SkSkb) {
            none("mark", 8, 4, "mark is not available to sk_skb programs")
        } else {
            skb_plain("mark", 8, matches!(t, Tc | CgroupSkb | Lwt))
        },
        skb_plain("queue_mapping", 12, tc),
        skb_plain("protocol", 16, false),
        skb_plain("vlan_present", 20, false),
        skb_plain("vlan_tci", 24, false),
        skb_plain("vlan_proto", 28, false),
        skb_plain("priority", 32, !matches!(t, SocketFilter)),
        skb_plain("ingress_ifindex", 36, false),
        skb_plain("ifindex", 40, false),
        skb_plain("tc_index", 44, matches!(t, Tc | SkSkb)),
        field(
            "cb",
            48,
            20,
            Some(Rule::anywhere(ANY)),
            if matches!(t, SkSkb) { None } else { Some(Rule::anywhere(ANY)) },
            Yields::Scalar,
            "past the end of cb[]",
        ),
        skb_plain("hash", 68, false),
        skb_plain_if("tc_classid", 72, tc, tc, absent),
        skb_pkt("data", 76, Yields::Packet, data, absent),
        skb_pkt("data_end", 80, Yields::PacketEnd, data, absent),
        skb_plain("napi_id", 84, false),
        skb_plain_if("family", 88, sock, false, sock_absent),
        skb_addr("remote_ip4", 92, 4, sock, sock_absent),
        skb_addr("local_ip4", 96, 4, sock, sock_absent),
        skb_addr("remote_ip6", 100, 16, sock, sock_absent),
        skb_addr("local_ip6", 116, 16, sock, sock_absent),
        skb_plain_if("remote_port", 132, sock, false, sock_absent),
        skb_plain_if("local_port", 136, sock, false, sock_absent),
        skb_pkt(
            "data_meta",
            140,
            Yields::PacketMeta,
            if tc { Some(When::Always) } else { None },
            absent,
        ),
        none("flow_keys", 144, 8, "flow_keys is for flow dissectors only"),
        tstamp,
        skb_plain_if("wire_len", 160, tc, false, absent),
        skb_plain("gso_segs", 164, false),
        field(
            "sk",
            168,
            8,
            Some(Rule::at_start(U64)),
            None,
            Yields::SockCommonOrNull,
            "sk is a read-only pointer",
        ),
        skb_plain("gso_size", 176, false),
        if tc {
            ro("tstamp_type", 180, 1, Rule::at_start(U8), "tstamp_type is a u8")
        } else {
            none("tstamp_type", 180, 1, "tstamp_type is for tc programs only")
        },
        if matches!(t, Tc | CgroupSkb) {
            ro("hwtstamp", 184, 8, Rule::at_start(U64), "hwtstamp is a read-only u64")
        } else {
            none("hwtstamp", 184, 8, absent)
        },
    ]
}

static SOCKET_FILTER_FIELDS: [CtxField; SKB_FIELDS] = skb_fields(Skb::SocketFilter);
static TC_FIELDS: [CtxField; SKB_FIELDS] = skb_fields(Skb::Tc);
static CGROUP_SKB_FIELDS: [CtxField; SKB_FIELDS] = skb_fields(Skb::CgroupSkb);
static LWT_FIELDS: [CtxField; SKB_FIELDS] = skb_fields(Skb::Lwt);
static SK_SKB_FIELDS: [CtxField; SKB_FIELDS] = skb_fields(Skb::SkSkb);

/// Socket filters (`sk_filter_is_valid_access`): no packet pointers, no socket fields, only
/// `cb[]` writable.
pub static SOCKET_FILTER: CtxLayout = CtxLayout {
    name: "__sk_buff",
    size: SK_BUFF_SIZE,
    past_end: "past the end of __sk_buff",
    fields: &SOCKET_FILTER_FIELDS,
    read_only: "socket filters may only write cb[]",
};
/// tc classifiers and actions (`tc_cls_act_is_valid_access`).
pub static TC: CtxLayout = CtxLayout {
    name: "__sk_buff",
    size: SK_BUFF_SIZE,
    past_end: "past the end of __sk_buff",
    fields: &TC_FIELDS,
    read_only: "field is read-only for tc programs",
};
/// cgroup_skb programs (`cg_skb_is_valid_access`).
pub static CGROUP_SKB: CtxLayout = CtxLayout {
    name: "__sk_buff",
    size: SK_BUFF_SIZE,
    past_end: "past the end of __sk_buff",
    fields: &CGROUP_SKB_FIELDS,
    read_only: "field is read-only for cgroup_skb programs",
};
/// lwt_in, lwt_out, lwt_xmit and lwt_seg6local programs (`lwt_is_valid_access`).
pub static LWT: CtxLayout = CtxLayout {
    name: "__sk_buff",
    size: SK_BUFF_SIZE,
    past_end: "past the end of __sk_buff",
    fields: &LWT_FIELDS,
    read_only: "field is read-only for lwt programs",
};
/// sk_skb stream parsers and verdicts (`sk_skb_is_valid_access`).
pub static SK_SKB: CtxLayout = CtxLayout {
    name: "__sk_buff",
    size: SK_BUFF_SIZE,
    past_end: "past the end of __sk_buff",
    fields: &SK_SKB_FIELDS,
    read_only: "sk_skb programs may only write tc_index and priority",
};

/// Flow dissectors (`flow_dissector_is_valid_access`): `struct bpf_flow_dissector` seen
/// through `__sk_buff` offsets, read-only.
pub static FLOW_DISSECTOR: CtxLayout = CtxLayout {
    name: "__sk_buff",
    size: SK_BUFF_SIZE,
    past_end: "past the end of __sk_buff",
    fields: &[
        none("len..napi_id", 0, 76, "flow dissectors may only read data, data_end and flow_keys"),
        field(
            "data",
            76,
            4,
            Some(Rule::at_start(U32)),
            None,
            Yields::Packet,
            "packet pointers are read as u32",
        ),
        field(
            "data_end",
            80,
            4,
            Some(Rule::at_start(U32)),
            None,
            Yields::PacketEnd,
            "packet pointers are read as u32",
        ),
        none(
            "napi_id..data_meta",
            84,
            60,
            "flow dissectors may only read data, data_end and flow_keys",
        ),
        field(
            "flow_keys",
            144,
            8,
            Some(Rule::at_start(U64)),
            None,
            Yields::FlowKeys,
            "flow_keys is a u64 pointer",
        ),
        none("tstamp..", 152, 40, "flow dissectors may only read data, data_end and flow_keys"),
    ],
    read_only: "the flow dissector's context is read-only",
};

// ---------------------------------------------------------------------------------------------
// struct xdp_md (xdp_is_valid_access)

/// `sizeof(struct xdp_md)`.
pub const XDP_MD_SIZE: u32 = 24;
const XDP_U32: &str = "xdp_md fields are read as u32";

const fn xdp_ptr(name: &'static str, off: u32, yields: Yields) -> CtxField {
    field(name, off, 4, Some(Rule::at_start(U32)), None, yields, XDP_U32)
}

/// XDP programs: every field a u32, read-only; `egress_ifindex` for devmap programs only.
pub static XDP: CtxLayout = CtxLayout {
    name: "xdp_md",
    size: XDP_MD_SIZE,
    past_end: "past the end of xdp_md",
    fields: &[
        xdp_ptr("data", 0, Yields::Packet),
        xdp_ptr("data_end", 4, Yields::PacketEnd),
        xdp_ptr("data_meta", 8, Yields::PacketMeta),
        ro("ingress_ifindex", 12, 4, Rule::at_start(U32), XDP_U32),
        ro("rx_queue_index", 16, 4, Rule::at_start(U32), XDP_U32),
        ro(
            "egress_ifindex",
            20,
            4,
            Rule::at_start(U32).when(When::Attach(&[a::XDP_DEVMAP])),
            "egress_ifindex needs a devmap program (and is read as u32)",
        ),
    ],
    read_only: "xdp_md is read-only",
};

// ---------------------------------------------------------------------------------------------
// struct bpf_sock_ops (sock_ops_is_valid_access)

/// `sizeof(struct bpf_sock_ops)`.
pub const SOCK_OPS_SIZE: u32 = 224;
const OPS_U32: &str = "bpf_sock_ops fields are read as u32";

const fn ops(name: &'static str, off: u32, len: u32) -> CtxField {
    ro(name, off, len, Rule::anywhere(U32), OPS_U32)
}

/// sockops programs: u32 fields, u64 counters and pointers; only `reply` and `sk_txhash`
/// writable.
pub static SOCK_OPS: CtxLayout = CtxLayout {
    name: "bpf_sock_ops",
    size: SOCK_OPS_SIZE,
    past_end: "past the end of bpf_sock_ops",
    fields: &[
        ops("op", 0, 4),
        field(
            "reply",
            4,
            4,
            Some(Rule::at_start(U32)),
            Some(Rule::at_start(U32)),
            Yields::Scalar,
            OPS_U32,
        ),
        ops("args[1..3]", 8, 12),
        ops("family", 20, 4),
        ops("remote_ip4", 24, 4),
        ops("local_ip4", 28, 4),
        ops("remote_ip6", 32, 16),
        ops("local_ip6", 48, 16),
        ops("remote_port", 64, 4),
        ops("local_port", 68, 4),
        ops("is_fullsock", 72, 4),
        ops("snd_cwnd..sacked_out", 76, 88),
        field(
            "sk_txhash",
            164,
            4,
            Some(Rule::at_start(U32)),
            Some(Rule::at_start(U32)),
            Yields::Scalar,
            OPS_U32,
        ),
        ro("bytes_received", 168, 8, Rule::at_start(U64), "bytes_received is read as u64"),
        ro("bytes_acked", 176, 8, Rule::at_start(U64), "bytes_acked is read as u64"),
        ptr("sk", 184, 8, Rule::at_start(U64), Yields::SocketOrNull),
        ptr("skb_data", 192, 8, Rule::at_start(U64), Yields::Packet),
        ptr("skb_data_end", 200, 8, Rule::at_start(U64), Yields::PacketEnd),
        ops("skb_len", 208, 4),
        ro("skb_tcp_flags", 212, 4, Rule::at_start(NARROW32), "skb_tcp_flags is at most a u32"),
        ro("skb_hwtstamp", 216, 8, Rule::at_start(U64), "skb_hwtstamp is read as u64"),
    ],
    read_only: "only reply and sk_txhash are writable",
};

// ---------------------------------------------------------------------------------------------
// struct sk_msg_md (sk_msg_is_valid_access)

/// `sizeof(struct sk_msg_md)`.
pub const SK_MSG_MD_SIZE: u32 = 80;
const MSG_U32: &str = "sk_msg_md fields are read as u32";

/// sk_msg programs: read-only; pointers as u64, the rest as u32.
pub static SK_MSG: CtxLayout = CtxLayout {
    name: "sk_msg_md",
    size: SK_MSG_MD_SIZE,
    past_end: "past the end of sk_msg_md",
    fields: &[
        ptr("data", 0, 8, Rule::at_start(U64), Yields::Packet),
        ptr("data_end", 8, 8, Rule::at_start(U64), Yields::PacketEnd),
        ro("family", 16, 4, Rule::at_start(U32), MSG_U32),
        ro("remote_ip4", 20, 4, Rule::at_start(U32), MSG_U32),
        ro("local_ip4", 24, 4, Rule::at_start(U32), MSG_U32),
        ro("remote_ip6", 28, 16, Rule::anywhere(U32), MSG_U32),
        ro("local_ip6", 44, 16, Rule::anywhere(U32), MSG_U32),
        ro("remote_port", 60, 4, Rule::at_start(U32), MSG_U32),
        ro("local_port", 64, 4, Rule::at_start(U32), MSG_U32),
        ro("size", 68, 4, Rule::at_start(U32), MSG_U32),
        ptr("sk", 72, 8, Rule::at_start(U64), Yields::Socket),
    ],
    read_only: "sk_msg_md is read-only",
};

// ---------------------------------------------------------------------------------------------
// struct bpf_sk_lookup (sk_lookup_is_valid_access)

/// `sizeof(struct bpf_sk_lookup)`.
pub const SK_LOOKUP_SIZE: u32 = 72;
const LOOKUP_NARROW: &str = "bpf_sk_lookup fields are read as u32 or narrower";

const fn lookup(name: &'static str, off: u32, len: u32) -> CtxField {
    ro(name, off, len, Rule::anywhere(NARROW32), LOOKUP_NARROW)
}

/// sk_lookup programs: read-only; `sk` as u64, the rest narrow-readable.
pub static SK_LOOKUP: CtxLayout = CtxLayout {
    name: "bpf_sk_lookup",
    size: SK_LOOKUP_SIZE,
    past_end: "past the end of bpf_sk_lookup",
    fields: &[
        field(
            "sk",
            0,
            8,
            Some(Rule::at_start(U64)),
            None,
            Yields::SocketOrNull,
            "not a readable bpf_sk_lookup field (sk is loaded as u64)",
        ),
        lookup("family", 8, 4),
        lookup("protocol", 12, 4),
        lookup("remote_ip4", 16, 4),
        lookup("remote_ip6", 20, 16),
        // A 2-byte field; 4-byte loads are kept for compatibility.
        ro(
            "remote_port",
            36,
            2,
            Rule::anywhere(NARROW32),
            "remote_port is a __be16 (u32 loads allowed)",
        ),
        ro("remote_port padding", 38, 2, Rule::anywhere(U8 | U16), "zero padding"),
        lookup("local_ip4", 40, 4),
        lookup("local_ip6", 44, 16),
        lookup("local_port", 60, 4),
        lookup("ingress_ifindex", 64, 4),
    ],
    read_only: "bpf_sk_lookup is read-only",
};

// ---------------------------------------------------------------------------------------------
// struct sk_reuseport_md (sk_reuseport_is_valid_access)

/// sk_reuseport programs: read-only.
pub static SK_REUSEPORT: CtxLayout = CtxLayout {
    name: "sk_reuseport_md",
    size: 56,
    past_end: "past the end of sk_reuseport_md",
    fields: &[
        ptr("data", 0, 8, Rule::at_start(U64), Yields::Packet),
        ptr("data_end", 8, 8, Rule::at_start(U64), Yields::PacketEnd),
        ro("len", 16, 4, Rule::anywhere(NARROW32), "len is read as u32 or narrower"),
        ro("eth_protocol", 20, 4, Rule::anywhere(U16 | U32), "eth_protocol is read as u16 or u32"),
        ro(
            "ip_protocol",
            24,
            4,
            Rule::anywhere(NARROW32),
            "ip_protocol is read as u32 or narrower",
        ),
        ro("bind_inany", 28, 4, Rule::anywhere(NARROW32), "bind_inany is read as u32 or narrower"),
        ro("hash", 32, 4, Rule::at_start(U32), "hash is read as u32"),
        ptr("sk", 40, 8, Rule::at_start(U64), Yields::Socket),
        ptr("migrating_sk", 48, 8, Rule::at_start(U64), Yields::SockCommonOrNull),
    ],
    read_only: "sk_reuseport_md is read-only",
};

// ---------------------------------------------------------------------------------------------
// struct bpf_sock (sock_filter_is_valid_access: cgroup_sock programs)

const CREATE_RELEASE: &[u32] = &[a::CGROUP_INET_SOCK_CREATE, a::CGROUP_INET_SOCK_RELEASE];
const SOCK_NARROW_START: &str = "read as u32, or narrower at the field's first byte";

const fn sock_rw(name: &'static str, off: u32) -> CtxField {
    let rule = Rule::at_start(U32).when(When::Attach(CREATE_RELEASE));
    field(
        name,
        off,
        4,
        Some(rule),
        Some(rule),
        Yields::Scalar,
        "a u32 of sock_create and sock_release programs only",
    )
}

/// cgroup_sock programs (`struct bpf_sock`): `bound_dev_if`, `mark` and `priority` read and
/// written by sock_create/sock_release programs, source addresses read by post_bind
/// programs, the rest read-only.
pub static CGROUP_SOCK: CtxLayout = CtxLayout {
    name: "bpf_sock",
    size: 80,
    past_end: "past the end of bpf_sock",
    fields: &[
        sock_rw("bound_dev_if", 0),
        ro("family", 4, 4, Rule::at_start(NARROW32), SOCK_NARROW_START),
        ro("type", 8, 4, Rule::at_start(NARROW32), SOCK_NARROW_START),
        ro("protocol", 12, 4, Rule::at_start(NARROW32), SOCK_NARROW_START),
        sock_rw("mark", 16),
        sock_rw("priority", 20),
        ro(
            "src_ip4",
            24,
            4,
            Rule::anywhere(NARROW32).when(When::Attach(&[a::CGROUP_INET4_POST_BIND])),
            "src_ip4 is for post_bind4 programs",
        ),
        ro(
            "src_ip6",
            28,
            16,
            Rule::anywhere(NARROW32).when(When::Attach(&[a::CGROUP_INET6_POST_BIND])),
            "src_ip6 is for post_bind6 programs",
        ),
        ro(
            "src_port",
            44,
            4,
            Rule::at_start(NARROW32)
                .when(When::Attach(&[a::CGROUP_INET4_POST_BIND, a::CGROUP_INET6_POST_BIND])),
            "src_port is for post_bind programs",
        ),
        ro("dst_port", 48, 2, Rule::anywhere(NARROW32), "dst_port is a __be16 (u32 loads allowed)"),
        ro("dst_ip4", 52, 4, Rule::anywhere(NARROW32), "read as u32 or narrower"),
        ro("dst_ip6", 56, 16, Rule::anywhere(NARROW32), "read as u32 or narrower"),
        ro("state", 72, 4, Rule::at_start(NARROW32), SOCK_NARROW_START),
        ro("rx_queue_mapping", 76, 4, Rule::at_start(NARROW32), SOCK_NARROW_START),
    ],
    read_only: "bpf_sock is read-only here",
};

// ---------------------------------------------------------------------------------------------
// struct bpf_sock_addr (sock_addr_is_valid_access)

const IP4_ATTACH: &[u32] = &[
    a::CGROUP_INET4_BIND,
    a::CGROUP_INET4_CONNECT,
    a::CGROUP_INET4_GETPEERNAME,
    a::CGROUP_INET4_GETSOCKNAME,
    a::CGROUP_UDP4_SENDMSG,
    a::CGROUP_UDP4_RECVMSG,
];
const IP6_ATTACH: &[u32] = &[
    a::CGROUP_INET6_BIND,
    a::CGROUP_INET6_CONNECT,
    a::CGROUP_INET6_GETPEERNAME,
    a::CGROUP_INET6_GETSOCKNAME,
    a::CGROUP_UDP6_SENDMSG,
    a::CGROUP_UDP6_RECVMSG,
];

/// An address field: narrow reads, u32 stores; the 16-byte ones also u64 loads and stores.
const fn sa_addr(name: &'static str, off: u32, len: u32, when: When) -> CtxField {
    let (r, w) = if len == 16 { (ANY, U32 | U64) } else { (NARROW32, U32) };
    field(
        name,
        off,
        len,
        Some(Rule::anywhere(r).when(when)),
        Some(Rule::anywhere(w).when(when)),
        Yields::Scalar,
        "an address of this attach type's family, read as u32 or narrower, written as u32",
    )
}

/// cgroup_sock_addr programs (`struct bpf_sock_addr`): the address fields of the attach
/// type's family and the port readable and writable, the rest read-only.
pub static SOCK_ADDR: CtxLayout = CtxLayout {
    name: "bpf_sock_addr",
    size: 72,
    past_end: "past the end of bpf_sock_addr",
    fields: &[
        ro("user_family", 0, 4, Rule::at_start(U32), "user_family is read as u32"),
        sa_addr("user_ip4", 4, 4, When::Attach(IP4_ATTACH)),
        sa_addr("user_ip6", 8, 16, When::Attach(IP6_ATTACH)),
        sa_addr("user_port", 24, 4, When::Always),
        ro("family", 28, 4, Rule::at_start(U32), "family is read as u32"),
        ro("type", 32, 4, Rule::at_start(U32), "type is read as u32"),
        ro("protocol", 36, 4, Rule::at_start(U32), "protocol is read as u32"),
        sa_addr("msg_src_ip4", 40, 4, When::Attach(&[a::CGROUP_UDP4_SENDMSG])),
        sa_addr("msg_src_ip6", 44, 16, When::Attach(&[a::CGROUP_UDP6_SENDMSG])),
        ptr("sk", 64, 8, Rule::at_start(U64), Yields::Socket),
    ],
    read_only: "field is read-only for cgroup_sock_addr programs",
};

// ---------------------------------------------------------------------------------------------
// struct bpf_sysctl, bpf_sockopt, bpf_cgroup_dev_ctx (kernel/bpf/cgroup.c)

/// cgroup_sysctl programs: `write` read-only, `file_pos` readable and writable as u32.
pub static SYSCTL: CtxLayout = CtxLayout {
    name: "bpf_sysctl",
    size: 8,
    past_end: "past the end of bpf_sysctl",
    fields: &[
        ro("write", 0, 4, Rule::anywhere(NARROW32), "write is read as u32 or narrower"),
        field(
            "file_pos",
            4,
            4,
            Some(Rule::anywhere(NARROW32)),
            Some(Rule::at_start(U32)),
            Yields::Scalar,
            "file_pos is read as u32 or narrower, written as u32",
        ),
    ],
    read_only: "write is read-only",
};

const SOCKOPT_GET: &[u32] = &[a::CGROUP_GETSOCKOPT];
const SOCKOPT_SET: &[u32] = &[a::CGROUP_SETSOCKOPT];

/// cgroup_sockopt programs (`struct bpf_sockopt`).
pub static SOCKOPT: CtxLayout = CtxLayout {
    name: "bpf_sockopt",
    size: 40,
    past_end: "past the end of bpf_sockopt",
    fields: &[
        ptr("sk", 0, 8, Rule::at_start(U64), Yields::Socket),
        ptr("optval", 8, 8, Rule::at_start(U64), Yields::Packet),
        ptr("optval_end", 16, 8, Rule::at_start(U64), Yields::PacketEnd),
        field(
            "level",
            24,
            4,
            Some(Rule::at_start(U32)),
            Some(Rule::at_start(U32).when(When::Attach(SOCKOPT_SET))),
            Yields::Scalar,
            "level is a u32, written by setsockopt programs",
        ),
        field(
            "optname",
            28,
            4,
            Some(Rule::at_start(U32)),
            Some(Rule::at_start(U32).when(When::Attach(SOCKOPT_SET))),
            Yields::Scalar,
            "optname is a u32, written by setsockopt programs",
        ),
        field(
            "optlen",
            32,
            4,
            Some(Rule::at_start(U32)),
            Some(Rule::at_start(U32)),
            Yields::Scalar,
            "optlen is a u32",
        ),
        field(
            "retval",
            36,
            4,
            Some(Rule::at_start(U32).when(When::Attach(SOCKOPT_GET))),
            Some(Rule::at_start(U32).when(When::Attach(SOCKOPT_GET))),
            Yields::Scalar,
            "retval is a u32 of getsockopt programs",
        ),
    ],
    read_only: "field is read-only for cgroup_sockopt programs",
};

/// cgroup_device programs (`struct bpf_cgroup_dev_ctx`): read-only.
pub static CGROUP_DEVICE: CtxLayout = CtxLayout {
    name: "bpf_cgroup_dev_ctx",
    size: 12,
    past_end: "past the end of bpf_cgroup_dev_ctx",
    fields: &[
        ro("access_type", 0, 4, Rule::anywhere(NARROW32), "access_type is read as u32 or narrower"),
        ro("major", 4, 4, Rule::at_start(U32), "major is read as u32"),
        ro("minor", 8, 4, Rule::at_start(U32), "minor is read as u32"),
    ],
    read_only: "bpf_cgroup_dev_ctx is read-only",
};

// ---------------------------------------------------------------------------------------------
// Tracing contexts (kernel/trace/bpf_trace.c, kernel/bpf/btf.c)

/// `sizeof(struct pt_regs)` on x86_64.
pub const PT_REGS_SIZE: u32 = 168;
/// `PERF_MAX_TRACE_SIZE`: the largest tracepoint record.
pub const PERF_MAX_TRACE_SIZE: u32 = 8192;
/// Most arguments of a traced function or raw tracepoint (`MAX_BPF_FUNC_ARGS`).
pub const MAX_BPF_FUNC_ARGS: u32 = 12;
/// Bytes of a tracing program's argument array (`MAX_BPF_FUNC_ARGS` u64 slots).
pub const ARGS_SIZE: u32 = MAX_BPF_FUNC_ARGS * 8;

/// kprobes (`kprobe_prog_is_valid_access`): `struct pt_regs`, any aligned load.
pub static KPROBE: CtxLayout = CtxLayout {
    name: "pt_regs",
    size: PT_REGS_SIZE,
    past_end: "past the end of pt_regs",
    fields: &[ro("regs", 0, PT_REGS_SIZE, Rule::anywhere(ANY), "past the end of struct pt_regs")],
    read_only: "struct pt_regs is read-only",
};

/// Tracepoints (`tp_prog_is_valid_access`): the raw record after its 8 bytes of common fields,
/// any aligned load.
pub static TRACEPOINT: CtxLayout = CtxLayout {
    name: "tracepoint record",
    size: PERF_MAX_TRACE_SIZE,
    past_end: "past PERF_MAX_TRACE_SIZE",
    fields: &[
        none("common fields", 0, 8, "the tracepoint's common fields are not readable"),
        ro("record", 8, PERF_MAX_TRACE_SIZE - 8, Rule::anywhere(ANY), "past PERF_MAX_TRACE_SIZE"),
    ],
    read_only: "a tracepoint record is read-only",
};

/// perf_event programs (`struct bpf_perf_event_data`, `pe_prog_is_valid_access`): registers
/// as u64, `sample_period` and `addr` narrow-readable.
pub static PERF_EVENT: CtxLayout = CtxLayout {
    name: "bpf_perf_event_data",
    size: 184,
    past_end: "past the end of bpf_perf_event_data",
    fields: &[
        ro("regs", 0, PT_REGS_SIZE, Rule::anywhere(U64), "registers are read as u64"),
        ro("sample_period", 168, 8, Rule::anywhere(ANY), "sample_period is a u64"),
        ro("addr", 176, 8, Rule::anywhere(ANY), "addr is a u64"),
    ],
    read_only: "bpf_perf_event_data is read-only",
};

/// raw_tp programs (`bpf_tracing_ctx_access`): `u64 args[12]`, any aligned load.
pub static RAW_TP: CtxLayout = CtxLayout {
    name: "args",
    size: ARGS_SIZE,
    past_end: "past args[11]",
    fields: &[ro("args", 0, ARGS_SIZE, Rule::anywhere(ANY), "past args[11]")],
    read_only: "the argument array is read-only",
};

/// raw_tp.w programs: `args[0]` is the writable tracepoint buffer, loaded as u64.
pub static RAW_TP_WRITABLE: CtxLayout = CtxLayout {
    name: "args",
    size: ARGS_SIZE,
    past_end: "past args[11]",
    fields: &[
        // Only a load at offset 0 yields the buffer (as u64); the rest of args[0] reads as
        // with raw_tp programs.
        ptr("args[0]", 0, 1, Rule::at_start(U64), Yields::TpBuffer),
        ro("args[0] bytes 1..7", 1, 7, Rule::anywhere(ANY), "past args[0]"),
        ro("args[1..]", 8, ARGS_SIZE - 8, Rule::anywhere(ANY), "past args[11]"),
    ],
    read_only: "the argument array is read-only",
};

const fn arg(name: &'static str, n: u32) -> CtxField {
    field(
        name,
        n * 8,
        8,
        Some(Rule::at_start(ANY)),
        None,
        Yields::TracedArg,
        "arguments are read at multiples of 8 (pointers as u64)",
    )
}

/// fentry/fexit/fmod_ret/tp_btf (`BPF_PROG_TYPE_TRACING`) and lsm programs
/// (`btf_ctx_access`): one u64 slot per argument, then the return value for fexit, fmod_ret
/// and lsm; which slots exist and what they hold the attach target's BTF says.
pub static TRACING: CtxLayout = CtxLayout {
    name: "args",
    size: ARGS_SIZE,
    past_end: "past args[11]",
    fields: &[
        arg("args[0]", 0),
        arg("args[1]", 1),
        arg("args[2]", 2),
        arg("args[3]", 3),
        arg("args[4]", 4),
        arg("args[5]", 5),
        arg("args[6]", 6),
        arg("args[7]", 7),
        arg("args[8]", 8),
        arg("args[9]", 9),
        arg("args[10]", 10),
        arg("args[11]", 11),
    ],
    read_only: "the argument array is read-only",
};

// ---------------------------------------------------------------------------------------------
// Others

/// `U16_MAX`: syscall programs may access their argument buffer below this offset.
pub const SYSCALL_CTX_MAX: u32 = u16::MAX as u32;

/// Syscall programs (`syscall_prog_is_valid_access`): the caller's argument buffer, any
/// aligned load or store starting below `U16_MAX` (the test run checks the buffer's length).
pub static SYSCALL: CtxLayout = CtxLayout {
    name: "syscall arguments",
    size: SYSCALL_CTX_MAX,
    past_end: "past U16_MAX",
    fields: &[field(
        "args",
        0,
        SYSCALL_CTX_MAX + 1,
        Some(Rule::anywhere(ANY)),
        Some(Rule::anywhere(ANY)),
        Yields::Scalar,
        "past the end of the argument buffer",
    )],
    read_only: "",
};

/// Netfilter programs (`struct bpf_nf_ctx`, `nf_is_valid_access`): two kernel pointers.
pub static NETFILTER: CtxLayout = CtxLayout {
    name: "bpf_nf_ctx",
    size: 16,
    past_end: "past the end of bpf_nf_ctx",
    fields: &[
        ptr("state", 0, 8, Rule::at_start(U64), Yields::BtfId("nf_hook_state")),
        ptr("skb", 8, 8, Rule::at_start(U64), Yields::BtfId("sk_buff")),
    ],
    read_only: "bpf_nf_ctx is read-only",
};

/// lirc_mode2 programs (`lirc_mode2_is_valid_access`): one u32 sample.
pub static LIRC_MODE2: CtxLayout = CtxLayout {
    name: "lirc sample",
    size: 4,
    past_end: "past the end of lirc sample",
    fields: &[ro("sample", 0, 4, Rule::at_start(U32), "the sample is read as u32")],
    read_only: "the lirc sample is read-only",
};

// ---------------------------------------------------------------------------------------------
// Kernel objects behind socket pointers (check_sock_access): not contexts, but decided the
// same way, and by the same fields.

/// A kernel object a program reads through a pointer the verifier types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Object {
    /// `PTR_TO_SOCKET`: `struct bpf_sock` (`bpf_sock_is_valid_access`).
    Sock,
    /// `PTR_TO_SOCK_COMMON`: `struct bpf_sock` without the full socket's `type`, `protocol`,
    /// `mark` and `priority` (`bpf_sock_common_is_valid_access`).
    SockCommon,
    /// `PTR_TO_TCP_SOCK`: `struct bpf_tcp_sock` (`bpf_tcp_sock_is_valid_access`).
    TcpSock,
    /// `PTR_TO_XDP_SOCK`: `struct bpf_xdp_sock` (`bpf_xdp_sock_is_valid_access`).
    XdpSock,
}

/// The layout of `object`: every field read-only (the verifier refuses stores through these
/// pointers: "R%d cannot write into sock"); a refused load is "R%d invalid sock access
/// off=%d size=%d" (with the pointer type's name).
pub fn object_layout(object: Object) -> &'static CtxLayout {
    match object {
        Object::Sock => &BPF_SOCK,
        Object::SockCommon => &SOCK_COMMON,
        Object::TcpSock => &TCP_SOCK,
        Object::XdpSock => &XDP_SOCK,
    }
}

const SOCK_U32: &str = "read as u32";

/// `struct bpf_sock` through `PTR_TO_SOCKET`.
pub static BPF_SOCK: CtxLayout = CtxLayout {
    name: "bpf_sock",
    size: 80,
    past_end: "past the end of bpf_sock",
    fields: &[
        ro("bound_dev_if", 0, 4, Rule::at_start(U32), SOCK_U32),
        ro("family", 4, 4, Rule::at_start(NARROW32), SOCK_NARROW_START),
        ro("type", 8, 4, Rule::at_start(NARROW32), SOCK_NARROW_START),
        ro("protocol", 12, 4, Rule::at_start(NARROW32), SOCK_NARROW_START),
        ro("mark", 16, 4, Rule::at_start(U32), SOCK_U32),
        ro("priority", 20, 4, Rule::at_start(U32), SOCK_U32),
        ro("src_ip4", 24, 4, Rule::anywhere(NARROW32), "read as u32 or narrower"),
        ro("src_ip6", 28, 16, Rule::anywhere(NARROW32), "read as u32 or narrower"),
        ro("src_port", 44, 4, Rule::at_start(NARROW32), SOCK_NARROW_START),
        ro("dst_port", 48, 2, Rule::anywhere(NARROW32), "dst_port is a __be16 (u32 loads allowed)"),
        ro("dst_ip4", 52, 4, Rule::anywhere(NARROW32), "read as u32 or narrower"),
        ro("dst_ip6", 56, 16, Rule::anywhere(NARROW32), "read as u32 or narrower"),
        ro("state", 72, 4, Rule::at_start(NARROW32), SOCK_NARROW_START),
        ro("rx_queue_mapping", 76, 4, Rule::at_start(NARROW32), SOCK_NARROW_START),
    ],
    read_only: "sockets are read-only",
};

/// `struct bpf_sock` through `PTR_TO_SOCK_COMMON`.
pub static SOCK_COMMON: CtxLayout = CtxLayout {
    name: "bpf_sock",
    size: 80,
    past_end: "past the end of bpf_sock",
    fields: &[
        ro("bound_dev_if", 0, 4, Rule::at_start(U32), SOCK_U32),
        ro("family", 4, 4, Rule::at_start(NARROW32), SOCK_NARROW_START),
        none("type..priority", 8, 16, "type, protocol, mark and priority need a full socket"),
        ro("src_ip4", 24, 4, Rule::anywhere(NARROW32), "read as u32 or narrower"),
        ro("src_ip6", 28, 16, Rule::anywhere(NARROW32), "read as u32 or narrower"),
        ro("src_port", 44, 4, Rule::at_start(NARROW32), SOCK_NARROW_START),
        ro("dst_port", 48, 2, Rule::anywhere(NARROW32), "dst_port is a __be16 (u32 loads allowed)"),
        ro("dst_ip4", 52, 4, Rule::anywhere(NARROW32), "read as u32 or narrower"),
        ro("dst_ip6", 56, 16, Rule::anywhere(NARROW32), "read as u32 or narrower"),
        ro("state", 72, 4, Rule::at_start(NARROW32), SOCK_NARROW_START),
        ro("rx_queue_mapping", 76, 4, Rule::at_start(NARROW32), SOCK_NARROW_START),
    ],
    read_only: "sockets are read-only",
};

/// `struct bpf_tcp_sock` through `PTR_TO_TCP_SOCK`: u32 counters, two u64 byte counts. (The
/// kernel's `is_valid_access` passes u32 loads of the counts' upper halves, offsets 84 and
/// 92, but then fails to rewrite them: "verifier bug: error during ctx access conversion".)
pub static TCP_SOCK: CtxLayout = CtxLayout {
    name: "bpf_tcp_sock",
    size: 112,
    past_end: "past the end of bpf_tcp_sock",
    fields: &[
        ro("snd_cwnd..sacked_out", 0, 80, Rule::anywhere(U32), SOCK_U32),
        ro("bytes_received", 80, 8, Rule::at_start(U64), "bytes_received is read as u64"),
        ro("bytes_acked", 88, 8, Rule::at_start(U64), "bytes_acked is read as u64"),
        ro("dsack_dups..icsk_retransmits", 96, 16, Rule::anywhere(U32), SOCK_U32),
    ],
    read_only: "sockets are read-only",
};

/// `struct bpf_xdp_sock` through `PTR_TO_XDP_SOCK`: one u32.
pub static XDP_SOCK: CtxLayout = CtxLayout {
    name: "bpf_xdp_sock",
    size: 4,
    past_end: "past the end of bpf_xdp_sock",
    fields: &[ro("queue_id", 0, 4, Rule::at_start(U32), SOCK_U32)],
    read_only: "sockets are read-only",
};

#[cfg(test)]
mod tests {
    use super::*;

    fn t(prog_type: ProgType, attach: Option<u32>) -> Target {
        Target { prog_type, attach }
    }

    fn ok(target: Target, off: i64, size: u32, kind: AccessKind) -> bool {
        check_access(target, off, size, kind).is_ok()
    }

    #[test]
    fn fields_are_sorted_disjoint_and_inside() {
        let objects = [Object::Sock, Object::SockCommon, Object::TcpSock, Object::XdpSock];
        let layouts = ProgType::ALL.iter().filter_map(|&p| Some((format!("{p:?}"), layout(p)?)));
        let objects = objects.iter().map(|&o| (format!("{o:?}"), object_layout(o)));
        for (p, l) in layouts.chain(objects) {
            let mut end = 0;
            for f in l.fields.iter().filter(|f| f.len > 0) {
                assert!(f.off >= end, "{p:?}: {} overlaps the field before", f.name);
                end = f.off + f.len;
                assert!(f.off < l.size, "{p:?}: {} starts past the end", f.name);
            }
        }
    }

    #[test]
    fn skb_rules_per_program_type() {
        let tc = t(ProgType::SchedCls, None);
        let sf = t(ProgType::SocketFilter, None);
        let cg = t(ProgType::CgroupSkb, None);
        use AccessKind::*;
        // Narrow loads anywhere in a u32 field; stores only as u32.
        assert!(ok(tc, 1, 1, Read) && ok(tc, 2, 2, Read) && ok(tc, 8, 4, Write));
        assert!(!ok(tc, 8, 2, Write) && !ok(tc, 8, 8, Read) && !ok(tc, 1, 2, Read));
        // cb[] is plain memory but ends at 68.
        assert!(ok(sf, 56, 8, Write) && !ok(sf, 64, 8, Read));
        let e = check_access(tc, 64, 8, Read).expect_err("past cb");
        assert_eq!((e.why, e.reason), (Why::Size, "past the end of cb[]"));
        assert_eq!(e.to_string(), "invalid bpf_context access off=64 size=8");
        // Packet pointers: u32 loads, never sign-extended, typed.
        assert_eq!(check_access(tc, 76, 4, Read).map(|f| f.yields), Ok(Yields::Packet));
        assert_eq!(check_access(tc, 140, 4, Read).map(|f| f.yields), Ok(Yields::PacketMeta));
        assert_eq!(check_access(tc, 76, 4, ReadSx).map_err(|e| e.why), Err(Why::SignExtend));
        assert_eq!(check_access(sf, 76, 4, Read).map_err(|e| e.why), Err(Why::Unavailable));
        assert_eq!(check_access(cg, 140, 4, Read).map_err(|e| e.why), Err(Why::Unavailable));
        // cgroup_skb: packet pointers and tstamp stores need CAP_BPF.
        assert!(check_access_as(cg, false, 76, 4, Read).is_err());
        assert!(check_access_as(cg, true, 80, 4, Read).is_ok());
        assert!(check_access_as(cg, false, 152, 8, Write).is_err());
        assert!(check_access_as(cg, false, 152, 8, Read).is_ok());
        // sk: a u64 load of a sock_common-or-null pointer.
        assert_eq!(check_access(sf, 168, 8, Read).map(|f| f.yields), Ok(Yields::SockCommonOrNull));
        assert_eq!(check_access(tc, 168, 8, Write).map_err(|e| e.why), Err(Why::ReadOnly));
        // tstamp_type is tc's only; the padding after it is nobody's.
        assert!(ok(tc, 180, 1, Read) && !ok(cg, 180, 1, Read) && !ok(tc, 180, 1, Write));
        assert_eq!(check_access(tc, 181, 1, Read).map_err(|e| e.why), Err(Why::Padding));
        assert_eq!(check_access(tc, 192, 1, Read).map_err(|e| e.why), Err(Why::OutOfRange));
        assert_eq!(check_access(tc, -4, 4, Read).map_err(|e| e.why), Err(Why::OutOfRange));
        assert_eq!(check_access(tc, 2, 4, Read).map_err(|e| e.why), Err(Why::Misaligned));
    }

    #[test]
    fn attach_types_decide_fields() {
        use AccessKind::*;
        let xdp = t(ProgType::Xdp, None);
        let devmap = t(ProgType::Xdp, Some(attach::XDP_DEVMAP));
        assert!(!ok(xdp, 20, 4, Read) && ok(devmap, 20, 4, Read));
        let bind4 = t(ProgType::CgroupSockAddr, Some(attach::CGROUP_INET4_BIND));
        let bind6 = t(ProgType::CgroupSockAddr, Some(attach::CGROUP_INET6_BIND));
        assert!(ok(bind4, 4, 4, Write) && !ok(bind6, 4, 4, Read));
        assert!(ok(bind6, 16, 8, Read) && ok(bind6, 8, 8, Write) && !ok(bind6, 12, 8, Read));
        assert!(!ok(bind6, 44, 4, Read));
        // cgroup_sock without an attach type is sock_create: bound_dev_if writable.
        let create = t(ProgType::CgroupSock, None);
        let post4 = t(ProgType::CgroupSock, Some(attach::CGROUP_INET4_POST_BIND));
        assert!(ok(create, 0, 4, Write) && !ok(post4, 0, 4, Read));
        assert!(ok(post4, 25, 1, Read) && !ok(create, 24, 4, Read));
        assert!(ok(create, 4, 1, Read) && !ok(create, 5, 1, Read));
        assert!(ok(create, 48, 4, Read) && ok(create, 49, 1, Read) && !ok(create, 50, 2, Read));
        let get = t(ProgType::CgroupSockopt, Some(attach::CGROUP_GETSOCKOPT));
        let set = t(ProgType::CgroupSockopt, Some(attach::CGROUP_SETSOCKOPT));
        assert!(ok(get, 36, 4, Write) && !ok(set, 36, 4, Read));
        assert!(ok(set, 24, 4, Write) && !ok(get, 24, 4, Write) && ok(get, 24, 4, Read));
    }

    #[test]
    fn socket_objects() {
        use AccessKind::*;
        let sock = object_layout(Object::Sock);
        let common = object_layout(Object::SockCommon);
        assert!(sock.check(0, true, 16, 4, Read).is_ok());
        assert_eq!(common.check(0, true, 16, 4, Read).map_err(|e| e.why), Err(Why::Unavailable));
        assert!(
            common.check(0, true, 49, 1, Read).is_ok() && sock.check(0, true, 5, 1, Read).is_err()
        );
        assert_eq!(sock.check(0, true, 0, 4, Write).map_err(|e| e.why), Err(Why::ReadOnly));
        let tcp = object_layout(Object::TcpSock);
        assert!(
            tcp.check(0, true, 80, 8, Read).is_ok() && tcp.check(0, true, 84, 4, Read).is_err()
        );
        assert!(
            tcp.check(0, true, 108, 4, Read).is_ok() && tcp.check(0, true, 112, 4, Read).is_err()
        );
    }

    #[test]
    fn other_structures() {
        use AccessKind::*;
        let lookup = t(ProgType::SkLookup, Some(attach::SK_LOOKUP));
        assert_eq!(check_access(lookup, 0, 8, Read).map(|f| f.yields), Ok(Yields::SocketOrNull));
        assert!(ok(lookup, 36, 4, Read) && ok(lookup, 37, 1, Read) && ok(lookup, 38, 2, Read));
        assert!(!ok(lookup, 68, 4, Read) && !ok(lookup, 8, 4, Write));
        let ops = t(ProgType::SockOps, None);
        assert!(ok(ops, 4, 4, Write) && !ok(ops, 8, 4, Write) && !ok(ops, 213, 1, Read));
        assert!(ok(ops, 212, 1, Read) && ok(ops, 168, 8, Read) && !ok(ops, 172, 4, Read));
        let fentry = t(ProgType::Tracing, Some(attach::TRACE_FENTRY));
        assert_eq!(check_access(fentry, 8, 4, Read).map(|f| f.yields), Ok(Yields::TracedArg));
        assert!(!ok(fentry, 4, 4, Read) && !ok(fentry, 96, 8, Read) && !ok(fentry, 0, 8, Write));
        let tp = t(ProgType::Tracepoint, None);
        assert!(!ok(tp, 0, 8, Read) && ok(tp, 8184, 8, Read) && !ok(tp, 8192, 1, Read));
        let sys = t(ProgType::Syscall, None);
        assert!(ok(sys, 65528, 8, Write) && !ok(sys, 65535, 1, Read));
        let pe = t(ProgType::PerfEvent, None);
        assert!(ok(pe, 8, 8, Read) && !ok(pe, 8, 4, Read) && ok(pe, 172, 4, Read));
        assert!(check_access(t(ProgType::StructOps, None), 0, 8, Read).is_err());
    }
}
