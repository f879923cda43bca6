// Which kernels run: an explicit native/portable/wasm (option, config, --kernels) > INRUN_KERNELS >
// auto (native when the addon loads, else wasm when built, else portable). `auto` from a config is
// no preference. Bad environment values and unavailable kernels are one-line errors.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { getKernels, nativeKernelsStatus, wasmKernelsStatus } from '../../src/kernels/index.js';
import { wasmPath } from '../../src/kernels/wasm-node.js';
import { InrunError } from '../../src/util/errors.js';
import { blobs, runCli, tempDir, toCsv, writeFiles } from '../cli/fixtures/train-data.js';
import { kernelsOrSkip, wasmSet } from './kernel-sets.js';

const nativeAvailable = nativeKernelsStatus().available;
const wasmAvailable = wasmKernelsStatus().available;

function withEnv<T>(vars: Record<string, string | undefined>, fn: () => T): T {
  const saved = Object.fromEntries(Object.keys(vars).map((key) => [key, process.env[key]]));
  const apply = (values: Record<string, string | undefined>) => {
    for (const [key, value] of Object.entries(values)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  };
  apply(vars);
  try {
    const result = fn();
    if (result instanceof Promise) return result.finally(() => apply(saved)) as T;
    apply(saved);
    return result;
  } catch (error) {
    apply(saved);
    throw error;
  }
}

test('getKernels: kind auto leaves the choice to INRUN_KERNELS', () => {
  withEnv({ INRUN_KERNELS: 'portable', INRUN_THREADS: undefined }, () => {
    assert.equal(getKernels({ kind: 'auto' }).kind, 'portable');
    assert.equal(getKernels({ kind: 'portable' }).kind, 'portable');
    if (nativeAvailable) assert.equal(getKernels({ kind: 'native' }).kind, 'native');
  });
  withEnv({ INRUN_KERNELS: ' Native ', INRUN_THREADS: undefined }, () => {
    if (nativeAvailable) assert.equal(getKernels({ kind: 'auto' }).kind, 'native');
    // An explicit choice wins over the variable.
    assert.equal(getKernels({ kind: 'portable' }).kind, 'portable');
  });
  withEnv({ INRUN_KERNELS: undefined, INRUN_THREADS: undefined }, () => {
    const fastest = nativeAvailable ? 'native' : wasmAvailable ? 'wasm' : 'portable';
    assert.equal(getKernels({ kind: 'auto' }).kind, fastest);
  });
});

test('getKernels: wasm is chosen by kind or INRUN_KERNELS, and an explicit kind wins over it', (t) => {
  if (!kernelsOrSkip(t, wasmSet)) return;
  withEnv({ INRUN_KERNELS: 'wasm', INRUN_THREADS: undefined }, () => {
    assert.equal(getKernels({ kind: 'auto' }).kind, 'wasm');
    assert.equal(getKernels().kind, 'wasm');
    assert.equal(getKernels({ kind: 'portable' }).kind, 'portable');
    if (nativeAvailable) assert.equal(getKernels({ kind: 'native' }).kind, 'native');
  });
  withEnv({ INRUN_KERNELS: 'portable', INRUN_THREADS: '2' }, () => {
    // Threads are accepted and ignored: the wasm kernels are single-threaded.
    assert.equal(getKernels({ kind: 'wasm' }).kind, 'wasm');
  });
});

test('getKernels: an unknown INRUN_KERNELS is an error naming the variable, even with an explicit kind', () => {
  for (const kind of [undefined, 'auto', 'portable'] as const) {
    withEnv({ INRUN_KERNELS: 'gpu', INRUN_THREADS: undefined }, () => {
      assert.throws(
        () => getKernels({ kind }),
        (error: Error) =>
          error instanceof InrunError &&
          /^environment variable INRUN_KERNELS="gpu" is not a kernels kind \(accepted: native, portable, wasm, auto\)$/.test(
            error.message,
          ),
      );
    });
  }
});

test('getKernels: INRUN_THREADS must be a plain integer from 1 to 1024', () => {
  for (const value of ['0', 'many', '0x10', '1e1', '2.5', '-3', '5000']) {
    withEnv({ INRUN_KERNELS: 'portable', INRUN_THREADS: value }, () => {
      assert.throws(
        () => getKernels(),
        (error: Error) =>
          error instanceof InrunError &&
          error.message ===
            `environment variable INRUN_THREADS=${JSON.stringify(value)} must be an integer from 1 to 1024`,
        value,
      );
    });
  }
  withEnv({ INRUN_KERNELS: 'portable', INRUN_THREADS: ' 2 ' }, () => {
    assert.equal(getKernels().kind, 'portable');
  });
});

// ------------------------------------------------------------------------------ the CLI

const dir = writeFiles(tempDir('inrun-kernels-'), {
  'train.csv': toCsv(blobs(40, { seed: 1 })),
  'val.csv': toCsv(blobs(12, { seed: 2, prefix: 'v' })),
});
let runs = 0;

/** `inrun train` on the small CSV with `extra` config lines; returns the result and run dir. */
async function train(extra: string, ...args: string[]) {
  const config = join(dir, `run${++runs}.yaml`);
  writeFileSync(
    config,
    `data: { train: train.csv, validation: val.csv }\ncolumns: { id: id }\nsteps: 2\nbatchSize: 8\n${extra}`,
  );
  const out = join(dir, `out${runs}`);
  const r = await runCli('train', '--config', config, '--out', out, '--quiet', ...args);
  return { ...r, out };
}

function manifestKernels(out: string): string {
  return (JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as { kernels: string }).kernels;
}

test('inrun train: INRUN_KERNELS=portable is used when the config says auto or nothing', async () => {
  for (const extra of ['', 'kernels: auto\n']) {
    const r = await withEnv({ INRUN_KERNELS: 'portable' }, () => train(extra));
    assert.equal(r.code, 0, r.err);
    assert.match(manifestKernels(r.out), /^portable/, `config: ${JSON.stringify(extra)}`);
  }
});

test('inrun train: an explicit kernels in the config or --kernels wins over INRUN_KERNELS', async (t) => {
  const portable = await withEnv({ INRUN_KERNELS: 'native' }, () => train('kernels: portable\n'));
  assert.equal(portable.code, 0, portable.err);
  assert.match(manifestKernels(portable.out), /^portable/);
  const flag = await withEnv({ INRUN_KERNELS: 'native' }, () => train('', '--kernels', 'portable'));
  assert.equal(flag.code, 0, flag.err);
  assert.match(manifestKernels(flag.out), /^portable/);
  if (!nativeAvailable) {
    t.diagnostic('native kernels not built: native over INRUN_KERNELS=portable not checked');
    return;
  }
  const native = await withEnv({ INRUN_KERNELS: 'portable' }, () => train('kernels: native\n'));
  assert.equal(native.code, 0, native.err);
  assert.match(manifestKernels(native.out), /^native/);
});

test('inrun train: kernels wasm in the config, --kernels wasm or INRUN_KERNELS=wasm runs on wasm', async (t) => {
  if (!kernelsOrSkip(t, wasmSet)) return;
  const runs = [
    await withEnv({ INRUN_KERNELS: 'portable' }, () => train('kernels: wasm\n')),
    await withEnv({ INRUN_KERNELS: undefined }, () => train('', '--kernels', 'wasm')),
    await withEnv({ INRUN_KERNELS: 'wasm' }, () => train('')),
  ];
  for (const r of runs) {
    assert.equal(r.code, 0, r.err);
    assert.equal(manifestKernels(r.out), 'wasm (WebAssembly SIMD)');
  }
});

test('inrun train: a bad INRUN_KERNELS or INRUN_THREADS is one error line, and nothing is written', async () => {
  const cases: [Record<string, string>, RegExp][] = [
    [
      { INRUN_KERNELS: 'gpu' },
      /INRUN_KERNELS="gpu" is not a kernels kind \(accepted: native, portable, wasm, auto\)/,
    ],
    [
      { INRUN_KERNELS: 'portable', INRUN_THREADS: 'lots' },
      /INRUN_THREADS="lots" must be an integer from 1 to 1024/,
    ],
  ];
  for (const [env, expected] of cases) {
    const r = await withEnv(env, () => train(''));
    assert.equal(r.code, 1, r.err);
    assert.match(r.err, /^inrun: error: [^\n]+\n$/);
    assert.match(r.err, expected);
    assert.ok(!existsSync(r.out), 'a run directory was written');
  }
});

test('inrun train: kernels requested but not built are a clear error; auto falls back', (t) => {
  // A copy of the package without build/: neither the addon nor the wasm module can load there.
  const root = mkdtempSync(join(tmpdir(), 'inrun-no-addon-'));
  const repo = fileURLToPath(new URL('../../', import.meta.url));
  for (const name of ['src', 'package.json', 'tsconfig.json'])
    cpSync(join(repo, name), join(root, name), { recursive: true });
  symlinkSync(join(repo, 'node_modules'), join(root, 'node_modules'), 'dir');
  writeFileSync(
    join(root, 'cli.mts'),
    "import { main } from './src/cli/main.ts';\nprocess.exitCode = await main(process.argv);\n",
  );
  let runs = 0;
  const train = (env: Record<string, string>, args: string[]) => {
    const out = join(root, `out${++runs}`);
    const r = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        'cli.mts',
        'train',
        '--train',
        join(dir, 'train.csv'),
        '--validation',
        join(dir, 'val.csv'),
        '--steps',
        '1',
        '--out',
        out,
        '--quiet',
        ...args,
      ],
      {
        cwd: root,
        encoding: 'utf8',
        env: { ...process.env, INRUN_KERNELS: undefined, INRUN_THREADS: undefined, ...env },
        timeout: 120_000,
      },
    );
    return { ...r, out };
  };
  const native = /install libopenblas-dev and run `npm rebuild`, or choose the portable kernels$/;
  const wasm = /install clang and lld and run `npm run build:wasm`, or choose the portable kernels$/;
  const cases: [Record<string, string>, string[], RegExp[]][] = [
    [
      {},
      ['--kernels', 'native'],
      [
        /^inrun: error: native OpenBLAS kernels were requested/,
        /requested \(kernels: native\) but are unavailable: build\/Release\/inrun_blas\.node is not built/,
        native,
      ],
    ],
    [
      { INRUN_KERNELS: 'native' },
      [],
      [
        /^inrun: error: native OpenBLAS kernels were requested \(INRUN_KERNELS=native\) but are unavailable/,
        native,
      ],
    ],
    [
      {},
      ['--kernels', 'wasm'],
      [
        /^inrun: error: WebAssembly kernels were requested \(kernels: wasm\) but are unavailable: build\/wasm\/inrun_kernels\.wasm is not built; /,
        wasm,
      ],
    ],
    [
      { INRUN_KERNELS: 'wasm' },
      [],
      [/^inrun: error: WebAssembly kernels were requested \(INRUN_KERNELS=wasm\) but are unavailable/, wasm],
    ],
  ];
  for (const [env, args, expected] of cases) {
    const r = train(env, args);
    assert.equal(r.status, 1, r.stderr);
    const lines = r.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    for (const pattern of expected) assert.match(lines[0], pattern);
    assert.ok(!existsSync(r.out));
  }

  // auto: portable, with one line naming both reasons.
  const portable = train({}, []);
  assert.equal(portable.status, 0, portable.stderr);
  assert.match(manifestKernels(portable.out), /^portable/);
  assert.match(
    portable.stderr,
    /^inrun: native OpenBLAS kernels unavailable \(build\/Release\/inrun_blas\.node is not built\); WebAssembly kernels unavailable too \(build\/wasm\/inrun_kernels\.wasm is not built\); using portable TypeScript kernels/m,
  );

  // With the wasm module built but no addon, auto runs on wasm and says so.
  if (!kernelsOrSkip(t, wasmSet)) return;
  mkdirSync(join(root, 'build', 'wasm'), { recursive: true });
  cpSync(wasmPath()!, join(root, 'build', 'wasm', 'inrun_kernels.wasm'));
  const fallback = train({}, []);
  assert.equal(fallback.status, 0, fallback.stderr);
  assert.equal(manifestKernels(fallback.out), 'wasm (WebAssembly SIMD)');
  assert.match(
    fallback.stderr,
    /^inrun: native OpenBLAS kernels unavailable \(build\/Release\/inrun_blas\.node is not built\); using WebAssembly SIMD kernels \(slower\)\. /m,
  );
});
