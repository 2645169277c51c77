//! programs/tests/net_helpers.bpf.o against the running kernel: every program runs on crafted
//! frames with `BPF_PROG_TEST_RUN` and in the interpreter, and both must give the same return
//! value and the same output frame byte for byte. The syncookie program looks up real sockets
//! of this process (a TCP listener and an established connection on 127.0.0.1), mirrored in
//! the interpreter's simulated socket table. A program calling a helper the kernel lacks for
//! its type (the kernel feature probe) is skipped with `SKIP: <program>: kernel lacks ...`. Also: a program calling a
//! GPL-only helper is refused by both with a non-GPL-compatible license.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;

use bpflab_kernel::features::features;
use bpflab_kernel::{KernelEngine, KernelError, KernelProgram, probe};
use bpflab_loader::{LoadOptions, Object};
use bpflab_vm::engine::EngineError;
use bpflab_vm::helpers::HelperError;
use bpflab_vm::{Collection, Interpreter, RunInput, VmErrorKind};

fn object() -> Object {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../programs/tests/net_helpers.bpf.o");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bpflab_loader::load(&bytes, &LoadOptions::for_path(&path))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn inet_csum(data: &[u8]) -> u16 {
    let mut sum: u32 = data.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], c[1]]))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Ethernet + IPv4 (TOS `tos`) + a 20-byte TCP header with `flags`, `src` -> `dst`, plus
/// `pad` payload bytes.
fn tcp4(tos: u8, flags: u8, src: SocketAddr, dst: SocketAddr, pad: usize) -> Vec<u8> {
    let ip = |a: SocketAddr| match a.ip() {
        std::net::IpAddr::V4(v4) => v4.octets(),
        std::net::IpAddr::V6(_) => panic!("IPv4 only"),
    };
    let mut p = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    let total = (40 + pad) as u16;
    let mut h = vec![0x45, tos, 0, 0, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0];
    h[2..4].copy_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&ip(src));
    h.extend_from_slice(&ip(dst));
    let c = inet_csum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(&h);
    p.extend_from_slice(&src.port().to_be_bytes());
    p.extend_from_slice(&dst.port().to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xfa, 0xf0, 0, 0, 0, 0]);
    p.extend((0..pad).map(|i| i as u8));
    p
}

/// A SYN whose TCP header (24 bytes) ends with the 4 option bytes `opt`.
fn syn_options(opt: [u8; 4]) -> Vec<u8> {
    let mut p = tcp4(0, 0x02, sa("10.0.0.1:40000"), sa("10.1.2.3:80"), 4);
    p[46] = 0x60; // data offset 6 (24 bytes)
    p[54..58].copy_from_slice(&opt);
    p
}

/// An IPv6 SYN (fd00::1 -> fd00::2, ports 40000 -> 80) whose 24-byte TCP header announces
/// MSS `mss` (no option when 0).
fn syn6_mss(mss: u16) -> Vec<u8> {
    let mut p = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x86, 0xdd];
    p.extend_from_slice(&[0x60, 0, 0, 0, 0, 24, 6, 64]);
    let mut addr = [0u8; 16];
    addr[0] = 0xfd;
    addr[15] = 1;
    p.extend_from_slice(&addr);
    addr[15] = 2;
    p.extend_from_slice(&addr);
    let [hi, lo] = mss.to_be_bytes();
    let opt = if mss == 0 { [1, 1, 1, 1] } else { [2, 4, hi, lo] };
    p.extend_from_slice(&[0x9c, 0x40, 0, 80, 0, 0, 0, 9, 0, 0, 0, 0, 0x60, 0x02, 0xfa, 0xf0]);
    p.extend_from_slice(&[0, 0, 0, 0]);
    p.extend_from_slice(&opt);
    p
}

/// A SYN announcing MSS `mss`.
fn syn_mss(mss: u16) -> Vec<u8> {
    let [hi, lo] = mss.to_be_bytes();
    syn_options([2, 4, hi, lo])
}

/// A 154-byte frame whose 24 payload bytes from offset 54 are `text`, zero-padded (cut at 24).
fn with_text(text: &[u8]) -> Vec<u8> {
    let mut p = tcp4(0, 0x02, sa("10.0.0.1:40000"), sa("10.1.2.3:80"), 100);
    p[54..78].fill(0);
    let n = text.len().min(24);
    p[54..54 + n].copy_from_slice(&text[..n]);
    p
}

/// `plain(0)` whose first 9 payload bytes (at offset 54) are `payload`.
fn with_payload(payload: &[u8]) -> Vec<u8> {
    let mut p = plain(0);
    p[54..54 + payload.len()].copy_from_slice(payload);
    p
}

fn sa(s: &str) -> SocketAddr {
    s.parse().expect("address")
}

fn plain(tos: u8) -> Vec<u8> {
    tcp4(tos, 0x02, sa("10.0.0.1:40000"), sa("10.1.2.3:80"), 26)
}

/// Ethernet + IPv6 (traffic class `tc`) + 8 bytes of UDP.
fn ip6(tc: u8) -> Vec<u8> {
    let mut p = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x86, 0xdd];
    p.extend_from_slice(&[0x60 | (tc >> 4), tc << 4, 0, 0, 0, 8, 17, 64]);
    p.extend_from_slice(&[0xfd; 32]);
    p.extend_from_slice(&[0x30, 0x39, 0, 53, 0, 8, 0, 0]);
    p
}

/// `plain(tos)` with an 802.1Q tag (VLAN 100) after the MAC addresses.
fn vlan(tos: u8) -> Vec<u8> {
    vlan_id(100, tos)
}

/// `plain(tos)` with an 802.1Q tag of VLAN `id`.
fn vlan_id(id: u16, tos: u8) -> Vec<u8> {
    let mut p = plain(tos);
    let [hi, lo] = id.to_be_bytes();
    p.splice(12..12, [0x81, 0x00, hi, lo]);
    p
}

/// `plain(tos)` with an 802.1ad tag (VLAN 7) and an 802.1Q tag (VLAN 0x102).
fn qinq(tos: u8) -> Vec<u8> {
    let mut p = vlan_id(0x102, tos);
    p.splice(12..12, [0x88, 0xa8, 0x00, 0x07]);
    p
}

fn arp() -> Vec<u8> {
    let mut p = vec![0xff; 6];
    p.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0x08, 0x06]);
    p.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 10, 0, 0, 1]);
    p.extend_from_slice(&[0; 6]);
    p.extend_from_slice(&[10, 0, 0, 2]);
    p.resize(60, 0);
    p
}

/// The sockets of this process the syncookie cases look up, and their simulated twins.
struct Sockets {
    _listener: TcpListener,
    _client: TcpStream,
    _fresh: TcpListener,
    listen: SocketAddr,
    client: SocketAddr,
    /// A listener nothing connected to.
    fresh: SocketAddr,
}

fn sockets() -> Sockets {
    let listener = TcpListener::bind("127.0.0.1:0").expect("listen on 127.0.0.1");
    let listen = listener.local_addr().expect("listener address");
    let client = TcpStream::connect(listen).expect("connect");
    let client_addr = client.local_addr().expect("client address");
    let fresh = TcpListener::bind("127.0.0.1:0").expect("listen on 127.0.0.1");
    let fresh_addr = fresh.local_addr().expect("listener address");
    Sockets {
        _listener: listener,
        _client: client,
        _fresh: fresh,
        listen,
        client: client_addr,
        fresh: fresh_addr,
    }
}

struct Case {
    prog: &'static str,
    what: String,
    data: Vec<u8>,
}

fn cases(s: &Sockets) -> Vec<Case> {
    let peer = sa("127.0.0.1:40000");
    let mut out = Vec::new();
    let mut add = |prog: &'static str, what: &str, data: Vec<u8>| {
        out.push(Case { prog, what: what.to_string(), data });
    };
    for (what, data) in [
        ("tcp4 80 bytes", plain(0)),
        ("tcp4 54 bytes", tcp4(0, 2, sa("10.0.0.1:1"), sa("10.0.0.2:2"), 0)),
        ("tcp4 1500 bytes", tcp4(0, 2, sa("10.0.0.1:1"), sa("10.0.0.2:2"), 1446)),
        ("ipv6", ip6(0)),
        ("arp", arp()),
    ] {
        for prog in [
            "xdp_bytes",
            "xdp_mtu",
            "tc_mtu",
            "tc_meta",
            "tc_neigh",
            "tc_peer",
            "tc_clone",
            "tc_tstamp",
        ] {
            add(prog, what, data.clone());
        }
    }
    for (what, data) in [
        ("payload \"hello\"", with_payload(b"hello\0xyz")),
        ("payload \"help\"", with_payload(b"help\0\0\0\0\0")),
        ("payload \"hellp\"", with_payload(b"hellp\0\0\0\0")),
        ("payload \"hello world\"", with_payload(b"hello world")),
        ("payload 0xff bytes", with_payload(&[0xff; 9])),
    ] {
        add("xdp_strncmp", what, data);
    }
    for (what, data) in [
        ("SYN", tcp4(0, 0x02, peer, sa("10.1.2.3:80"), 0)),
        ("SYN + 40 payload bytes", tcp4(0, 0x02, peer, sa("10.1.2.3:80"), 40)),
        ("ACK", tcp4(0, 0x10, peer, sa("10.1.2.3:80"), 4)),
    ] {
        add("xdp_raw_syncookie", what, data);
    }
    for mss in [0u16, 100, 536, 1299, 1300, 1439, 1440, 1459, 1460, 9000] {
        add("xdp_raw_syncookie_mss", &format!("SYN with MSS {mss}"), syn_mss(mss));
    }
    add("xdp_raw_syncookie_mss", "SYN with NOPs", syn_options([1, 1, 1, 1]));
    add("xdp_raw_syncookie_mss", "SYN with a bad option length", syn_options([2, 9, 5, 0]));
    add("xdp_raw_syncookie_mss", "SYN with 20-byte header", plain(0));
    for mss in [0u16, 1219, 1220, 1420, 1440, 1460, 8940, 9000] {
        add("xdp_raw_syncookie6", &format!("IPv6 SYN with MSS {mss}"), syn6_mss(mss));
    }
    add("tc_tcp_sock", "SYN to a fresh listener", tcp4(0, 0x02, peer, s.fresh, 100));
    add("tc_tcp_sock", "SYN to port 1 (no socket)", tcp4(0, 0x02, peer, sa("127.0.0.1:1"), 100));
    add("tc_tcp_sock", "short frame", plain(0)[..40].to_vec());
    // The timer persists in the kernel's map across cases: one run (fresh on both sides).
    add("xdp_timer", "tcp4", plain(0));
    for text in [
        &b"  -123abc"[..],
        b"0x1fz",
        b"077 8",
        b"\t+5",
        b"18446744073709551615",
        b"18446744073709551616",
        b"-9223372036854775808",
        b"9223372036854775808",
        b"-9223372036854775809",
        b"0x",
        b"0xg",
        b"   ",
        b"-",
        b"abc",
        b"\xa0 42",
        b"0000000000000000000000000000042",
    ] {
        add("xdp_strtol", &format!("{:?}", String::from_utf8_lossy(text)), with_text(text));
    }
    for prog in ["tc_tunnel", "tc_tunnel6"] {
        add(prog, "tcp4 154 bytes", tcp4(0, 2, sa("10.0.0.1:1"), sa("10.0.0.2:2"), 100));
        add(prog, "tcp4 80 bytes", plain(0));
    }
    for prog in ["tc_neigh_nh", "tc_neigh_bad", "tc_peer_bad"] {
        add(prog, "tcp4", plain(0));
    }
    for (what, data) in [
        ("not-ECT", plain(0x10)),
        ("ECT(1)", plain(0x11)),
        ("ECT(0)", plain(0xfe)),
        ("CE", plain(0x03)),
        ("ipv6 not-ECT", ip6(0xb8)),
        ("ipv6 ECT(0)", ip6(0x02)),
        ("ipv6 CE", ip6(0x03)),
        ("arp", arp()),
        ("ipv4 header cut", plain(0x02)[..30].to_vec()),
        ("vlan ECT(0)", vlan(0x02)),
        ("vlan not-ECT", vlan(0x00)),
        ("vlan 0x102 (the tag looks like ECT(0))", vlan_id(0x102, 0x00)),
        ("vlan 0x101 (the tag looks like ECT(1))", vlan_id(0x101, 0x02)),
        ("vlan 0x103 (the tag looks like CE)", vlan_id(0x103, 0x02)),
        ("qinq", qinq(0x02)),
    ] {
        add("tc_ecn", what, data);
    }
    for (what, data) in [
        ("SYN to the listener", tcp4(0, 0x02, peer, s.listen, 0)),
        ("ACK to the listener", tcp4(0, 0x10, peer, s.listen, 0)),
        ("SYN+ACK to the listener", tcp4(0, 0x12, peer, s.listen, 0)),
        ("RST to the listener", tcp4(0, 0x04, peer, s.listen, 0)),
        ("SYN to the established socket", tcp4(0, 0x02, s.client, s.listen, 0)),
        ("ACK to the established socket", tcp4(0, 0x10, s.client, s.listen, 0)),
        ("SYN to port 1 (no socket)", tcp4(0, 0x02, peer, sa("127.0.0.1:1"), 0)),
        ("short frame", plain(0)[..40].to_vec()),
    ] {
        add("tc_syncookie", what, data.clone());
        add("tc_sockinfo", what, data);
    }
    out
}

#[derive(Debug, PartialEq, Eq)]
enum Ran {
    /// Return value and output frame.
    Ok { r0: u32, data: Vec<u8> },
    /// The test run refused the frame.
    BadInput,
}

fn interp(obj: &Object, idx: usize, data: &[u8], s: &Sockets) -> Result<Ran, String> {
    let mut inst =
        Interpreter::default().instantiate(&obj.collection).map_err(|e| e.to_string())?;
    inst.world.tcp_listen(s.listen).map_err(|e| e.to_string())?;
    inst.world.tcp_connect(s.client, s.listen).map_err(|e| e.to_string())?;
    inst.world.tcp_listen(s.fresh).map_err(|e| e.to_string())?;
    match inst.run(idx, &RunInput::data(data.to_vec())) {
        Ok(out) => Ok(Ran::Ok { r0: out.r0 as u32, data: out.data }),
        Err(EngineError::Context(_)) => Ok(Ran::BadInput),
        Err(e) => Err(e.to_string()),
    }
}

#[test]
fn net_helpers_match_the_kernel() {
    if let Err(e) = probe() {
        println!("SKIP: net_helpers: bpf(2) unavailable: {e}");
        return;
    }
    let obj = object();
    let socks = sockets();
    let programs = &obj.collection.programs;
    // Programs calling a helper this kernel lacks for their type are left out (probed once).
    let profile = features().unwrap_or_else(|e| panic!("kernel features: {e}"));
    let mut skip = Vec::new();
    for (i, p) in programs.iter().enumerate() {
        let missing = profile.missing_for_program(&obj.collection, i);
        if !missing.is_empty() {
            println!("SKIP: {}: kernel lacks {missing:?}", p.name);
            skip.push(i);
        }
    }
    let kernel = KernelEngine
        .load_collection_except(&obj.collection, &skip)
        .unwrap_or_else(|e| panic!("net_helpers.bpf.o: {e}"));
    let (mut compared, mut skipped, mut diffs) = (0, 0, Vec::new());
    let all = cases(&socks);
    let total = all.len();
    assert_eq!(total, 127);
    for case in all {
        let idx = programs.iter().position(|p| p.name == case.prog).expect("program in object");
        let Some(k) = kernel.program(idx) else {
            skipped += 1;
            continue;
        };
        let kernel = match k.test_run(&case.data, None, 1) {
            Ok(run) => Ran::Ok { r0: run.retval, data: run.data_out },
            Err(e) if e.errno().is_some() => Ran::BadInput,
            Err(e) => panic!("{} on {}: test run: {e}", case.prog, case.what),
        };
        let ours = interp(&obj, idx, &case.data, &socks);
        compared += 1;
        if std::env::var_os("BPFLAB_SHOW").is_some() {
            println!("{} on {}: {:?}", case.prog, case.what, kernel);
        }
        if ours.as_ref() != Ok(&kernel) {
            diffs.push(format!(
                "{} on {}:\n    kernel: {kernel:?}\n    bpflab: {ours:?}",
                case.prog, case.what
            ));
        }
    }
    println!("net_helpers: {compared} cases compared with the kernel, {skipped} skipped");
    assert!(diffs.is_empty(), "{} case(s) differ:\n{}", diffs.len(), diffs.join("\n"));
    assert_eq!(compared + skipped, total, "every case ran or was skipped");
}

#[test]
fn gpl_only_helpers_refuse_proprietary_programs_like_the_kernel() {
    if let Err(e) = probe() {
        println!("SKIP: net_helpers gpl: bpf(2) unavailable: {e}");
        return;
    }
    let obj = object();
    let p = obj.collection.programs.iter().find(|p| p.name == "tc_mtu").expect("tc_mtu").clone();
    let data = plain(0);
    for (license, gpl) in
        [("Proprietary", false), ("MIT", false), ("Dual MIT/GPL", true), ("GPL", true)]
    {
        let kernel = KernelProgram::load(p.prog_type, &p.insns, license);
        let mut ours = p.clone();
        ours.license = license.to_string();
        let mut inst =
            Interpreter::default().instantiate(&Collection::single(ours)).expect("instantiate");
        let run = inst.run(0, &RunInput::data(data.clone()));
        if gpl {
            let k = kernel.unwrap_or_else(|e| panic!("{license}: {e}"));
            let k = k.test_run(&data, None, 1).expect("test run");
            let run = run.unwrap_or_else(|e| panic!("{license}: {e}"));
            assert_eq!((run.r0 as u32, run.data), (k.retval, k.data_out), "{license}");
            continue;
        }
        match kernel {
            Err(KernelError::Rejected { log }) => assert!(
                log.contains("cannot call GPL-restricted function from non-GPL compatible program"),
                "{license}: {log}"
            ),
            other => panic!("{license}: the kernel loaded it: {:?}", other.map(|_| ())),
        }
        match run {
            Err(EngineError::Fault(f)) => {
                assert!(
                    matches!(
                        f.kind(),
                        VmErrorKind::Helper { name: "bpf_check_mtu", error: HelperError::GplOnly }
                    ),
                    "{license}: {f}"
                );
            }
            other => panic!("{license}: bpflab ran it: {other:?}"),
        }
    }
}
