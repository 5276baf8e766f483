/* VM events (boot, console, pause, resume, start, exit) delivered to the Lua dispatcher
 * (lua/ember/policy.lua) from the loop, each as a new task, and the core functions
 * policies are built on. The VM userdata queues them (lvm.c); nothing here knows it. */
#include <stdlib.h>

#include <lauxlib.h>

#include "internal.h"

#define DISPATCH_KEY "ember.dispatch"

void host_deliver_events(struct lua_host *h)
{
	while (h->events) {
		struct vm_event *e = h->events;
		lua_State *L = h->L;

		h->events = e->next;
		if (!h->events)
			h->events_tail = &h->events;
		if (lua_getfield(L, LUA_REGISTRYINDEX, DISPATCH_KEY) == LUA_TFUNCTION) {
			lua_rawgeti(L, LUA_REGISTRYINDEX, e->vm_ref);
			lua_pushstring(L, e->name);
			host_spawn(h, 2, e->name);
		} else {
			lua_pop(L, 1);
		}
		luaL_unref(L, LUA_REGISTRYINDEX, e->vm_ref);
		free(e);
	}
}

void host_queue_event(struct lua_host *h, const char *name)
{
	struct vm_event *e = calloc(1, sizeof(*e));

	if (!e) {
		lua_pop(h->L, 1);
		return;
	}
	e->vm_ref = luaL_ref(h->L, LUA_REGISTRYINDEX);
	e->name = name;
	*h->events_tail = e;
	h->events_tail = &e->next;
	/* From the loop, never from inside the Lua call that caused the event. */
	ev_timer_start(h->loop, &h->deliver);
}

int host_core_spawn(lua_State *L)
{
	struct lua_host *h = host_get(L);
	int n = lua_gettop(L);

	luaL_checktype(L, 1, LUA_TFUNCTION);
	/* Move fn and its arguments to the main thread, where host_spawn takes them. */
	lua_xmove(L, h->L, n);
	host_spawn(h, n - 1, "spawn");
	return 0;
}

int host_core_set_dispatcher(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TFUNCTION);
	lua_settop(L, 1);
	lua_setfield(L, LUA_REGISTRYINDEX, DISPATCH_KEY);
	return 0;
}

void host_events_drop(struct lua_host *h)
{
	ev_timer_stop(h->loop, &h->deliver);
	while (h->events) {
		struct vm_event *e = h->events;
		h->events = e->next;
		luaL_unref(h->L, LUA_REGISTRYINDEX, e->vm_ref);
		free(e);
	}
	h->events_tail = &h->events;
}

static void on_deliver(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	host_deliver_events(w->data);
}

void host_events_init(struct lua_host *h)
{
	h->events_tail = &h->events;
	ev_timer_init(&h->deliver, on_deliver, 0, 0);
	h->deliver.data = h;
}
