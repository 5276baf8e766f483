/* The guest's console: serial output to the terminal and a log, captured text for
 * scripts (wait_for), and terminal input for the guest.
 *
 * console_output may be called from any thread (vCPU threads); everything else runs on
 * the control thread. */
#ifndef EMBER_CONSOLE_H
#define EMBER_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct console;
struct ev_loop;

/* Input typed on the terminal, for the guest. Control thread. */
typedef void (*console_input_fn)(void *opaque, const uint8_t *buf, size_t len);
/* New output was captured; called from the control loop after console_output. */
typedef void (*console_notify_fn)(void *opaque);

struct token_bucket_config;

/* Where a console's output goes and how much of it. */
struct console_opts {
	bool stdio; /* read input from stdin (raw mode when a terminal), write output to stdout */
	bool log_only;        /* with stdio: output to log_path and not to stdout (Firecracker's
			  * serial_out_path: input still comes from stdin) */
	const char *log_path; /* append the output there, or NULL */
	/* Output bytes allowed (a bucket of size 0 or NULL: no limit). Bytes beyond it are
	 * dropped, from every copy (terminal, log, captured text), and counted: a guest that
	 * floods its serial port cannot fill the host's disk or hold the loop. */
	const struct token_bucket_config *limit;
};

/* A console as `o` says. -EINVAL with err if the limit is malformed. */
struct console *console_new(struct ev_loop *loop, const struct console_opts *o,
	console_input_fn input, console_notify_fn notify, void *opaque, char *err, size_t errlen);
/* Stop watchers, restore the terminal, close files, free. NULL is a no-op. */
void console_free(struct console *c);

/* Start / stop reading stdin (while the VM runs); restores the terminal when stopping. */
void console_input_enable(struct console *c, bool on);

/* Guest output: any thread. Never blocks on the control thread. Written to stdout here,
 * on the calling thread, for the least latency, unless the terminal is reserved
 * (console_reserve_terminal). */
void console_output(struct console *c, const uint8_t *buf, size_t len);

/* Output bytes dropped by the console's limit so far. Any thread. */
uint64_t console_dropped_bytes(struct console *c);

/* Captured output not yet consumed (control thread). The pointer is valid until the
 * next console call. */
const char *console_text(struct console *c, size_t *len);
/* Mark the first n bytes of console_text as consumed. */
void console_consume(struct console *c, size_t n);
/* Other readers keep their own position in the output stream (an absolute byte offset):
 * the text from *pos to the end; *pos moves forward if that text was already dropped.
 * The pointer is valid until the next console call. */
const char *console_text_since(struct console *c, uint64_t *pos, size_t *len);
/* Stream offset one past the newest captured byte. */
uint64_t console_end(const struct console *c);

/* The operator's terminal for one console (the REPL's vm:console()). */
typedef void (*console_detach_fn)(void *opaque);
/* Attach: raw mode without signals (Ctrl-C goes to the guest), keys to the guest, output
 * shown on stdout, until the byte `escape` is typed or stdin ends; then the terminal is
 * restored and detached(opaque) is called from the loop. -EBUSY if the console reads
 * stdin already. Control thread. */
__attribute__((warn_unused_result)) int console_attach(struct console *c, uint8_t escape,
	console_detach_fn detached, void *opaque);
/* End an attachment early, without calling `detached`. No-op when not attached. */
void console_detach(struct console *c);
/* Guest output meant for the terminal, handed to the terminal's owner; it writes buf to
 * stdout itself (see console_reserve_terminal). Control thread. */
typedef void (*console_show_fn)(void *opaque, const uint8_t *buf, size_t len);
/* Someone else (the REPL, which draws a prompt) owns the terminal while `show` is not
 * NULL. It reads stdin: console_input_enable leaves it alone, so only an attached console
 * reads it. And it writes stdout: what a console = "stdio" or attached console prints no
 * longer goes to stdout from the vCPU thread in console_output, but through the loop to
 * show(opaque, ...), in order, before that output's console_notify_fn; so the owner can
 * keep its prompt off the guest's lines. NULL gives the terminal back: consoles write
 * stdout from the vCPU thread again, once what was queued for show is written.
 * Process-wide; control thread. */
void console_reserve_terminal(console_show_fn show, void *opaque);

/* Restore every terminal this process put in raw mode (for main on fatal paths). */
void console_restore_terminal(void);

#endif
