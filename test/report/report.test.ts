import assert from 'node:assert/strict';
import { test } from 'node:test';
import { inflateSync } from 'node:zlib';
import { TensorDataset } from '../../src/data/dataset.js';
import { mlp } from '../../src/models/builders.js';
import { sgd } from '../../src/optim/sgd.js';
import {
  escapeHtml,
  grayscalePng,
  histogram,
  jsonForScript,
  type ReportInput,
  removalCurve,
  renderReport,
  reportInputFromTrainer,
  stepsToReach,
  validationLossCurve,
} from '../../src/report/index.js';
import { train } from '../../src/train/trainer.js';
import { Rng } from '../../src/util/rng.js';

function blobs(n: number, seed: number, prefix: string, flip = 0) {
  const rng = new Rng(seed);
  const d = 5;
  const features = new Float64Array(n * d);
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    const y = rng.int(3);
    for (let k = 0; k < d; k++) features[i * d + k] = rng.normal() + (k === y ? 1.5 : 0);
    labels.push(rng.uniform() < flip ? (y + 1) % 3 : y);
  }
  return new TensorDataset({
    name: prefix,
    features,
    width: d,
    labels,
    labelKind: 'class',
    ids: labels.map((_, i) => `${prefix}${i}`),
    groups: labels.map((_, i) => (i % 3 === 0 ? 'web' : 'books')),
  });
}

const MALICIOUS_ID = '"><script>alert("id")</script><img src=x onerror=alert(1)>';
const MALICIOUS_TEXT = '</script><script>alert("text")</script> & <b>bold</b>';

function trainedInput(): ReportInput {
  const data = blobs(90, 1, 'e', 0.15);
  const validation = blobs(30, 2, 'v');
  const trainer = train({
    model: mlp({ inputs: 5, hidden: [8], outputs: 3, seed: 3 }),
    optimizer: sgd({ lr: 0.1, momentum: 0.9 }),
    data,
    batchSize: 16,
    epochs: 3,
    valuation: { validation, order: 2, stageStarts: [6, 12] },
  });
  return reportInputFromTrainer(trainer, {
    title: 'Blobs <run> & "friends"',
    subtitle: 'synthetic',
    config: { lr: 0.1, evil: '</script><script>alert(3)</script>' },
    content: (id) => ({ kind: 'text', text: `example ${id}: ${MALICIOUS_TEXT}` }),
    topCount: 5,
  });
}

function embeddedData(html: string): Record<string, unknown> {
  const m = html.match(/<script type="application\/json" id="inrun-report-data">([^<]*)<\/script>/);
  assert.ok(m, 'the data script is present and holds no "<"');
  return JSON.parse(m[1]) as Record<string, unknown>;
}

test('report: a real training run renders every section, embeds its data, and loads nothing from the network', () => {
  const input = trainedInput();
  // The most harmful example gets a hostile id, so it is listed (and must be escaped).
  const order = input.values.slice().sort((a, b) => a.secondOrder! - b.secondOrder!);
  order[0].id = MALICIOUS_ID;
  order[0].group = '<img src=x onerror=alert(2)>';
  const html = renderReport(input);

  assert.match(html, /^<!doctype html>/);
  for (const id of [
    'summary',
    'distribution',
    'examples',
    'groups',
    'stages',
    'efficiency',
    'removal',
    'curation',
    'config',
  ])
    assert.match(html, new RegExp(`<section id="${id}">`), id);
  for (const chart of [
    'histogram',
    'groups-cumulative',
    'groups-stages',
    'efficiency-lines',
    'efficiency-errors',
    'efficiency-scatter',
    'removal',
    'training',
  ])
    assert.match(html, new RegExp(`data-chart="${chart}"`), chart);
  assert.doesNotMatch(html, /data-chart="curation"/, 'no curation chart without a comparison');

  // Self-contained: exactly three inline scripts (data, uPlot, charts), no external resources.
  assert.equal((html.match(/<script\b/gi) ?? []).length, 3);
  assert.doesNotMatch(html, /<script[^>]*\ssrc\s*=/i);
  assert.doesNotMatch(html, /<link\b/i);
  assert.doesNotMatch(html, /\s(?:src|href)\s*=\s*["']?\s*(?:https?:)?\/\//i);
  assert.doesNotMatch(html, /url\(\s*["']?\s*(?:https?:)?\/\//i);
  assert.match(html, /Content-Security-Policy/);
  assert.match(html, /var uPlot=/, 'uPlot is inlined');

  // Escaping: none of the hostile strings appears raw; their escaped forms do.
  assert.ok(!html.includes(MALICIOUS_ID));
  assert.ok(!html.includes('<img src=x'));
  assert.ok(!html.includes(MALICIOUS_TEXT));
  assert.ok(html.includes(escapeHtml(MALICIOUS_ID)));
  assert.ok(html.includes(escapeHtml('<img src=x onerror=alert(2)>')));
  assert.ok(html.includes('Blobs &lt;run&gt; &amp; &quot;friends&quot;'));
  assert.ok(html.includes('&lt;/script&gt;&lt;script&gt;alert(&quot;text&quot;)'));

  // The embedded data describes this run.
  const data = embeddedData(html) as {
    examples: number;
    steps: number;
    histogram: { negative: (number | null)[]; positive: (number | null)[] };
    removal: { total: number; negatives: number; fraction: number[] };
    trace: { step: number[] };
    groups: { series: { group: string; cumulative: number[] }[]; stepEnds: number[] };
    stats: { maxAbsResidual: number };
  };
  assert.equal(data.examples, 90);
  assert.equal(data.steps, input.trace.length);
  assert.equal(data.trace.step.length, input.trace.length);
  const counted = [...data.histogram.negative, ...data.histogram.positive].reduce<number>(
    (a, b) => a + (b ?? 0),
    0,
  );
  assert.equal(counted, 90);
  const total = input.values.reduce((a, v) => a + v.secondOrder!, 0);
  assert.ok(Math.abs(data.removal.total - total) < 1e-9 * (1 + Math.abs(total)));
  assert.equal(data.removal.negatives, input.values.filter((v) => v.secondOrder! < 0).length);
  assert.deepEqual(data.groups.series.map((s) => s.group).sort(), [
    '<img src=x onerror=alert(2)>',
    'books',
    'web',
  ]);
  assert.deepEqual(data.groups.stepEnds, [0, 6, 12, input.trace.length]);
  assert.ok(data.stats.maxAbsResidual < 1e-6);
  // Listed examples show their content.
  assert.match(html, /<span class="snippet">example /);
});

test('report: a curation comparison adds its chart and table; images embed as PNG data URLs', () => {
  const input = trainedInput();
  const curve = validationLossCurve(input.trace);
  const target = curve[curve.length - 1];
  const faster = curve.map((x, k) => (k === 0 ? x : x * 0.97));
  input.values[0].content = {
    kind: 'image',
    pixels: Array.from({ length: 16 }, (_, i) => i),
    width: 4,
    height: 4,
  };
  input.topCount = 90;
  input.curation = {
    format: 'inrun-curation',
    formatVersion: 1,
    runDir: '/tmp/run',
    rule: { kind: 'negatives', description: 'value < 0 (the negatives)' },
    valueColumn: 'second_order',
    totalExamples: 90,
    removed: 9,
    removedValue: -0.1,
    randomSeed: 0,
    steps: curve.length - 1,
    targetValidationLoss: target,
    runs: {
      original: {
        name: 'original',
        examples: 90,
        removed: 0,
        validationLoss: curve,
        finalValidationLoss: target,
        bestValidationLoss: Math.min(...curve),
        stepsToTarget: stepsToReach(curve, target),
      },
      curated: {
        name: 'curated',
        examples: 81,
        removed: 9,
        validationLoss: faster,
        finalValidationLoss: faster.at(-1)!,
        bestValidationLoss: Math.min(...faster),
        stepsToTarget: stepsToReach(faster, target),
      },
      random: {
        name: 'random',
        examples: 81,
        removed: 9,
        validationLoss: curve.map((x) => x * 1.5),
        finalValidationLoss: target * 1.5,
        bestValidationLoss: Math.min(...curve) * 1.5,
        stepsToTarget: null,
      },
    },
  };
  const html = renderReport(input);
  assert.match(html, /data-chart="curation"/);
  assert.match(html, /value &lt; 0 \(the negatives\)/);
  assert.match(html, /not reached/);
  assert.match(html, /<img class="px" alt="" src="data:image\/png;base64,[A-Za-z0-9+/=]+"/);
  const data = embeddedData(html) as { curation: { step: number[]; original: number[]; target: number[] } };
  assert.equal(data.curation.step[0], 0);
  assert.equal(data.curation.step.at(-1), curve.length - 1);
  assert.equal(data.curation.target[0], target);
});

test('report: escaping helpers', () => {
  assert.equal(escapeHtml(`<a href="x">'&'</a>`), '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  const text = jsonForScript({ s: '</script><!-- \u2028', n: Number.NaN });
  assert.ok(!text.includes('<') && !text.includes('>') && !text.includes('\u2028'));
  assert.deepEqual(JSON.parse(text), { s: '</script><!-- \u2028', n: null });
});

test('report: histogram splits at 0, removal curve peaks after the negatives, steps to reach a loss', () => {
  const values = [-3, -1, -0.5, 0, 0.2, 0.4, 1, 2, 5];
  const h = histogram(values, 8);
  assert.ok(h.edges.includes(0));
  const n = [...h.negative, ...h.positive].reduce<number>((a, b) => a + (b ?? 0), 0);
  assert.equal(n, values.length);
  assert.equal(
    h.negative.reduce<number>((a, b) => a + (b ?? 0), 0),
    3,
  );

  const r = removalCurve(values);
  assert.equal(r.negatives, 3);
  assert.equal(r.total, 4.1);
  assert.ok(Math.abs(r.peak.remaining - 8.6) < 1e-12);
  assert.ok(Math.abs(r.peak.fraction - 3 / 9) < 1e-12 || Math.abs(r.peak.fraction - 4 / 9) < 1e-12);
  assert.equal(r.fraction[0], 0);
  assert.equal(r.fraction.at(-1), 1);
  assert.equal(r.remaining.at(-1), 0);

  assert.equal(stepsToReach([3, 2, 1.5, 1, 1.2], 1.5), 2);
  assert.equal(stepsToReach([3, 2], 1), null);
});

test('report: grayscale PNG has a valid signature, header and pixel data', () => {
  const png = grayscalePng([0, 0.5, 1, 0.25], 2, 2, [0, 1]);
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const view = new DataView(png.buffer, png.byteOffset);
  assert.equal(String.fromCharCode(...png.subarray(12, 16)), 'IHDR');
  assert.equal(view.getUint32(16), 2);
  assert.equal(view.getUint32(20), 2);
  const idatLength = view.getUint32(33);
  assert.equal(String.fromCharCode(...png.subarray(37, 41)), 'IDAT');
  const raw = inflateSync(png.subarray(41, 41 + idatLength));
  assert.deepEqual([...raw], [0, 0, 128, 0, 255, 64]);
});
