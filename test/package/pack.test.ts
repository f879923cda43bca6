// The package as a user installs it. `npm pack` runs on a copy of this working tree (so dist/ is
// built from the current sources, and the working tree's own dist/ is left alone), the tarball is
// installed into a fresh project without the network (extracted into node_modules/inrun, each
// runtime dependency linked from this checkout's node_modules, so an undeclared dependency
// fails), and the documentation's TypeScript is compiled against the installed types and run.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { isBuiltin } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  bareName,
  calledName,
  codeBlocks,
  codeSpans,
  documentationFiles,
  inrunImports,
  JS_LANGS,
  sourceExports,
  TS_LANGS,
} from './markdown.js';
import { moduleSpecifiers, packageOf } from './specifiers.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Left out of the copy: what .gitignore keeps out of the repository, and .git. */
const NOT_COPIED = new Set(['.git', 'node_modules', 'dist', 'build', 'runs', join('bench', 'results')]);

let tmp: string;
/** The copy of the working tree that was packed. */
let source: string;
let app: string;
let installed: string;
let tarball: string[];
let packedManifest: {
  version: string;
  dependencies: Record<string, string>;
  scripts: Record<string, string>;
};
/** The documentation's TypeScript blocks, by the file name they are compiled under. */
const examples = new Map<string, { where: string; run: boolean; file?: string; line?: number }>();

interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): Result {
  // Generous: the suite shares two cores; the limit is there to stop a hang, not to time anything.
  const result = spawnSync(command, args, { cwd, env, encoding: 'utf8', timeout: 300_000 });
  if (result.error) throw result.error;
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function succeed(command: string, args: string[], cwd: string, env?: NodeJS.ProcessEnv): string {
  const result = run(command, args, cwd, env);
  assert.equal(
    result.status,
    0,
    `${command} ${args.join(' ')} (in ${cwd}) failed:\n${result.stdout}\n${result.stderr}`,
  );
  return result.stdout;
}

/**
 * Environment for child processes: no update checks or audits, and nothing inherited that changes
 * behaviour (npm's lifecycle variables when run by `npm test`, a loader in NODE_OPTIONS).
 */
function childEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(
      ([key]) => !/^npm_/i.test(key) && key !== 'NODE_OPTIONS' && key !== 'INRUN_SKIP_NATIVE_BUILD',
    ),
  );
  return {
    ...env,
    npm_config_update_notifier: 'false',
    npm_config_audit: 'false',
    npm_config_fund: 'false',
    INRUN_KERNELS: 'portable',
    ...extra,
  };
}

function link(target: string, path: string): void {
  mkdirSync(dirname(path), { recursive: true });
  symlinkSync(target, path, 'junction');
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    return entry.isDirectory() ? filesUnder(path) : [path];
  });
}

before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'inrun-pack-'));

  // Pack a copy of the working tree. A stale file planted in dist/ must not reach the tarball:
  // `prepack` empties dist/ before `prepare` compiles it.
  source = join(tmp, 'source');
  cpSync(root, source, {
    recursive: true,
    filter: (path) => !NOT_COPIED.has(relative(root, path)) && !path.endsWith('.tmp'),
  });
  link(join(root, 'node_modules'), join(source, 'node_modules'));
  mkdirSync(join(source, 'dist', 'removed'), { recursive: true });
  writeFileSync(join(source, 'dist', 'removed', 'module.js'), 'export {};\n');
  const packed = join(tmp, 'packed');
  mkdirSync(packed);
  succeed('npm', ['pack', '--offline', '--pack-destination', packed], source, childEnv());
  const archives = readdirSync(packed).filter((name) => name.endsWith('.tgz'));
  assert.equal(archives.length, 1, `npm pack wrote ${archives.join(', ') || 'no tarball'}`);
  const archive = join(packed, archives[0]);
  tarball = succeed('tar', ['-tzf', archive], tmp)
    .split('\n')
    .filter((line) => line !== '' && !line.endsWith('/'))
    .map((line) => line.replace(/^package\//, ''));

  // Install it: what `npm install <tarball>` lays out, minus the registry.
  app = join(tmp, 'app');
  installed = join(app, 'node_modules', 'inrun');
  mkdirSync(installed, { recursive: true });
  succeed('tar', ['-xzf', archive, '-C', installed, '--strip-components=1'], tmp);
  packedManifest = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8'));
  for (const name of [...Object.keys(packedManifest.dependencies), '@types/node']) {
    const target = join(root, 'node_modules', name);
    assert.ok(existsSync(target), `${name} is not in ${join(root, 'node_modules')}; run npm ci`);
    link(target, join(app, 'node_modules', ...name.split('/')));
  }
  writeFileSync(
    join(app, 'package.json'),
    `${JSON.stringify({ name: 'inrun-user', private: true, type: 'module' }, null, 2)}\n`,
  );
  writeFileSync(
    join(app, 'tsconfig.json'),
    `${JSON.stringify(
      {
        compilerOptions: {
          strict: true,
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          target: 'ES2022',
          lib: ['ES2022'],
          types: ['node'],
          // As most projects do; that the package's .d.ts files import only declared dependencies
          // is checked below, without type-checking all of @types/node and zod (seconds of CPU).
          skipLibCheck: true,
          noEmitOnError: true,
          rootDir: 'examples',
          outDir: 'out',
        },
        include: ['examples'],
      },
      null,
      2,
    )}\n`,
  );

  // The documentation's TypeScript, one file per block: the README's are run, docs/ ones compiled.
  mkdirSync(join(app, 'examples'));
  for (const [file, text] of documentationFiles(root)) {
    for (const block of codeBlocks(text, file)) {
      if (!TS_LANGS.has(block.lang)) continue;
      const stem = file
        .replace(/\.md$/i, '')
        .replace(/[^A-Za-z0-9]+/g, '-')
        .toLowerCase();
      const name = `${stem}-line-${block.line}.ts`;
      writeFileSync(join(app, 'examples', name), block.code);
      examples.set(name, {
        where: `${file}:${block.line}`,
        run: file === 'README.md',
        file,
        line: block.line,
      });
    }
  }
  // A CommonJS module: TypeScript compiles this import to require('inrun').
  writeFileSync(
    join(app, 'examples', 'commonjs.cts'),
    "import { Rng, train } from 'inrun';\nconsole.log(typeof train, new Rng(1).uniform() < 1);\n",
  );
  writeFileSync(
    join(app, 'dynamic-import.cjs'),
    "import('inrun').then(({ train }) => console.log(typeof train));\n",
  );
});

after(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

test('the tarball holds the built package, bin, native sources and install script; no tests or sources', () => {
  for (const required of [
    'package.json',
    'README.md',
    'bin/inrun.js',
    'binding.gyp',
    'native/inrun_blas.c',
    'native/wasm/inrun_kernels.c',
    'scripts/build-native.mjs',
    'scripts/build-wasm.mjs',
    'dist/index.js',
    'dist/index.d.ts',
    'dist/cli/main.js',
    'CHANGELOG.md',
    'LICENSE',
  ])
    assert.ok(tarball.includes(required), `${required} is not in the tarball`);
  const allowed =
    /^(package\.json|README\.md|CHANGELOG\.md|LICEN[CS]E(\.\w+)?|binding\.gyp|scripts\/build-(native|wasm)\.mjs|(bin|dist|native)\/.+)$/;
  assert.deepEqual(
    tarball.filter((path) => !allowed.test(path)),
    [],
    'unexpected files in the tarball (tests, sources, node_modules, build output?)',
  );
  // dist/ is exactly the compiled src/: every module there, nothing left over from deleted ones.
  const fromSources = filesUnder(join(source, 'src'))
    .filter((path) => path.endsWith('.ts'))
    .map((path) => relative(join(source, 'src'), path).split(sep).join('/').replace(/\.ts$/, '.js'))
    .sort();
  const shipped = tarball
    .filter((path) => path.startsWith('dist/') && path.endsWith('.js'))
    .map((path) => path.slice('dist/'.length))
    .sort();
  assert.deepEqual(shipped, fromSources);
  // Source maps would point at src/, which is not shipped.
  assert.deepEqual(
    tarball.filter((path) => path.endsWith('.map')),
    [],
  );
  assert.equal(
    packedManifest.scripts.install,
    'node scripts/build-native.mjs && node scripts/build-wasm.mjs',
  );
});

test('the shipped code and types import only Node built-ins and declared dependencies', () => {
  const undeclared: string[] = [];
  const used = new Set<string>();
  for (const file of filesUnder(join(installed, 'dist')).filter((path) => /\.(js|d\.ts)$/.test(path))) {
    for (const spec of moduleSpecifiers(file, readFileSync(file, 'utf8'))) {
      if (spec.startsWith('.') || isBuiltin(spec)) continue;
      used.add(packageOf(spec));
      if (!(packageOf(spec) in packedManifest.dependencies))
        undeclared.push(`${relative(installed, file)}: ${spec}`);
    }
  }
  // The reader must see the imports it is checking (these two are loaded by `require`).
  for (const name of ['commander', 'gpt-tokenizer', 'mnist']) assert.ok(used.has(name), `${name} not seen`);
  assert.deepEqual(undeclared, [], 'imports of packages that are not dependencies');
});

test('the install script leaves a usable package when the addon cannot be built', () => {
  const script = join(installed, 'scripts', 'build-native.mjs');
  // No node-gyp at all: the PATH holds only an empty folder (node itself is called by its full path).
  const noToolchain = join(tmp, 'no-toolchain');
  mkdirSync(noToolchain);
  const missing = run(process.execPath, [script], installed, childEnv({ PATH: noToolchain }));
  assert.equal(missing.status, 0, missing.stderr);
  assert.match(missing.stderr, /native OpenBLAS kernels were not built; the portable kernels will be used/);
  // A node-gyp that fails (no compiler, no OpenBLAS, headers not downloadable): still exit 0, with the reason.
  const failing = join(tmp, 'failing-toolchain');
  mkdirSync(failing);
  writeFileSync(
    join(failing, 'node-gyp'),
    '#!/bin/sh\necho "gyp ERR! stack Error: not found: make" >&2\nexit 1\n',
    { mode: 0o755 },
  );
  const broken = run(process.execPath, [script], installed, childEnv({ PATH: failing }));
  assert.equal(broken.status, 0, broken.stderr);
  assert.match(broken.stderr, /portable kernels will be used/);
  assert.match(broken.stderr, /inrun: {3}gyp ERR! stack Error: not found: make/);
  const skipped = run(
    process.execPath,
    [script],
    installed,
    childEnv({ PATH: failing, INRUN_SKIP_NATIVE_BUILD: '1' }),
  );
  assert.deepEqual([skipped.status, skipped.stderr], [0, '']);
  assert.ok(!existsSync(join(installed, 'build', 'Release', 'inrun_blas.node')));
  // The same for the WebAssembly kernels when clang is missing.
  const wasmScript = join(installed, 'scripts', 'build-wasm.mjs');
  const noClang = run(process.execPath, [wasmScript], installed, childEnv({ PATH: noToolchain }));
  assert.equal(noClang.status, 0, noClang.stderr);
  assert.match(noClang.stderr, /WebAssembly kernels were not built \(clang not found\)/);
  assert.ok(!existsSync(join(installed, 'build', 'wasm', 'inrun_kernels.wasm')));
});

test('every name the README and docs/ show in code is exported by the package', () => {
  const declared = sourceExports(join(root, 'src'));
  /** name → where it is shown, and whether it must be a runtime value. */
  const shown = new Map<string, { where: string; value: boolean }>();
  const add = (name: string, where: string, value: boolean) => {
    const seen = shown.get(name);
    shown.set(name, { where: seen?.where ?? where, value: value || (seen?.value ?? false) });
  };
  for (const [file, text] of documentationFiles(root)) {
    for (const block of codeBlocks(text, file)) {
      if (!TS_LANGS.has(block.lang) && !JS_LANGS.has(block.lang)) continue;
      for (const { name, typeOnly } of inrunImports(block.code))
        add(name, `${file}:${block.line}`, !typeOnly);
    }
    for (const span of codeSpans(text, file)) {
      const where = `${file}: \`${span}\``;
      for (const { name, typeOnly } of inrunImports(span)) add(name, where, !typeOnly);
      const called = calledName(span);
      // A call in prose names an API function or class, unless it is JavaScript's own.
      if (called !== undefined && !['require', 'import'].includes(called) && !(called in globalThis))
        add(called, where, true);
      // A bare identifier counts when the sources export something of that name (`RUN_FILES`).
      const bare = bareName(span);
      if (bare !== undefined && declared.has(bare)) add(bare, where, declared.get(bare) === 'value');
    }
  }
  assert.ok(shown.size > 20, `only ${shown.size} names found in the documentation`);
  const keys: string[] = JSON.parse(
    succeed(
      process.execPath,
      ['--input-type=module', '-e', "console.log(JSON.stringify(Object.keys(await import('inrun'))))"],
      app,
      childEnv(),
    ),
  );
  const missing = [...shown]
    .filter(([name, { value }]) => value && !keys.includes(name))
    .map(([name, { where }]) => `${name} (${where})`);
  assert.deepEqual(missing, [], 'shown in the documentation but not exported by the package');
  // Types too: re-exporting each name type-only compiles only if the package's types export it.
  const names = [...shown.keys()].filter((name) => name !== 'default').sort();
  writeFileSync(
    join(app, 'examples', 'documented-names.ts'),
    `export type {\n${names.map((name) => `  ${name},`).join('\n')}\n} from 'inrun';\n`,
  );
  examples.set('documented-names.ts', { where: 'names shown in README.md and docs/', run: false });
});

test("the documentation's TypeScript compiles against the installed package (strict, NodeNext)", () => {
  assert.ok(
    [...examples.values()].some((e) => e.run),
    'README.md has no TypeScript example',
  );
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const result = run(process.execPath, [tsc, '-p', join(app, 'tsconfig.json')], app, childEnv());
  // Errors in a block point into the Markdown file: `README.md:52:13: error TS2304: …`.
  const located = result.stdout.replace(/examples\/([\w.-]+)\((\d+),(\d+)\)/g, (all, name, row, column) => {
    const example = examples.get(name);
    if (example?.file === undefined || example.line === undefined) return all;
    return `${example.file}:${example.line + Number(row)}:${column}`;
  });
  assert.equal(result.status, 0, `tsc failed:\n${located}${result.stderr}`);
});

test("the README's TypeScript examples run", () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  let flippedClaims = 0;
  for (const [name, { where, run: runs }] of examples) {
    if (!runs) continue;
    const script = join(app, 'out', name.replace(/\.ts$/, '.js'));
    assert.ok(existsSync(script), `${where} was not compiled`);
    const result = run(process.execPath, [script], app, childEnv());
    assert.equal(result.status, 0, `${where} failed:\n${result.stdout}${result.stderr}`);
    assert.notEqual(result.stdout.trim(), '', `${where} printed nothing`);
    assert.doesNotMatch(result.stdout, /\bNaN\b|\bundefined\b/, `${where} printed:\n${result.stdout}`);
    // The library example's point: flipped labels get the lowest values, and the README says how many.
    const claim = /^(\d+) of the (\d+) lowest-valued examples have flipped labels$/m.exec(result.stdout);
    if (claim) {
      flippedClaims++;
      assert.ok(Number(claim[1]) >= Number(claim[2]) / 2, `${where}: ${claim[0]}`);
      assert.ok(
        readme.includes(`\`${claim[0]}\``),
        `README.md does not quote what ${where} prints: ${claim[0]}`,
      );
    }
  }
  assert.equal(flippedClaims, 1, 'the library example no longer reports the flipped labels it finds');
});

test('CommonJS: require() loads the package where Node supports it, and import() always does', () => {
  const compiled = join(app, 'out', 'commonjs.cjs');
  const required = run(process.execPath, [compiled], app, childEnv());
  if ((process.features as { require_module?: boolean }).require_module) {
    assert.deepEqual([required.status, required.stdout], [0, 'function true\n'], required.stderr);
    // What the README tells users of Node versions without require(esm).
    const disabled = run(process.execPath, ['--no-experimental-require-module', compiled], app, childEnv());
    assert.notEqual(disabled.status, 0);
    assert.match(disabled.stderr, /ERR_REQUIRE_ESM/);
  } else {
    assert.notEqual(required.status, 0);
    assert.match(required.stderr, /ERR_REQUIRE_ESM/);
  }
  const imported = run(process.execPath, [join(app, 'dynamic-import.cjs')], app, childEnv());
  assert.deepEqual([imported.status, imported.stdout], [0, 'function\n'], imported.stderr);
});

test('the installed command runs', () => {
  const bin = join(installed, 'bin', 'inrun.js');
  assert.equal(succeed(process.execPath, [bin, '--version'], app, childEnv()).trim(), packedManifest.version);
  assert.match(succeed(process.execPath, [bin, '--help'], app, childEnv()), /\btrain\b/);
});
