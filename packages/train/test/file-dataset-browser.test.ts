// The browser-safe file datasets (src/datasets/file-dataset.ts): what a page runs on a dropped
// file's bytes gives the same Dataset, the same split and the same messages as the CLI's loader.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runInNewContext } from 'node:vm';
import { fileURLToPath } from 'node:url';
import { DeltaTuneError } from '@deltatune/core';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { datasetFromFile, datasetKindOfName, decodeDatasetText, inspectDatasetFile, type Dataset } from '@deltatune/train';
import { loadFileDataset } from '@deltatune/train/node';

const dir = mkdtempSync(join(tmpdir(), 'ds-browser-'));
const file = (name: string, content: string | Uint8Array) => {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
};
const utf8 = (s: string) => new TextEncoder().encode(s);
const reviews = (n: number) =>
  Array.from({ length: n }, (_, i) => ({ text: `review ${i}: ${'fine '.repeat(1 + (i % 4))}café`, label: ['1', '3', '5'][i % 3] }));
const CSV =
  'text,label\n' +
  reviews(40)
    .map((r) => `"${r.text}",${r.label}`)
    .join('\n') +
  '\n';
const JSONL = reviews(40)
  .map((r) => JSON.stringify({ text: r.text, label: Number(r.label) }))
  .join('\n');

/** The DeltaTuneError `load` throws, as message (without the fix) and fix. */
function failure(load: () => unknown): { message: string; fix: string } {
  try {
    load();
  } catch (e) {
    expect(e).toBeInstanceOf(DeltaTuneError);
    const err = e as DeltaTuneError;
    return { message: err.message.split('\n  fix: ')[0], fix: err.fix ?? '' };
  }
  throw new Error('loading did not fail');
}

const summary = (d: Dataset) => ({
  labels: d.labels,
  sizes: [d.train.length, d.validation.length, d.test.length],
  first: [d.train[0], d.validation[0], d.test[0]],
});

describe('datasetFromFile on bytes is loadFileDataset on the same file', () => {
  it.each([
    ['reviews.csv', CSV, 'csv'],
    ['reviews.jsonl', JSONL, 'jsonl'],
  ] as const)('%s: labels, split sizes, the split itself', (name, content, kind) => {
    const path = file(name, content);
    const fromDisk = loadFileDataset(path);
    const fromBytes = datasetFromFile(name, utf8(content), kind);
    expect(summary(fromBytes)).toEqual(summary(fromDisk));
    expect(fromBytes.labels).toEqual(['1', '3', '5']);
    expect(summary(fromBytes).sizes).toEqual([28, 6, 6]);
    // The same split, example for example, whoever loads it; a string (a page's file.text()) too.
    expect({ ...fromBytes, source: path, name: path }).toEqual(fromDisk);
    expect(datasetFromFile(name, content, kind)).toEqual(fromBytes);
    expect(fromBytes.name).toBe(name);
  });

  it('named columns and --task lm pass through', () => {
    const csv =
      'body,stars\n' +
      reviews(10)
        .map((r) => `${r.text},x`)
        .join('\n');
    const path = file('one-class.csv', csv);
    const d = datasetFromFile(path, readFileSync(path), 'csv', { text: 'body', label: 'stars' }, { task: 'lm' });
    expect(d).toEqual(loadFileDataset(path, { text: 'body', label: 'stars' }, { task: 'lm' }));
    expect(d.labels).toEqual(['x']);
  });
});

describe('bad files: the messages the CLI gives, naming the file as the caller names it', () => {
  it('Latin-1 bytes: not UTF-8, the first bad byte and its line', () => {
    const bytes = Uint8Array.from([...utf8('text,label\nok,pos\ncaf'), 0xe9, ...utf8(',neg\n')]);
    const expected = {
      message: 'latin1.csv is not UTF-8 text (first bad byte 0xE9 at line 3)',
      fix: 'convert it: iconv -f latin1 -t utf-8 latin1.csv > latin1.utf8.csv (if it is not Latin-1, put its encoding after -f), then pass latin1.utf8.csv',
    };
    expect(failure(() => datasetFromFile('latin1.csv', bytes, 'csv'))).toEqual(expected);
    expect(failure(() => decodeDatasetText(bytes, 'latin1.csv'))).toEqual(expected);
    const path = file('latin1.csv', bytes);
    expect(failure(() => datasetFromFile(path, bytes, 'csv'))).toEqual(failure(() => loadFileDataset(path)));
  });

  it('UTF-16 and NUL bytes', () => {
    expect(failure(() => decodeDatasetText(Uint8Array.from([0xff, 0xfe, 0x74, 0]), 'wide.csv')).message).toBe(
      'wide.csv is UTF-16 text, not UTF-8',
    );
    expect(failure(() => decodeDatasetText(utf8('text,label\na\0,b\n'), 'nul.csv')).message).toBe(
      'nul.csv contains a NUL byte at line 2: it is binary or UTF-16, not UTF-8 text',
    );
    expect(decodeDatasetText(utf8('\uFEFFtext,label'), 'bom.csv')).toBe('text,label');
  });

  it('an empty file', () => {
    expect(failure(() => datasetFromFile('empty.jsonl', new Uint8Array(0), 'jsonl'))).toEqual({
      message: 'empty.jsonl has no records',
      fix: 'add one JSON object per line: {"text": "...", "label": "..."}',
    });
    expect(failure(() => datasetFromFile('empty.csv', new Uint8Array(0), 'csv'))).toEqual({
      message: 'empty.csv has no records',
      fix: 'a CSV needs a header row naming its columns (text,label), then one row per example',
    });
  });

  it("a CSV without the named columns: the CLI fix by default, the caller's with columnFix", () => {
    const csv =
      'review,stars\n' +
      reviews(12)
        .map((r) => `${r.text},${r.label}`)
        .join('\n');
    const message = 'reviews.csv: the header has no "text" or "label" column (columns: review, stars)';
    expect(failure(() => datasetFromFile('reviews.csv', utf8(csv), 'csv'))).toEqual({
      message,
      fix: 'name the columns: --text-column review --label-column stars',
    });
    const columnFix = (text: string, label: string) => `pick "${text}" as the text column and "${label}" as the label column`;
    expect(failure(() => datasetFromFile('reviews.csv', utf8(csv), 'csv', {}, { columnFix }))).toEqual({
      message,
      fix: 'pick "review" as the text column and "stars" as the label column',
    });
    // Byte-identical to the CLI's by default.
    const path = file('reviews.csv', csv);
    expect(failure(() => datasetFromFile(path, utf8(csv), 'csv'))).toEqual(failure(() => loadFileDataset(path)));
    // No pair to suggest: the hint, the CLI's or the caller's.
    const flat = 'a,b\n1,1\n1,1\n';
    expect(failure(() => datasetFromFile('flat.csv', utf8(flat), 'csv')).fix).toBe(
      'the file needs a text column and a label column: add them, or name them with --text-column and --label-column',
    );
    expect(failure(() => datasetFromFile('flat.csv', utf8(flat), 'csv', {}, { columnFix, columnHint: 'pick them below' })).fix).toBe(
      'the file needs a text column and a label column: add them, or pick them below',
    );
  });

  it("one class: a classifier needs 2 labels, and the other column that has them is named the caller's way", () => {
    const csv =
      'text,label,stars\n' +
      reviews(9)
        .map((r) => `${r.text},x,${r.label}`)
        .join('\n');
    const columnFix = (text: string, label: string) => `pick "${text}" as the text column and "${label}" as the label column`;
    expect(failure(() => datasetFromFile('one.csv', utf8(csv), 'csv'))).toEqual({
      message: 'one.csv: every record has label "x": a classifier needs at least 2 labels',
      fix: 'add records with another label, or if the labels are in another column: name the columns: --text-column text --label-column stars',
    });
    expect(failure(() => datasetFromFile('one.csv', utf8(csv), 'csv', {}, { columnFix })).fix).toBe(
      'add records with another label, or if the labels are in another column: pick "text" as the text column and "stars" as the label column',
    );
  });

  it('a CSV parse error names the line, as the CLI does', () => {
    const csv = 'text,label\na,pos\n"b, oops,neg\nc,pos\n';
    expect(failure(() => datasetFromFile('unclosed.csv', utf8(csv), 'csv')).message).toBe(
      'unclosed.csv:3: a quote opened in this record is never closed (the file ends inside it)',
    );
  });
});

describe('inspectDatasetFile, for a column picker', () => {
  it('suggests the text and label columns of review,stars', () => {
    const csv =
      'id,review,stars\n' +
      reviews(30)
        .map((r, i) => `${i},"${r.text}",${r.label}`)
        .join('\n');
    expect(inspectDatasetFile('reviews.csv', utf8(csv), 'csv')).toEqual({
      kind: 'csv',
      columns: ['id', 'review', 'stars'],
      records: 30,
      suggested: { text: 'review', label: 'stars' },
    });
    // Even in a tiny file, where the text column has as few distinct values as the label column.
    expect(inspectDatasetFile('two.csv', utf8('review,stars\na long review,1\nanother long one,5\n'), 'csv').suggested).toEqual({
      text: 'review',
      label: 'stars',
    });
  });

  it('a column named text / label (any case) wins over the heuristics; JSONL keys in first-seen order', () => {
    const jsonl = [
      '{"Label": "very long label value", "TEXT": "a", "n": 1}',
      '{"Label": "another long label", "TEXT": "b", "n": 2, "x": 0}',
    ].join('\n');
    expect(inspectDatasetFile('k.jsonl', jsonl, 'jsonl')).toEqual({
      kind: 'jsonl',
      columns: ['Label', 'TEXT', 'n', 'x'],
      records: 2,
      suggested: { text: 'TEXT', label: 'Label' },
    });
  });

  it('nothing to suggest leaves the suggestion out; bad files throw what loading throws', () => {
    expect(inspectDatasetFile('flat.jsonl', '{"a": 1, "b": 2}\n{"a": 1, "b": 2}', 'jsonl').suggested).toEqual({});
    expect(failure(() => inspectDatasetFile('latin1.csv', Uint8Array.from([0x63, 0xe9]), 'csv')).message).toBe(
      'latin1.csv is not UTF-8 text (first bad byte 0xE9 at line 1)',
    );
    expect(failure(() => inspectDatasetFile('empty.jsonl', '', 'jsonl')).message).toBe('empty.jsonl has no records');
    expect(failure(() => inspectDatasetFile('h.csv', 'text,label\n', 'csv')).message).toBe(
      'h.csv has only a header row (text, label) and no records',
    );
  });
});

describe('datasetKindOfName', () => {
  it('csv / jsonl by extension, any case; otherwise what to save it as', () => {
    expect(['a.csv', 'B.CSV', 'c.jsonl', 'd.NDJSON', 'dir.x/e.jsonl'].map(datasetKindOfName)).toEqual([
      'csv',
      'csv',
      'jsonl',
      'jsonl',
      'jsonl',
    ]);
    expect(failure(() => datasetKindOfName('data.json'))).toEqual({
      message: 'data.json: unsupported dataset file type ".json"',
      fix: "if it holds one JSON array, convert it to JSON Lines: jq -c '.[]' data.json > data.jsonl",
    });
    expect(failure(() => datasetKindOfName('notes'))).toEqual({
      message: 'notes: unsupported dataset file type "(no extension)"',
      fix: 'save it as a .jsonl/.ndjson file (one JSON object per line) or a .csv file (with a header row)',
    });
    expect(failure(() => datasetKindOfName('.csv')).message).toBe('.csv: unsupported dataset file type "(no extension)"');
  });
});

describe('the module runs in a browser', () => {
  const MODULE = fileURLToPath(new URL('../src/datasets/file-dataset.ts', import.meta.url));

  /** file-dataset.ts bundled for the browser (csv-parse and @deltatune/core inside), and its inputs. */
  async function browserBundle() {
    const result = await build({
      entryPoints: [MODULE],
      bundle: true,
      platform: 'browser',
      format: 'iife',
      globalName: 'fileDataset',
      write: false,
      logLevel: 'silent',
      metafile: true,
    });
    return { code: result.outputFiles[0].text, inputs: Object.keys(result.metafile.inputs) };
  }

  it("bundles with csv-parse's browser build, not its Node build", async () => {
    const { inputs } = await browserBundle();
    expect(inputs.filter((f) => f.includes('node_modules/csv-parse/'))).toEqual(['node_modules/csv-parse/dist/esm/sync.js']);
    expect(inputs.some((f) => f.endsWith('train/src/datasets/text-bytes.ts'))).toBe(true);
  });

  it('parses, checks and splits where there is no Buffer, process or require, as loadFileDataset does', async () => {
    const { code } = await browserBundle();
    // A bare context with some of what a page has (window, TextDecoder, TextEncoder; @deltatune/core
    // brings tfjs, which looks for window) and none of Node's globals.
    const page: Record<string, unknown> = { TextDecoder, TextEncoder, console };
    page.window = page.self = page;
    runInNewContext(`${code};globalThis.fileDataset = fileDataset;`, page);
    expect(page.Buffer).toBeUndefined();
    const api = page.fileDataset as { datasetFromFile: typeof datasetFromFile };
    const path = file('page.csv', CSV);
    // JSON round trip: objects from another context compare as plain data.
    expect(JSON.parse(JSON.stringify(api.datasetFromFile(path, utf8(CSV), 'csv')))).toEqual(loadFileDataset(path));
    // csv-parse's error codes, lines and records drive the messages: the same in the browser build.
    for (const [name, csv] of [
      ['unclosed.csv', 'text,label\na,pos\n"b, oops,neg\nc,pos\n'],
      ['unbalanced.csv', 'text,label\na,pos\n"b,neg\n"c",pos\nd,neg\n'],
      ['midquote.csv', 'text,label\na,pos\n5" screen,neg\n'],
      ['more.csv', 'text,label\na,pos\nhello, world,neg\n'],
      ['fewer.csv', 'text,label\na,pos\nb\n'],
      ['after.csv', 'text,label\n"a"b,pos\n'],
    ]) {
      const p = file(name, csv);
      let inPage: unknown;
      try {
        api.datasetFromFile(p, utf8(csv), 'csv');
      } catch (e) {
        inPage = { name: (e as Error).name, message: (e as Error).message, fix: (e as DeltaTuneError).fix };
      }
      const inNode = failure(() => loadFileDataset(p));
      expect(inPage).toEqual({ name: 'DeltaTuneError', message: expect.stringContaining(inNode.message), fix: inNode.fix });
    }
  });
});
