import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { DeltaTuneError } from '@deltatune/core';

/**
 * `mkdirSync(dir, { recursive: true })`, one level at a time. Node's recursive mkdir retries
 * forever where the kernel answers ENOENT for a parent that exists (under /proc, /sys): a
 * command given `--out /proc/x` used to spin at 100% CPU. Here that is one clear error.
 */
export function makeDirs(dir: string, named?: { readonly what: string; readonly fix: string }): void {
  const missing: string[] = [];
  let at = resolve(dir);
  while (!existsSync(at)) {
    missing.unshift(at);
    const up = dirname(at);
    if (up === at) break;
    at = up;
  }
  for (const d of missing) {
    try {
      mkdirSync(d);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') continue;
      const why = code ?? (e as Error).message;
      if (named) throw new DeltaTuneError(`${named.what} cannot be created (${why})`, named.fix);
      throw new DeltaTuneError(`cannot create the folder ${d} (${why})`, 'choose a path on a writable disk, e.g. runs/mine');
    }
  }
}

/**
 * Temp names carry the writer's pid, so a later process can tell a dead writer's leftovers
 * (removable) from a live writer's work in progress (never touched).
 */
function stamp(): string {
  return `${process.pid}-${Date.now()}-${Math.floor(Math.random() * 1e6)}`;
}

/** When this process started, in the clock `stamp()` uses. */
const STARTED = Date.now() - process.uptime() * 1000;

/**
 * Whether the writer of a leftover may still be at work. A leftover carrying our own pid but
 * stamped before we started is a dead process's (pids repeat: in a container every run is pid 1).
 */
function isAlive(pid: number, stampedAt: number): boolean {
  if (pid === process.pid) return stampedAt >= STARTED;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

interface Leftover {
  readonly path: string;
  readonly kind: 'tmp' | 'old';
  /** pid-time-random: a temp and an old folder of one swap share it. */
  readonly id: string;
  readonly stampedAt: number;
  readonly alive: boolean;
}

/** `.tmp-<base>-<pid>-...` and `.old-<base>-<pid>-...` entries beside `path`, newest first. */
function leftovers(path: string): Leftover[] {
  const parent = dirname(path);
  const base = basename(path);
  let entries: string[];
  try {
    entries = readdirSync(parent);
  } catch {
    return [];
  }
  const out: Leftover[] = [];
  for (const name of entries) {
    for (const kind of ['tmp', 'old'] as const) {
      const prefix = `.${kind}-${base}-`;
      if (!name.startsWith(prefix)) continue;
      const id = name.slice(prefix.length);
      const match = /^(\d+)-(\d+)(-\d+)?$/.exec(id);
      if (!match) continue;
      const stampedAt = Number(match[2]);
      out.push({ path: join(parent, name), kind, id, stampedAt, alive: isAlive(Number(match[1]), stampedAt) });
    }
  }
  return out.sort((a, b) => b.stampedAt - a.stampedAt);
}

/**
 * Puts back a folder whose atomic replacement was killed between its two renames: the old copy
 * moved aside and the new one, complete by then, not yet in place. The new copy becomes the
 * folder (the newest such pair, whoever wrote it: the window between the renames is microseconds,
 * so a pair found later is never work in progress). Then removes what dead writers left beside it.
 * Only deltatune's own temp names are touched; an old copy without its new twin is left alone.
 */
export function recoverFolder(dir: string): void {
  if (!existsSync(dir)) {
    const all = leftovers(dir);
    const pair = all.find((l) => l.kind === 'old' && all.some((t) => t.kind === 'tmp' && t.id === l.id));
    if (pair) {
      renameSync(all.find((t) => t.kind === 'tmp' && t.id === pair.id)!.path, dir);
      rmSync(pair.path, { recursive: true, force: true });
    }
  }
  const missing = !existsSync(dir);
  for (const l of leftovers(dir)) if (!l.alive && !(missing && l.kind === 'old')) rmSync(l.path, { recursive: true, force: true });
}

/**
 * Writes a file so that readers see the old content or the new, never half: write a temp file
 * beside it, fsync, rename over. A crash mid-write leaves the previous file intact (and the temp
 * file, which the next write of the same file removes).
 */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  makeDirs(dirname(path));
  for (const l of leftovers(path)) if (l.kind === 'tmp' && !l.alive) rmSync(l.path, { force: true });
  const temp = join(dirname(path), `.tmp-${basename(path)}-${stamp()}`);
  try {
    writeFileSync(temp, data);
    const fd = openSync(temp, 'r+');
    fsyncSync(fd);
    closeSync(fd);
    renameSync(temp, path);
  } catch (e) {
    // Name the file the user asked for, not the temp file beside it.
    const code = (e as NodeJS.ErrnoException).code;
    if (!code || e instanceof DeltaTuneError) throw e;
    throw new DeltaTuneError(
      `cannot write ${path} (${code})`,
      code === 'ENOSPC' ? 'free some disk space and run the command again' : 'choose a path you can write, e.g. --out runs/mine',
    );
  } finally {
    if (existsSync(temp)) rmSync(temp, { force: true });
  }
}

/**
 * Replaces a folder's content atomically: the new files are written to a sibling temp folder,
 * then swapped in by two renames (the old folder moved aside, then removed). A kill between the
 * renames is repaired by `recoverFolder`, which every later write or read of the folder runs.
 *
 * A folder that also holds files deltatune did not write (anything not in `files`) is never
 * swapped, since that would delete them: its files are then replaced one by one, each
 * atomically, in the order given (callers put the file that makes the folder usable last).
 */
export function writeFolderAtomic(dir: string, files: Readonly<Record<string, string | Uint8Array>>): void {
  recoverFolder(dir);
  const names = new Set(Object.keys(files));
  if (existsSync(dir) && readdirSync(dir).some((f) => !names.has(f))) {
    for (const [name, data] of Object.entries(files)) writeFileAtomic(join(dir, name), data);
    return;
  }
  const parent = dirname(dir);
  makeDirs(parent);
  const id = stamp();
  const temp = join(parent, `.tmp-${basename(dir)}-${id}`);
  const old = join(parent, `.old-${basename(dir)}-${id}`);
  mkdirSync(temp);
  try {
    for (const [name, data] of Object.entries(files)) writeFileAtomic(join(temp, name), data);
    if (existsSync(dir)) renameSync(dir, old);
    renameSync(temp, dir);
  } finally {
    if (existsSync(temp) && existsSync(dir)) rmSync(temp, { recursive: true, force: true });
    if (existsSync(old) && existsSync(dir)) rmSync(old, { recursive: true, force: true });
  }
}
