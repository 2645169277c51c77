//! bpflab's verifier log against the running kernel's, line by line, for the same program.
//!
//! Allowed differences (documented in verifier/src/log.rs), removed from both logs before the
//! comparison by [`normalize`]:
//! - map loads: the kernel prints the map's address (`r1 = 0xffff888101b6e000`), bpflab
//!   `r1 = map[NAME]`;
//! - `verification time N usec` numbers;
//! - the kernel's precision-tracking lines (`mark_precise: ...`) and `P` marks, and its 6.18
//!   stack-liveness and loop lines at level 2 (`(0) frame 0 insn 3 +live -8`, `SCC enter
//!   (1)`); a state the kernel
//!   printed on its own line because such lines came between goes back on its
//!   instruction's line;
//! - `old state:` after an infinite loop (bpflab's stored states have dead registers cleared);
//! - bpflab's own lines after an error (`at FILE:LINE: ...`, `path: ...`) and
//!   `bpflab: unsupported: ...`.
//!
//! `cargo test -p bpflab-verifier --test log`

use std::path::Path;

use bpflab_kernel::verdict::{VerdictOptions, kernel_verdict};
use bpflab_verifier::{Config, Report, Verdict, verify};
use bpflab_vm::asm::assemble;
use bpflab_vm::engine::KernelLineInfo;
use bpflab_vm::helpers::HelperRegistry;
use bpflab_vm::spec::{MapSpec, MapType};
use bpflab_vm::{Collection, ProgType, Program};

/// `log_level` bits as the kernel's: level 1, level 2, statistics.
const STATS: u8 = 4;

fn coll(src: &str, ty: ProgType) -> Collection {
    let insns = assemble(src).expect("assembles");
    let mut c = Collection::default();
    c.programs.push(Program::raw("t", insns).with_type(ty));
    c.maps.push(MapSpec::new("counts", MapType::Hash, 4, 8, 16));
    c
}

fn bpflab(c: &Collection, index: usize, level: u8) -> Report {
    let config = Config { log_level: level, ..Config::default() };
    verify(c, index, &HelperRegistry::standard(), &config)
}

fn kernel(c: &Collection, index: usize, level: u8) -> Option<String> {
    let opts = VerdictOptions { log_level: u32::from(level & 3), ..Default::default() };
    match kernel_verdict(c, index, &opts) {
        Ok(v) => Some(v.log),
        Err(e) => {
            eprintln!("SKIP: the kernel cannot load the program: {e}");
            None
        }
    }
}

/// The kernel's `vlog_alignment`, for re-joining states split by precision lines.
fn align(pos: usize) -> usize {
    (pos + 4).max(40).div_ceil(8) * 8 - pos - 1
}

/// Whether `line` is an instruction line (`12: (b7) r0 = 0`).
fn is_insn_line(line: &str) -> bool {
    line.split_once(": (")
        .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// An LD_IMM64 line (instruction or liveness table) with the map's kernel address or
/// bpflab's `map[NAME]` as `map[?]`, the state after it re-aligned.
fn normalize_map_load(line: &str) -> String {
    let (insn, state) = match line.split_once("  ;") {
        Some((i, s)) => (i.trim_end(), Some(s)),
        None => (line, None),
    };
    let Some(at) = insn.find(") r").filter(|&i| insn[..i].ends_with("(18")) else {
        return line.to_string();
    };
    let Some(eq) = insn[at..].find(" = ").map(|e| at + e + 3) else { return line.to_string() };
    let rhs = &insn[eq..];
    let is_addr = rhs.len() == 18 && rhs.starts_with("0xffff");
    if !is_addr && !rhs.starts_with("map[") {
        return line.to_string();
    }
    let insn = format!("{}map[?]", &insn[..eq]);
    match state {
        Some(s) => {
            let pad = align(insn.len() + 1);
            format!("{insn}{:pad$};{s}", ' ')
        }
        None => insn,
    }
}

/// The log with the documented differences taken out (see the module docs).
fn normalize(log: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut dropped_after_insn = false;
    for line in log.lines() {
        let kernel_only = line.starts_with("mark_precise:")
            || line.starts_with("SCC enter (")
            || line.starts_with("SCC exit (")
            || (line.starts_with("frame ") && line.contains(": propagating "))
            || (line.starts_with('(') && line.contains(") frame ") && line.contains(" insn "))
            || (line.starts_with('(') && line.contains(") live stack update"));
        let bpflab_only = line.starts_with("at ")
            || line.starts_with("path: ")
            || line.starts_with("bpflab: ")
            || line.starts_with("old state:");
        if kernel_only || bpflab_only {
            dropped_after_insn |= out.last().is_some_and(|l| is_insn_line(l) && !l.contains(" ; "));
            continue;
        }
        let mut l = line.to_string();
        if l.contains("(18) r") {
            l = normalize_map_load(&l);
        }
        if l.starts_with("verification time ") {
            l = "verification time N usec".into();
        }
        let l = l.replace("=P", "=");
        // A state line `N: R..` right after dropped lines goes back on its instruction's line.
        if dropped_after_insn
            && let Some((n, state)) = l.split_once(':')
            && n.bytes().all(|b| b.is_ascii_digit())
            && !state.starts_with(" (")
            && state != " safe"
            && let Some(prev) = out.last_mut()
        {
            let pad = align(prev.len() + 1);
            *prev = format!("{prev}{:pad$};{state}", ' ');
            dropped_after_insn = false;
            continue;
        }
        dropped_after_insn = false;
        out.push(l);
    }
    out
}

/// Compares the two logs line by line and fails naming the first difference.
fn assert_same_log(what: &str, ours: &str, theirs: &str) {
    let (a, b) = (normalize(ours), normalize(theirs));
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert_eq!(
            x,
            y,
            "{what}: line {} differs\n--- bpflab:\n{ours}\n--- kernel:\n{theirs}",
            i + 1
        );
    }
    assert_eq!(
        a.len(),
        b.len(),
        "{what}: line counts differ\n--- bpflab:\n{ours}\n--- kernel:\n{theirs}"
    );
}

/// For a program bpflab cannot decide: its log up to the unsupported instruction is the
/// kernel's (the instruction's own line is a prefix of the kernel's, which goes on with the
/// state after it). Returns the lines compared.
fn assert_same_prefix(what: &str, ours: &str, theirs: &str) -> usize {
    let a: Vec<String> = normalize(ours)
        .into_iter()
        .take_while(|l| !l.starts_with("processed ") && !l.starts_with("verification time "))
        .collect();
    let b = normalize(theirs);
    assert!(
        a.len() <= b.len(),
        "{what}: bpflab's log is longer\n--- bpflab:\n{ours}\n--- kernel:\n{theirs}"
    );
    for (i, x) in a.iter().enumerate() {
        let y = &b[i];
        let ok = if i + 1 == a.len() { y.starts_with(x.as_str()) } else { x == y };
        assert!(
            ok,
            "{what}: line {} differs:\n  {x}\n  {y}\n--- bpflab:\n{ours}\n--- kernel:\n{theirs}",
            i + 1
        );
    }
    a.len()
}

/// Both logs of an assembled program, at `level` (with the statistics).
fn compare(what: &str, src: &str, ty: ProgType, level: u8) -> Option<Report> {
    let c = coll(src, ty);
    let ours = bpflab(&c, 0, level | STATS);
    let theirs = kernel(&c, 0, level)?;
    assert_same_log(what, &ours.log, &theirs);
    Some(ours)
}

/// A path to a scalar the verifier knows nothing of, without memory: pointer minus pointer.
const UNKNOWN_R2: &str = "r2 = r1\nr2 -= r1\n";

#[test]
fn accepted_program_level1_is_only_the_statistics() {
    let Some(r) = compare("r0 = 0", "r0 = 0\nexit", ProgType::Xdp, 1) else { return };
    assert!(r.verdict.is_accepted());
    assert_eq!(r.log.lines().count(), 3, "{}", r.log);
    assert!(r.log.starts_with("verification time "));
    assert!(
        r.log.contains("\nstack depth 0\nprocessed 2 insns (limit 1000000) max_states_per_insn 0")
    );
}

#[test]
fn accepted_program_level2_has_the_header_and_every_instruction() {
    let Some(r) = compare("r0 = 0", "r0 = 0\nexit", ProgType::Xdp, 2) else { return };
    let want = "func#0 @0\nLive regs before insn:\n      0: .......... (b7) r0 = 0\n      \
                1: 0......... (95) exit\n0: R1=ctx() R10=fp0\n\
                0: (b7) r0 = 0                        ; R0=0\n1: (95) exit\n";
    assert!(r.log.starts_with(want), "{}", r.log);
}

/// A branch on an unknown value whose taken side reads an uninitialised register: level 1
/// shows only the failing path (the other side's lines are gone, with the kernel's quirk of
/// the jump line ending in the padding space), level 2 both paths and a `from` line.
const BRANCHY: &str = "r2 = r1\nr2 -= r1\nr0 = r2\nr0 &= 7\nif r0 > 3 goto +2\n\
                       r0 += 1\nexit\nr0 = 0\nr3 = r4\nexit";

#[test]
fn rejected_branch_level1_shows_the_failing_path() {
    let Some(r) = compare("branchy", BRANCHY, ProgType::Xdp, 1) else { return };
    let Verdict::Rejected(e) = &r.verdict else { panic!("{:?}", r.verdict) };
    assert_eq!(e.message, "R4 !read_ok");
    assert!(r.log.contains("4: (25) if r0 > 0x3 goto pc+2 7: "), "{}", r.log);
    assert!(!r.log.contains("5: (07) r0 += 1"), "{}", r.log);
    // bpflab's path after the error: the branch at insn 4, taken (no line info).
    assert!(r.log.contains("R4 !read_ok\npath: insn 4 (taken)\n"), "{}", r.log);
}

#[test]
fn rejected_branch_level2_shows_every_path() {
    let Some(r) = compare("branchy", BRANCHY, ProgType::Xdp, 2) else { return };
    assert!(r.log.contains("5: (07) r0 += 1"), "{}", r.log);
    assert!(r.log.contains("\n\nfrom 4 to 7: R0="), "{}", r.log);
}

#[test]
fn alu_states_and_stack_slots_match() {
    let src = format!(
        "{UNKNOWN_R2}r3 = r2\nr3 &= 0xff0\nw4 = 7\nw4 += w3\nr5 = -1\nr5 <<= 4\nr6 = r2\nr6 s>>= 60\n\
         r7 = 0x123456789 ll\n*(u64 *)(r10 - 8) = r3\n*(u32 *)(r10 - 12) = 5\n*(u8 *)(r10 - 24) = r4\n\
         r8 = r10\nr8 += -16\nr0 = *(u64 *)(r10 - 8)\nr0 = be16 r0\nr0 = -r0\nif w0 s> 0xffff goto +1\n\
         r0 = 0\nr1 = *(u64 *)(r10 - 32)\nr0 = r9\nexit"
    );
    let Some(r) = compare("alu", &src, ProgType::Xdp, 1) else { return };
    let Verdict::Rejected(e) = &r.verdict else { panic!("{:?}", r.verdict) };
    assert_eq!(e.message, "R9 !read_ok");
    compare("alu", &src, ProgType::Xdp, 2);
}

#[test]
fn helper_call_and_map_value_states_match() {
    // The key is a global variable (a map value), so no stack slot is involved.
    let src = "r1 = map[idx:0] ll\nr2 = map[idx:1][0]+4 ll\ncall 1\nr6 = r0\ncall 7\n\
               r7 = r0\nr0 = *(u64 *)(r6 + 0)\nr0 = 0\nexit";
    let mut c = coll(src, ProgType::Xdp);
    c.maps.push(MapSpec::new("glob", MapType::Array, 4, 16, 1));
    let ours = bpflab(&c, 0, 1 | STATS);
    let Some(theirs) = kernel(&c, 0, 1) else { return };
    assert_same_log("lookup", &ours.log, &theirs);
    assert!(ours.log.contains("0: (18) r1 = map[counts]"), "{}", ours.log);
    assert!(ours.log.contains("2: (18) r2 = map[glob]+4"), "{}", ours.log);
    assert!(
        ours.log.contains("; R0=map_value_or_null(id=1,map=counts,ks=4,vs=8)\n"),
        "{}",
        ours.log
    );
    let Some(theirs) = kernel(&c, 0, 2) else { return };
    assert_same_log("lookup", &bpflab(&c, 0, 2 | STATS).log, &theirs);
}

#[test]
fn packet_range_states_match() {
    let src = "r2 = *(u32 *)(r1 + 0)\nr3 = *(u32 *)(r1 + 4)\nr4 = r2\nr4 += 14\n\
               if r4 > r3 goto +3\nr0 = *(u8 *)(r2 + 12)\nr0 = 1\nexit\nr0 = *(u8 *)(r2 + 12)\nexit";
    let Some(r) = compare("packet", src, ProgType::Xdp, 1) else { return };
    assert!(r.log.contains("R4=pkt(off=14,r=0xfffffffffffffffe)"), "{}", r.log);
    compare("packet", src, ProgType::Xdp, 2);
}

#[test]
fn bpf_to_bpf_call_states_match() {
    let src = "r1 = 5\ncall pc+2\nr0 = 0\nexit\nr0 = r1\nr0 += 3\nif r0 > 7 goto +1\n\
               r0 = *(u8 *)(r0 + 0)\nexit";
    compare("call", src, ProgType::Xdp, 2);
    let bad = "r1 = 5\ncall pc+2\nr0 = 0\nexit\nr0 = r1\nr0 += 3\nif r0 > 7 goto +1\nexit\n\
               r0 = *(u8 *)(r0 + 0)\nexit";
    let Some(r) = compare("call", bad, ProgType::Xdp, 1) else { return };
    assert!(r.log.contains("caller:\n R10=fp0\ncallee:\n frame1: R1=5 R10=fp0\n"), "{}", r.log);
}

/// Fixtures with BTF line info: the whole level-2 log (several paths, `from` lines, pruning,
/// source lines) is the kernel's; for a program bpflab cannot decide, the log up to the
/// instruction it stops at.
#[test]
fn fixture_logs_match_with_source_lines() {
    let cases = [
        ("csum", "csum_nat_diff"),
        ("tc_sections", "tc_drop_http"),
        ("socket_filter", "sock_ldabs"),
        ("xdp_frags", "xf_shrink_all"),
        ("tcx_sections", "tcx_ingress_dns"),
    ];
    let mut compared = 0;
    for (object, prog) in cases {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../programs/tests/{object}.bpf.o"));
        let bytes = std::fs::read(&path).expect("fixture");
        let obj = bpflab_loader::load(&bytes, &bpflab_loader::LoadOptions::for_path(&path))
            .expect("loads");
        let c = &obj.collection;
        let i = c.programs.iter().position(|p| p.name == prog).expect("program");
        let ours = bpflab(c, i, 2 | STATS);
        let Some(theirs) = kernel(c, i, 2) else { continue };
        let what = format!("{object}.bpf.o {prog}");
        match ours.verdict {
            Verdict::Unsupported(_) => compared += assert_same_prefix(&what, &ours.log, &theirs),
            _ => {
                assert_same_log(&what, &ours.log, &theirs);
                compared += ours.log.lines().count();
            }
        }
        assert!(
            ours.log.contains(&format!(" @ {object}.bpf.c:")),
            "{what}: no source line\n{}",
            ours.log
        );
    }
    assert!(compared > 300, "{compared} lines compared");
}

/// Raw BTF with only a string table (enough for line info).
fn btf_with_strings(strings: &[&str]) -> (Vec<u8>, Vec<u32>) {
    let mut tab = vec![0u8];
    let mut offs = Vec::new();
    for s in strings {
        offs.push(tab.len() as u32);
        tab.extend_from_slice(s.as_bytes());
        tab.push(0);
    }
    let mut b = Vec::new();
    b.extend_from_slice(&0xeb9fu16.to_le_bytes());
    b.push(1);
    b.push(0);
    for v in [24u32, 0, 0, 0, tab.len() as u32] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    b.extend_from_slice(&tab);
    (b, offs)
}

#[test]
fn errors_show_the_source_line_and_the_path() {
    let mut c = coll(BRANCHY, ProgType::Xdp);
    let (btf, o) = btf_with_strings(&[
        "/src/prog.c",
        "long d = a - b;",
        "    if ((d & 7) > 3)",
        "return d + 1;",
        "return x;",
    ]);
    c.btf = Some(btf);
    let li = |slot: u32, text: usize, line: u32| KernelLineInfo {
        slot,
        file_name_off: o[0],
        line_off: o[text],
        line_col: line << 10 | 5,
    };
    c.programs[0].line_info = vec![li(0, 1, 10), li(2, 2, 11), li(5, 3, 12), li(7, 4, 14)];
    for level in [0u8, 1, 2] {
        let r = bpflab(&c, 0, level);
        let Verdict::Rejected(e) = &r.verdict else { panic!("{:?}", r.verdict) };
        let line = e.line.as_ref().expect("source line");
        assert_eq!(
            (line.file.as_str(), line.line, line.text.as_str()),
            ("prog.c", 14, "return x;")
        );
        let tail = "R4 !read_ok\nat prog.c:14: return x;\npath: prog.c:11 (taken)\nprocessed ";
        assert!(r.log.contains(tail), "level {level}:\n{}", r.log);
        if level > 0 {
            assert!(r.log.contains("; if ((d & 7) > 3) @ prog.c:11\n2: (bf) r0 = r2"), "{}", r.log);
        }
    }
}

#[test]
fn the_path_folds_repeats_and_keeps_the_last_decisions() {
    // A loop of 20 iterations, each forking on a random value, then an error.
    let src = "r6 = 0\nr7 = 0\nloop:\ncall 7\nif r0 > 5 goto +1\nr6 += 1\nr7 += 1\n\
               if r7 < 20 goto loop\nr0 = *(u8 *)(r6 + 0)\nexit"
        .to_string();
    let c = coll(&src, ProgType::Xdp);
    let r = bpflab(&c, 0, 0);
    let Verdict::Rejected(_) = &r.verdict else { panic!("{:?}\n{}", r.verdict, r.log) };
    let path = r.log.lines().find(|l| l.starts_with("path: ")).expect("a path line");
    assert_eq!(path, "path: insn 3 (not taken) x20");
}

#[test]
fn level0_formats_nothing_per_instruction() {
    let c = coll(BRANCHY, ProgType::Xdp);
    let r = bpflab(&c, 0, 0);
    assert_eq!(r.log, format!("R4 !read_ok\npath: insn 4 (taken)\n{}\n", r.stats.line(1_000_000)));
}

fn decided_fixtures(max_insns: u64) -> Vec<(Collection, usize, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../programs/tests");
    let mut paths: Vec<_> =
        std::fs::read_dir(&dir).expect("fixtures").flatten().map(|e| e.path()).collect();
    paths.sort();
    let mut out = Vec::new();
    for path in paths.iter().filter(|p| p.extension().is_some_and(|x| x == "o")) {
        let bytes = std::fs::read(path).expect("fixture");
        let Ok(obj) = bpflab_loader::load(&bytes, &bpflab_loader::LoadOptions::for_path(path))
        else {
            continue;
        };
        for i in 0..obj.collection.programs.len() {
            let r = bpflab(&obj.collection, i, 0);
            if !matches!(r.verdict, Verdict::Unsupported(_)) && r.stats.processed_insns <= max_insns
            {
                let name = format!("{}:{}", path.display(), obj.collection.programs[i].name);
                out.push((obj.collection.clone(), i, name));
            }
        }
    }
    out
}

/// Logging never changes what is verified: verdict and counters are the same at every level.
#[test]
fn the_log_level_changes_nothing_but_the_log() {
    let fixtures = decided_fixtures(5000);
    assert!(fixtures.len() > 20, "{} fixtures decided", fixtures.len());
    for (c, i, name) in &fixtures {
        let r0 = bpflab(c, *i, 0);
        for level in [1, 2, 1 | STATS] {
            let r = bpflab(c, *i, level);
            assert_eq!(r.verdict, r0.verdict, "{name} at level {level}");
            assert_eq!(
                r.stats.processed_insns, r0.stats.processed_insns,
                "{name} at level {level}"
            );
            assert_eq!(r.stats.total_states, r0.stats.total_states, "{name} at level {level}");
            assert_eq!(r.stats.peak_states, r0.stats.peak_states, "{name} at level {level}");
        }
        // Level 0 formats no instruction.
        assert!(!r0.log.contains(": ("), "{name}: {}", r0.log);
    }
}

#[test]
fn infinite_loop_shows_both_states() {
    let src = "r0 = 0\nif r0 > 0 goto +2\nr0 = 1\ngoto -2\nexit";
    let Some(r) = compare("loop", src, ProgType::SocketFilter, 1) else { return };
    let Verdict::Rejected(e) = &r.verdict else { panic!("{:?}", r.verdict) };
    assert_eq!(e.message, "infinite loop detected at insn 2");
    assert!(
        r.log.contains(
            "infinite loop detected at insn 2\ncur state: R0=1 R1=ctx() R10=fp0\nold state: "
        ),
        "{}",
        r.log
    );
    compare("loop", src, ProgType::SocketFilter, 2);
}

#[test]
fn cfg_errors_at_level2_list_the_subprograms_first() {
    let src = "r1 = 1\ncall pc+2\nr0 = 0\nexit\nr0 = 0\nexit\nr0 = 1\nexit";
    let Some(r) = compare("unreachable", src, ProgType::SocketFilter, 2) else { return };
    assert!(r.log.starts_with("func#0 @0\nfunc#1 @4\nunreachable insn 6\n"), "{}", r.log);
    compare("unreachable", src, ProgType::SocketFilter, 1);
}
