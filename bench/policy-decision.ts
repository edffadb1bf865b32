/**
 * Per-decision micro-benchmark: how long `evaluate(compiled, input)` takes for the example production bundle on
 * a 2 KB and a 32 KB prompt (median, p99), how the cost grows with prompt size, and what a second bundle costs on
 * the same request (production + candidate, as in shadow or canary): with the request's ScanCache shared (what
 * the gateway does) and without it (each bundle scanning for itself). Rows for an external app (every input
 * guardrail applies) and an internal one (the external-only guardrails' detectors are never run).
 * Run: `node bench/policy-decision.ts` (`--bundle FILE`, `--candidate FILE`, `--iterations N`, `--json`).
 */
import { parseArgs } from 'node:util';
import type { PolicyInput } from '../src/core/policy-input.ts';
import { type CompiledBundle, compileBundle } from '../src/policy/compile.ts';
import { evaluate } from '../src/policy/evaluate.ts';
import { loadBundleFile } from '../src/policy/load.ts';
import { ScanCache } from '../src/policy/scan-cache.ts';
import { openaiPolicyInput } from '../src/providers/openai/request.ts';

const { values } = parseArgs({
  options: {
    bundle: { type: 'string', default: 'policy-bundles/production/bundle.yaml' },
    candidate: { type: 'string', default: 'policy-bundles/candidate/bundle.yaml' },
    iterations: { type: 'string', default: '20000' },
    json: { type: 'boolean', default: false },
  },
});

// Ordinary business prose with the odd number and address in it: the detectors must scan it all.
const PROSE =
  'Please summarise the attached quarterly report for the operations review. Revenue grew 4.2% over the ' +
  'previous quarter, driven by the enterprise segment; churn in the SMB tier stayed flat at 1.8%. The ' +
  'support backlog fell from 1,204 to 877 tickets after the new routing went live on 2026-10-03. ';

function prompt(bytes: number): string {
  return PROSE.repeat(Math.ceil(bytes / PROSE.length)).slice(0, bytes);
}

function input(text: string, i: number, tags: readonly string[]): PolicyInput {
  return openaiPolicyInput(
    'openai.chat',
    {
      model: 'mock-gpt',
      messages: [
        { role: 'system', content: 'You are a helpful assistant for the operations team.' },
        { role: 'user', content: text },
      ],
      user: `user-${i % 100}`,
    },
    { appId: 'support-bot', keyId: 'k1', tags },
    `req-${i}`,
  );
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const prod = compileBundle(loadBundleFile(values.bundle));
const cand = compileBundle(loadBundleFile(values.candidate));
const n = Number(values.iterations);

type Case = 'production' | 'production + candidate, separate scans' | 'production + candidate, shared scans';
const CASES: Record<Case, (cb: CompiledBundle, c: CompiledBundle, x: PolicyInput) => void> = {
  production: (p, _c, x) => {
    evaluate(p, x);
  },
  'production + candidate, separate scans': (p, c, x) => {
    evaluate(p, x);
    evaluate(c, x);
  },
  'production + candidate, shared scans': (p, c, x) => {
    const scans = new ScanCache(x);
    evaluate(p, x, scans);
    evaluate(c, x, scans);
  },
};

interface Row {
  app: string;
  size: string;
  case: Case;
  medianUs: number;
  p99Us: number;
  meanUs: number;
}
const rows: Row[] = [];
for (const [app, tags] of [
  ['external', ['external']],
  ['internal', ['internal']],
] as const)
  for (const [label, bytes] of [
    ['2 KB', 2048],
    ['32 KB', 32768],
  ] as const) {
    const inputs = Array.from({ length: 64 }, (_, i) => input(prompt(bytes), i, tags));
    for (const [name, run] of Object.entries(CASES) as Array<[Case, (typeof CASES)[Case]]>) {
      for (let i = 0; i < 2000; i++) run(prod, cand, inputs[i % 64]!); // warm-up: JIT and caches
      const t = new Float64Array(n);
      let sum = 0;
      for (let i = 0; i < n; i++) {
        const s = process.hrtime.bigint();
        run(prod, cand, inputs[i % 64]!);
        const us = Number(process.hrtime.bigint() - s) / 1000;
        t[i] = us;
        sum += us;
      }
      t.sort();
      rows.push({
        app,
        size: label,
        case: name,
        medianUs: percentile(t, 50),
        p99Us: percentile(t, 99),
        meanUs: sum / n,
      });
    }
  }
const at = (app: string, size: string, c: Case) =>
  rows.find((r) => r.app === app && r.size === size && r.case === c)!.medianUs;
const growth = at('external', '32 KB', 'production') / at('external', '2 KB', 'production');
if (values.json)
  console.log(
    JSON.stringify({ bundle: prod.id, name: prod.name, candidate: cand.id, rows, growth }, null, 2),
  );
else {
  console.log(
    `policy decision: ${prod.name}@${prod.version} (${prod.id.slice(0, 19)}…), candidate ${cand.name}@${cand.version}, ${n} decisions per row, Node ${process.version}`,
  );
  console.log('| app | prompt | case | median µs | p99 µs | mean µs |');
  console.log('|---|---|---|---:|---:|---:|');
  for (const r of rows)
    console.log(
      `| ${r.app} | ${r.size} | ${r.case} | ${r.medianUs.toFixed(1)} | ${r.p99Us.toFixed(1)} | ${r.meanUs.toFixed(1)} |`,
    );
  console.log(
    `32 KB / 2 KB median (external, production): ${growth.toFixed(1)}× for 16× the text (linear or better: ≤ 16×)`,
  );
}
