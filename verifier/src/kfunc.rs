//! Kfunc calls (the kernel's `check_kfunc_call`): the kfuncs bpflab models, their flags
//! (which live in the kernel's `BTF_ID_FLAGS` sets, not in BTF), their prototypes (from the
//! running kernel's BTF, whose ids the call instructions hold), and open-coded iterators —
//! iterator state on the stack (`STACK_ITER`), `bpf_iter_<type>_new/next/destroy` and the
//! convergence of iterator loops at `next` calls — and kfuncs that acquire and release
//! kernel objects (tasks, cgroups, cpumasks: `KF_ACQUIRE`/`KF_RELEASE`/`KF_RET_NULL`,
//! pointer-to-struct arguments checked for NULL, trust, offset and type as
//! `check_kfunc_args` does, the program types each kfunc set is registered for). Every other
//! kfunc is unsupported, named.
//!
//! Iterator loops are verified as the kernel does it (`process_iter_next_call`): at a
//! `next` call the current path continues with the iterator drained (r0 = NULL), and a
//! branch is queued with the iterator still active (r0 an element, the depth one more, the
//! imprecise scalars that changed since the previous iteration's entry widened). A path
//! that reaches a `next` call in a state the stored entry of an earlier iteration covers
//! range-wise has converged and is pruned.

use std::sync::OnceLock;

use bpflab_btf::{Btf, BtfType};
use bpflab_vm::isa::{CallKind, Insn};

use crate::check::Verifier;
use crate::error::{ErrorKind, Stop};
use crate::mem::{Access, check_mem_access};
use crate::state::{
    ByteKind, Frame, IterPhase, IterSlot, PtrKind, RefKind, RefState, Reg, SLOT, StackSlot, State,
};

/// The kfunc is an iterator constructor (`KF_ITER_NEW`).
const KF_ITER_NEW: u32 = 1 << 0;
/// The kfunc is an iterator's `next` (`KF_ITER_NEXT`).
const KF_ITER_NEXT: u32 = 1 << 1;
/// The kfunc is an iterator destructor (`KF_ITER_DESTROY`).
const KF_ITER_DESTROY: u32 = 1 << 2;
/// The kfunc may return NULL (`KF_RET_NULL`).
const KF_RET_NULL: u32 = 1 << 3;
/// The kfunc returns a new reference the program must release (`KF_ACQUIRE`).
const KF_ACQUIRE: u32 = 1 << 4;
/// The kfunc releases the reference its argument holds (`KF_RELEASE`).
const KF_RELEASE: u32 = 1 << 5;
/// Pointer arguments must be trusted and not NULL (`KF_TRUSTED_ARGS`).
const KF_TRUSTED_ARGS: u32 = 1 << 6;
/// Pointer arguments must be trusted or RCU-protected and not NULL (`KF_RCU`).
const KF_RCU: u32 = 1 << 7;

/// The kfunc id set a kfunc is registered in, which decides the program types that may call
/// it (`register_btf_kfunc_id_set`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KfuncSet {
    /// `common_btf_ids` (and the dynptr/iterator sets): every program type.
    Common,
    /// `generic_btf_ids` of kernel/bpf/helpers.c (task and cgroup references).
    Generic,
    /// `cpumask_kfunc_btf_ids` of kernel/bpf/cpumask.c.
    Cpumask,
}

impl KfuncSet {
    /// Whether programs of type `t` may call the set's kfuncs: `Some(false)` where the
    /// running kernel (6.18) refuses them ("calling kernel function %s is not allowed"),
    /// `None` for program types bpflab has not compared with it (tracing, LSM and struct_ops
    /// programs among them: the kernel registers the sets for tracing and struct_ops, but
    /// their trusted arguments and attach points are not modelled).
    fn allows(self, t: bpflab_vm::ProgType) -> Option<bool> {
        use bpflab_vm::ProgType as T;
        let refused = matches!(
            t,
            T::SocketFilter
                | T::Kprobe
                | T::SchedAct
                | T::LwtIn
                | T::SkSkb
                | T::SkMsg
                | T::RawTracepoint
                | T::FlowDissector
                | T::SkReuseport
                | T::LwtSeg6local
        );
        match self {
            KfuncSet::Common => Some(true),
            KfuncSet::Generic => match t {
                T::SchedCls
                | T::Xdp
                | T::Tracepoint
                | T::PerfEvent
                | T::CgroupSkb
                | T::CgroupSock
                | T::SockOps
                | T::CgroupDevice
                | T::CgroupSysctl
                | T::Syscall => Some(true),
                _ if refused => Some(false),
                _ => None,
            },
            KfuncSet::Cpumask => match t {
                T::Tracepoint | T::PerfEvent | T::Syscall => Some(true),
                T::SchedCls
                | T::Xdp
                | T::CgroupSkb
                | T::CgroupSock
                | T::SockOps
                | T::CgroupDevice
                | T::CgroupSysctl => Some(false),
                _ if refused => Some(false),
                _ => None,
            },
        }
    }
}

/// What a kfunc does besides checking its arguments against its prototype.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Special {
    /// Nothing more.
    None,
    /// `bpf_rcu_read_lock`: enters an RCU read-side section.
    RcuLock,
    /// `bpf_rcu_read_unlock`: leaves it.
    RcuUnlock,
    /// `bpf_preempt_disable`: one more level of disabled preemption.
    PreemptDisable,
    /// `bpf_preempt_enable`: one less.
    PreemptEnable,
    /// `bpf_throw`: an exception; the path ends as an exit of the whole program.
    Throw,
}

/// One kfunc bpflab models: its name, its `BTF_ID_FLAGS` flags and its special role.
struct KfuncDef {
    name: &'static str,
    flags: u32,
    special: Special,
    set: KfuncSet,
}

/// The kfuncs bpflab models, with their kernel flags (`BTF_ID_FLAGS`) and the id set they
/// are registered in: the one place for each modelled kfunc's flags.
const KFUNCS: &[KfuncDef] = &[
    KfuncDef {
        name: "bpf_iter_num_new",
        flags: KF_ITER_NEW,
        special: Special::None,
        set: KfuncSet::Common,
    },
    KfuncDef {
        name: "bpf_iter_num_next",
        flags: KF_ITER_NEXT | KF_RET_NULL,
        special: Special::None,
        set: KfuncSet::Common,
    },
    KfuncDef {
        name: "bpf_iter_num_destroy",
        flags: KF_ITER_DESTROY,
        special: Special::None,
        set: KfuncSet::Common,
    },
    KfuncDef {
        name: "bpf_iter_bits_new",
        flags: KF_ITER_NEW,
        special: Special::None,
        set: KfuncSet::Common,
    },
    KfuncDef {
        name: "bpf_iter_bits_next",
        flags: KF_ITER_NEXT | KF_RET_NULL,
        special: Special::None,
        set: KfuncSet::Common,
    },
    KfuncDef {
        name: "bpf_iter_bits_destroy",
        flags: KF_ITER_DESTROY,
        special: Special::None,
        set: KfuncSet::Common,
    },
    KfuncDef {
        name: "bpf_rcu_read_lock",
        flags: 0,
        special: Special::RcuLock,
        set: KfuncSet::Common,
    },
    KfuncDef {
        name: "bpf_rcu_read_unlock",
        flags: 0,
        special: Special::RcuUnlock,
        set: KfuncSet::Common,
    },
    KfuncDef {
        name: "bpf_preempt_disable",
        flags: 0,
        special: Special::PreemptDisable,
        set: KfuncSet::Common,
    },
    KfuncDef {
        name: "bpf_preempt_enable",
        flags: 0,
        special: Special::PreemptEnable,
        set: KfuncSet::Common,
    },
    // In the kernel's generic set (bpf_throw is not callable from every program type).
    KfuncDef { name: "bpf_throw", flags: 0, special: Special::Throw, set: KfuncSet::Common },
    // kernel/bpf/helpers.c, generic_btf_ids.
    refk("bpf_task_acquire", KF_ACQUIRE | KF_RCU | KF_RET_NULL, KfuncSet::Generic),
    refk("bpf_task_release", KF_RELEASE, KfuncSet::Generic),
    refk("bpf_task_from_pid", KF_ACQUIRE | KF_RET_NULL, KfuncSet::Generic),
    refk("bpf_cgroup_acquire", KF_ACQUIRE | KF_RCU | KF_RET_NULL, KfuncSet::Generic),
    refk("bpf_cgroup_release", KF_RELEASE, KfuncSet::Generic),
    refk("bpf_cgroup_from_id", KF_ACQUIRE | KF_RET_NULL, KfuncSet::Generic),
    refk("bpf_cgroup_ancestor", KF_ACQUIRE | KF_RCU | KF_RET_NULL, KfuncSet::Generic),
    refk("bpf_task_under_cgroup", KF_RCU, KfuncSet::Generic),
    refk("bpf_task_get_cgroup1", KF_ACQUIRE | KF_RCU | KF_RET_NULL, KfuncSet::Generic),
    // kernel/bpf/cpumask.c, cpumask_kfunc_btf_ids.
    refk("bpf_cpumask_create", KF_ACQUIRE | KF_RET_NULL, KfuncSet::Cpumask),
    refk("bpf_cpumask_release", KF_RELEASE, KfuncSet::Cpumask),
    refk("bpf_cpumask_acquire", KF_ACQUIRE | KF_TRUSTED_ARGS, KfuncSet::Cpumask),
    refk("bpf_cpumask_first", KF_RCU, KfuncSet::Cpumask),
    refk("bpf_cpumask_first_zero", KF_RCU, KfuncSet::Cpumask),
    refk("bpf_cpumask_first_and", KF_RCU, KfuncSet::Cpumask),
    refk("bpf_cpumask_set_cpu", KF_RCU, KfuncSet::Cpumask),
    refk("bpf_cpumask_clear_cpu", KF_RCU, KfuncSet::Cpumask),
    refk("bpf_cpumask_test_cpu", KF_RCU, KfuncSet::Cpumask),
    refk("bpf_cpumask_test_and_set_cpu", KF_RCU, KfuncSet::Cpumask),
    refk("bpf_cpumask_test_and_clear_cpu", KF_RCU, KfuncSet::Cpumask),
    refk("bpf_cpumask_setall", KF_RCU, KfuncSet::Cpumask),
    refk("bpf_cpumask_clear", KF_RCU, KfuncSet::Cpumask),
    refk("bpf_cpumask_and", KF_RCU, KfuncSet::Cpumask),
    refk("bpf_cpumask_or", KF_RCU, KfuncSet::Cpumask),
    refk("bpf_cpumask_xor", KF_RCU, KfuncSet::Cpumask),
    refk("bpf_cpumask_equal", KF_RCU, KfuncSet::Cpumask),
    refk("bpf_cpumask_intersects", KF_RCU, KfuncSet::Cpumask),
    refk("bpf_cpumask_subset", KF_RCU, KfuncSet::Cpumask),
    refk("bpf_cpumask_empty", KF_RCU, KfuncSet::Cpumask),
    refk("bpf_cpumask_full", KF_RCU, KfuncSet::Cpumask),
    refk("bpf_cpumask_copy", KF_RCU, KfuncSet::Cpumask),
    refk("bpf_cpumask_any_distribute", KF_RCU, KfuncSet::Cpumask),
    refk("bpf_cpumask_any_and_distribute", KF_RCU, KfuncSet::Cpumask),
    refk("bpf_cpumask_weight", KF_RCU, KfuncSet::Cpumask),
];

/// A kfunc that takes or returns kernel objects, with no special role.
const fn refk(name: &'static str, flags: u32, set: KfuncSet) -> KfuncDef {
    KfuncDef { name, flags, special: Special::None, set }
}

/// One argument of a kfunc's prototype, as the verifier checks it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum ArgKind {
    /// A scalar (int or enum): the register must hold a scalar.
    Scalar,
    /// A parameter named `*__ign`: not checked.
    Ignored,
    /// A pointer to iterator struct `bpf_iter_<name>` of `size` bytes (vmlinux id `btf_id`).
    Iter { btf_id: u32, name: String, size: u32 },
    /// A pointer to kernel struct `btf_id` (`KF_ARG_PTR_TO_BTF_ID`).
    Btf { btf_id: u32 },
}

/// What a kfunc returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RetKind {
    /// Nothing: r0 is not readable.
    Void,
    /// A scalar.
    Scalar,
    /// A pointer to a scalar of this many bytes (`PTR_TO_MEM | MEM_RDONLY`).
    RdonlyMem(u32),
    /// A pointer to kernel struct of this vmlinux id (`PTR_TO_BTF_ID`).
    Btf(u32),
}

/// A kfunc's prototype from the kernel's BTF.
struct Proto {
    args: Vec<ArgKind>,
    ret: RetKind,
}

/// The running kernel's BTF, parsed once.
fn vmlinux() -> Option<&'static Btf> {
    static V: OnceLock<Option<Btf>> = OnceLock::new();
    V.get_or_init(|| Btf::from_vmlinux().ok()).as_ref()
}

/// The prototype of the kernel function `btf_id` named `name`, or why bpflab cannot use it.
fn proto(btf: &Btf, btf_id: u32, name: &str) -> Result<Proto, String> {
    let err = |e: bpflab_btf::BtfError| format!("kfunc {name}: kernel BTF: {e}");
    let (func_name, proto_id) = match btf.type_by_id(btf_id).map_err(err)? {
        BtfType::Func { name_off, type_id, .. } => {
            (btf.string_at(*name_off).map_err(err)?, *type_id)
        }
        _ => return Err(format!("kfunc {name}: BTF id {btf_id} is not a function")),
    };
    if func_name != name {
        return Err(format!("kfunc {name}: BTF id {btf_id} is {func_name} in this kernel"));
    }
    let BtfType::FuncProto { ret_type, params } = btf.type_by_id(proto_id).map_err(err)? else {
        return Err(format!("kfunc {name}: no prototype"));
    };
    let mut args = Vec::with_capacity(params.len());
    for p in params {
        let pname = btf.string_at(p.name_off).map_err(err)?;
        if pname.ends_with("__ign") {
            args.push(ArgKind::Ignored);
            continue;
        }
        let (_, t) = btf.resolve_mods(p.type_id).map_err(err)?;
        let kind = match t {
            BtfType::Int(_) | BtfType::Enum(_) | BtfType::Enum64(_) => ArgKind::Scalar,
            BtfType::Ptr { type_id } => {
                let (sid, st) = btf.resolve_mods(*type_id).map_err(err)?;
                let sname = btf.type_name(sid).map_err(err)?;
                match (st, sname.strip_prefix("bpf_iter_")) {
                    (BtfType::Struct(c), Some(short)) => {
                        ArgKind::Iter { btf_id: sid, name: short.to_string(), size: c.size }
                    }
                    // Suffixed parameters (`__nullable`, `__uninit`, ...) change the checks.
                    (BtfType::Struct(_), None) if !pname.contains("__") => {
                        ArgKind::Btf { btf_id: sid }
                    }
                    _ => return Err(format!("kfunc {name}: argument {pname} of type {sname}")),
                }
            }
            _ => return Err(format!("kfunc {name}: argument {pname}")),
        };
        args.push(kind);
    }
    let ret = if *ret_type == 0 {
        RetKind::Void
    } else {
        match btf.resolve_mods(*ret_type).map_err(err)?.1 {
            BtfType::Int(_) | BtfType::Enum(_) | BtfType::Enum64(_) => RetKind::Scalar,
            BtfType::Ptr { type_id } => match btf.resolve_mods(*type_id).map_err(err)?.1 {
                BtfType::Int(i) => RetKind::RdonlyMem(i.size),
                BtfType::Struct(_) => {
                    RetKind::Btf(btf.skip_mods_and_typedefs(*type_id).map_err(err)?)
                }
                _ => return Err(format!("kfunc {name}: its return type")),
            },
            _ => return Err(format!("kfunc {name}: its return type")),
        }
    };
    Ok(Proto { args, ret })
}

/// The kernel's name of the kfunc with BTF id `btf_id`, as the collection's relocations
/// resolved it.
fn kfunc_name<'c>(v: &Verifier<'c>, btf_id: i32) -> Option<&'c str> {
    v.coll.kfuncs.iter().find(|k| i64::from(k.btf_id) == i64::from(btf_id)).map(|k| k.name.as_str())
}

/// A rejection whose class is the one the kernel's message belongs to.
fn reject(insn: usize, message: impl Into<String>) -> Stop {
    let message = message.into();
    Stop::reject(ErrorKind::classify(&message), insn, message)
}

/// Whether the program runs sleepable (`BPF_F_SLEEPABLE`).
fn sleepable(v: &Verifier<'_>) -> bool {
    const BPF_F_SLEEPABLE: u32 = 1 << 4;
    v.config.flags.sleepable || v.prog.flags & BPF_F_SLEEPABLE != 0
}

/// Checks a call of kfunc `btf_id` at `insn` and applies its effect; `parent` is the
/// checkpoint the current path was last stored at (iterator `next` calls queue a branch).
pub(crate) fn check_kfunc_call(
    v: &mut Verifier<'_>,
    st: &mut State,
    insn: usize,
    btf_id: i32,
    parent: Option<usize>,
) -> Result<(), Stop> {
    let Some(name) = kfunc_name(v, btf_id) else {
        return Err(Stop::unsupported(insn, format!("kfunc #{btf_id}")));
    };
    if crate::dynptr::check_kfunc(v, st, insn, name)? {
        return Ok(());
    }
    let Some(def) = KFUNCS.iter().find(|k| k.name == name) else {
        return Err(Stop::unsupported(insn, format!("kfunc {name}")));
    };
    match def.set.allows(v.prog.prog_type) {
        Some(true) => {}
        Some(false) => {
            return Err(reject(insn, format!("calling kernel function {name} is not allowed")));
        }
        None => {
            return Err(Stop::unsupported(
                insn,
                format!("kfunc {name} in {:?} programs", v.prog.prog_type),
            ));
        }
    }
    if st.lock.is_some() {
        return Err(reject(insn, "function calls are not allowed while holding a lock"));
    }
    if def.special == Special::Throw && sleepable(v) {
        return Err(Stop::unsupported(insn, format!("kfunc {name} in a sleepable program")));
    }
    // RCU sections and disabled preemption in sleepable programs: the helper checks refuse
    // helpers that may sleep inside them (call.rs), and no modelled kfunc sleeps
    // (`KF_SLEEPABLE`).
    if def.special == Special::Throw {
        throw_supported(v, insn)?;
    }
    let Some(btf) = vmlinux() else {
        return Err(Stop::unsupported(insn, format!("kfunc {name} without the kernel's BTF")));
    };
    let proto = proto(btf, btf_id as u32, name).map_err(|e| Stop::unsupported(insn, e))?;

    // Arguments (check_kfunc_args).
    let mut iter: Option<(usize, usize)> = None;
    let mut release_regno: Option<usize> = None;
    for (i, arg) in proto.args.iter().enumerate() {
        let regno = i + 1;
        match arg {
            ArgKind::Ignored => {}
            ArgKind::Scalar => {
                if !st.reg(regno).is_scalar() {
                    return Err(reject(insn, format!("R{regno} is not a scalar")));
                }
            }
            ArgKind::Iter { btf_id, name: short, size } => {
                // Pointer arguments of kfuncs are never NULL (trusted, as this kernel has it).
                let r = st.reg(regno);
                if r.is_const(0) || (r.is_ptr() && r.maybe_null) {
                    return Err(reject(
                        insn,
                        format!("Possibly NULL pointer passed to trusted arg{i}"),
                    ));
                }
                let it =
                    IterArg { btf_id: *btf_id, name: short, nr_slots: (*size as usize) / SLOT };
                iter = process_iter_arg(v, st, insn, regno, &it, def.flags)?;
            }
            ArgKind::Btf { btf_id } => {
                process_btf_arg(st, insn, name, def.flags, i, *btf_id, btf, &mut release_regno)?;
            }
        }
    }
    if def.flags & KF_RELEASE != 0 && release_regno.is_none() {
        return Err(reject(
            insn,
            format!("release kernel function {name} expects refcounted PTR_TO_BTF_ID"),
        ));
    }

    // RCU read-side sections and disabled preemption.
    match def.special {
        Special::RcuLock if st.rcu_lock > 0 => {
            return Err(reject(insn, format!("nested rcu read lock (kernel function {name})")));
        }
        Special::RcuLock => st.rcu_lock = 1,
        Special::RcuUnlock if st.rcu_lock == 0 => {
            return Err(reject(
                insn,
                format!("unmatched rcu read unlock (kernel function {name})"),
            ));
        }
        Special::RcuUnlock => st.rcu_lock = 0,
        Special::PreemptDisable => st.preempt_off += 1,
        Special::PreemptEnable if st.preempt_off == 0 => {
            return Err(reject(
                insn,
                format!("unmatched attempt to enable preemption (kernel function {name})"),
            ));
        }
        Special::PreemptEnable => st.preempt_off -= 1,
        Special::Throw => return throw_exit(v, st, insn),
        Special::None => {}
    }

    // A release kfunc drops the reference and every register holding it (release_reference).
    if let Some(regno) = release_regno {
        let ref_id = st.reg(regno).ref_obj_id;
        let Some(pos) = st.refs.iter().position(|r| r.id == ref_id) else {
            return Err(reject(
                insn,
                format!("kfunc {name}#{btf_id} reference has not been acquired before"),
            ));
        };
        st.refs.remove(pos);
        let invalid = if v.config.privileged { Reg::unknown() } else { Reg::NOT_INIT };
        st.for_each_reg(|r| {
            if r.ref_obj_id == ref_id {
                *r = invalid;
            }
        });
    }

    // r1-r5 are clobbered; r0 is what the kfunc returns.
    for r in 1..=5 {
        *st.reg_mut(r) = Reg::NOT_INIT;
    }
    let mut r0 = match proto.ret {
        RetKind::Void => Reg::NOT_INIT,
        RetKind::Scalar => Reg::unknown(),
        RetKind::RdonlyMem(size) => Reg { rdonly: true, mem_size: size, ..Reg::ptr(PtrKind::Mem) },
        RetKind::Btf(id) => Reg { btf_id: id, ..Reg::ptr(PtrKind::BtfId) },
    };
    if def.flags & KF_RET_NULL != 0 && r0.is_ptr() {
        r0.maybe_null = true;
        r0.id = v.new_id();
    }
    if def.flags & KF_ACQUIRE != 0 {
        if r0.kind() != Some(PtrKind::BtfId) {
            return Err(Stop::unsupported(insn, format!("kfunc {name} acquiring a non-struct")));
        }
        // acquire_reference_state: a NULL check on r0 then drops the reference.
        let id = v.new_id();
        let callback_ref = if st.cur().callback_of.is_some() { st.cur().frameno } else { 0 };
        st.refs.push(RefState { id, insn, kind: RefKind::Other, callback_ref });
        if r0.maybe_null {
            r0.id = id;
        }
        r0.ref_obj_id = id;
    }
    *st.reg_mut(0) = r0;

    if def.flags & KF_ITER_NEXT != 0 {
        let Some((fi, spi)) = iter else {
            return Err(Stop::unsupported(insn, format!("kfunc {name} without an iterator")));
        };
        process_iter_next(v, st, insn, fi, spi, parent)?;
    }
    Ok(())
}

/// Refuses (as unsupported) the `bpf_throw` calls bpflab does not model: program types
/// outside the kernel's generic kfunc set or whose return value the kernel checks against
/// the cookie, programs with an exception callback, and programs with callbacks (the kernel
/// refuses a throw reachable from a callback after the walk).
fn throw_supported(v: &Verifier<'_>, insn: usize) -> Result<(), Stop> {
    use bpflab_vm::ProgType as T;
    use bpflab_vm::isa::PseudoSrc;
    if !matches!(v.prog.prog_type, T::SchedCls | T::Xdp | T::Syscall) {
        return Err(Stop::unsupported(
            insn,
            format!("kfunc bpf_throw in {:?} programs", v.prog.prog_type),
        ));
    }
    if v.prog.insns.iter().any(|i| matches!(i, Insn::LdImm64 { src: PseudoSrc::Func, .. })) {
        return Err(Stop::unsupported(insn, "kfunc bpf_throw in a program with callbacks"));
    }
    if has_exception_cb(v) {
        return Err(Stop::unsupported(insn, "kfunc bpf_throw with an exception callback"));
    }
    Ok(())
}

/// Whether the object's BTF tags the main program's function `exception_callback:` (it
/// names an exception callback).
fn has_exception_cb(v: &Verifier<'_>) -> bool {
    let Some(&(_, main_id)) = v.prog.func_info.first() else { return false };
    let Some(btf) = v.coll.btf.as_deref().and_then(|raw| Btf::parse(raw).ok()) else {
        return false;
    };
    btf.types().any(|(_, t)| {
        matches!(t, BtfType::DeclTag { name_off, type_id, .. }
            if *type_id == main_id
                && btf.string_at(*name_off).is_ok_and(|n| n.starts_with("exception_callback:")))
    })
}

/// `bpf_throw`: the program exits through the exception (`process_bpf_exit_full` with
/// `exception_exit`): no reference may be held, nor an RCU section or disabled preemption,
/// in any frame; the return value checks do not apply (the default exception callback
/// returns the cookie, which the supported program types do not restrict).
fn throw_exit(v: &mut Verifier<'_>, st: &mut State, insn: usize) -> Result<(), Stop> {
    const PREFIX: &str = "bpf_throw";
    if let Some(r) = st.refs.first() {
        v.log.text.push_str(&format!("Unreleased reference id={} alloc_insn={}\n", r.id, r.insn));
        return Err(reject(insn, format!("{PREFIX} would lead to reference leak")));
    }
    if st.rcu_lock > 0 {
        return Err(reject(
            insn,
            format!("{PREFIX} cannot be used inside bpf_rcu_read_lock-ed region"),
        ));
    }
    if st.preempt_off > 0 {
        return Err(reject(
            insn,
            format!("{PREFIX} cannot be used inside bpf_preempt_disable-ed region"),
        ));
    }
    Ok(())
}

/// Whether the kfunc call `imm` ends the path (`bpf_throw`); the walk asks after the call
/// was checked.
pub(crate) fn ends_path(v: &Verifier<'_>, imm: i32) -> bool {
    kfunc_name(v, imm).is_some_and(|n| n == "bpf_throw")
}

/// Checks argument `i` (register `i + 1`), a pointer to kernel struct `want`
/// (`KF_ARG_PTR_TO_BTF_ID` in the kernel's `check_kfunc_args` and
/// `process_kf_arg_ptr_to_btf_id`): not NULL and trusted (referenced, or `PTR_TRUSTED`)
/// for `KF_TRUSTED_ARGS`/`KF_RCU` kfuncs, at offset 0 when released, and of the struct the
/// prototype names or one starting with it (strictly that struct when a reference is
/// released). Notes the register a release kfunc releases in `release_regno`. Pointers
/// whose trust bpflab does not know (RCU-protected loads), sockets and memory pointers
/// are unsupported.
#[allow(clippy::too_many_arguments)]
fn process_btf_arg(
    st: &State,
    insn: usize,
    name: &str,
    flags: u32,
    i: usize,
    want: u32,
    btf: &Btf,
    release_regno: &mut Option<usize>,
) -> Result<(), Stop> {
    let regno = i + 1;
    let r = *st.reg(regno);
    let trusted_args = flags & (KF_TRUSTED_ARGS | KF_RCU) != 0;
    let release = flags & KF_RELEASE != 0;
    // The running kernel (6.18) refuses NULL for release kfuncs' arguments too.
    if (trusted_args || release) && (r.is_const(0) || (r.is_ptr() && r.maybe_null)) {
        return Err(reject(insn, format!("Possibly NULL pointer passed to trusted arg{i}")));
    }
    if r.ref_obj_id != 0 && release {
        if release_regno.is_some() {
            return Err(Stop::unsupported(insn, format!("kfunc {name}: two referenced arguments")));
        }
        *release_regno = Some(regno);
    }
    if r.kind() != Some(PtrKind::BtfId) || r.btf_id == 0 {
        return Err(Stop::unsupported(
            insn,
            format!("kfunc {name}: argument {i} of type {}", r.type_name()),
        ));
    }
    if trusted_args && r.ref_obj_id == 0 && !r.trusted {
        // The kernel accepts RCU-protected pointers for KF_RCU kfuncs and may type loaded
        // pointers trusted; bpflab does not track either.
        return Err(Stop::unsupported(insn, format!("kfunc {name}: R{regno} of unknown trust")));
    }
    if r.var.const_value() != Some(0) {
        return Err(Stop::unsupported(
            insn,
            format!("kfunc {name}: R{regno} at a variable offset"),
        ));
    }
    if r.off != 0 {
        if release && r.ref_obj_id != 0 {
            return Err(reject(
                insn,
                format!(
                    "R{regno} must have zero offset when passed to release func or trusted arg to kfunc"
                ),
            ));
        }
        return Err(Stop::unsupported(insn, format!("kfunc {name}: R{regno} at an offset")));
    }
    if r.maybe_null {
        return Err(Stop::unsupported(insn, format!("kfunc {name}: R{regno} may be NULL")));
    }
    if release && r.ref_obj_id == 0 && !r.trusted {
        // Untrusted (PTR_UNTRUSTED) pointers get another message; bpflab does not know which.
        return Err(Stop::unsupported(insn, format!("kfunc {name}: R{regno} of unknown trust")));
    }
    let strict = release && r.ref_obj_id != 0;
    if !struct_ids_match(btf, r.btf_id, want, strict) {
        let sname = |id: u32| btf.type_name(id).unwrap_or("").to_string();
        return Err(reject(
            insn,
            format!(
                "kernel function {name} args#{i} expected pointer to STRUCT {} but R{regno} has a pointer to STRUCT {}",
                sname(want),
                sname(r.btf_id)
            ),
        ));
    }
    Ok(())
}

/// Whether a pointer to struct `have` may be passed for struct `want`
/// (`btf_struct_ids_match` at offset 0): the same struct, or unless `strict` a struct whose
/// first member is (recursively) that struct, as `struct bpf_cpumask` starts with its
/// `cpumask_t`.
pub(crate) fn struct_ids_match(btf: &Btf, have: u32, want: u32, strict: bool) -> bool {
    let Ok(want) = btf.skip_mods_and_typedefs(want) else { return false };
    let mut id = have;
    for _ in 0..32 {
        let Ok((rid, t)) = btf.resolve_mods(id) else { return false };
        let BtfType::Struct(c) = t else { return false };
        if rid == want {
            return true;
        }
        if strict {
            return false;
        }
        match c.members.first() {
            Some(m) if m.bit_offset == 0 => id = m.type_id,
            _ => return false,
        }
    }
    false
}

/// An iterator argument's type.
struct IterArg<'a> {
    btf_id: u32,
    name: &'a str,
    nr_slots: usize,
}

/// Checks iterator argument `regno` (`process_iter_arg`): a constructor needs slots that
/// hold no iterator and makes them one (acquiring its reference); other calls need an
/// initialized iterator of the type, and a destructor releases it. Returns the frame and
/// first slot of an initialized iterator.
fn process_iter_arg(
    v: &mut Verifier<'_>,
    st: &mut State,
    insn: usize,
    regno: usize,
    it: &IterArg<'_>,
    flags: u32,
) -> Result<Option<(usize, usize)>, Stop> {
    let reg = *st.reg(regno);
    if reg.kind() != Some(PtrKind::Stack) {
        return Err(reject(
            insn,
            format!("arg#{} expected pointer to an iterator on stack", regno - 1),
        ));
    }
    if it.nr_slots == 0 {
        return Err(Stop::unsupported(insn, format!("iterator bpf_iter_{} of no slots", it.name)));
    }
    let expected = if flags & KF_ITER_NEW != 0 {
        format!("expected uninitialized iter_{} as arg #{}", it.name, regno - 1)
    } else {
        format!("expected an initialized iter_{} as arg #{}", it.name, regno - 1)
    };
    // iter_get_spi: its complaint is logged, then the argument's.
    let spi_err = |v: &mut Verifier<'_>, line: String| {
        v.log.text.push_str(&line);
        v.log.text.push('\n');
        reject(insn, expected.clone())
    };
    let Some(c) = reg.var.const_value() else {
        return Err(spi_err(v, "iter has to be at a constant offset".into()));
    };
    let off = i64::from(reg.off).wrapping_add(c as i64);
    if off % SLOT as i64 != 0 {
        return Err(spi_err(v, format!("cannot pass in iter at an offset={off}")));
    }
    if off >= 0 {
        return Err(Stop::unsupported(insn, "an iterator at a non-negative stack offset"));
    }
    let spi = Frame::slot_of(off).0;
    if spi + 1 < it.nr_slots {
        return Err(spi_err(v, format!("cannot pass in iter at an offset={off}")));
    }
    let fi = st.frames.iter().position(|f| f.frameno == reg.frameno).unwrap_or(st.frames.len() - 1);
    let slots = spi + 1 - it.nr_slots..=spi;
    let in_bounds = spi < st.frames[fi].stack.len();

    if flags & KF_ITER_NEW != 0 {
        let uninit = !in_bounds
            || slots
                .clone()
                .all(|s| st.frames[fi].stack[s].bytes.iter().all(|&b| b != ByteKind::Iter));
        if !uninit {
            return Err(reject(insn, expected));
        }
        for i in 0..it.nr_slots {
            check_mem_access(
                v,
                st,
                insn,
                regno,
                (i * SLOT) as i16,
                SLOT,
                Access::Write { src: None, imm: 0 },
            )?;
        }
        let id = v.new_id();
        let callback_ref = if st.cur().callback_of.is_some() { st.cur().frameno } else { 0 };
        st.refs.push(RefState { id, insn, kind: RefKind::Iter, callback_ref });
        let frame = &mut st.frames[fi];
        for s in slots {
            let slot = &mut frame.stack[s];
            *slot = StackSlot::INVALID;
            slot.bytes = [ByteKind::Iter; SLOT];
            slot.spilled = Reg {
                btf_id: it.btf_id,
                ref_obj_id: if s == spi { id } else { 0 },
                frameno: reg.frameno,
                ..Reg::ptr(PtrKind::Stack)
            };
            slot.iter = IterSlot { phase: IterPhase::Active, depth: 0 };
        }
        return Ok(None);
    }

    // is_iter_reg_valid_init
    let valid = in_bounds
        && slots.clone().all(|s| {
            let slot = &st.frames[fi].stack[s];
            slot.bytes.iter().all(|&b| b == ByteKind::Iter)
                && slot.spilled.btf_id == it.btf_id
                && (slot.spilled.ref_obj_id != 0) == (s == spi)
        });
    if !valid {
        return Err(reject(insn, expected));
    }
    if flags & KF_ITER_DESTROY != 0 {
        let id = st.frames[fi].stack[spi].spilled.ref_obj_id;
        st.refs.retain(|r| r.id != id);
        for s in slots {
            st.frames[fi].stack[s] = StackSlot::INVALID;
        }
        return Ok(None);
    }
    Ok(Some((fi, spi)))
}

/// An iterator's `next` call (`process_iter_next_call`): an active iterator queues the
/// path where `next` returned an element (one iteration deeper, imprecise scalars widened
/// against the previous iteration's entry); the current path continues drained with r0 =
/// NULL.
fn process_iter_next(
    v: &mut Verifier<'_>,
    st: &mut State,
    insn: usize,
    fi: usize,
    spi: usize,
    parent: Option<usize>,
) -> Result<(), Stop> {
    if st.frames[fi].stack[spi].iter.phase == IterPhase::Active {
        let mut queued = st.clone();
        queued.frames[fi].stack[spi].iter.depth += 1;
        if let Some(prev) = v.prev_entry_except(st, insn, parent) {
            widen_imprecise(v, prev, &mut queued, insn + 1);
        }
        queued.reg_mut(0).maybe_null = false;
        v.push_branch(queued, insn + 1, insn, parent)?;
    }
    st.frames[fi].stack[spi].iter.phase = IterPhase::Drained;
    *st.reg_mut(0) = Reg::konst(0);
    Ok(())
}

/// Forgets the range of scalars of `cur` that differ from `old`, the previous iteration's
/// entry, unless a later decision may depend on them (`widen_imprecise_scalars`):
/// iterations then converge. The kernel knows precision from the path; bpflab keeps
/// constants that [`deciding`] says may decide something from `at` (current frame:
/// registers and spilled slots) and constants in callers' frames, and widens the rest.
fn widen_imprecise(v: &Verifier<'_>, old: &State, cur: &mut State, at: usize) {
    let (regs, slots) = deciding(v, at);
    let last = cur.frames.len().saturating_sub(1);
    // Only constants are kept: a range that changes between iterations is widened even when
    // it may decide something (sound: the state only gets more general), so loops whose
    // kernel precision is path-dependent still converge.
    let widen = |o: &Reg, c: &mut Reg, precise: bool| {
        let keep = precise && o.var.is_const() && c.var.is_const();
        if o.is_scalar() && c.is_scalar() && o.var != c.var && !keep {
            *c = Reg::unknown();
        }
    };
    for (i, (fo, fc)) in old.frames.iter().zip(cur.frames.iter_mut()).enumerate() {
        let current = i == last;
        for (r, (ro, rc)) in fo.regs.iter().zip(fc.regs.iter_mut()).enumerate() {
            let precise =
                if current { regs & (1 << r) != 0 } else { ro.var.is_const() && rc.var.is_const() };
            widen(ro, rc, precise);
        }
        for (s, (so, sc)) in fo.stack.iter().zip(fc.stack.iter_mut()).enumerate() {
            if so.bytes[0] != ByteKind::Spill || sc.bytes[0] != ByteKind::Spill {
                continue;
            }
            let precise = if current {
                s >= 64 || slots & (1 << s) != 0
            } else {
                so.spilled.var.is_const() && sc.spilled.var.is_const()
            };
            widen(&so.spilled, &mut sc.spilled, precise);
        }
    }
}

/// The registers and stack slots (bit `i` = bytes `-(i+1)*8 .. -i*8`) whose values at
/// `from` may decide a conditional jump, a pointer's offset (register operands of `+=` and
/// `-=`) or a bpf-to-bpf call's arguments later on some path: a backward may-analysis
/// following moves, arithmetic and spills and fills through the frame pointer (as the
/// kernel's precision backtracking, memory reached otherwise is not followed). Unlike the pruning
/// precision, a value that only reaches the program's return value is not deciding (the
/// kernel marks it precise only for return ranges it enforces, after the loop).
fn deciding(v: &Verifier<'_>, from: usize) -> (u16, u64) {
    use bpflab_vm::isa::{AluOp, Operand, Reg as R};
    const CALLER_SAVED: u16 = 0b11_1111;
    let n = v.cfg.slots;
    let bit = |r: R| 1u16 << r.idx();
    let fp_slot = |off: i16| -> Option<u32> {
        let o = i64::from(off);
        (-512..0).contains(&o).then(|| ((-o - 1) / 8) as u32)
    };
    let mut inn = vec![(0u16, 0u64); n + 1];
    let mut changed = true;
    let mut passes = 0;
    while changed && passes < 64 {
        changed = false;
        passes += 1;
        for slot in (0..n).rev() {
            let Some(&ins) = v.insn_at(slot) else { continue };
            let at = |s: usize| inn.get(s).copied().unwrap_or_default();
            let out = at(slot + ins.slots());
            let val = match ins {
                Insn::Alu { op, dst, src, .. } => {
                    let s = match src {
                        Operand::Reg(r) => bit(r),
                        Operand::Imm(_) => 0,
                    };
                    if op == AluOp::Mov || op.is_movsx() {
                        let mut m = out.0 & !bit(dst);
                        if out.0 & bit(dst) != 0 {
                            m |= s;
                        }
                        (m, out.1)
                    } else {
                        let mut m = out.0;
                        if out.0 & bit(dst) != 0 || matches!(op, AluOp::Add | AluOp::Sub) {
                            m |= s;
                        }
                        (m, out.1)
                    }
                }
                Insn::Load { dst, src, off, .. } => {
                    let mut r = (out.0 & !bit(dst), out.1);
                    // As the kernel's backtracking, only frame-pointer accesses carry
                    // precision through the stack.
                    if out.0 & bit(dst) != 0
                        && src == R::R10
                        && let Some(i) = fp_slot(off).filter(|&i| i < 64)
                    {
                        r.1 |= 1 << i;
                    }
                    r
                }
                Insn::Store { dst, off, src, size } => {
                    let mut r = out;
                    if dst == R::R10
                        && let Some(i) = fp_slot(off).filter(|&i| i < 64)
                    {
                        if let Operand::Reg(s) = src
                            && out.1 & (1 << i) != 0
                        {
                            r.0 |= bit(s);
                        }
                        if size.bytes() == 8 && off % 8 == 0 {
                            r.1 &= !(1 << i);
                        }
                    }
                    r
                }
                Insn::LdImm64 { dst, .. } => (out.0 & !bit(dst), out.1),
                Insn::Ja { off } => at(crate::check::jump_target(slot, i64::from(off))),
                Insn::JaLong { imm } => at(crate::check::jump_target(slot, i64::from(imm))),
                Insn::Jump { dst, src, off, .. } => {
                    let t = at(crate::check::jump_target(slot, i64::from(off)));
                    let s = match src {
                        Operand::Reg(r) => bit(r),
                        Operand::Imm(_) => 0,
                    };
                    (out.0 | t.0 | bit(dst) | s, out.1 | t.1)
                }
                Insn::Call { kind: CallKind::Local, .. } => {
                    ((out.0 & !CALLER_SAVED) | 0b11_1110, u64::MAX)
                }
                Insn::Call { .. } => (out.0 & !CALLER_SAVED, out.1),
                Insn::Exit => (0, 0),
                _ => out,
            };
            if val != inn[slot] {
                inn[slot] = val;
                changed = true;
            }
        }
    }
    inn.get(from).copied().unwrap_or_default()
}

/// The modelled kfunc with vmlinux function id `btf_id`.
fn def_of(btf_id: i32) -> Option<&'static KfuncDef> {
    let btf = vmlinux()?;
    let Ok(BtfType::Func { name_off, .. }) = btf.type_by_id(u32::try_from(btf_id).ok()?) else {
        return None;
    };
    let name = btf.string_at(*name_off).ok()?;
    KFUNCS.iter().find(|k| k.name == name)
}

/// Whether kfunc `btf_id` is a modelled reference or cpumask kfunc: its arguments are kernel
/// objects and scalars the kernel does not need exactly (no `__k`/`__sz` arguments, no
/// stack memory), so precision tracking marks none of them and it leaves the stack alone.
pub(crate) fn plain(btf_id: i32) -> bool {
    def_of(btf_id).is_some_and(|k| k.set != KfuncSet::Common)
}

/// Whether modelled kfunc `btf_id` returns a scalar or nothing (its prototype in the
/// kernel's BTF), so r0 holds no pointer after the call.
pub(crate) fn returns_scalar(btf_id: i32) -> bool {
    let (Some(btf), Some(_)) = (vmlinux(), def_of(btf_id)) else { return false };
    let Ok(BtfType::Func { type_id, .. }) = btf.type_by_id(btf_id as u32) else { return false };
    let Ok(BtfType::FuncProto { ret_type, .. }) = btf.type_by_id(*type_id) else { return false };
    *ret_type == 0
        || matches!(
            btf.resolve_mods(*ret_type).map(|(_, t)| t),
            Ok(BtfType::Int(_) | BtfType::Enum(_) | BtfType::Enum64(_))
        )
}

/// Whether the call at `insn` is an iterator's `next` (`is_iter_next_insn`).
pub(crate) fn is_iter_next_insn(v: &Verifier<'_>, insn: usize) -> bool {
    if !v.cfg.force_checkpoint.get(insn).copied().unwrap_or(false) {
        return false;
    }
    match v.insn_at(insn) {
        Some(Insn::Call { kind: CallKind::Kfunc, imm, .. }) => kfunc_name(v, *imm)
            .and_then(|n| KFUNCS.iter().find(|k| k.name == n))
            .is_some_and(|k| k.flags & KF_ITER_NEXT != 0),
        _ => false,
    }
}

/// At an iterator `next` call: whether the path converged on `old`, an earlier iteration's
/// entry (`old` covers `cur` range-wise and the iterator `cur` passes is active).
pub(crate) fn iter_converged(old: &State, cur: &State, live: &crate::prune::Liveness) -> bool {
    let r1 = cur.reg(1);
    if r1.kind() != Some(PtrKind::Stack) {
        return false;
    }
    let Some(c) = r1.var.const_value() else { return false };
    let off = i64::from(r1.off).wrapping_add(c as i64);
    if off >= 0 {
        return false;
    }
    let spi = Frame::slot_of(off).0;
    let Some(frame) = cur.frames.iter().find(|f| f.frameno == r1.frameno) else { return false };
    let active = frame
        .stack
        .get(spi)
        .is_some_and(|s| s.bytes[0] == ByteKind::Iter && s.iter.phase == IterPhase::Active);
    active && crate::prune::range_within(old, cur, live)
}

/// Whether an active iterator of `old` is at a different loop depth in `cur`
/// (`iter_active_depths_differ`): then the two states are different iterations, not an
/// infinite loop.
pub(crate) fn iter_depths_differ(old: &State, cur: &State) -> bool {
    old.frames.iter().zip(&cur.frames).any(|(fo, fc)| {
        fo.stack.iter().enumerate().any(|(i, so)| {
            so.bytes[0] == ByteKind::Iter
                && so.iter.phase == IterPhase::Active
                && fc.stack.get(i).is_none_or(|sc| sc.iter.depth != so.iter.depth)
        })
    })
}

/// Whether iterator slot `cur` is equivalent to `old` for pruning (`stacksafe` for
/// `STACK_ITER`): the same iterator type and phase and matching references; the depth is
/// not compared.
pub(crate) fn iter_slot_safe(
    old: &StackSlot,
    cur: &StackSlot,
    mut check_ids: impl FnMut(u32, u32) -> bool,
) -> bool {
    cur.bytes == old.bytes
        && cur.spilled.btf_id == old.spilled.btf_id
        && cur.iter.phase == old.iter.phase
        && check_ids(old.spilled.ref_obj_id, cur.spilled.ref_obj_id)
}

/// Whether the complete stored state `old` covers `cur` for pruning: range-wise (imprecise
/// scalars compared too, `RANGE_WITHIN`) inside an iterator loop body, where the kernel
/// compares states exactly because precision is not final until the loop converges
/// (`force_exact` for states of a loop whose entry is still being explored); otherwise
/// [`crate::prune::covers`].
pub(crate) fn covers(old: &State, cur: &State, live: &crate::prune::Liveness) -> bool {
    if in_iter_loop(cur) {
        crate::prune::range_within(old, cur, live)
    } else {
        crate::prune::covers(old, cur, live)
    }
}

/// Whether `st` runs inside an iterator loop body: an active iterator simulated past its
/// first `next`.
fn in_iter_loop(st: &State) -> bool {
    st.frames.iter().any(|f| {
        f.stack.iter().any(|s| {
            s.bytes[0] == ByteKind::Iter && s.iter.phase == IterPhase::Active && s.iter.depth > 0
        })
    })
}
