//! The `bpflab` command line.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

mod cmd;

/// Test eBPF programs offline, the way the kernel would run them.
#[derive(Parser, Debug)]
#[command(name = "bpflab", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Which engine runs the program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum EngineKind {
    /// The checked interpreter.
    Interp,
    /// The Cranelift JIT, in checked mode (every access checked, as the interpreter does).
    Jit,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Show what an object file holds: programs, maps, globals, relocations, BTF.
    Inspect {
        /// An eBPF object file built by clang.
        object: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        load: cmd::LoadArgs,
    },
    /// Print a program as assembly text (kernel / bpftool syntax): an object's programs with
    /// their source lines, or raw bytecode.
    Disasm {
        /// An eBPF object file, or raw bytecode (8 bytes per instruction slot).
        file: PathBuf,
        /// Only this program of the object.
        #[arg(long)]
        prog: Option<String>,
        /// Print JSON: one object per instruction with its slot, text (and bytes or source).
        #[arg(long)]
        json: bool,
        /// Show the native code the JIT generates instead (like `bpftool prog dump jited`).
        #[arg(long, conflicts_with = "json")]
        jited: bool,
        #[command(flatten)]
        load: cmd::LoadArgs,
    },
    /// Assemble text into raw bytecode.
    Asm {
        /// Assembly text, one instruction per line, labels allowed.
        file: PathBuf,
        /// Write the bytecode here; without it, print it as hex, one instruction per line.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Print JSON (with the hex bytecode) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List the kernel's helpers: which bpflab implements, which program types may call each,
    /// their prototypes (Markdown, as in docs/HELPERS.md).
    Helpers {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Ask the running kernel what it supports.
    #[command(subcommand)]
    Kernel(KernelCommand),
    /// Run raw bytecode with r1 = the memory and r2 = its length; print r0.
    Run(Box<cmd::RunArgs>),
    /// Time a program's runs on the interpreter, the JIT or both.
    ///
    /// Reports the mean, median and minimum time per run, the instructions per run, the last
    /// run's r0 and the JIT's compile time. Takes `run`'s program and input options. The
    /// inputs run in turn, and map state carries over from run to run, warm-up runs included
    /// (like the kernel's test-run `repeat`).
    Bench(Box<cmd::BenchArgs>),
    /// Say whether the kernel's verifier would load an object's programs.
    ///
    /// Prints each program's verdict with the kernel's error, the C source line and the
    /// kernel's stats line (bpflab's verifier; `--kernel` asks this machine's kernel too).
    /// Exit status: 0 all accepted, 1 any rejected, 2 no verdict (docs/VERIFIER.md).
    Verify(Box<cmd::VerifyArgs>),
    /// Act as a bpf_conformance plugin: program hex on stdin, memory hex as the first
    /// argument, r0 in hex on stdout.
    ConformancePlugin(cmd::PluginArgs),
}

/// `bpflab kernel ...`.
#[derive(Subcommand, Debug)]
enum KernelCommand {
    /// Probe the running kernel as `bpftool feature probe` does: program and map types,
    /// helpers per program type, BPF_PROG_TEST_RUN, kprobe/fentry attachment, kernel config.
    /// `--json` prints the kernel profile `--kernel-profile FILE` reads.
    Features {
        /// Print JSON (a kernel profile).
        #[arg(long)]
        json: bool,
        /// Print this profile instead of the running kernel's: `bpflab` (the kernel bpflab
        /// models), `running`, or a profile FILE.
        #[arg(long, value_name = "bpflab|running|FILE", default_value = "running")]
        kernel_profile: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect { object, json, load } => cmd::inspect(&object, json, &load),
        Command::Disasm { file, prog, json, jited, load } => {
            cmd::disasm(&file, prog.as_deref(), json, jited, &load)
        }
        Command::Asm { file, output, json } => cmd::asm(&file, output.as_deref(), json),
        Command::Helpers { json } => cmd::helpers(json),
        Command::Kernel(KernelCommand::Features { json, kernel_profile }) => {
            cmd::kernel_features(json, &kernel_profile)
        }
        Command::Run(args) => cmd::run(&args),
        Command::Bench(args) => cmd::bench(&args),
        Command::ConformancePlugin(args) => return cmd::conformance_plugin(&args),
        Command::Verify(args) => return cmd::verify(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
