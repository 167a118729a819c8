//! The demo page: like rollouts-demo's, it asks `/color` many times a second and draws a grid
//! of the answers, so a rollout is visible as colours changing; failed requests show as dark cells.

use axum::response::Html;

/// `GET /`.
pub async fn index() -> Html<&'static str> {
    Html(PAGE)
}

const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>sluice demo</title>
<style>
body { font-family: sans-serif; margin: 2em; background: #fafafa; }
#grid { display: grid; grid-template-columns: repeat(40, 16px); gap: 2px; }
#grid div { width: 16px; height: 16px; border-radius: 3px; background: #ddd; }
#grid div.error { background: #222; }
</style></head>
<body>
<h1>sluice demo</h1>
<p>Each square is one request to <code>/color</code>; dark squares are errors.</p>
<div id="grid"></div>
<script>
const grid = document.getElementById('grid');
const cells = [];
for (let i = 0; i < 400; i++) { const d = document.createElement('div'); grid.appendChild(d); cells.push(d); }
let next = 0;
async function tick() {
  const cell = cells[next]; next = (next + 1) % cells.length;
  try {
    const r = await fetch('color', {method: 'POST'});
    const color = JSON.parse(await r.text());
    cell.className = r.ok ? '' : 'error';
    cell.style.background = r.ok ? color : '';
  } catch (e) { cell.className = 'error'; cell.style.background = ''; }
}
setInterval(tick, 50);
</script>
</body></html>
"#;
