//! docs/HELPERS.md is the helper support matrix the prototypes give, byte for byte, and
//! `bpflab helpers` prints it. When a helper or its program types change, regenerate it with
//! `BPFLAB_BLESS=1 cargo test -p bpflab --test helpers_doc` and commit the result.

use std::path::PathBuf;
use std::process::Command;

use bpflab_vm::helpers::{support_matrix, support_matrix_markdown};

const HOW: &str = "regenerate it with `BPFLAB_BLESS=1 cargo test -p bpflab --test helpers_doc` \
                   (or `cargo run -- helpers > docs/HELPERS.md`) and commit the result";

fn doc_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs").join("HELPERS.md")
}

fn generated() -> String {
    support_matrix_markdown(&support_matrix(&bpflab_vm::standard_helpers()))
}

/// `BPFLAB_BLESS` set to anything but empty or `0`.
fn bless() -> bool {
    std::env::var_os("BPFLAB_BLESS").is_some_and(|v| !v.is_empty() && v != "0")
}

#[test]
fn helpers_md_is_the_generated_matrix() {
    let path = doc_path();
    let want = generated();
    if bless() {
        std::fs::create_dir_all(path.parent().expect("docs/")).expect("create docs/");
        std::fs::write(&path, &want).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        eprintln!("wrote {}", path.display());
        return;
    }
    let have =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}: {HOW}", path.display()));
    if have != want {
        let (mut h, mut w) = (have.lines(), want.lines());
        let mut line = 1;
        let (file, generated_line) = loop {
            match (h.next(), w.next()) {
                (a, b) if a != b => break (a, b),
                _ => line += 1,
            }
        };
        panic!(
            "docs/HELPERS.md differs from the helper prototypes at line {line}:\n  \
             file:      {}\n  generated: {}\n{HOW}",
            file.unwrap_or("(end of file)"),
            generated_line.unwrap_or("(end of file)"),
        );
    }
}

#[test]
fn bpflab_helpers_prints_the_matrix() {
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_bpflab")).args(args).output().expect("run");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("UTF-8")
    };
    assert_eq!(run(&["helpers"]), generated());
    let json: serde_json::Value = serde_json::from_str(&run(&["helpers", "--json"])).expect("JSON");
    let helpers = json["helpers"].as_array().expect("helpers");
    assert_eq!(json["kernel_helpers"].as_u64(), Some(helpers.len() as u64));
    let implemented: Vec<_> = helpers.iter().filter(|h| h["implemented"] == true).collect();
    assert_eq!(json["implemented"].as_u64(), Some(implemented.len() as u64));
    assert_eq!(implemented.len(), bpflab_vm::standard_helpers().iter().count());
    let adjust_head = &helpers[43];
    assert_eq!(adjust_head["name"], "bpf_xdp_adjust_head");
    assert_eq!(adjust_head["prog_types"], serde_json::json!(["Xdp"]));
    assert_eq!(adjust_head["all_prog_types"], false);
    assert_eq!(adjust_head["args"], serde_json::json!(["PtrToCtx", "Anything"]));
    let lookup = &helpers[0];
    assert_eq!(lookup["all_prog_types"], true);
    assert_eq!(lookup["prog_types"].as_array().map(Vec::len), Some(32));
    let under_cgroup = &helpers[32];
    assert_eq!(under_cgroup["name"], "bpf_skb_under_cgroup");
    assert_eq!(under_cgroup["implemented"], false);
    assert!(under_cgroup["prog_types"].is_null());
    assert!(
        under_cgroup["reason"].as_str().is_some_and(|r| r.contains("CGROUP_ARRAY")),
        "{under_cgroup}"
    );
    assert!(lookup["reason"].is_null());
    assert!(helpers[21]["reason"].is_null(), "{}", helpers[21]); // bpf_perf_event_read
}
