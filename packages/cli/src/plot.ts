import { writeFileAtomic } from '@deltatune/node';

export interface Series {
  readonly name: string;
  readonly points: ReadonlyArray<readonly [number, number]>;
  readonly color: string;
  /** Plot against the right axis (0..1 scale for accuracy). */
  readonly right?: boolean;
}

/**
 * A line chart as SVG: training loss on the left axis, validation accuracy on the right, steps
 * along the bottom. Small and dependency-free; the PNG is rendered from it.
 */
export function lineChartSvg(title: string, series: readonly Series[], labels: { x: string; left: string; right?: string }): string {
  const W = 720;
  const H = 420;
  const m = { l: 64, r: 64, t: 40, b: 50 };
  const all = series.flatMap((s) => s.points);
  const xMax = Math.max(1, ...all.map((p) => p[0]));
  const left = series.filter((s) => !s.right).flatMap((s) => s.points.map((p) => p[1]));
  const leftMax = Math.max(1e-6, ...left) * 1.05;
  const right = series.filter((s) => s.right).flatMap((s) => s.points.map((p) => p[1]));
  const rightMin = right.length ? Math.max(0, Math.min(...right) - 0.05) : 0;
  const x = (v: number) => m.l + (v / xMax) * (W - m.l - m.r);
  const yl = (v: number) => H - m.b - (v / leftMax) * (H - m.t - m.b);
  const yr = (v: number) => H - m.b - ((v - rightMin) / Math.max(1e-6, 1 - rightMin)) * (H - m.t - m.b);
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">`);
  parts.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  parts.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${escape(title)}</text>`);
  for (let i = 0; i <= 5; i++) {
    const gy = m.t + (i * (H - m.t - m.b)) / 5;
    parts.push(`<line x1="${m.l}" y1="${gy}" x2="${W - m.r}" y2="${gy}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${m.l - 6}" y="${gy + 4}" text-anchor="end">${(leftMax * (1 - i / 5)).toFixed(2)}</text>`);
    if (right.length) parts.push(`<text x="${W - m.r + 6}" y="${gy + 4}">${(1 - (i * (1 - rightMin)) / 5).toFixed(3)}</text>`);
    const gx = m.l + (i * (W - m.l - m.r)) / 5;
    parts.push(`<text x="${gx}" y="${H - m.b + 18}" text-anchor="middle">${Math.round((i * xMax) / 5)}</text>`);
  }
  parts.push(`<rect x="${m.l}" y="${m.t}" width="${W - m.l - m.r}" height="${H - m.t - m.b}" fill="none" stroke="#333"/>`);
  parts.push(`<text x="${W / 2}" y="${H - 12}" text-anchor="middle">${escape(labels.x)}</text>`);
  parts.push(`<text transform="translate(16 ${H / 2}) rotate(-90)" text-anchor="middle">${escape(labels.left)}</text>`);
  if (labels.right) parts.push(`<text transform="translate(${W - 14} ${H / 2}) rotate(90)" text-anchor="middle">${escape(labels.right)}</text>`);
  series.forEach((s, i) => {
    if (s.points.length === 0) return;
    const y = s.right ? yr : yl;
    const d = s.points.map((p, j) => `${j ? 'L' : 'M'}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(' ');
    parts.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="${s.right ? 2.5 : 1.5}"/>`);
    if (s.points.length < 40) for (const p of s.points) parts.push(`<circle cx="${x(p[0]).toFixed(1)}" cy="${y(p[1]).toFixed(1)}" r="3" fill="${s.color}"/>`);
    parts.push(`<rect x="${m.l + 12}" y="${m.t + 10 + i * 18}" width="14" height="4" fill="${s.color}"/>`);
    parts.push(`<text x="${m.l + 32}" y="${m.t + 16 + i * 18}">${escape(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}

function escape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Writes `<base>.svg` and `<base>.png` (rendered with resvg); returns the paths written. */
export async function writeChart(base: string, svg: string): Promise<string[]> {
  writeFileAtomic(`${base}.svg`, svg);
  try {
    const { Resvg } = await import('@resvg/resvg-js');
    const png = new Resvg(svg, { fitTo: { mode: 'width', value: 1440 }, font: { loadSystemFonts: true } }).render().asPng();
    writeFileAtomic(`${base}.png`, png);
    return [`${base}.svg`, `${base}.png`];
  } catch (e) {
    process.stderr.write(`note: PNG not written (${(e as Error).message.split('\n')[0]}); the SVG is at ${base}.svg\n`);
    return [`${base}.svg`];
  }
}

export interface ScatterPoint {
  readonly label: string;
  readonly x: number;
  readonly y: number;
  /** Half-height of the error bar (std over seeds). */
  readonly error?: number;
  readonly color: string;
}

/** A labelled scatter plot with a log-scale x axis (trainable %) and error bars. */
export function scatterSvg(title: string, points: readonly ScatterPoint[], labels: { x: string; y: string }): string {
  const W = 760;
  const H = 460;
  const m = { l: 70, r: 30, t: 40, b: 56 };
  const xs = points.map((p) => Math.log10(Math.max(p.x, 1e-6)));
  const lo = Math.floor(Math.min(...xs, -3));
  const hi = Math.ceil(Math.max(...xs, 0)) + 0.2;
  const yLo = Math.max(0, Math.min(...points.map((p) => p.y - (p.error ?? 0))) - 0.02);
  const yHi = Math.min(1, Math.max(...points.map((p) => p.y + (p.error ?? 0))) + 0.02);
  const x = (v: number) => m.l + ((Math.log10(Math.max(v, 1e-6)) - lo) / (hi - lo)) * (W - m.l - m.r);
  const y = (v: number) => H - m.b - ((v - yLo) / Math.max(1e-6, yHi - yLo)) * (H - m.t - m.b);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${title.replace(/&/g, '&amp;').replace(/</g, '&lt;')}</text>`,
    `<rect x="${m.l}" y="${m.t}" width="${W - m.l - m.r}" height="${H - m.t - m.b}" fill="none" stroke="#333"/>`,
  ];
  for (let e = lo; e <= Math.floor(hi); e++) parts.push(`<line x1="${x(10 ** e)}" y1="${m.t}" x2="${x(10 ** e)}" y2="${H - m.b}" stroke="#e5e5e5"/><text x="${x(10 ** e)}" y="${H - m.b + 18}" text-anchor="middle">${10 ** e >= 1 ? 10 ** e : (10 ** e).toFixed(-e)}%</text>`);
  for (let i = 0; i <= 5; i++) {
    const v = yLo + ((yHi - yLo) * i) / 5;
    parts.push(`<line x1="${m.l}" y1="${y(v)}" x2="${W - m.r}" y2="${y(v)}" stroke="#f0f0f0"/><text x="${m.l - 6}" y="${y(v) + 4}" text-anchor="end">${v.toFixed(3)}</text>`);
  }
  parts.push(`<text x="${W / 2}" y="${H - 14}" text-anchor="middle">${labels.x}</text>`, `<text transform="translate(18 ${H / 2}) rotate(-90)" text-anchor="middle">${labels.y}</text>`);
  for (const p of points) {
    const cx = x(p.x);
    const cy = y(p.y);
    if (p.error) parts.push(`<line x1="${cx}" y1="${y(p.y - p.error)}" x2="${cx}" y2="${y(p.y + p.error)}" stroke="${p.color}"/>`);
    parts.push(`<circle cx="${cx.toFixed(1)}" cy="${cy.toFixed(1)}" r="4" fill="${p.color}"/>`, `<text x="${(cx + 6).toFixed(1)}" y="${(cy - 6).toFixed(1)}" font-size="10">${p.label.replace(/&/g, '&amp;').replace(/</g, '&lt;')}</text>`);
  }
  parts.push('</svg>');
  return parts.join('\n');
}
