/** A labelled text example. */
export interface Example {
  readonly text: string;
  readonly label: number;
}

/** A classification dataset with fixed, deterministic splits. */
export interface Dataset {
  readonly name: string;
  readonly labels: readonly string[];
  readonly train: readonly Example[];
  readonly validation: readonly Example[];
  readonly test: readonly Example[];
  /** Where the data came from, for results tables. */
  readonly source: string;
}
