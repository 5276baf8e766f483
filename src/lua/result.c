/* How a binding answers Lua: an operational failure as nil, message; a bad definition as
 * a raised ember.config_error, which the host tells apart from other errors. The bottom
 * of src/lua: it calls nothing else here. */
#include <stdarg.h>
#include <stdio.h>

#include <lauxlib.h>

#include "internal.h"

int config_error(lua_State *L, const char *fmt, ...)
{
	/* printf's formats, not lua_pushfstring's (which has no %u or %llu): the compiler
	 * checks every caller against them. */
	luaL_Buffer b;
	va_list ap, again;
	int n;

	lua_createtable(L, 0, 1);
	va_start(ap, fmt);
	va_copy(again, ap);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	vsnprintf(luaL_buffinitsize(L, &b, (size_t)n + 1), (size_t)n + 1, fmt, again);
	va_end(again);
	luaL_pushresultsize(&b, (size_t)n);
	lua_setfield(L, -2, "message");
	luaL_setmetatable(L, CONFIG_ERROR_META);
	return lua_error(L);
}

bool config_error_is(lua_State *L, int idx)
{
	bool yes;

	if (!lua_getmetatable(L, idx))
		return false;
	luaL_getmetatable(L, CONFIG_ERROR_META);
	yes = lua_rawequal(L, -1, -2);
	lua_pop(L, 2);
	return yes;
}

static int config_error_tostring(lua_State *L)
{
	lua_getfield(L, 1, "message");
	return 1;
}

void config_error_open(lua_State *L)
{
	luaL_newmetatable(L, CONFIG_ERROR_META);
	lua_pushcfunction(L, config_error_tostring);
	lua_setfield(L, -2, "__tostring");
	lua_pop(L, 1);
}

int push_fail(lua_State *L, const char *msg)
{
	lua_pushnil(L);
	lua_pushstring(L, msg);
	return 2;
}

int push_result(lua_State *L, int ret, const char *err)
{
	if (ret)
		return push_fail(L, err);
	lua_pushboolean(L, 1);
	return 1;
}

void set_integer(lua_State *L, const char *key, uint64_t value)
{
	lua_pushinteger(L, (lua_Integer)value);
	lua_setfield(L, -2, key);
}
