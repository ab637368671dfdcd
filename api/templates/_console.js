// The queue: decisions through the JSON API, undo within the minute, bulk acceptance, keyboard for all of it.
const items = [...document.querySelectorAll('.item')];
const DONE = {accept: 'Aceptada', change: 'Cambiada', escalate: 'Escalada'};
let current = -1;
let lastDecided = null;

function select(i, focus = true) {
  if (!items.length) return;
  current = Math.max(0, Math.min(items.length - 1, i));
  items.forEach((el, k) => el.classList.toggle('sel', k === current));
  if (focus) { items[current].focus(); items[current].scrollIntoView({block: 'nearest'}); }
}
function say(el, text, error = false) {
  const status = el.querySelector('.status');
  status.textContent = text;
  status.classList.toggle('error', error);
}
async function send(url, body) {
  const r = await fetch(url, {method: 'POST', credentials: 'same-origin', body: JSON.stringify(body),
                              headers: {'content-type': 'application/json', accept: 'application/json',
                                        'x-csrf-token': cfg.csrf}});
  let data = null;
  try { data = await r.json(); } catch (err) { /* not JSON: the status says enough */ }
  return {ok: r.ok, status: r.status, data};
}
function problem(res) {
  return (res.data && res.data.error && res.data.error.message) || ('La solicitud falló (' + res.status + ').');
}
function buttons(el) {
  return ['.aceptar', '.cambiar', '.escalar'].map((s) => el.querySelector(s));
}
function closePanels(el, returnFocus = false) {
  for (const [panel, opener] of [['.cambio', '.cambiar'], ['.escala', '.escalar']]) {
    const wasOpen = !el.querySelector(panel).hidden;
    el.querySelector(panel).hidden = true;
    el.querySelector(opener).setAttribute('aria-expanded', 'false');
    if (wasOpen && returnFocus) el.querySelector(opener).focus();
  }
}
function openPanel(el, which) {
  const [panel, opener] = which === 'cambio' ? ['.cambio', '.cambiar'] : ['.escala', '.escalar'];
  if (el.querySelector(opener).disabled) return;
  closePanels(el);
  el.querySelector(panel).hidden = false;
  el.querySelector(opener).setAttribute('aria-expanded', 'true');
  el.querySelector(panel).querySelector(which === 'cambio' ? '.nueva' : 'button.primary').focus();
}
function settled(el, done) {
  buttons(el).forEach((b) => { b.disabled = done; });
  const mark = el.querySelector('.marca');
  mark.disabled = done;
  if (done) mark.checked = false;
  el.classList.toggle('done', done);
  closePanels(el);
  updateBulk();
}
function hideUndo(el) {
  const button = el.querySelector('.deshacer');
  button.hidden = true;
  clearInterval(Number(button.dataset.timer || 0));
}
function offerUndo(el, untilMs) {
  const button = el.querySelector('.deshacer');
  hideUndo(el);
  const tick = () => {
    const left = Math.ceil((untilMs - Date.now()) / 1000);
    if (left <= 0) { hideUndo(el); return; }
    button.firstChild.textContent = 'Deshacer (' + left + ' s) ';
  };
  button.hidden = false;
  tick();
  button.dataset.timer = setInterval(tick, 1000);
}

async function decide(el, decision, extra = {}) {
  const body = {classification_id: el.dataset.id, agent: cfg.agent, decision, ...extra};
  if (el.dataset.decisionId) body.replaces = true;  // the agent sees the current decision and replaces it
  const before = buttons(el).map((b) => b.disabled);
  buttons(el).forEach((b) => { b.disabled = true; });
  const res = await send('/v1/feedback', body);
  if (!res.ok) {
    buttons(el).forEach((b, k) => { b.disabled = before[k]; });
    say(el, '✕ ' + problem(res), true);
    return false;
  }
  const d = res.data;
  el.dataset.decisionId = d.decision_id;
  settled(el, true);
  let text = '✓ ' + DONE[d.decision] + ': ' + cfg.names[d.priority];
  if (d.decision === 'escalate') {
    text += ', nivel ' + d.level + '. ' + [...el.querySelectorAll('.plazos li')].map((li) => li.textContent.trim()).join(' · ');
  }
  say(el, text);
  offerUndo(el, Date.now() + cfg.undoSeconds * 1000);
  lastDecided = el;
  refreshCount();
  return true;
}

async function undo(el) {
  const id = el.dataset.decisionId;
  if (!id || el.querySelector('.deshacer').hidden) return;
  const res = await send('/v1/feedback/' + encodeURIComponent(id) + '/undo', {agent: cfg.agent});
  hideUndo(el);
  if (!res.ok) { say(el, '✕ ' + problem(res), true); return; }
  const now = res.data.current;
  el.dataset.decisionId = now ? now.decision_id : '';
  if (now) {
    say(el, '↺ Decisión deshecha; vuelve a regir la anterior: ' + DONE[now.decision] + ' (' + cfg.names[now.priority] + ') de ' + now.agent + '.');
  } else {
    settled(el, false);
    say(el, '↺ Decisión deshecha: el mensaje vuelve a la cola.');
  }
  if (lastDecided === el) lastDecided = null;
  refreshCount();
}

function submitChange(el) {
  const form = el.querySelector('.cambio');
  const priority = form.querySelector('.nueva').value;
  const reason = form.querySelector('.motivo').value;
  const detail = form.querySelector('.detalle').value.trim();
  const error = form.querySelector('.form-error');
  if (priority === el.dataset.priority) {
    error.textContent = 'Elija una prioridad distinta de la actual (' + cfg.names[priority] + ').';
    form.querySelector('.nueva').focus();
  } else if (!reason) {
    error.textContent = 'Elija el motivo del cambio.';
    form.querySelector('.motivo').focus();
  } else if (reason === 'otro' && !detail) {
    error.textContent = 'Escriba el motivo del cambio.';
    form.querySelector('.detalle').focus();
  } else {
    error.textContent = '';
    decide(el, 'change', {priority, reason: reason === 'otro' ? detail : (detail ? reason + ': ' + detail : reason)});
  }
}
function submitEscalation(el) {
  const note = el.querySelector('.escala .nota').value.trim();
  decide(el, 'escalate', note ? {priority: el.dataset.escalate, reason: note} : {priority: el.dataset.escalate});
}

// bulk acceptance of the marked messages, one decision each (each can fail on its own, say a 409)
const bulkButton = document.getElementById('aceptar-marcados');
const bulkStatus = document.getElementById('bloque-estado');
const marked = () => items.filter((el) => el.querySelector('.marca').checked);
function updateBulk() {
  if (!bulkButton) return;
  const n = marked().length;
  bulkButton.disabled = n === 0;
  bulkButton.textContent = 'Aceptar marcados (' + n + ')';
}
async function bulkAccept() {
  const chosen = marked();
  if (!chosen.length) return;
  bulkButton.disabled = true;
  let ok = 0;
  for (const el of chosen) { if (await decide(el, 'accept')) ok += 1; }
  const failed = chosen.length - ok;
  bulkStatus.textContent = ok + (ok === 1 ? ' aceptado' : ' aceptados') +
    (failed ? '; ' + failed + ' no se pudieron aceptar (vea el aviso de cada mensaje).' : '.');
  updateBulk();
}
if (bulkButton) {
  bulkButton.addEventListener('click', bulkAccept);
  document.getElementById('marcar-todos').addEventListener('click', () => {
    items.forEach((el) => { const box = el.querySelector('.marca'); if (!box.disabled) box.checked = true; });
    updateBulk();
  });
}

items.forEach((el, i) => {
  el.querySelector('.aceptar').addEventListener('click', () => decide(el, 'accept'));
  el.querySelector('.cambiar').addEventListener('click', () => openPanel(el, 'cambio'));
  el.querySelector('.escalar').addEventListener('click', () => openPanel(el, 'escala'));
  el.querySelector('.deshacer').addEventListener('click', () => undo(el));
  el.querySelector('.marca').addEventListener('change', updateBulk);
  el.querySelector('.cambio').addEventListener('submit', (ev) => { ev.preventDefault(); submitChange(el); });
  el.querySelector('.escala').addEventListener('submit', (ev) => { ev.preventDefault(); submitEscalation(el); });
  el.querySelectorAll('.cancelar').forEach((b) => b.addEventListener('click', () => closePanels(el, true)));
  el.addEventListener('focusin', () => select(i, false));
  el.addEventListener('click', () => select(i, false));
  if (el.dataset.undoUntil) offerUndo(el, Date.parse(el.dataset.undoUntil));
});

document.addEventListener('keydown', (ev) => {
  if (globalKeys(ev)) return;
  const el = items[current];
  if (ev.key === 'Escape') { if (el) closePanels(el, true); return; }
  if (typing(ev.target) || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const link = (id) => { const a = document.getElementById(id); if (a) location.href = a.href; };
  switch (ev.key) {
    case 'j': select(current + 1); break;
    case 'k': select(current - 1); break;
    case 'a': if (el && !el.querySelector('.aceptar').disabled) decide(el, 'accept'); break;
    case 'A': bulkAccept(); break;
    case 'c': if (el) openPanel(el, 'cambio'); break;
    case 'e': if (el) openPanel(el, 'escala'); break;
    case 'u': {
      const target = el && !el.querySelector('.deshacer').hidden ? el : lastDecided;
      if (target) undo(target);
      break;
    }
    case 'x': if (el) { const box = el.querySelector('.marca'); if (!box.disabled) { box.checked = !box.checked; updateBulk(); } } break;
    case '/': filtersBox.open = true; document.getElementById('f-q').focus(); break;
    case 'n': link('pagina-siguiente'); break;
    case 'p': link('pagina-anterior'); break;
    default: return;
  }
  ev.preventDefault();
});
const filtersBox = document.getElementById('filtros');
if (window.matchMedia('(max-width: 60rem)').matches) filtersBox.open = false;  // phones: the queue first
select(0, false);
updateBulk();
