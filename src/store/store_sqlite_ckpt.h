/* store_sqlite_ckpt.h - WAL checkpoints of the SQLite store, off the loop
 * thread (store_sqlite_ckpt.c). Internal to src/store/. */
#ifndef PARLEY_STORE_SQLITE_CKPT_H
#define PARLEY_STORE_SQLITE_CKPT_H

#include <sqlite3.h>

typedef struct store_sqlite__ckpt store_sqlite__ckpt;

/* Takes over the checkpoints of db (a WAL database at path): installs a
 * WAL hook on db (replacing SQLite's automatic checkpoint) and starts the
 * thread that runs them. Returns NULL when the thread cannot start; db then
 * keeps SQLite's automatic checkpoints, run by the committing thread. */
store_sqlite__ckpt *store_sqlite__ckpt_start(sqlite3 *db, const char *path);

/* Stops the thread, waiting for a checkpoint it is running, and frees c;
 * db's hook is removed. Call before closing db. NULL is a no-op. */
void store_sqlite__ckpt_stop(store_sqlite__ckpt *c);

#endif
