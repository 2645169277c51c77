//! `__sk_buff` programs on a simulated test-run skb: field values and access rules per program
//! type, narrow loads, ctx_in/ctx_out, LD_ABS, and the skb helpers with exact results (the
//! same behaviours are compared against the kernel in kernel/tests/skb_vs_kernel.rs).

use bpflab_vm::asm::assemble;
use bpflab_vm::ctx::CtxError;
use bpflab_vm::engine::{EngineError, ProgType, RunInput, RunOutcome};
use bpflab_vm::env::RedirectTarget;
use bpflab_vm::helpers::HelperError;
use bpflab_vm::interp::Instance;
use bpflab_vm::memory::{Access, MemError};
use bpflab_vm::{Collection, Interpreter, Program, VmErrorKind};

use ProgType::{CgroupSkb, FlowDissector, SchedCls, SkSkb, SocketFilter, Xdp};

fn instance(t: ProgType, src: &str) -> Instance {
    let insns = assemble(src).unwrap_or_else(|e| panic!("{e}\n{src}"));
    Interpreter::default()
        .instantiate(&Collection::single(Program::raw("t", insns).with_type(t)))
        .expect("instantiate")
}

fn run_ctx(
    t: ProgType,
    src: &str,
    pkt: &[u8],
    ctx: Option<Vec<u8>>,
) -> Result<RunOutcome, EngineError> {
    let mut input = RunInput::data(pkt.to_vec());
    input.ctx = ctx;
    instance(t, src).run(0, &input)
}

fn run(t: ProgType, src: &str, pkt: &[u8]) -> RunOutcome {
    run_ctx(t, src, pkt, None).unwrap_or_else(|e| panic!("{e}\n{src}"))
}

fn r0(t: ProgType, src: &str, pkt: &[u8]) -> u64 {
    run(t, src, pkt).r0
}

/// The fault of a run that must fail.
fn fault(t: ProgType, src: &str, pkt: &[u8]) -> VmErrorKind {
    match run_ctx(t, src, pkt, None) {
        Err(EngineError::Fault(e)) => e.kind().clone(),
        other => panic!("expected a fault, got {other:?}\n{src}"),
    }
}

/// An Ethernet + IPv4 + TCP SYN frame (54 bytes): 02:00:00:00:00:01 -> 02:00:00:00:00:02,
/// 10.0.0.1:40000 -> 10.1.2.3:80, IP checksum 0x1298, TCP checksum 0x025c.
fn tcp4() -> Vec<u8> {
    let mut p = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    p.extend_from_slice(&[
        0x45, 0, 0, 40, 0x12, 0x34, 0x40, 0, 64, 6, 0x12, 0x98, 10, 0, 0, 1, 10, 1, 2, 3,
    ]);
    p.extend_from_slice(&[
        0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xfa, 0xf0, 0x02, 0x5c, 0, 0,
    ]);
    p
}

/// The same frame behind an 802.1Q tag (VID 100).
fn vlan() -> Vec<u8> {
    let p = tcp4();
    let mut v = p[..12].to_vec();
    v.extend_from_slice(&[0x81, 0x00, 0x00, 0x64]);
    v.extend_from_slice(&p[12..]);
    v
}

/// The Internet checksum of `data`, as stored in a header.
fn inet_csum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn le(bytes: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b[..bytes.len()].copy_from_slice(bytes);
    u64::from_le_bytes(b)
}

#[test]
fn packet_tests_checksums() {
    let p = tcp4();
    assert_eq!(inet_csum(&p[14..34]), 0);
    let mut pseudo = p[26..34].to_vec();
    pseudo.extend_from_slice(&[0, 6, 0, 20]);
    pseudo.extend_from_slice(&p[34..]);
    assert_eq!(inet_csum(&pseudo), 0);
}

#[test]
fn socket_filters_see_the_skb_from_the_network_header() {
    let p = tcp4();
    let read = |off: usize| r0(SocketFilter, &format!("r0 = *(u32 *)(r1 + {off})\nexit"), &p);
    assert_eq!(read(0), 40); // len: the frame minus the Ethernet header
    assert_eq!(read(4), 3); // pkt_type: PACKET_OTHERHOST
    assert_eq!(read(16), 0x0008); // protocol, as the big-endian field reads
    assert_eq!(read(40), 1); // ifindex: the loopback
    assert_eq!(read(8), 0); // mark
    // LD_ABS offsets are relative to skb->data: the IPv4 header.
    assert_eq!(r0(SocketFilter, "r6 = r1\nr0 = *(u8 *)skb[0]\nexit", &p), 0x45);
    assert_eq!(r0(SocketFilter, "r6 = r1\nr0 = *(u32 *)skb[16]\nexit", &p), 0x0a01_0203);
    assert_eq!(r0(SocketFilter, "r6 = r1\nr0 = *(u16 *)skb[39]\nr0 = 7\nexit", &p), 0);
    // The output comes back with the Ethernet header zeroed.
    let out = run(SocketFilter, "r0 = 0\nexit", &p);
    assert_eq!(&out.data[..14], &[0; 14]);
    assert_eq!(&out.data[14..], &p[14..]);
    assert_eq!(out.ctx, None);
}

#[test]
fn tc_sees_the_frame_and_pointers() {
    let p = tcp4();
    let src = "r2 = *(u32 *)(r1 + 76)\nr3 = *(u32 *)(r1 + 80)\nr0 = r3\nr0 -= r2\nexit";
    assert_eq!(r0(SchedCls, src, &p), 54);
    let src = "r2 = *(u32 *)(r1 + 76)\nr3 = *(u32 *)(r1 + 140)\nr0 = r3\nr0 -= r2\nexit";
    assert_eq!(r0(SchedCls, src, &p), 0); // data_meta == data: no metadata in a test run
    assert_eq!(r0(SchedCls, "r6 = r1\nr0 = *(u16 *)skb[12]\nexit", &p), 0x0800);
    let src = "r2 = *(u32 *)(r1 + 76)\nr3 = *(u32 *)(r1 + 80)\nr4 = r2\nr4 += 14\n\
               if r4 > r3 goto out\n*(u16 *)(r2 + 12) = 0xdd86\nout:\nr0 = 0\nexit";
    let out = run(SchedCls, src, &p);
    assert_eq!(&out.data[12..14], &[0x86, 0xdd]);
    assert_eq!(out.data.len(), 54);
    // Reading past data_end faults.
    let src = "r2 = *(u32 *)(r1 + 76)\nr0 = *(u8 *)(r2 + 54)\nexit";
    assert!(matches!(fault(SchedCls, src, &p), VmErrorKind::Memory(MemError::OutOfBounds { .. })));
}

#[test]
fn narrow_loads_follow_the_rewrite_width() {
    let p = tcp4();
    let read =
        |ty: &str, off: usize| r0(SchedCls, &format!("r0 = *({ty} *)(r1 + {off})\nexit"), &p);
    // protocol is a 2-byte field: bytes shift, a 2-byte load anywhere in it reads it whole.
    assert_eq!(read("u8", 16), 0x08);
    assert_eq!(read("u8", 17), 0x00);
    assert_eq!(read("u8", 18), 0);
    assert_eq!(read("u16", 16), 0x0008);
    assert_eq!(read("u16", 18), 0x0008);
    // pkt_type is loaded as one byte: every narrow load of it reads it.
    assert_eq!(read("u8", 5), 3);
    assert_eq!(read("u16", 6), 3);
    // len is 4 bytes wide: narrow loads take its bytes.
    assert_eq!(read("u8", 0), 54);
    assert_eq!(read("u8", 1), 0);
    assert_eq!(read("u16", 2), 0);
    // cb[] is plain memory, any width.
    let src = "r2 = 0x0807060504030201 ll\n*(u64 *)(r1 + 48) = r2\nr0 = *(u16 *)(r1 + 50)\nexit";
    assert_eq!(r0(SchedCls, src, &p), 0x0403);
}

#[test]
fn access_rules_per_program_type() {
    let p = tcp4();
    let refused = |t: ProgType, src: &str| match fault(t, src, &p) {
        VmErrorKind::Memory(MemError::Context { access, off, len, reason }) => {
            (access, off, len, reason)
        }
        other => panic!("{other:?}"),
    };
    let (access, off, len, reason) = refused(SocketFilter, "r0 = *(u32 *)(r1 + 76)\nexit");
    assert_eq!((access, off, len), (Access::Read, 76, 4));
    assert_eq!(reason, "field not available to socket filters");
    let (access, off, _, _) = refused(SocketFilter, "r2 = 1\n*(u32 *)(r1 + 8) = r2\nr0 = 0\nexit");
    assert_eq!((access, off), (Access::Write, 8));
    let (_, _, _, reason) = refused(SchedCls, "r2 = 1\n*(u32 *)(r1 + 0) = r2\nr0 = 0\nexit");
    assert_eq!(reason, "field is read-only for tc programs");
    let (_, _, _, reason) = refused(SchedCls, "r0 = *(u64 *)(r1 + 8)\nexit");
    assert_eq!(reason, "fields are read as u32 or narrower, written as u32");
    let (_, _, _, reason) = refused(SchedCls, "r0 = *(u64 *)(r1 + 64)\nexit");
    assert_eq!(reason, "past the end of cb[]");
    let (_, _, _, reason) = refused(SchedCls, "r0 = *(u32 *)(r1 + 92)\nexit");
    assert_eq!(reason, "socket fields are not available to tc programs");
    let (_, _, _, reason) = refused(SchedCls, "r0 = *(u64 *)(r1 + 144)\nexit");
    assert_eq!(reason, "flow_keys is for flow dissectors only");
    let (_, _, _, reason) = refused(SchedCls, "r0 = *(u32 *)(r1 + 168)\nexit");
    assert_eq!(reason, "sk is a read-only pointer");
    let (_, _, _, reason) = refused(CgroupSkb, "r0 = *(u32 *)(r1 + 140)\nexit");
    assert_eq!(reason, "field not available to cgroup_skb programs");
    let (_, _, _, reason) = refused(SkSkb, "r0 = *(u32 *)(r1 + 8)\nexit");
    assert_eq!(reason, "mark is not available to sk_skb programs");
    assert_eq!(r0(SchedCls, "r0 = *(u8 *)(r1 + 180)\nexit", &p), 0); // tstamp_type: tc only
    refused(CgroupSkb, "r0 = *(u8 *)(r1 + 180)\nexit");
    // cgroup_skb sees the test run's socket: family and addresses from the packet.
    assert_eq!(r0(CgroupSkb, "r0 = *(u32 *)(r1 + 88)\nexit", &p), 2);
    assert_eq!(
        r0(CgroupSkb, "r0 = *(u32 *)(r1 + 96)\nexit", &p),
        u64::from(u32::from_le_bytes([10, 0, 0, 1]))
    );
    assert_eq!(
        r0(CgroupSkb, "r0 = *(u32 *)(r1 + 92)\nexit", &p),
        u64::from(u32::from_le_bytes([10, 1, 2, 3]))
    );
    // cgroup_skb's packet is read-only.
    let src = "r2 = *(u32 *)(r1 + 76)\nr3 = *(u32 *)(r1 + 80)\nr4 = r2\nr4 += 1\nif r4 > r3 goto out\n\
               *(u8 *)(r2 + 0) = 1\nout:\nr0 = 1\nexit";
    assert!(matches!(fault(CgroupSkb, src, &p), VmErrorKind::Memory(MemError::ReadOnly { .. })));
}

#[test]
fn writes_and_ctx_in_out() {
    let p = tcp4();
    let mut c = vec![0u8; 192];
    c[8] = 0x42; // mark
    c[32] = 7; // priority
    c[36] = 3; // ingress_ifindex
    c[48] = 0xaa; // cb[0]
    c[152] = 0x10; // tstamp
    c[176] = 0x78; // gso_size (not copied back)
    let src = "r2 = *(u32 *)(r1 + 8)\nr2 += 1\n*(u32 *)(r1 + 8) = r2\n\
               r2 = 5\n*(u32 *)(r1 + 12) = r2\nr2 = 0xffff\n*(u32 *)(r1 + 12) = r2\n\
               r2 = 0x12345678\n*(u32 *)(r1 + 44) = r2\n*(u32 *)(r1 + 72) = r2\n\
               r0 = *(u32 *)(r1 + 12)\nr2 = *(u32 *)(r1 + 44)\nr0 <<= 16\nr0 |= r2\n\
               r2 = *(u32 *)(r1 + 160)\n*(u32 *)(r1 + 52) = r2\nexit";
    let out = run_ctx(SchedCls, src, &p, Some(c.clone())).unwrap();
    // queue_mapping took 5 and ignored 0xffff; tc_index kept the low 16 bits.
    assert_eq!(out.r0, (5 << 16) | 0x5678);
    let ctx = out.ctx.expect("ctx_out");
    assert_eq!(ctx.len(), 192);
    assert_eq!(le(&ctx[8..12]), 0x43);
    assert_eq!(le(&ctx[32..36]), 7);
    assert_eq!(le(&ctx[36..40]), 3);
    assert_eq!(le(&ctx[40..44]), 1); // ifindex of the loopback
    assert_eq!(ctx[48], 0xaa);
    assert_eq!(le(&ctx[52..56]), 54); // wire_len defaulted to the skb length
    assert_eq!(le(&ctx[152..160]), 0x10);
    assert_eq!(le(&ctx[160..164]), 54);
    assert_eq!(le(&ctx[176..180]), 0x78);
    // Fields a test run does not take, and bad values, are refused.
    let bad = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut c = vec![0u8; 192];
        f(&mut c);
        run_ctx(SchedCls, "r0 = 0\nexit", &p, Some(c)).unwrap_err()
    };
    assert!(matches!(bad(&|c| c[0] = 1), EngineError::Context(CtxError::BadCtx(_))));
    assert!(matches!(bad(&|c| c[180] = 1), EngineError::Context(CtxError::BadCtx(_))));
    assert!(matches!(bad(&|c| c[40] = 2), EngineError::Context(CtxError::BadCtx(_))));
    assert!(matches!(bad(&|c| c[160] = 10), EngineError::Context(CtxError::BadCtx(_))));
    assert!(matches!(bad(&|c| c[166] = 1), EngineError::Context(CtxError::BadCtx(_))));
    assert!(matches!(bad(&|c| c.push(1)), EngineError::Context(CtxError::BadCtx(_))));
    // A shorter ctx_in is zero-extended (the kernel ran this one with r0 = 5).
    let short = vec![0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0];
    let out = run_ctx(SchedCls, "r0 = *(u32 *)(r1 + 8)\nexit", &p, Some(short)).unwrap();
    assert_eq!(out.r0, 5);
    // Without a ctx_in, wire_len is 0 and there is no ctx_out.
    let out = run(SchedCls, "r0 = *(u32 *)(r1 + 160)\nexit", &p);
    assert_eq!((out.r0, out.ctx), (0, None));
}

#[test]
fn packet_length_limits() {
    let err = |t: ProgType, pkt: &[u8]| run_ctx(t, "r0 = 0\nexit", pkt, None).unwrap_err();
    assert!(matches!(
        err(SchedCls, &[0; 10]),
        EngineError::Context(CtxError::PacketTooShort { len: 10, min: 14 })
    ));
    assert!(matches!(
        err(SocketFilter, &tcp4()[..33]),
        EngineError::Context(CtxError::PacketTooShort { len: 33, min: 34 })
    ));
    assert!(matches!(
        err(SchedCls, &vec![0; 3713]),
        EngineError::Context(CtxError::PacketTooLong { len: 3713, max: 3712 })
    ));
    let mut eth_only = tcp4()[..14].to_vec();
    eth_only[12] = 0x12;
    assert_eq!(run(SocketFilter, "r0 = *(u32 *)(r1 + 0)\nexit", &eth_only).r0, 0);
}

fn load_bytes(off: i64, len: u32) -> String {
    format!(
        "r6 = r1\nr2 = -1\n*(u64 *)(r10 - 8) = r2\nr1 = r6\nr2 = {off} ll\nr3 = r10\nr3 += -8\n\
         r4 = {len}\ncall bpf_skb_load_bytes\n*(u64 *)(r6 + 48) = r0\nr0 = *(u64 *)(r10 - 8)\nexit"
    )
}

#[test]
fn skb_load_bytes_and_relative() {
    let p = tcp4();
    let zc = Some(vec![0u8; 192]);
    let out = run_ctx(SchedCls, &load_bytes(26, 4), &p, zc.clone()).unwrap();
    assert_eq!(out.r0, 0xffff_ffff_0100_000a);
    assert_eq!(le(&out.ctx.unwrap()[48..56]), 0);
    // Past the end: -EFAULT and the buffer zeroed.
    let out = run_ctx(SchedCls, &load_bytes(51, 4), &p, zc.clone()).unwrap();
    assert_eq!(out.r0, 0xffff_ffff_0000_0000);
    assert_eq!(le(&out.ctx.unwrap()[48..56]), -14i64 as u64);
    let out = run_ctx(SchedCls, &load_bytes(-1, 4), &p, zc.clone()).unwrap();
    assert_eq!(le(&out.ctx.unwrap()[48..56]), -14i64 as u64);
    // Socket filters count from the network header.
    assert_eq!(run(SocketFilter, &load_bytes(0, 1), &p).r0, 0xffff_ffff_ffff_ff45);
    // Relative loads: the MAC header of a socket filter's skb is still in front of data.
    let rel = |hdr: u32, off: u32| {
        format!(
            "r6 = r1\n*(u64 *)(r10 - 8) = 0\nr1 = r6\nr2 = {off}\nr3 = r10\nr3 += -8\nr4 = 8\n\
             r5 = {hdr}\ncall bpf_skb_load_bytes_relative\nr1 = *(u64 *)(r10 - 8)\nr0 <<= 32\n\
             r0 |= r1\nexit"
        )
    };
    assert_eq!(run(SocketFilter, &rel(0, 0), &p).r0 as u32 as u64, le(&p[0..4]));
    assert_eq!(run(SocketFilter, &rel(0, 6), &p).r0 as u32 as u64, le(&p[6..10]));
    assert_eq!(run(SocketFilter, &rel(1, 12), &p).r0 as u32 as u64, le(&p[26..30]));
    assert_eq!(run(SocketFilter, &rel(1, 33), &p).r0 >> 32, -14i64 as u32 as u64);
    assert_eq!(run(SchedCls, &rel(2, 0), &p).r0 >> 32, -14i64 as u32 as u64);
}

#[test]
fn store_bytes_and_hash_invalidation() {
    let p = tcp4();
    let store = |off: i64, flags: u64| {
        format!(
            "r6 = r1\nr1 = r6\nr2 = 0x99\ncall bpf_set_hash\n*(u32 *)(r10 - 4) = 0x11223344\n\
             r1 = r6\nr2 = {off} ll\nr3 = r10\nr3 += -4\nr4 = 4\nr5 = {flags}\n\
             call bpf_skb_store_bytes\n*(u64 *)(r6 + 48) = r0\nr0 = *(u32 *)(r6 + 68)\nexit"
        )
    };
    let zc = Some(vec![0u8; 192]);
    let out = run_ctx(SchedCls, &store(0, 0), &p, zc.clone()).unwrap();
    assert_eq!(&out.data[..4], &[0x44, 0x33, 0x22, 0x11]);
    assert_eq!(out.r0, 0x99);
    let out = run_ctx(SchedCls, &store(50, 2), &p, zc.clone()).unwrap();
    assert_eq!(&out.data[50..], &[0x44, 0x33, 0x22, 0x11]);
    assert_eq!(out.r0, 0); // BPF_F_INVALIDATE_HASH
    let ret = |src: &str| le(&run_ctx(SchedCls, src, &p, zc.clone()).unwrap().ctx.unwrap()[48..56]);
    assert_eq!(ret(&store(51, 0)), -14i64 as u64);
    assert_eq!(ret(&store(0, 4)), -22i64 as u64);
    assert_eq!(ret(&store(0x8000_0000, 0)), -14i64 as u64);
    // Socket filters may not call it.
    let src = "r6 = r1\n*(u32 *)(r10 - 4) = 0\nr1 = r6\nr2 = 0\nr3 = r10\nr3 += -4\nr4 = 4\n\
               r5 = 0\ncall bpf_skb_store_bytes\nexit";
    assert!(matches!(
        fault(SocketFilter, src, &p),
        VmErrorKind::Helper { error: HelperError::NotAllowed { prog_type: SocketFilter }, .. }
    ));
}

#[test]
fn checksum_helpers_are_bit_exact() {
    let p = tcp4();
    // DNAT 10.1.2.3:80 -> 10.9.8.7:8080: both checksums come out as a full recomputation.
    let new_ip = u32::from_le_bytes([10, 9, 8, 7]);
    let src = format!(
        "r6 = r1
        r8 = *(u32 *)(r6 + 76)
        r1 = r8
        r1 += 54
        r2 = *(u32 *)(r6 + 80)
        if r1 > r2 goto out
        r8 = *(u32 *)(r8 + 30)
        r1 = r6
        r2 = 24
        r3 = r8
        r4 = {new_ip}
        r5 = 4
        call bpf_l3_csum_replace
        r1 = r6
        r2 = 50
        r3 = r8
        r4 = {new_ip}
        r5 = 0x14
        call bpf_l4_csum_replace
        *(u32 *)(r10 - 4) = {new_ip}
        r1 = r6
        r2 = 30
        r3 = r10
        r3 += -4
        r4 = 4
        r5 = 0
        call bpf_skb_store_bytes
        r1 = r6
        r2 = 50
        r3 = 0x5000
        r4 = 0x901f
        r5 = 0x12
        call bpf_l4_csum_replace
        *(u16 *)(r10 - 4) = 0x901f
        r1 = r6
        r2 = 36
        r3 = r10
        r3 += -4
        r4 = 2
        r5 = 0
        call bpf_skb_store_bytes
    out:
        r0 = 0
        exit"
    );
    let out = run(SchedCls, &src, &p);
    let d = &out.data;
    assert_eq!(&d[30..34], &[10, 9, 8, 7]);
    assert_eq!(&d[36..38], &[0x1f, 0x90]);
    assert_eq!(inet_csum(&d[14..34]), 0, "IP checksum valid");
    let mut pseudo = d[26..34].to_vec();
    pseudo.extend_from_slice(&[0, 6, 0, 20]);
    pseudo.extend_from_slice(&d[34..]);
    assert_eq!(inet_csum(&pseudo), 0, "TCP checksum valid");
    assert_eq!(&d[24..26], &[0x0c, 0x8c]);
    // csum_diff: a valid IPv4 header sums to 0xffff; 10.1.2.3 -> 10.9.8.7 is 3078.
    let src = "r2 = *(u32 *)(r1 + 76)\nr3 = *(u32 *)(r1 + 80)\nr1 = r2\nr1 += 14\nr4 = r1\n\
               r4 += 20\nr0 = 0\nif r4 > r3 goto out\nr3 = r1\nr1 = 0\nr2 = 0\nr4 = 20\nr5 = 0\n\
               call bpf_csum_diff\nout:\nexit";
    assert_eq!(r0(SchedCls, src, &p), 0xffff);
    let src = format!(
        "*(u32 *)(r10 - 4) = {}\n*(u32 *)(r10 - 8) = {new_ip}\nr1 = r10\nr1 += -4\nr2 = 4\n\
         r3 = r10\nr3 += -8\nr4 = 4\nr5 = 0\ncall bpf_csum_diff\nexit",
        u32::from_le_bytes([10, 1, 2, 3])
    );
    assert_eq!(r0(SchedCls, &src, &p), 3078);
    // csum_diff is an XDP helper too; with no data it folds the seed.
    let src = "r1 = 0\nr2 = 0\nr3 = 0\nr4 = 0\nr5 = 0x12345678\ncall bpf_csum_diff\nexit";
    assert_eq!(r0(Xdp, src, &p), 0x68ac);
    // Errors: bad flags, odd or out-of-range offsets.
    let call = |helper: &str, off: u32, from: u64, flags: u64| {
        r0(
            SchedCls,
            &format!("r2 = {off}\nr3 = {from}\nr4 = 1\nr5 = {flags:#x}\ncall bpf_{helper}\nexit"),
            &p,
        )
    };
    assert_eq!(call("l3_csum_replace", 24, 0, 0x10), -22i64 as u64);
    assert_eq!(call("l3_csum_replace", 25, 0, 0), -14i64 as u64);
    assert_eq!(call("l3_csum_replace", 54, 0, 0), -14i64 as u64);
    assert_eq!(call("l3_csum_replace", 24, 1, 0), -22i64 as u64);
    assert_eq!(call("l4_csum_replace", 50, 1, 0x100), -22i64 as u64);
    assert_eq!(call("l4_csum_replace", 50, 1, 3), -22i64 as u64);
    // csum_update has no CHECKSUM_COMPLETE skb to update: -ENOTSUPP.
    assert_eq!(call("csum_update", 0, 0, 0), -524i64 as u64);
}

#[test]
fn l4_csum_replace_mangled_zero() {
    let mut p = tcp4();
    p[50] = 0;
    p[51] = 0;
    let src = |flags: u64| {
        format!(
            "r2 = 50\nr3 = 0x1111\nr4 = 0x2222\nr5 = {flags:#x}\ncall bpf_l4_csum_replace\nr0 = 0\nexit"
        )
    };
    // BPF_F_MARK_MANGLED_0: a zero checksum means "none" and stays.
    assert_eq!(&run(SchedCls, &src(0x24), &p).data[50..52], &[0, 0]);
    assert_ne!(&run(SchedCls, &src(0x64), &p).data[50..52], &[0, 0]);
    // A result of 0 is written as 0xffff (CSUM_MANGLED_0).
    let p = tcp4();
    let src = |flags: u64| {
        format!(
            "r6 = r1\nr2 = *(u32 *)(r6 + 76)\nr3 = *(u32 *)(r6 + 80)\nr4 = r2\nr4 += 52\n\
             if r4 > r3 goto out\nr4 = *(u16 *)(r2 + 50)\nr1 = r6\nr2 = 50\nr3 = 0\n\
             r5 = {flags:#x}\ncall bpf_l4_csum_replace\nout:\nr0 = 0\nexit"
        )
    };
    assert_eq!(&run(SchedCls, &src(0x20), &p).data[50..52], &[0xff, 0xff]);
    assert_eq!(&run(SchedCls, &src(0), &p).data[50..52], &[0, 0]);
}

#[test]
fn csum_level_walks_checksum_unnecessary() {
    let mut src = String::from("r6 = r1\n");
    for (i, level) in [0u64, 1, 0, 1, 1, 1, 1, 0, 2, 0, 3, 0, 9].iter().enumerate() {
        src += &format!("r1 = r6\nr2 = {level}\ncall bpf_csum_level\n*(u8 *)(r6 + {})\n", 48 + i)
            .replace(")\n", ") = r0\n");
    }
    src += "r0 = 0\nexit";
    let out = run_ctx(SchedCls, &src, &tcp4(), Some(vec![0; 192])).unwrap();
    let ctx = out.ctx.unwrap();
    // -EACCES, ok, 0, ok x4, 3 (capped), ok, 2, ok, -EACCES, -EINVAL.
    assert_eq!(&ctx[48..61], &[0xf3, 0, 0, 0, 0, 0, 0, 3, 0, 2, 0, 0xf3, 0xea]);
}

#[test]
fn resizing_helpers() {
    let p = tcp4();
    let call = |t: ProgType, helper: &str, args: &str| {
        run(t, &format!("r6 = r1\n{args}\ncall bpf_{helper}\nexit"), &p)
    };
    // change_tail grows with zeros and trims, not below the network header (tc: 14).
    let out = call(SchedCls, "skb_change_tail", "r2 = 60\nr3 = 0");
    assert_eq!((out.r0, out.data.len()), (0, 60));
    assert_eq!(&out.data[54..], &[0; 6]);
    assert_eq!(call(SchedCls, "skb_change_tail", "r2 = 14\nr3 = 0").data, p[..14].to_vec());
    assert_eq!(call(SchedCls, "skb_change_tail", "r2 = 13\nr3 = 0").r0, -22i64 as u64);
    assert_eq!(call(SchedCls, "skb_change_tail", "r2 = 16065\nr3 = 0").r0, -22i64 as u64);
    // change_head pushes zeros in front and makes them the MAC header.
    let out = call(SchedCls, "skb_change_head", "r2 = 4\nr3 = 0");
    assert_eq!(&out.data[..4], &[0; 4]);
    assert_eq!(&out.data[4..], &p[..]);
    assert_eq!(call(SchedCls, "skb_change_head", "r2 = 0x80000000 ll\nr3 = 0").r0, -22i64 as u64);
    // pull_data fails only past the end.
    assert_eq!(call(SchedCls, "skb_pull_data", "r2 = 54").r0, 0);
    assert_eq!(call(SchedCls, "skb_pull_data", "r2 = 55").r0, -12i64 as u64);
    // adjust_room: 8 zero bytes after the IPv4 header, or 4 after the MAC header.
    let out = call(SchedCls, "skb_adjust_room", "r2 = 8\nr3 = 0\nr4 = 0");
    assert_eq!(out.r0, 0);
    assert_eq!(&out.data[..34], &p[..34]);
    assert_eq!(&out.data[34..42], &[0; 8]);
    assert_eq!(&out.data[42..], &p[34..]);
    let out = call(SchedCls, "skb_adjust_room", "r2 = 4\nr3 = 1\nr4 = 0");
    assert_eq!(&out.data[14..18], &[0; 4]);
    assert_eq!(&out.data[18..], &p[14..]);
    let out = call(SchedCls, "skb_adjust_room", "r2 = -8\nr3 = 0\nr4 = 0");
    assert_eq!(out.data, [&p[..34], &p[42..]].concat());
    assert_eq!(call(SchedCls, "skb_adjust_room", "r2 = -21\nr3 = 0\nr4 = 0").r0, -524i64 as u64);
    assert_eq!(call(SchedCls, "skb_adjust_room", "r2 = 8\nr3 = 2\nr4 = 0").r0, -524i64 as u64);
    assert_eq!(call(SchedCls, "skb_adjust_room", "r2 = 4096\nr3 = 0\nr4 = 0").r0, -14i64 as u64);
    assert_eq!(call(SchedCls, "skb_adjust_room", "r2 = 8\nr3 = 0\nr4 = 0x200").r0, -22i64 as u64);
    // Encapsulation: the outer L3 protocol follows the flags, a second encap is refused.
    let src = "r6 = r1\nr2 = 40\nr3 = 1\nr4 = 4\ncall bpf_skb_adjust_room\nr1 = r6\nr2 = 40\n\
               r3 = 1\nr4 = 4\ncall bpf_skb_adjust_room\nw7 = w0\nr0 = *(u32 *)(r6 + 16)\n\
               r0 <<= 32\nr0 |= r7\nexit";
    assert_eq!(r0(SchedCls, src, &p), (0xdd86 << 32) | (-114i64 as u32 as u64));
    // change_proto: 20 zero bytes after the MAC header, protocol IPv6.
    let src =
        "r6 = r1\nr2 = 0xdd86\nr3 = 0\ncall bpf_skb_change_proto\nr0 = *(u32 *)(r6 + 16)\nexit";
    let out = run(SchedCls, src, &p);
    assert_eq!(out.r0, 0xdd86);
    assert_eq!(out.data.len(), 74);
    assert_eq!(&out.data[14..34], &[0; 20]);
    assert_eq!(&out.data[34..], &p[14..]);
    assert_eq!(call(SchedCls, "skb_change_proto", "r2 = 0x0608\nr3 = 0").r0, -524i64 as u64);
    // change_type accepts PACKET_HOST .. PACKET_OTHERHOST.
    assert_eq!(call(SchedCls, "skb_change_type", "r2 = 1").r0, 0);
    assert_eq!(call(SchedCls, "skb_change_type", "r2 = 4").r0, -22i64 as u64);
}

#[test]
fn vlan_tags_are_metadata_until_pushed_twice() {
    let p = tcp4();
    let fields = "r0 = *(u32 *)(r6 + 20)\nr2 = *(u32 *)(r6 + 24)\nr0 <<= 16\nr0 |= r2\n\
                  r2 = *(u32 *)(r6 + 28)\nr0 <<= 16\nr0 |= r2\nr2 = *(u32 *)(r6 + 16)\n\
                  r0 <<= 16\nr0 |= r2\nexit";
    let push = |proto: u32, tci: u32| {
        format!("r1 = r6\nr2 = {proto:#x}\nr3 = {tci}\ncall bpf_skb_vlan_push\n")
    };
    // One push: the tag is hw-accel metadata, the frame is unchanged.
    let out = run(SchedCls, &format!("r6 = r1\n{}{fields}", push(0x81, 100)), &p);
    assert_eq!(out.r0, 0x0001_0064_0081_0008);
    assert_eq!(out.data, p);
    // An unknown protocol becomes 802.1Q.
    let out = run(SchedCls, &format!("r6 = r1\n{}{fields}", push(0x3412, 7)), &p);
    assert_eq!(out.r0, 0x0001_0007_0081_0008);
    // A second push moves the first tag into the frame.
    let out =
        run(SchedCls, &format!("r6 = r1\n{}{}{fields}", push(0x81, 100), push(0xa888, 200)), &p);
    assert_eq!(out.r0, 0x0001_00c8_a888_0081);
    assert_eq!(out.data, vlan());
    // Popping an in-band tag removes it from the frame.
    let out = run(SchedCls, &format!("r6 = r1\nr1 = r6\ncall bpf_skb_vlan_pop\n{fields}"), &vlan());
    assert_eq!(out.r0, 0x0008);
    assert_eq!(out.data, p);
    // Popping with no tag at all does nothing.
    assert_eq!(run(SchedCls, "call bpf_skb_vlan_pop\nexit", &p).data, p);
}

#[test]
fn redirect_records_the_target() {
    let p = tcp4();
    let mut inst = instance(SchedCls, "r1 = 4\nr2 = 1\ncall bpf_redirect\nexit");
    let out = inst.run(0, &RunInput::data(p.clone())).unwrap();
    assert_eq!(out.r0, 7); // TC_ACT_REDIRECT
    let r = inst.world.env.redirect.clone().expect("recorded");
    assert_eq!((r.helper, r.flags, r.target), ("bpf_redirect", 1, RedirectTarget::Ifindex(4)));
    assert_eq!(r0(SchedCls, "r1 = 4\nr2 = 2\ncall bpf_redirect\nexit", &p), 2); // TC_ACT_SHOT
    assert_eq!(r0(Xdp, "r1 = 4\nr2 = 0\ncall bpf_redirect\nexit", &p), 4); // XDP_REDIRECT
    assert_eq!(r0(Xdp, "r1 = 4\nr2 = 1\ncall bpf_redirect\nexit", &p), 0); // XDP_ABORTED
}

#[test]
fn hashes_and_socket_helpers() {
    let p = tcp4();
    let src = "r6 = r1\ncall bpf_get_hash_recalc\nr7 = r0\nr1 = r6\ncall bpf_get_hash_recalc\n\
               r2 = *(u32 *)(r6 + 68)\nr0 = 0\nif r7 == 0 goto out\nif r7 != r2 goto out\nr0 = 1\n\
               out:\nexit";
    assert_eq!(r0(SchedCls, src, &p), 1);
    let src = "r6 = r1\nr2 = 0x1234\ncall bpf_set_hash\nr1 = r6\ncall bpf_get_hash_recalc\nexit";
    assert_eq!(r0(SchedCls, src, &p), 0x1234);
    let src = "r6 = r1\nr2 = 0x1234\ncall bpf_set_hash\nr1 = r6\ncall bpf_set_hash_invalid\n\
               r0 = *(u32 *)(r6 + 68)\nexit";
    assert_eq!(r0(SchedCls, src, &p), 0);
    assert_ne!(r0(SocketFilter, "call bpf_get_socket_cookie\nexit", &p), 0);
    assert_eq!(r0(CgroupSkb, "call bpf_get_socket_uid\nexit", &p), 0);
}

#[test]
fn flow_dissector_fills_flow_keys() {
    let p = tcp4();
    let src = "r2 = *(u64 *)(r1 + 144)\nr3 = *(u32 *)(r1 + 76)\nr4 = *(u32 *)(r1 + 80)\n\
               r4 -= r3\n*(u16 *)(r2 + 12) = r4\n*(u8 *)(r2 + 9) = 6\n*(u16 *)(r2 + 2) = 9999\n\
               r0 = 0\nexit";
    let out = run(FlowDissector, src, &p);
    let mut keys = vec![0u8; 56];
    keys[0] = 14; // nhoff
    keys[2..4].copy_from_slice(&54u16.to_le_bytes()); // thoff, clamped to the packet
    keys[9] = 6; // ip_proto
    keys[10..12].copy_from_slice(&[0x08, 0x00]); // n_proto from the frame
    keys[12..14].copy_from_slice(&54u16.to_le_bytes()); // sport = data_end - data
    assert_eq!((out.r0, out.data), (0, keys));
    // load_bytes has no skb in a flow dissector test run.
    let src = "r6 = r1\nr1 = r6\nr2 = 0\nr3 = r10\nr3 += -8\nr4 = 4\ncall bpf_skb_load_bytes\nexit";
    assert_eq!(r0(FlowDissector, src, &p), -14i64 as u64);
    assert!(matches!(
        fault(FlowDissector, "r0 = *(u32 *)(r1 + 8)\nexit", &p),
        VmErrorKind::Memory(MemError::Context { .. })
    ));
}

#[test]
fn sk_skb_sees_the_message() {
    let msg = b"hello world".to_vec();
    let src = "r2 = *(u32 *)(r1 + 76)\nr3 = *(u32 *)(r1 + 80)\nr0 = r3\nr0 -= r2\nexit";
    assert_eq!(r0(SkSkb, src, &msg), 11);
    // tc_index and priority are its only writable fields; adjust_room adds room in front.
    let src = "r6 = r1\nr2 = 3\n*(u32 *)(r6 + 44) = r2\nr1 = r6\nr2 = 2\nr3 = 0\nr4 = 0\n\
               call bpf_skb_adjust_room\nr0 = *(u32 *)(r6 + 44)\nexit";
    let out = run(SkSkb, src, &msg);
    assert_eq!(out.r0, 3);
    assert_eq!(out.data, [&[0u8, 0][..], &msg[..]].concat());
    let src = "r1 = r1\nr2 = -5\nr3 = 0\nr4 = 0\ncall bpf_skb_adjust_room\nexit";
    assert_eq!(run(SkSkb, src, &msg).data, b" world".to_vec());
    let src = "r2 = 1\n*(u32 *)(r1 + 32) = r2\nr2 = 1\n*(u32 *)(r1 + 8) = r2\nr0 = 0\nexit";
    assert!(matches!(
        fault(SkSkb, src, &msg),
        VmErrorKind::Memory(MemError::Context { off: 8, .. })
    ));
}
