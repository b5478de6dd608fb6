// Go/no-go micro-benchmark for issue 14: our relaxed-SIMD GEMM kernels (gen-wat.mjs)
// against tfjs-backend-wasm 4.22's XNNPACK at the update rule's shapes (paper model,
// batch 4, 32x32, 256 channels), single thread, interleaved A B A B in one process.
//
//   sh bench/relaxed-simd/build.sh 6
//   taskset -c 1 <node 24> bench/relaxed-simd/bench.mjs [--mr 6] [--reps 15] [--only fwd,dx,dw,conv]
//
// Node 24 (or 22) runs relaxed SIMD by default; Node 20 needs --experimental-wasm-relaxed-simd.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const MR = Number(opt('mr', 6));
const REPS = Number(opt('reps', 15));
const ONLY = opt('only', 'fwd,dx,dw,conv').split(',');

const here = dirname(fileURLToPath(import.meta.url));
const wasmFile = join(here, '../../.tmp/relaxed-simd', `gemm${MR}.wasm`);
const bytes = readFileSync(wasmFile);
if (!WebAssembly.validate(bytes)) {
  throw new Error(`this runtime (Node ${process.version}) does not accept relaxed SIMD`);
}
const memory = new WebAssembly.Memory({ initial: 1024 }); // 64 MiB
const k = (await WebAssembly.instantiate(bytes, { env: { memory } })).instance.exports;

await tf.setBackend('wasm');
await tf.ready();

// ---- our memory: a bump allocator, 64-byte aligned ----
let top = 1024;
function alloc(bytesWanted) {
  const p = top;
  top = (top + bytesWanted + 63 + 256) & ~63; // 256 bytes slack: tiles may read a little past
  if (top > memory.buffer.byteLength) throw new Error('out of memory');
  return p;
}
const F = () => new Float32Array(memory.buffer);
const I = () => new Int32Array(memory.buffer);

function randomArray(n, seed) {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 4294967296 - 0.5;
  }
  return a;
}

const B4 = 4, H = 32, W = 32, C = 256, CO = 256;
const ROWS = B4 * H * W; // 4096
const ROWS_PAD = Math.ceil(ROWS / MR) * MR;

const x = randomArray(ROWS * C, 1); // [4096, 256] activations (NHWC flattened)
const w = randomArray(C * CO, 2); // [256, 256] 1x1 weights
const dz = randomArray(ROWS * CO, 3); // [4096, 256] output gradient
const f3 = randomArray(9 * C * CO, 4); // [3, 3, 256, 256] filter

const px = alloc(x.length * 4); F().set(x, px / 4);
const pw = alloc(w.length * 4); F().set(w, pw / 4);
const pdz = alloc(dz.length * 4); F().set(dz, pdz / 4);
const pf3 = alloc(f3.length * 4); F().set(f3, pf3 / 4);
const pwT = alloc(w.length * 4); // packed W^T, [N/8][K][8]
const pc = alloc(ROWS_PAD * CO * 4); // output, rows padded to MR
const pzero = alloc(C * 4); // a zero row for the convolution's padding
const ptbl = alloc(ROWS_PAD * 4); // row-address table
const ptbl9 = alloc(9 * ROWS_PAD * 4); // one table per tap

// Row table for a row-major [rows, K] matrix at p, padded rows point at row 0.
function rowTable(tbl, p, rows, ldaBytes) {
  const t = I();
  for (let r = 0; r < ROWS_PAD; r++) t[tbl / 4 + r] = p + (r < rows ? r : 0) * ldaBytes;
}

const MC_PANELS = Number(opt('mc', 16)); // MR*16 rows of A per call (about 96 KB at K 256)
const KC = Number(opt('kc', 256));
const KC_COLS = Number(opt('kc-cols', 128)); // the transposed-A kernel reads A and B at a 1 KB stride: 128 rows fit L1 better
const fma = opt('op', 'fma');
const rowsK = k[`gemm_rows_${fma}`];
const colsK = k[`gemm_cols_${fma}`];

// C[4096, 256] = A[4096, K] B[K, 256] with A rows from table(s).
function gemmRows(tbl, aoffBase, pb, bs, K) {
  const mPanels = ROWS_PAD / MR;
  for (let ip = 0; ip < mPanels; ip += MC_PANELS) {
    const mp = Math.min(MC_PANELS, mPanels - ip);
    for (let k0 = 0; k0 < K; k0 += KC) {
      const kc = Math.min(KC, K - k0);
      rowsK(tbl + ip * MR * 4, aoffBase + k0 * 4, pb + k0 * bs, bs, pc + ip * MR * CO * 4, CO * 4, mp, CO / 8, kc, k0 > 0 ? 1 : 0);
    }
  }
}

function ours(name) {
  if (name === 'fwd') {
    rowTable(ptbl, px, ROWS, C * 4);
    gemmRows(ptbl, 0, pw, CO * 4, C);
  } else if (name === 'dx') {
    // dX = dZ W^T: pack W^T into 8-column panels (K = CO rows of W^T = columns of W).
    const f = F();
    const n8 = C / 8;
    for (let jp = 0; jp < n8; jp++) {
      for (let kk = 0; kk < CO; kk++) {
        const dst = pwT / 4 + jp * CO * 8 + kk * 8;
        for (let n = 0; n < 8; n++) f[dst + n] = f[pw / 4 + (jp * 8 + n) * CO + kk];
      }
    }
    rowTable(ptbl, pdz, ROWS, CO * 4);
    const mPanels = ROWS_PAD / MR;
    for (let ip = 0; ip < mPanels; ip += MC_PANELS) {
      const mp = Math.min(MC_PANELS, mPanels - ip);
      // packed panels: panel stride is K*32 bytes, so call once per panel
      for (let jp = 0; jp < n8; jp++) {
        rowsK(ptbl + ip * MR * 4, 0, pwT + jp * CO * 32, 32, pc + ip * MR * C * 4 + jp * 32, C * 4, mp, 1, CO, 0);
      }
    }
  } else if (name === 'dw') {
    // dW[256, 256] = X^T dZ: A = X^T read in place (cols kernel), K = 4096, blocked by KC.
    const mPanels = Math.ceil(C / MR);
    for (let k0 = 0; k0 < ROWS; k0 += KC_COLS) {
      colsK(px + k0 * C * 4, C * 4, pdz + k0 * CO * 4, CO * 4, pc, CO * 4, mPanels, CO / 8, KC_COLS, k0 > 0 ? 1 : 0);
    }
  } else if (name === 'conv') {
    // 3x3 'same' convolution as an implicit GEMM: one row table per tap.
    const t = I();
    for (let tap = 0; tap < 9; tap++) {
      const dy = Math.floor(tap / 3) - 1, dx = (tap % 3) - 1;
      const base = ptbl9 / 4 + tap * ROWS_PAD;
      for (let r = 0; r < ROWS_PAD; r++) {
        let addr = pzero;
        if (r < ROWS) {
          const b = (r / (H * W)) | 0, y = ((r / W) | 0) % H, xx = r % W;
          const yy = y + dy, xq = xx + dx;
          if (yy >= 0 && yy < H && xq >= 0 && xq < W) addr = px + (((b * H + yy) * W + xq) * C) * 4;
        }
        t[base + r] = addr;
      }
    }
    const mPanels = ROWS_PAD / MR;
    for (let ip = 0; ip < mPanels; ip += MC_PANELS) {
      const mp = Math.min(MC_PANELS, mPanels - ip);
      for (let tap = 0; tap < 9; tap++) {
        rowsK(ptbl9 + tap * ROWS_PAD * 4 + ip * MR * 4, 0, pf3 + tap * C * CO * 4, CO * 4, pc + ip * MR * CO * 4, CO * 4, mp, CO / 8, C, tap > 0 ? 1 : 0);
      }
    }
  }
}

// ---- tfjs-backend-wasm (XNNPACK) at the same products ----
const tx = tf.tensor2d(x, [ROWS, C]);
const tw = tf.tensor2d(w, [C, CO]);
const tdz = tf.tensor2d(dz, [ROWS, CO]);
const txT = tf.transpose(tx); // the library transposes explicitly (transposeA runs at 1.8 GFLOP/s)
const twT = tf.transpose(tw);
const tx4 = tf.reshape(tx, [B4, H, W, C]);
const tf3 = tf.tensor4d(f3, [3, 3, C, CO]);

function xnn(name) {
  let y;
  if (name === 'fwd') y = tf.matMul(tx, tw);
  else if (name === 'dx') y = tf.matMul(tdz, tf.transpose(tw)); // transpose included, as in the library
  else if (name === 'dw') y = tf.matMul(txT, tdz); // transpose of X not included
  else if (name === 'conv') y = tf.conv2d(tx4, tf3, 1, 'same');
  return y;
}

const shapes = {
  fwd: { label: '1x1 forward [4096,256]x[256,256]', macs: ROWS * C * CO, outRows: ROWS },
  dx: { label: 'input grad [4096,256]x[256,256]^T', macs: ROWS * C * CO, outRows: ROWS },
  dw: { label: 'filter grad [256,4096]x[4096,256]', macs: ROWS * C * CO, outRows: C },
  conv: { label: '3x3 conv implicit GEMM [4096,2304]x[2304,256]', macs: ROWS * 9 * C * CO, outRows: ROWS },
};

function check(name) {
  const y = xnn(name);
  const ref = y.dataSync();
  y.dispose();
  F().fill(NaN, pc / 4, pc / 4 + ROWS_PAD * CO);
  ours(name);
  const got = F().subarray(pc / 4, pc / 4 + shapes[name].outRows * CO);
  let maxErr = 0, maxRef = 0;
  for (let i = 0; i < ref.length; i++) {
    maxErr = Math.max(maxErr, Math.abs(ref[i] - got[i]));
    maxRef = Math.max(maxRef, Math.abs(ref[i]));
  }
  if (!(maxErr <= 1e-4 * Math.max(1, maxRef))) throw new Error(`${name}: max error ${maxErr} (max |ref| ${maxRef})`);
  return maxErr;
}

const median = (a) => {
  const s = [...a].sort((p, q) => p - q);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

console.log(`node ${process.version}, MR=${MR} NR=8, op=${fma}, MC=${MC_PANELS * MR} rows, KC=${KC} (transposed A: ${KC_COLS}), reps=${REPS}`);
console.log('| product | XNNPACK ms wall / CPU | ours ms wall / CPU | XNNPACK GFLOP/s (CPU) | ours GFLOP/s (CPU) | speed-up, per-pair median, wall / CPU | max abs err |');
console.log('| --- | --- | --- | --- | --- | --- | --- |');
for (const name of ONLY) {
  const err = check(name);
  for (let i = 0; i < 2; i++) { xnn(name).dispose(); ours(name); }
  // CPU time (process.cpuUsage) is what the process got of the core; on a shared core it
  // is the fairer clock. Wall time is reported beside it.
  const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
  const ta = [], tb = [], ca = [], cb = [], ratios = [], cratios = [];
  for (let i = 0; i < REPS; i++) {
    const c0 = cpu(), t0 = performance.now();
    const y = xnn(name);
    const t1 = performance.now(), c1 = cpu();
    y.dispose();
    const c2 = cpu(), t2 = performance.now();
    ours(name);
    const t3 = performance.now(), c3 = cpu();
    ta.push(t1 - t0); tb.push(t3 - t2); ratios.push((t1 - t0) / (t3 - t2));
    ca.push(c1 - c0); cb.push(c3 - c2); cratios.push((c1 - c0) / (c3 - c2));
  }
  const flop = 2 * shapes[name].macs;
  const ma = median(ta), mb = median(tb), mca = median(ca), mcb = median(cb);
  console.log(`| ${shapes[name].label} | ${ma.toFixed(2)} / ${mca.toFixed(2)} | ${mb.toFixed(2)} / ${mcb.toFixed(2)} | ${(flop / mca / 1e6).toFixed(1)} | ${(flop / mcb / 1e6).toFixed(1)} | ${median(ratios).toFixed(2)}x / ${median(cratios).toFixed(2)}x | ${err.toExponential(1)} |`);
}
