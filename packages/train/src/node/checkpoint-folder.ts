import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { recoverFolder, writeFolderAtomic } from '@deltatune/node';
import { decodeRunCheckpoint, encodeRunCheckpoint, type RunCheckpointStore } from '../index';

/**
 * A run's checkpoint in a folder on disk, replaced atomically (a temporary copy, then two renames),
 * so a kill at any moment leaves the previous checkpoint whole.
 */
export function checkpointFolder(dir: string): RunCheckpointStore {
  return {
    location: dir,
    async read(expected) {
      // A kill between the two renames of a checkpoint swap leaves the complete new copy beside the folder.
      recoverFolder(dir);
      const pathOf = (name: string) => join(dir, name);
      return decodeRunCheckpoint(
        { location: dir, pathOf, read: (name) => (existsSync(pathOf(name)) ? readFileSync(pathOf(name)) : undefined) },
        expected,
      );
    },
    async write(checkpoint) {
      writeFolderAtomic(dir, await encodeRunCheckpoint(checkpoint));
    },
  };
}
