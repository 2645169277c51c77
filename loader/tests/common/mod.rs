//! Shared helpers for the loader's integration tests.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::path::{Path, PathBuf};

use bpflab_loader::{LoadOptions, Object, TargetBtf, load};

/// The directory holding the C fixtures and their objects.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A fixture object's bytes.
pub fn bytes(name: &str) -> Vec<u8> {
    let path = fixtures().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Loads a fixture with the running kernel's BTF as the CO-RE target.
pub fn load_fixture(name: &str) -> Object {
    let opts = LoadOptions::for_path(name);
    load(&bytes(name), &opts).unwrap_or_else(|e| panic!("load {name}: {e}"))
}

/// Loads a fixture without a target BTF.
pub fn load_no_target(name: &str) -> Object {
    let opts = LoadOptions { target_btf: TargetBtf::None, ..LoadOptions::for_path(name) };
    load(&bytes(name), &opts).unwrap_or_else(|e| panic!("load {name}: {e}"))
}

/// Every object to cross-check: the loader's fixtures (except those meant to fail) and,
/// when they exist, the `programs/tests/*.o` objects of the workspace.
pub fn cross_check_objects() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let refused = ["bigendian.bpfeb.o", "kconfig_huge.bpf.o"];
    let dirs = [fixtures(), Path::new(env!("CARGO_MANIFEST_DIR")).join("../programs/tests")];
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        let mut found: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "o"))
            .filter(|p| !refused.iter().any(|r| p.ends_with(r)))
            .collect();
        found.sort();
        out.extend(found);
    }
    out
}

/// The options an object of the cross checks needs: its user-sized maps kept unsized, and the
/// kernel configuration its kconfig externs read (what user space would set before loading).
pub fn load_options(path: &Path) -> LoadOptions {
    let mut opts = LoadOptions::for_path(path);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    match name {
        // Compared as the object defines them (max_entries 0), as `bpflab inspect` shows them.
        "user_sized_maps.bpf.o" => opts.open_only = true,
        "externs.bpf.o" => {
            opts.kconfig = bpflab_loader::parse_kconfig("CONFIG_HZ=250\nCONFIG_BPF_SYSCALL=y\n")
                .expect("kconfig");
            opts.kernel_version = Some(0x061200);
        }
        _ => {}
    }
    opts
}

/// Whether this machine has the running kernel's BTF.
pub fn have_vmlinux_btf() -> bool {
    Path::new("/sys/kernel/btf/vmlinux").exists()
}
