/**
 * Timing and progress output for the `vnca` command and the examples: a `cli-progress` bar on
 * a terminal, and plain lines now and then otherwise (logs, CI, pipes), never bar drawing.
 */
import cliProgress from 'cli-progress';

/** Seconds since `start` (a `performance.now()` value), as text: `12.3 s`. */
export function since(start: number): string {
  return `${((performance.now() - start) / 1000).toFixed(1)} s`;
}

/** Seconds as `1:05` or `42 s`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  if (seconds < 60) return `${seconds.toFixed(0)} s`;
  const m = Math.floor(seconds / 60);
  const s = Math.round(seconds % 60);
  return `${m}:${String(s).padStart(2, '0')}`;
}

/** A progress display: a `cli-progress` bar on a terminal, a plain line now and then otherwise (logs, tests). */
export interface Progress {
  /** Reports `value` of `total` done, with named numbers to show (already formatted). */
  update(value: number, fields: Record<string, string>): void;
  /** Ends the display. */
  stop(): void;
}

/**
 * Starts a progress display.
 *
 * @param label What is being done (`training`, `IWAE`).
 * @param total Units of work in all.
 * @param start Units already done (when resuming).
 * @param fields Names of the numbers shown after the counter, in order.
 */
export function progress(label: string, total: number, start: number, fields: string[]): Progress {
  const t0 = performance.now();
  const rate = (value: number) => (value - start) / ((performance.now() - t0) / 1000);
  const eta = (value: number) => formatDuration((total - value) / rate(value));
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar({
      format: `${label} [{bar}] {value}/{total} | ${fields.map((f) => `${f} {${f}}`).join(' | ')} | {rate}/s | ETA {etaText}`,
      hideCursor: true,
      barsize: 24,
    }, cliProgress.Presets.shades_classic);
    bar.start(total, start, { ...Object.fromEntries(fields.map((f) => [f, '-'])), rate: '-', etaText: '-' });
    return {
      update: (value, values) => bar.update(value, { ...values, rate: rate(value).toFixed(2), etaText: eta(value) }),
      stop: () => bar.stop(),
    };
  }
  // Not a terminal: about ten lines in all, and the last one.
  const every = Math.max(1, Math.round((total - start) / 10));
  return {
    update(value, values) {
      if ((value - start) % every !== 0 && value !== total) return;
      const shown = fields.map((f) => `${f} ${values[f] ?? '-'}`).join(', ');
      console.log(`${label} ${value}/${total}: ${shown}, ${rate(value).toFixed(2)}/s, ETA ${eta(value)}`);
    },
    stop() {},
  };
}
