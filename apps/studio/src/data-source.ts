import { datasetFromFile, datasetKindOfName, inspectDatasetFile, type Dataset } from '@deltatune/train';

/** A dataset the page can train on, and what `deltatune eval` needs to find it again. */
export interface PageDataset {
  /** `spam`, or the file's name (in Node: `deltatune eval --dataset <path to it>`). */
  readonly name: string;
  readonly dataset: Dataset;
  readonly columns?: { readonly text: string; readonly label: string };
}

/** The SpamAssassin sample the build ships, already split as `@deltatune/train/node`'s loadSpam splits it. */
export async function spamSample(): Promise<PageDataset> {
  const res = await fetch(new URL('data/spam.json', document.baseURI));
  if (!res.ok) throw new Error(`could not load the shipped spam sample (HTTP ${res.status})`);
  return { name: 'spam', dataset: (await res.json()) as Dataset };
}

/** The page's wording for a column fix: the picker, not the CLI's flags. */
const pickColumns = (text: string, label: string) => `pick "${text}" as the text column and "${label}" as the label column`;

const PICK_HINT = 'pick them in the column picker';

/** A dropped file: decoded strictly and parsed once (errors here are the CLI's), its columns offered to the picker. */
export class DatasetFile {
  readonly kind: 'csv' | 'jsonl';
  readonly columns: readonly string[];
  readonly records: number;
  readonly suggested: { readonly text?: string; readonly label?: string };

  constructor(
    readonly name: string,
    private readonly bytes: Uint8Array,
  ) {
    this.kind = datasetKindOfName(name);
    const info = inspectDatasetFile(name, bytes, this.kind);
    this.columns = info.columns;
    this.records = info.records;
    this.suggested = info.suggested;
  }

  /** The split dataset for the chosen columns; every problem (one class, empty texts, missing column) is an error naming it. */
  dataset(text: string, label: string): PageDataset {
    const dataset = datasetFromFile(this.name, this.bytes, this.kind, { text, label }, { columnFix: pickColumns, columnHint: PICK_HINT });
    return { name: this.name, dataset, columns: { text, label } };
  }
}
