/* Personify dashboard: draws the charts described in data-chart attributes (uPlot), adds the
   CSRF header to htmx requests, and asks for confirmation where a form says data-confirm. */
(function () {
  "use strict";
  var palette = ["#2f5bea", "#e8590c", "#18794e", "#9c36b5", "#c92a2a", "#1098ad"];

  function fmt(v, percent) {
    if (v === null || v === undefined) return "—";
    if (percent) return (v * 100).toFixed(1) + " %";
    return Math.abs(v) >= 1000 ? Math.round(v).toLocaleString() : (Math.round(v * 100) / 100).toString();
  }

  function draw(el) {
    if (el.dataset.drawn || typeof uPlot === "undefined") return;
    var spec = JSON.parse(el.dataset.chart);
    var width = Math.max(el.clientWidth, 260);
    var bars = spec.kind === "bars";
    var series = [{}];
    var data = [spec.x];
    spec.series.forEach(function (s, i) {
      var color = palette[i % palette.length];
      series.push({
        label: s.name, stroke: color, width: bars ? 0 : 2,
        fill: bars ? color + "cc" : color + "22",
        spanGaps: true,
        paths: bars && uPlot.paths && uPlot.paths.bars ? uPlot.paths.bars({ size: [0.7, 60] }) : undefined,
        points: { show: !bars && spec.x.length < 40 },
        value: function (u, v) { return fmt(v, s.percent); }
      });
      data.push(s.values);
    });
    var percent = spec.series.length && spec.series[0].percent;
    var xAxis = spec.time ? {} : {
      values: function (u, splits) { return splits.map(function (v) { return spec.labels[v] || ""; }); },
      space: 60
    };
    var opts = {
      width: width, height: 220,
      scales: { x: { time: spec.time, range: bars && !spec.time ? [-0.5, spec.x.length - 0.5] : undefined } },
      axes: [xAxis, { values: function (u, splits) { return splits.map(function (v) { return fmt(v, percent); }); }, size: 60 }],
      series: series,
      legend: { show: true }
    };
    if (!spec.time) {
      opts.series[0] = { label: "", value: function (u, v) { return v === null ? "" : (spec.labels[v] || ""); } };
    }
    el.dataset.drawn = "1";
    var plot = new uPlot(opts, data, el);
    if (window.ResizeObserver) {
      new ResizeObserver(function () { plot.setSize({ width: Math.max(el.clientWidth, 260), height: 220 }); }).observe(el);
    }
  }

  function drawAll(root) {
    (root || document).querySelectorAll("[data-chart]").forEach(draw);
  }

  document.addEventListener("DOMContentLoaded", function () { drawAll(document); });
  document.addEventListener("htmx:afterSettle", function (e) { drawAll(e.target); });
  document.addEventListener("htmx:configRequest", function (e) {
    var token = document.body.dataset.csrf;
    if (token) e.detail.headers["X-CSRF-Token"] = token;
  });
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      e.preventDefault();
    }
  }, true);
})();
