import { adapter } from '@deltatune/adapter';
import { describeConformance } from '../../../test-conformance';

describeConformance('Houlsby adapters', () => adapter({ reductionFactor: 4 }), { identityAtInit: true });
describeConformance('parallel adapters', () => adapter({ placement: 'parallel', bottleneck: 3, nonLinearity: 'gelu' }), {
  identityAtInit: true,
});
describeConformance('Houlsby adapters', () => adapter({ reductionFactor: 8 }), { identityAtInit: true }, 'llama');
