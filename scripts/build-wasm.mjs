// Builds the WebAssembly SIMD kernels (native/wasm/inrun_kernels.c) into
// build/wasm/inrun_kernels.wasm with clang and wasm-ld (Debian/Ubuntu: apt-get install clang lld).
//
// At install time a missing compiler is not a failure: inrun then runs on the native or portable
// kernels, and this prints how to get the wasm ones. INRUN_SKIP_WASM_BUILD=1 skips the build.
// Rebuilds only when the source (or this script) is newer than the module, so tests can call it
// on every run; --force always rebuilds, --require exits 1 when the module cannot be built.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'native', 'wasm', 'inrun_kernels.c');
const output = join(root, 'build', 'wasm', 'inrun_kernels.wasm');
const force = process.argv.includes('--force');
const required = process.argv.includes('--require');

function giveUp(reason) {
  if (required) {
    console.error(`inrun: cannot build the WebAssembly kernels: ${reason}`);
    process.exit(1);
  }
  console.warn(`inrun: WebAssembly kernels were not built (${reason}).`);
  console.warn(
    'inrun: install clang and lld (Debian/Ubuntu: apt-get install clang lld) and run `npm run build:wasm`.',
  );
  process.exit(0);
}

if (process.env.INRUN_SKIP_WASM_BUILD === '1') process.exit(0);
if (!existsSync(source)) giveUp(`${source} is missing`);

const newest = Math.max(statSync(source).mtimeMs, statSync(fileURLToPath(import.meta.url)).mtimeMs);
if (!force && existsSync(output) && statSync(output).mtimeMs >= newest) process.exit(0);

const clang = process.env.INRUN_CLANG ?? 'clang';
const args = [
  '--target=wasm32',
  '-O3',
  // 128-bit SIMD and bulk memory (memset/memcpy as single instructions, so no libc is needed):
  // both are in every engine since 2021 (Chrome 91, Firefox 89, Safari 16.4, Node 16.4).
  '-msimd128',
  '-mbulk-memory',
  '-nostdlib',
  '-Wall',
  '-Wextra',
  '-Werror',
  '-Wl,--no-entry',
  // wasm-ld rejects undefined symbols by default, so the module needs no imports; function names
  // stay (a few KB) so that profilers name the kernels.
  '-Wl,--strip-debug',
  source,
  '-o',
];
mkdirSync(dirname(output), { recursive: true });
// Written beside the output and renamed, so an interrupted build never leaves a truncated module.
const partial = `${output}.${process.pid}.tmp`;
const result = spawnSync(clang, [...args, partial], { encoding: 'utf8' });
if (result.error?.code === 'ENOENT') giveUp(`${clang} not found`);
if (result.status !== 0) {
  rmSync(partial, { force: true });
  const detail = `${result.stdout ?? ''}${result.stderr ?? ''}`.trim().split('\n').slice(0, 6);
  // A clang without the wasm32 target or without wasm-ld (package lld) fails here too.
  giveUp(`clang failed: ${detail.join(' | ') || `exit ${result.status ?? result.signal}`}`);
}
renameSync(partial, output);
