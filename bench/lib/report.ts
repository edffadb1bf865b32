import { NOISY_CORES } from './noise.ts';
import type { BenchResults, LatencyStats, ModeResult, PayloadFigures, Stat } from './results.ts';

const BASE = 'reference';

function num(n: number, digits: number): string {
  if (Number.isNaN(n)) return 'n/a';
  return n.toFixed(digits);
}

function cell(s: Stat | undefined, digits: number, signed = false): string {
  if (!s) return '—';
  const f = (n: number) => (signed && n > 0 ? '+' : '') + num(n, digits);
  return s.min === s.max ? f(s.median) : `${f(s.median)} (${f(s.min)}…${f(s.max)})`;
}

function ratio(a: Stat | undefined, b: Stat | undefined): string {
  if (!a || !b || !(b.median > 0)) return '—';
  return `${(a.median / b.median).toFixed(2)}×`;
}

function delta(a: Stat | undefined, b: Stat | undefined): string {
  if (!a || !b) return '—';
  const d = a.median - b.median;
  return `${d >= 0 ? '+' : '−'}${Math.abs(d).toFixed(3)} ms`;
}

type Row = {
  label: string;
  get: (p: PayloadFigures) => Stat | undefined;
  digits: number;
  vs: 'ratio' | 'delta';
  signed?: boolean;
  streamOnly?: boolean;
};

function latencyRows(
  what: string,
  get: (p: PayloadFigures) => LatencyStats | undefined,
  signed: boolean,
  streamOnly: boolean,
): Row[] {
  return (['p50', 'p90', 'p99'] as const).map((k) => ({
    label: `${what} ${k}, ms`,
    get: (p) => get(p)?.[k],
    digits: 3,
    vs: 'delta' as const,
    signed,
    streamOnly,
  }));
}

const ROWS: Row[] = [
  { label: 'throughput, req/s (saturated)', get: (p) => p.rps, digits: 0, vs: 'ratio' },
  { label: 'server CPU per request, µs', get: (p) => p.cpuPerRequestUs, digits: 0, vs: 'ratio' },
  ...latencyRows('latency', (p) => p.latencyMs, false, false),
  ...latencyRows('added latency', (p) => p.addedLatencyMs, true, false),
  ...latencyRows('TTFB', (p) => p.ttfbMs, false, true),
  ...latencyRows('added TTFB', (p) => p.addedTtfbMs, true, true),
];

function payloadTable(r: BenchResults, payloadId: string, stream: boolean): string {
  const shown = r.modes.filter((m) => m.available);
  const base = shown.find((m) => m.name === BASE);
  const compared = shown.filter((m) => m.name !== 'direct' && m.name !== BASE);
  const head = ['figure', ...shown.map((m) => m.name), ...compared.map((m) => `${m.name} vs ${BASE}`)];
  const lines = [
    `| ${head.join(' | ')} |`,
    `| --- | ${head
      .slice(1)
      .map(() => '---:')
      .join(' | ')} |`,
  ];
  for (const row of ROWS) {
    if (row.streamOnly && !stream) continue;
    const fig = (m: ModeResult | undefined) => {
      const p = m?.payloads[payloadId];
      return p ? row.get(p) : undefined;
    };
    const cells = shown.map((m) => cell(fig(m), row.digits, row.signed));
    const vs = compared.map((m) =>
      row.vs === 'ratio' ? ratio(fig(m), fig(base)) : delta(fig(m), fig(base)),
    );
    lines.push(`| ${row.label} | ${[...cells, ...vs].join(' | ')} |`);
  }
  const errs = shown.map((m) => {
    const p = m.payloads[payloadId];
    return p ? `${p.errors} / ${p.non2xx}` : '—';
  });
  lines.push(`| errors / non-2xx | ${[...errs, ...compared.map(() => '')].join(' | ')} |`);
  return lines.join('\n');
}

function memoryTable(r: BenchResults): string {
  const lines = [
    '| mode | start | after rounds | mid-soak | after soak | RSS growth, 2nd half | live heap after rounds → soak | live heap growth | soak requests | soak errors / non-2xx | exit on SIGTERM |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  ];
  for (const m of r.modes.filter((x) => x.available)) {
    const mem = m.memory;
    const f = (n: number | undefined) => (n === undefined ? '—' : n.toFixed(1));
    const signed = (n: number | undefined) => (n === undefined ? '—' : `${n >= 0 ? '+' : ''}${n.toFixed(1)}`);
    const exit = m.exit ? (m.exit.signal ?? `code ${m.exit.code}`) : '—';
    const soakErr = mem?.soakErrors === undefined ? '—' : `${mem.soakErrors} / ${mem.soakNon2xx ?? 0}`;
    lines.push(
      `| ${m.name} | ${f(mem?.startMB)} | ${f(mem?.afterRoundsMB)} | ${f(mem?.midSoakMB)} | ${f(mem?.afterSoakMB)} | ${signed(mem?.soakGrowthMB)} | ${mem?.liveHeapAfterRoundsMB === undefined ? '—' : `${f(mem.liveHeapAfterRoundsMB)} → ${f(mem.liveHeapAfterSoakMB)}`} | ${signed(mem?.liveHeapGrowthSoakMB)} | ${mem?.soakRequests ?? '—'} | ${soakErr} | ${exit} |`,
    );
  }
  return lines.join('\n');
}

/** The results as Markdown (bench/RESULTS.md, and the console summary). */
export function renderMarkdown(r: BenchResults): string {
  const s = r.settings;
  const m = r.machine;
  const out: string[] = [
    `# ringfence benchmark results${r.kind === 'smoke' ? ' (smoke run: timings not meaningful)' : ''}`,
    '',
    `Written by \`npm run bench\` — do not edit by hand; rerun it. See bench/README.md for what each figure means.`,
    '',
    `- **When / what**: ${m.date}, git \`${m.gitSha}\`, ringfence from ${m.ringfence}, ${Math.round(r.wallS)} s wall time`,
    `- **Machine**: ${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB, Linux ${m.kernel}, Node ${m.node}`,
    `- **Noise**: other processes used ${r.noise.backgroundCores} cores on average during the measurement; ${r.noise.noisyRuns} of ${r.noise.runs} runs had more than ${NOISY_CORES} cores of background load; ${r.noise.settleWaitS} s spent waiting for quiet before runs. Trust the timings when these are near 0.`,
    `- **Method**: ${s.rounds} interleaved rounds (every mode in turn, per payload) after a ${s.warmupS} s warm-up per mode and payload (discarded).` +
      ` Saturated: autocannon, ${s.saturatedConnections} connections × ${s.saturatedS} s; CPU is utime+stime of the server process from /proc (CLK_TCK ${s.clockTicks}).` +
      ` Fixed rate: ${s.fixedRate} req/s × ${s.fixedS} s per mode and round, run as ${s.fixedSlices} slice(s) with every mode in turn per slice (pooled into one histogram per mode and round), open loop over ${s.fixedConnections} connections, HDR histograms in µs.` +
      ` Soak: ${s.soakRequests} requests (all payloads in turn, ${s.saturatedConnections} connections) per ringfence mode. Streams: ${s.streamChunks} SSE chunks + [DONE].`,
    `- **Cells**: median of the rounds (min…max). *added* = mode − direct in the same round. *vs reference*: ratio (×) for throughput and CPU, difference for latencies.`,
    '',
    '## Modes',
    '',
    '| mode | measured | what it is |',
    '| --- | --- | --- |',
    ...r.modes.map(
      (x) =>
        `| ${x.name} | ${x.available ? 'yes' : `**not available**: ${x.reason ?? ''}`} | ${x.description} |`,
    ),
  ];
  for (const p of r.payloads) {
    out.push(
      '',
      `## ${p.label} (request ${p.requestBytes} B, response ${p.responseBytes} B)`,
      '',
      payloadTable(r, p.id, p.stream),
    );
  }
  out.push('', '## Memory (RSS of the server process, MB)', '', memoryTable(r));
  if (r.budget) {
    const mark = { pass: 'pass', fail: '**FAIL**', 'not measured': 'not measured' } as const;
    out.push(
      '',
      `## Budget (bench/budget.json)${r.kind === 'smoke' ? ' — smoke run: printed, not enforced' : ''}`,
      '',
      ...r.budget.outcomes.map((o) => `- ${mark[o.status]}: ${o.message}`),
    );
  }
  return `${out.join('\n')}\n`;
}
