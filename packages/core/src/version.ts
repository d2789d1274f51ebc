// Read from package.json at build time (the bundler inlines the value), so `changeset version`
// cannot leave it stale; packages/core/test/versions.test.ts checks every package's.
import { version } from '../package.json';

/** The version of @deltatune/core, checked against each method's `coreRange`. */
export const CORE_VERSION: string = version;
