//! `bpflab verify` and `bpflab run`'s verification, driven as users drive them: the JSON
//! contract's shape, veristat's CSV, program selection, flags, exit statuses and the text
//! output. The verdicts themselves are the verifier's (its own tests and the agreement corpus
//! check them); these tests check that each verdict is reported as documented
//! (docs/VERIFIER.md), whichever it is.

use std::process::{Command, Output};

use serde_json::Value;

fn bpflab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bpflab"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run bpflab")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The programs of xdp.bpf.o, in object order (all loaded automatically).
const XDP_PROGRAMS: &[&str] =
    &["xdp_classify", "xdp_ethertype", "xdp_vlan_push", "xdp_trim", "xdp_meta", "xdp_frags_len"];

/// veristat's CSV header (tools/testing/selftests/bpf/veristat.c, `-o csv`).
const VERISTAT_HEADER: &str = "file_name,prog_name,verdict,duration,total_insns,total_states,\
                               peak_states,max_states_per_insn,max_mark_read_len";

/// The exit status the documentation gives for these verdicts.
fn expected_status(verdicts: &[&str]) -> i32 {
    if verdicts.contains(&"rejected") {
        1
    } else if !verdicts.is_empty() && verdicts.iter().all(|v| *v == "accepted") {
        0
    } else {
        2
    }
}

/// Checks one program's object against the `--json` contract and returns its verdict.
fn check_contract(doc: &Value) -> String {
    let obj = doc.as_object().expect("a JSON object per program");
    let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    let mut want = vec!["error", "program", "stats", "unsupported", "verdict"];
    want.sort_unstable();
    assert_eq!(keys, want, "{doc}");
    let verdict = doc["verdict"].as_str().expect("verdict is a string").to_owned();
    match verdict.as_str() {
        "accepted" => {
            assert!(doc["error"].is_null() && doc["unsupported"].is_null(), "{doc}");
        }
        "rejected" => {
            let e = doc["error"].as_object().expect("a rejection has an error");
            let mut keys: Vec<&str> = e.keys().map(String::as_str).collect();
            keys.sort_unstable();
            assert_eq!(keys, ["insn", "kind", "message", "source"], "{doc}");
            assert!(doc["error"]["kind"].is_string() && doc["error"]["message"].is_string());
            assert!(doc["error"]["insn"].is_u64() || doc["error"]["insn"].is_null());
            assert!(doc["unsupported"].is_null(), "{doc}");
        }
        "unsupported" => {
            assert!(doc["error"].is_null(), "{doc}");
            let u = doc["unsupported"].as_object().expect("an unsupported verdict says what");
            let mut keys: Vec<&str> = u.keys().map(String::as_str).collect();
            keys.sort_unstable();
            assert_eq!(keys, ["feature", "insn"], "{doc}");
            assert!(!doc["unsupported"]["feature"].as_str().unwrap_or("").is_empty(), "{doc}");
        }
        other => panic!("verdict {other:?} is not accepted, rejected or unsupported"),
    }
    let stats = doc["stats"].as_object().expect("stats");
    let mut keys: Vec<&str> = stats.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "max_states_per_insn",
            "peak_states",
            "processed_insns",
            "total_states",
            "verification_usec"
        ],
        "{doc}"
    );
    assert!(stats.values().all(Value::is_u64), "{doc}");
    verdict
}

#[test]
fn json_for_one_program_is_one_object_in_the_contract() {
    let o = bpflab(&["verify", "programs/tests/xdp.bpf.o", "--prog", "xdp_trim", "--json"]);
    let doc: Value = serde_json::from_slice(&o.stdout).expect("JSON on stdout");
    assert_eq!(doc["program"], "xdp_trim");
    let verdict = check_contract(&doc);
    assert_eq!(o.status.code(), Some(expected_status(&[&verdict])), "{}", stderr(&o));
    // The contract's field order.
    let text = stdout(&o);
    let at = |k: &str| text.find(&format!("\n  \"{k}\"")).unwrap_or(usize::MAX);
    assert!(
        at("program") < at("verdict")
            && at("verdict") < at("error")
            && at("error") < at("unsupported")
            && at("unsupported") < at("stats"),
        "{text}"
    );
}

#[test]
fn json_for_several_programs_is_a_list_of_every_autoload_program() {
    let o = bpflab(&["verify", "programs/tests/xdp.bpf.o", "--output", "json"]);
    let doc: Value = serde_json::from_slice(&o.stdout).expect("JSON on stdout");
    let list = doc.as_array().expect("a list for several programs");
    let names: Vec<&str> = list.iter().map(|d| d["program"].as_str().unwrap()).collect();
    assert_eq!(names, XDP_PROGRAMS);
    let verdicts: Vec<String> = list.iter().map(check_contract).collect();
    let verdicts: Vec<&str> = verdicts.iter().map(String::as_str).collect();
    assert_eq!(o.status.code(), Some(expected_status(&verdicts)), "{}", stderr(&o));
}

#[test]
fn every_fixture_verifies_with_a_documented_exit_status() {
    let mut objects: Vec<String> = ["programs/tests", "programs/corpus"]
        .iter()
        .flat_map(|dir| std::fs::read_dir(dir).unwrap())
        .map(|e| e.unwrap().path().display().to_string())
        .filter(|p| p.ends_with(".bpf.o"))
        .collect();
    objects.sort();
    assert!(objects.len() > 80, "{objects:?}");
    for path in &objects {
        let mut args = vec!["verify", path.as_str(), "--json"];
        // Maps user space sizes before loading (as libbpf's bpf_map__set_max_entries).
        if path == "programs/tests/user_sized_maps.bpf.o" {
            args.extend(["--map-size", "len_counts=16", "--map-size", "slots=4"]);
        }
        if path == "programs/corpus/user_sized_maps.bpf.o" {
            let sizes = ["conn_count=1024", "port_count=512", "events=4096"];
            args.extend(sizes.iter().flat_map(|s| ["--map-size", s]));
        }
        let o = bpflab(&args);
        let doc: Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("{path}: {e}: {}", stderr(&o)));
        let docs = match doc {
            Value::Array(list) => list,
            one => vec![one],
        };
        assert!(!docs.is_empty(), "{path}");
        let verdicts: Vec<String> = docs.iter().map(check_contract).collect();
        let verdicts: Vec<&str> = verdicts.iter().map(String::as_str).collect();
        assert_eq!(o.status.code(), Some(expected_status(&verdicts)), "{path}: {}", stderr(&o));
    }
}

#[test]
fn csv_is_veristats_with_a_row_per_decided_program() {
    let o = bpflab(&["verify", "programs/tests/xdp.bpf.o", "--output", "csv"]);
    let json = bpflab(&["verify", "programs/tests/xdp.bpf.o", "--json"]);
    let docs: Value = serde_json::from_slice(&json.stdout).unwrap();
    let decided: Vec<(&str, &str)> = docs
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["verdict"] != "unsupported")
        .map(|d| {
            let v = if d["verdict"] == "accepted" { "success" } else { "failure" };
            (d["program"].as_str().unwrap(), v)
        })
        .collect();
    let text = stdout(&o);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(VERISTAT_HEADER));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), decided.len(), "{text}");
    for (row, (name, verdict)) in rows.iter().zip(&decided) {
        assert_eq!(row.len(), 9, "{row:?}");
        assert_eq!((row[0], row[1], row[2]), ("xdp.bpf.o", *name, *verdict), "{row:?}");
        assert!(row[3..].iter().all(|v| v.parse::<u64>().is_ok()), "{row:?}");
    }
    // Programs without a verdict are named on stderr, not written as rows veristat rejects.
    let undecided = XDP_PROGRAMS.len() - decided.len();
    assert_eq!(stderr(&o).contains("left out of the CSV"), undecided > 0, "{}", stderr(&o));
    assert_eq!(o.status.code(), json.status.code());
}

#[test]
fn prog_selects_one_program_and_an_unknown_one_is_an_error() {
    let o = bpflab(&["verify", "programs/tests/xdp.bpf.o", "--prog", "xdp_meta"]);
    let text = stdout(&o);
    assert!(text.starts_with("xdp_meta: ") || text.contains("\nxdp_meta: "), "{text}");
    for other in XDP_PROGRAMS.iter().filter(|n| **n != "xdp_meta") {
        assert!(!text.contains(other), "{other} in {text}");
    }
    let o = bpflab(&["verify", "programs/tests/xdp.bpf.o", "--prog", "nope"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        "error: no program named \"nope\"; the object has: xdp_classify, xdp_ethertype, \
         xdp_vlan_push, xdp_trim, xdp_meta, xdp_frags_len\n"
    );
    assert!(o.stdout.is_empty());
}

#[test]
fn text_has_a_verdict_and_stats_line_per_program_and_a_summary() {
    let o = bpflab(&["verify", "programs/tests/xdp.bpf.o"]);
    let text = stdout(&o);
    let json = bpflab(&["verify", "programs/tests/xdp.bpf.o", "--json"]);
    let docs: Value = serde_json::from_slice(&json.stdout).unwrap();
    let mut counts = [0usize; 3];
    for d in docs.as_array().unwrap() {
        let name = d["program"].as_str().unwrap();
        let verdict = d["verdict"].as_str().unwrap();
        let line = format!("{name}: {verdict}");
        assert!(text.lines().any(|l| l.starts_with(&line)), "{line} in {text}");
        counts[["accepted", "rejected", "unsupported"]
            .iter()
            .position(|v| *v == verdict)
            .unwrap()] += 1;
        if verdict == "rejected" {
            assert!(text.contains("  error: "), "{text}");
        }
    }
    let stats = text.lines().filter(|l| l.starts_with("processed ")).count();
    assert_eq!(stats, XDP_PROGRAMS.len(), "{text}");
    assert!(text.lines().filter(|l| l.starts_with("processed ")).all(|l| {
        l.contains(" insns (limit 1000000) max_states_per_insn ")
            && l.contains(" total_states ")
            && l.contains(" peak_states ")
            && l.contains(" mark_read ")
    }));
    let summary = format!(
        "6 programs: {} accepted, {} rejected, {} unsupported",
        counts[0], counts[1], counts[2]
    );
    assert_eq!(text.lines().last(), Some(summary.as_str()), "{text}");
    assert_eq!(o.status.code(), json.status.code());
}

#[test]
fn flags_are_the_kernels_and_an_unknown_one_is_refused() {
    let o = bpflab(&["verify", "programs/tests/xdp.bpf.o", "--flag", "nope"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("invalid value 'nope' for '--flag <NAME>'"), "{err}");
    assert!(
        err.contains(
            "[possible values: strict-alignment, any-alignment, test-state-freq, sleepable, \
             xdp-has-frags]"
        ),
        "{err}"
    );
    assert!(o.stdout.is_empty());
    let o = bpflab(&[
        "verify",
        "programs/tests/xdp.bpf.o",
        "--prog",
        "xdp_trim",
        "--flag",
        "test-state-freq",
        "--flag",
        "any-alignment",
        "--unpriv",
        "--log-level",
        "2",
        "--json",
    ]);
    let doc: Value = serde_json::from_slice(&o.stdout).expect("JSON on stdout");
    let verdict = check_contract(&doc);
    assert_eq!(o.status.code(), Some(expected_status(&[&verdict])), "{}", stderr(&o));
    let o = bpflab(&["verify", "programs/tests/xdp.bpf.o", "--log-level", "3"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--log-level"), "{}", stderr(&o));
}

#[test]
fn unreadable_objects_have_no_verdict() {
    let o = bpflab(&["verify", "programs/tests/no-such-object.bpf.o"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).starts_with("error: "), "{}", stderr(&o));
    assert!(stderr(&o).contains("no-such-object.bpf.o"), "{}", stderr(&o));
    let o = bpflab(&["verify", "programs/tests/xdp.bpf.o", "--kernel", "--output", "csv"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--kernel"), "{}", stderr(&o));
    let o = bpflab(&["verify", "programs/tests/xdp.bpf.o", "--kernel", "--unpriv"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--unpriv verdicts cannot be compared"), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
}

/// The verdict `verify --json` gives one program.
fn verdict_of(object: &str, prog: &str) -> String {
    let o = bpflab(&["verify", object, "--prog", prog, "--json"]);
    let doc: Value = serde_json::from_slice(&o.stdout).expect("JSON");
    doc["verdict"].as_str().unwrap().to_owned()
}

#[test]
fn run_verifies_first_and_no_verify_runs_checked() {
    let packet = "programs/tests/packets/arp_request.bin";
    let programs = [
        ("programs/tests/xdp.bpf.o", "xdp_trim"),
        ("programs/tests/xdp.bpf.o", "xdp_classify"),
        ("programs/tests/unknown_sections.bpf.o", "xdp_known"),
    ];
    for engine in ["interp", "jit"] {
        for (object, prog) in programs {
            let args = ["run", object, "--prog", prog, "--packet-file", packet, "--engine", engine];
            let checked = bpflab(&[&args[..], &["--no-verify"]].concat());
            assert!(checked.status.success(), "{}", stderr(&checked));
            assert!(stdout(&checked).starts_with(&format!("{packet}: XDP_")));
            assert_eq!(stderr(&checked), "", "--no-verify verifies nothing");
            let verified = bpflab(&args);
            match verdict_of(object, prog).as_str() {
                "accepted" => {
                    assert!(verified.status.success(), "{}", stderr(&verified));
                    assert_eq!(stdout(&verified), stdout(&checked));
                    assert_eq!(stderr(&verified), "");
                }
                "unsupported" => {
                    assert!(verified.status.success(), "{}", stderr(&verified));
                    assert_eq!(stdout(&verified), stdout(&checked));
                    let err = stderr(&verified);
                    assert!(
                        err.starts_with(&format!("note: {prog}: bpflab's verifier has no verdict"))
                            && err.ends_with("; running it checked\n")
                            && err.lines().count() == 1,
                        "{err}"
                    );
                }
                _ => {
                    assert!(!verified.status.success());
                    assert!(verified.stdout.is_empty());
                    let err = stderr(&verified);
                    assert!(
                        err.starts_with(&format!(
                            "error: {prog}: the verifier rejects the program: "
                        )) && err.contains("--no-verify"),
                        "{err}"
                    );
                }
            }
        }
    }
}

#[test]
fn run_does_not_verify_raw_bytecode() {
    // r0 = 7; exit: raw bytecode has no program type, so nothing to verify (and no note).
    let o = bpflab(&["run", "--hex", "b7 00 00 00 07 00 00 00 95 00 00 00 00 00 00 00"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "r0 = 0x7 (7)\ninstructions: 2\n");
    assert_eq!(stderr(&o), "");
}

#[test]
fn kernel_comparison_shows_both_verdicts_and_a_summary() {
    if let Err(e) = bpflab::kernel::probe() {
        eprintln!("SKIP: no bpf(2) here: {e}");
        return;
    }
    let o = bpflab(&["verify", "--kernel", "programs/tests/xdp.bpf.o"]);
    let text = stdout(&o);
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("program ") && header.contains("bpflab") && header.contains("kernel")
    );
    let json = bpflab(&["verify", "programs/tests/xdp.bpf.o", "--json"]);
    let docs: Value = serde_json::from_slice(&json.stdout).unwrap();
    let (mut agree, mut disagree) = (0, 0);
    for d in docs.as_array().unwrap() {
        let name = d["program"].as_str().unwrap();
        let row = text.lines().find(|l| l.starts_with(&format!("{name} "))).expect(name);
        let cols: Vec<&str> = row.split_whitespace().collect();
        // This kernel loads every program of xdp.bpf.o (the fixtures are built to load).
        assert_eq!(cols[1], d["verdict"].as_str().unwrap(), "{row}");
        assert_eq!(cols[2], "accepted", "{row}");
        assert!(cols[4].parse::<u64>().is_ok_and(|n| n > 0), "kernel processed count: {row}");
        match cols[1] {
            "accepted" => agree += 1,
            "rejected" => disagree += 1,
            _ => assert_eq!(cols[5], "-", "{row}"),
        }
    }
    let lacking = XDP_PROGRAMS.len() - agree - disagree;
    let summary = format!(
        "6 programs: {agree} agree, {disagree} disagree, {lacking} lack a verdict (bpflab \
         {lacking}, kernel 0); 0 agreeing rejections differ in error class"
    );
    assert_eq!(text.lines().last(), Some(summary.as_str()), "{text}");
    let status = if disagree > 0 {
        1
    } else if lacking > 0 {
        2
    } else {
        0
    };
    assert_eq!(o.status.code(), Some(status), "{}", stderr(&o));
    // JSON: both sides per program.
    let o =
        bpflab(&["verify", "--kernel", "programs/tests/xdp.bpf.o", "--prog", "xdp_meta", "--json"]);
    let doc: Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(doc["program"], "xdp_meta");
    check_contract(&doc["bpflab"]);
    assert_eq!(doc["kernel"]["verdict"], "accepted");
    assert!(doc["kernel"]["error"].is_null());
    assert!(doc["kernel"]["processed_insns"].as_u64().is_some_and(|n| n > 0));
}

#[test]
fn run_refuses_what_the_verifier_rejects_with_its_error_and_source_line() {
    // On a kernel without bpf_xdp_adjust_meta for XDP, xdp_meta cannot load there.
    let profile = "programs/tests/profiles/no_xdp_adjust_meta.json";
    let object = "programs/tests/xdp.bpf.o";
    let packet = "programs/tests/packets/ipv4_udp.bin";
    let verify =
        bpflab(&["verify", object, "--prog", "xdp_meta", "--kernel-profile", profile, "--json"]);
    let doc: Value = serde_json::from_slice(&verify.stdout).expect("JSON");
    let verdict = check_contract(&doc);
    let run = ["run", object, "--prog", "xdp_meta", "--packet-file", packet];
    let o = bpflab(&[&run[..], &["--kernel-profile", profile]].concat());
    assert!(!o.status.success(), "the program cannot run on that kernel");
    assert!(o.stdout.is_empty());
    let err = stderr(&o);
    match verdict.as_str() {
        "rejected" => {
            assert_eq!(verify.status.code(), Some(1));
            let e = &doc["error"];
            let mut want = String::from("error: xdp_meta: the verifier rejects the program: ");
            if let Some(insn) = e["insn"].as_u64() {
                want += &format!("insn {insn}: ");
            }
            want += e["message"].as_str().unwrap();
            assert!(err.starts_with(&want), "{err}\nwanted {want}");
            if let Some(line) = e["source"]["line"].as_u64() {
                let file = e["source"]["file"].as_str().unwrap();
                assert!(err.contains(&format!("\n  source: {file}:{line}: ")), "{err}");
            }
            assert!(err.ends_with("\n(--no-verify runs it in the checked engines anyway)\n"));
        }
        // Without a verdict, the simulator refuses the helper call when it runs.
        _ => assert!(err.contains("helper bpf_xdp_adjust_meta: not available"), "{err}"),
    }
    // --no-verify: the checked interpreter runs it, and refuses the call itself.
    let o = bpflab(&[&run[..], &["--kernel-profile", profile, "--no-verify"]].concat());
    assert!(!o.status.success());
    assert!(stderr(&o).contains("helper bpf_xdp_adjust_meta: not available"), "{}", stderr(&o));
    // The kernel bpflab models has the helper: the verifier does not refuse it for that.
    let o = bpflab(&run);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn accepted_programs_run_the_same_on_the_trusted_jit_as_checked() {
    // The trusted JIT runs only what the verifier accepted, and must then behave as the
    // checked JIT does (outputs, verdicts, errors).
    let packets = ["programs/tests/packets/ipv4_udp.bin", "programs/tests/packets/arp_request.bin"];
    let mut objects: Vec<String> = std::fs::read_dir("programs/tests")
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .filter(|p| p.ends_with(".bpf.o") && !p.ends_with("user_sized_maps.bpf.o"))
        .collect();
    objects.sort();
    let mut compared = 0;
    for object in &objects {
        let o = bpflab(&["verify", object, "--json"]);
        let doc: Value = serde_json::from_slice(&o.stdout).expect("JSON");
        let docs = match doc {
            Value::Array(list) => list,
            one => vec![one],
        };
        // The first accepted program of each object (a JIT compilation per run is slow in
        // debug builds; every object's program types and helpers are still covered).
        for d in docs.iter().filter(|d| d["verdict"] == "accepted").take(1) {
            let prog = d["program"].as_str().unwrap();
            let mut args = vec!["run", object.as_str(), "--prog", prog, "--engine", "jit"];
            for p in packets {
                args.extend(["--packet-file", p]);
            }
            let trusted = bpflab(&args);
            let checked = bpflab(&[&args[..], &["--no-verify"]].concat());
            assert_eq!(
                (trusted.status.code(), stdout(&trusted), stderr(&trusted)),
                (checked.status.code(), stdout(&checked), stderr(&checked)),
                "{object} {prog}"
            );
            compared += 1;
        }
    }
    eprintln!("{compared} accepted programs compared");
}

#[test]
fn kernel_comparison_of_rejected_programs_shows_the_kernels_error() {
    if let Err(e) = bpflab::kernel::probe() {
        eprintln!("SKIP: no bpf(2) here: {e}");
        return;
    }
    // The kernel's own selftests of the CFG checks: mostly programs it rejects.
    let object = "verifier/corpus/selftests/obj/verifier_cfg.bpf.o";
    let o = bpflab(&["verify", "--kernel", object, "--json"]);
    let doc: Value = serde_json::from_slice(&o.stdout).expect("JSON");
    let rows = doc.as_array().expect("a list: the object has several programs");
    assert!(rows.len() >= 5, "{doc}");
    let (mut disagree, mut lacking) = (0, 0);
    for row in rows {
        let name = row["program"].as_str().unwrap();
        let bpflab_verdict = check_contract(&row["bpflab"]);
        assert_eq!(row["bpflab"]["program"], name);
        let k = &row["kernel"];
        let kernel_verdict = k["verdict"].as_str().unwrap();
        match kernel_verdict {
            "rejected" => {
                let error = k["error"].as_str().expect("the kernel's error line");
                assert!(!error.is_empty(), "{row}");
                let kind = bpflab_verifier::ErrorKind::classify(error).name();
                assert_eq!(k["kind"], kind, "{row}");
                assert!(k["processed_insns"].is_u64(), "{row}");
            }
            "accepted" => assert!(k["error"].is_null() && k["kind"].is_null(), "{row}"),
            other => panic!("{name}: the kernel gave no verdict ({other}): {row}"),
        }
        let agree = &row["agree"];
        if bpflab_verdict == "unsupported" {
            assert!(agree.is_null(), "{row}");
            lacking += 1;
        } else {
            assert_eq!(agree.as_bool(), Some(bpflab_verdict == kernel_verdict), "{row}");
            disagree += usize::from(bpflab_verdict != kernel_verdict);
        }
    }
    // The selftest's expectation (`__msg("unreachable insn 1")`), from this kernel.
    let unreachable = rows.iter().find(|r| r["program"] == "unreachable").expect("unreachable");
    assert_eq!(unreachable["kernel"]["verdict"], "rejected");
    assert_eq!(unreachable["kernel"]["error"], "unreachable insn 1");
    assert_eq!(unreachable["kernel"]["kind"], "unreachable_insn");
    let status = if disagree > 0 {
        1
    } else if lacking > 0 {
        2
    } else {
        0
    };
    assert_eq!(o.status.code(), Some(status), "{}", stderr(&o));
    // The text table prints the kernel's error under its row.
    let o = bpflab(&["verify", "--kernel", object, "--prog", "unreachable"]);
    let text = stdout(&o);
    let row = text.lines().nth(1).unwrap();
    assert!(row.starts_with("unreachable ") && row.contains(" rejected "), "{text}");
    assert!(text.contains("\n  kernel: unreachable insn 1\n"), "{text}");
    let summary = match unreachable["bpflab"]["verdict"].as_str().unwrap() {
        "unsupported" => "1 program: 0 agree, 0 disagree, 1 lack a verdict (bpflab 1, kernel 0)",
        "rejected" => "1 program: 1 agree, 0 disagree, 0 lack a verdict (bpflab 0, kernel 0)",
        _ => "1 program: 0 agree, 1 disagree, 0 lack a verdict (bpflab 0, kernel 0)",
    };
    let other_class = usize::from(
        unreachable["bpflab"]["verdict"] == "rejected"
            && unreachable["bpflab"]["error"]["kind"] != "unreachable_insn",
    );
    let summary = format!("{summary}; {other_class} agreeing rejections differ in error class\n");
    assert!(text.ends_with(&summary), "{text}\nwanted {summary}");
}
