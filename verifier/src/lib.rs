//! bpflab's verifier: decides, for a loaded program, what the Linux verifier decides, with
//! the kernel's limits, its error messages and its log, plus the C source line of each error.
//!
//! It interprets the program abstractly path by path as the kernel does: registers hold
//! scalars (a tnum plus signed and unsigned 64- and 32-bit bounds) or typed pointers, the
//! stack is tracked per byte, states are stored at the kernel's checkpoints and a path whose
//! state is covered by a stored one is pruned. What bpflab does not model yet ends the
//! verification with [`Verdict::Unsupported`], never with a guess.
#![forbid(unsafe_code)]

pub mod bounds;
mod call;
pub mod cfg;
mod check;
pub mod config;
mod dynptr;
pub mod error;
mod kfunc;
mod ksym;
mod log;
mod mem;
mod prune;
pub mod report;
pub mod state;
pub mod tnum;

pub use config::{Config, Flags};
pub use error::{ErrorKind, SourceLine, Unsupported, Verdict, VerifyError};
pub use report::{Report, Stats};

use bpflab_vm::Collection;
use bpflab_vm::helpers::HelperRegistry;

/// Verifies program `index` of `collection` (its maps, BTF and kfuncs) as the kernel would
/// load it, calling helpers as `helpers` describes them (prototypes and, through a kernel
/// profile, availability per program type).
pub fn verify(
    collection: &Collection,
    index: usize,
    helpers: &HelperRegistry,
    config: &Config,
) -> Report {
    let started = std::time::Instant::now();
    let Some(program) = collection.programs.get(index) else {
        return Report {
            program: String::new(),
            verdict: Verdict::Rejected(VerifyError::program(
                ErrorKind::Other,
                format!("no program {index}: the collection has {}", collection.programs.len()),
            )),
            stats: Stats::default(),
            log: String::new(),
        };
    };
    let mut log = log::Log::new(config.log_level, collection, program);
    let mut depth = Vec::new();
    let (verdict, mut stats) = match cfg::analyze_in(collection, index, helpers, config) {
        Err(mut e) => {
            log.cfg_error_header(program, &e.message);
            if e.line.is_none() {
                e.line = e.insn.and_then(|i| log.source_line(i));
            }
            (Verdict::Rejected(e), Stats::default())
        }
        Ok(cfg) => match entry_state(program) {
            Err(u) => (Verdict::Unsupported(u), Stats::default()),
            Ok(entry) => {
                log.header(&cfg, program);
                let mut v = check::Verifier::new(collection, program, helpers, config, cfg, log);
                let verdict = match v.run(entry) {
                    Ok(()) => Verdict::Accepted,
                    Err(error::Stop::Reject(e)) => Verdict::Rejected(e),
                    Err(error::Stop::Unsupported(u)) => Verdict::Unsupported(u),
                };
                log = v.log;
                depth = v.stack_depth;
                (verdict, v.stats)
            }
        },
    };
    stats.verification_usec = started.elapsed().as_micros() as u64;
    log.finish(&verdict, &stats, config.max_processed_insns, &depth);
    Report { program: program.name.clone(), verdict, stats, log: log.text }
}

/// The state at the program's entry: r1 is the context (every program type the kernel
/// loads has one).
fn entry_state(program: &bpflab_vm::Program) -> Result<state::State, Unsupported> {
    if program.prog_type == bpflab_vm::ProgType::Unspec {
        return Err(Unsupported {
            feature: format!(
                "program {:?} has no program type (section {:?})",
                program.name, program.section
            ),
            insn: None,
        });
    }
    Ok(state::State::entry(state::Reg::ptr(state::PtrKind::Ctx)))
}
