/* store_sqlite_ckpt.c - WAL checkpoints of the SQLite store, on a thread of
 * their own.
 *
 * A commit in WAL mode appends the changed pages to parley.db-wal; a
 * checkpoint copies them back into parley.db and fsyncs it, so that the WAL
 * can start over. SQLite's automatic checkpoint runs inside the commit that
 * crosses 1,000 frames: on the loop thread, a stall of milliseconds (the
 * copy and an fdatasync) every few thousand messages, and a good share of
 * the store's CPU. Here the WAL hook (called on the loop thread after each
 * commit with the WAL's size) only wakes this module's thread, which runs a
 * PASSIVE checkpoint on a connection of its own: it copies what is in the
 * WAL without blocking the writer, which keeps committing meanwhile.
 *
 * The WAL restarts from its beginning only when a write finds every frame
 * copied. Under a steady stream of commits a background checkpoint always
 * lags by the frames written while it ran, so the WAL would only grow. The
 * hook therefore finishes the job itself once the thread has copied all
 * but a few frames (STORE_SQLITE__CKPT_FINISH_FRAMES): an inline checkpoint of
 * that remainder, after which the next write restarts the WAL. Past
 * STORE_SQLITE__CKPT_HARD_FRAMES (a thread that cannot keep up) it checkpoints
 * inline whatever is left.
 *
 * Ownership: store_sqlite__ckpt_start gives the caller the record; the thread owns
 * its connection (opened on first use, closed when it stops);
 * store_sqlite__ckpt_stop joins the thread and frees the record. */
#include "store/store_sqlite_ckpt.h"

#include <uv.h>

#include "util/log.h"
#include "util/mem.h"

/* WAL size (frames, one page each) that wakes the thread: SQLite's own
 * default for its automatic checkpoint. */
#define STORE_SQLITE__CKPT_FRAMES 1000
/* Frames left to copy that the writer copies itself. */
#define STORE_SQLITE__CKPT_FINISH_FRAMES 256
/* WAL size from which the writer checkpoints inline (about 32 MiB). */
#define STORE_SQLITE__CKPT_HARD_FRAMES 8000

struct store_sqlite__ckpt {
    sqlite3 *db;       /* the writer's connection (the loop thread's) */
    char *path;        /* the database file */
    sqlite3 *own;      /* the thread's connection; NULL until first use */
    uv_thread_t thread;
    uv_mutex_t mu;     /* guards the fields up to stop */
    uv_cond_t cv;      /* signals wanted or stop */
    int wanted;        /* a checkpoint is asked for */
    int running;       /* the thread runs one */
    int copied;        /* frames of the current WAL copied by the thread */
    unsigned gen;      /* WAL restarts seen by the hook */
    int stop;          /* the thread is to end */
    int last_frames;   /* the hook's previous WAL size (writer's thread) */
    int open_failed;   /* logged once (the thread's) */
};

/* On the thread: a PASSIVE checkpoint of everything committed so far. */
static void store_sqlite__ckpt_run(store_sqlite__ckpt *c)
{
    if (c->own == NULL && !c->open_failed) {
        /* a fresh connection knows the file is in WAL mode only once it
         * has read it: until then a checkpoint does nothing */
        if (sqlite3_open_v2(c->path, &c->own, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                            NULL) != SQLITE_OK ||
            sqlite3_exec(c->own, "PRAGMA schema_version", NULL, NULL, NULL) != SQLITE_OK) {
            log_warn("store checkpoint thread cannot open the database",
                     "path=\"%s\" err=\"%s\"", c->path,
                     c->own ? sqlite3_errmsg(c->own) : "out of memory");
            sqlite3_close(c->own);
            c->own = NULL;
            c->open_failed = 1; /* the writer's inline checkpoints remain */
        }
    }
    if (c->own == NULL)
        return;
    uv_mutex_lock(&c->mu);
    unsigned gen = c->gen;
    uv_mutex_unlock(&c->mu);
    int log_frames = 0, copied = 0;
    int rc = sqlite3_wal_checkpoint_v2(c->own, "main", SQLITE_CHECKPOINT_PASSIVE, &log_frames,
                                       &copied);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
        log_warn("store checkpoint failed", "code=%d err=\"%s\"", rc, sqlite3_errmsg(c->own));
        return;
    }
    log_debug("store checkpoint", "wal_frames=%d copied=%d", log_frames, copied);
    uv_mutex_lock(&c->mu);
    if (c->gen == gen && copied > c->copied) /* not about an older WAL */
        c->copied = copied;
    uv_mutex_unlock(&c->mu);
}

static void store_sqlite__ckpt_main(void *arg)
{
    store_sqlite__ckpt *c = arg;
    uv_mutex_lock(&c->mu);
    for (;;) {
        while (!c->wanted && !c->stop)
            uv_cond_wait(&c->cv, &c->mu);
        if (c->stop)
            break;
        c->wanted = 0;
        c->running = 1;
        uv_mutex_unlock(&c->mu);
        store_sqlite__ckpt_run(c);
        uv_mutex_lock(&c->mu);
        c->running = 0;
    }
    uv_mutex_unlock(&c->mu);
    sqlite3_close(c->own);
    c->own = NULL;
}

/* The WAL hook: after each commit of the writer, with the WAL's size. */
static int store_sqlite__ckpt_on_commit(void *ud, sqlite3 *db, const char *name, int frames)
{
    store_sqlite__ckpt *c = ud;
    int restarted = frames < c->last_frames, finish = 0;
    c->last_frames = frames;
    if (!restarted && frames < STORE_SQLITE__CKPT_FRAMES)
        return SQLITE_OK;
    uv_mutex_lock(&c->mu);
    if (restarted) { /* nothing of this WAL is copied yet */
        c->gen++;
        c->copied = 0;
    }
    if (frames >= STORE_SQLITE__CKPT_FRAMES && !c->running && !c->wanted) {
        if (frames - c->copied <= STORE_SQLITE__CKPT_FINISH_FRAMES) {
            finish = 1;
        } else {
            c->wanted = 1;
            uv_cond_signal(&c->cv);
        }
    }
    uv_mutex_unlock(&c->mu);
    /* Inline: the thread's leftovers, or everything when it cannot keep
     * up (BUSY while it runs one: a later commit tries again). */
    if (finish || frames >= STORE_SQLITE__CKPT_HARD_FRAMES)
        sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    return SQLITE_OK;
}

store_sqlite__ckpt *store_sqlite__ckpt_start(sqlite3 *db, const char *path)
{
    store_sqlite__ckpt *c = mem_calloc(1, sizeof(*c));
    c->db = db;
    c->path = mem_strdup(path);
    if (uv_mutex_init(&c->mu) != 0)
        goto fail_mutex;
    if (uv_cond_init(&c->cv) != 0)
        goto fail_cond;
    if (uv_thread_create(&c->thread, store_sqlite__ckpt_main, c) != 0)
        goto fail_thread;
    sqlite3_wal_hook(db, store_sqlite__ckpt_on_commit, c);
    return c;

fail_thread:
    uv_cond_destroy(&c->cv);
fail_cond:
    uv_mutex_destroy(&c->mu);
fail_mutex:
    log_warn("store checkpoint thread cannot start", "%s", "checkpoints=inline");
    mem_free(c->path);
    mem_free(c);
    return NULL;
}

void store_sqlite__ckpt_stop(store_sqlite__ckpt *c)
{
    if (c == NULL)
        return;
    sqlite3_wal_hook(c->db, NULL, NULL);
    uv_mutex_lock(&c->mu);
    c->stop = 1;
    uv_cond_signal(&c->cv);
    uv_mutex_unlock(&c->mu);
    uv_thread_join(&c->thread);
    uv_cond_destroy(&c->cv);
    uv_mutex_destroy(&c->mu);
    mem_free(c->path);
    mem_free(c);
}
