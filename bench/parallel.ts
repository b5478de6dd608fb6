/**
 * ParallelVNCA against the model's own methods, side by side in one process:
 *
 *     npx tsx bench/parallel.ts [--quick] [--models paper,small] [--backend wasm|cpu] [--workers N] [--out path.json]
 *
 * For each model, after one warm-up call of each side, the two sides alternate
 * (`model.trainStep`, `par.trainStep`, `model.trainStep`, ...) and the medians of their runs are
 * compared; then the same for `model.sample` / `par.sample`. Wall time from `performance.now()`,
 * CPU time from `process.cpuUsage()` (user + system of every thread of the process, the
 * workers included). Full runs write bench/results/parallel-latest.json; `--quick` (by
 * default the small model only, fewer runs) writes nothing unless `--out` is given.
 * `--models` picks the models. Prints a markdown table whose last column, the parallel side's
 * CPU / wall, tells whether the threads had two cores (near 2) or shared one (near 1).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { VNCA, type VNCAOptions } from '../src/index.js';
import { ParallelVNCA } from '../src/node.js';

interface Case {
  id: string;
  options: VNCAOptions;
  batch: number;
  trainRuns: number;
  sampleRuns: number;
}

interface Side {
  wallMs: number[];
  cpuMs: number[];
  medianWallMs: number;
  medianCpuMs: number;
}

interface Row {
  model: string;
  op: 'trainStep' | 'sample';
  n: number;
  runs: number;
  single: Side;
  parallel: Side;
  /** single / parallel median wall time: > 1 means the parallel side is faster. */
  wallSpeedup: number;
  /** parallel / single median CPU time: the extra CPU the threads spend. */
  cpuRatio: number;
  /**
   * Median CPU / wall of the parallel side: near 2 with two threads on two free cores; near
   * 1 when they had one core between them (other work on the machine).
   */
  parallelCpuPerWall: number;
}

const args = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const quick = args.includes('--quick');
const backend = flag('--backend') ?? 'wasm';
const workers = Number(flag('--workers') ?? Math.max(1, os.availableParallelism() - 1));
const out = flag('--out') ?? (quick ? undefined : path.join('bench', 'results', 'parallel-latest.json'));

const models = (flag('--models') ?? (quick ? 'small' : 'paper,small')).split(',');
const CASES: Case[] = [
  { id: 'paper', options: {}, batch: 4, trainRuns: quick ? 1 : 3, sampleRuns: quick ? 1 : 3 },
  { id: 'small', options: { zSize: 32, hidden: 64 }, batch: 8, trainRuns: quick ? 3 : 5, sampleRuns: quick ? 3 : 5 },
].filter((c) => models.includes(c.id));
if (CASES.length === 0) throw new Error(`--models must name paper and/or small, but got ${models.join(',')}`);

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function timed(fn: () => unknown): Promise<{ wall: number; cpu: number }> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await fn();
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return { wall, cpu: (c.user + c.system) / 1000 };
}

function side(samples: { wall: number; cpu: number }[]): Side {
  const wallMs = samples.map((s) => Math.round(s.wall));
  const cpuMs = samples.map((s) => Math.round(s.cpu));
  return { wallMs, cpuMs, medianWallMs: median(wallMs), medianCpuMs: median(cpuMs) };
}

/** Alternates the two sides `runs` times after one warm-up call of each. */
async function compare(
  model: string, op: Row['op'], n: number, runs: number, single: () => unknown, parallel: () => unknown,
): Promise<Row> {
  await timed(single);
  await timed(parallel);
  const a: { wall: number; cpu: number }[] = [];
  const b: { wall: number; cpu: number }[] = [];
  for (let i = 0; i < runs; i++) {
    a.push(await timed(single));
    b.push(await timed(parallel));
    process.stderr.write(`  ${model} ${op} run ${i + 1}/${runs}: ${Math.round(a[i]!.wall)} ms vs ${Math.round(b[i]!.wall)} ms\n`);
  }
  const s = side(a), p = side(b);
  return {
    model, op, n, runs, single: s, parallel: p,
    wallSpeedup: Number((s.medianWallMs / p.medianWallMs).toFixed(2)),
    cpuRatio: Number((p.medianCpuMs / s.medianCpuMs).toFixed(2)),
    parallelCpuPerWall: Number(median(b.map((r) => r.cpu / r.wall)).toFixed(2)),
  };
}

async function main(): Promise<void> {
  if (!(await tf.setBackend(backend))) throw new Error(`backend ${backend} did not start`);
  await tf.ready();
  const started = new Date().toISOString();
  const loadAvgStart = os.loadavg().map((v) => Number(v.toFixed(2)));
  const rows: Row[] = [];
  const startup: Record<string, number> = {};
  for (const c of CASES) {
    process.stderr.write(`${c.id}: batch ${c.batch}, ${workers} worker(s) on ${backend}\n`);
    const model = new VNCA(c.options);
    const t0 = performance.now();
    const par = await ParallelVNCA.create(model, { workers, backend });
    startup[c.id] = Math.round(performance.now() - t0);
    const x = tf.tidy(() => tf.cast(tf.greater(tf.randomUniform([c.batch, 32, 32, 1], 0, 1, 'float32', 1), 0.5), 'float32') as tf.Tensor4D);
    try {
      rows.push(await compare(c.id, 'trainStep', c.batch, c.trainRuns, () => model.trainStep(x), () => par.trainStep(x)));
      rows.push(await compare(c.id, 'sample', c.batch, c.sampleRuns,
        () => model.sample(c.batch).dispose(), async () => (await par.sample(c.batch)).dispose()));
    } finally {
      x.dispose();
      await par.dispose();
      model.dispose();
    }
  }
  const result = {
    quick, models, started, finished: new Date().toISOString(),
    environment: {
      node: process.version, cpu: os.cpus()[0]?.model.trim(), cores: os.availableParallelism(), backend, workers,
      loadAvgStart, loadAvgEnd: os.loadavg().map((v) => Number(v.toFixed(2))),
    },
    workerStartupMs: startup,
    rows,
  };
  if (out) {
    mkdirSync(path.dirname(out), { recursive: true });
    writeFileSync(out, `${JSON.stringify(result, null, 1)}\n`);
  }
  const lines = [
    `ParallelVNCA (${workers} worker${workers === 1 ? '' : 's'} + main thread) vs the model alone, ${backend}, ${result.environment.cores} cores, load ${loadAvgStart.join('/')} → ${result.environment.loadAvgEnd.join('/')}`,
    '',
    '| model | call | n | runs | alone: wall ms | parallel: wall ms | speedup | alone: CPU ms | parallel: CPU ms | CPU ratio | parallel: CPU / wall |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.model} | ${r.op} | ${r.n} | ${r.runs} | ${r.single.medianWallMs} | ${r.parallel.medianWallMs} | ${r.wallSpeedup}x | ${r.single.medianCpuMs} | ${r.parallel.medianCpuMs} | ${r.cpuRatio} | ${r.parallelCpuPerWall} |`),
    '',
    `Worker start-up (ParallelVNCA.create): ${Object.entries(startup).map(([k, v]) => `${k} ${v} ms`).join(', ')}.${out ? ` Written to ${out}.` : ''}`,
  ];
  console.log(lines.join('\n'));
}

await main();
