// Dates and times in the reader's locale (the browser's default locale).

function sameDay(a: Date, b: Date): boolean {
  return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
}

/** Short time for a message: "14:05" today, "12 Mar, 14:05" otherwise. */
export function formatTime(ts: number, now: number = Date.now(), locale?: string): string {
  const d = new Date(ts);
  if (sameDay(d, new Date(now))) {
    return new Intl.DateTimeFormat(locale, { hour: 'numeric', minute: '2-digit' }).format(d);
  }
  return new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeStyle: 'short' }).format(d);
}

/** Full date and time, for the tooltip. */
export function formatFull(ts: number, locale?: string): string {
  return new Intl.DateTimeFormat(locale, { dateStyle: 'full', timeStyle: 'medium' }).format(new Date(ts));
}

/** The label of a day separator: "Today", "Yesterday" or the date. */
export function dayLabel(ts: number, now: number = Date.now(), locale?: string): string {
  const d = new Date(ts);
  const today = new Date(now);
  if (sameDay(d, today)) return 'Today';
  const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
  if (sameDay(d, yesterday)) return 'Yesterday';
  return new Intl.DateTimeFormat(locale, { dateStyle: 'full' }).format(d);
}

export function dayStamp(ts: number): string {
  const d = new Date(ts);
  return `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;
}
