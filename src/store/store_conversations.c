/* store_conversations.c - store_conversations for every backend: a user's
 * conversation list composed of the backend's own operations (store.h):
 * member_rooms and direct_convs first, then per conversation read_get,
 * a one-message history page and, for a direct one, the peer's user_get,
 * all started together. A backend's ops table points at
 * store_op__conversations (store_op.h).
 *
 * The job counts the operations it waits for, plus one while it is still
 * starting them (a backend may complete inline: the SQLite store without
 * a loop, or any store after store_close), so it ends exactly once, after
 * the last of them. The first error fails the whole list. */
#include "store/store_op.h"

typedef struct store_convs__job store_convs__job;

/* One entry's operations get this as their ud. */
typedef struct {
    store_convs__job *job;
    size_t i;
} store_convs__slot;

struct store_convs__job {
    store_t *s;
    store_conversations_cb cb;
    void *ud;
    char *user_id;
    int pending; /* operations out, plus one while starting them */
    int rc;      /* the first error */
    int phase;   /* 0: listing, 1: details */
    store_room_list_t rooms;   /* phase 0's results, taken */
    store_conv_list_t directs;
    store_conversations_t list;
    store_convs__slot *slots;
};

static void store_convs__details(store_convs__job *job);

static void store_convs__end(store_convs__job *job)
{
    store_conversations_t empty = {NULL, 0};
    store_conversations_t *out = job->rc == 0 ? &job->list : &empty;
    job->cb(job->ud, job->rc, out);
    store_conversations_free(&job->list);
    store_room_list_free(&job->rooms);
    store_conv_list_free(&job->directs);
    mem_free(job->slots);
    mem_free(job->user_id);
    mem_free(job);
}

/* One operation (or the starting) is over: the next phase, or the end. */
static void store_convs__step(store_convs__job *job, int rc)
{
    if (rc != 0 && job->rc == 0)
        job->rc = rc;
    if (--job->pending > 0)
        return;
    if (job->phase == 0 && job->rc == 0) {
        job->phase = 1;
        store_convs__details(job);
        return;
    }
    store_convs__end(job);
}

static void store_convs__on_rooms(void *ud, int rc, store_room_list_t *l)
{
    store_convs__job *job = ud;
    job->rooms = *l;
    memset(l, 0, sizeof(*l));
    store_convs__step(job, rc);
}

static void store_convs__on_directs(void *ud, int rc, store_conv_list_t *l)
{
    store_convs__job *job = ud;
    job->directs = *l;
    memset(l, 0, sizeof(*l));
    store_convs__step(job, rc);
}

static void store_convs__on_read(void *ud, int rc, const store_read_t *r)
{
    store_convs__slot *slot = ud;
    store_conversation_t *c = &slot->job->list.convs[slot->i];
    if (rc == 0) {
        c->unread = r->unread;
        memcpy(c->last_read, r->last_read, STORE_ID_MAX);
    }
    store_convs__step(slot->job, rc);
}

static void store_convs__on_last(void *ud, int rc, store_history_t *h)
{
    store_convs__slot *slot = ud;
    store_conversation_t *c = &slot->job->list.convs[slot->i];
    if (rc == 0 && h->n == 1) {
        c->last = h->msgs[0]; /* take the message's strings */
        c->has_last = 1;
        memset(&h->msgs[0], 0, sizeof(h->msgs[0]));
    }
    store_convs__step(slot->job, rc);
}

static void store_convs__on_peer(void *ud, int rc, const store_user_t *u)
{
    store_convs__slot *slot = ud;
    store_conversation_t *c = &slot->job->list.convs[slot->i];
    if (rc == 0) {
        mem_free(c->name);
        c->name = mem_strdup(u->name);
    }
    /* a peer gone (purge in progress) keeps the name "" */
    store_convs__step(slot->job, rc == STORE_ENOTFOUND ? 0 : rc);
}

/* The peer of user_id in direct conversation conv ("d:" A U+001F B), or
 * NULL when conv is not of that form. Caller frees. */
static char *store_convs__peer(const char *conv, const char *user_id)
{
    const char *a = conv + 2, *sep = strchr(a, '\x1f');
    if (strncmp(conv, "d:", 2) != 0 || sep == NULL)
        return NULL;
    size_t na = (size_t)(sep - a);
    if (strlen(user_id) == na && memcmp(a, user_id, na) == 0)
        return mem_strdup(sep + 1);
    return mem_strndup(a, na);
}

/* Phase 1: the entries, then their operations, all at once. */
static void store_convs__details(store_convs__job *job)
{
    size_t n = job->rooms.n + job->directs.n;
    store_conversations_t *l = &job->list;
    if (n) {
        l->convs = mem_calloc(n, sizeof(*l->convs));
        job->slots = mem_calloc(n, sizeof(*job->slots));
    }
    for (size_t i = 0; i < job->rooms.n; i++) {
        store_conversation_t *c = &l->convs[l->n++];
        store_room_t *r = &job->rooms.rooms[i];
        c->type = STORE_CONV_ROOM;
        c->conv = store_conv_room(r->key);
        c->key = r->key;
        c->name = r->name;
        c->joined_ms = r->joined_ms;
        c->role = r->role;
        r->key = r->name = NULL;
    }
    for (size_t i = 0; i < job->directs.n; i++) {
        char *peer = store_convs__peer(job->directs.convs[i], job->user_id);
        if (peer == NULL) /* not a direct conversation's name: skip it */
            continue;
        store_conversation_t *c = &l->convs[l->n++];
        c->type = STORE_CONV_DIRECT;
        c->conv = job->directs.convs[i];
        job->directs.convs[i] = NULL;
        c->key = peer;
        c->name = mem_strdup("");
    }
    job->pending = 1;
    for (size_t i = 0; i < l->n; i++) {
        store_conversation_t *c = &l->convs[i];
        store_convs__slot *slot = &job->slots[i];
        slot->job = job;
        slot->i = i;
        job->pending += c->type == STORE_CONV_DIRECT ? 3 : 2;
        store_read_get(job->s, job->user_id, c->conv, store_convs__on_read, slot);
        store_history(job->s, c->conv, NULL, 1, store_convs__on_last, slot);
        /* any user, expired or not: INT64_MIN is before every seen_ms */
        if (c->type == STORE_CONV_DIRECT)
            store_user_get(job->s, c->key, INT64_MIN, 0, store_convs__on_peer, slot);
    }
    store_convs__step(job, 0);
}

void store_op__conversations(store_t *s, const char *user_id, store_conversations_cb cb,
                             void *ud)
{
    if (s->closed) {
        store_conversations_t empty = {NULL, 0};
        cb(ud, STORE_ECLOSED, &empty);
        return;
    }
    store_convs__job *job = mem_calloc(1, sizeof(*job));
    job->s = s;
    job->cb = cb;
    job->ud = ud;
    job->user_id = mem_strdup(user_id);
    job->pending = 3;
    store_member_rooms(s, user_id, store_convs__on_rooms, job);
    store_direct_convs(s, user_id, store_convs__on_directs, job);
    store_convs__step(job, 0);
}
