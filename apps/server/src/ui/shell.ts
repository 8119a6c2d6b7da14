/**
 * The explorer page's HTML shell and stylesheet, served as they are (the
 * script, `page/app.ts`, is compiled at build time). Plain system fonts, no
 * images, no external anything: the page works offline.
 * @module
 */

/** The page: a header, a live region for status, the view the script renders. */
export function pageHtml(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>berth explorer</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/ui/app.css">
<script type="module" src="/ui/app.js"></script>
</head>
<body>
<header><a href="#/" class="brand">berth explorer</a><span class="hint">press <kbd>/</kbd> to search</span></header>
<p id="status" role="status" aria-live="polite"></p>
<main id="view" tabindex="-1"><noscript>The explorer needs JavaScript; the same data is at <a href="/ui/api/images">/ui/api/images</a>.</noscript></main>
</body>
</html>
`;
}

/** The stylesheet: readable from 320 px wide up; focus always visible. */
export const PAGE_CSS = `
:root { color-scheme: light dark; --fg: #1b1f24; --bg: #fff; --muted: #59636e; --line: #d1d9e0; --bar: #3b82c4; --add: #1a7f37; --chg: #9a6700; --rm: #cf222e; --accent: #0969da; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6edf3; --bg: #0d1117; --muted: #9198a1; --line: #3d444d; --bar: #4493f8; --add: #3fb950; --chg: #d29922; --rm: #f85149; --accent: #4493f8; } }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: baseline; padding: .6rem 1rem; border-bottom: 1px solid var(--line); }
.brand { font-weight: 600; color: var(--fg); text-decoration: none; }
.hint { color: var(--muted); font-size: .85em; }
main { padding: .5rem 1rem 2rem; max-width: 1100px; }
main:focus { outline: none; }
#status { margin: 0; padding: 0 1rem; color: var(--muted); min-height: 1.2em; }
#status.error { color: var(--rm); }
h1 { font-size: 1.3rem; margin: .8rem 0 .4rem; word-break: break-all; }
h2 { font-size: 1.1rem; margin: 1.4rem 0 .4rem; }
a { color: var(--accent); }
:focus-visible { outline: 2px solid var(--accent); outline-offset: 2px; }
input[type=search], select { font: inherit; padding: .3rem .5rem; max-width: 100%; color: var(--fg); background: var(--bg); border: 1px solid var(--line); border-radius: 4px; }
button { font: inherit; padding: .25rem .7rem; border: 1px solid var(--line); border-radius: 4px; background: var(--bg); color: var(--fg); cursor: pointer; }
.toolbar { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: center; margin: .5rem 0; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; font-size: .9em; color: var(--muted); }
td.num, th.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
table.wasted td:first-child, table.file-diff td:first-child { min-width: 12rem; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .88em; word-break: break-all; }
dl.kv { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; margin: 0; }
dl.kv dt { color: var(--muted); }
dl.kv dd { margin: 0; min-width: 0; }
@media (max-width: 600px) { dl.kv { grid-template-columns: 1fr; } dl.kv dd { margin-bottom: .4rem; } }
.score { display: flex; flex-wrap: wrap; gap: .5rem 2rem; }
.score b { font-size: 1.3rem; display: block; }
ol.bars { list-style: none; padding: 0; margin: 0; }
ol.bars li { margin: .2rem 0; }
ol.bars a { display: grid; grid-template-columns: 2.2rem minmax(4rem, 30%) 5.5rem 1fr; gap: .5rem; align-items: center; color: var(--fg); text-decoration: none; padding: .15rem .2rem; border-radius: 4px; }
ol.bars a:hover { background: color-mix(in srgb, var(--bar) 10%, transparent); }
.bar { height: .9rem; background: var(--bar); border-radius: 2px; min-width: 1px; }
.cmd { font-family: ui-monospace, monospace; font-size: .85em; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
@media (max-width: 600px) { ol.bars a { grid-template-columns: 2rem 1fr 5rem; } ol.bars .cmd { grid-column: 1 / -1; white-space: normal; word-break: break-all; } }
.tree ul { list-style: none; margin: 0; padding-left: 1.1rem; }
.tree > ul { padding-left: 0; }
.tree summary, .tree .leaf { display: flex; gap: .5rem; align-items: baseline; padding: .05rem 0; }
.tree summary { list-style: none; cursor: pointer; }
.tree summary::-webkit-details-marker { display: none; }
.tree summary::before { content: "▸"; width: .8rem; color: var(--muted); }
.tree details[open] > summary::before { content: "▾"; }
.tree .leaf { padding-left: 1.3rem; }
.tree .name { flex: 1; min-width: 0; word-break: break-all; font-family: ui-monospace, monospace; font-size: .88em; }
.tree .size { color: var(--muted); font-variant-numeric: tabular-nums; white-space: nowrap; }
.badge { font-size: .75em; padding: 0 .35rem; border-radius: 3px; border: 1px solid currentColor; white-space: nowrap; }
.added { color: var(--add); } .changed { color: var(--chg); } .removed { color: var(--rm); } .unchanged { color: var(--muted); }
.removed .name { text-decoration: line-through; }
.muted { color: var(--muted); }
.cols { display: grid; grid-template-columns: repeat(auto-fit, minmax(280px, 1fr)); gap: 1rem; }
`;
