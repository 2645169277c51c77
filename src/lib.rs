//! bpflab: test eBPF programs offline, the way the kernel would run them.
//!
//! This facade re-exports the workspace's crates and holds the small utilities the command
//! line shares (hex input, program input formats).
#![forbid(unsafe_code)]

pub use bpflab_kernel as kernel;
pub use bpflab_vm as vm;

pub mod input;
pub mod machine;
pub mod object;
pub mod profile;
