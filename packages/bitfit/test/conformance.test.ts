import { bitfit } from '@deltatune/bitfit';
import { describeConformance } from '../../../test-conformance';

describeConformance('BitFit', () => bitfit(), { identityAtInit: true });
describeConformance('BitFit, query and intermediate biases only', () => bitfit({ subset: 'query-intermediate' }), { identityAtInit: true });
