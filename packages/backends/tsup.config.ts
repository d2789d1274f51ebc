import { packageBuild } from '../../tsup.shared';
import { tfjsGradients } from './build/tfjs-gradients-plugin';

// Two entries: selection for Node and pages, and `/node` with what only Node can do (wasm threads).
export default packageBuild({ entry: ['src/index.ts', 'src/node.ts'], shims: true, esbuildPlugins: [tfjsGradients()] });
