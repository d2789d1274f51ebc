/** The version of @deltatune/core, checked against each method's `coreRange`. */
export const CORE_VERSION = '0.1.0';
