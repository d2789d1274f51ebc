import type { Variable } from '@tensorflow/tfjs-core';

/**
 * Hook sites: the named places in a backbone where a delta method may act. Names are Hugging Face
 * module paths (`encoder.layer.0.attention.self.query`), so targets written for PEFT work here.
 */
export type SiteKind = 'linear' | 'sublayer' | 'attention' | 'embeddings' | 'norm';

interface SiteBase {
  readonly name: string;
  /** Transformer block index, where the site belongs to one. */
  readonly layer?: number;
}

/** A dense projection `y = x W + b`. `kernel` is `[in, out]` (tfjs layout), whatever the file stored. */
export interface LinearSite extends SiteBase {
  readonly kind: 'linear';
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly kernel: Variable;
  readonly bias?: Variable;
}

/** The output of an attention or feed-forward sublayer, before the residual add (and its layer norm). */
export interface SublayerSite extends SiteBase {
  readonly kind: 'sublayer';
  readonly position: 'attention' | 'feedforward';
  /** Width of the sublayer's input. */
  readonly inFeatures: number;
  /** Width of the sublayer's output (what the residual adds to). */
  readonly hidden: number;
}

/** A multi-head attention: methods may prepend keys and values (prefix tuning). */
export interface AttentionSite extends SiteBase {
  readonly kind: 'attention';
  readonly numHeads: number;
  readonly headDim: number;
}

/** The token embeddings, before positions are added: methods may prepend positions (prompt tuning). */
export interface EmbeddingsSite extends SiteBase {
  readonly kind: 'embeddings';
  readonly hidden: number;
  /** The word-embedding table, `[vocab, hidden]` (prompt tuning initialises from it). */
  readonly table: Variable;
}

/** A layer norm: `gamma * normalise(x) + beta`. Methods may transform its output (BitFit on `beta`). */
export interface NormSite extends SiteBase {
  readonly kind: 'norm';
  readonly hidden: number;
  readonly gamma: Variable;
  readonly beta: Variable;
}

export type Site = LinearSite | SublayerSite | AttentionSite | EmbeddingsSite | NormSite;

export type SiteOfKind<K extends SiteKind> = Extract<Site, { kind: K }>;

/** The width a delta sees at a site: what parameter formulas are written in. */
export function siteDimensions(site: Site): Record<string, number> {
  switch (site.kind) {
    case 'linear':
      return { in: site.inFeatures, out: site.outFeatures };
    case 'sublayer':
      return { in: site.inFeatures, hidden: site.hidden };
    case 'attention':
      return { heads: site.numHeads, headDim: site.headDim };
    case 'embeddings':
    case 'norm':
      return { hidden: site.hidden };
  }
}
