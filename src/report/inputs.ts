// Report inputs from a trainer (library use) and from a run directory (`inrun report`).
import type { ExampleId } from '../data/dataset.js';
import type { AttributionFileRow, LoadedRun, RunWarning, SuspectsTable } from '../io/run-dir.js';
import type { LedgerEntry } from '../shapley/ledger.js';
import type { Trainer } from '../train/trainer.js';
import { fail } from '../util/errors.js';
import type {
  CurationComparison,
  ReportAttributionQuery,
  ReportContent,
  ReportInput,
  ReportSuspects,
  ReportValue,
} from './types.js';

export interface ReportOptions {
  title?: string;
  subtitle?: string;
  config?: unknown;
  /** Content of examples by id (only the listed examples' content is shown). */
  content?: (id: ExampleId) => ReportContent | undefined;
  curation?: CurationComparison | null;
  topCount?: number;
  notes?: string[];
  /** Warnings about the run (default: from a run directory, its manifest's). */
  warnings?: RunWarning[];
  /** suspects.csv read back (default: from a run directory, its own; null: no suspects section). */
  suspects?: SuspectsTable | null;
  /** Text runs: a query's (validation document's) text by id, for the attribution section. */
  queryText?: (id: string) => string | undefined;
}

/**
 * attribution.csv as the report shows it: per query (in the file's order), its first `topCount`
 * documents by rank, each with its best sequence's text.
 */
export function attributionInput(
  rows: AttributionFileRow[],
  topCount: number,
  content: ((id: ExampleId) => ReportContent | undefined) | undefined,
  queryText: ((id: string) => string | undefined) | undefined,
): ReportAttributionQuery[] {
  const queries = new Map<string, ReportAttributionQuery>();
  for (const r of rows) {
    let query = queries.get(r.queryId);
    if (!query) {
      query = { id: r.queryId, source: r.querySource, text: queryText?.(r.queryId), rows: [], documents: 0 };
      queries.set(r.queryId, query);
    }
    query.documents += 1;
    if (r.rank > topCount) continue;
    query.rows.push({
      rank: r.rank,
      documentId: r.documentId,
      source: r.source,
      sequences: r.sequences,
      sequencesValued: r.sequencesValued,
      timesSeen: r.timesSeen,
      value: r.secondOrder ?? r.firstOrder,
      normalized: r.normalized,
      bestNormalized: r.bestNormalized,
      bestSequence: r.bestSequence,
      rankTfidf: r.rankTfidf,
      rankBm25: r.rankBm25,
      snippet: r.bestSequence !== null ? content?.(r.bestSequence) : undefined,
    });
  }
  for (const query of queries.values()) query.rows.sort((a, b) => a.rank - b.rank);
  return [...queries.values()];
}

/** A ledger number as a report signal: NaN (not measured) as null. */
function measured(x: number): number | null {
  return Number.isFinite(x) ? x : null;
}

function fromLedgerEntry(e: LedgerEntry, order: 1 | 2): ReportValue {
  return {
    id: e.id,
    group: e.group ?? null,
    timesSeen: e.timesSeen,
    firstOrder: e.firstOrder,
    secondOrder: order === 2 && Number.isFinite(e.secondOrder) ? e.secondOrder : null,
    stages: e.stages.slice(),
    normalized: e.normalized,
    selfInfluence: measured(e.selfInfluence),
    meanLoss: measured(e.lossSum / e.timesSeen),
    aum: measured(e.marginSum / e.timesSeen),
    forgettingEvents: measured(e.forgettingEvents),
    timesCorrect: measured(e.timesCorrect),
    classValue: measured(e.classValue),
    standardError: measured(Math.sqrt(e.valueVariance)),
    momentumCredit: measured(e.momentumCredit),
  };
}

/**
 * The first `count` rows of suspects.csv, each with its content (the same content the value lists
 * show); null without a suspects file.
 */
export function topSuspects(
  table: SuspectsTable | null | undefined,
  count: number,
  content?: (id: ExampleId) => ReportContent | undefined,
): ReportSuspects | null {
  if (!table) return null;
  const rows = table.rows.slice(0, count).map((row) => {
    const c = content?.(row.id);
    return c ? { ...row, content: c } : { ...row };
  });
  return { signals: table.signals.slice(), rows, total: table.rows.length };
}

/**
 * Attaches content to the examples the report lists (the `count` lowest and highest by main
 * value), so content is computed only for those.
 */
export function attachContent(
  values: ReportValue[],
  order: 1 | 2,
  count: number,
  content: (id: ExampleId) => ReportContent | undefined,
): void {
  const main = (v: ReportValue) => (order === 2 && v.secondOrder !== null ? v.secondOrder : v.firstOrder);
  const ranked = values.filter((v) => Number.isFinite(main(v))).sort((a, b) => main(a) - main(b));
  const listed = new Set([...ranked.slice(0, count), ...ranked.slice(Math.max(0, ranked.length - count))]);
  for (const v of listed) {
    const c = content(v.id);
    if (c) v.content = c;
  }
}

/** A report input from a trained Trainer with valuation (call after training). */
export function reportInputFromTrainer(trainer: Trainer, options: ReportOptions = {}): ReportInput {
  const valuer = trainer.valuer;
  if (!valuer) fail('report: the trainer has no valuer (train with `valuation` to get data values)');
  const order = valuer.order;
  const values = valuer.ledger.all().map((e) => fromLedgerEntry(e, order));
  const topCount = options.topCount ?? 12;
  if (options.content) attachContent(values, order, topCount, options.content);
  return {
    title: options.title ?? 'In-Run Data Shapley report',
    subtitle: options.subtitle,
    config: options.config,
    order,
    stageStarts: valuer.ledger.stageStarts.slice(),
    values,
    trace: valuer.trace,
    curation: options.curation ?? null,
    topCount,
    notes: options.notes,
    warnings: options.warnings ?? [],
    suspects: topSuspects(options.suspects, topCount, options.content),
  };
}

/** A report input from a run directory loaded with loadRun. */
export function reportInputFromRun(run: LoadedRun, options: ReportOptions = {}): ReportInput {
  const order = run.config.order === 1 ? 1 : 2;
  const values: ReportValue[] = run.values.map((v) => ({
    id: v.id,
    group: v.group,
    timesSeen: v.timesSeen,
    firstOrder: v.firstOrder,
    secondOrder: v.secondOrder,
    stages: v.stages,
    normalized: v.normalized,
    selfInfluence: v.selfInfluence ?? null,
    meanLoss: v.meanLoss ?? null,
    aum: v.aum ?? null,
    forgettingEvents: v.forgettingEvents ?? null,
    timesCorrect: v.timesCorrect ?? null,
    classValue: v.classValue ?? null,
    standardError: v.standardError ?? null,
    momentumCredit: v.momentumCredit ?? null,
  }));
  const topCount = options.topCount ?? 12;
  if (options.content) attachContent(values, order, topCount, options.content);
  return {
    title: options.title ?? 'In-Run Data Shapley report',
    subtitle: options.subtitle ?? run.dir,
    config: options.config ?? run.config,
    order,
    stageStarts: run.manifest.stageStarts ?? [],
    values,
    trace: run.trace,
    curation: options.curation ?? null,
    topCount,
    notes: options.notes,
    warnings: options.warnings ?? run.manifest.warnings ?? [],
    suspects: topSuspects(
      options.suspects !== undefined ? options.suspects : (run.suspects ?? null),
      topCount,
      options.content,
    ),
    attribution: run.text?.attribution
      ? attributionInput(run.text.attribution, topCount, options.content, options.queryText)
      : null,
  };
}
