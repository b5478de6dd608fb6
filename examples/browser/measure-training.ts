/**
 * Measures the training page (train.html) in headless Chromium, as docs/browser-training.md
 * reports it: trains an emoji with a preset on the backend the page picks (wasm on a machine
 * without a GPU), records the loss and train steps/s, takes a screenshot of the page and of
 * the grown automaton at chosen steps, and downloads the weights at the end.
 *
 *   npx tsx examples/browser/measure-training.ts --preset cpu --emoji 🦎 --steps 600 --out out/measure
 *
 * Needs Debian's chromium (and fonts-noto-color-emoji for the emoji).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'vite';
import { launchChromium, serveStatic } from '../../tests/helpers/browser.js';

const here = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    preset: { type: 'string', default: 'cpu' },
    emoji: { type: 'string', default: '🦎' },
    steps: { type: 'string', default: '600' },
    shots: { type: 'string', default: '50,100,200,300,400,600' },
    seed: { type: 'string', default: '1' },
    backend: { type: 'string' },
    out: { type: 'string', default: 'out/measure-training' },
  },
});
const out = resolve(values.out!);
mkdirSync(out, { recursive: true });
const steps = Number(values.steps);
const shots = values.shots!.split(',').map(Number).filter((s) => s <= steps);

const dist = join(out, 'site');
await build({ configFile: join(here, 'vite.config.ts'), build: { outDir: dist, emptyOutDir: true }, logLevel: 'warn' });
const server = await serveStatic(dist);
const browser = await launchChromium();
try {
  const page = await browser.context.newPage();
  page.on('pageerror', (e) => console.error('page error:', e.message));
  const query = new URLSearchParams({ preset: values.preset!, seed: values.seed! });
  if (values.backend) query.set('backend', values.backend);
  await page.goto(`${server.url}train.html?${query}`);
  await page.waitForFunction(() => document.body.dataset.status === 'ready');
  await page.fill('#emoji', values.emoji!);
  await page.click('#use-emoji');
  const backend = await page.evaluate(() => document.body.dataset.backend);
  console.log(`backend ${backend}, preset ${values.preset}, emoji ${values.emoji}`);
  const t0 = Date.now();
  await page.click('#train');
  const log: { step: number; seconds: number; loss: number; lossRecent: number; stepsPerSecond: number; playLoss: number }[] = [];
  for (const shot of shots) {
    await page.waitForFunction((n) => Number(document.body.dataset.snapshot ?? -1) >= n || document.body.dataset.status === 'error',
      shot, { timeout: 0, polling: 500 });
    // Let the automaton grow from this snapshot, then pause the growth view where it ends.
    await page.waitForFunction(() => document.body.dataset.play === 'done' || document.body.dataset.status === 'error', null, { timeout: 0 });
    const d = await page.evaluate(() => ({ ...document.body.dataset }));
    if (d.status === 'error') throw new Error(`page error: ${d.error}`);
    const row = {
      step: Number(d.snapshot), seconds: (Date.now() - t0) / 1000, loss: Number(d.loss), lossRecent: Number(d.lossRecent),
      stepsPerSecond: Number(d.trainStepsPerSecond), playLoss: Number(d.playLoss),
    };
    log.push(row);
    console.log(JSON.stringify(row));
    await page.screenshot({ path: join(out, `page-${String(shot).padStart(4, '0')}.png`), fullPage: true });
    await page.locator('#play').screenshot({ path: join(out, `grown-${String(shot).padStart(4, '0')}.png`) });
  }
  writeFileSync(join(out, 'log.json'), JSON.stringify(log, null, 1));
  await page.click('#pause');
  await page.waitForFunction(() => document.body.dataset.paused === 'true', null, { timeout: 0 });
  await page.fill('#model-name', 'model');
  const files: Promise<void>[] = [];
  page.on('download', (dl) => files.push(dl.saveAs(join(out, dl.suggestedFilename()))));
  await page.click('#download');
  await page.waitForTimeout(2000);
  await Promise.all(files);
  console.log(`weights in ${out}: model.json, model.weights.bin`);
} finally {
  await browser.close();
  await server.close();
}
