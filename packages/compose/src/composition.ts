import * as tf from '@tensorflow/tfjs-core';
import { addMany, attach, DeltaTuneError, type Backbone, type Delta, type DeltaSpec } from '@deltatune/core';

export interface Member {
  readonly delta: Delta;
  readonly spec: DeltaSpec<unknown>;
  /** Explicit position among deltas at a shared site (lower runs first); undefined: by name. */
  readonly order?: number;
}

/**
 * Several named deltas on one backbone. Where deltas share a site, their hooks run by explicit
 * `order` (lower first), then by delta name: never by the order they were added. Training picks
 * deltas by name (`train(...)`), so simultaneous and sequential schedules are one call each.
 */
export class Composition {
  private readonly members = new Map<string, Member>();

  constructor(readonly backbone: Backbone) {}

  /** Attaches `spec` under `name`; `order` places it among deltas that share a site. */
  add<O>(name: string, spec: DeltaSpec<O>, options: { order?: number } = {}): Delta {
    if (this.members.has(name))
      throw new DeltaTuneError(`this composition already has a delta named "${name}"`, 'give each delta its own name');
    this.backbone.hooks.setOwnerOrder(name, options.order);
    const delta = attach(this.backbone, spec, name);
    this.members.set(name, { delta, spec: spec as DeltaSpec<unknown>, order: options.order });
    return delta;
  }

  /** Adds an already-attached delta (loaded from a folder, say). */
  adopt(delta: Delta, spec: DeltaSpec<unknown>, options: { order?: number } = {}): void {
    this.backbone.hooks.setOwnerOrder(delta.name, options.order);
    this.members.set(delta.name, { delta, spec, order: options.order });
  }

  get(name: string): Delta {
    const m = this.members.get(name);
    if (!m)
      throw new DeltaTuneError(
        `no delta named "${name}" in this composition (has: ${this.names.join(', ') || 'none'})`,
        'use one of the names given to add()',
      );
    return m.delta;
  }

  member(name: string): Member {
    this.get(name);
    return this.members.get(name)!;
  }

  get names(): string[] {
    return [...this.members.keys()];
  }

  get deltas(): Delta[] {
    return [...this.members.values()].map((m) => m.delta);
  }

  /** Run order at a shared site: by explicit order, then by name. */
  get runOrder(): string[] {
    return [...this.members.values()]
      .sort((a, b) => (a.order ?? 0) - (b.order ?? 0) || (a.delta.name < b.delta.name ? -1 : 1))
      .map((m) => m.delta.name);
  }

  /** Only the named deltas train (simultaneous: several names; sequential: one stage at a time). */
  train(...names: string[]): void {
    for (const n of names) this.get(n);
    for (const m of this.members.values()) m.delta.trainable = names.includes(m.delta.name);
  }

  /** Freezes the named deltas (all when none named). */
  freeze(...names: string[]): void {
    for (const m of this.members.values()) if (names.length === 0 || names.includes(m.delta.name)) m.delta.trainable = false;
  }

  /** Only the named deltas run: switching at run time, without reloading the backbone. */
  activate(...names: string[]): void {
    for (const n of names) this.get(n);
    for (const m of this.members.values()) m.delta.active = names.includes(m.delta.name);
  }

  setActive(name: string, active: boolean): void {
    this.get(name).active = active;
  }

  /** Folds every mergeable, active delta (LoRA family, BitFit) into the base weights; returns their names. */
  mergeAll(): string[] {
    const merged: string[] = [];
    for (const m of this.members.values()) {
      if (m.delta.merge && m.delta.active && !m.delta.merged) {
        m.delta.merge();
        merged.push(m.delta.name);
      }
    }
    return merged;
  }

  /** Takes every merged delta back out, in reverse merge order. */
  unmergeAll(): void {
    for (const m of [...this.members.values()].reverse()) if (m.delta.merged) m.delta.unmerge!();
  }

  remove(name: string): void {
    this.get(name).detach();
    this.members.delete(name);
    this.backbone.hooks.setOwnerOrder(name, undefined);
  }

  /** Detaches everything: the backbone is as before the first add. */
  detachAll(): void {
    for (const n of this.names) this.remove(n);
  }

  /** Total parameters of all deltas, and each one's. */
  parameterCounts(): { total: number; byDelta: Record<string, number> } {
    const byDelta = Object.fromEntries(this.deltas.map((d) => [d.name, d.parameterCount()]));
    return { total: Object.values(byDelta).reduce((a, b) => a + b, 0), byDelta };
  }

  /**
   * A new delta whose variables are the weighted average of the named deltas' (same method, same
   * options: same shapes). Averages of adapters are the common use (AdapterSoup, Chronopoulou 2023).
   */
  average(newName: string, names: readonly string[], weights?: readonly number[]): Delta {
    const members = names.map((n) => this.member(n));
    const w = weights ?? names.map(() => 1 / names.length);
    if (w.length !== names.length)
      throw new DeltaTuneError(`average: ${names.length} deltas but ${w.length} weights`, 'give one weight per delta');
    const first = members[0];
    for (const m of members) {
      if (m.delta.method !== first.delta.method)
        throw new DeltaTuneError(
          `average: "${m.delta.name}" is ${m.delta.method}, "${first.delta.name}" is ${first.delta.method}`,
          'average deltas of one method and shape',
        );
    }
    const result = this.add(newName, first.spec);
    for (const [key, v] of result.variables) {
      const parts = members.map((m) => m.delta.variables.get(key));
      if (parts.some((p) => !p || p.shape.join() !== v.shape.join())) {
        result.detach();
        this.members.delete(newName);
        throw new DeltaTuneError(
          `average: the deltas differ in "${key}" (other options or sites)`,
          'average deltas made with the same options',
        );
      }
      tf.tidy(() => v.assign(addMany(parts.map((p, i) => tf.mul(p!, w[i])))));
    }
    return result;
  }
}

export function compose(backbone: Backbone): Composition {
  return new Composition(backbone);
}
