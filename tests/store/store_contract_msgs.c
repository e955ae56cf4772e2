/* store_contract_msgs.c - the contract tests of messages that live
 * (store.h: replies, store_msg_get, store_msg_edit, store_msg_delete,
 * reactions). Included by store_contract.c, whose wrappers it uses; its
 * tests are in sc_tests[] there. */

/* What a message callback leaves: the message taken (deep, freed by the
 * test with store_msg_free) and changed. */
typedef struct {
    int calls, rc, changed, null;
    store_msg_t msg;
} sc_msg_res;

static void sc_on_msg(void *ud, int rc, const store_msg_t *m, int changed)
{
    sc_msg_res *r = ud;
    r->calls++;
    r->rc = rc;
    r->changed = changed;
    r->null = m == NULL;
    memset(&r->msg, 0, sizeof(r->msg));
    if (m) { /* lent: copy what the tests look at */
        store_msg_t *c = &r->msg;
        memcpy(c->id, m->id, sizeof(c->id));
        c->from = mem_strdup(m->from);
        c->content = mem_strndup(m->content, m->content_len);
        c->content_len = m->content_len;
        c->ts_ms = m->ts_ms;
        c->edited_ms = m->edited_ms;
        c->deleted = m->deleted;
        c->reply_id = m->reply_id ? mem_strdup(m->reply_id) : NULL;
        c->reply_from = m->reply_from ? mem_strdup(m->reply_from) : NULL;
        c->reply_excerpt = m->reply_excerpt ? mem_strdup(m->reply_excerpt) : NULL;
        if (m->nreactions)
            c->reactions = mem_calloc(m->nreactions, sizeof(*c->reactions));
        for (size_t i = 0; i < m->nreactions; i++) {
            const store_reaction_t *f = &m->reactions[i];
            store_reaction_t *t = &c->reactions[c->nreactions++];
            t->emoji = mem_strdup(f->emoji);
            t->count = f->count;
            t->users = mem_calloc(f->nusers + 1, sizeof(*t->users));
            for (size_t j = 0; j < f->nusers; j++)
                t->users[t->nusers++] = mem_strdup(f->users[j]);
        }
    }
}

static int sc_msg_wait(sc_env *env, sc_msg_res *r)
{
    if (r->calls != 0) {
        sc_failed("the callback ran inline", __FILE__, __LINE__);
        return SC_NOCALL;
    }
    if (!env->wait(env, &r->calls, 1) || r->calls != 1) {
        sc_failed("the callback ran exactly once", __FILE__, __LINE__);
        return SC_NOCALL;
    }
    if ((r->rc == 0) == r->null) {
        sc_failed("a message exactly on success", __FILE__, __LINE__);
        return SC_NOCALL;
    }
    return r->rc;
}

enum { SC_GET, SC_EDIT, SC_DELETE, SC_REACT_ADD, SC_REACT_DEL };

/* One message operation on s (env->s when NULL); arg: the edit's content
 * or the reaction's emoji; user: the reactor ("u-<name>" is its id). */
static int sc_msg_op(sc_env *env, int op, const char *conv, const char *id, const char *arg,
                     const char *user, int64_t now, sc_msg_res *r)
{
    char uid[64];
    snprintf(uid, sizeof(uid), "u-%s", user ? user : "");
    store_msg_free(&r->msg);
    memset(r, 0, sizeof(*r));
    switch (op) {
    case SC_GET:
        store_msg_get(env->s, conv, id, sc_on_msg, r);
        break;
    case SC_EDIT:
        store_msg_edit(env->s, conv, id, arg, strlen(arg), now, sc_on_msg, r);
        break;
    case SC_DELETE:
        store_msg_delete(env->s, conv, id, sc_on_msg, r);
        break;
    case SC_REACT_ADD:
        store_reaction_add(env->s, conv, id, uid, user, arg, sc_on_msg, r);
        break;
    default:
        store_reaction_remove(env->s, conv, id, uid, user, arg, sc_on_msg, r);
        break;
    }
    return sc_msg_wait(env, r);
}

/* Appends a reply (reply_to may be NULL) from "alice": 0 and the id, or
 * the append's error. */
static int sc_append_reply(sc_env *env, const char *conv, const char *text, const char *reply_to,
                           int64_t ts, char id[STORE_ID_MAX])
{
    sc_res r;
    memset(&r, 0, sizeof(r));
    store_msg_in_t m = {.conv = conv, .from = "alice", .content = text,
                        .content_len = strlen(text), .ts_ms = ts, .from_id = "u-alice",
                        .reply_to = reply_to};
    store_msg_append(env->s, &m, NULL, sc_on_append, &r);
    int rc = sc_wait(env, &r);
    memcpy(id, r.app.id, STORE_ID_MAX);
    return rc;
}

/* m is a tombstone of alice's: content "", nothing else. */
static int sc_is_tombstone(const store_msg_t *m, int64_t ts)
{
    return m->deleted && m->content && m->content[0] == '\0' && m->content_len == 0 &&
           m->edited_ms == 0 && m->reply_id == NULL && m->nreactions == 0 && m->ts_ms == ts &&
           m->from && strcmp(m->from, "alice") == 0;
}

static void sc_test_msg_reply_edit_delete(sc_env *env)
{
    const int64_t t = (int64_t)time(NULL) * 1000;
    char a[STORE_ID_MAX], b[STORE_ID_MAX], c[STORE_ID_MAX], o[STORE_ID_MAX], x[STORE_ID_MAX];
    char *room = store_conv_room("r"), *other = store_conv_room("o");
    char long_text[400] = "";
    sc_msg_res r = {0};
    store_history_t h;
    for (int i = 0; i < 150; i++) /* 150 code points, 2 bytes each */
        strcat(long_text, "\xc3\xa9");

    SC_ASSERT(sc_append_reply(env, other, "elsewhere", NULL, t, o) == 0);
    SC_ASSERT(sc_append_reply(env, room, "original text", NULL, t + 1, a) == 0);
    SC_ASSERT(sc_append_reply(env, room, long_text, NULL, t + 2, c) == 0);
    SC_ASSERT(sc_append_reply(env, room, "the reply", a, t + 3, b) == 0);
    /* a reply's target must be a message of the conversation */
    SC_ASSERT(sc_append_reply(env, room, "bad", "x", t + 4, x) == STORE_EBADID);
    SC_ASSERT(sc_append_reply(env, room, "bad", o, t + 4, x) == STORE_ENOTFOUND);
    SC_ASSERT(sc_append_reply(env, "r:new", "bad", a, t + 4, x) == STORE_ENOTFOUND);
    SC_ASSERT(sc_history(env, room, NULL, 10, &h) == 0 && h.n == 3);
    SC_ASSERT(h.msgs[2].reply_id && strcmp(h.msgs[2].reply_id, a) == 0);
    SC_ASSERT(strcmp(h.msgs[2].reply_from, "alice") == 0);
    SC_ASSERT(strcmp(h.msgs[2].reply_excerpt, "original text") == 0);
    SC_ASSERT(h.msgs[0].reply_id == NULL && h.msgs[0].edited_ms == 0 && !h.msgs[0].deleted);
    store_history_free(&h);
    SC_ASSERT(sc_append_reply(env, room, "to the long one", c, t + 5, x) == 0);
    SC_ASSERT(sc_msg_op(env, SC_GET, room, x, NULL, NULL, 0, &r) == 0 && r.changed == 0);
    SC_ASSERT(strlen(r.msg.reply_excerpt) == 200); /* 100 code points */
    SC_ASSERT(strncmp(r.msg.reply_excerpt, long_text, 200) == 0);

    /* get */
    SC_ASSERT(sc_msg_op(env, SC_GET, room, a, NULL, NULL, 0, &r) == 0 && r.changed == 0);
    SC_ASSERT(strcmp(r.msg.id, a) == 0 && strcmp(r.msg.content, "original text") == 0);
    SC_ASSERT(r.msg.ts_ms == t + 1 && r.msg.edited_ms == 0 && !r.msg.deleted);
    SC_ASSERT(sc_msg_op(env, SC_GET, room, o, NULL, NULL, 0, &r) == STORE_ENOTFOUND);
    SC_ASSERT(sc_msg_op(env, SC_GET, room, "x", NULL, NULL, 0, &r) == STORE_EBADID);

    /* edit: the message and the replies' excerpts show it */
    SC_ASSERT(sc_msg_op(env, SC_EDIT, room, a, "edited text", NULL, t + 100, &r) == 0);
    SC_ASSERT(r.changed == 1 && strcmp(r.msg.content, "edited text") == 0);
    SC_ASSERT(r.msg.edited_ms == t + 100 && r.msg.ts_ms == t + 1);
    SC_ASSERT(sc_msg_op(env, SC_EDIT, room, o, "no", NULL, t, &r) == STORE_ENOTFOUND);
    SC_ASSERT(sc_history(env, room, NULL, 10, &h) == 0 && h.n == 4);
    SC_ASSERT(strcmp(h.msgs[0].content, "edited text") == 0 && h.msgs[0].edited_ms == t + 100);
    SC_ASSERT(strcmp(h.msgs[2].reply_excerpt, "edited text") == 0);
    store_history_free(&h);

    /* delete b (a reply, edited, with a reaction): a bare tombstone */
    SC_ASSERT(sc_msg_op(env, SC_EDIT, room, b, "reply edited", NULL, t + 101, &r) == 0);
    SC_ASSERT(sc_msg_op(env, SC_REACT_ADD, room, b, "+1", "bob", 0, &r) == 0);
    SC_ASSERT(sc_msg_op(env, SC_DELETE, room, b, NULL, NULL, 0, &r) == 0 && r.changed == 1);
    SC_ASSERT(sc_is_tombstone(&r.msg, t + 3) && strcmp(r.msg.id, b) == 0);
    SC_ASSERT(sc_msg_op(env, SC_DELETE, room, b, NULL, NULL, 0, &r) == 0 && r.changed == 0);
    SC_ASSERT(sc_is_tombstone(&r.msg, t + 3));
    SC_ASSERT(sc_msg_op(env, SC_EDIT, room, b, "again", NULL, t, &r) == STORE_ENOTFOUND);
    SC_ASSERT(sc_msg_op(env, SC_REACT_ADD, room, b, "+1", "bob", 0, &r) == STORE_ENOTFOUND);
    SC_ASSERT(sc_msg_op(env, SC_DELETE, room, o, NULL, NULL, 0, &r) == STORE_ENOTFOUND);
    SC_ASSERT(sc_msg_op(env, SC_DELETE, room, "x", NULL, NULL, 0, &r) == STORE_EBADID);

    /* delete a: the reply to it keeps its id and sender, its excerpt is "" */
    SC_ASSERT(sc_msg_op(env, SC_DELETE, room, a, NULL, NULL, 0, &r) == 0 && r.changed == 1);
    SC_ASSERT(sc_history(env, room, NULL, 10, &h) == 0 && h.n == 4 && !h.has_more);
    SC_ASSERT(strcmp(h.msgs[0].id, a) == 0 && sc_is_tombstone(&h.msgs[0], t + 1));
    SC_ASSERT(strcmp(h.msgs[1].id, c) == 0 && strcmp(h.msgs[1].content, long_text) == 0);
    SC_ASSERT(strcmp(h.msgs[2].id, b) == 0 && sc_is_tombstone(&h.msgs[2], t + 3));
    SC_ASSERT(strcmp(h.msgs[3].id, x) == 0 && !h.msgs[3].deleted);
    store_history_free(&h);
    SC_ASSERT(sc_append_reply(env, room, "to a tombstone", a, t + 6, x) == 0);
    SC_ASSERT(sc_msg_op(env, SC_GET, room, x, NULL, NULL, 0, &r) == 0);
    SC_ASSERT(strcmp(r.msg.reply_id, a) == 0 && strcmp(r.msg.reply_from, "alice") == 0);
    SC_ASSERT(strcmp(r.msg.reply_excerpt, "") == 0);

    /* tombstones keep their place: pages by before, since */
    SC_ASSERT(sc_history(env, room, x, 2, &h) == 0 && h.n == 2 && h.has_more);
    SC_ASSERT(strcmp(h.msgs[0].id, b) == 0 && h.msgs[0].deleted);
    store_history_free(&h);
    SC_ASSERT(sc_history(env, room, b, 10, &h) == 0 && h.n == 2 && !h.has_more);
    SC_ASSERT(strcmp(h.msgs[0].id, a) == 0 && strcmp(h.msgs[1].id, c) == 0);
    store_history_free(&h);
    SC_ASSERT(sc_history(env, room, a, 10, &h) == 0 && h.n == 0);
    store_history_free(&h);
    SC_ASSERT(sc_since(env, room, t, 10, &h) == 0 && h.n == 5);
    SC_ASSERT(h.msgs[0].deleted && strcmp(h.msgs[0].id, a) == 0);
    SC_ASSERT(h.msgs[2].deleted && strcmp(h.msgs[2].id, b) == 0);
    store_history_free(&h);
    SC_ASSERT(sc_since(env, room, t + 2, 10, &h) == 0 && h.n == 3);
    SC_ASSERT(h.msgs[0].deleted && strcmp(h.msgs[0].id, b) == 0);
    store_history_free(&h);
    store_msg_free(&r.msg);
    mem_free(room);
    mem_free(other);
}

static int sc_reaction_is(const store_msg_t *m, size_t i, const char *emoji, uint64_t count,
                          const char *first)
{
    return i < m->nreactions && strcmp(m->reactions[i].emoji, emoji) == 0 &&
           m->reactions[i].count == count && m->reactions[i].nusers >= 1 &&
           strcmp(m->reactions[i].users[0], first) == 0;
}

static void sc_test_reactions(sc_env *env)
{
    const int64_t t = (int64_t)time(NULL) * 1000;
    char a[STORE_ID_MAX], emoji[16], user[16];
    char *room = store_conv_room("r");
    sc_msg_res r = {0};
    store_history_t h;
    SC_ASSERT(sc_append_reply(env, room, "react to me", NULL, t, a) == 0);
    SC_ASSERT(sc_msg_op(env, SC_REACT_ADD, room, a, "\xf0\x9f\x91\x8d", "alice", 0, &r) == 0);
    SC_ASSERT(r.changed == 1 && r.msg.nreactions == 1);
    SC_ASSERT(sc_reaction_is(&r.msg, 0, "\xf0\x9f\x91\x8d", 1, "alice"));
    SC_ASSERT(sc_msg_op(env, SC_REACT_ADD, room, a, "\xf0\x9f\x91\x8d", "alice", 0, &r) == 0);
    SC_ASSERT(r.changed == 0 && sc_reaction_is(&r.msg, 0, "\xf0\x9f\x91\x8d", 1, "alice"));
    SC_ASSERT(sc_msg_op(env, SC_REACT_ADD, room, a, "\xf0\x9f\x91\x8d", "bob", 0, &r) == 0);
    SC_ASSERT(sc_msg_op(env, SC_REACT_ADD, room, a, "ok", "bob", 0, &r) == 0);
    SC_ASSERT(r.changed == 1 && r.msg.nreactions == 2);
    SC_ASSERT(sc_reaction_is(&r.msg, 0, "\xf0\x9f\x91\x8d", 2, "alice"));
    SC_ASSERT(strcmp(r.msg.reactions[0].users[1], "bob") == 0);
    SC_ASSERT(sc_reaction_is(&r.msg, 1, "ok", 1, "bob"));
    SC_ASSERT(sc_msg_op(env, SC_REACT_DEL, room, a, "ok", "carol", 0, &r) == 0);
    SC_ASSERT(r.changed == 0 && r.msg.nreactions == 2);
    SC_ASSERT(sc_msg_op(env, SC_REACT_DEL, room, a, "\xf0\x9f\x91\x8d", "alice", 0, &r) == 0);
    SC_ASSERT(r.changed == 1 && sc_reaction_is(&r.msg, 0, "\xf0\x9f\x91\x8d", 1, "bob"));
    SC_ASSERT(sc_msg_op(env, SC_REACT_DEL, room, a, "\xf0\x9f\x91\x8d", "bob", 0, &r) == 0);
    SC_ASSERT(r.changed == 1 && r.msg.nreactions == 1 && sc_reaction_is(&r.msg, 0, "ok", 1, "bob"));
    /* history shows them; an edit keeps them */
    SC_ASSERT(sc_msg_op(env, SC_EDIT, room, a, "edited", NULL, t + 1, &r) == 0);
    SC_ASSERT(r.msg.nreactions == 1);
    SC_ASSERT(sc_history(env, room, NULL, 10, &h) == 0 && h.n == 1);
    SC_ASSERT(sc_reaction_is(&h.msgs[0], 0, "ok", 1, "bob") && h.msgs[0].nreactions == 1);
    store_history_free(&h);

    /* at most 20 distinct emoji; the ones there still take reactors */
    for (int i = 1; i < STORE_REACTION_EMOJI_MAX; i++) {
        snprintf(emoji, sizeof(emoji), "e%d", i);
        SC_ASSERT(sc_msg_op(env, SC_REACT_ADD, room, a, emoji, "alice", 0, &r) == 0);
    }
    SC_ASSERT(r.msg.nreactions == STORE_REACTION_EMOJI_MAX);
    SC_ASSERT(sc_msg_op(env, SC_REACT_ADD, room, a, "e99", "alice", 0, &r) == STORE_ELIMIT);
    SC_ASSERT(sc_msg_op(env, SC_REACT_ADD, room, a, "e5", "bob", 0, &r) == 0 && r.changed);
    /* 25 reactors: the count says 25, the first 20 are named */
    for (int i = 0; i < 25; i++) {
        snprintf(user, sizeof(user), "user%02d", i);
        SC_ASSERT(sc_msg_op(env, SC_REACT_ADD, room, a, "ok", user, 0, &r) == 0);
    }
    SC_ASSERT(sc_reaction_is(&r.msg, 0, "ok", 26, "bob"));
    SC_ASSERT(r.msg.reactions[0].nusers == STORE_REACTION_USERS_MAX);
    SC_ASSERT(strcmp(r.msg.reactions[0].users[19], "user18") == 0);
    /* a delete takes them all */
    SC_ASSERT(sc_msg_op(env, SC_DELETE, room, a, NULL, NULL, 0, &r) == 0);
    SC_ASSERT(r.msg.nreactions == 0 && r.msg.deleted);
    store_msg_free(&r.msg);
    mem_free(room);
}

typedef struct {
    int calls, failed;
} sc_count_res;

static void sc_on_react_count(void *ud, int rc, const store_msg_t *m, int changed)
{
    sc_count_res *r = ud;
    r->calls++;
    if (rc != 0 || !changed)
        r->failed++;
}

/* Reactions from two stores on the same data: none is lost. Runners whose
 * two stores cannot both have writes out at once (SQLite: one thread,
 * two connections) alternate them. */
static void sc_test_reactions_two_stores(sc_env *env)
{
    const int64_t t = (int64_t)time(NULL) * 1000;
    char a[STORE_ID_MAX], user[16];
    char *room = store_conv_room("r");
    store_t *s2 = NULL;
    sc_count_res cr = {0};
    sc_msg_res r = {0};
    enum { N = 40 };
    SC_ASSERT(sc_append_reply(env, room, "count me", NULL, t, a) == 0);
    SC_ASSERT(env->open2(env, &s2) == 0 && s2 != NULL);
    for (int i = 0; i < N; i++) {
        snprintf(user, sizeof(user), "user%02d", i);
        char uid[32];
        snprintf(uid, sizeof(uid), "u-%s", user);
        store_reaction_add(i % 2 ? s2 : env->s, room, a, uid, user, "+1", sc_on_react_count, &cr);
        if (!env->concurrent2 && !env->wait(env, &cr.calls, i + 1))
            break;
    }
    int waited = env->wait(env, &cr.calls, N);
    env->close2(env, s2);
    SC_ASSERT(waited && cr.calls == N && cr.failed == 0);
    SC_ASSERT(sc_msg_op(env, SC_GET, room, a, NULL, NULL, 0, &r) == 0);
    SC_ASSERT(r.msg.nreactions == 1 && r.msg.reactions[0].count == N);
    store_msg_free(&r.msg);
    mem_free(room);
}
