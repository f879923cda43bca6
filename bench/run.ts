/**
 * Benchmark runner: `npm run bench` (= `tsx bench/run.ts`).
 *
 *   --quick            short smoke run (seconds), same configs, few steps
 *   --out <file>       JSON output path (default: bench/results/<name>.json, or
 *                      <name>.quick.json with --quick); with several benchmarks
 *                      selected, one file holding all of them
 *   --only <names>     comma-separated benchmark names (default: all registered)
 *   --configs <ids>    comma-separated config ids within the benchmark(s), e.g. a,b
 *
 * Kernels follow the library's own choice: INRUN_KERNELS (native | portable | auto) and
 * INRUN_THREADS. A new benchmark is a file exporting a function returning a BenchResult,
 * registered in BENCHMARKS below.
 */
import os from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { getKernels } from '../src/kernels/index.js';
import { runGptBenchmark } from './gpt.js';
import { type BenchOptions, runMlpBenchmark } from './mlp.js';
import { type BenchResult, describeMachine, machineInfo, resultTable, writeJson } from './table.js';

interface Benchmark {
  name: string;
  description: string;
  run(options: BenchOptions): BenchResult;
}

const BENCHMARKS: Benchmark[] = [
  { name: 'mlp', description: 'MLP 784-512-512-10, batch 256, synthetic data', run: runMlpBenchmark },
  {
    name: 'gpt',
    description: 'GPT 4×128, contexts 64 and 256, batch 16, synthetic tokens',
    run: runGptBenchmark,
  },
];

const RESULTS_DIR = join(import.meta.dirname ?? 'bench', 'results');

function main(): void {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      out: { type: 'string' },
      only: { type: 'string' },
      configs: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log('usage: npm run bench -- [--quick] [--out file.json] [--only mlp] [--configs a,b]');
    console.log(`benchmarks: ${BENCHMARKS.map((b) => `${b.name} (${b.description})`).join(', ')}`);
    return;
  }
  const only = values.only?.split(',').map((s) => s.trim());
  const selected = only ? BENCHMARKS.filter((b) => only.includes(b.name)) : BENCHMARKS;
  if (selected.length === 0)
    throw new Error(`no benchmark named ${values.only} (known: ${BENCHMARKS.map((b) => b.name).join(', ')})`);
  const configs = values.configs?.split(',').map((s) => s.trim());

  const kernels = getKernels();
  const machine = machineInfo(kernels);
  console.log(`machine: ${describeMachine(machine)}`);
  if (kernels.kind !== 'native')
    console.log('note: portable TypeScript kernels (native OpenBLAS addon not loaded)');
  const log = (line: string) => console.log(line);

  const outputs: { result: BenchResult; seconds: number }[] = [];
  for (const bench of selected) {
    console.log(`\n== ${bench.name}${values.quick ? ' (quick)' : ''} ==`);
    const t0 = performance.now();
    const result = bench.run({ quick: values.quick, configs, log });
    const seconds = (performance.now() - t0) / 1000;
    console.log(`\n${result.title} — ${seconds.toFixed(1)} s`);
    console.log(resultTable(result));
    for (const note of result.notes) console.log(`  ${note}`);
    outputs.push({ result, seconds });
  }

  const record = (o: { result: BenchResult; seconds: number }) => ({
    benchmark: o.result.name,
    title: o.result.title,
    date: new Date().toISOString(),
    machine,
    settings: o.result.settings,
    baseline: o.result.baseline,
    rows: o.result.rows,
    medians: Object.fromEntries(o.result.rows.map((r) => [r.id, r.medianMs])),
    ratios: Object.fromEntries(o.result.rows.map((r) => [r.id, r.ratio])),
    extra: o.result.extra,
    notes: o.result.notes,
    seconds: o.seconds,
    loadAverageAtEnd: os.loadavg().map((v) => Math.round(v * 100) / 100),
  });
  if (values.out && outputs.length > 1) {
    writeJson(values.out, { benchmarks: outputs.map(record) });
    console.log(`\nwrote ${values.out}`);
  } else {
    for (const o of outputs) {
      const path = values.out ?? join(RESULTS_DIR, `${o.result.name}${values.quick ? '.quick' : ''}.json`);
      writeJson(path, record(o));
      console.log(`\nwrote ${path}`);
    }
  }
}

main();
