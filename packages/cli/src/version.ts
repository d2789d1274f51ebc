import pkg from '../package.json';

/** `deltatune --version`: the CLI package's own version, read at build time. */
export const CLI_VERSION: string = pkg.version;
