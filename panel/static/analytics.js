// Draws the analytics charts from the JSON the page embeds (Chart.js is vendored, no CDN).
(function () {
  "use strict";

  function data(id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  function css(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  var PALETTE = ["#c13584", "#1e88e5", "#43a047", "#fb8c00", "#8e24aa", "#00897b", "#e53935"];

  function line(label, values, color, extra) {
    var set = { type: "line", label: label, data: values, borderColor: color, backgroundColor: color,
                spanGaps: true, cubicInterpolationMode: "monotone", pointRadius: 2 };
    return Object.assign(set, extra || {});
  }

  function bar(label, values, color, extra) {
    var set = { type: "bar", label: label, data: values, backgroundColor: color + "99", borderColor: color };
    return Object.assign(set, extra || {});
  }

  function draw(id, labels, datasets, scales) {
    var canvas = document.getElementById(id);
    if (!canvas || typeof Chart === "undefined") { return; }
    Chart.defaults.color = css("--pico-muted-color", "#666");
    new Chart(canvas, {
      data: { labels: labels, datasets: datasets },
      options: {
        responsive: true, maintainAspectRatio: false, interaction: { mode: "index", intersect: false },
        scales: scales || { y: { beginAtZero: true } },
        plugins: { legend: { position: "bottom" } }
      }
    });
  }

  function overview(d) {
    draw("followers-chart", d.labels, [
      line("Followers", d.followers, PALETTE[0], { yAxisID: "y" }),
      bar("New followers", d.new_follows, PALETTE[1], { yAxisID: "y1" })
    ], {
      y: { position: "left", beginAtZero: false, title: { display: true, text: "Followers" } },
      y1: { position: "right", beginAtZero: true, grid: { drawOnChartArea: false },
            title: { display: true, text: "New per day" } }
    });
    draw("reach-chart", d.labels, [
      line("Reach", d.reach, PALETTE[0]),
      line("Views", d.views, PALETTE[1])
    ]);
    var a = d.automation;
    var sets = [
      bar("Comments replied", a.comments_replied, PALETTE[2], { stack: "replies" }),
      bar("DMs sent", a.dms_sent, PALETTE[3], { stack: "dms" })
    ];
    Object.keys(a.leads_by_rule).forEach(function (rule, n) {
      sets.push(bar("Leads: " + rule, a.leads_by_rule[rule], PALETTE[(n + 4) % PALETTE.length],
                    { stack: "leads" }));
    });
    draw("automation-chart", a.labels, sets, {
      x: { stacked: true }, y: { beginAtZero: true, stacked: true, ticks: { precision: 0 } }
    });
  }

  function post(d) {
    draw("post-chart", d.labels, [
      line("Views", d.views, PALETTE[1]),
      line("Reach", d.reach, PALETTE[0]),
      line("Interactions", d.interactions, PALETTE[2])
    ]);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var d = data("analytics-data");
    if (d) { overview(d); }
    var p = data("post-data");
    if (p) { post(p); }
  });
})();
