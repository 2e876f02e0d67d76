// The dashboard: reads the service's JSON API (the canonical proto3 JSON
// mapping of dora.v1) from the same origin and draws it. Plain JS, no
// framework, no build step; charts are inline SVG drawn below. Text is only
// ever set with textContent, never parsed as HTML.
'use strict';

const KEY_STORAGE = 'dora.apiKey';
const SVG_NS = 'http://www.w3.org/2000/svg';

const state = { projects: [], project: null, weeks: 13, seq: 0, retry: null };

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
function levelBadge(level) {
  const [cls, name] = LEVELS[level] || LEVELS.LEVEL_UNKNOWN;
  return el('span', { class: 'level level-' + cls }, 'DORA level: ' + name);
}

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

/** Says what went wrong and what to do about it. `project` is set for figures. */
function showError(err, project, retry) {
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
  } else if (http === 404 || code === 5) {
    notice('info', 'No data yet for ' + (project || 'this project'),
      'The service has not harvested this project yet. The first harvest runs when the service starts and refreshes follow every few minutes: try again shortly.',
      { id: 'no-data', retry });
  } else {
    notice('error', 'Something went wrong', err.message + ' Try again; if it persists, tell the service operator.', { id: 'error', retry });
  }
}

// ------------------------------------------------------------------- charts

let chartIds = 0;

/**
 * A weekly chart: bars or a line with dots, gaps where a week has no value.
 * `points` are {week, value|null}; `format` turns a value into text.
 */
function chart(title, points, kind, format, unitNote) {
  const id = 'chart-' + (++chartIds);
  const W = 320, H = 150, left = 16, right = 8, top = 20, bottom = 22;
  const values = points.map(p => p.value).filter(v => v !== null);
  const max = values.length ? Math.max(...values) : 0;
  const scaleMax = max > 0 ? max * 1.1 : 1;
  const step = (W - left - right) / Math.max(points.length, 1);
  const x = i => left + step * (i + 0.5);
  const y = v => top + (H - top - bottom) * (1 - v / scaleMax);

  const marks = [];
  if (kind === 'bars') {
    points.forEach((p, i) => {
      if (p.value === null) return;
      const h = (H - top - bottom) * (p.value / scaleMax);
      marks.push(svg('rect', { class: 'bar-mark', x: fixed(x(i) - step * 0.35, 1), y: fixed(H - bottom - h, 1), width: fixed(step * 0.7, 1), height: fixed(h, 1) }));
    });
  } else {
    let run = [];
    const flush = () => {
      if (run.length > 1) marks.push(svg('polyline', { class: 'line-mark', points: run.join(' ') }));
      run = [];
    };
    points.forEach((p, i) => {
      if (p.value === null) { flush(); return; }
      run.push(fixed(x(i), 1) + ',' + fixed(y(p.value), 1));
      marks.push(svg('circle', { class: 'dot-mark', cx: fixed(x(i), 1), cy: fixed(y(p.value), 1), r: 2.5 }));
    });
    flush();
  }

  const first = points.length ? points[0].week : '';
  const last = points.length ? points[points.length - 1].week : '';
  const latest = points.length ? points[points.length - 1].value : null;
  const summary = values.length
    ? title + ' per week from ' + first + ' to ' + last + ': lowest ' + format(Math.min(...values)) + ', highest ' + format(max) +
      ', latest week ' + (latest === null ? 'no value' : format(latest)) + '; ' + plural(points.length - values.length, 'week', 'weeks') + ' without a value.'
    : title + ': no week of the period has a value.';

  const picture = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-labelledby': id + '-title ' + id + '-desc', focusable: 'false' }, [
    svg('title', { id: id + '-title' }, title + ' per week'),
    svg('desc', { id: id + '-desc' }, summary),
    svg('line', { class: 'axis', x1: left, y1: H - bottom, x2: W - right, y2: H - bottom }),
    svg('line', { class: 'axis', x1: left, y1: top, x2: left, y2: H - bottom }),
    svg('line', { class: 'axis', x1: left, y1: y(max), x2: W - right, y2: y(max), 'stroke-dasharray': '3 3' }),
    svg('text', { class: 'tick', x: left + 4, y: top - 6 }, values.length ? 'highest ' + format(max) : 'no values'),
    svg('text', { class: 'tick', x: left - 4, y: H - bottom, 'text-anchor': 'end' }, '0'),
    svg('text', { class: 'tick', x: left, y: H - 6 }, first),
    svg('text', { class: 'tick', x: W - right, y: H - 6, 'text-anchor': 'end' }, last),
  ].concat(marks));

  const rows = points.map(p => el('tr', {}, [el('td', {}, p.week), el('td', {}, p.value === null ? '—' : format(p.value))]));
  const table = el('table', {}, [
    el('thead', {}, el('tr', {}, [el('th', { scope: 'col' }, 'Week'), el('th', { scope: 'col' }, title)])),
    el('tbody', {}, rows),
  ]);
  return el('figure', { class: 'chart' }, [
    el('figcaption', {}, [el('h3', {}, title), unitNote ? el('p', { class: 'visually-hidden' }, unitNote) : null]),
    picture,
    el('details', {}, [el('summary', {}, 'Show the weekly values as a table'), table]),
  ]);
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
    detail: f => count((f.changeFailure || {}).failed) + ' of ' + plural(count((f.changeFailure || {}).deployments), 'deployment', 'deployments') + ' failed',
    empty: 'No deployment in the period.',
  },
  {
    id: 'time_to_restore', title: 'Time to restore', level: 'timeToRestore', higherIsBetter: false,
    value: f => opt((f.timeToRestore || {}).medianHours), text: hoursText,
    detail: f => 'median of ' + plural(count((f.timeToRestore || {}).count), 'restored incident', 'restored incidents'),
    empty: 'No incident restored in the period.',
  },
];

function changeLine(key, current, previous, weeks) {
  const than = 'the previous ' + plural(weeks, 'week', 'weeks');
  if (current === null || previous === null) return el('p', { class: 'change' }, 'No figure for ' + than + ' to compare with.');
  if (previous === 0) {
    return el('p', { class: 'change' }, current === 0 ? 'Same as ' + than + '.' : 'Up from zero in ' + than + '.');
  }
  const rel = (current - previous) / previous;
  if (Math.abs(rel) < 0.005) return el('p', { class: 'change' }, 'Same as ' + than + '.');
  const up = rel > 0;
  const better = up === key.higherIsBetter;
  return el('p', { class: 'change ' + (better ? 'better' : 'worse') }, [
    el('span', { 'aria-hidden': 'true' }, up ? '▲ ' : '▼ '),
    (up ? 'Up ' : 'Down ') + fixed(Math.abs(rel) * 100, 0) + ' % on ' + than + ' (' + (better ? 'better' : 'worse') + ').',
  ]);
}

function card(key, figures, previous, weeks) {
  const value = key.value(figures);
  const text = key.text(value);
  const levels = figures.levels || {};
  return el('article', { class: 'card', 'data-key': key.id, 'aria-labelledby': 'card-' + key.id }, [
    el('h3', { id: 'card-' + key.id }, key.title),
    el('p', { class: 'value', 'data-raw': value === null ? '' : String(value) },
      text === null ? ['—'] : [text.number, el('span', { class: 'unit' }, ' ' + text.unit)]),
    levelBadge(levels[key.level]),
    el('p', { class: 'detail' }, value === null ? key.empty : key.detail(figures)),
    changeLine(key, value, key.value(previous), weeks),
  ]);
}

// ------------------------------------------------------------------- render

function renderOverview(r, weeks) {
  const f = r.combined || {};
  const prev = r.previous || {};
  $('cards').replaceChildren(...KEYS.map(k => card(k, f, prev, weeks)));

  const series = r.series || [];
  const pts = read => series.map(s => ({ week: s.week, value: read(s.figures || {}) }));
  chartIds = 0;
  $('charts').replaceChildren(
    chart('Deployments', pts(w => count(w.deployments)), 'bars', v => fixed(v, 0)),
    chart('Lead time (median)', pts(w => opt((w.leadTime || {}).medianHours)), 'line', v => joined(hoursText(v))),
    chart('Change failure rate', pts(w => opt((w.changeFailure || {}).rate)), 'line', v => joined(percentText(v))),
    chart('Time to restore (median)', pts(w => opt((w.timeToRestore || {}).medianHours)), 'line', v => joined(hoursText(v))),
  );

  const item = (label, value, id, note) =>
    el('div', { 'data-count': id }, [el('dt', {}, label), el('dd', {}, [value, note ? el('span', { class: 'note' }, note) : null])]);
  const rate = v => (opt(v) === null ? '—' : joined(percentText(opt(v))));
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

function renderPeriod(r, weeks) {
  const p = r.period || {};
  const pp = r.previousPeriod || {};
  $('period').textContent = p.fromWeek + ' to ' + p.toWeek + ' (' + plural(count(p.weeks), 'week', 'weeks') + ', ' + (p.reportTz || 'UTC') + ')' +
    (p.partial ? ', including the current unfinished week' : '') +
    '; changes compare with ' + pp.fromWeek + ' to ' + pp.toWeek + '.';
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

function readHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  const weeks = Number(params.get('weeks'));
  return { project: params.get('project'), weeks: [4, 13, 26, 52].includes(weeks) ? weeks : null };
}
function writeHash() {
  history.replaceState(null, '', '#project=' + encodeURIComponent(state.project) + '&weeks=' + state.weeks);
}

async function loadMetrics() {
  const seq = ++state.seq;
  const { project, weeks } = state;
  writeHash();
  document.body.dataset.state = 'loading';
  document.body.setAttribute('aria-busy', 'true');
  try {
    const r = await api('/v1/metrics?project_keys=' + encodeURIComponent(project) + '&weeks=' + weeks + '&include_series=true');
    if (seq !== state.seq) return;
    clearNotice();
    renderPeriod(r, weeks);
    renderOverview(r, weeks);
    renderAi(r);
    renderFreshness(r);
    $('content').hidden = false;
    document.body.dataset.loaded = project + '|' + weeks;
    document.body.dataset.state = 'ready';
  } catch (err) {
    if (seq !== state.seq) return;
    $('freshness').replaceChildren();
    showError(err, project, loadMetrics);
  } finally {
    if (seq === state.seq) document.body.removeAttribute('aria-busy');
  }
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
  const select = $('project');
  select.replaceChildren(...state.projects.map(k => el('option', { value: k }, k)));
  if (!state.projects.length) {
    select.disabled = true;
    notice('info', 'No data yet',
      'The service holds no project you can browse yet. The first harvest runs when the service starts and takes a minute or two: try again shortly. ' +
      'If the list stays empty, check that the service can reach Jira and that its harvest.projects setting names projects you can browse.',
      { id: 'no-projects', retry: loadProjects });
    return;
  }
  select.disabled = false;
  const wanted = readHash();
  state.project = state.projects.includes(wanted.project) ? wanted.project : state.projects[0];
  state.weeks = wanted.weeks || state.weeks;
  select.value = state.project;
  $('weeks').value = String(state.weeks);
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

function init() {
  $('project').addEventListener('change', e => { state.project = e.target.value; loadMetrics(); });
  $('weeks').addEventListener('change', e => { state.weeks = Number(e.target.value); loadMetrics(); });
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
