/* net_static.h - serves the web UI's files from a directory.
 *
 * Files are read once and kept in memory (re-read when their mtime or size
 * changes), so a request costs a stat and a write of shared bytes. Unknown
 * paths without a file extension get index.html (the client routes them). */
#ifndef PARLEY_NET_STATIC_H
#define PARLEY_NET_STATIC_H

#include "net/net.h"

typedef struct net_static net_static;

/* root must exist; returns NULL (and logs) when it does not. */
net_static *net_static_new(const char *root);
void net_static_free(net_static *st);
/* Answers req (GET only; other methods get 405). */
void net_static_serve(net_static *st, net_conn *c, net_request *req);

#endif
