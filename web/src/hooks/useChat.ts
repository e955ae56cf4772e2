// Wires the Socket.IO connection to the chat reducer: server events become
// actions, user intents become emits with acks. The flow it owns:
//   connect ── recovered? ── yes ─> ready, resend queued messages
//                        └─ no ──> user:join, rejoin rooms, refetch private
//                                  histories, then resend queued messages
// Every send carries a clientId and is retried with the same one until the
// server acknowledges it, so a message typed offline is delivered once.

import { useCallback, useEffect, useLayoutEffect, useReducer, useRef, useState } from 'react';
import {
  describeError,
  parseChatError,
  parseMessage,
  parseMessages,
  parseRoomHistory,
  parseRooms,
  parseTyping,
  parseUsers,
  type ChatMessage,
} from '../protocol.ts';
import { request, type ChatSocket } from '../socket.ts';
import {
  chatReducer,
  initialState,
  joinedRooms,
  type ChatAction,
  type ChatState,
  type ConnStatus,
  type Conversation,
} from '../state/chat.ts';
import { dmKey, roomKey, type ConvKey } from '../state/names.ts';
import { newClientId, queued, type PendingSend } from '../state/pending.ts';
import { hasTyping } from '../state/typing.ts';
import { EMPTY_SESSION, parseSession, sessionFromState, tokenSubject, type SavedSession } from '../state/session.ts';

export type Phase = 'login' | 'joining' | 'ready';

export const SESSION_KEY = 'parley.session';
const HISTORY_PAGE = 50;
/** After a reload the old connection may still hold our name for a moment. */
const NAME_RETRIES = 6;
const NAME_RETRY_MS = 1500;
/**
 * socket.io-client does not reconnect after the server disconnects it on
 * purpose. A server that says goodbye while shutting down for a restart
 * would leave the page offline, so we try again a few times, slower each time.
 */
const KICK_RETRIES = 3;
const KICK_RETRY_MS = 2000;

export interface LoginError {
  /** The server's error code (`username_taken`, `invalid_username`, `unauthorized`, ...). */
  code: string;
  message: string;
}

export interface ChatController {
  state: ChatState;
  phase: Phase;
  loginError: LoginError | null;
  /** The server refused an anonymous connection: only token sign-in works. */
  tokenRequired: boolean;
  /** The name last used or being signed in (to prefill the form). */
  pendingName: string;
  signIn(username: string): void;
  signInWithToken(token: string): void;
  signOut(): void;
  reconnect(): void;
  createRoom(name: string): Promise<string | null>;
  joinRoom(name: string): Promise<string | null>;
  leaveRoom(name: string): Promise<string | null>;
  open(key: ConvKey | null): void;
  openDm(peer: string): void;
  send(conv: ConvKey, content: string): void;
  loadOlder(conv: ConvKey): void;
  typing(conv: ConvKey, isTyping: boolean): void;
  retrySend(clientId: string): void;
  discardSend(clientId: string): void;
  dismissNotice(): void;
}

function readSession(storage: Storage | null): SavedSession {
  try {
    return parseSession(storage?.getItem(SESSION_KEY) ?? null);
  } catch {
    return EMPTY_SESSION;
  }
}

function writeSession(storage: Storage | null, session: SavedSession | null): void {
  try {
    if (session) storage?.setItem(SESSION_KEY, JSON.stringify(session));
    else storage?.removeItem(SESSION_KEY);
  } catch {
    // Storage full or disabled: a reload will just ask for the name again.
  }
}

export function useChat(s: ChatSocket, storage: Storage | null): ChatController {
  const [saved] = useState(() => readSession(storage));
  const [state, reactDispatch] = useReducer(chatReducer, saved, (sv) =>
    initialState({ username: sv.username, rooms: sv.rooms, dms: sv.dms, active: sv.active }),
  );
  // A synchronous mirror of the reducer's state for event handlers and async
  // flows (the reducer is pure, so running it here too gives the same state).
  const stateRef = useRef<ChatState>(state);
  const dispatch = useCallback((a: ChatAction) => {
    stateRef.current = chatReducer(stateRef.current, a);
    reactDispatch(a);
  }, []);

  const initialName = saved.username ?? (saved.token ? tokenSubject(saved.token) : null);
  const [phase, setPhaseState] = useState<Phase>(initialName ? 'joining' : 'login');
  const phaseRef = useRef<Phase>(phase);
  const setPhase = useCallback((p: Phase) => {
    phaseRef.current = p;
    setPhaseState(p);
  }, []);
  const [loginError, setLoginError] = useState<LoginError | null>(null);
  const [tokenRequired, setTokenRequired] = useState(false);
  const [pendingName, setPendingName] = useState(initialName ?? '');

  const nameRef = useRef<string | null>(initialName);
  const tokenRef = useRef<string | null>(saved.token);
  const joinSeq = useRef(0);
  const inFlight = useRef(new Set<string>());
  const everConnected = useRef(false);
  /** This connection is named and back in its rooms: sends may go out. */
  const syncedRef = useRef(false);
  /** syncedRef as it was when the connection dropped (a recovery may reuse it). */
  const wasSynced = useRef(false);
  const flushRef = useRef<() => void>(() => {});
  const rejoinRef = useRef<() => void>(() => {});
  const timers = useRef(new Set<ReturnType<typeof setTimeout>>());
  const kicks = useRef(0);

  const later = useCallback((ms: number, f: () => void) => {
    const t = setTimeout(() => {
      timers.current.delete(t);
      f();
    }, ms);
    timers.current.add(t);
  }, []);

  const computeStatus = useCallback((): ConnStatus => {
    if (s.connected) return 'connected';
    const online = typeof navigator === 'undefined' || navigator.onLine;
    if (!online || !s.active) return 'offline';
    return everConnected.current ? 'reconnecting' : 'connecting';
  }, [s]);

  // ---- sends -------------------------------------------------------------

  const emitSend = useCallback(
    async (p: PendingSend) => {
      inFlight.current.add(p.clientId);
      dispatch({ type: 'sending', clientId: p.clientId });
      const [event, payload] =
        p.target.kind === 'room'
          ? ['message:room', { room: p.target.room, content: p.content, clientId: p.clientId }]
          : ['message:private', { to: p.target.to, content: p.content, clientId: p.clientId }];
      const ack = await request<{ id: string; timestamp: number }>(s, event, payload);
      inFlight.current.delete(p.clientId);
      if (ack.ok) {
        dispatch({ type: 'sendAcked', clientId: p.clientId, id: String(ack.id), timestamp: Number(ack.timestamp) });
        return;
      }
      switch (ack.error) {
        case 'offline':
          // Resent by the next connect, same clientId.
          dispatch({ type: 'sendRequeue', clientId: p.clientId });
          break;
        case 'not_joined':
          // The server forgot our name: sign in again, then resend.
          dispatch({ type: 'sendRequeue', clientId: p.clientId });
          if (s.connected && syncedRef.current) rejoinRef.current();
          break;
        case 'timeout':
        case 'rate_limited':
        case 'internal':
        case 'invalid_ack':
          dispatch({ type: 'sendRequeue', clientId: p.clientId });
          later(Math.min(1000 * 2 ** p.attempts, 8000), () => flushRef.current());
          break;
        default:
          dispatch({ type: 'sendFailed', clientId: p.clientId, error: describeError(ack.error, ack.message) });
      }
    },
    [s, dispatch, later],
  );

  const flush = useCallback(() => {
    if (!s.connected || !syncedRef.current) return;
    for (const p of queued(stateRef.current.pending)) {
      if (!inFlight.current.has(p.clientId)) void emitSend(p);
    }
  }, [s, emitSend]);
  useLayoutEffect(() => {
    flushRef.current = flush;
  }, [flush]);

  // ---- history -----------------------------------------------------------

  const fetchLatest = useCallback(
    async (conv: Conversation) => {
      const query = conv.kind === 'room' ? { room: conv.name } : { with: conv.name };
      const ack = await request<{ messages: unknown; hasMore: unknown }>(s, 'history:fetch', {
        ...query,
        limit: HISTORY_PAGE,
      });
      if (ack.ok) {
        dispatch({
          type: 'history',
          key: conv.key,
          name: conv.name,
          messages: parseMessages(ack.messages),
          hasMore: ack.hasMore === true,
          mode: 'latest',
        });
      }
    },
    [s, dispatch],
  );

  const loadOlder = useCallback(
    (key: ConvKey) => {
      const conv = stateRef.current.conversations[key];
      if (!conv || conv.loadingOlder || !conv.hasMore || !s.connected) return;
      const oldest: ChatMessage | undefined = conv.messages[0];
      if (!oldest) {
        void fetchLatest(conv);
        return;
      }
      dispatch({ type: 'loadingOlder', key, value: true });
      const query = conv.kind === 'room' ? { room: conv.name } : { with: conv.name };
      void request<{ messages: unknown; hasMore: unknown }>(s, 'history:fetch', {
        ...query,
        before: oldest.id,
        limit: HISTORY_PAGE,
      }).then((ack) => {
        if (ack.ok) {
          dispatch({
            type: 'history',
            key,
            name: conv.name,
            messages: parseMessages(ack.messages),
            hasMore: ack.hasMore === true,
            mode: 'older',
          });
        } else {
          dispatch({ type: 'loadingOlder', key, value: false });
          if (ack.error !== 'offline') dispatch({ type: 'notice', text: describeError(ack.error, ack.message) });
        }
      });
    },
    [s, dispatch, fetchLatest],
  );

  // ---- sign-in and resync --------------------------------------------------

  /** After a connect that was not recovered: get our rooms and histories back. */
  const resync = useCallback(async () => {
    const st = stateRef.current;
    await Promise.all(
      joinedRooms(st).map(async (name) => {
        const ack = await request<{ room: { name: string; users: number } }>(s, 'room:join', name);
        if (ack.ok) {
          dispatch({ type: 'roomJoined', name: ack.room.name, users: ack.room.users });
        } else if (ack.error === 'room_not_found' || ack.error === 'invalid_room') {
          dispatch({ type: 'roomLeft', name });
          dispatch({ type: 'notice', text: `Room “${name}” is gone.` });
        }
      }),
    );
    const dms = Object.values(stateRef.current.conversations).filter((c) => c.kind === 'dm');
    await Promise.all(dms.map((c) => fetchLatest(c)));
  }, [s, dispatch, fetchLatest]);

  const join = useCallback(
    async (name: string, auto: boolean, attempt = 0) => {
      const seq = ++joinSeq.current;
      syncedRef.current = false;
      // A re-join after a reconnect keeps the chat on screen; only a first
      // sign-in shows the "signing in" state.
      if (phaseRef.current !== 'ready') setPhase('joining');
      const ack = await request<{ user: { id: string; username: string } }>(s, 'user:join', name);
      if (seq !== joinSeq.current) return; // superseded by another sign-in
      if (ack.ok) {
        const username = typeof ack.user?.username === 'string' ? ack.user.username : name;
        nameRef.current = username;
        setPendingName(username);
        setLoginError(null);
        dispatch({ type: 'signedIn', username });
        kicks.current = 0;
        setPhase('ready');
        await resync();
        if (seq !== joinSeq.current || !s.connected) return;
        syncedRef.current = true;
        flushRef.current();
        return;
      }
      if (ack.error === 'offline') return; // the next connect retries
      if (ack.error === 'timeout' || ack.error === 'rate_limited' || ack.error === 'internal') {
        later(NAME_RETRY_MS, () => {
          if (s.connected && seq === joinSeq.current) void join(name, auto, attempt + 1);
        });
        return;
      }
      if (ack.error === 'username_taken' && auto && attempt < NAME_RETRIES) {
        // Probably our own previous connection, still inside its recovery window.
        later(NAME_RETRY_MS, () => {
          if (s.connected && seq === joinSeq.current) void join(name, auto, attempt + 1);
        });
        return;
      }
      setLoginError({ code: ack.error, message: describeError(ack.error, ack.message) });
      setPhase('login');
    },
    [s, dispatch, setPhase, resync, later],
  );

  useLayoutEffect(() => {
    rejoinRef.current = () => {
      if (nameRef.current) void join(nameRef.current, true);
    };
  }, [join]);

  // ---- socket events -------------------------------------------------------

  useEffect(() => {
    const setStatus = () => dispatch({ type: 'status', status: computeStatus() });

    const onConnect = () => {
      everConnected.current = true;
      if (tokenRef.current === null) setTokenRequired(false);
      dispatch({ type: 'status', status: 'connected' });
      void request(s, 'rooms:list');
      if (s.recovered && phaseRef.current === 'ready' && wasSynced.current) {
        // Identity, rooms and missed packets are back: only resend.
        syncedRef.current = true;
        flushRef.current();
        return;
      }
      const name = nameRef.current;
      if (name) void join(name, true);
      else setPhase('login');
    };

    const onDisconnect = (reason: string) => {
      wasSynced.current = syncedRef.current;
      syncedRef.current = false;
      inFlight.current.clear();
      dispatch({ type: 'disconnected', status: computeStatus() });
      if (reason === 'io server disconnect') {
        if (kicks.current < KICK_RETRIES) {
          kicks.current++;
          later(KICK_RETRY_MS * kicks.current, () => {
            if (!s.connected && !s.active) s.connect();
          });
        } else {
          dispatch({ type: 'notice', text: 'The server closed the connection.' });
        }
      }
    };

    const onConnectError = (err: Error & { data?: unknown }) => {
      if (err.message === 'unauthorized') {
        setTokenRequired(true);
        if (tokenRef.current !== null) {
          setLoginError({ code: 'unauthorized', message: describeError('unauthorized') });
          tokenRef.current = null;
          s.auth = {};
        }
        nameRef.current = null;
        setPhase('login');
      } else if (!s.active) {
        dispatch({ type: 'notice', text: `Connection refused: ${err.message}` });
      }
      setStatus();
    };

    const onUsers = (v: unknown) => dispatch({ type: 'users', users: parseUsers(v) });
    const onRooms = (v: unknown) => dispatch({ type: 'rooms', rooms: parseRooms(v) });
    const onMessage = (v: unknown) => {
      const m = parseMessage(v);
      if (m) dispatch({ type: 'received', message: m });
    };
    const onHistory = (v: unknown) => {
      const h = parseRoomHistory(v);
      if (h) {
        dispatch({
          type: 'history',
          key: roomKey(h.room),
          name: h.room,
          messages: h.messages,
          hasMore: h.hasMore,
          mode: 'latest',
        });
      }
    };
    const onTyping = (v: unknown) => {
      const ev = parseTyping(v);
      if (ev) dispatch({ type: 'typing', event: ev, now: Date.now() });
    };
    const onChatError = (v: unknown) => {
      const e = parseChatError(v);
      if (e) dispatch({ type: 'notice', text: describeError(e.error, e.message) });
    };
    const onReconnectAttempt = () => setStatus();

    // A reload or navigation is a disconnect we ask for: the server frees our
    // name at once instead of holding it for the recovery window.
    const onPageHide = () => {
      if (s.connected) s.disconnect();
    };
    const onPageShow = (e: PageTransitionEvent) => {
      if (e.persisted && !s.connected) s.connect();
    };

    s.on('connect', onConnect);
    s.on('disconnect', onDisconnect);
    s.on('connect_error', onConnectError);
    s.on('users:update', onUsers);
    s.on('rooms:update', onRooms);
    s.on('message:receive', onMessage);
    s.on('room:history', onHistory);
    s.on('typing', onTyping);
    s.on('chat:error', onChatError);
    s.io.on('reconnect_attempt', onReconnectAttempt);
    window.addEventListener('online', setStatus);
    window.addEventListener('offline', setStatus);
    window.addEventListener('pagehide', onPageHide);
    window.addEventListener('pageshow', onPageShow);

    if (tokenRef.current) s.auth = { token: tokenRef.current };
    if (s.connected) onConnect();
    else s.connect();

    return () => {
      s.off('connect', onConnect);
      s.off('disconnect', onDisconnect);
      s.off('connect_error', onConnectError);
      s.off('users:update', onUsers);
      s.off('rooms:update', onRooms);
      s.off('message:receive', onMessage);
      s.off('room:history', onHistory);
      s.off('typing', onTyping);
      s.off('chat:error', onChatError);
      s.io.off('reconnect_attempt', onReconnectAttempt);
      window.removeEventListener('online', setStatus);
      window.removeEventListener('offline', setStatus);
      window.removeEventListener('pagehide', onPageHide);
      window.removeEventListener('pageshow', onPageShow);
    };
  }, [s, dispatch, computeStatus, join, setPhase, later]);

  // Expire typing notices whose "stopped" never came.
  const typingActive = hasTyping(state.typing);
  useEffect(() => {
    if (!typingActive) return undefined;
    const t = setInterval(() => dispatch({ type: 'tick', now: Date.now() }), 1000);
    return () => clearInterval(t);
  }, [typingActive, dispatch]);

  // Remember the session for a reload.
  useEffect(() => {
    if (phase === 'ready' && state.me) writeSession(storage, sessionFromState(state, tokenRef.current));
  }, [phase, state, storage]);

  useEffect(() => {
    const pending = timers.current;
    return () => {
      for (const t of pending) clearTimeout(t);
      pending.clear();
    };
  }, []);

  // ---- intents -------------------------------------------------------------

  const signIn = useCallback(
    (username: string) => {
      nameRef.current = username;
      setPendingName(username);
      setLoginError(null);
      if (s.connected) void join(username, false);
      else {
        setPhase('joining');
        s.connect();
      }
    },
    [s, join, setPhase],
  );

  const signInWithToken = useCallback(
    (token: string) => {
      const sub = tokenSubject(token);
      if (!sub) {
        setLoginError({ code: 'invalid_token', message: 'That does not look like a sign-in token (no user name in it).' });
        return;
      }
      tokenRef.current = token.trim();
      nameRef.current = sub;
      setPendingName(sub);
      setLoginError(null);
      setPhase('joining');
      // The token travels in the CONNECT packet: start a fresh connection.
      s.auth = { token: tokenRef.current };
      if (s.connected) s.disconnect();
      s.connect();
    },
    [s, setPhase],
  );

  const signOut = useCallback(() => {
    joinSeq.current++;
    nameRef.current = null;
    tokenRef.current = null;
    writeSession(storage, null);
    dispatch({ type: 'signedOut' });
    setPhase('login');
    setLoginError(null);
    // Our own disconnect frees the name at once; then come back anonymous.
    s.disconnect();
    s.auth = {};
    s.connect();
  }, [s, storage, dispatch, setPhase]);

  const reconnect = useCallback(() => {
    if (!s.connected) s.connect();
  }, [s]);

  // room:create and room:join answer alike: join the room, open it.
  const enterRoom = useCallback(
    async (event: 'room:create' | 'room:join', name: string): Promise<string | null> => {
      const ack = await request<{ room: { name: string; users: number } }>(s, event, name);
      if (!ack.ok) return describeError(ack.error, ack.message);
      dispatch({ type: 'roomJoined', name: ack.room.name, users: ack.room.users });
      dispatch({ type: 'open', key: roomKey(ack.room.name) });
      return null;
    },
    [s, dispatch],
  );
  const createRoom = useCallback((name: string) => enterRoom('room:create', name), [enterRoom]);
  const joinRoom = useCallback((name: string) => enterRoom('room:join', name), [enterRoom]);

  const leaveRoom = useCallback(
    async (name: string): Promise<string | null> => {
      const ack = await request(s, 'room:leave', name);
      if (!ack.ok && ack.error !== 'not_in_room' && ack.error !== 'room_not_found') {
        return describeError(ack.error, ack.message);
      }
      dispatch({ type: 'roomLeft', name });
      return null;
    },
    [s, dispatch],
  );

  const open = useCallback(
    (key: ConvKey | null) => {
      dispatch({ type: 'open', key });
      const conv = key ? stateRef.current.conversations[key] : undefined;
      if (conv && conv.kind === 'dm' && !conv.historyLoaded && s.connected) void fetchLatest(conv);
    },
    [s, dispatch, fetchLatest],
  );

  const openDm = useCallback(
    (peer: string) => {
      dispatch({ type: 'openDm', peer });
      const conv = stateRef.current.conversations[dmKey(peer)];
      if (conv && !conv.historyLoaded && s.connected) void fetchLatest(conv);
    },
    [s, dispatch, fetchLatest],
  );

  const send = useCallback(
    (key: ConvKey, content: string) => {
      const conv = stateRef.current.conversations[key];
      if (!conv) return;
      const p: PendingSend = {
        clientId: newClientId(),
        conv: key,
        target: conv.kind === 'room' ? { kind: 'room', room: conv.name } : { kind: 'dm', to: conv.name },
        content,
        createdAt: Date.now(),
        status: 'queued',
        attempts: 0,
      };
      dispatch({ type: 'send', pending: p });
      flushRef.current();
    },
    [dispatch],
  );

  const typing = useCallback(
    (key: ConvKey, isTyping: boolean) => {
      const conv = stateRef.current.conversations[key];
      if (!conv || !s.connected || !syncedRef.current) return;
      const payload = conv.kind === 'room' ? { room: conv.name, isTyping } : { to: conv.name, isTyping };
      void request(s, 'typing', payload);
    },
    [s],
  );

  const retrySend = useCallback(
    (clientId: string) => {
      dispatch({ type: 'sendRetry', clientId });
      flushRef.current();
    },
    [dispatch],
  );

  const discardSend = useCallback((clientId: string) => dispatch({ type: 'sendDiscard', clientId }), [dispatch]);
  const dismissNotice = useCallback(() => dispatch({ type: 'notice', text: null }), [dispatch]);

  return {
    state,
    phase,
    loginError,
    tokenRequired,
    pendingName,
    signIn,
    signInWithToken,
    signOut,
    reconnect,
    createRoom,
    joinRoom,
    leaveRoom,
    open,
    openDm,
    send,
    loadOlder,
    typing,
    retrySend,
    discardSend,
    dismissNotice,
  };
}
