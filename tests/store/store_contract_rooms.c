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
