// gatehouse dashboard: keeps the server-rendered page live and runs its
// actions. Without this script the page still shows every table (and
// refreshes itself); with it, the server pushes each second's fragments
// over server-sent events and the buttons ask for confirmation and show
// the operation's progress.
(() => {
  'use strict';
  const body = document.body;
  const win = body.dataset.window || '5m';
  let updates = 0;
  let mismatched = 0;

  // Live fragments: the server renders, this only swaps them in.
  const stream = new EventSource('/api/dashboard/stream?window=' + encodeURIComponent(win));
  stream.addEventListener('open', () => { body.dataset.live = 'on'; });
  stream.addEventListener('error', () => { body.dataset.live = 'off'; });
  // swap replaces an element's content but keeps what the user is doing
  // in it: the focused button (found again by its form's action) and the
  // open <details> (by data-key).
  function swap(el, html) {
    const active = document.activeElement;
    const form = active && el.contains(active) ? active.closest('form') : null;
    const focusKey = form ? form.getAttribute('action') : null;
    const open = [...el.querySelectorAll('details[open][data-key]')].map((d) => d.dataset.key);
    el.innerHTML = html;
    for (const key of open) {
      const d = el.querySelector('details[data-key="' + CSS.escape(key) + '"]');
      if (d) d.open = true;
    }
    if (focusKey) {
      const b = el.querySelector('form[action="' + CSS.escape(focusKey) + '"] button');
      if (b) b.focus();
    }
  }

  // While a pointer is down, updates wait: a click whose press and
  // release straddle a swap would otherwise be lost.
  let pointerDown = false;
  let pending = {};
  const flush = () => {
    for (const [id, html] of Object.entries(pending)) {
      const el = document.getElementById(id);
      if (el) swap(el, html);
    }
    pending = {};
  };
  document.addEventListener('pointerdown', () => { pointerDown = true; }, true);
  for (const t of ['pointerup', 'pointercancel']) {
    document.addEventListener(t, () => { pointerDown = false; setTimeout(flush, 0); }, true);
  }

  stream.addEventListener('update', (ev) => {
    const frags = JSON.parse(ev.data);
    // An app added or removed by a reload: the page's sections change.
    const apps = (frags._apps || '').split('\n').filter((a) => a);
    delete frags._apps;
    const shown = [...document.querySelectorAll('section.app')].map((s) => s.dataset.app);
    // Twice in a row: during an upgrade two gatehouse processes may
    // answer in turn.
    if (shown.join('\n') !== apps.join('\n')) {
      if (++mismatched >= 2) {
        location.reload();
        return;
      }
    } else {
      mismatched = 0;
    }
    Object.assign(pending, frags);
    if (!pointerDown) flush();
    body.dataset.updates = String(++updates);
  });

  // Actions: confirm in a dialog, then POST (same origin, with the
  // session cookie) and stream the NDJSON progress into #op.
  const dialog = document.getElementById('confirm');
  const op = document.getElementById('op');
  const opTitle = document.getElementById('op-title');
  const opResult = document.getElementById('op-result');

  function confirmed(text) {
    document.getElementById('confirm-text').textContent = text;
    dialog.returnValue = '';
    dialog.showModal();
    return new Promise((resolve) => {
      dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
    });
  }

  function report(state, title, line) {
    op.hidden = false;
    op.dataset.state = state;
    opTitle.textContent = title;
    if (line !== undefined) opResult.textContent += line + '\n';
  }

  async function run(form) {
    const url = new URL(form.action);
    for (const [k, v] of new FormData(form)) url.searchParams.set(k, String(v));
    // "Reload web", "Recycle web-2", "Drain".
    const parts = url.pathname.split('/');
    const what = form.querySelector('button').textContent + (parts.length > 4 ? ' ' + decodeURIComponent(parts[3]) : '');
    opResult.textContent = '';
    report('running', what + ': running…');
    const button = form.querySelector('button');
    button.disabled = true;
    try {
      const resp = await fetch(url, { method: 'POST', credentials: 'same-origin' });
      const type = resp.headers.get('Content-Type') || '';
      if (resp.ok && /\/dump$/.test(url.pathname)) {
        const m = await resp.json();
        report('ok', what + ': done', m.kind + ' of ' + m.instance + ' by ' + m.tool + ', ' + m.size + ' bytes' +
          (m.paused_ms ? '; paused ' + m.paused_ms + ' ms' : '') + (m.note ? '; ' + m.note : ''));
        const a = document.createElement('a');
        a.href = '/api/dumps/' + encodeURIComponent(m.name);
        a.textContent = 'download ' + m.name;
        a.setAttribute('download', m.name);
        opResult.append(a);
        return;
      }
      if (!type.includes('ndjson')) {
        const text = await resp.text();
        let msg = text;
        try { msg = JSON.parse(text).error || text; } catch (_) { /* not JSON */ }
        report('failed', what + ': failed (' + resp.status + ')', msg.trim());
        return;
      }
      const reader = resp.body.getReader();
      const dec = new TextDecoder();
      let buf = '';
      let final = null;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (!line.trim()) continue;
          const l = JSON.parse(line);
          if (l.progress) report('running', what + ': running…', l.progress);
          if (l.error) final = ['failed', l.error];
          if (l.ok) final = ['ok', ''];
        }
      }
      if (!final) final = ['failed', 'the answer ended before the operation said how it went'];
      report(final[0], what + (final[0] === 'ok' ? ': done' : ': failed'), final[1] || undefined);
      // Drain and undrain change the header's own button: show the other.
      if (final[0] === 'ok' && /\/(un)?drain$/.test(url.pathname)) setTimeout(() => location.reload(), 1500);
    } catch (e) {
      report('failed', what + ': failed', String(e));
    } finally {
      button.disabled = false;
    }
  }

  document.addEventListener('submit', async (ev) => {
    const form = ev.target;
    if (!form.dataset.confirm) return; // sign in and out submit as forms
    ev.preventDefault();
    if (await confirmed(form.dataset.confirm)) run(form);
  });

  // Log tails: one open at a time (a browser allows six connections to
  // the admin listener, and the page's own stream takes one).
  const tails = [...document.querySelectorAll('details.logs')];
  for (const d of tails) {
    let src = null;
    const pre = d.querySelector('pre');
    const sel = d.querySelector('select');
    const append = (text) => {
      pre.textContent += text + '\n';
      const lines = pre.textContent.split('\n');
      if (lines.length > 300) pre.textContent = lines.slice(-300).join('\n');
      pre.scrollTop = pre.scrollHeight;
    };
    const close = () => { if (src) { src.close(); src = null; } };
    const open = () => {
      close();
      // The instances change with reloads: offer the current ones.
      const ids = [...document.querySelectorAll('#instances-' + CSS.escape(d.dataset.app) + ' tr[data-instance]')].map((r) => r.dataset.instance);
      const keep = sel.value;
      sel.replaceChildren(sel.options[0], ...ids.map((id) => new Option(id, id, false, id === keep)));
      pre.textContent = '';
      const q = sel.value ? 'instance=' + encodeURIComponent(sel.value) : 'app=' + encodeURIComponent(d.dataset.app);
      src = new EventSource('/api/logstream?' + q);
      src.addEventListener('log', (e) => { const l = JSON.parse(e.data); append(l.instance + '  ' + l.line); });
      src.addEventListener('event', (e) => { const v = JSON.parse(e.data); append('── ' + (v.instance || v.app) + ' ' + v.type + (v.detail ? ': ' + v.detail : '')); });
    };
    d.addEventListener('toggle', () => {
      if (!d.open) { close(); return; }
      for (const other of tails) if (other !== d) other.open = false;
      open();
    });
    sel.addEventListener('change', () => { if (d.open) open(); });
  }
})();
