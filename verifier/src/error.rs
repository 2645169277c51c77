//! Verdicts and errors: what the verifier decided, in the kernel's words, and the class of the
//! error, which is what bpflab and the kernel are compared on.

use serde::Serialize;

/// The class of a verifier error: kernel messages that mean the same mistake share one.
/// [`ErrorKind::classify`] finds the class of a kernel log's error line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// A reserved encoding, unknown opcode or malformed LD_IMM64.
    InvalidInsn,
    /// A jump or call whose target is outside the program or inside an LD_IMM64.
    JumpOutOfRange,
    /// A loop the mode does not allow (unprivileged back-edges).
    BackEdge,
    /// An instruction no path reaches.
    UnreachableInsn,
    /// The last instruction can fall through, or a function falls off its end.
    FallOffEnd,
    /// A loop whose state repeats.
    InfiniteLoop,
    /// A limit on instructions, processed instructions, pending jumps or subprograms.
    TooComplex,
    /// A read of an uninitialised register.
    UninitRegister,
    /// A read of uninitialised stack.
    UninitStack,
    /// A write to a read-only register (R10) or memory.
    ReadOnly,
    /// A memory access through something that is not a pointer of a readable kind.
    InvalidMemAccess,
    /// A dereference of a pointer that may be NULL.
    NullPointer,
    /// A stack access outside the frame or misaligned.
    StackAccess,
    /// A map value or key access outside its bounds.
    MapValueAccess,
    /// A packet access not proven against `data_end`.
    PacketAccess,
    /// A context access to a field the program type may not use that way.
    CtxAccess,
    /// An access to other memory (ringbuf records, helper memory, BTF objects) out of bounds.
    MemAccess,
    /// Misaligned access.
    Alignment,
    /// Pointer arithmetic the kernel does not allow.
    PointerArithmetic,
    /// A comparison of pointers the kernel does not allow.
    PointerComparison,
    /// A pointer leaked where an unprivileged program may not put it.
    PointerLeak,
    /// A helper that does not exist or that the program type or license may not call.
    UnknownHelper,
    /// A helper argument of the wrong kind, size or value.
    HelperArg,
    /// A kfunc that does not exist, or a wrong kfunc argument.
    Kfunc,
    /// An acquired reference not released on some path, or released twice.
    Reference,
    /// Misuse of `bpf_spin_lock`.
    SpinLock,
    /// A return value outside the range the program type allows.
    ReturnValue,
    /// Too many frames or too much stack along a call chain.
    CallStack,
    /// Misuse of bpf-to-bpf calls, callbacks or global functions.
    Call,
    /// Misuse of tail calls.
    TailCall,
    /// Division by zero, bad shifts and other ALU misuse.
    Alu,
    /// Any other refusal.
    Other,
}

impl ErrorKind {
    /// The class's name in JSON and tables (`uninit_register`, `packet_access`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::InvalidInsn => "invalid_insn",
            ErrorKind::JumpOutOfRange => "jump_out_of_range",
            ErrorKind::BackEdge => "back_edge",
            ErrorKind::UnreachableInsn => "unreachable_insn",
            ErrorKind::FallOffEnd => "fall_off_end",
            ErrorKind::InfiniteLoop => "infinite_loop",
            ErrorKind::TooComplex => "too_complex",
            ErrorKind::UninitRegister => "uninit_register",
            ErrorKind::UninitStack => "uninit_stack",
            ErrorKind::ReadOnly => "read_only",
            ErrorKind::InvalidMemAccess => "invalid_mem_access",
            ErrorKind::NullPointer => "null_pointer",
            ErrorKind::StackAccess => "stack_access",
            ErrorKind::MapValueAccess => "map_value_access",
            ErrorKind::PacketAccess => "packet_access",
            ErrorKind::CtxAccess => "ctx_access",
            ErrorKind::MemAccess => "mem_access",
            ErrorKind::Alignment => "alignment",
            ErrorKind::PointerArithmetic => "pointer_arithmetic",
            ErrorKind::PointerComparison => "pointer_comparison",
            ErrorKind::PointerLeak => "pointer_leak",
            ErrorKind::UnknownHelper => "unknown_helper",
            ErrorKind::HelperArg => "helper_arg",
            ErrorKind::Kfunc => "kfunc",
            ErrorKind::Reference => "reference",
            ErrorKind::SpinLock => "spin_lock",
            ErrorKind::ReturnValue => "return_value",
            ErrorKind::CallStack => "call_stack",
            ErrorKind::Call => "call",
            ErrorKind::TailCall => "tail_call",
            ErrorKind::Alu => "alu",
            ErrorKind::Other => "other",
        }
    }
}

/// A rejection: the kernel's message, the instruction it is about, and where in the C source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct VerifyError {
    /// The error's class.
    pub kind: ErrorKind,
    /// The message as the kernel's log prints it (`R1 invalid mem access 'scalar'`).
    pub message: String,
    /// The instruction index (slot) it is about, where there is one.
    pub insn: Option<usize>,
    /// The C source line of that instruction, from BTF line info (`source` in JSON).
    #[serde(rename = "source")]
    pub line: Option<SourceLine>,
}

impl VerifyError {
    /// An error of `kind` with the kernel's `message` at instruction `insn`.
    pub fn new(kind: ErrorKind, insn: usize, message: impl Into<String>) -> VerifyError {
        VerifyError { kind, message: message.into(), insn: Some(insn), line: None }
    }

    /// An error about the whole program (no one instruction).
    pub fn program(kind: ErrorKind, message: impl Into<String>) -> VerifyError {
        VerifyError { kind, message: message.into(), insn: None, line: None }
    }
}

/// A C source position from BTF line info.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SourceLine {
    /// The file name as BTF records it.
    pub file: String,
    /// 1-based line number.
    pub line: u32,
    /// The line's text, as BTF records it.
    pub text: String,
}

/// Something bpflab's verifier does not model yet, so it cannot give a verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("unsupported: {feature}")]
pub struct Unsupported {
    /// What is not modelled (`kfunc bpf_dynptr_from_skb`, `arena pointers`, ...).
    pub feature: String,
    /// The instruction that needed it.
    pub insn: Option<usize>,
}

/// Why verification stopped without accepting: the program is rejected, or uses something
/// bpflab does not model.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Stop {
    /// The kernel would reject the program.
    #[error(transparent)]
    Reject(#[from] VerifyError),
    /// bpflab cannot decide.
    #[error(transparent)]
    Unsupported(#[from] Unsupported),
}

impl Stop {
    /// A rejection of `kind` at `insn`.
    pub fn reject(kind: ErrorKind, insn: usize, message: impl Into<String>) -> Stop {
        Stop::Reject(VerifyError::new(kind, insn, message))
    }

    /// An unsupported feature at `insn`.
    pub fn unsupported(insn: usize, feature: impl Into<String>) -> Stop {
        Stop::Unsupported(Unsupported { feature: feature.into(), insn: Some(insn) })
    }
}

/// What the verifier decided about a program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The kernel would load it.
    Accepted,
    /// The kernel would refuse it, with this error.
    Rejected(VerifyError),
    /// bpflab does not model something the program uses.
    Unsupported(Unsupported),
}

impl Verdict {
    /// `accepted`, `rejected` or `unsupported`, as in `--json`.
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Accepted => "accepted",
            Verdict::Rejected(_) => "rejected",
            Verdict::Unsupported(_) => "unsupported",
        }
    }

    /// Whether the program was accepted.
    pub fn is_accepted(&self) -> bool {
        matches!(self, Verdict::Accepted)
    }
}

/// Message fragments of the kernel's verifier log and the class each belongs to, first match
/// wins. Both the classification of kernel logs and bpflab's own errors use these classes.
const CLASSES: &[(&str, ErrorKind)] = &[
    ("unknown opcode", ErrorKind::InvalidInsn),
    ("invalid BPF_LD_IMM", ErrorKind::InvalidInsn),
    ("BPF_LD_[ABS|IND] uses reserved fields", ErrorKind::InvalidInsn),
    ("uses reserved fields", ErrorKind::InvalidInsn),
    ("invalid bpf_ld_imm64", ErrorKind::InvalidInsn),
    ("invalid ldimm64", ErrorKind::InvalidInsn),
    ("unknown insn class", ErrorKind::InvalidInsn),
    ("invalid insn idx", ErrorKind::InvalidInsn),
    ("invalid src register", ErrorKind::InvalidInsn),
    ("invalid dst register", ErrorKind::InvalidInsn),
    ("invalid register", ErrorKind::InvalidInsn),
    ("jump out of range", ErrorKind::JumpOutOfRange),
    ("jump into the middle of ldimm64", ErrorKind::JumpOutOfRange),
    ("call to invalid destination", ErrorKind::JumpOutOfRange),
    ("back-edge", ErrorKind::BackEdge),
    ("unreachable insn", ErrorKind::UnreachableInsn),
    ("last insn is not an exit or jmp", ErrorKind::FallOffEnd),
    ("fall-through", ErrorKind::FallOffEnd),
    ("infinite loop detected", ErrorKind::InfiniteLoop),
    ("BPF program is too large", ErrorKind::TooComplex),
    ("is too complex", ErrorKind::TooComplex),
    ("too many subprograms", ErrorKind::TooComplex),
    ("too many states", ErrorKind::TooComplex),
    ("!read_ok", ErrorKind::UninitRegister),
    ("invalid read from stack", ErrorKind::UninitStack),
    ("invalid indirect read from stack", ErrorKind::UninitStack),
    ("frame pointer is read only", ErrorKind::ReadOnly),
    ("cannot write into", ErrorKind::ReadOnly),
    ("write into map forbidden", ErrorKind::ReadOnly),
    ("_or_null'", ErrorKind::NullPointer),
    ("invalid mem access", ErrorKind::InvalidMemAccess),
    ("invalid stack", ErrorKind::StackAccess),
    ("invalid write to stack", ErrorKind::StackAccess),
    ("invalid variable-offset", ErrorKind::StackAccess),
    ("invalid unbounded variable-offset", ErrorKind::StackAccess),
    ("min value is outside of the allowed memory range", ErrorKind::MapValueAccess),
    ("max value is outside of the allowed memory range", ErrorKind::MapValueAccess),
    ("unbounded memory access", ErrorKind::MapValueAccess),
    ("invalid access to map value", ErrorKind::MapValueAccess),
    ("invalid access to map key", ErrorKind::MapValueAccess),
    ("invalid access to packet", ErrorKind::PacketAccess),
    ("invalid bpf_context access", ErrorKind::CtxAccess),
    ("dereference of modified ctx ptr", ErrorKind::CtxAccess),
    ("invalid access to memory", ErrorKind::MemAccess),
    ("invalid access to flow keys", ErrorKind::MemAccess),
    ("access beyond struct", ErrorKind::MemAccess),
    ("misaligned", ErrorKind::Alignment),
    ("pointer arithmetic", ErrorKind::PointerArithmetic),
    ("pointer += pointer", ErrorKind::PointerArithmetic),
    ("pointer offset", ErrorKind::PointerArithmetic),
    ("on pointer prohibited", ErrorKind::PointerArithmetic),
    ("variable stack access prohibited", ErrorKind::PointerArithmetic),
    ("variable ctx access prohibited", ErrorKind::PointerArithmetic),
    ("sign-extension part of pointer", ErrorKind::PointerLeak),
    ("subtraction from stack pointer", ErrorKind::PointerArithmetic),
    ("pointer with unsupported alu operation", ErrorKind::PointerArithmetic),
    ("subtract pointer from scalar", ErrorKind::PointerArithmetic),
    ("math between", ErrorKind::PointerArithmetic),
    ("makes map_value pointer be out of bounds", ErrorKind::PointerArithmetic),
    ("makes stack pointer be out of bounds", ErrorKind::PointerArithmetic),
    ("pointer is out of bounds", ErrorKind::PointerArithmetic),
    ("pointer be out of bounds", ErrorKind::PointerArithmetic),
    ("tried to add from different pointers", ErrorKind::PointerArithmetic),
    ("tried to sub", ErrorKind::PointerArithmetic),
    ("pointer comparison prohibited", ErrorKind::PointerComparison),
    ("leaks addr", ErrorKind::PointerLeak),
    ("partial copy of pointer", ErrorKind::PointerLeak),
    ("invalid func", ErrorKind::UnknownHelper),
    ("cannot call GPL-restricted function", ErrorKind::UnknownHelper),
    ("unknown func", ErrorKind::UnknownHelper),
    ("program of this type cannot use helper", ErrorKind::UnknownHelper),
    ("helper call might sleep", ErrorKind::UnknownHelper),
    ("calling kernel function", ErrorKind::Kfunc),
    ("kernel function", ErrorKind::Kfunc),
    ("kfunc", ErrorKind::Kfunc),
    ("Unreleased reference", ErrorKind::Reference),
    ("reference has not been acquired", ErrorKind::Reference),
    ("release", ErrorKind::Reference),
    ("spin_lock", ErrorKind::SpinLock),
    ("spin_unlock", ErrorKind::SpinLock),
    ("while holding a lock", ErrorKind::SpinLock),
    ("At program exit", ErrorKind::ReturnValue),
    ("At callback return", ErrorKind::ReturnValue),
    ("At subprogram exit", ErrorKind::ReturnValue),
    ("should have been in", ErrorKind::ReturnValue),
    ("call stack of", ErrorKind::CallStack),
    ("combined stack size", ErrorKind::CallStack),
    ("stack size", ErrorKind::CallStack),
    ("tail_call", ErrorKind::TailCall),
    ("tail call", ErrorKind::TailCall),
    ("would lead to reference leak", ErrorKind::Reference),
    ("div by zero", ErrorKind::Alu),
    ("progs cannot use bpf_", ErrorKind::Other),
    (" is invalid", ErrorKind::InvalidInsn),
    ("unrecognized bpf_ld_imm64", ErrorKind::InvalidInsn),
    ("invalid atomic opcode", ErrorKind::InvalidInsn),
    ("is not pointing to valid bpf_map", ErrorKind::InvalidInsn),
    ("is not allowed in subprogs", ErrorKind::Call),
    ("same insn cannot be used with different pointers", ErrorKind::InvalidMemAccess),
    ("invalid shift", ErrorKind::Alu),
    ("BPF_NEG uses reserved fields", ErrorKind::InvalidInsn),
    ("function calls are not allowed", ErrorKind::Call),
    ("callback", ErrorKind::Call),
    ("caller passes invalid args", ErrorKind::Call),
    ("global func", ErrorKind::Call),
    ("type=", ErrorKind::HelperArg),
    ("expected=", ErrorKind::HelperArg),
    ("invalid indirect access", ErrorKind::HelperArg),
    ("invalid zero-sized read", ErrorKind::HelperArg),
    ("min value is negative", ErrorKind::HelperArg),
    ("unbounded memory access, use 'var &= const'", ErrorKind::HelperArg),
    ("is not a known constant", ErrorKind::HelperArg),
    ("invalid map_ptr", ErrorKind::HelperArg),
    ("cannot pass map_type", ErrorKind::HelperArg),
    ("R0 invalid mem access", ErrorKind::InvalidMemAccess),
];

impl ErrorKind {
    /// The class of a kernel verifier message (one log line).
    pub fn classify(message: &str) -> ErrorKind {
        CLASSES
            .iter()
            .find(|(frag, _)| message.contains(frag))
            .map(|&(_, kind)| kind)
            .unwrap_or(ErrorKind::Other)
    }
}
