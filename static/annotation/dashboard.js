/* The progress dashboard's chart: rankings per day, from the figures passed with json_script (never as HTML). */
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("dashboard-data").textContent);
  const canvas = document.getElementById("chart-per-day");
  if (!canvas || typeof Chart === "undefined") return;
  window.dashboardChart = new Chart(canvas, {
    type: "bar",
    data: {
      labels: data.per_day.map((row) => row.day.slice(5)),
      datasets: [{ label: "Rankings", data: data.per_day.map((row) => row.rankings), backgroundColor: "#2457c5" }],
    },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      plugins: { legend: { display: false } },
      scales: { y: { beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: "Rankings" } } },
    },
  });
})();
