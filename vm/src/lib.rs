//! bpflab's virtual machine: the eBPF instruction set, the checked memory model, helpers and
//! the interpreter, plus the [`Engine`] interface every engine implements.
#![forbid(unsafe_code)]

pub mod asm;
mod builtin;
pub mod ctx;
pub mod engine;
pub mod env;
pub mod helper_names;
pub mod helpers;
pub mod interp;
pub mod isa;
pub mod kfunc;
pub mod kobj;
pub mod maps;
pub mod memory;
pub mod profile;
pub mod sock;
pub mod spec;
pub mod world;

pub use engine::{Engine, EngineError, Loaded, ProgType, Program, RunInput, RunOutcome};
pub use interp::{Config, Interpreter, LoadError, VmError, VmErrorKind};
pub use spec::{Collection, MapSpec, MapType};

/// The standard helper registry, shared.
pub fn standard_helpers() -> std::sync::Arc<helpers::HelperRegistry> {
    std::sync::Arc::new(helpers::HelperRegistry::standard())
}
