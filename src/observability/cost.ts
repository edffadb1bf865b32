import type { Config } from '../config/schema.ts';

interface Price {
  readonly inputPerMTok: number;
  readonly outputPerMTok: number;
}

/**
 * Prices from `providers.<id>.pricing` (per million tokens, `*` for a provider's other models), and the model
 * label metrics may use: a model the provider lists or prices keeps its name; any other becomes `*`, so a client
 * sending random model names cannot create series.
 */
export class Pricing {
  readonly #prices = new Map<string, ReadonlyMap<string, Price>>();
  readonly #known = new Map<string, ReadonlySet<string>>();

  constructor(providers: Config['providers']) {
    for (const [id, p] of Object.entries(providers)) {
      this.#prices.set(id, new Map(Object.entries(p.pricing)));
      this.#known.set(id, new Set([...p.models, ...Object.keys(p.pricing).filter((m) => m !== '*')]));
    }
  }

  /** The model as a metric label: its name when the provider lists or prices it, else `*`. */
  modelLabel(provider: string, model: string): string {
    return this.#known.get(provider)?.has(model) ? model : '*';
  }

  /** Estimated cost in US dollars, or undefined when neither the model nor `*` has a price. */
  cost(provider: string, model: string, tokens: { input: number; output: number }): number | undefined {
    const prices = this.#prices.get(provider);
    const p = prices?.get(model) ?? prices?.get('*');
    if (!p) return undefined;
    return (tokens.input * p.inputPerMTok + tokens.output * p.outputPerMTok) / 1e6;
  }
}
