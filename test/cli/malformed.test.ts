// Malformed input to `inrun train`, table-driven over CSV, JSONL, Parquet and the config: every
// case must fail (exit ≠ 0) with one clear line naming the file and, where it applies, the line
// (or Parquet row) and column — no stack trace, and no run directory left behind.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parquetWriteBuffer } from 'hyparquet-writer';
import YAML from 'yaml';
import { encodeSafetensors } from '../../src/io/safetensors.js';
import { runCli, tempDir, writeFiles } from './fixtures/train-data.js';

type Files = Record<string, string | Uint8Array>;

interface Case {
  name: string;
  /** Files written next to the config (they replace the valid defaults of the same name). */
  files?: Files;
  /** Changes to the valid config: key path → value (undefined deletes). */
  config?: Record<string, unknown>;
  /** Raw config file text instead of the (patched) default; name defaults to run.yaml. */
  configText?: string;
  configName?: string;
  /** Extra command-line arguments (after `--config run.yaml --out …`). */
  args?: string[];
  /** Replace the whole command line (after `train`); {dir} and {out} are substituted. */
  argv?: string[];
  /** What the message must say. */
  expect: RegExp;
}

const CSV_TRAIN = 'id,x1,x2,label\na,0.5,1.0,0\nb,1.5,-1.0,1\nc,-0.5,0.0,2\nd,0.1,0.2,1\n';
const CSV_VAL = 'id,x1,x2,label\nv1,0.4,0.9,0\nv2,1.2,-0.8,1\nv3,-0.2,0.1,2\n';

const jsonl = (rows: Record<string, unknown>[]) => rows.map((r) => `${JSON.stringify(r)}\n`).join('');
const JSONL_ROWS = [
  { id: 'a', x1: 0.5, x2: 1.0, label: 0 },
  { id: 'b', x1: 1.5, x2: -1.0, label: 1 },
  { id: 'c', x1: -0.5, x2: 0.0, label: 2 },
  { id: 'd', x1: 0.1, x2: 0.2, label: 1 },
];
const JSONL_VAL = jsonl([
  { id: 'v1', x1: 0.4, x2: 0.9, label: 0 },
  { id: 'v2', x1: 1.2, x2: -0.8, label: 1 },
]);
/** JSONL training rows with row `r` (0-based) patched; line = r + 1. */
const jsonlWith = (r: number, patch: Record<string, unknown>, drop: string[] = []) =>
  jsonl(
    JSONL_ROWS.map((row, k) => {
      if (k !== r) return row;
      const out: Record<string, unknown> = { ...row, ...patch };
      for (const key of drop) delete out[key];
      return out;
    }),
  );

type Column = { name: string; data: unknown[]; type: 'STRING' | 'DOUBLE' | 'INT32' | 'INT64' | 'BOOLEAN' };
const parquet = (columns: Column[]) => new Uint8Array(parquetWriteBuffer({ columnData: columns as never }));
const PQ_BASE: Column[] = [
  { name: 'id', data: ['a', 'b', 'c', 'd'], type: 'STRING' },
  { name: 'x1', data: [0.5, 1.5, -0.5, 0.1], type: 'DOUBLE' },
  { name: 'x2', data: [1.0, -1.0, 0.0, 0.2], type: 'DOUBLE' },
  { name: 'label', data: [0, 1, 2, 1], type: 'INT32' },
];
const PQ_VALID = parquet(PQ_BASE);
const pqWith = (name: string, column: Partial<Column>) =>
  parquet(PQ_BASE.map((c) => (c.name === name ? { ...c, ...column } : c)));
const pqWithout = (name: string) => parquet(PQ_BASE.filter((c) => c.name !== name));

const csvWithLine = (line: number, text: string) => {
  const lines = CSV_TRAIN.split('\n');
  lines[line - 1] = text;
  return lines.join('\n');
};
const bytes = (...parts: (string | number[])[]) =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p))));
const HUGE = 'x'.repeat(16 * 1024 * 1024 + 10);

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** "…/file: line N, column "c": …" */
const at = (file: string, line: number, column?: string, rest = '') =>
  new RegExp(
    `/${esc(file)}: line ${line}${column === undefined ? '' : `, column "${esc(column)}"`}: ${rest}`,
  );
const row = (file: string, n: number, column: string, rest = '') =>
  new RegExp(`/${esc(file)}: row ${n}, column "${esc(column)}": ${rest}`);
const inFile = (file: string, rest: string) => new RegExp(`/${esc(file)}: ${rest}`);

const csv: Case[] = [
  { name: 'empty file', files: { 'train.csv': '' }, expect: inFile('train.csv', 'the file is empty') },
  {
    name: 'blank lines only',
    files: { 'train.csv': '\n\n  \n' },
    expect: inFile('train.csv', 'the file holds only blank lines'),
  },
  {
    name: 'header only',
    files: { 'train.csv': 'id,x1,x2,label\n' },
    expect: inFile('train.csv', 'no data rows'),
  },
  {
    name: 'row with a missing column',
    files: { 'train.csv': csvWithLine(3, 'b,1.5,1') },
    expect: at('train.csv', 3, undefined, 'missing columns: 3 fields, the header has 4'),
  },
  {
    name: 'row with an extra column',
    files: { 'train.csv': csvWithLine(4, 'c,-0.5,0.0,2,9') },
    expect: at('train.csv', 4, undefined, 'extra columns: 5 fields'),
  },
  {
    name: 'NaN feature',
    files: { 'train.csv': csvWithLine(2, 'a,NaN,1.0,0') },
    expect: at('train.csv', 2, 'x1', '"NaN" is not a finite number'),
  },
  {
    name: 'nan feature',
    files: { 'train.csv': csvWithLine(3, 'b,1.5,nan,1') },
    expect: at('train.csv', 3, 'x2', '"nan" is not a finite number'),
  },
  {
    name: 'Infinity feature',
    files: { 'train.csv': csvWithLine(4, 'c,Infinity,0,2') },
    expect: at('train.csv', 4, 'x1', '"Infinity" is not a finite number'),
  },
  {
    name: '-inf feature',
    files: { 'train.csv': csvWithLine(5, 'd,0.1,-inf,1') },
    expect: at('train.csv', 5, 'x2', '"-inf" is not a finite number'),
  },
  {
    name: 'overflowing number',
    files: { 'train.csv': csvWithLine(2, 'a,1e999,1.0,0') },
    expect: at('train.csv', 2, 'x1', '"1e999" is not a finite number'),
  },
  {
    name: 'empty feature cell',
    files: { 'train.csv': csvWithLine(3, 'b,,1.0,1') },
    expect: at('train.csv', 3, 'x1', 'empty cell'),
  },
  {
    name: 'blank feature cell',
    files: { 'train.csv': csvWithLine(3, 'b,1.0,  ,1') },
    expect: at('train.csv', 3, 'x2', 'empty cell'),
  },
  {
    name: 'text in a feature',
    files: { 'train.csv': csvWithLine(4, 'c,abc,0.0,2') },
    expect: at('train.csv', 4, 'x1', '"abc" is not a number'),
  },
  {
    name: 'hex number',
    files: { 'train.csv': csvWithLine(4, 'c,0x10,0.0,2') },
    expect: at('train.csv', 4, 'x1', '"0x10" is not a number'),
  },
  {
    name: 'decimal comma',
    files: { 'train.csv': csvWithLine(5, 'd,"0,1",0.2,1') },
    expect: at('train.csv', 5, 'x1', '"0,1" is not a number'),
  },
  {
    name: 'text label',
    files: { 'train.csv': csvWithLine(2, 'a,0.5,1.0,cat') },
    expect: at('train.csv', 2, 'label', 'label "cat" is not a class index'),
  },
  {
    name: 'fractional label',
    files: { 'train.csv': csvWithLine(3, 'b,1.5,-1.0,1.5') },
    expect: at('train.csv', 3, 'label', 'label "1.5" is not a class index'),
  },
  {
    name: 'negative label',
    files: { 'train.csv': csvWithLine(4, 'c,-0.5,0.0,-1') },
    expect: at('train.csv', 4, 'label', 'label "-1" is not a class index'),
  },
  {
    name: 'empty label',
    files: { 'train.csv': csvWithLine(5, 'd,0.1,0.2,') },
    expect: at('train.csv', 5, 'label', 'empty label'),
  },
  {
    name: 'NaN label',
    files: { 'train.csv': csvWithLine(5, 'd,0.1,0.2,NaN') },
    expect: at('train.csv', 5, 'label', '"NaN" is not a finite number'),
  },
  {
    name: 'binary label 2',
    config: { task: 'binary' },
    expect: at('train.csv', 4, 'label', 'label "2" is out of range; a binary task needs 0 or 1'),
  },
  {
    name: 'binary label yes',
    config: { task: 'binary' },
    files: {
      'train.csv': 'id,x1,x2,label\na,0,0,0\nb,1,1,yes\n',
      'val.csv': 'id,x1,x2,label\nv1,0,0,0\nv2,1,1,1\n',
    },
    expect: at('train.csv', 3, 'label', 'label "yes" is not 0 or 1'),
  },
  {
    name: 'regression target text',
    config: { task: 'regression' },
    files: { 'train.csv': csvWithLine(3, 'b,1.5,-1.0,high') },
    expect: at('train.csv', 3, 'label', '"high" is not a number'),
  },
  {
    name: 'class out of range',
    config: { classes: 2 },
    expect: at('train.csv', 4, 'label', 'class 2 is out of range \\(2 classes: 0 to 1\\)'),
  },
  {
    name: 'duplicate id',
    files: { 'train.csv': csvWithLine(4, 'a,-0.5,0.0,2') },
    expect: at('train.csv', 4, 'id', 'duplicate id "a" \\(already used on line 2\\)'),
  },
  {
    name: 'empty id',
    files: { 'train.csv': csvWithLine(3, ',1.5,-1.0,1') },
    expect: at('train.csv', 3, 'id', 'empty id'),
  },
  {
    name: 'invalid UTF-8 byte',
    files: { 'train.csv': bytes('id,x1,x2,label\na,0.5,1.0,0\nb', [0xff], ',1.5,-1.0,1\n') },
    expect: at('train.csv', 3, undefined, 'invalid UTF-8 at byte offset 28'),
  },
  {
    name: 'truncated UTF-8 sequence at the end',
    files: { 'train.csv': bytes(CSV_TRAIN, 'e,1,1,0', [0xe2, 0x82]) },
    expect: at('train.csv', 6, undefined, 'invalid UTF-8 at byte offset'),
  },
  {
    name: 'overlong UTF-8',
    files: { 'train.csv': bytes('id,x1,x2,label\na,0.5,1.0,0\nb', [0xc0, 0xaf], ',1.5,-1.0,1\n') },
    expect: at('train.csv', 3, undefined, 'invalid UTF-8'),
  },
  {
    name: 'UTF-16 surrogate in UTF-8',
    files: { 'train.csv': bytes('id,x1,x2,label\na,0.5,1.0,0\nb', [0xed, 0xa0, 0x80], ',1.5,-1.0,1\n') },
    expect: at('train.csv', 3, undefined, 'invalid UTF-8'),
  },
  {
    name: 'huge line',
    files: { 'train.csv': `id,x1,x2,label\na,0.5,1.0,0\nb,${HUGE},1,1\n` },
    expect: inFile('train.csv', 'line 3 is \\d+ bytes long; lines longer than 16777216 bytes are refused'),
  },
  {
    name: 'unclosed quote',
    files: { 'train.csv': csvWithLine(3, 'b,"1.5,-1.0,1') },
    expect: inFile('train.csv', 'line \\d+: malformed CSV \\(.*[Qq]uote'),
  },
  {
    name: 'stray quote',
    files: { 'train.csv': csvWithLine(3, 'b,1.5"x",-1.0,1') },
    expect: inFile('train.csv', 'line 3: malformed CSV'),
  },
  {
    name: 'duplicate header',
    files: { 'train.csv': 'id,x1,x1,label\na,1,2,0\n' },
    expect: inFile('train.csv', 'line 1: column "x1" appears twice in the header'),
  },
  {
    name: 'empty header name',
    files: { 'train.csv': 'id,,x2,label\na,1,2,0\n' },
    expect: inFile('train.csv', 'line 1: header column 2 has no name'),
  },
  {
    name: 'label column missing',
    config: { 'columns.label': 'target' },
    expect: inFile('train.csv', 'no label column "target" \\(the file\'s columns: id, x1, x2, label\\)'),
  },
  {
    name: 'feature column missing',
    config: { 'columns.features': ['x1', 'x9'] },
    expect: inFile('train.csv', 'no feature column "x9"'),
  },
  {
    name: 'id column missing',
    config: { 'columns.id': 'key' },
    expect: inFile('train.csv', 'no id column "key"'),
  },
  {
    name: 'group column missing',
    config: { 'columns.group': 'source' },
    expect: inFile('train.csv', 'no group column "source"'),
  },
  {
    name: 'feature listed twice',
    config: { 'columns.features': ['x1', 'x1'] },
    expect: /columns\.features: "x1" is listed twice/,
  },
  {
    name: 'feature is the label',
    config: { 'columns.features': ['x1', 'label'] },
    expect: /columns\.features: "label" is also the id, label or group column/,
  },
  {
    name: 'all labels 0',
    files: { 'train.csv': 'id,x1,label\na,1,0\nb,2,0\n', 'val.csv': 'id,x1,label\nv,1,0\n' },
    expect: inFile('train.csv', 'every label is 0'),
  },
  {
    name: 'no numeric feature columns',
    files: { 'train.csv': 'id,name,label\na,foo,0\nb,bar,1\n' },
    expect: inFile('train.csv', 'no numeric feature columns'),
  },
  {
    name: 'validation misses a feature',
    files: { 'val.csv': 'id,x1,label\nv1,0.4,0\n' },
    expect: inFile('val.csv', 'no feature column "x2"'),
  },
  {
    name: 'validation NaN',
    files: { 'val.csv': 'id,x1,x2,label\nv1,0.4,NaN,0\n' },
    expect: at('val.csv', 2, 'x2', '"NaN" is not a finite number'),
  },
  {
    name: 'validation label out of range',
    config: { classes: 3 },
    files: { 'val.csv': 'id,x1,x2,label\nv1,0.4,0.1,0\nv2,0.4,0.1,5\n' },
    expect: at('val.csv', 3, 'label', 'class 5 is out of range'),
  },
  {
    name: 'missing file',
    config: { 'data.train': 'nope.csv' },
    expect: inFile('nope.csv', 'cannot read the data file \\(no such file\\)'),
  },
  {
    name: 'directory as data',
    config: { 'data.train': 'adir.csv' },
    files: { 'adir.csv/keep': '' },
    expect: inFile('adir.csv', 'is a directory; give a file'),
  },
  {
    name: 'unknown extension',
    config: { 'data.train': 'train.txt' },
    files: { 'train.txt': CSV_TRAIN },
    expect: inFile('train.txt', 'unknown data file type ".txt"'),
  },
];

const jsonlCases: Case[] = (<Case[]>[
  { name: 'empty file', files: { 'train.jsonl': '' }, expect: inFile('train.jsonl', 'the file is empty') },
  {
    name: 'blank lines only',
    files: { 'train.jsonl': '\n \n' },
    expect: inFile('train.jsonl', 'the file holds only blank lines'),
  },
  {
    name: 'invalid JSON',
    files: { 'train.jsonl': `${jsonl(JSONL_ROWS.slice(0, 2))}{"id": "c", x1: 1}\n` },
    expect: at('train.jsonl', 3, undefined, 'not valid JSON'),
  },
  {
    name: 'truncated last line',
    files: { 'train.jsonl': `${jsonl(JSONL_ROWS.slice(0, 3))}{"id": "d", "x1": 0.1, "x2"` },
    expect: at('train.jsonl', 4, undefined, 'not valid JSON'),
  },
  {
    name: 'NaN literal',
    files: { 'train.jsonl': `${jsonl(JSONL_ROWS.slice(0, 1))}{"id":"b","x1":NaN,"x2":1,"label":1}\n` },
    expect: at('train.jsonl', 2, undefined, 'not valid JSON'),
  },
  {
    name: 'array line',
    files: { 'train.jsonl': `${jsonl(JSONL_ROWS.slice(0, 1))}[1,2,3,1]\n` },
    expect: at('train.jsonl', 2, undefined, 'expected a JSON object, got an array'),
  },
  {
    name: 'null line',
    files: { 'train.jsonl': `${jsonl(JSONL_ROWS.slice(0, 2))}null\n` },
    expect: at('train.jsonl', 3, undefined, 'expected a JSON object, got null'),
  },
  {
    name: 'number line',
    files: { 'train.jsonl': `${jsonl(JSONL_ROWS.slice(0, 2))}42\n` },
    expect: at('train.jsonl', 3, undefined, 'expected a JSON object, got number'),
  },
  {
    name: 'empty first object',
    files: { 'train.jsonl': `{}\n${jsonl(JSONL_ROWS)}` },
    expect: at('train.jsonl', 1, undefined, 'the first object has no keys'),
  },
  {
    name: 'missing key',
    files: { 'train.jsonl': jsonlWith(2, {}, ['x2']) },
    expect: at('train.jsonl', 3, 'x2', 'missing \\(line 1 has it'),
  },
  {
    name: 'extra key',
    files: { 'train.jsonl': jsonlWith(1, { x3: 1 }) },
    expect: at('train.jsonl', 2, 'x3', 'extra column, not in line 1'),
  },
  {
    name: 'string feature',
    files: { 'train.jsonl': jsonlWith(1, { x1: '1.5' }) },
    expect: at('train.jsonl', 2, 'x1', 'expected a number, got the string "1.5"'),
  },
  {
    name: 'null feature',
    files: { 'train.jsonl': jsonlWith(2, { x2: null }) },
    expect: at('train.jsonl', 3, 'x2', 'empty cell'),
  },
  {
    name: 'boolean feature',
    files: { 'train.jsonl': jsonlWith(3, { x1: true }) },
    expect: at('train.jsonl', 4, 'x1', 'expected a number, got boolean true'),
  },
  {
    name: 'object feature',
    files: { 'train.jsonl': jsonlWith(3, { x1: { v: 1 } }) },
    expect: at('train.jsonl', 4, 'x1', 'expected a number, got an object'),
  },
  {
    name: 'array feature',
    files: { 'train.jsonl': jsonlWith(1, { x2: [1, 2] }) },
    expect: at('train.jsonl', 2, 'x2', 'expected a number, got an array'),
  },
  {
    name: 'overflowing number',
    files: { 'train.jsonl': jsonlWith(1, { x1: 1 }).replace('"x1":1,', '"x1":1e999,') },
    expect: at('train.jsonl', 2, 'x1', 'Infinity is not a finite number'),
  },
  {
    name: 'string label',
    files: { 'train.jsonl': jsonlWith(1, { label: 'dog' }) },
    expect: at('train.jsonl', 2, 'label', 'label "dog" is not a class index'),
  },
  {
    name: 'fractional label',
    files: { 'train.jsonl': jsonlWith(2, { label: 0.5 }) },
    expect: at('train.jsonl', 3, 'label', 'label 0.5 is not a class index'),
  },
  {
    name: 'null label',
    files: { 'train.jsonl': jsonlWith(2, { label: null }) },
    expect: at('train.jsonl', 3, 'label', 'empty label'),
  },
  {
    name: 'boolean label (classification)',
    files: { 'train.jsonl': jsonlWith(2, { label: true }) },
    expect: at('train.jsonl', 3, 'label', 'label true is not a class index'),
  },
  {
    name: 'duplicate id',
    files: { 'train.jsonl': jsonlWith(3, { id: 'b' }) },
    expect: at('train.jsonl', 4, 'id', 'duplicate id "b" \\(already used on line 2\\)'),
  },
  {
    name: 'fractional id',
    files: { 'train.jsonl': jsonlWith(3, { id: 1.5 }) },
    expect: at('train.jsonl', 4, 'id', 'id 1.5 must be a string or an integer'),
  },
  {
    name: 'null id',
    files: { 'train.jsonl': jsonlWith(0, { id: null }) },
    expect: at('train.jsonl', 1, 'id', 'empty id'),
  },
  {
    name: 'invalid UTF-8',
    files: {
      'train.jsonl': bytes(
        jsonl(JSONL_ROWS.slice(0, 2)),
        '{"id":"',
        [0xc3, 0x28],
        '","x1":1,"x2":1,"label":1}\n',
      ),
    },
    expect: at('train.jsonl', 3, undefined, 'invalid UTF-8 at byte offset'),
  },
  {
    name: 'huge line',
    files: { 'train.jsonl': `${jsonl(JSONL_ROWS.slice(0, 1))}{"id":"${HUGE}"}\n` },
    expect: inFile('train.jsonl', 'line 2 is \\d+ bytes long'),
  },
  {
    name: 'label column missing',
    config: { 'columns.label': 'y' },
    expect: inFile('train.jsonl', 'no label column "y"'),
  },
  {
    name: 'binary label 3',
    config: { task: 'binary' },
    files: { 'train.jsonl': jsonlWith(0, { label: 3 }) },
    expect: at('train.jsonl', 1, 'label', 'label 3 is out of range'),
  },
  {
    name: 'regression target string',
    config: { task: 'regression' },
    files: { 'train.jsonl': jsonlWith(1, { label: '2.5' }) },
    expect: at('train.jsonl', 2, 'label', 'expected a numeric regression target, got the string "2.5"'),
  },
]).map((c) => ({
  ...c,
  config: { 'data.train': 'train.jsonl', 'data.validation': 'val.jsonl', ...c.config },
}));

const truncated = PQ_VALID.subarray(0, PQ_VALID.length - 10);
const garbledFooter = new Uint8Array(PQ_VALID);
garbledFooter.fill(0xff, PQ_VALID.length - 60, PQ_VALID.length - 8);
const parquetCases: Case[] = (<Case[]>[
  {
    name: 'empty file',
    files: { 'train.parquet': new Uint8Array() },
    expect: inFile('train.parquet', 'the file is empty'),
  },
  {
    name: 'truncated',
    files: { 'train.parquet': truncated },
    expect: inFile('train.parquet', 'truncated Parquet file'),
  },
  {
    name: 'cut to its first bytes',
    files: { 'train.parquet': PQ_VALID.subarray(0, 20) },
    expect: inFile('train.parquet', 'truncated Parquet file'),
  },
  {
    name: 'not Parquet at all',
    files: { 'train.parquet': CSV_TRAIN },
    expect: inFile('train.parquet', 'not a Parquet file'),
  },
  {
    name: 'garbled footer',
    files: { 'train.parquet': garbledFooter },
    expect: inFile('train.parquet', '(corrupt Parquet metadata|cannot decode the Parquet data)'),
  },
  {
    name: 'zero rows',
    files: { 'train.parquet': parquet(PQ_BASE.map((c) => ({ ...c, data: [] }))) },
    expect: inFile('train.parquet', 'no data rows'),
  },
  {
    name: 'null feature',
    files: { 'train.parquet': pqWith('x1', { data: [0.5, null, -0.5, 0.1] }) },
    expect: row('train.parquet', 2, 'x1', 'empty cell'),
  },
  {
    name: 'NaN feature',
    files: { 'train.parquet': pqWith('x2', { data: [1, Number.NaN, 0, 0.2] }) },
    expect: row('train.parquet', 2, 'x2', 'NaN is not a finite number'),
  },
  {
    name: 'Infinity feature',
    files: { 'train.parquet': pqWith('x2', { data: [1, 1, Number.POSITIVE_INFINITY, 0.2] }) },
    expect: row('train.parquet', 3, 'x2', 'Infinity is not a finite number'),
  },
  {
    name: 'string feature',
    files: { 'train.parquet': pqWith('x1', { data: ['0.5', '1', '2', '3'], type: 'STRING' }) },
    expect: inFile(
      'train.parquet',
      'no numeric feature columns|row 1, column "x1": expected a number, got the string "0.5"',
    ),
  },
  {
    name: 'string feature (named)',
    config: { 'columns.features': ['x1', 'x2'] },
    files: { 'train.parquet': pqWith('x1', { data: ['0.5', '1', '2', '3'], type: 'STRING' }) },
    expect: row('train.parquet', 1, 'x1', 'expected a number, got the string "0.5"'),
  },
  {
    name: 'boolean feature',
    config: { 'columns.features': ['x1', 'x2'] },
    files: { 'train.parquet': pqWith('x2', { data: [true, false, true, false], type: 'BOOLEAN' }) },
    expect: row('train.parquet', 1, 'x2', 'expected a number, got boolean true'),
  },
  {
    name: 'string label',
    files: { 'train.parquet': pqWith('label', { data: ['0', 'cat', '1', '2'], type: 'STRING' }) },
    expect: row('train.parquet', 1, 'label', 'expected a class index, got the string "0"'),
  },
  {
    name: 'fractional label',
    files: { 'train.parquet': pqWith('label', { data: [0, 1, 2.5, 1], type: 'DOUBLE' }) },
    expect: row('train.parquet', 3, 'label', 'label 2.5 is not a class index'),
  },
  {
    name: 'negative INT64 label',
    files: { 'train.parquet': pqWith('label', { data: [0n, -1n, 2n, 1n], type: 'INT64' }) },
    expect: row('train.parquet', 2, 'label', 'label -1 is not a class index'),
  },
  {
    name: 'null label',
    files: { 'train.parquet': pqWith('label', { data: [0, 1, null, 1] }) },
    expect: row('train.parquet', 3, 'label', 'empty label'),
  },
  {
    name: 'duplicate id',
    files: { 'train.parquet': pqWith('id', { data: ['a', 'b', 'a', 'd'] }) },
    expect: row('train.parquet', 3, 'id', 'duplicate id "a" \\(already used on row 1\\)'),
  },
  {
    name: 'null id',
    files: { 'train.parquet': pqWith('id', { data: ['a', null, 'c', 'd'] }) },
    expect: row('train.parquet', 2, 'id', 'empty id'),
  },
  {
    name: 'missing label column',
    files: { 'train.parquet': pqWithout('label') },
    expect: inFile('train.parquet', 'no label column "label"'),
  },
  {
    name: 'validation truncated',
    files: { 'val.parquet': truncated },
    expect: inFile('val.parquet', 'truncated Parquet file'),
  },
]).map((c) => ({
  ...c,
  config: { 'data.train': 'train.parquet', 'data.validation': 'val.parquet', ...c.config },
}));

const configCases: Case[] = [
  {
    name: 'unknown top-level key',
    config: { learningRate: 0.1 },
    expect: /run\.yaml: line \d+: unknown key "learningRate" \(known here: data, columns/,
  },
  {
    name: 'unknown nested key',
    config: { 'optimizer.lrate': 0.1 },
    expect: /run\.yaml: line \d+: unknown key "optimizer\.lrate" \(known here: kind, lr,/,
  },
  {
    name: 'unknown data key',
    config: { 'data.holdout': 'x.csv' },
    expect: /unknown key "data\.holdout" \(known here: train, validation, validationSplit, test, testSplit,/,
  },
  {
    name: 'unknown model key',
    config: { model: { kind: 'logreg', depth: 3 } },
    expect: /unknown key "model\.depth"/,
  },
  {
    name: 'mlp key on logreg',
    config: { 'model.kind': 'logreg', 'model.hidden': [8] },
    expect: /unknown key "model\.hidden" \(known here: kind for model kind logreg\)/,
  },
  {
    name: 'lr is a string',
    config: { 'optimizer.lr': 'fast' },
    expect: /run\.yaml: line \d+: optimizer\.lr: expected a number, got the string "fast"/,
  },
  { name: 'lr is zero', config: { 'optimizer.lr': 0 }, expect: /optimizer\.lr: must be > 0, got number 0/ },
  { name: 'lr negative', config: { 'optimizer.lr': -1 }, expect: /optimizer\.lr: must be > 0/ },
  { name: 'batchSize 0', config: { batchSize: 0 }, expect: /batchSize: must be ≥ 1, got number 0/ },
  {
    name: 'batchSize fractional',
    config: { batchSize: 1.5 },
    expect: /batchSize: expected an integer, got number 1\.5/,
  },
  {
    name: 'batchSize a string',
    config: { batchSize: 'big' },
    expect: /batchSize: expected a number, got the string "big"/,
  },
  {
    name: 'batchSize too large',
    config: { batchSize: 10 },
    expect: /batchSize \(10\) is larger than the training data \(4 examples\)/,
  },
  { name: 'order 3', config: { order: 3 }, expect: /order: expected 1 or 2, got number 3/ },
  {
    name: 'unknown task',
    config: { task: 'clustering' },
    expect: /task: expected "classification" or "binary" or "regression", got the string "clustering"/,
  },
  {
    name: 'unknown model kind',
    config: { model: { kind: 'transformer' } },
    // Other kinds (gpt) may follow "mlp" in the list.
    expect: /model\.kind: expected "logreg" or "mlp"( or "\w+")*, got the string "transformer"/,
  },
  {
    name: 'hidden not a list',
    config: { model: { kind: 'mlp', hidden: '64' } },
    expect: /model\.hidden: expected a list, got the string "64"/,
  },
  {
    name: 'hidden width 0',
    config: { model: { kind: 'mlp', hidden: [8, 0] } },
    expect: /model\.hidden\.1: must be ≥ 1/,
  },
  {
    name: 'unknown activation',
    config: { model: { kind: 'mlp', activation: 'swish' } },
    expect: /model\.activation: expected "relu" or "gelu" or "tanh" or "sigmoid"/,
  },
  {
    name: 'unknown optimizer',
    config: { 'optimizer.kind': 'rmsprop' },
    expect: /optimizer\.kind: expected "sgd" or "adam" or "adamw"/,
  },
  {
    name: 'momentum with adam',
    config: { 'optimizer.kind': 'adam', 'optimizer.momentum': 0.9 },
    expect: /optimizer\.momentum: momentum applies to sgd only/,
  },
  {
    name: 'betas with sgd',
    config: { 'optimizer.betas': [0.9, 0.99] },
    expect: /optimizer\.betas: betas apply to adam and adamw only/,
  },
  {
    name: 'betas of one number',
    config: { 'optimizer.kind': 'adam', 'optimizer.betas': [0.9] },
    expect: /optimizer\.betas/,
  },
  {
    name: 'momentum above 1',
    config: { 'optimizer.momentum': 1.5 },
    expect: /optimizer\.momentum: must be ≤ 1, got number 1\.5/,
  },
  {
    name: 'unknown schedule',
    config: { 'optimizer.schedule': { kind: 'linear' } },
    expect: /optimizer\.schedule\.kind: expected "constant" or "step" or "cosine"/,
  },
  {
    name: 'step schedule without every',
    config: { 'optimizer.schedule': { kind: 'step', gamma: 0.5 } },
    expect: /optimizer\.schedule\.every is required \(a number\)/,
  },
  { name: 'steps and epochs', config: { epochs: 2 }, expect: /epochs: give steps or epochs, not both/ },
  {
    name: 'validation and split',
    config: { 'data.validationSplit': 0.2 },
    expect: /data\.validationSplit: give data\.validation or data\.validationSplit, not both/,
  },
  {
    name: 'no validation',
    config: { 'data.validation': undefined },
    expect: /data: a validation set is needed/,
  },
  {
    name: 'split of 1.5',
    config: { 'data.validation': undefined, 'data.validationSplit': 1.5 },
    expect: /data\.validationSplit: must be < 1, got number 1\.5/,
  },
  {
    name: 'split leaving no training rows',
    config: { 'data.validation': undefined, 'data.validationSplit': 0.9 },
    expect: /data\.validationSplit 0\.9 of 4 rows leaves no training examples/,
  },
  {
    name: 'more stages than steps',
    config: { stages: 5 },
    expect: /stages: 5 stages do not fit in a run of 2 steps/,
  },
  {
    name: 'classes with regression',
    config: { task: 'regression', classes: 3 },
    expect: /classes: classes applies to task classification only/,
  },
  { name: 'classes 1', config: { classes: 1 }, expect: /classes: must be ≥ 2/ },
  { name: 'no data.train', config: { 'data.train': undefined }, expect: /data\.train is required/ },
  { name: 'data is a number', config: { data: 5 }, expect: /data: expected a mapping, got number 5/ },
  { name: 'seed negative', config: { seed: -1 }, expect: /seed: must be ≥ 0/ },
  {
    name: 'checkpointEvery negative',
    config: { checkpointEvery: -1 },
    expect: /checkpointEvery: must be ≥ 0/,
  },
  {
    name: 'perValidation yes',
    config: { perValidation: 'yes' },
    expect: /perValidation: expected true or false, got the string "yes"/,
  },
  {
    name: 'kernels gpu',
    config: { kernels: 'gpu' },
    expect: /kernels: expected "auto" or "native" or "portable"/,
  },
  {
    name: 'empty features list',
    config: { 'columns.features': [] },
    expect: /columns\.features: needs at least 1 entry/,
  },
  {
    name: 'YAML syntax error',
    configText: 'data:\n  train: [a.csv\nsteps: 2\n',
    expect: /run\.yaml: line \d+: invalid YAML/,
  },
  {
    name: 'YAML duplicate key',
    configText: 'steps: 2\nsteps: 3\n',
    expect: /run\.yaml: line 2: invalid YAML \(Map keys must be unique/,
  },
  {
    name: 'JSON syntax error',
    configName: 'run.json',
    configText: '{"data": {"train": "train.csv",}}',
    expect: /run\.json: not valid JSON/,
  },
  {
    name: 'JSON wrong type',
    configName: 'run.json',
    configText: '{"data": {"train": "train.csv", "validation": "val.csv"},\n "steps": "two"}',
    expect: /run\.json: line 2: steps: expected a number, got the string "two"/,
  },
  {
    name: 'config is a list',
    configText: '- a\n- b\n',
    expect: /run\.yaml: the config must be a mapping of keys to values, got a list/,
  },
  { name: 'config file empty', configText: '', expect: /run\.yaml: the config file is empty/ },
  {
    name: 'config file type',
    configName: 'run.toml',
    configText: 'steps = 2',
    expect: /run\.toml: unknown config file type ".toml"/,
  },
  {
    name: 'config file missing',
    argv: ['--config', '{dir}/missing.yaml', '--out', '{out}'],
    expect: /missing\.yaml: cannot read the config file \(no such file\)/,
  },
  {
    name: 'flag --lr not a number',
    args: ['--lr', 'fast'],
    expect: /--lr: optimizer\.lr: expected a number, got the string "fast"/,
  },
  {
    name: 'flag --batch-size 0',
    args: ['--batch-size', '0'],
    expect: /--batch-size: batchSize: must be ≥ 1/,
  },
  {
    name: 'flag --hidden with text',
    args: ['--model', 'mlp', '--hidden', '8,wide'],
    expect: /--hidden: model\.hidden\.1: expected a number, got the string "wide"/,
  },
  { name: 'flag --set without =', args: ['--set', 'optimizer.lr'], expect: /--set expects key\.path=value/ },
  {
    name: 'flag --set unknown key',
    args: ['--set', 'optimizer.lrate=0.1'],
    expect: /--set optimizer\.lrate: unknown key "optimizer\.lrate"/,
  },
  {
    name: 'flag --set wrong type',
    args: ['--set', 'stages=[1]'],
    expect: /--set stages: stages: expected a number, got a list/,
  },
  {
    name: '--quiet with --json',
    args: ['--quiet', '--json'],
    expect: /--quiet and --json exclude each other/,
  },
  {
    name: 'no config and no --train',
    argv: ['--out', '{out}'],
    expect: /no training data: give --config run\.yaml or --train data\.csv/,
  },
  {
    name: 'resume of a missing run',
    argv: ['--resume', '{dir}/nowhere'],
    expect: /nowhere: (no such run directory|not a run directory)/,
  },
  {
    name: 'resume with extra flags',
    argv: ['--resume', '{dir}/nowhere', '--steps', '3'],
    expect: /--resume continues with the run's saved config; drop --steps/,
  },
  {
    name: 'init weights missing',
    config: { initWeights: 'w.safetensors' },
    expect: /w\.safetensors: cannot read \(no such file or directory\)/,
  },
  {
    name: 'init weights of another shape',
    config: { initWeights: 'w.safetensors' },
    files: {
      'w.safetensors': encodeSafetensors([{ name: '0.weight', shape: [1, 1], data: new Float32Array(1) }]),
    },
    expect:
      /w\.safetensors: (tensor "0\.weight" has shape \[1\], the model needs|tensors the model does not have|no tensor)/,
  },
  {
    name: 'init weights not safetensors',
    config: { initWeights: 'w.safetensors' },
    files: { 'w.safetensors': 'hello' },
    expect: /w\.safetensors: (not a safetensors file|truncated safetensors)/,
  },
  {
    name: 'out exists',
    files: { 'out/other.txt': 'x' },
    argv: ['--config', '{dir}/run.yaml', '--out', '{dir}/out'],
    expect: /out: the run directory already exists; choose another --out or add --force/,
  },
  {
    name: '--force on a folder that is no run',
    files: { 'out/other.txt': 'x' },
    argv: ['--config', '{dir}/run.yaml', '--out', '{dir}/out', '--force'],
    expect: /out: --force replaces only inrun run directories/,
  },
  {
    name: 'out is a file',
    files: { outfile: 'x' },
    argv: ['--config', '{dir}/run.yaml', '--out', '{dir}/outfile'],
    expect: /outfile: exists and is not a directory/,
  },
];

const BASE_CONFIG = {
  data: { train: 'train.csv', validation: 'val.csv' },
  columns: { id: 'id' },
  batchSize: 2,
  steps: 2,
  checkpointEvery: 1,
};

function patched(changes: Record<string, unknown> = {}): Record<string, unknown> {
  const config = structuredClone(BASE_CONFIG) as Record<string, unknown>;
  for (const [path, value] of Object.entries(changes)) {
    const keys = path.split('.');
    let node = config;
    for (const key of keys.slice(0, -1)) {
      if (typeof node[key] !== 'object' || node[key] === null) node[key] = {};
      node = node[key] as Record<string, unknown>;
    }
    if (value === undefined) delete node[keys[keys.length - 1]];
    else node[keys[keys.length - 1]] = value;
  }
  return config;
}

const ALL: [string, Case[]][] = [
  ['csv', csv],
  ['jsonl', jsonlCases],
  ['parquet', parquetCases],
  ['config', configCases],
];

test('malformed input: at least 100 cases', () => {
  const total = ALL.reduce((n, [, cases]) => n + cases.length, 0);
  assert.ok(total >= 100, `${total} cases`);
});

for (const [group, cases] of ALL) {
  test(`malformed ${group}: exit ≠ 0, one clear line, no stack, no output`, async () => {
    const failures: string[] = [];
    for (const c of cases) {
      const dir = tempDir('inrun-malformed-');
      const files: Files = {
        'train.csv': CSV_TRAIN,
        'val.csv': CSV_VAL,
        'train.jsonl': jsonl(JSONL_ROWS),
        'val.jsonl': JSONL_VAL,
        'train.parquet': PQ_VALID,
        'val.parquet': PQ_VALID,
        ...c.files,
      };
      for (const name of Object.keys(files))
        if (name.includes('/')) mkdirSync(join(dir, name.split('/')[0]), { recursive: true });
      writeFiles(dir, files);
      const configName = c.configName ?? 'run.yaml';
      writeFileSync(join(dir, configName), c.configText ?? YAML.stringify(patched(c.config)));
      const out = join(dir, 'run');
      const argv = c.argv
        ? c.argv.map((a) => a.replace('{dir}', dir).replace('{out}', out))
        : ['--config', join(dir, configName), '--out', out, ...(c.args ?? [])];
      const r = await runCli('train', ...argv);
      const label = `${group}: ${c.name}: ${r.err.trim()}`;
      try {
        assert.notEqual(r.code, 0, label);
        assert.equal(r.out, '', label);
        assert.match(r.err, /^inrun: error: [^\n]+\n$/, label);
        assert.doesNotMatch(r.err, /\n\s+at |unexpected error/, label);
        assert.match(r.err, c.expect, label);
        assert.ok(!existsSync(out), `${label}: left a run directory behind`);
      } catch {
        failures.push(`${label}\n    expected ${c.expect}`);
      }
    }
    assert.deepEqual(failures, []);
  });
}

// Real-data cases: values beyond float32 range, class names, missing cells. They join the groups
// above; each group's test reads its list when it runs, after this module has finished loading.
csv.push(
  {
    name: 'feature beyond float32 range',
    files: { 'train.csv': csvWithLine(3, 'b,1e39,-1.0,1') },
    expect: at('train.csv', 3, 'x1', '"1e39" exceeds float32 range \\(±3\\.4e38\\)'),
  },
  {
    name: 'feature near the double maximum',
    files: { 'train.csv': csvWithLine(4, 'c,-0.5,1.7e308,2') },
    expect: at('train.csv', 4, 'x2', '"1\\.7e308" exceeds float32 range \\(±3\\.4e38\\)'),
  },
  {
    name: 'validation feature below -float32 range',
    files: { 'val.csv': 'id,x1,x2,label\nv1,-1e39,0.9,0\nv2,1,1,1\n' },
    expect: at('val.csv', 2, 'x1', '"-1e39" exceeds float32 range'),
  },
  {
    name: 'regression target beyond float32 range',
    config: { task: 'regression' },
    files: { 'train.csv': csvWithLine(5, 'd,0.1,0.2,1.7e308') },
    expect: at('train.csv', 5, 'label', '"1\\.7e308" exceeds float32 range'),
  },
  {
    name: 'class names first, then a class index',
    files: { 'train.csv': 'id,x1,x2,label\na,0,0,cat\nb,1,1,dog\nc,1,0,2\n' },
    expect: at(
      'train.csv',
      2,
      'label',
      'label "cat" is not a class index, but line 4 holds "2"; a label column holds class indices or class names, not both',
    ),
  },
  {
    name: 'text in the first row of a numeric column',
    files: { 'train.csv': csvWithLine(2, 'a,abc,1.0,0') },
    expect: at(
      'train.csv',
      2,
      'x1',
      '"abc" is not a number, though other cells of the column are numbers \\(line 3',
    ),
  },
  {
    name: 'NA feature without data.missing: drop',
    files: { 'train.csv': csvWithLine(3, 'b,NA,-1.0,1') },
    expect: at('train.csv', 3, 'x1', 'missing value "NA"; set data\\.missing: drop'),
  },
  {
    name: 'empty label suggests data.missing: drop',
    files: { 'train.csv': csvWithLine(4, 'c,-0.5,0.0,') },
    expect: at('train.csv', 4, 'label', 'empty label; set data\\.missing: drop'),
  },
  {
    name: 'NA id',
    files: { 'train.csv': csvWithLine(3, 'NA,1.5,-1.0,1') },
    expect: at('train.csv', 3, 'id', 'missing value "NA"; set data\\.missing: drop'),
  },
  {
    name: 'validation cell missing',
    files: { 'val.csv': 'id,x1,x2,label\nv1,0.4,,0\n' },
    expect: at('val.csv', 2, 'x2', 'empty cell, expected a number; set data\\.missing: drop'),
  },
  {
    name: 'data.missing: drop leaves no rows',
    config: { 'data.missing': 'drop', 'columns.features': ['x1', 'x2'] },
    files: { 'train.csv': 'id,x1,x2,label\na,,0,0\nb,NA,1,1\n' },
    expect: inFile('train.csv', 'every row has a missing cell in a used column'),
  },
  {
    name: 'class name not among classNames',
    config: { classNames: ['cat', 'dog'] },
    files: {
      'train.csv': 'id,x1,x2,label\na,0,0,cat\nb,1,1,bird\n',
      'val.csv': 'id,x1,x2,label\nv1,0,0,dog\n',
    },
    expect: at('train.csv', 3, 'label', 'label "bird" is not one of classNames \\(cat, dog\\)'),
  },
  {
    name: 'class indices with classNames',
    config: { classNames: ['a', 'b', 'c'] },
    expect: at('train.csv', 2, 'label', 'label "0" is not a class name, but classNames is set'),
  },
  {
    name: 'binary task with three class names',
    config: { task: 'binary' },
    files: {
      'train.csv': 'id,x1,x2,label\na,0,0,a\nb,1,1,b\nc,1,0,c\n',
      'val.csv': 'id,x1,x2,label\nv1,0,0,a\n',
    },
    expect: at('train.csv', 4, 'label', 'label "c" is a third class name'),
  },
  {
    name: 'classes differs from the class names found',
    config: { classes: 3 },
    files: {
      'train.csv': 'id,x1,x2,label\na,0,0,cat\nb,1,1,dog\n',
      'val.csv': 'id,x1,x2,label\nv1,0,0,cat\n',
    },
    expect: inFile('train.csv', 'classes is 3, but the labels are 2 class names \\(cat, dog\\)'),
  },
);

const realJsonl = { 'data.train': 'train.jsonl', 'data.validation': 'val.jsonl' };
jsonlCases.push(
  {
    name: 'feature beyond float32 range',
    config: realJsonl,
    files: { 'train.jsonl': jsonlWith(1, { x1: 1e39 }) },
    expect: at('train.jsonl', 2, 'x1', '1e\\+39 exceeds float32 range \\(±3\\.4e38\\)'),
  },
  {
    name: 'regression target beyond float32 range',
    config: { ...realJsonl, task: 'regression' },
    files: { 'train.jsonl': jsonlWith(2, { label: -1.7e308 }) },
    expect: at('train.jsonl', 3, 'label', '-1\\.7e\\+308 exceeds float32 range'),
  },
  {
    name: 'class index stored as text',
    config: realJsonl,
    files: { 'train.jsonl': jsonlWith(1, { label: '1' }) },
    expect: at(
      'train.jsonl',
      2,
      'label',
      'expected a class index, got the string "1"; a class name must not read as a number',
    ),
  },
  {
    name: 'null feature suggests data.missing: drop',
    config: realJsonl,
    files: { 'train.jsonl': jsonlWith(2, { x2: null }) },
    expect: at('train.jsonl', 3, 'x2', 'empty cell, expected a number; set data\\.missing: drop'),
  },
);

const realParquet = { 'data.train': 'train.parquet', 'data.validation': 'val.parquet' };
parquetCases.push(
  {
    name: 'feature beyond float32 range',
    config: realParquet,
    files: { 'train.parquet': pqWith('x1', { data: [0.5, 1e39, -0.5, 0.1] }) },
    expect: row('train.parquet', 2, 'x1', '1e\\+39 exceeds float32 range \\(±3\\.4e38\\)'),
  },
  {
    name: 'validation feature beyond float32 range',
    config: realParquet,
    files: { 'val.parquet': pqWith('x2', { data: [1, -1, -1e39, 0.2] }) },
    expect: row('val.parquet', 3, 'x2', '-1e\\+39 exceeds float32 range'),
  },
  {
    name: 'regression target beyond float32 range',
    config: { ...realParquet, task: 'regression' },
    files: { 'train.parquet': pqWith('label', { data: [0, 1, 1.7e308, 1], type: 'DOUBLE' }) },
    expect: row('train.parquet', 3, 'label', '1\\.7e\\+308 exceeds float32 range'),
  },
  {
    name: 'class name not among classNames',
    config: { ...realParquet, classNames: ['cat', 'dog'] },
    files: {
      'train.parquet': pqWith('label', { data: ['cat', 'dog', 'emu', 'dog'], type: 'STRING' }),
      'val.parquet': pqWith('label', { data: ['cat', 'dog', 'cat', 'dog'], type: 'STRING' }),
    },
    expect: row('train.parquet', 3, 'label', 'label "emu" is not one of classNames \\(cat, dog\\)'),
  },
);

configCases.push(
  {
    name: 'class name listed twice',
    config: { classNames: ['a', 'b', 'a'] },
    expect: /run\.yaml: line \d+: classNames\.2: "a" is listed twice/,
  },
  {
    name: 'unknown missing-value policy',
    config: { 'data.missing': 'skip' },
    expect: /data\.missing: expected "error" or "drop", got the string "skip"/,
  },
  {
    name: 'standardize neither a boolean nor channels',
    config: { 'data.standardize': 'yes' },
    expect: /data\.standardize: expected true, false or "channels", got the string "yes"/,
  },
);
