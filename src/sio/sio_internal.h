/* sio_internal.h - structures shared by the files of the sio module only. */
#ifndef PARLEY_SIO_INTERNAL_H
#define PARLEY_SIO_INTERNAL_H

#include <uthash.h>

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

struct sio_socket {
    char id[RAND_ID_LEN + 1];
    uint8_t connected;
    uint32_t refs;
    uint32_t bcast_gen;      /* last broadcast that reached it (dedupe) */
    sio_client *client;
    sio_nsp *nsp;
    sio_socket *client_next;
    sio_socket *nsp_prev, *nsp_next;
    sio_member *rooms;
    sio_wait_ack *acks;
    int64_t next_ack;
    void *data;
};

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
    tq_node connect_timeout;
};

struct sio_server {
    uv_loop_t *loop;
    eio_server *eio;
    sio_config cfg;
    sio_nsp *nsps;
    tq_queue connect_q, ack_q;
    uint32_t bcast_gen;
    int timers_open;
};

/* sio_rooms.c */
void sio__leave_all(sio_socket *s);
void sio__rooms_free(sio_nsp *nsp);

/* sio_server.c */
int sio__send_packet(sio_socket *s, sio_ptype type, int64_t ack_id, const json_t *data,
                     const sio_bin *bins, unsigned nbins);
/* Encodes an event packet for nsp into an Engine.IO message (the caller
 * releases it). Returns 0 or -1. */
int sio__encode_event(eio_msg *m, const sio_nsp *nsp, const char *event, const json_t *args);

#endif
