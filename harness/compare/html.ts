// The comparison as one self-contained HTML page: the case x run grid coloured by verdict,
// each later run's change marked, a "changes only" filter, and every cell a <details>
// that opens on its expected, actual and excerpt. Inline CSS and JS only, so the page
// works offline and can be mailed or attached to a CI run as it is.
import { ABSENT, CLASS_MEANINGS, isChange, type CompareCell, type CompareClass, type CompareDoc } from './format.js';
import { countsText } from './text.js';

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const CSS = `
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse}
th,td{border:1px solid #bbb;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#eee}
td.cell{min-width:11em}
.v-passed{background:#d9f2d9}.v-failed{background:#f7c6c6}.v-expected-failure{background:#e6efd0}
.v-unexpectedly-passed{background:#e3d4f5}.v-flaky{background:#fde2b8}.v-not-run{background:#e4e4e4}.v-missing{background:#fff;color:#888}
.c-regression{outline:3px solid #c00;outline-offset:-3px}.c-fix{outline:3px solid #090;outline-offset:-3px}
.c-changed-actual,.c-flaky,.c-not-run,.c-new,.c-gone{outline:2px dashed #555;outline-offset:-3px}
.cls{font-size:85%;font-weight:bold}
summary{cursor:pointer}
dt{font-weight:bold;margin-top:.3em}dd{margin:0}
pre{white-space:pre-wrap;max-width:60em;margin:0;font-size:90%}
body.changes-only tr[data-changed="false"]{display:none}
`;

// Runs in the page: the filter hides the rows without any change.
const SCRIPT = `
document.getElementById('changes-only').addEventListener('change', function (e) {
  document.body.classList.toggle('changes-only', e.target.checked);
  var shown = document.querySelectorAll('tbody tr[data-changed="true"]').length;
  var all = document.querySelectorAll('tbody tr').length;
  document.getElementById('shown').textContent = e.target.checked ? shown + ' of ' + all + ' cases' : all + ' cases';
});
`;

function cellHtml(cell: CompareCell, cls: CompareClass | undefined): string {
  const details: [string, string | undefined][] = [
    ['reason', cell.reason],
    ['step', cell.step],
    ['expected', cell.expected],
    ['actual', cell.actual],
    ['excerpt', cell.excerpt],
  ];
  const body = details
    .filter((d): d is [string, string] => d[1] !== undefined)
    .map(([k, v]) => `<dt>${k}</dt><dd><pre class="${k}">${esc(v)}</pre></dd>`)
    .join('');
  // A flaky or not-run cell already says so in its verdict.
  const label = `${esc(cell.verdict)}${isChange(cls) && cls !== cell.verdict ? ` <span class="cls">${esc(cls)}</span>` : ''}`;
  const classes = `cell v-${cell.verdict}${cls ? ` c-${cls}` : ''}`;
  const title = cls ? ` title="${esc(`${cls}: ${CLASS_MEANINGS[cls]}`)}"` : '';
  return `<td class="${classes}"${title}>${body ? `<details><summary>${label}</summary><dl>${body}</dl></details>` : label}</td>`;
}

export function toCompareHtml(doc: CompareDoc): string {
  const head = doc.runs.map((r, i) => `<th title="${esc(r.path)}">${esc(r.label)}${i === 0 ? ' (baseline)' : ''}<br><small>${esc(r.trial)}, ${esc(r.status)}</small></th>`).join('');
  const rows = doc.cases.map((c) => {
    const changed = c.classes.some(isChange);
    const cells = c.cells
      .map((cell, i) => {
        const standing = i === 0 ? undefined : c.classes[i - 1];
        return cellHtml(cell, standing === ABSENT ? undefined : standing);
      })
      .join('');
    return `<tr data-changed="${changed}"><td>${esc(c.suite)}</td><td>${esc(c.name)}</td>${cells}</tr>`;
  });
  const counts = doc.comparisons.map(({ run, counts }) => `<li>${esc(doc.runs[run]!.label)}: ${esc(countsText(counts))}</li>`).join('');
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>ktrial compare: ${esc(doc.runs.map((r) => r.label).join(' vs '))}</title>
<style>${CSS}</style></head>
<body>
<h1>ktrial compare</h1>
<p>Against the baseline <code>${esc(doc.runs[0]!.label)}</code>: ${doc.regressions ? `<strong>${doc.regressions} regression(s)</strong>` : 'no regressions'}.</p>
<ul>${counts}</ul>
<p><label><input type="checkbox" id="changes-only"> changes only</label> · <span id="shown">${doc.cases.length} cases</span></p>
<table>
<thead><tr><th>suite</th><th>case</th>${head}</tr></thead>
<tbody>
${rows.join('\n')}
</tbody></table>
<script>${SCRIPT}</script>
</body></html>
`;
}
