// What the documentation shows in code: fenced TypeScript blocks, the names they import from
// 'inrun', and the API names written in inline code spans.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

export interface CodeBlock {
  /** The Markdown file, relative to the repository root. */
  file: string;
  /** 1-based lines of the opening and the closing fence. */
  line: number;
  end: number;
  lang: string;
  code: string;
}

const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([^\s`]*)/;

/** Fenced code blocks of a Markdown text, with their info string's first word as `lang`. */
export function codeBlocks(markdown: string, file: string): CodeBlock[] {
  const lines = markdown.split('\n');
  const blocks: CodeBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE.exec(lines[i]);
    if (!open) continue;
    const fence = open[1];
    const body: string[] = [];
    let j = i + 1;
    // A closing fence is at least as long as the opening one, of the same character.
    while (j < lines.length && !new RegExp(`^ {0,3}${fence[0]}{${fence.length},}\\s*$`).test(lines[j])) {
      body.push(lines[j]);
      j++;
    }
    if (j === lines.length) throw new Error(`${file}:${i + 1}: unclosed code fence`);
    blocks.push({ file, line: i + 1, end: j + 1, lang: open[2].toLowerCase(), code: `${body.join('\n')}\n` });
    i = j;
  }
  return blocks;
}

export const TS_LANGS = new Set(['ts', 'typescript', 'mts', 'cts', 'tsx']);
export const JS_LANGS = new Set(['js', 'javascript', 'mjs', 'cjs', 'jsx']);

export interface ImportedName {
  name: string;
  /** `import type { … }` or `import { type X }`: needs only a type export. */
  typeOnly: boolean;
}

/**
 * Names taken from 'inrun' (by their exported name, not a local alias): static imports, and
 * destructured `require('inrun')` / `await import('inrun')`.
 */
export function inrunImports(code: string): ImportedName[] {
  const names: ImportedName[] = [];
  const destructured = /\{([^}]*)\}\s*=\s*(?:await\s+import|require)\s*\(\s*['"]inrun['"]\s*\)/g;
  for (const m of code.matchAll(destructured)) {
    for (const spec of m[1].split(',')) {
      const name = spec.split(':')[0].trim();
      if (name !== '') names.push({ name, typeOnly: false });
    }
  }
  const statement =
    /\bimport\s+(type\s+)?(?:([A-Za-z_$][\w$]*)\s*,?\s*)?(?:\{([^}]*)\}|\*\s+as\s+[A-Za-z_$][\w$]*)?\s*from\s*['"]inrun['"]/g;
  for (const m of code.matchAll(statement)) {
    const typeOnly = m[1] !== undefined;
    // A default import needs a default export.
    if (m[2] !== undefined && m[2] !== 'type') names.push({ name: 'default', typeOnly });
    for (const spec of (m[3] ?? '').split(',')) {
      const parts = spec.trim().split(/\s+/);
      if (parts[0] === '') continue;
      const specTypeOnly = parts[0] === 'type' && parts.length > 1 && parts[1] !== 'as';
      names.push({ name: specTypeOnly ? parts[1] : parts[0], typeOnly: typeOnly || specTypeOnly });
    }
  }
  return names;
}

/** Contents of the inline code spans of a Markdown text (outside fenced blocks), whitespace collapsed. */
export function codeSpans(markdown: string, file: string): string[] {
  const prose = markdown.split('\n');
  for (const block of codeBlocks(markdown, file)) prose.fill('', block.line - 1, block.end);
  return [...prose.join('\n').matchAll(/(`+)([^`]|[^`][\s\S]*?[^`])\1(?!`)/g)].map((m) =>
    m[2].replace(/\s+/g, ' ').trim(),
  );
}

/**
 * The function or class an inline span calls (`loadRun(dir)`, `new Sequential(…)`), if any; a
 * space before the parenthesis makes it prose (`Adelie (class 0)`).
 */
export function calledName(span: string): string | undefined {
  return /^(?:new\s+)?([A-Za-z_$][\w$]*)\(/.exec(span)?.[1];
}

/**
 * The span itself when it is an identifier written like an API name, with a capital or an
 * underscore (`RUN_FILES`, `TraceEntry`, `loadRun`). A plain lowercase word (`mean`, `gpt`) is as
 * often a config value as a function, so it does not count.
 */
export function bareName(span: string): string | undefined {
  return /^[A-Za-z_$][\w$]*$/.test(span) && /[A-Z_]/.test(span) ? span : undefined;
}

/** Names declared with `export` anywhere under `dir` (.ts files), and whether each is a value. */
export function sourceExports(dir: string): Map<string, 'value' | 'type'> {
  const found = new Map<string, 'value' | 'type'>();
  const declaration =
    /^export\s+(?:declare\s+)?(?:abstract\s+)?(?:async\s+)?(const|let|function\*?|class|enum|interface|type)\s+([A-Za-z_$][\w$]*)/gm;
  for (const file of tsFiles(dir)) {
    for (const m of readFileSync(file, 'utf8').matchAll(declaration)) {
      const kind = m[1] === 'interface' || m[1] === 'type' ? 'type' : 'value';
      if (found.get(m[2]) !== 'value') found.set(m[2], kind);
    }
  }
  return found;
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return tsFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** README.md and docs/*.md of the repository, as [path relative to root, text]. */
export function documentationFiles(root: string): [string, string][] {
  const docs = readdirSync(join(root, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name) => join(root, 'docs', name));
  return [join(root, 'README.md'), ...docs].map((path) => [relative(root, path), readFileSync(path, 'utf8')]);
}
