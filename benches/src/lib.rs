//! Benchmark programs shared by bpflab's benches (interpreter today, JIT and kernel later).
//!
//! Every program is a plain `Vec<Insn>` in raw mode (r1 points to the input memory), built
//! with the typed instruction API so it needs nothing but `bpflab-vm`, and comes with a Rust
//! function computing the `r0` it must return for a given input. The same bytecode
//! ([`bpflab_vm::isa::encode_bytes`]) is fed to rbpf, so every program here sticks to what
//! rbpf 0.4 runs too: no helpers, no JMP32, no sign-extending forms, and no use of `r2`
//! (rbpf's `EbpfVmRaw` sets r1 to the memory but leaves r2 = 0, so the packet program takes
//! `data_end = data + PACKET_LEN`).

use bpflab_vm::isa::{AluOp, ByteOrder, Insn, JmpCond, MemSize, Operand, Reg, Width};

/// XDP verdict: drop the packet.
pub const XDP_DROP: u64 = 1;
/// XDP verdict: let the packet through.
pub const XDP_PASS: u64 = 2;

/// Iterations of [`alu_loop`].
pub const ALU_LOOP_ITERS: u32 = 1_000;
/// Instructions executed by one iteration of the ALU loop body.
pub const ALU_LOOP_BODY: u64 = 10;

/// FNV-1a 64-bit offset basis, the ALU loop's initial hash.
pub const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV 64-bit prime, the ALU loop's multiplier.
pub const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Length of the packet [`packet_parse`] expects (its `data_end` is `data + PACKET_LEN`).
pub const PACKET_LEN: usize = 64;
/// TCP destination port [`packet_parse`] lets through.
pub const PASS_PORT: u16 = 80;

// Small constructors so the programs below read like assembly.

fn alu(op: AluOp, dst: Reg, src: Operand) -> Insn {
    Insn::Alu { width: Width::W64, op, dst, src }
}

fn mov_imm(dst: Reg, imm: i32) -> Insn {
    alu(AluOp::Mov, dst, Operand::Imm(imm))
}

fn mov_reg(dst: Reg, src: Reg) -> Insn {
    alu(AluOp::Mov, dst, Operand::Reg(src))
}

fn jmp(cond: JmpCond, dst: Reg, src: Operand, off: i16) -> Insn {
    Insn::Jump { width: Width::W64, cond, dst, src, off }
}

fn load(size: MemSize, dst: Reg, src: Reg, off: i16) -> Insn {
    Insn::Load { size, signed: false, dst, src, off }
}

fn be16(dst: Reg) -> Insn {
    Insn::Endian { order: ByteOrder::Be, bits: 16, dst }
}

/// The ALU hash loop with the default [`ALU_LOOP_ITERS`] iterations: ~10k executed
/// instructions, no memory access. See [`alu_loop_n`].
pub fn alu_loop() -> Vec<Insn> {
    alu_loop_n(ALU_LOOP_ITERS)
}

/// An FNV/xorshift-style hash loop of `iters` iterations (`iters >= 1`), ten instructions
/// each (xor, mul, two movs, rsh, xor, lsh, add, counter decrement, backward `jne`), between
/// three setup instructions (two of them `ld_imm64`) and `exit`. Returns the hash in r0;
/// ignores its input.
///
/// ```text
///     r0 = FNV_OFFSET ll
///     r8 = FNV_PRIME ll
///     r6 = iters
/// loop:
///     r0 ^= r6
///     r0 *= r8
///     r3 = r0
///     r3 >>= 29
///     r0 ^= r3
///     r3 = r0
///     r3 <<= 17
///     r0 += r3
///     r6 += -1
///     if r6 != 0 goto loop
///     exit
/// ```
pub fn alu_loop_n(iters: u32) -> Vec<Insn> {
    assert!(iters >= 1 && iters <= i32::MAX as u32, "iteration count out of range");
    let (r0, r3, r6, r8) = (Reg::R0, Reg::R3, Reg::R6, Reg::R8);
    vec![
        Insn::ld_imm64(r0, FNV_OFFSET),
        Insn::ld_imm64(r8, FNV_PRIME),
        mov_imm(r6, iters as i32),
        // loop:
        alu(AluOp::Xor, r0, Operand::Reg(r6)),
        alu(AluOp::Mul, r0, Operand::Reg(r8)),
        mov_reg(r3, r0),
        alu(AluOp::Rsh, r3, Operand::Imm(29)),
        alu(AluOp::Xor, r0, Operand::Reg(r3)),
        mov_reg(r3, r0),
        alu(AluOp::Lsh, r3, Operand::Imm(17)),
        alu(AluOp::Add, r0, Operand::Reg(r3)),
        alu(AluOp::Add, r6, Operand::Imm(-1)),
        jmp(JmpCond::Ne, r6, Operand::Imm(0), -10),
        Insn::Exit,
    ]
}

/// The hash [`alu_loop_n`]`(iters)` returns.
pub fn alu_loop_expected_n(iters: u32) -> u64 {
    let mut h = FNV_OFFSET;
    for i in (1..=u64::from(iters)).rev() {
        h ^= i;
        h = h.wrapping_mul(FNV_PRIME);
        h ^= h >> 29;
        h = h.wrapping_add(h << 17);
    }
    h
}

/// The hash [`alu_loop`] returns.
pub fn alu_loop_expected() -> u64 {
    alu_loop_expected_n(ALU_LOOP_ITERS)
}

/// Instructions [`alu_loop_n`]`(iters)` executes (an `ld_imm64` counts as one): three setup
/// instructions, the body, and `exit`.
pub fn alu_loop_insn_count_n(iters: u32) -> u64 {
    3 + u64::from(iters) * ALU_LOOP_BODY + 1
}

/// An XDP-style parser of an Ethernet/IPv4/TCP packet in raw mode (r1 = data,
/// `data_end = data + PACKET_LEN`). Like real XDP code it checks every header against
/// `data_end` before reading it (`if r3 > r2 goto drop`), then requires ethertype IPv4
/// (0x0800, `be16` of a u16 load), version 4 with IHL >= 5, no fragment offset, a non-zero
/// TTL, protocol TCP (6), a TCP data offset >= 5, and returns [`XDP_PASS`] when the TCP
/// destination port is [`PASS_PORT`], [`XDP_DROP`] otherwise (also for malformed packets).
/// Runs 39 instructions on [`packet_64`].
pub fn packet_parse() -> Vec<Insn> {
    let (r0, r1, r2, r3, r4, r5) = (Reg::R0, Reg::R1, Reg::R2, Reg::R3, Reg::R4, Reg::R5);
    use JmpCond::{Eq, Gt, Lt, Ne};
    use Operand::{Imm, Reg as R};
    // Each conditional jump to `drop` is written with its absolute target and converted.
    let mut prog: Vec<Insn> = Vec::new();
    let mut to_drop: Vec<usize> = Vec::new();
    let mut push_drop = |prog: &mut Vec<Insn>, cond, dst, src| {
        to_drop.push(prog.len());
        prog.push(jmp(cond, dst, src, 0));
    };
    // r2 = data_end; r0 = XDP_DROP until proven otherwise.
    prog.push(mov_reg(r2, r1));
    prog.push(alu(AluOp::Add, r2, Imm(PACKET_LEN as i32)));
    prog.push(mov_imm(r0, XDP_DROP as i32));
    // Ethernet header: 14 bytes.
    prog.push(mov_reg(r3, r1));
    prog.push(alu(AluOp::Add, r3, Imm(14)));
    push_drop(&mut prog, Gt, r3, R(r2));
    prog.push(load(MemSize::H, r4, r1, 12));
    prog.push(be16(r4));
    push_drop(&mut prog, Ne, r4, Imm(0x0800));
    // IPv4 header at r3: at least 20 bytes.
    prog.push(mov_reg(r5, r3));
    prog.push(alu(AluOp::Add, r5, Imm(20)));
    push_drop(&mut prog, Gt, r5, R(r2));
    prog.push(load(MemSize::B, r4, r3, 0));
    prog.push(mov_reg(r5, r4));
    prog.push(alu(AluOp::Rsh, r5, Imm(4)));
    push_drop(&mut prog, Ne, r5, Imm(4));
    prog.push(alu(AluOp::And, r4, Imm(0x0f)));
    push_drop(&mut prog, Lt, r4, Imm(5));
    prog.push(load(MemSize::H, r5, r3, 6));
    prog.push(be16(r5));
    prog.push(alu(AluOp::And, r5, Imm(0x1fff)));
    push_drop(&mut prog, Ne, r5, Imm(0));
    prog.push(load(MemSize::B, r5, r3, 8));
    push_drop(&mut prog, Eq, r5, Imm(0));
    prog.push(load(MemSize::B, r5, r3, 9));
    push_drop(&mut prog, Ne, r5, Imm(6));
    // TCP header at r3 + 4 * IHL: at least 20 bytes.
    prog.push(alu(AluOp::Lsh, r4, Imm(2)));
    prog.push(alu(AluOp::Add, r3, R(r4)));
    prog.push(mov_reg(r5, r3));
    prog.push(alu(AluOp::Add, r5, Imm(20)));
    push_drop(&mut prog, Gt, r5, R(r2));
    prog.push(load(MemSize::B, r5, r3, 12));
    prog.push(alu(AluOp::Rsh, r5, Imm(4)));
    push_drop(&mut prog, Lt, r5, Imm(5));
    prog.push(load(MemSize::H, r4, r3, 2));
    prog.push(be16(r4));
    push_drop(&mut prog, Ne, r4, Imm(i32::from(PASS_PORT)));
    prog.push(mov_imm(r0, XDP_PASS as i32));
    // drop:
    let drop = prog.len();
    prog.push(Insn::Exit);
    for at in to_drop {
        if let Insn::Jump { off, .. } = &mut prog[at] {
            *off = (drop - at - 1) as i16;
        }
    }
    prog
}

/// The verdict [`packet_parse`] returns for `pkt` (only its first [`PACKET_LEN`] bytes are
/// visible to the program; `pkt` must be at least that long).
pub fn packet_parse_expected(pkt: &[u8]) -> u64 {
    assert!(pkt.len() >= PACKET_LEN, "packet_parse reads data_end = data + {PACKET_LEN}");
    let pkt = &pkt[..PACKET_LEN];
    let be16 = |at: usize| u16::from_be_bytes([pkt[at], pkt[at + 1]]);
    let verdict = || -> Option<()> {
        (be16(12) == 0x0800).then_some(())?;
        let ip = pkt.get(14..14 + 20)?;
        (ip[0] >> 4 == 4 && ip[0] & 0x0f >= 5).then_some(())?;
        let frag = u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff;
        (frag == 0 && ip[8] != 0 && ip[9] == 6).then_some(())?;
        let tcp_at = 14 + 4 * usize::from(ip[0] & 0x0f);
        let tcp = pkt.get(tcp_at..tcp_at + 20)?;
        (tcp[12] >> 4 >= 5 && u16::from_be_bytes([tcp[2], tcp[3]]) == PASS_PORT).then_some(())
    };
    if verdict().is_some() { XDP_PASS } else { XDP_DROP }
}

/// A 64-byte Ethernet/IPv4/TCP SYN to port `dst_port` (14 + 20 + 20 header bytes, then
/// 10 bytes of payload), with valid lengths and IPv4 checksum.
pub fn packet_64_to(dst_port: u16) -> Vec<u8> {
    let mut p = Vec::with_capacity(PACKET_LEN);
    // Ethernet: dst MAC, src MAC, ethertype IPv4.
    p.extend_from_slice(&[0x02, 0x00, 0x00, 0x00, 0x00, 0x02]);
    p.extend_from_slice(&[0x02, 0x00, 0x00, 0x00, 0x00, 0x01]);
    p.extend_from_slice(&0x0800u16.to_be_bytes());
    // IPv4: version 4, IHL 5, total length 50, DF, TTL 64, TCP, 10.0.0.1 -> 10.0.0.2.
    let ip_start = p.len();
    p.extend_from_slice(&[0x45, 0x00]);
    p.extend_from_slice(&((PACKET_LEN - 14) as u16).to_be_bytes());
    p.extend_from_slice(&[0x12, 0x34, 0x40, 0x00, 64, 6, 0, 0]);
    p.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
    let sum =
        p[ip_start..].chunks(2).map(|w| u32::from(u16::from_be_bytes([w[0], w[1]]))).sum::<u32>();
    let sum = (sum & 0xffff) + (sum >> 16);
    let csum = !((sum & 0xffff) + (sum >> 16)) as u16;
    p[ip_start + 10..ip_start + 12].copy_from_slice(&csum.to_be_bytes());
    // TCP: src port 40000, dst port, seq 1, ack 0, data offset 5, SYN, window 65535.
    p.extend_from_slice(&40000u16.to_be_bytes());
    p.extend_from_slice(&dst_port.to_be_bytes());
    p.extend_from_slice(&1u32.to_be_bytes());
    p.extend_from_slice(&0u32.to_be_bytes());
    p.extend_from_slice(&[0x50, 0x02, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00]);
    // Payload.
    p.resize(PACKET_LEN, 0xab);
    p
}

/// The benchmark input of [`packet_parse`]: [`packet_64_to`]`(`[`PASS_PORT`]`)`, which the
/// program passes ([`XDP_PASS`]) after the full parse.
pub fn packet_64() -> Vec<u8> {
    packet_64_to(PASS_PORT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpflab_vm::isa::encode_bytes;
    use bpflab_vm::{Interpreter, Program};

    /// Runs `insns` in bpflab's interpreter on a copy of `data`; returns r0 and the count.
    fn run_bpflab(insns: &[Insn], data: &[u8]) -> (u64, u64) {
        let mut p = Interpreter::default().prepare(&Program::raw("t", insns.to_vec())).unwrap();
        let mut buf = data.to_vec();
        let out = p.run_raw(&mut buf).unwrap();
        assert_eq!(buf, data, "the programs do not write their input");
        out
    }

    /// Runs the bytecode of `insns` in rbpf 0.4's interpreter on a copy of `data`.
    fn run_rbpf(insns: &[Insn], data: &[u8]) -> u64 {
        let code = encode_bytes(insns);
        let vm = rbpf::EbpfVmRaw::new(Some(&code)).unwrap();
        let mut buf = data.to_vec();
        vm.execute_program(&mut buf).unwrap()
    }

    #[test]
    fn alu_loop_matches_in_both_vms() {
        let insns = alu_loop();
        let (r0, count) = run_bpflab(&insns, &[]);
        assert_eq!(r0, alu_loop_expected());
        assert_eq!(count, alu_loop_insn_count_n(ALU_LOOP_ITERS));
        assert_eq!(count, 10_004);
        assert_eq!(run_rbpf(&insns, &[]), alu_loop_expected());
        for iters in [1, 2, 7] {
            let (r0, count) = run_bpflab(&alu_loop_n(iters), &[]);
            assert_eq!(r0, alu_loop_expected_n(iters));
            assert_eq!(count, alu_loop_insn_count_n(iters));
        }
    }

    #[test]
    fn packet_is_well_formed() {
        let p = packet_64();
        assert_eq!(p.len(), PACKET_LEN);
        assert_eq!(&p[12..14], &[0x08, 0x00]);
        assert_eq!(&p[36..38], &80u16.to_be_bytes());
        // The IPv4 header checksums to zero.
        let sum =
            p[14..34].chunks(2).map(|w| u32::from(u16::from_be_bytes([w[0], w[1]]))).sum::<u32>();
        let sum = (sum & 0xffff) + (sum >> 16);
        assert_eq!((sum & 0xffff) + (sum >> 16), 0xffff);
    }

    #[test]
    fn packet_parse_passes_port_80_in_both_vms() {
        let insns = packet_parse();
        let pkt = packet_64();
        assert_eq!(packet_parse_expected(&pkt), XDP_PASS);
        let (r0, count) = run_bpflab(&insns, &pkt);
        assert_eq!(r0, XDP_PASS);
        assert_eq!(count, 39);
        assert_eq!(run_rbpf(&insns, &pkt), XDP_PASS);
    }

    #[test]
    fn packet_parse_drops_the_rest_in_both_vms() {
        let insns = packet_parse();
        let mut cases = vec![packet_64_to(443), packet_64_to(8080)];
        let mutate = |at: usize, v: u8| {
            let mut p = packet_64();
            p[at] = v;
            p
        };
        cases.push(mutate(12, 0x86)); // ethertype IPv6
        cases.push(mutate(14, 0x65)); // IP version 6
        cases.push(mutate(14, 0x44)); // IHL 4
        cases.push(mutate(14, 0x4f)); // IHL 15: TCP header past data_end
        cases.push(mutate(21, 0x01)); // fragment offset
        cases.push(mutate(22, 0)); // TTL 0
        cases.push(mutate(23, 17)); // UDP
        cases.push(mutate(46, 0x40)); // TCP data offset 4
        // IHL 6 (options) moves the TCP header: its "dst port" is then bytes 40..42.
        let mut opt = mutate(14, 0x46);
        opt[40..42].copy_from_slice(&80u16.to_be_bytes());
        opt[50] = 0x50; // its data offset
        assert_eq!(packet_parse_expected(&opt), XDP_PASS);
        let mut opt_drop = opt.clone();
        opt_drop[40] = 1;
        cases.push(opt_drop);
        for pkt in &cases {
            assert_eq!(packet_parse_expected(pkt), XDP_DROP, "{pkt:02x?}");
            assert_eq!(run_bpflab(&insns, pkt).0, XDP_DROP, "{pkt:02x?}");
            assert_eq!(run_rbpf(&insns, pkt), XDP_DROP, "{pkt:02x?}");
        }
        assert_eq!(run_bpflab(&insns, &opt).0, XDP_PASS);
        assert_eq!(run_rbpf(&insns, &opt), XDP_PASS);
    }
}
