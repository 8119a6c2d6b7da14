/**
 * The explorer page, run in the browser (compiled by the package's `tsc`
 * build into `dist/ui/page/app.js`; it imports only types, so the output is
 * one self-contained script). Views, by URL hash:
 *
 * - `#/`: the store's images, with search;
 * - `#/image/{name}`: one image — efficiency, layers as a bar chart with
 *   their `created_by`, the wasted-space table, config, identities, and a
 *   form to compare it with another image;
 * - `#/image/{name}/layer/{n}`: one layer's file tree (or the image's as it
 *   stands after that layer), collapsible, filterable, sorted by size;
 * - `#/compare/{a}/{b}`: two images side by side;
 * - `#/remote/{reference}` and `#/remote/{reference}/layer/{n}`: the same
 *   image and layer views of an image in a registry, not pulled (the list
 *   has a form for the reference).
 *
 * Every control is a link, a button, an input or a `<details>` summary, so
 * the keyboard reaches everything; `/` focuses the page's search box.
 * @module
 */
import type { ImageComparison, ImageExplanation, LayerView, MarkedEntry, StackedFile } from "@berth/image-service";

/** A row of `GET /ui/api/images`. */
interface ImageRow {
  id: string;
  repoTags: string[];
  repoDigests: string[];
  created: string | null;
  size: number;
  layers: number;
}

type Child = Node | string | number | null | undefined | false;

/** Make an element: `h("a", { href: "#/" }, "home")`. Attributes set to false/undefined are left out. */
function h(tag: string, attrs: Record<string, string | number | boolean | undefined | ((e: Event) => void)> = {}, ...children: Child[]): HTMLElement {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (typeof v === "function") el.addEventListener(k.replace(/^on/, ""), v);
    // through the CSSOM: the page's CSP allows no inline style attributes
    else if (k === "style") el.style.cssText = String(v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(typeof c === "number" ? String(c) : c);
  return el;
}

/** `1.5 MB`, decimal units as docker prints them. */
function bytes(n: number): string {
  if (n < 1000) return `${n} B`;
  const units = ["kB", "MB", "GB", "TB"];
  let v = n;
  let i = -1;
  do {
    v /= 1000;
    i++;
  } while (v >= 1000 && i < units.length - 1);
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

const short = (id: string) => id.replace(/^sha256:/, "").slice(0, 12);
const enc = encodeURIComponent;
const nameOf = (img: { id: string; repoTags: string[] }) => img.repoTags[0] ?? short(img.id);

/** Where an image is: the store (`#/image/…`, `/ui/api/images/…`) or a registry (`#/remote/…`, `/ui/api/remote/…`). */
interface Where {
  remote: boolean;
  /** The page URL of the image. */
  page: string;
  /** The API URL of the image. */
  api: string;
  /** Query parameters every API call for it carries (a remote image's `platform`, from the page's own `?platform=`). */
  params: URLSearchParams;
}
const local = (name: string): Where => ({ remote: false, page: `#/image/${enc(name)}`, api: `/ui/api/images/${enc(name)}`, params: new URLSearchParams() });
const remote = (ref: string): Where => {
  const platform = new URLSearchParams(location.search).get("platform");
  return { remote: true, page: `#/remote/${enc(ref)}`, api: `/ui/api/remote/${enc(ref)}`, params: new URLSearchParams(platform ? { platform } : {}) };
};
/** `path` with the image's query parameters and `extra`. */
function withParams(where: Where, path: string, extra: Record<string, string> = {}): string {
  const q = new URLSearchParams(where.params);
  for (const [k, v] of Object.entries(extra)) q.set(k, v);
  const qs = q.toString();
  return qs ? `${path}?${qs}` : path;
}

const view = () => document.getElementById("view")!;
function setStatus(text: string, error = false): void {
  const s = document.getElementById("status")!;
  s.textContent = text;
  s.className = error ? "error" : "";
}

async function getJson<T>(path: string): Promise<T> {
  const r = await fetch(path, { headers: { Accept: "application/json" } });
  const body = (await r.json()) as T & { message?: string; code?: string };
  if (!r.ok) throw new Error(`${body.message ?? r.statusText} (${body.code ?? r.status})`);
  return body;
}

function table(head: Array<[string, boolean?]>, rows: Child[][], cls = ""): HTMLElement {
  return h(
    "div",
    { class: "scroll" },
    h(
      "table",
      { class: cls },
      h("thead", {}, h("tr", {}, ...head.map(([t, num]) => h("th", { class: num ? "num" : undefined, scope: "col" }, t)))),
      h("tbody", {}, ...rows.map((r) => h("tr", {}, ...r.map((c, i) => h("td", { class: head[i]?.[1] ? "num" : undefined }, c))))),
    ),
  );
}

// ---- the image list ----

async function listView(): Promise<Node[]> {
  const images = await getJson<ImageRow[]>("/ui/api/images");
  const body = h("tbody");
  const search = h("input", { type: "search", id: "search", placeholder: "filter by name or ID", "aria-label": "filter images by name or ID" }) as HTMLInputElement;
  const render = () => {
    const q = search.value.trim().toLowerCase();
    const shown = images.filter((i) => !q || i.id.includes(q) || [...i.repoTags, ...i.repoDigests].some((t) => t.toLowerCase().includes(q)));
    body.replaceChildren(
      ...shown.map((i) =>
        h(
          "tr",
          {},
          h("td", {}, h("a", { href: `#/image/${enc(i.repoTags[0] ?? i.id)}` }, i.repoTags.join(", ") || "<none>")),
          h("td", {}, h("code", {}, short(i.id))),
          h("td", {}, i.created ? new Date(i.created).toISOString().replace("T", " ").slice(0, 19) : ""),
          h("td", { class: "num" }, i.layers),
          h("td", { class: "num" }, bytes(i.size)),
        ),
      ),
    );
    setStatus(`${shown.length} of ${images.length} images`);
  };
  search.addEventListener("input", render);
  render();
  const ref = h("input", { type: "text", id: "remote-ref", placeholder: "registry/repository:tag", "aria-label": "image reference in a registry" }) as HTMLInputElement;
  return [
    h("h1", {}, "Images"),
    h("div", { class: "toolbar" }, search),
    h(
      "div",
      { class: "scroll" },
      h(
        "table",
        { id: "image-list" },
        h("thead", {}, h("tr", {}, h("th", {}, "tags"), h("th", {}, "ID"), h("th", {}, "created"), h("th", { class: "num" }, "layers"), h("th", { class: "num" }, "size"))),
        body,
      ),
    ),
    h("h2", {}, "An image in a registry"),
    h(
      "form",
      {
        class: "toolbar",
        id: "remote-form",
        onsubmit: (ev: Event) => {
          ev.preventDefault();
          if (ref.value.trim()) location.hash = remote(ref.value.trim()).page;
        },
      },
      h("label", { for: "remote-ref" }, "in a registry"),
      ref,
      h("button", { type: "submit" }, "Explore"),
    ),
  ];
}

// ---- one image ----

async function imageView(name: string, where: Where): Promise<Node[]> {
  const [x, images] = await Promise.all([getJson<ImageExplanation>(withParams(where, where.api)), where.remote ? Promise.resolve([]) : getJson<ImageRow[]>("/ui/api/images")]);
  const max = Math.max(1, ...x.layers.map((l) => l.size));
  const e = x.efficiency;
  const c = x.config;
  const others = images.filter((i) => i.id !== x.id);
  const pick = h("select", { id: "compare-with", "aria-label": "image to compare with" }, ...others.map((i) => h("option", { value: i.repoTags[0] ?? i.id }, nameOf(i)))) as HTMLSelectElement;
  setStatus(`${x.layers.length} layers, ${bytes(e.sizeBytes)}`);
  return [
    h("h1", {}, x.remote ? x.remote.reference : x.repoTags.join(", ") || short(x.id)),
    x.remote ? h("p", { class: "muted", id: "remote-note" }, `in the registry, not pulled${x.remote.platform ? ` · platform ${x.remote.platform}` : ""}`) : null,
    h(
      "div",
      { class: "score", id: "efficiency" },
      h("div", {}, h("b", {}, `${(e.efficiency * 100).toFixed(2)} %`), "efficiency (dive)"),
      h("div", {}, h("b", {}, bytes(e.wastedBytes)), "wasted (dive)"),
      h("div", {}, h("b", {}, bytes(e.reclaimableBytes)), "hidden by later layers"),
      h("div", {}, h("b", {}, bytes(x.visibleBytes)), "final files"),
    ),
    h("h2", {}, "Layers"),
    h(
      "ol",
      { class: "bars", id: "layers" },
      ...x.layers.map((l) =>
        h(
          "li",
          {},
          h(
            "a",
            { href: `${where.page}/layer/${l.index}`, title: l.createdBy || "(no history step)" },
            h("span", { class: "muted" }, `#${l.index}`),
            h("span", { class: "bar", style: `width:${Math.max(0.5, (l.size / max) * 100)}%`, "aria-hidden": "true" }),
            h("span", { class: "num" }, bytes(l.size)),
            h("span", { class: "cmd" }, l.createdBy || "(no history step)"),
          ),
        ),
      ),
    ),
    h("h2", {}, "Wasted space"),
    e.files.length === 0
      ? h("p", { id: "no-waste" }, "No file is written in one layer and removed or overwritten in a later one.")
      : table(
          [["path"], ["layers"], ["copies", true], ["total (dive)", true], ["hidden", true]],
          e.files.map((f) => [
            h("code", {}, `/${f.path}`),
            f.occurrences.map((o) => `#${o.layer}${o.removed ? " removed" : ""}`).join(", "),
            f.occurrences.length,
            bytes(f.cumulativeSize),
            bytes(f.reclaimableBytes),
          ]),
          "wasted",
        ),
    where.remote ? null : h("h2", {}, "Compare"),
    where.remote
      ? null
      : others.length === 0
      ? h("p", { class: "muted" }, "No other image in the store.")
      : h(
          "form",
          {
            class: "toolbar",
            onsubmit: (ev: Event) => {
              ev.preventDefault();
              location.hash = `#/compare/${enc(name)}/${enc(pick.value)}`;
            },
          },
          h("label", { for: "compare-with" }, "with"),
          pick,
          h("button", { type: "submit" }, "Compare"),
        ),
    h("h2", {}, "Config"),
    h(
      "dl",
      { class: "kv", id: "config" },
      ...kv([
        ["platform", c.platform],
        ["entrypoint", c.entrypoint ? JSON.stringify(c.entrypoint) : ""],
        ["cmd", c.cmd ? JSON.stringify(c.cmd) : ""],
        ["user", c.user],
        ["workdir", c.workdir],
        ["exposed ports", c.exposedPorts.join(" ")],
        ["volumes", c.volumes.join(" ")],
        ["env", c.env.join("\n")],
        ["labels", Object.entries(c.labels).map(([k, v]) => `${k}=${v}`).join("\n")],
        ["created", x.created ?? ""],
      ]),
    ),
    h("h2", {}, "Identities"),
    h(
      "dl",
      { class: "kv", id: "identities" },
      ...kv([
        ["image ID", x.id],
        ["manifest digest", `${x.manifestDigest} (${x.manifestMediaType})`],
        ["index digest", x.indexDigest ?? (x.remote ? "none (the reference names a single manifest)" : "not recorded by the store (see repo digests)")],
        ["repo digests", x.repoDigests.join("\n")],
      ]),
    ),
    table(
      [["#"], ["DiffID"], ["ChainID"], ["blob"]],
      x.layers.map((l) => [l.index, h("code", {}, l.diffID), h("code", {}, l.chainID), l.blob ? h("code", {}, l.blob.digest) : "missing"]),
    ),
    h("h2", {}, "History"),
    table(
      [["step"], ["layer"], ["created by"]],
      x.history.map((s, i) => [i, s.layer === null ? h("span", { class: "muted" }, "empty") : `#${s.layer}`, h("code", {}, s.createdBy)]),
    ),
  ].filter((n): n is HTMLElement => n !== null);
}

function kv(pairs: Array<[string, string]>): Node[] {
  return pairs.filter(([, v]) => v !== "").flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, h("code", { style: "white-space:pre-wrap" }, v))]);
}

// ---- one layer ----

/** A node of the tree the page draws. */
interface TreeNode {
  name: string;
  path: string;
  entry?: MarkedEntry | StackedFile;
  /** Bytes at and below (removals count the bytes they hide). */
  size: number;
  children: Map<string, TreeNode>;
}

function buildTree(entries: Array<MarkedEntry | StackedFile>): TreeNode {
  const root: TreeNode = { name: "/", path: "", size: 0, children: new Map() };
  for (const e of entries) {
    let n = root;
    const parts = e.path.split("/");
    parts.forEach((part, i) => {
      let next = n.children.get(part);
      if (!next) {
        next = { name: part, path: parts.slice(0, i + 1).join("/"), size: 0, children: new Map() };
        n.children.set(part, next);
      }
      n = next;
    });
    n.entry = e;
  }
  const sum = (n: TreeNode): number => {
    const own = n.entry ? ("removedBytes" in n.entry ? (n.entry.removedBytes ?? n.entry.size) : n.entry.size) : 0;
    n.size = own;
    for (const c of n.children.values()) n.size += sum(c);
    return n.size;
  };
  sum(root);
  return root;
}

const ROW_LIMIT = 3000;

function drawTree(root: TreeNode, openAll: boolean): HTMLElement {
  let rows = 0;
  const row = (n: TreeNode): HTMLElement[] => {
    const status = n.entry && "status" in n.entry ? n.entry.status : undefined;
    const kind = n.entry?.type === "whiteout" ? "whiteout" : n.entry?.type === "opaque" ? "opaque dir" : n.entry?.type === "symlink" ? `→ ${n.entry.link ?? ""}` : "";
    return [
      h("span", { class: "name" }, n.children.size > 0 || n.entry?.type === "dir" ? `${n.name}/` : n.name),
      kind ? h("span", { class: "muted" }, kind) : null,
      status && status !== "unchanged" ? h("span", { class: "badge" }, status) : null,
      h("span", { class: "size" }, bytes(n.size)),
    ].filter((x): x is HTMLElement => x !== null);
  };
  const list = (n: TreeNode): HTMLElement => {
    const ul = h("ul", { role: "group" });
    const kids = [...n.children.values()].sort((a, b) => b.size - a.size || a.name.localeCompare(b.name));
    for (const c of kids) {
      if (rows++ >= ROW_LIMIT) break;
      const status = c.entry && "status" in c.entry ? c.entry.status : "";
      if (c.children.size === 0) {
        ul.append(h("li", { class: status, "data-path": c.path }, h("div", { class: "leaf" }, ...row(c))));
        continue;
      }
      const details = h("details", { open: openAll }, h("summary", {}, ...row(c))) as HTMLDetailsElement;
      // children drawn when first opened: a 30,000-file layer stays quick
      const fill = () => {
        if (details.childElementCount === 1) details.append(list(c));
      };
      if (openAll) fill();
      else details.addEventListener("toggle", fill);
      ul.append(h("li", { class: status, "data-path": c.path }, details));
    }
    return ul;
  };
  const tree = h("div", { class: "tree", id: "tree" }, list(root));
  if (rows > ROW_LIMIT) tree.append(h("p", { class: "muted" }, `only the first ${ROW_LIMIT} rows are shown: narrow the filter`));
  return tree;
}

async function layerPage(where: Where, index: number): Promise<Node[]> {
  const layerUrl = `${where.api}/layers/${index}`;
  const [x, v] = await Promise.all([getJson<ImageExplanation>(withParams(where, where.api)), getJson<LayerView>(withParams(where, layerUrl))]);
  // the whole image after this layer is fetched when first asked for (it can be megabytes)
  let image: StackedFile[] | undefined;
  const layer = x.layers[index]!;
  const filter = h("input", { type: "search", id: "search", placeholder: "filter by path", "aria-label": "filter files by path" }) as HTMLInputElement;
  const changedOnly = h("input", { type: "checkbox", id: "changed-only" }) as HTMLInputElement;
  const whole = h("input", { type: "checkbox", id: "whole-image" }) as HTMLInputElement;
  const holder = h("div");
  const render = async () => {
    if (whole.checked && !image) {
      setStatus("loading the image's files…");
      try {
        image = (await getJson<LayerView>(withParams(where, layerUrl, { image: "1" }))).image ?? [];
      } catch (err) {
        setStatus(err instanceof Error ? err.message : String(err), true);
        return;
      }
    }
    const q = filter.value.trim().toLowerCase();
    let entries: Array<MarkedEntry | StackedFile> = whole.checked ? (image ?? []) : v.entries;
    if (changedOnly.checked) entries = whole.checked ? entries.filter((e) => "layer" in e && e.layer === index) : entries.filter((e) => "status" in e && e.status !== "unchanged");
    if (q) entries = entries.filter((e) => e.path.toLowerCase().includes(q));
    holder.replaceChildren(drawTree(buildTree(entries), q !== "" || changedOnly.checked));
    setStatus(`${entries.length} paths`);
  };
  for (const el of [filter, changedOnly, whole]) el.addEventListener("input", () => void render());
  await render();
  const ch = layer.changes;
  return [
    h("p", {}, h("a", { href: where.page }, `← ${x.remote?.reference ?? x.repoTags[0] ?? short(x.id)}`)),
    h("h1", {}, `Layer #${index} · ${bytes(layer.size)}`),
    h("p", {}, h("code", {}, layer.createdBy || "(no history step)")),
    h(
      "p",
      { class: "muted" },
      h("span", { class: "added" }, `${ch.added} added`),
      ", ",
      h("span", { class: "changed" }, `${ch.changed} changed`),
      ", ",
      h("span", { class: "removed" }, `${ch.removed} removed (${bytes(ch.removedBytes)} hidden)`),
    ),
    h(
      "div",
      { class: "toolbar" },
      filter,
      h("label", {}, changedOnly, " changed only"),
      h("label", {}, whole, " whole image after this layer"),
    ),
    holder,
  ];
}

// ---- two images ----

async function comparePage(a: string, b: string): Promise<Node[]> {
  const c = await getJson<ImageComparison>(`/ui/api/compare?a=${enc(a)}&b=${enc(b)}`);
  const layers = (title: string, id: string, ls: ImageComparison["shared"]) => [
    h("h2", {}, `${title} (${ls.length})`),
    ls.length === 0
      ? h("p", { class: "muted" }, "none")
      : h("ol", { id, class: "plain" }, ...ls.map((l) => h("li", {}, h("code", {}, short(l.chainID)), ` ${bytes(l.size)} `, h("span", { class: "cmd" }, l.createdBy)))),
  ];
  setStatus(`${c.shared.length} shared layers, ${c.fileDifferences} paths differ`);
  return [
    h("h1", {}, `${nameOf(c.a)} ↔ ${nameOf(c.b)}`),
    h("div", { class: "cols" }, h("div", {}, ...layers("Shared layers", "shared", c.shared)), h("div", {}, ...layers(`Only in ${nameOf(c.a)}`, "only-a", c.onlyA)), h("div", {}, ...layers(`Only in ${nameOf(c.b)}`, "only-b", c.onlyB))),
    h("h2", {}, "Config"),
    c.configDifferences.length === 0
      ? h("p", { class: "muted" }, "same")
      : table([["field"], [nameOf(c.a)], [nameOf(c.b)]], c.configDifferences.map((d) => [d.field, h("code", {}, JSON.stringify(d.a)), h("code", {}, JSON.stringify(d.b))]), "config-diff"),
    h("h2", {}, `Files (${c.fileDifferences})`),
    table(
      [["path"], ["change"], [nameOf(c.a), true], [nameOf(c.b), true]],
      c.files.map((f) => [h("code", {}, `/${f.path}`), h("span", { class: f.status }, f.status), f.sizeA === null ? "" : bytes(f.sizeA), f.sizeB === null ? "" : bytes(f.sizeB)]),
      "file-diff",
    ),
    c.files.length < c.fileDifferences ? h("p", { class: "muted" }, `the ${c.files.length} largest of ${c.fileDifferences} are shown`) : null,
  ].filter((n): n is HTMLElement => n !== null);
}

// ---- routing ----

async function route(): Promise<void> {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  setStatus("loading…");
  try {
    let nodes: Node[];
    if (parts[0] === "image" && parts[1] && parts[2] === "layer") nodes = await layerPage(local(parts[1]), Number(parts[3]));
    else if (parts[0] === "image" && parts[1]) nodes = await imageView(parts[1], local(parts[1]));
    else if (parts[0] === "remote" && parts[1] && parts[2] === "layer") nodes = await layerPage(remote(parts[1]), Number(parts[3]));
    else if (parts[0] === "remote" && parts[1]) nodes = await imageView(parts[1], remote(parts[1]));
    else if (parts[0] === "compare" && parts[1] && parts[2]) nodes = await comparePage(parts[1], parts[2]);
    else nodes = await listView();
    view().replaceChildren(...nodes);
    view().focus();
  } catch (err) {
    view().replaceChildren(h("p", {}, h("a", { href: "#/" }, "← images")));
    setStatus(err instanceof Error ? err.message : String(err), true);
  }
}

document.addEventListener("keydown", (e) => {
  const target = e.target as HTMLElement;
  if (e.key === "/" && target.tagName !== "INPUT" && target.tagName !== "SELECT") {
    const s = document.getElementById("search");
    if (s) {
      e.preventDefault();
      s.focus();
    }
  }
});
window.addEventListener("hashchange", () => void route());
void route();
