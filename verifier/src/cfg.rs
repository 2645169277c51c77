//! The whole-program checks the Linux verifier makes before its path walk, in its order:
//! the program size (checked by `bpf(2)` before the verifier runs), func info record order,
//! subprogram discovery from local calls, `func` pseudo loads and the exception callback,
//! jumps kept inside their subprogram and subprograms that cannot fall into the next one, BTF
//! func and line info against the subprogram layout (or, without func info, no LD_ABS or tail
//! calls in subprograms), the map references of 64-bit immediate loads, the depth-first walk
//! of the control-flow graph (jumps out of range, loops the mode forbids, unreachable
//! instructions, jumps into the middle of an LD_IMM64), and which program types may sleep.
//! Its result, [`Cfg`], holds what the walk needs from this pass: slot and instruction
//! indices, the subprograms, the kernel's prune points, forced checkpoints and jump-history
//! points, and the registers live before each instruction (the kernel's static liveness).
//!
//! Everything is indexed by slot, as the kernel counts instructions: an LD_IMM64 takes two.
//! Errors carry the kernel's message and the slot the kernel names; the class is the one
//! [`ErrorKind::classify`] gives the kernel's line, so that both sides of a comparison agree.
//! [`decode_error_message`] and [`raw_program_error`] give the kernel's errors for encodings
//! bpflab's decoder refuses.

use bpflab_vm::Program;
use bpflab_vm::engine::KernelLineInfo;
use bpflab_vm::helpers::HelperRegistry;
use bpflab_vm::isa::{
    AtomicOp, CallKind, Class, DecodeError, DecodeErrorKind, Field, Insn, Operand, PseudoSrc,
    RawInsn, decode_one,
};
use bpflab_vm::spec::{Collection, KfuncRef, MapSpec, MapType};

use crate::config::Config;
use crate::error::{ErrorKind, VerifyError};

/// Helper id of `bpf_tail_call`.
const FUNC_TAIL_CALL: i32 = 12;
/// Helper id of `bpf_for_each_map_elem`.
const FUNC_FOR_EACH_MAP_ELEM: i32 = 164;
/// Helper id of `bpf_timer_set_callback`.
const FUNC_TIMER_SET_CALLBACK: i32 = 170;
/// Helper id of `bpf_find_vma`.
const FUNC_FIND_VMA: i32 = 180;
/// Helper id of `bpf_loop`.
const FUNC_LOOP: i32 = 181;
/// Helper id of `bpf_user_ringbuf_drain`.
const FUNC_USER_RINGBUF_DRAIN: i32 = 209;
/// Largest offset into a map value an LD_IMM64 may carry (`BPF_MAX_VAR_OFF`).
const MAX_VAR_OFF: u32 = 1 << 29;
/// Helpers that may move packet data, so that packet pointers are invalid after them (a
/// tail-called program may call any of them).
const PKT_CHANGING_HELPERS: &[&str] = &[
    "bpf_clone_redirect",
    "bpf_l3_csum_replace",
    "bpf_l4_csum_replace",
    "bpf_lwt_push_encap",
    "bpf_lwt_seg6_action",
    "bpf_lwt_seg6_adjust_srh",
    "bpf_lwt_seg6_store_bytes",
    "bpf_msg_pop_data",
    "bpf_msg_pull_data",
    "bpf_msg_push_data",
    "bpf_skb_adjust_room",
    "bpf_skb_change_head",
    "bpf_skb_change_proto",
    "bpf_skb_change_tail",
    "bpf_skb_pull_data",
    "bpf_skb_store_bytes",
    "bpf_skb_vlan_pop",
    "bpf_skb_vlan_push",
    "bpf_store_hdr_opt",
    "bpf_xdp_adjust_head",
    "bpf_xdp_adjust_meta",
    "bpf_xdp_adjust_tail",
    "bpf_tail_call",
];
/// Per helper id, how many arguments the kernel's prototype takes (the signatures in the uapi
/// header's helper documentation, variadic `...` not counted): what the kernel's liveness
/// takes a call to read, r1 up to that many.
const HELPER_ARGS: [u8; 212] = [
    0, 2, 4, 2, 3, 0, 2, 0, 0, 5, 5, 5, 3, 3, 0, 0, 2, 1, 3, 1, 4, 4, 2, 2, 1, 5, 4, 3, 5, 3, 3, 3,
    2, 3, 1, 0, 3, 2, 3, 2, 2, 1, 0, 3, 2, 3, 1, 1, 2, 5, 4, 3, 4, 4, 2, 4, 3, 5, 2, 2, 4, 2, 2, 4,
    3, 2, 5, 4, 5, 4, 4, 4, 4, 4, 4, 3, 4, 1, 4, 1, 0, 2, 4, 2, 5, 5, 1, 3, 2, 2, 4, 4, 3, 1, 1, 1,
    1, 1, 1, 5, 5, 4, 3, 3, 3, 4, 4, 4, 2, 1, 5, 5, 3, 3, 3, 3, 2, 1, 0, 4, 4, 5, 1, 1, 3, 0, 5, 3,
    1, 2, 4, 3, 2, 2, 2, 2, 1, 1, 1, 1, 1, 4, 4, 4, 3, 4, 2, 3, 3, 5, 4, 1, 4, 2, 1, 2, 4, 2, 0, 2,
    0, 3, 1, 5, 4, 5, 3, 4, 1, 3, 2, 3, 1, 1, 1, 1, 3, 4, 1, 4, 5, 4, 3, 3, 2, 1, 0, 1, 1, 4, 4, 5,
    3, 3, 2, 3, 1, 4, 4, 2, 2, 5, 5, 3, 3, 3, 2, 2, 0, 4, 4, 2,
];
/// Registers r0..r5, which calls clobber.
const CALLER_SAVED: u16 = 0x3f;
/// Registers r0..r10.
const ALL_REGS: u16 = 0x7ff;

/// One function of the program: the main program or a subprogram reached by a local call or
/// a `func` pseudo load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subprog {
    /// First slot.
    pub start: usize,
    /// One past the last slot (the next subprogram's start, or the program's length).
    pub end: usize,
    /// Global (non-static) function, from BTF func info linkage; `false` without BTF.
    pub is_global: bool,
    /// It calls `bpf_tail_call`.
    pub has_tail_call: bool,
    /// It uses LD_ABS or LD_IND.
    pub has_ld_abs: bool,
    /// It, or a function it calls, may move packet data (a helper such as
    /// `bpf_skb_pull_data`, a tail call, `bpf_xdp_pull_data`): calling it invalidates packet
    /// pointers.
    pub changes_pkt_data: bool,
    /// It is the program's exception callback (BTF decl tag `exception_callback:NAME`).
    pub is_exception_cb: bool,
    /// Stack depth, filled in by the walk (0 here).
    pub stack_depth: u32,
}

/// What the pre-walk checks learn about a program, per slot and per subprogram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cfg {
    /// Program length in slots.
    pub slots: usize,
    /// Per slot, the index into `program.insns` of the instruction starting there (`None` for
    /// the second slot of an LD_IMM64).
    pub insn_at: Vec<Option<u32>>,
    /// Per instruction index, its first slot.
    pub slot_of: Vec<u32>,
    /// The functions, sorted by start; `subprogs[0]` is the main program at slot 0.
    pub subprogs: Vec<Subprog>,
    /// Per slot: the kernel considers storing a state here (jump targets, conditional jumps,
    /// the slot after a call, callback-calling calls, `func` loads), as its CFG walk marks
    /// them. With `test_state_freq` the kernel stores a state at every one of them.
    pub prune_point: Vec<bool>,
    /// Per slot: the kernel always stores a state here (callback-calling calls, open-coded
    /// iterator `next` kfunc calls).
    pub force_checkpoint: Vec<bool>,
    /// Per slot: the kernel records the jump history here (jump targets, slots after calls,
    /// callback-calling calls).
    pub jmp_point: Vec<bool>,
    /// Per slot: helper or kfunc calls that call a callback synchronously (`bpf_loop`,
    /// `bpf_for_each_map_elem`, `bpf_find_vma`, `bpf_user_ringbuf_drain`, `bpf_rbtree_add`).
    pub calls_callback: Vec<bool>,
    /// Per slot: bitmask of the registers r0..r10 live before the instruction (bit n = rn),
    /// as the kernel's static liveness computes it; 0 for the second slot of an LD_IMM64.
    pub live_in: Vec<u16>,
    /// Slots of kfunc calls (checked by the walk).
    pub kfunc_calls: Vec<usize>,
    /// The index in `subprogs` of the exception callback, if the program names one.
    pub exception_callback: Option<usize>,
    /// `BPF_F_TEST_STATE_FREQ` in effect (privileged loads only): every prune point stores a
    /// state.
    pub test_state_freq: bool,
}

impl Cfg {
    /// The instruction starting at `slot` (`None` inside an LD_IMM64 or past the end).
    pub fn insn<'p>(&self, program: &'p Program, slot: usize) -> Option<&'p Insn> {
        let idx = (*self.insn_at.get(slot)?)?;
        program.insns.get(idx as usize)
    }

    /// The index of the subprogram holding `slot`.
    pub fn subprog_of(&self, slot: usize) -> Option<usize> {
        if slot >= self.slots {
            return None;
        }
        let i = self.subprogs.partition_point(|s| s.start <= slot);
        i.checked_sub(1)
    }

    /// The index of the subprogram starting exactly at `slot`.
    pub fn subprog_starting_at(&self, slot: usize) -> Option<usize> {
        self.subprogs.binary_search_by_key(&slot, |s| s.start).ok()
    }
}

/// Runs the kernel's pre-walk checks on `program`, whose `map_idx` pseudo sources index the
/// collection's `map_count` maps (`map_fd` ones are literal file descriptors, which the
/// kernel refuses), and returns what the walk needs, or the kernel's first error.
pub fn analyze(
    program: &Program,
    map_count: usize,
    helpers: &HelperRegistry,
    config: &Config,
) -> Result<Cfg, VerifyError> {
    let env = Env {
        maps: Maps::Count(map_count),
        kfuncs: &[],
        btf: None,
        func_info: &program.func_info,
        line_info: &program.line_info,
        helpers,
        config,
    };
    env.analyze(program)
}

/// [`analyze`] for program `index` of `collection`, using what the collection knows beyond a
/// map count: the maps' types and value sizes (direct value loads), kfunc names (iterator and
/// callback kfuncs) and BTF (global functions and return types in func info).
pub fn analyze_in(
    collection: &Collection,
    index: usize,
    helpers: &HelperRegistry,
    config: &Config,
) -> Result<Cfg, VerifyError> {
    let program = collection.programs.get(index).ok_or_else(|| {
        VerifyError::program(
            ErrorKind::Other,
            format!("no program {index}: the collection has {}", collection.programs.len()),
        )
    })?;
    let btf = collection.btf.as_deref().and_then(|b| bpflab_btf::Btf::parse(b).ok());
    // Func and line info reach the kernel only with the BTF they refer to.
    let (func_info, line_info): (&[(u32, u32)], &[KernelLineInfo]) = match collection.btf {
        Some(_) => (&program.func_info, &program.line_info),
        None => (&[], &[]),
    };
    let env = Env {
        maps: Maps::Specs(&collection.maps),
        kfuncs: &collection.kfuncs,
        btf: btf.as_ref(),
        func_info,
        line_info,
        helpers,
        config,
    };
    env.analyze(program)
}

/// An error with the kernel's message, classed as the kernel's log line would be.
fn kernel_error(insn: usize, message: String) -> VerifyError {
    VerifyError::new(ErrorKind::classify(&message), insn, message)
}

/// What is known of the collection's maps.
enum Maps<'a> {
    /// Only how many there are.
    Count(usize),
    /// Their specifications.
    Specs(&'a [MapSpec]),
}

impl Maps<'_> {
    fn count(&self) -> usize {
        match self {
            Maps::Count(n) => *n,
            Maps::Specs(s) => s.len(),
        }
    }
}

/// One analysis: the program's surroundings.
struct Env<'a> {
    maps: Maps<'a>,
    kfuncs: &'a [KfuncRef],
    btf: Option<&'a bpflab_btf::Btf>,
    /// The func info the kernel is given: `(first slot, BTF FUNC id)` per function.
    func_info: &'a [(u32, u32)],
    /// The line info the kernel is given.
    line_info: &'a [KernelLineInfo],
    helpers: &'a HelperRegistry,
    config: &'a Config,
}

/// DFS states of a slot, as the kernel's CFG walk keeps them.
const DISCOVERED: u8 = 0x10;
const EXPLORED: u8 = 0x20;
const FALLTHROUGH: u8 = 1;
const BRANCH: u8 = 2;

/// Whether a visit finished with a slot or must come back to it.
enum Visit {
    Done,
    Keep,
}

/// What a slot is, for the slot-level walks (the second half of an LD_IMM64 is a plain
/// instruction with opcode 0 to the kernel).
#[derive(Clone, Copy)]
enum SlotKind<'p> {
    Insn(&'p Insn),
    LdImm64Tail,
}

impl<'a> Env<'a> {
    fn analyze(&self, program: &Program) -> Result<Cfg, VerifyError> {
        let mut cfg = self.layout(program)?;
        self.check_func_info_early()?;
        self.add_subprogs(program, &mut cfg)?;
        self.check_subprogs(program, &mut cfg)?;
        self.check_btf_info(&mut cfg)?;
        self.check_pseudo_loads(program, &cfg)?;
        let postorder = self.check_cfg(program, &mut cfg)?;
        self.check_sleepable(program)?;
        self.compute_live_regs(program, &mut cfg, &postorder);
        Ok(cfg)
    }

    /// Slot layout and the size limits `bpf(2)` checks before the verifier.
    fn layout(&self, program: &Program) -> Result<Cfg, VerifyError> {
        let slots: usize = program.insns.iter().map(Insn::slots).sum();
        if slots == 0 {
            return Err(VerifyError::program(
                ErrorKind::Other,
                "empty program: BPF_PROG_LOAD refuses 0 instructions with E2BIG before the \
                 verifier runs (no log)",
            ));
        }
        let limit = self.config.max_insns();
        if slots > limit {
            return Err(VerifyError::program(
                ErrorKind::TooComplex,
                format!(
                    "BPF program is too large: {slots} insns, the limit is {limit}; \
                     BPF_PROG_LOAD refuses it with E2BIG before the verifier runs (no log)"
                ),
            ));
        }
        use bpflab_vm::ProgType;
        if !self.config.privileged
            && !matches!(
                program.prog_type,
                ProgType::SocketFilter | ProgType::CgroupSkb | ProgType::Unspec
            )
        {
            return Err(VerifyError::program(
                ErrorKind::Other,
                format!(
                    "unprivileged loads may only be socket_filter or cgroup_skb programs: \
                     BPF_PROG_LOAD refuses a {} program with EPERM before the verifier runs \
                     (no log)",
                    program.prog_type.name()
                ),
            ));
        }
        let mut insn_at = Vec::with_capacity(slots);
        let mut slot_of = Vec::with_capacity(program.insns.len());
        for (i, insn) in program.insns.iter().enumerate() {
            slot_of.push(insn_at.len() as u32);
            insn_at.push(Some(i as u32));
            if insn.slots() == 2 {
                insn_at.push(None);
            }
        }
        Ok(Cfg {
            slots,
            insn_at,
            slot_of,
            subprogs: Vec::new(),
            prune_point: vec![false; slots],
            force_checkpoint: vec![false; slots],
            jmp_point: vec![false; slots],
            calls_callback: vec![false; slots],
            live_in: vec![0; slots],
            kfunc_calls: Vec::new(),
            exception_callback: None,
            test_state_freq: self.config.privileged && self.config.flags.test_state_freq,
        })
    }

    /// The slots of `program` with what each holds.
    fn slot_kinds<'p>(
        &self,
        program: &'p Program,
    ) -> impl Iterator<Item = (usize, SlotKind<'p>)> + 'p {
        program
            .insns
            .iter()
            .flat_map(|insn| {
                let tail = (insn.slots() == 2).then_some(SlotKind::LdImm64Tail);
                std::iter::once(SlotKind::Insn(insn)).chain(tail)
            })
            .enumerate()
    }

    /// The kernel's early func info checks (record order), made before subprograms are known.
    fn check_func_info_early(&self) -> Result<(), VerifyError> {
        let mut prev = 0u32;
        for (i, &(off, type_id)) in self.func_info.iter().enumerate() {
            if i == 0 && off != 0 {
                return Err(VerifyError::program(
                    ErrorKind::Other,
                    format!("nonzero insn_off {off} for the first func info record"),
                ));
            }
            if i > 0 && off <= prev {
                return Err(VerifyError::program(
                    ErrorKind::Other,
                    format!(
                        "same or smaller insn offset ({off}) than previous func info record \
                         ({prev})"
                    ),
                ));
            }
            if let Some(btf) = self.btf
                && !matches!(btf.type_by_id(type_id), Ok(bpflab_btf::BtfType::Func { .. }))
            {
                return Err(VerifyError::program(
                    ErrorKind::Other,
                    format!("invalid type id {type_id} in func info"),
                ));
            }
            prev = off;
        }
        Ok(())
    }

    /// Subprogram discovery: the main program, then every local call's and `func` load's
    /// target, in slot order; kfunc calls are recorded.
    fn add_subprogs(&self, program: &Program, cfg: &mut Cfg) -> Result<(), VerifyError> {
        let mut starts = vec![0usize];
        // The distinct (BTF id, module) kfunc pairs called.
        let mut kfuncs: Vec<(i32, i16)> = Vec::new();
        for (slot, kind) in self.slot_kinds(program) {
            let SlotKind::Insn(insn) = kind else { continue };
            let (target, kfunc) = match *insn {
                Insn::Call { kind: CallKind::Local, imm, .. }
                | Insn::LdImm64 { src: PseudoSrc::Func, imm, .. } => (Some(imm), None),
                Insn::Call { kind: CallKind::Kfunc, imm, off } => (None, Some((imm, off))),
                _ => continue,
            };
            if !self.config.privileged {
                return Err(kernel_error(
                    slot,
                    "loading/calling other bpf or kernel functions are allowed for CAP_BPF \
                     and CAP_SYS_ADMIN"
                        .into(),
                ));
            }
            if let Some((imm, off)) = kfunc {
                cfg.kfunc_calls.push(slot);
                self.add_kfunc(program, slot, imm, off, &mut kfuncs)?;
                continue;
            }
            let Some(imm) = target else { continue };
            let dest = slot as i64 + i64::from(imm) + 1;
            if dest < 0 || dest >= cfg.slots as i64 {
                return Err(kernel_error(slot, "call to invalid destination".into()));
            }
            let dest = dest as usize;
            if let Err(pos) = starts.binary_search(&dest) {
                if starts.len() >= self.config.max_subprogs {
                    return Err(kernel_error(slot, "too many subprograms".into()));
                }
                starts.insert(pos, dest);
            }
        }
        let ex_start = self.exception_callback_start()?;
        if let Some(ex) = ex_start {
            if ex >= cfg.slots {
                return Err(kernel_error(ex, "call to invalid destination".into()));
            }
            if let Err(pos) = starts.binary_search(&ex) {
                if starts.len() >= self.config.max_subprogs {
                    return Err(kernel_error(ex, "too many subprograms".into()));
                }
                starts.insert(pos, ex);
            }
        }
        cfg.subprogs = starts
            .iter()
            .enumerate()
            .map(|(i, &start)| Subprog {
                start,
                end: starts.get(i + 1).copied().unwrap_or(cfg.slots),
                is_global: false,
                has_tail_call: false,
                has_ld_abs: false,
                changes_pkt_data: false,
                is_exception_cb: false,
                stack_depth: 0,
            })
            .collect();
        if let Some(ex) = ex_start {
            let i = cfg.subprog_starting_at(ex).unwrap_or(0);
            cfg.subprogs[i].is_exception_cb = true;
            cfg.exception_callback = Some(i);
        }
        Ok(())
    }

    /// The exception callback's first slot, from the main function's BTF decl tag
    /// `exception_callback:NAME` and func info, as the kernel finds it.
    fn exception_callback_start(&self) -> Result<Option<usize>, VerifyError> {
        use bpflab_btf::{BtfKind, BtfType};
        let (Some(btf), Some(&(_, main_id))) = (self.btf, self.func_info.first()) else {
            return Ok(None);
        };
        let fail = |m: String| Err(VerifyError::program(ErrorKind::classify(&m), m));
        if btf.type_by_id(main_id).is_err() {
            return fail("invalid btf id for main subprog in func_info".into());
        }
        const PREFIX: &str = "exception_callback:";
        let mut names = btf.types().filter_map(|(_, t)| match *t {
            BtfType::DeclTag { name_off, type_id, component_idx: -1 } if type_id == main_id => {
                btf.string_at(name_off).ok()?.strip_prefix(PREFIX)
            }
            _ => None,
        });
        let Some(name) = names.next() else { return Ok(None) };
        if names.next().is_some() {
            return fail("multiple exception callback tags for main subprog".into());
        }
        let Some(id) = btf.find_by_name(name, BtfKind::Func) else {
            return fail(format!("exception callback '{name}' could not be found in BTF"));
        };
        let global = matches!(
            btf.type_by_id(id),
            Ok(BtfType::Func { linkage, .. }) if *linkage == bpflab_btf::linkage::GLOBAL
        );
        if !global {
            return fail(format!("exception callback '{name}' must have global linkage"));
        }
        let mut start = 0;
        for &(off, type_id) in self.func_info {
            if type_id == id {
                if off == 0 {
                    return fail("invalid exception callback insn_off in func_info: 0".into());
                }
                start = off as usize;
            }
        }
        if start == 0 {
            return fail("exception callback type id not found in func_info".into());
        }
        Ok(Some(start))
    }

    /// The kernel's first checks of a kfunc call: a GPL-compatible license, a kfunc of the
    /// kernel itself (module kfuncs need an fd array, which bpflab's loads do not pass), and
    /// at most 256 different ones. Whether the BTF id names a kfunc is the walk's to check.
    fn add_kfunc(
        &self,
        program: &Program,
        slot: usize,
        imm: i32,
        off: i16,
        seen: &mut Vec<(i32, i16)>,
    ) -> Result<(), VerifyError> {
        const MAX_KFUNC_DESCS: usize = 256;
        if seen.is_empty() && !bpflab_vm::helpers::license_is_gpl_compatible(&program.license) {
            return Err(kernel_error(
                slot,
                "cannot call kernel function from non-GPL compatible program".into(),
            ));
        }
        if imm == 0 && off == 0 {
            // Left for dead-code removal to drop (or refuse) after the walk.
            return Ok(());
        }
        if off != 0 {
            // "negative offset disallowed ..." or "kfunc offset > 0 without fd_array is
            // invalid", then this line, which ends the log.
            return Err(kernel_error(slot, "failed to find BTF for kernel function".into()));
        }
        if !seen.contains(&(imm, off)) {
            if seen.len() == MAX_KFUNC_DESCS {
                return Err(kernel_error(slot, "too many different kernel function calls".into()));
            }
            seen.push((imm, off));
        }
        Ok(())
    }

    /// Jumps stay inside their subprogram, and no subprogram falls through into the next.
    fn check_subprogs(&self, program: &Program, cfg: &mut Cfg) -> Result<(), VerifyError> {
        let mut cur = 0usize;
        for (slot, kind) in self.slot_kinds(program) {
            let (start, end) = (cfg.subprogs[cur].start, cfg.subprogs[cur].end);
            let mut ends_function = false;
            if let SlotKind::Insn(insn) = kind {
                match *insn {
                    Insn::Call { kind: CallKind::Helper, imm: FUNC_TAIL_CALL, .. } => {
                        cfg.subprogs[cur].has_tail_call = true;
                    }
                    Insn::LdAbs { .. } | Insn::LdInd { .. } => cfg.subprogs[cur].has_ld_abs = true,
                    _ => {}
                }
                let off = match *insn {
                    Insn::Jump { off, .. } | Insn::Ja { off } => Some(i32::from(off)),
                    Insn::JaLong { imm } => Some(imm),
                    _ => None,
                };
                if let Some(off) = off {
                    // The kernel computes the target in `int`.
                    let to = (slot as i32).wrapping_add(off).wrapping_add(1);
                    if to < start as i32 || to >= end as i32 {
                        return Err(kernel_error(
                            slot,
                            format!("jump out of range from insn {slot} to {to}"),
                        ));
                    }
                }
                ends_function = matches!(insn, Insn::Exit | Insn::Ja { .. } | Insn::JaLong { .. });
            }
            if slot + 1 == end {
                if !ends_function {
                    return Err(kernel_error(slot, "last insn is not an exit or jmp".into()));
                }
                cur += 1;
                if cur == cfg.subprogs.len() {
                    break;
                }
            }
        }
        Ok(())
    }

    /// BTF info against the layout: without func and line info, subprograms may not use
    /// LD_ABS or tail calls; with func info, one record per subprogram at its start, and the
    /// linkage and return types BTF gives.
    fn check_btf_info(&self, cfg: &mut Cfg) -> Result<(), VerifyError> {
        if self.func_info.is_empty() {
            for sub in &cfg.subprogs[1..] {
                if sub.has_ld_abs {
                    return Err(kernel_error(
                        sub.start,
                        "LD_ABS is not allowed in subprogs without BTF".into(),
                    ));
                }
                if sub.has_tail_call {
                    return Err(kernel_error(
                        sub.start,
                        "tail_call is not allowed in subprogs without BTF".into(),
                    ));
                }
            }
            return self.check_line_info(cfg);
        }
        if self.func_info.len() != cfg.subprogs.len() {
            return Err(VerifyError::program(
                ErrorKind::Other,
                "number of funcs in func_info doesn't match number of subprogs",
            ));
        }
        for (i, (sub, &(off, type_id))) in cfg.subprogs.iter_mut().zip(self.func_info).enumerate() {
            if sub.start != off as usize {
                return Err(VerifyError::program(
                    ErrorKind::Other,
                    "func_info BTF section doesn't match subprog layout in BPF program",
                ));
            }
            let Some(btf) = self.btf else { continue };
            let Some((linkage, scalar_return)) = func_facts(btf, type_id) else { continue };
            sub.is_global = linkage == bpflab_btf::linkage::GLOBAL;
            if i > 0 && !scalar_return && sub.has_ld_abs {
                return Err(kernel_error(
                    sub.start,
                    "LD_ABS is only allowed in functions that return 'int'.".into(),
                ));
            }
            if i > 0 && !scalar_return && sub.has_tail_call {
                return Err(kernel_error(
                    sub.start,
                    "tail_call is only allowed in functions that return 'int'.".into(),
                ));
            }
        }
        self.check_line_info(cfg)
    }

    /// Line info: increasing slots inside the program, none on the second half of an
    /// LD_IMM64, strings inside the BTF, and one record at the start of every function.
    fn check_line_info(&self, cfg: &Cfg) -> Result<(), VerifyError> {
        let fail = |m: String| Err(VerifyError::program(ErrorKind::classify(&m), m));
        let mut prev = 0u32;
        let mut sub = 0usize;
        for (i, l) in self.line_info.iter().enumerate() {
            let off = l.slot;
            if (i > 0 && off <= prev) || off as usize >= cfg.slots {
                return fail(format!(
                    "Invalid line_info[{i}].insn_off:{off} (prev_offset:{prev} prog->len:{})",
                    cfg.slots
                ));
            }
            if cfg.insn_at[off as usize].is_none() {
                return fail(format!("Invalid insn code at line_info[{i}].insn_off"));
            }
            if let Some(btf) = self.btf
                && (btf.string_at(l.line_off).is_err() || btf.string_at(l.file_name_off).is_err())
            {
                return fail(format!("Invalid line_info[{i}].line_off or .file_name_off"));
            }
            if let Some(s) = cfg.subprogs.get(sub) {
                if off as usize == s.start {
                    sub += 1;
                } else if s.start < off as usize {
                    return fail(format!("missing bpf_line_info for func#{sub}"));
                }
            }
            prev = off;
        }
        if !self.line_info.is_empty() && sub != cfg.subprogs.len() {
            return fail(format!(
                "missing bpf_line_info for {} funcs starting from func#{sub}",
                cfg.subprogs.len() - sub
            ));
        }
        Ok(())
    }

    /// The pseudo sources of LD_IMM64: map references must name a map, and direct value
    /// loads an offset inside an array map's single value.
    fn check_pseudo_loads(&self, program: &Program, cfg: &Cfg) -> Result<(), VerifyError> {
        const MAX_USED_MAPS: usize = 64;
        let mut used: Vec<usize> = Vec::new();
        for (i, insn) in program.insns.iter().enumerate() {
            let Insn::LdImm64 { src, imm, next_imm, .. } = *insn else { continue };
            let slot = cfg.slot_of[i] as usize;
            let (value, by_index) = match src {
                PseudoSrc::MapFd => (false, false),
                PseudoSrc::MapIdx => (false, true),
                PseudoSrc::MapValue => (true, false),
                PseudoSrc::MapIdxValue => (true, true),
                _ => continue,
            };
            // Map references by index name one of the collection's maps (bpflab rewrites
            // them to the maps' fds for the kernel). A reference by fd is a literal file
            // descriptor the kernel looks up in the loading process, where no map of the
            // collection has a known number: the kernel refuses it (the selftests' "fd 0/1
            // is not pointing to valid bpf_map" cases).
            let map = usize::try_from(imm).ok().filter(|&m| by_index && m < self.maps.count());
            let Some(map) = map else {
                return Err(kernel_error(
                    slot,
                    format!("fd {imm} is not pointing to valid bpf_map"),
                ));
            };
            let first_use = !used.contains(&map);
            if first_use {
                if used.len() == MAX_USED_MAPS {
                    return Err(kernel_error(
                        slot,
                        format!(
                            "The total number of maps per program has reached the limit of \
                             {MAX_USED_MAPS}"
                        ),
                    ));
                }
                used.push(map);
            }
            let spec = match self.maps {
                Maps::Specs(specs) => Some(&specs[map]),
                Maps::Count(_) => None,
            };
            if let Some(spec) = spec {
                self.check_map_use(program, slot, spec)?;
            }
            if value {
                let off = next_imm as u32;
                if off >= MAX_VAR_OFF {
                    return Err(kernel_error(
                        slot,
                        format!("direct value offset of {off} is not allowed"),
                    ));
                }
                if let Some(spec) = spec {
                    let in_value = match spec.map_type {
                        MapType::Array => spec.max_entries == 1 && off < spec.value_size,
                        MapType::Arena => u64::from(off) <= u64::from(spec.max_entries) * 4096,
                        _ => {
                            return Err(kernel_error(
                                slot,
                                "no direct value access support for this map type".into(),
                            ));
                        }
                    };
                    if !in_value {
                        return Err(kernel_error(
                            slot,
                            format!(
                                "invalid access to map value pointer, value_size={} off={off}",
                                spec.value_size
                            ),
                        ));
                    }
                }
            }
            // Checks made the first time a program uses a map.
            if let (true, Maps::Specs(specs)) = (first_use, &self.maps) {
                let kind = specs[map].map_type;
                let same = |t: MapType| used.iter().filter(|&&m| specs[m].map_type == t).count();
                if matches!(kind, MapType::CgroupStorage | MapType::PercpuCgroupStorage)
                    && same(kind) > 1
                {
                    return Err(kernel_error(
                        slot,
                        "only one cgroup storage of each type is allowed".into(),
                    ));
                }
                if kind == MapType::Arena && same(kind) > 1 {
                    return Err(kernel_error(slot, "Only one arena per program".into()));
                }
            }
        }
        Ok(())
    }

    /// Whether the program may use a map of this kind at all (the kernel's map/program
    /// compatibility check, for what the map's type alone decides).
    fn check_map_use(
        &self,
        program: &Program,
        slot: usize,
        spec: &MapSpec,
    ) -> Result<(), VerifyError> {
        const BPF_F_SLEEPABLE: u32 = 1 << 4;
        if spec.map_type == MapType::StructOps {
            return Err(kernel_error(slot, "bpf_struct_ops map cannot be used in prog".into()));
        }
        let sleepable = self.config.flags.sleepable || program.flags & BPF_F_SLEEPABLE != 0;
        let sleepable_ok = |t: MapType| {
            matches!(
                t,
                MapType::Hash
                    | MapType::LruHash
                    | MapType::Array
                    | MapType::PercpuHash
                    | MapType::PercpuArray
                    | MapType::LruPercpuHash
                    | MapType::ArrayOfMaps
                    | MapType::HashOfMaps
                    | MapType::Ringbuf
                    | MapType::UserRingbuf
                    | MapType::InodeStorage
                    | MapType::SkStorage
                    | MapType::TaskStorage
                    | MapType::CgrpStorage
                    | MapType::Queue
                    | MapType::Stack
                    | MapType::Arena
            )
        };
        let inner_ok = spec.inner.as_deref().is_none_or(|inner| sleepable_ok(inner.map_type));
        if sleepable && !(sleepable_ok(spec.map_type) && inner_ok) {
            return Err(kernel_error(
                slot,
                "Sleepable programs can only use array, hash, ringbuf and local storage maps, \
                 also as inner maps"
                    .into(),
            ));
        }
        Ok(())
    }

    /// The kernel's depth-first walk of the control-flow graph from slot 0: marks prune,
    /// checkpoint and jump-history points, refuses jumps out of range, back-edges in
    /// unprivileged mode, unreachable slots and jumps into an LD_IMM64. Returns the slots in
    /// the order the walk finished them (postorder).
    fn check_cfg(&self, program: &Program, cfg: &mut Cfg) -> Result<Vec<usize>, VerifyError> {
        let kinds: Vec<SlotKind<'_>> = self.slot_kinds(program).map(|(_, k)| k).collect();
        let n = cfg.slots;
        let mut walk = Walk {
            state: vec![0u8; n],
            stack: Vec::with_capacity(n.min(1024)),
            privileged: self.config.privileged,
        };
        let mut postorder = Vec::with_capacity(n);
        // The main program, then the exception callback, which nothing calls.
        let ex_start = cfg.exception_callback.map(|i| cfg.subprogs[i].start);
        for root in std::iter::once(0).chain(ex_start) {
            if walk.state[root] == EXPLORED {
                continue;
            }
            walk.state[root] = DISCOVERED;
            walk.stack.push(root);
            while let Some(&t) = walk.stack.last() {
                match self.visit(t, &kinds, cfg, &mut walk)? {
                    Visit::Done => {
                        walk.state[t] = EXPLORED;
                        walk.stack.pop();
                        postorder.push(t);
                    }
                    Visit::Keep => {}
                }
            }
        }
        let mut slot = 0;
        while slot < n {
            if walk.state[slot] != EXPLORED {
                return Err(kernel_error(slot, format!("unreachable insn {slot}")));
            }
            if let SlotKind::Insn(Insn::LdImm64 { .. }) = kinds[slot] {
                if walk.state[slot + 1] != 0 {
                    return Err(kernel_error(
                        slot,
                        format!("jump into the middle of ldimm64 insn {slot}"),
                    ));
                }
                slot += 1;
            }
            slot += 1;
        }
        Ok(postorder)
    }

    /// One visit of slot `t` in the walk.
    fn visit(
        &self,
        t: usize,
        kinds: &[SlotKind<'_>],
        cfg: &mut Cfg,
        walk: &mut Walk,
    ) -> Result<Visit, VerifyError> {
        let insn = match kinds[t] {
            SlotKind::LdImm64Tail => return walk.push(t, t as i64 + 1, FALLTHROUGH, cfg),
            SlotKind::Insn(insn) => insn,
        };
        let next = t as i64 + insn.slots() as i64;
        match *insn {
            Insn::LdImm64 { src: PseudoSrc::Func, imm, .. } => {
                self.visit_call(t, next, Some(imm), cfg, walk)
            }
            Insn::Exit => Ok(Visit::Done),
            Insn::Call { kind, imm, .. } => {
                let (sync_cb, async_cb, iter_next) = self.call_traits(kind, imm);
                if self.changes_pkt_data(kind, imm)
                    && let Some(i) = cfg.subprog_of(t)
                {
                    cfg.subprogs[i].changes_pkt_data = true;
                }
                if async_cb {
                    cfg.prune_point[t] = true;
                }
                if sync_cb {
                    cfg.calls_callback[t] = true;
                    cfg.force_checkpoint[t] = true;
                    cfg.prune_point[t] = true;
                    cfg.jmp_point[t] = true;
                }
                if iter_next {
                    cfg.prune_point[t] = true;
                    cfg.force_checkpoint[t] = true;
                }
                let callee = (kind == CallKind::Local).then_some(imm);
                self.visit_call(t, next, callee, cfg, walk)
            }
            Insn::Ja { .. } | Insn::JaLong { .. } => {
                let off = match *insn {
                    Insn::JaLong { imm } => i64::from(imm),
                    Insn::Ja { off } => i64::from(off),
                    _ => 0,
                };
                let w = t as i64 + off + 1;
                let r = walk.push(t, w, FALLTHROUGH, cfg)?;
                if let Visit::Keep = r {
                    return Ok(r);
                }
                let w = w as usize;
                cfg.prune_point[w] = true;
                cfg.jmp_point[w] = true;
                Ok(r)
            }
            Insn::Jump { off, .. } => {
                cfg.prune_point[t] = true;
                if let Visit::Keep = walk.push(t, t as i64 + 1, FALLTHROUGH, cfg)? {
                    return Ok(Visit::Keep);
                }
                walk.push(t, t as i64 + i64::from(off) + 1, BRANCH, cfg)
            }
            _ => walk.push(t, next, FALLTHROUGH, cfg),
        }
    }

    /// A call or `func` load: the fall-through edge, the slot after it a prune and
    /// jump-history point, and for local calls and `func` loads the edge into the callee.
    fn visit_call(
        &self,
        t: usize,
        next: i64,
        callee: Option<i32>,
        cfg: &mut Cfg,
        walk: &mut Walk,
    ) -> Result<Visit, VerifyError> {
        let r = walk.push(t, next, FALLTHROUGH, cfg)?;
        if let Visit::Keep = r {
            return Ok(r);
        }
        let next = next as usize;
        cfg.prune_point[next] = true;
        cfg.jmp_point[next] = true;
        match callee {
            Some(imm) => {
                let w = t as i64 + i64::from(imm) + 1;
                cfg.prune_point[t] = true;
                // The callee's effects reach the caller; by the time the walk comes back to
                // the call, the callee has been explored (there is no recursion).
                if let (Some(caller), Some(callee)) =
                    (cfg.subprog_of(t), usize::try_from(w).ok().and_then(|w| cfg.subprog_of(w)))
                {
                    let effect = cfg.subprogs[callee].changes_pkt_data;
                    cfg.subprogs[caller].changes_pkt_data |= effect;
                }
                walk.push(t, w, BRANCH, cfg)
            }
            None => Ok(r),
        }
    }

    /// The first checks of the kernel's attach-target pass: which program types may be
    /// sleepable, and syscall programs must be. (The attach targets of tracing, LSM and
    /// extension programs are checked when the kernel loads them, not here.)
    fn check_sleepable(&self, program: &Program) -> Result<(), VerifyError> {
        use bpflab_vm::ProgType;
        const BPF_F_SLEEPABLE: u32 = 1 << 4;
        const FENTRY: u32 = 24;
        const FEXIT: u32 = 25;
        const MODIFY_RETURN: u32 = 26;
        const TRACE_ITER: u32 = 28;
        const LSM_CGROUP: u32 = 43;
        let sleepable = self.config.flags.sleepable || program.flags & BPF_F_SLEEPABLE != 0;
        let attach = program.expected_attach_type.unwrap_or(0);
        let fail = |m: &str| Err(VerifyError::program(ErrorKind::classify(m), m));
        if program.prog_type == ProgType::Syscall {
            return if sleepable { Ok(()) } else { fail("Syscall programs can only be sleepable") };
        }
        let can_sleep = match program.prog_type {
            ProgType::Tracing => matches!(attach, FENTRY | FEXIT | MODIFY_RETURN | TRACE_ITER),
            ProgType::Lsm => attach != LSM_CGROUP,
            ProgType::Kprobe | ProgType::StructOps | ProgType::Unspec => true,
            _ => false,
        };
        if sleepable && !can_sleep {
            return fail(
                "Only fentry/fexit/fmod_ret, lsm, iter, uprobe, and struct_ops programs can be \
                 sleepable",
            );
        }
        Ok(())
    }

    /// Whether a helper or kfunc call may move packet data (the kernel's
    /// `bpf_helper_changes_pkt_data`, tail calls included, and packet-changing kfuncs).
    fn changes_pkt_data(&self, kind: CallKind, imm: i32) -> bool {
        match kind {
            CallKind::Helper => bpflab_vm::helper_names::helper_name(i64::from(imm))
                .is_some_and(|name| PKT_CHANGING_HELPERS.contains(&name)),
            CallKind::Kfunc => self.kfunc_name(imm) == Some("bpf_xdp_pull_data"),
            CallKind::Local => false,
        }
    }

    /// The name of the kfunc with BTF id `imm`, where the collection records it.
    fn kfunc_name(&self, imm: i32) -> Option<&str> {
        self.kfuncs.iter().find(|k| k.btf_id == imm as u32).map(|k| k.name.as_str())
    }

    /// Whether a call calls a callback synchronously, asynchronously, or is an open-coded
    /// iterator's `next`.
    fn call_traits(&self, kind: CallKind, imm: i32) -> (bool, bool, bool) {
        match kind {
            CallKind::Helper => (
                matches!(
                    imm,
                    FUNC_FOR_EACH_MAP_ELEM | FUNC_FIND_VMA | FUNC_LOOP | FUNC_USER_RINGBUF_DRAIN
                ),
                imm == FUNC_TIMER_SET_CALLBACK,
                false,
            ),
            CallKind::Kfunc => {
                let name = self.kfunc_name(imm).unwrap_or("");
                (
                    name == "bpf_rbtree_add_impl",
                    matches!(
                        name,
                        "bpf_wq_set_callback_impl"
                            | "bpf_task_work_schedule_signal_impl"
                            | "bpf_task_work_schedule_resume_impl"
                    ),
                    name.starts_with("bpf_iter_") && name.ends_with("_next"),
                )
            }
            CallKind::Local => (false, false, false),
        }
    }

    /// How many arguments helper `imm` takes, if the program type may call it (the kernel
    /// has no prototype for it otherwise, and its liveness then takes r1-r5 as read).
    fn helper_args(&self, imm: i32, prog_type: bpflab_vm::ProgType) -> Option<usize> {
        let proto = self.helpers.proto(i64::from(imm));
        if proto.is_some_and(|p| !self.helpers.allowed_proto(p, prog_type)) {
            return None;
        }
        match usize::try_from(imm).ok().and_then(|i| HELPER_ARGS.get(i)) {
            Some(&n) if imm > 0 => Some(usize::from(n)),
            _ => proto.map(|p| p.args.len().min(5)),
        }
    }

    /// The parameter count of the kfunc with BTF id `imm`, from its declaration in the
    /// object's BTF (the kernel reads the same prototype from its own BTF).
    fn kfunc_params(&self, imm: i32) -> Option<usize> {
        let name = self.kfunc_name(imm)?;
        let btf = self.btf?;
        let id = btf.find_by_name(name, bpflab_btf::BtfKind::Func)?;
        let bpflab_btf::BtfType::Func { type_id, .. } = btf.type_by_id(id).ok()? else {
            return None;
        };
        match btf.type_by_id(*type_id).ok()? {
            bpflab_btf::BtfType::FuncProto { params, .. } => Some(params.len()),
            _ => None,
        }
    }

    /// Registers live before each slot: the kernel's backward may-live analysis over the
    /// walk's postorder, iterated to a fixed point.
    fn compute_live_regs(&self, program: &Program, cfg: &mut Cfg, postorder: &[usize]) {
        let n = cfg.slots;
        let mut use_def = vec![(0u16, 0u16); n];
        let mut succ = vec![[usize::MAX; 2]; n];
        for (slot, kind) in self.slot_kinds(program) {
            let SlotKind::Insn(insn) = kind else { continue };
            use_def[slot] = self.use_def(insn, program.prog_type);
            succ[slot] = successors(slot, insn, n);
        }
        let mut live_out = vec![0u16; n];
        let live_in = &mut cfg.live_in;
        let mut changed = true;
        while changed {
            changed = false;
            for &t in postorder {
                let out = succ[t].iter().filter(|&&s| s < n).fold(0u16, |acc, &s| acc | live_in[s]);
                let (uses, defs) = use_def[t];
                let inn = (out & !defs) | uses;
                if out != live_out[t] || inn != live_in[t] {
                    live_out[t] = out;
                    live_in[t] = inn;
                    changed = true;
                }
            }
        }
    }

    /// The registers an instruction reads and writes, as the kernel's liveness counts them.
    fn use_def(&self, insn: &Insn, prog_type: bpflab_vm::ProgType) -> (u16, u16) {
        let bit = |r: bpflab_vm::isa::Reg| 1u16 << r.num();
        let operand = |o: Operand| match o {
            Operand::Reg(r) => bit(r),
            Operand::Imm(_) => 0,
        };
        match *insn {
            Insn::LdImm64 { dst, .. } => (0, bit(dst)),
            // The kernel assumes LD_ABS / LD_IND read everything.
            Insn::LdAbs { .. } | Insn::LdInd { .. } => (ALL_REGS, 0),
            Insn::Load { dst, src, .. } => (bit(src), bit(dst)),
            Insn::Store { dst, src, .. } => (bit(dst) | operand(src), 0),
            Insn::Atomic { op: AtomicOp::Cmpxchg, dst, src, .. } => (1 | bit(dst) | bit(src), 1),
            Insn::Atomic { op, dst, src, .. } => {
                (bit(dst) | bit(src), if op.fetches() { bit(src) } else { 0 })
            }
            Insn::Alu { op, dst, src, .. } => {
                let is_mov = matches!(
                    op,
                    bpflab_vm::isa::AluOp::Mov
                        | bpflab_vm::isa::AluOp::Movsx8
                        | bpflab_vm::isa::AluOp::Movsx16
                        | bpflab_vm::isa::AluOp::Movsx32
                );
                let uses = if is_mov { operand(src) } else { bit(dst) | operand(src) };
                (uses, bit(dst))
            }
            Insn::AddrSpaceCast { dst, src, .. } => (bit(src), bit(dst)),
            Insn::Neg { dst, .. } | Insn::Endian { dst, .. } => (bit(dst), bit(dst)),
            Insn::Ja { .. } | Insn::JaLong { .. } => (0, 0),
            Insn::Exit => (1, 0),
            Insn::Jump { dst, src, .. } => (bit(dst) | operand(src), 0),
            Insn::Call { kind, imm, .. } => {
                let args = match kind {
                    CallKind::Helper => self.helper_args(imm, prog_type),
                    CallKind::Kfunc => self.kfunc_params(imm).map(|n| n.min(5)),
                    CallKind::Local => None,
                };
                let uses = match args {
                    Some(n) => ((1u16 << (n + 1)) - 1) & !1,
                    None => CALLER_SAVED & !1,
                };
                (uses, CALLER_SAVED)
            }
        }
    }
}

/// The slots control may go to after `insn` at `slot` within its function (calls continue
/// after the call); `usize::MAX` fills unused entries.
fn successors(slot: usize, insn: &Insn, n: usize) -> [usize; 2] {
    let mut out = [usize::MAX; 2];
    let target = |off: i64| {
        let w = slot as i64 + off + 1;
        if (0..n as i64).contains(&w) { w as usize } else { usize::MAX }
    };
    match *insn {
        Insn::Exit => {}
        Insn::Ja { off } => out[0] = target(i64::from(off)),
        Insn::JaLong { imm } => out[0] = target(i64::from(imm)),
        Insn::Jump { off, .. } => {
            out[0] = slot + 1;
            let w = target(i64::from(off));
            if w != out[0] {
                out[1] = w;
            }
        }
        _ => out[0] = slot + insn.slots(),
    }
    out
}

/// The linkage of the BTF function `type_id` and whether it returns a scalar (an integer of
/// at most 8 bytes or an enum), as the kernel's func info check reads them.
fn func_facts(btf: &bpflab_btf::Btf, type_id: u32) -> Option<(u32, bool)> {
    use bpflab_btf::BtfType;
    let BtfType::Func { type_id: proto, linkage, .. } = btf.type_by_id(type_id).ok()? else {
        return None;
    };
    let BtfType::FuncProto { ret_type, .. } = btf.type_by_id(*proto).ok()? else {
        return None;
    };
    let (_, ret_ty) = btf.resolve_mods(*ret_type).ok()?;
    let scalar = match ret_ty {
        BtfType::Int(int) => int.size <= 8,
        BtfType::Enum(_) | BtfType::Enum64(_) => true,
        _ => false,
    };
    Some((*linkage, scalar))
}

/// The walk's per-slot states and stack.
struct Walk {
    state: Vec<u8>,
    stack: Vec<usize>,
    privileged: bool,
}

impl Walk {
    /// Follows the edge `t -> w` of kind `e` (fall-through or branch).
    fn push(&mut self, t: usize, w: i64, e: u8, cfg: &mut Cfg) -> Result<Visit, VerifyError> {
        if self.state[t] >= DISCOVERED | e {
            return Ok(Visit::Done);
        }
        if w < 0 || w >= self.state.len() as i64 {
            return Err(kernel_error(t, format!("jump out of range from insn {t} to {w}")));
        }
        let w = w as usize;
        if e == BRANCH {
            cfg.prune_point[w] = true;
            cfg.jmp_point[w] = true;
        }
        match self.state[w] {
            0 => {
                self.state[t] = DISCOVERED | e;
                self.state[w] = DISCOVERED;
                self.stack.push(w);
                Ok(Visit::Keep)
            }
            s if s & 0xf0 == DISCOVERED => {
                if self.privileged {
                    Ok(Visit::Done)
                } else {
                    Err(kernel_error(t, format!("back-edge from insn {t} to {w}")))
                }
            }
            _ => {
                self.state[t] = DISCOVERED | e;
                Ok(Visit::Done)
            }
        }
    }
}

/// The kernel's message for an encoding bpflab's decoder refuses, as the kernel reports it
/// for the same raw instruction (its first error for that instruction).
pub fn decode_error_message(e: &DecodeError) -> VerifyError {
    let at = e.index;
    let msg = match e.kind {
        DecodeErrorKind::UnknownOpcode { code } => {
            if Class::of(code) == Class::Ldx && !matches!(code & 0xe0, 0x60 | 0x80) {
                // The kernel checks LDX modes (MEM, MEMSX) before its opcode table.
                "BPF_LDX uses reserved fields".to_string()
            } else {
                format!("unknown opcode {code:02x}")
            }
        }
        DecodeErrorKind::InvalidRegister { reg, .. } => format!("R{reg} is invalid"),
        DecodeErrorKind::ReservedField { code, field, value } => {
            reserved_field_message(code, field, value)
        }
        // An LD_IMM64 cut short is the last slot, which the kernel's subprogram check
        // finds first: it is not an exit or jump.
        DecodeErrorKind::TruncatedLdImm64 => "last insn is not an exit or jmp".to_string(),
        DecodeErrorKind::BadLdImm64Tail { field: Field::Imm, .. } => {
            "unrecognized bpf_ld_imm64 insn".to_string()
        }
        DecodeErrorKind::BadLdImm64Tail { .. } => "invalid bpf_ld_imm64 insn".to_string(),
        DecodeErrorKind::PastEnd { len } => {
            return VerifyError::program(
                ErrorKind::Other,
                format!("no instruction at slot {at}: the program has {len} slots"),
            );
        }
        DecodeErrorKind::TrailingBytes { len } => {
            return VerifyError::program(
                ErrorKind::Other,
                format!(
                    "program length leaves {len} trailing bytes (not a multiple of 8): \
                     BPF_PROG_LOAD cannot express it"
                ),
            );
        }
    };
    kernel_error(at, msg)
}

/// The kernel's message for a reserved field of opcode `code`.
fn reserved_field_message(code: u8, field: Field, value: i64) -> String {
    let op = code & 0xf0;
    let s = match Class::of(code) {
        Class::Alu | Class::Alu64 => match op {
            0x80 => "BPF_NEG uses reserved fields",
            0xd0 => "BPF_END uses reserved fields",
            0xb0 => "BPF_MOV uses reserved fields",
            _ => "BPF_ALU uses reserved fields",
        },
        Class::Jmp | Class::Jmp32 => match op {
            0x00 => "BPF_JA uses reserved fields",
            0x80 => "BPF_CALL uses reserved fields",
            0x90 => "BPF_EXIT uses reserved fields",
            _ => "BPF_JMP/JMP32 uses reserved fields",
        },
        Class::Ld if code == 0x18 => match field {
            Field::Src => "unrecognized bpf_ld_imm64 insn",
            _ => "BPF_LD_IMM64 uses reserved fields",
        },
        Class::Ld => "BPF_LD_[ABS|IND] uses reserved fields",
        Class::Ldx => "BPF_LDX uses reserved fields",
        Class::St => "BPF_ST uses reserved fields",
        Class::Stx if code & 0xe0 == 0xc0 && field == Field::Imm => {
            return format!("BPF_ATOMIC uses invalid atomic opcode {:02x}", value as i32);
        }
        Class::Stx => "BPF_STX uses reserved fields",
    };
    s.to_string()
}

/// Codes in the kernel's opcode table that bpflab's decoder does not take (`may_goto`, and
/// the load-acquire / store-release atomics): the kernel may accept them.
fn kernel_knows_opcode(raw: RawInsn) -> bool {
    const LOAD_ACQ: i32 = 0x100;
    const STORE_REL: i32 = 0x110;
    match raw.code {
        0xe5 => true,
        0xc3 | 0xcb | 0xd3 | 0xdb => matches!(raw.imm, LOAD_ACQ | STORE_REL),
        _ => false,
    }
}

/// Whether the kernel finds this decode error in its LD_IMM64 pass, which runs before the
/// CFG walk over every slot (LDX fields, LD_IMM64 form, the opcode table), rather than when
/// the path walk reaches the instruction.
fn found_before_walk(raw: RawInsn, kind: DecodeErrorKind) -> bool {
    match kind {
        DecodeErrorKind::UnknownOpcode { .. } => true,
        DecodeErrorKind::TruncatedLdImm64 | DecodeErrorKind::BadLdImm64Tail { .. } => true,
        DecodeErrorKind::ReservedField { code: 0x18, field: Field::Src, .. } => true,
        DecodeErrorKind::ReservedField { field: Field::Imm, .. } => {
            Class::of(raw.code) == Class::Ldx
        }
        _ => false,
    }
}

/// An instruction with the control flow the kernel's pre-walk passes see in a slot the
/// decoder refuses: they look only at the class, the jump and call fields and whether the
/// opcode is LD_IMM64.
fn stand_in(raw: RawInsn, has_next: bool) -> Insn {
    use bpflab_vm::isa::{AluOp, JmpCond, Width};
    let class = Class::of(raw.code);
    let op = raw.code & 0xf0;
    match class {
        Class::Jmp | Class::Jmp32 => match op {
            0x00 if class == Class::Jmp32 => Insn::JaLong { imm: raw.imm },
            0x00 => Insn::Ja { off: raw.off },
            0x80 if raw.src == 1 => Insn::Call { kind: CallKind::Local, imm: raw.imm, off: 0 },
            0x80 => Insn::Call { kind: CallKind::Helper, imm: -1, off: 0 },
            0x90 => Insn::Exit,
            _ => Insn::Jump {
                width: Width::W64,
                cond: JmpCond::Eq,
                dst: bpflab_vm::isa::Reg::R0,
                src: Operand::Imm(0),
                off: raw.off,
            },
        },
        Class::Ld if raw.code == 0x18 && has_next => Insn::ld_imm64(bpflab_vm::isa::Reg::R0, 0),
        _ => Insn::Alu {
            width: Width::W64,
            op: AluOp::Mov,
            dst: bpflab_vm::isa::Reg::R0,
            src: Operand::Imm(0),
        },
    }
}

/// The kernel's first error for a raw program that bpflab's decoder refuses, in the kernel's
/// order: the subprogram checks, then the LD_IMM64 pass's field and opcode checks, the CFG
/// walk, and last the fields the path walk checks when it reaches an instruction (the first
/// such instruction in the walk's depth-first order, fall-through first). `None` when every
/// slot decodes. [`Stop::Unsupported`](crate::error::Stop) for opcodes the kernel knows and
/// bpflab does not (`may_goto`, load-acquire / store-release).
pub fn raw_program_error(
    slots: &[RawInsn],
    prog_type: bpflab_vm::ProgType,
    helpers: &HelperRegistry,
    config: &Config,
) -> Option<crate::error::Stop> {
    use crate::error::Stop;
    let mut insns = Vec::new();
    // Decode errors the LD_IMM64 pass finds (first in slot order), and the path walk's.
    let mut early: Option<VerifyError> = None;
    let mut late: Vec<(usize, VerifyError)> = Vec::new();
    let mut unknown_to_bpflab: Option<usize> = None;
    let mut i = 0;
    while i < slots.len() {
        let (raw, next) = (slots[i], slots.get(i + 1).copied());
        let insn = match decode_one(raw, next) {
            Ok(insn) => insn,
            Err(kind) => {
                if kernel_knows_opcode(raw) {
                    unknown_to_bpflab.get_or_insert(i);
                }
                let e = decode_error_message(&DecodeError { index: i, kind });
                if found_before_walk(raw, kind) {
                    early.get_or_insert(e);
                } else {
                    late.push((i, e));
                }
                stand_in(raw, next.is_some())
            }
        };
        i += insn.slots();
        insns.push(insn);
    }
    if early.is_none() && late.is_empty() {
        return None;
    }
    let program = Program::raw("raw", insns).with_type(prog_type);
    let env = Env {
        maps: Maps::Count(0),
        kfuncs: &[],
        btf: None,
        func_info: &[],
        line_info: &[],
        helpers,
        config,
    };
    let before_walk = |cfg: &mut Cfg| -> Result<(), VerifyError> {
        env.add_subprogs(&program, cfg)?;
        env.check_subprogs(&program, cfg)?;
        env.check_btf_info(cfg)
    };
    let mut cfg = match env.layout(&program) {
        Ok(cfg) => cfg,
        Err(e) => return Some(Stop::Reject(e)),
    };
    if let Err(e) = before_walk(&mut cfg) {
        return Some(Stop::Reject(e));
    }
    if let Some(at) = unknown_to_bpflab {
        return Some(Stop::unsupported(at, "an instruction bpflab's decoder does not take"));
    }
    // The LD_IMM64 pass: its decode errors and map references, in slot order.
    let map_error = env.check_pseudo_loads(&program, &cfg).err();
    let first = [early, map_error].into_iter().flatten().min_by_key(|e| e.insn);
    if let Some(e) = first {
        return Some(Stop::Reject(e));
    }
    if let Err(e) = env.check_cfg(&program, &mut cfg).and_then(|_| env.check_sleepable(&program)) {
        return Some(Stop::Reject(e));
    }
    // The path walk: the first refused slot in depth-first order, fall-through first,
    // entering local calls.
    let mut seen = vec![false; cfg.slots];
    let mut late_at: Vec<Option<usize>> = vec![None; cfg.slots];
    for (k, (slot, _)) in late.iter().enumerate().rev() {
        late_at[*slot] = Some(k);
    }
    // Paths waiting: where they go on, and the return slots of the calls they are in.
    let mut pending: Vec<(usize, Vec<usize>)> = vec![(0, Vec::new())];
    while let Some((mut slot, mut returns)) = pending.pop() {
        while slot < cfg.slots && !seen[slot] {
            seen[slot] = true;
            if let Some(k) = late_at[slot] {
                return Some(Stop::Reject(late[k].1.clone()));
            }
            let Some(insn) = cfg.insn(&program, slot) else { break };
            let next = slot + insn.slots();
            let target = |off: i64| usize::try_from(slot as i64 + off + 1).unwrap_or(usize::MAX);
            slot = match *insn {
                Insn::Exit => match returns.pop() {
                    Some(r) => r,
                    None => break,
                },
                Insn::Ja { off } => target(i64::from(off)),
                Insn::JaLong { imm } => target(i64::from(imm)),
                Insn::Jump { off, .. } => {
                    pending.push((target(i64::from(off)), returns.clone()));
                    next
                }
                Insn::Call { kind: CallKind::Local, imm, .. } => {
                    let callee = target(i64::from(imm));
                    if seen.get(callee).copied().unwrap_or(true) {
                        next
                    } else {
                        returns.push(next);
                        callee
                    }
                }
                _ => next,
            };
        }
    }
    late.into_iter().next().map(|(_, e)| Stop::Reject(e))
}
