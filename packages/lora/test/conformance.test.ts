import { lora } from '@deltatune/lora';
import { describeConformance } from '../../../test-conformance';

describeConformance('LoRA', () => lora({ r: 4 }), { identityAtInit: true });
describeConformance(
  'LoRA with rsLoRA, every linear layer and trained biases',
  () => lora({ r: 2, alpha: 4, rsLoRA: true, targets: ['dense', 'query', 'key', 'value'], bias: 'all' }),
  {
    identityAtInit: true,
  },
);
