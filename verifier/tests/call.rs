//! Calls and exits on assembled programs: helper prototypes and availability, map/helper
//! compatibility, references (sockets, ring buffer records), tail calls, bpf-to-bpf calls,
//! callbacks, return values and the stack of call chains. Each case is compared with the
//! running kernel's verdict and error class, and with bpflab's own expected message.

use bpflab_kernel::verdict::{VerdictOptions, kernel_verdict};
use bpflab_verifier::{Config, ErrorKind, Verdict, verify};
use bpflab_vm::asm::assemble;
use bpflab_vm::helpers::HelperRegistry;
use bpflab_vm::isa::{CallKind, Insn, PseudoSrc};
use bpflab_vm::spec::DataSection;
use bpflab_vm::{Collection, MapSpec, MapType, ProgType, Program};

/// One case: the program, and bpflab's expected outcome (`None` = accepted, else the
/// expected message).
struct Case {
    name: &'static str,
    ty: ProgType,
    attach: Option<u32>,
    license: &'static str,
    asm: &'static str,
    expect: Option<&'static str>,
    /// Loaded without BTF (no func info, maps without BTF types).
    no_btf: bool,
    /// When set, every function but the main program is global with these parameters.
    global: Option<&'static [Param]>,
}

/// A global function's parameter type in BTF.
#[derive(Clone, Copy)]
enum Param {
    /// `int`.
    Int,
    /// `struct __sk_buff *`.
    Skb,
    /// `int *`.
    IntPtr,
    /// `int *` tagged `arg:nonnull`.
    NonnullIntPtr,
}

/// A GPL program of type `ty`.
const fn case(
    name: &'static str,
    ty: ProgType,
    asm: &'static str,
    expect: Option<&'static str>,
) -> Case {
    Case { name, ty, attach: None, license: "GPL", asm, expect, no_btf: false, global: None }
}

use ProgType::{CgroupSkb, SchedCls, SkLookup, SocketFilter, Xdp};

/// A lookup of key 0 in map `idx:0` (hash, key 4, value 8), leaving r0 = the result.
macro_rules! lookup0 {
    () => {
        "*(u32 *)(r10 - 4) = 0\nr2 = r10\nr2 += -4\nr1 = map[idx:0]\ncall bpf_map_lookup_elem\n"
    };
}

/// An IPv4 socket tuple on the stack and a `bpf_sk_lookup_tcp` of it (r6 = ctx).
macro_rules! sk_lookup {
    () => {
        "r6 = r1\n*(u64 *)(r10 - 8) = 0\n*(u64 *)(r10 - 16) = 0\n*(u64 *)(r10 - 24) = 0\n\
         *(u64 *)(r10 - 32) = 0\n*(u64 *)(r10 - 40) = 0\nr2 = r10\nr2 += -40\nr3 = 12\n\
         r4 = -1\nr5 = 0\nr1 = r6\ncall bpf_sk_lookup_tcp\n"
    };
}

/// A lookup of key 0 in map `idx:4` (values with a spin lock at offset 4), r0 = the result.
macro_rules! lookupl {
    () => {
        "*(u32 *)(r10 - 4) = 0\nr2 = r10\nr2 += -4\nr1 = map[idx:4]\ncall bpf_map_lookup_elem\n"
    };
}

/// A lookup of key 0 in map `idx:5` (values with a timer at offset 8), r0 = the result.
macro_rules! lookupt {
    () => {
        "*(u32 *)(r10 - 4) = 0\nr2 = r10\nr2 += -4\nr1 = map[idx:5]\ncall bpf_map_lookup_elem\n"
    };
}

/// bpf_snprintf into 16 stack bytes of the format at offset `$off` of map 7, with one u64
/// argument (5); r0 = 0 after.
macro_rules! snprintf {
    ($off:literal) => {
        concat!(
            "*(u64 *)(r10 - 8) = 5\nr1 = r10\nr1 += -32\nr2 = 16\nr3 = map[idx:7][0]+",
            $off,
            "\nr4 = r10\nr4 += -8\nr5 = 8\ncall bpf_snprintf\nr0 = 0\n"
        )
    };
}

/// A ring buffer record of 8 bytes from map `idx:2`, in r0.
macro_rules! reserve8 {
    () => {
        "r1 = map[idx:2]\nr2 = 8\nr3 = 0\ncall bpf_ringbuf_reserve\n"
    };
}

const CASES: &[Case] = &[
    // Helper lookup, availability, license.
    case("ktime", SocketFilter, "call bpf_ktime_get_ns\nr0 = 0\nexit", None),
    case(
        "unknown_helper",
        SocketFilter,
        "call 500\nr0 = 0\nexit",
        Some("invalid func unknown#500"),
    ),
    case(
        "helper_not_for_type",
        SocketFilter,
        "r2 = 0\ncall bpf_xdp_adjust_head\nr0 = 0\nexit",
        Some("program of this type cannot use helper bpf_xdp_adjust_head#44"),
    ),
    Case {
        name: "gpl_only_from_proprietary",
        ty: SocketFilter,
        attach: None,
        license: "Proprietary",
        asm: "call bpf_get_current_task\nr0 = 0\nexit",
        expect: Some("cannot call GPL-restricted function from non-GPL compatible program"),
        no_btf: false,
        global: None,
    },
    Case {
        name: "non_gpl_helper_from_proprietary",
        ty: SocketFilter,
        attach: None,
        license: "Proprietary",
        asm: "call bpf_get_prandom_u32\nr0 = 0\nexit",
        expect: None,
        no_btf: false,
        global: None,
    },
    // Caller-saved registers.
    case("r1_clobbered", SocketFilter, "call bpf_ktime_get_ns\nr0 = r1\nexit", Some("R1 !read_ok")),
    case("r5_clobbered", SocketFilter, "call bpf_ktime_get_ns\nr0 = r5\nexit", Some("R5 !read_ok")),
    case("r6_kept", SocketFilter, "r6 = 7\ncall bpf_ktime_get_ns\nr0 = r6\nexit", None),
    // Map helpers: types, keys, NULL results.
    case(
        "lookup_checked",
        SocketFilter,
        concat!(lookup0!(), "if r0 == 0 goto +1\nr0 = *(u64 *)(r0 + 0)\nr0 = 0\nexit"),
        None,
    ),
    case(
        "lookup_unchecked",
        SocketFilter,
        concat!(lookup0!(), "r0 = *(u64 *)(r0 + 0)\nr0 = 0\nexit"),
        Some("R0 invalid mem access 'map_value_or_null'"),
    ),
    case(
        "lookup_uninit_key",
        SocketFilter,
        "r2 = r10\nr2 += -4\nr1 = map[idx:0]\ncall bpf_map_lookup_elem\nr0 = 0\nexit",
        // Privileged programs may read uninitialised stack.
        None,
    ),
    case(
        "lookup_scalar_key",
        SocketFilter,
        "r2 = 0\nr1 = map[idx:0]\ncall bpf_map_lookup_elem\nr0 = 0\nexit",
        Some(
            "R2 type=scalar expected=fp, pkt, pkt_meta, map_key, map_value, mem, ringbuf_mem, buf, trusted_ptr_",
        ),
    ),
    case(
        "lookup_not_a_map",
        SocketFilter,
        "*(u32 *)(r10 - 4) = 0\nr2 = r10\nr2 += -4\nr1 = 0\ncall bpf_map_lookup_elem\nr0 = 0\nexit",
        Some("R1 type=scalar expected=map_ptr"),
    ),
    case(
        "lookup_prog_array",
        SocketFilter,
        "*(u32 *)(r10 - 4) = 0\nr2 = r10\nr2 += -4\nr1 = map[idx:3]\ncall bpf_map_lookup_elem\nr0 = 0\nexit",
        Some("cannot pass map_type 3 into func bpf_map_lookup_elem#1"),
    ),
    case(
        "update_uninit_value",
        SocketFilter,
        "*(u32 *)(r10 - 4) = 0\nr2 = r10\nr2 += -4\nr3 = r10\nr3 += -16\nr4 = 0\nr1 = map[idx:0]\ncall bpf_map_update_elem\nr0 = 0\nexit",
        None,
    ),
    case(
        "update_ok",
        SocketFilter,
        "*(u32 *)(r10 - 4) = 0\n*(u64 *)(r10 - 16) = 0\nr2 = r10\nr2 += -4\nr3 = r10\nr3 += -16\nr4 = 0\nr1 = map[idx:0]\ncall bpf_map_update_elem\nr0 = 0\nexit",
        None,
    ),
    case(
        "perf_output_hash_map",
        SchedCls,
        "*(u64 *)(r10 - 8) = 0\nr4 = r10\nr4 += -8\nr5 = 8\nr2 = map[idx:0]\nr3 = 0\ncall bpf_perf_event_output\nr0 = 0\nexit",
        Some("cannot pass map_type 1 into func bpf_perf_event_output#25"),
    ),
    // Memory and size arguments.
    case(
        "printk_zero_size",
        SocketFilter,
        "*(u64 *)(r10 - 8) = 0\nr1 = r10\nr1 += -8\nr2 = 0\ncall bpf_trace_printk\nr0 = 0\nexit",
        Some("R2 invalid zero-sized read: u64=[0,0]"),
    ),
    case(
        "printk_negative_size",
        SocketFilter,
        "call bpf_get_prandom_u32\nr2 = r0\nr2 <<= 32\nr2 s>>= 32\n*(u64 *)(r10 - 8) = 0\nr1 = r10\nr1 += -8\ncall bpf_trace_printk\nr0 = 0\nexit",
        Some("R2 min value is negative, either use unsigned or 'var &= const'"),
    ),
    case(
        "printk_ok",
        SocketFilter,
        "*(u64 *)(r10 - 8) = 0\nr1 = r10\nr1 += -8\nr2 = 8\ncall bpf_trace_printk\nr0 = 0\nexit",
        None,
    ),
    case(
        "ctx_arg_modified",
        SchedCls,
        "r1 += 8\ncall bpf_skb_vlan_pop\nr0 = 0\nexit",
        Some("dereference of modified ctx ptr R1 off=8 disallowed"),
    ),
    case(
        "ctx_arg_stack",
        SchedCls,
        "r1 = r10\ncall bpf_skb_vlan_pop\nr0 = 0\nexit",
        Some("R1 type=fp expected=ctx"),
    ),
    // Socket references.
    case(
        "sk_lookup_leak",
        SchedCls,
        concat!(sk_lookup!(), "r0 = 0\nexit"),
        Some("BPF_EXIT instruction in main prog would lead to reference leak"),
    ),
    case(
        "sk_lookup_release",
        SchedCls,
        concat!(sk_lookup!(), "if r0 == 0 goto +2\nr1 = r0\ncall bpf_sk_release\nr0 = 0\nexit"),
        None,
    ),
    case(
        "sk_release_unchecked",
        SchedCls,
        concat!(sk_lookup!(), "r1 = r0\ncall bpf_sk_release\nr0 = 0\nexit"),
        Some(
            "R1 type=sock_or_null expected=sock_common, sock, tcp_sock, xdp_sock, ptr_, trusted_ptr_",
        ),
    ),
    case(
        "sk_release_twice",
        SchedCls,
        concat!(
            sk_lookup!(),
            "if r0 == 0 goto +4\nr7 = r0\nr1 = r0\ncall bpf_sk_release\nr1 = r7\ncall bpf_sk_release\nr0 = 0\nexit"
        ),
        Some("R1 type=scalar expected=sock_common, sock, tcp_sock, xdp_sock, ptr_, trusted_ptr_"),
    ),
    case(
        "sk_fullsock_keeps_ref",
        SchedCls,
        concat!(
            sk_lookup!(),
            "if r0 == 0 goto +7\nr7 = r0\nr1 = r0\ncall bpf_sk_fullsock\nif r0 == 0 goto +1\nr0 = 0\nr1 = r7\ncall bpf_sk_release\nr0 = 0\nexit"
        ),
        None,
    ),
    case(
        "sockmap_lookup_leak",
        SchedCls,
        "*(u32 *)(r10 - 4) = 0\nr2 = r10\nr2 += -4\nr1 = map[idx:6]\ncall bpf_map_lookup_elem\nr0 = 0\nexit",
        Some("BPF_EXIT instruction in main prog would lead to reference leak"),
    ),
    case(
        "sockmap_lookup_release",
        SchedCls,
        "*(u32 *)(r10 - 4) = 0\nr2 = r10\nr2 += -4\nr1 = map[idx:6]\ncall bpf_map_lookup_elem\nif r0 == 0 goto +2\nr1 = r0\ncall bpf_sk_release\nr0 = 0\nexit",
        None,
    ),
    case(
        "sockmap_update_stack_value",
        SchedCls,
        "*(u32 *)(r10 - 4) = 0\n*(u64 *)(r10 - 16) = 0\nr2 = r10\nr2 += -4\nr3 = r10\nr3 += -16\nr4 = 0\nr1 = map[idx:6]\ncall bpf_map_update_elem\nr0 = 0\nexit",
        Some("R3 type=fp expected=sock_common, sock, tcp_sock, xdp_sock, ptr_, trusted_ptr_"),
    ),
    case(
        "task_btf_load",
        SocketFilter,
        "call bpf_get_current_task_btf\nr0 = *(u32 *)(r0 + 0)\nr0 = 0\nexit",
        None,
    ),
    // bpf_snprintf's format string against its arguments.
    case("snprintf_ok", SocketFilter, concat!(snprintf!(0), "exit"), None),
    case(
        "snprintf_too_few_args",
        SocketFilter,
        concat!(snprintf!(4), "exit"),
        Some("Invalid format string"),
    ),
    case(
        "snprintf_bad_specifier",
        SocketFilter,
        concat!(snprintf!(11), "exit"),
        Some("Invalid format string"),
    ),
    // Ring buffer records.
    case(
        "ringbuf_submit",
        SocketFilter,
        concat!(
            reserve8!(),
            "if r0 == 0 goto +4\n*(u64 *)(r0 + 0) = 1\nr1 = r0\nr2 = 0\ncall bpf_ringbuf_submit\nr0 = 0\nexit"
        ),
        None,
    ),
    case(
        "ringbuf_leak",
        SocketFilter,
        concat!(reserve8!(), "r0 = 0\nexit"),
        Some("BPF_EXIT instruction in main prog would lead to reference leak"),
    ),
    case(
        "ringbuf_write_past_end",
        SocketFilter,
        concat!(
            reserve8!(),
            "if r0 == 0 goto +4\n*(u64 *)(r0 + 8) = 1\nr1 = r0\nr2 = 0\ncall bpf_ringbuf_discard\nr0 = 0\nexit"
        ),
        Some("R0 min value is outside of the allowed memory range"),
    ),
    case(
        "ringbuf_size_not_const",
        SocketFilter,
        "call bpf_get_prandom_u32\nr2 = r0\nr1 = map[idx:2]\nr3 = 0\ncall bpf_ringbuf_reserve\nr0 = 0\nexit",
        Some("R2 is not a known constant'"),
    ),
    case(
        "ringbuf_reserve_hash_map",
        SocketFilter,
        "r1 = map[idx:0]\nr2 = 8\nr3 = 0\ncall bpf_ringbuf_reserve\nr0 = 0\nexit",
        Some("cannot pass map_type 1 into func bpf_ringbuf_reserve#131"),
    ),
    case(
        "ringbuf_submit_stack",
        SocketFilter,
        "r1 = r10\nr1 += -8\nr2 = 0\ncall bpf_ringbuf_submit\nr0 = 0\nexit",
        Some("R1 type=fp expected=ringbuf_mem"),
    ),
    // Tail calls.
    case(
        "tail_call",
        SocketFilter,
        "r2 = map[idx:3]\nr3 = 0\ncall bpf_tail_call\nr0 = 0\nexit",
        None,
    ),
    case(
        "tail_call_void_r0",
        SocketFilter,
        "r0 = 1\nr2 = map[idx:3]\nr3 = 0\ncall bpf_tail_call\nexit",
        Some("R0 !read_ok"),
    ),
    case(
        "tail_call_hash_map",
        SocketFilter,
        "r2 = map[idx:0]\nr3 = 0\ncall bpf_tail_call\nr0 = 0\nexit",
        Some("expected prog array map for tail call"),
    ),
    case(
        "tail_call_with_ref",
        SocketFilter,
        concat!(
            "r6 = r1\n",
            reserve8!(),
            "if r0 == 0 goto +7\nr7 = r0\nr1 = r6\nr2 = map[idx:3]\nr3 = 0\ncall bpf_tail_call\nr1 = r7\nr2 = 0\ncall bpf_ringbuf_discard\nr0 = 0\nexit"
        ),
        Some("tail_call would lead to reference leak"),
    ),
    // bpf-to-bpf calls.
    case("subprog_call", SocketFilter, "r1 = 3\ncall f\nexit\nf:\nr0 = r1\nexit", None),
    case(
        "subprog_r6_uninit",
        SocketFilter,
        "r6 = 3\ncall f\nexit\nf:\nr0 = r6\nexit",
        Some("R6 !read_ok"),
    ),
    case(
        "caller_r1_after_call",
        SocketFilter,
        "r1 = 3\ncall f\nr0 = r1\nexit\nf:\nr0 = 0\nexit",
        Some("R1 !read_ok"),
    ),
    case("caller_r6_kept", SocketFilter, "r6 = 3\ncall f\nr0 = r6\nexit\nf:\nr0 = 0\nexit", None),
    case(
        "subprog_returns_stack",
        SocketFilter,
        "call f\nr0 = 0\nexit\nf:\nr0 = r10\nexit",
        Some("cannot return stack pointer to the caller"),
    ),
    case(
        "call_chain_too_deep",
        SocketFilter,
        "call f1\nr0 = 0\nexit\nf1:\ncall f2\nexit\nf2:\ncall f3\nexit\nf3:\ncall f4\nexit\nf4:\ncall f5\nexit\nf5:\ncall f6\nexit\nf6:\ncall f7\nexit\nf7:\ncall f8\nexit\nf8:\nr0 = 0\nexit",
        Some("the call stack of 9 frames is too deep"),
    ),
    case(
        "combined_stack_too_large",
        SocketFilter,
        "*(u64 *)(r10 - 256) = 0\ncall f\nr0 = 0\nexit\nf:\n*(u64 *)(r10 - 264) = 0\nr0 = 0\nexit",
        Some("combined stack size of 2 calls is 528. Too large"),
    ),
    // Callbacks.
    case(
        "bpf_loop",
        SocketFilter,
        "r1 = 10\nr2 = func cb ll\nr3 = 0\nr4 = 0\ncall bpf_loop\nr0 = 0\nexit\ncb:\nr0 = 0\nexit",
        None,
    ),
    case(
        "bpf_loop_ctx_on_stack",
        SocketFilter,
        "*(u64 *)(r10 - 8) = 0\nr1 = 10\nr2 = func cb ll\nr3 = r10\nr3 += -8\nr4 = 0\ncall bpf_loop\nr0 = 0\nexit\ncb:\nr0 = *(u64 *)(r2 + 0)\nr0 = 0\nexit",
        None,
    ),
    case(
        "bpf_loop_cb_returns_2",
        SocketFilter,
        "r1 = 10\nr2 = func cb ll\nr3 = 0\nr4 = 0\ncall bpf_loop\nr0 = 0\nexit\ncb:\nr0 = 2\nexit",
        Some("At callback return the register R0 has smin=2 smax=2 should have been in [0, 1]"),
    ),
    case(
        "bpf_loop_cb_returns_ptr",
        SocketFilter,
        "r1 = 10\nr2 = func cb ll\nr3 = 0\nr4 = 0\ncall bpf_loop\nr0 = 0\nexit\ncb:\nr0 = r10\nexit",
        Some("cannot return stack pointer to the caller"),
    ),
    case(
        "for_each_array",
        SocketFilter,
        "r1 = map[idx:1]\nr2 = func cb ll\nr3 = 0\nr4 = 0\ncall bpf_for_each_map_elem\nr0 = 0\nexit\ncb:\nr0 = *(u64 *)(r3 + 8)\nr0 = 0\nexit",
        None,
    ),
    case(
        "for_each_value_oob",
        SocketFilter,
        "r1 = map[idx:1]\nr2 = func cb ll\nr3 = 0\nr4 = 0\ncall bpf_for_each_map_elem\nr0 = 0\nexit\ncb:\nr0 = *(u64 *)(r3 + 16)\nr0 = 0\nexit",
        Some("R3 min value is outside of the allowed memory range"),
    ),
    // Spin locks need BTF.
    case(
        "spin_lock_without_btf",
        SocketFilter,
        concat!(
            lookup0!(),
            "if r0 == 0 goto +3\nr1 = r0\ncall bpf_spin_lock\nr0 = 0\nr0 = 0\nexit"
        ),
        Some("map 'hash' has to have BTF in order to use bpf_spin_lock"),
    ),
    // Spin locks in a map value described by BTF (map 4, lock at offset 4).
    case(
        "spin_lock_unlock",
        SchedCls,
        concat!(
            lookupl!(),
            "if r0 == 0 goto +7\nr6 = r0\nr1 = r0\nr1 += 4\ncall bpf_spin_lock\nr1 = r6\nr1 += 4\ncall bpf_spin_unlock\nr0 = 0\nexit"
        ),
        None,
    ),
    case(
        "spin_lock_wrong_offset",
        SchedCls,
        concat!(
            lookupl!(),
            "if r0 == 0 goto +3\nr1 = r0\ncall bpf_spin_lock\nr0 = 0\nr0 = 0\nexit"
        ),
        Some("off 0 doesn't point to 'struct bpf_spin_lock' that is at 4"),
    ),
    case(
        "spin_lock_call_inside",
        SchedCls,
        concat!(
            lookupl!(),
            "if r0 == 0 goto +8\nr6 = r0\nr1 = r0\nr1 += 4\ncall bpf_spin_lock\ncall bpf_ktime_get_ns\nr1 = r6\nr1 += 4\ncall bpf_spin_unlock\nr0 = 0\nexit"
        ),
        Some("function calls are not allowed while holding a lock"),
    ),
    case(
        "spin_lock_exit_locked",
        SchedCls,
        concat!(
            lookupl!(),
            "if r0 == 0 goto +4\nr6 = r0\nr1 = r0\nr1 += 4\ncall bpf_spin_lock\nr0 = 0\nexit"
        ),
        Some("BPF_EXIT instruction in main prog cannot be used inside bpf_spin_lock-ed region"),
    ),
    case(
        "spin_unlock_unlocked",
        SchedCls,
        concat!(
            lookupl!(),
            "if r0 == 0 goto +3\nr1 = r0\nr1 += 4\ncall bpf_spin_unlock\nr0 = 0\nexit"
        ),
        Some("bpf_spin_unlock without taking a lock"),
    ),
    case(
        "spin_lock_twice",
        SchedCls,
        concat!(
            lookupl!(),
            "if r0 == 0 goto +9\nr6 = r0\nr1 = r0\nr1 += 4\ncall bpf_spin_lock\nr1 = r6\nr1 += 4\ncall bpf_spin_lock\nr1 = r6\nr1 += 4\ncall bpf_spin_unlock\nr0 = 0\nexit"
        ),
        // The second lock is a call while holding the first.
        Some("function calls are not allowed while holding a lock"),
    ),
    case(
        "spin_lock_static_call_inside",
        SchedCls,
        concat!(
            lookupl!(),
            "if r0 == 0 goto +8\nr6 = r0\nr1 = r0\nr1 += 4\ncall bpf_spin_lock\ncall f\nr1 = r6\nr1 += 4\ncall bpf_spin_unlock\nr0 = 0\nexit\nf:\nr0 = 0\nexit"
        ),
        None,
    ),
    Case {
        name: "callback_without_btf",
        ty: SocketFilter,
        attach: None,
        license: "GPL",
        asm: "r1 = 10\nr2 = func cb ll\nr3 = 0\nr4 = 0\ncall bpf_loop\nr0 = 0\nexit\ncb:\nr0 = 0\nexit",
        expect: Some("missing btf func_info"),
        no_btf: true,
        global: None,
    },
    // Global functions: verified once on their own, calls return an unknown scalar.
    Case {
        global: Some(&[Param::Int]),
        ..case(
            "global_scalar",
            SocketFilter,
            "r1 = 5\ncall g\nr0 &= 1\nexit\ng:\nr0 = r1\nexit",
            None,
        )
    },
    Case {
        global: Some(&[Param::Int]),
        ..case(
            "global_pointer_for_scalar",
            SocketFilter,
            "r1 = r10\ncall g\nexit\ng:\nr0 = 0\nexit",
            Some("Caller passes invalid args into func#1 ('f3')"),
        )
    },
    Case {
        global: Some(&[Param::Skb]),
        ..case("global_ctx", SchedCls, "call g\nexit\ng:\nr0 = *(u32 *)(r1 + 0)\nexit", None)
    },
    Case {
        global: Some(&[Param::Skb]),
        ..case(
            "global_ctx_not_ctx",
            SchedCls,
            "r1 = 0\ncall g\nexit\ng:\nr0 = 0\nexit",
            Some("Caller passes invalid args into func#1 ('f3')"),
        )
    },
    Case {
        global: Some(&[Param::Int]),
        ..case(
            "global_returns_pointer",
            SocketFilter,
            "r1 = 0\ncall g\nr0 = 0\nexit\ng:\nr0 = r10\nexit",
            Some("At subprogram exit the register R0 is not a scalar value (fp)"),
        )
    },
    Case {
        global: Some(&[Param::IntPtr]),
        ..case(
            "global_mem_unchecked",
            SocketFilter,
            "*(u32 *)(r10 - 4) = 0\nr1 = r10\nr1 += -4\ncall g\nexit\ng:\nr0 = *(u32 *)(r1 + 0)\nexit",
            Some("R1 invalid mem access 'mem_or_null'"),
        )
    },
    Case {
        global: Some(&[Param::IntPtr]),
        ..case(
            "global_mem_checked",
            SocketFilter,
            "*(u32 *)(r10 - 4) = 0\nr1 = r10\nr1 += -4\ncall g\nexit\ng:\nr0 = 0\nif r1 == 0 goto +1\nr0 = *(u32 *)(r1 + 0)\nexit",
            None,
        )
    },
    Case {
        global: Some(&[Param::IntPtr]),
        ..case(
            "global_mem_too_small",
            SocketFilter,
            "*(u16 *)(r10 - 2) = 0\nr1 = r10\nr1 += -2\ncall g\nexit\ng:\nr0 = 0\nexit",
            Some("Caller passes invalid args into func#1 ('f5')"),
        )
    },
    Case {
        global: Some(&[Param::Int]),
        ..case(
            "global_call_holding_lock",
            SchedCls,
            concat!(
                lookupl!(),
                "if r0 == 0 goto +8\nr6 = r0\nr1 = r0\nr1 += 4\ncall bpf_spin_lock\ncall g\nr1 = r6\nr1 += 4\ncall bpf_spin_unlock\nr0 = 0\nexit\ng:\nr0 = 0\nexit"
            ),
            // The kernel's message spans two lines; its last is the error line.
            Some("use static function instead"),
        )
    },
    // Timers: a `struct bpf_timer` in a map value, callbacks run later on their own.
    case(
        "timer_init",
        SchedCls,
        concat!(
            lookupt!(),
            "if r0 == 0 goto +6\nr1 = r0\nr1 += 8\nr2 = map[idx:5]\nr3 = 1\ncall bpf_timer_init\nr0 = 0\nexit"
        ),
        None,
    ),
    case(
        "array_const_key_never_null",
        SocketFilter,
        "*(u32 *)(r10 - 4) = 0\nr2 = r10\nr2 += -4\nr1 = map[idx:1]\ncall bpf_map_lookup_elem\nr0 = *(u64 *)(r0 + 8)\nr0 = 0\nexit",
        None,
    ),
    case(
        "array_key_out_of_range",
        SocketFilter,
        "*(u32 *)(r10 - 4) = 4\nr2 = r10\nr2 += -4\nr1 = map[idx:1]\ncall bpf_map_lookup_elem\nr0 = *(u64 *)(r0 + 8)\nr0 = 0\nexit",
        Some("R0 invalid mem access 'map_value_or_null'"),
    ),
    case(
        "array_key_unknown",
        SocketFilter,
        "call bpf_get_prandom_u32\n*(u32 *)(r10 - 4) = r0\nr2 = r10\nr2 += -4\nr1 = map[idx:1]\ncall bpf_map_lookup_elem\nr0 = *(u64 *)(r0 + 8)\nr0 = 0\nexit",
        Some("R0 invalid mem access 'map_value_or_null'"),
    ),
    case(
        "hash_const_key_may_be_null",
        SocketFilter,
        concat!(lookup0!(), "r0 = *(u64 *)(r0 + 0)\nr0 = 0\nexit"),
        Some("R0 invalid mem access 'map_value_or_null'"),
    ),
    case(
        "timer_wrong_offset",
        SchedCls,
        concat!(
            lookupt!(),
            "if r0 == 0 goto +5\nr1 = r0\nr2 = map[idx:5]\nr3 = 1\ncall bpf_timer_init\nr0 = 0\nexit"
        ),
        Some("off 0 doesn't point to 'struct bpf_timer' that is at 8"),
    ),
    case(
        "timer_other_map",
        SchedCls,
        concat!(
            lookupt!(),
            "if r0 == 0 goto +6\nr1 = r0\nr1 += 8\nr2 = map[idx:1]\nr3 = 1\ncall bpf_timer_init\nr0 = 0\nexit"
        ),
        Some("timer pointer in R1 map_uid=0 doesn't match map pointer in R2 map_uid=0"),
    ),
    case(
        "timer_map_without_btf",
        SchedCls,
        "*(u32 *)(r10 - 4) = 0\nr2 = r10\nr2 += -4\nr1 = map[idx:1]\ncall bpf_map_lookup_elem\nif r0 == 0 goto +5\nr1 = r0\nr2 = map[idx:1]\nr3 = 1\ncall bpf_timer_init\nr0 = 0\nexit",
        Some("map 'array' has to have BTF in order to use bpf_timer"),
    ),
    case(
        "timer_set_callback",
        SchedCls,
        concat!(
            lookupt!(),
            "if r0 == 0 goto +5\nr1 = r0\nr1 += 8\nr2 = func cb ll\ncall bpf_timer_set_callback\nr0 = 0\nexit\ncb:\nr0 = *(u32 *)(r3 + 0)\nr0 = 0\nexit"
        ),
        None,
    ),
    case(
        "timer_callback_returns_1",
        SchedCls,
        concat!(
            lookupt!(),
            "if r0 == 0 goto +5\nr1 = r0\nr1 += 8\nr2 = func cb ll\ncall bpf_timer_set_callback\nr0 = 0\nexit\ncb:\nr0 = 1\nexit"
        ),
        Some(
            "At async callback return the register R0 has smin=1 smax=1 should have been in [0, 0]",
        ),
    ),
    Case {
        global: Some(&[Param::NonnullIntPtr]),
        ..case(
            "global_nonnull_given_maybe_null",
            SocketFilter,
            concat!(lookup0!(), "r1 = r0\ncall g\nexit\ng:\nr0 = *(u32 *)(r1 + 0)\nexit"),
            Some("Caller passes invalid args into func#1 ('f9')"),
        )
    },
    Case {
        global: Some(&[Param::NonnullIntPtr]),
        ..case(
            "global_nonnull_deref",
            SocketFilter,
            "*(u32 *)(r10 - 4) = 0\nr1 = r10\nr1 += -4\ncall g\nexit\ng:\nr0 = *(u32 *)(r1 + 0)\nexit",
            None,
        )
    },
    // Return values.
    case("cgroup_skb_ret_1", CgroupSkb, "r0 = 1\nexit", None),
    case(
        "cgroup_skb_ret_5",
        CgroupSkb,
        "r0 = 5\nexit",
        Some("At program exit the register R0 has smin=5 smax=5 should have been in [0, 1]"),
    ),
    case(
        "cgroup_skb_ret_unknown",
        CgroupSkb,
        "call bpf_get_prandom_u32\nexit",
        Some("At program exit the register R0 has unknown scalar value should have been in [0, 1]"),
    ),
    case(
        "cgroup_skb_ret_ptr",
        CgroupSkb,
        "r0 = r1\nexit",
        Some("At program exit the register R0 is not a known value (ctx)"),
    ),
    Case {
        name: "cgroup_skb_egress_ret_3",
        ty: CgroupSkb,
        attach: Some(1),
        license: "GPL",
        asm: "r0 = 3\nexit",
        expect: None,
        no_btf: false,
        global: None,
    },
    Case {
        name: "sk_lookup_ret_2",
        ty: SkLookup,
        attach: Some(36),
        license: "GPL",
        asm: "r0 = 2\nexit",
        expect: Some(
            "At program exit the register R0 has smin=2 smax=2 should have been in [0, 1]",
        ),
        no_btf: false,
        global: None,
    },
    case("xdp_ret_any", Xdp, "r0 = 1000\nexit", None),
    case("socket_filter_ret_ptr_priv", SocketFilter, "r0 = r1\nexit", None),
];

/// A BTF blob written type by type (the kernel's binary format, little-endian).
struct BtfBuf {
    types: Vec<u8>,
    strings: Vec<u8>,
    next: u32,
}

impl BtfBuf {
    fn new() -> BtfBuf {
        BtfBuf { types: Vec::new(), strings: vec![0], next: 1 }
    }

    fn str(&mut self, s: &str) -> u32 {
        let off = self.strings.len() as u32;
        self.strings.extend_from_slice(s.as_bytes());
        self.strings.push(0);
        off
    }

    fn words(&mut self, w: &[u32]) -> u32 {
        for x in w {
            self.types.extend_from_slice(&x.to_le_bytes());
        }
        self.next += 1;
        self.next - 1
    }

    /// A signed integer of `size` bytes.
    fn int(&mut self, name: &str, size: u32) -> u32 {
        let n = self.str(name);
        self.words(&[n, 1 << 24, size, (1 << 24) | (size * 8)])
    }

    /// `ret (params...)`.
    fn proto(&mut self, ret: u32, params: &[u32]) -> u32 {
        let mut w = vec![0, (13 << 24) | params.len() as u32, ret];
        for (i, t) in params.iter().enumerate() {
            w.extend([self.str(&format!("a{i}")), *t]);
        }
        self.words(&w)
    }

    /// `*target`.
    fn ptr(&mut self, target: u32) -> u32 {
        self.words(&[0, 2 << 24, target])
    }

    /// A function of prototype `proto`, global or static.
    fn func(&mut self, name: &str, proto: u32, global: bool) -> u32 {
        let n = self.str(name);
        self.words(&[n, (12 << 24) | u32::from(global), proto])
    }

    /// A `BTF_KIND_DECL_TAG` on component `idx` of type `target`.
    fn decl_tag(&mut self, tag: &str, target: u32, idx: i32) -> u32 {
        let n = self.str(tag);
        self.words(&[n, 17 << 24, target, idx as u32])
    }

    /// A struct of `size` bytes with `(name, type, byte offset)` members.
    fn strukt(&mut self, name: &str, size: u32, members: &[(&str, u32, u32)]) -> u32 {
        let n = self.str(name);
        let mut w = vec![n, (4 << 24) | members.len() as u32, size];
        for (m, t, off) in members {
            w.extend([self.str(m), *t, off * 8]);
        }
        self.words(&w)
    }

    fn finish(self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&0xeb9fu16.to_le_bytes());
        out.extend_from_slice(&[1, 0]);
        for w in
            [24u32, 0, self.types.len() as u32, self.types.len() as u32, self.strings.len() as u32]
        {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out.extend_from_slice(&self.types);
        out.extend_from_slice(&self.strings);
        out
    }
}

/// The maps every case sees: 0 hash (key 4, value 8), 1 array (value 16), 2 ring buffer,
/// 3 program array, 4 hash whose value (BTF `struct val { int cnt; struct bpf_spin_lock
/// lock; }`) holds a spin lock at offset 4, 5 array whose value holds a `struct bpf_timer`
/// at offset 8, 6 sockmap, 7 read-only data with format strings.
fn maps(int: u32, val: u32, tval: u32) -> Vec<MapSpec> {
    let mut locked = MapSpec::new("locked", MapType::Hash, 4, 8, 4);
    locked.btf_key_type_id = Some(int);
    locked.btf_value_type_id = Some(val);
    let mut timers = MapSpec::new("timers", MapType::Array, 4, 24, 1);
    timers.btf_key_type_id = Some(int);
    timers.btf_value_type_id = Some(tval);
    vec![
        MapSpec::new("hash", MapType::Hash, 4, 8, 16),
        MapSpec::new("array", MapType::Array, 4, 16, 4),
        MapSpec::new("rb", MapType::Ringbuf, 0, 0, 4096),
        MapSpec::new("progs", MapType::ProgArray, 4, 4, 4),
        locked,
        timers,
        MapSpec::new("socks", MapType::Sockmap, 4, 8, 4),
        rodata(),
    ]
}

/// Map 7: a frozen `.rodata` holding format strings: "%d\0" at 0, "%d %s\0" at 4,
/// "%q\0" at 11.
fn rodata() -> MapSpec {
    let bytes = b"%d\0\0%d %s\0\0%q\0\0".to_vec();
    let mut m = MapSpec::new("call.rodata", MapType::Array, 4, bytes.len() as u32, 1);
    m.flags = 1 << 7;
    m.data = Some((DataSection::Rodata, bytes));
    m
}

/// The slots where the program's functions start: 0 and every local call or `func` target.
fn function_starts(insns: &[Insn]) -> Vec<u32> {
    let mut starts = vec![0u32];
    let mut slot = 0i64;
    for i in insns {
        let target = match *i {
            Insn::Call { kind: CallKind::Local, imm, .. } => Some(slot + 1 + i64::from(imm)),
            Insn::LdImm64 { src: PseudoSrc::Func, imm, .. } => Some(slot + 1 + i64::from(imm)),
            _ => None,
        };
        if let Some(t) = target {
            starts.push(t as u32);
        }
        slot += i.slots() as i64;
    }
    starts.sort_unstable();
    starts.dedup();
    starts
}

fn program(case: &Case) -> Collection {
    let insns = assemble(case.asm).unwrap_or_else(|e| panic!("{}: {e}", case.name));
    let mut btf = BtfBuf::new();
    let int = btf.int("int", 4);
    let lock = btf.strukt("bpf_spin_lock", 4, &[("val", int, 0)]);
    let val = btf.strukt("val", 8, &[("cnt", int, 0), ("lock", lock, 4)]);
    let timer = btf.strukt("bpf_timer", 16, &[]);
    let tval = btf.strukt("tval", 24, &[("cnt", int, 0), ("t", timer, 8)]);
    let proto = btf.proto(int, &[]);
    let skb = btf.strukt("__sk_buff", 0, &[]);
    let skb_ptr = btf.ptr(skb);
    let int_ptr = btf.ptr(int);
    let global_proto = case.global.map(|params| {
        let ids: Vec<u32> = params
            .iter()
            .map(|p| match p {
                Param::Int => int,
                Param::Skb => skb_ptr,
                Param::IntPtr | Param::NonnullIntPtr => int_ptr,
            })
            .collect();
        btf.proto(int, &ids)
    });
    let mut func_info = Vec::new();
    for (n, start) in function_starts(&insns).into_iter().enumerate() {
        let name = if n == 0 { "main".to_string() } else { format!("f{start}") };
        let id = match global_proto {
            Some(gp) if n > 0 => {
                let f = btf.func(&name, gp, true);
                for (i, p) in case.global.unwrap_or(&[]).iter().enumerate() {
                    if matches!(p, Param::NonnullIntPtr) {
                        btf.decl_tag("arg:nonnull", f, i as i32);
                    }
                }
                f
            }
            _ => btf.func(&name, proto, false),
        };
        func_info.push((start, id));
    }
    let mut p = Program::raw(case.name, insns);
    p.prog_type = case.ty;
    p.expected_attach_type = case.attach;
    p.license = case.license.into();
    let mut c = Collection::single(p);
    c.maps = maps(int, val, tval);
    if case.no_btf {
        for m in &mut c.maps {
            m.btf_key_type_id = None;
            m.btf_value_type_id = None;
        }
    } else {
        c.programs[0].func_info = func_info;
        c.btf = Some(btf.finish());
    }
    c
}

#[test]
fn call_cases_match_the_kernel_and_the_expected_message() {
    let helpers = HelperRegistry::standard();
    let config = Config::default();
    let mut failures = Vec::new();
    let mut compared = 0;
    for case in CASES {
        let coll = program(case);
        let report = verify(&coll, 0, &helpers, &config);
        let got: Option<(ErrorKind, String)> = match &report.verdict {
            Verdict::Accepted => None,
            Verdict::Rejected(e) => Some((e.kind, e.message.clone())),
            Verdict::Unsupported(u) => {
                failures.push(format!("{}: unsupported: {}", case.name, u.feature));
                continue;
            }
        };
        if got.as_ref().map(|g| g.1.as_str()) != case.expect {
            failures.push(format!("{}: bpflab {:?}, expected {:?}", case.name, got, case.expect));
        }
        match kernel_verdict(&coll, 0, &VerdictOptions::default()) {
            Ok(k) => {
                compared += 1;
                if !k.accepted && k.error_line.as_deref() != got.as_ref().map(|g| g.1.as_str()) {
                    println!("{}: kernel says {:?}, bpflab {:?}", case.name, k.error_line, got);
                }
                let kclass = k.error_line.as_deref().map(ErrorKind::classify);
                let bclass = got.as_ref().map(|g| g.0);
                if k.accepted != got.is_none() || (!k.accepted && kclass != bclass) {
                    failures.push(format!(
                        "{}: kernel {} {:?} ({:?}), bpflab {:?}",
                        case.name, k.accepted, k.error_line, kclass, got
                    ));
                }
            }
            Err(e) => println!("SKIP: {}: kernel load failed: {e}", case.name),
        }
    }
    println!("{} cases, {compared} compared with the kernel", CASES.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
