// Reading a text file strictly as UTF-8: the Node side of ./utf8.ts, which stays free of Node
// imports so that the table parsers using it can run in a browser.
import { readFileSync } from 'node:fs';
import { fail } from '../util/errors.js';
import { decodeUtf8Strict } from './utf8.js';

/** Reads a file and decodes it with {@link decodeUtf8Strict}; errors name the path. */
export function readUtf8FileStrict(path: string): string {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    fail(`cannot read text file ${path}: ${(error as Error).message}`);
  }
  return decodeUtf8Strict(bytes, path);
}
