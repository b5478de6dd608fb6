/**
 * The benchmark's results as JSON types, and their markdown for docs/performance.md.
 * `run.ts` writes the markdown between the markers `<!-- bench:begin -->` and
 * `<!-- bench:end -->`, leaving the rest of the page (hand-written notes) as it is.
 */
import type { VNCAOptions } from '../src/index.js';
import type { CheckpointResult, MemoryReading, MicroRow, Profile } from './jobs.js';
import { gflops } from './flops.js';

/** The PyTorch side of a row. */
export interface PeerResult {
  ms: number[];
  medianMs?: number;
  /** CPU time of each run, both threads together, ms. */
  cpuMs?: number[];
  medianCpuMs?: number;
  peakRss?: number;
  threads?: number;
  /** MACs PyTorch executes (no checkpointing). */
  macs: number;
  loss?: number;
  error?: string;
}

/** One row of the main table. */
export interface RowResult {
  id: string;
  model: string;
  options: VNCAOptions;
  backend: string;
  /** Threads of the experimental multi-threaded wasm build; absent for the normal backend. */
  threads?: number;
  /** ParallelVNCA's worker threads besides the main one; absent for the model's own methods. */
  workers?: number;
  /** `process.version` of the job's process (absent in results from before it was recorded: the run's Node). */
  node?: string;
  /**
   * A row with the relaxed-SIMD FMA kernels (`enableRelaxedSimdKernels()`, in every thread): the
   * job checked that they were on, or the row has an `error`. Absent: off (XNNPACK's kernels).
   */
  relaxedSimd?: boolean;
  kind: 'train' | 'generate';
  batch: number;
  runs: number;
  warmupBatch: number;
  /** MACs of one call on our side (training includes the checkpointing recompute). */
  macs: number;
  /** Wall time of the whole job (process start, warm-up, runs), ms. */
  wallMs: number;
  ms?: number[];
  medianMs?: number;
  /** CPU time of each run (user + system), ms. */
  cpuMs?: number[];
  medianCpuMs?: number;
  memory?: MemoryReading;
  kernelCalls?: number;
  /** Training: whether the rollout was checkpointed (checkpoint 'auto' decides by memory). */
  checkpointed?: boolean;
  loss?: number;
  profile?: Profile;
  error?: string;
  peer?: PeerResult;
}

export interface Report {
  quick: boolean;
  started: string;
  finished: string;
  environment: {
    node: string;
    tfjs: string;
    tfjsWasm: string;
    torch: string | null;
    peerThreads: number;
    /** `--version` of the --node24 binary that ran the relaxed-SIMD rows; null or absent: none. */
    node24?: string | null;
    cpu: string;
    cores: number;
    priority: number;
    loadAvgStart: number[];
    loadAvgEnd: number[];
  };
  settings: { runs: number; slowRuns: number; sections: string[]; wasmThreads?: number; workers?: number; node24?: boolean };
  /** Earlier runs whose sections were kept by `--merge`. */
  merged?: { started: string; finished: string; sections: string[] }[];
  rows: RowResult[];
  checkpoint?: {
    model: string;
    options: VNCAOptions;
    batch: number;
    backend: string;
    entries: { stepsPerDoubling: number; steps: number; entries: CheckpointResult['entries']; error?: string }[];
  };
  noCheckpoint?: {
    batch: number;
    wallMs: number;
    ms?: number[];
    memory?: MemoryReading;
    error?: string;
    failedAfterMs?: number;
    failedAfterCpuMs?: number;
  };
  micro?: { backend: string; rows: MicroRow[]; error?: string }[];
}

/** Training within 2x of PyTorch, generation within 1.5x; resolve thresholds 4x and 3x. */
export const TARGETS = { train: { target: 2, threshold: 4 }, generate: { target: 1.5, threshold: 3 } } as const;

const BEGIN = '<!-- bench:begin -->';
const END = '<!-- bench:end -->';

const mib = (b: number | undefined): string => (b === undefined ? '' : (b / 2 ** 20).toFixed(b < 10 * 2 ** 20 ? 1 : 0));
const fmtMs = (ms: number | undefined): string => {
  if (ms === undefined) return '';
  if (ms >= 10_000) return `${(ms / 1000).toFixed(1)} s`;
  return ms >= 100 ? ms.toFixed(0) : ms.toFixed(1);
};
const f1 = (v: number): string => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
const pct = (part: number, whole: number): string => `${((100 * part) / whole).toFixed(1)}%`;
const major = (version: string): string => version.replace(/^v/, '').split('.')[0]!;
/** The backend column: "wasm", "wasm, Node 24 + FMA kernels, ParallelVNCA (2 threads)", ... */
const backendName = (row: RowResult): string =>
  `${row.backend}${row.relaxedSimd ? `, Node ${row.node ? major(row.node) : '?'} + FMA kernels` : ''}` +
  `${row.threads ? `, ${row.threads} threads (experiment)` : ''}${row.workers ? `, ParallelVNCA (${row.workers + 1} threads)` : ''}`;
/** The Node column: the version that ran the row, and on wasm whether the FMA kernels were on. */
const nodeAndKernels = (row: RowResult, r: Report): string =>
  `${row.node ?? r.environment.node}${row.backend === 'wasm' ? `, FMA ${row.relaxedSimd ? (row.error ? 'asked for' : 'on') : 'off'}` : ''}`;

function modelDescription(name: string, options: VNCAOptions): string {
  const entries = Object.entries(options);
  return entries.length === 0 ? `${name} (\`new VNCA()\`)` : `${name} (${entries.map(([k, v]) => `${k} ${JSON.stringify(v)}`).join(', ')})`;
}

function verdict(kind: 'train' | 'generate', ratio: number): string {
  const t = TARGETS[kind];
  if (ratio <= t.target) return `meets ${t.target}x`;
  if (ratio <= t.threshold) return `within ${t.threshold}x`;
  return `over ${t.threshold}x`;
}

function table(head: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}

function mainTable(r: Report): string {
  const rows = r.rows.map((row) => {
    const ours = row.medianMs;
    const peer = row.peer?.medianMs;
    const ratio = ours !== undefined && peer !== undefined ? ours / peer : undefined;
    return [
      row.model, backendName(row), nodeAndKernels(row, r), row.kind === 'train' ? 'trainStep' : 'sample', String(row.batch),
      row.error ? `failed: ${row.error.slice(0, 120)}` : `${fmtMs(ours)}`,
      row.peer?.error ? 'failed' : fmtMs(peer),
      ratio === undefined ? '' : `**${ratio.toFixed(2)}x**`,
      ratio === undefined ? '' : verdict(row.kind, ratio),
      ours === undefined ? '' : f1((1000 * row.batch) / ours),
      peer === undefined ? '' : f1((1000 * row.batch) / peer),
      ours === undefined ? '' : f1(gflops(row.macs, ours)),
      peer === undefined || !row.peer ? '' : f1(gflops(row.peer.macs, peer)),
      `${row.ms?.length ?? 0}${row.peer?.ms.length ? ` / ${row.peer.ms.length}` : ''}`,
    ];
  });
  // The paper's model on tfjs-backend-cpu is not run: estimate it from the small model's rate.
  for (const kind of ['train', 'generate'] as const) {
    const small = r.rows.find((x) => x.backend === 'cpu' && x.kind === kind && x.medianMs !== undefined);
    const paper = r.rows.filter((x) => x.backend === 'wasm' && !x.threads && !x.workers && !x.relaxedSimd && x.model === 'paper' && x.kind === kind);
    if (!small || paper.length === 0) continue;
    const rate = gflops(small.macs, small.medianMs!);
    for (const p of paper) {
      const est = (2 * p.macs) / (rate * 1e6);
      const peer = p.peer?.medianMs;
      rows.push([
        p.model, 'cpu', r.environment.node, kind === 'train' ? 'trainStep' : 'sample', String(p.batch),
        `not run: ~${fmtMs(est)} (est.)`, fmtMs(peer), peer ? `~${(est / peer).toFixed(0)}x` : '', peer ? verdict(kind, est / peer) : '',
        '', '', `${f1(rate)} (small's)`, '', '0',
      ]);
    }
  }
  return table(
    ['model', 'backend', 'Node, FMA kernels', 'call', 'batch', 'ours, ms', 'PyTorch, ms', 'ours / PyTorch', 'target', 'samples/s ours', 'samples/s PyTorch', 'GFLOP/s ours', 'GFLOP/s PyTorch', 'runs (ours / PyTorch)'],
    rows,
  );
}

function memoryTable(r: Report): string {
  return table(
    ['model', 'backend', 'call', 'batch', 'checkpointed', 'tensors before, MiB', 'peak tensors, MiB', 'peak seen at (phase/kernel)', 'peak RSS, MiB', 'wasm heap, MiB', 'PyTorch peak RSS, MiB', 'kernel calls per call'],
    r.rows.map((row) => [
      row.model, backendName(row), row.kind === 'train' ? 'trainStep' : 'sample', String(row.batch),
      row.checkpointed === undefined ? '' : row.checkpointed ? 'yes' : 'no',
      mib(row.memory?.baseBytes), mib(row.memory?.peakBytes), row.memory?.peakAt ?? '', mib(row.memory?.peakRss), mib(row.memory?.wasmHeap),
      mib(row.peer?.peakRss), row.kernelCalls === undefined ? '' : String(row.kernelCalls),
    ]),
  );
}

function cpuTable(r: Report): string {
  return table(
    ['model', 'backend', 'call', 'batch', 'ours: CPU time', 'ours: CPU / wall', 'PyTorch: CPU time (all threads)', 'PyTorch: CPU / wall', 'CPU time ours / PyTorch'],
    r.rows.map((row) => {
      const o = row.medianCpuMs, p = row.peer?.medianCpuMs;
      return [
        row.model, backendName(row), row.kind === 'train' ? 'trainStep' : 'sample', String(row.batch),
        fmtMs(o), o !== undefined && row.medianMs ? (o / row.medianMs).toFixed(2) : '',
        fmtMs(p), p !== undefined && row.peer?.medianMs ? (p / row.peer.medianMs).toFixed(2) : '',
        o !== undefined && p !== undefined ? `${(o / p).toFixed(2)}x` : '',
      ];
    }),
  );
}

function checkpointSection(r: Report): string {
  const c = r.checkpoint;
  if (!c) return '';
  const rows = c.entries.map((e) => {
    if (e.error) return [String(e.stepsPerDoubling), String(e.steps), `failed: ${e.error.slice(0, 100)}`, '', '', '', '', ''];
    const off = e.entries.find((x) => x.checkpoint === false);
    const on = e.entries.find((x) => x.checkpoint === true);
    const offMs = off ? median(off.cpuMs) : undefined;
    const onMs = on ? median(on.cpuMs) : undefined;
    return [
      String(e.stepsPerDoubling), String(e.steps),
      `${mib(off?.memory.peakBytes)}${off?.memory.peakAt ? ` (${off.memory.peakAt})` : ''}`,
      `${mib(on?.memory.peakBytes)}${on?.memory.peakAt ? ` (${on.memory.peakAt})` : ''}`,
      off && on ? `${(off.memory.peakBytes / on.memory.peakBytes).toFixed(1)}x` : '',
      fmtMs(offMs), fmtMs(onMs), offMs && onMs ? `${(100 * (onMs / offMs - 1)).toFixed(0)}%` : '',
    ];
  });
  const base = c.entries.flatMap((e) => e.entries).map((e) => e.memory.baseBytes);
  const lines = [
    `### Gradient checkpointing: peak tensor memory against rollout length`,
    '',
    `${modelDescription(c.model, c.options)}, one \`trainStep\` at batch ${c.batch} on ${c.backend}, stepsPerDoubling varied (rollout steps = stepsPerDoubling x (nDoublings + 1)). ` +
      `Peak tensor bytes are \`tf.memory().numBytes\` sampled at every kernel call of the step; before the step ${mib(Math.min(...base))} MiB are held (weights, Adam moments, batch). ` +
      'Times are CPU time per step (median), so that the cost of the recompute is not hidden by machine load.',
    '',
    table(['stepsPerDoubling', 'rollout steps', 'peak, checkpoint false, MiB', 'peak, checkpoint true, MiB', 'saved', 'CPU ms, false', 'CPU ms, true', 'recompute cost'], rows),
  ];
  const paper32 = r.rows.find((x) => x.model === 'paper' && x.backend === 'wasm' && !x.threads && !x.workers && !x.relaxedSimd && x.kind === 'train' && x.batch === 32);
  if (paper32 || r.noCheckpoint) lines.push('', '### The paper\'s model at batch 32 on wasm', '');
  if (paper32?.memory) {
    lines.push(`- checkpoint 'auto' (the default; it checkpoints this rollout): one \`trainStep\` took ${fmtMs(paper32.medianMs)}; peak tensors ${mib(paper32.memory.peakBytes)} MiB, ` +
      `wasm heap ${mib(paper32.memory.wasmHeap)} MiB of the 4096 MiB the wasm32 backend can address, peak RSS ${mib(paper32.memory.peakRss)} MiB.`);
  } else if (paper32) {
    lines.push(`- checkpoint true: ${paper32.error ?? 'not run'}`);
  }
  const n = r.noCheckpoint;
  if (n) {
    if (n.error) {
      lines.push(`- checkpoint false: **failed** after ${fmtMs(n.failedAfterMs ?? n.wallMs)}${n.failedAfterCpuMs ? ` (${fmtMs(n.failedAfterCpuMs)} of CPU)` : ''}` +
        `${n.memory ? ` with ${mib(n.memory.peakBytes)} MiB of live tensors (wasm heap ${mib(n.memory.wasmHeap)} MiB)` : ''}: \`${n.error.slice(0, 300)}\``);
    } else if (n.ms) {
      lines.push(`- checkpoint false: completed in ${fmtMs(median(n.ms))}, peak tensors ${mib(n.memory?.peakBytes)} MiB, wasm heap ${mib(n.memory?.wasmHeap)} MiB.`);
    }
  }
  return lines.join('\n');
}

function profileSection(r: Report): string {
  const row = r.rows.find((x) => x.profile);
  if (!row?.profile) return '';
  const p = row.profile;
  const phases = new Map<string, number>();
  const kernels = new Map<string, { cpuMs: number; calls: number }>();
  for (const k of p.rows) {
    phases.set(k.phase, (phases.get(k.phase) ?? 0) + k.cpuMs);
    const e = kernels.get(k.kernel) ?? { cpuMs: 0, calls: 0 };
    e.cpuMs += k.cpuMs;
    e.calls += k.calls;
    kernels.set(k.kernel, e);
  }
  const total = p.totalCpuMs;
  const outside = total - p.kernelCpuMs;
  const phaseRows = [...phases.entries()].sort((a, b) => b[1] - a[1]).map(([ph, ms]) => [ph, fmtMs(ms), pct(ms, total)]);
  phaseRows.push(['outside kernels (tfjs engine, tape, JS, GC)', fmtMs(outside), pct(outside, total)]);
  const kernelRows = [...kernels.entries()].sort((a, b) => b[1].cpuMs - a[1].cpuMs).slice(0, 15)
    .map(([k, e]) => [k, String(e.calls), fmtMs(e.cpuMs), pct(e.cpuMs, total)]);
  const detailRows = p.rows.slice(0, 30).map((k) => [k.phase, k.kernel, k.label, String(k.calls), fmtMs(k.cpuMs), pct(k.cpuMs, total)]);
  return [
    `### Where the time goes: one ${row.kind === 'train' ? 'trainStep' : 'sample'} of ${modelDescription(row.model, row.options)}, batch ${row.batch}, on ${row.backend}`,
    '',
    `Every kernel of the backend wrapped; times are self CPU times of the process (\`process.cpuUsage()\` around the kernel function; a kernel built from other kernels is charged only for its own work), ` +
      `so waiting for a busy core does not count. The profiled call used ${fmtMs(total)} of CPU in ${fmtMs(p.totalMs)} of wall time ` +
      `(unprofiled: median ${fmtMs(row.medianMs)} wall, ${fmtMs(row.medianCpuMs)} CPU); ${fmtMs(p.kernelCpuMs)} of CPU inside kernels. ` +
      `Phases come from the engine's scopes: forward, backward, recompute (checkpointing's second forward inside the backward pass), other (Adam, clipping, reading the loss).`,
    '',
    table(['phase', 'CPU time', 'share'], phaseRows),
    '',
    table(['kernel (all phases)', 'calls', 'CPU time', 'share'], kernelRows),
    '',
    'The 30 largest (phase, kernel, kind of call) entries:',
    '',
    table(['phase', 'kernel', 'what', 'calls', 'CPU time', 'share'], detailRows),
  ].join('\n');
}

function microSection(r: Report): string {
  if (!r.micro) return '';
  const parts = [
    '### Kernel micro-benchmarks',
    '',
    'Median of several calls after two warm-up calls, wall and CPU time; GFLOP/s (2 FLOP per MAC) from the CPU time.',
  ];
  for (const m of r.micro) {
    parts.push('', `**${m.backend}**${m.error ? `: failed: ${m.error}` : ''}`, '');
    if (m.rows.length > 0) {
      parts.push(table(['group', 'case', 'shape', 'ms wall', 'ms CPU', 'GFLOP/s'],
        m.rows.map((x) => [x.group, x.name, x.shape, x.ms.toFixed(2), x.cpuMs.toFixed(2), x.macs > 0 ? f1(gflops(x.macs, x.cpuMs)) : ''])));
    }
  }
  return parts.join('\n');
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** The generated markdown of a report. */
export function renderReport(r: Report): string {
  const e = r.environment;
  const minutes = (Date.parse(r.finished) - Date.parse(r.started)) / 60_000;
  const models = [...new Map(r.rows.map((x) => [x.model, x.options])).entries()].map(([n, o]) => modelDescription(n, o));
  const parts = [
    `_Generated by \`npm run bench${r.quick ? ' -- --quick' : ''}\` on ${r.started.slice(0, 16).replace('T', ' ')} UTC in ${minutes.toFixed(1)} min; raw numbers in \`bench/results/\`._`,
    '',
    `Machine: ${e.cpu}, ${e.cores} cores; load average ${e.loadAvgStart.map((v) => v.toFixed(1)).join(' ')} at the start, ${e.loadAvgEnd.map((v) => v.toFixed(1)).join(' ')} at the end; process priority (nice) ${e.priority}. ` +
      `Node ${e.node}${e.node24 ? ` (the FMA rows: Node ${e.node24})` : ''}, tfjs ${e.tfjs} (wasm backend ${e.tfjsWasm}, single-threaded in Node), ${e.torch ? `PyTorch ${e.torch} with ${e.peerThreads} threads` : 'PyTorch peer not available'}.`,
    '',
    ...(r.merged?.length ? [`This run measured: ${r.settings.sections.join(', ')}. The other parts come from earlier runs (\`--merge\`): ${r.merged.map((m) => `${m.sections.join(', ')} from ${m.started.slice(0, 16).replace('T', ' ')} UTC`).join('; ')}.`, ''] : []),
    `Models: ${models.join('; ')}. Timed runs: ${r.settings.runs} for fast rows, ${r.settings.slowRuns} for slow rows (after a warm-up call; slow rows warm up on batch 1); the table shows medians.`,
    '',
    '### Time',
    '',
    ...(r.rows.some((x) => x.threads) ? [
      'Rows marked "threads (experiment)" run tfjs-backend-wasm\'s multi-threaded build, which the package turns off in Node; ' +
        '`bench/wasmThreads.ts` starts it through work-arounds the library does not have. They show what threads would buy, not what users get today.',
      '',
    ] : []),
    ...(r.rows.some((x) => x.relaxedSimd) ? [
      `Rows marked "Node ${e.node24 ? major(e.node24) : '24'} + FMA kernels" run under ${e.node24 ? `Node ${e.node24}` : 'a second Node binary'} (\`--node24\`) with ` +
        '`enableRelaxedSimdKernels()`: our relaxed-SIMD (FMA) matMul and convolution kernels instead of XNNPACK\'s for the large products ' +
        '(see "Relaxed SIMD" below); through ParallelVNCA every worker thread turns them on too. The job fails when they do not turn on. ' +
        'Their PyTorch column is the same peer run as the row without the kernels.',
      '',
    ] : []),
    ...(r.rows.some((x) => x.workers) ? [
      'Rows marked "ParallelVNCA" run the same calls through `ParallelVNCA` (`vnca/node`, see [parallel.md](parallel.md)): the batch split over the main ' +
        'thread and worker threads, each with its own wasm backend, gradients combined once per step. Their memory columns are the main thread\'s only.',
      '',
    ] : []),
    mainTable(r),
    '',
    '### CPU time',
    '',
    'CPU time of the process per call (user + system; PyTorch: both threads together), and how much of the wall time it covers: ' +
      'about 1.0 for single-threaded wasm on an idle core, up to 2.0 for PyTorch with 2 threads; less means the process waited for a core.',
    '',
    cpuTable(r),
    '',
    '### Memory',
    '',
    memoryTable(r),
  ];
  for (const s of [checkpointSection(r), profileSection(r), microSection(r)]) if (s) parts.push('', s);
  return parts.join('\n');
}

/** `doc` with the text between the bench markers replaced by `generated` (markers added if missing). */
export function replaceGenerated(doc: string, generated: string): string {
  const block = `${BEGIN}\n${generated}\n${END}`;
  const i = doc.indexOf(BEGIN);
  const j = doc.indexOf(END);
  if (i >= 0 && j > i) return `${doc.slice(0, i)}${block}${doc.slice(j + END.length)}`;
  const head = doc.trim() === '' ? '# Performance\n\n' : `${doc.trimEnd()}\n\n`;
  return `${head}## Results\n\n${block}\n`;
}
