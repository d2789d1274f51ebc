export { saveComposition, loadComposition, isCompositionFolder, MANIFEST_FILE } from './composition-folder';
