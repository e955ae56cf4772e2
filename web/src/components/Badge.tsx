// An unread counter: the number for the eye, a sentence for screen readers.

export function Badge({ count }: { count: number }) {
  if (count <= 0) return null;
  const shown = count > 99 ? '99+' : String(count);
  return (
    <span className="badge" data-unread={count}>
      <span aria-hidden="true">{shown}</span>
      <span className="sr-only">, {count} unread</span>
    </span>
  );
}
