//! The execution loop.

use super::lower::{Code, SENTINEL};
use super::{Config, MAX_TAIL_CALLS, VmError, VmErrorKind};
use crate::engine::ProgType;
use crate::helpers::{Callbacks, HelperCtx, HelperRegistry};
use crate::kfunc::KfuncTable;
use crate::memory::{MAX_FRAMES, MemError, Memory, RegionId, STACK_SIZE};
use crate::world::World;

/// Saved state of a caller during a bpf-to-bpf call.
#[derive(Clone, Copy, Debug)]
struct Frame {
    prog: usize,
    ret_pc: usize,
    saved: [u64; 4],
    fp: u64,
}

/// Stack pointer (r10) of call frame `n`: one past the end of its stack region.
fn frame_pointer(n: usize) -> u64 {
    RegionId::stack(n).base() + STACK_SIZE as u64
}

/// One run of a collection's programs: shared budget, frame depth and tail-call count.
pub(crate) struct Exec<'a> {
    pub(crate) codes: &'a [Code],
    pub(crate) code_regions: &'a [RegionId],
    pub(crate) prog_types: &'a [ProgType],
    /// Per program, whether its license is GPL-compatible (for GPL-only helpers).
    pub(crate) gpl_compatible: &'a [bool],
    pub(crate) helpers: &'a HelperRegistry,
    pub(crate) kfuncs: &'a KfuncTable,
    pub(crate) config: &'a Config,
    /// Instructions executed so far, callbacks included.
    pub(crate) count: u64,
    /// Frames used by the executions this one is nested in (callbacks).
    pub(crate) depth: usize,
    /// Tail calls taken so far.
    pub(crate) tail_calls: u32,
    /// The region LD_ABS/LD_IND read.
    pub(crate) packet: Option<RegionId>,
}

impl Exec<'_> {
    /// Runs program `prog` from slot `entry` with r1..r5 = `args`, in frame `self.depth`.
    pub(crate) fn run(
        &mut self,
        world: &mut World,
        prog: usize,
        entry: usize,
        args: [u64; 5],
    ) -> Result<u64, VmError> {
        let codes = self.codes;
        let helpers = self.helpers;
        let base = self.depth;
        if base >= MAX_FRAMES {
            return Err(VmError::new(entry, VmErrorKind::CallDepth { max: MAX_FRAMES }));
        }
        let mut prog = prog;
        let mut slots = &codes[prog].slots[..];
        world.mem.contents_mut(RegionId::stack(base)).fill(0);
        let mut r = [0u64; 16];
        r[1..6].copy_from_slice(&args);
        r[10] = frame_pointer(base);
        let mut frames: Vec<Frame> = Vec::new();
        let mut pc = entry;
        let mut count = self.count;
        let budget = self.config.insn_budget;

        macro_rules! fault {
            ($kind:expr) => {{
                self.count = count;
                return Err(VmError::new(pc - 1, $kind.into()));
            }};
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
            let mem: &mut Memory = &mut world.mem;
            let d = (s.dst & 15) as usize;
            let sr = (s.src & 15) as usize;
            let imm = s.imm;
            // Effective addresses, computed only by the memory arms: computing both for every
            // instruction costs two register-file loads and two live registers in the loop.
            macro_rules! src_addr {
                () => {
                    r[sr].wrapping_add(s.off as i64 as u64)
                };
            }
            macro_rules! dst_addr {
                () => {
                    r[d].wrapping_add(s.off as i64 as u64)
                };
            }
            // The K (immediate) and X (register) forms get separate arms, so no arm tests
            // `code & 0x08` at run time.
            macro_rules! alu64 {
                (K, $a:ident, $b:ident, $e:expr) => {{
                    let $a = r[d];
                    let $b = imm as u64;
                    r[d] = $e;
                }};
                (X, $a:ident, $b:ident, $e:expr) => {{
                    let $a = r[d];
                    let $b = r[sr];
                    r[d] = $e;
                }};
            }
            macro_rules! alu32 {
                (K, $a:ident, $b:ident, $e:expr) => {{
                    let $a = r[d] as u32;
                    let $b = imm as u32;
                    r[d] = u64::from($e);
                }};
                (X, $a:ident, $b:ident, $e:expr) => {{
                    let $a = r[d] as u32;
                    let $b = r[sr] as u32;
                    r[d] = u64::from($e);
                }};
            }
            macro_rules! jmp64 {
                (K, $a:ident, $b:ident, $e:expr) => {{
                    let $a = r[d];
                    let $b = imm as u64;
                    if $e {
                        pc = pc.wrapping_add(s.off as isize as usize);
                    }
                }};
                (X, $a:ident, $b:ident, $e:expr) => {{
                    let $a = r[d];
                    let $b = r[sr];
                    if $e {
                        pc = pc.wrapping_add(s.off as isize as usize);
                    }
                }};
            }
            macro_rules! jmp32 {
                (K, $a:ident, $b:ident, $e:expr) => {{
                    let $a = r[d] as u32;
                    let $b = imm as u32;
                    if $e {
                        pc = pc.wrapping_add(s.off as isize as usize);
                    }
                }};
                (X, $a:ident, $b:ident, $e:expr) => {{
                    let $a = r[d] as u32;
                    let $b = r[sr] as u32;
                    if $e {
                        pc = pc.wrapping_add(s.off as isize as usize);
                    }
                }};
            }
            match s.code {
                // ALU64
                0x07 => alu64!(K, a, b, a.wrapping_add(b)),
                0x0f => alu64!(X, a, b, a.wrapping_add(b)),
                0x17 => alu64!(K, a, b, a.wrapping_sub(b)),
                0x1f => alu64!(X, a, b, a.wrapping_sub(b)),
                0x27 => alu64!(K, a, b, a.wrapping_mul(b)),
                0x2f => alu64!(X, a, b, a.wrapping_mul(b)),
                0x37 if s.off == 0 => alu64!(K, a, b, a.checked_div(b).unwrap_or(0)),
                0x3f if s.off == 0 => alu64!(X, a, b, a.checked_div(b).unwrap_or(0)),
                0x37 => alu64!(K, a, b, sdiv64(a as i64, b as i64) as u64),
                0x3f => alu64!(X, a, b, sdiv64(a as i64, b as i64) as u64),
                0x47 => alu64!(K, a, b, a | b),
                0x4f => alu64!(X, a, b, a | b),
                0x57 => alu64!(K, a, b, a & b),
                0x5f => alu64!(X, a, b, a & b),
                0x67 => alu64!(K, a, b, a << (b & 63)),
                0x6f => alu64!(X, a, b, a << (b & 63)),
                0x77 => alu64!(K, a, b, a >> (b & 63)),
                0x7f => alu64!(X, a, b, a >> (b & 63)),
                0x87 => r[d] = r[d].wrapping_neg(),
                0x97 if s.off == 0 => alu64!(K, a, b, a.checked_rem(b).unwrap_or(a)),
                0x9f if s.off == 0 => alu64!(X, a, b, a.checked_rem(b).unwrap_or(a)),
                0x97 => alu64!(K, a, b, smod64(a as i64, b as i64) as u64),
                0x9f => alu64!(X, a, b, smod64(a as i64, b as i64) as u64),
                0xa7 => alu64!(K, a, b, a ^ b),
                0xaf => alu64!(X, a, b, a ^ b),
                0xb7 => r[d] = imm as u64,
                0xbf => {
                    r[d] = match s.off {
                        8 => r[sr] as i8 as i64 as u64,
                        16 => r[sr] as i16 as i64 as u64,
                        32 => r[sr] as i32 as i64 as u64,
                        _ => r[sr],
                    }
                }
                0xc7 => alu64!(K, a, b, ((a as i64) >> (b & 63)) as u64),
                0xcf => alu64!(X, a, b, ((a as i64) >> (b & 63)) as u64),
                0xd7 => r[d] = bswap(r[d], imm),
                // ALU32
                0x04 => alu32!(K, a, b, a.wrapping_add(b)),
                0x0c => alu32!(X, a, b, a.wrapping_add(b)),
                0x14 => alu32!(K, a, b, a.wrapping_sub(b)),
                0x1c => alu32!(X, a, b, a.wrapping_sub(b)),
                0x24 => alu32!(K, a, b, a.wrapping_mul(b)),
                0x2c => alu32!(X, a, b, a.wrapping_mul(b)),
                0x34 if s.off == 0 => alu32!(K, a, b, a.checked_div(b).unwrap_or(0)),
                0x3c if s.off == 0 => alu32!(X, a, b, a.checked_div(b).unwrap_or(0)),
                0x34 => alu32!(K, a, b, sdiv32(a as i32, b as i32) as u32),
                0x3c => alu32!(X, a, b, sdiv32(a as i32, b as i32) as u32),
                0x44 => alu32!(K, a, b, a | b),
                0x4c => alu32!(X, a, b, a | b),
                0x54 => alu32!(K, a, b, a & b),
                0x5c => alu32!(X, a, b, a & b),
                0x64 => alu32!(K, a, b, a << (b & 31)),
                0x6c => alu32!(X, a, b, a << (b & 31)),
                0x74 => alu32!(K, a, b, a >> (b & 31)),
                0x7c => alu32!(X, a, b, a >> (b & 31)),
                0x84 => r[d] = u64::from((r[d] as u32).wrapping_neg()),
                0x94 if s.off == 0 => alu32!(K, a, b, a.checked_rem(b).unwrap_or(a)),
                0x9c if s.off == 0 => alu32!(X, a, b, a.checked_rem(b).unwrap_or(a)),
                0x94 => alu32!(K, a, b, smod32(a as i32, b as i32) as u32),
                0x9c => alu32!(X, a, b, smod32(a as i32, b as i32) as u32),
                0xa4 => alu32!(K, a, b, a ^ b),
                0xac => alu32!(X, a, b, a ^ b),
                0xb4 => r[d] = u64::from(imm as u32),
                0xbc => {
                    r[d] = u64::from(match s.off {
                        8 => r[sr] as i8 as i32 as u32,
                        16 => r[sr] as i16 as i32 as u32,
                        _ => r[sr] as u32,
                    })
                }
                0xc4 => alu32!(K, a, b, ((a as i32) >> (b & 31)) as u32),
                0xcc => alu32!(X, a, b, ((a as i32) >> (b & 31)) as u32),
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
                0x15 => jmp64!(K, a, b, a == b),
                0x1d => jmp64!(X, a, b, a == b),
                0x25 => jmp64!(K, a, b, a > b),
                0x2d => jmp64!(X, a, b, a > b),
                0x35 => jmp64!(K, a, b, a >= b),
                0x3d => jmp64!(X, a, b, a >= b),
                0x45 => jmp64!(K, a, b, a & b != 0),
                0x4d => jmp64!(X, a, b, a & b != 0),
                0x55 => jmp64!(K, a, b, a != b),
                0x5d => jmp64!(X, a, b, a != b),
                0x65 => jmp64!(K, a, b, (a as i64) > (b as i64)),
                0x6d => jmp64!(X, a, b, (a as i64) > (b as i64)),
                0x75 => jmp64!(K, a, b, (a as i64) >= (b as i64)),
                0x7d => jmp64!(X, a, b, (a as i64) >= (b as i64)),
                0xa5 => jmp64!(K, a, b, a < b),
                0xad => jmp64!(X, a, b, a < b),
                0xb5 => jmp64!(K, a, b, a <= b),
                0xbd => jmp64!(X, a, b, a <= b),
                0xc5 => jmp64!(K, a, b, (a as i64) < (b as i64)),
                0xcd => jmp64!(X, a, b, (a as i64) < (b as i64)),
                0xd5 => jmp64!(K, a, b, (a as i64) <= (b as i64)),
                0xdd => jmp64!(X, a, b, (a as i64) <= (b as i64)),
                // JMP32
                0x06 => pc = pc.wrapping_add(imm as isize as usize),
                0x16 => jmp32!(K, a, b, a == b),
                0x1e => jmp32!(X, a, b, a == b),
                0x26 => jmp32!(K, a, b, a > b),
                0x2e => jmp32!(X, a, b, a > b),
                0x36 => jmp32!(K, a, b, a >= b),
                0x3e => jmp32!(X, a, b, a >= b),
                0x46 => jmp32!(K, a, b, a & b != 0),
                0x4e => jmp32!(X, a, b, a & b != 0),
                0x56 => jmp32!(K, a, b, a != b),
                0x5e => jmp32!(X, a, b, a != b),
                0x66 => jmp32!(K, a, b, (a as i32) > (b as i32)),
                0x6e => jmp32!(X, a, b, (a as i32) > (b as i32)),
                0x76 => jmp32!(K, a, b, (a as i32) >= (b as i32)),
                0x7e => jmp32!(X, a, b, (a as i32) >= (b as i32)),
                0xa6 => jmp32!(K, a, b, a < b),
                0xae => jmp32!(X, a, b, a < b),
                0xb6 => jmp32!(K, a, b, a <= b),
                0xbe => jmp32!(X, a, b, a <= b),
                0xc6 => jmp32!(K, a, b, (a as i32) < (b as i32)),
                0xce => jmp32!(X, a, b, (a as i32) < (b as i32)),
                0xd6 => jmp32!(K, a, b, (a as i32) <= (b as i32)),
                0xde => jmp32!(X, a, b, (a as i32) <= (b as i32)),
                // Calls and exit
                0x85 => match s.src {
                    0 => {
                        let Some(h) = helpers.get(imm) else {
                            fault!(VmErrorKind::UnknownHelper { id: imm });
                        };
                        // The one check of the helper's program types and license (the
                        // verifier's refusals).
                        let prog_type = self.prog_types[prog];
                        let gpl = self.gpl_compatible.get(prog).copied().unwrap_or(true);
                        if let Err(error) =
                            helpers.check(h, prog_type).and_then(|()| h.check_license(gpl))
                        {
                            fault!(VmErrorKind::Helper { name: h.proto.name, error });
                        }
                        self.count = count;
                        // Callbacks the helper runs get the next frame.
                        self.depth = base + frames.len() + 1;
                        let mut hc = HelperCtx {
                            world: &mut *world,
                            prog_type,
                            calls: &mut *self,
                            tail_call: None,
                        };
                        let res = (h.func)(&mut hc, [r[1], r[2], r[3], r[4], r[5]]);
                        let tail = hc.tail_call;
                        self.depth = base;
                        count = self.count;
                        match res {
                            Ok(v) => r[0] = v,
                            Err(error) => fault!(VmErrorKind::Helper { name: h.proto.name, error }),
                        }
                        if let Some(target) = tail
                            && self.tail_calls < MAX_TAIL_CALLS
                            && target < codes.len()
                        {
                            // The target replaces the running function: same frame, same r1.
                            self.tail_calls += 1;
                            prog = target;
                            slots = &codes[prog].slots[..];
                            pc = 0;
                        }
                    }
                    1 => {
                        if base + frames.len() + 1 >= MAX_FRAMES {
                            fault!(VmErrorKind::CallDepth { max: MAX_FRAMES });
                        }
                        frames.push(Frame {
                            prog,
                            ret_pc: pc,
                            saved: [r[6], r[7], r[8], r[9]],
                            fp: r[10],
                        });
                        let depth = base + frames.len();
                        world.mem.contents_mut(RegionId::stack(depth)).fill(0);
                        r[10] = frame_pointer(depth);
                        pc = pc.wrapping_add(imm as isize as usize);
                    }
                    _ => {
                        let kfuncs = self.kfuncs;
                        let prog_type = self.prog_types[prog];
                        let gpl = self.gpl_compatible.get(prog).copied().unwrap_or(true);
                        self.count = count;
                        self.depth = base + frames.len() + 1;
                        let mut hc = HelperCtx {
                            world: &mut *world,
                            prog_type,
                            calls: &mut *self,
                            tail_call: None,
                        };
                        let res = kfuncs.call(imm, &mut hc, [r[1], r[2], r[3], r[4], r[5]], gpl);
                        self.depth = base;
                        count = self.count;
                        match res {
                            Ok(v) => r[0] = v,
                            Err(kind) => fault!(kind),
                        }
                    }
                },
                0x95 => match frames.pop() {
                    None => {
                        self.count = count;
                        return Ok(r[0]);
                    }
                    Some(f) => {
                        r[6..10].copy_from_slice(&f.saved);
                        r[10] = f.fp;
                        pc = f.ret_pc;
                        prog = f.prog;
                        slots = &codes[prog].slots[..];
                    }
                },
                // Loads and stores
                0x18 => {
                    r[d] = imm as u64;
                    pc += 1;
                }
                0x61 => r[d] = mem!(mem.load(src_addr!(), 4)),
                0x69 => r[d] = mem!(mem.load(src_addr!(), 2)),
                0x71 => r[d] = mem!(mem.load(src_addr!(), 1)),
                0x79 => r[d] = mem!(mem.load(src_addr!(), 8)),
                0x81 => r[d] = mem!(mem.load(src_addr!(), 4)) as i32 as i64 as u64,
                0x89 => r[d] = mem!(mem.load(src_addr!(), 2)) as i16 as i64 as u64,
                0x91 => r[d] = mem!(mem.load(src_addr!(), 1)) as i8 as i64 as u64,
                0x62 => mem!(mem.store(dst_addr!(), 4, imm as u64)),
                0x6a => mem!(mem.store(dst_addr!(), 2, imm as u64)),
                0x72 => mem!(mem.store(dst_addr!(), 1, imm as u64)),
                0x7a => mem!(mem.store(dst_addr!(), 8, imm as u64)),
                0x63 => mem!(mem.store(dst_addr!(), 4, r[sr])),
                0x6b => mem!(mem.store(dst_addr!(), 2, r[sr])),
                0x73 => mem!(mem.store(dst_addr!(), 1, r[sr])),
                0x7b => mem!(mem.store(dst_addr!(), 8, r[sr])),
                0xc3 => {
                    let addr = dst_addr!();
                    mem!(atomic(mem, &mut r, addr, 4, imm, sr))
                }
                0xdb => {
                    let addr = dst_addr!();
                    mem!(atomic(mem, &mut r, addr, 8, imm, sr))
                }
                // Legacy packet loads: out of bounds ends the program with r0 = 0.
                0x20 | 0x28 | 0x30 | 0x40 | 0x48 | 0x50 => {
                    let len = match s.code & 0x18 {
                        0x00 => 4,
                        0x08 => 2,
                        _ => 1,
                    };
                    // The kernel passes the offset to its load helper as an `int`.
                    let base = if s.code & 0xe0 == 0x40 { r[sr] as u32 } else { 0 };
                    let off = base.wrapping_add(imm as u32) as i32;
                    let Some(packet) = self.packet else {
                        fault!(VmErrorKind::NoLegacyPacketAccess);
                    };
                    match crate::ctx::load_abs(mem, packet, off, len) {
                        Some(v) => r[0] = v,
                        None => {
                            // Out of bounds: the program ends with r0 = 0, as in the kernel.
                            self.count = count;
                            return Ok(0);
                        }
                    }
                }
                SENTINEL if pc == slots.len() => fault!(VmErrorKind::FellOffEnd),
                _ => fault!(VmErrorKind::NotAnInstruction),
            }
        }
    }
}

impl Callbacks for Exec<'_> {
    fn call(&mut self, world: &mut World, addr: u64, args: [u64; 5]) -> Result<u64, VmError> {
        let bad = || VmError::new(0, VmErrorKind::BadCallback { addr });
        let (region, _, off) = world.mem.resolve(addr).ok_or_else(bad)?;
        let prog = self.code_regions.iter().position(|&r| r == region).ok_or_else(bad)?;
        let pc =
            usize::try_from(off).ok().filter(|&pc| self.codes[prog].starts.get(pc) == Some(&true));
        let pc = pc.ok_or_else(bad)?;
        self.run(world, prog, pc, args)
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
