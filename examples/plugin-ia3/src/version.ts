// Read from package.json at build time, so a release cannot leave them stale.
import { version, peerDependencies } from '../package.json';

export const IA3_VERSION: string = version;
export const IA3_CORE_RANGE: string = peerDependencies['@deltatune/core'];
