/**
 * Runs one benchmark job (see `jobs.ts`) in this process and prints its result as one line
 * `@@bench-result {json}`. Started by `bench/run.ts`:
 *
 *     tsx bench/worker.ts '<job json>'
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { VNCA, enableRelaxedSimdKernels, enableWasmTraining, isRelaxedSimdEnabled } from '../src/index.js';
import { ParallelVNCA } from '../src/node.js';
import { KernelProbe, type Phase } from './probe.js';
import { micro } from './micro.js';
import { startThreadedWasm } from './wasmThreads.js';
import {
  RESULT_MARK, type CheckpointJob, type CheckpointResult, type Job, type JobResult, type MemoryReading,
  type TimedJob, type TimedResult,
} from './jobs.js';

function wasmHeapBytes(): number | undefined {
  const b = tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } };
  return b.wasm?.HEAPU8?.buffer.byteLength;
}

/** Random binary images `[n, size, size, channels]` (values do not change the work done). */
function binaryImages(n: number, size: number, channels: number, seed: number): tf.Tensor4D {
  return tf.tidy(() => tf.cast(tf.greater(tf.randomUniform([n, size, size, channels], 0, 1, 'float32', seed), 0.5), 'float32') as tf.Tensor4D);
}

function shapeOf(info: tf.TensorInfo | undefined): number[] {
  return info ? info.shape : [];
}

/**
 * A label that tells the convolutions and matMuls of a VNCA step apart: the update rule's
 * 1x1 convs are `fastConv2d` matMuls whose gradients are matMuls again (the filter gradient
 * has the long `batch * h * w` inner dimension); its 3x3 conv and all gradients of it are
 * forward convs (the filter gradient uses dy as a `[h, w, batch, c]` filter); the encoder's
 * 5x5 convs use tf.conv2d and its registered gradients.
 */
function label(kernel: string, inputs: tf.NamedTensorInfoMap, attrs: tf.NamedAttrMap | undefined, _phase: Phase): string {
  if (kernel === 'Conv2D' || kernel === 'FusedConv2D') {
    const [fh, fw, ci, co] = shapeOf(inputs['filter']);
    const x = shapeOf(inputs['x']);
    // A filter gradient computed as a conv: 'valid', dy as the filter, a kernel-sized output.
    const outH = x[1]! - fh! + 1;
    if (attrs?.['pad'] === 'valid' && fh! > 1 && outH <= 7 && outH < fh!) {
      return `filter gradient as a conv: x [${x.join(',')}], dy as the filter [${fh},${fw},${ci},${co}]`;
    }
    const s = attrs?.['strides'];
    const stride = Array.isArray(s) ? s[0] : s;
    return `${fh}x${fw} conv ${ci}->${co}${stride && stride !== 1 ? ` stride ${stride}` : ''}`;
  }
  if (kernel === '_FusedMatMul' || kernel === 'BatchMatMul') {
    const a = shapeOf(inputs['a']), b = shapeOf(inputs['b']);
    const ta = attrs?.['transposeA'] === true, tb = attrs?.['transposeB'] === true;
    const m = ta ? a[a.length - 1]! : a[a.length - 2]!;
    const k = ta ? a[a.length - 2]! : a[a.length - 1]!;
    const n = tb ? b[b.length - 2]! : b[b.length - 1]!;
    const act = kernel === '_FusedMatMul' ? ` +bias${attrs?.['activation'] && attrs['activation'] !== 'linear' ? `+${String(attrs['activation'])}` : ''}` : '';
    const flags = `${ta ? ' transposeA' : ''}${tb ? ' transposeB' : ''}`;
    if (k > Math.max(m, n)) return `matMul long k (a filter gradient) ${m}x${n}${flags}${act}`;
    return `matMul k=${k}${flags}${act}`;
  }
  if (kernel === 'Conv2DBackpropInput' || kernel === 'Conv2DBackpropFilter') {
    const f = kernel === 'Conv2DBackpropInput' ? shapeOf(inputs['filter']) : ((attrs?.['filterShape'] as number[]) ?? []);
    return `filter [${f.join(',')}]`;
  }
  return '';
}

async function setup(backend: string, threads = 1): Promise<void> {
  if (backend === 'wasm' && threads > 1) {
    const got = await startThreadedWasm(threads);
    log(`wasm backend with ${got} threads`);
  } else {
    if (!(await tf.setBackend(backend))) throw new Error(`could not start the ${backend} backend`);
    await tf.ready();
  }
  if (backend === 'wasm') enableWasmTraining();
}

function memoryAfter(probe: KernelProbe, baseBytes: number): MemoryReading {
  probe.sample();
  const m: MemoryReading = { baseBytes, peakBytes: probe.peakBytes, peakAt: probe.peakAt, peakRss: probe.peakRss };
  const heap = wasmHeapBytes();
  if (heap !== undefined) m.wasmHeap = heap;
  return m;
}

/**
 * Turns on the relaxed-SIMD FMA kernels (after setup's `enableWasmTraining()`, so that the 3x3
 * filter gradient is replaced too), or fails: a row labelled "FMA kernels" must have run them.
 */
async function relaxedSimdOrFail(job: TimedJob): Promise<void> {
  if (job.backend !== 'wasm' || job.threads) throw new Error(`relaxedSimd rows run on the single-threaded wasm backend, not ${job.backend}${job.threads ? ` with ${job.threads} threads` : ''}`);
  if (!(await enableRelaxedSimdKernels())) {
    throw new Error(`FMA kernels off: Node ${process.version} has no relaxed SIMD (enableRelaxedSimdKernels() returned false; Node 22+ has it)`);
  }
  log(`relaxed-SIMD FMA kernels on (Node ${process.version})`);
}

async function timed(job: TimedJob): Promise<TimedResult> {
  await setup(job.backend, job.threads);
  if (job.relaxedSimd) await relaxedSimdOrFail(job);
  const model = new VNCA(job.model.options);
  const c = model.config;
  const batch = job.kind === 'train' ? binaryImages(job.batch, c.imageSize, c.imageChannels, 1) : null;
  // ParallelVNCA rows: the same calls, split over the main thread and `workers` worker threads
  // (which follow the main thread's relaxed-SIMD kernels).
  const par = job.workers ? await ParallelVNCA.create(model, { workers: job.workers }) : null;
  if (job.relaxedSimd && par && !par.relaxedSimd.every((on) => on)) {
    await par.dispose();
    throw new Error(`the relaxed-SIMD kernels did not turn on in every ParallelVNCA worker: [${par.relaxedSimd.join(', ')}]`);
  }
  // What ran: the main thread's kernels, and with workers every worker's too.
  const relaxedSimd = isRelaxedSimdEnabled() && (par?.relaxedSimd.every((on) => on) ?? true);
  const trainStep = async (x: tf.Tensor4D) => (par ? await par.trainStep(x) : model.trainStep(x)).loss;
  const once = async (n: number, seed: number): Promise<number | undefined> => {
    if (job.kind === 'train') {
      if (n === job.batch) return trainStep(batch!);
      const small = binaryImages(n, c.imageSize, c.imageChannels, seed);
      try {
        return await trainStep(small);
      } finally {
        small.dispose();
      }
    }
    const x = par ? await par.sample(n, { seed }) : model.sample(n, { seed });
    x.dataSync();
    x.dispose();
    return undefined;
  };
  if (job.warmupBatch > 0) await once(job.warmupBatch, 7);

  const probe = new KernelProbe(job.backend, { memory: true });
  if (job.memoryProbe) probe.install();
  const ms: number[] = [];
  const cpuMs: number[] = [];
  let loss: number | undefined;
  let memory: MemoryReading | undefined;
  let kernelCalls = 0;
  let recomputeCalls = 0;
  for (let i = 0; i < job.runs; i++) {
    const baseBytes = tf.memory().numBytes;
    probe.reset();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    try {
      loss = await once(job.batch, 100 + i);
    } catch (e) {
      // Out of memory (the wasm heap stops at 4 GiB) and the like: report how far it got.
      const failedAfterMs = performance.now() - t0;
      log(`run ${i + 1} failed after ${failedAfterMs.toFixed(0)} ms: ${String(e)}`);
      return {
        kind: job.kind, node: process.version, relaxedSimd, ms, cpuMs, memory: memoryAfter(probe, baseBytes), kernelCalls: probe.calls, error: String(e),
        failedAfterMs, failedAfterCpuMs: cpuSince(cpu0),
      };
    }
    ms.push(performance.now() - t0);
    cpuMs.push(cpuSince(cpu0));
    const m = memoryAfter(probe, baseBytes);
    kernelCalls = probe.calls;
    recomputeCalls = probe.recomputeCalls;
    if (!memory || m.peakBytes > memory.peakBytes) memory = m;
    log(`${job.kind} ${job.model.name} b${job.batch} run ${i + 1}/${job.runs}: ${ms[i]!.toFixed(0)} ms, peak ${(m.peakBytes / 2 ** 20).toFixed(0)} MiB`);
  }
  probe.uninstall();
  const result: TimedResult = { kind: job.kind, node: process.version, relaxedSimd, ms, cpuMs, memory: memory!, kernelCalls };
  if (job.memoryProbe) result.recomputeCalls = recomputeCalls;
  if (loss !== undefined) result.loss = loss;

  if (job.profile) {
    const prof = new KernelProbe(job.backend, { memory: false, time: true, label });
    prof.install();
    prof.reset();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await once(job.batch, 999);
    const totalMs = performance.now() - t0;
    const totalCpuMs = cpuSince(cpu0);
    prof.uninstall();
    const rows = prof.kernelStats().map((s) => ({ ...s, ms: round(s.ms, 2), cpuMs: round(s.cpuMs, 2) }));
    result.profile = {
      totalMs, totalCpuMs, kernelMs: rows.reduce((a, r) => a + r.ms, 0), kernelCpuMs: rows.reduce((a, r) => a + r.cpuMs, 0), rows,
    };
    log(`profiled run: ${totalMs.toFixed(0)} ms (CPU ${totalCpuMs.toFixed(0)} ms), ${rows.length} kernel rows`);
  }
  await par?.dispose();
  batch?.dispose();
  model.dispose();
  return result;
}

async function checkpointJob(job: CheckpointJob): Promise<CheckpointResult> {
  await setup(job.backend);
  const entries: CheckpointResult['entries'] = [];
  for (const checkpoint of job.checkpoints) {
    const model = new VNCA({ ...job.model.options, checkpoint });
    const c = model.config;
    const batch = binaryImages(job.batch, c.imageSize, c.imageChannels, 1);
    model.trainStep(batch); // warm-up (also creates the optimiser state)
    const probe = new KernelProbe(job.backend, { memory: true });
    probe.install();
    const ms: number[] = [];
    const cpuMs: number[] = [];
    let memory: MemoryReading | undefined;
    let loss = NaN;
    for (let i = 0; i < job.runs; i++) {
      const baseBytes = tf.memory().numBytes;
      probe.reset();
      const t0 = performance.now();
      const cpu0 = process.cpuUsage();
      loss = model.trainStep(batch).loss;
      ms.push(performance.now() - t0);
      cpuMs.push(cpuSince(cpu0));
      const m = memoryAfter(probe, baseBytes);
      if (!memory || m.peakBytes > memory.peakBytes) memory = m;
    }
    probe.uninstall();
    log(`checkpoint ${String(checkpoint)} spd ${c.stepsPerDoubling}: ${ms.map((t) => t.toFixed(0)).join(', ')} ms, peak ${(memory!.peakBytes / 2 ** 20).toFixed(1)} MiB`);
    entries.push({ checkpoint, ms, cpuMs, memory: memory!, loss });
    batch.dispose();
    model.dispose();
  }
  return { kind: 'checkpoint', entries };
}

/** CPU time (user + system, all threads) of this process since `start`, ms. */
function cpuSince(start: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(start);
  return (d.user + d.system) / 1000;
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

function log(msg: string): void {
  process.stderr.write(`  [worker] ${msg}\n`);
}

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2] ?? '') as Job;
  let result: JobResult;
  if (job.kind === 'checkpoint') result = await checkpointJob(job);
  else if (job.kind === 'micro') {
    await setup(job.backend);
    result = micro(job);
  } else {
    try {
      result = await timed(job);
    } catch (e) {
      // A job that cannot start (the FMA kernels did not turn on, a worker failed) says why on
      // its result line, so that run.ts shows the message rather than the tail of a stack trace.
      process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
      const failed = { kind: job.kind, node: process.version, relaxedSimd: isRelaxedSimdEnabled(), error: e instanceof Error ? e.message : String(e) };
      process.stdout.write(`${RESULT_MARK}${JSON.stringify(failed)}\n`, () => process.exit(1));
      return;
    }
  }
  // Exit once the line is out: the threaded wasm build's workers would keep the process alive.
  process.stdout.write(`${RESULT_MARK}${JSON.stringify(result)}\n`, () => process.exit(0));
}

await main();
