//! The JIT against the running kernel (verifier + kernel JIT): random valid programs from
//! `bpflab-testgen` must leave the same 64-bit r0 in the kernel (read back through an array
//! map) and in the checked and trusted JIT; and XDP programs must return the same verdict and
//! output packet through the kernel engine. Skipped where bpf(2) is unavailable.
//! The random part checks a fixed number of programs like the other property tests
//! (`BPFLAB_JIT_CASES=N` changes it).

mod common;

use bpflab_jit::oracle::{Case, Rules};
use bpflab_kernel::{KernelEngine, KernelError, KernelMap, KernelProgram, probe};
use bpflab_testgen::{GenProgram, listing, program};
use bpflab_vm::{Collection, ProgType, Program, RunInput};
use std::cell::Cell;

const PACKET: [u8; 64] = [0x5a; 64];
const SENTINEL: u64 = 0x5eed_5eed_5eed_5eed;
/// Random programs loaded into the kernel and both JIT modes.
const CASES: u32 = 1000;

fn kernel_r0(p: &GenProgram, map: &KernelMap) -> Result<Option<u64>, String> {
    map.set_u64(0, SENTINEL).map_err(|e| e.to_string())?;
    let prog = match KernelProgram::load(ProgType::SocketFilter, &p.for_kernel(map.fd()), "GPL") {
        Ok(prog) => prog,
        Err(KernelError::Rejected { .. }) => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    prog.test_run(&PACKET, None, 1).map_err(|e| e.to_string())?;
    map.get_u64(0).map_err(|e| e.to_string())
}

#[test]
fn random_programs_match_the_kernel() {
    if let Err(e) = probe() {
        println!("SKIP: bpf(2) unavailable: {e}");
        return;
    }
    let map = KernelMap::array(8, 1).expect("result map");
    let oracle = common::oracle();
    let (compared, refused) = (Cell::new(0u32), Cell::new(0u32));
    let checked = common::run_cases(
        "jit vs kernel",
        0x4b4b,
        program(),
        CASES,
        |p| listing(&p.for_interpreter()),
        |p| {
            let Some(want) = kernel_r0(p, &map)? else {
                refused.set(refused.get() + 1);
                return Ok(());
            };
            let c = Collection {
                programs: vec![Program::raw("gen", p.for_interpreter())],
                ..Collection::default()
            };
            for engine in [oracle.checked(), oracle.trusted()] {
                let mut inst = engine.instantiate(&c).map_err(|e| e.to_string())?;
                let (got, _) = inst.run_raw(0, &mut PACKET.to_vec()).map_err(|e| e.to_string())?;
                if got != want {
                    let mode = engine.config().mode;
                    return Err(format!("{mode:?} JIT r0 {got:#x}, kernel {want:#x}"));
                }
            }
            compared.set(compared.get() + 1);
            Ok(())
        },
    );
    assert_eq!(checked, common::expected_cases(CASES));
    println!(
        "jit vs kernel: {} of {checked} programs compared, {} refused",
        compared.get(),
        refused.get()
    );
    assert!(compared.get() * 10 >= checked * 9, "the verifier refused too many generated programs");
}

#[test]
fn xdp_programs_match_the_kernel() {
    if probe().is_err() {
        println!("SKIP: bpf(2) unavailable");
        return;
    }
    let parse = "
        r2 = *(u32 *)(r1 + 4)
        r1 = *(u32 *)(r1 + 0)
        r0 = 1
        r3 = r1
        r3 += 14
        if r3 > r2 goto out
        r4 = *(u16 *)(r1 + 12)
        r4 = be16 r4
        if r4 != 0x800 goto out
        *(u8 *)(r1 + 0) = 0xee
        r0 = 2
    out:
        exit";
    let adjust = "r6 = r1\nr2 = 14\ncall bpf_xdp_adjust_head\nif r0 != 0 goto fail\nr2 = *(u32 *)(r6 + 0)\nr3 = *(u32 *)(r6 + 4)\nr4 = r2\nr4 += 1\nif r4 > r3 goto fail\nr0 = *(u8 *)(r2 + 0)\nexit\nfail:\nr0 = 0\nexit";
    let tail = "r2 = -10\ncall bpf_xdp_adjust_tail\nr0 = 2\nexit";
    let mut ipv4: Vec<u8> = (0u8..60).collect();
    ipv4[12..14].copy_from_slice(&[0x08, 0x00]);
    for src in [parse, adjust, tail] {
        for pkt in [ipv4.clone(), (0u8..60).collect()] {
            let c = common::collection(src, ProgType::Xdp, vec![]);
            let case = Case::single(c, RunInput::data(pkt));
            let kernel = KernelEngine;
            oracle_check(&case, &kernel);
        }
    }
}

fn oracle_check(case: &Case, kernel: &KernelEngine) {
    let rules = Rules { ctx: false, ..Rules::KERNEL };
    if let Err(e) = common::oracle().check_with(case, true, &[(kernel, rules)]) {
        panic!("{e}\n{}", listing(&case.collection.programs[0].insns));
    }
}
