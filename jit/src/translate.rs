//! Translation of one native function (the code reachable from one entry) to Cranelift IR.
//! Every arm mirrors the interpreter's `match` in `bpflab_vm::interp::exec`.

use std::collections::HashSet;

use bpflab_vm::interp::{Code, Slot};
use bpflab_vm::memory::{MAX_FRAMES, STACK_SIZE};
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::{I8, I16, I32, I64};
use cranelift_codegen::ir::{
    AbiParam, AliasRegion, AliasRegionData, AtomicRmwOp, Block, BlockArg, Endianness, Function,
    InstBuilder, MemFlagsData, SigRef, Signature, Type, Value,
};
use cranelift_codegen::isa::{CallConv, TargetFrontendConfig};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Variable};

use crate::Mode;
use crate::analysis::{Class, Plan, classify, fallthrough};
use crate::runtime::{self, BIAS, entry, off};

/// What translation needs to know about the collection.
pub(crate) struct Env<'a> {
    /// Every program's lowered code.
    pub(crate) codes: &'a [Code],
    /// Checked or trusted accesses.
    pub(crate) mode: Mode,
    /// The instruction budget.
    pub(crate) budget: u64,
    /// Registers passed between functions.
    pub(crate) nregs: usize,
    /// Some code of the collection writes r10.
    pub(crate) any_writes_r10: bool,
    /// Bytes below the frame pointer a new frame zeroes (0: no code accesses the stack).
    pub(crate) stack_zero: usize,
    /// Every bpf-to-bpf call target of the collection, as (program, slot).
    pub(crate) local_targets: &'a HashSet<(usize, usize)>,
    /// Program entries pass r0..r5 back on exit: a tail call from a bpf-to-bpf callee can
    /// reach them (some code has both calls and helper calls).
    pub(crate) tail_full_exit: bool,
    /// The host's calling convention (compiled functions and the Rust functions they call).
    pub(crate) call_conv: CallConv,
    /// The host's pointer width and such.
    pub(crate) frontend: TargetFrontendConfig,
}

/// How a memory access uses memory.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    Write,
    Atomic,
}

/// One memory instruction's operation.
#[derive(Clone, Copy)]
enum MemOp {
    Load { signed: bool },
    Store { value: Value },
    Atomic { op: i64, src: Value, r0: Value },
}

/// Alias regions: the three kinds of memory compiled code touches never overlap, so Cranelift
/// may keep table entries in registers across the program's own stores.
#[derive(Clone, Copy)]
struct Regions {
    table: AliasRegion,
    state: AliasRegion,
    bpf: AliasRegion,
}

/// Signatures of the functions compiled code calls.
struct Sigs {
    func: SigRef,
    helper: SigRef,
    load: SigRef,
    store: SigRef,
    atomic: SigRef,
    zero: SigRef,
    raise: SigRef,
    budget: SigRef,
    ld_abs: SigRef,
    variant: SigRef,
}

/// Flags of accesses to the run state and the region table (aligned, never trapping).
fn vm_flags() -> MemFlagsData {
    MemFlagsData::trusted()
}

/// Flags of region-table entry loads: also read-only, so that Cranelift shares them between
/// accesses through the same pointer. Sound because every point where Rust may rewrite or
/// move the table (helper calls, bpf-to-bpf calls) reloads the table pointer, giving entry
/// addresses new SSA values; slow paths rewrite an entry in place but never make a loaded
/// value wrong, only stale-but-safe (a zero limit sends the access to Rust again).
fn table_flags() -> MemFlagsData {
    MemFlagsData::trusted().with_readonly()
}

/// Flags of the program's own accesses (little-endian, possibly unaligned, checked before).
fn mem_flags() -> MemFlagsData {
    MemFlagsData::new().with_notrap().with_endianness(Endianness::Little)
}

/// Translates the function `plan` describes into `func` (whose signature is set).
/// `index` gives the function index of a bpf-to-bpf call target.
pub(crate) fn translate(
    env: &Env<'_>,
    plan: &Plan,
    func: &mut Function,
    fctx: &mut FunctionBuilderContext,
    index: &dyn Fn(usize, usize) -> Option<usize>,
) {
    let mut b = FunctionBuilder::new(func, fctx);
    let entry_block = b.create_block();
    b.append_block_params_for_function_params(entry_block);
    b.switch_to_block(entry_block);
    let state = b.block_params(entry_block)[0];
    let depth = b.block_params(entry_block)[1];
    let sigs = Sigs {
        func: sig(&mut b, env.call_conv, 2),
        helper: sig(&mut b, env.call_conv, 5),
        load: sig(&mut b, env.call_conv, 4),
        store: sig(&mut b, env.call_conv, 5),
        atomic: sig(&mut b, env.call_conv, 7),
        zero: sig(&mut b, env.call_conv, 2),
        raise: sig(&mut b, env.call_conv, 4),
        budget: sig(&mut b, env.call_conv, 4),
        ld_abs: sig(&mut b, env.call_conv, 3),
        variant: {
            let mut s = Signature::new(env.call_conv);
            s.params.extend((0..3).map(|_| AbiParam::new(I64)));
            s.returns.push(AbiParam::new(I64));
            b.import_signature(s)
        },
    };
    let mut region = |user_id: u32, description: &'static str| {
        b.func
            .dfg
            .alias_regions
            .insert(AliasRegionData { user_id, description: description.into() })
    };
    let regions = Regions {
        table: region(1, "region table"),
        state: region(2, "run state"),
        bpf: region(3, "program memory"),
    };
    let r: [Variable; 16] = std::array::from_fn(|_| b.declare_var(I64));
    let count = b.declare_var(I64);
    let table = b.declare_var(I64);
    let mask = b.declare_var(I64);
    let stack = b.declare_var(I64);
    let slots = env.codes[plan.prog].slots();
    let blocks = (0..slots.len())
        .map(|pc| (plan.leaders[pc] && plan.reachable[pc]).then(|| b.create_block()))
        .collect();
    // r10 is the frame pointer throughout unless the code writes it, or the function is a
    // program entry (a tail-call target) and some code could pass a different r10 along.
    // Without stack accesses (`stack_zero == 0`) the run never validates the stack's entry.
    let stack_fast =
        env.stack_zero > 0 && !plan.writes_r10 && !(plan.entry == 0 && env.any_writes_r10);
    let full_exit = env.local_targets.contains(&(plan.prog, plan.entry))
        || (plan.entry == 0 && env.tail_full_exit);
    let reads = reads(slots, plan, full_exit);
    // A bounded function entered with room for all its instructions cannot exhaust the
    // budget: it only counts. Entered closer to the end, it runs a variant with the checks.
    let unchecked = plan.bounded && !plan.force_checks && plan.insns <= env.budget;
    let mut t = T {
        b,
        env,
        plan,
        slots,
        index,
        state,
        depth,
        r,
        count,
        table,
        mask,
        stack,
        stack_fast,
        blocks,
        sigs,
        regions,
        full_exit,
        reads,
        unchecked,
        ret: None,
        exit0: None,
        budget_fail: None,
    };
    t.prologue();
    for pc in 0..slots.len() {
        if t.blocks[pc].is_some() {
            t.block(pc);
        }
    }
    t.finish();
}

/// Which registers are live at the entry of the function covered by `plan` (read on some
/// path before being written); the others need not be loaded. Calls and tail calls pass
/// every register on, so they read all of them.
fn reads(slots: &[Slot], plan: &Plan, full_exit: bool) -> [bool; 16] {
    const ALL: u16 = u16::MAX;
    let bit = |r: u8| 1u16 << (r & 15);
    // (uses, defs, successors) of each reachable slot.
    let facts = |pc: usize| -> (u16, u16) {
        let s = slots[pc];
        let (d, sr) = (bit(s.dst), bit(s.src));
        let x = s.code & 0x08 != 0;
        match classify(slots, pc) {
            Class::Alu => match s.code {
                0xb7 | 0xb4 => (0, d),
                0xbf | 0xbc => (sr, d),
                _ => (d | if x { sr } else { 0 }, d),
            },
            Class::LdImm64 => (0, d),
            Class::Load { .. } => (sr, d),
            Class::Store { imm, .. } => (d | if imm { 0 } else { sr }, 0),
            Class::Atomic { .. } => (d | sr | 1, 0),
            Class::LdAbs { ind, .. } => (if ind { sr } else { 0 }, 1),
            Class::Cond { .. } => (d | if x { sr } else { 0 }, 0),
            Class::Helper | Class::Local { .. } => (ALL, 0),
            Class::Exit => (if full_exit { 0x3f } else { 1 } | 0xf800, 0),
            Class::Ja { .. } | Class::FellOff | Class::NotInsn => (0, 0),
        }
    };
    let n = slots.len();
    let mut live_in = vec![0u16; n];
    let mut changed = true;
    while changed {
        changed = false;
        for pc in (0..n).rev() {
            if !plan.reachable[pc] {
                continue;
            }
            let class = classify(slots, pc);
            let mut out = 0u16;
            if let Some(next) = fallthrough(class, pc).filter(|&t| t < n) {
                out |= live_in[next];
            }
            if let Class::Ja { target } | Class::Cond { target } = class {
                out |= live_in[target];
            }
            let (uses, defs) = facts(pc);
            let v = uses | (out & !defs);
            if v != live_in[pc] {
                live_in[pc] = v;
                changed = true;
            }
        }
    }
    let live = live_in[plan.entry];
    std::array::from_fn(|i| live & (1 << i) != 0)
}

/// A signature `(i64 * params) -> i32`.
fn sig(b: &mut FunctionBuilder<'_>, cc: CallConv, params: usize) -> SigRef {
    let mut s = Signature::new(cc);
    s.params.extend((0..params).map(|_| AbiParam::new(I64)));
    s.returns.push(AbiParam::new(I32));
    b.import_signature(s)
}

struct T<'e, 'f> {
    b: FunctionBuilder<'f>,
    env: &'e Env<'e>,
    plan: &'e Plan,
    slots: &'e [Slot],
    index: &'e dyn Fn(usize, usize) -> Option<usize>,
    state: Value,
    depth: Value,
    r: [Variable; 16],
    count: Variable,
    table: Variable,
    /// The region table's index mask (see `runtime::RunState::mask`).
    mask: Variable,
    stack: Variable,
    stack_fast: bool,
    blocks: Vec<Option<Block>>,
    sigs: Sigs,
    regions: Regions,
    /// `exit` passes r0..r5 back (a bpf-to-bpf call's caller reads them), not just r0.
    full_exit: bool,
    /// Registers the function reads (the others need not be loaded at entry).
    reads: [bool; 16],
    /// The budget cannot run out inside this function (checked once at entry).
    unchecked: bool,
    /// `(status)`: returns the status as it is (a callee's count is already stored).
    ret: Option<Block>,
    /// Stores the count and returns [`runtime::EXIT_ZERO`].
    exit0: Option<Block>,
    /// `(segment pc, count)`: the budget runs out in that segment.
    budget_fail: Option<Block>,
}

impl T<'_, '_> {
    // ---- small helpers ----

    fn iconst(&mut self, v: i64) -> Value {
        self.b.ins().iconst(I64, v)
    }

    /// A constant of type `ty` (I32 constants are stored zero-extended).
    fn iconst_ty(&mut self, ty: Type, v: i64) -> Value {
        if ty == I32 { self.b.ins().iconst(I32, i64::from(v as u32)) } else { self.iconst(v) }
    }

    fn get(&mut self, reg: u8) -> Value {
        self.b.use_var(self.r[usize::from(reg & 15)])
    }

    fn set(&mut self, reg: u8, v: Value) {
        self.b.def_var(self.r[usize::from(reg & 15)], v);
    }

    /// Sets a register to a 32-bit result, zero-extended.
    fn set32(&mut self, reg: u8, v: Value) {
        let v = self.b.ins().uextend(I64, v);
        self.set(reg, v);
    }

    fn state_load(&mut self, offset: i32) -> Value {
        let f = vm_flags().with_alias_region(Some(self.regions.state));
        self.b.ins().load(I64, f, self.state, offset)
    }

    fn state_store(&mut self, v: Value, offset: i32) {
        let f = vm_flags().with_alias_region(Some(self.regions.state));
        self.b.ins().store(f, v, self.state, offset);
    }

    /// Calls the Rust function at `f` (whose signature is `sig`).
    fn call(&mut self, sig: SigRef, f: *const (), args: &[Value]) -> Value {
        let callee = self.iconst(f as usize as i64);
        let inst = self.b.ins().call_indirect(sig, callee, args);
        self.b.inst_results(inst)[0]
    }

    fn ret_block(&mut self) -> Block {
        *self.ret.get_or_insert_with(|| {
            let blk = self.b.create_block();
            self.b.append_block_param(blk, I32);
            self.b.set_cold_block(blk);
            blk
        })
    }

    /// Continues in a new block if `status` is 0, else returns it.
    fn check_status(&mut self, status: Value) {
        let ret = self.ret_block();
        let ok = self.b.create_block();
        self.b.ins().brif(status, ret, &[BlockArg::Value(status)], ok, &[]);
        self.b.switch_to_block(ok);
    }

    /// Returns a fault status from a Rust function (the count does not matter after a fault).
    fn return_status(&mut self, status: Value) {
        self.b.ins().return_(&[status]);
        // Code after a terminator goes to an unreachable block.
        let dead = self.b.create_block();
        self.b.switch_to_block(dead);
    }

    fn store_regs(&mut self, skip_r10: bool) {
        for i in 0..self.env.nregs {
            if skip_r10 && i == 10 {
                continue;
            }
            let v = self.b.use_var(self.r[i]);
            self.state_store(v, off::REGS + 8 * i as i32);
        }
    }

    fn load_reg(&mut self, i: usize) {
        let v = self.state_load(off::REGS + 8 * i as i32);
        self.b.def_var(self.r[i], v);
    }

    fn store_count(&mut self) {
        let c = self.b.use_var(self.count);
        self.state_store(c, off::COUNT);
    }

    fn load_count(&mut self) {
        let c = self.state_load(off::COUNT);
        self.b.def_var(self.count, c);
    }

    /// Reloads the region table (and the stack's host address) after Rust code ran.
    fn reload_table(&mut self) {
        let table = self.state_load(off::TABLE);
        self.b.def_var(self.table, table);
        let n = self.state_load(off::MASK);
        self.b.def_var(self.mask, n);
        if self.stack_fast {
            // Frame `depth`'s stack is region `depth`, at entry `depth + 1`.
            let e = self.b.ins().iadd_imm_s(self.depth, 1);
            let e = self.b.ins().ishl_imm_s(e, entry::SHIFT);
            let e = self.b.ins().iadd(table, e);
            let t = table_flags().with_alias_region(Some(self.regions.table));
            let base = self.b.ins().load(I64, t, e, entry::BASE);
            self.b.def_var(self.stack, base);
        }
    }

    fn prologue(&mut self) {
        for i in 0..16 {
            if i < self.env.nregs && self.reads[i] {
                self.load_reg(i);
            } else {
                // Never read: its value cannot matter.
                let z = self.iconst(0);
                self.b.def_var(self.r[i], z);
            }
        }
        self.load_count();
        self.reload_table();
        if self.unchecked {
            self.guard();
        }
        let first = self.blocks[self.plan.entry].expect("the entry is a block");
        self.b.ins().jump(first, &[]);
    }

    /// The entry check of an unchecked function: with less room than it has instructions,
    /// the variant with the checks runs instead (compiled by Rust on first use).
    fn guard(&mut self) {
        let count = self.b.use_var(self.count);
        let room = self.env.budget - self.plan.insns;
        let over = self.b.ins().icmp_imm_s(IntCC::UnsignedGreaterThan, count, room as i64);
        let variant = self.b.create_block();
        let cont = self.b.create_block();
        self.b.set_cold_block(variant);
        self.b.ins().brif(over, variant, &[], cont, &[]);
        self.b.switch_to_block(variant);
        let prog = self.iconst(self.plan.prog as i64);
        let entry = self.iconst(self.plan.entry as i64);
        let callee = self.iconst(runtime::checked_variant as *const () as usize as i64);
        let inst =
            self.b.ins().call_indirect(self.sigs.variant, callee, &[self.state, prog, entry]);
        let f = self.b.inst_results(inst)[0];
        let call = self.b.create_block();
        let failed = self.b.create_block();
        self.b.set_cold_block(call);
        self.b.set_cold_block(failed);
        self.b.ins().brif(f, call, &[], failed, &[]);
        self.b.switch_to_block(failed);
        let st = self.b.ins().iconst(I32, i64::from(runtime::FAULT));
        self.b.ins().return_(&[st]);
        self.b.switch_to_block(call);
        let inst = self.b.ins().call_indirect(self.sigs.func, f, &[self.state, self.depth]);
        let st = self.b.inst_results(inst)[0];
        self.b.ins().return_(&[st]);
        self.b.switch_to_block(cont);
    }

    fn finish(mut self) {
        if let Some(blk) = self.ret {
            self.b.switch_to_block(blk);
            let status = self.b.block_params(blk)[0];
            self.b.ins().return_(&[status]);
        }
        if let Some(blk) = self.exit0 {
            self.b.switch_to_block(blk);
            self.store_count();
            let st = self.b.ins().iconst(I32, i64::from(runtime::EXIT_ZERO));
            self.b.ins().return_(&[st]);
        }
        if let Some(blk) = self.budget_fail {
            self.b.switch_to_block(blk);
            let seg_pc = self.b.block_params(blk)[0];
            let count = self.b.block_params(blk)[1];
            let budget = self.iconst(self.env.budget as i64);
            let k = self.b.ins().isub(budget, count);
            let prog = self.iconst(self.plan.prog as i64);
            let st = self.call(
                self.sigs.budget,
                runtime::budget_exhausted as *const (),
                &[self.state, prog, seg_pc, k],
            );
            self.b.ins().return_(&[st]);
        }
        self.b.seal_all_blocks();
        self.b.finalize(self.env.frontend);
    }

    // ---- blocks and the budget ----

    /// Whether a memory access through `base + off` of `len` bytes is a stack access through
    /// the untouched frame pointer, and if so whether it is valid (known at compile time).
    fn static_stack(&self, base: u8, off: i16, len: u8) -> Option<bool> {
        if !self.stack_fast || base & 15 != 10 {
            return None;
        }
        let o = STACK_SIZE as i64 + i64::from(off);
        let len = i64::from(len);
        Some(o >= 0 && o + len <= STACK_SIZE as i64 && o % len == 0)
    }

    /// Whether the instruction's effect would be visible if the budget ran out right after
    /// it: then it ends its counting segment.
    fn visible(&self, pc: usize, class: Class) -> bool {
        let s = self.slots[pc];
        match class {
            Class::Load { len, .. } => match self.static_stack(s.src, s.off, len) {
                Some(valid) => !valid,
                None => self.env.mode == Mode::Checked,
            },
            // Stores to the frame's own stack are not visible after a fault.
            Class::Store { len, .. } | Class::Atomic { len } => {
                self.static_stack(s.dst, s.off, len) != Some(true)
            }
            Class::LdAbs { .. } | Class::Helper | Class::Local { .. } => true,
            _ => false,
        }
    }

    /// Counts `n` instructions starting at slot `seg_pc`; faults if that exceeds the budget.
    fn charge(&mut self, seg_pc: usize, n: u64) {
        let budget = self.env.budget;
        let count = self.b.use_var(self.count);
        if self.unchecked {
            let count = self.b.ins().iadd_imm_s(count, n as i64);
            self.b.def_var(self.count, count);
            return;
        }
        let fail = *self.budget_fail.get_or_insert_with(|| {
            let blk = self.b.create_block();
            self.b.append_block_param(blk, I64);
            self.b.append_block_param(blk, I64);
            self.b.set_cold_block(blk);
            blk
        });
        // A stub per segment keeps the fault's arguments off the hot path.
        let stub = self.b.create_block();
        self.b.set_cold_block(stub);
        if n > budget {
            self.b.ins().jump(stub, &[]);
        } else {
            let over =
                self.b.ins().icmp_imm_s(IntCC::UnsignedGreaterThan, count, (budget - n) as i64);
            let cont = self.b.create_block();
            self.b.ins().brif(over, stub, &[], cont, &[]);
            self.b.switch_to_block(stub);
            let pcv = self.iconst(seg_pc as i64);
            self.b.ins().jump(fail, &[BlockArg::Value(pcv), BlockArg::Value(count)]);
            self.b.switch_to_block(cont);
        }
        if n > budget {
            self.b.switch_to_block(stub);
            let pcv = self.iconst(seg_pc as i64);
            self.b.ins().jump(fail, &[BlockArg::Value(pcv), BlockArg::Value(count)]);
            let dead = self.b.create_block();
            self.b.switch_to_block(dead);
        }
        let count = self.b.ins().iadd_imm_s(count, n as i64);
        self.b.def_var(self.count, count);
    }

    /// Translates the basic block starting at slot `start`.
    fn block(&mut self, start: usize) {
        let blk = self.blocks[start].expect("leader");
        self.b.switch_to_block(blk);
        let mut insns: Vec<(usize, Class)> = Vec::new();
        let mut next_leader = None;
        let mut pc = start;
        loop {
            let class = classify(self.slots, pc);
            insns.push((pc, class));
            if matches!(class, Class::Cond { .. }) {
                break;
            }
            match fallthrough(class, pc) {
                Some(next) if next < self.slots.len() => {
                    if self.blocks[next].is_some() {
                        next_leader = Some(next);
                        break;
                    }
                    pc = next;
                }
                _ => break,
            }
        }
        let mut seg_start = true;
        for i in 0..insns.len() {
            let (pc, class) = insns[i];
            if seg_start {
                let mut n = 0;
                for &(p, c) in &insns[i..] {
                    n += 1;
                    if self.visible(p, c) {
                        break;
                    }
                }
                self.charge(pc, n);
            }
            seg_start = self.visible(pc, class);
            self.insn(pc, class);
        }
        if let Some(next) = next_leader {
            let target = self.blocks[next].expect("leader");
            self.b.ins().jump(target, &[]);
        }
    }

    // ---- instructions ----

    fn insn(&mut self, pc: usize, class: Class) {
        let s = self.slots[pc];
        match class {
            Class::Alu => self.alu(s),
            Class::LdImm64 => {
                let v = self.iconst(s.imm);
                self.set(s.dst, v);
            }
            Class::Load { len, signed } => {
                let v = self.mem(pc, s.src, s.off, len, MemOp::Load { signed });
                self.set(s.dst, v.expect("a load has a value"));
            }
            Class::Store { len, imm } => {
                let value = if imm { self.iconst(s.imm) } else { self.get(s.src) };
                self.mem(pc, s.dst, s.off, len, MemOp::Store { value });
            }
            Class::Atomic { len } => {
                let src = self.get(s.src);
                let r0 = self.get(0);
                let old = self.mem(pc, s.dst, s.off, len, MemOp::Atomic { op: s.imm, src, r0 });
                let old = old.expect("an atomic has a value");
                match s.imm {
                    0x00 | 0x40 | 0x50 | 0xa0 => {}
                    0x01 | 0x41 | 0x51 | 0xa1 | 0xe1 => self.set(s.src, old),
                    _ => self.set(0, old),
                }
            }
            Class::LdAbs { len, ind } => self.ld_abs(s, len, ind),
            Class::Ja { target } => {
                let (blk, exit) = self.branch_target(target);
                self.b.ins().jump(blk, &[]);
                self.exit_copy(exit);
            }
            Class::Cond { target } => {
                let c = self.cond(s);
                let (blk, exit) = self.branch_target(target);
                let next = self.blocks[pc + 1].expect("the slot after a branch is a leader");
                self.b.ins().brif(c, blk, &[], next, &[]);
                self.exit_copy(exit);
            }
            Class::Helper => self.helper(pc, s),
            Class::Local { target } => self.local_call(pc, target),
            Class::Exit => self.exit(),
            Class::FellOff => self.raise(runtime::RAISE_FELL_OFF, pc, 0),
            Class::NotInsn => self.raise(runtime::RAISE_NOT_INSN, pc, 0),
        }
    }

    /// Returns to the caller: r0 (r0..r5 for bpf-to-bpf callees) and the count.
    fn exit(&mut self) {
        // The caller keeps its own r6..r10; a bpf-to-bpf caller takes r0..r5 (and r11..r15,
        // which no real code names) from the callee. Runs and callbacks only take r0.
        let n = if self.full_exit { 6 } else { 1 };
        for i in (0..n).chain(11..self.env.nregs) {
            let v = self.b.use_var(self.r[i]);
            self.state_store(v, off::REGS + 8 * i as i32);
        }
        self.store_count();
        let ok = self.b.ins().iconst(I32, i64::from(runtime::OK));
        self.b.ins().return_(&[ok]);
    }

    /// The block a branch to slot `target` goes to. A target that is just `exit` gets a copy
    /// of its own (returned second, to fill with [`T::exit_copy`] once the branch is
    /// emitted), so that the paths to a shared `exit` do not merge their registers and
    /// counts into block arguments.
    fn branch_target(&mut self, target: usize) -> (Block, Option<(Block, usize)>) {
        if classify(self.slots, target) == Class::Exit {
            let blk = self.b.create_block();
            (blk, Some((blk, target)))
        } else {
            (self.blocks[target].expect("jump target is a leader"), None)
        }
    }

    /// Fills the copy of the `exit` at slot `pc` that [`T::branch_target`] made.
    fn exit_copy(&mut self, copy: Option<(Block, usize)>) {
        if let Some((blk, pc)) = copy {
            self.b.switch_to_block(blk);
            self.charge(pc, 1);
            self.exit();
        }
    }

    fn raise(&mut self, kind: u64, pc: usize, arg: i64) {
        let kind = self.iconst(kind as i64);
        let pcv = self.iconst(pc as i64);
        let arg = self.iconst(arg);
        let st =
            self.call(self.sigs.raise, runtime::raise as *const (), &[self.state, kind, pcv, arg]);
        self.return_status(st);
    }

    /// The second operand of a 64-bit operation: `src` or the sign-extended immediate.
    fn src64(&mut self, s: Slot) -> Value {
        if s.code & 0x08 != 0 { self.get(s.src) } else { self.iconst(s.imm) }
    }

    /// The second operand of a 32-bit operation.
    fn src32(&mut self, s: Slot) -> Value {
        if s.code & 0x08 != 0 {
            let v = self.get(s.src);
            self.b.ins().ireduce(I32, v)
        } else {
            self.iconst_ty(I32, s.imm)
        }
    }

    fn dst32(&mut self, s: Slot) -> Value {
        let v = self.get(s.dst);
        self.b.ins().ireduce(I32, v)
    }

    fn alu(&mut self, s: Slot) {
        let signed = s.off != 0;
        match s.code {
            // ALU64
            0x07 | 0x0f => self.bin64(s, |b, x, y| b.ins().iadd(x, y)),
            0x17 | 0x1f => self.bin64(s, |b, x, y| b.ins().isub(x, y)),
            0x27 | 0x2f => self.bin64(s, |b, x, y| b.ins().imul(x, y)),
            0x37 | 0x3f => self.div(s, I64, signed, false),
            0x47 | 0x4f => self.bin64(s, |b, x, y| b.ins().bor(x, y)),
            0x57 | 0x5f => self.bin64(s, |b, x, y| b.ins().band(x, y)),
            0x67 | 0x6f => self.shift(s, I64, |b, x, y| b.ins().ishl(x, y)),
            0x77 | 0x7f => self.shift(s, I64, |b, x, y| b.ins().ushr(x, y)),
            0x87 => {
                let a = self.get(s.dst);
                let v = self.b.ins().ineg(a);
                self.set(s.dst, v);
            }
            0x97 | 0x9f => self.div(s, I64, signed, true),
            0xa7 | 0xaf => self.bin64(s, |b, x, y| b.ins().bxor(x, y)),
            0xb7 => {
                let v = self.iconst(s.imm);
                self.set(s.dst, v);
            }
            0xbf => {
                let v = self.get(s.src);
                let v = match s.off {
                    8 => self.sext(v, I8, I64),
                    16 => self.sext(v, I16, I64),
                    32 => self.sext(v, I32, I64),
                    _ => v,
                };
                self.set(s.dst, v);
            }
            0xc7 | 0xcf => self.shift(s, I64, |b, x, y| b.ins().sshr(x, y)),
            0xd7 => self.bswap(s),
            // ALU32
            0x04 | 0x0c => self.bin32(s, |b, x, y| b.ins().iadd(x, y)),
            0x14 | 0x1c => self.bin32(s, |b, x, y| b.ins().isub(x, y)),
            0x24 | 0x2c => self.bin32(s, |b, x, y| b.ins().imul(x, y)),
            0x34 | 0x3c => self.div(s, I32, signed, false),
            0x44 | 0x4c => self.bin32(s, |b, x, y| b.ins().bor(x, y)),
            0x54 | 0x5c => self.bin32(s, |b, x, y| b.ins().band(x, y)),
            0x64 | 0x6c => self.shift(s, I32, |b, x, y| b.ins().ishl(x, y)),
            0x74 | 0x7c => self.shift(s, I32, |b, x, y| b.ins().ushr(x, y)),
            0x84 => {
                let a = self.dst32(s);
                let v = self.b.ins().ineg(a);
                self.set32(s.dst, v);
            }
            0x94 | 0x9c => self.div(s, I32, signed, true),
            0xa4 | 0xac => self.bin32(s, |b, x, y| b.ins().bxor(x, y)),
            0xb4 => {
                let v = self.iconst(i64::from(s.imm as u32));
                self.set(s.dst, v);
            }
            0xbc => {
                let v = self.get(s.src);
                let v = match s.off {
                    8 => self.sext(v, I8, I32),
                    16 => self.sext(v, I16, I32),
                    _ => self.b.ins().ireduce(I32, v),
                };
                self.set32(s.dst, v);
            }
            0xc4 | 0xcc => self.shift(s, I32, |b, x, y| b.ins().sshr(x, y)),
            0xd4 => {
                let a = self.get(s.dst);
                let v = match s.imm {
                    16 => self.b.ins().band_imm_s(a, 0xffff),
                    32 => self.b.ins().band_imm_s(a, 0xffff_ffff),
                    _ => a,
                };
                self.set(s.dst, v);
            }
            0xdc => self.bswap(s),
            // `classify` only admits the codes above.
            _ => unreachable!("ALU code {:#04x} not classified as ALU", s.code),
        }
    }

    /// Sign-extends the low `from` bits of the 64-bit `v` to `to`.
    fn sext(&mut self, v: Value, from: Type, to: Type) -> Value {
        let n = self.b.ins().ireduce(from, v);
        self.b.ins().sextend(to, n)
    }

    fn bin64(&mut self, s: Slot, f: impl FnOnce(&mut FunctionBuilder<'_>, Value, Value) -> Value) {
        let a = self.get(s.dst);
        let b = self.src64(s);
        let v = f(&mut self.b, a, b);
        self.set(s.dst, v);
    }

    fn bin32(&mut self, s: Slot, f: impl FnOnce(&mut FunctionBuilder<'_>, Value, Value) -> Value) {
        let a = self.dst32(s);
        let b = self.src32(s);
        let v = f(&mut self.b, a, b);
        self.set32(s.dst, v);
    }

    /// Shifts by the operand masked to the width (as the ISA and the interpreter do).
    fn shift(
        &mut self,
        s: Slot,
        ty: Type,
        f: impl FnOnce(&mut FunctionBuilder<'_>, Value, Value) -> Value,
    ) {
        let mask = i64::from(ty.bits()) - 1;
        let a = if ty == I64 { self.get(s.dst) } else { self.dst32(s) };
        let amount = if s.code & 0x08 != 0 {
            let v = self.get(s.src);
            let v = if ty == I64 { v } else { self.b.ins().ireduce(I32, v) };
            self.b.ins().band_imm_s(v, mask)
        } else {
            self.iconst_ty(ty, s.imm & mask)
        };
        let v = f(&mut self.b, a, amount);
        if ty == I64 { self.set(s.dst, v) } else { self.set32(s.dst, v) }
    }

    /// Division or modulo: unsigned (`x / 0 = 0`, `x % 0 = x`) or signed (also
    /// `MIN / -1 = MIN`, `MIN % -1 = 0`), never trapping.
    fn div(&mut self, s: Slot, ty: Type, signed: bool, rem: bool) {
        let a = if ty == I64 { self.get(s.dst) } else { self.dst32(s) };
        let v = if s.code & 0x08 == 0 {
            // The immediate, as the interpreter sees it at this width.
            let k = if ty == I64 { s.imm } else { i64::from(s.imm as u32) };
            let ks = if ty == I64 { s.imm } else { i64::from(s.imm as i32) };
            match (signed, rem) {
                _ if k == 0 => {
                    if rem {
                        a
                    } else {
                        self.iconst_ty(ty, 0)
                    }
                }
                (true, false) if ks == -1 => self.b.ins().ineg(a),
                (true, true) if ks == -1 => self.iconst_ty(ty, 0),
                (false, false) => {
                    let k = self.iconst_ty(ty, k);
                    self.b.ins().udiv(a, k)
                }
                (false, true) => {
                    let k = self.iconst_ty(ty, k);
                    self.b.ins().urem(a, k)
                }
                (true, false) => {
                    let k = self.iconst_ty(ty, ks);
                    self.b.ins().sdiv(a, k)
                }
                (true, true) => {
                    let k = self.iconst_ty(ty, ks);
                    self.b.ins().srem(a, k)
                }
            }
        } else {
            let bv = if ty == I64 {
                self.get(s.src)
            } else {
                let v = self.get(s.src);
                self.b.ins().ireduce(I32, v)
            };
            let zero = self.iconst_ty(ty, 0);
            let one = self.iconst_ty(ty, 1);
            let is0 = self.b.ins().icmp_imm_s(IntCC::Equal, bv, 0);
            if signed {
                let m1 = self.iconst_ty(ty, -1);
                let is_m1 = self.b.ins().icmp(IntCC::Equal, bv, m1);
                let bad = self.b.ins().bor(is0, is_m1);
                let safe = self.b.ins().select(bad, one, bv);
                if rem {
                    let r = self.b.ins().srem(a, safe);
                    let r = self.b.ins().select(is_m1, zero, r);
                    self.b.ins().select(is0, a, r)
                } else {
                    let q = self.b.ins().sdiv(a, safe);
                    let neg = self.b.ins().ineg(a);
                    let q = self.b.ins().select(is_m1, neg, q);
                    self.b.ins().select(is0, zero, q)
                }
            } else {
                let safe = self.b.ins().select(is0, one, bv);
                if rem {
                    let r = self.b.ins().urem(a, safe);
                    self.b.ins().select(is0, a, r)
                } else {
                    let q = self.b.ins().udiv(a, safe);
                    self.b.ins().select(is0, zero, q)
                }
            }
        };
        if ty == I64 { self.set(s.dst, v) } else { self.set32(s.dst, v) }
    }

    /// bswap16/32/64 and be16/32/64: swap the low bytes and zero-extend.
    fn bswap(&mut self, s: Slot) {
        let a = self.get(s.dst);
        let v = match s.imm {
            16 | 32 => {
                let ty = if s.imm == 16 { I16 } else { I32 };
                let n = self.b.ins().ireduce(ty, a);
                let n = self.b.ins().bswap(n);
                self.b.ins().uextend(I64, n)
            }
            _ => self.b.ins().bswap(a),
        };
        self.set(s.dst, v);
    }

    /// The condition of a conditional jump (JMP: 64-bit compares, JMP32: the low halves).
    fn cond(&mut self, s: Slot) -> Value {
        let (a, b) = if s.code & 0x07 == 0x06 {
            (self.dst32(s), self.src32(s))
        } else {
            (self.get(s.dst), self.src64(s))
        };
        let cc = match s.code & 0xf0 {
            0x10 => IntCC::Equal,
            0x20 => IntCC::UnsignedGreaterThan,
            0x30 => IntCC::UnsignedGreaterThanOrEqual,
            0x50 => IntCC::NotEqual,
            0x60 => IntCC::SignedGreaterThan,
            0x70 => IntCC::SignedGreaterThanOrEqual,
            0xa0 => IntCC::UnsignedLessThan,
            0xb0 => IntCC::UnsignedLessThanOrEqual,
            0xc0 => IntCC::SignedLessThan,
            0xd0 => IntCC::SignedLessThanOrEqual,
            _ => {
                // 0x40: JSET.
                let and = self.b.ins().band(a, b);
                return self.b.ins().icmp_imm_s(IntCC::NotEqual, and, 0);
            }
        };
        self.b.ins().icmp(cc, a, b)
    }

    // ---- memory ----

    /// A load, store or atomic of `len` bytes at `base + off`; returns the loaded (or old)
    /// value. The inline path handles what the interpreter's memory would allow; everything
    /// else calls into the interpreter's memory, which performs it or names the fault.
    fn mem(&mut self, pc: usize, base: u8, off: i16, len: u8, op: MemOp) -> Option<Value> {
        if self.static_stack(base, off, len) == Some(true) {
            // Checked at compile time: no branch at all.
            let stack = self.b.use_var(self.stack);
            return self.access(op, len, stack, STACK_SIZE as i32 + i32::from(off));
        }
        let merge = self.b.create_block();
        let has_value = !matches!(op, MemOp::Store { .. });
        if has_value {
            self.b.append_block_param(merge, I64);
        }
        let access = match op {
            MemOp::Load { .. } => Access::Read,
            MemOp::Store { .. } => Access::Write,
            MemOp::Atomic { .. } => Access::Atomic,
        };
        match self.static_stack(base, off, len) {
            Some(_) => {
                let b = self.get(base);
                let addr = self.b.ins().iadd_imm_s(b, i64::from(off));
                self.slow(pc, op, len, addr, merge);
            }
            None => {
                let b = self.get(base);
                let addr = self.b.ins().iadd_imm_s(b, i64::from(off));
                let (host, slow) = self.check(b, off, len, access);
                self.fast(op, len, host, i32::from(off), merge);
                self.b.switch_to_block(slow);
                self.slow(pc, op, len, addr, merge);
            }
        }
        self.b.switch_to_block(merge);
        has_value.then(|| self.b.block_params(merge)[0])
    }

    /// The inline check of an access of `len` bytes at `base + off`: branches to a new cold
    /// block (returned) unless the access is allowed inline, else continues with the host
    /// address of `base` (the access is at that plus `off`). The region's entry is found from
    /// `base` alone (`(base >> 32) & mask`, no clamp: an index past the regions finds a zero
    /// entry, and a masked index that finds another region's entry fails that entry's range
    /// check), so accesses through the same base register share it; an access whose
    /// `base + off` leaves the base's region fails the range check (regions are below 2 GiB,
    /// the slot's bias is 2 GiB) and goes to Rust with the real address.
    fn check(&mut self, base: Value, off: i16, len: u8, access: Access) -> (Value, Block) {
        let table = self.b.use_var(self.table);
        let mask = self.b.use_var(self.mask);
        let t = table_flags().with_alias_region(Some(self.regions.table));
        let idx = self.b.ins().ushr_imm_s(base, 32 - entry::SHIFT);
        let idx = self.b.ins().band(idx, mask);
        let e = self.b.ins().iadd(table, idx);
        // In range when `base + off - start <u lim[log2 len]`.
        let start = self.b.ins().load(I64, t, e, entry::START);
        let x = self.b.ins().isub(base, start);
        let x = self.b.ins().iadd_imm_s(x, i64::from(off));
        let field = match access {
            Access::Read => entry::RLIM,
            _ => entry::WLIM,
        } + 4 * len.trailing_zeros() as i32;
        let lim = self.b.ins().uload32(t, e, field);
        let mut bad = self.b.ins().icmp(IntCC::UnsignedGreaterThanOrEqual, x, lim);
        if len > 1 && (access == Access::Atomic || self.env.mode == Mode::Checked) {
            // Regions start at an aligned virtual address: the address's alignment is the
            // offset's.
            let a = self.b.ins().iadd_imm_s(base, i64::from(off));
            let mis = self.b.ins().band_imm_s(a, i64::from(len) - 1);
            let mis = if access == Access::Atomic {
                mis
            } else {
                let amask = self.b.ins().uload32(t, e, entry::AMASK);
                self.b.ins().band(mis, amask)
            };
            let mis = self.b.ins().icmp_imm_s(IntCC::NotEqual, mis, 0);
            bad = self.b.ins().bor(bad, mis);
        }
        let fast = self.b.create_block();
        let slow = self.b.create_block();
        self.b.set_cold_block(slow);
        self.b.ins().brif(bad, slow, &[], fast, &[]);
        self.b.switch_to_block(fast);
        let delta = self.b.ins().load(I64, t, e, entry::DELTA);
        let host = self.b.ins().iadd(base, delta);
        (host, slow)
    }

    /// The access itself, at host address `host + at`; jumps to `merge`.
    fn fast(&mut self, op: MemOp, len: u8, host: Value, at: i32, merge: Block) {
        match self.access(op, len, host, at) {
            Some(v) => self.b.ins().jump(merge, &[BlockArg::Value(v)]),
            None => self.b.ins().jump(merge, &[]),
        };
    }

    /// The access itself, at host address `host + at`; returns the loaded or old value.
    fn access(&mut self, op: MemOp, len: u8, host: Value, at: i32) -> Option<Value> {
        let f = mem_flags().with_alias_region(Some(self.regions.bpf));
        match op {
            MemOp::Load { signed } => Some(match (len, signed) {
                (1, false) => self.b.ins().uload8(I64, f, host, at),
                (2, false) => self.b.ins().uload16(I64, f, host, at),
                (4, false) => self.b.ins().uload32(f, host, at),
                (1, true) => self.b.ins().sload8(I64, f, host, at),
                (2, true) => self.b.ins().sload16(I64, f, host, at),
                (4, true) => self.b.ins().sload32(f, host, at),
                _ => self.b.ins().load(I64, f, host, at),
            }),
            MemOp::Store { value } => {
                match len {
                    1 => self.b.ins().istore8(f, value, host, at),
                    2 => self.b.ins().istore16(f, value, host, at),
                    4 => self.b.ins().istore32(f, value, host, at),
                    _ => self.b.ins().store(f, value, host, at),
                };
                None
            }
            MemOp::Atomic { op, src, r0 } => {
                let f = MemFlagsData::new().with_notrap().with_alias_region(Some(self.regions.bpf));
                let ty = if len == 8 { I64 } else { I32 };
                let narrow = |b: &mut FunctionBuilder<'_>, v| {
                    if ty == I64 { v } else { b.ins().ireduce(I32, v) }
                };
                let v = narrow(&mut self.b, src);
                let rmw = match op {
                    0x00 | 0x01 => Some(AtomicRmwOp::Add),
                    0x40 | 0x41 => Some(AtomicRmwOp::Or),
                    0x50 | 0x51 => Some(AtomicRmwOp::And),
                    0xa0 | 0xa1 => Some(AtomicRmwOp::Xor),
                    0xe1 => Some(AtomicRmwOp::Xchg),
                    _ => None,
                };
                let host =
                    if at == 0 { host } else { self.b.ins().iadd_imm_s(host, i64::from(at)) };
                let old = match rmw {
                    Some(rmw) => self.b.ins().atomic_rmw(ty, f, rmw, host, v),
                    None => {
                        let expected = narrow(&mut self.b, r0);
                        self.b.ins().atomic_cas(f, host, expected, v)
                    }
                };
                Some(if ty == I64 { old } else { self.b.ins().uextend(I64, old) })
            }
        }
    }

    /// The access through the interpreter's memory (context fields, faults); jumps to
    /// `merge` or returns the fault.
    fn slow(&mut self, pc: usize, op: MemOp, len: u8, addr: Value, merge: Block) {
        let lenv = self.iconst(i64::from(len));
        let pcv = self.iconst(pc as i64);
        let st = match op {
            MemOp::Load { .. } => self.call(
                self.sigs.load,
                runtime::mem_load as *const (),
                &[self.state, addr, lenv, pcv],
            ),
            MemOp::Store { value } => self.call(
                self.sigs.store,
                runtime::mem_store as *const (),
                &[self.state, addr, value, lenv, pcv],
            ),
            MemOp::Atomic { op, src, r0 } => {
                let opv = self.iconst(op);
                self.call(
                    self.sigs.atomic,
                    runtime::mem_atomic as *const (),
                    &[self.state, addr, lenv, opv, src, r0, pcv],
                )
            }
        };
        // Rust validated the region's entry in place (slow paths never move the table); the
        // entries loaded before may stay in use, a stale one only sends accesses here again.
        self.check_status(st);
        match op {
            MemOp::Load { signed } => {
                let v = self.state_load(off::TMP);
                let v = match (len, signed) {
                    (1, true) => self.sext(v, I8, I64),
                    (2, true) => self.sext(v, I16, I64),
                    (4, true) => self.sext(v, I32, I64),
                    _ => v,
                };
                self.b.ins().jump(merge, &[BlockArg::Value(v)]);
            }
            MemOp::Atomic { .. } => {
                let v = self.state_load(off::TMP);
                self.b.ins().jump(merge, &[BlockArg::Value(v)]);
            }
            MemOp::Store { .. } => {
                self.b.ins().jump(merge, &[]);
            }
        }
    }

    /// LD_ABS / LD_IND: a big-endian read from the packet region, or the end of the run
    /// with r0 = 0 when out of bounds (or when the run has no packet).
    fn ld_abs(&mut self, s: Slot, len: u8, ind: bool) {
        let off = if ind {
            let v = self.get(s.src);
            let v = self.b.ins().ireduce(I32, v);
            let v = self.b.ins().uextend(I64, v);
            self.b.ins().iadd_imm_s(v, s.imm)
        } else {
            self.iconst(s.imm)
        };
        let table = self.b.use_var(self.table);
        let mask = self.b.use_var(self.mask);
        // The packet region's entry (no packet: `u64::MAX + 1` finds the zero entry 0).
        let p = self.state_load(off::PACKET);
        let p = self.b.ins().iadd_imm_s(p, 1);
        let p = self.b.ins().ishl_imm_s(p, entry::SHIFT);
        let p = self.b.ins().band(p, mask);
        let e = self.b.ins().iadd(table, p);
        let size = self.b.ins().uload32(vm_flags(), e, entry::LEN);
        let neg = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, off, 0);
        let end = self.b.ins().iadd_imm_s(off, i64::from(len));
        let over = self.b.ins().icmp(IntCC::UnsignedGreaterThan, end, size);
        let bad = self.b.ins().bor(neg, over);
        let exit0 = *self.exit0.get_or_insert_with(|| {
            let blk = self.b.create_block();
            self.b.set_cold_block(blk);
            blk
        });
        let fast = self.b.create_block();
        let slow = self.b.create_block();
        let merge = self.b.create_block();
        self.b.append_block_param(merge, I64);
        self.b.set_cold_block(slow);
        self.b.ins().brif(bad, slow, &[], fast, &[]);
        // Not validated yet, or out of bounds: Rust decides.
        self.b.switch_to_block(slow);
        let lenv = self.iconst(i64::from(len));
        let st =
            self.call(self.sigs.ld_abs, runtime::ld_abs as *const (), &[self.state, off, lenv]);
        let got = self.b.create_block();
        self.b.ins().brif(st, exit0, &[], got, &[]);
        self.b.switch_to_block(got);
        let v = self.state_load(off::TMP);
        self.b.ins().jump(merge, &[BlockArg::Value(v)]);
        self.b.switch_to_block(fast);
        let base = self.b.ins().load(I64, vm_flags(), e, entry::BASE);
        let host = self.b.ins().iadd(base, off);
        let f = mem_flags();
        let v = match len {
            1 => self.b.ins().uload8(I64, f, host, 0),
            2 => {
                let v = self.b.ins().load(I16, f, host, 0);
                let v = self.b.ins().bswap(v);
                self.b.ins().uextend(I64, v)
            }
            _ => {
                let v = self.b.ins().load(I32, f, host, 0);
                let v = self.b.ins().bswap(v);
                self.b.ins().uextend(I64, v)
            }
        };
        self.b.ins().jump(merge, &[BlockArg::Value(v)]);
        self.b.switch_to_block(merge);
        let v = self.b.block_params(merge)[0];
        self.set(0, v);
    }

    // ---- calls ----

    /// A helper call through the trampoline; a tail call it asks for continues in the target
    /// program's entry function, whose result is this function's.
    fn helper(&mut self, pc: usize, s: Slot) {
        for i in 1..=5u8 {
            let v = self.get(i);
            self.state_store(v, off::REGS + 8 * i32::from(i));
        }
        self.store_count();
        // A kfunc call passes its BTF id with the kfunc bit set.
        let id = match s.src {
            0 => s.imm,
            _ => (runtime::KFUNC_CALL | u64::from(s.imm as u32)) as i64,
        };
        let id = self.iconst(id);
        let prog = self.iconst(self.plan.prog as i64);
        let pcv = self.iconst(pc as i64);
        let st = self.call(
            self.sigs.helper,
            runtime::helper_call as *const (),
            &[self.state, id, prog, pcv, self.depth],
        );
        let ok = self.b.create_block();
        let not_ok = self.b.create_block();
        self.b.set_cold_block(not_ok);
        self.b.ins().brif(st, not_ok, &[], ok, &[]);
        // Tail call, or a fault to pass on.
        self.b.switch_to_block(not_ok);
        let is_tail = self.b.ins().icmp_imm_s(IntCC::Equal, st, i64::from(runtime::TAIL));
        let tail = self.b.create_block();
        let ret = self.ret_block();
        self.b.ins().brif(is_tail, tail, &[], ret, &[BlockArg::Value(st)]);
        self.b.switch_to_block(tail);
        self.load_reg(0);
        self.store_regs(false);
        let target = self.state_load(off::TAIL_TARGET);
        let entries = self.state_load(off::ENTRIES);
        let slot = self.b.ins().ishl_imm_s(target, 3);
        let slot = self.b.ins().iadd(entries, slot);
        let f = self.b.ins().load(I64, vm_flags(), slot, 0);
        let inst = self.b.ins().call_indirect(self.sigs.func, f, &[self.state, self.depth]);
        let st2 = self.b.inst_results(inst)[0];
        self.b.ins().return_(&[st2]);
        // Normal return: r0 from the helper, count and table as the helper left them.
        self.b.switch_to_block(ok);
        self.load_reg(0);
        self.load_count();
        self.reload_table();
    }

    /// A bpf-to-bpf call: a native call of the target's function in the next frame.
    fn local_call(&mut self, pc: usize, target: usize) {
        let Some(k) = (self.index)(self.plan.prog, target) else {
            // Discovery compiles every call target; this would be a JIT bug. Fault safely.
            self.raise(runtime::RAISE_NOT_INSN, pc, 0);
            return;
        };
        let depth = self.b.ins().iadd_imm_s(self.depth, 1);
        let too_deep =
            self.b.ins().icmp_imm_s(IntCC::UnsignedGreaterThanOrEqual, depth, MAX_FRAMES as i64);
        let deep = self.b.create_block();
        let go = self.b.create_block();
        self.b.set_cold_block(deep);
        self.b.ins().brif(too_deep, deep, &[], go, &[]);
        self.b.switch_to_block(deep);
        self.raise(runtime::RAISE_CALL_DEPTH, pc, 0);
        self.b.ins().jump(go, &[]);
        self.b.switch_to_block(go);
        self.store_regs(true);
        // r10 of the new frame: one past the end of its stack region.
        let fp = self.b.ins().iadd_imm_s(depth, 1);
        let fp = self.b.ins().ishl_imm_s(fp, 32);
        let fp = self.b.ins().iadd_imm_s(fp, (BIAS + STACK_SIZE as u64) as i64);
        self.state_store(fp, off::REGS + 8 * 10);
        self.store_count();
        self.call(self.sigs.zero, runtime::zero_stack as *const (), &[self.state, depth]);
        let funcs = self.state_load(off::FUNCS);
        let f = self.b.ins().load(I64, vm_flags(), funcs, (8 * k) as i32);
        let inst = self.b.ins().call_indirect(self.sigs.func, f, &[self.state, depth]);
        let st = self.b.inst_results(inst)[0];
        self.check_status(st);
        // The callee's r0..r5 (and r11..r15) stay; r6..r10 are the caller's.
        for i in (0..6).chain(11..self.env.nregs) {
            self.load_reg(i);
        }
        self.load_count();
        self.reload_table();
    }
}
