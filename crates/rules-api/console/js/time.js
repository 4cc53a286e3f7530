// Times as people read them, in the browser's own time zone.

export const browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';

const full = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit',
});
const short = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });

export function formatTime(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : full.format(d);
}

export function formatShort(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : short.format(d);
}

/** The value a datetime-local input shows for `date`, in local time. */
export function toLocalInput(date) {
  const pad = (n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/** RFC 3339 (UTC) of a datetime-local input's value, or null when empty or invalid. */
export function fromLocalInput(value) {
  if (!value) return null;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

export function seconds(n) {
  if (n < 60) return `${Math.ceil(n)} s`;
  const m = Math.floor(n / 60);
  const s = Math.ceil(n - m * 60);
  return s ? `${m} min ${s} s` : `${m} min`;
}
