//! `bpflab run`: raw bytecode with r1 = memory, r2 = its length.

use std::path::PathBuf;

use bpflab::input::{parse_hex, read_asm, read_bytecode, read_file, to_hex};
use bpflab_vm::interp::Config;
use bpflab_vm::isa::decode_bytes;
use bpflab_vm::{Interpreter, Program};
use clap::Args;
use serde_json::json;

use super::{CmdResult, emit};
use crate::EngineKind;

/// Arguments of `bpflab run`.
#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("program").required(true).args(["raw", "hex", "asm"])))]
pub(crate) struct RunArgs {
    /// Raw bytecode file (8 bytes per instruction slot).
    #[arg(long, value_name = "FILE")]
    raw: Option<PathBuf>,
    /// The program as hex bytes.
    #[arg(long, value_name = "HEX")]
    hex: Option<String>,
    /// An assembly text file.
    #[arg(long, value_name = "FILE")]
    asm: Option<PathBuf>,
    /// Initial memory as hex bytes (r1 points to it, r2 holds its length).
    #[arg(long, value_name = "HEX", conflicts_with = "mem_file")]
    mem: Option<String>,
    /// Initial memory read from a binary file (a packet, for example).
    #[arg(long, value_name = "FILE")]
    mem_file: Option<PathBuf>,
    /// Instruction budget; the run stops with an error past it.
    #[arg(long, default_value_t = Config::default().insn_budget)]
    budget: u64,
    /// Engine to run on.
    #[arg(long, value_enum, default_value_t = EngineKind::Interp)]
    engine: EngineKind,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Runs a raw program and prints r0, the instruction count and the memory afterwards.
pub(crate) fn run(args: &RunArgs) -> CmdResult {
    let insns = match (&args.raw, &args.hex, &args.asm) {
        (Some(path), _, _) => read_bytecode(path)?,
        (_, Some(hex), _) => decode_bytes(&parse_hex(hex)?)?,
        (_, _, Some(path)) => read_asm(path)?,
        _ => unreachable!("clap requires one program source"),
    };
    let mut mem = match (&args.mem, &args.mem_file) {
        (Some(hex), _) => parse_hex(hex)?,
        (_, Some(path)) => read_file(path)?,
        _ => Vec::new(),
    };
    let before = mem.clone();
    let EngineKind::Interp = args.engine;
    let config = Config { insn_budget: args.budget, ..Config::default() };
    let interp = Interpreter::new(config, bpflab_vm::standard_helpers());
    let mut prepared = interp.prepare(&Program::raw("cli", insns))?;
    let (r0, count) = prepared.run_raw(&mut mem)?;
    if args.json {
        let doc = json!({
            "r0": r0,
            "r0_hex": format!("{r0:#x}"),
            "insn_count": count,
            "memory": to_hex(&mem),
            "trace": prepared.world().env.trace,
        });
        emit(&(serde_json::to_string_pretty(&doc)? + "\n"))?;
    } else {
        let mut text = String::new();
        for line in &prepared.world().env.trace {
            text += &format!("trace: {}\n", line.trim_end_matches('\n'));
        }
        text += &format!("r0 = {r0:#x} ({})\ninstructions: {count}\n", r0 as i64);
        if mem != before {
            text += &format!("memory: {}\n", to_hex(&mem));
        }
        emit(&text)?;
    }
    Ok(())
}
