#ifndef ACCORD_CLIBPQ_SHIM_H
#define ACCORD_CLIBPQ_SHIM_H
#include <libpq-fe.h>
#include <poll.h>
#ifdef __linux__
/* PGStore's I/O loop waits for many connections at once with epoll. */
#include <sys/epoll.h>
#include <sys/eventfd.h>
#endif
#endif
