import { describe, expect, it } from 'vitest';
import { dmKey, foldName, roomKey, sameName } from './names.ts';

describe('names', () => {
  it('compares names NFKC case-folded, as the server does', () => {
    expect(sameName('Alice', 'ALICE')).toBe(true);
    expect(sameName('Alice', 'Ａｌｉｃｅ')).toBe(true); // fullwidth
    expect(sameName('Straße', 'STRASSE')).toBe(true);
    expect(sameName('Alice', 'Alicia')).toBe(false);
    expect(sameName('Alice', null)).toBe(false);
  });
  it('trims white space', () => {
    expect(foldName('  Bob\u3000')).toBe('bob');
  });
  it('keys rooms and private chats apart', () => {
    expect(roomKey('General')).toBe('room:general');
    expect(dmKey('General')).toBe('dm:general');
  });
});
