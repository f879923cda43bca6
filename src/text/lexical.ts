/**
 * Lexical attribution baselines: rank training documents by how much of a query text's wording
 * they share. In-run values say which documents *helped the model* on a query; these say which
 * documents *share its words* — the comparison the paper draws with BM25 (a training text still
 * gets credit for a topical rewrite that shares almost no words with it). All functions are pure
 * functions of plain strings; nothing here depends on a model or a tokenizer of the model.
 *
 * ## Words
 *
 * {@link lexicalWords}: the text is put in Unicode normalisation form NFC, split into maximal runs
 * of Unicode letters and digits — the regular expression `/[\p{L}\p{N}]+/gu` — and each run is
 * lower-cased with `String.prototype.toLowerCase` (Unicode's default case mapping, independent of
 * the locale). Everything else (spaces, punctuation, apostrophes, hyphens, `_`, symbols, emoji)
 * separates words and is dropped. No stemming, no stop words: "cat" and "cats" are different
 * words, and "the" counts like any other word (TF-IDF and BM25 give it a small weight through
 * its document frequency instead).
 *
 * Consequences: "don't" → `don`, `t`; "well-known" → `well`, `known`; "U.S." → `u`, `s`;
 * "3.14" → `3`, `14`; "1,000" → `1`, `000`; "2nd" → `2nd`; "Café" → `café` (also when the text
 * spells é as e + combining accent: NFC composes them). Characters are not folded: "１２" (full
 * width) ≠ "12", "é" ≠ "e". A combining mark that has no precomposed form is not a letter, so it
 * splits the word — this splits words in scripts that write vowels as marks (Devanagari, Thai…);
 * the baselines are meant for English-like text. Scripts written without spaces are not segmented:
 * "東京は大きい" is one word (a run of Han and Hiragana letters), so for Chinese or Japanese text
 * only whole runs between punctuation can match. In Python:
 * `[w.lower() for w in re.findall(r"[^\W_]+", unicodedata.normalize("NFC", text))]`.
 *
 * ## Scores (N documents; tf(t, d) = how many times word t occurs in document d; df(t) = how
 * many documents hold t; |d| = the number of words of d)
 *
 * - **TF-IDF cosine** ({@link tfidfRanking}), scikit-learn's `TfidfVectorizer` defaults (smooth
 *   idf, raw counts, L2 norm): idf(t) = ln((1 + N) / (1 + df(t))) + 1 over the documents (the
 *   query does not count towards N or df); a document's vector has entries tf(t, d)·idf(t), the
 *   query's entries are its own word counts times the same idf, for the words some document holds
 *   (a word no document holds is left out of the query vector, as `TfidfVectorizer.transform`
 *   does). score = cosine = (q · d) / (‖q‖ ‖d‖), in [0, 1]; 0 when either vector is zero (a
 *   document with no words; a query none of whose words is in any document). To reproduce:
 *   `TfidfVectorizer(token_pattern=None, tokenizer=words, lowercase=False)` fitted on the
 *   documents, then `linear_kernel(vectorizer.transform([query]), X)`. Option `sublinearTf`
 *   weighs by 1 + ln tf instead of tf, in documents and query (scikit-learn's `sublinear_tf`):
 *   with raw counts, a long document's vector is dominated by its frequent words ("the", "of",
 *   whose idf is still ≥ 1), so a passage can look more like another long text than like the one
 *   it was cut from; sublinear counts weaken that.
 * - **Okapi BM25** ({@link bm25Ranking}), with the non-negative idf of Lucene / Robertson:
 *   idf(t) = ln(1 + (N − df(t) + 0.5) / (df(t) + 0.5)), and
 *   score(d) = Σ over the query's words t of idf(t) · tf(t, d)·(k1 + 1) / (tf(t, d) + k1·(1 − b +
 *   b·|d| / avgdl)), avgdl = mean |d| over the documents. Every occurrence of a word in the query
 *   counts (a word written twice adds its term twice), as in `rank_bm25` and in a Lucene query of
 *   the words; a query word no document holds adds 0. Defaults k1 = 1.5, b = 0.75; k1 ≥ 0,
 *   b ∈ [0, 1]. (Lucene ≥ 8 drops the constant factor k1 + 1, which does not change the ranking.)
 * - **Word n-gram containment** ({@link ngramOverlapRanking}): G(x) = the set of distinct runs of
 *   n consecutive words of x (runs do not cross documents; a repeated n-gram counts once);
 *   score(d) = |G(query) ∩ G(d)| / |G(query)| — the fraction of the query's n-grams that occur
 *   anywhere in the document, in [0, 1] (containment, not Jaccard: the document's other n-grams do
 *   not lower it). Default n = 3. A document with fewer than n words scores 0.
 *
 * ## Rankings
 *
 * Every ranking lists all documents (or the first `top`), as `{ id, score, rank }` sorted by score,
 * highest first; rank 1 is the best. Ties (equal scores, e.g. every document at 0) keep the order
 * of the documents as given, and ranks are positions: tied documents get consecutive ranks, the
 * earlier document the smaller one.
 *
 * To rank many queries against the same documents, build a {@link LexicalIndex} once (it holds
 * the word ids of every document, term frequencies, document frequencies, TF-IDF norms and the
 * BM25 idf) and query it; the `*Ranking` functions build a throwaway index per call.
 *
 * Errors (InrunError): documents that are not a non-empty array of `{ id, text }` with string ids
 * and texts, duplicate ids, a query that is not a string, or a query with no words — every score
 * would be 0 (or 0/0), and a ranking in document order would look like an answer; `n` not an
 * integer ≥ 1, or a query with fewer than n words (it has no n-gram); k1 < 0; b outside [0, 1];
 * `top` not an integer ≥ 1; `sublinearTf` not a boolean; unknown option names.
 */
import { checkKnownKeys, checkNumber, describe, fail } from '../util/errors.js';

/** A document to rank: any object with a string `id` and `text` (a `TextDocument` is one). */
export interface LexicalDocument {
  readonly id: string;
  readonly text: string;
}

/** One document's place in a ranking. */
export interface LexicalScore {
  id: string;
  score: number;
  /** 1 = best; ties keep document order, so ranks are 1…N without gaps or repeats. */
  rank: number;
}

export interface RankingOptions {
  /** Keep only the best `top` documents (default: all). */
  top?: number;
}

export interface TfidfOptions extends RankingOptions {
  /**
   * Weigh a word by 1 + ln tf instead of its raw count tf, in documents and query alike
   * (scikit-learn's `sublinear_tf=True`); default false. Helps when passages are matched against
   * long documents, whose raw counts are dominated by frequent words.
   */
  sublinearTf?: boolean;
}

export interface Bm25Options extends RankingOptions {
  /** Term-frequency saturation, ≥ 0 (default 1.5; 0: a word counts once whatever its tf). */
  k1?: number;
  /** Length normalisation, in [0, 1] (default 0.75; 0: none). */
  b?: number;
}

export const BM25_DEFAULTS = { k1: 1.5, b: 0.75 } as const;
export const NGRAM_DEFAULT_N = 3;

const WORD = /[\p{L}\p{N}]+/gu;

/**
 * The words of a text as the lexical baselines see them: NFC, maximal runs of Unicode letters and
 * digits (`/[\p{L}\p{N}]+/gu`), each lower-cased; no stemming, no stop words (see the module
 * documentation for what happens to punctuation, digits, accents and CJK text).
 */
export function lexicalWords(text: string): string[] {
  if (typeof text !== 'string') fail(`text must be a string, got ${describe(text)}`);
  const words: string[] = [];
  for (const match of text.normalize('NFC').matchAll(WORD)) words.push(match[0].toLowerCase());
  return words;
}

/**
 * The documents, indexed once for many queries: word ids per document, (term, document, tf)
 * postings, document frequencies, TF-IDF idf and norms, BM25 idf and average length; the
 * positions used by n-gram containment are built on its first use.
 */
export class LexicalIndex {
  /** Document ids, in the order given. */
  readonly ids: readonly string[];
  /** Mean number of words per document (BM25's avgdl). */
  readonly averageLength: number;
  private readonly vocabulary = new Map<string, number>();
  /** Word ids of each document, in text order. */
  private readonly words: Int32Array[];
  /** Postings of term t: entries termStart[t] … termStart[t + 1] − 1 of postDoc / postTf. */
  private readonly termStart: Int32Array;
  private readonly postDoc: Int32Array;
  private readonly postTf: Int32Array;
  private readonly tfidfIdf: Float64Array;
  private readonly bm25Idf: Float64Array;
  private readonly tfidfNorm: Float64Array;
  private readonly tfidfNormSublinear: Float64Array;
  private positions?: { start: Int32Array; offset: Int32Array };

  constructor(documents: readonly LexicalDocument[]) {
    if (!Array.isArray(documents))
      fail(`lexical index: documents must be an array of { id, text }, got ${describe(documents)}`);
    if (documents.length === 0) fail('lexical index: no documents (give at least one { id, text })');
    const ids: string[] = [];
    const seen = new Map<string, number>();
    this.words = documents.map((doc, d) => {
      if (doc === null || typeof doc !== 'object')
        fail(`lexical index: document ${d} must be an object { id, text }, got ${describe(doc)}`);
      const { id, text } = doc;
      if (typeof id !== 'string')
        fail(`lexical index: document ${d}: id must be a string, got ${describe(id)}`);
      const previous = seen.get(id);
      if (previous !== undefined)
        fail(`lexical index: duplicate document id ${JSON.stringify(id)} (documents ${previous} and ${d})`);
      seen.set(id, d);
      if (typeof text !== 'string')
        fail(
          `lexical index: document ${d} (${JSON.stringify(id)}): text must be a string, got ${describe(text)}`,
        );
      ids.push(id);
      const words = lexicalWords(text);
      const wordIds = new Int32Array(words.length);
      for (let i = 0; i < words.length; i++) {
        let t = this.vocabulary.get(words[i]);
        if (t === undefined) {
          t = this.vocabulary.size;
          this.vocabulary.set(words[i], t);
        }
        wordIds[i] = t;
      }
      return wordIds;
    });
    this.ids = ids;
    const n = documents.length;
    const v = this.vocabulary.size;

    // Document frequencies (a stamp per term: the last document that counted it).
    const lastDoc = new Int32Array(v).fill(-1);
    const df = new Int32Array(v);
    let totalWords = 0;
    for (let d = 0; d < n; d++) {
      const words = this.words[d];
      totalWords += words.length;
      for (let i = 0; i < words.length; i++) {
        const t = words[i];
        if (lastDoc[t] !== d) {
          lastDoc[t] = d;
          df[t]++;
        }
      }
    }
    this.averageLength = totalWords / n;
    this.termStart = new Int32Array(v + 1);
    for (let t = 0; t < v; t++) this.termStart[t + 1] = this.termStart[t] + df[t];
    const pairs = this.termStart[v];
    this.postDoc = new Int32Array(pairs);
    this.postTf = new Int32Array(pairs);
    this.tfidfIdf = new Float64Array(v);
    this.bm25Idf = new Float64Array(v);
    for (let t = 0; t < v; t++) {
      this.tfidfIdf[t] = Math.log((1 + n) / (1 + df[t])) + 1;
      this.bm25Idf[t] = Math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5));
    }

    // Postings (documents in order within a term) and TF-IDF norms.
    const cursor = this.termStart.slice(0, v);
    const tf = new Int32Array(v);
    const touched = new Int32Array(v);
    this.tfidfNorm = new Float64Array(n);
    this.tfidfNormSublinear = new Float64Array(n);
    for (let d = 0; d < n; d++) {
      const words = this.words[d];
      let distinct = 0;
      for (let i = 0; i < words.length; i++) {
        const t = words[i];
        if (tf[t]++ === 0) touched[distinct++] = t;
      }
      let squares = 0;
      let squaresSublinear = 0;
      for (let k = 0; k < distinct; k++) {
        const t = touched[k];
        const at = cursor[t]++;
        this.postDoc[at] = d;
        this.postTf[at] = tf[t];
        const weight = tf[t] * this.tfidfIdf[t];
        squares += weight * weight;
        const weightSublinear = (1 + Math.log(tf[t])) * this.tfidfIdf[t];
        squaresSublinear += weightSublinear * weightSublinear;
        tf[t] = 0;
      }
      this.tfidfNorm[d] = Math.sqrt(squares);
      this.tfidfNormSublinear[d] = Math.sqrt(squaresSublinear);
    }
  }

  /** Number of documents. */
  get size(): number {
    return this.ids.length;
  }

  /** Number of distinct words over all documents. */
  get vocabularySize(): number {
    return this.vocabulary.size;
  }

  /** Documents by TF-IDF cosine similarity to the query (see the module documentation). */
  tfidf(query: string, options: TfidfOptions = {}): LexicalScore[] {
    checkKnownKeys('TF-IDF', options, ['sublinearTf', 'top']);
    const top = checkTop('TF-IDF', options.top);
    const sublinear = options.sublinearTf ?? false;
    if (typeof sublinear !== 'boolean')
      fail(`TF-IDF: sublinearTf must be true or false, got ${describe(sublinear)}`);
    const weigh = sublinear ? (tf: number) => 1 + Math.log(tf) : (tf: number) => tf;
    const norms = sublinear ? this.tfidfNormSublinear : this.tfidfNorm;
    const counts = this.queryCounts('TF-IDF', query);
    const dot = new Float64Array(this.size);
    let squares = 0;
    for (const [t, count] of counts) {
      const idf = this.tfidfIdf[t];
      const weight = weigh(count) * idf;
      squares += weight * weight;
      for (let p = this.termStart[t]; p < this.termStart[t + 1]; p++)
        dot[this.postDoc[p]] += weight * weigh(this.postTf[p]) * idf;
    }
    const queryNorm = Math.sqrt(squares);
    const scores = new Float64Array(this.size);
    for (let d = 0; d < this.size; d++) if (dot[d] > 0) scores[d] = dot[d] / (queryNorm * norms[d]);
    return this.rank(scores, top);
  }

  /** Documents by Okapi BM25 score for the query (see the module documentation). */
  bm25(query: string, options: Bm25Options = {}): LexicalScore[] {
    checkKnownKeys('BM25', options, ['k1', 'b', 'top']);
    const k1 = checkNumber('BM25 k1', options.k1 ?? BM25_DEFAULTS.k1, { min: 0 });
    const b = checkNumber('BM25 b', options.b ?? BM25_DEFAULTS.b, { min: 0, max: 1 });
    const top = checkTop('BM25', options.top);
    const counts = this.queryCounts('BM25', query);
    const scores = new Float64Array(this.size);
    for (const [t, count] of counts) {
      const idf = this.bm25Idf[t];
      for (let p = this.termStart[t]; p < this.termStart[t + 1]; p++) {
        const d = this.postDoc[p];
        const tf = this.postTf[p];
        const lengthNorm = 1 - b + (b * this.words[d].length) / this.averageLength;
        scores[d] += (count * idf * tf * (k1 + 1)) / (tf + k1 * lengthNorm);
      }
    }
    return this.rank(scores, top);
  }

  /**
   * Documents by the fraction of the query's distinct word n-grams that occur in them (see the
   * module documentation); the query needs at least n words.
   */
  ngramOverlap(query: string, n: number = NGRAM_DEFAULT_N, options: RankingOptions = {}): LexicalScore[] {
    checkNumber('n-gram overlap: n', n, { min: 1, integer: true });
    checkKnownKeys('n-gram overlap', options, ['top']);
    const top = checkTop('n-gram overlap', options.top);
    const words = queryWords('n-gram overlap', query);
    if (words.length < n)
      fail(
        `n-gram overlap: the query has ${words.length} word${words.length === 1 ? '' : 's'}, fewer than n = ${n}, so it has no word ${n}-gram`,
      );
    const ids = words.map((w) => this.vocabulary.get(w) ?? -1);
    // Distinct n-grams of the query (words are letter/digit runs, so a space cannot occur in one).
    const grams = new Map<string, number>(); // key → start position of its first occurrence
    for (let s = 0; s + n <= words.length; s++) {
      const key = words.slice(s, s + n).join(' ');
      if (!grams.has(key)) grams.set(key, s);
    }
    const { start, offset } = this.positionIndex();
    const counts = new Float64Array(this.size);
    for (const s of grams.values()) {
      // Anchor on the rarest word of the n-gram; check the others around each of its occurrences.
      let anchor = -1;
      let anchorCount = Infinity;
      for (let j = 0; j < n; j++) {
        const t = ids[s + j];
        const count = t < 0 ? 0 : start[t + 1] - start[t];
        if (count < anchorCount) {
          anchor = j;
          anchorCount = count;
        }
      }
      if (anchorCount === 0) continue; // a word no document holds
      const t = ids[s + anchor];
      // The anchor's occurrences come in the order of its postings: tf of them per document.
      let o = start[t];
      for (let p = this.termStart[t]; p < this.termStart[t + 1]; p++) {
        const d = this.postDoc[p];
        const end = o + this.postTf[p];
        const docWords = this.words[d];
        for (; o < end; o++) {
          const from = offset[o] - anchor;
          if (from < 0 || from + n > docWords.length) continue;
          let j = 0;
          while (j < n && docWords[from + j] === ids[s + j]) j++;
          if (j === n) {
            counts[d]++;
            break;
          }
        }
        o = end;
      }
    }
    for (let d = 0; d < this.size; d++) counts[d] /= grams.size;
    return this.rank(counts, top);
  }

  /** Query word counts for the words some document holds, in order of first occurrence. */
  private queryCounts(what: string, query: string): Map<number, number> {
    const counts = new Map<number, number>();
    for (const word of queryWords(what, query)) {
      const t = this.vocabulary.get(word);
      if (t !== undefined) counts.set(t, (counts.get(t) ?? 0) + 1);
    }
    return counts;
  }

  /**
   * Offsets of each term's occurrences: entries start[t] … start[t + 1] − 1, by document (in the
   * order of the term's postings, tf entries each) and then by offset.
   */
  private positionIndex(): { start: Int32Array; offset: Int32Array } {
    if (this.positions) return this.positions;
    const v = this.vocabulary.size;
    const start = new Int32Array(v + 1);
    for (const words of this.words) for (let i = 0; i < words.length; i++) start[words[i] + 1]++;
    for (let t = 0; t < v; t++) start[t + 1] += start[t];
    const cursor = start.slice(0, v);
    const offset = new Int32Array(start[v]);
    for (const words of this.words) for (let i = 0; i < words.length; i++) offset[cursor[words[i]]++] = i;
    this.positions = { start, offset };
    return this.positions;
  }

  private rank(scores: Float64Array, top: number): LexicalScore[] {
    const order = Array.from(scores.keys()).sort((a, b) => scores[b] - scores[a] || a - b);
    return order.slice(0, top).map((d, i) => ({ id: this.ids[d], score: scores[d], rank: i + 1 }));
  }
}

/** Documents ranked by TF-IDF cosine similarity to the query; see {@link LexicalIndex} to reuse an index. */
export function tfidfRanking(
  documents: readonly LexicalDocument[],
  query: string,
  options?: TfidfOptions,
): LexicalScore[] {
  return new LexicalIndex(documents).tfidf(query, options);
}

/** Documents ranked by Okapi BM25 (k1 = 1.5, b = 0.75 by default); see {@link LexicalIndex} to reuse an index. */
export function bm25Ranking(
  documents: readonly LexicalDocument[],
  query: string,
  options?: Bm25Options,
): LexicalScore[] {
  return new LexicalIndex(documents).bm25(query, options);
}

/** Documents ranked by the fraction of the query's word n-grams (default n = 3) they contain. */
export function ngramOverlapRanking(
  documents: readonly LexicalDocument[],
  query: string,
  n: number = NGRAM_DEFAULT_N,
  options?: RankingOptions,
): LexicalScore[] {
  return new LexicalIndex(documents).ngramOverlap(query, n, options);
}

function queryWords(what: string, query: string): string[] {
  if (typeof query !== 'string') fail(`${what}: the query must be a string, got ${describe(query)}`);
  const words = lexicalWords(query);
  if (words.length === 0)
    fail(
      `${what}: the query ${JSON.stringify(query.length > 60 ? `${query.slice(0, 60)}…` : query)} has no words (a word is a run of Unicode letters or digits), so every document would score 0`,
    );
  return words;
}

function checkTop(what: string, top: number | undefined): number {
  return top === undefined ? Infinity : checkNumber(`${what}: top`, top, { min: 1, integer: true });
}
