//! The simulated world a program runs in: clock, random numbers, CPU, captured trace output.

/// Deterministic environment state shared by the helpers of one engine instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Env {
    /// Current monotonic time in nanoseconds.
    pub now_ns: u64,
    /// Nanoseconds the clock advances on every read.
    pub tick_ns: u64,
    /// Offset of the boot clock over the monotonic clock (time spent suspended).
    pub boot_offset_ns: u64,
    /// State of the xorshift64* generator behind `bpf_get_prandom_u32`.
    pub prng_state: u64,
    /// What `bpf_get_smp_processor_id` returns.
    pub cpu: u32,
    /// Lines written by `bpf_trace_printk`, in order.
    pub trace: Vec<String>,
    /// The target the last successful redirect helper chose; set by the helpers, never cleared
    /// by them (as the kernel keeps `msg->sk_redir`): reset it before a run to read one run's.
    pub redirect: Option<Redirect>,
    /// The `apply_bytes` / `cork_bytes` an sk_msg program set (`bpf_msg_apply_bytes`,
    /// `bpf_msg_cork_bytes`); reset it before a run, as [`Env::redirect`].
    pub msg_bytes: MsgBytes,
    /// The `struct bpf_timer`s programs initialized, by address (the kernel keeps their state
    /// in memory the map value points to, hidden from user space); kept across runs.
    pub timers: std::collections::BTreeMap<u64, TimerState>,
    /// The `struct bpf_tcp_sock` view `bpf_tcp_sock` made of each socket (by its address),
    /// rewritten at every call.
    pub tcp_sock_views: std::collections::BTreeMap<u64, crate::memory::RegionId>,
}

/// The state of a `struct bpf_timer` (`bpf_timer_init`, `_set_callback`, `_start`, `_cancel`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimerState {
    /// Its clock (`CLOCK_REALTIME` 0, `CLOCK_MONOTONIC` 1 or `CLOCK_BOOTTIME` 7).
    pub clock: u32,
    /// The callback's code address, from `bpf_timer_set_callback` until a cancel drops it.
    pub callback: Option<u64>,
    /// Started, and neither cancelled nor fired.
    pub armed: bool,
}

/// Where a redirect helper sends the packet or message, and how it was chosen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redirect {
    /// The helper that chose it (`bpf_msg_redirect_hash`, `bpf_sk_redirect_map`, ...).
    pub helper: &'static str,
    /// Index of the map the target was looked up in, if any.
    pub map: Option<usize>,
    /// The key as the program passed it (integer keys as 4 little-endian bytes).
    pub key: Vec<u8>,
    /// The flags argument as recorded by the kernel (`BPF_F_INGRESS`, ...).
    pub flags: u64,
    /// What the packet or message goes to.
    pub target: RedirectTarget,
}

/// The object a redirect points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RedirectTarget {
    /// A socket of the world's socket table (sockmap/sockhash redirects).
    Socket {
        /// The socket.
        id: crate::sock::SockId,
        /// Its cookie.
        cookie: u64,
    },
    /// A network device, by ifindex.
    Ifindex(u32),
    /// A CPU's queue of a cpumap (`bpf_redirect_map`).
    Cpu(u32),
    /// An AF_XDP socket of an xskmap, by its simulated socket id (`bpf_redirect_map`).
    Xsk(u32),
    /// Every device of a devmap (`bpf_redirect_map` with `BPF_F_BROADCAST`).
    Broadcast,
}

/// `apply_bytes` and `cork_bytes` of an sk_msg run (0 = not set, as in `struct sk_msg`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MsgBytes {
    /// `bpf_msg_apply_bytes`: how many bytes the verdict applies to.
    pub apply: u32,
    /// `bpf_msg_cork_bytes`: how many bytes to gather before running the program again.
    pub cork: u32,
}

impl Default for Env {
    fn default() -> Env {
        Env::with_seed(0x5eed_b9f1_ab00_0001)
    }
}

impl Env {
    /// An environment whose random numbers derive from `seed`.
    pub fn with_seed(seed: u64) -> Env {
        Env {
            now_ns: 1_000_000_000,
            tick_ns: 100,
            boot_offset_ns: 0,
            prng_state: seed | 1,
            cpu: 0,
            trace: Vec::new(),
            redirect: None,
            msg_bytes: MsgBytes::default(),
            timers: std::collections::BTreeMap::new(),
            tcp_sock_views: std::collections::BTreeMap::new(),
        }
    }

    /// Forgets what the previous run left: trace output, redirect target, sk_msg byte counts.
    /// The clock, random state and CPU carry over, as they would in the kernel.
    pub fn begin_run(&mut self) {
        self.trace.clear();
        self.redirect = None;
        self.msg_bytes = MsgBytes::default();
    }

    /// Reads the monotonic clock and advances it by one tick.
    pub fn read_clock(&mut self) -> u64 {
        let t = self.now_ns;
        self.now_ns = self.now_ns.wrapping_add(self.tick_ns);
        t
    }

    /// The next pseudo-random 32-bit value.
    pub fn next_u32(&mut self) -> u32 {
        let mut x = self.prng_state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.prng_state = x;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as u32
    }
}
