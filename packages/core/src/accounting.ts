import type { Variable } from '@tensorflow/tfjs-core';
import type { Backbone } from './backbone';
import { attachedDeltas } from './delta';
import { siteDimensions } from './sites';

export interface DeltaCount {
  readonly name: string;
  readonly method: string;
  readonly parameters: number;
  readonly trainable: boolean;
  /** Of the backbone's base parameters. */
  readonly percentOfBase: number;
}

export interface ParameterReport {
  /** Base parameters of the backbone. */
  readonly base: number;
  /** Base + every delta + extra modules (a task head). */
  readonly total: number;
  /** Parameters the training library would update. */
  readonly trainable: number;
  readonly trainablePercent: number;
  readonly deltas: readonly DeltaCount[];
  readonly extra: number;
}

/** Parameter accounting for a backbone, its attached deltas, and extra trainable modules (a head). */
export function countParameters(backbone: Backbone, extra: readonly Variable[] = []): ParameterReport {
  let base = 0;
  let baseTrainable = 0;
  for (const v of backbone.parameters.values()) {
    base += v.size;
    if (v.trainable) baseTrainable += v.size;
  }
  const deltas = attachedDeltas(backbone).map((d) => {
    const parameters = d.parameterCount();
    return { name: d.name, method: d.method, parameters, trainable: d.trainable, percentOfBase: (100 * parameters) / base };
  });
  const extraCount = extra.reduce((n, v) => n + v.size, 0);
  const deltaTotal = deltas.reduce((n, d) => n + d.parameters, 0);
  const trainable = baseTrainable + deltas.filter((d) => d.trainable).reduce((n, d) => n + d.parameters, 0) + extraCount;
  const total = base + deltaTotal + extraCount;
  return { base, total, trainable, trainablePercent: (100 * trainable) / total, deltas, extra: extraCount };
}

/**
 * The backbone's hook sites as an indented tree (by dotted name), each with its kind, dimensions
 * and the deltas hooked there in run order.
 */
export function structureTree(backbone: Backbone): string {
  const lines: string[] = [`${backbone.architecture} (${backbone.sites.length} hook sites)`];
  let previous: string[] = [];
  for (const site of backbone.sites) {
    const parts = site.name.split('.');
    let common = 0;
    while (common < parts.length - 1 && common < previous.length && parts[common] === previous[common]) common++;
    for (let i = common; i < parts.length - 1; i++) lines.push(`${'  '.repeat(i + 1)}${parts[i]}`);
    const dims = Object.entries(siteDimensions(site))
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    const owners = backbone.hooks.ownersAt(site.kind, site.name);
    lines.push(
      `${'  '.repeat(parts.length)}${parts[parts.length - 1]} [${site.kind} ${dims}]${owners.length ? ' <- ' + owners.join(', ') : ''}`,
    );
    previous = parts;
  }
  return lines.join('\n');
}
