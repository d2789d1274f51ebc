import { describe, expect, it } from 'vitest';
import { closestNames, selectSites, type Site } from '@deltatune/core';

const names = [0, 1, 2].flatMap((l) => [
  `encoder.layer.${l}.attention.self.query`,
  `encoder.layer.${l}.attention.self.key`,
  `encoder.layer.${l}.attention.self.value`,
  `encoder.layer.${l}.attention.output.dense`,
  `encoder.layer.${l}.intermediate.dense`,
  `encoder.layer.${l}.output.dense`,
]);
const sites = names.map((name) => ({ kind: 'linear', name, layer: Number(name.split('.')[2]) }) as unknown as Site);
const pick = (t: Parameters<typeof selectSites>[2]) => selectSites(sites, 'linear', t).map((s) => s.name);

describe('targeting', () => {
  it('exact name', () => {
    expect(pick({ targets: 'encoder.layer.1.attention.self.key' })).toEqual(['encoder.layer.1.attention.self.key']);
  });
  it('suffix matches whole dotted segments only', () => {
    expect(pick({ targets: ['query'] })).toHaveLength(3);
    expect(pick({ targets: ['output.dense'] })).toHaveLength(6); // attention.output.dense and output.dense
    expect(() => pick({ targets: ['uery'] })).toThrow(/matches no linear site/);
  });
  it('glob: * inside a segment, ** across', () => {
    expect(pick({ targets: 'encoder.layer.*.attention.self.value' })).toHaveLength(3);
    expect(() => pick({ targets: 'encoder.*.value' })).toThrow(/matches no linear site/);
    expect(pick({ targets: 'encoder.**.value' })).toHaveLength(3);
  });
  it('regular expressions, as RegExp or /source/', () => {
    expect(pick({ targets: /layer\.[02]\.attention\.self\.(query|value)$/ })).toHaveLength(4);
    expect(pick({ targets: '/self\\.(key|value)$/' })).toHaveLength(6);
  });
  it('exclude and layer ranges', () => {
    expect(pick({ targets: ['query', 'value'], exclude: ['value'] })).toHaveLength(3);
    expect(pick({ targets: ['query'], layers: [0, 2] })).toEqual([
      'encoder.layer.0.attention.self.query',
      'encoder.layer.2.attention.self.query',
    ]);
    expect(pick({ targets: ['query'], layers: { from: 1 } })).toHaveLength(2);
  });
  it('a pattern that matches nothing lists the closest site names', () => {
    expect(() => pick({ targets: ['qurey'] })).toThrow(
      /"qurey" matches no linear site; closest: encoder\.layer\.\d\.attention\.self\.query/,
    );
    expect(closestNames('intermediate', names, 2).every((n) => n.endsWith('intermediate.dense'))).toBe(true);
  });
  it('an exclude that removes everything is an error, not an empty delta', () => {
    expect(() => pick({ targets: ['query'], exclude: ['query'] })).toThrow(/selected no linear site/);
  });
});
