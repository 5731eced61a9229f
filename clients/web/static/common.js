// Shared helpers of the SSALD pages: calling /api, building elements, the filter form, result galleries.

/** An element: el("div", {class: "card"}, child, "text", ...). Attributes starting with "on" are listeners. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child !== undefined && child !== null && child !== false) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export function status(text) {
  document.getElementById("status").textContent = text || "";
}

let token = sessionStorage.getItem("ssald-token") || "";
export function setToken(value) {
  token = value;
  sessionStorage.setItem("ssald-token", value);
}

/** Call an /api endpoint; JSON in and out. Throws Error(message of the server) on a failed answer. */
export async function api(path, { method = "GET", body, raw = false } = {}) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token && method !== "GET") headers.Authorization = `Bearer ${token}`;
  const answer = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (!answer.ok) {
    let message = `${answer.status} ${answer.statusText}`;
    try { message = (await answer.json()).error || message; } catch { /* not JSON */ }
    throw new Error(message);
  }
  return raw ? answer : answer.json();
}

/** Query string of an object, leaving out empty values; arrays repeat the key. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === "") continue;
    for (const v of Array.isArray(value) ? value : [value]) if (v !== "") search.append(key, v);
  }
  return search.toString();
}

/** Save a fetched answer as a file (for POST results, which a plain link cannot download). */
export async function download(path, options, fallbackName) {
  const answer = await api(path, { ...options, raw: true });
  const disposition = answer.headers.get("content-disposition") || "";
  const name = (disposition.match(/filename="([^"]+)"/) || [])[1] || fallbackName;
  const url = URL.createObjectURL(await answer.blob());
  const link = el("a", { href: url, download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

const MAGNITUDES = ["mag_u", "mag_g", "mag_r", "mag_i", "mag_z"];

/** Min and max fields of each column, named as the API's COLUMN_min / COLUMN_max parameters. */
function rangeFields(columns, values, short) {
  return columns.map((c) => el("label", {}, short(c),
    el("span", { class: "range" },
      el("input", { name: `${c}_min`, type: "number", step: "any", placeholder: "min", value: values[`${c}_min`] }),
      el("input", { name: `${c}_max`, type: "number", step: "any", placeholder: "max", value: values[`${c}_max`] }))));
}

function rangeColumns() {
  const settings = window.ssaldSettings || {};
  return { magnitudes: settings.magnitudes || MAGNITUDES, morphology: settings.morphology || [] };
}

/** The metadata filters as form fields: z range, classes, magnitude and morphology ranges, SQL over any column. */
export function filterFields(values = {}) {
  const { magnitudes, morphology } = rangeColumns();
  const given = (columns) => columns.some((c) => values[`${c}_min`] || values[`${c}_max`]);
  return el("fieldset", { class: "filters" },
    el("legend", {}, "filters"),
    el("label", {}, "z ≥", el("input", { name: "z_min", type: "number", step: "any", value: values.z_min })),
    el("label", {}, "z ≤", el("input", { name: "z_max", type: "number", step: "any", value: values.z_max })),
    el("label", {}, "spec class", el("input", { name: "spec_class", placeholder: "GALAXY,QSO", size: 10, value: values.spec_class })),
    el("label", {}, "BPT class", el("input", { name: "bpt_class", placeholder: "Seyfert,LINER", size: 12, value: values.bpt_class })),
    el("label", {}, "SQL (e.g. z_err < 1e-4)", el("input", { name: "where", size: 22, value: values.where })),
    el("details", { class: "ranges", id: "magnitude-filters", open: given(magnitudes) },
      el("summary", {}, "magnitudes"), rangeFields(magnitudes, values, (c) => c.replace("mag_", ""))),
    morphology.length ? el("details", { class: "ranges", id: "morphology-filters", open: given(morphology) },
      el("summary", {}, "morphology (where the table has it)"), rangeFields(morphology, values, (c) => c.replace("morph_", ""))) : null,
  );
}

/** The filter query parameters of the API from the form's values (classes split on commas; ranges as given). */
export function filterParams(values) {
  const { magnitudes, morphology } = rangeColumns();
  const split = (v) => (v ? v.split(",").map((s) => s.trim()).filter(Boolean) : []);
  const params = {
    z_min: values.z_min, z_max: values.z_max,
    spec_class: split(values.spec_class), bpt_class: split(values.bpt_class),
    where: values.where,
  };
  for (const c of [...magnitudes, ...morphology]) {
    for (const bound of ["min", "max"]) params[`${c}_${bound}`] = values[`${c}_${bound}`];
  }
  return params;
}

export function formValues(form) {
  return Object.fromEntries([...new FormData(form).entries()].filter(([, v]) => typeof v === "string"));
}

export function stampUrl(objid) {
  return `/api/stamp/${objid}.png`;
}

export function stamp(objid, cls = "") {
  const img = el("img", { src: stampUrl(objid), alt: `stamp of ${objid}`, class: cls, loading: "lazy", decoding: "async" });
  img.addEventListener("error", () => { img.alt = `no stamp for ${objid}`; img.classList.add("missing"); }, { once: true });
  return img;
}

const fmt = (v, digits = 3) => (v === null || v === undefined || Number.isNaN(v) ? "–" : Number(v).toFixed(digits));

/** Links out by position: SDSS SkyServer navigator, the Legacy Survey viewer and SIMBAD. */
export function skyLinks(ra, dec) {
  return el("div", { class: "links" },
    el("a", { href: `https://skyserver.sdss.org/dr18/VisualTools/navi?ra=${ra}&dec=${dec}&scale=0.2`, target: "_blank", rel: "noopener", title: "SDSS SkyServer navigator" }, "SDSS"),
    el("a", { href: `https://www.legacysurvey.org/viewer?ra=${ra}&dec=${dec}&layer=ls-dr10&zoom=16`, target: "_blank", rel: "noopener", title: "Legacy Survey viewer" }, "Legacy"),
    el("a", { href: `https://simbad.cds.unistra.fr/simbad/sim-coo?Coord=${ra}%20${dec}&Radius=5&Radius.unit=arcsec`, target: "_blank", rel: "noopener", title: "SIMBAD objects within 5 arcsec" }, "SIMBAD"),
  );
}

/** One object as a gallery card: stamp, distance, metadata, "more like this", +/- marks, links out. */
export function card(obj, { query = false, examples = null } = {}) {
  const lines = [
    obj.distance !== undefined ? `d = ${fmt(obj.distance, 4)}` : null,
    obj.score !== undefined ? `score ${fmt(obj.score)}` : null,
    obj.density_score !== null && obj.density_score !== undefined ? `anomaly ${fmt(obj.density_score)}` : null,
    `z ${fmt(obj.z)} · r ${fmt(obj.mag_r, 2)}`,
    [obj.spec_class, obj.bpt_class, obj.truth_class].filter(Boolean).join(" · ") || null,
  ].filter(Boolean);
  const node = el("article", { class: `card${query ? " query" : ""}`, dataset: { objid: obj.objid }, tabindex: 0 },
    stamp(obj.objid),
    el("div", { class: "id" }, query ? `query ${obj.objid}` : obj.objid),
    lines.map((line) => el("div", {}, line)),
  );
  const actions = el("div", { class: "actions" },
    el("button", { type: "button", class: "secondary more", title: "more like this", onclick: () => { location.hash = `#/search?objid=${obj.objid}`; } }, "more like this"));
  if (examples) {
    const mark = (kind) => () => {
      examples.toggle(obj.objid, kind);
      node.classList.toggle("pos", examples.positives.has(obj.objid));
      node.classList.toggle("neg", examples.negatives.has(obj.objid));
    };
    actions.append(
      el("button", { type: "button", class: "secondary mark-pos", title: "a positive example", onclick: mark("pos") }, "+"),
      el("button", { type: "button", class: "secondary mark-neg", title: "a negative example", onclick: mark("neg") }, "−"));
    node.classList.toggle("pos", examples.positives.has(obj.objid));
    node.classList.toggle("neg", examples.negatives.has(obj.objid));
  }
  node.append(actions, skyLinks(obj.ra, obj.dec));
  node.addEventListener("keydown", (event) => {
    if (event.target !== node) return;
    if (event.key === "Enter") location.hash = `#/search?objid=${obj.objid}`;
    if (examples && event.key === "+") mark("pos")();
    if (examples && event.key === "-") mark("neg")();
  });
  return node;
}

/** Positive and negative examples picked in galleries, for "more like these, unlike those". */
export class Examples {
  constructor(onChange) { this.positives = new Set(); this.negatives = new Set(); this.onChange = onChange; }
  toggle(objid, kind) {
    const [mine, other] = kind === "pos" ? [this.positives, this.negatives] : [this.negatives, this.positives];
    if (mine.has(objid)) mine.delete(objid); else { mine.add(objid); other.delete(objid); }
    this.onChange?.();
  }
  clear() { this.positives.clear(); this.negatives.clear(); this.onChange?.(); }
}

export function gallery(objects, options = {}) {
  return el("div", { class: "gallery" }, objects.map((o) => card(o, options)));
}

/** Export links of a GET table query in every format. */
export function exportLinks(path) {
  const sep = path.includes("?") ? "&" : "?";
  return el("span", { class: "exports" }, "export: ",
    ["votable", "csv", "fits", "parquet"].map((f) => [el("a", { href: `${path}${sep}format=${f}`, class: `export-${f}`, download: "" }, f), " "]));
}

/** A button that asks the app to send the VOTable of a GET table query to TOPCAT or Aladin over SAMP. */
export function sampButton(path, name) {
  const button = el("button", { type: "button", class: "secondary samp-send", title: "the SAMP hub of TOPCAT or Aladin, on the machine that runs ssald web" }, "Send to TOPCAT/Aladin (SAMP)");
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const sent = await api(`/api/samp/send?${query({ path, name })}`, { method: "POST" });
      button.textContent = `sent to ${sent.recipients.length} SAMP client(s)`;
    } catch (error) {
      button.textContent = `not sent: ${error.message}`;
    } finally {
      button.disabled = false;
    }
  });
  return button;
}
