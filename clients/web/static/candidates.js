// Candidates: the ranked list for a label, with classifier and anomaly scores, spectroscopy, cross-match
// marks against the reference catalogue (ssald web --crossmatch FILE) and export buttons.
import { api, el, exportLinks, filterFields, filterParams, formValues, query, sampButton, skyLinks, stamp } from "./common.js";

export async function candidatesPage(main, params) {
  const v = Object.fromEntries(params.entries());
  const form = el("form", { class: "query", id: "candidates-form" },
    el("label", {}, "label", el("input", { name: "label", required: true, value: v.label || "", pattern: "[A-Za-z0-9_]+" })),
    el("label", {}, "number", el("input", { name: "n", type: "number", min: 1, max: 1000, value: v.n || 100 })),
    el("label", { class: "inline" }, el("input", { name: "exclude_labelled", type: "checkbox", value: "true", checked: v.exclude_labelled === "true" }), "hide labelled"),
    filterFields(v), el("button", { type: "submit" }, "Show"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const keep = Object.fromEntries(Object.entries(formValues(form)).filter(([, x]) => x !== ""));
    location.hash = `#/candidates?${query(keep)}`;
  });
  main.append(el("h2", {}, "Candidates"), form);
  if (!v.label) return null;
  const path = `/api/candidates?${query({ label: v.label, n: v.n || 100, exclude_labelled: v.exclude_labelled, ...filterParams(v) })}`;
  const found = await api(path);
  const run = found.run;
  const metrics = Object.entries(run.metrics || {}).map(([k, x]) => `${k} ${Number(x).toFixed(3)}`).join(", ");
  const ref = found.reference;
  const fmt = (x, d = 3) => (x === null || x === undefined ? "–" : Number(x).toFixed(d));
  main.append(
    el("p", { id: "run" }, `${run.classifier} trained on ${run.n_positive} positive and ${run.n_negative} negative labels`,
      metrics ? ` (cross-validated ${metrics})` : "", found.stale ? el("strong", {}, " · stale: labels were added since; retrain from the Label page") : ""),
    el("div", { class: "toolbar" }, `${found.candidates.length} candidates`, exportLinks(path),
      sampButton(path, `ssald candidates ${v.label}`),
      ref ? el("span", { class: "muted" }, `cross-matched with ${ref.name} within ${ref.radius_arcsec}″`) : el("span", { class: "muted" }, "no cross-match catalogue (ssald web --crossmatch FILE)")),
    el("table", { class: "list", id: "candidates" },
      el("thead", {}, el("tr", {}, ["#", "stamp", "objid", "score", "anomaly", "z", "spec", "BPT", "label", ref ? "known" : null, "links"].filter(Boolean).map((h) => el("th", {}, h)))),
      el("tbody", {}, found.candidates.map((c, i) => el("tr", { class: c.known ? "known" : "", dataset: { objid: c.objid } },
        el("td", {}, i + 1), el("td", {}, stamp(c.objid)),
        el("td", {}, el("a", { href: `#/search?objid=${c.objid}` }, c.objid)),
        el("td", {}, fmt(c.score)), el("td", {}, fmt(c.density_score)), el("td", {}, fmt(c.z)),
        el("td", {}, c.spec_class || "–"), el("td", {}, c.bpt_class || "–"), el("td", { class: "current-label" }, c.current_label || ""),
        ref ? el("td", { class: "known-mark" }, c.known ? `✓ ${c.reference_id} (${c.known_by}, ${fmt(c.reference_sep_arcsec, 2)}″)` : "") : null,
        el("td", {}, skyLinks(c.ra, c.dec)))))));
  return null;
}
