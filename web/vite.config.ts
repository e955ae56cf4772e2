// Build config for the Parley web client. `npm run build` writes web/dist,
// which `parley --static web/dist` serves. `npm run dev` proxies the
// Socket.IO endpoint to a parley running on PARLEY_DEV_TARGET (default :8080).
import { defineConfig } from 'vitest/config';
import react from '@vitejs/plugin-react';

const target = process.env.PARLEY_DEV_TARGET ?? 'http://localhost:8080';

export default defineConfig({
  plugins: [react()],
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: true },
  server: {
    proxy: { '/socket.io': { target, ws: true } },
  },
  test: {
    environment: 'node',
    include: ['src/**/*.test.ts', 'src/**/*.test.tsx'],
  },
});
