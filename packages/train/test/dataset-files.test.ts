import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeltaTuneError } from '@deltatune/core';
import { describe, expect, it } from 'vitest';
import { loadDataset, loadFileDataset, parseCsv } from '@deltatune/train/node';

const dir = mkdtempSync(join(tmpdir(), 'ds-files-'));
const file = (name: string, content: string | Buffer) => {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
};
const jsonl = (rows: object[]) => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
const pairs = (n: number, label = (i: number) => (i % 2 ? 'pos' : 'neg')) =>
  Array.from({ length: n }, (_, i) => ({ text: `row ${i}`, label: label(i) }));

/** The DeltaTuneError that loading throws: its message (one line) and fix, asserted separately. */
function failure(path: string, columns?: { text?: string; label?: string }, load = loadDataset): { message: string; fix: string } {
  try {
    load(path, columns);
  } catch (e) {
    expect(e).toBeInstanceOf(DeltaTuneError);
    const err = e as DeltaTuneError;
    const message = err.message.split('\n  fix: ')[0];
    expect(message).not.toContain('\n');
    expect(err.fix).toBeTruthy();
    return { message, fix: err.fix ?? '' };
  }
  throw new Error(`loading ${path} did not fail`);
}

describe('valid files load as before', () => {
  it('CSV quoted fields with commas, line breaks and "" escapes, CRLF, a BOM and blank lines', () => {
    const csv = '\uFEFFtext,label\r\n"hello, world",pos\r\n"two\r\nlines",neg\r\n\r\n"say ""hi""",pos\r\nplain,neg\r\n';
    const rows = parseCsv(csv.slice(1));
    expect(rows).toEqual([
      ['text', 'label'],
      ['hello, world', 'pos'],
      ['two\r\nlines', 'neg'],
      ['say "hi"', 'pos'],
      ['plain', 'neg'],
    ]);
    const d = loadFileDataset(file('quoted.csv', csv));
    expect(d.labels).toEqual(['neg', 'pos']);
    const all = [...d.train, ...d.validation, ...d.test].sort((a, b) => a.text.localeCompare(b.text));
    expect(all).toEqual([
      { text: 'hello, world', label: 1 },
      { text: 'plain', label: 0 },
      { text: 'say "hi"', label: 1 },
      { text: 'two\r\nlines', label: 0 },
    ]);
    // 4 records is the minimum for 15% test / 15% validation: one each, two to train.
    expect([d.train.length, d.validation.length, d.test.length]).toEqual([2, 1, 1]);
  });

  it('JSONL and CSV with UTF-8 accents, numeric labels sorted as strings, a BOM on JSONL', () => {
    const rows = Array.from({ length: 12 }, (_, i) => ({ text: `café ${i}`, label: [10, 9, 2][i % 3] }));
    const j = loadFileDataset(file('accents.jsonl', '\uFEFF' + jsonl(rows)));
    const c = loadFileDataset(file('accents.csv', 'text,label\n' + rows.map((r) => `${r.text},${r.label}`).join('\n')));
    expect(j.labels).toEqual(['10', '2', '9']);
    expect(c.labels).toEqual(j.labels);
    expect(c.train).toEqual(j.train);
    expect(j.train.some((e) => e.text.includes('é'))).toBe(true);
  });

  it('exposes label names and split sizes for a caller to print', () => {
    const d = loadDataset(file('sizes.ndjson', jsonl(pairs(20))));
    expect(d.labels).toEqual(['neg', 'pos']);
    expect({ train: d.train.length, validation: d.validation.length, test: d.test.length }).toEqual({ train: 14, validation: 3, test: 3 });
  });
});

describe('bad dataset files give a DeltaTuneError naming the file and the fix', () => {
  it('one label only', () => {
    const p = file('one-class.jsonl', jsonl(pairs(10, () => 'x')));
    const { message, fix } = failure(p);
    expect(message).toBe(`${p}: every record has label "x": a classifier needs at least 2 labels`);
    expect(fix).toMatch(/add records with another label/);
  });

  it('one label, but another column holds two: the fix names it', () => {
    const p = file(
      'one-class.csv',
      'text,label,y\n' +
        pairs(8)
          .map((r) => `${r.text},x,${r.label}`)
          .join('\n'),
    );
    expect(failure(p).fix).toBe(
      'add records with another label, or if the labels are in another column: name the columns: --text-column text --label-column y',
    );
  });

  it('too few records for the splits: how many there are, how many are needed, the sizes they would give', () => {
    const p = file('tiny.csv', 'text,label\na,pos\nb,neg\nc,pos\n');
    const { message, fix } = failure(p);
    expect(message).toBe(
      `${p}: 3 records are too few to split (15% test, 15% validation, the rest train): at least 4 are needed; ` +
        '3 would give train 3, validation 0, test 0',
    );
    expect(fix).toMatch(/^add at least 1 more record/);
    expect(() => loadFileDataset(file('four.csv', 'text,label\na,pos\nb,neg\nc,pos\nd,neg\n'))).not.toThrow();
  });

  it('empty JSONL, empty CSV, header-only CSV', () => {
    const empty = file('empty.jsonl', '\n\n');
    expect(failure(empty).message).toBe(`${empty} has no records`);
    const emptyCsv = file('empty.csv', '');
    expect(failure(emptyCsv).message).toBe(`${emptyCsv} has no records`);
    const header = file('header.csv', 'text,label\n');
    expect(failure(header).message).toBe(`${header} has only a header row (text, label) and no records`);
  });

  it('an unclosed quote names the line it opens on, not the end of the file', () => {
    const p = file('unclosed.csv', 'text,label\na,pos\n"b, oops,neg\nc,pos\nd,neg\n');
    const { message, fix } = failure(p);
    expect(message).toBe(`${p}:3: a quote opened in this record is never closed (the file ends inside it)`);
    expect(fix).toMatch(/double the quotes inside it/);
  });

  it('an unbalanced quote that closes on a later line', () => {
    const p = file('unbalanced.csv', 'text,label\na,pos\n"b,neg\n"c",pos\nd,neg\n');
    expect(failure(p).message).toBe(
      `${p}:3: a quote opened in this record closes on line 4 and is followed by text (an unbalanced quote?)`,
    );
  });

  it('a quote inside an unquoted field', () => {
    const p = file('midquote.csv', 'text,label\na,pos\n5" screen,neg\n');
    expect(failure(p)).toEqual({
      message: `${p}:3: a quote inside an unquoted field`,
      fix: 'quote the whole field and double the quote: "5"" screen",pos',
    });
  });

  it('a row with an unquoted comma (too many fields) or too few fields', () => {
    const more = file('more.csv', 'text,label\na,pos\nhello, world,neg\n');
    const m = failure(more);
    expect(m.message).toBe(`${more}:3: 3 fields, but the header has 2`);
    expect(m.fix).toMatch(/wrap a field that has commas/);
    const fewer = file('fewer.csv', 'text,label\na,pos\njust text\n');
    expect(failure(fewer)).toEqual({
      message: `${fewer}:3: 1 field, but the header has 2`,
      fix: 'give every row a field for each column (an empty one is fine: text,,pos)',
    });
  });

  it('Latin-1 bytes are reported, not turned into U+FFFD', () => {
    const cafe = Buffer.from([0x63, 0x61, 0x66, 0xe9]); // "café" in Latin-1
    const csv = file('latin1.csv', Buffer.concat([Buffer.from('text,label\na,pos\n'), cafe, Buffer.from(',neg\n')]));
    expect(failure(csv)).toEqual({
      message: `${csv} is not UTF-8 text (first bad byte 0xE9 at line 3)`,
      fix:
        `convert it: iconv -f latin1 -t utf-8 ${csv} > ${join(
          dir,
          'latin1.utf8.csv',
        )} (if it is not Latin-1, put its encoding after -f), ` + `then pass ${join(dir, 'latin1.utf8.csv')}`,
    });
    const jl = file('latin1.jsonl', Buffer.concat([Buffer.from('{"text": "'), cafe, Buffer.from('", "label": "a"}\n')]));
    expect(failure(jl).message).toBe(`${jl} is not UTF-8 text (first bad byte 0xE9 at line 1)`);
    expect(failure(jl).fix).toContain(join(dir, 'latin1.utf8.jsonl'));
  });

  it('UTF-16 and NUL bytes', () => {
    const p = file('utf16.csv', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('text,label\n', 'utf16le')]));
    expect(failure(p).message).toBe(`${p} is UTF-16 text, not UTF-8`);
    const nul = file('nul.csv', 'text,label\na\0b,pos\n');
    expect(failure(nul).message).toBe(`${nul} contains a NUL byte at line 2: it is binary or UTF-16, not UTF-8 text`);
  });

  it('unknown extension, a JSON array file, a directory, a missing file', () => {
    const tsv = file('data.tsv', 'text\tlabel\n');
    expect(failure(tsv).message).toBe(`${tsv}: unsupported dataset file type ".tsv"`);
    const json = file('data.json', '[]');
    expect(failure(json).fix).toBe(
      `if it holds one JSON array, convert it to JSON Lines: jq -c '.[]' ${json} > ${join(dir, 'data')}.jsonl`,
    );
    const sub = join(dir, 'folder');
    mkdirSync(sub);
    expect(failure(sub)).toEqual({ message: `${sub} is a directory, not a dataset file`, fix: expect.stringMatching(/^pass a \.jsonl/) });
    writeFileSync(join(sub, 'train.csv'), 'text,label\n');
    expect(failure(sub).fix).toBe(`pass one file in it, e.g. --dataset ${join(sub, 'train.csv')}`);
    const missing = join(dir, 'nope.csv');
    expect(failure(missing).message).toBe(`dataset file not found: ${missing}`);
    expect(failure('spma').message).toBe('unknown dataset "spma" (did you mean spam?)');
  });

  it('an unreadable file', () => {
    const p = file('locked.csv', 'text,label\n');
    chmodSync(p, 0o000);
    // root reads anything; the check only means something for other users.
    if (process.getuid?.() !== 0) expect(failure(p).message).toMatch(new RegExp(`^cannot read ${p} \\(EACCES\\)`));
    chmodSync(p, 0o600);
  });

  it('an unreadable JSON line keeps its line number; a JSON array is named as such', () => {
    const p = file('badline.jsonl', '{"text": "a", "label": 1}\n\n{"text": "b", label: 2}\n');
    const { message } = failure(p);
    expect(message).toMatch(new RegExp(`^${p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3 is not valid JSON: `));
    const arr = file('array.jsonl', JSON.stringify(pairs(5), null, 2));
    expect(failure(arr)).toEqual({
      message: `${arr} is one JSON array, not JSON Lines (one object per line)`,
      fix: `convert it: jq -c '.[]' ${arr} > ${join(dir, 'array')}.lines.jsonl, then pass ${join(dir, 'array')}.lines.jsonl`,
    });
    const lines = file('arrays.jsonl', '["a", "pos"]\n["b", "neg"]\n');
    expect(failure(lines).message).toBe(`${lines}:1 is a JSON array (["a","pos"]), not an object`);
    const scalar = file('scalar.jsonl', '{"text": "a", "label": 1}\n42\n');
    expect(failure(scalar).message).toBe(`${scalar}:2 is a JSON number (42), not an object`);
  });

  it('labels that are objects, arrays, null or empty', () => {
    const base = pairs(6);
    const withLabel = (name: string, label: unknown) => file(name, jsonl([...base.slice(0, 3), { text: 'x', label }, ...base.slice(3)]));
    const arr = withLabel('label-array.jsonl', ['a', 'b']);
    expect(failure(arr).message).toBe(`${arr}:4: "label" is an array (["a","b"]), but a label must be one string or number`);
    expect(failure(arr).fix).toMatch(/multi-label data is not supported/);
    const obj = withLabel('label-object.jsonl', { y: 1 });
    expect(failure(obj).message).toBe(`${obj}:4: "label" is an object ({"y":1}), but a label must be one string or number`);
    const nul = withLabel('label-null.jsonl', null);
    expect(failure(nul)).toEqual({
      message: `${nul}:4: "label" is null`,
      fix: 'label every record, or delete the unlabelled ones (line 4 first)',
    });
    const csv = file('label-empty.csv', 'text,label\na,pos\n"multi\nline",neg\nc,\nd,pos\n');
    expect(failure(csv).message).toBe(`${csv}:5: "label" is empty`);
  });

  it('a text column empty in every record; text that is not a string', () => {
    const p = file(
      'no-text.csv',
      'text,body,label\n' +
        pairs(8)
          .map((r) => `,${r.text},${r.label}`)
          .join('\n'),
    );
    expect(failure(p)).toEqual({
      message: `${p}: the "text" column is empty in all 8 records`,
      fix: 'name the columns: --text-column body --label-column label',
    });
    const num = file(
      'text-number.jsonl',
      jsonl([
        { text: 'a', label: 1 },
        { text: 7, label: 2 },
      ]),
    );
    expect(failure(num).message).toBe(`${num}:2: "text" is a number (7), not a string`);
  });

  it('missing columns list what the file has, and the fix uses those names', () => {
    const rows = pairs(10).map((r) => ({ body: `${r.text} is a longer piece of text`, y: r.label, id: r.text }));
    const csv = file('named.csv', 'id,body,y\n' + rows.map((r) => `${r.id},${r.body},${r.y}`).join('\n'));
    expect(failure(csv)).toEqual({
      message: `${csv}: the header has no "text" or "label" column (columns: id, body, y)`,
      fix: 'name the columns: --text-column body --label-column y',
    });
    const jl = file('named.jsonl', jsonl(rows));
    expect(failure(jl, { text: 'body' })).toEqual({
      message: `${jl}: no record has a "label" field (fields: body, y, id)`,
      fix: 'name the columns: --text-column body --label-column y',
    });
    expect(() => loadDataset(jl, { text: 'body', label: 'y' })).not.toThrow();
    const partial = file('partial.jsonl', jsonl([...pairs(5), { body: 'x', label: 'pos' }]));
    expect(failure(partial).message).toBe(`${partial}:6: the record has no "text" field (has: body, label)`);
    const semi = file('semicolon.csv', 'text;label\na;pos\n');
    expect(failure(semi).fix).toBe('the file seems separated by ";": save it with commas between fields');
  });

  it('duplicate header names', () => {
    const p = file('dup.csv', 'text,label,text\na,pos,b\n');
    expect(failure(p)).toEqual({
      message: `${p}:1: the header names column "text" twice (text, label, text)`,
      fix: 'give every column a distinct name in the header row',
    });
  });
});
