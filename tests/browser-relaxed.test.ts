/**
 * vnca's relaxed-SIMD (FMA) kernels on tfjs-backend-wasm in a browser: Debian's headless
 * Chromium (which has relaxed SIMD since 114) loads a small test page
 * (tests/fixtures/browser-relaxed, built with Vite, served on 127.0.0.1). The page runs
 * matMuls and convolutions above the kernels' size thresholds with the kernels off, calls
 * `enableRelaxedSimdKernels()`, and runs them again; the test checks that the call returned
 * true, that it replaced the backend's kernels, and that every result matches the backend's
 * own to float tolerance while differing in its last bits (the FMA kernels ran).
 *
 * Needs /usr/bin/chromium (`apt-get install chromium`; .ci/run installs it). Without it
 * the test is skipped, except in CI (`CI` set), where it must run.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'vite';
import { CHROMIUM_PATH, launchChromium, serveStatic, type Browser, type StaticServer } from './helpers/browser.js';
import type { RelaxedSimdReport } from './fixtures/browser-relaxed/main.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const fixture = join(repoRoot, 'tests/fixtures/browser-relaxed');
const missingChromium = !existsSync(CHROMIUM_PATH);
const skip = missingChromium && !process.env.CI;
if (skip) {
  console.warn(`browser-relaxed.test.ts skipped: ${CHROMIUM_PATH} is missing (apt-get install chromium). In CI it runs.`);
}

describe.skipIf(skip)('relaxed-SIMD kernels on the wasm backend in headless Chromium', () => {
  let outDir = '';
  let server: StaticServer | null = null;
  let browser: Browser | null = null;
  let report: RelaxedSimdReport;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    if (missingChromium) throw new Error(`${CHROMIUM_PATH} is missing: apt-get install -y chromium (.ci/run does it)`);
    outDir = mkdtempSync(join(tmpdir(), 'vnca-browser-relaxed-'));
    await build({
      root: fixture,
      base: './',
      configFile: false,
      logLevel: 'warn',
      build: { outDir, emptyOutDir: true, target: 'es2022', chunkSizeWarningLimit: 4096 },
      server: { fs: { allow: [repoRoot] } },
    });
    server = await serveStatic(outDir);
    browser = await launchChromium();
    const page = await browser.context.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => { if (m.type() === 'error') pageErrors.push(m.text()); });
    await page.goto(server.url);
    await page.waitForFunction(() => document.body.dataset.status !== 'loading', null, { timeout: 30_000, polling: 50 });
    const status = await page.evaluate(() => ({ ...document.body.dataset }));
    expect(status.status, `page error: ${status.error}`).toBe('done');
    report = (await page.evaluate(() => window.relaxedSimdReport))!;
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    if (outDir) rmSync(outDir, { recursive: true, force: true });
  });

  it('enableRelaxedSimdKernels() returns true and replaces the backend\'s kernels', () => {
    expect(report.userAgent).toMatch(/Chrome\//);
    expect(report.supported).toBe(true);
    expect(report.multiThread).toBe(false); // the page is not cross-origin isolated: the single-threaded build
    expect(report.enabled).toBe(true);
    expect(report.enabledAfter).toBe(true);
    expect(report.kernelReplaced).toBe(true);
    expect(pageErrors).toEqual([]);
  });

  it('matches the backend\'s own matMuls and convolutions to float tolerance', () => {
    expect(report.cases.map((c) => c.name)).toHaveLength(6);
    for (const c of report.cases) {
      // Sums of up to 512 products of values in [-1, 1) (the filter gradient: 2 x 16 x 16),
      // results up to about 30: float32 rounding differs by about 3e-5 at most (measured).
      expect(c.maxAbsDiff, `${c.name}: largest |on - off| (largest |off| ${c.maxAbs})`).toBeLessThan(1e-5 * Math.max(1, c.maxAbs));
      expect(c.bitsDiffer, `${c.name}: no value differs, so the FMA kernel did not run`).toBe(true);
    }
    expect(report.tensorsLeaked).toBe(0);
  });
});
