//! `bpflab verify OBJ`: the kernel verifier's verdict on an object's programs, from bpflab's
//! verifier, as text, JSON or veristat's CSV; with `--kernel`, beside this machine's kernel's.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use bpflab_kernel::verdict::{VerdictOptions, kernel_verdict};
use bpflab_loader::{Object, ProgramInfo};
use bpflab_verifier::report::{self, Tally};
use bpflab_verifier::{Config, Flags, Report, SourceLine, Verdict};
use bpflab_vm::helpers::HelperRegistry;
use clap::{Args, ValueEnum};
use serde::Serialize;

use super::emit;
use super::object::{LoadArgs, load_object, program_index};

/// How `verify` prints its reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputFormat {
    /// Per program: the log, the verdict, the error with its C source line, the stats line.
    Text,
    /// The `--json` contract (docs/VERIFIER.md).
    Json,
    /// veristat's CSV (`veristat -o csv`), which `veristat -C` compares.
    Csv,
}

/// Arguments of `bpflab verify`.
#[derive(Args, Debug)]
pub(crate) struct VerifyArgs {
    /// An eBPF object file built by clang (`clang -O2 -g -target bpf`).
    object: PathBuf,
    /// Only this program (default: every program the object loads, as libbpf's autoload).
    #[arg(long, value_name = "NAME")]
    prog: Option<String>,
    /// The log to print: 0 errors only, 1 the kernel's messages, 2 the state at every
    /// instruction (as the kernel's log_level).
    #[arg(long, value_name = "0|1|2", default_value_t = 0,
          value_parser = clap::value_parser!(u8).range(0..=2))]
    log_level: u8,
    /// Verify as an unprivileged loader would be verified (no CAP_BPF / CAP_PERFMON).
    #[arg(long)]
    unpriv: bool,
    /// A BPF_PROG_LOAD flag that changes verification, added to the program's own (from its
    /// section, e.g. sleepable `.s` sections); repeatable.
    #[arg(long = "flag", value_name = "NAME",
          value_parser = clap::builder::PossibleValuesParser::new(Flags::NAMES))]
    flags: Vec<String>,
    /// Print JSON (the same as `--output json`).
    #[arg(long, conflicts_with = "output")]
    json: bool,
    /// Output format.
    #[arg(long, value_enum, value_name = "text|json|csv")]
    output: Option<OutputFormat>,
    /// Also load each program into this machine's kernel and print both verdicts.
    #[arg(long)]
    kernel: bool,
    #[command(flatten)]
    load: LoadArgs,
}

impl VerifyArgs {
    /// The output format the arguments choose.
    fn format(&self) -> OutputFormat {
        match (self.json, self.output) {
            (true, _) => OutputFormat::Json,
            (false, Some(f)) => f,
            (false, None) => OutputFormat::Text,
        }
    }

    /// The `--flag` flags.
    fn flags(&self) -> Flags {
        let mut flags = Flags::default();
        for name in &self.flags {
            // clap allows only Flags::NAMES.
            flags.set(name);
        }
        flags
    }
}

/// Runs `bpflab verify`: exit status 0 when every program is accepted, 1 when any is
/// rejected, 2 when there is no verdict (unsupported, or the object could not be read). With
/// `--kernel`: 0 when the verdicts agree, 1 when any disagree, 2 when some have no verdict.
pub(crate) fn verify(args: &VerifyArgs) -> ExitCode {
    match run(args) {
        Ok(status) => ExitCode::from(status),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// `verify`, returning the exit status.
fn run(args: &VerifyArgs) -> Result<u8, Box<dyn std::error::Error>> {
    let format = args.format();
    if args.kernel && format == OutputFormat::Csv {
        return Err("--kernel prints a comparison; --output csv is for bpflab's verdicts".into());
    }
    if args.kernel && args.unpriv {
        return Err("--kernel loads programs with this process's privileges; --unpriv verdicts \
                    cannot be compared with them"
            .into());
    }
    let obj = load_object(&args.object, &args.load, args.prog.as_deref())?;
    let selected = selection(&obj, args.prog.as_deref())?;
    let helpers = bpflab::profile::helpers_for(&args.load.profile()?);
    let base = Config { privileged: !args.unpriv, log_level: args.log_level, ..Config::default() };
    let reports: Vec<Report> =
        selected.iter().map(|&i| verify_program(&obj, i, &helpers, &base, args.flags())).collect();
    if args.kernel {
        return compare(&obj, &selected, &reports, format, &base, args.flags());
    }
    let file_name = file_name(&args.object);
    let tally = Tally::of(&reports);
    match format {
        OutputFormat::Json => emit(&(report::json(&reports) + "\n"))?,
        OutputFormat::Csv => {
            emit(&report::csv(&file_name, &reports))?;
            let left_out: Vec<&str> = reports
                .iter()
                .filter(|r| matches!(r.verdict, Verdict::Unsupported(_)))
                .map(|r| r.program.as_str())
                .collect();
            if !left_out.is_empty() {
                eprintln!(
                    "note: left out of the CSV (bpflab's verifier has no verdict): {}",
                    left_out.join(", ")
                );
            }
        }
        OutputFormat::Text => {
            let mut out = String::new();
            for (n, r) in reports.iter().enumerate() {
                if n > 0 {
                    out.push('\n');
                }
                out += &r.text(args.log_level, base.max_processed_insns);
            }
            if reports.len() > 1 {
                out += &format!("\n{}\n", tally.line());
            }
            emit(&out)?;
        }
    }
    Ok(tally.exit_status())
}

/// The programs to verify: `prog`, or every program the object loads (libbpf's autoload).
pub(crate) fn selection(
    obj: &Object,
    prog: Option<&str>,
) -> Result<Vec<usize>, Box<dyn std::error::Error>> {
    if let Some(name) = prog {
        return Ok(vec![program_index(obj, name)?]);
    }
    let all: Vec<usize> = (0..obj.collection.programs.len())
        .filter(|&i| obj.programs.get(i).is_none_or(|p| p.autoload))
        .collect();
    if all.is_empty() {
        let names: Vec<&str> = obj.collection.programs.iter().map(|p| p.name.as_str()).collect();
        return Err(if names.is_empty() {
            "the object has no programs".into()
        } else {
            format!(
                "no program of the object is loaded automatically; choose one with --prog NAME: {}",
                names.join(", ")
            )
            .into()
        });
    }
    Ok(all)
}

/// Verifies program `index` of `obj` with `base`'s limits and mode, the program's own load
/// flags plus `extra`, and fills in the C source line of a rejection from the object's line
/// info where the verifier gave none.
pub(crate) fn verify_program(
    obj: &Object,
    index: usize,
    helpers: &HelperRegistry,
    base: &Config,
    extra: Flags,
) -> Report {
    let config = program_config(obj, index, base, extra);
    let mut report = bpflab_verifier::verify(&obj.collection, index, helpers, &config);
    if let (Verdict::Rejected(e), Some(info)) = (&mut report.verdict, obj.programs.get(index))
        && e.line.is_none()
        && let Some(insn) = e.insn
    {
        e.line = source_line(info, insn);
    }
    report
}

/// `base` with the load flags of program `index`: its own (from its section) plus `extra`.
fn program_config(obj: &Object, index: usize, base: &Config, extra: Flags) -> Config {
    let own = obj.collection.programs.get(index).map_or(0, |p| p.flags);
    Config { flags: Flags::from_bits(own | extra.bits()), ..base.clone() }
}

/// The C source line of slot `insn`: the line info record at or before it.
fn source_line(info: &ProgramInfo, insn: usize) -> Option<SourceLine> {
    info.line_info
        .iter()
        .filter(|(slot, _)| *slot <= insn)
        .max_by_key(|(slot, _)| *slot)
        .map(|(_, l)| SourceLine { file: l.file.clone(), line: l.line, text: l.text.clone() })
}

/// The object's file name as veristat writes it (the base name).
fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into())
}

/// What `bpflab run` does before running an object's program: verifies it, refusing a
/// rejected program with the verifier's error. `Ok(true)` when the verifier accepts it (the
/// JIT may then run in trusted mode), `Ok(false)` when it has no verdict (a note goes to
/// stderr; the checked engines run it).
pub(crate) fn before_run(
    obj: &Object,
    index: usize,
    load: &LoadArgs,
) -> Result<bool, Box<dyn std::error::Error>> {
    let helpers = bpflab::profile::helpers_for(&load.profile()?);
    let config = Config { log_level: 0, ..Config::default() };
    let report = verify_program(obj, index, &helpers, &config, Flags::default());
    match &report.verdict {
        Verdict::Accepted => Ok(true),
        Verdict::Unsupported(u) => {
            let at = u.insn.map(|i| format!(", at insn {i}")).unwrap_or_default();
            eprintln!(
                "note: {}: bpflab's verifier has no verdict ({}{at}); running it checked",
                report.program, u.feature
            );
            Ok(false)
        }
        Verdict::Rejected(_) => {
            let text = report.refusal().unwrap_or_default();
            Err(format!("{text}\n(--no-verify runs it in the checked engines anyway)").into())
        }
    }
}

/// What this machine's kernel decided about a program.
#[derive(Clone, Debug, Serialize)]
struct KernelSide {
    /// `accepted`, `rejected`, or `error` when the kernel gave no verdict (the object's BTF
    /// or maps were refused, no privilege, ...).
    verdict: &'static str,
    /// The verifier's error line for a rejection; the reason for an `error`.
    error: Option<String>,
    /// The error line's class (as bpflab's errors are classed), for a rejection.
    kind: Option<&'static str>,
    /// `processed N insns` from the kernel's log, when it printed one.
    processed_insns: Option<u64>,
    /// The kernel's verifier log (level 1 and statistics); printed at `--log-level` 1 and 2.
    #[serde(skip)]
    log: String,
}

/// One program of `verify --kernel`.
#[derive(Serialize)]
struct Comparison<'a> {
    program: &'a str,
    bpflab: &'a Report,
    kernel: &'a KernelSide,
    /// Whether the verdicts agree; null when one side has none.
    agree: Option<bool>,
}

/// Whether bpflab's verdict agrees with the kernel's (`None` when either has none).
fn agreement(bpflab: &Verdict, kernel: &KernelSide) -> Option<bool> {
    match (bpflab, kernel.verdict) {
        (Verdict::Unsupported(_), _) | (_, "error") => None,
        (v, k) => Some(v.name() == k),
    }
}

/// `verify --kernel`: loads each selected program into this machine's kernel and prints both
/// verdicts, error lines and processed counts side by side, then a one-line summary.
fn compare(
    obj: &Object,
    selected: &[usize],
    reports: &[Report],
    format: OutputFormat,
    config: &Config,
    extra: Flags,
) -> Result<u8, Box<dyn std::error::Error>> {
    let kernel: Vec<KernelSide> = selected.iter().map(|&i| kernel_side(obj, i, extra)).collect();
    let rows: Vec<Comparison<'_>> = reports
        .iter()
        .zip(&kernel)
        .map(|(r, k)| Comparison {
            program: &r.program,
            bpflab: r,
            kernel: k,
            agree: agreement(&r.verdict, k),
        })
        .collect();
    let agree = rows.iter().filter(|c| c.agree == Some(true)).count();
    let disagree = rows.iter().filter(|c| c.agree == Some(false)).count();
    let other_class = rows
        .iter()
        .filter(|c| c.agree == Some(true))
        .filter(|c| match &c.bpflab.verdict {
            Verdict::Rejected(e) => c.kernel.kind.is_some_and(|k| k != e.kind.name()),
            _ => false,
        })
        .count();
    let no_verdict = rows.len() - agree - disagree;
    let bpflab_none =
        reports.iter().filter(|r| matches!(r.verdict, Verdict::Unsupported(_))).count();
    let kernel_none = kernel.iter().filter(|k| k.verdict == "error").count();
    let summary = format!(
        "{} {}: {agree} agree, {disagree} disagree, {no_verdict} lack a verdict (bpflab \
         {bpflab_none}, kernel {kernel_none}); {other_class} agreeing rejections differ in error \
         class",
        rows.len(),
        if rows.len() == 1 { "program" } else { "programs" }
    );
    if format == OutputFormat::Json {
        let text = match rows.as_slice() {
            [one] => serde_json::to_string_pretty(one)?,
            many => serde_json::to_string_pretty(many)?,
        };
        emit(&(text + "\n"))?;
        eprintln!("{summary}");
    } else {
        let width = rows.iter().map(|c| c.program.len()).max().unwrap_or(0).max(7);
        let mut out = format!(
            "{:<width$}  {:<11}  {:<11}  {:>12}  {:>12}  agree\n",
            "program", "bpflab", "kernel", "bpflab insns", "kernel insns"
        );
        for c in &rows {
            let kernel_insns = c.kernel.processed_insns.map_or("-".into(), |n| n.to_string());
            let bpflab_insns = match c.bpflab.verdict {
                Verdict::Unsupported(_) => "-".to_owned(),
                _ => c.bpflab.stats.processed_insns.to_string(),
            };
            let agree = match c.agree {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "-",
            };
            out += &format!(
                "{:<width$}  {:<11}  {:<11}  {bpflab_insns:>12}  {kernel_insns:>12}  {agree}\n",
                c.program,
                c.bpflab.verdict.name(),
                c.kernel.verdict
            );
            match &c.bpflab.verdict {
                Verdict::Rejected(e) => {
                    let at = e.insn.map(|i| format!("insn {i}: ")).unwrap_or_default();
                    out += &format!("  bpflab: {at}{}\n", e.message);
                    if let Some(l) = &e.line {
                        out += &format!("  source: {}:{}: {}\n", l.file, l.line, l.text.trim());
                    }
                }
                Verdict::Unsupported(u) => {
                    out += &format!("  bpflab: unsupported: {}\n", u.feature);
                }
                Verdict::Accepted => {}
            }
            if let Some(e) = &c.kernel.error {
                out += &format!("  kernel: {e}\n");
            }
            if config.log_level > 0 && !c.bpflab.log.trim().is_empty() {
                out += &format!("  bpflab log:\n{}\n", c.bpflab.log.trim_end());
            }
            if config.log_level > 0 && !c.kernel.log.trim().is_empty() {
                out += &format!("  kernel log:\n{}\n", c.kernel.log.trim_end());
            }
        }
        out += &format!("{summary}\n");
        emit(&out)?;
    }
    Ok(if disagree > 0 {
        1
    } else if no_verdict > 0 {
        2
    } else {
        0
    })
}

/// Loads program `index` of `obj` on its own (with the object's BTF and maps) into this
/// machine's kernel, with the program's own flags plus `extra`, and reads its verdict, error
/// line and processed count from the verifier's log.
fn kernel_side(obj: &Object, index: usize, extra: Flags) -> KernelSide {
    let opts = VerdictOptions { prog_flags: extra.bits(), ..VerdictOptions::default() };
    match kernel_verdict(&obj.collection, index, &opts) {
        // A refusal with an empty log is not the verifier's (no privilege, an attach target
        // missing, ...): no verdict.
        Ok(v) if !v.accepted && v.log.trim().is_empty() => KernelSide {
            verdict: "error",
            error: Some(format!(
                "BPF_PROG_LOAD: {} (no verifier log)",
                std::io::Error::from_raw_os_error(v.errno)
            )),
            kind: None,
            processed_insns: None,
            log: String::new(),
        },
        Ok(v) => KernelSide {
            verdict: if v.accepted { "accepted" } else { "rejected" },
            kind: v.error_line.as_deref().map(|e| bpflab_verifier::ErrorKind::classify(e).name()),
            error: v.error_line,
            processed_insns: v.processed_insns,
            log: v.log,
        },
        Err(e) => KernelSide {
            verdict: "error",
            error: Some(e.to_string().lines().next().unwrap_or_default().to_owned()),
            kind: None,
            processed_insns: None,
            log: String::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpflab_verifier::{ErrorKind, Unsupported, VerifyError};

    fn xdp_object() -> Object {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("programs/tests/xdp.bpf.o");
        load_object(&path, &LoadArgs::default(), None).expect("xdp.bpf.o loads")
    }

    #[test]
    fn source_line_is_the_line_info_record_at_or_before_the_slot() {
        let obj = xdp_object();
        let info = &obj.programs[0];
        assert!(info.line_info.len() > 2, "xdp.bpf.o has line info");
        let (first, l0) = &info.line_info[0];
        assert_eq!(*first, 0);
        let got = source_line(info, 0).unwrap();
        assert_eq!(
            (got.file.as_str(), got.line, got.text.as_str()),
            (l0.file.as_str(), l0.line, l0.text.as_str())
        );
        assert!(got.file.ends_with("xdp.bpf.c"), "{}", got.file);
        // A slot between two records belongs to the earlier one.
        let (s1, l1) = &info.line_info[1];
        let (s2, _) = &info.line_info[2];
        assert!(s2 > s1);
        for slot in *s1..*s2 {
            assert_eq!(source_line(info, slot).unwrap().line, l1.line, "slot {slot}");
        }
    }

    #[test]
    fn selection_is_prog_or_every_autoload_program() {
        let mut obj = xdp_object();
        assert_eq!(selection(&obj, None).unwrap(), (0..6).collect::<Vec<_>>());
        assert_eq!(selection(&obj, Some("xdp_meta")).unwrap(), vec![4]);
        let err = selection(&obj, Some("")).unwrap_err().to_string();
        assert!(err.starts_with("the object has 6 programs; choose one"), "{err}");
        obj.programs[1].autoload = false;
        obj.programs[3].autoload = false;
        assert_eq!(selection(&obj, None).unwrap(), vec![0, 2, 4, 5]);
        // A program left out of autoload is still verified when named.
        assert_eq!(selection(&obj, Some("xdp_ethertype")).unwrap(), vec![1]);
        for p in &mut obj.programs {
            p.autoload = false;
        }
        let err = selection(&obj, None).unwrap_err().to_string();
        assert!(err.starts_with("no program of the object is loaded automatically"), "{err}");
    }

    #[test]
    fn agreement_needs_both_verdicts() {
        let side = |verdict| KernelSide {
            verdict,
            error: None,
            kind: None,
            processed_insns: None,
            log: String::new(),
        };
        let rejected = Verdict::Rejected(VerifyError::program(ErrorKind::Other, "x"));
        let unsupported = Verdict::Unsupported(Unsupported { feature: "f".into(), insn: None });
        assert_eq!(agreement(&Verdict::Accepted, &side("accepted")), Some(true));
        assert_eq!(agreement(&rejected, &side("rejected")), Some(true));
        assert_eq!(agreement(&Verdict::Accepted, &side("rejected")), Some(false));
        assert_eq!(agreement(&rejected, &side("accepted")), Some(false));
        assert_eq!(agreement(&unsupported, &side("accepted")), None);
        assert_eq!(agreement(&Verdict::Accepted, &side("error")), None);
    }

    #[test]
    fn flags_add_the_programs_own() {
        let obj = xdp_object();
        let frags = obj.collection.programs.iter().position(|p| p.name == "xdp_frags_len");
        let frags = frags.unwrap();
        assert!(Flags::from_bits(obj.collection.programs[frags].flags).xdp_has_frags);
        let args = VerifyArgs {
            object: PathBuf::new(),
            prog: None,
            log_level: 0,
            unpriv: false,
            flags: vec!["sleepable".into(), "test-state-freq".into()],
            json: false,
            output: None,
            kernel: false,
            load: LoadArgs::default(),
        };
        let f = args.flags();
        assert!(f.sleepable && f.test_state_freq && !f.any_alignment && !f.xdp_has_frags);
        let base = Config { privileged: false, log_level: 2, ..Config::default() };
        let c = program_config(&obj, frags, &base, f);
        assert!(c.flags.sleepable && c.flags.test_state_freq && c.flags.xdp_has_frags);
        assert!(!c.flags.any_alignment && !c.flags.strict_alignment);
        assert_eq!((c.privileged, c.log_level, c.max_stack), (false, 2, 512));
        // Another program of the object has no flags of its own.
        let c = program_config(&obj, 0, &base, Flags::default());
        assert_eq!(c.flags, Flags::default());
    }
}
