//! Proptest generators of random eBPF programs that the kernel verifier accepts (as root), for
//! differential tests between bpflab's engines and the kernel. Engine-independent: the output
//! is plain [`Insn`]s.
//!
//! A generated program is a *body*:
//!
//! - a prologue that sets r0..r9 to random 64-bit constants (`ld_imm64`, `mov`, `mov32`;
//!   r1, the context on entry, is overwritten first) and the 64 bytes of stack below r10;
//! - random code: ALU and ALU64 with every operation in K and X forms (no division by an
//!   immediate 0, immediate shifts within the width, signed division and modulo including
//!   `MIN / -1`), NEG, MOVSX, every byte swap, conditional jumps (JMP and JMP32, every
//!   condition, K and X, often with operands made equal or off by one), `ja` and `gotol`,
//!   aligned stack loads (also sign-extending) and stores of every size, atomics on aligned
//!   stack slots, and bounded loops `rK = N; ...; rK -= 1; if rK != 0 goto loop`;
//! - a digest folding r1..r9 and the stack into r0, so that r0 depends on the whole final
//!   state.
//!
//! The body never exits, calls or writes r10. Every jump goes forward to within the body or to
//! the slot just after it, except the back edges of bounded loops. Every register is
//! initialised before it is read. [`GenProgram::for_interpreter`] appends `exit`.
//! [`GenProgram::for_kernel`] appends an epilogue that saves the full 64-bit r0 into a map,
//! because the kernel's test run only returns 32 bits. Around atomics, the generator adds
//! value-neutral instructions that keep two kernel verifier bugs out of the way (see `ops`).

use std::fmt;

use bpflab_vm::isa::{
    AluOp, AtomicOp, ByteOrder, CallKind, Insn, JmpCond, MemSize, Operand, PseudoSrc, Reg, Width,
};
use proptest::prelude::*;

/// Bytes of stack below r10 that the prologue initialises and the body uses.
pub const STACK_BYTES: i16 = 64;

/// Stack offset of the map key the kernel epilogue uses (outside the body's area).
const KEY_OFF: i16 = -72;

/// A generated program body; see the crate documentation.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct GenProgram {
    /// The instructions, without a final `exit`.
    pub body: Vec<Insn>,
}

impl GenProgram {
    /// The number of 8-byte slots of the body.
    pub fn slot_count(&self) -> usize {
        self.body.iter().map(Insn::slots).sum()
    }

    /// The program for engines that return the full r0: the body followed by `exit`.
    pub fn for_interpreter(&self) -> Vec<Insn> {
        let mut out = self.body.clone();
        out.push(Insn::Exit);
        out
    }

    /// The program for the kernel: the body followed by an epilogue that stores the full
    /// 64-bit r0 into element 0 of the 1-entry u32 -> u64 array map `map_fd`, then returns 0.
    pub fn for_kernel(&self, map_fd: i32) -> Vec<Insn> {
        let mut out = self.body.clone();
        out.extend([
            mov64(Reg::R6, Operand::Reg(Reg::R0)),
            Insn::Store { size: MemSize::W, dst: Reg::R10, off: KEY_OFF, src: Operand::Imm(0) },
            mov64(Reg::R2, Operand::Reg(Reg::R10)),
            Insn::Alu {
                width: Width::W64,
                op: AluOp::Add,
                dst: Reg::R2,
                src: Operand::Imm(KEY_OFF.into()),
            },
            Insn::LdImm64 { dst: Reg::R1, src: PseudoSrc::MapFd, imm: map_fd, next_imm: 0 },
            // bpf_map_lookup_elem
            Insn::Call { kind: CallKind::Helper, imm: 1, off: 0 },
            Insn::Jump {
                width: Width::W64,
                cond: JmpCond::Eq,
                dst: Reg::R0,
                src: Operand::Imm(0),
                off: 1,
            },
            Insn::Store { size: MemSize::Dw, dst: Reg::R0, off: 0, src: Operand::Reg(Reg::R6) },
            mov64(Reg::R0, Operand::Imm(0)),
            Insn::Exit,
        ]);
        out
    }
}

/// A listing of `insns`, one per line with its slot number, and the target slot of each jump.
pub fn listing(insns: &[Insn]) -> String {
    let mut out = String::new();
    let mut pc = 0usize;
    for insn in insns {
        out.push_str(&format!("{pc:4}: {insn}"));
        if let Some(off) = insn.branch_offset() {
            out.push_str(&format!("    ; -> {}", pc as i64 + 1 + off));
        }
        out.push('\n');
        pc += insn.slots();
    }
    out
}

impl fmt::Display for GenProgram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&listing(&self.for_interpreter()))
    }
}

impl fmt::Debug for GenProgram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "GenProgram ({} slots + exit):", self.slot_count())?;
        fmt::Display::fmt(self, f)
    }
}

fn mov64(dst: Reg, src: Operand) -> Insn {
    Insn::Alu { width: Width::W64, op: AluOp::Mov, dst, src }
}

/// A jump condition without its offset.
#[derive(Clone, Copy, Debug)]
struct Cond {
    width: Width,
    cond: JmpCond,
    dst: Reg,
    src: Operand,
}

impl Cond {
    fn insn(self, off: usize) -> Insn {
        let off = i16::try_from(off).expect("program too large for a 16-bit jump offset");
        Insn::Jump { width: self.width, cond: self.cond, dst: self.dst, src: self.src, off }
    }
}

/// The structured form programs are generated in; lowering computes the jump offsets, so
/// shrinking (dropping nodes) keeps every jump valid.
#[derive(Clone, Debug)]
enum Node {
    /// Straight-line instructions.
    Ops(Vec<Insn>),
    /// `setup...; if cond goto` past the next `skip` nodes of the same block (or to its end).
    /// A non-empty setup makes the operands equal or nearly so, to test the boundaries.
    If { setup: Vec<Insn>, cond: Cond, skip: usize },
    /// `if cond goto else; then...; goto end (ja or gotol); else: els...; end:`.
    IfElse { cond: Cond, long: bool, then: Vec<Node>, els: Vec<Node> },
    /// `counter = trips; loop: body...; counter -= 1; if counter != 0 goto loop`. Body writes
    /// to `counter` are redirected to another register when lowering.
    Loop { counter: Reg, trips: u8, body: Vec<Node> },
}

fn block_slots(nodes: &[Node]) -> usize {
    nodes.iter().map(node_slots).sum()
}

fn node_slots(node: &Node) -> usize {
    match node {
        Node::Ops(insns) => insns.iter().map(Insn::slots).sum(),
        Node::If { setup, .. } => 1 + setup.iter().map(Insn::slots).sum::<usize>(),
        Node::IfElse { then, els, .. } => 2 + block_slots(then) + block_slots(els),
        Node::Loop { body, .. } => 3 + block_slots(body),
    }
}

/// A register other than those in `protected` (r0..r9), searching upwards from `r`.
fn substitute(r: Reg, protected: &[Reg]) -> Reg {
    (1..10u8)
        .map(|d| Reg::new((r.num() + d) % 10).expect("register"))
        .find(|c| !protected.contains(c))
        .expect("a free register")
}

/// `insn` with every register it writes that is in `protected` replaced by another one.
fn protect(insn: Insn, protected: &[Reg]) -> Insn {
    let fix = |r: Reg| if protected.contains(&r) { substitute(r, protected) } else { r };
    match insn {
        Insn::Alu { width, op, dst, src } => Insn::Alu { width, op, dst: fix(dst), src },
        Insn::Neg { width, dst } => Insn::Neg { width, dst: fix(dst) },
        Insn::Endian { order, bits, dst } => Insn::Endian { order, bits, dst: fix(dst) },
        Insn::LdImm64 { dst, src, imm, next_imm } => {
            Insn::LdImm64 { dst: fix(dst), src, imm, next_imm }
        }
        Insn::Load { size, signed, dst, src, off } => {
            Insn::Load { size, signed, dst: fix(dst), src, off }
        }
        Insn::Atomic { size, op, dst, src, off } if op == AtomicOp::Cmpxchg => {
            assert!(!protected.contains(&Reg::R0), "r0 is never a loop counter");
            Insn::Atomic { size, op, dst, src, off }
        }
        Insn::Atomic { size, op, dst, src, off } if op.fetches() => {
            Insn::Atomic { size, op, dst, src: fix(src), off }
        }
        other => other,
    }
}

fn lower(nodes: &[Node], protected: &[Reg], out: &mut Vec<Insn>) {
    for (i, node) in nodes.iter().enumerate() {
        match node {
            Node::Ops(insns) => out.extend(insns.iter().map(|&insn| protect(insn, protected))),
            Node::If { setup, cond, skip } => {
                out.extend(setup.iter().map(|&insn| protect(insn, protected)));
                let end = (i + 1 + skip).min(nodes.len());
                out.push(cond.insn(block_slots(&nodes[i + 1..end])));
            }
            Node::IfElse { cond, long, then, els } => {
                out.push(cond.insn(block_slots(then) + 1));
                lower(then, protected, out);
                let skip = block_slots(els);
                out.push(if *long {
                    Insn::JaLong { imm: skip as i32 }
                } else {
                    Insn::Ja { off: skip as i16 }
                });
                lower(els, protected, out);
            }
            Node::Loop { counter, trips, body } => {
                let counter = if protected.contains(counter) {
                    substitute(*counter, protected)
                } else {
                    *counter
                };
                let mut inner = protected.to_vec();
                inner.push(counter);
                out.push(mov64(counter, Operand::Imm(i32::from(*trips))));
                lower(body, &inner, out);
                out.push(Insn::Alu {
                    width: Width::W64,
                    op: AluOp::Sub,
                    dst: counter,
                    src: Operand::Imm(1),
                });
                let back = -(block_slots(body) as i64 + 2);
                out.push(Insn::Jump {
                    width: Width::W64,
                    cond: JmpCond::Ne,
                    dst: counter,
                    src: Operand::Imm(0),
                    off: i16::try_from(back).expect("loop too large"),
                });
            }
        }
    }
}

/// How the prologue initialises one register.
#[derive(Clone, Copy, Debug)]
enum RegInit {
    /// `rN = imm64 ll`.
    Wide(u64),
    /// `rN = imm32` (sign-extended).
    Mov64(i32),
    /// `wN = imm32` (zero-extended).
    Mov32(i32),
}

fn prologue(regs: &[RegInit; 10], stack: &[Operand; 8]) -> Vec<Insn> {
    let mut out = Vec::new();
    for (n, init) in regs.iter().enumerate() {
        let dst = Reg::new(n as u8).expect("register");
        out.push(match *init {
            RegInit::Wide(v) => Insn::ld_imm64(dst, v),
            RegInit::Mov64(i) => mov64(dst, Operand::Imm(i)),
            RegInit::Mov32(i) => {
                Insn::Alu { width: Width::W32, op: AluOp::Mov, dst, src: Operand::Imm(i) }
            }
        });
    }
    // After the registers: r1 (the context pointer on entry) must not reach the stack.
    for (k, &src) in stack.iter().enumerate() {
        out.push(Insn::Store { size: MemSize::Dw, dst: Reg::R10, off: -8 * (k as i16 + 1), src });
    }
    out
}

/// The end of every body: folds r1..r9 and the 8 stack words into r0 (`r0 = r0 * K ^ x`, a
/// bijection in r0 for each step), so r0 depends on the whole final state.
fn digest() -> Vec<Insn> {
    const K: i32 = 0x2545_f491;
    let fold = |x: Reg| {
        [
            Insn::Alu { width: Width::W64, op: AluOp::Mul, dst: Reg::R0, src: Operand::Imm(K) },
            Insn::Alu { width: Width::W64, op: AluOp::Xor, dst: Reg::R0, src: Operand::Reg(x) },
        ]
    };
    let mut out = Vec::new();
    for n in 1..=9 {
        out.extend(fold(Reg::new(n).expect("register")));
    }
    for k in 1..=(STACK_BYTES / 8) {
        out.push(Insn::Load {
            size: MemSize::Dw,
            signed: false,
            dst: Reg::R1,
            src: Reg::R10,
            off: -8 * k,
        });
        out.extend(fold(Reg::R1));
    }
    out
}

/// Registers r0..r9 (never r10).
fn reg() -> impl Strategy<Value = Reg> {
    (0u8..=9).prop_map(|n| Reg::new(n).expect("register"))
}

fn width() -> impl Strategy<Value = Width> {
    prop_oneof![Just(Width::W32), Just(Width::W64)]
}

/// 64-bit constants, biased to edge values.
fn const64() -> impl Strategy<Value = u64> {
    const EDGES: &[u64] = &[
        0,
        1,
        2,
        u64::MAX,
        i64::MIN as u64,
        i64::MAX as u64,
        0x8000_0000,
        0x7fff_ffff,
        0xffff_ffff,
        0x1_0000_0000,
        0xffff_ffff_8000_0000,
        0xffff_ffff_7fff_ffff,
        0x80,
        0xff,
        0x8000,
        0xffff,
        31,
        32,
        63,
        64,
    ];
    prop_oneof![
        3 => proptest::sample::select(EDGES),
        3 => any::<u64>(),
        2 => (-16i64..16).prop_map(|v| v as u64),
        1 => any::<u32>().prop_map(u64::from),
        1 => any::<i32>().prop_map(|v| i64::from(v) as u64),
    ]
}

/// 32-bit immediates, biased to edge values.
fn imm32() -> impl Strategy<Value = i32> {
    const EDGES: &[i32] =
        &[0, 1, -1, 2, i32::MIN, i32::MAX, 0x80, 0xff, 0x7fff, 0x8000, -0x8000, 0xffff, 31, 32, 63];
    prop_oneof![
        3 => proptest::sample::select(EDGES),
        3 => any::<i32>(),
        2 => -16i32..16,
    ]
}

fn operand() -> impl Strategy<Value = Operand> {
    prop_oneof![reg().prop_map(Operand::Reg), imm32().prop_map(Operand::Imm)]
}

fn reg_init() -> impl Strategy<Value = RegInit> {
    prop_oneof![
        2 => const64().prop_map(RegInit::Wide),
        1 => imm32().prop_map(RegInit::Mov64),
        1 => imm32().prop_map(RegInit::Mov32),
    ]
}

/// The ALU operations with a plain source operand (the MOVSX forms are generated apart).
const ALU_OPS: &[AluOp] = &[
    AluOp::Add,
    AluOp::Sub,
    AluOp::Mul,
    AluOp::Div,
    AluOp::Sdiv,
    AluOp::Or,
    AluOp::And,
    AluOp::Lsh,
    AluOp::Rsh,
    AluOp::Mod,
    AluOp::Smod,
    AluOp::Xor,
    AluOp::Mov,
    AluOp::Arsh,
];

/// Fixes an immediate so the verifier takes it: shifts within the width, no division by 0.
fn legal_imm(width: Width, op: AluOp, imm: i32) -> i32 {
    let bits = if width == Width::W64 { 64 } else { 32 };
    match op {
        AluOp::Lsh | AluOp::Rsh | AluOp::Arsh => imm.rem_euclid(bits),
        AluOp::Div | AluOp::Sdiv | AluOp::Mod | AluOp::Smod if imm == 0 => 1,
        _ => imm,
    }
}

fn alu() -> impl Strategy<Value = Insn> {
    (width(), proptest::sample::select(ALU_OPS), reg(), operand()).prop_map(
        |(width, op, dst, src)| {
            let src = match src {
                Operand::Imm(i) => Operand::Imm(legal_imm(width, op, i)),
                r => r,
            };
            Insn::Alu { width, op, dst, src }
        },
    )
}

fn movsx() -> impl Strategy<Value = Insn> {
    (width(), 0usize..3, reg(), reg()).prop_map(|(width, k, dst, src)| {
        let op = match (width, k) {
            (_, 0) => AluOp::Movsx8,
            (Width::W32, _) | (_, 1) => AluOp::Movsx16,
            _ => AluOp::Movsx32,
        };
        Insn::Alu { width, op, dst, src: Operand::Reg(src) }
    })
}

fn neg() -> impl Strategy<Value = Insn> {
    (width(), reg()).prop_map(|(width, dst)| Insn::Neg { width, dst })
}

fn endian() -> impl Strategy<Value = Insn> {
    let order = prop_oneof![Just(ByteOrder::Le), Just(ByteOrder::Be), Just(ByteOrder::Swap)];
    (order, proptest::sample::select(&[16u8, 32, 64][..]), reg())
        .prop_map(|(order, bits, dst)| Insn::Endian { order, bits, dst })
}

fn ld_imm64() -> impl Strategy<Value = Insn> {
    (reg(), const64()).prop_map(|(dst, v)| Insn::ld_imm64(dst, v))
}

fn mem_size() -> impl Strategy<Value = MemSize> {
    proptest::sample::select(&[MemSize::B, MemSize::H, MemSize::W, MemSize::Dw][..])
}

/// An aligned stack offset for an access of `size` inside the initialised area, from a
/// slot index `k` (taken modulo the number of slots).
fn stack_off(size: MemSize, k: usize) -> i16 {
    let n = STACK_BYTES as usize / size.bytes();
    -((((k % n) + 1) * size.bytes()) as i16)
}

fn load() -> impl Strategy<Value = Insn> {
    (mem_size(), any::<bool>(), reg(), 0usize..64).prop_map(|(size, signed, dst, k)| Insn::Load {
        size,
        signed: signed && size != MemSize::Dw,
        dst,
        src: Reg::R10,
        off: stack_off(size, k),
    })
}

fn store() -> impl Strategy<Value = Insn> {
    (mem_size(), 0usize..64, operand()).prop_map(|(size, k, src)| Insn::Store {
        size,
        dst: Reg::R10,
        off: stack_off(size, k),
        src,
    })
}

fn atomic() -> impl Strategy<Value = Insn> {
    let size = prop_oneof![Just(MemSize::W), Just(MemSize::Dw)];
    (size, proptest::sample::select(AtomicOp::ALL), reg(), 0usize..16).prop_map(
        |(size, op, src, k)| Insn::Atomic { size, op, dst: Reg::R10, src, off: stack_off(size, k) },
    )
}

/// Signed division edge cases: `dst = MIN; dst s/= -1` (or `s%=`), by immediate or register.
fn sdiv_edge() -> impl Strategy<Value = Vec<Insn>> {
    (width(), any::<bool>(), any::<bool>(), reg(), reg()).prop_map(
        |(width, div, by_reg, dst, src)| {
            let min = match width {
                Width::W64 => Insn::ld_imm64(dst, i64::MIN as u64),
                Width::W32 => Insn::Alu {
                    width: Width::W32,
                    op: AluOp::Mov,
                    dst,
                    src: Operand::Imm(i32::MIN),
                },
            };
            let op = if div { AluOp::Sdiv } else { AluOp::Smod };
            if by_reg && src != dst {
                vec![
                    min,
                    mov64(src, Operand::Imm(-1)),
                    Insn::Alu { width, op, dst, src: Operand::Reg(src) },
                ]
            } else {
                vec![min, Insn::Alu { width, op, dst, src: Operand::Imm(-1) }]
            }
        },
    )
}

/// A compare-and-exchange likely to succeed: `r0 = *(u64 *)slot; [r0 += 1;] cmpxchg` on the
/// slot (its low half for 32 bits, so r0's upper half is non-zero and must be ignored).
fn cmpxchg_hit() -> impl Strategy<Value = Vec<Insn>> {
    let size = prop_oneof![Just(MemSize::W), Just(MemSize::Dw)];
    (size, 0usize..8, reg(), 0..4).prop_map(|(size, k, src, miss)| {
        let off = stack_off(MemSize::Dw, k);
        let mut out =
            vec![Insn::Load { size: MemSize::Dw, signed: false, dst: Reg::R0, src: Reg::R10, off }];
        if miss == 0 {
            out.push(Insn::Alu {
                width: Width::W64,
                op: AluOp::Add,
                dst: Reg::R0,
                src: Operand::Imm(1),
            });
        }
        out.push(Insn::Atomic { size, op: AtomicOp::Cmpxchg, dst: Reg::R10, src, off });
        out
    })
}

fn op() -> BoxedStrategy<Insn> {
    prop_oneof![
        8 => alu(),
        1 => neg(),
        1 => movsx(),
        2 => endian(),
        1 => ld_imm64(),
        3 => load(),
        3 => store(),
        3 => atomic(),
    ]
    .boxed()
}

fn cond() -> BoxedStrategy<Cond> {
    (width(), proptest::sample::select(JmpCond::ALL), reg(), operand())
        .prop_map(|(width, cond, dst, src)| Cond { width, cond, dst, src })
        .boxed()
}

/// A comparison whose operands are made equal or off by one or two: `b = a; b += d; if a op
/// b`, or `a = imm; a += d; if a op imm`.
fn boundary_cond() -> impl Strategy<Value = (Vec<Insn>, Cond)> {
    (cond(), reg(), imm32(), -2i32..=2).prop_map(|(c, b, imm, d)| {
        let add = |r| Insn::Alu { width: c.width, op: AluOp::Add, dst: r, src: Operand::Imm(d) };
        match c.src {
            Operand::Reg(_) if b != c.dst => {
                let setup = vec![mov64(b, Operand::Reg(c.dst)), add(b)];
                (setup, Cond { src: Operand::Reg(b), ..c })
            }
            _ => {
                let setup = vec![mov64(c.dst, Operand::Imm(imm)), add(c.dst)];
                (setup, Cond { src: Operand::Imm(imm), ..c })
            }
        }
    })
}

/// Straight-line code, with two workarounds for kernel verifier bugs seen on 6.18 (see
/// `kernel/tests/kernel_quirks.rs`), neither of which changes what the program computes:
///
/// - Before each fetching atomic (`fetch_*`, `xchg`, `cmpxchg`), `lock *(u64 *)slot ^= src`
///   twice on the 8-byte slot it touches. This leaves memory unchanged but makes the slot
///   opaque to the verifier. Otherwise, when the slot holds a spilled constant, the verifier
///   gives the fetched register that constant. It then does not carry the register's
///   precision back to the slot (precision backtracking treats the atomic as a plain store).
///   A path where the slot was overwritten can be pruned as "equivalent", and code that only
///   that path reaches is removed as dead.
/// - After each 32-bit `cmpxchg`, `r0 |= 0` in the same basic block. The verifier
///   zero-extends r0 after a 32-bit cmpxchg only when it sees a 64-bit read of r0 on that
///   path. If the path is pruned at a later join, that read goes unseen and the `w0 = w0` is
///   left out. x86's `lock cmpxchg` does not write eax when the compare succeeds, so r0 keeps
///   its upper half. The `r0 |= 0` passes r0's full value on, so the zero-extension stays
///   under test.
fn ops(insns: Vec<Insn>) -> Node {
    let mut out = Vec::with_capacity(insns.len() + 3);
    for insn in insns {
        if let Insn::Atomic { op, src, off, .. } = insn
            && op.fetches()
        {
            let slot = off.div_euclid(8) * 8;
            let xor = Insn::Atomic {
                size: MemSize::Dw,
                op: AtomicOp::Xor,
                dst: Reg::R10,
                src,
                off: slot,
            };
            out.extend([xor, xor]);
        }
        out.push(insn);
        if matches!(insn, Insn::Atomic { size: MemSize::W, op: AtomicOp::Cmpxchg, .. }) {
            out.push(Insn::Alu {
                width: Width::W64,
                op: AluOp::Or,
                dst: Reg::R0,
                src: Operand::Imm(0),
            });
        }
    }
    Node::Ops(out)
}

/// Straight-line code and forward conditional skips.
fn leaf() -> BoxedStrategy<Node> {
    prop_oneof![
        16 => op().prop_map(|i| ops(vec![i])),
        1 => sdiv_edge().prop_map(ops),
        1 => cmpxchg_hit().prop_map(ops),
        3 => (cond(), 0usize..6).prop_map(|(cond, skip)| Node::If { setup: vec![], cond, skip }),
        2 => (boundary_cond(), 0usize..6)
            .prop_map(|((setup, cond), skip)| Node::If { setup, cond, skip }),
    ]
    .boxed()
}

/// One arm of an if/else diamond.
fn arm() -> impl Strategy<Value = Vec<Node>> {
    prop::collection::vec(leaf(), 0..5)
}

/// Leaves and if/else diamonds of leaves.
fn inner() -> BoxedStrategy<Node> {
    prop_oneof![
        12 => leaf(),
        1 => (cond(), any::<bool>(), arm(), arm())
            .prop_map(|(cond, long, then, els)| Node::IfElse { cond, long, then, els }),
    ]
    .boxed()
}

/// Top-level nodes: the above plus bounded loops (not nested).
fn top() -> BoxedStrategy<Node> {
    prop_oneof![
        15 => inner(),
        1 => ((1u8..=9), 1u8..=4, prop::collection::vec(inner(), 1..8)).prop_map(
            |(counter, trips, body)| Node::Loop {
                counter: Reg::new(counter).expect("register"),
                trips,
                body,
            },
        ),
    ]
    .boxed()
}

/// Random valid programs (see the crate documentation), of about 60 to 200 slots.
pub fn program() -> impl Strategy<Value = GenProgram> {
    let regs = proptest::array::uniform10(reg_init());
    let stack = proptest::array::uniform8(prop_oneof![
        reg().prop_map(Operand::Reg),
        imm32().prop_map(Operand::Imm),
    ]);
    (regs, stack, prop::collection::vec(top(), 2..32)).prop_map(|(regs, stack, nodes)| {
        let mut body = prologue(&regs, &stack);
        lower(&nodes, &[], &mut body);
        body.extend(digest());
        GenProgram { body }
    })
}

pub mod verifier_gen;

#[cfg(test)]
mod tests;
