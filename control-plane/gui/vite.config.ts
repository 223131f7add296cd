// Portico Manager's build: everything bundled into control-plane/dist/gui, served by the CP
// (src/gui/server.ts); nothing is fetched from elsewhere at run time.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  logLevel: 'warn',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: fileURLToPath(new URL('../dist/gui', import.meta.url)),
    emptyOutDir: true,
    // The page's CSP allows scripts from this origin only: no inline polyfill.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 400,
  },
});
