//! Agreement with the kernel, measured: every program of every corpus object is verified by
//! bpflab (`bpflab_verifier::verify`) and loaded into the running kernel on its own
//! (`bpflab_kernel::verdict::kernel_verdict`, the oracle), and the verdicts are compared.
//!
//! Corpora: `selftests` (the kernel's verifier selftests, verifier/corpus/selftests/obj, each
//! program loaded as the selftests' test_loader loads it: with its `__flag()`s and the
//! runner's BPF_F_TEST_RND_HI32 | BPF_F_TEST_REG_INVARIANTS), `fixtures` (programs/tests) and
//! `corpus` (programs/corpus). Outcomes per program:
//! - `agree`: both accept, or both reject with the same error class (the kernel's error line
//!   classified by [`ErrorKind::classify`], against the class of bpflab's error);
//! - `unsound`: bpflab accepts what the kernel rejects — this FAILS the test;
//! - `too_strict`: bpflab rejects what the kernel accepts;
//! - `wrong_class`: both reject, for errors of different classes;
//! - `unsupported`: bpflab cannot decide;
//! - skipped (not counted as decided): a test for another architecture or for a custom
//!   CO-RE target BTF (`__arch`, `__btf_path`), bpflab's loader refuses the object, or the kernel
//!   lacks what the program needs (its feature probe says what; printed as `SKIP:` lines),
//!   or the kernel cannot set the program up (a map refused), or it refuses the program
//!   before its verifier says anything (no error line: attribute checks, not a verdict).
//!
//! Unprivileged variants (`__failure_unpriv`, `__msg_unpriv`) are counted, not run: the
//! kernel here refuses unprivileged BPF (`kernel.unprivileged_bpf_disabled`), and the harness
//! does not change that system setting.
//!
//! For programs both accept, the processed-instruction counts are compared (within 10%).
//! The test asserts no `unsound` case and that each corpus's agreement rate (agree / decided
//! by the kernel) reaches verifier/corpus/thresholds.json. It writes every program's result
//! to target/verifier-agreement.json and the table to target/verifier-agreement.md.
//! The selftests' annotations (`__success`, `__failure`, `__msg`, from BTF decl tags) are
//! parsed and checked against the kernel as a cross-check of the corpus, not as the oracle.
//!
//! `cargo test -p bpflab-verifier --test agreement -- --nocapture`

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::Instant;

use bpflab_btf::{Btf, BtfKind, BtfType};
use bpflab_kernel::features::features;
use bpflab_kernel::probe;
use bpflab_kernel::verdict::{
    BPF_LOG_LEVEL1, KernelVerdict, VerdictOptions, kernel_verdict, prog_flags,
    unprivileged_bpf_disabled,
};
use bpflab_loader::LoadOptions;
use bpflab_loader::secdef::parse_prog_type;
use bpflab_verifier::{Config, ErrorKind, Flags, Verdict, verify};
use bpflab_vm::ProgType;
use bpflab_vm::helpers::HelperRegistry;
use bpflab_vm::profile::{KernelProfile, Missing};
use serde_json::{Value, json};

/// The flags the selftests' runner adds to every load (`testing_prog_flags()`).
const TEST_LOADER_FLAGS: u32 = prog_flags::TEST_RND_HI32 | prog_flags::TEST_REG_INVARIANTS;

/// `(object, map, max_entries)`: maps an object leaves for user space to size, sized as
/// `bpf_map__set_max_entries` would (the sizes tests/corpus.rs and kernel/tests/btf_load.rs use).
const MAP_SIZES: &[(&str, &str, u32)] = &[
    ("programs/tests/user_sized_maps.bpf.o", "len_counts", 64),
    ("programs/tests/user_sized_maps.bpf.o", "slots", 16),
    ("programs/corpus/user_sized_maps.bpf.o", "conn_count", 1024),
    ("programs/corpus/user_sized_maps.bpf.o", "port_count", 512),
    ("programs/corpus/user_sized_maps.bpf.o", "events", 4096),
];

/// `(object, program, type)`: programs in sections libbpf does not know, typed as their users
/// type them (`bpf_program__set_type`).
const PROG_TYPES: &[(&str, &str, &str)] = &[
    ("programs/tests/unknown_sections.bpf.o", "xdp_pass_v4", "xdp"),
    ("programs/tests/unknown_sections.bpf.o", "cls_by_len", "classifier"),
    ("programs/tests/unknown_sections.bpf.o", "sock_trim", "socket_filter"),
    ("programs/corpus/unknown_sections.bpf.o", "xdp_drop_udp", "xdp"),
    ("programs/corpus/unknown_sections.bpf.o", "xdp_pass_all", "xdp"),
    ("programs/corpus/unknown_sections.bpf.o", "cls_tcp_only", "tc"),
    ("programs/corpus/unknown_sections.bpf.o", "sock_len", "socket_filter"),
];

/// How `file` (relative to the repository) is loaded: the map sizes and program types the
/// tables give it.
fn load_options(path: &Path, file: &str) -> LoadOptions {
    let mut opts = LoadOptions::for_path(path);
    for (_, map, n) in MAP_SIZES.iter().filter(|(o, _, _)| *o == file) {
        opts.map_sizes.insert(map.to_string(), *n);
    }
    for (_, prog, ty) in PROG_TYPES.iter().filter(|(o, _, _)| *o == file) {
        let choice = parse_prog_type(ty).unwrap_or_else(|e| panic!("PROG_TYPES: {ty}: {e}"));
        opts.prog_types.insert(prog.to_string(), choice);
    }
    opts
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The objects of a corpus: `.o` files under `dir`, recursively, sorted.
fn objects(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "o") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// What a selftest program's annotations (BTF decl tags `comment:test_*` on its FUNC) expect.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Expect {
    /// `__failure` (true) or `__success` (false); `None` when neither is written (test_loader
    /// then expects success).
    failure: Option<bool>,
    /// `__failure_unpriv` / `__success_unpriv`.
    failure_unpriv: Option<bool>,
    /// Whether the program is also tested unprivileged (any `*_unpriv` tag).
    unpriv: bool,
    /// `__msg()` texts, in order.
    msgs: Vec<String>,
    /// `__flag()` bits set and cleared (`__flag(!X)`).
    flags_set: u32,
    flags_clear: u32,
    /// Flags whose names were not understood.
    unknown_flags: Vec<String>,
    /// `__log_level()`.
    log_level: Option<u32>,
    /// `__auxiliary`: loaded with other tests (tail-call targets, ...).
    auxiliary: bool,
    /// `__description()`.
    description: Option<String>,
    /// `__arch()`: the architectures the test is for (all when empty).
    arches: Vec<String>,
    /// `__btf_path()`: the BTF its CO-RE relocations are resolved against instead of the
    /// kernel's.
    btf_path: Option<String>,
    /// Whether the program has any test tag.
    tagged: bool,
}

/// The `comment:` decl tags on function `func` of `btf` (component -1: the function itself).
fn func_tags<'a>(btf: &'a Btf, func: &str) -> Vec<&'a str> {
    let Some(id) = btf.find_by_name(func, BtfKind::Func) else { return Vec::new() };
    btf.types()
        .filter_map(|(_, t)| match t {
            BtfType::DeclTag { name_off, type_id, component_idx: -1 } if *type_id == id => {
                btf.string_at(*name_off).ok()
            }
            _ => None,
        })
        .filter_map(|s| s.strip_prefix("comment:"))
        .collect()
}

/// `N=text` of a counted tag (`__msg` puts `__COUNTER__` first) → text.
fn counted(s: &str) -> &str {
    match s.split_once('=') {
        Some((n, rest)) if n.chars().all(|c| c.is_ascii_digit()) => rest,
        _ => s,
    }
}

fn expectations(btf: Option<&Btf>, func: &str) -> Expect {
    let mut e = Expect::default();
    let Some(btf) = btf else { return e };
    for tag in func_tags(btf, func) {
        let Some(tag) = tag.strip_prefix("test_") else { continue };
        e.tagged = true;
        let (key, val) = tag.split_once('=').unwrap_or((tag, ""));
        match key {
            "expect_failure" => e.failure = Some(true),
            "expect_success" => e.failure = Some(false),
            "expect_failure_unpriv" => (e.failure_unpriv, e.unpriv) = (Some(true), true),
            "expect_success_unpriv" => (e.failure_unpriv, e.unpriv) = (Some(false), true),
            "expect_msg" => e.msgs.push(counted(val).to_string()),
            "expect_msg_unpriv"
            | "expect_xlated_unpriv"
            | "jited_unpriv"
            | "retval_unpriv"
            | "auxiliary_unpriv" => e.unpriv = true,
            "log_level" => e.log_level = val.parse().ok(),
            "auxiliary" => e.auxiliary = true,
            "description" => e.description = Some(val.to_string()),
            "arch" => e.arches.push(val.to_string()),
            "btf_path" => e.btf_path = Some(val.to_string()),
            "prog_flags" => {
                let (clear, name) = match val.strip_prefix('!') {
                    Some(n) => (true, n),
                    None => (false, val),
                };
                match prog_flags::parse(name) {
                    Some(bits) if clear => e.flags_clear |= bits,
                    Some(bits) => e.flags_set |= bits,
                    None => e.unknown_flags.push(val.to_string()),
                }
            }
            _ => {}
        }
    }
    e
}

/// Where the `__msg` pattern ends in `log[from..]` (an offset into `log`): literal text, with
/// `{{regex}}` parts matched loosely (the literal pieces must appear in order). test_loader
/// looks for each message after the previous one's match.
fn find_msg(log: &str, from: usize, pattern: &str) -> Option<usize> {
    let mut pieces = Vec::new();
    let mut rest = pattern;
    while let Some(start) = rest.find("{{") {
        pieces.push(&rest[..start]);
        match rest[start..].find("}}") {
            Some(end) => rest = &rest[start + end + 2..],
            None => {
                rest = "";
                break;
            }
        }
    }
    pieces.push(rest);
    let mut at = from.min(log.len());
    for p in pieces.into_iter().filter(|p| !p.is_empty()) {
        at += log.get(at..)?.find(p)? + p.len();
    }
    Some(at)
}

/// Whether `log` contains the `__msg` pattern.
fn log_has(log: &str, pattern: &str) -> bool {
    find_msg(log, 0, pattern).is_some()
}

/// How bpflab and the kernel compare on one program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Agree,
    Unsound,
    TooStrict,
    WrongClass,
    Unsupported,
    Panicked,
    Skipped,
}

impl Outcome {
    fn name(self) -> &'static str {
        match self {
            Outcome::Agree => "agree",
            Outcome::Unsound => "unsound",
            Outcome::TooStrict => "too_strict",
            Outcome::WrongClass => "wrong_class",
            Outcome::Unsupported => "unsupported",
            Outcome::Panicked => "panicked",
            Outcome::Skipped => "skipped",
        }
    }
}

/// Per-corpus counts.
#[derive(Clone, Debug, Default)]
struct Tally {
    objects: usize,
    objects_refused: usize,
    programs: usize,
    skipped: usize,
    kernel_accepts: usize,
    kernel_rejects: usize,
    outcomes: BTreeMap<Outcome, usize>,
    both_accept: usize,
    insns_close: usize,
    annotated: usize,
    annotation_agrees: usize,
    msgs: usize,
    msgs_found: usize,
    unpriv_not_run: usize,
}

impl Tally {
    fn decided(&self) -> usize {
        self.kernel_accepts + self.kernel_rejects
    }

    fn count(&self, o: Outcome) -> usize {
        self.outcomes.get(&o).copied().unwrap_or(0)
    }

    fn rate(&self) -> f64 {
        if self.decided() == 0 {
            0.0
        } else {
            self.count(Outcome::Agree) as f64 / self.decided() as f64
        }
    }

    fn add(&mut self, o: &Tally) {
        self.objects += o.objects;
        self.objects_refused += o.objects_refused;
        self.programs += o.programs;
        self.skipped += o.skipped;
        self.kernel_accepts += o.kernel_accepts;
        self.kernel_rejects += o.kernel_rejects;
        for (k, v) in &o.outcomes {
            *self.outcomes.entry(*k).or_default() += v;
        }
        self.both_accept += o.both_accept;
        self.insns_close += o.insns_close;
        self.annotated += o.annotated;
        self.annotation_agrees += o.annotation_agrees;
        self.msgs += o.msgs;
        self.msgs_found += o.msgs_found;
        self.unpriv_not_run += o.unpriv_not_run;
    }
}

/// The kernel half of a program's JSON record.
fn kernel_json(k: &KernelVerdict) -> Value {
    json!({
        "accepted": k.accepted,
        "errno": k.errno,
        "error_line": k.error_line,
        "class": k.error_line.as_deref().map(|l| ErrorKind::classify(l).name()),
        "processed_insns": k.processed_insns,
        "total_states": k.total_states,
        "peak_states": k.peak_states,
        "max_states_per_insn": k.max_states_per_insn,
        "verification_usec": k.verification_usec,
        "btf_refused": k.btf_refused,
    })
}

/// The thresholds file: `{"min_agreement": {"selftests": 0.0, ...}}`, fractions of the
/// programs the kernel decided.
fn thresholds() -> BTreeMap<String, f64> {
    let path = root().join("verifier/corpus/thresholds.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let Some(map) = v.get("min_agreement").and_then(Value::as_object) else {
        panic!("{}: no \"min_agreement\" object", path.display());
    };
    map.iter()
        .map(|(k, v)| {
            let f = v.as_f64().unwrap_or_else(|| panic!("{}: {k} is not a number", path.display()));
            assert!((0.0..=1.0).contains(&f), "{}: {k} = {f} is not in 0..=1", path.display());
            (k.clone(), f)
        })
        .collect()
}

/// What the whole run shares.
struct Context<'a> {
    helpers: &'a HelperRegistry,
    profile: Option<&'static KernelProfile>,
    unpriv_off: bool,
}

/// One object's results, printed and counted in object order after the workers finish.
#[derive(Default)]
struct ObjectRun {
    tally: Tally,
    records: Vec<Value>,
    unsound: Vec<String>,
    mismatches: Vec<String>,
    slowest: (u64, String),
    /// `SKIP:`, `UNSOUND:` and `PANIC:` lines.
    out: Vec<String>,
}

/// Records a skipped program.
fn skip(run: &mut ObjectRun, at: &str, record: &mut Value, why: String) {
    run.out.push(format!("SKIP: {at}: {why}"));
    record["skipped"] = json!(why);
    run.tally.skipped += 1;
    *run.tally.outcomes.entry(Outcome::Skipped).or_default() += 1;
}

/// Every program of the object at `path`, verified by bpflab and the kernel.
fn run_object(ctx: &Context<'_>, corpus: &str, path: &Path, selftests: bool) -> ObjectRun {
    let mut run = ObjectRun::default();
    run.tally.objects += 1;
    let file = path.strip_prefix(root()).unwrap_or(path).display().to_string();
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{file}: {e}"));
    let obj = match bpflab_loader::load(&bytes, &load_options(path, &file)) {
        Ok(o) => o,
        Err(e) => {
            run.tally.objects_refused += 1;
            run.out.push(format!("SKIP: {file}: bpflab's loader refuses it: {e}"));
            run.records.push(json!({
                "corpus": corpus, "object": file, "loader_error": e.to_string(),
            }));
            return run;
        }
    };
    let collection = &obj.collection;
    for (idx, prog) in collection.programs.iter().enumerate() {
        run.tally.programs += 1;
        let at = format!("{file}/{}", prog.name);
        let expect =
            if selftests { expectations(obj.btf.as_ref(), &prog.name) } else { Expect::default() };
        let mut record = json!({
        "corpus": corpus,
        "object": file,
        "program": prog.name,
        "section": prog.section,
        "prog_type": format!("{:?}", prog.prog_type),
            });
        if expect.tagged {
            record["expect"] = json!({
                "failure": expect.failure,
                "failure_unpriv": expect.failure_unpriv,
                "msgs": expect.msgs,
                "flags_set": expect.flags_set,
                "flags_clear": expect.flags_clear,
                "unknown_flags": expect.unknown_flags,
                "log_level": expect.log_level,
                "auxiliary": expect.auxiliary,
                "description": expect.description,
                "arches": expect.arches,
                "btf_path": expect.btf_path,
            });
        }
        if !expect.arches.is_empty() && !expect.arches.iter().any(|a| a == "X86_64") {
            let why = format!("a test for {} only", expect.arches.join(", "));
            skip(&mut run, &at, &mut record, why);
            run.records.push(record);
            continue;
        }
        if let Some(btf) = &expect.btf_path {
            let why = format!("its CO-RE relocations are for the BTF of {btf}, not the kernel's");
            skip(&mut run, &at, &mut record, why);
            run.records.push(record);
            continue;
        }
        if prog.prog_type == ProgType::Unspec {
            skip(&mut run, &at, &mut record, "no program type".into());
            run.records.push(record);
            continue;
        }
        // Only what keeps the kernel from loading the program at all skips it: a helper this
        // kernel lacks is a refusal it decides (and bpflab's registry follows the same
        // profile), and running or attaching is not verification.
        let missing: Vec<Missing> = ctx
            .profile
            .map(|f| {
                // Every map of the object is created whichever program loads.
                let mut m: Vec<Missing> = f
                    .missing_for_load(collection)
                    .into_iter()
                    .filter(|m| matches!(m, Missing::MapType(_)))
                    .collect();
                m.extend(f.missing_for_program(collection, idx));
                m
            })
            .unwrap_or_default()
            .into_iter()
            .filter(|m| {
                !matches!(m, Missing::Helper { .. } | Missing::TestRun(_) | Missing::KprobeAttach)
            })
            .collect();
        if !missing.is_empty() {
            let what: Vec<String> = missing.iter().map(ToString::to_string).collect();
            skip(&mut run, &at, &mut record, format!("kernel lacks {}", what.join(", ")));
            run.records.push(record);
            continue;
        }
        let (set, clear) = if selftests {
            (TEST_LOADER_FLAGS | expect.flags_set, expect.flags_clear)
        } else {
            (0, 0)
        };
        // The test's own log level (its __msg may be from a level-2 log), at least 1
        // so that the error is logged.
        let log_level = expect.log_level.map_or(BPF_LOG_LEVEL1, |l| (l & 3).max(1));
        let opts = VerdictOptions { prog_flags: set, clear_flags: clear, log_level };
        let kernel = match kernel_verdict(collection, idx, &opts) {
            Ok(k) => k,
            Err(e) => {
                skip(&mut run, &at, &mut record, format!("kernel cannot set it up: {e}"));
                run.records.push(record);
                continue;
            }
        };
        // A refusal before the verifier said anything (attribute checks: a struct_ops
        // type not registered, a flag the type refuses) is not a verifier verdict.
        if !kernel.accepted && kernel.error_line.is_none() {
            let why = format!(
                "the kernel refuses it without a verifier message ({})",
                std::io::Error::from_raw_os_error(kernel.errno)
            );
            skip(&mut run, &at, &mut record, why);
            run.records.push(record);
            continue;
        }
        let flags = (prog.flags | set) & !clear;
        record["prog_flags"] = json!(flags);
        record["kernel"] = kernel_json(&kernel);
        if kernel.accepted {
            run.tally.kernel_accepts += 1;
        } else {
            run.tally.kernel_rejects += 1;
        }
        // The annotations, checked against the kernel.
        if expect.tagged {
            let failure = expect.failure.unwrap_or(false);
            run.tally.annotated += 1;
            if failure != kernel.accepted {
                run.tally.annotation_agrees += 1;
            } else {
                run.mismatches.push(format!(
                    "{at}: annotated {}, the kernel {} it ({})",
                    if failure { "__failure" } else { "__success" },
                    if kernel.accepted { "accepts" } else { "rejects" },
                    kernel.error_line.as_deref().unwrap_or("-"),
                ));
            }
            // __msg is matched against the log at the test's own log level only when
            // that level is 1 (the level asked for here).
            let mut at = 0;
            let mut missing = Vec::new();
            for m in &expect.msgs {
                run.tally.msgs += 1;
                match find_msg(&kernel.log, at, m) {
                    Some(end) => {
                        run.tally.msgs_found += 1;
                        at = end;
                    }
                    None => missing.push(m.clone()),
                }
            }
            record["expect"]["msgs_missing"] = json!(missing);
            if expect.unpriv && ctx.unpriv_off {
                run.tally.unpriv_not_run += 1;
            }
        }
        // bpflab's verdict.
        let config = Config { flags: Flags::from_bits(flags), ..Config::default() };
        let t = Instant::now();
        let report =
            catch_unwind(AssertUnwindSafe(|| verify(collection, idx, ctx.helpers, &config)));
        let usec = t.elapsed().as_micros() as u64;
        if usec > run.slowest.0 {
            run.slowest = (usec, at.clone());
        }
        let outcome = match &report {
            Err(_) => Outcome::Panicked,
            Ok(r) => match (&r.verdict, kernel.accepted) {
                (Verdict::Unsupported(_), _) => Outcome::Unsupported,
                (Verdict::Accepted, true) => Outcome::Agree,
                (Verdict::Accepted, false) => Outcome::Unsound,
                (Verdict::Rejected(_), true) => Outcome::TooStrict,
                (Verdict::Rejected(e), false) => {
                    let k = kernel.error_line.as_deref().map(ErrorKind::classify);
                    if k == Some(e.kind) { Outcome::Agree } else { Outcome::WrongClass }
                }
            },
        };
        *run.tally.outcomes.entry(outcome).or_default() += 1;
        record["outcome"] = json!(outcome.name());
        record["bpflab"] = match &report {
            Err(_) => json!({ "verdict": "panicked", "usec": usec }),
            Ok(r) => {
                let mut b = json!({
                    "verdict": r.verdict.name(),
                    "processed_insns": r.stats.processed_insns,
                    "total_states": r.stats.total_states,
                    "peak_states": r.stats.peak_states,
                    "usec": usec,
                });
                match &r.verdict {
                    Verdict::Rejected(e) => {
                        b["class"] = json!(e.kind.name());
                        b["message"] = json!(e.message);
                        b["insn"] = json!(e.insn);
                    }
                    Verdict::Unsupported(u) => {
                        b["feature"] = json!(u.feature);
                        b["insn"] = json!(u.insn);
                    }
                    Verdict::Accepted => {}
                }
                b
            }
        };
        if let (Ok(r), true) = (&report, kernel.accepted && outcome == Outcome::Agree) {
            run.tally.both_accept += 1;
            let theirs = kernel.processed_insns.unwrap_or(0) as f64;
            let ours = r.stats.processed_insns as f64;
            let close = (ours - theirs).abs() <= 0.1 * theirs.max(1.0);
            if close {
                run.tally.insns_close += 1;
            }
            record["insns_close"] = json!(close);
        }
        match outcome {
            Outcome::Unsound => {
                let line = format!(
                    "{at}: bpflab accepts, the kernel rejects: {}",
                    kernel.error_line.as_deref().unwrap_or("(no log)")
                );
                run.out.push(format!("UNSOUND: {line}"));
                run.unsound.push(line);
            }
            Outcome::Panicked => run.out.push(format!("PANIC: {at}: bpflab's verifier panicked")),
            _ => {}
        }
        run.records.push(record);
    }
    run
}

/// The disagreements in detail, for the markdown report: the features bpflab reports
/// unsupported most often, the pairs of error classes that differ, and every program bpflab
/// rejects that the kernel accepts.
fn breakdown(records: &[Value]) -> String {
    let str_at = |r: &Value, a: &str, b: &str| r[a][b].as_str().unwrap_or("-").to_string();
    let mut features: BTreeMap<String, usize> = BTreeMap::new();
    let mut classes: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut strict = Vec::new();
    for r in records {
        match r["outcome"].as_str() {
            Some("unsupported") => {
                *features.entry(str_at(r, "bpflab", "feature")).or_default() += 1
            }
            Some("wrong_class") => {
                *classes
                    .entry((str_at(r, "kernel", "class"), str_at(r, "bpflab", "class")))
                    .or_default() += 1
            }
            Some("too_strict") => strict.push(format!(
                "| {}/{} | {} |",
                r["object"].as_str().unwrap_or("-"),
                r["program"].as_str().unwrap_or("-"),
                str_at(r, "bpflab", "message").replace('|', "/"),
            )),
            _ => {}
        }
    }
    let mut features: Vec<(String, usize)> = features.into_iter().collect();
    features.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut out = String::from(
        "\n## Unsupported, most frequent first\n\n| feature | programs |\n|---|---|\n",
    );
    for (f, n) in features.iter().take(25) {
        out.push_str(&format!("| {} | {n} |\n", f.replace('|', "/")));
    }
    out.push_str(
        "\n## Both reject, different classes\n\n| kernel | bpflab | programs |\n|---|---|---|\n",
    );
    for ((k, b), n) in &classes {
        out.push_str(&format!("| {k} | {b} | {n} |\n"));
    }
    out.push_str(
        "\n## bpflab rejects, the kernel accepts\n\n| program | bpflab's error |\n|---|---|\n",
    );
    for line in &strict {
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[test]
fn agreement_with_the_kernel() {
    if let Err(e) = probe() {
        println!("SKIP: bpf(2) unavailable: {e}");
        return;
    }
    let profile = features().ok();
    let helpers = match profile {
        Some(p) => HelperRegistry::standard().with_profile(p),
        None => HelperRegistry::standard(),
    };
    let unpriv_off = unprivileged_bpf_disabled().is_none_or(|v| v != 0);
    let corpora = [
        ("selftests", root().join("verifier/corpus/selftests/obj"), true),
        ("fixtures", root().join("programs/tests"), false),
        ("corpus", root().join("programs/corpus"), false),
    ];
    let started = Instant::now();
    let mut records = Vec::new();
    let mut tallies: Vec<(&str, Tally)> = Vec::new();
    let mut unsound = Vec::new();
    let mut annotation_mismatches = Vec::new();
    let mut slowest = (0u64, String::new());
    let ctx = Context { helpers: &helpers, profile, unpriv_off };
    let mut jobs = Vec::new();
    for (corpus, dir, selftests) in &corpora {
        let files = objects(dir);
        assert!(!files.is_empty(), "corpus {corpus}: no objects in {}", dir.display());
        jobs.extend(files.into_iter().map(|f| (*corpus, f, *selftests)));
    }
    // Objects are independent: they run on all cores, results are kept in object order.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: std::sync::Mutex<Vec<Option<ObjectRun>>> =
        std::sync::Mutex::new((0..jobs.len()).map(|_| None).collect());
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some((corpus, path, selftests)) = jobs.get(i) else { break };
                    let run = run_object(&ctx, corpus, path, *selftests);
                    results.lock().expect("no worker panicked holding it")[i] = Some(run);
                }
            });
        }
    });
    let results = results.into_inner().expect("workers finished");
    for (corpus, _, _) in &corpora {
        let mut tally = Tally::default();
        for ((c, _, _), run) in jobs.iter().zip(&results) {
            let Some(run) = run.as_ref().filter(|_| c == corpus) else { continue };
            for line in &run.out {
                println!("{line}");
            }
            tally.add(&run.tally);
            records.extend(run.records.iter().cloned());
            unsound.extend(run.unsound.iter().cloned());
            annotation_mismatches.extend(run.mismatches.iter().cloned());
            if run.slowest.0 > slowest.0 {
                slowest = run.slowest.clone();
            }
        }
        tallies.push((corpus, tally));
    }
    let mut all = Tally::default();
    for (_, t) in &tallies {
        all.add(t);
    }
    tallies.push(("all", all));

    // The table.
    let mut md = String::from(
        "| corpus | objects (loader refused) | programs | skipped | kernel-decided (accepts/rejects) \
         | agree | unsound (bpflab accepts, kernel rejects) | too strict (bpflab rejects, kernel accepts) \
         | wrong class | unsupported | panicked | agreement | insns within 10% (of both-accept) \
         | annotations agree | __msg found |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for (name, t) in &tallies {
        md.push_str(&format!(
            "| {name} | {} ({}) | {} | {} | {} ({}/{}) | {} | {} | {} | {} | {} | {} | {:.1}% | {}/{} \
             | {}/{} | {}/{} |\n",
            t.objects,
            t.objects_refused,
            t.programs,
            t.skipped,
            t.decided(),
            t.kernel_accepts,
            t.kernel_rejects,
            t.count(Outcome::Agree),
            t.count(Outcome::Unsound),
            t.count(Outcome::TooStrict),
            t.count(Outcome::WrongClass),
            t.count(Outcome::Unsupported),
            t.count(Outcome::Panicked),
            100.0 * t.rate(),
            t.insns_close,
            t.both_accept,
            t.annotation_agrees,
            t.annotated,
            t.msgs_found,
            t.msgs,
        ));
    }
    let unpriv_note = if unpriv_off {
        format!(
            "\nUnprivileged variants (`__failure_unpriv`, `__msg_unpriv`) are not run: \
             kernel.unprivileged_bpf_disabled = {}; {} annotated programs have one.\n",
            unprivileged_bpf_disabled().map_or("unreadable".into(), |v| v.to_string()),
            tallies.last().map_or(0, |(_, t)| t.unpriv_not_run)
        )
    } else {
        String::new()
    };
    md.push_str(&unpriv_note);
    md.push_str(&breakdown(&records));
    println!("\n{md}");
    for m in &annotation_mismatches {
        println!("ANNOTATION: {m}");
    }
    println!(
        "agreement: {} programs in {:.1}s; bpflab's slowest verification {:.1} ms ({})",
        records.len(),
        started.elapsed().as_secs_f64(),
        slowest.0 as f64 / 1000.0,
        slowest.1
    );

    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    std::fs::create_dir_all(&target).expect("target directory");
    let summary: Vec<Value> = tallies
        .iter()
        .map(|(name, t)| {
            json!({
                "corpus": name,
                "objects": t.objects,
                "objects_refused_by_loader": t.objects_refused,
                "programs": t.programs,
                "skipped": t.skipped,
                "kernel_accepts": t.kernel_accepts,
                "kernel_rejects": t.kernel_rejects,
                "outcomes": t.outcomes.iter().map(|(k, v)| (k.name(), *v)).collect::<BTreeMap<_, _>>(),
                "agreement": t.rate(),
                "both_accept": t.both_accept,
                "insns_within_10pct": t.insns_close,
                "annotated": t.annotated,
                "annotation_agrees": t.annotation_agrees,
                "msgs": t.msgs,
                "msgs_found": t.msgs_found,
                "unpriv_not_run": t.unpriv_not_run,
            })
        })
        .collect();
    let out = json!({ "summary": summary, "programs": records });
    let json_path = target.join("verifier-agreement.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&out).expect("json"))
        .expect("write the JSON results");
    std::fs::write(target.join("verifier-agreement.md"), &md).expect("write the table");
    println!("wrote {} and verifier-agreement.md", json_path.display());

    // Soundness first: bpflab must never accept what the kernel rejects.
    assert!(
        unsound.is_empty(),
        "{} programs bpflab accepts and the kernel rejects:\n{}",
        unsound.len(),
        unsound.join("\n")
    );
    for (corpus, min) in thresholds() {
        let Some((_, t)) = tallies.iter().find(|(n, _)| *n == corpus) else {
            panic!("thresholds.json names corpus {corpus:?}, which does not exist");
        };
        assert!(
            t.rate() + 1e-9 >= min,
            "corpus {corpus}: agreement {:.4} is below the threshold {min}",
            t.rate()
        );
    }
}

#[test]
fn annotations_parse_from_btf_decl_tags() {
    // verifier_and.c's first test: __description("invalid and of negative number") __failure
    // __msg("R0 max value is outside of the allowed memory range") __failure_unpriv
    // __flag(BPF_F_ANY_ALIGNMENT).
    let path = root().join("verifier/corpus/selftests/obj/verifier_and.bpf.o");
    let bytes = std::fs::read(&path).expect("the selftests corpus is committed");
    let obj = bpflab_loader::load(&bytes, &LoadOptions::for_path(&path)).expect("loads");
    let btf = obj.btf.as_ref().expect("selftests have BTF");
    let e = expectations(Some(btf), "invalid_and_of_negative_number");
    assert!(e.tagged);
    assert_eq!(e.failure, Some(true));
    assert_eq!(e.description.as_deref(), Some("invalid and of negative number"));
    assert_eq!(e.msgs, ["R0 max value is outside of the allowed memory range"]);
    assert!(e.unpriv, "{e:?}");
    assert_eq!(e.failure_unpriv, Some(true));
    assert_eq!((e.flags_set, e.flags_clear), (prog_flags::ANY_ALIGNMENT, 0));
    assert!(e.unknown_flags.is_empty());
    assert!(e.arches.is_empty() && e.btf_path.is_none());
    // __btf_path: CO-RE against a custom BTF.
    let path = root().join("verifier/corpus/selftests/obj/verifier_bitfield_write.bpf.o");
    let bytes = std::fs::read(&path).expect("the selftests corpus is committed");
    let obj = bpflab_loader::load(&bytes, &LoadOptions::for_path(&path)).expect("loads");
    let e = expectations(obj.btf.as_ref(), "single_field_roundtrip");
    assert_eq!(e.btf_path.as_deref(), Some("btf__core_reloc_bitfields.bpf.o"));
    assert_eq!(e.failure, Some(false));
    // __arch: the test is for x86-64 only.
    let path = root().join("verifier/corpus/selftests/obj/verifier_tailcall_jit.bpf.o");
    let bytes = std::fs::read(&path).expect("the selftests corpus is committed");
    let obj = bpflab_loader::load(&bytes, &LoadOptions::for_path(&path)).expect("loads");
    assert_eq!(expectations(obj.btf.as_ref(), "main").arches, ["X86_64"]);
    // A program without tags expects nothing.
    assert_eq!(expectations(Some(btf), "no_such_function"), Expect::default());
}

#[test]
fn msg_patterns_match_like_test_loader() {
    let log = "0: (b7) r0 = 1\nR0 max value is outside of the allowed memory range\n";
    assert!(log_has(log, "R0 max value is outside"));
    assert!(log_has(log, "r0 = {{[0-9]+}}"));
    assert!(log_has(log, "0: (b7) r0 = 1"));
    assert!(!log_has(log, "R1 max value"));
    assert!(!log_has(log, "outside{{.*}}0: (b7)"));
    // Messages are looked for in order, each after the previous one.
    let first = find_msg(log, 0, "r0 = 1").expect("found");
    assert!(find_msg(log, first, "max value").is_some());
    assert_eq!(find_msg(log, first, "(b7)"), None);
}
