//! `bpflab kernel features`: what the running kernel supports, probed as `bpftool feature
//! probe` does, as text or as the JSON profile `--kernel-profile FILE` reads.

use bpflab_vm::ProgType;
use bpflab_vm::profile::KernelProfile;

use super::{CmdResult, emit};

/// Probes this kernel (or reads the profile `choice` names) and prints the result.
pub(crate) fn features(json: bool, choice: &str) -> CmdResult {
    let profile = &bpflab::profile::choose(choice)?;
    if json {
        return Ok(emit(&(serde_json::to_string_pretty(&profile.to_json())? + "\n"))?);
    }
    Ok(emit(&features_text(profile))?)
}

/// The probe as text, in bpftool's style ("eBPF program_type xdp is available").
pub(crate) fn features_text(p: &KernelProfile) -> String {
    let avail = |ok: bool| if ok { "is available" } else { "is NOT available" };
    let mut out =
        format!("Kernel release is {} (version code {:#x})\n\n", p.release, p.version_code);
    out += "Scanning eBPF program types...\n";
    for (t, ok) in &p.prog_types {
        out += &format!("eBPF program_type {} {}\n", t.name(), avail(*ok));
    }
    out += "\nScanning eBPF map types...\n";
    for (t, ok) in &p.map_types {
        out += &format!("eBPF map_type {} {}\n", t.name(), avail(*ok));
    }
    out += "\nScanning BPF_PROG_TEST_RUN...\n";
    for (t, ok) in &p.test_run {
        out += &format!("test run of {} programs {}\n", t.name(), avail(*ok));
    }
    out += &format!(
        "\nkprobe attachment {}\nfentry/fexit programs {}\n",
        avail(p.attach.kprobe),
        avail(p.attach.fentry)
    );
    out += "\nScanning eBPF helper functions...\n";
    for (t, ids) in &p.helpers {
        out += &format!("eBPF helpers supported for program type {}:", t.name());
        for id in ids {
            if let Some(name) = bpflab_vm::helper_names::helper_name(i64::from(*id)) {
                out += &format!("\n\t- {name}");
            }
        }
        out += "\n";
    }
    let unprobed: Vec<&str> = ProgType::ALL
        .iter()
        .filter(|t| **t != ProgType::Unspec && !p.helpers.contains_key(t))
        .map(|t| t.name())
        .collect();
    if !unprobed.is_empty() {
        out += &format!(
            "helpers not probed (these types need a real attach target): {}\n",
            unprobed.join(", ")
        );
    }
    out += &format!("\nkernel config: {} options read\n", p.kconfig.len());
    out
}
