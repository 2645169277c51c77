//! The typed instruction and its raw 8-byte encoding.

use super::tables::{AluOp, AtomicOp, CallKind, JmpCond, MemSize, PseudoSrc};

/// One of the eleven registers r0..r10.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reg(u8);

impl Reg {
    /// Return value and helper result.
    pub const R0: Reg = Reg(0);
    /// First argument; the context pointer at program entry.
    pub const R1: Reg = Reg(1);
    /// Second argument.
    pub const R2: Reg = Reg(2);
    /// Third argument.
    pub const R3: Reg = Reg(3);
    /// Fourth argument.
    pub const R4: Reg = Reg(4);
    /// Fifth argument.
    pub const R5: Reg = Reg(5);
    /// Callee-saved.
    pub const R6: Reg = Reg(6);
    /// Callee-saved.
    pub const R7: Reg = Reg(7);
    /// Callee-saved.
    pub const R8: Reg = Reg(8);
    /// Callee-saved.
    pub const R9: Reg = Reg(9);
    /// Read-only frame pointer.
    pub const R10: Reg = Reg(10);
    /// Number of registers.
    pub const COUNT: usize = 11;

    /// The register numbered `n`, if `n <= 10`.
    pub const fn new(n: u8) -> Option<Reg> {
        if n <= 10 { Some(Reg(n)) } else { None }
    }

    /// The register number.
    pub const fn num(self) -> u8 {
        self.0
    }

    /// The register number as an index.
    pub const fn idx(self) -> usize {
        self.0 as usize
    }
}

/// Operand width of an ALU operation or comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Width {
    /// 32-bit (`w` registers), result zero-extended.
    W32,
    /// 64-bit (`r` registers).
    W64,
}

impl Width {
    /// The register prefix in assembly text.
    pub const fn prefix(self) -> char {
        match self {
            Width::W32 => 'w',
            Width::W64 => 'r',
        }
    }
}

/// The source operand of an ALU operation, jump or store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operand {
    /// A register (BPF_X).
    Reg(Reg),
    /// The 32-bit immediate (BPF_K), sign-extended for 64-bit operations.
    Imm(i32),
}

/// Which byte-order conversion an END instruction does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ByteOrder {
    /// `le16/32/64`: to little endian (truncating on little-endian hosts).
    Le,
    /// `be16/32/64`: to big endian.
    Be,
    /// `bswap16/32/64`: unconditional swap (ALU64 class).
    Swap,
}

impl ByteOrder {
    /// The mnemonic without the width (`le`, `be`, `bswap`).
    pub const fn name(self) -> &'static str {
        match self {
            ByteOrder::Le => "le",
            ByteOrder::Be => "be",
            ByteOrder::Swap => "bswap",
        }
    }
}

/// A decoded eBPF instruction (RFC 9669). `LdImm64` occupies two 8-byte slots, every other
/// variant one; jump and call offsets count slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Insn {
    /// `dst op= src` for the ALU and ALU64 classes.
    Alu {
        /// 32- or 64-bit operation.
        width: Width,
        /// The operation.
        op: AluOp,
        /// Destination (and first operand).
        dst: Reg,
        /// Second operand.
        src: Operand,
    },
    /// `dst = -dst`.
    Neg {
        /// 32- or 64-bit operation.
        width: Width,
        /// Operand and result.
        dst: Reg,
    },
    /// Byte swap / byte-order conversion of the low `bits` of `dst`.
    Endian {
        /// Conversion kind.
        order: ByteOrder,
        /// 16, 32 or 64.
        bits: u8,
        /// Operand and result.
        dst: Reg,
    },
    /// `dst = addr_space_cast(src, dst_as, src_as)`: ALU64 MOV from a register with offset 1
    /// (`BPF_ADDR_SPACE_CAST`), converting a pointer between address spaces (arena pointers
    /// live in address space 1). The immediate holds `dst_as << 16 | src_as`.
    AddrSpaceCast {
        /// Destination.
        dst: Reg,
        /// The pointer converted.
        src: Reg,
        /// The address space converted to.
        dst_as: u16,
        /// The address space converted from.
        src_as: u16,
    },
    /// Conditional jump: `if dst cond src goto +off`.
    Jump {
        /// Comparison width (JMP or JMP32).
        width: Width,
        /// The comparison.
        cond: JmpCond,
        /// Left operand.
        dst: Reg,
        /// Right operand.
        src: Operand,
        /// Slots to skip when taken.
        off: i16,
    },
    /// Unconditional jump with a 16-bit offset (`goto +off`).
    Ja {
        /// Slots to skip.
        off: i16,
    },
    /// Unconditional jump with a 32-bit offset (`gotol +imm`, JMP32 class).
    JaLong {
        /// Slots to skip.
        imm: i32,
    },
    /// Call a helper, a local function or a kernel function.
    Call {
        /// What `imm` names.
        kind: CallKind,
        /// Helper id, pc-relative slot offset, or BTF id.
        imm: i32,
        /// Kfunc module BTF fd-array index (0 otherwise).
        off: i16,
    },
    /// Return from the current function, r0 holding the result.
    Exit,
    /// `dst = imm64` (two slots), with a pseudo source the loader or kernel resolves.
    LdImm64 {
        /// Destination.
        dst: Reg,
        /// What the immediate means.
        src: PseudoSrc,
        /// First slot's `imm` (low half for plain constants).
        imm: i32,
        /// Second slot's `imm` (high half, or the map value offset).
        next_imm: i32,
    },
    /// Legacy packet load `r0 = ntoh(*(size *)skb[imm])`.
    LdAbs {
        /// Access width (B, H or W).
        size: MemSize,
        /// Packet offset.
        imm: i32,
    },
    /// Legacy packet load `r0 = ntoh(*(size *)skb[src + imm])`.
    LdInd {
        /// Access width (B, H or W).
        size: MemSize,
        /// Register holding the base offset.
        src: Reg,
        /// Added to the base offset.
        imm: i32,
    },
    /// `dst = *(size *)(src + off)`, sign-extending when `signed` (LDSX).
    Load {
        /// Access width.
        size: MemSize,
        /// Sign-extend the loaded value (BPF_MEMSX).
        signed: bool,
        /// Destination.
        dst: Reg,
        /// Base address register.
        src: Reg,
        /// Byte offset.
        off: i16,
    },
    /// `*(size *)(dst + off) = src` (STX for a register, ST for an immediate).
    Store {
        /// Access width.
        size: MemSize,
        /// Base address register.
        dst: Reg,
        /// Byte offset.
        off: i16,
        /// Value stored.
        src: Operand,
    },
    /// Atomic read-modify-write of `*(size *)(dst + off)` with `src`.
    Atomic {
        /// W or DW.
        size: MemSize,
        /// The operation.
        op: AtomicOp,
        /// Base address register.
        dst: Reg,
        /// Operand (and fetch destination).
        src: Reg,
        /// Byte offset.
        off: i16,
    },
}

impl Insn {
    /// The number of 8-byte slots this instruction occupies.
    pub const fn slots(&self) -> usize {
        match self {
            Insn::LdImm64 { .. } => 2,
            _ => 1,
        }
    }

    /// The full 64-bit immediate of a plain `LdImm64` (both halves joined).
    pub const fn imm64(imm: i32, next_imm: i32) -> u64 {
        (imm as u32 as u64) | ((next_imm as u32 as u64) << 32)
    }

    /// A plain 64-bit constant load.
    pub const fn ld_imm64(dst: Reg, value: u64) -> Insn {
        Insn::LdImm64 {
            dst,
            src: PseudoSrc::Imm,
            imm: value as u32 as i32,
            next_imm: (value >> 32) as u32 as i32,
        }
    }

    /// The slot offset of a taken branch, relative to the next slot, if this is a jump or a
    /// local call.
    pub const fn branch_offset(&self) -> Option<i64> {
        match *self {
            Insn::Jump { off, .. } | Insn::Ja { off } => Some(off as i64),
            Insn::JaLong { imm } => Some(imm as i64),
            Insn::Call { kind: CallKind::Local, imm, .. } => Some(imm as i64),
            Insn::LdImm64 { src: PseudoSrc::Func, imm, .. } => Some(imm as i64),
            _ => None,
        }
    }
}

/// One 8-byte instruction slot as laid out in memory (little-endian).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct RawInsn {
    /// The opcode byte.
    pub code: u8,
    /// Destination register field (low nibble).
    pub dst: u8,
    /// Source register field (high nibble).
    pub src: u8,
    /// Signed 16-bit offset.
    pub off: i16,
    /// Signed 32-bit immediate.
    pub imm: i32,
}

impl RawInsn {
    /// Size of a slot in bytes.
    pub const SIZE: usize = 8;

    /// Parses one little-endian slot.
    pub const fn from_bytes(b: [u8; 8]) -> RawInsn {
        RawInsn {
            code: b[0],
            dst: b[1] & 0x0f,
            src: b[1] >> 4,
            off: i16::from_le_bytes([b[2], b[3]]),
            imm: i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    /// The little-endian bytes of this slot.
    pub const fn to_bytes(self) -> [u8; 8] {
        let off = self.off.to_le_bytes();
        let imm = self.imm.to_le_bytes();
        [
            self.code,
            (self.dst & 0x0f) | (self.src << 4),
            off[0],
            off[1],
            imm[0],
            imm[1],
            imm[2],
            imm[3],
        ]
    }

    /// Splits a byte string into slots; the length must be a multiple of 8.
    pub fn parse_all(bytes: &[u8]) -> Result<Vec<RawInsn>, super::DecodeError> {
        if !bytes.len().is_multiple_of(Self::SIZE) {
            return Err(super::DecodeError {
                index: bytes.len() / Self::SIZE,
                kind: super::DecodeErrorKind::TrailingBytes { len: bytes.len() % Self::SIZE },
            });
        }
        Ok(bytes
            .chunks_exact(Self::SIZE)
            .map(|c| {
                let mut b = [0u8; 8];
                b.copy_from_slice(c);
                RawInsn::from_bytes(b)
            })
            .collect())
    }
}
