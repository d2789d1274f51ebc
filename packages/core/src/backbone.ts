import type { Tensor, Variable } from '@tensorflow/tfjs-core';
import type { HookRegistry } from './hooks';
import type { Site } from './sites';

/** What a tokenizer hands a backbone: ids and masks, `[batch, seq]` int32. */
export interface BackboneInputs {
  readonly inputIds: Tensor;
  readonly attentionMask: Tensor;
  readonly tokenTypeIds?: Tensor;
}

/** Everything a backbone may return; each architecture fills what it has. */
export interface BackboneOutputs {
  /** `[batch, seq(+prompt), hidden]` */
  readonly lastHiddenState?: Tensor;
  /** `[batch, hidden]`: what a sequence-classification head reads. */
  readonly pooled: Tensor;
  /** `[batch, seq, vocab]` for language models. */
  readonly logits?: Tensor;
  /** USE-lite's l2-normalised sentence embedding. */
  readonly embedding?: Tensor;
  /** Positions the embeddings hooks placed in front of the sequence (prompt tuning). */
  readonly prependedPositions: number;
}

/**
 * A pre-trained model as delta methods see it: named hook sites, a hook registry, and its named
 * base parameters (Hugging Face names; all frozen: `trainable` false).
 */
export interface Backbone {
  /** `bert`, `roberta`, `gpt2`, `use-lite`, ... */
  readonly architecture: string;
  readonly sites: readonly Site[];
  readonly hooks: HookRegistry;
  readonly parameters: ReadonlyMap<string, Variable>;
  /** Parameters held as `[in, out]` whose file stores PyTorch's `[out, in]` (writers transpose them back). */
  readonly transposedParameters?: ReadonlySet<string>;
  /** Width of `pooled`. */
  readonly hiddenSize: number;
  /** Rows of the token embedding table: input ids must be below it. */
  readonly vocabSize?: number;
  /** Tokens per row the position table holds (virtual tokens of prompt/prefix tuning count too); none: no limit. */
  readonly maxPositions?: number;
  /** Rows of the token-type table (BERT's segment ids), where the model has one. */
  readonly typeVocabSize?: number;
  forward(inputs: BackboneInputs, options?: { training?: boolean }): BackboneOutputs;
  dispose(): void;
}
