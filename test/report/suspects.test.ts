// The report's suspects section (the top of suspects.csv) and per-example signals: Spearman
// correlations with the value, AUM and self-influence in the value lists, value ± standard error
// (validationBatch), the value with momentum credit; and runs without any of them (regression,
// older run directories).
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadRun, parseSuspectsCsv, RUN_FILES } from '../../src/io/run-dir.js';
import { formatNumber } from '../../src/report/escape.js';
import { escapeHtml, renderReport, spearman, writeRunReport } from '../../src/report/index.js';
import type { ReportInput } from '../../src/report/types.js';
import { copyRun, dataDir, finishedRun, makeFormat1 } from '../cli/fixtures/run-dirs.js';
import { tempDir } from '../cli/fixtures/train-data.js';

const data = dataDir('inrun-suspects-');
const classification = finishedRun(data, join(data, 'classification'));
const TOP = 5;

async function report(runDir: string, top = TOP, image?: { width: number; height: number }): Promise<string> {
  const out = join(tempDir('inrun-suspects-report-'), 'report.html');
  await writeRunReport({ runDir, out, top, image });
  return readFileSync(out, 'utf8');
}

function section(html: string, id: string): string | null {
  const start = html.indexOf(`<section id="${id}">`);
  return start < 0 ? null : html.slice(start, html.indexOf('</section>', start));
}

function embeddedData(html: string): Record<string, unknown> {
  const m = html.match(/<script type="application\/json" id="inrun-report-data">([^<]*)<\/script>/);
  assert.ok(m);
  return JSON.parse(m[1]) as Record<string, unknown>;
}

/** The rows of the harmful list: the value cell's text and every cell after it, by header. */
function harmfulRows(html: string): Record<string, string>[] {
  const examples = section(html, 'examples')!;
  const table = examples.slice(examples.indexOf('Most harmful'), examples.indexOf('Most helpful'));
  const head = [...table.matchAll(/<th[^>]*>([^<]*)<\/th>/g)].map((m) => m[1]);
  return [...table.matchAll(/<tr><td[\s\S]*?<\/tr>/g)].map((row) => {
    const cells = [...row[0].matchAll(/<td[^>]*>([\s\S]*?)<\/td>/g)].map((m) => m[1].replace(/<[^>]+>/g, ''));
    return Object.fromEntries(head.map((h, k) => [h, cells[k]]));
  });
}

/** Independent Spearman: ranks by counting (ties share their mean rank), then Pearson's formula. */
function referenceSpearman(xs: number[], ys: number[]): number {
  const rank = (v: number[]) =>
    v.map((x) => v.filter((y) => y < x).length + (v.filter((y) => y === x).length + 1) / 2);
  const a = rank(xs);
  const b = rank(ys);
  const n = a.length;
  const ma = a.reduce((s, x) => s + x, 0) / n;
  const mb = b.reduce((s, x) => s + x, 0) / n;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) ** 2;
    sbb += (b[i] - mb) ** 2;
  }
  return sab / Math.sqrt(saa * sbb);
}

function valuesJsonl(runDir: string): Record<string, number | string | null>[] {
  return readFileSync(join(runDir, RUN_FILES.valuesJsonl), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, number | string | null>);
}

test('report: a classification run lists the top of suspects.csv in its order, with predictions, ranks and content', async () => {
  const runDir = await classification;
  const html = await report(runDir);
  const [header, ...lines] = readFileSync(join(runDir, RUN_FILES.suspects), 'utf8').trim().split('\n');
  const columns = header.split(',');
  const csv = lines.map((line) => Object.fromEntries(line.split(',').map((cell, k) => [columns[k], cell])));

  assert.match(
    html,
    /<nav>.*<a href="#examples">Examples<\/a><a href="#suspects">Suspects<\/a><a href="#signals">/,
  );
  const suspects = section(html, 'suspects');
  assert.ok(suspects, 'the section is there');
  assert.ok(html.indexOf('<section id="suspects">') > html.indexOf('<section id="examples">'));
  assert.match(
    suspects,
    /Lowest area under the margin first: examples the model kept classifying against their given label/,
  );
  assert.match(suspects, /<code>inrun evaluate<\/code> measures which signal finds bad data best/);
  assert.match(suspects, new RegExp(`The ${TOP} most suspicious of the ${csv.length} examples`));
  const rows = [
    ...suspects.matchAll(
      /<tr><td class="num">(\d+)<\/td><td class="id">([^<]*)<\/td><td class="label">([^<]*)<\/td><td class="predicted">(?:<span class="neg">)?([^<]*)/g,
    ),
  ].map((m) => ({ rank: m[1], id: m[2], label: m[3], predicted: m[4] }));
  assert.deepEqual(
    rows,
    csv.slice(0, TOP).map((r) => ({ rank: r.rank, id: r.id, label: r.label, predicted: r.predicted })),
  );
  // Every signal's rank is shown (the file's order: rank_aum is the rank), and the content as in the value lists.
  for (const name of ['AUM', 'mean loss', 'self-influence', 'value', 'normalized', 'forgetting'])
    assert.match(suspects, new RegExp(`<th class="num">${name}</th>`));
  const firstRow = suspects.slice(suspects.indexOf('<tr><td class="num">1</td>'));
  const shownRanks = [
    ...firstRow.slice(0, firstRow.indexOf('</tr>')).matchAll(/<td class="num(?: top)?">(\d+)<\/td>/g),
  ]
    .map((m) => m[1])
    .slice(1);
  assert.deepEqual(
    shownRanks,
    columns.filter((c) => c.startsWith('rank_')).map((c) => csv[0][c]),
  );
  assert.equal((suspects.match(/<span class="snippet">label=\d, x1=/g) ?? []).length, TOP);
  // --top sets how many are listed; with --image the suspects are drawn like the value lists' examples.
  const more = section(await report(runDir, 9, { width: 2, height: 2 }), 'suspects')!;
  assert.equal((more.match(/<td class="id">/g) ?? []).length, 9);
  assert.equal(
    (more.match(/<td class="content"><img class="px" alt="" src="data:image\/png;base64,/g) ?? []).length,
    9,
  );

  // The value lists carry AUM and self-influence; no ± and no momentum column without them.
  const harmful = harmfulRows(html);
  assert.equal(harmful.length, TOP);
  const byId = new Map(valuesJsonl(runDir).map((v) => [String(v.id), v]));
  for (const row of harmful) {
    const v = byId.get(row.id)!;
    assert.equal(row.AUM, formatNumber(v.aum as number));
    assert.equal(row['self-influence'], formatNumber(v.self_influence as number));
    assert.equal(row.value, formatNumber(v.second_order as number));
  }
  assert.doesNotMatch(section(html, 'examples')!, /±|momentum credit/);
});

test('report: the Spearman correlations of the value with each signal match an independent computation from values.jsonl', async () => {
  const runDir = await classification;
  const html = await report(runDir);
  const rows = valuesJsonl(runDir);
  const correlations = embeddedData(html).correlations as {
    signal: string;
    spearman: number;
    examples: number;
  }[];
  assert.deepEqual(
    correlations.map((c) => c.signal),
    // class_value is opt-in (classValues): not measured here, so not listed.
    ['aum', 'self_influence', 'mean_loss', 'forgetting_events', 'times_correct'],
  );
  const signals = section(html, 'signals')!;
  for (const c of correlations) {
    const both = rows.filter((r) => typeof r[c.signal] === 'number');
    const expected = referenceSpearman(
      both.map((r) => r.second_order as number),
      both.map((r) => r[c.signal] as number),
    );
    assert.equal(c.examples, both.length, c.signal);
    if (Number.isNaN(expected)) assert.equal(c.spearman, null, c.signal);
    else assert.ok(Math.abs(c.spearman - expected) < 1e-12, `${c.signal}: ${c.spearman} vs ${expected}`);
    // The table shows it.
    assert.ok(signals.includes(`<td class="num">${c.examples}</td>`), c.signal);
  }
  const aum = correlations.find((c) => c.signal === 'aum')!;
  assert.ok(signals.includes(escapeHtml(formatNumber(aum.spearman))));
});

test('spearman: ties share their mean rank; fewer than 2 pairs or a constant sample give NaN', () => {
  assert.equal(spearman([1, 2, 3, 4], [10, 20, 30, 40]), 1);
  assert.equal(spearman([1, 2, 3, 4], [4, 3, 2, 1]), -1);
  const xs = [0.3, -1, 2, 2, 5, 0];
  const ys = [1, 1, 0, 3, 3, 2];
  assert.ok(Math.abs(spearman(xs, ys) - referenceSpearman(xs, ys)) < 1e-15);
  assert.ok(Number.isNaN(spearman([1], [2])));
  assert.ok(Number.isNaN(spearman([1, 2, 3], [5, 5, 5])));
});

test('report: a regression run has no suspects section (and no error), and no margins', async () => {
  const runDir = await finishedRun(data, join(data, 'regression'), { task: 'regression' });
  assert.equal((await loadRun(runDir)).suspects, null);
  const html = await report(runDir);
  assert.equal(section(html, 'suspects'), null);
  assert.doesNotMatch(html, /href="#suspects"/);
  // Self-influence and the mean loss exist for regression; the area under the margin does not.
  const correlations = embeddedData(html).correlations as { signal: string }[];
  assert.deepEqual(
    correlations.map((c) => c.signal),
    ['self_influence', 'mean_loss'],
  );
  const harmful = harmfulRows(html);
  assert.ok(!('AUM' in harmful[0]));
  assert.ok('self-influence' in harmful[0]);
});

test('report: with validationBatch the value lists show value ± standard error, and the value with momentum credit', async () => {
  const runDir = await finishedRun(data, join(data, 'sampled'), {
    validationBatch: 8,
    momentumCredit: true,
    checkpointEvery: 0,
  });
  const html = await report(runDir);
  const byId = new Map(valuesJsonl(runDir).map((v) => [String(v.id), v]));
  const harmful = harmfulRows(html);
  assert.equal(harmful.length, TOP);
  assert.match(section(html, 'examples')!, /<th class="num">value ± standard error<\/th>/);
  assert.match(section(html, 'examples')!, /validationBatch/);
  for (const row of harmful) {
    const v = byId.get(row.id)!;
    assert.equal(typeof v.standard_error, 'number');
    assert.equal(
      row['value ± standard error'],
      `${formatNumber(v.second_order as number)} ± ${formatNumber(v.standard_error as number)}`,
    );
    assert.equal(
      row['first order + momentum credit'],
      formatNumber((v.first_order as number) + (v.momentum_credit as number)),
    );
  }
});

test('report: an older run directory without suspects.csv and without signal columns still renders', async () => {
  const old = copyRun(await classification, join(tempDir('inrun-suspects-old-'), 'run'));
  rmSync(join(old, RUN_FILES.suspects));
  const signalColumns = [
    'self_influence',
    'mean_loss',
    'aum',
    'forgetting_events',
    'times_correct',
    'class_value',
    'standard_error',
    'momentum_credit',
  ];
  const rows = valuesJsonl(old).map((row) =>
    Object.fromEntries(Object.entries(row).filter(([k]) => !signalColumns.includes(k))),
  );
  writeFileSync(join(old, RUN_FILES.valuesJsonl), rows.map((r) => `${JSON.stringify(r)}\n`).join(''));
  makeFormat1(old);
  const run = await loadRun(old);
  assert.equal(run.suspects, null);
  assert.ok(run.values.every((v) => v.aum === null && v.selfInfluence === null));
  const html = await report(old);
  for (const id of ['summary', 'examples', 'removal'])
    assert.match(html, new RegExp(`<section id="${id}">`), id);
  assert.equal(section(html, 'suspects'), null);
  assert.equal(section(html, 'signals'), null);
  assert.doesNotMatch(html, /href="#(?:suspects|signals)"/);
  assert.deepEqual(embeddedData(html).correlations, []);
  const harmful = harmfulRows(html);
  assert.equal(harmful.length, TOP);
  assert.deepEqual(Object.keys(harmful[0]), [
    '#',
    'id',
    'group',
    'value',
    'first order',
    'normalized',
    'seen',
    'content',
  ]);
});

test('suspects.csv parser: quoted fields, empty cells, a header alone; problems name file and line', () => {
  const table = parseSuspectsCsv(
    'rank,id,label,predicted,confidence,rank_aum,rank_value\n1,"a,""b""",cat,dog,0.75,1,\n2,007,dog,dog,,2,1\n',
    'suspects.csv',
  );
  assert.deepEqual(table.signals, ['aum', 'value']);
  assert.deepEqual(table.rows, [
    {
      rank: 1,
      id: 'a,"b"',
      label: 'cat',
      predicted: 'dog',
      confidence: 0.75,
      ranks: { aum: 1, value: null },
    },
    { rank: 2, id: '007', label: 'dog', predicted: 'dog', confidence: null, ranks: { aum: 2, value: 1 } },
  ]);
  assert.deepEqual(parseSuspectsCsv('rank,id,label,predicted,confidence,rank_aum\n', 's.csv'), {
    signals: ['aum'],
    rows: [],
  });
  assert.throws(
    () => parseSuspectsCsv('rank,id,label,predicted,confidence\nx,a,0,0,0.5\n', 's.csv'),
    /s\.csv: line 2, column "rank": "x" is not a whole number/,
  );
  assert.throws(() => parseSuspectsCsv('rank,id,label\n1,a,0\n', 's.csv'), /no column "predicted"/);
});

test('report: suspects given to renderReport are escaped; a hostile id or label stays text', () => {
  const hostile = '<img src=x onerror=alert(1)>';
  const input: ReportInput = {
    title: 'run',
    order: 1,
    stageStarts: [],
    values: [
      {
        id: 'a',
        group: null,
        timesSeen: 1,
        firstOrder: 0.1,
        secondOrder: null,
        stages: [0.1],
        normalized: 1,
      },
    ],
    trace: [],
    suspects: {
      signals: ['aum', 'mean_loss'],
      total: 1,
      rows: [
        {
          rank: 1,
          id: hostile,
          label: hostile,
          predicted: 'b',
          confidence: 0.5,
          ranks: { aum: 1, mean_loss: 1 },
        },
      ],
    },
  };
  const html = renderReport(input);
  assert.ok(!html.includes(hostile));
  assert.ok(section(html, 'suspects')!.includes(escapeHtml(hostile)));
  assert.match(section(html, 'suspects')!, /<td class="num">50\.0%<\/td><td class="num top">1<\/td>/);
});
