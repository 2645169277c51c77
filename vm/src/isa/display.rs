//! Assembly text of an instruction, in the kernel / bpftool / llvm-objdump syntax.

use std::fmt;

use super::insn::{Insn, Operand, Reg, Width};
use super::tables::{AtomicOp, CallKind, MemSize, PseudoSrc};

impl fmt::Display for Reg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "r{}", self.num())
    }
}

/// A register shown with its width prefix (`r3` or `w3`).
struct WReg(Width, Reg);

impl fmt::Display for WReg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.0.prefix(), self.1.num())
    }
}

/// An operand shown for a given width.
struct WOperand(Width, Operand);

impl fmt::Display for WOperand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.1 {
            Operand::Reg(r) => WReg(self.0, r).fmt(f),
            Operand::Imm(i) => write!(f, "{i}"),
        }
    }
}

/// A memory operand `(rN + off)` / `(rN - off)`.
struct Addr(Reg, i16);

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let off = i32::from(self.1);
        if off < 0 {
            write!(f, "({} - {})", self.0, -off)
        } else {
            write!(f, "({} + {})", self.0, off)
        }
    }
}

/// A signed slot offset `+N` / `-N`.
struct Rel(i64);

impl fmt::Display for Rel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:+}", self.0)
    }
}

impl fmt::Display for Insn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Insn::Alu { width, op, dst, src } if op.is_movsx() => {
                write!(f, "{} = {}{}", WReg(width, dst), op.symbol(), WOperand(width, src))
            }
            Insn::Alu { width, op, dst, src } => {
                write!(f, "{} {} {}", WReg(width, dst), op.symbol(), WOperand(width, src))
            }
            Insn::Neg { width, dst } => write!(f, "{0} = -{0}", WReg(width, dst)),
            Insn::AddrSpaceCast { dst, src, dst_as, src_as } => {
                write!(f, "{dst} = addr_space_cast({src}, {dst_as}, {src_as})")
            }
            Insn::Endian { order, bits, dst } => write!(f, "{dst} = {}{bits} {dst}", order.name()),
            Insn::Jump { width, cond, dst, src, off } => write!(
                f,
                "if {} {} {} goto {}",
                WReg(width, dst),
                cond.symbol(),
                WOperand(width, src),
                Rel(off.into())
            ),
            Insn::Ja { off } => write!(f, "goto {}", Rel(off.into())),
            Insn::JaLong { imm } => write!(f, "gotol {}", Rel(imm.into())),
            Insn::Call { kind: CallKind::Helper, imm, .. } => write!(f, "call {imm}"),
            Insn::Call { kind: CallKind::Local, imm, .. } => {
                write!(f, "call pc{}", Rel(imm.into()))
            }
            Insn::Call { kind: CallKind::Kfunc, imm, off: 0 } => write!(f, "call kfunc {imm}"),
            Insn::Call { kind: CallKind::Kfunc, imm, off } => write!(f, "call kfunc {imm}, {off}"),
            Insn::Exit => f.write_str("exit"),
            Insn::LdImm64 { dst, src, imm, next_imm } => match src {
                PseudoSrc::Imm => write!(f, "{dst} = {:#x} ll", Insn::imm64(imm, next_imm)),
                PseudoSrc::MapFd => write!(f, "{dst} = map[fd:{imm}] ll"),
                PseudoSrc::MapIdx => write!(f, "{dst} = map[idx:{imm}] ll"),
                PseudoSrc::MapValue => {
                    write!(f, "{dst} = map[fd:{imm}][0]{} ll", Rel(next_imm.into()))
                }
                PseudoSrc::MapIdxValue => {
                    write!(f, "{dst} = map[idx:{imm}][0]{} ll", Rel(next_imm.into()))
                }
                PseudoSrc::BtfId if next_imm == 0 => write!(f, "{dst} = btf_id {imm} ll"),
                PseudoSrc::BtfId => write!(f, "{dst} = btf_id {imm}, {next_imm} ll"),
                PseudoSrc::Func => write!(f, "{dst} = func pc{} ll", Rel(imm.into())),
            },
            Insn::LdAbs { size, imm } => write!(f, "r0 = *({} *)skb[{imm}]", size.symbol()),
            Insn::LdInd { size, src, imm } => {
                write!(f, "r0 = *({} *)skb[{src} + {imm}]", size.symbol())
            }
            Insn::Load { size, signed, dst, src, off } => {
                let ty = if signed { size.signed_name() } else { size.symbol() };
                write!(f, "{dst} = *({ty} *){}", Addr(src, off))
            }
            Insn::Store { size, dst, off, src } => {
                write!(
                    f,
                    "*({} *){} = {}",
                    size.symbol(),
                    Addr(dst, off),
                    WOperand(Width::W64, src)
                )
            }
            Insn::Atomic { size, op, dst, src, off } => {
                let ptr = Addr(dst, off);
                let bits = if size == MemSize::Dw { "64" } else { "" };
                let ty = size.symbol();
                match op {
                    AtomicOp::Add | AtomicOp::Or | AtomicOp::And | AtomicOp::Xor => {
                        write!(f, "lock *({ty} *){ptr} {} {src}", op.symbol())
                    }
                    AtomicOp::Cmpxchg => {
                        write!(f, "r0 = atomic{bits}_cmpxchg(({ty} *){ptr}, r0, {src})")
                    }
                    _ => write!(f, "{src} = atomic{bits}_{}(({ty} *){ptr}, {src})", op.symbol()),
                }
            }
        }
    }
}
