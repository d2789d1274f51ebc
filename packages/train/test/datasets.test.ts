import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { emailText, loadDataset, loadSotuParty, loadSpam, parseCsv } from '@deltatune/train/node';

describe('built-in datasets', () => {
  it('spam: 6,046 emails in deterministic 70/15/15 splits', () => {
    const a = loadSpam();
    const b = loadSpam();
    expect(a.train.length + a.validation.length + a.test.length).toBe(6046);
    expect(a.test.length).toBe(907);
    expect(a.test.slice(0, 20)).toEqual(b.test.slice(0, 20));
    const spam = [...a.train, ...a.validation, ...a.test].filter((e) => e.label === 1).length;
    expect(spam).toBe(1896);
    expect(a.labels).toEqual(['ham', 'spam']);
  });

  it('imdb: 50k reviews, shuffled so both labels are in every split', () => {
    const d = loadDataset('imdb');
    expect(d.train.length + d.validation.length + d.test.length).toBe(50000);
    const positives = d.test.filter((e) => e.label === 1).length / d.test.length;
    expect(positives).toBeGreaterThan(0.45);
    expect(positives).toBeLessThan(0.55);
  });

  it('sotu-party: passages split by speech, never one speech on both sides', () => {
    const d = loadSotuParty();
    expect(d.labels).toEqual(['Democratic', 'Republican']);
    expect(d.train.length).toBeGreaterThan(1000);
    const test = new Set(d.test.map((e) => e.text));
    expect(d.train.some((e) => test.has(e.text))).toBe(false);
  });

  it('email text keeps the subject and body, drops headers and markup', () => {
    const t = emailText('From: a@b.c\nSubject: Cheap meds\nContent-Type: text/html\n\n<html><b>Buy&nbsp;now</b></html>\n');
    expect(t).toBe('Cheap meds. Buy now');
  });
});

describe('user files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ds-'));
  it('reads JSONL and CSV (quoted fields), mapping string labels to ids', () => {
    const rows = Array.from({ length: 20 }, (_, i) => ({ text: `row ${i}, "quoted"`, label: i % 2 ? 'pos' : 'neg' }));
    writeFileSync(join(dir, 'd.jsonl'), rows.map((r) => JSON.stringify(r)).join('\n'));
    writeFileSync(join(dir, 'd.csv'), 'text,label\n' + rows.map((r) => `"${r.text.replace(/"/g, '""')}",${r.label}`).join('\n'));
    const j = loadDataset(join(dir, 'd.jsonl'));
    const c = loadDataset(join(dir, 'd.csv'));
    expect(j.labels).toEqual(['neg', 'pos']);
    expect(c.train).toEqual(j.train);
    expect(parseCsv('a,"b,""c"""\n1,2')).toEqual([
      ['a', 'b,"c"'],
      ['1', '2'],
    ]);
  });
  it('names the missing column and how to fix it', () => {
    writeFileSync(join(dir, 'bad.jsonl'), '{"body": "x", "label": 1}\n');
    expect(() => loadDataset(join(dir, 'bad.jsonl'))).toThrow(
      /no record has a "text" field \(fields: body, label\)[\s\S]*--text-column body --label-column label/,
    );
    expect(() => loadDataset('spma')).toThrow(/unknown dataset "spma" \(did you mean spam\?\)/);
  });
});
