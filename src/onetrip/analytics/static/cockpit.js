/* Cockpit charts (ECharts, served locally). Data comes from the JSON block the server rendered; no inline
   script (the app's Content-Security-Policy allows same-origin scripts only). */
(function () {
  "use strict";
  var me = document.getElementById("cockpit-script");
  var zh = !me || me.dataset.locale !== "en";
  var wall = me ? parseInt(me.dataset.wall || "0", 10) : 0;
  var raw = document.getElementById("cockpit-data");
  if (!raw || typeof echarts === "undefined") { return; }
  var data = JSON.parse(raw.textContent);
  var big = document.querySelector("main.wall") !== null;
  var font = big ? 18 : 12;
  var ink = big ? "#e6f4f5" : "#1f2d33";
  var name = function (id) { var n = data.names[id]; return n ? (zh ? n[0] : n[1]) : id; };
  var pct = function (v) { return v === null || v === undefined ? null : Math.round(v * 10000) / 100; };
  var charts = [];
  var base = { textStyle: { fontSize: font, color: ink }, grid: { left: 56, right: 24, top: 56, bottom: 36 },
               tooltip: { trigger: "axis" }, legend: { top: 0, textStyle: { fontSize: font, color: ink } } };
  var axis = function (extra) { return Object.assign({ axisLabel: { fontSize: font, color: ink } }, extra); };

  function chart(id, option) {
    var el = document.getElementById(id);
    if (!el) { return; }
    var c = echarts.init(el, null, { renderer: "svg" });
    c.setOption(Object.assign({}, base, option));
    charts.push(c);
  }

  var rates = ["primary_visit_rate", "county_visit_rate", "recognition_rate", "smart_booking_rate"];
  chart("trend-rates", {
    xAxis: axis({ type: "category", data: data.months }),
    yAxis: { type: "value", axisLabel: { formatter: "{value}%", fontSize: font, color: ink } },
    series: rates.map(function (id) {
      return { name: name(id), type: "line", smooth: true, connectNulls: true,
               data: (data.series[id] || []).map(pct) };
    })
  });
  chart("trend-referrals", {
    xAxis: axis({ type: "category", data: data.months }),
    yAxis: axis({ type: "value" }),
    series: ["referrals_up", "referrals_down"].map(function (id) {
      return { name: name(id), type: "bar", data: data.series[id] || [] };
    })
  });
  var rank = (data.ranking || []).slice().reverse();
  chart("ranking", {
    grid: { left: 150, right: 24, top: 16, bottom: 24 }, legend: { show: false },
    tooltip: { trigger: "item" },
    xAxis: axis({ type: "value" }),
    yAxis: { type: "category", data: rank.map(function (r) { return r.group_name; }),
             axisLabel: { fontSize: font, width: 140, overflow: "truncate", color: ink } },
    series: [{ type: "bar", data: rank.map(function (r) { return r.value; }),
               itemStyle: { color: big ? "#3fb6c0" : "#0f6b73" },
               label: { show: true, position: "right", fontSize: font, color: ink } }]
  });
  window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
  document.body.dataset.chartsReady = "1";
  if (wall > 0) { window.setTimeout(function () { window.location.reload(); }, wall * 1000); }
})();
