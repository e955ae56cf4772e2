import { describe, expect, it } from 'vitest';
import { chatReducer, initialState } from './chat.ts';
import { connectAuth, parseIdentity, tokenSubject } from './auth.ts';
import { EMPTY_SESSION, parseSession, sessionFromState } from './saved.ts';

function b64url(s: string): string {
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

describe('saved session', () => {
  it('round-trips what a reload needs', () => {
    let s = chatReducer(initialState(), { type: 'signedIn', username: 'Alice' });
    s = chatReducer(s, { type: 'roomJoined', name: 'General' });
    s = chatReducer(s, { type: 'openDm', peer: 'Bob' });
    const saved = sessionFromState(s, null);
    expect(saved).toEqual({ username: 'Alice', token: null, rooms: ['General'], dms: ['Bob'], active: 'dm:bob' });
    const restored = initialState(parseSession(JSON.stringify(saved)));
    expect(Object.keys(restored.conversations).sort()).toEqual(['dm:bob', 'room:general']);
    expect(restored.active).toBe('dm:bob');
  });

  it('ignores unreadable storage', () => {
    expect(parseSession(null)).toBe(EMPTY_SESSION);
    expect(parseSession('{not json')).toBe(EMPTY_SESSION);
    expect(parseSession('42')).toBe(EMPTY_SESSION);
    expect(parseSession('{"username":7,"rooms":["a",3]}')).toEqual({ ...EMPTY_SESSION, rooms: ['a'] });
  });

  it('reads the subject of a JWT without verifying it', () => {
    const token = `${b64url('{"alg":"HS256"}')}.${b64url(JSON.stringify({ sub: 'alice' }))}.sig`;
    expect(tokenSubject(token)).toBe('alice');
    // btoa needs Latin-1: encode the UTF-8 bytes first.
    const utf8 = String.fromCharCode(...new TextEncoder().encode(JSON.stringify({ sub: 'Zoë' })));
    const token2 = `${b64url('{"alg":"HS256"}')}.${b64url(utf8)}.sig`;
    expect(tokenSubject(token2)).toBe('Zoë');
    expect(tokenSubject(token.replace(/\..*?\./, '.e30.'))).toBeNull(); // {} has no sub
    expect(tokenSubject('garbage')).toBeNull();
  });
});

describe('guest identity (v2)', () => {
  it('round-trips and refuses anything incomplete', () => {
    const id = { id: 'u1', username: 'Alice', token: 'resume' };
    expect(parseIdentity(JSON.stringify(id))).toEqual(id);
    expect(parseIdentity(null)).toBeNull();
    expect(parseIdentity('{oops')).toBeNull();
    expect(parseIdentity(JSON.stringify({ ...id, token: '' }))).toBeNull();
    expect(parseIdentity(JSON.stringify({ id: 'u1', username: 'Alice' }))).toBeNull();
  });

  it('becomes the CONNECT auth; no token, no auth', () => {
    expect(connectAuth('resume')).toEqual({ token: 'resume' });
    expect(connectAuth(null)).toEqual({});
  });
});
