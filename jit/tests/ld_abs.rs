//! Legacy packet loads (LD_ABS / LD_IND) with the kernel's negative offsets: `SKF_NET_OFF`
//! (-0x100000) and `SKF_LL_OFF` (-0x200000) address the skb's network and MAC headers. The
//! JIT must read them as the interpreter (and the kernel) do, not end the run with r0 = 0.

use bpflab_jit::{JitConfig, JitEngine, Mode};
use bpflab_vm::asm::assemble;
use bpflab_vm::{Collection, Config, Interpreter, ProgType, Program, RunInput, standard_helpers};

/// An Ethernet + IPv4 + TCP SYN frame to port 80.
fn frame() -> Vec<u8> {
    let mut f = vec![0u8; 14 + 20 + 20];
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f[14] = 0x45;
    f[14 + 9] = 6; // TCP
    f[34 + 2..34 + 4].copy_from_slice(&80u16.to_be_bytes());
    f[34 + 13] = 0x02; // SYN
    f
}

fn r0s(src: &str) -> Vec<u64> {
    let p = Program::raw("p", assemble(src).expect("assembles")).with_type(ProgType::SocketFilter);
    let c = Collection { programs: vec![p], ..Collection::default() };
    let input = RunInput::data(frame());
    let interp = Interpreter::new(Config::default(), standard_helpers());
    let mut out = vec![interp.instantiate(&c).expect("interp").run(0, &input).expect("runs").r0];
    for mode in [Mode::Checked, Mode::Trusted] {
        let jit = JitEngine::new(JitConfig::with_mode(mode), standard_helpers()).expect("jit");
        out.push(jit.instantiate(&c).expect("jit").run(0, &input).expect("runs").r0);
    }
    out
}

#[test]
fn negative_skf_offsets_read_the_headers() {
    // The IPv4 protocol byte through SKF_NET_OFF, the EtherType through SKF_LL_OFF.
    assert_eq!(r0s("r0 = *(u8 *)skb[-1048567]\nexit"), [6, 6, 6]);
    assert_eq!(r0s("r0 = *(u16 *)skb[-2097140]\nexit"), [0x0800; 3]);
    // LD_IND: the TCP destination port at SKF_NET_OFF + ihl + 2, ihl in a register.
    assert_eq!(r0s("r7 = 20\nr0 = *(u16 *)skb[r7 + -1048574]\nexit"), [80; 3]);
    // Past the packet: the run ends with r0 = 0 in every engine.
    assert_eq!(r0s("r0 = *(u8 *)skb[-1044576]\nr0 = 7\nexit"), [0; 3]);
    assert_eq!(r0s("r0 = *(u32 *)skb[-1048536]\nr0 = 7\nexit"), [0; 3]);
}
