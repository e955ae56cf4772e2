// Name identity as the server defines it: two names are one when their
// NFKC case-folded forms are equal. The browser has no NFKC_Casefold, so
// NFKC + full upper/lower round trip approximates it (covers ß → ss, the
// fullwidth forms and the common case pairs), which is all the UI needs to
// group messages and conversations under one key.

/** The comparison form of a user or room name. */
export function foldName(name: string): string {
  return name.trim().normalize('NFKC').toUpperCase().toLowerCase().normalize('NFKC');
}

export function sameName(a: string | null | undefined, b: string | null | undefined): boolean {
  if (a == null || b == null) return false;
  return foldName(a) === foldName(b);
}

/** A conversation is either a room or a private chat with one peer. */
export type ConvKind = 'room' | 'dm';
export type ConvKey = string;

export function roomKey(room: string): ConvKey {
  return `room:${foldName(room)}`;
}

export function dmKey(peer: string): ConvKey {
  return `dm:${foldName(peer)}`;
}

export function keyKind(key: ConvKey): ConvKind {
  return key.startsWith('room:') ? 'room' : 'dm';
}
