import { prefixTuning, promptTuning } from '@deltatune/prefix';
import { describeConformance } from '../../../test-conformance';

// Both add learned positions, so neither is the identity at init.
describeConformance('prompt tuning', () => promptTuning({ virtualTokens: 3, init: 'random' }), { identityAtInit: false });
describeConformance('prefix tuning', () => prefixTuning({ virtualTokens: 3 }), { identityAtInit: false });
// The projection trains an MLP but saves the table it computes (as PEFT does): it reloads as a plain table.
describeConformance(
  'prefix tuning with the projection MLP',
  () => prefixTuning({ virtualTokens: 2, projection: true, projectionHidden: 8 }),
  {
    identityAtInit: false,
    reloadAs: () => prefixTuning({ virtualTokens: 2 }),
  },
);
// Grouped-query attention: prefix keys/values are per key-value head and repeated with the real ones.
describeConformance('prefix tuning', () => prefixTuning({ virtualTokens: 3 }), { identityAtInit: false }, 'llama');
describeConformance('prompt tuning', () => promptTuning({ virtualTokens: 2, init: 'random' }), { identityAtInit: false }, 'qwen3');
