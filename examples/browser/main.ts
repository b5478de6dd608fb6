/**
 * Browser example: watch the shipped VNCA (models/mnist-small) grow digits, and the
 * damage-trained one (models/mnist-regen) heal them.
 *
 * - Picks the fastest tfjs backend here with ./backend.ts (webgpu, webgl on a hardware
 *   renderer, wasm, cpu; `?backend=wasm` forces one) and says why it passed over the
 *   others. `?seed=1` makes the samples reproducible.
 * - "New sample" draws z ~ N(0, I), writes it into every cell of the 2x2 seed grid and runs
 *   the growth one operation per tick (update steps with `step`, divisions with
 *   `doubleCells`), rendering every intermediate grid scaled up to 320x320.
 * - Damage mode (mnist-regen): the first cut hands the digit to the heal model (see
 *   HEAL_MODEL), the mouse zeroes a circle of cells (`damage`) and the update rule runs the
 *   model's default regrowth steps (`stepsRange[0]` for a fixed model), one per tick, so the
 *   digit regrows on screen. The page measures the recovery of log p(x | state).
 *   Inpaint mode (mnist-regen): the mouse marks a region that `model.inpaint` fills in.
 * - The drawing pad: the digit is centred and scaled as MNIST digits are, binarised,
 *   padded to 32x32, encoded (`model.encode`, posterior mean) and grown.
 *
 * State for tests and the curious sits in data attributes of <body>: data-status
 * (loading | growing | regrowing | paused | inpainting | done | error), data-backend,
 * data-fma (true when vnca's relaxed-SIMD kernels run the wasm backend),
 * data-steps-per-second, data-sample (growths started), data-grid (the grid's side),
 * data-version / data-drawn (the state's version and the version the canvas shows),
 * data-tensors (tf.memory().numTensors), data-runs (growths and regrowths started) and
 * data-sps-run (the run the steps/s readout measured), data-software-gpu, data-model (the
 * model of the shown state), data-grow-model / data-heal-model, and the regrowth measure
 * data-l0 / data-ld / data-lr (nats) and data-recovery.
 *
 * Run it with `npx vite examples/browser`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { VNCA, damage, doubleCells, pretrainedUrl, step } from '../../src/index.js';
import { backendNote, describeBackend, startBackend } from './backend.js';
import { DrawPad, inkBounds, onDrag } from './drawPad.js';

/**
 * The two models the page loads, folders under models/ (served at `./models/` by
 * vite.config.ts; `VNCA.load` reads the weights file names from each model.json).
 *
 * - `GROW_MODEL` grows the samples and the drawn digits: the doubling VNCA, the better one
 *   for samples. `?model=<url of a model.json>` overrides it (any saved `VNCA` works).
 * - `HEAL_MODEL` runs the damage and inpaint modes: the non-doubling VNCA trained from a pool
 *   of damaged states, the one that heals. `?heal-model=<url>` overrides it. The first cut or
 *   mark on a digit of the grow model hands the digit over: the shown image (binarised,
 *   cropped or padded to the heal model's `imageSize`) is encoded by the heal model and grown
 *   by it from the posterior mean, as `measureRegeneration` does.
 */
const GROW_MODEL = 'mnist-small';
const HEAL_MODEL = 'mnist-regen';

// ---------------------------------------------------------------------------------------
// Page elements

function el<T extends HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (!e) throw new Error(`missing element #${id}`);
  return e as T;
}

const body = document.body;
const gridCanvas = el<HTMLCanvasElement>('grid');
const overlay = el<HTMLCanvasElement>('overlay');
/** The digit is drawn in white on black, with a pen a 11th of the pad wide. */
const padCanvas = el<HTMLCanvasElement>('pad');
const pad = new DrawPad(padCanvas, {
  color: () => '#fff',
  width: () => padCanvas.width / 11,
  background: '#000',
});
const padInput = el<HTMLCanvasElement>('pad-input');
const newSampleButton = el<HTMLButtonElement>('new-sample');
const pauseButton = el<HTMLButtonElement>('pause');
const speedSelect = el<HTMLSelectElement>('speed');
const regrowSelect = el<HTMLSelectElement>('regrow-steps');
const inpaintControls = el<HTMLDivElement>('inpaint-controls');
const modeHint = el<HTMLParagraphElement>('mode-hint');
const inpaintRunButton = el<HTMLButtonElement>('inpaint-run');
const inpaintClearButton = el<HTMLButtonElement>('inpaint-clear');
const padGrowButton = el<HTMLButtonElement>('pad-grow');
const padClearButton = el<HTMLButtonElement>('pad-clear');
const backendLabel = el<HTMLSpanElement>('backend');
const spsLabel = el<HTMLSpanElement>('sps');
const phaseLabel = el<HTMLSpanElement>('phase');
const backendNoteLine = el<HTMLParagraphElement>('backend-note');
const modelInfo = el<HTMLParagraphElement>('model-info');
const healInfo = el<HTMLParagraphElement>('heal-info');
const measureLine = el<HTMLParagraphElement>('measure');
const padSeenLabel = el<HTMLSpanElement>('pad-seen');
const healSeen = el<HTMLDivElement>('heal-seen');
const healInput = el<HTMLCanvasElement>('heal-input');
const healSeenLabel = el<HTMLSpanElement>('heal-seen-label');
const debugLine = el<HTMLParagraphElement>('debug');

const gridCtx = gridCanvas.getContext('2d')!;
const overlayCtx = overlay.getContext('2d')!;
const padInputCtx = padInput.getContext('2d')!;

/** Radius, as a fraction of the grid side, of the damage brush and of the inpainting marker. */
const DAMAGE_RADIUS = 3.5 / 28;
const MARK_RADIUS = 2 / 28;

// ---------------------------------------------------------------------------------------
// What runs: the model, the current cell states and the queue of operations still to do

type Status = 'loading' | 'growing' | 'regrowing' | 'paused' | 'inpainting' | 'done' | 'error';
type Op = 'step' | 'double';

interface Run {
  kind: 'grow' | 'regrow';
  ops: Op[];
  done: number;
}

/** The model of `state` (the grow model or the heal model). */
let model: VNCA | null = null;
/** The doubling model for samples and drawings, and the model that heals (damage, inpaint). */
let growModel: VNCA | null = null;
let healModel: VNCA | null = null;
const modelNames = new Map<VNCA, string>();
/**
 * The page's regeneration measure, as `measureRegeneration` defines it: x is the image the
 * heal model encoded (binary), L0 = log p(x | grown state), Ld = log p(x | state right after
 * the last cut), Lr = log p(x | state after the regrowth); recovery = (Lr - Ld) / (L0 - Ld).
 */
interface Measure { x: tf.Tensor4D; l0: number; ld: number | null; lr: number | null }
let measured: Measure | null = null;
/** Current cell states `[1, h, w, zSize]`; this module owns it. */
let state: tf.Tensor4D | null = null;
let run: Run | null = null;
let paused = false;
let status: Status = 'loading';
/** Growths started (new samples and drawings). */
let sampleCount = 0;
/** Bumped on every change of `state`; the canvas shows `drawnVersion`. */
let version = 0;
let drawnVersion = -1;
/**
 * The steps-per-second meter: (time, update steps so far) after each drawn frame of a run,
 * over the last second. Measured at read-back, so queued GPU work is counted when done.
 */
const meter: { t: number; steps: number }[] = [];
let totalSteps = 0;
let stepsPerSecond = 0;
let lastOpTime = 0;
/** Marked cells of the inpainting mode, `imageSize x imageSize`, 1 = fill in. */
let inpaintMask = new Float32Array(0);

function setStatus(s: Status): void {
  status = s;
  body.dataset.status = s;
}

function setState(next: tf.Tensor4D | null): void {
  if (state && state !== next) state.dispose();
  state = next;
  version++;
  body.dataset.version = String(version);
}

/** Runs started (growths and regrowths); the steps/s readout says which one it measured. */
let runCount = 0;

/** Starts a run; the steps/s meter starts afresh with it. */
function startRun(r: Run): void {
  run = r;
  meter.length = 0;
  runCount++;
  body.dataset.runs = String(runCount);
}

function mode(): 'damage' | 'inpaint' {
  const checked = document.querySelector<HTMLInputElement>('input[name="mode"]:checked');
  return checked?.value === 'inpaint' ? 'inpaint' : 'damage';
}

/** The growth schedule of the model: update steps and divisions, from the seed to full size. */
function growthPlan(m: VNCA): Op[] {
  const c = m.config;
  if (c.growth === 'fixed') return new Array<Op>(Math.round((c.stepsRange[0] + c.stepsRange[1]) / 2)).fill('step');
  const block = new Array<Op>(c.stepsPerDoubling).fill('step');
  const ops: Op[] = [...block];
  for (let i = 0; i < c.nDoublings; i++) ops.push('double', ...block);
  return ops;
}

/**
 * Update steps after a cut: by default as many as the model runs after its last division
 * (the default of `model.regenerate`). The doubling VNCA was trained to stop there and was
 * never trained on damage: run it much longer and its image drifts.
 */
function defaultRegrowSteps(m: VNCA): number {
  return m.config.growth === 'fixed' ? m.config.stepsRange[0] : m.config.stepsPerDoubling;
}

/** Starts growing from latents `z` `[1, zSize]` of the grow model (taken over and disposed). */
function startGrowth(z: tf.Tensor2D): void {
  const m = growModel!;
  model = m;
  setMeasure(null);
  const s = m.seedSize;
  const zSize = m.config.zSize;
  const seed = tf.tidy(() => tf.tile(tf.reshape(z, [1, 1, 1, zSize]), [1, s, s, 1]) as tf.Tensor4D);
  z.dispose();
  setState(seed);
  startRun({ kind: 'grow', ops: growthPlan(m), done: 0 });
  clearInpaintMask();
  sampleCount++;
  body.dataset.sample = String(sampleCount);
  setStatus(paused ? 'paused' : 'growing');
}

/** `?seed=<int>` makes the samples reproducible: sample i draws z with seed + i. */
const seedParam = new URLSearchParams(location.search).get('seed');
const baseSeed = seedParam !== null && /^\d+$/.test(seedParam) ? Number(seedParam) : undefined;

function newSample(): void {
  if (!growModel) return;
  const seed = baseSeed === undefined ? undefined : baseSeed + sampleCount;
  startGrowth(tf.randomNormal([1, growModel.config.zSize], 0, 1, 'float32', seed) as tf.Tensor2D);
}

/** One operation of the current run. */
function advance(): void {
  const m = model!;
  const r = run!;
  const op = r.ops[r.done]!;
  setState(op === 'double' ? doubleCells(state!) : step(m.rule, state!, { pUpdate: m.config.pUpdate }));
  r.done++;
  if (op === 'step') totalSteps++;
  if (r.done >= r.ops.length) {
    run = null;
    if (r.kind === 'regrow' && measured) {
      measured.lr = logLikelihood(state!, measured.x);
      showMeasure();
    }
  }
}

// ---------------------------------------------------------------------------------------
// The regeneration measure of the page

/** log p(x | state) of the heal model, nats. */
function logLikelihood(s: tf.Tensor4D, x: tf.Tensor4D): number {
  return tf.tidy(() => healModel!.logLikelihood(s, x).dataSync()[0]!);
}

function setMeasure(next: Measure | null): void {
  if (measured && measured !== next) measured.x.dispose();
  measured = next;
  showMeasure();
  healSeen.hidden = next === null;
  if (next) drawBinary(healInput, next.x.dataSync(), next.x.shape[1]);
}

/** Draws a square binary image `[size * size]` onto a canvas, scaled up without smoothing. */
function drawBinary(canvas: HTMLCanvasElement, values: ArrayLike<number>, size: number): void {
  const tmp = document.createElement('canvas');
  tmp.width = size;
  tmp.height = size;
  const tctx = tmp.getContext('2d')!;
  const image = tctx.createImageData(size, size);
  for (let i = 0; i < size * size; i++) {
    image.data.fill(values[i]! > 0.5 ? 255 : 0, 4 * i, 4 * i + 3);
    image.data[4 * i + 3] = 255;
  }
  tctx.putImageData(image, 0, 0);
  const ctx = canvas.getContext('2d')!;
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(tmp, 0, 0, canvas.width, canvas.height);
}

/** The readout under the grid and data-l0 / data-ld / data-lr / data-recovery on <body>. */
function showMeasure(): void {
  const m = measured;
  const fmt = (v: number | null | undefined): string => (v === null || v === undefined ? '–' : v.toFixed(1));
  const recovery = m && m.ld !== null && m.lr !== null ? (m.lr - m.ld) / (m.l0 - m.ld) : null;
  body.dataset.l0 = m ? m.l0.toFixed(3) : '';
  body.dataset.ld = m?.ld != null ? m.ld.toFixed(3) : '';
  body.dataset.lr = m?.lr != null ? m.lr.toFixed(3) : '';
  body.dataset.recovery = recovery === null ? '' : recovery.toFixed(3);
  if (!m) {
    measureLine.textContent = `Regrowth measure: cut the digit (damage mode) to hand it to ${HEAL_MODEL} and measure its recovery.`;
    return;
  }
  if (m.ld === null) {
    measureLine.textContent = `log p(x | state), ${HEAL_MODEL}: grown ${fmt(m.l0)} nats · cut it (damage mode) to measure its regrowth`;
    return;
  }
  measureLine.textContent = `log p(x | state), ${HEAL_MODEL}: grown ${fmt(m.l0)} · after the cut ${fmt(m.ld)} · regrown ${fmt(m.lr)} nats`
    + ` · recovery ${recovery === null ? '–' : `${Math.round(100 * recovery)}%`}`;
}

/**
 * Hands the shown digit of the grow model to the heal model: binarised, cropped (or padded)
 * to its image size, encoded, grown from the posterior mean. Returns false if not possible now.
 */
function handOver(): boolean {
  if (!healModel || !state || !model) return false;
  if (model === healModel) return true;
  if (run?.kind === 'grow') return false; // a growth of the grow model is still running
  const heal = healModel;
  const from = model;
  const size = heal.config.imageSize;
  const x = tf.tidy(() => {
    const img = tf.cast(tf.greater(from.render(state!), 0.5), 'float32') as tf.Tensor4D;
    const side = img.shape[1];
    if (side === size) return img;
    if (side > size) {
      const o = Math.floor((side - size) / 2);
      return tf.slice(img, [0, o, o, 0], [1, size, size, -1]) as tf.Tensor4D;
    }
    const o = Math.floor((size - side) / 2);
    return tf.pad(img, [[0, 0], [o, size - side - o], [o, size - side - o], [0, 0]]) as tf.Tensor4D;
  });
  const grown = tf.tidy(() => {
    const q = heal.encode(x);
    const s = heal.decode(q.mean as tf.Tensor2D, { seed: 1 });
    q.dispose();
    return s;
  });
  model = heal;
  run = null;
  setState(grown);
  inpaintMask = new Float32Array(size * size);
  setMeasure({ x, l0: logLikelihood(grown, x), ld: null, lr: null });
  const regrow = String(defaultRegrowSteps(heal));
  if (!Array.from(regrowSelect.options).some((o) => o.value === regrow)) regrowSelect.add(new Option(`${regrow} steps`, regrow));
  regrowSelect.value = regrow;
  return true;
}

function speedLimit(): number {
  return speedSelect.value === 'max' ? Infinity : Number(speedSelect.value);
}

// ---------------------------------------------------------------------------------------
// Drawing cells: a colour map from pixel probability to colour, then scaled up, no smoothing

const COLORS = (() => {
  const stops: [number, number, number, number][] = [
    [0, 6, 8, 14], [0.5, 46, 84, 170], [0.8, 240, 190, 90], [1, 255, 248, 228],
  ];
  const lut = new Uint8ClampedArray(256 * 3);
  for (let i = 0; i < 256; i++) {
    const p = i / 255;
    let k = 0;
    while (k < stops.length - 2 && p > stops[k + 1]![0]) k++;
    const [p0, r0, g0, b0] = stops[k]!;
    const [p1, r1, g1, b1] = stops[k + 1]!;
    const t = (p - p0) / (p1 - p0);
    lut[3 * i] = r0 + t * (r1 - r0);
    lut[3 * i + 1] = g0 + t * (g1 - g0);
    lut[3 * i + 2] = b0 + t * (b1 - b0);
  }
  return lut;
})();

const cellCanvas = document.createElement('canvas');
const cellCtx = cellCanvas.getContext('2d')!;

/** Paints pixel probabilities `[h * w]` (row-major) onto the grid canvas. */
function paint(values: ArrayLike<number>, h: number, w: number): void {
  if (cellCanvas.width !== w || cellCanvas.height !== h) {
    cellCanvas.width = w;
    cellCanvas.height = h;
  }
  const image = cellCtx.createImageData(w, h);
  for (let i = 0; i < h * w; i++) {
    const c = 3 * Math.round(Math.min(1, Math.max(0, values[i]!)) * 255);
    image.data[4 * i] = COLORS[c]!;
    image.data[4 * i + 1] = COLORS[c + 1]!;
    image.data[4 * i + 2] = COLORS[c + 2]!;
    image.data[4 * i + 3] = 255;
  }
  cellCtx.putImageData(image, 0, 0);
  gridCtx.imageSmoothingEnabled = false;
  gridCtx.drawImage(cellCanvas, 0, 0, gridCanvas.width, gridCanvas.height);
}

/** Renders the current state (`model.render`: sigmoid of channel 0) onto the canvas. */
async function drawState(): Promise<void> {
  if (!state || !model) return;
  const shown = version;
  const image = model.render(state);
  const [, h, w] = image.shape;
  const values = await image.data();
  image.dispose();
  paint(values, h, w);
  drawnVersion = shown;
  body.dataset.drawn = String(shown);
}

// ---------------------------------------------------------------------------------------
// The animation loop: one tick per frame; at "as fast as possible" as many operations as fit
// in ~12 ms of the frame (on webgl they queue up and the read-back of the image waits for them)

async function tick(now: number): Promise<void> {
  try {
    const running = model !== null && state !== null && run !== null && !paused;
    if (running && meter.length === 0) meter.push({ t: performance.now(), steps: totalSteps });
    if (running) {
      const limit = speedLimit();
      if (limit === Infinity) {
        const start = performance.now();
        do advance(); while (run && performance.now() - start < 12);
      } else if (now - lastOpTime >= 1000 / limit) {
        lastOpTime = now;
        advance();
      }
    }
    if (state && drawnVersion !== version) await drawState();
    if (running) measure();
    else meter.length = 0;
    if (!run && (status === 'growing' || status === 'regrowing') && drawnVersion === version) setStatus('done');
    updateReadouts();
  } catch (e) {
    fail(e);
    return;
  }
  requestAnimationFrame((t) => void tick(t));
}

/**
 * Updates the meter over the current run's last second. The meter starts afresh with each
 * run, so a short regrowth (a few steps) shows its own speed, not the last growth's.
 */
function measure(): void {
  const now = performance.now();
  meter.push({ t: now, steps: totalSteps });
  while (meter.length > 2 && now - meter[1]!.t > 1000) meter.shift();
  const first = meter[0]!;
  if (now > first.t && totalSteps > first.steps) {
    stepsPerSecond = ((totalSteps - first.steps) * 1000) / (now - first.t);
    body.dataset.spsRun = String(runCount);
  }
}

function updateReadouts(): void {
  const running = run !== null && !paused;
  spsLabel.textContent = stepsPerSecond > 0 ? `${stepsPerSecond.toFixed(1)} steps/s` : '– steps/s';
  spsLabel.style.opacity = running ? '1' : '0.7';
  body.dataset.stepsPerSecond = stepsPerSecond.toFixed(1);

  const grid = state ? `${state.shape[1]}×${state.shape[2]}` : '';
  body.dataset.grid = state ? String(state.shape[1]) : '';
  const name = model ? modelNames.get(model) ?? '' : '';
  body.dataset.model = name;
  let phase = '';
  if (status === 'loading') phase = 'loading model…';
  else if (status === 'inpainting') phase = 'inpainting…';
  else if (status === 'error') phase = phaseLabel.textContent ?? 'error';
  else if (run) {
    const stepsDone = run.ops.slice(0, run.done).filter((o) => o === 'step').length;
    const stepsAll = run.ops.filter((o) => o === 'step').length;
    const what = run.kind === 'grow' ? 'growing' : 'regrowing';
    phase = `${paused ? 'paused, ' : ''}${what} · ${name} · step ${stepsDone}/${stepsAll} · grid ${grid}`;
  } else if (state) phase = `${paused ? 'paused · ' : ''}grown · ${name} · grid ${grid} · sample ${sampleCount}`;
  phaseLabel.textContent = phase;

  const mem = tf.memory();
  body.dataset.tensors = String(mem.numTensors);
  debugLine.textContent = `tensors: ${mem.numTensors} · tensor memory: ${(mem.numBytes / 2 ** 20).toFixed(1)} MiB`
    + ` · frames drawn: ${drawnVersion < 0 ? 0 : drawnVersion}`;

  const ready = model !== null && status !== 'inpainting';
  newSampleButton.disabled = !ready;
  pauseButton.disabled = !ready;
  padGrowButton.disabled = !ready || !pad.hasInk;
  inpaintRunButton.disabled = !ready || run?.kind === 'grow' || !inpaintMask.some((v) => v > 0);
}

function fail(e: unknown): void {
  console.error(e);
  const message = e instanceof Error ? e.message : String(e);
  setStatus('error');
  body.dataset.error = message;
  phaseLabel.textContent = `error: ${message}`;
}

// ---------------------------------------------------------------------------------------
// The mouse on the grid: damage (cut cells away, regrow) or mark a region to inpaint

function damageAt(u: number, v: number): void {
  if (!model || !state || !handOver()) return;
  const [, h, w] = state.shape;
  const radius = Math.max(1, DAMAGE_RADIUS * h);
  setState(damage(state, { shape: 'circle', centerY: v * h - 0.5, centerX: u * w - 0.5, radius }));
  if (measured) {
    measured.ld = logLikelihood(state, measured.x);
    measured.lr = null;
    showMeasure();
  }
  // Every cut restarts the regrowth count (a cut during growth leaves the growth running).
  if (!run || run.kind === 'regrow') {
    startRun({ kind: 'regrow', ops: new Array<Op>(Number(regrowSelect.value)).fill('step'), done: 0 });
  }
  if (status !== 'growing') setStatus(paused ? 'paused' : 'regrowing');
}

function markAt(u: number, v: number): void {
  if (!model || !handOver()) return;
  const size = model.config.imageSize;
  const cy = v * size - 0.5, cx = u * size - 0.5;
  const r = MARK_RADIUS * size;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      if ((y - cy) ** 2 + (x - cx) ** 2 <= r ** 2) inpaintMask[y * size + x] = 1;
    }
  }
  drawMarks();
}

function drawMarks(): void {
  overlayCtx.clearRect(0, 0, overlay.width, overlay.height);
  if (!model) return;
  const size = model.config.imageSize;
  const cell = overlay.width / size;
  overlayCtx.fillStyle = 'rgba(255, 70, 90, 0.45)';
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      if (inpaintMask[y * size + x]! > 0) overlayCtx.fillRect(x * cell, y * cell, cell, cell);
    }
  }
}

function clearInpaintMask(): void {
  inpaintMask.fill(0);
  drawMarks();
}

onDrag(overlay, {
  canStart: () => model !== null && status !== 'inpainting',
  move: (u, v) => {
    if (u < 0 || u >= 1 || v < 0 || v >= 1) return;
    if (mode() === 'damage') damageAt(u, v);
    else markAt(u, v);
  },
});

/**
 * Inpainting with `model.inpaint`: the current image (binarised, as the model was trained)
 * with the marked cells unknown. The result is shown; it is then encoded again and grown
 * (not shown) so that damage keeps working on cell states that look like it.
 */
async function inpaintMarked(): Promise<void> {
  if (!model || !state || !inpaintMask.some((v) => v > 0)) return;
  const m = model;
  const size = m.config.imageSize;
  run = null;
  setStatus('inpainting');
  updateReadouts();
  await new Promise((resolve) => requestAnimationFrame(resolve)); // let the status show first
  const mask = tf.tensor2d(inpaintMask, [size, size]);
  const x = tf.tidy(() => tf.cast(tf.greater(m.render(state!), 0.5), 'float32') as tf.Tensor4D);
  const filled = m.inpaint(x, mask);
  const grown = tf.tidy(() => {
    const q = m.encode(tf.cast(tf.greater(filled, 0.5), 'float32') as tf.Tensor4D);
    const s = m.decode(q.mean as tf.Tensor2D);
    q.dispose();
    return s;
  });
  const values = await filled.data();
  const xNext = tf.tidy(() => tf.cast(tf.greater(filled, 0.5), 'float32') as tf.Tensor4D);
  tf.dispose([mask, x, filled]);
  setState(grown);
  setMeasure({ x: xNext, l0: logLikelihood(grown, xNext), ld: null, lr: null });
  paint(values, size, size);
  drawnVersion = version;
  body.dataset.drawn = String(version);
  clearInpaintMask();
  setStatus(paused ? 'paused' : 'done');
}

// ---------------------------------------------------------------------------------------
// The drawing pad

function clearPad(): void {
  pad.clear();
  padInputCtx.fillStyle = '#000';
  padInputCtx.fillRect(0, 0, padInput.width, padInput.height);
}

/**
 * The drawing as the model's input, MNIST style: the ink's bounding box scaled to fit
 * 20x20 (of 28), centred, binarised, then padded by 2 on each side. Returns
 * `imageSize * imageSize` values in {0, 1}, or null when nothing is drawn.
 */
function padImage(size: number): Float32Array | null {
  const ink = inkBounds(pad.ctx, (data, i) => data[i]! > 64);
  if (!ink) return null;
  const { top, left, bottom, right } = ink;
  const inner = size - 4; // 28 for 32: MNIST's digit area before the 2-pixel padding
  const box = (inner * 20) / 28;
  const bw = right - left + 1, bh = bottom - top + 1;
  const scale = box / Math.max(bw, bh);
  const small = document.createElement('canvas');
  small.width = inner;
  small.height = inner;
  const sctx = small.getContext('2d', { willReadFrequently: true })!;
  sctx.fillStyle = '#000';
  sctx.fillRect(0, 0, inner, inner);
  sctx.imageSmoothingEnabled = true;
  sctx.imageSmoothingQuality = 'high';
  sctx.drawImage(pad.canvas, left, top, bw, bh, inner / 2 - (bw * scale) / 2, inner / 2 - (bh * scale) / 2, bw * scale, bh * scale);
  const pixels = sctx.getImageData(0, 0, inner, inner).data;
  const out = new Float32Array(size * size);
  for (let y = 0; y < inner; y++) {
    for (let x = 0; x < inner; x++) {
      out[(y + 2) * size + (x + 2)] = pixels[4 * (y * inner + x)]! > 0.35 * 255 ? 1 : 0;
    }
  }
  return out;
}

function growDrawing(): void {
  if (!growModel) return;
  const m = growModel;
  const size = m.config.imageSize;
  const image = padImage(size);
  if (!image) return;
  // Show what the encoder sees.
  const preview = padInputCtx.createImageData(size, size);
  image.forEach((v, i) => {
    preview.data.fill(v > 0 ? 255 : 0, 4 * i, 4 * i + 3);
    preview.data[4 * i + 3] = 255;
  });
  const tmp = document.createElement('canvas');
  tmp.width = size;
  tmp.height = size;
  tmp.getContext('2d')!.putImageData(preview, 0, 0);
  padInputCtx.imageSmoothingEnabled = false;
  padInputCtx.drawImage(tmp, 0, 0, padInput.width, padInput.height);

  const z = tf.tidy(() => {
    const q = m.encode(tf.tensor4d(image, [1, size, size, 1]));
    const mean = tf.clone(q.mean) as tf.Tensor2D;
    q.dispose();
    return mean;
  });
  startGrowth(z);
}

// ---------------------------------------------------------------------------------------
// Buttons

newSampleButton.addEventListener('click', newSample);
pauseButton.addEventListener('click', () => {
  paused = !paused;
  pauseButton.textContent = paused ? 'Resume' : 'Pause';
  body.dataset.paused = String(paused);
  if (paused && run) setStatus('paused');
  else if (!paused && status === 'paused') setStatus(run ? (run.kind === 'grow' ? 'growing' : 'regrowing') : 'done');
});
const DAMAGE_HINT = `Drag across the digit to cut cells away, then watch ${HEAL_MODEL} regrow them. The first cut hands the digit`
  + ` to ${HEAL_MODEL}, a VNCA trained on damaged digits: it encodes the digit and grows it on its own 28×28 grid.`;
const INPAINT_HINT = `Paint over the part to replace, then fill it (${HEAL_MODEL}): the known pixels are kept, the marked ones grow anew.`;
document.querySelectorAll<HTMLInputElement>('input[name="mode"]').forEach((radio) => {
  radio.addEventListener('change', () => {
    inpaintControls.hidden = mode() !== 'inpaint';
    modeHint.textContent = mode() === 'inpaint' ? INPAINT_HINT : DAMAGE_HINT;
    if (mode() === 'damage') clearInpaintMask();
  });
});
inpaintRunButton.addEventListener('click', () => void inpaintMarked().catch(fail));
inpaintClearButton.addEventListener('click', clearInpaintMask);
padGrowButton.addEventListener('click', growDrawing);
padClearButton.addEventListener('click', clearPad);

// ---------------------------------------------------------------------------------------
// Start: backend, model, first sample

async function main(): Promise<void> {
  clearPad();
  const choice = await startBackend(new URLSearchParams(location.search).get('backend'));
  body.dataset.backend = choice.name;
  body.dataset.fma = String(choice.fma);
  body.dataset.softwareGpu = String(choice.softwareGpu);
  const { label, title } = describeBackend(choice);
  backendLabel.textContent = label;
  backendLabel.title = title;
  const note = backendNote(choice);
  backendNoteLine.textContent = note;
  backendNoteLine.hidden = note === '';

  const params = new URLSearchParams(location.search);
  const growUrl = params.get('model') ?? pretrainedUrl(GROW_MODEL, new URL('models', document.baseURI).href);
  const healUrl = params.get('heal-model') ?? pretrainedUrl(HEAL_MODEL, new URL('models', document.baseURI).href);
  // An explicit handler: bundlers may tree-shake the module that registers the http:// scheme.
  [growModel, healModel] = await Promise.all([VNCA.load(tf.io.http(growUrl)), VNCA.load(tf.io.http(healUrl))]);
  const shortName = (url: string, name: string): string => (url.includes(`models/${name}/`) ? name : url);
  modelNames.set(growModel, shortName(growUrl, GROW_MODEL));
  modelNames.set(healModel, shortName(healUrl, HEAL_MODEL));
  model = growModel;
  const c = growModel.config;
  inpaintMask = new Float32Array(c.imageSize * c.imageSize);
  const regrow = String(defaultRegrowSteps(healModel));
  if (!Array.from(regrowSelect.options).some((o) => o.value === regrow)) regrowSelect.add(new Option(`${regrow} steps`, regrow));
  regrowSelect.value = regrow;
  healSeenLabel.textContent = `what ${modelNames.get(healModel)} was given: ${healModel.config.imageSize}×${healModel.config.imageSize}, binarised (the x of the measure)`;
  padSeenLabel.textContent = `what the encoder of ${modelNames.get(growModel)} sees: ${c.imageSize}×${c.imageSize}, binarised`;
  modelInfo.textContent = describeModel(growModel, 'samples, drawings');
  healInfo.textContent = describeModel(healModel, 'damage and inpaint modes');
  body.dataset.growModel = modelNames.get(growModel);
  body.dataset.healModel = modelNames.get(healModel);
  modeHint.textContent = mode() === 'inpaint' ? INPAINT_HINT : DAMAGE_HINT;
  showMeasure();
  newSample();
  requestAnimationFrame((t) => void tick(t));
}

function describeModel(m: VNCA, use: string): string {
  const c = m.config;
  const steps = growthPlan(m).filter((o) => o === 'step').length;
  const how = c.growth === 'doubling'
    ? `doubling, ${steps} update steps, ${m.seedSize}×${m.seedSize} → ${c.imageSize}×${c.imageSize}`
    : `fixed ${c.imageSize}×${c.imageSize} grid, ${c.stepsRange[0]}–${c.stepsRange[1]} steps, regrowth ${defaultRegrowSteps(m)} steps`;
  return `${use}: ${modelNames.get(m)} · zSize ${c.zSize} · ${m.countParams().toLocaleString('en-US')} parameters · ${how}`;
}

window.addEventListener('unhandledrejection', (e) => fail(e.reason));
main().catch(fail);
