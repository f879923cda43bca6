// A minimal PNG encoder from the PNG specification (zlib stream + CRC-32 chunks), independent of
// the decoder inrun uses, for writing test images.
import { deflateSync } from 'node:zlib';

function crc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/** A PNG of 8-bit samples: colour type 0 (grey, 1 sample), 2 (RGB, 3) or 6 (RGBA, 4). */
export function encodePng(width: number, height: number, colorType: 0 | 2 | 6, samples: number[]): Buffer {
  const per = { 0: 1, 2: 3, 6: 4 }[colorType];
  const raw = Buffer.alloc(height * (1 + width * per));
  for (let y = 0; y < height; y++) {
    raw[y * (1 + width * per)] = 0; // filter: none
    for (let x = 0; x < width * per; x++) raw[y * (1 + width * per) + 1 + x] = samples[y * width * per + x];
  }
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const out = Buffer.alloc(12 + data.length);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc32(body), 8 + data.length);
    return out;
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8;
  header[9] = colorType;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}
