//! Why bpflab does not implement the networking helpers it lacks: one reason per helper,
//! shown in the support matrix (`bpflab helpers`, docs/HELPERS.md, the JSON `reason` field).
//! Every kernel helper whose prototype lives in net/ and that bpflab does not implement has a
//! reason here; a helper that gets implemented must leave the table (both are tested).

/// `(helper, reason)`, in helper id order.
pub(crate) const NOT_IMPLEMENTED: &[(&str, &str)] = &[
    (
        "bpf_skb_under_cgroup",
        "needs a BPF_MAP_TYPE_CGROUP_ARRAY of cgroup fds and the cgroup v2 hierarchy of the \
         skb's socket",
    ),
    ("bpf_bind", "binds a real socket of a cgroup/connect program; sockets are simulated"),
    ("bpf_lwt_push_encap", "needs a lightweight-tunnel route (lwt_in/lwt_xmit attach)"),
    ("bpf_lwt_seg6_store_bytes", "needs an SRv6 seg6local route and its segment routing header"),
    ("bpf_lwt_seg6_adjust_srh", "needs an SRv6 seg6local route and its segment routing header"),
    ("bpf_lwt_seg6_action", "needs SRv6 seg6local actions and the routing tables they use"),
    (
        "bpf_skb_cgroup_id",
        "the test run's socket belongs to the calling process's cgroup v2: its id depends on \
         the host",
    ),
    (
        "bpf_sk_select_reuseport",
        "needs SO_REUSEPORT socket groups (sk_reuseport programs and reuseport arrays)",
    ),
    (
        "bpf_skb_ancestor_cgroup_id",
        "the test run's socket belongs to the calling process's cgroup v2: its ancestry \
         depends on the host",
    ),
    (
        "bpf_skb_output",
        "a tracing-program (BTF skb pointer) variant of bpf_perf_event_output; tracing programs \
         get no skb",
    ),
    (
        "bpf_tcp_send_ack",
        "sends a real ACK from a TCP congestion-control struct_ops socket; sockets are simulated",
    ),
    (
        "bpf_xdp_output",
        "the tracing-program (BTF xdp_buff pointer) variant of bpf_perf_event_output; XDP \
         programs themselves call bpf_perf_event_output",
    ),
    ("bpf_sk_cgroup_id", "a socket's cgroup v2 id depends on the host's cgroup hierarchy"),
    (
        "bpf_sk_ancestor_cgroup_id",
        "a socket's cgroup v2 ancestry depends on the host's cgroup hierarchy",
    ),
    ("bpf_skc_to_tcp6_sock", "needs BTF-typed kernel socket objects (struct tcp6_sock)"),
    ("bpf_skc_to_tcp_sock", "needs BTF-typed kernel socket objects (struct tcp_sock)"),
    (
        "bpf_skc_to_tcp_timewait_sock",
        "needs BTF-typed kernel socket objects (struct tcp_timewait_sock)",
    ),
    (
        "bpf_skc_to_tcp_request_sock",
        "needs BTF-typed kernel socket objects (struct tcp_request_sock)",
    ),
    ("bpf_skc_to_udp6_sock", "needs BTF-typed kernel socket objects (struct udp6_sock)"),
    (
        "bpf_load_hdr_opt",
        "needs the TCP header-option callbacks of sock_ops programs (BPF_SOCK_OPS_*_HDR_OPT_CB)",
    ),
    (
        "bpf_store_hdr_opt",
        "needs the TCP header-option callbacks of sock_ops programs (BPF_SOCK_OPS_*_HDR_OPT_CB)",
    ),
    (
        "bpf_reserve_hdr_opt",
        "needs the TCP header-option callbacks of sock_ops programs (BPF_SOCK_OPS_*_HDR_OPT_CB)",
    ),
    ("bpf_sock_from_file", "needs BTF-typed struct file objects of tracing programs"),
    ("bpf_skc_to_unix_sock", "needs BTF-typed kernel socket objects (struct unix_sock)"),
    ("bpf_skc_to_mptcp_sock", "needs BTF-typed kernel socket objects (struct mptcp_sock)"),
];

/// Why bpflab does not implement helper `name`, if the table says.
pub(crate) fn reason(name: &str) -> Option<&'static str> {
    NOT_IMPLEMENTED.iter().find(|(n, _)| *n == name).map(|(_, r)| *r)
}
