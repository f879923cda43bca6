import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { allocFloat } from '../../src/kernels/index.js';
import {
  denseHessian,
  dot,
  matVec,
  meanGradient,
  meanLoss,
  perExampleGradients,
  relativeError,
} from '../reference/brute-force.js';
import {
  type Architecture,
  buildModel,
  castBatch,
  randomBatch,
  randomVector,
  toFloat32,
} from './fixtures.js';

// Tolerances from the issue: relative error ≤ 1e-6 in float64, ≤ 1e-4 in float32.
const F64 = 1e-6;
const F32 = 1e-4;
const N_TRAIN = 5;
const N_VAL = 4;

/**
 * The full battery for one architecture: backward vs central differences, both ghost routes vs
 * brute-force per-example gradients (per layer and in total), the R-operator HVP vs a dense
 * finite-difference Hessian, and float32 vs float64 references.
 */
export function checkArchitecture(arch: Architecture): void {
  describe(arch.name, () => {
    const model = buildModel(arch, 'float64');
    // Move every parameter off its initial value (γ = 1, β = 0, zero biases hide whole classes of bugs).
    const noise = randomVector(model.parameterCount, 99);
    for (let e = 0; e < noise.length; e++) model.params[e] += 0.2 * noise[e];
    const train = randomBatch(arch, N_TRAIN, 11);
    const validation = randomBatch(arch, N_VAL, 12);
    const gTrain = perExampleGradients(model, train);
    const gVal = perExampleGradients(model, validation);
    const P = model.parameterCount;

    test('backward matches central differences of the loss', () => {
      const grad = meanGradient(model, train, model.params);
      const numeric = new Float64Array(P);
      const h = 1e-6;
      for (let k = 0; k < P; k++) {
        const plus = model.params.slice();
        plus[k] += h;
        const minus = model.params.slice();
        minus[k] -= h;
        numeric[k] = (meanLoss(model, train, plus) - meanLoss(model, train, minus)) / (2 * h);
      }
      assert.ok(relativeError(grad, numeric) < F64, `rel err ${relativeError(grad, numeric)}`);
    });

    test('summed per-example gradients equal the batch gradient (book-keeping)', () => {
      const batchGrad = meanGradient(model, train, model.params);
      const summed = new Float64Array(P);
      for (const g of gTrain) for (let e = 0; e < P; e++) summed[e] += g[e] / N_TRAIN;
      assert.ok(relativeError(summed, batchGrad) < 1e-12);
    });

    function passes(m = model, tr = train, va = validation) {
      const trainPass = m.forward(tr.input, tr.targets);
      m.backward(trainPass);
      const valPass = m.forward(va.input, va.targets);
      m.backward(valPass);
      return { trainPass, valPass };
    }

    test('pairwise ghost route gives ⟨g_i, g_j⟩ per layer and in total', () => {
      const { trainPass, valPass } = passes();
      if (model.sharedSlots.size > 0) {
        // Per-use pairwise products would miss the cross terms of a tied parameter: refused.
        assert.throws(
          () => model.ghostPairwise(trainPass, valPass, new Float64Array(N_TRAIN * N_VAL)),
          /tied weights/,
        );
        assert.ok(
          model
            .ghostRoutes(N_TRAIN, N_VAL)
            .every(
              (route, l) =>
                route === 'vector' || !model.paramLayers[l].params.some((s) => model.sharedSlots.has(s)),
            ),
        );
        return;
      }
      const expected = new Float64Array(N_TRAIN * N_VAL);
      for (let i = 0; i < N_TRAIN; i++)
        for (let j = 0; j < N_VAL; j++) expected[i * N_VAL + j] = dot(gTrain[i], gVal[j]);
      const total = new Float64Array(N_TRAIN * N_VAL);
      model.ghostPairwise(trainPass, valPass, total);
      assert.ok(relativeError(total, expected) < F64, `total rel err ${relativeError(total, expected)}`);
      model.paramLayers.forEach((layer, l) => {
        const got = new Float64Array(N_TRAIN * N_VAL);
        model.ghostPairwise(trainPass, valPass, got, [l]);
        const want = new Float64Array(N_TRAIN * N_VAL);
        for (const slot of layer.params) {
          for (let i = 0; i < N_TRAIN; i++)
            for (let j = 0; j < N_VAL; j++)
              for (let e = slot.offset; e < slot.offset + slot.size; e++)
                want[i * N_VAL + j] += gTrain[i][e] * gVal[j][e];
        }
        assert.ok(relativeError(got, want) < F64, `layer ${l} rel err ${relativeError(got, want)}`);
      });
    });

    test('vector ghost route gives ⟨g_i, u⟩ for several u at once', () => {
      const { trainPass } = passes();
      const us = [randomVector(P, 1), randomVector(P, 2)];
      const outs = us.map(() => new Float64Array(N_TRAIN));
      model.ghostDot(trainPass, us, outs);
      us.forEach((u, k) => {
        const expected = gTrain.map((g) => dot(g, u));
        assert.ok(
          relativeError(outs[k], expected) < F64,
          `u${k} rel err ${relativeError(outs[k], expected)}`,
        );
      });
    });

    test('ghost self products and per-example dots match formed per-example gradients', () => {
      const { trainPass } = passes();
      // Positive diagonal metric (as Adam's K) and the identity.
      const weights = randomVector(P, 5).map((w) => 0.5 + Math.abs(w));
      for (const w of [null, weights]) {
        const got = new Float64Array(N_TRAIN);
        model.ghostSelfDot(trainPass, w, got);
        const want = gTrain.map((g) => g.reduce((sum, ge, e) => sum + (w ? w[e] : 1) * ge * ge, 0));
        assert.ok(relativeError(got, want) < F64, `self rel err ${relativeError(got, want)}`);
      }
      const us = [randomVector(P, 6), randomVector(P, 7), randomVector(P, 8)];
      const which = Int32Array.from({ length: N_TRAIN }, (_, i) => (i % 4) - 1); // -1: skipped
      const got = new Float64Array(N_TRAIN);
      model.ghostDotEach(trainPass, us, which, got);
      const want = gTrain.map((g, i) => (which[i] < 0 ? 0 : dot(g, us[which[i]])));
      assert.ok(relativeError(got, want) < F64, `each rel err ${relativeError(got, want)}`);
    });

    test('R-operator Hessian-vector product matches the dense finite-difference Hessian', () => {
      const { valPass } = passes();
      const v = randomVector(P, 3);
      const hv = new Float64Array(P);
      model.hessianVectorProduct(valPass, v, hv);
      for (let e = 0; e < P; e++) hv[e] /= N_VAL; // Hessian of the mean loss
      const H = denseHessian(model, validation);
      const expected = matVec(H, v);
      assert.ok(relativeError(hv, expected) < F64, `rel err ${relativeError(hv, expected)}`);
    });

    test('float32 ghost routes and HVP agree with the float64 references', () => {
      const m32 = toFloat32(arch, model);
      const tr32 = castBatch(train);
      const va32 = castBatch(validation);
      const { trainPass, valPass } = passes(m32, tr32, va32);
      // References at the float32-rounded weights, computed in float64.
      const m64 = buildModel(arch, 'float64');
      m64.params.set(m32.params);
      const gT = perExampleGradients(m64, train);
      const gV = perExampleGradients(m64, validation);
      if (m32.sharedSlots.size === 0) {
        const gram = new Float64Array(N_TRAIN * N_VAL);
        m32.ghostPairwise(trainPass, valPass, gram);
        const expectedGram = new Float64Array(N_TRAIN * N_VAL);
        for (let i = 0; i < N_TRAIN; i++)
          for (let j = 0; j < N_VAL; j++) expectedGram[i * N_VAL + j] = dot(gT[i], gV[j]);
        assert.ok(
          relativeError(gram, expectedGram) < F32,
          `gram rel err ${relativeError(gram, expectedGram)}`,
        );
      }

      const u = randomVector(P, 4);
      const u32 = Float32Array.from(u);
      const out = new Float64Array(N_TRAIN);
      m32.ghostDot(trainPass, [u32], [out]);
      const expectedDots = gT.map((g) => dot(g, u32));
      assert.ok(relativeError(out, expectedDots) < F32, `dot rel err ${relativeError(out, expectedDots)}`);

      const hv = allocFloat('float32', P);
      m32.hessianVectorProduct(valPass, u32, hv);
      const hv64 = new Float64Array(P);
      m64.hessianVectorProduct(
        (() => {
          const p = m64.forward(validation.input, validation.targets);
          m64.backward(p);
          return p;
        })(),
        Float64Array.from(u32),
        hv64,
      );
      assert.ok(relativeError(hv, hv64) < F32, `hvp rel err ${relativeError(hv, hv64)}`);
    });
  });
}
