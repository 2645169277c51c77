//! `skb->sk` in skb test runs: `BPF_PROG_TEST_RUN` gives every run a fresh socket of its own
//! (`sk_alloc(AF_UNSPEC)` + `sock_init_data(NULL, sk)`, family and addresses from the IP
//! header). The fixture programs/tests/skb_sk.bpf.o reads every `struct bpf_sock` field of it
//! from cgroup_skb, tc and socket filter programs and calls the socket helpers on it
//! (`bpf_sk_fullsock`, `bpf_tcp_sock`, `bpf_get_listener_sock`, `bpf_sk_storage_get/delete`,
//! `bpf_get_socket_cookie`, `bpf_get_socket_uid`). Its results are checked with real values on
//! the interpreter and the JIT, then compared with the kernel on IPv4 TCP, IPv6 UDP and ARP
//! frames, two runs each (the second run's socket is a new one: its storage starts empty).
//!
//! The socket cookie is host-specific (the kernel's comes from a global counter): the fixture
//! records only that it is nonzero and stable within a run, which both must agree on.

use std::path::Path;

use bpflab_jit::JitEngine;
use bpflab_kernel::features::features;
use bpflab_kernel::{KernelEngine, probe};
use bpflab_loader::{LoadOptions, Object};
use bpflab_vm::{Collection, Engine, Interpreter, Loaded, RunInput};

/// Slots per result array (see the fixture's header).
const NRES: usize = 30;

fn object() -> Object {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("programs/tests/skb_sk.bpf.o");
    let bytes = std::fs::read(&path).expect("read skb_sk.bpf.o");
    bpflab_loader::load(&bytes, &LoadOptions::for_path(&path)).expect("skb_sk loads")
}

/// An Ethernet frame from 02:..:01 to the loopback's address (00:..:00) of type `proto`.
fn eth(proto: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 1];
    f.extend_from_slice(&proto.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// IPv4 TCP SYN 10.1.2.3:40000 -> 192.168.7.9:80.
fn ipv4_tcp() -> Vec<u8> {
    let mut ip = vec![0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 1, 2, 3, 192, 168, 7, 9];
    let mut tcp = vec![0u8; 20];
    tcp[0..2].copy_from_slice(&40000u16.to_be_bytes());
    tcp[2..4].copy_from_slice(&80u16.to_be_bytes());
    tcp[12] = 0x50;
    tcp[13] = 0x02;
    ip.extend_from_slice(&tcp);
    eth(0x0800, &ip)
}

/// The IPv6 addresses of [`ipv6_udp`]: 2001:db8::1:2 -> fe80::aa:bb.
const SRC6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2];
const DST6: [u8; 16] = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xaa, 0, 0xbb];

/// IPv6 UDP 2001:db8::1:2 port 5353 -> fe80::aa:bb port 53, 4 payload bytes.
fn ipv6_udp() -> Vec<u8> {
    let mut ip = vec![0x60, 0, 0, 0, 0, 12, 17, 64];
    ip.extend_from_slice(&SRC6);
    ip.extend_from_slice(&DST6);
    ip.extend_from_slice(&[0x14, 0xe9, 0, 53, 0, 12, 0, 0, 1, 2, 3, 4]);
    eth(0x86dd, &ip)
}

/// An ARP request (no IP header: the socket keeps family 0 and no addresses).
fn arp() -> Vec<u8> {
    let mut a = vec![0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 10, 1, 2, 3];
    a.extend_from_slice(&[0, 0, 0, 0, 0, 0, 10, 1, 2, 4]);
    eth(0x0806, &a)
}

fn prog(c: &Collection, name: &str) -> usize {
    c.programs.iter().position(|p| p.name == name).unwrap_or_else(|| panic!("program {name}"))
}

fn bss(c: &Collection) -> usize {
    c.maps.iter().position(|m| m.name.ends_with(".bss")).expect("bss map")
}

/// The .bss as clang lays it out: `runs[3]`, then `cg_res`, `tc_res`, `sf_res` (30 s64 each);
/// returned as the three arrays then `runs`.
fn results(l: &mut dyn Loaded, c: &Collection) -> Vec<i64> {
    let value = l.map_lookup(bss(c), &0u32.to_le_bytes()).expect("lookup").expect("value");
    let mut v: Vec<i64> =
        value.chunks(8).map(|b| i64::from_le_bytes(b.try_into().unwrap())).collect();
    v.rotate_left(3);
    v
}

/// The expected slots 1..=12 (the `struct bpf_sock` fields reached through `skb->sk`) for a
/// socket of `family` with IPv4 addresses `v4` or IPv6 ones `v6`.
fn fields(family: i64, v4: ([u8; 4], [u8; 4]), v6: ([u8; 16], [u8; 16])) -> Vec<i64> {
    let w = |b: &[u8]| i64::from(u32::from_le_bytes(b[..4].try_into().unwrap()));
    vec![
        family,
        w(&v4.0),
        w(&v4.1),
        w(&v6.0[0..4]),
        w(&v6.0[12..16]),
        w(&v6.1[0..4]),
        w(&v6.1[12..16]),
        0,  // src_port: skc_num, no local port
        0,  // dst_port
        7,  // state: TCP_CLOSE (sock_init_data)
        -1, // rx_queue_mapping: NO_QUEUE_MAPPING reads as -1
        0,  // bound_dev_if
    ]
}

/// The expected slots 13..=28 (helpers on the full socket), the same for every frame.
fn helper_slots() -> Vec<i64> {
    vec![
        2,  // bpf_sk_fullsock returns the socket itself
        0,  // type: sock_init_data(NULL, sk) sets no type
        0,  // protocol
        0,  // mark
        0,  // priority
        1,  // bpf_tcp_sock: NULL, not a TCP socket
        1,  // bpf_get_listener_sock: NULL, not listening
        1,  // storage value after F_CREATE and ++: a fresh socket every run
        1,  // the second get returns the same value
        0,  // delete
        -2, // delete again: -ENOENT
        1,  // get without F_CREATE after delete: NULL
        0,  // created again: zeroed
        1,  // cookie nonzero
        1,  // cookie stable within the run
        0,  // uid 0
    ]
}

/// The frames and the `struct bpf_sock` slots their test run's socket has.
fn frames() -> [(&'static str, Vec<u8>, Vec<i64>); 3] {
    let v4 = ([10, 1, 2, 3], [192, 168, 7, 9]);
    [
        ("ipv4 tcp", ipv4_tcp(), fields(2, v4, ([0; 16], [0; 16]))),
        ("ipv6 udp", ipv6_udp(), fields(10, ([0; 4], [0; 4]), (SRC6, DST6))),
        ("arp", arp(), fields(0, ([0; 4], [0; 4]), ([0; 16], [0; 16]))),
    ]
}

/// Checks the .bss after sk_cg, sk_tc and sk_sf ran `run` times each, the last time on a frame
/// whose socket has the slots `sk`.
fn check_results(r: &[i64], sk: &[i64], run: i64, at: &str) {
    let mut want = vec![2];
    want.extend_from_slice(sk);
    want.extend(helper_slots());
    want.push(run);
    assert_eq!(r[..NRES], want[..], "{at}: cgroup_skb");
    assert_eq!(r[NRES..2 * NRES], want[..], "{at}: tc");
    assert_eq!(r[2 * NRES..2 * NRES + 13], want[..13], "{at}: socket");
    assert_eq!(r[3 * NRES - 1], run, "{at}: socket filter runs");
    assert_eq!(r[3 * NRES..], [run, run, run], "{at}: runs");
}

fn engines() -> Vec<Box<dyn Engine>> {
    vec![Box::new(Interpreter::default()), Box::new(JitEngine::default())]
}

#[test]
fn bss_layout_matches_the_fixture() {
    let obj = object();
    let b = &obj.collection.maps[bss(&obj.collection)];
    assert_eq!(b.value_size as usize, (3 * NRES + 3) * 8, "three result arrays and runs[3]");
}

#[test]
fn the_test_run_socket_has_the_kernel_values_on_both_engines() {
    let obj = object();
    let c = &obj.collection;
    for engine in engines() {
        let name = engine.name();
        let mut l = engine.load(c).expect("load");
        let mut run = 0;
        for (label, frame, sk) in &frames() {
            for _ in 0..2 {
                run += 1;
                let input = RunInput::data(frame.clone());
                let out = l.run(prog(c, "sk_cg"), &input).expect("sk_cg");
                assert_eq!(out.r0, 1, "{name} {label}");
                let out = l.run(prog(c, "sk_tc"), &input).expect("sk_tc");
                assert_eq!(out.r0, 0, "{name} {label}");
                assert_eq!(out.data, *frame, "{name} {label}: tc output is the frame");
                let out = l.run(prog(c, "sk_sf"), &input).expect("sk_sf");
                assert_eq!(out.r0, (frame.len() - 14) as u64, "{name} {label}: skb->len");
                check_results(&results(l.as_mut(), c), sk, run, &format!("{name} {label}"));
            }
        }
    }
}

type Observed = Result<(u32, Vec<u8>, Vec<u8>), String>;

fn observe(l: &mut dyn Loaded, c: &Collection, p: usize, input: &RunInput) -> Observed {
    let out = l.run(p, input).map_err(|e| e.to_string())?;
    let value = l.map_lookup(bss(c), &0u32.to_le_bytes()).map_err(|e| e.to_string())?;
    Ok((out.r0 as u32, out.data, value.unwrap_or_default()))
}

#[test]
fn every_program_and_frame_agrees_with_the_kernel() {
    if let Err(e) = probe() {
        println!("SKIP: skb_sk: the kernel cannot load BPF programs here: {e}");
        return;
    }
    let features = features().expect("kernel features");
    let obj = object();
    let c = &obj.collection;
    let mut left_out = Vec::new();
    for (i, p) in c.programs.iter().enumerate() {
        let missing = features.missing_for_test_run(c, i);
        if !missing.is_empty() {
            let what: Vec<String> = missing.iter().map(ToString::to_string).collect();
            println!("SKIP: skb_sk {}: kernel lacks {}", p.name, what.join(", "));
            left_out.push(i);
        }
    }
    let mut kernel = KernelEngine.load_collection_except(c, &left_out).expect("kernel load");
    let mut sims: Vec<(&str, Box<dyn Loaded>)> =
        engines().into_iter().map(|e| (e.name(), e.load(c).expect("load"))).collect();
    let mut divergences = Vec::new();
    let (mut cases, mut run) = (0, 0);
    for (label, frame, sk) in &frames() {
        for round in 1..=2 {
            run += 1;
            for (p, program) in c.programs.iter().enumerate() {
                if left_out.contains(&p) {
                    continue;
                }
                cases += 1;
                let input = RunInput::data(frame.clone());
                let k = observe(&mut kernel, c, p, &input);
                assert!(k.is_ok(), "the kernel runs {} on {label}: {k:?}", program.name);
                for (engine, sim) in sims.iter_mut() {
                    let s = observe(sim.as_mut(), c, p, &input);
                    let at = format!("{} on {label}, run {round} ({engine})", program.name);
                    match (&k, &s) {
                        (Ok(k), Ok(s)) if k == s => {}
                        (Ok(k), Ok(s)) => {
                            let what = if k.0 != s.0 {
                                format!("r0 kernel {:#x}, bpflab {:#x}", k.0, s.0)
                            } else if k.1 != s.1 {
                                format!("output packet kernel {:02x?}, bpflab {:02x?}", k.1, s.1)
                            } else {
                                let w = |b: &[u8]| -> Vec<i64> {
                                    b.chunks(8)
                                        .map(|x| i64::from_le_bytes(x.try_into().unwrap()))
                                        .collect()
                                };
                                format!(".bss kernel {:?}\n   bpflab {:?}", w(&k.2), w(&s.2))
                            };
                            divergences.push(format!("{at}: {what}"));
                        }
                        (_, Err(e)) => divergences.push(format!("{at}: bpflab failed: {e}")),
                        (Err(_), _) => unreachable!("checked above"),
                    }
                }
            }
            // The kernel's own values are the ones the simulation is expected to give.
            if left_out.is_empty() {
                let at = format!("kernel {label} run {round}");
                check_results(&results(&mut kernel, c), sk, run, &at);
            }
        }
    }
    println!("skb_sk: {cases} cases, each on the interpreter and the JIT");
    assert!(
        divergences.is_empty(),
        "{} divergences:\n{}",
        divergences.len(),
        divergences.join("\n")
    );
    assert!(cases >= 6, "at least one program ran on every frame twice ({cases} cases)");
}
