/* Shared between the files of the Lua binding (src/lua/); not a module interface. */
#ifndef EMBER_LUA_INTERNAL_H
#define EMBER_LUA_INTERNAL_H

#include <stdbool.h>

#include <ev.h>
#include <lua.h>

struct vm;

/* A coroutine the host runs: the main script or a callback. */
struct task {
	lua_State *co;
	int ref;      /* registry reference that keeps the coroutine alive */
	bool is_main;
	struct lua_host *host;
};

enum wait_kind { WAIT_SLEEP, WAIT_CONSOLE, WAIT_EXIT };

/* A task blocked in ember.sleep, vm:wait_for or vm:wait. */
struct waiter {
	struct waiter *prev, *next;
	struct task *task;
	enum wait_kind kind;
	struct lvm *vm;  /* WAIT_CONSOLE, WAIT_EXIT */
	char *pattern;   /* WAIT_CONSOLE: Lua pattern */
	ev_timer timer;  /* timeout, or the sleep itself */
	bool timed;
	double timeout;
};

/* The VM userdata ("ember.vm"). */
struct lvm {
	struct vm *vm;
	struct lua_host *host;
	struct lvm *prev, *next; /* host's list of live VMs */
	int self_ref;            /* LUA_NOREF, or a ref that keeps a started VM alive */
};

/* A VM event waiting to reach the Lua dispatcher (lua/ember/policy.lua). */
struct vm_event {
	struct vm_event *next;
	int vm_ref;        /* registry reference to the VM userdata */
	const char *name;  /* "boot", "console", "pause", "resume", "start", "exit" */
};

struct lua_host {
	lua_State *L;
	struct ev_loop *loop;
	struct vm_event *events, **events_tail;
	ev_timer deliver; /* delivers queued events from the loop, never from inside Lua */
	struct waiter waiters; /* list head */
	struct lvm vms;        /* list head */
	struct lvm *main_vm;   /* the VM the main script returned */
	bool main_done;
	int status;
	int signo;
};

#define LVM_META "ember.vm"
#define CONFIG_ERROR_META "ember.config_error"

struct task *task_of(lua_State *L);
/* The host that owns this Lua state. */
struct lua_host *host_get(lua_State *L);
/* core.spawn(fn, ...): run fn(...) as a new task. core.set_dispatcher(fn): fn(vm, event)
 * receives every VM event. */
int host_core_spawn(lua_State *L);
int host_core_set_dispatcher(lua_State *L);
/* Start `fn` (on top of the stack of h->L, consumed) with nargs arguments below it... */
void host_spawn(struct lua_host *h, int nargs, const char *what);
/* Park the running task in a waiter and yield; the waiter's completion resumes it. */
int host_wait(lua_State *L, struct waiter *w);
/* Complete a waiter: its task resumes with the nres values pushed onto w->task->co. */
void host_wake(struct lua_host *h, struct waiter *w, int nres);
/* Queue an event of VM `v` for the Lua dispatcher. */
void host_vm_event(struct lua_host *h, struct lvm *v, const char *name);
/* Push the userdata of `v` (or nil if it was collected). */
void lvm_push(lua_State *L, struct lvm *v);
/* Console and exit events of one VM reach its waiters. */
void host_vm_console(struct lua_host *h, struct lvm *v);
void host_vm_exited(struct lua_host *h, struct lvm *v);

/* Raise a definition error: a table with metatable CONFIG_ERROR_META. */
int config_error(lua_State *L, const char *fmt, ...);
/* Operational failure: push nil, msg; return 2. */
int push_fail(lua_State *L, const char *msg);

void lvm_open(lua_State *L);
int lvm_new(lua_State *L);
/* Push a userdata owning `vm` (NULL: nothing pushed, returns NULL). `def` is the index of
 * the definition table holding callbacks, or 0. A VM that already runs is kept alive
 * until it exits. */
struct lvm *lvm_wrap(lua_State *L, struct vm *vm, int def);
void lvm_keep_alive(lua_State *L, struct lvm *v, int idx);
/* core.restore { state=, mem= | uffd=, resume=, track_dirty_pages=, console= } */
int lvm_restore(lua_State *L);
struct lvm *lvm_check(lua_State *L, int idx);

#endif
