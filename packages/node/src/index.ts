export { writeFileAtomic, writeFolderAtomic, recoverFolder } from './atomic';
export { saveDelta, loadDelta, readDeltaFolder, methodForConfig } from './delta-folder';
export type { SaveExtras } from './delta-folder';
export { claimOutputDir, readOutputMarker, OUTPUT_MARKER } from './output-dir';
export type { ClaimOptions, Claim, OutputMarker } from './output-dir';
