//! The verifier's limits and load flags, with the Linux verifier's defaults.

/// Limits and modes of one verification, defaulting to the kernel's values (include/linux/bpf.h,
/// include/linux/bpf_verifier.h, kernel/bpf/verifier.c).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Whether the loader is privileged (CAP_BPF + CAP_PERFMON); `false` is `--unpriv`.
    pub privileged: bool,
    /// Instruction-count limit for unprivileged loads (`BPF_MAXINSNS`).
    pub max_insns_unpriv: usize,
    /// Instruction-count limit for privileged loads (`BPF_COMPLEXITY_LIMIT_INSNS`).
    pub max_insns_priv: usize,
    /// Processed-instruction limit ("BPF program is too large. Processed N insn").
    pub max_processed_insns: u64,
    /// Branches waiting to be explored (`BPF_COMPLEXITY_LIMIT_JMP_SEQ`).
    pub max_pending_jumps: usize,
    /// States kept per instruction before new ones stop being added
    /// (`BPF_COMPLEXITY_LIMIT_STATES`).
    pub max_states_per_insn: usize,
    /// Stack bytes per frame and along the call chain (`MAX_BPF_STACK`).
    pub max_stack: usize,
    /// Call frames (`MAX_CALL_FRAMES`).
    pub max_frames: usize,
    /// Subprograms (`BPF_MAX_SUBPROGS`).
    pub max_subprogs: usize,
    /// Kernel log level: 0 (errors only), 1 (the kernel's level 1), 2 (per-instruction states),
    /// as the kernel's `log_level` bits; bit 4 (`BPF_LOG_STATS`) adds the `verification time`
    /// and `stack depth` lines.
    pub log_level: u8,
    /// Load flags that change verification.
    pub flags: Flags,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            privileged: true,
            max_insns_unpriv: 4096,
            max_insns_priv: 1_000_000,
            max_processed_insns: 1_000_000,
            max_pending_jumps: 8192,
            max_states_per_insn: 64,
            max_stack: 512,
            max_frames: 8,
            max_subprogs: 256,
            log_level: 1,
            flags: Flags::default(),
        }
    }
}

impl Config {
    /// The instruction-count limit for this mode.
    pub fn max_insns(&self) -> usize {
        if self.privileged { self.max_insns_priv } else { self.max_insns_unpriv }
    }
}

/// `BPF_PROG_LOAD` flags that change what the verifier does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    /// `BPF_F_STRICT_ALIGNMENT`: check alignment as strict-alignment architectures need.
    pub strict_alignment: bool,
    /// `BPF_F_ANY_ALIGNMENT`: skip alignment checks.
    pub any_alignment: bool,
    /// `BPF_F_TEST_STATE_FREQ`: add a checkpoint at every jump target and after every call.
    pub test_state_freq: bool,
    /// `BPF_F_SLEEPABLE`: the program may sleep.
    pub sleepable: bool,
    /// `BPF_F_XDP_HAS_FRAGS`: the XDP program handles multi-buffer packets.
    pub xdp_has_frags: bool,
}

impl Flags {
    /// The flag names `--flag` takes, as in the kernel's `BPF_F_*` names without the prefix.
    pub const NAMES: &'static [&'static str] =
        &["strict-alignment", "any-alignment", "test-state-freq", "sleepable", "xdp-has-frags"];

    /// Sets the flag named `name` (one of [`Flags::NAMES`]); `false` when there is none.
    pub fn set(&mut self, name: &str) -> bool {
        let f = match name {
            "strict-alignment" => &mut self.strict_alignment,
            "any-alignment" => &mut self.any_alignment,
            "test-state-freq" => &mut self.test_state_freq,
            "sleepable" => &mut self.sleepable,
            "xdp-has-frags" => &mut self.xdp_has_frags,
            _ => return false,
        };
        *f = true;
        true
    }

    /// The flags from the bits of `BPF_PROG_LOAD`'s `prog_flags`.
    pub fn from_bits(bits: u32) -> Flags {
        Flags {
            strict_alignment: bits & 1 != 0,
            any_alignment: bits & 2 != 0,
            test_state_freq: bits & 8 != 0,
            sleepable: bits & 16 != 0,
            xdp_has_frags: bits & 32 != 0,
        }
    }

    /// The `prog_flags` bits of these flags.
    pub fn bits(self) -> u32 {
        u32::from(self.strict_alignment)
            | u32::from(self.any_alignment) << 1
            | u32::from(self.test_state_freq) << 3
            | u32::from(self.sleepable) << 4
            | u32::from(self.xdp_has_frags) << 5
    }
}
