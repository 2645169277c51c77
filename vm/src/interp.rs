//! The checked interpreter: every memory access goes through [`Memory`], every fault is a
//! typed [`VmError`] naming the instruction, and an instruction budget bounds every run.

use std::sync::Arc;

use crate::engine::{Engine, EngineError, Loaded, ProgType, Program, RunInput, RunOutcome};
use crate::env::Env;
use crate::helpers::{HelperCtx, HelperError, HelperRegistry};
use crate::isa::{Insn, PseudoSrc, RawInsn};
use crate::memory::{MAX_FRAMES, MemError, Memory, RegionId, RegionKind, STACK_SIZE};

/// Limits of the interpreter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Instructions one run may execute before it is stopped.
    pub insn_budget: u64,
    /// Maximum number of instruction slots in a program (the kernel's BPF_COMPLEXITY_LIMIT_INSNS).
    pub max_insns: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config { insn_budget: 10_000_000, max_insns: 1_000_000 }
    }
}

/// Why a program cannot be prepared for running.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// The program has no instructions.
    #[error("program is empty")]
    Empty,
    /// The program has more slots than the limit.
    #[error("program has {len} instructions, limit is {max}")]
    TooLarge {
        /// Slot count.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A jump or call lands outside the program or inside an LD_IMM64.
    #[error("instruction {pc}: jump target {target} is {why}")]
    BadTarget {
        /// Slot of the branch.
        pc: usize,
        /// The slot it lands on.
        target: i64,
        /// "out of range" or "the middle of ld_imm64".
        why: &'static str,
    },
    /// An LD_IMM64 refers to a map, BTF object or function that no loader resolved.
    #[error("instruction {pc}: ld_imm64 with unresolved {src:?} source")]
    Unresolved {
        /// Slot of the load.
        pc: usize,
        /// The pseudo source.
        src: PseudoSrc,
    },
}

/// What went wrong while running.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VmErrorKind {
    /// A load, store or atomic was refused.
    #[error(transparent)]
    Memory(#[from] MemError),
    /// The run executed more instructions than the budget allows.
    #[error("instruction budget of {budget} exhausted")]
    BudgetExhausted {
        /// The budget.
        budget: u64,
    },
    /// A bpf-to-bpf call would exceed the frame limit.
    #[error("call depth exceeds {max} frames")]
    CallDepth {
        /// The limit.
        max: usize,
    },
    /// A call names a helper that is not registered.
    #[error("unknown helper {id}")]
    UnknownHelper {
        /// The helper id.
        id: i64,
    },
    /// A helper refused its arguments.
    #[error("helper {name}: {error}")]
    Helper {
        /// The helper's name.
        name: &'static str,
        /// What it refused.
        error: HelperError,
    },
    /// A call to a kernel function; bpflab cannot run kfuncs.
    #[error("kfunc call (btf id {btf_id}) is not supported")]
    Kfunc {
        /// The kfunc's BTF id.
        btf_id: i64,
    },
    /// Execution reached a slot that is not an instruction (the second half of LD_IMM64).
    #[error("slot is not an instruction (inside ld_imm64)")]
    NotAnInstruction,
    /// Execution ran past the last instruction.
    #[error("execution fell off the end of the program")]
    FellOffEnd,
}

/// A fault while running, with the slot index of the faulting instruction.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("instruction {}: {}", .0.pc, .0.kind)]
pub struct VmError(Box<VmErrorInner>);

#[derive(Clone, Debug, PartialEq, Eq)]
struct VmErrorInner {
    pc: usize,
    kind: VmErrorKind,
}

impl VmError {
    /// A fault of `kind` at slot `pc`.
    pub fn new(pc: usize, kind: VmErrorKind) -> VmError {
        VmError(Box::new(VmErrorInner { pc, kind }))
    }

    /// The slot index of the faulting instruction.
    pub fn pc(&self) -> usize {
        self.0.pc
    }

    /// What went wrong.
    pub fn kind(&self) -> &VmErrorKind {
        &self.0.kind
    }
}

/// One pre-decoded instruction slot. `imm` holds the sign-extended immediate, or the full
/// 64-bit value for LD_IMM64.
#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    code: u8,
    dst: u8,
    src: u8,
    off: i16,
    imm: i64,
}

/// Opcode of the sentinel slots (the second half of LD_IMM64, and one past the end). Class LD
/// with mode IMM and size W is not an instruction.
const SENTINEL: u8 = 0x00;

/// Checks `program` and lowers it to slots (plus a sentinel past the end).
fn lower(program: &Program, cfg: &Config) -> Result<Vec<Slot>, LoadError> {
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
            if src != PseudoSrc::Imm {
                return Err(LoadError::Unresolved { pc, src });
            }
            slot.imm = Insn::imm64(imm, next_imm) as i64;
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
    Ok(slots)
}

/// The interpreter engine.
#[derive(Clone, Debug)]
pub struct Interpreter {
    config: Config,
    helpers: Arc<HelperRegistry>,
}

impl Default for Interpreter {
    fn default() -> Interpreter {
        Interpreter::new(Config::default(), Arc::new(HelperRegistry::standard()))
    }
}

impl Interpreter {
    /// An interpreter with these limits and helpers.
    pub fn new(config: Config, helpers: Arc<HelperRegistry>) -> Interpreter {
        Interpreter { config, helpers }
    }

    /// Prepares a program; the concrete form of [`Engine::load`].
    pub fn prepare(&self, program: &Program) -> Result<Prepared, LoadError> {
        let slots = lower(program, &self.config)?;
        let mut mem = Memory::new();
        for frame in 0..MAX_FRAMES {
            mem.map(RegionKind::Stack(frame as u8), vec![0; STACK_SIZE], true)
                .expect("stack regions are small");
        }
        let first_input = mem.next_id();
        Ok(Prepared {
            slots,
            config: self.config,
            helpers: Arc::clone(&self.helpers),
            prog_type: program.prog_type,
            mem,
            env: Env::default(),
            first_input,
        })
    }
}

impl Engine for Interpreter {
    fn name(&self) -> &'static str {
        "interp"
    }

    fn load(&self, program: &Program) -> Result<Box<dyn Loaded>, EngineError> {
        Ok(Box::new(self.prepare(program)?))
    }
}

/// A program ready to run in the interpreter; keeps its memory between runs.
#[derive(Debug)]
pub struct Prepared {
    slots: Vec<Slot>,
    config: Config,
    helpers: Arc<HelperRegistry>,
    prog_type: ProgType,
    mem: Memory,
    /// The simulated world the helpers see; persists across runs.
    pub env: Env,
    /// The first region after the stacks; per-run regions are mapped from here.
    first_input: RegionId,
}

/// Saved state of a caller during a bpf-to-bpf call.
#[derive(Clone, Copy, Debug)]
struct Frame {
    ret_pc: usize,
    saved: [u64; 4],
    fp: u64,
}

/// Stack pointer (r10) of call frame `n`: one past the end of its stack region.
fn frame_pointer(n: usize) -> u64 {
    RegionId::stack(n).base() + STACK_SIZE as u64
}

impl Prepared {
    /// Runs on raw memory: r1 points to a copy of `data`, r2 holds its length. Returns r0 and
    /// the instruction count; `data` receives what the program wrote.
    pub fn run_raw(&mut self, data: &mut Vec<u8>) -> Result<(u64, u64), VmError> {
        self.mem.truncate(self.first_input);
        let input = self
            .mem
            .map(RegionKind::Input, std::mem::take(data), true)
            .map_err(|e| VmError::new(0, e.into()))?;
        let len = self.mem.bytes(input).len() as u64;
        let result = self.execute([input.base(), len, 0, 0, 0], Some(input));
        *data = std::mem::take(self.mem.bytes_mut(input));
        result
    }

    /// Runs from the entry point with r1..r5 = `args`; `packet` is the region LD_ABS reads.
    fn execute(&mut self, args: [u64; 5], packet: Option<RegionId>) -> Result<(u64, u64), VmError> {
        self.mem.bytes_mut(RegionId::stack(0)).fill(0);
        let slots = &self.slots[..];
        let mem = &mut self.mem;
        let mut r = [0u64; 16];
        r[1..6].copy_from_slice(&args);
        r[10] = frame_pointer(0);
        let mut frames: Vec<Frame> = Vec::new();
        let mut pc = 0usize;
        let mut count: u64 = 0;
        let budget = self.config.insn_budget;

        macro_rules! fault {
            ($kind:expr) => {
                return Err(VmError::new(pc - 1, $kind.into()))
            };
        }
        macro_rules! mem {
            ($e:expr) => {
                match $e {
                    Ok(v) => v,
                    Err(e) => fault!(VmErrorKind::Memory(e)),
                }
            };
        }

        loop {
            let s = slots[pc];
            pc += 1;
            count += 1;
            if count > budget {
                fault!(VmErrorKind::BudgetExhausted { budget });
            }
            let d = (s.dst & 15) as usize;
            let sr = (s.src & 15) as usize;
            let imm = s.imm;
            let addr_src = r[sr].wrapping_add(s.off as i64 as u64);
            let addr_dst = r[d].wrapping_add(s.off as i64 as u64);
            macro_rules! alu64 {
                ($a:ident, $b:ident, $e:expr) => {{
                    let $a = r[d];
                    let $b = if s.code & 0x08 != 0 { r[sr] } else { imm as u64 };
                    r[d] = $e;
                }};
            }
            macro_rules! alu32 {
                ($a:ident, $b:ident, $e:expr) => {{
                    let $a = r[d] as u32;
                    let $b = if s.code & 0x08 != 0 { r[sr] as u32 } else { imm as u32 };
                    r[d] = u64::from($e);
                }};
            }
            macro_rules! jmp64 {
                ($a:ident, $b:ident, $e:expr) => {{
                    let $a = r[d];
                    let $b = if s.code & 0x08 != 0 { r[sr] } else { imm as u64 };
                    if $e {
                        pc = pc.wrapping_add(s.off as isize as usize);
                    }
                }};
            }
            macro_rules! jmp32 {
                ($a:ident, $b:ident, $e:expr) => {{
                    let $a = r[d] as u32;
                    let $b = if s.code & 0x08 != 0 { r[sr] as u32 } else { imm as u32 };
                    if $e {
                        pc = pc.wrapping_add(s.off as isize as usize);
                    }
                }};
            }
            match s.code {
                // ALU64
                0x07 | 0x0f => alu64!(a, b, a.wrapping_add(b)),
                0x17 | 0x1f => alu64!(a, b, a.wrapping_sub(b)),
                0x27 | 0x2f => alu64!(a, b, a.wrapping_mul(b)),
                0x37 | 0x3f if s.off == 0 => alu64!(a, b, a.checked_div(b).unwrap_or(0)),
                0x37 | 0x3f => alu64!(a, b, sdiv64(a as i64, b as i64) as u64),
                0x47 | 0x4f => alu64!(a, b, a | b),
                0x57 | 0x5f => alu64!(a, b, a & b),
                0x67 | 0x6f => alu64!(a, b, a << (b & 63)),
                0x77 | 0x7f => alu64!(a, b, a >> (b & 63)),
                0x87 => r[d] = r[d].wrapping_neg(),
                0x97 | 0x9f if s.off == 0 => alu64!(a, b, a.checked_rem(b).unwrap_or(a)),
                0x97 | 0x9f => alu64!(a, b, smod64(a as i64, b as i64) as u64),
                0xa7 | 0xaf => alu64!(a, b, a ^ b),
                0xb7 => r[d] = imm as u64,
                0xbf => {
                    r[d] = match s.off {
                        8 => r[sr] as i8 as i64 as u64,
                        16 => r[sr] as i16 as i64 as u64,
                        32 => r[sr] as i32 as i64 as u64,
                        _ => r[sr],
                    }
                }
                0xc7 | 0xcf => alu64!(a, b, ((a as i64) >> (b & 63)) as u64),
                0xd7 => r[d] = bswap(r[d], imm),
                // ALU32
                0x04 | 0x0c => alu32!(a, b, a.wrapping_add(b)),
                0x14 | 0x1c => alu32!(a, b, a.wrapping_sub(b)),
                0x24 | 0x2c => alu32!(a, b, a.wrapping_mul(b)),
                0x34 | 0x3c if s.off == 0 => alu32!(a, b, a.checked_div(b).unwrap_or(0)),
                0x34 | 0x3c => alu32!(a, b, sdiv32(a as i32, b as i32) as u32),
                0x44 | 0x4c => alu32!(a, b, a | b),
                0x54 | 0x5c => alu32!(a, b, a & b),
                0x64 | 0x6c => alu32!(a, b, a << (b & 31)),
                0x74 | 0x7c => alu32!(a, b, a >> (b & 31)),
                0x84 => r[d] = u64::from((r[d] as u32).wrapping_neg()),
                0x94 | 0x9c if s.off == 0 => alu32!(a, b, a.checked_rem(b).unwrap_or(a)),
                0x94 | 0x9c => alu32!(a, b, smod32(a as i32, b as i32) as u32),
                0xa4 | 0xac => alu32!(a, b, a ^ b),
                0xb4 => r[d] = u64::from(imm as u32),
                0xbc => {
                    r[d] = u64::from(match s.off {
                        8 => r[sr] as i8 as i32 as u32,
                        16 => r[sr] as i16 as i32 as u32,
                        _ => r[sr] as u32,
                    })
                }
                0xc4 | 0xcc => alu32!(a, b, ((a as i32) >> (b & 31)) as u32),
                0xd4 => {
                    r[d] = match imm {
                        16 => r[d] & 0xffff,
                        32 => r[d] & 0xffff_ffff,
                        _ => r[d],
                    }
                }
                0xdc => r[d] = bswap(r[d], imm),
                // JMP
                0x05 => pc = pc.wrapping_add(s.off as isize as usize),
                0x15 | 0x1d => jmp64!(a, b, a == b),
                0x25 | 0x2d => jmp64!(a, b, a > b),
                0x35 | 0x3d => jmp64!(a, b, a >= b),
                0x45 | 0x4d => jmp64!(a, b, a & b != 0),
                0x55 | 0x5d => jmp64!(a, b, a != b),
                0x65 | 0x6d => jmp64!(a, b, (a as i64) > (b as i64)),
                0x75 | 0x7d => jmp64!(a, b, (a as i64) >= (b as i64)),
                0xa5 | 0xad => jmp64!(a, b, a < b),
                0xb5 | 0xbd => jmp64!(a, b, a <= b),
                0xc5 | 0xcd => jmp64!(a, b, (a as i64) < (b as i64)),
                0xd5 | 0xdd => jmp64!(a, b, (a as i64) <= (b as i64)),
                // JMP32
                0x06 => pc = pc.wrapping_add(imm as isize as usize),
                0x16 | 0x1e => jmp32!(a, b, a == b),
                0x26 | 0x2e => jmp32!(a, b, a > b),
                0x36 | 0x3e => jmp32!(a, b, a >= b),
                0x46 | 0x4e => jmp32!(a, b, a & b != 0),
                0x56 | 0x5e => jmp32!(a, b, a != b),
                0x66 | 0x6e => jmp32!(a, b, (a as i32) > (b as i32)),
                0x76 | 0x7e => jmp32!(a, b, (a as i32) >= (b as i32)),
                0xa6 | 0xae => jmp32!(a, b, a < b),
                0xb6 | 0xbe => jmp32!(a, b, a <= b),
                0xc6 | 0xce => jmp32!(a, b, (a as i32) < (b as i32)),
                0xd6 | 0xde => jmp32!(a, b, (a as i32) <= (b as i32)),
                // Calls and exit
                0x85 => match s.src {
                    0 => {
                        let Some(h) = self.helpers.get(imm) else {
                            fault!(VmErrorKind::UnknownHelper { id: imm });
                        };
                        let mut hc = HelperCtx { mem, env: &mut self.env };
                        match (h.func)(&mut hc, [r[1], r[2], r[3], r[4], r[5]]) {
                            Ok(v) => r[0] = v,
                            Err(error) => fault!(VmErrorKind::Helper { name: h.proto.name, error }),
                        }
                    }
                    1 => {
                        if frames.len() + 1 >= MAX_FRAMES {
                            fault!(VmErrorKind::CallDepth { max: MAX_FRAMES });
                        }
                        frames.push(Frame {
                            ret_pc: pc,
                            saved: [r[6], r[7], r[8], r[9]],
                            fp: r[10],
                        });
                        let depth = frames.len();
                        mem.bytes_mut(RegionId::stack(depth)).fill(0);
                        r[10] = frame_pointer(depth);
                        pc = pc.wrapping_add(imm as isize as usize);
                    }
                    _ => fault!(VmErrorKind::Kfunc { btf_id: imm }),
                },
                0x95 => match frames.pop() {
                    None => return Ok((r[0], count)),
                    Some(f) => {
                        r[6..10].copy_from_slice(&f.saved);
                        r[10] = f.fp;
                        pc = f.ret_pc;
                    }
                },
                // Loads and stores
                0x18 => {
                    r[d] = imm as u64;
                    pc += 1;
                }
                0x61 => r[d] = mem!(mem.load(addr_src, 4)),
                0x69 => r[d] = mem!(mem.load(addr_src, 2)),
                0x71 => r[d] = mem!(mem.load(addr_src, 1)),
                0x79 => r[d] = mem!(mem.load(addr_src, 8)),
                0x81 => r[d] = mem!(mem.load(addr_src, 4)) as i32 as i64 as u64,
                0x89 => r[d] = mem!(mem.load(addr_src, 2)) as i16 as i64 as u64,
                0x91 => r[d] = mem!(mem.load(addr_src, 1)) as i8 as i64 as u64,
                0x62 => mem!(mem.store(addr_dst, 4, imm as u64)),
                0x6a => mem!(mem.store(addr_dst, 2, imm as u64)),
                0x72 => mem!(mem.store(addr_dst, 1, imm as u64)),
                0x7a => mem!(mem.store(addr_dst, 8, imm as u64)),
                0x63 => mem!(mem.store(addr_dst, 4, r[sr])),
                0x6b => mem!(mem.store(addr_dst, 2, r[sr])),
                0x73 => mem!(mem.store(addr_dst, 1, r[sr])),
                0x7b => mem!(mem.store(addr_dst, 8, r[sr])),
                0xc3 => atomic(mem, &mut r, addr_dst, 4, imm, sr)
                    .map_err(|e| VmError::new(pc - 1, e.into()))?,
                0xdb => atomic(mem, &mut r, addr_dst, 8, imm, sr)
                    .map_err(|e| VmError::new(pc - 1, e.into()))?,
                // Legacy packet loads: out of bounds ends the program with r0 = 0.
                0x20 | 0x28 | 0x30 | 0x40 | 0x48 | 0x50 => {
                    let len = match s.code & 0x18 {
                        0x00 => 4,
                        0x08 => 2,
                        _ => 1,
                    };
                    let base = if s.code & 0xe0 == 0x40 { r[sr] as u32 as i64 } else { 0 };
                    let off = base.wrapping_add(imm);
                    let value = packet.and_then(|p| {
                        let off = usize::try_from(off).ok()?;
                        let bytes = mem.bytes(p).get(off..off.checked_add(len)?)?;
                        Some(bytes.iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b)))
                    });
                    match value {
                        Some(v) => r[0] = v,
                        None => return Ok((0, count)),
                    }
                }
                SENTINEL if pc == slots.len() => fault!(VmErrorKind::FellOffEnd),
                _ => fault!(VmErrorKind::NotAnInstruction),
            }
        }
    }
}

#[inline]
fn sdiv64(a: i64, b: i64) -> i64 {
    if b == 0 { 0 } else { a.wrapping_div(b) }
}

#[inline]
fn smod64(a: i64, b: i64) -> i64 {
    if b == 0 { a } else { a.wrapping_rem(b) }
}

#[inline]
fn sdiv32(a: i32, b: i32) -> i32 {
    if b == 0 { 0 } else { a.wrapping_div(b) }
}

#[inline]
fn smod32(a: i32, b: i32) -> i32 {
    if b == 0 { a } else { a.wrapping_rem(b) }
}

/// Swaps the low `bits` bytes of `v` and zero-extends (be16/32/64 and bswap16/32/64).
#[inline]
fn bswap(v: u64, bits: i64) -> u64 {
    match bits {
        16 => u64::from((v as u16).swap_bytes()),
        32 => u64::from((v as u32).swap_bytes()),
        _ => v.swap_bytes(),
    }
}

/// Executes an atomic operation of `len` bytes at `addr` with register `src`.
fn atomic(
    mem: &mut Memory,
    r: &mut [u64; 16],
    addr: u64,
    len: usize,
    op: i64,
    src: usize,
) -> Result<(), MemError> {
    let mask = if len == 8 { u64::MAX } else { u64::from(u32::MAX) };
    let v = r[src] & mask;
    match op {
        0x00 | 0x01 => fetch(mem, r, addr, len, op, src, |old| old.wrapping_add(v)),
        0x40 | 0x41 => fetch(mem, r, addr, len, op, src, |old| old | v),
        0x50 | 0x51 => fetch(mem, r, addr, len, op, src, |old| old & v),
        0xa0 | 0xa1 => fetch(mem, r, addr, len, op, src, |old| old ^ v),
        0xe1 => fetch(mem, r, addr, len, op, src, |_| v),
        _ => {
            // CMPXCHG: compare with r0, r0 gets the old value.
            let expected = r[0] & mask;
            r[0] = mem.atomic(addr, len, |old| if old == expected { v } else { old })?;
            Ok(())
        }
    }
}

#[inline]
fn fetch(
    mem: &mut Memory,
    r: &mut [u64; 16],
    addr: u64,
    len: usize,
    op: i64,
    src: usize,
    f: impl FnOnce(u64) -> u64,
) -> Result<(), MemError> {
    let old = mem.atomic(addr, len, f)?;
    if op & 0x01 != 0 {
        r[src] = old;
    }
    Ok(())
}

impl Loaded for Prepared {
    fn run(&mut self, input: &RunInput) -> Result<RunOutcome, EngineError> {
        if self.prog_type != ProgType::Unspec {
            return Err(EngineError::Unsupported {
                engine: "interp",
                what: format!("contexts of program type {:?} (raw mode only)", self.prog_type),
            });
        }
        self.env.trace.clear();
        let mut data = input.data.clone();
        let (r0, count) = self.run_raw(&mut data)?;
        Ok(RunOutcome { r0, data, insn_count: Some(count), trace: self.env.trace.clone() })
    }
}
