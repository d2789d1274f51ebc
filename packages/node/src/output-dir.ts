import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DeltaTuneError } from '@deltatune/core';
import { makeDirs, writeFileAtomic } from './atomic';

/**
 * deltatune's mark on a folder it writes into: what wrote it, when, and with which settings. A
 * folder with this file is deltatune's to update; any other non-empty folder is the user's, and
 * commands refuse to write into it unless told `--overwrite` (and even then replace only the
 * files they write, never deleting others).
 */
export const OUTPUT_MARKER = '.deltatune.json';

export interface OutputMarker {
  readonly tool: 'deltatune';
  /** The command that owns the folder: train, demo, merge, experiment... */
  readonly kind: string;
  readonly created: string;
  readonly settings?: Record<string, unknown>;
}

export interface ClaimOptions {
  /** The command claiming the folder. */
  readonly kind: string;
  /** The flag that named the folder, for messages (`--out`). */
  readonly flag?: string;
  readonly settings?: Record<string, unknown>;
  /** Continue a run in this folder (train --resume). */
  readonly resume?: boolean;
  /** Write into a folder that holds an earlier run or the user's files (replacing only our own files). */
  readonly overwrite?: boolean;
  /** Kinds whose earlier output this command may replace without --overwrite (demo replaces its own). */
  readonly replaces?: readonly string[];
}

export interface Claim {
  /** `new`: empty or created; `resume`: an earlier run of this kind, continued; `overwrite`: written over. */
  readonly state: 'new' | 'resume' | 'overwrite';
  readonly previous?: OutputMarker;
}

/** Runs written before the marker existed are recognised by the files only deltatune writes there. */
function legacyKind(dir: string): string | undefined {
  if (isOurMetrics(join(dir, 'metrics.json'))) return 'train';
  if (isOurMetrics(join(dir, 'lora', 'metrics.json')) && isOurMetrics(join(dir, 'baseline', 'metrics.json'))) return 'demo';
  if (isOurCells(join(dir, 'cells'))) return 'experiment';
  return undefined;
}

/** An experiment's cells/ folder: every file a cell result deltatune wrote. */
function isOurCells(dir: string): boolean {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) return false;
  const files = readdirSync(dir);
  return (
    files.length > 0 &&
    files.every((f) => {
      try {
        const c = JSON.parse(readFileSync(join(dir, f), 'utf8'));
        return !!c && 'stepsToTarget' in c && 'curve' in c && 'testAccuracy' in c;
      } catch {
        return false;
      }
    })
  );
}

/** A metrics.json only `deltatune train` writes: its fields, not just its name (a user may have one too). */
function isOurMetrics(path: string): boolean {
  if (!existsSync(path)) return false;
  try {
    const m = JSON.parse(readFileSync(path, 'utf8'));
    return !!m && ['trainableParameters', 'totalParameters', 'history', 'evals', 'savedTo', 'charts'].every((k) => k in m);
  } catch {
    return false;
  }
}

export function readOutputMarker(dir: string): OutputMarker | undefined {
  const path = join(dir, OUTPUT_MARKER);
  if (!existsSync(path)) {
    const kind = legacyKind(dir);
    return kind ? { tool: 'deltatune', kind, created: 'unknown' } : undefined;
  }
  try {
    const m = JSON.parse(readFileSync(path, 'utf8')) as OutputMarker;
    return m && m.tool === 'deltatune' && typeof m.kind === 'string' ? m : undefined;
  } catch {
    return undefined;
  }
}

function preview(names: string[]): string {
  return names.length <= 3 ? names.join(', ') : `${names.slice(0, 3).join(', ')} and ${names.length - 3} more`;
}

/**
 * Checks that a command may write into `dir` and marks it as deltatune's, before any work starts:
 * a path that is a file, read-only or not creatable fails now, not after an hour of training.
 */
export function claimOutputDir(dir: string, o: ClaimOptions): Claim {
  const flag = o.flag ?? '--out';
  if (existsSync(dir) && !statSync(dir).isDirectory()) {
    throw new DeltaTuneError(`${flag} ${dir} is a file, not a folder`, `choose a folder path for ${flag} (e.g. ${flag} ${dir}-run)`);
  }
  makeDirs(dir, { what: `${flag} ${dir}`, fix: `choose a folder you can write (e.g. ${flag} runs/mine)` });
  const entries = readdirSync(dir).filter((f) => f !== OUTPUT_MARKER);
  const previous = readOutputMarker(dir);
  let state: Claim['state'] = 'new';
  if (entries.length > 0) {
    if (previous && previous.kind === o.kind && o.resume) state = 'resume';
    else if (previous && (o.replaces ?? []).includes(previous.kind)) state = 'overwrite';
    else if (o.overwrite) state = 'overwrite';
    else if (previous) {
      const what = `an earlier deltatune ${previous.kind} run${previous.created !== 'unknown' ? ` (from ${previous.created})` : ''}`;
      const resumable = previous.kind === o.kind && o.kind === 'train';
      const overwrite = o.resume ? 'drop --resume and add --overwrite' : 'add --overwrite';
      throw new DeltaTuneError(
        `${flag} ${dir} already holds ${what}${o.resume ? ', which --resume cannot continue' : ''}`,
        `${resumable && !o.resume ? 'add --resume to continue it, ' : ''}${overwrite} to replace its files, or choose another ${flag}`,
      );
    } else {
      throw new DeltaTuneError(
        `${flag} ${dir} is not empty and was not written by deltatune (it holds ${preview(entries)})`,
        `choose a new or empty folder for ${flag}, or ${
          o.resume ? 'drop --resume and ' : ''
        }add --overwrite (deltatune then replaces only the files it writes and deletes nothing)`,
      );
    }
  }
  const marker: OutputMarker = {
    tool: 'deltatune',
    kind: o.kind,
    created: state === 'resume' && previous ? previous.created : new Date().toISOString(),
    settings: o.settings,
  };
  try {
    writeFileAtomic(join(dir, OUTPUT_MARKER), JSON.stringify(marker, null, 2) + '\n');
  } catch (e) {
    throw new DeltaTuneError(
      `${flag} ${dir} is not writable (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
      `choose a folder you can write (e.g. ${flag} runs/mine), or fix its permissions`,
    );
  }
  return { state, previous };
}
