import { defineConfig } from 'vite';

// The dashboard is served by the binary at /_/. No plugins: esbuild
// compiles the TSX with Preact's JSX runtime. The output is deterministic
// (content-hashed names, no timestamps) so `git diff --exit-code dist`
// in CI catches a stale committed build.
export default defineConfig({
  base: '/_/',
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2020',
    modulePreload: { polyfill: false },
    reportCompressedSize: false,
    sourcemap: false,
  },
});
