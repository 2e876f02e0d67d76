// The dashboard: reads the service's JSON API (the canonical proto3 JSON
// mapping of dora.v1) from the same origin and draws it. Plain JS, no
// framework, no build step; charts are inline SVG drawn below. Text is only
// ever set with textContent, never parsed as HTML.
'use strict';

const KEY_STORAGE = 'dora.apiKey';
const SVG_NS = 'http://www.w3.org/2000/svg';

const state = { projects: [], keys: [], team: '', teams: [], period: { weeks: 13, per: 'week' }, view: null, seq: 0, teamSeq: 0, retry: null };

// ------------------------------------------------------------------ helpers

function $(id) { return document.getElementById(id); }

/** Creates an element (HTML, or SVG when `ns` is given) with attributes and children. */
function el(tag, attrs, children, ns) {
  const node = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of [].concat(children === undefined ? [] : children)) {
    if (c === null || c === undefined || c === false) continue;
    node.append(typeof c === 'string' || typeof c === 'number' ? String(c) : c);
  }
  return node;
}
function svg(tag, attrs, children) { return el(tag, attrs, children, SVG_NS); }

// The canonical JSON mapping leaves out zeros and absent optionals, and
// sends 64-bit integers as strings.
function count(v) { return v === undefined || v === null ? 0 : Number(v); }
function opt(v) { return v === undefined || v === null ? null : Number(v); }

function fixed(v, digits) { return v.toFixed(digits); }
function hoursText(h) {
  if (h === null) return null;
  if (h < 1) return { number: fixed(h * 60, 0), unit: 'min' };
  if (h < 48) return { number: fixed(h, 1), unit: 'h' };
  return { number: fixed(h / 24, 1), unit: 'days' };
}
function percentText(r) { return r === null ? null : { number: fixed(r * 100, 1), unit: '%' }; }
function perWeekText(v) { return v === null ? null : { number: fixed(v, 1), unit: 'per week' }; }
function joined(t) { return t === null ? '—' : t.number + ' ' + t.unit; }

const LEVELS = {
  LEVEL_ELITE: ['elite', 'Elite'],
  LEVEL_HIGH: ['high', 'High'],
  LEVEL_MEDIUM: ['medium', 'Medium'],
  LEVEL_LOW: ['low', 'Low'],
  LEVEL_UNKNOWN: ['unknown', 'Unknown'],
};

function plural(n, one, many) { return n + ' ' + (n === 1 ? one : many); }

function timeText(iso) {
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}
function ageText(seconds) {
  if (seconds === null) return null;
  if (seconds < 90) return 'just now';
  if (seconds < 5400) return Math.round(seconds / 60) + ' minutes ago';
  if (seconds < 172800) return Math.round(seconds / 3600) + ' hours ago';
  return Math.round(seconds / 86400) + ' days ago';
}

// ---------------------------------------------------------------------- API

class ApiError extends Error {
  constructor(httpStatus, code, message) {
    super(message);
    this.httpStatus = httpStatus;
    this.code = code;
  }
}

async function api(path) {
  const headers = { accept: 'application/json' };
  const key = sessionStorage.getItem(KEY_STORAGE);
  if (key) headers.authorization = 'Bearer ' + key;
  let response;
  try {
    response = await fetch(path, { headers, cache: 'no-store' });
  } catch (e) {
    throw new ApiError(0, 14, 'The service did not answer.');
  }
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (!response.ok) {
    throw new ApiError(response.status, body && body.code, (body && body.message) || response.statusText);
  }
  return body || {};
}

// ------------------------------------------------------------------ notices

function notice(kind, title, text, options) {
  const o = options || {};
  const box = $('notice');
  box.className = 'notice ' + kind;
  box.dataset.kind = o.id || kind;
  $('notice-title').textContent = title;
  $('notice-text').textContent = text;
  $('notice-key').hidden = !o.askKey;
  $('notice-retry').hidden = !o.retry;
  state.retry = o.retry || null;
  box.hidden = false;
  $('content').hidden = true;
  document.body.dataset.state = o.id || kind;
}

function clearNotice() {
  $('notice').hidden = true;
  state.retry = null;
}

/**
 * Says what went wrong and what to do about it. `project` is set for
 * figures, `team` for a team's.
 */
function showError(err, project, retry, team) {
  const code = err.code;
  const http = err.httpStatus;
  if (http === 401 || code === 16) {
    notice('error', 'Sign-in needed',
      'This service asks for an API key. Paste the key you were given below; it is kept in this browser tab only. ' +
      '(Service says: ' + err.message + ')', { id: 'unauthenticated', askKey: true });
  } else if (http === 403 || code === 7) {
    notice('error', 'Permission denied',
      project
        ? 'Your Jira account cannot browse project ' + project + '. Pick another project, or ask a Jira administrator for the Browse Projects permission on it.'
        : 'Your Jira account cannot browse the projects this service holds. Ask a Jira administrator for the Browse Projects permission.',
      { id: 'permission-denied' });
  } else if (http === 503 || code === 14) {
    notice('error', http === 0 ? 'The service is unreachable' : 'Jira is unreachable',
      http === 0
        ? 'This page could not reach the DORA service. Check your network connection, then try again.'
        : 'The service could not reach Jira to check your access or to fetch data. Your request is fine: try again in a few minutes. If this persists, ask the service operator to check the Jira address and credentials.',
      { id: 'unavailable', retry });
  } else if (team && (http === 404 || code === 5)) {
    notice('info', 'No work of team ' + team + ' in ' + project,
      'No issue of ' + project + ' belongs to team ' + team + ' in the data the service holds. Pick another team, or all teams. (Service says: ' + err.message + ')',
      { id: 'no-team-work', retry });
  } else if (http === 404 || code === 5) {
    notice('info', 'No data yet for ' + (project || 'this project'),
      'The service has not harvested this project yet. The first harvest runs when the service starts and refreshes follow every few minutes: try again shortly.',
      { id: 'no-data', retry });
  } else {
    notice('error', 'Something went wrong', err.message + ' Try again; if it persists, tell the service operator.', { id: 'error', retry });
  }
}

// ------------------------------------------------------------------- dates

const DAY_MS = 86400000;
function dateOf(text) { return Date.UTC(+text.slice(0, 4), +text.slice(5, 7) - 1, +text.slice(8, 10)); }
/** Monday of the first week of a month named like 2026-03: the week of its first Thursday. */
function monthStart(name) {
  const first = Date.UTC(+name.slice(0, 4), +name.slice(5, 7) - 1, 1);
  const weekday = (new Date(first).getUTCDay() + 6) % 7;
  return first + (((3 - weekday + 7) % 7) - 3) * DAY_MS;
}
/** Monday of an ISO week named like 2026-W05, as a UTC day in ms. */
function isoWeekMonday(name) {
  const year = +name.slice(0, 4), week = +name.slice(6);
  const jan4 = Date.UTC(year, 0, 4);
  const weekday = (new Date(jan4).getUTCDay() + 6) % 7;
  return jan4 - weekday * DAY_MS + (week - 1) * 7 * DAY_MS;
}
/** The month (like 2026-03) an ISO week belongs to: that of its Thursday. */
function monthOfWeek(name) { return new Date(isoWeekMonday(name) + 3 * DAY_MS).toISOString().slice(0, 7); }
/** How many months from `from` to `to` (both like 2026-03), inclusive. */
function monthsBetween(from, to) { return (+to.slice(0, 4) - +from.slice(0, 4)) * 12 + (+to.slice(5, 7) - +from.slice(5, 7)) + 1; }

// ------------------------------------------------------------------- levels

/**
 * The DORA level cut-offs of each chart's measure (the service's level
 * table), best level first: [class, name, edge, how a value compares with
 * the edge to be in the zone]. The deployment chart's measure is
 * deployment days per week, as the level's.
 */
const BANDS = {
  deployment_frequency: { higherIsBetter: true, zones: [['elite', 'Elite', 5, '≥'], ['high', 'High', 1, '≥'], ['medium', 'Medium', 12 / 52, '≥'], ['low', 'Low', 0, '>']] },
  lead_time: { zones: [['elite', 'Elite', 24, '<'], ['high', 'High', 168, '<'], ['medium', 'Medium', 720, '<'], ['low', 'Low', Infinity, '≥']] },
  change_failure_rate: { zones: [['elite', 'Elite', 0.05, '≤'], ['high', 'High', 0.10, '≤'], ['medium', 'Medium', 0.15, '≤'], ['low', 'Low', Infinity, '>']] },
  time_to_restore: { zones: [['elite', 'Elite', 1, '<'], ['high', 'High', 24, '<'], ['medium', 'Medium', 168, '<'], ['low', 'Low', Infinity, '≥']] },
};

/** The zones of a measure as [cls, name, low, high] value ranges. */
function zoneRanges(band) {
  const out = [];
  if (band.higherIsBetter) {
    let high = Infinity;
    for (const [cls, name, edge] of band.zones) { out.push([cls, name, edge, high]); high = edge; }
  } else {
    let low = 0;
    for (const [cls, name, edge] of band.zones) { out.push([cls, name, low, edge]); low = edge; }
  }
  return out;
}

/** Words for the zones, e.g. "Elite < 24.0 h, High < 7.0 days, …". */
function zoneLegend(band, format) {
  return band.zones.map(([, name, edge, op], i) => {
    if (edge === Infinity) return name + ' ' + op + ' ' + format(band.zones[i - 1][2]);
    if (edge === 0) return name + ' above 0';
    return name + ' ' + op + ' ' + format(edge);
  }).join(', ');
}

// ------------------------------------------------------------------- charts

let chartIds = 0;

/**
 * A chart of the series: bars or a line with dots, gaps where a point has
 * no value, the DORA level zones behind it, an optional dashed rolling
 * median, and the markers as labelled vertical lines.
 * `points` are {name, start, days, value|null, rolling?}; `format` turns a value
 * into text.
 */
function chart(o) {
  const { key, title, points, kind, format, markers, unit } = o;
  const id = 'chart-' + (++chartIds);
  const W = 360, H = 190, left = 18, right = 44, top = 30, bottom = 22;
  const plotH = H - top - bottom;
  const values = points.map(p => p.value).filter(v => v !== null);
  const rolling = points.map(p => (p.rolling === undefined ? null : p.rolling)).filter(v => v !== null);
  const max = Math.max(0, ...values, ...rolling);
  const scaleMax = max > 0 ? max * 1.15 : 1;
  const step = (W - left - right) / Math.max(points.length, 1);
  const x = i => left + step * (i + 0.5);
  const y = v => top + plotH * (1 - Math.min(v, scaleMax) / scaleMax);

  const parts = [];
  // Level zones: shaded, each with its name and its edges as dashed lines.
  const band = BANDS[key];
  if (band) {
    for (const [cls, name, low, high] of zoneRanges(band)) {
      if (low >= scaleMax) continue;
      const y1 = y(Math.min(high, scaleMax)), y2 = y(low);
      const zone = [svg('rect', { class: 'zone zone-' + cls, x: left, y: fixed(y1, 1), width: W - left - right, height: fixed(y2 - y1, 1) })];
      if (high < scaleMax) zone.push(svg('line', { class: 'zone-edge', x1: left, y1: fixed(y1, 1), x2: W - right, y2: fixed(y1, 1) }));
      if (y2 - y1 >= 9) zone.push(svg('text', { class: 'zone-label', x: W - right + 3, y: fixed((y1 + y2) / 2 + 3, 1) }, name));
      parts.push(svg('g', { 'data-level': cls }, zone));
    }
  }
  parts.push(
    svg('line', { class: 'axis', x1: left, y1: H - bottom, x2: W - right, y2: H - bottom }),
    svg('line', { class: 'axis', x1: left, y1: top, x2: left, y2: H - bottom }),
  );
  if (kind === 'bars') {
    points.forEach((p, i) => {
      if (p.value === null) return;
      const h = plotH * (Math.min(p.value, scaleMax) / scaleMax);
      parts.push(svg('rect', { class: 'bar-mark', x: fixed(x(i) - step * 0.35, 1), y: fixed(H - bottom - h, 1), width: fixed(step * 0.7, 1), height: fixed(h, 1) }));
    });
  } else {
    parts.push(...lines(points.map(p => p.value), x, y, 'line-mark', true));
  }
  if (rolling.length) parts.push(...lines(points.map(p => (p.rolling === undefined ? null : p.rolling)), x, y, 'rolling-mark', false));

  // Markers: a vertical line at the marker's day, its label above the plot
  // (two rows, so that neighbours do not overlap).
  const shownMarkers = [];
  (markers || []).forEach(m => {
    const day = dateOf(m.date);
    const i = points.findIndex(p => day >= p.start && day < p.start + p.days * DAY_MS);
    if (i < 0) return;
    const at = left + step * (i + ((day - points[i].start) / DAY_MS + 0.5) / points[i].days);
    const row = shownMarkers.length % 2;
    const anchor = at > W * 0.6 ? 'end' : 'start';
    shownMarkers.push(m);
    parts.push(svg('g', { class: 'marker', 'data-date': m.date, 'data-label': m.label }, [
      svg('title', {}, m.date + ': ' + m.label),
      svg('line', { class: 'marker-line', x1: fixed(at, 1), y1: top - 12 + row * 10, x2: fixed(at, 1), y2: H - bottom }),
      svg('text', { class: 'marker-label', x: fixed(at + (anchor === 'end' ? -3 : 3), 1), y: 10 + row * 10, 'text-anchor': anchor }, m.label),
    ]));
  });

  const first = points.length ? points[0].name : '';
  const last = points.length ? points[points.length - 1].name : '';
  parts.push(
    svg('text', { class: 'tick', x: left - 4, y: H - bottom, 'text-anchor': 'end' }, '0'),
    svg('text', { class: 'tick', x: left, y: H - 6 }, first),
    svg('text', { class: 'tick', x: W - right, y: H - 6, 'text-anchor': 'end' }, last),
    svg('text', { class: 'tick', x: left + 2, y: y(max) - 3 }, values.length ? 'highest ' + format(max) : 'no values'),
  );

  const latest = points.length ? points[points.length - 1].value : null;
  const per = o.per || 'week';
  const summary = (values.length
    ? title + ' per ' + per + ' from ' + first + ' to ' + last + ': lowest ' + format(Math.min(...values)) + ', highest ' + format(Math.max(...values)) +
      ', latest ' + per + ' ' + (latest === null ? 'no value' : format(latest)) + '; ' + plural(points.length - values.length, per, per + 's') + ' without a value.'
    : title + ': no ' + per + ' of the period has a value.') +
    (band ? ' DORA level zones: ' + zoneLegend(band, format) + '.' : '') +
    (shownMarkers.length ? ' Markers: ' + shownMarkers.map(m => m.date + ' ' + m.label).join('; ') + '.' : '');

  const picture = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, width: W, height: H, role: 'img', 'aria-labelledby': id + '-title ' + id + '-desc', focusable: 'false' },
    [svg('title', { id: id + '-title' }, title + ' per ' + per), svg('desc', { id: id + '-desc' }, summary)].concat(parts));

  const head = [el('th', { scope: 'col' }, per === 'week' ? 'Week' : 'Month'), el('th', { scope: 'col' }, title)];
  if (rolling.length || o.rollingTitle) head.push(el('th', { scope: 'col' }, o.rollingTitle));
  const rows = points.map(p => el('tr', {}, [
    el('td', {}, p.name),
    el('td', { 'data-raw': p.value === null ? '' : String(p.value) }, p.value === null ? '—' : format(p.value)),
    p.rolling === undefined ? null : el('td', { 'data-raw': p.rolling === null ? '' : String(p.rolling) }, p.rolling === null ? '—' : format(p.rolling)),
  ]));
  const table = el('table', {}, [el('thead', {}, el('tr', {}, head)), el('tbody', {}, rows)]);
  const save = el('button', { type: 'button', class: 'png', 'data-chart': key }, 'Save as PNG');
  save.addEventListener('click', () => savePng(picture, o.fileName + '.png'));
  return el('figure', { class: 'chart', 'data-chart': key }, [
    el('figcaption', {}, [el('h3', {}, title), save, unit ? el('p', { class: 'chart-unit' }, unit) : null]),
    picture,
    band ? el('p', { class: 'zones' }, 'DORA levels: ' + zoneLegend(band, format) + '.') : null,
    el('details', {}, [el('summary', {}, 'Show the values as a table'), table]),
  ]);
}

/** Polylines through the non-null values (a gap splits them), with dots. */
function lines(values, x, y, cls, dots) {
  const out = [];
  let run = [];
  const flush = () => {
    if (run.length > 1) out.push(svg('polyline', { class: cls, points: run.join(' ') }));
    run = [];
  };
  values.forEach((v, i) => {
    if (v === null) { flush(); return; }
    run.push(fixed(x(i), 1) + ',' + fixed(y(v), 1));
    if (dots) out.push(svg('circle', { class: 'dot-mark', cx: fixed(x(i), 1), cy: fixed(y(v), 1), r: 2.5 }));
  });
  flush();
  return out;
}

// ------------------------------------------------------------------ exports

/** Offers `blob` as a download named `name`. */
function download(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = el('a', { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

/** The presentation attributes that carry a chart's look into a PNG. */
const PAINT = ['fill', 'fill-opacity', 'stroke', 'stroke-width', 'stroke-dasharray', 'opacity', 'font-size', 'font-family', 'font-weight'];

/**
 * Saves a chart as a PNG: the SVG, with its computed styles copied into
 * presentation attributes (no inline style, so the page's strict policy
 * holds), as a data: image drawn on a canvas at twice its size.
 */
function savePng(picture, name) {
  const copy = picture.cloneNode(true);
  const from = [picture, ...picture.querySelectorAll('*')];
  const to = [copy, ...copy.querySelectorAll('*')];
  from.forEach((node, i) => {
    const style = getComputedStyle(node);
    for (const prop of PAINT) {
      const v = style.getPropertyValue(prop);
      if (v) to[i].setAttribute(prop, v);
    }
  });
  const box = picture.viewBox.baseVal;
  copy.setAttribute('xmlns', SVG_NS);
  const text = new XMLSerializer().serializeToString(copy);
  const image = new Image();
  image.onload = () => {
    const scale = 2;
    const canvas = el('canvas', { width: box.width * scale, height: box.height * scale });
    const ctx = canvas.getContext('2d');
    ctx.fillStyle = '#ffffff';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.drawImage(image, 0, 0, canvas.width, canvas.height);
    canvas.toBlob(blob => download(blob, name), 'image/png');
  };
  image.src = 'data:image/svg+xml;base64,' + btoa(unescape(encodeURIComponent(text)));
}

/** A CSV cell: numbers as the API sent them, text quoted when needed. */
function csvCell(v) {
  if (v === null || v === undefined) return '';
  const t = String(v);
  return /[",\n]/.test(t) ? '"' + t.replace(/"/g, '""') + '"' : t;
}

/** The CSV columns, documented in the README: name and how to read a point. */
const CSV_COLUMNS = [
  ['weeks', p => count(p.weeks)],
  ['deployments', p => count(p.figures.deployments)],
  ['deployment_days', p => count(p.figures.deploymentDays)],
  ['deployments_per_week', p => count(p.figures.deploymentsPerWeek)],
  ['lead_time_median_hours', p => opt((p.figures.leadTime || {}).medianHours)],
  ['lead_time_count', p => count((p.figures.leadTime || {}).count)],
  ['lead_time_rolling_median_hours', p => opt((p.rollingLeadTime || {}).medianHours)],
  ['lead_time_rolling_count', p => count((p.rollingLeadTime || {}).count)],
  ['change_failure_failed', p => count((p.figures.changeFailure || {}).failed)],
  ['change_failure_deployments', p => count((p.figures.changeFailure || {}).deployments)],
  ['change_failure_rate', p => opt((p.figures.changeFailure || {}).rate)],
  ['time_to_restore_median_hours', p => opt((p.figures.timeToRestore || {}).medianHours)],
  ['time_to_restore_count', p => count((p.figures.timeToRestore || {}).count)],
  ['time_to_restore_rolling_median_hours', p => opt((p.rollingTimeToRestore || {}).medianHours)],
  ['time_to_restore_rolling_count', p => count((p.rollingTimeToRestore || {}).count)],
  ['incidents', p => count(p.figures.incidents)],
  ['open_incidents', p => count(p.figures.openIncidents)],
  ['completed', p => count(p.figures.completed)],
  ['reopened', p => count(p.figures.reopened)],
  ['reopen_rate', p => opt(p.figures.reopenRate)],
  ['rework_deployments', p => count((p.figures.rework || {}).rework)],
  ['rework_rate', p => opt((p.figures.rework || {}).rate)],
  ['ai_involved', p => count(p.figures.aiInvolved)],
  ['ai_share', p => opt(p.figures.aiShare)],
];

function exportCsv() {
  const v = state.view;
  if (!v) return;
  const header = ['projects', 'team', v.per].concat(CSV_COLUMNS.map(c => c[0]));
  const lines = [header.join(',')].concat(v.points.map(p =>
    [v.keys.join('+'), v.team, p.name].concat(CSV_COLUMNS.map(c => c[1](p))).map(csvCell).join(',')));
  download(new Blob([lines.join('\r\n') + '\r\n'], { type: 'text/csv' }), v.fileName + '.csv');
}

function exportMarkdown() {
  const v = state.view;
  if (!v) return;
  download(new Blob([markdown(v)], { type: 'text/markdown' }), v.fileName + '.md');
}

/** A Markdown table cell: pipes escaped, one line. */
function mdCell(t) { return String(t).replace(/\|/g, '\\|').replace(/\s+/g, ' '); }

/** The Markdown summary: the four keys with their levels, and the AI verdicts. */
function markdown(v) {
  const r = v.response;
  const f = r.combined || {};
  const out = ['# DORA metrics: ' + v.keys.join(', ') + (v.team ? ', team ' + v.team : ''), '',
    periodText(r) + (v.keys.length > 1 ? ' Projects combined: counts summed, durations merged.' : '') + (v.team ? ' ' + teamNote(v.team) : ''), '',
    '| Key | Value | DORA level | Change |', '|---|---|---|---|'];
  for (const k of KEYS) {
    const read = cardReading(k, f, r.previous || {}, v.than);
    out.push('| ' + [k.title, read.valueText + (read.standIn ? ' (' + read.standIn + ')' : ''), read.levelName, read.change].map(mdCell).join(' | ') + ' |');
  }
  out.push('', 'Levels: ' + (r.levelsSource || '') + '.');
  const ai = r.aiImpact || {};
  out.push('', '## AI impact', '');
  if (!ai.available) {
    out.push(ai.note || 'No AI rollout date is known for this view.');
  } else {
    const overall = ai.overall || {};
    out.push('Rollout: ' + ai.rolloutDate + '. Before: ' + window_(ai.before) + '. After: ' + window_(ai.after) + '.', '', overall.sentence || '', '');
    out.push('Speed: ' + (DIRECTIONS[overall.speed] || DIRECTIONS.DIRECTION_NOT_ENOUGH_DATA)[1] + '. Stability: ' + (DIRECTIONS[overall.stability] || DIRECTIONS.DIRECTION_NOT_ENOUGH_DATA)[1] + '.', '');
    out.push('### Before and after the rollout', '');
    for (const c of ai.comparisons || []) out.push('- **' + (c.label || c.metric) + '**: ' + (VERDICTS[c.verdict] || VERDICTS.VERDICT_NOT_ENOUGH_DATA)[1] + '. ' + (c.sentence || ''));
    out.push('', '### AI-involved work against other work, after the rollout', '');
    for (const c of ai.aiVsOther || []) out.push('- **' + (c.label || c.metric) + '**: ' + (VERDICTS[c.verdict] || VERDICTS.VERDICT_NOT_ENOUGH_DATA)[1] + '. ' + (c.sentence || ''));
  }
  const markers = r.markers || [];
  if (markers.length) {
    out.push('', '## Markers', '');
    for (const m of markers) out.push('- ' + m.date + ': ' + m.label);
  }
  return out.join('\n') + '\n';
}

// -------------------------------------------------------------------- cards

/** The four keys: how to read each from period figures. */
const KEYS = [
  {
    id: 'deployment_frequency', title: 'Deployment frequency', level: 'deploymentFrequency', higherIsBetter: true,
    value: f => count(f.deploymentsPerWeek), text: perWeekText,
    detail: f => plural(count(f.deployments), 'deployment', 'deployments') + ' on ' + plural(count(f.deploymentDays), 'day', 'days'),
    empty: 'No deployment in the period.',
  },
  {
    id: 'lead_time', title: 'Lead time for changes', level: 'leadTime', higherIsBetter: false,
    value: f => opt((f.leadTime || {}).medianHours), text: hoursText,
    detail: f => 'median of ' + plural(count((f.leadTime || {}).count), 'completed item', 'completed items') +
      (opt((f.leadTime || {}).p90Hours) === null ? '' : '; 90 % within ' + joined(hoursText(opt(f.leadTime.p90Hours)))),
    empty: 'No work item completed in the period.',
  },
  {
    id: 'change_failure_rate', title: 'Change failure rate', level: 'changeFailureRate', higherIsBetter: false,
    value: f => opt((f.changeFailure || {}).rate), text: percentText,
    detail: f => {
      const c = f.changeFailure || {};
      const ways = [[c.failedByVersion, 'by affected version'], [c.failedByTime, 'by time'], [c.failedByTransition, 'rolled back']]
        .filter(([n]) => count(n) > 0).map(([n, how]) => count(n) + ' ' + how);
      return count(c.failed) + ' of ' + plural(count(c.deployments), 'deployment', 'deployments') + ' failed' +
        (ways.length ? ' (' + ways.join(', ') + ')' : '');
    },
    empty: 'No deployment in the period.',
    // Without deployments there is no change failure rate: the re-open
    // rate stands in, always called by its own name.
    standIn: f => (count((f.changeFailure || {}).deployments) === 0 ? opt(f.reopenRate) : undefined),
    standInDetail: f => 'No deployments in the period, so no change failure rate. In its place, the re-open rate: ' +
      count(f.reopened) + ' of ' + plural(count(f.completed), 'completed item', 'completed items') + ' re-opened. It is a stand-in, not a change failure rate.',
  },
  {
    id: 'time_to_restore', title: 'Time to restore', level: 'timeToRestore', higherIsBetter: false,
    value: f => opt((f.timeToRestore || {}).medianHours), text: hoursText,
    detail: f => 'median of ' + plural(count((f.timeToRestore || {}).count), 'restored incident', 'restored incidents'),
    empty: 'No incident restored in the period.',
  },
];

/** How a change against the previous period reads: text and class. */
function change(key, current, previous, than) {
  if (current === null || previous === null) return { text: 'No figure for ' + than + ' to compare with.', cls: '' };
  if (previous === 0) return { text: current === 0 ? 'Same as ' + than + '.' : 'Up from zero in ' + than + '.', cls: '' };
  const rel = (current - previous) / previous;
  if (Math.abs(rel) < 0.005) return { text: 'Same as ' + than + '.', cls: '' };
  const up = rel > 0;
  const better = up === key.higherIsBetter;
  return { text: (up ? 'Up ' : 'Down ') + fixed(Math.abs(rel) * 100, 0) + ' % on ' + than + ' (' + (better ? 'better' : 'worse') + ').', cls: better ? 'better' : 'worse', up };
}

/** Everything a card, the wallboard and the summary say about one key. */
function cardReading(key, figures, previous, than) {
  const value = key.value(figures);
  const text = key.text(value);
  const [levelCls, levelName] = LEVELS[(figures.levels || {})[key.level]] || LEVELS.LEVEL_UNKNOWN;
  const reading = { key, value, text, levelCls, levelName, valueText: joined(text), detail: value === null ? key.empty : key.detail(figures) };
  const standIn = key.standIn ? key.standIn(figures) : undefined;
  if (standIn !== undefined) {
    reading.standIn = standIn === null ? 'no re-open rate either: no completed item' : 'stand-in: re-open rate ' + joined(percentText(standIn));
    reading.standInValue = standIn;
    reading.valueText = 'no deployments';
    reading.detail = key.standInDetail(figures);
    const before = key.standIn(previous);
    const c = change({ higherIsBetter: false }, standIn, before === undefined ? null : before, than);
    reading.change = 'Re-open rate: ' + c.text;
    reading.changeCls = c.cls;
    reading.up = c.up;
  } else {
    const c = change(key, value, key.value(previous), than);
    reading.change = c.text;
    reading.changeCls = c.cls;
    reading.up = c.up;
  }
  return reading;
}

function levelBadge(cls, name) {
  return el('span', { class: 'level level-' + cls }, 'DORA level: ' + name);
}

function changeLine(reading) {
  return el('p', { class: 'change ' + reading.changeCls }, [
    reading.up === undefined ? null : el('span', { 'aria-hidden': 'true' }, reading.up ? '▲ ' : '▼ '), reading.change]);
}

function card(key, figures, previous, than, keys, team) {
  const r = cardReading(key, figures, previous, than);
  const body = [el('h3', { id: 'card-' + key.id }, key.title)];
  if (r.standInValue !== undefined) {
    const t = r.standInValue === null ? null : percentText(r.standInValue);
    body.push(
      el('p', { class: 'no-deployments' }, 'No deployments in the period'),
      el('p', { class: 'stand-in-label' }, 'Stand-in: re-open rate'),
      el('p', { class: 'stand-in-value', 'data-raw': r.standInValue === null ? '' : String(r.standInValue) },
        t === null ? ['—'] : [t.number, el('span', { class: 'unit' }, ' ' + t.unit)]),
    );
  } else {
    body.push(el('p', { class: 'value', 'data-raw': r.value === null ? '' : String(r.value) },
      r.text === null ? ['—'] : [r.text.number, el('span', { class: 'unit' }, ' ' + r.text.unit)]));
  }
  body.push(levelBadge(r.levelCls, r.levelName), el('p', { class: 'detail' }, r.detail), changeLine(r),
    el('p', { class: 'scope' }, scopeText(keys, team)));
  return el('article', { class: 'card', 'data-key': key.id, 'aria-labelledby': 'card-' + key.id }, body);
}

/** Which projects (and team) a figure covers, in words. */
function scopeText(keys, team) {
  const projects = keys.length === 1 ? 'project ' + keys[0] : plural(keys.length, 'project', 'projects') + ' combined: ' + keys.join(', ');
  return team ? 'Team ' + team + ' in ' + projects : projects.charAt(0).toUpperCase() + projects.slice(1);
}

/** Said wherever team figures are shown (a deployment counts for each team whose work it ships). */
function teamNote(team) {
  return 'Team ' + team + ': only its work counts, and a deployment counts for every team whose work it ships, ' +
    "so the teams' figures need not add up to the project's.";
}

// ------------------------------------------------------------------- render

/** The series of an answer as chart points, weekly or monthly. */
function seriesPoints(r, per) {
  if (per === 'month') {
    const periodStart = isoWeekMonday((r.period || {}).fromWeek || '1970-W01');
    return (r.monthlySeries || []).map((m, i) => ({
      // A month cut by a period of weeks starts at the period's first week.
      name: m.month, start: i === 0 ? Math.max(periodStart, monthStart(m.month)) : monthStart(m.month),
      days: 7 * count(m.weeks), weeks: count(m.weeks), figures: m.figures || {},
      rollingLeadTime: m.rollingLeadTime || {}, rollingTimeToRestore: m.rollingTimeToRestore || {},
    }));
  }
  return (r.series || []).map(s => ({
    name: s.week, start: isoWeekMonday(s.week), days: 7, weeks: 1, figures: s.figures || {},
    rollingLeadTime: s.rollingLeadTime || {}, rollingTimeToRestore: s.rollingTimeToRestore || {},
  }));
}

function daysText(v) {
  const t = fixed(v, Number.isInteger(v) ? 0 : 2);
  return t + (t === '1' ? ' day' : ' days');
}

/** The four charts of a view. */
function charts(v, only) {
  const pts = (read, roll) => v.points.map(p => Object.assign(
    { name: p.name, start: p.start, days: p.days, value: read(p) },
    roll ? { rolling: opt((roll(p) || {}).medianHours) } : {}));
  const rollingTitle = '4-' + v.per + ' rolling median';
  const defs = [
    { key: 'deployment_frequency', title: 'Deployment days per week', kind: 'bars', format: daysText,
      unit: 'Days with at least one deployment, per week', points: pts(p => count(p.figures.deploymentDays) / Math.max(count(p.weeks), 1)) },
    { key: 'lead_time', title: 'Lead time (median)', kind: 'line', format: x => joined(hoursText(x)), rollingTitle,
      points: pts(p => opt((p.figures.leadTime || {}).medianHours), p => p.rollingLeadTime) },
    { key: 'change_failure_rate', title: 'Change failure rate', kind: 'line', format: x => joined(percentText(x)),
      points: pts(p => opt((p.figures.changeFailure || {}).rate)) },
    { key: 'time_to_restore', title: 'Time to restore (median)', kind: 'line', format: x => joined(hoursText(x)), rollingTitle,
      points: pts(p => opt((p.figures.timeToRestore || {}).medianHours), p => p.rollingTimeToRestore) },
  ];
  return defs.filter(d => !only || d.key === only).map(d => chart(Object.assign(d, {
    markers: v.response.markers || [], per: v.per, fileName: v.fileName + '-' + d.key.replace(/_/g, '-'),
  })));
}

/** A period in words: its weeks, or its months and their weeks. */
function periodText(r) {
  const p = r.period || {};
  const pp = r.previousPeriod || {};
  const weeks = plural(count(p.weeks), 'week', 'weeks') + ', ' + (p.reportTz || 'UTC');
  const span = p.fromMonth
    ? 'From ' + p.fromMonth + ' to ' + p.toMonth + ' (' + plural(monthsBetween(p.fromMonth, p.toMonth), 'month', 'months') + ': ' + p.fromWeek + ' to ' + p.toWeek + ', ' + weeks + ')'
    : 'From ' + p.fromWeek + ' to ' + p.toWeek + ' (' + weeks + ')';
  const before = pp.fromMonth
    ? pp.fromMonth + ' to ' + pp.toMonth + ' (' + pp.fromWeek + ' to ' + pp.toWeek + ')'
    : pp.fromWeek + ' to ' + pp.toWeek;
  return span + (p.partial ? ', including the current unfinished week' : '') + '; changes compare with ' + before + '.';
}

function renderOverview(v) {
  const r = v.response;
  const f = r.combined || {};
  const prev = r.previous || {};
  $('period').textContent = periodText(r);
  $('cards').replaceChildren(...KEYS.map(k => card(k, f, prev, v.than, v.keys, v.team)));
  $('team-note').hidden = !v.team;
  $('team-note').textContent = v.team ? teamNote(v.team) : '';
  $('trends-title').textContent = (v.per === 'week' ? 'Weekly' : 'Monthly') + ' trends';
  chartIds = 0;
  $('charts').replaceChildren(...charts(v));

  const item = (label, value, id, note) =>
    el('div', { 'data-count': id }, [el('dt', {}, label), el('dd', {}, [value, note ? el('span', { class: 'note' }, note) : null])]);
  const rate = x => (opt(x) === null ? '—' : joined(percentText(opt(x))));
  $('counts').replaceChildren(
    item('Incidents', String(count(f.incidents)), 'incidents'),
    item('Incidents still open', String(count(f.openIncidents)), 'open-incidents'),
    item('Completed work items', String(count(f.completed)), 'completed'),
    item('Excluded issues', String(count(f.excluded)), 'excluded'),
    item('Re-open rate', rate(f.reopenRate), 'reopen-rate', plural(count(f.reopened), 'item', 'items') + ' re-opened'),
    item('Deployments', String(count(f.deployments)), 'deployments'),
    item('Rework rate', rate((f.rework || {}).rate), 'rework-rate', count((f.rework || {}).rework) + ' rework deployments'),
    item('AI-involved share', rate(f.aiShare), 'ai-share', plural(count(f.aiInvolved), 'item', 'items') + ' with AI involvement'),
  );
  Explain.attach(v); // explain.js: the items behind each card and count
}

function metricText(metric, v) {
  if (v === null) return 'no data';
  if (metric.endsWith('_hours')) return joined(hoursText(v));
  if (metric.endsWith('_rate') || metric.endsWith('_share')) return joined(percentText(v));
  if (metric.endsWith('_per_week')) return joined(perWeekText(v));
  return fixed(v, 2);
}

const TESTS = {
  STAT_TEST_MANN_WHITNEY_U: 'Mann-Whitney U test',
  STAT_TEST_TWO_PROPORTION_Z: 'two-proportion z-test',
  STAT_TEST_FISHER_EXACT: "Fisher's exact test",
};
const VERDICTS = {
  VERDICT_IMPROVED: ['improved', 'Improved'],
  VERDICT_WORSENED: ['worsened', 'Worsened'],
  VERDICT_HELD_STEADY: ['held-steady', 'Held steady'],
  VERDICT_NOT_ENOUGH_DATA: ['not-enough-data', 'Not enough data'],
};
const DIRECTIONS = {
  DIRECTION_BETTER: ['better', 'Better'],
  DIRECTION_WORSE: ['worse', 'Worse'],
  DIRECTION_MIXED: ['mixed', 'Mixed'],
  DIRECTION_UNCHANGED: ['unchanged', 'Unchanged'],
  DIRECTION_NOT_ENOUGH_DATA: ['not-enough-data', 'Not enough data'],
};
function badge(table, value, fallback) {
  const [cls, name] = table[value] || table[fallback];
  return el('span', { class: 'verdict verdict-' + cls }, name);
}

function comparisonItem(c, beforeName, afterName) {
  const before = opt(c.before), after = opt(c.after), rel = opt(c.relativeChange);
  const test = TESTS[c.test];
  return el('li', { 'data-metric': c.metric }, [
    el('h4', {}, [c.label || c.metric, badge(VERDICTS, c.verdict, 'VERDICT_NOT_ENOUGH_DATA')]),
    el('p', { class: 'figures' }, beforeName + ': ' + metricText(c.metric, before) + ' → ' + afterName + ': ' + metricText(c.metric, after) +
      (rel === null ? '' : ' (' + (rel > 0 ? '+' : '') + fixed(rel * 100, 0) + ' %)')),
    el('p', { class: 'sentence' }, c.sentence || ''),
    el('p', { class: 'test' }, (test ? test + (opt(c.pValue) === null ? '' : opt(c.pValue) < 0.001 ? ', p < 0.001' : ', p = ' + fixed(opt(c.pValue), 3)) : 'no significance test') +
      '; n = ' + count(c.beforeN) + ' and ' + count(c.afterN)),
  ]);
}

function window_(w) { return w && w.fromWeek ? w.fromWeek + ' to ' + w.toWeek + ' (' + plural(count(w.weeks), 'week', 'weeks') + ')' : 'no weeks'; }

function renderAi(r) {
  const ai = r.aiImpact || {};
  const box = $('ai');
  if (!ai.available) {
    box.replaceChildren(el('div', { class: 'notice info', 'data-kind': 'ai-unavailable' }, [
      el('h2', {}, 'No AI impact comparison'),
      el('p', {}, ai.note || 'No AI rollout date is known for this project.'),
      el('p', {}, 'To compare, set the date AI tools were rolled out: ai.rollout_date, or projects.<KEY>.ai_rollout_date, in the service configuration.'),
    ]));
    return;
  }
  const overall = ai.overall || {};
  box.replaceChildren(
    el('div', { class: 'overall' }, [
      el('h2', {}, 'AI impact since ' + ai.rolloutDate),
      el('p', { class: 'headline', id: 'ai-overall-sentence' }, overall.sentence || ''),
      el('p', {}, ['Speed: ', badge(DIRECTIONS, overall.speed, 'DIRECTION_NOT_ENOUGH_DATA'), '  Stability: ', badge(DIRECTIONS, overall.stability, 'DIRECTION_NOT_ENOUGH_DATA')]),
      el('p', {}, 'Before: ' + window_(ai.before) + '. After: ' + window_(ai.after) + '.'),
      ai.note ? el('p', {}, ai.note) : null,
    ]),
    el('h3', {}, 'Before and after the rollout'),
    el('ul', { class: 'comparisons', id: 'ai-comparisons' }, (ai.comparisons || []).map(c => comparisonItem(c, 'before', 'after'))),
    el('h3', {}, 'AI-involved work against other work, after the rollout'),
    el('ul', { class: 'comparisons', id: 'ai-vs-other' }, (ai.aiVsOther || []).map(c => comparisonItem(c, 'other work', 'AI-involved'))),
  );
}

function renderFreshness(r) {
  const fresh = r.freshness || {};
  const lines = (fresh.projects || []).map(p => {
    const when = p.lastHarvest ? 'harvested ' + (ageText(opt(p.ageSeconds)) || '') + ' (' + timeText(p.lastHarvest) + ')' : 'not harvested yet';
    const stale = p.definitionsStale ? '; computed with older definitions (' + p.definitionsVersion + '), the next refresh recomputes it' : '';
    return el('p', { 'data-project': p.projectKey }, p.projectKey + ': ' + when + stale + '.');
  });
  $('freshness').replaceChildren(...lines,
    el('p', { id: 'definitions-version' }, 'Definitions version ' + (fresh.definitionsVersion || 'unknown') + '. Levels: ' + (r.levelsSource || '') + '.'));
}

// ------------------------------------------------------------------- flows

/** At most this many projects in one view. */
const MAX_VIEW_PROJECTS = 10;
/** The wallboard reloads its figure this often. */
const WALLBOARD_REFRESH_MS = 5 * 60 * 1000;
const WEEK_PRESETS = [4, 13, 26, 52];
const MONTH_PRESETS = [3, 6, 12];
const WEEK = /^\d{4}-W\d{2}$/;
const MONTH = /^\d{4}-\d{2}$/;

/**
 * A period picked: `{ weeks }`, `{ months }`, `{ from, to }` (weeks) or
 * `{ fromMonth, toMonth }`, with `per` ('week' or 'month') for the series.
 * Its API query, its name in file names, and its place in the address.
 */
function periodQuery(p) {
  const by = p.per === 'month' ? { query: '&granularity=GRANULARITY_MONTH', name: '-monthly', hash: '&by=month' } : { query: '', name: '', hash: '' };
  let q;
  if (p.from) q = { query: 'from_week=' + encodeURIComponent(p.from) + '&to_week=' + encodeURIComponent(p.to), name: p.from + '-' + p.to, hash: 'from=' + p.from + '&to=' + p.to };
  else if (p.fromMonth) q = { query: 'from_month=' + encodeURIComponent(p.fromMonth) + '&to_month=' + encodeURIComponent(p.toMonth), name: p.fromMonth + '-' + p.toMonth, hash: 'from_month=' + p.fromMonth + '&to_month=' + p.toMonth };
  else if (p.months) q = { query: 'months=' + p.months, name: 'last-' + p.months + '-months', hash: 'months=' + p.months };
  else q = { query: 'weeks=' + p.weeks, name: 'last-' + p.weeks + '-weeks', hash: 'weeks=' + p.weeks };
  return { query: q.query + by.query, name: q.name + by.name, hash: q.hash + by.hash };
}

function readHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  const keys = (params.get('projects') || params.get('project') || '').split(',').filter(Boolean);
  const weeks = Number(params.get('weeks'));
  const months = Number(params.get('months'));
  const per = params.get('by') === 'month' ? 'month' : 'week';
  const pair = (a, b, re) => re.test(params.get(a) || '') && re.test(params.get(b) || '');
  let period = null;
  if (pair('from', 'to', WEEK)) period = { from: params.get('from'), to: params.get('to'), per };
  else if (pair('from_month', 'to_month', MONTH)) period = { fromMonth: params.get('from_month'), toMonth: params.get('to_month'), per };
  else if (MONTH_PRESETS.includes(months)) period = { months, per };
  else if (WEEK_PRESETS.includes(weeks)) period = { weeks, per };
  return { keys, period, team: params.get('team') || '' };
}
function writeHash() {
  history.replaceState(null, '', '#projects=' + state.keys.map(encodeURIComponent).join(',') + '&' + periodQuery(state.period).hash +
    (state.team ? '&team=' + encodeURIComponent(state.team) : ''));
}

/** A team name as part of a file name. */
function fileSafe(name) { return name.replace(/[^A-Za-z0-9_.-]+/g, '-'); }

/** The figures of `keys` (and `team`, '' for all work) over `period`, ready to draw. */
async function fetchView(keys, period, team) {
  const q = periodQuery(period);
  const r = await api('/v1/metrics?' + keys.map(k => 'project_keys=' + encodeURIComponent(k)).join('&') + '&' + q.query + '&include_series=true' +
    (team ? '&team=' + encodeURIComponent(team) : ''));
  const p = r.period || {};
  const per = period.per === 'month' ? 'month' : 'week';
  return {
    keys, team: team || null, response: r, per, points: seriesPoints(r, per),
    than: 'the previous ' + (p.fromMonth ? plural(monthsBetween(p.fromMonth, p.toMonth), 'month', 'months') : plural(count(p.weeks), 'week', 'weeks')),
    fileName: 'dora-' + keys.join('-') + (team ? '-team-' + fileSafe(team) : '') + '-' + q.name,
  };
}

async function loadMetrics() {
  const seq = ++state.seq;
  const keys = state.keys.slice();
  const period = state.period;
  const team = state.team;
  writeHash();
  document.body.dataset.state = 'loading';
  document.body.setAttribute('aria-busy', 'true');
  try {
    const v = await fetchView(keys, period, team);
    if (seq !== state.seq) return;
    clearNotice();
    state.view = v;
    renderOverview(v);
    renderAi(v.response);
    renderFreshness(v.response);
    $('content').hidden = false;
    document.body.dataset.loaded = keys.join(',') + '|' + periodQuery(period).hash + (team ? '&team=' + team : '');
    document.body.dataset.state = 'ready';
  } catch (err) {
    if (seq !== state.seq) return;
    state.view = null;
    $('freshness').replaceChildren();
    showError(err, keys.join(', '), loadMetrics, team);
  } finally {
    if (seq === state.seq) document.body.removeAttribute('aria-busy');
  }
}

function renderProjectPicker() {
  const full = state.keys.length >= MAX_VIEW_PROJECTS;
  $('project-list').replaceChildren(...state.projects.map(k => {
    const on = state.keys.includes(k);
    const box = el('input', { type: 'checkbox', id: 'project-' + k, value: k, checked: on, disabled: !on && full });
    box.addEventListener('change', () => {
      if (box.checked) state.keys = state.projects.filter(p => p === k || state.keys.includes(p));
      else if (state.keys.length > 1) state.keys = state.keys.filter(p => p !== k);
      else { box.checked = true; return; }
      renderProjectPicker();
      loadTeams().then(loadMetrics);
    });
    return el('label', { class: 'project-choice', for: 'project-' + k }, [box, ' ' + k]);
  }));
  $('project-limit').hidden = !full;
  $('project-summary').textContent = state.keys.length ? state.keys.join(', ') : '—';
}

/**
 * The teams of the selected projects (ListTeams), in the team list. A team
 * picked that has no work in them is dropped. Without teams (no `teams`
 * hook in the definitions) the list says so.
 */
async function loadTeams() {
  const seq = ++state.teamSeq;
  let teams;
  try {
    teams = ((await api('/v1/teams?' + state.keys.map(k => 'project_keys=' + encodeURIComponent(k)).join('&'))).teams || []).map(t => t.name);
  } catch (err) {
    teams = null;
  }
  if (seq !== state.teamSeq) return;
  state.teams = teams || [];
  if (!state.teams.includes(state.team)) state.team = '';
  renderTeamPicker(teams === null ? 'Teams unavailable' : 'No teams defined');
}

function renderTeamPicker(emptyText) {
  const none = !state.teams.length;
  $('team').replaceChildren(
    el('option', { value: '' }, none ? emptyText : 'All teams'),
    ...state.teams.map(t => el('option', { value: t }, t)));
  $('team').value = state.team;
  $('team').disabled = none;
}

/** The period list's entry for a period. */
function periodChoice(p) {
  if (p.from) return 'custom-weeks';
  if (p.fromMonth) return 'custom-months';
  return p.months ? 'm' + p.months : String(p.weeks);
}

/** Shows the range fields for weeks or months, filled with `from`/`to`. */
function showRange(unit, from, to) {
  for (const id of ['from', 'to']) $(id).type = unit;
  $('from').value = from || '';
  $('to').value = to || '';
  $('range').hidden = false;
}

function renderPeriodPicker() {
  const p = state.period;
  $('weeks').value = periodChoice(p);
  $('granularity').value = p.per === 'month' ? 'month' : 'week';
  if (p.from) showRange('week', p.from, p.to);
  else if (p.fromMonth) showRange('month', p.fromMonth, p.toMonth);
  else $('range').hidden = true;
}

async function loadProjects() {
  document.body.dataset.state = 'loading';
  let list;
  try {
    list = (await api('/v1/projects')).projects || [];
  } catch (err) {
    showError(err, null, loadProjects);
    return;
  }
  state.projects = list.map(p => p.projectKey);
  if (!state.projects.length) {
    $('projects').disabled = true;
    notice('info', 'No data yet',
      'The service holds no project you can browse yet. The first harvest runs when the service starts and takes a minute or two: try again shortly. ' +
      'If the list stays empty, check that the service can reach Jira and that its harvest.projects setting names projects you can browse.',
      { id: 'no-projects', retry: loadProjects });
    return;
  }
  $('projects').disabled = false;
  const wanted = readHash();
  const keys = state.projects.filter(k => wanted.keys.includes(k)).slice(0, MAX_VIEW_PROJECTS);
  state.keys = keys.length ? keys : [state.projects[0]];
  state.period = wanted.period || state.period;
  state.team = wanted.team;
  renderProjectPicker();
  renderPeriodPicker();
  await loadTeams();
  await loadMetrics();
}

function selectTab(tab, focus) {
  for (const t of document.querySelectorAll('[role="tab"]')) {
    const on = t === tab;
    t.setAttribute('aria-selected', on ? 'true' : 'false');
    t.tabIndex = on ? 0 : -1;
    $(t.getAttribute('aria-controls')).hidden = !on;
  }
  if (focus) tab.focus();
}

// ---------------------------------------------------------------- wallboard

/** `/?wallboard=1&project=PAY&metric=lead_time`: one figure for a TV screen. */
async function loadWallboard(params) {
  const keys = (params.get('project') || params.get('projects') || '').split(',').map(k => k.trim()).filter(Boolean);
  const key = KEYS.find(k => k.id === params.get('metric'));
  const weeks = Number(params.get('weeks'));
  const period = { weeks: WEEK_PRESETS.includes(weeks) ? weeks : 13, per: 'week' };
  const team = (params.get('team') || '').trim();
  if (!keys.length || !key) {
    notice('error', 'This wallboard address is incomplete',
      'Name a project and one of the metrics ' + KEYS.map(k => k.id).join(', ') + ', for example ?wallboard=1&project=PAY&metric=lead_time.',
      { id: 'wallboard-address' });
    return;
  }
  const seq = ++state.seq;
  try {
    const v = await fetchView(keys, period, team);
    if (seq !== state.seq) return;
    clearNotice();
    renderWallboard(v, key);
    document.body.dataset.state = 'ready';
    document.body.dataset.refreshes = String(count(document.body.dataset.refreshes) + 1);
  } catch (err) {
    if (seq !== state.seq) return;
    $('wallboard').hidden = true;
    showError(err, keys.join(', '), () => loadWallboard(params), team);
  }
  // Keeps refreshing, also after an error (the screen has nobody to press "try again").
  setTimeout(() => loadWallboard(params), WALLBOARD_REFRESH_MS);
}

function renderWallboard(v, key) {
  const r = v.response;
  const reading = cardReading(key, r.combined || {}, r.previous || {}, v.than);
  const big = reading.standInValue !== undefined
    ? [el('p', { class: 'no-deployments' }, 'No deployments in the period'),
      el('p', { class: 'wall-value stand-in-value', 'data-raw': reading.standInValue === null ? '' : String(reading.standInValue) },
        reading.standInValue === null ? '—' : joined(percentText(reading.standInValue))),
      el('p', { class: 'stand-in-label' }, 'Stand-in: re-open rate (not a change failure rate)')]
    : [el('p', { class: 'wall-value', 'data-raw': reading.value === null ? '' : String(reading.value) },
      reading.text === null ? ['—'] : [reading.text.number, el('span', { class: 'unit' }, ' ' + reading.text.unit)])];
  chartIds = 0;
  $('wallboard').replaceChildren(
    el('h2', { class: 'wall-title' }, key.title + ' — ' + v.keys.join(', ') + (v.team ? ', team ' + v.team : '')),
    ...(v.team ? [el('p', { class: 'team-note' }, teamNote(v.team))] : []),
    ...big,
    levelBadge(reading.levelCls, reading.levelName),
    el('p', { class: 'wall-trend' }, [changeLine(reading)]),
    el('div', { class: 'wall-chart' }, charts(v, key.id)),
    el('p', { class: 'wall-period' }, periodText(r) + ' Updated ' + new Date().toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' }) + '; refreshes every 5 minutes.'),
  );
  $('wallboard').hidden = false;
}

function init() {
  const params = new URLSearchParams(location.search);
  if (params.get('wallboard') === '1') {
    document.body.classList.add('wallboard-mode');
    $('pickers').hidden = true;
    loadWallboard(params);
    return;
  }
  $('weeks').addEventListener('change', e => {
    const choice = e.target.value;
    const shown = (state.view && state.view.response.period) || {};
    if (choice === 'custom-weeks' || choice === 'custom-months') {
      // Starts from the period shown, in the unit picked.
      if (choice === 'custom-weeks') showRange('week', shown.fromWeek, shown.toWeek);
      else if (shown.fromWeek) showRange('month', shown.fromMonth || monthOfWeek(shown.fromWeek), shown.toMonth || monthOfWeek(shown.toWeek));
      else showRange('month');
      $('from').focus();
      return;
    }
    // Months come by month unless asked otherwise; weeks keep their choice.
    state.period = choice.startsWith('m')
      ? { months: Number(choice.slice(1)), per: 'month' }
      : { weeks: Number(choice), per: state.period.per };
    renderPeriodPicker();
    loadMetrics();
  });
  $('range').addEventListener('submit', e => {
    e.preventDefault();
    const from = $('from').value, to = $('to').value;
    if (!from || !to) return;
    const [a, b] = from <= to ? [from, to] : [to, from];
    state.period = $('from').type === 'month'
      ? { fromMonth: a, toMonth: b, per: 'month' }
      : { from: a, to: b, per: state.period.per };
    renderPeriodPicker();
    loadMetrics();
  });
  $('team').addEventListener('change', e => {
    state.team = e.target.value;
    loadMetrics();
  });
  $('granularity').addEventListener('change', e => {
    state.period = Object.assign({}, state.period, { per: e.target.value });
    loadMetrics();
  });
  $('export-csv').addEventListener('click', exportCsv);
  $('export-md').addEventListener('click', exportMarkdown);
  $('notice-retry').addEventListener('click', () => { if (state.retry) state.retry(); });
  const useKey = () => {
    const key = $('api-key').value.trim();
    if (key) sessionStorage.setItem(KEY_STORAGE, key); else sessionStorage.removeItem(KEY_STORAGE);
    $('api-key').value = '';
    loadProjects();
  };
  $('use-key').addEventListener('click', useKey);
  $('api-key').addEventListener('keydown', e => { if (e.key === 'Enter') useKey(); });

  const tabs = Array.from(document.querySelectorAll('[role="tab"]'));
  tabs.forEach((tab, i) => {
    tab.addEventListener('click', () => selectTab(tab, false));
    tab.addEventListener('keydown', e => {
      const to = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 }[e.key];
      if (to === undefined) return;
      e.preventDefault();
      selectTab(tabs[(to + tabs.length) % tabs.length], true);
    });
  });
  loadProjects();
}

document.addEventListener('DOMContentLoaded', init);
