import { packageBuild } from '../../tsup.shared';

// Two entries: the platform-neutral backbones, and `/node` with the file-system loaders.
export default packageBuild({ entry: ['src/index.ts', 'src/node.ts'], shims: true });
