//! The prototypes of the kernel helpers bpflab does not implement: id, name, return and
//! argument types, GPL flag and the program types the kernel offers each to. The verifier
//! checks calls against them ([`crate::helpers::HelperRegistry::proto`]); engines never run
//! them (a call faults with `UnknownHelper`, as for any id without an implementation).
//!
//! The types and GPL flags are the kernel's `struct bpf_func_proto` (the main variant, named
//! `bpf_<helper>_proto`; `vm/tests/kernel_protos.rs` compares them with linux-source-6.12).
//! The program types are the `*_func_proto` switches of net/core/filter.c,
//! kernel/trace/bpf_trace.c, kernel/bpf/{helpers,cgroup,bpf_lsm,syscall}.c and
//! net/ipv4/bpf_tcp_ca.c, with what 6.18 moved into `bpf_base_func_proto` (every program
//! type: [`Allowed::All`]); `kernel/tests/helper_types_vs_kernel.rs` checks them against the
//! running kernel for every type it can probe. Where the kernel narrows a helper further by
//! attach type (`bpf_get_retval` not for cgroup_skb ingress/egress, sock_ops or
//! recvmsg/getpeername/getsockname hooks; the `bpf_seq_*` helpers only for iterators; the
//! cgroup helpers in LSM programs only for `BPF_LSM_CGROUP`), the type is listed: the
//! verifier's per-type check cannot see the attach type. Freplace (`Ext`) programs are listed
//! with the tracing types, as the implemented tracing helpers list them.

use crate::engine::ProgType;
use crate::helpers::{Allowed, ArgType, HelperProto, RetType};

use ArgType::{
    Anything, ConstMapPtr, ConstSize, ConstSizeOrZero, PtrToBtfId, PtrToBtfIdOrNull,
    PtrToBtfIdSockCommon, PtrToCtx, PtrToFunc, PtrToKptr, PtrToLong, PtrToMapKey, PtrToMem,
    PtrToMemOrNull, PtrToPercpuBtfId, PtrToSocket, PtrToStackOrNull, PtrToUninitMem,
};
use ProgType::{
    CgroupDevice, CgroupSkb, CgroupSock, CgroupSockAddr, CgroupSockopt, CgroupSysctl, Ext,
    FlowDissector, Kprobe, LircMode2, Lsm, LwtIn, LwtOut, LwtSeg6local, LwtXmit, PerfEvent,
    RawTracepoint, RawTracepointWritable, SchedAct, SchedCls, SkLookup, SkMsg, SkReuseport, SkSkb,
    SockOps, SocketFilter, StructOps, Syscall, Tracepoint, Tracing, Xdp,
};

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

/// `bpf_tracing_func_proto`'s users: kprobe, tracepoint, perf_event and raw tracepoint
/// programs, and through `tracing_prog_func_proto` BTF tracing, LSM and syscall programs.
const TRACING: Allowed = Allowed::Only(&[
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
/// `tracing_prog_func_proto` alone: BTF tracing programs, LSM programs (their default) and
/// syscall programs (theirs).
const BTF_TRACING: Allowed = Allowed::Only(&[Tracing, Lsm, Syscall, Ext]);
/// The `bpf_seq_*` helpers: BPF iterators (`Tracing` with attach type `BPF_TRACE_ITER`).
const ITER: Allowed = Allowed::Only(&[Tracing, Ext]);
/// `bpf_sk_base_func_proto` (the networking types) and `tracing_prog_func_proto`: the
/// `bpf_skc_to_*` casts.
const SK_BASE: Allowed = Allowed::Only(&[
    SocketFilter,
    SchedCls,
    SchedAct,
    Xdp,
    CgroupSkb,
    LwtIn,
    LwtOut,
    LwtXmit,
    SockOps,
    SkSkb,
    SkMsg,
    CgroupSockAddr,
    LwtSeg6local,
    FlowDissector,
    Tracing,
    Lsm,
    SkLookup,
    Syscall,
    Ext,
]);
/// `cgroup_common_func_proto`'s users: the cgroup program types and `BPF_LSM_CGROUP`.
const CGROUP_COMMON: Allowed = Allowed::Only(&[
    CgroupSkb,
    CgroupSock,
    SockOps,
    CgroupDevice,
    CgroupSockAddr,
    CgroupSysctl,
    CgroupSockopt,
    Lsm,
]);
/// `bpf_get_retval`/`bpf_set_retval`: [`CGROUP_COMMON`] but for the attach types that refuse
/// them (every cgroup_skb and sock_ops one).
const RETVAL: Allowed =
    Allowed::Only(&[CgroupSock, CgroupDevice, CgroupSockAddr, CgroupSysctl, CgroupSockopt, Lsm]);
/// `tc_cls_act_func_proto` and `cg_skb_func_proto`.
const TC_CG_SKB: Allowed = Allowed::Only(&[SchedCls, SchedAct, CgroupSkb]);
/// The lightweight-tunnel types and tc (`bpf_skb_under_cgroup`).
const TC_LWT: Allowed = Allowed::Only(&[SchedCls, SchedAct, LwtIn, LwtOut, LwtXmit, LwtSeg6local]);
const SYSCALL: Allowed = Allowed::Only(&[Syscall]);
const LSM: Allowed = Allowed::Only(&[Lsm]);
const LIRC: Allowed = Allowed::Only(&[LircMode2]);
const PERF_EVENT: Allowed = Allowed::Only(&[PerfEvent]);
const SYSCTL: Allowed = Allowed::Only(&[CgroupSysctl]);
const SOCK_OPS: Allowed = Allowed::Only(&[SockOps]);
const SEG6LOCAL: Allowed = Allowed::Only(&[LwtSeg6local]);
const ALL: Allowed = Allowed::All;

use RetType::{
    Integer, PtrToBtfIdOrNull as BtfOrNull, PtrToMapValue, PtrToMemOrBtfId, PtrToMemOrBtfIdOrNull,
};

/// Every kernel helper bpflab does not implement, in id order.
pub(crate) const PROTOS: &[HelperProto] = &[
    proto(22, "bpf_perf_event_read", Integer, &[ConstMapPtr, Anything], true, ALL),
    proto(27, "bpf_get_stackid", Integer, &[PtrToCtx, ConstMapPtr, Anything], true, TRACING),
    proto(33, "bpf_skb_under_cgroup", Integer, &[PtrToCtx, ConstMapPtr, Anything], false, TC_LWT),
    proto(36, "bpf_probe_write_user", Integer, &[Anything, PtrToMem, ConstSize], true, TRACING),
    proto(37, "bpf_current_task_under_cgroup", Integer, &[ConstMapPtr, Anything], false, ALL),
    proto(
        55,
        "bpf_perf_event_read_value",
        Integer,
        &[ConstMapPtr, Anything, PtrToUninitMem, ConstSize],
        true,
        ALL,
    ),
    proto(
        56,
        "bpf_perf_prog_read_value",
        Integer,
        &[PtrToCtx, PtrToUninitMem, ConstSize],
        true,
        PERF_EVENT,
    ),
    proto(
        58,
        "bpf_override_return",
        Integer,
        &[PtrToCtx, Anything],
        true,
        Allowed::Only(&[Kprobe]),
    ),
    proto(
        64,
        "bpf_bind",
        Integer,
        &[PtrToCtx, PtrToMem, ConstSize],
        false,
        Allowed::Only(&[CgroupSockAddr]),
    ),
    proto(
        67,
        "bpf_get_stack",
        Integer,
        &[PtrToCtx, PtrToUninitMem, ConstSizeOrZero, Anything],
        true,
        TRACING,
    ),
    proto(
        73,
        "bpf_lwt_push_encap",
        Integer,
        &[PtrToCtx, Anything, PtrToMem, ConstSize],
        false,
        Allowed::Only(&[LwtIn, LwtXmit]),
    ),
    proto(
        74,
        "bpf_lwt_seg6_store_bytes",
        Integer,
        &[PtrToCtx, Anything, PtrToMem, ConstSize],
        false,
        SEG6LOCAL,
    ),
    proto(
        75,
        "bpf_lwt_seg6_adjust_srh",
        Integer,
        &[PtrToCtx, Anything, Anything],
        false,
        SEG6LOCAL,
    ),
    proto(
        76,
        "bpf_lwt_seg6_action",
        Integer,
        &[PtrToCtx, Anything, PtrToMem, ConstSize],
        false,
        SEG6LOCAL,
    ),
    // drivers/media/rc/bpf-lirc.c (`rc_*_proto`: GPL-only, as the rc core's exports are).
    proto(77, "bpf_rc_repeat", Integer, &[PtrToCtx], true, LIRC),
    proto(78, "bpf_rc_keydown", Integer, &[PtrToCtx, Anything, Anything, Anything], true, LIRC),
    proto(79, "bpf_skb_cgroup_id", Integer, &[PtrToCtx], false, TC_CG_SKB),
    proto(80, "bpf_get_current_cgroup_id", Integer, &[], false, ALL),
    proto(
        81,
        "bpf_get_local_storage",
        PtrToMapValue,
        &[ConstMapPtr, Anything],
        false,
        CGROUP_COMMON,
    ),
    proto(
        82,
        "bpf_sk_select_reuseport",
        Integer,
        &[PtrToCtx, ConstMapPtr, PtrToMapKey, Anything],
        false,
        Allowed::Only(&[SkReuseport]),
    ),
    proto(83, "bpf_skb_ancestor_cgroup_id", Integer, &[PtrToCtx, Anything], false, TC_CG_SKB),
    proto(92, "bpf_rc_pointer_rel", Integer, &[PtrToCtx, Anything, Anything], true, LIRC),
    proto(
        101,
        "bpf_sysctl_get_name",
        Integer,
        &[PtrToCtx, PtrToMem, ConstSize, Anything],
        false,
        SYSCTL,
    ),
    proto(
        102,
        "bpf_sysctl_get_current_value",
        Integer,
        &[PtrToCtx, PtrToUninitMem, ConstSize],
        false,
        SYSCTL,
    ),
    proto(
        103,
        "bpf_sysctl_get_new_value",
        Integer,
        &[PtrToCtx, PtrToUninitMem, ConstSize],
        false,
        SYSCTL,
    ),
    proto(
        104,
        "bpf_sysctl_set_new_value",
        Integer,
        &[PtrToCtx, PtrToMem, ConstSize],
        false,
        SYSCTL,
    ),
    proto(109, "bpf_send_signal", Integer, &[Anything], false, ALL),
    proto(
        111,
        "bpf_skb_output",
        Integer,
        &[PtrToBtfId, ConstMapPtr, Anything, PtrToMem, ConstSizeOrZero],
        true,
        BTF_TRACING,
    ),
    proto(
        116,
        "bpf_tcp_send_ack",
        Integer,
        &[PtrToBtfId, Anything],
        false,
        Allowed::Only(&[StructOps]),
    ),
    proto(117, "bpf_send_signal_thread", Integer, &[Anything], false, ALL),
    proto(
        119,
        "bpf_read_branch_records",
        Integer,
        &[PtrToCtx, PtrToMemOrNull, ConstSizeOrZero, Anything],
        true,
        PERF_EVENT,
    ),
    proto(
        120,
        "bpf_get_ns_current_pid_tgid",
        Integer,
        &[Anything, Anything, PtrToUninitMem, ConstSize],
        false,
        ALL,
    ),
    proto(
        121,
        "bpf_xdp_output",
        Integer,
        &[PtrToBtfId, ConstMapPtr, Anything, PtrToMem, ConstSizeOrZero],
        true,
        BTF_TRACING,
    ),
    proto(123, "bpf_get_current_ancestor_cgroup_id", Integer, &[Anything], false, ALL),
    proto(
        126,
        "bpf_seq_printf",
        Integer,
        &[PtrToBtfId, PtrToMem, ConstSize, PtrToMemOrNull, ConstSizeOrZero],
        true,
        ITER,
    ),
    proto(127, "bpf_seq_write", Integer, &[PtrToBtfId, PtrToMem, ConstSizeOrZero], true, ITER),
    proto(
        128,
        "bpf_sk_cgroup_id",
        Integer,
        &[PtrToBtfIdSockCommon],
        false,
        Allowed::Only(&[CgroupSkb]),
    ),
    proto(
        129,
        "bpf_sk_ancestor_cgroup_id",
        Integer,
        &[PtrToBtfIdSockCommon, Anything],
        false,
        Allowed::Only(&[CgroupSkb]),
    ),
    proto(136, "bpf_skc_to_tcp6_sock", BtfOrNull, &[PtrToBtfIdSockCommon], false, SK_BASE),
    proto(137, "bpf_skc_to_tcp_sock", BtfOrNull, &[PtrToBtfIdSockCommon], false, SK_BASE),
    proto(138, "bpf_skc_to_tcp_timewait_sock", BtfOrNull, &[PtrToBtfIdSockCommon], false, SK_BASE),
    proto(139, "bpf_skc_to_tcp_request_sock", BtfOrNull, &[PtrToBtfIdSockCommon], false, SK_BASE),
    proto(140, "bpf_skc_to_udp6_sock", BtfOrNull, &[PtrToBtfIdSockCommon], false, SK_BASE),
    proto(
        141,
        "bpf_get_task_stack",
        Integer,
        &[PtrToBtfId, PtrToUninitMem, ConstSizeOrZero, Anything],
        false,
        ALL,
    ),
    proto(
        142,
        "bpf_load_hdr_opt",
        Integer,
        &[PtrToCtx, PtrToMem, ConstSize, Anything],
        false,
        SOCK_OPS,
    ),
    proto(
        143,
        "bpf_store_hdr_opt",
        Integer,
        &[PtrToCtx, PtrToMem, ConstSize, Anything],
        false,
        SOCK_OPS,
    ),
    proto(144, "bpf_reserve_hdr_opt", Integer, &[PtrToCtx, Anything, Anything], false, SOCK_OPS),
    proto(147, "bpf_d_path", Integer, &[PtrToBtfId, PtrToMem, ConstSizeOrZero], false, BTF_TRACING),
    proto(
        148,
        "bpf_copy_from_user",
        Integer,
        &[PtrToUninitMem, ConstSizeOrZero, Anything],
        false,
        ALL,
    ),
    proto(
        149,
        "bpf_snprintf_btf",
        Integer,
        &[PtrToMem, ConstSize, PtrToMem, ConstSize, Anything],
        false,
        ALL,
    ),
    proto(
        150,
        "bpf_seq_printf_btf",
        Integer,
        &[PtrToBtfId, PtrToMem, ConstSizeOrZero, Anything],
        true,
        ITER,
    ),
    proto(153, "bpf_per_cpu_ptr", PtrToMemOrBtfIdOrNull, &[PtrToPercpuBtfId, Anything], false, ALL),
    proto(154, "bpf_this_cpu_ptr", PtrToMemOrBtfId, &[PtrToPercpuBtfId], false, ALL),
    proto(159, "bpf_bprm_opts_set", Integer, &[PtrToBtfId, Anything], false, LSM),
    proto(161, "bpf_ima_inode_hash", Integer, &[PtrToBtfId, PtrToUninitMem, ConstSize], false, LSM),
    proto(162, "bpf_sock_from_file", BtfOrNull, &[PtrToBtfId], false, BTF_TRACING),
    proto(166, "bpf_sys_bpf", Integer, &[Anything, PtrToMem, ConstSize], false, SYSCALL),
    proto(
        167,
        "bpf_btf_find_by_name_kind",
        Integer,
        &[PtrToMem, ConstSize, Anything, Anything],
        false,
        SYSCALL,
    ),
    proto(168, "bpf_sys_close", Integer, &[Anything], false, SYSCALL),
    proto(175, "bpf_task_pt_regs", RetType::PtrToBtfId, &[PtrToBtfId], true, ALL),
    proto(176, "bpf_get_branch_snapshot", Integer, &[PtrToUninitMem, ConstSizeOrZero], true, ALL),
    proto(178, "bpf_skc_to_unix_sock", BtfOrNull, &[PtrToBtfIdSockCommon], false, SK_BASE),
    proto(
        179,
        "bpf_kallsyms_lookup_name",
        Integer,
        &[PtrToMem, ConstSizeOrZero, Anything, PtrToLong],
        false,
        SYSCALL,
    ),
    proto(
        180,
        "bpf_find_vma",
        Integer,
        &[PtrToBtfId, Anything, PtrToFunc, PtrToStackOrNull, Anything],
        false,
        ALL,
    ),
    proto(186, "bpf_get_retval", Integer, &[], false, RETVAL),
    proto(187, "bpf_set_retval", Integer, &[Anything], false, RETVAL),
    proto(
        191,
        "bpf_copy_from_user_task",
        Integer,
        &[PtrToUninitMem, ConstSizeOrZero, Anything, PtrToBtfId, Anything],
        true,
        ALL,
    ),
    proto(193, "bpf_ima_file_hash", Integer, &[PtrToBtfId, PtrToUninitMem, ConstSize], false, LSM),
    proto(194, "bpf_kptr_xchg", BtfOrNull, &[PtrToKptr, PtrToBtfIdOrNull], false, ALL),
    proto(196, "bpf_skc_to_mptcp_sock", BtfOrNull, &[PtrToSocket], false, SK_BASE),
    proto(208, "bpf_ktime_get_tai_ns", Integer, &[], false, ALL),
];

/// Helpers whose kernel prototype may sleep (`.might_sleep`) in every program that gets it:
/// the verifier refuses them outside sleepable programs and inside RCU or non-preemptible
/// sections.
const MIGHT_SLEEP: &[u32] = &[
    148, // bpf_copy_from_user
    161, // bpf_ima_inode_hash
    166, // bpf_sys_bpf
    167, // bpf_btf_find_by_name_kind
    168, // bpf_sys_close
    191, // bpf_copy_from_user_task
    193, // bpf_ima_file_hash
];

/// Helpers whose sleepable programs get a variant that may sleep
/// (`bpf_get_stack_sleepable_proto`, `bpf_get_task_stack_sleepable_proto`).
const MIGHT_SLEEP_WHEN_SLEEPABLE: &[u32] = &[
    67,  // bpf_get_stack
    141, // bpf_get_task_stack
];

/// Whether the prototype of helper `id` that a program gets (`sleepable`: a sleepable
/// program) may sleep (`.might_sleep`).
pub(crate) fn might_sleep(id: u32, sleepable: bool) -> bool {
    MIGHT_SLEEP.contains(&id) || (sleepable && MIGHT_SLEEP_WHEN_SLEEPABLE.contains(&id))
}

/// `enum bpf_attach_type` values the rules below name that `ctx::layout::attach` lacks.
mod attach_ids {
    /// `BPF_CGROUP_SOCK_OPS`.
    pub(super) const CGROUP_SOCK_OPS: u32 = 3;
    /// `BPF_TRACE_ITER`.
    pub(super) const TRACE_ITER: u32 = 28;
    /// `BPF_LSM_CGROUP`.
    pub(super) const LSM_CGROUP: u32 = 43;
}

/// Whether a program of `prog_type` with `expected_attach_type` `attach` (`None`: 0, as the
/// kernel has it when none is set) gets the prototype of helper `id`, where the kernel's
/// `*_func_proto` switch also looks at the attach type; `true` for every other helper (the
/// program type alone decides: [`HelperProto::prog_types`]).
pub(crate) fn attach_type_allows(id: u32, prog_type: ProgType, attach: Option<u32>) -> bool {
    use crate::ctx::layout::attach as a;
    let at = attach.unwrap_or(0);
    match (id, prog_type) {
        // sock_addr_func_proto: bpf_bind only for connect hooks.
        (64, CgroupSockAddr) => matches!(at, a::CGROUP_INET4_CONNECT | a::CGROUP_INET6_CONNECT),
        // cgroup_common_func_proto: no return value to get or set in these hooks.
        (186 | 187, _) if prog_type != Lsm => !matches!(
            at,
            a::CGROUP_INET_INGRESS
                | a::CGROUP_INET_EGRESS
                | attach_ids::CGROUP_SOCK_OPS
                | a::CGROUP_UDP4_RECVMSG
                | a::CGROUP_UDP6_RECVMSG
                | a::CGROUP_UNIX_RECVMSG
                | a::CGROUP_INET4_GETPEERNAME
                | a::CGROUP_INET6_GETPEERNAME
                | a::CGROUP_UNIX_GETPEERNAME
                | a::CGROUP_INET4_GETSOCKNAME
                | a::CGROUP_INET6_GETSOCKNAME
                | a::CGROUP_UNIX_GETSOCKNAME
        ),
        // bpf_lsm_func_proto: the cgroup helpers only for BPF_LSM_CGROUP.
        (81 | 186 | 187, Lsm) => at == attach_ids::LSM_CGROUP,
        // tracing_prog_func_proto: the seq_file helpers only for iterators.
        (126 | 127 | 150, Tracing) => at == attach_ids::TRACE_ITER,
        _ => true,
    }
}
