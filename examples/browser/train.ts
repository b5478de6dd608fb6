/**
 * Browser example, second page: train your own growing neural cellular automaton
 * (`GrowingNCA`, the Distill 2020 model) on a picture the visitor draws, drops or types as
 * an emoji, then grow it, cut it, regrow it, save the weights and export a GIF.
 *
 * - The target: the pad (or image, or emoji) is cropped to its ink, scaled to fit the grid
 *   less a border of `BORDER` transparent cells, and premultiplied (`rgb * alpha`).
 * - Training runs in a Web Worker (trainWorker.ts), so the page stays responsive. Every
 *   `previewEvery` steps the worker sends a snapshot: the weights as tfjs model artifacts
 *   (loaded here with `GrowingNCA.load(tf.io.fromMemory(...))`) and a few pool states.
 * - The automaton on the right runs on this thread: "Grow from seed" runs as many steps
 *   as the longest training rollout from the single live cell; a cut with the mouse zeroes
 *   a circle of cells (`damage`) and runs as many again. Step `i` of a run uses mask seed `seed + i`,
 *   so a run is the same for the same weights and `?seed=`.
 * - Saving: `downloads://<name>` (two files, `<name>.json` and `<name>.weights.bin`),
 *   or IndexedDB (`indexeddb://vnca-growing/<name>`). Loading: the two files
 *   (`tf.io.browserFiles`) or a kept model. In Node: `GrowingNCA.load(fileSystem(dir))` from
 *   'vnca/node', with the two files in `dir` renamed `model.json` and kept as they are.
 *
 * - "Try a trained example" loads public/automata/lizard (a 🦎 trained with damage by
 *   examples/06-growing-nca.ts on wasm in Node: 4,700 steps, 16 channels, hidden 64, batch 4,
 *   rollouts of 32-48 steps; docs/browser-training.md).
 *
 * URL parameters: `?backend=wasm` forces a backend, `?preset=tiny` picks settings,
 * `?seed=1` makes training and growth reproducible.
 *
 * State for tests sits in data attributes of <body>: data-status (loading | ready |
 * training | paused | error), data-backend, data-fma and data-train-fma (vnca's relaxed-SIMD
 * kernels on, on this thread and in the worker), data-train-step, data-loss (last), data-loss-start
 * (mean of the first 5 steps), data-loss-recent (mean of the last 5), data-snapshot (training
 * step of the weights in use), data-play (idle | growing | regrowing | done),
 * data-play-step, data-play-loss (the automaton's distance to the target: mean squared
 * error of RGBA), data-cut-loss (the same, of the state just after the last cut, before any
 * regrowth step; data-cut-pending is true until it and that state are drawn),
 * data-play-version / data-play-drawn, data-loaded (models loaded), data-gif-bytes, data-tensors.
 */
import * as tf from '@tensorflow/tfjs-core';
import gifenc from 'gifenc';
import { GrowingNCA, damage, runSteps, type GrowingNCAOptions } from '../../src/index.js';
import { backendNote, describeBackend, startBackend, type BackendChoice } from './backend.js';
import { DrawPad, inkBounds, onDrag } from './drawPad.js';
import type { FromWorker, ToWorker } from './trainWorker.js';

// ---------------------------------------------------------------------------------------
// Settings

/** Transparent cells around the picture: the automaton needs room at the edge. */
const BORDER = 4;
/**
 * Update steps of "Grow from seed" and of a regrowth after a cut: the longest training
 * rollout of the model (96 with the article's settings). Far beyond what it was trained for,
 * a young automaton may overgrow.
 */
function growSteps(m: GrowingNCA): number {
  return m.config.stepsRange[1];
}
/** Radius of the mouse's cut, as a fraction of the grid side. */
const CUT_RADIUS = 0.12;

type PresetName = 'laptop' | 'cpu' | 'distill' | 'tiny';
type TrainSettings = Required<Pick<GrowingNCAOptions, 'channels' | 'hidden' | 'batchSize' | 'poolSize' | 'damageCount' | 'damageAfter' | 'learningRate' | 'decaySteps'>>
  & { stepsRange: [number, number]; previewEvery: number };

/**
 * Presets. `distill` is the article's; `laptop` halves its batch and shortens the rollouts
 * to be recognisable within a few minutes on a laptop GPU; `cpu` also shrinks the rule, the
 * batch (2) and the rollouts (24-32 steps: just enough to grow a 40x40 grid from its centre)
 * for wasm, with a higher learning rate that drops after 1000 steps: a step costs a third of
 * the earlier CPU preset's (12/64, batch 4, 32-48 steps, 2e-3) and learns about as much
 * (docs/browser-training.md); `tiny` is a smoke test (tests/browser-train.test.ts).
 */
const PRESETS: Record<PresetName, TrainSettings> = {
  distill: { channels: 16, hidden: 128, batchSize: 8, stepsRange: [64, 96], poolSize: 1024, damageCount: 3, damageAfter: 0, learningRate: 2e-3, decaySteps: 2000, previewEvery: 50 },
  laptop: { channels: 16, hidden: 128, batchSize: 4, stepsRange: [48, 64], poolSize: 256, damageCount: 1, damageAfter: 300, learningRate: 2e-3, decaySteps: 2000, previewEvery: 25 },
  cpu: { channels: 12, hidden: 64, batchSize: 2, stepsRange: [24, 32], poolSize: 64, damageCount: 1, damageAfter: 300, learningRate: 4e-3, decaySteps: 1000, previewEvery: 20 },
  tiny: { channels: 8, hidden: 32, batchSize: 2, stepsRange: [16, 24], poolSize: 32, damageCount: 1, damageAfter: 20, learningRate: 3e-3, decaySteps: 2000, previewEvery: 10 },
};

const params = new URLSearchParams(location.search);
const seedParam = params.get('seed');
const baseSeed = seedParam !== null && /^\d+$/.test(seedParam) ? Number(seedParam) : null;

// ---------------------------------------------------------------------------------------
// Page elements

function el<T extends HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (!e) throw new Error(`missing element #${id}`);
  return e as T;
}

const body = document.body;
const targetView = el<HTMLCanvasElement>('target-view');
const targetInfo = el<HTMLParagraphElement>('target-info');
const brushColor = el<HTMLInputElement>('brush-color');
const brushSize = el<HTMLSelectElement>('brush-size');
const emojiInput = el<HTMLInputElement>('emoji');
const gridSizeSelect = el<HTMLSelectElement>('grid-size');
const trainButton = el<HTMLButtonElement>('train');
const pauseButton = el<HTMLButtonElement>('pause');
const presetSelect = el<HTMLSelectElement>('preset');
const expectLine = el<HTMLParagraphElement>('expect');
const lossChart = el<HTMLCanvasElement>('loss-chart');
const poolBox = el<HTMLDivElement>('pool');
const play = el<HTMLCanvasElement>('play');
const playCtx = play.getContext('2d')!;
const playStats = el<HTMLParagraphElement>('play-stats');
const growButton = el<HTMLButtonElement>('grow');
const followBox = el<HTMLInputElement>('follow');
const nameInput = el<HTMLInputElement>('model-name');
const downloadButton = el<HTMLButtonElement>('download');
const saveIdbButton = el<HTMLButtonElement>('save-idb');
const loadFiles = el<HTMLInputElement>('load-files');
const savedSelect = el<HTMLSelectElement>('saved-models');
const loadIdbButton = el<HTMLButtonElement>('load-idb');
const gifButton = el<HTMLButtonElement>('gif');
const gifLink = el<HTMLAnchorElement>('gif-link');
const backendLabel = el<HTMLSpanElement>('backend');
const backendNoteLine = el<HTMLParagraphElement>('backend-note');
const spsLabel = el<HTMLSpanElement>('sps');
const phaseLabel = el<HTMLSpanElement>('phase');
const modelInfo = el<HTMLParagraphElement>('model-info');
const debugLine = el<HTMLParagraphElement>('debug');

const settingInputs = {
  channels: el<HTMLInputElement>('opt-channels'),
  hidden: el<HTMLInputElement>('opt-hidden'),
  batchSize: el<HTMLInputElement>('opt-batch'),
  stepsMin: el<HTMLInputElement>('opt-steps-min'),
  stepsMax: el<HTMLInputElement>('opt-steps-max'),
  poolSize: el<HTMLInputElement>('opt-pool'),
  damageAfter: el<HTMLInputElement>('opt-damage-after'),
  damageCount: el<HTMLInputElement>('opt-damage'),
  learningRate: el<HTMLInputElement>('opt-lr'),
  decaySteps: el<HTMLInputElement>('opt-decay'),
  previewEvery: el<HTMLInputElement>('opt-preview'),
};

// ---------------------------------------------------------------------------------------
// State

type Status = 'loading' | 'ready' | 'training' | 'paused' | 'error';
let status: Status = 'loading';
let backend: BackendChoice | null = null;
let worker: Worker | null = null;
/** The target being trained (or the one of a loaded model), premultiplied RGBA. */
let target: { size: number; data: Float32Array } | null = null;
/** Loss of every training step. */
const losses: number[] = [];
/** (time, step) of recent training steps, for the steps/s readout. */
const stepTimes: { t: number; step: number }[] = [];
let trainStep = 0;
let trainSeconds = 0;
let lastStepAt = 0;
let damageStarted = false;
/**
 * Whether the automaton on the right takes the worker's snapshots: true from "Train" or
 * "Resume" until a model is loaded (a snapshot still on its way must not replace it).
 */
let takeSnapshots = false;

/** The automaton on this thread: the latest snapshot or a loaded model. */
let nca: GrowingNCA | null = null;
let snapshotStep = -1;
/** Its current state `[1, size, size, channels]`; this module owns it. */
let state: tf.Tensor4D | null = null;
let playRun: { kind: 'growing' | 'regrowing'; left: number; seed: number; done: number } | null = null;
let playStep = 0;
let playVersion = 0;
let playDrawn = -1;
let growCount = 0;

function setStatus(s: Status): void {
  status = s;
  body.dataset.status = s;
}

function fail(e: unknown): void {
  console.error(e);
  const message = e instanceof Error ? e.message : String(e);
  setStatus('error');
  body.dataset.error = message;
  phaseLabel.textContent = `error: ${message}`;
}

// ---------------------------------------------------------------------------------------
// The target: drawing, image files, emoji

/** The picture: drawn in the chosen colour and brush on a transparent pad. */
const pad = new DrawPad(el<HTMLCanvasElement>('target-pad'), {
  color: () => brushColor.value,
  width: () => Number(brushSize.value),
  onStrokeEnd: () => updateTarget(),
});
const padCanvas = pad.canvas;
const padCtx = pad.ctx;

function clearPad(): void {
  pad.clear();
  updateTarget();
}

/** Draws an image (file or emoji canvas) onto the pad, fitted and centred. */
function drawOnPad(source: CanvasImageSource, w: number, h: number): void {
  padCtx.clearRect(0, 0, padCanvas.width, padCanvas.height);
  const scale = Math.min(padCanvas.width / w, padCanvas.height / h);
  padCtx.imageSmoothingQuality = 'high';
  padCtx.drawImage(source, (padCanvas.width - w * scale) / 2, (padCanvas.height - h * scale) / 2, w * scale, h * scale);
  pad.hasInk = true;
  updateTarget();
}

function useEmoji(): void {
  const text = emojiInput.value.trim();
  if (!text) return;
  padCtx.clearRect(0, 0, padCanvas.width, padCanvas.height);
  padCtx.textAlign = 'center';
  padCtx.textBaseline = 'middle';
  padCtx.font = `${Math.round(padCanvas.height * 0.8)}px "Noto Color Emoji", "Apple Color Emoji", "Segoe UI Emoji", sans-serif`;
  padCtx.fillText(text, padCanvas.width / 2, padCanvas.height * 0.54);
  pad.hasInk = true;
  updateTarget();
}

async function useImageFile(file: File): Promise<void> {
  const bitmap = await createImageBitmap(file);
  drawOnPad(bitmap, bitmap.width, bitmap.height);
  bitmap.close();
}

el<HTMLInputElement>('image-file').addEventListener('change', (e) => {
  const file = (e.target as HTMLInputElement).files?.[0];
  if (file) void useImageFile(file).catch(fail);
});
padCanvas.addEventListener('dragover', (e) => {
  e.preventDefault();
  padCanvas.classList.add('dragover');
});
padCanvas.addEventListener('dragleave', () => padCanvas.classList.remove('dragover'));
padCanvas.addEventListener('drop', (e) => {
  e.preventDefault();
  padCanvas.classList.remove('dragover');
  const file = e.dataTransfer?.files[0];
  if (file && file.type.startsWith('image/')) void useImageFile(file).catch(fail);
});
el<HTMLButtonElement>('use-emoji').addEventListener('click', useEmoji);
el<HTMLButtonElement>('pad-clear').addEventListener('click', clearPad);
gridSizeSelect.addEventListener('change', updateTarget);

/**
 * The pad as a target: the bounding box of its opaque pixels (alpha > 0.1) scaled to fit
 * `size - 2 * BORDER`, centred in a transparent `size x size` grid, colour premultiplied.
 * Null when the pad is empty.
 */
function padTarget(size: number): Float32Array | null {
  const ink = inkBounds(padCtx, (data, i) => data[i + 3]! > 25);
  if (!ink) return null;
  const { top, left, bottom, right } = ink;
  const inner = size - 2 * BORDER;
  const bw = right - left + 1, bh = bottom - top + 1;
  const scale = inner / Math.max(bw, bh);
  const small = document.createElement('canvas');
  small.width = size;
  small.height = size;
  const sctx = small.getContext('2d', { willReadFrequently: true })!;
  sctx.imageSmoothingEnabled = true;
  sctx.imageSmoothingQuality = 'high';
  sctx.drawImage(pad.canvas, left, top, bw, bh, (size - bw * scale) / 2, (size - bh * scale) / 2, bw * scale, bh * scale);
  const pixels = sctx.getImageData(0, 0, size, size).data;
  const out = new Float32Array(size * size * 4);
  for (let i = 0; i < size * size; i++) {
    const a = pixels[4 * i + 3]! / 255;
    out[4 * i] = (pixels[4 * i]! / 255) * a;
    out[4 * i + 1] = (pixels[4 * i + 1]! / 255) * a;
    out[4 * i + 2] = (pixels[4 * i + 2]! / 255) * a;
    out[4 * i + 3] = a;
  }
  return out;
}

/** Premultiplied RGBA `[size * size * 4]` onto a canvas (un-premultiplied, keeping alpha). */
function paintRgba(canvas: HTMLCanvasElement, rgba: ArrayLike<number>, size: number): void {
  canvas.width = size;
  canvas.height = size;
  const ctx = canvas.getContext('2d')!;
  const image = ctx.createImageData(size, size);
  for (let i = 0; i < size * size; i++) {
    const a = Math.min(1, Math.max(0, rgba[4 * i + 3]!));
    for (let k = 0; k < 3; k++) image.data[4 * i + k] = a > 0 ? Math.round((Math.min(1, Math.max(0, rgba[4 * i + k]!)) / a) * 255) : 0;
    image.data[4 * i + 3] = Math.round(a * 255);
  }
  ctx.putImageData(image, 0, 0);
}

/** RGB in [0, 1], `[size * size * 3]`, onto a canvas. */
function paintRgb(canvas: HTMLCanvasElement, rgb: ArrayLike<number>, size: number, offset = 0): void {
  if (canvas.width !== size) canvas.width = size;
  if (canvas.height !== size) canvas.height = size;
  const ctx = canvas.getContext('2d')!;
  const image = ctx.createImageData(size, size);
  for (let i = 0; i < size * size; i++) {
    for (let k = 0; k < 3; k++) image.data[4 * i + k] = Math.round(Math.min(1, Math.max(0, rgb[offset + 3 * i + k]!)) * 255);
    image.data[4 * i + 3] = 255;
  }
  ctx.putImageData(image, 0, 0);
}

function updateTarget(): void {
  if (status === 'training' || status === 'paused') return; // the target of a run is fixed
  const size = Number(gridSizeSelect.value);
  const data = pad.hasInk ? padTarget(size) : null;
  target = data ? { size, data } : null;
  if (data) {
    paintRgba(targetView, data, size);
    let alive = 0;
    for (let i = 0; i < size * size; i++) if (data[4 * i + 3]! > 0.1) alive++;
    const c = Math.floor(size / 2) * size + Math.floor(size / 2);
    const centreEmpty = data[4 * c + 3]! < 0.1;
    // The automaton grows from the centre cell: a target that is empty there is learnt as "die".
    targetInfo.textContent = `target: ${size}×${size}, ${alive} opaque cells`
      + (centreEmpty ? ' · the centre is empty: the automaton grows from the centre cell, so fill it' : '');
    body.dataset.targetCentreEmpty = String(centreEmpty);
  } else {
    targetView.getContext('2d')!.clearRect(0, 0, targetView.width, targetView.height);
    targetInfo.textContent = 'target: draw something first';
  }
  updateReadouts();
}

// ---------------------------------------------------------------------------------------
// Settings

function applyPreset(name: PresetName): void {
  const p = PRESETS[name];
  settingInputs.channels.value = String(p.channels);
  settingInputs.hidden.value = String(p.hidden);
  settingInputs.batchSize.value = String(p.batchSize);
  settingInputs.stepsMin.value = String(p.stepsRange[0]);
  settingInputs.stepsMax.value = String(p.stepsRange[1]);
  settingInputs.poolSize.value = String(p.poolSize);
  settingInputs.damageAfter.value = String(p.damageAfter);
  settingInputs.damageCount.value = String(p.damageCount);
  settingInputs.learningRate.value = String(p.learningRate);
  settingInputs.decaySteps.value = String(p.decaySteps);
  settingInputs.previewEvery.value = String(p.previewEvery);
  updateExpectation();
}

function readSettings(): TrainSettings {
  const n = (i: HTMLInputElement) => Number(i.value);
  return {
    channels: n(settingInputs.channels),
    hidden: n(settingInputs.hidden),
    batchSize: n(settingInputs.batchSize),
    stepsRange: [n(settingInputs.stepsMin), Math.max(n(settingInputs.stepsMin), n(settingInputs.stepsMax))],
    poolSize: n(settingInputs.poolSize),
    damageAfter: n(settingInputs.damageAfter),
    damageCount: n(settingInputs.damageCount),
    learningRate: n(settingInputs.learningRate),
    decaySteps: n(settingInputs.decaySteps),
    previewEvery: n(settingInputs.previewEvery),
  };
}

/** What to expect, from the figures measured for docs/browser-training.md. */
function updateExpectation(): void {
  const gpu = backend && (backend.name === 'webgl' || backend.name === 'webgpu');
  const preset = presetSelect.value as PresetName;
  const lines: Record<PresetName, string> = {
    laptop: 'For a GPU: half the article\'s batch, shorter rollouts. The outline and colours come in the first few hundred steps, details over a few thousand.',
    cpu: 'A smaller rule, batch 2 and short rollouts for CPUs: the outline and colours come in the first few hundred steps, legs after about 600, fine detail takes thousands.',
    distill: 'The article\'s settings: the best results (it trains 8000 steps), and the slowest; for a good GPU.',
    tiny: 'A smoke test: it learns a blob of the right colour, not your picture.',
  };
  let text = lines[preset];
  if (backend && !gpu) {
    // Measured in headless Chromium on wasm, on one core (docs/browser-training.md).
    text += ' No GPU here: on wasm one CPU core runs about 2 steps/s with the CPU settings'
      + ' (a lizard emoji showed its body and colours after 200-300 steps, about 2-3 minutes,'
      + ' and four stubby legs after 600, about 5 minutes), and about 20 times fewer with the article\'s settings.';
  }
  expectLine.textContent = text;
}

presetSelect.addEventListener('change', () => applyPreset(presetSelect.value as PresetName));

// ---------------------------------------------------------------------------------------
// Training (in the worker)

function startTraining(): void {
  if (!target || !backend) return;
  worker?.terminate();
  losses.length = 0;
  stepTimes.length = 0;
  trainStep = 0;
  trainSeconds = 0;
  damageStarted = false;
  lastStepAt = performance.now();
  const s = readSettings();
  takeSnapshots = true;
  worker = new Worker(new URL('./trainWorker.ts', import.meta.url), { type: 'module' });
  worker.onmessage = (e: MessageEvent<FromWorker>) => onWorkerMessage(e.data);
  worker.onerror = (e) => fail(e.message || 'the training worker failed');
  const { previewEvery, ...options } = s;
  const message: ToWorker = {
    type: 'start',
    backend: params.get('backend') ?? backend.name,
    target: target.data.slice(),
    size: target.size,
    options: { ...options, ...(baseSeed === null ? {} : { seed: baseSeed }) },
    previewEvery,
    poolShown: 6,
  };
  worker.postMessage(message);
  setStatus('training');
  pauseButton.textContent = 'Pause';
  phaseLabel.textContent = 'starting the worker…';
}

function onWorkerMessage(m: FromWorker): void {
  if (m.type === 'ready') {
    const fma = m.backend.name === 'wasm' ? ` (FMA kernels ${m.backend.fma ? 'on' : 'off'})` : '';
    modelInfo.textContent = `Training on ${m.backend.name}${fma} in a worker · ${m.params.toLocaleString('en-US')} parameters`;
    body.dataset.trainBackend = m.backend.name;
    body.dataset.trainFma = String(m.backend.fma);
  } else if (m.type === 'step') {
    const now = performance.now();
    trainSeconds += (now - lastStepAt) / 1000;
    lastStepAt = now;
    trainStep = m.step;
    damageStarted = m.damaged;
    losses.push(m.loss);
    stepTimes.push({ t: now, step: m.step });
    while (stepTimes.length > 2 && now - stepTimes[0]!.t > 5000) stepTimes.shift();
    body.dataset.trainStep = String(m.step);
    body.dataset.loss = String(m.loss);
    body.dataset.lossStart = String(mean(losses.slice(0, 5)));
    body.dataset.lossRecent = String(mean(losses.slice(-5)));
    drawLossChart();
  } else if (m.type === 'snapshot') {
    showPool(m.pool, m.count);
    if (takeSnapshots) void useSnapshot(m.artifacts, m.step).catch(fail);
  } else if (m.type === 'paused') {
    body.dataset.paused = 'true';
  } else if (m.type === 'error') {
    fail(`training: ${m.message}`);
  }
  updateReadouts();
}

function mean(xs: number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
}

function togglePause(): void {
  if (!worker) return;
  if (status === 'training') {
    worker.postMessage({ type: 'pause' } satisfies ToWorker);
    setStatus('paused');
    pauseButton.textContent = 'Resume';
  } else if (status === 'paused') {
    body.dataset.paused = 'false';
    lastStepAt = performance.now();
    stepTimes.length = 0;
    takeSnapshots = true;
    worker.postMessage({ type: 'resume' } satisfies ToWorker);
    setStatus('training');
    pauseButton.textContent = 'Pause';
  }
  updateReadouts();
}

trainButton.addEventListener('click', () => {
  if ((status === 'training' || status === 'paused') && !confirm('Start again from scratch? The current training is lost (save it first).')) return;
  startTraining();
  updateReadouts();
});
pauseButton.addEventListener('click', togglePause);

/** The loss per step on a log scale, with a running mean. */
function drawLossChart(): void {
  const ctx = lossChart.getContext('2d')!;
  const W = lossChart.width, H = lossChart.height;
  ctx.clearRect(0, 0, W, H);
  if (losses.length === 0) return;
  const logs = losses.map((l) => Math.log10(Math.max(l, 1e-6)));
  const lo = Math.floor(Math.min(...logs)), hi = Math.ceil(Math.max(...logs));
  const y = (v: number) => H - 14 - ((v - lo) / Math.max(hi - lo, 1e-6)) * (H - 28);
  const x = (i: number) => 36 + (i / Math.max(losses.length - 1, 1)) * (W - 46);
  ctx.font = '11px system-ui, sans-serif';
  ctx.fillStyle = '#8b949e';
  ctx.strokeStyle = '#30363d';
  for (let d = lo; d <= hi; d++) {
    ctx.beginPath();
    ctx.moveTo(34, y(d));
    ctx.lineTo(W, y(d));
    ctx.stroke();
    ctx.fillText(`1e${d}`, 2, y(d) + 4);
  }
  ctx.fillText(`step ${losses.length}`, W - 70, H - 2);
  ctx.strokeStyle = 'rgba(242, 193, 78, 0.35)';
  ctx.beginPath();
  logs.forEach((v, i) => (i ? ctx.lineTo(x(i), y(v)) : ctx.moveTo(x(i), y(v))));
  ctx.stroke();
  const k = Math.max(1, Math.round(losses.length / 50));
  ctx.strokeStyle = '#f2c14e';
  ctx.lineWidth = 2;
  ctx.beginPath();
  for (let i = 0; i < logs.length; i++) {
    const m = mean(logs.slice(Math.max(0, i - k), i + 1));
    if (i) ctx.lineTo(x(i), y(m));
    else ctx.moveTo(x(i), y(m));
  }
  ctx.stroke();
  ctx.lineWidth = 1;
}

function showPool(rgb: Float32Array, count: number): void {
  const size = Math.round(Math.sqrt(rgb.length / 3 / count));
  while (poolBox.children.length < count) poolBox.appendChild(document.createElement('canvas'));
  for (let k = 0; k < count; k++) {
    paintRgb(poolBox.children[k] as HTMLCanvasElement, rgb, size, k * size * size * 3);
  }
}

/** Takes over the weights of a snapshot; restarts the growth when following training. */
async function useSnapshot(artifacts: tf.io.ModelArtifacts, step: number): Promise<void> {
  const next = await GrowingNCA.load(tf.io.fromMemory(artifacts));
  setModel(next, step);
  if (followBox.checked || !state) growFromSeed();
}

function setModel(next: GrowingNCA, step: number): void {
  const sameGrid = nca && state && nca.gridShape[0] === next.gridShape[0] && nca.config.channels === next.config.channels;
  nca?.dispose();
  nca = next;
  snapshotStep = step;
  body.dataset.snapshot = String(step);
  if (!sameGrid) setState(null);
}

// ---------------------------------------------------------------------------------------
// The automaton on this thread: grow, cut, regrow

function setState(next: tf.Tensor4D | null): void {
  if (state && state !== next) state.dispose();
  state = next;
  playVersion++;
  body.dataset.playVersion = String(playVersion);
}

function growFromSeed(): void {
  if (!nca) return;
  growCount++;
  setState(nca.seedState(1));
  const seed = baseSeed ?? Math.floor(Math.random() * 1e9);
  playRun = { kind: 'growing', left: growSteps(nca), seed, done: 0 };
  playStep = 0;
  body.dataset.grows = String(growCount);
}

/** The distance to the target of the state just after the latest cut, until a draw reads it (see cutAt). */
let cutLoss: tf.Tensor1D | null = null;

function cutAt(u: number, v: number): void {
  if (!nca || !state) return;
  const [h, w] = nca.gridShape;
  setState(damage(state, { shape: 'circle', centerY: v * h - 0.5, centerX: u * w - 0.5, radius: CUT_RADIUS * w }));
  // The distance just after this cut, before any regrowth step (a drag cuts on every move,
  // so the last cut of a stroke holds the whole stroke's damage). Computed now, read back by
  // the next draw with the picture: a drag cuts on every mouse move, and a synchronous read
  // here would stall a GPU backend's pipeline each time.
  cutLoss?.dispose();
  cutLoss = tf.tidy(() => nca!.loss(state!));
  const seed = baseSeed === null ? Math.floor(Math.random() * 1e9) : baseSeed + 100_000 + playStep;
  // Each cut restarts the regrowth count; a cut during growth leaves the growth running.
  if (!playRun || playRun.kind === 'regrowing') playRun = { kind: 'regrowing', left: growSteps(nca), seed, done: 0 };
  body.dataset.cutPending = 'true'; // until the next draw shows the cut state
}

/** One update step of the current run (mask seed `run.seed + run.done`). */
function advance(): void {
  const m = nca!;
  const r = playRun!;
  const next = runSteps(m.rule, state!, {
    steps: 1, pUpdate: m.config.pUpdate, alive: { channel: 3, threshold: m.config.aliveThreshold }, seed: r.seed + r.done,
  }).state;
  setState(next);
  r.done++;
  r.left--;
  playStep++;
  if (r.left <= 0) playRun = null;
}

let playLoss = NaN;

async function drawPlay(): Promise<void> {
  if (!nca || !state) return;
  const shown = playVersion;
  const cut = cutLoss;
  cutLoss = null;
  const [rgb, loss] = tf.tidy(() => [nca!.toRgb(state!), nca!.loss(state!)]);
  const [values, l, c] = await Promise.all([rgb!.data(), loss!.data(), cut?.data()]);
  tf.dispose([rgb!, loss!, ...(cut ? [cut] : [])]);
  paintRgb(play, values, nca.gridShape[0]);
  playLoss = l[0]!;
  if (c) {
    body.dataset.cutLoss = String(c[0]);
    // A cut made while this draw awaited its read is still pending: the next draw reads it.
    if (cutLoss === null) body.dataset.cutPending = 'false';
  }
  playDrawn = shown;
  body.dataset.playDrawn = String(shown);
  body.dataset.playLoss = String(playLoss);
}

/** Update steps per animation frame: about 120 steps/s at 60 frames/s. */
const STEPS_PER_FRAME = 2;

async function tick(): Promise<void> {
  try {
    for (let k = 0; k < STEPS_PER_FRAME && nca && state && playRun; k++) advance();
    if (state && playDrawn !== playVersion) await drawPlay();
    body.dataset.play = playRun ? playRun.kind : state ? 'done' : 'idle';
    body.dataset.playStep = String(playStep);
    updateReadouts();
  } catch (e) {
    fail(e);
    return;
  }
  requestAnimationFrame(() => void tick());
}

onDrag(play, {
  canStart: () => nca !== null && state !== null,
  move: (u, v) => {
    if (u >= 0 && u < 1 && v >= 0 && v < 1) cutAt(u, v);
  },
});
growButton.addEventListener('click', growFromSeed);

// ---------------------------------------------------------------------------------------
// Keep it: save, load, GIF

const IDB_PREFIX = 'indexeddb://vnca-growing/';

function modelName(): string {
  return (nameInput.value.trim() || 'my-automaton').replace(/[^\w.-]+/g, '-');
}

async function refreshSaved(): Promise<void> {
  const models = await tf.io.listModels().catch(() => ({} as Record<string, unknown>));
  const names = Object.keys(models).filter((k) => k.startsWith(IDB_PREFIX)).map((k) => k.slice(IDB_PREFIX.length));
  savedSelect.replaceChildren(new Option(names.length ? 'kept in this browser…' : 'none kept in this browser', ''),
    ...names.map((n) => new Option(n, n)));
}

/** Saves the weights in use; while training, the latest ones are asked of the worker first. */
async function freshModel(): Promise<GrowingNCA> {
  if (worker && status === 'training') {
    const got = new Promise<void>((resolve) => {
      const listener = (e: MessageEvent<FromWorker>) => {
        if (e.data.type === 'snapshot') {
          worker!.removeEventListener('message', listener);
          setTimeout(resolve, 0); // after onmessage has loaded it
        }
      };
      worker!.addEventListener('message', listener);
    });
    worker.postMessage({ type: 'snapshot' } satisfies ToWorker);
    await got;
    while (snapshotStep < trainStep - 1) await new Promise((r) => setTimeout(r, 10));
  }
  return nca!;
}

downloadButton.addEventListener('click', () => void (async () => {
  const m = await freshModel();
  await m.save(`downloads://${modelName()}`);
  phaseLabel.textContent = `downloaded ${modelName()}.json and ${modelName()}.weights.bin`;
})().catch(fail));

saveIdbButton.addEventListener('click', () => void (async () => {
  const m = await freshModel();
  await m.save(`${IDB_PREFIX}${modelName()}`);
  await refreshSaved();
  savedSelect.value = modelName();
  phaseLabel.textContent = `kept in this browser as ${modelName()}`;
})().catch(fail));

async function loadModel(source: string | tf.io.IOHandler, label: string): Promise<void> {
  const next = await GrowingNCA.load(source);
  if (status === 'training') togglePause();
  setModel(next, 0);
  followBox.checked = false;
  takeSnapshots = false;
  body.dataset.snapshot = 'loaded';
  modelInfo.textContent = `Loaded ${label} · ${next.countParams().toLocaleString('en-US')} parameters · grid ${next.gridShape.join('×')}`;
  const t = next.getTarget();
  const data = (await t.data()) as Float32Array;
  t.dispose();
  paintRgba(targetView, data, next.gridShape[0]);
  targetInfo.textContent = `target of ${label}`;
  growFromSeed();
  body.dataset.loaded = String(Number(body.dataset.loaded ?? 0) + 1);
}

loadFiles.addEventListener('change', () => {
  const files = Array.from(loadFiles.files ?? []);
  const json = files.find((f) => f.name.endsWith('.json'));
  const bins = files.filter((f) => !f.name.endsWith('.json'));
  if (!json || bins.length === 0) {
    fail('pick both files: <name>.json and <name>.weights.bin');
    return;
  }
  void loadModel(tf.io.browserFiles([json, ...bins]), json.name).catch(fail);
});

loadIdbButton.addEventListener('click', () => {
  if (savedSelect.value) void loadModel(`${IDB_PREFIX}${savedSelect.value}`, savedSelect.value).catch(fail);
});

/** A model trained on this page (examples/browser/public/automata/), to try before training. */
const EXAMPLE = { name: 'lizard', url: 'automata/lizard/model.json' };
el<HTMLButtonElement>('example').addEventListener('click', () => {
  const url = new URL(EXAMPLE.url, document.baseURI).href;
  // An explicit handler: bundlers may tree-shake the module that registers the http:// scheme.
  void loadModel(tf.io.http(url), `the example (${EXAMPLE.name})`).catch(fail);
});

/** Grows from the seed, every second state upscaled 4x, as an animated GIF. */
async function exportGif(): Promise<void> {
  if (!nca) return;
  const m = nca;
  const [h, w] = m.gridShape;
  const scale = 4;
  const { states } = m.grow(growSteps(m), { returnStates: true, seed: baseSeed ?? 0 });
  const enc = gifenc.GIFEncoder();
  const frames = states.filter((_, i) => i % 2 === 0 || i === states.length - 1);
  for (let f = 0; f < frames.length; f++) {
    const rgb = m.toRgb(frames[f]!);
    const values = await rgb.data();
    rgb.dispose();
    const rgba = new Uint8Array(h * scale * w * scale * 4);
    for (let y = 0; y < h * scale; y++) {
      for (let x = 0; x < w * scale; x++) {
        const src = 3 * (Math.floor(y / scale) * w + Math.floor(x / scale));
        const dst = 4 * (y * w * scale + x);
        for (let k = 0; k < 3; k++) rgba[dst + k] = Math.round(values[src + k]! * 255);
        rgba[dst + 3] = 255;
      }
    }
    const palette = gifenc.quantize(rgba, 256);
    enc.writeFrame(gifenc.applyPalette(rgba, palette), w * scale, h * scale, { palette, delay: f === frames.length - 1 ? 1500 : 40 });
  }
  tf.dispose(states);
  enc.finish();
  const blob = new Blob([enc.bytes() as Uint8Array<ArrayBuffer>], { type: 'image/gif' });
  if (gifLink.href) URL.revokeObjectURL(gifLink.href);
  gifLink.href = URL.createObjectURL(blob);
  gifLink.download = `${modelName()}-growth.gif`;
  gifLink.textContent = `${modelName()}-growth.gif (${(blob.size / 1024).toFixed(0)} KiB)`;
  gifLink.hidden = false;
  gifLink.click();
  body.dataset.gifBytes = String(blob.size);
}
gifButton.addEventListener('click', () => void exportGif().catch(fail));

// ---------------------------------------------------------------------------------------
// Readouts

function updateReadouts(): void {
  const haveTarget = target !== null;
  trainButton.disabled = !backend || !haveTarget || status === 'error';
  trainButton.textContent = status === 'training' || status === 'paused' ? 'Start over' : 'Train';
  pauseButton.disabled = !(status === 'training' || status === 'paused');
  const haveModel = nca !== null;
  growButton.disabled = !haveModel;
  downloadButton.disabled = !haveModel;
  saveIdbButton.disabled = !haveModel;
  gifButton.disabled = !haveModel;

  let sps = 0;
  if (stepTimes.length >= 2) {
    const a = stepTimes[0]!, b = stepTimes[stepTimes.length - 1]!;
    sps = ((b.step - a.step) * 1000) / Math.max(1, b.t - a.t);
  }
  spsLabel.textContent = sps > 0 ? `${sps < 10 ? sps.toFixed(2) : sps.toFixed(1)} train steps/s` : '– train steps/s';
  spsLabel.style.opacity = status === 'training' ? '1' : '0.7';
  body.dataset.trainStepsPerSecond = sps.toFixed(3);

  el('stat-step').textContent = String(trainStep);
  el('stat-loss').textContent = losses.length ? losses[losses.length - 1]!.toExponential(2) : '–';
  el('stat-time').textContent = `${trainSeconds < 120 ? `${trainSeconds.toFixed(0)} s` : `${(trainSeconds / 60).toFixed(1)} min`}`;
  el('stat-damage').textContent = damageStarted ? 'training with damage' : 'no damage yet';

  if (status !== 'error') {
    phaseLabel.textContent = status === 'loading' ? 'starting…'
      : status === 'training' ? `training · step ${trainStep}`
        : status === 'paused' ? `paused · step ${trainStep}`
          : nca ? 'ready · automaton loaded' : haveTarget ? 'ready: press Train' : 'ready: draw a picture';
  }
  const runText = playRun ? `${playRun.kind} · step ${playRun.done}/${playRun.done + playRun.left}` : state ? 'grown' : 'no automaton yet';
  playStats.innerHTML = nca
    ? `${runText} · distance to target <b>${Number.isFinite(playLoss) ? playLoss.toFixed(4) : '–'}</b>`
      + ` · weights of step ${snapshotStep >= 0 ? snapshotStep : '–'}`
    : 'Train, or load saved weights, to get an automaton.';
  if (body.dataset.snapshot === 'loaded') playStats.innerHTML = playStats.innerHTML.replace(/weights of step \S+/, 'loaded weights');

  const mem = tf.memory();
  body.dataset.tensors = String(mem.numTensors);
  debugLine.textContent = `tensors (this thread): ${mem.numTensors} · ${(mem.numBytes / 2 ** 20).toFixed(1)} MiB`;
}

// ---------------------------------------------------------------------------------------
// Start

async function main(): Promise<void> {
  const preset = params.get('preset');
  const choice = await startBackend(params.get('backend'));
  backend = choice;
  body.dataset.backend = choice.name;
  body.dataset.fma = String(choice.fma);
  body.dataset.softwareGpu = String(choice.softwareGpu);
  const { label, title } = describeBackend(choice);
  backendLabel.textContent = label;
  backendLabel.title = title;
  const note = backendNote(choice);
  backendNoteLine.textContent = note;
  backendNoteLine.hidden = note === '';
  const gpu = choice.name === 'webgl' || choice.name === 'webgpu';
  const name: PresetName = preset && preset in PRESETS ? preset as PresetName : gpu ? 'laptop' : 'cpu';
  presetSelect.value = name;
  applyPreset(name);
  await refreshSaved();
  setStatus('ready');
  updateTarget();
  requestAnimationFrame(() => void tick());
}

window.addEventListener('unhandledrejection', (e) => fail(e.reason));
main().catch(fail);
