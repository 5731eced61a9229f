// The SSALD pages: one page app, one route per page (#/search, #/anomalies, #/label, #/map, #/candidates).
import { api, el, status } from "./common.js";
import { anomaliesPage, searchPage } from "./search.js";
import { labelPage } from "./label.js";
import { candidatesPage } from "./candidates.js";
import { mapPage } from "./map.js";

const PAGES = { search: searchPage, anomalies: anomaliesPage, label: labelPage, map: mapPage, candidates: candidatesPage };
let leave = null; // what the current page does when it is left (e.g. drop its key handler)

async function route() {
  const [, name = "search", rest = ""] = location.hash.match(/^#\/([a-z]+)\??(.*)$/) || [];
  const page = PAGES[name] ? name : "search";
  for (const link of document.querySelectorAll("nav a")) link.classList.toggle("active", link.hash === `#/${page}`);
  if (leave) { leave(); leave = null; }
  const main = document.getElementById("page");
  main.replaceChildren();
  status("");
  try {
    leave = (await PAGES[page](main, new URLSearchParams(rest))) || null;
  } catch (error) {
    main.append(el("p", { class: "error" }, error.message));
  }
  document.title = `SSALD · ${page}`;
}

// The settings first: the filter forms are built from the columns they list.
try {
  window.ssaldSettings = await api("/api/settings");
  document.getElementById("server").textContent = `server ${window.ssaldSettings.server}`;
} catch (error) {
  status(`cannot read /api/settings: ${error.message}`);
}
window.addEventListener("hashchange", route);
route();
