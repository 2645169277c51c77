//! The command line, driven as users and the bpf_conformance runner drive it.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn bpflab(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bpflab"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn bpflab");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write stdin");
    child.wait_with_output().expect("wait")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn readme_main_command_parses_the_shipped_packet() {
    let o = bpflab(
        &["run", "--asm", "examples/parse.s", "--mem-file", "examples/tcp_syn_port80.bin"],
        "",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "r0 = 0x2 (2)\ninstructions: 30\n");
}

#[test]
fn asm_then_disasm_round_trips() {
    let dir = std::env::temp_dir().join(format!("bpflab-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bin = dir.join("parse.bin");
    let o = bpflab(&["asm", "examples/parse.s", "-o", bin.to_str().unwrap()], "");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::metadata(&bin).unwrap().len(), 30 * 8);
    let o = bpflab(&["disasm", bin.to_str().unwrap()], "");
    assert!(o.status.success());
    let text = stdout(&o);
    assert!(text.starts_with("    0: r0 = 0\n    1: r3 = r1\n    2: r3 += r2\n"), "{text}");
    assert!(text.contains("    5: if r4 > r3 goto +23\n"), "{text}");
    let listing = dir.join("listing.s");
    std::fs::write(&listing, &text).unwrap();
    let o = bpflab(
        &[
            "run",
            "--asm",
            listing.to_str().unwrap(),
            "--mem-file",
            "examples/tcp_syn_port80.bin",
            "--json",
        ],
        "",
    );
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(doc["r0"], 2);
    assert_eq!(doc["insn_count"], 30);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn run_hex_reports_r0_count_and_changed_memory() {
    // *(u8 *)(r1 + 1) = 0xaa; r0 = r2; exit
    let prog = "72 01 01 00 aa 00 00 00 bf 20 00 00 00 00 00 00 95 00 00 00 00 00 00 00";
    let o = bpflab(&["run", "--hex", prog, "--mem", "00 00 00"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "r0 = 0x3 (3)\ninstructions: 3\nmemory: 00 aa 00\n");
}

#[test]
fn run_errors_name_the_instruction() {
    // r0 = *(u64 *)(r10 + 0): one past the stack.
    let o = bpflab(&["run", "--hex", "79 a0 00 00 00 00 00 00 95 00 00 00 00 00 00 00"], "");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "error: program fault: instruction 0: read of 8 bytes at offset 512 of stack of frame 0 (size 512) is out of bounds\n"
    );
    let o = bpflab(&["run", "--hex", "95 00 00 00 00 00 00"], "");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "error: instruction 0: program length leaves 7 trailing bytes (not a multiple of 8)\n"
    );
    let o = bpflab(&["run", "--hex", "b7 00 00 00 00 00 00 00 e7 00 00 00 00 00 00 00"], "");
    assert_eq!(stderr(&o), "error: instruction 1: unknown opcode 0xe7\n");
    let o = bpflab(
        &["run", "--hex", "b7 00 00 00 00 00 00 00 95 00 00 00 00 00 00 00", "--mem", "0g"],
        "",
    );
    assert_eq!(stderr(&o), "error: hex input: invalid character 'g' at offset 1\n");
    let o = bpflab(
        &["run", "--hex", "07 00 00 00 01 00 00 00 05 00 ff ff 00 00 00 00", "--budget", "50"],
        "",
    );
    assert!(stderr(&o).contains("instruction budget of 50 exhausted"), "{}", stderr(&o));
}

#[test]
fn conformance_plugin_protocol() {
    // r0 = *(u32 *)(r1 + 0); exit — memory as the first argument, r0 in hex on stdout.
    let prog = "61 10 00 00 00 00 00 00 95 00 00 00 00 00 00 00 ";
    let o = bpflab(&["conformance-plugin", "01  02  03  04  "], prog);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "4030201\n");
    // No memory argument when the test has none; r0 keeps its full 64 bits.
    let o = bpflab(
        &["conformance-plugin"],
        "18 00 00 00 ff ff ff ff 00 00 00 00 ff ff ff ff 95 00 00 00 00 00 00 00\n",
    );
    assert_eq!(stdout(&o), "ffffffffffffffff\n");
    // A fault: non-zero exit, nothing on stdout, the reason on stderr.
    let o =
        bpflab(&["conformance-plugin", "01"], "61 10 04 00 00 00 00 00 95 00 00 00 00 00 00 00");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "");
    assert_eq!(
        stderr(&o),
        "program fault: instruction 0: read of 4 bytes at offset 4 of input memory (size 1) is out of bounds\n"
    );
    // Division by zero is defined by the ISA, not a fault.
    let o = bpflab(
        &["conformance-plugin"],
        "b7 00 00 00 05 00 00 00 37 00 00 00 00 00 00 00 95 00 00 00 00 00 00 00",
    );
    assert_eq!(stdout(&o), "0\n");
}

#[test]
fn inspect_lists_programs_maps_and_relocations() {
    let o = bpflab(&["inspect", "programs/tests/xdp.bpf.o"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains(
            "  xdp_classify             xdp                          xdp                 138    138"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "  xdp_stats                array                  4       8           5    0x0  .maps"
        ),
        "{text}"
    );
    assert!(text.contains("relocations: 11 (11 map)"), "{text}");
    let o = bpflab(&["inspect", "programs/tests/xdp.bpf.o", "--json"], "");
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(doc["programs"].as_array().unwrap().len(), 6);
    assert_eq!(doc["programs"][5]["section"], "xdp.frags");
    assert_eq!(doc["maps"][1]["name"], "xdp_last");
    assert_eq!(doc["license"], "GPL");
}

#[test]
fn disasm_object_interleaves_source_lines() {
    let o = bpflab(&["disasm", "programs/tests/xdp.bpf.o", "--prog", "xdp_classify"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.starts_with("xdp_classify (xdp, xdp):\n; void *data_end = (void *)(long)ctx->data_end; [xdp.bpf.c:67]\n    0: r3 = *(u32 *)(r1 + 4)\n"), "{text}");
    assert!(text.contains("    9: r1 = map[idx:0] ll\n   11: call 1\n"), "{text}");
    let o = bpflab(&["disasm", "programs/tests/xdp.bpf.o", "--prog", "nope"], "");
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o)
            .contains("no program named \"nope\"; the object has: xdp_classify, xdp_ethertype"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn run_object_on_a_pcap_reports_verdicts_packets_and_map_changes() {
    let dir = std::env::temp_dir().join(format!("bpflab-cli-pcap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out_pcap = dir.join("out.pcap");
    let o = bpflab(
        &[
            "run",
            "programs/tests/xdp.bpf.o",
            "--prog",
            "xdp_classify",
            "--pcap",
            "examples/mixed.pcap",
            "--dump-maps",
            "--out-pcap",
            out_pcap.to_str().unwrap(),
        ],
        "",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.starts_with(
            "examples/mixed.pcap #1: XDP_PASS (2), 37 instructions\n  packet: 54 bytes, unchanged\n"
        ),
        "{text}"
    );
    assert!(text.contains("examples/mixed.pcap #2: XDP_TX (3), 69 instructions\n  packet: 50 bytes, changed: 02 00 00 00 00 01 02 00 00 00 00 02 08 00"), "{text}");
    assert!(text.contains("map changes:\n  xdp_stats key: 02 00 00 00  value: 04 00 00 00 00 00 00 00  (was 00 00 00 00 00 00 00 00)\n"), "{text}");
    // All five packets passed or were sent back, so all five are in the output pcap.
    let pcap = std::fs::read(&out_pcap).unwrap();
    assert_eq!(&pcap[..4], &0xa1b2c3d4u32.to_le_bytes());
    assert_eq!(pcap.len(), 24 + 5 * 16 + 54 + 50 + 74 + 42 + 54);
    let o = bpflab(
        &[
            "run",
            "programs/tests/xdp.bpf.o",
            "--prog",
            "xdp_classify",
            "--packet",
            &"00 ".repeat(10),
            "--json",
        ],
        "",
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("packet of 10 bytes is shorter than the minimum of 14"),
        "{}",
        stderr(&o)
    );
    let o = bpflab(&["run", "programs/tests/xdp.bpf.o"], "");
    assert!(
        stderr(&o).contains("the object has 6 programs; choose one with --prog NAME: xdp_classify"),
        "{}",
        stderr(&o)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn conformance_plugin_elf_mode_runs_main_from_text() {
    let obj = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/conformance_main.o"))
        .unwrap();
    let hex: String = obj.iter().map(|b| format!("{b:02x} ")).collect();
    let o = bpflab(&["conformance-plugin", "12  34  ", "--elf"], &hex);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "1234\n");
    let o = bpflab(&["conformance-plugin", "--elf"], &hex);
    assert_eq!(stdout(&o), "dead\n");
    // Not an object: a typed loader error, non-zero exit.
    let o = bpflab(&["conformance-plugin", "--elf"], "95 00 00 00 00 00 00 00");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "");
    assert!(!stderr(&o).is_empty());
}

#[test]
fn run_object_preloads_and_saves_map_state() {
    let dir = std::env::temp_dir().join(format!("bpflab-cli-maps-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let saved = dir.join("state.json");
    let o = bpflab(
        &[
            "run",
            "programs/tests/xdp.bpf.o",
            "--prog",
            "xdp_classify",
            "--pcap",
            "examples/mixed.pcap",
            "--save-maps",
            saved.to_str().unwrap(),
        ],
        "",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&saved).unwrap()).unwrap();
    let entries = doc["maps"]["xdp_stats"]["entries"].as_array().unwrap().clone();
    assert_eq!(entries[2]["value"], "04 00 00 00 00 00 00 00");
    doc["maps"]["xdp_stats"]["entries"][2]["value"] = "64 00 00 00 00 00 00 00".into();
    let edited = dir.join("edited.json");
    std::fs::write(&edited, doc.to_string()).unwrap();
    let syn = std::fs::read("programs/tests/packets/ipv4_tcp_syn.bin").unwrap();
    let hex: String = syn.iter().map(|b| format!("{b:02x}")).collect();
    let o = bpflab(
        &[
            "run",
            "programs/tests/xdp.bpf.o",
            "--prog",
            "xdp_classify",
            "--packet",
            &hex,
            "--maps",
            edited.to_str().unwrap(),
            "--dump-maps",
        ],
        "",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("xdp_stats key: 02 00 00 00  value: 65 00 00 00 00 00 00 00  (was 64 00 00 00 00 00 00 00)"),
        "{}",
        stdout(&o)
    );
    std::fs::write(&edited, "{\"maps\": {\"nope\": {}}}").unwrap();
    let o = bpflab(
        &[
            "run",
            "programs/tests/xdp.bpf.o",
            "--prog",
            "xdp_classify",
            "--maps",
            edited.to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("nope"), "{}", stderr(&o));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_jit_engine_gives_the_same_answers() {
    let args = [
        "run",
        "programs/tests/xdp.bpf.o",
        "--prog",
        "xdp_classify",
        "--pcap",
        "examples/mixed.pcap",
        "--dump-maps",
    ];
    let interp = bpflab(&args, "");
    let mut with_jit = args.to_vec();
    with_jit.extend(["--engine", "jit"]);
    let jit = bpflab(&with_jit, "");
    assert!(jit.status.success(), "{}", stderr(&jit));
    assert_eq!(stdout(&jit), stdout(&interp));
    // The conformance plugin on the JIT: same r0, same fault.
    let o = bpflab(
        &["conformance-plugin", "01  02  03  04  ", "--engine", "jit"],
        "61 10 00 00 00 00 00 00 95 00 00 00 00 00 00 00",
    );
    assert_eq!(stdout(&o), "4030201\n");
    let o = bpflab(
        &["conformance-plugin", "01", "--engine", "jit"],
        "61 10 04 00 00 00 00 00 95 00 00 00 00 00 00 00",
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "program fault: instruction 0: read of 4 bytes at offset 4 of input memory (size 1) is out of bounds\n"
    );
    // The native code, like bpftool prog dump jited.
    let o =
        bpflab(&["disasm", "--jited", "programs/tests/xdp.bpf.o", "--prog", "xdp_ethertype"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.starts_with("xdp_ethertype:\n"), "{text}");
    assert!(text.contains("pushq %rbp") && text.contains("ret"), "{text}");
}

/// `bench --json` on `engine` (and the extra arguments); panics unless it succeeds.
fn bench_json(engine: &str, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["bench"];
    all.extend(args);
    all.extend(["--engine", engine, "--json"]);
    let o = bpflab(&all, "");
    assert!(o.status.success(), "{:?}: {}", all, stderr(&o));
    serde_json::from_slice(&o.stdout).expect("json")
}

#[test]
fn bench_runs_the_requested_iterations_with_the_answers_of_run() {
    let packet = "programs/tests/packets/ipv4_udp.bin";
    let hex: String = std::fs::read(packet).unwrap().iter().map(|b| format!("{b:02x}")).collect();
    for (obj, prog, want_r0) in [
        ("programs/tests/xdp.bpf.o", "xdp_classify", 3),
        ("programs/tests/calls.bpf.o", "calls_xdp", 194),
    ] {
        let o = bpflab(&["run", obj, "--prog", prog, "--packet", &hex, "--json"], "");
        assert!(o.status.success(), "{}", stderr(&o));
        let run: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(run["runs"][0]["r0"], want_r0);
        let count = run["runs"][0]["insn_count"].as_u64().unwrap();
        assert!(count > 10, "{count}");
        // --packet-file reads the same frame as --packet with its hex.
        let o = bpflab(&["run", obj, "--prog", prog, "--packet-file", packet, "--json"], "");
        let from_file: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(from_file["runs"][0]["insn_count"], count);
        assert_eq!(from_file["runs"][0]["packet"], run["runs"][0]["packet"]);
        assert_eq!(from_file["runs"][0]["input"], packet);
        for engine in ["interp", "jit"] {
            let doc = bench_json(
                engine,
                &[obj, "--prog", prog, "--packet-file", packet, "--iters", "200"],
            );
            assert_eq!(doc["engine"], engine);
            assert_eq!(doc["program"], prog);
            assert_eq!(doc["inputs"], 1);
            assert_eq!(doc["iterations"], 200);
            assert_eq!(doc["r0"], want_r0, "{engine}");
            assert_eq!(doc["r0_hex"], format!("{want_r0:#x}"));
            assert_eq!(doc["insns_per_run"].as_f64(), Some(count as f64), "{engine}");
            let (mean, median, min) = (
                doc["mean_ns"].as_f64().unwrap(),
                doc["median_ns"].as_f64().unwrap(),
                doc["min_ns"].as_f64().unwrap(),
            );
            assert!(min > 0.0 && min <= median && min <= mean, "{doc}");
            let total = doc["total_ns"].as_f64().unwrap();
            assert!((mean * 200.0 - total).abs() <= 1.0, "{doc}");
            let per_insn = doc["ns_per_insn"].as_f64().unwrap();
            assert!((per_insn * count as f64 - mean).abs() < 1e-6 * mean, "{doc}");
            let batches = doc["batches"].as_u64().unwrap();
            assert!((1..=200).contains(&batches), "{doc}");
            assert!(doc["warmup_runs"].as_u64().unwrap() >= 1, "{doc}");
            if engine == "jit" {
                assert!(doc["compile"]["functions"].as_u64().unwrap() >= 1, "{doc}");
                assert!(doc["compile"]["code_bytes"].as_u64().unwrap() > 0, "{doc}");
                assert!(doc["compile"]["ns"].as_u64().unwrap() > 0, "{doc}");
            } else {
                assert!(doc["compile"].is_null(), "{doc}");
            }
        }
    }
}

#[test]
fn bench_keeps_map_state_across_runs_and_compares_engines() {
    // globals_rw returns XDP_PASS only while its globals hold their initial values: the
    // first run of a load passes, every later one drops.
    let args = ["programs/tests/globals.bpf.o", "--prog", "globals_rw", "--packet-file"];
    let packet = "programs/tests/packets/ipv4_tcp_syn.bin";
    let o = bpflab(&["run", args[0], "--prog", "globals_rw", "--packet-file", packet], "");
    assert!(stdout(&o).contains(": XDP_PASS (2)"), "{}", stdout(&o));
    let mut all = args.to_vec();
    all.extend([packet, "--iters", "50"]);
    let doc = bench_json("both", &all);
    assert_eq!(doc["program"], "globals_rw");
    for engine in ["interp", "jit"] {
        assert_eq!(doc[engine]["engine"], engine);
        assert_eq!(doc[engine]["iterations"], 50);
        assert_eq!(doc[engine]["r0"], 1, "{engine}: state carried over from earlier runs");
    }
    assert_eq!(doc["interp"]["insns_per_run"], doc["jit"]["insns_per_run"]);
    let ratio =
        doc["interp"]["mean_ns"].as_f64().unwrap() / doc["jit"]["mean_ns"].as_f64().unwrap();
    assert!((doc["speedup"].as_f64().unwrap() - ratio).abs() < 1e-9 * ratio, "{doc}");
    // The text report: one block per engine, then the ratio.
    let mut text_args = vec!["bench"];
    text_args.extend(&all);
    text_args.extend(["--engine", "both"]);
    let o = bpflab(&text_args, "");
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.starts_with("globals_rw on interp: 50 runs in "), "{text}");
    assert!(text.contains("\nglobals_rw on jit: 50 runs in "), "{text}");
    assert!(text.contains("  r0 = 0x1 (1) on the last run\n"), "{text}");
    assert!(text.contains("  compile: "), "{text}");
    assert!(text.contains("\njit / interp: the JIT is "), "{text}");
}

#[test]
fn bench_raw_programs_refuses_bad_arguments_and_reports_faults() {
    // r0 = 42; exit
    let prog = "b7 00 00 00 2a 00 00 00 95 00 00 00 00 00 00 00";
    let o = bpflab(&["bench", "--hex", prog, "--iters", "100"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.starts_with("cli on interp: 100 runs in "), "{text}");
    assert!(text.contains("(1 input, "), "{text}");
    assert!(text.contains("  instructions per run: 2.0 ("), "{text}");
    assert!(text.contains("  r0 = 0x2a (42) on the last run\n"), "{text}");
    let doc = bench_json(
        "jit",
        &[
            "--asm",
            "examples/parse.s",
            "--mem-file",
            "examples/tcp_syn_port80.bin",
            "--iters",
            "10",
        ],
    );
    assert_eq!((doc["r0"].as_u64(), doc["insns_per_run"].as_f64()), (Some(2), Some(30.0)));
    // --time: batches until the time is up.
    let doc = bench_json("interp", &["--hex", prog, "--time", "0.05"]);
    assert!(doc["iterations"].as_u64().unwrap() >= 100, "{doc}");
    assert!(doc["batches"].as_u64().unwrap() >= 10, "{doc}");
    assert!(doc["total_ns"].as_f64().unwrap() >= 40e6, "{doc}");
    assert_eq!(doc["r0"], 42);
    let o = bpflab(&["bench", "--hex", prog, "--engine", "rbpf"], "");
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("invalid value 'rbpf' for '--engine <ENGINE>'"), "{}", stderr(&o));
    assert!(stderr(&o).contains("[possible values: interp, jit, both]"), "{}", stderr(&o));
    let o = bpflab(&["bench", "--hex", prog, "--iters", "0"], "");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = bpflab(&["bench", "--hex", prog, "--time", "-1"], "");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = bpflab(&["bench", "--hex", prog, "--iters", "5", "--time", "1"], "");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    // r0 = *(u64 *)(r10 + 0): one past the stack. Exit 1 with run's message, no report.
    let fault = "79 a0 00 00 00 00 00 00 95 00 00 00 00 00 00 00";
    for engine in ["interp", "jit", "both"] {
        let o = bpflab(&["bench", "--hex", fault, "--iters", "10", "--engine", engine], "");
        assert_eq!(o.status.code(), Some(1), "{engine}");
        assert_eq!(stdout(&o), "", "{engine}");
        assert_eq!(
            stderr(&o),
            "error: program fault: instruction 0: read of 8 bytes at offset 512 of stack of frame 0 (size 512) is out of bounds\n",
            "{engine}"
        );
    }
}

#[test]
fn unknown_sections_show_as_unknown_and_run_with_prog_type() {
    let obj = "programs/tests/unknown_sections.bpf.o";
    let o = bpflab(&["inspect", obj], "");
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("  cls_by_len               classifier_len               unknown   "),
        "{text}"
    );
    assert!(
        text.contains("  xdp_known                xdp                          xdp       "),
        "{text}"
    );
    assert!(
        text.contains(
            "programs of unknown type (sections libbpf does not know): xdp_pass_v4, cls_by_len, \
             sock_trim; run them with --prog-type TYPE"
        ),
        "{text}"
    );
    let o = bpflab(&["inspect", obj, "--json"], "");
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(doc["programs"][0]["type"], "unknown");
    assert_eq!(doc["programs"][0]["type_known"], false);
    assert_eq!(doc["programs"][3]["type"], "xdp");
    assert_eq!(doc["programs"][3]["type_known"], true);
    // inspect --prog-type types every untyped program.
    let o = bpflab(&["inspect", obj, "--json", "--prog-type", "xdp"], "");
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(doc["programs"][2]["type"], "xdp");
    // NAME=TYPE sets one program's type; the others stay unknown.
    let o = bpflab(&["inspect", obj, "--json", "--prog-type", "cls_by_len=classifier"], "");
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let types: Vec<&str> =
        doc["programs"].as_array().unwrap().iter().map(|p| p["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["unknown", "sched_cls", "unknown", "xdp"]);
    let o = bpflab(&["inspect", obj, "--prog-type", "nope=xdp"], "");
    assert_eq!(
        stderr(&o),
        "error: programs/tests/unknown_sections.bpf.o: no program named 'nope'; the object's \
         programs are: xdp_pass_v4, cls_by_len, sock_trim, xdp_known\n"
    );
    let o = bpflab(&["run", obj, "--prog-type", "xdp"], "");
    assert_eq!(
        stderr(&o),
        "error: the object has 4 programs; choose one with --prog NAME: xdp_pass_v4, cls_by_len, \
         sock_trim, xdp_known\n"
    );
    let o = bpflab(&["disasm", obj, "--prog", "sock_trim"], "");
    assert!(stdout(&o).starts_with("sock_trim (prog, unknown):\n"), "{}", stdout(&o));
    let o = bpflab(&["disasm", obj, "--prog", "sock_trim", "--prog-type", "socket_filter"], "");
    assert!(stdout(&o).starts_with("sock_trim (prog, socket_filter):\n"), "{}", stdout(&o));

    let syn = "programs/tests/packets/ipv4_tcp_syn.bin";
    let arp = "programs/tests/packets/arp_request.bin";
    let o = bpflab(&["run", obj, "--prog", "xdp_pass_v4", "--packet-file", syn], "");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "error: programs/tests/unknown_sections.bpf.o: program 'xdp_pass_v4' in section \
         'xdp_pass' has no program type libbpf knows; pass --prog-type TYPE \
         (LoadOptions::prog_types, libbpf's bpf_program__set_type)\n"
    );
    let args = ["run", obj, "--prog", "xdp_pass_v4", "--prog-type", "xdp", "--packet-file"];
    let o = bpflab(&[&args[..], &[syn, "--packet-file", arp]].concat(), "");
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("ipv4_tcp_syn.bin: XDP_PASS (2), "), "{text}");
    assert!(text.contains("arp_request.bin: XDP_DROP (1), "), "{text}");
    // A section name gives the type too; the only program without --prog gets it.
    let args = ["run", obj, "--prog", "cls_by_len", "--prog-type", "tc/ingress", "--packet-file"];
    let o = bpflab(&[&args[..], &[syn]].concat(), "");
    assert!(stdout(&o).contains("ipv4_tcp_syn.bin: TC_ACT_OK (0), "), "{}", stdout(&o));
    let o = bpflab(&["run", obj, "--prog", "sock_trim", "--prog-type", "bogus"], "");
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.starts_with(
            "error: programs/tests/unknown_sections.bpf.o: unknown program type \"bogus\": give a \
             kernel program type name (socket_filter, kprobe, sched_cls, sched_act,"
        ),
        "{err}"
    );
    assert!(err.contains("netfilter) or a libbpf section name (tc, classifier, "), "{err}");
}

#[test]
fn map_size_sizes_user_sized_maps() {
    let obj = "programs/tests/user_sized_maps.bpf.o";
    let syn = "programs/tests/packets/ipv4_tcp_syn.bin";
    let o = bpflab(&["inspect", obj], "");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(
            "  slots                    array                  4       8           0    0x0  .maps"
        ),
        "{}",
        stdout(&o)
    );
    let o = bpflab(&["run", obj, "--packet-file", syn], "");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "error: programs/tests/user_sized_maps.bpf.o: map 'len_counts' (hash) has max_entries 0: \
         user space sizes it before loading; give its size with --map-size len_counts=N \
         (LoadOptions::map_sizes, libbpf's bpf_map__set_max_entries)\n"
    );
    let run = |slots: &str| {
        let size = format!("slots={slots}");
        let args = ["run", obj, "--packet-file", syn, "--map-size", "len_counts=0x10"];
        let o = bpflab(&[&args[..], &["--map-size", &size, "--json"]].concat(), "");
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).expect("json")
    };
    let doc = run("3");
    assert_eq!(doc["runs"][0]["verdict"], "XDP_DROP");
    assert_eq!(doc["map_changes"].as_array().unwrap().len(), 4, "{doc}");
    let doc = run("4");
    assert_eq!(doc["runs"][0]["verdict"], "XDP_PASS");
    let changes = doc["map_changes"].as_array().unwrap();
    assert_eq!(changes.len(), 5, "{doc}");
    assert!(changes.iter().any(|c| c["map"] == "slots"
        && c["key"] == "03 00 00 00"
        && c["value"] == "36 00 00 00 00 00 00 00"));
    let o = bpflab(&["run", obj, "--map-size", "len_count=4"], "");
    assert_eq!(
        stderr(&o),
        "error: programs/tests/user_sized_maps.bpf.o: no map named 'len_count' to size; the \
         object's maps are: len_counts, slots, events\n"
    );
    let o = bpflab(&["run", obj, "--map-size", "slots"], "");
    assert_eq!(
        stderr(&o),
        "error: --map-size \"slots\": expected NAME=N (N a number of entries)\n"
    );
    // bench takes the same options.
    let args = ["bench", obj, "--packet-file", syn, "--iters", "3", "--json"];
    let o = bpflab(
        &[&args[..], &["--map-size", "len_counts=16", "--map-size", "slots=4"]].concat(),
        "",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(doc["r0"], 2, "{doc}");
}

#[test]
fn kconfig_file_feeds_kconfig_externs() {
    let dir = std::env::temp_dir().join(format!("bpflab-kconfig-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config");
    std::fs::write(
        &config,
        "CONFIG_HZ=250\n# CONFIG_BPF_SYSCALL is not set\nCONFIG_BPFLAB_MODULE=m\nCONFIG_NR_CPUS=8\n",
    )
    .unwrap();
    let obj = "programs/tests/externs.bpf.o";
    let config = config.to_str().unwrap();
    let o = bpflab(&["inspect", obj, "--json", "--kconfig", config], "");
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let kconfig = doc["kconfig"].as_array().unwrap();
    let entry = |name: &str| kconfig.iter().find(|k| k["name"] == name).cloned().unwrap();
    assert_eq!(entry("CONFIG_HZ")["value"], "250");
    assert_eq!(entry("CONFIG_BPFLAB_MODULE")["offset"], 8);
    assert_eq!(entry("CONFIG_BPFLAB_ABSENT")["value"], serde_json::Value::Null);
    let map = doc["maps"].as_array().unwrap().iter().find(|m| m["name"] == "externs.kconfig");
    assert_eq!(map.unwrap()["max_entries"], 1);
    let o = bpflab(&["inspect", obj, "--kconfig", config], "");
    let text = stdout(&o);
    assert!(
        text.contains(
            "ksyms: bpflab_absent_var (missing (weak)), bpflab_absent_kfunc (missing (weak))\n"
        ),
        "{text}"
    );
    assert!(text.contains("  CONFIG_BPFLAB_MODULE             offset   8 size   4  m\n"), "{text}");
    let syn = "programs/tests/packets/ipv4_tcp_syn.bin";
    let o = bpflab(&["run", obj, "--packet-file", syn, "--kconfig", config, "--json"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(doc["runs"][0]["verdict"], "XDP_PASS", "CONFIG_HZ=250 passes");
    let value = |key: &str| {
        doc["map_changes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["key"] == key)
            .map(|c| c["value"].clone())
    };
    assert_eq!(value("01 00 00 00").unwrap(), "fa 00 00 00 00 00 00 00");
    assert_eq!(value("02 00 00 00"), None, "BPF_SYSCALL is not set: stays 0");
    assert_eq!(value("04 00 00 00").unwrap(), "02 00 00 00 00 00 00 00", "m is TRI_MODULE");
    assert_eq!(value("06 00 00 00").unwrap(), "08 00 00 00 00 00 00 00");
    std::fs::write(dir.join("bad"), "CONFIG_HZ\n").unwrap();
    let bad = dir.join("bad");
    let o = bpflab(&["run", obj, "--kconfig", bad.to_str().unwrap()], "");
    assert_eq!(
        stderr(&o),
        format!(
            "error: kernel configuration {}: kconfig line 1: no '=' separator\n",
            bad.display()
        )
    );
    std::fs::remove_dir_all(&dir).ok();
}
