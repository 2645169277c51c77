//! Calls: helpers (against their prototypes), kfuncs, bpf-to-bpf calls and callbacks, and
//! program exit (return value, references, locks).
//!
//! Helper prototypes come from [`bpflab_vm::helpers`] (the registry the engines use); what the
//! kernel knows about helpers beyond a prototype (which acquire or release references, which
//! invalidate packet pointers, which map types go with which helper, which arguments the
//! prototypes write loosely) is in the tables of this file, each fact once.

use bpflab_vm::ctx::layout::attach;
use bpflab_vm::helper_names::KERNEL_HELPER_NAMES;
use bpflab_vm::helpers::{
    ArgType, HelperProto, RetType, attach_type_allows, license_is_gpl_compatible,
};
use bpflab_vm::isa::{CallKind, Insn, PseudoSrc};
use bpflab_vm::{MapType, ProgType};

use crate::bounds::Scalar;
use crate::check::Verifier;
use crate::error::{ErrorKind, Stop};
use crate::state::{Frame, Lock, PtrKind, RefKind, RefState, Reg, RegType, State};

/// Helper ids (`enum bpf_func_id`) the checks below name.
mod id {
    pub(super) const MAP_LOOKUP_ELEM: i32 = 1;
    pub(super) const MAP_UPDATE_ELEM: i32 = 2;
    pub(super) const MAP_DELETE_ELEM: i32 = 3;
    pub(super) const SKB_STORE_BYTES: i32 = 9;
    pub(super) const L3_CSUM_REPLACE: i32 = 10;
    pub(super) const L4_CSUM_REPLACE: i32 = 11;
    pub(super) const TAIL_CALL: i32 = 12;
    pub(super) const CLONE_REDIRECT: i32 = 13;
    pub(super) const SKB_VLAN_PUSH: i32 = 18;
    pub(super) const SKB_VLAN_POP: i32 = 19;
    pub(super) const PERF_EVENT_READ: i32 = 22;
    pub(super) const PERF_EVENT_OUTPUT: i32 = 25;
    pub(super) const GET_STACKID: i32 = 27;
    pub(super) const CSUM_DIFF: i32 = 28;
    pub(super) const SKB_CHANGE_PROTO: i32 = 31;
    pub(super) const SKB_UNDER_CGROUP: i32 = 33;
    pub(super) const CURRENT_TASK_UNDER_CGROUP: i32 = 37;
    pub(super) const SKB_CHANGE_TAIL: i32 = 38;
    pub(super) const SKB_PULL_DATA: i32 = 39;
    pub(super) const SKB_CHANGE_HEAD: i32 = 43;
    pub(super) const XDP_ADJUST_HEAD: i32 = 44;
    pub(super) const SKB_ADJUST_ROOM: i32 = 50;
    pub(super) const REDIRECT_MAP: i32 = 51;
    pub(super) const SK_REDIRECT_MAP: i32 = 52;
    pub(super) const SOCK_MAP_UPDATE: i32 = 53;
    pub(super) const XDP_ADJUST_META: i32 = 54;
    pub(super) const PERF_EVENT_READ_VALUE: i32 = 55;
    pub(super) const MSG_REDIRECT_MAP: i32 = 60;
    pub(super) const MSG_PULL_DATA: i32 = 63;
    pub(super) const XDP_ADJUST_TAIL: i32 = 65;
    pub(super) const SOCK_HASH_UPDATE: i32 = 70;
    pub(super) const MSG_REDIRECT_HASH: i32 = 71;
    pub(super) const SK_REDIRECT_HASH: i32 = 72;
    pub(super) const LWT_PUSH_ENCAP: i32 = 73;
    pub(super) const LWT_SEG6_STORE_BYTES: i32 = 74;
    pub(super) const LWT_SEG6_ADJUST_SRH: i32 = 75;
    pub(super) const LWT_SEG6_ACTION: i32 = 76;
    pub(super) const GET_LOCAL_STORAGE: i32 = 81;
    pub(super) const SK_SELECT_REUSEPORT: i32 = 82;
    pub(super) const SK_LOOKUP_TCP: i32 = 84;
    pub(super) const SK_LOOKUP_UDP: i32 = 85;
    pub(super) const SK_RELEASE: i32 = 86;
    pub(super) const MAP_PUSH_ELEM: i32 = 87;
    pub(super) const MAP_POP_ELEM: i32 = 88;
    pub(super) const MAP_PEEK_ELEM: i32 = 89;
    pub(super) const MSG_PUSH_DATA: i32 = 90;
    pub(super) const MSG_POP_DATA: i32 = 91;
    pub(super) const SPIN_LOCK: i32 = 93;
    pub(super) const SPIN_UNLOCK: i32 = 94;
    pub(super) const SK_FULLSOCK: i32 = 95;
    pub(super) const TCP_SOCK: i32 = 96;
    pub(super) const GET_LISTENER_SOCK: i32 = 98;
    pub(super) const SKC_LOOKUP_TCP: i32 = 99;
    pub(super) const TCP_CHECK_SYNCOOKIE: i32 = 100;
    pub(super) const SK_STORAGE_GET: i32 = 107;
    pub(super) const SK_STORAGE_DELETE: i32 = 108;
    pub(super) const TCP_GEN_SYNCOOKIE: i32 = 110;
    pub(super) const SKB_OUTPUT: i32 = 111;
    pub(super) const XDP_OUTPUT: i32 = 121;
    pub(super) const SK_ASSIGN: i32 = 124;
    pub(super) const RINGBUF_OUTPUT: i32 = 130;
    pub(super) const RINGBUF_RESERVE: i32 = 131;
    pub(super) const RINGBUF_SUBMIT: i32 = 132;
    pub(super) const RINGBUF_DISCARD: i32 = 133;
    pub(super) const RINGBUF_QUERY: i32 = 134;
    pub(super) const STORE_HDR_OPT: i32 = 143;
    pub(super) const INODE_STORAGE_GET: i32 = 145;
    pub(super) const INODE_STORAGE_DELETE: i32 = 146;
    pub(super) const TASK_STORAGE_GET: i32 = 156;
    pub(super) const TASK_STORAGE_DELETE: i32 = 157;
    pub(super) const GET_CURRENT_TASK_BTF: i32 = 158;
    pub(super) const SKC_TO_MPTCP_SOCK: i32 = 196;
    pub(super) const GET_SMP_PROCESSOR_ID: i32 = 8;
    pub(super) const PROBE_READ_STR: i32 = 45;
    pub(super) const GET_STACK: i32 = 67;
    pub(super) const PROBE_READ_USER_STR: i32 = 114;
    pub(super) const PROBE_READ_KERNEL_STR: i32 = 115;
    pub(super) const GET_TASK_STACK: i32 = 141;
    pub(super) const FOR_EACH_MAP_ELEM: i32 = 164;
    pub(super) const SNPRINTF: i32 = 165;
    pub(super) const TIMER_SET_CALLBACK: i32 = 170;
    pub(super) const FIND_VMA: i32 = 180;
    pub(super) const LOOP: i32 = 181;
    pub(super) const KPTR_XCHG: i32 = 194;
    pub(super) const MAP_LOOKUP_PERCPU_ELEM: i32 = 195;
    pub(super) const RINGBUF_RESERVE_DYNPTR: i32 = 198;
    pub(super) const RINGBUF_SUBMIT_DYNPTR: i32 = 199;
    pub(super) const RINGBUF_DISCARD_DYNPTR: i32 = 200;
    pub(super) const GET_NETNS_COOKIE: i32 = 122;
    pub(super) const CHECK_MTU: i32 = 163;
    pub(super) const TCP_RAW_GEN_SYNCOOKIE_IPV4: i32 = 204;
    pub(super) const TCP_RAW_GEN_SYNCOOKIE_IPV6: i32 = 205;
    pub(super) const TCP_RAW_CHECK_SYNCOOKIE_IPV4: i32 = 206;
    pub(super) const TCP_RAW_CHECK_SYNCOOKIE_IPV6: i32 = 207;
    pub(super) const USER_RINGBUF_DRAIN: i32 = 209;
    pub(super) const CGRP_STORAGE_GET: i32 = 210;
    pub(super) const CGRP_STORAGE_DELETE: i32 = 211;
}

/// Largest stack of one program (`MAX_BPF_STACK`).
const MAX_BPF_STACK: u32 = 512;
/// Subprogram stacks at least this large get a private stack where the kernel gives one
/// (`BPF_PRIV_STACK_MIN_SIZE`).
const PRIV_STACK_MIN_SIZE: u32 = 64;
/// `BPF_F_INNER_MAP`: inner maps of any max_entries fit the template.
const BPF_F_INNER_MAP: u32 = 1 << 12;
/// `BPF_F_RDONLY_PROG`: the program may only read the map.
const BPF_F_RDONLY_PROG: u32 = 1 << 7;

/// What the call checks learn about subprograms while walking (the kernel's `is_cb` and
/// `is_async_cb` subprogram flags), used by the stack-depth check after the walk.
#[derive(Clone, Debug, Default)]
pub(crate) struct CallFacts {
    /// Subprogram start slots used as callbacks.
    pub cb: Vec<usize>,
    /// Subprogram start slots used as asynchronous callbacks (timers).
    pub async_cb: Vec<usize>,
    /// Global functions called (subprogram indices), verified on their own after the walk.
    pub globals_called: Vec<usize>,
    /// The collection's BTF, parsed once.
    btf: Option<bpflab_btf::Btf>,
}

/// A global function's argument as its BTF prototype types it (`btf_prepare_func_args`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GlobalArg {
    /// An integer or enum (ARG_ANYTHING, a scalar).
    Scalar,
    /// A pointer to the program type's context struct (ARG_PTR_TO_CTX).
    Ctx,
    /// A pointer to `size` bytes of memory (ARG_PTR_TO_MEM), NULL unless tagged `arg:nonnull`
    /// (PTR_MAYBE_NULL).
    Mem { size: u32, nullable: bool },
    /// A `struct bpf_dynptr *` (ARG_PTR_TO_DYNPTR | MEM_RDONLY): an initialised dynptr of
    /// the caller; the callee sees a `dynptr_ptr`.
    Dynptr,
}

/// A global function's prototype.
#[derive(Clone, Debug)]
struct GlobalFn {
    name: String,
    args: Vec<GlobalArg>,
}

/// A helper argument as the kernel types it (`enum bpf_arg_type` with its flags), derived
/// from the registry's prototype and refined where the prototype is looser than the kernel's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Arg {
    /// ARG_ANYTHING: any initialised value (a pointer leaks unless privileged).
    Anything,
    /// ARG_SCALAR.
    Scalar,
    /// ARG_CONST_MAP_PTR.
    MapPtr,
    /// ARG_PTR_TO_MAP_KEY.
    MapKey,
    /// ARG_PTR_TO_MAP_VALUE (`null_ok`: _OR_NULL).
    MapValue { null_ok: bool },
    /// ARG_PTR_TO_MEM (`uninit`: MEM_UNINIT, the helper writes; `null_ok`: PTR_MAYBE_NULL).
    Mem { uninit: bool, null_ok: bool },
    /// ARG_PTR_TO_FIXED_SIZE_MEM of `size` bytes: `uninit` (MEM_UNINIT, the helper fills it),
    /// `write` (MEM_WRITE, the helper writes it), `aligned` (MEM_ALIGNED).
    FixedMem { size: u32, uninit: bool, write: bool, aligned: bool },
    /// ARG_CONST_SIZE / ARG_CONST_SIZE_OR_ZERO for the previous memory argument.
    Size { zero_ok: bool },
    /// ARG_CONST_ALLOC_SIZE_OR_ZERO.
    AllocSize,
    /// ARG_PTR_TO_CTX (`null_ok`: ARG_PTR_TO_CTX_OR_NULL).
    Ctx { null_ok: bool },
    /// ARG_PTR_TO_CONST_STR.
    ConstStr,
    /// ARG_PTR_TO_FUNC.
    Func,
    /// ARG_PTR_TO_STACK_OR_NULL.
    StackOrNull,
    /// ARG_PTR_TO_SOCK_COMMON.
    SockCommon,
    /// ARG_PTR_TO_BTF_ID_SOCK_COMMON (`null_ok`: PTR_MAYBE_NULL, `release`: OBJ_RELEASE).
    BtfSockCommon { null_ok: bool, release: bool },
    /// ARG_PTR_TO_SOCKET (`null_ok`: _OR_NULL).
    Socket { null_ok: bool },
    /// ARG_PTR_TO_BTF_ID(_OR_NULL): a trusted pointer to kernel `struct <name>`.
    BtfId { null_ok: bool, name: &'static str },
    /// ARG_PTR_TO_RINGBUF_MEM | OBJ_RELEASE.
    RingbufMem,
    /// ARG_PTR_TO_SPIN_LOCK.
    SpinLock,
    /// ARG_PTR_TO_TIMER.
    Timer,
    /// ARG_PTR_TO_DYNPTR.
    Dynptr,
    /// An argument kind bpflab does not model (unsupported when a call needs it).
    Unmodelled(&'static str),
}

impl Arg {
    /// The kernel's type from the registry's prototype argument `argno` (0-based) of helper
    /// `func`, for a program of `prog_type`: where the registry writes an argument more
    /// loosely than the kernel's `bpf_func_proto` (an ARG_SCALAR or a BTF pointer written
    /// `Anything`, the several socket argument types written `PtrToSocket`), the kernel's.
    fn of(func: i32, argno: usize, ty: ArgType, prog_type: ProgType) -> Arg {
        match (func, argno) {
            (id::LOOP, 0) => return Arg::Scalar,
            (id::SK_RELEASE, 0) => return Arg::BtfSockCommon { null_ok: false, release: true },
            (id::SK_FULLSOCK | id::TCP_SOCK | id::GET_LISTENER_SOCK | id::SKC_TO_MPTCP_SOCK, 0) => {
                return Arg::SockCommon;
            }
            (id::TCP_CHECK_SYNCOOKIE | id::TCP_GEN_SYNCOOKIE, 0) => {
                return Arg::BtfSockCommon { null_ok: false, release: false };
            }
            (id::SK_ASSIGN, 1) => {
                return if prog_type == ProgType::SkLookup {
                    Arg::Socket { null_ok: true }
                } else {
                    Arg::BtfSockCommon { null_ok: false, release: false }
                };
            }
            (id::SK_STORAGE_GET | id::SK_STORAGE_DELETE, 1) => {
                return match prog_type {
                    ProgType::CgroupSock if func == id::SK_STORAGE_GET => {
                        Arg::Ctx { null_ok: false }
                    }
                    ProgType::Tracing | ProgType::Lsm | ProgType::Syscall => {
                        Arg::BtfId { null_ok: true, name: "sock" }
                    }
                    _ => Arg::BtfSockCommon { null_ok: false, release: false },
                };
            }
            (
                id::INODE_STORAGE_GET
                | id::INODE_STORAGE_DELETE
                | id::TASK_STORAGE_GET
                | id::TASK_STORAGE_DELETE
                | id::CGRP_STORAGE_GET
                | id::CGRP_STORAGE_DELETE,
                1,
            ) => {
                let name = match func {
                    id::INODE_STORAGE_GET | id::INODE_STORAGE_DELETE => "inode",
                    id::TASK_STORAGE_GET | id::TASK_STORAGE_DELETE => "task_struct",
                    _ => "cgroup",
                };
                return Arg::BtfId { null_ok: true, name };
            }
            (id::RINGBUF_RESERVE, 1) => return Arg::AllocSize,
            (crate::dynptr::FUNC_DYNPTR_DATA, 2) => return Arg::AllocSize,
            (id::GET_NETNS_COOKIE, 0) => return Arg::Ctx { null_ok: true },
            // The MTU in and out: a u32 the helper reads and writes.
            (id::CHECK_MTU, 2) => {
                return Arg::FixedMem { size: 4, uninit: false, write: true, aligned: true };
            }
            // struct iphdr (20 bytes), struct ipv6hdr (40), struct tcphdr (20).
            (id::TCP_RAW_GEN_SYNCOOKIE_IPV4 | id::TCP_RAW_CHECK_SYNCOOKIE_IPV4, 0) => {
                return Arg::FixedMem { size: 20, uninit: false, write: false, aligned: false };
            }
            (id::TCP_RAW_GEN_SYNCOOKIE_IPV6 | id::TCP_RAW_CHECK_SYNCOOKIE_IPV6, 0) => {
                return Arg::FixedMem { size: 40, uninit: false, write: false, aligned: false };
            }
            (id::TCP_RAW_CHECK_SYNCOOKIE_IPV4 | id::TCP_RAW_CHECK_SYNCOOKIE_IPV6, 1) => {
                return Arg::FixedMem { size: 20, uninit: false, write: false, aligned: false };
            }
            (id::RINGBUF_SUBMIT | id::RINGBUF_DISCARD, 0) => return Arg::RingbufMem,
            _ => {}
        }
        match ty {
            ArgType::Anything => Arg::Anything,
            ArgType::ConstMapPtr => Arg::MapPtr,
            ArgType::PtrToMapKey => Arg::MapKey,
            ArgType::PtrToMapValue => Arg::MapValue { null_ok: false },
            ArgType::PtrToMem => Arg::Mem { uninit: false, null_ok: false },
            ArgType::PtrToMemOrNull => {
                if matches!(
                    func,
                    id::SK_STORAGE_GET
                        | id::INODE_STORAGE_GET
                        | id::TASK_STORAGE_GET
                        | id::CGRP_STORAGE_GET
                ) {
                    Arg::MapValue { null_ok: true }
                } else {
                    Arg::Mem { uninit: false, null_ok: true }
                }
            }
            ArgType::PtrToUninitMem => Arg::Mem { uninit: true, null_ok: false },
            ArgType::ConstSize => Arg::Size { zero_ok: false },
            ArgType::ConstSizeOrZero => Arg::Size { zero_ok: true },
            ArgType::PtrToCtx => Arg::Ctx { null_ok: false },
            ArgType::PtrToConstStr => Arg::ConstStr,
            ArgType::PtrToFunc => Arg::Func,
            ArgType::PtrToStackOrNull => Arg::StackOrNull,
            ArgType::PtrToSocket => Arg::Socket { null_ok: false },
            ArgType::PtrToSpinLock => Arg::SpinLock,
            ArgType::PtrToAllocMem => Arg::RingbufMem,
            ArgType::PtrToLong => {
                Arg::FixedMem { size: 8, uninit: true, write: true, aligned: true }
            }
            ArgType::PtrToTimer => Arg::Timer,
            ArgType::PtrToDynptr => Arg::Dynptr,
            ArgType::PtrToBtfId => Arg::BtfId { null_ok: false, name: "" },
            ArgType::PtrToBtfIdSockCommon => Arg::BtfSockCommon { null_ok: false, release: false },
            ArgType::PtrToBtfIdOrNull => Arg::Unmodelled("referenced kernel objects (kptrs)"),
            ArgType::PtrToPercpuBtfId => Arg::Unmodelled("per-CPU kernel variables"),
            ArgType::PtrToKptr => Arg::Unmodelled("kptr exchange"),
        }
    }

    /// Whether a NULL (a known zero scalar) passes without a type check (PTR_MAYBE_NULL).
    fn null_ok(self) -> bool {
        matches!(
            self,
            Arg::MapValue { null_ok: true }
                | Arg::Mem { null_ok: true, .. }
                | Arg::StackOrNull
                | Arg::Ctx { null_ok: true }
                | Arg::BtfSockCommon { null_ok: true, .. }
                | Arg::Socket { null_ok: true }
                | Arg::BtfId { null_ok: true, .. }
        )
    }

    /// Whether the argument releases the reference it is passed (OBJ_RELEASE).
    fn release(self) -> bool {
        matches!(self, Arg::RingbufMem | Arg::BtfSockCommon { release: true, .. })
    }
}

/// The register types an argument accepts (`compatible_reg_types`), as the kernel lists them
/// in "expected=" and as bpflab's registers are: `(kind, needs non-NULL)`.
fn compatible(arg: Arg) -> (&'static [PtrKind], &'static str) {
    use PtrKind as P;
    const MEM: &[PtrKind] = &[P::Stack, P::Packet, P::PacketMeta, P::MapKey, P::MapValue, P::Mem];
    const MEM_S: &str =
        "fp, pkt, pkt_meta, map_key, map_value, mem, ringbuf_mem, buf, trusted_ptr_";
    const SOCK: &[PtrKind] = &[P::SockCommon, P::Sock, P::TcpSock, P::XdpSock];
    match arg {
        Arg::MapKey | Arg::MapValue { .. } | Arg::Mem { .. } | Arg::FixedMem { .. } => (MEM, MEM_S),
        Arg::MapPtr => (&[P::MapPtr], "map_ptr"),
        Arg::Ctx { .. } => (&[P::Ctx], "ctx"),
        Arg::SockCommon => (SOCK, "sock_common, sock, tcp_sock, xdp_sock"),
        Arg::BtfSockCommon { .. } => {
            (SOCK, "sock_common, sock, tcp_sock, xdp_sock, ptr_, trusted_ptr_")
        }
        Arg::Socket { .. } => (&[P::Sock], "sock"),
        Arg::BtfId { .. } => (&[P::BtfId], "ptr_, trusted_ptr_, rcu_ptr_"),
        Arg::RingbufMem => (&[P::Mem], "ringbuf_mem"),
        Arg::SpinLock => (&[P::MapValue], "map_value, ptr_"),
        Arg::Timer | Arg::ConstStr => (&[P::MapValue], "map_value"),
        Arg::Func => (&[P::Func], "func"),
        Arg::StackOrNull => (&[P::Stack], "fp"),
        Arg::Dynptr => (&[P::Stack, P::ConstDynptr], "fp, dynptr_ptr"),
        Arg::Anything | Arg::Scalar | Arg::Size { .. } | Arg::AllocSize | Arg::Unmodelled(_) => {
            (&[], "scalar")
        }
    }
}

/// Whether helper `func` may read the packet through a pointer argument (`pkt_access`).
fn pkt_access(func: i32) -> bool {
    matches!(
        func,
        id::MAP_LOOKUP_ELEM
            | id::MAP_UPDATE_ELEM
            | id::MAP_DELETE_ELEM
            | id::MAP_PUSH_ELEM
            | id::MAP_LOOKUP_PERCPU_ELEM
            | id::CSUM_DIFF
            | id::SK_LOOKUP_TCP
            | id::SK_LOOKUP_UDP
            | id::SKC_LOOKUP_TCP
            | id::SOCK_MAP_UPDATE
            | id::SOCK_HASH_UPDATE
            | id::TCP_CHECK_SYNCOOKIE
            | id::TCP_GEN_SYNCOOKIE
            | id::TCP_RAW_GEN_SYNCOOKIE_IPV4
            | id::TCP_RAW_GEN_SYNCOOKIE_IPV6
            | id::TCP_RAW_CHECK_SYNCOOKIE_IPV4
            | id::TCP_RAW_CHECK_SYNCOOKIE_IPV6
    )
}

/// Whether helper `func` may move packet data, so that every packet pointer is invalid after
/// it (`bpf_helper_changes_pkt_data`).
fn changes_pkt_data(func: i32) -> bool {
    matches!(
        func,
        id::CLONE_REDIRECT
            | id::L3_CSUM_REPLACE
            | id::L4_CSUM_REPLACE
            | id::LWT_PUSH_ENCAP
            | id::LWT_SEG6_ACTION
            | id::LWT_SEG6_ADJUST_SRH
            | id::LWT_SEG6_STORE_BYTES
            | id::MSG_POP_DATA
            | id::MSG_PULL_DATA
            | id::MSG_PUSH_DATA
            | id::SKB_ADJUST_ROOM
            | id::SKB_CHANGE_HEAD
            | id::SKB_CHANGE_PROTO
            | id::SKB_CHANGE_TAIL
            | id::SKB_PULL_DATA
            | id::SKB_STORE_BYTES
            | id::SKB_VLAN_POP
            | id::SKB_VLAN_PUSH
            | id::STORE_HDR_OPT
            | id::XDP_ADJUST_HEAD
            | id::XDP_ADJUST_META
            | id::XDP_ADJUST_TAIL
            | id::TAIL_CALL
    )
}

/// Whether helper `func` acquires a reference returned in r0 (`is_acquire_function`).
fn is_acquire(func: i32) -> bool {
    matches!(func, id::SK_LOOKUP_TCP | id::SK_LOOKUP_UDP | id::SKC_LOOKUP_TCP | id::RINGBUF_RESERVE)
}

/// Whether r0 of helper `func` is its socket argument seen as another type, holding the same
/// reference (`is_ptr_cast_function`).
fn is_ptr_cast(func: i32) -> bool {
    matches!(func, id::SK_FULLSOCK | id::TCP_SOCK | id::SKC_TO_MPTCP_SOCK)
        || (136..=140).contains(&func)
}

/// The helpers that call a subprogram, with the range the callback must return
/// (`callback_ret_range`) and whether it runs later, asynchronously.
fn callback_of(func: i32) -> Option<((i64, i64), bool)> {
    match func {
        id::LOOP | id::FOR_EACH_MAP_ELEM | id::FIND_VMA | id::USER_RINGBUF_DRAIN => {
            Some(((0, 1), false))
        }
        id::TIMER_SET_CALLBACK => Some(((0, 0), true)),
        _ => None,
    }
}

/// The map types each helper takes and the helpers each map type goes with
/// (`check_map_func_compatibility`); `false` is "cannot pass map_type".
fn map_func_compatible(v: &Verifier<'_>, map: MapType, func: i32) -> bool {
    use MapType as M;
    let sockmap_update = || {
        if func != id::MAP_UPDATE_ELEM && func != id::MAP_DELETE_ELEM {
            return false;
        }
        match v.prog.prog_type {
            ProgType::Tracing => v.prog.expected_attach_type == Some(TRACE_ITER),
            ProgType::SockOps => func == id::MAP_DELETE_ELEM,
            ProgType::SocketFilter
            | ProgType::SchedCls
            | ProgType::SchedAct
            | ProgType::Xdp
            | ProgType::SkReuseport
            | ProgType::FlowDissector
            | ProgType::SkLookup => true,
            _ => false,
        }
    };
    let by_map = match map {
        M::ProgArray => func == id::TAIL_CALL,
        M::PerfEventArray => matches!(
            func,
            id::PERF_EVENT_READ
                | id::PERF_EVENT_OUTPUT
                | id::SKB_OUTPUT
                | id::PERF_EVENT_READ_VALUE
                | id::XDP_OUTPUT
        ),
        M::Ringbuf => matches!(
            func,
            id::RINGBUF_OUTPUT
                | id::RINGBUF_RESERVE
                | id::RINGBUF_QUERY
                | id::RINGBUF_RESERVE_DYNPTR
                | id::RINGBUF_SUBMIT_DYNPTR
                | id::RINGBUF_DISCARD_DYNPTR
        ),
        M::UserRingbuf => func == id::USER_RINGBUF_DRAIN,
        M::StackTrace => func == id::GET_STACKID,
        M::CgroupArray => matches!(func, id::SKB_UNDER_CGROUP | id::CURRENT_TASK_UNDER_CGROUP),
        M::CgroupStorage | M::PercpuCgroupStorage => func == id::GET_LOCAL_STORAGE,
        M::Devmap | M::DevmapHash | M::Xskmap => {
            matches!(func, id::REDIRECT_MAP | id::MAP_LOOKUP_ELEM)
        }
        M::Cpumap => func == id::REDIRECT_MAP,
        M::ArrayOfMaps | M::HashOfMaps => func == id::MAP_LOOKUP_ELEM,
        M::Sockmap => {
            matches!(
                func,
                id::SK_REDIRECT_MAP
                    | id::SOCK_MAP_UPDATE
                    | id::MSG_REDIRECT_MAP
                    | id::SK_SELECT_REUSEPORT
                    | id::MAP_LOOKUP_ELEM
            ) || sockmap_update()
        }
        M::Sockhash => {
            matches!(
                func,
                id::SK_REDIRECT_HASH
                    | id::SOCK_HASH_UPDATE
                    | id::MSG_REDIRECT_HASH
                    | id::SK_SELECT_REUSEPORT
                    | id::MAP_LOOKUP_ELEM
            ) || sockmap_update()
        }
        M::ReuseportSockarray => func == id::SK_SELECT_REUSEPORT,
        M::Queue | M::Stack => {
            matches!(func, id::MAP_PEEK_ELEM | id::MAP_POP_ELEM | id::MAP_PUSH_ELEM)
        }
        M::SkStorage => matches!(func, id::SK_STORAGE_GET | id::SK_STORAGE_DELETE | id::KPTR_XCHG),
        M::InodeStorage => {
            matches!(func, id::INODE_STORAGE_GET | id::INODE_STORAGE_DELETE | id::KPTR_XCHG)
        }
        M::TaskStorage => {
            matches!(func, id::TASK_STORAGE_GET | id::TASK_STORAGE_DELETE | id::KPTR_XCHG)
        }
        M::CgrpStorage => {
            matches!(func, id::CGRP_STORAGE_GET | id::CGRP_STORAGE_DELETE | id::KPTR_XCHG)
        }
        M::BloomFilter => matches!(func, id::MAP_PEEK_ELEM | id::MAP_PUSH_ELEM),
        _ => true,
    };
    if !by_map {
        return false;
    }
    match func {
        id::TAIL_CALL => map == M::ProgArray,
        id::PERF_EVENT_READ
        | id::PERF_EVENT_OUTPUT
        | id::PERF_EVENT_READ_VALUE
        | id::SKB_OUTPUT
        | id::XDP_OUTPUT => map == M::PerfEventArray,
        id::RINGBUF_OUTPUT
        | id::RINGBUF_RESERVE
        | id::RINGBUF_QUERY
        | id::RINGBUF_RESERVE_DYNPTR
        | id::RINGBUF_SUBMIT_DYNPTR
        | id::RINGBUF_DISCARD_DYNPTR => map == M::Ringbuf,
        id::USER_RINGBUF_DRAIN => map == M::UserRingbuf,
        id::GET_STACKID => map == M::StackTrace,
        id::CURRENT_TASK_UNDER_CGROUP | id::SKB_UNDER_CGROUP => map == M::CgroupArray,
        id::REDIRECT_MAP => matches!(map, M::Devmap | M::DevmapHash | M::Cpumap | M::Xskmap),
        id::SK_REDIRECT_MAP | id::MSG_REDIRECT_MAP | id::SOCK_MAP_UPDATE => map == M::Sockmap,
        id::SK_REDIRECT_HASH | id::MSG_REDIRECT_HASH | id::SOCK_HASH_UPDATE => map == M::Sockhash,
        id::GET_LOCAL_STORAGE => matches!(map, M::CgroupStorage | M::PercpuCgroupStorage),
        id::SK_SELECT_REUSEPORT => {
            matches!(map, M::ReuseportSockarray | M::Sockmap | M::Sockhash)
        }
        id::MAP_POP_ELEM => matches!(map, M::Queue | M::Stack),
        id::MAP_PEEK_ELEM | id::MAP_PUSH_ELEM => {
            matches!(map, M::Queue | M::Stack | M::BloomFilter)
        }
        id::MAP_LOOKUP_PERCPU_ELEM => {
            matches!(map, M::PercpuArray | M::PercpuHash | M::LruPercpuHash)
        }
        id::SK_STORAGE_GET | id::SK_STORAGE_DELETE => map == M::SkStorage,
        id::INODE_STORAGE_GET | id::INODE_STORAGE_DELETE => map == M::InodeStorage,
        id::TASK_STORAGE_GET | id::TASK_STORAGE_DELETE => map == M::TaskStorage,
        id::CGRP_STORAGE_GET | id::CGRP_STORAGE_DELETE => map == M::CgrpStorage,
        _ => true,
    }
}

/// `BPF_TRACE_ITER`.
const TRACE_ITER: u32 = 28;
/// `BPF_LSM_CGROUP`.
const LSM_CGROUP: u32 = 43;
/// `BPF_TRACE_KPROBE_SESSION`.
const TRACE_KPROBE_SESSION: u32 = 56;

/// What the main program's exit must return, by program type and attach type
/// (`check_return_code`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RetRule {
    /// Any value.
    Any,
    /// A scalar within `[min, max]`.
    Range(i64, i64),
    /// bpflab cannot tell (the attach target's prototype decides).
    Unknown(&'static str),
}

/// The return rule of a program (`check_return_code`'s table).
/// Whether the main program's return value is checked against a range (so its exact value
/// matters and r0 is precise at the main program's exits).
pub(crate) fn return_value_checked(prog_type: ProgType, attach_type: Option<u32>) -> bool {
    !matches!(return_rule(prog_type, attach_type), RetRule::Any)
}

fn return_rule(prog_type: ProgType, attach_type: Option<u32>) -> RetRule {
    use attach as a;
    let at = attach_type.unwrap_or(0);
    match prog_type {
        ProgType::CgroupSockAddr => match at {
            a::CGROUP_UDP4_RECVMSG
            | a::CGROUP_UDP6_RECVMSG
            | a::CGROUP_UNIX_RECVMSG
            | a::CGROUP_INET4_GETPEERNAME
            | a::CGROUP_INET6_GETPEERNAME
            | a::CGROUP_UNIX_GETPEERNAME
            | a::CGROUP_INET4_GETSOCKNAME
            | a::CGROUP_INET6_GETSOCKNAME
            | a::CGROUP_UNIX_GETSOCKNAME => RetRule::Range(1, 1),
            a::CGROUP_INET4_BIND | a::CGROUP_INET6_BIND => RetRule::Range(0, 3),
            _ => RetRule::Range(0, 1),
        },
        ProgType::CgroupSkb if at == a::CGROUP_INET_EGRESS => RetRule::Range(0, 3),
        ProgType::CgroupSkb
        | ProgType::CgroupSock
        | ProgType::SockOps
        | ProgType::CgroupDevice
        | ProgType::CgroupSysctl
        | ProgType::CgroupSockopt => RetRule::Range(0, 1),
        ProgType::RawTracepoint | ProgType::RawTracepointWritable => RetRule::Any,
        ProgType::Tracing => match at {
            a::TRACE_FENTRY | a::TRACE_FEXIT => RetRule::Range(0, 0),
            a::TRACE_RAW_TP | a::MODIFY_RETURN => RetRule::Any,
            TRACE_ITER => RetRule::Range(0, 1),
            _ => RetRule::Unknown("tracing programs of this attach type"),
        },
        ProgType::Kprobe if at == TRACE_KPROBE_SESSION => RetRule::Range(0, 1),
        ProgType::SkLookup => RetRule::Range(0, 1),
        ProgType::Netfilter => RetRule::Range(0, 1),
        ProgType::Lsm if at == LSM_CGROUP => RetRule::Unknown("LSM cgroup return values"),
        ProgType::Lsm => RetRule::Unknown("LSM hook return ranges"),
        ProgType::StructOps => RetRule::Unknown("struct_ops return values"),
        _ => RetRule::Any,
    }
}

/// A rejection whose class is the one the kernel's message belongs to.
fn reject(insn: usize, message: impl Into<String>) -> Stop {
    let message = message.into();
    Stop::reject(ErrorKind::classify(&message), insn, message)
}

/// The kernel's name of helper `func` (`func_id_name`).
fn func_name(func: i32) -> &'static str {
    usize::try_from(func)
        .ok()
        .and_then(|i| KERNEL_HELPER_NAMES.get(i))
        .copied()
        .unwrap_or("unknown")
}

/// The kernel's type name of a register in messages (`reg_type_str`), with ring buffer
/// records shown as `ringbuf_mem`.
fn type_str(st: &State, r: &Reg) -> String {
    if r.kind() == Some(PtrKind::Mem) && r.ref_obj_id != 0 && is_ringbuf_ref(st, r.ref_obj_id) {
        return if r.maybe_null { "ringbuf_mem_or_null".into() } else { "ringbuf_mem".into() };
    }
    r.type_name()
}

/// Whether reference `id` is a ring buffer record.
fn is_ringbuf_ref(st: &State, id: u32) -> bool {
    st.refs.iter().any(|x| x.id == id && x.kind == RefKind::Ringbuf)
}

/// Whether the register is a NULL pointer: a known zero scalar (`register_is_null`).
fn is_null(r: &Reg) -> bool {
    r.is_const(0)
}

/// A register a released reference or moved packet leaves behind (`mark_reg_invalid`): an
/// unknown scalar when pointers may leak, else unreadable.
fn invalid_reg(privileged: bool) -> Reg {
    if privileged { Reg::unknown() } else { Reg::NOT_INIT }
}

/// What the arguments of one helper call establish (`struct bpf_call_arg_meta`).
#[derive(Default)]
struct Meta {
    map: Option<u32>,
    /// The pending memory argument: register and whether the helper writes it.
    mem: Option<(usize, Arg)>,
    ref_obj_id: u32,
    release_regno: Option<usize>,
    subprog: Option<usize>,
    alloc_size: Option<u64>,
    dynptr: Option<crate::dynptr::DynptrArg>,
    /// The key of an array lookup when it is a known constant (`const_map_key`).
    const_key: Option<u64>,
    /// The largest value of the last size argument (`msize_max_value`).
    msize_max: u64,
}

/// Checks a helper call and applies its effect (r0, clobbered r1-r5, references).
pub(crate) fn check_helper_call(
    v: &mut Verifier<'_>,
    st: &mut State,
    insn: usize,
    func: i32,
    parent: Option<usize>,
) -> Result<(), Stop> {
    if st.lock.is_some() && func != id::SPIN_UNLOCK {
        return Err(reject(insn, "function calls are not allowed while holding a lock"));
    }
    let name = func_name(func);
    if func < 0 || func as usize >= KERNEL_HELPER_NAMES.len() {
        return Err(reject(insn, format!("invalid func {name}#{func}")));
    }
    let prog_type = v.prog.prog_type;
    let Some(proto) = v.helpers.proto(i64::from(func)).copied() else {
        if func == 0 {
            return Err(reject(
                insn,
                format!("program of this type cannot use helper {name}#{func}"),
            ));
        }
        return Err(Stop::unsupported(
            insn,
            format!("helper {name}#{func} (no prototype in bpflab)"),
        ));
    };
    if !v.helpers.allowed_proto(&proto, prog_type)
        || !attach_type_allows(proto.id, prog_type, v.prog.expected_attach_type)
    {
        return Err(reject(insn, format!("program of this type cannot use helper {name}#{func}")));
    }
    if proto.gpl_only && !license_is_gpl_compatible(&v.prog.license) {
        return Err(reject(
            insn,
            "cannot call GPL-restricted function from non-GPL compatible program",
        ));
    }
    // Helpers that may sleep (`.might_sleep`, bpflab_vm::helpers::might_sleep): only in
    // sleepable programs (BPF_F_SLEEPABLE), outside RCU read-side and non-preemptible sections.
    let sleepable = v.config.flags.sleepable || v.prog.flags & (1 << 4) != 0;
    if bpflab_vm::helpers::might_sleep(proto.id, sleepable) {
        if !sleepable {
            return Err(reject(insn, "helper call might sleep in a non-sleepable prog"));
        }
        if st.rcu_lock > 0 {
            return Err(reject(
                insn,
                format!("sleepable helper {name}#{func} in rcu_read_lock region"),
            ));
        }
        if st.preempt_off > 0 {
            return Err(reject(
                insn,
                format!("sleepable helper {name}#{func} in non-preemptible region"),
            ));
        }
    }
    let mut meta = Meta::default();
    for (i, &ty) in proto.args.iter().enumerate() {
        let arg = Arg::of(func, i, ty, prog_type);
        check_arg(v, st, insn, func, &proto, i + 1, arg, &mut meta)?;
    }
    if func == id::TAIL_CALL
        && let Some(m) = meta.map
        && v.map_spec(m).map_type != MapType::ProgArray
    {
        // record_func_map (the kernel's line lacks its newline).
        return Err(reject(insn, "expected prog array map for tail call"));
    }
    // References released by the call.
    if let Some(regno) = meta.release_regno {
        if meta.ref_obj_id != 0 {
            release_reference(v, st, insn, func, meta.ref_obj_id)?;
        } else if !is_null(st.reg(regno)) {
            return Err(reject(
                insn,
                format!("func {name}#{func} reference has not been acquired before"),
            ));
        }
    }
    match func {
        id::TAIL_CALL => {
            if st.lock.is_some() {
                return Err(reject(
                    insn,
                    "tail_call cannot be used inside bpf_spin_lock-ed region",
                ));
            }
            if let Some(r) = leaked_ref(st) {
                note_unreleased(v, &r);
                return Err(reject(insn, "tail_call would lead to reference leak"));
            }
            if st.rcu_lock > 0 {
                return Err(reject(
                    insn,
                    "tail_call cannot be used inside bpf_rcu_read_lock-ed region",
                ));
            }
            if st.preempt_off > 0 {
                return Err(reject(
                    insn,
                    "tail_call cannot be used inside bpf_preempt_disable-ed region",
                ));
            }
        }
        id::GET_LOCAL_STORAGE if !is_null(st.reg(2)) => {
            return Err(reject(insn, "get_local_storage() doesn't support non-zero flags"));
        }
        id::SNPRINTF => check_snprintf(v, st, insn)?,
        _ => {}
    }
    if let Some((ret_range, is_async)) = callback_of(func) {
        let Some(sub_start) = meta.subprog else {
            return Err(Stop::unsupported(insn, format!("{name} without a callback")));
        };
        push_callback(v, st, insn, func, sub_start, ret_range, is_async, parent)?;
    }

    // r1-r5 are clobbered; r0 is what the helper returns.
    for r in 1..=5 {
        *st.reg_mut(r) = Reg::NOT_INIT;
    }
    let mut sock_lookup = false;
    let mut r0 = match proto.ret {
        RetType::Integer => Reg::unknown(),
        RetType::Void => Reg::NOT_INIT,
        RetType::PtrToMapValueOrNull => {
            let Some(m) = meta.map else {
                return Err(reject(insn, "kernel subsystem misconfigured verifier"));
            };
            let mt = v.map_spec(m).map_type;
            // A map-in-map lookup gives the inner map (`map_ptr_or_null` of its template) and
            // an XDP socket map lookup an `xdp_sock_or_null`, typed at the call as 6.18 does;
            // device maps' values are read-only (mem::prog_map_flags).
            let inner = if func == id::MAP_LOOKUP_ELEM
                && matches!(mt, MapType::ArrayOfMaps | MapType::HashOfMaps)
            {
                let Some(inner) = v.inner_map_of(m) else {
                    return Err(Stop::unsupported(
                        insn,
                        "a map-in-map without an inner map template",
                    ));
                };
                Some(inner)
            } else {
                None
            };
            // A sockmap/sockhash lookup holds a reference to the socket, which the NULL check
            // makes a `sock` (`mark_ptr_or_null_reg`).
            if func == id::MAP_LOOKUP_ELEM && matches!(mt, MapType::Sockmap | MapType::Sockhash) {
                sock_lookup = true;
            }
            // An array lookup of a constant key below max_entries never fails (6.14+).
            let never_null = func == id::MAP_LOOKUP_ELEM
                && matches!(mt, MapType::Array | MapType::PercpuArray)
                && meta.const_key.is_some_and(|k| k < u64::from(v.map_spec(m).max_entries))
                // Inner map templates of BPF_F_INNER_MAP stand for arrays of any size.
                && v.map_spec(m).flags & BPF_F_INNER_MAP == 0;
            let kind = match (inner, sock_lookup) {
                (Some(_), _) => PtrKind::MapPtr,
                (None, true) => PtrKind::Sock,
                (None, false) if func == id::MAP_LOOKUP_ELEM && mt == MapType::Xskmap => {
                    PtrKind::XdpSock
                }
                (None, false) => PtrKind::MapValue,
            };
            let mut r = Reg { map: inner.unwrap_or(m), maybe_null: !never_null, ..Reg::ptr(kind) };
            if never_null && special_field_off(v, insn, m, "bpf_spin_lock")?.is_some() {
                r.id = v.new_id();
            }
            r
        }
        RetType::PtrToSocketOrNull => {
            let kind = match func {
                id::TCP_SOCK => PtrKind::TcpSock,
                id::SKC_LOOKUP_TCP => PtrKind::SockCommon,
                _ => PtrKind::Sock,
            };
            Reg { maybe_null: true, ..Reg::ptr(kind) }
        }
        RetType::PtrToAllocMemOrNull => {
            if func != id::RINGBUF_RESERVE && func != crate::dynptr::FUNC_DYNPTR_DATA {
                return Err(Stop::unsupported(insn, format!("memory returned by {name}")));
            }
            let size = meta.alloc_size.unwrap_or(0);
            Reg { maybe_null: true, mem_size: size as u32, ..Reg::ptr(PtrKind::Mem) }
        }
        RetType::PtrToMapValue => {
            // bpf_get_local_storage: the program's storage, never NULL.
            let Some(m) = meta.map else {
                return Err(reject(insn, "kernel subsystem misconfigured verifier"));
            };
            let mut r = Reg { map: m, ..Reg::ptr(PtrKind::MapValue) };
            if special_field_off(v, insn, m, "bpf_spin_lock")?.is_some() {
                r.id = v.new_id();
            }
            r
        }
        RetType::PtrToBtfIdOrNull if skc_to_struct(func).is_some() => {
            // bpf_skc_to_*: the socket as the named kernel struct, or NULL.
            let target = skc_to_struct(func).and_then(crate::mem::vmlinux_struct);
            let Some(btf_id) = target else {
                return Err(Stop::unsupported(insn, format!("{name} without vmlinux BTF")));
            };
            Reg { btf_id, maybe_null: true, ..Reg::ptr(PtrKind::BtfId) }
        }
        RetType::PtrToBtfIdOrNull | RetType::PtrToMemOrBtfId | RetType::PtrToMemOrBtfIdOrNull => {
            return Err(Stop::unsupported(
                insn,
                format!("BTF-typed kernel pointers returned by {name}"),
            ));
        }
        RetType::PtrToBtfId => {
            // bpf_get_current_task_btf: a trusted `struct task_struct *`.
            let target = (func == id::GET_CURRENT_TASK_BTF)
                .then(|| crate::mem::vmlinux_struct("task_struct"))
                .flatten();
            let Some(btf_id) = target else {
                return Err(Stop::unsupported(
                    insn,
                    format!("BTF-typed kernel pointers returned by {name}"),
                ));
            };
            Reg { btf_id, trusted: true, ..Reg::ptr(PtrKind::BtfId) }
        }
    };
    if r0.maybe_null {
        r0.id = v.new_id();
    }
    if is_ptr_cast(func) {
        r0.ref_obj_id = meta.ref_obj_id;
    } else if is_acquire(func) || sock_lookup {
        let ref_id = v.new_id();
        let callback_ref = if st.cur().callback_of.is_some() { st.cur().frameno } else { 0 };
        let kind = if func == id::RINGBUF_RESERVE { RefKind::Ringbuf } else { RefKind::Socket };
        st.refs.push(RefState { id: ref_id, insn, kind, callback_ref });
        r0.id = ref_id;
        r0.ref_obj_id = ref_id;
    }
    if let Some(d) = meta.dynptr {
        crate::dynptr::ret_slice(&mut r0, func, &d);
    }
    if proto.ret == RetType::Integer {
        refine_retval(&mut r0, func, meta.msize_max);
    }
    *st.reg_mut(0) = r0;
    if let Some(m) = meta.map {
        let mt = v.map_spec(m).map_type;
        if !map_func_compatible(v, mt, func) {
            return Err(reject(
                insn,
                format!("cannot pass map_type {} into func {name}#{func}", mt as u32),
            ));
        }
    }
    if changes_pkt_data(func) || crate::dynptr::changes_pkt_data(func, meta.dynptr) {
        let privileged = v.config.privileged;
        let non_pkt = crate::dynptr::non_pkt_dynptr_ids(st);
        st.for_each_reg(|r| {
            if r.kind().is_some_and(|k| k.is_pkt() || k == PtrKind::PacketEnd)
                || crate::dynptr::is_pkt_slice(r, &non_pkt)
            {
                *r = invalid_reg(privileged);
            }
        });
    }
    Ok(())
}

/// Bounds the kernel knows for some helpers' integer results (`do_refine_retval_range`):
/// string and stack copies return at most their size or an error, the CPU id is below the
/// number of possible CPUs.
fn refine_retval(r0: &mut Reg, func: i32, msize_max: u64) {
    /// `MAX_ERRNO`.
    const MAX_ERRNO: i64 = 4095;
    match func {
        id::GET_STACK
        | id::GET_TASK_STACK
        | id::PROBE_READ_STR
        | id::PROBE_READ_KERNEL_STR
        | id::PROBE_READ_USER_STR => {
            r0.var.smax = msize_max as i64;
            r0.var.s32_max = msize_max as i32;
            r0.var.smin = -MAX_ERRNO;
            r0.var.s32_min = -MAX_ERRNO as i32;
            r0.var.sync();
        }
        id::GET_SMP_PROCESSOR_ID => {
            let Some(n) = possible_cpus() else { return };
            let max = n.saturating_sub(1);
            r0.var = Scalar::urange(0, max);
            r0.var.smin = 0;
            r0.var.smax = max as i64;
            r0.var.s32_min = 0;
            r0.var.s32_max = max as i32;
            r0.var.u32_min = 0;
            r0.var.u32_max = max as u32;
            r0.var.sync();
        }
        _ => {}
    }
}

/// The number of possible CPUs of this machine's kernel (`nr_cpu_ids`), from sysfs.
fn possible_cpus() -> Option<u64> {
    static N: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    *N.get_or_init(|| {
        let text = std::fs::read_to_string("/sys/devices/system/cpu/possible").ok()?;
        // "0-3" or "0" or "0-3,5": nr_cpu_ids is the highest id + 1.
        let last = text.trim().rsplit([',', '-']).next()?;
        last.parse::<u64>().ok().map(|m| m + 1)
    })
}

/// The kernel struct a `bpf_skc_to_*` helper returns.
fn skc_to_struct(func: i32) -> Option<&'static str> {
    Some(match func {
        136 => "tcp6_sock",
        137 => "tcp_sock",
        138 => "tcp_timewait_sock",
        139 => "tcp_request_sock",
        140 => "udp6_sock",
        178 => "unix_sock",
        id::SKC_TO_MPTCP_SOCK => "mptcp_sock",
        _ => return None,
    })
}

/// The first reference a tail call or a main-program exit would leak.
fn leaked_ref(st: &State) -> Option<RefState> {
    st.refs.first().copied()
}

/// Checks argument register `regno` against `arg` (`check_func_arg`).
#[allow(clippy::too_many_arguments)]
fn check_arg(
    v: &mut Verifier<'_>,
    st: &mut State,
    insn: usize,
    func: i32,
    proto: &HelperProto,
    regno: usize,
    arg: Arg,
    meta: &mut Meta,
) -> Result<(), Stop> {
    v.check_read(st, insn, regno)?;
    let reg = *st.reg(regno);
    if let Arg::Unmodelled(what) = arg {
        return Err(Stop::unsupported(insn, format!("{}: {what}", func_name(func))));
    }
    if arg == Arg::Anything {
        if reg.is_ptr() && !v.config.privileged {
            return Err(reject(insn, format!("R{regno} leaks addr into helper function")));
        }
        return Ok(());
    }
    if reg.kind().is_some_and(PtrKind::is_pkt) && !may_access_pkt(v.prog.prog_type, func) {
        return Err(reject(insn, "helper access to the packet is not allowed"));
    }
    // A socket stored in a sockmap/sockhash (`resolve_map_arg_type`).
    let mut arg = arg;
    if arg == (Arg::MapValue { null_ok: false })
        && let Some(m) = meta.map
        && matches!(v.map_spec(m).map_type, MapType::Sockmap | MapType::Sockhash)
    {
        if proto.args.get(regno - 1) != Some(&ArgType::PtrToMapValue) {
            return Err(reject(insn, "invalid arg_type for sockmap/sockhash"));
        }
        arg = Arg::BtfSockCommon { null_ok: false, release: false };
    }
    let null_skip = is_null(&reg) && arg.null_ok();
    if !null_skip {
        check_reg_type(st, insn, regno, arg, &reg)?;
        check_reg_off(st, insn, regno, arg, &reg)?;
    }
    if arg.release() {
        if reg.ref_obj_id == 0 && !is_null(&reg) {
            return Err(reject(
                insn,
                format!("R{regno} must be referenced when passed to release function"),
            ));
        }
        meta.release_regno = Some(regno);
    }
    if reg.ref_obj_id != 0 {
        meta.ref_obj_id = reg.ref_obj_id;
    }
    match arg {
        Arg::MapPtr => {
            // bpf_timer_init: the map must be the timer's own.
            if let Some(m) = meta.map
                && m != reg.map
            {
                return Err(reject(
                    insn,
                    "timer pointer in R1 map_uid=0 doesn't match map pointer in R2 map_uid=0",
                ));
            }
            meta.map = Some(reg.map);
        }
        Arg::MapKey | Arg::MapValue { .. } => {
            if null_skip {
                return Ok(());
            }
            let Some(m) = meta.map else {
                let what = if arg == Arg::MapKey { "key" } else { "value" };
                return Err(reject(insn, format!("invalid map_ptr to access map->{what}")));
            };
            let spec = v.map_spec(m);
            let size = if arg == Arg::MapKey { spec.key_size } else { spec.value_size };
            // bpf_map_pop_elem/peek_elem write the value (ARG_PTR_TO_MAP_VALUE | MEM_UNINIT).
            let write = arg == (Arg::MapValue { null_ok: false })
                && proto.args.get(regno - 1) == Some(&ArgType::PtrToUninitMem);
            // The key's constant value, read before the memory check (which may mark the
            // bytes a helper touched).
            if arg == Arg::MapKey
                && v.config.privileged
                && matches!(spec_type(v, m), MapType::Array | MapType::PercpuArray)
            {
                meta.const_key = constant_key(st, &reg, size);
            }
            helper_mem(v, st, insn, regno, &Scalar::konst(u64::from(size)), write, false, None)?;
        }
        Arg::Mem { .. } => meta.mem = Some((regno, arg)),
        Arg::FixedMem { size, uninit, write, aligned } => {
            if null_skip {
                return Ok(());
            }
            let sz = Scalar::konst(u64::from(size));
            helper_mem(v, st, insn, regno, &sz, uninit, false, None)?;
            // Written but not raw: initialised memory the program may write (`BPF_WRITE`).
            if write && !uninit && reg.kind() == Some(PtrKind::MapValue) {
                let spec = v.map_spec(reg.map);
                if crate::mem::prog_map_flags(spec) & BPF_F_RDONLY_PROG != 0 {
                    return Err(reject(
                        insn,
                        format!(
                            "write into map forbidden, value_size={} off={} size={size}",
                            spec.value_size, reg.off
                        ),
                    ));
                }
            }
            let r = st.reg(regno);
            if aligned && r.kind() == Some(PtrKind::Stack) {
                let off = i64::from(r.off) + r.var.var_off.value as i64;
                if off % i64::from(size) != 0 {
                    return Err(reject(
                        insn,
                        format!(
                            "misaligned stack access off {}+{}+0 size {size}",
                            fmt_tnum(&r.var),
                            r.off
                        ),
                    ));
                }
            }
        }
        Arg::Size { zero_ok } => {
            meta.msize_max = reg.var.umax;
            let Some((mreg, marg)) = meta.mem.take() else {
                return Err(reject(
                    insn,
                    format!("kernel subsystem misconfigured func {}#{func}", func_name(func)),
                ));
            };
            let uninit = matches!(marg, Arg::Mem { uninit: true, .. });
            helper_mem(v, st, insn, mreg, &reg.var, uninit, zero_ok, Some(regno))?;
        }
        Arg::AllocSize => {
            let Some(c) = reg.var.const_value() else {
                return Err(reject(insn, format!("R{regno} is not a known constant'")));
            };
            meta.alloc_size = Some(c);
        }
        Arg::Func => meta.subprog = Some(reg.subprog as usize),
        Arg::ConstStr => check_const_str(v, insn, regno, &reg)?,
        Arg::SpinLock => process_spin_lock(v, st, insn, regno, &reg, func == id::SPIN_LOCK)?,
        Arg::Timer => {
            process_timer(v, insn, regno, &reg)?;
            if reg.map as usize >= v.coll.maps.len() {
                // The kernel tells inner maps' timers apart by the lookup (`map_uid`).
                return Err(Stop::unsupported(insn, "timers in inner maps (map_uid)"));
            }
            meta.map = Some(reg.map);
        }
        Arg::Dynptr => {
            meta.dynptr = Some(crate::dynptr::check_helper_arg(v, st, insn, func, regno)?);
        }
        Arg::BtfId { name, .. } if !null_skip => {
            // Only trusted pointers of exactly the type (the kernel also accepts a struct
            // that starts with it, and other trust flavours bpflab does not track).
            let want = crate::mem::vmlinux_struct(name);
            if !(reg.trusted && reg.off == 0 && want.is_some() && want == Some(reg.btf_id)) {
                return Err(Stop::unsupported(
                    insn,
                    format!("kernel pointer argument (struct {name})"),
                ));
            }
        }
        _ => {}
    }
    Ok(())
}

/// The type of map `m`.
fn spec_type(v: &Verifier<'_>, m: u32) -> MapType {
    v.map_spec(m).map_type
}

/// The value of a map key on the stack when it is a known constant: `key_size` zero bytes,
/// or a spilled constant of exactly `key_size` bytes (`get_constant_map_key`).
fn constant_key(st: &State, key: &Reg, key_size: u32) -> Option<u64> {
    use crate::state::ByteKind;
    if key.kind() != Some(PtrKind::Stack) {
        return None;
    }
    let off = i64::from(key.off) + key.var.const_value()? as i64;
    if !(-512..0).contains(&off) {
        return None;
    }
    let (slot, byte) = Frame::slot_of(off);
    let frame = st.frames.get(usize::from(key.frameno))?;
    let s = frame.stack.get(slot)?;
    // Bytes from the key's address up to the slot's top.
    let run = |k: ByteKind| s.bytes[byte..].iter().take_while(|&&b| b == k).count();
    if run(ByteKind::Zero) >= key_size as usize {
        return Some(0);
    }
    let spilled_scalar = s.bytes[0] == ByteKind::Spill && s.spilled.is_scalar();
    if !spilled_scalar || run(ByteKind::Spill) != key_size as usize {
        return None;
    }
    s.spilled.var.const_value()
}

/// Whether a helper of `func` may be passed packet pointers in `prog_type`
/// (`may_access_direct_pkt_data` for reads, with the helper's `pkt_access`).
fn may_access_pkt(prog_type: ProgType, func: i32) -> bool {
    match prog_type {
        ProgType::LwtIn
        | ProgType::LwtOut
        | ProgType::LwtSeg6local
        | ProgType::SkReuseport
        | ProgType::FlowDissector
        | ProgType::CgroupSkb
        | ProgType::SchedCls
        | ProgType::SchedAct
        | ProgType::Xdp
        | ProgType::LwtXmit
        | ProgType::SkSkb
        | ProgType::SkMsg => pkt_access(func),
        ProgType::CgroupSockopt => true,
        _ => false,
    }
}

/// Checks the register's type against the argument's (`check_reg_type`).
fn check_reg_type(st: &State, insn: usize, regno: usize, arg: Arg, reg: &Reg) -> Result<(), Stop> {
    let (kinds, expected) = compatible(arg);
    let ok = match reg.ty {
        RegType::Scalar => matches!(arg, Arg::Scalar | Arg::Size { .. } | Arg::AllocSize),
        RegType::NotInit => false,
        RegType::Ptr(k) => {
            let null_folded = reg.maybe_null && !arg.null_ok();
            let ringbuf =
                k == PtrKind::Mem && reg.ref_obj_id != 0 && is_ringbuf_ref(st, reg.ref_obj_id);
            let kind_ok = match arg {
                Arg::RingbufMem => ringbuf,
                _ => kinds.contains(&k),
            };
            kind_ok && !null_folded && !(reg.rdonly && matches!(arg, Arg::Mem { uninit: true, .. }))
        }
    };
    if !ok {
        if reg.kind() == Some(PtrKind::BtfId) {
            if let Arg::BtfSockCommon { null_ok, release } = arg {
                return btf_sock_common(insn, regno, reg, null_ok, release);
            }
            return Err(Stop::unsupported(insn, "BTF-typed kernel pointers passed to helpers"));
        }
        return Err(reject(
            insn,
            format!("R{regno} type={} expected={expected}", type_str(st, reg)),
        ));
    }
    Ok(())
}

/// A BTF pointer passed as `ARG_PTR_TO_BTF_ID_SOCK_COMMON` (`check_reg_type`): not NULL
/// unless the argument allows it (never for a release), and a struct starting with
/// `struct sock_common` (`btf_struct_ids_match`, not strict: `bpf_sk_release` takes every
/// socket type). Pointers of unknown trust (possibly `PTR_UNTRUSTED`, which the kernel
/// refuses) and at an offset are unsupported.
fn btf_sock_common(
    insn: usize,
    regno: usize,
    reg: &Reg,
    null_ok: bool,
    release: bool,
) -> Result<(), Stop> {
    if reg.maybe_null && (!null_ok || release) {
        return Err(reject(insn, format!("Possibly NULL pointer passed to helper arg{regno}")));
    }
    let unsupported = || Stop::unsupported(insn, "BTF-typed kernel pointers passed to helpers");
    if reg.maybe_null || (reg.ref_obj_id == 0 && !reg.trusted) || reg.off != 0 {
        return Err(unsupported());
    }
    let (Some(btf), Some(want)) =
        (crate::mem::vmlinux(), crate::mem::vmlinux_struct("sock_common"))
    else {
        return Err(unsupported());
    };
    if !crate::kfunc::struct_ids_match(btf, reg.btf_id, want, false) {
        return Err(reject(
            insn,
            format!(
                "R{regno} is of type {} but sock_common is expected",
                btf.type_name(reg.btf_id).unwrap_or("")
            ),
        ));
    }
    Ok(())
}

/// Checks a pointer argument's offsets (`check_func_arg_reg_off`).
fn check_reg_off(st: &State, insn: usize, regno: usize, arg: Arg, reg: &Reg) -> Result<(), Stop> {
    let Some(kind) = reg.kind() else { return Ok(()) };
    if arg.release() {
        if reg.off != 0 {
            return Err(reject(
                insn,
                format!(
                    "R{regno} must have zero offset when passed to release func or trusted arg to kfunc"
                ),
            ));
        }
        return ptr_off(st, insn, regno, reg, false);
    }
    match kind {
        PtrKind::Stack
        | PtrKind::Packet
        | PtrKind::PacketMeta
        | PtrKind::MapKey
        | PtrKind::MapValue
        | PtrKind::Mem => Ok(()),
        PtrKind::BtfId => ptr_off(st, insn, regno, reg, true),
        _ => ptr_off(st, insn, regno, reg, false),
    }
}

/// `__check_ptr_off_reg`: a pointer passed on in its original form.
fn ptr_off(st: &State, insn: usize, regno: usize, reg: &Reg, fixed_ok: bool) -> Result<(), Stop> {
    let t = type_str(st, reg);
    if reg.off < 0 {
        return Err(reject(
            insn,
            format!("negative offset {t} ptr R{regno} off={} disallowed", reg.off),
        ));
    }
    if !fixed_ok && reg.off != 0 {
        return Err(reject(
            insn,
            format!("dereference of modified {t} ptr R{regno} off={} disallowed", reg.off),
        ));
    }
    if reg.var.const_value() != Some(0) {
        return Err(reject(
            insn,
            format!("variable {t} access var_off={} disallowed", fmt_tnum(&reg.var)),
        ));
    }
    Ok(())
}

/// A tnum as the kernel prints it (`tnum_strn`: `(0x..; 0x..)`).
fn fmt_tnum(s: &Scalar) -> String {
    format!("(0x{:x}; 0x{:x})", s.var_off.value, s.var_off.mask)
}

/// A helper's memory argument through the memory checks (`check_helper_mem_access`).
#[allow(clippy::too_many_arguments)]
fn helper_mem(
    v: &mut Verifier<'_>,
    st: &mut State,
    insn: usize,
    regno: usize,
    size: &Scalar,
    write: bool,
    zero_ok: bool,
    size_regno: Option<usize>,
) -> Result<(), Stop> {
    crate::mem::check_helper_mem(v, st, insn, regno, size, write, zero_ok, size_regno)
}

/// bpf_snprintf's format (r3, a constant string) against its u64 array of `r5 / 8`
/// arguments (`check_bpf_snprintf_call`).
fn check_snprintf(v: &Verifier<'_>, st: &State, insn: usize) -> Result<(), Stop> {
    let fmt_reg = st.reg(3);
    let data_len = st.reg(5).var.var_off.value;
    if !data_len.is_multiple_of(8) {
        // The kernel refuses it without a message.
        return Err(Stop::unsupported(insn, "bpf_snprintf data length not a multiple of 8"));
    }
    let spec = v.map_spec(fmt_reg.map);
    let off = i64::from(fmt_reg.off) + fmt_reg.var.var_off.value as i64;
    let fmt = spec
        .data
        .as_ref()
        .and_then(|(_, d)| usize::try_from(off).ok().and_then(|o| d.get(o..)))
        .ok_or_else(|| Stop::unsupported(insn, "bpf_snprintf format outside the map's data"))?;
    let end = fmt.iter().position(|&b| b == 0).unwrap_or(fmt.len());
    if !bprintf_format_ok(&fmt[..end], data_len / 8) {
        return Err(reject(insn, "Invalid format string"));
    }
    Ok(())
}

/// Whether the kernel's printf-like helpers accept format `fmt` with `num_args` arguments
/// (`bpf_bprintf_prepare`): `%d %i %u %x %X` with `l`/`ll`, `%c`, `%s`, `%p` and its `K x s
/// S B ks us i4 I4 i6 I6` forms, flags and a width; plain text printable.
fn bprintf_format_ok(fmt: &[u8], num_args: u64) -> bool {
    let at = |i: usize| fmt.get(i).copied().unwrap_or(0);
    let space = |c: u8| matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r');
    let punct = |c: u8| c.is_ascii_punctuation();
    let mut num_spec = 0u64;
    let mut i = 0;
    while i < fmt.len() {
        let c = fmt[i];
        if c.is_ascii() && !(0x20..0x7f).contains(&c) && !space(c) {
            return false;
        }
        if c != b'%' {
            i += 1;
            continue;
        }
        if at(i + 1) == b'%' {
            i += 2;
            continue;
        }
        if num_spec >= num_args {
            return false;
        }
        i += 1;
        if !at(i).is_ascii() {
            return false;
        }
        while matches!(at(i), b'0' | b'+' | b'-' | b' ') {
            i += 1;
        }
        if (b'1'..=b'9').contains(&at(i)) {
            i += 1;
            while at(i).is_ascii_digit() {
                i += 1;
            }
        }
        let str_end_ok = |j: usize| at(j) == 0 || space(at(j)) || punct(at(j));
        match at(i) {
            b'p' => {
                let n = at(i + 1);
                if n == 0 || space(n) || punct(n) {
                    // %p
                } else if (n == b'k' || n == b'u') && at(i + 2) == b's' {
                    i += 2;
                    if !str_end_ok(i + 1) {
                        return false;
                    }
                } else if matches!(n, b'K' | b'x' | b's' | b'S' | b'B') {
                    i += 1;
                } else if matches!(n, b'i' | b'I') && matches!(at(i + 2), b'4' | b'6') {
                    i += 2;
                } else {
                    return false;
                }
            }
            b's' => {
                if !str_end_ok(i + 1) {
                    return false;
                }
            }
            b'c' => {}
            _ => {
                if at(i) == b'l' {
                    i += 1;
                }
                if at(i) == b'l' {
                    i += 1;
                }
                if !matches!(at(i), b'i' | b'd' | b'u' | b'x' | b'X') {
                    return false;
                }
            }
        }
        num_spec += 1;
        i += 1;
    }
    true
}

/// ARG_PTR_TO_CONST_STR: a NUL-terminated string in a read-only map (`check_reg_const_str`).
fn check_const_str(v: &Verifier<'_>, insn: usize, regno: usize, reg: &Reg) -> Result<(), Stop> {
    let spec = v.map_spec(reg.map);
    if spec.flags & BPF_F_RDONLY_PROG == 0 {
        return Err(reject(insn, format!("R{regno} does not point to a readonly map'")));
    }
    let Some(var) = reg.var.const_value() else {
        return Err(reject(insn, format!("R{regno} is not a constant address'")));
    };
    let off = i64::from(reg.off) + var as i64;
    let Some((_, data)) = &spec.data else {
        return Err(Stop::unsupported(insn, "constant strings in maps without initial data"));
    };
    let Some(tail) = usize::try_from(off).ok().and_then(|o| data.get(o..)) else {
        return Err(reject(
            insn,
            format!("invalid access to map value, value_size={} off={off} size=0", spec.value_size),
        ));
    };
    if !tail.contains(&0) {
        return Err(reject(insn, "string is not zero-terminated"));
    }
    Ok(())
}

/// Where the map's value holds its `struct <field>` (`bpf_spin_lock`, `bpf_timer`): the map's
/// special fields as the memory checks decode them from BTF (`btf_record`).
fn special_field_off(
    v: &mut Verifier<'_>,
    insn: usize,
    map: u32,
    field: &str,
) -> Result<Option<u32>, Stop> {
    use crate::mem::FieldKind;
    let fields = crate::mem::map_fields(v, map);
    let mut found = fields
        .iter()
        .filter(|f| matches!(f.kind, FieldKind::Special(n) if n == field))
        .map(|f| f.off);
    let first = found.next();
    if found.next().is_some() {
        let name = &v.map_spec(map).name;
        return Err(Stop::unsupported(insn, format!("several {field} in map {name:?}")));
    }
    Ok(first)
}

/// A `struct bpf_timer` argument in a map value (`process_timer_func`).
fn process_timer(v: &mut Verifier<'_>, insn: usize, regno: usize, reg: &Reg) -> Result<(), Stop> {
    let Some(val) = reg.var.const_value() else {
        return Err(reject(
            insn,
            format!(
                "R{regno} doesn't have constant offset. bpf_timer has to be at the constant offset"
            ),
        ));
    };
    let Some(timer_off) = special_field_off(v, insn, reg.map, "bpf_timer")? else {
        let spec = v.map_spec(reg.map);
        if spec.btf_value_type_id.is_none() {
            return Err(reject(
                insn,
                format!("map '{}' has to have BTF in order to use bpf_timer", spec.name),
            ));
        }
        return Err(reject(insn, format!("map '{}' has no valid bpf_timer", spec.name)));
    };
    let off = val as i64 + i64::from(reg.off);
    if off != i64::from(timer_off) {
        return Err(reject(
            insn,
            format!("off {off} doesn't point to 'struct bpf_timer' that is at {timer_off}"),
        ));
    }
    Ok(())
}

/// bpf_spin_lock / bpf_spin_unlock on a map value (`process_spin_lock`).
fn process_spin_lock(
    v: &mut Verifier<'_>,
    st: &mut State,
    insn: usize,
    regno: usize,
    reg: &Reg,
    lock: bool,
) -> Result<(), Stop> {
    if reg.var.const_value().is_none() {
        return Err(reject(
            insn,
            format!(
                "R{regno} doesn't have constant offset. bpf_spin_lock has to be at the constant offset"
            ),
        ));
    }
    let Some(lock_off) = special_field_off(v, insn, reg.map, "bpf_spin_lock")? else {
        let spec = v.map_spec(reg.map);
        if spec.btf_value_type_id.is_none() {
            return Err(reject(
                insn,
                format!("map '{}' has to have BTF in order to use bpf_spin_lock", spec.name),
            ));
        }
        return Err(reject(insn, format!("map '{}' has no valid bpf_spin_lock", spec.name)));
    };
    let off = i64::from(reg.off) + reg.var.var_off.value as i64;
    if off != i64::from(lock_off) {
        return Err(reject(
            insn,
            format!("off {off} doesn't point to 'struct bpf_spin_lock' that is at {lock_off}"),
        ));
    }
    if lock {
        if st.lock.is_some() {
            return Err(reject(insn, "Locking two bpf_spin_locks are not allowed"));
        }
        st.lock = Some(Lock { id: reg.id, map: reg.map, off: off as i32 });
    } else {
        let Some(held) = st.lock else {
            return Err(reject(insn, "bpf_spin_unlock without taking a lock"));
        };
        if held.id != reg.id || held.map != reg.map {
            return Err(reject(insn, "bpf_spin_unlock of different lock"));
        }
        st.lock = None;
    }
    Ok(())
}

/// Drops reference `ref_id` and every register holding it (`release_reference`).
fn release_reference(
    v: &Verifier<'_>,
    st: &mut State,
    insn: usize,
    func: i32,
    ref_id: u32,
) -> Result<(), Stop> {
    let Some(pos) = st.refs.iter().position(|r| r.id == ref_id) else {
        return Err(reject(
            insn,
            format!("func {}#{func} reference has not been acquired before", func_name(func)),
        ));
    };
    st.refs.remove(pos);
    let privileged = v.config.privileged;
    st.for_each_reg(|r| {
        if r.ref_obj_id == ref_id {
            *r = invalid_reg(privileged);
        }
    });
    Ok(())
}

/// Queues the verification of a callback called by helper `func` at `insn` from the
/// current frame (`push_callback_call`).
#[allow(clippy::too_many_arguments)]
fn push_callback(
    v: &mut Verifier<'_>,
    st: &mut State,
    insn: usize,
    func: i32,
    start: usize,
    ret_range: (i64, i64),
    is_async: bool,
    parent: Option<usize>,
) -> Result<(), Stop> {
    let _ = ret_range;
    let Some(sub) = v.cfg.subprogs.iter().position(|s| s.start == start) else {
        return Err(reject(insn, format!("verifier bug. No program starts at insn {start}")));
    };
    if !v.calls.cb.contains(&start) {
        v.calls.cb.push(start);
    }
    if is_async {
        if !v.calls.async_cb.contains(&start) {
            v.calls.async_cb.push(start);
        }
        // A fresh state of its own, run later by the timer (`push_async_cb`): r1 the timer's
        // map, r2 its key, r3 its value.
        let m = st.reg(1).map;
        let mut cb = State::entry(Reg::NOT_INIT);
        let mut frame = Frame::new(0, insn, sub);
        frame.callback_of = Some(insn);
        frame.regs[1] = Reg { map: m, ..Reg::ptr(PtrKind::MapPtr) };
        frame.regs[2] = Reg { map: m, ..Reg::ptr(PtrKind::MapKey) };
        frame.regs[3] = Reg { map: m, ..Reg::ptr(PtrKind::MapValue) };
        cb.frames[0] = frame;
        return v.push_branch(cb, start, insn, parent);
    }
    if func == id::FIND_VMA {
        return Err(Stop::unsupported(insn, format!("{} callbacks", func_name(func))));
    }
    if func == id::LOOP {
        // The callback runs while the caller's callback depth is below nr_loops.
        if u64::from(st.cur().callback_depth) >= st.reg(1).var.umax {
            st.cur_mut().callback_depth = 0;
            return Ok(());
        }
    }
    let caller = st.cur().clone();
    let mut cb = st.clone();
    if cb.frames.len() >= v.config.max_frames {
        return Err(reject(
            insn,
            format!("the call stack of {} frames is too deep", cb.frames.len() + 1),
        ));
    }
    let frameno = cb.frames.len() as u8;
    let mut callee = Frame::new(frameno, insn, sub);
    callee.callback_of = Some(insn);
    match func {
        id::LOOP => {
            callee.regs[1] = Reg::unknown();
            callee.regs[2] = caller.regs[3];
        }
        id::USER_RINGBUF_DRAIN => {
            // A dynptr the program does not own over each sample, and the context.
            callee.regs[1] = crate::dynptr::const_dynptr(v);
            callee.regs[2] = caller.regs[3];
        }
        id::FOR_EACH_MAP_ELEM => {
            let m = caller.regs[1].map;
            let mt = v.map_spec(m).map_type;
            if !matches!(
                mt,
                MapType::Hash
                    | MapType::PercpuHash
                    | MapType::LruHash
                    | MapType::LruPercpuHash
                    | MapType::Array
                    | MapType::PercpuArray
            ) {
                return Err(reject(insn, "callback function not allowed for map"));
            }
            callee.regs[1] = caller.regs[1];
            callee.regs[2] = Reg { map: m, ..Reg::ptr(PtrKind::MapKey) };
            callee.regs[3] = Reg { map: m, ..Reg::ptr(PtrKind::MapValue) };
            callee.regs[4] = caller.regs[3];
        }
        _ => return Err(Stop::unsupported(insn, format!("{} callbacks", func_name(func)))),
    }
    if let Some(f) = cb.frames.last_mut() {
        f.callback_depth += 1;
    }
    cb.callback_unroll_depth += 1;
    cb.frames.push(callee);
    st.cur_mut().callback_depth = 0;
    v.push_branch(cb, start, insn, parent)
}

/// Checks an LD_IMM64 of a subprogram's address (a callback): the program needs BTF
/// func info and the subprogram must be static (`check_ld_imm` for `BPF_PSEUDO_FUNC`).
pub(crate) fn check_func_ref(v: &Verifier<'_>, insn: usize, target: usize) -> Result<(), Stop> {
    if v.prog.func_info.is_empty() {
        return Err(reject(insn, "missing btf func_info"));
    }
    if subprog_at(v, target).is_some_and(|i| v.cfg.subprogs[i].is_global) {
        return Err(reject(insn, "callback function not static"));
    }
    Ok(())
}

/// Checks a kfunc call (kfunc.rs).
pub(crate) fn check_kfunc_call(
    v: &mut Verifier<'_>,
    st: &mut State,
    insn: usize,
    btf_id: i32,
    parent: Option<usize>,
) -> Result<(), Stop> {
    crate::kfunc::check_kfunc_call(v, st, insn, btf_id, parent)
}

/// Checks a bpf-to-bpf call to the subprogram at slot `target` and pushes its frame; returns
/// the slot where verification continues.
pub(crate) fn check_func_call(
    v: &mut Verifier<'_>,
    st: &mut State,
    insn: usize,
    target: usize,
) -> Result<usize, Stop> {
    let Some(sub) = v.cfg.subprogs.iter().position(|s| s.start == target) else {
        return Err(reject(insn, format!("verifier bug. No program starts at insn {target}")));
    };
    if has_exception_cb(v, insn)? {
        return Err(Stop::unsupported(insn, "programs with exception callbacks"));
    }
    if v.cfg.subprogs[sub].is_global {
        if st.lock.is_some() {
            // Two lines; the second is the error line.
            v.log.text.push_str("global function calls are not allowed while holding a lock,\n");
            return Err(reject(insn, "use static function instead"));
        }
        return call_global(v, st, insn, sub);
    }
    if st.frames.len() >= v.config.max_frames {
        return Err(reject(
            insn,
            format!("the call stack of {} frames is too deep", st.frames.len() + 1),
        ));
    }
    let frameno = st.frames.len() as u8;
    let mut callee = Frame::new(frameno, insn, sub);
    for r in 1..=5 {
        callee.regs[r] = *st.reg(r);
    }
    for r in 0..=5 {
        *st.reg_mut(r) = Reg::NOT_INIT;
    }
    st.frames.push(callee);
    Ok(target)
}

/// The collection's BTF, parsed on first use.
fn btf<'b>(v: &'b mut Verifier<'_>, insn: usize) -> Result<&'b bpflab_btf::Btf, Stop> {
    if v.calls.btf.is_none() {
        let Some(raw) = v.coll.btf.as_deref() else {
            return Err(Stop::unsupported(insn, "global functions without BTF"));
        };
        let parsed = bpflab_btf::Btf::parse(raw)
            .map_err(|e| Stop::unsupported(insn, format!("global functions: BTF: {e}")))?;
        v.calls.btf = Some(parsed);
    }
    Ok(v.calls.btf.as_ref().expect("parsed above"))
}

/// Whether the program names an exception callback (an `exception_callback:` decl tag).
fn has_exception_cb(v: &mut Verifier<'_>, insn: usize) -> Result<bool, Stop> {
    if v.coll.btf.is_none() {
        return Ok(false);
    }
    let Some(&(_, main_id)) = v.prog.func_info.first() else { return Ok(false) };
    let btf = btf(v, insn)?;
    Ok(btf.types().any(|(_, t)| {
        matches!(t, bpflab_btf::BtfType::DeclTag { name_off, type_id, .. }
            if *type_id == main_id
                && btf.string_at(*name_off).is_ok_and(|n| n.starts_with("exception_callback:")))
    }))
}

/// The prototype of global function `sub` from BTF (`btf_prepare_func_args`): `Ok(Err(line))`
/// when the kernel refuses the prototype with that log line.
fn global_fn(
    v: &mut Verifier<'_>,
    insn: usize,
    sub: usize,
) -> Result<Result<GlobalFn, String>, Stop> {
    use bpflab_btf::BtfType as T;
    let start = v.cfg.subprogs[sub].start;
    let type_id = v.prog.func_info.iter().find(|f| f.0 as usize == start).map(|f| f.1);
    // The C name of the program type's context struct (the kernel's `bpf_ctx_convert`):
    // the context layout's, except where the layout describes something else; none where
    // the context is not a named struct.
    let ctx_names: &[&str] = match v.prog.prog_type {
        ProgType::Kprobe => &["bpf_user_pt_regs_t", "pt_regs"],
        ProgType::RawTracepoint | ProgType::RawTracepointWritable => &["bpf_raw_tracepoint_args"],
        ProgType::PerfEvent => &["bpf_perf_event_data"],
        ProgType::Tracepoint
        | ProgType::Tracing
        | ProgType::Lsm
        | ProgType::StructOps
        | ProgType::Ext
        | ProgType::Syscall
        | ProgType::LircMode2
        | ProgType::Unspec => &[],
        t => {
            bpflab_vm::ctx::layout::layout(t).map(|l| std::slice::from_ref(&l.name)).unwrap_or(&[])
        }
    };
    let ctx_name = ctx_names.first().copied();
    let prog_type = v.prog.prog_type;
    let attach_type = v.prog.expected_attach_type;
    let btf = btf(v, insn)?;
    let bad = |what: String| Stop::unsupported(insn, format!("global function prototype: {what}"));
    let Some(type_id) = type_id else { return Err(bad("no func info".into())) };
    let Ok(T::Func { name_off, type_id: proto_id, .. }) = btf.type_by_id(type_id) else {
        return Err(bad(format!("type {type_id} is not a FUNC")));
    };
    let name = btf.string_at(*name_off).unwrap_or("").to_string();
    let Ok(T::FuncProto { ret_type, params }) = btf.type_by_id(*proto_id) else {
        return Err(bad(format!("{name}: no FUNC_PROTO")));
    };
    if params.len() > 5 {
        return Ok(Err(format!(
            "Global function {name}() with {} > 5 args. Buggy compiler.",
            params.len()
        )));
    }
    let skip = |id: u32| btf.skip_mods_and_typedefs(id).map_err(|e| bad(e.to_string()));
    let ret = skip(*ret_type)?;
    if !matches!(btf.type_by_id(ret), Ok(T::Int(_) | T::Enum(_) | T::Enum64(_))) {
        return Ok(Err(format!(
            "Global function {name}() doesn't return scalar. Only those are supported."
        )));
    }
    // `arg:` decl tags per parameter: bpflab models `ctx` and `nonnull`.
    let mut tags: Vec<(usize, &str)> = Vec::new();
    for (_, t) in btf.types() {
        if let T::DeclTag { type_id: tid, name_off, component_idx } = t
            && *tid == type_id
            && let Ok(tag) = btf.string_at(*name_off)
            && let Some(tag) = tag.strip_prefix("arg:")
        {
            match (usize::try_from(*component_idx), tag) {
                (Ok(i), "ctx" | "nonnull") => tags.push((i, tag)),
                _ => return Err(bad(format!("{name}: arg:{tag} decl tag"))),
            }
        }
    }
    let mut args = Vec::with_capacity(params.len());
    for (i, p) in params.iter().enumerate() {
        let t = skip(p.type_id)?;
        let tag_ctx = tags.contains(&(i, "ctx"));
        let tag_nonnull = tags.contains(&(i, "nonnull"));
        if tag_ctx && tag_nonnull {
            return Ok(Err(format!("arg#{i} has invalid combination of tags")));
        }
        let is_ptr = matches!(btf.type_by_id(t), Ok(T::Ptr { .. }));
        if (tag_ctx || tag_nonnull) && !is_ptr {
            return Ok(Err(format!("arg#{i} has pointer tag, but is not a pointer type")));
        }
        match btf.type_by_id(t) {
            Ok(T::Int(_) | T::Enum(_) | T::Enum64(_)) => args.push(GlobalArg::Scalar),
            Ok(T::Ptr { type_id: 0 }) if tag_ctx => args.push(GlobalArg::Ctx),
            Ok(T::Ptr { type_id: pointee }) => {
                // Kprobe programs may name their context by its typedef.
                let typedef_ctx = matches!(prog_type, ProgType::Kprobe | ProgType::PerfEvent)
                    && (tag_ctx || prog_type == ProgType::Kprobe)
                    && matches!(btf.type_by_id(*pointee), Ok(T::Typedef { name_off, .. })
                        if btf.string_at(*name_off).ok() == Some("bpf_user_pt_regs_t"));
                let target = skip(*pointee)?;
                let tname = btf
                    .type_by_id(target)
                    .ok()
                    .map(|t| t.name_off())
                    .and_then(|o| btf.string_at(o).ok());
                let is_struct = matches!(btf.type_by_id(target), Ok(T::Struct(_)));
                let void_ptr = matches!(btf.type_by_id(target), Ok(T::Void));
                let named_ctx = is_struct && tname.is_some_and(|n| ctx_names.contains(&n));
                if typedef_ctx || named_ctx || (tag_ctx && void_ptr) {
                    args.push(GlobalArg::Ctx);
                } else if tag_ctx {
                    // btf_validate_prog_ctx_type.
                    use bpflab_vm::ctx::layout::attach as a;
                    let int8 = matches!(btf.type_by_id(target), Ok(T::Int(n)) if n.size == 8);
                    let named = |n: &str| is_struct && tname == Some(n);
                    let ok = match prog_type {
                        ProgType::Kprobe | ProgType::PerfEvent => named("pt_regs"),
                        ProgType::RawTracepoint | ProgType::RawTracepointWritable => int8,
                        ProgType::Tracing => match attach_type.unwrap_or(0) {
                            a::TRACE_RAW_TP => named("bpf_raw_tracepoint_args") || int8,
                            TRACE_ITER => {
                                is_struct && tname.is_some_and(|n| n.starts_with("bpf_iter__"))
                            }
                            a::TRACE_FENTRY | a::TRACE_FEXIT | a::MODIFY_RETURN => int8,
                            _ => false,
                        },
                        ProgType::Lsm | ProgType::StructOps => int8,
                        ProgType::Tracepoint | ProgType::Syscall | ProgType::Ext => true,
                        _ => false,
                    };
                    let canonical = match prog_type {
                        ProgType::RawTracepoint | ProgType::RawTracepointWritable => {
                            Some("bpf_raw_tracepoint_args")
                        }
                        ProgType::Kprobe => Some("pt_regs"),
                        ProgType::Tracing | ProgType::Lsm | ProgType::StructOps => None,
                        _ => ctx_name.filter(|n| !n.contains(' ') && *n != "args"),
                    };
                    match canonical {
                        _ if ok => args.push(GlobalArg::Ctx),
                        Some(c) if named(c) => args.push(GlobalArg::Ctx),
                        Some(c) => return Ok(Err(format!("arg#{i} should be `struct {c} *`"))),
                        None => return Ok(Err(format!("arg#{i} should be void pointer"))),
                    }
                } else if tname == Some("bpf_dynptr") {
                    args.push(GlobalArg::Dynptr);
                } else {
                    let kind = btf.type_by_id(target).map(|t| t.kind());
                    let no_size = matches!(
                        kind,
                        Ok(bpflab_btf::BtfKind::Void
                            | bpflab_btf::BtfKind::Fwd
                            | bpflab_btf::BtfKind::Func
                            | bpflab_btf::BtfKind::FuncProto)
                    );
                    if let (true, Ok(k)) = (no_size, kind) {
                        // btf_resolve_size fails (-EINVAL) with the kernel's kind names.
                        let kname = match k {
                            bpflab_btf::BtfKind::Void => "UNKN".to_string(),
                            k => k.as_str().to_ascii_uppercase(),
                        };
                        return Ok(Err(format!(
                            "arg#{i} reference type('{kname} {}') size cannot be determined: -22",
                            tname.unwrap_or("")
                        )));
                    }
                    let size = btf
                        .size_of(target)
                        .map_err(|_| bad(format!("{name}: size of argument #{i}")))?;
                    args.push(GlobalArg::Mem { size, nullable: !tag_nonnull });
                }
            }
            _ => return Err(bad(format!("{name}: argument #{i} type"))),
        }
    }
    Ok(Ok(GlobalFn { name, args }))
}

/// A call of global function `sub`: the arguments checked against its prototype, which the
/// kernel verifies once on its own; r0 is an unknown scalar (`check_func_call`).
fn call_global(
    v: &mut Verifier<'_>,
    st: &mut State,
    insn: usize,
    sub: usize,
) -> Result<usize, Stop> {
    let gf = global_fn(v, insn, sub)?;
    let start = v.cfg.subprogs[sub].start;
    let name = match &gf {
        Ok(g) => g.name.clone(),
        Err(_) => {
            let t =
                v.prog.func_info.iter().find(|f| f.0 as usize == start).map(|f| f.1).unwrap_or(0);
            let btf = btf(v, insn)?;
            btf.type_by_id(t)
                .ok()
                .and_then(|t| btf.string_at(t.name_off()).ok())
                .unwrap_or("")
                .to_string()
        }
    };
    let invalid = |v: &mut Verifier<'_>, line: &str| {
        v.log.text.push_str(line);
        v.log.text.push('\n');
        reject(insn, format!("Caller passes invalid args into func#{sub} ('{name}')"))
    };
    let gf = match gf {
        Ok(g) => g,
        Err(line) => return Err(invalid(v, &line)),
    };
    for (i, a) in gf.args.iter().enumerate() {
        let regno = i + 1;
        let reg = *st.reg(regno);
        let checked = match a {
            GlobalArg::Scalar => {
                if reg.is_scalar() {
                    Ok(())
                } else {
                    Err(format!("R{regno} is not a scalar"))
                }
            }
            GlobalArg::Ctx => match check_global_off(st, insn, regno, &reg) {
                Err(e) => Err(e),
                Ok(()) if reg.kind() != Some(PtrKind::Ctx) => {
                    Err(format!("arg#{i} expects pointer to ctx"))
                }
                Ok(()) => Ok(()),
            },
            GlobalArg::Mem { size, nullable } => {
                let r = check_global_off(st, insn, regno, &reg);
                if r.is_err() || is_null(&reg) {
                    r
                } else if !nullable && reg.maybe_null {
                    Err(format!("arg#{i} is expected to be non-NULL"))
                } else {
                    let mut probe = st.clone();
                    probe.reg_mut(regno).maybe_null = false;
                    let sz = Scalar::konst(u64::from(*size));
                    // check_mem_reg: the callee may read and write it.
                    let r = helper_mem(v, &mut probe, insn, regno, &sz, false, true, None)
                        .and_then(|()| {
                            helper_mem(v, &mut probe, insn, regno, &sz, true, true, None)
                        });
                    match r {
                        Err(Stop::Reject(e)) => Err(e.message),
                        Err(u) => return Err(u),
                        Ok(()) => Ok(()),
                    }
                }
            }
            GlobalArg::Dynptr => crate::dynptr::check_global_arg(st, regno),
        };
        if let Err(line) = checked {
            return Err(invalid(v, &line));
        }
    }
    if v.config.log_level > 0 {
        v.log.text.push_str(&format!("Func#{sub} ('{}') is global and assumed valid.\n", gf.name));
    }
    if subprog_changes_pkt_data(v, sub) {
        let privileged = v.config.privileged;
        let non_pkt = crate::dynptr::non_pkt_dynptr_ids(st);
        st.for_each_reg(|r| {
            if r.kind().is_some_and(|k| k.is_pkt() || k == PtrKind::PacketEnd)
                || crate::dynptr::is_pkt_slice(r, &non_pkt)
            {
                *r = invalid_reg(privileged);
            }
        });
    }
    for r in 0..=5 {
        *st.reg_mut(r) = Reg::NOT_INIT;
    }
    *st.reg_mut(0) = Reg::unknown();
    if !v.calls.globals_called.contains(&sub) {
        v.calls.globals_called.push(sub);
    }
    Ok(insn + 1)
}

/// `check_func_arg_reg_off` for a global function's argument, as the kernel's line.
fn check_global_off(st: &State, insn: usize, regno: usize, reg: &Reg) -> Result<(), String> {
    match check_reg_off(st, insn, regno, Arg::Anything, reg) {
        Err(Stop::Reject(e)) => Err(e.message),
        _ => Ok(()),
    }
}

/// Whether subprogram `sub`, or one it calls, calls a helper that moves packet data.
fn subprog_changes_pkt_data(v: &Verifier<'_>, sub: usize) -> bool {
    let mut seen = vec![sub];
    let mut todo = vec![sub];
    while let Some(s) = todo.pop() {
        let info = &v.cfg.subprogs[s];
        let mut slot = info.start;
        while slot < info.end {
            let Some(ins) = v.insn_at(slot) else {
                slot += 1;
                continue;
            };
            match *ins {
                Insn::Call { kind: CallKind::Helper, imm, .. } if changes_pkt_data(imm) => {
                    return true;
                }
                Insn::Call { kind: CallKind::Local, imm, .. } => {
                    let t = slot as i64 + 1 + i64::from(imm);
                    if let Some(c) = usize::try_from(t).ok().and_then(|t| subprog_at(v, t))
                        && !seen.contains(&c)
                    {
                        seen.push(c);
                        todo.push(c);
                    }
                }
                _ => {}
            }
            slot += ins.slots();
        }
    }
    false
}

/// Verifies every called global function on its own, from the state its prototype gives
/// (`do_check_subprogs`), until no new one is called.
fn verify_globals(v: &mut Verifier<'_>) -> Result<(), Stop> {
    let mut done: Vec<usize> = Vec::new();
    loop {
        let mut new = 0;
        for sub in 1..v.cfg.subprogs.len() {
            if !v.calls.globals_called.contains(&sub) || done.contains(&sub) {
                continue;
            }
            let start = v.cfg.subprogs[sub].start;
            let gf = match global_fn(v, start, sub)? {
                Ok(g) => g,
                Err(line) => return Err(reject(start, line)),
            };
            if v.config.log_level > 0 {
                v.log.text.push_str(&format!("Validating {}() func#{sub}...\n", gf.name));
            }
            let mut entry = State::entry(Reg::NOT_INIT);
            entry.frames[0].subprog = sub;
            for (i, a) in gf.args.iter().enumerate() {
                entry.frames[0].regs[i + 1] = match a {
                    GlobalArg::Scalar => Reg::unknown(),
                    GlobalArg::Ctx => Reg::ptr(PtrKind::Ctx),
                    GlobalArg::Mem { size, nullable: false } => {
                        Reg { mem_size: *size, ..Reg::ptr(PtrKind::Mem) }
                    }
                    GlobalArg::Mem { size, nullable: true } => Reg {
                        mem_size: *size,
                        maybe_null: true,
                        id: v.new_id(),
                        ..Reg::ptr(PtrKind::Mem)
                    },
                    GlobalArg::Dynptr => crate::dynptr::const_dynptr(v),
                };
            }
            v.walk_from(entry, start)?;
            if v.config.log_level > 0 {
                v.log.text.push_str(&format!(
                    "Func#{sub} ('{}') is safe for any args that match its prototype\n",
                    gf.name
                ));
            }
            done.push(sub);
            new += 1;
        }
        if new == 0 {
            return Ok(());
        }
    }
}

/// Exit checks common to every frame: locks, RCU sections and references (`BPF_EXIT` in
/// `do_check`, before the frame is left).
fn exit_resource_checks(v: &mut Verifier<'_>, st: &State, insn: usize) -> Result<(), Stop> {
    let main = st.frames.len() == 1;
    const PREFIX: &str = "BPF_EXIT instruction in main prog";
    if main && st.lock.is_some() {
        return Err(reject(
            insn,
            format!("{PREFIX} cannot be used inside bpf_spin_lock-ed region"),
        ));
    }
    let frame = st.cur();
    let leaked = if main {
        st.refs.first()
    } else if frame.callback_of.is_some() {
        // A callback must release what it acquired itself.
        st.refs.iter().find(|r| r.callback_ref == frame.frameno)
    } else {
        None
    };
    if let Some(r) = leaked.copied() {
        note_unreleased(v, &r);
        return Err(reject(insn, format!("{PREFIX} would lead to reference leak")));
    }
    if main && st.rcu_lock > 0 {
        return Err(reject(
            insn,
            format!("{PREFIX} cannot be used inside bpf_rcu_read_lock-ed region"),
        ));
    }
    if main && st.preempt_off > 0 {
        return Err(reject(
            insn,
            format!("{PREFIX} cannot be used inside bpf_preempt_disable-ed region"),
        ));
    }
    Ok(())
}

/// Logs the kernel's line naming a leaked reference, which precedes the error.
fn note_unreleased(v: &mut Verifier<'_>, r: &RefState) {
    v.log.text.push_str(&format!("Unreleased reference id={} alloc_insn={}\n", r.id, r.insn));
}

/// Returns from a subprogram or callback frame; gives the slot where the caller continues.
pub(crate) fn return_from_func(
    v: &mut Verifier<'_>,
    st: &mut State,
    insn: usize,
) -> Result<usize, Stop> {
    exit_resource_checks(v, st, insn)?;
    let callee = st.cur().clone();
    let r0 = callee.regs[0];
    if r0.kind() == Some(PtrKind::Stack) {
        return Err(reject(insn, "cannot return stack pointer to the caller"));
    }
    if let Some(cs) = callee.callback_of {
        if !r0.is_scalar() {
            return Err(reject(insn, "R0 not a scalar value"));
        }
        let func = match v.insn_at(cs) {
            Some(Insn::Call { kind: CallKind::Helper, imm, .. }) => *imm,
            _ => {
                return Err(reject(
                    insn,
                    format!("BUG: in callback at {insn}, callsite {cs} !calls_callback"),
                ));
            }
        };
        let ((min, max), _) = callback_of(func).unwrap_or(((0, 1), false));
        if r0.var.smin < min || r0.var.smax > max {
            return Err(reject(
                insn,
                invalid_scalar("At callback return", "R0", &r0.var, min, max),
            ));
        }
        st.frames.pop();
        if let Some(prev) = v.prev_entry(st, cs) {
            let prev = prev.clone();
            widen_scalars(&prev, st);
        }
        return Ok(cs);
    }
    st.frames.pop();
    *st.reg_mut(0) = r0;
    Ok(callee.callsite + 1)
}

/// Makes unknown the scalars of `cur` that differ from the same register or spilled slot
/// in `old`, the state at the callback's call site on the same path
/// (`widen_imprecise_scalars`): callback iterations then converge. bpflab does not track
/// precision per path, so it keeps scalars that are constants in both states (loop
/// counters, which the kernel keeps when they are precise) and widens the others.
fn widen_scalars(old: &State, cur: &mut State) {
    let widen = |o: &Reg, c: &mut Reg| {
        if o.is_scalar()
            && c.is_scalar()
            && o.var != c.var
            && !(o.var.is_const() && c.var.is_const())
        {
            *c = Reg::unknown();
        }
    };
    for (fo, fc) in old.frames.iter().zip(cur.frames.iter_mut()) {
        for (ro, rc) in fo.regs.iter().zip(fc.regs.iter_mut()) {
            widen(ro, rc);
        }
        for (so, sc) in fo.stack.iter().zip(fc.stack.iter_mut()) {
            if so.is_full_spill() && sc.is_full_spill() {
                widen(&so.spilled, &mut sc.spilled);
            }
        }
    }
}

/// The kernel's message for a return value out of range (`verbose_invalid_scalar`).
fn invalid_scalar(ctx: &str, reg: &str, s: &Scalar, min: i64, max: i64) -> String {
    let mut m = format!("{ctx} the register {reg} has");
    let mut unknown = true;
    if s.smin > i64::MIN {
        m.push_str(&format!(" smin={}", s.smin));
        unknown = false;
    }
    if s.smax < i64::MAX {
        m.push_str(&format!(" smax={}", s.smax));
        unknown = false;
    }
    if unknown {
        m.push_str(" unknown scalar value");
    }
    m.push_str(&format!(" should have been in [{min}, {max}]"));
    m
}

/// Checks the main program's exit: r0 initialised and in the program type's range, no
/// reference or lock held.
pub(crate) fn check_exit(v: &mut Verifier<'_>, st: &mut State, insn: usize) -> Result<(), Stop> {
    exit_resource_checks(v, st, insn)?;
    let is_async = st.cur().callback_of.is_some();
    let rule = if is_async {
        RetRule::Range(0, 0)
    } else {
        return_rule(v.prog.prog_type, v.prog.expected_attach_type)
    };
    let is_subprog = st.cur().subprog != 0 && !is_async;
    let exit_ctx = if is_async { "At async callback return" } else { "At program exit" };
    if let (RetRule::Unknown(what), false) = (rule, is_subprog) {
        return Err(Stop::unsupported(insn, format!("return value rules of {what}")));
    }
    let r0 = *st.reg(0);
    if !r0.is_init() {
        return Err(reject(insn, "R0 !read_ok"));
    }
    if r0.is_ptr() && !v.config.privileged {
        return Err(reject(insn, "R0 leaks addr as return value"));
    }
    if is_subprog {
        if !r0.is_scalar() {
            return Err(reject(
                insn,
                format!(
                    "At subprogram exit the register R0 is not a scalar value ({})",
                    type_str(st, &r0)
                ),
            ));
        }
        return Ok(());
    }
    if let RetRule::Range(min, max) = rule {
        if !r0.is_scalar() {
            return Err(reject(
                insn,
                format!("{exit_ctx} the register R0 is not a known value ({})", type_str(st, &r0)),
            ));
        }
        if r0.var.smin < min || r0.var.smax > max {
            return Err(reject(insn, invalid_scalar(exit_ctx, "R0", &r0.var, min, max)));
        }
    }
    Ok(())
}

/// Checks made once the walk has accepted every path: the stack of every call chain
/// (`check_max_stack_depth`).
pub(crate) fn after_walk(v: &mut Verifier<'_>) -> Result<(), Stop> {
    verify_globals(v)?;
    check_max_stack_depth(v)
}

/// The subprogram index of slot `start`.
fn subprog_at(v: &Verifier<'_>, start: usize) -> Option<usize> {
    v.cfg.subprogs.iter().position(|s| s.start == start)
}

/// Whether the kernel gives this program's subprograms private stacks when they are large
/// (`bpf_enable_priv_stack` with a JIT that supports it, as x86-64's does).
fn priv_stack(v: &Verifier<'_>) -> bool {
    if v.cfg.subprogs.iter().any(|s| s.has_tail_call) {
        return false;
    }
    matches!(
        v.prog.prog_type,
        ProgType::Kprobe | ProgType::Tracepoint | ProgType::PerfEvent | ProgType::RawTracepoint
    )
}

/// Rounds a subprogram's stack as the JIT allocates it (`round_up_stack_depth`).
fn round_stack(depth: u32) -> u32 {
    depth.div_ceil(16) * 16
}

/// The combined stack along every chain of calls, and tail calls under deep stacks
/// (`check_max_stack_depth`).
fn check_max_stack_depth(v: &Verifier<'_>) -> Result<(), Stop> {
    let priv_ok = priv_stack(v);
    let mut roots = vec![0usize];
    for s in &v.calls.async_cb {
        if let Some(i) = subprog_at(v, *s) {
            roots.push(i);
        }
    }
    for root in roots {
        let priv_ok = priv_ok && root == 0;
        walk_stack(v, root, 0, 0, priv_ok)?;
    }
    Ok(())
}

/// One subprogram of the stack walk, entered at `frame` with `depth` bytes below it.
fn walk_stack(
    v: &Verifier<'_>,
    idx: usize,
    frame: usize,
    depth: u32,
    priv_ok: bool,
) -> Result<(), Stop> {
    let sub = &v.cfg.subprogs[idx];
    if idx != 0 && sub.has_tail_call && depth >= 256 {
        return Err(reject(
            sub.start,
            format!(
                "tail_calls are not allowed when call stack of previous frames is {depth} bytes. Too large"
            ),
        ));
    }
    let own = round_stack(v.stack_depth.get(idx).copied().unwrap_or(0));
    let depth = if priv_ok && own >= PRIV_STACK_MIN_SIZE {
        if own > MAX_BPF_STACK {
            return Err(reject(
                sub.start,
                format!("stack size of subprog {idx} is {own}. Too large"),
            ));
        }
        depth
    } else {
        let d = depth + own;
        if d > MAX_BPF_STACK {
            return Err(reject(
                sub.start,
                format!("combined stack size of {} calls is {d}. Too large", frame + 1),
            ));
        }
        d
    };
    let mut slot = sub.start;
    while slot < sub.end {
        let Some(ins) = v.insn_at(slot) else {
            slot += 1;
            continue;
        };
        let target = match *ins {
            Insn::Call { kind: CallKind::Local, imm, .. } => {
                Some((slot as i64 + 1 + i64::from(imm), true))
            }
            Insn::LdImm64 { src: PseudoSrc::Func, imm, .. } => {
                Some((slot as i64 + 1 + i64::from(imm), false))
            }
            _ => None,
        };
        slot += ins.slots();
        let Some((t, direct)) = target else { continue };
        let Some(callee) = usize::try_from(t).ok().and_then(|t| subprog_at(v, t)) else { continue };
        if v.calls.async_cb.contains(&v.cfg.subprogs[callee].start) && !direct {
            continue;
        }
        if frame + 1 >= v.config.max_frames {
            return Err(reject(
                slot,
                format!("the call stack of {} frames is too deep !", frame + 1),
            ));
        }
        walk_stack(v, callee, frame + 1, depth, priv_ok)?;
    }
    Ok(())
}
