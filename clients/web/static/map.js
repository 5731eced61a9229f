// Map: the stored 2-D map of the whole table on a canvas. Points come as packed arrays from /api/map.bin
// (20 bytes an object) and are drawn pixel by pixel into one ImageData: a million points draw in tens of
// milliseconds, so panning (drag) and zooming (wheel) redraw everything. A grid over the points finds the
// one under the cursor (hover shows its stamp; click searches from it); shift-drag selects a box or draws a
// lasso, and the selection is exported (POST /api/objects: the catalogue rows as CSV or VOTable) or labelled
// (POST /api/labels, yes or no for a label).
import { api, download, el, query, setToken, status, stampUrl } from "./common.js";

const CATEGORY_COLOURS = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac", "#86bcb6", "#d37295"];
const RAMP = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]]; // viridis stops
const GRID = 256;

function rgba(hex) {
  const n = parseInt(hex.slice(1), 16);
  return (255 << 24) | ((n & 255) << 16) | (((n >> 8) & 255) << 8) | (n >> 16); // little-endian ABGR
}

function rampColour(t) {
  const x = Math.min(1, Math.max(0, t)) * (RAMP.length - 1);
  const i = Math.min(RAMP.length - 2, Math.floor(x));
  const f = x - i;
  const c = RAMP[i].map((a, j) => Math.round(a + f * (RAMP[i + 1][j] - a)));
  return (255 << 24) | (c[2] << 16) | (c[1] << 8) | c[0];
}

/** Fetch /api/map.bin: {n, objids (BigInt64Array), x, y, values (Float32Array), categories}. */
export async function loadMap(colorBy, label) {
  const answer = await api(`/api/map.bin?${query({ color_by: colorBy, label })}`, { raw: true });
  const n = Number(answer.headers.get("X-Map-Count"));
  const categories = JSON.parse(answer.headers.get("X-Map-Categories") || "[]");
  const buffer = await answer.arrayBuffer();
  const floats = new Float32Array(buffer, 8 * n, 3 * n);
  return { n, categories, objids: new BigInt64Array(buffer, 0, n), x: floats.subarray(0, n), y: floats.subarray(n, 2 * n), values: floats.subarray(2 * n) };
}

export async function mapPage(main, params) {
  const colorBy = params.get("color_by") || "cluster";
  const label = params.get("label") || "";
  const form = el("form", { class: "query", id: "map-form" },
    el("label", {}, "colour by", el("select", { name: "color_by" },
      ["cluster", "density_score", "spec_class", "bpt_class", "truth_class", "label", "score"].map((c) => el("option", { selected: c === colorBy }, c)))),
    el("label", {}, "label (for label, score)", el("input", { name: "label", value: label, pattern: "[A-Za-z0-9_]*" })),
    el("button", { type: "submit" }, "Draw"),
    el("label", {}, "shift-drag selects", el("select", { id: "select-mode" },
      el("option", { value: "box" }, "a box"), el("option", { value: "lasso" }, "a lasso"))));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    location.hash = `#/map?${query({ color_by: form.color_by.value, label: form.label.value })}`;
  });
  const info = el("div", { class: "toolbar", id: "map-info" }, "loading the map…");
  const legend = el("div", { class: "legend" });
  const canvas = el("canvas", { id: "map", tabindex: 0, "aria-label": "map of the table: drag to pan, wheel to zoom, shift-drag to select (box or lasso), click to search" });
  const tip = el("div", { id: "map-tip" });
  main.append(el("h2", {}, "Map"), form, info, legend, el("div", { class: "map-wrap" }, canvas, tip));
  const t0 = performance.now();
  const data = await loadMap(colorBy, label);
  if (data.n === 0) { info.replaceChildren("no object has map coordinates: run the map step (ssald index) first"); return null; }
  const view = new MapView(canvas, tip, data, colorBy, () => form.querySelector("#select-mode").value);
  window.ssaldMap = view; // for the console (and the browser test): view.selected(), view.polygon
  view.draw();
  window.ssaldMapDrawn = performance.now() - t0;
  legend.replaceChildren(...view.legend());
  view.onSelect = (sel) => info.replaceChildren(...selectionTools(sel, data, label));
  info.replaceChildren(`${data.n.toLocaleString()} objects · drag to pan, wheel to zoom, shift-drag to select (box or lasso), click a point to search from it`);
  const onResize = () => view.draw();
  window.addEventListener("resize", onResize);
  return () => window.removeEventListener("resize", onResize);
}

/** The toolbar of a selection: its count, export (the catalogue rows, from the API) and labelling. */
function selectionTools(sel, data, label) {
  const objids = sel.map((i) => data.objids[i].toString());
  const exportAs = (format, suffix) => async () => {
    status(`exporting ${objids.length} objects…`);
    try {
      await download(`/api/objects?format=${format}`, { method: "POST", body: { objids } }, `selection${suffix}`);
      status("");
    } catch (error) { status(error.message); }
  };
  const name = el("input", { id: "selection-label", size: 14, value: label, placeholder: "label", pattern: "[A-Za-z0-9_]+" });
  const polarity = el("select", { id: "selection-polarity" },
    el("option", { value: "yes" }, "yes (label)"), el("option", { value: "no" }, "no (not_label)"));
  const labelAll = async (event) => {
    if (!/^[A-Za-z0-9_]+$/.test(name.value)) { status("give a label (letters, digits, _)"); return; }
    if (window.ssaldSettings?.needs_token && !sessionStorage.getItem("ssald-token")) setToken(prompt("token of this app") || "");
    const given = polarity.value === "yes" ? name.value : `not_${name.value}`;
    try {
      let written = 0;
      for (let lo = 0; lo < objids.length; lo += 10000) {
        const labels = objids.slice(lo, lo + 10000).map((objid) => ({ objid, label: given }));
        written += (await api("/api/labels", { method: "POST", body: { labels } })).n_written;
      }
      event.target.textContent = `labelled ${written} ${given}`;
    } catch (error) { status(error.message); }
  };
  return [el("span", { id: "selection-count" }, `${sel.length.toLocaleString()} selected`), " ",
    el("button", { type: "button", class: "secondary", id: "export-selection-votable", onclick: exportAs("votable", ".vot") }, "export VOTable"),
    el("button", { type: "button", class: "secondary", id: "export-selection-csv", onclick: exportAs("csv", ".csv") }, "export CSV"),
    " label them ", name, polarity, el("button", { type: "button", class: "secondary", id: "label-selection", onclick: labelAll }, "label")];
}

/** Whether (x, y) lies inside the polygon [[x, y], ...] (even-odd rule). */
function inside(x, y, polygon) {
  let within = false;
  for (let i = 0, j = polygon.length - 1; i < polygon.length; j = i++) {
    const [xi, yi] = polygon[i], [xj, yj] = polygon[j];
    if ((yi > y) !== (yj > y) && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) within = !within;
  }
  return within;
}

class MapView {
  constructor(canvas, tip, data, colorBy, selectMode) {
    Object.assign(this, { canvas, tip, data, colorBy, selectMode });
    this.polygon = null; // the last selection, in map coordinates
    this.colours = this.colourTable();
    let [x0, x1, y0, y1] = [Infinity, -Infinity, Infinity, -Infinity];
    for (let i = 0; i < data.n; i++) {
      const x = data.x[i], y = data.y[i];
      if (x < x0) x0 = x; if (x > x1) x1 = x; if (y < y0) y0 = y; if (y > y1) y1 = y;
    }
    this.bounds = { x0, x1: x1 > x0 ? x1 : x0 + 1, y0, y1: y1 > y0 ? y1 : y0 + 1 };
    this.zoom = 1; this.cx = (x0 + x1) / 2; this.cy = (y0 + y1) / 2;
    this.selection = new Uint8Array(data.n);
    this.buildGrid();
    this.listen();
  }

  colourTable() {
    const { values, n, categories } = this.data;
    const out = new Uint32Array(n);
    const none = rgba("#555555");
    if (categories.length) {
      for (let i = 0; i < n; i++) out[i] = Number.isNaN(values[i]) ? none : rgba(CATEGORY_COLOURS[values[i] % CATEGORY_COLOURS.length]);
      return out;
    }
    let lo = Infinity, hi = -Infinity;
    for (let i = 0; i < n; i++) { const v = values[i]; if (v < lo) lo = v; if (v > hi) hi = v; }
    this.range = [lo, hi];
    const span = hi > lo ? hi - lo : 1;
    const cluster = this.colorBy === "cluster";
    for (let i = 0; i < n; i++) {
      const v = values[i];
      out[i] = Number.isNaN(v) ? none : cluster ? rgba(CATEGORY_COLOURS[v % CATEGORY_COLOURS.length]) : rampColour((v - lo) / span);
    }
    return out;
  }

  legend() {
    const { categories } = this.data;
    if (categories.length) return categories.map((c, i) => el("span", {}, el("i", { style: `background:${CATEGORY_COLOURS[i % CATEGORY_COLOURS.length]}` }), c));
    if (this.colorBy === "cluster") return [el("span", {}, "colours: clusters")];
    const [lo, hi] = this.range;
    return [el("span", {}, el("i", { style: "background:rgb(68,1,84)" }), lo.toFixed(3)), el("span", {}, el("i", { style: "background:rgb(253,231,37)" }), hi.toFixed(3))];
  }

  // A uniform grid over the data bounds (counting sort): the points near the cursor in O(points per cell).
  buildGrid() {
    const { x, y, n } = this.data, { x0, x1, y0, y1 } = this.bounds;
    const cellOf = new Uint32Array(n);
    const counts = new Uint32Array(GRID * GRID + 1);
    for (let i = 0; i < n; i++) {
      const gx = Math.min(GRID - 1, Math.floor(((x[i] - x0) / (x1 - x0)) * GRID));
      const gy = Math.min(GRID - 1, Math.floor(((y[i] - y0) / (y1 - y0)) * GRID));
      cellOf[i] = gy * GRID + gx;
      counts[cellOf[i] + 1]++;
    }
    for (let c = 0; c < GRID * GRID; c++) counts[c + 1] += counts[c];
    const fill = counts.slice(0, GRID * GRID);
    const items = new Uint32Array(n);
    for (let i = 0; i < n; i++) items[fill[cellOf[i]]++] = i;
    this.cellStart = counts; this.cellItems = items;
  }

  scale() {
    const { x0, x1, y0, y1 } = this.bounds;
    return 0.95 * this.zoom * Math.min(this.w / (x1 - x0), this.h / (y1 - y0));
  }
  toScreen(x, y) { const s = this.scale(); return [this.w / 2 + (x - this.cx) * s, this.h / 2 - (y - this.cy) * s]; }
  toData(px, py) { const s = this.scale(); return [this.cx + (px - this.w / 2) / s, this.cy - (py - this.h / 2) / s]; }

  draw() {
    const ratio = window.devicePixelRatio || 1;
    const rect = this.canvas.getBoundingClientRect();
    this.w = Math.max(1, Math.round(rect.width * ratio)); this.h = Math.max(1, Math.round(rect.height * ratio));
    this.ratio = ratio;
    if (this.canvas.width !== this.w || this.canvas.height !== this.h) { this.canvas.width = this.w; this.canvas.height = this.h; }
    const ctx = this.canvas.getContext("2d");
    const image = ctx.createImageData(this.w, this.h);
    const pixels = new Uint32Array(image.data.buffer);
    pixels.fill(0xff000000);
    const { x, y, n } = this.data, s = this.scale(), w = this.w, h = this.h;
    const ox = w / 2 - this.cx * s, oy = h / 2 + this.cy * s;
    const size = n < 20000 ? 3 : n < 200000 ? 2 : 1; // few points: bigger dots, to be seen
    const selected = rgba("#ffffff");
    for (let i = 0; i < n; i++) {
      const px = (ox + x[i] * s) | 0, py = (oy - y[i] * s) | 0;
      if (px < 0 || py < 0 || px > w - size || py > h - size) continue;
      const c = this.selection[i] ? selected : this.colours[i];
      const at = py * w + px;
      pixels[at] = c;
      if (size > 1) for (let a = 0; a < size; a++) for (let b = 0; b < size; b++) pixels[at + a * w + b] = c;
    }
    ctx.putImageData(image, 0, 0);
    if (this.outline && this.outline.length > 1) {
      ctx.strokeStyle = "#fff"; ctx.setLineDash([4, 4]);
      ctx.beginPath();
      ctx.moveTo(...this.outline[0]);
      for (const p of this.outline.slice(1)) ctx.lineTo(...p);
      ctx.closePath();
      ctx.stroke();
    }
  }

  nearest(px, py, radius = 8) {
    const [dx, dy] = this.toData(px, py);
    const { x0, x1, y0, y1 } = this.bounds, s = this.scale();
    const reach = radius / s;
    const g = (v, lo, hi) => Math.max(0, Math.min(GRID - 1, Math.floor(((v - lo) / (hi - lo)) * GRID)));
    let best = -1, bestD = radius * radius;
    for (let gy = g(dy - reach, y0, y1); gy <= g(dy + reach, y0, y1); gy++) {
      for (let gx = g(dx - reach, x0, x1); gx <= g(dx + reach, x0, x1); gx++) {
        const cell = gy * GRID + gx;
        for (let k = this.cellStart[cell]; k < this.cellStart[cell + 1]; k++) {
          const i = this.cellItems[k];
          const ex = (this.data.x[i] - dx) * s, ey = (this.data.y[i] - dy) * s;
          const d = ex * ex + ey * ey;
          if (d < bestD) { bestD = d; best = i; }
        }
      }
    }
    return best;
  }

  listen() {
    const c = this.canvas;
    const at = (e) => { const r = c.getBoundingClientRect(); return [(e.clientX - r.left) * this.ratio, (e.clientY - r.top) * this.ratio]; };
    let drag = null;
    let frame = 0;
    const redraw = () => { if (!frame) frame = requestAnimationFrame(() => { frame = 0; this.draw(); }); };
    c.addEventListener("pointerdown", (e) => {
      const p = at(e);
      drag = { start: p, last: p, select: e.shiftKey, lasso: this.selectMode() === "lasso", path: [p], moved: false };
      c.setPointerCapture(e.pointerId);
    });
    c.addEventListener("pointermove", (e) => {
      const p = at(e);
      if (drag) {
        if (Math.hypot(p[0] - drag.start[0], p[1] - drag.start[1]) > 4) drag.moved = true;
        if (drag.select) {
          drag.path.push(p);
          const [a, b] = drag.start;
          this.outline = drag.lasso ? drag.path : [[a, b], [p[0], b], p, [a, p[1]]];
        } else { const s = this.scale(); this.cx -= (p[0] - drag.last[0]) / s; this.cy += (p[1] - drag.last[1]) / s; }
        drag.last = p;
        redraw();
        return;
      }
      this.hover(p, e);
    });
    c.addEventListener("pointerup", (e) => {
      const p = at(e);
      if (drag && drag.select && drag.moved) {
        const [a, b] = drag.start;
        this.selectPolygon(drag.lasso ? [...drag.path, p] : [[a, b], [p[0], b], p, [a, p[1]]]);
      }
      else if (drag && !drag.moved) {
        const i = this.nearest(...p);
        if (i >= 0) location.hash = `#/search?objid=${this.data.objids[i]}`;
      }
      drag = null; this.outline = null; redraw();
    });
    c.addEventListener("pointerleave", () => { this.tip.style.display = "none"; });
    c.addEventListener("wheel", (e) => {
      e.preventDefault();
      const p = at(e), before = this.toData(...p);
      this.zoom *= Math.exp(-e.deltaY * 0.0015);
      const after = this.toData(...p);
      this.cx += before[0] - after[0]; this.cy += before[1] - after[1];
      redraw();
    }, { passive: false });
    c.addEventListener("keydown", (e) => {
      const step = 40 / this.scale();
      const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, step], ArrowDown: [0, -step] };
      if (moves[e.key]) { this.cx += moves[e.key][0]; this.cy += moves[e.key][1]; }
      else if (e.key === "+" || e.key === "=") this.zoom *= 1.25;
      else if (e.key === "-") this.zoom /= 1.25;
      else return;
      e.preventDefault(); redraw();
    });
  }

  hover(p, e) {
    const i = this.nearest(...p);
    if (i < 0) { this.tip.style.display = "none"; this.tipFor = -1; return; }
    if (this.tipFor !== i) {
      this.tipFor = i;
      const v = this.data.values[i];
      const value = Number.isNaN(v) ? "–" : this.data.categories.length ? this.data.categories[v] : v.toFixed(3);
      this.tip.replaceChildren(el("img", { src: stampUrl(this.data.objids[i]), alt: "" }), el("div", {}, `${this.data.objids[i]}`), el("div", {}, `${this.colorBy}: ${value}`));
    }
    const r = this.canvas.getBoundingClientRect();
    this.tip.style.left = `${e.clientX - r.left + 14}px`; this.tip.style.top = `${e.clientY - r.top + 14}px`;
    this.tip.style.display = "block";
  }

  /** Select the points inside a polygon given in screen pixels (a box's four corners, or a lasso's path). */
  selectPolygon(screen) {
    const polygon = screen.map((p) => this.toData(...p));
    const xs = polygon.map((p) => p[0]), ys = polygon.map((p) => p[1]);
    const [lx, hx, ly, hy] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
    this.selection.fill(0);
    const chosen = [];
    for (let i = 0; i < this.data.n; i++) {
      const x = this.data.x[i], y = this.data.y[i];
      if (x >= lx && x <= hx && y >= ly && y <= hy && inside(x, y, polygon)) { this.selection[i] = 1; chosen.push(i); }
    }
    this.polygon = polygon;
    this.onSelect?.(chosen);
  }

  /** The objids of the current selection, as strings. */
  selected() {
    const out = [];
    for (let i = 0; i < this.data.n; i++) if (this.selection[i]) out.push(this.data.objids[i].toString());
    return out;
  }
}
