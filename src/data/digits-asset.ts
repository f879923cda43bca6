// The bundled digits as one compact binary file for the web page (built by scripts/build-web.mjs
// from the `mnist` package, never committed): the mnist images use 256 distinct intensities, so
// each pixel is a one-byte index into a palette of those float32 values, and the whole file is
// deflated. Decoding gives back exactly the float32 pixels digitImages() reads from the JSON files.
//
// Layout before deflate (little-endian): "INRUNDG1", u32 classes, u32 images per class, u32 pixels
// per image, 256 float32 palette entries, then classes × images × pixels palette indices.
import { deflateSync, inflateSync } from 'fflate';
import { fail } from '../util/errors.js';

const MAGIC = 'INRUNDG1';
const PALETTE = 256;
const HEADER = MAGIC.length + 12 + PALETTE * 4;

/** The first `perClass` images of each class (flat [count × pixels] arrays) as the asset's bytes. */
export function encodeDigitsAsset(images: Float32Array[], perClass: number, pixels: number): Uint8Array {
  const levels = new Set<number>();
  for (let c = 0; c < images.length; c++) {
    if (images[c].length < perClass * pixels)
      fail(`digits asset: class ${c} has ${images[c].length / pixels} images, fewer than ${perClass}`);
    for (const x of images[c].subarray(0, perClass * pixels)) levels.add(x);
  }
  if (levels.size > PALETTE)
    fail(`digits asset: the images use ${levels.size} distinct pixel values; one byte holds ${PALETTE}`);
  const palette = new Float32Array(PALETTE);
  palette.set([...levels].sort((a, b) => a - b));
  const index = new Map(Array.from(palette.subarray(0, levels.size), (x, k) => [x, k]));
  const out = new Uint8Array(HEADER + images.length * perClass * pixels);
  const view = new DataView(out.buffer);
  out.set(new TextEncoder().encode(MAGIC));
  view.setUint32(8, images.length, true);
  view.setUint32(12, perClass, true);
  view.setUint32(16, pixels, true);
  for (let k = 0; k < PALETTE; k++) view.setFloat32(20 + 4 * k, palette[k], true);
  let at = HEADER;
  for (const classImages of images)
    for (const x of classImages.subarray(0, perClass * pixels)) out[at++] = index.get(x)!;
  return deflateSync(out, { level: 9 });
}

/**
 * The asset's images: per class, a flat [images × pixels] float32 array. `where` names the file in
 * errors (a truncated download, another file at its address).
 */
export function decodeDigitsAsset(bytes: Uint8Array, where: string): Float32Array[] {
  let raw: Uint8Array;
  try {
    raw = inflateSync(bytes);
  } catch (error) {
    return fail(`${where}: not a digits asset (it does not inflate: ${(error as Error).message})`);
  }
  if (raw.length < HEADER || new TextDecoder().decode(raw.subarray(0, 8)) !== MAGIC)
    fail(`${where}: not a digits asset of this inrun (no ${MAGIC} header)`);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const classes = view.getUint32(8, true);
  const perClass = view.getUint32(12, true);
  const pixels = view.getUint32(16, true);
  if (raw.length !== HEADER + classes * perClass * pixels)
    fail(
      `${where}: truncated digits asset (${raw.length} bytes; ${classes} classes of ${perClass} images need ${HEADER + classes * perClass * pixels})`,
    );
  const palette = new Float32Array(PALETTE);
  for (let k = 0; k < PALETTE; k++) palette[k] = view.getFloat32(20 + 4 * k, true);
  const images: Float32Array[] = [];
  for (let c = 0; c < classes; c++) {
    const codes = raw.subarray(HEADER + c * perClass * pixels, HEADER + (c + 1) * perClass * pixels);
    images.push(Float32Array.from(codes, (code) => palette[code]));
  }
  return images;
}
