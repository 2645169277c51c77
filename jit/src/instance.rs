//! A collection loaded in the JIT: the interpreter's instance (world, maps, contexts, lowered
//! code) with compiled code in place of the interpreter's loop.

use std::sync::Arc;

use bpflab_vm::ctx::{self, Target};
use bpflab_vm::interp::{Instance, VmError};
use bpflab_vm::memory::{Perm, RegionId, RegionKind};
use bpflab_vm::world::World;
use bpflab_vm::{EngineError, Loaded, ProgType, RunInput, RunOutcome};
use cranelift_codegen::isa::OwnedTargetIsa;

use crate::module::{CompileStats, Compiled, Functions};
use crate::runtime::{self, RunState, Shared};
use crate::{JitError, Mode};

/// A collection compiled by [`JitEngine`](crate::JitEngine): programs that run any number of
/// times, the maps they share, and their native code.
#[derive(Debug)]
pub struct JitInstance {
    instance: Instance,
    shared: Shared,
    targets: Vec<Target>,
    fns: Functions,
    state: Box<RunState>,
    mode: Mode,
}

impl JitInstance {
    pub(crate) fn new(
        instance: Instance,
        compiled: Arc<Compiled>,
        isa: OwnedTargetIsa,
        mode: Mode,
    ) -> JitInstance {
        let n = instance.program_count();
        let targets: Vec<Target> = (0..n).filter_map(|p| instance.target(p)).collect();
        let shared = Shared {
            helpers: Arc::clone(instance.helpers()),
            kfuncs: Arc::clone(instance.kfuncs()),
            gpl_compatible: (0..n).map(|p| instance.gpl_compatible(p)).collect(),
            codes: instance.codes().to_vec(),
            code_regions: (0..n).filter_map(|p| instance.code_region(p)).collect(),
            prog_types: targets.iter().map(|t| t.prog_type).collect(),
            budget: instance.config().insn_budget,
        };
        JitInstance {
            shared,
            targets,
            fns: Functions::new(compiled, isa),
            state: RunState::new(),
            mode,
            instance,
        }
    }

    /// The mode the code was compiled in.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Maps, memory and environment.
    pub fn world(&self) -> &World {
        &self.instance.world
    }

    /// Maps, memory and environment, mutably.
    pub fn world_mut(&mut self) -> &mut World {
        &mut self.instance.world
    }

    /// Number of programs.
    pub fn program_count(&self) -> usize {
        self.shared.codes.len()
    }

    /// The index of the program named `name`.
    pub fn program_index(&self, name: &str) -> Option<usize> {
        self.instance.program_index(name)
    }

    /// Size and time of the compilation (of the shared code, when it came from the cache).
    pub fn compile_stats(&self) -> CompileStats {
        self.fns.compiled().stats()
    }

    /// The native code of program `prog`, one function per entry point, as Cranelift prints
    /// it (like `bpftool prog dump jited`).
    pub fn disassemble(&self, prog: usize) -> Result<String, JitError> {
        if prog >= self.shared.codes.len() {
            return Ok(String::new());
        }
        self.fns.disassemble(&self.shared.codes, prog)
    }

    /// The Cranelift IR program `prog` compiles from (before Cranelift's optimizations), one
    /// function per entry point.
    pub fn ir(&self, prog: usize) -> String {
        if prog >= self.shared.codes.len() {
            return String::new();
        }
        self.fns.ir(&self.shared.codes, prog)
    }

    /// Runs program `prog` on `input` as `BPF_PROG_TEST_RUN` would (see
    /// [`Instance::run`]).
    pub fn run(&mut self, prog: usize, input: &RunInput) -> Result<RunOutcome, EngineError> {
        let target = *self.targets.get(prog).ok_or_else(|| EngineError::Unsupported {
            engine: "jit",
            what: format!("program index {prog} (there are {})", self.shared.codes.len()),
        })?;
        self.instance.check_typed(prog)?;
        self.instance.world.env.trace.clear();
        let mut out = RunOutcome::default();
        if target.prog_type == ProgType::Unspec {
            let mut data = input.data.clone();
            let (r0, count) = self.run_raw(prog, &mut data)?;
            out.r0 = r0;
            out.data = data;
            out.insn_count = Some(count);
            out.trace = std::mem::take(&mut self.instance.world.env.trace);
            return Ok(out);
        }
        let installed = ctx::install(target, input, &mut self.instance.world.mem)?;
        let result =
            self.execute_with(prog, [installed.r1, 0, 0, 0, 0], installed.ld_abs, &installed.owned);
        let (data, ctx_out) = self.instance.world.uninstall_ctx(&installed);
        let (r0, count) = result?;
        out.r0 = r0;
        out.data = data.unwrap_or_default();
        out.ctx = ctx_out;
        out.insn_count = Some(count);
        out.trace = std::mem::take(&mut self.instance.world.env.trace);
        Ok(out)
    }

    /// Runs program `prog` in raw mode: r1 points to a copy of `data`, r2 holds its length.
    /// Returns r0 and the instruction count; `data` receives what the program wrote.
    pub fn run_raw(&mut self, prog: usize, data: &mut Vec<u8>) -> Result<(u64, u64), VmError> {
        let mem = &mut self.instance.world.mem;
        let input = mem
            .alloc(RegionKind::Input, std::mem::take(data), Perm::ReadWrite)
            .map_err(|e| VmError::new(0, e.into()))?;
        let len = mem.bytes(input).len() as u64;
        let result = self.execute_with(prog, [input.base(), len, 0, 0, 0], Some(input), &[input]);
        let mem = &mut self.instance.world.mem;
        *data = std::mem::take(mem.bytes_mut(input));
        mem.free(input);
        result
    }

    /// Runs program `prog` from its entry with r1..r5 = `args`; `packet` is the region
    /// LD_ABS/LD_IND read. Returns r0 and the instruction count. A `prog` out of range is
    /// refused as [`VmErrorKind::NotAnInstruction`](bpflab_vm::interp::VmErrorKind::NotAnInstruction) at slot 0.
    pub fn execute(
        &mut self,
        prog: usize,
        args: [u64; 5],
        packet: Option<RegionId>,
    ) -> Result<(u64, u64), VmError> {
        let packet_region: Vec<RegionId> = packet.into_iter().collect();
        self.execute_with(prog, args, packet, &packet_region)
    }

    /// [`JitInstance::execute`], with the regions the program is about to use.
    fn execute_with(
        &mut self,
        prog: usize,
        args: [u64; 5],
        packet: Option<RegionId>,
        regions: &[RegionId],
    ) -> Result<(u64, u64), VmError> {
        let state: &mut RunState = &mut self.state;
        state.begin(&self.shared, &mut self.fns, packet);
        let result = runtime::run(state, &mut self.instance.world, prog, args, regions);
        result.map(|r0| (r0, self.state.count))
    }
}

impl Loaded for JitInstance {
    fn run(&mut self, prog: usize, input: &RunInput) -> Result<RunOutcome, EngineError> {
        JitInstance::run(self, prog, input)
    }

    fn map_lookup(&mut self, map: usize, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        self.instance.map_lookup(map, key)
    }

    fn map_update(
        &mut self,
        map: usize,
        key: &[u8],
        value: &[u8],
        flags: u64,
    ) -> Result<(), EngineError> {
        self.instance.map_update(map, key, value, flags)
    }

    fn map_delete(&mut self, map: usize, key: &[u8]) -> Result<(), EngineError> {
        self.instance.map_delete(map, key)
    }

    fn map_keys(&mut self, map: usize) -> Result<Vec<Vec<u8>>, EngineError> {
        self.instance.map_keys(map)
    }
}
