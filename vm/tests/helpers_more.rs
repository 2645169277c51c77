//! Helpers over the newer map types and callbacks, through small assembled programs: tail
//! calls, ring buffers, perf events, XDP map redirects, bpf_loop, bpf_for_each_map_elem,
//! spin locks, bpf_snprintf and per-CPU lookups.

use bpflab_vm::asm::assemble;
use bpflab_vm::engine::{ProgType, RunInput};
use bpflab_vm::env::{Redirect, RedirectTarget};
use bpflab_vm::helpers::HelperError;
use bpflab_vm::interp::Instance;
use bpflab_vm::maps::{BPF_ANY, PerfEventArray, RingBuf};
use bpflab_vm::spec::{MapSpec, MapType};
use bpflab_vm::{Collection, Config, Interpreter, Program, VmError, VmErrorKind, standard_helpers};

fn k(i: u32) -> Vec<u8> {
    i.to_le_bytes().to_vec()
}

fn program(name: &str, src: &str) -> Program {
    Program::raw(name, assemble(src).unwrap_or_else(|e| panic!("{name}: {e}")))
}

fn instance(maps: Vec<MapSpec>, programs: Vec<Program>) -> Instance {
    let config = Config { ncpus: 2, ..Config::default() };
    Interpreter::new(config, standard_helpers())
        .instantiate(&Collection { maps, programs, ..Collection::default() })
        .unwrap_or_else(|e| panic!("{e}"))
}

fn run(inst: &mut Instance, prog: usize) -> Result<u64, VmError> {
    inst.run_raw(prog, &mut vec![0; 16]).map(|(r0, _)| r0)
}

fn one(maps: Vec<MapSpec>, src: &str) -> Instance {
    instance(maps, vec![program("p", src)])
}

/// Assembly storing `bytes` on the stack from `r10 - off` up (through r9).
fn stack_bytes(off: i32, bytes: &[u8]) -> String {
    let mut src = String::new();
    for (i, chunk) in bytes.chunks(8).enumerate() {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        let at = off - 8 * i as i32;
        src += &format!("r9 = {:#x} ll\n*(u64 *)(r10 - {at}) = r9\n", u64::from_le_bytes(word));
    }
    src
}

/// The error a helper's callback raised, unwrapped.
fn callback_error(e: &VmError) -> &VmError {
    match e.kind() {
        VmErrorKind::Helper { error: HelperError::Callback(inner), .. } => callback_error(inner),
        _ => e,
    }
}

#[test]
fn bpf_loop_counts_and_stops() {
    // sum = 0; n = bpf_loop(10, cb, &sum, 0); return n << 16 | sum   (cb stops at i == 5)
    let src = "
        *(u64 *)(r10 - 8) = 0
        r1 = 10
        r2 = func cb ll
        r3 = r10
        r3 += -8
        r4 = 0
        call bpf_loop
        r0 <<= 16
        r1 = *(u64 *)(r10 - 8)
        r0 |= r1
        exit
    cb:
        r3 = *(u64 *)(r2 + 0)
        r3 += r1
        *(u64 *)(r2 + 0) = r3
        r0 = 0
        if r1 != 5 goto out
        r0 = 1
    out:
        exit";
    let mut inst = one(vec![], src);
    assert_eq!(run(&mut inst, 0).unwrap(), 6 << 16 | 15);
    // Too many loops, flags, and zero loops.
    let call = |nr: &str, flags: u32| {
        format!(
            "r1 = {nr} ll\nr2 = func cb ll\nr3 = 0\nr4 = {flags}\ncall bpf_loop\nexit\ncb:\nr0 = 0\nexit"
        )
    };
    assert_eq!(run(&mut one(vec![], &call("0x800001", 0)), 0).unwrap(), -7i64 as u64);
    assert_eq!(run(&mut one(vec![], &call("0x800000", 1)), 0).unwrap(), -22i64 as u64);
    assert_eq!(run(&mut one(vec![], &call("0x100000000", 0)), 0).unwrap(), 0);
    assert_eq!(run(&mut one(vec![], &call("3", 0)), 0).unwrap(), 3);
}

/// Callbacks nest in frames: the entry function and 7 nested callbacks fit the 8 frames.
#[test]
fn nested_callbacks_use_frames() {
    let src = |depth: u32| {
        format!(
            "
        *(u64 *)(r10 - 8) = 0
        r1 = 1
        r2 = func cb ll
        r3 = r10
        r3 += -8
        r4 = 0
        call bpf_loop
        r0 = *(u64 *)(r10 - 8)
        exit
    cb:
        r6 = r2
        r3 = *(u64 *)(r6 + 0)
        r3 += 1
        *(u64 *)(r6 + 0) = r3
        r0 = 0
        if r3 >= {depth} goto out
        r1 = 1
        r2 = func cb ll
        r3 = r6
        r4 = 0
        call bpf_loop
        r0 = 0
    out:
        exit"
        )
    };
    assert_eq!(run(&mut one(vec![], &src(7)), 0).unwrap(), 7);
    let e = run(&mut one(vec![], &src(8)), 0).unwrap_err();
    assert!(matches!(callback_error(&e).kind(), VmErrorKind::CallDepth { max: 8 }), "{e}");
}

#[test]
fn for_each_map_elem_visits_every_element() {
    // sum the values (hash), add 100 to each through the value pointer, stop at key 3.
    let src = "
        *(u64 *)(r10 - 8) = 0
        r1 = map[idx:0] ll
        r2 = func cb ll
        r3 = r10
        r3 += -8
        r4 = 0
        call bpf_for_each_map_elem
        r0 <<= 32
        r1 = *(u64 *)(r10 - 8)
        r0 |= r1
        exit
    cb:
        r5 = *(u64 *)(r3 + 0)
        r6 = *(u64 *)(r4 + 0)
        r6 += r5
        *(u64 *)(r4 + 0) = r6
        r5 += 100
        *(u64 *)(r3 + 0) = r5
        r0 = 0
        r1 = *(u32 *)(r2 + 0)
        if r1 != 3 goto out
        r0 = 1
    out:
        exit";
    let mut inst = one(vec![MapSpec::new("h", MapType::Hash, 4, 8, 8)], src);
    for i in [5, 1, 3, 2] {
        inst.world.update(0, &k(i), &u64::from(i * 10).to_le_bytes(), BPF_ANY).unwrap();
    }
    // Keys are visited in ascending order: 1, 2, 3 (stop).
    assert_eq!(run(&mut inst, 0).unwrap(), 3 << 32 | 60);
    assert_eq!(inst.world.lookup(0, &k(2)).unwrap(), Some(120u64.to_le_bytes().to_vec()));
    assert_eq!(inst.world.lookup(0, &k(5)).unwrap(), Some(50u64.to_le_bytes().to_vec()));
    // Arrays visit every index; the key is read-only.
    let mut inst = one(vec![MapSpec::new("a", MapType::Array, 4, 8, 5)], src);
    assert_eq!(run(&mut inst, 0).unwrap(), 4 << 32);
    assert_eq!(inst.world.lookup(0, &k(3)).unwrap(), Some(100u64.to_le_bytes().to_vec()));
    assert_eq!(inst.world.lookup(0, &k(4)).unwrap(), Some(vec![0; 8]));
    let write_key = "
        r1 = map[idx:0] ll
        r2 = func cb ll
        r3 = 0
        r4 = 0
        call bpf_for_each_map_elem
        exit
    cb:
        *(u32 *)(r2 + 0) = 1
        r0 = 0
        exit";
    let e = run(&mut one(vec![MapSpec::new("a", MapType::Array, 4, 8, 5)], write_key), 0);
    assert!(callback_error(&e.unwrap_err()).to_string().contains("read-only"));
    // Flags are -EINVAL; map types without the callback are refused.
    let flags = "r1 = map[idx:0] ll\nr2 = func cb ll\nr3 = 0\nr4 = 1\ncall bpf_for_each_map_elem\nexit\ncb:\nr0 = 0\nexit";
    let mut inst = one(vec![MapSpec::new("a", MapType::Array, 4, 8, 5)], flags);
    assert_eq!(run(&mut inst, 0).unwrap(), -22i64 as u64);
    let mut inst = one(vec![MapSpec::new("q", MapType::Queue, 0, 8, 5)], flags);
    assert!(run(&mut inst, 0).is_err());
}

#[test]
fn tail_calls_chain_and_stop_after_33() {
    // p0: tail call to progs[1]; falls through with 99 when the slot is empty.
    let p0 = "
        r2 = map[idx:0] ll
        r3 = 1
        call bpf_tail_call
        r0 = 99
        exit";
    let p1 = "r0 = 11\nexit";
    // p2: count runs in counts[0], tail call to itself.
    let p2 = "
        r6 = r1
        *(u32 *)(r10 - 4) = 0
        r1 = map[idx:1] ll
        r2 = r10
        r2 += -4
        call bpf_map_lookup_elem
        if r0 == 0 goto out
        r1 = 1
        lock *(u64 *)(r0 + 0) += r1
        r1 = r6
        r2 = map[idx:0] ll
        r3 = 2
        call bpf_tail_call
    out:
        r0 = 7
        exit";
    let maps = vec![
        MapSpec::new("progs", MapType::ProgArray, 4, 4, 4),
        MapSpec::new("counts", MapType::Array, 4, 8, 1),
    ];
    let mut inst = instance(maps, vec![program("p0", p0), program("p1", p1), program("p2", p2)]);
    assert_eq!(run(&mut inst, 0).unwrap(), 99);
    inst.world.update(0, &k(1), &k(1), BPF_ANY).unwrap();
    assert_eq!(run(&mut inst, 0).unwrap(), 11);
    inst.world.update(0, &k(2), &k(2), BPF_ANY).unwrap();
    assert_eq!(run(&mut inst, 2).unwrap(), 7);
    // The first run plus 33 tail calls.
    assert_eq!(inst.world.lookup(1, &k(0)).unwrap(), Some(34u64.to_le_bytes().to_vec()));
    // An index past max_entries falls through.
    let p3 = "r2 = map[idx:0] ll\nr3 = 0x100000001 ll\ncall bpf_tail_call\nr0 = 5\nexit";
    let maps = vec![MapSpec::new("progs", MapType::ProgArray, 4, 4, 4)];
    let mut inst = instance(maps, vec![program("p3", p3), program("p1", p1)]);
    inst.world.update(0, &k(1), &k(1), BPF_ANY).unwrap();
    // The index is a u32: 0x100000001 is entry 1.
    assert_eq!(run(&mut inst, 0).unwrap(), 11);
}

#[test]
fn ringbuf_reserve_submit_discard_query() {
    // r = reserve(rb, 12, 0); r[0] = 0xabcd; submit(r, 0); discard(reserve(rb, 4, 0), 0);
    // output(rb, &stack, 3, 0); return query(rb, PROD_POS) << 32 | query(rb, AVAIL_DATA)
    let src = "
        r1 = map[idx:0] ll
        r2 = 12
        r3 = 0
        call bpf_ringbuf_reserve
        if r0 == 0 goto fail
        *(u32 *)(r0 + 0) = 0xabcd
        r1 = r0
        r2 = 0
        call bpf_ringbuf_submit
        r1 = map[idx:0] ll
        r2 = 4
        r3 = 0
        call bpf_ringbuf_reserve
        if r0 == 0 goto fail
        r1 = r0
        r2 = 0
        call bpf_ringbuf_discard
        *(u32 *)(r10 - 8) = 0x030201
        r1 = map[idx:0] ll
        r2 = r10
        r2 += -8
        r3 = 3
        r4 = 0
        call bpf_ringbuf_output
        if r0 != 0 goto fail
        r1 = map[idx:0] ll
        r2 = 3
        call bpf_ringbuf_query
        r6 = r0
        r6 <<= 32
        r1 = map[idx:0] ll
        r2 = 0
        call bpf_ringbuf_query
        r0 |= r6
        exit
    fail:
        r0 = 1
        exit";
    let mut inst = one(vec![MapSpec::new("rb", MapType::Ringbuf, 0, 0, 4096)], src);
    // Records of 24, 16 and 16 bytes (8-byte headers, 8-byte alignment).
    assert_eq!(run(&mut inst, 0).unwrap(), 56 << 32 | 56);
    let (m, _) = inst.world.map_mut(0).unwrap();
    let rb = m.as_any_mut().downcast_mut::<RingBuf>().unwrap();
    let mut first = vec![0; 12];
    first[..4].copy_from_slice(&0xabcdu32.to_le_bytes());
    assert_eq!(rb.drain(), vec![first, vec![1, 2, 3]]);
    assert_eq!((rb.consumer_pos(), rb.avail_data(), rb.ring_size()), (56, 0, 4096));
    // Query of the ring size and of unknown flags.
    let q = |flags: u32| format!("r1 = map[idx:0] ll\nr2 = {flags}\ncall bpf_ringbuf_query\nexit");
    let spec = || vec![MapSpec::new("rb", MapType::Ringbuf, 0, 0, 8192)];
    assert_eq!(run(&mut one(spec(), &q(1)), 0).unwrap(), 8192);
    assert_eq!(run(&mut one(spec(), &q(7)), 0).unwrap(), 0);
    // Flags on reserve give NULL; output flags other than the wakeup ones are -EINVAL; a full
    // ring gives NULL and -EAGAIN.
    let reserve = |size: u32, flags: u32| {
        format!("r1 = map[idx:0] ll\nr2 = {size}\nr3 = {flags}\ncall bpf_ringbuf_reserve\nexit")
    };
    assert_eq!(run(&mut one(spec(), &reserve(8, 1)), 0).unwrap(), 0);
    assert_eq!(run(&mut one(spec(), &reserve(8192, 0)), 0).unwrap(), 0);
    let output = |size: u32, flags: u32| {
        format!(
            "r1 = map[idx:0] ll\nr2 = r10\nr2 += -16\nr3 = {size}\nr4 = {flags}\ncall bpf_ringbuf_output\nexit"
        )
    };
    assert_eq!(run(&mut one(spec(), &output(8, 4)), 0).unwrap(), -22i64 as u64);
    assert_eq!(run(&mut one(spec(), &output(8, 3)), 0).unwrap(), 0);
    let mut inst = one(vec![MapSpec::new("rb", MapType::Ringbuf, 0, 0, 4096)], &output(16, 0));
    for _ in 0..170 {
        assert_eq!(run(&mut inst, 0).unwrap(), 0);
    }
    assert_eq!(run(&mut inst, 0).unwrap(), -11i64 as u64);
}

#[test]
fn ringbuf_records_are_released_once() {
    let twice = "
        r1 = map[idx:0] ll
        r2 = 8
        r3 = 0
        call bpf_ringbuf_reserve
        r6 = r0
        r1 = r6
        r2 = 0
        call bpf_ringbuf_submit
        r1 = r6
        r2 = 0
        call bpf_ringbuf_discard
        exit";
    let spec = || vec![MapSpec::new("rb", MapType::Ringbuf, 0, 0, 4096)];
    let e = run(&mut one(spec(), twice), 0).unwrap_err();
    assert!(matches!(e.kind(), VmErrorKind::Helper { name: "bpf_ringbuf_discard", .. }), "{e}");
    let write_after = "
        r1 = map[idx:0] ll
        r2 = 8
        r3 = 0
        call bpf_ringbuf_reserve
        r6 = r0
        r1 = r6
        r2 = 0
        call bpf_ringbuf_submit
        *(u64 *)(r6 + 0) = 1
        exit";
    let e = run(&mut one(spec(), write_after), 0).unwrap_err();
    assert!(matches!(e.kind(), VmErrorKind::Memory(_)), "{e}");
    let stack = "r1 = r10\nr1 += -8\nr2 = 0\ncall bpf_ringbuf_submit\nexit";
    assert!(run(&mut one(spec(), stack), 0).is_err());
}

#[test]
fn perf_event_output_per_cpu() {
    let src = |flags: &str, size: u32| {
        format!(
            "*(u64 *)(r10 - 8) = 0x44434241
            r2 = map[idx:0] ll
            r3 = {flags} ll
            r4 = r10
            r4 += -8
            r5 = {size}
            call bpf_perf_event_output
            exit"
        )
    };
    let spec = || vec![MapSpec::new("events", MapType::PerfEventArray, 4, 4, 4)];
    let mut inst = one(spec(), &src("0xffffffff", 4));
    assert_eq!(run(&mut inst, 0).unwrap(), 0);
    inst.world.env.cpu = 1;
    assert_eq!(run(&mut inst, 0).unwrap(), 0);
    assert_eq!(run(&mut inst, 0).unwrap(), 0);
    let pe = inst.world.map(0).unwrap().as_any().downcast_ref::<PerfEventArray>().unwrap();
    assert_eq!(pe.records(0), &[b"ABCD".to_vec()]);
    assert_eq!(pe.records(1), &[b"ABCD".to_vec(), b"ABCD".to_vec()]);
    // Errors: another CPU's event, an index without an event, past the end, unknown flags
    // (raw programs take no packet length).
    assert_eq!(run(&mut one(spec(), &src("1", 2)), 0).unwrap(), -95i64 as u64);
    assert_eq!(run(&mut one(spec(), &src("3", 2)), 0).unwrap(), -2i64 as u64);
    assert_eq!(run(&mut one(spec(), &src("4", 2)), 0).unwrap(), -7i64 as u64);
    assert_eq!(run(&mut one(spec(), &src("0x100000000", 2)), 0).unwrap(), -22i64 as u64);
}

#[test]
fn perf_event_output_appends_xdp_packet_bytes() {
    let src = |ctx_len: u32| {
        format!(
            "*(u64 *)(r10 - 8) = 0x41
            r2 = map[idx:0] ll
            r3 = {:#x} ll
            r4 = r10
            r4 += -8
            r5 = 1
            call bpf_perf_event_output
            exit",
            u64::from(ctx_len) << 32 | 0xffff_ffff
        )
    };
    let run_with = |ctx_len| {
        let prog = program("x", &src(ctx_len)).with_type(ProgType::Xdp);
        let mut inst =
            instance(vec![MapSpec::new("events", MapType::PerfEventArray, 4, 4, 2)], vec![prog]);
        let out = inst.run(0, &RunInput::data((0u8..20).collect::<Vec<_>>())).unwrap();
        let pe = inst.world.map(0).unwrap().as_any().downcast_ref::<PerfEventArray>().unwrap();
        (out.r0, pe.records(0).to_vec())
    };
    assert_eq!(run_with(3), (0, vec![vec![0x41, 0, 1, 2]]));
    // More packet bytes than the packet has: -EFAULT.
    assert_eq!(run_with(21), (-14i64 as u64, vec![]));
}

fn xdp_redirect(map: MapSpec, key: u32, flags: u64) -> Instance {
    let src =
        format!("r1 = map[idx:0] ll\nr2 = {key}\nr3 = {flags:#x} ll\ncall bpf_redirect_map\nexit");
    instance(vec![map], vec![program("x", &src).with_type(ProgType::Xdp)])
}

fn run_xdp(inst: &mut Instance) -> u64 {
    inst.run(0, &RunInput::data(vec![0; 64])).unwrap().r0
}

#[test]
fn redirect_map_targets_and_fallbacks() {
    let mut inst = xdp_redirect(MapSpec::new("dev", MapType::Devmap, 4, 4, 4), 1, 0);
    // Empty slot: the fallback action from the flags (0 = XDP_ABORTED).
    assert_eq!(run_xdp(&mut inst), 0);
    assert_eq!(inst.world.env.redirect, None);
    inst.world.update(0, &k(1), &k(7), BPF_ANY).unwrap();
    assert_eq!(run_xdp(&mut inst), 4);
    assert_eq!(
        inst.world.env.redirect,
        Some(Redirect {
            helper: "bpf_redirect_map",
            map: Some(0),
            key: k(1),
            flags: 0,
            target: RedirectTarget::Ifindex(7),
        })
    );
    let mut inst = xdp_redirect(MapSpec::new("dev", MapType::Devmap, 4, 4, 4), 2, 2);
    assert_eq!(run_xdp(&mut inst), 2); // XDP_PASS fallback
    let mut inst = xdp_redirect(MapSpec::new("dev", MapType::Devmap, 4, 4, 4), 2, 1 << 5);
    assert_eq!(run_xdp(&mut inst), 0); // unknown flag: XDP_ABORTED
    let mut inst =
        xdp_redirect(MapSpec::new("dev", MapType::DevmapHash, 4, 4, 4), 2, (1 << 3) | (1 << 4));
    assert_eq!(run_xdp(&mut inst), 4); // broadcast needs no entry
    assert_eq!(inst.world.env.redirect.as_ref().unwrap().target, RedirectTarget::Broadcast);
    // cpumap and xskmap take no broadcast flags.
    let mut inst = xdp_redirect(MapSpec::new("cpus", MapType::Cpumap, 4, 4, 2), 1, 1 << 3);
    assert_eq!(run_xdp(&mut inst), 0);
    let mut inst = xdp_redirect(MapSpec::new("cpus", MapType::Cpumap, 4, 4, 2), 1, 0);
    inst.world.update(0, &k(1), &k(64), BPF_ANY).unwrap();
    assert_eq!(run_xdp(&mut inst), 4);
    assert_eq!(inst.world.env.redirect.as_ref().unwrap().target, RedirectTarget::Cpu(1));
    let mut inst = xdp_redirect(MapSpec::new("xsks", MapType::Xskmap, 4, 4, 2), 0, 2);
    assert_eq!(run_xdp(&mut inst), 2);
    inst.world.update(0, &k(0), &k(99), BPF_ANY).unwrap();
    assert_eq!(run_xdp(&mut inst), 4);
    assert_eq!(inst.world.env.redirect.as_ref().unwrap().target, RedirectTarget::Xsk(99));
    // Not a redirect map: refused.
    let mut inst = xdp_redirect(MapSpec::new("a", MapType::Array, 4, 4, 2), 0, 0);
    assert!(inst.run(0, &RunInput::data(vec![0; 64])).is_err());
}

#[test]
fn maps_of_maps_from_programs() {
    // inner = lookup(outer, &0); v = lookup(inner, &1); return *v
    let src = "
        *(u32 *)(r10 - 4) = 0
        r1 = map[idx:0] ll
        r2 = r10
        r2 += -4
        call bpf_map_lookup_elem
        if r0 == 0 goto none
        r1 = r0
        *(u32 *)(r10 - 4) = 1
        r2 = r10
        r2 += -4
        call bpf_map_lookup_elem
        if r0 == 0 goto none
        r0 = *(u64 *)(r0 + 0)
        exit
    none:
        r0 = 99
        exit";
    let mut outer = MapSpec::new("outer", MapType::ArrayOfMaps, 4, 4, 2);
    outer.inner = Some(Box::new(MapSpec::new("t", MapType::Array, 4, 8, 2)));
    let inner = MapSpec::new("inner", MapType::Array, 4, 8, 2);
    let mut inst = one(vec![outer, inner], src);
    assert_eq!(run(&mut inst, 0).unwrap(), 99);
    inst.world.update(1, &k(1), &42u64.to_le_bytes(), BPF_ANY).unwrap();
    bpflab_vm::maps::set_inner_map(&mut inst.world, 0, &k(0), 1, BPF_ANY).unwrap();
    assert_eq!(run(&mut inst, 0).unwrap(), 42);
}

#[test]
fn spin_locks() {
    // v = lookup(map, &0); lock(&v->lock); v->count++; unlock(&v->lock); return v->count
    let body = |extra: &str| {
        format!(
            "
        *(u32 *)(r10 - 4) = 0
        r1 = map[idx:0] ll
        r2 = r10
        r2 += -4
        call bpf_map_lookup_elem
        if r0 == 0 goto out
        r6 = r0
        r1 = r6
        call bpf_spin_lock
        {extra}
        r1 = *(u64 *)(r6 + 8)
        r1 += 1
        *(u64 *)(r6 + 8) = r1
        r1 = r6
        call bpf_spin_unlock
        r0 = *(u64 *)(r6 + 8)
    out:
        exit"
        )
    };
    let spec = || vec![MapSpec::new("a", MapType::Array, 4, 16, 1)];
    let mut inst = one(spec(), &body(""));
    assert_eq!(run(&mut inst, 0).unwrap(), 1);
    assert_eq!(run(&mut inst, 0).unwrap(), 2);
    assert_eq!(inst.world.lookup(0, &k(0)).unwrap().unwrap()[..4], [0; 4]);
    let e = run(&mut one(spec(), &body("r1 = r6\ncall bpf_spin_lock")), 0).unwrap_err();
    assert!(e.to_string().contains("already held"), "{e}");
    let e = run(&mut one(spec(), &body("r1 = r6\ncall bpf_spin_unlock")), 0).unwrap_err();
    assert!(e.to_string().contains("not held"), "{e}");
    let stack = "r1 = r10\nr1 += -8\ncall bpf_spin_lock\nexit";
    assert!(run(&mut one(spec(), stack), 0).is_err());
}

/// Runs `bpf_snprintf(out, size, fmt, args, 8 * args.len())` with `fmt` and the arguments on
/// the stack and the output in an array map value; returns r0 and the output bytes.
fn snprintf(fmt: &str, args: &[u64], size: u32, extra: &[u8]) -> (u64, Vec<u8>) {
    let mut fmt = fmt.as_bytes().to_vec();
    fmt.push(0);
    assert!(fmt.len() <= 128);
    let mut src = stack_bytes(128, &fmt);
    let words: Vec<u8> = args.iter().flat_map(|a| a.to_le_bytes()).collect();
    src += &stack_bytes(256, &words);
    src += &stack_bytes(320, extra);
    src += &format!(
        "
        *(u32 *)(r10 - 324) = 0
        r1 = map[idx:0] ll
        r2 = r10
        r2 += -324
        call bpf_map_lookup_elem
        if r0 == 0 goto out
        r1 = r0
        r2 = {size}
        r3 = r10
        r3 += -128
        r4 = r10
        r4 += -256
        r5 = {len}
        call bpf_snprintf
    out:
        exit",
        len = 8 * args.len()
    );
    let mut inst = one(vec![MapSpec::new("out", MapType::Array, 4, 64, 1)], &src);
    let r0 = run(&mut inst, 0).unwrap_or_else(|e| panic!("{e}"));
    (r0, inst.world.lookup(0, &k(0)).unwrap().unwrap())
}

fn text(out: &[u8]) -> String {
    let end = out.iter().position(|&b| b == 0).unwrap_or(out.len());
    String::from_utf8_lossy(&out[..end]).into_owned()
}

#[test]
fn snprintf_formats_like_the_kernel() {
    let (r0, out) = snprintf(
        "%d %u %x %X %ld %lld",
        &[-8i64 as u64, 9, 0x60, 0xdabbad00, -424242i64 as u64, 1337],
        64,
        &[],
    );
    assert_eq!(text(&out), "-8 9 60 DABBAD00 -424242 1337");
    assert_eq!(r0, 30);
    let (_, out) =
        snprintf("[%5d|%-5d|%05d|%+d|% d|%-05x]", &[42, 42, -42i64 as u64, 7, 7, 0xab], 64, &[]);
    assert_eq!(text(&out), "[   42|42   |-0042|+7| 7|ab   ]");
    let (_, out) = snprintf(
        "%c%c|%3c|%%|%px",
        &[u64::from(b'o'), u64::from(b'k'), u64::from(b'z'), 0xff],
        64,
        &[],
    );
    assert_eq!(text(&out), "ok|  z|%|00000000000000ff");
    // The outputs of Linux 6.18 for the same calls; %p and %pK hash the address with a
    // per-boot key, so only their shape is the kernel's.
    let (r0, out) = snprintf("%p|%pK|%ps|%pS|%pB", &[0x1234; 5], 64, &[]);
    let out = text(&out);
    assert_eq!((r0, out.len()), (55, 54));
    assert!(out.starts_with("00000000") && out[16..].starts_with("|00000000"), "{out}");
    assert_eq!(&out[33..], "|0x1234|0x1234|0x1234");
    let (_, out) = snprintf("%p|%pK", &[0, 0], 64, &[]);
    assert_eq!(text(&out), "0000000000000000|0000000000000000");
    let (r0, out) =
        snprintf("%+u|%+x|% x|%08d|%-8d|", &[5, 5, 5, -3i64 as u64, -3i64 as u64], 64, &[]);
    assert_eq!((r0, text(&out)), (25, "5|5|5|-0000003|-3      |".into()));
    let (r0, out) = snprintf("\u{e9}%d", &[1], 64, &[]);
    assert_eq!((r0, text(&out)), (4, "\u{e9}1".into()));
    let (r0, out) = snprintf("%pxyz|%pI4", &[0xff, 0], 64, &[]);
    assert_eq!((r0, text(&out)), (25, "00000000000000ff|0.0.0.0".into()));
    let (r0, out) = snprintf("%x %lx %llX", &[0x1122_3344_5566_7788; 3], 64, &[]);
    assert_eq!((r0, text(&out)), (43, "55667788 1122334455667788 1122334455667788".into()));
    // Truncation: the return value is the length needed, NUL included.
    let (r0, out) = snprintf("hello %d", &[12345], 6, &[]);
    assert_eq!((r0, text(&out)), (12, "hello".into()));
}

#[test]
fn snprintf_strings_and_addresses() {
    // The string, IPv4 and IPv6 addresses live at r10 - 320.
    let mut extra = b"str\0".to_vec();
    extra.extend([127, 0, 0, 1]);
    extra.extend([0; 8]);
    let mut v6 = [0u8; 16];
    v6[15] = 1;
    extra.extend(v6);
    // The arguments are addresses into that area, computed by the program.
    let src_args = |fmt: &str, offs: &[i64]| {
        let mut fmtb = fmt.as_bytes().to_vec();
        fmtb.push(0);
        let mut src = stack_bytes(128, &fmtb);
        src += &stack_bytes(320, &extra);
        for (i, off) in offs.iter().enumerate() {
            src += &format!(
                "r9 = r10\nr9 += {}\n*(u64 *)(r10 - {}) = r9\n",
                off - 320,
                256 - 8 * i as i64
            );
        }
        src += &format!(
            "
            *(u32 *)(r10 - 324) = 0
            r1 = map[idx:0] ll
            r2 = r10
            r2 += -324
            call bpf_map_lookup_elem
            if r0 == 0 goto out
            r1 = r0
            r2 = 64
            r3 = r10
            r3 += -128
            r4 = r10
            r4 += -256
            r5 = {}
            call bpf_snprintf
        out:
            exit",
            8 * offs.len()
        );
        let mut inst = one(vec![MapSpec::new("out", MapType::Array, 4, 64, 1)], &src);
        let r0 = run(&mut inst, 0).unwrap_or_else(|e| panic!("{e}"));
        (r0, text(&inst.world.lookup(0, &k(0)).unwrap().unwrap()))
    };
    assert_eq!(src_args("%s!", &[0]).1, "str!");
    assert_eq!(src_args("%pI4 %pi4", &[4, 4]).1, "127.0.0.1 127.000.000.001");
    assert_eq!(src_args("%pI6", &[16]).1, "0000:0000:0000:0000:0000:0000:0000:0001");
    assert_eq!(src_args("%-6s|%6s|", &[0, 0]).1, "str   |   str|");
    // An unreadable string prints as nothing.
    let (_, out) = snprintf("<%s>", &[8], 64, &[]);
    assert_eq!(text(&out), "<>");
}

#[test]
fn snprintf_refuses_what_the_verifier_refuses() {
    let bad = |fmt: &str, n: usize| {
        let mut fmtb = fmt.as_bytes().to_vec();
        fmtb.push(0);
        let mut src = stack_bytes(128, &fmtb);
        src += &format!(
            "r1 = r10\nr1 += -64\nr2 = 32\nr3 = r10\nr3 += -128\nr4 = r10\nr4 += -256\nr5 = {}\ncall bpf_snprintf\nexit",
            8 * n
        );
        run(&mut one(vec![], &src), 0)
    };
    for (fmt, n) in [
        ("%d %d", 1),
        ("%hd", 1),
        ("%lc", 1),
        ("%5.2d", 1),
        ("%sx", 1),
        ("%pZ", 1),
        ("%", 1),
        ("\x01", 0),
    ] {
        assert!(bad(fmt, n).is_err(), "{fmt:?} was accepted");
    }
    assert!(bad("%d", 1).is_ok());
    assert_eq!(bad("x", 13).unwrap(), -22i64 as u64);
}

#[test]
fn lookup_percpu_elem_reads_other_cpus() {
    // return *lookup_percpu_elem(map, &0, cpu) for cpu from the input's first byte
    let src = "
        r6 = *(u8 *)(r1 + 0)
        *(u32 *)(r10 - 4) = 0
        r1 = map[idx:0] ll
        r2 = r10
        r2 += -4
        r3 = r6
        call bpf_map_lookup_percpu_elem
        if r0 == 0 goto none
        r0 = *(u64 *)(r0 + 0)
        exit
    none:
        r0 = 99
        exit";
    let mut inst = one(vec![MapSpec::new("p", MapType::PercpuArray, 4, 8, 1)], src);
    let all: Vec<u8> = [5u64, 6].iter().flat_map(|v| v.to_le_bytes()).collect();
    inst.world.update(0, &k(0), &all, BPF_ANY).unwrap();
    for (cpu, want) in [(0u8, 5), (1, 6), (2, 99)] {
        let (r0, _) = inst.run_raw(0, &mut vec![cpu]).unwrap();
        assert_eq!(r0, want);
    }
    let mut inst = one(vec![MapSpec::new("a", MapType::Array, 4, 8, 1)], src);
    assert!(inst.run_raw(0, &mut vec![0]).is_err());
}
