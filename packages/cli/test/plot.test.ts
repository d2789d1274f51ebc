import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { taskSlug, taskSlugs, writeReport } from '../src/experiment/report';
import type { CellResult } from '../src/experiment/run-cell';
import { lineChartSvg, scatterSvg, writeChart, type ScatterPoint, type Series } from '../src/plot';

interface Box {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

interface Element {
  tag: string;
  attrs: Record<string, string>;
  /** Absolute position of the element's own origin (its transform included). */
  x: number;
  y: number;
  /** Every `role-*` class on the element and its ancestors. */
  roles: string[];
  text: string;
  fontSize: number;
}

/**
 * Flattens vega's SVG into elements with absolute positions. Vega only nests `translate` transforms
 * (plus `rotate` on axis titles), so summing translations is exact for what these tests look at.
 */
function elements(svg: string): Element[] {
  const out: Element[] = [];
  const stack: Array<{ x: number; y: number; roles: string[]; fontSize: number; el?: Element }> = [{ x: 0, y: 0, roles: [], fontSize: 12 }];
  const tag = /<(\/?)([a-zA-Z]+)((?:[^>"]|"[^"]*")*?)(\/?)>([^<]*)/g;
  for (let m = tag.exec(svg); m; m = tag.exec(svg)) {
    const [, closing, name, rawAttrs, selfClosing, after] = m;
    if (closing) {
      if (name === 'g' || name === 'text') stack.pop();
      continue;
    }
    const attrs: Record<string, string> = {};
    for (const a of rawAttrs.matchAll(/([\w:-]+)="([^"]*)"/g)) attrs[a[1]] = a[2];
    const parent = stack.at(-1)!;
    const t = /translate\(([-\d.e]+),\s*([-\d.e]+)\)/.exec(attrs.transform ?? '');
    const x = parent.x + (t ? Number(t[1]) : 0);
    const y = parent.y + (t ? Number(t[2]) : 0);
    const roles = [...parent.roles, ...(attrs.class ?? '').split(/\s+/).filter((c) => c.startsWith('role-'))];
    const fontSize = attrs['font-size'] ? parseFloat(attrs['font-size']) : parent.fontSize;
    const text = unescape(after);
    const el: Element = { tag: name, attrs, x, y, roles, text, fontSize };
    // A title's lines are tspans of one text element; each is measured as its own line.
    if (name === 'tspan' && parent.el) out.push({ ...el, attrs: { ...parent.el.attrs, ...attrs }, x: parent.x, y: parent.y });
    else out.push(el);
    if (!selfClosing && (name === 'g' || name === 'text')) stack.push({ x, y, roles, fontSize, el: name === 'text' ? el : undefined });
  }
  return out;
}

function unescape(s: string): string {
  return s
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&');
}

/** Horizontal extent of a text, at a generous 0.65 em per character (DejaVu Sans digits are 0.64 em). */
function textBox(e: Element): Box {
  if (/rotate/.test(e.attrs.transform ?? '')) {
    const half = (0.65 * e.fontSize * e.text.length) / 2;
    return { x0: e.x - e.fontSize, x1: e.x + e.fontSize, y0: e.y - half, y1: e.y + half };
  }
  const w = 0.65 * e.fontSize * e.text.length;
  const anchor = e.attrs['text-anchor'] ?? 'start';
  const x0 = anchor === 'end' ? e.x - w : anchor === 'middle' ? e.x - w / 2 : e.x;
  return { x0, x1: x0 + w, y0: e.y - e.fontSize, y1: e.y + e.fontSize * 0.3 };
}

function texts(svg: string): Element[] {
  return elements(svg).filter((e) => (e.tag === 'text' || e.tag === 'tspan') && e.text.trim() !== '');
}

function size(svg: string): { width: number; height: number } {
  const m = /<svg[^>]*\bwidth="([\d.]+)"[^>]*\bheight="([\d.]+)"/.exec(svg)!;
  return { width: Number(m[1]), height: Number(m[2]) };
}

/** The plot area: the root frame's background rectangle (`M0.5,0.5h600v300h-600Z`). */
function plotArea(svg: string): Box {
  const bg = elements(svg).find((e) => e.tag === 'path' && e.roles.includes('role-frame') && e.attrs.class === 'background')!;
  const m = /M([-\d.]+),([-\d.]+)h([-\d.]+)v([-\d.]+)/.exec(bg.attrs.d)!;
  const x0 = bg.x + Number(m[1]);
  const y0 = bg.y + Number(m[2]);
  return { x0, y0, x1: x0 + Number(m[3]), y1: y0 + Number(m[4]) };
}

function union(boxes: Box[]): Box {
  return {
    x0: Math.min(...boxes.map((b) => b.x0)),
    y0: Math.min(...boxes.map((b) => b.y0)),
    x1: Math.max(...boxes.map((b) => b.x1)),
    y1: Math.max(...boxes.map((b) => b.y1)),
  };
}

function intersects(a: Box, b: Box): boolean {
  return a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1;
}

/** Tick labels grouped per axis (each axis is one `role-axis` group holding its `role-axis-label` texts). */
function tickLabels(svg: string): string[][] {
  const byAxis = new Map<string, string[]>();
  for (const e of texts(svg).filter((t) => t.roles.includes('role-axis-label'))) {
    // Label groups of different axes sit at different origins; the axis group's origin tells them apart.
    const key = `${e.roles.join(' ')}@${axisOrigin(e)}`;
    byAxis.set(key, [...(byAxis.get(key) ?? []), e.text]);
  }
  return [...byAxis.values()];
}

function axisOrigin(label: Element): string {
  // Labels of a horizontal axis share a y, those of a vertical one share an x.
  return label.attrs['text-anchor'] === 'middle' ? `y${label.y.toFixed(0)}` : `x${label.x.toFixed(0)}`;
}

const labels = { x: 'step', left: 'loss', right: 'accuracy' };

function dualSeries(loss: Series['points'], accuracy: Series['points']): Series[] {
  return [
    { name: 'training loss', points: loss, color: '#1f77b4' },
    { name: 'validation accuracy', points: accuracy, color: '#d62728', right: true },
  ];
}

const diverged = Array.from({ length: 40 }, (_, i) => [i * 5, i < 25 ? 2.3 / (i + 1) : 5.6e34 * ((i - 24) / 15)] as const);
const accuracy = Array.from({ length: 8 }, (_, i) => [i * 25, 0.5 + i * 0.05] as const);

describe('lineChartSvg', () => {
  it('keeps tick labels of a diverged loss (up to 5.6e34) short and inside the image', async () => {
    const svg = await lineChartSvg('LoRA on /data/sst2.csv (bert)', dualSeries(diverged, accuracy), labels);
    const { width, height } = size(svg);
    const ticks = tickLabels(svg).flat();
    expect(ticks.length).toBeGreaterThan(5);
    for (const t of ticks) expect(t.length, t).toBeLessThanOrEqual(6);
    expect(ticks).toContain('1e+30');
    for (const t of texts(svg)) {
      const b = textBox(t);
      expect(b.x0, t.text).toBeGreaterThanOrEqual(0);
      expect(b.x1, t.text).toBeLessThanOrEqual(width);
      expect(b.y0, t.text).toBeGreaterThanOrEqual(0);
      expect(b.y1, t.text).toBeLessThanOrEqual(height);
    }
  });

  it('keeps a long title (a dataset path) within the image', async () => {
    const title = `LoRA r=8 on /very/long/${'nested/'.repeat(12)}dataset-with-a-long-name.csv (bert)`;
    const svg = await lineChartSvg(title, dualSeries(diverged.slice(0, 20), accuracy), labels);
    const { width } = size(svg);
    const lines = texts(svg).filter((t) => t.roles.includes('role-title-text'));
    // Lines break at spaces or, inside a long path, anywhere: compare without the spaces.
    expect(lines.map((l) => l.text.replace(/ /g, '')).join('')).toBe(title.replace(/ /g, ''));
    for (const l of lines) expect(textBox(l).x1, l.text).toBeLessThanOrEqual(width);
  });

  it('draws a 0-point chart with a note and no repeated tick labels', async () => {
    const svg = await lineChartSvg('nothing trained', dualSeries([], []), labels);
    expect(texts(svg).map((t) => t.text)).toContain('no data (no points were recorded)');
    for (const axis of tickLabels(svg)) expect(new Set(axis).size).toBe(axis.length);
    expect(svg).not.toMatch(/NaN|Infinity/);
  });

  it('draws a single point with distinct tick labels and no NaN', async () => {
    const svg = await lineChartSvg('one step', dualSeries([[0, 1.2]], [[0, 0.6]]), labels);
    const axes = tickLabels(svg);
    expect(axes.length).toBe(3);
    for (const axis of axes) expect(new Set(axis).size).toBe(axis.length);
    expect(svg).not.toMatch(/NaN/);
    expect(elements(svg).filter((e) => e.tag === 'path' && e.roles.includes('role-mark')).length).toBeGreaterThanOrEqual(2);
  });

  it('places the legend outside the plot area', async () => {
    const many = Array.from({ length: 7 }, (_, i) => ({
      name: `method-${i} with a fairly long name`,
      points: accuracy.map(([s, v]) => [s, v - i * 0.02] as const),
      color: '#333',
    }));
    for (const series of [dualSeries(diverged, accuracy), many]) {
      const svg = await lineChartSvg('legend', series, labels);
      const legend = elements(svg).filter((e) => e.roles.includes('role-legend') && (e.tag === 'text' || e.tag === 'path'));
      const legendTexts = legend.filter((e) => e.tag === 'text');
      expect(legendTexts.map((t) => t.text)).toEqual(series.map((s) => s.name));
      const symbols = legend.filter((e) => e.tag === 'path').map((p) => ({ x0: p.x - 6, x1: p.x + 6, y0: p.y - 6, y1: p.y + 6 }));
      const box = union([...legendTexts.map(textBox), ...symbols]);
      expect(intersects(box, plotArea(svg)), JSON.stringify({ box, plot: plotArea(svg) })).toBe(false);
    }
  });

  it('drops non-finite values and says so', async () => {
    const svg = await lineChartSvg(
      'nan',
      dualSeries(
        [
          [0, 2],
          [1, Number.NaN],
          [2, Infinity],
          [3, 1],
        ],
        accuracy,
      ),
      labels,
    );
    expect(texts(svg).map((t) => t.text)).toContain('2 non-finite values (NaN/Infinity) not shown');
  });

  it('is deterministic and renders to PNG', async () => {
    const a = await lineChartSvg('same', dualSeries(diverged, accuracy), labels);
    const b = await lineChartSvg('same', dualSeries(diverged, accuracy), labels);
    expect(a).toBe(b);
    const dir = mkdtempSync(join(tmpdir(), 'plot-'));
    const files = await writeChart(join(dir, 'curve'), a);
    expect(files).toEqual([join(dir, 'curve.svg'), join(dir, 'curve.png')]);
    expect(readFileSync(join(dir, 'curve.svg'), 'utf8')).toBe(a);
    expect(readFileSync(join(dir, 'curve.png')).subarray(1, 4).toString()).toBe('PNG');
  });
});

describe('scatterSvg', () => {
  const points: ScatterPoint[] = [
    { label: 'full', x: 100, y: 0.92, error: 0.01, color: '#1f77b4' },
    { label: 'lora', x: 0.3, y: 0.9, error: 0.02, color: '#d62728' },
    { label: 'lora-r16', x: 0.31, y: 0.905, error: 0.05, color: '#2ca02c' },
    { label: 'bitfit', x: 0.08, y: 0.85, error: 0.12, color: '#ff7f0e' },
    { label: 'prefix', x: 0.1, y: 0.97, error: 0.06, color: '#9467bd' },
  ];

  it('keeps every error bar inside the frame, also past accuracy 1', async () => {
    const svg = await scatterSvg('score', points, { x: 'trainable %', y: 'test accuracy' });
    const frame = plotArea(svg);
    const bars = elements(svg).filter((e) => e.tag === 'line' && e.roles.includes('role-mark'));
    expect(bars.length).toBe(points.length);
    for (const bar of bars) {
      const y2 = bar.y + Number(bar.attrs.y2 ?? 0);
      for (const y of [bar.y, y2]) {
        expect(y).toBeGreaterThanOrEqual(frame.y0);
        expect(y).toBeLessThanOrEqual(frame.y1);
      }
      expect(bar.x).toBeGreaterThan(frame.x0);
      expect(bar.x).toBeLessThan(frame.x1);
    }
    // Bars keep their true lengths (bitfit's ± 0.12 is 12 times full's ± 0.01): nothing was clamped.
    const heights = bars.map((b) => Math.abs(Number(b.attrs.y2)));
    expect(Math.max(...heights) / Math.min(...heights)).toBeCloseTo(12, 1);
  });

  it('names methods in a legend outside the frame instead of overlapping text by the points', async () => {
    const svg = await scatterSvg('score', points, { x: 'trainable %', y: 'test accuracy' });
    const legend = texts(svg).filter((t) => t.roles.includes('role-legend-label'));
    expect(legend.map((t) => t.text)).toEqual(points.map((p) => p.label));
    const frame = plotArea(svg);
    for (const t of legend) expect(intersects(textBox(t), frame), t.text).toBe(false);
    const outside = /^role-(axis|legend|title)/;
    const inFrame = texts(svg).filter((t) => !t.roles.some((r) => outside.test(r)));
    expect(inFrame).toEqual([]);
    expect(await scatterSvg('score', points, { x: 'trainable %', y: 'test accuracy' })).toBe(svg);
  });

  it('copes with no points and with a single one', async () => {
    const empty = await scatterSvg('none', [], { x: 'trainable %', y: 'test accuracy' });
    expect(texts(empty).map((t) => t.text)).toContain('no data (no points were recorded)');
    const single: ScatterPoint[] = [{ label: 'lora', x: 0.3, y: 0.9, color: '#d62728' }];
    const one = await scatterSvg('one', single, { x: 'trainable %', y: 'test accuracy' });
    expect(one).not.toMatch(/NaN/);
    for (const axis of tickLabels(one)) expect(new Set(axis).size).toBe(axis.length);
  });
});

describe('taskSlug', () => {
  it('reduces a dataset path to a safe basename', () => {
    expect(taskSlug('/tmp/a b/My Data.csv')).toBe('My_Data');
    expect(taskSlug('/tmp/a b/My Data.csv')).not.toContain('/');
    expect(taskSlug('C:\\data\\sst2.jsonl')).toBe('sst2');
    expect(taskSlug('sst2')).toBe('sst2');
    expect(taskSlug('hf:glue/sst2')).toBe('sst2');
    expect(taskSlug('..')).toMatch(/^[A-Za-z0-9_][A-Za-z0-9._-]*$/);
  });

  it('keeps slugs unique within a grid', () => {
    const slugs = taskSlugs(['/a/data.csv', '/b/data.csv', '/c/Data.jsonl', 'sst2', '/a/data.csv']);
    expect([...slugs.values()]).toEqual(['data', 'data-2', 'Data-3', 'sst2']);
    expect(slugs.get('/a/data.csv')).toBe('data');
  });

  it('names report files by slug while the titles keep the dataset path', async () => {
    const task = '/tmp/a b/My Data.csv';
    const cell = (method: string, seed: number): CellResult => ({
      id: `${method}-${seed}`,
      method,
      task,
      seed,
      budget: 'default',
      trainableParameters: 10,
      trainablePercent: method === 'lora' ? 0.3 : 0.08,
      validationAccuracy: 0.8,
      testAccuracy: 0.8 + seed * 0.01,
      testMacroF1: 0.79,
      testLoss: 0.5,
      stepsToTarget: null,
      seconds: 1,
      peakBytes: 2 ** 20,
      curve: [
        [0, 0.5],
        [10, 0.7],
        [20, 0.8 + seed * 0.01],
      ],
    });
    const dir = mkdtempSync(join(tmpdir(), 'report-'));
    const results = ['lora', 'bitfit'].flatMap((m) => [cell(m, 0), cell(m, 1)]);
    await writeReport(dir, results, ['lora', 'bitfit'], 0.9, 'grid');
    const names = readdirSync(dir).sort();
    expect(names).toEqual([
      'convergence-My_Data.png',
      'convergence-My_Data.svg',
      'results.md',
      'score-vs-params-My_Data.png',
      'score-vs-params-My_Data.svg',
    ]);
    expect(readFileSync(join(dir, 'convergence-My_Data.svg'), 'utf8')).toContain('My Data.csv');
  });
});
