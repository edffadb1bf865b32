#!/usr/bin/env node
// The `ringfence` command. The sources are TypeScript run by Node 24's type stripping; when started by an older
// node (a shell whose PATH has the system node), re-run under the project's pinned Node 24 from node_modules.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  const here = dirname(fileURLToPath(import.meta.url));
  const pinned = join(here, '..', 'node_modules', 'node', 'bin', 'node');
  if (!existsSync(pinned)) {
    process.stderr.write(
      `ringfence needs Node 24 (this is ${process.version}); run \`npm ci\` to install the pinned one.\n`,
    );
    process.exit(1);
  }
  const r = spawnSync(pinned, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit',
  });
  process.exit(r.status ?? 1);
}
const { main } = await import('../src/cli/index.ts');
const code = await main(process.argv.slice(2));
if (code !== undefined) process.exitCode = code;
