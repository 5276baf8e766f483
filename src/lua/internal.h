/* Shared between the files of the Lua binding (src/lua/); not a module interface. The
 * files stand in layers, each calling only those below it (callers never reach up):
 *   result.c            answers for Lua: nil, message; definition errors
 *   task.c              tasks (coroutines on the control loop) and the end of the run
 *   host_wait.c         waits that park a task (sleep, console text, exit, attach)
 *   events.c            VM events queued for the Lua dispatcher, each run as a task
 *   lvm_cpu_template.c, lvm_config.c   definitions read into a vm_config
 *   lvm.c               the "ember.vm" userdata; its VM's events go to the waits and the queue
 *   lvm_lifecycle.c, lvm_machine.c, lvm_devices.c, lvm_inspect.c, lvm_restore.c,
 *   http_client.c       the VM's methods, core.restore, core.http_request
 *   module.c            the `ember` module: core functions, the embedded Lua side
 *   host.c, repl.c      the host (ember/lua_host.h) and the REPL on it */
#ifndef EMBER_LUA_INTERNAL_H
#define EMBER_LUA_INTERNAL_H

#include <stdbool.h>

#include <ev.h>
#include <lua.h>

struct vm;
struct vm_config;

/* A task run for C code (the REPL) ended: its results (status LUA_OK, nres values) or
 * its error object are on top of co. Called from the loop; must not raise. */
typedef void (*task_done_fn)(void *opaque, lua_State *co, int status, int nres);

/* A coroutine the host runs: the main script, a callback, or a REPL line. */
struct task {
	lua_State *co;
	int ref; /* registry reference that keeps the coroutine alive */
	bool is_main;
	struct lua_host *host;
	task_done_fn done; /* NULL: errors are reported (logged, or end the main script) */
	void *done_opaque;
};

enum wait_kind { WAIT_SLEEP, WAIT_CONSOLE, WAIT_EXIT, WAIT_ATTACH };

/* A task blocked in ember.sleep, vm:wait_for or vm:wait. */
struct waiter {
	struct waiter *prev, *next;
	struct task *task;
	enum wait_kind kind;
	struct lvm *vm; /* WAIT_CONSOLE, WAIT_EXIT, WAIT_ATTACH (vm:console) */
	char *pattern;  /* WAIT_CONSOLE: Lua pattern */
	/* WAIT_CONSOLE, set by host_wait: what the pattern can reach (lua_pattern.h), and
	 * the stream offset before which no match can start (searched already). */
	size_t span;
	bool anchored;
	uint64_t settled;
	ev_timer timer; /* timeout, or the sleep itself */
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
	int vm_ref;       /* registry reference to the VM userdata */
	const char *name; /* "boot", "console", "pause", "resume", "start", "exit" */
};

struct lua_host {
	lua_State *L;
	struct ev_loop *loop;
	struct mmds *mmds; /* the store the VMs made here answer MMDS from (not owned) */
	struct vm_event *events, **events_tail;
	ev_timer deliver;      /* delivers queued events from the loop, never from inside Lua */
	ev_timer recheck;      /* console waiters match text captured before they waited */
	struct waiter waiters; /* list head */
	struct lvm vms;        /* list head */
	struct lvm *main_vm;   /* the VM the main script returned */
	void (*vm_hook)(struct vm *vm, void *opaque); /* lua_host_set_vm_hook */
	void *vm_hook_opaque;
	bool main_done;
	int status;
	int signo;
	/* The REPL's hook, when one runs: SIGINT goes to interrupt instead of stopping the
	 * VMs. (Guest output reaches the REPL through console_reserve_terminal.) */
	void (*interrupt)(void *opaque);
	void *hook_opaque;
};

#define LVM_META "ember.vm"
#define CONFIG_ERROR_META "ember.config_error"
#define HOST_KEY "ember.host" /* registry: light userdata, the struct lua_host */

/* ---- answers (result.c): the bottom layer ---- */

/* Raise a definition error: a table with metatable CONFIG_ERROR_META. */
__attribute__((format(printf, 2, 3))) int config_error(lua_State *L, const char *fmt, ...);
/* Is the value at idx a definition error? */
bool config_error_is(lua_State *L, int idx);
/* Register CONFIG_ERROR_META (its __tostring is the message). */
void config_error_open(lua_State *L);
/* Operational failure: push nil, msg; return 2. */
int push_fail(lua_State *L, const char *msg);
/* The answer of a call that returned `ret`: true, or (ret != 0) nil, err. */
int push_result(lua_State *L, int ret, const char *err);
/* t[key] = value, t the table on top of the stack. */
void set_integer(lua_State *L, const char *key, uint64_t value);

/* ---- tasks (task.c) ---- */

struct task *task_of(lua_State *L);
/* The host that owns this Lua state. */
struct lua_host *host_get(lua_State *L);
/* A new task on a new coroutine of h->L (the main script's if is_main); NULL without
 * memory. task_end drops one that has ended or will not run. */
struct task *task_new(struct lua_host *h, bool is_main);
void task_end(struct task *t);
/* Resume task t with nargs values on its stack; true once it has ended (and is freed),
 * false while it is parked in a waiter. */
bool host_resume(struct lua_host *h, struct task *t, int nargs);
/* Start `fn` (on top of the stack of h->L, consumed) with nargs arguments below it... */
void host_spawn(struct lua_host *h, int nargs, const char *what);
/* Run the function on top of h->L (consumed) as a task with no arguments; done() is
 * called when it ends. Returns the task while it is parked in a wait; NULL once it has
 * ended (done was called) or if it could not start. */
struct task *host_run_chunk(struct lua_host *h, task_done_fn done, void *opaque);
/* End the run with `status`: host_run_loop returns it. */
void host_finish(struct lua_host *h, int status);

/* ---- waits (host_wait.c) ---- */

/* Set up the host's waiter list; take one waiter off it; drop them all (host_free). */
void host_waiters_init(struct lua_host *h);
void host_waiter_unlink(struct waiter *w);
void host_waiters_drop(struct lua_host *h);
/* Park the running task in a waiter and yield; the waiter's completion resumes it. */
int host_wait(lua_State *L, struct waiter *w);
/* Complete a waiter: its task resumes with the nres values pushed onto w->task->co. */
void host_wake(struct lua_host *h, struct waiter *w, int nres);
/* Drop a parked task (Ctrl-C at the REPL): its wait is abandoned, done is not called. */
void host_cancel(struct lua_host *h, struct task *t);
/* Console and exit events of one VM reach its waiters. */
void host_vm_console(struct lua_host *h, struct lvm *v);
void host_vm_exited(struct lua_host *h, struct lvm *v);

/* ---- events (events.c) ---- */

/* Set up, deliver what is queued now, drop everything. */
void host_events_init(struct lua_host *h);
void host_deliver_events(struct lua_host *h);
void host_events_drop(struct lua_host *h);
/* Queue event `name` of the value on top of h->L (popped: the VM's userdata) for the Lua
 * dispatcher. */
void host_queue_event(struct lua_host *h, const char *name);
/* core.spawn(fn, ...): run fn(...) as a new task. core.set_dispatcher(fn): fn(vm, event)
 * receives every VM event. */
int host_core_spawn(lua_State *L);
int host_core_set_dispatcher(lua_State *L);

/* ---- definitions (lvm_config.c, lvm_cpu_template.c) ---- */

/* Read definition table `t` into cfg (strings point into the table); raises a definition
 * error naming the key for anything malformed. */
void lvm_read_config(lua_State *L, int t, struct vm_config *cfg);
/* The definition's smt and cpu_template (lvm_cpu_template.c). A custom template is read
 * into a userdata left on the stack, which cfg->cpu_template points into: keep it there
 * until the configuration has been copied. */
void lvm_read_cpu(lua_State *L, int t, struct vm_config *cfg);
/* The definition's readers, for other tables of the same shape (lvm_config.c); each
 * raises a definition error naming `where`.key. lvm_only_keys refuses keys of table `t`
 * that are not in the NULL-terminated `allowed`; lvm_opt_str is t[key], a string or NULL
 * (owned by the table). lvm_read_limit reads t[key], a rate limit in Firecracker's form
 * { bandwidth = {size, one_time_burst, refill_time}, ops = {...} }, into r and says what
 * it held: 0 when absent, else LIMIT_GIVEN and a bit per bucket given. */
enum { LIMIT_GIVEN = 1, LIMIT_BANDWIDTH = 2, LIMIT_OPS = 4 };
struct rate_limit;
void lvm_only_keys(lua_State *L, int t, const char *where, const char *const allowed[]);
const char *lvm_opt_str(lua_State *L, int t, const char *where, const char *key);
unsigned lvm_read_limit(lua_State *L, int t, const char *where, const char *key,
	struct rate_limit *r);

/* ---- the VM userdata (lvm.c) ---- */

/* Register LVM_META (__gc, __close, __tostring) and the weak table of live handles; the
 * methods are added by module.c. */
void lvm_open(lua_State *L);
/* core.vm_new(def) */
int lvm_new(lua_State *L);
/* Push a userdata owning `vm` (NULL: nothing pushed, returns NULL). `def` is the index of
 * the definition table holding callbacks, or 0. A VM that already runs is kept alive
 * until it exits. */
struct lvm *lvm_wrap(lua_State *L, struct vm *vm, int def);
void lvm_keep_alive(lua_State *L, struct lvm *v, int idx);
struct lvm *lvm_check(lua_State *L, int idx);
/* Push the userdata of `v` (or nil if it was collected). */
void lvm_push(lua_State *L, struct lvm *v);

/* ---- its methods, and core functions over VMs (lvm_*.c, http_client.c) ---- */

/* Add methods to the method table on top of the stack: the lifecycle (start, pause,
 * wait_for, snapshot, ...: lvm_lifecycle.c), the operator's (regs, devices, console,
 * send_keys: lvm_inspect.c), the machine views (mem, msrs, set_msrs, exits, vcpu_count,
 * times, memory_stats: lvm_machine.c) and the device controls (balloon, balloon_stats,
 * update_drive, update_net: lvm_devices.c). */
void lvm_lifecycle_open(lua_State *L);
void lvm_inspect_open(lua_State *L);
void lvm_machine_open(lua_State *L);
void lvm_devices_open(lua_State *L);
/* core.restore { state=, mem= | uffd=, resume=, track_dirty_pages=, console= } */
int lvm_restore(lua_State *L);
/* core.prewarm { memory_mib=, track_dirty_pages= }: a VM shell for the next restore */
int lvm_prewarm(lua_State *L);
/* core.http_request(socket, method, url [, body [, timeout]]) -> status, body | nil, msg
 * (http_client.c). */
int core_http_request(lua_State *L);

/* ---- the host (host.c), above the module (module.c) it preloads ---- */

/* require "ember" into the global `ember`; -1 with a message on stderr if it fails. */
int host_load_ember(struct lua_host *h);
/* Run the loop until host_finish (or the main script and its VM end); deliver the
 * events left; return the status. */
int host_run_loop(struct lua_host *h);

#endif
