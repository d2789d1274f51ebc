/**
 * A progress bar on stderr with throughput and ETA. On a terminal it redraws in place; elsewhere
 * (CI logs, pipes) it prints a line at each tenth, so logs stay short.
 */
export class ProgressBar {
  private lastTenth = -1;
  private readonly started = Date.now();
  private readonly tty = !!process.stderr.isTTY;

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly unit = 'ex',
    private readonly quiet = false,
  ) {}

  update(done: number, extra = ''): void {
    if (this.quiet) return;
    const fraction = this.total > 0 ? Math.min(1, done / this.total) : 1;
    const seconds = (Date.now() - this.started) / 1000;
    const rate = done / Math.max(seconds, 1e-9);
    const eta = rate > 0 ? (this.total - done) / rate : 0;
    const width = 24;
    const bar = '#'.repeat(Math.round(fraction * width)).padEnd(width, '.');
    const line =
      `${this.label.padEnd(10)} [${bar}] ${done}/${this.total} ${rate.toFixed(1)} ${this.unit}/s ETA ${formatSeconds(eta)}` +
      (extra ? '  ' + extra : '');
    if (this.tty) {
      process.stderr.write(`\r${line}\x1b[K`);
      if (done >= this.total) process.stderr.write('\n');
    } else {
      const tenth = Math.floor(fraction * 10);
      if (tenth !== this.lastTenth) {
        this.lastTenth = tenth;
        process.stderr.write(line + '\n');
      }
    }
  }
}

export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  // Rounded once, so 119.6 s reads 2m00s, not 1m60s.
  const whole = Math.round(s);
  if (whole < 60) return `${whole}s`;
  return `${Math.floor(whole / 60)}m${String(whole % 60).padStart(2, '0')}s`;
}

/** A plain text table with aligned columns. */
export function table(headers: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}
