//! What compiled code sees at run time: the run state, the region table, and the Rust
//! functions it calls (helpers, slow memory accesses, faults). Also the way into compiled
//! code, for runs and for callbacks.
//!
//! Compiled code receives a `*mut RunState` and the frame depth. The `#[repr(C)]` head of
//! [`RunState`] is read and written by compiled code at the offsets in [`off`]; the rest is
//! only used from Rust, by the `extern "C"` functions below while compiled code waits for them.
#![allow(unsafe_code)]

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Arc;

use bpflab_vm::ProgType;
use bpflab_vm::helpers::{Callbacks, HelperCtx, HelperRegistry};
use bpflab_vm::interp::{Code, MAX_TAIL_CALLS, VmError, VmErrorKind};
use bpflab_vm::kfunc::KfuncTable;
use bpflab_vm::memory::{MAX_FRAMES, RawRegion, RegionId, STACK_SIZE};
use bpflab_vm::world::World;

use crate::module::Functions;

/// Status a compiled function returns: ran to `exit` (r0..r5 in `regs`).
pub(crate) const OK: u32 = 0;
/// Status: faulted; the error is in `RunState::fault`.
pub(crate) const FAULT: u32 = 1;
/// Status: a legacy packet load was out of bounds; the run ends with r0 = 0.
pub(crate) const EXIT_ZERO: u32 = 2;
/// Status of the helper trampoline only: take the tail call to `RunState::tail_target`.
pub(crate) const TAIL: u32 = 3;

/// Fault kinds [`raise`] reports.
pub(crate) const RAISE_CALL_DEPTH: u64 = 0;
/// A slot that is not an instruction.
pub(crate) const RAISE_NOT_INSN: u64 = 2;
/// Execution ran past the last instruction.
pub(crate) const RAISE_FELL_OFF: u64 = 3;

/// Set in the id [`helper_call`] gets for a kfunc call (the low 32 bits hold the BTF id).
pub(crate) const KFUNC_CALL: u64 = 1 << 40;

/// Offset of a region's first byte within its 4 GiB slot (as in `bpflab_vm::memory`).
pub(crate) const BIAS: u64 = 0x8000_0000;

/// The frame pointer (r10) of frame `depth`.
pub(crate) fn frame_pointer(depth: usize) -> u64 {
    RegionId::stack(depth).base() + STACK_SIZE as u64
}

/// One region as compiled code reads it, at index `region + 1` of the region table (index 0,
/// and every index past the regions, is all zero: every access through it goes to Rust).
///
/// An access of `n = 1 << k` bytes at virtual address `a` is allowed inline when
/// `a - start <u lim[k]` (so `a` lies in `[start, start + lim[k])` and the access ends inside
/// the region's accessible bytes); it then touches host address `a + delta`. Where a kind of
/// access must always go to Rust (context regions, missing permissions) its limits are 0.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Entry {
    /// Host address minus virtual address, for every byte of the region.
    delta: u64,
    /// Virtual address of the first byte accesses may touch (the packet's `data_meta` in
    /// checked mode, the region's first byte in trusted mode).
    start: u64,
    /// Host address of offset 0 (stack frames, legacy packet loads).
    base: u64,
    /// Per access size (1, 2, 4, 8 bytes): the number of addresses from `start` a load may
    /// start at.
    rlim: [u32; 4],
    /// The same for stores and atomics.
    wlim: [u32; 4],
    /// 7 where checked accesses must be naturally aligned (the stack), else 0.
    amask: u32,
    /// The region's size (legacy packet loads).
    len: u32,
}

/// Byte offsets of [`Entry`] fields, and the entry size as a shift.
pub(crate) mod entry {
    /// `log2(size_of::<Entry>())`.
    pub(crate) const SHIFT: i64 = 6;
    /// Offset of `delta`.
    pub(crate) const DELTA: i32 = 0;
    /// Offset of `start`.
    pub(crate) const START: i32 = 8;
    /// Offset of `base`.
    pub(crate) const BASE: i32 = 16;
    /// Offset of `rlim[0]`.
    pub(crate) const RLIM: i32 = 24;
    /// Offset of `wlim[0]`.
    pub(crate) const WLIM: i32 = 40;
    /// Offset of `amask`.
    pub(crate) const AMASK: i32 = 56;
    /// Offset of `len`.
    pub(crate) const LEN: i32 = 60;
}

const _: () = assert!(std::mem::size_of::<Entry>() == 1 << entry::SHIFT);
const _: () = assert!(std::mem::offset_of!(Entry, start) == entry::START as usize);
const _: () = assert!(std::mem::offset_of!(Entry, base) == entry::BASE as usize);
const _: () = assert!(std::mem::offset_of!(Entry, rlim) == entry::RLIM as usize);
const _: () = assert!(std::mem::offset_of!(Entry, wlim) == entry::WLIM as usize);
const _: () = assert!(std::mem::offset_of!(Entry, amask) == entry::AMASK as usize);
const _: () = assert!(std::mem::offset_of!(Entry, len) == entry::LEN as usize);

impl Entry {
    /// The entry of region `id` as `r` describes it, for code compiled in checked mode or
    /// (`trusted`) in trusted mode.
    fn of(id: RegionId, r: RawRegion, trusted: bool) -> Entry {
        // Regions are below 2 GiB (MAX_REGION), so sizes fit in 32 bits.
        let plain = !r.is_context;
        let lo = if trusted { 0 } else { r.lo.min(r.len) };
        let lims = |ok: bool| {
            [1, 2, 4, 8].map(|n| if ok { (r.len - lo + 1).saturating_sub(n) as u32 } else { 0 })
        };
        let vaddr = id.base();
        Entry {
            delta: (r.ptr as u64).wrapping_sub(vaddr),
            start: vaddr + lo as u64,
            base: r.ptr as u64,
            rlim: lims(plain && (trusted || r.readable)),
            wlim: lims(plain && (trusted || r.writable)),
            amask: if r.strict_align && !trusted { 7 } else { 0 },
            len: r.len as u32,
        }
    }
}

/// The state of a run, shared by every compiled function and Rust function it calls. One
/// lives (boxed, at a stable address) in each instance and is reset for every run.
#[repr(C)]
pub(crate) struct RunState {
    /// Registers passed into and out of compiled functions.
    pub(crate) regs: [u64; 16],
    /// Instructions executed so far.
    pub(crate) count: u64,
    /// The region table: a power of two of entries, entry `i + 1` for region `i`.
    table: *const Entry,
    /// `(entries - 1) << entry::SHIFT`: masks `addr >> (32 - SHIFT)` to an entry's offset.
    mask: u64,
    /// Addresses of compiled functions, by function index.
    funcs: *const usize,
    /// Address of each program's entry function (tail calls), by program index.
    entries: *const usize,
    /// The program a tail call continues in.
    tail_target: u64,
    /// The region legacy packet loads read, or `u64::MAX`.
    packet: u64,
    /// A value passed back by a Rust function.
    tmp: u64,
    // Below: Rust only.
    /// The world of the innermost execution (callbacks get their own borrow).
    world: *mut World,
    /// The instance's programs and helpers, during a run.
    shared: *const Shared,
    /// The instance's compiled functions, during a run.
    fns: *mut Functions,
    /// The region table's storage: entry `i + 1` describes region `i` once validated, else
    /// is zero (every access to the region goes to Rust, which validates it).
    table_buf: Vec<Entry>,
    /// Which regions' entries are validated, by region index.
    valid: Vec<bool>,
    /// The validated entries, for [`RunState::invalidate`].
    validated: Vec<u32>,
    /// Room for [`RunState::revalidate`].
    scratch: Vec<u32>,
    fault: Option<VmError>,
    panic: Option<Box<dyn Any + Send>>,
    tail_calls: u32,
    /// Bytes below the frame pointer a new frame zeroes.
    stack_zero: usize,
    /// Some code reaches memory through the region table (else nothing is validated ahead).
    table_access: bool,
    /// The code was compiled in trusted mode (entries describe trusted accesses).
    trusted: bool,
    /// The memory's [`layout`](bpflab_vm::memory::Memory::layout) when the validated entries
    /// were last brought up to date: while it stays the same they need no refresh.
    layout: (u64, u64),
}

/// Offsets of the fields compiled code uses.
pub(crate) mod off {
    use super::RunState;
    use std::mem::offset_of;

    /// `regs[0]`.
    pub(crate) const REGS: i32 = offset_of!(RunState, regs) as i32;
    /// `count`.
    pub(crate) const COUNT: i32 = offset_of!(RunState, count) as i32;
    /// `table`.
    pub(crate) const TABLE: i32 = offset_of!(RunState, table) as i32;
    /// `mask`.
    pub(crate) const MASK: i32 = offset_of!(RunState, mask) as i32;
    /// `funcs`.
    pub(crate) const FUNCS: i32 = offset_of!(RunState, funcs) as i32;
    /// `entries`.
    pub(crate) const ENTRIES: i32 = offset_of!(RunState, entries) as i32;
    /// `tail_target`.
    pub(crate) const TAIL_TARGET: i32 = offset_of!(RunState, tail_target) as i32;
    /// `packet`.
    pub(crate) const PACKET: i32 = offset_of!(RunState, packet) as i32;
    /// `tmp`.
    pub(crate) const TMP: i32 = offset_of!(RunState, tmp) as i32;
}

/// What a run needs besides the world: the instance's programs and helpers.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The helper registry.
    pub(crate) helpers: Arc<HelperRegistry>,
    /// The kfuncs the programs call, by BTF id.
    pub(crate) kfuncs: Arc<KfuncTable>,
    /// Each program's license is GPL-compatible (kfuncs need it).
    pub(crate) gpl_compatible: Vec<bool>,
    /// The lowered code of every program.
    pub(crate) codes: Vec<Code>,
    /// The region standing for each program's instructions.
    pub(crate) code_regions: Vec<RegionId>,
    /// Each program's type.
    pub(crate) prog_types: Vec<ProgType>,
    /// The instruction budget.
    pub(crate) budget: u64,
}

impl RunState {
    /// A run state, to be [`RunState::begin`]-ed before each run.
    pub(crate) fn new() -> Box<RunState> {
        let mut st = Box::new(RunState {
            regs: [0; 16],
            count: 0,
            table: std::ptr::null(),
            mask: 0,
            funcs: std::ptr::null(),
            entries: std::ptr::null(),
            tail_target: 0,
            packet: u64::MAX,
            tmp: 0,
            world: std::ptr::null_mut(),
            shared: std::ptr::null(),
            fns: std::ptr::null_mut(),
            table_buf: vec![Entry::default()],
            valid: vec![false],
            trusted: false,
            layout: (0, 0),
            validated: Vec::new(),
            scratch: Vec::new(),
            fault: None,
            panic: None,
            tail_calls: 0,
            stack_zero: STACK_SIZE,
            table_access: true,
        });
        st.table = st.table_buf.as_ptr();
        st
    }

    /// Resets the state for a run of `shared`'s programs compiled in `fns`; `packet` is the
    /// region LD_ABS/LD_IND read. The pointers stay valid while the caller holds both borrows.
    pub(crate) fn begin(&mut self, shared: &Shared, fns: &mut Functions, packet: Option<RegionId>) {
        self.count = 0;
        self.tail_calls = 0;
        self.fault = None;
        self.packet = packet.map_or(u64::MAX, |r| u64::from(r.index()));
        self.stack_zero = fns.stack_zero();
        self.table_access = fns.table_access();
        self.trusted = fns.trusted();
        self.funcs = fns.funcs().as_ptr();
        self.entries = fns.entries().as_ptr();
        self.shared = shared;
        self.fns = fns;
        // The world may have changed in any way since the last run.
        self.invalidate();
    }

    /// Forgets every validated entry: Rust code ran that may have changed the memory.
    #[inline]
    fn invalidate(&mut self) {
        for i in self.validated.drain(..) {
            self.table_buf[i as usize + 1] = Entry::default();
            self.valid[i as usize] = false;
        }
    }

    /// Refreshes every validated entry from the memory as it is now (Rust code ran that may
    /// have changed it): entries of regions that changed or went away are rewritten.
    fn revalidate(&mut self) {
        let mut list = std::mem::take(&mut self.scratch);
        list.clear();
        list.extend_from_slice(&self.validated);
        self.invalidate();
        for &i in &list {
            self.validate(i as usize);
        }
        self.scratch = list;
    }

    /// Makes entry `idx` describe region `idx` as the memory holds it now (nothing if there is
    /// no such region). May move the table.
    #[inline]
    fn validate(&mut self, idx: usize) {
        // A region added since the table was last sized stays on the slow path until `fit`
        // covers it where compiled code expects the table to move.
        if idx + 1 >= self.table_buf.len() {
            return;
        }
        // SAFETY: `world` is set by `enter` (or `prepare`) from a live `&mut World` for the
        // duration of the execution that calls this, and no other reference to the world is
        // in use meanwhile (compiled code is suspended in a call to Rust).
        let world = unsafe { &mut *self.world };
        // `idx` is below the table's length, itself at most the number of regions plus one.
        let Some(raw) = world.mem.raw_region(RegionId::from_index(idx as u32)) else { return };
        self.table_buf[idx + 1] = Entry::of(RegionId::from_index(idx as u32), raw, self.trusted);
        if !std::mem::replace(&mut self.valid[idx], true) {
            self.validated.push(idx as u32);
        }
    }

    /// Grows the table to cover every region (to a power of two of entries, entry 0 and those
    /// past the regions staying all zero, so that masked indices need no clamp). Moves the table: only called where compiled code reloads
    /// it afterwards (entering a function, after a helper); slow paths never move it, so
    /// compiled code may keep entries it loaded across them.
    #[inline]
    fn fit(&mut self) {
        // SAFETY: as in `validate`.
        let world = unsafe { &mut *self.world };
        let n = world.mem.raw_regions().len();
        if self.table_buf.len() <= n {
            let len = (n + 1).next_power_of_two();
            self.table_buf.resize(len, Entry::default());
            self.valid.resize(len, false);
            self.table = self.table_buf.as_ptr();
            self.mask = ((len - 1) as u64) << entry::SHIFT;
        }
    }

    /// Validates the region `addr` falls in.
    fn validate_addr(&mut self, addr: u64) {
        if let Some(idx) = (addr >> 32).checked_sub(1) {
            self.validate(idx as usize);
        }
    }

    /// Brings the validated entries up to date after Rust code that may have changed the
    /// memory ran (nothing to do when the memory's layout is as it was).
    fn refresh(&mut self) {
        // SAFETY: as in `validate`.
        let now = unsafe { &*self.world }.mem.layout();
        if now != self.layout {
            self.fit();
            self.revalidate();
            self.layout = now;
        }
    }

    fn fail(&mut self, pc: u64, kind: VmErrorKind) -> u32 {
        self.fault = Some(VmError::new(pc as usize, kind));
        FAULT
    }

    /// The instance's programs and helpers.
    fn shared(&self) -> &Shared {
        // SAFETY: `begin` set `shared` from a reference the caller keeps borrowed for the
        // whole run, during which only this run state reads it.
        unsafe { &*self.shared }
    }
}

impl std::fmt::Debug for RunState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunState").field("count", &self.count).finish_non_exhaustive()
    }
}

/// Zeroes the top `n` bytes of the stack of frame `depth`.
fn zero_frame(world: &mut World, depth: usize, n: usize) {
    let stack = world.mem.contents_mut(RegionId::stack(depth));
    let from = stack.len().saturating_sub(n);
    if n <= 64 {
        // Most programs use a few stack slots: a loop beats a call to memset.
        stack[from..].iter_mut().for_each(|b| *b = 0);
    } else {
        stack[from..].fill(0);
    }
}

/// A compiled function: `(state, depth) -> status`.
type CompiledFn = unsafe extern "C" fn(*mut RunState, u64) -> u32;

/// A whole run of program `prog` from its entry in frame 0 with r1..r5 = `args`, after
/// [`RunState::begin`], as the interpreter's `Exec::run` does (the frame's stack zeroed, r0
/// and r6..r9 zero); `regions` (the input, the packet) are validated ahead, so that compiled
/// code reaches them without a first trip to Rust. A `prog` out of range is refused as
/// [`VmErrorKind::NotAnInstruction`] at slot 0.
pub(crate) fn run(
    state: &mut RunState,
    world: &mut World,
    prog: usize,
    args: [u64; 5],
    regions: &[RegionId],
) -> Result<u64, VmError> {
    let f = {
        // SAFETY: `begin` set `fns` from the instance's function table, which the caller keeps
        // borrowed for the whole run.
        let fns = unsafe { &*state.fns };
        match fns.entries().get(prog) {
            Some(&f) => f,
            None => return Err(VmError::new(0, VmErrorKind::NotAnInstruction)),
        }
    };
    if state.stack_zero > 0 {
        zero_frame(world, 0, state.stack_zero);
    }
    state.world = world;
    if state.table_access || state.stack_zero > 0 {
        state.fit();
    }
    if state.table_access {
        for &r in regions {
            state.validate(r.index() as usize);
        }
    }
    if state.stack_zero > 0 {
        // The frame's stack, which compiled code reaches through r10 without asking.
        state.validate(0);
    }
    // SAFETY: as in `RunState::validate`.
    state.layout = unsafe { &*state.world }.mem.layout();
    state.regs = [0; 16];
    state.regs[1..6].copy_from_slice(&args);
    state.regs[10] = frame_pointer(0);
    let state: *mut RunState = state;
    // SAFETY: as in `enter`.
    let status = unsafe {
        let f: CompiledFn = std::mem::transmute::<usize, CompiledFn>(f);
        f(state, 0)
    };
    // SAFETY: compiled code has returned; the run state is ours again.
    let st = unsafe { &mut *state };
    st.world = std::ptr::null_mut();
    finish(st, status, 0)
}

/// The result of an execution that returned `status`, entered at slot `entry`.
#[inline]
fn finish(st: &mut RunState, status: u32, entry: usize) -> Result<u64, VmError> {
    if let Some(p) = st.panic.take() {
        resume_unwind(p);
    }
    match status {
        OK => Ok(st.regs[0]),
        EXIT_ZERO => Ok(0),
        _ => Err(st
            .fault
            .take()
            .unwrap_or_else(|| VmError::new(entry, VmErrorKind::NotAnInstruction))),
    }
}

/// Runs the code of program `prog` from slot `entry` in frame `depth` with r1..r5 = `args`, as
/// the interpreter's `Exec::run` does: the frame's stack zeroed, r0 and r6..r9 zero.
pub(crate) fn enter(
    state: *mut RunState,
    world: &mut World,
    prog: usize,
    entry: usize,
    args: [u64; 5],
    depth: usize,
    refresh: bool,
) -> Result<u64, VmError> {
    if depth >= MAX_FRAMES {
        return Err(VmError::new(entry, VmErrorKind::CallDepth { max: MAX_FRAMES }));
    }
    let (f, saved) = {
        // SAFETY: `state` points to the live run state; compiled code is not running (we are
        // either before the first call or inside a helper it called), so this is the only
        // reference to it.
        let st = unsafe { &mut *state };
        if st.stack_zero > 0 {
            zero_frame(world, depth, st.stack_zero);
        }
        // SAFETY: `fns` points to the instance's function table, borrowed mutably for the
        // whole run by the caller of `RunState::begin`; only this code uses it during the run.
        let fns = unsafe { &mut *st.fns };
        // SAFETY: as in `RunState::shared` (a separate borrow of the same pointer, so that
        // `st` stays usable).
        let shared = unsafe { &*st.shared };
        let first = if entry == 0 { fns.entries().get(prog).copied() } else { None };
        let f = match first
            .map_or_else(|| fns.function(&shared.codes, &shared.code_regions, prog, entry), Ok)
        {
            Ok(f) => f,
            Err(_) => {
                // Cranelift refused code it compiled before for other entries: a JIT bug,
                // reported as a fault of the callback rather than a panic.
                let error = bpflab_vm::helpers::HelperError::BadArg {
                    arg: 0,
                    reason: "the JIT failed to compile this callback",
                };
                return Err(VmError::new(entry, VmErrorKind::Helper { name: "jit", error }));
            }
        };
        st.funcs = fns.funcs().as_ptr();
        st.entries = fns.entries().as_ptr();
        let saved = st.world;
        st.world = world;
        if refresh {
            st.refresh();
        }
        st.fit();
        if st.stack_zero > 0 {
            // The frame's stack, which compiled code reaches through r10 without asking.
            st.validate(depth);
        }
        st.regs = [0; 16];
        st.regs[1..6].copy_from_slice(&args);
        st.regs[10] = frame_pointer(depth);
        (f, saved)
    };
    // SAFETY: `f` is the address of a finalized function compiled with the signature
    // `(state: i64, depth: i64) -> i32` in the host's default calling convention, which is
    // `extern "C"`; its code memory lives as long as the instance's function table. Compiled
    // code only touches the run state, the region table and the buffers the table points to,
    // all valid until it returns (entries are invalidated whenever Rust code that may change them runs).
    let status = unsafe {
        let f: CompiledFn = std::mem::transmute::<usize, CompiledFn>(f);
        f(state, depth as u64)
    };
    // SAFETY: compiled code has returned; the run state is ours again.
    let st = unsafe { &mut *state };
    st.world = saved;
    finish(st, status, entry)
}

/// Runs BPF code for a helper, in the frame after the calling function's.
struct JitCallbacks {
    state: *mut RunState,
    depth: usize,
}

impl Callbacks for JitCallbacks {
    fn call(&mut self, world: &mut World, addr: u64, args: [u64; 5]) -> Result<u64, VmError> {
        let bad = || VmError::new(0, VmErrorKind::BadCallback { addr });
        let (region, _, off) = world.mem.resolve(addr).ok_or_else(bad)?;
        let (prog, pc) = {
            // SAFETY: the helper that calls us runs inside `helper_call`, which holds no
            // reference to the run state while the helper runs.
            let st = unsafe { &*self.state };
            let shared = st.shared();
            let prog = shared.code_regions.iter().position(|&r| r == region).ok_or_else(bad)?;
            let pc = usize::try_from(off)
                .ok()
                .filter(|&pc| shared.codes[prog].starts_instruction(pc))
                .ok_or_else(bad)?;
            (prog, pc)
        };
        // The helper calling this callback (maybe between two calls of it) may have changed
        // the memory in any way: `enter` refreshes every entry compiled code used.
        enter(self.state, world, prog, pc, args, self.depth, true)
    }
}

/// What [`helper_call`] calls.
enum Callee {
    /// A helper.
    Helper(bpflab_vm::helpers::Helper),
    /// A kfunc, by BTF id, called from a GPL-compatible program or not.
    Kfunc(Arc<KfuncTable>, i64, bool),
}

/// Calls helper `id` (a kfunc's BTF id with [`KFUNC_CALL`] set) with r1..r5 from `regs`; r0
/// goes to `regs[0]`. Returns [`OK`], [`FAULT`] or [`TAIL`] (the helper asked for a tail call
/// the limits allow).
pub(crate) extern "C" fn helper_call(
    state: *mut RunState,
    id: u64,
    prog: u64,
    pc: u64,
    depth: u64,
) -> u32 {
    let (h, args, prog_type, world) = {
        // SAFETY: compiled code passes the run state it was given and waits for us.
        let st = unsafe { &mut *state };
        let shared = st.shared();
        let prog_type = shared.prog_types.get(prog as usize).copied().unwrap_or(ProgType::Unspec);
        let h = if id & KFUNC_CALL != 0 {
            // The kfunc table checks program types itself.
            let gpl = shared.gpl_compatible.get(prog as usize).copied().unwrap_or(true);
            Callee::Kfunc(Arc::clone(&shared.kfuncs), i64::from(id as u32), gpl)
        } else {
            let Some(&h) = shared.helpers.get(id as i64) else {
                return st.fail(pc, VmErrorKind::UnknownHelper { id: id as i64 });
            };
            // The interpreter's checks: program type (prototype and kernel profile), license.
            let gpl = shared.gpl_compatible.get(prog as usize).copied().unwrap_or(true);
            if let Err(error) =
                shared.helpers.check(&h, prog_type).and_then(|()| h.check_license(gpl))
            {
                return st.fail(pc, VmErrorKind::Helper { name: h.proto.name, error });
            }
            Callee::Helper(h)
        };
        let mut args = [0; 5];
        args.copy_from_slice(&st.regs[1..6]);
        (h, args, prog_type, st.world)
    };
    let mut calls = JitCallbacks { state, depth: depth as usize + 1 };
    let (result, tail) = {
        // SAFETY: `world` comes from the `&mut World` of the innermost `enter`, which does not
        // use it while compiled code runs; this is the only reference until it is dropped.
        let world = unsafe { &mut *world };
        let mut hc = HelperCtx { world, prog_type, calls: &mut calls, tail_call: None };
        let result = catch_unwind(AssertUnwindSafe(|| match &h {
            Callee::Helper(h) => (h.func)(&mut hc, args)
                .map_err(|error| VmErrorKind::Helper { name: h.proto.name, error }),
            Callee::Kfunc(table, btf_id, gpl) => table.call(*btf_id, &mut hc, args, *gpl),
        }));
        (result, hc.tail_call)
    };
    // SAFETY: the helper is done; no other reference to the run state is alive.
    let st = unsafe { &mut *state };
    // The helper may have changed the memory in any way: refresh what compiled code used, the
    // calling functions' stacks (reached without asking) and where r0 points (the value a
    // lookup returned).
    st.refresh();
    if let (true, Ok(Ok(v))) = (st.table_access, &result) {
        let idx = (*v >> 32).wrapping_sub(1) as usize;
        if !st.valid.get(idx).copied().unwrap_or(true) {
            st.validate(idx);
        }
    }
    if st.stack_zero > 0 {
        for d in 0..=(depth as usize).min(MAX_FRAMES - 1) {
            if !st.valid.get(d).copied().unwrap_or(true) {
                st.validate(d);
            }
        }
    }
    match result {
        Err(panic) => {
            st.panic = Some(panic);
            FAULT
        }
        Ok(Err(kind)) => st.fail(pc, kind),
        Ok(Ok(v)) => {
            st.regs[0] = v;
            match tail {
                Some(target)
                    if st.tail_calls < MAX_TAIL_CALLS && target < st.shared().codes.len() =>
                {
                    st.tail_calls += 1;
                    st.tail_target = target as u64;
                    TAIL
                }
                _ => OK,
            }
        }
    }
}

/// A load the inline check did not allow: the interpreter's `Memory::load` decides (context
/// fields, or the typed fault). The value goes to `tmp`.
pub(crate) extern "C" fn mem_load(state: *mut RunState, addr: u64, len: u64, pc: u64) -> u32 {
    // SAFETY: compiled code passes its run state and waits; `world` is live (see `RunState::validate`).
    let st = unsafe { &mut *state };
    // SAFETY: as in `RunState::validate`.
    let world = unsafe { &mut *st.world };
    let r = world.mem.load(addr, len as usize);
    st.validate_addr(addr);
    match r {
        Ok(v) => {
            st.tmp = v;
            OK
        }
        Err(e) => st.fail(pc, VmErrorKind::Memory(e)),
    }
}

/// A store the inline check did not allow, through `Memory::store`.
pub(crate) extern "C" fn mem_store(
    state: *mut RunState,
    addr: u64,
    value: u64,
    len: u64,
    pc: u64,
) -> u32 {
    // SAFETY: as in `mem_load`.
    let st = unsafe { &mut *state };
    // SAFETY: as in `RunState::validate`.
    let world = unsafe { &mut *st.world };
    let r = world.mem.store(addr, len as usize, value);
    st.validate_addr(addr);
    match r {
        Ok(()) => OK,
        Err(e) => st.fail(pc, VmErrorKind::Memory(e)),
    }
}

/// An atomic the inline check did not allow, through `Memory::atomic`, with the interpreter's
/// operation semantics (`src` and `r0` unmasked). The old value goes to `tmp`.
pub(crate) extern "C" fn mem_atomic(
    state: *mut RunState,
    addr: u64,
    len: u64,
    op: u64,
    src: u64,
    r0: u64,
    pc: u64,
) -> u32 {
    // SAFETY: as in `mem_load`.
    let st = unsafe { &mut *state };
    // SAFETY: as in `RunState::validate`.
    let world = unsafe { &mut *st.world };
    let mask = if len == 8 { u64::MAX } else { u64::from(u32::MAX) };
    let (v, expected) = (src & mask, r0 & mask);
    let f = |old: u64| match op {
        0x00 | 0x01 => old.wrapping_add(v),
        0x40 | 0x41 => old | v,
        0x50 | 0x51 => old & v,
        0xa0 | 0xa1 => old ^ v,
        0xe1 => v,
        _ if old == expected => v,
        _ => old,
    };
    let r = world.mem.atomic(addr, len as usize, f);
    st.validate_addr(addr);
    match r {
        Ok(old) => {
            st.tmp = old;
            OK
        }
        Err(e) => st.fail(pc, VmErrorKind::Memory(e)),
    }
}

/// A legacy packet load the inline check did not allow (the packet's entry not validated
/// yet, or out of bounds): the big-endian value of `len` bytes at `off` of the packet goes
/// to `tmp`, or [`EXIT_ZERO`] ends the run when there is no such byte range.
pub(crate) extern "C" fn ld_abs(state: *mut RunState, off: u64, len: u64) -> u32 {
    // SAFETY: as in `mem_load`.
    let st = unsafe { &mut *state };
    if st.packet == u64::MAX {
        return EXIT_ZERO;
    }
    st.validate(st.packet as usize);
    // SAFETY: as in `RunState::validate`.
    let world = unsafe { &*st.world };
    let packet = RegionId::from_index(st.packet as u32);
    // The kernel passes the offset to its load helper as an `int` (the low 32 bits of
    // `src + imm`): negative SKF_NET_OFF / SKF_LL_OFF offsets are relative to the skb's
    // network and MAC headers, which the interpreter's shared loader resolves.
    match bpflab_vm::ctx::load_abs(&world.mem, packet, off as i32, len as usize) {
        Some(v) => {
            st.tmp = v;
            OK
        }
        None => EXIT_ZERO,
    }
}

/// Zeroes the stack of frame `depth` (a bpf-to-bpf call's new frame).
pub(crate) extern "C" fn zero_stack(state: *mut RunState, depth: u64) -> u32 {
    // SAFETY: as in `mem_load`.
    let st = unsafe { &mut *state };
    // SAFETY: as in `RunState::validate`.
    let world = unsafe { &mut *st.world };
    if (depth as usize) < MAX_FRAMES && st.stack_zero > 0 {
        zero_frame(world, depth as usize, st.stack_zero);
        // The callee loads the table afresh; the caller reloads it when the call returns.
        st.fit();
        st.validate(depth as usize);
    }
    OK
}

/// Records a fault that needs no memory access: see the `RAISE_*` kinds.
pub(crate) extern "C" fn raise(state: *mut RunState, kind: u64, pc: u64, _arg: u64) -> u32 {
    // SAFETY: as in `mem_load`.
    let st = unsafe { &mut *state };
    let kind = match kind {
        RAISE_CALL_DEPTH => VmErrorKind::CallDepth { max: MAX_FRAMES },
        RAISE_FELL_OFF => VmErrorKind::FellOffEnd,
        _ => VmErrorKind::NotAnInstruction,
    };
    st.fail(pc, kind)
}

/// The address of the variant with budget checks of the function at slot `entry` of program
/// `prog` (compiling it on first use), or 0 with the fault recorded.
pub(crate) extern "C" fn checked_variant(state: *mut RunState, prog: u64, entry: u64) -> u64 {
    // SAFETY: as in `mem_load`.
    let st = unsafe { &mut *state };
    // SAFETY: as in `enter`.
    let fns = unsafe { &mut *st.fns };
    // SAFETY: as in `RunState::shared`.
    let shared = unsafe { &*st.shared };
    match fns.checked_variant(&shared.codes, &shared.code_regions, prog as usize, entry as usize) {
        Ok(f) => {
            st.funcs = fns.funcs().as_ptr();
            f as u64
        }
        Err(_) => {
            let error = bpflab_vm::helpers::HelperError::BadArg {
                arg: 0,
                reason: "the JIT failed to compile a function",
            };
            st.fail(entry, VmErrorKind::Helper { name: "jit", error });
            0
        }
    }
}

/// The budget runs out in the segment of program `prog` starting at slot `seg_pc`, at its
/// `k`-th instruction (0-based): records the fault there.
pub(crate) extern "C" fn budget_exhausted(
    state: *mut RunState,
    prog: u64,
    seg_pc: u64,
    k: u64,
) -> u32 {
    // SAFETY: as in `mem_load`.
    let st = unsafe { &mut *state };
    let mut pc = seg_pc as usize;
    if let Some(code) = st.shared().codes.get(prog as usize) {
        for _ in 0..k {
            pc += 1;
            while pc < code.len() && !code.starts_instruction(pc) {
                pc += 1;
            }
        }
    }
    let budget = st.shared().budget;
    st.fail(pc as u64, VmErrorKind::BudgetExhausted { budget })
}
