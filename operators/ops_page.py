# ruff: noqa: E501, RUF001  (an HTML/CSS/JS template: long lines and typographic dashes are content)
"""The /ops page: one static HTML document whose script fetches the summary every few seconds and
renders it with textContent only (nothing from Kafka is ever parsed as HTML)."""

from __future__ import annotations

REFRESH_MS = 3000

OPS_PAGE = """<!doctype html>
<html lang="pt-BR">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Carinho Integrações — operações</title>
<style>
  body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5rem; color: #1f2328; background: #fafafa; }
  h1 { font-size: 1.4rem; margin: 0 0 .2rem; }
  h2 { font-size: 1.05rem; margin: 1.4rem 0 .4rem; }
  #updated { color: #57606a; font-size: .85rem; }
  #error { display: none; background: #ffebe9; color: #82071e; padding: .5rem .8rem; border-radius: 6px; margin: .8rem 0; }
  .grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 0 2rem; }
  table { border-collapse: collapse; width: 100%; background: #fff; font-size: .9rem; }
  th, td { border-bottom: 1px solid #d0d7de; padding: .3rem .5rem; text-align: left; }
  th { background: #f6f8fa; font-weight: 600; }
  td.num { text-align: right; font-variant-numeric: tabular-nums; }
  .bad { color: #b42318; font-weight: 600; }
  .ok { color: #1a7f37; }
  .muted { color: #57606a; }
  .big { font-size: 2rem; font-weight: 700; }
  ul#alerts { padding-left: 1.2rem; margin: .3rem 0; }
  ul#alerts li { color: #b42318; font-weight: 600; }
</style>
</head>
<body>
<h1>Carinho Integrações — operações</h1>
<div id="updated">carregando…</div>
<div id="error"></div>

<h2>Alertas</h2>
<ul id="alerts"><li class="muted" style="color:#57606a;font-weight:400">—</li></ul>

<div class="grid">
<section>
  <h2>Pendentes por prioridade</h2>
  <table id="pending"><thead><tr><th>Prioridade</th><th>Tópico</th><th class="num">Pendentes</th></tr></thead><tbody></tbody></table>
  <h2>Falhas por integração <span class="muted" id="window"></span></h2>
  <table id="integrations"><thead><tr><th>Integração</th><th class="num">Tentativas</th><th class="num">Falhas</th><th class="num">Taxa de erro</th></tr></thead><tbody></tbody></table>
  <h2>Circuit breakers</h2>
  <table id="breakers"><thead><tr><th>Destino</th><th>Estado</th><th>Último check</th><th>Status</th></tr></thead><tbody></tbody></table>
  <h2>Sync jobs</h2>
  <table id="syncs"><thead><tr><th>Sync</th><th>Última execução</th><th>Último sucesso</th><th class="num">Falhas seguidas</th><th>Erro</th></tr></thead><tbody></tbody></table>
</section>
<section>
  <h2>Dead letter</h2>
  <div><span class="big" id="dlq-open">–</span> <span class="muted">itens abertos (alerta acima de <span id="dlq-limit">–</span>)</span></div>
  <h2>Principais motivos</h2>
  <table id="reasons"><thead><tr><th>Destino</th><th>Motivo</th><th class="num">Itens</th></tr></thead><tbody></tbody></table>
  <h2>Últimos itens</h2>
  <table id="latest"><thead><tr><th>ID</th><th>Destino</th><th>Evento</th><th>Motivo</th><th class="num">HTTP</th><th>Falhou em</th></tr></thead><tbody></tbody></table>
  <h2>Alertas recentes</h2>
  <table id="recent"><thead><tr><th>Alerta</th><th>Desde</th><th>Encerrado</th></tr></thead><tbody></tbody></table>
</section>
</div>

<script>
"use strict";
const REFRESH_MS = __REFRESH_MS__;
const summaryUrl = window.location.pathname.replace(/\\/+$/, "") + "/api/summary";

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "–" : String(text);
  if (cls) td.className = cls;
  row.appendChild(td);
}
function fill(id, rows, render) {
  const body = document.querySelector("#" + id + " tbody");
  body.replaceChildren();
  if (!rows.length) {
    const tr = document.createElement("tr");
    const td = document.createElement("td");
    td.colSpan = 8; td.className = "muted"; td.textContent = "nada a mostrar";
    tr.appendChild(td); body.appendChild(tr); return;
  }
  for (const item of rows) { const tr = document.createElement("tr"); render(tr, item); body.appendChild(tr); }
}
function when(iso) { return iso ? new Date(iso).toLocaleString("pt-BR") : "–"; }
function pct(v) { return v === null || v === undefined ? "–" : (v * 100).toFixed(1) + "%"; }

function render(s) {
  document.getElementById("updated").textContent = "atualizado " + when(s.generated_at) +
    " · atualiza a cada " + (REFRESH_MS / 1000) + " s";
  document.getElementById("window").textContent = "(últimos " + s.window_minutes + " min)";
  const alerts = document.getElementById("alerts");
  alerts.replaceChildren();
  for (const a of s.alerts.active) { const li = document.createElement("li"); li.textContent = a.message; alerts.appendChild(li); }
  if (!s.alerts.active.length) { const li = document.createElement("li"); li.textContent = "nenhum alerta ativo";
    li.style.color = "#1a7f37"; li.style.fontWeight = "400"; alerts.appendChild(li); }
  fill("pending", s.pending, (tr, p) => { cell(tr, "p" + p.priority + " " + p.label); cell(tr, p.topic); cell(tr, p.pending, "num"); });
  fill("integrations", s.integrations, (tr, i) => { cell(tr, i.name); cell(tr, i.attempts, "num");
    cell(tr, i.failures, "num"); cell(tr, pct(i.failure_rate), "num" + (i.alert ? " bad" : "")); });
  fill("breakers", s.breakers, (tr, b) => { cell(tr, b.destination);
    cell(tr, b.breaker_state, b.breaker_state === "open" ? "bad" : (b.breaker_state === "closed" ? "ok" : ""));
    cell(tr, when(b.last_check_at)); cell(tr, b.last_status); });
  fill("syncs", s.syncs, (tr, y) => { cell(tr, y.sync); cell(tr, when(y.last_run_at)); cell(tr, when(y.last_success_at));
    cell(tr, y.consecutive_failures, "num" + (y.alert ? " bad" : "")); cell(tr, y.last_error); });
  const dlq = s.dead_letter;
  const open = document.getElementById("dlq-open");
  open.textContent = dlq.open; open.className = "big" + (dlq.open > dlq.alert_over ? " bad" : "");
  document.getElementById("dlq-limit").textContent = dlq.alert_over;
  fill("reasons", dlq.top_reasons, (tr, r) => { cell(tr, r.destination); cell(tr, r.reason); cell(tr, r.count, "num"); });
  fill("latest", dlq.latest, (tr, d) => { cell(tr, d.id); cell(tr, d.destination); cell(tr, d.event_type);
    cell(tr, d.reason); cell(tr, d.status_code, "num"); cell(tr, when(d.failed_at)); });
  fill("recent", s.alerts.recent, (tr, a) => { cell(tr, a.message); cell(tr, when(a.raised_at)); cell(tr, when(a.cleared_at)); });
  document.body.dataset.loaded = "true";
}

async function refresh() {
  const banner = document.getElementById("error");
  try {
    const response = await fetch(summaryUrl, { cache: "no-store" });
    if (!response.ok) throw new Error("HTTP " + response.status);
    const summary = await response.json();
    if (summary.error) throw new Error(summary.error);
    render(summary);
    banner.style.display = "none";
  } catch (err) {
    banner.textContent = "Não foi possível atualizar: " + err.message;
    banner.style.display = "block";
  } finally {
    setTimeout(refresh, REFRESH_MS);
  }
}
refresh();
</script>
</body>
</html>
""".replace("__REFRESH_MS__", str(REFRESH_MS))
