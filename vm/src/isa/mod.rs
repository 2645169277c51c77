//! The eBPF instruction set (RFC 9669): typed instructions, their encoding and their text.

mod codec;
mod display;
mod insn;
mod tables;

pub use codec::{
    DecodeError, DecodeErrorKind, Field, decode_at, decode_bytes, decode_one, decode_program,
    encode_bytes, encode_program,
};
pub use insn::{ByteOrder, Insn, Operand, RawInsn, Reg, Width};
pub use tables::{AluOp, AtomicOp, CallKind, Class, JmpCond, MemSize, PseudoSrc};

/// Opcode field constants for code that works on raw slots.
pub mod consts {
    pub use super::tables::{
        MODE_ABS, MODE_ATOMIC, MODE_IMM, MODE_IND, MODE_MEM, MODE_MEMSX, OP_CALL, OP_END, OP_EXIT,
        OP_JA, OP_NEG, SRC_REG,
    };
}

#[cfg(test)]
mod tests;
