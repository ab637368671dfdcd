"use strict";
const cfg = JSON.parse(document.getElementById('consola-datos').textContent);
const fmt = new Intl.NumberFormat('es-CO');
const help = document.getElementById('ayuda');
document.getElementById('abrir-ayuda').addEventListener('click', () => help.showModal());

// The live count of what is waiting: a small JSON endpoint, read every few seconds and after each decision.
const waitingEl = document.getElementById('en-espera');
const reviewEl = document.getElementById('para-revision');
const noticeEl = document.getElementById('novedad');
const waitingUrl = '/v1/review/waiting?since=' + encodeURIComponent(cfg.since);
async function refreshCount() {
  try {
    const r = await fetch(waitingUrl, {credentials: 'same-origin', headers: {accept: 'application/json'}});
    if (!r.ok) return;
    const data = await r.json();
    waitingEl.textContent = fmt.format(data.waiting);
    reviewEl.textContent = fmt.format(data.needs_review);
    noticeEl.hidden = data.new <= 0;  // classified since this page was drawn, still waiting
    noticeEl.textContent = data.new === 1 ? '1 nuevo desde que abrió la página'
                                          : fmt.format(data.new) + ' nuevos desde que abrió la página';
  } catch (err) { /* offline for a moment: the next tick tries again */ }
}
refreshCount();
setInterval(() => { if (document.visibilityState === 'visible') refreshCount(); }, cfg.pollSeconds * 1000);

function typing(target) {  // keys go to the field, not to the shortcuts (a checkbox takes no letters)
  if (target.tagName === 'INPUT') return !['checkbox', 'radio', 'button', 'submit'].includes(target.type);
  return ['SELECT', 'TEXTAREA'].includes(target.tagName) || target.isContentEditable;
}
let pendingG = false;
const globalKeys = (ev) => {
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return false;
  if (ev.key === '?' && !typing(ev.target)) {
    ev.preventDefault();
    if (help.open) help.close(); else help.showModal();
    return true;
  }
  if (help.open || typing(ev.target)) return help.open;
  if (pendingG) {
    pendingG = false;
    if (ev.key === 'c') { location.href = '/review'; return true; }
    if (ev.key === 'q') { location.href = '/review/quality'; return true; }
  }
  if (ev.key === 'g') { pendingG = true; setTimeout(() => { pendingG = false; }, 1500); return true; }
  return false;
};
