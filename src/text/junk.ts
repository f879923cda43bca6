/**
 * Junk text: the kinds of bad document a web-scraped corpus holds, generated from a seed so that a
 * curation method can be tested on documents known to be junk (`inrun evaluate` plants them in a
 * text run; the curation case study mixes them into its corpus). Pure functions of strings and an
 * {@link Rng}; nothing here reads files, so it runs in a browser too.
 *
 * Words are the whitespace-separated pieces of a text (`text.split(/\s+/)`, punctuation attached),
 * and junk is written with single spaces between them:
 *
 * - `random-words`: as many words as the source, each drawn uniformly from a vocabulary
 *   ({@link junkVocabulary}: the distinct lower-cased words of some clean texts) — word salad.
 * - `boilerplate`: {@link BOILERPLATE} (newsletter and copyright lines) repeated to at least the
 *   requested length — the repeated page furniture of scraped web pages.
 * - `shuffled`: the source's own words in a random order (a uniform permutation) — the same bag of
 *   words, so lexical similarity cannot tell it from the source.
 * - `near-duplicate`: the source with {@link NEAR_DUPLICATE_EDITS} randomly chosen words replaced
 *   by vocabulary words (a position may be drawn twice) — the same passage again, nearly verbatim.
 */
import { fail } from '../util/errors.js';
import type { Rng } from '../util/rng.js';
import { lexicalWords } from './lexical.js';

export const JUNK_KINDS = ['random-words', 'boilerplate', 'shuffled', 'near-duplicate'] as const;
export type JunkKind = (typeof JUNK_KINDS)[number];

export const BOILERPLATE =
  'Subscribe to our newsletter for the latest updates. Click here to read more. All rights reserved. ' +
  'Share this page with your friends. ';

/** Words a near-duplicate replaces in its source. */
export const NEAR_DUPLICATE_EDITS = 3;

export interface JunkOptions {
  /** Words `random-words` and `near-duplicate` draw from (see {@link junkVocabulary}). */
  vocabulary?: readonly string[];
  /** `boilerplate`: characters to reach at least (default: the source's length). */
  length?: number;
}

/** The sorted distinct words (lower-cased runs of letters and digits) of clean texts: junk's vocabulary. */
export function junkVocabulary(texts: readonly string[]): string[] {
  return [...new Set(texts.flatMap((text) => lexicalWords(text)))].sort();
}

/**
 * A junk text of `kind` made from `source` (see the module documentation), drawing from `rng`:
 * `random-words` one draw per source word, `shuffled` one permutation, `near-duplicate` two draws
 * per edit, `boilerplate` none.
 */
export function junkText(kind: JunkKind, source: string, rng: Rng, options: JunkOptions = {}): string {
  if (!JUNK_KINDS.includes(kind))
    fail(`unknown junk kind ${JSON.stringify(kind)} (known: ${JUNK_KINDS.join(', ')})`);
  if (kind === 'boilerplate') {
    const length = options.length ?? source.length;
    return BOILERPLATE.repeat(Math.max(1, Math.ceil(length / BOILERPLATE.length)));
  }
  const words = source.split(/\s+/);
  if (kind === 'shuffled') return Array.from(rng.permutation(words.length), (i) => words[i]).join(' ');
  const vocabulary = options.vocabulary ?? [];
  if (vocabulary.length === 0) fail(`${kind} junk needs a vocabulary of at least one word to draw from`);
  const draw = () => vocabulary[rng.int(vocabulary.length)];
  if (kind === 'random-words') return words.map(draw).join(' ');
  const edited = words.slice();
  for (let e = 0; e < NEAR_DUPLICATE_EDITS; e++) edited[rng.int(edited.length)] = draw();
  return edited.join(' ');
}
