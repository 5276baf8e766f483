/* ember repl: a Lua prompt on the control loop (readline's callback interface on an ev_io). */
#include "ember/lua_host.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <readline/history.h>
#include <readline/readline.h>

#include "ember/console.h"
#include "ember/term_queries.h"
#include "ember/vm.h"
#include "ember/vm_exit.h"
#include "internal.h"

#define PROMPT "> "
#define PROMPT_MORE ">> "
#define HISTORY_MAX 1000
/* Seconds of quiet guest output before the prompt is drawn again: longer when the output
 * stopped mid-line, since the rest of that line is likely to follow. */
#define REDRAW_AFTER 0.05
#define REDRAW_MID_LINE 0.5
#define CHUNK_MAX (1u << 20) /* an incomplete chunk longer than this is dropped */
/* What ends a word for completion: not '.' or ':', so "vm:pa" and "ember.gu" complete. */
#define WORD_BREAKS " \t\n\"'`@$><=;|&{}()[],+-*/%^~#"

struct repl {
	struct lua_host *h;
	ev_io in;        /* stdin, while the prompt is shown */
	ev_timer redraw; /* the prompt again, once guest output has paused */
	int mod_ref;     /* the ember.repl module table */
	char *chunk;     /* the lines of an incomplete chunk, or NULL */
	char *line;      /* what readline handed over, processed once it returned */
	bool got_line;
	bool prompting;       /* readline's handler is installed */
	bool erased;          /* ... but its line was erased for guest output */
	bool prompt_due;      /* the prompt waits for guest output to pause (mid-line) */
	bool mid_line;        /* the guest's output on the screen ended without a newline */
	bool booting;         /* the definition or connection is being set up */
	struct task *running; /* the line being evaluated, while it waits */
	char history[PATH_MAX];
	struct term_queries queries; /* held back from guest output (term_queries.h) */
	char **cands;                /* completion candidates of the last TAB */
	size_t nr_cands, next_cand;
};

static struct repl *current; /* readline's callbacks carry no pointer */

static int traceback(lua_State *L)
{
	const char *msg = lua_tostring(L, 1);

	luaL_traceback(L, L, msg ? msg : "(error object is not a string)", 1);
	return 1;
}

/* Call the ember.repl function `name` with the nargs values on top of h->L, keeping nres
 * results there. Protected: a failure prints its traceback and returns -1. */
static int call(struct repl *r, const char *name, int nargs, int nres)
{
	lua_State *L = r->h->L;
	int base = lua_gettop(L) - nargs;

	lua_pushcfunction(L, traceback);
	lua_rawgeti(L, LUA_REGISTRYINDEX, r->mod_ref);
	lua_getfield(L, -1, name);
	lua_remove(L, -2);
	lua_rotate(L, base + 1, 2); /* handler, function, args... */
	if (lua_pcall(L, nargs, nres, base + 1) != LUA_OK) {
		fprintf(stderr, "ember repl: %s\n", lua_tostring(L, -1));
		lua_settop(L, base);
		return -1;
	}
	lua_remove(L, base + 1);
	return 0;
}

static void on_line(char *line);

/* (Re)start the wait for guest output to pause. */
static void redraw_later(struct repl *r)
{
	r->redraw.repeat = r->mid_line ? REDRAW_MID_LINE : REDRAW_AFTER;
	ev_timer_again(r->h->loop, &r->redraw);
}

static void show_prompt(struct repl *r)
{
	if (r->h->main_done || r->prompting)
		return;
	if (r->mid_line) {
		/* Not right after a partial guest line: on_redraw draws it on a fresh one. */
		r->prompt_due = true;
		redraw_later(r);
		return;
	}
	r->prompt_due = false;
	fflush(stdout);
	fflush(stderr);
	rl_callback_handler_install(r->chunk ? PROMPT_MORE : PROMPT, on_line);
	r->prompting = true;
	ev_io_start(r->h->loop, &r->in);
}

static void hide_prompt(struct repl *r)
{
	ev_io_stop(r->h->loop, &r->in);
	ev_timer_stop(r->h->loop, &r->redraw);
	if (r->prompting)
		rl_callback_handler_remove(); /* restores the terminal */
	r->prompting = r->erased = r->prompt_due = false;
}

/* Draw the prompt that guest output erased or postponed, on a line of its own. */
static void redraw(struct repl *r)
{
	ev_timer_stop(r->h->loop, &r->redraw);
	if (r->mid_line) {
		fputs("\n", stdout);
		r->mid_line = false;
	}
	if (r->erased) {
		r->erased = false;
		rl_on_new_line(); /* the line is blank: draw prompt and text afresh */
		rl_redisplay();
	} else if (r->prompt_due) {
		show_prompt(r);
	}
	fflush(stdout);
}

/* Ctrl-D: stop the VMs this REPL made and end with status 0. */
static void quit(struct repl *r)
{
	struct lvm *v;

	for (v = r->h->vms.next; v != &r->h->vms; v = v->next)
		vm_stop(v->vm, VM_EXIT_STOPPED, 0);
	host_finish(r->h, EMBER_EXIT_OK);
}

/* A line's task ended: its results were printed by ember.repl's runner. */
static void on_done(void *opaque, lua_State *co, int status, int nres)
{
	struct repl *r = opaque;

	(void)nres;
	r->running = NULL;
	if (status != LUA_OK)
		fprintf(stderr, "%s\n",
			lua_type(co, -1) == LUA_TSTRING ? lua_tostring(co, -1)
							: "(error object is not a string)");
	show_prompt(r);
}

static void drop_chunk(struct repl *r)
{
	free(r->chunk);
	r->chunk = NULL;
}

static void remember(const char *chunk)
{
	HIST_ENTRY *last = history_length ? history_get(history_base + history_length - 1) : NULL;

	if (!last || strcmp(last->line, chunk))
		add_history(chunk);
}

/* A complete line: add it to the chunk; run the chunk once it compiles. */
static void handle_line(struct repl *r, char *line)
{
	lua_State *L = r->h->L;
	size_t old = r->chunk ? strlen(r->chunk) : 0, len = strlen(line);
	char *chunk;

	if (!r->chunk && !line[strspn(line, " \t")]) {
		show_prompt(r);
		return;
	}
	if (old + len + 2 > CHUNK_MAX || !(chunk = realloc(r->chunk, old + len + 2))) {
		fputs("ember repl: chunk too long, dropped\n", stderr);
		drop_chunk(r);
		show_prompt(r);
		return;
	}
	if (old)
		chunk[old++] = '\n';
	memcpy(chunk + old, line, len + 1);
	r->chunk = chunk;
	lua_pushstring(L, chunk);
	if (call(r, "feed", 1, 2)) {
		drop_chunk(r);
		show_prompt(r);
		return;
	}
	if (lua_type(L, -2) == LUA_TSTRING) { /* "more": an incomplete chunk */
		lua_pop(L, 2);
		show_prompt(r);
		return;
	}
	remember(r->chunk);
	drop_chunk(r);
	if (lua_type(L, -2) != LUA_TFUNCTION) { /* nil, syntax error */
		fprintf(stderr, "%s\n", lua_tostring(L, -1));
		lua_pop(L, 2);
		show_prompt(r);
		return;
	}
	lua_pop(L, 1);
	r->running = host_run_chunk(r->h, on_done, r);
	if (!r->running)
		show_prompt(r); /* done already showed it, unless the task could not start */
}

static void on_line(char *line)
{
	struct repl *r = current;

	/* No new prompt from readline: the next one comes when this line is done. */
	rl_callback_handler_remove();
	r->prompting = false;
	r->got_line = true;
	r->line = line;
}

static void on_stdin(struct ev_loop *loop, ev_io *w, int revents)
{
	struct repl *r = w->data;
	char *line;

	(void)loop;
	(void)revents;
	if (r->erased)
		redraw(r); /* readline edits the line it believes is on the screen */
	rl_callback_read_char();
	if (!r->got_line)
		return;
	r->got_line = false;
	line = r->line;
	r->line = NULL;
	ev_io_stop(r->h->loop, &r->in);
	if (!line) {
		fputs("\n", stdout);
		quit(r);
		return;
	}
	handle_line(r, line);
	free(line);
}

/* SIGINT: at the prompt, clear the line; while a line runs, abandon it. */
static void on_interrupt(void *opaque)
{
	struct repl *r = opaque;

	if (r->booting) {
		for (struct lvm *v = r->h->vms.next; v != &r->h->vms; v = v->next)
			vm_stop(v->vm, VM_EXIT_SIGNAL, SIGINT);
		host_finish(r->h, 128 + SIGINT);
	} else if (r->running) {
		host_cancel(r->h, r->running);
		r->running = NULL;
		fputs("interrupted\n", stderr);
		show_prompt(r);
	} else if (r->prompting || r->prompt_due) {
		bool visible = r->prompting && !r->erased;

		if (r->prompting)
			rl_callback_sigcleanup();
		hide_prompt(r);
		if (visible)
			fputs("\n", stdout);
		drop_chunk(r);
		show_prompt(r);
	}
}

/* Guest output for the terminal (console_reserve_terminal), from the loop: it never
 * shares a line with the prompt. The prompt's line is erased before the output is
 * written, and the prompt drawn again once the output pauses. Terminal queries are
 * dropped: their answers would arrive as keys at the prompt. */
static void on_guest_output(void *opaque, const uint8_t *buf, size_t len)
{
	struct repl *r = opaque;

	if (!len)
		return;
	if (r->prompting && !r->erased) {
		rl_clear_visible_line(); /* cursor at the start of the prompt's line */
		r->erased = true;
	}
	for (size_t at = 0; at < len;) {
		uint8_t shown[4096 + TERM_QUERY_MAX];
		size_t n = len - at < 4096 ? len - at : 4096;

		fwrite(shown, 1, term_queries_filter(&r->queries, buf + at, n, shown), stdout);
		at += n;
	}
	fflush(stdout);
	r->mid_line = buf[len - 1] != '\n';
	if (r->erased || r->prompt_due)
		redraw_later(r);
}

static void on_redraw(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	redraw(w->data);
}

/* ---- completion ---- */

static void free_cands(struct repl *r)
{
	for (size_t i = 0; i < r->nr_cands; i++)
		free(r->cands[i]);
	free(r->cands);
	r->cands = NULL;
	r->nr_cands = r->next_cand = 0;
}

static char *next_cand(const char *text, int state)
{
	struct repl *r = current;

	(void)text;
	if (!state)
		r->next_cand = 0;
	return r->next_cand < r->nr_cands ? strdup(r->cands[r->next_cand++]) : NULL;
}

static char **complete(const char *text, int start, int end)
{
	struct repl *r = current;
	lua_State *L = r->h->L;
	size_t n;

	(void)start;
	(void)end;
	rl_attempted_completion_over = 1; /* no file names */
	rl_completion_append_character = '\0';
	free_cands(r);
	lua_pushstring(L, text);
	if (call(r, "complete", 1, 1))
		return NULL;
	n = lua_istable(L, -1) ? lua_rawlen(L, -1) : 0;
	r->cands = n ? calloc(n, sizeof(*r->cands)) : NULL;
	for (size_t i = 0; r->cands && i < n; i++) {
		const char *s = lua_rawgeti(L, -1, (lua_Integer)i + 1) == LUA_TSTRING
			? lua_tostring(L, -1)
			: NULL;
		if (s && (r->cands[r->nr_cands] = strdup(s)))
			r->nr_cands++;
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	return r->nr_cands ? rl_completion_matches(text, next_cand) : NULL;
}

/* ---- start and end ---- */

/* The definition booted (or the connection is made): print the banner, prompt. */
static void on_booted(void *opaque, lua_State *co, int status, int nres)
{
	struct repl *r = opaque;
	int top = lua_gettop(co);

	r->booting = false;
	r->running = NULL;
	if (status != LUA_OK) {
		fprintf(stderr, "ember: %s\n",
			lua_type(co, -1) == LUA_TSTRING ? lua_tostring(co, -1)
							: "(error object is not a string)");
		host_finish(r->h, EMBER_EXIT_ERROR);
		return;
	}
	if (nres < 1 || !lua_toboolean(co, top - nres + 1)) {
		/* nil, message, exit status */
		fprintf(stderr, "ember: %s\n",
			nres >= 2 && lua_isstring(co, top - nres + 2)
				? lua_tostring(co, top - nres + 2)
				: "repl: cannot start");
		host_finish(r->h,
			nres >= 3 ? (int)lua_tointeger(co, top - nres + 3) : EMBER_EXIT_ERROR);
		return;
	}
	if (nres >= 2 && lua_isstring(co, top - nres + 2))
		printf("%s\n", lua_tostring(co, top - nres + 2));
	show_prompt(r);
}

static int setup(struct repl *r, const char *path, const char *api_sock)
{
	lua_State *L = r->h->L;
	const char *home = getenv("HOME");

	if (host_load_ember(r->h))
		return -1;
	lua_pushcfunction(L, traceback);
	lua_getglobal(L, "require");
	lua_pushstring(L, "ember.repl");
	if (lua_pcall(L, 1, 1, -3) != LUA_OK) {
		fprintf(stderr, "ember: cannot load ember.repl: %s\n", lua_tostring(L, -1));
		lua_pop(L, 2);
		return -1;
	}
	r->mod_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_pop(L, 1);
	if (home && *home)
		snprintf(r->history, sizeof(r->history), "%s/.ember_history", home);
	rl_readline_name = "ember";
	rl_catch_signals = 0; /* SIGINT reaches the loop (on_interrupt), not readline */
	rl_attempted_completion_function = complete;
	rl_completer_word_break_characters = WORD_BREAKS;
	using_history();
	stifle_history(HISTORY_MAX);
	if (r->history[0])
		read_history(r->history);
	/* boot_task(kind, target) returns the function the first task runs. */
	lua_pushstring(L, api_sock ? "api" : path ? "file" : "none");
	lua_pushstring(L, api_sock ? api_sock : path ? path : "");
	if (call(r, "boot_task", 2, 1))
		return -1;
	return 0;
}

int lua_host_repl(struct lua_host *h, const char *path, const char *api_sock)
{
	struct repl r = { .h = h, .mod_ref = LUA_NOREF, .booting = true };
	int status;

	current = &r;
	ev_io_init(&r.in, on_stdin, STDIN_FILENO, EV_READ);
	r.in.data = &r;
	ev_init(&r.redraw, on_redraw);
	r.redraw.data = &r;
	/* The prompt owns the terminal: a console = "stdio" VM reads no keys (vm:console()
	 * attaches the terminal to it), and its output reaches the screen through
	 * on_guest_output. */
	console_reserve_terminal(on_guest_output, &r);
	h->interrupt = on_interrupt;
	h->hook_opaque = &r;
	if (setup(&r, path, api_sock)) {
		status = EMBER_EXIT_ERROR;
	} else {
		r.running = host_run_chunk(h, on_booted, &r);
		if (!r.running && r.booting) {
			fputs("ember: repl: out of memory\n", stderr);
			host_finish(h, EMBER_EXIT_ERROR);
		}
		status = host_run_loop(h);
	}
	if (r.running)
		host_cancel(h, r.running);
	hide_prompt(&r);
	if (r.history[0] && history_length && !write_history(r.history))
		history_truncate_file(r.history, HISTORY_MAX);
	clear_history();
	free_cands(&r);
	drop_chunk(&r);
	free(r.line);
	luaL_unref(h->L, LUA_REGISTRYINDEX, r.mod_ref);
	h->interrupt = NULL;
	ev_timer_stop(h->loop, &r.redraw);
	console_reserve_terminal(NULL, NULL);
	current = NULL;
	return status;
}
