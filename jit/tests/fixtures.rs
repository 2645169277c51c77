//! Every program of every C fixture (`programs/tests/*.bpf.o`, loaded with `bpflab-loader`)
//! on the interpreter and the JIT in both modes, on every input of `programs/tests/packets/`
//! that suits its type (frames for packet programs, context blobs for the others), in one
//! instance per program so state carries over from run to run. Compared exactly: r0, output
//! packets, contexts, trace output, every map, faults and instruction counts.

mod common;

use std::path::{Path, PathBuf};

use bpflab_jit::oracle::{Case, RunResult};
use bpflab_loader::{LoadOptions, Object, load};
use bpflab_vm::{ProgType, RunInput};

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../programs/tests")
}

fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    out.retain(|p| p.to_str().is_some_and(|s| s.ends_with(suffix)));
    out.sort();
    out
}

/// The inputs a program of `prog_type` gets: frames as data, context blobs as ctx.
fn inputs(prog_type: ProgType, packets: &[(String, Vec<u8>)]) -> Vec<RunInput> {
    let ctx_prefix = match prog_type {
        ProgType::RawTracepoint | ProgType::RawTracepointWritable => Some("ctx_raw_tp"),
        ProgType::SkLookup => Some("ctx_sk_lookup"),
        ProgType::Syscall => Some("ctx_syscall"),
        ProgType::Kprobe | ProgType::Tracepoint | ProgType::Tracing | ProgType::Lsm => Some("ctx_"),
        _ => None,
    };
    let mut out = Vec::new();
    for (name, bytes) in packets {
        match ctx_prefix {
            Some(prefix) if name.starts_with(prefix) => {
                let mut input = RunInput::data(Vec::new());
                input.ctx = Some(bytes.clone());
                out.push(input);
            }
            None if !name.starts_with("ctx_") => out.push(RunInput::data(bytes.clone())),
            _ => {}
        }
    }
    if out.is_empty() {
        out.push(RunInput::data(vec![0; 64]));
    }
    out
}

/// The initial prog-array and map-of-maps entries the object names, as map updates.
fn map_init(obj: &Object) -> Vec<(usize, Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    for (m, info) in obj.maps.iter().enumerate() {
        for v in &info.initial_values {
            let target = if v.is_program {
                obj.collection.programs.iter().position(|p| p.name == v.target)
            } else {
                obj.collection.maps.iter().position(|s| s.name == v.target)
            };
            if let Some(t) = target {
                out.push((m, v.slot.to_le_bytes().to_vec(), (t as u32).to_le_bytes().to_vec()));
            }
        }
    }
    out
}

/// The fixture whose maps are too large to list in full.
const HUGE_MAPS: &str = "huge_maps.bpf.o";

#[test]
fn every_fixture_program_matches_the_interpreter() {
    let dir = fixtures_dir();
    let packets: Vec<(String, Vec<u8>)> = files(&dir.join("packets"), ".bin")
        .into_iter()
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.to_owned();
            Some((name, std::fs::read(&p).ok()?))
        })
        .collect();
    let objects = files(&dir, ".bpf.o");
    assert!(!objects.is_empty(), "no fixtures in {}", dir.display());
    let (mut programs, mut skipped) = (0, Vec::new());
    let (mut ok, mut faults, mut errors) = (0, 0, 0);
    for path in objects {
        // Its 33,554,944-entry maps cannot be compared by listing every element: it has its
        // own interpreter/JIT/kernel comparison of the elements touched (tests/huge_maps.rs).
        if path.ends_with(HUGE_MAPS) {
            continue;
        }
        let bytes = std::fs::read(&path).expect("readable fixture");
        let obj = match load(&bytes, &LoadOptions::for_path(&path)) {
            Ok(obj) => obj,
            Err(e) => {
                skipped.push(format!("{}: {e}", path.display()));
                continue;
            }
        };
        let init = map_init(&obj);
        for (p, prog) in obj.collection.programs.iter().enumerate() {
            let inputs = inputs(prog.prog_type, &packets);
            programs += 1;
            let case = Case {
                collection: obj.collection.clone(),
                map_init: init.clone(),
                runs: inputs.into_iter().map(|i| (p, i)).collect(),
            };
            match common::oracle().check(&case, true) {
                Ok(seen) => {
                    for r in &seen.runs {
                        match r {
                            RunResult::Ok(_) => ok += 1,
                            RunResult::Fault(_) => faults += 1,
                            RunResult::Error(_) => errors += 1,
                        }
                    }
                }
                Err(e) => panic!("{} / {}: {e}", path.display(), prog.name),
            }
        }
    }
    println!(
        "fixtures: {programs} programs; runs compared: {ok} completed, {faults} faulted, \
         {errors} refused by both (input unsuitable); objects not loadable: {skipped:?}"
    );
    assert!(programs > 0 && ok > faults + errors, "most runs must complete");
}
