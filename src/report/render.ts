// renderReport: one self-contained HTML file (inline CSS, inline uPlot, inline data; no network)
// showing a run's data values: distribution, most harmful and helpful examples, groups, stages,
// how well the values add up to the real validation-loss change, a removal curve and, when given,
// a curation comparison.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { RunWarning } from '../io/run-dir.js';
import {
  downsampleCurve,
  efficiencyScatter,
  groupSummaries,
  histogram,
  mainValue,
  removalCurve,
  type SignalCorrelation,
  signalCorrelations,
  testSeries,
  traceSeries,
  traceStats,
} from './analysis.js';
import { CLIENT_SCRIPT } from './client.js';
import { escapeHtml, formatNumber, inlineScript, jsonForScript } from './escape.js';
import { grayscalePngDataUrl } from './png.js';
import type {
  CurationComparison,
  CurationRun,
  ReportAttributionQuery,
  ReportContent,
  ReportInput,
  ReportSuspects,
  ReportValue,
} from './types.js';

/** Longest text snippet shown for an example, in characters. */
const SNIPPET_CHARS = 240;
/** Groups drawn as their own lines; the rest are summed into "other groups". */
const MAX_GROUP_LINES = 10;
/** Groups listed in the group and stage tables. */
const MAX_GROUP_ROWS = 50;

let uplotCache: { js: string; css: string } | undefined;

/** uPlot's browser bundle and stylesheet, read from node_modules (once per process). */
function uplotAssets(): { js: string; css: string } {
  if (uplotCache) return uplotCache;
  const require = createRequire(import.meta.url);
  let jsPath: string;
  try {
    jsPath = require.resolve('uplot/dist/uPlot.iife.min.js');
  } catch {
    throw new Error('the HTML report needs the npm package "uplot"; install it with `npm i uplot`');
  }
  const js = readFileSync(jsPath, 'utf8');
  const css = readFileSync(jsPath.replace(/uPlot\.iife\.min\.js$/, 'uPlot.min.css'), 'utf8');
  uplotCache = { js, css };
  return uplotCache;
}

const CSS = `
:root { --fg: #1d2433; --muted: #5b6475; --line: #dde1e8; --bad: #c8102e; --good: #1f5fa8; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: var(--fg); background: #f6f7f9; }
main { max-width: 1240px; margin: 0 auto; padding: 24px 28px 48px; }
header h1 { margin: 0 0 2px; font-size: 26px; }
header .sub { color: var(--muted); margin: 0 0 12px; word-break: break-all; }
nav { display: flex; flex-wrap: wrap; gap: 6px 14px; margin: 8px 0 4px; }
nav a { color: var(--good); text-decoration: none; }
nav a:hover { text-decoration: underline; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 16px 20px 18px; margin: 18px 0; }
section h2 { margin: 0 0 6px; font-size: 19px; }
section h3 { margin: 16px 0 6px; font-size: 15px; }
p.note, .notes li { color: var(--muted); margin: 4px 0 10px; }
.notes { background: #fff8e1; border: 1px solid #f0d98c; border-radius: 8px; padding: 8px 14px 8px 30px; }
section.warnings { background: #fdecee; border: 2px solid var(--bad); }
section.warnings h2 { color: var(--bad); }
section.warnings ul { margin: 8px 0 0; padding-left: 20px; }
section.warnings li { margin: 8px 0; }
section.warnings .at { color: var(--muted); font-size: 12.5px; margin-left: 6px; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(180px, 1fr)); gap: 10px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; }
.card .k { color: var(--muted); font-size: 12px; }
.card .v { font-size: 18px; font-weight: 600; font-variant-numeric: tabular-nums; }
.chart { width: 100%; min-height: 120px; margin: 6px 0 4px; }
.row { display: grid; grid-template-columns: 1fr 1fr; gap: 18px; }
.row > div { min-width: 0; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: middle; }
th { font-weight: 600; background: #fafbfc; white-space: nowrap; }
td.num, th.num { text-align: right; white-space: nowrap; }
td.id { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px;
  min-width: 9em; max-width: 16em; overflow-wrap: anywhere; }
td.content { max-width: 420px; }
.snippet { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; white-space: pre-wrap;
  overflow-wrap: anywhere; color: #333; }
img.px { image-rendering: pixelated; image-rendering: crisp-edges; border: 1px solid var(--line); display: block; }
.se { color: var(--muted); font-size: 12px; }
td.top { font-weight: 700; }
th.span { text-align: center; font-weight: 500; color: var(--muted); }
.neg { color: var(--bad); }
.pos { color: var(--good); }
.table-wrap { overflow-x: auto; }
pre.config { background: #f6f7f9; border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; overflow: auto;
  max-height: 520px; font-size: 12.5px; }
details summary { cursor: pointer; color: var(--good); }
footer { color: var(--muted); font-size: 12px; text-align: center; margin-top: 24px; }
.uplot { margin: 0 auto; }
.u-legend { font-size: 12.5px; }
@media (max-width: 900px) { .row { grid-template-columns: 1fr; } }
`;

const SECTIONS: [string, string][] = [
  ['summary', 'Summary'],
  ['distribution', 'Distribution'],
  ['examples', 'Examples'],
  ['groups', 'Groups'],
  ['stages', 'Stages'],
  ['efficiency', 'Efficiency'],
  ['removal', 'Removal'],
  ['curation', 'Curation'],
  ['config', 'Config'],
];

function num(x: number | null | undefined, signed = false): string {
  const text = escapeHtml(formatNumber(x));
  if (!signed || x === null || x === undefined || !Number.isFinite(x) || x === 0) return text;
  return `<span class="${x < 0 ? 'neg' : 'pos'}">${text}</span>`;
}

function card(key: string, value: string): string {
  return `<div class="card"><div class="k">${escapeHtml(key)}</div><div class="v">${value}</div></div>`;
}

function chart(name: string, label: string): string {
  return `<div class="chart" data-chart="${escapeHtml(name)}" role="img" aria-label="${escapeHtml(label)}"></div>`;
}

function snippet(text: string): string {
  const chars = [...text];
  const cut = chars.length > SNIPPET_CHARS ? `${chars.slice(0, SNIPPET_CHARS).join('')}…` : text;
  return `<span class="snippet">${escapeHtml(cut)}</span>`;
}

function renderContent(content: ReportContent | undefined): string {
  if (!content) return '';
  if (content.kind === 'text') return snippet(content.text);
  const scale = Math.max(1, Math.min(4, Math.floor(64 / Math.max(content.width, content.height))));
  const url = grayscalePngDataUrl(
    content.pixels,
    content.width,
    content.height,
    content.range,
    content.channels ?? 1,
  );
  return `<img class="px" alt="" src="${escapeHtml(url)}" width="${content.width * scale}" height="${content.height * scale}">`;
}

/** Longest id shown in full in the tables (longer ones are cut; the full id is the cell's title). */
const ID_CHARS = 48;

function idCell(id: string | number): string {
  const chars = [...String(id)];
  if (chars.length <= ID_CHARS) return `<td class="id">${escapeHtml(id)}</td>`;
  return `<td class="id" title="${escapeHtml(id)}">${escapeHtml(chars.slice(0, ID_CHARS).join(''))}…</td>`;
}

/** The optional columns of the value lists: each shown when the run has it for some example. */
interface ListColumns {
  /** value ± standard error (runs with validationBatch). */
  standardError: boolean;
  /** first order + momentum credit (runs with momentum credit). */
  momentum: boolean;
  aum: boolean;
  selfInfluence: boolean;
}

const measured = (x: number | null | undefined): x is number => typeof x === 'number' && Number.isFinite(x);

function listColumns(values: ReportValue[]): ListColumns {
  return {
    standardError: values.some((v) => measured(v.standardError)),
    momentum: values.some((v) => measured(v.momentumCredit)),
    aum: values.some((v) => measured(v.aum)),
    selfInfluence: values.some((v) => measured(v.selfInfluence)),
  };
}

const AUM_TITLE =
  'Area under the margin: the mean margin of the given label over the example’s batches (negative: mostly classified as another class)';
const SELF_INFLUENCE_TITLE =
  'How much the example’s own share of each step lowered its own loss, summed over its batches (high: hard to fit)';

function valueCell(v: ReportValue, order: 1 | 2, columns: ListColumns): string {
  const se = columns.standardError && measured(v.standardError) ? v.standardError : null;
  const plusMinus = se === null ? '' : ` <span class="se">± ${escapeHtml(formatNumber(se))}</span>`;
  return `<td class="num">${num(mainValue(v, order), true)}${plusMinus}</td>`;
}

function examplesTable(rows: ReportValue[], order: 1 | 2, hasContent: boolean, columns: ListColumns): string {
  if (rows.length === 0) return '<p class="note">No examples.</p>';
  const head = [
    '<th class="num">#</th>',
    '<th>id</th>',
    '<th>group</th>',
    `<th class="num">value${columns.standardError ? ' ± standard error' : ''}</th>`,
    order === 2 ? '<th class="num">first order</th>' : '',
    columns.momentum ? '<th class="num">first order + momentum credit</th>' : '',
    '<th class="num">normalized</th>',
    '<th class="num">seen</th>',
    columns.aum ? `<th class="num" title="${escapeHtml(AUM_TITLE)}">AUM</th>` : '',
    columns.selfInfluence
      ? `<th class="num" title="${escapeHtml(SELF_INFLUENCE_TITLE)}">self-influence</th>`
      : '',
    hasContent ? '<th>content</th>' : '',
  ].join('');
  const body = rows
    .map((v, k) =>
      [
        '<tr>',
        `<td class="num">${k + 1}</td>`,
        idCell(v.id),
        `<td>${v.group === null ? '' : escapeHtml(v.group)}</td>`,
        valueCell(v, order, columns),
        order === 2 ? `<td class="num">${num(v.firstOrder, true)}</td>` : '',
        columns.momentum
          ? `<td class="num">${measured(v.momentumCredit) ? num(v.firstOrder + v.momentumCredit, true) : '–'}</td>`
          : '',
        `<td class="num">${num(v.normalized)}</td>`,
        `<td class="num">${v.timesSeen}</td>`,
        columns.aum ? `<td class="num">${num(v.aum)}</td>` : '',
        columns.selfInfluence ? `<td class="num">${num(v.selfInfluence)}</td>` : '',
        hasContent ? `<td class="content">${renderContent(v.content)}</td>` : '',
        '</tr>',
      ].join(''),
    )
    .join('\n');
  return `<div class="table-wrap"><table><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table></div>`;
}

/** What the optional columns of the value lists mean, for the runs that have them. */
function listColumnsNote(columns: ListColumns): string {
  const parts: string[] = [];
  if (columns.standardError)
    parts.push(
      'Value ± its standard error: each step valued the batch against a random sample of the validation set (<code>validationBatch</code>).',
    );
  if (columns.momentum)
    parts.push(
      'First order + momentum credit: the first-order value plus what the momentum buffer carried from the example into later steps.',
    );
  if (columns.aum) parts.push('AUM: area under the margin (negative: mostly classified as another class).');
  if (columns.selfInfluence) parts.push('Self-influence: high for examples the model finds hard to fit.');
  return parts.length > 0 ? `<p class="note">${parts.join(' ')}</p>` : '';
}

/**
 * Per query, its top training documents by the in-run ranking, with coverage, values, the best
 * sequence's text and the lexical ranks of the same documents.
 */
function attributionSection(queries: ReportAttributionQuery[]): string {
  const lexicalNote =
    'TF-IDF and BM25 rank the same documents by the words they share with the query: where they agree with the values, word overlap explains the attribution; where the values rank a document far above them, the model learnt from it something the wording does not show.';
  const tables = queries
    .map((q) => {
      const body = q.rows
        .map((r) =>
          [
            '<tr>',
            `<td class="num">${r.rank}</td>`,
            idCell(r.documentId),
            `<td>${escapeHtml(r.source)}</td>`,
            `<td class="num">${r.sequencesValued}/${r.sequences}${r.timesSeen > r.sequencesValued ? ` (×${r.timesSeen})` : ''}</td>`,
            `<td class="num ${r.value < 0 ? 'neg' : 'pos'}">${num(r.value, true)}</td>`,
            `<td class="num">${num(r.normalized, true)}</td>`,
            `<td class="num">${num(r.bestNormalized, true)}</td>`,
            `<td class="num${r.rankTfidf === 1 ? ' top' : ''}">${r.rankTfidf ?? '–'}</td>`,
            `<td class="num${r.rankBm25 === 1 ? ' top' : ''}">${r.rankBm25 ?? '–'}</td>`,
            `<td class="content">${renderContent(r.snippet)}</td>`,
            '</tr>',
          ].join(''),
        )
        .join('\n');
      return `<h3>${escapeHtml(q.id)} <span class="note">(${escapeHtml(q.source)})</span></h3>
${q.text ? `<p class="query">${snippet(q.text)}</p>` : ''}
<div class="table-wrap"><table><thead><tr><th class="num">#</th><th>document</th><th>source</th>
<th class="num">valued / sequences</th><th class="num">value</th><th class="num">normalized</th>
<th class="num">best sequence</th><th class="num">TF-IDF</th><th class="num">BM25</th><th>best sequence’s text</th></tr></thead>
<tbody>\n${body}\n</tbody></table></div>
<p class="note">The first ${q.rows.length} of ${q.documents} training documents.</p>`;
    })
    .join('\n');
  return `<section id="attribution">
<h2>Attribution: the training documents behind each query</h2>
<p class="note">Each validation document is a query. Training documents are ranked by their best sequence’s
per-step normalised value for the query (<code>attribution.csv</code> has every document, both orders and every
stage). <em>valued / sequences</em> is coverage: a document none of whose sequences was trained on has no value and
ranks last. ${lexicalNote}</p>
${tables}
</section>`;
}

/** Column headings of suspects.csv's signals (others show their name). */
const SUSPECT_SIGNAL_LABELS: Record<string, string> = {
  aum: 'AUM',
  mean_loss: 'mean loss',
  self_influence: 'self-influence',
  value: 'value',
  normalized: 'normalized',
  forgetting_events: 'forgetting',
};

/** The top rows of suspects.csv: content, label, prediction and every signal's rank. */
function suspectsSection(suspects: ReportSuspects): string {
  const { rows, signals } = suspects;
  const shown = rows.length;
  const hasContent = rows.some((r) => r.content !== undefined);
  // The signal whose rank is the row's rank: what the file is ordered by.
  const orderedBy = signals.find((s) => rows.every((r) => r.ranks[s] === r.rank));
  const order =
    orderedBy === undefined || orderedBy === 'aum'
      ? 'Lowest area under the margin first: examples the model kept classifying against their given label while it trained, the mark of a wrong or ambiguous label.'
      : `Ordered by ${escapeHtml(SUSPECT_SIGNAL_LABELS[orderedBy] ?? orderedBy)}, most suspicious first.`;
  const head = [
    '<th class="num" rowspan="2">#</th>',
    '<th rowspan="2">id</th>',
    '<th rowspan="2">label</th>',
    '<th rowspan="2">predicted</th>',
    '<th class="num" rowspan="2">confidence</th>',
    signals.length > 0
      ? `<th class="span" colspan="${signals.length}">rank by each signal (1 = most suspicious)</th>`
      : '',
    hasContent ? '<th rowspan="2">content</th>' : '',
  ].join('');
  const signalHead = signals
    .map((s) => `<th class="num">${escapeHtml(SUSPECT_SIGNAL_LABELS[s] ?? s.replaceAll('_', ' '))}</th>`)
    .join('');
  const body = rows
    .map((r) =>
      [
        '<tr>',
        `<td class="num">${r.rank}</td>`,
        idCell(r.id),
        `<td class="label">${escapeHtml(r.label)}</td>`,
        `<td class="predicted">${r.predicted === r.label ? escapeHtml(r.predicted) : `<span class="neg">${escapeHtml(r.predicted)}</span>`}</td>`,
        `<td class="num">${percent(r.confidence)}</td>`,
        ...signals.map((s) => {
          const rank = r.ranks[s];
          if (rank === null || rank === undefined) return '<td class="num">–</td>';
          return `<td class="num${rank <= shown ? ' top' : ''}">${rank}</td>`;
        }),
        hasContent ? `<td class="content">${renderContent(r.content)}</td>` : '',
        '</tr>',
      ].join(''),
    )
    .join('\n');
  return `<section id="suspects">
<h2>Suspects: the examples to review first</h2>
<p class="note">The ${shown} most suspicious of the ${suspects.total} examples in <code>suspects.csv</code>. ${order}
<code>inrun evaluate</code> measures which signal finds bad data best on your data. Each signal’s rank shows whether the
signals agree: bold ranks are in that signal’s top ${shown} too; a predicted label in red differs from the given one.</p>
${
  shown === 0
    ? '<p class="note">No examples.</p>'
    : `<div class="table-wrap"><table><thead><tr>${head}</tr>${signals.length > 0 ? `<tr>${signalHead}</tr>` : ''}</thead><tbody>\n${body}\n</tbody></table></div>`
}
</section>`;
}

/** Spearman's ρ between the value and each signal, over the examples. */
function signalsSection(correlations: SignalCorrelation[], valueName: string): string {
  const rows = correlations
    .map(
      (c) =>
        `<tr><td>${escapeHtml(c.label)}</td><td class="num">${num(c.spearman, true)}</td><td class="num">${c.examples}</td><td>${escapeHtml(c.higher)}</td></tr>`,
    )
    .join('\n');
  return `<section id="signals">
<h2>Values and the other signals</h2>
<p class="note">Spearman rank correlation across the training examples between the ${escapeHtml(valueName)} and each
per-example signal the run measured. A signal that agrees with the values about which examples hurt correlates positively
when a higher number marks a better example (area under the margin, times correct, class value) and negatively otherwise
(self-influence, mean loss, forgetting events); near 0, the two find different examples.</p>
<div class="table-wrap"><table><thead><tr><th>signal</th><th class="num">Spearman ρ with the value</th><th class="num">examples</th><th>higher means</th></tr></thead>
<tbody>\n${rows}\n</tbody></table></div>
</section>`;
}

function stageLabel(s: number, stageStarts: number[], totalSteps: number): string {
  const from = s === 0 ? 0 : stageStarts[s - 1];
  const to = s < stageStarts.length ? stageStarts[s] - 1 : totalSteps - 1;
  return `stage ${s} (steps ${from}–${to})`;
}

/** What a comparison without a held-out test set must say about itself. */
export const VALIDATION_JUDGED_NOTICE =
  'No held-out test set: this comparison uses the validation set the values were computed against, so it favours the curated run by construction. Train with data.test or data.testSplit for an independent comparison.';

const CURATION_NAMES: Record<string, string> = {
  original: 'original',
  curated: 'curated (selected examples removed)',
  random: 'random removal (same count)',
};

/** "12 (−3)": steps to the target, and how many fewer or more than the original needed. */
function reachedCell(steps: number | null, original: number | null, isOriginal: boolean): string {
  if (steps === null) return '<span class="neg">not reached</span>';
  if (isOriginal || original === null) return String(steps);
  return `${steps} <span class="${steps <= original ? 'pos' : 'neg'}">(${formatSigned(steps - original)})</span>`;
}

function percent(x: number | null | undefined): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '–' : `${(100 * x).toFixed(1)}%`;
}

function curationSection(c: CurationComparison | null | undefined): { html: string; data: unknown } {
  if (!c)
    return {
      html:
        '<p class="note">No curation comparison yet. <code>inrun curate &lt;run-dir&gt; --negatives</code> ' +
        'drops the selected examples, retrains with the same settings and seed, retrains with as many ' +
        'examples removed at random, and adds the comparison here.</p>',
      data: null,
    };
  const runs = [c.runs.original, c.runs.curated, c.runs.random];
  const validationRows = runs
    .map(
      (r) =>
        `<tr><td>${escapeHtml(CURATION_NAMES[r.name] ?? r.name)}</td><td class="num">${r.examples}</td><td class="num">${r.removed}</td><td class="num">${num(r.finalValidationLoss)}</td><td class="num">${num(r.bestValidationLoss)}</td><td class="num">${reachedCell(r.stepsToTarget, c.runs.original.stepsToTarget, r.name === 'original')}</td></tr>`,
    )
    .join('\n');
  const down = downsampleCurve(c.runs.original.validationLoss);
  const pick = (curve: number[]) => down.step.map((k) => (k < curve.length ? curve[k] : null));
  const rule = `<p class="note">Rule: <b>${escapeHtml(c.rule.description)}</b> — ${c.removed} of ${c.totalExamples} training examples removed
(their values sum to ${escapeHtml(formatNumber(c.removedValue))}). Each retraining runs ${c.steps} steps with the original
settings and seed; the random removal drops as many examples, drawn with seed ${c.randomSeed}.</p>`;
  const validationTable = `<div class="table-wrap"><table><thead><tr><th>run</th><th class="num">training examples</th><th class="num">removed</th>
<th class="num">final validation loss</th><th class="num">best validation loss</th><th class="num">steps to reach the original's final validation loss</th></tr></thead>
<tbody>\n${validationRows}\n</tbody></table></div>`;
  const validationData = {
    step: down.step,
    original: pick(c.runs.original.validationLoss),
    curated: pick(c.runs.curated.validationLoss),
    random: pick(c.runs.random.validationLoss),
    target: down.step.map(() => c.targetValidationLoss),
  };
  const tests = runs.map((r) => r.test);
  const test = c.test;
  if (c.judgedOn !== 'test' || !test || tests.some((t) => t === undefined)) {
    const notice = c.notice ?? VALIDATION_JUDGED_NOTICE;
    const html = `
<ul class="notes"><li>${escapeHtml(notice)}</li></ul>
${rule}
<p class="note">Target: the original run's final validation loss, ${escapeHtml(formatNumber(c.targetValidationLoss))}; a run reaches it
at the first step its validation loss is at or below it.</p>
${chart('curation', 'validation loss of the original, curated and random-removal runs')}
${validationTable}`;
    return { html, data: { ...validationData, test: null } };
  }
  const [original, curated, random] = tests as NonNullable<CurationRun['test']>[];
  const hasAccuracy = original.accuracy.some((a) => a !== null);
  const testRows = runs
    .map((r) => {
      const t = r.test!;
      return (
        `<tr><td>${escapeHtml(CURATION_NAMES[r.name] ?? r.name)}</td><td class="num">${r.examples}</td><td class="num">${r.removed}</td>` +
        `<td class="num">${num(t.finalLoss)}</td><td class="num">${num(t.bestLoss)}</td>` +
        (hasAccuracy
          ? `<td class="num">${percent(t.finalAccuracy)}</td><td class="num">${percent(t.bestAccuracy)}</td>`
          : '') +
        `<td class="num">${reachedCell(t.stepsToTarget, original.stepsToTarget, r.name === 'original')}</td></tr>`
      );
    })
    .join('\n');
  const where =
    test.source === 'split'
      ? `the original run's test split of its training file, written to ${escapeHtml(test.file)}`
      : escapeHtml(test.file);
  const html = `
${rule}
<p class="note">Judged on the <b>held-out test set</b> — ${test.examples} examples never trained on nor used for the values
(${where}), the same rows in all three runs, evaluated after the same steps. Target: the original run's final test loss,
${escapeHtml(formatNumber(test.targetLoss))}${test.targetAccuracy !== null ? ` (accuracy ${percent(test.targetAccuracy)})` : ''}; a run reaches it at the
first evaluated step its test loss is at or below it.</p>
${chart('curation-test', 'test loss of the original, curated and random-removal runs')}
${hasAccuracy ? chart('curation-test-accuracy', 'test accuracy of the original, curated and random-removal runs') : ''}
<div class="table-wrap"><table><thead><tr><th>run</th><th class="num">training examples</th><th class="num">removed</th>
<th class="num">final test loss</th><th class="num">best test loss</th>${hasAccuracy ? '<th class="num">final test accuracy</th><th class="num">best test accuracy</th>' : ''}
<th class="num">steps to reach the original's final test loss</th></tr></thead>
<tbody>\n${testRows}\n</tbody></table></div>
<h3>Secondary: validation loss</h3>
<p class="note">The validation set is the one the values were computed against: removing low-valued examples lowers exactly
this loss by construction, so these curves are not an independent judgement of the curation. Target: the original run's
final validation loss, ${escapeHtml(formatNumber(c.targetValidationLoss))}.</p>
${chart('curation', 'validation loss of the original, curated and random-removal runs (secondary)')}
${validationTable}`;
  // Every run is evaluated after the same steps (same step count and testEvery).
  const at = (t: NonNullable<CurationRun['test']>, values: (number | null)[]) => {
    const byStep = new Map(t.step.map((k, i) => [k, values[i]]));
    return original.step.map((k) => byStep.get(k) ?? null);
  };
  return {
    html,
    data: {
      // The validation curves stay where reports before test sets had them (step, original, …).
      ...validationData,
      test: {
        step: original.step,
        original: original.loss,
        curated: at(curated, curated.loss),
        random: at(random, random.loss),
        target: original.step.map(() => test.targetLoss),
        accuracy: hasAccuracy
          ? {
              original: original.accuracy,
              curated: at(curated, curated.accuracy),
              random: at(random, random.accuracy),
            }
          : null,
      },
    },
  };
}

/** Headings of the warning codes of src/run/diagnostics.ts (others show their code). */
const WARNING_TITLES: Record<string, string> = {
  'exploding-loss': 'Exploding loss',
  'taylor-error': 'Taylor error',
  'efficiency-residual': 'Values do not add up',
  'feature-scale': 'Feature scale',
  'target-scale': 'Target scale',
};

/** The run's warnings, in a box above everything else: values of such a run may mean nothing. */
function warningsSection(warnings: RunWarning[]): string {
  if (warnings.length === 0) return '';
  const items = warnings
    .map(
      (w) =>
        `<li><b>${escapeHtml(WARNING_TITLES[w.code] ?? w.code)}</b><span class="at">${w.step === null ? 'before training' : `step ${w.step}`}</span>` +
        `<br>${escapeHtml(w.message)}</li>`,
    )
    .join('\n');
  const count = warnings.length === 1 ? '1 warning' : `${warnings.length} warnings`;
  return `<section id="warnings" class="warnings" role="alert">
<h2>⚠ ${count}: the values of this run may be meaningless</h2>
<p>Found while the run trained. Each says what to change; retrain before trusting the values below.</p>
<ul>
${items}
</ul>
</section>`;
}

function formatSigned(x: number): string {
  return x > 0 ? `+${x}` : x < 0 ? `−${-x}` : '±0';
}

/** Renders the report as one self-contained HTML document. */
export function renderReport(input: ReportInput): string {
  const { order, values, trace } = input;
  const stageCount = input.stageStarts.length + 1;
  const topCount = input.topCount ?? 12;
  const totalSteps = trace.length > 0 ? trace[trace.length - 1].step + 1 : 0;

  const main = values.map((v) => mainValue(v, order));
  const ranked = values
    .map((v, k) => ({ v, x: main[k] }))
    .filter((e) => Number.isFinite(e.x))
    .sort((a, b) => a.x - b.x);
  const harmful = ranked.slice(0, Math.min(topCount, ranked.length)).map((e) => e.v);
  const helpful = ranked
    .slice(Math.max(0, ranked.length - topCount))
    .reverse()
    .map((e) => e.v);
  const hasContent = values.some((v) => v.content !== undefined);
  const columns = listColumns(values);
  const correlations = signalCorrelations(values, order);
  const suspects = input.suspects ?? null;
  const attribution = input.attribution ?? null;
  const negatives = main.filter((x) => x < 0).length;
  const total = main.reduce((a, b) => (Number.isFinite(b) ? a + b : a), 0);

  const hist = histogram(main);
  const removal = removalCurve(main);
  const groups = groupSummaries(values, order, stageCount);
  const stats = traceStats(trace, order);
  const series = traceSeries(trace, order);
  const test = testSeries(trace);
  const scatter = efficiencyScatter(trace, order);

  // Group lines: the largest groups by |total|, the rest summed.
  const stepEnds = [0, ...input.stageStarts, totalSteps];
  const shown = groups.slice(0, MAX_GROUP_LINES);
  const rest = groups.slice(MAX_GROUP_LINES);
  const lineGroups = shown.map((g) => ({ group: g.group, stages: g.stages, other: false }));
  if (rest.length > 0)
    lineGroups.push({
      group: `other ${rest.length} groups`,
      other: true,
      stages: Array.from({ length: stageCount }, (_, s) => rest.reduce((a, g) => a + g.stages[s], 0)),
    });
  const groupData = {
    stepEnds,
    stageIndex: Array.from({ length: stageCount }, (_, s) => s),
    series: lineGroups.map((g) => {
      const cumulative = [0];
      for (const x of g.stages) cumulative.push(cumulative[cumulative.length - 1] + x);
      return { group: g.group, other: g.other, stages: g.stages, cumulative };
    }),
  };
  const curation = curationSection(input.curation);

  const data = {
    format: 'inrun-report',
    formatVersion: 1,
    order,
    examples: values.length,
    steps: totalSteps,
    histogram: hist,
    removal,
    groups: groupData,
    trace: series,
    test,
    scatter,
    stats,
    curation: curation.data,
    correlations: correlations.map((c) => ({ signal: c.signal, spearman: c.spearman, examples: c.examples })),
  };

  const notes = (input.notes ?? []).filter((n) => n.trim() !== '');
  const warnings = input.warnings ?? [];
  const sections: [string, string][] = [
    ...(warnings.length > 0 ? [['warnings', 'Warnings'] as [string, string]] : []),
    ...SECTIONS.flatMap(([id, label]): [string, string][] =>
      id !== 'examples'
        ? [[id, label]]
        : [
            [id, label],
            ...(suspects ? [['suspects', 'Suspects'] as [string, string]] : []),
            ...(attribution ? [['attribution', 'Attribution'] as [string, string]] : []),
            ...(correlations.length > 0 ? [['signals', 'Signals'] as [string, string]] : []),
          ],
    ),
  ];
  const valueName = order === 2 ? 'second-order value' : 'first-order value';
  const groupRows = groups
    .slice(0, MAX_GROUP_ROWS)
    .map(
      (g) =>
        `<tr><td>${escapeHtml(g.group)}</td><td class="num">${g.examples}</td><td class="num">${g.timesSeen}</td>` +
        `<td class="num">${num(g.total, true)}</td><td class="num">${num(g.mean, true)}</td>` +
        `<td class="num">${g.negatives} (${((100 * g.negatives) / g.examples).toFixed(1)}%)</td></tr>`,
    )
    .join('\n');
  const stageHead = Array.from(
    { length: stageCount },
    (_, s) => `<th class="num">${escapeHtml(stageLabel(s, input.stageStarts, totalSteps))}</th>`,
  ).join('');
  const stageRows = groups
    .slice(0, MAX_GROUP_ROWS)
    .map(
      (g) =>
        `<tr><td>${escapeHtml(g.group)}</td>${g.stages.map((x) => `<td class="num">${num(x, true)}</td>`).join('')}</tr>`,
    )
    .join('\n');
  const moreGroups =
    groups.length > MAX_GROUP_ROWS
      ? `<p class="note">Showing ${MAX_GROUP_ROWS} of ${groups.length} groups (largest |total| first).</p>`
      : '';

  const configJson = input.config === undefined ? null : JSON.stringify(input.config, null, 2);
  const { js, css } = uplotAssets();

  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="inrun">
<title>${escapeHtml(input.title)}</title>
<style>${css}</style>
<style>${CSS}</style>
</head>
<body>
<main>
<header>
<h1>${escapeHtml(input.title)}</h1>
${input.subtitle ? `<p class="sub">${escapeHtml(input.subtitle)}</p>` : ''}
<nav>${sections.map(([id, label]) => `<a href="#${id}">${label}</a>`).join('')}</nav>
</header>
${warningsSection(warnings)}
<noscript><p class="notes">The charts need JavaScript; the tables below do not.</p></noscript>
${notes.length > 0 ? `<ul class="notes">${notes.map((n) => `<li>${escapeHtml(n)}</li>`).join('')}</ul>` : ''}

<section id="summary">
<h2>Summary</h2>
<p class="note">A value is the share of the validation-loss decrease an example earned over every step it was in the batch
(In-Run Data Shapley, ${order === 2 ? 'second' : 'first'} order): positive helped, negative hurt.
Units: validation-loss units (mean over the validation set).</p>
<div class="cards">
${card('training examples valued', String(values.length))}
${card('steps', String(totalSteps))}
${card('negative values', `${negatives} <span class="k">(${values.length > 0 ? ((100 * negatives) / values.length).toFixed(1) : '0'}%)</span>`)}
${card('Σ values', num(total, true))}
${card('validation loss', `${num(stats.initialValidationLoss)} → ${num(stats.finalValidationLoss)}`)}
${stats.finalTestLoss !== null ? card('test loss (held out, final)', num(stats.finalTestLoss)) : ''}
${stats.finalTestAccuracy !== null ? card('test accuracy (final)', percent(stats.finalTestAccuracy)) : ''}
${card('actual decrease Σ', num(stats.sumActual, true))}
${card('max |efficiency residual|', num(stats.maxAbsResidual))}
${card('relative Taylor error', Number.isFinite(stats.relativeTaylorError) ? `${(100 * stats.relativeTaylorError).toFixed(1)}%` : '–')}
</div>
</section>

<section id="distribution">
<h2>Distribution of values</h2>
<p class="note">${escapeHtml(valueName)} per training example; bins split at 0.${hist.clipped > 0 ? ` The range is the 0.5–99.5% quantiles; ${hist.clipped} more extreme values are counted in the end bins.` : ''}</p>
${chart('histogram', 'histogram of values')}
</section>

<section id="examples">
<h2>Most harmful and most helpful examples</h2>
${listColumnsNote(columns)}
<h3 class="neg">Most harmful (lowest value)</h3>
${examplesTable(harmful, order, hasContent, columns)}
<h3 class="pos">Most helpful (highest value)</h3>
${examplesTable(helpful, order, hasContent, columns)}
</section>
${suspects ? suspectsSection(suspects) : ''}
${attribution ? attributionSection(attribution) : ''}
${correlations.length > 0 ? signalsSection(correlations, valueName) : ''}

<section id="groups">
<h2>Value per group</h2>
<p class="note">Cumulative value of each group over training, at the ends of the training stages${groups.length > MAX_GROUP_LINES ? ` (the ${MAX_GROUP_LINES} groups with the largest |total| drawn; the others summed)` : ''}.</p>
${chart('groups-cumulative', 'cumulative value per group')}
<div class="table-wrap"><table><thead><tr><th>group</th><th class="num">examples</th><th class="num">times seen</th>
<th class="num">total value</th><th class="num">mean value</th><th class="num">negative</th></tr></thead>
<tbody>\n${groupRows}\n</tbody></table></div>${moreGroups}
</section>

<section id="stages">
<h2>Value per stage and group</h2>
${stageCount > 1 ? chart('groups-stages', 'value per stage and group') : '<p class="note">This run has one training stage (train with <code>stages: 3</code> to split values over the run).</p>'}
<div class="table-wrap"><table><thead><tr><th>group</th>${stageHead}</tr></thead>
<tbody>\n${stageRows}\n</tbody></table></div>${moreGroups}
</section>

<section id="efficiency">
<h2>Values vs the real validation-loss change</h2>
<p class="note">Per step: Σ of the batch's values equals the Taylor utility up to rounding (the efficiency residual,
max ${escapeHtml(formatNumber(stats.maxAbsResidual))}); the actual decrease differs from the Taylor utility by the
Taylor error (Σ|error| / Σ|actual| = ${Number.isFinite(stats.relativeTaylorError) ? `${(100 * stats.relativeTaylorError).toFixed(1)}%` : '–'};
correlation of Σ values with the actual decrease ${escapeHtml(formatNumber(stats.correlation))}). The Taylor error
also holds the part of each step that no example of the batch caused (momentum, weight decay), which the values do not
share out.${series.stride > 1 ? ` Lines show means over ${series.stride} steps (errors: the largest in each span).` : ''}</p>
${chart('efficiency-lines', 'sum of values, Taylor utility and actual decrease per step')}
<div class="row">
<div><h3>Taylor error and efficiency residual</h3>${chart('efficiency-errors', 'Taylor error and efficiency residual per step')}</div>
<div><h3>Σ values vs actual decrease</h3>${chart('efficiency-scatter', 'scatter of sum of values against actual decrease')}</div>
</div>
<h3>Training</h3>
${chart('training', 'training and validation loss')}
${
  test
    ? `<h3>Held-out test set</h3>
<p class="note">Mean test loss${test.testAccuracy ? ' and accuracy' : ''} after the steps the run evaluated (${stats.testEvaluations} evaluations), beside the
validation loss at the same weights. The test set is never trained on nor used for the values.</p>
${chart('test', 'test and validation loss after the evaluated steps')}`
    : ''
}
</section>

<section id="removal">
<h2>Removal curve</h2>
<p class="note">Total value of the training examples that remain as the most harmful are removed first. It peaks once
all ${removal.negatives} negative examples (${values.length > 0 ? ((100 * removal.negatives) / values.length).toFixed(1) : '0'}%) are gone, at
${escapeHtml(formatNumber(removal.peak.remaining))} (from ${escapeHtml(formatNumber(removal.total))}). The dashed line is random removal.</p>
${chart('removal', 'removal curve')}
</section>

<section id="curation">
<h2>Curation: retraining without the selected examples</h2>
${curation.html}
</section>

<section id="config">
<h2>Config</h2>
${configJson === null ? '<p class="note">No config given.</p>' : `<details open><summary>settings of the run</summary><pre class="config">${escapeHtml(configJson)}</pre></details>`}
</section>
<footer>In-Run Data Shapley report by inrun · self-contained: no network access</footer>
</main>
<script type="application/json" id="inrun-report-data">${jsonForScript(data)}</script>
<script>${inlineScript(js)}</script>
<script>${inlineScript(CLIENT_SCRIPT)}</script>
</body>
</html>
`;
}
