import { existsSync, readFileSync } from 'node:fs';
import { DeltaTuneError } from '@deltatune/core';
import { splitExamples } from './split';
import type { Dataset } from './types';

export interface FileColumns {
  readonly text?: string;
  readonly label?: string;
}

/** Parses CSV with quoted fields ("" escapes a quote) into rows of cells. */
export function parseCsv(source: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < source.length; i++) {
    const ch = source[i];
    if (quoted) {
      if (ch === '"' && source[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      row.push(cell);
      cell = '';
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && source[i + 1] === '\n') i++;
      row.push(cell);
      if (row.some((c) => c !== '')) rows.push(row);
      row = [];
      cell = '';
    } else cell += ch;
  }
  row.push(cell);
  if (row.some((c) => c !== '')) rows.push(row);
  return rows;
}

/**
 * A user's own data: `.jsonl` (one object per line) or `.csv` (with a header row), with a text and
 * a label column (`text` and `label` unless named). Labels may be strings or numbers; they are
 * sorted to give class ids.
 */
export function loadFileDataset(path: string, columns: FileColumns = {}): Dataset {
  if (!existsSync(path)) throw new DeltaTuneError(`dataset file not found: ${path}`, 'pass a .jsonl or .csv path, or a built-in name: spam, imdb, sotu-party');
  const textKey = columns.text ?? 'text';
  const labelKey = columns.label ?? 'label';
  const raw = readFileSync(path, 'utf8');
  let records: Array<Record<string, unknown>>;
  if (path.endsWith('.jsonl') || path.endsWith('.ndjson')) {
    records = raw
      .split(/\r?\n/)
      .map((line, i) => ({ line: line.trim(), i }))
      .filter(({ line }) => line)
      .map(({ line, i }) => {
        try {
          return JSON.parse(line);
        } catch {
          throw new DeltaTuneError(`${path}:${i + 1} is not valid JSON`, 'each line of a .jsonl file must be one JSON object');
        }
      });
  } else if (path.endsWith('.csv')) {
    const [header, ...rows] = parseCsv(raw);
    if (!header) throw new DeltaTuneError(`${path} is empty`, 'a CSV needs a header row naming its columns');
    records = rows.map((r) => Object.fromEntries(header.map((h, i) => [h.trim(), r[i]])));
  } else {
    throw new DeltaTuneError(`unsupported dataset file ${path}`, 'use .jsonl or .csv');
  }
  for (const [i, r] of records.entries()) {
    if (typeof r[textKey] !== 'string' || r[labelKey] === undefined || r[labelKey] === '') {
      throw new DeltaTuneError(
        `${path} record ${i + 1} lacks a "${textKey}" string or a "${labelKey}" value (has: ${Object.keys(r).join(', ')})`,
        'name the columns: --text-column COL --label-column COL',
      );
    }
  }
  const labelValues = [...new Set(records.map((r) => String(r[labelKey])))].sort();
  const examples = records.map((r) => ({ text: r[textKey] as string, label: labelValues.indexOf(String(r[labelKey])) }));
  return splitExamples(path, labelValues, examples, path);
}
