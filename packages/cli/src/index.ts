export { main } from './main';
export { parseArgs, Flags } from './args';
export { runTraining, attachMethods } from './training-run';
export type { RunSpec, RunSummary, MethodRequest } from './training-run';
export { loadPlugin, registerBuiltinMethods, BUILTIN_METHODS } from './methods';
export { lineChartSvg, writeChart } from './plot';
