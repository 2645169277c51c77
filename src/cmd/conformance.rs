//! `bpflab conformance-plugin`: the plugin protocol of the bpf_conformance runner.
//!
//! The runner starts the plugin once per test. When the test has input memory, the first
//! argument is that memory as space-separated hex bytes; plugin options follow. The program
//! arrives on stdin as space-separated hex bytes. The plugin prints r0 in hex and exits 0, or
//! exits non-zero with the reason on stderr.

use std::io::Read;
use std::process::ExitCode;

use bpflab::input::parse_hex;
use bpflab::machine::Machine;
use bpflab_loader::{LoadOptions, TargetBtf};
use bpflab_vm::engine::RunInput;
use bpflab_vm::interp::Config;
use bpflab_vm::isa::decode_bytes;
use bpflab_vm::{Collection, Program};
use clap::Args;

use crate::EngineKind;

/// Arguments of `bpflab conformance-plugin`.
#[derive(Args, Debug)]
pub(crate) struct PluginArgs {
    /// Input memory as hex bytes (absent when the test has none).
    memory: Option<String>,
    /// The runner's ELF mode: stdin holds an ELF object (as hex) whose program is `main`.
    #[arg(long)]
    elf: bool,
    /// Engine to run on.
    #[arg(long, value_enum, default_value_t = EngineKind::Interp)]
    engine: EngineKind,
    /// Instruction budget.
    #[arg(long, default_value_t = Config::default().insn_budget)]
    budget: u64,
}

/// Runs one conformance test case; the exit code is the protocol's verdict.
pub(crate) fn conformance_plugin(args: &PluginArgs) -> ExitCode {
    match run_case(args) {
        Ok(r0) => {
            println!("{r0:x}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn run_case(args: &PluginArgs) -> Result<u64, Box<dyn std::error::Error>> {
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text)?;
    let bytes = parse_hex(&text)?;
    let mut mem = match &args.memory {
        Some(hex) => parse_hex(hex)?,
        None => Vec::new(),
    };
    if args.elf {
        return run_elf(args, &bytes, mem);
    }
    let insns = decode_bytes(&bytes)?;
    let collection = Collection::single(Program::raw("conformance", insns));
    run_program(args, &collection, 0, std::mem::take(&mut mem))
}

/// Runs program `prog` of `collection` on the memory with the chosen engine; returns r0.
fn run_program(
    args: &PluginArgs,
    collection: &Collection,
    prog: usize,
    mem: Vec<u8>,
) -> Result<u64, Box<dyn std::error::Error>> {
    let config = Config { insn_budget: args.budget, ..Config::default() };
    let mut machine = Machine::load(collection, config, args.engine == EngineKind::Jit)?;
    Ok(machine.run(prog, &RunInput::data(mem))?.r0)
}

/// `--elf`: the runner sends an object whose program is `main`, in `.text` (raw mode: r1 =
/// memory, r2 = length) or in `xdp` (the runner's XDP prolog: the memory is the packet).
fn run_elf(
    args: &PluginArgs,
    bytes: &[u8],
    mem: Vec<u8>,
) -> Result<u64, Box<dyn std::error::Error>> {
    let opts =
        LoadOptions { text_programs: true, target_btf: TargetBtf::None, ..LoadOptions::default() };
    let obj = bpflab_loader::load(bytes, &opts)?;
    let prog = obj
        .collection
        .programs
        .iter()
        .position(|p| p.name == "main")
        .or((obj.collection.programs.len() == 1).then_some(0))
        .ok_or("the object has no program named main")?;
    run_program(args, &obj.collection, prog, mem)
}
