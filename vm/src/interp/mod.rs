//! The checked interpreter: every memory access goes through [`Memory`](crate::memory::Memory),
//! every fault is a typed [`VmError`] naming the instruction, and an instruction budget bounds
//! every run (callbacks and tail calls included).

mod exec;
mod lower;

use std::sync::Arc;

use crate::ctx::{self, Target};
use crate::engine::{Engine, EngineError, Loaded, ProgType, Program, RunInput, RunOutcome};
use crate::helpers::{HelperError, HelperRegistry};
use crate::isa::PseudoSrc;
use crate::kfunc::KfuncTable;
use crate::memory::{MemError, Perm, RegionId, RegionKind};
use crate::spec::Collection;
use crate::world::{World, WorldError};

pub use lower::{Code, SENTINEL, Slot};

/// Limits of the interpreter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Instructions one run may execute before it is stopped.
    pub insn_budget: u64,
    /// Maximum number of instruction slots in a program (the kernel's BPF_COMPLEXITY_LIMIT_INSNS).
    pub max_insns: usize,
    /// Number of simulated CPUs.
    pub ncpus: u32,
}

impl Default for Config {
    fn default() -> Config {
        Config { insn_budget: 10_000_000, max_insns: 1_000_000, ncpus: 1 }
    }
}

/// The kernel's limit on chained tail calls (`MAX_TAIL_CALL_CNT`).
pub const MAX_TAIL_CALLS: u32 = 33;

/// Why a program cannot be prepared for running.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// The program has no instructions.
    #[error("program is empty")]
    Empty,
    /// The program has more slots than the limit.
    #[error("program has {len} instructions, limit is {max}")]
    TooLarge {
        /// Slot count.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A jump or call lands outside the program or inside an LD_IMM64.
    #[error("instruction {pc}: jump target {target} is {why}")]
    BadTarget {
        /// Slot of the branch.
        pc: usize,
        /// The slot it lands on.
        target: i64,
        /// "out of range" or "the middle of ld_imm64".
        why: &'static str,
    },
    /// An LD_IMM64 refers to something the interpreter cannot resolve (a map that does not
    /// exist, a kernel BTF object).
    #[error("instruction {pc}: ld_imm64 with unresolved {src:?} source (imm {imm})")]
    Unresolved {
        /// Slot of the load.
        pc: usize,
        /// The pseudo source.
        src: PseudoSrc,
        /// Its immediate (map index or fd, BTF id).
        imm: i32,
    },
    /// A map of the collection could not be created.
    #[error("{0}")]
    Map(String),
    /// The address space ran out of regions.
    #[error(transparent)]
    Memory(#[from] MemError),
}

impl From<WorldError> for LoadError {
    fn from(e: WorldError) -> LoadError {
        LoadError::Map(e.to_string())
    }
}

/// What went wrong while running.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VmErrorKind {
    /// A load, store or atomic was refused.
    #[error(transparent)]
    Memory(#[from] MemError),
    /// The run executed more instructions than the budget allows.
    #[error("instruction budget of {budget} exhausted")]
    BudgetExhausted {
        /// The budget.
        budget: u64,
    },
    /// A bpf-to-bpf call (or callback) would exceed the frame limit.
    #[error("call depth exceeds {max} frames")]
    CallDepth {
        /// The limit.
        max: usize,
    },
    /// A call names a helper that is not registered.
    #[error(
        "helper {id} ({name}) is not supported by bpflab",
        name = crate::helper_names::helper_name(*.id).unwrap_or("not a kernel helper")
    )]
    UnknownHelper {
        /// The helper id.
        id: i64,
    },
    /// A helper refused its arguments.
    #[error("helper {name}: {error}")]
    Helper {
        /// The helper's name.
        name: &'static str,
        /// What it refused.
        error: HelperError,
    },
    /// A call to a kernel function by a BTF id the program's object does not name (a raw
    /// program's `call kfunc N`): bpflab looks kfuncs up by name.
    #[error("kfunc call (btf id {btf_id}) is not supported: no kfunc name is known for it")]
    Kfunc {
        /// The kfunc's BTF id.
        btf_id: i64,
    },
    /// A call to a kfunc the program's object names, which bpflab does not implement.
    #[error("kfunc {name} (btf id {btf_id}) is not implemented")]
    UnknownKfunc {
        /// The kfunc's name.
        name: String,
        /// Its BTF id.
        btf_id: i64,
    },
    /// A kfunc refused its arguments or the program's type.
    #[error("kfunc {name}: {error}")]
    KfuncFailed {
        /// The kfunc's name.
        name: &'static str,
        /// What it refused.
        error: HelperError,
    },
    /// A callback address does not point to the start of an instruction.
    #[error("callback address {addr:#x} is not a function")]
    BadCallback {
        /// The address.
        addr: u64,
    },
    /// LD_ABS/LD_IND in a program type without legacy packet access (the kernel allows them in
    /// socket filters and tc programs only).
    #[error("LD_ABS/LD_IND is only available to socket filter and tc programs")]
    NoLegacyPacketAccess,
    /// Execution reached a slot that is not an instruction (the second half of LD_IMM64).
    #[error("slot is not an instruction (inside ld_imm64)")]
    NotAnInstruction,
    /// Execution ran past the last instruction.
    #[error("execution fell off the end of the program")]
    FellOffEnd,
}

/// A fault while running, with the slot index of the faulting instruction.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("instruction {}: {}", .0.pc, .0.kind)]
pub struct VmError(Box<VmErrorInner>);

#[derive(Clone, Debug, PartialEq, Eq)]
struct VmErrorInner {
    pc: usize,
    kind: VmErrorKind,
}

impl VmError {
    /// A fault of `kind` at slot `pc`.
    pub fn new(pc: usize, kind: VmErrorKind) -> VmError {
        VmError(Box::new(VmErrorInner { pc, kind }))
    }

    /// The slot index of the faulting instruction.
    pub fn pc(&self) -> usize {
        self.0.pc
    }

    /// What went wrong.
    pub fn kind(&self) -> &VmErrorKind {
        &self.0.kind
    }
}

/// The interpreter engine.
#[derive(Clone, Debug)]
pub struct Interpreter {
    config: Config,
    helpers: Arc<HelperRegistry>,
}

impl Default for Interpreter {
    fn default() -> Interpreter {
        Interpreter::new(Config::default(), Arc::new(HelperRegistry::standard()))
    }
}

impl Interpreter {
    /// An interpreter with these limits and helpers.
    pub fn new(config: Config, helpers: Arc<HelperRegistry>) -> Interpreter {
        Interpreter { config, helpers }
    }

    /// Creates the maps of `collection` and prepares all its programs.
    pub fn instantiate(&self, collection: &Collection) -> Result<Instance, LoadError> {
        let mut world = World::new(&collection.maps, self.config.ncpus)?;
        // Code regions first, so function addresses of every program are known when lowering.
        let mut code_regions = Vec::with_capacity(collection.programs.len());
        for _ in &collection.programs {
            code_regions.push(world.mem.alloc(RegionKind::Code, Vec::new(), Perm::None)?);
        }
        let mut codes = Vec::with_capacity(collection.programs.len());
        for (program, &region) in collection.programs.iter().zip(&code_regions) {
            codes.push(lower::lower(program, &self.config, &mut world, region)?);
        }
        Ok(Instance {
            world,
            codes,
            names: collection.programs.iter().map(|p| p.name.clone()).collect(),
            prog_types: collection.programs.iter().map(|p| p.prog_type).collect(),
            gpl_compatible: collection
                .programs
                .iter()
                .map(|p| crate::helpers::license_is_gpl_compatible(&p.license))
                .collect(),
            untyped: collection.programs.iter().map(untyped_section).collect(),
            targets: collection.programs.iter().map(Target::of).collect(),
            code_regions,
            config: self.config,
            helpers: Arc::clone(&self.helpers),
            kfuncs: Arc::new(KfuncTable::resolve(&collection.kfuncs)),
        })
    }

    /// Prepares a single program with no maps.
    pub fn prepare(&self, program: &Program) -> Result<Prepared, LoadError> {
        let collection = Collection::single(program.clone());
        Ok(Prepared { instance: self.instantiate(&collection)? })
    }
}

impl Engine for Interpreter {
    fn name(&self) -> &'static str {
        "interp"
    }

    fn load(&self, collection: &Collection) -> Result<Box<dyn Loaded>, EngineError> {
        Ok(Box::new(self.instantiate(collection)?))
    }
}

/// The programs of a collection, ready to run, with the world they share.
#[derive(Debug)]
pub struct Instance {
    /// Maps, memory and environment.
    pub world: World,
    codes: Vec<Code>,
    names: Vec<String>,
    prog_types: Vec<ProgType>,
    /// Per program, whether its license lets it call GPL-only helpers.
    gpl_compatible: Vec<bool>,
    /// Per program, the section of a program without a type from an object (a section name
    /// libbpf does not know), which must not run in raw mode.
    untyped: Vec<Option<String>>,
    targets: Vec<Target>,
    code_regions: Vec<RegionId>,
    config: Config,
    helpers: Arc<HelperRegistry>,
    kfuncs: Arc<KfuncTable>,
}

impl Instance {
    /// The index of the program named `name`.
    pub fn program_index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// The lowered code of every program (map and function references resolved against
    /// [`Instance::world`]), for engines that compile it.
    pub fn codes(&self) -> &[Code] {
        &self.codes
    }

    /// The region whose addresses stand for program `prog`'s instructions (callback targets).
    pub fn code_region(&self, prog: usize) -> Option<RegionId> {
        self.code_regions.get(prog).copied()
    }

    /// The context target (program type, attach type) of program `prog`.
    pub fn target(&self, prog: usize) -> Option<Target> {
        self.targets.get(prog).copied()
    }

    /// The helper registry the programs call into.
    pub fn helpers(&self) -> &Arc<HelperRegistry> {
        &self.helpers
    }

    /// The kfuncs the programs call, by BTF id.
    pub fn kfuncs(&self) -> &Arc<KfuncTable> {
        &self.kfuncs
    }

    /// Whether program `prog`'s license is GPL-compatible (kfuncs and GPL-only helpers need
    /// it); true for an index out of range.
    pub fn gpl_compatible(&self, prog: usize) -> bool {
        self.gpl_compatible.get(prog).copied().unwrap_or(true)
    }

    /// The limits the instance was prepared with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// An error if program `prog` came from an object section libbpf does not know and has no
    /// type yet: such a program runs only once typed, never in raw mode (engines call this
    /// before running).
    pub fn check_typed(&self, prog: usize) -> Result<(), EngineError> {
        match self.untyped.get(prog).and_then(Option::as_deref) {
            Some(section) => Err(EngineError::Context(crate::ctx::CtxError::Untyped {
                program: self.names[prog].clone(),
                section: section.to_string(),
            })),
            None => Ok(()),
        }
    }

    /// Number of programs.
    pub fn program_count(&self) -> usize {
        self.codes.len()
    }

    /// Runs program `prog` on `input` the way `BPF_PROG_TEST_RUN` would: builds its context
    /// (raw mode for [`ProgType::Unspec`]), runs it, and returns r0, the output packet, the
    /// context afterwards and the trace output.
    pub fn run(&mut self, prog: usize, input: &RunInput) -> Result<RunOutcome, EngineError> {
        let target = *self.targets.get(prog).ok_or_else(|| EngineError::Unsupported {
            engine: "interp",
            what: format!("program index {prog} (there are {})", self.codes.len()),
        })?;
        self.check_typed(prog)?;
        self.world.env.begin_run();
        if target.prog_type == ProgType::Unspec {
            let mut data = input.data.clone();
            let (r0, count) = self.run_raw(prog, &mut data)?;
            let trace = std::mem::take(&mut self.world.env.trace);
            let redirect = self.world.env.redirect.clone();
            return Ok(RunOutcome {
                r0,
                data,
                ctx: None,
                insn_count: Some(count),
                trace,
                redirect,
            });
        }
        let installed = ctx::install(target, input, &mut self.world.mem)?;
        let result = self.execute(prog, [installed.r1, 0, 0, 0, 0], installed.ld_abs);
        let (data, ctx_out) = self.world.uninstall_ctx(&installed);
        let (r0, count) = result?;
        let trace = std::mem::take(&mut self.world.env.trace);
        let redirect = self.world.env.redirect.clone();
        Ok(RunOutcome {
            r0,
            data: data.unwrap_or_default(),
            ctx: ctx_out,
            insn_count: Some(count),
            trace,
            redirect,
        })
    }

    /// Runs program `prog` in raw mode: r1 points to a copy of `data`, r2 holds its length.
    /// Returns r0 and the instruction count; `data` receives what the program wrote.
    pub fn run_raw(&mut self, prog: usize, data: &mut Vec<u8>) -> Result<(u64, u64), VmError> {
        let input = self
            .world
            .mem
            .alloc(RegionKind::Input, std::mem::take(data), Perm::ReadWrite)
            .map_err(|e| VmError::new(0, e.into()))?;
        let len = self.world.mem.bytes(input).len() as u64;
        let result = self.execute(prog, [input.base(), len, 0, 0, 0], Some(input));
        *data = std::mem::take(self.world.mem.bytes_mut(input));
        self.world.mem.free(input);
        result
    }

    /// Runs program `prog` from its entry with r1..r5 = `args`; `packet` is the region
    /// LD_ABS/LD_IND read. Returns r0 and the instruction count.
    pub fn execute(
        &mut self,
        prog: usize,
        args: [u64; 5],
        packet: Option<RegionId>,
    ) -> Result<(u64, u64), VmError> {
        let mut exec = exec::Exec {
            codes: &self.codes,
            code_regions: &self.code_regions,
            prog_types: &self.prog_types,
            gpl_compatible: &self.gpl_compatible,
            helpers: &self.helpers,
            kfuncs: &self.kfuncs,
            config: &self.config,
            count: 0,
            depth: 0,
            tail_calls: 0,
            packet,
        };
        let r0 = exec.run(&mut self.world, prog, 0, args)?;
        Ok((r0, exec.count))
    }
}

/// A single program ready to run in the interpreter, with a world of its own.
#[derive(Debug)]
pub struct Prepared {
    instance: Instance,
}

impl Prepared {
    /// Runs on raw memory: r1 points to a copy of `data`, r2 holds its length. Returns r0 and
    /// the instruction count; `data` receives what the program wrote.
    pub fn run_raw(&mut self, data: &mut Vec<u8>) -> Result<(u64, u64), VmError> {
        self.instance.run_raw(0, data)
    }

    /// The world the program runs in (environment, trace output, memory).
    pub fn world(&self) -> &World {
        &self.instance.world
    }

    /// The world, mutably.
    pub fn world_mut(&mut self) -> &mut World {
        &mut self.instance.world
    }
}

impl Loaded for Instance {
    fn run(&mut self, prog: usize, input: &RunInput) -> Result<RunOutcome, EngineError> {
        Instance::run(self, prog, input)
    }

    fn map_lookup(&mut self, map: usize, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        self.world.lookup(map, key).map_err(|error| EngineError::Map { map, error })
    }

    fn map_update(
        &mut self,
        map: usize,
        key: &[u8],
        value: &[u8],
        flags: u64,
    ) -> Result<(), EngineError> {
        self.world.update(map, key, value, flags).map_err(|error| EngineError::Map { map, error })
    }

    fn map_delete(&mut self, map: usize, key: &[u8]) -> Result<(), EngineError> {
        self.world.delete(map, key).map_err(|error| EngineError::Map { map, error })
    }

    fn map_keys(&mut self, map: usize) -> Result<Vec<Vec<u8>>, EngineError> {
        self.world.keys(map).map_err(|error| EngineError::Map { map, error })
    }
}

/// The section of `p` if it is an object's program without a type: raw-mode programs have no
/// section ([`Program::raw`]) or `.text` (the loader's `text_programs` option).
fn untyped_section(p: &crate::engine::Program) -> Option<String> {
    (p.prog_type == ProgType::Unspec && !p.section.is_empty() && p.section != ".text")
        .then(|| p.section.clone())
}
