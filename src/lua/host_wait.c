/* Lua host waits: a task parked in ember.sleep, vm:wait_for, vm:wait or vm:console, and
 * what wakes it (its timer, console text, the VM's exit, the operator). */
#include <stdlib.h>

#include <lauxlib.h>

#include "ember/lua_pattern.h"
#include "ember/vm.h"
#include "ember/vm_exit.h"
#include "internal.h"

void host_waiter_unlink(struct waiter *w)
{
	w->prev->next = w->next;
	w->next->prev = w->prev;
	w->prev = w->next = w;
}

void host_wake(struct lua_host *h, struct waiter *w, int nres)
{
	struct task *t = w->task;

	ev_timer_stop(h->loop, &w->timer);
	host_waiter_unlink(w);
	free(w->pattern);
	free(w);
	host_resume(h, t, nres);
}

static void on_timer(struct ev_loop *loop, ev_timer *timer, int revents)
{
	struct waiter *w = timer->data;
	lua_State *co = w->task->co;
	struct lua_host *h = w->task->host;

	(void)loop;
	(void)revents;
	if (w->kind == WAIT_SLEEP) {
		host_wake(h, w, 0);
		return;
	}
	lua_pushnil(co);
	if (w->kind == WAIT_CONSOLE)
		lua_pushfstring(co, "timeout after %f s waiting for console output '%s'",
			w->timeout, w->pattern);
	else
		lua_pushfstring(co, "timeout after %f s waiting for the vm to exit", w->timeout);
	host_wake(h, w, 2);
}

int host_wait(lua_State *L, struct waiter *w)
{
	struct task *t = task_of(L);
	struct lua_host *h;

	if (!t || t->co != L) {
		free(w->pattern);
		free(w);
		return luaL_error(L, "ember: waits work only in a script or callback coroutine");
	}
	h = t->host;
	w->task = t;
	w->next = &h->waiters;
	w->prev = h->waiters.prev;
	h->waiters.prev->next = w;
	h->waiters.prev = w;
	/* The loop's clock stood still while Lua ran: a script that computed or blocked for
	 * a minute would otherwise see its next timeout expire at once. */
	ev_now_update(h->loop);
	ev_timer_init(&w->timer, on_timer, w->timeout, 0);
	w->timer.data = w;
	if (w->timed)
		ev_timer_start(h->loop, &w->timer);
	if (w->kind == WAIT_CONSOLE) {
		w->span = lua_pattern_span(w->pattern, &w->anchored);
		ev_timer_start(h->loop, &h->recheck); /* the text may be there already */
	}
	return lua_yield(L, 0);
}

/* How much of the unconsumed console text a search must see, as [from, to) offsets in
 * it: not all of it again on every new byte. A match starting at s is decided by the
 * bytes [s, s + span], the one after included for '$' and frontiers: a start with all of
 * those already searched is settled. An unbounded pattern (a repetition: "OK %d+") is
 * given CONSOLE_UNBOUNDED_SPAN bytes, so a match of such a pattern that only completes
 * further than that past its start is missed. An anchored one is tried at the start
 * only, with span + 1 bytes, or all of the text when unbounded. */
#define CONSOLE_UNBOUNDED_SPAN 4096

static void console_window(const struct waiter *w, uint64_t start, size_t len, size_t *from,
	size_t *to)
{
	uint64_t reach = w->span == LUA_PATTERN_UNBOUNDED ? CONSOLE_UNBOUNDED_SPAN : w->span;

	*from = 0;
	*to = len;
	if (w->anchored) {
		if (w->span != LUA_PATTERN_UNBOUNDED && reach + 1 < len)
			*to = (size_t)reach + 1;
		return;
	}
	if (w->settled > start)
		*from = (size_t)(w->settled - start < len ? w->settled - start : len);
}

/* After a failed search of text ending at stream offset `end`: what is settled. */
static void console_settle(struct waiter *w, uint64_t end)
{
	uint64_t reach = w->span == LUA_PATTERN_UNBOUNDED ? CONSOLE_UNBOUNDED_SPAN : w->span;

	if (end > reach + 1 && end - reach - 1 > w->settled)
		w->settled = end - reach - 1;
}

/* string.find(text[from, to), pattern), with the byte before `from` pushed too, so that
 * a frontier at the first position sees it, as it would in the whole text. Results on
 * S's stack above `base`; positions are made relative to text. false if no match. */
static bool console_find(lua_State *co, const char *pattern, const char *text, size_t from,
	size_t to, int base, size_t *shift)
{
	size_t ctx = from > 0 ? 1 : 0;

	*shift = from - ctx;
	lua_getglobal(co, "string");
	lua_getfield(co, -1, "find");
	lua_remove(co, -2);
	lua_pushlstring(co, text + *shift, to - *shift);
	lua_pushstring(co, pattern);
	lua_pushinteger(co, (lua_Integer)ctx + 1);
	if (lua_pcall(co, 3, LUA_MULTRET, 0) != LUA_OK || lua_isnil(co, base + 1)) {
		lua_settop(co, base);
		return false;
	}
	/* Position captures "()" count from the start of the text, as before. */
	for (int i = base + 3; i <= lua_gettop(co); i++)
		if (lua_type(co, i) == LUA_TNUMBER) {
			lua_pushinteger(co, lua_tointeger(co, i) + (lua_Integer)*shift);
			lua_replace(co, i);
		}
	return true;
}

/* Match a console waiter against the captured text; consume up to the match. The search
 * runs on the host's main state, never on the waiting coroutine: that one is suspended in
 * a yield, and the Lua API allows no call on a suspended thread (searches there failed at
 * random once the text was large enough for the copy to start a collection). The
 * results then move to the coroutine. */
static bool try_console(struct lua_host *h, struct waiter *w)
{
	lua_State *co = w->task->co, *S = h->L;
	size_t len, from, to, shift;
	const char *text = vm_console_text(w->vm->vm, &len);
	uint64_t end = vm_console_end(w->vm->vm);
	int base = lua_gettop(S), nres;
	size_t s, e;

	console_window(w, end - len, len, &from, &to);
	if (!console_find(S, w->pattern, text, from, to, base, &shift)) {
		console_settle(w, end);
		return false;
	}
	nres = lua_gettop(S) - base;
	s = (size_t)lua_tointeger(S, base + 1) + shift;
	e = (size_t)lua_tointeger(S, base + 2) + shift;
	if (nres == 2) {
		/* No captures: return the matched text, as string.match does. */
		lua_settop(S, base);
		lua_pushlstring(co, text + s - 1, e - s + 1);
		nres = 1;
	} else {
		lua_remove(S, base + 1);
		lua_remove(S, base + 1);
		nres -= 2;
		lua_xmove(S, co, nres);
	}
	vm_console_consume(w->vm->vm, e);
	host_wake(h, w, nres);
	return true;
}

void host_vm_console(struct lua_host *h, struct lvm *v)
{
	struct waiter *w = h->waiters.next;

	while (w != &h->waiters) {
		struct waiter *next = w->next;
		if (w->kind == WAIT_CONSOLE && w->vm == v && try_console(h, w))
			next = h->waiters.next; /* the list may have changed while it ran */
		w = next;
	}
}

/* Console waiters look at text captured before they began waiting, from the loop. */
static void on_recheck(struct ev_loop *loop, ev_timer *timer, int revents)
{
	struct lua_host *h = timer->data;
	struct waiter *w = h->waiters.next;

	(void)loop;
	(void)revents;
	while (w != &h->waiters) {
		struct waiter *next = w->next;
		if (w->kind == WAIT_CONSOLE && try_console(h, w))
			next = h->waiters.next; /* the list may have changed while it ran */
		w = next;
	}
}

void host_vm_exited(struct lua_host *h, struct lvm *v)
{
	struct waiter *w;
	const char *detail;
	enum vm_exit_reason why = vm_exit_reason(v->vm, &detail);

	/* Console text that arrived with the exit may still satisfy a waiter. */
	host_vm_console(h, v);
	for (w = h->waiters.next; w != &h->waiters;) {
		struct waiter *next = w->next;
		if (w->kind != WAIT_SLEEP && w->vm == v) {
			lua_State *co = w->task->co;
			if (w->kind == WAIT_EXIT) {
				lua_pushstring(co, vm_exit_reason_name(why));
				lua_pushinteger(co, vm_exit_status(v->vm));
			} else if (w->kind == WAIT_ATTACH) {
				vm_console_detach(v->vm);
				lua_pushnil(co);
				lua_pushfstring(co,
					"vm exited (%s%s%s) while the console was attached",
					vm_exit_reason_name(why), detail[0] ? ": " : "", detail);
			} else {
				lua_pushnil(co);
				lua_pushfstring(co, "vm exited (%s%s%s) while waiting for '%s'",
					vm_exit_reason_name(why), detail[0] ? ": " : "", detail,
					w->pattern);
			}
			host_wake(h, w, 2);
			next = h->waiters.next;
		}
		w = next;
	}
	if (h->main_vm == v && h->vm_hook)
		h->vm_hook(NULL, h->vm_hook_opaque);
	if (h->main_vm == v)
		host_finish(h, vm_exit_status(v->vm));
}

void host_waiters_init(struct lua_host *h)
{
	h->waiters.next = h->waiters.prev = &h->waiters;
	ev_timer_init(&h->recheck, on_recheck, 0, 0);
	h->recheck.data = h;
}

/* Ctrl-C at the REPL: the task's wait is abandoned (a console it attached comes back). */
void host_cancel(struct lua_host *h, struct task *t)
{
	for (struct waiter *w = h->waiters.next; w != &h->waiters; w = w->next) {
		if (w->task != t)
			continue;
		ev_timer_stop(h->loop, &w->timer);
		host_waiter_unlink(w);
		if (w->kind == WAIT_ATTACH)
			vm_console_detach(w->vm->vm);
		free(w->pattern);
		free(w);
		break;
	}
	task_end(t); /* the coroutine is collected with whatever it held */
}

/* The host ends: waiting coroutines are dropped with the Lua state; their VMs are freed
 * by __gc. */
void host_waiters_drop(struct lua_host *h)
{
	ev_timer_stop(h->loop, &h->recheck);
	while (h->waiters.next != &h->waiters) {
		struct waiter *w = h->waiters.next;
		ev_timer_stop(h->loop, &w->timer);
		host_waiter_unlink(w);
		task_end(w->task);
		free(w->pattern);
		free(w);
	}
}
