import { ia3 } from 'deltatune-plugin-ia3';
import { describeConformance } from '../../../test-conformance';

describeConformance('IA3 (a third-party plugin)', () => ia3(), { identityAtInit: true });
