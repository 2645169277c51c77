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
        }
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
