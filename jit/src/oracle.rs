//! The differential oracle: runs one case (a collection, initial map contents, a sequence of
//! runs) on several engines and compares everything each engine can show: r0, the output
//! packet or memory, the context afterwards, the trace output, every map's contents, the
//! fault (pc and kind) and the instruction count.
//!
//! [`Oracle`] holds an interpreter and the JIT in both modes with the same limits and
//! helpers; [`Oracle::check`] compares them, and [`Oracle::check_with`] adds engines such as
//! the kernel with looser [`Rules`] (the kernel returns 32 bits of r0 and no count).

use std::fmt;
use std::sync::Arc;

use bpflab_vm::helpers::HelperRegistry;
use bpflab_vm::{
    Collection, Config, Engine, EngineError, Interpreter, Loaded, RunInput, RunOutcome, VmError,
    VmErrorKind,
};

use crate::{JitConfig, JitEngine, JitError, Mode, OptLevel};

/// One differential case.
#[derive(Clone, Debug, Default)]
pub struct Case {
    /// The programs and maps.
    pub collection: Collection,
    /// Map contents written (with `BPF_ANY`) before the first run: map, key, value.
    pub map_init: Vec<(usize, Vec<u8>, Vec<u8>)>,
    /// The runs, in order: program index and input.
    pub runs: Vec<(usize, RunInput)>,
}

impl Case {
    /// A case of one run of program 0 of `collection` on `input`.
    pub fn single(collection: Collection, input: RunInput) -> Case {
        Case { collection, map_init: Vec::new(), runs: vec![(0, input)] }
    }
}

/// What one run showed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunResult {
    /// The run completed.
    Ok(RunOutcome),
    /// The program faulted.
    Fault(VmError),
    /// The engine could not run it (context, unsupported, backend error), as text.
    Error(String),
}

impl RunResult {
    fn of(r: Result<RunOutcome, EngineError>) -> RunResult {
        match r {
            Ok(out) => RunResult::Ok(out),
            Err(EngineError::Fault(e)) => RunResult::Fault(e),
            Err(e) => RunResult::Error(e.to_string()),
        }
    }

    /// True for a fault because the instruction budget ran out.
    pub fn budget_exhausted(&self) -> bool {
        matches!(self, RunResult::Fault(e) if matches!(e.kind(), VmErrorKind::BudgetExhausted { .. }))
    }
}

/// A map's entries: key and value bytes, sorted by key.
pub type MapEntries = Vec<(Vec<u8>, Vec<u8>)>;

/// Everything one engine showed on a case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    /// The engine's name.
    pub engine: &'static str,
    /// Each run's result, in order.
    pub runs: Vec<RunResult>,
    /// Every map's entries after the last run, sorted by key (`None` where user space
    /// cannot iterate the map).
    pub maps: Vec<Option<MapEntries>>,
}

/// Runs `case` on `engine`. A load failure is returned as the error.
pub fn observe(engine: &dyn Engine, case: &Case) -> Result<Observed, EngineError> {
    let mut loaded = engine.load(&case.collection)?;
    for (map, key, value) in &case.map_init {
        loaded.map_update(*map, key, value, 0)?;
    }
    let runs =
        case.runs.iter().map(|(prog, input)| RunResult::of(loaded.run(*prog, input))).collect();
    let maps = (0..case.collection.maps.len()).map(|m| map_entries(&mut *loaded, m)).collect();
    Ok(Observed { engine: engine.name(), runs, maps })
}

/// The entries of map `m`, sorted by key; `None` for maps that cannot be iterated from user
/// space (perf event arrays, ring buffers, ...).
fn map_entries(loaded: &mut dyn Loaded, m: usize) -> Option<MapEntries> {
    let mut entries = Vec::new();
    for key in loaded.map_keys(m).ok()? {
        if let Some(value) = loaded.map_lookup(m, &key).ok()? {
            entries.push((key, value));
        }
    }
    entries.sort();
    Some(entries)
}

/// What to compare between a reference and another engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rules {
    /// Bits of r0 compared (64, or 32 for the kernel's test run).
    pub r0_bits: u32,
    /// Compare instruction counts (of runs that completed; a run that exhausts the budget
    /// has none).
    pub insn_count: bool,
    /// Compare trace output.
    pub trace: bool,
    /// Compare the context after the run.
    pub ctx: bool,
    /// Compare faults exactly (pc and kind); else a fault must only match a fault.
    pub faults: bool,
    /// Compare map contents.
    pub maps: bool,
}

impl Rules {
    /// Everything, exactly (interpreter against JIT).
    pub const EXACT: Rules =
        Rules { r0_bits: 64, insn_count: true, trace: true, ctx: true, faults: true, maps: true };
    /// What the kernel's test run shows: 32 bits of r0, the output packet, the context, maps.
    pub const KERNEL: Rules = Rules {
        r0_bits: 32,
        insn_count: false,
        trace: false,
        ctx: true,
        faults: false,
        maps: true,
    };
}

/// Two engines disagreed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{engine} differs from {reference}: {what}")]
pub struct Divergence {
    /// The reference engine.
    pub reference: &'static str,
    /// The engine that differs.
    pub engine: &'static str,
    /// What differs.
    pub what: String,
}

/// Compares `other` with `reference` under `rules`.
pub fn compare(reference: &Observed, other: &Observed, rules: Rules) -> Result<(), Divergence> {
    let diverge =
        |what: String| Divergence { reference: reference.engine, engine: other.engine, what };
    for (i, (a, b)) in reference.runs.iter().zip(&other.runs).enumerate() {
        match (a, b) {
            (RunResult::Ok(a), RunResult::Ok(b)) => {
                let mask = if rules.r0_bits >= 64 { u64::MAX } else { (1u64 << rules.r0_bits) - 1 };
                if a.r0 & mask != b.r0 & mask {
                    return Err(diverge(format!("run {i}: r0 {:#x} vs {:#x}", a.r0, b.r0)));
                }
                if a.data != b.data {
                    return Err(diverge(format!(
                        "run {i}: data {} vs {}",
                        hex(&a.data),
                        hex(&b.data)
                    )));
                }
                if rules.ctx && a.ctx != b.ctx {
                    return Err(diverge(format!("run {i}: ctx {:?} vs {:?}", a.ctx, b.ctx)));
                }
                if rules.trace && a.trace != b.trace {
                    return Err(diverge(format!("run {i}: trace {:?} vs {:?}", a.trace, b.trace)));
                }
                if rules.insn_count && a.insn_count != b.insn_count {
                    return Err(diverge(format!(
                        "run {i}: instruction count {:?} vs {:?}",
                        a.insn_count, b.insn_count
                    )));
                }
            }
            (RunResult::Fault(a), RunResult::Fault(b)) if !rules.faults || a == b => {}
            (RunResult::Error(_), RunResult::Error(_)) if !rules.faults => {}
            (a, b) if a == b => {}
            (a, b) => return Err(diverge(format!("run {i}: {} vs {}", show(a), show(b)))),
        }
    }
    if reference.runs.len() != other.runs.len() {
        return Err(diverge("number of runs".into()));
    }
    if rules.maps && reference.maps != other.maps {
        for (m, (a, b)) in reference.maps.iter().zip(&other.maps).enumerate() {
            if a != b {
                let show = |e: &Option<Vec<_>>| e.as_deref().map_or("unreadable".into(), entries);
                return Err(diverge(format!("map {m}: {} vs {}", show(a), show(b))));
            }
        }
    }
    Ok(())
}

fn show(r: &RunResult) -> String {
    match r {
        RunResult::Ok(o) => format!("r0 {:#x}", o.r0),
        RunResult::Fault(e) => format!("fault: {e}"),
        RunResult::Error(e) => format!("error: {e}"),
    }
}

fn hex(b: &[u8]) -> String {
    if b.len() > 64 {
        return format!("{} bytes", b.len());
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn entries(e: &[(Vec<u8>, Vec<u8>)]) -> String {
    let shown: Vec<String> =
        e.iter().take(8).map(|(k, v)| format!("{}={}", hex(k), hex(v))).collect();
    format!("[{}{}]", shown.join(" "), if e.len() > 8 { " ..." } else { "" })
}

/// Why a case could not be checked or failed the check.
#[derive(Debug, thiserror::Error)]
pub enum OracleError {
    /// Two engines disagreed.
    #[error(transparent)]
    Diverged(#[from] Divergence),
    /// The reference (interpreter) could not load the case; nothing was compared.
    #[error("the interpreter refused the case: {0}")]
    Refused(EngineError),
    /// An engine refused a case the interpreter accepted.
    #[error("{engine} refused the case: {error}")]
    Load {
        /// The engine.
        engine: &'static str,
        /// Its error.
        error: EngineError,
    },
}

/// The interpreter and the JIT in both modes, with the same limits and helpers.
#[derive(Debug)]
pub struct Oracle {
    interp: Interpreter,
    checked: JitEngine,
    trusted: JitEngine,
}

impl Oracle {
    /// Engines with these limits and helpers.
    pub fn new(vm: Config, helpers: Arc<HelperRegistry>) -> Result<Oracle, JitError> {
        Oracle::with_opt(vm, helpers, OptLevel::default())
    }

    /// Engines with these limits and helpers, the JIT generating code with `opt`.
    pub fn with_opt(
        vm: Config,
        helpers: Arc<HelperRegistry>,
        opt: OptLevel,
    ) -> Result<Oracle, JitError> {
        let jit = |mode| {
            let config = JitConfig { mode, vm, opt, ..JitConfig::default() };
            JitEngine::new(config, Arc::clone(&helpers))
        };
        Ok(Oracle {
            interp: Interpreter::new(vm, Arc::clone(&helpers)),
            checked: jit(Mode::Checked)?,
            trusted: jit(Mode::Trusted)?,
        })
    }

    /// The default limits and the standard helpers.
    pub fn standard() -> Result<Oracle, JitError> {
        Oracle::new(Config::default(), bpflab_vm::standard_helpers())
    }

    /// The checked JIT.
    pub fn checked(&self) -> &JitEngine {
        &self.checked
    }

    /// The trusted JIT.
    pub fn trusted(&self) -> &JitEngine {
        &self.trusted
    }

    /// The interpreter.
    pub fn interpreter(&self) -> &Interpreter {
        &self.interp
    }

    /// Runs `case` on the interpreter and the checked JIT (and the trusted JIT if `verified`:
    /// only for programs the kernel verifier accepts) and compares them exactly. Returns
    /// what the interpreter showed.
    pub fn check(&self, case: &Case, verified: bool) -> Result<Observed, OracleError> {
        self.check_with(case, verified, &[])
    }

    /// Like [`Oracle::check`], and also compares `extra` engines with their rules. An extra
    /// engine that refuses to load the case is skipped (the kernel's verifier may refuse it).
    pub fn check_with(
        &self,
        case: &Case,
        verified: bool,
        extra: &[(&dyn Engine, Rules)],
    ) -> Result<Observed, OracleError> {
        let reference = observe(&self.interp, case).map_err(OracleError::Refused)?;
        let mut engines: Vec<(&dyn Engine, &'static str)> = vec![(&self.checked, "jit")];
        if verified {
            engines.push((&self.trusted, "jit-trusted"));
        }
        for (engine, name) in engines {
            let mut got =
                observe(engine, case).map_err(|error| OracleError::Load { engine: name, error })?;
            got.engine = name;
            compare(&reference, &got, Rules::EXACT)?;
        }
        for &(engine, rules) in extra {
            if let Ok(got) = observe(engine, case) {
                compare(&reference, &got, rules)?;
            }
        }
        Ok(reference)
    }
}

impl fmt::Display for Observed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.engine)?;
        for r in &self.runs {
            write!(f, " {}", show(r))?;
        }
        Ok(())
    }
}
