import * as tf from '@tensorflow/tfjs-core';
import type { NamedTensorMap, Scalar, Tensor, Variable } from '@tensorflow/tfjs-core';

/** The parts of tfjs's engine this module relies on (tfjs-core 4.x; not in its public types). */
interface TapeNode {
  gradient?: (dys: Array<Tensor | null>) => Record<string, () => Tensor>;
  saved?: Tensor[];
}
interface EngineInternals {
  state: { activeTape: TapeNode[] | null; gradientDepth: number };
}

/**
 * `tf.variableGrads`, with each op's saved tensors and output gradients freed as soon as the
 * backward pass is past that op. tfjs keeps both until the whole backward pass ends, so a step's
 * peak holds every activation and every intermediate gradient at once (at BERT-base, batch 32 x
 * 128, ~17 GB for LoRA). Same gradients, bit for bit: only the disposal moves earlier.
 *
 * How: when `f` has run, the tape holds a node per op. Each node's gradient function is wrapped so
 * that calling it first frees what the previous node (the one processed just before: tfjs walks
 * the tape backwards, one node at a time) saved and received. Only for first-order gradients: under
 * an outer tape (gradientDepth > 1) nothing is freed early.
 */
export function lowMemoryVariableGrads(f: () => Scalar, variables: Variable[]): { value: Scalar; grads: NamedTensorMap } {
  const engine = tf.engine() as unknown as EngineInternals;
  return tf.variableGrads(() => {
    const y = f();
    const tape = engine.state.activeTape;
    if (tape && engine.state.gradientDepth === 1) freeAsBackpropGoes(tape);
    return y;
  }, variables);
}

function freeAsBackpropGoes(tape: readonly TapeNode[]): void {
  let done: Tensor[] = [];
  for (const node of tape) {
    const gradient = node.gradient;
    if (!gradient) continue;
    const saved = node.saved ?? [];
    node.gradient = (dys) => {
      // The node before this one is finished: its inputs' gradients have been taken.
      for (const t of done) t.dispose();
      const inputGradients = gradient(dys);
      const received = dys.filter((t): t is Tensor => t !== null);
      done = [...received, ...saved];
      // A gradient function may hand an output gradient through as an input's: keep that one alive.
      return Object.fromEntries(
        Object.entries(inputGradients).map(([name, g]) => [
          name,
          () => {
            const dx = g();
            return received.includes(dx) ? tf.clone(dx) : dx;
          },
        ]),
      );
    };
  }
}
