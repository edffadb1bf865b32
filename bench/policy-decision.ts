/**
 * Per-decision micro-benchmark: how long `evaluate(compiled, input)` takes for the example production bundle on
 * a 2 KB and a 32 KB prompt (median, p99), and how the cost grows with prompt size.
 * Run: `npm run bench:policy` (add `-- --bundle FILE` for another bundle, `--iterations N`).
 */
import { parseArgs } from 'node:util';
import type { PolicyInput } from '../src/core/policy-input.ts';
import { compileBundle } from '../src/policy/compile.ts';
import { evaluate } from '../src/policy/evaluate.ts';
import { loadBundleFile } from '../src/policy/load.ts';
import { openaiPolicyInput } from '../src/providers/openai/request.ts';

const { values } = parseArgs({
  options: {
    bundle: { type: 'string', default: 'policy-bundles/production/bundle.yaml' },
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

function input(text: string, i: number): PolicyInput {
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
    { appId: 'support-bot', keyId: 'k1', tags: ['external'] },
    `req-${i}`,
  );
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const cb = compileBundle(loadBundleFile(values.bundle));
const n = Number(values.iterations);
const rows: Array<{ size: string; medianUs: number; p99Us: number; meanUs: number }> = [];
for (const [label, bytes] of [
  ['2 KB', 2048],
  ['32 KB', 32768],
] as const) {
  const inputs = Array.from({ length: 64 }, (_, i) => input(prompt(bytes), i));
  for (let i = 0; i < 2000; i++) evaluate(cb, inputs[i % 64]!); // warm-up: JIT and caches
  const t = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const s = process.hrtime.bigint();
    evaluate(cb, inputs[i % 64]!);
    const us = Number(process.hrtime.bigint() - s) / 1000;
    t[i] = us;
    sum += us;
  }
  t.sort();
  rows.push({ size: label, medianUs: percentile(t, 50), p99Us: percentile(t, 99), meanUs: sum / n });
}
const growth = rows[1]!.medianUs / rows[0]!.medianUs;
if (values.json) console.log(JSON.stringify({ bundle: cb.id, name: cb.name, rows, growth }, null, 2));
else {
  console.log(
    `policy decision: ${cb.name}@${cb.version} (${cb.id.slice(0, 19)}…), ${n} decisions per size, Node ${process.version}`,
  );
  console.log('| prompt | median µs | p99 µs | mean µs |');
  console.log('|---|---:|---:|---:|');
  for (const r of rows)
    console.log(`| ${r.size} | ${r.medianUs.toFixed(1)} | ${r.p99Us.toFixed(1)} | ${r.meanUs.toFixed(1)} |`);
  console.log(`32 KB / 2 KB median: ${growth.toFixed(1)}× for 16× the text (linear or better: ≤ 16×)`);
}
