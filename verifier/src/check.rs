//! The path walk: abstract interpretation of the program instruction by instruction, forking
//! at conditional jumps, storing states at the CFG's prune points and pruning paths whose
//! state a stored, fully explored state covers (the kernel's `do_check`).

use std::time::Instant;

use bpflab_vm::helpers::HelperRegistry;
use bpflab_vm::isa::{AluOp, ByteOrder, CallKind, Insn, JmpCond, Operand, PseudoSrc, Width};
use bpflab_vm::{Collection, Program};

use crate::bounds::{self, Scalar};
use crate::cfg::Cfg;
use crate::config::Config;
use crate::error::{ErrorKind, Stop};
use crate::log::Log;
use crate::report::Stats;
use crate::state::{FP, NREGS, PtrKind, Reg, RegType, State};

/// Largest packet offset the kernel tracks (`MAX_PACKET_OFF`).
pub(crate) const MAX_PACKET_OFF: u64 = 0xffff;
/// Packet range marker: the pointer is known to be beyond `data_end` (`BEYOND_PKT_END`).
pub(crate) const BEYOND_PKT_END: i32 = -1;
/// Packet range marker: the pointer is known to be at `data_end` (`AT_PKT_END`).
pub(crate) const AT_PKT_END: i32 = -2;
/// Largest fixed offset a pointer may get (`BPF_MAX_VAR_OFF`).
pub(crate) const MAX_VAR_OFF: i64 = 1 << 29;

/// A state stored at a prune point.
struct Stored {
    /// The state (dead registers cleared).
    state: State,
    /// The checkpoint this one was reached from.
    parent: Option<usize>,
    /// Paths still being explored below this state; 0 once it is complete.
    branches: u32,
    /// Times it pruned a path.
    hit: u32,
    /// Times it failed to.
    miss: u32,
    /// Still in its instruction's list (evicted states stay as parents).
    listed: bool,
}

impl Stored {
    /// Frees the state's frames and references, keeping the entry as a parent link.
    fn drop_payload(&mut self) {
        self.state.frames = Vec::new();
        self.state.refs = Vec::new();
    }
}

/// A branch waiting to be explored.
struct Pending {
    state: State,
    insn: usize,
    prev: usize,
    parent: Option<usize>,
    /// Where the log and the path go back to when it is explored.
    mark: crate::log::Mark,
}

/// The inner map templates of a collection's map-in-map maps, in map order: the maps a
/// register's `map` index names beyond `coll.maps` ([`Verifier::map_spec`]).
pub(crate) fn inner_templates(coll: &Collection) -> impl Iterator<Item = &bpflab_vm::MapSpec> {
    coll.maps.iter().filter_map(|m| m.inner.as_deref())
}

/// What an instruction leads to.
enum Flow {
    /// Continue at this slot.
    Next(usize),
    /// The path ends (program exit).
    End,
}

/// One verification in progress.
pub(crate) struct Verifier<'a> {
    /// The collection (maps, BTF, kfuncs).
    pub coll: &'a Collection,
    /// The program verified.
    pub prog: &'a Program,
    /// Helper prototypes and availability.
    pub helpers: &'a HelperRegistry,
    /// Limits and flags.
    pub config: &'a Config,
    /// The whole-program analysis.
    pub cfg: Cfg,
    /// Counters.
    pub stats: Stats,
    /// The log.
    pub log: Log,
    /// Deepest stack use per subprogram, in bytes.
    pub stack_depth: Vec<u32>,
    /// Per slot, the pointer kind its memory access first went through (mem.rs's
    /// `save_aux_ptr_type`: "same insn cannot be used with different pointers").
    pub insn_ptr_kind: Vec<Option<PtrKind>>,
    /// Per map, the special fields of its value (mem.rs's `map_fields`), decoded once.
    pub map_fields: Vec<Option<std::rc::Rc<[crate::mem::MapField]>>>,
    /// The inner map templates of map-in-map maps ([`inner_templates`]), at map indices
    /// `coll.maps.len()..`: what a map-in-map lookup's `map_ptr` points to.
    inner_maps: Vec<&'a bpflab_vm::MapSpec>,
    /// Per slot, the registers whose scalar values pruning compares.
    pub precise_in: Vec<crate::prune::Prec>,
    /// What comparisons taught precision so far.
    hints: crate::prune::JumpHints,
    /// How many times `precise_in` was recomputed for newly decided jumps.
    recomputed: u32,
    /// Per slot, the pointer type a load or store first went through (`insn_aux.ptr_type`).
    aux_ptr: Vec<Option<(PtrKind, bool)>>,
    /// What the call checks learned about subprograms (callbacks).
    pub calls: crate::call::CallFacts,
    id_gen: u32,
    stored: Vec<Stored>,
    explored: Vec<Vec<usize>>,
    pending: Vec<Pending>,
    cur_states: u64,
    jmps_processed: u64,
    prev_jmps: u64,
    prev_insns: u64,
}

impl<'a> Verifier<'a> {
    /// Prepares verifying `prog` after the whole-program analysis `cfg`.
    pub(crate) fn new(
        coll: &'a Collection,
        prog: &'a Program,
        helpers: &'a HelperRegistry,
        config: &'a Config,
        cfg: Cfg,
        log: Log,
    ) -> Verifier<'a> {
        let slots = cfg.slots;
        let nsub = cfg.subprogs.len();
        let precise_in = crate::prune::precision_in(
            prog,
            &cfg,
            helpers,
            Some(&crate::prune::JumpHints {
                decided: vec![false; slots],
                linked: vec![(0, 0); slots],
            }),
        );
        Verifier {
            precise_in,
            aux_ptr: vec![None; slots],
            hints: crate::prune::JumpHints {
                decided: vec![false; slots],
                linked: vec![(0, 0); slots],
            },
            recomputed: 0,
            coll,
            prog,
            helpers,
            config,
            cfg,
            stats: Stats::default(),
            log,
            stack_depth: vec![0; nsub],
            insn_ptr_kind: vec![None; slots],
            map_fields: vec![None; coll.maps.len() + inner_templates(coll).count()],
            inner_maps: inner_templates(coll).collect(),
            calls: crate::call::CallFacts::default(),
            id_gen: 0,
            stored: Vec::new(),
            explored: vec![Vec::new(); slots],
            pending: Vec::new(),
            cur_states: 0,
            jmps_processed: 0,
            prev_jmps: 0,
            prev_insns: 0,
        }
    }

    /// The map a register's `map` index names: one of the collection's maps, or an inner
    /// map template (`map->inner_map_meta`) at indices beyond them.
    pub(crate) fn map_spec(&self, idx: u32) -> &'a bpflab_vm::MapSpec {
        let n = self.coll.maps.len();
        match (idx as usize).checked_sub(n) {
            None => &self.coll.maps[idx as usize],
            Some(k) => self.inner_maps[k],
        }
    }

    /// [`Verifier::map_spec`] for an index that may name no map.
    pub(crate) fn map_spec_get(&self, idx: u32) -> Option<&'a bpflab_vm::MapSpec> {
        let n = self.coll.maps.len();
        match (idx as usize).checked_sub(n) {
            None => self.coll.maps.get(idx as usize),
            Some(k) => self.inner_maps.get(k).copied(),
        }
    }

    /// The index of map `outer`'s inner map template, for a map-in-map map.
    pub(crate) fn inner_map_of(&self, outer: u32) -> Option<u32> {
        let outer = outer as usize;
        self.coll.maps.get(outer)?.inner.as_ref()?;
        let before = self.coll.maps[..outer].iter().filter(|m| m.inner.is_some()).count();
        u32::try_from(self.coll.maps.len() + before).ok()
    }

    /// A fresh id for null-check and range sharing or references.
    pub(crate) fn new_id(&mut self) -> u32 {
        self.id_gen += 1;
        self.id_gen
    }

    /// The decoded instruction at `slot`.
    pub(crate) fn insn_at(&self, slot: usize) -> Option<&'a Insn> {
        let i = (*self.cfg.insn_at.get(slot)?)?;
        self.prog.insns.get(i as usize)
    }

    /// Walks every path from `entry`; `Ok` when every path ends in a valid exit.
    pub(crate) fn run(&mut self, entry: State) -> Result<(), Stop> {
        let start = Instant::now();
        let r = self.walk(entry).and_then(|()| crate::call::after_walk(self));
        self.stats.verification_usec = start.elapsed().as_micros() as u64;
        r
    }

    fn walk(&mut self, entry: State) -> Result<(), Stop> {
        self.walk_from(entry, 0)
    }

    /// Walks every path from `entry` at slot `start` (a global function's first slot for
    /// its own verification).
    pub(crate) fn walk_from(&mut self, entry: State, start: usize) -> Result<(), Stop> {
        let mut st = entry;
        let mut insn = start;
        let mut parent: Option<usize> = None;
        loop {
            let slots = self.cfg.slots;
            if insn >= slots {
                return Err(Stop::reject(
                    ErrorKind::InvalidInsn,
                    insn,
                    format!("invalid insn idx {insn} insn_cnt {slots}"),
                ));
            }
            self.stats.processed_insns += 1;
            if self.stats.processed_insns > self.config.max_processed_insns {
                return Err(Stop::reject(
                    ErrorKind::TooComplex,
                    insn,
                    format!(
                        "BPF program is too large. Processed {} insn",
                        self.stats.processed_insns
                    ),
                ));
            }
            let mut ended = false;
            if self.cfg.prune_point[insn] && self.visit(&st, insn, &mut parent)? {
                self.log.pruned(insn);
                ended = true;
            }
            if !ended {
                let Some(&ins) = self.insn_at(insn) else {
                    return Err(Stop::reject(
                        ErrorKind::JumpOutOfRange,
                        insn,
                        format!("jump into the middle of ldimm64 insn {insn}"),
                    ));
                };
                if matches!(ins, Insn::Jump { .. } | Insn::Ja { .. } | Insn::JaLong { .. })
                    || matches!(ins, Insn::Call { .. } | Insn::Exit)
                {
                    self.jmps_processed += 1;
                }
                self.log.before_insn(insn, &ins, &st);
                let flow = self.step(&mut st, insn, ins, parent).map_err(|e| self.locate(e))?;
                let next = match flow {
                    Flow::Next(n) => Some(n),
                    Flow::End => None,
                };
                self.log.after_insn(insn, &ins, &st, next);
                match flow {
                    Flow::Next(n) => {
                        insn = n;
                        continue;
                    }
                    Flow::End => ended = true,
                }
            }
            debug_assert!(ended);
            self.end_path(parent);
            match self.pending.pop() {
                None => return Ok(()),
                Some(p) => {
                    self.log.resume(p.mark, p.prev, p.insn);
                    st = p.state;
                    insn = p.insn;
                    parent = p.parent;
                }
            }
        }
    }

    /// Adds the C source line to an error.
    fn locate(&self, mut e: Stop) -> Stop {
        if let Stop::Reject(err) = &mut e
            && err.line.is_none()
            && let Some(i) = err.insn
        {
            err.line = self.log.source_line(i);
        }
        e
    }

    /// Marks the path below checkpoint `parent` finished.
    fn end_path(&mut self, mut parent: Option<usize>) {
        while let Some(p) = parent {
            let s = &mut self.stored[p];
            s.branches = s.branches.saturating_sub(1);
            if s.branches > 0 {
                break;
            }
            if !s.listed {
                s.drop_payload();
            }
            parent = s.parent;
        }
    }

    /// Queues the other side of a branch.
    pub(crate) fn push_branch(
        &mut self,
        state: State,
        insn: usize,
        prev: usize,
        parent: Option<usize>,
    ) -> Result<(), Stop> {
        if let Some(p) = parent {
            self.stored[p].branches += 1;
        }
        let mark = self.log.mark();
        self.pending.push(Pending { state, insn, prev, parent, mark });
        if self.pending.len() > self.config.max_pending_jumps {
            return Err(Stop::reject(
                ErrorKind::TooComplex,
                prev,
                format!("The sequence of {} jumps is too complex.", self.pending.len()),
            ));
        }
        Ok(())
    }

    /// The kernel's `is_state_visited`: prunes the path (`true`) when a complete stored state
    /// covers `cur`, detects infinite loops against states still being explored, and stores
    /// `cur` as a new checkpoint when the heuristics say so.
    fn visit(
        &mut self,
        cur: &State,
        insn: usize,
        parent: &mut Option<usize>,
    ) -> Result<bool, Stop> {
        let force_new = self.cfg.test_state_freq || self.cfg.force_checkpoint[insn];
        let mut add_new = force_new
            || (self.jmps_processed - self.prev_jmps >= 2
                && self.stats.processed_insns - self.prev_insns >= 8);
        let live = crate::prune::Liveness::at(self, cur, insn);
        let mut states_cnt = 0u64;
        // Newest first, as the kernel walks its list (new states go to its head).
        let mut k = self.explored[insn].len();
        while k > 0 {
            k -= 1;
            let idx = self.explored[insn][k];
            states_cnt += 1;
            let old = &self.stored[idx];
            if old.branches > 0 {
                // At a callback-calling helper, a covered state ends the callback iteration.
                let at_callback_call = self.cfg.calls_callback[insn];
                // At an iterator's next call, a path covered range-wise by an earlier
                // iteration's entry has converged (kfunc.rs); it is never a loop.
                let iter_next = crate::kfunc::is_iter_next_insn(self, insn);
                if iter_next && crate::kfunc::iter_converged(&old.state, cur, &live) {
                    self.stored[idx].hit += 1;
                    return Ok(true);
                }
                if at_callback_call && crate::prune::covers(&old.state, cur, &live) {
                    self.stored[idx].hit += 1;
                    return Ok(true);
                }
                if !at_callback_call
                    && !iter_next
                    && !crate::kfunc::iter_depths_differ(&old.state, cur)
                    && old.state.callback_unroll_depth == cur.callback_unroll_depth
                    && crate::prune::looping(&old.state, cur, &live)
                {
                    self.log.loop_states(cur, &old.state);
                    return Err(Stop::reject(
                        ErrorKind::InfiniteLoop,
                        insn,
                        format!("infinite loop detected at insn {insn}"),
                    ));
                }
                if !force_new
                    && self.jmps_processed - self.prev_jmps < 20
                    && self.stats.processed_insns - self.prev_insns < 100
                {
                    add_new = false;
                }
            } else if crate::kfunc::covers(&old.state, cur, &live) {
                self.stored[idx].hit += 1;
                return Ok(true);
            }
            let s = &mut self.stored[idx];
            if add_new {
                s.miss += 1;
            }
            // A state that keeps missing is dropped (checkpoints forced for loops get more
            // chances while their loop is explored), as the kernel's heuristic does.
            let n = if self.cfg.force_checkpoint[insn] && s.branches > 0 { 64 } else { 3 };
            if s.miss > s.hit * n + n {
                s.listed = false;
                if s.branches == 0 {
                    // Complete and evicted: nothing compares with it or counts through it
                    // again, so its memory goes (the kernel frees such states too).
                    s.drop_payload();
                }
                self.explored[insn].remove(k);
                self.cur_states = self.cur_states.saturating_sub(1);
            }
        }
        self.stats.max_states_per_insn = self.stats.max_states_per_insn.max(states_cnt);
        if !self.config.privileged && states_cnt > self.config.max_states_per_insn as u64 {
            return Ok(false);
        }
        if !add_new {
            return Ok(false);
        }
        // Stored whole: pruning skips the registers dead here, but loop detection compares
        // them too, as the kernel's (uncleaned, in-progress) states do.
        let state = cur.clone();
        self.stored.push(Stored {
            state,
            parent: *parent,
            branches: 1,
            hit: 0,
            miss: 0,
            listed: true,
        });
        let idx = self.stored.len() - 1;
        self.explored[insn].push(idx);
        *parent = Some(idx);
        self.stats.total_states += 1;
        self.cur_states += 1;
        self.stats.peak_states = self.stats.peak_states.max(self.cur_states);
        self.prev_jmps = self.jmps_processed;
        self.prev_insns = self.stats.processed_insns;
        Ok(false)
    }

    /// The stored state at `insn` still being explored on the current path with the same
    /// call sites as `cur` (the kernel's `find_prev_entry`), for widening at callback returns.
    pub(crate) fn prev_entry(&self, cur: &State, insn: usize) -> Option<&State> {
        self.explored.get(insn)?.iter().rev().map(|&i| &self.stored[i]).find_map(|s| {
            let same = s.state.frames.len() == cur.frames.len()
                && s.state.frames.iter().zip(&cur.frames).all(|(a, b)| a.callsite == b.callsite);
            (s.branches > 0 && same).then_some(&s.state)
        })
    }

    /// Like [`Verifier::prev_entry`], skipping checkpoint `skip` (the one just stored for
    /// the current path at `insn`): the entry of the previous iteration of an iterator
    /// loop (the kernel's `find_prev_entry` from the current state's parent).
    pub(crate) fn prev_entry_except(
        &self,
        cur: &State,
        insn: usize,
        skip: Option<usize>,
    ) -> Option<&State> {
        let entries = self.explored.get(insn)?.iter().rev();
        entries.filter(|&&i| Some(i) != skip).map(|&i| &self.stored[i]).find_map(|s| {
            let same = s.state.frames.len() == cur.frames.len()
                && s.state.frames.iter().zip(&cur.frames).all(|(a, b)| a.callsite == b.callsite);
            (s.branches > 0 && same).then_some(&s.state)
        })
    }

    /// Records that the comparison at `insn` was decided by known values: its operands are
    /// precise from now on.
    fn mark_decided(&mut self, insn: usize) {
        if !self.hints.decided[insn] {
            self.hints.decided[insn] = true;
            self.recompute_precision();
        }
    }

    /// Records the registers and stack slots linked to the operands of the comparison at
    /// `insn` (excluding the operands themselves).
    fn mark_linked(&mut self, st: &State, insn: usize, ops: &[(usize, u32)]) {
        let f = st.cur();
        let (mut regs, mut slots) = (0u16, 0u64);
        for &(op, id) in ops {
            if id == 0 {
                continue;
            }
            for (i, r) in f.regs.iter().enumerate() {
                if i != op && r.is_scalar() && r.id == id {
                    regs |= 1 << i;
                }
            }
            for (i, sl) in f.stack.iter().enumerate().take(64) {
                if sl.has_spill() && sl.spilled.is_scalar() && sl.spilled.id == id {
                    slots |= 1 << i;
                }
            }
            if st.frames.len() > 1 {
                // Links into callers' frames: treat the comparison as deciding.
                let other = st.frames[..st.frames.len() - 1].iter().any(|fr| {
                    fr.regs.iter().any(|r| r.is_scalar() && r.id == id)
                        || fr.stack.iter().any(|s| s.has_spill() && s.spilled.id == id)
                });
                if other {
                    self.mark_decided(insn);
                }
            }
        }
        let cur = self.hints.linked[insn];
        let new = (cur.0 | regs, cur.1 | slots);
        if new != cur {
            self.hints.linked[insn] = new;
            self.recompute_precision();
        }
    }

    /// Recomputes the precision table after the hints changed; after many changes, every
    /// comparison is treated as decided, once.
    fn recompute_precision(&mut self) {
        const MAX_RECOMPUTE: u32 = 64;
        if self.recomputed > MAX_RECOMPUTE {
            return;
        }
        self.recomputed += 1;
        let hints = (self.recomputed <= MAX_RECOMPUTE).then_some(&self.hints);
        self.precise_in = crate::prune::precision_in(self.prog, &self.cfg, self.helpers, hints);
    }

    /// The kernel's `save_aux_ptr_type`: a load or store instruction whose context or socket
    /// accesses the kernel rewrites must see the same pointer type on every path.
    fn save_aux_ptr(&mut self, insn: usize, base: &Reg) -> Result<(), Stop> {
        let Some(kind) = base.kind() else { return Ok(()) };
        let key = (kind, base.rdonly);
        let rewritten = |k: PtrKind| {
            matches!(
                k,
                PtrKind::Ctx
                    | PtrKind::Sock
                    | PtrKind::SockCommon
                    | PtrKind::TcpSock
                    | PtrKind::XdpSock
                    | PtrKind::BtfId
            )
        };
        match self.aux_ptr[insn] {
            None => self.aux_ptr[insn] = Some(key),
            Some(prev) if prev != key && (rewritten(prev.0) || rewritten(kind)) => {
                if !(prev.0 == PtrKind::BtfId && kind == PtrKind::BtfId) {
                    return Err(Stop::reject(
                        ErrorKind::InvalidMemAccess,
                        insn,
                        "same insn cannot be used with different pointers",
                    ));
                }
            }
            Some(_) => {}
        }
        Ok(())
    }

    /// Checks that register `r` may be read.
    pub(crate) fn check_read(&self, st: &State, insn: usize, r: usize) -> Result<(), Stop> {
        if !st.reg(r).is_init() {
            return Err(Stop::reject(ErrorKind::UninitRegister, insn, format!("R{r} !read_ok")));
        }
        Ok(())
    }

    /// Checks that register `r` may be written.
    pub(crate) fn check_write(&self, insn: usize, r: usize) -> Result<(), Stop> {
        if r == FP {
            return Err(Stop::reject(ErrorKind::ReadOnly, insn, "frame pointer is read only"));
        }
        Ok(())
    }

    /// Executes one instruction abstractly.
    fn step(
        &mut self,
        st: &mut State,
        insn: usize,
        ins: Insn,
        parent: Option<usize>,
    ) -> Result<Flow, Stop> {
        let next = insn + ins.slots();
        match ins {
            Insn::Alu { width, op, dst, src } => {
                self.alu(st, insn, width == Width::W64, op, dst.idx(), src, parent)?;
                Ok(Flow::Next(next))
            }
            Insn::Neg { width, dst } => {
                let r = self.unary_operand(st, insn, dst.idx())?;
                r.var.neg(width == Width::W64);
                r.id = 0;
                Ok(Flow::Next(next))
            }
            Insn::Endian { order, bits, dst } => {
                let r = self.unary_operand(st, insn, dst.idx())?;
                r.var.endian(order != ByteOrder::Le, bits);
                r.id = 0;
                Ok(Flow::Next(next))
            }
            Insn::AddrSpaceCast { .. } => {
                Err(Stop::unsupported(insn, "arena pointers (addr_space_cast)"))
            }
            Insn::LdImm64 { dst, src, imm, next_imm } => {
                let d = dst.idx();
                self.check_write(insn, d)?;
                let reg = self.ld_imm64(insn, src, imm, next_imm)?;
                *st.reg_mut(d) = reg;
                Ok(Flow::Next(next))
            }
            Insn::LdAbs { size, .. } => {
                let at = crate::mem::check_ld_abs(self, st, insn, size.bytes(), None, parent)?;
                Ok(Flow::Next(at.unwrap_or(next)))
            }
            Insn::LdInd { size, src, .. } => {
                let at = crate::mem::check_ld_abs(
                    self,
                    st,
                    insn,
                    size.bytes(),
                    Some(src.idx()),
                    parent,
                )?;
                Ok(Flow::Next(at.unwrap_or(next)))
            }
            Insn::Load { size, signed, dst, src, off } => {
                let (d, s) = (dst.idx(), src.idx());
                self.check_read(st, insn, s)?;
                self.check_write(insn, d)?;
                let base = *st.reg(s);
                crate::mem::check_mem_access(
                    self,
                    st,
                    insn,
                    s,
                    off,
                    size.bytes(),
                    crate::mem::Access::Read { dst: d, signed },
                )?;
                self.save_aux_ptr(insn, &base)?;
                Ok(Flow::Next(next))
            }
            Insn::Store { size, dst, off, src } => {
                let d = dst.idx();
                let (src, imm) = match src {
                    Operand::Reg(r) => {
                        self.check_read(st, insn, r.idx())?;
                        (Some(r.idx()), 0)
                    }
                    Operand::Imm(i) => (None, i),
                };
                self.check_read(st, insn, d)?;
                let base = *st.reg(d);
                crate::mem::check_mem_access(
                    self,
                    st,
                    insn,
                    d,
                    off,
                    size.bytes(),
                    crate::mem::Access::Write { src, imm },
                )?;
                self.save_aux_ptr(insn, &base)?;
                Ok(Flow::Next(next))
            }
            Insn::Atomic { size, op, dst, src, off } => {
                self.check_read(st, insn, src.idx())?;
                self.check_read(st, insn, dst.idx())?;
                crate::mem::check_atomic(
                    self,
                    st,
                    insn,
                    op,
                    size.bytes(),
                    dst.idx(),
                    src.idx(),
                    off,
                )?;
                Ok(Flow::Next(next))
            }
            Insn::Ja { off } => Ok(Flow::Next(jump_target(insn, i64::from(off)))),
            Insn::JaLong { imm } => Ok(Flow::Next(jump_target(insn, i64::from(imm)))),
            Insn::Jump { width, cond, dst, src, off } => {
                self.cond_jump(st, insn, width == Width::W32, cond, dst.idx(), src, off, parent)
            }
            Insn::Call { kind, imm, .. } => match kind {
                CallKind::Helper => {
                    crate::call::check_helper_call(self, st, insn, imm, parent)?;
                    Ok(Flow::Next(next))
                }
                CallKind::Kfunc => {
                    crate::call::check_kfunc_call(self, st, insn, imm, parent)?;
                    // bpf_throw leaves the program (kfunc.rs).
                    if crate::kfunc::ends_path(self, imm) {
                        return Ok(Flow::End);
                    }
                    Ok(Flow::Next(next))
                }
                CallKind::Local => {
                    let target = jump_target(insn, i64::from(imm));
                    Ok(Flow::Next(crate::call::check_func_call(self, st, insn, target)?))
                }
            },
            Insn::Exit => {
                if st.frames.len() > 1 {
                    Ok(Flow::Next(crate::call::return_from_func(self, st, insn)?))
                } else {
                    crate::call::check_exit(self, st, insn)?;
                    Ok(Flow::End)
                }
            }
        }
    }

    /// The operand of NEG or END: readable and writable; a pointer there is refused to an
    /// unprivileged program and becomes an unknown number for a privileged one (the kernel's
    /// `is_pointer_value` check in `check_alu_op`).
    fn unary_operand<'s>(
        &self,
        st: &'s mut State,
        insn: usize,
        d: usize,
    ) -> Result<&'s mut Reg, Stop> {
        self.check_read(st, insn, d)?;
        self.check_write(insn, d)?;
        let privileged = self.config.privileged;
        let r = st.reg_mut(d);
        if r.is_ptr() {
            if !privileged {
                return Err(Stop::reject(
                    ErrorKind::PointerArithmetic,
                    insn,
                    format!("R{d} pointer arithmetic prohibited"),
                ));
            }
            *r = Reg::unknown();
        }
        Ok(r)
    }

    /// The register an LD_IMM64 produces.
    fn ld_imm64(
        &mut self,
        insn: usize,
        src: PseudoSrc,
        imm: i32,
        next_imm: i32,
    ) -> Result<Reg, Stop> {
        let map = |v: &Self, idx: i32| -> Result<u32, Stop> {
            let i = u32::try_from(idx).ok().filter(|&i| (i as usize) < v.coll.maps.len());
            i.ok_or_else(|| {
                Stop::reject(
                    ErrorKind::InvalidInsn,
                    insn,
                    format!("fd {idx} is not pointing to valid bpf_map"),
                )
            })
        };
        Ok(match src {
            PseudoSrc::Imm => Reg::konst(Insn::imm64(imm, next_imm)),
            PseudoSrc::MapIdx => {
                let m = map(self, imm)?;
                self.map_prog_compat(insn, m)?;
                Reg { map: m, ..Reg::ptr(PtrKind::MapPtr) }
            }
            PseudoSrc::MapIdxValue => {
                let m = map(self, imm)?;
                self.map_prog_compat(insn, m)?;
                let vs = self.map_spec(m).value_size;
                if next_imm < 0 || next_imm as u32 >= vs.max(1) {
                    return Err(Stop::reject(
                        ErrorKind::InvalidInsn,
                        insn,
                        format!(
                            "invalid access to map value pointer, value_size={vs} off={next_imm}"
                        ),
                    ));
                }
                Reg { map: m, off: next_imm, ..Reg::ptr(PtrKind::MapValue) }
            }
            PseudoSrc::Func => {
                let target = jump_target(insn, i64::from(imm));
                crate::call::check_func_ref(self, insn, target)?;
                Reg { subprog: target as u32, ..Reg::ptr(PtrKind::Func) }
            }
            PseudoSrc::BtfId => {
                return crate::ksym::ld_btf_id(insn, imm, next_imm);
            }
            PseudoSrc::MapFd | PseudoSrc::MapValue => {
                return Err(Stop::unsupported(insn, "map file descriptors in raw bytecode"));
            }
        })
    }

    /// Special map value fields the program type may not use (the kernel's
    /// `check_map_prog_compatibility`, checked where the program loads the map).
    fn map_prog_compat(&mut self, insn: usize, map: u32) -> Result<(), Stop> {
        use bpflab_vm::ProgType as T;
        let t = self.prog.prog_type;
        let tracing = matches!(
            t,
            T::Kprobe | T::Tracepoint | T::PerfEvent | T::RawTracepoint | T::RawTracepointWritable
        );
        if !tracing && t != T::SocketFilter {
            return Ok(());
        }
        let fields = crate::mem::map_fields(self, map);
        let has = |name: &str| {
            fields.iter().any(|f| matches!(f.kind, crate::mem::FieldKind::Special(n) if n == name))
        };
        let msg = if tracing && (has("bpf_list_head") || has("bpf_rb_root")) {
            Some("tracing progs cannot use bpf_{list_head,rb_root} yet")
        } else if has("bpf_spin_lock") && t == T::SocketFilter {
            Some("socket filter progs cannot use bpf_spin_lock yet")
        } else if tracing && has("bpf_spin_lock") {
            Some("tracing progs cannot use bpf_spin_lock yet")
        } else if tracing && has("bpf_timer") {
            Some("tracing progs cannot use bpf_timer yet")
        } else if tracing && has("bpf_wq") {
            Some("tracing progs cannot use bpf_wq yet")
        } else {
            None
        };
        match msg {
            Some(m) => Err(Stop::reject(ErrorKind::classify(m), insn, m)),
            None => Ok(()),
        }
    }

    /// ALU and ALU64 instructions.
    #[allow(clippy::too_many_arguments)]
    fn alu(
        &mut self,
        st: &mut State,
        insn: usize,
        is64: bool,
        op: AluOp,
        d: usize,
        src: Operand,
        parent: Option<usize>,
    ) -> Result<(), Stop> {
        let src_reg = match src {
            Operand::Reg(r) => {
                self.check_read(st, insn, r.idx())?;
                Some(r.idx())
            }
            Operand::Imm(_) => None,
        };
        if op != AluOp::Mov && !op.is_movsx() {
            self.check_read(st, insn, d)?;
        }
        self.check_write(insn, d)?;
        let sv = match src {
            Operand::Reg(r) => *st.reg(r.idx()),
            Operand::Imm(i) => {
                if is64 {
                    Reg::konst(i as i64 as u64)
                } else {
                    Reg::konst(u64::from(i as u32))
                }
            }
        };
        if src_reg.is_none() {
            let k = match src {
                Operand::Imm(i) => i,
                Operand::Reg(_) => 0,
            };
            if matches!(op, AluOp::Div | AluOp::Sdiv | AluOp::Mod | AluOp::Smod) && k == 0 {
                return Err(Stop::reject(ErrorKind::Alu, insn, "div by zero"));
            }
            if matches!(op, AluOp::Lsh | AluOp::Rsh | AluOp::Arsh) {
                let width = if is64 { 64 } else { 32 };
                if k < 0 || k >= width {
                    return Err(Stop::reject(ErrorKind::Alu, insn, format!("invalid shift {k}")));
                }
            }
        }
        match op {
            AluOp::Mov => {
                if is64 {
                    if let Some(s) = src_reg {
                        self.link_before_mov(st, s, true);
                    }
                    *st.reg_mut(d) = match src_reg {
                        Some(s) => *st.reg(s),
                        None => sv,
                    };
                } else if sv.is_ptr() {
                    if !self.config.privileged {
                        return Err(Stop::reject(
                            ErrorKind::PointerLeak,
                            insn,
                            format!("R{} partial copy of pointer", src_reg.unwrap_or(0)),
                        ));
                    }
                    let mut var = Scalar::unknown();
                    var.zext32();
                    *st.reg_mut(d) = Reg::scalar(var);
                } else {
                    // `w3 = w2` keeps the link when w2's upper half is known zero.
                    let u32_src = sv.var.umax <= u64::from(u32::MAX);
                    if let Some(s) = src_reg {
                        self.link_before_mov(st, s, u32_src);
                    }
                    let mut r = match src_reg {
                        Some(s) => *st.reg(s),
                        None => sv,
                    };
                    if !u32_src {
                        r.id = 0;
                    }
                    r.var.zext32();
                    r.var.sync();
                    *st.reg_mut(d) = r;
                }
                Ok(())
            }
            AluOp::Movsx8 | AluOp::Movsx16 | AluOp::Movsx32 => {
                let bits: u8 = match op {
                    AluOp::Movsx8 => 8,
                    AluOp::Movsx16 => 16,
                    _ => 32,
                };
                let s = src_reg.unwrap_or(0);
                if sv.is_ptr() {
                    if !self.config.privileged {
                        let m = if is64 {
                            format!("R{s} sign-extension part of pointer")
                        } else {
                            format!("R{s} partial copy of pointer")
                        };
                        return Err(Stop::reject(ErrorKind::PointerLeak, insn, m));
                    }
                    let mut var = Scalar::unknown();
                    if !is64 {
                        var.zext32();
                    }
                    *st.reg_mut(d) = Reg::scalar(var);
                    return Ok(());
                }
                // Values that need no sign extension keep their link.
                let no_sext = sv.var.umax < 1u64 << (bits - 1);
                if let Some(sr) = src_reg {
                    self.link_before_mov(st, sr, no_sext);
                }
                let mut var = Scalar::unknown();
                var.movsx(&sv.var, bits, is64);
                let id = if no_sext { src_reg.map_or(0, |sr| st.reg(sr).id) } else { 0 };
                *st.reg_mut(d) = Reg { id, ..Reg::scalar(var) };
                Ok(())
            }
            _ => {
                let dv = *st.reg(d);
                if dv.is_ptr() || sv.is_ptr() {
                    return self.ptr_alu(st, insn, is64, op, d, src_reg, dv, sv);
                }
                if let Some(is32) = dv.var.fork_on_bitop(op, &sv.var) {
                    // A destination in [-1, 0] is explored as each constant
                    // (`maybe_fork_scalars`): 0 in a queued state from this instruction, -1 here.
                    let mut zero = st.clone();
                    let z = zero.reg_mut(d);
                    if is32 {
                        z.var.mark_known32(0);
                    } else {
                        z.var = Scalar::konst(0);
                    }
                    z.id = 0;
                    self.push_branch(zero, insn, insn, parent)?;
                    let r = st.reg_mut(d);
                    if is32 {
                        r.var.mark_known32(u32::MAX);
                    } else {
                        r.var = Scalar::konst(u64::MAX);
                    }
                    r.id = 0;
                }
                let r = st.reg_mut(d);
                r.var.alu(op, &sv.var, is64);
                r.id = 0;
                r.precise = false;
                Ok(())
            }
        }
    }

    /// Gives scalar register `s` an id before it is copied, so that bounds learned on one copy
    /// reach the other (`assign_scalar_id_before_mov`), when `link` allows it.
    fn link_before_mov(&mut self, st: &mut State, s: usize, link: bool) {
        let r = *st.reg(s);
        if link && r.is_scalar() && r.id == 0 && !r.var.is_const() {
            let id = self.new_id();
            st.reg_mut(s).id = id;
        }
    }

    /// Arithmetic with a pointer operand (the kernel's `adjust_reg_min_max_vals` for
    /// pointers and `adjust_ptr_min_max_vals`, in its order of checks).
    #[allow(clippy::too_many_arguments)]
    fn ptr_alu(
        &mut self,
        st: &mut State,
        insn: usize,
        is64: bool,
        op: AluOp,
        d: usize,
        src_reg: Option<usize>,
        dv: Reg,
        sv: Reg,
    ) -> Result<(), Stop> {
        let priv_ = self.config.privileged;
        let reject = |m: String| Err(Stop::reject(ErrorKind::PointerArithmetic, insn, m));
        if dv.is_ptr() && sv.is_ptr() {
            // Two pointers: only a privileged subtraction, giving an unknown scalar.
            if op == AluOp::Sub && priv_ {
                *st.reg_mut(d) = Reg::unknown();
                return Ok(());
            }
            return reject(format!("R{d} pointer {} pointer prohibited", alu_string(op)));
        }
        let _ = src_reg;
        // Exactly one is a pointer.
        let (ptr, scalar, ptr_is_dst) = if dv.is_ptr() { (dv, sv, true) } else { (sv, dv, false) };
        let kind = ptr.kind().expect("pointer");
        let s = scalar.var;
        let known = s.is_const();
        if !is64 {
            if op == AluOp::Sub && priv_ {
                *st.reg_mut(d) = Reg::unknown();
                return Ok(());
            }
            return reject(format!("R{d} 32-bit pointer arithmetic prohibited"));
        }
        if ptr.maybe_null {
            return reject(format!(
                "R{d} pointer arithmetic on {} prohibited, null-check it first",
                ptr.type_name()
            ));
        }
        let allowed_kind = match kind {
            PtrKind::Ctx
            | PtrKind::MapValue
            | PtrKind::MapKey
            | PtrKind::Stack
            | PtrKind::PacketMeta
            | PtrKind::Packet
            | PtrKind::TpBuffer
            | PtrKind::BtfId
            | PtrKind::Mem
            | PtrKind::Func
            | PtrKind::ConstDynptr => true,
            PtrKind::FlowKeys => known,
            PtrKind::MapPtr => known && s.smin == 0 && op == AluOp::Add,
            _ => false,
        };
        if !allowed_kind {
            return reject(format!("R{d} pointer arithmetic on {} prohibited", ptr.type_name()));
        }
        if !priv_ && kind == PtrKind::MapPtr {
            return reject(format!("R{d} has pointer with unsupported alu operation"));
        }
        let kname = kind.name();
        sane_offset(insn, &scalar, kname)?;
        sane_offset(insn, &ptr, kname)?;
        let mut out = ptr;
        match op {
            AluOp::Add => {
                let fixed = s
                    .const_value()
                    .and_then(|c| i32::try_from(i64::from(ptr.off).checked_add(c as i64)?).ok());
                if let Some(o) = fixed {
                    out.off = o;
                } else {
                    self.var_ptr_checks(insn, d, &ptr)?;
                    out.var.ptr_add(&s);
                    if kind.is_pkt() {
                        out.id = self.new_id();
                        out.range = 0;
                    }
                }
            }
            AluOp::Sub => {
                if !ptr_is_dst {
                    return reject(format!("R{d} tried to subtract pointer from scalar"));
                }
                if kind == PtrKind::Stack {
                    return reject(format!("R{d} subtraction from stack pointer prohibited"));
                }
                let fixed = s
                    .const_value()
                    .and_then(|c| i32::try_from(i64::from(ptr.off).checked_sub(c as i64)?).ok());
                if let Some(o) = fixed {
                    out.off = o;
                } else {
                    self.var_ptr_checks(insn, d, &ptr)?;
                    out.var.ptr_sub(&s);
                    if kind.is_pkt() {
                        out.id = self.new_id();
                        if s.smin < 0 {
                            out.range = 0;
                        }
                    }
                }
            }
            AluOp::And | AluOp::Or | AluOp::Xor => {
                return reject(format!(
                    "R{d} bitwise operator {} on pointer prohibited",
                    alu_string(op)
                ));
            }
            _ => {
                return reject(format!(
                    "R{d} pointer arithmetic with {} operator prohibited",
                    alu_string(op)
                ));
            }
        }
        sane_offset(insn, &out, kname)?;
        *st.reg_mut(d) = out;
        Ok(())
    }

    /// Unprivileged limits on variable pointer offsets.
    fn var_ptr_checks(&self, insn: usize, d: usize, ptr: &Reg) -> Result<(), Stop> {
        if self.config.privileged {
            return Ok(());
        }
        let kind = ptr.kind();
        if kind == Some(PtrKind::Ctx) {
            return Err(Stop::reject(
                ErrorKind::PointerArithmetic,
                insn,
                format!("R{d} variable ctx access prohibited"),
            ));
        }
        if kind == Some(PtrKind::Stack) {
            return Err(Stop::reject(
                ErrorKind::PointerArithmetic,
                insn,
                format!("R{d} variable stack access prohibited for !root, off={}", ptr.off),
            ));
        }
        Ok(())
    }

    /// A conditional jump.
    #[allow(clippy::too_many_arguments)]
    fn cond_jump(
        &mut self,
        st: &mut State,
        insn: usize,
        is32: bool,
        cond: JmpCond,
        d: usize,
        src: Operand,
        off: i16,
        parent: Option<usize>,
    ) -> Result<Flow, Stop> {
        self.check_read(st, insn, d)?;
        let (sv, sreg) = match src {
            Operand::Reg(r) => {
                self.check_read(st, insn, r.idx())?;
                (*st.reg(r.idx()), Some(r.idx()))
            }
            Operand::Imm(i) => {
                let v = if is32 { u64::from(i as u32) } else { i as i64 as u64 };
                (Reg::konst(v), None)
            }
        };
        let dv = *st.reg(d);
        let target = jump_target(insn, i64::from(off));
        let fall = insn + 1;

        if dv.is_ptr() || sv.is_ptr() {
            if !self.config.privileged {
                let cmp_null = sv.is_const(0) && dv.maybe_null;
                if !cmp_null {
                    let r = if dv.is_ptr() { d } else { sreg.unwrap_or(d) };
                    return Err(Stop::reject(
                        ErrorKind::PointerComparison,
                        insn,
                        format!("R{r} pointer comparison prohibited"),
                    ));
                }
            }
            // `if ptr == maybe_null_ptr`: on the equal side the maybe-NULL one is not NULL
            // (that register only, as the kernel's mark_ptr_not_null_reg).
            if let Some(sr) = sreg
                && !is32
                && matches!(cond, JmpCond::Eq | JmpCond::Ne)
                && dv.is_ptr()
                && sv.is_ptr()
                && dv.maybe_null != sv.maybe_null
                && dv.kind() != Some(PtrKind::BtfId)
                && sv.kind() != Some(PtrKind::BtfId)
            {
                let mut taken = st.clone();
                let eq_side = if cond == JmpCond::Eq { &mut taken } else { &mut *st };
                let r = if sv.maybe_null { sr } else { d };
                eq_side.reg_mut(r).maybe_null = false;
                self.push_branch(taken, target, insn, parent)?;
                return Ok(Flow::Next(fall));
            }
            // NULL checks.
            if !is32 && matches!(cond, JmpCond::Eq | JmpCond::Ne) {
                let (p, other) = if dv.is_ptr() { (dv, sv) } else { (sv, dv) };
                if other.is_const(0) {
                    // NULL inference only for `if ptr op 0` with an immediate 0.
                    if p.maybe_null && sreg.is_none() && dv.is_ptr() {
                        let mut taken = st.clone();
                        let null_on_taken = cond == JmpCond::Eq;
                        // The id stays only where a spin lock may need it.
                        let keep_id = p.kind() == Some(PtrKind::MapValue)
                            && crate::mem::map_fields(self, p.map).iter().any(|f| {
                                matches!(f.kind, crate::mem::FieldKind::Special("bpf_spin_lock"))
                            });
                        mark_null(&mut taken, &p, null_on_taken, keep_id);
                        mark_null(st, &p, !null_on_taken, keep_id);
                        self.push_branch(taken, target, insn, parent)?;
                        return Ok(Flow::Next(fall));
                    }
                    if reg_not_null(&p) {
                        // A pointer known not to be NULL never equals 0.
                        return Ok(Flow::Next(if cond == JmpCond::Ne { target } else { fall }));
                    }
                }
            }
            if !is32
                && sreg.is_some()
                && let Some(flow) = self.pkt_compare(
                    st,
                    insn,
                    cond,
                    dv,
                    sv,
                    d,
                    sreg.unwrap_or(0),
                    target,
                    fall,
                    parent,
                )?
            {
                return Ok(flow);
            }
            let mut taken = st.clone();
            // `if p == q` with q known non-NULL: p is not NULL where they are equal.
            if !is32
                && let Some(sr) = sreg
                && dv.is_ptr()
                && sv.is_ptr()
                && dv.maybe_null != sv.maybe_null
                && dv.kind() != Some(PtrKind::BtfId)
                && sv.kind() != Some(PtrKind::BtfId)
                && matches!(cond, JmpCond::Eq | JmpCond::Ne)
            {
                let r = if sv.maybe_null { sr } else { d };
                let eq_side = if cond == JmpCond::Eq { &mut taken } else { &mut *st };
                eq_side.reg_mut(r).maybe_null = false;
            }
            self.push_branch(taken, target, insn, parent)?;
            return Ok(Flow::Next(fall));
        }

        let taken = bounds::branch_taken(cond, &dv.var, &sv.var, is32);
        if taken.is_some() {
            // A decided comparison makes its operands precise.
            self.mark_decided(insn);
        } else if linked(st, dv.id) || sreg.is_some_and(|_| linked(st, sv.id)) {
            // One whose refinement reaches other registers through a shared id makes them
            // precise where those registers are (precision flows along the link).
            let mut ops = vec![(d, dv.id)];
            if let Some(sr) = sreg {
                ops.push((sr, sv.id));
            }
            self.mark_linked(st, insn, &ops);
        }
        match taken {
            Some(true) => Ok(Flow::Next(target)),
            Some(false) => Ok(Flow::Next(fall)),
            None => {
                let mut taken = st.clone();
                refine_regs(&mut taken, cond, d, sreg, &sv, true, is32);
                refine_regs(st, cond, d, sreg, &sv, false, is32);
                self.push_branch(taken, target, insn, parent)?;
                Ok(Flow::Next(fall))
            }
        }
    }

    /// Comparisons of packet pointers with `data_end` (or meta with data): sets the proven
    /// range on the side where the access is in bounds.
    #[allow(clippy::too_many_arguments)]
    fn pkt_compare(
        &mut self,
        st: &mut State,
        insn: usize,
        cond: JmpCond,
        dv: Reg,
        sv: Reg,
        d: usize,
        s: usize,
        target: usize,
        fall: usize,
        parent: Option<usize>,
    ) -> Result<Option<Flow>, Stop> {
        let is_end = |p: &Reg, q: &Reg| match p.kind() {
            Some(PtrKind::Packet) => q.kind() == Some(PtrKind::PacketEnd),
            Some(PtrKind::PacketMeta) => {
                q.kind() == Some(PtrKind::Packet) && q.off == 0 && q.var.const_value() == Some(0)
            }
            _ => false,
        };
        // Normalise to "pkt OP end".
        let (pkt, preg, op) = if is_end(&dv, &sv) {
            (dv, d, cond)
        } else if is_end(&sv, &dv) {
            let flipped = match cond {
                JmpCond::Gt => JmpCond::Lt,
                JmpCond::Lt => JmpCond::Gt,
                JmpCond::Ge => JmpCond::Le,
                JmpCond::Le => JmpCond::Ge,
                other => other,
            };
            (sv, s, flipped)
        } else {
            return Ok(None);
        };
        // (taken side: Ok(open) = good range, Err(marker); fall side likewise)
        let (taken_rule, fall_rule): (Result<bool, i32>, Result<bool, i32>) = match op {
            JmpCond::Gt => (Err(BEYOND_PKT_END), Ok(false)),
            JmpCond::Ge => (Err(AT_PKT_END), Ok(true)),
            JmpCond::Lt => (Ok(true), Err(AT_PKT_END)),
            JmpCond::Le => (Ok(false), Err(BEYOND_PKT_END)),
            _ => return Ok(None),
        };
        // Already decided by an earlier comparison?
        if pkt.range < 0 {
            let decided = match op {
                JmpCond::Gt | JmpCond::Le if pkt.range == BEYOND_PKT_END => Some(op == JmpCond::Gt),
                JmpCond::Ge | JmpCond::Lt
                    if pkt.range == BEYOND_PKT_END || pkt.range == AT_PKT_END =>
                {
                    Some(op == JmpCond::Ge)
                }
                _ => None,
            };
            if let Some(t) = decided {
                return Ok(Some(Flow::Next(if t { target } else { fall })));
            }
        }
        let _ = insn;
        let mut taken = st.clone();
        apply_pkt_rule(&mut taken, &pkt, preg, taken_rule);
        apply_pkt_rule(st, &pkt, preg, fall_rule);
        self.push_branch(taken, target, insn, parent)?;
        Ok(Some(Flow::Next(fall)))
    }
}

/// The operator as the kernel's messages print it (`bpf_alu_string`).
fn alu_string(op: AluOp) -> &'static str {
    match op {
        AluOp::Add => "+=",
        AluOp::Sub => "-=",
        AluOp::Mul => "*=",
        AluOp::Div | AluOp::Sdiv => "/=",
        AluOp::Or => "|=",
        AluOp::And => "&=",
        AluOp::Lsh => "<<=",
        AluOp::Rsh => ">>=",
        AluOp::Mod | AluOp::Smod => "%=",
        AluOp::Xor => "^=",
        AluOp::Mov | AluOp::Movsx8 | AluOp::Movsx16 | AluOp::Movsx32 => "=",
        AluOp::Arsh => "s>>=",
    }
}

/// The kernel's `check_reg_sane_offset` for one operand or the result of pointer arithmetic
/// on a pointer of kind `kname`.
fn sane_offset(insn: usize, r: &Reg, kname: &str) -> Result<(), Stop> {
    let reject = |m: String| Err(Stop::reject(ErrorKind::PointerArithmetic, insn, m));
    if let Some(v) = r.var.const_value() {
        let v = v as i64;
        if v >= MAX_VAR_OFF || v <= -MAX_VAR_OFF {
            return reject(format!("math between {kname} pointer and {v} is not allowed"));
        }
    }
    if i64::from(r.off) >= MAX_VAR_OFF || i64::from(r.off) <= -MAX_VAR_OFF {
        return reject(format!("{kname} pointer offset {} is not allowed", r.off));
    }
    if r.var.smin == i64::MIN {
        return reject(format!(
            "math between {kname} pointer and register with unbounded min value is not allowed"
        ));
    }
    if r.var.smin >= MAX_VAR_OFF || r.var.smin <= -MAX_VAR_OFF {
        return reject(format!("value {} makes {kname} pointer be out of bounds", r.var.smin));
    }
    Ok(())
}

/// The slot a jump at `insn` with offset `off` goes to.
pub(crate) fn jump_target(insn: usize, off: i64) -> usize {
    (insn as i64 + 1 + off).max(0) as usize
}

/// Whether a pointer is known not to be NULL (the kernel's `reg_not_null`): only these kinds
/// decide a comparison with 0; others (ctx, stack, packet) leave both branches open.
pub(crate) fn reg_not_null(r: &Reg) -> bool {
    if r.maybe_null || r.var.smin <= -MAX_VAR_OFF || r.var.smax >= MAX_VAR_OFF {
        return false;
    }
    matches!(
        r.kind(),
        Some(
            PtrKind::Sock
                | PtrKind::TcpSock
                | PtrKind::XdpSock
                | PtrKind::MapValue
                | PtrKind::MapKey
                | PtrKind::SockCommon
                | PtrKind::Mem
                | PtrKind::MapPtr
        )
    ) || (r.kind() == Some(PtrKind::BtfId) && r.ref_obj_id != 0)
}

/// Applies a packet comparison's outcome to one side.
fn apply_pkt_rule(st: &mut State, pkt: &Reg, preg: usize, rule: Result<bool, i32>) {
    match rule {
        Ok(open) => {
            if pkt.off < 0 || (pkt.off == 0 && open) {
                return;
            }
            if pkt.var.umax > MAX_PACKET_OFF || pkt.var.umax + pkt.off as u64 > MAX_PACKET_OFF {
                return;
            }
            let new_range = pkt.off + i32::from(open);
            let (kind, id) = (pkt.kind(), pkt.id);
            st.for_each_reg(|r| {
                if r.kind() == kind && r.id == id {
                    r.range = r.range.max(new_range);
                }
            });
        }
        Err(marker) => {
            st.reg_mut(preg).range = marker;
        }
    }
}

/// Marks every copy of the maybe-NULL pointer `p` (same id) as NULL (a zero scalar) or as
/// non-NULL on one side of a NULL check; a NULL reference is no longer held.
///
/// As the kernel does (`mark_ptr_or_null_reg`), the non-NULL copies drop their id unless it
/// may still name a spin lock (`keep_id`), so that pruning is not held back by it.
fn mark_null(st: &mut State, p: &Reg, is_null: bool, keep_id: bool) {
    let id = p.id;
    if id == 0 {
        return;
    }
    let ref_id = p.ref_obj_id;
    st.for_each_reg(|r| {
        if r.is_ptr() && r.maybe_null && r.id == id {
            if is_null {
                *r = Reg::konst(0);
            } else {
                r.maybe_null = false;
                if !keep_id {
                    r.id = 0;
                }
            }
        }
    });
    if is_null && ref_id != 0 && ref_id == id {
        st.refs.retain(|r| r.id != ref_id);
    }
}

/// Refines both operands of a scalar comparison for one side, and every register linked to
/// them by id.
fn refine_regs(
    st: &mut State,
    cond: JmpCond,
    d: usize,
    s: Option<usize>,
    sv: &Reg,
    taken: bool,
    is32: bool,
) {
    if s == Some(d) {
        // `if r1 > r1`: one register is both operands.
        let mut a = st.reg(d).var;
        bounds::refine_same(cond, &mut a, taken, is32);
        let id = st.reg(d).id;
        st.reg_mut(d).var = a;
        if id != 0 {
            sync_linked(st, id, a);
        }
        return;
    }
    let mut a = st.reg(d).var;
    let mut b = match s {
        Some(r) => st.reg(r).var,
        None => sv.var,
    };
    bounds::refine(cond, &mut a, &mut b, taken, is32);
    let did = st.reg(d).id;
    st.reg_mut(d).var = a;
    if did != 0 {
        sync_linked(st, did, a);
    }
    if let Some(r) = s
        && st.reg(r).is_scalar()
    {
        let sid = st.reg(r).id;
        st.reg_mut(r).var = b;
        if sid != 0 {
            sync_linked(st, sid, b);
        }
    }
}

/// Whether more than one register or spilled register holds scalar id `id`.
fn linked(st: &State, id: u32) -> bool {
    if id == 0 {
        return false;
    }
    let mut n = 0;
    for f in &st.frames {
        n += f.regs.iter().filter(|r| r.is_scalar() && r.id == id).count();
        n += f
            .stack
            .iter()
            .filter(|s| s.has_spill() && s.spilled.is_scalar() && s.spilled.id == id)
            .count();
        if n > 1 {
            return true;
        }
    }
    false
}

/// Copies refined bounds to every scalar sharing `id`.
fn sync_linked(st: &mut State, id: u32, var: Scalar) {
    st.for_each_reg(|r| {
        if r.is_scalar() && r.id == id {
            r.var = var;
        }
    });
}

/// Registers read by stores into the ctx and kept for the checks.
#[allow(dead_code)]
pub(crate) fn is_reg_type(r: &Reg, t: RegType) -> bool {
    r.ty == t
}

/// How many registers a frame has (for iteration in other modules).
#[allow(dead_code)]
pub(crate) const REGS: usize = NREGS;
