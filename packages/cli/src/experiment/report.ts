import { basename, extname, join } from 'node:path';
import { writeFileAtomic } from '@deltatune/node';
import { lineChartSvg, scatterSvg, writeChart } from '../plot';
import type { CellResult } from './run-cell';

const COLORS = [
  ...['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f'],
  ...['#bcbd22', '#17becf', '#393b79', '#637939', '#8c6d31', '#843c39', '#7b4173', '#3182bd'],
];

function meanStd(xs: number[]): { mean: number; std: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const std = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1)) : 0;
  return { mean, std };
}

export interface Aggregate {
  method: string;
  task: string;
  budget: string;
  seeds: number;
  trainablePercent: number;
  testAccuracy: { mean: number; std: number };
  testMacroF1: { mean: number; std: number };
  stepsToTarget: string;
  seconds: number;
  peakMiB: number;
}

export function aggregate(results: readonly CellResult[], methodOrder: readonly string[]): Aggregate[] {
  const groups = new Map<string, CellResult[]>();
  for (const r of results) {
    const key = `${r.method}\u0000${r.task}\u0000${r.budget}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  return [...groups.values()]
    .map((rs) => {
      const reached = rs.filter((r) => r.stepsToTarget !== null).map((r) => r.stepsToTarget!);
      return {
        method: rs[0].method,
        task: rs[0].task,
        budget: rs[0].budget,
        seeds: rs.length,
        trainablePercent: rs[0].trainablePercent,
        testAccuracy: meanStd(rs.map((r) => r.testAccuracy)),
        testMacroF1: meanStd(rs.map((r) => r.testMacroF1)),
        stepsToTarget: reached.length ? `${meanStd(reached).mean.toFixed(0)} (${reached.length}/${rs.length})` : `never (0/${rs.length})`,
        seconds: meanStd(rs.map((r) => r.seconds)).mean,
        peakMiB: Math.max(...rs.map((r) => r.peakBytes)) / 2 ** 20,
      };
    })
    .sort((a, b) => a.task.localeCompare(b.task) || methodOrder.indexOf(a.method) - methodOrder.indexOf(b.method));
}

export function markdownTable(rows: readonly Aggregate[], target: number): string {
  const head =
    `| task | method | trainable % | test accuracy (mean ± std) | macro-F1 | steps to val acc ≥ ${target} | s/run | peak MiB |\n` +
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |';
  return [
    head,
    ...rows.map(
      (r) =>
        `| ${r.task} | ${r.method} | ${r.trainablePercent.toFixed(3)} | ` +
        `${r.testAccuracy.mean.toFixed(4)} ± ${r.testAccuracy.std.toFixed(4)} | ${r.testMacroF1.mean.toFixed(4)} | ` +
        `${r.stepsToTarget} | ${r.seconds.toFixed(0)} | ${r.peakMiB.toFixed(0)} |`,
    ),
  ].join('\n');
}

/**
 * A file-name-safe name for a task: a dataset given as a path must not put its folders (or spaces,
 * colons...) into the plot's file name, where they would make nested or unportable paths.
 */
export function taskSlug(task: string): string {
  const base = basename(task.replace(/[\\/]+$/, '').replace(/\\/g, '/'));
  const stem = extname(base) && extname(base) !== base ? base.slice(0, -extname(base).length) : base;
  const slug = stem.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '_');
  return slug || 'task';
}

/** Slugs for the tasks of one grid, suffixed `-2`, `-3`... where two would share a file name. */
export function taskSlugs(tasks: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  const used = new Set<string>();
  for (const task of tasks) {
    if (out.has(task)) continue;
    const base = taskSlug(task);
    let slug = base;
    // Compared case-insensitively: on macOS and Windows `Data` and `data` are the same file.
    for (let n = 2; used.has(slug.toLowerCase()); n++) slug = `${base}-${n}`;
    used.add(slug.toLowerCase());
    out.set(task, slug);
  }
  return out;
}

/** Writes results.md, and per task a convergence plot and a score-vs-trainable-% plot (SVG + PNG). */
export async function writeReport(
  dir: string,
  results: readonly CellResult[],
  methodOrder: readonly string[],
  target: number,
  title: string,
): Promise<string[]> {
  const rows = aggregate(results, methodOrder);
  const files: string[] = [];
  const tasks = [...new Set(results.map((r) => r.task))];
  const slugs = taskSlugs(tasks);
  for (const task of tasks) {
    const slug = slugs.get(task)!;
    const methods = methodOrder.filter((m) => results.some((r) => r.task === task && r.method === m));
    const series = methods.map((m, i) => {
      const runs = results.filter((r) => r.task === task && r.method === m);
      const steps = [...new Set(runs.flatMap((r) => r.curve.map(([s]) => s)))].sort((a, b) => a - b);
      const points = steps.map((s) => {
        const atStep = runs.map((r) => r.curve.find(([x]) => x === s)?.[1]).filter((v): v is number => v !== undefined);
        return [s, meanStd(atStep).mean] as const;
      });
      return { name: m, points, color: COLORS[i % COLORS.length] };
    });
    const convergence = await lineChartSvg(`${title}: validation accuracy on ${task} (mean over seeds)`, series, {
      x: 'step',
      left: 'validation accuracy',
    });
    files.push(...(await writeChart(join(dir, `convergence-${slug}`), convergence)));
    const taskRows = rows.filter((r) => r.task === task);
    const scatter = await scatterSvg(
      `${title}: test accuracy vs trainable parameters on ${task}`,
      taskRows.map((r, i) => ({
        label: r.method,
        x: r.trainablePercent,
        y: r.testAccuracy.mean,
        error: r.testAccuracy.std,
        color: COLORS[methods.indexOf(r.method) % COLORS.length] ?? COLORS[i % COLORS.length],
      })),
      { x: 'trainable parameters (% of total, log scale)', y: 'test accuracy' },
    );
    files.push(...(await writeChart(join(dir, `score-vs-params-${slug}`), scatter)));
  }
  const md = `# ${title}\n\n${markdownTable(rows, target)}\n`;
  writeFileAtomic(join(dir, 'results.md'), md);
  files.push(join(dir, 'results.md'));
  return files;
}
