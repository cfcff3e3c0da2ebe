// crowsnest dashboard: filters and sorting, live rows from /api/events,
// and the buttons (rescan, watch now, triggers, update) over the JSON API
// with the session cookie and its CSRF token. No dependencies.
(() => {
  'use strict';
  const $ = (selector, root = document) => root.querySelector(selector);
  const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));
  const csrf = $('meta[name="csrf-token"]')?.content || '';
  const announce = (text) => { const live = $('#live'); if (live) live.textContent = text; };

  // Theme: the saved choice, else the system's preference.
  const root = document.documentElement;
  const saved = localStorage.getItem('crowsnest-theme');
  if (saved === 'light' || saved === 'dark') root.dataset.theme = saved;
  const isDark = () => root.dataset.theme ? root.dataset.theme === 'dark'
    : window.matchMedia('(prefers-color-scheme: dark)').matches;
  const toggle = $('#theme-toggle');
  const showTheme = () => {
    if (!toggle) return;
    toggle.setAttribute('aria-pressed', String(isDark()));
    toggle.textContent = isDark() ? 'Light theme' : 'Dark theme';
  };
  showTheme();
  toggle?.addEventListener('click', () => {
    root.dataset.theme = isDark() ? 'light' : 'dark';
    localStorage.setItem('crowsnest-theme', root.dataset.theme);
    showTheme();
  });

  if (['login', 'error'].includes(document.body.dataset.page)) return;

  async function call(method, url) {
    const response = await fetch(url, {
      method, credentials: 'same-origin',
      headers: { 'X-CSRF-Token': csrf, Accept: 'application/json' },
    });
    const text = await response.text();
    let body;
    try { body = JSON.parse(text); } catch { body = { error: text }; }
    if (response.status === 401) { location.assign('/login'); }
    if (!response.ok) throw new Error(body.error || `${response.status} ${response.statusText}`);
    return body;
  }

  // Filters and sorting over the rendered rows.
  const filters = $('#filters');
  const statusOrder = { error: 0, update: 1, 'not-checked': 2, 'up-to-date': 3 };
  function applyFilters() {
    const body = $('#rows');
    if (!filters || !body) return;
    const form = new FormData(filters);
    const query = String(form.get('q') || '').trim().toLowerCase();
    const want = (name) => String(form.get(name) || '');
    const rows = $$('tr[data-id]', body);
    let shown = 0;
    for (const row of rows) {
      const d = row.dataset;
      const match = (!query || d.name.toLowerCase().includes(query) || d.image.toLowerCase().includes(query))
        && (!want('status') || d.status === want('status'))
        && (!want('watcher') || d.watcher === want('watcher'))
        && (!want('registry') || d.registry === want('registry'));
      row.hidden = !match;
      if (match) shown += 1;
    }
    const sort = want('sort') || 'name';
    const key = (row) => sort === 'status' ? `${statusOrder[row.dataset.status] ?? 9}${row.dataset.name}`
      : sort === 'checked' ? row.dataset.checked : `${row.dataset[sort] || ''}${row.dataset.name}`;
    rows.sort((a, b) => key(a).localeCompare(key(b)));
    if (sort === 'checked') rows.reverse();
    for (const row of rows) body.appendChild(row);
    const counter = $('#shown');
    if (counter) counter.textContent = `${shown} of ${rows.length} shown`;
  }
  filters?.addEventListener('input', applyFilters);
  filters?.addEventListener('change', applyFilters);
  filters?.addEventListener('submit', (event) => { event.preventDefault(); applyFilters(); });
  applyFilters();

  // Live: re-read this page and swap the parts marked data-live.
  let refreshing = null;
  let again = false;
  async function refresh(flashId) {
    if (refreshing) { again = true; return refreshing; }
    refreshing = (async () => {
      try {
        const response = await fetch(location.pathname, { credentials: 'same-origin' });
        if (response.redirected || !response.ok) return;
        const page = new DOMParser().parseFromString(await response.text(), 'text/html');
        for (const part of $$('[data-live]')) {
          const fresh = page.getElementById(part.id);
          if (fresh) part.innerHTML = fresh.innerHTML;
        }
        for (const select of $$('select[data-live-options]')) {
          const fresh = page.getElementById(select.id);
          if (!fresh) continue;
          const value = select.value;
          select.innerHTML = fresh.innerHTML;
          select.value = value;
        }
        applyFilters();
        if (flashId) document.getElementById(`row-${flashId}`)?.classList.add('flash');
      } finally {
        refreshing = null;
        if (again) { again = false; refresh(); }
      }
    })();
    return refreshing;
  }

  const progress = $('#scan-progress');
  const scanStatus = $('#scan-status');
  const events = new EventSource('/api/events');
  // Whether the page is following the events (shown, and waited on by the browser tests).
  events.addEventListener('open', () => { document.body.dataset.live = 'connected'; });
  events.addEventListener('error', () => { document.body.dataset.live = 'reconnecting'; });
  const data = (message) => { try { return JSON.parse(message.data).data || {}; } catch { return {}; } };
  events.addEventListener('scan-started', () => {
    if (progress) { progress.hidden = false; progress.removeAttribute('value'); }
    if (scanStatus) scanStatus.textContent = 'Scanning…';
  });
  events.addEventListener('scan-progress', (message) => {
    const { done, total } = data(message);
    if (progress && total) { progress.hidden = false; progress.max = total; progress.value = done; }
    if (scanStatus && total) scanStatus.textContent = `Scanning: ${done} of ${total} images`;
  });
  events.addEventListener('scan-finished', async (message) => {
    const { containers = 0, updates = 0 } = data(message);
    if (progress) progress.hidden = true;
    const text = `Scan finished: ${containers} containers, ${updates} with updates`;
    if (scanStatus) scanStatus.textContent = text;
    await refresh();
    announce(text);
  });
  events.addEventListener('container-updated', async (message) => {
    const container = data(message);
    await refresh(container.id);
    announce(`${container.displayName || container.name || 'A container'} was checked again`);
  });
  events.addEventListener('update-found', (message) => {
    const found = data(message);
    announce(`Update found for ${found.name || 'a container'}`);
  });
  events.addEventListener('trigger-delivered', (message) => announce(`Trigger ${data(message).trigger} delivered`));
  events.addEventListener('trigger-failed', (message) => announce(`Trigger ${data(message).trigger} failed: ${data(message).error}`));
  events.addEventListener('action-done', () => refresh());
  events.addEventListener('gap', () => refresh());

  // Buttons.
  document.addEventListener('click', async (event) => {
    const button = event.target.closest('button[data-action]');
    if (!button) return;
    const id = button.dataset.id;
    const path = id ? `/api/containers/${encodeURIComponent(id)}` : '';
    button.disabled = true;
    try {
      switch (button.dataset.action) {
        case 'rescan':
          await call('POST', `${path}/watch`);
          await refresh(id);
          announce(`Rescanned ${button.closest('tr')?.dataset.name || 'the container'}`);
          break;
        case 'watch-all':
          if (scanStatus) scanStatus.textContent = 'Scanning…';
          await call('POST', '/api/containers/watch');
          await refresh();
          break;
        case 'preview': {
          const outcome = await call('POST', `${path}/update?dry_run=true`);
          const preview = $('#update-preview');
          preview.textContent = '';
          const summary = document.createElement('p');
          summary.textContent = `${outcome.status}: ${outcome.fromImage} → ${outcome.toImage}${outcome.message ? ` (${outcome.message})` : ''}`;
          const steps = document.createElement('ol');
          for (const step of outcome.steps || []) {
            const item = document.createElement('li');
            item.textContent = step;
            steps.appendChild(item);
          }
          preview.append(summary, steps);
          const confirm = $('#update-confirm');
          if (confirm) confirm.hidden = outcome.status !== 'dry-run';
          break;
        }
        case 'update': {
          if (!window.confirm('Update this container now? It will be recreated with the new image.')) break;
          const outcome = await call('POST', `${path}/update`);
          $('#update-preview').textContent = `${outcome.status}${outcome.message ? `: ${outcome.message}` : ''}`;
          button.hidden = true;
          await refresh();
          break;
        }
        default:
          break;
      }
    } catch (error) {
      const text = `${button.textContent.trim()} failed: ${error.message}`;
      if (scanStatus) scanStatus.textContent = text;
      const preview = $('#update-preview');
      if (preview && ['preview', 'update'].includes(button.dataset.action)) preview.textContent = text;
      announce(text);
    } finally {
      button.disabled = false;
    }
  });

  $('#run-trigger')?.addEventListener('submit', async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const name = $('#trigger', form).value;
    const result = $('#trigger-result');
    result.textContent = `Running ${name}…`;
    result.className = '';
    try {
      await call('POST', `/api/containers/${encodeURIComponent(form.dataset.id)}/triggers/${encodeURIComponent(name)}`);
      result.textContent = `Trigger ${name} delivered.`;
    } catch (error) {
      result.textContent = `Trigger ${name} failed: ${error.message}`;
      result.className = 'error-text';
    }
  });
})();
