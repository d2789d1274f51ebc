import { loha, lokr } from '@deltatune/lycoris';
import { describeConformance } from '../../../test-conformance';

describeConformance('LoHa', () => loha({ r: 4 }), { identityAtInit: true });
describeConformance(
  'LoHa on every projection (q, k, v, o, gate, up, down)',
  () => loha({ r: 2, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] }),
  { identityAtInit: true },
  'llama',
);
describeConformance('LoKr (full w1 and w2)', () => lokr({ r: 4 }), { identityAtInit: true });
describeConformance('LoKr with low-rank w1 and w2 (decomposeBoth, r=1)', () => lokr({ r: 1, decomposeBoth: true }), {
  identityAtInit: true,
});
describeConformance(
  'LoKr on every projection (q, k, v, o, gate, up, down)',
  () => lokr({ r: 2, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] }),
  { identityAtInit: true },
  'llama',
);
describeConformance('LoKr, LyCORIS initialisation (w2 zero)', () => lokr({ r: 2, init: 'lycoris' }), { identityAtInit: true }, 'qwen3');
