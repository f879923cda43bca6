// The curation case study's mixture: junk of four kinds, each what its name says, and
// held-out passages from speeches the training set does not use.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { curationMixture, JUNK_KINDS } from '../../case-studies/curation.js';

test('the mixture: clean passages, the given share of junk in equal parts, disjoint held-out sets', () => {
  assert.equal(curationMixture(40).train.filter((d) => d.junk !== null).length, 20, 'half junk by default');
  const { train, validation, test: held } = curationMixture(40, 0.25);
  assert.equal(train.length, 40);
  const junk = train.filter((d) => d.junk !== null);
  assert.equal(junk.length, 10);
  for (const kind of JUNK_KINDS) assert.ok(junk.filter((d) => d.junk === kind).length >= 2, kind);
  const clean = train.filter((d) => d.junk === null);
  const cleanWords = clean.map((d) => d.text.split(/\s+/));
  for (const d of junk) {
    const words = d.text.split(/\s+/);
    if (d.junk === 'shuffled') {
      // The words of one clean passage, in another order.
      const source = cleanWords.find(
        (w) => w.length === words.length && [...w].sort().join(' ') === [...words].sort().join(' '),
      );
      assert.ok(source && source.join(' ') !== words.join(' '), d.name);
    } else if (d.junk === 'near-duplicate') {
      const differences = Math.min(
        ...cleanWords
          .filter((w) => w.length === words.length)
          .map((w) => w.filter((x, k) => x !== words[k]).length),
      );
      assert.ok(differences >= 1 && differences <= 3, `${d.name}: ${differences} words differ`);
    } else if (d.junk === 'boilerplate') assert.match(d.text, /^(Subscribe to our newsletter.*){2,}/);
    else assert.ok(!clean.some((c) => c.text === d.text), d.name);
  }
  const names = (docs: { name: string }[]) => docs.map((d) => d.name.split('/')[1]);
  const trainSpeeches = new Set(names(clean));
  for (const name of [...names(validation), ...names(held)]) assert.ok(!trainSpeeches.has(name), name);
  assert.equal(new Set([...names(validation), ...names(held)]).size, 40);
  // Deterministic.
  assert.deepEqual(curationMixture(40, 0.25), curationMixture(40, 0.25));
  assert.throws(() => curationMixture(40, 1), /junk share/);
});
