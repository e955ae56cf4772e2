/* sio_internal.h - structures shared by the files of the sio module only. */
#ifndef PARLEY_SIO_INTERNAL_H
#define PARLEY_SIO_INTERNAL_H

#include <openssl/types.h>
#include "util/uthash_oom.h" /* uthash on mem.h: aborts on OOM */

#include "sio/sio.h"
#include "sio/sio_packet.h"
#include "util/rand.h"
#include "util/tq.h"

typedef struct sio_room sio_room;
typedef struct sio_member sio_member;
typedef struct sio_client sio_client;

/* One socket's place in one room: linked in the room and in the socket. */
struct sio_member {
    sio_room *room;
    sio_socket *sock;
    sio_member *room_prev, *room_next;
    sio_member *sock_next;
};

struct sio_room {
    char *name;
    sio_member *members;
    size_t count;
    UT_hash_handle hh;
};

/* An ack we wait for from the client. */
typedef struct sio_wait_ack {
    int64_t id;
    sio_ack_cb cb;
    void *ud;
    tq_node timeout;
    sio_socket *sock;
    struct sio_wait_ack *next;
} sio_wait_ack;

/* Laid out to fit 104 bytes (a 112-byte malloc block): one per connection,
 * so every 8 bytes past a block boundary cost 16 per idle connection. */
struct sio_socket {
    char id[RAND_ID_LEN + 1];
    uint8_t connected;
    uint16_t refs;           /* SIO__REFS_MAX at most (sio_socket_ref) */
    uint32_t bcast_gen;      /* last broadcast that reached it (dedupe) */
    uint32_t next_ack;       /* id of its next server-to-client ack */
    sio_client *client;
    sio_nsp *nsp;
    sio_socket *client_next;
    sio_socket *nsp_prev, *nsp_next;
    sio_member *rooms;
    sio_wait_ack *acks;
    /* The last offset reserved before it connected: a client that comes
     * back with its pid but no offset has received nothing, and is owed
     * every packet after this one (sio__rec_take). */
    uint64_t rec_from;
    void *data;
};

/* References one socket may hold: each is an owner (the client, the chat
 * connection, one per queued event, a recovery record), so thousands
 * mean a leak; sio_socket_ref aborts past it rather than wrap. */
#define SIO__REFS_MAX UINT16_MAX

struct sio_nsp {
    char *name;
    sio_server *srv;
    const sio_handlers *h;
    void *ud;
    sio_socket *sockets;
    size_t count;
    sio_room *rooms;
    UT_hash_handle hh;
};

/* A binary packet waiting for its attachments. */
typedef struct {
    sio_packet pkt;
    unsigned got;
    sio_bin bins[SIO_MAX_ATTACHMENTS];
} sio_binwait;

struct sio_client {
    eio_session *es;
    sio_server *srv;
    sio_socket *sockets;
    sio_binwait *bin;
    tq_owned *wait;         /* in connect_q until the first CONNECT
                               (--connect-timeout), or NULL */
    sio_restore *restore;   /* a CONNECT waiting for on_restore's answer */
    sio_socket *pending;    /* a CONNECT on_connect answered later
                               (SIO_CONNECT_PENDING): its socket, not
                               connected, until sio_connect_finish */
};

/* A CONNECT handed to on_restore (sio_restore_finish ends it). */
struct sio_restore {
    sio_client *client;     /* NULL once the client is gone */
    sio_nsp *nsp;
    json_t *auth;           /* the CONNECT payload (a reference) */
};

/* Connection state recovery (sio_recovery.c). Every replayable packet (an
 * event to one socket or a broadcast) gets an offset "<boot>-<seq>" as its
 * last argument and stays in a log, shared bytes and all, for the recovery
 * window; a socket lost without a goodbye is kept (id, rooms, the layer
 * above's data) under its pid until it comes back or the window ends. */
typedef struct sio_logged {
    struct sio_logged *next;
    uint64_t seq;
    uint64_t at;                       /* uv_now when sent */
    eio_msg msg;
    sio_nsp *nsp;
    char target[RAND_ID_LEN + 1];      /* a direct emit's socket id, or "" */
    char except_sid[RAND_ID_LEN + 1];
    char *except_room;
    char **rooms;                      /* broadcast targets; none: everyone */
    uint32_t nrooms;
} sio_logged;

typedef struct sio_kept {
    char pid[RAND_ID_LEN + 1];
    sio_socket *sock;                  /* disconnected, holding its data */
    char **rooms;
    size_t nrooms;
    tq_node expiry;
    UT_hash_handle hh;
} sio_kept;

typedef struct {
    int enabled;
    char boot[9];                      /* offset prefix, new every start */
    uint8_t key[32];                   /* pid = HMAC(key, socket id) */
    EVP_MAC_CTX *mac;                  /* HMAC-SHA256 keyed with key, reused */
    uint64_t next_seq;
    uint64_t retention_ms;
    size_t max_packets;
    sio_logged *head, *tail;
    size_t count;
    sio_kept *kept;                    /* by pid */
    tq_queue kept_q;
} sio_recovery;

struct sio_server {
    uv_loop_t *loop;
    eio_server *eio;
    sio_config cfg;
    sio_nsp *nsps;
    tq_queue connect_q, ack_q;
    uint32_t bcast_gen;
    int timers_open;
    sio_recovery rec;
    sio_stats stats;
};

/* sio_rooms.c */
void sio__leave_all(sio_socket *s);
void sio__rooms_free(sio_nsp *nsp);

/* sio_recovery.c */
void sio__rec_init(sio_server *srv, const eio_config *ecfg);
void sio__rec_free(sio_server *srv);
/* The pid of socket s (its recovery handle). */
void sio__rec_pid(const sio_server *srv, const sio_socket *s, char out[RAND_ID_LEN + 1]);
/* Reserves the next offset and writes it as text; returns its seq. */
uint64_t sio__rec_next_offset(sio_server *srv, char out[48]);
/* Logs a sent packet (a reference to msg is taken). target: one socket id
 * or NULL; rooms/nrooms: broadcast targets (nrooms 0 and no target: all). */
void sio__rec_log(sio_server *srv, sio_nsp *nsp, uint64_t seq, const eio_msg *msg,
                  const char *target, const char *const *rooms, size_t nrooms,
                  const sio_except *except);
/* s is disconnecting for a recoverable reason: keep it (takes the
 * client's reference). Call before leaving its rooms. */
void sio__rec_keep(sio_server *srv, sio_socket *s);
/* A CONNECT with auth {pid, offset}, or {pid} alone from a client that has
 * received no event yet: returns the kept socket, removed from the kept set,
 * with *from_seq set to the client's last offset (without one: the last
 * offset before the socket connected) and its room names in *rooms (the
 * caller frees them with sio__rec_rooms_free), or NULL when there is nothing
 * to recover (unknown pid, expired, wrong namespace, an offset that is not
 * ours, or packets missing from the log). */
sio_socket *sio__rec_take(sio_server *srv, sio_nsp *nsp, const json_t *auth, uint64_t *from_seq,
                          char ***rooms, size_t *nrooms);
void sio__rec_rooms_free(char **rooms, size_t nrooms);
/* Sends s every logged packet after from_seq that was meant for it. */
void sio__rec_replay(sio_server *srv, sio_socket *s, char **rooms, size_t nrooms,
                     uint64_t from_seq);
/* Reason strings after which a socket may be recovered. */
int sio__rec_reason_recoverable(const char *reason);

/* sio_server.c */
int sio__send_packet(sio_socket *s, sio_ptype type, int64_t ack_id, const json_t *data,
                     const sio_bin *bins, unsigned nbins);
/* Encodes an event packet for nsp into an Engine.IO message (the caller
 * releases it). With recovery on, the packet gets the next offset as its
 * last argument and *seq is set (else 0): log it with sio__rec_log once
 * sent. Returns 0, ERR_NOMEM or SIO_PACKET_EINVAL. */
int sio__encode_event(eio_msg *m, const sio_nsp *nsp, const char *event, const json_t *args,
                      uint64_t *seq);

#endif
