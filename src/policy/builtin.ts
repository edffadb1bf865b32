import { bundleId } from './canonical.ts';
import { type CompiledBundle, compileBundle } from './compile.ts';
import { bundleSchema } from './schema.ts';

/** The bundle in force when the config names none: one class, no rules. Everything is allowed, nothing logged. */
export function allowAllBundle(): CompiledBundle {
  const bundle = bundleSchema.parse({
    apiVersion: 'ringfence/v1',
    kind: 'PolicyBundle',
    metadata: { name: 'builtin-allow-all', version: '0', description: 'no policy bundle configured' },
    classes: ['default'],
    classification: { default: 'default' },
  });
  return compileBundle({ id: bundleId(bundle), bundle, source: '(builtin)' });
}
