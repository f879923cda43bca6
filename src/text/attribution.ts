/**
 * Attribution: for each query (a validation document), the training documents ranked by how much
 * they helped the model on it, next to how much of its wording they share (TF-IDF, BM25).
 *
 * Rankings of the in-run values (ATTRIBUTION_RANKINGS):
 * - `best` (default): the document's best sequence by its per-step normalised value for the query.
 *   A passage is learnt from the few sequences that hold it, so a document's best sequence says more
 *   than its total, which grows with how many of its sequences happened to be sampled; and
 *   normalising each step per query keeps the first steps (whose raw values dwarf the rest) from
 *   deciding the ranking.
 * - `normalized`: the sum of the per-step normalised values of its sequences.
 * - `value`: the sum of its sequences' values (second order when kept): the exact share of the
 *   query's loss decrease, additive over documents, but dominated by a few large steps.
 * Unvalued documents (no sequence trained on) rank last, in document order; ties keep document order.
 */
import { fail } from '../util/errors.js';
import type { DocumentQueryValue } from './aggregate.js';
import { LexicalIndex, type LexicalScore, lexicalWords } from './lexical.js';

export const ATTRIBUTION_RANKINGS = ['best', 'normalized', 'value'] as const;
export type AttributionRanking = (typeof ATTRIBUTION_RANKINGS)[number];
export const DEFAULT_ATTRIBUTION_RANKING: AttributionRanking = 'best';

export interface AttributionQuery {
  documentId: string;
  source: string;
  text: string;
}

export interface AttributionRow extends DocumentQueryValue {
  /** Place under the chosen ranking of the in-run values (1 = most helpful). */
  rank: number;
  /** Places under the lexical baselines; null when the query has no words. */
  rankTfidf: number | null;
  rankBm25: number | null;
}

/** The key a ranking sorts by (larger first); NaN for unvalued documents. */
export function rankingKey(row: DocumentQueryValue, ranking: AttributionRanking): number {
  if (row.sequencesValued === 0) return Number.NaN;
  if (ranking === 'best') return row.bestNormalized;
  if (ranking === 'normalized') return row.normalized;
  return Number.isNaN(row.secondOrder) ? row.firstOrder : row.secondOrder;
}

/**
 * Each query's rows (`documentQueryValues`) ranked, most helpful first, with the lexical ranks of
 * the same documents for the query's text. `documents`: the training documents' texts by id.
 */
export function attribution(
  rowsByQuery: DocumentQueryValue[][],
  queries: AttributionQuery[],
  documents: ReadonlyMap<string, string>,
  ranking: AttributionRanking = DEFAULT_ATTRIBUTION_RANKING,
): AttributionRow[][] {
  if (!ATTRIBUTION_RANKINGS.includes(ranking))
    fail(
      `attribution ranking must be one of ${ATTRIBUTION_RANKINGS.join(', ')}, got ${JSON.stringify(ranking)}`,
    );
  if (rowsByQuery.length !== queries.length)
    throw new Error(`internal: ${rowsByQuery.length} queries of values, ${queries.length} query texts`);
  const ids = rowsByQuery[0]?.map((row) => row.documentId) ?? [];
  const index =
    ids.length > 0
      ? new LexicalIndex(
          ids.map((id) => {
            const text = documents.get(id);
            if (text === undefined) throw new Error(`internal: no text for training document ${id}`);
            return { id, text };
          }),
        )
      : null;
  return rowsByQuery.map((rows, q) => {
    const query = queries[q].text;
    const hasWords = index !== null && lexicalWords(query).length > 0;
    const ranksOf = (scores: LexicalScore[] | null) => new Map(scores?.map((s) => [s.id, s.rank]) ?? []);
    const tfidf = ranksOf(hasWords ? index.tfidf(query) : null);
    const bm25 = ranksOf(hasWords ? index.bm25(query) : null);
    const order = rows.map((row, position) => ({ row, position, key: rankingKey(row, ranking) }));
    order.sort((a, b) => {
      const aValued = !Number.isNaN(a.key);
      const bValued = !Number.isNaN(b.key);
      if (aValued !== bValued) return aValued ? -1 : 1;
      return (aValued && b.key !== a.key ? b.key - a.key : 0) || a.position - b.position;
    });
    return order.map(({ row }, k) => ({
      ...row,
      rank: k + 1,
      rankTfidf: tfidf.get(row.documentId) ?? null,
      rankBm25: bm25.get(row.documentId) ?? null,
    }));
  });
}
