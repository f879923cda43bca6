// The report's browser-side script: reads the embedded JSON and draws the charts with uPlot. It is
// plain ES5-style JavaScript kept in a string (the HTML inlines it); it never touches the network
// and writes user text only through textContent.

export const CLIENT_SCRIPT = String.raw`(function () {
  'use strict';
  var holder = document.getElementById('inrun-report-data');
  if (!holder) return;
  var data = JSON.parse(holder.textContent);
  var charts = document.querySelectorAll('[data-chart]');
  if (typeof uPlot === 'undefined') {
    for (var i = 0; i < charts.length; i++) charts[i].textContent = 'The plotting library did not load.';
    return;
  }
  var RED = '#c8102e', BLUE = '#1f5fa8', GRAY = '#777', GREEN = '#2e8540', ORANGE = '#e07b00';
  var PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

  function fmt(v) {
    if (v == null || !isFinite(v)) return '\u2013';
    if (v === 0) return '0';
    var a = Math.abs(v);
    var s = a < 1e-3 || a >= 1e6 ? v.toExponential(1) : String(+v.toPrecision(3));
    return s.replace('-', '\u2212');
  }
  function ticks(u, splits) { return splits.map(fmt); }
  function xLegend(prefix) { return function (u, v) { return v == null ? '\u2013' : prefix + fmt(v); }; }
  function pct(u, splits) { return splits.map(function (v) { return +(v * 100).toFixed(1) + '%'; }); }
  function intTicks(u, splits) { return splits.map(function (v) { return Number.isInteger(v) ? String(v) : ''; }); }
  function xAxis(label, values) { return { label: label, values: values || ticks, grid: { stroke: '#eee' }, ticks: { stroke: '#ccc' } }; }
  function yAxis(label, scale, side) {
    var a = { label: label, values: ticks, size: 72, grid: { stroke: side ? null : '#eee', show: !side }, ticks: { stroke: '#ccc' } };
    if (scale) a.scale = scale;
    if (side) a.side = side;
    return a;
  }
  function line(label, color, extra) {
    var s = { label: label, stroke: color, width: 2, value: function (u, v) { return fmt(v); } };
    for (var k in extra || {}) s[k] = extra[k];
    return s;
  }
  function dots(label, color) {
    return { label: label, stroke: color, fill: color, paths: function () { return null; }, points: { show: true, size: 5, fill: color, stroke: color }, value: function (u, v) { return fmt(v); } };
  }
  function make(name, opts, d) {
    var el = document.querySelector('[data-chart="' + name + '"]');
    if (!el) return;
    opts.width = Math.max(320, el.clientWidth || 900);
    opts.height = opts.height || 300;
    opts.scales = opts.scales || {};
    opts.scales.x = opts.scales.x || {};
    opts.scales.x.time = false;
    opts.legend = { live: true };
    try { new uPlot(opts, d, el); } catch (e) { el.textContent = 'Chart failed: ' + e.message; }
  }
  function fromZero(u, min, max) { return [0, max > 0 ? max * 1.05 : 1]; }
  function padded(u, min, max) {
    if (min == null || max == null) return [0, 1];
    if (min === max) { var p = Math.abs(min) * 0.1 || 1; return [min - p, max + p]; }
    var pad = (max - min) * 0.06;
    return [min - pad, max + pad];
  }

  // Histogram of values.
  var h = data.histogram;
  if (h && h.centers.length > 0) {
    var bars = uPlot.paths.bars({ size: [0.96, Infinity], align: 0 });
    make('histogram', {
      series: [
        { label: 'value', value: xLegend('') },
        { label: 'harmful (value < 0)', fill: 'rgba(200,16,46,0.75)', stroke: RED, paths: bars, points: { show: false } },
        { label: 'helpful (value \u2265 0)', fill: 'rgba(31,95,168,0.75)', stroke: BLUE, paths: bars, points: { show: false } }
      ],
      scales: { x: { range: [h.edges[0], h.edges[h.edges.length - 1]] }, y: { range: fromZero } },
      axes: [xAxis('value (validation-loss decrease)'), yAxis('examples')]
    }, [h.centers, h.negative, h.positive]);
  }

  // Groups: cumulative over training (at stage ends) and per stage.
  var g = data.groups;
  if (g && g.series.length > 0) {
    var cum = [g.stepEnds];
    var cumSeries = [{ label: 'step', value: xLegend('') }];
    var stage = [g.stageIndex];
    var stageSeries = [{ label: 'stage', value: xLegend('') }];
    g.series.forEach(function (s, k) {
      var color = s.other ? '#333' : PALETTE[k % PALETTE.length];
      var dash = s.other ? [6, 4] : undefined;
      cum.push(s.cumulative);
      cumSeries.push(line(s.group, color, { dash: dash, points: { show: true, size: 6 } }));
      stage.push(s.stages);
      stageSeries.push(line(s.group, color, { dash: dash, points: { show: true, size: 7 } }));
    });
    make('groups-cumulative', { series: cumSeries, scales: { y: { range: padded } }, axes: [xAxis('training step'), yAxis('cumulative value')] }, cum);
    if (g.stageIndex.length > 1)
      make('groups-stages', {
        series: stageSeries,
        scales: { x: { range: [-0.3, g.stageIndex.length - 0.7] }, y: { range: padded } },
        axes: [Object.assign(xAxis('training stage', intTicks), { splits: function () { return g.stageIndex; } }), yAxis('value in stage')]
      }, stage);
  }

  // Efficiency: per-step sums vs the actual decrease, residuals, scatter.
  var t = data.trace;
  if (t && t.step.length > 0) {
    make('efficiency-lines', {
      series: [
        { label: 'step', value: xLegend('') },
        line('\u03a3 values', 'rgba(31,95,168,0.45)', { width: 6 }),
        line('Taylor utility', ORANGE, { width: 1.5, dash: [5, 3] }),
        line('actual decrease', GREEN)
      ],
      scales: { y: { range: padded } },
      axes: [xAxis('training step'), yAxis('validation-loss decrease')]
    }, [t.step, t.valuesSum, t.taylorUtility, t.actualUtility]);
    make('efficiency-errors', {
      series: [
        { label: 'step', value: xLegend('') },
        line('Taylor error (actual \u2212 Taylor)', RED),
        line('efficiency residual (\u03a3 values \u2212 Taylor), right axis', GRAY, { scale: 'r' })
      ],
      scales: { y: { range: padded }, r: { range: padded } },
      axes: [xAxis('training step'), yAxis('Taylor error'), yAxis('residual', 'r', 1)]
    }, [t.step, t.taylorError, t.efficiencyResidual]);
    make('training', {
      series: [
        { label: 'step', value: xLegend('') },
        line('training loss (batch)', GRAY, { width: 1 }),
        line('validation loss', BLUE)
      ],
      scales: { y: { range: padded } },
      axes: [xAxis('training step'), yAxis('loss')]
    }, [t.step, t.trainLoss, t.validationLoss]);
  }
  // Held-out test set: test loss (and accuracy, right axis) beside the validation loss at the same weights.
  var ts = data.test;
  if (ts && ts.step.length > 0) {
    var testSeries = [
      { label: 'steps done', value: xLegend('') },
      line('validation loss', BLUE, { points: { show: true, size: 5 } }),
      line('test loss (held out)', GREEN, { points: { show: true, size: 5 } })
    ];
    var testData = [ts.step, ts.validationLoss, ts.testLoss];
    var testAxes = [xAxis('training step'), yAxis('loss')];
    var testScales = { y: { range: padded } };
    if (ts.testAccuracy) {
      testSeries.push(line('test accuracy, right axis', ORANGE, { scale: 'acc', dash: [5, 3], points: { show: true, size: 5 }, value: function (u, v) { return v == null ? '\u2013' : (v * 100).toFixed(1) + '%'; } }));
      testData.push(ts.testAccuracy);
      testAxes.push(Object.assign(yAxis('accuracy', 'acc', 1), { values: pct }));
      testScales.acc = { range: [0, 1] };
    }
    make('test', { series: testSeries, scales: testScales, axes: testAxes }, testData);
  }
  var sc = data.scatter;
  if (sc && sc.x.length > 0) {
    make('efficiency-scatter', {
      series: [
        { label: '\u03a3 values', value: xLegend('') },
        dots('actual decrease', BLUE),
        line('y = x', GRAY, { dash: [4, 4], width: 1 })
      ],
      scales: { y: { range: padded } },
      axes: [xAxis('\u03a3 values of the step'), yAxis('actual decrease')]
    }, [sc.x, sc.y, sc.x]);
  }

  // Removal curve.
  var r = data.removal;
  if (r && r.fraction.length > 1) {
    var peak = r.fraction.map(function (f) { return f === r.peak.fraction ? r.peak.remaining : null; });
    make('removal', {
      series: [
        { label: 'removed', value: function (u, v) { return v == null ? '\u2013' : (v * 100).toFixed(1) + '%'; } },
        line('most harmful first', RED),
        line('random order (expected)', GRAY, { dash: [6, 4] }),
        dots('all negatives removed', '#000')
      ],
      scales: { y: { range: padded } },
      axes: [xAxis('fraction of training examples removed', pct), yAxis('total value of the rest')]
    }, [r.fraction, r.remaining, r.random, peak]);
  }

  // Curation: test loss (and accuracy) of the retrainings when the run had a test set; validation loss always.
  var c = data.curation;
  if (c && c.test) {
    var ct = c.test;
    make('curation-test', {
      series: [
        { label: 'steps done', value: xLegend('') },
        line('original', GRAY, { points: { show: true, size: 5 } }),
        line('curated', BLUE, { points: { show: true, size: 5 } }),
        line('random removal', ORANGE, { points: { show: true, size: 5 } }),
        line('original final test loss', '#000', { dash: [3, 4], width: 1, points: { show: false } })
      ],
      scales: { y: { range: padded } },
      axes: [xAxis('training step'), yAxis('test loss')]
    }, [ct.step, ct.original, ct.curated, ct.random, ct.target]);
    if (ct.accuracy) {
      var accValue = function (u, v) { return v == null ? '\u2013' : (v * 100).toFixed(1) + '%'; };
      make('curation-test-accuracy', {
        series: [
          { label: 'steps done', value: xLegend('') },
          line('original', GRAY, { points: { show: true, size: 5 }, value: accValue }),
          line('curated', BLUE, { points: { show: true, size: 5 }, value: accValue }),
          line('random removal', ORANGE, { points: { show: true, size: 5 }, value: accValue })
        ],
        scales: { y: { range: padded } },
        axes: [xAxis('training step'), Object.assign(yAxis('test accuracy'), { values: pct })]
      }, [ct.step, ct.accuracy.original, ct.accuracy.curated, ct.accuracy.random]);
    }
  }
  if (c) {
    make('curation', {
      series: [
        { label: 'step', value: xLegend('') },
        line('original', GRAY),
        line('curated', BLUE),
        line('random removal', ORANGE),
        line('original final loss', '#000', { dash: [3, 4], width: 1, points: { show: false } })
      ],
      scales: { y: { range: padded } },
      axes: [xAxis('training step'), yAxis('validation loss')]
    }, [c.step, c.original, c.curated, c.random, c.target]);
  }
})();
`;
