//! Dynamic pointers (`struct bpf_dynptr`): 16-byte objects on the stack that the verifier
//! tracks as two `STACK_DYNPTR` slots with a type (local, ring buffer, skb, xdp), an id
//! shared by the slices taken of it and, for ring buffer dynptrs, a reference.
//!
//! What this module checks, as the kernel's verifier does:
//! - an argument that creates a dynptr (`bpf_dynptr_from_mem`, `bpf_ringbuf_reserve_dynptr`:
//!   `ARG_PTR_TO_DYNPTR | MEM_UNINIT`) must point to 16 bytes of stack at a constant,
//!   8-aligned offset; the bytes are written (destroying any unreferenced dynptr there) and
//!   marked as a dynptr, a ring buffer dynptr acquiring a reference;
//! - an argument that uses one (`bpf_dynptr_read/write/data`, the ring buffer submit and
//!   discard) must point to the first slot of an initialised dynptr of the expected type;
//!   submit and discard release its reference, invalidating its clones and slices;
//! - stores into a dynptr's slots destroy it (both slots, and every slice taken of it),
//!   except for a referenced (ring buffer) dynptr: "cannot overwrite referenced dynptr";
//!   helpers may not write into one ("potential write to dynptr"), and reads of its bytes
//!   fail as reads of uninitialised stack;
//! - `bpf_dynptr_data` returns memory of the constant size asked, or NULL, tied to the
//!   dynptr (`dynptr_id`) and to its reference.
//!
//! The dynptr kfuncs (`bpf_dynptr_from_skb`, `bpf_dynptr_slice`, ...) and dynptrs handed to
//! callbacks (`CONST_PTR_TO_DYNPTR`) are not modelled here yet: they stay unsupported.

use crate::check::Verifier;
use crate::error::{ErrorKind, Stop};
use crate::mem::{Access, check_mem_access};
use crate::state::{
    ByteKind, DynptrSlot, DynptrType, Frame, PtrKind, RefKind, RefState, Reg, SLOT, StackSlot,
    State,
};

/// `BPF_FUNC_dynptr_from_mem`.
pub(crate) const FUNC_DYNPTR_FROM_MEM: i32 = 197;
/// `BPF_FUNC_ringbuf_reserve_dynptr`.
pub(crate) const FUNC_RINGBUF_RESERVE_DYNPTR: i32 = 198;
/// `BPF_FUNC_ringbuf_submit_dynptr`.
pub(crate) const FUNC_RINGBUF_SUBMIT_DYNPTR: i32 = 199;
/// `BPF_FUNC_ringbuf_discard_dynptr`.
pub(crate) const FUNC_RINGBUF_DISCARD_DYNPTR: i32 = 200;
/// `BPF_FUNC_dynptr_read`.
pub(crate) const FUNC_DYNPTR_READ: i32 = 201;
/// `BPF_FUNC_dynptr_write`.
pub(crate) const FUNC_DYNPTR_WRITE: i32 = 202;
/// `BPF_FUNC_dynptr_data`.
pub(crate) const FUNC_DYNPTR_DATA: i32 = 203;

/// Stack slots of one dynptr (`BPF_DYNPTR_NR_SLOTS`).
const NR_SLOTS: usize = 2;

/// The flags of a helper's `ARG_PTR_TO_DYNPTR` argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ArgSpec {
    /// `MEM_UNINIT`: the helper creates the dynptr.
    uninit: bool,
    /// `DYNPTR_TYPE_*`: the type it creates or expects (`None`: any type).
    ty: Option<DynptrType>,
    /// `OBJ_RELEASE`: the helper releases the dynptr's reference.
    release: bool,
}

/// The dynptr argument flags of helper `func` (the kernel's `bpf_func_proto` argument types,
/// which bpflab's prototype table writes as plain `PtrToDynptr`).
fn helper_arg_spec(func: i32) -> Option<ArgSpec> {
    let any = ArgSpec { uninit: false, ty: None, release: false };
    Some(match func {
        FUNC_DYNPTR_FROM_MEM => {
            ArgSpec { uninit: true, ty: Some(DynptrType::Local), release: false }
        }
        FUNC_RINGBUF_RESERVE_DYNPTR => {
            ArgSpec { uninit: true, ty: Some(DynptrType::Ringbuf), release: false }
        }
        FUNC_RINGBUF_SUBMIT_DYNPTR | FUNC_RINGBUF_DISCARD_DYNPTR => {
            ArgSpec { uninit: false, ty: Some(DynptrType::Ringbuf), release: true }
        }
        FUNC_DYNPTR_READ | FUNC_DYNPTR_WRITE | FUNC_DYNPTR_DATA => any,
        _ => return None,
    })
}

/// What a call's dynptr argument established (the kernel's `meta->dynptr_id`,
/// `meta->ref_obj_id` and the dynptr's type).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DynptrArg {
    /// The dynptr's id.
    pub id: u32,
    /// Its reference (ring buffer dynptrs), or 0.
    pub ref_obj_id: u32,
    /// Its type.
    pub ty: DynptrType,
}

/// A rejection whose class is the one the kernel's message belongs to.
fn reject(insn: usize, message: impl Into<String>) -> Stop {
    let message = message.into();
    Stop::reject(ErrorKind::classify(&message), insn, message)
}

/// Why no slot index could be taken from a pointer (`stack_slot_obj_get_spi`).
#[derive(Clone, Debug, PartialEq, Eq)]
enum SpiError {
    /// The offset is not constant or not a whole, in-frame pair of slots (the kernel's
    /// message, logged before the caller's own).
    Bad(String),
    /// The slots lie beyond the stack allocated so far (`-ERANGE`).
    Range,
}

/// The frame a stack pointer points into.
fn frame_of(st: &State, reg: &Reg) -> usize {
    (reg.frameno as usize).min(st.frames.len() - 1)
}

/// The first (higher) slot index of the dynptr `reg` points to (`dynptr_get_spi`).
fn get_spi(st: &State, reg: &Reg) -> Result<usize, SpiError> {
    let Some(var) = reg.var.const_value() else {
        return Err(SpiError::Bad("dynptr has to be at a constant offset".into()));
    };
    let off = i64::from(reg.off).wrapping_add(var as i64);
    if off % SLOT as i64 != 0 {
        return Err(SpiError::Bad(format!("cannot pass in dynptr at an offset={off}")));
    }
    // The kernel's `(-off - 1) / BPF_REG_SIZE` truncates toward zero, as Rust's `/` does.
    let spi = (-off - 1) / SLOT as i64;
    if spi + 1 < NR_SLOTS as i64 {
        return Err(SpiError::Bad(format!("cannot pass in dynptr at an offset={off}")));
    }
    let allocated = st.frames[frame_of(st, reg)].stack.len() as i64;
    if spi >= allocated {
        return Err(SpiError::Range);
    }
    Ok(spi as usize)
}

/// Checks a helper's `ARG_PTR_TO_DYNPTR` argument in register `regno` (already known to be
/// a stack pointer) and applies it (`process_dynptr_func`, with the release check of
/// `check_func_arg` before it and `unmark_stack_slots_dynptr` after it).
pub(crate) fn check_helper_arg(
    v: &mut Verifier<'_>,
    st: &mut State,
    insn: usize,
    func: i32,
    regno: usize,
) -> Result<DynptrArg, Stop> {
    let Some(spec) = helper_arg_spec(func) else {
        return Err(Stop::unsupported(insn, format!("dynptr argument of helper #{func}")));
    };
    let reg = *st.reg(regno);
    if reg.kind() == Some(PtrKind::ConstDynptr) {
        return const_arg(insn, &reg, spec.uninit, spec.release);
    }
    if reg.kind() != Some(PtrKind::Stack) {
        return Err(reject(
            insn,
            format!("arg#{} expected pointer to stack or const struct bpf_dynptr", regno - 1),
        ));
    }
    let fi = frame_of(st, &reg);
    if spec.release {
        let held = get_spi(st, &reg).ok().is_some_and(|spi| {
            let slot = &st.frames[fi].stack[spi];
            let ref_obj_id =
                if slot.has_spill() { slot.spilled.ref_obj_id } else { slot.dynptr.ref_obj_id };
            ref_obj_id != 0
        });
        if !held {
            return Err(reject(insn, format!("arg {regno} is an unacquired reference")));
        }
    }
    if spec.uninit {
        let ty = spec.ty.unwrap_or(DynptrType::Invalid);
        if let Err(SpiError::Bad(_)) = get_spi(st, &reg) {
            return Err(reject(insn, "Dynptr has to be an uninitialized dynptr"));
        }
        // The helper writes the 16 bytes, 8 at a time.
        for off in [0i16, 8] {
            check_mem_access(v, st, insn, regno, off, SLOT, Access::Write { src: None, imm: 1 })?;
        }
        let spi = get_spi(st, &reg).map_err(|_| {
            Stop::unsupported(insn, "dynptr slots outside the stack after writing them")
        })?;
        destroy_if_dynptr_slot(v, st, insn, fi, spi)?;
        destroy_if_dynptr_slot(v, st, insn, fi, spi - 1)?;
        let id = v.new_id();
        let mut ref_obj_id = 0;
        if ty == DynptrType::Ringbuf {
            ref_obj_id = v.new_id();
            let callback_ref = if st.cur().callback_of.is_some() { st.cur().frameno } else { 0 };
            st.refs.push(RefState { id: ref_obj_id, insn, kind: RefKind::Other, callback_ref });
        }
        let frame = &mut st.frames[fi];
        for (s, first) in [(spi, true), (spi - 1, false)] {
            frame.stack[s] = StackSlot {
                bytes: [ByteKind::Dynptr; SLOT],
                spilled: Reg::NOT_INIT,
                dynptr: DynptrSlot { ty, first, id, ref_obj_id },
                ..StackSlot::INVALID
            };
        }
        if func == FUNC_DYNPTR_FROM_MEM {
            from_mem_data(st, insn)?;
        }
        return Ok(DynptrArg { id, ref_obj_id, ty });
    }
    let init = get_spi(st, &reg).ok().filter(|&spi| {
        let stack = &st.frames[fi].stack;
        stack[spi].dynptr.first
            && stack[spi].bytes.iter().all(|&b| b == ByteKind::Dynptr)
            && stack[spi - 1].bytes.iter().all(|&b| b == ByteKind::Dynptr)
    });
    let Some(spi) = init else {
        return Err(reject(insn, format!("Expected an initialized dynptr as arg #{}", regno - 1)));
    };
    let d = st.frames[fi].stack[spi].dynptr;
    if let Some(t) = spec.ty
        && d.ty != t
    {
        return Err(reject(
            insn,
            format!("Expected a dynptr of type {} as arg #{}", t.name(), regno - 1),
        ));
    }
    if spec.release {
        release(v, st, fi, d.ref_obj_id);
    }
    Ok(DynptrArg { id: d.id, ref_obj_id: d.ref_obj_id, ty: d.ty })
}

/// A `dynptr_ptr` (`CONST_PTR_TO_DYNPTR`, a local dynptr the program does not own) passed
/// as a dynptr argument: it cannot be released or created, only read (the helpers that
/// take one unreleased take it `MEM_RDONLY`, and kfuncs always do).
fn const_arg(insn: usize, reg: &Reg, uninit: bool, release: bool) -> Result<DynptrArg, Stop> {
    if release {
        return Err(reject(insn, "cannot release unowned const bpf_dynptr"));
    }
    if uninit {
        return Err(reject(insn, "Dynptr has to be an uninitialized dynptr"));
    }
    Ok(DynptrArg { id: reg.id, ref_obj_id: reg.ref_obj_id, ty: DynptrType::Local })
}

/// A global function's dynptr argument in `regno` at the call (`btf_check_func_arg_match`
/// for `ARG_PTR_TO_DYNPTR | MEM_RDONLY`): a `dynptr_ptr` at offset 0 or a stack pointer to
/// an initialised dynptr; `Err` is the kernel's log line before "Caller passes invalid
/// args".
pub(crate) fn check_global_arg(st: &State, regno: usize) -> Result<(), String> {
    let reg = st.reg(regno);
    match reg.kind() {
        Some(PtrKind::ConstDynptr) => {
            if reg.off < 0 {
                return Err(format!(
                    "negative offset dynptr_ptr ptr R{regno} off={} disallowed",
                    reg.off
                ));
            }
            if reg.off != 0 {
                return Err(format!(
                    "dereference of modified dynptr_ptr ptr R{regno} off={} disallowed",
                    reg.off
                ));
            }
            if reg.var.const_value() != Some(0) {
                return Err(format!(
                    "variable dynptr_ptr access var_off=(0x{:x}; 0x{:x}) disallowed",
                    reg.var.var_off.value, reg.var.var_off.mask
                ));
            }
            Ok(())
        }
        Some(PtrKind::Stack) => {
            let fi = frame_of(st, reg);
            let stack = &st.frames[fi].stack;
            let init = get_spi(st, reg).is_ok_and(|spi| {
                stack[spi].dynptr.first
                    && stack[spi].bytes.iter().all(|&b| b == ByteKind::Dynptr)
                    && stack[spi - 1].bytes.iter().all(|&b| b == ByteKind::Dynptr)
            });
            if init {
                Ok(())
            } else {
                Err(format!("Expected an initialized dynptr as arg #{}", regno - 1))
            }
        }
        _ => Err(format!("arg#{} expected pointer to stack or const struct bpf_dynptr", regno - 1)),
    }
}

/// The register a global function's dynptr parameter starts as when it is verified on its
/// own: a `dynptr_ptr` to a local dynptr with a fresh id (`mark_dynptr_cb_reg`).
pub(crate) fn const_dynptr(v: &mut Verifier<'_>) -> Reg {
    Reg { id: v.new_id(), ..Reg::ptr(PtrKind::ConstDynptr) }
}

/// `bpf_dynptr_from_mem` only wraps map values: "Unsupported reg type ... data".
fn from_mem_data(st: &State, insn: usize) -> Result<(), Stop> {
    let r1 = st.reg(1);
    if r1.kind() != Some(PtrKind::MapValue) || r1.maybe_null {
        return Err(reject(
            insn,
            format!("Unsupported reg type {} for bpf_dynptr_from_mem data", r1.type_name()),
        ));
    }
    Ok(())
}

/// Releases a ring buffer dynptr's reference (`unmark_stack_slots_dynptr`): the reference
/// goes, every register holding it (slices) becomes invalid, and every dynptr of the frame
/// holding it (the dynptr and its clones) becomes invalid stack.
fn release(v: &Verifier<'_>, st: &mut State, fi: usize, ref_obj_id: u32) {
    st.refs.retain(|r| r.id != ref_obj_id);
    let privileged = v.config.privileged;
    st.for_each_reg(|r| {
        if r.ref_obj_id == ref_obj_id {
            *r = invalid_reg(privileged);
        }
    });
    let frame = &mut st.frames[fi];
    for spi in 1..frame.stack.len() {
        let d = frame.stack[spi].dynptr;
        if frame.stack[spi].bytes[0] == ByteKind::Dynptr && d.ref_obj_id == ref_obj_id && d.first {
            invalidate(frame, spi);
        }
    }
}

/// The two slots of the dynptr whose first slot is `spi` become invalid stack
/// (`invalidate_dynptr`).
fn invalidate(frame: &mut Frame, spi: usize) {
    for s in [spi, spi - 1] {
        frame.stack[s] = StackSlot::INVALID;
    }
}

/// A register a released or destroyed object leaves behind (`mark_reg_invalid`): an
/// unknown scalar when pointers may leak, else unreadable.
fn invalid_reg(privileged: bool) -> Reg {
    if privileged { Reg::unknown() } else { Reg::NOT_INIT }
}

/// A store into slot `spi` of frame `fi` destroys the dynptr there, if any, whole
/// (`destroy_if_dynptr_stack_slot`): both its slots become invalid stack and its slices
/// invalid registers. A referenced dynptr cannot be overwritten.
pub(crate) fn destroy_if_dynptr_slot(
    v: &Verifier<'_>,
    st: &mut State,
    insn: usize,
    fi: usize,
    spi: usize,
) -> Result<(), Stop> {
    let frame = &st.frames[fi];
    let Some(slot) = frame.stack.get(spi) else { return Ok(()) };
    if slot.bytes[0] != ByteKind::Dynptr {
        return Ok(());
    }
    let first = if slot.dynptr.first { spi } else { spi + 1 };
    let Some(d) = frame.stack.get(first).map(|s| s.dynptr) else { return Ok(()) };
    if d.ty == DynptrType::Ringbuf {
        return Err(reject(insn, "cannot overwrite referenced dynptr"));
    }
    invalidate(&mut st.frames[fi], first);
    let privileged = v.config.privileged;
    st.for_each_reg(|r| {
        if r.kind() == Some(PtrKind::Mem) && r.dynptr_id == d.id {
            *r = invalid_reg(privileged);
        }
    });
    Ok(())
}

/// A variable-offset store over stack bytes `min_off..max_off` (negative) of frame `fi`
/// destroys every dynptr it may touch (`check_stack_write_var_off`).
pub(crate) fn destroy_range(
    v: &Verifier<'_>,
    st: &mut State,
    insn: usize,
    fi: usize,
    min_off: i64,
    max_off: i64,
) -> Result<(), Stop> {
    for off in min_off..max_off {
        if off < 0 {
            destroy_if_dynptr_slot(v, st, insn, fi, Frame::slot_of(off).0)?;
        }
    }
    Ok(())
}

/// A helper writing raw (uninitialised) memory at stack bytes `min_off..end` through `reg`
/// may not write into a dynptr (`check_stack_range_initialized` with `meta->raw_mode`).
pub(crate) fn check_raw_write(
    st: &State,
    insn: usize,
    reg: &Reg,
    min_off: i64,
    end: i64,
) -> Result<(), Stop> {
    let frame = &st.frames[frame_of(st, reg)];
    for off in min_off..end {
        if off >= 0 {
            continue;
        }
        let (s, b) = Frame::slot_of(off);
        if frame.stack.get(s).is_some_and(|slot| slot.bytes[b] == ByteKind::Dynptr) {
            return Err(reject(insn, format!("potential write to dynptr at off={off} disallowed")));
        }
    }
    Ok(())
}

/// r0 of `bpf_dynptr_data`: a slice tied to the dynptr (`dynptr_id`) and its reference
/// (`is_dynptr_ref_function`).
pub(crate) fn ret_slice(r0: &mut Reg, func: i32, d: &DynptrArg) {
    if func == FUNC_DYNPTR_DATA {
        r0.dynptr_id = d.id;
        r0.ref_obj_id = d.ref_obj_id;
    }
}

/// Whether a current dynptr slot is covered by an old one when states are compared
/// (`stacksafe`'s `STACK_DYNPTR` case): same type and position, equivalent references.
pub(crate) fn slot_safe(
    old: &StackSlot,
    cur: &StackSlot,
    mut ids: impl FnMut(u32, u32) -> bool,
) -> bool {
    cur.bytes == old.bytes
        && old.dynptr.ty == cur.dynptr.ty
        && old.dynptr.first == cur.dynptr.first
        && ids(old.dynptr.ref_obj_id, cur.dynptr.ref_obj_id)
}

/// The dynptr kfuncs bpflab models.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kfunc {
    /// `bpf_dynptr_from_skb(ctx, flags, ptr__uninit)`.
    FromSkb,
    /// `bpf_dynptr_from_xdp(ctx, flags, ptr__uninit)`.
    FromXdp,
    /// `bpf_dynptr_is_null(p)`, `bpf_dynptr_is_rdonly(p)`, `bpf_dynptr_size(p)`.
    Query,
    /// `bpf_dynptr_adjust(p, start, end)`.
    Adjust,
    /// `bpf_dynptr_clone(p, clone__uninit)`.
    Clone,
    /// `bpf_dynptr_slice(p, offset, buffer__opt, buffer__szk)` (read-only slice) and
    /// `bpf_dynptr_slice_rdwr` (writable).
    Slice { rdwr: bool },
}

/// The dynptr kfunc named `name`, if it is one.
fn kfunc_of(name: &str) -> Option<Kfunc> {
    Some(match name {
        "bpf_dynptr_from_skb" => Kfunc::FromSkb,
        "bpf_dynptr_from_xdp" => Kfunc::FromXdp,
        "bpf_dynptr_is_null" | "bpf_dynptr_is_rdonly" | "bpf_dynptr_size" => Kfunc::Query,
        "bpf_dynptr_adjust" => Kfunc::Adjust,
        "bpf_dynptr_clone" => Kfunc::Clone,
        "bpf_dynptr_slice" => Kfunc::Slice { rdwr: false },
        "bpf_dynptr_slice_rdwr" => Kfunc::Slice { rdwr: true },
        _ => return None,
    })
}

/// `may_access_direct_pkt_data(env, NULL, BPF_WRITE)`: program types that may write packets.
fn may_write_pkt(prog_type: bpflab_vm::ProgType) -> bool {
    use bpflab_vm::ProgType as P;
    matches!(
        prog_type,
        P::SchedCls | P::SchedAct | P::Xdp | P::LwtXmit | P::SkSkb | P::SkMsg | P::CgroupSockopt
    )
}

/// A kfunc's scalar argument (`R%d is not a scalar`).
fn scalar_arg(st: &State, insn: usize, regno: usize) -> Result<(), Stop> {
    if !st.reg(regno).is_scalar() {
        return Err(reject(insn, format!("R{regno} is not a scalar")));
    }
    Ok(())
}

/// A kfunc's `struct bpf_dynptr *` argument in `regno` (`KF_ARG_PTR_TO_DYNPTR`): an
/// initialised dynptr, or, with `create`, uninitialised slots made a dynptr of that type
/// (sharing `clone_ref` when cloning a referenced one).
fn kfunc_dynptr_arg(
    v: &mut Verifier<'_>,
    st: &mut State,
    insn: usize,
    regno: usize,
    create: Option<(DynptrType, u32)>,
) -> Result<DynptrArg, Stop> {
    let reg = *st.reg(regno);
    if reg.kind() == Some(PtrKind::ConstDynptr) {
        return const_arg(insn, &reg, create.is_some(), false);
    }
    if reg.kind() != Some(PtrKind::Stack) {
        return Err(reject(
            insn,
            format!("arg#{} expected pointer to stack or const struct bpf_dynptr", regno - 1),
        ));
    }
    let fi = frame_of(st, &reg);
    if let Some((ty, clone_ref)) = create {
        if let Err(SpiError::Bad(_)) = get_spi(st, &reg) {
            return Err(reject(insn, "Dynptr has to be an uninitialized dynptr"));
        }
        for off in [0i16, 8] {
            check_mem_access(v, st, insn, regno, off, SLOT, Access::Write { src: None, imm: 1 })?;
        }
        let spi = get_spi(st, &reg).map_err(|_| {
            Stop::unsupported(insn, "dynptr slots outside the stack after writing them")
        })?;
        destroy_if_dynptr_slot(v, st, insn, fi, spi)?;
        destroy_if_dynptr_slot(v, st, insn, fi, spi - 1)?;
        let id = v.new_id();
        let frame = &mut st.frames[fi];
        for (s, first) in [(spi, true), (spi - 1, false)] {
            frame.stack[s] = StackSlot {
                bytes: [ByteKind::Dynptr; SLOT],
                dynptr: DynptrSlot { ty, first, id, ref_obj_id: clone_ref },
                ..StackSlot::INVALID
            };
        }
        return Ok(DynptrArg { id, ref_obj_id: clone_ref, ty });
    }
    let init = get_spi(st, &reg).ok().filter(|&spi| {
        let stack = &st.frames[fi].stack;
        stack[spi].dynptr.first
            && stack[spi].bytes.iter().all(|&b| b == ByteKind::Dynptr)
            && stack[spi - 1].bytes.iter().all(|&b| b == ByteKind::Dynptr)
    });
    let Some(spi) = init else {
        return Err(reject(insn, format!("Expected an initialized dynptr as arg #{}", regno - 1)));
    };
    let d = st.frames[fi].stack[spi].dynptr;
    Ok(DynptrArg { id: d.id, ref_obj_id: d.ref_obj_id, ty: d.ty })
}

/// Checks a call of kfunc `name` if it is a dynptr kfunc (`check_kfunc_call` for
/// `bpf_dynptr_from_skb/xdp`, `bpf_dynptr_is_null/is_rdonly/size/adjust/clone` and
/// `bpf_dynptr_slice[_rdwr]`) and applies its effect; `Ok(false)` for other kfuncs.
pub(crate) fn check_kfunc(
    v: &mut Verifier<'_>,
    st: &mut State,
    insn: usize,
    name: &str,
) -> Result<bool, Stop> {
    let Some(kf) = kfunc_of(name) else { return Ok(false) };
    let prog_type = v.prog.prog_type;
    if matches!(kf, Kfunc::FromSkb | Kfunc::FromXdp)
        && !bpflab_vm::kfunc::find(name).is_some_and(|k| k.allowed(prog_type))
    {
        return Err(reject(insn, format!("calling kernel function {name} is not allowed")));
    }
    if st.lock.is_some() {
        return Err(reject(insn, "function calls are not allowed while holding a lock"));
    }
    let mut r0 = Reg::unknown();
    match kf {
        Kfunc::FromSkb | Kfunc::FromXdp => {
            let ctx = *st.reg(1);
            if ctx.is_const(0) {
                return Err(reject(insn, "Possibly NULL pointer passed to trusted arg0"));
            }
            if ctx.kind() == Some(PtrKind::Ctx) && (ctx.off != 0 || !ctx.var.is_const()) {
                return Err(Stop::unsupported(insn, "a moved context pointer passed to a kfunc"));
            }
            if ctx.kind() != Some(PtrKind::Ctx) {
                return Err(reject(
                    insn,
                    format!("arg#0 expected pointer to ctx, but got {}", ctx.type_name()),
                ));
            }
            scalar_arg(st, insn, 2)?;
            let ty = if kf == Kfunc::FromSkb { DynptrType::Skb } else { DynptrType::Xdp };
            kfunc_dynptr_arg(v, st, insn, 3, Some((ty, 0)))?;
        }
        Kfunc::Query => {
            kfunc_dynptr_arg(v, st, insn, 1, None)?;
        }
        Kfunc::Adjust => {
            kfunc_dynptr_arg(v, st, insn, 1, None)?;
            scalar_arg(st, insn, 2)?;
            scalar_arg(st, insn, 3)?;
        }
        Kfunc::Clone => {
            let parent = kfunc_dynptr_arg(v, st, insn, 1, None)?;
            kfunc_dynptr_arg(v, st, insn, 2, Some((parent.ty, parent.ref_obj_id)))?;
        }
        Kfunc::Slice { rdwr } => {
            let parent = kfunc_dynptr_arg(v, st, insn, 1, None)?;
            scalar_arg(st, insn, 2)?;
            scalar_arg(st, insn, 4)?;
            if !st.reg(3).is_const(0) {
                let size = st.reg(4).var;
                let checked =
                    crate::mem::check_helper_mem(v, st, insn, 3, &size, false, true, Some(4))
                        .and_then(|()| {
                            crate::mem::check_helper_mem(v, st, insn, 3, &size, true, true, Some(4))
                        });
                match checked {
                    Ok(()) => {}
                    Err(Stop::Reject(_)) => {
                        return Err(reject(
                            insn,
                            "arg#2 arg#3 memory, len pair leads to invalid memory access",
                        ));
                    }
                    Err(e) => return Err(e),
                }
            }
            let Some(size) = st.reg(4).var.const_value() else {
                return Err(reject(insn, "R4 must be a known constant"));
            };
            if rdwr && !may_write_pkt(prog_type) {
                return Err(reject(insn, "the prog does not allow writes to packet data"));
            }
            // Linux 6.18 as bpflab's oracle runs it refuses writable slices outright (its
            // message; 6.12 allowed them where packets may be written).
            if rdwr {
                return Err(reject(insn, "bpf_dynptr_slice_rdwr() is not allowed"));
            }
            let Ok(mem_size) = u32::try_from(size) else {
                return Err(Stop::unsupported(insn, "a dynptr slice of 4 GiB or more"));
            };
            r0 = Reg {
                maybe_null: true,
                rdonly: !rdwr,
                mem_size,
                id: v.new_id(),
                dynptr_id: parent.id,
                ..Reg::ptr(PtrKind::Mem)
            };
        }
    }
    for r in 1..=5 {
        *st.reg_mut(r) = Reg::NOT_INIT;
    }
    *st.reg_mut(0) = r0;
    Ok(true)
}

/// Whether the call moves packet data because of its dynptr argument: `bpf_dynptr_write`
/// into an skb dynptr (the kernel's `changes_data` for it).
pub(crate) fn changes_pkt_data(func: i32, d: Option<DynptrArg>) -> bool {
    func == FUNC_DYNPTR_WRITE && d.is_some_and(|d| d.ty == DynptrType::Skb)
}

/// The ids of the dynptrs on the stacks whose slices are not packet data (local and ring
/// buffer dynptrs). A helper that moves packet data invalidates every other dynptr slice,
/// as the kernel's `clear_all_pkt_pointers` does for skb and xdp slices (a slice whose
/// dynptr is no longer on any stack counts as packet data: the safe side).
pub(crate) fn non_pkt_dynptr_ids(st: &State) -> Vec<u32> {
    let mut ids = Vec::new();
    for frame in &st.frames {
        for slot in &frame.stack {
            if slot.bytes[0] == ByteKind::Dynptr
                && slot.dynptr.first
                && matches!(slot.dynptr.ty, DynptrType::Local | DynptrType::Ringbuf)
            {
                ids.push(slot.dynptr.id);
            }
        }
    }
    ids
}

/// Whether register `r` is a dynptr slice a packet-moving helper invalidates, given
/// [`non_pkt_dynptr_ids`]: a `bpf_dynptr_slice` (the kernel types those `PTR_TO_MEM |
/// DYNPTR_TYPE_SKB/XDP`; they are the read-only slices, writable ones being refused) of a
/// dynptr that is not local or ring buffer memory. `bpf_dynptr_data` slices (writable
/// `mem`) carry no dynptr type in the kernel and stay valid.
pub(crate) fn is_pkt_slice(r: &Reg, non_pkt: &[u32]) -> bool {
    r.kind() == Some(PtrKind::Mem)
        && r.rdonly
        && r.dynptr_id != 0
        && !non_pkt.contains(&r.dynptr_id)
}
