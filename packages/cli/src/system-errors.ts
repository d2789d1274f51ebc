import { DeltaTuneError } from '@deltatune/core';

/**
 * File-system failures that come from the user's environment, not from a bug: a path that does
 * not exist, is read-only, is a file where a folder is needed, or a full disk. They are bad input
 * (exit 1, a fix), however deep in a command they surface.
 */
const REASONS: Record<string, { what: string; fix: (path: string) => string }> = {
  ENOENT: { what: 'does not exist', fix: (p) => `check the path ${p}` },
  EACCES: { what: 'is not accessible (permission denied)', fix: (p) => `choose a path you can write, or fix the permissions of ${p}` },
  EPERM: { what: 'may not be changed (operation not permitted)', fix: (p) => `choose another path than ${p}` },
  EROFS: { what: 'is on a read-only file system', fix: () => 'choose a path on a writable disk (e.g. --out runs/x)' },
  EISDIR: { what: 'is a folder where a file was expected', fix: (p) => `name a file, not the folder ${p}` },
  ENOTDIR: { what: 'goes through a file where a folder was expected', fix: (p) => `a part of ${p} is a file: choose another path` },
  ENOSPC: {
    what: 'cannot be written: the disk is full',
    fix: () => 'free some space and run the command again (a resumable run continues with --resume)',
  },
  EEXIST: { what: 'already exists', fix: (p) => `move ${p} away or choose another path` },
  ENOTEMPTY: { what: 'is a folder that is not empty', fix: (p) => `move ${p} away or choose another path` },
  EMFILE: { what: 'cannot be opened: too many open files', fix: () => 'raise the limit (ulimit -n 4096) and run the command again' },
};

export function fromSystemError(e: unknown): DeltaTuneError | undefined {
  const err = e as NodeJS.ErrnoException;
  const reason = err && typeof err.code === 'string' ? REASONS[err.code] : undefined;
  if (!reason) return undefined;
  const path = err.path ?? (err as { dest?: string }).dest ?? 'a path';
  return new DeltaTuneError(`${path} ${reason.what}${err.syscall ? ` (${err.syscall})` : ''}`, reason.fix(path));
}
