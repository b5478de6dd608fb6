/**
 * End to end: the training page of the browser example (examples/browser/train.html) in
 * Debian's headless Chromium, as a visitor would use it: draw a target, train a tiny
 * configuration on wasm for a few dozen steps (the loss falls), download the weights, load
 * them into a fresh page (the same growth for the same seed) and in Node with
 * `GrowingNCA.load` and `fileSystem` from 'vnca/node'; then load the page's trained example,
 * cut it with the mouse and watch it regrow (on the page's own measure: the distance to the
 * target), and export a GIF.
 *
 * Chromium runs as CI's would, without a GPU and with its software WebGL (SwiftShader): the
 * page must see the software renderer and choose wasm by itself.
 * Screenshots go to tests/artifacts/browser-train-*.png.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'vite';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import type { Page } from 'playwright-core';
import { GrowingNCA } from '../src/index.js';
import { fileSystem } from '../src/node.js';
import { CHROMIUM_PATH, launchChromium, serveStatic, type Browser, type StaticServer } from './helpers/browser.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const artifacts = join(repoRoot, 'tests/artifacts');
const missingChromium = !existsSync(CHROMIUM_PATH);
const skip = missingChromium && !process.env.CI;
if (skip) {
  console.warn(`browser-train.test.ts skipped: ${CHROMIUM_PATH} is missing (apt-get install chromium). In CI it runs.`);
}

/** Training steps of the tiny configuration. */
const TRAIN_STEPS = 40;

function dataset(page: Page): Promise<Record<string, string | undefined>> {
  return page.evaluate(() => ({ ...document.body.dataset }));
}

/** Waits until the automaton is done (grown or regrown) and the canvas shows it. */
async function waitPlayDone(page: Page): Promise<Record<string, string | undefined>> {
  await page.waitForFunction(() => {
    const d = document.body.dataset;
    return d.status === 'error' || (d.play === 'done' && d.playDrawn === d.playVersion);
  }, null, { timeout: 30_000, polling: 50 });
  const d = await dataset(page);
  expect(d.status, `page error: ${d.error}`).not.toBe('error');
  return d;
}

/** The play canvas as RGB bytes. */
async function readPlay(page: Page): Promise<number[]> {
  return page.evaluate(() => {
    const c = document.getElementById('play') as HTMLCanvasElement;
    return Array.from(c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data);
  });
}

describe.skipIf(skip)('training page (examples/browser/train.html) in headless Chromium', () => {
  let outDir = '';
  let downloads = '';
  let server: StaticServer | null = null;
  let browser: Browser | null = null;
  let page: Page;
  const pageErrors: string[] = [];
  let url = '';

  beforeAll(async () => {
    if (missingChromium) throw new Error(`${CHROMIUM_PATH} is missing: apt-get install -y chromium (.ci/run does it)`);
    mkdirSync(artifacts, { recursive: true });
    outDir = mkdtempSync(join(tmpdir(), 'vnca-train-page-'));
    downloads = mkdtempSync(join(tmpdir(), 'vnca-train-downloads-'));
    await build({
      configFile: join(repoRoot, 'examples/browser/vite.config.ts'),
      build: { outDir, emptyOutDir: true },
      logLevel: 'warn',
    });
    server = await serveStatic(outDir);
    browser = await launchChromium(); // software WebGL on: the page must pass it over
    page = await browser.context.newPage();
    page.setDefaultTimeout(20_000);
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => { if (m.type() === 'error') pageErrors.push(m.text()); });
    url = `${server.url}train.html?preset=tiny&seed=1`;
    await page.goto(url);
    await page.waitForFunction(() => document.body.dataset.status === 'ready' || document.body.dataset.status === 'error');
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    if (outDir) rmSync(outDir, { recursive: true, force: true });
    if (downloads) rmSync(downloads, { recursive: true, force: true });
  });

  it('passes over the software WebGL renderer for wasm, and says why', async () => {
    const d = await dataset(page);
    expect(d.status, `page error: ${d.error}`).toBe('ready');
    expect(d.backend).toBe('wasm');
    expect(d.softwareGpu).toBe('true');
    await expect(page.locator('#backend').textContent()).resolves.toMatch(/backend: wasm \(webgl: software renderer/);
    // Debian's Chromium (114 and later) runs relaxed SIMD: vnca's FMA kernels are on, and the page says so.
    expect(d.fma).toBe('true');
    await expect(page.locator('#backend').textContent()).resolves.toMatch(/FMA kernels on/);
    await expect(page.locator('#backend-note').textContent()).resolves.toMatch(/software renderer.*wasm/);
    await expect(page.locator('#expect').textContent()).resolves.toMatch(/No GPU here/);
  });

  it('takes a drawn target and trains on it: the loss falls', async () => {
    await page.locator('#target-pad').scrollIntoViewIfNeeded();
    const box = (await page.locator('#target-pad').boundingBox())!;
    const p = (u: number, v: number): [number, number] => [box.x + u * box.width, box.y + v * box.height];
    // A green disc, filled with thick horizontal strokes (the automaton grows from the centre
    // cell: a target with a hole there, like a ring, teaches it to die).
    await page.selectOption('#brush-size', '28');
    for (let v = 0.22; v <= 0.79; v += 0.08) {
      const half = Math.sqrt(Math.max(0, 0.3 ** 2 - (v - 0.5) ** 2));
      await page.mouse.move(...p(0.5 - half, v));
      await page.mouse.down();
      await page.mouse.move(...p(0.5 + half, v), { steps: 3 });
      await page.mouse.up();
    }
    await expect(page.locator('#target-info').textContent()).resolves.toMatch(/target: 40×40, \d+ opaque cells/);
    const t0 = Date.now();
    await page.click('#train');
    await page.waitForFunction((n) => Number(document.body.dataset.trainStep ?? 0) >= n || document.body.dataset.status === 'error',
      TRAIN_STEPS, { timeout: 60_000, polling: 100 });
    const seconds = (Date.now() - t0) / 1000;
    await page.click('#pause');
    await page.waitForFunction(() => document.body.dataset.paused === 'true');
    const d = await dataset(page);
    expect(d.status, `page error: ${d.error}`).toBe('paused');
    expect(d.trainBackend).toBe('wasm');
    expect(d.trainFma, 'FMA kernels in the training worker').toBe('true');
    await expect(page.locator('#model-info').textContent()).resolves.toMatch(/wasm \(FMA kernels on\) in a worker/);
    const start = Number(d.lossStart), recent = Number(d.lossRecent);
    console.log(`training page: ${d.trainStep} tiny steps in ${seconds.toFixed(1)} s (${d.trainStepsPerSecond} steps/s on ${d.trainBackend}); loss ${start.toFixed(4)} -> ${recent.toFixed(4)}`);
    expect(recent, 'mean loss of the last 5 steps vs the first 5').toBeLessThan(0.85 * start);
    await page.screenshot({ path: join(artifacts, 'browser-train-01-trained.png'), fullPage: true });
  });

  it('downloads the weights and keeps them in IndexedDB; a new page loads both and grows the same picture for the same seed', async () => {
    await page.click('#grow');
    await waitPlayDone(page);
    const first = await readPlay(page);
    await page.fill('#model-name', 'disc');
    const files: string[] = [];
    const done = new Promise<void>((resolve) => {
      page.on('download', async (dl) => {
        const to = join(downloads, dl.suggestedFilename());
        await dl.saveAs(to);
        files.push(to);
        if (files.length === 2) resolve();
      });
    });
    await page.click('#download');
    await done;
    await page.click('#save-idb'); // IndexedDB too: the new page (same origin) reads it back
    await page.waitForFunction(() => Array.from((document.getElementById('saved-models') as HTMLSelectElement).options).some((o) => o.value === 'disc'));
    expect(files.map((f) => f.slice(downloads.length + 1)).sort()).toEqual(['disc.json', 'disc.weights.bin']);

    const page2 = await browser!.context.newPage();
    page2.on('pageerror', (e) => pageErrors.push(e.message));
    await page2.goto(url);
    await page2.waitForFunction(() => document.body.dataset.status === 'ready');
    await page2.setInputFiles('#load-files', files);
    await page2.waitForFunction(() => document.body.dataset.loaded === '1' || document.body.dataset.status === 'error');
    const d = await waitPlayDone(page2);
    expect(d.snapshot).toBe('loaded');
    const second = await readPlay(page2);
    expect(second.length).toBe(first.length);
    const differing = second.filter((v, i) => Math.abs(v - first[i]!) > 1).length;
    expect(differing, 'canvas bytes that differ between the two pages').toBe(0);
    await page2.screenshot({ path: join(artifacts, 'browser-train-04-loaded.png'), fullPage: true });

    await page2.selectOption('#saved-models', 'disc');
    await page2.click('#load-idb');
    await page2.waitForFunction(() => document.body.dataset.loaded === '2' || document.body.dataset.status === 'error');
    await waitPlayDone(page2);
    const third = await readPlay(page2);
    expect(third.filter((v, i) => Math.abs(v - first[i]!) > 1).length, 'canvas bytes that differ after loading from IndexedDB').toBe(0);
    await page2.close();
  });

  it('loads the downloaded weights in Node with GrowingNCA.load and fileSystem', async () => {
    const dir = join(downloads, 'node');
    mkdirSync(dir);
    // A download is <name>.json + <name>.weights.bin; fileSystem(dir) reads dir/model.json
    // and the weight files its manifest names.
    copyFileSync(join(downloads, 'disc.json'), join(dir, 'model.json'));
    copyFileSync(join(downloads, 'disc.weights.bin'), join(dir, 'disc.weights.bin'));
    expect(JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')).weightsManifest[0].paths).toEqual(['./disc.weights.bin']);
    await tf.setBackend('cpu');
    const nca = await GrowingNCA.load(fileSystem(dir));
    try {
      expect(nca.gridShape).toEqual([40, 40]);
      expect(nca.config.channels).toBe(8);
      expect(nca.config.hidden).toBe(32);
      const { state } = nca.grow(nca.config.stepsRange[1], { seed: 1 });
      const loss = nca.loss(state);
      const l = loss.dataSync()[0]!;
      tf.dispose([state, loss]);
      const target = nca.getTarget();
      const blank = tf.tidy(() => tf.mean(tf.square(target)).dataSync()[0]!);
      target.dispose();
      console.log(`training page: weights grown in Node: distance to target ${l.toFixed(4)} (empty grid: ${blank.toFixed(4)})`);
      expect(l, 'distance to target of a growth in Node vs an empty grid').toBeLessThan(blank);
    } finally {
      nca.dispose();
    }
  });

  it('loads the trained example, grows it, and regrows a cut on its own measure; exports a GIF', async () => {
    // The tiny model of a few dozen steps cannot regrow yet: the page's example (a lizard
    // trained on this page) can.
    await page.click('#example');
    await page.waitForFunction(() => document.body.dataset.loaded === '1' || document.body.dataset.status === 'error');
    const grown = await waitPlayDone(page);
    const lossGrown = Number(grown.playLoss);
    await page.locator('#play').scrollIntoViewIfNeeded();
    await page.locator('#play').screenshot({ path: join(artifacts, 'browser-train-play-1-grown.png') });
    const box = (await page.locator('#play').boundingBox())!;
    // Cut across the middle of the lizard.
    await page.mouse.move(box.x + 0.35 * box.width, box.y + 0.5 * box.height);
    await page.mouse.down();
    await page.mouse.move(box.x + 0.65 * box.width, box.y + 0.5 * box.height, { steps: 4 });
    await page.mouse.up();
    // The page's measure of the damaged state, taken at the stroke's last cut before any
    // regrowth step (a measure at the next draw, a frame's steps in, ran later the faster
    // the page and the model regrow).
    await page.waitForFunction(() => document.body.dataset.cutPending === 'false');
    await page.locator('#play').screenshot({ path: join(artifacts, 'browser-train-play-2-cut.png') });
    const cutLoss = Number((await dataset(page)).cutLoss);
    await page.screenshot({ path: join(artifacts, 'browser-train-05-cut.png'), fullPage: true });
    const regrown = await waitPlayDone(page);
    const lossRegrown = Number(regrown.playLoss);
    await page.screenshot({ path: join(artifacts, 'browser-train-06-regrown.png'), fullPage: true });
    await page.locator('#play').screenshot({ path: join(artifacts, 'browser-train-play-3-regrown.png') });
    console.log(`training page: distance to target ${lossGrown.toFixed(4)} grown, ${cutLoss.toFixed(4)} after the cut, ${lossRegrown.toFixed(4)} regrown`);
    expect(cutLoss, 'distance after the cut vs grown').toBeGreaterThan(lossGrown);
    expect(lossRegrown, 'distance regrown vs after the cut').toBeLessThan(cutLoss);
    // Measured just after the cut (before any regrowth), the example gets back about half of
    // what a stroke across its middle adds (0.0033 grown, 0.0151-0.0181 cut, 0.0097-0.0118
    // regrown in seven runs): the body and legs regrow, a speckle stays where the cut was
    // (docs/browser-training.md). Regrown, it is nearer the target than the 600-step lizard it
    // replaced was grown (0.014).
    expect(lossRegrown - lossGrown, 'distance regrown vs grown: at least 30% of the cut is back').toBeLessThan(0.7 * (cutLoss - lossGrown));

    await page.click('#gif');
    await page.waitForFunction(() => Number(document.body.dataset.gifBytes ?? 0) > 0 || document.body.dataset.status === 'error', null, { timeout: 30_000 });
    const d = await dataset(page);
    expect(d.status, `page error: ${d.error}`).not.toBe('error');
    expect(Number(d.gifBytes), 'GIF size in bytes').toBeGreaterThan(10_000);
    expect(pageErrors, 'errors in the page').toEqual([]);
  });
});
