import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Each file starts its own servers on ephemeral loopback ports; files run in parallel forks.
    pool: 'forks',
    allowOnly: false,
  },
});
