//! Memory accesses: loads, stores and atomics through every pointer kind, LD_ABS/LD_IND.

use bpflab_vm::isa::AtomicOp;

use crate::check::Verifier;
use crate::error::Stop;
use crate::state::State;

/// What a memory instruction does with the memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// `dst = *(size *)(base + off)`, sign-extending when `signed`.
    Read {
        /// Destination register.
        dst: usize,
        /// LDSX.
        signed: bool,
    },
    /// `*(size *)(base + off) = src` (a register) or `= imm` (ST).
    Write {
        /// The stored register, or `None` for an immediate.
        src: Option<usize>,
        /// The immediate (ST).
        imm: i32,
    },
}

/// Checks a load or store of `size` bytes at `base + off` and applies its effect to `st`.
pub(crate) fn check_mem_access(
    v: &mut Verifier<'_>,
    st: &mut State,
    insn: usize,
    base: usize,
    off: i16,
    size: usize,
    access: Access,
) -> Result<(), Stop> {
    let _ = (v, st, base, off, size, access);
    Err(Stop::unsupported(insn, "memory accesses (being built)"))
}

/// Checks an atomic read-modify-write and applies its effect.
#[allow(clippy::too_many_arguments)]
pub(crate) fn check_atomic(
    v: &mut Verifier<'_>,
    st: &mut State,
    insn: usize,
    op: AtomicOp,
    size: usize,
    dst: usize,
    src: usize,
    off: i16,
) -> Result<(), Stop> {
    let _ = (v, st, op, size, dst, src, off);
    Err(Stop::unsupported(insn, "atomic operations (being built)"))
}

/// Checks LD_ABS / LD_IND (`src` is the index register for LD_IND).
pub(crate) fn check_ld_abs(
    v: &mut Verifier<'_>,
    st: &mut State,
    insn: usize,
    size: usize,
    src: Option<usize>,
) -> Result<(), Stop> {
    let _ = (v, st, size, src);
    Err(Stop::unsupported(insn, "LD_ABS/LD_IND (being built)"))
}
