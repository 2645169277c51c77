//! bpflab's Cranelift JIT: compiles the interpreter's lowered code ([`bpflab_vm::interp::Code`])
//! to native code that behaves bit for bit like the interpreter.
//!
//! # Design
//!
//! - **Reuse.** [`JitEngine::load`] instantiates the collection with the interpreter
//!   ([`Interpreter::instantiate`]): the world (memory, maps, environment), the contexts and the
//!   lowered code (LD_IMM64 already resolved to addresses) are the interpreter's. Only execution
//!   is replaced.
//! - **Functions.** Every program is split into native functions, one per entry point: the
//!   program's first instruction (also the tail-call target), every bpf-to-bpf call target and
//!   every callback address the code loads. A function covers the code reachable from its
//!   entry by jumps. eBPF registers are Cranelift variables (only those live at the entry are
//!   loaded); bpf-to-bpf calls are native calls (one 512-byte stack region per frame, eight
//!   frames at most), tail calls are native calls of the target's entry in the same frame (33
//!   at most per run, shared with callbacks). Callbacks the helpers run enter compiled code
//!   through the same path as a run; a callback address no function starts at is compiled on
//!   first use.
//! - **Memory.** Addresses are the world's virtual addresses. Compiled code translates them
//!   through a region table (`runtime::Entry`, a power of two of entries, entry `i + 1` for
//!   region `i`): the entry is `table[(addr >> 32) & mask]` (no clamp: indices past the
//!   regions find all-zero entries), an access of `n` bytes is inline when
//!   `addr - start <u lim[n]` (one compare covers both ends and the access size), and the
//!   host address is `addr + delta`. The entry is found from the base register, so accesses
//!   through the same pointer share one translation.
//!   [`Mode::Checked`] checks every access as the interpreter does (bounds, packet window,
//!   permission, alignment); [`Mode::Trusted`] only checks what host memory safety needs (the
//!   access lies inside the region's buffer), as the kernel's JIT trusts its verifier. Context
//!   accesses, and every access the inline check refuses, go to the interpreter's own
//!   [`Memory`](bpflab_vm::memory::Memory) in Rust, so errors and context rules are the
//!   interpreter's. Stack accesses through an unmodified `r10` are checked at compile time,
//!   and a frame's stack is only zeroed as deep as any code can reach. Atomics are host
//!   atomic instructions.
//! - **The region table is validated lazily.** At the start of a run every entry is
//!   invalidated (its limits zeroed, so accesses go to Rust); Rust re-validates an entry when
//!   an access to its region reaches it, and the input, packet and stack regions up front.
//!   After a helper, and between callbacks, the validated entries are refreshed only if the
//!   memory's layout version (`Memory::layout`) changed. A run costs O(regions it touches),
//!   not O(regions).
//! - **Helpers** are called through one `extern "C"` trampoline with a pointer to the run state;
//!   it builds the interpreter's [`HelperCtx`](bpflab_vm::helpers::HelperCtx).
//! - **Budget.** Instructions are counted per straight-line segment, not per instruction: a
//!   segment ends at the end of a basic block and after every instruction whose effect would
//!   be visible if the budget ran out right after it (helper and bpf-to-bpf calls, legacy
//!   packet loads, stores other than to the frame's own stack, and in checked mode loads,
//!   which may fault). A run that exhausts the budget therefore faults at the interpreter's
//!   instruction with the interpreter's memory, maps and output; counts of complete runs are
//!   equal. Functions without cycles and calls are compiled without checks at all, behind one
//!   check at their entry: entered with less budget left than they have instructions, they
//!   run a variant with the checks instead (compiled on first use). In trusted mode loads do
//!   not end segments: a verified program's loads do not fault.
//!
//! All `unsafe` code is in the `runtime` and `module` modules, each block with its reason.
#![deny(unsafe_code)]

mod analysis;
mod instance;
mod module;
pub mod oracle;
mod runtime;
mod translate;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, Weak};

use bpflab_vm::helpers::HelperRegistry;
use bpflab_vm::interp::LoadError;
use bpflab_vm::spec::Collection;
use bpflab_vm::{Config, Engine, EngineError, Interpreter, Loaded};
use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::settings::{self, Configurable};

pub use instance::JitInstance;
pub use module::CompileStats;
use module::{CacheKey, Compiled, Contexts};

/// How compiled code checks memory accesses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Every access is checked as the interpreter checks it: bounds, the packet window,
    /// permissions, alignment. Faults are the interpreter's typed errors at the same pc.
    #[default]
    Checked,
    /// For programs the kernel verifier accepted: accesses are only checked to stay inside
    /// their region's buffer (memory safety of the host), not for permission, alignment or the
    /// packet window. Programs the verifier would refuse may then behave differently from the
    /// interpreter (a store to read-only data succeeds), but never touch memory outside the
    /// world's regions.
    Trusted,
}

/// Code generation effort.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum OptLevel {
    /// Cranelift's optimizer and its best register allocator (the default).
    #[default]
    Speed,
    /// Fastest compilation: no optimizations, single-pass register allocation.
    Fast,
}

/// The JIT's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JitConfig {
    /// Checked or trusted memory accesses.
    pub mode: Mode,
    /// Limits shared with the interpreter (instruction budget, program size, CPUs).
    pub vm: Config,
    /// Code generation effort.
    pub opt: OptLevel,
    /// Reuse compiled code for collections whose lowered code is the same (on by default).
    pub cache: bool,
}

impl Default for JitConfig {
    fn default() -> JitConfig {
        JitConfig {
            mode: Mode::default(),
            vm: Config::default(),
            opt: OptLevel::default(),
            cache: true,
        }
    }
}

impl JitConfig {
    /// The default limits in `mode`.
    pub fn with_mode(mode: Mode) -> JitConfig {
        JitConfig { mode, ..JitConfig::default() }
    }
}

/// Why the JIT could not prepare a collection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JitError {
    /// The interpreter refused the collection (the JIT compiles its lowered code).
    #[error(transparent)]
    Load(#[from] LoadError),
    /// Cranelift does not support this host.
    #[error("host machine not supported by cranelift: {0}")]
    Host(String),
    /// Cranelift failed to compile a function.
    #[error("compiling program {prog} at instruction {pc}: {message}")]
    Compile {
        /// The program index.
        prog: usize,
        /// The function's entry instruction.
        pc: usize,
        /// Cranelift's message.
        message: String,
    },
    /// Cranelift failed to place the compiled code in memory.
    #[error("finalizing code: {0}")]
    Finalize(String),
}

impl From<JitError> for EngineError {
    fn from(e: JitError) -> EngineError {
        match e {
            JitError::Load(e) => EngineError::Load(e),
            other => EngineError::Backend { engine: "jit", source: Box::new(other) },
        }
    }
}

/// The JIT engine: compiles collections and keeps a cache of compiled code keyed by the
/// lowered code's content, the mode and the budget.
pub struct JitEngine {
    config: JitConfig,
    helpers: Arc<HelperRegistry>,
    isa: OwnedTargetIsa,
    cache: Mutex<Cache>,
    /// Cranelift contexts, reused between compilations.
    contexts: Mutex<Vec<Contexts>>,
}

/// Compiled code by content: every live compilation is found again, and the most recent ones
/// are kept alive even without instances (loading the same object again is then free).
#[derive(Default)]
struct Cache {
    live: HashMap<CacheKey, Weak<Compiled>>,
    recent: VecDeque<Arc<Compiled>>,
}

/// Compilations the cache keeps alive without instances.
const CACHE_RECENT: usize = 16;

impl std::fmt::Debug for JitEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JitEngine").field("config", &self.config).finish_non_exhaustive()
    }
}

impl JitEngine {
    /// A JIT with `config` whose programs call `helpers`.
    pub fn new(config: JitConfig, helpers: Arc<HelperRegistry>) -> Result<JitEngine, JitError> {
        let isa = make_isa(config.opt)?;
        Ok(JitEngine {
            config,
            helpers,
            isa,
            cache: Mutex::new(Cache::default()),
            contexts: Mutex::new(Vec::new()),
        })
    }

    /// A JIT in `mode` with the default limits and the standard helpers.
    pub fn with_mode(mode: Mode) -> Result<JitEngine, JitError> {
        JitEngine::new(JitConfig::with_mode(mode), bpflab_vm::standard_helpers())
    }

    /// The engine's settings.
    pub fn config(&self) -> &JitConfig {
        &self.config
    }

    /// Creates the maps of `collection` and compiles its programs (or takes them from the
    /// cache).
    pub fn instantiate(&self, collection: &Collection) -> Result<JitInstance, JitError> {
        let interp = Interpreter::new(self.config.vm, Arc::clone(&self.helpers));
        let instance = interp.instantiate(collection)?;
        let compiled = if self.config.cache {
            let key = CacheKey::new(&instance, self.config.mode);
            let cached = {
                let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
                cache.live.get(&key).and_then(Weak::upgrade)
            };
            match cached {
                Some(c) => c,
                None => {
                    let c = Arc::new(self.build(&instance)?);
                    let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
                    if cache.recent.len() >= CACHE_RECENT {
                        cache.recent.pop_front();
                    }
                    cache.recent.push_back(Arc::clone(&c));
                    cache.live.retain(|_, w| w.strong_count() > 0);
                    cache.live.insert(key, Arc::downgrade(&c));
                    c
                }
            }
        } else {
            Arc::new(self.build(&instance)?)
        };
        Ok(JitInstance::new(instance, compiled, self.isa.clone(), self.config.mode))
    }

    /// Compiles `instance`'s code with pooled Cranelift contexts.
    fn build(&self, instance: &bpflab_vm::interp::Instance) -> Result<Compiled, JitError> {
        let pooled = self.contexts.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut cx = pooled.unwrap_or_else(Contexts::new);
        let built = Compiled::build(&self.isa, instance, self.config.mode, &mut cx);
        self.contexts.lock().unwrap_or_else(|p| p.into_inner()).push(cx);
        built
    }

    /// Number of compiled collections the cache can hand out again.
    pub fn cached(&self) -> usize {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.live.values().filter(|w| w.strong_count() > 0).count()
    }

    /// Drops the compiled code the cache keeps alive (code still used by instances stays).
    pub fn clear_cache(&self) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.recent.clear();
        cache.live.retain(|_, w| w.strong_count() > 0);
    }
}

impl Default for JitEngine {
    /// A checked JIT with the standard helpers.
    ///
    /// # Panics
    /// If Cranelift does not support the host (every 64-bit host Cranelift targets works).
    fn default() -> JitEngine {
        JitEngine::with_mode(Mode::Checked).expect("cranelift supports this host")
    }
}

impl Engine for JitEngine {
    fn name(&self) -> &'static str {
        "jit"
    }

    fn load(&self, collection: &Collection) -> Result<Box<dyn Loaded>, EngineError> {
        Ok(Box::new(self.instantiate(collection)?))
    }
}

/// The host ISA with bpflab's settings.
fn make_isa(opt: OptLevel) -> Result<OwnedTargetIsa, JitError> {
    let host = |e: &dyn std::fmt::Display| JitError::Host(e.to_string());
    let mut flags = settings::builder();
    let (level, regalloc) = match opt {
        OptLevel::Speed => ("speed", "backtracking"),
        OptLevel::Fast => ("none", "single_pass"),
    };
    let verify = if cfg!(debug_assertions) { "true" } else { "false" };
    for (name, value) in [
        ("opt_level", level),
        ("regalloc_algorithm", regalloc),
        ("enable_verifier", verify),
        ("use_colocated_libcalls", "false"),
        ("is_pic", "false"),
    ] {
        flags.set(name, value).map_err(|e| host(&e))?;
    }
    let builder = cranelift_native::builder().map_err(|e| host(&e))?;
    builder.finish(settings::Flags::new(flags)).map_err(|e| host(&e))
}
