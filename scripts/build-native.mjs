// Builds the optional OpenBLAS addon at install time. A failed build is not an install failure:
// inrun then runs on its portable TypeScript kernels and says so once at start-up.
import { spawnSync } from 'node:child_process';

if (process.env.INRUN_SKIP_NATIVE_BUILD === '1') process.exit(0);
const result = spawnSync('node-gyp', ['rebuild'], {
  stdio: ['ignore', 'pipe', 'pipe'],
  encoding: 'utf8',
});
if (result.status !== 0) {
  const detail = `${result.stdout ?? ''}${result.stderr ?? ''}`
    .split('\n')
    .filter((l) => /error/i.test(l))
    .slice(0, 3);
  console.warn('inrun: native OpenBLAS kernels were not built; the portable kernels will be used.');
  console.warn(
    'inrun: install OpenBLAS (Debian/Ubuntu: apt-get install libopenblas-dev) and run `npm rebuild inrun`.',
  );
  for (const line of detail) console.warn(`inrun:   ${line.trim()}`);
}
