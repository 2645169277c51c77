//! `bpf_timer_*` on a timer in an array map value: the state machine and errors of
//! kernel/bpf/helpers.c (the same program runs against the kernel in
//! kernel/tests/net_helpers_vs_kernel.rs through programs/tests/net_helpers.bpf.c's
//! `xdp_timer`).

use bpflab_vm::asm::assemble;
use bpflab_vm::engine::{ProgType, RunInput};
use bpflab_vm::interp::Instance;
use bpflab_vm::spec::{MapSpec, MapType};
use bpflab_vm::{Collection, Interpreter, Program};

/// Looks up element 0 of map 0 (value: a 16-byte `struct bpf_timer`), then runs `body` with
/// the value pointer in r6; `body` leaves its result in r0.
fn with_timer(body: &str) -> String {
    format!(
        "*(u32 *)(r10 - 4) = 0
         r1 = map[idx:0] ll
         r2 = r10
         r2 += -4
         call bpf_map_lookup_elem
         if r0 != 0 goto found
         exit
     found:
         r6 = r0
         {body}
         exit
     cb:
         r0 = 0
         exit"
    )
}

fn instance(t: ProgType, license: &str, src: &str) -> Instance {
    let insns = assemble(src).unwrap_or_else(|e| panic!("{e}\n{src}"));
    let mut p = Program::raw("t", insns).with_type(t);
    p.license = license.into();
    let maps = vec![MapSpec::new("timers", MapType::Array, 4, 16, 1)];
    Interpreter::default()
        .instantiate(&Collection { maps, programs: vec![p], ..Collection::default() })
        .expect("instantiate")
}

fn r0(inst: &mut Instance) -> i64 {
    inst.run(0, &RunInput::data(vec![0; 64])).expect("run").r0 as i64
}

const INIT: &str = "r1 = r6\nr2 = map[idx:0] ll\nr3 = 1\ncall bpf_timer_init\n";
const SET_CB: &str = "r1 = r6\nr2 = func cb ll\ncall bpf_timer_set_callback\n";
const START: &str = "r1 = r6\nr2 = 1000000000 ll\nr3 = 0\ncall bpf_timer_start\n";
const CANCEL: &str = "r1 = r6\ncall bpf_timer_cancel\n";

#[test]
fn timer_state_machine() {
    let step = |calls: &[&str]| {
        // r0 of each call, as bytes: r7 = r7 << 8 | (r0 & 0xff).
        let mut body = "r7 = 0\n".to_string();
        for c in calls {
            body += c;
            body += "r7 <<= 8\nr0 &= 0xff\nr7 |= r0\n";
        }
        body += "r0 = r7\n";
        with_timer(&body)
    };
    let b = |v: i64| (v as u8) as i64;
    // Start before a callback, then with one; cancel reports the armed timer once.
    let mut inst =
        instance(ProgType::Xdp, "GPL", &step(&[INIT, START, SET_CB, START, CANCEL, CANCEL, START]));
    let want = [0, b(-22), 0, 0, 1, 0, b(-22)].iter().fold(0i64, |acc, v| acc << 8 | v);
    assert_eq!(r0(&mut inst), want);
    // The timer stays initialized across runs: init again is -EBUSY.
    let mut again = instance(ProgType::Xdp, "GPL", &step(&[INIT, INIT]));
    assert_eq!(r0(&mut again), b(-16));
    assert_eq!(r0(&mut again), (b(-16) << 8) | b(-16));
    // Not initialized: -EINVAL everywhere.
    let mut fresh = instance(ProgType::SchedCls, "GPL", &step(&[SET_CB, START, CANCEL]));
    assert_eq!(r0(&mut fresh), (b(-22) << 16) | (b(-22) << 8) | b(-22));
    // Clocks other than REALTIME, MONOTONIC and BOOTTIME, start flags other than ABS and
    // CPU_PIN: -EINVAL.
    for (clock, want) in [(0, 0), (1, 0), (7, 0), (2, -22), (16, -22)] {
        let init = INIT.replace("r3 = 1\n", &format!("r3 = {clock}\n"));
        let mut inst = instance(ProgType::Xdp, "GPL", &step(&[&init]));
        assert_eq!(r0(&mut inst), b(want), "clock {clock}");
    }
    for (flags, want) in [(1, 0), (2, 0), (3, 0), (4, -22)] {
        let start = START.replace("r3 = 0\n", &format!("r3 = {flags}\n"));
        let mut inst = instance(ProgType::Xdp, "GPL", &step(&[INIT, SET_CB, &start]));
        assert_eq!(r0(&mut inst) & 0xff, b(want), "flags {flags}");
    }
}

/// Timers are GPL-only. (Tracing program types may call them, as the kernel's
/// `bpf_base_func_proto` offers them to every type; the kernel's verifier refuses those types
/// the maps that hold timers, which bpflab's verifier checks: see the verifier's agreement
/// corpus, `verifier_helper_restricted`.)
#[test]
fn timers_are_gpl_only() {
    let mut inst = instance(ProgType::Xdp, "Proprietary", &with_timer(INIT));
    let e = inst.run(0, &RunInput::data(vec![0; 64])).unwrap_err().to_string();
    assert!(e.contains("cannot call GPL-restricted function"), "{e}");
}
