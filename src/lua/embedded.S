/* The Lua side of the ember module (lua/ember/), built into the binary. */
	.section .rodata
	.global ember_lua_init, ember_lua_init_end
ember_lua_init:
	.incbin "lua/ember/init.lua"
ember_lua_init_end:
	.byte 0
	.section .note.GNU-stack, "", @progbits
