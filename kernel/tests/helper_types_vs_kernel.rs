//! Which program types may call each helper bpflab has a prototype of (implemented, or only
//! a prototype the verifier checks calls against), against the running kernel's probe
//! (`bpflab_kernel::features::features`: a program of each type calling the helper, loaded or
//! refused by the verifier).
//!
//! bpflab must not refuse a helper call this kernel takes: that would stop real programs the
//! kernel runs. Every such pair fails the test unless [`GAPS`] lists it with its reason. The
//! other way round (bpflab lets a type call a helper this kernel refuses) is how kernels
//! differ (one 6.18 machine refuses `bpf_xdp_adjust_meta` in XDP): those pairs are printed,
//! and `--kernel-profile running` makes bpflab refuse them too.

use bpflab_kernel::features::features;
use bpflab_kernel::probe;
use bpflab_vm::ProgType;
use bpflab_vm::helpers::HelperRegistry;
use bpflab_vm::profile::KernelProfile;

use ProgType::{CgroupSockopt, SkReuseport};

/// What bpflab does not simulate for the type.
const NO_SK_REUSEPORT: &str = "sk_reuseport programs' packet access is not simulated";

/// `(helper, program type, reason)`: this kernel offers the type the helper, bpflab does not.
const GAPS: &[(&str, ProgType, &str)] = &[
    ("bpf_skb_load_bytes", SkReuseport, NO_SK_REUSEPORT),
    ("bpf_skb_load_bytes_relative", SkReuseport, NO_SK_REUSEPORT),
    ("bpf_tcp_sock", CgroupSockopt, "cgroup_sockopt contexts have no simulated socket"),
];

#[test]
fn bpflab_never_refuses_a_helper_this_kernel_offers() {
    if let Err(e) = probe() {
        println!("SKIP: helper program types: kernel lacks bpf(2): {e}");
        return;
    }
    let kernel = features().expect("probe");
    let registry = HelperRegistry::standard();
    let model = KernelProfile::bpflab(&registry);
    let (mut refused, mut lacks, mut checked, mut unimplemented_checked) =
        (Vec::new(), Vec::new(), 0, 0);
    let mut gap_seen = vec![false; GAPS.len()];
    for (&t, ids) in &kernel.helpers {
        if !kernel.prog_type_available(t) {
            continue;
        }
        for p in registry.protos() {
            let id = p.id;
            let (ours, theirs) = (model.helper_available(t, id), ids.contains(&id));
            checked += 1;
            if !registry.is_implemented(i64::from(id)) {
                unimplemented_checked += 1;
            }
            if theirs && !ours {
                match GAPS.iter().position(|(n, gt, _)| *n == p.name && *gt == t) {
                    Some(i) => gap_seen[i] = true,
                    None => refused.push(format!("{} in {}", p.name, t.name())),
                }
            } else if ours && !theirs {
                lacks.push(format!("{} in {}", p.name, t.name()));
            }
        }
    }
    println!(
        "helper program types: {checked} (helper, type) pairs on {} ({unimplemented_checked} of \
         prototype-only helpers); {} listed gaps; this kernel lacks what bpflab models: {}",
        kernel.release,
        gap_seen.iter().filter(|&&s| s).count(),
        if lacks.is_empty() { "nothing".to_string() } else { lacks.join(", ") }
    );
    for (i, (n, t, _)) in GAPS.iter().enumerate() {
        if !gap_seen[i] {
            println!("note: listed gap {n} in {} not seen on this kernel", t.name());
        }
    }
    assert!(checked > 1000, "only {checked} pairs: was the probe empty?");
    assert!(unimplemented_checked > 500, "only {unimplemented_checked} prototype-only pairs");
    assert!(
        refused.is_empty(),
        "bpflab refuses these helpers to program types this kernel offers them to (open the \
         prototype's program types, or list the gap in GAPS with its reason):\n  {}",
        refused.join("\n  ")
    );
}
