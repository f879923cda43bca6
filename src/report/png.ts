// A minimal PNG encoder for small grey and RGB images, so example images embed as data URLs.
import { deflateSync } from 'node:zlib';

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/**
 * An 8-bit grayscale PNG of `pixels` (row-major, width × height), mapping `range[0]` to black and
 * `range[1]` to white (default: the pixels' own min and max; a constant image is mid-gray).
 */
export function grayscalePng(
  pixels: ArrayLike<number>,
  width: number,
  height: number,
  range?: [number, number],
): Uint8Array {
  return imagePng(pixels, width, height, 1, range);
}

/**
 * An 8-bit PNG of channels-first `pixels` ([channels, height, width]): grey for 1 channel, RGB for
 * 3, one `range` for all channels (default: the pixels' own min and max; constant: mid-grey).
 */
export function imagePng(
  pixels: ArrayLike<number>,
  width: number,
  height: number,
  channels: 1 | 3,
  range?: [number, number],
): Uint8Array {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1)
    throw new RangeError(`imagePng: bad size ${width}×${height}`);
  if (channels !== 1 && channels !== 3) throw new RangeError(`imagePng: ${channels} channels (1 or 3)`);
  const plane = width * height;
  if (pixels.length !== channels * plane)
    throw new RangeError(`imagePng: ${pixels.length} values for a ${width}×${height}×${channels} image`);
  let lo = range?.[0];
  let hi = range?.[1];
  if (lo === undefined || hi === undefined) {
    lo = Infinity;
    hi = -Infinity;
    for (let i = 0; i < pixels.length; i++) {
      const v = pixels[i];
      if (Number.isFinite(v)) {
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
    }
  }
  const span = hi - lo;
  const stride = 1 + width * channels;
  const raw = new Uint8Array(stride * height);
  for (let y = 0; y < height; y++) {
    raw[y * stride] = 0; // filter: none
    for (let x = 0; x < width; x++)
      for (let c = 0; c < channels; c++) {
        const v = pixels[c * plane + y * width + x];
        const t = Number.isFinite(v) && span > 0 ? (v - lo) / span : 0.5;
        raw[y * stride + 1 + x * channels + c] = Math.round(255 * Math.min(1, Math.max(0, t)));
      }
  }
  const header = new Uint8Array(13);
  const hv = new DataView(header.buffer);
  hv.setUint32(0, width);
  hv.setUint32(4, height);
  header[8] = 8; // bit depth
  header[9] = channels === 1 ? 0 : 2; // grayscale or RGB
  const parts = [
    new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', new Uint8Array(deflateSync(raw))),
    chunk('IEND', new Uint8Array(0)),
  ];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** The PNG as a data: URL. */
export function grayscalePngDataUrl(
  pixels: ArrayLike<number>,
  width: number,
  height: number,
  range?: [number, number],
  channels: 1 | 3 = 1,
): string {
  return `data:image/png;base64,${Buffer.from(imagePng(pixels, width, height, channels, range)).toString('base64')}`;
}
