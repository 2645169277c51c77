//! The networking helpers of vm/src/builtin/net.rs with exact results (bpf_xdp_load_bytes,
//! bpf_xdp_store_bytes, bpf_check_mtu, bpf_redirect_neigh/_peer, bpf_skb_ecn_set_ce, the
//! syncookie helpers, bpf_jiffies64, bpf_get_route_realm, bpf_get_cgroup_classid), and the
//! GPL-only check of helper calls. The same programs run against the kernel in
//! kernel/tests/net_helpers_vs_kernel.rs.

use std::net::SocketAddr;

use bpflab_vm::asm::assemble;
use bpflab_vm::engine::{EngineError, ProgType, RunInput, RunOutcome};
use bpflab_vm::env::RedirectTarget;
use bpflab_vm::helpers::{HelperError, license_is_gpl_compatible};
use bpflab_vm::interp::Instance;
use bpflab_vm::kobj::fib::NetDevice;
use bpflab_vm::{Collection, Interpreter, Program, VmErrorKind};

use ProgType::{CgroupSkb, SchedCls, Xdp};

fn instance_with(t: ProgType, license: &str, src: &str) -> Instance {
    let insns = assemble(src).unwrap_or_else(|e| panic!("{e}\n{src}"));
    let mut p = Program::raw("t", insns).with_type(t);
    p.license = license.into();
    Interpreter::default().instantiate(&Collection::single(p)).expect("instantiate")
}

fn instance(t: ProgType, src: &str) -> Instance {
    instance_with(t, "GPL", src)
}

fn run_on(inst: &mut Instance, pkt: &[u8]) -> RunOutcome {
    inst.run(0, &RunInput::data(pkt.to_vec())).unwrap_or_else(|e| panic!("{e}"))
}

fn run(t: ProgType, src: &str, pkt: &[u8]) -> RunOutcome {
    run_on(&mut instance(t, src), pkt)
}

fn r0(t: ProgType, src: &str, pkt: &[u8]) -> i64 {
    run(t, src, pkt).r0 as i64
}

const EFAULT: i64 = -14;
const EINVAL: i64 = -22;
const ENOENT: i64 = -2;
const ENODEV: i64 = -19;

/// Ethernet + IPv4 (TOS `tos`, checksum filled in) + TCP with `flags`, 10.0.0.1:40000 ->
/// 10.1.2.3:80 (54 bytes).
fn tcp4(tos: u8, flags: u8) -> Vec<u8> {
    let mut p = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    let mut ip = vec![0x45, tos, 0, 40, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 1, 2, 3];
    let c = inet_csum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(&ip);
    p.extend_from_slice(&[
        0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xfa, 0xf0, 0, 0, 0, 0,
    ]);
    p
}

/// Ethernet + IPv6 with traffic class `tc` + 8 payload bytes.
fn ip6(tc: u8) -> Vec<u8> {
    let mut p = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x86, 0xdd];
    p.extend_from_slice(&[0x60 | (tc >> 4), (tc << 4) | 0x1, 0x23, 0x45, 0, 8, 17, 64]);
    p.extend_from_slice(&[0xfd; 32]);
    p.extend_from_slice(&[0; 8]);
    p
}

fn inet_csum(data: &[u8]) -> u16 {
    let mut sum: u32 = data.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], c[1]]))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[test]
fn xdp_load_bytes_copies_or_leaves_the_buffer() {
    // *(u64 *)(r10 - 8) = -1; r0 = bpf_xdp_load_bytes(ctx, OFF, r10 - 8, LEN);
    // return r0 == 0 ? *(u64 *)(r10 - 8) : r0 << 32 | low word of the buffer
    let prog = |off: i64, len: u32| {
        format!(
            "r2 = -1
             *(u64 *)(r10 - 8) = r2
             r2 = {off} ll
             r3 = r10
             r3 += -8
             r4 = {len}
             call bpf_xdp_load_bytes
             if r0 != 0 goto err
             r0 = *(u64 *)(r10 - 8)
             exit
         err:
             r0 <<= 32
             r1 = *(u32 *)(r10 - 8)
             r0 |= r1
             exit"
        )
    };
    let pkt: Vec<u8> = (0u8..60).collect();
    assert_eq!(run(Xdp, &prog(10, 4), &pkt).r0, 0xffff_ffff_0d0c_0b0a);
    assert_eq!(run(Xdp, &prog(52, 8), &pkt).r0, 0x3b3a_3938_3736_3534);
    // Past the end: -EINVAL, the buffer keeps its bytes.
    assert_eq!(run(Xdp, &prog(53, 8), &pkt).r0, ((EINVAL as u64) << 32) | 0xffff_ffff);
    // An offset above 0xffff: -EFAULT.
    assert_eq!(run(Xdp, &prog(0x10000, 1), &pkt).r0, ((EFAULT as u64) << 32) | 0xffff_ffff);
    // Only XDP programs may call it.
    let e = instance(SchedCls, &prog(0, 4)).run(0, &RunInput::data(pkt.clone())).unwrap_err();
    match e {
        EngineError::Fault(f) => assert!(
            matches!(
                f.kind(),
                VmErrorKind::Helper {
                    name: "bpf_xdp_load_bytes",
                    error: HelperError::NotAllowed { prog_type: SchedCls }
                }
            ),
            "{f}"
        ),
        other => panic!("{other}"),
    }
}

#[test]
fn xdp_store_bytes_writes_the_packet() {
    let prog = |off: i64| {
        format!(
            "r2 = 0x4433 ll
             *(u64 *)(r10 - 8) = r2
             r2 = {off}
             r3 = r10
             r3 += -8
             r4 = 2
             call bpf_xdp_store_bytes
             exit"
        )
    };
    let pkt: Vec<u8> = (0u8..60).collect();
    let out = run(Xdp, &prog(1), &pkt);
    assert_eq!(out.r0, 0);
    let mut want = pkt.clone();
    want[1..3].copy_from_slice(&[0x33, 0x44]);
    assert_eq!(out.data, want);
    let out = run(Xdp, &prog(59), &pkt);
    assert_eq!((out.r0 as i64, out.data), (EINVAL, pkt));
}

#[test]
fn xdp_get_buff_len_is_the_frame_length() {
    assert_eq!(r0(Xdp, "call bpf_xdp_get_buff_len\nexit", &[0; 77]), 77);
}

/// `*(u32 *)(r10 - 4) = MTU_IN; r0 = bpf_check_mtu(ctx, IFINDEX, r10 - 4, DIFF, FLAGS);
/// return r0 << 32 | *(u32 *)(r10 - 4)`.
fn check_mtu(ifindex: u32, mtu_in: u32, diff: i32, flags: u64) -> String {
    format!(
        "r2 = {mtu_in}
         *(u32 *)(r10 - 4) = r2
         r2 = {ifindex}
         r3 = r10
         r3 += -4
         r4 = {diff}
         r5 = {flags}
         call bpf_check_mtu
         r0 <<= 32
         r1 = *(u32 *)(r10 - 4)
         r0 |= r1
         exit"
    )
}

fn with_eth0(t: ProgType, src: &str) -> Instance {
    let mut inst = instance(t, src);
    inst.world.kernel.fib.devices.push(NetDevice::new(2, "eth0", [2, 0, 0, 0, 0, 9]));
    inst
}

fn split(r0: u64) -> (i64, u32) {
    ((r0 as i64) >> 32, r0 as u32)
}

#[test]
fn check_mtu_against_the_devices() {
    let pkt = tcp4(0, 2);
    for t in [Xdp, SchedCls] {
        // The packet's own device (loopback, MTU 65536).
        assert_eq!(split(run(t, &check_mtu(0, 0, 0, 0), &pkt).r0), (0, 65536), "{t:?}");
        // An L3 length given: 65536 + 14 fits, one more does not.
        assert_eq!(split(run(t, &check_mtu(0, 65536, 0, 0), &pkt).r0), (0, 65536), "{t:?}");
        assert_eq!(split(run(t, &check_mtu(0, 65536, 1, 0), &pkt).r0), (1, 65536), "{t:?}");
        // eth0, MTU 1500: 54 + 1460 = 1514 fits, 1515 does not.
        let mut fits = with_eth0(t, &check_mtu(2, 0, 1460, 0));
        assert_eq!(split(run_on(&mut fits, &pkt).r0), (0, 1500), "{t:?}");
        let mut big = with_eth0(t, &check_mtu(2, 0, 1461, 0));
        assert_eq!(split(run_on(&mut big, &pkt).r0), (1, 1500), "{t:?}");
        // Shrinking below the packet passes.
        let mut small = with_eth0(t, &check_mtu(2, 1600, -100, 0));
        assert_eq!(split(run_on(&mut small, &pkt).r0), (0, 1500), "{t:?}");
        // No such device: -ENODEV, the MTU argument untouched.
        assert_eq!(split(run(t, &check_mtu(99, 7, 0, 0), &pkt).r0), (ENODEV, 7), "{t:?}");
    }
    // XDP takes no flags; tc takes BPF_MTU_CHK_SEGS alone, without a length.
    assert_eq!(split(run(Xdp, &check_mtu(0, 0, 0, 1), &pkt).r0), (EINVAL, 0));
    assert_eq!(split(run(SchedCls, &check_mtu(0, 0, 0, 1), &pkt).r0), (0, 65536));
    assert_eq!(split(run(SchedCls, &check_mtu(0, 0, 4, 1), &pkt).r0), (EINVAL, 0));
    assert_eq!(split(run(SchedCls, &check_mtu(0, 0, 0, 2), &pkt).r0), (EINVAL, 0));
}

#[test]
fn redirect_neigh_and_peer_record_the_device() {
    let neigh = |plen: u32, flags: u64| {
        format!(
            "r1 = 5
             r2 = r10
             r2 += -24
             r3 = {plen}
             r4 = {flags}
             *(u64 *)(r10 - 24) = 0
             *(u64 *)(r10 - 16) = 0
             *(u64 *)(r10 - 8) = 0
             call bpf_redirect_neigh
             exit"
        )
    };
    let pkt = tcp4(0, 2);
    for plen in [0, 20, 24] {
        let out = run(SchedCls, &neigh(plen, 0), &pkt);
        assert_eq!(out.r0, 7, "plen {plen}");
        let r = out.redirect.expect("redirect");
        assert_eq!((r.helper, r.target), ("bpf_redirect_neigh", RedirectTarget::Ifindex(5)));
    }
    for (plen, flags) in [(8, 0), (0, 1)] {
        let out = run(SchedCls, &neigh(plen, flags), &pkt);
        assert_eq!((out.r0, out.redirect), (2, None), "plen {plen} flags {flags}");
    }
    let peer = |flags: u64| format!("r1 = 6\nr2 = {flags}\ncall bpf_redirect_peer\nexit");
    let out = run(SchedCls, &peer(0), &pkt);
    assert_eq!(out.r0, 7);
    let r = out.redirect.expect("redirect");
    assert_eq!((r.helper, r.target), ("bpf_redirect_peer", RedirectTarget::Ifindex(6)));
    assert_eq!(run(SchedCls, &peer(1), &pkt).r0, 2);
}

#[test]
fn ecn_set_ce_marks_capable_packets() {
    let prog = "call bpf_skb_ecn_set_ce\nexit";
    // Not-ECT: 0, unchanged.
    let pkt = tcp4(0x10, 2);
    let out = run(SchedCls, prog, &pkt);
    assert_eq!((out.r0, &out.data), (0, &pkt));
    // ECT(0), ECT(1): marked CE with a valid header checksum; CE stays CE.
    for tos in [0x12, 0x11, 0x13] {
        let out = run(SchedCls, prog, &tcp4(tos, 2));
        assert_eq!(out.r0, 1, "tos {tos:#x}");
        assert_eq!(out.data[15], tos | 3, "tos {tos:#x}");
        assert_eq!(inet_csum(&out.data[14..34]), 0, "tos {tos:#x}: checksum");
        let mut want = tcp4(tos | 3, 2);
        want[24..26].copy_from_slice(&out.data[24..26]);
        assert_eq!(out.data, want);
    }
    // cgroup_skb programs too (their skb starts at the network header).
    let out = run(CgroupSkb, prog, &tcp4(0x02, 2));
    assert_eq!((out.r0, out.data[15]), (1, 0x03));
    // IPv6: ECN bits in the traffic class.
    let out = run(SchedCls, prog, &ip6(0x01));
    assert_eq!(out.r0, 1);
    let mut want = ip6(0x03);
    want[15] = out.data[15];
    assert_eq!(out.data, want);
    assert_eq!(out.data[14..16], [0x60, 0x31]);
    assert_eq!(run(SchedCls, prog, &ip6(0xb8)).r0, 0);
    // Not IP: 0.
    let mut arp = tcp4(0x02, 2);
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    assert_eq!(run(SchedCls, prog, &arp).r0, 0);
}

/// A tc program looking up the TCP socket of the packet's 4-tuple (skc_lookup) and calling
/// HELPER(sk, iph, IPH_LEN, th, TH_LEN) on it; 12345 when there is no socket.
fn syncookie(helper: &str, iph_len: u32, th_len: u32) -> String {
    format!(
        "r6 = r1
         r7 = *(u32 *)(r6 + 76)
         r1 = *(u32 *)(r7 + 26)
         *(u32 *)(r10 - 16) = r1
         r1 = *(u32 *)(r7 + 30)
         *(u32 *)(r10 - 12) = r1
         r1 = *(u32 *)(r7 + 34)
         *(u32 *)(r10 - 8) = r1
         r1 = r6
         r2 = r10
         r2 += -16
         r3 = 12
         r4 = -1
         r5 = 0
         call bpf_skc_lookup_tcp
         if r0 == 0 goto none
         r8 = r0
         r1 = r0
         r2 = r7
         r2 += 14
         r3 = {iph_len}
         r4 = r7
         r4 += 34
         r5 = {th_len}
         call {helper}
         r9 = r0
         r1 = r8
         call bpf_sk_release
         r0 = r9
         exit
     none:
         r0 = 12345
         exit"
    )
}

fn sa(s: &str) -> SocketAddr {
    s.parse().expect("address")
}

#[test]
fn syncookies_on_simulated_sockets() {
    let generate = "bpf_tcp_gen_syncookie";
    let check = "bpf_tcp_check_syncookie";
    let on_listener = |src: &str, pkt: &[u8]| {
        let mut inst = instance(SchedCls, src);
        inst.world.tcp_listen(sa("10.1.2.3:80")).expect("listen");
        run_on(&mut inst, pkt).r0 as i64
    };
    let syn = tcp4(0, 0x02);
    let ack = tcp4(0, 0x10);
    // No socket: the program's own path.
    assert_eq!(r0(SchedCls, &syncookie(generate, 20, 20), &syn), 12345);
    // A listener, tcp_syncookies = 1 and no SYN flood: no cookie (-ENOENT).
    assert_eq!(on_listener(&syncookie(generate, 20, 20), &syn), ENOENT);
    // Bad header lengths and flags: -EINVAL.
    let mut long_syn = syn.clone();
    long_syn.extend_from_slice(&[1, 1, 1, 0]);
    assert_eq!(on_listener(&syncookie(generate, 20, 24), &long_syn), EINVAL);
    assert_eq!(on_listener(&syncookie(generate, 8, 20), &syn), EINVAL);
    assert_eq!(on_listener(&syncookie(generate, 20, 20), &ack), EINVAL);
    assert_eq!(on_listener(&syncookie(generate, 20, 20), &tcp4(0, 0x12)), EINVAL);
    // check: no cookie was ever sent, so an ACK is -ENOENT; a SYN too; short TCP header -EINVAL.
    assert_eq!(on_listener(&syncookie(check, 20, 20), &ack), ENOENT);
    assert_eq!(on_listener(&syncookie(check, 20, 20), &syn), ENOENT);
    assert_eq!(on_listener(&syncookie(check, 20, 16), &ack), EINVAL);
    assert_eq!(on_listener(&syncookie(check, 8, 20), &ack), EINVAL);
    // An established socket is not a listener: -EINVAL for both.
    for (helper, pkt) in [(generate, &syn), (check, &ack)] {
        let mut inst = instance(SchedCls, &syncookie(helper, 20, 20));
        inst.world.tcp_connect(sa("10.0.0.1:40000"), sa("10.1.2.3:80")).expect("connect");
        assert_eq!(run_on(&mut inst, pkt).r0 as i64, EINVAL, "{helper}");
    }
}

#[test]
fn jiffies_route_realm_and_classid() {
    let out = run(
        SchedCls,
        "call bpf_jiffies64\nr6 = r0\ncall bpf_jiffies64\nr0 -= r6\nexit",
        &tcp4(0, 2),
    );
    assert!(out.r0 < 10, "jiffies went back or jumped: {}", out.r0 as i64);
    let j = r0(Xdp, "call bpf_jiffies64\nexit", &tcp4(0, 2)) as u64;
    // INITIAL_JIFFIES for HZ = 250, plus the simulated uptime (under an hour).
    assert!((4_294_892_296..4_294_892_296 + 250 * 3600).contains(&j), "{j}");
    assert_eq!(r0(SchedCls, "call bpf_get_route_realm\nexit", &tcp4(0, 2)), 0);
    assert_eq!(r0(SchedCls, "r0 = 5\ncall bpf_get_cgroup_classid\nexit", &tcp4(0, 2)), 0);
    assert_eq!(r0(SchedCls, "r0 = 5\ncall bpf_skb_cgroup_classid\nexit", &tcp4(0, 2)), 0);
    // Every program type has it (the current task's class id), as Linux 6.18 does.
    assert_eq!(r0(Xdp, "r0 = 5\ncall bpf_get_cgroup_classid\nexit", &tcp4(0, 2)), 0);
}

#[test]
fn gpl_only_helpers_need_a_gpl_compatible_license() {
    for l in [
        "GPL",
        "GPL v2",
        "GPL and additional rights",
        "Dual BSD/GPL",
        "Dual MIT/GPL",
        "Dual MPL/GPL",
    ] {
        assert!(license_is_gpl_compatible(l), "{l}");
    }
    for l in ["Proprietary", "MIT", "BSD", "gpl", "GPL ", "", "Dual MIT/GPL\0"] {
        assert!(!license_is_gpl_compatible(l), "{l:?}");
    }
    // bpf_check_mtu is GPL-only; bpf_ktime_get_ns and bpf_redirect_peer are not.
    let src = check_mtu(0, 0, 0, 0);
    let pkt = tcp4(0, 2);
    let e =
        instance_with(Xdp, "Proprietary", &src).run(0, &RunInput::data(pkt.clone())).unwrap_err();
    match e {
        EngineError::Fault(f) => {
            assert!(
                matches!(
                    f.kind(),
                    VmErrorKind::Helper { name: "bpf_check_mtu", error: HelperError::GplOnly }
                ),
                "{f}"
            );
            assert!(
                f.to_string().contains(
                    "cannot call GPL-restricted function from non-GPL compatible program"
                ),
                "{f}"
            );
        }
        other => panic!("{other}"),
    }
    let ok = instance_with(Xdp, "Dual MIT/GPL", &src).run(0, &RunInput::data(pkt.clone()));
    assert_eq!(split(ok.expect("dual-licensed").r0), (0, 65536));
    let free = "call bpf_ktime_get_ns\nr0 = 3\nexit";
    assert_eq!(
        instance_with(Xdp, "Proprietary", free)
            .run(0, &RunInput::data(pkt.clone()))
            .expect("ktime")
            .r0,
        3
    );
    let peer = "r1 = 1\nr2 = 0\ncall bpf_redirect_peer\nexit";
    assert_eq!(
        instance_with(SchedCls, "MIT", peer).run(0, &RunInput::data(pkt)).expect("peer").r0,
        7
    );
}

#[test]
fn tunnel_and_xfrm_getters_clear_their_output() {
    // Fill 40 bytes with 0xff, call the getter, return r0 << 32 | (number of nonzero bytes).
    let prog = |call: &str| {
        format!(
            "r6 = r1
             r2 = -1
             *(u64 *)(r10 - 40) = r2
             *(u64 *)(r10 - 32) = r2
             *(u64 *)(r10 - 24) = r2
             *(u64 *)(r10 - 16) = r2
             *(u64 *)(r10 - 8) = r2
             r1 = r6
             {call}
             r0 <<= 32
             r1 = *(u64 *)(r10 - 40)
             r0 |= r1
             r1 = *(u64 *)(r10 - 32)
             r0 |= r1
             r1 = *(u64 *)(r10 - 8)
             r0 |= r1
             exit"
        )
    };
    let key = "r2 = r10\nr2 += -40\nr3 = 40\nr4 = 0\ncall bpf_skb_get_tunnel_key";
    let opt = "r2 = r10\nr2 += -40\nr3 = 40\ncall bpf_skb_get_tunnel_opt";
    let xfrm = "r2 = 0\nr3 = r10\nr3 += -40\nr4 = 40\nr5 = 0\ncall bpf_skb_get_xfrm_state";
    let pkt = tcp4(0, 2);
    assert_eq!(run(SchedCls, &prog(key), &pkt).r0, (EINVAL as u64) << 32);
    assert_eq!(run(SchedCls, &prog(opt), &pkt).r0, (ENOENT as u64) << 32);
    assert_eq!(run(SchedCls, &prog(xfrm), &pkt).r0, (EINVAL as u64) << 32);
}

#[test]
fn clone_redirect_sends_a_copy() {
    let prog = |ifindex: u32, flags: u64| {
        format!("r2 = {ifindex}\nr3 = {flags}\ncall bpf_clone_redirect\nexit")
    };
    let pkt = tcp4(0, 2);
    for flags in [0, 1] {
        let out = run(SchedCls, &prog(1, flags), &pkt);
        // The program's skb is unchanged and not redirected.
        assert_eq!((out.r0, &out.data, &out.redirect), (0, &pkt, &None), "flags {flags}");
    }
    assert_eq!(r0(SchedCls, &prog(77, 0), &pkt), EINVAL);
    assert_eq!(r0(SchedCls, &prog(1, 2), &pkt), EINVAL);
    // A device that is down drops the clone.
    for (flags, want) in [(0, -100), (1, 1)] {
        let mut inst = instance(SchedCls, &prog(3, flags));
        let mut dev = NetDevice::new(3, "eth1", [2, 0, 0, 0, 0, 3]);
        dev.up = false;
        inst.world.kernel.fib.devices.push(dev);
        assert_eq!(run_on(&mut inst, &pkt).r0 as i64, want, "flags {flags}");
    }
}

#[test]
fn numa_node_is_zero() {
    assert_eq!(r0(Xdp, "r0 = 9\ncall bpf_get_numa_node_id\nexit", &tcp4(0, 2)), 0);
}

/// A tc program looking up the TCP socket of the packet's 4-tuple; returns 12345 without
/// one, else fullsock state | (listener found) << 8 | (state through the listener) << 16.
const SOCKINFO: &str = "
         r6 = r1
         r7 = *(u32 *)(r6 + 76)
         r1 = *(u32 *)(r7 + 26)
         *(u32 *)(r10 - 16) = r1
         r1 = *(u32 *)(r7 + 30)
         *(u32 *)(r10 - 12) = r1
         r1 = *(u32 *)(r7 + 34)
         *(u32 *)(r10 - 8) = r1
         r1 = r6
         r2 = r10
         r2 += -16
         r3 = 12
         r4 = -1
         r5 = 0
         call bpf_skc_lookup_tcp
         if r0 == 0 goto none
         r8 = r0
         r9 = 0
         r1 = r8
         call bpf_sk_fullsock
         if r0 == 0 goto nofull
         r9 = *(u32 *)(r0 + 72)
     nofull:
         r1 = r8
         call bpf_get_listener_sock
         if r0 == 0 goto release
         r9 |= 0x100
         r1 = *(u32 *)(r0 + 72)
         r1 <<= 16
         r9 |= r1
     release:
         r1 = r8
         call bpf_sk_release
         r0 = r9
         exit
     none:
         r0 = 12345
         exit";

#[test]
fn fullsock_and_listener_sock() {
    let mut listening = instance(SchedCls, SOCKINFO);
    listening.world.tcp_listen(sa("10.1.2.3:80")).expect("listen");
    assert_eq!(run_on(&mut listening, &tcp4(0, 2)).r0, 10 | 0x100 | (10 << 16));
    let mut connected = instance(SchedCls, SOCKINFO);
    connected.world.tcp_connect(sa("10.0.0.1:40000"), sa("10.1.2.3:80")).expect("connect");
    assert_eq!(run_on(&mut connected, &tcp4(0, 2)).r0, 1);
    assert_eq!(r0(SchedCls, SOCKINFO, &tcp4(0, 2)), 12345);
}

#[test]
fn set_tstamp_sets_time_and_clock() {
    // r0 = bpf_skb_set_tstamp(skb, T, CLOCK); return r0 << 32 | tstamp_type << 24 | tstamp & 0xffffff
    let prog = |tstamp: u64, clock: u32| {
        format!(
            "r6 = r1
             r2 = {tstamp} ll
             r3 = {clock}
             call bpf_skb_set_tstamp
             r0 <<= 32
             r1 = *(u8 *)(r6 + 180)
             r1 <<= 24
             r0 |= r1
             r1 = *(u64 *)(r6 + 152)
             r1 &= 0xffffff
             r0 |= r1
             exit"
        )
    };
    let pkt = tcp4(0, 2);
    assert_eq!(run(SchedCls, &prog(0x1234, 1), &pkt).r0, (1 << 24) | 0x1234);
    assert_eq!(run(SchedCls, &prog(0x5678, 2), &pkt).r0, (2 << 24) | 0x5678);
    assert_eq!(run(SchedCls, &prog(0, 0), &pkt).r0, 0);
    assert_eq!(run(SchedCls, &prog(0, 1), &pkt).r0, (EINVAL as u64) << 32);
    assert_eq!(run(SchedCls, &prog(7, 3), &pkt).r0, (EINVAL as u64) << 32);
    let mut arp = pkt.clone();
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    assert_eq!(run(SchedCls, &prog(7, 1), &arp).r0, (-95i64 as u64) << 32);
}

#[test]
fn ecn_set_ce_edits_the_network_header_even_behind_a_vlan_tag() {
    // As the kernel does, the header at the skb's network header (here the 802.1Q tag) is
    // taken for the IPv4 header of the protocol behind the tag: TCI 0x0102 reads as ECT(0).
    let mut pkt = tcp4(0, 2);
    pkt.splice(12..12, [0x81, 0x00, 0x01, 0x02]);
    let out = run(SchedCls, "call bpf_skb_ecn_set_ce\nexit", &pkt);
    assert_eq!(out.r0, 1);
    assert_eq!(out.data[14..16], [0x01, 0x03]);
    // The "checksum" it updates is the inner header's flags and fragment offset: 0x4000 + 0xfffe.
    assert_eq!(out.data[24..26], [0x3f, 0xff]);
    let mut plain_vlan = tcp4(0x02, 2);
    plain_vlan.splice(12..12, [0x81, 0x00, 0x00, 0x64]);
    assert_eq!(run(SchedCls, "call bpf_skb_ecn_set_ce\nexit", &plain_vlan).r0, 0);
}

#[test]
fn tc_sk_assign_is_refused_outside_tc_ingress() {
    // SOCKINFO's socket, then bpf_sk_assign(skb, sk, FLAGS): a test run is not at tc ingress.
    let prog = |flags: u64| {
        SOCKINFO.replace(
            "     release:\n",
            &format!(
                "     release:\n         r1 = r6\n         r2 = r8\n         r3 = {flags}\n         \
                 call bpf_sk_assign\n         r9 = r0\n"
            ),
        )
    };
    for (flags, want) in [(0, -95), (1, EINVAL)] {
        let mut inst = instance(SchedCls, &prog(flags));
        inst.world.tcp_listen(sa("10.1.2.3:80")).expect("listen");
        assert_eq!(run_on(&mut inst, &tcp4(0, 2)).r0 as i64, want, "flags {flags}");
    }
}

#[test]
fn syscall_programs_get_socket_cookies_of_socket_pointers() {
    // A NULL socket pointer: 0 (bpf_get_socket_ptr_cookie).
    let insns = assemble("r1 = 0\ncall bpf_get_socket_cookie\nexit").expect("asm");
    let p = Program::raw("t", insns).with_type(ProgType::Syscall);
    let mut inst = Interpreter::default().instantiate(&Collection::single(p)).expect("instantiate");
    let out = inst.run(0, &RunInput::default()).expect("run");
    assert_eq!(out.r0, 0);
}

#[test]
fn tunnel_key_set_then_read_back() {
    // key on the stack at r10 - 48 (44 bytes), read back at r10 - 96; options at r10 - 104.
    let src = "
        r6 = r1
        r1 = 0
        *(u64 *)(r10 - 48) = r1
        *(u64 *)(r10 - 40) = r1
        *(u64 *)(r10 - 32) = r1
        *(u64 *)(r10 - 24) = r1
        *(u64 *)(r10 - 16) = r1
        *(u32 *)(r10 - 8) = r1
        r1 = 0x123456
        *(u32 *)(r10 - 48) = r1
        r1 = 0x0a000001
        *(u32 *)(r10 - 44) = r1
        r1 = 0x4010
        *(u16 *)(r10 - 28) = r1
        r1 = 0x0a000002
        *(u32 *)(r10 - 20) = r1
        r1 = r6
        r2 = r10
        r2 += -48
        r3 = 44
        r4 = 10
        call bpf_skb_set_tunnel_key
        r7 = r0
        r1 = 0x0807060504030201 ll
        *(u64 *)(r10 - 104) = r1
        r1 = r6
        r2 = r10
        r2 += -104
        r3 = 8
        call bpf_skb_set_tunnel_opt
        r7 |= r0
        r1 = r6
        r2 = r10
        r2 += -96
        r3 = 44
        r4 = 16
        call bpf_skb_get_tunnel_key
        r7 |= r0
        r0 = r7
        exit";
    assert_eq!(r0(SchedCls, src, &tcp4(0, 2)), 0);
    // Read back: remote and local swap (the metadata's source and destination), the flags
    // are NOCACHE | SEQ | KEY | options present (be16 0xf80c), tos 0x10, ttl 0x40.
    let read = src
        .replace("        r0 = r7\n        exit", "        r0 = *(u32 *)(r10 - 76)\n        exit");
    assert_eq!(run(SchedCls, &read, &tcp4(0, 2)).r0, 0x0cf8_4010);
    let remote = src
        .replace("        r0 = r7\n        exit", "        r0 = *(u32 *)(r10 - 92)\n        exit");
    assert_eq!(run(SchedCls, &remote, &tcp4(0, 2)).r0, 0x0a00_0002);
    let local = src
        .replace("        r0 = r7\n        exit", "        r0 = *(u32 *)(r10 - 68)\n        exit");
    assert_eq!(run(SchedCls, &local, &tcp4(0, 2)).r0, 0x0a00_0001);
    // Options before a key: -EINVAL; a key read with the wrong family: -EPROTO.
    let no_key = "r6 = r1\nr1 = 0\n*(u64 *)(r10 - 8) = r1\nr1 = r6\nr2 = r10\nr2 += -8\nr3 = 8\ncall bpf_skb_set_tunnel_opt\nexit";
    assert_eq!(r0(SchedCls, no_key, &tcp4(0, 2)), EINVAL);
    let wrong_family = src.replace(
        "r4 = 16\n        call bpf_skb_get_tunnel_key",
        "r4 = 17\n        call bpf_skb_get_tunnel_key",
    );
    assert_eq!(r0(SchedCls, &wrong_family, &tcp4(0, 2)), -71);
}

#[test]
fn strncmp_is_the_kernels() {
    // s1 on the stack, s2 ("abc") after it; r0 = bpf_strncmp(s1, N, s2).
    let prog = |s1: u64, n: u32| {
        format!(
            "r1 = {s1:#x} ll
             *(u64 *)(r10 - 16) = r1
             r1 = 0x636261 ll
             *(u64 *)(r10 - 8) = r1
             r1 = r10
             r1 += -16
             r2 = {n}
             r3 = r10
             r3 += -8
             call bpf_strncmp
             exit"
        )
    };
    let pkt = tcp4(0, 2);
    let cases = [
        (u64::from_le_bytes(*b"abc\0zzzz"), 8, 0),
        (u64::from_le_bytes(*b"abd\0zzzz"), 8, 1),
        (u64::from_le_bytes(*b"abb\0zzzz"), 8, -1),
        (u64::from_le_bytes(*b"abcd\0zzz"), 8, 1),
        (u64::from_le_bytes(*b"abXXXXXX"), 2, 0),
        (u64::from_le_bytes(*b"\xffbc\0zzzz"), 8, 1),
    ];
    for (s1, n, want) in cases {
        assert_eq!(r0(Xdp, &prog(s1, n), &pkt), want, "{:?} {n}", s1.to_le_bytes());
    }
}

/// An XDP program generating a raw SYN cookie for the frame's SYN (20-byte TCP header), then
/// checking it on the answering ACK built on the stack; r0 = mss << 32 | (check result as u32).
const RAW_SYNCOOKIE: &str = "
        r6 = r1
        r7 = *(u32 *)(r6 + 0)
        r1 = r7
        r1 += 14
        r2 = r7
        r2 += 34
        r3 = 20
        call bpf_tcp_raw_gen_syncookie_ipv4
        r8 = r0
        r1 = 0
        r2 = 0
    copy:
        r3 = r7
        r3 += 14
        r3 += r2
        r4 = *(u8 *)(r3 + 0)
        r5 = r10
        r5 += -40
        r5 += r2
        *(u8 *)(r5 + 0) = r4
        r2 += 1
        if r2 < 40 goto copy
        r1 = r8
        r1 += 1
        r1 = be32 r1
        *(u32 *)(r10 - 12) = r1
        r1 = *(u32 *)(r10 - 16)
        r1 = be32 r1
        r1 += 1
        r1 = be32 r1
        *(u32 *)(r10 - 16) = r1
        r1 = 0x10
        *(u8 *)(r10 - 7) = r1
        r1 = r10
        r1 += -40
        r2 = r10
        r2 += -20
        call bpf_tcp_raw_check_syncookie_ipv4
        r0 <<= 32
        r0 >>= 32
        r8 >>= 32
        r8 <<= 32
        r0 |= r8
        exit";

#[test]
fn raw_syncookies_round_trip() {
    let out = run(Xdp, RAW_SYNCOOKIE, &tcp4(0, 2));
    // 536 (no MSS option), and the cookie checks on its ACK.
    assert_eq!(out.r0, 536 << 32);
    // A frame with another TCP header length: -EINVAL.
    let bad = RAW_SYNCOOKIE.replace("r3 = 20\n", "r3 = 24\n");
    let mut longer = tcp4(0, 2);
    longer.extend_from_slice(&[0; 4]);
    let out = run(Xdp, &bad, &longer);
    assert_eq!(out.r0 >> 32, u64::from(u32::MAX));
}

#[test]
fn tcp_sock_views_the_counters() {
    // SOCKINFO's lookup, then r0 = mss_cache | snd_cwnd << 32 of bpf_tcp_sock(sk).
    let prog = SOCKINFO.replace(
        "         r9 = 0\n",
        "         r1 = r8\n         call bpf_tcp_sock\n         r9 = *(u32 *)(r0 + 28)\n         \
         r1 = *(u32 *)(r0 + 0)\n         r1 <<= 32\n         r9 |= r1\n         r1 = r8\n         \
         call bpf_sk_release\n         r0 = r9\n         exit\n",
    );
    // A listener: tcp_init_sock's values.
    let mut listening = instance(SchedCls, &prog);
    listening.world.tcp_listen(sa("10.1.2.3:80")).expect("listen");
    assert_eq!(run_on(&mut listening, &tcp4(0, 2)).r0, (10 << 32) | 536);
    // An established connection: the simulation's counters (MSS 1448).
    let mut connected = instance(SchedCls, &prog);
    connected.world.tcp_connect(sa("10.0.0.1:40000"), sa("10.1.2.3:80")).expect("connect");
    assert_eq!(run_on(&mut connected, &tcp4(0, 2)).r0, (10 << 32) | 1448);
    // Called twice, the view is the same region.
    let twice = "r6 = r1\n".to_string()
        + &SOCKINFO.replace(
            "         r9 = 0\n",
            "         r1 = r8\n         call bpf_tcp_sock\n         r9 = r0\n         r1 = r8\n         \
             call bpf_tcp_sock\n         r9 -= r0\n         r1 = r8\n         call bpf_sk_release\n         \
             r0 = r9\n         exit\n",
        );
    let mut inst = instance(SchedCls, &twice);
    inst.world.tcp_listen(sa("10.1.2.3:80")).expect("listen");
    assert_eq!(run_on(&mut inst, &tcp4(0, 2)).r0, 0);
}

#[test]
fn strtol_and_strtoul_parse_like_the_kernel() {
    // The text (up to 16 bytes) at r10 - 32; r0 = ret << 32 | (value as u32).
    let prog = |text: &[u8], flags: u64, helper: &str| {
        let mut bytes = [0u8; 16];
        bytes[..text.len()].copy_from_slice(text);
        let lo = u64::from_le_bytes(bytes[..8].try_into().expect("8"));
        let hi = u64::from_le_bytes(bytes[8..].try_into().expect("8"));
        format!(
            "r1 = {lo:#x} ll
             *(u64 *)(r10 - 32) = r1
             r1 = {hi:#x} ll
             *(u64 *)(r10 - 24) = r1
             r1 = r10
             r1 += -32
             r2 = 16
             r3 = {flags}
             r4 = r10
             r4 += -8
             call {helper}
             r0 <<= 32
             r1 = *(u32 *)(r10 - 8)
             r0 |= r1
             exit"
        )
    };
    let pkt = tcp4(0, 2);
    let run_one = |text: &[u8], flags: u64, helper: &str| {
        let r = run(Xdp, &prog(text, flags, helper), &pkt).r0;
        ((r >> 32) as i32, r as u32)
    };
    assert_eq!(run_one(b"  -123abc", 0, "bpf_strtol"), (6, (-123i32) as u32));
    assert_eq!(run_one(b"  -123abc", 0, "bpf_strtoul"), (-22, 0));
    assert_eq!(run_one(b"0x1fz", 0, "bpf_strtoul"), (4, 31));
    assert_eq!(run_one(b"077", 0, "bpf_strtol"), (3, 63));
    assert_eq!(run_one(b"abc", 16, "bpf_strtol"), (3, 0xabc));
    assert_eq!(run_one(b"0x", 16, "bpf_strtol"), (-22, 0));
    assert_eq!(run_one(b"\xa0 42", 0, "bpf_strtol"), (4, 42));
    assert_eq!(run_one(b"42", 2, "bpf_strtol"), (-22, 0));
    assert_eq!(run_one(b"42", 1 << 5, "bpf_strtol"), (-22, 0));
    assert_eq!(run_one(b"9999999999999999", 16, "bpf_strtoul"), (16, 0x9999_9999));
    // 16 hexadecimal digits fill 64 bits; a 17th would overflow (-ERANGE, value 0).
    assert_eq!(run_one(b"0x99999999999999", 0, "bpf_strtoul"), (16, 0x9999_9999));
}
