import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { freshBuffers, PassArena } from '../../src/layers/scratch.js';
import { span, tail } from '../../src/layers/types.js';

describe('tail', () => {
  test('is the array itself at offset 0, and a view of the rest elsewhere', () => {
    const data = Float32Array.from({ length: 10 }, (_, e) => e);
    assert.equal(tail(data, 0), data);
    for (const offset of [1, 4, 9, 10]) {
      const view = tail(data, offset);
      assert.equal(view.buffer, data.buffer);
      assert.deepEqual(Array.from(view), Array.from(data).slice(offset), `offset ${offset}`);
    }
  });

  test('hands back the view it made for an offset, and views of other arrays are their own', () => {
    const data = new Float64Array(32);
    const other = new Float64Array(32);
    const first = tail(data, 5);
    assert.equal(tail(data, 5), first);
    assert.notEqual(tail(other, 5), first);
    assert.equal(tail(other, 5).buffer, other.buffer);
    // A view of a view starts from the view's own element 0.
    const inner = data.subarray(8);
    inner[2] = 7;
    assert.equal(tail(inner, 2)[0], 7);
    assert.equal(tail(data, 10)[0], 7);
  });

  test('stays right when many offsets are asked for (it keeps only the latest few)', () => {
    const data = Float32Array.from({ length: 64 }, (_, e) => e);
    for (let round = 0; round < 3; round++)
      for (let offset = 1; offset < 64; offset++) {
        const view = tail(data, offset);
        assert.equal(view.length, 64 - offset);
        assert.equal(view[0], offset);
      }
  });
});

describe('span', () => {
  test('is elements [start, end) as a view, kept per array by start and length', () => {
    const data = Float64Array.from({ length: 12 }, (_, e) => e * 10);
    const middle = span(data, 2, 5);
    assert.deepEqual(Array.from(middle), [20, 30, 40]);
    assert.equal(middle.buffer, data.buffer);
    assert.equal(span(data, 2, 5), middle);
    assert.notEqual(span(data, 2, 6), middle, 'another length at the same start is another view');
    assert.deepEqual(Array.from(span(data, 2, 6)), [20, 30, 40, 50]);
    assert.equal(tail(data, 7), span(data, 7, 12), 'tail is the span to the end');
    assert.equal(span(data, 4, 4).length, 0);
  });
});

describe('PassArena.activation', () => {
  test('hands the next pass the same object at the same position, with that pass’s shape and array', () => {
    const arena = new PassArena();
    const first = arena.activation('float32', 2, 3, 4, false);
    const second = arena.activation('float32', 2, 1, 5, true);
    assert.equal(first.data.length, 24);
    first.data.fill(3);
    second.data.fill(3);
    arena.reset();
    const again = arena.activation('float32', 2, 3, 4, true);
    assert.equal(again, first);
    assert.deepEqual(Array.from(again.data), new Array(24).fill(0), 'zeroed on request');
    // A smaller shape at position 1: same object, a shorter view of the same memory, no stale shape.
    const smaller = arena.activation('float32', 1, 1, 5, false);
    assert.equal(smaller, second);
    assert.deepEqual([smaller.n, smaller.tokens, smaller.width, smaller.data.length], [1, 1, 5, 5]);
  });

  test('outside an arena every activation is new and zeroed on request', () => {
    const a = freshBuffers.activation('float64', 1, 2, 3, true);
    const b = freshBuffers.activation('float64', 1, 2, 3, true);
    assert.notEqual(a, b);
    assert.ok(a.data instanceof Float64Array);
    assert.deepEqual(Array.from(a.data), new Array(6).fill(0));
  });
});

describe('PassArena.tape', () => {
  test('hands the next pass the tape at the same position, emptied of every field the last pass set', () => {
    const arena = new PassArena();
    const x = arena.activation('float32', 1, 1, 2, true);
    const tape = arena.tape(x) as ReturnType<PassArena['tape']> & { probs?: unknown };
    const list = arena.tapeList(3);
    tape.outputGrad = x;
    tape.children = [];
    tape.probs = new Float32Array(4);
    arena.reset();
    const y = arena.activation('float32', 1, 1, 2, false);
    const again = arena.tape(y) as typeof tape;
    assert.equal(again, tape);
    assert.equal(again.input, y);
    assert.equal(again.output, y);
    for (const field of ['outputGrad', 'rInput', 'rOutput', 'children', 'probs'] as const)
      assert.equal(again[field], undefined, field);
    assert.equal(arena.tapeList(3), list, 'a list of the same length is handed back');
    arena.reset();
    arena.tape(y);
    assert.notEqual(arena.tapeList(4), list, 'another length gets a new list');
  });

  test('outside an arena every tape and list is new', () => {
    const x = freshBuffers.activation('float32', 1, 1, 1, true);
    assert.notEqual(freshBuffers.tape(x), freshBuffers.tape(x));
    assert.equal(freshBuffers.tapeList(2).length, 2);
  });
});
