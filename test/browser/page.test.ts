// The web page end to end in a real browser (Debian's chromium through playwright-core): build it,
// serve it, run the digits to the end and check what it shows against the same run in Node, feed
// it a broken CSV, and walk its controls with the keyboard. Screenshots go to build/artifacts/.
//
// Without a browser the tests are skipped with the reason, except in CI (CI=true), where that is
// a failure: .ci/run installs chromium. INRUN_CHROMIUM names another Chromium binary.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type Browser, chromium, type Page } from 'playwright-core';
import { buildWeb, serveWeb } from '../../scripts/build-web.mjs';
import { PAGE_DIGITS_SETTINGS, startPageRun } from '../../src/browser/page-run.js';
import { decodeDigitsAsset } from '../../src/data/digits-asset.js';
import { parseCsv } from '../../src/data/readers/csv.js';
import { loadRunArchive, RUN_FILES } from '../../src/io/run-dir.js';
import { createPortableKernels } from '../../src/kernels/portable.js';
import type { Kernels } from '../../src/kernels/types.js';
import { createWasmKernels } from '../../src/kernels/wasm.js';
import { packageVersion } from '../../src/util/version.js';

const root = join(import.meta.dirname, '..', '..');
const OUT = join(root, 'build', 'test-web');
const ARTIFACTS = join(root, 'build', 'artifacts');
const CHROMIUM = process.env.INRUN_CHROMIUM ?? '/usr/bin/chromium';
const IN_CI = process.env.CI === 'true';

const missing = existsSync(CHROMIUM)
  ? null
  : `no Chromium at ${CHROMIUM}: install it (Debian/Ubuntu: apt-get install chromium) or set INRUN_CHROMIUM`;
// In CI a missing browser fails every test (through `before`) instead of skipping them.
const skip = missing !== null && !IN_CI ? missing : false;

let browser: Browser;
let url: string;
let close: () => Promise<void>;
let wasmBuilt = false;

before(async () => {
  if (missing && IN_CI)
    throw new Error(`the browser tests must run in CI (CI=true), but there is ${missing}`);
  if (missing) return;
  ({ wasm: wasmBuilt } = await buildWeb({ outdir: OUT }));
  ({ url, close } = await serveWeb({ dir: OUT, port: 0 }));
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    // Chromium's sandbox refuses to run as root (CI containers).
    args: process.getuid?.() === 0 ? ['--no-sandbox'] : [],
  });
  mkdirSync(ARTIFACTS, { recursive: true });
});

after(async () => {
  await browser?.close();
  await close?.();
});

/** A fresh page that records console errors, CSP reports and every request it makes. */
async function openPage(width = 1280): Promise<{ page: Page; problems: string[]; requests: string[] }> {
  const page = await browser.newPage({ viewport: { width, height: 900 }, acceptDownloads: true });
  const problems: string[] = [];
  const requests: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(message.text());
  });
  page.on('pageerror', (error) => problems.push(error.message));
  page.on('request', (request) => requests.push(request.url()));
  page.on('worker', (worker) =>
    worker.on('console', (message) => {
      if (message.type() === 'error') problems.push(`worker: ${message.text()}`);
    }),
  );
  await page.goto(url);
  // The worker reports its kernels once loaded.
  await page.waitForFunction(() => document.getElementById('kernels')?.dataset.kernels !== undefined);
  return { page, problems, requests };
}

const text = async (page: Page, selector: string) => (await page.textContent(selector))?.trim() ?? '';

/** values.csv as rows of cells by column. */
function readValues(csv: string): { columns: string[]; rows: Record<string, unknown>[] } {
  const { columns, rows } = parseCsv(csv, 'values.csv');
  return { columns, rows: rows.map((row) => row.cells) };
}

test('the digits run to the end in the page: flipped labels found, values equal to the same run in Node', {
  skip,
  timeout: 150_000,
}, async (t) => {
  const { page, problems, requests } = await openPage();
  const kernelsKind = await page.evaluate(() => document.getElementById('kernels')?.dataset.kernels);
  assert.equal(
    kernelsKind,
    wasmBuilt ? 'wasm' : 'portable',
    'the page uses the wasm kernels exactly when they are built',
  );

  // Start from the keyboard.
  await page.focus('#start');
  const started = performance.now();
  await page.keyboard.press('Enter');
  // Pause once it has trained a few steps: the progress holds still until Resume.
  await page.waitForFunction(
    () => Number((document.getElementById('progress') as HTMLProgressElement).value) >= 3,
  );
  await page.click('#pause');
  await page.waitForFunction(() =>
    document.getElementById('status')?.textContent?.startsWith('Paused after step'),
  );
  const pausedAt = await page.evaluate(
    () => (document.getElementById('progress') as HTMLProgressElement).value,
  );
  await page.waitForTimeout(700);
  assert.equal(
    await page.evaluate(() => (document.getElementById('progress') as HTMLProgressElement).value),
    pausedAt,
  );
  assert.equal(await text(page, '#pause'), 'Resume');
  await page.click('#pause');
  await page.waitForFunction(
    () =>
      document.getElementById('status')?.textContent?.startsWith('Done') ||
      document.getElementById('run-error')?.textContent !== '',
    null,
    { timeout: 120_000 },
  );
  const seconds = (performance.now() - started) / 1000;
  assert.equal(await text(page, '#run-error'), '');
  assert.ok(
    seconds < 60,
    `the digits run took ${seconds.toFixed(1)} s in the page; it must finish within a minute`,
  );
  const auroc = Number(await text(page, '#auroc'));
  assert.ok(auroc >= 0.85, `AUROC for the flipped labels is ${auroc}`);
  assert.equal(await page.locator('#harmful li').count(), 10);
  assert.equal(await page.locator('#harmful canvas').count(), 10, 'each harmful digit is drawn');
  assert.match(await text(page, '#loss-text'), /^After 64 steps: validation loss/);
  await page.screenshot({ path: join(ARTIFACTS, 'page-desktop.png'), fullPage: true });

  const [valuesDownload] = await Promise.all([page.waitForEvent('download'), page.click('#download-values')]);
  const pageCsv = readFileSync((await valuesDownload.path())!, 'utf8');
  const [runDownload] = await Promise.all([page.waitForEvent('download'), page.click('#download-run')]);
  const zip = join(ARTIFACTS, 'run.zip');
  await runDownload.saveAs(zip);

  // The same run in Node: the page's library function, the page's asset, the page's kernels.
  const kernels: Kernels = wasmBuilt
    ? createWasmKernels(readFileSync(join(OUT, 'inrun_kernels.wasm')))
    : createPortableKernels();
  const { run } = await startPageRun(PAGE_DIGITS_SETTINGS, {
    kernels,
    digitImages: decodeDigitsAsset(readFileSync(join(OUT, 'digits.bin')), 'digits.bin'),
    inrunVersion: packageVersion(),
    runtime: process.version,
  });
  while (!run.done) run.step();
  const nodeCsv = run.files()[RUN_FILES.valuesCsv] as string;
  const fromPage = readValues(pageCsv);
  const fromNode = readValues(nodeCsv);
  assert.deepEqual(fromPage.columns, fromNode.columns);
  assert.equal(fromPage.rows.length, 2000);
  let worst = 0;
  fromPage.rows.forEach((row, i) => {
    const other = fromNode.rows[i];
    assert.equal(row.id, other.id, `row ${i}`);
    for (const column of fromPage.columns.slice(2)) {
      const [a, b] = [row[column], other[column]];
      if (a === '' || b === '') {
        assert.equal(a, b, `${row.id} ${column}`);
        continue;
      }
      // Same code on the same kernels in another JavaScript engine build: equal to float32
      // round-off (2⁻²³ ≈ 1.2e-7 relative), with an absolute floor for values that cancel to ~0.
      const [x, y] = [Number(a), Number(b)];
      const scale = Math.max(Math.abs(x), Math.abs(y));
      worst = Math.max(worst, Math.abs(x - y) / Math.max(scale, 1e-9));
      assert.ok(Math.abs(x - y) <= 1e-6 * scale + 1e-12, `${row.id} ${column}: page ${a}, Node ${b}`);
    }
  });
  // The archive holds the same values, and reads back as a run.
  const archived = await loadRunArchive(zip);
  assert.equal(archived.values.length, 2000);
  assert.equal(archived.manifest.kernels, run.manifest.kernels);
  t.diagnostic(
    `${kernelsKind} kernels: ${seconds.toFixed(1)} s in the page, AUROC ${auroc}, largest relative difference to Node ${worst.toExponential(1)}`,
  );

  assert.deepEqual(problems, [], 'no console errors or CSP violations');
  const foreign = requests.filter(
    (r) => !r.startsWith(url) && !r.startsWith('blob:') && !r.startsWith('data:'),
  );
  assert.deepEqual(foreign, [], 'the page requests nothing outside its own folder');
  await page.close();
});

test('a malformed CSV shows the CLI’s own message; Stop ends a run', { skip, timeout: 60_000 }, async () => {
  const { page } = await openPage();
  await page.check('#source-file');
  const broken = 'id,x,label\n1,0.5,a\n2,0.7\n';
  let expected = '';
  try {
    parseCsv(broken, 'broken.csv');
  } catch (error) {
    expected = (error as Error).message;
  }
  assert.match(expected, /^broken\.csv: line 3: missing columns/);
  await page.setInputFiles('#file', {
    name: 'broken.csv',
    mimeType: 'text/csv',
    buffer: Buffer.from(broken),
  });
  await page.waitForFunction(() => document.getElementById('file-error')?.textContent !== '');
  assert.equal(await text(page, '#file-error'), expected);
  assert.equal(await page.getAttribute('#file-error', 'role'), 'alert');
  // Start is refused with a message that names the field.
  await page.click('#start');
  assert.equal(await text(page, '#run-error'), 'Data: broken.csv could not be read; choose another file');

  // A good table: its columns fill the selects; a run can be stopped.
  const rows = Array.from({ length: 400 }, (_, i) => `r${i},${(i % 7) / 7},${(i % 5) / 5},${i % 2}`);
  await page.setInputFiles('#file', {
    name: 'good.csv',
    mimeType: 'text/csv',
    buffer: Buffer.from(`id,a,b,label\n${rows.join('\n')}\n`),
  });
  await page.waitForFunction(() => !(document.getElementById('label-column') as HTMLSelectElement).disabled);
  assert.equal(await page.inputValue('#label-column'), 'label');
  assert.equal(await page.inputValue('#id-column'), 'id');
  assert.equal(await text(page, '#file-error'), '');
  await page.fill('#epochs', '500');
  await page.click('#start');
  await page.waitForFunction(
    () => Number((document.getElementById('progress') as HTMLProgressElement).value) >= 2,
  );
  await page.click('#stop');
  await page.waitForFunction(() =>
    document.getElementById('status')?.textContent?.startsWith('Stopped after step'),
  );
  assert.equal(await page.isEnabled('#start'), true);
  assert.equal(await page.isHidden('#results-body'), true, 'a stopped run offers nothing to download');
  await page.close();
});

test('every control is labelled and reachable with Tab; the page fits a phone’s width', {
  skip,
  timeout: 60_000,
}, async () => {
  const { page } = await openPage(375);
  const controls = [
    'source-digits',
    'source-file',
    'model',
    'hidden',
    'optimizer',
    'lr',
    'epochs',
    'batch-size',
    'seed',
    'order-2',
    'start',
  ];
  for (const id of controls)
    assert.ok(
      (await page.locator(`label[for="${id}"]`).count()) > 0 || id === 'start',
      `#${id} has no label`,
    );
  assert.equal(await page.getByLabel('Learning rate').getAttribute('id'), 'lr');
  const reached = new Set<string>();
  for (let k = 0; k < 40 && reached.size < controls.length + 5; k++) {
    await page.keyboard.press('Tab');
    const id = await page.evaluate(() => document.activeElement?.id ?? '');
    if (id) reached.add(id);
  }
  for (const id of controls.filter((c) => c !== 'source-file' && c !== 'order-2'))
    assert.ok(reached.has(id), `Tab never reaches #${id} (reached: ${[...reached].join(', ')})`);
  // Radio groups take one Tab stop; the arrow keys move within them.
  await page.focus('#source-digits');
  await page.keyboard.press('ArrowDown');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'source-file');
  assert.equal(await page.isVisible('#file'), true, 'choosing your own table shows the file field');
  for (const chart of ['loss-chart', 'utility-chart', 'histogram-chart']) {
    assert.equal(await page.getAttribute(`#${chart}`, 'role'), 'img');
    const described = await page.getAttribute(`#${chart}`, 'aria-describedby');
    assert.ok(described && (await text(page, `#${described}`)) !== '', `${chart} has a text description`);
  }
  assert.equal(await page.getAttribute('#status', 'aria-live'), 'polite');
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow} px wider than a 375 px screen`);
  await page.screenshot({ path: join(ARTIFACTS, 'page-phone.png'), fullPage: true });
  await page.close();
});

test('without the WebAssembly kernels the page trains on the portable ones and says why', {
  skip,
  timeout: 30_000,
}, async () => {
  const page = await browser.newPage();
  await page.route('**/inrun_kernels.wasm', (route) => route.fulfill({ status: 404, body: 'missing' }));
  await page.goto(url);
  await page.waitForFunction(() => document.getElementById('kernels')?.dataset.kernels !== undefined);
  assert.equal(await page.evaluate(() => document.getElementById('kernels')?.dataset.kernels), 'portable');
  assert.match(
    await text(page, '#kernels'),
    /Kernels: portable TypeScript \(the WebAssembly kernels did not load \(.*HTTP 404.*\); training uses the portable TypeScript kernels\)/,
  );
  await page.close();
});
