//! The abstract state the verifier tracks along a path: registers (scalars and typed
//! pointers), the stack of each call frame per byte, acquired references and held locks.

use crate::bounds::Scalar;

/// Registers r0..r10.
pub const NREGS: usize = 11;
/// The frame pointer register.
pub const FP: usize = 10;
/// Bytes per stack slot (one spilled register).
pub const SLOT: usize = 8;

/// What a pointer points to: the kernel's `enum bpf_reg_type` base types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PtrKind {
    /// The program's context (`ctx`).
    Ctx,
    /// A stack slot of frame `Reg::frameno` (`fp`).
    Stack,
    /// A map, from LD_IMM64 (`map_ptr`).
    MapPtr,
    /// A map key handed to a callback (`map_key`).
    MapKey,
    /// A map value (`map_value`).
    MapValue,
    /// Packet metadata start (`pkt_meta`).
    PacketMeta,
    /// Packet data (`pkt`).
    Packet,
    /// Packet end (`pkt_end`).
    PacketEnd,
    /// Flow dissector keys (`flow_keys`).
    FlowKeys,
    /// A full socket (`sock`).
    Sock,
    /// A socket's common part (`sock_common`).
    SockCommon,
    /// A TCP socket (`tcp_sock`).
    TcpSock,
    /// An XDP socket (`xdp_sock`).
    XdpSock,
    /// Memory of `Reg::mem_size` bytes: ringbuf records, helper-returned memory (`mem`).
    Mem,
    /// A BTF-typed kernel object (`ptr_<type>`).
    BtfId,
    /// A subprogram, for callbacks (`func`).
    Func,
    /// A tracepoint buffer (`tp_buffer`).
    TpBuffer,
    /// A read-only dynptr handed to a callback or a global function
    /// (`CONST_PTR_TO_DYNPTR`, `dynptr_ptr`): always a local dynptr.
    ConstDynptr,
}

impl PtrKind {
    /// The kernel's name of the type in logs (`reg_type_str`).
    pub fn name(self) -> &'static str {
        match self {
            PtrKind::Ctx => "ctx",
            PtrKind::Stack => "fp",
            PtrKind::MapPtr => "map_ptr",
            PtrKind::MapKey => "map_key",
            PtrKind::MapValue => "map_value",
            PtrKind::PacketMeta => "pkt_meta",
            PtrKind::Packet => "pkt",
            PtrKind::PacketEnd => "pkt_end",
            PtrKind::FlowKeys => "flow_keys",
            PtrKind::Sock => "sock",
            PtrKind::SockCommon => "sock_common",
            PtrKind::TcpSock => "tcp_sock",
            PtrKind::XdpSock => "xdp_sock",
            PtrKind::Mem => "mem",
            PtrKind::BtfId => "ptr_",
            PtrKind::Func => "func",
            PtrKind::TpBuffer => "tp_buffer",
            PtrKind::ConstDynptr => "dynptr_ptr",
        }
    }

    /// Whether this is a packet pointer whose range is proven against `data_end`.
    pub fn is_pkt(self) -> bool {
        matches!(self, PtrKind::Packet | PtrKind::PacketMeta)
    }

    /// Whether this is one of the socket kinds.
    pub fn is_sock(self) -> bool {
        matches!(self, PtrKind::Sock | PtrKind::SockCommon | PtrKind::TcpSock | PtrKind::XdpSock)
    }
}

/// The type of a register's content.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RegType {
    /// Never written on this path (`NOT_INIT`).
    NotInit,
    /// A number (`scalar`).
    Scalar,
    /// A pointer.
    Ptr(PtrKind),
}

/// One register's abstract value (the kernel's `struct bpf_reg_state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Reg {
    /// Scalar, pointer kind, or not initialised.
    pub ty: RegType,
    /// The pointer may be NULL until checked (`PTR_MAYBE_NULL`).
    pub maybe_null: bool,
    /// The memory behind the pointer is read-only (`MEM_RDONLY`).
    pub rdonly: bool,
    /// A pointer's fixed offset.
    pub off: i32,
    /// A scalar's value, or a pointer's variable offset.
    pub var: Scalar,
    /// Shared by copies of one value: a NULL check or a bounds check on one refines all
    /// (`id`); packet pointers with one id share their range.
    pub id: u32,
    /// The reference this pointer holds, released by a release helper (`ref_obj_id`).
    pub ref_obj_id: u32,
    /// Packet pointers: bytes after the pointer proven within `data_end` (`r=`).
    pub range: i32,
    /// Map pointers, keys and values: the map's index in the collection.
    pub map: u32,
    /// `Mem` pointers: the memory's size; map values use the map's value size instead.
    pub mem_size: u32,
    /// `BtfId` pointers: the kernel BTF type id.
    pub btf_id: u32,
    /// `Stack` pointers: the frame the pointer points into.
    pub frameno: u8,
    /// `Func` pointers: the subprogram's start slot.
    pub subprog: u32,
    /// The exact value matters to a later decision (precision tracking).
    pub precise: bool,
    /// `Mem` slices of a dynptr (`bpf_dynptr_data`): the dynptr's id, so that destroying
    /// the dynptr invalidates them (`dynptr_id`).
    pub dynptr_id: u32,
    /// `BtfId` pointers the kernel trusts (`PTR_TRUSTED`: helper results such as
    /// `bpf_get_current_task_btf`), which helpers taking kernel objects accept.
    pub trusted: bool,
}

impl Reg {
    /// A register never written.
    pub const NOT_INIT: Reg = Reg {
        ty: RegType::NotInit,
        maybe_null: false,
        rdonly: false,
        off: 0,
        var: Scalar::unknown(),
        id: 0,
        ref_obj_id: 0,
        range: 0,
        map: 0,
        mem_size: 0,
        btf_id: 0,
        frameno: 0,
        subprog: 0,
        precise: false,
        dynptr_id: 0,
        trusted: false,
    };

    /// A scalar with the given bounds.
    pub fn scalar(var: Scalar) -> Reg {
        Reg { ty: RegType::Scalar, var, ..Reg::NOT_INIT }
    }

    /// An unknown scalar.
    pub fn unknown() -> Reg {
        Reg::scalar(Scalar::unknown())
    }

    /// A known constant.
    pub fn konst(v: u64) -> Reg {
        Reg::scalar(Scalar::konst(v))
    }

    /// A pointer of `kind` at offset 0.
    pub fn ptr(kind: PtrKind) -> Reg {
        Reg { ty: RegType::Ptr(kind), var: Scalar::konst(0), ..Reg::NOT_INIT }
    }

    /// Whether the register holds a pointer (of any kind).
    pub fn is_ptr(&self) -> bool {
        matches!(self.ty, RegType::Ptr(_))
    }

    /// The pointer kind, if a pointer.
    pub fn kind(&self) -> Option<PtrKind> {
        match self.ty {
            RegType::Ptr(k) => Some(k),
            _ => None,
        }
    }

    /// Whether the register is a scalar.
    pub fn is_scalar(&self) -> bool {
        self.ty == RegType::Scalar
    }

    /// Whether the register was written.
    pub fn is_init(&self) -> bool {
        self.ty != RegType::NotInit
    }

    /// Whether the register is the known constant `v`.
    pub fn is_const(&self, v: u64) -> bool {
        self.is_scalar() && self.var.const_value() == Some(v)
    }

    /// The kernel's type name, with `_or_null` and `rdonly_` decorations as its logs show.
    pub fn type_name(&self) -> String {
        match self.ty {
            RegType::NotInit => "?".into(),
            RegType::Scalar => "scalar".into(),
            RegType::Ptr(k) => {
                let mut s = String::new();
                if self.rdonly {
                    s.push_str("rdonly_");
                }
                if self.trusted && k == PtrKind::BtfId {
                    s.push_str("trusted_");
                }
                s.push_str(k.name());
                if self.maybe_null {
                    // The kernel's postfix for BTF pointers keeps the name's trailing '_'.
                    s.push_str(if k == PtrKind::BtfId { "or_null_" } else { "_or_null" });
                }
                s
            }
        }
    }
}

/// What one stack byte holds (the kernel's `STACK_*` slot types).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ByteKind {
    /// Never written (`STACK_INVALID`, printed `?`).
    Invalid,
    /// Part of a spilled register (`STACK_SPILL`, `r`).
    Spill,
    /// Some written value (`STACK_MISC`, `m`).
    Misc,
    /// A known zero (`STACK_ZERO`, `0`).
    Zero,
    /// Part of a `struct bpf_dynptr` (`STACK_DYNPTR`, `d`): always both slots of it, whole.
    Dynptr,
    /// Part of an open-coded iterator (`STACK_ITER`, `i`): every slot of it, whole; the
    /// slot's `spilled` and `iter` describe it (see `kfunc.rs`).
    Iter,
}

impl ByteKind {
    /// The kernel's one-character name in logs.
    pub fn ch(self) -> char {
        match self {
            ByteKind::Invalid => '?',
            ByteKind::Spill => 'r',
            ByteKind::Misc => 'm',
            ByteKind::Zero => '0',
            ByteKind::Dynptr => 'd',
            ByteKind::Iter => 'i',
        }
    }
}

/// One 8-byte stack slot: per-byte kinds and, where bytes are `Spill`, the spilled register.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StackSlot {
    /// Kinds of bytes 0..8 of the slot, lowest address first.
    pub bytes: [ByteKind; SLOT],
    /// The spilled register (meaningful when some byte is `Spill`).
    pub spilled: Reg,
    /// The dynptr the slot holds (meaningful when its bytes are `Dynptr`; the kernel keeps
    /// it in `spilled_ptr.dynptr`).
    pub dynptr: DynptrSlot,
    /// The iterator the slot holds (meaningful when its bytes are `Iter`); `spilled` then
    /// is a stack pointer whose `btf_id` is the iterator's struct and whose `ref_obj_id`
    /// (first slot only) is the iterator's reference, as the kernel keeps it.
    pub iter: IterSlot,
}

/// Whether an iterator may still yield elements (`enum bpf_iter_state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IterPhase {
    /// `next` may return an element (`active`).
    Active,
    /// `next` returned NULL and keeps doing so (`drained`).
    Drained,
}

/// The iterator part of a stack slot (`spilled_ptr.iter`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IterSlot {
    /// Active or drained.
    pub phase: IterPhase,
    /// Loop iterations simulated on this path (`iter.depth`): two iterations of an active
    /// iterator are not an infinite loop; never compared for pruning.
    pub depth: u32,
}

impl IterSlot {
    /// The value of slots that hold no iterator.
    pub const NONE: IterSlot = IterSlot { phase: IterPhase::Active, depth: 0 };
}

/// What a dynptr points to (`enum bpf_dynptr_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DynptrType {
    /// Not a dynptr (`BPF_DYNPTR_TYPE_INVALID`).
    Invalid,
    /// Program memory: a map value (`bpf_dynptr_from_mem`).
    Local,
    /// A ring buffer record (`bpf_ringbuf_reserve_dynptr`), a reference.
    Ringbuf,
    /// An skb's data (`bpf_dynptr_from_skb`).
    Skb,
    /// An XDP buffer (`bpf_dynptr_from_xdp`).
    Xdp,
}

impl DynptrType {
    /// The kernel's name in messages (`dynptr_type_str`).
    pub fn name(self) -> &'static str {
        match self {
            DynptrType::Invalid => "<invalid>",
            DynptrType::Local => "local",
            DynptrType::Ringbuf => "ringbuf",
            DynptrType::Skb => "skb",
            DynptrType::Xdp => "xdp",
        }
    }
}

/// One of the two stack slots of a dynptr (the kernel's `spilled_ptr` of a `STACK_DYNPTR`
/// slot: `dynptr.type`, `dynptr.first_slot`, `id`, `ref_obj_id`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DynptrSlot {
    /// The dynptr's type.
    pub ty: DynptrType,
    /// Whether this is the dynptr's first slot (the higher one, at the pointer's offset).
    pub first: bool,
    /// The dynptr's id, shared by its slices (`dynptr_id`).
    pub id: u32,
    /// The reference a ring buffer dynptr holds, shared by its clones and slices.
    pub ref_obj_id: u32,
}

impl DynptrSlot {
    /// No dynptr.
    pub const NONE: DynptrSlot =
        DynptrSlot { ty: DynptrType::Invalid, first: false, id: 0, ref_obj_id: 0 };
}

impl StackSlot {
    /// A slot never written.
    pub const INVALID: StackSlot = StackSlot {
        bytes: [ByteKind::Invalid; SLOT],
        spilled: Reg::NOT_INIT,
        dynptr: DynptrSlot::NONE,
        iter: IterSlot::NONE,
    };

    /// Whether the whole slot holds a spilled register.
    pub fn is_full_spill(&self) -> bool {
        self.bytes.iter().all(|&b| b == ByteKind::Spill)
    }

    /// Whether any byte holds part of a spill.
    pub fn has_spill(&self) -> bool {
        self.bytes.contains(&ByteKind::Spill)
    }
}

/// One call frame: registers and stack (the kernel's `struct bpf_func_state`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Frame {
    /// r0..r10.
    pub regs: [Reg; NREGS],
    /// Stack slots, slot `i` covering bytes `-(i+1)*8 .. -i*8` from the frame pointer; grows
    /// as the program touches deeper stack.
    pub stack: Vec<StackSlot>,
    /// The slot of the call instruction that made this frame (0 for the main frame).
    pub callsite: usize,
    /// This frame's depth (0 for the main program).
    pub frameno: u8,
    /// The subprogram this frame runs (index into the CFG's subprograms).
    pub subprog: usize,
    /// Set when the frame is a callback called by a helper (`cb`), with the helper's slot.
    pub callback_of: Option<usize>,
    /// Callbacks of a callback-calling helper entered from this frame on this path, reset
    /// when the helper stops scheduling them (`callback_depth`).
    pub callback_depth: u32,
}

impl Frame {
    /// A new frame with every register uninitialised except r10.
    pub fn new(frameno: u8, callsite: usize, subprog: usize) -> Frame {
        let mut regs = [Reg::NOT_INIT; NREGS];
        regs[FP] = Reg { frameno, ..Reg::ptr(PtrKind::Stack) };
        Frame {
            regs,
            stack: Vec::new(),
            callsite,
            frameno,
            subprog,
            callback_of: None,
            callback_depth: 0,
        }
    }

    /// Bytes of stack the frame has touched (a multiple of 8).
    pub fn allocated_stack(&self) -> usize {
        self.stack.len() * SLOT
    }

    /// Makes sure slots down to byte offset `off` (negative) exist.
    pub fn grow_stack(&mut self, off: i64) {
        let need = usize::try_from((-off + SLOT as i64 - 1) / SLOT as i64).unwrap_or(0);
        if need > self.stack.len() {
            self.stack.resize(need, StackSlot::INVALID);
        }
    }

    /// The slot index and byte-in-slot of stack byte offset `off` (negative, >= -512).
    pub fn slot_of(off: i64) -> (usize, usize) {
        let pos = (-off - 1) as usize;
        let slot = pos / SLOT;
        // Byte 7 of a slot is its highest address (off = -8*slot - 1).
        (slot, SLOT - 1 - pos % SLOT)
    }
}

/// The kind of an acquired reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RefKind {
    /// A socket from `bpf_sk_lookup_*` / `bpf_skc_lookup_tcp`.
    Socket,
    /// A ring buffer record from `bpf_ringbuf_reserve`.
    Ringbuf,
    /// Another acquired object (kfunc results and the like).
    Other,
    /// An open-coded iterator's state on the stack (`bpf_iter_<type>_new`).
    Iter,
}

/// An acquired reference that must be released on every path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RefState {
    /// The reference id (`ref_obj_id` of pointers holding it).
    pub id: u32,
    /// The instruction that acquired it (`alloc_insn`).
    pub insn: usize,
    /// What it is.
    pub kind: RefKind,
    /// The callback frame that acquired it, or 0 outside callbacks (`callback_ref`): a
    /// callback must release what it acquires before returning.
    pub callback_ref: u8,
}

/// A held `bpf_spin_lock`: the id of the pointer (map value) holding it and the lock's offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Lock {
    /// `id` of the map value pointer (0 when the map value pointer had none: a global).
    pub id: u32,
    /// The map.
    pub map: u32,
    /// Offset of the lock in the value.
    pub off: i32,
}

/// The whole state along one path (the kernel's `struct bpf_verifier_state`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct State {
    /// Call frames, main program first; the last is the current one.
    pub frames: Vec<Frame>,
    /// References acquired and not yet released.
    pub refs: Vec<RefState>,
    /// The held spin lock.
    pub lock: Option<Lock>,
    /// Depth of `bpf_rcu_read_lock` nesting.
    pub rcu_lock: u32,
    /// Depth of `bpf_preempt_disable` nesting.
    pub preempt_off: u32,
    /// Callback bodies entered along this path (`callback_unroll_depth`): states of
    /// different iterations of a callback are not a loop.
    pub callback_unroll_depth: u32,
}

impl State {
    /// The state at program entry: r1 = `ctx`, r10 = frame pointer.
    pub fn entry(r1: Reg) -> State {
        let mut f = Frame::new(0, 0, 0);
        f.regs[1] = r1;
        State {
            frames: vec![f],
            refs: Vec::new(),
            lock: None,
            rcu_lock: 0,
            preempt_off: 0,
            callback_unroll_depth: 0,
        }
    }

    /// The current frame.
    pub fn cur(&self) -> &Frame {
        self.frames.last().expect("a state always has a frame")
    }

    /// The current frame, mutable.
    pub fn cur_mut(&mut self) -> &mut Frame {
        self.frames.last_mut().expect("a state always has a frame")
    }

    /// Register `r` of the current frame.
    pub fn reg(&self, r: usize) -> &Reg {
        &self.cur().regs[r]
    }

    /// Register `r` of the current frame, mutable.
    pub fn reg_mut(&mut self, r: usize) -> &mut Reg {
        &mut self.cur_mut().regs[r]
    }

    /// Applies `f` to every register and spilled register of every frame.
    pub fn for_each_reg(&mut self, mut f: impl FnMut(&mut Reg)) {
        for frame in &mut self.frames {
            for r in &mut frame.regs {
                f(r);
            }
            for s in &mut frame.stack {
                if s.has_spill() {
                    f(&mut s.spilled);
                }
            }
        }
    }

    /// Whether reference `id` is held.
    pub fn holds_ref(&self, id: u32) -> bool {
        self.refs.iter().any(|r| r.id == id)
    }
}
