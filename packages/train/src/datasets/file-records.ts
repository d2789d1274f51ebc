// A dataset file's text as records: JSON Lines or CSV (csv-parse's browser build, which carries its
// own Buffer), each record with the line it starts on. Browser-safe: the CLI and a page parse with it.
import { DeltaTuneError } from '@deltatune/core';
import { parse } from 'csv-parse/browser/esm/sync';
import { sh } from './file-names';

/** One parsed record and the (1-based) line it starts on, so every complaint can point at the file's line. */
export interface SourceRecord {
  readonly fields: Record<string, unknown>;
  readonly line: number;
}

export interface ParsedFile {
  readonly kind: 'csv' | 'jsonl';
  /** CSV: the header; JSONL: every key seen, in first-seen order. */
  readonly columns: readonly string[];
  readonly records: readonly SourceRecord[];
}

/** A value as it would appear in the file, short enough to keep a message on one line. */
export function preview(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

/** Column names for a message: at most 20, an empty one as `(unnamed)`. */
export function listNames(names: readonly string[]): string {
  const shown = names.slice(0, 20).map((n) => (n === '' ? '(unnamed)' : n));
  return names.length > 20 ? `${shown.join(', ')}, ... (${names.length} in all)` : shown.join(', ') || '(none)';
}

export const kindOf = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

// ---------------------------------------------------------------------------------------------
// JSON Lines

const JSONL_EXAMPLE = '{"text": "...", "label": "..."}';

/** `example`: a record of the shape the caller wants, shown in the fixes. */
export function readJsonl(path: string, text: string, example = JSONL_EXAMPLE): ParsedFile {
  const records: SourceRecord[] = [];
  const columns = new Set<string>();
  const lines = text.split(/\r?\n/);
  for (const [i, raw] of lines.entries()) {
    const line = raw.trim();
    if (!line) continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (e) {
      throw notJsonLines(path, text, i + 1, (e as Error).message, example);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      if (Array.isArray(value) && records.length === 0 && wholeArray(text)) throw notJsonLines(path, text, i + 1, 'a JSON array', example);
      throw new DeltaTuneError(
        `${path}:${i + 1} is a JSON ${kindOf(value)} (${preview(value)}), not an object`,
        `write one JSON object per line: ${example}`,
      );
    }
    for (const k of Object.keys(value)) columns.add(k);
    records.push({ fields: value as Record<string, unknown>, line: i + 1 });
  }
  return { kind: 'jsonl', columns: [...columns], records };
}

function wholeArray(text: string): boolean {
  try {
    return Array.isArray(JSON.parse(text));
  } catch {
    return false;
  }
}

/** A bad line; when the file as a whole is a JSON array, says so, since that is the usual mix-up. */
function notJsonLines(path: string, text: string, line: number, why: string, example: string): DeltaTuneError {
  if (wholeArray(text)) {
    const out = `${path.replace(/\.(jsonl|ndjson)$/i, '')}.lines.jsonl`;
    return new DeltaTuneError(
      `${path} is one JSON array, not JSON Lines (one object per line)`,
      `convert it: jq -c '.[]' ${sh(path)} > ${sh(out)}, then pass ${sh(out)}`,
    );
  }
  return new DeltaTuneError(
    `${path}:${line} is not valid JSON: ${why.split('\n')[0]}`,
    `fix line ${line}: each line of a .jsonl file must be one complete JSON object, e.g. ${example}`,
  );
}

// ---------------------------------------------------------------------------------------------
// CSV

interface CsvRow {
  readonly cells: string[];
  readonly line: number;
}

/** The 1-based line of the first non-empty line at or after `from`: where a record after a blank gap starts. */
function nextContentLine(lines: readonly string[], from: number): number {
  let l = from;
  while (l <= lines.length && lines[l - 1] === '') l++;
  return Math.min(l, Math.max(lines.length, 1));
}

/**
 * Parses CSV (RFC 4180 quoting; `""` escapes a quote) with csv-parse into rows of cells, each with
 * the line it starts on. Rows of only empty cells are dropped, as the hand-written parser did.
 * Every row must have as many cells as the first: a stray comma otherwise shifts a label silently.
 */
function parseCsvRows(source: string, name: string): CsvRow[] {
  const lines = source.split(/\r\n|\n|\r/);
  const ends: number[] = [];
  let cells: string[][];
  try {
    cells = parse(source, {
      bom: true,
      skip_empty_lines: true,
      relax_column_count: false,
      relax_quotes: false,
      // No trimming: cell values stay exactly as written (as before csv-parse); header names are trimmed by the caller.
      trim: false,
      on_record: (record: string[], context: { lines: number }) => {
        ends.push(context.lines);
        return record;
      },
    });
  } catch (e) {
    const last = ends.length ? ends[ends.length - 1] : 0;
    throw csvProblem(name, e, nextContentLine(lines, last + 1));
  }
  return cells
    .map((c, i) => ({ cells: c, line: nextContentLine(lines, i === 0 ? 1 : ends[i - 1] + 1) }))
    .filter((r) => r.cells.some((c) => c !== ''));
}

const QUOTING = 'wrap a field that has commas, quotes or line breaks in quotes, and double the quotes inside it: "say ""hi"", ok",pos';

/** csv-parse's error as a DeltaTuneError naming the line the bad record starts on (csv-parse gives where it noticed). */
function csvProblem(name: string, e: unknown, start: number): Error {
  const err = e as { code?: unknown; lines?: unknown; message?: string; record?: unknown; columns?: unknown };
  if (typeof err.code !== 'string') return e as Error;
  const noticed = typeof err.lines === 'number' ? err.lines : start;
  const span = noticed > start ? ` (the record runs on to line ${noticed})` : '';
  switch (err.code) {
    case 'CSV_QUOTE_NOT_CLOSED':
      return new DeltaTuneError(`${name}:${start}: a quote opened in this record is never closed (the file ends inside it)`, QUOTING);
    case 'CSV_INVALID_CLOSING_QUOTE':
    case 'CSV_NON_TRIMABLE_CHAR_AFTER_CLOSING_QUOTE':
      return new DeltaTuneError(
        noticed > start
          ? `${name}:${start}: a quote opened in this record closes on line ${noticed} and is followed by text (an unbalanced quote?)`
          : `${name}:${start}: a closing quote is followed by text instead of a comma or the end of the line`,
        QUOTING,
      );
    case 'INVALID_OPENING_QUOTE':
    case 'CSV_INVALID_OPENING_QUOTE':
      return new DeltaTuneError(
        `${name}:${noticed}: a quote inside an unquoted field`,
        `quote the whole field and double the quote: "5"" screen",pos`,
      );
    case 'CSV_RECORD_INCONSISTENT_FIELDS_LENGTH': {
      const got = Array.isArray(err.record) ? err.record.length : undefined;
      const want = /expect (\d+)/.exec(err.message ?? '')?.[1];
      const fewer = got !== undefined && want !== undefined && got < Number(want);
      return new DeltaTuneError(
        `${name}:${start}: ${got === undefined ? 'a different number of fields' : got === 1 ? '1 field' : `${got} fields`}, ` +
          `but the header has ${want ?? 'another number'}${span}`,
        fewer ? 'give every row a field for each column (an empty one is fine: text,,pos)' : QUOTING,
      );
    }
    default:
      return new DeltaTuneError(`${name}:${noticed}: malformed CSV (${err.code}): ${(err.message ?? '').split('\n')[0]}`, QUOTING);
  }
}

/**
 * Parses CSV text into rows of cells, with csv-parse. Throws a DeltaTuneError naming the line for
 * malformed input (an unclosed quote, a row with more or fewer fields than the first).
 */
export function parseCsv(source: string, name = 'CSV input'): string[][] {
  return parseCsvRows(source, name).map((r) => r.cells);
}

/** A CSV file with a header row as records keyed by the (trimmed) header names. */
export function readCsv(path: string, text: string): ParsedFile {
  const [head, ...rows] = parseCsvRows(text, path);
  if (!head)
    throw new DeltaTuneError(
      `${path} has no records`,
      'a CSV needs a header row naming its columns (text,label), then one row per example',
    );
  const header = head.cells.map((h) => h.trim());
  if (rows.length === 0) {
    throw new DeltaTuneError(
      `${path} has only a header row (${listNames(header)}) and no records`,
      'add one row per example under the header',
    );
  }
  const seen = new Set<string>();
  for (const h of header) {
    // Unnamed columns (trailing commas from spreadsheets) are ignored, so only named duplicates are ambiguous.
    if (h !== '' && seen.has(h)) {
      throw new DeltaTuneError(
        `${path}:${head.line}: the header names column "${h}" twice (${listNames(header)})`,
        'give every column a distinct name in the header row',
      );
    }
    seen.add(h);
  }
  const records = rows.map((r) => ({ fields: Object.fromEntries(header.map((h, i) => [h, r.cells[i]])), line: r.line }));
  return { kind: 'csv', columns: header, records };
}
