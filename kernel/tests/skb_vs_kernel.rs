//! The `__sk_buff` context and the skb helpers against the running kernel: every case runs
//! with `BPF_PROG_TEST_RUN` and in the interpreter, and both must agree on whether the program
//! is refused (by the verifier, or by the interpreter's context and helper rules), whether the
//! test run refuses its input, and otherwise on the return value, the output packet and the
//! output context.
//!
//! Cases: every offset and width of `__sk_buff` read by socket filter, tc, cgroup_skb and lwt
//! programs (with a ctx_in setting every settable field), pointer fields, writes, ctx_in
//! validation, packet length limits, LD_ABS/LD_IND, and each skb helper with its error
//! returns; flow dissector runs compare the `bpf_flow_keys` the test run returns.

use bpflab_kernel::{KernelError, KernelProgram, probe};
use bpflab_vm::asm::assemble;
use bpflab_vm::engine::EngineError;
use bpflab_vm::helpers::HelperError;
use bpflab_vm::memory::{MemError, RegionKind};
use bpflab_vm::{Collection, Interpreter, ProgType, Program, RunInput, VmErrorKind};

use ProgType::{CgroupSkb, FlowDissector, LwtIn, LwtXmit, SchedCls, SocketFilter, Xdp};

// ---------------------------------------------------------------------------------------------
// Packets

/// The Internet checksum of `data` (big-endian words), as stored in headers.
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

const SRC_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const DST_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];

fn eth(dst: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = dst.to_vec();
    p.extend_from_slice(&SRC_MAC);
    p.extend_from_slice(&ethertype.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

fn ipv4(proto: u8, src: [u8; 4], dst: [u8; 4], l4: &[u8]) -> Vec<u8> {
    let total = (20 + l4.len()) as u16;
    let mut h = vec![0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, proto, 0, 0];
    h[2..4].copy_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    let c = inet_csum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h.extend_from_slice(l4);
    h
}

/// A TCP or UDP segment with a valid checksum over the pseudo-header `pseudo` (addresses).
fn l4(proto: u8, pseudo: &[u8], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut s = sport.to_be_bytes().to_vec();
    s.extend_from_slice(&dport.to_be_bytes());
    let csum_at = if proto == 6 {
        s.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xfa, 0xf0, 0, 0, 0, 0]);
        16
    } else {
        s.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        s.extend_from_slice(&[0, 0]);
        6
    };
    s.extend_from_slice(payload);
    let mut ph = pseudo.to_vec();
    ph.extend_from_slice(&[0, proto]);
    ph.extend_from_slice(&(s.len() as u16).to_be_bytes());
    ph.extend_from_slice(&s);
    let c = inet_csum(&ph);
    s[csum_at..csum_at + 2].copy_from_slice(&c.to_be_bytes());
    s
}

const IP_A: [u8; 4] = [10, 0, 0, 1];
const IP_B: [u8; 4] = [10, 1, 2, 3];
const IP_C: [u8; 4] = [192, 168, 1, 1];

fn tcp4() -> Vec<u8> {
    let pseudo = [IP_A, IP_B].concat();
    eth(DST_MAC, 0x0800, &ipv4(6, IP_A, IP_B, &l4(6, &pseudo, 40000, 80, &[])))
}

fn udp4_payload() -> Vec<u8> {
    let pseudo = [IP_A, IP_C].concat();
    ipv4(17, IP_A, IP_C, &l4(17, &pseudo, 5353, 53, b"bpflab!\n"))
}

fn udp4() -> Vec<u8> {
    eth(DST_MAC, 0x0800, &udp4_payload())
}

fn udp4_nocsum() -> Vec<u8> {
    let mut p = udp4();
    p[40] = 0;
    p[41] = 0;
    p
}

fn v6(last: u8) -> Vec<u8> {
    let mut a = vec![0x20, 0x01, 0x0d, 0xb8];
    a.extend_from_slice(&[0; 11]);
    a.push(last);
    a
}

fn tcp6() -> Vec<u8> {
    let pseudo = [v6(1), v6(2)].concat();
    let seg = l4(6, &pseudo, 40000, 443, &[]);
    let mut h = vec![0x60, 0, 0, 0];
    h.extend_from_slice(&(seg.len() as u16).to_be_bytes());
    h.extend_from_slice(&[6, 64]);
    h.extend_from_slice(&pseudo);
    h.extend_from_slice(&seg);
    eth(DST_MAC, 0x86dd, &h)
}

fn vlan() -> Vec<u8> {
    let mut tag = vec![0x00, 0x64, 0x08, 0x00];
    tag.extend_from_slice(&udp4_payload());
    eth(DST_MAC, 0x8100, &tag)
}

fn qinq() -> Vec<u8> {
    let mut tags = vec![0x00, 0x0a, 0x81, 0x00, 0x00, 0x64, 0x08, 0x00];
    tags.extend_from_slice(&udp4_payload());
    eth(DST_MAC, 0x88a8, &tags)
}

fn arp() -> Vec<u8> {
    let mut body = vec![0, 1, 8, 0, 6, 4, 0, 1];
    body.extend_from_slice(&SRC_MAC);
    body.extend_from_slice(&IP_A);
    body.extend_from_slice(&[0; 6]);
    body.extend_from_slice(&IP_B);
    eth([0xff; 6], 0x0806, &body)
}

fn with_dst(mut p: Vec<u8>, dst: [u8; 6]) -> Vec<u8> {
    p[..6].copy_from_slice(&dst);
    p
}

/// A `__sk_buff` ctx_in of 192 bytes with `fields` = (offset, width, value).
fn ctx(fields: &[(usize, usize, u64)]) -> Vec<u8> {
    let mut c = vec![0u8; 192];
    for &(off, len, v) in fields {
        c[off..off + len].copy_from_slice(&v.to_le_bytes()[..len]);
    }
    c
}

/// A ctx_in that sets every field a test run accepts.
fn full_ctx(wire_len: u64) -> Vec<u8> {
    ctx(&[
        (8, 4, 0x1122_3344),
        (32, 4, 7),
        (36, 4, 3),
        (40, 4, 1),
        (48, 8, 0x0807_0605_0403_0201),
        (56, 8, 0x100f_0e0d_0c0b_0a09),
        (64, 4, 0x1413_1211),
        (152, 8, 0x1122_3344_5566_7788),
        (160, 4, wire_len),
        (164, 4, 3),
        (176, 4, 1400),
        (184, 8, 0x99aa_bbcc_ddee_ff00),
    ])
}

fn zero_ctx() -> Option<Vec<u8>> {
    Some(vec![0; 192])
}

// ---------------------------------------------------------------------------------------------
// Running a case on both sides

#[derive(Clone, Debug)]
struct Case {
    name: String,
    prog_type: ProgType,
    src: String,
    data: Vec<u8>,
    ctx: Option<Vec<u8>>,
    /// The kernel must run it (a refusal would mean the case does not test what it says).
    must_run: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    /// The verifier (kernel) or the context/helper rules (interpreter) refuse the program.
    Refused,
    /// The test run refuses the input (packet or ctx_in).
    BadInput,
    /// The run's results.
    Ran { r0: u32, data: Vec<u8>, ctx: Option<Vec<u8>> },
    /// Anything else (an interpreter fault the kernel would not have).
    Other(String),
}

fn kernel(case: &Case) -> Outcome {
    let insns = assemble(&case.src).unwrap_or_else(|e| panic!("{}: {e}\n{}", case.name, case.src));
    let prog = match KernelProgram::load(case.prog_type, &insns, "GPL") {
        Ok(p) => p,
        Err(KernelError::Rejected { .. }) => return Outcome::Refused,
        Err(e) => return Outcome::Other(format!("load: {e}")),
    };
    match prog.test_run(&case.data, case.ctx.as_deref(), 1) {
        Ok(run) => Outcome::Ran { r0: run.retval, data: run.data_out, ctx: run.ctx_out },
        Err(e) if e.errno().is_some() => Outcome::BadInput,
        Err(e) => Outcome::Other(format!("run: {e}")),
    }
}

fn interp(case: &Case) -> Outcome {
    let insns = assemble(&case.src).expect("assembled above");
    let program = Program::raw(case.name.clone(), insns).with_type(case.prog_type);
    let mut inst = match Interpreter::default().instantiate(&Collection::single(program)) {
        Ok(i) => i,
        Err(e) => return Outcome::Other(format!("instantiate: {e}")),
    };
    let mut input = RunInput::data(case.data.clone());
    input.ctx = case.ctx.clone();
    match inst.run(0, &input) {
        Ok(out) => Outcome::Ran { r0: out.r0 as u32, data: out.data, ctx: out.ctx },
        Err(EngineError::Context(_)) => Outcome::BadInput,
        Err(EngineError::Fault(e)) => match e.kind() {
            // A context access or helper the program type may not use, or a store through a
            // read-only packet pointer: the verifier's refusals.
            VmErrorKind::Memory(MemError::Context { .. })
            | VmErrorKind::Memory(MemError::ReadOnly { kind: RegionKind::Packet, .. })
            | VmErrorKind::Helper { error: HelperError::NotAllowed { .. }, .. }
            | VmErrorKind::NoLegacyPacketAccess => Outcome::Refused,
            _ => Outcome::Other(e.to_string()),
        },
        Err(e) => Outcome::Other(e.to_string()),
    }
}

struct Suite {
    cases: Vec<Case>,
}

impl Suite {
    fn add(
        &mut self,
        name: impl Into<String>,
        t: ProgType,
        src: &str,
        data: Vec<u8>,
        ctx: Option<Vec<u8>>,
    ) {
        self.cases.push(Case {
            name: name.into(),
            prog_type: t,
            src: src.to_owned(),
            data,
            ctx,
            must_run: true,
        });
    }

    /// A case whose program the kernel may refuse (then the interpreter must refuse it too).
    fn probe(
        &mut self,
        name: impl Into<String>,
        t: ProgType,
        src: &str,
        data: Vec<u8>,
        ctx: Option<Vec<u8>>,
    ) {
        self.add(name, t, src, data, ctx);
        if let Some(c) = self.cases.last_mut() {
            c.must_run = false;
        }
    }
}

/// A program that stores `len` bytes of the packet at `off` via bpf_skb_load_bytes into the
/// (0xff-filled) stack, then the return code into cb[0..2] and the bytes into cb[2..4].
fn load_bytes(off: i64, len: u32) -> String {
    format!(
        "r6 = r1
        r2 = -1
        *(u64 *)(r10 - 16) = r2
        *(u64 *)(r10 - 8) = r2
        r1 = r6
        r2 = {off} ll
        r3 = r10
        r3 += -16
        r4 = {len}
        call bpf_skb_load_bytes
        *(u64 *)(r6 + 48) = r0
        r2 = *(u64 *)(r10 - 16)
        *(u64 *)(r6 + 56) = r2
        r2 = *(u32 *)(r10 - 8)
        *(u32 *)(r6 + 64) = r2
        r0 = 1
        exit"
    )
}

/// A tc program calling `call` (with r1 = ctx set up) and storing r0 in cb[0..2]; `pre` runs
/// first, `post` after the store (with r6 = ctx, r7 = the helper's r0).
fn tc_call(pre: &str, call: &str, post: &str) -> String {
    format!(
        "r6 = r1
        {pre}
        r1 = r6
        {call}
        r7 = r0
        *(u64 *)(r6 + 48) = r0
        {post}
        r0 = 0
        exit"
    )
}

fn field_sweep(s: &mut Suite) {
    let p = tcp4();
    // ctx_in with every settable field; wire_len above any skb length of the packet.
    let c = full_ctx(200);
    for t in [SocketFilter, SchedCls, CgroupSkb, LwtIn, LwtXmit] {
        for off in 0..192usize {
            for (size, ty) in [(1, "u8"), (2, "u16"), (4, "u32"), (8, "u64")] {
                if off % size != 0 {
                    continue;
                }
                // Pointer fields are compared through the programs below.
                if (matches!(off, 76 | 80 | 140) && size == 4) || (off == 168 && size == 8) {
                    continue;
                }
                let src =
                    format!("r2 = *({ty} *)(r1 + {off})\n*(u64 *)(r1 + 56) = r2\nr0 = 1\nexit");
                s.probe(format!("{t:?} read {ty} @{off}"), t, &src, p.clone(), Some(c.clone()));
            }
        }
        // Narrow writes and writes of every field (value 5), then the whole ctx comes back.
        for off in (0..192usize).step_by(4) {
            let src = format!("r2 = 5\n*(u32 *)(r1 + {off}) = r2\nr0 = 1\nexit");
            s.probe(format!("{t:?} write u32 @{off}"), t, &src, p.clone(), Some(c.clone()));
        }
        for (off, ty) in [
            (8, "u16"),
            (8, "u8"),
            (48, "u8"),
            (50, "u16"),
            (56, "u64"),
            (64, "u64"),
            (152, "u64"),
            (152, "u32"),
            (72, "u16"),
        ] {
            let src = format!("r2 = 0x77\n*({ty} *)(r1 + {off}) = r2\nr0 = 1\nexit");
            s.probe(format!("{t:?} write {ty} @{off}"), t, &src, p.clone(), Some(c.clone()));
        }
    }
    // Socket fields and other packets, per type.
    for (pname, pkt) in [
        ("tcp6", tcp6()),
        ("vlan", vlan()),
        ("qinq", qinq()),
        ("arp", arp()),
        ("mcast", with_dst(udp4(), [1, 0, 0x5e, 0, 0, 1])),
        ("bcast", with_dst(udp4(), [0xff; 6])),
        ("host", with_dst(udp4(), [0; 6])),
        ("802.3", {
            let mut q = tcp4();
            q[12] = 0x05;
            q[13] = 0xdc;
            q
        }),
        ("802.3 raw", {
            let mut q = tcp4();
            q[12] = 0x05;
            q[13] = 0xdc;
            q[14] = 0xff;
            q[15] = 0xff;
            q
        }),
    ] {
        for t in [SocketFilter, SchedCls, CgroupSkb] {
            for off in [
                0usize, 4, 16, 20, 24, 28, 40, 88, 92, 96, 100, 104, 108, 112, 116, 120, 124, 128,
                132, 136, 160,
            ] {
                let src =
                    format!("r2 = *(u32 *)(r1 + {off})\n*(u64 *)(r1 + 56) = r2\nr0 = 1\nexit");
                s.probe(format!("{t:?} {pname} read @{off}"), t, &src, pkt.clone(), zero_ctx());
            }
        }
    }
    // No ctx_in: wire_len is 0 then, the ifindex still the loopback's.
    for off in [0usize, 8, 40, 160] {
        let src = format!("r0 = *(u32 *)(r1 + {off})\nexit");
        s.add(format!("tc no ctx read @{off}"), SchedCls, &src, tcp4(), None);
    }
}

fn pointer_cases(s: &mut Suite) {
    // data_end - data and data_meta == data, for the types that can read them.
    for t in [SchedCls, CgroupSkb, LwtIn, LwtXmit] {
        for (pname, pkt) in [("tcp4", tcp4()), ("tcp6", tcp6()), ("arp", arp())] {
            let src = "r2 = *(u32 *)(r1 + 76)\nr3 = *(u32 *)(r1 + 80)\nr3 -= r2\n*(u64 *)(r1 + 56) = r3\nr0 = 1\nexit";
            s.add(format!("{t:?} {pname} data_end - data"), t, src, pkt.clone(), zero_ctx());
            // Read packet bytes through the pointers.
            let src = "r2 = *(u32 *)(r1 + 76)
                r3 = *(u32 *)(r1 + 80)
                r4 = r2
                r4 += 14
                r0 = 0
                if r4 > r3 goto out
                r5 = *(u8 *)(r2 + 0)
                r4 = *(u8 *)(r2 + 13)
                r5 <<= 8
                r5 |= r4
                *(u64 *)(r1 + 56) = r5
                r0 = 1
            out:
                exit";
            s.add(format!("{t:?} {pname} bytes 0 and 13"), t, src, pkt.clone(), zero_ctx());
        }
    }
    let src = "r2 = *(u32 *)(r1 + 76)\nr3 = *(u32 *)(r1 + 140)\nr3 -= r2\n*(u64 *)(r1 + 56) = r3\nr0 = 1\nexit";
    s.add("tc data_meta - data", SchedCls, src, tcp4(), zero_ctx());
    for t in [SocketFilter, CgroupSkb, LwtIn] {
        s.probe(format!("{t:?} data_meta"), t, src, tcp4(), zero_ctx());
    }
    let src = "r2 = *(u32 *)(r1 + 76)\nr0 = 1\nexit";
    s.probe("socket filter data", SocketFilter, src, tcp4(), zero_ctx());
    // Direct packet writes: tc and lwt_xmit may, cgroup_skb and lwt_in may not.
    let src = "r2 = *(u32 *)(r1 + 76)
        r3 = *(u32 *)(r1 + 80)
        r4 = r2
        r4 += 2
        if r4 > r3 goto out
        *(u16 *)(r2 + 0) = 0x4142
    out:
        r0 = 1
        exit";
    for t in [SchedCls, LwtXmit, CgroupSkb, LwtIn] {
        s.probe(format!("{t:?} direct write"), t, src, tcp4(), zero_ctx());
    }
}

fn write_cases(s: &mut Suite) {
    let c = full_ctx(200);
    for (off, v) in [
        (8usize, 0xabcdu64),
        (32, 9),
        (44, 0x1234_5678),
        (72, 0x0001_0002),
        (12, 5),
        (12, 0xffff),
        (12, 0x1_0005),
        (12, 0xfffe),
    ] {
        let src = format!(
            "r6 = r1\nr2 = {v}\n*(u32 *)(r6 + {off}) = r2\nr2 = *(u32 *)(r6 + {off})\n*(u64 *)(r6 + 56) = r2\nr0 = 0\nexit"
        );
        s.add(
            format!("tc write {v:#x} @{off} and read back"),
            SchedCls,
            &src,
            tcp4(),
            Some(c.clone()),
        );
    }
    let src = "r6 = r1\n*(u32 *)(r6 + 12) = 7\nr2 = *(u32 *)(r6 + 12)\n*(u64 *)(r6 + 56) = r2\nr0 = 0\nexit";
    s.add("tc queue_mapping store imm", SchedCls, src, tcp4(), Some(c.clone()));
    let src = "r2 = 0x0102030405060708 ll\n*(u64 *)(r1 + 152) = r2\nr0 = 1\nexit";
    for t in [SchedCls, CgroupSkb] {
        s.add(format!("{t:?} write tstamp"), t, src, tcp4(), Some(c.clone()));
    }
    for t in [SocketFilter, CgroupSkb, LwtIn, LwtXmit] {
        let src = "r2 = 0x51\n*(u32 *)(r1 + 8) = r2\nr2 = 0x52\n*(u32 *)(r1 + 32) = r2\nr2 = 0x53\n*(u8 *)(r1 + 49) = r2\nr0 = 1\nexit";
        s.probe(format!("{t:?} write mark, priority, cb byte"), t, src, tcp4(), Some(c.clone()));
    }
    let src = "r2 = 0x53\n*(u8 *)(r1 + 49) = r2\n*(u16 *)(r1 + 52) = r2\nr0 = 1\nexit";
    s.add("socket filter write cb bytes", SocketFilter, src, tcp4(), Some(c.clone()));
}

fn input_cases(s: &mut Suite) {
    let ret_len = "r0 = *(u32 *)(r1 + 0)\nexit";
    for t in [SocketFilter, SchedCls, CgroupSkb, LwtIn] {
        let ret = if t == CgroupSkb { "r0 = 1\nexit" } else { ret_len };
        for (name, pkt) in [
            ("runt 10", vec![0u8; 10]),
            ("13 bytes", tcp4()[..13].to_vec()),
            ("eth only 0x1234", eth(DST_MAC, 0x1234, &[])),
            ("ipv4 33 bytes", tcp4()[..33].to_vec()),
            ("ipv4 34 bytes", tcp4()[..34].to_vec()),
            ("ipv6 53 bytes", tcp6()[..53].to_vec()),
            ("ipv6 54 bytes", tcp6()[..54].to_vec()),
            ("vlan 15 bytes", vlan()[..15].to_vec()),
            ("3712 bytes", eth(DST_MAC, 0x1234, &vec![7u8; 3712 - 14])),
            ("3713 bytes", eth(DST_MAC, 0x1234, &vec![7u8; 3713 - 14])),
        ] {
            s.probe(format!("{t:?} input {name}"), t, ret, pkt, None);
        }
        let bad_ctx: Vec<(&str, Vec<u8>)> = vec![
            ("len set", ctx(&[(0, 4, 1)])),
            ("vlan_tci set", ctx(&[(24, 4, 1)])),
            ("hash set", ctx(&[(68, 4, 1)])),
            ("tc_classid set", ctx(&[(72, 4, 1)])),
            ("tstamp_type set", ctx(&[(180, 1, 1)])),
            ("ifindex 1", ctx(&[(40, 4, 1)])),
            ("ifindex 9999", ctx(&[(40, 4, 9999)])),
            ("wire_len below len", ctx(&[(160, 4, 10)])),
            ("wire_len 65536", ctx(&[(160, 4, 65536)])),
            ("wire_len 65537", ctx(&[(160, 4, 65537)])),
            ("gso_segs 65535", ctx(&[(164, 4, 65535)])),
            ("gso_segs 65536", ctx(&[(164, 4, 65536)])),
            ("long ctx, zero tail", vec![0u8; 200]),
            ("long ctx, nonzero tail", {
                let mut v = vec![0u8; 200];
                v[199] = 1;
                v
            }),
        ];
        for (name, c) in bad_ctx {
            s.probe(format!("{t:?} ctx_in {name}"), t, ret, tcp4(), Some(c));
        }
    }
}

fn ld_abs_cases(s: &mut Suite) {
    for t in [SocketFilter, SchedCls] {
        for (pname, pkt) in [("tcp4", tcp4()), ("arp", arp())] {
            let n = pkt.len() as i64;
            for (ty, off) in [
                ("u8", 0),
                ("u16", 12),
                ("u32", 26),
                ("u8", n - 15),
                ("u8", n - 14),
                ("u8", n - 1),
                ("u8", n),
                ("u16", n - 15),
                ("u16", n - 2),
                ("u16", n - 1),
                ("u32", n - 4),
                ("u32", n - 3),
                ("u32", 1000),
            ] {
                let src = format!("r6 = r1\nr0 = *({ty} *)skb[{off}]\nexit");
                s.add(format!("{t:?} {pname} ld_abs {ty} @{off}"), t, &src, pkt.clone(), None);
            }
            for (ty, base, imm) in [("u16", 14, 2), ("u32", 20, -6), ("u8", 0, 0), ("u8", 3, 1000)]
            {
                let src = format!("r6 = r1\nr7 = {base}\nr0 = *({ty} *)skb[r7 + {imm}]\nexit");
                s.add(
                    format!("{t:?} {pname} ld_ind {ty} {base}+{imm}"),
                    t,
                    &src,
                    pkt.clone(),
                    None,
                );
            }
        }
        // The legacy load of a failing offset ends the program with r0 = 0.
        let src = "r6 = r1\nr0 = *(u8 *)skb[5000]\nr0 = 99\nexit";
        s.add(format!("{t:?} ld_abs out of range exits"), t, src, tcp4(), None);
    }
}

fn load_bytes_cases(s: &mut Suite) {
    for t in [SocketFilter, SchedCls, CgroupSkb, LwtIn, LwtXmit] {
        let pkt = tcp4();
        let len = if t == SchedCls { pkt.len() as i64 } else { pkt.len() as i64 - 14 };
        for (off, n) in [
            (0i64, 16u32),
            (12, 4),
            (len - 4, 4),
            (len - 3, 4),
            (len, 1),
            (0, 1),
            (len - 1, 1),
            (0x7fff_ffff, 4),
            (-1, 4),
            (-14, 4),
            (0xffff_ffff, 2),
        ] {
            s.add(
                format!("{t:?} load_bytes {off} {n}"),
                t,
                &load_bytes(off, n),
                pkt.clone(),
                zero_ctx(),
            );
        }
    }
    // load_bytes_relative: MAC and NET starts, offsets, bad start.
    for t in [SocketFilter, SchedCls, CgroupSkb] {
        for (hdr, off, n) in [
            (0, 0, 14u32),
            (0, 6, 6),
            (1, 0, 8),
            (1, 12, 8),
            (1, 36, 4),
            (1, 37, 4),
            (0, 50, 4),
            (0, 51, 4),
            (2, 0, 4),
            (1, 0x10000, 4),
        ] {
            let src = format!(
                "r6 = r1
                r2 = -1
                *(u64 *)(r10 - 16) = r2
                *(u64 *)(r10 - 8) = r2
                r1 = r6
                r2 = {off}
                r3 = r10
                r3 += -16
                r4 = {n}
                r5 = {hdr}
                call bpf_skb_load_bytes_relative
                *(u64 *)(r6 + 48) = r0
                r2 = *(u64 *)(r10 - 16)
                *(u64 *)(r6 + 56) = r2
                r2 = *(u32 *)(r10 - 8)
                *(u32 *)(r6 + 64) = r2
                r0 = 1
                exit"
            );
            s.add(
                format!("{t:?} load_bytes_relative hdr {hdr} {off} {n}"),
                t,
                &src,
                tcp4(),
                zero_ctx(),
            );
        }
    }
    // Flow dissectors' load_bytes has no skb in a test run.
    let src = "r6 = r1
        r2 = -1
        *(u64 *)(r10 - 8) = r2
        r1 = r6
        r2 = 0
        r3 = r10
        r3 += -8
        r4 = 4
        call bpf_skb_load_bytes
        r2 = *(u64 *)(r6 + 144)
        *(u32 *)(r2 + 16) = r0
        r3 = *(u32 *)(r10 - 8)
        *(u32 *)(r2 + 20) = r3
        r0 = 0
        exit";
    s.add("flow dissector load_bytes", FlowDissector, src, tcp4(), None);
}

fn store_bytes_cases(s: &mut Suite) {
    for t in [SchedCls, LwtXmit] {
        let pkt = udp4();
        let len = if t == SchedCls { pkt.len() as i64 } else { pkt.len() as i64 - 14 };
        for (off, flags) in [
            (0i64, 0u64),
            (len - 4, 0),
            (len - 3, 0),
            (6, 1),
            (6, 2),
            (6, 3),
            (6, 4),
            (0x8000_0000, 0),
            (0x7fff_ffff, 0),
        ] {
            let src = tc_call(
                "*(u32 *)(r10 - 4) = 0x11223344",
                &format!(
                    "r2 = {off} ll\nr3 = r10\nr3 += -4\nr4 = 4\nr5 = {flags}\ncall bpf_skb_store_bytes"
                ),
                "",
            );
            s.add(
                format!("{t:?} store_bytes @{off} flags {flags}"),
                t,
                &src,
                pkt.clone(),
                zero_ctx(),
            );
        }
    }
    // BPF_F_INVALIDATE_HASH clears a hash set before.
    let src = tc_call(
        "r1 = r6\nr2 = 0x4321\ncall bpf_set_hash\n*(u32 *)(r10 - 4) = 0",
        "r2 = 20\nr3 = r10\nr3 += -4\nr4 = 2\nr5 = 2\ncall bpf_skb_store_bytes",
        "r2 = *(u32 *)(r6 + 68)\n*(u64 *)(r6 + 56) = r2",
    );
    s.add("tc store_bytes invalidates the hash", SchedCls, &src, udp4(), zero_ctx());
    for t in [SocketFilter, CgroupSkb, LwtIn] {
        let src = "r6 = r1\n*(u32 *)(r10 - 4) = 0\nr1 = r6\nr2 = 0\nr3 = r10\nr3 += -4\nr4 = 4\nr5 = 0\ncall bpf_skb_store_bytes\nr0 = 1\nexit";
        s.probe(format!("{t:?} store_bytes"), t, src, tcp4(), zero_ctx());
    }
}

/// Loads 4 packet bytes at `off` into `reg` (clobbers r1-r5), ctx in r6.
fn load4(off: u32, reg: &str) -> String {
    format!(
        "*(u32 *)(r10 - 32) = 0\nr1 = r6\nr2 = {off}\nr3 = r10\nr3 += -32\nr4 = 4\ncall bpf_skb_load_bytes\n{reg} = *(u32 *)(r10 - 32)"
    )
}

fn load2(off: u32, reg: &str) -> String {
    format!(
        "*(u32 *)(r10 - 32) = 0\nr1 = r6\nr2 = {off}\nr3 = r10\nr3 += -32\nr4 = 2\ncall bpf_skb_load_bytes\n{reg} = *(u16 *)(r10 - 32)"
    )
}

fn csum_cases(s: &mut Suite) {
    // DNAT 10.1.2.3:80 -> 10.9.8.7:8080 with l3/l4 replace (4-byte and 2-byte fields).
    let new_ip = u32::from_le_bytes([10, 9, 8, 7]);
    let new_port = u16::from_le_bytes([0x1f, 0x90]);
    let dnat = format!(
        "r6 = r1
        {old_ip}
        r1 = r6
        r2 = 24
        r3 = r8
        r4 = {new_ip}
        r5 = 4
        call bpf_l3_csum_replace
        *(u64 *)(r6 + 48) = r0
        r1 = r6
        r2 = 50
        r3 = r8
        r4 = {new_ip}
        r5 = 0x14
        call bpf_l4_csum_replace
        *(u64 *)(r6 + 56) = r0
        *(u32 *)(r10 - 4) = {new_ip}
        r1 = r6
        r2 = 30
        r3 = r10
        r3 += -4
        r4 = 4
        r5 = 0
        call bpf_skb_store_bytes
        {old_port}
        r1 = r6
        r2 = 50
        r3 = r9
        r4 = {new_port}
        r5 = 2
        call bpf_l4_csum_replace
        *(u32 *)(r6 + 64) = r0
        *(u16 *)(r10 - 4) = {new_port}
        r1 = r6
        r2 = 36
        r3 = r10
        r3 += -4
        r4 = 2
        r5 = 0
        call bpf_skb_store_bytes
        r0 = 0
        exit",
        old_ip = load4(30, "r8"),
        old_port = load2(36, "r9"),
    );
    s.add("tc dnat with l3/l4_csum_replace", SchedCls, &dnat, tcp4(), zero_ctx());
    s.add("lwt_xmit l3_csum_replace at tc offsets", LwtXmit, &dnat, tcp4(), zero_ctx());
    // The same through csum_diff and the diff form (from = 0).
    let diff = format!(
        "r6 = r1
        {old_ip}
        *(u32 *)(r10 - 8) = r8
        *(u32 *)(r10 - 16) = {new_ip}
        r1 = r10
        r1 += -8
        r2 = 4
        r3 = r10
        r3 += -16
        r4 = 4
        r5 = 0
        call bpf_csum_diff
        r9 = r0
        *(u64 *)(r6 + 48) = r0
        r1 = r6
        r2 = 24
        r3 = 0
        r4 = r9
        r5 = 0
        call bpf_l3_csum_replace
        *(u64 *)(r6 + 56) = r0
        r1 = r6
        r2 = 50
        r3 = 0
        r4 = r9
        r5 = 0x10
        call bpf_l4_csum_replace
        *(u32 *)(r6 + 64) = r0
        r1 = r6
        r2 = 30
        r3 = r10
        r3 += -16
        r4 = 4
        r5 = 0
        call bpf_skb_store_bytes
        r0 = 0
        exit",
        old_ip = load4(30, "r8"),
    );
    s.add("tc dnat with csum_diff", SchedCls, &diff, tcp4(), zero_ctx());
    // Error returns of the replace helpers.
    for (helper, off, from, to, flags) in [
        ("l3", 24u32, 0u64, 0x1234u64, 0x10u64),
        ("l3", 25, 0, 0x1234, 0),
        ("l3", 0x10000, 0, 0x1234, 0),
        ("l3", 52, 0, 0x1234, 0),
        ("l3", 54, 0, 0x1234, 0),
        ("l3", 24, 5, 0x1234, 0),
        ("l3", 24, 0x1111, 0x2222, 2),
        ("l3", 24, 0x1111, 0x2222, 3),
        ("l3", 24, 0x1_0000_1111, 0x2222, 2),
        ("l4", 50, 0x1111, 0x2222, 0x100),
        ("l4", 50, 0x1111, 0x2222, 0x84),
        ("l4", 50, 0x1111, 0x2222, 0xf),
        ("l4", 51, 0x1111, 0x2222, 4),
        ("l4", 50, 7, 0x2222, 0x10),
        ("l4", 50, 0x1111, 0x2222, 0x12),
        ("l4", 50, 0x1_2222_1111, 0x2222, 2),
        ("l3", 24, 0x0a010203, 0x0a090807, 4),
        ("l3", 24, 0x1111, 0xeeee, 2),
    ] {
        let src = tc_call(
            "",
            &format!(
                "r2 = {off}\nr3 = {from} ll\nr4 = {to} ll\nr5 = {flags}\ncall bpf_{helper}_csum_replace"
            ),
            "",
        );
        s.add(
            format!(
                "tc {helper}_csum_replace off {off} from {from:#x} to {to:#x} flags {flags:#x}"
            ),
            SchedCls,
            &src,
            tcp4(),
            zero_ctx(),
        );
    }
    // BPF_F_MARK_MANGLED_0: a zero UDP checksum stays zero unless BPF_F_MARK_ENFORCE; a result
    // of zero becomes 0xffff.
    for flags in [0x24u64, 0x64, 0x4] {
        let src = tc_call(
            "",
            &format!("r2 = 40\nr3 = 0x1111\nr4 = 0x2222\nr5 = {flags}\ncall bpf_l4_csum_replace"),
            "",
        );
        s.add(
            format!("tc l4_csum_replace on zero udp csum flags {flags:#x}"),
            SchedCls,
            &src,
            udp4_nocsum(),
            zero_ctx(),
        );
    }
    for flags in [0x20u64, 0] {
        let src = tc_call(
            &load2(40, "r8"),
            &format!("r2 = 40\nr3 = 0\nr4 = r8\nr5 = {flags}\ncall bpf_l4_csum_replace"),
            "",
        );
        s.add(
            format!("tc l4_csum_replace to zero flags {flags:#x}"),
            SchedCls,
            &src,
            udp4(),
            zero_ctx(),
        );
    }
    // csum_diff: both, to only, from only, neither; unaligned sizes; from the packet.
    for (from, to, seed) in [
        (4u32, 4u32, 0u64),
        (8, 0, 0x1234),
        (0, 8, 0x1234),
        (0, 0, 0x1234_5678),
        (0, 0, 0xffff_ffff),
        (3, 5, 7),
        (16, 12, 0xffff_0000),
        (0, 20, 0),
        (20, 20, 0),
    ] {
        let src = format!(
            "r6 = r1
            r2 = 0x8877665544332211 ll
            *(u64 *)(r10 - 32) = r2
            r2 = 0xfedcba9876543210 ll
            *(u64 *)(r10 - 24) = r2
            r2 = 0x0123456789abcdef ll
            *(u64 *)(r10 - 16) = r2
            r2 = -1
            *(u64 *)(r10 - 8) = r2
            r1 = r10
            r1 += -32
            r2 = {from}
            r3 = r10
            r3 += -20
            r4 = {to}
            r5 = {seed} ll
            call bpf_csum_diff
            *(u64 *)(r6 + 48) = r0
            r0 = 0
            exit"
        );
        s.add(format!("tc csum_diff {from} {to} {seed:#x}"), SchedCls, &src, tcp4(), zero_ctx());
    }
    // csum_diff over the IPv4 header in the packet (a valid header sums to 0xffff), in tc and XDP.
    for t in [SchedCls, Xdp] {
        let src = "r2 = *(u32 *)(r1 + 76)
            r3 = *(u32 *)(r1 + 80)
            r1 = r2
            r1 += 14
            r4 = r1
            r4 += 20
            r0 = 0
            if r4 > r3 goto out
            r2 = 0
            r3 = r1
            r1 = 0
            r4 = 20
            r5 = 0
            call bpf_csum_diff
        out:
            exit";
        let src = if t == Xdp {
            src.replace("r1 + 76", "r1 + 0").replace("r1 + 80", "r1 + 4")
        } else {
            src.to_owned()
        };
        s.add(
            format!("{t:?} csum_diff of the ip header"),
            t,
            &src,
            tcp4(),
            if t == Xdp { None } else { zero_ctx() },
        );
    }
    s.probe(
        "socket filter csum_diff",
        SocketFilter,
        "r1 = 0\nr2 = 0\nr3 = 0\nr4 = 0\nr5 = 0\ncall bpf_csum_diff\nexit",
        tcp4(),
        None,
    );
    // csum_update never applies to a test run's skb; csum_level walks CHECKSUM_UNNECESSARY.
    let src = tc_call("", "r2 = 0x1234\ncall bpf_csum_update", "");
    s.add("tc csum_update", SchedCls, &src, tcp4(), zero_ctx());
    let level = |seq: &[u64]| {
        let mut body = String::from("r6 = r1\n");
        for (i, l) in seq.iter().enumerate() {
            body +=
                &format!("r1 = r6\nr2 = {l}\ncall bpf_csum_level\n*(u8 *)(r6 + {}) = r0\n", 48 + i);
        }
        body + "r0 = 0\nexit"
    };
    for seq in [
        vec![0u64],
        vec![1, 0],
        vec![1, 1, 1, 1, 1, 0],
        vec![1, 1, 2, 0, 2, 0, 2, 0],
        vec![1, 1, 3, 0],
        vec![2, 0, 3, 0],
        vec![4],
        vec![1, 0xffff_ffff, 0],
    ] {
        s.add(format!("tc csum_level {seq:?}"), SchedCls, &level(&seq), tcp4(), zero_ctx());
    }
}

fn resize_cases(s: &mut Suite) {
    let call = |t: ProgType,
                name: &str,
                helper: &str,
                args: &str,
                pkt: Vec<u8>,
                c: Option<Vec<u8>>,
                s: &mut Suite| {
        let src = tc_call(
            "",
            &format!("{args}\ncall bpf_{helper}"),
            "r2 = *(u32 *)(r6 + 0)\n*(u64 *)(r6 + 56) = r2\nr2 = *(u32 *)(r6 + 16)\n*(u32 *)(r6 + 64) = r2",
        );
        s.add(format!("{t:?} {name}"), t, &src, pkt, c);
    };
    for n in [0u64, 10, 54, 55, 0x8000_0000, 0xffff_ffff] {
        call(
            SchedCls,
            &format!("pull_data {n}"),
            "skb_pull_data",
            &format!("r2 = {n} ll"),
            tcp4(),
            zero_ctx(),
            s,
        );
    }
    call(LwtIn, "pull_data 0", "skb_pull_data", "r2 = 0", tcp4(), zero_ctx(), s);
    for (n, flags) in [
        (60u64, 0u64),
        (46, 0),
        (14, 0),
        (13, 0),
        (54, 1),
        (3000, 0),
        (16064, 0),
        (16065, 0),
        (0x1_0000_0036, 0),
    ] {
        call(
            SchedCls,
            &format!("change_tail {n} flags {flags}"),
            "skb_change_tail",
            &format!("r2 = {n} ll\nr3 = {flags}"),
            tcp4(),
            zero_ctx(),
            s,
        );
    }
    for n in [0u64, 20, 100] {
        call(
            LwtXmit,
            &format!("change_tail {n}"),
            "skb_change_tail",
            &format!("r2 = {n}\nr3 = 0"),
            tcp4(),
            zero_ctx(),
            s,
        );
    }
    // A GSO skb (gso_size from ctx_in) loses its GSO state on change_tail.
    let gso = ctx(&[(176, 4, 1400), (164, 4, 2)]);
    let src = tc_call(
        "",
        "r2 = 60\nr3 = 0\ncall bpf_skb_change_tail",
        "r2 = *(u32 *)(r6 + 176)\n*(u32 *)(r6 + 56) = r2\nr2 = *(u32 *)(r6 + 164)\n*(u32 *)(r6 + 60) = r2",
    );
    s.add("tc change_tail resets gso", SchedCls, &src, tcp4(), Some(gso.clone()));
    for (n, flags) in
        [(4u64, 0u64), (0, 0), (14, 0), (0x8000_0000, 0), (16064, 0), (16010, 0), (4, 1)]
    {
        call(
            SchedCls,
            &format!("change_head {n} flags {flags}"),
            "skb_change_head",
            &format!("r2 = {n} ll\nr3 = {flags}"),
            tcp4(),
            zero_ctx(),
            s,
        );
        call(
            LwtXmit,
            &format!("change_head {n} flags {flags}"),
            "skb_change_head",
            &format!("r2 = {n} ll\nr3 = {flags}"),
            tcp4(),
            zero_ctx(),
            s,
        );
    }
    // adjust_room: NET/MAC grow and shrink, limits, modes, flags, protocols.
    let room =
        |diff: i64, mode: u64, flags: u64| format!("r2 = {diff}\nr3 = {mode}\nr4 = {flags:#x} ll");
    for (pname, pkt) in [("tcp4", tcp4()), ("tcp6", tcp6()), ("arp", arp()), ("vlan", vlan())] {
        for (diff, mode, flags) in [
            (8i64, 0u64, 0u64),
            (4, 1, 0),
            (-8, 0, 0),
            (-20, 0, 0),
            (-21, 0, 0),
            (-4, 1, 0),
            (-40, 1, 0),
            (-41, 1, 0),
            (0, 0, 0),
            (8, 2, 0),
            (0x1000, 0, 0),
            (0xfff, 0, 0),
            (8, 0, 0x200),
            (8, 0, 1),
            (8, 0, 0x20),
            (28, 1, 0x12),
            (40, 1, 0x4),
            (24, 1, 0xa),
            (8, 1, 0x6),
            (8, 1, 0x18 | 0x2),
            (8, 1, 0x42 | (10 << 56)),
            (20, 1, 0x42 | (14 << 56)),
            (8, 1, 0x42 | (14 << 56)),
            (8, 1, 0x2 | (14 << 56)),
            (-20, 1, 0x80),
            (-20, 1, 0x100),
            (-20, 1, 0x180),
            (20, 1, 0x80),
            (-4, 1, 0x2),
        ] {
            call(
                SchedCls,
                &format!("{pname} adjust_room {diff} mode {mode} flags {flags:#x}"),
                "skb_adjust_room",
                &room(diff, mode, flags),
                pkt.clone(),
                zero_ctx(),
                s,
            );
        }
    }
    // Encapsulation is remembered: a second encap is -EALREADY, change_tail -ENOTSUPP.
    let src = tc_call(
        &format!("r1 = r6\n{}\ncall bpf_skb_adjust_room", room(28, 1, 0x12)),
        &format!("{}\ncall bpf_skb_adjust_room", room(28, 1, 0x12)),
        "r1 = r6\nr2 = 100\nr3 = 0\ncall bpf_skb_change_tail\n*(u64 *)(r6 + 56) = r0",
    );
    s.add("tc encap twice, then change_tail", SchedCls, &src, tcp4(), zero_ctx());
    // Growing a GSO skb is refused; adjust_room resets CHECKSUM_UNNECESSARY unless told not to.
    call(
        SchedCls,
        "adjust_room on gso skb",
        "skb_adjust_room",
        &room(8, 0, 0),
        tcp4(),
        Some(gso),
        s,
    );
    for flags in [0u64, 0x20] {
        let src = tc_call(
            "r1 = r6\nr2 = 1\ncall bpf_csum_level",
            &format!("{}\ncall bpf_skb_adjust_room", room(8, 0, flags)),
            "r1 = r6\nr2 = 0\ncall bpf_csum_level\n*(u64 *)(r6 + 56) = r0",
        );
        s.add(
            format!("tc adjust_room csum reset flags {flags:#x}"),
            SchedCls,
            &src,
            tcp4(),
            zero_ctx(),
        );
    }
    // change_proto 4 -> 6 -> 4, unsupported pairs, flags.
    for (pname, pkt) in [("tcp4", tcp4()), ("tcp6", tcp6()), ("arp", arp())] {
        for (proto, flags) in [(0xdd86u64, 0u64), (0x0008, 0), (0xdd86, 1), (0x0608, 0)] {
            call(
                SchedCls,
                &format!("{pname} change_proto {proto:#x} flags {flags}"),
                "skb_change_proto",
                &format!("r2 = {proto}\nr3 = {flags}"),
                pkt.clone(),
                zero_ctx(),
                s,
            );
        }
    }
    let src = tc_call(
        "r1 = r6\nr2 = 0xdd86\nr3 = 0\ncall bpf_skb_change_proto",
        "r2 = 0x0008\nr3 = 0\ncall bpf_skb_change_proto",
        "r2 = *(u32 *)(r6 + 0)\n*(u64 *)(r6 + 56) = r2",
    );
    s.add("tc change_proto there and back", SchedCls, &src, tcp4(), zero_ctx());
    // change_type.
    for ty in [0u64, 1, 2, 3, 4, 0x1_0000_0001] {
        let src = tc_call(
            "",
            &format!("r2 = {ty} ll\ncall bpf_skb_change_type"),
            "r2 = *(u32 *)(r6 + 4)\n*(u64 *)(r6 + 56) = r2",
        );
        s.add(format!("tc change_type {ty:#x}"), SchedCls, &src, tcp4(), zero_ctx());
    }
    // Helpers not available to a program type are refused by the verifier.
    for (t, helper, args) in [
        (SocketFilter, "skb_change_tail", "r2 = 60\nr3 = 0"),
        (CgroupSkb, "skb_pull_data", "r2 = 0"),
        (CgroupSkb, "skb_adjust_room", "r2 = 8\nr3 = 0\nr4 = 0"),
        (LwtIn, "skb_change_head", "r2 = 8\nr3 = 0"),
        (LwtXmit, "skb_change_proto", "r2 = 0\nr3 = 0"),
        (LwtXmit, "skb_vlan_push", "r2 = 0\nr3 = 0"),
        (Xdp, "skb_load_bytes", "r2 = 0\nr3 = r10\nr3 += -8\nr4 = 4"),
    ] {
        let src = format!("r6 = r1\n{args}\ncall bpf_{helper}\nr0 = 1\nexit");
        s.probe(
            format!("{t:?} {helper} not allowed"),
            t,
            &src,
            tcp4(),
            if t == Xdp { None } else { zero_ctx() },
        );
    }
}

fn vlan_cases(s: &mut Suite) {
    let fields = "r2 = *(u32 *)(r6 + 20)\n*(u8 *)(r6 + 56) = r2\nr2 = *(u32 *)(r6 + 24)\n*(u16 *)(r6 + 58) = r2\nr2 = *(u32 *)(r6 + 28)\n*(u16 *)(r6 + 60) = r2\nr2 = *(u32 *)(r6 + 16)\n*(u16 *)(r6 + 62) = r2\nr2 = *(u32 *)(r6 + 0)\n*(u32 *)(r6 + 64) = r2";
    let push = |proto: u64, tci: u64| {
        format!(
            "r1 = r6\nr2 = {proto:#x}\nr3 = {tci:#x}\ncall bpf_skb_vlan_push\n*(u8 *)(r6 + 49) = r0"
        )
    };
    let pop = "r1 = r6\ncall bpf_skb_vlan_pop\n*(u8 *)(r6 + 50) = r0";
    let seqs: Vec<(&str, String)> = vec![
        ("push", push(0x0081, 100)),
        ("push 802.1ad", push(0xa888, 0xf064)),
        ("push bad proto", push(0x3412, 0x1_0005)),
        ("push push", format!("{}\n{}", push(0x0081, 100), push(0xa888, 200))),
        (
            "push push push",
            format!("{}\n{}\n{}", push(0x0081, 100), push(0xa888, 200), push(0x0081, 300)),
        ),
        ("pop", pop.to_owned()),
        ("push pop", format!("{}\n{pop}", push(0x0081, 100))),
        ("push push pop", format!("{}\n{}\n{pop}", push(0x0081, 100), push(0xa888, 200))),
        ("pop pop", format!("{pop}\n{pop}")),
    ];
    for (pname, pkt) in [("tcp4", tcp4()), ("vlan", vlan()), ("qinq", qinq()), ("arp", arp())] {
        for (name, body) in &seqs {
            let src = format!("r6 = r1\n{body}\n{fields}\nr0 = 0\nexit");
            s.add(format!("tc {pname} vlan {name}"), SchedCls, &src, pkt.clone(), zero_ctx());
        }
    }
    // A VLAN frame too short to pop.
    let src = format!("r6 = r1\n{pop}\n{fields}\nr0 = 0\nexit");
    s.add("tc vlan pop of a 17-byte frame", SchedCls, &src, vlan()[..17].to_vec(), zero_ctx());
    s.probe("cgroup_skb vlan_pop", CgroupSkb, "call bpf_skb_vlan_pop\nr0 = 1\nexit", tcp4(), None);
}

fn misc_cases(s: &mut Suite) {
    // bpf_redirect: tc and lwt_xmit verdicts, XDP verdicts.
    for (t, flags) in [
        (SchedCls, 0u64),
        (SchedCls, 1),
        (SchedCls, 2),
        (SchedCls, 1 << 16),
        (LwtXmit, 0),
        (LwtXmit, 8),
        (Xdp, 0),
        (Xdp, 1),
    ] {
        let src = format!("r1 = 1\nr2 = {flags} ll\ncall bpf_redirect\nexit");
        s.add(format!("{t:?} redirect flags {flags:#x}"), t, &src, tcp4(), None);
    }
    s.probe(
        "socket filter redirect",
        SocketFilter,
        "r1 = 1\nr2 = 0\ncall bpf_redirect\nexit",
        tcp4(),
        None,
    );
    // Hashes: the recalculated hash is what skb->hash reads afterwards and never 0 (its value
    // depends on the kernel's per-boot seed); set_hash wins; set_hash_invalid clears.
    let src = tc_call(
        "",
        "call bpf_get_hash_recalc",
        "r2 = *(u32 *)(r6 + 68)\nr0 = 0\nif r2 != r7 goto out\nif r7 == 0 goto out\nr0 = 1\nout:\n*(u64 *)(r6 + 48) = r0\nr1 = r6\ncall bpf_get_hash_recalc\nr2 = 0\nif r0 != r7 goto out2\nr2 = 1\nout2:\n*(u64 *)(r6 + 56) = r2",
    );
    for (pname, pkt) in [("tcp4", tcp4()), ("udp4", udp4()), ("tcp6", tcp6()), ("arp", arp())] {
        s.add(format!("tc {pname} get_hash_recalc"), SchedCls, &src, pkt, zero_ctx());
    }
    let src = tc_call(
        "r1 = r6\nr2 = 0x1234\ncall bpf_set_hash",
        "call bpf_get_hash_recalc",
        "r2 = *(u32 *)(r6 + 68)\n*(u64 *)(r6 + 56) = r2",
    );
    s.add("tc set_hash then recalc", SchedCls, &src, tcp4(), zero_ctx());
    let src = tc_call(
        "r1 = r6\nr2 = 0x1234\ncall bpf_set_hash",
        "call bpf_set_hash_invalid",
        "r2 = *(u32 *)(r6 + 68)\n*(u64 *)(r6 + 56) = r2",
    );
    s.add("tc set_hash then set_hash_invalid", SchedCls, &src, tcp4(), zero_ctx());
    let src = tc_call(
        "r1 = r6\nr2 = 0x1234\ncall bpf_set_hash",
        "r2 = 0xdd86\nr3 = 0\ncall bpf_skb_change_proto",
        "r2 = *(u32 *)(r6 + 68)\n*(u64 *)(r6 + 56) = r2",
    );
    s.add("tc change_proto clears the hash", SchedCls, &src, tcp4(), zero_ctx());
    s.probe(
        "cgroup_skb set_hash",
        CgroupSkb,
        "r2 = 1\ncall bpf_set_hash\nr0 = 1\nexit",
        tcp4(),
        None,
    );
    // Socket cookie (nonzero) and uid of the test run's socket.
    for t in [SocketFilter, SchedCls, CgroupSkb] {
        let src = "r6 = r1\ncall bpf_get_socket_cookie\nr2 = 0\nif r0 == 0 goto out\nr2 = 1\nout:\n*(u64 *)(r6 + 48) = r2\nr1 = r6\ncall bpf_get_socket_uid\n*(u64 *)(r6 + 56) = r0\nr0 = 1\nexit";
        s.add(format!("{t:?} socket cookie and uid"), t, src, tcp4(), zero_ctx());
    }
    s.probe(
        "lwt_in socket cookie",
        LwtIn,
        "call bpf_get_socket_cookie\nr0 = 1\nexit",
        tcp4(),
        None,
    );
}

/// Helpers one after the other: the later ones see the headers the earlier ones moved.
fn combination_cases(s: &mut Suite) {
    let room = |diff: i64, mode: u64, flags: u64| {
        format!("r1 = r6\nr2 = {diff}\nr3 = {mode}\nr4 = {flags:#x} ll\ncall bpf_skb_adjust_room\n")
    };
    let head = |n: u64| format!("r1 = r6\nr2 = {n}\nr3 = 0\ncall bpf_skb_change_head\n");
    let push = "r1 = r6\nr2 = 0x81\nr3 = 100\ncall bpf_skb_vlan_push\n";
    let push2 = "r1 = r6\nr2 = 0xa888\nr3 = 200\ncall bpf_skb_vlan_push\n";
    let to6 = "r1 = r6\nr2 = 0xdd86\nr3 = 0\ncall bpf_skb_change_proto\n";
    let rel = |hdr: u64, off: u64| {
        format!(
            "*(u64 *)(r10 - 8) = 0\nr1 = r6\nr2 = {off}\nr3 = r10\nr3 += -8\nr4 = 8\nr5 = {hdr}\ncall bpf_skb_load_bytes_relative\nr2 = *(u64 *)(r10 - 8)\n*(u64 *)(r6 + 56) = r2\n"
        )
    };
    let tail = |n: u64| {
        format!("r1 = r6\nr2 = {n}\nr3 = 0\ncall bpf_skb_change_tail\n*(u32 *)(r6 + 64) = r0\n")
    };
    let combos: Vec<(&str, String)> = vec![
        (
            "grow net then ld_abs",
            format!(
                "{}r0 = *(u32 *)skb[30]\n*(u32 *)(r6 + 48) = r0\nr0 = *(u32 *)skb[34]\n*(u32 *)(r6 + 52) = r0\n",
                room(8, 0, 0)
            ),
        ),
        ("change_head then mac relative", format!("{}{}", head(6), rel(0, 0))),
        ("change_head then adjust_room mac", format!("{}{}{}", head(6), room(4, 1, 0), rel(1, 0))),
        ("change_head then change_tail below the headers", format!("{}{}", head(6), tail(10))),
        ("vlan push twice then net relative", format!("{push}{push2}{}", rel(1, 0))),
        ("vlan push twice then adjust_room", format!("{push}{push2}{}", room(4, 1, 0))),
        ("vlan push twice then change_proto", format!("{push}{push2}{to6}")),
        ("change_proto then grow net", format!("{to6}{}", room(8, 0, 0))),
        (
            "encap then net relative and tail",
            format!("{}{}{}", room(28, 1, 0x12), rel(1, 0), tail(200)),
        ),
        ("encap ipv6 then net relative", format!("{}{}", room(40, 1, 0x4), rel(1, 0))),
        ("shrink net then tail", format!("{}{}", room(-20, 0, 0), tail(34))),
        (
            "decap then protocol",
            format!("{}r2 = *(u32 *)(r6 + 16)\n*(u32 *)(r6 + 48) = r2\n", room(-20, 1, 0x100)),
        ),
        ("pop inband then mac relative", format!("r1 = r6\ncall bpf_skb_vlan_pop\n{}", rel(0, 8))),
    ];
    for (pname, pkt) in [("tcp4", tcp4()), ("vlan", vlan())] {
        for (name, body) in &combos {
            let src = format!("r6 = r1\n{body}r0 = 0\nexit");
            s.add(format!("tc {pname} {name}"), SchedCls, &src, pkt.clone(), zero_ctx());
        }
    }
    // lwt programs: hashes, csum_diff and csum_level where they exist.
    for t in [LwtIn, LwtXmit] {
        let src = "r6 = r1\ncall bpf_get_hash_recalc\nr2 = *(u32 *)(r6 + 68)\nr0 = 0\nif r0 == r2 goto out\nr0 = 1\nout:\n*(u64 *)(r6 + 48) = r0\nr1 = 0\nr2 = 0\nr3 = 0\nr4 = 0\nr5 = 0x12345\ncall bpf_csum_diff\n*(u64 *)(r6 + 56) = r0\nr0 = 0\nexit";
        s.add(format!("{t:?} hash recalc and csum_diff"), t, src, tcp4(), zero_ctx());
        let src = "r6 = r1\nr2 = 1\ncall bpf_csum_level\nr1 = r6\nr2 = 0\ncall bpf_csum_level\n*(u64 *)(r6 + 48) = r0\nr0 = 0\nexit";
        s.probe(format!("{t:?} csum_level"), t, src, tcp4(), zero_ctx());
    }
}

fn flow_dissector_cases(s: &mut Suite) {
    let src = "r2 = *(u64 *)(r1 + 144)
        r3 = *(u32 *)(r1 + 76)
        r4 = *(u32 *)(r1 + 80)
        r4 -= r3
        *(u16 *)(r2 + 12) = r4
        r5 = *(u16 *)(r2 + 0)
        *(u16 *)(r2 + 14) = r5
        r5 = *(u32 *)(r2 + 48)
        *(u32 *)(r2 + 52) = r5
        *(u8 *)(r2 + 9) = 6
        *(u16 *)(r2 + 2) = 9999
        r0 = 0
        exit";
    s.add("flow dissector keys", FlowDissector, src, tcp4(), None);
    let mut keys_ctx = vec![0u8; 56];
    keys_ctx[48] = 1;
    s.add("flow dissector keys with flags", FlowDissector, src, tcp4(), Some(keys_ctx));
    let mut bad = vec![0u8; 56];
    bad[0] = 1;
    s.probe("flow dissector ctx with nhoff", FlowDissector, src, tcp4(), Some(bad));
    let src = "r2 = *(u64 *)(r1 + 144)\n*(u16 *)(r2 + 0) = 5\n*(u16 *)(r2 + 2) = 3\nr0 = 2\nexit";
    s.add("flow dissector offsets clamped", FlowDissector, src, arp(), None);
    let src = "r2 = *(u64 *)(r1 + 144)\n*(u16 *)(r2 + 0) = 30\n*(u16 *)(r2 + 2) = 20\nr0 = 0\nexit";
    s.add("flow dissector thoff below nhoff", FlowDissector, src, tcp4(), None);
    for (off, ty) in [(0, "u32"), (8, "u32"), (76, "u16"), (144, "u32"), (80, "u32")] {
        let src = format!("r2 = *({ty} *)(r1 + {off})\nr0 = 0\nexit");
        s.probe(format!("flow dissector read {ty} @{off}"), FlowDissector, &src, tcp4(), None);
    }
    s.probe(
        "flow dissector write",
        FlowDissector,
        "r2 = 1\n*(u32 *)(r1 + 8) = r2\nr0 = 0\nexit",
        tcp4(),
        None,
    );
    s.probe("flow dissector runt", FlowDissector, "r0 = 0\nexit", vec![0; 10], None);
}

/// Legacy packet loads at the edges: `SKF_NET_OFF`/`SKF_LL_OFF` offsets, `src + imm` wrapping
/// to 32 bits, and a program type whose verifier refuses LD_ABS (cgroup_skb).
fn legacy_packet_load_cases() -> Vec<Case> {
    let mut s = Suite { cases: Vec::new() };
    s.add(
        "tc ld_abs SKF_NET_OFF + 0",
        SchedCls,
        "r6 = r1\nr0 = *(u8 *)skb[-1048576]\nexit",
        tcp4(),
        None,
    );
    s.add(
        "socket filter ld_abs SKF_LL_OFF + 6",
        SocketFilter,
        "r6 = r1\nr0 = *(u8 *)skb[-2097146]\nexit",
        tcp4(),
        None,
    );
    s.add(
        "tc ld_ind wrapping to offset 0",
        SchedCls,
        "r6 = r1\nr7 = 0xffffffff ll\nr0 = *(u8 *)skb[r7 + 1]\nexit",
        tcp4(),
        None,
    );
    s.probe(
        "cgroup_skb ld_abs",
        CgroupSkb,
        "r6 = r1\nr0 = *(u8 *)skb[0]\nr0 = 1\nexit",
        tcp4(),
        None,
    );
    s.cases
}

#[test]
fn skb_context_and_helpers_match_the_kernel() {
    if let Err(e) = probe() {
        println!("SKIP: the kernel cannot load BPF programs here: {e}");
        return;
    }
    let mut s = Suite { cases: Vec::new() };
    field_sweep(&mut s);
    pointer_cases(&mut s);
    write_cases(&mut s);
    input_cases(&mut s);
    ld_abs_cases(&mut s);
    load_bytes_cases(&mut s);
    store_bytes_cases(&mut s);
    csum_cases(&mut s);
    resize_cases(&mut s);
    vlan_cases(&mut s);
    misc_cases(&mut s);
    combination_cases(&mut s);
    flow_dissector_cases(&mut s);

    let (mut ran, mut refused, mut bad_input) = (0, 0, 0);
    let mut failures = Vec::new();
    for case in &s.cases {
        let (mut k, mut i) = (kernel(case), interp(case));
        if case.ctx.is_none() {
            // Without a ctx_in there is no ctx_out to compare (the XDP context always has one).
            for o in [&mut k, &mut i] {
                if let Outcome::Ran { ctx, .. } = o {
                    *ctx = None;
                }
            }
        }
        if case.must_run && !matches!(k, Outcome::Ran { .. }) {
            let insns = assemble(&case.src).expect("assembled");
            let log = match KernelProgram::load(case.prog_type, &insns, "GPL") {
                Err(e) => e.to_string(),
                Ok(_) => String::new(),
            };
            failures.push(format!(
                "{}: the kernel did not run it: {k:?}\n{}\n{log}",
                case.name, case.src
            ));
            continue;
        }
        if k != i {
            failures
                .push(format!("{}:\n  kernel: {k:?}\n  interp: {i:?}\n{}", case.name, case.src));
            continue;
        }
        match k {
            Outcome::Ran { .. } => ran += 1,
            Outcome::Refused => refused += 1,
            _ => bad_input += 1,
        }
    }
    println!(
        "skb vs kernel: {} cases, {} agree ({ran} ran, {refused} refused by both, {bad_input} \
         inputs refused by both), {} disagree",
        s.cases.len(),
        ran + refused + bad_input,
        failures.len()
    );
    for case in legacy_packet_load_cases() {
        let (k, i) = (kernel(&case), interp(&case));
        if k != i {
            failures.push(format!("{}: kernel {k:?}, interp {i:?}", case.name));
        }
    }
    for f in failures.iter().take(40) {
        println!("DISAGREE {f}\n");
    }
    assert!(failures.is_empty(), "{} of {} cases disagree", failures.len(), s.cases.len());
}
