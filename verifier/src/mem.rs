//! Memory accesses: loads, stores and atomics through every pointer kind, LD_ABS/LD_IND, and
//! the memory checks of helper arguments (the kernel's `check_mem_access`,
//! `check_stack_read/write`, `check_map_access`, `check_packet_access`, `check_ctx_access`,
//! `check_sock_access`, `check_atomic`, `check_ld_abs`, `check_helper_mem_access`).
//!
//! Every rejection's class is the class of the kernel's message ([`ErrorKind::classify`]), so
//! bpflab and the kernel are compared on the same words. Where the kernel prints more than
//! one line for an error (`invalid access to map value, ...` then `R1 min value is outside
//! of the allowed memory range`), the earlier lines go to the log and the last one is the
//! error's message, as the kernel's log ends.

use bpflab_vm::ProgType;
use bpflab_vm::isa::AtomicOp;

use crate::bounds::Scalar;
use crate::check::{MAX_VAR_OFF, Verifier};
use crate::error::{ErrorKind, Stop};
use crate::state::{ByteKind, Frame, PtrKind, Reg, RegType, SLOT, StackSlot, State};
use crate::tnum::Tnum;

/// `MAX_BPF_STACK`.
const MAX_STACK: i64 = 512;
/// `BPF_MAX_VAR_SIZ`: the largest size a size register may have.
const MAX_VAR_SIZ: u64 = 1 << 29;
/// `BPF_F_RDONLY_PROG`.
const BPF_F_RDONLY_PROG: u32 = 1 << 7;
/// `BPF_F_WRONLY_PROG`.
const BPF_F_WRONLY_PROG: u32 = 1 << 8;
/// `sizeof(struct bpf_flow_keys)`.
const FLOW_KEYS_SIZE: i64 = 56;

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

/// Read or write, the kernel's `enum bpf_access_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rw {
    /// A load.
    Read,
    /// A store.
    Write,
}

/// The value side of an access: the kernel's `value_regno` (-1 is `None`), plus the
/// immediate of a BPF_ST store, which the stack tracks as a constant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Val {
    /// No register (`value_regno == -1`) and not a BPF_ST.
    None,
    /// A register: the loaded register for reads, the stored one for writes.
    Reg(usize),
    /// BPF_ST's immediate.
    Imm(i32),
}

impl Val {
    fn reg(self) -> Option<usize> {
        match self {
            Val::Reg(r) => Some(r),
            _ => None,
        }
    }
}

/// Who accesses: an instruction, or a helper through an argument (`enum bpf_access_src`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Src {
    Direct,
    Helper,
}

/// A rejection classed by the kernel's message (its last line).
fn reject(insn: usize, msg: impl Into<String>) -> Stop {
    let msg = msg.into();
    Stop::reject(ErrorKind::classify(&msg), insn, msg)
}

/// The kernel's `tnum_strn`: a constant in decimal up to `U16_MAX`, in hex above, otherwise
/// `(value; mask)` in hex.
fn tnum_str(t: Tnum) -> String {
    if t.mask == 0 {
        if t.value <= u64::from(u16::MAX) {
            return t.value.to_string();
        }
        return format!("{:#x}", t.value);
    }
    format!("({:#x}; {:#x})", t.value, t.mask)
}

impl Verifier<'_> {
    /// `env->allow_ptr_leaks` (CAP_PERFMON).
    fn allow_ptr_leaks(&self) -> bool {
        self.config.privileged
    }

    /// `env->allow_uninit_stack` (CAP_PERFMON).
    fn allow_uninit_stack(&self) -> bool {
        self.config.privileged
    }

    /// `env->bypass_spec_v1` (CAP_PERFMON).
    fn bypass_spec_v1(&self) -> bool {
        self.config.privileged
    }

    /// `env->bpf_capable` (CAP_BPF).
    fn bpf_capable(&self) -> bool {
        self.config.privileged
    }

    /// `env->strict_alignment`: `BPF_F_STRICT_ALIGNMENT` unless `BPF_F_ANY_ALIGNMENT` (x86-64
    /// has efficient unaligned access).
    fn strict_alignment(&self) -> bool {
        self.config.flags.strict_alignment && !self.config.flags.any_alignment
    }

    /// Writes a line the kernel prints before the error line.
    fn log_line(&mut self, line: &str) {
        self.log.text.push_str(line);
        self.log.text.push('\n');
    }

    /// Records stack use of `size` bytes in `subprog` as `grow_stack_state` does (rounded up
    /// to 8).
    fn note_stack_depth(&mut self, subprog: usize, size: i64) {
        let size = ((size.max(0) + 7) / 8 * 8) as u32;
        if let Some(d) = self.stack_depth.get_mut(subprog)
            && *d < size
        {
            *d = size;
        }
    }
}

/// Whether `r` is a pointer an unprivileged program may not leak (`is_pointer_value`).
fn is_pointer_value(v: &Verifier<'_>, r: &Reg) -> bool {
    !v.allow_ptr_leaks() && r.ty != RegType::Scalar
}

/// Whether the register is the known constant zero (`register_is_null`).
fn is_null(r: &Reg) -> bool {
    r.is_scalar() && r.var.const_value() == Some(0)
}

/// `fls64(umax)`: bits needed for the register's largest unsigned value.
fn reg_width(r: &Reg) -> u32 {
    64 - r.var.umax.leading_zeros()
}

/// The kernel's `reg_type_str` of a register.
fn type_str(r: &Reg) -> String {
    r.type_name()
}

/// `reg_type_str` with the state: memory holding a ring buffer record's reference is
/// `ringbuf_mem` (`MEM_RINGBUF`).
fn type_str_in(st: &State, r: &Reg) -> String {
    if r.kind() == Some(PtrKind::Mem)
        && r.ref_obj_id != 0
        && st.refs.iter().any(|x| x.id == r.ref_obj_id && x.kind == crate::state::RefKind::Ringbuf)
    {
        let mut s = String::new();
        if r.rdonly {
            s.push_str("rdonly_");
        }
        s.push_str("ringbuf_mem");
        if r.maybe_null {
            s.push_str("_or_null");
        }
        return s;
    }
    r.type_name()
}

// ---------------------------------------------------------------------------------------
// Alignment
// ---------------------------------------------------------------------------------------

/// `check_ptr_alignment`.
fn check_alignment(
    v: &Verifier<'_>,
    insn: usize,
    reg: &Reg,
    off: i32,
    size: usize,
    strict_once: bool,
) -> Result<(), Stop> {
    let mut strict = v.strict_alignment() || strict_once;
    let kind = match reg.kind() {
        Some(k) => k,
        None => return Ok(()),
    };
    let desc = match kind {
        PtrKind::Packet | PtrKind::PacketMeta => {
            if !strict || size == 1 {
                return Ok(());
            }
            let t = reg
                .var
                .var_off
                .add(Tnum::konst((2i64 + i64::from(reg.off) + i64::from(off)) as u64));
            if !t.is_aligned(size as u64) {
                return Err(reject(
                    insn,
                    format!(
                        "misaligned packet access off 2+{}+{}+{} size {size}",
                        tnum_str(reg.var.var_off),
                        reg.off,
                        off
                    ),
                ));
            }
            return Ok(());
        }
        PtrKind::FlowKeys => "flow keys ",
        PtrKind::MapKey => "key ",
        PtrKind::MapValue => "value ",
        PtrKind::Ctx => "context ",
        PtrKind::Stack => {
            strict = true;
            "stack "
        }
        PtrKind::Sock => "sock ",
        PtrKind::SockCommon => "sock_common ",
        PtrKind::TcpSock => "tcp_sock ",
        PtrKind::XdpSock => "xdp_sock ",
        _ => "",
    };
    if !strict || size == 1 {
        return Ok(());
    }
    let t = reg.var.var_off.add(Tnum::konst((i64::from(reg.off) + i64::from(off)) as u64));
    if !t.is_aligned(size as u64) {
        return Err(reject(
            insn,
            format!(
                "misaligned {desc}access off {}+{}+{} size {size}",
                tnum_str(reg.var.var_off),
                reg.off,
                off
            ),
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Regions: map values and keys, packets, memory
// ---------------------------------------------------------------------------------------

/// `__check_mem_access`: `size` bytes at `off` within `mem_size`; on failure logs the
/// region's message and returns `Err(())`.
fn region_ok(
    v: &mut Verifier<'_>,
    regno: usize,
    reg: &Reg,
    off: i32,
    size: i32,
    mem_size: u32,
    zero_ok: bool,
) -> bool {
    let size_ok = size > 0 || (size == 0 && zero_ok);
    if off >= 0 && size_ok && (off as u64) + (size as u64) <= u64::from(mem_size) {
        return true;
    }
    let line = match reg.kind() {
        Some(PtrKind::MapKey) => {
            format!("invalid access to map key, key_size={} off={off} size={size}", mem_size as i32)
        }
        Some(PtrKind::MapValue) => {
            format!(
                "invalid access to map value, value_size={} off={off} size={size}",
                mem_size as i32
            )
        }
        Some(PtrKind::Packet | PtrKind::PacketMeta | PtrKind::PacketEnd) => format!(
            "invalid access to packet, off={off} size={size}, R{regno}(id={},off={off},r={})",
            reg.id, mem_size as i32
        ),
        _ => format!("invalid access to memory, mem_size={mem_size} off={off} size={size}"),
    };
    v.log_line(&line);
    false
}

/// `check_mem_region_access`: an access through `regno` (with its variable offset) of
/// `size` bytes at fixed offset `off` within `mem_size` bytes.
#[allow(clippy::too_many_arguments)]
fn check_region(
    v: &mut Verifier<'_>,
    insn: usize,
    regno: usize,
    reg: &Reg,
    off: i32,
    size: i32,
    mem_size: u32,
    zero_ok: bool,
) -> Result<(), Stop> {
    let smin = reg.var.smin;
    let off64 = i64::from(off);
    if smin < 0
        && (smin == i64::MIN
            || off64.wrapping_add(smin) != i64::from(off64.wrapping_add(smin) as i32)
            || smin.wrapping_add(off64) < 0)
    {
        return Err(reject(
            insn,
            format!(
                "R{regno} min value is negative, either use unsigned index or do a if (index >=0) check."
            ),
        ));
    }
    if !region_ok(v, regno, reg, smin.wrapping_add(off64) as i32, size, mem_size, zero_ok) {
        return Err(reject(
            insn,
            format!("R{regno} min value is outside of the allowed memory range"),
        ));
    }
    if reg.var.umax >= MAX_VAR_OFF as u64 {
        return Err(reject(
            insn,
            format!("R{regno} unbounded memory access, make sure to bounds check any such access"),
        ));
    }
    if !region_ok(
        v,
        regno,
        reg,
        reg.var.umax.wrapping_add(off64 as u64) as i32,
        size,
        mem_size,
        zero_ok,
    ) {
        return Err(reject(
            insn,
            format!("R{regno} max value is outside of the allowed memory range"),
        ));
    }
    Ok(())
}

/// A map's flags as the kernel holds them: device maps' values are read-only to programs
/// (devmap's `dev_map_alloc_check` adds `BPF_F_RDONLY_PROG`).
pub(crate) fn prog_map_flags(m: &bpflab_vm::MapSpec) -> u32 {
    use bpflab_vm::MapType as M;
    match m.map_type {
        M::Devmap | M::DevmapHash => m.flags | BPF_F_RDONLY_PROG,
        _ => m.flags,
    }
}

/// `bpf_map_flags_to_cap` + `check_map_access_type`.
fn check_map_access_type(
    v: &Verifier<'_>,
    insn: usize,
    map: u32,
    off: i32,
    size: i32,
    t: Rw,
) -> Result<(), Stop> {
    let m = v.map_spec(map);
    let vs = m.value_size as i32;
    if t == Rw::Write && prog_map_flags(m) & BPF_F_RDONLY_PROG != 0 {
        return Err(reject(
            insn,
            format!("write into map forbidden, value_size={vs} off={off} size={size}"),
        ));
    }
    if t == Rw::Read && m.flags & BPF_F_WRONLY_PROG != 0 {
        return Err(reject(
            insn,
            format!("read from map forbidden, value_size={vs} off={off} size={size}"),
        ));
    }
    Ok(())
}

/// `check_map_access`: the value's bounds, then its special fields (locks, timers, kptrs...),
/// which loads, stores and helpers may not touch.
#[allow(clippy::too_many_arguments)]
fn check_map_access(
    v: &mut Verifier<'_>,
    insn: usize,
    regno: usize,
    reg: &Reg,
    off: i32,
    size: i32,
    zero_ok: bool,
    src: Src,
) -> Result<(), Stop> {
    let vs = v.map_spec(reg.map).value_size;
    check_region(v, insn, regno, reg, off, size, vs, zero_ok)?;
    let fields = crate::mem::map_fields(v, reg.map);
    let lo = reg.var.smin.wrapping_add(i64::from(off));
    let hi = (reg.var.umax as i64).wrapping_add(i64::from(off)).wrapping_add(i64::from(size));
    for f in fields.iter() {
        let p = i64::from(f.off);
        if lo < p + i64::from(f.size) && p < hi {
            match &f.kind {
                FieldKind::Kptr => {
                    if src != Src::Direct {
                        return Err(reject(insn, "kptr cannot be accessed indirectly by helper"));
                    }
                    return Err(Stop::unsupported(insn, "kptr fields of map values"));
                }
                FieldKind::Special(name) => {
                    return Err(reject(
                        insn,
                        format!("{name} cannot be accessed directly by load/store"),
                    ));
                }
                FieldKind::Unknown(name) => {
                    return Err(Stop::unsupported(insn, format!("map value field {name}")));
                }
            }
        }
    }
    Ok(())
}

/// A special field of a map value (`struct btf_record`).
#[derive(Clone, Debug)]
pub(crate) struct MapField {
    /// Byte offset in the value.
    pub off: u32,
    /// Size in bytes.
    pub size: u32,
    /// What it is.
    pub kind: FieldKind,
}

/// The kind of a special map value field.
#[derive(Clone, Debug)]
pub(crate) enum FieldKind {
    /// A kernel object lock, timer, list or tree root: the kernel's `btf_field_type_name`.
    Special(&'static str),
    /// A `__kptr` / `__kptr_untrusted` / `__percpu_kptr` pointer.
    Kptr,
    /// A BTF construct bpflab does not decode.
    Unknown(String),
}

/// The special fields of map `map`'s value, from the object's BTF (`btf_parse_fields`):
/// `bpf_spin_lock`, `bpf_res_spin_lock`, `bpf_timer`, `bpf_wq`, `bpf_task_work`,
/// `bpf_list_head`, `bpf_rb_root` and kptrs (the kinds a map value may hold: list and tree
/// nodes and refcounts are plain data there), searched through nested structs and arrays.
pub(crate) fn map_fields(v: &mut Verifier<'_>, map: u32) -> std::rc::Rc<[MapField]> {
    if let Some(Some(f)) = v.map_fields.get(map as usize) {
        return f.clone();
    }
    let fields: std::rc::Rc<[MapField]> = decode_map_fields(v, map).into();
    if let Some(slot) = v.map_fields.get_mut(map as usize) {
        *slot = Some(fields.clone());
    }
    fields
}

/// [`map_fields`] without the cache.
fn decode_map_fields(v: &Verifier<'_>, map: u32) -> Vec<MapField> {
    let Some(m) = v.map_spec_get(map) else { return Vec::new() };
    let (Some(tid), Some(raw)) = (m.btf_value_type_id, v.coll.btf.as_deref()) else {
        return Vec::new();
    };
    let Ok(btf) = bpflab_btf::Btf::parse(raw) else { return Vec::new() };
    let mut out = Vec::new();
    collect_fields(&btf, tid, 0, 0, &mut out);
    out
}

/// Walks type `id` at byte offset `base`, collecting special fields.
fn collect_fields(btf: &bpflab_btf::Btf, id: u32, base: u32, depth: u32, out: &mut Vec<MapField>) {
    use bpflab_btf::BtfType;
    if depth > 8 || out.len() > 64 {
        return;
    }
    // Type tags on pointers mark kptrs; look at modifiers before skipping them.
    let Ok(t) = btf.type_by_id(id) else { return };
    match t {
        BtfType::Typedef { .. }
        | BtfType::Volatile { .. }
        | BtfType::Const { .. }
        | BtfType::Restrict { .. } => {
            if let Some(next) = t.ref_type_id() {
                collect_fields(btf, next, base, depth + 1, out);
            }
        }
        BtfType::Ptr { type_id, .. } => {
            if let Ok(BtfType::TypeTag { name_off, .. }) = btf.type_by_id(*type_id) {
                let tag = btf.string_at(*name_off).unwrap_or("");
                if matches!(tag, "kptr" | "kptr_untrusted" | "percpu_kptr" | "kptr_ref") {
                    out.push(MapField { off: base, size: 8, kind: FieldKind::Kptr });
                } else if tag != "rcu" && tag != "user" && tag != "percpu" {
                    out.push(MapField {
                        off: base,
                        size: 8,
                        kind: FieldKind::Unknown(format!("tag {tag}")),
                    });
                }
            }
        }
        BtfType::Struct(c) => {
            let name = btf.string_at(c.name_off).unwrap_or("");
            let special = match name {
                "bpf_spin_lock" => Some("bpf_spin_lock"),
                "bpf_timer" => Some("bpf_timer"),
                "bpf_wq" => Some("bpf_wq"),
                "bpf_list_head" => Some("bpf_list_head"),
                "bpf_rb_root" => Some("bpf_rb_root"),
                "bpf_res_spin_lock" => Some("bpf_res_spin_lock"),
                "bpf_task_work" => Some("bpf_task_work"),
                _ => None,
            };
            if let Some(s) = special {
                out.push(MapField { off: base, size: c.size, kind: FieldKind::Special(s) });
                return;
            }
            for m in &c.members {
                if m.bitfield_size != 0 {
                    continue;
                }
                collect_fields(btf, m.type_id, base + m.bit_offset / 8, depth + 1, out);
            }
        }
        BtfType::Var { type_id, .. } => collect_fields(btf, *type_id, base, depth + 1, out),
        BtfType::Datasec(d) => {
            for var in &d.vars {
                collect_fields(btf, var.type_id, base + var.offset, depth + 1, out);
            }
        }
        BtfType::Array(a) => {
            let before = out.len();
            collect_fields(btf, a.elem_type, base, depth + 1, out);
            if out.len() > before {
                let elem = btf.size_of(a.elem_type).unwrap_or(0);
                let first: Vec<MapField> = out[before..].to_vec();
                for i in 1..a.nelems.min(64) {
                    for f in &first {
                        out.push(MapField { off: f.off + i * elem, ..f.clone() });
                    }
                }
            }
        }
        _ => {}
    }
}

/// `may_access_direct_pkt_data` for direct (not helper) accesses.
fn may_access_pkt(prog_type: ProgType, t: Rw) -> bool {
    match prog_type {
        ProgType::LwtIn
        | ProgType::LwtOut
        | ProgType::LwtSeg6local
        | ProgType::SkReuseport
        | ProgType::FlowDissector
        | ProgType::CgroupSkb => t == Rw::Read,
        ProgType::SchedCls
        | ProgType::SchedAct
        | ProgType::Xdp
        | ProgType::LwtXmit
        | ProgType::SkSkb
        | ProgType::SkMsg
        | ProgType::CgroupSockopt => true,
        _ => false,
    }
}

/// `check_packet_access`.
fn check_packet_access(
    v: &mut Verifier<'_>,
    insn: usize,
    regno: usize,
    reg: &Reg,
    off: i32,
    size: i32,
    zero_ok: bool,
) -> Result<(), Stop> {
    if reg.var.smin < 0 {
        return Err(reject(
            insn,
            format!(
                "R{regno} min value is negative, either use unsigned index or do a if (index >=0) check."
            ),
        ));
    }
    let ok = reg.range >= 0 && region_ok(v, regno, reg, off, size, reg.range as u32, zero_ok);
    if !ok {
        return Err(reject(insn, format!("R{regno} offset is outside of the packet")));
    }
    Ok(())
}

/// `__check_ptr_off_reg` with `fixed_off_ok == false` (`check_ptr_off_reg`).
fn check_ptr_off_reg(insn: usize, regno: usize, reg: &Reg, fixed_off_ok: bool) -> Result<(), Stop> {
    if reg.off < 0 {
        return Err(reject(
            insn,
            format!("negative offset {} ptr R{regno} off={} disallowed", type_str(reg), reg.off),
        ));
    }
    if !fixed_off_ok && reg.off != 0 {
        return Err(reject(
            insn,
            format!(
                "dereference of modified {} ptr R{regno} off={} disallowed",
                type_str(reg),
                reg.off
            ),
        ));
    }
    if reg.var.const_value() != Some(0) {
        return Err(reject(
            insn,
            format!(
                "variable {} access var_off={} disallowed",
                type_str(reg),
                tnum_str(reg.var.var_off)
            ),
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Stack
// ---------------------------------------------------------------------------------------

/// The frame index a stack pointer points into.
fn frame_of(st: &State, reg: &Reg) -> usize {
    (reg.frameno as usize).min(st.frames.len() - 1)
}

/// `check_stack_access_within_bounds`; grows the frame's stack to cover the access.
#[allow(clippy::too_many_arguments)]
fn check_stack_bounds(
    v: &mut Verifier<'_>,
    st: &mut State,
    insn: usize,
    regno: usize,
    reg: &Reg,
    off: i64,
    size: i64,
    src: Src,
    t: Rw,
) -> Result<(), Stop> {
    let fi = frame_of(st, reg);
    let extra = match (src, t) {
        // The 6.18 kernel names helper accesses by their access type too.
        (_, Rw::Read) => " read from",
        (_, Rw::Write) => " write to",
    };
    let (min_off, max_off) = match reg.var.const_value() {
        Some(c) => {
            let m = (c as i64).wrapping_add(off);
            (m, m.wrapping_add(size))
        }
        None => {
            if reg.var.smax >= MAX_VAR_OFF || reg.var.smin <= -MAX_VAR_OFF {
                return Err(reject(
                    insn,
                    format!("invalid unbounded variable-offset{extra} stack R{regno}"),
                ));
            }
            (reg.var.smin + off, reg.var.smax + off + size)
        }
    };
    let min_valid = if t == Rw::Write || v.allow_uninit_stack() {
        -MAX_STACK
    } else {
        -(st.frames[fi].allocated_stack() as i64)
    };
    let bad = min_off < min_valid || min_off > -1 || max_off > 0 || size < 0;
    if bad {
        return Err(reject(
            insn,
            match reg.var.const_value() {
                Some(_) => format!("invalid{extra} stack R{regno} off={off} size={size}"),
                None => format!(
                    "invalid variable-offset{extra} stack R{regno} var_off={} off={off} size={size}",
                    tnum_str(reg.var.var_off)
                ),
            },
        ));
    }
    let frame = &mut st.frames[fi];
    frame.grow_stack(min_off);
    let sub = frame.subprog;
    v.note_stack_depth(sub, -min_off);
    Ok(())
}

/// Kind of stack byte at offset `off` (negative) of `frame`; bytes past the allocated stack
/// are invalid.
fn byte_at(frame: &Frame, off: i64) -> ByteKind {
    let (s, b) = Frame::slot_of(off);
    frame.stack.get(s).map_or(ByteKind::Invalid, |slot| slot.bytes[b])
}

/// Whether the slot holds a spilled register (`is_spilled_reg`: its lowest byte is spill).
fn is_spilled(slot: &StackSlot) -> bool {
    slot.bytes[0] == ByteKind::Spill
}

/// `save_register_state`: spills `reg` into the top `size` bytes... (the lowest `size`
/// addresses of the slot, as a little-endian store at the slot's start writes them); the
/// other bytes of a narrow spill become misc unless invalid or zero.
fn save_register_state(slot: &mut StackSlot, reg: Reg, size: usize) {
    slot.spilled = reg;
    for (i, b) in slot.bytes.iter_mut().enumerate() {
        if i < size {
            *b = ByteKind::Spill;
        } else if *b != ByteKind::Zero && *b != ByteKind::Invalid {
            *b = ByteKind::Misc;
        }
    }
}

/// Whether the slot holds a spilled register, a dynptr or an iterator
/// (`is_stack_slot_special`).
fn is_special(slot: &StackSlot) -> bool {
    matches!(slot.bytes[0], ByteKind::Spill | ByteKind::Dynptr | ByteKind::Iter)
}

/// `scrub_special_slot`: a plain write into a slot destroys the spilled register (or
/// iterator) it held.
fn scrub_slot(slot: &mut StackSlot) {
    let special = is_special(slot);
    slot.spilled = Reg::NOT_INIT;
    if special {
        for b in &mut slot.bytes {
            if *b != ByteKind::Invalid {
                *b = ByteKind::Misc;
            }
        }
    }
}

/// `check_stack_write_fixed_off`: a store of `size` bytes at stack offset `off` of frame
/// `fi`.
#[allow(clippy::too_many_arguments)]
fn stack_write_fixed(
    v: &mut Verifier<'_>,
    st: &mut State,
    insn: usize,
    fi: usize,
    off: i64,
    size: usize,
    val: Val,
) -> Result<(), Stop> {
    let (spi, _) = Frame::slot_of(off);
    let cur_fi = st.frames.len() - 1;
    {
        let slot = &st.frames[fi].stack[spi];
        if !v.allow_ptr_leaks() && is_spilled(slot) && !slot.spilled.is_scalar() && size != SLOT {
            return Err(reject(insn, "attempt to corrupt spilled pointer on stack"));
        }
    }
    crate::dynptr::destroy_if_dynptr_slot(v, st, insn, fi, spi)?;
    let reg = val.reg().map(|r| st.frames[cur_fi].regs[r]);
    let aligned = off % SLOT as i64 == 0;
    if let (Some(r), true) = (reg, aligned && reg.is_some_and(|r| r.is_scalar()) && v.bpf_capable())
    {
        let fits = reg_width(&r) <= 8 * size as u32;
        let mut saved = r;
        if fits && !r.var.is_const() && r.id == 0 {
            let id = v.new_id();
            saved.id = id;
            if let Some(rn) = val.reg() {
                st.frames[cur_fi].regs[rn].id = id;
            }
        }
        if !fits {
            saved.id = 0;
        }
        save_register_state(&mut st.frames[fi].stack[spi], saved, size);
    } else if let (Val::Imm(imm), true) = (val, aligned && v.bpf_capable()) {
        let r = Reg::konst(i64::from(imm) as u64);
        save_register_state(&mut st.frames[fi].stack[spi], r, size);
    } else if let Some(r) = reg.filter(|r| r.is_ptr()) {
        if size != SLOT {
            return Err(reject(insn, "invalid size of register spill"));
        }
        if fi != cur_fi && r.kind() == Some(PtrKind::Stack) {
            return Err(reject(
                insn,
                "cannot spill pointers to stack into stack frame of the caller",
            ));
        }
        save_register_state(&mut st.frames[fi].stack[spi], r, size);
    } else {
        let zero = reg.is_some_and(|r| is_null(&r)) || val == Val::Imm(0);
        let kind = if zero { ByteKind::Zero } else { ByteKind::Misc };
        let frame = &mut st.frames[fi];
        scrub_slot(&mut frame.stack[spi]);
        for a in off..off + size as i64 {
            let (s, b) = Frame::slot_of(a);
            frame.stack[s].bytes[b] = kind;
        }
    }
    Ok(())
}

/// `check_stack_write_var_off`.
#[allow(clippy::too_many_arguments)]
fn stack_write_var(
    v: &mut Verifier<'_>,
    st: &mut State,
    insn: usize,
    fi: usize,
    reg: &Reg,
    off: i64,
    size: usize,
    val: Val,
) -> Result<(), Stop> {
    let cur_fi = st.frames.len() - 1;
    let min_off = reg.var.smin + off;
    let max_off = reg.var.smax + off + size as i64;
    let writing_zero =
        val.reg().is_some_and(|r| is_null(&st.frames[cur_fi].regs[r])) || val == Val::Imm(0);
    let allow_leaks = v.allow_ptr_leaks();
    let allow_uninit = v.allow_uninit_stack();
    crate::dynptr::destroy_range(v, st, insn, fi, min_off, max_off)?;
    let frame = &mut st.frames[fi];
    for i in min_off..max_off {
        let (s, b) = Frame::slot_of(i);
        let ty = frame.stack[s].bytes[b];
        if !allow_leaks && ty != ByteKind::Misc && ty != ByteKind::Zero {
            return Err(reject(
                insn,
                format!(
                    "spilled ptr in range of var-offset stack write; insn {insn}, ptr off: {i}"
                ),
            ));
        }
        if writing_zero
            && ty == ByteKind::Spill
            && is_spilled(&frame.stack[s])
            && frame.stack[s].spilled.is_scalar()
            && frame.stack[s].spilled.var.const_value() == Some(0)
        {
            continue;
        }
        scrub_slot(&mut frame.stack[s]);
        let ty = frame.stack[s].bytes[b];
        let new =
            if writing_zero && ty == ByteKind::Zero { ByteKind::Zero } else { ByteKind::Misc };
        if ty == ByteKind::Invalid && !allow_uninit {
            return Err(reject(
                insn,
                format!(
                    "uninit stack in range of var-offset write prohibited for !root; insn {insn}, off: {i}"
                ),
            ));
        }
        frame.stack[s].bytes[b] = new;
    }
    Ok(())
}

/// `check_stack_read_fixed_off`: a load of `size` bytes at stack offset `off` of frame `fi`
/// into `dst` (or nowhere).
fn stack_read_fixed(
    v: &mut Verifier<'_>,
    st: &mut State,
    insn: usize,
    fi: usize,
    off: i64,
    size: usize,
    dst: Option<usize>,
) -> Result<(), Stop> {
    let (spi, _) = Frame::slot_of(off);
    let slot = st.frames[fi].stack[spi];
    let allow_uninit = v.allow_uninit_stack();
    let uninit_err =
        |i: i64| reject(insn, format!("invalid read from stack off {off}+{i} size {size}"));
    if is_spilled(&slot) {
        let spill_size = slot.bytes.iter().take_while(|&&b| b == ByteKind::Spill).count();
        let spilled = slot.spilled;
        if size != SLOT || spill_size != SLOT {
            if !spilled.is_scalar() {
                return Err(reject(insn, "invalid size of register fill"));
            }
            let Some(d) = dst else { return Ok(()) };
            if size <= spill_size && off % SLOT as i64 == 0 {
                let mut r = spilled;
                if reg_width(&spilled) > 8 * size as u32 {
                    r.id = 0;
                }
                *st.reg_mut(d) = r;
            } else {
                let (mut spill_cnt, mut zero_cnt) = (0, 0);
                for i in 0..size as i64 {
                    match byte_at(&st.frames[fi], off + i) {
                        ByteKind::Spill => spill_cnt += 1,
                        ByteKind::Misc => {}
                        ByteKind::Zero => zero_cnt += 1,
                        ByteKind::Invalid if allow_uninit => {}
                        ByteKind::Invalid | ByteKind::Dynptr | ByteKind::Iter => {
                            return Err(uninit_err(i));
                        }
                    }
                }
                let r = if (spill_cnt == size && spilled.var.const_value() == Some(0))
                    || zero_cnt == size
                {
                    Reg::konst(0)
                } else {
                    Reg::unknown()
                };
                *st.reg_mut(d) = r;
            }
        } else if let Some(d) = dst {
            *st.reg_mut(d) = spilled;
        } else if is_pointer_value(v, &spilled) {
            return Err(reject(insn, format!("leaking pointer from stack off {off}")));
        }
    } else {
        let mut zeros = 0;
        for i in 0..size as i64 {
            match byte_at(&st.frames[fi], off + i) {
                ByteKind::Misc => {}
                ByteKind::Zero => zeros += 1,
                ByteKind::Invalid if allow_uninit => {}
                _ => return Err(uninit_err(i)),
            }
        }
        if let Some(d) = dst {
            *st.reg_mut(d) = if zeros == size { Reg::konst(0) } else { Reg::unknown() };
        }
    }
    Ok(())
}

/// What `check_stack_range_initialized` does besides checking: a helper's raw-mode write
/// leaves the bytes to be written afterwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RangeMode {
    /// An instruction's variable-offset read.
    Direct,
    /// A helper reading (and maybe writing: clobbering) initialised memory; the access
    /// type of its argument.
    Helper(Rw),
    /// A helper writing uninitialised memory of a known size (`meta->raw_mode`).
    HelperRaw,
}

/// `check_stack_range_initialized`: `size` bytes at `reg + off` (`off` includes the fixed
/// offset) all initialised; a helper's write clobbers spilled registers and zero bytes.
#[allow(clippy::too_many_arguments)]
fn stack_range_initialized(
    v: &mut Verifier<'_>,
    st: &mut State,
    insn: usize,
    regno: usize,
    off: i64,
    size: i64,
    zero_ok: bool,
    mode: RangeMode,
) -> Result<(), Stop> {
    let reg = *st.reg(regno);
    let helper = mode != RangeMode::Direct;
    let extra = if helper { " indirect" } else { "" };
    if size == 0 && !zero_ok {
        return Err(reject(insn, "invalid zero-sized read"));
    }
    let (src, bt) = match mode {
        RangeMode::Direct => (Src::Direct, Rw::Read),
        RangeMode::Helper(t) => (Src::Helper, t),
        RangeMode::HelperRaw => (Src::Helper, Rw::Write),
    };
    check_stack_bounds(v, st, insn, regno, &reg, off, size, src, bt)?;
    let mut raw = mode == RangeMode::HelperRaw;
    let (min_off, max_off) = match reg.var.const_value() {
        Some(c) => {
            let m = (c as i64).wrapping_add(off);
            (m, m)
        }
        None => {
            if !v.bypass_spec_v1() {
                return Err(reject(
                    insn,
                    format!(
                        "R{regno}{extra} variable offset stack access prohibited for !root, var_off={}",
                        tnum_str(reg.var.var_off)
                    ),
                ));
            }
            raw = false;
            (reg.var.smin + off, reg.var.smax + off)
        }
    };
    if raw {
        return crate::dynptr::check_raw_write(st, insn, &reg, min_off, max_off + size);
    }
    let fi = frame_of(st, &reg);
    let allow_uninit = v.allow_uninit_stack();
    let allow_leaks = v.allow_ptr_leaks();
    // 6.18 turns initialised bytes into unknown ones only where the helper may write them.
    let clobber = helper && bt == Rw::Write;
    for i in min_off..max_off + size {
        let (s, b) = Frame::slot_of(i);
        let frame = &mut st.frames[fi];
        let Some(slot) = frame.stack.get_mut(s) else {
            return Err(Stop::unsupported(insn, "stack range past the allocated stack"));
        };
        let ty = slot.bytes[b];
        if ty == ByteKind::Misc {
            continue;
        }
        if ty == ByteKind::Zero || (ty == ByteKind::Invalid && allow_uninit) {
            if clobber {
                slot.bytes[b] = ByteKind::Misc;
            }
            continue;
        }
        if is_spilled(slot) && (slot.spilled.is_scalar() || allow_leaks) {
            if clobber {
                slot.spilled = Reg::unknown();
                for bb in &mut slot.bytes {
                    if *bb != ByteKind::Invalid {
                        *bb = ByteKind::Misc;
                    }
                }
            }
            continue;
        }
        return Err(reject(
            insn,
            match reg.var.const_value() {
                Some(_) => format!(
                    "invalid{extra} read from stack R{regno} off {min_off}+{} size {size}",
                    i - min_off
                ),
                None => format!(
                    "invalid{extra} read from stack R{regno} var_off {}+{} size {size}",
                    tnum_str(reg.var.var_off),
                    i - min_off
                ),
            },
        ));
    }
    Ok(())
}

/// `check_stack_read` (fixed or variable offset) after the bounds check.
fn stack_read(
    v: &mut Verifier<'_>,
    st: &mut State,
    insn: usize,
    regno: usize,
    off: i64,
    size: usize,
    dst: Option<usize>,
) -> Result<(), Stop> {
    let reg = *st.reg(regno);
    let fi = frame_of(st, &reg);
    match reg.var.const_value() {
        Some(c) => stack_read_fixed(v, st, insn, fi, off + c as i64, size, dst),
        None => {
            let Some(d) = dst else {
                return Err(reject(
                    insn,
                    format!(
                        "variable offset stack pointer cannot be passed into helper function; var_off={} off={off} size={size}",
                        tnum_str(reg.var.var_off)
                    ),
                ));
            };
            stack_range_initialized(
                v,
                st,
                insn,
                regno,
                off,
                size as i64,
                false,
                RangeMode::Direct,
            )?;
            let min_off = reg.var.smin + off;
            let max_off = reg.var.smax + off + size as i64;
            let all_zero = (min_off..max_off).all(|i| byte_at(&st.frames[fi], i) == ByteKind::Zero);
            *st.reg_mut(d) = if all_zero { Reg::konst(0) } else { Reg::unknown() };
            Ok(())
        }
    }
}

/// `check_stack_write` (fixed or variable offset) after the bounds check.
fn stack_write(
    v: &mut Verifier<'_>,
    st: &mut State,
    insn: usize,
    regno: usize,
    off: i64,
    size: usize,
    val: Val,
) -> Result<(), Stop> {
    let reg = *st.reg(regno);
    let fi = frame_of(st, &reg);
    match reg.var.const_value() {
        Some(c) => stack_write_fixed(v, st, insn, fi, off + c as i64, size, val),
        None => stack_write_var(v, st, insn, fi, &reg, off, size, val),
    }
}

// ---------------------------------------------------------------------------------------
// check_mem_access
// ---------------------------------------------------------------------------------------

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
    let (t, val, ldsx) = match access {
        Access::Read { dst, signed } => (Rw::Read, Val::Reg(dst), signed),
        Access::Write { src: Some(r), .. } => (Rw::Write, Val::Reg(r), false),
        Access::Write { src: None, imm } => (Rw::Write, Val::Imm(imm), false),
    };
    let kind = st.reg(base).kind();
    access_mem(v, st, insn, base, i32::from(off), size, t, val, false, ldsx)?;
    save_aux_ptr_type(v, insn, kind)
}

/// `save_aux_ptr_type`: one instruction may access memory through pointers of different
/// kinds on different paths only when none of them is rewritten per kind (context, socket
/// and BTF pointers are: the kernel patches the instruction for the kind it saw).
fn save_aux_ptr_type(v: &mut Verifier<'_>, insn: usize, kind: Option<PtrKind>) -> Result<(), Stop> {
    let Some(kind) = kind else { return Ok(()) };
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
    let Some(slot) = v.insn_ptr_kind.get_mut(insn) else { return Ok(()) };
    match *slot {
        None => *slot = Some(kind),
        Some(prev) if prev != kind && (rewritten(prev) || rewritten(kind)) => {
            return Err(reject(insn, "same insn cannot be used with different pointers"));
        }
        Some(_) => {}
    }
    Ok(())
}

/// The kernel's `check_mem_access` for an access through register `regno`.
#[allow(clippy::too_many_arguments)]
fn access_mem(
    v: &mut Verifier<'_>,
    st: &mut State,
    insn: usize,
    regno: usize,
    off: i32,
    size: usize,
    t: Rw,
    val: Val,
    strict_once: bool,
    ldsx: bool,
) -> Result<(), Stop> {
    let reg = *st.reg(regno);
    check_alignment(v, insn, &reg, off, size, strict_once)?;
    let off = off.wrapping_add(reg.off);
    let isz = size as i32;
    let value_reg = val.reg();
    let stored_ptr = |v: &Verifier<'_>, st: &State| {
        t == Rw::Write && value_reg.is_some_and(|r| is_pointer_value(v, st.reg(r)))
    };
    // Reads into a register: the destination's new value, set below per kind.
    let read_dst = if t == Rw::Read { value_reg } else { None };
    let Some(kind) = reg.kind() else {
        return Err(reject(
            insn,
            format!("R{regno} invalid mem access '{}'", type_str_in(st, &reg)),
        ));
    };
    if reg.maybe_null && kind != PtrKind::Mem {
        return Err(reject(
            insn,
            format!("R{regno} invalid mem access '{}'", type_str_in(st, &reg)),
        ));
    }
    match kind {
        PtrKind::MapKey => {
            if t == Rw::Write {
                return Err(reject(insn, format!("write to change key R{regno} not allowed")));
            }
            let ks = v.map_spec(reg.map).key_size;
            check_region(v, insn, regno, &reg, off, isz, ks, false)?;
            if let Some(d) = read_dst {
                *st.reg_mut(d) = Reg::unknown();
            }
        }
        PtrKind::MapValue => {
            if stored_ptr(v, st) {
                return Err(reject(
                    insn,
                    format!("R{} leaks addr into map", value_reg.unwrap_or(0)),
                ));
            }
            check_map_access_type(v, insn, reg.map, off, isz, t)?;
            check_map_access(v, insn, regno, &reg, off, isz, false, Src::Direct)?;
            if let Some(d) = read_dst {
                *st.reg_mut(d) = map_value_load(v, insn, &reg, off, size, ldsx)?;
            }
        }
        PtrKind::Mem => {
            if reg.maybe_null {
                return Err(reject(
                    insn,
                    format!("R{regno} invalid mem access '{}'", type_str_in(st, &reg)),
                ));
            }
            if t == Rw::Write && reg.rdonly {
                return Err(reject(
                    insn,
                    format!("R{regno} cannot write into {}", type_str_in(st, &reg)),
                ));
            }
            if stored_ptr(v, st) {
                return Err(reject(
                    insn,
                    format!("R{} leaks addr into mem", value_reg.unwrap_or(0)),
                ));
            }
            check_region(v, insn, regno, &reg, off, isz, reg.mem_size, false)?;
            if let Some(d) = read_dst {
                *st.reg_mut(d) = Reg::unknown();
            }
        }
        PtrKind::Ctx => {
            if stored_ptr(v, st) {
                return Err(reject(
                    insn,
                    format!("R{} leaks addr into ctx", value_reg.unwrap_or(0)),
                ));
            }
            check_ptr_off_reg(insn, regno, &reg, false)?;
            let loaded = crate::mem::ctx_access(v, insn, off, size, t, ldsx)?;
            if let Some(d) = read_dst {
                let mut r = loaded;
                if r.is_ptr() && r.maybe_null {
                    r.id = v.new_id();
                }
                *st.reg_mut(d) = r;
            }
        }
        PtrKind::Stack => {
            check_stack_bounds(
                v,
                st,
                insn,
                regno,
                &reg,
                i64::from(off),
                i64::from(isz),
                Src::Direct,
                t,
            )?;
            match t {
                Rw::Read => stack_read(v, st, insn, regno, i64::from(off), size, read_dst)?,
                Rw::Write => stack_write(v, st, insn, regno, i64::from(off), size, val)?,
            }
        }
        PtrKind::Packet | PtrKind::PacketMeta => {
            if t == Rw::Write && !may_access_pkt(v.prog.prog_type, t) {
                return Err(reject(insn, "cannot write into packet"));
            }
            if stored_ptr(v, st) {
                return Err(reject(
                    insn,
                    format!("R{} leaks addr into packet", value_reg.unwrap_or(0)),
                ));
            }
            check_packet_access(v, insn, regno, &reg, off, isz, false)?;
            if let Some(d) = read_dst {
                *st.reg_mut(d) = Reg::unknown();
            }
        }
        PtrKind::FlowKeys => {
            if stored_ptr(v, st) {
                return Err(reject(
                    insn,
                    format!("R{} leaks addr into flow keys", value_reg.unwrap_or(0)),
                ));
            }
            if off < 0 || i64::from(off) + i64::from(isz) > FLOW_KEYS_SIZE {
                return Err(reject(
                    insn,
                    format!("invalid access to flow keys off={off} size={isz}"),
                ));
            }
            if let Some(d) = read_dst {
                *st.reg_mut(d) = Reg::unknown();
            }
        }
        PtrKind::Sock | PtrKind::SockCommon | PtrKind::TcpSock | PtrKind::XdpSock => {
            if t == Rw::Write {
                return Err(reject(
                    insn,
                    format!("R{regno} cannot write into {}", type_str_in(st, &reg)),
                ));
            }
            crate::mem::sock_access(insn, regno, &reg, kind, off, isz)?;
            if let Some(d) = value_reg {
                *st.reg_mut(d) = Reg::unknown();
            }
        }
        PtrKind::TpBuffer => {
            if off < 0 {
                return Err(reject(
                    insn,
                    format!("R{regno} invalid tracepoint buffer access: off={off}, size={isz}"),
                ));
            }
            if !reg.var.is_const() {
                return Err(reject(
                    insn,
                    format!(
                        "R{regno} invalid variable buffer offset: off={off}, var_off={}",
                        tnum_str(reg.var.var_off)
                    ),
                ));
            }
            if let Some(d) = read_dst {
                *st.reg_mut(d) = Reg::unknown();
            }
        }
        PtrKind::BtfId => {
            let r = btf_ptr_access(v, insn, regno, &reg, off, size, t)?;
            if let Some(d) = read_dst {
                *st.reg_mut(d) = r;
            }
        }
        PtrKind::MapPtr => {
            let r = map_ptr_access(v, insn, regno, &reg, off, size, t)?;
            if let Some(d) = read_dst {
                *st.reg_mut(d) = r;
            }
        }
        PtrKind::PacketEnd | PtrKind::Func | PtrKind::ConstDynptr => {
            return Err(reject(
                insn,
                format!("R{regno} invalid mem access '{}'", type_str_in(st, &reg)),
            ));
        }
    }
    if let Some(d) = read_dst
        && size < SLOT
        && st.reg(d).is_scalar()
    {
        let r = st.reg_mut(d);
        if ldsx {
            r.var.coerce_to_size_sx(size as u8);
        } else {
            r.var.coerce_to_size(size as u8);
        }
    }
    Ok(())
}

/// The value a load from a map value yields: a known constant from a frozen read-only
/// array (`.rodata`) at a constant offset, else an unknown scalar.
fn map_value_load(
    v: &Verifier<'_>,
    insn: usize,
    reg: &Reg,
    off: i32,
    size: usize,
    ldsx: bool,
) -> Result<Reg, Stop> {
    let m = v.map_spec(reg.map);
    if m.flags & BPF_F_RDONLY_PROG != 0
        && m.map_type == bpflab_vm::MapType::Array
        && m.max_entries != 1
        && matches!(m.data, Some((bpflab_vm::spec::DataSection::Rodata, _)))
        && reg.var.is_const()
    {
        // The kernel's direct read fails for arrays of more than one value.
        return Err(Stop::unsupported(insn, "constant read of a frozen multi-value array"));
    }
    // `bpf_map_is_rdonly` (read-only to programs and frozen, as loaders freeze `.rodata`)
    // and `map_direct_value_addr` (single-value arrays).
    let frozen = m.flags & BPF_F_RDONLY_PROG != 0
        && m.map_type == bpflab_vm::MapType::Array
        && m.max_entries == 1
        && matches!(m.data, Some((bpflab_vm::spec::DataSection::Rodata, _)));
    if let (true, Some(c), Some((_, bytes))) = (frozen, reg.var.const_value(), &m.data) {
        let at = (c as i64).wrapping_add(i64::from(off));
        if at >= 0 {
            let at = at as usize;
            let mut buf = [0u8; 8];
            for (i, b) in buf.iter_mut().take(size).enumerate() {
                *b = bytes.get(at + i).copied().unwrap_or(0);
            }
            let raw = u64::from_le_bytes(buf);
            let val = if ldsx {
                let shift = 64 - 8 * size as u32;
                (((raw << shift) as i64) >> shift) as u64
            } else {
                raw
            };
            return Ok(Reg::konst(val));
        }
    }
    Ok(Reg::unknown())
}

// ---------------------------------------------------------------------------------------
// Context and sockets
// ---------------------------------------------------------------------------------------

/// `check_ctx_access`: a load or store of the program's context at `off`, decided by the
/// program type's context layout (`vm::ctx::layout`, the kernel's `is_valid_access`); gives
/// the loaded register.
pub(crate) fn ctx_access(
    v: &mut Verifier<'_>,
    insn: usize,
    off: i32,
    size: usize,
    t: Rw,
    ldsx: bool,
) -> Result<Reg, Stop> {
    use bpflab_vm::ctx::layout::{self, AccessKind, Yields};
    let prog = v.prog;
    let Some(l) = layout::layout(prog.prog_type) else {
        return Err(Stop::unsupported(
            insn,
            format!("context accesses of {:?} programs", prog.prog_type),
        ));
    };
    let kind = match (t, ldsx) {
        (Rw::Write, _) => AccessKind::Write,
        (Rw::Read, true) => AccessKind::ReadSx,
        (Rw::Read, false) => AccessKind::Read,
    };
    let attach = layout::normalize_attach(prog.prog_type, prog.expected_attach_type);
    let field = l
        .check(attach, v.bpf_capable(), i64::from(off), size as u32, kind)
        .map_err(|_| reject(insn, format!("invalid bpf_context access off={off} size={size}")))?;
    Ok(match field.yields {
        Yields::Scalar => Reg::unknown(),
        Yields::Packet => Reg::ptr(PtrKind::Packet),
        Yields::PacketMeta => Reg::ptr(PtrKind::PacketMeta),
        Yields::PacketEnd => Reg::ptr(PtrKind::PacketEnd),
        Yields::Socket => Reg::ptr(PtrKind::Sock),
        Yields::SocketOrNull => Reg { maybe_null: true, ..Reg::ptr(PtrKind::Sock) },
        Yields::SockCommonOrNull => Reg { maybe_null: true, ..Reg::ptr(PtrKind::SockCommon) },
        Yields::FlowKeys => Reg::ptr(PtrKind::FlowKeys),
        Yields::TpBuffer => Reg::ptr(PtrKind::TpBuffer),
        Yields::TracedArg => {
            return Err(Stop::unsupported(insn, "traced function arguments (BTF pointer access)"));
        }
        Yields::BtfId(name) => match vmlinux_struct(name) {
            Some(id) => Reg { btf_id: id, ..Reg::ptr(PtrKind::BtfId) },
            None => {
                return Err(Stop::unsupported(insn, format!("BTF pointer access (struct {name})")));
            }
        },
    })
}

/// `sizeof(struct bpf_sock)`.
const BPF_SOCK_SIZE: i32 = 80;
/// `offsetofend(struct bpf_tcp_sock, icsk_retransmits)`.
const BPF_TCP_SOCK_END: i32 = 112;
/// `offsetofend(struct bpf_xdp_sock, queue_id)`.
const BPF_XDP_SOCK_END: i32 = 4;

/// `bpf_ctx_narrow_access_ok`.
fn narrow_ok(size: i32, field: i32) -> bool {
    size <= field && size & (size - 1) == 0
}

/// `bpf_sock_is_valid_access`.
fn sock_valid(off: i32, size: i32) -> bool {
    if !(0..BPF_SOCK_SIZE).contains(&off) || size <= 0 || off % size != 0 {
        return false;
    }
    match off {
        // state, family, type, protocol, src_port, rx_queue_mapping (their first byte only)
        72 | 4 | 8 | 12 | 44 | 76 => narrow_ok(size, 4),
        // src_ip4, src_ip6[4], dst_ip4, dst_ip6[4]
        24..=43 | 52..=71 => narrow_ok(size, 4),
        // dst_port: 4-byte loads kept for compatibility, else a 2-byte field.
        48..=49 => narrow_ok(size, if size == 4 { 4 } else { 2 }),
        50..=51 => false,
        _ => size == 4,
    }
}

/// `check_sock_access`: loads of `struct bpf_sock`, `bpf_tcp_sock` and `bpf_xdp_sock`
/// fields (net/core/filter.c's `*_is_valid_access`).
fn sock_access(
    insn: usize,
    regno: usize,
    reg: &Reg,
    kind: PtrKind,
    off: i32,
    size: i32,
) -> Result<(), Stop> {
    if reg.var.smin < 0 {
        return Err(reject(
            insn,
            format!(
                "R{regno} min value is negative, either use unsigned index or do a if (index >=0) check."
            ),
        ));
    }
    let valid = match kind {
        PtrKind::SockCommon => !(8..24).contains(&off) && sock_valid(off, size),
        PtrKind::Sock => sock_valid(off, size),
        PtrKind::TcpSock => {
            (0..BPF_TCP_SOCK_END).contains(&off)
                && size > 0
                && off % size == 0
                && match off {
                    80 | 88 => size == 8,
                    _ => size == 4,
                }
        }
        PtrKind::XdpSock => {
            (0..BPF_XDP_SOCK_END).contains(&off) && size > 0 && off % size == 0 && size == 4
        }
        _ => false,
    };
    if valid {
        return Ok(());
    }
    Err(reject(insn, format!("R{regno} invalid {} access off={off} size={size}", type_str(reg))))
}

// ---------------------------------------------------------------------------------------
// BTF-typed kernel objects (map pointers, netfilter contexts, BTF pointers)
// ---------------------------------------------------------------------------------------

/// The running kernel's BTF, parsed once.
pub(crate) fn vmlinux() -> Option<&'static bpflab_btf::Btf> {
    static V: std::sync::OnceLock<Option<bpflab_btf::Btf>> = std::sync::OnceLock::new();
    V.get_or_init(|| bpflab_btf::Btf::from_vmlinux().ok()).as_ref()
}

/// The vmlinux BTF id of `struct name` (cached).
pub(crate) fn vmlinux_struct(name: &str) -> Option<u32> {
    use std::collections::HashMap;
    use std::sync::Mutex;
    static CACHE: std::sync::OnceLock<Mutex<HashMap<String, Option<u32>>>> =
        std::sync::OnceLock::new();
    let btf = vmlinux()?;
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let mut c = cache.lock().unwrap_or_else(|e| e.into_inner());
    *c.entry(name.to_string())
        .or_insert_with(|| btf.find_by_name(name, bpflab_btf::BtfKind::Struct))
}

/// What a walk of a kernel struct found at an offset (`btf_struct_walk`).
#[derive(Debug)]
enum Walk {
    /// A number.
    Scalar,
    /// A pointer to the struct with this id, with the member's type tag (`rcu`, `user`,
    /// `percpu`) and name.
    Ptr { id: u32, tag: Option<String>, field: String, parent: String },
    /// The start of a nested struct: the walk goes on inside it.
    Struct(u32),
}

/// Why a walk stopped: the kernel's message, or something bpflab does not decode.
enum WalkErr {
    Reject(String),
    Unsupported(String),
}

/// `__btf_resolve_size`: the member type without modifiers (the array itself for arrays),
/// its size in bytes, and for arrays the element type id and the element count.
fn resolve_size(btf: &bpflab_btf::Btf, id: u32) -> Option<(u32, u32, u32, u32)> {
    use bpflab_btf::BtfType;
    let mut cur = id;
    let mut nelems: u32 = 1;
    let mut array: Option<u32> = None;
    for _ in 0..64 {
        let t = btf.type_by_id(cur).ok()?;
        let size = match t {
            BtfType::Int(i) => i.size,
            BtfType::Struct(c) | BtfType::Union(c) => c.size,
            BtfType::Enum(e) | BtfType::Enum64(e) => e.size,
            BtfType::Float { size, .. } => *size,
            BtfType::Ptr { .. } => 8,
            BtfType::Array(a) => {
                array.get_or_insert(cur);
                nelems = nelems.checked_mul(a.nelems)?;
                cur = a.elem_type;
                continue;
            }
            _ if t.is_mod_or_typedef() => {
                cur = t.ref_type_id()?;
                continue;
            }
            _ => return None,
        };
        let total = size.checked_mul(nelems)?;
        return Some((array.unwrap_or(cur), total, cur, nelems));
    }
    None
}

/// `btf_struct_walk` over the vmlinux struct `id` for `size` bytes at `off`.
fn struct_walk(
    btf: &bpflab_btf::Btf,
    mut id: u32,
    mut off: u32,
    size: u32,
    untrusted: &mut bool,
) -> Result<Walk, WalkErr> {
    use bpflab_btf::BtfType;
    let name_of = |id: u32| btf.type_name(id).unwrap_or("").to_string();
    let is_struct =
        |id: u32| matches!(btf.type_by_id(id), Ok(BtfType::Struct(_)) | Ok(BtfType::Union(_)));
    for _ in 0..64 {
        id = btf.skip_mods_and_typedefs(id).map_err(|e| WalkErr::Unsupported(e.to_string()))?;
        let tname = name_of(id);
        let (c, is_union) = match btf.type_by_id(id) {
            Ok(BtfType::Struct(c)) => (c, false),
            Ok(BtfType::Union(c)) => (c, true),
            _ => return Err(WalkErr::Reject(format!("Type '{tname}' is not a struct"))),
        };
        if is_union && c.members.len() != 1 {
            *untrusted = true;
        }
        if u64::from(off) + u64::from(size) > u64::from(c.size) {
            // A flexible array at the end may be walked past the struct's size.
            let beyond =
                WalkErr::Reject(format!("access beyond struct {tname} at off {off} size {size}"));
            let Some(last) = c.members.last() else { return Err(beyond) };
            let mt = btf
                .skip_mods_and_typedefs(last.type_id)
                .map_err(|_| WalkErr::Reject(String::new()));
            let Ok(mt) = mt else { return Err(beyond) };
            let Ok(BtfType::Array(a)) = btf.type_by_id(mt) else { return Err(beyond) };
            let moff = last.bit_offset / 8;
            if a.nelems != 0 || off < moff {
                return Err(beyond);
            }
            let elem =
                btf.skip_mods_and_typedefs(a.elem_type).map_err(|_| WalkErr::Reject(String::new()));
            let Ok(elem) = elem else { return Err(beyond) };
            match btf.type_by_id(elem) {
                Ok(BtfType::Int(_)) => return Ok(Walk::Scalar),
                Ok(BtfType::Struct(e) | BtfType::Union(e)) if e.size > 0 => {
                    off = (off - moff) % e.size;
                    id = elem;
                    continue;
                }
                _ => return Err(beyond),
            }
        }
        let mut found = None;
        for (i, m) in c.members.iter().enumerate() {
            let mut moff = m.bit_offset / 8;
            if off + size <= moff {
                break;
            }
            if m.bitfield_size != 0 {
                let end_bit = m.bit_offset + m.bitfield_size;
                if off <= moff && end_bit.div_ceil(8) <= off + size {
                    return Ok(Walk::Scalar);
                }
                continue;
            }
            if off < moff {
                break;
            }
            let mname = btf.member_name(id, i).unwrap_or("").to_string();
            let Some((mut mtype, mut msize, elem, total)) = resolve_size(btf, m.type_id) else {
                return Err(WalkErr::Reject(format!("field {mname} doesn't have size")));
            };
            let mtrue_end = moff + msize;
            if off >= mtrue_end {
                continue;
            }
            if matches!(btf.type_by_id(mtype), Ok(BtfType::Array(_))) {
                if moff == mtrue_end {
                    continue;
                }
                msize /= total.max(1);
                let idx = (off - moff) / msize.max(1);
                moff += idx * msize;
                mtype = elem;
            }
            if is_struct(mtype) {
                if off == moff {
                    return Ok(Walk::Struct(mtype));
                }
                off -= moff;
                found = Some(mtype);
                break;
            }
            if let Ok(BtfType::Ptr { type_id }) = btf.type_by_id(mtype) {
                if msize != size || off != moff {
                    return Err(WalkErr::Reject(format!(
                        "cannot access ptr member {mname} with moff {moff} in struct {tname} with off {off} size {size}"
                    )));
                }
                let tag = match btf.type_by_id(*type_id) {
                    Ok(BtfType::TypeTag { name_off, .. }) => {
                        Some(btf.string_at(*name_off).unwrap_or("").to_string())
                    }
                    _ => None,
                };
                let sid = btf.skip_mods_and_typedefs(*type_id).unwrap_or(0);
                if is_struct(sid) {
                    return Ok(Walk::Ptr { id: sid, tag, field: mname, parent: tname });
                }
            }
            if off + size > mtrue_end && !*untrusted {
                return Err(WalkErr::Reject(format!(
                    "access beyond the end of member {mname} (mend:{mtrue_end}) in struct {tname} with off {off} size {size}"
                )));
            }
            return Ok(Walk::Scalar);
        }
        match found {
            Some(next) => id = next,
            None => {
                return Err(WalkErr::Reject(format!(
                    "struct {tname} doesn't have field at offset {off}"
                )));
            }
        }
    }
    Err(WalkErr::Unsupported("BTF struct nesting too deep".into()))
}

/// `btf_struct_access`: walks nested structs until a scalar or a pointer.
fn struct_access(
    btf: &bpflab_btf::Btf,
    id: u32,
    off: u32,
    size: u32,
) -> Result<(Walk, bool), WalkErr> {
    let mut untrusted = false;
    let (mut id, mut off) = (id, off);
    for _ in 0..64 {
        match struct_walk(btf, id, off, size, &mut untrusted)? {
            Walk::Struct(next) => {
                id = next;
                off = 0;
            }
            w => return Ok((w, untrusted)),
        }
    }
    Err(WalkErr::Unsupported("BTF struct nesting too deep".into()))
}

/// Pointer members whose loads the kernel may type as maybe-NULL depending on the parent's
/// trust and the RCU section (`BTF_TYPE_SAFE_TRUSTED_OR_NULL`, `BTF_TYPE_SAFE_RCU_OR_NULL`):
/// bpflab does not track trust, so these loads are not decided.
fn maybe_null_member(parent: &str, field: &str) -> bool {
    matches!(
        (parent, field),
        ("socket", "sk")
            | ("vm_area_struct", "vm_mm" | "vm_file")
            | ("mm_struct", "exe_file")
            | ("sk_buff", "sk")
            | ("request_sock", "sk")
    )
}

/// What a load through a kernel-struct pointer yields, or the kernel's refusal.
fn btf_load(insn: usize, walk: Result<(Walk, bool), WalkErr>) -> Result<Reg, Stop> {
    match walk {
        Err(WalkErr::Reject(m)) => Err(reject(insn, m)),
        Err(WalkErr::Unsupported(m)) => {
            Err(Stop::unsupported(insn, format!("BTF pointer access: {m}")))
        }
        Ok((Walk::Scalar, _)) | Ok((Walk::Struct(_), _)) => Ok(Reg::unknown()),
        Ok((Walk::Ptr { id, tag, field, parent }, _)) => {
            if tag.is_some() || maybe_null_member(&parent, &field) {
                return Err(Stop::unsupported(
                    insn,
                    format!("BTF pointer access: trust of {parent}.{field}"),
                ));
            }
            Ok(Reg { btf_id: id, ..Reg::ptr(PtrKind::BtfId) })
        }
    }
}

/// The kernel struct describing maps of `t` (`map->ops->map_btf_id`).
fn map_struct(t: bpflab_vm::MapType) -> Option<&'static str> {
    use bpflab_vm::MapType as M;
    Some(match t {
        M::Array
        | M::PercpuArray
        | M::ProgArray
        | M::PerfEventArray
        | M::CgroupArray
        | M::ArrayOfMaps => "bpf_array",
        M::Hash | M::PercpuHash | M::LruHash | M::LruPercpuHash | M::HashOfMaps => "bpf_htab",
        M::Ringbuf | M::UserRingbuf => "bpf_ringbuf_map",
        M::LpmTrie => "lpm_trie",
        M::Queue | M::Stack => "bpf_queue_stack",
        M::BloomFilter => "bpf_bloom_filter",
        M::StackTrace => "bpf_stack_map",
        _ => return None,
    })
}

/// Whether the license lets the program read kernel structs (`license_is_gpl_compatible`).
fn gpl_compatible(license: &str) -> bool {
    matches!(
        license,
        "GPL"
            | "GPL v2"
            | "GPL and additional rights"
            | "Dual BSD/GPL"
            | "Dual MIT/GPL"
            | "Dual MPL/GPL"
    )
}

/// `check_ptr_to_map_access`: reads of `struct bpf_map` (as the map type's kernel struct)
/// through a map pointer.
fn map_ptr_access(
    v: &Verifier<'_>,
    insn: usize,
    regno: usize,
    reg: &Reg,
    off: i32,
    size: usize,
    t: Rw,
) -> Result<Reg, Stop> {
    let map = v.map_spec(reg.map);
    let Some(sname) = map_struct(map.map_type) else {
        return Err(Stop::unsupported(
            insn,
            format!("map pointer field access ({:?})", map.map_type),
        ));
    };
    let (Some(btf), Some(sid)) = (vmlinux(), vmlinux_struct(sname)) else {
        return Err(Stop::unsupported(insn, "map pointer field access without vmlinux BTF"));
    };
    if !v.allow_ptr_leaks() {
        return Err(reject(
            insn,
            format!("'struct {sname}' access is allowed only to CAP_PERFMON and CAP_SYS_ADMIN"),
        ));
    }
    if off < 0 {
        return Err(reject(
            insn,
            format!("R{regno} is {sname} invalid negative access: off={off}"),
        ));
    }
    if t != Rw::Read {
        return Err(reject(insn, format!("only read from {sname} is supported")));
    }
    match struct_access(btf, sid, off as u32, size as u32) {
        Ok((Walk::Ptr { id, tag, .. }, _)) => {
            if tag.as_deref().is_some_and(|t| t == "user" || t == "percpu") {
                return Err(Stop::unsupported(insn, "BTF pointer access: tagged map field"));
            }
            Ok(Reg { btf_id: id, ..Reg::ptr(PtrKind::BtfId) })
        }
        other => btf_load(insn, other),
    }
}

/// `check_ptr_to_btf_access`: loads (and refused stores) through a pointer to a kernel
/// struct.
fn btf_ptr_access(
    v: &Verifier<'_>,
    insn: usize,
    regno: usize,
    reg: &Reg,
    off: i32,
    size: usize,
    t: Rw,
) -> Result<Reg, Stop> {
    let Some(btf) = vmlinux() else {
        return Err(Stop::unsupported(insn, "BTF pointer access without vmlinux BTF"));
    };
    if reg.btf_id == 0 {
        return Err(Stop::unsupported(insn, "BTF pointer access (type unknown)"));
    }
    let tname = btf.type_name(reg.btf_id).unwrap_or("").to_string();
    if !v.allow_ptr_leaks() {
        return Err(reject(
            insn,
            format!("'struct {tname}' access is allowed only to CAP_PERFMON and CAP_SYS_ADMIN"),
        ));
    }
    if !gpl_compatible(&v.prog.license) {
        return Err(reject(
            insn,
            format!("Cannot access kernel 'struct {tname}' from non-GPL compatible program"),
        ));
    }
    if off < 0 {
        return Err(reject(
            insn,
            format!("R{regno} is ptr_{tname} invalid negative access: off={off}"),
        ));
    }
    if reg.var.const_value() != Some(0) {
        return Err(reject(
            insn,
            format!(
                "R{regno} is ptr_{tname} invalid variable offset: off={off}, var_off={}",
                tnum_str(reg.var.var_off)
            ),
        ));
    }
    if t != Rw::Read {
        if matches!(v.prog.prog_type, ProgType::StructOps | ProgType::Tracing | ProgType::Lsm) {
            return Err(Stop::unsupported(insn, "stores into kernel structs"));
        }
        return Err(reject(insn, "only read is supported"));
    }
    btf_load(insn, struct_access(btf, reg.btf_id, off as u32, size as u32))
}

// ---------------------------------------------------------------------------------------
// Helper arguments
// ---------------------------------------------------------------------------------------

/// Checks that `size` bytes (a range: the size register's bounds, or a constant) at the
/// pointer in register `regno` may be read (helper reads) or written (helper writes: marks
/// the stack bytes written as misc/initialised), the kernel's check_helper_mem_access /
/// check_mem_size_reg / check_stack_range_initialized ("invalid indirect read from stack
/// R%d off %d+%d size %d", "R%d min value is negative, either use unsigned or 'var &=
/// const'", "R%d unbounded memory access, use 'var &= const' or 'if (var < const)'",
/// "invalid zero-sized read", map value/packet/mem/ctx bounds).
///
/// `size_regno` is the register holding the size (`ARG_CONST_SIZE[_OR_ZERO]`), whose checks
/// come first; `None` for a size the helper's prototype fixes (map keys and values, fixed
/// size arguments). A write of a known size to the stack is the kernel's raw mode: the
/// bytes need not be initialised and become misc (the kernel marks them right after the
/// argument checks; bpflab at once).
#[allow(clippy::too_many_arguments)]
pub(crate) fn check_helper_mem(
    v: &mut Verifier<'_>,
    st: &mut State,
    insn: usize,
    regno: usize,
    size: &Scalar,
    write: bool,
    zero_size_allowed: bool,
    size_regno: Option<usize>,
) -> Result<(), Stop> {
    let access_size: i64;
    let mut raw = write;
    if let Some(sr) = size_regno {
        if !size.is_const() {
            raw = false;
        }
        if size.smin < 0 {
            return Err(reject(
                insn,
                format!("R{sr} min value is negative, either use unsigned or 'var &= const'"),
            ));
        }
        if size.umin == 0 && !zero_size_allowed {
            return Err(reject(
                insn,
                format!(
                    "R{sr} invalid zero-sized read: u64=[{},{}]",
                    size.umin as i64, size.umax as i64
                ),
            ));
        }
        if size.umax >= MAX_VAR_SIZ {
            return Err(reject(
                insn,
                format!("R{sr} unbounded memory access, use 'var &= const' or 'if (var < const)'"),
            ));
        }
        access_size = size.umax as i64;
    } else {
        access_size = size.umax.min(MAX_VAR_SIZ) as i64;
    }
    helper_mem_access(v, st, insn, regno, access_size, write, zero_size_allowed, raw)
}

/// `check_helper_mem_access`.
#[allow(clippy::too_many_arguments)]
fn helper_mem_access(
    v: &mut Verifier<'_>,
    st: &mut State,
    insn: usize,
    regno: usize,
    size: i64,
    write: bool,
    zero_ok: bool,
    raw: bool,
) -> Result<(), Stop> {
    let reg = *st.reg(regno);
    let t = if write { Rw::Write } else { Rw::Read };
    let isz = size as i32;
    match reg.kind() {
        Some(PtrKind::Packet | PtrKind::PacketMeta) if !reg.maybe_null => {
            check_packet_access(v, insn, regno, &reg, reg.off, isz, zero_ok)
        }
        Some(PtrKind::MapKey) if !reg.maybe_null => {
            if write {
                return Err(reject(
                    insn,
                    format!("R{regno} cannot write into {}", type_str_in(st, &reg)),
                ));
            }
            let ks = v.map_spec(reg.map).key_size;
            check_region(v, insn, regno, &reg, reg.off, isz, ks, false)
        }
        Some(PtrKind::MapValue) if !reg.maybe_null => {
            check_map_access_type(v, insn, reg.map, reg.off, isz, t)?;
            check_map_access(v, insn, regno, &reg, reg.off, isz, zero_ok, Src::Helper)
        }
        Some(PtrKind::Mem) if !reg.maybe_null => {
            if reg.rdonly && write {
                return Err(reject(
                    insn,
                    format!("R{regno} cannot write into {}", type_str_in(st, &reg)),
                ));
            }
            check_region(v, insn, regno, &reg, reg.off, isz, reg.mem_size, zero_ok)
        }
        Some(PtrKind::Stack) => {
            let mode = if raw { RangeMode::HelperRaw } else { RangeMode::Helper(t) };
            stack_range_initialized(v, st, insn, regno, i64::from(reg.off), size, zero_ok, mode)?;
            if raw && reg.var.is_const() {
                for i in 0..isz {
                    access_mem(v, st, insn, regno, i, 1, Rw::Write, Val::None, false, false)?;
                }
            }
            Ok(())
        }
        Some(PtrKind::BtfId) if !reg.maybe_null => {
            Err(Stop::unsupported(insn, "BTF pointer access"))
        }
        Some(PtrKind::Ctx) if !ctx_converted(v.prog.prog_type) => {
            if size == 0 {
                if zero_ok {
                    return Ok(());
                }
                return Err(reject(insn, "invalid zero-sized ctx access"));
            }
            access_mem(v, st, insn, regno, isz - 1, 1, t, Val::None, false, false)
        }
        _ => {
            if zero_ok && size == 0 && is_null(&reg) {
                return Ok(());
            }
            Err(reject(insn, format!("R{regno} type={} expected=fp", type_str_in(st, &reg))))
        }
    }
}

/// Whether the program type rewrites context accesses (`env->ops->convert_ctx_access`);
/// helpers given the context of the others have it checked byte-wise.
fn ctx_converted(t: ProgType) -> bool {
    !matches!(
        t,
        ProgType::Kprobe
            | ProgType::Tracepoint
            | ProgType::RawTracepoint
            | ProgType::RawTracepointWritable
            | ProgType::Tracing
            | ProgType::Lsm
            | ProgType::Syscall
            | ProgType::CgroupDevice
            | ProgType::LircMode2
            | ProgType::StructOps
            | ProgType::Ext
    )
}

// ---------------------------------------------------------------------------------------
// Atomics and LD_ABS
// ---------------------------------------------------------------------------------------

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
    if size != 4 && size != 8 {
        return Err(reject(insn, "invalid atomic operand size"));
    }
    if op == AtomicOp::Cmpxchg {
        v.check_read(st, insn, 0)?;
        if is_pointer_value(v, st.reg(0)) {
            return Err(reject(insn, "R0 leaks addr into mem"));
        }
    }
    if is_pointer_value(v, st.reg(src)) {
        return Err(reject(insn, format!("R{src} leaks addr into mem")));
    }
    let d = *st.reg(dst);
    let bad_target = match d.kind() {
        Some(k) => {
            matches!(k, PtrKind::Ctx | PtrKind::Packet | PtrKind::PacketMeta | PtrKind::FlowKeys)
                || (k.is_sock() && !d.maybe_null)
        }
        None => false,
    };
    if bad_target {
        return Err(reject(
            insn,
            format!("BPF_ATOMIC stores into R{dst} {} is not allowed", type_str_in(st, &d)),
        ));
    }
    let load_reg = if op.fetches() {
        let r = if op == AtomicOp::Cmpxchg { 0 } else { src };
        v.check_write(insn, r)?;
        Some(r)
    } else {
        None
    };
    let off = i32::from(off);
    access_mem(v, st, insn, dst, off, size, Rw::Read, Val::None, true, false)?;
    if let Some(r) = load_reg {
        access_mem(v, st, insn, dst, off, size, Rw::Read, Val::Reg(r), true, false)?;
    }
    save_aux_ptr_type(v, insn, st.reg(dst).kind())?;
    access_mem(v, st, insn, dst, off, size, Rw::Write, Val::None, true, false)?;
    Ok(())
}

/// Checks LD_ABS / LD_IND of `_size` bytes (the decoder refuses 8-byte ones), `src` the
/// index register for LD_IND. In a subprogram the
/// load may end the subprogram at run time (the hidden `exit` with r0 = 0 that
/// `bpf_gen_ld_abs` emits): the path continuing after the load is queued and this path
/// returns to the caller with r0 = 0; gives the slot where the caller continues then.
pub(crate) fn check_ld_abs(
    v: &mut Verifier<'_>,
    st: &mut State,
    insn: usize,
    _size: usize,
    src: Option<usize>,
    parent: Option<usize>,
) -> Result<Option<usize>, Stop> {
    if !matches!(v.prog.prog_type, ProgType::SocketFilter | ProgType::SchedCls | ProgType::SchedAct)
    {
        return Err(reject(
            insn,
            "BPF_LD_[ABS|IND] instructions not allowed for this program type",
        ));
    }
    if st.frames.iter().skip(1).any(|f| f.callback_of.is_some()) {
        return Err(reject(insn, "cannot use BPF_LD_[ABS|IND] within callback"));
    }
    v.check_read(st, insn, 6)?;
    if !st.refs.is_empty() {
        for r in st.refs.clone() {
            v.log_line(&format!("Unreleased reference id={} alloc_insn={}", r.id, r.insn));
        }
        return Err(reject(insn, "BPF_LD_[ABS|IND] would lead to reference leak"));
    }
    if st.lock.is_some() {
        return Err(reject(insn, "BPF_LD_[ABS|IND] cannot be used inside bpf_spin_lock-ed region"));
    }
    if st.rcu_lock > 0 {
        return Err(reject(
            insn,
            "BPF_LD_[ABS|IND] cannot be used inside bpf_rcu_read_lock-ed region",
        ));
    }
    if st.preempt_off > 0 {
        return Err(reject(
            insn,
            "BPF_LD_[ABS|IND] cannot be used inside bpf_preempt_disable-ed region",
        ));
    }
    let r6 = *st.reg(6);
    if r6.kind() != Some(PtrKind::Ctx) {
        return Err(reject(insn, "at the time of BPF_LD_ABS|IND R6 != pointer to skb"));
    }
    if let Some(s) = src {
        v.check_read(st, insn, s)?;
    }
    check_ptr_off_reg(insn, 6, &r6, false)?;
    for r in 0..=5 {
        *st.reg_mut(r) = Reg::NOT_INIT;
    }
    *st.reg_mut(0) = Reg::unknown();
    if st.frames.len() > 1 {
        v.push_branch(st.clone(), insn + 1, insn, parent)?;
        *st.reg_mut(0) = Reg::konst(0);
        return crate::call::return_from_func(v, st, insn).map(Some);
    }
    Ok(None)
}
