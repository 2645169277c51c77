//! `bpflab run`: an object's program on packets, a pcap or a context; or raw bytecode with
//! r1 = memory, r2 = its length.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bpflab::input::{parse_hex, read_asm, read_bytecode, read_file, to_hex};
use bpflab::machine::Machine;
use bpflab::object::{apply_initial_values, dumpable};
use bpflab_jit::{JitConfig, JitEngine, Mode};
use bpflab_loader::Object;
use bpflab_vm::ctx::verdict_name;
use bpflab_vm::engine::{ProgType, RunInput, RunOutcome};
use bpflab_vm::interp::Config;
use bpflab_vm::isa::decode_bytes;
use bpflab_vm::world::MapChange;
use bpflab_vm::{Collection, Program};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};

use super::object::{LoadArgs, load_object, program_index};
use super::{CmdResult, emit};
use crate::EngineKind;

/// What to run and on what, shared by `run` and `bench`: an object's program with packets, a
/// pcap or a context; or raw bytecode with r1 = memory, r2 = its length.
#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("program").required(true).args(["object", "raw", "hex", "asm"])))]
pub(crate) struct Target {
    /// An eBPF object file built by clang (`clang -O2 -g -target bpf`).
    object: Option<PathBuf>,
    /// The program of the object to run (optional when it has only one).
    #[arg(long, value_name = "NAME", requires = "object")]
    prog: Option<String>,
    /// A packet as hex bytes (for packet programs: XDP, TC, socket filter, cgroup_skb).
    #[arg(long, value_name = "HEX", requires = "object")]
    packet: Vec<String>,
    /// A packet read from a binary file (one frame, as in `programs/tests/packets/`).
    #[arg(long, value_name = "FILE", requires = "object")]
    packet_file: Vec<PathBuf>,
    /// Packets from a pcap file.
    #[arg(long, value_name = "FILE", requires = "object")]
    pcap: Option<PathBuf>,
    /// The context structure's bytes (as BPF_PROG_TEST_RUN's ctx_in), read from a file.
    #[arg(long, value_name = "FILE", requires = "object")]
    ctx: Option<PathBuf>,
    /// Preload maps from a JSON state file (as `--save-maps` or `bpflab_vm::maps::json` write it).
    #[arg(long, value_name = "FILE", requires = "object")]
    maps: Option<PathBuf>,
    /// Number of simulated CPUs (per-CPU maps hold one value per CPU).
    #[arg(long, default_value_t = 1)]
    cpus: u32,
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
    #[command(flatten)]
    load: LoadArgs,
}

impl Target {
    /// The interpreter limits the arguments set (shared by both engines).
    fn config(&self) -> Config {
        Config { insn_budget: self.budget, ncpus: self.cpus.max(1), ..Config::default() }
    }
}

/// Arguments of `bpflab run`.
#[derive(Args, Debug)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    target: Target,
    /// Write the output packets of the runs that did not drop them to this pcap file.
    #[arg(long, value_name = "FILE", requires = "pcap")]
    out_pcap: Option<PathBuf>,
    /// Write every map's state after the runs to a JSON file.
    #[arg(long, value_name = "FILE", requires = "object")]
    save_maps: Option<PathBuf>,
    /// Show the map entries the runs changed: created, changed or deleted (array elements
    /// are all present; those never written read as zero, and only the ones whose value
    /// changed are listed).
    #[arg(long, requires = "object")]
    dump_maps: bool,
    /// Run each input this many times (map state carries over between runs).
    #[arg(long, default_value_t = 1)]
    repeat: u64,
    /// Engine to run on.
    #[arg(long, value_enum, default_value_t = EngineKind::Interp)]
    engine: EngineKind,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Run an object's program without verifying it first (in the checked engines, as
    /// always for programs the verifier has no verdict on).
    #[arg(long)]
    no_verify: bool,
}

/// Where the program comes from: an object file, or raw bytecode with its memory.
pub(crate) enum Source {
    /// A loaded object file.
    Object(Box<Object>),
    /// Raw bytecode (a one-program collection) and the memory r1 points to.
    Raw(Collection, Vec<u8>),
}

/// A program ready to load on an engine: its source, its index there and its inputs.
pub(crate) struct Prepared {
    /// The object or raw program.
    pub(crate) source: Source,
    /// The program's index in the collection.
    pub(crate) prog: usize,
    /// The inputs to run it on (one empty input when the arguments name none).
    pub(crate) cases: Vec<Case>,
}

impl Prepared {
    /// Reads the program and the inputs `target` names.
    pub(crate) fn new(target: &Target) -> Result<Prepared, Box<dyn std::error::Error>> {
        let Some(path) = &target.object else {
            if !target.load.prog_type.is_empty() || !target.load.map_size.is_empty() {
                return Err("--prog-type and --map-size apply to object files".into());
            }
            let insns = match (&target.raw, &target.hex, &target.asm) {
                (Some(path), _, _) => read_bytecode(path)?,
                (_, Some(hex), _) => decode_bytes(&parse_hex(hex)?)?,
                (_, _, Some(path)) => read_asm(path)?,
                _ => unreachable!("clap requires one program source"),
            };
            let mem = match (&target.mem, &target.mem_file) {
                (Some(hex), _) => parse_hex(hex)?,
                (_, Some(path)) => read_file(path)?,
                _ => Vec::new(),
            };
            let cases = vec![Case { label: "run".into(), input: RunInput::data(mem.clone()) }];
            let collection = Collection::single(Program::raw("cli", insns));
            return Ok(Prepared { source: Source::Raw(collection, mem), prog: 0, cases });
        };
        let obj = load_object(path, &target.load, target.prog.as_deref())?;
        let prog = match &target.prog {
            Some(name) => program_index(&obj, name)?,
            None if obj.collection.programs.len() == 1 => 0,
            None => return Err(program_index(&obj, "").map(|_| ()).unwrap_err()),
        };
        obj.check_runnable(prog).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Prepared { source: Source::Object(Box::new(obj)), prog, cases: cases(target)? })
    }

    /// The collection the program belongs to.
    pub(crate) fn collection(&self) -> &Collection {
        match &self.source {
            Source::Object(obj) => &obj.collection,
            Source::Raw(collection, _) => collection,
        }
    }

    /// The program's name.
    pub(crate) fn name(&self) -> &str {
        &self.collection().programs[self.prog].name
    }

    /// Loads the collection on the interpreter (or the JIT when `jit` is set) with what
    /// libbpf writes at load time and the map state of `--maps`.
    pub(crate) fn load(
        &self,
        target: &Target,
        jit: bool,
    ) -> Result<Machine, Box<dyn std::error::Error>> {
        self.load_in(target, jit, false)
    }

    /// [`Prepared::load`], with the JIT in trusted mode when `trusted` is set (only for
    /// programs bpflab's verifier accepted: trusted code skips the checks the verifier
    /// proved unnecessary).
    pub(crate) fn load_in(
        &self,
        target: &Target,
        jit: bool,
        trusted: bool,
    ) -> Result<Machine, Box<dyn std::error::Error>> {
        let helpers = bpflab::profile::helpers_for(&target.load.profile()?);
        let mut machine = if jit && trusted {
            let config = JitConfig { vm: target.config(), ..JitConfig::with_mode(Mode::Trusted) };
            let engine = JitEngine::new(config, helpers)?;
            Machine::Jit(Box::new(engine.instantiate(self.collection())?))
        } else {
            Machine::load_with_helpers(self.collection(), target.config(), jit, helpers)?
        };
        if let Source::Object(obj) = &self.source {
            apply_initial_values(obj, machine.loaded())?;
        }
        if let Some(path) = &target.maps {
            let text = String::from_utf8_lossy(&read_file(path)?).into_owned();
            bpflab_vm::maps::json::import_str(machine.world_mut(), &text)
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        Ok(machine)
    }
}

/// Runs a program and prints what it did.
pub(crate) fn run(args: &RunArgs) -> CmdResult {
    let prepared = Prepared::new(&args.target)?;
    // An object's program is verified first: a rejected one is refused, an accepted one may
    // run on the trusted JIT. Raw bytecode has no program type the kernel would load.
    let verified = match &prepared.source {
        Source::Object(obj) if !args.no_verify => {
            super::verify::before_run(obj, prepared.prog, &args.target.load)?
        }
        _ => false,
    };
    let mut machine = prepared.load_in(&args.target, args.engine == EngineKind::Jit, verified)?;
    match &prepared.source {
        Source::Object(obj) => run_object(args, obj, &prepared, &mut machine),
        Source::Raw(_, mem) => run_raw(args, mem, &prepared, &mut machine),
    }
}

/// Raw mode: r1 = memory, r2 = its length; prints r0, the count and the memory afterwards.
fn run_raw(args: &RunArgs, before: &[u8], prepared: &Prepared, machine: &mut Machine) -> CmdResult {
    let out = machine.run(prepared.prog, &prepared.cases[0].input)?;
    let (r0, count, trace, mem) = (out.r0, out.insn_count.unwrap_or(0), &out.trace, &out.data);
    if args.json {
        let doc = json!({
            "r0": r0,
            "r0_hex": format!("{r0:#x}"),
            "insn_count": count,
            "memory": to_hex(mem),
            "trace": trace,
        });
        return Ok(emit(&(serde_json::to_string_pretty(&doc)? + "\n"))?);
    }
    let mut text = String::new();
    for line in trace {
        text += &format!("trace: {}\n", line.trim_end_matches('\n'));
    }
    text += &format!("r0 = {r0:#x} ({})\ninstructions: {count}\n", r0 as i64);
    if mem.as_slice() != before {
        text += &format!("memory: {}\n", to_hex(mem));
    }
    Ok(emit(&text)?)
}

/// One input of a run: a packet, a pcap's packet, or just a context.
pub(crate) struct Case {
    /// How reports name the input.
    pub(crate) label: String,
    /// The input itself.
    pub(crate) input: RunInput,
}

/// The inputs the arguments name: packets, a pcap, or just a context.
fn cases(args: &Target) -> Result<Vec<Case>, Box<dyn std::error::Error>> {
    let ctx = args.ctx.as_deref().map(read_file).transpose()?;
    let with = |label: String, data: Vec<u8>| {
        let mut input = RunInput::data(data);
        input.ctx = ctx.clone();
        Case { label, input }
    };
    let mut out = Vec::new();
    for (i, hex) in args.packet.iter().enumerate() {
        out.push(with(format!("packet {}", i + 1), parse_hex(hex)?));
    }
    for path in &args.packet_file {
        out.push(with(path.display().to_string(), read_file(path)?));
    }
    if let Some(path) = &args.pcap {
        for (i, data) in read_pcap(path)?.into_iter().enumerate() {
            out.push(with(format!("{} #{}", path.display(), i + 1), data));
        }
    }
    if out.is_empty() {
        out.push(with("run".into(), Vec::new()));
    }
    Ok(out)
}

/// Runs an object's program on every input and reports verdicts, packets, trace and maps.
fn run_object(args: &RunArgs, obj: &Object, prepared: &Prepared, inst: &mut Machine) -> CmdResult {
    let prog = prepared.prog;
    let prog_type = obj.collection.programs[prog].prog_type;
    // The world records the elements the runs touch: the diff costs what they touch, not
    // the maps' sizes.
    inst.world_mut().begin_changes();
    let cases = &prepared.cases;
    let total = cases.len() as u64 * args.repeat.max(1);
    let bar = progress(total);
    let started = Instant::now();
    let mut reports = Vec::new();
    let mut out_packets = Vec::new();
    for case in cases {
        let mut last = None;
        for _ in 0..args.repeat.max(1) {
            last = Some(inst.run(prog, &case.input)?);
            bar.inc(1);
            if started.elapsed() > Duration::from_secs(1) && bar.is_hidden() {
                bar.set_draw_target(ProgressDrawTarget::stderr());
            }
        }
        let out = last.expect("at least one run");
        if args.out_pcap.is_some() && passes(prog_type, out.r0) {
            out_packets.push(out.data.clone());
        }
        reports.push((case, out));
    }
    bar.finish_and_clear();
    if let Some(path) = &args.out_pcap {
        write_pcap(path, &out_packets)?;
    }
    let changes = map_changes(obj, inst.world_mut().take_changes());
    if let Some(path) = &args.save_maps {
        std::fs::write(path, bpflab_vm::maps::json::export_string(inst.world_mut()))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if args.json {
        let runs: Vec<Value> = reports
            .iter()
            .map(|(case, out)| {
                json!({
                    "input": case.label,
                    "r0": out.r0,
                    "verdict": verdict_name(prog_type, out.r0),
                    "insn_count": out.insn_count,
                    "packet": to_hex(&out.data),
                    "packet_changed": out.data != case.input.data,
                    "ctx": out.ctx.as_deref().map(to_hex),
                    "trace": out.trace,
                })
            })
            .collect();
        let doc = json!({ "program": obj.collection.programs[prog].name, "runs": runs, "map_changes": changes });
        return Ok(emit(&(serde_json::to_string_pretty(&doc)? + "\n"))?);
    }
    let mut text = String::new();
    for (case, out) in &reports {
        text += &report(prog_type, case, out, args.repeat);
    }
    if args.dump_maps {
        text += if changes.is_empty() { "map changes: none\n" } else { "map changes:\n" };
        for c in &changes {
            text += &format!(
                "  {} key: {}  value: {}{}\n",
                c["map"].as_str().unwrap_or(""),
                c["key"].as_str().unwrap_or(""),
                c["value"].as_str().unwrap_or("(deleted)"),
                c["was"].as_str().map(|w| format!("  (was {w})")).unwrap_or_default()
            );
        }
    }
    Ok(emit(&text)?)
}

/// The text report of one input's run.
fn report(prog_type: ProgType, case: &Case, out: &RunOutcome, repeat: u64) -> String {
    let verdict = match verdict_name(prog_type, out.r0) {
        Some(name) => format!("{name} ({})", out.r0 as i64),
        None => format!("{:#x} ({})", out.r0, out.r0 as i64),
    };
    let times = if repeat > 1 { format!(" x{repeat}") } else { String::new() };
    let count = out.insn_count.map(|c| format!(", {c} instructions")).unwrap_or_default();
    let mut text = format!("{}: {verdict}{count}{times}\n", case.label);
    if !out.data.is_empty() || !case.input.data.is_empty() {
        if out.data == case.input.data {
            text += &format!("  packet: {} bytes, unchanged\n", out.data.len());
        } else {
            text +=
                &format!("  packet: {} bytes, changed: {}\n", out.data.len(), to_hex(&out.data));
        }
    }
    for line in &out.trace {
        text += &format!("  trace: {}\n", line.trim_end_matches('\n'));
    }
    text
}

/// Whether a verdict lets the packet go on (anything but a drop or an abort).
fn passes(prog_type: ProgType, r0: u64) -> bool {
    !matches!(
        verdict_name(prog_type, r0),
        Some("XDP_ABORTED" | "XDP_DROP" | "TC_ACT_SHOT" | "SK_DROP" | "deny")
    )
}

/// The map changes of a run as JSON objects (`map`, `key`, `value`, `was`; `value` null for
/// a deleted element, `was` null for a new one), by map then key. Maps user space cannot list
/// (queues, stacks, ring buffers, perf event arrays, xsk maps) are left out.
fn map_changes(obj: &Object, changes: Vec<MapChange>) -> Vec<Value> {
    let maps = &obj.collection.maps;
    changes
        .into_iter()
        .filter(|c| maps.get(c.map).is_some_and(|m| dumpable(m.map_type)))
        .map(|c| {
            json!({
                "map": maps[c.map].name,
                "key": to_hex(&c.key),
                "value": c.new.as_deref().map(to_hex),
                "was": c.old.as_deref().map(to_hex),
            })
        })
        .collect()
}

/// A progress bar that stays hidden until the runs have taken a second.
fn progress(total: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} runs {per_sec} eta {eta}")
    {
        bar.set_style(style);
    }
    bar
}

/// The packets of a pcap file.
fn read_pcap(path: &Path) -> Result<Vec<Vec<u8>>, Box<dyn std::error::Error>> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut reader =
        pcap_file::pcap::PcapReader::new(file).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut packets = Vec::new();
    while let Some(pkt) = reader.next_packet() {
        let pkt =
            pkt.map_err(|e| format!("{}: packet {}: {e}", path.display(), packets.len() + 1))?;
        packets.push(pkt.data.into_owned());
    }
    Ok(packets)
}

/// Writes packets to a pcap file (Ethernet link type), one microsecond apart.
fn write_pcap(path: &Path, packets: &[Vec<u8>]) -> Result<(), Box<dyn std::error::Error>> {
    let file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut writer = pcap_file::pcap::PcapWriter::new(file)?;
    for (i, data) in packets.iter().enumerate() {
        let ts = Duration::from_micros(i as u64);
        writer.write_packet(&pcap_file::pcap::PcapPacket::new(ts, data.len() as u32, data))?;
    }
    Ok(())
}
