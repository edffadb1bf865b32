// ringfence operator console: progressive enhancement only. Every page works without this file; with it, the
// regions marked data-refresh re-load themselves every few seconds (paused while a form in them is being edited,
// or while the tab is hidden), so the rollout page follows the gates without a manual reload.

const status = document.querySelector('[data-refresh-status]');

function say(text) {
  if (status) status.textContent = text;
}

function follow(region) {
  const url = region.getAttribute('data-refresh');
  const every = Number(region.getAttribute('data-refresh-ms')) || 5000;
  let dirty = false;
  let stopped = false;
  const watch = (root) => {
    root.addEventListener('input', () => {
      dirty = true;
      say('auto-refresh paused while you edit a form');
    });
  };
  watch(region);

  const tick = async () => {
    if (stopped || dirty || document.hidden) return;
    // Someone is about to type into a form of the region: wait, the swap would take the field away.
    const active = document.activeElement;
    if (active && region.contains(active) && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName)) return;
    try {
      const res = await fetch(url, { credentials: 'same-origin', headers: { accept: 'text/html' } });
      const doc = new DOMParser().parseFromString(await res.text(), 'text/html');
      const next = doc.getElementById(region.id);
      if (!res.ok || !next) {
        stopped = true;
        say(res.status === 401 || !next ? 'session ended: log in again' : `refresh failed (${res.status})`);
        return;
      }
      if (dirty) return;
      region.replaceWith(next);
      region = next;
      watch(region);
      say(`updated ${new Date().toLocaleTimeString()}`);
    } catch {
      say('refresh failed: the gateway did not answer; retrying');
    }
  };
  setInterval(tick, every);
}

for (const region of document.querySelectorAll('[data-refresh]')) follow(region);
