// Search (objid, position, uploaded stamp, pasted list), the results gallery with "more like these", anomalies.
import {
  api, card, download, el, Examples, exportLinks, filterFields, filterParams, formValues, gallery, query, sampButton, status,
} from "./common.js";

const MODES = { objid: "objid", position: "RA/Dec", image: "stamp file", batch: "pasted list" };

function searchForm(params, onSubmit) {
  const mode = params.get("mode") || "objid";
  const v = Object.fromEntries(params.entries());
  const modeFields = {
    objid: [el("label", {}, "objid", el("input", { name: "objid", size: 22, value: v.objid, autofocus: true, inputmode: "numeric" }))],
    position: [
      el("label", {}, "RA (deg)", el("input", { name: "ra", type: "number", step: "any", value: v.ra })),
      el("label", {}, "Dec (deg)", el("input", { name: "dec", type: "number", step: "any", value: v.dec })),
      el("label", {}, "within (arcsec)", el("input", { name: "radius", type: "number", step: "any", value: v.radius || 3 })),
    ],
    image: [el("label", {}, "FITS, PNG or JPEG stamp", el("input", { name: "image", type: "file", accept: ".fits,.fit,.fz,.gz,.png,.jpg,.jpeg,.npy" }))],
    batch: [
      el("label", {}, "one objid or 'RA DEC' per line", el("textarea", { name: "text" }, v.text || "")),
      el("label", {}, "within (arcsec)", el("input", { name: "radius", type: "number", step: "any", value: v.radius || 3 })),
    ],
  };
  const form = el("form", { class: "query", id: "search-form" },
    el("label", {}, "search by", el("select", { name: "mode", onchange: (e) => { location.hash = `#/search?mode=${e.target.value}`; } },
      Object.entries(MODES).map(([key, name]) => el("option", { value: key, selected: key === mode }, name)))),
    modeFields[mode] || modeFields.objid,
    el("label", {}, "k", el("input", { name: "k", type: "number", min: 1, max: 1000, value: v.k || 12 })),
    mode === "image" ? null // an upload has no position to exclude around
      : el("label", {}, "exclusion radius (arcsec)", el("input", { name: "exclude_radius", type: "number", step: "any", min: 0, value: v.exclude_radius || 0 })),
    filterFields(v),
    el("button", { type: "submit" }, "Search"),
  );
  form.addEventListener("submit", (event) => { event.preventDefault(); onSubmit(form, mode); });
  return form;
}

/** The results gallery, with the toolbar of "more like these, unlike those". */
function resultsView(title, neighbours, { queryObject = null, exportPath = null, filters = {}, k = 12, excludeRadius = 0 } = {}) {
  const box = el("section", { id: "results" });
  const moreBox = el("section", { id: "more-results" });
  const button = el("button", { type: "button", id: "more-like-these", disabled: true }, "More like these");
  const examples = new Examples(() => {
    button.disabled = examples.positives.size === 0;
    button.textContent = `More like these (${examples.positives.size}+, ${examples.negatives.size}−)`;
  });
  let lastExamples = null;
  button.addEventListener("click", async () => {
    const body = { positives: [...examples.positives], negatives: [...examples.negatives], exclude: [], exclude_radius: Number(excludeRadius || 0) };
    status("searching…");
    try {
      const found = await api(`/api/similar/examples?${query({ k, ...filters })}`, { method: "POST", body });
      lastExamples = body;
      moreBox.replaceChildren(
        el("h3", {}, `More like ${body.positives.length} example(s), unlike ${body.negatives.length}: ${found.neighbours.length} objects`),
        el("div", { class: "toolbar" }, el("button", { type: "button", class: "secondary", onclick: () => download(`/api/similar/examples?${query({ k, ...filters, format: "votable" })}`, { method: "POST", body: lastExamples }, "similar-examples.vot") }, "export VOTable")),
        gallery(found.neighbours, { examples }),
      );
      status("");
      moreBox.scrollIntoView({ behavior: "smooth" });
    } catch (error) { status(""); moreBox.replaceChildren(el("p", { class: "error" }, error.message)); }
  });
  const toolbar = el("div", { class: "toolbar" }, button,
    el("button", { type: "button", class: "secondary", onclick: () => { examples.clear(); for (const c of document.querySelectorAll(".card")) c.classList.remove("pos", "neg"); } }, "clear marks"),
    el("span", { class: "muted" }, "mark examples with + / − (or the keys + and − on a focused card)"),
    exportPath ? exportLinks(exportPath) : null,
    exportPath ? sampButton(exportPath, `ssald ${title}`) : null);
  box.append(el("h3", {}, title), toolbar,
    el("div", { class: "gallery" }, queryObject ? card(queryObject, { query: true, examples }) : null, neighbours.map((n) => card(n, { examples }))),
    moreBox);
  return box;
}

export async function searchPage(main, params) {
  const results = el("div");
  main.append(el("h2", {}, "Search"), searchForm(params, submit), results);
  const v = Object.fromEntries(params.entries());
  const filters = filterParams(v);
  const common = { k: v.k || 12, exclude_radius: v.exclude_radius || 0, ...filters };

  async function submit(form, mode) {
    const values = formValues(form);
    if (mode === "objid" || mode === "position") {
      const keep = Object.fromEntries(Object.entries(values).filter(([, x]) => x !== ""));
      location.hash = `#/search?${query(keep)}`;
      return;
    }
    const f = filterParams(values);
    results.replaceChildren(el("p", { class: "muted" }, "searching…"));
    try {
      if (mode === "image") {
        const data = new FormData();
        const file = form.querySelector("input[type=file]").files[0];
        if (!file) throw new Error("choose a stamp file first");
        data.append("image", file);
        const limit = window.ssaldSettings?.max_upload_bytes;
        if (limit && file.size > limit) throw new Error(`${file.name} is ${file.size} bytes; the limit is ${limit} bytes`);
        const answer = await fetch(`/api/similar/image?${query({ k: values.k, ...f })}`, { method: "POST", body: data });
        const found = await answer.json();
        if (!answer.ok) throw new Error(found.error);
        results.replaceChildren(resultsView(`Neighbours of ${file.name}`, found.neighbours, { filters: f, k: values.k }));
      } else {
        const found = await api(`/api/similar/batch?${query({ k: values.k, ...f })}`, {
          method: "POST", body: { text: values.text, radius: Number(values.radius || 3), exclude_radius: Number(values.exclude_radius || 0) },
        });
        results.replaceChildren(el("h3", {}, `${found.results.length} inputs`), found.results.map(batchResult));
      }
    } catch (error) { results.replaceChildren(el("p", { class: "error" }, error.message)); }
  }

  if (v.objid || (v.ra && v.dec)) {
    status("searching…");
    const path = v.objid ? `/api/similar?${query({ objid: v.objid, ...common })}` : `/api/similar?${query({ ra: v.ra, dec: v.dec, radius: v.radius || 3, ...common })}`;
    const found = await api(path);
    let queryObject = null;
    if (v.objid) queryObject = await api(`/api/objects/${v.objid}`).catch(() => null);
    else if (found.neighbours.length) queryObject = null;
    const title = v.objid ? `${found.neighbours.length} neighbours of ${v.objid}` : `${found.neighbours.length} neighbours of the object at ${v.ra}, ${v.dec}`;
    results.append(resultsView(title, found.neighbours, { queryObject, exportPath: path, filters, k: common.k, excludeRadius: common.exclude_radius }));
    status("");
  }
}

function batchResult(result) {
  const head = el("h3", {}, `#${result.index + 1} ${result.input}`,
    result.objid && result.input !== result.objid ? el("span", { class: "muted" }, ` → ${result.objid}${result.separation_arcsec ? ` (${result.separation_arcsec.toFixed(2)}″)` : ""}`) : null);
  if (result.error) return el("section", { class: "batch-result" }, head, el("p", { class: "error" }, result.error));
  return el("section", { class: "batch-result" }, head, gallery(result.neighbours));
}

export async function anomaliesPage(main, params) {
  const v = Object.fromEntries(params.entries());
  const form = el("form", { class: "query" },
    el("label", {}, "number", el("input", { name: "n", type: "number", min: 1, max: 1000, value: v.n || 48 })),
    filterFields(v), el("button", { type: "submit" }, "Show"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const keep = Object.fromEntries(Object.entries(formValues(form)).filter(([, x]) => x !== ""));
    location.hash = `#/anomalies?${query(keep)}`;
  });
  main.append(el("h2", {}, "Anomalies"), el("p", { class: "muted" }, "the stored anomaly (low-density) ranking, most anomalous first"), form);
  const path = `/api/anomalies?${query({ n: v.n || 48, ...filterParams(v) })}`;
  const found = await api(path);
  main.append(el("div", { class: "toolbar" }, `${found.anomalies.length} objects`, exportLinks(path), sampButton(path, "ssald anomalies")),
    gallery(found.anomalies));
}
