// A user's own labelled data, a `.csv` or `.jsonl` file, as a Dataset. Browser-safe: the CLI passes
// the bytes it read from disk, a page the bytes of a dropped file, and both get the same records,
// the same messages and the same split.
import { DeltaTuneError } from '@deltatune/core';
import type { Dataset } from './types';
import { splitExamples } from './split';
import { SUPPORTED_DATASET_FILES, extensionOf, sh } from './file-names';
import { checkedDatasetText, decodeDatasetText } from './text-bytes';
import { kindOf, listNames, preview, readCsv, readJsonl, type ParsedFile, type SourceRecord } from './file-records';

export type DatasetFileKind = 'csv' | 'jsonl';

export interface FileColumns {
  readonly text?: string;
  readonly label?: string;
}

export interface DatasetFileOptions {
  /** `'lm'` reads the same files for causal LM, where the labels do not matter (one label is fine). */
  readonly task?: 'classification' | 'lm';
  /**
   * How a fix says to use `text` and `label` as the columns. The default is the CLI's:
   * `name the columns: --text-column X --label-column Y`; a page says e.g. `pick "X" as the text column ...`.
   */
  readonly columnFix?: (text: string, label: string) => string;
  /** How a fix says to choose the columns when none can be suggested; default `name them with --text-column and --label-column`. */
  readonly columnHint?: string;
}

/** What `inspectDatasetFile` finds: the columns to offer in a picker, and the ones to preselect. */
export interface DatasetFileInspection {
  readonly kind: DatasetFileKind;
  /** CSV: the header; JSONL: every key seen, in first-seen order. */
  readonly columns: readonly string[];
  readonly records: number;
  /** The column named `text` / `label` (up to case), else the likeliest: longest strings / fewest distinct values. */
  readonly suggested: { readonly text?: string; readonly label?: string };
}

/** `csv` or `jsonl` by the name's extension (`.csv`, `.jsonl`, `.ndjson`), or a DeltaTuneError. */
export function datasetKindOfName(name: string): DatasetFileKind {
  const ext = extensionOf(name).toLowerCase();
  const kind = ext === '.csv' ? 'csv' : ext === '.jsonl' || ext === '.ndjson' ? 'jsonl' : undefined;
  if (!kind) {
    const fix =
      ext === '.json'
        ? `if it holds one JSON array, convert it to JSON Lines: jq -c '.[]' ${sh(name)} > ${sh(name.slice(0, -5))}.jsonl`
        : `save it as ${SUPPORTED_DATASET_FILES}`;
    throw new DeltaTuneError(`${name}: unsupported dataset file type "${ext || '(no extension)'}"`, fix);
  }
  return kind;
}

/** Bytes are decoded strictly (`decodeDatasetText`); a string is taken as decoded text. */
function parseDatasetFile(name: string, bytes: Uint8Array | string, kind: DatasetFileKind): ParsedFile {
  const text = typeof bytes === 'string' ? checkedDatasetText(bytes, name) : decodeDatasetText(bytes, name);
  const file = kind === 'csv' ? readCsv(name, text) : readJsonl(name, text);
  if (file.records.length === 0) {
    throw new DeltaTuneError(`${name} has no records`, 'add one JSON object per line: {"text": "...", "label": "..."}');
  }
  return file;
}

// ---------------------------------------------------------------------------------------------
// Suggesting columns

function distinctScalars(records: readonly SourceRecord[], column: string): number {
  const values = new Set<string>();
  for (const r of records) {
    const v = r.fields[column];
    if (typeof v === 'string' ? v !== '' : typeof v === 'number' || typeof v === 'boolean') values.add(String(v));
  }
  return values.size;
}

function meanTextLength(records: readonly SourceRecord[], column: string): number {
  let total = 0;
  for (const r of records) {
    const v = r.fields[column];
    if (typeof v === 'string') total += v.trim().length;
  }
  return total / Math.max(records.length, 1);
}

/** The column named `key` up to case, else the best other column by `score`; undefined if none scores. */
function pick(columns: readonly string[], key: string, avoid: readonly string[], score: (c: string) => number): string | undefined {
  const usable = columns.filter((c) => c !== '' && !avoid.includes(c));
  const sameName = usable.find((c) => c.toLowerCase() === key.toLowerCase());
  if (sameName) return sameName;
  let best: string | undefined;
  let bestScore = 0;
  for (const c of usable) {
    const s = score(c);
    if (s > bestScore) [best, bestScore] = [c, s];
  }
  return best;
}

/** Columns that probably hold the text (longest strings) and the label (fewest distinct values, at least 2). */
function suggestText(f: ParsedFile, key: string, avoid: readonly string[]): string | undefined {
  return pick(f.columns, key, avoid, (c) => meanTextLength(f.records, c));
}
function suggestLabel(f: ParsedFile, key: string, avoid: readonly string[]): string | undefined {
  return pick(f.columns, key, avoid, (c) => {
    const n = distinctScalars(f.records, c);
    return n >= 2 ? 1 / n : 0;
  });
}

/**
 * A file's columns and record count, and the text and label columns to preselect, for a column
 * picker. Throws the DeltaTuneErrors loading would for a file that is not UTF-8, does not parse or
 * has no records.
 */
export function inspectDatasetFile(name: string, bytes: Uint8Array | string, kind: DatasetFileKind): DatasetFileInspection {
  const file = parseDatasetFile(name, bytes, kind);
  // The text first: in a small file the text column can have as few distinct values as the label
  // column, but its strings are longer. A column named "label" stays out of the text's choice.
  const namedLabel = file.columns.find((c) => c !== '' && c.toLowerCase() === 'label');
  const text = suggestText(file, 'text', namedLabel === undefined ? [] : [namedLabel]);
  const label = suggestLabel(file, 'label', text === undefined ? [] : [text]);
  const suggested = { ...(text === undefined ? {} : { text }), ...(label === undefined ? {} : { label }) };
  return { kind, columns: file.columns, records: file.records.length, suggested };
}

// ---------------------------------------------------------------------------------------------
// Checking records

interface Wording {
  readonly nameColumns: (text: string, label: string) => string;
  readonly hint: string;
}

const cliNameColumns = (text: string, label: string) => `name the columns: --text-column ${sh(text)} --label-column ${sh(label)}`;

function checkColumns(path: string, f: ParsedFile, textKey: string, labelKey: string, words: Wording): void {
  const hasText = f.columns.includes(textKey);
  const hasLabel = f.columns.includes(labelKey);
  if (hasText && hasLabel) return;
  const word = f.kind === 'csv' ? 'column' : 'field';
  const missing = [hasText ? undefined : textKey, hasLabel ? undefined : labelKey].filter((k) => k !== undefined);
  const what = missing.map((k) => `"${k}"`).join(' or ');
  const where = f.kind === 'csv' ? `${path}: the header has no ${what} column` : `${path}: no record has a ${what} field`;
  const message = `${where} (${word}s: ${listNames(f.columns)})`;
  const only = f.columns.length === 1 ? f.columns[0] : undefined;
  const separator = only === undefined ? undefined : [';', '\t', '|'].find((s) => only.includes(s));
  if (f.kind === 'csv' && separator) {
    throw new DeltaTuneError(message, `the file seems separated by ${JSON.stringify(separator)}: save it with commas between fields`);
  }
  const label = hasLabel ? labelKey : suggestLabel(f, labelKey, hasText ? [textKey] : []);
  const text = hasText ? textKey : suggestText(f, textKey, label === undefined ? [] : [label]);
  if (text === undefined || label === undefined || text === label) {
    throw new DeltaTuneError(message, `the file needs a text ${word} and a label ${word}: add them, or ${words.hint}`);
  }
  throw new DeltaTuneError(message, words.nameColumns(text, label));
}

/** Every record's text and label, or a DeltaTuneError naming the first record that has neither usable. */
function checkRecords(
  path: string,
  f: ParsedFile,
  textKey: string,
  labelKey: string,
  words: Wording,
): Array<{ text: string; label: string }> {
  const word = f.kind === 'csv' ? 'column' : 'field';
  return f.records.map((r) => {
    const at = `${path}:${r.line}`;
    const text = r.fields[textKey];
    const label = r.fields[labelKey];
    if (text === undefined) {
      throw new DeltaTuneError(
        `${at}: the record has no "${textKey}" field (has: ${listNames(Object.keys(r.fields))})`,
        `give every record a "${textKey}" and a "${labelKey}" field, or delete line ${r.line}`,
      );
    }
    if (typeof text !== 'string') {
      throw new DeltaTuneError(
        `${at}: "${textKey}" is ${kindOf(text) === 'array' || kindOf(text) === 'object' ? 'an' : 'a'} ${kindOf(text)} (${preview(
          text,
        )}), not a string`,
        `write the text as a JSON string: "${textKey}": ${JSON.stringify(preview(text))}`,
      );
    }
    if (label === undefined || label === null || label === '') {
      const state =
        label === undefined ? `the record has no "${labelKey}" ${word}` : `"${labelKey}" is ${label === null ? 'null' : 'empty'}`;
      throw new DeltaTuneError(`${at}: ${state}`, `label every record, or delete the unlabelled ones (line ${r.line} first)`);
    }
    if (typeof label === 'object') {
      const other = suggestLabel(f, labelKey, [textKey, labelKey]);
      throw new DeltaTuneError(
        `${at}: "${labelKey}" is ${Array.isArray(label) ? 'an array' : 'an object'} (${preview(
          label,
        )}), but a label must be one string or number`,
        `give each record a single label (multi-label data is not supported)${other ? `, or ${words.nameColumns(textKey, other)}` : ''}`,
      );
    }
    return { text, label: String(label) };
  });
}

/**
 * A user's own data, the contents of a `.jsonl`/`.ndjson` file (one object per line) or a `.csv`
 * file (with a header row) called `name`, with a text and a label column (`text` and `label` unless
 * named). Labels may be strings or numbers; they are sorted as strings to give class ids. Split with
 * `splitExamples` (fixed seed): the same file gives the same split wherever it loads. The returned
 * Dataset's `labels` and split lengths are what a caller prints. Anything unusable in the file is a
 * DeltaTuneError naming `name` (and the line).
 */
export function datasetFromFile(
  name: string,
  bytes: Uint8Array | string,
  kind: DatasetFileKind,
  columns: FileColumns = {},
  options: DatasetFileOptions = {},
): Dataset {
  const words: Wording = {
    nameColumns: options.columnFix ?? cliNameColumns,
    hint: options.columnHint ?? 'name them with --text-column and --label-column',
  };
  const textKey = columns.text ?? 'text';
  const labelKey = columns.label ?? 'label';
  const file = parseDatasetFile(name, bytes, kind);
  checkColumns(name, file, textKey, labelKey, words);
  const rows = checkRecords(name, file, textKey, labelKey, words);
  if (rows.every((r) => r.text.trim() === '')) {
    const other = suggestText(file, '', [textKey, labelKey]);
    throw new DeltaTuneError(
      `${name}: the "${textKey}" ${kind === 'csv' ? 'column' : 'field'} is empty in all ${rows.length} records`,
      other ? words.nameColumns(other, labelKey) : `put each example's text in the "${textKey}" column`,
    );
  }
  const labelValues = [...new Set(rows.map((r) => r.label))].sort();
  if (labelValues.length < 2 && options.task !== 'lm') {
    const other = suggestLabel(file, '', [textKey, labelKey]);
    throw new DeltaTuneError(
      `${name}: every record has label ${JSON.stringify(labelValues[0])}: a classifier needs at least 2 labels`,
      `add records with another label${other ? `, or if the labels are in another column: ${words.nameColumns(textKey, other)}` : ''}`,
    );
  }
  const examples = rows.map((r) => ({ text: r.text, label: labelValues.indexOf(r.label) }));
  return splitExamples(name, labelValues, examples, name);
}
