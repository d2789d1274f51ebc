import { defineConfig } from 'vite';
import { studioAssets } from './build/studio-assets';

// Cross-origin isolation lets tfjs-backend-wasm run its threaded binary (SharedArrayBuffer); the
// page needs nothing from other origins, so it costs nothing. Static hosts need the same two headers.
const isolation = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };

export default defineConfig({
  base: './',
  plugins: [studioAssets()],
  worker: { format: 'es' },
  // Not minified: tfjs-backend-wasm's threaded binary starts its pthread workers from source text that
  // names the bundle's own variables, which minification renames ("e is not defined" in every thread).
  build: { target: 'es2022', outDir: 'dist', emptyOutDir: true, chunkSizeWarningLimit: 8192, minify: false },
  server: { headers: isolation },
  preview: { headers: isolation },
});
