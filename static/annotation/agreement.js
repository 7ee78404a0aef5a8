/* The agreement page: Chart.js charts from the report (passed with json_script) and a sortable labeler table.
 *
 * Model names and category names come from imported data, so they are untrusted: they reach the page only as
 * Chart.js labels drawn on a canvas, and this file never writes HTML.
 */
(function () {
  "use strict";

  const BLUE = "#2457c5";
  const ORANGE = "#d9822b";
  const charts = {};
  window.agreementCharts = charts; // for tests and debugging in the console

  function draw(id, config) {
    const canvas = document.getElementById(id);
    if (!canvas || typeof Chart === "undefined") return;
    config.options = Object.assign({ responsive: true, maintainAspectRatio: false, animation: false }, config.options);
    charts[id] = new Chart(canvas, config);
  }

  const percent = (value) => (value === null || value === undefined ? null : Math.round(1000 * value) / 10);
  const shareAxis = (title) => ({ min: 0, max: 100, title: { display: true, text: title }, ticks: { callback: (v) => v + "%" } });
  // α can fall below 0 (systematic disagreement); otherwise both axes run from 0 so the bars share a baseline.
  const alphaAxis = (rows) => ({
    min: Math.min(0, Math.floor(5 * Math.min(...rows.map((r) => r.alpha_ordinal ?? 0))) / 5),
    max: 1,
    position: "right",
    title: { display: true, text: "α ordinal" },
    grid: { drawOnChartArea: false },
  });

  function histogram(data) {
    if (!data) return;
    const labels = data.counts.map((_, i) => `${Math.round(100 * data.edges[i])}–${Math.round(100 * data.edges[i + 1])}%`);
    draw("chart-histogram", {
      type: "bar",
      data: { labels, datasets: [{ label: "Prompts", data: data.counts, backgroundColor: BLUE, barPercentage: 1, categoryPercentage: 0.95 }] },
      options: {
        plugins: { legend: { display: false } },
        scales: {
          x: { title: { display: true, text: "Pairwise agreement of the prompt (ties dropped)" } },
          y: { beginAtZero: true, title: { display: true, text: "Prompts" }, ticks: { precision: 0 } },
        },
      },
    });
  }

  function breakdown(id, rows, type, labelOf) {
    if (!rows || !rows.length) return;
    draw(id, {
      type,
      data: {
        labels: rows.map(labelOf),
        datasets: [
          { label: "Pairwise agreement", data: rows.map((r) => percent(r.pairwise_agreement_ties_dropped)), backgroundColor: BLUE, borderColor: BLUE, yAxisID: "y" },
          { label: "α ordinal", data: rows.map((r) => r.alpha_ordinal), backgroundColor: ORANGE, borderColor: ORANGE, yAxisID: "alpha" },
        ].map((dataset) => Object.assign(dataset, { pointRadius: 4, maxBarThickness: 60 })),
      },
      options: {
        scales: { x: { offset: true }, y: shareAxis("Pairwise agreement"), alpha: alphaAxis(rows) },
        plugins: { legend: { position: "bottom" } },
      },
    });
  }

  // Bars start at zero by default, which would squeeze ratings around 1000 into a sliver: fit the axis to the data.
  function ratingRange(rows) {
    const values = rows.flatMap((r) => [r.rating, r.low, r.high]).filter((v) => v !== null && v !== undefined);
    const low = Math.min(...values), high = Math.max(...values);
    const pad = Math.max(10, (high - low) * 0.05);
    return { min: Math.floor((low - pad) / 10) * 10, max: Math.ceil((high + pad) / 10) * 10 };
  }

  function leaderboard(rows) {
    if (!rows || !rows.length) return;
    const labels = rows.map((r) => r.model);
    draw("chart-leaderboard", {
      type: "bar",
      data: {
        labels,
        datasets: [
          { type: "bar", label: "95% interval", data: rows.map((r) => (r.low === null ? null : [r.low, r.high])), backgroundColor: "rgba(36, 87, 197, 0.25)", borderColor: BLUE, borderWidth: 1, barPercentage: 0.5 },
          { type: "scatter", label: "Rating", data: rows.map((r) => ({ x: r.rating, y: r.model })), backgroundColor: BLUE, pointRadius: 4 },
        ],
      },
      options: {
        indexAxis: "y",
        scales: {
          x: Object.assign({ title: { display: true, text: "Bradley–Terry rating (mean 1000)" } }, ratingRange(rows)),
          y: { type: "category", labels },
        },
        plugins: { legend: { position: "bottom" } },
      },
    });
  }

  function drawAll() {
    const element = document.getElementById("agreement-data");
    if (!element) return;
    const data = JSON.parse(element.textContent);
    histogram(data.histogram);
    breakdown("chart-by-category", data.by_category, "bar", (r) => r.group);
    breakdown("chart-by-guideline", data.by_guideline_version, "bar", (r) => (r.group === "-1" ? "none" : "v" + r.group));
    breakdown("chart-over-time", data.over_time, "line", (r) => r.group);
    leaderboard(data.leaderboard);
  }

  /* ---- sortable table: each cell's data-sort holds its raw value; empty values always sort last ---- */
  function sortTable(table, column, type, direction) {
    const body = table.tBodies[0];
    const rows = Array.from(body.rows);
    const key = (row) => row.cells[column].dataset.sort ?? row.cells[column].textContent.trim();
    rows.sort((a, b) => {
      const x = key(a), y = key(b);
      if (x === "" || y === "") return (x === "") - (y === "");
      const order = type === "text" ? x.localeCompare(y, undefined, { numeric: true }) : Number(x) - Number(y);
      return direction === "ascending" ? order : -order;
    });
    rows.forEach((row) => body.appendChild(row));
  }

  function makeSortable(table) {
    const headers = Array.from(table.tHead.rows[0].cells);
    headers.forEach((th, column) => {
      const button = th.querySelector(".sort-button");
      if (!button) return;
      button.addEventListener("click", () => {
        const current = th.getAttribute("aria-sort");
        const text = button.dataset.sortType === "text";
        const first = text ? "ascending" : "descending";
        const direction = current === first ? (first === "ascending" ? "descending" : "ascending") : first;
        headers.forEach((other) => other.hasAttribute("aria-sort") && other.setAttribute("aria-sort", "none"));
        th.setAttribute("aria-sort", direction);
        sortTable(table, column, text ? "text" : "number", direction);
      });
    });
  }

  document.querySelectorAll("table.sortable").forEach(makeSortable);
  drawAll();
})();
