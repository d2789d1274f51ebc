/** Just enough semver for `coreRange`: `^x.y.z`, `~x.y.z`, `>=x.y.z`, `x.y.z`, `*`, joined by `||`. */
function parse(v: string): [number, number, number] {
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(v.trim());
  if (!m) throw new Error(`not a version: ${v}`);
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

function cmp(a: [number, number, number], b: [number, number, number]): number {
  return a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
}

export function satisfies(version: string, range: string): boolean {
  const v = parse(version);
  return range.split('||').some((part) => {
    const r = part.trim();
    if (r === '*' || r === '') return true;
    if (r.startsWith('>=')) return cmp(v, parse(r.slice(2))) >= 0;
    if (r.startsWith('^')) {
      const b = parse(r.slice(1));
      if (cmp(v, b) < 0) return false;
      // ^0.y.z allows only 0.y.*; ^x.y.z allows x.*.*
      return b[0] === 0 ? v[0] === 0 && v[1] === b[1] : v[0] === b[0];
    }
    if (r.startsWith('~')) {
      const b = parse(r.slice(1));
      return cmp(v, b) >= 0 && v[0] === b[0] && v[1] === b[1];
    }
    return cmp(v, parse(r)) === 0;
  });
}
