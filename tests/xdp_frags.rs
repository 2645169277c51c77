//! XDP multi-buffer packets, as `BPF_PROG_TEST_RUN` builds them: the first 3520 bytes (plus the
//! metadata length) in the linear buffer, the rest in fragment pages of up to 4096 bytes (at
//! most 17), for every XDP program. The fixture programs/tests/xdp_frags.bpf.o reads, writes,
//! grows and shrinks such packets with helpers and dynptrs; its results are checked with real
//! values on the interpreter and the JIT, then compared byte for byte with the kernel on frames
//! of 60 bytes up to the largest the kernel accepts.

use std::path::Path;

use bpflab_jit::JitEngine;
use bpflab_kernel::features::features;
use bpflab_kernel::{KernelEngine, probe};
use bpflab_loader::{LoadOptions, Object};
use bpflab_vm::ctx::xdp::{MAX_XDP_FRAGS, XDP_FRAG_SIZE, XDP_MAX_LINEAR, XDP_MAX_PACKET};
use bpflab_vm::{Collection, Engine, Interpreter, Loaded, RunInput};

/// Frame sizes every program runs on: short, the linear limit and one past it, one and several
/// fragments, and the largest packet the kernel accepts (the limit is checked below).
const SIZES: [usize; 7] = [60, 3520, 3521, 4000, 9000, 20000, XDP_MAX_PACKET];

fn object() -> Option<Object> {
    if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        println!("SKIP: xdp_frags.bpf.o: kernel lacks /sys/kernel/btf/vmlinux (kfunc BTF ids)");
        return None;
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("programs/tests/xdp_frags.bpf.o");
    let bytes = std::fs::read(&path).expect("read xdp_frags.bpf.o");
    Some(bpflab_loader::load(&bytes, &LoadOptions::for_path(&path)).expect("xdp_frags loads"))
}

/// A frame of `len` bytes: an IPv4 Ethernet header, then a pattern that differs across pages.
fn frame(len: usize) -> Vec<u8> {
    let mut f: Vec<u8> = (0..len).map(|i| (i * 7 + (i >> 8) * 3 + (i >> 12)) as u8).collect();
    let eth = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0];
    let n = eth.len().min(len);
    f[..n].copy_from_slice(&eth[..n]);
    f
}

fn u64_at(f: &[u8], off: usize) -> i64 {
    i64::from_le_bytes(f[off..off + 8].try_into().unwrap())
}

/// An `xdp_md` for ctx_in: `data` (the metadata length) and `data_end`.
fn xdp_md(data: u32, data_end: u32) -> Vec<u8> {
    let mut md = vec![0u8; 24];
    md[0..4].copy_from_slice(&data.to_le_bytes());
    md[4..8].copy_from_slice(&data_end.to_le_bytes());
    md
}

fn prog(c: &Collection, name: &str) -> usize {
    c.programs.iter().position(|p| p.name == name).unwrap_or_else(|| panic!("program {name}"))
}

/// The s64 array `name` of the object's .bss.
fn results(l: &mut dyn Loaded, c: &Collection, name: &str) -> Vec<i64> {
    let bss = c.maps.iter().position(|m| m.name.ends_with(".bss")).expect("bss map");
    let value = l.map_lookup(bss, &0u32.to_le_bytes()).expect("lookup").expect("value");
    let btf_off = bss_offsets(c, name);
    value[btf_off.0..btf_off.0 + btf_off.1]
        .chunks(8)
        .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

/// Offset and size of each result array in .bss: declared in this order, 8-byte elements.
fn bss_offsets(_c: &Collection, name: &str) -> (usize, usize) {
    let arrays = [
        ("len_res", 4),
        ("load_res", 9),
        ("store_res", 4),
        ("tail_res", 6),
        ("shrink_res", 5),
        ("all_res", 6),
        ("dyn_res", 11),
    ];
    let mut off = 0;
    for (n, len) in arrays {
        if n == name {
            return (off, len * 8);
        }
        off += len * 8;
    }
    panic!("no array {name}")
}

fn engines() -> Vec<Box<dyn Engine>> {
    vec![Box::new(Interpreter::default()), Box::new(JitEngine::default())]
}

#[test]
fn bss_layout_matches_the_fixture() {
    let Some(obj) = object() else { return };
    let c = &obj.collection;
    let bss = c.maps.iter().find(|m| m.name.ends_with(".bss")).expect("bss");
    let (off, len) = bss_offsets(c, "dyn_res");
    assert_eq!(bss.value_size as usize, off + len, "the .bss holds exactly the result arrays");
}

#[test]
fn lengths_loads_and_stores_across_fragments_on_both_engines() {
    let Some(obj) = object() else { return };
    let c = &obj.collection;
    for engine in engines() {
        let name = engine.name();
        let mut l = engine.load(c).expect("load");
        let f = frame(9000);
        let out = l.run(prog(c, "xf_len"), &RunInput::data(f.clone())).expect("xf_len");
        assert_eq!(out.r0, 2, "{name}");
        assert_eq!(out.data, f, "{name}: the output is the linear part then the fragments");
        l.run(prog(c, "xf_len_frags"), &RunInput::data(f.clone())).expect("xf_len_frags");
        assert_eq!(results(l.as_mut(), c, "len_res"), [9000, 3520, 9000, 3520], "{name}");

        l.run(prog(c, "xf_load"), &RunInput::data(f.clone())).expect("xf_load");
        // An offset above 0xffff is -EFAULT before the length is checked.
        let want = [
            0,
            u64_at(&f, 3512),
            u64_at(&f, 3520),
            0,
            u64_at(&f, 8992),
            -22,
            -14,
            0,
            u64_at(&f, 5000),
        ];
        assert_eq!(results(l.as_mut(), c, "load_res"), want, "{name}");
        // Past 0xffff the helper refuses the offset (-EFAULT) although the bytes exist.
        let big = frame(XDP_MAX_PACKET);
        l.run(prog(c, "xf_load"), &RunInput::data(big.clone())).expect("xf_load max");
        let r = results(l.as_mut(), c, "load_res");
        assert_eq!((r[3], r[5], r[6]), (-14, -14, -14), "{name}: offsets past 0xffff");
        assert_eq!((r[7], r[8]), (0, u64_at(&big, 5000)), "{name}");

        let out = l.run(prog(c, "xf_store"), &RunInput::data(f.clone())).expect("xf_store");
        assert_eq!(out.r0, 3, "{name}: XDP_TX");
        assert_eq!(results(l.as_mut(), c, "store_res"), [0, 0, 0, -22], "{name}");
        let mut want = f.clone();
        let pat: Vec<u8> = (0xa0..=0xab).collect();
        want[3515..3527].copy_from_slice(&pat);
        want[8994..9000].copy_from_slice(&pat[6..12]);
        want[4100..4104].copy_from_slice(&pat[2..6]);
        assert_eq!(out.data, want, "{name}");
    }
}

#[test]
fn tails_grow_and_shrink_across_fragments_on_both_engines() {
    let Some(obj) = object() else { return };
    let c = &obj.collection;
    for engine in engines() {
        let name = engine.name();
        let mut l = engine.load(c).expect("load");
        let f = frame(9000);
        // 3520 linear + 4096 + 1384: +100 grows the last fragment, +5000 does not fit its page.
        let out = l.run(prog(c, "xf_grow"), &RunInput::data(f.clone())).expect("xf_grow");
        assert_eq!(results(l.as_mut(), c, "tail_res"), [0, 9100, 3520, -22, 0, 0], "{name}");
        let mut want = f.clone();
        want.resize(9100, 0);
        want[9099] = 0x5a;
        assert_eq!(out.data, want, "{name}");
        // A full last fragment has no room: 3520 + 4096.
        let full = frame(3520 + XDP_FRAG_SIZE);
        l.run(prog(c, "xf_grow"), &RunInput::data(full)).expect("xf_grow full");
        assert_eq!(results(l.as_mut(), c, "tail_res")[..2], [-22, 7616], "{name}");

        // -5000 releases the 1384-byte fragment and takes 3616 off the first.
        let out = l.run(prog(c, "xf_shrink"), &RunInput::data(f.clone())).expect("xf_shrink");
        assert_eq!(results(l.as_mut(), c, "shrink_res"), [0, 4000, 3520, 0, 3900], "{name}");
        assert_eq!(out.data, f[..3900], "{name}");
        // Too much to take with an Ethernet header left.
        l.run(prog(c, "xf_shrink"), &RunInput::data(frame(60))).expect("xf_shrink 60");
        assert_eq!(results(l.as_mut(), c, "shrink_res"), [-22, 60, 60, -22, 60], "{name}");

        // Everything but 20 bytes: every fragment goes, then the linear part shrinks; the
        // packet is linear again, so +10 grows data_end.
        let out = l.run(prog(c, "xf_shrink_all"), &RunInput::data(f.clone())).expect("all");
        assert_eq!(results(l.as_mut(), c, "all_res"), [0, 20, 20, 0, 30, 0], "{name}");
        let mut want = f[..20].to_vec();
        want.resize(23, 0);
        assert_eq!(out.data, want, "{name}");
    }
}

#[test]
fn dynptrs_over_fragments_on_both_engines() {
    let Some(obj) = object() else { return };
    let c = &obj.collection;
    for engine in engines() {
        let name = engine.name();
        let mut l = engine.load(c).expect("load");
        let f = frame(9000);
        let out = l.run(prog(c, "xf_dynptr"), &RunInput::data(f.clone())).expect("xf_dynptr");
        let want =
            [0, 9000, 0, u64_at(&f, 3512), u64_at(&f, 3620), 1, u64_at(&f, 3516), 0, 0, -7, -7];
        assert_eq!(results(l.as_mut(), c, "dyn_res"), want, "{name}");
        let mut want = f.clone();
        let pat: Vec<u8> = (0xd0..=0xd7).collect();
        want[3517..3525].copy_from_slice(&pat);
        want[8996..9000].copy_from_slice(&pat[..4]);
        assert_eq!(out.data, want, "{name}");
        // Past 0xffff of a maximal packet: within the dynptr, refused by the XDP copy (-EFAULT).
        l.run(prog(c, "xf_dynptr"), &RunInput::data(frame(XDP_MAX_PACKET))).expect("max");
        assert_eq!(results(l.as_mut(), c, "dyn_res")[9], -14, "{name}");
    }
}

#[test]
fn ctx_metadata_and_data_end_choose_the_linear_part() {
    let Some(obj) = object() else { return };
    let c = &obj.collection;
    for engine in engines() {
        let name = engine.name();
        let mut l = engine.load(c).expect("load");
        let f = frame(9000);
        // 8 bytes of metadata come out of the headroom: 3528 linear bytes, 3520 after data.
        let mut input = RunInput::data(f.clone());
        input.ctx = Some(xdp_md(8, 9000));
        let out = l.run(prog(c, "xf_len"), &input).expect("meta");
        assert_eq!(results(l.as_mut(), c, "len_res")[..2], [8992, 3520], "{name}");
        assert_eq!(out.data, f, "{name}");
        assert_eq!(out.ctx.as_deref(), Some(&xdp_md(8, 3528)[..]), "{name}: ctx_out");
        // data_end in ctx_in sets a shorter linear part.
        input.ctx = Some(xdp_md(0, 100));
        let out = l.run(prog(c, "xf_len"), &input).expect("short linear");
        assert_eq!(results(l.as_mut(), c, "len_res")[..2], [9000, 100], "{name}");
        assert_eq!(out.ctx.as_deref(), Some(&xdp_md(0, 100)[..]), "{name}: ctx_out");
        // 17 fragments at most.
        let err = l.run(prog(c, "xf_len"), &RunInput::data(frame(XDP_MAX_PACKET + 1)));
        let msg = err.expect_err("one byte too many").to_string();
        assert!(msg.contains(&format!("exceeds the maximum of {XDP_MAX_PACKET}")), "{msg}");
    }
    assert_eq!(XDP_MAX_PACKET, XDP_MAX_LINEAR + MAX_XDP_FRAGS * XDP_FRAG_SIZE);
    assert_eq!(XDP_MAX_PACKET, 73152);
}

/// One run's observable results.
type Observed = Result<(u32, Vec<u8>, Option<Vec<u8>>, Vec<u8>), String>;

fn observe(l: &mut dyn Loaded, c: &Collection, p: usize, input: &RunInput) -> Observed {
    let bss = c.maps.iter().position(|m| m.name.ends_with(".bss")).expect("bss map");
    let out = l.run(p, input).map_err(|e| e.to_string())?;
    let value = l.map_lookup(bss, &0u32.to_le_bytes()).map_err(|e| e.to_string())?;
    // Without ctx_in the kernel returns no context.
    let ctx = if input.ctx.is_some() { out.ctx } else { None };
    Ok((out.r0 as u32, out.data, ctx, value.unwrap_or_default()))
}

#[test]
fn every_program_and_frame_size_agrees_with_the_kernel() {
    let Some(obj) = object() else { return };
    if let Err(e) = probe() {
        println!("SKIP: xdp_frags: the kernel cannot load BPF programs here: {e}");
        return;
    }
    let features = features().expect("kernel features");
    let c = &obj.collection;
    let mut left_out = Vec::new();
    for (i, p) in c.programs.iter().enumerate() {
        let missing = features.missing_for_test_run(c, i);
        if !missing.is_empty() {
            let what: Vec<String> = missing.iter().map(ToString::to_string).collect();
            println!("SKIP: xdp_frags {}: kernel lacks {}", p.name, what.join(", "));
            left_out.push(i);
        }
    }
    let mut kernel = KernelEngine.load_collection_except(c, &left_out).expect("kernel load");
    let mut sims: Vec<(&str, Box<dyn Loaded>)> =
        engines().into_iter().map(|e| (e.name(), e.load(c).expect("load"))).collect();
    let mut inputs: Vec<(String, RunInput)> =
        SIZES.iter().map(|&n| (format!("{n} B"), RunInput::data(frame(n)))).collect();
    inputs.push((format!("{} B", XDP_MAX_PACKET + 1), RunInput::data(frame(XDP_MAX_PACKET + 1))));
    for (data, end) in [(8, 9000), (0, 100), (4, 20000)] {
        let mut input = RunInput::data(frame(9000.max(end as usize)));
        input.ctx = Some(xdp_md(data, end));
        inputs.push((format!("{} B, ctx data {data} data_end {end}", input.data.len()), input));
    }
    // Contexts the kernel refuses: an egress device, a queue without an ingress device.
    let refused_ctx = [(20, 1u32), (16, 1u32)];
    for (off, value) in refused_ctx {
        let mut input = RunInput::data(frame(9000));
        let mut md = xdp_md(0, 9000);
        md[off..off + 4].copy_from_slice(&value.to_le_bytes());
        input.ctx = Some(md);
        inputs.push((format!("9000 B, ctx with {value} at {off} (refused)"), input));
    }
    let mut divergences = Vec::new();
    let (mut cases, mut kernel_ok) = (0, 0);
    for (p, program) in c.programs.iter().enumerate() {
        if left_out.contains(&p) {
            continue;
        }
        for (label, input) in &inputs {
            cases += 1;
            let k = observe(&mut kernel, c, p, input);
            kernel_ok += usize::from(k.is_ok());
            for (engine, sim) in sims.iter_mut() {
                let s = observe(sim.as_mut(), c, p, input);
                let at = format!("{} on {label} ({engine})", program.name);
                match (&k, &s) {
                    (Ok(k), Ok(s)) if k == s => {}
                    (Err(_), Err(_)) => {}
                    (Ok(k), Ok(s)) => {
                        let what = if k.0 != s.0 {
                            format!("r0 kernel {:#x}, bpflab {:#x}", k.0, s.0)
                        } else if k.1 != s.1 {
                            let first = k.1.iter().zip(&s.1).position(|(a, b)| a != b);
                            format!(
                                "output packet differs: kernel {} B, bpflab {} B, first \
                                 difference at {first:?}",
                                k.1.len(),
                                s.1.len()
                            )
                        } else if k.2 != s.2 {
                            format!("ctx_out kernel {:02x?}, bpflab {:02x?}", k.2, s.2)
                        } else {
                            format!("results kernel {:?}, bpflab {:?}", k.3, s.3)
                        };
                        divergences.push(format!("{at}: {what}"));
                    }
                    (Ok(_), Err(e)) => divergences.push(format!("{at}: bpflab failed: {e}")),
                    (Err(e), Ok(_)) => divergences.push(format!("{at}: kernel failed: {e}")),
                }
            }
        }
    }
    println!("xdp_frags: {cases} cases, {kernel_ok} run by the kernel");
    assert!(
        divergences.is_empty(),
        "{} divergences:\n{}",
        divergences.len(),
        divergences.join("\n")
    );
    // Every case but the one-byte-too-long frame and the refused contexts runs in the kernel.
    let programs = c.programs.len() - left_out.len();
    let refused = programs * (1 + refused_ctx.len());
    assert_eq!(
        kernel_ok,
        cases - refused,
        "the kernel refuses {} B and the bad contexts",
        XDP_MAX_PACKET + 1
    );
}
