/** A labelled text example. */
export interface Example {
  readonly text: string;
  readonly label: number;
}

/** One turn of a conversation, as chat templates read it (`@deltatune/models`' ChatMessage). */
export interface SftMessage {
  readonly role: string;
  readonly content: string;
}

/**
 * An instruction-tuning example (`task: 'sft'`): a prompt and the completion the model learns to
 * give, as plain text; or a conversation, rendered with the tokenizer's chat template, whose
 * assistant turns it learns. `source` (`data.jsonl:12`) is where it came from, for messages.
 */
export type SftExample =
  | { readonly prompt: string; readonly completion: string; readonly source?: string }
  | { readonly messages: readonly SftMessage[]; readonly source?: string };

/** A dataset with fixed, deterministic splits: labelled texts unless `E` says otherwise. */
export interface Dataset<E = Example> {
  readonly name: string;
  /** Class names (classification); empty for instruction tuning. */
  readonly labels: readonly string[];
  readonly train: readonly E[];
  readonly validation: readonly E[];
  readonly test: readonly E[];
  /** Where the data came from, for results tables. */
  readonly source: string;
}

/** Prompt/completion or conversation examples, for `task: 'sft'`. */
export type SftDataset = Dataset<SftExample>;

export function isSftExample(e: unknown): e is SftExample {
  if (typeof e !== 'object' || e === null) return false;
  const o = e as Record<string, unknown>;
  return (typeof o.prompt === 'string' && typeof o.completion === 'string') || Array.isArray(o.messages);
}
