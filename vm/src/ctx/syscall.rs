//! `SEC("syscall")` programs: the context is the caller's argument buffer (`ctx_in` of
//! `BPF_PROG_TEST_RUN`), readable and writable as plain memory and copied back as `ctx_out`.

use std::any::Any;

use super::{CtxError, Installed, Target, allowed, denied, read_field, write_field};
use crate::engine::{ProgType, RunInput};
use crate::memory::{Access, ContextAccess, MemError, Memory};

/// Largest argument buffer the kernel accepts (`U16_MAX`).
pub const MAX_CTX: usize = super::layout::SYSCALL_CTX_MAX as usize;

/// The argument buffer of a syscall program run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyscallCtx {
    /// The buffer's bytes.
    pub bytes: Vec<u8>,
}

/// Installs the argument buffer; syscall programs take no packet.
pub(crate) fn install(input: &RunInput, mem: &mut Memory) -> Result<Installed, CtxError> {
    if !input.data.is_empty() {
        return Err(CtxError::BadCtx("syscall programs take no packet data".into()));
    }
    let bytes = input.ctx.clone().unwrap_or_default();
    if bytes.len() > MAX_CTX {
        return Err(CtxError::BadCtx(format!(
            "argument buffer of {} bytes exceeds {MAX_CTX}",
            bytes.len()
        )));
    }
    let id = mem.set_context(Box::new(SyscallCtx { bytes }))?;
    Ok(Installed { r1: id.base(), ld_abs: None, owned: Vec::new() })
}

impl SyscallCtx {
    /// The layout's rule (aligned, below `U16_MAX`), then the buffer's length, which the
    /// kernel's test run checks against the largest offset the program accesses.
    fn check(&self, access: Access, off: usize, len: usize) -> Result<(), MemError> {
        allowed(Target { prog_type: ProgType::Syscall, attach: None }, access, off, len)?;
        if off + len > self.bytes.len() {
            return Err(denied(access, off, len, "past the end of the argument buffer"));
        }
        Ok(())
    }
}

impl ContextAccess for SyscallCtx {
    fn size(&self) -> usize {
        self.bytes.len()
    }

    fn load(&self, _mem: &Memory, off: usize, len: usize) -> Result<u64, MemError> {
        self.check(Access::Read, off, len)?;
        Ok(read_field(&self.bytes, off, len))
    }

    fn store(&mut self, _mem: &Memory, off: usize, len: usize, value: u64) -> Result<(), MemError> {
        self.check(Access::Write, off, len)?;
        write_field(&mut self.bytes, off, len, value);
        Ok(())
    }

    fn packet_out(&self, _mem: &Memory) -> Option<Vec<u8>> {
        None
    }

    fn ctx_out(&self, _mem: &Memory) -> Option<Vec<u8>> {
        Some(self.bytes.clone())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}
