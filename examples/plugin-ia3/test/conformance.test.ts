import { ia3 } from 'deltatune-plugin-ia3';
import { describeConformance } from '../../../test-conformance';

describeConformance('IA3 (a third-party plugin)', () => ia3(), { identityAtInit: true });
describeConformance(
  'IA3 on k_proj, v_proj and down_proj',
  () => ia3({ targets: ['k_proj', 'v_proj', 'down_proj'], feedforward: ['down_proj'] }),
  { identityAtInit: true },
  'llama',
);
