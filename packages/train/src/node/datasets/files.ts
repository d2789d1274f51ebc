import { readFileSync, readdirSync, statSync, type Stats } from 'node:fs';
import { extname, join } from 'node:path';
import { DeltaTuneError } from '@deltatune/core';
import { parse } from 'csv-parse/sync';
import { splitExamples, type Dataset } from '../../index';

export interface FileColumns {
  readonly text?: string;
  readonly label?: string;
}

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

const BUILTINS = 'spam, imdb, sotu-party';
const SUPPORTED = 'a .jsonl/.ndjson file (one JSON object per line) or a .csv file (with a header row)';

/** Quotes a path or column name for the shell commands in fixes, so a suggested command works as pasted. */
export function sh(s: string): string {
  return /^[\w./:@%+=,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** A value as it would appear in the file, short enough to keep a message on one line. */
export function preview(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

function list(names: readonly string[]): string {
  const shown = names.slice(0, 20).map((n) => (n === '' ? '(unnamed)' : n));
  return names.length > 20 ? `${shown.join(', ')}, ... (${names.length} in all)` : shown.join(', ') || '(none)';
}

export const kindOf = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

// ---------------------------------------------------------------------------------------------
// Reading bytes as text

/** Offset of the first byte that is not part of a well-formed UTF-8 sequence (Unicode table 3-7), or -1. */
function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    let n: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) n = 1;
    else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      if (c === 0xe0) lo = 0xa0; // overlong
      if (c === 0xed) hi = 0x9f; // surrogates
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      if (c === 0xf0) lo = 0x90; // overlong
      if (c === 0xf4) hi = 0x8f; // above U+10FFFF
    } else return i;
    for (let k = 1; k <= n; k++) {
      const d = b[i + k];
      if (d === undefined || d < (k === 1 ? lo : 0x80) || d > (k === 1 ? hi : 0xbf)) return i;
    }
    i += n + 1;
  }
  return -1;
}

function lineAt(b: Uint8Array, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset; i++) if (b[i] === 0x0a) line++;
  return line;
}

/** `data.csv` -> `data.utf8.csv`: the converted copy keeps its extension, so it loads as the same kind. */
function convertedName(path: string): string {
  const ext = extname(path);
  return `${path.slice(0, path.length - ext.length)}.utf8${ext}`;
}

/**
 * Decodes strictly: Node's lenient decoding turns every Latin-1 accent into U+FFFD, and the model
 * then trains on the wrong text without a word.
 */
export function readText(path: string): string {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    throw new DeltaTuneError(
      `cannot read ${path} (${code}): ${(e as Error).message}`,
      `check that the file is readable: ls -l ${sh(path)}`,
    );
  }
  if ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff)) {
    throw new DeltaTuneError(
      `${path} is UTF-16 text, not UTF-8`,
      `convert it: iconv -f utf-16 -t utf-8 ${sh(path)} > ${sh(convertedName(path))}, then pass ${sh(convertedName(path))}`,
    );
  }
  let text: string;
  try {
    // fatal: throw on a bad byte instead of substituting U+FFFD. The decoder also drops a leading BOM.
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    const at = firstInvalidUtf8(bytes);
    const where = at < 0 ? '' : ` (first bad byte 0x${bytes[at].toString(16).toUpperCase().padStart(2, '0')} at line ${lineAt(bytes, at)})`;
    throw new DeltaTuneError(
      `${path} is not UTF-8 text${where}`,
      `convert it: iconv -f latin1 -t utf-8 ${sh(path)} > ${sh(convertedName(path))} ` +
        `(if it is not Latin-1, put its encoding after -f), then pass ${sh(convertedName(path))}`,
    );
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const nul = text.indexOf('\0');
  if (nul >= 0) {
    // Valid UTF-8, but a NUL means UTF-16 without a BOM or a binary file (a spreadsheet saved under a .csv name).
    const line = text.slice(0, nul).split('\n').length;
    throw new DeltaTuneError(
      `${path} contains a NUL byte at line ${line}: it is binary or UTF-16, not UTF-8 text`,
      `export it as UTF-8 CSV or JSONL; if it is UTF-16: iconv -f utf-16 -t utf-8 ${sh(path)} > ${sh(convertedName(path))}`,
    );
  }
  return text;
}

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

function readCsv(path: string, text: string): ParsedFile {
  const [head, ...rows] = parseCsvRows(text, path);
  if (!head)
    throw new DeltaTuneError(
      `${path} has no records`,
      'a CSV needs a header row naming its columns (text,label), then one row per example',
    );
  const header = head.cells.map((h) => h.trim());
  if (rows.length === 0) {
    throw new DeltaTuneError(`${path} has only a header row (${list(header)}) and no records`, 'add one row per example under the header');
  }
  const seen = new Set<string>();
  for (const h of header) {
    // Unnamed columns (trailing commas from spreadsheets) are ignored, so only named duplicates are ambiguous.
    if (h !== '' && seen.has(h)) {
      throw new DeltaTuneError(
        `${path}:${head.line}: the header names column "${h}" twice (${list(header)})`,
        'give every column a distinct name in the header row',
      );
    }
    seen.add(h);
  }
  const records = rows.map((r) => ({ fields: Object.fromEntries(header.map((h, i) => [h, r.cells[i]])), line: r.line }));
  return { kind: 'csv', columns: header, records };
}

// ---------------------------------------------------------------------------------------------
// Checking records

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

function nameColumns(text: string, label: string): string {
  return `name the columns: --text-column ${sh(text)} --label-column ${sh(label)}`;
}

function checkColumns(path: string, f: ParsedFile, textKey: string, labelKey: string): void {
  const hasText = f.columns.includes(textKey);
  const hasLabel = f.columns.includes(labelKey);
  if (hasText && hasLabel) return;
  const word = f.kind === 'csv' ? 'column' : 'field';
  const missing = [hasText ? undefined : textKey, hasLabel ? undefined : labelKey].filter((k) => k !== undefined);
  const what = missing.map((k) => `"${k}"`).join(' or ');
  const where = f.kind === 'csv' ? `${path}: the header has no ${what} column` : `${path}: no record has a ${what} field`;
  const message = `${where} (${word}s: ${list(f.columns)})`;
  const only = f.columns.length === 1 ? f.columns[0] : undefined;
  const separator = only === undefined ? undefined : [';', '\t', '|'].find((s) => only.includes(s));
  if (f.kind === 'csv' && separator) {
    throw new DeltaTuneError(message, `the file seems separated by ${JSON.stringify(separator)}: save it with commas between fields`);
  }
  const label = hasLabel ? labelKey : suggestLabel(f, labelKey, hasText ? [textKey] : []);
  const text = hasText ? textKey : suggestText(f, textKey, label === undefined ? [] : [label]);
  if (text === undefined || label === undefined || text === label) {
    throw new DeltaTuneError(
      message,
      `the file needs a text ${word} and a label ${word}: add them, or name them with --text-column and --label-column`,
    );
  }
  throw new DeltaTuneError(message, nameColumns(text, label));
}

/** Every record's text and label, or a DeltaTuneError naming the first record that has neither usable. */
function checkRecords(path: string, f: ParsedFile, textKey: string, labelKey: string): Array<{ text: string; label: string }> {
  const word = f.kind === 'csv' ? 'column' : 'field';
  return f.records.map((r) => {
    const at = `${path}:${r.line}`;
    const text = r.fields[textKey];
    const label = r.fields[labelKey];
    if (text === undefined) {
      throw new DeltaTuneError(
        `${at}: the record has no "${textKey}" field (has: ${list(Object.keys(r.fields))})`,
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
        `give each record a single label (multi-label data is not supported)${other ? `, or ${nameColumns(textKey, other)}` : ''}`,
      );
    }
    return { text, label: String(label) };
  });
}

/**
 * What a dataset path is, `csv` or `jsonl` by its extension, or a DeltaTuneError saying what is
 * wrong with it: missing, a folder (naming a file in it), another type.
 */
export function datasetFileKind(path: string): 'csv' | 'jsonl' {
  let stat: Stats | undefined;
  try {
    stat = statSync(path, { throwIfNoEntry: false });
  } catch (e) {
    throw new DeltaTuneError(`cannot read ${path}: ${(e as Error).message}`, `check the path and its permissions: ls -ld ${sh(path)}`);
  }
  if (!stat) throw new DeltaTuneError(`dataset file not found: ${path}`, `pass ${SUPPORTED}, or a built-in name: ${BUILTINS}`);
  if (stat.isDirectory()) {
    let inside: string[];
    try {
      inside = readdirSync(path)
        .filter((f) => /\.(jsonl|ndjson|csv)$/i.test(f))
        .sort();
    } catch {
      inside = []; // unreadable: the message names no file
    }
    throw new DeltaTuneError(
      `${path} is a directory, not a dataset file`,
      inside.length ? `pass one file in it, e.g. --dataset ${sh(join(path, inside[0]))}` : `pass ${SUPPORTED}`,
    );
  }
  const ext = extname(path).toLowerCase();
  const kind = ext === '.csv' ? 'csv' : ext === '.jsonl' || ext === '.ndjson' ? 'jsonl' : undefined;
  if (!kind) {
    const fix =
      ext === '.json'
        ? `if it holds one JSON array, convert it to JSON Lines: jq -c '.[]' ${sh(path)} > ${sh(path.slice(0, -5))}.jsonl`
        : `save it as ${SUPPORTED}`;
    throw new DeltaTuneError(`${path}: unsupported dataset file type "${ext || '(no extension)'}"`, fix);
  }
  return kind;
}

/**
 * A user's own data: `.jsonl`/`.ndjson` (one object per line) or `.csv` (with a header row), with a
 * text and a label column (`text` and `label` unless named). Labels may be strings or numbers; they
 * are sorted as strings to give class ids. The returned Dataset's `labels` and split lengths are what
 * a caller prints. Anything unusable in the file is a DeltaTuneError naming the file (and line).
 */
/** `task: 'lm'` reads the same files for causal LM, where the labels do not matter (one label is fine). */
export function loadFileDataset(path: string, columns: FileColumns = {}, options: { task?: 'classification' | 'lm' } = {}): Dataset {
  const kind = datasetFileKind(path);
  const textKey = columns.text ?? 'text';
  const labelKey = columns.label ?? 'label';
  const text = readText(path);
  const file = kind === 'csv' ? readCsv(path, text) : readJsonl(path, text);
  if (file.records.length === 0) {
    throw new DeltaTuneError(`${path} has no records`, 'add one JSON object per line: {"text": "...", "label": "..."}');
  }
  checkColumns(path, file, textKey, labelKey);
  const rows = checkRecords(path, file, textKey, labelKey);
  if (rows.every((r) => r.text.trim() === '')) {
    const other = suggestText(file, '', [textKey, labelKey]);
    throw new DeltaTuneError(
      `${path}: the "${textKey}" ${kind === 'csv' ? 'column' : 'field'} is empty in all ${rows.length} records`,
      other ? nameColumns(other, labelKey) : `put each example's text in the "${textKey}" column`,
    );
  }
  const labelValues = [...new Set(rows.map((r) => r.label))].sort();
  if (labelValues.length < 2 && options.task !== 'lm') {
    const other = suggestLabel(file, '', [textKey, labelKey]);
    throw new DeltaTuneError(
      `${path}: every record has label ${JSON.stringify(labelValues[0])}: a classifier needs at least 2 labels`,
      `add records with another label${other ? `, or if the labels are in another column: ${nameColumns(textKey, other)}` : ''}`,
    );
  }
  const examples = rows.map((r) => ({ text: r.text, label: labelValues.indexOf(r.label) }));
  return splitExamples(path, labelValues, examples, path);
}
