import { defineConfig, type ProxyOptions } from 'vite';

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
        // Name lazy chunks after their package (lang-python-…) rather than "dist".
        chunkFileNames: (chunk) => {
          const id = chunk.facadeModuleId ?? '';
          const m = /node_modules\/(@[^/]+\/[^/]+|[^/]+)\/(?:dist\/index|mode\/([^/.]+))/.exec(id);
          const name = m ? (m[2] ?? m[1].replace(/^@[^/]+\//, '')) : chunk.name;
          return `assets/${name}-[hash].js`;
        },
        // Vendor chunks that change rarely, so that a UI release does not
        // invalidate the browser's copy of the terminal and the editor.
        manualChunks(id) {
          if (id.includes('/node_modules/@xterm/')) return 'xterm';
          if (/\/node_modules\/(@codemirror\/(state|view|commands|language|search|autocomplete|lint)|@lezer\/(common|highlight|lr)|style-mod|w3c-keyname|crelt)\//.test(id)) return 'codemirror';
          if (/\/node_modules\/(react|react-dom|scheduler)\//.test(id)) return 'react';
          return undefined;
        },
        assetFileNames: 'assets/[name]-[hash][extname]',
      },
    },
  },
  server: {
    proxy: Object.fromEntries(
      ['/api', '/login', '/logout', '^/w/[^/]+/proxy/'].map((path): [string, ProxyOptions] => [
        path,
        {
          target,
          ws: true,
          changeOrigin: true,
          // The server checks Origin on sockets and writes: present its own.
          configure: (proxy) => {
            const origin = new URL(target).origin;
            proxy.on('proxyReq', (req) => {
              if (req.getHeader('origin')) req.setHeader('origin', origin);
            });
            proxy.on('proxyReqWs', (req) => {
              if (req.getHeader('origin')) req.setHeader('origin', origin);
            });
          },
        },
      ]),
    ),
  },
});
