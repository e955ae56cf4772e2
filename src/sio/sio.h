/* sio.h - Socket.IO protocol 5 server: namespaces, sockets, events, acks,
 * rooms and broadcasts, on top of Engine.IO sessions.
 *
 * The layer above (the chat contract, or the conformance test server) sees
 * sockets and events: it registers namespaces with handlers, answers acks,
 * emits to one socket, to rooms or to everyone. Every emit is encoded once:
 * a broadcast to a thousand sockets is one JSON encoding and one buffer.
 *
 * Binary: attachments arrive as a list beside the JSON, whose placeholders
 * ({"_placeholder":true,"num":N}) stay in place; emits take attachments the
 * same way (see sio_packet.h).
 *
 * Lifetime: sockets are reference counted. A handler may keep a socket past
 * its callback (for an asynchronous store operation) with sio_socket_ref and
 * later check sio_socket_connected before emitting; emitting to a
 * disconnected socket does nothing. on_disconnect runs once per socket. */
#ifndef PARLEY_SIO_H
#define PARLEY_SIO_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "eio/eio.h"
#include "util/err.h"

typedef struct sio_server sio_server;
typedef struct sio_nsp sio_nsp;
typedef struct sio_socket sio_socket;

typedef struct {
    const uint8_t *data;
    size_t len;
} sio_bin;

typedef struct {
    uint32_t connect_timeout_ms; /* close a session that joins no namespace (45000) */
    /* Connection state recovery: 0 disables; otherwise how long a socket
     * lost without a goodbye is kept, with every packet sent to it. */
    uint32_t recovery_window_ms;
    /* Offsets carry the wall-clock time they were sent, "<boot>-<seq>-<ms>"
     * (sio_offset_time reads it back), so that another node can tell what a
     * client missed (cluster mode). */
    int offset_clock;
} sio_config;

/* A CONNECT that asks to restore a session this node does not hold; see
 * sio_handlers.on_restore and sio_restore_finish. */
typedef struct sio_restore sio_restore;

typedef struct {
    /* A client asks to connect. auth is the CONNECT payload (an object, or
     * NULL), borrowed for the call. Return NULL to accept, an object for the
     * CONNECT_ERROR data (ownership passes to sio), e.g.
     * {"message":"unauthorized"}, or SIO_CONNECT_PENDING to decide later
     * with sio_connect_finish (a store read, say). */
    json_t *(*on_connect)(void *ud, sio_socket *s, json_t *auth);
    /* The socket is connected: the CONNECT reply has been sent. */
    void (*on_connection)(void *ud, sio_socket *s);
    /* A connection state recovery restored this socket (same id, rooms and
     * data as before); missed packets are replayed right after. */
    void (*on_recovered)(void *ud, sio_socket *s);
    /* An event: args (borrowed) holds the arguments after the name.
     * ack_id >= 0 when the client waits for an answer (sio_ack). args is
     * NULL when the arguments are valid JSON nested deeper than this
     * server parses (see sio_packet_decode): the name and ack id are all
     * there is, and the handler answers it as a malformed payload. */
    void (*on_event)(void *ud, sio_socket *s, const char *event, json_t *args,
                     const sio_bin *bins, unsigned nbins, int64_t ack_id);
    /* The socket left ("client namespace disconnect", "transport close",
     * "ping timeout", "parse error", "transport error", "server shutting
     * down"). `recoverable` is 1 when the socket is kept for recovery: the
     * handler keeps its state until on_expired or on_recovered. */
    void (*on_disconnect)(void *ud, sio_socket *s, const char *reason, int recoverable);
    /* A socket kept for recovery was not reclaimed in time. */
    void (*on_expired)(void *ud, sio_socket *s);
    /* Optional. A CONNECT whose auth holds a pid and an offset that this
     * node does not know (the session may live on, or have died with,
     * another node). Return 0 to go on as usual (a new socket: on_connect),
     * or 1 to take the request over: then call sio_restore_finish exactly
     * once, later or inline. auth is borrowed for the call. */
    int (*on_restore)(void *ud, sio_restore *req, const char *pid, const char *offset,
                      json_t *auth);
} sio_handlers;

/* on_connect's answer when the decision comes later. Until
 * sio_connect_finish, the socket is not connected (emits do nothing, it is
 * in no room) and the client's other CONNECTs and events wait or are
 * refused as before a CONNECT reply: a client has one pending CONNECT at a
 * time, whatever the namespace. */
extern json_t *const SIO_CONNECT_PENDING;

/* Ends a CONNECT that on_connect left pending, exactly once (also allowed
 * inline, from on_connect itself before it returns): error NULL
 * accepts it (the CONNECT reply, then on_connection), else error is the
 * CONNECT_ERROR data (stolen). Returns 0 when the client got its answer,
 * or ERR_CLOSED when it had gone meanwhile (on_connection and
 * on_disconnect are then never called for s). Either way sio drops the
 * reference it held since on_connect unless s is now connected: a caller
 * that touches s afterwards holds a reference of its own. */
int sio_connect_finish(sio_socket *s, json_t *error);

/* Creates the server and the Engine.IO server under it (on `net`).
 * ecfg's and cfg's strings must outlive it. */
sio_server *sio_server_new(uv_loop_t *loop, net_server *net, const eio_config *ecfg,
                           const sio_config *cfg);
/* Closes every socket ("server shutting down") and frees the server. */
void sio_server_free(sio_server *srv);
eio_server *sio_server_eio(sio_server *srv);

/* Registers namespace `name` ("/", "/custom"). Connects to unregistered
 * namespaces are refused with {"message":"Invalid namespace"}. */
sio_nsp *sio_namespace(sio_server *srv, const char *name, const sio_handlers *h, void *ud);

typedef struct {
    uint64_t connected;         /* sockets connected now (all namespaces) */
    uint64_t packets_in;        /* packets received */
    uint64_t events_out;        /* events emitted to one socket */
    uint64_t broadcasts;        /* broadcasts encoded */
    uint64_t recipients;        /* deliveries of those broadcasts */
    uint64_t recovered;         /* sockets restored by connection state recovery */
    uint64_t kept;              /* sockets kept now for recovery */
    uint64_t replay_log;        /* packets held now for recovery */
} sio_stats;

void sio_server_stats(const sio_server *srv, sio_stats *out);

/* Ends a restore taken over by on_restore. With sid NULL the CONNECT goes
 * on as usual (on_connect, a new socket). Otherwise a socket with that id is
 * connected in the rooms given (its CONNECT reply carries the same pid as
 * the session it continues, when every node has the same recovery key) and
 * returned with a reference for the caller, who sets up its own state for
 * it (on_connection and on_recovered are not called) and then emits what
 * the client missed. Returns NULL when the client has gone meanwhile or
 * the restore was declined. req is freed by the call. */
sio_socket *sio_restore_finish(sio_restore *req, const char *sid, const char *const *rooms,
                               size_t nrooms);

/* Sets the key recovery pids are derived from (pid = HMAC(key, socket id));
 * nodes that share it can restore each other's sessions. Call before the
 * first client connects; len is at most 32. */
void sio_server_set_recovery_key(sio_server *srv, const uint8_t *key, size_t len);

/* The time part of an offset made with offset_clock, in ms since the
 * epoch, or ERR_NOTFOUND (negative) when the offset has none. */
int64_t sio_offset_time(const char *offset);

/* The pid of socket s, as its CONNECT reply gave it ("" when recovery is
 * off). out holds 21 bytes. */
void sio_socket_pid(const sio_socket *s, char out[21]);

/* ---- sockets ---- */
const char *sio_socket_id(const sio_socket *s);
int sio_socket_connected(const sio_socket *s);
sio_nsp *sio_socket_nsp(const sio_socket *s);
void sio_socket_set_data(sio_socket *s, void *data);
void *sio_socket_data(const sio_socket *s);
sio_socket *sio_socket_ref(sio_socket *s);
void sio_socket_unref(sio_socket *s);

/* Emits event with args (a JSON array, borrowed; NULL for none) to one
 * socket. Returns 0, or a negative util/err.h code: ERR_CLOSED when the
 * socket is gone (or its session closed), ERR_LIMITED when its output limit
 * closed it, ERR_INVAL when args can't be encoded, ERR_NOMEM when jansson
 * could not build the packet. The ack functions return the same codes, and
 * ERR_INVAL for a negative ack_id. */
int sio_emit(sio_socket *s, const char *event, const json_t *args);
int sio_emit_bin(sio_socket *s, const char *event, const json_t *args, const sio_bin *bins,
                 unsigned nbins);
/* Answers the client's ack ack_id with args (a JSON array, borrowed). */
int sio_ack(sio_socket *s, int64_t ack_id, const json_t *args);
int sio_ack_bin(sio_socket *s, int64_t ack_id, const json_t *args, const sio_bin *bins,
                unsigned nbins);

/* Emits and waits for the client's ack: cb runs once with the ack's args
 * (borrowed), or with args NULL when the socket disconnects or timeout_ms
 * passes first, or when the client's answer is nested deeper than this
 * server parses. */
typedef void (*sio_ack_cb)(void *ud, sio_socket *s, json_t *args);
int sio_emit_with_ack(sio_socket *s, const char *event, const json_t *args,
                      uint32_t timeout_ms, sio_ack_cb cb, void *ud);

/* ---- rooms and broadcasts ---- */
/* Join/leave are idempotent. Returns 0. */
int sio_join(sio_socket *s, const char *room);
int sio_leave(sio_socket *s, const char *room);
int sio_in_room(const sio_socket *s, const char *room);
/* Sockets in the room of this node (0 when it does not exist). */
size_t sio_room_size(const sio_nsp *nsp, const char *room);
/* Calls fn for each socket of this node in room (fn may join or leave
 * other rooms, not this one). */
void sio_room_each(sio_nsp *nsp, const char *room, void (*fn)(void *ud, sio_socket *s), void *ud);
/* Calls fn for each room the socket is in. */
void sio_socket_rooms(const sio_socket *s, void (*fn)(void *ud, const char *room), void *ud);

/* Who a broadcast skips: one socket and/or every socket of one room (for
 * instance all connections of the sender). Both may be NULL. */
typedef struct {
    const sio_socket *socket;
    const char *room;
} sio_except;

/* Emits to every socket in any of `rooms` (each socket once), or to every
 * socket of the namespace when nrooms is 0, minus `except` (may be NULL).
 * Encoded once. Returns the number of recipients. */
size_t sio_broadcast(sio_nsp *nsp, const char *const *rooms, size_t nrooms,
                     const sio_except *except, const char *event, const json_t *args);

#endif
