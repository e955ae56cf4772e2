/* net_static.c - in-memory cached static files (see net_static.h). */
#include "net/net_static.h"
#include "util/log.h"
#include "util/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <http_parser.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "util/uthash_oom.h" /* uthash on mem.h: aborts on OOM */

#define NET_STATIC_MAX_FILE (32u * 1024 * 1024)

typedef struct {
    char *path; /* relative to root, the hash key */
    rbuf_t *body;
    struct timespec mtime;
    off_t size;
    const char *ctype;
    UT_hash_handle hh;
} net_static_file;

struct net_static {
    char *root;
    net_static_file *files;
};

static const char *net__ctype(const char *path)
{
    static const struct { const char *ext, *type; } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".json", "application/json"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".woff2", "font/woff2"},
        {".txt", "text/plain; charset=utf-8"},
        {".map", "application/json"},
        {".webmanifest", "application/manifest+json"},
    };
    const char *dot = strrchr(path, '.');
    if (dot)
        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
            if (strcmp(dot, types[i].ext) == 0)
                return types[i].type;
    return "application/octet-stream";
}

net_static *net_static_new(const char *root)
{
    struct stat sb;
    if (stat(root, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        log_warn("static directory missing, web UI not served", "dir=%s", root);
        return NULL;
    }
    net_static *st = mem_calloc(1, sizeof(*st));
    st->root = mem_strdup(root);
    return st;
}

void net_static_free(net_static *st)
{
    if (st == NULL)
        return;
    net_static_file *f, *tmp;
    HASH_ITER(hh, st->files, f, tmp) {
        HASH_DEL(st->files, f);
        rbuf_unref(f->body);
        mem_free(f->path);
        mem_free(f);
    }
    mem_free(st->root);
    mem_free(st);
}

/* A request path is safe when it has no "..", no NUL or backslash. */
static int net__path_safe(const char *p, size_t n)
{
    if (n == 0 || p[0] != '/')
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\\' || p[i] == '\0' || p[i] == '%')
            return 0;
        if (p[i] == '.' && i + 1 < n && p[i + 1] == '.')
            return 0;
    }
    return 1;
}

/* Loads (or refreshes) rel from disk; NULL when it is not a regular file. */
static net_static_file *net__load(net_static *st, const char *rel)
{
    char full[4096];
    if (snprintf(full, sizeof(full), "%s/%s", st->root, rel) >= (int)sizeof(full))
        return NULL;
    struct stat sb;
    net_static_file *f = NULL;
    HASH_FIND_STR(st->files, rel, f);
    if (stat(full, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size > NET_STATIC_MAX_FILE)
        return NULL;
    if (f && f->size == sb.st_size && f->mtime.tv_sec == sb.st_mtim.tv_sec &&
        f->mtime.tv_nsec == sb.st_mtim.tv_nsec)
        return f;
    int fd = open(full, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    rbuf_t *body = rbuf_new((size_t)sb.st_size);
    size_t got = 0;
    while (got < (size_t)sb.st_size) {
        ssize_t r = read(fd, body->data + got, (size_t)sb.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    body->len = (uint32_t)got;
    if (f == NULL) {
        f = mem_calloc(1, sizeof(*f));
        f->path = mem_strdup(rel);
        f->ctype = net__ctype(rel);
        HASH_ADD_KEYPTR(hh, st->files, f->path, strlen(f->path), f);
    } else {
        rbuf_unref(f->body);
    }
    f->body = body;
    f->size = sb.st_size;
    f->mtime = sb.st_mtim;
    return f;
}

void net_static_serve(net_static *st, net_conn *c, net_request *req)
{
    static const char not_found[] = "Not Found\n";
    if (req->method != HTTP_GET) {
        net_respond(c, 405, "text/plain", "Allow: GET\r\n", "Method Not Allowed\n", 19);
        return;
    }
    if (st == NULL || !net__path_safe(req->url, req->path_len)) {
        net_respond(c, 404, "text/plain", NULL, not_found, sizeof(not_found) - 1);
        return;
    }
    char rel[1024];
    size_t n = req->path_len - 1; /* without the leading '/' */
    if (n >= sizeof(rel) - 16) {
        net_respond(c, 404, "text/plain", NULL, not_found, sizeof(not_found) - 1);
        return;
    }
    memcpy(rel, req->url + 1, n);
    rel[n] = '\0';
    if (n == 0 || rel[n - 1] == '/')
        strcat(rel, "index.html");
    net_static_file *f = net__load(st, rel);
    if (f == NULL) {
        const char *slash = strrchr(rel, '/');
        const char *last = slash ? slash + 1 : rel;
        if (strchr(last, '.') == NULL)
            f = net__load(st, "index.html"); /* a client-side route */
    }
    if (f == NULL) {
        net_respond(c, 404, "text/plain", NULL, not_found, sizeof(not_found) - 1);
        return;
    }
    const char *cache = strncmp(f->path, "assets/", 7) == 0
                            ? "Cache-Control: public, max-age=31536000, immutable\r\n"
                            : "Cache-Control: no-cache\r\n";
    char headers[512];
    snprintf(headers, sizeof(headers),
             "%sX-Content-Type-Options: nosniff\r\n"
             "Referrer-Policy: no-referrer\r\n"
             "Content-Security-Policy: default-src 'self'; connect-src 'self' ws: wss:; "
             "img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'\r\n",
             cache);
    net_respond_rbuf(c, 200, f->ctype, headers, f->body, 0, f->body->len);
}
