// Trend charts on the results timeline (/ui/persons/{id}/results). The data comes from the page's
// <script type="application/json" id="trend-data"> block (CSP: no inline scripts); ECharts is served locally.
(function () {
  "use strict";
  function draw() {
    var holder = document.getElementById("trend-data");
    if (!holder || typeof echarts === "undefined") { return; }
    var charts = JSON.parse(holder.textContent || "[]");
    document.querySelectorAll(".trend-chart").forEach(function (el) {
      var c = charts[Number(el.getAttribute("data-index"))];
      if (!c) { return; }
      el.style.height = "240px";
      el.style.minWidth = "280px";
      var chart = echarts.init(el, null, { renderer: "canvas" });
      var band = (c.low !== null && c.high !== null) ? [[{ yAxis: c.low }, { yAxis: c.high }]] : [];
      chart.setOption({
        animation: false,
        title: { text: c.name + (c.unit ? " (" + c.unit + ")" : ""), left: "center", textStyle: { fontSize: 13 } },
        grid: { left: 48, right: 16, top: 36, bottom: 32 },
        tooltip: {
          trigger: "axis",
          formatter: function (ps) {
            var p = ps[0];
            return p.value[0].slice(0, 10) + "<br>" + p.value[1] + " " + (c.unit || "") + "<br>" + p.value[2];
          }
        },
        xAxis: { type: "time" },
        yAxis: { type: "value", scale: true },
        series: [{
          type: "line", name: c.name, data: c.points, symbolSize: 7,
          markArea: { silent: true, itemStyle: { color: "rgba(46, 139, 87, 0.12)" }, data: band }
        }]
      });
      el.setAttribute("data-rendered", "1");
      window.addEventListener("resize", function () { chart.resize(); });
    });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", draw); } else { draw(); }
}());
