/* libFuzzer harness for the API's HTTP side: arbitrary bytes go through a real API
 * connection (src/api/conn.c: http-parser, limits, pipelining, router, handlers, answers)
 * over a socketpair, cut into pieces of a fuzzed size, with the peer reading the answers
 * and finally leaving. The VM is tests/unit/fake_vm.c; nothing outside the process is
 * touched (log and metrics files are wrapped away).
 *
 * Build with `make fuzz` (the API's files, as test_api_router links them, plus conn.c and
 * http.c: the Makefile's fuzz_http_SRCS; log_set_file and metrics_open are wrapped), then run:
 *   build/fuzz/fuzz_http -max_total_time=60 -dict=tests/fuzz/http.dict tests/fuzz/corpus/http
 *
 * First input byte: bits 0-5 are the piece size - 1, bit 7 sends everything at once.
 * Any crash, leak, sanitizer report, or a connection that outlives its peer, is a bug. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>

#include "../../src/api/server.h"
#include "api_common.h"
#include "ember/api.h"
#include "ember/log.h"
#include "ember/metrics.h"
#include "ember/mmds.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void drain(int fd)
{
	char buf[65536];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mmds *store;
	struct api_server srv = { .loop = fuzz_loop, .fd = -1 };
	char err[128];
	size_t piece, off = 0;
	int sv[2];

	if (size < 1)
		return 0;
	piece = data[0] & 0x80 ? size : (size_t)(data[0] & 0x3f) + 1;
	data++;
	size--;
	store = mmds_new(); /* each input starts from an empty store */
	srv.api = store ? api_new(fuzz_loop, NULL, store, err, sizeof(err)) : NULL;
	if (!srv.api || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv))
		abort();
	if (!api_conn_new(&srv, sv[0]))
		abort();
	while (off < size && srv.head) {
		size_t n = size - off < piece ? size - off : piece;
		ssize_t w = write(sv[1], data + off, n);
		if (w > 0)
			off += (size_t)w;
		else if (w < 0 && errno != EAGAIN)
			break;
		ev_run(fuzz_loop, EVRUN_NOWAIT);
		drain(sv[1]);
	}
	/* The peer leaves: the connection must go away by itself. */
	shutdown(sv[1], SHUT_WR);
	for (int i = 0; i < 64 && srv.head; i++) {
		ev_run(fuzz_loop, EVRUN_NOWAIT);
		drain(sv[1]);
	}
	if (srv.head)
		__builtin_trap();
	close(sv[1]);
	api_free(srv.api);
	mmds_free(store);
	metrics_reset();
	log_set_enabled(false);
	return 0;
}
