/* test_admin.c - `parley admin set-owner` (src/admin.c) on the SQLite
 * store: it makes an existing user the owner of an existing room (the old
 * owner a moderator), and refuses unknown users, rooms and bad usage. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>

#include <cmocka.h>

#include "admin.h"
#include "store/store.h"
#include "util/mem.h"

static void on_user(void *ud, int rc, const store_user_t *u)
{
    if (rc == 0)
        snprintf(ud, STORE_USER_ID_MAX, "%s", u->id);
}

static void on_room(void *ud, int rc, const char *name, int created)
{
    *(int *)ud = rc;
}

static void on_count(void *ud, int rc, uint64_t n)
{
    *(int *)ud = rc;
}

static void on_members(void *ud, int rc, store_member_list_t *l)
{
    store_member_list_t *out = ud;
    *out = *l;
    memset(l, 0, sizeof(*l));
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int run(const char *room, const char *user, const char *dir)
{
    char *argv[] = {"parley", "admin", "set-owner", (char *)room, (char *)user, "--data",
                    (char *)dir, "--config", "", NULL};
    return parley_admin_main(9, argv);
}

static void test_set_owner(void **state)
{
    char root[] = "/tmp/parley-admin-XXXXXX", dir[128];
    char alice[STORE_USER_ID_MAX] = "", bob[STORE_USER_ID_MAX] = "";
    int rc = -1;
    assert_non_null(mkdtemp(root));
    snprintf(dir, sizeof(dir), "%s/db", root);
    store_t *s = NULL;
    assert_int_equal(store_sqlite_open(NULL, dir, &s), 0); /* inline completions */
    store_user_ensure(s, "alice", "Alice", 1, on_user, alice);
    store_user_ensure(s, "bob", "Bob", 1, on_user, bob);
    store_room_create(s, "general", "General", on_room, &rc);
    assert_int_equal(rc, 0);
    store_member_add(s, "general", bob, 1, on_count, &rc); /* the first member: owner */
    assert_int_equal(rc, 0);
    store_close(s);

    assert_int_equal(run("General", "Alice", dir), 0);
    assert_int_equal(run("General", "nobody", dir), 1);
    assert_int_equal(run("nowhere", "Alice", dir), 1);
    assert_int_equal(run("bad\x01room", "Alice", dir), 2);
    char *usage[] = {"parley", "admin", "set-owner", "General", NULL};
    assert_int_equal(parley_admin_main(4, usage), 2);

    store_member_list_t l = {0};
    assert_int_equal(store_sqlite_open(NULL, dir, &s), 0);
    store_room_members(s, "general", on_members, &l);
    store_close(s);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.members[0].id, bob);
    assert_int_equal(l.members[0].role, STORE_ROLE_MODERATOR);
    assert_string_equal(l.members[1].id, alice);
    assert_int_equal(l.members[1].role, STORE_ROLE_OWNER);
    store_member_list_free(&l);
    nftw(root, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_owner),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
