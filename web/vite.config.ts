import { defineConfig } from 'vite';

// The cove server serves dist/ itself (index.html for `/` and `/w/*`).
// For `npm run dev`, point COVE_URL at a running `cove serve`.
const target = process.env.COVE_URL ?? 'http://127.0.0.1:8080';

export default defineConfig({
  base: '/',
  esbuild: { jsx: 'automatic', legalComments: 'none' },
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    target: 'es2022',
    sourcemap: false,
    cssCodeSplit: true,
    chunkSizeWarningLimit: 700,
    rollupOptions: {
      output: {
        entryFileNames: 'assets/[name]-[hash].js',
        chunkFileNames: 'assets/[name]-[hash].js',
        assetFileNames: 'assets/[name]-[hash][extname]',
      },
    },
  },
  server: {
    proxy: {
      '/api': { target, ws: true, changeOrigin: false },
      '/login': { target },
      '/logout': { target },
      '^/w/[^/]+/proxy/': { target, ws: true },
    },
  },
});
