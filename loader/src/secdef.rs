//! libbpf's section-name conventions (`section_defs[]` in libbpf.c): which program type,
//! expected attach type and attach target a `SEC("...")` name means.

use bpflab_vm::ProgType;

/// The kernel's `enum bpf_attach_type` ids used by the table.
pub mod attach {
    /// BPF_CGROUP_INET_INGRESS.
    pub const CGROUP_INET_INGRESS: u32 = 0;
    /// BPF_CGROUP_INET_EGRESS.
    pub const CGROUP_INET_EGRESS: u32 = 1;
    /// BPF_CGROUP_INET_SOCK_CREATE.
    pub const CGROUP_INET_SOCK_CREATE: u32 = 2;
    /// BPF_CGROUP_SOCK_OPS.
    pub const CGROUP_SOCK_OPS: u32 = 3;
    /// BPF_SK_SKB_STREAM_PARSER.
    pub const SK_SKB_STREAM_PARSER: u32 = 4;
    /// BPF_SK_SKB_STREAM_VERDICT.
    pub const SK_SKB_STREAM_VERDICT: u32 = 5;
    /// BPF_CGROUP_DEVICE.
    pub const CGROUP_DEVICE: u32 = 6;
    /// BPF_SK_MSG_VERDICT.
    pub const SK_MSG_VERDICT: u32 = 7;
    /// BPF_CGROUP_INET4_BIND.
    pub const CGROUP_INET4_BIND: u32 = 8;
    /// BPF_CGROUP_INET6_BIND.
    pub const CGROUP_INET6_BIND: u32 = 9;
    /// BPF_CGROUP_INET4_CONNECT.
    pub const CGROUP_INET4_CONNECT: u32 = 10;
    /// BPF_CGROUP_INET6_CONNECT.
    pub const CGROUP_INET6_CONNECT: u32 = 11;
    /// BPF_CGROUP_INET4_POST_BIND.
    pub const CGROUP_INET4_POST_BIND: u32 = 12;
    /// BPF_CGROUP_INET6_POST_BIND.
    pub const CGROUP_INET6_POST_BIND: u32 = 13;
    /// BPF_CGROUP_UDP4_SENDMSG.
    pub const CGROUP_UDP4_SENDMSG: u32 = 14;
    /// BPF_CGROUP_UDP6_SENDMSG.
    pub const CGROUP_UDP6_SENDMSG: u32 = 15;
    /// BPF_LIRC_MODE2.
    pub const LIRC_MODE2: u32 = 16;
    /// BPF_FLOW_DISSECTOR.
    pub const FLOW_DISSECTOR: u32 = 17;
    /// BPF_CGROUP_SYSCTL.
    pub const CGROUP_SYSCTL: u32 = 18;
    /// BPF_CGROUP_UDP4_RECVMSG.
    pub const CGROUP_UDP4_RECVMSG: u32 = 19;
    /// BPF_CGROUP_UDP6_RECVMSG.
    pub const CGROUP_UDP6_RECVMSG: u32 = 20;
    /// BPF_CGROUP_GETSOCKOPT.
    pub const CGROUP_GETSOCKOPT: u32 = 21;
    /// BPF_CGROUP_SETSOCKOPT.
    pub const CGROUP_SETSOCKOPT: u32 = 22;
    /// BPF_TRACE_RAW_TP.
    pub const TRACE_RAW_TP: u32 = 23;
    /// BPF_TRACE_FENTRY.
    pub const TRACE_FENTRY: u32 = 24;
    /// BPF_TRACE_FEXIT.
    pub const TRACE_FEXIT: u32 = 25;
    /// BPF_MODIFY_RETURN.
    pub const MODIFY_RETURN: u32 = 26;
    /// BPF_LSM_MAC.
    pub const LSM_MAC: u32 = 27;
    /// BPF_TRACE_ITER.
    pub const TRACE_ITER: u32 = 28;
    /// BPF_CGROUP_INET4_GETPEERNAME.
    pub const CGROUP_INET4_GETPEERNAME: u32 = 29;
    /// BPF_CGROUP_INET6_GETPEERNAME.
    pub const CGROUP_INET6_GETPEERNAME: u32 = 30;
    /// BPF_CGROUP_INET4_GETSOCKNAME.
    pub const CGROUP_INET4_GETSOCKNAME: u32 = 31;
    /// BPF_CGROUP_INET6_GETSOCKNAME.
    pub const CGROUP_INET6_GETSOCKNAME: u32 = 32;
    /// BPF_XDP_DEVMAP.
    pub const XDP_DEVMAP: u32 = 33;
    /// BPF_CGROUP_INET_SOCK_RELEASE.
    pub const CGROUP_INET_SOCK_RELEASE: u32 = 34;
    /// BPF_XDP_CPUMAP.
    pub const XDP_CPUMAP: u32 = 35;
    /// BPF_SK_LOOKUP.
    pub const SK_LOOKUP: u32 = 36;
    /// BPF_XDP.
    pub const XDP: u32 = 37;
    /// BPF_SK_SKB_VERDICT.
    pub const SK_SKB_VERDICT: u32 = 38;
    /// BPF_SK_REUSEPORT_SELECT.
    pub const SK_REUSEPORT_SELECT: u32 = 39;
    /// BPF_SK_REUSEPORT_SELECT_OR_MIGRATE.
    pub const SK_REUSEPORT_SELECT_OR_MIGRATE: u32 = 40;
    /// BPF_PERF_EVENT.
    pub const PERF_EVENT: u32 = 41;
    /// BPF_TRACE_KPROBE_MULTI.
    pub const TRACE_KPROBE_MULTI: u32 = 42;
    /// BPF_LSM_CGROUP.
    pub const LSM_CGROUP: u32 = 43;
    /// BPF_STRUCT_OPS.
    pub const STRUCT_OPS: u32 = 44;
    /// BPF_NETFILTER.
    pub const NETFILTER: u32 = 45;
    /// BPF_TCX_INGRESS.
    pub const TCX_INGRESS: u32 = 46;
    /// BPF_TCX_EGRESS.
    pub const TCX_EGRESS: u32 = 47;
    /// BPF_TRACE_UPROBE_MULTI.
    pub const TRACE_UPROBE_MULTI: u32 = 48;
    /// BPF_CGROUP_UNIX_CONNECT.
    pub const CGROUP_UNIX_CONNECT: u32 = 49;
    /// BPF_CGROUP_UNIX_SENDMSG.
    pub const CGROUP_UNIX_SENDMSG: u32 = 50;
    /// BPF_CGROUP_UNIX_RECVMSG.
    pub const CGROUP_UNIX_RECVMSG: u32 = 51;
    /// BPF_CGROUP_UNIX_GETPEERNAME.
    pub const CGROUP_UNIX_GETPEERNAME: u32 = 52;
    /// BPF_CGROUP_UNIX_GETSOCKNAME.
    pub const CGROUP_UNIX_GETSOCKNAME: u32 = 53;
    /// BPF_NETKIT_PRIMARY.
    pub const NETKIT_PRIMARY: u32 = 54;
    /// BPF_NETKIT_PEER.
    pub const NETKIT_PEER: u32 = 55;
    /// BPF_TRACE_KPROBE_SESSION.
    pub const TRACE_KPROBE_SESSION: u32 = 56;
    /// BPF_TRACE_UPROBE_SESSION.
    pub const TRACE_UPROBE_SESSION: u32 = 57;
}

/// `BPF_F_SLEEPABLE`: the program may sleep (`SEC_SLEEPABLE` section names).
pub const BPF_F_SLEEPABLE: u32 = 1 << 4;
/// `BPF_F_XDP_HAS_FRAGS`: the XDP program handles multi-buffer packets (`SEC_XDP_FRAGS`).
pub const BPF_F_XDP_HAS_FRAGS: u32 = 1 << 5;

/// How a table entry's pattern matches a section name (libbpf's `sec_def_matches`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Match {
    /// `"xdp"`: the name must be exactly the pattern.
    Exact,
    /// `"kprobe+"`: exactly the pattern, or the pattern, `/` and an attach target.
    Plus,
}

/// `.text` as a program section (only with [`crate::LoadOptions::text_programs`]).
pub static TEXT_DEF: SecDef = SecDef {
    pattern: ".text",
    matching: Match::Exact,
    prog_type: ProgType::Unspec,
    expected_attach_type: None,
    sleepable: false,
    attach_btf: false,
    xdp_frags: false,
};

/// The entry of programs in sections libbpf has no definition for (`SEC("xdp_pass")`): libbpf
/// leaves their type `BPF_PROG_TYPE_UNSPEC` until the user sets one
/// (`bpf_program__set_type`, `--prog-type`), and refuses to load them until then.
pub static UNKNOWN_DEF: SecDef = SecDef {
    pattern: "",
    matching: Match::Exact,
    prog_type: ProgType::Unspec,
    expected_attach_type: None,
    sleepable: false,
    attach_btf: false,
    xdp_frags: false,
};

/// One row of libbpf's `section_defs[]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SecDef {
    /// The pattern without its trailing `+`.
    pub pattern: &'static str,
    /// How the pattern matches.
    pub matching: Match,
    /// The program type.
    pub prog_type: ProgType,
    /// The expected attach type, where libbpf sets one.
    pub expected_attach_type: Option<u32>,
    /// Sleepable (`SEC_SLEEPABLE`).
    pub sleepable: bool,
    /// The attach target is a BTF name (`SEC_ATTACH_BTF`).
    pub attach_btf: bool,
    /// Uses XDP fragments (`SEC_XDP_FRAGS`).
    pub xdp_frags: bool,
}

const fn def(
    pattern: &'static str,
    matching: Match,
    prog_type: ProgType,
    expected_attach_type: Option<u32>,
) -> SecDef {
    SecDef {
        pattern,
        matching,
        prog_type,
        expected_attach_type,
        sleepable: false,
        attach_btf: false,
        xdp_frags: false,
    }
}

const fn exact(p: &'static str, t: ProgType, a: Option<u32>) -> SecDef {
    def(p, Match::Exact, t, a)
}

const fn plus(p: &'static str, t: ProgType, a: Option<u32>) -> SecDef {
    def(p, Match::Plus, t, a)
}

const fn sleepable(mut d: SecDef) -> SecDef {
    d.sleepable = true;
    d
}

const fn btf(mut d: SecDef) -> SecDef {
    d.attach_btf = true;
    d
}

const fn frags(mut d: SecDef) -> SecDef {
    d.xdp_frags = true;
    d
}

use ProgType as P;
use attach as a;

/// Every entry of libbpf's `section_defs[]`, in libbpf's order (the first match wins).
pub const SECTION_DEFS: &[SecDef] = &[
    exact("socket", P::SocketFilter, None),
    exact("sk_reuseport/migrate", P::SkReuseport, Some(a::SK_REUSEPORT_SELECT_OR_MIGRATE)),
    exact("sk_reuseport", P::SkReuseport, Some(a::SK_REUSEPORT_SELECT)),
    plus("kprobe", P::Kprobe, None),
    plus("uprobe", P::Kprobe, None),
    sleepable(plus("uprobe.s", P::Kprobe, None)),
    plus("kretprobe", P::Kprobe, None),
    plus("uretprobe", P::Kprobe, None),
    sleepable(plus("uretprobe.s", P::Kprobe, None)),
    plus("kprobe.multi", P::Kprobe, Some(a::TRACE_KPROBE_MULTI)),
    plus("kretprobe.multi", P::Kprobe, Some(a::TRACE_KPROBE_MULTI)),
    plus("kprobe.session", P::Kprobe, Some(a::TRACE_KPROBE_SESSION)),
    plus("uprobe.multi", P::Kprobe, Some(a::TRACE_UPROBE_MULTI)),
    plus("uretprobe.multi", P::Kprobe, Some(a::TRACE_UPROBE_MULTI)),
    plus("uprobe.session", P::Kprobe, Some(a::TRACE_UPROBE_SESSION)),
    sleepable(plus("uprobe.multi.s", P::Kprobe, Some(a::TRACE_UPROBE_MULTI))),
    sleepable(plus("uretprobe.multi.s", P::Kprobe, Some(a::TRACE_UPROBE_MULTI))),
    sleepable(plus("uprobe.session.s", P::Kprobe, Some(a::TRACE_UPROBE_SESSION))),
    plus("ksyscall", P::Kprobe, None),
    plus("kretsyscall", P::Kprobe, None),
    plus("usdt", P::Kprobe, None),
    sleepable(plus("usdt.s", P::Kprobe, None)),
    exact("tc/ingress", P::SchedCls, Some(a::TCX_INGRESS)),
    exact("tc/egress", P::SchedCls, Some(a::TCX_EGRESS)),
    exact("tcx/ingress", P::SchedCls, Some(a::TCX_INGRESS)),
    exact("tcx/egress", P::SchedCls, Some(a::TCX_EGRESS)),
    exact("tc", P::SchedCls, None),
    exact("classifier", P::SchedCls, None),
    exact("action", P::SchedAct, None),
    exact("netkit/primary", P::SchedCls, Some(a::NETKIT_PRIMARY)),
    exact("netkit/peer", P::SchedCls, Some(a::NETKIT_PEER)),
    plus("tracepoint", P::Tracepoint, None),
    plus("tp", P::Tracepoint, None),
    plus("raw_tracepoint", P::RawTracepoint, None),
    plus("raw_tp", P::RawTracepoint, None),
    plus("raw_tracepoint.w", P::RawTracepointWritable, None),
    plus("raw_tp.w", P::RawTracepointWritable, None),
    btf(plus("tp_btf", P::Tracing, Some(a::TRACE_RAW_TP))),
    btf(plus("fentry", P::Tracing, Some(a::TRACE_FENTRY))),
    btf(plus("fmod_ret", P::Tracing, Some(a::MODIFY_RETURN))),
    btf(plus("fexit", P::Tracing, Some(a::TRACE_FEXIT))),
    sleepable(btf(plus("fentry.s", P::Tracing, Some(a::TRACE_FENTRY)))),
    sleepable(btf(plus("fmod_ret.s", P::Tracing, Some(a::MODIFY_RETURN)))),
    sleepable(btf(plus("fexit.s", P::Tracing, Some(a::TRACE_FEXIT)))),
    btf(plus("freplace", P::Ext, None)),
    btf(plus("lsm", P::Lsm, Some(a::LSM_MAC))),
    sleepable(btf(plus("lsm.s", P::Lsm, Some(a::LSM_MAC)))),
    btf(plus("lsm_cgroup", P::Lsm, Some(a::LSM_CGROUP))),
    btf(plus("iter", P::Tracing, Some(a::TRACE_ITER))),
    sleepable(btf(plus("iter.s", P::Tracing, Some(a::TRACE_ITER)))),
    sleepable(exact("syscall", P::Syscall, None)),
    frags(exact("xdp.frags/devmap", P::Xdp, Some(a::XDP_DEVMAP))),
    exact("xdp/devmap", P::Xdp, Some(a::XDP_DEVMAP)),
    frags(exact("xdp.frags/cpumap", P::Xdp, Some(a::XDP_CPUMAP))),
    exact("xdp/cpumap", P::Xdp, Some(a::XDP_CPUMAP)),
    frags(exact("xdp.frags", P::Xdp, Some(a::XDP))),
    exact("xdp", P::Xdp, Some(a::XDP)),
    exact("perf_event", P::PerfEvent, None),
    exact("lwt_in", P::LwtIn, None),
    exact("lwt_out", P::LwtOut, None),
    exact("lwt_xmit", P::LwtXmit, None),
    exact("lwt_seg6local", P::LwtSeg6local, None),
    exact("sockops", P::SockOps, Some(a::CGROUP_SOCK_OPS)),
    exact("sk_skb/stream_parser", P::SkSkb, Some(a::SK_SKB_STREAM_PARSER)),
    exact("sk_skb/stream_verdict", P::SkSkb, Some(a::SK_SKB_STREAM_VERDICT)),
    exact("sk_skb/verdict", P::SkSkb, Some(a::SK_SKB_VERDICT)),
    exact("sk_skb", P::SkSkb, None),
    exact("sk_msg", P::SkMsg, Some(a::SK_MSG_VERDICT)),
    exact("lirc_mode2", P::LircMode2, Some(a::LIRC_MODE2)),
    exact("flow_dissector", P::FlowDissector, Some(a::FLOW_DISSECTOR)),
    exact("cgroup_skb/ingress", P::CgroupSkb, Some(a::CGROUP_INET_INGRESS)),
    exact("cgroup_skb/egress", P::CgroupSkb, Some(a::CGROUP_INET_EGRESS)),
    exact("cgroup/skb", P::CgroupSkb, None),
    exact("cgroup/sock_create", P::CgroupSock, Some(a::CGROUP_INET_SOCK_CREATE)),
    exact("cgroup/sock_release", P::CgroupSock, Some(a::CGROUP_INET_SOCK_RELEASE)),
    exact("cgroup/sock", P::CgroupSock, Some(a::CGROUP_INET_SOCK_CREATE)),
    exact("cgroup/post_bind4", P::CgroupSock, Some(a::CGROUP_INET4_POST_BIND)),
    exact("cgroup/post_bind6", P::CgroupSock, Some(a::CGROUP_INET6_POST_BIND)),
    exact("cgroup/bind4", P::CgroupSockAddr, Some(a::CGROUP_INET4_BIND)),
    exact("cgroup/bind6", P::CgroupSockAddr, Some(a::CGROUP_INET6_BIND)),
    exact("cgroup/connect4", P::CgroupSockAddr, Some(a::CGROUP_INET4_CONNECT)),
    exact("cgroup/connect6", P::CgroupSockAddr, Some(a::CGROUP_INET6_CONNECT)),
    exact("cgroup/connect_unix", P::CgroupSockAddr, Some(a::CGROUP_UNIX_CONNECT)),
    exact("cgroup/sendmsg4", P::CgroupSockAddr, Some(a::CGROUP_UDP4_SENDMSG)),
    exact("cgroup/sendmsg6", P::CgroupSockAddr, Some(a::CGROUP_UDP6_SENDMSG)),
    exact("cgroup/sendmsg_unix", P::CgroupSockAddr, Some(a::CGROUP_UNIX_SENDMSG)),
    exact("cgroup/recvmsg4", P::CgroupSockAddr, Some(a::CGROUP_UDP4_RECVMSG)),
    exact("cgroup/recvmsg6", P::CgroupSockAddr, Some(a::CGROUP_UDP6_RECVMSG)),
    exact("cgroup/recvmsg_unix", P::CgroupSockAddr, Some(a::CGROUP_UNIX_RECVMSG)),
    exact("cgroup/getpeername4", P::CgroupSockAddr, Some(a::CGROUP_INET4_GETPEERNAME)),
    exact("cgroup/getpeername6", P::CgroupSockAddr, Some(a::CGROUP_INET6_GETPEERNAME)),
    exact("cgroup/getpeername_unix", P::CgroupSockAddr, Some(a::CGROUP_UNIX_GETPEERNAME)),
    exact("cgroup/getsockname4", P::CgroupSockAddr, Some(a::CGROUP_INET4_GETSOCKNAME)),
    exact("cgroup/getsockname6", P::CgroupSockAddr, Some(a::CGROUP_INET6_GETSOCKNAME)),
    exact("cgroup/getsockname_unix", P::CgroupSockAddr, Some(a::CGROUP_UNIX_GETSOCKNAME)),
    exact("cgroup/sysctl", P::CgroupSysctl, Some(a::CGROUP_SYSCTL)),
    exact("cgroup/getsockopt", P::CgroupSockopt, Some(a::CGROUP_GETSOCKOPT)),
    exact("cgroup/setsockopt", P::CgroupSockopt, Some(a::CGROUP_SETSOCKOPT)),
    exact("cgroup/dev", P::CgroupDevice, Some(a::CGROUP_DEVICE)),
    plus("struct_ops", P::StructOps, None),
    sleepable(plus("struct_ops.s", P::StructOps, None)),
    exact("sk_lookup", P::SkLookup, Some(a::SK_LOOKUP)),
    exact("netfilter", P::Netfilter, Some(a::NETFILTER)),
];

/// What a program section's name says about its programs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SectionKind {
    /// The matching table entry.
    pub def: &'static SecDef,
    /// The program type.
    pub prog_type: ProgType,
    /// The expected attach type, where the entry has one.
    pub expected_attach_type: Option<u32>,
    /// The part after `pattern/` (a kernel function, tracepoint, BTF name, binary path ...).
    pub attach_to: Option<String>,
}

impl SecDef {
    /// The `BPF_PROG_LOAD` flags this entry implies, as libbpf's `libbpf_prepare_prog_load`
    /// sets them: [`BPF_F_SLEEPABLE`] for sleepable entries, [`BPF_F_XDP_HAS_FRAGS`] for XDP
    /// programs of `.frags` entries.
    pub fn prog_flags(&self) -> u32 {
        let mut flags = 0;
        if self.sleepable {
            flags |= BPF_F_SLEEPABLE;
        }
        if self.xdp_frags && self.prog_type == ProgType::Xdp {
            flags |= BPF_F_XDP_HAS_FRAGS;
        }
        flags
    }

    /// The attach target `name` gives under this entry, if the entry matches it at all
    /// (`Some(None)` for a match without a target).
    fn matches<'n>(&self, name: &'n str) -> Option<Option<&'n str>> {
        match self.matching {
            Match::Exact => (name == self.pattern).then_some(None),
            Match::Plus => {
                let rest = name.strip_prefix(self.pattern)?;
                if rest.is_empty() {
                    Some(None)
                } else {
                    let target = rest.strip_prefix('/')?;
                    Some((!target.is_empty()).then_some(target))
                }
            }
        }
    }
}

/// The section name libbpf keeps for a program: `SEC("?xdp")` is `SEC("xdp")` with autoload
/// off (`bpf_object__init_prog` drops the `?`).
pub fn libbpf_section_name(elf_name: &str) -> &str {
    elf_name.strip_prefix('?').unwrap_or(elf_name)
}

/// Whether libbpf loads a program of this ELF section by default (`SEC("?...")` it does not,
/// until `bpf_program__set_autoload`).
pub fn autoload(elf_name: &str) -> bool {
    !elf_name.starts_with('?')
}

/// Looks `name` up in [`SECTION_DEFS`] the way libbpf's `find_sec_def` does (a leading `?`,
/// libbpf's autoload-off marker, is not part of the name).
pub fn classify(name: &str) -> Option<SectionKind> {
    let name = libbpf_section_name(name);
    SECTION_DEFS.iter().find_map(|d| {
        d.matches(name).map(|target| SectionKind {
            def: d,
            prog_type: d.prog_type,
            expected_attach_type: d.expected_attach_type,
            attach_to: target.map(str::to_owned),
        })
    })
}

/// The kernel's name of a program type as libbpf prints it (`libbpf_bpf_prog_type_str`):
/// `xdp`, `sched_cls`, `socket_filter`, ... ([`ProgType::name`]).
pub fn prog_type_name(prog_type: ProgType) -> &'static str {
    prog_type.name()
}

/// A program type the user asked for (`--prog-type`, [`crate::LoadOptions::prog_types`]): what
/// `bpf_program__set_type` (and, for section names, `bpf_program__set_expected_attach_type`)
/// would set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgTypeChoice {
    /// The program type.
    pub prog_type: ProgType,
    /// The expected attach type (from a section name that implies one).
    pub expected_attach_type: Option<u32>,
    /// The attach target (from a section name with one, `kprobe/tcp_connect`).
    pub attach_to: Option<String>,
    /// `BPF_PROG_LOAD` flags the section name implies (`BPF_F_SLEEPABLE`, ...).
    pub flags: u32,
}

/// Why a `--prog-type` value names no program type.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown program type {text:?}: give a kernel program type name ({}) or a libbpf section name (tc, classifier, xdp, socket, kprobe/FUNC, ...)",
    prog_type_names().join(", ")
)]
pub struct UnknownProgType {
    /// What was given.
    pub text: String,
}

/// Every program type name [`parse_prog_type`] accepts (all but `unspec`).
pub fn prog_type_names() -> Vec<&'static str> {
    ProgType::ALL.iter().filter(|t| **t != P::Unspec).map(|t| t.name()).collect()
}

/// Parses a program type as a user gives it: a kernel type name as libbpf prints it
/// (`sched_cls`, `xdp`, `socket_filter`, ...), or else a libbpf section name (`tc`,
/// `classifier`, `tc/ingress`, `kprobe/tcp_connect`, ...), which also gives the expected attach
/// type, the attach target and the load flags of that section.
pub fn parse_prog_type(text: &str) -> Result<ProgTypeChoice, UnknownProgType> {
    let text = text.trim();
    if let Some(t) = ProgType::from_name(text).filter(|t| *t != P::Unspec) {
        return Ok(ProgTypeChoice {
            prog_type: t,
            expected_attach_type: None,
            attach_to: None,
            flags: 0,
        });
    }
    match classify(text) {
        Some(kind) => Ok(ProgTypeChoice {
            prog_type: kind.prog_type,
            expected_attach_type: kind.expected_attach_type,
            attach_to: kind.attach_to,
            flags: kind.def.prog_flags(),
        }),
        None => Err(UnknownProgType { text: text.to_owned() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_match_wins_and_targets_split() {
        let k = classify("kprobe/tcp_connect").unwrap();
        assert_eq!(k.prog_type, ProgType::Kprobe);
        assert_eq!(k.attach_to.as_deref(), Some("tcp_connect"));
        let k = classify("kprobe.multi/tcp_*").unwrap();
        assert_eq!(k.expected_attach_type, Some(attach::TRACE_KPROBE_MULTI));
        assert_eq!(
            classify("tp/syscalls/sys_enter_openat").unwrap().attach_to.as_deref(),
            Some("syscalls/sys_enter_openat")
        );
        assert_eq!(classify("xdp.frags/devmap").unwrap().expected_attach_type, Some(33));
        assert_eq!(classify("tc").unwrap().expected_attach_type, None);
        assert_eq!(classify("cgroup_skb/ingress").unwrap().expected_attach_type, Some(0));
        assert!(classify("tc/foo").is_none());
        assert!(classify("kprobex").is_none());
        assert!(classify("xdp/foo").is_none());
        assert!(classify("kprobe").unwrap().attach_to.is_none());
        // `?` only turns autoload off.
        assert_eq!(
            classify("?tc/ingress").unwrap().expected_attach_type,
            Some(attach::TCX_INGRESS)
        );
        assert_eq!(classify("?kprobe/f").unwrap().attach_to.as_deref(), Some("f"));
        assert!(classify("?").is_none() && classify("??xdp").is_none());
        assert!(!autoload("?xdp") && autoload("xdp"));
    }

    #[test]
    fn prog_type_names_and_section_names_parse() {
        for &t in ProgType::ALL {
            assert_ne!(prog_type_name(t), "unknown", "{t:?} has no name");
        }
        assert_eq!(prog_type_name(ProgType::SchedCls), "sched_cls");
        assert_eq!(prog_type_name(ProgType::SocketFilter), "socket_filter");
        let t = parse_prog_type("sched_cls").unwrap();
        assert_eq!((t.prog_type, t.expected_attach_type), (ProgType::SchedCls, None));
        assert_eq!(parse_prog_type("xdp").unwrap().prog_type, ProgType::Xdp);
        // `xdp` is a type name first: no expected attach type (bpf_program__set_type only).
        assert_eq!(parse_prog_type("xdp").unwrap().expected_attach_type, None);
        let t = parse_prog_type("tc/ingress").unwrap();
        assert_eq!(t.prog_type, ProgType::SchedCls);
        assert_eq!(t.expected_attach_type, Some(attach::TCX_INGRESS));
        assert_eq!(parse_prog_type("classifier").unwrap().prog_type, ProgType::SchedCls);
        assert_eq!(parse_prog_type("socket").unwrap().prog_type, ProgType::SocketFilter);
        let t = parse_prog_type("kprobe/tcp_connect").unwrap();
        assert_eq!((t.prog_type, t.attach_to.as_deref()), (ProgType::Kprobe, Some("tcp_connect")));
        assert_eq!(parse_prog_type("xdp.frags").unwrap().flags, BPF_F_XDP_HAS_FRAGS);
        let e = parse_prog_type("xdp_pass").unwrap_err();
        assert_eq!(e.text, "xdp_pass");
        let msg = e.to_string();
        assert!(msg.contains("sched_cls, sched_act") && msg.contains("netfilter"), "{msg}");
        assert!(parse_prog_type("unspec").is_err());
    }

    #[test]
    fn load_flags_like_libbpf() {
        let flags = |name: &str| classify(name).unwrap().def.prog_flags();
        assert_eq!(flags("syscall"), BPF_F_SLEEPABLE);
        assert_eq!(flags("fentry.s/do_sys_openat2"), BPF_F_SLEEPABLE);
        assert_eq!(flags("lsm.s/file_open"), BPF_F_SLEEPABLE);
        assert_eq!(flags("uprobe.s/bin:func"), BPF_F_SLEEPABLE);
        assert_eq!(flags("fentry/do_sys_openat2"), 0);
        assert_eq!(flags("xdp.frags"), BPF_F_XDP_HAS_FRAGS);
        assert_eq!(flags("xdp.frags/devmap"), BPF_F_XDP_HAS_FRAGS);
        assert_eq!(flags("xdp.frags/cpumap"), BPF_F_XDP_HAS_FRAGS);
        assert_eq!(flags("xdp"), 0);
        assert_eq!(flags("tc"), 0);
        // Every sleepable entry and no other sets BPF_F_SLEEPABLE.
        for d in SECTION_DEFS {
            assert_eq!(d.prog_flags() & BPF_F_SLEEPABLE != 0, d.sleepable, "{}", d.pattern);
        }
    }
}
