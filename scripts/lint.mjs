#!/usr/bin/env node
// Project rules that TypeScript cannot check:
// 1. Browser-safe packages (core, the delta methods, train) import no Node built-ins outside a `/node` entry.
// 2. No package reaches into another's internals (`@deltatune/x/src/...`, `/dist/...`).
// 3. Example plugins use only the published entry points of @deltatune packages.
// 4. App page code (apps/*/src) imports no Node built-in and nothing Node-only.
import { readdirSync, readFileSync, statSync, existsSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const BROWSER_SAFE = ['core', 'lora', 'adapter', 'prefix', 'bitfit', 'compose', 'train', 'backends'];
// A browser-safe package's `/node` entry (src/node.ts, and the files under src/node/ that only it
// imports) may use Node; its main entry may not, nor @deltatune/node.
const nodeEntry = (file) => /[\\/]src[\\/]node(\.ts|[\\/])/.test(file);
const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
const problems = [];

function files(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : /\.(ts|mts|js|mjs)$/.test(f) ? [p] : [];
  });
}

function imports(file) {
  const src = readFileSync(file, 'utf8');
  return [
    ...src.matchAll(/(?:import|export)[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|^\s*import\s*['"]([^'"]+)['"]/gm),
  ].map((m) => m[1] ?? m[2] ?? m[3]);
}

for (const pkg of readdirSync(join(root, 'packages'))) {
  for (const file of files(join(root, 'packages', pkg, 'src'))) {
    for (const spec of imports(file)) {
      const where = relative(root, file);
      const browser = BROWSER_SAFE.includes(pkg) && !nodeEntry(file);
      if (browser && builtins.has(spec)) problems.push(`${where}: imports Node built-in "${spec}" (this package must run in a browser)`);
      if (browser && spec.startsWith('.') && nodeEntry(resolve(dirname(file), spec)))
        problems.push(`${where}: imports "${spec}", a file of the /node entry (the main entry must run in a browser)`);
      if (browser && spec === '@deltatune/node')
        problems.push(`${where}: imports @deltatune/node (this package must run in a browser; use its /node entry)`);
      if (/^@deltatune\/[^/]+\/(src|dist)\//.test(spec)) problems.push(`${where}: deep import "${spec}" (import the package entry)`);
    }
  }
}
for (const example of existsSync(join(root, 'examples')) ? readdirSync(join(root, 'examples')) : []) {
  for (const file of files(join(root, 'examples', example, 'src'))) {
    for (const spec of imports(file)) {
      if (spec.startsWith('@deltatune/') && spec.split('/').length > 2)
        problems.push(`${relative(root, file)}: "${spec}" is not a published entry point`);
      if (spec.includes('packages/')) problems.push(`${relative(root, file)}: "${spec}" reaches into the monorepo`);
    }
  }
}
for (const app of existsSync(join(root, 'apps')) ? readdirSync(join(root, 'apps')) : []) {
  for (const file of files(join(root, 'apps', app, 'src'))) {
    for (const spec of imports(file)) {
      const where = relative(root, file);
      if (builtins.has(spec)) problems.push(`${where}: imports Node built-in "${spec}" (page code runs in a browser)`);
      if (spec === '@deltatune/node' || /^@deltatune\/[^/]+\/node$/.test(spec))
        problems.push(`${where}: imports "${spec}", which needs Node`);
      if (/^@deltatune\/[^/]+\/(src|dist)\//.test(spec)) problems.push(`${where}: deep import "${spec}" (import the package entry)`);
    }
  }
}
if (problems.length) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log('lint: ok (browser-safe packages import no Node built-ins; no deep imports)');
