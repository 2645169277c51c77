//! The opcode tables of RFC 9669: each table is written once and generates the enum, its
//! encoding, its decoding and the text the disassembler prints and the assembler reads.

/// Generates a field enum from `Variant = code, extra, "symbol"` rows.
///
/// `code` is the value of the instruction field the row encodes to, `extra` a second field
/// that disambiguates rows sharing a code (the offset for signed division and MOVSX, zero
/// elsewhere), `symbol` the text used by the disassembler and accepted by the assembler.
macro_rules! code_table {
    (
        $(#[$meta:meta])*
        $name:ident : $code_ty:ty {
            $( $(#[$vmeta:meta])* $var:ident = $code:expr, $extra:expr, $sym:expr; )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $var, )*
        }

        impl $name {
            /// Every row of the table, in table order.
            pub const ALL: &'static [$name] = &[$($name::$var),*];

            /// The field value this row encodes to.
            pub const fn code(self) -> $code_ty {
                match self { $($name::$var => $code),* }
            }

            /// The disambiguating second field (0 where the code alone decides).
            pub const fn extra(self) -> i32 {
                match self { $($name::$var => $extra),* }
            }

            /// The text printed by the disassembler and read by the assembler.
            pub const fn symbol(self) -> &'static str {
                match self { $($name::$var => $sym),* }
            }

            /// The row with this code and disambiguating field, if any.
            pub fn from_code(code: $code_ty, extra: i32) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.code() == code && v.extra() == extra)
            }

            /// The row printed as `symbol`, if any.
            pub fn from_symbol(symbol: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.symbol() == symbol)
            }
        }
    };
}

code_table! {
    /// An ALU operation with a destination and a source operand (the `op` field and, for the
    /// signed and sign-extending forms, the `offset` field).
    AluOp: u8 {
        /// `dst += src`
        Add = 0x00, 0, "+=";
        /// `dst -= src`
        Sub = 0x10, 0, "-=";
        /// `dst *= src`
        Mul = 0x20, 0, "*=";
        /// Unsigned division; `x / 0 = 0`.
        Div = 0x30, 0, "/=";
        /// Signed division (offset 1); `x s/ 0 = 0`, `MIN s/ -1 = MIN`.
        Sdiv = 0x30, 1, "s/=";
        /// `dst |= src`
        Or = 0x40, 0, "|=";
        /// `dst &= src`
        And = 0x50, 0, "&=";
        /// Left shift, amount masked to the operand width.
        Lsh = 0x60, 0, "<<=";
        /// Logical right shift, amount masked to the operand width.
        Rsh = 0x70, 0, ">>=";
        /// Unsigned modulo; `x % 0 = x`.
        Mod = 0x90, 0, "%=";
        /// Signed (truncating) modulo (offset 1); `x s% 0 = x`.
        Smod = 0x90, 1, "s%=";
        /// `dst ^= src`
        Xor = 0xa0, 0, "^=";
        /// `dst = src`
        Mov = 0xb0, 0, "=";
        /// `dst = (s8)src` (offset 8).
        Movsx8 = 0xb0, 8, "(s8)";
        /// `dst = (s16)src` (offset 16).
        Movsx16 = 0xb0, 16, "(s16)";
        /// `dst = (s32)src` (offset 32, 64-bit only).
        Movsx32 = 0xb0, 32, "(s32)";
        /// Arithmetic right shift, amount masked to the operand width.
        Arsh = 0xc0, 0, "s>>=";
    }
}

impl AluOp {
    /// True for the sign-extending moves, which print as `dst = (sN)src`.
    pub const fn is_movsx(self) -> bool {
        matches!(self, AluOp::Movsx8 | AluOp::Movsx16 | AluOp::Movsx32)
    }
}

code_table! {
    /// A conditional jump's comparison (the `op` field of a JMP/JMP32 instruction).
    JmpCond: u8 {
        /// `==`
        Eq = 0x10, 0, "==";
        /// Unsigned `>`.
        Gt = 0x20, 0, ">";
        /// Unsigned `>=`.
        Ge = 0x30, 0, ">=";
        /// `dst & src != 0`.
        Set = 0x40, 0, "&";
        /// `!=`
        Ne = 0x50, 0, "!=";
        /// Signed `>`.
        Sgt = 0x60, 0, "s>";
        /// Signed `>=`.
        Sge = 0x70, 0, "s>=";
        /// Unsigned `<`.
        Lt = 0xa0, 0, "<";
        /// Unsigned `<=`.
        Le = 0xb0, 0, "<=";
        /// Signed `<`.
        Slt = 0xc0, 0, "s<";
        /// Signed `<=`.
        Sle = 0xd0, 0, "s<=";
    }
}

code_table! {
    /// The width of a memory access (the `size` field).
    MemSize: u8 {
        /// 4 bytes.
        W = 0x00, 4, "u32";
        /// 2 bytes.
        H = 0x08, 2, "u16";
        /// 1 byte.
        B = 0x10, 1, "u8";
        /// 8 bytes.
        Dw = 0x18, 8, "u64";
    }
}

impl MemSize {
    /// The access width in bytes.
    pub const fn bytes(self) -> usize {
        self.extra() as usize
    }

    /// The size whose access width is `bytes`.
    pub fn from_bytes(bytes: usize) -> Option<Self> {
        Self::ALL.iter().copied().find(|s| s.bytes() == bytes)
    }

    /// The type name of a sign-extending load of this width (`s8`, `s16`, `s32`, `s64`).
    pub const fn signed_name(self) -> &'static str {
        match self {
            MemSize::B => "s8",
            MemSize::H => "s16",
            MemSize::W => "s32",
            MemSize::Dw => "s64",
        }
    }
}

code_table! {
    /// An atomic read-modify-write operation (the `imm` field of a BPF_ATOMIC store).
    AtomicOp: i32 {
        /// `lock *ptr += src`
        Add = 0x00, 0, "+=";
        /// `lock *ptr |= src`
        Or = 0x40, 0, "|=";
        /// `lock *ptr &= src`
        And = 0x50, 0, "&=";
        /// `lock *ptr ^= src`
        Xor = 0xa0, 0, "^=";
        /// `src = atomic_fetch_add(ptr, src)`
        FetchAdd = 0x01, 0, "fetch_add";
        /// `src = atomic_fetch_or(ptr, src)`
        FetchOr = 0x41, 0, "fetch_or";
        /// `src = atomic_fetch_and(ptr, src)`
        FetchAnd = 0x51, 0, "fetch_and";
        /// `src = atomic_fetch_xor(ptr, src)`
        FetchXor = 0xa1, 0, "fetch_xor";
        /// `src = atomic_xchg(ptr, src)`
        Xchg = 0xe1, 0, "xchg";
        /// `r0 = atomic_cmpxchg(ptr, r0, src)`
        Cmpxchg = 0xf1, 0, "cmpxchg";
    }
}

impl AtomicOp {
    /// True when the old memory value is written back to a register.
    pub const fn fetches(self) -> bool {
        self.code() & 0x01 != 0
    }
}

code_table! {
    /// The source kind of a 64-bit immediate load (`src` field of LD_IMM64): what the kernel
    /// or loader substitutes for the immediate.
    PseudoSrc: u8 {
        /// A plain 64-bit constant.
        Imm = 0, 0, "imm";
        /// `imm` is a map file descriptor; the register gets the map pointer.
        MapFd = 1, 0, "map_fd";
        /// `imm` is a map fd, `next_imm` an offset into its value; the register gets that address.
        MapValue = 2, 0, "map_value";
        /// `imm` is a BTF id of a kernel variable.
        BtfId = 3, 0, "btf_id";
        /// `imm` is a pc-relative instruction offset of a function (callback address).
        Func = 4, 0, "func";
        /// `imm` is an index into the program's map array.
        MapIdx = 5, 0, "map_idx";
        /// `imm` is a map index, `next_imm` an offset into its value.
        MapIdxValue = 6, 0, "map_idx_value";
    }
}

code_table! {
    /// The target kind of a CALL instruction (its `src` field).
    CallKind: u8 {
        /// A helper function, by id.
        Helper = 0, 0, "helper";
        /// A bpf-to-bpf call, pc-relative.
        Local = 1, 0, "local";
        /// A kernel function, by BTF id.
        Kfunc = 2, 0, "kfunc";
    }
}

/// The instruction class (low three bits of the opcode).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Class {
    /// Non-standard loads (LD_IMM64, LD_ABS, LD_IND).
    Ld = 0,
    /// Loads into a register.
    Ldx = 1,
    /// Stores of an immediate.
    St = 2,
    /// Stores of a register, and atomics.
    Stx = 3,
    /// 32-bit arithmetic.
    Alu = 4,
    /// 64-bit jumps, calls and exit.
    Jmp = 5,
    /// 32-bit jumps.
    Jmp32 = 6,
    /// 64-bit arithmetic.
    Alu64 = 7,
}

impl Class {
    /// The class of an opcode byte.
    pub const fn of(code: u8) -> Class {
        match code & 0x07 {
            0 => Class::Ld,
            1 => Class::Ldx,
            2 => Class::St,
            3 => Class::Stx,
            4 => Class::Alu,
            5 => Class::Jmp,
            6 => Class::Jmp32,
            _ => Class::Alu64,
        }
    }
}

/// Opcode bit: the source operand is a register (BPF_X), not the immediate (BPF_K).
pub const SRC_REG: u8 = 0x08;
/// ALU `op` value of NEG.
pub const OP_NEG: u8 = 0x80;
/// ALU `op` value of the byte swaps (END).
pub const OP_END: u8 = 0xd0;
/// JMP `op` value of JA.
pub const OP_JA: u8 = 0x00;
/// JMP `op` value of CALL.
pub const OP_CALL: u8 = 0x80;
/// JMP `op` value of EXIT.
pub const OP_EXIT: u8 = 0x90;
/// Memory `mode` of a 64-bit immediate load.
pub const MODE_IMM: u8 = 0x00;
/// Memory `mode` of LD_ABS.
pub const MODE_ABS: u8 = 0x20;
/// Memory `mode` of LD_IND.
pub const MODE_IND: u8 = 0x40;
/// Memory `mode` of a regular load or store.
pub const MODE_MEM: u8 = 0x60;
/// Memory `mode` of a sign-extending load.
pub const MODE_MEMSX: u8 = 0x80;
/// Memory `mode` of an atomic operation.
pub const MODE_ATOMIC: u8 = 0xc0;
