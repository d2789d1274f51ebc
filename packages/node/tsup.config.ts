import { packageBuild } from '../../tsup.shared';

// `@deltatune/node/composition` is its own entry: only it needs @deltatune/compose.
export default packageBuild({ entry: ['src/index.ts', 'src/composition.ts'] });
