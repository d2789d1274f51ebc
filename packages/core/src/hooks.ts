import type { Tensor } from '@tensorflow/tfjs-core';
import type { AttentionSite, EmbeddingsSite, LinearSite, NormSite, SiteKind, SublayerSite } from './sites';

/** What a backbone tells every hook about the pass in progress. */
export interface PassContext {
  /** True inside a training step: dropout is active. */
  readonly training: boolean;
}

/**
 * Hook shapes, one per site kind. A hook returns a new tensor and never mutates its inputs;
 * the backbone owns what it passes in.
 */
export interface LinearHook {
  /**
   * The effective weight `[in, out]` the projection uses, from the one before it (the site's kernel
   * for the first hook): rescale or replace W (DoRA's magnitude and direction, LoHa's Hadamard
   * product). Runs on every pass, so the result is differentiable in the delta's variables.
   */
  weight?(kernel: Tensor, site: LinearSite, ctx: PassContext): Tensor;
  /** Transforms the input before the projection (IA3 on a feed-forward output projection). */
  input?(x: Tensor, site: LinearSite, ctx: PassContext): Tensor;
  /** Transforms the output; `x` is the (possibly transformed) input (LoRA adds `x A B`). */
  output?(x: Tensor, y: Tensor, site: LinearSite, ctx: PassContext): Tensor;
}

export interface SublayerHook {
  /** `input` is what the sublayer read, `output` what it produced, before the residual. */
  (io: { input: Tensor; output: Tensor }, site: SublayerSite, ctx: PassContext): Tensor;
}

/** Extra keys/values, each `[batch, heads, extra, headDim]`, placed before the real positions. */
export interface AttentionExtra {
  readonly key: Tensor;
  readonly value: Tensor;
}
export interface AttentionHook {
  (batchSize: number, site: AttentionSite, ctx: PassContext): AttentionExtra;
}

/** Positions to place in front of the token embeddings: `[batch, extra, hidden]`. */
export interface EmbeddingsHook {
  (embeds: Tensor, site: EmbeddingsSite, ctx: PassContext): Tensor;
}

/** Transforms a layer norm's output. */
export interface NormHook {
  (y: Tensor, site: NormSite, ctx: PassContext): Tensor;
}

export interface HookByKind {
  linear: LinearHook;
  sublayer: SublayerHook;
  attention: AttentionHook;
  embeddings: EmbeddingsHook;
  norm: NormHook;
}

export interface HookOptions {
  /**
   * Position among the hooks at one site: lower runs first. Ties are broken by the owner's order
   * (`setOwnerOrder`, what compose's explicit ordering sets), then by `owner` (the delta's name), so
   * the result never depends on the order deltas were attached in.
   */
  readonly order?: number;
  /** Who registered the hook (a delta's name); shown in the structure tree. */
  readonly owner?: string;
}

interface Entry<K extends SiteKind> {
  readonly hook: HookByKind[K];
  readonly order: number;
  readonly owner: string;
  readonly serial: number;
}

/**
 * The hook registry of one backbone. Registering returns the function that takes the hook back
 * out, so detaching is exact: no hooks left means the backbone runs its plain code path.
 */
export class HookRegistry {
  private readonly entries = new Map<string, Entry<SiteKind>[]>();
  private readonly ownerOrder = new Map<string, number>();
  private serial = 0;

  /** Places every hook of `owner` (a delta name) at `order` among equal-order hooks; lower runs first. */
  setOwnerOrder(owner: string, order: number | undefined): void {
    if (order === undefined) this.ownerOrder.delete(owner);
    else this.ownerOrder.set(owner, order);
    for (const list of this.entries.values()) list.sort(this.compare);
  }

  private readonly compare = (a: Entry<SiteKind>, b: Entry<SiteKind>): number => {
    if (a.order !== b.order) return a.order - b.order;
    const oa = this.ownerOrder.get(a.owner) ?? 0;
    const ob = this.ownerOrder.get(b.owner) ?? 0;
    if (oa !== ob) return oa - ob;
    if (a.owner !== b.owner) return a.owner < b.owner ? -1 : 1;
    return a.serial - b.serial;
  };

  add<K extends SiteKind>(kind: K, site: string, hook: HookByKind[K], options: HookOptions = {}): () => void {
    const key = `${kind}:${site}`;
    const entry: Entry<K> = { hook, order: options.order ?? 0, owner: options.owner ?? '', serial: this.serial++ };
    const list = this.entries.get(key) ?? [];
    list.push(entry as Entry<SiteKind>);
    list.sort(this.compare);
    this.entries.set(key, list);
    let removed = false;
    return () => {
      if (removed) return;
      removed = true;
      const current = this.entries.get(key);
      if (!current) return;
      const i = current.indexOf(entry as Entry<SiteKind>);
      if (i >= 0) current.splice(i, 1);
      if (current.length === 0) this.entries.delete(key);
    };
  }

  /** Hooks at a site, in run order. */
  at<K extends SiteKind>(kind: K, site: string): HookByKind[K][] {
    const list = this.entries.get(`${kind}:${site}`);
    return list ? list.map((e) => e.hook as HookByKind[K]) : [];
  }

  /** Owners of the hooks at a site, in run order (for the structure tree). */
  ownersAt(kind: SiteKind, site: string): string[] {
    return (this.entries.get(`${kind}:${site}`) ?? []).map((e) => e.owner);
  }

  get size(): number {
    let n = 0;
    for (const list of this.entries.values()) n += list.length;
    return n;
  }
}
