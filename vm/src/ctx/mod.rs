//! Program contexts: what r1 points to for each program type, with the kernel's rules for
//! which fields a program may read or write, and how packet pointers are presented.

use crate::engine::{ProgType, Program, RunInput};
use crate::memory::{Access, MemError, Memory, RegionId};

pub mod layout;
pub mod sk_lookup;
pub mod sk_msg;
pub mod skb;
pub mod sock_ops;
pub mod syscall;
pub mod tracing;
pub mod xdp;

pub use xdp::XdpCtx;

/// Why a context could not be built from a run's input.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CtxError {
    /// The program type has no simulated context yet.
    #[error("no simulated context for {0:?} programs")]
    Unsupported(ProgType),
    /// The packet is shorter than the program type requires.
    #[error("packet of {len} bytes is shorter than the minimum of {min}")]
    PacketTooShort {
        /// The packet length.
        len: usize,
        /// The minimum.
        min: usize,
    },
    /// The packet is longer than the simulated buffer can hold.
    #[error("packet of {len} bytes exceeds the maximum of {max}")]
    PacketTooLong {
        /// The packet length.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// The program's section is one libbpf does not know and no type was set for it.
    #[error(
        "program {program:?} in section {section:?} has no program type libbpf knows; set one \
         (--prog-type TYPE, LoadOptions::prog_types, Object::set_prog_type)"
    )]
    Untyped {
        /// The program.
        program: String,
        /// Its section.
        section: String,
    },
    /// The `ctx` bytes given for the run are malformed.
    #[error("context input: {0}")]
    BadCtx(String),
    /// A region could not be mapped.
    #[error(transparent)]
    Memory(#[from] MemError),
}

/// A context installed for one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Installed {
    /// The value of r1 at entry.
    pub r1: u64,
    /// The region LD_ABS/LD_IND read (socket filters and other skb programs).
    pub ld_abs: Option<RegionId>,
    /// Regions made for this run (packet buffers, simulated objects), freed afterwards.
    pub owned: Vec<RegionId>,
}

/// Which program is being given a context: its type and expected attach type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    /// The program type.
    pub prog_type: ProgType,
    /// The kernel's expected attach type, if the program has one.
    pub attach: Option<u32>,
}

impl Target {
    /// The target of `program`.
    pub fn of(program: &Program) -> Target {
        Target { prog_type: program.prog_type, attach: program.expected_attach_type }
    }
}

/// Builds the context the program expects from `input` and installs it in `mem`.
pub fn install(target: Target, input: &RunInput, mem: &mut Memory) -> Result<Installed, CtxError> {
    match target.prog_type {
        ProgType::Xdp => xdp::install(target.attach, input, mem),
        ProgType::Kprobe => tracing::install(target, input, mem),
        ProgType::Tracepoint => tracing::install(target, input, mem),
        ProgType::RawTracepoint => tracing::install(target, input, mem),
        ProgType::RawTracepointWritable => tracing::install(target, input, mem),
        ProgType::Tracing => tracing::install(target, input, mem),
        ProgType::Lsm => tracing::install(target, input, mem),
        ProgType::Syscall => syscall::install(input, mem),
        ProgType::SkLookup => sk_lookup::install(input, mem),
        ProgType::SocketFilter => skb::install(target.prog_type, input, mem),
        ProgType::SchedCls => skb::install(target.prog_type, input, mem),
        ProgType::SchedAct => skb::install(target.prog_type, input, mem),
        ProgType::CgroupSkb => skb::install(target.prog_type, input, mem),
        ProgType::LwtIn => skb::install(target.prog_type, input, mem),
        ProgType::LwtOut => skb::install(target.prog_type, input, mem),
        ProgType::LwtXmit => skb::install(target.prog_type, input, mem),
        ProgType::LwtSeg6local => skb::install(target.prog_type, input, mem),
        ProgType::SkSkb => skb::install(target.prog_type, input, mem),
        ProgType::SockOps => sock_ops::install(input, mem),
        ProgType::SkMsg => sk_msg::install(input, mem),
        ProgType::FlowDissector => skb::install_flow_dissector(input, mem),
        other => Err(CtxError::Unsupported(other)),
    }
}

/// Removes the context installed by [`install`]; returns the output packet and context bytes.
pub fn uninstall(mem: &mut Memory, installed: &Installed) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    let out = mem.context().map(|c| (c.packet_out(mem), c.ctx_out(mem))).unwrap_or((None, None));
    mem.clear_context();
    for &r in &installed.owned {
        mem.free(r);
    }
    out
}

/// LD_ABS/LD_IND: `len` bytes in network byte order at `off` of the packet, as the kernel's
/// `bpf_skb_load_helper` reads them (negative `SKF_NET_OFF`/`SKF_LL_OFF` offsets relative to
/// the network and MAC headers of an skb); `None` when out of bounds.
pub fn load_abs(mem: &Memory, packet: RegionId, off: i32, len: usize) -> Option<u64> {
    let be = |b: &[u8]| b.iter().fold(0u64, |acc, &x| acc << 8 | u64::from(x));
    if let Some(skb) = mem.context().and_then(|c| c.as_any().downcast_ref::<skb::SkbCtx>()) {
        return skb::load_abs(skb, mem, off, len).map(|b| be(&b));
    }
    let off = usize::try_from(off).ok()?;
    mem.bytes(packet).get(off..off.checked_add(len)?).map(be)
}

/// Decides a context access by the program type's [`layout`] (as a program loaded with
/// `CAP_BPF`): the field reached, or the refusal.
pub(crate) fn allowed(
    target: Target,
    access: Access,
    off: usize,
    len: usize,
) -> Result<&'static layout::CtxField, MemError> {
    let kind = match access {
        Access::Read => layout::AccessKind::Read,
        Access::Write | Access::Atomic => layout::AccessKind::Write,
    };
    let (o, l) = (i64::try_from(off).unwrap_or(i64::MAX), u32::try_from(len).unwrap_or(u32::MAX));
    layout::check_access(target, o, l, kind).map_err(|d| denied(access, off, len, d.reason))
}

/// The refusal of a context access, in the kernel's words.
pub(crate) fn denied(access: Access, off: usize, len: usize, reason: &'static str) -> MemError {
    MemError::Context { access, off, len, reason }
}

/// Reads a little-endian field of `len` bytes at `off` from `bytes`.
pub(crate) fn read_field(bytes: &[u8], off: usize, len: usize) -> u64 {
    let mut b = [0u8; 8];
    b[..len].copy_from_slice(&bytes[off..off + len]);
    u64::from_le_bytes(b)
}

/// Writes the low `len` bytes of `value` at `off` into `bytes`.
pub(crate) fn write_field(bytes: &mut [u8], off: usize, len: usize, value: u64) {
    bytes[off..off + len].copy_from_slice(&value.to_le_bytes()[..len]);
}

/// The name of a program's return code, as the kernel's headers spell it (`XDP_PASS`,
/// `TC_ACT_SHOT`, `SK_PASS`, ...), when the program type gives return codes names.
pub fn verdict_name(prog_type: ProgType, r0: u64) -> Option<&'static str> {
    let v = r0 as u32 as i32;
    match prog_type {
        ProgType::Xdp => ["XDP_ABORTED", "XDP_DROP", "XDP_PASS", "XDP_TX", "XDP_REDIRECT"]
            .get(usize::try_from(v).ok()?)
            .copied(),
        ProgType::SchedCls | ProgType::SchedAct => match v {
            -1 => Some("TC_ACT_UNSPEC"),
            0 => Some("TC_ACT_OK"),
            1 => Some("TC_ACT_RECLASSIFY"),
            2 => Some("TC_ACT_SHOT"),
            3 => Some("TC_ACT_PIPE"),
            4 => Some("TC_ACT_STOLEN"),
            5 => Some("TC_ACT_QUEUED"),
            6 => Some("TC_ACT_REPEAT"),
            7 => Some("TC_ACT_REDIRECT"),
            8 => Some("TC_ACT_TRAP"),
            _ => None,
        },
        ProgType::SkSkb | ProgType::SkMsg | ProgType::SkLookup | ProgType::SkReuseport => match v {
            0 => Some("SK_DROP"),
            1 => Some("SK_PASS"),
            _ => None,
        },
        ProgType::CgroupSkb
        | ProgType::CgroupSock
        | ProgType::CgroupSockAddr
        | ProgType::CgroupDevice
        | ProgType::CgroupSysctl
        | ProgType::CgroupSockopt => match v {
            0 => Some("deny"),
            1 => Some("allow"),
            _ => None,
        },
        _ => None,
    }
}
