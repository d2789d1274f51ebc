import * as tf from '@tensorflow/tfjs-core';
import { FUSED_KERNELS } from '@deltatune/core';
import type { Tensor, TensorInfo } from '@tensorflow/tfjs-core';
import { registerGradientOnce, registerWebgpuAndCpu, type KernelArgs } from './program';

/**
 * `x W + b` in one kernel: the backend's own fused matmul (bias added in the matmul's epilogue),
 * under a name of ours so its gradient is ours too. tf.fused.matMul's gradient computes dW
 * always; a frozen backbone's W needs none, so here each input's gradient is computed only
 * when the tape asks (dW only when training W: full fine-tuning).
 */
const DENSE = FUSED_KERNELS.dense;

function delegate(backendName: string) {
  return ({ inputs, backend }: KernelArgs): TensorInfo => {
    const fused = tf.getKernel('_FusedMatMul', backendName)!;
    return fused.kernelFunc({
      inputs: { a: inputs.x, b: inputs.kernel, bias: inputs.bias },
      backend: backend as tf.KernelBackend,
      attrs: { transposeA: false, transposeB: false, activation: 'linear', leakyreluAlpha: 0 },
    }) as TensorInfo;
  };
}

export function registerDense(): void {
  registerWebgpuAndCpu(DENSE, delegate('webgpu'), delegate('cpu'));
  registerGradientOnce({
    kernelName: DENSE,
    inputsToSave: ['x', 'kernel'],
    gradFunc: (dy, [x, kernel]) => ({
      x: () => tf.matMul(dy as Tensor, kernel, false, true),
      kernel: () => tf.matMul(x, dy as Tensor, true, false),
      bias: () => tf.sum(dy as Tensor, 0),
    }),
  });
}
