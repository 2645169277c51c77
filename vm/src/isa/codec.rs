//! Decoding raw slots into [`Insn`] (rejecting every reserved encoding) and encoding back.

use super::insn::{ByteOrder, Insn, Operand, RawInsn, Reg, Width};
use super::tables::*;

/// An instruction field, as named in decode errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    /// The opcode byte.
    Opcode,
    /// The destination register field.
    Dst,
    /// The source register field.
    Src,
    /// The 16-bit offset.
    Off,
    /// The 32-bit immediate.
    Imm,
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Field::Opcode => "opcode",
            Field::Dst => "dst_reg",
            Field::Src => "src_reg",
            Field::Off => "off",
            Field::Imm => "imm",
        })
    }
}

/// What is wrong with an encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeErrorKind {
    /// The opcode byte names no instruction.
    #[error("unknown opcode {code:#04x}")]
    UnknownOpcode {
        /// The opcode byte.
        code: u8,
    },
    /// A register field holds a number above 10.
    #[error("invalid register r{reg} in {field}")]
    InvalidRegister {
        /// Which field.
        field: Field,
        /// The register number.
        reg: u8,
    },
    /// A field that this opcode reserves is not zero, or holds a value it does not define.
    #[error("{field} = {value} is reserved for opcode {code:#04x}")]
    ReservedField {
        /// The opcode byte.
        code: u8,
        /// Which field.
        field: Field,
        /// Its value.
        value: i64,
    },
    /// A 64-bit immediate load is missing its second slot.
    #[error("ld_imm64 at the end of the program has no second slot")]
    TruncatedLdImm64,
    /// The second slot of a 64-bit immediate load is not all zero but its `imm`.
    #[error("second slot of ld_imm64 has {field} = {value}, must be 0")]
    BadLdImm64Tail {
        /// Which field.
        field: Field,
        /// Its value.
        value: i64,
    },
    /// The index is past the last slot.
    #[error("no instruction here: the program has {len} slots")]
    PastEnd {
        /// The program's slot count.
        len: usize,
    },
    /// The byte length is not a multiple of eight.
    #[error("program length leaves {len} trailing bytes (not a multiple of 8)")]
    TrailingBytes {
        /// The bytes left over.
        len: usize,
    },
}

/// A malformed instruction: what is wrong, and at which slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("instruction {index}: {kind}")]
pub struct DecodeError {
    /// Slot index of the instruction.
    pub index: usize,
    /// What is wrong.
    pub kind: DecodeErrorKind,
}

/// Shorthand for a field check failure.
fn reserved(code: u8, field: Field, value: impl Into<i64>) -> DecodeErrorKind {
    DecodeErrorKind::ReservedField { code, field, value: value.into() }
}

fn zero(code: u8, field: Field, value: impl Into<i64> + Copy) -> Result<(), DecodeErrorKind> {
    let v: i64 = value.into();
    if v == 0 { Ok(()) } else { Err(reserved(code, field, v)) }
}

fn reg(field: Field, n: u8) -> Result<Reg, DecodeErrorKind> {
    Reg::new(n).ok_or(DecodeErrorKind::InvalidRegister { field, reg: n })
}

/// Decodes the instruction starting at `slots[index]`.
pub fn decode_at(slots: &[RawInsn], index: usize) -> Result<Insn, DecodeError> {
    let Some(&raw) = slots.get(index) else {
        return Err(DecodeError { index, kind: DecodeErrorKind::PastEnd { len: slots.len() } });
    };
    decode_one(raw, slots.get(index + 1).copied()).map_err(|kind| DecodeError { index, kind })
}

/// Decodes a whole program into instructions.
pub fn decode_program(slots: &[RawInsn]) -> Result<Vec<Insn>, DecodeError> {
    let mut out = Vec::with_capacity(slots.len());
    let mut i = 0;
    while i < slots.len() {
        let insn = decode_at(slots, i)?;
        i += insn.slots();
        out.push(insn);
    }
    Ok(out)
}

/// Decodes a program from its little-endian bytes.
pub fn decode_bytes(bytes: &[u8]) -> Result<Vec<Insn>, DecodeError> {
    decode_program(&RawInsn::parse_all(bytes)?)
}

/// Decodes one instruction; `next` is the following slot, needed by LD_IMM64.
///
/// Two rules are stricter than the kernel's, so that every accepted encoding prints and
/// assembles back to itself: `exit` must have `off == 0`, and `ld_imm64` with the `func`
/// pseudo source must have a zero second `imm`.
pub fn decode_one(raw: RawInsn, next: Option<RawInsn>) -> Result<Insn, DecodeErrorKind> {
    let code = raw.code;
    match Class::of(code) {
        Class::Alu | Class::Alu64 => decode_alu(raw),
        Class::Jmp | Class::Jmp32 => decode_jmp(raw),
        Class::Ld => decode_ld(raw, next),
        Class::Ldx => {
            let mode = code & 0xe0;
            let size = mem_size(code);
            let signed = match mode {
                MODE_MEM => false,
                MODE_MEMSX if size != MemSize::Dw => true,
                _ => return Err(DecodeErrorKind::UnknownOpcode { code }),
            };
            zero(code, Field::Imm, raw.imm)?;
            Ok(Insn::Load {
                size,
                signed,
                dst: reg(Field::Dst, raw.dst)?,
                src: reg(Field::Src, raw.src)?,
                off: raw.off,
            })
        }
        Class::St => {
            if code & 0xe0 != MODE_MEM {
                return Err(DecodeErrorKind::UnknownOpcode { code });
            }
            zero(code, Field::Src, raw.src)?;
            Ok(Insn::Store {
                size: mem_size(code),
                dst: reg(Field::Dst, raw.dst)?,
                off: raw.off,
                src: Operand::Imm(raw.imm),
            })
        }
        Class::Stx => {
            let size = mem_size(code);
            let dst = reg(Field::Dst, raw.dst)?;
            let src = reg(Field::Src, raw.src)?;
            match code & 0xe0 {
                MODE_MEM => {
                    zero(code, Field::Imm, raw.imm)?;
                    Ok(Insn::Store { size, dst, off: raw.off, src: Operand::Reg(src) })
                }
                MODE_ATOMIC if matches!(size, MemSize::W | MemSize::Dw) => {
                    let op = AtomicOp::from_code(raw.imm, 0)
                        .ok_or_else(|| reserved(code, Field::Imm, raw.imm))?;
                    Ok(Insn::Atomic { size, op, dst, src, off: raw.off })
                }
                _ => Err(DecodeErrorKind::UnknownOpcode { code }),
            }
        }
    }
}

fn mem_size(code: u8) -> MemSize {
    match code & 0x18 {
        0x00 => MemSize::W,
        0x08 => MemSize::H,
        0x10 => MemSize::B,
        _ => MemSize::Dw,
    }
}

fn decode_alu(raw: RawInsn) -> Result<Insn, DecodeErrorKind> {
    let code = raw.code;
    let width = if Class::of(code) == Class::Alu64 { Width::W64 } else { Width::W32 };
    let op_bits = code & 0xf0;
    let x = code & SRC_REG != 0;
    let dst = reg(Field::Dst, raw.dst)?;
    match op_bits {
        OP_NEG => {
            if x {
                return Err(DecodeErrorKind::UnknownOpcode { code });
            }
            zero(code, Field::Src, raw.src)?;
            zero(code, Field::Off, raw.off)?;
            zero(code, Field::Imm, raw.imm)?;
            Ok(Insn::Neg { width, dst })
        }
        OP_END => {
            let order = match (width, x) {
                (Width::W32, false) => ByteOrder::Le,
                (Width::W32, true) => ByteOrder::Be,
                (Width::W64, false) => ByteOrder::Swap,
                (Width::W64, true) => return Err(DecodeErrorKind::UnknownOpcode { code }),
            };
            zero(code, Field::Src, raw.src)?;
            zero(code, Field::Off, raw.off)?;
            if !matches!(raw.imm, 16 | 32 | 64) {
                return Err(reserved(code, Field::Imm, raw.imm));
            }
            Ok(Insn::Endian { order, bits: raw.imm as u8, dst })
        }
        // BPF_ADDR_SPACE_CAST: the verifier takes casts between address spaces 0 and 1 only.
        0xb0 if width == Width::W64 && x && raw.off == 1 => {
            let (dst_as, src_as) = ((raw.imm as u32 >> 16) as u16, raw.imm as u16);
            if !matches!((dst_as, src_as), (0, 1) | (1, 0)) {
                return Err(reserved(code, Field::Imm, raw.imm));
            }
            Ok(Insn::AddrSpaceCast { dst, src: reg(Field::Src, raw.src)?, dst_as, src_as })
        }
        _ => {
            // Offsets select signed division/modulo and MOVSX; everything else needs off = 0.
            let op =
                AluOp::from_code(op_bits, i32::from(raw.off)).ok_or_else(
                    || match AluOp::from_code(op_bits, 0) {
                        Some(_) => reserved(code, Field::Off, raw.off),
                        None => DecodeErrorKind::UnknownOpcode { code },
                    },
                )?;
            if op.is_movsx() && (!x || (width == Width::W32 && op == AluOp::Movsx32)) {
                return Err(reserved(code, Field::Off, raw.off));
            }
            let src = if x {
                zero(code, Field::Imm, raw.imm)?;
                Operand::Reg(reg(Field::Src, raw.src)?)
            } else {
                zero(code, Field::Src, raw.src)?;
                Operand::Imm(raw.imm)
            };
            Ok(Insn::Alu { width, op, dst, src })
        }
    }
}

fn decode_jmp(raw: RawInsn) -> Result<Insn, DecodeErrorKind> {
    let code = raw.code;
    let width = if Class::of(code) == Class::Jmp { Width::W64 } else { Width::W32 };
    let op_bits = code & 0xf0;
    let x = code & SRC_REG != 0;
    let unknown = DecodeErrorKind::UnknownOpcode { code };
    match op_bits {
        OP_JA => {
            if x {
                return Err(unknown);
            }
            zero(code, Field::Dst, raw.dst)?;
            zero(code, Field::Src, raw.src)?;
            match width {
                Width::W64 => {
                    zero(code, Field::Imm, raw.imm)?;
                    Ok(Insn::Ja { off: raw.off })
                }
                Width::W32 => {
                    zero(code, Field::Off, raw.off)?;
                    Ok(Insn::JaLong { imm: raw.imm })
                }
            }
        }
        OP_CALL => {
            if x || width == Width::W32 {
                return Err(unknown);
            }
            zero(code, Field::Dst, raw.dst)?;
            let kind = CallKind::from_code(raw.src, 0)
                .ok_or_else(|| reserved(code, Field::Src, raw.src))?;
            if kind != CallKind::Kfunc {
                zero(code, Field::Off, raw.off)?;
            }
            Ok(Insn::Call { kind, imm: raw.imm, off: raw.off })
        }
        OP_EXIT => {
            if x || width == Width::W32 {
                return Err(unknown);
            }
            zero(code, Field::Dst, raw.dst)?;
            zero(code, Field::Src, raw.src)?;
            zero(code, Field::Off, raw.off)?;
            zero(code, Field::Imm, raw.imm)?;
            Ok(Insn::Exit)
        }
        _ => {
            let cond = JmpCond::from_code(op_bits, 0).ok_or(unknown)?;
            let dst = reg(Field::Dst, raw.dst)?;
            let src = if x {
                zero(code, Field::Imm, raw.imm)?;
                Operand::Reg(reg(Field::Src, raw.src)?)
            } else {
                zero(code, Field::Src, raw.src)?;
                Operand::Imm(raw.imm)
            };
            Ok(Insn::Jump { width, cond, dst, src, off: raw.off })
        }
    }
}

fn decode_ld(raw: RawInsn, next: Option<RawInsn>) -> Result<Insn, DecodeErrorKind> {
    let code = raw.code;
    let size = mem_size(code);
    match code & 0xe0 {
        MODE_IMM if size == MemSize::Dw => {
            let dst = reg(Field::Dst, raw.dst)?;
            let src = PseudoSrc::from_code(raw.src, 0)
                .ok_or_else(|| reserved(code, Field::Src, raw.src))?;
            zero(code, Field::Off, raw.off)?;
            let next = next.ok_or(DecodeErrorKind::TruncatedLdImm64)?;
            let tail = |field, value: i64| {
                if value == 0 {
                    Ok(())
                } else {
                    Err(DecodeErrorKind::BadLdImm64Tail { field, value })
                }
            };
            tail(Field::Opcode, next.code.into())?;
            tail(Field::Dst, next.dst.into())?;
            tail(Field::Src, next.src.into())?;
            tail(Field::Off, next.off.into())?;
            if matches!(src, PseudoSrc::MapFd | PseudoSrc::MapIdx | PseudoSrc::Func) {
                tail(Field::Imm, next.imm.into())?;
            }
            Ok(Insn::LdImm64 { dst, src, imm: raw.imm, next_imm: next.imm })
        }
        MODE_ABS | MODE_IND if size != MemSize::Dw => {
            zero(code, Field::Dst, raw.dst)?;
            zero(code, Field::Off, raw.off)?;
            if code & 0xe0 == MODE_ABS {
                zero(code, Field::Src, raw.src)?;
                Ok(Insn::LdAbs { size, imm: raw.imm })
            } else {
                Ok(Insn::LdInd { size, src: reg(Field::Src, raw.src)?, imm: raw.imm })
            }
        }
        _ => Err(DecodeErrorKind::UnknownOpcode { code }),
    }
}

impl Insn {
    /// Encodes into one slot, or two for `LdImm64` (the second is `Some`).
    pub fn encode(&self) -> (RawInsn, Option<RawInsn>) {
        let alu_class = |w: Width| match w {
            Width::W32 => Class::Alu as u8,
            Width::W64 => Class::Alu64 as u8,
        };
        let jmp_class = |w: Width| match w {
            Width::W32 => Class::Jmp32 as u8,
            Width::W64 => Class::Jmp as u8,
        };
        let operand = |src: Operand| match src {
            Operand::Reg(r) => (SRC_REG, r.num(), 0),
            Operand::Imm(i) => (0, 0, i),
        };
        let one = |code: u8, dst: u8, src: u8, off: i16, imm: i32| {
            (RawInsn { code, dst, src, off, imm }, None)
        };
        match *self {
            Insn::Alu { width, op, dst, src } => {
                let (x, s, imm) = operand(src);
                one(alu_class(width) | op.code() | x, dst.num(), s, op.extra() as i16, imm)
            }
            Insn::Neg { width, dst } => one(alu_class(width) | OP_NEG, dst.num(), 0, 0, 0),
            Insn::AddrSpaceCast { dst, src, dst_as, src_as } => {
                let imm = (u32::from(dst_as) << 16 | u32::from(src_as)) as i32;
                one(Class::Alu64 as u8 | AluOp::Mov.code() | SRC_REG, dst.num(), src.num(), 1, imm)
            }
            Insn::Endian { order, bits, dst } => {
                let (class, x) = match order {
                    ByteOrder::Le => (Class::Alu as u8, 0),
                    ByteOrder::Be => (Class::Alu as u8, SRC_REG),
                    ByteOrder::Swap => (Class::Alu64 as u8, 0),
                };
                one(class | OP_END | x, dst.num(), 0, 0, i32::from(bits))
            }
            Insn::Jump { width, cond, dst, src, off } => {
                let (x, s, imm) = operand(src);
                one(jmp_class(width) | cond.code() | x, dst.num(), s, off, imm)
            }
            Insn::Ja { off } => one(Class::Jmp as u8 | OP_JA, 0, 0, off, 0),
            Insn::JaLong { imm } => one(Class::Jmp32 as u8 | OP_JA, 0, 0, 0, imm),
            Insn::Call { kind, imm, off } => {
                one(Class::Jmp as u8 | OP_CALL, 0, kind.code(), off, imm)
            }
            Insn::Exit => one(Class::Jmp as u8 | OP_EXIT, 0, 0, 0, 0),
            Insn::LdImm64 { dst, src, imm, next_imm } => (
                RawInsn { code: 0x18, dst: dst.num(), src: src.code(), off: 0, imm },
                Some(RawInsn { imm: next_imm, ..RawInsn::default() }),
            ),
            Insn::LdAbs { size, imm } => {
                one(Class::Ld as u8 | MODE_ABS | size.code(), 0, 0, 0, imm)
            }
            Insn::LdInd { size, src, imm } => {
                one(Class::Ld as u8 | MODE_IND | size.code(), 0, src.num(), 0, imm)
            }
            Insn::Load { size, signed, dst, src, off } => {
                let mode = if signed { MODE_MEMSX } else { MODE_MEM };
                one(Class::Ldx as u8 | mode | size.code(), dst.num(), src.num(), off, 0)
            }
            Insn::Store { size, dst, off, src: Operand::Reg(src) } => {
                one(Class::Stx as u8 | MODE_MEM | size.code(), dst.num(), src.num(), off, 0)
            }
            Insn::Store { size, dst, off, src: Operand::Imm(imm) } => {
                one(Class::St as u8 | MODE_MEM | size.code(), dst.num(), 0, off, imm)
            }
            Insn::Atomic { size, op, dst, src, off } => one(
                Class::Stx as u8 | MODE_ATOMIC | size.code(),
                dst.num(),
                src.num(),
                off,
                op.code(),
            ),
        }
    }

    /// Appends this instruction's slots to `out`.
    pub fn encode_into(&self, out: &mut Vec<RawInsn>) {
        let (a, b) = self.encode();
        out.push(a);
        out.extend(b);
    }
}

/// Encodes instructions into their slots.
pub fn encode_program(insns: &[Insn]) -> Vec<RawInsn> {
    let mut out = Vec::with_capacity(insns.len());
    for insn in insns {
        insn.encode_into(&mut out);
    }
    out
}

/// Encodes instructions into little-endian bytes.
pub fn encode_bytes(insns: &[Insn]) -> Vec<u8> {
    encode_program(insns).into_iter().flat_map(RawInsn::to_bytes).collect()
}
