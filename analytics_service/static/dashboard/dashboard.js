/* The built-in dashboard (served at /dashboard).
 *
 * Every figure on the page is an answer of the analytics API, asked with the key the user
 * typed in (kept in sessionStorage, sent as the X-API-Key header, never in a URL). The
 * pickers' values live in the URL's #fragment (never the key), so a view can be shared.
 * The live row reads GET /api/v1/analytics/live with fetch (EventSource cannot send a
 * header) and, when the period runs up to now, each live event reloads the period's
 * figures too.
 */
"use strict";

(() => {
  const KEY_STORAGE = "analytics.apiKey";
  const API = "/api/v1/analytics";
  const WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
  const PALETTE = ["#2f5bea", "#17a589", "#f39c12", "#8e44ad", "#e74c3c", "#16a0c8", "#7f8c8d", "#c0a000", "#d35400", "#2c3e50"];
  const MONEY_KPIS = new Set(["gross_revenue", "net_revenue", "aov", "gross_profit"]);

  const state = {
    key: null,
    serverTz: null, // learnt from the first answer (the API's DEFAULT_TIMEZONE)
    generation: 0,
    charts: {},
    live: null, // AbortController of the live stream
    alerts: null, // AbortController of the alert stream
    alertsStore: undefined,
    incidents: [], // open incidents shown, newest first
    liveParams: null,
    refreshTimer: null,
    staleRetries: 0,
    periodEnd: null,
  };

  const $ = (selector, root = document) => root.querySelector(selector);
  const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

  // -- formatting -------------------------------------------------------------------------

  const moneyFormat = new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  const countFormat = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
  const compactFormat = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 1 });
  const pctFormat = new Intl.NumberFormat("en-US", { style: "percent", maximumFractionDigits: 1 });

  function formatKpi(name, value) {
    if (value === null || value === undefined) return "–";
    return MONEY_KPIS.has(name) ? moneyFormat.format(value) : countFormat.format(value);
  }

  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  }

  function shortDate(iso) {
    const d = new Date(iso.slice(0, 10) + "T00:00:00Z");
    return d.toLocaleDateString("en-GB", { day: "numeric", month: "short", year: "numeric", timeZone: "UTC" });
  }

  // -- the API ----------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.error && body.error.message) || `HTTP ${status}`);
      this.status = status;
      this.body = body;
    }
  }

  function apiUrl(path, params) {
    const url = new URL(path, window.location.origin);
    for (const [name, value] of Object.entries(params || {})) {
      if (value !== null && value !== undefined && value !== "") url.searchParams.set(name, value);
    }
    return url;
  }

  async function api(path, params) {
    const response = await fetch(apiUrl(path, params), {
      headers: { "X-API-Key": state.key, Accept: "application/json" },
      cache: "no-store",
    });
    let body = null;
    try { body = await response.json(); } catch (_) { body = null; }
    if (!response.ok) throw new ApiError(response.status, body);
    return body;
  }

  // -- messages and the key ---------------------------------------------------------------

  function showMessage(text, kind = "error") {
    const box = $("#message");
    box.textContent = text;
    box.dataset.kind = kind;
    box.hidden = !text;
  }

  function keyProblem(error) {
    if (!(error instanceof ApiError)) return null;
    if (error.status === 401) return "This API key was refused (401): it is missing or unknown. Enter a valid key.";
    if (error.status === 403) {
      const detail = error.body && error.body.error ? ` ${error.body.error.message}.` : "";
      return `This API key may not read these figures (403).${detail}`;
    }
    return null;
  }

  function askForKey(problem) {
    stopLive();
    if (state.alerts) state.alerts.abort();
    state.alerts = null;
    state.key = null;
    sessionStorage.removeItem(KEY_STORAGE);
    $("#board").hidden = true;
    $("#change-key").hidden = true;
    $("#key-panel").hidden = false;
    showMessage(problem || "");
    $("#key-input").focus();
  }

  function openBoard(key) {
    state.key = key;
    sessionStorage.setItem(KEY_STORAGE, key);
    $("#key-panel").hidden = true;
    $("#board").hidden = false;
    $("#change-key").hidden = false;
    showMessage("");
    loadAll();
  }

  // -- pickers and the period -------------------------------------------------------------

  function todayIn(tz) {
    const options = { year: "numeric", month: "2-digit", day: "2-digit" };
    if (tz) options.timeZone = tz;
    return new Intl.DateTimeFormat("en-CA", options).format(new Date()); // YYYY-MM-DD
  }

  function addDays(iso, days) {
    const d = new Date(iso + "T00:00:00Z");
    d.setUTCDate(d.getUTCDate() + days);
    return d.toISOString().slice(0, 10);
  }

  function monthStart(iso, monthsAhead) {
    const d = new Date(iso.slice(0, 8) + "01T00:00:00Z");
    d.setUTCMonth(d.getUTCMonth() + monthsAhead);
    return d.toISOString().slice(0, 10);
  }

  /** {start, end (exclusive), interval} of the picked period; start/end null for the API's default (last 30 days). */
  function pickedPeriod() {
    const preset = $("#period").value;
    const tz = $("#tz").value.trim() || state.serverTz;
    if (preset === "last30" && !$("#tz").value.trim() && !state.serverTz) return { start: null, end: null, interval: "day" };
    const today = todayIn(tz || "UTC");
    switch (preset) {
      case "today": return { start: today, end: addDays(today, 1), interval: "hour" };
      case "last7": return { start: addDays(today, -7), end: today, interval: "day" };
      case "last30": return { start: addDays(today, -30), end: today, interval: "day" };
      case "this_month": return { start: monthStart(today, 0), end: addDays(today, 1), interval: "day" };
      case "last_month": return { start: monthStart(today, -1), end: monthStart(today, 0), interval: "day" };
      case "last90": return { start: addDays(today, -90), end: today, interval: "day" };
      case "last365": return { start: addDays(today, -365), end: today, interval: "week" };
      case "custom": {
        const start = $("#start").value;
        const last = $("#end").value;
        if (!start || !last) return null;
        const end = addDays(last, 1);
        const days = (Date.parse(end) - Date.parse(start)) / 86400000;
        return { start, end, interval: days <= 2 ? "hour" : days <= 120 ? "day" : "week" };
      }
      default: return null;
    }
  }

  /** The common parameters of every request, as the pickers say. */
  function commonParams() {
    const period = pickedPeriod();
    if (!period) return null;
    return {
      start: period.start,
      end: period.end,
      interval: period.interval,
      tz: $("#tz").value.trim(),
      store_id: $("#store").value.trim(),
      channel: $("#channel").value.trim(),
      compare: $("#compare").value,
    };
  }

  const PICKERS = ["period", "start", "end", "tz", "store", "channel", "compare"];

  function saveToFragment() {
    const fragment = new URLSearchParams();
    for (const id of PICKERS) {
      const value = $("#" + id).value.trim();
      if (value) fragment.set(id, value);
    }
    history.replaceState(null, "", "#" + fragment.toString());
  }

  function loadFromFragment() {
    const fragment = new URLSearchParams(window.location.hash.slice(1));
    for (const id of PICKERS) {
      if (fragment.has(id)) $("#" + id).value = fragment.get(id);
    }
    showCustomInputs();
  }

  function showCustomInputs() {
    const custom = $("#period").value === "custom";
    $$(".pickers .custom").forEach((label) => { label.hidden = !custom; });
  }

  // -- charts -----------------------------------------------------------------------------

  function chart(id) {
    if (!state.charts[id]) {
      state.charts[id] = echarts.init(document.getElementById(id), null, { renderer: "canvas" });
    }
    return state.charts[id];
  }

  function noData(id, text) {
    chart(id).setOption({
      title: { text, left: "center", top: "middle", textStyle: { color: "#6b7385", fontSize: 13, fontWeight: 400 } },
    }, true);
  }

  function cardError(id, error) {
    noData(id, error instanceof ApiError ? `Not available: ${error.message}` : "Not available");
  }

  const baseGrid = { left: 12, right: 16, top: 28, bottom: 8, containLabel: true };
  const tooltip = { trigger: "axis", confine: true };

  function drawTrend(body) {
    const series = body.series || [];
    if (!series.some((p) => p.orders > 0)) return noData("chart-trend", "No sales in this period");
    const hourly = body.period.interval === "hour";
    const keys = series.map((p) => (hourly ? p.key.slice(11, 16) : p.key));
    chart("chart-trend").setOption({
      color: [PALETTE[0], "#b8c7f5"],
      tooltip,
      legend: { top: 0, left: "center" },
      grid: { ...baseGrid, top: 34 },
      xAxis: { type: "category", data: keys, axisTick: { show: false } },
      yAxis: [
        { type: "value", axisLabel: { formatter: (v) => compactFormat.format(v) }, splitLine: { lineStyle: { color: "#eef1f6" } } },
        { type: "value", minInterval: 1, splitLine: { show: false } },
      ],
      series: [
        { name: "Gross revenue (left)", type: "line", symbol: "none", areaStyle: { opacity: 0.08 },
          data: series.map((p) => p.gross_revenue), z: 3 },
        { name: "Orders (right)", type: "bar", yAxisIndex: 1, data: series.map((p) => p.orders), barMaxWidth: 14 },
      ],
    }, true);
  }

  function horizontalBars(id, items, label, value, formatter) {
    const rows = items.slice().reverse();
    chart(id).setOption({
      color: [PALETTE[0]],
      tooltip: { ...tooltip, axisPointer: { type: "shadow" }, valueFormatter: formatter },
      grid: { ...baseGrid, top: 8 },
      xAxis: { type: "value", axisLabel: { formatter: (v) => compactFormat.format(v) }, splitLine: { lineStyle: { color: "#eef1f6" } } },
      yAxis: { type: "category", data: rows.map(label), axisTick: { show: false },
        axisLabel: { width: 150, overflow: "truncate" } },
      series: [{ type: "bar", data: rows.map(value), barMaxWidth: 18, itemStyle: { borderRadius: [0, 4, 4, 0] } }],
    }, true);
  }

  function drawProducts(body) {
    const items = body.top_products || [];
    if (!items.length) return noData("chart-products", "No products sold in this period");
    horizontalBars("chart-products", items, (p) => p.name || p.key, (p) => p.gross_revenue, (v) => moneyFormat.format(v));
  }

  function drawCategories(body) {
    const items = body.items || [];
    if (!items.length) return noData("chart-categories", "No sales in this period");
    chart("chart-categories").setOption({
      color: PALETTE,
      tooltip: { trigger: "item", valueFormatter: (v) => moneyFormat.format(v) },
      series: [{
        type: "pie", radius: ["38%", "62%"], center: ["50%", "52%"], avoidLabelOverlap: true,
        itemStyle: { borderColor: "#fff", borderWidth: 2 },
        label: { formatter: (p) => `${p.name}\n${pctFormat.format(p.data.share)}`, fontSize: 11, lineHeight: 14 },
        labelLine: { length: 8, length2: 8 },
        data: items.map((c) => ({ name: c.key, value: c.gross_revenue, share: c.share })),
      }],
    }, true);
  }

  function drawGeography(body) {
    const items = body.items || [];
    if (!items.length) return noData("chart-geography", "No sales in this period");
    horizontalBars("chart-geography", items, (c) => c.key, (c) => c.gross_revenue, (v) => moneyFormat.format(v));
  }

  function drawFunnel(body) {
    const steps = body.steps || [];
    if (!steps.length || !steps[0].actors) return noData("chart-funnel", "No activity in this period");
    chart("chart-funnel").setOption({
      color: PALETTE,
      tooltip: { trigger: "item", formatter: (p) => `${escapeHtml(p.name)}: ${countFormat.format(p.value)} actors (${pctFormat.format(p.data.conversion)} of the first step)` },
      series: [{
        type: "funnel", left: "4%", width: "52%", top: 10, bottom: 10, sort: "none", gap: 3, minSize: "10%",
        label: { position: "right", formatter: (p) => `{name|${p.name}}\n${countFormat.format(p.value)} actors · ${pctFormat.format(p.data.conversion)}`,
          color: "#1d2433", fontSize: 12, lineHeight: 16, rich: { name: { fontWeight: 600, fontSize: 12 } } },
        labelLine: { length: 14, lineStyle: { color: "#c5cbd6" } },
        data: steps.map((s) => ({ name: s.step.replaceAll("_", " "), value: s.actors, conversion: s.conversion })),
      }],
    }, true);
  }

  function drawHeatmap(body) {
    const cells = body.heatmap || [];
    const max = Math.max(0, ...cells.map((c) => c.count));
    if (!max) return noData("chart-heatmap", "No activity in this period");
    chart("chart-heatmap").setOption({
      tooltip: { position: "top", formatter: (p) => `${WEEKDAYS[p.value[1]]} ${String(p.value[0]).padStart(2, "0")}:00 · ${countFormat.format(p.value[2])} events` },
      grid: { left: 46, right: 70, top: 10, bottom: 28 },
      xAxis: { type: "category", data: Array.from({ length: 24 }, (_, h) => String(h).padStart(2, "0")), splitArea: { show: true } },
      yAxis: { type: "category", data: WEEKDAYS, inverse: true, splitArea: { show: true } },
      visualMap: { min: 0, max, calculable: true, orient: "vertical", right: 0, top: "middle", itemHeight: 150, itemWidth: 12,
        inRange: { color: ["#f1f4fd", "#9fb4f3", "#2f5bea", "#1b2f87"] } },
      series: [{ type: "heatmap", data: cells.map((c) => [c.hour, c.weekday, c.count]), emphasis: { itemStyle: { borderColor: "#333", borderWidth: 1 } } }],
    }, true);
  }

  function drawLowStock(body) {
    const rows = (body.items || []).map((p) => `<tr data-product="${escapeHtml(p.key)}">
        <td>${escapeHtml(p.name || p.key)}<span class="sub">${escapeHtml(p.key)}</span></td>
        <td class="num">${p.out_of_stock ? '<span class="badge out">out of stock</span>' : countFormat.format(p.stock ?? 0)}</td>
        <td class="num">${p.reorder_point === null || p.reorder_point === undefined ? "–" : countFormat.format(p.reorder_point)}</td>
        <td class="num">${p.days_of_cover === null || p.days_of_cover === undefined ? "–" : p.days_of_cover.toFixed(1)}</td>
        <td class="num">${countFormat.format(p.units ?? 0)}</td>
        <td><span class="badge">${escapeHtml(p.abc_class || "–")}</span></td></tr>`);
    $("#low-stock tbody").innerHTML = rows.join("") || '<tr><td colspan="6" class="muted">No product is low on stock.</td></tr>';
  }

  function drawLive(data) {
    const minutes = data.recent.series || [];
    const spark = chart("chart-live");
    spark.setOption({
      color: [PALETTE[0]],
      grid: { left: 8, right: 8, top: 22, bottom: 6 },
      title: { text: `orders per minute, last ${data.recent.minutes} min`, left: 8, top: 2, textStyle: { fontSize: 11, color: "#6b7385", fontWeight: 500 } },
      tooltip: { trigger: "axis", confine: true },
      xAxis: { type: "category", show: false, data: minutes.map((m) => m.minute.slice(11, 16)) },
      yAxis: { type: "value", show: false, minInterval: 1 },
      series: [{ type: "bar", name: "orders", data: minutes.map((m) => m.orders), barCategoryGap: "15%" }],
    }, true);
  }

  // -- tiles ------------------------------------------------------------------------------

  function setTile(tile, text, raw) {
    const value = $(".value", tile);
    const before = value.dataset.value;
    value.textContent = text;
    value.dataset.value = raw === null || raw === undefined ? "" : String(raw);
    if (before !== undefined && before !== value.dataset.value) {
      tile.classList.remove("flash");
      void tile.offsetWidth; // restart the animation
      tile.classList.add("flash");
    }
  }

  function drawKpis(body, query) {
    const comparison = body.comparison;
    for (const tile of $$("#kpis .tile")) {
      const name = tile.dataset.kpi;
      setTile(tile, formatKpi(name, body.kpis[name]), body.kpis[name]);
      const change = $(".change", tile);
      change.removeAttribute("data-direction");
      if (!comparison) { change.textContent = ""; continue; }
      const growth = comparison[`${name}_growth_pct`];
      const previous = comparison[name];
      if (comparison.has_data === false) {
        change.textContent = "no data in the compared period";
        continue;
      }
      if (growth === null || growth === undefined) {
        change.textContent = `no comparison (was ${formatKpi(name, previous)})`;
        continue;
      }
      const arrow = growth > 0 ? "▲" : growth < 0 ? "▼" : "■";
      change.textContent = `${arrow} ${growth > 0 ? "+" : ""}${growth.toFixed(1)}% (was ${formatKpi(name, previous)})`;
      // The colour follows whether a rise of this KPI is good news (the API's up_is_good), not the sign.
      const upIsGood = (comparison.up_is_good || {})[name] !== false;
      if (growth !== 0) change.dataset.direction = (growth > 0) === upIsGood ? "good" : "bad";
    }
    $("#kpis").dataset.query = JSON.stringify(query);
    $("#kpis").dataset.asOf = body.as_of || "";
  }

  function describePeriod(period) {
    const last = addDays(period.end.slice(0, 10), -1);
    const days = period.end.slice(11, 19) === "00:00:00" ? `${shortDate(period.start)} – ${shortDate(last)}` : `${period.start} – ${period.end}`;
    return `${days} (${period.tz})`;
  }

  // -- loading ----------------------------------------------------------------------------

  async function loadAll({ quiet = false } = {}) {
    const query = commonParams();
    if (!query) { showMessage("Pick both dates of the custom period.", "info"); return; }
    saveToFragment();
    const generation = ++state.generation;
    const { compare, ...withoutCompare } = query;
    // Activity has no sales channel (the users endpoints answer 422 to one): not sent there.
    const { channel, ...activity } = withoutCompare;
    $$(".activity-note").forEach((n) => { n.textContent = channel ? "(every channel: activity has none)" : ""; });
    const requests = {
      dashboard: api(`${API}/dashboard`, { ...query, limit: 10 }),
      categories: api(`${API}/sales/categories`, { ...withoutCompare, limit: 8 }),
      geography: api(`${API}/sales/geographic`, { ...withoutCompare, level: "country", limit: 10 }),
      funnel: api(`${API}/users/conversion`, activity),
      behavior: api(`${API}/users/behavior`, activity),
      inventory: api(`${API}/products/inventory`, { ...withoutCompare, low_stock: true, sort: "days_of_cover", limit: 15 }),
    };
    const names = Object.keys(requests);
    const settled = await Promise.allSettled(Object.values(requests));
    if (generation !== state.generation) return; // the pickers changed meanwhile
    const answers = Object.fromEntries(names.map((name, i) => [name, settled[i]]));
    for (const outcome of settled) {
      const problem = outcome.status === "rejected" && keyProblem(outcome.reason);
      if (problem) { askForKey(problem); return; }
    }
    const draw = {
      dashboard: (b) => { drawKpis(b, { ...query, limit: 10 }); drawTrend(b); drawProducts(b); },
      categories: drawCategories,
      geography: drawGeography,
      funnel: drawFunnel,
      behavior: drawHeatmap,
      inventory: drawLowStock,
    };
    const charts = { dashboard: "chart-trend", categories: "chart-categories", geography: "chart-geography",
      funnel: "chart-funnel", behavior: "chart-heatmap" };
    const failed = [];
    for (const name of names) {
      const outcome = answers[name];
      if (outcome.status === "fulfilled") draw[name](outcome.value);
      else {
        failed.push(`${name}: ${outcome.reason.message}`);
        if (charts[name]) cardError(charts[name], outcome.reason);
      }
    }
    if (answers.dashboard.status === "fulfilled") {
      const body = answers.dashboard.value;
      if (!query.tz && !state.serverTz) {
        state.serverTz = body.period.tz;
        $("#tz").placeholder = `server default (${state.serverTz})`;
      }
      state.periodEnd = Date.parse(body.period.end);
      $("#period-text").textContent = describePeriod(body.period);
      $("#kpi-note").textContent = body.stale ? "· updating…" : "";
      // A stale answer (computed before the newest data) is being recomputed in the background
      // (a few hundred ms): ask again soon, for up to 4.5 s (CACHE_MAX_STALENESS_SECONDS is 5 by default).
      if (body.stale && state.staleRetries < 15) { state.staleRetries += 1; scheduleRefresh(300); } else if (!body.stale) state.staleRetries = 0;
    }
    if (failed.length) showMessage(`Some figures could not be loaded: ${failed.join("; ")}`);
    else if (!quiet) showMessage("");
    document.body.dataset.loaded = String(generation);
    connectLive(query);
    connectAlerts(query.store_id || null);
  }

  function scheduleRefresh(delay) {
    clearTimeout(state.refreshTimer);
    state.refreshTimer = setTimeout(() => loadAll({ quiet: true }), delay);
  }

  // -- live -------------------------------------------------------------------------------

  function setLiveState(status, label) {
    const box = $("#live-status");
    box.dataset.state = status;
    $(".label", box).textContent = label;
  }

  function stopLive() {
    if (state.live) state.live.abort();
    state.live = null;
    state.liveParams = null;
    setLiveState("off", "not connected");
  }

  function connectLive(query) {
    const params = { tz: query.tz, store_id: query.store_id, channel: query.channel };
    const same = JSON.stringify(params) === JSON.stringify(state.liveParams);
    if (same && state.live) return;
    stopLive();
    state.liveParams = params;
    const controller = new AbortController();
    state.live = controller;
    readLive(params, controller);
  }

  /** Parse one server-sent event block ("event:", "data:", "id:", "retry:" lines; ":" comments). */
  function parseEvent(block) {
    const event = { type: "message", data: [] };
    for (const line of block.split("\n")) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") event.type = value;
      else if (field === "data") event.data.push(value);
      else if (field === "retry") event.retry = Number(value);
      else if (field === "id") event.id = value;
    }
    event.data = event.data.join("\n");
    return event;
  }

  /** Read a text/event-stream response to its end, calling onEvent for each event. */
  async function pumpEvents(response, onEvent) {
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value.replace(/\r\n?/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const event = parseEvent(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        onEvent(event);
      }
    }
  }

  async function readLive(params, controller) {
    let retry = 2000;
    setLiveState("connecting", "connecting…");
    try {
      const response = await fetch(apiUrl(`${API}/live`, params), {
        headers: { "X-API-Key": state.key, Accept: "text/event-stream" },
        cache: "no-store",
        signal: controller.signal,
      });
      if (!response.ok) {
        let body = null;
        try { body = await response.json(); } catch (_) { body = null; }
        const error = new ApiError(response.status, body);
        const problem = keyProblem(error);
        if (problem) { askForKey(problem); return; }
        throw error;
      }
      await pumpEvents(response, (event) => {
        if (event.retry) retry = event.retry;
        onLiveEvent(event);
      });
    } catch (error) {
      if (controller.signal.aborted) return;
      setLiveState("error", `live updates interrupted: ${error.message}`);
    }
    if (controller.signal.aborted || state.live !== controller) return;
    setTimeout(() => { if (state.live === controller) readLive(params, controller); }, retry);
  }

  function onLiveEvent(event) {
    if (event.type === "error") {
      setLiveState("error", "live figures unavailable, retrying");
      return;
    }
    if (event.type !== "kpis") return;
    const data = JSON.parse(event.data);
    setLiveState("live", "live");
    const live = {
      orders: [countFormat.format(data.kpis.orders), data.kpis.orders],
      gross_revenue: [moneyFormat.format(data.kpis.gross_revenue), data.kpis.gross_revenue],
      recent_orders: [countFormat.format(data.recent.orders), data.recent.orders],
      recent_revenue: [moneyFormat.format(data.recent.gross_revenue), data.recent.gross_revenue],
      active_sessions: [countFormat.format(data.recent.active_sessions), data.recent.active_sessions],
    };
    for (const tile of $$("[data-live]")) setTile(tile, ...live[tile.dataset.live]);
    $$(".live .minutes").forEach((n) => { n.textContent = data.recent.minutes; });
    $("#live-as-of").textContent = `· today so far (${data.period.tz}), as of ${new Date(data.as_of).toLocaleTimeString()}`;
    drawLive(data);
    // New data may change the period's figures when the period runs up to now.
    if (state.periodEnd !== null && state.periodEnd > Date.now()) scheduleRefresh(50);
  }

  // -- alerts -----------------------------------------------------------------------------
  // Open incidents (GET /api/v1/alerts/incidents), then each one that opens or resolves as
  // it happens (GET /api/v1/alerts/stream, read like the live stream). Both need the reports
  // scope: with a key that lacks it the card says so and the rest of the page is unaffected.

  function incidentText(i) {
    const subject = i.subject ? ` · product ${i.subject}` : "";
    const value = i.value ?? i.last_value;
    const formats = { money: moneyFormat, rate: pctFormat, count: countFormat };
    const shown = typeof value === "number" ? (formats[i.measure_kind] || moneyFormat).format(value) : "–";
    return `${i.alert_name}${subject}: ${(i.measure_label || i.measure).toLowerCase()} ${shown}`;
  }

  function drawIncidents() {
    const list = $("#incidents");
    const items = state.incidents;
    $("#alerts-note").textContent = items.length ? `· ${items.length} open` : "";
    list.innerHTML = items.length ? items.map((i) => `<li data-kind="${escapeHtml(i.kind || "fired")}">
        <span class="when">${escapeHtml(new Date(i.opened_at || i.at).toLocaleString())}</span>
        <span class="what">${escapeHtml(incidentText(i))}</span></li>`).join("")
      : `<li class="none">No open incidents.</li>`;
  }

  function onAlertEvent(event) {
    if (event.type !== "incident") return;
    const data = JSON.parse(event.data);
    state.incidents = state.incidents.filter((i) => i.incident_id !== data.incident_id);
    if (data.kind === "fired") state.incidents.unshift(data);
    drawIncidents();
    const card = $("#alerts");
    card.classList.remove("flash");
    void card.offsetWidth; // restart the animation
    card.classList.add("flash");
    $("#alerts-last").textContent = `${data.kind === "fired" ? "Fired" : "Resolved"}: ${incidentText(data)}`;
  }

  /** The open incidents, then the stream from the moment it opened (its first event block
   * comes after the server took its place in the event history): nothing falls between the
   * two, and an incident both listed and streamed is shown once. A reconnection sends the
   * last event id seen, so the server sends what was missed meanwhile. */
  async function connectAlerts(store) {
    if (state.alerts && state.alertsStore === store) return;
    if (state.alerts) state.alerts.abort();
    const controller = new AbortController();
    state.alerts = controller;
    state.alertsStore = store;
    state.incidents = [];
    let retry = 2000;
    let lastId = null;
    let listed = false;
    const card = $("#alerts");
    while (state.alerts === controller) {
      try {
        const headers = { "X-API-Key": state.key, Accept: "text/event-stream" };
        if (lastId !== null) headers["Last-Event-ID"] = lastId;
        const response = await fetch(apiUrl("/api/v1/alerts/stream", { store_id: store }), {
          headers, cache: "no-store", signal: controller.signal,
        });
        if (response.status === 401 || response.status === 403) {
          $("#alerts-state").textContent = "Alerts need a key with the reports scope.";
          $("#incidents").innerHTML = "";
          return;
        }
        if (!response.ok) throw new ApiError(response.status, null);
        await pumpEvents(response, (event) => {
          if (event.retry) retry = event.retry;
          if (event.id) lastId = event.id;
          if (!listed) {
            listed = true;
            card.dataset.stream = "open";
            loadIncidents(store, controller);
          }
          onAlertEvent(event);
        });
      } catch (error) {
        if (controller.signal.aborted) return;
        $("#alerts-state").textContent = `Alert updates interrupted (${error.message}); reconnecting…`;
      }
      card.dataset.stream = "closed";
      await new Promise((resolve) => setTimeout(resolve, retry));
    }
  }

  async function loadIncidents(store, controller) {
    try {
      const open = await api("/api/v1/alerts/incidents", { status: "open", store_id: store, page_size: 20 });
      if (state.alerts !== controller) return;
      const streamed = new Set(state.incidents.map((i) => i.incident_id));
      state.incidents = [...state.incidents, ...open.items.filter((i) => !streamed.has(i.incident_id))];
      drawIncidents();
      $("#alerts-state").textContent = "";
    } catch (error) {
      $("#alerts-state").textContent = `Open incidents unavailable: ${error.message}`;
    }
  }

  // -- start ------------------------------------------------------------------------------

  function start() {
    const zones = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
    $("#zones").innerHTML = ["UTC", ...zones].map((z) => `<option value="${escapeHtml(z)}">`).join("");
    loadFromFragment();
    $("#pickers").addEventListener("change", () => { showCustomInputs(); state.staleRetries = 0; loadAll(); });
    $("#pickers").addEventListener("submit", (e) => { e.preventDefault(); loadAll(); });
    $("#key-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const key = $("#key-input").value.trim();
      $("#key-input").value = "";
      if (key) openBoard(key);
    });
    $("#change-key").addEventListener("click", () => askForKey(""));
    // A link to another view (#period=...&store=...) opened in this tab.
    window.addEventListener("hashchange", () => { loadFromFragment(); if (state.key) loadAll(); });
    window.addEventListener("resize", () => Object.values(state.charts).forEach((c) => c.resize()));
    const saved = sessionStorage.getItem(KEY_STORAGE);
    if (saved) openBoard(saved); else askForKey("");
  }

  start();
})();
