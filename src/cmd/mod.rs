//! The subcommands.

mod bench;
mod conformance;
mod helpers;
mod kernel;
mod object;
mod run;
mod text;
mod verify;

pub(crate) use bench::{BenchArgs, bench};
pub(crate) use conformance::{PluginArgs, conformance_plugin};
pub(crate) use helpers::helpers;
pub(crate) use kernel::features as kernel_features;
pub(crate) use object::{LoadArgs, inspect};
pub(crate) use run::{RunArgs, run};
pub(crate) use text::{asm, disasm};
pub(crate) use verify::{VerifyArgs, verify};

/// A subcommand's failure, printed as `error: ...`.
pub(crate) type CmdResult = Result<(), Box<dyn std::error::Error>>;

/// Writes `text` to standard output; a closed pipe (`bpflab disasm x | head`) is not an error.
pub(crate) fn emit(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}
