/* sio_server.c - Socket.IO clients and sockets: one client per Engine.IO
 * session, one socket per namespace it joins; packet dispatch (CONNECT,
 * DISCONNECT, EVENT, ACK and their binary forms), emits and acks.
 *
 * A client that breaks the protocol (a packet that does not parse, an event
 * for a namespace it did not join, a binary attachment nobody announced) is
 * closed as the reference server does; nothing it sends reaches the layer
 * above in a malformed state. */
#include "sio/sio_internal.h"
#include "util/log.h"
#include "util/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- encoding ----------------------------------------------------------- */

static int sio__encode(eio_msg *m, sio_ptype type, const char *nsp, int64_t ack_id,
                       unsigned nbins, const json_t *data)
{
    buf_t b = {0};
    int rc = sio_packet_encode(&b, type, nsp, ack_id, nbins, data);
    if (rc != 0) {
        buf_free(&b);
        return rc;
    }
    eio_msg_init(m, b.data, b.len, 0);
    buf_free(&b);
    return 0;
}

/* [event, ...args] as a new array (references to args' elements). */
static json_t *sio__event_array(const char *event, const json_t *args)
{
    json_t *arr = json_array();
    if (arr == NULL || json_array_append_new(arr, json_string(event)) != 0)
        goto fail;
    if (args && json_is_array(args) && json_array_extend(arr, (json_t *)args) != 0)
        goto fail;
    return arr;
fail:
    json_decref(arr);
    return NULL;
}

int sio__encode_event(eio_msg *m, const sio_nsp *nsp, const char *event, const json_t *args,
                      uint64_t *seq)
{
    json_t *arr = sio__event_array(event, args);
    if (arr == NULL)
        return ERR_NOMEM;
    *seq = 0;
    if (nsp->srv->rec.enabled) {
        /* Replayable: the offset goes last, as Socket.IO's recovery wants. */
        char offset[48];
        *seq = sio__rec_next_offset(nsp->srv, offset);
        json_array_append_new(arr, json_string(offset));
    }
    int r = sio__encode(m, SIO_EVENT, nsp->name, -1, 0, arr);
    json_decref(arr);
    return r;
}

static void sio__send_bins(eio_session *es, const sio_bin *bins, unsigned nbins)
{
    for (unsigned i = 0; i < nbins; i++) {
        eio_msg b;
        eio_msg_init(&b, bins[i].data, bins[i].len, 1);
        eio_send(es, &b);
        eio_msg_release(&b);
    }
}

int sio__send_packet(sio_socket *s, sio_ptype type, int64_t ack_id, const json_t *data,
                     const sio_bin *bins, unsigned nbins)
{
    if (!s->connected)
        return ERR_CLOSED;
    if (nbins > 0)
        type = type == SIO_ACK ? SIO_BINARY_ACK : type == SIO_EVENT ? SIO_BINARY_EVENT : type;
    eio_msg m;
    int r = sio__encode(&m, type, s->nsp->name, ack_id, nbins, data);
    if (r != 0)
        return r;
    r = eio_send(s->client->es, &m);
    eio_msg_release(&m);
    if (r == 0 && nbins)
        sio__send_bins(s->client->es, bins, nbins);
    return r;
}

/* ---- socket API --------------------------------------------------------- */

const char *sio_socket_id(const sio_socket *s) { return s->id; }
int sio_socket_connected(const sio_socket *s) { return s->connected; }
sio_nsp *sio_socket_nsp(const sio_socket *s) { return s->nsp; }
void sio_socket_set_data(sio_socket *s, void *data) { s->data = data; }
void *sio_socket_data(const sio_socket *s) { return s->data; }
eio_server *sio_server_eio(sio_server *srv) { return srv->eio; }

void sio_server_stats(const sio_server *srv, sio_stats *out)
{
    *out = srv->stats;
    out->connected = 0;
    for (const sio_nsp *nsp = srv->nsps; nsp; nsp = nsp->hh.next)
        out->connected += nsp->count;
    out->kept = HASH_COUNT(srv->rec.kept);
    out->replay_log = srv->rec.count;
}

_Static_assert(sizeof(struct sio_socket) <= 104, "sio_socket fits a 112-byte malloc block");

sio_socket *sio_socket_ref(sio_socket *s)
{
    if (s->refs == SIO__REFS_MAX) {
        fprintf(stderr, "parley: sio socket reference count overflow\n");
        abort();
    }
    s->refs++;
    return s;
}

void sio_socket_unref(sio_socket *s)
{
    if (--s->refs == 0)
        mem_free(s);
}

int sio_emit(sio_socket *s, const char *event, const json_t *args)
{
    return sio_emit_bin(s, event, args, NULL, 0);
}

int sio_emit_bin(sio_socket *s, const char *event, const json_t *args, const sio_bin *bins,
                 unsigned nbins)
{
    if (!s->connected)
        return ERR_CLOSED;
    if (nbins == 0) {
        /* Plain events go through the shared path: offset and log. */
        eio_msg m;
        uint64_t seq;
        int r = sio__encode_event(&m, s->nsp, event, args, &seq);
        if (r != 0)
            return r;
        r = eio_send(s->client->es, &m);
        s->nsp->srv->stats.events_out++;
        if (seq)
            sio__rec_log(s->nsp->srv, s->nsp, seq, &m, s->id, NULL, 0, NULL);
        eio_msg_release(&m);
        return r;
    }
    json_t *arr = sio__event_array(event, args);
    if (arr == NULL)
        return ERR_NOMEM;
    int r = sio__send_packet(s, SIO_EVENT, -1, arr, bins, nbins);
    json_decref(arr);
    return r;
}

int sio_ack(sio_socket *s, int64_t ack_id, const json_t *args)
{
    return sio_ack_bin(s, ack_id, args, NULL, 0);
}

int sio_ack_bin(sio_socket *s, int64_t ack_id, const json_t *args, const sio_bin *bins,
                unsigned nbins)
{
    if (ack_id < 0)
        return ERR_INVAL;
    json_t *empty = NULL;
    if (args == NULL)
        args = empty = json_array();
    int r = sio__send_packet(s, SIO_ACK, ack_id, args, bins, nbins);
    json_decref(empty);
    return r;
}

/* ---- acks we wait for ---------------------------------------------------- */

static sio_wait_ack *sio__take_ack(sio_socket *s, int64_t id)
{
    for (sio_wait_ack **pp = &s->acks; *pp; pp = &(*pp)->next) {
        if ((*pp)->id == id) {
            sio_wait_ack *a = *pp;
            *pp = a->next;
            tq_remove(&a->timeout);
            return a;
        }
    }
    return NULL;
}

static void sio__ack_expired(tq_queue *q, tq_node *n)
{
    sio_wait_ack *a = mem_container_of(n, sio_wait_ack, timeout);
    sio_socket *s = a->sock;
    sio__take_ack(s, a->id);
    a->cb(a->ud, s, NULL);
    mem_free(a);
}

int sio_emit_with_ack(sio_socket *s, const char *event, const json_t *args,
                      uint32_t timeout_ms, sio_ack_cb cb, void *ud)
{
    if (!s->connected)
        return ERR_CLOSED;
    json_t *arr = sio__event_array(event, args);
    if (arr == NULL)
        return ERR_NOMEM;
    int64_t id = s->next_ack++;
    int r = sio__send_packet(s, SIO_EVENT, id, arr, NULL, 0);
    json_decref(arr);
    if (r != 0)
        return r;
    sio_wait_ack *a = mem_calloc(1, sizeof(*a));
    a->id = id;
    a->cb = cb;
    a->ud = ud;
    a->sock = s;
    a->next = s->acks;
    s->acks = a;
    sio_server *srv = s->nsp->srv;
    tq_push(&srv->ack_q, &a->timeout, uv_now(srv->loop) + timeout_ms);
    return 0;
}

static void sio__fail_acks(sio_socket *s)
{
    while (s->acks) {
        sio_wait_ack *a = s->acks;
        s->acks = a->next;
        tq_remove(&a->timeout);
        a->cb(a->ud, s, NULL);
        mem_free(a);
    }
}

/* ---- socket lifetime ----------------------------------------------------- */

static void sio__client_unlink(sio_client *c, sio_socket *s)
{
    for (sio_socket **pp = &c->sockets; *pp; pp = &(*pp)->client_next) {
        if (*pp == s) {
            *pp = s->client_next;
            return;
        }
    }
}

static void sio__socket_close(sio_socket *s, const char *reason)
{
    if (!s->connected)
        return;
    sio_nsp *nsp = s->nsp;
    int keep = nsp->srv->rec.enabled && sio__rec_reason_recoverable(reason);
    s->connected = 0;
    if (s->nsp_prev)
        s->nsp_prev->nsp_next = s->nsp_next;
    else
        nsp->sockets = s->nsp_next;
    if (s->nsp_next)
        s->nsp_next->nsp_prev = s->nsp_prev;
    nsp->count--;
    sio__client_unlink(s->client, s);
    s->client = NULL;
    sio__fail_acks(s);
    if (keep)
        sio__rec_keep(nsp->srv, s); /* takes the client's reference */
    if (nsp->h->on_disconnect)
        nsp->h->on_disconnect(nsp->ud, s, reason, keep);
    sio__leave_all(s);
    if (!keep)
        sio_socket_unref(s);
}

/* ---- inbound packets ----------------------------------------------------- */

static sio_socket *sio__client_socket(sio_client *c, const char *nsp)
{
    for (sio_socket *s = c->sockets; s; s = s->client_next)
        if (strcmp(s->nsp->name, nsp) == 0)
            return s;
    return NULL;
}

static void sio__connect_error(sio_client *c, const char *nsp, json_t *data)
{
    eio_msg m;
    if (sio__encode(&m, SIO_CONNECT_ERROR, nsp, -1, 0, data) == 0) {
        eio_send(c->es, &m);
        eio_msg_release(&m);
    }
}

/* Links a socket into its client and namespace: it is connected. */
static void sio__attach(sio_client *c, sio_socket *s)
{
    sio_nsp *nsp = s->nsp;
    s->client = c;
    s->connected = 1;
    s->nsp_prev = NULL;
    s->client_next = c->sockets;
    c->sockets = s;
    s->nsp_next = nsp->sockets;
    if (nsp->sockets)
        nsp->sockets->nsp_prev = s;
    nsp->sockets = s;
    nsp->count++;
    tq_owned_cancel(&c->wait); /* the first CONNECT came */
}

/* The CONNECT reply: {sid}, plus {pid} when recovery is on. */
static void sio__connect_reply(sio_socket *s)
{
    sio_server *srv = s->nsp->srv;
    json_t *reply = json_pack("{s:s}", "sid", s->id);
    if (srv->rec.enabled) {
        char pid[RAND_ID_LEN + 1];
        sio__rec_pid(srv, s, pid);
        json_object_set_new(reply, "pid", json_string(pid));
    }
    sio__send_packet(s, SIO_CONNECT, -1, reply, NULL, 0);
    json_decref(reply);
}

static void sio__connect_fresh(sio_client *c, sio_nsp *nsp, json_t *auth);
static int sio__restore_start(sio_client *c, sio_nsp *nsp, json_t *auth);

static void sio__on_connect(sio_client *c, sio_packet *p)
{
    sio_server *srv = c->srv;
    sio_nsp *nsp = NULL;
    HASH_FIND_STR(srv->nsps, p->nsp, nsp);
    if (nsp == NULL) {
        json_t *err = json_pack("{s:s}", "message", "Invalid namespace");
        sio__connect_error(c, p->nsp, err);
        json_decref(err);
        return;
    }
    if (sio__client_socket(c, p->nsp) || c->restore || c->pending)
        return; /* already connected there (or on its way): the reference ignores it */
    uint64_t from_seq;
    char **rooms;
    size_t nrooms;
    sio_socket *s = srv->rec.enabled && json_is_object(p->data)
                        ? sio__rec_take(srv, nsp, p->data, &from_seq, &rooms, &nrooms)
                        : NULL;
    if (s) {
        sio__attach(c, s);
        for (size_t i = 0; i < nrooms; i++)
            sio_join(s, rooms[i]);
        sio__connect_reply(s);
        if (nsp->h->on_recovered)
            nsp->h->on_recovered(nsp->ud, s);
        srv->stats.recovered++;
        sio__rec_replay(srv, s, rooms, nrooms, from_seq);
        sio__rec_rooms_free(rooms, nrooms);
        return;
    }
    if (sio__restore_start(c, nsp, p->data))
        return;
    sio__connect_fresh(c, nsp, p->data);
}

/* A new socket for c in nsp, if on_connect accepts auth. */
static void sio__connect_fresh(sio_client *c, sio_nsp *nsp, json_t *auth)
{
    sio_socket *s = mem_calloc(1, sizeof(*s));
    s->refs = 1;
    s->client = c;
    s->nsp = nsp;
    s->rec_from = c->srv->rec.next_seq - 1;
    rand_id(s->id);
    /* Pending while on_connect runs: it may even finish it inline. s->client
     * is c until c goes (sio__eio_close). */
    c->pending = s;
    json_t *refusal = nsp->h->on_connect ? nsp->h->on_connect(nsp->ud, s, auth) : NULL;
    if (refusal == SIO_CONNECT_PENDING)
        return; /* s is sio_connect_finish's now (maybe gone already) */
    c->pending = NULL;
    if (refusal) {
        sio__connect_error(c, nsp->name, refusal);
        json_decref(refusal);
        sio_socket_unref(s);
        return;
    }
    sio__attach(c, s);
    sio__connect_reply(s);
    if (nsp->h->on_connection)
        nsp->h->on_connection(nsp->ud, s);
}

/* The marker itself: never read, never freed. */
static json_t sio__pending_marker;
json_t *const SIO_CONNECT_PENDING = &sio__pending_marker;

int sio_connect_finish(sio_socket *s, json_t *error)
{
    sio_client *c = s->client;
    if (c == NULL) { /* the client went away while we waited */
        json_decref(error);
        sio_socket_unref(s);
        return ERR_CLOSED;
    }
    c->pending = NULL;
    if (error) {
        sio__connect_error(c, s->nsp->name, error);
        json_decref(error);
        s->client = NULL;
        sio_socket_unref(s);
        return 0;
    }
    sio__attach(c, s);
    sio__connect_reply(s);
    if (s->nsp->h->on_connection)
        s->nsp->h->on_connection(s->nsp->ud, s);
    return 0;
}

/* A recovery this node cannot do itself: the layer above may (cluster
 * mode). Returns 1 when it took the CONNECT over. */
static int sio__restore_start(sio_client *c, sio_nsp *nsp, json_t *auth)
{
    const char *pid = json_string_value(json_object_get(auth, "pid"));
    const char *offset = json_string_value(json_object_get(auth, "offset"));
    if (!c->srv->rec.enabled || nsp->h->on_restore == NULL || pid == NULL || offset == NULL)
        return 0;
    sio_restore *req = mem_calloc(1, sizeof(*req));
    req->client = c;
    req->nsp = nsp;
    req->auth = json_incref(auth);
    c->restore = req;
    if (nsp->h->on_restore(nsp->ud, req, pid, offset, auth))
        return 1;
    c->restore = NULL;
    json_decref(req->auth);
    mem_free(req);
    return 0;
}

sio_socket *sio_restore_finish(sio_restore *req, const char *sid, const char *const *rooms,
                               size_t nrooms)
{
    sio_client *c = req->client;
    sio_nsp *nsp = req->nsp;
    json_t *auth = req->auth;
    sio_socket *s = NULL;
    mem_free(req);
    if (c == NULL)
        goto out; /* the client went away meanwhile */
    c->restore = NULL;
    if (sid == NULL || strlen(sid) != RAND_ID_LEN || sio__client_socket(c, nsp->name)) {
        if (sio__client_socket(c, nsp->name) == NULL)
            sio__connect_fresh(c, nsp, auth);
        goto out;
    }
    s = mem_calloc(1, sizeof(*s));
    s->refs = 2; /* the client's and the caller's */
    s->nsp = nsp;
    s->rec_from = c->srv->rec.next_seq - 1;
    memcpy(s->id, sid, RAND_ID_LEN + 1);
    sio__attach(c, s);
    for (size_t i = 0; i < nrooms; i++)
        sio_join(s, rooms[i]);
    sio__connect_reply(s);
    c->srv->stats.recovered++;
out:
    json_decref(auth);
    return s;
}

static void sio__on_event(sio_socket *s, sio_packet *p, const sio_bin *bins, unsigned nbins)
{
    json_t *name = json_array_get(p->data, 0);
    json_t *args = NULL; /* too deep to read: the handler gets no arguments */
    if (!p->too_deep) {
        args = json_array();
        size_t n = json_array_size(p->data);
        for (size_t i = 1; i < n; i++)
            json_array_append(args, json_array_get(p->data, i));
    }
    sio_socket_ref(s);
    if (s->nsp->h->on_event)
        s->nsp->h->on_event(s->nsp->ud, s, json_string_value(name), args, bins, nbins, p->ack_id);
    sio_socket_unref(s);
    json_decref(args);
}

static void sio__on_ack(sio_socket *s, sio_packet *p)
{
    sio_wait_ack *a = sio__take_ack(s, p->ack_id);
    if (a == NULL)
        return;
    a->cb(a->ud, s, p->data);
    mem_free(a);
}

/* Handles one complete packet; returns 0, or ERR_MALFORMED when the client
 * must be closed (a packet out of place). */
static int sio__dispatch(sio_client *c, sio_packet *p, const sio_bin *bins, unsigned nbins)
{
    if (p->type == SIO_CONNECT) {
        sio__on_connect(c, p);
        return 0;
    }
    sio_socket *s = sio__client_socket(c, p->nsp);
    if (s == NULL)
        return ERR_MALFORMED;
    switch (p->type) {
    case SIO_DISCONNECT:
        sio__socket_close(s, "client namespace disconnect");
        return 0;
    case SIO_EVENT:
    case SIO_BINARY_EVENT:
        sio__on_event(s, p, bins, nbins);
        return 0;
    case SIO_ACK:
    case SIO_BINARY_ACK:
        sio__on_ack(s, p);
        return 0;
    default:
        return ERR_MALFORMED;
    }
}

static void sio__binwait_free(sio_client *c)
{
    sio_binwait *w = c->bin;
    if (w == NULL)
        return;
    for (unsigned i = 0; i < w->got; i++)
        mem_free((void *)w->bins[i].data);
    sio_packet_clear(&w->pkt);
    mem_free(w);
    c->bin = NULL;
}

/* Closes c for a packet that breaks the protocol, as the reference server
 * does, saying why in the log (the client only sees its transport close). */
static void sio__parse_error(sio_client *c, const char *why, size_t len)
{
    log_debug("socket.io packet refused", "sid=%s why=\"%s\" len=%zu",
              eio_session_id(c->es), why, len);
    eio_session_close(c->es, "parse error");
}

static void sio__on_text(sio_client *c, const uint8_t *data, size_t len)
{
    sio_packet p;
    c->srv->stats.packets_in++;
    if (c->bin) {
        sio__parse_error(c, "text packet while attachments are due", len);
        return;
    }
    int rc = sio_packet_decode((const char *)data, len, &p);
    if (rc != 0 && rc != SIO_PACKET_ETOODEEP) {
        sio__parse_error(c, "malformed packet", len);
        return;
    }
    /* The placeholders of a packet too deep to parse cannot be checked:
     * its attachments are only counted, and its handler gets no args. */
    if ((p.type == SIO_BINARY_EVENT || p.type == SIO_BINARY_ACK) && p.attachments > 0) {
        if (!p.too_deep && sio_placeholders_check(p.data, p.attachments) != 0) {
            sio_packet_clear(&p);
            sio__parse_error(c, "attachments do not match their placeholders", len);
            return;
        }
        c->bin = mem_calloc(1, sizeof(sio_binwait));
        c->bin->pkt = p;
        return;
    }
    if (sio__dispatch(c, &p, NULL, 0) != 0)
        sio__parse_error(c, "packet out of place (namespace not joined, or a server-only type)", len);
    sio_packet_clear(&p);
}

static void sio__on_binary(sio_client *c, const uint8_t *data, size_t len)
{
    sio_binwait *w = c->bin;
    if (w == NULL) {
        sio__parse_error(c, "binary message nobody announced", len);
        return;
    }
    uint8_t *copy = mem_alloc(len ? len : 1);
    memcpy(copy, data, len);
    w->bins[w->got].data = copy;
    w->bins[w->got].len = len;
    w->got++;
    if (w->got < w->pkt.attachments)
        return;
    c->bin = NULL;
    int r = sio__dispatch(c, &w->pkt, w->bins, w->got);
    c->bin = w;
    sio__binwait_free(c);
    if (r != 0)
        sio__parse_error(c, "packet out of place (namespace not joined, or a server-only type)", len);
}

/* ---- Engine.IO handlers --------------------------------------------------- */

static void sio__eio_open(void *ud, eio_session *es)
{
    sio_server *srv = ud;
    sio_client *c = mem_calloc(1, sizeof(*c));
    c->es = es;
    c->srv = srv;
    eio_session_set_data(es, c);
    if (srv->cfg.connect_timeout_ms)
        tq_owned_push(&srv->connect_q, &c->wait, c,
                      uv_now(srv->loop) + srv->cfg.connect_timeout_ms);
}

static void sio__eio_message(void *ud, eio_session *es, uint8_t *data, size_t len, int binary)
{
    sio_client *c = eio_session_data(es);
    if (c == NULL)
        return;
    if (binary)
        sio__on_binary(c, data, len);
    else
        sio__on_text(c, data, len);
}

static void sio__eio_close(void *ud, eio_session *es, const char *reason)
{
    sio_client *c = eio_session_data(es);
    if (c == NULL)
        return;
    eio_session_set_data(es, NULL);
    tq_owned_cancel(&c->wait);
    if (c->restore)
        c->restore->client = NULL; /* sio_restore_finish frees it */
    if (c->pending)
        c->pending->client = NULL; /* sio_connect_finish drops it */
    while (c->sockets)
        sio__socket_close(c->sockets, reason);
    sio__binwait_free(c);
    mem_free(c);
}

static const eio_handlers sio__eio_handlers = {
    .on_open = sio__eio_open,
    .on_message = sio__eio_message,
    .on_close = sio__eio_close,
};

static void sio__connect_expired(tq_queue *q, tq_node *n)
{
    sio_client *c = tq_owned_expired(n);
    if (c->sockets == NULL)
        eio_session_close(c->es, "connect timeout");
}

/* ---- server --------------------------------------------------------------- */

sio_server *sio_server_new(uv_loop_t *loop, net_server *net, const eio_config *ecfg,
                           const sio_config *cfg)
{
    sio_server *srv = mem_calloc(1, sizeof(*srv));
    srv->loop = loop;
    srv->cfg = *cfg;
    tq_init(&srv->connect_q, loop, sio__connect_expired, srv);
    tq_init(&srv->ack_q, loop, sio__ack_expired, srv);
    sio__rec_init(srv, ecfg);
    srv->eio = eio_server_new(loop, net, ecfg, &sio__eio_handlers, srv);
    return srv;
}

sio_nsp *sio_namespace(sio_server *srv, const char *name, const sio_handlers *h, void *ud)
{
    sio_nsp *nsp = mem_calloc(1, sizeof(*nsp));
    nsp->name = mem_strdup(name);
    nsp->srv = srv;
    nsp->h = h;
    nsp->ud = ud;
    HASH_ADD_KEYPTR(hh, srv->nsps, nsp->name, strlen(nsp->name), nsp);
    return nsp;
}

static void sio__timer_closed(uv_handle_t *h)
{
    sio_server *srv = ((tq_queue *)h->data)->data;
    if (--srv->timers_open == 0)
        mem_free(srv);
}

void sio_server_free(sio_server *srv)
{
    eio_server_free(srv->eio); /* closes every session, hence every socket */
    sio__rec_free(srv);
    sio_nsp *nsp, *tmp;
    HASH_ITER(hh, srv->nsps, nsp, tmp) {
        HASH_DEL(srv->nsps, nsp);
        sio__rooms_free(nsp);
        mem_free(nsp->name);
        mem_free(nsp);
    }
    tq_queue *qs[] = {&srv->connect_q, &srv->ack_q, &srv->rec.kept_q};
    srv->timers_open = 3;
    for (int i = 0; i < 3; i++) {
        uv_timer_stop(&qs[i]->timer);
        uv_close((uv_handle_t *)&qs[i]->timer, sio__timer_closed);
    }
}
