// @deltatune/core/testing: the conformance suite a method package runs on its own method.
export { conformanceChecks } from './conformance';
export type { ConformanceSetup, ConformanceCheck } from './conformance';
