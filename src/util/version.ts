import { readFileSync } from 'node:fs';

/** inrun's version, from its package.json (two folders above this file in src/ and in dist/). */
export function packageVersion(): string {
  const text = readFileSync(new URL('../../package.json', import.meta.url), 'utf8');
  return (JSON.parse(text) as { version: string }).version;
}
