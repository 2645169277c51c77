//! One loaded collection on the engine the user chose: the interpreter or the JIT (checked
//! mode). Both expose the same world (maps, environment) for the CLI's map state options.

use bpflab_jit::{CompileStats, JitConfig, JitEngine, JitInstance, Mode};
use bpflab_vm::engine::{EngineError, Loaded, RunInput, RunOutcome};
use bpflab_vm::interp::{Config, Instance};
use bpflab_vm::world::World;
use std::sync::Arc;

use bpflab_vm::helpers::HelperRegistry;
use bpflab_vm::{Collection, Interpreter, standard_helpers};

/// A collection loaded into the interpreter or the JIT.
#[derive(Debug)]
pub enum Machine {
    /// The checked interpreter.
    Interp(Box<Instance>),
    /// The Cranelift JIT in checked mode.
    Jit(Box<JitInstance>),
}

impl Machine {
    /// Loads `collection` into the interpreter, or the JIT when `jit` is set.
    pub fn load(
        collection: &Collection,
        config: Config,
        jit: bool,
    ) -> Result<Machine, Box<dyn std::error::Error>> {
        Machine::load_with_helpers(collection, config, jit, standard_helpers())
    }

    /// Like [`Machine::load`], with the helpers `helpers` holds (for example the standard ones
    /// as a kernel profile has them: [`crate::profile::helpers_for`]).
    pub fn load_with_helpers(
        collection: &Collection,
        config: Config,
        jit: bool,
        helpers: Arc<HelperRegistry>,
    ) -> Result<Machine, Box<dyn std::error::Error>> {
        if jit {
            let jc = JitConfig { vm: config, ..JitConfig::with_mode(Mode::Checked) };
            let engine = JitEngine::new(jc, helpers)?;
            Ok(Machine::Jit(Box::new(engine.instantiate(collection)?)))
        } else {
            let interp = Interpreter::new(config, helpers);
            Ok(Machine::Interp(Box::new(interp.instantiate(collection)?)))
        }
    }

    /// Runs program `prog` on `input`.
    pub fn run(&mut self, prog: usize, input: &RunInput) -> Result<RunOutcome, EngineError> {
        match self {
            Machine::Interp(i) => i.run(prog, input),
            Machine::Jit(j) => j.run(prog, input),
        }
    }

    /// The world the programs run in.
    pub fn world_mut(&mut self) -> &mut World {
        match self {
            Machine::Interp(i) => &mut i.world,
            Machine::Jit(j) => j.world_mut(),
        }
    }

    /// The engine's map interface.
    pub fn loaded(&mut self) -> &mut dyn Loaded {
        match self {
            Machine::Interp(i) => i.as_mut(),
            Machine::Jit(j) => j.as_mut(),
        }
    }

    /// Size and time of the JIT's compilation (`None` on the interpreter, which compiles
    /// nothing).
    pub fn compile_stats(&self) -> Option<CompileStats> {
        match self {
            Machine::Interp(_) => None,
            Machine::Jit(j) => Some(j.compile_stats()),
        }
    }
}
