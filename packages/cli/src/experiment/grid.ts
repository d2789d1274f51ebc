import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { DeltaTuneError } from '@deltatune/core';

/** One delta of a method entry: a registered method name and its options. */
export interface GridDelta {
  readonly method: string;
  readonly options?: Record<string, unknown>;
  /** This delta's own peak learning rate (prompt and prefix tuning want a far larger one). */
  readonly learningRate?: number;
}

/** A method entry: one delta, several (combined), full fine-tuning, or none (head only). */
export interface GridMethod {
  readonly name: string;
  readonly deltas?: readonly GridDelta[];
  /** Several deltas: train together, or one after another (the steps split evenly, head shared). */
  readonly schedule?: 'simultaneous' | 'sequential';
  readonly full?: boolean;
  /** Overrides the budget's learning rate (full fine-tuning wants a smaller one). */
  readonly learningRate?: number;
}

export interface GridTask {
  readonly dataset: string;
  readonly limits?: { train?: number; validation?: number; test?: number };
}

export interface GridBudget {
  readonly name: string;
  readonly steps: number;
  readonly batchSize: number;
  readonly maxLength: number;
  readonly learningRate: number;
  readonly evalEvery: number;
}

export interface Grid {
  readonly name: string;
  readonly model: string;
  readonly methods: readonly GridMethod[];
  readonly tasks: readonly GridTask[];
  readonly seeds: readonly number[];
  readonly budgets: readonly GridBudget[];
  /** Convergence: steps until validation accuracy first reaches this. */
  readonly target: number;
}

export interface Cell {
  readonly id: string;
  readonly method: GridMethod;
  readonly task: GridTask;
  readonly seed: number;
  readonly budget: GridBudget;
}

export function readGrid(path: string): Grid {
  let raw: unknown;
  try {
    const text = readFileSync(path, 'utf8');
    raw = /\.ya?ml$/.test(path) ? parseYaml(text) : JSON.parse(text);
  } catch (e) {
    throw new DeltaTuneError(
      `cannot read grid ${path}: ${(e as Error).message.split('\n')[0]}`,
      'give a .json or .yaml grid (see experiments/seed-paper-small.json)',
    );
  }
  const fail = (what: string): never => {
    throw new DeltaTuneError(`grid ${path}: ${what}`, 'see experiments/seed-paper-small.json for the fields and their types');
  };
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) fail('is not an object of fields');
  const g = raw as Partial<Grid>;
  for (const key of ['name', 'methods', 'tasks', 'seeds', 'budgets'] as const) {
    if (!g[key]) throw new DeltaTuneError(`grid ${path} has no "${key}"`, 'see experiments/seed-paper-small.json for the fields');
  }
  if (typeof g.name !== 'string' || !g.name.trim()) fail('"name" must be a non-empty string');
  for (const key of ['methods', 'tasks', 'seeds', 'budgets'] as const) {
    if (!Array.isArray(g[key]) || (g[key] as unknown[]).length === 0) fail(`"${key}" must be a non-empty array`);
  }
  // A misspelt key (`stpes`) would silently fall back to a default: refuse keys the grid does not have.
  const known = (what: string, o: object, keys: readonly string[]) => {
    const extra = Object.keys(o).filter((k) => !keys.includes(k));
    if (extra.length) fail(`${what} has no field ${extra.map((k) => `"${k}"`).join(', ')} (fields: ${keys.join(', ')})`);
  };
  known('the grid', g, ['name', 'model', 'methods', 'tasks', 'seeds', 'budgets', 'target', 'description']);
  const isNum = (v: unknown, rule: (n: number) => boolean) => typeof v === 'number' && Number.isFinite(v) && rule(v);
  g.seeds!.forEach((s, i) => isNum(s, Number.isInteger) || fail(`seeds[${i}] is ${JSON.stringify(s)}, not a whole number`));
  g.tasks!.forEach((t, i) => {
    if (!t || typeof t.dataset !== 'string') fail(`tasks[${i}] needs a "dataset" string`);
    known(`tasks[${i}]`, t, ['dataset', 'limits']);
    for (const [k, v] of Object.entries(t.limits ?? {})) {
      if (!['train', 'validation', 'test'].includes(k)) fail(`tasks[${i}].limits has no field "${k}" (fields: train, validation, test)`);
      isNum(v, (n) => Number.isInteger(n) && n > 0) || fail(`tasks[${i}].limits.${k} must be a whole number >= 1`);
    }
  });
  g.budgets!.forEach((b, i) => {
    if (!b || typeof b.name !== 'string') fail(`budgets[${i}] needs a "name" string`);
    known(`budgets[${i}]`, b, ['name', 'steps', 'batchSize', 'maxLength', 'learningRate', 'evalEvery']);
    for (const k of ['steps', 'batchSize', 'maxLength'] as const)
      isNum(b[k], (n) => Number.isInteger(n) && n > 0) || fail(`budgets[${i}].${k} must be a whole number >= 1`);
    isNum(b.learningRate, (n) => n > 0) || fail(`budgets[${i}].learningRate must be a positive number`);
    isNum(b.evalEvery, (n) => Number.isInteger(n) && n >= 0) || fail(`budgets[${i}].evalEvery must be a whole number >= 0`);
  });
  const names = new Set<string>();
  g.methods!.forEach((m, i) => {
    if (!m || typeof m.name !== 'string' || !m.name) fail(`methods[${i}] needs a "name" string`);
    if (names.has(m.name)) throw new DeltaTuneError(`grid ${path} names method "${m.name}" twice`, 'give each method entry its own name');
    names.add(m.name);
    if (m.deltas !== undefined && !Array.isArray(m.deltas)) fail(`methods[${i}].deltas must be an array`);
    known(`methods[${i}]`, m, ['name', 'deltas', 'schedule', 'full', 'learningRate']);
    if (m.schedule !== undefined && !['simultaneous', 'sequential'].includes(m.schedule))
      fail(`methods[${i}].schedule must be "simultaneous" or "sequential"`);
    (m.deltas ?? []).forEach((d, j) => {
      if (!d || typeof d.method !== 'string') fail(`methods[${i}].deltas[${j}] needs a "method" string`);
      known(`methods[${i}].deltas[${j}]`, d, ['method', 'options', 'learningRate']);
      if (d.learningRate !== undefined && !isNum(d.learningRate, (n) => n > 0))
        fail(`methods[${i}].deltas[${j}].learningRate must be a positive number`);
    });
    if (m.learningRate !== undefined && !isNum(m.learningRate, (n) => n > 0)) fail(`methods[${i}].learningRate must be a positive number`);
  });
  if (g.target !== undefined && !isNum(g.target, (n) => n >= 0 && n <= 1)) fail('"target" must be a number in [0, 1]');
  return { model: 'use-lite', target: 0.9, ...g } as Grid;
}

/** Every cell: methods x tasks x seeds x budgets, with a stable id (file-name safe). */
export function cellsOf(grid: Grid): Cell[] {
  const safe = (s: string) => s.replace(/[^\w.-]+/g, '_');
  return grid.methods.flatMap((method) =>
    grid.tasks.flatMap((task) =>
      grid.seeds.flatMap((seed) =>
        grid.budgets.map((budget) => ({
          id: [method.name, task.dataset, `seed${seed}`, budget.name].map(safe).join('__'),
          method,
          task,
          seed,
          budget,
        })),
      ),
    ),
  );
}

/**
 * Checks every delta's options with its method's own parser (the one `--opt` uses), so an unknown
 * option or a bad value fails before the first cell, naming the grid entry.
 */
export function checkGridMethods(
  grid: Grid,
  path: string,
  methodOf: (name: string) => { options: { parse(raw: Record<string, string>): unknown } },
): void {
  grid.methods.forEach((m, i) =>
    (m.deltas ?? []).forEach((d, j) => {
      try {
        methodOf(d.method).options.parse(gridOptionStrings(d));
      } catch (e) {
        const what = (e as Error).message.split('\n')[0];
        throw new DeltaTuneError(
          `grid ${path}: methods[${i}].deltas[${j}] (${d.method}): ${what}`,
          `fix the "options" of that entry in ${path}`,
        );
      }
    }),
  );
}

/** A grid delta's options as `--opt` strings, which the method parses as it parses the command line: the form checked is the form run. */
export function gridOptionStrings(d: GridDelta): Record<string, string> {
  return Object.fromEntries(Object.entries(d.options ?? {}).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]));
}
