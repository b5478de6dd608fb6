/**
 * Draws a training curve (a CSV with a `step` column) as an SVG line chart for the docs:
 *
 *   npx tsx tools/plot-curve.ts --csv docs/img/regen-curve.csv --columns loss,recon,kl \
 *     --title "mnist-regen training" --out docs/img/regen-curve.svg [--mark 1100:"resumed"] [--y-min 60 --y-max 160]
 *
 * Empty cells are skipped (a column measured at fewer steps is drawn through its own points).
 * Plain SVG text: no chart library, nothing to rasterise; GitHub and typedoc show it as an image.
 */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { writeFileAtomic } from '../src/node.js';

const opts = new Command()
  .requiredOption('--csv <file>', 'CSV with a header row and a step column')
  .option('--columns <list>', 'columns to draw', 'loss')
  .option('--labels <list>', 'legend labels (default: the column names)')
  .option('--title <text>', 'chart title', '')
  .option('--y-label <text>', 'y axis label', 'nats')
  .option('--mark <step:text...>', 'vertical marker lines')
  .option('--y-max <n>', 'top of the y axis: larger values are drawn at the top (cut off)', Number)
  .option('--y-min <n>', 'bottom of the y axis (default: 0 or the smallest value): smaller values are drawn at the bottom', Number)
  .requiredOption('--out <file>', 'output .svg')
  .parse()
  .opts<{ csv: string; columns: string; labels?: string; title: string; yLabel: string; mark?: string[]; yMax?: number; yMin?: number; out: string }>();

const [head, ...rows] = readFileSync(opts.csv, 'utf8').trim().split('\n').map((l) => l.split(','));
const col = (name: string) => {
  const i = head!.indexOf(name);
  if (i < 0) throw new Error(`${opts.csv} has no column '${name}' (columns: ${head!.join(', ')})`);
  // An empty cell is a step the column was not measured at (a held-out loss every few
  // hundred steps beside a training loss every 20): the line joins the measured points.
  return rows.map((r) => (r[i] === undefined || r[i]!.trim() === '' ? NaN : Number(r[i])));
};
const steps = col('step');
const names = opts.columns.split(',');
const labels = opts.labels ? opts.labels.split(',') : names;
const series = names.map(col)
  .map((s) => (opts.yMax === undefined ? s : s.map((v) => Math.min(v, opts.yMax!))))
  .map((s) => (opts.yMin === undefined ? s : s.map((v) => Math.max(v, opts.yMin!))));
const W = 720, H = 360, L = 64, R = 16, T = 36, B = 44;
const xMin = Math.min(...steps), xMax = Math.max(...steps);
const all = series.flat().filter(Number.isFinite);
const yMin = opts.yMin ?? Math.min(0, ...all), yMax = Math.max(...all);
const x = (v: number) => L + ((v - xMin) / (xMax - xMin || 1)) * (W - L - R);
const y = (v: number) => T + (1 - (v - yMin) / (yMax - yMin || 1)) * (H - T - B);
const nice = (span: number) => { const p = 10 ** Math.floor(Math.log10(span / 5)); return [1, 2, 5, 10].map((m) => m * p).find((s) => span / s <= 6)!; };
const ticks = (lo: number, hi: number) => { const s = nice(hi - lo); const out = []; for (let v = Math.ceil(lo / s) * s; v <= hi; v += s) out.push(v); return out; };
const colors = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728'];
const parts: string[] = [
  `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
  `<rect width="${W}" height="${H}" fill="white"/>`,
  `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${opts.title}</text>`,
];
for (const v of ticks(yMin, yMax)) {
  parts.push(`<line x1="${L}" x2="${W - R}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`, `<text x="${L - 6}" y="${y(v) + 4}" text-anchor="end">${v}</text>`);
}
for (const v of ticks(xMin, xMax)) {
  parts.push(`<line x1="${x(v)}" x2="${x(v)}" y1="${H - B}" y2="${H - B + 4}" stroke="#333"/>`, `<text x="${x(v)}" y="${H - B + 16}" text-anchor="middle">${v}</text>`);
}
parts.push(
  `<line x1="${L}" x2="${W - R}" y1="${H - B}" y2="${H - B}" stroke="#333"/>`,
  `<line x1="${L}" x2="${L}" y1="${T}" y2="${H - B}" stroke="#333"/>`,
  `<text x="${(L + W - R) / 2}" y="${H - 8}" text-anchor="middle">training step</text>`,
  `<text x="14" y="${(T + H - B) / 2}" text-anchor="middle" transform="rotate(-90 14 ${(T + H - B) / 2})">${opts.yLabel}</text>`,
);
/** A marker's label left of its line, or right of it where the left side has no room; alternate rows. */
function markLabel(at: number, text: string, row: number): string {
  const left = at - L > 6.5 * text.length;
  return `<text x="${left ? at - 4 : at + 4}" y="${T + 12 + 14 * row}" fill="#666" text-anchor="${left ? 'end' : 'start'}">${text}</text>`;
}
for (const [row, m] of (opts.mark ?? []).entries()) {
  const [at, text] = [Number(m.split(':')[0]), m.split(':').slice(1).join(':')];
  parts.push(`<line x1="${x(at)}" x2="${x(at)}" y1="${T}" y2="${H - B}" stroke="#999" stroke-dasharray="4 3"/>`, markLabel(x(at), text, row % 2));
}
series.forEach((s, k) => {
  const points = s.flatMap((v, i) => (Number.isFinite(v) ? [[x(steps[i]!), y(v)] as const] : []));
  const d = points.map(([px, py], i) => `${i ? 'L' : 'M'}${px.toFixed(1)},${py.toFixed(1)}`).join('');
  parts.push(`<path d="${d}" fill="none" stroke="${colors[k % colors.length]}" stroke-width="1.5"/>`);
  const top = T + 70 + 16 * k;
  parts.push(`<rect x="${W - R - 190}" y="${top}" width="12" height="3" fill="${colors[k % colors.length]}"/>`, `<text x="${W - R - 172}" y="${top + 5}">${labels[k]}</text>`);
});
parts.push('</svg>');
writeFileAtomic(opts.out, `${parts.join('\n')}\n`);
console.log(`wrote ${opts.out} (${rows.length} points)`);
