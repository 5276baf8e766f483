/* Guest console: terminal in raw mode, output copies, captured text for scripts. */
#include "ember/console.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <ev.h>

#include "ember/clock.h"
#include "ember/rate_limiter.h"

/* Captured text kept for scripts; older text is dropped past this. */
#define TEXT_MAX (1u << 20)
/* Output the loop has not taken yet (a vCPU thread writes it, the loop moves it to text):
 * as much as the text window, so a stalled loop loses nothing the window would keep. */
#define PENDING_MAX TEXT_MAX

struct console {
	struct ev_loop *loop;
	bool stdio;
	bool to_stdout; /* stdio and not log_only */
	int log_fd;
	console_input_fn input;
	console_notify_fn notify;
	void *opaque;
	ev_io in_watcher;
	ev_async wake;
	pthread_mutex_t lock; /* guards pending, screen_len, limit and dropped */
	struct rate_limiter limit;
	uint64_t dropped; /* output bytes over the limit */
	char *pending;    /* PENDING_MAX bytes */
	size_t pending_len;
	/* The last screen_len bytes of pending are for the terminal and not written yet: the
	 * loop hands them to the terminal's owner (console_reserve_terminal). Always a tail,
	 * because console_output defers every byte while any are deferred. */
	size_t screen_len;
	/* Control thread only: captured output as a window [base, base + text_len) of the
	 * whole output stream; `cursor` is how far scripts' wait_for consumed. */
	char *text;
	size_t text_len;
	uint64_t base, cursor;
	/* console_attach: the terminal is the guest's until the escape byte. `attached` is
	 * read by console_output on vCPU threads; the rest is control thread only. */
	_Atomic bool attached;
	uint8_t escape;
	console_detach_fn detached;
	void *detach_opaque;
};

static struct termios saved_tio;
static bool tio_saved;
/* console_reserve_terminal: the owner's callback (control thread), and whether there is
 * one, for console_output on vCPU threads. */
static console_show_fn screen_show;
static void *screen_opaque;
static _Atomic bool screen_reserved;

void console_restore_terminal(void)
{
	if (tio_saved) {
		tcsetattr(STDIN_FILENO, TCSANOW, &saved_tio);
		tio_saved = false;
	}
}

static void raw_terminal(bool signals)
{
	struct termios tio;

	if (tio_saved || !isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_tio) < 0)
		return;
	tio = saved_tio;
	/* Keys go to the guest one by one and unechoed; ISIG stays so Ctrl-C stops ember.
	 * Output processing stays on so log lines keep their carriage returns. */
	tio.c_lflag &= (tcflag_t) ~(ICANON | ECHO | ECHONL | IEXTEN);
	if (!signals)
		tio.c_lflag &= (tcflag_t)~ISIG; /* attached: Ctrl-C is the guest's */
	tio.c_iflag &= (tcflag_t) ~(ICRNL | IXON);
	tio.c_cc[VMIN] = 1;
	tio.c_cc[VTIME] = 0;
	if (tcsetattr(STDIN_FILENO, TCSANOW, &tio) == 0)
		tio_saved = true;
}

static void detach(struct console *c, bool notify)
{
	console_detach_fn fn = c->detached;
	void *opaque = c->detach_opaque;

	atomic_store(&c->attached, false);
	c->detached = NULL;
	ev_io_stop(c->loop, &c->in_watcher);
	console_restore_terminal();
	if (notify && fn)
		fn(opaque); /* last: the callee may free the console */
}

static void on_stdin(struct ev_loop *loop, ev_io *w, int revents)
{
	struct console *c = w->data;
	uint8_t buf[512];
	const uint8_t *esc = NULL;
	ssize_t n;

	(void)loop;
	(void)revents;
	n = read(STDIN_FILENO, buf, sizeof(buf));
	if (n > 0) {
		/* Keys typed after the escape in the same read are dropped. */
		if (atomic_load(&c->attached) && (esc = memchr(buf, c->escape, (size_t)n)))
			n = esc - buf;
		if (n > 0)
			c->input(c->opaque, buf, (size_t)n);
		if (esc)
			detach(c, true);
	} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
		ev_io_stop(c->loop, &c->in_watcher); /* end of input: the guest runs on */
		if (atomic_load(&c->attached))
			detach(c, true);
	}
}

static void write_all(int fd, const uint8_t *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return; /* a closed terminal must not stop the guest */
		buf += n;
		len -= (size_t)n;
	}
}

static void on_wake(struct ev_loop *loop, ev_async *w, int revents)
{
	struct console *c = w->data;
	size_t n, screen;

	(void)loop;
	(void)revents;
	pthread_mutex_lock(&c->lock);
	n = c->pending_len;
	screen = c->screen_len;
	if (n) {
		if (c->text_len + n > TEXT_MAX) {
			size_t drop = c->text_len + n - TEXT_MAX;
			if (drop > c->text_len)
				drop = c->text_len;
			memmove(c->text, c->text + drop, c->text_len - drop);
			c->text_len -= drop;
			c->base += drop;
		}
		if (n > TEXT_MAX - c->text_len) {
			/* More than the whole window arrived at once: keep its tail. */
			memcpy(c->text, c->pending + n - TEXT_MAX, TEXT_MAX);
			c->base += c->text_len + n - TEXT_MAX;
			c->text_len = TEXT_MAX;
		} else {
			memcpy(c->text + c->text_len, c->pending, n);
			c->text_len += n;
		}
		c->pending_len = 0;
		c->screen_len = 0;
	}
	pthread_mutex_unlock(&c->lock);
	/* The deferred bytes are the tail of what was just captured (its last TEXT_MAX bytes
	 * if more came at once). Shown before notify, so the screen has the output before
	 * whatever a script prints about it. */
	if (screen > c->text_len)
		screen = c->text_len;
	if (screen && screen_show)
		screen_show(screen_opaque, (const uint8_t *)c->text + c->text_len - screen, screen);
	else if (screen)
		write_all(STDOUT_FILENO, (const uint8_t *)c->text + c->text_len - screen, screen);
	if (n && c->notify)
		c->notify(c->opaque);
}

struct console *console_new(struct ev_loop *loop, const struct console_opts *o,
	console_input_fn input, console_notify_fn notify, void *opaque, char *err, size_t errlen)
{
	const struct rate_limit limit = {
		.bandwidth = o->limit ? *o->limit : (struct token_bucket_config){ 0 }
	};
	struct console *c = calloc(1, sizeof(*c));

	/* Both windows whole from the start: the vCPU threads append to `pending` and never
	 * allocate (their filter is no place for a heap that grows). Pages are touched only
	 * as far as output reaches. */
	if (!c || !(c->text = malloc(TEXT_MAX)) || !(c->pending = malloc(PENDING_MAX))) {
		if (c)
			free(c->text);
		free(c);
		snprintf(err, errlen, "console: out of memory");
		return NULL;
	}
	c->loop = loop;
	c->stdio = o->stdio;
	c->to_stdout = o->stdio && !o->log_only;
	c->input = input;
	c->notify = notify;
	c->opaque = opaque;
	c->log_fd = -1;
	pthread_mutex_init(&c->lock, NULL);
	if (rate_limiter_init(&c->limit, &limit, mono_ns(), err, errlen)) {
		console_free(c);
		return NULL;
	}
	if (o->log_path) {
		c->log_fd = open(o->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (c->log_fd < 0) {
			snprintf(err, errlen, "console_log %s: %s", o->log_path, strerror(errno));
			console_free(c);
			return NULL;
		}
	}
	ev_io_init(&c->in_watcher, on_stdin, STDIN_FILENO, EV_READ);
	c->in_watcher.data = c;
	ev_async_init(&c->wake, on_wake);
	c->wake.data = c;
	ev_async_start(loop, &c->wake);
	return c;
}

void console_input_enable(struct console *c, bool on)
{
	if (!c->stdio || (on && screen_show))
		return;
	if (on) {
		raw_terminal(true);
		ev_io_start(c->loop, &c->in_watcher);
	} else {
		ev_io_stop(c->loop, &c->in_watcher);
		console_restore_terminal();
	}
}

void console_free(struct console *c)
{
	if (!c)
		return;
	console_detach(c);
	console_input_enable(c, false);
	ev_async_stop(c->loop, &c->wake);
	if (c->log_fd >= 0)
		close(c->log_fd);
	pthread_mutex_destroy(&c->lock);
	free(c->pending);
	free(c->text);
	free(c);
}

void console_output(struct console *c, const uint8_t *buf, size_t len)
{
	bool shown = c->to_stdout || atomic_load_explicit(&c->attached, memory_order_relaxed);
	bool direct;

	pthread_mutex_lock(&c->lock);
	if (rate_limiter_active(&c->limit) && rate_limiter_consume(&c->limit, len, 0, mono_ns())) {
		c->dropped += len;
		pthread_mutex_unlock(&c->lock);
		return;
	}
	/* A reserved terminal gets the output from the loop (on_wake); so do bytes queued
	 * behind deferred ones when the reservation has just ended, to keep the order. */
	direct = shown && !atomic_load(&screen_reserved) && !c->screen_len;
	if (c->pending_len + len > PENDING_MAX) {
		/* The loop stalls: keep the newest window only (on the screen of a reserved
		 * terminal too). Nothing is allocated here, on a vCPU thread. */
		size_t keep = len < PENDING_MAX ? len : PENDING_MAX;
		memcpy(c->pending, buf + len - keep, keep);
		c->pending_len = keep;
		c->screen_len = shown && !direct ? keep : 0;
	} else {
		memcpy(c->pending + c->pending_len, buf, len);
		c->pending_len += len;
		if (shown && !direct)
			c->screen_len += len;
	}
	pthread_mutex_unlock(&c->lock);
	if (direct)
		write_all(STDOUT_FILENO, buf, len);
	if (c->log_fd >= 0)
		write_all(c->log_fd, buf, len);
	ev_async_send(c->loop, &c->wake);
}

uint64_t console_dropped_bytes(struct console *c)
{
	uint64_t n;

	pthread_mutex_lock(&c->lock);
	n = c->dropped;
	pthread_mutex_unlock(&c->lock);
	return n;
}

const char *console_text_since(struct console *c, uint64_t *pos, size_t *len)
{
	uint64_t end = c->base + c->text_len;

	if (*pos < c->base)
		*pos = c->base; /* what the reader missed was dropped */
	if (*pos > end)
		*pos = end;
	*len = (size_t)(end - *pos);
	return c->text + (*pos - c->base);
}

uint64_t console_end(const struct console *c)
{
	return c->base + c->text_len;
}

const char *console_text(struct console *c, size_t *len)
{
	return console_text_since(c, &c->cursor, len);
}

void console_consume(struct console *c, size_t n)
{
	size_t len;

	console_text(c, &len);
	c->cursor += n < len ? n : len;
}

void console_reserve_terminal(console_show_fn show, void *opaque)
{
	screen_show = show;
	screen_opaque = opaque;
	atomic_store(&screen_reserved, show != NULL);
}

int console_attach(struct console *c, uint8_t escape, console_detach_fn detached, void *opaque)
{
	if (atomic_load(&c->attached) || ev_is_active(&c->in_watcher))
		return -EBUSY;
	c->escape = escape;
	c->detached = detached;
	c->detach_opaque = opaque;
	raw_terminal(false);
	atomic_store(&c->attached, true);
	ev_io_start(c->loop, &c->in_watcher);
	return 0;
}

void console_detach(struct console *c)
{
	if (atomic_load(&c->attached))
		detach(c, false);
}
