/* sio_rooms.c - rooms of a namespace and broadcasts to them.
 *
 * A room is a hash entry holding a doubly linked list of memberships; each
 * membership is also linked from its socket, so leaving all rooms on
 * disconnect costs one step per room. A broadcast encodes its packet once
 * into one Engine.IO message and queues that same buffer on every
 * recipient; a generation stamp on each socket makes multi-room broadcasts
 * reach each socket once without a set. */
#include "sio/sio_internal.h"
#include "util/mem.h"

#include <string.h>

static sio_room *sio__room_get(sio_nsp *nsp, const char *name, int create)
{
    sio_room *r = NULL;
    HASH_FIND_STR(nsp->rooms, name, r);
    if (r || !create)
        return r;
    r = mem_calloc(1, sizeof(*r));
    r->name = mem_strdup(name);
    HASH_ADD_KEYPTR(hh, nsp->rooms, r->name, strlen(r->name), r);
    return r;
}

static void sio__room_drop_if_empty(sio_nsp *nsp, sio_room *r)
{
    if (r->count > 0)
        return;
    HASH_DEL(nsp->rooms, r);
    mem_free(r->name);
    mem_free(r);
}

static sio_member **sio__find_member(sio_socket *s, const char *room)
{
    for (sio_member **pp = &s->rooms; *pp; pp = &(*pp)->sock_next)
        if (strcmp((*pp)->room->name, room) == 0)
            return pp;
    return NULL;
}

int sio_join(sio_socket *s, const char *room)
{
    if (!s->connected || sio__find_member(s, room))
        return 0;
    sio_room *r = sio__room_get(s->nsp, room, 1);
    sio_member *m = mem_calloc(1, sizeof(*m));
    m->room = r;
    m->sock = s;
    m->room_next = r->members;
    if (r->members)
        r->members->room_prev = m;
    r->members = m;
    r->count++;
    m->sock_next = s->rooms;
    s->rooms = m;
    return 0;
}

static void sio__member_unlink(sio_nsp *nsp, sio_member *m)
{
    sio_room *r = m->room;
    if (m->room_prev)
        m->room_prev->room_next = m->room_next;
    else
        r->members = m->room_next;
    if (m->room_next)
        m->room_next->room_prev = m->room_prev;
    r->count--;
    sio__room_drop_if_empty(nsp, r);
    mem_free(m);
}

int sio_leave(sio_socket *s, const char *room)
{
    sio_member **pp = sio__find_member(s, room);
    if (pp == NULL)
        return 0;
    sio_member *m = *pp;
    *pp = m->sock_next;
    sio__member_unlink(s->nsp, m);
    return 0;
}

void sio__leave_all(sio_socket *s)
{
    while (s->rooms) {
        sio_member *m = s->rooms;
        s->rooms = m->sock_next;
        sio__member_unlink(s->nsp, m);
    }
}

void sio__rooms_free(sio_nsp *nsp)
{
    /* Sockets are gone by now (their sessions closed first); drop leftovers. */
    sio_room *r, *tmp;
    HASH_ITER(hh, nsp->rooms, r, tmp) {
        HASH_DEL(nsp->rooms, r);
        mem_free(r->name);
        mem_free(r);
    }
}

int sio_in_room(const sio_socket *s, const char *room)
{
    return sio__find_member((sio_socket *)s, room) != NULL;
}

size_t sio_room_size(const sio_nsp *nsp, const char *room)
{
    sio_room *r = sio__room_get((sio_nsp *)nsp, room, 0);
    return r ? r->count : 0;
}

void sio_room_each(sio_nsp *nsp, const char *room, void (*fn)(void *ud, sio_socket *s), void *ud)
{
    sio_room *r = sio__room_get(nsp, room, 0);
    for (sio_member *m = r ? r->members : NULL, *next; m; m = next) {
        next = m->room_next;
        fn(ud, m->sock);
    }
}

void sio_socket_rooms(const sio_socket *s, void (*fn)(void *ud, const char *room), void *ud)
{
    for (const sio_member *m = s->rooms; m; m = m->sock_next)
        fn(ud, m->room->name);
}

static size_t sio__deliver(sio_socket *s, uint32_t gen, const eio_msg *msg)
{
    if (s->bcast_gen == gen || !s->connected)
        return 0;
    s->bcast_gen = gen;
    return eio_send(s->client->es, msg) == 0 ? 1 : 0;
}

size_t sio_broadcast(sio_nsp *nsp, const char *const *rooms, size_t nrooms,
                     const sio_except *except, const char *event, const json_t *args)
{
    eio_msg msg;
    uint64_t seq;
    if (sio__encode_event(&msg, nsp, event, args, &seq) != 0)
        return 0;
    uint32_t gen = ++nsp->srv->bcast_gen;
    size_t sent = 0;
    /* Stamping the excluded sockets first makes sio__deliver skip them. */
    if (except && except->socket)
        ((sio_socket *)except->socket)->bcast_gen = gen;
    sio_room *ex = except && except->room ? sio__room_get(nsp, except->room, 0) : NULL;
    for (sio_member *m = ex ? ex->members : NULL; m; m = m->room_next)
        m->sock->bcast_gen = gen;
    if (nrooms == 0) {
        for (sio_socket *s = nsp->sockets, *next; s; s = next) {
            next = s->nsp_next; /* a slow consumer may be closed on the way */
            sent += sio__deliver(s, gen, &msg);
        }
    }
    for (size_t i = 0; i < nrooms; i++) {
        sio_room *r = sio__room_get(nsp, rooms[i], 0);
        for (sio_member *m = r ? r->members : NULL, *next; m; m = next) {
            next = m->room_next;
            sent += sio__deliver(m->sock, gen, &msg);
        }
    }
    nsp->srv->stats.broadcasts++;
    nsp->srv->stats.recipients += sent;
    if (seq)
        sio__rec_log(nsp->srv, nsp, seq, &msg, NULL, rooms, nrooms, except);
    eio_msg_release(&msg);
    return sent;
}
