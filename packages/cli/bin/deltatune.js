#!/usr/bin/env node
// The `deltatune` command as npm links it. This file is committed, not built: `npm ci` links a
// package's bin only when its target exists at install time, and dist/ does not exist until the
// first build, so a bin pointing into dist/ was never linked on a fresh clone.
import { existsSync } from 'node:fs';

const built = new URL('../dist/bin.js', import.meta.url);
if (!existsSync(built)) {
  process.stderr.write(
    'error: deltatune is not built yet (packages/cli/dist/bin.js is missing)\n  fix: run npm run build in the repository root, then run the command again\n',
  );
  process.exit(1);
}
await import(built.href);
