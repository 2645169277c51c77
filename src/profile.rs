//! Choosing the kernel profile a command simulates (`--kernel-profile`): the kernel bpflab
//! models, the running kernel's probe, or a profile saved with `bpflab kernel features --json`
//! on another machine.

use std::path::Path;
use std::sync::Arc;

use bpflab_vm::helpers::HelperRegistry;
use bpflab_vm::profile::KernelProfile;

/// Why a `--kernel-profile` value gives no profile.
#[derive(Debug, thiserror::Error)]
pub enum ProfileChoiceError {
    /// `running` was asked for but the kernel cannot be probed here.
    #[error("--kernel-profile running: cannot probe this kernel: {0}")]
    Probe(String),
    /// The profile file cannot be read or parsed.
    #[error("--kernel-profile {path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// The profile `choice` names: `bpflab` (the default: the kernel bpflab models), `running`
/// (probed here, once per process), or a JSON file written by `bpflab kernel features --json`.
pub fn choose(choice: &str) -> Result<KernelProfile, ProfileChoiceError> {
    match choice {
        "bpflab" | "default" => Ok(KernelProfile::bpflab(&HelperRegistry::standard())),
        "running" => {
            bpflab_kernel::features::features().cloned().map_err(ProfileChoiceError::Probe)
        }
        path => read_file(Path::new(path)),
    }
}

/// Reads a profile file.
pub fn read_file(path: &Path) -> Result<KernelProfile, ProfileChoiceError> {
    let err =
        |reason: String| ProfileChoiceError::File { path: path.display().to_string(), reason };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| err(e.to_string()))?;
    KernelProfile::from_json(&v, &path.display().to_string()).map_err(|e| err(e.to_string()))
}

/// The standard helpers as `profile`'s kernel has them (its missing helpers refused).
pub fn helpers_for(profile: &KernelProfile) -> Arc<HelperRegistry> {
    Arc::new(HelperRegistry::standard().with_profile(profile))
}
