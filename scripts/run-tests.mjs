// Runs every test file under test/ with node's test runner (TypeScript through tsx).
// Node 20's --test does not expand globs, so the files are listed here.
//
// The WebAssembly kernels are built first (a no-op when build/wasm/inrun_kernels.wasm is newer
// than its source), and a failed build stops the run: their tests must not pass by not running.
// INRUN_SKIP_WASM_BUILD=1 skips the build, and then their tests, saying why.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function testFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return testFiles(path);
    return entry.name.endsWith('.test.ts') ? [path] : [];
  });
}

if (process.env.INRUN_SKIP_WASM_BUILD === '1') {
  console.warn(
    'note: INRUN_SKIP_WASM_BUILD=1: the wasm kernels are not built, and their tests skip if missing',
  );
} else {
  const script = join(dirname(fileURLToPath(import.meta.url)), 'build-wasm.mjs');
  const build = spawnSync(process.execPath, [script, '--require'], { stdio: 'inherit' });
  if (build.status !== 0) {
    console.error(
      'inrun: the tests need the WebAssembly kernels: install clang and lld (Debian/Ubuntu: ' +
        'apt-get install clang lld), or set INRUN_SKIP_WASM_BUILD=1 to skip their tests',
    );
    process.exit(1);
  }
}

const files = testFiles('test').sort();
// Node runs one file at a time on a 2-core machine (cores − 1); many test files wait on child
// processes and disk, so two at a time finish the suite about a third sooner there.
const concurrency = Math.max(2, availableParallelism() - 1);
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, ...process.argv.slice(2), ...files],
  {
    stdio: 'inherit',
  },
);
process.exit(result.status ?? 1);
