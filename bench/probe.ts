/**
 * A kernel probe: wraps every kernel registered for one tfjs backend, so that each kernel
 * call (all of them are synchronous on cpu and wasm) can
 * - sample `tf.memory().numBytes` (bytes held by live tensors) and the process RSS, giving
 *   the peak inside a step that plain before/after readings miss, and
 * - add its wall and CPU time to a per-kernel total, split by the phase it ran in (CPU time
 *   of the process, read with `process.cpuUsage()`, stays meaningful on a loaded machine
 *   where wall time includes waiting for a core).
 *
 * Phases come from the tfjs engine's scope stack: `tf.grads` / `tf.variableGrads` run the
 * forward pass in a scope named `'forward'` and backpropagation in one named `'backward'`.
 * A `'forward'` scope inside a `'backward'` one is gradient checkpointing recomputing a
 * segment. Kernels outside both are `'other'` (optimiser, clipping, or plain inference).
 *
 * Times are self times: a kernel that runs other kernels (the training kernels
 * `enableWasmTraining` registers are written with tfjs ops) is charged only for its own
 * work. Install the probe after every kernel of interest is registered; kernels registered
 * later are not wrapped.
 */
import * as tf from '@tensorflow/tfjs-core';

/** Where a kernel call ran. */
export type Phase = 'forward' | 'backward' | 'recompute' | 'other';

/** Totals for one (phase, kernel, label) key. */
export interface KernelStat {
  phase: Phase;
  kernel: string;
  /** Finer description (e.g. the conv's filter size), from the label function. */
  label: string;
  calls: number;
  /** Self time (wall clock), ms. */
  ms: number;
  /** Self CPU time of the process (user + system), ms: robust against waiting for a busy core. */
  cpuMs: number;
}

/** Describes a kernel call for the profile (shapes of the inputs, attributes). */
export type LabelFn = (kernel: string, inputs: tf.NamedTensorInfoMap, attrs: tf.NamedAttrMap | undefined, phase: Phase) => string;

/** What the probe does at each kernel call. */
export interface ProbeOptions {
  /** Sample tensor bytes and RSS. Default true. */
  memory?: boolean;
  /** Time kernels (self time per phase/kernel/label). Default false. */
  time?: boolean;
  /** Label of a kernel call for the time table. Default: none (kernel name only). */
  label?: LabelFn;
  /** Minimum ms between two RSS readings (reading it is a system call). Default 2. */
  rssEveryMs?: number;
}

type EngineState = { numBytes: number; scopeStack: { name: string }[] };

function phaseOf(state: EngineState): Phase {
  const stack = state.scopeStack;
  for (let i = stack.length - 1; i >= 0; i--) {
    const name = stack[i]!.name;
    if (name === 'backward') return 'backward';
    if (name === 'forward') {
      for (let j = i - 1; j >= 0; j--) if (stack[j]!.name === 'backward') return 'recompute';
      return 'forward';
    }
  }
  return 'other';
}

/** Wraps the kernels of a backend; see the module comment. */
export class KernelProbe {
  /** Highest `tf.memory().numBytes` seen since the last reset. */
  peakBytes = 0;
  /** Where that peak was seen: `phase/kernel` of the kernel call about to run. */
  peakAt = '';
  /** Highest RSS (bytes) seen since the last reset. */
  peakRss = 0;
  /** Kernel calls since the last reset. */
  calls = 0;
  /** Kernel calls since the last reset made while a backward pass recomputes a forward (checkpointing). */
  recomputeCalls = 0;
  private stats = new Map<string, KernelStat>();
  private originals: tf.KernelConfig[] = [];
  private lastRss = 0;
  private readonly opts: Required<Omit<ProbeOptions, 'label'>> & { label?: LabelFn };

  constructor(readonly backendName: string, options: ProbeOptions = {}) {
    this.opts = { memory: true, time: false, rssEveryMs: 2, ...options };
  }

  /** Takes one memory reading now (`kernel`: the kernel about to run, if any). */
  sample(kernel = ''): void {
    const bytes = tf.memory().numBytes;
    if (bytes > this.peakBytes) {
      this.peakBytes = bytes;
      this.peakAt = `${phaseOf((tf.engine() as unknown as { state: EngineState }).state)}/${kernel}`;
    }
    const now = performance.now();
    if (now - this.lastRss >= this.opts.rssEveryMs) {
      this.lastRss = now;
      const rss = process.memoryUsage.rss();
      if (rss > this.peakRss) this.peakRss = rss;
    }
  }

  /** Clears peaks and times; takes a first reading. */
  reset(): void {
    this.peakBytes = 0;
    this.peakAt = '';
    this.peakRss = 0;
    this.calls = 0;
    this.recomputeCalls = 0;
    this.lastRss = -Infinity;
    this.stats.clear();
    this.sample();
  }

  /** Per (phase, kernel, label) self times, largest CPU time first. */
  kernelStats(): KernelStat[] {
    return [...this.stats.values()].sort((a, b) => b.cpuMs - a.cpuMs);
  }

  /** Wraps every kernel currently registered for the backend. */
  install(): void {
    if (this.originals.length > 0) return;
    const engineState = (tf.engine() as unknown as { state: EngineState }).state;
    const probe = this;
    const stack: number[] = []; // wall and CPU time of the children of each open kernel call, in pairs
    for (const config of tf.getKernelsForBackend(this.backendName)) {
      this.originals.push(config);
      const inner = config.kernelFunc;
      const kernelName = config.kernelName;
      const wrapped: tf.KernelFunc = (args) => {
        probe.calls++;
        if (probe.opts.memory) {
          probe.sample(kernelName);
          if (phaseOf(engineState) === 'recompute') probe.recomputeCalls++;
        }
        if (!probe.opts.time) return inner(args);
        const phase = phaseOf(engineState);
        const label = probe.opts.label ? probe.opts.label(kernelName, args.inputs, args.attrs, phase) : '';
        stack.push(0, 0);
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        try {
          return inner(args);
        } finally {
          const total = performance.now() - t0;
          const c = process.cpuUsage(c0);
          const totalCpu = (c.user + c.system) / 1000;
          const childCpu = stack.pop()!;
          const child = stack.pop()!;
          if (stack.length > 0) {
            stack[stack.length - 2]! += total;
            stack[stack.length - 1]! += totalCpu;
          }
          const key = `${phase}\u0000${kernelName}\u0000${label}`;
          let s = probe.stats.get(key);
          if (!s) probe.stats.set(key, (s = { phase, kernel: kernelName, label, calls: 0, ms: 0, cpuMs: 0 }));
          s.calls++;
          s.ms += total - child;
          s.cpuMs += totalCpu - childCpu;
        }
      };
      tf.unregisterKernel(kernelName, this.backendName);
      tf.registerKernel({ ...config, kernelFunc: wrapped });
    }
  }

  /** Puts the original kernels back. */
  uninstall(): void {
    for (const config of this.originals) {
      tf.unregisterKernel(config.kernelName, this.backendName);
      tf.registerKernel(config);
    }
    this.originals = [];
  }
}
