//! `bpflab bench`: how long one run of a program takes on its inputs, on the interpreter, the
//! JIT or both.
//!
//! After a warm-up, the runs go in batches timed as a whole (a clock read per run would cost
//! more than a short program), until the iteration count or the time is reached. The mean is
//! the total time over the runs; the median and the minimum are over the batches' times per
//! run. The inputs are run in turn, and map state carries over from run to run (warm-up
//! included), as with the kernel's `BPF_PROG_TEST_RUN` `repeat`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bpflab::machine::Machine;
use bpflab_jit::CompileStats;
use bpflab_vm::engine::EngineError;
use clap::{Args, ValueEnum};
use serde_json::{Value, json};

use super::run::{Prepared, Target};
use super::{CmdResult, emit};

/// Which engines `bench` times.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum BenchEngine {
    /// The checked interpreter.
    Interp,
    /// The Cranelift JIT, in checked mode.
    Jit,
    /// The interpreter, then the JIT (each on freshly loaded maps), and the ratio.
    Both,
}

/// Arguments of `bpflab bench`.
#[derive(Args, Debug)]
pub(crate) struct BenchArgs {
    #[command(flatten)]
    target: Target,
    /// Engine to time.
    #[arg(long, value_enum, default_value_t = BenchEngine::Interp)]
    engine: BenchEngine,
    /// Number of timed runs (after the warm-up).
    #[arg(
        long,
        value_name = "N",
        conflicts_with = "time",
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    iters: Option<u64>,
    /// Time the runs for this many seconds (the default, 1 second, without `--iters`).
    #[arg(long, value_name = "SECS", value_parser = seconds)]
    time: Option<Duration>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Parses a positive number of seconds.
fn seconds(text: &str) -> Result<Duration, String> {
    let secs: f64 = text.trim().parse().map_err(|e| format!("{e}"))?;
    match Duration::try_from_secs_f64(secs) {
        Ok(d) if !d.is_zero() => Ok(d),
        _ => Err(format!("{text} is not a positive number of seconds")),
    }
}

/// When the timed runs stop.
#[derive(Clone, Copy, Debug)]
enum Until {
    /// After this many runs.
    Iters(u64),
    /// Once this much time has passed.
    Time(Duration),
}

/// What timing one engine showed.
#[derive(Debug)]
struct Measurement {
    /// `interp` or `jit`.
    engine: &'static str,
    /// Timed runs.
    iterations: u64,
    /// Untimed runs before them.
    warmup: u64,
    /// Runs and time of each batch.
    batches: Vec<(u64, Duration)>,
    /// Instructions the timed runs executed (`None` when the engine does not count).
    insns: Option<u64>,
    /// r0 of the last run.
    r0: u64,
    /// Wall time of loading the collection (the JIT's compilation included).
    load: Duration,
    /// The JIT's compilation.
    compile: Option<CompileStats>,
}

impl Measurement {
    /// Total time of the timed runs.
    fn total(&self) -> Duration {
        self.batches.iter().map(|(_, t)| *t).sum()
    }

    /// Mean nanoseconds per run.
    fn mean_ns(&self) -> f64 {
        self.total().as_nanos() as f64 / self.iterations as f64
    }

    /// Nanoseconds per run of each batch, sorted.
    fn per_batch_ns(&self) -> Vec<f64> {
        let mut v: Vec<f64> =
            self.batches.iter().map(|(n, t)| t.as_nanos() as f64 / *n as f64).collect();
        v.sort_by(f64::total_cmp);
        v
    }

    /// Median over the batches of nanoseconds per run.
    fn median_ns(&self) -> f64 {
        let v = self.per_batch_ns();
        let mid = v.len() / 2;
        if v.len() % 2 == 1 { v[mid] } else { (v[mid - 1] + v[mid]) / 2.0 }
    }

    /// The fastest batch's nanoseconds per run.
    fn min_ns(&self) -> f64 {
        self.per_batch_ns()[0]
    }

    /// Mean instructions per run.
    fn insns_per_run(&self) -> Option<f64> {
        self.insns.map(|n| n as f64 / self.iterations as f64)
    }

    /// Mean nanoseconds per instruction.
    fn ns_per_insn(&self) -> Option<f64> {
        self.insns_per_run().filter(|&n| n > 0.0).map(|n| self.mean_ns() / n)
    }

    fn to_json(&self) -> Value {
        json!({
            "engine": self.engine,
            "iterations": self.iterations,
            "warmup_runs": self.warmup,
            "batches": self.batches.len(),
            "total_ns": self.total().as_nanos() as u64,
            "mean_ns": self.mean_ns(),
            "median_ns": self.median_ns(),
            "min_ns": self.min_ns(),
            "insns_per_run": self.insns_per_run(),
            "ns_per_insn": self.ns_per_insn(),
            "r0": self.r0,
            "r0_hex": format!("{:#x}", self.r0),
            "load_ns": self.load.as_nanos() as u64,
            "compile": self.compile.map(|c| json!({
                "functions": c.functions,
                "slots": c.slots,
                "code_bytes": c.code_bytes,
                "ns": c.time.as_nanos() as u64,
            })),
        })
    }

    fn to_text(&self, program: &str, inputs: usize) -> String {
        let plural = if inputs == 1 { "" } else { "s" };
        let mut text = format!(
            "{program} on {}: {} runs in {} batches ({inputs} input{plural}, {} warm-up runs)\n",
            self.engine,
            self.iterations,
            self.batches.len(),
            self.warmup
        );
        text += &format!(
            "  per run: mean {}, median {}, min {}\n",
            ns(self.mean_ns()),
            ns(self.median_ns()),
            ns(self.min_ns())
        );
        if let (Some(n), Some(per)) = (self.insns_per_run(), self.ns_per_insn()) {
            text += &format!("  instructions per run: {n:.1} ({per:.2} ns each)\n");
        }
        text += &format!("  r0 = {:#x} ({}) on the last run\n", self.r0, self.r0 as i64);
        match self.compile {
            Some(c) => {
                let s = if c.functions == 1 { "" } else { "s" };
                text += &format!(
                    "  compile: {} function{s}, {} slots, {} bytes of code in {}\n",
                    c.functions,
                    c.slots,
                    c.code_bytes,
                    ns(c.time.as_nanos() as f64)
                );
            }
            None => text += &format!("  load: {}\n", ns(self.load.as_nanos() as f64)),
        }
        text
    }
}

/// A duration in nanoseconds, in a readable unit.
fn ns(v: f64) -> String {
    if v < 1e3 {
        format!("{v:.1} ns")
    } else if v < 1e6 {
        format!("{:.2} µs", v / 1e3)
    } else if v < 1e9 {
        format!("{:.2} ms", v / 1e6)
    } else {
        format!("{:.2} s", v / 1e9)
    }
}

/// Times the program on the engines the arguments name and prints the results.
pub(crate) fn bench(args: &BenchArgs) -> CmdResult {
    let prepared = Prepared::new(&args.target)?;
    let until = match (args.iters, args.time) {
        (Some(n), _) => Until::Iters(n),
        (None, Some(t)) => Until::Time(t),
        (None, None) => Until::Time(Duration::from_secs(1)),
    };
    let engines: &[bool] = match args.engine {
        BenchEngine::Interp => &[false],
        BenchEngine::Jit => &[true],
        BenchEngine::Both => &[false, true],
    };
    let mut results = Vec::new();
    for &jit in engines {
        let started = Instant::now();
        let machine = prepared.load(&args.target, jit)?;
        let load = started.elapsed();
        results.push(measure(&prepared, machine, load, until, jit)?);
    }
    let program = prepared.name();
    let speedup = match results.as_slice() {
        [interp, jit] => Some(interp.mean_ns() / jit.mean_ns()),
        _ => None,
    };
    if args.json {
        let doc = match (&results[..], speedup) {
            ([one], _) => {
                let mut doc = one.to_json();
                doc["program"] = program.into();
                doc["inputs"] = prepared.cases.len().into();
                doc
            }
            ([interp, jit], Some(speedup)) => json!({
                "program": program,
                "inputs": prepared.cases.len(),
                "interp": interp.to_json(),
                "jit": jit.to_json(),
                "speedup": speedup,
            }),
            _ => unreachable!("one or two engines"),
        };
        return Ok(emit(&(serde_json::to_string_pretty(&doc)? + "\n"))?);
    }
    let mut text = String::new();
    for m in &results {
        text += &m.to_text(program, prepared.cases.len());
    }
    if let (Some(speedup), [interp, jit]) = (speedup, &results[..]) {
        text += &format!(
            "jit / interp: the JIT is {speedup:.2}x as fast (mean {} vs {} per run)\n",
            ns(jit.mean_ns()),
            ns(interp.mean_ns())
        );
    }
    Ok(emit(&text)?)
}

/// The runs of one measurement: the inputs in turn, and what the runs returned.
struct Runs<'a> {
    /// The program and its inputs.
    prepared: &'a Prepared,
    /// The input of the next run.
    next: usize,
    /// Instructions executed so far (`None` once a run did not count them).
    insns: Option<u64>,
    /// r0 of the last run.
    r0: u64,
}

impl Runs<'_> {
    /// One run of the next input.
    fn one(&mut self, machine: &mut Machine) -> Result<(), EngineError> {
        let cases = &self.prepared.cases;
        let out = machine.run(self.prepared.prog, &cases[self.next].input)?;
        self.next = (self.next + 1) % cases.len();
        self.insns = self.insns.zip(out.insn_count).map(|(a, b)| a + b);
        self.r0 = out.r0;
        black_box(out);
        Ok(())
    }
}

/// Warms up, then times batches of runs on `machine` until `until`.
fn measure(
    prepared: &Prepared,
    mut machine: Machine,
    load: Duration,
    until: Until,
    jit: bool,
) -> Result<Measurement, Box<dyn std::error::Error>> {
    let cases = prepared.cases.len() as u64;
    let mut runs = Runs { prepared, next: 0, insns: Some(0), r0: 0 };
    // Warm-up: every input once, then until a tenth of the runs or of the time (at most
    // 100 ms) have gone by.
    let (warm_runs, warm_time) = match until {
        Until::Iters(n) => (n / 10, Duration::from_millis(100)),
        Until::Time(t) => (u64::MAX, (t / 10).min(Duration::from_millis(100))),
    };
    let started = Instant::now();
    let mut warmup = 0u64;
    while warmup < cases || (warmup < warm_runs.min(100_000) && started.elapsed() < warm_time) {
        runs.one(&mut machine)?;
        warmup += 1;
    }
    let per_run = started.elapsed().as_nanos() / u128::from(warmup);
    // Batches of about a millisecond, and at least about 20 of them.
    let target = match until {
        Until::Iters(_) => Duration::from_millis(1),
        Until::Time(t) => (t / 20).min(Duration::from_millis(1)),
    };
    let mut batch = (target.as_nanos() / per_run.max(1)).clamp(1, 1_000_000) as u64;
    if let Until::Iters(n) = until {
        batch = batch.min(n.div_ceil(20)).max(1);
    }
    runs.insns = runs.insns.map(|_| 0);
    let mut batches = Vec::new();
    let mut done = 0u64;
    let started = Instant::now();
    loop {
        let n = match until {
            Until::Iters(total) if done >= total => break,
            Until::Iters(total) => batch.min(total - done),
            Until::Time(t) if done > 0 && started.elapsed() >= t => break,
            Until::Time(_) => batch,
        };
        let t0 = Instant::now();
        for _ in 0..n {
            runs.one(&mut machine)?;
        }
        batches.push((n, t0.elapsed()));
        done += n;
    }
    Ok(Measurement {
        engine: if jit { "jit" } else { "interp" },
        iterations: done,
        warmup,
        batches,
        insns: runs.insns,
        r0: runs.r0,
        load,
        compile: machine.compile_stats(),
    })
}
