// What is behind a number: each card and each count of the overview opens
// a panel (a modal <dialog>) listing the items it counts, read from
// ExplainMetrics (GET /v1/metrics:explain) for the very projects and weeks
// the figures cover (and the team, when the view has one). Issues link to Jira ({base_url}/browse/KEY): the
// reader's own browser opens them with the reader's own Jira session, so
// the service never fetches a summary. Under the cards, the data-quality
// line says how much to trust each number.
//
// Uses the helpers of app.js ($, el, api, count, opt, hoursText, joined,
// plural, timeText); app.js calls Explain.attach(view) after drawing the
// overview, and that is its only hook. Text is only ever set with
// textContent, never parsed as HTML.
'use strict';

const Explain = (() => {
  /** Items per request, and how many requests a panel makes at most. */
  const PAGE_SIZE = 1000;
  const MAX_PAGES = 5;

  /** What each card (by data-key) and count (by data-count) lists. */
  const LISTS = {
    deployment_frequency: { figure: 'FIGURE_DEPLOYMENTS', title: 'Deployments' },
    lead_time: { figure: 'FIGURE_LEAD_TIME', title: 'Lead time: completed work items, slowest first', slowest: true },
    change_failure_rate: {
      figure: 'FIGURE_DEPLOYMENTS', title: 'Failed deployments and the failures behind them', only: i => !!i.failed,
      none: 'No deployment failed in the period.',
    },
    time_to_restore: { figure: 'FIGURE_TIME_TO_RESTORE', title: 'Time to restore: restored incidents, slowest first', slowest: true },
    incidents: { figure: 'FIGURE_INCIDENTS', title: 'Incidents, by creation week' },
    'open-incidents': { figure: 'FIGURE_OPEN_INCIDENTS', title: 'Incidents still open, by creation week' },
    completed: { figure: 'FIGURE_COMPLETED', title: 'Completed work items' },
    excluded: { figure: 'FIGURE_EXCLUDED', title: 'Excluded issues, by completion week' },
    'reopen-rate': { figure: 'FIGURE_REOPENED', title: 'Re-opened work items' },
    deployments: { figure: 'FIGURE_DEPLOYMENTS', title: 'Deployments' },
    'rework-rate': {
      figure: 'FIGURE_DEPLOYMENTS', title: 'Rework deployments and the fixes they shipped', only: i => !!i.rework,
      none: 'No deployment shipped a fix in the period.',
    },
    'ai-share': { figure: 'FIGURE_AI_INVOLVED', title: 'AI-involved work items' },
  };

  const KINDS = {
    BY_VERSION: 'by affected version',
    BY_TIME: 'by time',
    BY_TRANSITION: 'rolled back',
    REWORK_FIX: 'fixed here',
  };

  let view = null;
  let dialog = null;
  let opener = null;
  let seq = 0;

  function query(figure, pageSize, token) {
    const p = view.response.period || {};
    return '/v1/metrics:explain?' + view.keys.map(k => 'project_keys=' + encodeURIComponent(k)).join('&') +
      '&from_week=' + encodeURIComponent(p.fromWeek) + '&to_week=' + encodeURIComponent(p.toWeek) +
      (view.team ? '&team=' + encodeURIComponent(view.team) : '') +
      '&figure=' + figure + '&page_size=' + pageSize + (token ? '&page_token=' + encodeURIComponent(token) : '');
  }

  /** Every page of a list, up to MAX_PAGES of them. */
  async function fetchAll(figure) {
    const items = [];
    let token = '';
    let last = {};
    for (let n = 0; n < MAX_PAGES; n++) {
      last = await api(query(figure, PAGE_SIZE, token));
      items.push(...(last.items || []));
      token = last.nextPageToken || '';
      if (!token) break;
    }
    return { items, total: count(last.total), quality: last.dataQuality || {} };
  }

  function ensureDialog() {
    if (dialog) return dialog;
    const close = el('button', { type: 'button', id: 'explain-close', class: 'explain-close' }, 'Close');
    dialog = el('dialog', { id: 'explain', class: 'explain', 'aria-labelledby': 'explain-title', 'aria-describedby': 'explain-summary' }, [
      el('div', { class: 'explain-head' }, [el('h2', { id: 'explain-title' }), close]),
      el('p', { id: 'explain-summary', class: 'explain-summary', role: 'status', 'aria-live': 'polite' }),
      el('div', { id: 'explain-body', class: 'explain-body', tabindex: '0' }),
    ]);
    close.addEventListener('click', () => dialog.close());
    // A click on the backdrop (outside the panel's box) closes it too.
    dialog.addEventListener('click', e => {
      if (e.target !== dialog) return;
      const r = dialog.getBoundingClientRect();
      if (e.clientX < r.left || e.clientX > r.right || e.clientY < r.top || e.clientY > r.bottom) dialog.close();
    });
    dialog.addEventListener('close', () => {
      seq++;
      if (opener && opener.isConnected) opener.focus();
    });
    document.body.append(dialog);
    return dialog;
  }

  function issueLink(key, url) {
    return url ? el('a', { href: url, target: '_blank', rel: 'noopener noreferrer' }, key) : key;
  }

  function dateText(ts) {
    return ts ? timeText(ts) : '—';
  }

  function releaseDate(ts) {
    return ts ? ts.slice(0, 10) : '—';
  }

  function deploymentsTable(items) {
    const rows = items.map(i => {
      const name = i.issueKey ? issueLink(i.issueKey, i.url) : i.versionName;
      const causes = (i.attributions || []).map((a, n) => [n ? ', ' : '', issueLink(a.issueKey, a.url), ' (' + (KINDS[a.kind] || a.kind) + ')']).flat();
      return el('tr', { 'data-item': i.issueKey || i.versionName }, [
        el('td', {}, i.week),
        el('th', { scope: 'row' }, [name, i.issueKey ? el('span', { class: 'explain-note' }, ' (status change)') : null]),
        el('td', {}, i.issueKey ? dateText(i.end) : releaseDate(i.end)),
        el('td', {}, [i.failed ? el('span', { class: 'explain-flag failed' }, 'failed') : null,
          i.rework ? el('span', { class: 'explain-flag rework' }, 'rework') : null]),
        el('td', {}, causes.length ? causes : '—'),
      ]);
    });
    return table(['Week', 'Deployment', 'Released', 'Outcome', 'Because of'], rows);
  }

  function issuesTable(items, withHours) {
    const rows = items.map(i => el('tr', { 'data-item': i.issueKey }, [
      el('td', {}, i.week),
      el('th', { scope: 'row' }, issueLink(i.issueKey, i.url)),
      el('td', {}, dateText(i.start)),
      el('td', {}, dateText(i.end)),
      withHours ? el('td', { class: 'num', 'data-hours': i.hours === undefined ? '' : String(i.hours) }, i.hours === undefined ? '—' : joined(hoursText(Number(i.hours)))) : null,
    ]));
    return table(['Week', 'Issue', 'From', 'To', withHours ? 'Took' : null].filter(Boolean), rows);
  }

  function table(headers, rows) {
    // Each cell names its column, for the phone layout (one block per row).
    for (const row of rows) Array.from(row.children).forEach((cell, n) => { cell.dataset.label = headers[n]; });
    return el('table', { class: 'explain-table' }, [
      el('thead', {}, el('tr', {}, headers.map(h => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, rows),
    ]);
  }

  async function open(id, button) {
    const list = LISTS[id];
    if (!list || !view) return;
    const mine = ++seq;
    opener = button;
    const d = ensureDialog();
    $('explain-title').textContent = list.title;
    $('explain-summary').textContent = 'Loading…';
    $('explain-body').replaceChildren();
    d.dataset.list = id;
    d.dataset.state = 'loading';
    if (!d.open) d.showModal();
    let got;
    try {
      got = await fetchAll(list.figure);
    } catch (err) {
      if (mine !== seq) return;
      $('explain-summary').textContent = err.httpStatus === 503
        ? 'The items behind the figures return after the next refresh (the service restarted since; the figures are from its snapshot).'
        : 'The items could not be listed: ' + err.message;
      d.dataset.state = 'error';
      return;
    }
    if (mine !== seq) return;
    let items = got.items.filter(list.only || (() => true));
    if (list.slowest) items = items.slice().sort((a, b) => count(b.hours) - count(a.hours));
    const p = view.response.period || {};
    const shown = got.items.length < got.total ? ' (the first ' + got.items.length + ' of ' + got.total + ')' : '';
    $('explain-summary').textContent = plural(items.length, 'item', 'items') + shown + ', ' +
      (view.team ? 'team ' + view.team + ' in ' : '') + view.keys.join(', ') + ', ' +
      p.fromWeek + ' to ' + p.toWeek + '.' + (items.length ? ' Issue links open Jira.' : '');
    $('explain-body').replaceChildren(items.length
      ? (list.figure === 'FIGURE_DEPLOYMENTS' ? deploymentsTable(items) : issuesTable(items, list.figure !== 'FIGURE_EXCLUDED' && list.figure !== 'FIGURE_INCIDENTS' && list.figure !== 'FIGURE_OPEN_INCIDENTS'))
      : el('p', {}, list.none || 'Nothing to list in the period.'));
    d.dataset.state = 'ready';
  }

  function openButton(id, label, name) {
    const b = el('button', { type: 'button', class: 'explain-open', 'data-explain': id, 'aria-haspopup': 'dialog', 'aria-label': label + ': ' + name }, label);
    b.addEventListener('click', () => open(id, b));
    return b;
  }

  function qualityText(q) {
    const byVersion = count(q.failuresByVersion), byTime = count(q.failuresByTime), none = count(q.failuresUnattributed);
    const failures = byVersion + byTime + none;
    const parts = [
      failures
        ? 'Of ' + plural(failures, 'failure', 'failures') + ' created in the period, ' + byVersion + ' attributed by affected version, ' +
          byTime + ' by time, ' + none + ' to no deployment.'
        : 'No failure created in the period.',
      plural(count(q.excluded), 'issue', 'issues') + ' excluded by the definitions.',
      count(q.undatedVersions)
        ? plural(count(q.undatedVersions), 'version', 'versions') + ' released without a release date, counted nowhere.'
        : 'Every released version has a release date.',
    ];
    return 'Data quality: ' + parts.join(' ');
  }

  async function qualityLine(mine) {
    let line = $('data-quality');
    if (!line) {
      line = el('p', { id: 'data-quality', class: 'data-quality' });
      $('cards').after(line);
    }
    line.textContent = '';
    try {
      const r = await api(query('FIGURE_DEPLOYMENTS', 1, ''));
      if (mine !== seq) return;
      line.textContent = qualityText(r.dataQuality || {});
    } catch (err) {
      if (mine !== seq) return;
      line.textContent = err.httpStatus === 503 ? 'The items behind each figure and the data-quality line return after the next refresh.' : '';
    }
  }

  /** After app.js drew the overview of `v`: a button on each card and count, and the data-quality line. */
  function attach(v) {
    view = v;
    const mine = ++seq;
    if (dialog && dialog.open) dialog.close();
    for (const card of document.querySelectorAll('#cards [data-key]')) {
      const id = card.dataset.key;
      const name = (card.querySelector('h3') || {}).textContent || '';
      if (LISTS[id]) card.append(openButton(id, 'List the items', name));
    }
    for (const item of document.querySelectorAll('#counts [data-count]')) {
      const id = item.dataset.count;
      const name = (item.querySelector('dt') || {}).textContent || '';
      if (LISTS[id]) item.append(openButton(id, 'List', name));
    }
    qualityLine(mine);
  }

  return { attach };
})();
