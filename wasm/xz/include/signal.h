/* wasi-libc has no signals; liblzma's single-threaded mythread.h only declares a helper around
 * sigprocmask that the decoder never calls. These declarations let it compile; nothing links to them. */
#ifndef DISTILL_WASI_SIGNAL_H
#define DISTILL_WASI_SIGNAL_H
typedef struct { unsigned long bits[128 / sizeof(long)]; } sigset_t;
int sigprocmask(int how, const sigset_t *set, sigset_t *oset);
#endif
