import { packageBuild } from '../../tsup.shared';

// `@deltatune/core/testing`: the conformance suite method packages run on their own methods.
export default packageBuild({ entry: { index: 'src/index.ts', testing: 'src/testing/index.ts' } });
