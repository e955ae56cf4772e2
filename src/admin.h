/* admin.h - `parley admin ...`: one-shot administration commands that open
 * the configured store, run one store operation and exit (admin.c). */
#ifndef PARLEY_ADMIN_H
#define PARLEY_ADMIN_H

/* Whether argv names an admin command (argv[1] is "admin"). */
int parley_admin_wanted(int argc, char **argv);

/* Runs `parley admin set-owner ROOM USER [options]`: the options are
 * parley's own (--config, --data, --redis, ...), which pick the store.
 * Makes USER (a username of an existing user) a member of ROOM (an
 * existing room) and its owner; the previous owner, if any, becomes a
 * moderator. Prints what it did; returns the exit status (0 done, 1 it
 * failed, 2 a usage error). */
int parley_admin_main(int argc, char **argv);

#endif
