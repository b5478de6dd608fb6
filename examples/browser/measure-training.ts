/**
 * Measures the training page (train.html) in headless Chromium, as docs/browser-training.md
 * reports it: trains an emoji with a preset on the backend the page picks (wasm on a machine
 * without a GPU), records the loss and train steps/s, takes a screenshot of the page and of
 * the grown automaton at chosen steps, and downloads the weights at the end.
 *
 *   npx tsx examples/browser/measure-training.ts --preset cpu --emoji 🦎 --steps 600 --out out/measure
 *
 * `--set name=value,...` overrides settings of the page's "All settings" after the preset
 * (the names are the inputs' ids less `opt-`: channels, hidden, batch, steps-min, steps-max,
 * pool, damage-after, damage, lr, decay, preview), e.g. to measure an earlier preset:
 *
 *   npx tsx examples/browser/measure-training.ts --preset cpu --steps 300 \
 *     --set channels=12,hidden=64,batch=4,steps-min=32,steps-max=48,pool=128,damage-after=300,lr=0.002,decay=2000
 *
 * Needs Debian's chromium (and fonts-noto-color-emoji for the emoji).
 */
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
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
    set: { type: 'string', default: '' },
    out: { type: 'string', default: 'out/measure-training' },
  },
});
const out = resolve(values.out!);
mkdirSync(out, { recursive: true });
const steps = Number(values.steps);
const shots = values.shots!.split(',').map(Number).filter((s) => s <= steps);

/**
 * CPU seconds used so far by this run's Chromium renderers (the page and its training worker
 * are threads of one renderer), read from /proc on Linux; NaN elsewhere. On a machine shared
 * with other jobs, steps per CPU second are what a visitor with a free core gets, whatever
 * the load while measuring.
 */
function rendererCpuSeconds(): number {
  try {
    const ticks = 100; // USER_HZ on Linux
    const parentOf = (pid: string): string => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]!;
    const ours = (pid: string): boolean => {
      for (let p = pid, hops = 0; p !== '0' && p !== '1' && hops < 10; p = parentOf(p), hops++) {
        if (p === String(process.pid)) return true;
      }
      return false;
    };
    let total = 0;
    for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
      try {
        if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('--type=renderer') || !ours(pid)) continue;
        const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
        total += (Number(fields[11]) + Number(fields[12])) / ticks; // utime, stime
      } catch {
        // the process ended
      }
    }
    return total;
  } catch {
    return NaN;
  }
}

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
  const overrides = values.set!.split(',').filter(Boolean).map((kv) => kv.split('=') as [string, string]);
  await page.evaluate((pairs) => {
    for (const [name, value] of pairs) {
      const input = document.getElementById(`opt-${name}`) as HTMLInputElement | null;
      if (!input) throw new Error(`no setting opt-${name}`);
      input.value = value;
    }
  }, overrides);
  const settings = await page.evaluate(() => Object.fromEntries(Array.from(document.querySelectorAll<HTMLInputElement>('[id^=opt-]'))
    .map((i) => [i.id.slice(4), Number(i.value)])));
  const backend = await page.evaluate(() => document.body.dataset.backend);
  console.log(`backend ${backend}, preset ${values.preset}, emoji ${values.emoji}, settings ${JSON.stringify(settings)}`);
  const t0 = Date.now();
  const cpu0 = rendererCpuSeconds();
  await page.click('#train');
  const log: {
    step: number; seconds: number; cpuSeconds: number; loss: number; lossRecent: number; stepsPerSecond: number; playLoss: number;
  }[] = [];
  for (const shot of shots) {
    await page.waitForFunction((n) => Number(document.body.dataset.snapshot ?? -1) >= n || document.body.dataset.status === 'error',
      shot, { timeout: 0, polling: 500 });
    // Let the automaton grow from this snapshot, then pause the growth view where it ends.
    await page.waitForFunction(() => document.body.dataset.play === 'done' || document.body.dataset.status === 'error', null, { timeout: 0 });
    const d = await page.evaluate(() => ({ ...document.body.dataset }));
    if (d.status === 'error') throw new Error(`page error: ${d.error}`);
    const row = {
      step: Number(d.snapshot), seconds: (Date.now() - t0) / 1000, cpuSeconds: rendererCpuSeconds() - cpu0,
      loss: Number(d.loss), lossRecent: Number(d.lossRecent),
      stepsPerSecond: Number(d.trainStepsPerSecond), playLoss: Number(d.playLoss),
    };
    log.push(row);
    console.log(JSON.stringify(row));
    await page.screenshot({ path: join(out, `page-${String(shot).padStart(4, '0')}.png`), fullPage: true });
    await page.locator('#play').screenshot({ path: join(out, `grown-${String(shot).padStart(4, '0')}.png`) });
  }
  const fma = await page.evaluate(() => document.body.dataset.trainFma);
  console.log(`FMA kernels in the worker: ${fma}`);
  writeFileSync(join(out, 'log.json'), JSON.stringify({ preset: values.preset, emoji: values.emoji, backend, fma, settings, log }, null, 1));
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
