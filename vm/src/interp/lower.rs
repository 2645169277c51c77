//! Lowering a program to pre-decoded slots, with map and function references resolved to
//! addresses in the world.

use super::{Config, LoadError};
use crate::engine::Program;
use crate::isa::{Insn, PseudoSrc, RawInsn};
use crate::memory::RegionId;
use crate::world::World;

/// One pre-decoded instruction slot. `imm` holds the sign-extended immediate, or the full
/// 64-bit value (an address, once resolved) for LD_IMM64.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Slot {
    /// The opcode byte.
    pub code: u8,
    /// Destination register.
    pub dst: u8,
    /// Source register (for calls: the call kind).
    pub src: u8,
    /// The offset field.
    pub off: i16,
    /// The immediate, sign-extended; for LD_IMM64 the resolved 64-bit value.
    pub imm: i64,
}

/// Opcode of the sentinel slots (the second half of LD_IMM64, and one past the end). Class LD
/// with mode IMM and size W is not an instruction.
pub const SENTINEL: u8 = 0x00;

/// A lowered program: its slots plus a sentinel past the end.
#[derive(Clone, Debug)]
pub struct Code {
    pub(crate) slots: Vec<Slot>,
    /// Which slots start an instruction (callback targets must).
    pub(crate) starts: Vec<bool>,
}

impl Code {
    /// The lowered slots, followed by one [`SENTINEL`] slot past the end.
    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// True when slot `pc` starts an instruction (not the second half of LD_IMM64).
    pub fn starts_instruction(&self, pc: usize) -> bool {
        self.starts.get(pc).copied().unwrap_or(false)
    }

    /// Number of instruction slots (without the sentinel).
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    /// True for a program without instructions (never produced by [`lower`]).
    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }
}

/// Checks `program`, resolves its LD_IMM64 references against `world` and lowers it.
/// `code_region` is the region whose addresses stand for this program's instructions.
pub(crate) fn lower(
    program: &Program,
    cfg: &Config,
    world: &mut World,
    code_region: RegionId,
) -> Result<Code, LoadError> {
    let n = program.slot_count();
    if n == 0 {
        return Err(LoadError::Empty);
    }
    if n > cfg.max_insns {
        return Err(LoadError::TooLarge { len: n, max: cfg.max_insns });
    }
    let mut slots = Vec::with_capacity(n + 1);
    let mut starts = vec![false; n];
    for insn in &program.insns {
        let pc = slots.len();
        starts[pc] = true;
        let (raw, tail): (RawInsn, _) = insn.encode();
        let mut slot = Slot {
            code: raw.code,
            dst: raw.dst,
            src: raw.src,
            off: raw.off,
            imm: i64::from(raw.imm),
        };
        if let Insn::LdImm64 { src, imm, next_imm, .. } = *insn {
            slot.imm = resolve(world, code_region, pc, src, imm, next_imm)? as i64;
        }
        slots.push(slot);
        if tail.is_some() {
            slots.push(Slot { code: SENTINEL, ..Slot::default() });
        }
    }
    let mut pc = 0;
    for insn in &program.insns {
        if let Some(off) = insn.branch_offset() {
            let target = pc as i64 + 1 + off;
            let why = if target < 0 || target >= n as i64 {
                Some("out of range")
            } else if !starts[target as usize] {
                Some("the middle of ld_imm64")
            } else {
                None
            };
            if let Some(why) = why {
                return Err(LoadError::BadTarget { pc, target, why });
            }
        }
        pc += insn.slots();
    }
    slots.push(Slot { code: SENTINEL, ..Slot::default() });
    Ok(Code { slots, starts })
}

/// The 64-bit value an LD_IMM64 loads. Map fds are taken as map indices: bpflab has no fds.
fn resolve(
    world: &mut World,
    code_region: RegionId,
    pc: usize,
    src: PseudoSrc,
    imm: i32,
    next_imm: i32,
) -> Result<u64, LoadError> {
    let unresolved = LoadError::Unresolved { pc, src, imm };
    let map = usize::try_from(imm).ok();
    match src {
        PseudoSrc::Imm => Ok(Insn::imm64(imm, next_imm)),
        PseudoSrc::MapIdx | PseudoSrc::MapFd => {
            map.and_then(|m| world.map_handle(m)).ok_or(unresolved)
        }
        PseudoSrc::MapIdxValue | PseudoSrc::MapValue => {
            // Direct value access: the address of element 0 (array maps, global data).
            let (m, mem) = map.and_then(|m| world.map_mut(m)).ok_or(unresolved.clone())?;
            let base = m.lookup(mem, &0u32.to_le_bytes(), 0).ok().flatten().ok_or(unresolved)?;
            Ok(base.wrapping_add(next_imm as i64 as u64))
        }
        // The target is checked with the other branches.
        PseudoSrc::Func => {
            Ok(code_region.base().wrapping_add((pc as i64 + 1 + i64::from(imm)) as u64))
        }
        PseudoSrc::BtfId => Err(unresolved),
    }
}
