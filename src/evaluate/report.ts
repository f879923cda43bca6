// evaluation.html: the detection table and the measured removal curves of `inrun evaluate`, as one
// static page (inline SVG, no script), so it opens anywhere and archives with the run.
import { join } from 'node:path';
import { writeFileAtomic } from '../io/atomic.js';
import { escapeHtml } from '../report/escape.js';
import { failFileError } from '../util/fs-errors.js';
import { type Evaluation, isTextEvaluation, type TextEvaluation } from './evaluate.js';

export const EVALUATION_REPORT = 'evaluation.html';

const COLORS = ['#1b6ac9', '#d1495b', '#2a9d8f', '#e9a03b', '#6a4c93', '#3d405b', '#8ab17d', '#999999'];

/** Writes <out>/evaluation.html and returns its path. */
export async function writeEvaluationReport(evaluation: Evaluation | TextEvaluation): Promise<string> {
  const path = join(evaluation.out, EVALUATION_REPORT);
  await writeFileAtomic(path, evaluationHtml(evaluation)).catch((error) =>
    failFileError(error, path, 'write the evaluation report'),
  );
  return path;
}

export function evaluationHtml(e: Evaluation | TextEvaluation): string {
  const text = isTextEvaluation(e);
  // A text run's rows are its training documents.
  const rowsName = text ? 'documents' : 'rows';
  const k = Object.keys(e.signals[0]?.precisionAtK ?? {})[0];
  const kinds = [...new Set(e.signals.flatMap((s) => Object.keys(s.aurocByFault)))];
  const rows = [...e.signals]
    .sort((a, b) => b.auroc - a.auroc)
    .map(
      (s) =>
        `<tr><th scope="row">${escapeHtml(s.name)}</th><td>${s.kind}</td><td>${escapeHtml(s.description)}</td>` +
        `<td>${s.auroc.toFixed(3)}</td><td>${s.averagePrecision.toFixed(3)}</td><td>${s.precisionAtK[Number(k)].toFixed(3)}</td>` +
        kinds
          .map((kind) => `<td>${(s.aurocByFault as Record<string, number>)[kind]?.toFixed(3) ?? ''}</td>`)
          .join('') +
        '</tr>',
    )
    .join('\n');
  const faults = e.faults.map((f) => `${escapeHtml(f.kind)}: ${f.rows} ${rowsName}`).join(', ');
  const fractions = e.removal.curves[0]?.points.map((p) => p.fraction) ?? [];
  const lossCurves = e.removal.curves.map((c) => ({ name: c.name, values: c.points.map((p) => p.testLoss) }));
  const charts =
    e.removal.curves.length === 0
      ? '<p>No removal curves were measured.</p>'
      : text
        ? chart(
            fractions,
            e.removal.baseline.testLoss,
            lossCurves,
            'Test loss after removing the most suspicious documents and retraining',
            'fraction of training documents removed',
          )
        : [
            chart(
              fractions,
              e.removal.baseline.testLoss,
              lossCurves,
              'Test loss after removing the most suspicious rows and retraining',
            ),
            chart(
              fractions,
              e.removal.baseline.testAccuracy,
              e.removal.curves.map((c) => ({ name: c.name, values: c.points.map((p) => p.testAccuracy) })),
              'Test accuracy after removing the most suspicious rows and retraining',
            ),
          ].join('\n');
  const size = text
    ? `${e.trainSize} training documents (${e.text.sequences} sequences)`
    : `${e.trainSize} training examples`;
  const removalText = text
    ? `<p>Each point retrains with the run's config and seeds, for the run's ${e.text.steps} optimizer steps, without the most
suspicious documents by that signal, and measures the test set (never the validation set the values were computed against;
the test loss is the mean over its tokens). With nothing removed: test loss ${e.removal.baseline.testLoss.toFixed(4)}.</p>`
    : `<p>Each point retrains with the run's config and seeds without the most suspicious rows by that signal, and measures
the test set (never the validation set the values were computed against). With nothing removed: test loss
${e.removal.baseline.testLoss.toFixed(4)}, accuracy ${e.removal.baseline.testAccuracy.toFixed(3)}.</p>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>inrun evaluate</title>
<style>
body { font: 15px/1.45 system-ui, sans-serif; margin: 1.5rem auto; max-width: 62rem; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: .2rem .6rem; border-bottom: 1px solid #ddd; text-align: right; }
th[scope=row], td:nth-child(2), td:nth-child(3) { text-align: left; }
figure { margin: 1.5rem 0; } svg { max-width: 100%; height: auto; }
</style></head><body>
<h1>Which signal finds bad data?</h1>
<p>${size}; planted faults: ${faults}. One training run (<code>${escapeHtml(e.runDir)}</code>);
scores are higher for more suspicious ${rowsName}. AUROC and average precision (AP) measure how well each signal ranks the planted
${rowsName} first; P@${k} is the share of planted ${rowsName} among its ${k} most suspicious.</p>
<table><thead><tr><th scope="col">signal</th><th scope="col">kind</th><th scope="col">score</th><th scope="col">AUROC</th><th scope="col">AP</th><th scope="col">P@${k}</th>${kinds.map((kind) => `<th scope="col">AUROC ${escapeHtml(kind)}</th>`).join('')}</tr></thead>
<tbody>
${rows}
</tbody></table>
<h2>Removal curves, measured by retraining</h2>
${removalText}
${charts}
</body></html>
`;
}

/** An SVG line chart of one metric against the fraction removed, one line per signal. */
function chart(
  fractions: number[],
  baseline: number,
  curves: { name: string; values: number[] }[],
  title: string,
  xLabel = 'fraction of training rows removed',
): string {
  const W = 640;
  const H = 320;
  const pad = { left: 60, right: 170, top: 20, bottom: 40 };
  const series = curves.map((curve) => [
    { x: 0, y: baseline },
    ...curve.values.map((y, i) => ({ x: fractions[i], y })),
  ]);
  const ys = series.flat().map((p) => p.y);
  const xMax = Math.max(...series.flat().map((p) => p.x));
  let yMin = Math.min(...ys);
  let yMax = Math.max(...ys);
  if (yMax === yMin) [yMin, yMax] = [yMin - 1e-3, yMax + 1e-3];
  const sx = (x: number) => pad.left + (x / xMax) * (W - pad.left - pad.right);
  const sy = (y: number) => pad.top + ((yMax - y) / (yMax - yMin)) * (H - pad.top - pad.bottom);
  const lines = series
    .map((points, s) => {
      const color = COLORS[s % COLORS.length];
      const d = points
        .map((p, i) => `${i === 0 ? 'M' : 'L'}${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`)
        .join('');
      const name = curves[s].name;
      return (
        `<path d="${d}" fill="none" stroke="${color}" stroke-width="2"><title>${escapeHtml(name)}</title></path>` +
        `<text x="${W - pad.right + 10}" y="${pad.top + 16 * s + 10}" fill="${color}" font-size="12">${escapeHtml(name)}</text>`
      );
    })
    .join('');
  const ticks = [0, ...fractions]
    .map(
      (x) =>
        `<text x="${sx(x)}" y="${H - pad.bottom + 16}" font-size="11" text-anchor="middle">${Math.round(x * 100)}%</text>`,
    )
    .join('');
  const yTicks = [yMin, (yMin + yMax) / 2, yMax]
    .map(
      (y) =>
        `<text x="${pad.left - 6}" y="${sy(y) + 4}" font-size="11" text-anchor="end">${y.toPrecision(3)}</text>`,
    )
    .join('');
  return `<figure><figcaption>${escapeHtml(title)}</figcaption>
<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${escapeHtml(title)}">
<line x1="${pad.left}" y1="${H - pad.bottom}" x2="${W - pad.right}" y2="${H - pad.bottom}" stroke="#888"/>
<line x1="${pad.left}" y1="${pad.top}" x2="${pad.left}" y2="${H - pad.bottom}" stroke="#888"/>
${ticks}${yTicks}${lines}
<text x="${(pad.left + W - pad.right) / 2}" y="${H - 6}" font-size="12" text-anchor="middle">${xLabel}</text>
</svg></figure>`;
}
