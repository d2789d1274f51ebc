import { mkdirSync, renameSync, rmSync, writeFileSync, openSync, fsyncSync, closeSync, existsSync } from 'node:fs';
import { dirname, join, basename } from 'node:path';

/**
 * Writes a file so that readers see the old content or the new, never half: write a temp file
 * beside it, fsync, rename over. A crash mid-write leaves the previous file intact.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const temp = join(dirname(path), `.tmp-${basename(path)}-${process.pid}-${Date.now()}`);
  try {
    writeFileSync(temp, data);
    const fd = openSync(temp, 'r+');
    fsyncSync(fd);
    closeSync(fd);
    renameSync(temp, path);
  } finally {
    if (existsSync(temp)) rmSync(temp, { force: true });
  }
}

/**
 * Replaces a whole folder atomically: the new content is written to a sibling temp folder, then
 * swapped in by rename (the old one moved aside first, removed last).
 */
export function writeFolderAtomic(dir: string, files: Readonly<Record<string, string | Uint8Array>>): void {
  const parent = dirname(dir);
  mkdirSync(parent, { recursive: true });
  const stamp = `${process.pid}-${Date.now()}`;
  const temp = join(parent, `.tmp-${basename(dir)}-${stamp}`);
  const old = join(parent, `.old-${basename(dir)}-${stamp}`);
  mkdirSync(temp, { recursive: true });
  try {
    for (const [name, data] of Object.entries(files)) writeFileAtomic(join(temp, name), data);
    if (existsSync(dir)) renameSync(dir, old);
    renameSync(temp, dir);
  } finally {
    if (existsSync(temp)) rmSync(temp, { recursive: true, force: true });
    if (existsSync(old)) rmSync(old, { recursive: true, force: true });
  }
}
