/**
 * Preloaded (`--import`) into ringfence servers by the full bench and bench/soak-quick.ts: on SIGUSR2 it collects garbage (the server runs
 * with --expose-gc) and writes one `MEMPROBE {json}` line to stderr: RSS, V8 heap used/total before and after
 * a full GC, external and array buffers, and the size of each heap space. Live heap (after GC) that keeps growing
 * with the request count is a leak; RSS that grows while the live heap stays flat is the heap's sizing.
 */
import { getHeapSpaceStatistics } from 'node:v8';

const MB = 1024 * 1024;
const mb = (n: number) => Math.round((n / MB) * 10) / 10;

process.on('SIGUSR2', () => {
  const before = process.memoryUsage();
  const spacesBefore = Object.fromEntries(
    getHeapSpaceStatistics().map((s) => [s.space_name, mb(s.space_size)]),
  );
  (globalThis as { gc?: () => void }).gc?.();
  const after = process.memoryUsage();
  process.stderr.write(
    `MEMPROBE ${JSON.stringify({
      at: process.hrtime.bigint().toString(),
      rss: mb(before.rss),
      heapUsed: mb(before.heapUsed),
      heapTotal: mb(before.heapTotal),
      liveHeapAfterGc: mb(after.heapUsed),
      heapTotalAfterGc: mb(after.heapTotal),
      rssAfterGc: mb(after.rss),
      external: mb(after.external),
      arrayBuffers: mb(after.arrayBuffers),
      spaceSizes: spacesBefore,
    })}\n`,
  );
});
