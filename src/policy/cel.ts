import { Environment } from '@marcbachmann/cel-js';

/**
 * The CEL environment of `expr:` conditions: one variable, `request`, with a declared shape, so expressions are
 * type-checked when the bundle is compiled (a typo or a type error is a load error, never a runtime one).
 */
export const CEL_REQUEST_SCHEMA = {
  app: 'string',
  appTags: 'list<string>',
  api: 'string',
  model: 'string',
  endUser: 'string',
  metadata: 'map<string, string>',
  tokens: 'int',
  stream: 'bool',
  detects: 'list<string>',
  tools: 'list<string>',
  class: 'string',
  messages: 'int',
} as const;

/** The value bound to `request` when an expression runs. Integers are bigint, as CEL's int is 64-bit. */
export interface CelRequest {
  app: string;
  appTags: readonly string[];
  api: string;
  model: string;
  endUser: string;
  metadata: Readonly<Record<string, string>>;
  tokens: bigint;
  stream: boolean;
  detects: string[];
  tools: readonly string[];
  class: string;
  messages: bigint;
}

/** A compiled expression: call it with the request, get a boolean. */
export type CelProgram = (request: CelRequest) => boolean;

/** Creates the environment once per bundle compile. */
export function celEnvironment(): Environment {
  return new Environment({ limits: { maxAstNodes: 2000, maxDepth: 50 } }).registerVariable({
    name: 'request',
    schema: CEL_REQUEST_SCHEMA,
  });
}

/** Type-checks and parses `expr`; returns the program or a message saying what is wrong. */
export function compileCel(env: Environment, expr: string): CelProgram | string {
  let checked: ReturnType<Environment['check']>;
  try {
    checked = env.check(expr);
  } catch (err) {
    return (err as Error).message.split('\n')[0] ?? 'invalid expression';
  }
  if (!checked.valid) return (checked.error?.message ?? 'invalid expression').split('\n')[0]!;
  if (String(checked.type) !== 'bool') return `expression must be bool, is ${String(checked.type)}`;
  const program = env.parse(expr);
  return (request: CelRequest) => program({ request }) === true;
}
