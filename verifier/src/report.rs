//! A verification's result: the verdict, the kernel-style statistics and the log.

use crate::error::Verdict;

/// The verifier's counters, as the kernel's stats line prints them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Instructions processed along all explored paths (`processed N insns`).
    pub processed_insns: u64,
    /// States stored for pruning (`total_states`).
    pub total_states: u64,
    /// Most states stored at once (`peak_states`).
    pub peak_states: u64,
    /// Most states stored at one instruction (`max_states_per_insn`).
    pub max_states_per_insn: u64,
    /// Longest chain of liveness marks (`mark_read`).
    pub mark_read: u64,
    /// Wall-clock time the verification took, in microseconds.
    pub verification_usec: u64,
}

impl Stats {
    /// The kernel's stats line: `processed N insns (limit 1000000) max_states_per_insn M
    /// total_states T peak_states P mark_read R`.
    pub fn line(&self, limit: u64) -> String {
        format!(
            "processed {} insns (limit {limit}) max_states_per_insn {} total_states {} \
             peak_states {} mark_read {}",
            self.processed_insns,
            self.max_states_per_insn,
            self.total_states,
            self.peak_states,
            self.mark_read
        )
    }
}

/// The result of verifying one program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The program's name.
    pub program: String,
    /// What the verifier decided.
    pub verdict: Verdict,
    /// Its counters.
    pub stats: Stats,
    /// The log at the configured level, in the kernel's format, ending with the stats line.
    pub log: String,
}
