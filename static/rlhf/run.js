/* The training-run page: loss and accuracy curves (Chart.js) and the progress box, updated live by polling the
 * run's JSON endpoint every 2 s while the run is queued or running. The log tail and errors are set as text only.
 */
(function () {
  "use strict";

  const POLL_MS = 2000;
  const COLORS = ["#2457c5", "#d9822b", "#1f7a3f", "#8e44ad", "#b42318", "#5b6475"];
  const dataEl = document.getElementById("run-data");
  if (!dataEl) return;
  const data = JSON.parse(dataEl.textContent);
  const charts = {};
  window.runCharts = charts; // for tests and debugging in the console

  const isLoss = (name) => /(^|\/)loss$/.test(name); // train/loss, eval/loss
  const isAccuracy = (name) => /(^|\/)accuracy$/.test(name); // train/accuracy, eval/accuracy

  function makeChart(id, yTitle, yOptions) {
    const canvas = document.getElementById(id);
    if (!canvas || typeof Chart === "undefined") return null;
    return new Chart(canvas, {
      type: "line",
      data: { datasets: [] },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false, parsing: false,
        plugins: { legend: { position: "bottom" }, title: { display: true, text: yTitle + " by step" } },
        scales: {
          x: { type: "linear", title: { display: true, text: "step" }, ticks: { precision: 0 } },
          y: Object.assign({ title: { display: true, text: yTitle } }, yOptions || {}),
        },
      },
    });
  }
  charts.loss = makeChart("chart-loss", "Loss");
  charts.accuracy = makeChart("chart-accuracy", "Accuracy", { min: 0, max: 1 });
  // Policy runs (PPO, GRPO/RLOO, the chain): one chart per group of metric names (reward, KL, entropy, losses, clip).
  const extraCharts = [];
  for (const spec of data.extra_charts || []) {
    const chart = makeChart(spec.id, spec.title);
    if (chart) { charts[spec.id] = chart; extraCharts.push({ chart, names: new Set(spec.names) }); }
  }

  function addPoint(chart, name, step, value) {
    if (!chart) return;
    let ds = chart.data.datasets.find((d) => d.label === name);
    if (!ds) {
      const color = COLORS[chart.data.datasets.length % COLORS.length];
      const evaluation = name.startsWith("eval/"); // often one point at the end: draw it large
      ds = { label: name, data: [], borderColor: color, backgroundColor: color, pointRadius: evaluation ? 5 : 2, tension: 0.1 };
      chart.data.datasets.push(ds);
    }
    ds.data.push({ x: step, y: value });
  }

  function addPoints(points) {
    for (const p of points) {
      if (isLoss(p.name)) addPoint(charts.loss, p.name, p.step, p.value);
      else if (isAccuracy(p.name)) addPoint(charts.accuracy, p.name, p.step, p.value);
      for (const extra of extraCharts) if (extra.names.has(p.name)) addPoint(extra.chart, p.name, p.step, p.value);
    }
    if (charts.loss) charts.loss.update();
    if (charts.accuracy) charts.accuracy.update();
    for (const extra of extraCharts) extra.chart.update();
  }

  function formatEta(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    const s = Math.max(0, Math.round(seconds));
    if (s < 60) return s + " s";
    const m = Math.floor(s / 60);
    if (m < 60) return m + " min " + (s % 60) + " s";
    return Math.floor(m / 60) + " h " + (m % 60) + " min";
  }

  const text = (id, value) => { const el = document.getElementById(id); if (el) el.textContent = value; };

  // A chain's stages as a list: done, current (aria-current="step") or waiting, from the run's "k/n name" stage.
  function stages(p) {
    const list = document.getElementById("chain-stages");
    if (!list) return;
    const match = /^(\d+)\//.exec(p.stage || "");
    const finished = p.status === "succeeded";
    const current = finished ? Infinity : match ? Number(match[1]) : 0;
    for (const item of list.querySelectorAll("li")) {
      const index = Number(item.dataset.stage);
      const state = index < current ? "done" : index === current ? (p.active ? "current" : "stopped") : "waiting";
      item.className = "stage-" + state;
      if (state === "current") item.setAttribute("aria-current", "step");
      else item.removeAttribute("aria-current");
      item.title = state;
    }
  }

  function render(p) {
    const status = document.getElementById("run-status");
    if (status) { status.textContent = p.status_display; status.className = "status status-" + p.status; }
    const bar = document.getElementById("run-progress-bar");
    if (bar) { bar.value = p.percent; bar.textContent = p.percent + "%"; }
    text("run-step", p.step + " / " + (p.total_steps || "?"));
    text("run-percent", String(p.percent));
    text("run-eta", formatEta(p.eta_s));
    text("run-stage", p.stage || "—");
    stages(p);
    const log = document.getElementById("log-tail");
    if (log && log.textContent !== p.log_tail) {
      const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
      log.textContent = p.log_tail;
      if (atBottom) log.scrollTop = log.scrollHeight;
    }
    const notice = document.getElementById("cancel-notice");
    if (notice) notice.hidden = !(p.cancel_requested && p.active);
    const error = document.getElementById("run-error");
    if (error) { error.hidden = !p.error; const pre = error.querySelector("pre"); if (pre) pre.textContent = p.error; }
  }

  // Curves drawn so far (from the page), then only new points from the endpoint.
  for (const [name, points] of Object.entries(data.series || {})) {
    addPoints(points.map(([step, value]) => ({ name, step, value })));
  }

  function margins(hist) {
    const canvas = document.getElementById("chart-margins");
    if (!canvas || !hist || !hist.counts || typeof Chart === "undefined") { if (canvas) canvas.parentElement.hidden = true; return; }
    const labels = hist.counts.map((_, i) => (hist.edges[i]).toFixed(2) + "…" + (hist.edges[i + 1]).toFixed(2));
    charts.margins = new Chart(canvas, {
      type: "bar",
      data: { labels, datasets: [{ label: "Held-out pairs", data: hist.counts, backgroundColor: COLORS[0] }] },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        plugins: { legend: { display: false }, title: { display: true, text: "Reward margin r(chosen) − r(rejected)" } },
        scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
      },
    });
  }
  margins(data.margin_histogram);

  stages({ stage: data.stage, status: data.status, active: data.active });
  let lastId = data.last_id || 0;
  let active = data.active;

  // A scoring, generation or comparison job on the run: its status line follows the job while it is queued or
  // running ("Latest: running — 3 / 8"), and the page reloads once it ends, to show what it made.
  const JOB_LINES = { generation: "generation-status", comparison: "comparison-status" };
  function renderJobs(jobs) {
    for (const [field, job] of Object.entries(jobs || {})) {
      const line = document.getElementById(JOB_LINES[field]);
      if (!line || !["queued", "running"].includes(job.status)) continue;
      line.textContent = "Latest: " + job.status + (job.total ? " — " + job.done + " / " + job.total : "");
    }
  }

  async function poll() {
    try {
      const response = await fetch(data.progress_url + "?after=" + lastId, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (response.ok) {
        const p = await response.json();
        addPoints(p.points);
        lastId = p.last_id;
        render(p);
        renderJobs(p.jobs);
        if (!p.active && !p.jobs_active) {
          // Finished (the run, or its job): reload once so the final metrics, artifacts and buttons show.
          window.setTimeout(() => window.location.reload(), 500);
          return;
        }
      }
    } catch (err) {
      /* network hiccup: try again at the next tick */
    }
    window.setTimeout(poll, POLL_MS);
  }
  if (active || data.jobs_active) window.setTimeout(poll, POLL_MS);
})();
