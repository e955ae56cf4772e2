/* lg.h - the internal interface of the Parley load generator (bench/loadgen).
 *
 * One process runs one epoll loop over many client connections. lg_net.c
 * owns the sockets and speaks Engine.IO 4 / Socket.IO 5 over WebSocket or
 * HTTP long-polling; it hands complete Socket.IO packets up through the
 * callbacks in lg_ops. lg_stats.c owns clocks, latency histograms and the
 * /proc readers; lg_idle.c and lg_chat.c are the scenarios; main.c parses the
 * options. Nothing here builds a JSON tree: the scenarios find the few fields
 * they need with memmem on the received bytes.
 *
 * Errors: functions return 0 or a negative errno-style code. Memory: lg_xalloc
 * and friends abort on OOM (a load generator has nothing better to do).
 */
#ifndef LG_H
#define LG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define LG_MAX_TARGETS 2

/* ---- memory ---------------------------------------------------------------- */

void *lg_xalloc(size_t n);            /* zeroed; aborts on OOM */
void *lg_xrealloc(void *p, size_t n); /* aborts on OOM; p is invalid afterwards */

/* ---- clocks, /proc, histograms (lg_stats.c) ---------------------------------- */

uint64_t lg_now_ns(void); /* CLOCK_MONOTONIC, the same clock in every process */

/* utime+stime of a process (all its threads) in microseconds, -1 if gone. */
int64_t lg_proc_cpu_us(pid_t pid);
/* VmRSS of a process in KiB, -1 if gone. */
int64_t lg_proc_rss_kib(pid_t pid);
/* The kernel's TCP buffer memory (/proc/net/sockstat "TCP: ... mem N"), KiB. */
int64_t lg_sockstat_tcp_kib(void);
/* Jiffies of the whole machine (/proc/stat): busy (not idle, not iowait) and
 * total, over all cores. Returns 0 or -1. */
int lg_machine_cpu(uint64_t *busy, uint64_t *total);
/* A /proc/meminfo field ("Slab:"), KiB; -1 if absent. */
int64_t lg_meminfo_kib(const char *key);
/* This process's own CPU (getrusage), microseconds. */
int64_t lg_self_cpu_us(void);

/* Log-linear histogram of microsecond values: exact below 1024 us, then 512
 * sub-buckets per power of two (about 0.2% error), up to 2^40 us. */
#define LG_HIST_BINS (1024 + 31 * 512)
typedef struct lg_hist {
    uint64_t count;
    uint64_t max_us;
    uint64_t sum_us;
    uint64_t bin[LG_HIST_BINS];
} lg_hist;

void lg_hist_add(lg_hist *h, uint64_t us);
/* The value at quantile q (0..1), in microseconds; 0 when empty. */
double lg_hist_quantile(const lg_hist *h, double q);
/* Writes "latency_ms cumulative_fraction" lines, one per non-empty bin.
 * Returns 0 or -errno. */
int lg_hist_write_cdf(const lg_hist *h, const char *path);

/* The report of a scenario: rows are kept in order, then lg_report_end prints
 * a markdown table for people (rows whose human text starts with '-' are left
 * out of it) and one line "result scenario=S server=L ok=0|1 key=value ..."
 * as the last line of stdout. Returns the exit code (0 ok, 1 not). */
void lg_report_begin(const char *scenario, const char *label);
void lg_report(const char *key, const char *human, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int lg_report_end(bool ok);

/* ---- connections (lg_net.c) -------------------------------------------------- */

enum lg_state {
    LG_ST_FREE = 0,
    LG_ST_CONNECTING, /* TCP connect + HTTP handshake / Engine.IO open */
    LG_ST_SIO_WAIT,   /* Engine.IO open, "40" sent, waiting for the CONNECT */
    LG_ST_READY,      /* Socket.IO connected */
    LG_ST_DEAD,       /* closed or failed; counted once in lg.failed or lg.dropped */
};

typedef struct lg_conn lg_conn;

/* One TCP connection: a WebSocket, or one of a polling client's two. */
typedef struct lg_sock {
    int fd;
    lg_conn *c;
    uint8_t kind;       /* LG_SK_WS, LG_SK_GET, LG_SK_POST */
    uint8_t connected;  /* TCP connect completed */
    uint8_t upgraded;   /* WebSocket: 101 seen, frames follow */
    uint8_t watch_out;  /* EPOLLOUT is in the interest set */
    char *in;           /* unconsumed input (an incomplete frame or response) */
    uint32_t in_len, in_cap;
    uint32_t need;      /* bytes needed in `in` before it can be parsed again */
    char *out;          /* output not yet taken by the kernel */
    uint32_t out_len, out_off, out_cap;
} lg_sock;

struct lg_conn {
    lg_sock s;          /* the WebSocket, or the polling GET connection */
    lg_sock p;          /* polling only: the POST connection */
    uint32_t idx;
    uint8_t state;      /* enum lg_state */
    uint8_t poll;       /* transport is long-polling */
    uint8_t target;     /* index into lg.targets */
    uint8_t dirty;      /* on the flush list */
    uint8_t post_busy;  /* polling: a POST is waiting for its answer */
    uint8_t get_busy;   /* polling: a GET is waiting for its answer */
    char sid[40];       /* polling: the Engine.IO session id */
    char *q;            /* polling: packets for the next POST, 0x1e-separated */
    uint32_t q_len, q_cap;
    uint8_t mask[4];
    /* scenario state, free for the scenario to use */
    int32_t role, peer, n_sent, n_acked, n_done;
    uint32_t flags;
    uint64_t t_ns;
};

/* What the scenario wants to hear about. Any may be NULL. `pkt` points at the
 * Socket.IO packet (starting with its type digit) inside the read buffer and
 * is valid only during the call; the callee may send on `c` but must not
 * close it. */
typedef struct lg_ops {
    void (*on_ready)(lg_conn *c);
    /* an EVENT: name is the event name (not NUL-terminated) */
    void (*on_event)(lg_conn *c, const char *name, size_t name_len, const char *pkt, size_t len);
    /* an ACK: id is the ack id, body the JSON array after it */
    void (*on_ack)(lg_conn *c, long id, const char *body, size_t len);
} lg_ops;

typedef struct lg_target {
    char host[64];      /* dotted IPv4, always inside 127.0.0.0/8 */
    int port;
    pid_t pid;          /* server process, 0 if unknown */
} lg_target;

/* The loop's global state: one loop per process. */
typedef struct lg_global {
    int ep;                               /* epoll fd */
    lg_target targets[LG_MAX_TARGETS];
    int n_targets;
    int n_sources;                        /* source addresses 127.0.0.1..n */
    bool polling;                         /* transport of new connections */
    lg_conn *conns;                       /* n_conns slots */
    uint32_t n_conns, n_started;
    uint32_t concurrency;                 /* handshakes in flight at most */
    uint64_t ready, failed, dropped, pings, frames, bytes_in;
    uint64_t connect_errors[4];           /* refused, timeout, reset, other */
    lg_ops ops;
    int cmd_fd;                           /* readable -> lg_poll_once returns 1 */
    char first_error[200];
} lg_global;

extern lg_global lg;

/* Raises RLIMIT_NOFILE to its hard limit, makes the epoll fd, allocates
 * `max_conns` connection slots. Returns 0 or -errno. */
int lg_init(uint32_t max_conns);

/* Starts connections until n_started == `upto` or `concurrency` handshakes
 * are in flight. Connection i goes to target i % n_targets from source
 * address 127.0.0.(1 + i % n_sources). */
void lg_pump(uint32_t upto);

/* One epoll_wait of at most timeout_ms, then one flush of every connection
 * with output. Returns 1 if cmd_fd became readable, else 0. */
int lg_poll_once(int timeout_ms);

/* Runs the loop, starting connections up to `upto`, until *counter >= goal
 * or the deadline (lg_now_ns) passes. Returns 0, or -ETIMEDOUT. */
int lg_run_until(const uint64_t *counter, uint64_t goal, uint32_t upto, uint64_t deadline_ns);

/* Sends one Socket.IO packet (text, without the Engine.IO "4" prefix) on c.
 * Queued; written at the next flush. Does nothing on a dead connection. */
void lg_send_sio(lg_conn *c, const char *pkt, size_t len);

/* Closes every connection (no goodbye) and frees their buffers. */
void lg_close_all(void);

/* Records the first error text for the result line. printf-style. */
void lg_note_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- scenarios ------------------------------------------------------------------ */

typedef struct lg_opts {
    const char *scenario;
    const char *label;       /* name of the server under test, for the result line */
    uint32_t conns;          /* idle, join-storm */
    uint32_t steps[16];      /* idle: checkpoints (cumulative connection counts) */
    int n_steps;
    int procs;               /* idle: worker processes */
    uint32_t receivers, senders, messages, window, size;
    uint32_t pairs;
    double hold_s;           /* idle: how long to hold after the last step */
    int settle_ms;           /* idle: pause before each RSS reading */
    double timeout_s;        /* hard bound of the whole run */
    const char *cdf_path;    /* latency CDF output */
    const char *series_path; /* idle: "conns rss_kib" lines */
    const char *room;
    bool skip;               /* report the scenario as skipped and exit 0 */
    const char *skip_reason;
} lg_opts;

int lg_idle(const lg_opts *o);
int lg_join_storm(const lg_opts *o);
int lg_fanout(const lg_opts *o);   /* also the cluster scenario (two targets) */
int lg_private(const lg_opts *o);

/* Server CPU (all targets with a pid, summed), microseconds; -1 if unknown. */
int64_t lg_servers_cpu_us(void);
/* Deadline of the whole run, set by main. */
extern uint64_t lg_deadline_ns;

#endif
