/* store_contract.c - the store contract tests (see store_contract.h): what
 * store.h promises, whatever the backend. Every wait is the runner's
 * (bounded); every test starts on an empty store. Times are around the
 * wall clock (the Redis store finds messages by time with its stream ids,
 * which are Redis' clock). */
#include "store_contract.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "util/mem.h"

/* A guest lifetime, for the user tests. */
#define SC_TTL ((int64_t)30 * 86400000)

/* What a wrapper returns when the callback never came (never a STORE_E*). */
#define SC_NOCALL (-1000)

/* ---- recording callbacks ------------------------------------------------- */

static int sc_seq; /* completion counter, to check order */

typedef struct {
    int calls, rc, order;
    char name[64];
    int name_null, created;
    store_appended_t app;
    store_history_t page;      /* taken from the callback */
    store_room_list_t list;    /* taken from the callback */
    store_conv_list_t convs;   /* taken from the callback */
    uint64_t count;
    int user_null;             /* the user callback got NULL */
    store_user_t user;         /* copied: key and name point into the arrays below */
    char user_key[64], user_name[64];
    uint8_t secret[STORE_SECRET_MAX];
    size_t secret_len;
    int secret_null;
    store_member_list_t members;   /* taken from the callback */
    store_read_t read;
    store_conversations_t cl;      /* taken from the callback */
    void (*then)(void *arg);   /* run inside the callback, may be NULL */
    void *then_arg;
} sc_res;

static void sc_got(sc_res *r, int rc)
{
    r->calls++;
    r->rc = rc;
    r->order = sc_seq++;
    if (r->then)
        r->then(r->then_arg);
}

static void sc_on_room(void *ud, int rc, const char *name, int created)
{
    sc_res *r = ud;
    r->name_null = name == NULL;
    snprintf(r->name, sizeof(r->name), "%s", name ? name : "");
    r->created = created;
    sc_got(r, rc);
}

static void sc_on_list(void *ud, int rc, store_room_list_t *l)
{
    sc_res *r = ud;
    r->list = *l; /* take it: the store frees what we leave */
    memset(l, 0, sizeof(*l));
    sc_got(r, rc);
}

static void sc_on_append(void *ud, int rc, const store_appended_t *a)
{
    sc_res *r = ud;
    r->app = *a;
    sc_got(r, rc);
}

static void sc_on_page(void *ud, int rc, store_history_t *h)
{
    sc_res *r = ud;
    r->page = *h;
    memset(h, 0, sizeof(*h));
    sc_got(r, rc);
}

static void sc_on_count(void *ud, int rc, uint64_t n)
{
    sc_res *r = ud;
    r->count = n;
    sc_got(r, rc);
}

static void sc_on_convs(void *ud, int rc, store_conv_list_t *l)
{
    sc_res *r = ud;
    r->convs = *l;
    memset(l, 0, sizeof(*l));
    sc_got(r, rc);
}

static void sc_on_user(void *ud, int rc, const store_user_t *u)
{
    sc_res *r = ud;
    r->user_null = u == NULL;
    memset(&r->user, 0, sizeof(r->user));
    if (u) {
        r->user = *u;
        snprintf(r->user_key, sizeof(r->user_key), "%s", u->key);
        snprintf(r->user_name, sizeof(r->user_name), "%s", u->name);
        r->user.key = r->user_key;
        r->user.name = r->user_name;
    }
    sc_got(r, rc);
}

static void sc_on_secret(void *ud, int rc, const uint8_t *bytes, size_t len)
{
    sc_res *r = ud;
    r->secret_null = bytes == NULL;
    r->secret_len = len;
    if (bytes && len <= sizeof(r->secret))
        memcpy(r->secret, bytes, len);
    sc_got(r, rc);
}

static void sc_on_members(void *ud, int rc, store_member_list_t *l)
{
    sc_res *r = ud;
    r->members = *l;
    memset(l, 0, sizeof(*l));
    sc_got(r, rc);
}

static void sc_on_read(void *ud, int rc, const store_read_t *rd)
{
    sc_res *r = ud;
    r->read = *rd;
    sc_got(r, rc);
}

static void sc_on_cl(void *ud, int rc, store_conversations_t *l)
{
    sc_res *r = ud;
    r->cl = *l;
    memset(l, 0, sizeof(*l));
    sc_got(r, rc);
}

/* ---- synchronous wrappers ------------------------------------------------ */

/* The op was started: its callback must not have run yet (the contract's
 * backends complete later, from the loop); it then runs exactly once.
 * Returns its rc, or SC_NOCALL (reported) when that is not so. */
static int sc_wait(sc_env *env, sc_res *r)
{
    if (r->calls != 0) {
        sc_failed("the callback ran inline", __FILE__, __LINE__);
        return SC_NOCALL;
    }
    if (!env->wait(env, &r->calls, 1) || r->calls != 1) {
        sc_failed("the callback ran exactly once", __FILE__, __LINE__);
        return SC_NOCALL;
    }
    return r->rc;
}

static int sc_room_create(sc_env *env, const char *key, const char *name, sc_res *r)
{
    memset(r, 0, sizeof(*r));
    store_room_create(env->s, key, name, sc_on_room, r);
    return sc_wait(env, r);
}

static int sc_room_get(sc_env *env, const char *key, sc_res *r)
{
    memset(r, 0, sizeof(*r));
    store_room_get(env->s, key, sc_on_room, r);
    return sc_wait(env, r);
}

static int sc_room_list(sc_env *env, store_room_list_t *out)
{
    sc_res r;
    memset(&r, 0, sizeof(r));
    store_room_list(env->s, sc_on_list, &r);
    int rc = sc_wait(env, &r);
    *out = r.list;
    return rc;
}

/* Appends with a clientId (cid not NULL, remembered until ts + TTL). */
static int sc_append_cid(sc_env *env, const char *conv, const char *from, const char *to,
                         const char *text, int64_t ts, const char *user, const char *cid,
                         size_t cid_len, store_appended_t *out)
{
    sc_res r;
    memset(&r, 0, sizeof(r));
    store_msg_in_t m = {conv, from, to, text, strlen(text), ts, NULL, NULL, NULL, NULL};
    store_dedupe_in_t d = {user, cid, cid_len, ts + STORE_DEDUPE_TTL_MS};
    store_msg_append(env->s, &m, cid ? &d : NULL, sc_on_append, &r);
    int rc = sc_wait(env, &r);
    *out = r.app;
    return rc;
}

/* Appends without a clientId; the new id into id. Returns 0, or -1 after
 * reporting a failure (the caller returns). */
static int sc_append(sc_env *env, const char *conv, const char *from, const char *to,
                     const char *text, int64_t ts, char id[STORE_ID_MAX])
{
    store_appended_t a;
    int rc = sc_append_cid(env, conv, from, to, text, ts, NULL, NULL, 0, &a);
    if (rc != 0 || a.duplicate || a.ts_ms != ts || a.id[0] == '\0') {
        sc_failed("append: 0, not a duplicate, its ts and an id", __FILE__, __LINE__);
        return -1;
    }
    memcpy(id, a.id, STORE_ID_MAX);
    return 0;
}

/* An error gives an empty page: checked here (reported as a failure). */
static int sc_page_result(sc_res *r, int rc, store_history_t *out)
{
    *out = r->page;
    if (rc != 0 && (out->msgs != NULL || out->n != 0 || out->has_more))
        sc_failed("an error gives an empty page", __FILE__, __LINE__);
    return rc;
}

static int sc_history(sc_env *env, const char *conv, const char *before, size_t limit,
                      store_history_t *out)
{
    sc_res r;
    memset(&r, 0, sizeof(r));
    store_history(env->s, conv, before, limit, sc_on_page, &r);
    return sc_page_result(&r, sc_wait(env, &r), out);
}

static int sc_since(sc_env *env, const char *conv, int64_t since_ms, size_t limit,
                    store_history_t *out)
{
    sc_res r;
    memset(&r, 0, sizeof(r));
    store_since(env->s, conv, since_ms, limit, sc_on_page, &r);
    return sc_page_result(&r, sc_wait(env, &r), out);
}

static int sc_private_convs(sc_env *env, const char *user, int64_t since_ms,
                            store_conv_list_t *out)
{
    sc_res r;
    memset(&r, 0, sizeof(r));
    store_private_convs(env->s, user, since_ms, sc_on_convs, &r);
    int rc = sc_wait(env, &r);
    *out = r.convs;
    if (rc != 0 && (out->convs != NULL || out->n != 0))
        sc_failed("an error gives an empty list", __FILE__, __LINE__);
    return rc;
}

/* How many times l holds conv. */
static int sc_conv_count(const store_conv_list_t *l, const char *conv)
{
    int n = 0;
    for (size_t i = 0; i < l->n; i++)
        n += strcmp(l->convs[i], conv) == 0;
    return n;
}

static int64_t sc_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- rooms --------------------------------------------------------------- */

static void sc_test_rooms(sc_env *env)
{
    sc_res r;
    SC_ASSERT(sc_room_create(env, "general", "General", &r) == 0);
    SC_ASSERT(r.created == 1 && strcmp(r.name, "General") == 0);
    /* the same key again: not created, the first name kept */
    SC_ASSERT(sc_room_create(env, "general", "GENERAL", &r) == 0);
    SC_ASSERT(r.created == 0 && strcmp(r.name, "General") == 0);
    SC_ASSERT(sc_room_create(env, "random", "Random", &r) == 0 && r.created == 1);
    SC_ASSERT(sc_room_get(env, "general", &r) == 0 && strcmp(r.name, "General") == 0);
    SC_ASSERT(r.created == 0);
    SC_ASSERT(sc_room_get(env, "random", &r) == 0 && strcmp(r.name, "Random") == 0);
    SC_ASSERT(sc_room_get(env, "nope", &r) == STORE_ENOTFOUND && r.name_null && !r.created);

    /* every room, in creation order */
    store_room_list_t l;
    SC_ASSERT(sc_room_list(env, &l) == 0 && l.n == 2);
    SC_ASSERT(strcmp(l.rooms[0].key, "general") == 0 && strcmp(l.rooms[0].name, "General") == 0);
    SC_ASSERT(strcmp(l.rooms[1].key, "random") == 0 && strcmp(l.rooms[1].name, "Random") == 0);
    store_room_list_free(&l);
    SC_ASSERT(l.rooms == NULL && l.n == 0);
}

static void sc_test_room_list_empty(sc_env *env)
{
    store_room_list_t l;
    SC_ASSERT(sc_room_list(env, &l) == 0 && l.rooms == NULL && l.n == 0);
}

/* ---- messages ------------------------------------------------------------ */

static void sc_test_append_and_history(sc_env *env)
{
    char *a = store_conv_room("general"), *b = store_conv_room("random");
    char *c = store_conv_room("empty");
    char ids[5][STORE_ID_MAX];
    store_history_t h;
    SC_ASSERT(sc_append(env, a, "Alice", NULL, "hello", 1000, ids[0]) == 0);
    SC_ASSERT(sc_append(env, b, "Bob", NULL, "elsewhere", 1001, ids[1]) == 0);
    SC_ASSERT(sc_append(env, a, "Bob", NULL, "h\xc3\xa9llo\tthere\nsecond line", 1002,
                        ids[2]) == 0);
    SC_ASSERT(sc_append(env, a, "Alice", NULL, "\xf0\x9f\x98\x80", 1003, ids[3]) == 0);
    SC_ASSERT(sc_append(env, b, "Bob", NULL, "again", 1004, ids[4]) == 0);
    for (int i = 0; i < 5; i++)
        for (int j = i + 1; j < 5; j++)
            SC_ASSERT(strcmp(ids[i], ids[j]) != 0);

    SC_ASSERT(sc_history(env, a, NULL, 50, &h) == 0 && h.n == 3 && !h.has_more);
    SC_ASSERT(strcmp(h.msgs[0].id, ids[0]) == 0 && strcmp(h.msgs[0].from, "Alice") == 0);
    SC_ASSERT(h.msgs[0].to == NULL && strcmp(h.msgs[0].content, "hello") == 0);
    SC_ASSERT(h.msgs[0].content_len == 5 && h.msgs[0].ts_ms == 1000);
    SC_ASSERT(strcmp(h.msgs[1].id, ids[2]) == 0);
    SC_ASSERT(strcmp(h.msgs[1].content, "h\xc3\xa9llo\tthere\nsecond line") == 0);
    SC_ASSERT(strcmp(h.msgs[2].id, ids[3]) == 0 && h.msgs[2].ts_ms == 1003);
    SC_ASSERT(strcmp(h.msgs[2].content, "\xf0\x9f\x98\x80") == 0);
    store_history_free(&h);
    SC_ASSERT(h.msgs == NULL && h.n == 0);

    SC_ASSERT(sc_history(env, b, NULL, 1, &h) == 0 && h.n == 1 && h.has_more);
    SC_ASSERT(strcmp(h.msgs[0].id, ids[4]) == 0);
    store_history_free(&h);
    /* a conversation nobody wrote to */
    SC_ASSERT(sc_history(env, c, NULL, 50, &h) == 0 && h.n == 0 && !h.has_more);
    SC_ASSERT(h.msgs == NULL);
    mem_free(a);
    mem_free(b);
    mem_free(c);
}

static void sc_test_paging_250(sc_env *env)
{
    char *conv = store_conv_room("big"), *other = store_conv_room("other");
    static char ids[250][STORE_ID_MAX];
    char scratch[STORE_ID_MAX], text[32], before[STORE_ID_MAX];
    for (int i = 0; i < 250; i++) {
        snprintf(text, sizeof(text), "m%d", i);
        SC_ASSERT(sc_append(env, conv, "Alice", NULL, text, 10000 + i, ids[i]) == 0);
        if (i % 7 == 0) /* interleave another conversation */
            SC_ASSERT(sc_append(env, other, "Bob", NULL, "noise", 10000 + i, scratch) == 0);
    }
    /* newest 100, then the 100 before, then the last 50 */
    store_history_t h;
    SC_ASSERT(sc_history(env, conv, NULL, 100, &h) == 0 && h.n == 100 && h.has_more);
    for (int i = 0; i < 100; i++) {
        snprintf(text, sizeof(text), "m%d", 150 + i);
        SC_ASSERT(strcmp(h.msgs[i].content, text) == 0 && strcmp(h.msgs[i].id, ids[150 + i]) == 0);
    }
    strcpy(before, h.msgs[0].id);
    store_history_free(&h);
    SC_ASSERT(sc_history(env, conv, before, 100, &h) == 0 && h.n == 100 && h.has_more);
    SC_ASSERT(strcmp(h.msgs[0].id, ids[50]) == 0 && strcmp(h.msgs[99].id, ids[149]) == 0);
    strcpy(before, h.msgs[0].id);
    store_history_free(&h);
    SC_ASSERT(sc_history(env, conv, before, 100, &h) == 0 && h.n == 50 && !h.has_more);
    SC_ASSERT(strcmp(h.msgs[0].id, ids[0]) == 0 && strcmp(h.msgs[49].id, ids[49]) == 0);
    store_history_free(&h);
    /* exactly all of them: no more; one short: more */
    SC_ASSERT(sc_history(env, conv, NULL, 250, &h) == 0 && h.n == 250 && !h.has_more);
    store_history_free(&h);
    SC_ASSERT(sc_history(env, conv, NULL, 249, &h) == 0 && h.n == 249 && h.has_more);
    SC_ASSERT(strcmp(h.msgs[0].id, ids[1]) == 0);
    store_history_free(&h);
    /* before the oldest: empty; before the second: just the first */
    SC_ASSERT(sc_history(env, conv, ids[0], 10, &h) == 0 && h.n == 0 && !h.has_more);
    SC_ASSERT(h.msgs == NULL);
    SC_ASSERT(sc_history(env, conv, ids[1], 10, &h) == 0 && h.n == 1 && !h.has_more);
    SC_ASSERT(strcmp(h.msgs[0].content, "m0") == 0);
    store_history_free(&h);
    mem_free(conv);
    mem_free(other);
}

/* Ids of another conversation, malformed ones and bad limits, whatever the
 * backend's id form (backend files test their own forms further). */
static void sc_test_bad_before_ids(sc_env *env)
{
    char *a = store_conv_room("a"), *b = store_conv_room("b"), *none = store_conv_room("none");
    char ida[STORE_ID_MAX], idb[STORE_ID_MAX], big[STORE_ID_MAX + 8];
    store_history_t h;
    SC_ASSERT(sc_append(env, a, "x", NULL, "in a", 1, ida) == 0);
    SC_ASSERT(sc_append(env, b, "x", NULL, "in b", 2, idb) == 0);
    /* an id of another conversation; any id, for a conversation nobody
     * wrote to; an id with a digit more */
    SC_ASSERT(sc_history(env, a, idb, 10, &h) == STORE_EBADID);
    SC_ASSERT(sc_history(env, b, ida, 10, &h) == STORE_EBADID);
    SC_ASSERT(sc_history(env, none, ida, 10, &h) == STORE_EBADID);
    snprintf(big, sizeof(big), "%s0", idb);
    SC_ASSERT(sc_history(env, a, big, 10, &h) == STORE_EBADID);
    const char *bad[] = {"", "0", "01", "-1", "+1", " 1", "1 ", "1.0", "1e3", "abc", "0x1",
                         "99999999999999999999999",
                         "1234567890123456789012345678901234567890123456789-1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = sc_history(env, a, bad[i], 10, &h);
        if (rc != STORE_EBADID)
            fprintf(stderr, "  before \"%s\": %d\n", bad[i], rc);
        SC_ASSERT(rc == STORE_EBADID);
    }
    /* its own id is fine */
    SC_ASSERT(sc_history(env, a, ida, 10, &h) == 0 && h.n == 0 && !h.has_more);
    SC_ASSERT(h.msgs == NULL); /* an empty page holds no array */
    /* limits */
    SC_ASSERT(sc_history(env, a, NULL, 0, &h) == STORE_EINVAL);
    SC_ASSERT(sc_history(env, a, NULL, STORE_HISTORY_LIMIT_MAX + 1, &h) == STORE_EINVAL);
    mem_free(a);
    mem_free(b);
    mem_free(none);
}

static void sc_test_private_conversations(sc_env *env)
{
    char *ab = store_conv_private("alice", "bob"), *ba = store_conv_private("bob", "alice");
    char *room = store_conv_room("alice\x1f" "bob"), *self = store_conv_private("alice", "alice");
    char id[STORE_ID_MAX];
    store_history_t h;
    SC_ASSERT(strcmp(ab, ba) == 0 && strcmp(ab, "p:alice\x1f" "bob") == 0);
    SC_ASSERT(strcmp(ab, room) != 0 && strcmp(self, "p:alice\x1f" "alice") == 0);
    SC_ASSERT(sc_append(env, ab, "ALICE", "bob", "hi bob", 5, id) == 0);
    SC_ASSERT(sc_append(env, ba, "bob", "ALICE", "hi alice", 6, id) == 0);
    SC_ASSERT(sc_history(env, ba, NULL, 50, &h) == 0 && h.n == 2);
    SC_ASSERT(strcmp(h.msgs[0].from, "ALICE") == 0 && strcmp(h.msgs[0].to, "bob") == 0);
    SC_ASSERT(strcmp(h.msgs[1].from, "bob") == 0 && strcmp(h.msgs[1].to, "ALICE") == 0);
    store_history_free(&h);
    /* the room whose name looks alike sees nothing */
    SC_ASSERT(sc_history(env, room, NULL, 50, &h) == 0 && h.n == 0);
    mem_free(ab);
    mem_free(ba);
    mem_free(room);
    mem_free(self);
}

/* ---- clientId de-duplication --------------------------------------------- */

static void sc_test_dedupe(sc_env *env)
{
    const int64_t now = 1700000000000;
    const int64_t exp = now + STORE_DEDUPE_TTL_MS;
    char *conv = store_conv_room("dd"), *pm = store_conv_private("a", "b");
    char renewed[STORE_ID_MAX];
    store_appended_t first, a;
    store_history_t h;

    SC_ASSERT(sc_append_cid(env, conv, "Alice", NULL, "one", now, "alice", "c1", 2, &first) == 0);
    SC_ASSERT(!first.duplicate && first.ts_ms == now);
    /* clientIds are bytes: with a NUL inside, a different one */
    SC_ASSERT(sc_append_cid(env, pm, "Alice", "B", "two", now + 1, "alice", "c1\0x", 4, &a) == 0);
    SC_ASSERT(!a.duplicate);
    /* the retry, in any conversation: the first's id and time, nothing stored */
    SC_ASSERT(sc_append_cid(env, pm, "Alice", "B", "one again", now + 5, "alice", "c1", 2, &a) ==
              0);
    SC_ASSERT(a.duplicate && strcmp(a.id, first.id) == 0 && a.ts_ms == now);
    SC_ASSERT(sc_history(env, pm, NULL, 50, &h) == 0 && h.n == 1);
    SC_ASSERT(strcmp(h.msgs[0].content, "two") == 0);
    store_history_free(&h);
    /* per user, per exact clientId; a user key that spells another's
     * key's prefix is another user */
    SC_ASSERT(sc_append_cid(env, conv, "Bob", NULL, "b", now, "bob", "c1", 2, &a) == 0);
    SC_ASSERT(!a.duplicate);
    SC_ASSERT(sc_append_cid(env, conv, "Alice", NULL, "c", now, "alice", "c1\0", 3, &a) == 0);
    SC_ASSERT(!a.duplicate);
    SC_ASSERT(sc_append_cid(env, conv, "X", NULL, "d", now, "alice}:cid:c", "1", 1, &a) == 0);
    SC_ASSERT(!a.duplicate);
    /* alive until its expiry at the message's time, gone at it (unpurged) */
    SC_ASSERT(sc_append_cid(env, conv, "Alice", NULL, "x", exp - 1, "alice", "c1", 2, &a) == 0);
    SC_ASSERT(a.duplicate && strcmp(a.id, first.id) == 0);
    SC_ASSERT(sc_append_cid(env, conv, "Alice", NULL, "late", exp, "alice", "c1", 2, &a) == 0);
    SC_ASSERT(!a.duplicate && strcmp(a.id, first.id) != 0); /* stored and remembered anew */
    strcpy(renewed, a.id);
    SC_ASSERT(sc_append_cid(env, conv, "Alice", NULL, "y", exp + 1, "alice", "c1", 2, &a) == 0);
    SC_ASSERT(a.duplicate && strcmp(a.id, renewed) == 0);
    /* a purge answers (how many it deleted is the backend's: see store.h) */
    sc_res r;
    memset(&r, 0, sizeof(r));
    store_dedupe_purge(env->s, exp + 1, sc_on_count, &r);
    SC_ASSERT(sc_wait(env, &r) == 0);
    SC_ASSERT(sc_append_cid(env, conv, "Alice", NULL, "z", exp + 2, "alice", "c1", 2, &a) == 0);
    SC_ASSERT(a.duplicate && strcmp(a.id, renewed) == 0); /* the live entry stays */
    mem_free(conv);
    mem_free(pm);
}

/* ---- what a client missed ------------------------------------------------ */

static void sc_test_since(sc_env *env)
{
    char *a = store_conv_room("a"), *b = store_conv_room("b"), *none = store_conv_room("none");
    char *pm = store_conv_private("alice", "bob");
    char ids[6][STORE_ID_MAX], scratch[STORE_ID_MAX];
    store_history_t h;
    const int64_t t0 = sc_wall_ms();

    /* a conversation nobody wrote to: empty, not an error */
    SC_ASSERT(sc_since(env, none, t0, 50, &h) == 0 && h.msgs == NULL && h.n == 0 && !h.has_more);
    SC_ASSERT(sc_since(env, none, 0, 50, &h) == 0 && h.n == 0);

    SC_ASSERT(sc_append(env, a, "Alice", NULL, "t100", t0 + 100, ids[0]) == 0);
    SC_ASSERT(sc_append(env, b, "Bob", NULL, "other", t0 + 250, scratch) == 0);
    SC_ASSERT(sc_append(env, a, "Bob", NULL, "t200", t0 + 200, ids[1]) == 0);
    SC_ASSERT(sc_append(env, a, "Alice", NULL, "t200 again", t0 + 200, ids[2]) == 0);
    SC_ASSERT(sc_append(env, b, "Bob", NULL, "other", t0 + 350, scratch) == 0);
    SC_ASSERT(sc_append(env, a, "Bob", NULL, "t300", t0 + 300, ids[3]) == 0);
    SC_ASSERT(sc_append(env, a, "Alice", NULL, "t400", t0 + 400, ids[4]) == 0);

    /* nothing newer */
    SC_ASSERT(sc_since(env, a, t0 + 400, 50, &h) == 0 && h.n == 0 && h.msgs == NULL);
    SC_ASSERT(!h.has_more);
    SC_ASSERT(sc_since(env, a, t0 + 3600000, 50, &h) == 0 && h.n == 0);
    /* the boundary is exclusive: since 300 is just the 400 */
    SC_ASSERT(sc_since(env, a, t0 + 300, 50, &h) == 0 && h.n == 1 && !h.has_more);
    SC_ASSERT(strcmp(h.msgs[0].id, ids[4]) == 0 && strcmp(h.msgs[0].from, "Alice") == 0);
    SC_ASSERT(h.msgs[0].to == NULL && strcmp(h.msgs[0].content, "t400") == 0);
    SC_ASSERT(h.msgs[0].content_len == 4 && h.msgs[0].ts_ms == t0 + 400);
    store_history_free(&h);
    /* both messages of ms 200 are out at 200, in at 199, in store order */
    SC_ASSERT(sc_since(env, a, t0 + 200, 50, &h) == 0 && h.n == 2);
    SC_ASSERT(strcmp(h.msgs[0].id, ids[3]) == 0 && strcmp(h.msgs[1].id, ids[4]) == 0);
    store_history_free(&h);
    SC_ASSERT(sc_since(env, a, t0 + 199, 50, &h) == 0 && h.n == 4 && !h.has_more);
    for (int i = 0; i < 4; i++)
        SC_ASSERT(strcmp(h.msgs[i].id, ids[1 + i]) == 0);
    SC_ASSERT(strcmp(h.msgs[1].content, "t200 again") == 0);
    store_history_free(&h);
    /* from long ago: all of it */
    SC_ASSERT(sc_since(env, a, 0, 50, &h) == 0 && h.n == 5 && !h.has_more);
    store_history_free(&h);

    /* limit and has_more */
    SC_ASSERT(sc_since(env, a, t0, 2, &h) == 0 && h.n == 2 && h.has_more);
    SC_ASSERT(strcmp(h.msgs[0].id, ids[0]) == 0 && strcmp(h.msgs[1].id, ids[1]) == 0);
    store_history_free(&h);
    SC_ASSERT(sc_since(env, a, t0, 5, &h) == 0 && h.n == 5 && !h.has_more); /* exactly all */
    store_history_free(&h);
    SC_ASSERT(sc_since(env, a, t0, 4, &h) == 0 && h.n == 4 && h.has_more); /* one short */
    SC_ASSERT(strcmp(h.msgs[3].id, ids[3]) == 0);
    store_history_free(&h);

    /* the server's clock stepped back: store order, not time order */
    SC_ASSERT(sc_append(env, a, "Bob", NULL, "t150", t0 + 150, ids[5]) == 0);
    SC_ASSERT(sc_since(env, a, t0 + 140, 50, &h) == 0 && h.n == 5);
    SC_ASSERT(strcmp(h.msgs[0].id, ids[1]) == 0 && strcmp(h.msgs[4].id, ids[5]) == 0);
    SC_ASSERT(h.msgs[4].ts_ms == t0 + 150);
    store_history_free(&h);
    SC_ASSERT(sc_since(env, a, t0 + 150, 50, &h) == 0 && h.n == 4);
    SC_ASSERT(strcmp(h.msgs[3].id, ids[4]) == 0);
    store_history_free(&h);

    /* a private message keeps its recipient; the ids are history's */
    SC_ASSERT(sc_append(env, pm, "ALICE", "bob", "psst", t0 + 500, scratch) == 0);
    SC_ASSERT(sc_since(env, pm, t0 + 499, 50, &h) == 0 && h.n == 1);
    SC_ASSERT(strcmp(h.msgs[0].to, "bob") == 0 && strcmp(h.msgs[0].id, scratch) == 0);
    store_history_free(&h);

    /* limits */
    SC_ASSERT(sc_since(env, a, 0, 0, &h) == STORE_EINVAL);
    SC_ASSERT(sc_since(env, a, 0, STORE_HISTORY_LIMIT_MAX + 1, &h) == STORE_EINVAL);
    SC_ASSERT(sc_since(env, none, 0, 0, &h) == STORE_EINVAL);
    mem_free(a);
    mem_free(b);
    mem_free(none);
    mem_free(pm);
}

/* Following has_more with the last page's time, over 250 messages of
 * distinct times, another conversation interleaved. */
static void sc_test_since_paging_250(sc_env *env)
{
    char *conv = store_conv_room("big"), *other = store_conv_room("other");
    static char ids[250][STORE_ID_MAX];
    char scratch[STORE_ID_MAX], text[32];
    const int64_t t0 = sc_wall_ms();
    for (int i = 0; i < 250; i++) {
        snprintf(text, sizeof(text), "m%d", i);
        SC_ASSERT(sc_append(env, conv, "Alice", NULL, text, t0 + 1 + i, ids[i]) == 0);
        if (i % 7 == 0)
            SC_ASSERT(sc_append(env, other, "Bob", NULL, "noise", t0 + 1 + i, scratch) == 0);
    }
    store_history_t h;
    int64_t from = t0;
    size_t total = 0;
    const size_t sizes[] = {100, 100, 50};
    for (int page = 0; page < 3; page++) {
        SC_ASSERT(sc_since(env, conv, from, 100, &h) == 0 && h.n == sizes[page]);
        SC_ASSERT(h.has_more == (page < 2));
        for (size_t i = 0; i < h.n; i++) {
            snprintf(text, sizeof(text), "m%zu", total + i);
            SC_ASSERT(strcmp(h.msgs[i].content, text) == 0);
            SC_ASSERT(strcmp(h.msgs[i].id, ids[total + i]) == 0);
        }
        total += h.n;
        from = h.msgs[h.n - 1].ts_ms;
        store_history_free(&h);
    }
    SC_ASSERT(total == 250);
    SC_ASSERT(sc_since(env, conv, from, 100, &h) == 0 && h.n == 0 && !h.has_more);
    /* the whole of it in one page of the largest size */
    SC_ASSERT(sc_since(env, conv, t0, STORE_HISTORY_LIMIT_MAX, &h) == 0 && h.n == 250);
    SC_ASSERT(!h.has_more);
    store_history_free(&h);
    mem_free(conv);
    mem_free(other);
}

static void sc_test_private_convs(sc_env *env)
{
    char *ab = store_conv_private("bob", "alice"), *ac = store_conv_private("carol", "alice");
    char *bc = store_conv_private("bob", "carol"), *aa = store_conv_private("alice", "alice");
    char *ab2 = store_conv_private("alice", "bobby");
    char *lookalike = store_conv_room("alice\x1f" "bob"), *general = store_conv_room("general");
    char id[STORE_ID_MAX];
    store_conv_list_t l;

    /* nobody has any yet */
    SC_ASSERT(sc_private_convs(env, "alice", 0, &l) == 0 && l.convs == NULL && l.n == 0);

    SC_ASSERT(sc_append(env, ab, "Alice", "Bob", "hi bob", 100, id) == 0);
    SC_ASSERT(sc_append(env, ac, "Carol", "Alice", "hi alice", 200, id) == 0);
    SC_ASSERT(sc_append(env, bc, "Bob", "Carol", "hi carol", 300, id) == 0);
    SC_ASSERT(sc_append(env, general, "Alice", NULL, "in a room", 400, id) == 0);
    SC_ASSERT(sc_append(env, aa, "Alice", "Alice", "note to self", 500, id) == 0);
    SC_ASSERT(sc_append(env, lookalike, "Dave", NULL, "a room named like a pair", 600, id) == 0);
    SC_ASSERT(sc_append(env, ab2, "Bobby", "Alice", "not bob", 50, id) == 0);

    /* as sender and as recipient, the self conversation once, rooms never */
    SC_ASSERT(sc_private_convs(env, "alice", 0, &l) == 0 && l.n == 4);
    SC_ASSERT(sc_conv_count(&l, ab) == 1 && sc_conv_count(&l, ac) == 1);
    SC_ASSERT(sc_conv_count(&l, aa) == 1 && sc_conv_count(&l, ab2) == 1);
    store_conv_list_free(&l);
    SC_ASSERT(l.convs == NULL && l.n == 0);
    SC_ASSERT(sc_private_convs(env, "bob", 0, &l) == 0 && l.n == 2); /* "bobby" is another */
    SC_ASSERT(sc_conv_count(&l, ab) == 1 && sc_conv_count(&l, bc) == 1);
    store_conv_list_free(&l);
    SC_ASSERT(sc_private_convs(env, "carol", 0, &l) == 0 && l.n == 2);
    SC_ASSERT(sc_conv_count(&l, ac) == 1 && sc_conv_count(&l, bc) == 1);
    store_conv_list_free(&l);
    SC_ASSERT(sc_private_convs(env, "bobby", 0, &l) == 0 && l.n == 1);
    SC_ASSERT(sc_conv_count(&l, ab2) == 1);
    store_conv_list_free(&l);

    /* since filters, exclusively */
    SC_ASSERT(sc_private_convs(env, "alice", 100, &l) == 0 && l.n == 2);
    SC_ASSERT(sc_conv_count(&l, ac) == 1 && sc_conv_count(&l, aa) == 1);
    store_conv_list_free(&l);
    SC_ASSERT(sc_private_convs(env, "alice", 499, &l) == 0 && l.n == 1);
    SC_ASSERT(strcmp(l.convs[0], aa) == 0);
    store_conv_list_free(&l);
    SC_ASSERT(sc_private_convs(env, "alice", 500, &l) == 0 && l.n == 0 && l.convs == NULL);
    SC_ASSERT(sc_private_convs(env, "bob", 300, &l) == 0 && l.n == 0); /* the room is not his */

    /* a message with an older time does not hide a newer one */
    SC_ASSERT(sc_append(env, ab, "Bob", "Alice", "late clock", 90, id) == 0);
    SC_ASSERT(sc_private_convs(env, "bob", 95, &l) == 0 && l.n == 2);
    SC_ASSERT(sc_conv_count(&l, ab) == 1);
    store_conv_list_free(&l);

    /* users with none: unknown, a prefix of a key, the room's key */
    const char *nobody[] = {"dave", "ali", "alice\x1f" "bob", "general", "", "p:alice"};
    for (size_t i = 0; i < sizeof(nobody) / sizeof(nobody[0]); i++) {
        SC_ASSERT(sc_private_convs(env, nobody[i], 0, &l) == 0);
        if (l.n != 0)
            fprintf(stderr, "  user \"%s\" got %zu conversations\n", nobody[i], l.n);
        SC_ASSERT(l.n == 0 && l.convs == NULL);
    }
    mem_free(ab);
    mem_free(ac);
    mem_free(bc);
    mem_free(aa);
    mem_free(ab2);
    mem_free(lookalike);
    mem_free(general);
}

/* ---- order and completion ------------------------------------------------ */

/* Ops on one conversation complete in start order, each exactly once, none
 * inline, and a read (history or since) sees exactly the writes started
 * before it. */
static void sc_test_order_one_conversation(sc_env *env)
{
    enum { N = 60 };
    char *conv = store_conv_room("order");
    static sc_res w[N], rd[N], rs[N];
    char text[16], cid[16];
    memset(w, 0, sizeof(w));
    memset(rd, 0, sizeof(rd));
    memset(rs, 0, sizeof(rs));
    sc_seq = 0;
    for (int i = 0; i < N; i++) {
        snprintf(text, sizeof(text), "o%d", i);
        snprintf(cid, sizeof(cid), "k%d", i % 3 ? i : 0); /* some retries */
        store_msg_in_t m = {conv, "Alice", NULL, text, strlen(text), 500 + i, NULL, NULL, NULL, NULL};
        store_dedupe_in_t d = {"orderer", cid, strlen(cid), 500 + i + 60000};
        store_msg_append(env->s, &m, i % 2 ? &d : NULL, sc_on_append, &w[i]);
        store_history(env->s, conv, NULL, 1000, sc_on_page, &rd[i]);
        store_since(env->s, conv, 499, 1000, sc_on_page, &rs[i]);
    }
    int inline_calls = 0;
    for (int i = 0; i < N; i++)
        inline_calls += w[i].calls + rd[i].calls + rs[i].calls;
    SC_ASSERT(inline_calls == 0);
    SC_ASSERT(env->wait(env, &rs[N - 1].calls, 1));
    int stored = 0, dups = 0;
    for (int i = 0; i < N; i++) {
        SC_ASSERT(w[i].calls == 1 && rd[i].calls == 1 && rs[i].calls == 1);
        SC_ASSERT(w[i].rc == 0 && rd[i].rc == 0 && rs[i].rc == 0);
        SC_ASSERT(w[i].order == 3 * i && rd[i].order == 3 * i + 1 && rs[i].order == 3 * i + 2);
        if (w[i].app.duplicate)
            dups++;
        else
            stored++;
        SC_ASSERT(rd[i].page.n == (size_t)stored && rs[i].page.n == (size_t)stored);
        SC_ASSERT(!rs[i].page.has_more);
        SC_ASSERT(w[i].app.duplicate ||
                  strcmp(rd[i].page.msgs[stored - 1].id, w[i].app.id) == 0);
        SC_ASSERT(strcmp(rs[i].page.msgs[stored - 1].id, rd[i].page.msgs[stored - 1].id) == 0);
        store_history_free(&rd[i].page);
        store_history_free(&rs[i].page);
    }
    SC_ASSERT(dups > 0);
    mem_free(conv);
}

typedef struct {
    sc_env *env;
    sc_res *next; /* the op to start */
    const char *conv;
    int ran_inline; /* next's callback had run when store_msg_append returned */
} sc_chain;

static void sc_start_append(void *arg)
{
    sc_chain *c = arg;
    store_msg_in_t m = {c->conv, "a", NULL, "chained", 7, 2, NULL, NULL, NULL, NULL};
    store_msg_append(c->env->s, &m, NULL, sc_on_append, c->next);
    c->ran_inline = c->next->calls != 0;
}

/* An op started from a callback completes (not inline), after the op whose
 * callback started it. */
static void sc_test_callback_starts_op(sc_env *env)
{
    char *conv = store_conv_room("chain");
    sc_res first, second;
    memset(&first, 0, sizeof(first));
    memset(&second, 0, sizeof(second));
    sc_chain chain = {env, &second, conv, 0};
    first.then = sc_start_append;
    first.then_arg = &chain;
    sc_seq = 0;
    store_msg_in_t m = {conv, "a", NULL, "first", 5, 1, NULL, NULL, NULL, NULL};
    store_msg_append(env->s, &m, NULL, sc_on_append, &first);
    SC_ASSERT(env->wait(env, &first.calls, 1) && first.rc == 0);
    SC_ASSERT(env->wait(env, &second.calls, 1) && second.calls == 1 && second.rc == 0);
    SC_ASSERT(!chain.ran_inline);
    SC_ASSERT(first.order < second.order);
    store_history_t h;
    SC_ASSERT(sc_history(env, conv, NULL, 10, &h) == 0 && h.n == 2);
    SC_ASSERT(strcmp(h.msgs[0].content, "first") == 0);
    SC_ASSERT(strcmp(h.msgs[1].content, "chained") == 0);
    store_history_free(&h);
    mem_free(conv);
}

static sc_res sc_inner;
static sc_env *sc_closing;
static void sc_start_room_get(void *arg)
{
    (void)arg;
    store_room_get(sc_closing->s, "general", sc_on_room, &sc_inner);
}

/* store_close with ops pending: each callback once, inside store_close,
 * with STORE_ECLOSED and an empty result, in start order; an op started
 * from one of them completes inline the same way. */
static void sc_test_close_with_ops_pending(sc_env *env)
{
    enum { N = 20 };
    static sc_res r[N];
    char *conv = store_conv_room("closing"), id[STORE_ID_MAX];
    memset(r, 0, sizeof(r));
    memset(&sc_inner, 0, sizeof(sc_inner));
    sc_closing = env;
    /* a first round trip: a network backend then has commands really out */
    SC_ASSERT(sc_append(env, conv, "a", NULL, "kept", 1, id) == 0);
    sc_seq = 0;
    for (int i = 0; i < N; i++) {
        store_msg_in_t m = {conv, "A", NULL, "x", 1, 1, NULL, NULL, NULL, NULL};
        store_dedupe_in_t d = {"closer", "cid", 3, 1 + STORE_DEDUPE_TTL_MS};
        if (i == N - 1) {
            r[i].then = sc_start_room_get;
            store_msg_append(env->s, &m, NULL, sc_on_append, &r[i]);
        } else if (i % 6 == 0) {
            store_msg_append(env->s, &m, i % 12 ? &d : NULL, sc_on_append, &r[i]);
        } else if (i % 6 == 1) {
            store_history(env->s, conv, NULL, 10, sc_on_page, &r[i]);
        } else if (i % 6 == 2) {
            store_room_create(env->s, "closing-room", "C", sc_on_room, &r[i]);
        } else if (i % 6 == 3) {
            store_since(env->s, conv, 0, 10, sc_on_page, &r[i]);
        } else if (i % 6 == 4) {
            store_private_convs(env->s, "closer", 0, sc_on_convs, &r[i]);
        } else {
            store_room_list(env->s, sc_on_list, &r[i]);
        }
    }
    /* v2 operations too (the conversation list is composed of others) */
    static sc_res v2[6];
    memset(v2, 0, sizeof(v2));
    store_user_claim(env->s, "closer", "Closer", 1, SC_TTL, sc_on_user, &v2[0]);
    store_conversations(env->s, "AAAAAAAAAAAAAAAAAAAA", sc_on_cl, &v2[1]);
    store_read_mark(env->s, "AAAAAAAAAAAAAAAAAAAA", conv, NULL, sc_on_read, &v2[2]);
    store_secret_get(env->s, "s", 16, sc_on_secret, &v2[3]);
    store_room_members(env->s, "closing-room", sc_on_members, &v2[4]);
    store_member_rooms(env->s, "AAAAAAAAAAAAAAAAAAAA", sc_on_list, &v2[5]);
    env->close(env); /* the callbacks run inside */
    for (int i = 0; i < 6; i++) {
        SC_ASSERT(v2[i].calls == 1 && v2[i].rc == STORE_ECLOSED);
        SC_ASSERT(v2[i].cl.n == 0 && v2[i].cl.convs == NULL && v2[i].members.n == 0);
        SC_ASSERT(v2[i].list.n == 0 && v2[i].read.last_read[0] == '\0');
    }
    SC_ASSERT(v2[0].user_null && v2[3].secret_null);
    for (int i = 0; i < N; i++) {
        SC_ASSERT(r[i].calls == 1 && r[i].rc == STORE_ECLOSED && r[i].order == i);
        SC_ASSERT(r[i].page.msgs == NULL && r[i].page.n == 0 && !r[i].page.has_more);
        SC_ASSERT(r[i].convs.convs == NULL && r[i].convs.n == 0);
        SC_ASSERT(r[i].list.rooms == NULL && r[i].list.n == 0);
        SC_ASSERT(r[i].app.id[0] == '\0' && !r[i].app.duplicate);
        SC_ASSERT(r[i].name[0] == '\0' && !r[i].created);
    }
    SC_ASSERT(sc_inner.calls == 1 && sc_inner.rc == STORE_ECLOSED && sc_inner.name_null);
    SC_ASSERT(env->reopen(env) == 0); /* the runner's teardown closes it */
    mem_free(conv);
}

/* ---- persistence --------------------------------------------------------- */

/* Rooms, messages and clientIds outlive the store_t: a store opened again
 * on the same data has them, and new ids still sort after the old. */
static void sc_test_reopen_keeps_everything(sc_env *env)
{
    char *conv = store_conv_room("general"), *pm = store_conv_private("alice", "bob");
    char id2[STORE_ID_MAX], id3[STORE_ID_MAX];
    store_appended_t a1, a;
    store_history_t h;
    sc_res r;
    SC_ASSERT(sc_room_create(env, "general", "General", &r) == 0);
    SC_ASSERT(sc_append_cid(env, conv, "Alice", NULL, "persisted", 42, "alice", "cid", 3, &a1) ==
              0);
    SC_ASSERT(sc_append(env, pm, "Alice", "Bob", "secret", 43, id2) == 0);

    env->close(env);
    SC_ASSERT(env->reopen(env) == 0);

    SC_ASSERT(sc_room_get(env, "general", &r) == 0 && strcmp(r.name, "General") == 0);
    SC_ASSERT(sc_history(env, conv, NULL, 50, &h) == 0 && h.n == 1);
    SC_ASSERT(strcmp(h.msgs[0].id, a1.id) == 0 && strcmp(h.msgs[0].content, "persisted") == 0);
    SC_ASSERT(h.msgs[0].ts_ms == 42);
    store_history_free(&h);
    SC_ASSERT(sc_history(env, pm, NULL, 50, &h) == 0 && h.n == 1);
    SC_ASSERT(strcmp(h.msgs[0].to, "Bob") == 0 && strcmp(h.msgs[0].id, id2) == 0);
    store_history_free(&h);
    /* the clientId too */
    SC_ASSERT(sc_append_cid(env, conv, "Alice", NULL, "again", 99, "alice", "cid", 3, &a) == 0);
    SC_ASSERT(a.duplicate && strcmp(a.id, a1.id) == 0 && a.ts_ms == 42);
    /* ids keep growing: the new message pages after the old */
    SC_ASSERT(sc_append(env, conv, "Bob", NULL, "after reopen", 44, id3) == 0);
    SC_ASSERT(sc_history(env, conv, id3, 50, &h) == 0 && h.n == 1);
    SC_ASSERT(strcmp(h.msgs[0].id, a1.id) == 0);
    store_history_free(&h);
    mem_free(conv);
    mem_free(pm);
}

/* ---- contract v2: users -------------------------------------------------- */


/* The user wrappers: rc, the user in r->user (an error: r->user_null). */
static int sc_user_result(sc_env *env, sc_res *r)
{
    int rc = sc_wait(env, r);
    if (rc != SC_NOCALL && (rc == 0) == r->user_null)
        sc_failed("a user with 0, NULL with an error", __FILE__, __LINE__);
    return rc;
}

static int sc_claim(sc_env *env, const char *key, const char *name, int64_t now, sc_res *r)
{
    memset(r, 0, sizeof(*r));
    store_user_claim(env->s, key, name, now, SC_TTL, sc_on_user, r);
    return sc_user_result(env, r);
}

static int sc_ensure(sc_env *env, const char *key, const char *name, int64_t now, sc_res *r)
{
    memset(r, 0, sizeof(*r));
    store_user_ensure(env->s, key, name, now, sc_on_user, r);
    return sc_user_result(env, r);
}

static int sc_user_get(sc_env *env, const char *id, int64_t now, sc_res *r)
{
    memset(r, 0, sizeof(*r));
    store_user_get(env->s, id, now, SC_TTL, sc_on_user, r);
    return sc_user_result(env, r);
}

static int sc_user_find(sc_env *env, const char *key, int64_t now, sc_res *r)
{
    memset(r, 0, sizeof(*r));
    store_user_find(env->s, key, now, SC_TTL, sc_on_user, r);
    return sc_user_result(env, r);
}

static int sc_rename(sc_env *env, const char *id, const char *key, const char *name, int64_t now,
                     sc_res *r)
{
    memset(r, 0, sizeof(*r));
    store_user_rename(env->s, id, key, name, now, SC_TTL, sc_on_user, r);
    return sc_user_result(env, r);
}

static int sc_touch(sc_env *env, const char *id, int64_t now)
{
    sc_res r;
    memset(&r, 0, sizeof(r));
    store_user_touch(env->s, id, now, sc_on_count, &r);
    return sc_wait(env, &r);
}

static int sc_purge(sc_env *env, int64_t now, uint64_t *count)
{
    sc_res r;
    memset(&r, 0, sizeof(r));
    store_user_purge(env->s, now, SC_TTL, sc_on_count, &r);
    int rc = sc_wait(env, &r);
    *count = r.count;
    return rc;
}

/* Appends with a sender id; the new id into id. 0, or -1 after reporting. */
static int sc_append_from(sc_env *env, const char *conv, const char *from_id, const char *text,
                          int64_t ts, char id[STORE_ID_MAX])
{
    sc_res r;
    memset(&r, 0, sizeof(r));
    store_msg_in_t m = {conv, "someone", NULL, text, strlen(text), ts, from_id, NULL, NULL, NULL};
    store_msg_append(env->s, &m, NULL, sc_on_append, &r);
    if (sc_wait(env, &r) != 0 || r.app.duplicate || r.app.id[0] == '\0') {
        sc_failed("append: 0, not a duplicate, an id", __FILE__, __LINE__);
        return -1;
    }
    memcpy(id, r.app.id, STORE_ID_MAX);
    return 0;
}

static void sc_test_user_claim(sc_env *env)
{
    const int64_t t = 1700000000000;
    sc_res r, u;
    char id[STORE_USER_ID_MAX];
    SC_ASSERT(sc_claim(env, "alice", "Alice", t, &r) == 0);
    SC_ASSERT(strlen(r.user.id) == RAND_ID_LEN && r.user.guest == 1);
    SC_ASSERT(strcmp(r.user.key, "alice") == 0 && strcmp(r.user.name, "Alice") == 0);
    SC_ASSERT(r.user.created_ms == t && r.user.seen_ms == t);
    strcpy(id, r.user.id);
    /* taken while its owner is offline but live, whatever the display */
    SC_ASSERT(sc_claim(env, "alice", "ALICE", t + 1, &u) == STORE_ETAKEN && u.user_null);
    SC_ASSERT(sc_claim(env, "alice", "Alice", t + SC_TTL - 1, &u) == STORE_ETAKEN);
    SC_ASSERT(sc_user_get(env, id, t + 5, &u) == 0 && strcmp(u.user.id, id) == 0);
    SC_ASSERT(strcmp(u.user.name, "Alice") == 0 && u.user.guest == 1);
    SC_ASSERT(sc_user_find(env, "alice", t + 5, &u) == 0 && strcmp(u.user.id, id) == 0);
    SC_ASSERT(sc_user_find(env, "Alice", t + 5, &u) == STORE_ENOTFOUND); /* keys, not names */
    SC_ASSERT(sc_user_get(env, "nobody-has-this-id!!", t, &u) == STORE_ENOTFOUND);
    /* a touch keeps it alive a lifetime from then */
    SC_ASSERT(sc_touch(env, id, t + 1000) == 0);
    SC_ASSERT(sc_user_get(env, id, t + 1000, &u) == 0 && u.user.seen_ms == t + 1000);
    SC_ASSERT(sc_claim(env, "alice", "Alice", t + 1000 + SC_TTL - 1, &u) == STORE_ETAKEN);
    SC_ASSERT(sc_touch(env, "nobody-has-this-id!!", t) == STORE_ENOTFOUND);
    /* expired: gone for get and find, and its name goes to a new user */
    SC_ASSERT(sc_user_get(env, id, t + 1000 + SC_TTL, &u) == STORE_ENOTFOUND && u.user_null);
    SC_ASSERT(sc_user_find(env, "alice", t + 1000 + SC_TTL, &u) == STORE_ENOTFOUND);
    SC_ASSERT(sc_claim(env, "alice", "Alice", t + 1000 + SC_TTL, &u) == 0);
    SC_ASSERT(strcmp(u.user.id, id) != 0 && u.user.created_ms == t + 1000 + SC_TTL);
    SC_ASSERT(sc_user_get(env, id, t, &r) == STORE_ENOTFOUND); /* purged, at any time */
    SC_ASSERT(sc_user_find(env, "alice", t + 1000 + SC_TTL, &r) == 0);
    SC_ASSERT(strcmp(r.user.id, u.user.id) == 0);
}

static void sc_test_user_ensure(sc_env *env)
{
    const int64_t t = 1700000000000;
    sc_res r, u;
    SC_ASSERT(sc_ensure(env, "carol", "Carol", t, &r) == 0);
    SC_ASSERT(strlen(r.user.id) == RAND_ID_LEN && r.user.guest == 0);
    SC_ASSERT(r.user.created_ms == t && r.user.seen_ms == t);
    SC_ASSERT(sc_ensure(env, "carol", "CAROL", t + 7, &u) == 0);
    SC_ASSERT(strcmp(u.user.id, r.user.id) == 0 && u.user.seen_ms == t + 7);
    SC_ASSERT(u.user.created_ms == t && strcmp(u.user.name, "Carol") == 0);
    /* never expires, so its name is never claimed */
    SC_ASSERT(sc_user_get(env, r.user.id, t + 10 * SC_TTL, &u) == 0 && u.user.guest == 0);
    SC_ASSERT(sc_claim(env, "carol", "Carol", t + 10 * SC_TTL, &u) == STORE_ETAKEN);
    uint64_t n = 99;
    SC_ASSERT(sc_purge(env, t + 10 * SC_TTL, &n) == 0 && n == 0);
    SC_ASSERT(sc_user_find(env, "carol", t + 10 * SC_TTL, &u) == 0);
    /* a guest's name, for ensure: that user */
    SC_ASSERT(sc_claim(env, "dan", "Dan", t, &r) == 0);
    SC_ASSERT(sc_ensure(env, "dan", "Dan", t + 1, &u) == 0 && strcmp(u.user.id, r.user.id) == 0);
}

static void sc_test_user_rename(sc_env *env)
{
    const int64_t t = 1700000000000;
    sc_res a, b, r;
    SC_ASSERT(sc_claim(env, "alice", "Alice", t, &a) == 0);
    SC_ASSERT(sc_claim(env, "bob", "Bob", t, &b) == 0);
    SC_ASSERT(sc_rename(env, a.user.id, "bob", "BOB", t + 1, &r) == STORE_ETAKEN && r.user_null);
    SC_ASSERT(sc_rename(env, a.user.id, "alicia", "Alicia", t + 2, &r) == 0);
    SC_ASSERT(strcmp(r.user.id, a.user.id) == 0 && strcmp(r.user.key, "alicia") == 0);
    SC_ASSERT(strcmp(r.user.name, "Alicia") == 0 && r.user.seen_ms == t + 2);
    SC_ASSERT(sc_user_find(env, "alicia", t + 3, &r) == 0 && strcmp(r.user.id, a.user.id) == 0);
    /* the old name is free at once */
    SC_ASSERT(sc_user_find(env, "alice", t + 3, &r) == STORE_ENOTFOUND);
    SC_ASSERT(sc_claim(env, "alice", "Alice", t + 3, &r) == 0);
    SC_ASSERT(strcmp(r.user.id, a.user.id) != 0);
    /* the same key in another form: the display changes */
    SC_ASSERT(sc_rename(env, a.user.id, "alicia", "ALICIA", t + 4, &r) == 0);
    SC_ASSERT(sc_user_get(env, a.user.id, t + 4, &r) == 0);
    SC_ASSERT(strcmp(r.user.name, "ALICIA") == 0 && strcmp(r.user.key, "alicia") == 0);
    SC_ASSERT(sc_rename(env, "nobody-has-this-id!!", "zed", "Zed", t, &r) == STORE_ENOTFOUND);
    /* bob expires: his name can be taken by a rename, and he is gone */
    SC_ASSERT(sc_touch(env, a.user.id, t + SC_TTL) == 0);
    SC_ASSERT(sc_rename(env, b.user.id, "bobby", "Bobby", t + SC_TTL, &r) == STORE_ENOTFOUND);
    SC_ASSERT(sc_rename(env, a.user.id, "bob", "Bob", t + SC_TTL, &r) == 0);
    SC_ASSERT(sc_user_find(env, "bob", t + SC_TTL, &r) == 0 && strcmp(r.user.id, a.user.id) == 0);
    SC_ASSERT(sc_user_get(env, b.user.id, t, &r) == STORE_ENOTFOUND);
}

/* ---- contract v2: secrets ------------------------------------------------ */

static int sc_secret(sc_env *env, const char *name, size_t len, sc_res *r)
{
    memset(r, 0, sizeof(*r));
    store_secret_get(env->s, name, len, sc_on_secret, r);
    return sc_wait(env, r);
}

static void sc_test_secrets(sc_env *env)
{
    sc_res a, b, c;
    SC_ASSERT(sc_secret(env, "resume", 32, &a) == 0 && a.secret_len == 32 && !a.secret_null);
    SC_ASSERT(sc_secret(env, "resume", 32, &b) == 0 && b.secret_len == 32);
    SC_ASSERT(memcmp(a.secret, b.secret, 32) == 0);
    SC_ASSERT(sc_secret(env, "other", 32, &c) == 0 && memcmp(a.secret, c.secret, 32) != 0);
    static const uint8_t zero[32];
    SC_ASSERT(memcmp(a.secret, zero, 32) != 0);
    SC_ASSERT(sc_secret(env, "bad", 0, &c) == STORE_EINVAL && c.secret_null && c.secret_len == 0);
    SC_ASSERT(sc_secret(env, "bad", STORE_SECRET_MAX + 1, &c) == STORE_EINVAL);
    env->close(env);
    SC_ASSERT(env->reopen(env) == 0);
    SC_ASSERT(sc_secret(env, "resume", 32, &b) == 0 && b.secret_len == 32);
    SC_ASSERT(memcmp(a.secret, b.secret, 32) == 0);
}

/* ---- contract v2: direct conversations, sender ids ----------------------- */

static int sc_direct_convs(sc_env *env, const char *user_id, store_conv_list_t *out)
{
    sc_res r;
    memset(&r, 0, sizeof(r));
    store_direct_convs(env->s, user_id, sc_on_convs, &r);
    int rc = sc_wait(env, &r);
    *out = r.convs;
    return rc;
}

static void sc_test_direct_and_sender_ids(sc_env *env)
{
    const char *a = "AAAAAAAAAAAAAAAAAAAA", *b = "BBBBBBBBBBBBBBBBBBBB", *c = "CCCCCCCCCCCCCCCCCCCC";
    char *ab = store_conv_direct(b, a), *ba = store_conv_direct(a, b);
    char *ac = store_conv_direct(a, c), *aa = store_conv_direct(a, a);
    char *pab = store_conv_private(a, b), *room = store_conv_room("r");
    char id[STORE_ID_MAX];
    store_history_t h;
    store_conv_list_t l;
    SC_ASSERT(strcmp(ab, ba) == 0 && strncmp(ab, "d:", 2) == 0 && strcmp(ab, pab) != 0);
    SC_ASSERT(sc_append_from(env, ab, a, "from a", 100, id) == 0);
    SC_ASSERT(sc_append_from(env, ab, b, "from b", 101, id) == 0);
    SC_ASSERT(sc_append_from(env, ac, c, "from c", 102, id) == 0);
    SC_ASSERT(sc_append_from(env, aa, a, "self", 103, id) == 0);
    SC_ASSERT(sc_append_from(env, pab, NULL, "v1", 104, id) == 0);
    SC_ASSERT(sc_append_from(env, room, a, "room", 105, id) == 0);
    SC_ASSERT(sc_history(env, ab, NULL, 10, &h) == 0 && h.n == 2);
    SC_ASSERT(strcmp(h.msgs[0].from_id, a) == 0 && strcmp(h.msgs[1].from_id, b) == 0);
    store_history_free(&h);
    SC_ASSERT(sc_since(env, ab, 100, 10, &h) == 0 && h.n == 1 && strcmp(h.msgs[0].from_id, b) == 0);
    store_history_free(&h);
    SC_ASSERT(sc_history(env, pab, NULL, 10, &h) == 0 && h.n == 1 && h.msgs[0].from_id == NULL);
    store_history_free(&h);
    /* a user's direct conversations: never "p:" ones, nor rooms */
    SC_ASSERT(sc_direct_convs(env, a, &l) == 0 && l.n == 3);
    SC_ASSERT(sc_conv_count(&l, ab) == 1 && sc_conv_count(&l, ac) == 1);
    SC_ASSERT(sc_conv_count(&l, aa) == 1);
    store_conv_list_free(&l);
    SC_ASSERT(sc_direct_convs(env, b, &l) == 0 && l.n == 1 && sc_conv_count(&l, ab) == 1);
    store_conv_list_free(&l);
    SC_ASSERT(sc_direct_convs(env, c, &l) == 0 && l.n == 1 && sc_conv_count(&l, ac) == 1);
    store_conv_list_free(&l);
    SC_ASSERT(sc_direct_convs(env, "AAAA", &l) == 0 && l.n == 0 && l.convs == NULL);
    mem_free(ab);
    mem_free(ba);
    mem_free(ac);
    mem_free(aa);
    mem_free(pab);
    mem_free(room);
}

/* ---- contract v2: membership --------------------------------------------- */

static int sc_member(sc_env *env, int add, const char *room, const char *user, int64_t t,
                     uint64_t *changed)
{
    sc_res r;
    memset(&r, 0, sizeof(r));
    if (add)
        store_member_add(env->s, room, user, t, sc_on_count, &r);
    else
        store_member_remove(env->s, room, user, sc_on_count, &r);
    int rc = sc_wait(env, &r);
    *changed = r.count;
    return rc;
}

static int sc_member_rooms(sc_env *env, const char *user, store_room_list_t *out)
{
    sc_res r;
    memset(&r, 0, sizeof(r));
    store_member_rooms(env->s, user, sc_on_list, &r);
    int rc = sc_wait(env, &r);
    *out = r.list;
    return rc;
}

static int sc_room_members(sc_env *env, const char *room, store_member_list_t *out)
{
    sc_res r;
    memset(&r, 0, sizeof(r));
    store_room_members(env->s, room, sc_on_members, &r);
    int rc = sc_wait(env, &r);
    *out = r.members;
    return rc;
}

static void sc_test_membership(sc_env *env)
{
    const char *a = "AAAAAAAAAAAAAAAAAAAA", *b = "BBBBBBBBBBBBBBBBBBBB";
    sc_res r;
    uint64_t n;
    store_room_list_t rl;
    store_member_list_t ml;
    SC_ASSERT(sc_room_create(env, "r1", "Room One", &r) == 0);
    SC_ASSERT(sc_room_create(env, "r2", "Room Two", &r) == 0);
    SC_ASSERT(sc_member_rooms(env, a, &rl) == 0 && rl.n == 0 && rl.rooms == NULL);
    SC_ASSERT(sc_room_members(env, "r1", &ml) == 0 && ml.n == 0 && ml.members == NULL);
    SC_ASSERT(sc_member(env, 1, "r2", a, 10, &n) == 0 && n == 1);
    SC_ASSERT(sc_member(env, 1, "r1", b, 20, &n) == 0 && n == 1);
    SC_ASSERT(sc_member(env, 1, "r1", a, 30, &n) == 0 && n == 1);
    SC_ASSERT(sc_member(env, 1, "r1", a, 40, &n) == 0 && n == 0); /* already: time kept */
    SC_ASSERT(sc_room_members(env, "r1", &ml) == 0 && ml.n == 2);
    SC_ASSERT(strcmp(ml.members[0].id, b) == 0 && ml.members[0].joined_ms == 20);
    SC_ASSERT(strcmp(ml.members[1].id, a) == 0 && ml.members[1].joined_ms == 30);
    store_member_list_free(&ml);
    SC_ASSERT(sc_member_rooms(env, a, &rl) == 0 && rl.n == 2);
    SC_ASSERT(strcmp(rl.rooms[0].key, "r2") == 0 && strcmp(rl.rooms[0].name, "Room Two") == 0);
    SC_ASSERT(rl.rooms[0].joined_ms == 10);
    SC_ASSERT(strcmp(rl.rooms[1].key, "r1") == 0 && strcmp(rl.rooms[1].name, "Room One") == 0);
    SC_ASSERT(rl.rooms[1].joined_ms == 30);
    store_room_list_free(&rl);
    SC_ASSERT(sc_member(env, 0, "r2", a, 0, &n) == 0 && n == 1);
    SC_ASSERT(sc_member(env, 0, "r2", a, 0, &n) == 0 && n == 0);
    SC_ASSERT(sc_member(env, 0, "r1", "nobody", 0, &n) == 0 && n == 0);
    /* joined again: last in join order */
    SC_ASSERT(sc_member(env, 1, "r2", a, 50, &n) == 0 && n == 1);
    SC_ASSERT(sc_member_rooms(env, a, &rl) == 0 && rl.n == 2);
    SC_ASSERT(strcmp(rl.rooms[0].key, "r1") == 0 && strcmp(rl.rooms[1].key, "r2") == 0);
    SC_ASSERT(rl.rooms[1].joined_ms == 50);
    store_room_list_free(&rl);
    SC_ASSERT(sc_member_rooms(env, b, &rl) == 0 && rl.n == 1);
    SC_ASSERT(strcmp(rl.rooms[0].key, "r1") == 0);
    store_room_list_free(&rl);
    /* the room list itself has no join time */
    SC_ASSERT(sc_room_list(env, &rl) == 0 && rl.n == 2 && rl.rooms[0].joined_ms == 0);
    store_room_list_free(&rl);
}

/* ---- contract v2: read state --------------------------------------------- */

static int sc_read(sc_env *env, int mark, const char *user, const char *conv, const char *msg,
                   store_read_t *out)
{
    sc_res r;
    memset(&r, 0, sizeof(r));
    if (mark)
        store_read_mark(env->s, user, conv, msg, sc_on_read, &r);
    else
        store_read_get(env->s, user, conv, sc_on_read, &r);
    int rc = sc_wait(env, &r);
    *out = r.read;
    if (rc != 0 && rc != SC_NOCALL && (out->last_read[0] || out->unread || out->changed))
        sc_failed("an error gives an empty read state", __FILE__, __LINE__);
    return rc;
}

#define SC_READ_IS(rd, id, n, ch) \
    (strcmp((rd).last_read, (id)) == 0 && (rd).unread == (n) && (rd).changed == (ch))

static void sc_test_read_state(sc_env *env)
{
    const char *a = "AAAAAAAAAAAAAAAAAAAA", *b = "BBBBBBBBBBBBBBBBBBBB";
    const char *c = "CCCCCCCCCCCCCCCCCCCC";
    char *room = store_conv_room("r"), *other = store_conv_room("o");
    char *empty = store_conv_room("empty");
    char m[8][STORE_ID_MAX], o[STORE_ID_MAX];
    store_read_t rd;
    SC_ASSERT(sc_append_from(env, other, b, "elsewhere", 1, o) == 0);
    /* nothing there yet */
    SC_ASSERT(sc_read(env, 0, a, empty, NULL, &rd) == 0 && SC_READ_IS(rd, "", 0, 0));
    SC_ASSERT(sc_read(env, 1, a, empty, NULL, &rd) == 0 && SC_READ_IS(rd, "", 0, 0));
    SC_ASSERT(sc_read(env, 1, a, empty, o, &rd) == STORE_ENOTFOUND);
    SC_ASSERT(sc_append_from(env, room, b, "m0", 10, m[0]) == 0);
    SC_ASSERT(sc_append_from(env, room, b, "m1", 11, m[1]) == 0);
    SC_ASSERT(sc_append_from(env, room, a, "m2", 12, m[2]) == 0);
    SC_ASSERT(sc_append_from(env, room, b, "m3", 13, m[3]) == 0);
    SC_ASSERT(sc_append_from(env, room, NULL, "m4", 14, m[4]) == 0); /* no sender: counts */
    /* a's own newest message is its read point: unread stops there */
    SC_ASSERT(sc_read(env, 0, a, room, NULL, &rd) == 0 && SC_READ_IS(rd, m[2], 2, 0));
    /* b's own newest is m3; c never wrote: all of them */
    SC_ASSERT(sc_read(env, 0, b, room, NULL, &rd) == 0 && SC_READ_IS(rd, m[3], 1, 0));
    SC_ASSERT(sc_read(env, 0, c, room, NULL, &rd) == 0 && SC_READ_IS(rd, "", 5, 0));
    /* marks never move back: not before the own message, nor the mark */
    SC_ASSERT(sc_read(env, 1, a, room, m[1], &rd) == 0 && SC_READ_IS(rd, m[2], 2, 0));
    SC_ASSERT(sc_read(env, 1, a, room, m[2], &rd) == 0 && SC_READ_IS(rd, m[2], 2, 0));
    SC_ASSERT(sc_read(env, 1, a, room, m[3], &rd) == 0 && SC_READ_IS(rd, m[3], 1, 1));
    SC_ASSERT(sc_read(env, 1, a, room, m[3], &rd) == 0 && SC_READ_IS(rd, m[3], 1, 0));
    SC_ASSERT(sc_read(env, 1, a, room, m[0], &rd) == 0 && SC_READ_IS(rd, m[3], 1, 0));
    SC_ASSERT(sc_read(env, 0, a, room, NULL, &rd) == 0 && SC_READ_IS(rd, m[3], 1, 0));
    /* NULL: the newest (joining marks the room read) */
    SC_ASSERT(sc_read(env, 1, c, room, NULL, &rd) == 0 && SC_READ_IS(rd, m[4], 0, 1));
    SC_ASSERT(sc_read(env, 1, c, room, NULL, &rd) == 0 && SC_READ_IS(rd, m[4], 0, 0));
    /* new messages count; one's own message reads everything before it */
    SC_ASSERT(sc_append_from(env, room, b, "m5", 15, m[5]) == 0);
    SC_ASSERT(sc_append_from(env, room, b, "m6", 16, m[6]) == 0);
    SC_ASSERT(sc_read(env, 0, c, room, NULL, &rd) == 0 && SC_READ_IS(rd, m[4], 2, 0));
    SC_ASSERT(sc_read(env, 0, a, room, NULL, &rd) == 0 && SC_READ_IS(rd, m[3], 3, 0));
    SC_ASSERT(sc_append_from(env, room, c, "m7", 17, m[7]) == 0);
    SC_ASSERT(sc_read(env, 0, c, room, NULL, &rd) == 0 && SC_READ_IS(rd, m[7], 0, 0));
    SC_ASSERT(sc_read(env, 1, c, room, m[6], &rd) == 0 && SC_READ_IS(rd, m[7], 0, 0));
    SC_ASSERT(sc_read(env, 0, a, room, NULL, &rd) == 0 && SC_READ_IS(rd, m[3], 4, 0));
    /* per conversation */
    SC_ASSERT(sc_read(env, 0, a, other, NULL, &rd) == 0 && SC_READ_IS(rd, "", 1, 0));
    /* ids: malformed; of another conversation */
    SC_ASSERT(sc_read(env, 1, a, room, "not an id", &rd) == STORE_EBADID);
    SC_ASSERT(sc_read(env, 1, a, room, "", &rd) == STORE_EBADID);
    SC_ASSERT(sc_read(env, 1, a, room, o, &rd) == STORE_ENOTFOUND);
    SC_ASSERT(sc_read(env, 1, a, other, m[3], &rd) == STORE_ENOTFOUND);
    SC_ASSERT(sc_read(env, 0, a, room, NULL, &rd) == 0 && SC_READ_IS(rd, m[3], 4, 0));
    mem_free(room);
    mem_free(other);
    mem_free(empty);
}

/* Unread over more messages than a backend reads at once. */
static void sc_test_read_state_long(sc_env *env)
{
    const char *a = "AAAAAAAAAAAAAAAAAAAA", *b = "BBBBBBBBBBBBBBBBBBBB";
    char *room = store_conv_room("long");
    static char ids[300][STORE_ID_MAX];
    char own[STORE_ID_MAX];
    store_read_t rd;
    for (int i = 0; i < 300; i++)
        SC_ASSERT(sc_append_from(env, room, b, "x", 1000 + i, ids[i]) == 0);
    SC_ASSERT(sc_read(env, 0, a, room, NULL, &rd) == 0 && SC_READ_IS(rd, "", 300, 0));
    SC_ASSERT(sc_read(env, 1, a, room, ids[9], &rd) == 0 && SC_READ_IS(rd, ids[9], 290, 1));
    SC_ASSERT(sc_read(env, 0, a, room, NULL, &rd) == 0 && SC_READ_IS(rd, ids[9], 290, 0));
    SC_ASSERT(sc_read(env, 1, a, room, ids[20], &rd) == 0 && SC_READ_IS(rd, ids[20], 279, 1));
    SC_ASSERT(sc_append_from(env, room, a, "mine", 2000, own) == 0);
    SC_ASSERT(sc_append_from(env, room, b, "after", 2001, ids[0]) == 0);
    SC_ASSERT(sc_read(env, 0, a, room, NULL, &rd) == 0 && SC_READ_IS(rd, own, 1, 0));
    mem_free(room);
}

/* ---- contract v2: the conversation list ---------------------------------- */

static int sc_conversations(sc_env *env, const char *user, store_conversations_t *out)
{
    sc_res r;
    memset(&r, 0, sizeof(r));
    store_conversations(env->s, user, sc_on_cl, &r);
    int rc = sc_wait(env, &r);
    *out = r.cl;
    return rc;
}

/* The entry of l named conv, or NULL. */
static const store_conversation_t *sc_cl_find(const store_conversations_t *l, const char *conv)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->convs[i].conv, conv) == 0)
            return &l->convs[i];
    return NULL;
}

static void sc_test_conversations(sc_env *env)
{
    const int64_t t = 1700000000000;
    sc_res ua, ub, r;
    uint64_t n;
    char id[STORE_ID_MAX], last[STORE_ID_MAX];
    store_conversations_t l;
    SC_ASSERT(sc_claim(env, "alice", "Alice", t, &ua) == 0);
    SC_ASSERT(sc_claim(env, "bob", "Bob", t, &ub) == 0);
    const char *a = ua.user.id, *b = ub.user.id;
    SC_ASSERT(sc_conversations(env, a, &l) == 0 && l.n == 0 && l.convs == NULL);
    char *r1 = store_conv_room("r1"), *r2 = store_conv_room("r2"), *ab = store_conv_direct(a, b);
    SC_ASSERT(sc_room_create(env, "r1", "Room One", &r) == 0);
    SC_ASSERT(sc_room_create(env, "r2", "Room Two", &r) == 0);
    SC_ASSERT(sc_member(env, 1, "r1", a, t + 1, &n) == 0);
    SC_ASSERT(sc_member(env, 1, "r2", a, t + 2, &n) == 0);
    SC_ASSERT(sc_member(env, 1, "r1", b, t + 3, &n) == 0);
    SC_ASSERT(sc_append_from(env, r1, b, "hello r1", t + 10, id) == 0);
    SC_ASSERT(sc_append_from(env, r1, b, "again r1", t + 11, last) == 0);
    SC_ASSERT(sc_append_from(env, ab, b, "hi alice", t + 12, id) == 0);
    SC_ASSERT(sc_rename(env, b, "robert", "Robert", t + 13, &r) == 0);

    SC_ASSERT(sc_conversations(env, a, &l) == 0 && l.n == 3);
    const store_conversation_t *c = &l.convs[0];
    SC_ASSERT(strcmp(c->conv, r1) == 0 && c->type == STORE_CONV_ROOM);
    SC_ASSERT(strcmp(c->key, "r1") == 0 && strcmp(c->name, "Room One") == 0);
    SC_ASSERT(c->joined_ms == t + 1 && c->unread == 2 && c->has_last);
    SC_ASSERT(c->role == STORE_ROLE_OWNER); /* its first member */
    SC_ASSERT(strcmp(c->last.id, last) == 0 && strcmp(c->last.content, "again r1") == 0);
    SC_ASSERT(c->last.ts_ms == t + 11 && strcmp(c->last.from_id, b) == 0);
    c = &l.convs[1];
    SC_ASSERT(strcmp(c->conv, r2) == 0 && c->type == STORE_CONV_ROOM);
    SC_ASSERT(strcmp(c->name, "Room Two") == 0 && c->joined_ms == t + 2);
    SC_ASSERT(!c->has_last && c->unread == 0 && c->last.content == NULL);
    c = &l.convs[2];
    SC_ASSERT(strcmp(c->conv, ab) == 0 && c->type == STORE_CONV_DIRECT);
    SC_ASSERT(strcmp(c->key, b) == 0 && strcmp(c->name, "Robert") == 0); /* the current name */
    SC_ASSERT(c->unread == 1 && c->has_last && strcmp(c->last.content, "hi alice") == 0);
    store_conversations_free(&l);
    SC_ASSERT(l.convs == NULL && l.n == 0);

    /* marks and replies show; a left room goes */
    SC_ASSERT(sc_append_from(env, ab, a, "hi bob", t + 14, id) == 0);
    store_read_t rd;
    SC_ASSERT(sc_read(env, 1, a, r1, NULL, &rd) == 0 && rd.changed == 1);
    SC_ASSERT(sc_member(env, 0, "r2", a, 0, &n) == 0 && n == 1);
    SC_ASSERT(sc_conversations(env, a, &l) == 0 && l.n == 2);
    SC_ASSERT(sc_cl_find(&l, r2) == NULL);
    SC_ASSERT(sc_cl_find(&l, r1) && sc_cl_find(&l, r1)->unread == 0);
    SC_ASSERT(strcmp(sc_cl_find(&l, r1)->last_read, last) == 0);
    SC_ASSERT(sc_cl_find(&l, ab) && sc_cl_find(&l, ab)->unread == 0);
    SC_ASSERT(strcmp(sc_cl_find(&l, ab)->last.content, "hi bob") == 0);
    store_conversations_free(&l);
    /* bob sees his side */
    SC_ASSERT(sc_conversations(env, b, &l) == 0 && l.n == 2);
    SC_ASSERT(sc_cl_find(&l, ab) && strcmp(sc_cl_find(&l, ab)->key, a) == 0);
    SC_ASSERT(strcmp(sc_cl_find(&l, ab)->name, "Alice") == 0 && sc_cl_find(&l, ab)->unread == 1);
    SC_ASSERT(sc_cl_find(&l, r1) && sc_cl_find(&l, r1)->unread == 0); /* his own newest */
    SC_ASSERT(sc_cl_find(&l, r1)->role == STORE_ROLE_MEMBER);
    store_conversations_free(&l);
    mem_free(r1);
    mem_free(r2);
    mem_free(ab);
}

/* ---- contract v2: expiry purges everything ------------------------------- */

static void sc_test_user_purge(sc_env *env)
{
    const int64_t t = 1700000000000;
    sc_res old, keep, guest, r;
    uint64_t n;
    char id[STORE_ID_MAX];
    store_conv_list_t dl;
    store_room_list_t rl;
    store_member_list_t ml;
    store_conversations_t l;
    store_history_t h;
    store_read_t rd;
    SC_ASSERT(sc_claim(env, "alice", "Alice", t, &old) == 0);
    SC_ASSERT(sc_ensure(env, "bob", "Bob", t, &keep) == 0);       /* never expires */
    SC_ASSERT(sc_claim(env, "carol", "Carol", t, &guest) == 0);   /* kept alive */
    char *room = store_conv_room("r"), *ab = store_conv_direct(old.user.id, keep.user.id);
    char *ac = store_conv_direct(old.user.id, guest.user.id);
    char *bc = store_conv_direct(keep.user.id, guest.user.id);
    SC_ASSERT(sc_room_create(env, "r", "R", &r) == 0);
    SC_ASSERT(sc_member(env, 1, "r", old.user.id, t, &n) == 0);
    SC_ASSERT(sc_member(env, 1, "r", keep.user.id, t, &n) == 0);
    SC_ASSERT(sc_append_from(env, room, keep.user.id, "one", t + 1, id) == 0);
    SC_ASSERT(sc_read(env, 1, old.user.id, room, NULL, &rd) == 0 && rd.changed == 1);
    SC_ASSERT(sc_append_from(env, room, keep.user.id, "two", t + 2, id) == 0);
    SC_ASSERT(sc_append_from(env, ab, old.user.id, "secret a-b", t + 3, id) == 0);
    SC_ASSERT(sc_append_from(env, ac, guest.user.id, "secret a-c", t + 4, id) == 0);
    SC_ASSERT(sc_append_from(env, bc, guest.user.id, "b-c stays", t + 5, id) == 0);

    /* not yet: nothing purged */
    SC_ASSERT(sc_purge(env, t + SC_TTL - 1, &n) == 0 && n == 0);
    SC_ASSERT(sc_touch(env, guest.user.id, t + SC_TTL - 1) == 0);
    SC_ASSERT(sc_purge(env, t + SC_TTL, &n) == 0 && n == 1);
    SC_ASSERT(sc_purge(env, t + SC_TTL, &n) == 0 && n == 0);
    SC_ASSERT(sc_user_get(env, old.user.id, t, &r) == STORE_ENOTFOUND);
    SC_ASSERT(sc_user_get(env, guest.user.id, t + SC_TTL, &r) == 0);

    /* the old user's conversations are gone, for the peers too */
    SC_ASSERT(sc_history(env, ab, NULL, 10, &h) == 0 && h.n == 0);
    SC_ASSERT(sc_history(env, ac, NULL, 10, &h) == 0 && h.n == 0);
    SC_ASSERT(sc_history(env, bc, NULL, 10, &h) == 0 && h.n == 1);
    store_history_free(&h);
    SC_ASSERT(sc_direct_convs(env, keep.user.id, &dl) == 0 && dl.n == 1);
    SC_ASSERT(sc_conv_count(&dl, bc) == 1);
    store_conv_list_free(&dl);
    SC_ASSERT(sc_direct_convs(env, old.user.id, &dl) == 0 && dl.n == 0);
    SC_ASSERT(sc_room_members(env, "r", &ml) == 0 && ml.n == 1);
    SC_ASSERT(strcmp(ml.members[0].id, keep.user.id) == 0);
    store_member_list_free(&ml);
    SC_ASSERT(sc_member_rooms(env, old.user.id, &rl) == 0 && rl.n == 0);
    SC_ASSERT(sc_read(env, 0, old.user.id, room, NULL, &rd) == 0 && SC_READ_IS(rd, "", 2, 0));
    /* the room's messages stay */
    SC_ASSERT(sc_history(env, room, NULL, 10, &h) == 0 && h.n == 2);
    store_history_free(&h);

    /* the name's next owner is a new user that sees none of it */
    SC_ASSERT(sc_claim(env, "alice", "Alice", t + SC_TTL, &r) == 0);
    SC_ASSERT(strcmp(r.user.id, old.user.id) != 0);
    SC_ASSERT(sc_conversations(env, r.user.id, &l) == 0 && l.n == 0);
    SC_ASSERT(sc_member_rooms(env, r.user.id, &rl) == 0 && rl.n == 0);
    SC_ASSERT(sc_read(env, 0, r.user.id, room, NULL, &rd) == 0 && SC_READ_IS(rd, "", 2, 0));
    mem_free(room);
    mem_free(ab);
    mem_free(ac);
    mem_free(bc);
}

/* A claim of an expired guest's name purges it first, without a purge. */
static void sc_test_claim_purges_expired(sc_env *env)
{
    const int64_t t = 1700000000000;
    sc_res old, peer, r;
    uint64_t n;
    char id[STORE_ID_MAX];
    store_conversations_t l;
    store_history_t h;
    SC_ASSERT(sc_claim(env, "alice", "Alice", t, &old) == 0);
    SC_ASSERT(sc_ensure(env, "bob", "Bob", t, &peer) == 0);
    char *ab = store_conv_direct(old.user.id, peer.user.id);
    SC_ASSERT(sc_member(env, 1, "r", old.user.id, t, &n) == 0);
    SC_ASSERT(sc_append_from(env, ab, old.user.id, "old", t + 1, id) == 0);
    SC_ASSERT(sc_claim(env, "alice", "Alice", t + 1 + SC_TTL, &r) == 0);
    SC_ASSERT(strcmp(r.user.id, old.user.id) != 0);
    SC_ASSERT(sc_conversations(env, r.user.id, &l) == 0 && l.n == 0);
    SC_ASSERT(sc_conversations(env, peer.user.id, &l) == 0 && l.n == 0);
    SC_ASSERT(sc_history(env, ab, NULL, 10, &h) == 0 && h.n == 0);
    SC_ASSERT(sc_user_get(env, old.user.id, t, &r) == STORE_ENOTFOUND);
    SC_ASSERT(sc_purge(env, t + 1 + SC_TTL, &n) == 0 && n == 0);
    mem_free(ab);
}

#include "store_contract_suite.c"
