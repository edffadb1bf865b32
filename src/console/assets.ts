import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The console's static files, read once at start from `src/console/assets/` and served by the gateway itself
 * under a content-hashed name (`console.<hash>.css`): cacheable for ever, replaced by a new name when changed.
 */
export interface Asset {
  readonly name: string;
  readonly body: Buffer;
  readonly type: string;
}

function load(file: string, type: string): Asset {
  const body = readFileSync(join(import.meta.dirname, 'assets', file));
  const hash = createHash('sha256').update(body).digest('hex').slice(0, 12);
  const dot = file.lastIndexOf('.');
  return { name: `${file.slice(0, dot)}.${hash}${file.slice(dot)}`, body, type };
}

export const CSS = load('console.css', 'text/css; charset=utf-8');
export const JS = load('console.js', 'text/javascript; charset=utf-8');
export const ASSETS: ReadonlyMap<string, Asset> = new Map([CSS, JS].map((a) => [a.name, a]));
