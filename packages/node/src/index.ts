export { writeFileAtomic, writeFolderAtomic } from './atomic';
export { saveDelta, loadDelta, readDeltaFolder, methodForConfig } from './delta-folder';
export type { SaveExtras } from './delta-folder';
