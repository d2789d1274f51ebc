import { writeFileAtomic } from '@deltatune/node';
import type { TopLevelSpec } from 'vega-lite';

export interface Series {
  readonly name: string;
  readonly points: ReadonlyArray<readonly [number, number]>;
  readonly color: string;
  /** Plot against the right axis (accuracy), on its own y scale. */
  readonly right?: boolean;
}

export interface ScatterPoint {
  readonly label: string;
  readonly x: number;
  readonly y: number;
  /** Half-height of the error bar (std over seeds). */
  readonly error?: number;
  readonly color: string;
}

const FONT = 'DejaVu Sans, Helvetica, Arial, sans-serif';
// d3 formats that stay a few characters long whatever the magnitude (1e+35, 0.000123, 1.5k), so no
// label can outgrow the space vega reserves for it.
const VALUE_FORMAT = '.3~g';
// Through an expression, not `format`: vega's tick formatting would add precision to steps ("0m").
const STEP_LABEL = "format(datum.value, '~s')";
const PLOT_WIDTH = 600;
const PLOT_HEIGHT = 300;
// A loss spanning this many times its smallest value is unreadable on a linear axis: everything but
// the divergence collapses onto zero.
const LOG_SPAN = 1e4;
// Lines with many points would be a solid blob of markers; a short curve needs them to be seen at all.
const MAX_MARKED_POINTS = 40;

/**
 * A line chart as SVG: steps along the bottom, the left-axis series (losses) on one y scale and the
 * right-axis ones (accuracy) on an independent one, the legend below the plot.
 */
export async function lineChartSvg(
  title: string,
  series: readonly Series[],
  labels: { x: string; left: string; right?: string },
): Promise<string> {
  const finite = series.map((s) => ({ ...s, points: s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)) }));
  const dropped = series.reduce((n, s, i) => n + s.points.length - finite[i].points.length, 0);
  const shown = finite.filter((s) => s.points.length > 0);
  const subtitle = dropped ? `${dropped} non-finite value${dropped === 1 ? '' : 's'} (NaN/Infinity) not shown` : undefined;
  if (shown.length === 0) return render(emptySpec(title, labels.x, labels.left, subtitle));
  const color = colorScale(shown.map((s) => [s.name, s.color]));
  const layer = (side: readonly (typeof shown)[number][], right: boolean) => {
    const values = side.flatMap((s) => {
      const marked = s.points.length <= MAX_MARKED_POINTS;
      return s.points.map(([step, value]) => ({ series: s.name, step, value, marked }));
    });
    const [lo, hi] = extent(values.map((v) => v.value));
    const log = !right && lo > 0 && hi / lo >= LOG_SPAN;
    const y = {
      field: 'value',
      type: 'quantitative' as const,
      title: right ? (labels.right ?? '') : log ? `${labels.left} (log scale)` : labels.left,
      scale: log ? { type: 'log' as const } : { zero: !right, ...flat([lo, hi]) },
      axis: { format: VALUE_FORMAT, orient: right ? ('right' as const) : ('left' as const), grid: !right },
    };
    // Nested, so that one side's lines and markers share a y scale; only the two sides are independent.
    return {
      data: { values },
      layer: [
        { mark: { type: 'line' as const, strokeWidth: right ? 2.5 : 1.5 }, encoding: { y } },
        { transform: [{ filter: 'datum.marked' }], mark: { type: 'point' as const, filled: true, size: 30, opacity: 1 }, encoding: { y } },
      ],
    };
  };
  const left = shown.filter((s) => !s.right);
  const right = shown.filter((s) => s.right);
  const layers = [...(left.length ? [layer(left, false)] : []), ...(right.length ? [layer(right, true)] : [])];
  const [first, last] = extent(shown.flatMap((s) => s.points.map(([step]) => step)));
  // A run that logged one step has a zero-width step range, which vega labels "NaN"; centre it instead.
  const xScale = first === last ? { domain: [first - 0.5, first + 0.5] } : {};
  return render({
    ...frame(title, subtitle),
    encoding: {
      x: { field: 'step', type: 'quantitative', title: labels.x, scale: xScale, axis: { labelExpr: STEP_LABEL, tickMinStep: 1 } },
      color: { field: 'series', type: 'nominal', scale: color, legend: legend(color.domain) },
    },
    layer: layers,
    resolve: { scale: { y: 'independent' } },
  });
}

/**
 * Score against trainable share: a log x axis, a point per entry with its ±error bar, and a colour
 * per label explained by the legend, since text beside the points collides when methods cluster.
 */
export async function scatterSvg(title: string, points: readonly ScatterPoint[], labels: { x: string; y: string }): Promise<string> {
  const drawn = points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  const values = drawn
    // A log axis cannot place 0 %; such an entry is drawn at the floor instead of vanishing.
    .map((p) => {
      const error = Number.isFinite(p.error) ? Math.abs(p.error!) : 0;
      return { label: p.label, x: Math.max(p.x, 1e-6), y: p.y, lo: p.y - error, hi: p.y + error };
    });
  if (values.length === 0) return render(emptySpec(title, labels.x, labels.y));
  const color = colorScale(drawn.map((p) => [p.label, p.color]));
  const [xLo, xHi] = extent(values.map((v) => v.x));
  const xDomain = xLo === xHi ? { domain: [xLo / 3, xLo * 3] } : {};
  // Padding keeps the extreme points and their bars off the frame's edge, where they would be half hidden;
  // a nice log domain would then round out to a whole extra decade (1000 % of the parameters).
  const xScale = { type: 'log' as const, padding: 16, nice: false, ...xDomain };
  const yScale = { zero: false, padding: 12, ...flat(extent(values.flatMap((v) => [v.lo, v.hi]))) };
  const x = { field: 'x', type: 'quantitative' as const, title: labels.x, scale: xScale, axis: { format: VALUE_FORMAT } };
  return render({
    ...frame(title),
    data: { values },
    encoding: { color: { field: 'label', type: 'nominal', scale: color, legend: legend(color.domain) } },
    layer: [
      {
        mark: { type: 'rule', strokeWidth: 1.5 },
        // The y scale is fitted to lo..hi as well as the means, so every bar ends inside the frame.
        encoding: {
          x,
          y: { field: 'lo', type: 'quantitative', title: labels.y, scale: yScale, axis: { format: VALUE_FORMAT } },
          y2: { field: 'hi' },
        },
      },
      { mark: { type: 'point', filled: true, size: 70, opacity: 1 }, encoding: { x, y: { field: 'y', type: 'quantitative' } } },
    ],
  });
}

/** Writes `<base>.svg` and `<base>.png` (rendered with resvg); returns the paths written. */
export async function writeChart(base: string, svg: string): Promise<string[]> {
  writeFileAtomic(`${base}.svg`, svg);
  let png: Uint8Array;
  try {
    const { Resvg } = await import('@resvg/resvg-js');
    png = new Resvg(svg, { fitTo: { mode: 'width', value: 1440 }, font: { loadSystemFonts: true } }).render().asPng();
  } catch (e) {
    // No renderer on this platform is a note; failing to write the file (disk full) is not.
    process.stderr.write(`note: PNG not rendered (${(e as Error).message.split('\n')[0]}); the SVG is at ${base}.svg\n`);
    return [`${base}.svg`];
  }
  writeFileAtomic(`${base}.png`, png);
  return [`${base}.svg`, `${base}.png`];
}

/** Min and max without spreading into Math.min, which overflows the stack on a long run's history. */
function extent(values: readonly number[]): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}

/** An explicit domain around a constant: a zero-width one gives a single tick and no sense of scale. */
function flat([lo, hi]: readonly [number, number]): { domain?: [number, number] } {
  if (lo !== hi) return {};
  const d = lo === 0 ? 0.05 : Math.abs(lo) * 0.1;
  return { domain: [lo - d, lo + d] };
}

function frame(title: string, subtitle?: string) {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: wrap(title, 80), ...(subtitle ? { subtitle } : {}), anchor: 'start' as const, fontSize: 14, subtitleColor: '#b00' },
    width: PLOT_WIDTH,
    height: PLOT_HEIGHT,
    background: 'white',
    padding: 12,
    config: {
      font: FONT,
      view: { stroke: '#333' },
      axis: { labelFontSize: 11, titleFontSize: 12 },
      // Unlimited: vega truncates with an ellipsis at a width it overestimates by a third in Node.
      legend: { labelFontSize: 11, labelLimit: 0 },
    },
  };
}

/** Below the plot, in as many columns (up to 3) as fit the plot's width with vega's width estimate. */
function legend(names: readonly string[]) {
  const column = 30 + 0.8 * 11 * Math.max(...names.map((n) => n.length));
  const columns = Math.max(1, Math.min(names.length, 3, Math.floor(PLOT_WIDTH / column)));
  return { orient: 'bottom' as const, direction: 'horizontal' as const, columns, title: null, symbolStrokeWidth: 3 };
}

/** One colour per name, the first colour given winning when a name repeats. */
function colorScale(pairs: ReadonlyArray<readonly [string, string]>): { domain: string[]; range: string[] } {
  const byName = new Map<string, string>();
  for (const [name, color] of pairs) if (!byName.has(name)) byName.set(name, color);
  return { domain: [...byName.keys()], range: [...byName.values()] };
}

/** Axes with no ticks and a note: a fabricated 0..1 range would invent values the run never had. */
function emptySpec(title: string, xTitle: string, yTitle: string, subtitle?: string): TopLevelSpec {
  const axis = { labels: false, ticks: false, grid: false };
  return {
    ...frame(title, subtitle),
    data: { values: [{ x: 0.5, y: 0.5, note: 'no data (no points were recorded)' }] },
    mark: { type: 'text', fontSize: 14, color: '#666' },
    encoding: {
      x: { field: 'x', type: 'quantitative', title: xTitle, scale: { domain: [0, 1] }, axis },
      y: { field: 'y', type: 'quantitative', title: yTitle, scale: { domain: [0, 1] }, axis },
      text: { field: 'note' },
    },
  };
}

/** Breaks a title into lines of at most `width` characters, splitting overlong words (file paths). */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    for (let rest = word; rest.length;) {
      const room = line ? width - line.length - 1 : width;
      if (rest.length <= room) {
        line = line ? `${line} ${rest}` : rest;
        rest = '';
      } else if (line && rest.length <= width) {
        lines.push(line);
        line = '';
      } else {
        const cut = Math.max(1, room);
        line = line ? `${line} ${rest.slice(0, cut)}` : rest.slice(0, cut);
        rest = rest.slice(cut);
        lines.push(line);
        line = '';
      }
    }
  }
  if (line) lines.push(line);
  return lines.length ? lines : [''];
}

async function render(spec: TopLevelSpec): Promise<string> {
  // Loaded on first chart only: the CLI's other commands should not pay for parsing vega.
  const [vega, vl] = await Promise.all([import('vega'), import('vega-lite')]);
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    await view.finalize();
  }
}
