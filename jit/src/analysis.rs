//! What each lowered slot does to control flow, and which code one native function covers.
//! The classification mirrors the interpreter's `match` on the opcode byte exactly: a code the
//! interpreter does not match is [`Class::NotInsn`] here too.

use bpflab_vm::interp::{Code, SENTINEL, Slot};

/// What one slot is, as far as compilation cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    /// An ALU or ALU64 instruction the interpreter implements (no memory, no control flow).
    Alu,
    /// `LD_IMM64`: two slots.
    LdImm64,
    /// A load of `len` bytes (`signed`: LDSX).
    Load { len: u8, signed: bool },
    /// A store of `len` bytes from a register or (`imm`) the immediate.
    Store { len: u8, imm: bool },
    /// An atomic read-modify-write of `len` bytes.
    Atomic { len: u8 },
    /// A legacy packet load (LD_ABS / LD_IND) of `len` bytes.
    LdAbs { len: u8, ind: bool },
    /// `goto` / `gotol` to slot `target`.
    Ja { target: usize },
    /// A conditional jump to slot `target`, else the next slot.
    Cond { target: usize },
    /// A helper or kfunc call (both go through the helper trampoline).
    Helper,
    /// A bpf-to-bpf call of the function at slot `target`.
    Local { target: usize },
    /// `exit`.
    Exit,
    /// The sentinel past the last instruction: falling off the end.
    FellOff,
    /// Not an instruction (the second half of LD_IMM64, an opcode the interpreter rejects).
    NotInsn,
}

/// The slot `pc + 1 + off`, if it lies in `0..n`.
fn rel(pc: usize, off: i64, n: usize) -> Option<usize> {
    let t = (pc as i64).checked_add(1)?.checked_add(off)?;
    usize::try_from(t).ok().filter(|&t| t < n)
}

/// Classifies slot `pc` of `slots` (which end with the sentinel past the last instruction).
pub(crate) fn classify(slots: &[Slot], pc: usize) -> Class {
    let s = slots[pc];
    let n = slots.len();
    // Branch targets were checked when lowering; a target outside the code would be a lowering
    // bug, and is compiled as a fault rather than trusted.
    let jump = |off: i64, f: fn(usize) -> Class| rel(pc, off, n).map_or(Class::NotInsn, f);
    match s.code {
        0x07 | 0x0f | 0x17 | 0x1f | 0x27 | 0x2f | 0x37 | 0x3f | 0x47 | 0x4f | 0x57 | 0x5f
        | 0x67 | 0x6f | 0x77 | 0x7f | 0x87 | 0x97 | 0x9f | 0xa7 | 0xaf | 0xb7 | 0xbf | 0xc7
        | 0xcf | 0xd7 => Class::Alu,
        0x04 | 0x0c | 0x14 | 0x1c | 0x24 | 0x2c | 0x34 | 0x3c | 0x44 | 0x4c | 0x54 | 0x5c
        | 0x64 | 0x6c | 0x74 | 0x7c | 0x84 | 0x94 | 0x9c | 0xa4 | 0xac | 0xb4 | 0xbc | 0xc4
        | 0xcc | 0xd4 | 0xdc => Class::Alu,
        0x05 => jump(i64::from(s.off), |target| Class::Ja { target }),
        0x06 => jump(s.imm, |target| Class::Ja { target }),
        0x15 | 0x1d | 0x25 | 0x2d | 0x35 | 0x3d | 0x45 | 0x4d | 0x55 | 0x5d | 0x65 | 0x6d
        | 0x75 | 0x7d | 0xa5 | 0xad | 0xb5 | 0xbd | 0xc5 | 0xcd | 0xd5 | 0xdd | 0x16 | 0x1e
        | 0x26 | 0x2e | 0x36 | 0x3e | 0x46 | 0x4e | 0x56 | 0x5e | 0x66 | 0x6e | 0x76 | 0x7e
        | 0xa6 | 0xae | 0xb6 | 0xbe | 0xc6 | 0xce | 0xd6 | 0xde => {
            jump(i64::from(s.off), |target| Class::Cond { target })
        }
        0x85 => match s.src {
            1 => jump(s.imm, |target| Class::Local { target }),
            // Helpers, and kfuncs (the trampoline looks them up by BTF id).
            _ => Class::Helper,
        },
        0x95 => Class::Exit,
        0x18 => Class::LdImm64,
        0x61 => Class::Load { len: 4, signed: false },
        0x69 => Class::Load { len: 2, signed: false },
        0x71 => Class::Load { len: 1, signed: false },
        0x79 => Class::Load { len: 8, signed: false },
        0x81 => Class::Load { len: 4, signed: true },
        0x89 => Class::Load { len: 2, signed: true },
        0x91 => Class::Load { len: 1, signed: true },
        0x62 => Class::Store { len: 4, imm: true },
        0x6a => Class::Store { len: 2, imm: true },
        0x72 => Class::Store { len: 1, imm: true },
        0x7a => Class::Store { len: 8, imm: true },
        0x63 => Class::Store { len: 4, imm: false },
        0x6b => Class::Store { len: 2, imm: false },
        0x73 => Class::Store { len: 1, imm: false },
        0x7b => Class::Store { len: 8, imm: false },
        0xc3 => Class::Atomic { len: 4 },
        0xdb => Class::Atomic { len: 8 },
        0x20 | 0x28 | 0x30 | 0x40 | 0x48 | 0x50 => {
            let len = match s.code & 0x18 {
                0x00 => 4,
                0x08 => 2,
                _ => 1,
            };
            Class::LdAbs { len, ind: s.code & 0xe0 == 0x40 }
        }
        SENTINEL if pc + 1 == n => Class::FellOff,
        _ => Class::NotInsn,
    }
}

/// The slot after `pc` on the fall-through path, if any.
pub(crate) fn fallthrough(class: Class, pc: usize) -> Option<usize> {
    match class {
        Class::LdImm64 => Some(pc + 2),
        Class::Alu
        | Class::Load { .. }
        | Class::Store { .. }
        | Class::Atomic { .. }
        | Class::LdAbs { .. }
        | Class::Cond { .. }
        | Class::Helper
        | Class::Local { .. } => Some(pc + 1),
        Class::Ja { .. } | Class::Exit | Class::FellOff | Class::NotInsn => None,
    }
}

/// True when the slot writes register 10 (or might: atomics through any source register).
fn writes_r10(s: &Slot, class: Class) -> bool {
    match class {
        Class::Alu | Class::LdImm64 | Class::Load { .. } => s.dst & 15 == 10,
        Class::Atomic { .. } => s.src & 15 == 10,
        _ => false,
    }
}

/// The code one native function covers: everything reachable from `entry` by jumps and
/// fall-through (calls are other functions).
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    /// The program.
    pub prog: usize,
    /// The entry slot.
    pub entry: usize,
    /// Slots that start a basic block, among the reachable ones.
    pub leaders: Vec<bool>,
    /// Reachable instruction slots.
    pub reachable: Vec<bool>,
    /// Targets of the bpf-to-bpf calls in the covered code.
    pub calls: Vec<usize>,
    /// Values of the covered LD_IMM64 instructions (possible callback addresses).
    pub constants: Vec<u64>,
    /// The covered code writes r10.
    pub writes_r10: bool,
    /// Number of registers the code names (11, or 16 when registers 11..15 appear).
    pub nregs: usize,
    /// Instructions of the covered code (an upper bound on those one call executes when the
    /// code is acyclic and calls nothing).
    pub insns: u64,
    /// The covered code has no cycle and no helper or bpf-to-bpf call: one call executes at
    /// most `insns` instructions.
    pub bounded: bool,
    /// Compile the budget checks even when `bounded` (the variant run near the budget's end).
    pub force_checks: bool,
}

impl Plan {
    /// Explores the code reachable from `entry` in `code`.
    pub(crate) fn new(code: &Code, prog: usize, entry: usize) -> Plan {
        let slots = code.slots();
        let n = slots.len();
        let mut plan = Plan {
            prog,
            entry,
            leaders: vec![false; n],
            reachable: vec![false; n],
            calls: Vec::new(),
            constants: Vec::new(),
            writes_r10: false,
            nregs: 11,
            insns: 0,
            bounded: false,
            force_checks: false,
        };
        plan.leaders[entry] = true;
        let mut work = vec![entry];
        while let Some(start) = work.pop() {
            let mut pc = start;
            while !plan.reachable[pc] {
                plan.reachable[pc] = true;
                let s = &slots[pc];
                let class = classify(slots, pc);
                if s.dst > 10 || s.src > 10 {
                    plan.nregs = 16;
                }
                plan.writes_r10 |= writes_r10(s, class);
                match class {
                    Class::Ja { target } | Class::Cond { target } => {
                        plan.leaders[target] = true;
                        work.push(target);
                    }
                    Class::Local { target } => plan.calls.push(target),
                    Class::LdImm64 => plan.constants.push(s.imm as u64),
                    _ => {}
                }
                let Some(next) = fallthrough(class, pc) else { break };
                if next >= n {
                    break;
                }
                if matches!(class, Class::Cond { .. }) {
                    plan.leaders[next] = true;
                }
                pc = next;
            }
        }
        plan.calls.sort_unstable();
        plan.calls.dedup();
        plan.insns =
            (0..n).filter(|&pc| plan.reachable[pc] && code.starts_instruction(pc)).count() as u64;
        plan.bounded = plan.calls_nothing(slots) && plan.acyclic(slots);
        plan
    }

    /// No helper or bpf-to-bpf call in the covered code.
    fn calls_nothing(&self, slots: &[Slot]) -> bool {
        (0..slots.len())
            .filter(|&pc| self.reachable[pc])
            .all(|pc| !matches!(classify(slots, pc), Class::Helper | Class::Local { .. }))
    }

    /// No cycle in the covered code's control flow.
    fn acyclic(&self, slots: &[Slot]) -> bool {
        let n = slots.len();
        let succ = |pc: usize| {
            let class = classify(slots, pc);
            let branch = match class {
                Class::Ja { target } | Class::Cond { target } => Some(target),
                _ => None,
            };
            [fallthrough(class, pc).filter(|&t| t < n), branch]
        };
        // Iterative depth-first search: 0 unseen, 1 on the stack, 2 done.
        let mut state = vec![0u8; n];
        let mut stack: Vec<(usize, usize)> = vec![(self.entry, 0)];
        state[self.entry] = 1;
        while let Some(&mut (pc, ref mut k)) = stack.last_mut() {
            let next = succ(pc);
            if *k < next.len() {
                let t = next[*k];
                *k += 1;
                if let Some(t) = t {
                    match state[t] {
                        0 => {
                            state[t] = 1;
                            stack.push((t, 0));
                        }
                        1 => return false,
                        _ => {}
                    }
                }
            } else {
                state[pc] = 2;
                stack.pop();
            }
        }
        true
    }
}

/// How many bytes below the frame pointer this code's stack accesses can reach, or the whole
/// stack when `r10` escapes (copied, compared, written, stored, passed on): only those bytes
/// need zeroing when a frame starts, since nothing else can read the rest.
pub(crate) fn stack_extent(slots: &[Slot], stack_size: usize) -> usize {
    let mut extent = 0usize;
    for pc in 0..slots.len() {
        let s = slots[pc];
        let (dst, src) = (s.dst & 15, s.src & 15);
        let reg_src = s.code & 0x08 != 0;
        let escapes = match classify(slots, pc) {
            // Every ALU form reads and writes dst; the X forms and the moves read src.
            Class::Alu => dst == 10 || (src == 10 && (reg_src || matches!(s.code, 0xbf | 0xbc))),
            Class::LdImm64 => dst == 10,
            Class::Load { .. } => dst == 10,
            Class::Store { imm, .. } => !imm && src == 10,
            Class::Atomic { .. } => src == 10,
            Class::Cond { .. } => dst == 10 || (reg_src && src == 10),
            Class::LdAbs { ind, .. } => ind && src == 10,
            _ => false,
        };
        if escapes {
            return stack_size;
        }
        let base = match classify(slots, pc) {
            Class::Load { .. } => src,
            Class::Store { .. } | Class::Atomic { .. } => dst,
            _ => continue,
        };
        if base == 10 && s.off < 0 {
            extent = extent.max(usize::from(s.off.unsigned_abs()));
        }
    }
    extent.min(stack_size)
}
