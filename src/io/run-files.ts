// The names of a run directory's files (layout: ./run-dir.ts). No Node imports: the web page
// names the files of its run archive with them too.

/** The files (and the checkpoint folder) of a run directory, by role. */
export const RUN_FILES = {
  config: 'config.json',
  manifest: 'manifest.json',
  valuesCsv: 'values.csv',
  valuesJsonl: 'values.jsonl',
  valuesParquet: 'values.parquet',
  /** Classification runs: the training examples from most to least suspicious (src/run/suspects.ts). */
  suspects: 'suspects.csv',
  perValidation: 'per_validation.safetensors',
  traceCsv: 'trace.csv',
  traceJsonl: 'trace.jsonl',
  weightsInitial: 'weights.initial.safetensors',
  weightsFinal: 'weights.final.safetensors',
  vocabulary: 'vocabulary.json',
  documents: 'documents.csv',
  sources: 'sources.csv',
  /** Text runs with perValidation: per query, the training documents ranked (src/text/attribution.ts). */
  attribution: 'attribution.csv',
  /** With `stepValues`: every step's values per example occurrence (src/io/step-values.ts). */
  stepValues: 'step-values.parquet',
  /** While a run is unfinished: the state to resume from (a folder; ./checkpoint.ts). */
  checkpoint: 'checkpoint',
} as const;

/** A JSON file of a run (config.json, manifest.json): two-space indented, with a final newline. */
export function jsonFileText(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}
