//! Which program types may call each helper bpflab implements, against the running kernel's
//! probe (`bpflab_kernel::features::probe_features`: a program of each type calling the
//! helper, loaded or refused by the verifier). bpflab must not let a program type call a
//! helper the kernel refuses it, except for the differences listed in [`KNOWN`] with their
//! reason; helpers the kernel offers a type and bpflab does not are printed (gaps). On a kernel
//! older than the one bpflab models (6.12) the check is skipped: older kernels lack helpers.
//! The probe, like bpftool's, counts a helper as offered unless the verifier says the type
//! cannot use it, so a helper refused for another reason shows as a gap (`bpf_get_func_ip` in
//! tracepoint programs: "not supported for program type").

use bpflab_kernel::features::probe_features;
use bpflab_vm::ProgType;
use bpflab_vm::helpers::HelperRegistry;

use ProgType::{CgroupSock, CgroupSockopt};

/// `(helper, program type, reason)`: bpflab lets the type call the helper, this kernel's
/// probe does not.
const KNOWN: &[(&str, ProgType, &str)] = &[
    (
        "bpf_setsockopt",
        CgroupSockopt,
        "only for expected_attach_type BPF_CGROUP_SETSOCKOPT (cg_sockopt_func_proto); the \
         probe loads its programs without that attach type, bpflab does not check it",
    ),
    (
        "bpf_getsockopt",
        CgroupSockopt,
        "only for expected_attach_type BPF_CGROUP_SETSOCKOPT (cg_sockopt_func_proto); the \
         probe loads its programs without that attach type, bpflab does not check it",
    ),
    (
        "bpf_sk_storage_delete",
        CgroupSock,
        "sock_filter_func_proto has bpf_sk_storage_get only (vm/src/maps/storage.rs lists \
         CgroupSock for delete too)",
    ),
];

/// `KERNEL_VERSION(6, 12, 0)`.
const MODELLED: u32 = (6 << 16) | (12 << 8);

#[test]
fn helper_program_types_match_the_kernel() {
    let profile = match probe_features() {
        Ok(p) => p,
        Err(e) => {
            println!("SKIP: helper program types: bpf(2) unavailable: {e}");
            return;
        }
    };
    if profile.version_code < MODELLED {
        println!(
            "SKIP: helper program types: kernel lacks the helpers of 6.12 (running {})",
            profile.release
        );
        return;
    }
    let registry = HelperRegistry::standard();
    let (mut refused, mut gaps, mut checked) = (Vec::new(), Vec::new(), 0);
    let mut known_seen = vec![false; KNOWN.len()];
    for (&t, ids) in &profile.helpers {
        if !profile.prog_type_available(t) || ids.is_empty() {
            continue;
        }
        for h in registry.iter() {
            let (ours, kernel) = (h.proto.prog_types.contains(t), ids.contains(&h.proto.id));
            checked += 1;
            if ours && !kernel {
                match KNOWN.iter().position(|(n, kt, _)| *n == h.proto.name && *kt == t) {
                    Some(i) => known_seen[i] = true,
                    None => refused.push(format!("{} in {t:?}", h.proto.name)),
                }
            } else if kernel && !ours {
                gaps.push(format!("{} in {t:?}", h.proto.name));
            }
        }
    }
    println!(
        "helper program types: {checked} (helper, type) pairs checked on {}; {} known \
         differences; kernel offers and bpflab does not: {}",
        profile.release,
        known_seen.iter().filter(|&&s| s).count(),
        if gaps.is_empty() { "none".to_string() } else { gaps.join(", ") }
    );
    for (i, (n, t, _)) in KNOWN.iter().enumerate() {
        if !known_seen[i] {
            println!("note: known difference {n} in {t:?} not seen on this kernel");
        }
    }
    assert!(checked > 1000, "only {checked} pairs: was the probe empty?");
    assert!(
        refused.is_empty(),
        "bpflab lets these program types call helpers the kernel refuses them (fix the \
         prototype's program types, or list the difference in KNOWN with its reason):\n  {}",
        refused.join("\n  ")
    );
}
