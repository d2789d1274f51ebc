import { join } from 'node:path';
import { train as trainAnywhere, type TrainOptions, type TrainResult } from '../index';
import { checkpointFolder } from './checkpoint-folder';

/**
 * The trainer of `@deltatune/train`, with `runDir` on disk: checkpoints go to (and `resume` reads
 * from) the folder `runDir/checkpoint`, each replaced atomically. A `checkpoints` store, when
 * given, is used instead.
 */
export function train(o: TrainOptions): Promise<TrainResult> {
  const checkpoints = o.checkpoints ?? (o.runDir !== undefined ? checkpointFolder(join(o.runDir, 'checkpoint')) : undefined);
  return trainAnywhere({ ...o, checkpoints });
}
