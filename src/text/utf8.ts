/**
 * Strict UTF-8 handling for text read from files.
 *
 * JavaScript strings are UTF-16, so once text is a string its bytes are no longer in question: a
 * file with invalid UTF-8 must be caught where its bytes are decoded. `TextDecoder` (and
 * `readFileSync(path, 'utf8')`) silently turn invalid bytes into U+FFFD, which would put made-up
 * characters into training data; every file that inrun reads as text goes through
 * {@link decodeUtf8Strict} instead, which refuses invalid bytes and says where they are.
 *
 * The one thing a string can hold that no UTF-8 can encode is an unpaired surrogate (a lone half
 * of a UTF-16 pair, e.g. from a JSON escape like "\ud800"); {@link findUnpairedSurrogate} finds
 * those, and the tokenizers refuse them rather than silently change the text.
 */
import { fail } from '../util/errors.js';

const strictDecoder = new TextDecoder('utf-8', { fatal: true });

/**
 * Decodes UTF-8 bytes, refusing invalid ones: throws InrunError naming `where` (a file path or
 * another description of the bytes' origin), the byte offset and line of the first invalid
 * sequence, and its bytes. A leading byte-order mark is dropped, as `TextDecoder` does.
 */
export function decodeUtf8Strict(bytes: Uint8Array, where: string): string {
  try {
    return strictDecoder.decode(bytes);
  } catch {
    const offset = firstInvalidUtf8Offset(bytes);
    // TextDecoder and the scan below follow the same (WHATWG) rules; -1 here would be a bug.
    const at = Math.max(offset, 0);
    let line = 1;
    for (let i = 0; i < at; i++) if (bytes[i] === 0x0a) line++;
    const shown = Array.from(bytes.subarray(at, at + 4), (b) => b.toString(16).padStart(2, '0')).join(' ');
    fail(
      `${where}: not valid UTF-8: invalid byte sequence at byte offset ${at} (line ${line}), bytes ${shown}; ` +
        'text files must be UTF-8 encoded',
    );
  }
}

/**
 * Byte offset where the first invalid UTF-8 sequence starts, or -1 if all of `bytes` is valid
 * UTF-8. Invalid means what the WHATWG decoder (TextDecoder) rejects: a byte that cannot start a
 * sequence (80–BF, C0, C1, F5–FF), a lead byte not followed by enough valid continuation bytes
 * (including at the end of the input), overlong forms, UTF-16 surrogates (ED A0–BF …) and code
 * points above U+10FFFF.
 */
export function firstInvalidUtf8Offset(bytes: Uint8Array): number {
  const n = bytes.length;
  let i = 0;
  while (i < n) {
    const b = bytes[i];
    if (b < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      if (b === 0xe0) lo = 0xa0;
      else if (b === 0xed) hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      if (b === 0xf0) lo = 0x90;
      else if (b === 0xf4) hi = 0x8f;
    } else return i;
    for (let k = 1; k <= need; k++) {
      const j = i + k;
      if (j >= n) return i;
      const c = bytes[j];
      if (c < lo || c > hi) return i;
      lo = 0x80;
      hi = 0xbf;
    }
    i += need + 1;
  }
  return -1;
}

// With the `u` flag a well-formed surrogate pair is one code point, so this matches lone halves only.
const UNPAIRED_SURROGATE = /[\uD800-\uDFFF]/u;

/** UTF-16 index of the first unpaired surrogate in `text`, or -1 if it is well-formed Unicode. */
export function findUnpairedSurrogate(text: string): number {
  const match = UNPAIRED_SURROGATE.exec(text);
  return match ? match.index : -1;
}

/** Throws InrunError (naming `where` and the index) if `text` holds an unpaired surrogate. */
export function checkWellFormed(text: string, where: string): void {
  const index = findUnpairedSurrogate(text);
  if (index >= 0) {
    const code = text.charCodeAt(index).toString(16).toUpperCase();
    fail(
      `${where}: text holds an unpaired UTF-16 surrogate U+${code} at index ${index}; ` +
        'it is not valid Unicode and cannot be encoded exactly (fix the source text)',
    );
  }
}
