//! Compiled code and its memory: which native functions a collection needs, Cranelift
//! modules (code memory freed on drop), the compile cache key, and callback entries compiled
//! on first use.
#![allow(unsafe_code)]

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bpflab_vm::interp::{Code, Instance};
use bpflab_vm::memory::{RegionId, STACK_SIZE};
use cranelift_codegen::control::ControlPlane;
use cranelift_codegen::ir::{AbiParam, Signature, types};
use cranelift_codegen::isa::{OwnedTargetIsa, TargetIsa};
use cranelift_frontend::FunctionBuilderContext;
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{Module, default_libcall_names};

use crate::analysis::{Class, Plan, classify, stack_extent};
use crate::translate::{Env, translate};
use crate::{JitError, Mode};

/// What the compiled code of a collection depends on: the lowered code (with its resolved
/// addresses), the code regions, the mode and the budget.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey {
    mode: Mode,
    budget: u64,
    words: Vec<u64>,
}

impl CacheKey {
    /// The key of `instance`'s code compiled in `mode`.
    pub(crate) fn new(instance: &Instance, mode: Mode) -> CacheKey {
        let mut words = Vec::new();
        for (p, code) in instance.codes().iter().enumerate() {
            words.push(code.slots().len() as u64);
            words.push(instance.code_region(p).map_or(0, RegionId::base));
            for (pc, s) in code.slots().iter().enumerate() {
                let head = u64::from(s.code)
                    | u64::from(s.dst) << 8
                    | u64::from(s.src) << 16
                    | u64::from(s.off as u16) << 24
                    | u64::from(code.starts_instruction(pc)) << 40;
                words.extend([head, s.imm as u64]);
            }
        }
        CacheKey { mode, budget: instance.config().insn_budget, words }
    }
}

/// Code memory of one Cranelift module, freed when dropped.
struct CodeMemory(Option<JITModule>);

impl Drop for CodeMemory {
    fn drop(&mut self) {
        if let Some(module) = self.0.take() {
            // SAFETY: the addresses of this module's functions are only held by the `Compiled`
            // or `Functions` that owns this value, and only called through `runtime::enter`
            // while that owner is borrowed; being dropped, it is borrowed by no one, so no
            // function of the module is running or will be called again.
            unsafe { module.free_memory() };
        }
    }
}

impl std::fmt::Debug for CodeMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodeMemory")
    }
}

/// Facts about the whole collection that every function's code depends on.
#[derive(Clone, Copy, Debug)]
struct Facts {
    /// Registers to pass between functions (11, or 16 if any code names r11..r15).
    nregs: usize,
    /// Some code writes r10 (so a tail-call entry cannot assume r10 is the frame pointer).
    any_writes_r10: bool,
    /// Bytes below the frame pointer a new frame zeroes (what any code can reach).
    stack_zero: usize,
    /// Some code makes bpf-to-bpf calls and some code calls helpers: a tail call may then
    /// happen in a callee, and program entries must pass r0..r5 back.
    tail_full_exit: bool,
    /// Some code reaches memory through the region table (anything but stack accesses
    /// checked at compile time); without, runs need not validate entries ahead.
    table_access: bool,
}

impl Facts {
    fn of(codes: &[Code]) -> Facts {
        let mut facts = Facts {
            nregs: 11,
            any_writes_r10: false,
            stack_zero: 0,
            tail_full_exit: false,
            table_access: false,
        };
        let (mut calls, mut helpers) = (false, false);
        for code in codes {
            let slots = code.slots();
            facts.stack_zero = facts.stack_zero.max(stack_extent(slots, STACK_SIZE));
            for (pc, s) in slots.iter().enumerate() {
                if s.dst > 10 || s.src > 10 {
                    facts.nregs = 16;
                }
                let class = classify(slots, pc);
                facts.any_writes_r10 |= match class {
                    Class::Alu | Class::LdImm64 | Class::Load { .. } => s.dst & 15 == 10,
                    Class::Atomic { .. } => s.src & 15 == 10,
                    _ => false,
                };
                calls |= matches!(class, Class::Local { .. });
                helpers |= class == Class::Helper;
                // Conservative: any access not through r10 (an r10 access may still be
                // out of bounds, but then it goes to Rust, which validates as it must).
                facts.table_access |= match class {
                    Class::Load { .. } => s.src & 15 != 10,
                    Class::Store { .. } | Class::Atomic { .. } => s.dst & 15 != 10,
                    Class::LdAbs { .. } => true,
                    _ => false,
                };
            }
        }
        facts.tail_full_exit = calls && helpers;
        facts
    }
}

/// Size and time of a compilation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompileStats {
    /// Native functions compiled.
    pub functions: usize,
    /// Instruction slots they cover.
    pub slots: usize,
    /// Bytes of machine code.
    pub code_bytes: usize,
    /// Wall time of translation, compilation and finalization.
    pub time: Duration,
}

/// The compiled functions of a collection, shared by the instances of the same code.
#[derive(Debug)]
pub(crate) struct Compiled {
    /// Held for its `Drop`: the code the addresses below point into.
    _memory: Mutex<CodeMemory>,
    funcs: Vec<usize>,
    index: HashMap<(usize, usize), usize>,
    entries: Vec<usize>,
    facts: Facts,
    local_targets: HashSet<(usize, usize)>,
    mode: Mode,
    budget: u64,
    stats: CompileStats,
}

/// Every bpf-to-bpf call target of `codes`, as (program, slot).
fn local_targets(codes: &[Code]) -> HashSet<(usize, usize)> {
    let mut out = HashSet::new();
    for (p, code) in codes.iter().enumerate() {
        for pc in 0..code.slots().len() {
            if let Class::Local { target } = classify(code.slots(), pc) {
                out.insert((p, target));
            }
        }
    }
    out
}

/// The entries compilation starts from, and how to find functions already compiled.
struct Batch<'a> {
    env: Env<'a>,
    code_bases: Vec<u64>,
}

impl Batch<'_> {
    /// The functions reachable from `roots` that `known` does not have, with their plans, in
    /// index order starting at `first`.
    fn discover(
        &self,
        roots: &[(usize, usize)],
        known: &dyn Fn(usize, usize) -> bool,
        index: &mut HashMap<(usize, usize), usize>,
        first: usize,
    ) -> Vec<Plan> {
        let codes = self.env.codes;
        let mut plans: Vec<Plan> = Vec::new();
        let mut work: Vec<(usize, usize)> = roots.to_vec();
        while let Some((prog, pc)) = work.pop() {
            if known(prog, pc) || index.contains_key(&(prog, pc)) {
                continue;
            }
            index.insert((prog, pc), first + plans.len());
            let plan = Plan::new(&codes[prog], prog, pc);
            work.extend(plan.calls.iter().map(|&t| (prog, t)));
            // A constant that points at an instruction of some program may become a callback.
            for &v in &plan.constants {
                for (q, &base) in self.code_bases.iter().enumerate() {
                    let off = v.wrapping_sub(base);
                    if let Ok(off) = usize::try_from(off)
                        && codes[q].starts_instruction(off)
                    {
                        work.push((q, off));
                    }
                }
            }
            plans.push(plan);
        }
        plans
    }

    /// Compiles `plans` into a new module; returns it, the functions' addresses and the
    /// bytes of machine code.
    fn compile(
        &self,
        isa: &OwnedTargetIsa,
        plans: &[Plan],
        index: &dyn Fn(usize, usize) -> Option<usize>,
        cx: &mut Contexts,
    ) -> Result<(CodeMemory, Vec<usize>, usize), JitError> {
        let mut module = JITModule::new(JITBuilder::with_isa(isa.clone(), default_libcall_names()));
        let sig = fn_signature(&**isa);
        let Contexts { ctx, fctx } = cx;
        let mut ids = Vec::with_capacity(plans.len());
        let mut code_bytes = 0;
        for plan in plans {
            let fail =
                |message: String| JitError::Compile { prog: plan.prog, pc: plan.entry, message };
            let id = module.declare_anonymous_function(&sig).map_err(|e| fail(e.to_string()))?;
            ctx.clear();
            ctx.func.signature = sig.clone();
            translate(&self.env, plan, &mut ctx.func, fctx, index);
            let defined = module.define_function(id, ctx).map_err(|e| fail(format!("{e:?}")));
            code_bytes += ctx.compiled_code().map_or(0, |c| c.code_buffer().len());
            ctx.clear();
            defined?;
            ids.push(id);
        }
        module.finalize_definitions().map_err(|e| JitError::Finalize(e.to_string()))?;
        let addrs = ids.iter().map(|&id| module.get_finalized_function(id) as usize).collect();
        Ok((CodeMemory(Some(module)), addrs, code_bytes))
    }
}

/// Cranelift's compilation contexts, kept between compilations so that their allocations
/// are reused.
pub(crate) struct Contexts {
    ctx: cranelift_codegen::Context,
    fctx: FunctionBuilderContext,
}

impl Contexts {
    /// Fresh contexts.
    pub(crate) fn new() -> Contexts {
        Contexts { ctx: cranelift_codegen::Context::new(), fctx: FunctionBuilderContext::new() }
    }
}

impl std::fmt::Debug for Contexts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Contexts")
    }
}

/// The signature of every compiled function: `(state, depth) -> status`.
pub(crate) fn fn_signature(isa: &dyn TargetIsa) -> Signature {
    let mut sig = Signature::new(isa.default_call_conv());
    sig.params.push(AbiParam::new(types::I64));
    sig.params.push(AbiParam::new(types::I64));
    sig.returns.push(AbiParam::new(types::I32));
    sig
}

fn code_bases(instance_regions: impl Iterator<Item = Option<RegionId>>) -> Vec<u64> {
    instance_regions.map(|r| r.map_or(u64::MAX, RegionId::base)).collect()
}

impl Compiled {
    /// Compiles the entry of every program of `instance`, and every function those reach.
    pub(crate) fn build(
        isa: &OwnedTargetIsa,
        instance: &Instance,
        mode: Mode,
        cx: &mut Contexts,
    ) -> Result<Compiled, JitError> {
        let start = Instant::now();
        let codes = instance.codes();
        let facts = Facts::of(codes);
        let targets = local_targets(codes);
        let budget = instance.config().insn_budget;
        let batch = Batch {
            env: env(isa, codes, facts, &targets, mode, budget),
            code_bases: code_bases((0..codes.len()).map(|p| instance.code_region(p))),
        };
        let roots: Vec<(usize, usize)> = (0..codes.len()).map(|p| (p, 0)).collect();
        let mut index = HashMap::new();
        let plans = batch.discover(&roots, &|_, _| false, &mut index, 0);
        let (memory, funcs, code_bytes) =
            batch.compile(isa, &plans, &|p, pc| index.get(&(p, pc)).copied(), cx)?;
        let entries = (0..codes.len()).map(|p| funcs[index[&(p, 0)]]).collect();
        let stats = CompileStats {
            functions: plans.len(),
            slots: plans.iter().map(|p| p.reachable.iter().filter(|&&r| r).count()).sum(),
            code_bytes,
            time: start.elapsed(),
        };
        Ok(Compiled {
            _memory: Mutex::new(memory),
            funcs,
            index,
            entries,
            facts,
            local_targets: targets,
            mode,
            budget,
            stats,
        })
    }

    /// Size and time of the compilation.
    pub(crate) fn stats(&self) -> CompileStats {
        self.stats
    }
}

fn env<'a>(
    isa: &OwnedTargetIsa,
    codes: &'a [Code],
    facts: Facts,
    local_targets: &'a HashSet<(usize, usize)>,
    mode: Mode,
    budget: u64,
) -> Env<'a> {
    Env {
        codes,
        mode,
        budget,
        nregs: facts.nregs,
        any_writes_r10: facts.any_writes_r10,
        stack_zero: facts.stack_zero,
        local_targets,
        tail_full_exit: facts.tail_full_exit,
        call_conv: isa.default_call_conv(),
        frontend: isa.frontend_config(),
    }
}

/// One instance's view of compiled code: the shared functions plus callback entries compiled
/// on first use.
pub(crate) struct Functions {
    compiled: Arc<Compiled>,
    funcs: Vec<usize>,
    /// Per program: `(entry slot, address)` of every function, sorted by slot.
    by_prog: Vec<Vec<(usize, usize)>>,
    lazy_index: HashMap<(usize, usize), usize>,
    /// Variants with budget checks of bounded functions, by (program, entry slot).
    variants: HashMap<(usize, usize), usize>,
    lazy: Vec<CodeMemory>,
    isa: OwnedTargetIsa,
}

impl std::fmt::Debug for Functions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Functions")
            .field("compiled", &self.compiled)
            .field("functions", &self.funcs.len())
            .finish_non_exhaustive()
    }
}

impl Functions {
    /// The functions of `compiled`.
    pub(crate) fn new(compiled: Arc<Compiled>, isa: OwnedTargetIsa) -> Functions {
        let funcs = compiled.funcs.clone();
        let mut by_prog = vec![Vec::new(); compiled.entries.len()];
        for (&(prog, pc), &k) in &compiled.index {
            by_prog[prog].push((pc, funcs[k]));
        }
        for v in &mut by_prog {
            v.sort_unstable();
        }
        Functions {
            compiled,
            funcs,
            by_prog,
            lazy_index: HashMap::new(),
            variants: HashMap::new(),
            lazy: Vec::new(),
            isa,
        }
    }

    /// Function addresses by index.
    #[inline]
    pub(crate) fn funcs(&self) -> &[usize] {
        &self.funcs
    }

    /// Each program's entry function address.
    #[inline]
    pub(crate) fn entries(&self) -> &[usize] {
        &self.compiled.entries
    }

    /// The shared compiled code.
    pub(crate) fn compiled(&self) -> &Compiled {
        &self.compiled
    }

    /// Some code reaches memory through the region table.
    #[inline]
    pub(crate) fn table_access(&self) -> bool {
        self.compiled.facts.table_access
    }

    /// The code was compiled in trusted mode.
    #[inline]
    pub(crate) fn trusted(&self) -> bool {
        self.compiled.mode == Mode::Trusted
    }

    /// Bytes below the frame pointer a new frame zeroes.
    #[inline]
    pub(crate) fn stack_zero(&self) -> usize {
        self.compiled.facts.stack_zero
    }

    /// The address of the function starting at slot `pc` of program `prog` (an instruction
    /// start), compiling it (and what it calls) if no function starts there yet.
    pub(crate) fn function(
        &mut self,
        codes: &[Code],
        code_regions: &[RegionId],
        prog: usize,
        pc: usize,
    ) -> Result<usize, JitError> {
        let key = (prog, pc);
        if pc == 0
            && let Some(&f) = self.compiled.entries.get(prog)
        {
            return Ok(f);
        }
        if let Some(fns) = self.by_prog.get(prog)
            && let Ok(i) = fns.binary_search_by_key(&pc, |&(at, _)| at)
        {
            return Ok(fns[i].1);
        }
        let c = &self.compiled;
        let batch = Batch {
            env: env(&self.isa, codes, c.facts, &c.local_targets, c.mode, c.budget),
            code_bases: code_bases(code_regions.iter().map(|&r| Some(r))),
        };
        let mut index = self.lazy_index.clone();
        let known = |p: usize, q: usize| c.index.contains_key(&(p, q));
        let plans = batch.discover(&[key], &known, &mut index, self.funcs.len());
        let lookup =
            |p: usize, q: usize| c.index.get(&(p, q)).or_else(|| index.get(&(p, q))).copied();
        let (memory, addrs, _) = batch.compile(&self.isa, &plans, &lookup, &mut Contexts::new())?;
        let first = self.funcs.len();
        self.funcs.extend(addrs);
        self.lazy.push(memory);
        for (&(p, q), &k) in &index {
            if k >= first
                && let Some(fns) = self.by_prog.get_mut(p)
            {
                fns.push((q, self.funcs[k]));
                fns.sort_unstable();
            }
        }
        self.lazy_index = index;
        let k = self.lazy_index[&key];
        Ok(self.funcs[k])
    }

    /// The variant with budget checks of the bounded function at slot `pc` of `prog`, for
    /// runs that enter it with less budget left than it has instructions.
    pub(crate) fn checked_variant(
        &mut self,
        codes: &[Code],
        code_regions: &[RegionId],
        prog: usize,
        pc: usize,
    ) -> Result<usize, JitError> {
        if let Some(&f) = self.variants.get(&(prog, pc)) {
            return Ok(f);
        }
        let code = codes.get(prog).ok_or(JitError::Compile {
            prog,
            pc,
            message: "no such program".into(),
        })?;
        let mut plan = Plan::new(code, prog, pc);
        plan.force_checks = true;
        let c = &self.compiled;
        let batch = Batch {
            env: env(&self.isa, codes, c.facts, &c.local_targets, c.mode, c.budget),
            code_bases: code_bases(code_regions.iter().map(|&r| Some(r))),
        };
        // A bounded function calls nothing, so the lookup is never used.
        let (memory, addrs, _) =
            batch.compile(&self.isa, &[plan], &|_, _| None, &mut Contexts::new())?;
        self.lazy.push(memory);
        self.variants.insert((prog, pc), addrs[0]);
        Ok(addrs[0])
    }

    /// The Cranelift IR of program `prog`'s functions, before optimization.
    pub(crate) fn ir(&self, codes: &[Code], prog: usize) -> String {
        let c = &self.compiled;
        let env = env(&self.isa, codes, c.facts, &c.local_targets, c.mode, c.budget);
        let lookup = |p: usize, q: usize| {
            c.index.get(&(p, q)).or_else(|| self.lazy_index.get(&(p, q))).copied()
        };
        let mut out = String::new();
        let mut fctx = FunctionBuilderContext::new();
        for pc in self.entries_of(prog) {
            let plan = Plan::new(&codes[prog], prog, pc);
            let mut func = cranelift_codegen::ir::Function::new();
            func.signature = fn_signature(&*self.isa);
            translate(&env, &plan, &mut func, &mut fctx, &lookup);
            out.push_str(&format!(
                "; program {prog}, function at instruction {pc}\n{}\n",
                func.display()
            ));
        }
        out
    }

    /// The entry slots of program `prog`'s functions, in order.
    fn entries_of(&self, prog: usize) -> Vec<usize> {
        let mut entries: Vec<usize> = self
            .compiled
            .index
            .keys()
            .chain(self.lazy_index.keys())
            .filter(|(p, _)| *p == prog)
            .map(|&(_, pc)| pc)
            .collect();
        entries.sort_unstable();
        entries
    }

    /// The native code of program `prog`'s functions, as Cranelift prints it.
    pub(crate) fn disassemble(&self, codes: &[Code], prog: usize) -> Result<String, JitError> {
        let c = &self.compiled;
        let env = env(&self.isa, codes, c.facts, &c.local_targets, c.mode, c.budget);
        let lookup = |p: usize, q: usize| {
            c.index.get(&(p, q)).or_else(|| self.lazy_index.get(&(p, q))).copied()
        };
        let entries = self.entries_of(prog);
        let mut out = String::new();
        let mut fctx = FunctionBuilderContext::new();
        for pc in entries {
            let plan = Plan::new(&codes[prog], prog, pc);
            let mut ctx = cranelift_codegen::Context::new();
            ctx.func.signature = fn_signature(&*self.isa);
            ctx.set_disasm(true);
            translate(&env, &plan, &mut ctx.func, &mut fctx, &lookup);
            let fail = |message: String| JitError::Compile { prog, pc, message };
            let code = ctx
                .compile(&*self.isa, &mut ControlPlane::default())
                .map_err(|e| fail(format!("{:?}", e.inner)))?;
            out.push_str(&format!(
                "; program {prog}, function at instruction {pc}: {} bytes\n",
                code.code_buffer().len()
            ));
            out.push_str(code.vcode.as_deref().unwrap_or("; (no disassembly)\n"));
            out.push('\n');
        }
        Ok(out)
    }
}
