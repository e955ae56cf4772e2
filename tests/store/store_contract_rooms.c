/* store_contract_rooms.c - the contract tests of rooms with owners
 * (store.h: roles, store_member_role_set, the succession of owners).
 * Included by store_contract.c, whose wrappers it uses; its tests are in
 * sc_tests[] there. */

static int sc_role_set(sc_env *env, const char *room, const char *user, int role,
                       uint64_t *changed)
{
    sc_res r;
    memset(&r, 0, sizeof(r));
    store_member_role_set(env->s, room, user, role, sc_on_count, &r);
    int rc = sc_wait(env, &r);
    *changed = r.count;
    return rc;
}

/* The roles of room's members, in join order, as a string: "o" owner,
 * "m" moderator, "-" member, each after the user's id and ":" ("a:o b:-"). */
static int sc_roles(sc_env *env, const char *room, char *out, size_t size)
{
    store_member_list_t l;
    int rc = sc_room_members(env, room, &l);
    out[0] = '\0';
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        size_t n = strlen(out);
        const char *role = l.members[i].role == STORE_ROLE_OWNER       ? "o"
                           : l.members[i].role == STORE_ROLE_MODERATOR ? "m"
                                                                       : "-";
        snprintf(out + n, size - n, "%s%s:%s", n ? " " : "", l.members[i].id, role);
    }
    store_member_list_free(&l);
    return rc;
}

static void sc_test_room_owners(sc_env *env)
{
    const int64_t t = 1700000000000;
    char roles[256];
    uint64_t n;
    /* the first member of a room is its owner */
    SC_ASSERT(sc_member(env, 1, "r", "u1", t, &n) == 0 && n == 1);
    SC_ASSERT(sc_member(env, 1, "r", "u2", t + 1, &n) == 0 && n == 1);
    SC_ASSERT(sc_member(env, 1, "r", "u3", t + 2, &n) == 0 && n == 1);
    SC_ASSERT(sc_member(env, 1, "r", "u1", t + 3, &n) == 0 && n == 0);
    SC_ASSERT(sc_roles(env, "r", roles, sizeof(roles)) == 0);
    SC_ASSERT(strcmp(roles, "u1:o u2:- u3:-") == 0);
    /* roles */
    SC_ASSERT(sc_role_set(env, "r", "u3", STORE_ROLE_MODERATOR, &n) == 0 && n == 1);
    SC_ASSERT(sc_role_set(env, "r", "u3", STORE_ROLE_MODERATOR, &n) == 0 && n == 0);
    SC_ASSERT(sc_role_set(env, "r", "u9", STORE_ROLE_MODERATOR, &n) == STORE_ENOTFOUND);
    SC_ASSERT(sc_role_set(env, "r", "u1", STORE_ROLE_MEMBER, &n) == STORE_EINVAL);
    SC_ASSERT(sc_role_set(env, "r", "u2", 7, &n) == STORE_EINVAL);
    SC_ASSERT(sc_roles(env, "r", roles, sizeof(roles)) == 0);
    SC_ASSERT(strcmp(roles, "u1:o u2:- u3:m") == 0);
    /* the owner leaves: the longest-standing moderator takes over */
    SC_ASSERT(sc_member(env, 0, "r", "u1", 0, &n) == 0 && n == 1);
    SC_ASSERT(sc_roles(env, "r", roles, sizeof(roles)) == 0);
    SC_ASSERT(strcmp(roles, "u2:- u3:o") == 0);
    /* ownership handed on: the old owner becomes a moderator */
    SC_ASSERT(sc_role_set(env, "r", "u2", STORE_ROLE_OWNER, &n) == 0 && n == 1);
    SC_ASSERT(sc_roles(env, "r", roles, sizeof(roles)) == 0);
    SC_ASSERT(strcmp(roles, "u2:o u3:m") == 0);
    SC_ASSERT(sc_role_set(env, "r", "u3", STORE_ROLE_MEMBER, &n) == 0 && n == 1);
    SC_ASSERT(sc_member(env, 1, "r", "u4", t + 4, &n) == 0 && n == 1);
    /* no moderator: the longest-standing member */
    SC_ASSERT(sc_member(env, 0, "r", "u2", 0, &n) == 0 && n == 1);
    SC_ASSERT(sc_roles(env, "r", roles, sizeof(roles)) == 0);
    SC_ASSERT(strcmp(roles, "u3:o u4:-") == 0);
    /* a member leaving changes no role */
    SC_ASSERT(sc_member(env, 0, "r", "u4", 0, &n) == 0 && n == 1);
    SC_ASSERT(sc_roles(env, "r", roles, sizeof(roles)) == 0);
    SC_ASSERT(strcmp(roles, "u3:o") == 0);
    /* left without members: kept ownerless; its next member owns it */
    SC_ASSERT(sc_member(env, 0, "r", "u3", 0, &n) == 0 && n == 1);
    SC_ASSERT(sc_roles(env, "r", roles, sizeof(roles)) == 0 && roles[0] == '\0');
    SC_ASSERT(sc_member(env, 1, "r", "u5", t + 5, &n) == 0 && n == 1);
    SC_ASSERT(sc_member(env, 1, "r", "u3", t + 6, &n) == 0 && n == 1);
    SC_ASSERT(sc_roles(env, "r", roles, sizeof(roles)) == 0);
    SC_ASSERT(strcmp(roles, "u5:o u3:-") == 0);
    /* a user's room list says its role in each */
    store_room_list_t rl;
    SC_ASSERT(sc_member(env, 1, "s", "u3", t + 7, &n) == 0 && n == 1);
    SC_ASSERT(sc_member(env, 1, "t", "u5", t + 8, &n) == 0 && n == 1);
    SC_ASSERT(sc_member(env, 1, "t", "u3", t + 9, &n) == 0 && n == 1);
    SC_ASSERT(sc_role_set(env, "t", "u3", STORE_ROLE_MODERATOR, &n) == 0 && n == 1);
    SC_ASSERT(sc_member_rooms(env, "u3", &rl) == 0 && rl.n == 3);
    SC_ASSERT(strcmp(rl.rooms[0].key, "r") == 0 && rl.rooms[0].role == STORE_ROLE_MEMBER);
    SC_ASSERT(strcmp(rl.rooms[1].key, "s") == 0 && rl.rooms[1].role == STORE_ROLE_OWNER);
    SC_ASSERT(strcmp(rl.rooms[2].key, "t") == 0 && rl.rooms[2].role == STORE_ROLE_MODERATOR);
    store_room_list_free(&rl);
}

/* An owner that expires (store_user_purge) passes its rooms on. */
static void sc_test_room_owner_purged(sc_env *env)
{
    const int64_t t = 1700000000000;
    char roles[256], want[256];
    uint64_t n;
    sc_res g, k, m;
    SC_ASSERT(sc_claim(env, "ghost", "Ghost", t, &g) == 0);
    SC_ASSERT(sc_ensure(env, "keep", "Keep", t, &k) == 0);
    SC_ASSERT(sc_ensure(env, "mod", "Mod", t, &m) == 0);
    SC_ASSERT(sc_member(env, 1, "r", g.user.id, t, &n) == 0 && n == 1);
    SC_ASSERT(sc_member(env, 1, "r", k.user.id, t + 1, &n) == 0 && n == 1);
    SC_ASSERT(sc_member(env, 1, "r", m.user.id, t + 2, &n) == 0 && n == 1);
    SC_ASSERT(sc_role_set(env, "r", m.user.id, STORE_ROLE_MODERATOR, &n) == 0 && n == 1);
    SC_ASSERT(sc_member(env, 1, "s", k.user.id, t + 3, &n) == 0 && n == 1);
    SC_ASSERT(sc_member(env, 1, "s", g.user.id, t + 4, &n) == 0 && n == 1);
    SC_ASSERT(sc_purge(env, t + SC_TTL, &n) == 0 && n == 1);
    SC_ASSERT(sc_roles(env, "r", roles, sizeof(roles)) == 0);
    snprintf(want, sizeof(want), "%s:- %s:o", k.user.id, m.user.id);
    SC_ASSERT(strcmp(roles, want) == 0);
    SC_ASSERT(sc_roles(env, "s", roles, sizeof(roles)) == 0); /* not its room: unchanged */
    snprintf(want, sizeof(want), "%s:o", k.user.id);
    SC_ASSERT(strcmp(roles, want) == 0);
}

typedef struct {
    int calls, rc, is_private;
    char name[64], topic[300];
} sc_info_res;

static void sc_on_info(void *ud, int rc, const store_room_info_t *info)
{
    sc_info_res *r = ud;
    r->calls++;
    r->rc = rc;
    if (info) {
        r->is_private = info->is_private;
        snprintf(r->name, sizeof(r->name), "%s", info->name);
        snprintf(r->topic, sizeof(r->topic), "%s", info->topic);
    }
}

static int sc_info(sc_env *env, const char *key, sc_info_res *r)
{
    memset(r, 0, sizeof(*r));
    store_room_info(env->s, key, sc_on_info, r);
    if (r->calls != 0 || !env->wait(env, &r->calls, 1) || r->calls != 1) {
        sc_failed("the info callback ran once, later", __FILE__, __LINE__);
        return SC_NOCALL;
    }
    return r->rc;
}

static int sc_count_op(sc_env *env, sc_res *r)
{
    return sc_wait(env, r);
}

static void sc_test_room_settings(sc_env *env)
{
    const int64_t t = 1700000000000;
    char roles[256];
    sc_res r;
    sc_info_res in;
    store_room_opts_t o = {.is_private = 1, .topic = "a topic", .owner_id = "u1", .now_ms = t};
    memset(&r, 0, sizeof(r));
    store_room_create_with(env->s, "p", "Private", &o, sc_on_room, &r);
    SC_ASSERT(sc_wait(env, &r) == 0 && r.created == 1 && strcmp(r.name, "Private") == 0);
    SC_ASSERT(sc_info(env, "p", &in) == 0 && in.is_private == 1);
    SC_ASSERT(strcmp(in.name, "Private") == 0 && strcmp(in.topic, "a topic") == 0);
    SC_ASSERT(sc_roles(env, "p", roles, sizeof(roles)) == 0 && strcmp(roles, "u1:o") == 0);
    /* an existing room is left as it is */
    store_room_opts_t o2 = {.is_private = 0, .topic = "other", .owner_id = "u2", .now_ms = t};
    memset(&r, 0, sizeof(r));
    store_room_create_with(env->s, "p", "Again", &o2, sc_on_room, &r);
    SC_ASSERT(sc_wait(env, &r) == 0 && r.created == 0 && strcmp(r.name, "Private") == 0);
    SC_ASSERT(sc_info(env, "p", &in) == 0 && in.is_private == 1);
    SC_ASSERT(strcmp(in.topic, "a topic") == 0);
    SC_ASSERT(sc_roles(env, "p", roles, sizeof(roles)) == 0 && strcmp(roles, "u1:o") == 0);
    /* a room created without settings: public, no topic, no owner */
    SC_ASSERT(sc_room_create(env, "q", "Q", &r) == 0 && r.created == 1);
    SC_ASSERT(sc_info(env, "q", &in) == 0 && in.is_private == 0 && in.topic[0] == '\0');
    SC_ASSERT(sc_info(env, "zz", &in) == STORE_ENOTFOUND);
    /* the topic */
    memset(&r, 0, sizeof(r));
    store_room_topic_set(env->s, "q", "new topic", sc_on_count, &r);
    SC_ASSERT(sc_count_op(env, &r) == 0 && r.count == 1);
    SC_ASSERT(sc_info(env, "q", &in) == 0 && strcmp(in.topic, "new topic") == 0);
    memset(&r, 0, sizeof(r));
    store_room_topic_set(env->s, "zz", "x", sc_on_count, &r);
    SC_ASSERT(sc_count_op(env, &r) == STORE_ENOTFOUND);
    /* the owner given to a create joins a room that had members */
    uint64_t n;
    SC_ASSERT(sc_member(env, 1, "s", "u3", t, &n) == 0 && n == 1);
    store_room_opts_t o3 = {.owner_id = "u4", .now_ms = t + 1};
    memset(&r, 0, sizeof(r));
    store_room_create_with(env->s, "s", "S", &o3, sc_on_room, &r);
    SC_ASSERT(sc_wait(env, &r) == 0 && r.created == 1);
    SC_ASSERT(sc_roles(env, "s", roles, sizeof(roles)) == 0);
    SC_ASSERT(strcmp(roles, "u3:m u4:o") == 0);
}

/* One flag operation: STORE_FLAG__SET, __CLEAR or __CHECK. */
static int sc_flag(sc_env *env, int op, const char *room, const char *user, int kind, int64_t ms,
                   uint64_t *count)
{
    sc_res r;
    memset(&r, 0, sizeof(r));
    if (op == STORE_FLAG__SET)
        store_flag_set(env->s, room, user, kind, ms, sc_on_count, &r);
    else if (op == STORE_FLAG__CLEAR)
        store_flag_clear(env->s, room, user, kind, sc_on_count, &r);
    else
        store_flag_check(env->s, room, user, kind, ms, sc_on_count, &r);
    int rc = sc_wait(env, &r);
    *count = r.count;
    return rc;
}

static void sc_test_room_flags(sc_env *env)
{
    const int64_t t = 1700000000000;
    uint64_t n;
    /* a ban without a deadline, of a user who is no member */
    SC_ASSERT(sc_flag(env, STORE_FLAG__CHECK, "r", "u1", STORE_FLAG_BAN, t, &n) == 0 && n == 0);
    SC_ASSERT(sc_flag(env, STORE_FLAG__SET, "r", "u1", STORE_FLAG_BAN, 0, &n) == 0 && n == 1);
    SC_ASSERT(sc_flag(env, STORE_FLAG__CHECK, "r", "u1", STORE_FLAG_BAN, t, &n) == 0 && n == 1);
    SC_ASSERT(sc_flag(env, STORE_FLAG__CHECK, "r", "u1", STORE_FLAG_MUTE, t, &n) == 0 && n == 0);
    SC_ASSERT(sc_flag(env, STORE_FLAG__CHECK, "o", "u1", STORE_FLAG_BAN, t, &n) == 0 && n == 0);
    /* a mute with a deadline: in force before it only */
    SC_ASSERT(sc_flag(env, STORE_FLAG__SET, "r", "u2", STORE_FLAG_MUTE, t + 100, &n) == 0);
    SC_ASSERT(sc_flag(env, STORE_FLAG__CHECK, "r", "u2", STORE_FLAG_MUTE, t + 99, &n) == 0 &&
              n == 1);
    SC_ASSERT(sc_flag(env, STORE_FLAG__CHECK, "r", "u2", STORE_FLAG_MUTE, t + 100, &n) == 0 &&
              n == 0);
    /* set again: the new deadline */
    SC_ASSERT(sc_flag(env, STORE_FLAG__SET, "r", "u2", STORE_FLAG_MUTE, t + 500, &n) == 0);
    SC_ASSERT(sc_flag(env, STORE_FLAG__CHECK, "r", "u2", STORE_FLAG_MUTE, t + 200, &n) == 0 &&
              n == 1);
    SC_ASSERT(sc_flag(env, STORE_FLAG__CLEAR, "r", "u2", STORE_FLAG_MUTE, 0, &n) == 0 && n == 1);
    SC_ASSERT(sc_flag(env, STORE_FLAG__CLEAR, "r", "u2", STORE_FLAG_MUTE, 0, &n) == 0 && n == 0);
    SC_ASSERT(sc_flag(env, STORE_FLAG__CHECK, "r", "u2", STORE_FLAG_MUTE, t, &n) == 0 && n == 0);
    /* an invitation; unban */
    SC_ASSERT(sc_flag(env, STORE_FLAG__SET, "r", "u3", STORE_FLAG_INVITE, 0, &n) == 0);
    SC_ASSERT(sc_flag(env, STORE_FLAG__CHECK, "r", "u3", STORE_FLAG_INVITE, t, &n) == 0 &&
              n == 1);
    /* the join uses it up; other flags stay across a join */
    SC_ASSERT(sc_flag(env, STORE_FLAG__SET, "r", "u3", STORE_FLAG_MUTE, 0, &n) == 0);
    SC_ASSERT(sc_member(env, 1, "r", "u3", t, &n) == 0 && n == 1);
    SC_ASSERT(sc_flag(env, STORE_FLAG__CHECK, "r", "u3", STORE_FLAG_INVITE, t, &n) == 0 &&
              n == 0);
    SC_ASSERT(sc_flag(env, STORE_FLAG__CHECK, "r", "u3", STORE_FLAG_MUTE, t, &n) == 0 && n == 1);
    SC_ASSERT(sc_flag(env, STORE_FLAG__CLEAR, "r", "u1", STORE_FLAG_BAN, 0, &n) == 0 && n == 1);
    SC_ASSERT(sc_flag(env, STORE_FLAG__CHECK, "r", "u1", STORE_FLAG_BAN, t, &n) == 0 && n == 0);
    SC_ASSERT(sc_flag(env, STORE_FLAG__SET, "r", "u1", 9, 0, &n) == STORE_EINVAL);
}

/* System messages: their action and the user they concern come back. */
static void sc_test_system_messages(sc_env *env)
{
    const int64_t t = (int64_t)time(NULL) * 1000;
    char *room = store_conv_room("r");
    char id[STORE_ID_MAX];
    sc_res r;
    store_history_t h;
    memset(&r, 0, sizeof(r));
    store_msg_in_t m = {.conv = room, .from = "Olga", .content = "Olga kicked Bob",
                        .content_len = 15, .ts_ms = t, .from_id = "u-olga",
                        .action = "kick", .user = "Bob"};
    store_msg_append(env->s, &m, NULL, sc_on_append, &r);
    SC_ASSERT(sc_wait(env, &r) == 0);
    store_msg_in_t n = {.conv = room, .from = "", .content = "Maintenance at noon",
                        .content_len = 19, .ts_ms = t + 1, .action = "notice"};
    memset(&r, 0, sizeof(r));
    store_msg_append(env->s, &n, NULL, sc_on_append, &r);
    SC_ASSERT(sc_wait(env, &r) == 0);
    SC_ASSERT(sc_append_reply(env, room, "plain", NULL, t + 2, id) == 0);
    SC_ASSERT(sc_history(env, room, NULL, 10, &h) == 0 && h.n == 3);
    SC_ASSERT(h.msgs[0].action && strcmp(h.msgs[0].action, "kick") == 0);
    SC_ASSERT(h.msgs[0].user && strcmp(h.msgs[0].user, "Bob") == 0);
    SC_ASSERT(strcmp(h.msgs[0].from, "Olga") == 0);
    SC_ASSERT(strcmp(h.msgs[0].content, "Olga kicked Bob") == 0);
    SC_ASSERT(h.msgs[1].action && strcmp(h.msgs[1].action, "notice") == 0);
    SC_ASSERT(h.msgs[1].user == NULL && strcmp(h.msgs[1].from, "") == 0);
    SC_ASSERT(h.msgs[2].action == NULL && h.msgs[2].user == NULL);
    store_history_free(&h);
    mem_free(room);
}

/* A deleted room leaves nothing behind; its key makes a new room. */
static void sc_test_room_delete(sc_env *env)
{
    const int64_t t = (int64_t)time(NULL) * 1000;
    char *room = store_conv_room("d"), id[STORE_ID_MAX], roles[256];
    uint64_t n;
    sc_res r;
    sc_info_res in;
    store_read_t rd;
    store_history_t h;
    store_room_list_t rl;
    store_room_opts_t o = {.topic = "t", .owner_id = "u1", .now_ms = t};
    memset(&r, 0, sizeof(r));
    store_room_create_with(env->s, "d", "D", &o, sc_on_room, &r);
    SC_ASSERT(sc_wait(env, &r) == 0 && r.created == 1);
    SC_ASSERT(sc_room_create(env, "keep", "Keep", &r) == 0);
    SC_ASSERT(sc_member(env, 1, "d", "u2", t, &n) == 0 && n == 1);
    SC_ASSERT(sc_member(env, 1, "keep", "u2", t, &n) == 0 && n == 1);
    SC_ASSERT(sc_append_from(env, room, "u1", "one", t + 1, id) == 0);
    SC_ASSERT(sc_append_from(env, room, "u1", "two", t + 2, id) == 0);
    sc_msg_res mr = {0};
    SC_ASSERT(sc_msg_op(env, SC_REACT_ADD, room, id, "ok", "u2", 0, &mr) == 0);
    store_msg_free(&mr.msg);
    SC_ASSERT(sc_read(env, 1, "u2", room, NULL, &rd) == 0 && strcmp(rd.last_read, id) == 0);
    SC_ASSERT(sc_flag(env, STORE_FLAG__SET, "d", "u3", STORE_FLAG_BAN, 0, &n) == 0);
    SC_ASSERT(sc_flag(env, STORE_FLAG__SET, "d", "u4", STORE_FLAG_INVITE, 0, &n) == 0);

    memset(&r, 0, sizeof(r));
    store_room_delete(env->s, "d", sc_on_count, &r);
    SC_ASSERT(sc_wait(env, &r) == 0 && r.count == 1);
    memset(&r, 0, sizeof(r));
    store_room_delete(env->s, "d", sc_on_count, &r);
    SC_ASSERT(sc_wait(env, &r) == STORE_ENOTFOUND);

    SC_ASSERT(sc_room_get(env, "d", &r) == STORE_ENOTFOUND);
    SC_ASSERT(sc_info(env, "d", &in) == STORE_ENOTFOUND);
    SC_ASSERT(sc_room_list(env, &rl) == 0 && rl.n == 1 && strcmp(rl.rooms[0].key, "keep") == 0);
    store_room_list_free(&rl);
    SC_ASSERT(sc_roles(env, "d", roles, sizeof(roles)) == 0 && roles[0] == '\0');
    SC_ASSERT(sc_member_rooms(env, "u2", &rl) == 0 && rl.n == 1);
    SC_ASSERT(strcmp(rl.rooms[0].key, "keep") == 0);
    store_room_list_free(&rl);
    SC_ASSERT(sc_member_rooms(env, "u1", &rl) == 0 && rl.n == 0);
    SC_ASSERT(sc_history(env, room, NULL, 10, &h) == 0 && h.n == 0);
    SC_ASSERT(sc_read(env, 0, "u2", room, NULL, &rd) == 0 && SC_READ_IS(rd, "", 0, 0));
    SC_ASSERT(sc_flag(env, STORE_FLAG__CHECK, "d", "u3", STORE_FLAG_BAN, t, &n) == 0 && n == 0);
    SC_ASSERT(sc_flag(env, STORE_FLAG__CHECK, "d", "u4", STORE_FLAG_INVITE, t, &n) == 0 &&
              n == 0);
    /* the key again: a new room, public, empty, ownerless until joined */
    SC_ASSERT(sc_room_create(env, "d", "D2", &r) == 0 && r.created == 1);
    SC_ASSERT(strcmp(r.name, "D2") == 0);
    SC_ASSERT(sc_info(env, "d", &in) == 0 && in.topic[0] == '\0');
    SC_ASSERT(sc_history(env, room, NULL, 10, &h) == 0 && h.n == 0);
    SC_ASSERT(sc_member(env, 1, "d", "u5", t, &n) == 0 && n == 1);
    SC_ASSERT(sc_roles(env, "d", roles, sizeof(roles)) == 0 && strcmp(roles, "u5:o") == 0);
    mem_free(room);
}
