// Bundles a package's entry points into dist/*.mjs with esbuild: workspace code (@portico/*, .ts)
// is compiled in, npm packages stay external and load from node_modules. Running the bundle
// instead of TypeScript through a loader measured ~7% more proxy throughput (no per-closure
// name helpers, no loader hooks). Usage (from a package folder): node ../deploy/esbuild.mjs src/main.ts …
import { build } from 'esbuild';
import path from 'node:path';

const entries = process.argv.slice(2);
if (!entries.length) {
  console.error('usage: node ../deploy/esbuild.mjs <entry.ts> [...]');
  process.exit(2);
}

/** Bare imports are external unless they are our own workspace packages. */
const externalDependencies = {
  name: 'external-dependencies',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => (args.path.startsWith('@portico/') ? undefined : { path: args.path, external: true }));
  },
};

await build({
  entryPoints: entries.map((e) => ({ in: e, out: path.basename(e, '.ts') })),
  outdir: 'dist',
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: 'linked',
  logLevel: 'warning',
  plugins: [externalDependencies],
});
