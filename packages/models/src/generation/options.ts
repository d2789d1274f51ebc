/**
 * How the next token is chosen. Without `doSample` (or with temperature 0) decoding is greedy;
 * the filters apply in transformers' order: repetition penalty, temperature, top-k, top-p.
 */
export interface SamplingOptions {
  readonly doSample?: boolean;
  /** Divides the logits before sampling; 0 means greedy. */
  readonly temperature?: number;
  /** Keep the k most likely tokens (0: all). */
  readonly topK?: number;
  /** Keep the smallest set of tokens whose probability reaches p (1: all). */
  readonly topP?: number;
  /** > 1 makes tokens already in the row (prompt and generated) less likely, as CTRL and transformers do. */
  readonly repetitionPenalty?: number;
  /** Seed of the sampling draws: one seed, one continuation. */
  readonly seed?: number;
}

export interface GenerateOptions extends SamplingOptions {
  readonly maxNewTokens: number;
  /** A row ends when it generates one of these (none: only the length ends it). */
  readonly eosIds?: readonly number[];
  /** A row ends when its decoded new text contains one of these (needs `decode`); the text is cut before it. */
  readonly stopStrings?: readonly string[];
  readonly decode?: (ids: readonly number[]) => string;
  /** Fills the left of shorter prompts in a batch (masked out; their positions start at each row's first real token). */
  readonly padId: number;
  /** Incremental decoding with a key/value cache (default true); false recomputes the whole row every step. */
  readonly useCache?: boolean;
  /** Called for each new token as soon as it is chosen (streaming). */
  readonly onToken?: (row: number, id: number) => void;
}

/** Why a row stopped. */
export type FinishReason = 'eos' | 'stop' | 'length';

export interface GeneratedRow {
  readonly promptIds: readonly number[];
  /** The new ids, the eos id included when it ended the row. */
  readonly newIds: readonly number[];
  readonly finish: FinishReason;
  /** With `decode`: the new text (cut before a stop string). */
  readonly text?: string;
}

/** What generation_config.json sets (transformers' names mapped to ours). */
export interface GenerationDefaults extends SamplingOptions {
  readonly maxNewTokens?: number;
  readonly eosIds?: readonly number[];
  readonly padId?: number;
  readonly bosId?: number;
}
