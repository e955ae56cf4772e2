/* sio_recovery.c - connection state recovery, as Socket.IO 4.6+ does it.
 *
 * While enabled, the CONNECT reply carries a pid, and every replayable
 * packet (an event to one socket or a broadcast; not acks) carries an offset
 * "<boot>-<seq>" as its last argument. Sent packets stay in a log (a
 * reference to the very bytes that were sent, plus who they were for) for
 * the recovery window plus the longest time a dead connection can go
 * unnoticed (pingInterval + pingTimeout), bounded in count.
 *
 * A socket that goes away without saying goodbye (transport close or error,
 * ping timeout) is kept under its pid with its id, room names and the data of
 * the layer above. A CONNECT whose auth holds that pid and an offset still
 * in the log gets the same socket back and every logged packet after the
 * offset that was meant for it, in order. A client that received no event
 * before it lost its transport has no offset to send: its pid alone gets it
 * every packet meant for it since the socket connected. pid = HMAC-SHA256(key of this
 * run, socket id): unguessable, and nothing stored per live socket. */
#include "sio/sio_internal.h"
#include "util/b64.h"
#include "util/log.h"
#include "util/mem.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SIO_REC_MAX_PACKETS 200000

static const char *const sio__recoverable[] = {
    "transport close", "transport error", "ping timeout", "forced close",
};

int sio__rec_reason_recoverable(const char *reason)
{
    for (size_t i = 0; i < sizeof(sio__recoverable) / sizeof(*sio__recoverable); i++)
        if (strcmp(reason, sio__recoverable[i]) == 0)
            return 1;
    return 0;
}

static void sio__names_free(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        mem_free(names[i]);
    mem_free(names);
}

static void sio__logged_free(sio_logged *e)
{
    eio_msg_release(&e->msg);
    sio__names_free(e->rooms, e->nrooms);
    mem_free(e->except_room);
    mem_free(e);
}

static void sio__kept_free(sio_server *srv, sio_kept *k)
{
    HASH_DEL(srv->rec.kept, k);
    tq_remove(&k->expiry);
    sio__names_free(k->rooms, k->nrooms);
    mem_free(k);
}

static void sio__kept_expired(tq_queue *q, tq_node *n)
{
    sio_server *srv = q->data;
    sio_kept *k = mem_container_of(n, sio_kept, expiry);
    sio_socket *s = k->sock;
    sio__kept_free(srv, k);
    if (s->nsp->h->on_expired)
        s->nsp->h->on_expired(s->nsp->ud, s);
    sio_socket_unref(s);
}

/* Keys r->mac with r->key. The context is made once and re-keyed; each pid
 * then only resets it: the one-shot HMAC() looks the algorithm up in
 * OpenSSL's provider tables on every call, which was a third of the
 * server's instructions per connection. */
static void sio__rec_mac_key(sio_recovery *r)
{
    if (r->mac == NULL) {
        EVP_MAC *hmac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
        r->mac = hmac ? EVP_MAC_CTX_new(hmac) : NULL;
        EVP_MAC_free(hmac); /* the context keeps its own reference */
    }
    char digest[] = OSSL_DIGEST_NAME_SHA2_256;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    if (r->mac == NULL || EVP_MAC_init(r->mac, r->key, sizeof(r->key), params) != 1) {
        fprintf(stderr, "parley: HMAC-SHA256 unavailable\n");
        abort();
    }
}

void sio__rec_init(sio_server *srv, const eio_config *ecfg)
{
    sio_recovery *r = &srv->rec;
    tq_init(&r->kept_q, srv->loop, sio__kept_expired, srv);
    r->enabled = srv->cfg.recovery_window_ms > 0;
    if (RAND_bytes(r->key, sizeof(r->key)) != 1) {
        fprintf(stderr, "parley: RAND_bytes failed\n");
        abort();
    }
    sio__rec_mac_key(r);
    char id[RAND_ID_LEN + 1];
    rand_id(id);
    memcpy(r->boot, id, 8);
    r->boot[8] = '\0';
    r->next_seq = 1;
    r->retention_ms = (uint64_t)srv->cfg.recovery_window_ms + ecfg->ping_interval_ms +
                      ecfg->ping_timeout_ms;
    r->max_packets = SIO_REC_MAX_PACKETS;
}

void sio__rec_free(sio_server *srv)
{
    sio_recovery *r = &srv->rec;
    while (r->head) {
        sio_logged *e = r->head;
        r->head = e->next;
        sio__logged_free(e);
    }
    r->tail = NULL;
    r->count = 0;
    sio_kept *k, *tmp;
    HASH_ITER(hh, r->kept, k, tmp) {
        sio_socket *s = k->sock;
        sio__kept_free(srv, k);
        if (s->nsp->h->on_expired)
            s->nsp->h->on_expired(s->nsp->ud, s);
        sio_socket_unref(s);
    }
    EVP_MAC_CTX_free(r->mac);
    r->mac = NULL;
}

void sio__rec_pid(const sio_server *srv, const sio_socket *s, char out[RAND_ID_LEN + 1])
{
    unsigned char mac[32];
    size_t len = 0;
    EVP_MAC_CTX *ctx = srv->rec.mac;
    if (EVP_MAC_init(ctx, NULL, 0, NULL) != 1 || /* same key, fresh state */
        EVP_MAC_update(ctx, (const unsigned char *)s->id, strlen(s->id)) != 1 ||
        EVP_MAC_final(ctx, mac, &len, sizeof(mac)) != 1 || len != sizeof(mac)) {
        fprintf(stderr, "parley: HMAC-SHA256 failed\n");
        abort();
    }
    char b64[B64_ENCODED_LEN(15) + 1];
    b64_encode(mac, 15, b64);
    for (int i = 0; i < RAND_ID_LEN; i++)
        out[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : b64[i];
    out[RAND_ID_LEN] = '\0';
}

uint64_t sio__rec_next_offset(sio_server *srv, char out[48])
{
    uint64_t seq = srv->rec.next_seq++;
    if (srv->cfg.offset_clock) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        snprintf(out, 48, "%s-%" PRIu64 "-%" PRId64, srv->rec.boot, seq, ms);
    } else {
        snprintf(out, 48, "%s-%" PRIu64, srv->rec.boot, seq);
    }
    return seq;
}

/* Parses an offset of this run; 0 when it is not one. */
static uint64_t sio__rec_parse_offset(const sio_server *srv, const char *s)
{
    if (strncmp(s, srv->rec.boot, 8) != 0 || s[8] != '-')
        return 0;
    char *end;
    unsigned long long v = strtoull(s + 9, &end, 10);
    if (end == s + 9 || v >= srv->rec.next_seq)
        return 0;
    if (*end == '-' && sio_offset_time(s) < 0)
        return 0;
    if (*end && *end != '-')
        return 0;
    return (uint64_t)v;
}

int64_t sio_offset_time(const char *offset)
{
    /* "<8 boot chars>-<seq>-<ms>" */
    if (strlen(offset) < 12 || offset[8] != '-')
        return ERR_NOTFOUND;
    const char *p = offset + 9;
    while (*p >= '0' && *p <= '9')
        p++;
    if (p == offset + 9 || *p != '-' || p[1] < '0' || p[1] > '9')
        return ERR_NOTFOUND;
    char *end;
    errno = 0;
    long long ms = strtoll(p + 1, &end, 10);
    if (*end || errno || ms < 0)
        return ERR_NOTFOUND;
    return (int64_t)ms;
}

void sio_server_set_recovery_key(sio_server *srv, const uint8_t *key, size_t len)
{
    memset(srv->rec.key, 0, sizeof(srv->rec.key));
    memcpy(srv->rec.key, key, len < sizeof(srv->rec.key) ? len : sizeof(srv->rec.key));
    sio__rec_mac_key(&srv->rec);
}

void sio_socket_pid(const sio_socket *s, char out[21])
{
    const sio_server *srv = s->nsp->srv;
    if (!srv->rec.enabled) {
        out[0] = '\0';
        return;
    }
    sio__rec_pid(srv, s, out);
}

static void sio__rec_prune(sio_server *srv)
{
    sio_recovery *r = &srv->rec;
    uint64_t now = uv_now(srv->loop);
    while (r->head && (r->count > r->max_packets || r->head->at + r->retention_ms < now)) {
        sio_logged *e = r->head;
        r->head = e->next;
        if (r->head == NULL)
            r->tail = NULL;
        r->count--;
        sio__logged_free(e);
    }
}

void sio__rec_log(sio_server *srv, sio_nsp *nsp, uint64_t seq, const eio_msg *msg,
                  const char *target, const char *const *rooms, size_t nrooms,
                  const sio_except *except)
{
    sio_recovery *r = &srv->rec;
    sio_logged *e = mem_calloc(1, sizeof(*e));
    e->seq = seq;
    e->at = uv_now(srv->loop);
    e->msg = *msg;
    rbuf_ref(msg->rb);
    e->nsp = nsp;
    if (target)
        snprintf(e->target, sizeof(e->target), "%s", target);
    if (nrooms) {
        e->rooms = mem_alloc(nrooms * sizeof(char *));
        for (size_t i = 0; i < nrooms; i++)
            e->rooms[i] = mem_strdup(rooms[i]);
        e->nrooms = (uint32_t)nrooms;
    }
    if (except && except->socket)
        snprintf(e->except_sid, sizeof(e->except_sid), "%s", except->socket->id);
    if (except && except->room)
        e->except_room = mem_strdup(except->room);
    if (r->tail)
        r->tail->next = e;
    else
        r->head = e;
    r->tail = e;
    r->count++;
    sio__rec_prune(srv);
}

static void sio__collect_room(void *ud, const char *room)
{
    sio_kept *k = ud;
    k->rooms[k->nrooms++] = mem_strdup(room);
}

void sio__rec_keep(sio_server *srv, sio_socket *s)
{
    sio_kept *k = mem_calloc(1, sizeof(*k));
    sio__rec_pid(srv, s, k->pid);
    k->sock = s;
    size_t n = 0;
    for (sio_member *m = s->rooms; m; m = m->sock_next)
        n++;
    k->rooms = mem_alloc((n ? n : 1) * sizeof(char *));
    sio_socket_rooms(s, sio__collect_room, k);
    HASH_ADD_STR(srv->rec.kept, pid, k);
    tq_push(&srv->rec.kept_q, &k->expiry, uv_now(srv->loop) + srv->cfg.recovery_window_ms);
}

sio_socket *sio__rec_take(sio_server *srv, sio_nsp *nsp, const json_t *auth, uint64_t *from_seq,
                          char ***rooms, size_t *nrooms)
{
    sio_recovery *r = &srv->rec;
    const char *pid = json_string_value(json_object_get(auth, "pid"));
    const json_t *offset = json_object_get(auth, "offset");
    if (!r->enabled || !pid || (offset && !json_is_string(offset)))
        return NULL;
    sio_kept *k = NULL;
    HASH_FIND_STR(r->kept, pid, k);
    if (k == NULL || k->sock->nsp != nsp)
        return NULL;
    /* A client sends the offset of the last event it got; one that got
     * none yet (its first packets were still on the way, or presence lists
     * are coalesced) sends its pid alone and is owed everything since it
     * connected. */
    uint64_t seq = k->sock->rec_from;
    if (offset && (seq = sio__rec_parse_offset(srv, json_string_value(offset))) == 0)
        return NULL;
    /* Every packet after seq must still be in the log. */
    if ((r->head && r->head->seq > seq + 1) || (!r->head && seq + 1 < r->next_seq))
        return NULL;
    sio_socket *s = k->sock;
    *from_seq = seq;
    *rooms = k->rooms;
    *nrooms = k->nrooms;
    k->rooms = NULL;
    k->nrooms = 0;
    sio__kept_free(srv, k);
    return s;
}

static int sio__has(char **names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return 1;
    return 0;
}

/* Would this logged packet have reached a socket with this id and rooms? */
static int sio__meant_for(const sio_logged *e, const sio_socket *s, char **rooms, size_t nrooms)
{
    if (e->nsp != s->nsp)
        return 0;
    if (e->target[0])
        return strcmp(e->target, s->id) == 0;
    if (strcmp(e->except_sid, s->id) == 0)
        return 0;
    if (e->except_room && sio__has(rooms, nrooms, e->except_room))
        return 0;
    if (e->nrooms == 0)
        return 1;
    for (uint32_t i = 0; i < e->nrooms; i++)
        if (sio__has(rooms, nrooms, e->rooms[i]))
            return 1;
    return 0;
}

void sio__rec_replay(sio_server *srv, sio_socket *s, char **rooms, size_t nrooms,
                     uint64_t from_seq)
{
    size_t n = 0;
    for (sio_logged *e = srv->rec.head; e && s->connected; e = e->next) {
        if (e->seq > from_seq && sio__meant_for(e, s, rooms, nrooms)) {
            eio_send(s->client->es, &e->msg);
            n++;
        }
    }
    log_debug("socket recovered", "sid=%s replayed=%zu", s->id, n);
}

void sio__rec_rooms_free(char **rooms, size_t nrooms)
{
    sio__names_free(rooms, nrooms);
}
