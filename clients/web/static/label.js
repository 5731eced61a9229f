// Label: the active-learning queue for one label. Keys y / n / s(kip) / u(ndo); decisions are submitted in
// batches, and the page moves on only once the server has stored them (the answer comes after the write).
import { api, el, filterFields, filterParams, formValues, query, setToken, skyLinks, stamp, status } from "./common.js";

export async function labelPage(main, params) {
  const v = Object.fromEntries(params.entries());
  const form = el("form", { class: "query", id: "label-form" },
    el("label", {}, "label", el("input", { name: "label", required: true, pattern: "[A-Za-z0-9_]+", value: v.label || "", placeholder: "dual_nucleus", autofocus: true })),
    el("label", {}, "strategy", el("select", { name: "strategy" },
      ["", "uncertainty", "margin", "entropy", "committee", "diversity", "anomaly", "top", "random", "gp_ei"].map((s) => el("option", { value: s, selected: s === (v.strategy || "") }, s || "server default")))),
    el("label", {}, "seed objid", el("input", { name: "seed_objid", size: 20, value: v.seed_objid || "" })),
    el("label", {}, "batch", el("input", { name: "batch", type: "number", min: 1, max: 100, value: v.batch || 5 })),
    el("label", { class: "inline" }, el("input", { name: "retrain", type: "checkbox", checked: v.retrain !== "0" }), "retrain on each batch"),
    window.ssaldSettings?.needs_token ? el("label", {}, "token", el("input", { name: "token", type: "password", size: 14 })) : null,
    filterFields(v),
    el("button", { type: "submit" }, "Start"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const values = formValues(form);
    if (values.token) setToken(values.token);
    delete values.token;
    values.retrain = form.retrain.checked ? "1" : "0";
    location.hash = `#/label?${query(Object.fromEntries(Object.entries(values).filter(([, x]) => x !== "")))}`;
  });
  main.append(el("h2", {}, "Label"), form);
  if (!v.label) {
    main.append(el("p", { class: "muted" }, "choose a label (a 'no' is stored as not_LABEL) and press Start"));
    return null;
  }
  return new Queue(main, v).start();
}

class Queue {
  constructor(main, v) {
    this.v = v;
    this.label = v.label;
    this.batchSize = Math.max(1, Number(v.batch || 5));
    this.retrain = v.retrain !== "0";
    this.filters = filterParams(v);
    this.items = [];        // proposed, not yet answered
    this.pending = [];      // answered, not yet submitted: {item, answer}
    this.history = [];      // submitted: {item, answer}, for undo
    this.skipped = [];
    this.given = 0;
    this.positives = 0;
    this.busy = false;
    this.view = el("section", { class: "label-view" });
    this.counts = el("div", { class: "counts", id: "label-counts" });
    this.figures = el("div", { id: "label-figures", class: "muted" });
    main.append(
      el("p", { class: "keys" }, el("kbd", {}, "y"), " yes  ", el("kbd", {}, "n"), " no  ", el("kbd", {}, "s"), " skip  ",
        el("kbd", {}, "u"), " undo  ", el("kbd", {}, "Enter"), " submit now"),
      this.counts, this.figures, this.view);
    this.onKey = (event) => this.key(event);
  }

  async start() {
    document.addEventListener("keydown", this.onKey);
    await this.refill();
    this.show();
    return () => document.removeEventListener("keydown", this.onKey);
  }

  async refill() {
    const exclude = [...this.skipped, ...this.pending.map((p) => p.item.objid)];
    const params = { label: this.label, n: this.batchSize * 2, strategy: this.v.strategy, seed_objid: this.v.seed_objid, exclude, ...this.filters };
    const batch = await api(`/api/label/next?${query(params)}`);
    const queued = new Set(this.items.map((i) => i.objid));
    this.items.push(...batch.items.filter((i) => !queued.has(i.objid) && !exclude.includes(i.objid)));
    this.strategy = batch.strategy;
  }

  show() {
    this.counts.replaceChildren(
      "labels given ", el("b", { id: "n-given" }, this.given), " · positives found ", el("b", { id: "n-positive" }, this.positives),
      ` · waiting to be saved ${this.pending.length} · strategy ${this.strategy || "–"}`);
    const item = this.items[0];
    if (!item) { this.view.replaceChildren(el("p", {}, "nothing left to label with these filters")); return; }
    const fmt = (x, d = 3) => (x === null || x === undefined ? "–" : Number(x).toFixed(d));
    this.view.replaceChildren(
      stamp(item.objid, "big"),
      el("div", {},
        el("h3", { id: "label-objid" }, `Is ${item.objid} a ${this.label}?`),
        el("p", {}, `reason: ${item.reason}`, item.probability !== null && item.probability !== undefined ? ` · p = ${fmt(item.probability)}` : ""),
        el("p", {}, `z ${fmt(item.z)} · r ${fmt(item.mag_r, 2)} · ${[item.spec_class, item.bpt_class].filter(Boolean).join(" · ")}`),
        el("p", {}, `RA ${fmt(item.ra, 5)} Dec ${fmt(item.dec, 5)}`), skyLinks(item.ra, item.dec),
        el("p", {},
          el("button", { type: "button", onclick: () => this.answer("y") }, "yes (y)"), " ",
          el("button", { type: "button", class: "secondary", onclick: () => this.answer("n") }, "no (n)"), " ",
          el("button", { type: "button", class: "secondary", onclick: () => this.answer("s") }, "skip (s)"), " ",
          el("button", { type: "button", class: "secondary", onclick: () => this.answer("u") }, "undo (u)"), " ",
          el("button", { type: "button", class: "secondary", onclick: () => this.submit() }, "submit now"))));
  }

  key(event) {
    if (event.target.matches("input, textarea, select") || event.ctrlKey || event.metaKey || event.altKey) return;
    const k = event.key.toLowerCase();
    if (["y", "n", "s", "u"].includes(k)) { event.preventDefault(); this.answer(k); }
    if (k === "enter") { event.preventDefault(); this.submit(); }
  }

  async answer(k) {
    if (this.busy) return;
    if (k === "u") return this.undo();
    const item = this.items.shift();
    if (!item) return;
    if (k === "s") this.skipped.push(item.objid);
    else {
      this.pending.push({ item, answer: k });
      this.given += 1;
      if (k === "y") this.positives += 1;
    }
    this.show();
    if (this.pending.length >= this.batchSize) await this.submit();
    else if (this.items.length < 2) { await this.refill().catch((e) => status(e.message)); this.show(); }
  }

  undo() {
    // The last answer comes back to the queue: still unsaved, it is dropped; saved, the next answer is
    // stored after it (the labels table keeps every label, and the latest one counts).
    const last = this.pending.pop() || this.history.pop();
    if (!last) return;
    this.given -= 1;
    if (last.answer === "y") this.positives -= 1;
    this.items.unshift(last.item);
    this.show();
  }

  async submit() {
    if (this.busy || this.pending.length === 0) return;
    this.busy = true;
    status(`saving ${this.pending.length} labels…`);
    const batch = this.pending;
    const labels = batch.map((p) => ({ objid: p.item.objid, label: p.answer === "y" ? this.label : `not_${this.label}` }));
    try {
      const result = await api("/api/labels", { method: "POST", body: { labels, retrain: this.retrain } });
      this.pending = [];
      this.history.push(...batch);
      const counts = result.label_counts || {};
      const figures = [`saved ${result.n_written} labels (labels version ${result.labels_version}); `,
        `${this.label}: ${counts[this.label] || 0}, not_${this.label}: ${counts[`not_${this.label}`] || 0} in the table`];
      for (const r of result.retrained || []) {
        if (r.run) figures.push(`; retrained ${r.run.classifier} on ${r.run.n_positive}+ / ${r.run.n_negative}−: ` +
          Object.entries(r.run.metrics).map(([name, value]) => `${name} ${Number(value).toFixed(3)}`).join(", "));
        else if (r.skipped) figures.push(`; not retrained: ${r.skipped}`);
      }
      this.figures.replaceChildren(el("span", { id: "saved" }, figures.join("")));
      status("saved");
      await this.refill();
    } catch (error) {
      status("");
      this.figures.replaceChildren(el("span", { class: "error" }, `not saved: ${error.message}`));
    } finally {
      this.busy = false;
      this.show();
    }
  }
}
