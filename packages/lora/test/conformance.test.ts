import { dora, lora } from '@deltatune/lora';
import { describeConformance } from '../../../test-conformance';

describeConformance('LoRA', () => lora({ r: 4 }), { identityAtInit: true });
describeConformance(
  'LoRA with rsLoRA, every linear layer and trained biases',
  () => lora({ r: 2, alpha: 4, rsLoRA: true, targets: ['dense', 'query', 'key', 'value'], bias: 'all' }),
  {
    identityAtInit: true,
  },
);
describeConformance(
  'LoRA on every projection (q, k, v, o, gate, up, down)',
  () => lora({ r: 4, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] }),
  { identityAtInit: true },
  'llama',
);
describeConformance('LoRA', () => lora({ r: 2 }), { identityAtInit: true }, 'qwen3');
describeConformance('DoRA', () => dora({ r: 4 }), { identityAtInit: true });
describeConformance(
  'DoRA on every projection (q, k, v, o, gate, up, down)',
  () => dora({ r: 2, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] }),
  { identityAtInit: true },
  'llama',
);
