/* pairgen report: the page's behaviour. Plain script (module scripts are refused on file://);
   every data file is loaded with <script src> (file:// allows it, fetch() it does not). */
(function () {
  "use strict";
  const R = window.PAIRGEN_REPORT;
  const $ = (sel) => document.querySelector(sel);
  const el = (tag, attrs, ...children) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "style") node.style.cssText = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  };
  const SVG = "http://www.w3.org/2000/svg";
  const svg = (tag, attrs) => {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    return node;
  };

  if (!R) {
    document.querySelector("main").textContent = "data/report.js is missing: run `pairgen inspect DATASET --html DIR` again.";
    return;
  }

  // ------------------------------------------------------------------ data loading
  const pages = {};     // page number -> page data
  const columns = {};   // parameter index -> values per sample
  const scripts = {};
  window.pairgenPage = (data) => { pages[data.page] = data; };
  window.pairgenColumn = (index, values) => { columns[index] = values; };
  function load(src) {
    if (!scripts[src]) {
      scripts[src] = new Promise((resolve, reject) => {
        const node = document.createElement("script");
        node.src = src;
        node.onload = resolve;
        node.onerror = () => { delete scripts[src]; reject(new Error("cannot read " + src)); };
        document.head.append(node);
      });
    }
    return scripts[src];
  }
  const pad = (n, width) => String(n).padStart(width, "0");
  const pageOf = (i) => Math.floor(i / R.page_size) + 1;
  const loadPage = (p) => load("data/pages/p" + pad(p, 6) + ".js").then(() => pages[p]);
  const loadColumn = (k) => load(R.params[k].column).then(() => columns[k]);

  // ------------------------------------------------------------------ state (kept in the URL hash)
  const state = { tab: "gallery", page: 1, size: 160, overlay: true, keypoints: true, filters: [] };
  function readHash() {
    const h = new URLSearchParams(location.hash.slice(1));
    state.tab = ["gallery", "params", "card"].includes(h.get("tab")) ? h.get("tab") : "gallery";
    state.page = Math.max(1, parseInt(h.get("page") || "1", 10) || 1);
    state.size = Math.min(256, Math.max(96, parseInt(h.get("size") || "160", 10) || 160));
    state.overlay = h.get("overlay") !== "0";
    state.keypoints = h.get("kp") !== "0";
    try { state.filters = JSON.parse(h.get("f") || "[]").filter(validFilter); } catch (e) { state.filters = []; }
  }
  function validFilter(f) {  // a hand-edited or stale URL must not break the page
    const p = f && R.params[f.p], num = (v) => v === null || typeof v === "number";
    if (!p) return false;
    if (p.kind === "text") return Array.isArray(f.cats) && f.cats.every((c) => Number.isInteger(c));
    return num(f.min) && num(f.max) && (f.min !== null || f.max !== null);
  }
  function writeHash() {
    const h = new URLSearchParams();
    if (state.tab !== "gallery") h.set("tab", state.tab);
    if (state.page !== 1) h.set("page", state.page);
    if (state.size !== 160) h.set("size", state.size);
    if (!state.overlay) h.set("overlay", "0");
    if (!state.keypoints) h.set("kp", "0");
    if (state.filters.length) h.set("f", JSON.stringify(state.filters));
    const text = h.toString();
    if (location.hash.slice(1) !== text) history.replaceState(null, "", text ? "#" + text : location.pathname);
  }

  // ------------------------------------------------------------------ formatting
  function fmt(v) {
    if (v === null || v === undefined) return "";
    if (typeof v === "number") {
      if (Number.isInteger(v)) return String(v);
      const a = Math.abs(v);
      return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(3) : String(+v.toPrecision(4));
    }
    return String(v);
  }
  const shape = (s) => (s || []).map((d) => (d === null ? "?" : d)).join("\u00d7");

  // ------------------------------------------------------------------ header and tabs
  function header() {
    document.title = "pairgen report: " + R.title;
    $("#title").textContent = R.title;
    const c = R.card.counts || {};
    $("#subtitle").textContent = ["task " + R.card.task, R.samples + " samples", (c.shards ?? R.shards) + " shards",
      (c.inputs ?? "?") + " inputs", (R.skipped.count) + " skipped", "seed " + R.card.seed, R.card.format,
      "pairgen " + R.pairgen_version].join(" \u00b7 ");
    for (const b of document.querySelectorAll("#tabs button")) {
      b.addEventListener("click", () => { state.tab = b.dataset.tab; showTab(); writeHash(); });
    }
    const size = $("#size"), overlay = $("#overlay"), kp = $("#keypoints");
    size.value = state.size; overlay.checked = state.overlay; kp.checked = state.keypoints;
    size.addEventListener("input", () => { state.size = +size.value; applySize(); writeHash(); });
    overlay.addEventListener("change", () => { state.overlay = overlay.checked; writeHash(); renderGallery(); if (zoom.open) drawZoom(); });
    kp.addEventListener("change", () => { state.keypoints = kp.checked; writeHash(); renderGallery(); if (zoom.open) drawZoom(); });
    const anyOverlay = R.columns.some((c) => ["mask", "occlusion", "heatmap"].includes(c.view));
    overlay.parentElement.hidden = !anyOverlay;
    kp.parentElement.hidden = !R.has_keypoints;
    const head = () => document.documentElement.style.setProperty("--head", $("#top").offsetHeight + "px");
    head(); window.addEventListener("resize", head);
  }
  function showTab() {
    for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("on", b.dataset.tab === state.tab);
    for (const s of document.querySelectorAll("main > section")) s.hidden = s.dataset.tab !== state.tab;
    if (state.tab === "params" && !$("#params").childElementCount) renderParams();
    if (state.tab === "card" && !$("#card").childElementCount) renderCard();
  }
  function applySize() { document.documentElement.style.setProperty("--tile", state.size + "px"); renderGallery(); }

  // ------------------------------------------------------------------ filters
  let matches = null;  // sorted sample indices matching the filters (null: no filter)
  function describe(f) {
    const p = R.params[f.p];
    if (p.kind === "text") return p.name + " \u2208 {" + f.cats.map((c) => p.categories[c]).join(", ") + "}";
    if (f.min !== null && f.max !== null) return p.name + " " + fmt(f.min) + " \u2013 " + fmt(f.max);
    return p.name + (f.min !== null ? " \u2265 " + fmt(f.min) : " \u2264 " + fmt(f.max));
  }
  function accepts(f, v) {
    if (v === null || v === undefined) return false;
    if (R.params[f.p].kind === "text") return f.cats.includes(v);
    return (f.min === null || v >= f.min) && (f.max === null || v <= f.max);
  }
  async function computeMatches() {
    if (!state.filters.length) { matches = null; return; }
    const cols = await Promise.all(state.filters.map((f) => loadColumn(f.p)));
    const out = [];
    for (let i = 0; i < R.samples; i++) {
      let ok = true;
      for (let k = 0; k < cols.length && ok; k++) ok = accepts(state.filters[k], cols[k][i]);
      if (ok) out.push(i);
    }
    matches = out;
  }
  function setFilters(filters) {
    state.filters = filters; state.page = 1; state.tab = "gallery";
    showTab(); refresh();
    if ($("#params").childElementCount) renderParams();
  }
  function filterBar() {
    const bar = $("#filterbar");
    bar.replaceChildren();
    if (!R.params.length) { bar.append(el("span", { class: "lead" }, "no drawn parameters recorded in this dataset")); return; }
    bar.append(el("span", { class: "lead" }, "filter"));
    state.filters.forEach((f, k) => bar.append(el("span", { class: "chip" }, describe(f),
      el("button", { type: "button", title: "remove", onclick: () => setFilters(state.filters.filter((_, j) => j !== k)) }, "\u00d7"))));
    if (matches) bar.append(el("span", { class: "matches", id: "matches" }, matches.length + " of " + R.samples + " samples match"));
    else bar.append(el("span", { class: "lead" }, "none: all " + R.samples + " samples (click a histogram bar, or pick a parameter)"));
    const pick = el("select", { id: "fparam" }, R.params.map((p, k) => el("option", { value: k }, p.name)));
    const lo = el("input", { type: "number", step: "any", placeholder: "min", id: "fmin" });
    const hi = el("input", { type: "number", step: "any", placeholder: "max", id: "fmax" });
    const cat = el("select", { id: "fcat" });
    const sync = () => {
      const p = R.params[+pick.value];
      lo.hidden = hi.hidden = p.kind === "text"; cat.hidden = p.kind !== "text";
      if (p.kind === "text") cat.replaceChildren(...p.categories.map((c, k) => el("option", { value: k }, c)));
      else { lo.placeholder = "min " + fmt(p.min); hi.placeholder = "max " + fmt(p.max); }
    };
    pick.addEventListener("change", sync);
    const add = () => {
      const k = +pick.value, p = R.params[k];
      const f = p.kind === "text" ? { p: k, cats: [+cat.value] }
        : { p: k, min: lo.value === "" ? null : +lo.value, max: hi.value === "" ? null : +hi.value };
      if (p.kind !== "text" && f.min === null && f.max === null) return;
      setFilters(state.filters.filter((g) => g.p !== k).concat([f]));
    };
    bar.append(el("span", { class: "add" }, pick, lo, hi, cat, el("button", { type: "button", id: "fadd", onclick: add }, "add filter")));
    sync();
  }

  // ------------------------------------------------------------------ gallery
  const total = () => (matches ? matches.length : R.samples);
  const pageCount = () => Math.max(1, Math.ceil(total() / R.page_size));
  function indicesOfPage() {
    const start = (state.page - 1) * R.page_size, stop = Math.min(total(), start + R.page_size);
    const out = [];
    for (let k = start; k < stop; k++) out.push(matches ? matches[k] : k);
    return out;
  }
  function pager(node) {
    node.replaceChildren();
    const n = pageCount();
    const go = (p) => { state.page = Math.min(n, Math.max(1, p)); writeHash(); renderGallery(); };
    const input = el("input", { type: "number", min: 1, max: n, value: state.page, class: "pageno" });
    input.addEventListener("change", () => go(+input.value || 1));
    node.append(
      el("button", { type: "button", class: "first", disabled: state.page <= 1, onclick: () => go(1) }, "\u00ab"),
      el("button", { type: "button", class: "prev", disabled: state.page <= 1, onclick: () => go(state.page - 1), title: "previous page (left arrow)" }, "\u2039 prev"),
      el("span", {}, "page "), input, el("span", {}, " of " + n),
      el("button", { type: "button", class: "next", disabled: state.page >= n, onclick: () => go(state.page + 1), title: "next page (right arrow)" }, "next \u203a"),
      el("button", { type: "button", class: "last", disabled: state.page >= n, onclick: () => go(n) }, "\u00bb"),
      el("span", { class: "count" }, R.page_size + " samples a page"));
  }
  function headRow() {
    const row = el("div", { class: "grow ghead" }, el("div", { class: "col" }, "sample"));
    for (const c of R.columns) {
      const legend = R.legends[c.view];
      row.append(el("div", { class: "col", title: c.meaning },
        el("div", { class: "name" }, c.field, legend ? el("img", { class: "legend", src: legend.file, alt: c.view + " key", title: legend.caption }) : null),
        el("div", { class: "meta" }, el("span", { class: "role " + c.role }, c.role), " " + (c.view || "") + " \u00b7 " + c.dtype + " " + shape(c.shape))));
    }
    row.append(el("div", { class: "col" }, "drawn parameters"));
    return row;
  }
  function keypointSvg(points, t, box, px) {
    // points in the field's pixels (x right, y down) -> the thumbnail cell, where the field is
    // fitted into box x box and centred.
    const scale = Math.min(box / t.w, box / t.h);
    const w = Math.min(box, Math.max(1, Math.round(t.w * scale))), h = Math.min(box, Math.max(1, Math.round(t.h * scale)));
    const s = svg("svg", { class: "kp", viewBox: "0 0 " + box + " " + box });
    const g = svg("g", { transform: "translate(" + (box - w) / 2 + " " + (box - h) / 2 + ") scale(" + w / t.w + " " + h / t.h + ")" });
    const r = px / (w / t.w);
    points.forEach(([x, y, visible, name], k) => {
      const c = svg("circle", { cx: x, cy: y, r: r, fill: visible ? hue(k) : "none", stroke: visible ? "#000" : hue(k),
        "stroke-width": r / 3 });
      const title = svg("title", {}); title.textContent = name + (visible ? "" : " (hidden)");
      c.append(title); g.append(c);
    });
    s.append(g);
    return s;
  }
  const hue = (k) => "hsl(" + ((k * 137.508) % 360) + " 95% 60%)";
  function tileNode(entry, t) {
    if (!t || t.absent) return el("figure", { class: "tile" }, el("div", { class: "pic empty" }, "no such field in this sample"));
    if (t.error) return el("figure", { class: "tile" }, el("div", { class: "pic empty error" }, t.error));
    const S = state.size, cell = state.overlay && t.overlay_cell ? t.overlay_cell : t.cell;
    const pic = el("div", { class: "pic", "data-field": t.field, title: t.field + " " + t.w + "\u00d7" + t.h + " (click to zoom)",
      style: "background-image:url('" + entry.thumb + "');background-size:" + (entry.size[0] / R.box * S) + "px " + S + "px;" +
        "background-position:" + (-cell.n * S) + "px 0" });
    pic.addEventListener("click", () => openZoom(entry.i, t.field));
    const fig = el("figure", { class: "tile" }, pic);
    const points = entry.keypoints[t.field];
    if (state.keypoints && points) fig.append(keypointSvg(points, t, R.box, 3));
    fig.append(el("figcaption", { title: t.note }, t.w + "\u00d7" + t.h + (t.note ? " \u00b7 " + t.note : "")));
    return fig;
  }
  function paramsNode(entry) {
    const hits = new Set(state.filters.map((f) => R.params[f.p].name));
    const ordered = Object.entries(entry.params).sort(([a], [b]) => hits.has(b) - hits.has(a));  // filtered first
    return el("div", { class: "params" }, ordered.map(([k, v]) =>
      el("div", { class: hits.has(k) ? "hit" : null, title: k + " = " + v }, el("span", {}, k), el("span", {}, fmt(v)))));
  }
  function sampleRow(entry) {
    const row = el("div", { class: "grow sample", "data-i": entry.i },
      el("div", { class: "label" }, el("div", { class: "idx" }, "#" + entry.i), el("div", { class: "key" }, entry.key || "?"),
        el("div", { class: "shard" }, entry.shard)));
    if (entry.missing) { row.append(el("div", { class: "missing" }, entry.missing)); return row; }
    const byField = Object.fromEntries(entry.tiles.map((t) => [t.field, t]));
    for (const c of R.columns) row.append(tileNode(entry, byField[c.field]));
    row.append(paramsNode(entry));
    return row;
  }
  let shown = [];       // the entries on screen, in order (zoom steps through them)
  let renderToken = 0;
  async function renderGallery() {
    const token = ++renderToken;
    document.body.dataset.ready = "";
    if (state.page > pageCount()) state.page = pageCount();
    filterBar();
    pager($("#pager-top")); pager($("#pager-bottom"));
    const grid = $("#grid");
    grid.style.setProperty("--cols", R.columns.length);
    const wanted = indicesOfPage();
    const needed = [...new Set(wanted.map(pageOf))];
    if (needed.some((p) => !pages[p])) grid.replaceChildren(headRow(), el("div", { class: "loading" }, "loading\u2026"));
    let data;
    try { data = await Promise.all(needed.map(loadPage)); } catch (e) {
      grid.replaceChildren(el("div", { class: "loading warn" }, String(e.message) + " (was the report written completely?)"));
      return;
    }
    if (token !== renderToken) return;
    const byIndex = {};
    for (const page of data) for (const entry of page.samples) byIndex[entry.i] = entry;
    shown = wanted.map((i) => byIndex[i]).filter(Boolean);
    grid.replaceChildren(headRow(), ...shown.map(sampleRow));
    if (!shown.length) grid.append(el("div", { class: "loading" }, "no samples match the filters"));
    // Ready once every thumbnail strip of the page has loaded (tests and the benchmark wait on it).
    const urls = [...new Set(shown.filter((e) => e.thumb).map((e) => e.thumb))];
    await Promise.all(urls.map((u) => new Promise((resolve) => { const im = new Image(); im.onload = im.onerror = resolve; im.src = u; })));
    if (token !== renderToken) return;
    window.pairgenReadyAt = performance.now();
    document.body.dataset.ready = String(state.page);
  }
  async function refresh() {
    writeHash();
    try { await computeMatches(); } catch (e) { matches = []; $("#filterbar").append(el("span", { class: "warn" }, e.message)); }
    await renderGallery();
  }

  // ------------------------------------------------------------------ zoom
  const zoom = { open: false, entry: null, field: null, z: 1, x: 0, y: 0, fitted: false };
  function tilesOf(entry) { return entry.tiles.filter((t) => t.cell); }
  async function openZoom(index, field) {
    const page = await loadPage(pageOf(index));
    const entry = page.samples.find((e) => e.i === index);
    if (!entry || entry.missing) return;
    zoom.entry = entry; zoom.field = field || tilesOf(entry)[0].field; zoom.open = true; zoom.fitted = false;
    $("#zoom").hidden = false;
    drawZoom();
  }
  function closeZoom() { zoom.open = false; $("#zoom").hidden = true; }
  function refSize(entry) {
    const ts = tilesOf(entry);
    return [Math.max(...ts.map((t) => t.w)), Math.max(...ts.map((t) => t.h))];
  }
  function fit() {
    const view = $("#zview").getBoundingClientRect(), [rw, rh] = refSize(zoom.entry);
    zoom.z = Math.min((view.width - 24) / rw, (view.height - 24) / rh);
    zoom.x = (view.width - rw * zoom.z) / 2; zoom.y = (view.height - rh * zoom.z) / 2;
  }
  function setLevel(z) {
    const view = $("#zview").getBoundingClientRect(), [rw, rh] = refSize(zoom.entry);
    const cx = view.width / 2, cy = view.height / 2;
    zoom.x = cx - (cx - zoom.x) * z / zoom.z; zoom.y = cy - (cy - zoom.y) * z / zoom.z; zoom.z = z;
    if (rw * z <= view.width && rh * z <= view.height) { zoom.x = (view.width - rw * z) / 2; zoom.y = (view.height - rh * z) / 2; }
    drawZoom();
  }
  function drawZoom() {
    const entry = zoom.entry, ts = tilesOf(entry);
    const t = ts.find((x) => x.field === zoom.field) || ts[0];
    zoom.field = t.field;
    if (!zoom.fitted) { fit(); zoom.fitted = true; }
    const [rw] = refSize(entry);
    const s = zoom.z * rw / t.w;  // every field at the size of the largest: an LR shows at its HR's size
    const cell = state.overlay && t.overlay_cell ? t.overlay_cell : t.cell;
    const img = $("#zimg"), box = $("#zcell");
    if (img.getAttribute("src") !== entry.full) img.src = entry.full;
    img.classList.toggle("px", s >= 1);
    img.style.width = entry.size[1] * s + "px"; img.style.height = entry.size[2] * s + "px";
    img.style.left = -cell.x * s + "px";
    box.style.width = t.w * s + "px"; box.style.height = t.h * s + "px";
    box.style.transform = "translate(" + zoom.x + "px," + zoom.y + "px)";
    box.dataset.field = t.field; box.dataset.scale = s;
    const kp = $("#zkp");
    kp.replaceChildren();
    kp.setAttribute("width", t.w * s); kp.setAttribute("height", t.h * s); kp.setAttribute("viewBox", "0 0 " + t.w + " " + t.h);
    const points = entry.keypoints[t.field];
    if (state.keypoints && points) {
      const r = 5 / s;
      points.forEach(([x, y, visible, name], k) => {
        kp.append(svg("circle", { cx: x, cy: y, r: r, fill: visible ? hue(k) : "none", stroke: visible ? "#000" : hue(k), "stroke-width": r / 3 }));
        const label = svg("text", { x: x + r * 1.4, y: y + r * 0.5, "font-size": 11 / s, fill: "#fff", stroke: "#000", "stroke-width": 2 / s, "paint-order": "stroke" });
        label.textContent = name; kp.append(label);
      });
    }
    $("#zkey").textContent = "#" + entry.i + "  " + entry.key;
    $("#zfields").replaceChildren(...ts.map((x, k) => el("button", { type: "button", class: x.field === t.field ? "on" : null,
      title: "key " + (k + 1), onclick: () => { zoom.field = x.field; drawZoom(); } }, x.field)));
    const levels = [["fit", null], ["1:1", 1], ["2\u00d7", 2], ["4\u00d7", 4], ["8\u00d7", 8], ["16\u00d7", 16]];
    $("#zlevels").replaceChildren(...levels.map(([name, z]) => el("button", { type: "button", "data-level": name,
      onclick: () => { if (z === null) { fit(); drawZoom(); } else setLevel(z); } }, name)));
    $("#zlevel").textContent = fmt(zoom.z) + "\u00d7" + (s !== zoom.z ? " (" + t.field + " pixels \u00d7" + fmt(s) + ")" : "");
    const toggles = [];
    if (t.overlay_cell) toggles.push(["overlay", "laid over " + t.over, "overlay"]);
    if (entry.keypoints[t.field]) toggles.push(["keypoints", "keypoints", "keypoints"]);
    $("#ztoggles").replaceChildren(...toggles.map(([key, label, box]) => el("button", { type: "button", class: state[key] ? "on" : null,
      onclick: () => { state[key] = !state[key]; $("#" + box).checked = state[key]; writeHash(); renderGallery(); drawZoom(); } }, label)));
    const at = shown.findIndex((e) => e.i === entry.i);
    $("#zprev").disabled = at <= 0; $("#znext").disabled = at < 0 || at >= shown.length - 1;
    const column = R.columns.find((c) => c.field === t.field) || {};
    $("#zside").replaceChildren(
      el("h3", {}, t.field), el("div", { class: "meaning" }, column.meaning || ""),
      el("div", {}, t.w + "\u00d7" + t.h + " px \u00b7 view " + (t.view || "?") + (t.note ? " \u00b7 " + t.note : "") +
        (t.over && state.overlay ? " \u00b7 laid over " + t.over : "")),
      el("h3", {}, "drawn parameters"), paramsNode(entry),
      el("h3", {}, "shard"), el("div", { class: "mono" }, entry.shard),
      el("details", {}, el("summary", {}, "the whole json record"), el("pre", {}, JSON.stringify(entry.record, null, 1))));
  }
  function stepSample(delta) {
    const at = shown.findIndex((e) => e.i === zoom.entry.i), next = shown[at + delta];
    if (next && !next.missing) { zoom.entry = next; drawZoom(); }
  }
  function zoomEvents() {
    $("#zclose").addEventListener("click", closeZoom);
    $("#zprev").addEventListener("click", () => stepSample(-1));
    $("#znext").addEventListener("click", () => stepSample(1));
    const view = $("#zview");
    view.addEventListener("wheel", (ev) => {
      ev.preventDefault();
      const rect = view.getBoundingClientRect(), cx = ev.clientX - rect.left, cy = ev.clientY - rect.top;
      const z = zoom.z * (ev.deltaY < 0 ? 1.25 : 0.8);
      zoom.x = cx - (cx - zoom.x) * z / zoom.z; zoom.y = cy - (cy - zoom.y) * z / zoom.z; zoom.z = z;
      drawZoom();
    }, { passive: false });
    let drag = null;
    view.addEventListener("mousedown", (ev) => { drag = [ev.clientX - zoom.x, ev.clientY - zoom.y]; view.classList.add("drag"); });
    window.addEventListener("mousemove", (ev) => { if (drag) { zoom.x = ev.clientX - drag[0]; zoom.y = ev.clientY - drag[1]; drawZoom(); } });
    window.addEventListener("mouseup", () => { drag = null; view.classList.remove("drag"); });
    window.addEventListener("keydown", (ev) => {
      if (ev.target.tagName === "INPUT" || ev.target.tagName === "SELECT") return;
      if (zoom.open) {
        if (ev.key === "Escape") closeZoom();
        else if (ev.key === "ArrowLeft") stepSample(-1);
        else if (ev.key === "ArrowRight") stepSample(1);
        else if (ev.key === "f") { fit(); drawZoom(); }
        else if (/^[1-9]$/.test(ev.key)) { const t = tilesOf(zoom.entry)[+ev.key - 1]; if (t) { zoom.field = t.field; drawZoom(); } }
        return;
      }
      if (state.tab !== "gallery") return;
      if (ev.key === "ArrowLeft" && state.page > 1) { state.page--; writeHash(); renderGallery(); }
      if (ev.key === "ArrowRight" && state.page < pageCount()) { state.page++; writeHash(); renderGallery(); }
    });
    window.addEventListener("resize", () => { if (zoom.open) { fit(); drawZoom(); } });
  }

  // ------------------------------------------------------------------ parameters tab
  function histogram(p, k) {
    const card = el("div", { class: "hcard", "data-param": p.name });
    const filter = state.filters.find((f) => f.p === k);
    card.append(el("h3", {}, p.name));
    const missing = p.missing ? " \u00b7 not drawn in " + p.missing : "";
    if (p.kind === "text") {
      card.append(el("div", { class: "stats" }, p.n + " values, " + p.categories.length + " kinds" + missing));
      const top = Math.max(...p.counts, 1);
      p.categories.forEach((c, j) => {
        const on = filter && filter.cats.includes(j);
        card.append(el("div", { class: "cat" + (on ? " in" : ""), title: c + ": " + p.counts[j] + " (click: filter; shift-click: add)",
          onclick: (ev) => {
            const cats = ev.shiftKey && filter ? [...new Set(filter.cats.concat([j]))] : [j];
            setFilters(state.filters.filter((f) => f.p !== k).concat([{ p: k, cats }]));
          } }, el("span", {}, c), el("div", { class: "cbar", style: "width:" + (100 * p.counts[j] / top) + "%" }), el("span", {}, p.counts[j])));
      });
      return card;
    }
    card.append(el("div", { class: "stats" }, "n " + p.n + " \u00b7 min " + fmt(p.min) + " \u00b7 median " + fmt(p.median) +
      " \u00b7 mean " + fmt(p.mean) + " \u00b7 max " + fmt(p.max) + (p.log ? " \u00b7 log bins" : "") + missing));
    const W = 300, H = 110, top = Math.max(...p.counts, 1), n = p.counts.length, bw = W / Math.max(n, 1);
    const chart = svg("svg", { viewBox: "0 0 " + W + " " + (H + 16) });
    p.counts.forEach((count, j) => {
      const lo = p.edges[j], hi = p.edges[j + 1], h = count ? Math.max(1.5, H * count / top) : 0;
      let cls = "bar";
      if (filter) cls += filter.min !== null && hi < filter.min || filter.max !== null && lo > filter.max ? " out" : " in";
      const bar = svg("rect", { class: cls, x: j * bw + 0.5, y: H - h, width: Math.max(bw - 1, 0.5), height: h });
      const title = svg("title", {}); title.textContent = fmt(lo) + " \u2013 " + fmt(hi) + ": " + count + " (click: filter; shift-click: extend)";
      bar.append(title);
      bar.addEventListener("click", (ev) => {
        const range = ev.shiftKey && filter ? { min: Math.min(filter.min ?? lo, lo), max: Math.max(filter.max ?? hi, hi) } : { min: lo, max: hi };
        setFilters(state.filters.filter((f) => f.p !== k).concat([{ p: k, ...range }]));
      });
      chart.append(bar);
    });
    chart.append(svg("line", { x1: 0, x2: W, y1: H + 0.5, y2: H + 0.5, stroke: "#555" }));
    const label = (x, text, anchor) => { const t = svg("text", { x, y: H + 12, "text-anchor": anchor }); t.textContent = text; chart.append(t); };
    if (n) { label(0, fmt(p.min), "start"); label(W, fmt(p.max), "end"); }
    const peak = svg("text", { x: W - 2, y: 9, "text-anchor": "end" }); peak.textContent = top + " per bin at most"; chart.append(peak);
    card.append(chart);
    return card;
  }
  function renderParams() {
    const node = $("#params");
    node.replaceChildren(el("p", { class: "hint" }, "Every drawn parameter over all " + R.samples +
      " samples. Click a bar to see the samples in its range (shift-click extends the range)."));
    if (!R.params.length) node.append(el("p", {}, "This dataset records no drawn parameters."));
    node.append(el("div", { class: "hgrid" }, R.params.map(histogram)));
  }

  // ------------------------------------------------------------------ dataset card tab
  function kvTable(obj) {
    return el("table", { class: "kv" }, Object.entries(obj).map(([k, v]) => el("tr", {}, el("th", {}, k),
      el("td", {}, typeof v === "object" && v !== null ? el("code", {}, JSON.stringify(v)) : String(v)))));
  }
  function renderCard() {
    const c = R.card, node = $("#card");
    const box = (title, cls, ...children) => el("div", { class: "cbox " + (cls || "") }, el("h2", {}, title), ...children);
    const known = new Set(["pairgen_version", "task", "recipe_name", "seed", "format", "counts", "conventions", "options",
      "replayable", "train_kind", "description"]);
    const rest = Object.fromEntries(Object.entries(c).filter(([k]) => !known.has(k)));
    const legends = Object.entries(R.legends);
    node.append(el("div", { class: "cgrid" },
      box("Dataset", "", kvTable({ folder: R.dataset, task: c.task, recipe: c.recipe_name, seed: c.seed, format: c.format,
        "pairgen version": c.pairgen_version, "trainer kind": c.train_kind ?? "", replayable: c.replayable ?? "", ...(c.counts || {}) })),
      box("Fields", "wide", el("table", { class: "kv" }, el("tr", { class: "headrow" }, ["field", "role", "dtype", "shape", "view", "meaning"].map((h) => el("th", {}, h))),
        R.columns.concat(Object.entries(R.meta_fields).map(([f, m]) => ({ field: f, ...m }))).map((f) =>
          el("tr", {}, el("td", {}, el("code", {}, f.field)), el("td", {}, f.role), el("td", {}, f.dtype), el("td", {}, shape(f.shape)),
            el("td", {}, f.view || ""), el("td", {}, f.meaning || ""))))),
      legends.length ? box("Colour keys", "wide", el("div", { class: "legends" }, legends.map(([view, l]) =>
        el("figure", {}, el("img", { src: l.file, alt: view }), el("figcaption", {}, el("b", {}, view), ": " + l.caption))))) : null,
      box("Conventions", "wide", kvTable(c.conventions || {})),
      box("Skipped inputs (" + R.skipped.count + ")", "", R.skipped.count ? [
        el("table", { class: "kv" }, R.skipped.by_reason.map(([r, n]) => el("tr", {}, el("th", {}, n), el("td", {}, r)))),
        el("details", {}, el("summary", {}, "every skipped input" + (R.skipped.listed.length < R.skipped.count ? " (first " + R.skipped.listed.length + ")" : "")),
          el("table", { class: "kv" }, R.skipped.listed.map((s) => el("tr", {}, el("td", {}, el("code", {}, s.path)), el("td", {}, s.reason)))))]
        : el("p", {}, "none")),
      box("Options", "", kvTable(c.options || {})),
      box("Report problems (" + R.problems.length + ")", "", R.problems.length ?
        el("ul", { class: "problems" }, R.problems.map((p) => el("li", {}, p))) : el("p", {}, "none: every listed sample was read")),
      Object.keys(rest).length ? box("Recipe and task settings", "wide", kvTable(rest)) : null));
  }

  // ------------------------------------------------------------------ start
  readHash();
  header();
  zoomEvents();
  document.documentElement.style.setProperty("--tile", state.size + "px");
  showTab();
  refresh();
  window.addEventListener("hashchange", () => {  // a link or a hand-edited URL (our own writes do not fire this)
    readHash();
    $("#size").value = state.size; $("#overlay").checked = state.overlay; $("#keypoints").checked = state.keypoints;
    document.documentElement.style.setProperty("--tile", state.size + "px");
    showTab(); refresh();
    if ($("#params").childElementCount) renderParams();
  });
})();
