/**
 * Benchmark runner: `npm run bench` (= `tsx bench/run.ts`).
 *
 *   --quick            short smoke run, same configs, few steps (with PyTorch: GPT plain and
 *                      first order at context 64 only, fewer values checks, no GPT warm-up)
 *   --out <file>       JSON output path (default: bench/results/<name>.json, or
 *                      <name>.quick.json with --quick); with several benchmarks
 *                      selected, one file holding all of them
 *   --only <names>     comma-separated benchmark names (default: all registered)
 *   --configs <ids>    comma-separated config ids within the benchmark(s), e.g. a,b
 *   --no-torch         inrun alone, even where PyTorch is installed
 *   --torch            require PyTorch: fail instead of running inrun alone
 *   --threads <list>   thread counts of the PyTorch comparison (default 1,2)
 *   --settle <ms>      pause after every switch between inrun and PyTorch (default 150), so the
 *                      OpenBLAS threads one side leaves spinning (about 2^28 cycles, ~0.1 s) are
 *                      asleep before the other side runs
 *
 * PyTorch side by side: when a Python with torch is found ($INRUN_BENCH_PYTHON, else python3,
 * else /usr/bin/python3; Debian: `apt-get install python3-torch`), every workload also runs in
 * PyTorch (bench/torch/inrun_torch.py, one process per thread count) with the same shapes, float32,
 * inrun's initial weights and data, at each thread count (inrun: the kernels' setThreads;
 * PyTorch: torch.set_num_threads plus OMP_NUM_THREADS/OPENBLAS_NUM_THREADS, and
 * OMP_WAIT_POLICY=PASSIVE above 1 thread), in interleaved rounds, after a check that both sides
 * compute the same values (the bench fails if they differ by more than 1e-3 relative). The
 * tables gain PyTorch medians, quartiles and inrun/PyTorch ratios; the JSON gains a `torch` key.
 * The GPT benchmark then adds (f) second order at context 256 and the PyTorch-only rows (g), (h)
 * (the paper's own values for an Adam run). The full comparison took about 14.5 minutes on the
 * 2-core machine (2.5 MLP, 10.5 GPT, 1.5 CNN) while it was shared; --quick about a minute.
 * Without PyTorch: one line says so and inrun runs alone, as before.
 *
 * Kernels follow the library's own choice: INRUN_KERNELS (native | portable | wasm | auto) and
 * INRUN_THREADS (inrun alone; the PyTorch comparison sets the threads itself), except in the
 * kernels benchmark, which runs every kernel set that loads side by side. A new benchmark is a
 * file exporting a function returning a BenchResult, registered in BENCHMARKS below.
 */
import os from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { getKernels } from '../src/kernels/index.js';
import { runCnnBenchmark } from './cnn.js';
import { runGptBenchmark } from './gpt.js';
import { runKernelsBenchmark } from './kernels.js';
import { type BenchOptions, runMlpBenchmark } from './mlp.js';
import {
  type BenchResult,
  describeMachine,
  formatTable,
  machineInfo,
  resultTable,
  writeJson,
} from './table.js';
import { findTorch } from './torch/client.js';
import { comparisonTables, type TorchOptions, threadsPhrase } from './torch/compare.js';

interface Benchmark {
  name: string;
  description: string;
  run(options: BenchOptions): Promise<BenchResult>;
}

const BENCHMARKS: Benchmark[] = [
  { name: 'mlp', description: 'MLP 784-512-512-10, batch 256, synthetic data', run: runMlpBenchmark },
  {
    name: 'gpt',
    description: 'GPT 4×128, contexts 64 and 256, batch 16, synthetic tokens',
    run: runGptBenchmark,
  },
  { name: 'cnn', description: 'LeNet-5 on 28×28 images, batch 64, synthetic data', run: runCnnBenchmark },
  {
    name: 'kernels',
    description: 'gemm GFLOP/s and an MLP 784-128-10 training step on portable, wasm and native kernels',
    run: runKernelsBenchmark,
  },
];

const RESULTS_DIR = join(import.meta.dirname ?? 'bench', 'results');

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      out: { type: 'string' },
      only: { type: 'string' },
      configs: { type: 'string' },
      torch: { type: 'boolean' },
      'no-torch': { type: 'boolean', default: false },
      threads: { type: 'string', default: '1,2' },
      settle: { type: 'string', default: '150' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(
      'usage: npm run bench -- [--quick] [--out file.json] [--only mlp] [--configs a,b] ' +
        '[--no-torch | --torch] [--threads 1,2] [--settle ms]',
    );
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
    console.log(`note: ${kernels.kind} kernels (native OpenBLAS addon not loaded)`);
  const log = (line: string) => console.log(line);
  const torch = torchOptions(values);

  const outputs: { result: BenchResult; seconds: number }[] = [];
  for (const bench of selected) {
    console.log(`\n== ${bench.name}${values.quick ? ' (quick)' : ''} ==`);
    const t0 = performance.now();
    const result = await bench.run({ quick: values.quick, configs, log, torch });
    const seconds = (performance.now() - t0) / 1000;
    console.log(`\n${result.title} — ${seconds.toFixed(1)} s`);
    const lastThreads = result.torch?.threads.at(-1);
    if (lastThreads) console.log(`inrun alone, ${threadsPhrase(lastThreads)}:`);
    console.log(resultTable(result));
    for (const table of result.tables ?? [])
      console.log(`\n${table.title}:\n${formatTable(table.headers, table.cells)}`);
    for (const note of result.notes) console.log(`  ${note}`);
    if (result.torch) {
      console.log(
        `\ninrun vs PyTorch ${result.torch.torchVersion} (inrun/PyTorch above 1: inrun is slower):`,
      );
      console.log(comparisonTables(result.torch));
      for (const note of result.torch.notes) console.log(`  ${note}`);
      for (const c of result.torch.checks)
        console.log(`  values check, ${c.name}: relative max |Δ| = ${c.relative.toExponential(2)}`);
    }
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
    ...(o.result.tables ? { tables: o.result.tables } : {}),
    notes: o.result.notes,
    ...(o.result.torch ? { torch: o.result.torch } : {}),
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

/** PyTorch for the comparison, or undefined (with one line saying why) to run inrun alone. */
function torchOptions(values: {
  torch?: boolean;
  'no-torch'?: boolean;
  threads?: string;
  settle?: string;
}): TorchOptions | undefined {
  if (values['no-torch']) {
    if (values.torch) throw new Error('--torch and --no-torch contradict each other');
    return undefined;
  }
  const threads = (values.threads ?? '1,2').split(',').map((s) => Number(s.trim()));
  if (threads.length === 0 || threads.some((t) => !Number.isInteger(t) || t < 1))
    throw new Error(`--threads: positive integers, comma-separated (got ${values.threads})`);
  const settleMs = Number(values.settle ?? '150');
  if (!Number.isFinite(settleMs) || settleMs < 0)
    throw new Error(`--settle: milliseconds (got ${values.settle})`);
  const found = findTorch();
  if ('reason' in found) {
    if (values.torch) throw new Error(`--torch: no Python with PyTorch (${found.reason})`);
    console.log(
      'note: PyTorch not found (apt-get install python3-torch, or INRUN_BENCH_PYTHON=/path/to/python); ' +
        'running inrun alone',
    );
    return undefined;
  }
  return { found, threads, settleMs };
}

await main();
