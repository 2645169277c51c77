//! Simulated sockets: the world's table of TCP and UDP sockets (family, local and remote
//! addresses and ports, state, cookie, network namespace, TCP counters, socket options), a typed
//! API to create listeners, connected pairs and UDP sockets, and the kernel object programs reach
//! for each socket: a read-only region laid out as `struct bpf_sock`, what `bpf_sk_lookup_tcp`,
//! a sockmap lookup or a context's `sk` field points to.
//!
//! A socket's [`SockId`] is the index of that region; user space passes it to sockmaps as a
//! process passes a socket's file descriptor. Right after it lives a second region no program
//! is handed a pointer to, with what maps need without the table: a signature, the cookie, the netns cookie and the number of
//! references programs hold (`bpf_sk_lookup_*` and sockmap lookups acquire one, `bpf_sk_release`
//! drops it; the kernel's verifier rejects programs that leak one, bpflab counts them, see
//! [`World::sock_refs_held`]).
//!
//! Simplifications: one network namespace holds every socket unless a test moves one (its netns
//! cookie); cookies are assigned at creation, in order from 1 (the kernel assigns them on first
//! use); IPv4 lookups find IPv4 sockets only (no dual-stack IPv6 listeners). Loads from a socket
//! region are plain reads of its bytes: [`bpf_sock_is_valid_access`] states the verifier's rule,
//! which the interpreter cannot apply to a non-context region.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::ctx::CtxError;
use crate::ctx::sock_ops::{BPF_SOCK_OPS_SIZE, BPF_SOCK_OPS_WRITE_HDR_OPT_CB};
use crate::engine::{EngineError, RunInput, RunOutcome};
use crate::interp::Instance;
use crate::maps::SockMap;
use crate::memory::{MemError, Memory, Perm, RegionId, RegionKind};
use crate::world::World;

/// `AF_INET`.
pub const AF_INET: u16 = 2;
/// `AF_INET6`.
pub const AF_INET6: u16 = 10;
/// `SOCK_STREAM`.
pub const SOCK_STREAM: u16 = 1;
/// `SOCK_DGRAM`.
pub const SOCK_DGRAM: u16 = 2;
/// `IPPROTO_TCP`.
pub const IPPROTO_TCP: u8 = 6;
/// `IPPROTO_UDP`.
pub const IPPROTO_UDP: u8 = 17;
/// `sizeof(struct bpf_sock)`.
pub const BPF_SOCK_SIZE: usize = 80;
/// The cookie of the initial network namespace (the first one the kernel creates).
pub const INIT_NET_COOKIE: u64 = 1;
/// `SK_DROP`.
pub const SK_DROP: u64 = 0;
/// `SK_PASS`.
pub const SK_PASS: u64 = 1;
/// `BPF_F_INGRESS`: redirect to the target's receive queue instead of sending from it.
pub const BPF_F_INGRESS: u64 = 1;

/// The signature that marks a socket's hidden region.
const SHADOW_MAGIC: &[u8; 8] = b"bpflsock";
/// Size of the hidden region: signature, cookie, netns cookie, program references.
const SHADOW_SIZE: usize = 32;
/// Default send buffer of a TCP socket (`tcp_wmem[1]`).
const TCP_SNDBUF: i32 = 16384;
/// Default receive buffer of a TCP socket (`tcp_rmem[1]`).
const TCP_RCVBUF: i32 = 131_072;
/// Default buffers of a UDP socket and the `wmem_max`/`rmem_max` limits (`212992`).
const SK_MEM_MAX: i32 = 212_992;
/// `SOCK_MIN_SNDBUF`.
const SOCK_MIN_SNDBUF: i32 = 4608;
/// `SOCK_MIN_RCVBUF`.
const SOCK_MIN_RCVBUF: i32 = 2304;

/// A socket's handle: the index of its `struct bpf_sock` region, what user space passes to a
/// sockmap as the socket's file descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SockId(u32);

impl SockId {
    /// The number user space uses for the socket (its "file descriptor").
    pub const fn fd(self) -> u32 {
        self.0
    }

    /// The socket with this file descriptor number (it may not exist).
    pub const fn from_fd(fd: u32) -> SockId {
        SockId(fd)
    }

    /// The address programs hold for the socket (its `struct bpf_sock`).
    pub const fn addr(self) -> u64 {
        RegionId::from_index(self.0).base()
    }

    fn region(self) -> RegionId {
        RegionId::from_index(self.0)
    }

    /// The socket's two regions: its `struct bpf_sock` and its hidden region.
    pub fn regions(self) -> [RegionId; 2] {
        [RegionId::from_index(self.0), RegionId::from_index(self.0.saturating_add(1))]
    }

    fn shadow(self) -> Option<RegionId> {
        self.0.checked_add(1).map(RegionId::from_index)
    }
}

/// The transport protocol of a socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Proto {
    /// TCP (`SOCK_STREAM`, `IPPROTO_TCP`).
    Tcp,
    /// UDP (`SOCK_DGRAM`, `IPPROTO_UDP`).
    Udp,
}

/// The kernel's socket states (`TCP_ESTABLISHED` ... `TCP_NEW_SYN_RECV`, the `BPF_TCP_*`
/// numbering); UDP sockets are `Established` when connected and `Close` otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum TcpState {
    /// `TCP_ESTABLISHED`.
    Established = 1,
    /// `TCP_SYN_SENT`.
    SynSent = 2,
    /// `TCP_SYN_RECV`.
    SynRecv = 3,
    /// `TCP_FIN_WAIT1`.
    FinWait1 = 4,
    /// `TCP_FIN_WAIT2`.
    FinWait2 = 5,
    /// `TCP_TIME_WAIT`.
    TimeWait = 6,
    /// `TCP_CLOSE`.
    Close = 7,
    /// `TCP_CLOSE_WAIT`.
    CloseWait = 8,
    /// `TCP_LAST_ACK`.
    LastAck = 9,
    /// `TCP_LISTEN`.
    Listen = 10,
    /// `TCP_CLOSING`.
    Closing = 11,
    /// `TCP_NEW_SYN_RECV`.
    NewSynRecv = 12,
}

/// The `struct tcp_sock` counters sockops programs read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs, reason = "each field is the kernel field of the same name")]
pub struct TcpInfo {
    pub snd_cwnd: u32,
    pub srtt_us: u32,
    pub rtt_min: u32,
    pub snd_ssthresh: u32,
    pub rcv_nxt: u32,
    pub snd_nxt: u32,
    pub snd_una: u32,
    pub mss_cache: u32,
    pub ecn_flags: u32,
    pub rate_delivered: u32,
    pub rate_interval_us: u32,
    pub packets_out: u32,
    pub retrans_out: u32,
    pub total_retrans: u32,
    pub segs_in: u32,
    pub data_segs_in: u32,
    pub segs_out: u32,
    pub data_segs_out: u32,
    pub lost_out: u32,
    pub sacked_out: u32,
    pub bytes_received: u64,
    pub bytes_acked: u64,
}

impl TcpInfo {
    /// The counters of a connection right after the handshake: initial window 10 segments
    /// (`TCP_INIT_CWND`), no slow-start threshold yet, a 1448-byte MSS, `snd_nxt`/`snd_una`
    /// one past the initial sequence number `iss`, `rcv_nxt` one past the peer's `irs`.
    pub fn established(iss: u32, irs: u32) -> TcpInfo {
        TcpInfo {
            snd_cwnd: 10,
            snd_ssthresh: 0x7fff_ffff,
            mss_cache: 1448,
            snd_nxt: iss.wrapping_add(1),
            snd_una: iss.wrapping_add(1),
            rcv_nxt: irs.wrapping_add(1),
            ..TcpInfo::default()
        }
    }
}

/// One simulated socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sock {
    /// Its handle.
    pub id: SockId,
    /// TCP or UDP.
    pub proto: Proto,
    /// Local address and port (`0.0.0.0:0` or `[::]:0` when unbound).
    pub local: SocketAddr,
    /// Remote address and port (unspecified when not connected).
    pub remote: SocketAddr,
    /// The socket state.
    pub state: TcpState,
    /// The socket cookie (`bpf_get_socket_cookie`, sockmap lookups from user space).
    pub cookie: u64,
    /// The cookie of its network namespace (`bpf_get_netns_cookie`).
    pub netns_cookie: u64,
    /// `sk_bound_dev_if`.
    pub bound_dev_if: u32,
    /// `sk_mark` (`SO_MARK`).
    pub mark: u32,
    /// `sk_priority` (`SO_PRIORITY`).
    pub priority: u32,
    /// TCP counters (zero for UDP).
    pub tcp: TcpInfo,
    /// `tcp_sk(sk)->bpf_sock_ops_cb_flags`.
    pub cb_flags: u32,
    /// `sk_txhash`.
    pub txhash: u32,
    /// Send buffer (`SO_SNDBUF`, as the kernel stores it: doubled).
    pub sndbuf: i32,
    /// Receive buffer (`SO_RCVBUF`, doubled).
    pub rcvbuf: i32,
    /// Congestion control algorithm (`TCP_CONGESTION`).
    pub congestion: String,
    /// Other integer options set with `bpf_setsockopt`, by `(level, optname)`.
    pub options: BTreeMap<(i32, i32), i32>,
}

impl Sock {
    /// `AF_INET` or `AF_INET6`, from the local address.
    pub fn family(&self) -> u16 {
        if self.local.is_ipv4() { AF_INET } else { AF_INET6 }
    }

    /// True for TCP sockets.
    pub fn is_tcp(&self) -> bool {
        self.proto == Proto::Tcp
    }

    /// The socket's `struct bpf_sock` as programs read it.
    pub fn bpf_sock(&self) -> [u8; BPF_SOCK_SIZE] {
        let mut b = [0u8; BPF_SOCK_SIZE];
        let (sock_type, protocol) = match self.proto {
            Proto::Tcp => (SOCK_STREAM, IPPROTO_TCP),
            Proto::Udp => (SOCK_DGRAM, IPPROTO_UDP),
        };
        put32(&mut b, 0, self.bound_dev_if);
        put32(&mut b, 4, u32::from(self.family()));
        put32(&mut b, 8, u32::from(sock_type));
        put32(&mut b, 12, u32::from(protocol));
        put32(&mut b, 16, self.mark);
        put32(&mut b, 20, self.priority);
        let (src4, src6) = addr_fields(self.local.ip());
        let (dst4, dst6) = addr_fields(self.remote.ip());
        b[24..28].copy_from_slice(&src4);
        b[28..44].copy_from_slice(&src6);
        put32(&mut b, 44, u32::from(self.local.port()));
        b[48..50].copy_from_slice(&self.remote.port().to_be_bytes());
        b[52..56].copy_from_slice(&dst4);
        b[56..72].copy_from_slice(&dst6);
        put32(&mut b, 72, self.state as u32);
        put32(&mut b, 76, u32::MAX); // rx_queue_mapping: -1, no queue recorded
        b
    }

    fn new(
        id: SockId,
        proto: Proto,
        local: SocketAddr,
        remote: SocketAddr,
        state: TcpState,
    ) -> Sock {
        let (sndbuf, rcvbuf) = match proto {
            Proto::Tcp => (TCP_SNDBUF, TCP_RCVBUF),
            Proto::Udp => (SK_MEM_MAX, SK_MEM_MAX),
        };
        Sock {
            id,
            proto,
            local,
            remote,
            state,
            cookie: 0,
            netns_cookie: INIT_NET_COOKIE,
            bound_dev_if: 0,
            mark: 0,
            priority: 0,
            tcp: TcpInfo::default(),
            cb_flags: 0,
            txhash: 0,
            sndbuf,
            rcvbuf,
            congestion: String::from("cubic"),
            options: BTreeMap::new(),
        }
    }

    /// `bpf_setsockopt` on this socket (`sol_socket_sockopt`, `sol_tcp_sockopt`,
    /// `sol_ip_sockopt`, `sol_ipv6_sockopt` of net/core/filter.c); `Err` is a negative errno.
    pub fn setsockopt(&mut self, level: i32, optname: i32, optval: &[u8]) -> Result<(), i64> {
        let int = || -> Result<i32, i64> {
            let b: [u8; 4] = optval.try_into().map_err(|_| EINVAL)?;
            Ok(i32::from_le_bytes(b))
        };
        match (level, optname) {
            (SOL_SOCKET, SO_BINDTODEVICE) => {
                // No devices are simulated: only unbinding (an empty name) succeeds.
                let name = optval.split(|&c| c == 0).next().unwrap_or(&[]);
                if !name.is_empty() {
                    return Err(ENODEV);
                }
                self.bound_dev_if = 0;
                Ok(())
            }
            (SOL_SOCKET, opt) if SOL_SOCKET_INTS.contains(&opt) => {
                let val = int()?;
                match opt {
                    SO_SNDBUF => {
                        let v = (val as u32).min(SK_MEM_MAX as u32) as i32;
                        self.sndbuf = (v * 2).max(SOCK_MIN_SNDBUF);
                    }
                    SO_RCVBUF => {
                        let v = (val as u32).min(SK_MEM_MAX as u32) as i32;
                        self.rcvbuf = (v * 2).max(SOCK_MIN_RCVBUF);
                    }
                    SO_MARK => self.mark = val as u32,
                    SO_PRIORITY => self.priority = val as u32,
                    SO_BINDTOIFINDEX if val != 0 => return Err(ENODEV),
                    SO_TXREHASH if !(-1..=1).contains(&val) => return Err(EINVAL),
                    SK_BPF_CB_FLAGS if val & !SK_BPF_CB_MASK != 0 => return Err(EINVAL),
                    SO_RCVLOWAT => {
                        self.options.insert((level, opt), if val < 0 { i32::MAX } else { val });
                    }
                    SO_REUSEADDR | SO_KEEPALIVE | SO_REUSEPORT => {
                        self.options.insert((level, opt), i32::from(val != 0));
                    }
                    _ => {
                        self.options.insert((level, opt), val);
                    }
                }
                Ok(())
            }
            (SOL_TCP, _) if !self.is_tcp() => Err(EINVAL),
            (SOL_TCP, TCP_CONGESTION) => {
                if optval.len() < 2 {
                    return Err(EINVAL);
                }
                let name = optval.split(|&c| c == 0).next().unwrap_or(&[]);
                match name {
                    b"cdg" => Err(ENOTSUPP),
                    b"cubic" | b"reno" => {
                        self.congestion = String::from_utf8_lossy(name).into_owned();
                        Ok(())
                    }
                    _ => Err(ENOENT),
                }
            }
            (SOL_TCP, opt) if SOL_TCP_INTS.contains(&opt) => {
                let val = int()?;
                let ok = match opt {
                    TCP_THIN_LINEAR_TIMEOUTS => (0..=1).contains(&val),
                    TCP_MAXSEG => val == 0 || (88..=32767).contains(&val),
                    TCP_KEEPIDLE | TCP_KEEPINTVL => (1..=32767).contains(&val),
                    TCP_KEEPCNT | TCP_SYNCNT => (1..=127).contains(&val),
                    TCP_USER_TIMEOUT => val >= 0,
                    _ => true,
                };
                if !ok {
                    return Err(EINVAL);
                }
                let stored = if opt == TCP_NODELAY { i32::from(val != 0) } else { val };
                self.options.insert((level, opt), stored);
                Ok(())
            }
            (SOL_TCP, opt) => {
                let val = int()?;
                match opt {
                    TCP_BPF_IW => {
                        if val <= 0 || self.tcp.data_segs_out > 0 {
                            return Err(EINVAL);
                        }
                        self.tcp.snd_cwnd = val as u32;
                    }
                    TCP_BPF_SNDCWND_CLAMP => {
                        if val <= 0 {
                            return Err(EINVAL);
                        }
                        self.options.insert((level, opt), val);
                        self.tcp.snd_ssthresh = val as u32;
                    }
                    TCP_BPF_DELACK_MAX | TCP_BPF_RTO_MIN => {
                        self.options.insert((level, opt), val);
                    }
                    TCP_BPF_SOCK_OPS_CB_FLAGS => {
                        if val as u32 & !BPF_SOCK_OPS_ALL_CB_FLAGS != 0 {
                            return Err(EINVAL);
                        }
                        self.cb_flags = val as u32;
                    }
                    _ => return Err(EINVAL),
                }
                Ok(())
            }
            (SOL_IP, IP_TOS) if self.family() == AF_INET => {
                let val = int()?;
                self.options.insert((level, IP_TOS), val & 0xff);
                Ok(())
            }
            (SOL_IPV6, opt @ (IPV6_TCLASS | IPV6_AUTOFLOWLABEL)) if self.family() == AF_INET6 => {
                let val = int()?;
                if opt == IPV6_TCLASS && !(-1..=0xff).contains(&val) {
                    return Err(EINVAL);
                }
                self.options.insert((level, opt), val);
                Ok(())
            }
            _ => Err(EINVAL),
        }
    }

    /// `bpf_getsockopt` on this socket: the option's bytes for a buffer of `optlen` bytes, or a
    /// negative errno.
    pub fn getsockopt(&self, level: i32, optname: i32, optlen: usize) -> Result<Vec<u8>, i64> {
        let int = |v: i32| -> Result<Vec<u8>, i64> {
            if optlen != 4 { Err(EINVAL) } else { Ok(v.to_le_bytes().to_vec()) }
        };
        let stored = |default: i32| self.options.get(&(level, optname)).copied().unwrap_or(default);
        match (level, optname) {
            (SOL_SOCKET, SO_BINDTODEVICE) => Err(EINVAL),
            (SOL_SOCKET, SO_SNDBUF) => int(self.sndbuf),
            (SOL_SOCKET, SO_RCVBUF) => int(self.rcvbuf),
            (SOL_SOCKET, SO_MARK) => int(self.mark as i32),
            (SOL_SOCKET, SO_PRIORITY) => int(self.priority as i32),
            (SOL_SOCKET, SO_RCVLOWAT) => int(stored(1)),
            (SOL_SOCKET, SO_TXREHASH) => int(stored(-1)),
            (SOL_SOCKET, opt) if SOL_SOCKET_INTS.contains(&opt) => int(stored(0)),
            (SOL_TCP, _) if !self.is_tcp() => Err(EINVAL),
            (SOL_TCP, TCP_CONGESTION) => {
                if optlen < 2 {
                    return Err(EINVAL);
                }
                // The kernel keeps the last byte for a NUL terminator.
                let mut out = vec![0u8; optlen];
                let name = self.congestion.as_bytes();
                let n = name.len().min(optlen - 1);
                out[..n].copy_from_slice(&name[..n]);
                Ok(out)
            }
            (SOL_TCP, TCP_MAXSEG) => int(stored(self.tcp.mss_cache as i32)),
            (SOL_TCP, opt) if SOL_TCP_INTS.contains(&opt) => int(stored(0)),
            (SOL_TCP, TCP_BPF_SOCK_OPS_CB_FLAGS) => int(self.cb_flags as i32),
            (SOL_TCP, TCP_BPF_RTO_MIN) => int(stored(200_000)),
            (SOL_TCP, TCP_BPF_DELACK_MAX) => int(stored(200_000)),
            (SOL_IP, IP_TOS) if self.family() == AF_INET => int(stored(0)),
            (SOL_IPV6, IPV6_TCLASS | IPV6_AUTOFLOWLABEL) if self.family() == AF_INET6 => {
                int(stored(0))
            }
            _ => Err(EINVAL),
        }
    }
}

/// `SOL_SOCKET`.
pub const SOL_SOCKET: i32 = 1;
/// `SOL_IP`.
pub const SOL_IP: i32 = 0;
/// `SOL_TCP`.
pub const SOL_TCP: i32 = 6;
/// `SOL_IPV6`.
pub const SOL_IPV6: i32 = 41;
/// `SO_REUSEADDR`.
pub const SO_REUSEADDR: i32 = 2;
/// `SO_SNDBUF`.
pub const SO_SNDBUF: i32 = 7;
/// `SO_RCVBUF`.
pub const SO_RCVBUF: i32 = 8;
/// `SO_KEEPALIVE`.
pub const SO_KEEPALIVE: i32 = 9;
/// `SO_PRIORITY`.
pub const SO_PRIORITY: i32 = 12;
/// `SO_REUSEPORT`.
pub const SO_REUSEPORT: i32 = 15;
/// `SO_RCVLOWAT`.
pub const SO_RCVLOWAT: i32 = 18;
/// `SO_BINDTODEVICE`.
pub const SO_BINDTODEVICE: i32 = 25;
/// `SO_MARK`.
pub const SO_MARK: i32 = 36;
/// `SO_MAX_PACING_RATE`.
pub const SO_MAX_PACING_RATE: i32 = 47;
/// `SO_BINDTOIFINDEX`.
pub const SO_BINDTOIFINDEX: i32 = 62;
/// `SO_TXREHASH`.
pub const SO_TXREHASH: i32 = 74;
/// `SK_BPF_CB_FLAGS`.
pub const SK_BPF_CB_FLAGS: i32 = 1009;
/// `SK_BPF_CB_MASK` (`SK_BPF_CB_TX_TIMESTAMPING`).
const SK_BPF_CB_MASK: i32 = 1;
/// `TCP_NODELAY`.
pub const TCP_NODELAY: i32 = 1;
/// `TCP_MAXSEG`.
pub const TCP_MAXSEG: i32 = 2;
/// `TCP_KEEPIDLE`.
pub const TCP_KEEPIDLE: i32 = 4;
/// `TCP_KEEPINTVL`.
pub const TCP_KEEPINTVL: i32 = 5;
/// `TCP_KEEPCNT`.
pub const TCP_KEEPCNT: i32 = 6;
/// `TCP_SYNCNT`.
pub const TCP_SYNCNT: i32 = 7;
/// `TCP_WINDOW_CLAMP`.
pub const TCP_WINDOW_CLAMP: i32 = 10;
/// `TCP_CONGESTION`.
pub const TCP_CONGESTION: i32 = 13;
/// `TCP_THIN_LINEAR_TIMEOUTS`.
pub const TCP_THIN_LINEAR_TIMEOUTS: i32 = 16;
/// `TCP_USER_TIMEOUT`.
pub const TCP_USER_TIMEOUT: i32 = 18;
/// `TCP_NOTSENT_LOWAT`.
pub const TCP_NOTSENT_LOWAT: i32 = 25;
/// `TCP_SAVE_SYN`.
pub const TCP_SAVE_SYN: i32 = 27;
/// `TCP_RTO_MAX_MS`.
pub const TCP_RTO_MAX_MS: i32 = 44;
/// `TCP_BPF_IW`: set the initial congestion window.
pub const TCP_BPF_IW: i32 = 1001;
/// `TCP_BPF_SNDCWND_CLAMP`.
pub const TCP_BPF_SNDCWND_CLAMP: i32 = 1002;
/// `TCP_BPF_DELACK_MAX`.
pub const TCP_BPF_DELACK_MAX: i32 = 1003;
/// `TCP_BPF_RTO_MIN`.
pub const TCP_BPF_RTO_MIN: i32 = 1004;
/// `TCP_BPF_SOCK_OPS_CB_FLAGS`.
pub const TCP_BPF_SOCK_OPS_CB_FLAGS: i32 = 1008;
/// `IP_TOS`.
pub const IP_TOS: i32 = 1;
/// `IPV6_TCLASS`.
pub const IPV6_TCLASS: i32 = 67;
/// `IPV6_AUTOFLOWLABEL`.
pub const IPV6_AUTOFLOWLABEL: i32 = 70;
/// `BPF_SOCK_OPS_ALL_CB_FLAGS`.
pub const BPF_SOCK_OPS_ALL_CB_FLAGS: u32 = 0x7f;

/// The `SOL_SOCKET` options `bpf_setsockopt` takes as an `int`.
const SOL_SOCKET_INTS: &[i32] = &[
    SO_REUSEADDR,
    SO_SNDBUF,
    SO_RCVBUF,
    SO_KEEPALIVE,
    SO_PRIORITY,
    SO_REUSEPORT,
    SO_RCVLOWAT,
    SO_MARK,
    SO_MAX_PACING_RATE,
    SO_BINDTOIFINDEX,
    SO_TXREHASH,
    SK_BPF_CB_FLAGS,
];
/// The `SOL_TCP` options `bpf_setsockopt` passes to `do_tcp_setsockopt` as an `int`.
const SOL_TCP_INTS: &[i32] = &[
    TCP_NODELAY,
    TCP_MAXSEG,
    TCP_KEEPIDLE,
    TCP_KEEPINTVL,
    TCP_KEEPCNT,
    TCP_SYNCNT,
    TCP_WINDOW_CLAMP,
    TCP_THIN_LINEAR_TIMEOUTS,
    TCP_USER_TIMEOUT,
    TCP_NOTSENT_LOWAT,
    TCP_SAVE_SYN,
    TCP_RTO_MAX_MS,
];

const ENOENT: i64 = -2;
const EINVAL: i64 = -22;
const ENODEV: i64 = -19;
const ENOTSUPP: i64 = -524;

fn put32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

fn get32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

/// The IPv4 and IPv6 views of an address, as `struct sock_common` keeps them: an IPv4 socket
/// has no IPv6 address; an IPv6 socket's IPv4 field holds the embedded address of a v4-mapped
/// address, 0 for `::`, and `LOOPBACK4_IPV6` (127.0.0.6) otherwise.
fn addr_fields(ip: IpAddr) -> ([u8; 4], [u8; 16]) {
    match ip {
        IpAddr::V4(v4) => (v4.octets(), [0; 16]),
        IpAddr::V6(v6) => {
            let v4 = match v6.to_ipv4_mapped() {
                Some(m) => m.octets(),
                None if v6.is_unspecified() => [0; 4],
                None => [127, 0, 0, 6],
            };
            (v4, v6.octets())
        }
    }
}

/// Why a socket operation of the typed API failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SockError {
    /// No socket has this handle.
    #[error("no socket with fd {}", .0.fd())]
    NoSuchSocket(SockId),
    /// Another socket already uses the address (`EADDRINUSE`).
    #[error("address {0} is already in use")]
    AddrInUse(SocketAddr),
    /// The two addresses are of different families.
    #[error("addresses {0} and {1} are of different families")]
    FamilyMismatch(SocketAddr, SocketAddr),
    /// A connection needs concrete addresses and ports.
    #[error("address {0} cannot be used for a connection")]
    BadAddress(SocketAddr),
    /// The socket regions could not be mapped.
    #[error(transparent)]
    Memory(#[from] MemError),
}

/// The socket table of a [`World`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SockTable {
    socks: BTreeMap<SockId, Sock>,
    /// Cookies handed out so far.
    cookies: u64,
}

impl SockTable {
    /// The socket `id`.
    pub fn get(&self, id: SockId) -> Option<&Sock> {
        self.socks.get(&id)
    }

    /// Every socket, by handle.
    pub fn iter(&self) -> impl Iterator<Item = &Sock> {
        self.socks.values()
    }

    /// Number of sockets.
    pub fn len(&self) -> usize {
        self.socks.len()
    }

    /// True when there is no socket.
    pub fn is_empty(&self) -> bool {
        self.socks.is_empty()
    }

    /// The socket with this cookie.
    pub fn by_cookie(&self, cookie: u64) -> Option<&Sock> {
        self.socks.values().find(|s| s.cookie == cookie)
    }

    fn get_or_err(&self, id: SockId) -> Result<&Sock, SockError> {
        self.socks.get(&id).ok_or(SockError::NoSuchSocket(id))
    }

    pub(crate) fn get_mut(&mut self, id: SockId) -> Option<&mut Sock> {
        self.socks.get_mut(&id)
    }

    /// The input of a sockops run: `op` with `args` for socket `id`, the `struct bpf_sock_ops`
    /// (as `ctx_in`) filled from the socket as the kernel presents it to a full TCP socket.
    pub fn sock_ops_input(
        &self,
        id: SockId,
        op: u32,
        args: [u32; 4],
    ) -> Result<RunInput, SockError> {
        let s = self.get_or_err(id)?;
        let mut c = vec![0u8; BPF_SOCK_OPS_SIZE];
        put32(&mut c, 0, op);
        for (i, a) in args.iter().enumerate() {
            put32(&mut c, 4 + 4 * i, *a);
        }
        SockFields::of(s).write(&mut c, 20);
        put32(&mut c, 72, 1); // is_fullsock
        let t = &s.tcp;
        put32(&mut c, 76, t.snd_cwnd);
        put32(&mut c, 80, t.srtt_us);
        put32(&mut c, 84, s.cb_flags);
        put32(&mut c, 88, s.state as u32);
        let rest = [
            t.rtt_min,
            t.snd_ssthresh,
            t.rcv_nxt,
            t.snd_nxt,
            t.snd_una,
            t.mss_cache,
            t.ecn_flags,
            t.rate_delivered,
            t.rate_interval_us,
            t.packets_out,
            t.retrans_out,
            t.total_retrans,
            t.segs_in,
            t.data_segs_in,
            t.segs_out,
            t.data_segs_out,
            t.lost_out,
            t.sacked_out,
            s.txhash,
        ];
        for (i, v) in rest.iter().enumerate() {
            put32(&mut c, 92 + 4 * i, *v);
        }
        c[168..176].copy_from_slice(&t.bytes_received.to_le_bytes());
        c[176..184].copy_from_slice(&t.bytes_acked.to_le_bytes());
        Ok(RunInput { ctx: Some(c), sock: Some(id), ..RunInput::default() })
    }

    /// The input of an sk_msg run: `msg` sent on socket `id`.
    pub fn sk_msg_input(&self, id: SockId, msg: &[u8]) -> Result<RunInput, SockError> {
        self.get_or_err(id)?;
        Ok(RunInput { data: msg.to_vec(), sock: Some(id), ..RunInput::default() })
    }

    /// The established TCP socket with this 4-tuple, else the best listener for `local`
    /// (exact address before wildcard), as `__inet_lookup` finds it, in namespace `netns`.
    pub fn lookup_tcp(&self, local: SocketAddr, remote: SocketAddr, netns: u64) -> Option<SockId> {
        let candidates = || {
            self.socks.values().filter(move |s| {
                s.is_tcp() && s.netns_cookie == netns && s.local.is_ipv4() == local.is_ipv4()
            })
        };
        let established = candidates().find(|s| {
            !matches!(s.state, TcpState::Listen | TcpState::Close)
                && s.local == local
                && s.remote == remote
        });
        if let Some(s) = established {
            return Some(s.id);
        }
        let listeners = || {
            candidates().filter(|s| s.state == TcpState::Listen && s.local.port() == local.port())
        };
        listeners()
            .find(|s| s.local.ip() == local.ip())
            .or_else(|| listeners().find(|s| s.local.ip().is_unspecified()))
            .map(|s| s.id)
    }

    /// The UDP socket that best matches a datagram from `remote` to `local`, scored as
    /// `__udp4_lib_lookup` does (bound address, connected peer address and port).
    pub fn lookup_udp(&self, local: SocketAddr, remote: SocketAddr, netns: u64) -> Option<SockId> {
        let mut best: Option<(u32, SockId)> = None;
        for s in self.socks.values() {
            if s.is_tcp()
                || s.netns_cookie != netns
                || s.local.is_ipv4() != local.is_ipv4()
                || s.local.port() == 0
                || s.local.port() != local.port()
            {
                continue;
            }
            let mut score = 1;
            if !s.local.ip().is_unspecified() {
                if s.local.ip() != local.ip() {
                    continue;
                }
                score += 4;
            }
            if !s.remote.ip().is_unspecified() {
                if s.remote.ip() != remote.ip() {
                    continue;
                }
                score += 4;
            }
            if s.remote.port() != 0 {
                if s.remote.port() != remote.port() {
                    continue;
                }
                score += 4;
            }
            if best.is_none_or(|(b, _)| score > b) {
                best = Some((score, s.id));
            }
        }
        best.map(|(_, id)| id)
    }
}

/// The socket fields `struct sk_msg_md` and `struct bpf_sock_ops` share, as the u32 values a
/// program loads (addresses and the remote port in network byte order, the local port in host
/// order; the remote port in the upper 16 bits, as the kernel's `<< 16` leaves it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs, reason = "each field is the context field of the same name")]
pub struct SockFields {
    pub family: u32,
    pub remote_ip4: u32,
    pub local_ip4: u32,
    pub remote_ip6: [u32; 4],
    pub local_ip6: [u32; 4],
    pub remote_port: u32,
    pub local_port: u32,
}

impl SockFields {
    /// Size of the fields in a context structure (13 `u32`s).
    pub const SIZE: usize = 52;

    /// The fields of socket `s`.
    pub fn of(s: &Sock) -> SockFields {
        SockFields::from_bpf_sock(&s.bpf_sock())
    }

    /// The fields from a `struct bpf_sock`'s bytes.
    pub fn from_bpf_sock(b: &[u8; BPF_SOCK_SIZE]) -> SockFields {
        let ip6 = |off: usize| std::array::from_fn(|i| get32(b, off + 4 * i));
        SockFields {
            family: get32(b, 4),
            remote_ip4: get32(b, 52),
            local_ip4: get32(b, 24),
            remote_ip6: ip6(56),
            local_ip6: ip6(28),
            remote_port: u32::from(u16::from_le_bytes([b[48], b[49]])) << 16,
            local_port: get32(b, 44),
        }
    }

    /// The fields stored at `off` of a context structure's bytes.
    pub fn read(bytes: &[u8], off: usize) -> SockFields {
        let v = |i: usize| get32(bytes, off + 4 * i);
        SockFields {
            family: v(0),
            remote_ip4: v(1),
            local_ip4: v(2),
            remote_ip6: [v(3), v(4), v(5), v(6)],
            local_ip6: [v(7), v(8), v(9), v(10)],
            remote_port: v(11),
            local_port: v(12),
        }
    }

    /// Stores the fields at `off` of a context structure's bytes.
    pub fn write(&self, bytes: &mut [u8], off: usize) {
        let all = [
            self.family,
            self.remote_ip4,
            self.local_ip4,
            self.remote_ip6[0],
            self.remote_ip6[1],
            self.remote_ip6[2],
            self.remote_ip6[3],
            self.local_ip6[0],
            self.local_ip6[1],
            self.local_ip6[2],
            self.local_ip6[3],
            self.remote_port,
            self.local_port,
        ];
        for (i, v) in all.iter().enumerate() {
            put32(bytes, off + 4 * i, *v);
        }
    }

    /// The field at byte `rel` (a multiple of 4 below [`SockFields::SIZE`]).
    pub fn get(&self, rel: usize) -> u32 {
        let mut b = [0u8; SockFields::SIZE];
        self.write(&mut b, 0);
        get32(&b, rel.min(SockFields::SIZE - 4))
    }
}

/// What a context or helper can learn of a socket from the address space alone (no table):
/// its `struct bpf_sock` and the hidden region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SockView {
    /// The socket.
    pub id: SockId,
    /// The `struct bpf_sock` bytes.
    pub bpf_sock: [u8; BPF_SOCK_SIZE],
    /// The socket cookie.
    pub cookie: u64,
    /// The netns cookie.
    pub netns_cookie: u64,
}

impl SockView {
    /// The socket `id`, if `id` names one.
    pub fn read(mem: &Memory, id: SockId) -> Option<SockView> {
        let shadow = id.shadow()?;
        if mem.kind(id.region()) != Some(RegionKind::Kernel)
            || mem.kind(shadow) != Some(RegionKind::Kernel)
        {
            return None;
        }
        let b = mem.bytes(id.region());
        let h = mem.bytes(shadow);
        if h.len() != SHADOW_SIZE || &h[..8] != SHADOW_MAGIC {
            return None;
        }
        let bpf_sock: [u8; BPF_SOCK_SIZE] = b.try_into().ok()?;
        let u64_at = |o: usize| u64::from_le_bytes(h[o..o + 8].try_into().unwrap_or([0; 8]));
        Some(SockView { id, bpf_sock, cookie: u64_at(8), netns_cookie: u64_at(16) })
    }

    /// The socket a program's pointer refers to (the base of a socket's region), if any.
    pub fn at(mem: &Memory, addr: u64) -> Option<SockView> {
        let (id, kind, off) = mem.resolve(addr)?;
        if kind != RegionKind::Kernel || off != 0 {
            return None;
        }
        SockView::read(mem, SockId(id.index()))
    }

    /// The context fields (`family`, addresses, ports).
    pub fn fields(&self) -> SockFields {
        SockFields::from_bpf_sock(&self.bpf_sock)
    }

    /// `sk_family`.
    pub fn family(&self) -> u16 {
        get32(&self.bpf_sock, 4) as u16
    }

    /// True for a TCP socket (`sk_is_tcp`).
    pub fn is_tcp(&self) -> bool {
        get32(&self.bpf_sock, 8) == u32::from(SOCK_STREAM)
            && get32(&self.bpf_sock, 12) == u32::from(IPPROTO_TCP)
    }

    /// `sk_state`.
    pub fn state(&self) -> u32 {
        get32(&self.bpf_sock, 72)
    }

    /// `sock_map_redirect_allowed`: a TCP socket that is not listening, or an established one.
    pub fn redirect_allowed(&self) -> bool {
        if self.is_tcp() {
            self.state() != TcpState::Listen as u32
        } else {
            self.state() == TcpState::Established as u32
        }
    }

    /// `sock_map_sk_state_allowed`: TCP sockets must be established or listening.
    pub fn map_state_allowed(&self) -> bool {
        !self.is_tcp()
            || matches!(self.state(), s if s == TcpState::Established as u32 || s == TcpState::Listen as u32)
    }
}

/// `bpf_sock_is_valid_access`: may a program load `size` bytes at `off` of a `struct bpf_sock`
/// (a socket pointer from a lookup, a sockmap or a context's `sk`)? The verifier checks this at
/// load time; bpflab's socket regions are plain read-only memory, so the interpreter does not
/// refuse the loads this rejects (the bytes it reads there are the struct's own).
pub fn bpf_sock_is_valid_access(off: usize, size: usize) -> bool {
    if off >= BPF_SOCK_SIZE || size == 0 || !off.is_multiple_of(size) {
        return false;
    }
    // bpf_ctx_narrow_access_ok: 1, 2 or 4 bytes of a u32 field.
    let narrow = size <= 4 && size.is_power_of_two();
    match off {
        // state, family, type, protocol, src_port, rx_queue_mapping (their first byte only),
        // and the address ranges.
        4 | 8 | 12 | 44 | 72 | 76 | 24..=43 | 52..=71 => narrow,
        // dst_port: the whole u32, or narrow loads of the __be16.
        48..=49 => size == 4 || (narrow && size <= 2),
        // The padding after dst_port.
        50..=51 => false,
        _ => size == 4,
    }
}

/// `bpf_sock_common_is_valid_access`: as [`bpf_sock_is_valid_access`] for a
/// `PTR_TO_SOCK_COMMON` (`bpf_skc_lookup_tcp`, `__sk_buff->sk`), which has no `type`,
/// `protocol`, `mark` or `priority`.
pub fn bpf_sock_common_is_valid_access(off: usize, size: usize) -> bool {
    !(8..=23).contains(&off) && bpf_sock_is_valid_access(off, size)
}

/// `TCP_CLOSE`, the state `sock_init_data` gives a new socket.
const TCP_CLOSE: u32 = TcpState::Close as u32;

/// The `struct bpf_sock` of the socket `BPF_PROG_TEST_RUN` attaches to an skb
/// (`bpf_prog_test_run_skb`): `sk_alloc(AF_UNSPEC)` on the zeroing allocator and
/// `sock_init_data(NULL, sk)` leave no bound device, type, protocol, mark, priority or ports,
/// state `TCP_CLOSE` and no receive queue (-1); the run then sets the family and the addresses
/// from the IPv4 or IPv6 header (`family` 0 and zero addresses for other frames).
pub fn test_run_bpf_sock(
    family: u16,
    src4: [u8; 4],
    dst4: [u8; 4],
    src6: [u8; 16],
    dst6: [u8; 16],
) -> [u8; BPF_SOCK_SIZE] {
    let mut b = [0u8; BPF_SOCK_SIZE];
    put32(&mut b, 4, u32::from(family));
    b[24..28].copy_from_slice(&src4);
    b[28..44].copy_from_slice(&src6);
    b[52..56].copy_from_slice(&dst4);
    b[56..72].copy_from_slice(&dst6);
    put32(&mut b, 72, TCP_CLOSE);
    put32(&mut b, 76, u32::MAX);
    b
}

/// Maps a socket that is in no socket table (a test run's own socket): its read-only
/// `struct bpf_sock` region and its hidden region, at adjacent handles as every socket's, so
/// [`SockView`] and the socket helpers see it like any other. The caller frees both regions
/// ([`SockId::regions`]) when the socket goes away.
pub(crate) fn map_detached(
    mem: &mut Memory,
    bpf_sock: [u8; BPF_SOCK_SIZE],
    cookie: u64,
    netns_cookie: u64,
) -> Result<SockId, MemError> {
    let mut shadow = vec![0u8; SHADOW_SIZE];
    shadow[..8].copy_from_slice(SHADOW_MAGIC);
    shadow[8..16].copy_from_slice(&cookie.to_le_bytes());
    shadow[16..24].copy_from_slice(&netns_cookie.to_le_bytes());
    let first = mem.alloc_adjacent(vec![
        (RegionKind::Kernel, bpf_sock.to_vec(), Perm::ReadOnly),
        (RegionKind::Kernel, shadow, Perm::ReadOnly),
    ])?;
    Ok(SockId(first.index()))
}

/// Number of references programs hold on socket `id`.
pub(crate) fn refs(mem: &Memory, id: SockId) -> u32 {
    match SockView::read(mem, id).and(id.shadow()) {
        Some(shadow) => get32(mem.bytes(shadow), 24),
        None => 0,
    }
}

/// A program takes a reference on socket `id` (a lookup helper returned it).
pub(crate) fn acquire(mem: &mut Memory, id: SockId) {
    let n = refs(mem, id);
    if let Some(shadow) = SockView::read(mem, id).and(id.shadow()) {
        put32(mem.contents_mut(shadow), 24, n.saturating_add(1));
    }
}

/// A program drops a reference on socket `id`; false if it held none.
pub(crate) fn release(mem: &mut Memory, id: SockId) -> bool {
    let n = refs(mem, id);
    match SockView::read(mem, id).and(id.shadow()) {
        Some(shadow) if n > 0 => {
            put32(mem.contents_mut(shadow), 24, n - 1);
            true
        }
        _ => false,
    }
}

impl World {
    /// Creates a socket: its two regions and its table entry.
    fn new_sock(
        &mut self,
        proto: Proto,
        local: SocketAddr,
        remote: SocketAddr,
        state: TcpState,
    ) -> Result<SockId, SockError> {
        let region = self.mem.map(RegionKind::Kernel, vec![0; BPF_SOCK_SIZE], false)?;
        let shadow = self.mem.map(RegionKind::Kernel, vec![0; SHADOW_SIZE], false)?;
        let id = SockId(region.index());
        debug_assert_eq!(id.shadow(), Some(shadow));
        self.socks.cookies += 1;
        let mut s = Sock::new(id, proto, local, remote, state);
        s.cookie = self.socks.cookies;
        let h = self.mem.contents_mut(shadow);
        h[..8].copy_from_slice(SHADOW_MAGIC);
        h[8..16].copy_from_slice(&s.cookie.to_le_bytes());
        self.socks.socks.insert(id, s);
        self.sync_sock(id);
        Ok(id)
    }

    /// Rewrites socket `id`'s regions from its table entry.
    fn sync_sock(&mut self, id: SockId) {
        let Some(s) = self.socks.get(id) else { return };
        let (bytes, netns) = (s.bpf_sock(), s.netns_cookie);
        if SockView::read(&self.mem, id).is_none() {
            return;
        }
        self.mem.contents_mut(id.region()).copy_from_slice(&bytes);
        if let Some(shadow) = id.shadow() {
            self.mem.contents_mut(shadow)[16..24].copy_from_slice(&netns.to_le_bytes());
        }
    }

    fn check_free(
        &self,
        proto: Proto,
        local: SocketAddr,
        remote: Option<SocketAddr>,
    ) -> Result<(), SockError> {
        let clash = self.socks.iter().any(|s| {
            s.proto == proto
                && s.state != TcpState::Close
                && match remote {
                    Some(r) => s.local == local && s.remote == r,
                    None => {
                        s.remote.ip().is_unspecified()
                            && s.local.port() == local.port()
                            && (s.local.ip() == local.ip()
                                || s.local.ip().is_unspecified()
                                || local.ip().is_unspecified())
                    }
                }
        });
        if clash { Err(SockError::AddrInUse(local)) } else { Ok(()) }
    }

    /// A TCP socket listening on `addr` (`0.0.0.0` / `::` for any address).
    pub fn tcp_listen(&mut self, addr: SocketAddr) -> Result<SockId, SockError> {
        if addr.port() == 0 {
            return Err(SockError::BadAddress(addr));
        }
        self.check_free(Proto::Tcp, addr, None)?;
        self.new_sock(Proto::Tcp, addr, unspecified(addr), TcpState::Listen)
    }

    /// An established TCP connection from `client` to `server`: the client's socket (the
    /// active side, `BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB`) and the server's accepted socket (the
    /// passive side, `BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB`). No listener is needed.
    pub fn tcp_connect(
        &mut self,
        client: SocketAddr,
        server: SocketAddr,
    ) -> Result<(SockId, SockId), SockError> {
        if client.is_ipv4() != server.is_ipv4() {
            return Err(SockError::FamilyMismatch(client, server));
        }
        for a in [client, server] {
            if a.port() == 0 || a.ip().is_unspecified() {
                return Err(SockError::BadAddress(a));
            }
        }
        self.check_free(Proto::Tcp, client, Some(server))?;
        self.check_free(Proto::Tcp, server, Some(client))?;
        let (iss, irs) =
            (u32::from(client.port()) << 16 | 0x1000, u32::from(server.port()) << 16 | 0x2000);
        let c = self.new_sock(Proto::Tcp, client, server, TcpState::Established)?;
        let s = self.new_sock(Proto::Tcp, server, client, TcpState::Established)?;
        for (id, tcp) in [(c, TcpInfo::established(iss, irs)), (s, TcpInfo::established(irs, iss))]
        {
            if let Some(sock) = self.socks.get_mut(id) {
                sock.tcp = tcp;
            }
        }
        Ok((c, s))
    }

    /// A UDP socket bound to `addr`.
    pub fn udp_bind(&mut self, addr: SocketAddr) -> Result<SockId, SockError> {
        if addr.port() == 0 {
            return Err(SockError::BadAddress(addr));
        }
        self.check_free(Proto::Udp, addr, None)?;
        self.new_sock(Proto::Udp, addr, unspecified(addr), TcpState::Close)
    }

    /// A UDP socket bound to `local` and connected to `remote` (state established).
    pub fn udp_connect(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Result<SockId, SockError> {
        if local.is_ipv4() != remote.is_ipv4() {
            return Err(SockError::FamilyMismatch(local, remote));
        }
        if local.port() == 0 || remote.port() == 0 || remote.ip().is_unspecified() {
            return Err(SockError::BadAddress(remote));
        }
        self.check_free(Proto::Udp, local, Some(remote))?;
        self.new_sock(Proto::Udp, local, remote, TcpState::Established)
    }

    /// Changes socket `id`'s state; returns the old one. Moving to `Close` unhashes the socket,
    /// which removes it from every sockmap and sockhash (`sock_map_unhash`).
    pub fn sock_set_state(&mut self, id: SockId, state: TcpState) -> Result<TcpState, SockError> {
        let s = self.socks.get_mut(id).ok_or(SockError::NoSuchSocket(id))?;
        let old = std::mem::replace(&mut s.state, state);
        self.sync_sock(id);
        if state == TcpState::Close {
            self.unlink_sock(id);
        }
        Ok(old)
    }

    /// Closes socket `id`: state `Close`, removed from every sockmap and sockhash
    /// (`sock_map_close`).
    pub fn sock_close(&mut self, id: SockId) -> Result<(), SockError> {
        self.sock_set_state(id, TcpState::Close).map(|_| ())
    }

    /// Edits socket `id` (addresses, counters, options...); its handle and cookie cannot change.
    pub fn sock_update(&mut self, id: SockId, f: impl FnOnce(&mut Sock)) -> Result<(), SockError> {
        let s = self.socks.get_mut(id).ok_or(SockError::NoSuchSocket(id))?;
        let (cookie, old_state) = (s.cookie, s.state);
        f(s);
        s.id = id;
        s.cookie = cookie;
        let closed = s.state == TcpState::Close && old_state != TcpState::Close;
        self.sync_sock(id);
        if closed {
            self.unlink_sock(id);
        }
        Ok(())
    }

    /// Removes socket `id` from every sockmap and sockhash.
    fn unlink_sock(&mut self, id: SockId) {
        for idx in 0..self.map_count() {
            if let Some((map, _)) = self.map_mut(idx)
                && let Some(sm) = map.as_any_mut().downcast_mut::<SockMap>()
            {
                sm.remove_sock(id);
            }
        }
    }

    /// Where socket `id` is linked: `(map index, key)` of every sockmap/sockhash entry.
    pub fn sock_links(&self, id: SockId) -> Vec<(usize, Vec<u8>)> {
        let mut out = Vec::new();
        for idx in 0..self.map_count() {
            if let Some(sm) = self.map(idx).and_then(|m| m.as_any().downcast_ref::<SockMap>()) {
                out.extend(sm.entries().filter(|(_, s)| *s == id).map(|(k, _)| (idx, k.to_vec())));
            }
        }
        out
    }

    /// References programs hold on socket `id` (acquired by `bpf_sk_lookup_*` or a sockmap
    /// lookup and not yet released with `bpf_sk_release`).
    pub fn sock_refs(&self, id: SockId) -> u32 {
        refs(&self.mem, id)
    }

    /// References programs hold on all sockets: the kernel's verifier refuses a program that
    /// can exit holding one, so after a run of a correct program this is 0.
    pub fn sock_refs_held(&self) -> u32 {
        self.socks.iter().map(|s| refs(&self.mem, s.id)).sum()
    }

    /// Removes the context a run installed ([`crate::ctx::uninstall`]) and frees the socket the
    /// run owned, if any, with its local storage (`sk_free` runs `bpf_sk_storage_free`): the
    /// next run's socket starts without storage, as the kernel's fresh socket does.
    pub fn uninstall_ctx(
        &mut self,
        installed: &crate::ctx::Installed,
    ) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
        let owned = self
            .mem
            .context()
            .and_then(|c| c.as_any().downcast_ref::<crate::ctx::skb::SkbCtx>())
            .filter(|skb| skb.sk_owned)
            .and_then(|skb| skb.sk_id);
        let out = crate::ctx::uninstall(&mut self.mem, installed);
        if let Some(id) = owned {
            self.free_sk_storage(id.addr());
        }
        out
    }

    /// Drops the socket storage of the socket at `owner` from every sk_storage map.
    fn free_sk_storage(&mut self, owner: u64) {
        for idx in 0..self.map_count() {
            let is_sk =
                |m: &dyn crate::maps::Map| m.spec().map_type == crate::spec::MapType::SkStorage;
            if !self.map(idx).is_some_and(is_sk) {
                continue;
            }
            if let Some((map, mem)) = self.map_mut(idx)
                && let Some(st) = map.as_any_mut().downcast_mut::<crate::maps::LocalStorage>()
            {
                let _ = st.remove(mem, owner);
            }
        }
    }

    /// Drops every reference programs hold (after a test of a leaking program).
    pub fn sock_refs_clear(&mut self) {
        let ids: Vec<SockId> = self.socks.iter().map(|s| s.id).collect();
        for id in ids {
            while release(&mut self.mem, id) {}
        }
    }

    /// The socket a program's pointer refers to, if any.
    pub fn sock_at(&self, addr: u64) -> Option<SockId> {
        SockView::at(&self.mem, addr).map(|v| v.id)
    }

    /// `bpf_setsockopt` from user space's side: sets an option on socket `id`.
    pub fn sock_setsockopt(
        &mut self,
        id: SockId,
        level: i32,
        optname: i32,
        optval: &[u8],
    ) -> Result<(), i64> {
        let s = self.socks.get_mut(id).ok_or(EINVAL)?;
        let r = s.setsockopt(level, optname, optval);
        self.sync_sock(id);
        r
    }
}

/// The unspecified address of `a`'s family, port 0.
fn unspecified(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        SocketAddr::V6(_) => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
    }
}

/// What a sockops program decided in one callback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SockOpsRun {
    /// The run itself (`ctx` holds the `struct bpf_sock_ops` as the program left it).
    pub outcome: RunOutcome,
    /// The `reply` field the program wrote.
    pub reply: u32,
    /// What `tcp_call_bpf` returns to TCP: `reply` when the program returned 1, else -1.
    pub result: i64,
}

/// What happens to a message after the sk_msg verdict (`sk_psock_map_verd`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsgVerdict {
    /// `__SK_PASS`: sent on its own socket.
    Pass,
    /// `__SK_DROP`: dropped.
    Drop,
    /// `__SK_REDIRECT`: sent from (egress) or queued to (ingress) another socket.
    Redirect {
        /// The target socket.
        to: SockId,
        /// `BPF_F_INGRESS` was given: the target receives the message.
        ingress: bool,
    },
}

/// What an sk_msg program decided for one message, as `tcp_bpf_send_verdict` acts on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkMsgRun {
    /// The run itself (`data` holds the message as the program left it).
    pub outcome: RunOutcome,
    /// The verdict.
    pub verdict: MsgVerdict,
    /// `msg->apply_bytes` (0: the verdict applies to the whole message).
    pub apply_bytes: u32,
    /// `msg->cork_bytes` (0: no corking).
    pub cork_bytes: u32,
    /// The message size after the program.
    pub size: u32,
    /// The message is corked: held until `cork_bytes` have accumulated (`cork_bytes > size`).
    pub corked: bool,
    /// Bytes the verdict applies to now (`size`, or `apply_bytes` when smaller and set).
    pub tosend: u32,
}

fn ctx_error(e: SockError) -> EngineError {
    EngineError::Context(CtxError::BadCtx(e.to_string()))
}

impl Instance {
    /// Runs sockops program `prog` for callback `op` (with `args`) on socket `sock`, as
    /// `tcp_call_bpf` does; a write to `sk_txhash` lands in the socket.
    pub fn run_sock_ops(
        &mut self,
        prog: usize,
        sock: SockId,
        op: u32,
        args: [u32; 4],
    ) -> Result<SockOpsRun, EngineError> {
        let input = self.world.socks.sock_ops_input(sock, op, args).map_err(ctx_error)?;
        let outcome = self.run(prog, &input)?;
        let ctx = outcome.ctx.clone().unwrap_or_default();
        let field = |off: usize| if ctx.len() >= off + 4 { get32(&ctx, off) } else { 0 };
        let reply = field(4);
        if op <= BPF_SOCK_OPS_WRITE_HDR_OPT_CB {
            let txhash = field(164);
            let _ = self.world.sock_update(sock, |s| s.txhash = txhash);
        }
        let result = if outcome.r0 & 1 == 1 { i64::from(reply as i32) } else { -1 };
        Ok(SockOpsRun { outcome, reply, result })
    }

    /// Runs sk_msg program `prog` on message `msg` sent on socket `sock`, as
    /// `sk_psock_msg_verdict` and `tcp_bpf_send_verdict` do: the redirect and byte counts of
    /// this run only.
    pub fn run_sk_msg(
        &mut self,
        prog: usize,
        sock: SockId,
        msg: &[u8],
    ) -> Result<SkMsgRun, EngineError> {
        let input = self.world.socks.sk_msg_input(sock, msg).map_err(ctx_error)?;
        // `run` starts from a clean record of redirects and byte counts.
        let outcome = self.run(prog, &input)?;
        let redirect = outcome.redirect.as_ref().and_then(|r| match r.target {
            crate::env::RedirectTarget::Socket { id, .. } => {
                Some((id, r.flags & BPF_F_INGRESS != 0))
            }
            _ => None,
        });
        let verdict = match (outcome.r0 as u32 == SK_PASS as u32, redirect) {
            (true, Some((to, ingress))) => MsgVerdict::Redirect { to, ingress },
            (true, None) => MsgVerdict::Pass,
            (false, _) => MsgVerdict::Drop,
        };
        let bytes = self.world.env.msg_bytes;
        let size = outcome.data.len() as u32;
        let corked = bytes.cork != 0 && bytes.cork > size;
        let tosend = if bytes.apply != 0 && bytes.apply < size { bytes.apply } else { size };
        Ok(SkMsgRun {
            outcome,
            verdict,
            apply_bytes: bytes.apply,
            cork_bytes: bytes.cork,
            size,
            corked,
            tosend,
        })
    }
}
