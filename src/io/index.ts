export { folderIO, MODEL_FILE, WEIGHTS_FILE } from './folder.js';
