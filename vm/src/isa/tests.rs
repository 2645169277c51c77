//! Unit tests of the codec (every family round-trips, every reserved encoding is rejected with
//! the precise error) and of the disassembly text.

use std::collections::BTreeSet;

use super::*;

/// Register `n`.
fn r(n: u8) -> Reg {
    Reg::new(n).expect("a register number")
}

/// A raw slot.
const fn raw(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> RawInsn {
    RawInsn { code, dst, src, off, imm }
}

/// `r0 = 0`, a valid one-slot instruction.
const MOV: RawInsn = raw(0xb7, 0, 0, 0, 0);
/// The second slot of an `ld_imm64` with a zero high half.
const TAIL: RawInsn = raw(0, 0, 0, 0, 0);

/// `ReservedField` shorthand.
fn reserved(code: u8, field: Field, value: i64) -> DecodeErrorKind {
    DecodeErrorKind::ReservedField { code, field, value }
}

/// `UnknownOpcode` shorthand.
fn unknown(code: u8) -> DecodeErrorKind {
    DecodeErrorKind::UnknownOpcode { code }
}

/// `InvalidRegister` shorthand.
fn bad_reg(field: Field, reg: u8) -> DecodeErrorKind {
    DecodeErrorKind::InvalidRegister { field, reg }
}

/// Checks that `slots` is rejected with `kind`, both as the first instruction and after a
/// three-slot prefix (so the error must name index 3).
#[track_caller]
fn rejects(slots: &[RawInsn], kind: DecodeErrorKind) {
    assert_eq!(decode_program(slots), Err(DecodeError { index: 0, kind }), "{slots:?}");
    let mut prefixed = vec![MOV, raw(0x18, 1, 0, 0, 7), TAIL];
    prefixed.extend_from_slice(slots);
    prefixed.push(raw(0x95, 0, 0, 0, 0));
    assert_eq!(decode_program(&prefixed), Err(DecodeError { index: 3, kind }), "{slots:?}");
    assert_eq!(decode_at(&prefixed, 3), Err(DecodeError { index: 3, kind }), "{slots:?}");
}

/// One instruction of every table row and variant (with both operand kinds where allowed).
fn every_row() -> Vec<Insn> {
    let mut all = Vec::new();
    let operands = [Operand::Reg(r(3)), Operand::Imm(-7)];
    for width in [Width::W32, Width::W64] {
        for &op in AluOp::ALL {
            if op.is_movsx() {
                if !(op == AluOp::Movsx32 && width == Width::W32) {
                    all.push(Insn::Alu { width, op, dst: r(1), src: Operand::Reg(r(2)) });
                }
            } else {
                for src in operands {
                    all.push(Insn::Alu { width, op, dst: r(1), src });
                }
            }
        }
        all.push(Insn::Neg { width, dst: r(4) });
        if width == Width::W64 {
            all.push(Insn::AddrSpaceCast { dst: r(1), src: r(2), dst_as: 0, src_as: 1 });
            all.push(Insn::AddrSpaceCast { dst: r(3), src: r(4), dst_as: 1, src_as: 0 });
        }
        for &cond in JmpCond::ALL {
            for src in operands {
                all.push(Insn::Jump { width, cond, dst: r(5), src, off: -3 });
            }
        }
    }
    for order in [ByteOrder::Le, ByteOrder::Be, ByteOrder::Swap] {
        for bits in [16, 32, 64] {
            all.push(Insn::Endian { order, bits, dst: r(6) });
        }
    }
    all.extend([Insn::Ja { off: 9 }, Insn::JaLong { imm: -100_000 }, Insn::Exit]);
    for &kind in CallKind::ALL {
        let off = if kind == CallKind::Kfunc { 2 } else { 0 };
        all.push(Insn::Call { kind, imm: 12, off });
    }
    for &src in PseudoSrc::ALL {
        let next_imm = if matches!(src, PseudoSrc::MapFd | PseudoSrc::MapIdx | PseudoSrc::Func) {
            0
        } else {
            9
        };
        all.push(Insn::LdImm64 { dst: r(7), src, imm: -2, next_imm });
    }
    for &size in MemSize::ALL {
        if size != MemSize::Dw {
            all.push(Insn::LdAbs { size, imm: 14 });
            all.push(Insn::LdInd { size, src: r(6), imm: -14 });
            all.push(Insn::Load { size, signed: true, dst: r(0), src: r(1), off: 2 });
        }
        all.push(Insn::Load { size, signed: false, dst: r(0), src: r(1), off: -2 });
        for src in operands {
            all.push(Insn::Store { size, dst: r(10), off: -16, src });
        }
    }
    for size in [MemSize::W, MemSize::Dw] {
        for &op in AtomicOp::ALL {
            all.push(Insn::Atomic { size, op, dst: r(10), src: r(2), off: -8 });
        }
    }
    all
}

#[test]
fn every_row_roundtrips_and_encodes_distinctly() {
    let all = every_row();
    let mut encodings = BTreeSet::new();
    for insn in &all {
        let slots = encode_program(&[*insn]);
        assert_eq!(slots.len(), insn.slots(), "{insn:?}");
        assert_eq!(decode_program(&slots), Ok(vec![*insn]), "{insn:?}");
        let (first, second) = insn.encode();
        assert_eq!(decode_one(first, second), Ok(*insn), "{insn:?}");
        assert_eq!(decode_bytes(&encode_bytes(&[*insn])), Ok(vec![*insn]), "{insn:?}");
        assert!(encodings.insert(encode_bytes(&[*insn])), "two rows encode alike: {insn:?}");
    }
    // A whole program round-trips too, slot indices and all.
    assert_eq!(decode_program(&encode_program(&all)), Ok(all.clone()));
}

#[test]
fn opcodes_outside_the_encoder_are_unknown() {
    // Every opcode the encoder produces decodes (possibly after fixing its other fields); with all
    // other fields zero, every other opcode is `UnknownOpcode`.
    let valid: BTreeSet<u8> = every_row().iter().map(|i| i.encode().0.code).collect();
    assert_eq!(valid.len(), 125, "opcodes of RFC 9669");
    for code in 0..=255u8 {
        let result = decode_one(raw(code, 0, 0, 0, 0), Some(TAIL));
        match result {
            Err(DecodeErrorKind::UnknownOpcode { code: c }) => {
                assert_eq!(c, code);
                assert!(!valid.contains(&code), "{code:#04x} is valid but reported unknown");
            }
            Ok(insn) => {
                assert!(valid.contains(&code), "{code:#04x} decodes but is never encoded");
                assert_eq!(insn.encode().0.code, code);
            }
            // END needs imm 16/32/64.
            Err(e) => {
                assert_eq!(e, reserved(code, Field::Imm, 0), "{code:#04x}");
                assert!(valid.contains(&code));
            }
        }
    }
}

#[test]
fn unknown_opcodes() {
    for code in [
        0x00, 0x08, 0x10, // LD IMM of B/H/W
        0x38, 0x58, // LD_ABS / LD_IND of DW
        0x60, 0x80, // LD MEM / MEMSX
        0x21, 0xc1, 0x99, // LDX ABS, LDX ATOMIC, LDX MEMSX DW
        0x82, 0xc2, // ST MEMSX, ST ATOMIC
        0x03, 0x83, 0xd3, 0xcb, // STX IMM, STX MEMSX, atomic B / H
        0xe4, 0xe7, 0xf4, 0xf7, 0xfc, 0xff, // ALU ops 0xe0 / 0xf0
        0x8c, 0x8f, 0xdf, // NEG with the source bit, BSWAP with the source bit
        0x0d, 0x0e, 0x8d, 0x9d, // JA / gotol / CALL / EXIT with the source bit
        0x86, 0x96, // JMP32 CALL / EXIT
        0xe5, 0xf5, 0xe6, 0xfd, // JMP ops 0xe0 / 0xf0
    ] {
        rejects(&[raw(code, 0, 0, 0, 16), TAIL], unknown(code));
    }
}

#[test]
fn invalid_registers() {
    rejects(&[raw(0x07, 11, 0, 0, 1)], bad_reg(Field::Dst, 11));
    rejects(&[raw(0x0f, 1, 12, 0, 0)], bad_reg(Field::Src, 12));
    rejects(&[raw(0xbc, 13, 2, 8, 0)], bad_reg(Field::Dst, 13));
    rejects(&[raw(0x87, 15, 0, 0, 0)], bad_reg(Field::Dst, 15));
    rejects(&[raw(0xdc, 14, 0, 0, 16)], bad_reg(Field::Dst, 14));
    rejects(&[raw(0x15, 15, 0, 0, 0)], bad_reg(Field::Dst, 15));
    rejects(&[raw(0x2e, 1, 11, 0, 0)], bad_reg(Field::Src, 11));
    rejects(&[raw(0x61, 14, 1, 0, 0)], bad_reg(Field::Dst, 14));
    rejects(&[raw(0x91, 0, 13, 0, 0)], bad_reg(Field::Src, 13));
    rejects(&[raw(0x62, 11, 0, 0, 0)], bad_reg(Field::Dst, 11));
    rejects(&[raw(0x7b, 11, 1, 0, 0)], bad_reg(Field::Dst, 11));
    rejects(&[raw(0x7b, 10, 11, 0, 0)], bad_reg(Field::Src, 11));
    rejects(&[raw(0xdb, 10, 15, 0, 0)], bad_reg(Field::Src, 15));
    rejects(&[raw(0x50, 0, 11, 0, 0)], bad_reg(Field::Src, 11));
    rejects(&[raw(0x18, 11, 0, 0, 0), TAIL], bad_reg(Field::Dst, 11));
}

#[test]
fn alu_reserved_fields() {
    // K form with a source register, X form with an immediate.
    rejects(&[raw(0x07, 1, 2, 0, 5)], reserved(0x07, Field::Src, 2));
    rejects(&[raw(0x0f, 1, 2, 0, 5)], reserved(0x0f, Field::Imm, 5));
    rejects(&[raw(0xa4, 1, 1, 0, 5)], reserved(0xa4, Field::Src, 1));
    // Offsets other than the table's (signed div/mod 1, movsx 8/16/32).
    rejects(&[raw(0x07, 1, 0, 1, 0)], reserved(0x07, Field::Off, 1));
    rejects(&[raw(0x3f, 1, 2, 2, 0)], reserved(0x3f, Field::Off, 2));
    rejects(&[raw(0x9c, 1, 2, -1, 0)], reserved(0x9c, Field::Off, -1));
    // ALU64 MOV X with offset 1 is addr_space_cast: between address spaces 0 and 1 only.
    rejects(&[raw(0xbf, 1, 2, 1, 0)], reserved(0xbf, Field::Imm, 0));
    rejects(&[raw(0xbf, 1, 2, 1, 0x10001)], reserved(0xbf, Field::Imm, 0x10001));
    rejects(&[raw(0xbc, 1, 2, 1, 1)], reserved(0xbc, Field::Off, 1));
    rejects(&[raw(0xb7, 1, 0, 1, 1)], reserved(0xb7, Field::Off, 1));
    rejects(&[raw(0xaf, 1, 2, 8, 0)], reserved(0xaf, Field::Off, 8));
    rejects(&[raw(0xbf, 1, 2, 64, 0)], reserved(0xbf, Field::Off, 64));
    // MOVSX from an immediate, and the 32-bit `(s32)`.
    rejects(&[raw(0xb7, 1, 0, 8, 0)], reserved(0xb7, Field::Off, 8));
    rejects(&[raw(0xb4, 1, 0, 16, 0)], reserved(0xb4, Field::Off, 16));
    rejects(&[raw(0xbc, 1, 2, 32, 0)], reserved(0xbc, Field::Off, 32));
    // NEG: the source bit is another opcode; every other field is reserved.
    rejects(&[raw(0x8f, 1, 0, 0, 0)], unknown(0x8f));
    rejects(&[raw(0x87, 1, 2, 0, 0)], reserved(0x87, Field::Src, 2));
    rejects(&[raw(0x87, 1, 0, 3, 0)], reserved(0x87, Field::Off, 3));
    rejects(&[raw(0x84, 1, 0, 0, 1)], reserved(0x84, Field::Imm, 1));
    // END: widths 16/32/64 only, no source or offset; BSWAP has no source bit.
    rejects(&[raw(0xd4, 1, 0, 0, 8)], reserved(0xd4, Field::Imm, 8));
    rejects(&[raw(0xdc, 1, 0, 0, 0)], reserved(0xdc, Field::Imm, 0));
    rejects(&[raw(0xd7, 1, 0, 0, 128)], reserved(0xd7, Field::Imm, 128));
    rejects(&[raw(0xdc, 1, 1, 0, 16)], reserved(0xdc, Field::Src, 1));
    rejects(&[raw(0xd7, 1, 0, 1, 16)], reserved(0xd7, Field::Off, 1));
    rejects(&[raw(0xdf, 1, 0, 0, 16)], unknown(0xdf));
    // The valid neighbours of those encodings.
    assert!(decode_program(&[raw(0x3f, 1, 2, 1, 0), raw(0x37, 1, 0, 1, 5)]).is_ok());
    assert!(decode_program(&[raw(0xbc, 1, 2, 16, 0), raw(0xbf, 1, 2, 32, 0)]).is_ok());
}

#[test]
fn jmp_reserved_fields() {
    // JA: imm reserved (JMP), off reserved (JMP32 gotol); no registers.
    rejects(&[raw(0x05, 0, 0, 1, 7)], reserved(0x05, Field::Imm, 7));
    rejects(&[raw(0x06, 0, 0, 3, 1)], reserved(0x06, Field::Off, 3));
    rejects(&[raw(0x05, 1, 0, 0, 0)], reserved(0x05, Field::Dst, 1));
    rejects(&[raw(0x06, 0, 2, 0, 0)], reserved(0x06, Field::Src, 2));
    // CALL: no dst; src is the call kind (0..=2); off only for kfuncs.
    rejects(&[raw(0x85, 1, 0, 0, 1)], reserved(0x85, Field::Dst, 1));
    rejects(&[raw(0x85, 0, 3, 0, 1)], reserved(0x85, Field::Src, 3));
    rejects(&[raw(0x85, 0, 15, 0, 1)], reserved(0x85, Field::Src, 15));
    rejects(&[raw(0x85, 0, 0, 2, 1)], reserved(0x85, Field::Off, 2));
    rejects(&[raw(0x85, 0, 1, -1, 1)], reserved(0x85, Field::Off, -1));
    assert!(decode_program(&[raw(0x85, 0, 2, 5, 1)]).is_ok());
    // EXIT: every field reserved.
    rejects(&[raw(0x95, 1, 0, 0, 0)], reserved(0x95, Field::Dst, 1));
    rejects(&[raw(0x95, 0, 1, 0, 0)], reserved(0x95, Field::Src, 1));
    rejects(&[raw(0x95, 0, 0, 1, 0)], reserved(0x95, Field::Off, 1));
    rejects(&[raw(0x95, 0, 0, 0, 1)], reserved(0x95, Field::Imm, 1));
    // JMP32 has no CALL or EXIT.
    rejects(&[raw(0x86, 0, 0, 0, 1)], unknown(0x86));
    rejects(&[raw(0x96, 0, 0, 0, 0)], unknown(0x96));
    // Conditional jumps: K with a source register, X with an immediate.
    rejects(&[raw(0x15, 1, 2, 0, 0)], reserved(0x15, Field::Src, 2));
    rejects(&[raw(0x1d, 1, 2, 0, 3)], reserved(0x1d, Field::Imm, 3));
    rejects(&[raw(0xd6, 1, 4, 0, 0)], reserved(0xd6, Field::Src, 4));
    rejects(&[raw(0x5e, 1, 2, 0, -1)], reserved(0x5e, Field::Imm, -1));
}

#[test]
fn ld_imm64_rules() {
    // Truncated: the last slot of the program.
    let truncated = |index| Err(DecodeError { index, kind: DecodeErrorKind::TruncatedLdImm64 });
    assert_eq!(decode_program(&[raw(0x18, 1, 0, 0, 0)]), truncated(0));
    assert_eq!(
        decode_program(&[MOV, raw(0x18, 1, 0, 0, 0), TAIL, raw(0x18, 1, 0, 0, 0)]),
        truncated(3)
    );
    assert_eq!(decode_bytes(&encode_bytes(&[Insn::ld_imm64(r(1), 1)])[..8]), truncated(0));
    // The second slot is all zero but its imm.
    let tail = |field, value| DecodeErrorKind::BadLdImm64Tail { field, value };
    let first = raw(0x18, 1, 0, 0, 0);
    rejects(&[first, raw(0x18, 0, 0, 0, 0)], tail(Field::Opcode, 0x18));
    rejects(&[first, raw(0, 1, 0, 0, 0)], tail(Field::Dst, 1));
    rejects(&[first, raw(0, 0, 2, 0, 0)], tail(Field::Src, 2));
    rejects(&[first, raw(0, 0, 0, -1, 0)], tail(Field::Off, -1));
    // ... and that imm is 0 for map fds, map indices and functions.
    for src in [1, 4, 5] {
        rejects(&[raw(0x18, 1, src, 0, 3), raw(0, 0, 0, 0, 5)], tail(Field::Imm, 5));
    }
    for src in [0, 2, 3, 6] {
        assert!(decode_program(&[raw(0x18, 1, src, 0, 3), raw(0, 0, 0, 0, 5)]).is_ok(), "{src}");
    }
    // First slot: src names a pseudo source (0..=6), off is reserved.
    rejects(&[raw(0x18, 1, 7, 0, 0), TAIL], reserved(0x18, Field::Src, 7));
    rejects(&[raw(0x18, 1, 0, 1, 0), TAIL], reserved(0x18, Field::Off, 1));
}

#[test]
fn ld_abs_ind_reserved_fields() {
    rejects(&[raw(0x38, 0, 0, 0, 0)], unknown(0x38));
    rejects(&[raw(0x58, 0, 1, 0, 0)], unknown(0x58));
    rejects(&[raw(0x20, 1, 0, 0, 0)], reserved(0x20, Field::Dst, 1));
    rejects(&[raw(0x30, 0, 1, 0, 0)], reserved(0x30, Field::Src, 1));
    rejects(&[raw(0x28, 0, 0, 1, 0)], reserved(0x28, Field::Off, 1));
    rejects(&[raw(0x40, 2, 1, 0, 0)], reserved(0x40, Field::Dst, 2));
    rejects(&[raw(0x48, 0, 1, -4, 0)], reserved(0x48, Field::Off, -4));
}

#[test]
fn memory_reserved_fields() {
    // LDX: MEMSX has no DW; imm is reserved.
    rejects(&[raw(0x99, 0, 1, 0, 0)], unknown(0x99));
    rejects(&[raw(0x61, 0, 1, 0, 1)], reserved(0x61, Field::Imm, 1));
    rejects(&[raw(0x81, 0, 1, 0, -1)], reserved(0x81, Field::Imm, -1));
    // ST: no source register.
    rejects(&[raw(0x62, 10, 1, -4, 0)], reserved(0x62, Field::Src, 1));
    // STX MEM: imm reserved.
    rejects(&[raw(0x63, 10, 1, -4, 9)], reserved(0x63, Field::Imm, 9));
    // Atomics: W and DW only; imm names the operation.
    rejects(&[raw(0xd3, 10, 1, 0, 0)], unknown(0xd3));
    rejects(&[raw(0xcb, 10, 1, 0, 0)], unknown(0xcb));
    rejects(&[raw(0xdb, 10, 1, -8, 0x02)], reserved(0xdb, Field::Imm, 0x02));
    rejects(&[raw(0xc3, 10, 1, -8, 0xf0)], reserved(0xc3, Field::Imm, 0xf0));
    rejects(&[raw(0xdb, 10, 1, -8, 0xe0)], reserved(0xdb, Field::Imm, 0xe0));
    rejects(&[raw(0xdb, 10, 1, -8, 0x100)], reserved(0xdb, Field::Imm, 0x100));
}

#[test]
fn trailing_bytes() {
    let err = |index, len| Err(DecodeError { index, kind: DecodeErrorKind::TrailingBytes { len } });
    assert_eq!(decode_bytes(&[0x95, 0, 0]), err(0, 3));
    let mut bytes = encode_bytes(&[Insn::Exit]);
    bytes.extend([0; 4]);
    assert_eq!(decode_bytes(&bytes), err(1, 4));
    let mut bytes = encode_bytes(&[Insn::ld_imm64(r(1), 5), Insn::Exit]);
    bytes.push(0);
    assert_eq!(decode_bytes(&bytes), err(3, 1));
    assert_eq!(decode_bytes(&[]), Ok(vec![]));
}

#[test]
fn error_messages() {
    let e = DecodeError { index: 3, kind: reserved(0x07, Field::Src, 2) };
    assert_eq!(e.to_string(), "instruction 3: src_reg = 2 is reserved for opcode 0x07");
    let e = DecodeError { index: 0, kind: unknown(0xe7) };
    assert_eq!(e.to_string(), "instruction 0: unknown opcode 0xe7");
    let e = DecodeError { index: 1, kind: bad_reg(Field::Dst, 11) };
    assert_eq!(e.to_string(), "instruction 1: invalid register r11 in dst_reg");
}

#[test]
fn display_and_encoding() {
    use MemSize::{B, Dw, H, W};
    let alu = |width, op, dst, src| Insn::Alu { width, op, dst: r(dst), src };
    let cases: Vec<(Insn, &str, &str)> = vec![
        (
            Insn::Load { size: W, signed: false, dst: r(0), src: r(1), off: 4 },
            "r0 = *(u32 *)(r1 + 4)",
            "6110040000000000",
        ),
        (alu(Width::W32, AluOp::Add, 2, Operand::Imm(7)), "w2 += 7", "0402000007000000"),
        (
            Insn::Jump {
                width: Width::W64,
                cond: JmpCond::Gt,
                dst: r(1),
                src: Operand::Reg(r(2)),
                off: 3,
            },
            "if r1 > r2 goto +3",
            "2d21030000000000",
        ),
        (
            Insn::Jump {
                width: Width::W32,
                cond: JmpCond::Sle,
                dst: r(1),
                src: Operand::Imm(-3),
                off: -1,
            },
            "if w1 s<= -3 goto -1",
            "d601fffffdffffff",
        ),
        (Insn::Call { kind: CallKind::Helper, imm: 1, off: 0 }, "call 1", "8500000001000000"),
        (
            Insn::Atomic { size: Dw, op: AtomicOp::Add, dst: r(10), src: r(1), off: -8 },
            "lock *(u64 *)(r10 - 8) += r1",
            "db1af8ff00000000",
        ),
        (
            Insn::Atomic { size: W, op: AtomicOp::Or, dst: r(1), src: r(2), off: 0 },
            "lock *(u32 *)(r1 + 0) |= r2",
            "c321000040000000",
        ),
        (alu(Width::W64, AluOp::Movsx8, 0, Operand::Reg(r(1))), "r0 = (s8)r1", "bf10080000000000"),
        (
            alu(Width::W32, AluOp::Movsx16, 0, Operand::Reg(r(1))),
            "w0 = (s16)w1",
            "bc10100000000000",
        ),
        (
            alu(Width::W64, AluOp::Movsx32, 3, Operand::Reg(r(4))),
            "r3 = (s32)r4",
            "bf43200000000000",
        ),
        (alu(Width::W64, AluOp::Sdiv, 1, Operand::Reg(r(2))), "r1 s/= r2", "3f21010000000000"),
        (alu(Width::W32, AluOp::Smod, 1, Operand::Imm(-5)), "w1 s%= -5", "94010100fbffffff"),
        (alu(Width::W64, AluOp::Arsh, 1, Operand::Imm(3)), "r1 s>>= 3", "c701000003000000"),
        (alu(Width::W64, AluOp::Mov, 0, Operand::Imm(-1)), "r0 = -1", "b7000000ffffffff"),
        (Insn::Neg { width: Width::W32, dst: r(3) }, "w3 = -w3", "8403000000000000"),
        (
            Insn::Endian { order: ByteOrder::Be, bits: 16, dst: r(0) },
            "r0 = be16 r0",
            "dc00000010000000",
        ),
        (
            Insn::Endian { order: ByteOrder::Le, bits: 32, dst: r(2) },
            "r2 = le32 r2",
            "d402000020000000",
        ),
        (
            Insn::Endian { order: ByteOrder::Swap, bits: 64, dst: r(0) },
            "r0 = bswap64 r0",
            "d700000040000000",
        ),
        (
            Insn::Atomic { size: Dw, op: AtomicOp::FetchAdd, dst: r(10), src: r(1), off: -8 },
            "r1 = atomic64_fetch_add((u64 *)(r10 - 8), r1)",
            "db1af8ff01000000",
        ),
        (
            Insn::Atomic { size: W, op: AtomicOp::Cmpxchg, dst: r(2), src: r(3), off: 0 },
            "r0 = atomic_cmpxchg((u32 *)(r2 + 0), r0, r3)",
            "c3320000f1000000",
        ),
        (
            Insn::Atomic { size: Dw, op: AtomicOp::Xchg, dst: r(2), src: r(3), off: 16 },
            "r3 = atomic64_xchg((u64 *)(r2 + 16), r3)",
            "db321000e1000000",
        ),
        (
            Insn::ld_imm64(r(1), 0x1122_3344_5566_7788),
            "r1 = 0x1122334455667788 ll",
            "18010000887766550000000044332211",
        ),
        (
            Insn::LdImm64 { dst: r(1), src: PseudoSrc::MapFd, imm: 3, next_imm: 0 },
            "r1 = map[fd:3] ll",
            "18110000030000000000000000000000",
        ),
        (
            Insn::LdImm64 { dst: r(1), src: PseudoSrc::MapValue, imm: 3, next_imm: 8 },
            "r1 = map[fd:3][0]+8 ll",
            "18210000030000000000000008000000",
        ),
        (
            Insn::LdImm64 { dst: r(2), src: PseudoSrc::MapIdxValue, imm: 0, next_imm: -4 },
            "r2 = map[idx:0][0]-4 ll",
            "186200000000000000000000fcffffff",
        ),
        (
            Insn::LdImm64 { dst: r(2), src: PseudoSrc::MapIdx, imm: 1, next_imm: 0 },
            "r2 = map[idx:1] ll",
            "18520000010000000000000000000000",
        ),
        (
            Insn::LdImm64 { dst: r(4), src: PseudoSrc::BtfId, imm: 77, next_imm: 0 },
            "r4 = btf_id 77 ll",
            "183400004d0000000000000000000000",
        ),
        (
            Insn::LdImm64 { dst: r(4), src: PseudoSrc::BtfId, imm: 77, next_imm: 5 },
            "r4 = btf_id 77, 5 ll",
            "183400004d0000000000000005000000",
        ),
        (
            Insn::LdImm64 { dst: r(5), src: PseudoSrc::Func, imm: -2, next_imm: 0 },
            "r5 = func pc-2 ll",
            "18450000feffffff0000000000000000",
        ),
        (
            Insn::Load { size: H, signed: true, dst: r(0), src: r(1), off: 2 },
            "r0 = *(s16 *)(r1 + 2)",
            "8910020000000000",
        ),
        (
            Insn::Store { size: B, dst: r(1), off: i16::MIN, src: Operand::Imm(-1) },
            "*(u8 *)(r1 - 32768) = -1",
            "72010080ffffffff",
        ),
        (
            Insn::Store { size: Dw, dst: r(10), off: -8, src: Operand::Reg(r(1)) },
            "*(u64 *)(r10 - 8) = r1",
            "7b1af8ff00000000",
        ),
        (Insn::JaLong { imm: -5 }, "gotol -5", "06000000fbffffff"),
        (Insn::Ja { off: 0 }, "goto +0", "0500000000000000"),
        (Insn::Call { kind: CallKind::Local, imm: 2, off: 0 }, "call pc+2", "8510000002000000"),
        (Insn::Call { kind: CallKind::Kfunc, imm: 9, off: 0 }, "call kfunc 9", "8520000009000000"),
        (
            Insn::Call { kind: CallKind::Kfunc, imm: 9, off: 1 },
            "call kfunc 9, 1",
            "8520010009000000",
        ),
        (Insn::Exit, "exit", "9500000000000000"),
        (
            Insn::AddrSpaceCast { dst: r(1), src: r(2), dst_as: 0, src_as: 1 },
            "r1 = addr_space_cast(r2, 0, 1)",
            "bf21010001000000",
        ),
        (
            Insn::AddrSpaceCast { dst: r(3), src: r(3), dst_as: 1, src_as: 0 },
            "r3 = addr_space_cast(r3, 1, 0)",
            "bf33010000000100",
        ),
        (
            Insn::LdInd { size: H, src: r(6), imm: 4 },
            "r0 = *(u16 *)skb[r6 + 4]",
            "4860000004000000",
        ),
        (Insn::LdAbs { size: B, imm: 12 }, "r0 = *(u8 *)skb[12]", "300000000c000000"),
    ];
    for (insn, text, hex) in cases {
        assert_eq!(insn.to_string(), text);
        let bytes = encode_bytes(&[insn]);
        let got: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(got, hex, "{text}");
        assert_eq!(decode_bytes(&bytes), Ok(vec![insn]), "{text}");
    }
}

#[test]
fn decode_at_past_the_end_is_a_typed_error() {
    let slots = [RawInsn { code: 0x95, ..RawInsn::default() }];
    assert_eq!(
        decode_at(&slots, 1),
        Err(DecodeError { index: 1, kind: DecodeErrorKind::PastEnd { len: 1 } })
    );
}
