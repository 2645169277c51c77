//! Helper functions: kernel-style prototypes and a registry of Rust implementations by id.
//!
//! A prototype also says which program types may call the helper ([`HelperProto::prog_types`]):
//! engines check [`Helper::allowed`] before calling an implementation, so implementations never
//! check the program type themselves (they may still behave differently by type, as the
//! kernel's per-type variants of one helper id do). [`support_matrix`] lists every kernel
//! helper with what bpflab implements of it; docs/HELPERS.md is its Markdown rendering.
//!
//! The kernel helpers bpflab does not implement have prototypes too
//! ([`HelperRegistry::proto`], the table in `builtin/unimplemented.rs`): the verifier checks
//! calls to them as the kernel does, while engines still fault at such a call
//! (`UnknownHelper`: [`HelperRegistry::get`] returns implemented helpers only).

use std::fmt;
use std::fmt::Write as _;

use crate::engine::ProgType;
use crate::helper_names::KERNEL_HELPER_NAMES;
use crate::interp::VmError;
use crate::memory::MemError;
use crate::world::World;

/// What a helper argument must be, as the kernel's `enum bpf_arg_type` states it. The verifier
/// checks calls against these; the interpreter only uses them for documentation and errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArgType {
    /// Any scalar or pointer (ARG_ANYTHING).
    Anything,
    /// A map pointer from LD_IMM64 (ARG_CONST_MAP_PTR).
    ConstMapPtr,
    /// Pointer to an initialized key of the map argument's key size (ARG_PTR_TO_MAP_KEY).
    PtrToMapKey,
    /// Pointer to an initialized value of the map's value size (ARG_PTR_TO_MAP_VALUE).
    PtrToMapValue,
    /// Pointer to initialized memory, sized by the next argument (ARG_PTR_TO_MEM).
    PtrToMem,
    /// Like `PtrToMem`, may be NULL when the size is 0 (ARG_PTR_TO_MEM | PTR_MAYBE_NULL).
    PtrToMemOrNull,
    /// Pointer to memory the helper writes, sized by the next argument (ARG_PTR_TO_UNINIT_MEM).
    PtrToUninitMem,
    /// A constant size > 0 for the preceding memory argument (ARG_CONST_SIZE).
    ConstSize,
    /// A constant size >= 0 for the preceding memory argument (ARG_CONST_SIZE_OR_ZERO).
    ConstSizeOrZero,
    /// The program's context pointer (ARG_PTR_TO_CTX).
    PtrToCtx,
    /// A pointer to a NUL-terminated constant string (ARG_PTR_TO_CONST_STR).
    PtrToConstStr,
    /// A pointer to a callback function (ARG_PTR_TO_FUNC).
    PtrToFunc,
    /// A pointer to a stack slot or NULL (ARG_PTR_TO_STACK_OR_NULL).
    PtrToStackOrNull,
    /// A pointer to a socket (ARG_PTR_TO_SOCKET / BTF socket).
    PtrToSocket,
    /// A pointer to a spin lock inside a map value (ARG_PTR_TO_SPIN_LOCK).
    PtrToSpinLock,
    /// A pointer to an allocated ring buffer record (ARG_PTR_TO_ALLOC_MEM).
    PtrToAllocMem,
    /// A pointer to a 64-bit integer the helper writes (ARG_PTR_TO_LONG).
    PtrToLong,
    /// A pointer to a `struct bpf_timer` in a map value (ARG_PTR_TO_TIMER).
    PtrToTimer,
    /// A pointer to a `struct bpf_dynptr` on the stack (ARG_PTR_TO_DYNPTR).
    PtrToDynptr,
    /// A pointer to a BTF-typed kernel object, the type the kernel's prototype names
    /// (ARG_PTR_TO_BTF_ID).
    PtrToBtfId,
    /// A referenced BTF-typed kernel object or NULL, released by the call
    /// (ARG_PTR_TO_BTF_ID_OR_NULL | OBJ_RELEASE).
    PtrToBtfIdOrNull,
    /// A socket as any socket pointer type, BTF-typed ones included
    /// (ARG_PTR_TO_BTF_ID_SOCK_COMMON).
    PtrToBtfIdSockCommon,
    /// A per-CPU kernel variable (`__ksym`) pointer (ARG_PTR_TO_PERCPU_BTF_ID).
    PtrToPercpuBtfId,
    /// A `__kptr` field of a map value to exchange (ARG_KPTR_XCHG_DEST, formerly
    /// ARG_PTR_TO_KPTR).
    PtrToKptr,
}

/// What a helper returns, as the kernel's `enum bpf_return_type` states it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RetType {
    /// A scalar (RET_INTEGER).
    Integer,
    /// Nothing usable (RET_VOID).
    Void,
    /// A map value pointer or NULL (RET_PTR_TO_MAP_VALUE_OR_NULL).
    PtrToMapValueOrNull,
    /// A socket pointer or NULL (RET_PTR_TO_SOCKET_OR_NULL).
    PtrToSocketOrNull,
    /// Allocated memory or NULL, sized by a constant argument (RET_PTR_TO_ALLOC_MEM_OR_NULL).
    PtrToAllocMemOrNull,
    /// A BTF-typed kernel object pointer (RET_PTR_TO_BTF_ID).
    PtrToBtfId,
    /// A map value pointer, never NULL (RET_PTR_TO_MAP_VALUE).
    PtrToMapValue,
    /// A BTF-typed kernel object pointer or NULL (RET_PTR_TO_BTF_ID_OR_NULL).
    PtrToBtfIdOrNull,
    /// A per-CPU variable: read-only memory, or a BTF-typed object for a struct
    /// (RET_PTR_TO_MEM_OR_BTF_ID | MEM_RDONLY).
    PtrToMemOrBtfId,
    /// [`RetType::PtrToMemOrBtfId`] or NULL (RET_PTR_TO_MEM_OR_BTF_ID | PTR_MAYBE_NULL |
    /// MEM_RDONLY).
    PtrToMemOrBtfIdOrNull,
}

/// Which program types may call a helper: the types whose `*_func_proto` switch in the kernel
/// (net/core/filter.c, kernel/trace/bpf_trace.c, kernel/bpf/helpers.c, ...) returns it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Allowed {
    /// Every program type: the helper is in `bpf_base_func_proto`, where every type's switch
    /// ends up.
    All,
    /// Only these program types (never empty; order does not matter).
    Only(&'static [ProgType]),
}

impl Allowed {
    /// Whether the set holds `prog_type` (without the raw-mode rule of
    /// [`HelperProto::allowed`]).
    #[inline]
    pub fn contains(self, prog_type: ProgType) -> bool {
        match self {
            Allowed::All => true,
            Allowed::Only(types) => types.contains(&prog_type),
        }
    }

    /// The kernel program types of the set, in id order (never [`ProgType::Unspec`], which has
    /// no kernel counterpart).
    pub fn types(self) -> impl Iterator<Item = ProgType> {
        ProgType::ALL.iter().copied().filter(move |&t| t != ProgType::Unspec && self.contains(t))
    }
}

/// A helper's signature: id, name, return and argument types, and who may call it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HelperProto {
    /// The helper id (`BPF_FUNC_*`).
    pub id: u32,
    /// The name without the `bpf_` prefix's module, e.g. `bpf_ktime_get_ns`.
    pub name: &'static str,
    /// What r0 holds after the call.
    pub ret: RetType,
    /// r1..r5 in order; unused arguments are absent.
    pub args: &'static [ArgType],
    /// Only GPL-compatible programs may call it.
    pub gpl_only: bool,
    /// The program types that may call it (see [`HelperProto::allowed`]).
    pub prog_types: Allowed,
}

impl HelperProto {
    /// Whether a program of `prog_type` may call this helper: raw-mode programs
    /// ([`ProgType::Unspec`], no kernel counterpart) may call every helper, the others the
    /// helpers whose [`prog_types`](HelperProto::prog_types) hold their type.
    #[inline]
    pub fn allowed(&self, prog_type: ProgType) -> bool {
        prog_type == ProgType::Unspec || self.prog_types.contains(prog_type)
    }
}

/// Why a helper call failed in a way that stops the program (not an errno return).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HelperError {
    /// The call needs something bpflab does not simulate (named).
    #[error("unsupported: {what}")]
    Unsupported {
        /// The missing feature.
        what: &'static str,
    },
    /// A callback the helper ran faulted.
    #[error("in callback: {0}")]
    Callback(Box<VmError>),
    /// The helper is not available to this program type.
    #[error("not allowed in {prog_type:?} programs")]
    NotAllowed {
        /// The calling program's type.
        prog_type: ProgType,
    },
    /// The kernel profile in use lacks the helper for this program type (the prototype
    /// allows it; that kernel's verifier refuses the program).
    #[error("not available to {} programs on kernel {kernel}", prog_type.name())]
    NotInKernel {
        /// The calling program's type.
        prog_type: ProgType,
        /// The kernel profile (source and release).
        kernel: String,
    },
    /// The helper is GPL-only and the program's license is not GPL-compatible (the kernel's
    /// verifier refuses the program with the same words).
    #[error("cannot call GPL-restricted function from non-GPL compatible program")]
    GplOnly,
    /// A pointer argument does not point to enough accessible memory.
    #[error("argument {arg}: {error}")]
    BadMemoryArg {
        /// Argument number (1..=5).
        arg: u8,
        /// The memory check that failed.
        error: MemError,
    },
    /// An argument has a value the kernel's verifier would have refused.
    #[error("argument {arg}: {reason}")]
    BadArg {
        /// Argument number (1..=5).
        arg: u8,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// Runs BPF code on behalf of a helper (callbacks of `bpf_loop`, `bpf_for_each_map_elem`, ...).
pub trait Callbacks {
    /// Calls the BPF function at code address `addr` with r1..r5 = `args`; returns its r0.
    fn call(&mut self, world: &mut World, addr: u64, args: [u64; 5]) -> Result<u64, VmError>;
}

/// What a helper implementation can reach.
pub struct HelperCtx<'a> {
    /// Memory, maps and environment.
    pub world: &'a mut World,
    /// The running program's type.
    pub prog_type: ProgType,
    /// Calls back into BPF code.
    pub calls: &'a mut dyn Callbacks,
    /// Set by `bpf_tail_call`: the program to continue in, instead of returning.
    pub tail_call: Option<usize>,
}

impl HelperCtx<'_> {
    /// Reads `len` bytes of argument `arg` at `addr`.
    pub fn arg_bytes(&self, arg: u8, addr: u64, len: u64) -> Result<Vec<u8>, HelperError> {
        let len = usize::try_from(len)
            .map_err(|_| HelperError::BadArg { arg, reason: "size too large" })?;
        self.world
            .mem
            .slice(addr, len)
            .map(<[u8]>::to_vec)
            .map_err(|error| HelperError::BadMemoryArg { arg, error })
    }

    /// Reads a NUL-terminated string of at most `max` bytes (the NUL included) at `addr`.
    pub fn arg_str(&self, arg: u8, addr: u64, max: u64) -> Result<Vec<u8>, HelperError> {
        let bytes = self.arg_bytes(arg, addr, max)?;
        match bytes.iter().position(|&b| b == 0) {
            Some(n) => Ok(bytes[..n].to_vec()),
            None => Err(HelperError::BadArg { arg, reason: "string is not NUL-terminated" }),
        }
    }
}

/// A helper implementation: takes r1..r5, returns r0.
pub type HelperFn = fn(&mut HelperCtx<'_>, [u64; 5]) -> Result<u64, HelperError>;

/// A registered helper: its prototype and implementation.
#[derive(Clone, Copy)]
pub struct Helper {
    /// The signature.
    pub proto: HelperProto,
    /// The implementation.
    pub func: HelperFn,
}

impl Helper {
    /// Whether a program of `prog_type` may call this helper ([`HelperProto::allowed`]). Every
    /// engine applies this before calling [`Helper::func`]; a refused call is a
    /// [`HelperError::NotAllowed`] fault, where the kernel's verifier refuses the program.
    #[inline]
    pub fn allowed(&self, prog_type: ProgType) -> bool {
        self.proto.allowed(prog_type)
    }

    /// [`Helper::allowed`] as the error an engine reports for a refused call.
    #[inline]
    pub fn check(&self, prog_type: ProgType) -> Result<(), HelperError> {
        if self.allowed(prog_type) { Ok(()) } else { Err(HelperError::NotAllowed { prog_type }) }
    }

    /// [`HelperError::GplOnly`] when the helper is GPL-only and the calling program's license
    /// is not GPL-compatible ([`license_is_gpl_compatible`]), as the kernel's verifier checks
    /// right after the program type.
    #[inline]
    pub fn check_license(&self, gpl_compatible: bool) -> Result<(), HelperError> {
        if self.proto.gpl_only && !gpl_compatible { Err(HelperError::GplOnly) } else { Ok(()) }
    }
}

/// Whether the kernel's prototype of helper `id` may sleep (`.might_sleep`) in a program that
/// is (`sleepable`) or is not sleepable. The kernel's verifier refuses such a call outside
/// sleepable programs ("helper call might sleep in a non-sleepable prog") and inside RCU
/// read-side or non-preemptible sections. No helper bpflab implements may sleep.
pub fn might_sleep(id: u32, sleepable: bool) -> bool {
    crate::builtin::unimplemented::might_sleep(id, sleepable)
}

/// Whether a program of `prog_type` with `expected_attach_type` `attach` gets helper `id`
/// where the kernel narrows a prototype-only helper's program types by attach type
/// (`bpf_bind` only in connect hooks, `bpf_get_retval`/`bpf_set_retval` not in cgroup_skb,
/// sock_ops, recvmsg, getpeername and getsockname hooks, the cgroup helpers in LSM programs
/// only for `BPF_LSM_CGROUP`, the `bpf_seq_*` helpers only in iterators); `true` where the
/// program type alone decides. The kernel's verifier refuses the others as it refuses a type
/// ("program of this type cannot use helper").
pub fn attach_type_allows(id: u32, prog_type: ProgType, attach: Option<u32>) -> bool {
    crate::builtin::unimplemented::attach_type_allows(id, prog_type, attach)
}

/// Whether a program with this license string may call GPL-only helpers: the licenses the
/// kernel's `license_is_gpl_compatible()` (include/linux/license.h) accepts, compared exactly.
pub fn license_is_gpl_compatible(license: &str) -> bool {
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

impl fmt::Debug for Helper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Helper").field("proto", &self.proto).finish_non_exhaustive()
    }
}

/// Helpers by id, dispatched in O(1), and the prototypes of the kernel helpers bpflab does not
/// implement.
///
/// Engines run only the implemented helpers ([`HelperRegistry::get`]); a call to any other id,
/// prototype or not, faults with `UnknownHelper` as before. The verifier checks calls against
/// every prototype ([`HelperRegistry::proto`]): a program calling a helper the simulator lacks
/// can still be verified as the kernel would.
#[derive(Clone, Debug, Default)]
pub struct HelperRegistry {
    by_id: Vec<Option<Helper>>,
    /// Prototypes without an implementation, by id ([`HelperRegistry::register_proto`]).
    protos: Vec<Option<HelperProto>>,
    /// Per helper id, the program types (bit = type id) a kernel profile removes.
    removed: Vec<u64>,
    /// The kernel the removals come from (its profile's source and release).
    kernel: Option<String>,
}

/// Largest helper id accepted by [`HelperRegistry::register`] (kernel ids are below 256).
pub const MAX_HELPER_ID: u32 = 1023;

impl HelperRegistry {
    /// An empty registry.
    pub fn empty() -> HelperRegistry {
        HelperRegistry::default()
    }

    /// A registry holding every helper bpflab implements, and the prototype of every other
    /// kernel helper ([`HelperRegistry::proto`]).
    pub fn standard() -> HelperRegistry {
        let mut r = HelperRegistry::empty();
        for family in crate::builtin::FAMILIES {
            for h in *family {
                r.register(*h);
            }
        }
        for p in crate::builtin::unimplemented::PROTOS {
            r.register_proto(*p);
        }
        r
    }

    /// Adds or replaces a helper.
    ///
    /// # Panics
    /// If the id is above [`MAX_HELPER_ID`] (a programming error in the caller's table).
    pub fn register(&mut self, helper: Helper) {
        let id = helper.proto.id;
        assert!(id <= MAX_HELPER_ID, "helper id {id} above {MAX_HELPER_ID}");
        let idx = id as usize;
        if self.by_id.len() <= idx {
            self.by_id.resize(idx + 1, None);
        }
        self.by_id[idx] = Some(helper);
    }

    /// Adds or replaces the prototype of a helper bpflab does not implement: the verifier
    /// checks calls against it ([`HelperRegistry::proto`]), engines still refuse to run it
    /// ([`HelperRegistry::get`] does not return it). An implementation registered for the same
    /// id takes precedence.
    ///
    /// # Panics
    /// If the id is above [`MAX_HELPER_ID`] (a programming error in the caller's table).
    pub fn register_proto(&mut self, proto: HelperProto) {
        let id = proto.id;
        assert!(id <= MAX_HELPER_ID, "helper id {id} above {MAX_HELPER_ID}");
        let idx = id as usize;
        if self.protos.len() <= idx {
            self.protos.resize(idx + 1, None);
        }
        self.protos[idx] = Some(proto);
    }

    /// The helper with this id, if registered (implemented: engines call it).
    #[inline]
    pub fn get(&self, id: i64) -> Option<&Helper> {
        usize::try_from(id).ok().and_then(|i| self.by_id.get(i)).and_then(Option::as_ref)
    }

    /// The prototype of helper `id`: the implemented helper's, else the one registered
    /// without an implementation ([`HelperRegistry::register_proto`]). What the verifier
    /// checks a call against.
    #[inline]
    pub fn proto(&self, id: i64) -> Option<&HelperProto> {
        self.get(id).map(|h| &h.proto).or_else(|| {
            usize::try_from(id).ok().and_then(|i| self.protos.get(i)).and_then(Option::as_ref)
        })
    }

    /// Whether helper `id` has an implementation engines run ([`HelperRegistry::get`]).
    #[inline]
    pub fn is_implemented(&self, id: i64) -> bool {
        self.get(id).is_some()
    }

    /// Every registered helper, by id.
    pub fn iter(&self) -> impl Iterator<Item = &Helper> {
        self.by_id.iter().flatten()
    }

    /// Every prototype ([`HelperRegistry::proto`]), implemented or not, by id.
    pub fn protos(&self) -> impl Iterator<Item = &HelperProto> {
        let n = self.by_id.len().max(self.protos.len());
        (0..n as i64).filter_map(|id| self.proto(id))
    }

    /// The prototypes registered without an implementation, by id.
    pub fn unimplemented_protos(&self) -> impl Iterator<Item = &HelperProto> {
        self.protos.iter().flatten().filter(|p| !self.is_implemented(i64::from(p.id)))
    }

    /// The registry as `profile`'s kernel has it: helpers the profile does not list for a
    /// probed program type are refused to that type (as that kernel's verifier refuses them).
    pub fn with_profile(mut self, profile: &crate::profile::KernelProfile) -> HelperRegistry {
        let mut removed = vec![0; self.by_id.len().max(self.protos.len())];
        for p in self.protos() {
            for t in ProgType::ALL {
                if *t != ProgType::Unspec
                    && p.prog_types.contains(*t)
                    && !profile.helper_available(*t, p.id)
                {
                    removed[p.id as usize] |= 1 << t.id();
                }
            }
        }
        self.removed = removed;
        self.kernel = Some(format!("{} ({})", profile.source, profile.release));
        self
    }

    /// Whether a program of `prog_type` may call `helper` here: its prototype allows it
    /// ([`Helper::allowed`]) and the kernel profile has not removed it.
    #[inline]
    pub fn allowed(&self, helper: &Helper, prog_type: ProgType) -> bool {
        self.check(helper, prog_type).is_ok()
    }

    /// [`HelperRegistry::allowed`] as the error an engine reports for a refused call; every
    /// engine calls this before [`Helper::func`].
    #[inline]
    pub fn check(&self, helper: &Helper, prog_type: ProgType) -> Result<(), HelperError> {
        self.check_proto(&helper.proto, prog_type)
    }

    /// Whether a program of `prog_type` may call the helper of prototype `proto` here, as
    /// [`HelperRegistry::allowed`] for a prototype with or without an implementation.
    #[inline]
    pub fn allowed_proto(&self, proto: &HelperProto, prog_type: ProgType) -> bool {
        self.check_proto(proto, prog_type).is_ok()
    }

    /// [`HelperRegistry::allowed_proto`] as an error: [`HelperError::NotAllowed`] when the
    /// prototype does not allow the type, [`HelperError::NotInKernel`] when the kernel profile
    /// removed it.
    #[inline]
    pub fn check_proto(&self, proto: &HelperProto, prog_type: ProgType) -> Result<(), HelperError> {
        if !proto.allowed(prog_type) {
            return Err(HelperError::NotAllowed { prog_type });
        }
        let removed = self.removed.get(proto.id as usize).copied().unwrap_or(0);
        if removed & (1 << prog_type.id()) != 0 {
            return Err(HelperError::NotInKernel {
                prog_type,
                kernel: self.kernel.clone().unwrap_or_default(),
            });
        }
        Ok(())
    }
}

/// Whether bpflab implements a kernel helper.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Support {
    /// Registered: programs calling it run.
    Implemented,
    /// Not registered: a call faults with `UnknownHelper`.
    NotImplemented,
}

/// One helper of the [`support_matrix`]; the prototype fields are `None` when not implemented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatrixRow {
    /// The helper id (`BPF_FUNC_*`).
    pub id: u32,
    /// The kernel's name (`bpf_...`), or the registered one for an id the kernel lacks.
    pub name: &'static str,
    /// Whether the registry implements it.
    pub status: Support,
    /// The program types that may call it.
    pub prog_types: Option<Allowed>,
    /// Only GPL-compatible programs may call it.
    pub gpl_only: Option<bool>,
    /// r1..r5 in order.
    pub args: Option<&'static [ArgType]>,
    /// What r0 holds after the call.
    pub ret: Option<RetType>,
    /// Why bpflab does not implement it, for the helpers whose reason is known (every
    /// networking helper it lacks); `None` for implemented helpers.
    pub reason: Option<&'static str>,
}

/// Every helper id the kernel's uapi header defines ([`KERNEL_HELPER_NAMES`]), plus any other
/// id `registry` holds, in id order, with what `registry` implements of each.
pub fn support_matrix(registry: &HelperRegistry) -> Vec<MatrixRow> {
    let kernel_ids = 1..KERNEL_HELPER_NAMES.len() as u32;
    let extra = registry.iter().map(|h| h.proto.id).filter(|id| !kernel_ids.contains(id));
    let mut ids: Vec<u32> = kernel_ids.clone().chain(extra).collect();
    ids.sort_unstable();
    ids.into_iter()
        .map(|id| {
            let helper = registry.get(i64::from(id));
            let kernel_name = KERNEL_HELPER_NAMES.get(id as usize).copied().filter(|_| id > 0);
            let proto = helper.map(|h| h.proto);
            MatrixRow {
                id,
                name: kernel_name.or(proto.map(|p| p.name)).unwrap_or("?"),
                status: if helper.is_some() {
                    Support::Implemented
                } else {
                    Support::NotImplemented
                },
                prog_types: proto.map(|p| p.prog_types),
                gpl_only: proto.map(|p| p.gpl_only),
                args: proto.map(|p| p.args),
                ret: proto.map(|p| p.ret),
                reason: if helper.is_some() {
                    None
                } else {
                    kernel_name.and_then(crate::builtin::missing::reason)
                },
            }
        })
        .collect()
}

/// How [`support_matrix_markdown`] output is regenerated, for its header.
const REGENERATE: &str = "BPFLAB_BLESS=1 cargo test -p bpflab --test helpers_doc";

/// The support matrix as a Markdown document (docs/HELPERS.md; `bpflab helpers` prints it).
pub fn support_matrix_markdown(rows: &[MatrixRow]) -> String {
    let implemented: Vec<&MatrixRow> =
        rows.iter().filter(|r| r.status == Support::Implemented).collect();
    let kernel = rows.iter().filter(|r| (r.id as usize) < KERNEL_HELPER_NAMES.len()).count();
    let mut out = String::new();
    let _ = write!(
        out,
        "# Helper support matrix\n\n\
         <!-- Generated from the helper prototypes (`bpflab_vm::helpers::support_matrix`): do not \
         edit. Regenerate with `{REGENERATE}` (or `bpflab helpers > docs/HELPERS.md`). -->\n\n\
         bpflab implements {} of the {kernel} helpers the kernel's uapi header defines. A call \
         to one it does not implement faults (`unknown helper`).\n\n\
         - **Program types**: the program types whose `*_func_proto` switch in the kernel gives \
         the helper (`all`: every type, the helper is in `bpf_base_func_proto`). A program of \
         another type faults with `not allowed in ... programs` at the call, where the kernel's \
         verifier refuses to load it. Raw-mode programs (`Unspec`, no kernel counterpart) may \
         call every helper. Freplace (`Ext`) programs get the helpers of the program they \
         replace in the kernel; bpflab, which does not know it, gives them the `all` ones and \
         those that list `Ext`. Some helpers narrow the set further by attach type, as the kernel \
         does: `bpf_get_func_ip` in `Tracing` programs only for fentry/fexit/fmod_ret, \
         `bpf_get_attach_cookie` in `Tracing` and `Lsm` programs only with a trampoline or for \
         tp_btf, `bpf_get_func_arg`/`_ret`/`_arg_cnt` only with a trampoline.\n\
         - **GPL**: only GPL-compatible programs may call it; a program whose license is \
         not GPL-compatible faults at the call (`cannot call GPL-restricted function from non-GPL \
         compatible program`), where the kernel's verifier refuses it.\n\
         - **Arguments** and **returns**: the prototype's argument and return types \
         (`bpflab_vm::helpers::ArgType`, `RetType`: the kernel's `ARG_*` and `RET_*`).\n\
         - **Why not**: for a networking helper bpflab does not implement, why.\n\n\
         The GPL flag, argument count, argument types and return kind of every implemented \
         prototype are checked against the kernel's (`vm/tests/kernel_protos.rs`, with the \
         prototypes of linux-source-6.12 in `vm/tests/data/kernel_protos.tsv`), and the program \
         types against the running kernel's (`kernel/tests/helper_types_vs_kernel.rs`).\n\n",
        implemented.len()
    );
    out += "## Helpers each program type may call\n\n| program type | implemented helpers |\n|---|---:|\n";
    for &t in ProgType::ALL.iter().filter(|&&t| t != ProgType::Unspec) {
        let n = implemented.iter().filter(|r| r.prog_types.is_some_and(|p| p.contains(t))).count();
        let _ = writeln!(out, "| `{t:?}` | {n} |");
    }
    let _ = writeln!(out, "| `Unspec` (raw mode) | {} |", implemented.len());
    out += "\n## Helpers\n\n\
            | id | helper | status | program types | GPL | arguments | returns | why not |\n\
            |---:|---|---|---|---|---|---|---|\n";
    for r in rows {
        let types = match r.prog_types {
            None => String::new(),
            Some(Allowed::All) => "all".to_string(),
            Some(p) => p.types().map(|t| format!("{t:?}")).collect::<Vec<_>>().join(", "),
        };
        let args = r.args.map_or(String::new(), |a| {
            if a.is_empty() {
                "none".to_string()
            } else {
                a.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>().join(", ")
            }
        });
        let _ = writeln!(
            out,
            "| {} | `{}` | {} | {} | {} | {} | {} | {} |",
            r.id,
            r.name,
            match r.status {
                Support::Implemented => "implemented",
                Support::NotImplemented => "not implemented",
            },
            types,
            match r.gpl_only {
                Some(true) => "yes",
                Some(false) => "no",
                None => "",
            },
            args,
            r.ret.map_or(String::new(), |t| format!("{t:?}")),
            r.reason.unwrap_or(""),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helper_names::helper_name;
    use std::collections::BTreeMap;

    #[test]
    fn ids_are_unique_across_families() {
        let mut seen: BTreeMap<u32, &str> = BTreeMap::new();
        for family in crate::builtin::FAMILIES {
            for h in *family {
                if let Some(first) = seen.insert(h.proto.id, h.proto.name) {
                    panic!(
                        "helper id {} registered twice: {first} and {}",
                        h.proto.id, h.proto.name
                    );
                }
            }
        }
        assert_eq!(seen.len(), HelperRegistry::standard().iter().count());
        // The prototype-only table: in id order, none implemented.
        let table = crate::builtin::unimplemented::PROTOS;
        for (i, p) in table.iter().enumerate() {
            assert!(!seen.contains_key(&p.id), "{} is implemented: drop its prototype", p.name);
            assert!(i == 0 || table[i - 1].id < p.id, "{} listed out of id order", p.name);
        }
    }

    #[test]
    fn prototypes_name_kernel_helpers_and_list_program_types() {
        for &p in HelperRegistry::standard().protos() {
            assert_eq!(helper_name(i64::from(p.id)), Some(p.name), "id {}", p.id);
            if let Allowed::Only(types) = p.prog_types {
                assert!(!types.is_empty(), "{}: empty program-type list", p.name);
                assert!(!types.contains(&ProgType::Unspec), "{}: Unspec is implied", p.name);
                for (i, t) in types.iter().enumerate() {
                    assert!(!types[i + 1..].contains(t), "{}: {t:?} listed twice", p.name);
                }
            }
        }
    }

    #[test]
    fn prototype_only_helpers_are_checked_not_run() {
        let r = HelperRegistry::standard();
        // bpf_get_local_storage: a prototype, no implementation.
        assert!(r.get(81).is_none());
        assert!(!r.is_implemented(81));
        let p = *r.proto(81).expect("bpf_get_local_storage");
        assert_eq!(p.name, "bpf_get_local_storage");
        assert_eq!(p.ret, RetType::PtrToMapValue);
        assert_eq!(p.args, [ArgType::ConstMapPtr, ArgType::Anything]);
        assert!(!p.gpl_only);
        assert!(r.allowed_proto(&p, ProgType::CgroupSkb));
        assert!(r.allowed_proto(&p, ProgType::Unspec));
        assert_eq!(
            r.check_proto(&p, ProgType::Xdp),
            Err(HelperError::NotAllowed { prog_type: ProgType::Xdp })
        );
        // An implemented helper's prototype is its implementation's.
        let lookup = r.get(1).expect("bpf_map_lookup_elem");
        assert_eq!(r.proto(1), Some(&lookup.proto));
        assert!(r.unimplemented_protos().all(|p| r.get(i64::from(p.id)).is_none()));
        // Every kernel helper has exactly one prototype, in id order.
        let ids: Vec<u32> = r.protos().map(|p| p.id).collect();
        assert_eq!(ids, (1..KERNEL_HELPER_NAMES.len() as u32).collect::<Vec<_>>());
        for p in r.protos() {
            assert_eq!(helper_name(i64::from(p.id)), Some(p.name), "id {}", p.id);
        }
        assert_eq!(r.proto(0), None);
        assert_eq!(r.proto(-1), None);
        assert_eq!(r.proto(i64::from(MAX_HELPER_ID) + 1), None);
        // Registering an implementation takes precedence over the prototype.
        let mut r2 = r.clone();
        let mut h = *lookup;
        h.proto.id = 81;
        h.proto.name = "bpf_get_local_storage";
        r2.register(h);
        assert!(r2.is_implemented(81));
        assert_eq!(r2.proto(81).map(|p| p.ret), Some(RetType::PtrToMapValueOrNull));
        assert_eq!(r2.unimplemented_protos().count(), r.unimplemented_protos().count() - 1);
    }

    #[test]
    fn engines_do_not_run_prototype_only_helpers() {
        use crate::interp::{Config, VmErrorKind};
        let insns = crate::asm::assemble("r1 = 0\nr2 = 0\ncall 81\nexit").expect("asm");
        let prog = crate::Program::raw("t", insns);
        let interp = crate::Interpreter::new(Config::default(), crate::standard_helpers());
        let e = interp.prepare(&prog).expect("prepare").run_raw(&mut Vec::new()).unwrap_err();
        assert_eq!(*e.kind(), VmErrorKind::UnknownHelper { id: 81 });
        assert_eq!(e.pc(), 2);
    }

    #[test]
    fn profiles_remove_prototype_only_helpers_too() {
        let r = HelperRegistry::standard();
        let mut profile = crate::profile::KernelProfile::bpflab(&r);
        assert!(profile.helper_available(ProgType::CgroupSkb, 81));
        profile.helpers.get_mut(&ProgType::CgroupSkb).expect("cgroup_skb").remove(&81);
        let r = r.with_profile(&profile);
        let p = *r.proto(81).expect("bpf_get_local_storage");
        assert!(matches!(
            r.check_proto(&p, ProgType::CgroupSkb),
            Err(HelperError::NotInKernel { prog_type: ProgType::CgroupSkb, .. })
        ));
        assert!(r.allowed_proto(&p, ProgType::CgroupSock));
    }

    #[test]
    fn attach_types_narrow_some_prototype_only_helpers() {
        use crate::ctx::layout::attach as a;
        assert!(attach_type_allows(64, ProgType::CgroupSockAddr, Some(a::CGROUP_INET4_CONNECT)));
        assert!(!attach_type_allows(64, ProgType::CgroupSockAddr, Some(a::CGROUP_INET4_BIND)));
        assert!(!attach_type_allows(186, ProgType::CgroupSockAddr, Some(a::CGROUP_UDP4_RECVMSG)));
        assert!(attach_type_allows(186, ProgType::CgroupSockAddr, Some(a::CGROUP_INET4_CONNECT)));
        assert!(!attach_type_allows(187, ProgType::CgroupSock, None)); // INET_INGRESS (0)
        assert!(attach_type_allows(187, ProgType::CgroupSock, Some(a::CGROUP_INET_SOCK_CREATE)));
        assert!(!attach_type_allows(81, ProgType::Lsm, Some(a::LSM_MAC)));
        assert!(attach_type_allows(81, ProgType::Lsm, Some(43)));
        assert!(attach_type_allows(81, ProgType::CgroupSkb, None));
        assert!(!attach_type_allows(126, ProgType::Tracing, Some(26))); // fentry
        assert!(attach_type_allows(126, ProgType::Tracing, Some(28))); // iter
        assert!(attach_type_allows(1, ProgType::Xdp, Some(1234)));
    }

    #[test]
    fn sleeping_helpers() {
        assert!(might_sleep(148, false)); // bpf_copy_from_user
        assert!(might_sleep(166, true)); // bpf_sys_bpf
        assert!(!might_sleep(67, false)); // bpf_get_stack: only its sleepable variant
        assert!(might_sleep(67, true));
        assert!(!might_sleep(1, true));
        for h in HelperRegistry::standard().iter() {
            assert!(!might_sleep(h.proto.id, true), "{} is implemented", h.proto.name);
        }
    }

    #[test]
    fn allowed_is_the_set_plus_raw_mode() {
        let r = HelperRegistry::standard();
        let adjust_head = r.get(44).expect("bpf_xdp_adjust_head");
        assert!(adjust_head.allowed(ProgType::Xdp));
        assert!(adjust_head.allowed(ProgType::Unspec));
        assert!(!adjust_head.allowed(ProgType::SchedCls));
        assert_eq!(
            adjust_head.check(ProgType::SchedCls),
            Err(HelperError::NotAllowed { prog_type: ProgType::SchedCls })
        );
        assert!(!adjust_head.proto.prog_types.contains(ProgType::Unspec));
        assert_eq!(adjust_head.proto.prog_types.types().collect::<Vec<_>>(), [ProgType::Xdp]);
        let all: Vec<ProgType> = Allowed::All.types().collect();
        assert_eq!(all.len(), ProgType::ALL.len() - 1);
        assert!(!all.contains(&ProgType::Unspec));
    }

    #[test]
    fn matrix_covers_every_kernel_helper() {
        let r = HelperRegistry::standard();
        let rows = support_matrix(&r);
        assert_eq!(rows.len(), KERNEL_HELPER_NAMES.len() - 1);
        for (i, row) in rows.iter().enumerate() {
            assert_eq!(row.id as usize, i + 1);
            assert_eq!(row.name, KERNEL_HELPER_NAMES[i + 1]);
            match r.get(i64::from(row.id)) {
                Some(h) => {
                    assert_eq!(row.status, Support::Implemented, "{}", row.name);
                    assert_eq!(row.prog_types, Some(h.proto.prog_types));
                    assert_eq!(row.gpl_only, Some(h.proto.gpl_only));
                    assert_eq!(row.args, Some(h.proto.args));
                    assert_eq!(row.ret, Some(h.proto.ret));
                    assert_eq!(row.reason, None, "{}", row.name);
                }
                None => {
                    assert_eq!(row.status, Support::NotImplemented, "{}", row.name);
                    assert_eq!(
                        (row.prog_types, row.gpl_only, row.args, row.ret),
                        (None, None, None, None)
                    );
                    assert_eq!(row.reason, crate::builtin::missing::reason(row.name));
                }
            }
        }
        let implemented = rows.iter().filter(|r| r.status == Support::Implemented).count();
        assert_eq!(implemented, r.iter().count());
        assert_eq!(rows[32].name, "bpf_skb_under_cgroup");
        assert_eq!(rows[32].status, Support::NotImplemented);
        assert_eq!(rows[43].prog_types, Some(Allowed::Only(&[ProgType::Xdp])));
        // Nothing registered: every kernel helper is listed, none implemented.
        let empty = support_matrix(&HelperRegistry::empty());
        assert_eq!(empty.len(), rows.len());
        assert!(empty.iter().all(|r| r.status == Support::NotImplemented));
    }

    #[test]
    fn matrix_lists_registered_ids_the_kernel_lacks() {
        let mut r = HelperRegistry::empty();
        let mut h = *HelperRegistry::standard().get(7).expect("bpf_get_prandom_u32");
        h.proto.id = 1000;
        h.proto.name = "bpflab_test_helper";
        r.register(h);
        let rows = support_matrix(&r);
        let last = rows.last().expect("rows");
        assert_eq!(
            (last.id, last.name, last.status),
            (1000, "bpflab_test_helper", Support::Implemented)
        );
        assert_eq!(rows.len(), KERNEL_HELPER_NAMES.len());
    }

    #[test]
    fn reasons_name_kernel_helpers_bpflab_lacks() {
        let r = HelperRegistry::standard();
        let rows = support_matrix(&r);
        for (i, (name, reason)) in crate::builtin::missing::NOT_IMPLEMENTED.iter().enumerate() {
            let row = rows.iter().find(|row| row.name == *name);
            let row = row.unwrap_or_else(|| panic!("{name}: not a kernel helper"));
            assert_eq!(
                row.status,
                Support::NotImplemented,
                "{name} is implemented: drop its reason"
            );
            assert_eq!(row.reason, Some(*reason));
            assert!(!reason.is_empty() && !reason.contains('|'), "{name}: {reason:?}");
            if let Some((prev, _)) =
                i.checked_sub(1).map(|j| crate::builtin::missing::NOT_IMPLEMENTED[j])
            {
                let id = |n: &str| crate::helper_names::helper_id(n).expect("id");
                assert!(id(prev) < id(name), "{name} listed after {prev}");
            }
        }
        let with_reason = rows.iter().filter(|row| row.reason.is_some()).count();
        assert_eq!(with_reason, crate::builtin::missing::NOT_IMPLEMENTED.len());
    }

    #[test]
    fn gpl_only_helpers_refuse_other_licenses() {
        let r = HelperRegistry::standard();
        let printk = *r.get(6).expect("bpf_trace_printk");
        assert!(printk.proto.gpl_only);
        assert_eq!(printk.check_license(false), Err(HelperError::GplOnly));
        assert_eq!(printk.check_license(true), Ok(()));
        let adjust_head = *r.get(44).expect("bpf_xdp_adjust_head");
        assert!(!adjust_head.proto.gpl_only);
        assert_eq!(adjust_head.check_license(false), Ok(()));
        assert_eq!(
            HelperError::GplOnly.to_string(),
            "cannot call GPL-restricted function from non-GPL compatible program"
        );
        assert!(license_is_gpl_compatible("Dual MIT/GPL"));
        assert!(!license_is_gpl_compatible("Proprietary"));
    }

    #[test]
    fn markdown_has_one_row_per_helper() {
        let rows = support_matrix(&HelperRegistry::standard());
        let md = support_matrix_markdown(&rows);
        assert!(md.starts_with("# Helper support matrix\n"));
        assert!(md.contains(REGENERATE));
        assert!(md.contains("| 1 | `bpf_map_lookup_elem` | implemented | all | no | ConstMapPtr, PtrToMapKey | PtrToMapValueOrNull |  |\n"));
        assert!(md.contains(
            "| 33 | `bpf_skb_under_cgroup` | not implemented |  |  |  |  | needs a \
             BPF_MAP_TYPE_CGROUP_ARRAY of cgroup fds and the cgroup v2 hierarchy of the skb's \
             socket |\n"
        ));
        assert!(md.contains("| 22 | `bpf_perf_event_read` | not implemented |  |  |  |  |  |\n"));
        assert!(md.contains("| 44 | `bpf_xdp_adjust_head` | implemented | Xdp | no | PtrToCtx, Anything | Integer |  |\n"));
        assert!(md.contains(
            "| 14 | `bpf_get_current_pid_tgid` | implemented | all | no | none | Integer |  |\n"
        ));
        for r in &rows {
            assert_eq!(
                md.matches(&format!("| {} | `{}` |", r.id, r.name)).count(),
                1,
                "{}",
                r.name
            );
        }
        assert!(md.ends_with("|\n"));
    }
}
