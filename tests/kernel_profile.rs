//! Kernel profiles on the command line: `bpflab kernel features` and `--kernel-profile`.

use std::process::{Command, Output};

fn bpflab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bpflab"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("BPFLAB_KERNEL_FEATURES")
        .output()
        .expect("run bpflab")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const NO_META: &str = "programs/tests/profiles/no_xdp_adjust_meta.json";
const XDP: &str = "programs/tests/xdp.bpf.o";
const PACKET: &str = "programs/tests/packets/ipv4_udp.bin";

fn xdp_helpers(profile_json: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(profile_json).expect("JSON");
    v["helpers"]["xdp_available_helpers"]
        .as_array()
        .expect("xdp helpers")
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_modeled_profile_lists_the_prototypes_helpers() {
    let o = bpflab(&["kernel", "features", "--kernel-profile", "bpflab", "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    let xdp = xdp_helpers(&out);
    assert!(xdp.iter().any(|h| h == "bpf_xdp_adjust_meta"));
    assert!(xdp.iter().any(|h| h == "bpf_xdp_adjust_head"));
    assert!(!xdp.iter().any(|h| h == "bpf_skb_store_bytes"), "a tc-only helper");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["source"], "bpflab");
    assert_eq!(v["kernel"]["release"], "6.18.0");
    assert_eq!(v["program_types"]["xdp"], true);
    assert_eq!(v["test_run"]["kprobe"], false);
}

#[test]
fn a_profile_without_a_helper_makes_the_simulator_refuse_it() {
    let ok = bpflab(&["run", XDP, "--prog", "xdp_meta", "--packet-file", PACKET]);
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    // --no-verify: the simulator's own refusal at the call (bpflab's verifier refuses the
    // program before it runs, as the kernel's would: tests/verify_cli.rs).
    let refused = bpflab(&[
        "run",
        XDP,
        "--prog",
        "xdp_meta",
        "--packet-file",
        PACKET,
        "--kernel-profile",
        NO_META,
        "--no-verify",
    ]);
    assert!(!refused.status.success());
    let err = text(&refused.stderr);
    assert!(
        err.contains("helper bpf_xdp_adjust_meta: not available to xdp programs on kernel"),
        "{err}"
    );
    assert!(err.contains("(6.18.44)"), "{err}");
    // The object's other XDP programs still run on that kernel.
    let other = bpflab(&[
        "run",
        XDP,
        "--prog",
        "xdp_classify",
        "--packet-file",
        PACKET,
        "--kernel-profile",
        NO_META,
    ]);
    assert!(other.status.success(), "{}", text(&other.stderr));
    assert_eq!(
        text(&other.stdout),
        text(&bpflab(&["run", XDP, "--prog", "xdp_classify", "--packet-file", PACKET]).stdout)
    );
}

#[test]
fn a_bad_profile_is_an_error_naming_the_field() {
    let dir = std::env::temp_dir().join(format!("bpflab-profile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.json");
    let model = bpflab(&["kernel", "features", "--kernel-profile", "bpflab", "--json"]);
    let mut v: serde_json::Value = serde_json::from_slice(&model.stdout).unwrap();
    v["map_types"]["hashh"] = serde_json::json!(true);
    std::fs::write(&bad, v.to_string()).unwrap();
    let o = bpflab(&["kernel", "features", "--kernel-profile", bad.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("map_types.hashh: unknown map type \"hashh\""),
        "{}",
        text(&o.stderr)
    );
    let o = bpflab(&[
        "run",
        XDP,
        "--prog",
        "xdp_meta",
        "--packet-file",
        PACKET,
        "--kernel-profile",
        "/nonexistent.json",
    ]);
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("--kernel-profile /nonexistent.json"), "{}", text(&o.stderr));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_running_kernels_probe_saved_and_read_back_is_the_same_profile() {
    if let Err(e) = bpflab_kernel::probe() {
        println!("SKIP: kernel features: kernel lacks bpf(2): {e}");
        return;
    }
    let o = bpflab(&["kernel", "features", "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let dir = std::env::temp_dir().join(format!("bpflab-running-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let saved = dir.join("running.json");
    std::fs::write(&saved, &o.stdout).unwrap();
    let again =
        bpflab(&["kernel", "features", "--json", "--kernel-profile", saved.to_str().unwrap()]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    let (mut a, mut b): (serde_json::Value, serde_json::Value) = (
        serde_json::from_slice(&o.stdout).unwrap(),
        serde_json::from_slice(&again.stdout).unwrap(),
    );
    assert_eq!(a["source"], "running");
    a["source"] = serde_json::Value::Null;
    b["source"] = serde_json::Value::Null;
    assert_eq!(a, b);
    // Text output in bpftool's words.
    let t = bpflab(&["kernel", "features"]);
    assert!(text(&t.stdout).contains("eBPF program_type xdp is available"), "{}", text(&t.stdout));
    std::fs::remove_dir_all(&dir).ok();
}
