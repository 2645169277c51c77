//! bpflab's verifier: decides, for a loaded program, what the Linux verifier decides, with
//! the kernel's limits, its error messages and its log, plus the C source line of each error.
//!
//! It interprets the program abstractly path by path as the kernel does: registers hold
//! scalars (a tnum plus signed and unsigned 64- and 32-bit bounds) or typed pointers, the
//! stack is tracked per byte, states are stored at the kernel's checkpoints and a path whose
//! state is covered by a stored one is pruned. What bpflab does not model yet ends the
//! verification with [`Verdict::Unsupported`], never with a guess.
#![forbid(unsafe_code)]

pub mod config;
pub mod error;
pub mod report;

pub use config::{Config, Flags};
pub use error::{ErrorKind, SourceLine, Unsupported, Verdict, VerifyError};
pub use report::{Report, Stats};
