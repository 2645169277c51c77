//! Helper functions: kernel-style prototypes and a registry of Rust implementations by id.

use std::fmt;

use crate::engine::ProgType;
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
}

/// A helper's signature: id, name, return and argument types.
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
}

/// Why a helper call failed in a way that stops the program (not an errno return).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HelperError {
    /// A callback the helper ran faulted.
    #[error("in callback: {0}")]
    Callback(Box<VmError>),
    /// The helper is not available to this program type.
    #[error("not allowed in {prog_type:?} programs")]
    NotAllowed {
        /// The calling program's type.
        prog_type: ProgType,
    },
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

impl fmt::Debug for Helper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Helper").field("proto", &self.proto).finish_non_exhaustive()
    }
}

/// Helpers by id, dispatched in O(1).
#[derive(Clone, Debug, Default)]
pub struct HelperRegistry {
    by_id: Vec<Option<Helper>>,
}

/// Largest helper id accepted by [`HelperRegistry::register`] (kernel ids are below 256).
pub const MAX_HELPER_ID: u32 = 1023;

impl HelperRegistry {
    /// An empty registry.
    pub fn empty() -> HelperRegistry {
        HelperRegistry::default()
    }

    /// A registry holding every helper bpflab implements.
    pub fn standard() -> HelperRegistry {
        let mut r = HelperRegistry::empty();
        for family in crate::builtin::FAMILIES {
            for h in *family {
                r.register(*h);
            }
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

    /// The helper with this id, if registered.
    #[inline]
    pub fn get(&self, id: i64) -> Option<&Helper> {
        usize::try_from(id).ok().and_then(|i| self.by_id.get(i)).and_then(Option::as_ref)
    }

    /// Every registered helper, by id.
    pub fn iter(&self) -> impl Iterator<Item = &Helper> {
        self.by_id.iter().flatten()
    }
}
