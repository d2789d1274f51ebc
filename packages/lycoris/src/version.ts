// Read from package.json at build time (the bundler inlines them), so `changeset version` cannot
// leave them stale: the core range is the peer range npm checks.
import { version, peerDependencies } from '../package.json';

export const LYCORIS_VERSION: string = version;
/** The @deltatune/core versions this package works with. */
export const LYCORIS_CORE_RANGE: string = peerDependencies['@deltatune/core'];
