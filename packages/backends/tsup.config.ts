import { packageBuild } from '../../tsup.shared';
import { tfjsGradients } from './build/tfjs-gradients-plugin';

export default packageBuild({ esbuildPlugins: [tfjsGradients()] });
